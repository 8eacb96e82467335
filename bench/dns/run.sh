#!/usr/bin/env bash
# Side-by-side DNS benchmark: strata and Knot DNS serve the same zone on
# loopback and dnsperf measures each in turn, interleaved, in one run. It
# prints queries per second, lost queries and strata's ratio to Knot for
#   static   www.example.test A  (three static A records)
#   lb       lb.example.test A   (strata: a load-balanced name, two of
#                                 three addresses chosen by weight 3:2:1
#                                 from a pool health-checked over TCP every
#                                 second; Knot: the same three addresses as
#                                 static records, which is all it can do)
# A ratio, never an absolute figure, is what this shared, noisy machine
# can tell.
#
# Needs knotd and dnsperf (Debian: knot dnsperf), dig (dnsutils) and Go (or
# STRATA_BIN pointing at a built strata). Installs nothing.
#
# Environment:
#   DURATION     dnsperf seconds per measurement (default 8)
#   CLIENTS      dnsperf -c (default 4)
#   OUTSTANDING  dnsperf -q (default 200)
#   ROUNDS       how many times to measure everything, interleaved (default 1)
#   KNOT_PORT    Knot's port on 127.0.0.1-3 (default 25354)
#   STRATA_PORT  strata's port on 127.0.0.1 (default 25353)
#   STRATA_BIN   a prebuilt strata binary (default: go build it)
set -euo pipefail

DURATION=${DURATION:-8}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-200}
ROUNDS=${ROUNDS:-1}
KNOT_PORT=${KNOT_PORT:-25354}
STRATA_PORT=${STRATA_PORT:-25353}

. "$(cd "$(dirname "$0")" && pwd)/../lib.sh"
need_tools "knot dnsperf dnsutils" knotd dnsperf dig
KNOTD=$(tool_path knotd)

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/strata-dnsbench.XXXXXX")
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	[ -n "${KEEP_TMP:-}" ] && echo "kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT

if [ -z "${STRATA_BIN:-}" ]; then
	STRATA_BIN=$tmp/strata
	(cd "$root" && go build -o "$STRATA_BIN" ./cmd/strata)
fi

# The zone both serve.
cat >"$tmp/static.zone" <<ZONE
\$ORIGIN example.test.
\$TTL 3600
@    IN SOA ns1 hostmaster 1 3600 600 86400 60
@    IN NS  ns1
ns1  IN A   127.0.0.1
www  IN A   192.0.2.1
www  IN A   192.0.2.2
www  IN A   192.0.2.3
ZONE
{ cat "$tmp/static.zone"; printf 'lb 30 IN A 127.0.0.1\nlb 30 IN A 127.0.0.2\nlb 30 IN A 127.0.0.3\n'; } >"$tmp/knot.zone"

mkdir -p "$tmp/knot"
cat >"$tmp/knot.conf" <<CONF
server:
    listen: [ 127.0.0.1@$KNOT_PORT, 127.0.0.2@$KNOT_PORT, 127.0.0.3@$KNOT_PORT ]
    udp-workers: 2
    tcp-workers: 1
    background-workers: 1
    rundir: $tmp/knot
database:
    storage: $tmp/knot
log:
  - target: stderr
    any: warning
zone:
  - domain: example.test
    storage: $tmp
    file: knot.zone
CONF

# strata's lb pool is the three Knot addresses, health-checked over TCP:
# real checks of real listeners, all passing.
cat >"$tmp/strata.yaml" <<CONF
admin:
  listen: "off"
log:
  level: warn
pools:
  - name: lb
    passive:
      max_fails: 0
    health:
      type: tcp
      interval: 1s
      timeout: 500ms
    backends:
      - address: 127.0.0.1:$KNOT_PORT
        weight: 3
      - address: 127.0.0.2:$KNOT_PORT
        weight: 2
      - address: 127.0.0.3:$KNOT_PORT
        weight: 1
dns:
  listen: ["127.0.0.1:$STRATA_PORT"]
  zones:
    - name: example.test
      file: $tmp/static.zone
      balanced:
        - name: lb
          ttl: 30s
          count: 2
          pool: lb
