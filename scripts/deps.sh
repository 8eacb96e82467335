#!/usr/bin/env bash
# Installs the Debian packages the tests drive (real clients and peers), when
# any is missing. `make test` runs it first; .ci/run runs `make test`.
# Packages are named once, here: add a tool's package when a test starts
# driving it.
set -euo pipefail

# tool on PATH (or file) -> Debian package that ships it
deps=(
	"curl curl"
	"nginx nginx-light"
	"/usr/lib/nginx/modules/ngx_stream_module.so libnginx-mod-stream"
	"haproxy haproxy"
	"dig dnsutils"
	"kdig knot-dnsutils"
	"iperf3 iperf3"
	"dnsperf dnsperf"
	"wrk wrk"
	"chromium chromium"
	"chromedriver chromium-driver"
	"/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf fonts-liberation"
	"ip iproute2"
	"clang clang"
	"/usr/include/bpf/bpf_helpers.h libbpf-dev"
	"knotd knot"
	"/usr/lib/frr/bgpd frr"
	"/usr/sbin/keepalived keepalived"
)

missing=()
for d in "${deps[@]}"; do
	tool=${d%% *} pkg=${d##* }
	if [[ $tool == /* ]]; then
		[[ -e $tool ]] || missing+=("$pkg")
	else
		command -v "$tool" >/dev/null 2>&1 || missing+=("$pkg")
	fi
done

if ((${#missing[@]} == 0)); then
	exit 0
fi
if [[ $(id -u) != 0 ]]; then
	echo "scripts/deps.sh: missing Debian packages: ${missing[*]}" >&2
	echo "scripts/deps.sh: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "scripts/deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
