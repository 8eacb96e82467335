package config

import (
	"fmt"
	"time"
)

// String returns Go duration text, e.g. "1m30s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes the duration as Go duration text so that JSON and YAML
// renderings of a Config read like the file it came from and parse back.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads Go duration text.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (want Go duration text like \"5s\" or \"1m30s\")", b)
	}
	*d = Duration(v)
	return nil
}
