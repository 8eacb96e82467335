#!/usr/bin/env bash
# Side-by-side L4 benchmark: strata l4, HAProxy (mode tcp) and nginx
# (stream) in front of the same backends, measured in one run on this
# machine with the same load generators:
#
#   throughput   iperf3 -P4 through each proxy (and direct, for scale)
#   conns/s      new TCP connections per second, 16 bytes each way
#                (bench/l4/l4bench conns, 32 workers)
#   UDP          datagrams echoed per second through strata and nginx
#                (HAProxy has no UDP proxy)
#   memory       RSS growth per idle connection with IDLE connections open,
#                once per proxy, after the rounds
#
# It prints every figure and strata's ratio to the peers: a ratio, never an
# absolute figure, is what this shared, noisy machine can tell.
#
# Needs iperf3, haproxy, nginx with the stream module (Debian: iperf3
# haproxy nginx-light libnginx-mod-stream) and Go. Installs nothing; every
# server listens on 127.0.0.1 and every load loop is bounded in time.
#
# Environment:
#   DURATION  seconds per measurement (default 5)
#   ROUNDS    how many times to measure all proxies, interleaved (default 1)
#   IDLE      idle connections for the memory figure (default 10000)
#   BASE      a git revision (main, HEAD~1 …): strata built from it runs as
#             one more proxy, "base", measured in the same rounds, for a
#             before/after that the machine's load cannot skew
set -euo pipefail

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-1}
IDLE=${IDLE:-10000}
BASE=${BASE:-}

. "$(cd "$(dirname "$0")" && pwd)/../lib.sh"
need_tools "iperf3 haproxy nginx-light libnginx-mod-stream" iperf3 haproxy nginx
NGINX=$(tool_path nginx)
HAPROXY=$(tool_path haproxy)
STREAM_MOD=$(ls /usr/lib/nginx/modules/ngx_stream_module.so 2>/dev/null || true)
[ -n "$STREAM_MOD" ] || { echo "run.sh: nginx stream module missing (libnginx-mod-stream)" >&2; exit 1; }

# Idle connections need file descriptors: a proxy holds two per
# connection. Raise the limit as far as allowed and open no more idle
# connections than it lets every proxy hold (a container may cap it).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
# HAProxy also keeps splice pipes (two descriptors per four connections).
MAXCONN=$(( (NOFILE - 500) * 2 / 5 ))
# The echo backend keeps the previous proxy's connections for a moment
# after they close, so each idle test stays under a third of the limit.
IDLE_MAX=$(( (NOFILE - 500) / 3 ))
if [ "$IDLE" -gt "$IDLE_MAX" ]; then
	echo "run.sh: file descriptor limit $NOFILE allows $IDLE_MAX idle connections per proxy here, not $IDLE" >&2
	IDLE=$IDLE_MAX
