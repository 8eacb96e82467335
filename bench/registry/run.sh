#!/usr/bin/env bash
# Side-by-side registry benchmark: strata registry and Consul (consul agent
# -dev), measured in one run with the same client (bench/registry/regbench)
# and the same concurrency:
#
#   reg      registrations per second (strata: PUT /v1/registry/instances;
#            Consul: PUT /v1/agent/service/register with a passing TTL check)
#   query    healthy-instance queries per second, 10 instances
#            (strata: GET /v1/registry/services/…; Consul: /v1/health/service/…?passing)
#   watch    p50/p99 of one change reaching SUBS subscribers parked in
#            blocking queries (index + wait on both)
#   memory   RSS growth of the server for FILL ephemeral instances
#
# Consul is skipped with a note when it is not installed. Every server
# listens on 127.0.0.1; every load loop is bounded in time or count.
#
# Environment:
#   DURATION  seconds per reg/query measurement (default 5)
#   CONC      concurrent clients (default 32)
#   SUBS      subscribers for watch (default 1000)
#   FILL      instances for the memory figure (default 100000)
#   DATA      strata's data: a directory (default: a temporary one) or memory
set -euo pipefail

DURATION=${DURATION:-5}
CONC=${CONC:-32}
SUBS=${SUBS:-1000}
FILL=${FILL:-100000}

root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/bench/lib.sh"
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

(cd "$root" && go build -o "$tmp/strata" ./cmd/strata && go build -o "$tmp/regbench" ./bench/registry/regbench)
DATA=${DATA:-$tmp/data}

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }



bench() { # target addr
	local t=$1 a=$2
	"$tmp/regbench" -target "$t" -addr "$a" -mode reg -c "$CONC" -d "${DURATION}s"
	"$tmp/regbench" -target "$t" -addr "$a" -mode query -c "$CONC" -d "${DURATION}s"
	"$tmp/regbench" -target "$t" -addr "$a" -mode watch -subs "$SUBS"
}

memory() { # target addr pid: on a fresh server, RSS growth for FILL instances
	local t=$1 a=$2 pid=$3 before after
	before=$(rss_kb "$pid")
	"$tmp/regbench" -target "$t" -addr "$a" -mode fill -n "$FILL" -c "$CONC"
	after=$(rss_kb "$pid")
	echo "target=$t mode=memory instances=$FILL rss_before_mb=$((before / 1024)) rss_after_mb=$((after / 1024)) bytes_per_instance=$(((after - before) * 1024 / FILL))"
}

start_strata() { # data dir; sets sp and spid
	sp=$(free_port)
	local rp
	rp=$(free_port)
	cat >"$tmp/strata.yaml" <<YAML
admin:
  listen: "off"
log:
  level: warn
registry:
  listen: 127.0.0.1:$sp
  raft_listen: 127.0.0.1:$rp
  data: $1
  unhealthy_after: 10m
  remove_after: 10m
YAML
	"$tmp/strata" run -c "$tmp/strata.yaml" 2>>"$tmp/strata.log" &
	spid=$!
	pids+=("$spid")
	wait_http "http://127.0.0.1:$sp/v1/registry/cluster"
	sleep 1
}

start_consul() { # sets cp and cpid
	cp=$(free_port)
	consul agent -dev -log-level=warn -http-port="$cp" -dns-port=-1 -grpc-port=-1 -serf-lan-port="$(free_port)" -serf-wan-port="$(free_port)" -server-port="$(free_port)" -bind=127.0.0.1 -client=127.0.0.1 >>"$tmp/consul.log" 2>&1 &
	cpid=$!
	pids+=("$cpid")
	wait_http "http://127.0.0.1:$cp/v1/status/leader"
	sleep 2
}

have_consul=false
command -v consul >/dev/null 2>&1 && have_consul=true

echo "# strata registry (data: $DATA)"
start_strata "$DATA"
bench strata "127.0.0.1:$sp"
kill "$spid"
if $have_consul; then
	echo "# consul $(consul version | head -1) agent -dev"
	start_consul
	bench consul "127.0.0.1:$cp"
	kill "$cpid"
else
	echo "# consul: not installed (Debian package consul); skipped"
fi

echo "# memory, each on a fresh server"
memdata=$DATA
[ "$DATA" = memory ] || memdata="$DATA-mem"
start_strata "$memdata"
memory strata "127.0.0.1:$sp" "$spid"
kill "$spid"
if $have_consul; then
	start_consul
	memory consul "127.0.0.1:$cp" "$cpid"
	kill "$cpid"
fi
