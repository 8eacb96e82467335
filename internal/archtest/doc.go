// Package archtest holds no code, only a test: the rules of
// docs/architecture.md about which package may import which, checked on
// the source tree, so that a change that points a dependency the wrong
// way fails the build instead of waiting for a reviewer.
package archtest
