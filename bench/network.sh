#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/network: what a network costs a container. `ctr run --rm IMAGE id /bin/true` with the label
# io.berth.network=<the bench's network> against the same without it, RUNS rounds each (interleaved, so
# drift hits both alike), on a private berthd whose default network has its own bridge (bb<pid>) and subnet
# (10.232.<x>.0/24). Prints each side's median and mean and the difference per container: the CNI bridge
# ADD (bridge, host-local, portmap, firewall as the network module configures them; FIREWALL=false leaves the
# firewall plugin out) and DEL, the netns and the endpoint files; and, from berthd's log, the network
# module's setup and teardown alone.
# Target (issue 14): <= 15 ms per container.
# usage: [FIREWALL=false] bench/network.sh [BUILD_DIR] [RUNS]
set -eu
BUILD=${1:-build}
RUNS=${2:-20}
BERTHD=$BUILD/bin/berthd
export BERTH_MODULE_DIR=$BUILD/lib/berth/modules
WORK=$(mktemp -d /tmp/berth-bench-XXXXXX)
BR=bb$$
NET=10.232.$(($$ % 200 + 20))
BPID=""
cleanup() {
    [ -n "$BPID" ] && kill "$BPID" 2>/dev/null && wait "$BPID" 2>/dev/null
    for t in nat filter; do
        iptables-save -t $t 2>/dev/null | grep -F -- "$NET." | sed -n 's/^-A /-D /p' |
            while read -r rule; do eval "iptables -t $t $rule" 2>/dev/null || true; done
    done
    awk -v w="$WORK" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r |
        while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
    ip link del "$BR" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
[ -z "${KEEP_LOG:-}" ] || trap 'cp "$WORK/berthd.log" "$KEEP_LOG"; cleanup' EXIT
mkdir -p "$WORK/net.d"
cat >"$WORK/berthd.yaml" <<EOF
version: 1
plugins:
  io.berth.network.v1.cni:
    conf_dir: $WORK/net.d
    default_network: {name: bench, bridge: $BR, subnet: $NET.0/24, firewall: ${FIREWALL:-true}}
EOF
"$BERTHD" --config "$WORK/berthd.yaml" --root "$WORK/root" --state "$WORK/state" --log-level ${LOG_LEVEL:-debug} \
    2>"$WORK/berthd.log" &
BPID=$!
CTR="ctr --address $WORK/state/berthd.sock"
i=0
until $CTR version >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 200 ] || { echo "berthd did not start"; cat "$WORK/berthd.log"; exit 1; }; sleep 0.05
done
sh "$(dirname "$0")/../tests/fixtures/images/build-image.sh" busybox "$WORK/fx" >/dev/null
$CTR images import "$WORK/fx/busybox-oci.tar" >/dev/null
IMG=docker.io/library/berth-busybox:latest

ms() { # ID [LABELS...] -> the run's wall time in ms
    id=$1
    shift
    s=$(date +%s%N)
    $CTR run --rm "$@" "$IMG" "$id" /bin/true >/dev/null 2>"$WORK/err" || { cat "$WORK/err"; exit 1; }
    e=$(date +%s%N)
    echo $(((e - s) / 1000))
}
# one of each first: the bridge, the chains and the page cache are made outside the measurement
ms warm0 >/dev/null
ms warm1 --label io.berth.network=bench >/dev/null
: >"$WORK/plain"
: >"$WORK/net"
i=0
while [ $i -lt "$RUNS" ]; do
    ms "p$i" >>"$WORK/plain"
    ms "n$i" --label io.berth.network=bench >>"$WORK/net"
    i=$((i + 1))
done
stats() { # FILE -> "median mean" in ms
    sort -n "$1" | awk '{ v[NR] = $1; s += $1 } END {
        m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.1f %.1f", m / 1000, s / NR / 1000 }'
}
set -- $(stats "$WORK/plain") $(stats "$WORK/net")
echo "ctr run --rm /bin/true, $RUNS rounds each (ms)"
printf '  %-34s median %7s  mean %7s\n' "no network (loopback only)" "$1" "$2" \
    "io.berth.network=bench (CNI bridge)" "$3" "$4"
awk -v a="$1" -v b="$3" -v c="$2" -v d="$4" 'BEGIN {
    printf "  network cost per container: %.1f ms (median), %.1f ms (mean); target <= 15 ms: %s\n",
        b - a, d - c, (b - a <= 15 ? "met" : "not met") }'
median_of() { # WHAT -> the median of berthd's "<WHAT> ... in N ms" lines of the networked runs
    grep -E "task default/n[0-9]+: endpoint $1" "$WORK/berthd.log" | sed 's/.* in \([0-9.]*\) ms.*/\1/' |
        sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
printf '  of which the network module: setup (ADD) %s ms, teardown (DEL) %s ms (medians)\n' \
    "$(median_of "set up")" "$(median_of "teardown")"
