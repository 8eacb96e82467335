package config

// A role's section of the config (l4, dns, registry …) lives in files of
// its own — <role>.go for the types, with their defaults and validation —
// and hooks into the stages here from an init function, so that adding a
// role does not mean editing the shared stages.

// sectionDefaults run at the end of ApplyDefaults. absent(isZero, path)
// reports whether a numeric field should take its default (see
// ApplyDefaults).
var sectionDefaults []func(c *Config, absent func(isZero bool, path string) bool)

// sectionValidators run at the end of Validate. pools holds the names of
// the configured pools, for checking references.
var sectionValidators []func(v *validator, pools map[string]bool)

// onDefaults registers a section's defaults stage.
func onDefaults(f func(c *Config, absent func(isZero bool, path string) bool)) {
	sectionDefaults = append(sectionDefaults, f)
}

// onValidate registers a section's validation stage.
func onValidate(f func(v *validator, pools map[string]bool)) {
	sectionValidators = append(sectionValidators, f)
}
