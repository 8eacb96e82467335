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
	// Routes are matched in order; the first that matches wins.
	Routes []Route `yaml:"routes"`
}