fi

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/strata-l4bench.XXXXXX")
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	[ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
	[ -f "$tmp/haproxy.pid" ] && kill "$(cat "$tmp/haproxy.pid")" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

echo "building strata and l4bench…" >&2
(cd "$root" && go build -o "$tmp/strata" ./cmd/strata && go build -o "$tmp/l4bench" ./bench/l4/l4bench)
if [ -n "$BASE" ]; then
	echo "building strata at $BASE…" >&2
	mkdir "$tmp/base"
	git -C "$root" archive "$BASE" | tar -x -C "$tmp/base"
	(cd "$tmp/base" && go build -o "$tmp/strata-base" ./cmd/strata)
fi

IPERF=$(free_port); ECHO=$(free_port); UECHO=$(free_port)
S_IPERF=$(free_port); S_ECHO=$(free_port); S_UDP=$(free_port)
H_IPERF=$(free_port); H_ECHO=$(free_port)
N_IPERF=$(free_port); N_ECHO=$(free_port); N_UDP=$(free_port)
B_IPERF=$(free_port); B_ECHO=$(free_port); B_UDP=$(free_port)

iperf3 -s -B 127.0.0.1 -p "$IPERF" >/dev/null 2>&1 & pids+=($!)
"$tmp/l4bench" echo -tcp "127.0.0.1:$ECHO" -udp "127.0.0.1:$UECHO" >/dev/null & pids+=($!)

strata_config() { # strata_config IPERF ECHO UDP: the config listening on those ports
	cat <<YAML
admin:
  listen: "off"
log:
  level: warn
pools:
  - name: iperf
    backends: [{address: "127.0.0.1:$IPERF"}]
  - name: echo
    backends: [{address: "127.0.0.1:$ECHO"}]
  - name: uecho
    backends: [{address: "127.0.0.1:$UECHO"}]
l4:
  services:
    - {name: iperf, listen: "127.0.0.1:$1", pool: iperf, scheduler: wlc}
    - {name: echo, listen: "127.0.0.1:$2", pool: echo, scheduler: wlc}
    - {name: udp, protocol: udp, listen: "127.0.0.1:$3", pool: uecho, scheduler: wlc}
YAML
}
strata_config "$S_IPERF" "$S_ECHO" "$S_UDP" >"$tmp/strata.yaml"
"$tmp/strata" run -c "$tmp/strata.yaml" -watch=false 2>"$tmp/strata.log" & STRATA_PID=$!; pids+=($STRATA_PID)
if [ -n "$BASE" ]; then
	strata_config "$B_IPERF" "$B_ECHO" "$B_UDP" >"$tmp/base.yaml"
	"$tmp/strata-base" run -c "$tmp/base.yaml" -watch=false 2>"$tmp/base.log" & BASE_PID=$!; pids+=($BASE_PID)
fi

# HAProxy as its documentation tunes it for TCP proxying: two threads (one
# per core), splice in both directions.
cat >"$tmp/haproxy.cfg" <<CFG
global
  nbthread 2
  maxconn $MAXCONN
  pidfile $tmp/haproxy.pid
defaults
  mode tcp
  option splice-auto
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen iperf
  bind 127.0.0.1:$H_IPERF
  server s1 127.0.0.1:$IPERF
listen echo
  bind 127.0.0.1:$H_ECHO
  server s1 127.0.0.1:$ECHO
CFG
"$HAPROXY" -f "$tmp/haproxy.cfg" -D

cat >"$tmp/nginx.conf" <<CFG
load_module $STREAM_MOD;
worker_processes 2;
worker_rlimit_nofile $NOFILE;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;
events { worker_connections $MAXCONN; }
stream {
  server { listen 127.0.0.1:$N_IPERF; proxy_pass 127.0.0.1:$IPERF; }
  server { listen 127.0.0.1:$N_ECHO; proxy_pass 127.0.0.1:$ECHO; }
  server { listen 127.0.0.1:$N_UDP udp; proxy_pass 127.0.0.1:$UECHO; proxy_responses 1; proxy_timeout 5s; }
}
CFG
"$NGINX" -c "$tmp/nginx.conf" -p "$tmp" 2>/dev/null

for p in "$IPERF" "$ECHO" "$S_IPERF" "$S_ECHO" "$H_IPERF" "$H_ECHO" "$N_IPERF" "$N_ECHO"; do wait_port "$p"; done
sleep 0.5
HAPROXY_PID=$(cat "$tmp/haproxy.pid")
NGINX_PID=$(cat "$tmp/nginx.pid")

gbits() { # gbits PORT → receiver Gbit/s of iperf3 -P4
	iperf3 -c 127.0.0.1 -p "$1" -P4 -t "$DURATION" -J | python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))'
}
cps() { "$tmp/l4bench" conns -addr "127.0.0.1:$1" -c 32 -d "${DURATION}s" | awk '{print $2}'; }
dps() { "$tmp/l4bench" udp -addr "127.0.0.1:$1" -c 16 -d "${DURATION}s" | awk '{print $2}'; }
mem() { "$tmp/l4bench" idle -addr "127.0.0.1:$1" -n "$IDLE" -pid "$2" | awk '{print $NF}'; }

# rotate N WORD… prints the words turned left by N: each round measures
# the targets in another order, so that none always runs right after the
# same neighbour (or first, in a quiet moment).
rotate() { local n=$1; shift; local a=("$@"); local i; for i in "${!a[@]}"; do echo "${a[$(((i + n) % ${#a[@]}))]}"; done; }

