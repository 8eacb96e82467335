#!/usr/bin/env bash
# strata's registry through the official Nacos Go SDK v2 (gRPC), as Nacos 2
# clients see it (bench/registry/nacos2: a module of its own, so the SDK's
# dependency tree stays out of strata's):
#   grpc-register  registrations/s: CLIENTS SDK clients, each on its own gRPC
#                  connection, REGS registrations in all, each a new service's
#                  ephemeral instance
#   grpc-push      SUBS SDK clients subscribed to one service; CHANGES new
#                  instances registered one after another; for each, the time
#                  from the write's call to the LAST subscriber's callback
#                  (p50/p99 over the changes), and to each subscriber's
#                  (p50/p99 over every pair)
# One strata node, registry.data on disk (Raft log fsynced), on 127.0.0.1.
# There is no peer here: a Nacos server is not installable on this machine.
#
# Environment: CLIENTS (32), REGS (5000), SUBS (1000), CHANGES (50).
set -euo pipefail
CLIENTS=${CLIENTS:-32}
REGS=${REGS:-5000}
SUBS=${SUBS:-1000}
CHANGES=${CHANGES:-50}

root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/bench/lib.sh"
tmp=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
(cd "$root" && go build -o "$tmp/strata" ./cmd/strata)
(cd "$root/bench/registry/nacos2" && go build -o "$tmp/nacos2bench" .)
ulimit -n 65536 2>/dev/null || true

sp=$(free_port)
rp=$(free_port)
gp=$(free_port)
cat >"$tmp/strata.yaml" <<YAML
admin:
  listen: "off"
log:
  level: warn
registry:
  listen: 127.0.0.1:$sp
  raft_listen: 127.0.0.1:$rp
  data: $tmp/data
  max_watchers_per_client: 4096
  nacos_grpc:
    listen: 127.0.0.1:$gp
YAML
"$tmp/strata" run -c "$tmp/strata.yaml" 2>>"$tmp/strata.log" &
pid=$!
wait_http "http://127.0.0.1:$sp/v1/registry/cluster"
for _ in $(seq 1 100); do
	curl -fsS "http://127.0.0.1:$sp/v1/registry/cluster" | grep -q '"leader":"[^"]' && break
	sleep 0.1
done
echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$tmp/nacos2bench" -addr "127.0.0.1:$sp" -grpc "$gp" -clients "$CLIENTS" -regs "$REGS" -subs "$SUBS" -changes "$CHANGES"
