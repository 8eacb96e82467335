#!/usr/bin/env bash
# The kernel data plane side by side: one client, one balancer and one
# real server in network namespaces on a Linux bridge, and the same
# backends reached five ways in one run:
#
#   direct   the client to the real's own address (for scale)
#   dr       strata's XDP program, LVS direct routing (generic XDP)
#   tunnel   strata's XDP program, IP-in-IP, strata decap on the real
#   proxy    strata l4's user-space proxy (forward: proxy)
#   haproxy  HAProxy 2.6, mode tcp, splice, two threads
#
# and three loads from the client:
#
#   iperf3 -P4 throughput, client → server (the direction that crosses a
#     DSR balancer; replies of dr and tunnel never do)
#   new TCP conns/s (bench/l4/l4bench conns, 32 workers, 16 bytes each way)
#   small UDP: 64-byte datagrams echoed per second (l4bench udp, 16 sockets)
#
# each with the balancer's CPU per packet: for dr and tunnel, the XDP
# program's own run time per packet (kernel.bpf_stats_enabled, which this
# script turns on for the run and restores); for proxy and haproxy, the
# process's CPU time over the packets its namespace's eth0 received and
# sent. The first leaves out generic XDP's socket-buffer cost, which a
# native driver would not have; read them as orders of magnitude.
#
# Needs root, iperf3, haproxy, bpftool and Go. Every address is inside the
# namespaces this script makes and deletes; every load is bounded in time.
#
# Environment:
#   DURATION  seconds per measurement (default 5)
#   ROUNDS    how many times to measure everything, interleaved (default 1)
set -euo pipefail

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-1}

. "$(cd "$(dirname "$0")" && pwd)/../lib.sh"
need_tools "iperf3 haproxy iproute2 bpftool" iperf3 haproxy ip bpftool
[ "$(id -u)" = 0 ] || { echo "xdp.sh: needs root (network namespaces and XDP)" >&2; exit 1; }
HAPROXY=$(tool_path haproxy)
BPFTOOL=$(tool_path bpftool)

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/strata-xdpbench.XXXXXX")
P=sx$$
SW=${P}sw C=${P}c LB=${P}lb R=${P}r
NET=10.254.0 VIP1=10.254.0.100 VIP2=10.254.0.101 REAL=10.254.0.11 LBIP=10.254.0.2
STATS_BEFORE=$(cat /proc/sys/kernel/bpf_stats_enabled)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	[ -f "$tmp/haproxy.pid" ] && kill "$(cat "$tmp/haproxy.pid")" 2>/dev/null || true
	for ns in $C $LB $R $SW; do ip netns del "$ns" 2>/dev/null || true; done
	echo "$STATS_BEFORE" >/proc/sys/kernel/bpf_stats_enabled
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

echo "building strata and l4bench…" >&2
(cd "$root" && go build -o "$tmp/strata" ./cmd/strata && go build -o "$tmp/l4bench" ./bench/l4/l4bench)

# nsx NS CMD… runs CMD in NS. Background jobs call ip netns exec
# themselves, so that $! is the program (ip execs it) and cleanup can
# stop it.
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
for ns in $SW $C $LB $R; do ip netns add "$ns"; done
ip -n "$SW" link add br0 type bridge
ip -n "$SW" link set br0 up
n=0
plug() { # plug NS ADDR/LEN
	n=$((n + 1))
	ip -n "$SW" link add "p$n" type veth peer name eth0 netns "$1"
	ip -n "$SW" link set "p$n" master br0 up
	ip -n "$1" link set eth0 up
	ip -n "$1" link set lo up
	ip -n "$1" addr add "$2" dev eth0
}
plug "$C" "$NET.1/24"
plug "$LB" "$LBIP/24"
plug "$R" "$REAL/24"
# Tunnelled packets are 20 bytes longer than the client's: the path from
# the balancer to the real gets room for them (docs/l4.md, tunnel MTU),
# the client keeps 1500.
for port in p2 p3; do ip -n "$SW" link set "$port" mtu 1600; done
ip -n "$LB" link set eth0 mtu 1600
ip -n "$R" link set eth0 mtu 1600
ip -n "$LB" addr add "$VIP1/32" dev eth0
ip -n "$LB" addr add "$VIP2/32" dev eth0
ip -n "$R" addr add "$VIP1/32" dev lo
ip -n "$R" addr add "$VIP2/32" dev lo
nsx "$R" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0
# The connection benchmark opens tens of thousands of connections to each
# target; give the client every port and let it reuse TIME_WAIT ones.
nsx "$C" sysctl -qw net.ipv4.ip_local_port_range="1024 65000" net.ipv4.tcp_tw_reuse=1

