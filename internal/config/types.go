package config

import (
	"time"
)

// Duration is a time.Duration written in YAML as Go duration text ("5s",
// "1m30s").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Config is the whole strata configuration: every role in one file. A role
// whose section is absent does not run.
type Config struct {
	// Admin is the admin listener (status, metrics, pprof, writes).
	Admin Admin `yaml:"admin"`
	// Log sets the log level and format.
	Log Log `yaml:"log"`
	// ShutdownTimeout bounds how long SIGTERM waits for in-flight work.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// ShutdownDelay is the lameduck time on SIGTERM: roles keep serving
	// but report themselves as stopping (l7's health_path answers 503)
	// for this long before they stop accepting. Default 0s.
	ShutdownDelay Duration `yaml:"shutdown_delay"`
	// Pools are the named backend pools that roles send traffic to.
	Pools []Pool `yaml:"pools"`
	// L7 is the HTTP load balancer role.
	L7 *L7 `yaml:"l7"`
	// L4 is the TCP/UDP load balancer role.
	L4 *L4 `yaml:"l4"`
	// DNS is the authoritative DNS load balancer role (dns.go).
	DNS *DNS `yaml:"dns"`
	// Registry is the service registry role (registry.go).
	Registry *Registry `yaml:"registry"`

	// pos records where each field was written, so that defaults can tell
	// an explicit zero from an absent field and errors can cite lines. It
	// is unexported so it stays out of the schema, YAML and JSON.
	pos *Positions
}

// Admin configures the admin listener.
type Admin struct {
	// Listen is host:port; loopback by default. Empty string after defaults
	// is impossible; "off" disables the listener.
	Listen string `yaml:"listen"`
	// Token is the bearer token that write calls need. Required when
	// Listen is not a loopback address. Secrets stay out of JSON
	// renderings of the config.
	Token string `yaml:"token" json:"-"`
	// TokenFile reads the token from a file that is not world-readable
	// instead.
	TokenFile string `yaml:"token_file"`
	// Pprof serves /debug/pprof when true (default true when Listen is a
	// loopback address, false otherwise). With a token set, pprof needs
	// it like writes do.
	Pprof *bool `yaml:"pprof"`
}

// Log configures log/slog output.
type Log struct {
	// Level is debug, info, warn or error (default info).
	Level string `yaml:"level"`
	// Format is text or json (default text).
	Format string `yaml:"format"`
}

// Pool is a named set of backends.
type Pool struct {
	// Name identifies the pool; routes refer to it. Required and unique.
	Name string `yaml:"name"`
	// LB is the load-balancing algorithm (default wrr, nginx's smooth
	// weighted round robin).
	LB string `yaml:"lb"`
	// SlowStart ramps a recovered backend's weight up over this long.
	SlowStart Duration `yaml:"slow_start"`
	// Backends are the static members of the pool.
	Backends []Backend `yaml:"backends"`
	// Registry makes the pool follow a registry service instead of
	// static backends (pool_registry.go); set backends or registry, not
	// both.
	Registry *PoolRegistry `yaml:"registry"`
	// Health is the active health check; none when absent.
	Health *HealthCheck `yaml:"health"`
	// Passive is passive ejection on failures reported by data planes;
	// on with its defaults when absent, off with max_fails: 0.
	Passive *Passive `yaml:"passive"`
	// Protocol is how the l7 role speaks to the pool's backends: http1,
	// h2 (HTTP/2 over TLS) or h2c (cleartext HTTP/2) (default http1).
	// Other roles ignore it.
	Protocol string `yaml:"protocol"`
}

// Backend is one static member of a pool.
type Backend struct {
	// Address is host:port.
	Address string `yaml:"address"`
	// Name identifies the backend in the pool (default: the address).
	Name string `yaml:"name"`
	// Weight is the relative share of traffic (default 1; 0 takes none).
	Weight *int `yaml:"weight"`
	// Zone is the backend's zone or region.
	Zone string `yaml:"zone"`
	// Tags are free-form labels (version, env …).
	Tags map[string]string `yaml:"tags"`
	// State is up, down, draining or maintenance (default up).
	State string `yaml:"state"`
}

// HealthCheck is an active health check for every backend of a pool.
type HealthCheck struct {
	// Type is tcp, http, https, udp, dns or exec.
	Type string `yaml:"type"`
	// Interval between checks of one backend (default 5s).
	Interval Duration `yaml:"interval"`
	// Jitter adds up to this much random delay to each interval (default
	// a tenth of the interval) so checks of many backends do not align.
	Jitter *Duration `yaml:"jitter"`
	// Timeout of one check (default 2s; must be less than interval).
	Timeout Duration `yaml:"timeout"`
	// Rise is the number of consecutive passes that mark a backend
	// healthy (default 2).
	Rise int `yaml:"rise"`
	// Fall is the number of consecutive failures that mark it unhealthy
	// (default 3).
	Fall int `yaml:"fall"`
	// Port checks this port instead of the backend's own.
	Port int `yaml:"port"`

	// Path is the HTTP request path (http/https; default /).
	Path string `yaml:"path"`
	// Method is the HTTP method (default GET).
	Method string `yaml:"method"`
	// Host is the HTTP Host header (default: the backend address).
	Host string `yaml:"host"`
	// ExpectStatus lists the accepted statuses as codes and ranges,
	// e.g. "200-299,404" (default "200-399").
	ExpectStatus string `yaml:"expect_status"`
	// ExpectBody, when set, must occur in the response body.
	ExpectBody string `yaml:"expect_body"`
	// TLSSkipVerify skips certificate verification for https checks.
	TLSSkipVerify bool `yaml:"tls_skip_verify"`

	// Send is the UDP payload to send (udp).
	Send string `yaml:"send"`
	// Expect, when set, must occur in the UDP reply (udp).
	Expect string `yaml:"expect"`

	// Query is the DNS name to ask (dns; default ".").
	Query string `yaml:"query"`
	// QueryType is the DNS record type (dns; default A).
	QueryType string `yaml:"query_type"`

	// Command is run for exec checks; exit status 0 passes. The backend's
	// host and port are passed in STRATA_BACKEND_HOST/_PORT.
	Command []string `yaml:"command"`
}

// Passive configures passive ejection (outlier detection).
type Passive struct {
	// MaxFails consecutive failures eject a backend (default 5; 0 turns
	// passive ejection off).
	MaxFails *int `yaml:"max_fails"`
	// BaseEjection is the first ejection's length (default 30s); each
	// further ejection doubles it.
	BaseEjection Duration `yaml:"base_ejection"`
	// MaxEjection caps the ejection length (default 5m).
	MaxEjection Duration `yaml:"max_ejection"`
}
