package config

// L4 is the TCP/UDP load balancer role. Its fields, defaults (onDefaults) and
// validation (onValidate) live in this file.
type L4 struct{}
