package config

// The l7 section: the listeners (this file) and their routes (l7_route.go).

// L7 is the HTTP load balancer role.
type L7 struct {
	// Listeners are the HTTP sockets; at least one is required.
	Listeners []Listener `yaml:"listeners"`
}

// Listener is one HTTP listening socket and its routes.
type Listener struct {
	// Name identifies the listener in logs and metrics (default: the
	// listen address).
	Name string `yaml:"name"`
	// Listen is host:port.
	Listen string `yaml:"listen"`
	// Routes are grouped by host; the most specific host's routes are
	// tried in order and the first that matches wins (see Route).
	Routes []Route `yaml:"routes"`

	// TLS terminates TLS on the listener with certificates chosen by SNI;
	// plain HTTP when absent (l7_listener.go).
	TLS *ListenerTLS `yaml:"tls"`
	// HTTP2 offers HTTP/2 by ALPN on a TLS listener (default true).
	HTTP2 *bool `yaml:"http2"`
	// H2C accepts cleartext HTTP/2, by prior knowledge or by Upgrade, on
	// a listener without TLS (default false).
	H2C bool `yaml:"h2c"`
	// ProxyProtocol accepts PROXY protocol v1/v2 headers from the
	// sources it allows; off when absent.
	ProxyProtocol *ProxyProtocol `yaml:"proxy_protocol"`
	// TrustedProxies are the CIDRs (or addresses) whose X-Forwarded-*
	// headers are extended; from any other client they are replaced.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// AccessLog writes one line per request; off when absent.
	AccessLog *AccessLog `yaml:"access_log"`
	// HealthPath, when set, is answered by strata itself: 200 while the
	// process serves, 503 once it has begun to stop (during the top-level
	// shutdown_delay), so a balancer in front stops sending before the
	// listener closes. Default: none (every path is routed).
	HealthPath string `yaml:"health_path"`
	// MaxConns bounds the listener's open client connections; more wait
	// in the kernel's accept queue (0: no bound).
	MaxConns int `yaml:"max_conns"`

	// Client timeouts, with nginx's names (l7_client.go).
	ClientHeaderTimeout Duration `yaml:"client_header_timeout"`
	KeepaliveTimeout    Duration `yaml:"keepalive_timeout"`
	ClientBodyTimeout   Duration `yaml:"client_body_timeout"`
	SendTimeout         Duration `yaml:"send_timeout"`
	// MaxHeaderBytes bounds a request's head; a larger one gets 431
	// (default 64 KiB).
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxBodyBytes bounds a request's body; a larger one gets 413 (0: no
	// bound).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}
