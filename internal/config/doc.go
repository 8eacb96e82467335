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
// Parse runs all three on a byte slice; Load reads a file and calls Parse.
// docs/config.md documents every field; a test keeps the two in step.
package config
