package config

// Registry is the service registry role. Its fields, defaults (onDefaults) and
// validation (onValidate) live in this file.
type Registry struct{}
