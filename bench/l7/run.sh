#!/usr/bin/env bash
# Side-by-side L7 benchmark: nginx, HAProxy and strata (and, for reference,
# a plain Go httputil.ReverseProxy) proxying to the same
# two nginx backends that return a fixed 19-byte body, keep-alive on both
# sides, measured with wrk in one run on this machine. It prints req/s and
# p99 for each and strata's ratio to the peers: a ratio, never an absolute
# figure, is what this shared, noisy machine can tell.
#
# Needs nginx, haproxy and wrk (Debian: nginx-light haproxy wrk) and Go (or
# STRATA_BIN pointing at a built strata-l7bench). Installs nothing.
#
# Environment:
#   DURATION    wrk duration per measurement (default 8s)
#   CONNS       wrk connections (default 64)
#   THREADS     wrk threads (default 1)
#   ROUNDS      how many times to measure them all, interleaved (default 1)
#   STRATA_BIN  a prebuilt strata-l7bench binary (default: go build it)
set -euo pipefail

DURATION=${DURATION:-8s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-1}

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
need_tools "nginx-light haproxy wrk" nginx haproxy wrk
NGINX=$(tool_path nginx)
HAPROXY=$(tool_path haproxy)

root=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/strata-l7bench.XXXXXX")
pids=()

cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	# nginx daemonises its workers under the master; the pid files name
	# the masters we started, and only those are signalled.
	for pf in "$tmp"/*/nginx.pid; do
		[ -f "$pf" ] && kill "$(cat "$pf")" 2>/dev/null || true
	done
	[ -n "${KEEP_TMP:-}" ] && echo "kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

B1=$(free_port); B2=$(free_port)
while [ "$B2" = "$B1" ]; do B2=$(free_port); done
PN=$(free_port); PH=$(free_port); PS=$(free_port); PR=$(free_port)

# Backends: one nginx with two servers, 2 workers, effectively unlimited
# keep-alive requests so that no proxy is measured reconnecting.
mkdir -p "$tmp/backend" "$tmp/nginx"
cat >"$tmp/backend/nginx.conf" <<EOF
worker_processes 2;
pid $tmp/backend/nginx.pid;
error_log $tmp/backend/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    client_body_temp_path $tmp/backend;
    proxy_temp_path $tmp/backend;
    fastcgi_temp_path $tmp/backend;
    uwsgi_temp_path $tmp/backend;
    scgi_temp_path $tmp/backend;
    default_type text/plain;
    server { listen 127.0.0.1:$B1; location / { return 200 "hello from backend\n"; } }
    server { listen 127.0.0.1:$B2; location / { return 200 "hello from backend\n"; } }
}
EOF

cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 2;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    client_body_temp_path $tmp/nginx;
    proxy_temp_path $tmp/nginx;
    fastcgi_temp_path $tmp/nginx;
    uwsgi_temp_path $tmp/nginx;
    scgi_temp_path $tmp/nginx;
    upstream backends {
        server 127.0.0.1:$B1;
        server 127.0.0.1:$B2;
        keepalive 128;
        keepalive_requests 10000000;
    }
    server {
        listen 127.0.0.1:$PN;
        location / {
            proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF

cat >"$tmp/haproxy.cfg" <<EOF
global
    nbthread 2
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
    http-reuse always
frontend fe
    bind 127.0.0.1:$PH
    default_backend be
backend be
    balance roundrobin
    server b1 127.0.0.1:$B1
    server b2 127.0.0.1:$B2
EOF

if [ -n "${STRATA_BIN:-}" ]; then
	strata=$STRATA_BIN
else
	strata=$tmp/strata-l7bench
	(cd "$root" && go build -o "$strata" ./bench/l7/strata-l7bench)
fi

"$NGINX" -p "$tmp/backend" -c "$tmp/backend/nginx.conf" -e "$tmp/backend/error.log"
"$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log"
"$HAPROXY" -f "$tmp/haproxy.cfg" -db >"$tmp/haproxy.log" 2>&1 &
pids+=($!)
haproxy_pid=$!
"$strata" -listen "127.0.0.1:$PS" -backends "127.0.0.1:$B1,127.0.0.1:$B2" -lb rr >"$tmp/strata.log" 2>&1 &
pids+=($!)
strata_pid=$!
# The baseline: a plain httputil.ReverseProxy built into the same binary.
"$strata" -reverseproxy -listen "127.0.0.1:$PR" -backends "127.0.0.1:$B1,127.0.0.1:$B2" >"$tmp/rp.log" 2>&1 &
pids+=($!)
rp_pid=$!

for p in "$B1" "$B2" "$PN" "$PH" "$PS" "$PR"; do
	wait_http "http://127.0.0.1:$p/"
done
body=$(curl -fsS "http://127.0.0.1:$PS/")
if [ "$body" != "hello from backend" ]; then
	echo "run.sh: strata returned an unexpected body: $body" >&2
	exit 1
fi

# cpu_ticks PID... prints the CPU time (user + system, in clock ticks) used
# so far by the given processes and their direct children (nginx workers).
cpu_ticks() {
	local total=0 pid
	for pid in "$@" $(for p in "$@"; do ps -o pid= --ppid "$p" 2>/dev/null; done); do
		if [ -r "/proc/$pid/stat" ]; then
			total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
		fi
	done
	echo "$total"
}

# measure NAME PORT PID... prints "req/s p99ms cpu-us-per-request" for one
# wrk run. CPU per request counts only the proxy's own processes: unlike
# req/s it hardly moves when other work shares the machine.
measure() {
	local out rps p99 reqs before after name=$1 port=$2
	shift 2
	before=$(cpu_ticks "$@")
	out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "http://127.0.0.1:$port/")
	after=$(cpu_ticks "$@")
	set -- "$name"
	echo "$out" >"$tmp/wrk-$1.txt"
	if echo "$out" | grep -q "Non-2xx\|Socket errors"; then
		echo "run.sh: errors while measuring $1:" >&2
		echo "$out" | grep "Non-2xx\|Socket errors" >&2
	fi
	rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
	p99=$(echo "$out" | awk '$1 == "99%" {v=$2;
		if (v ~ /us$/) { sub(/us$/, "", v); v = v / 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v) }
		else if (v ~ /s$/) { sub(/s$/, "", v); v = v * 1000 }
		printf "%.2f", v }')
	reqs=$(echo "$out" | awk '/requests in/ {print $1}')
	echo "$rps $p99 $(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$reqs" 'BEGIN {printf "%.1f", t * 1e6 / hz / n}')"
}

echo "# wrk -t$THREADS -c$CONNS -d$DURATION, 19-byte body, keep-alive both sides, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
printf '%-6s %-22s %12s %10s %14s\n' round target "req/s" "p99 ms" "proxy CPU us/req"
declare -A sum cpu
targets="direct nginx haproxy strata reverseproxy"
for target in $targets; do sum[$target]=0; cpu[$target]=0; done
for round in $(seq 1 "$ROUNDS"); do
	for target in $targets; do
		case $target in
		direct) port=$B1 pid=$(cat "$tmp/backend/nginx.pid") ;;
		nginx) port=$PN pid=$(cat "$tmp/nginx/nginx.pid") ;;
		haproxy) port=$PH pid=$haproxy_pid ;;
		strata) port=$PS pid=$strata_pid ;;
		reverseproxy) port=$PR pid=$rp_pid ;;
		esac
		read -r rps p99 cpr < <(measure "$target" "$port" "$pid")
		label=$target
		[ "$target" = direct ] && label="backend direct (ref)"
		[ "$target" = reverseproxy ] && label="Go ReverseProxy (ref)"
		printf '%-6s %-22s %12.0f %10s %14s\n' "$round" "$label" "$rps" "$p99" "$cpr"
		sum[$target]=$(awk -v a="${sum[$target]}" -v b="$rps" 'BEGIN {print a + b}')
		cpu[$target]=$(awk -v a="${cpu[$target]}" -v b="$cpr" 'BEGIN {print a + b}')
	done
done
awk -v cs="${cpu[strata]}" -v cn="${cpu[nginx]}" -v ch="${cpu[haproxy]}" -v cg="${cpu[reverseproxy]}" -v r="$ROUNDS" 'BEGIN {
	printf "mean proxy CPU per request (us): nginx %.1f, haproxy %.1f, strata %.1f, Go ReverseProxy %.1f\n", cn / r, ch / r, cs / r, cg / r
}'
awk -v s="${sum[strata]}" -v n="${sum[nginx]}" -v h="${sum[haproxy]}" -v g="${sum[reverseproxy]}" -v r="$ROUNDS" 'BEGIN {
	printf "mean req/s over %d round(s): nginx %.0f, haproxy %.0f, strata %.0f, Go ReverseProxy %.0f\n", r, n / r, h / r, s / r, g / r
	printf "strata / nginx   = %.2f\n", s / n
	printf "strata / haproxy = %.2f\n", s / h
	printf "Go ReverseProxy / nginx = %.2f\n", g / n
}'
