#!/usr/bin/env bash
# Side-by-side registry benchmark: strata's registry, etcd and ZooKeeper on
# this machine, each measured by the same load generator
# (bench/registry/regbench, a module of its own so that the peers' client
# libraries stay out of strata's) with the same concurrency, each system
# through the client and the calls that service frameworks use:
#
#   reg    registrations/s, a new ephemeral instance each
#          strata: PUT /v1/registry/instances
#          etcd:   LeaseGrant + Put with the lease (gRPC resolver, Kratos, go-micro)
#          zk:     create of an ephemeral znode on the worker's session (Dubbo)
#   beat   heartbeats/s
#          strata: PUT /v1/registry/beat, HTTP/1.1 written and read by regbench itself
#                  on a kept-alive connection (a map write on the leader, no Raft entry)
#          etcd:   LeaseKeepAlive, one message on an open stream (the leader renews
#                  in memory, no Raft entry)
#          zk:     a session ping, 12 bytes on the session's connection, written and
#                  read by regbench itself (the server touches the session in memory,
#                  no transaction)
#   query  queries/s of one service's 10 instances
#          strata: GET /v1/registry/services/…; etcd: serializable prefix Get;
#          zk: getChildren — each answered from the server's own state
#   watch  one change (a new instance) pushed to SUBS subscribers, each on a
#          connection (session) of its own: p50/p99 over CHANGES changes of the
#          time from the write's acknowledgement to the LAST subscriber's
#          notification (strata: streaming watch; etcd: prefix watch; zk:
#          child watch, re-armed)
#
# Each system runs as a single server on 127.0.0.1 with its data on disk, in
# two modes (MODES):
#   durable  what each documents for production: fsync on every commit.
#            strata: registry.data on disk (Raft log in bolt, fsync per batch);
#            etcd: defaults (WAL fsync); zk: defaults (forceSync=yes).
#   fast     each system's fastest mode that still fsyncs before it answers:
#            strata: the same (it has no faster safe store; registry.data:
#            memory forgets on restart and is shown as "strata-mem", for
#            reference only); etcd: --backend-batch-interval=100ms,
#            --backend-batch-limit=10000, --snapshot-count=100000 (the WAL
#            still fsyncs; --unsafe-no-fsync is not safe and not used);
#            zk: forceSync=yes with zookeeper.flushDelay=2ms and
#            maxBatchSize=1000 (group commit of fsyncs), snapCount=1000000.
# Rounds are interleaved (strata, etcd, zk, strata, …); the medians and the
# ratios strata/etcd and strata/zk are printed at the end, and then each
# server's own CPU time per registration, heartbeat and query (user +
# system of its process over the measurement, divided by the operations),
# which the load generator's share of the two cores does not move.
#
# It installs nothing: it needs the Debian packages etcd-server and
# zookeeper (and a Java runtime, which zookeeper brings).
#
# Environment:
#   DURATION  seconds per reg/beat/query measurement (default 5)
#   CONC      concurrent clients (default 32)
#   SUBS      subscribers for watch (default 1000)
#   CHANGES   changes for watch (default 50)
#   ROUNDS    interleaved rounds (default 1)
#   MODES     "durable fast" (default)
#   SYSTEMS   "strata etcd zk" (default)
set -euo pipefail

DURATION=${DURATION:-5}
CONC=${CONC:-32}
SUBS=${SUBS:-1000}
CHANGES=${CHANGES:-50}
ROUNDS=${ROUNDS:-1}
MODES=${MODES:-durable fast}
SYSTEMS=${SYSTEMS:-strata etcd zk}

root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/bench/lib.sh"
for s in $SYSTEMS; do
	case $s in
	etcd) need_tools etcd-server etcd ;;
	zk)
		need_tools "zookeeper (and a Java runtime)" java
		[ -r /usr/share/java/zookeeper.jar ] || {
			echo "run.sh: /usr/share/java/zookeeper.jar not found; install the Debian package zookeeper" >&2
			exit 1
		}
		;;
	esac
done
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

(cd "$root" && go build -o "$tmp/strata" ./cmd/strata)
(cd "$root/bench/registry" && go build -o "$tmp/regbench" ./regbench)
ulimit -n 65536 2>/dev/null || true

