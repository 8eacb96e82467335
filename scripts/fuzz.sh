#!/usr/bin/env bash
# Runs every native fuzz target of the module for FUZZTIME each (default
# 30s). go test -fuzz takes one target per run, so this loops over the
# package and target pairs, found in the source (every `func FuzzX` in a
# _test.go file) rather than listed by hand. The seed corpora also run in
# plain `go test`; a failing input is written to the package's
# testdata/fuzz/FuzzX/ and fails that test from then on.
set -uo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-30s}
go=${GO:-go}
failed=()
targets=$(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' . | sed 's/:func / /' | sort -u)
if [[ -z $targets ]]; then
	echo "scripts/fuzz.sh: no fuzz targets found" >&2
	exit 1
fi
while read -r file target; do
	pkg=./$(dirname "${file#./}")
	echo "== $pkg $target ($fuzztime)"
	if ! $go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg"; then
		failed+=("$pkg $target")
	fi
done <<<"$targets"
if ((${#failed[@]})); then
	echo "scripts/fuzz.sh: failing targets:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
