#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Reloads racing with calls: berthd with a running container gets ROUNDS reloads, each toggling a different
# set of modules (network, volume, CRI, transfer, runtime, the runtime's section), as fast as they finish,
# while clients keep calling the services being swapped (ps, exec, images, plugins, events). Calls may be
# refused while their service is away (Unavailable, or unknown service); berthd must never crash, hang or
# leak (the sanitizer build checks), and once everything is enabled again the container is the same one and
# answers exec.
# usage: reload_stress.sh BERTHD MODULE_DIR SOURCE_DIR BERTH [ROUNDS]
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
SRC=$3
B=$4
ROUNDS=${5:-24}
for need in /usr/lib/cni/bridge /usr/lib/cni/host-local ctr runc; do
    command -v "$need" >/dev/null 2>&1 || [ -x "$need" ] || { echo "FAIL $need is missing"; exit 1; }
done
work=$(mktemp -d /tmp/berth-rstress-XXXXXX)
BR=bs$$
NET=10.230.$(($$ % 200 + 20))
export BERTH_ADDRESS="$work/state/berthd.sock" BERTH_DATA_ROOT="$work/cli" BERTH_FIFO_DIR="$work/fifo"
unset BERTH_NAMESPACE CONTAINERD_NAMESPACE
# its own name: the cgroup is /<namespace>/<name>, shared with any other test's container of that name
CN=rs$$
C="ctr --address $work/state/berthd.sock"
CLIENTS=""

cleanup() {
    status=$?
    for p in $CLIENTS; do kill "$p" 2>/dev/null || true; done
    for p in $CLIENTS; do wait "$p" 2>/dev/null || true; done
    cli_teardown
    exit $status
}
trap cleanup EXIT

reload_config "$work/berthd.yaml" ""
start_berthd_cli "$work/berthd.yaml" info
sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$work/fx" >/dev/null
$B import -q "$work/fx/busybox-oci.tar" >/dev/null || fail "import"
$B run -d --name $CN berth-busybox sleep 1000 >/dev/null || fail "run"
CPID=$($C -n default tasks ls | awk -v n="$CN" '$1 == n { print $2 }')

# clients: each loops over calls into services that come and go; their errors are expected and ignored
client() {
    while :; do "$@" >/dev/null 2>&1 || true; done
}
client $B ps & CLIENTS="$CLIENTS $!"
client $B exec $CN true & CLIENTS="$CLIENTS $!"
client $C plugins ls & CLIENTS="$CLIENTS $!"
client sh -c "$C -n default images ls; $C -n default snapshots ls; $B volume ls; $B network ls" &
CLIENTS="$CLIENTS $!"
$C events >"$work/events" 2>&1 &
CLIENTS="$CLIENTS $!"

sets="io.berth.network.v1.cni
io.berth.volume.v1.local,io.berth.cri.v1.cri
io.containerd.transfer.v1.local
io.containerd.runtime.v2.task
io.berth.network.v1.cni,io.containerd.runtime.v2.task,io.containerd.transfer.v1.local
"
r=0
while [ $r -lt "$ROUNDS" ]; do
    set=$(echo "$sets" | sed -n "$((r % 5 + 1))p")
    if [ $((r % 3)) = 2 ]; then
        reload_config "$work/berthd.yaml" "$set" "  io.containerd.runtime.v2.task: {runc: $(command -v runc)}"
    else
        reload_config "$work/berthd.yaml" "$set"
    fi
    reload
    reload_config "$work/berthd.yaml" ""
    reload
    r=$((r + 1))
done
for p in $CLIENTS; do kill "$p" 2>/dev/null || true; done
for p in $CLIENTS; do wait "$p" 2>/dev/null || true; done
CLIENTS=""
kill -0 "$PID" 2>/dev/null || fail "berthd died"
grep -q "0 failed" "$work/log" || fail "no reload ended without failures"
last=$(grep 'msg="reloaded:' "$work/log" | tail -1)
echo "$last" | grep -q " 0 failed" || fail "the last reload (all enabled) failed: $last"
kill -0 "$CPID" 2>/dev/null || fail "the container's process is gone"
[ "$($B exec $CN echo alive 2>&1)" = alive ] || fail "exec after the reloads: $($B exec $CN echo alive 2>&1)"
$B rm -f $CN >/dev/null || fail "rm -f $CN"
echo "ok: $reloads reloads racing with calls; berthd and the container survived"
