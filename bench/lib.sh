# bench/lib.sh — what the side-by-side benchmarks share. Sourced by each
# bench/<role>/run.sh; defines functions only.

# need_tools "PACKAGES" CMD... exits unless every CMD is on PATH or in
# /usr/sbin, naming the Debian packages that bring them.
need_tools() {
	local pkgs=$1 cmd
	shift
	for cmd in "$@"; do
		if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
			echo "run.sh: $cmd not found; install the Debian packages $pkgs" >&2
			exit 1
		fi
	done
}

# tool_path CMD prints CMD's path (daemons live in /usr/sbin, which a
# user's PATH may lack).
tool_path() { command -v "$1" || echo "/usr/sbin/$1"; }

# free_port prints a port no socket uses (listening, connected or in
# TIME_WAIT), chosen below the ephemeral range: no outgoing connection
# (the load generators', the proxies') can take it, and the tens of
# thousands of ephemeral ports a connection benchmark leaves in TIME_WAIT
# cannot keep a listener from binding it.
free_port() {
	local p lo
	lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
	for _ in $(seq 1 200); do
		p=$((10000 + RANDOM % (lo - 10000)))
		if ! ss -tanu "( sport = :$p )" 2>/dev/null | grep -q ":$p\b"; then
			echo "$p"
			return
		fi
	done
	echo "run.sh: no free port found" >&2
	exit 1
}

# wait_port PORT waits until something listens on TCP PORT, for at most
# 10 seconds.
wait_port() {
	for _ in $(seq 1 100); do
		ss -ltn "sport = :$1" | grep -q ":$1" && return 0
		sleep 0.1
	done
	echo "run.sh: nothing listens on $1" >&2
	exit 1
}

# wait_http URL waits until URL answers 2xx, for at most 10 seconds.
wait_http() {
	for _ in $(seq 1 100); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "run.sh: $1 did not come up" >&2
	exit 1
}

# Results of rounds: add KEY VALUE appends VALUE to the figures kept for
# KEY in the associative array R, which the script declares (declare -A R);
# m KEY prints their median. Figures that could not be measured ("n/a")
# are left out, and a key with none prints "-".
add() { R[$1]="${R[$1]:-} $2"; }
median() { tr ' ' '\n' | awk '$1 != "" && $1 != "n/a"' | sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "-"; else print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m() { echo "${R[$1]:-}" | median; }

# ratio A B prints A/B to two places, or n/a when either is missing ("-")
# or B is zero.
ratio() {
	python3 - "$1" "$2" <<'PY'
import sys
a, b = sys.argv[1:3]
try:
    print('%.2f' % (float(a) / float(b)))
except (ValueError, ZeroDivisionError):
    print('n/a')
PY
}
