#!/usr/bin/env bash
# Side-by-side L7 benchmark: nginx, HAProxy and strata proxying to the same
# two nginx backends, measured with the same load generator in one run on
# this machine, workload by workload, the rounds interleaved. For each
# workload it prints req/s, proxy CPU per request and p99 of each proxy and
# strata's ratio to the peers: a ratio, never an absolute figure, is what
# this shared, noisy machine can tell.
#
# Workloads (WORKLOADS picks some, by name; default all, in this order):
#   ka64     HTTP/1.1 keep-alive, wrk -c64, 19-byte body
#   ka1000   the same with wrk -c1000
#   resp16k  keep-alive, wrk -c64, 16 KiB response body
#   resp1m   keep-alive, wrk -c64, 1 MiB response body
#   post1m   keep-alive, wrk -c64, 1 MiB request body (POST), small response
#   close    a new connection per request (Connection: close), wrk -c64
#   tls      TLS 1.3 to the proxy (ECDSA P-256), keep-alive, wrk -c64
#   tlshs    TLS 1.3, a new connection and full handshake per request
#            (Connection: close; wrk resumes no session), wrk -c64
#   h2       HTTP/2 over TLS 1.3, h2load -c$H2_CONNS -m100 (100 streams
#            per connection)
#   idle     RSS per idle keep-alive client connection: a fresh instance
#            of each proxy, $IDLE_CONNS connections each after one GET
#
# The same configuration for all three, as far as they have the same
# knobs: 2 worker processes/threads (strata: GOMAXPROCS = 2 cores);
# round robin over two backends with pooled keep-alive connections to them
# (nginx `keepalive 128`, HAProxy `http-reuse always`, strata's pool);
# no access log; no request-body size limit; bodies streamed in both
# directions (nginx `proxy_request_buffering off` and `proxy_buffering
# off`, as HAProxy and strata do); the client keep-alive timeout 120 s
# (strata's default 60 s; no run lasts that long); TLS 1.2 and 1.3 offered
# with each one's default ciphers and session tickets, ALPN h2 and
# http/1.1, one ECDSA P-256 certificate that the script makes with
# openssl. The clients (wrk, h2load) negotiate TLS 1.3.
#
# Needs nginx (with the echo module: Debian nginx-light and
# libnginx-mod-http-echo), haproxy, wrk, h2load (nghttp2-client), openssl
# and Go (or STRATA_BIN pointing at a built strata-l7bench). Installs
# nothing; raises its own fd limit (for ka1000 and idle), so run it as root
# or with a hard limit of at least 65536.
#
# Environment:
#   WORKLOADS   space-separated workload names (default: all of the above)
#   DURATION    load duration per measurement (default 5s)
#   ROUNDS      how many times to measure them all, interleaved (default 1;
#               3 or more for a figure to record)
#   THREADS     wrk threads (default 1)
#   H2_CONNS    h2load connections (default 8)
#   IDLE_CONNS  connections of the idle workload (default 10000, or as
#               many as HAProxy can hold under the hard fd limit)
#   REFS        1: also measure wrk straight at a backend and a plain Go
#               httputil.ReverseProxy on ka64, for reference
#   STRATA_BIN  a prebuilt strata-l7bench binary (default: go build it)
set -euo pipefail

ALL_WORKLOADS="ka64 ka1000 resp16k resp1m post1m close tls tlshs h2 idle"
WORKLOADS=${WORKLOADS:-$ALL_WORKLOADS}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-1}
THREADS=${THREADS:-1}
H2_CONNS=${H2_CONNS:-8}
IDLE_CONNS_SET=${IDLE_CONNS:-}
IDLE_CONNS=${IDLE_CONNS:-10000}
REFS=${REFS:-}

for w in $WORKLOADS; do
	case " $ALL_WORKLOADS " in
	*" $w "*) ;;
	*) echo "run.sh: unknown workload $w (known: $ALL_WORKLOADS)" >&2; exit 2 ;;
	esac
done

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
need_tools "nginx-light haproxy wrk nghttp2-client openssl" nginx haproxy wrk h2load openssl
NGINX=$(tool_path nginx)
HAPROXY=$(tool_path haproxy)
ECHO_MOD=/usr/lib/nginx/modules/ngx_http_echo_module.so
if [ ! -f "$ECHO_MOD" ]; then
	echo "run.sh: $ECHO_MOD not found; install the Debian package libnginx-mod-http-echo" >&2
	exit 1
