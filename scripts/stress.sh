#!/usr/bin/env bash
# Runs every package's tests STRESSCOUNT times (default 5) under the race
# detector, one package at a time, to shake out races and order-dependent
# failures that one run hides. Arguments narrow it to some packages:
#   scripts/stress.sh ./internal/l4/ ./internal/l7/
set -uo pipefail
cd "$(dirname "$0")/.."

count=${STRESSCOUNT:-5}
go=${GO:-go}
if (($#)); then
	pkgs=("$@")
else
	mapfile -t pkgs < <($go list ./...)
fi
failed=()
for p in "${pkgs[@]}"; do
	echo "== $p (-race -count=$count)"
	if ! $go test -race -count="$count" -timeout 30m "$p"; then
		failed+=("$p")
	fi
done
if ((${#failed[@]})); then
	echo "scripts/stress.sh: failing packages:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