# The real server: iperf3, a TCP echo on every address, and a UDP echo
# bound to each address the client asks (a UDP reply leaves from the
# address its socket is bound to, and dr and tunnel replies must come
# from the VIP).
ip netns exec "$R" iperf3 -s -p 5201 >/dev/null 2>&1 & pids+=($!)
ip netns exec "$R" "$tmp/l4bench" echo -tcp "0.0.0.0:7000" -udp "$REAL:7000" >/dev/null & pids+=($!)
ip netns exec "$R" "$tmp/l4bench" echo -tcp "127.0.0.1:7101" -udp "$VIP1:7000" >/dev/null & pids+=($!)
ip netns exec "$R" "$tmp/l4bench" echo -tcp "127.0.0.1:7102" -udp "$VIP2:7000" >/dev/null & pids+=($!)
ip netns exec "$R" "$tmp/strata" decap --dev eth0 --xdp-mode generic >/dev/null 2>&1 & pids+=($!)

cat >"$tmp/strata.yaml" <<YAML
admin:
  listen: "off"
log:
  level: warn
pools:
  - name: iperf
    backends: [{address: "$REAL:5201"}]
  - name: echo
    backends: [{address: "$REAL:7000"}]
l4:
  xdp: {devices: [eth0], mode: generic}
  services:
    - {name: dr-iperf, listen: "$VIP1:5201", pool: iperf, forward: dr}
    - {name: dr-echo, listen: "$VIP1:7000", pool: echo, forward: dr}
    - {name: dr-udp, protocol: udp, listen: "$VIP1:7000", pool: echo, forward: dr}
    - {name: tun-iperf, listen: "$VIP2:5201", pool: iperf, forward: tunnel}
    - {name: tun-echo, listen: "$VIP2:7000", pool: echo, forward: tunnel}
    - {name: tun-udp, protocol: udp, listen: "$VIP2:7000", pool: echo, forward: tunnel}
    - {name: iperf, listen: "$LBIP:15201", pool: iperf, scheduler: wlc}
    - {name: echo, listen: "$LBIP:17000", pool: echo, scheduler: wlc}
    - {name: udp, protocol: udp, listen: "$LBIP:17000", pool: echo, scheduler: wlc}
YAML
ip netns exec "$LB" "$tmp/strata" run -c "$tmp/strata.yaml" -watch=false 2>"$tmp/strata.log" & STRATA_PID=$!; pids+=($STRATA_PID)

cat >"$tmp/haproxy.cfg" <<CFG
global
  nbthread 2
  maxconn 4000
  pidfile $tmp/haproxy.pid
defaults
  mode tcp
  option splice-auto
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen iperf
  bind $LBIP:25201
  server s1 $REAL:5201
listen echo
  bind $LBIP:27000
  server s1 $REAL:7000
CFG
nsx "$LB" "$HAPROXY" -f "$tmp/haproxy.cfg" -D

for _ in $(seq 1 100); do
	nsx "$C" bash -c "exec 3<>/dev/tcp/$VIP1/7000" 2>/dev/null && nsx "$C" bash -c "exec 3<>/dev/tcp/$LBIP/27000" 2>/dev/null && break
	sleep 0.1
done
HAPROXY_PID=$(cat "$tmp/haproxy.pid")
echo 1 >/proc/sys/kernel/bpf_stats_enabled
PROG=$(ip -n "$LB" -d link show eth0 | sed -n 's/.*prog\/xdp id \([0-9]*\).*/\1/p' | head -1)
[ -n "$PROG" ] || { echo "xdp.sh: no XDP program on the balancer's eth0" >&2; cat "$tmp/strata.log" >&2; exit 1; }