CONF

"$KNOTD" -c "$tmp/knot.conf" 2>"$tmp/knot.log" &
knot_pid=$!
pids+=($knot_pid)
"$STRATA_BIN" run -c "$tmp/strata.yaml" --watch=false 2>"$tmp/strata.log" &
strata_pid=$!
pids+=($strata_pid)

wait_answer() { # port name count
	for _ in $(seq 1 100); do
		n=$(dig @127.0.0.1 -p "$1" +short +time=1 +tries=1 "$2" A 2>/dev/null | grep -c . || true)
		[ "$n" -ge "$3" ] && return 0
		sleep 0.1
	done
	echo "run.sh: no answer for $2 on port $1; logs:" >&2
	cat "$tmp/knot.log" "$tmp/strata.log" >&2
	exit 1
}
# Answers could come from a stray server on the same port: make sure ours
# are the ones running.
sleep 0.5
for pid in "$knot_pid" "$strata_pid"; do
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "run.sh: a server exited at start (port taken?); logs:" >&2
		cat "$tmp/knot.log" "$tmp/strata.log" >&2
		exit 1
	fi
done
wait_answer "$KNOT_PORT" lb.example.test 3
wait_answer "$STRATA_PORT" www.example.test 3
# Two addresses per answer means every backend passed its checks.
wait_answer "$STRATA_PORT" lb.example.test 2

for name in www lb; do
	for _ in $(seq 1 1000); do echo "$name.example.test A"; done >"$tmp/q-$name"
done

HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# measure PORT QUERYFILE PID → "qps lost cpu_us_per_answer": the server's
# own CPU time (user + system, from /proc) per answered query is the figure
# that other load on a shared machine moves least.
measure() {
	local before after
	before=$(cpu_ticks "$3")
	dnsperf -s 127.0.0.1 -p "$1" -d "$2" -c "$CLIENTS" -q "$OUTSTANDING" -l "$DURATION" >"$tmp/dnsperf.out" 2>&1
	after=$(cpu_ticks "$3")
	awk -v t=$((after - before)) -v hz="$HZ" '
		/Queries completed/ {c=$3} /Queries per second/ {q=$4} /Queries lost/ {l=$3}
		END {printf "%.0f %s %.2f\n", q, l, (c > 0 ? t * 1e6 / hz / c : 0)}' "$tmp/dnsperf.out"
}

echo "dnsperf -c $CLIENTS -q $OUTSTANDING -l $DURATION, $ROUNDS round(s); Knot $("$KNOTD" --version | awk '{print $NF}') with 2 UDP workers; strata $("$STRATA_BIN" version | awk '{print $2}')"
printf '%-6s %-6s %9s %5s %8s %9s %5s %8s %7s %7s\n' round set knot_qps lost knot_us strata_qps lost strata_us qps_x cpu_x
for r in $(seq 1 "$ROUNDS"); do
	for set in static lb; do
		q=$tmp/q-www
		[ "$set" = lb ] && q=$tmp/q-lb
		read -r kq kl ku < <(measure "$KNOT_PORT" "$q" "$knot_pid")
		read -r sq sl su < <(measure "$STRATA_PORT" "$q" "$strata_pid")
		# qps_x: strata's queries per second over Knot's (above 1 is
		# better); cpu_x: Knot's CPU per answer over strata's (above 1:
		# strata spends less CPU per answer).
		qx=$(awk -v s="$sq" -v k="$kq" 'BEGIN { if (k > 0) printf "%.2f", s / k; else print "n/a" }')
		cx=$(awk -v s="$su" -v k="$ku" 'BEGIN { if (s > 0) printf "%.2f", k / s; else print "n/a" }')
		printf '%-6s %-6s %9s %5s %8s %9s %5s %8s %7s %7s\n' "$r" "$set" "$kq" "$kl" "$ku" "$sq" "$sl" "$su" "${qx}x" "${cx}x"
	done
done
echo "knot_us / strata_us: server CPU time (user + system) per answered query, in microseconds."
