// Package config reads strata's YAML configuration in three stages, each
// callable on its own so tests can exercise one at a time:
//
//  1. decode walks the yaml.Node tree into the structs of types.go by
//     reflection over their yaml tags, recording the line of every field in
//     a Positions table keyed by field path ("pools[1].backends[0].address").
//     Unknown fields, wrong types, duplicate keys and aliases are errors.
//  2. ApplyDefaults fills what the file left out.
//  3. Validate checks the whole config and reports every problem at once,
//     each as file:line: field path: message.
//
// config imports no other strata package. Values that only a role or the
// core knows — an algorithm's name, a backend state, a DNS name, type or
// record — are checked through internal/config/known, where the packages
// that know them register their checks; the errors still cite file:line
// and the field.
//
// Parse runs all three on a byte slice; Load reads a file and calls Parse.
// docs/config.md documents every field; a test keeps the two in step.
package config