# CPU accounting around one measurement: prints "ns/packet".
cpu_mark() { # cpu_mark MODE → state
	case $1 in
	dr|tunnel) "$BPFTOOL" prog show id "$PROG" | sed -n 's/.*run_time_ns \([0-9]*\) run_cnt \([0-9]*\).*/\1 \2/p' ;;
	proxy|haproxy)
		local pid=$STRATA_PID
		[ "$1" = haproxy ] && pid=$HAPROXY_PID
		local ticks pkts
		ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
		pkts=$(nsx "$LB" cat /sys/class/net/eth0/statistics/rx_packets /sys/class/net/eth0/statistics/tx_packets | paste -sd+ | bc)
		echo "$ticks $pkts" ;;
	*) echo "0 0" ;;
	esac
}
cpu_per_pkt() { # cpu_per_pkt MODE BEFORE AFTER
	case $1 in
	dr|tunnel) python3 -c "b=[int(x) for x in '$2'.split()]; a=[int(x) for x in '$3'.split()]; d=a[1]-b[1]; print('%.0f' % ((a[0]-b[0])/d) if d else 'n/a')" ;;
	proxy|haproxy) python3 -c "import os; b=[int(x) for x in '$2'.split()]; a=[int(x) for x in '$3'.split()]; d=a[1]-b[1]; hz=os.sysconf('SC_CLK_TCK'); print('%.0f' % ((a[0]-b[0])*1e9/hz/d) if d else 'n/a')" ;;
	*) echo - ;;
	esac
}

declare -A ADDR_TCP=([direct]="$REAL" [dr]="$VIP1" [tunnel]="$VIP2" [proxy]="$LBIP" [haproxy]="$LBIP")
declare -A PORT_IPERF=([direct]=5201 [dr]=5201 [tunnel]=5201 [proxy]=15201 [haproxy]=25201)
declare -A PORT_ECHO=([direct]=7000 [dr]=7000 [tunnel]=7000 [proxy]=17000 [haproxy]=27000)
MODES=(direct dr tunnel proxy haproxy)

gbits() { nsx "$C" iperf3 -c "${ADDR_TCP[$1]}" -p "${PORT_IPERF[$1]}" -P4 -t "$DURATION" -J | python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))'; }
cps() { nsx "$C" "$tmp/l4bench" conns -addr "${ADDR_TCP[$1]}:${PORT_ECHO[$1]}" -c 32 -d "${DURATION}s" | awk '{print $2}'; }
dps() { nsx "$C" "$tmp/l4bench" udp -addr "${ADDR_TCP[$1]}:${PORT_ECHO[$1]}" -c 16 -d "${DURATION}s" | awk '{print $2}'; }

declare -A R
measure() { # measure KIND MODE
	local before after v
	before=$(cpu_mark "$2")
	v=$("$1" "$2")
	after=$(cpu_mark "$2")
	add "$1_$2" "$v"
	add "cpu_$1_$2" "$(cpu_per_pkt "$2" "$before" "$after")"
}
for round in $(seq 1 "$ROUNDS"); do
	echo "round $round/$ROUNDS…" >&2
	for i in 0 1 2 3 4; do
		mode=${MODES[$(((i + round - 1) % 5))]}
		measure gbits "$mode"; sleep 1
	done
	for i in 0 1 2 3 4; do
		mode=${MODES[$(((i + round - 1) % 5))]}
		measure cps "$mode"; sleep 1
	done
	for mode in direct dr tunnel proxy; do
		measure dps "$mode"
	done
done

row() { # row LABEL KIND
	printf '%-36s' "$1"
	for mode in "${MODES[@]}"; do printf ' %9s' "$(m "$2_$mode")"; done
	echo
}
printf '\n%-36s' "median of $ROUNDS round(s)"; for mode in "${MODES[@]}"; do printf ' %9s' "$mode"; done; echo
row "iperf3 -P4 Gbit/s" gbits
row "  balancer ns/packet" cpu_gbits
row "new TCP conns/s (32 workers)" cps
row "  balancer ns/packet" cpu_cps
row "UDP datagrams/s (16 sockets)" dps
row "  balancer ns/packet" cpu_dps
echo
echo "dr / direct throughput:       $(ratio "$(m gbits_dr)" "$(m gbits_direct)")  (aim ≥ 0.8)"
echo "tunnel / direct throughput:   $(ratio "$(m gbits_tunnel)" "$(m gbits_direct)")"
echo "dr / proxy UDP datagrams/s:   $(ratio "$(m dps_dr)" "$(m dps_proxy)")  (aim ≥ 2)"
echo "dr / proxy conns/s:           $(ratio "$(m cps_dr)" "$(m cps_proxy)")"
echo "dr / haproxy throughput:      $(ratio "$(m gbits_dr)" "$(m gbits_haproxy)")"
