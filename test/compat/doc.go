// Package compat runs official client SDKs, unchanged, against strata's
// servers. It is a module of its own so that strata's go.mod does not
// carry the SDKs' dependency trees; the Makefile's test target runs it.
package compat
