#!/usr/bin/env bash
# Side-by-side L7 benchmark: nginx, HAProxy and strata proxying to the same
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
#   ROUNDS      how many times to measure all three, interleaved (default 1)
#   STRATA_BIN  a prebuilt strata-l7bench binary (default: go build it)
set -euo pipefail

DURATION=${DURATION:-8s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-1}

for cmd in nginx haproxy wrk; do
	if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
		echo "run.sh: $cmd not found; install the Debian packages nginx-light haproxy wrk" >&2
		exit 1
	fi
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

here=$(cd "$(dirname "$0")" && pwd)
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

# free_port prints a TCP port nobody listens on, from a random start.
free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 30000))
		if ! ss -ltn "sport = :$p" 2>/dev/null | grep -q ":$p"; then
			echo "$p"
			return
		fi
	done
	echo "run.sh: no free port found" >&2
	exit 1
}

# wait_http waits until a URL answers 200, for at most 10 seconds.
wait_http() {
	for _ in $(seq 1 100); do
		if curl -fsS -o /dev/null "$1" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "run.sh: $1 did not come up" >&2
	exit 1
}

B1=$(free_port); B2=$(free_port)
while [ "$B2" = "$B1" ]; do B2=$(free_port); done
PN=$(free_port); PH=$(free_port); PS=$(free_port)

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
"$strata" -listen "127.0.0.1:$PS" -backends "127.0.0.1:$B1,127.0.0.1:$B2" -lb rr >"$tmp/strata.log" 2>&1 &
pids+=($!)

for p in "$B1" "$B2" "$PN" "$PH" "$PS"; do
	wait_http "http://127.0.0.1:$p/"
done
body=$(curl -fsS "http://127.0.0.1:$PS/")
if [ "$body" != "hello from backend" ]; then
	echo "run.sh: strata returned an unexpected body: $body" >&2
	exit 1
fi

# measure NAME PORT prints "req/s p99ms" for one wrk run.
measure() {
	local out rps p99
	out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "http://127.0.0.1:$2/")
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
	echo "$rps $p99"
}

echo "# wrk -t$THREADS -c$CONNS -d$DURATION, 19-byte body, keep-alive both sides, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
printf '%-6s %-22s %12s %10s\n' round target "req/s" "p99 ms"
declare -A sum
for target in direct nginx haproxy strata; do sum[$target]=0; done
for round in $(seq 1 "$ROUNDS"); do
	for target in direct nginx haproxy strata; do
		case $target in
		direct) port=$B1 ;;
		nginx) port=$PN ;;
		haproxy) port=$PH ;;
		strata) port=$PS ;;
		esac
		read -r rps p99 < <(measure "$target" "$port")
		label=$target
		[ "$target" = direct ] && label="backend direct (ref)"
		printf '%-6s %-22s %12.0f %10s\n' "$round" "$label" "$rps" "$p99"
		sum[$target]=$(awk -v a="${sum[$target]}" -v b="$rps" 'BEGIN {print a + b}')
	done
done
awk -v s="${sum[strata]}" -v n="${sum[nginx]}" -v h="${sum[haproxy]}" -v r="$ROUNDS" 'BEGIN {
	printf "mean req/s over %d round(s): nginx %.0f, haproxy %.0f, strata %.0f\n", r, n / r, h / r, s / r
	printf "strata / nginx   = %.2f\n", s / n
	printf "strata / haproxy = %.2f\n", s / h
}'