# start_strata MODE sets addr and pid. strata-mem is registry.data: memory.
start_strata() {
	local sp rp data=$tmp/strata-data-$RANDOM
	[ "$1" = mem ] && data=memory
	sp=$(free_port)
	rp=$(free_port)
	cat >"$tmp/strata.yaml" <<YAML
admin:
  listen: "off"
log:
  level: warn
registry:
  listen: 127.0.0.1:$sp
  raft_listen: 127.0.0.1:$rp
  data: $data
  unhealthy_after: 10m
  remove_after: 10m
  max_watchers_per_client: 4096
  nacos_grpc:
    listen: "off"
YAML
	"$tmp/strata" run -c "$tmp/strata.yaml" 2>>"$tmp/strata.log" &
	pid=$!
	pids+=("$pid")
	addr=127.0.0.1:$sp
	wait_http "http://$addr/v1/registry/cluster"
	for _ in $(seq 1 100); do
		curl -fsS "http://$addr/v1/registry/cluster" | grep -q '"leader":"[^"]' && return 0
		sleep 0.1
	done
}

start_etcd() { # MODE
	local cp pp extra=()
	cp=$(free_port)
	pp=$(free_port)
	[ "$1" = fast ] && extra=(--backend-batch-interval=100ms --backend-batch-limit=10000 --snapshot-count=100000)
	etcd --name bench --data-dir "$tmp/etcd-$RANDOM" --log-level warn --logger zap \
		--listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
		--listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
		--initial-cluster "bench=http://127.0.0.1:$pp" "${extra[@]}" >>"$tmp/etcd.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	addr=127.0.0.1:$cp
	wait_http "http://$addr/health"
}

start_zk() { # MODE
	local zp dir=$tmp/zk-$RANDOM props=()
	zp=$(free_port)
	mkdir -p "$dir"
	cat >"$dir/zoo.cfg" <<CFG
tickTime=2000
dataDir=$dir/data
clientPortAddress=127.0.0.1
clientPort=$zp
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok
CFG
	if [ "$1" = fast ]; then
		echo snapCount=1000000 >>"$dir/zoo.cfg"
		props=(-Dzookeeper.flushDelay=2 -Dzookeeper.maxBatchSize=1000)
	fi
	java -Xmx2g "${props[@]}" -Dzookeeper.log.dir="$dir" -cp "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar" \
		org.apache.zookeeper.server.ZooKeeperServerMain "$dir/zoo.cfg" >>"$tmp/zk.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	addr=127.0.0.1:$zp
	for _ in $(seq 1 300); do
		[ "$(echo ruok | timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$zp; cat >&3; cat <&3" 2>/dev/null)" = imok ] && return 0
		sleep 0.1
	done
	echo "run.sh: zookeeper did not come up; see $tmp/zk.log" >&2
	tail -20 "$tmp/zk.log" >&2
	exit 1
}

stop() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }

# val LINE KEY prints KEY's value from a regbench line.
val() { echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'; }

# cpu_ticks PID prints the CPU time (user + system, in clock ticks) the
# server process has used: the server's own cost per operation does not
# depend on how much of the two cores the load generator takes.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

declare -A R
rb() { # label sys mode args... : runs regbench, prints and keeps its line
	local label=$1 sys=$2 m=$3 line t0 t1 cpu
	shift 3
	t0=$(cpu_ticks "$pid")
	line=$("$tmp/regbench" -target "$sys" -addr "$addr" -mode "$m" "$@") || {
		echo "$label $m: failed" >&2
		return 0
	}
	t1=$(cpu_ticks "$pid")
	case $m in
	watch)
		echo "$label $line"
		add "$label/last_p50" "$(val "$line" last_p50_ms)"
		add "$label/last_p99" "$(val "$line" last_p99_ms)"
		;;
	*)
		cpu=$(awk -v d=$((t1 - t0)) -v hz="$HZ" -v n="$(val "$line" ops)" 'BEGIN {if (n > 0) printf "%.1f", d * 1e6 / hz / n; else print "n/a"}')
		echo "$label $line server_cpu_us_per_op=$cpu"
		add "$label/$m" "$(val "$line" per_sec)"
		add "$label/${m}_cpu" "$cpu"
		;;
	esac
}

