// Package known is how internal/config checks values that only other
// packages understand — the name of a load-balancing algorithm, a backend
// state, a DNS name, type or record — without importing those packages:
// each of them registers its check here from an init function, the way a
// Caddy module or a CoreDNS plugin brings its own validation. The schema
// stays at the bottom of the import graph, and a role's vocabulary lives
// with the role.
//
// A check that nobody registered is not run. That only happens in a
// program that does not link the package that knows the values, and such
// a program cannot use them either; strata's own binary links them all
// (internal/supervisor imports every role).
//
// known imports nothing, so the packages that register here may import it
// from anywhere, and config's own tests can link them.
package known

// DNS is what config asks of a DNS library; internal/dnssyntax implements
// it with miekg/dns.
type DNS interface {
	// Fqdn returns name with its final dot.
	Fqdn(name string) string
	// IsDomainName reports whether name is a syntactically valid domain
	// name, absolute or relative.
	IsDomainName(name string) bool
	// IsSubDomain reports whether child is parent or lies under it; both
	// are fully qualified.
	IsSubDomain(parent, child string) bool
	// IsType reports whether name is a DNS type name such as A or SRV.
	IsType(name string) bool
	// CheckRecord parses one master-file line relative to zone (fully
	// qualified, lower case) and checks that it lies inside the zone.
	CheckRecord(zone, line string) error
}

var (
	algorithm    func(name string) error
	algorithms   func() []string
	backendState func(name string) error
	dns          DNS
)

// SetAlgorithms registers the check of a load-balancing algorithm's name
// and the list of the names. internal/balance calls it.
func SetAlgorithms(check func(name string) error, names func() []string) {
	once(algorithm == nil, "algorithms")
	algorithm, algorithms = check, names
}

// SetBackendStates registers the check of a backend state's name.
// internal/upstream calls it.
func SetBackendStates(check func(name string) error) {
	once(backendState == nil, "backend states")
	backendState = check
}

// SetDNS registers the DNS syntax. internal/dnssyntax calls it.
func SetDNS(d DNS) {
	once(dns == nil, "DNS syntax")
	dns = d
}

func once(first bool, what string) {
	if !first {
		panic("known: " + what + " registered twice")
	}
}

// Algorithm checks the name of a load-balancing algorithm; nil when it is
// known or when nothing registered the algorithms.
func Algorithm(name string) error {
	if algorithm == nil {
		return nil
	}
	return algorithm(name)
}

// Algorithms lists the registered load-balancing algorithms.
func Algorithms() []string {
	if algorithms == nil {
		return nil
	}
	return algorithms()
}

// BackendState checks the name of a backend state.
func BackendState(name string) error {
	if backendState == nil {
		return nil
	}
	return backendState(name)
}

// DNSSyntax returns the registered DNS syntax, or one that accepts every
// name, type and record when nothing registered it.
func DNSSyntax() DNS {
	if dns == nil {
		return anyDNS{}
	}
	return dns
}

// anyDNS accepts everything; Fqdn and IsSubDomain still work on names as
// plain dotted strings, so that duplicates are found.
type anyDNS struct{}

func (anyDNS) Fqdn(name string) string {
	if len(name) > 0 && name[len(name)-1] == '.' {
		return name
	}
	return name + "."
}
func (anyDNS) IsDomainName(string) bool { return true }
func (anyDNS) IsSubDomain(parent, child string) bool {
	return parent == "." || child == parent ||
		len(child) > len(parent) && child[len(child)-len(parent)-1] == '.' && child[len(child)-len(parent):] == parent
}
func (anyDNS) IsType(string) bool                  { return true }
func (anyDNS) CheckRecord(zone, line string) error { return nil }