fi
# 1,000 client connections each take a socket on both sides of a proxy,
# and the idle workload holds 10,000 of them at once: the fd limit is
# raised as far as the hard limit lets (a container may cap it), and each
# peer is told the limit it gets.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
# HAProxy reserves two fds per connection (client and server side) and
# refuses a maxconn its fd limit cannot hold: under a hard limit of 20,000
# (this machine's containers) the idle workload holds 9,900 connections.
if [ -z "${IDLE_CONNS_SET:-}" ] && [ $((IDLE_CONNS * 2 + 200)) -gt "$NOFILE" ]; then
	IDLE_CONNS=$(((NOFILE - 200) / 2 / 100 * 100))
	echo "run.sh: the fd limit is $NOFILE; the idle workload holds $IDLE_CONNS connections" >&2
fi

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

port() {
	local p
	p=$(free_port)
	while [[ " ${used_ports:-} " == *" $p "* ]]; do p=$(free_port); done
	used_ports="${used_ports:-} $p"
	echo "$p"
}
used_ports=""
B1=$(port); used_ports+=" $B1"; B2=$(port); used_ports+=" $B2"
PN=$(port); used_ports+=" $PN"; PNT=$(port); used_ports+=" $PNT"
PH=$(port); used_ports+=" $PH"; PHT=$(port); used_ports+=" $PHT"
PS=$(port); used_ports+=" $PS"; PST=$(port); used_ports+=" $PST"
PR=$(port); used_ports+=" $PR"

# The certificate: ECDSA P-256, self-signed (the clients do not verify).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj /CN=bench.local -addext "subjectAltName=DNS:bench.local,IP:127.0.0.1" \
	-keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
cat "$tmp/cert.pem" "$tmp/key.pem" >"$tmp/haproxy.pem"

# Bodies: 19 bytes at /, 16 KiB and 1 MiB files, and /upload, which reads
# a request body whole (echo module) before it answers 19 bytes.
mkdir -p "$tmp/backend/www"
chmod 755 "$tmp" "$tmp/backend" "$tmp/backend/www" # nginx's workers drop root
head -c 16384 /dev/zero | tr '\0' x >"$tmp/backend/www/16k"
head -c 1048576 /dev/zero | tr '\0' x >"$tmp/backend/www/1m"
cat >"$tmp/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = string.rep("x", 1048576)
wrk.headers["Content-Type"] = "application/octet-stream"
EOF

temp_paths() { # DIR: nginx's temporary paths, inside the run's directory
	local d
	for d in client_body proxy fastcgi uwsgi scgi; do echo "    ${d}_temp_path $1;"; done
}

cat >"$tmp/backend/nginx.conf" <<EOF
load_module $ECHO_MOD;
worker_processes 2;
worker_rlimit_nofile $NOFILE;
pid $tmp/backend/nginx.pid;
error_log $tmp/backend/error.log warn;
events { worker_connections $NOFILE; }
http {
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    client_max_body_size 0;
$(temp_paths "$tmp/backend")
    default_type text/plain;
    root $tmp/backend/www;
    server { listen 127.0.0.1:$B1;
        location = / { return 200 "hello from backend\n"; }
        location = /upload { echo_read_request_body; echo "hello from backend"; }
    }
    server { listen 127.0.0.1:$B2;
        location = / { return 200 "hello from backend\n"; }
        location = /upload { echo_read_request_body; echo "hello from backend"; }
    }
}
EOF

# nginx_conf DIR PORT TLSPORT writes a proxy nginx's configuration.
nginx_conf() {
	mkdir -p "$1"
	cat >"$1/nginx.conf" <<EOF
worker_processes 2;
worker_rlimit_nofile $NOFILE;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections $NOFILE; }
http {
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_buffer_size 32k;
    proxy_buffers 4 32k;
    proxy_busy_buffers_size 64k;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
$(temp_paths "$1")
    ssl_certificate $tmp/cert.pem;
    ssl_certificate_key $tmp/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    upstream backends {
        server 127.0.0.1:$B1;
        server 127.0.0.1:$B2;
        keepalive 128;
        keepalive_requests 10000000;
    }
    server {
        listen 127.0.0.1:$2;
        listen 127.0.0.1:$3 ssl http2;
        location / { proxy_pass http://backends; }
    }
}
EOF
}

# haproxy_cfg FILE PORT TLSPORT writes a HAProxy configuration.
haproxy_cfg() {
	cat >"$1" <<EOF
global
    nbthread 2
    ulimit-n $NOFILE
    maxconn $(((NOFILE - 100) / 2))
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 120s
    option http-keep-alive
    http-reuse always
frontend fe
    bind 127.0.0.1:$2
    bind 127.0.0.1:$3 ssl crt $tmp/haproxy.pem alpn h2,http/1.1
    default_backend be
backend be
    balance roundrobin
    server b1 127.0.0.1:$B1
    server b2 127.0.0.1:$B2
EOF
}