bench_one() { # label sys
	local label=$1 sys=$2
	rb "$label" "$sys" reg -c "$CONC" -d "${DURATION}s"
	rb "$label" "$sys" beat -c "$CONC" -d "${DURATION}s"
	rb "$label" "$sys" query -c "$CONC" -d "${DURATION}s"
	rb "$label" "$sys" watch -subs "$SUBS" -changes "$CHANGES"
}

echo "# $(date -u +%FT%TZ) load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores; etcd $(etcd --version | awk '/etcd Version/ {print $3}'), zookeeper $(dpkg-query -W -f '${Version}' zookeeper 2>/dev/null || echo ?)"
for round in $(seq 1 "$ROUNDS"); do
	for mode in $MODES; do
		for sys in $SYSTEMS; do
			echo "# round $round, $mode: $sys (load $(cut -d' ' -f1 /proc/loadavg))"
			"start_$sys" "$mode"
			bench_one "$sys/$mode" "$sys"
			stop
			if [ "$sys" = strata ] && [ "$mode" = fast ]; then
				echo "# round $round, reference: strata-mem (registry.data: memory, not durable)"
				start_strata mem
				bench_one "strata-mem/fast" strata
				stop
			fi
		done
	done
done

echo "# medians of $ROUNDS round(s); ratio = strata / peer (for push latency, peer / strata: above 1 means strata is faster)"
printf '%-8s %-14s %10s %10s %10s %8s %8s\n' mode system reg/s beat/s query/s p50_ms p99_ms
for mode in $MODES; do
	for sys in $SYSTEMS $([ "$mode" = fast ] && echo strata-mem); do
		case " $SYSTEMS " in *" strata "*) ;; *) [ "$sys" = strata-mem ] && continue ;; esac
		l=$sys/$mode
		printf '%-8s %-14s %10s %10s %10s %8s %8s\n' "$mode" "$sys" "$(m "$l/reg")" "$(m "$l/beat")" "$(m "$l/query")" "$(m "$l/last_p50")" "$(m "$l/last_p99")"
	done
	for peer in etcd zk; do
		case " $SYSTEMS " in *" $peer "*) ;; *) continue ;; esac
		s=strata/$mode p=$peer/$mode
		echo "ratio $mode strata/$peer: reg $(ratio "$(m "$s/reg")" "$(m "$p/reg")") beat $(ratio "$(m "$s/beat")" "$(m "$p/beat")") query $(ratio "$(m "$s/query")" "$(m "$p/query")") push_p50 $(ratio "$(m "$p/last_p50")" "$(m "$s/last_p50")") push_p99 $(ratio "$(m "$p/last_p99")" "$(m "$s/last_p99")")"
	done
done
echo "# the server's own CPU per operation (user + system, µs), medians; ratio = peer / strata: above 1 means strata spends less"
printf '%-8s %-14s %10s %10s %10s\n' mode system reg beat query
for mode in $MODES; do
	for sys in $SYSTEMS $([ "$mode" = fast ] && echo strata-mem); do
		case " $SYSTEMS " in *" strata "*) ;; *) [ "$sys" = strata-mem ] && continue ;; esac
		l=$sys/$mode
		printf '%-8s %-14s %10s %10s %10s\n' "$mode" "$sys" "$(m "$l/reg_cpu")" "$(m "$l/beat_cpu")" "$(m "$l/query_cpu")"
	done
	for peer in etcd zk; do
		case " $SYSTEMS " in *" $peer "*) ;; *) continue ;; esac
		s=strata/$mode p=$peer/$mode
		echo "cpu ratio $mode $peer/strata: reg $(ratio "$(m "$p/reg_cpu")" "$(m "$s/reg_cpu")") beat $(ratio "$(m "$p/beat_cpu")" "$(m "$s/beat_cpu")") query $(ratio "$(m "$p/query_cpu")" "$(m "$s/query_cpu")")"
	done
done
