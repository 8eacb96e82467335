package config

// The packages that register what config checks but does not know (see
// internal/config/known), linked so that this package's tests check
// algorithm names, backend states and DNS syntax as strata's binary does.
import (
	_ "github.com/strata-lb/strata/internal/balance"
	_ "github.com/strata-lb/strata/internal/dnssyntax"
	_ "github.com/strata-lb/strata/internal/upstream"
)