if [ -n "${STRATA_BIN:-}" ]; then
	strata=$STRATA_BIN
else
	strata=$tmp/strata-l7bench
	(cd "$root" && go build -o "$strata" ./bench/l7/strata-l7bench)
fi

# start_proxy KIND PORT TLSPORT starts one proxy and sets started_pid to
# the process whose CPU and memory count (with its children).
start_proxy() {
	case $1 in
	nginx)
		nginx_conf "$tmp/nginx-$2" "$2" "$3"
		"$NGINX" -p "$tmp/nginx-$2" -c "$tmp/nginx-$2/nginx.conf" -e "$tmp/nginx-$2/error.log"
		wait_http "http://127.0.0.1:$2/"
		started_pid=$(cat "$tmp/nginx-$2/nginx.pid")
		;;
	haproxy)
		haproxy_cfg "$tmp/haproxy-$2.cfg" "$2" "$3"
		"$HAPROXY" -f "$tmp/haproxy-$2.cfg" -db >"$tmp/haproxy-$2.log" 2>&1 &
		started_pid=$!
		pids+=("$started_pid")
		;;
	strata)
		"$strata" -listen "127.0.0.1:$2" -tls-listen "127.0.0.1:$3" -tls-cert "$tmp/cert.pem" -tls-key "$tmp/key.pem" \
			-backends "127.0.0.1:$B1,127.0.0.1:$B2" -lb rr ${STRATA_PPROF:+-pprof "$STRATA_PPROF"} >"$tmp/strata-$2.log" 2>&1 &
		started_pid=$!
		pids+=("$started_pid")
		;;
	esac
	wait_http "http://127.0.0.1:$2/"
}

# stop_proxy KIND PID stops a proxy start_proxy started.
stop_proxy() {
	kill "$2" 2>/dev/null || true
	if [ "$1" != nginx ]; then wait "$2" 2>/dev/null || true; fi
	for _ in $(seq 1 100); do
		kill -0 "$2" 2>/dev/null || return 0
		sleep 0.1
	done
}

"$NGINX" -p "$tmp/backend" -c "$tmp/backend/nginx.conf" -e "$tmp/backend/error.log"
declare -A pid_of port_of tls_port_of
for kind in nginx haproxy strata; do
	case $kind in
	nginx) p=$PN t=$PNT ;;
	haproxy) p=$PH t=$PHT ;;
	strata) p=$PS t=$PST ;;
	esac
	start_proxy "$kind" "$p" "$t"
	pid_of[$kind]=$started_pid port_of[$kind]=$p tls_port_of[$kind]=$t
done
pid_of[direct]=$(cat "$tmp/backend/nginx.pid") port_of[direct]=$B1
if [ -n "$REFS" ]; then
	# The baseline: a plain httputil.ReverseProxy built into the same binary.
	"$strata" -reverseproxy -listen "127.0.0.1:$PR" -backends "127.0.0.1:$B1,127.0.0.1:$B2" >"$tmp/rp.log" 2>&1 &
	pids+=($!)
	pid_of[reverseproxy]=$! port_of[reverseproxy]=$PR
	wait_http "http://127.0.0.1:$PR/"
fi

# Every proxy answers every workload's request correctly before anything
# is measured.
for kind in nginx haproxy strata; do
	p=${port_of[$kind]} t=${tls_port_of[$kind]}
	check() {
		if [ "$2" != "$3" ]; then
			echo "run.sh: $kind answered $1 with an unexpected body (${#2} bytes)" >&2
			exit 1
		fi
	}
	check / "$(curl -fsS "http://127.0.0.1:$p/")" "hello from backend"
	check /16k "$(curl -fsS "http://127.0.0.1:$p/16k" | wc -c)" 16384
	check /1m "$(curl -fsS "http://127.0.0.1:$p/1m" | wc -c)" 1048576
	check "POST /upload" "$(head -c 1048576 /dev/zero | curl -fsS --data-binary @- "http://127.0.0.1:$p/upload")" "hello from backend"
	check "TLS 1.3 /" "$(curl -fsSk --tlsv1.3 --http1.1 "https://127.0.0.1:$t/")" "hello from backend"
	check "h2 /" "$(curl -fsSk --http2 -o /dev/null -w '%{http_version}' "https://127.0.0.1:$t/")" "2"
