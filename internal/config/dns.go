package config

// DNS is the authoritative DNS role. Its fields, defaults (onDefaults) and
// validation (onValidate) live in this file.
type DNS struct{}
