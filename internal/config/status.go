package config

import (
	"fmt"
	"strconv"
	"strings"
)

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Lo, Hi int }

// StatusRanges is a set of accepted HTTP statuses.
type StatusRanges []StatusRange

// Match reports whether code is in the set.
func (rs StatusRanges) Match(code int) bool {
	for _, r := range rs {
		if code >= r.Lo && code <= r.Hi {
			return true
		}
	}
	return false
}

// ParseStatusRanges parses "200-299,404" into ranges.
func ParseStatusRanges(s string) (StatusRanges, error) {
	var rs StatusRanges
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		l, err1 := strconv.Atoi(strings.TrimSpace(lo))
		h, err2 := strconv.Atoi(strings.TrimSpace(hi))
		if err1 != nil || err2 != nil || l < 100 || h > 599 || l > h {
			return nil, fmt.Errorf("bad status %q: want codes 100-599 or ranges like 200-299", part)
		}
		rs = append(rs, StatusRange{l, h})
	}
	return rs, nil
}