done

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

# rss_kib PID... prints the resident memory of the processes and their
# direct children, in KiB.
rss_kib() {
	local total=0 pid
	for pid in "$@" $(for p in "$@"; do ps -o pid= --ppid "$p" 2>/dev/null; done); do
		if [ -r "/proc/$pid/status" ]; then
			total=$((total + $(awk '$1 == "VmRSS:" {print $2}' "/proc/$pid/status")))
		fi
	done
	echo "$total"
}

# p99_of_wrk reads wrk --latency output and prints its p99 in ms.
p99_of_wrk() {
	awk '$1 == "99%" {v=$2;
		if (v ~ /us$/) { sub(/us$/, "", v); v = v / 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v) }
		else if (v ~ /s$/) { sub(/s$/, "", v); v = v * 1000 }
		printf "%.2f", v }'
}

# load WORKLOAD TARGET runs one bounded load and prints "req/s p99ms
# requests"; its full output stays in $tmp/load.txt.
load() {
	local w=$1 target=$2 p t url
	p=${port_of[$target]} t=${tls_port_of[$target]:-}
	local wrk_args=(-t"$THREADS" -c64 -d"$DURATION" --timeout 10s --latency)
	case $w in
	ka64) url=http://127.0.0.1:$p/ ;;
	ka1000) url=http://127.0.0.1:$p/ wrk_args=(-t"$THREADS" -c1000 -d"$DURATION" --timeout 10s --latency) ;;
	resp16k) url=http://127.0.0.1:$p/16k ;;
	resp1m) url=http://127.0.0.1:$p/1m ;;
	post1m) url=http://127.0.0.1:$p/upload wrk_args+=(-s "$tmp/post.lua") ;;
	close) url=http://127.0.0.1:$p/ wrk_args+=(-H "Connection: close") ;;
	tls) url=https://127.0.0.1:$t/ ;;
	tlshs) url=https://127.0.0.1:$t/ wrk_args+=(-H "Connection: close") ;;
	h2)
		rm -f "$tmp/h2.log"
		h2load -c"$H2_CONNS" -m100 -t1 -D"${DURATION%s}" --log-file="$tmp/h2.log" "https://127.0.0.1:$t/" >"$tmp/load.txt" 2>&1 || true
		if ! grep -qi "application protocol: h2" "$tmp/load.txt"; then
			echo "run.sh: h2load did not negotiate h2 with $target" >&2
		fi
		awk '/^requests:/ && $10 + $12 + $14 > 0 {print "run.sh: h2load: " $0 > "/dev/stderr"}' "$tmp/load.txt"
		local rps reqs p99
		rps=$(awk '/^finished in/ {print $4}' "$tmp/load.txt")
		reqs=$(awk '/^requests:/ {print $8}' "$tmp/load.txt")
		p99=$(awk '{print $3}' "$tmp/h2.log" | sort -n | awk '{a[NR]=$1} END {if (NR) printf "%.2f", a[int(NR * 0.99 + 0.5)] / 1000; else print "n/a"}')
		echo "$rps $p99 $reqs"
		return
		;;
	esac
	wrk "${wrk_args[@]}" "$url" >"$tmp/load.txt" 2>&1 || true
	if grep -q "Non-2xx\|Socket errors" "$tmp/load.txt"; then
		echo "run.sh: errors while measuring $w on $target:" $(grep "Non-2xx\|Socket errors" "$tmp/load.txt") >&2
	fi
	echo "$(awk '/^Requests\/sec:/ {print $2}' "$tmp/load.txt") $(p99_of_wrk <"$tmp/load.txt") $(awk '/requests in/ {print $1}' "$tmp/load.txt")"
}

# measure WORKLOAD TARGET prints "req/s p99ms cpu-us-per-request". CPU per
# request counts only the proxy's own processes: unlike req/s it hardly
# moves when other work shares the machine.
measure() {
	local before after rps p99 reqs pid=${pid_of[$2]}
	before=$(cpu_ticks "$pid")
	read -r rps p99 reqs < <(load "$1" "$2")
	after=$(cpu_ticks "$pid")
	echo "$rps $p99 $(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$reqs" 'BEGIN {if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "n/a"}')"
}