declare -A R
PROXIES=(strata haproxy nginx)
declare -A TPUT_PORT=([direct]="$IPERF" [strata]="$S_IPERF" [haproxy]="$H_IPERF" [nginx]="$N_IPERF")
declare -A CPS_PORT=([direct]="$ECHO" [strata]="$S_ECHO" [haproxy]="$H_ECHO" [nginx]="$N_ECHO")
declare -A UDP_PORT=([direct]="$UECHO" [strata]="$S_UDP" [nginx]="$N_UDP")
declare -A PID=([strata]="$STRATA_PID" [haproxy]="$HAPROXY_PID" [nginx]="$NGINX_PID")
if [ -n "$BASE" ]; then
	wait_port "$B_IPERF"; wait_port "$B_ECHO"
	PROXIES=(strata base haproxy nginx)
	TPUT_PORT[base]=$B_IPERF; CPS_PORT[base]=$B_ECHO; UDP_PORT[base]=$B_UDP; PID[base]=$BASE_PID
fi
for round in $(seq 1 "$ROUNDS"); do
	echo "round $round/$ROUNDS…" >&2
	for t in direct $(rotate "$((round - 1))" "${PROXIES[@]}"); do
		add "tput_$t" "$(gbits "${TPUT_PORT[$t]}")"
	done
	sleep 1
	# Each connection measurement leaves tens of thousands of sockets in
	# TIME_WAIT for 60 s, which slows the connects of whoever comes next;
	# the order turns every round so that no proxy always follows the
	# direct run.
	for t in $(rotate "$((round - 1))" direct "${PROXIES[@]}"); do
		add "cps_$t" "$(cps "${CPS_PORT[$t]}")"; sleep 1
	done
	for t in direct $(rotate "$((round - 1))" "${PROXIES[@]}"); do
		if [ -n "${UDP_PORT[$t]:-}" ]; then add "udp_$t" "$(dps "${UDP_PORT[$t]}")"; fi
	done
done
# RSS growth per idle connection, once per proxy: a second measurement
# would find the memory of the first one's connections free to reuse
# (HAProxy's pools grew by 25 bytes per connection). Each waits for the
# previous one's connections to leave the echo backend.
echo "idle connections ($IDLE)…" >&2
for t in "${PROXIES[@]}"; do
	add "mem_$t" "$(mem "${CPS_PORT[$t]}" "${PID[$t]}")"; sleep 5
done

COLS=(direct "${PROXIES[@]}")
row() { # row LABEL KEY: one line of medians, "-" where a target has none
	local label=$1 key=$2 t
	printf '%-34s' "$label"
	for t in "${COLS[@]}"; do printf ' %10s' "$(m "${key}_$t")"; done
	echo
}
printf '\n%-34s' "median of $ROUNDS round(s)"; printf ' %10s' "${COLS[@]}"; echo
row "iperf3 -P4 Gbit/s" tput
row "new TCP conns/s (32 workers)" cps
row "UDP datagrams/s (16 sockets)" udp
row "bytes RSS per idle conn ($IDLE)" mem
echo
echo "strata / HAProxy throughput:   $(ratio "$(m tput_strata)" "$(m tput_haproxy)")  (target ≥ 1.0)"
echo "strata / HAProxy conns/s:      $(ratio "$(m cps_strata)" "$(m cps_haproxy)")  (target ≥ 1.0)"
echo "strata / nginx throughput:     $(ratio "$(m tput_strata)" "$(m tput_nginx)")"
echo "strata / nginx conns/s:        $(ratio "$(m cps_strata)" "$(m cps_nginx)")"
echo "strata / nginx UDP datagrams:  $(ratio "$(m udp_strata)" "$(m udp_nginx)")"
echo "strata / HAProxy idle memory:  $(ratio "$(m mem_strata)" "$(m mem_haproxy)")  (target ≤ 1.0)"
echo "strata / nginx idle memory:    $(ratio "$(m mem_strata)" "$(m mem_nginx)")  (lower is better)"
if [ -n "$BASE" ]; then
	echo "strata / base ($BASE) throughput:   $(ratio "$(m tput_strata)" "$(m tput_base)")"
	echo "strata / base ($BASE) conns/s:      $(ratio "$(m cps_strata)" "$(m cps_base)")"
	echo "strata / base ($BASE) UDP:          $(ratio "$(m udp_strata)" "$(m udp_base)")"
	echo "strata / base ($BASE) idle memory:  $(ratio "$(m mem_strata)" "$(m mem_base)")"
fi
