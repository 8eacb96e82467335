package config

import (
	"strings"
	"testing"
)

const l7RoutePools = "pools:\n  - name: app\n    backends:\n      - address: 127.0.0.1:9001\n  - name: v2\n    backends:\n      - address: 127.0.0.1:9002\n"

func TestL7RouteValidation(t *testing.T) {
	tests := []struct {
		desc, route, want string
	}{
		{desc: "valid policy route", route: "pool: app\n        hash_key: header:X-User\n        split: [{pool: v2, weight: 10, headers: {X-Canary: \"1\"}}]\n        sticky: {secret: 0123456789abcdef}\n        retry: {attempts: 2, statuses: [502, 503], non_idempotent: true}\n        rate_limit: {rate: 10, per: 1m}"},
		{desc: "redirect needs no pool", route: "redirect: {status: 301, scheme: https}"},
		{desc: "missing pool", route: "path: /x", want: "pool is required"},
		{desc: "redirect and pool", route: "pool: app\n        redirect: {status: 301}", want: "sends to no pool"},
		{desc: "redirect and respond", route: "redirect: {}\n        respond: {}", want: "not both"},
		{desc: "bad regex", route: "pool: app\n        path_regex: \"a(\"", want: "path_regex"},
		{desc: "lower-case method", route: "pool: app\n        methods: [get]", want: "must be upper case"},
		{desc: "bad header regex", route: "pool: app\n        headers: {X-A: \"~(\"}", want: "headers.X-A"},
		{desc: "bad hash key", route: "pool: app\n        hash_key: ip", want: "hash_key"},
		{desc: "split weights over 100", route: "pool: app\n        split: [{pool: v2, weight: 60}, {pool: v2, weight: 50}]", want: "more than 100%"},
		{desc: "split without weight or condition", route: "pool: app\n        split: [{pool: v2}]", want: "needs a weight"},
		{desc: "split to unknown pool", route: "pool: app\n        split: [{pool: v3, weight: 5}]", want: `no pool named "v3"`},
		{desc: "short sticky secret", route: "pool: app\n        sticky: {secret: short}", want: "at least 16 bytes"},
		{desc: "retry of a 4xx", route: "pool: app\n        retry: {statuses: [404]}", want: "only 5xx"},
		{desc: "too many attempts", route: "pool: app\n        retry: {attempts: 11}", want: "from 0 to 10"},
		{desc: "budget over 100", route: "pool: app\n        retry: {budget_percent: 150}", want: "budget_percent"},
		{desc: "bad redirect status", route: "redirect: {status: 200}", want: "must be 301"},
		{desc: "path and prefix rewrite", route: "redirect: {path: /a, prefix_rewrite: /b}", want: "cannot both"},
		{desc: "bad respond status", route: "respond: {status: 99}", want: "from 200 to 599"},
		{desc: "header value with a line break", route: "pool: app\n        request_headers: {set: {X-A: \"a\\r\\nB: c\"}}", want: "line breaks"},
		{desc: "rate limit without rate", route: "pool: app\n        rate_limit: {burst: 3}", want: "rate_limit.rate: must be positive"},
		{desc: "rate limit by cookie", route: "pool: app\n        rate_limit: {rate: 1, key: \"cookie:a\"}", want: "want client or header:NAME"},
		{desc: "eject on 200", route: "pool: app\n        eject_on_status: [200]", want: "4xx or 5xx"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			src := l7RoutePools + "l7:\n  listeners:\n    - listen: 127.0.0.1:8080\n      routes:\n      - " + tc.route + "\n"
			_, err := Parse("t.yaml", []byte(src))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("valid route rejected: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "t.yaml:") {
				t.Errorf("error %v does not cite file:line", err)
			}
		})
	}
}

func TestL7ListenerLimitsValidation(t *testing.T) {
	for _, tc := range []struct{ field, want string }{
		{"max_conns: -1", "max_conns: must not be negative"},
		{"max_header_bytes: 10", "from 1024 to 1048576"},
		{"max_body_bytes: -5", "max_body_bytes: must not be negative"},
	} {
		src := l7RoutePools + "l7:\n  listeners:\n    - listen: 127.0.0.1:8080\n      " + tc.field + "\n      routes:\n      - pool: app\n"
		if _, err := Parse("t.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want %q", tc.field, err, tc.want)
		}
	}
}