# idle TARGET starts a fresh instance of the proxy (so that no earlier
# workload's buffers or heap count), opens IDLE_CONNS keep-alive
# connections through the -hold client, and prints the growth of the
# proxy's RSS per connection in KiB.
idle() {
	local p t pid before after hold out
	p=$(port); t=$(port)
	while [ "$t" = "$p" ]; do t=$(port); done
	start_proxy "$1" "$p" "$t"
	pid=$started_pid
	before=$(rss_kib "$pid")
	out=$tmp/hold.txt
	: >"$out"
	"$strata" -hold "127.0.0.1:$p" -hold-conns "$IDLE_CONNS" >"$out" 2>&1 &
	hold=$!
	for _ in $(seq 1 1200); do
		grep -q '^held' "$out" && break
		kill -0 "$hold" 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -q '^held' "$out"; then
		echo "run.sh: idle client failed on $1: $(cat "$out")" >&2
		kill "$hold" 2>/dev/null || true
		wait "$hold" 2>/dev/null || true
		stop_proxy "$1" "$pid"
		echo n/a
		return
	fi
	# Let the proxies settle what an idle connection keeps (strata returns
	# an idle connection's buffers after a moment).
	sleep 3
	after=$(rss_kib "$pid")
	kill "$hold" 2>/dev/null || true
	wait "$hold" 2>/dev/null || true
	stop_proxy "$1" "$pid"
	awk -v a="$after" -v b="$before" -v n="$IDLE_CONNS" 'BEGIN {printf "%.2f", (a - b) / n}'
}

declare -A R
targets="nginx haproxy strata"
echo "# bench/l7: WORKLOADS=\"$WORKLOADS\" ROUNDS=$ROUNDS DURATION=$DURATION THREADS=$THREADS H2_CONNS=$H2_CONNS IDLE_CONNS=$IDLE_CONNS; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ); load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-5s %-8s %-22s %10s %9s %10s\n' round workload target "req/s" "p99 ms" "CPU us/req"
for round in $(seq 1 "$ROUNDS"); do
	for w in $WORKLOADS; do
		tl=$targets
		[ -n "$REFS" ] && [ "$w" = ka64 ] && tl="direct $targets reverseproxy"
		for target in $tl; do
			if [ "$w" = idle ]; then
				kib=$(idle "$target")
				printf '%-5s %-8s %-22s %32s\n' "$round" "$w" "$target" "$kib KiB RSS per idle conn"
				add "$w.$target.kib" "$kib"
				continue
			fi
			read -r rps p99 cpr < <(measure "$w" "$target")
			printf '%-5s %-8s %-22s %10.0f %9s %10s\n' "$round" "$w" "$target" "${rps:-0}" "$p99" "$cpr"
			add "$w.$target.rps" "$rps"
			add "$w.$target.p99" "$p99"
			add "$w.$target.cpu" "$cpr"
		done
	done
done

echo
echo "# medians over $ROUNDS round(s); load average now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| workload | req/s nginx | HAProxy | strata | **strata/nginx** | strata/HAProxy | CPU µs/req nginx | HAProxy | strata | **CPU strata/nginx** | p99 ms nginx | HAProxy | strata | **p99 strata/nginx** |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for w in $WORKLOADS; do
	[ "$w" = idle ] && continue
	n=$(m "$w.nginx.rps") h=$(m "$w.haproxy.rps") s=$(m "$w.strata.rps")
	cn=$(m "$w.nginx.cpu") ch=$(m "$w.haproxy.cpu") cs=$(m "$w.strata.cpu")
	pn=$(m "$w.nginx.p99") ph=$(m "$w.haproxy.p99") ps=$(m "$w.strata.p99")
	printf '| %s | %.0f | %.0f | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$w" "$n" "$h" "$s" \
		"$(ratio "$s" "$n")" "$(ratio "$s" "$h")" "$cn" "$ch" "$cs" "$(ratio "$cs" "$cn")" \
		"$pn" "$ph" "$ps" "$(ratio "$ps" "$pn")"
done
if [[ " $WORKLOADS " == *" idle "* ]]; then
	n=$(m idle.nginx.kib) h=$(m idle.haproxy.kib) s=$(m idle.strata.kib)
	echo
	echo "idle: KiB of RSS per idle keep-alive connection ($IDLE_CONNS open): nginx $n, HAProxy $h, strata $s; strata/nginx $(ratio "$s" "$n"), strata/HAProxy $(ratio "$s" "$h")"
fi
if [ -n "$REFS" ] && [[ " $WORKLOADS " == *" ka64 "* ]]; then
	echo "references on ka64: backend direct $(m ka64.direct.rps) req/s; Go ReverseProxy $(m ka64.reverseproxy.rps) req/s at $(m ka64.reverseproxy.cpu) CPU µs/req"
fi
