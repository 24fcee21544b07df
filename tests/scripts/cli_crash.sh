#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# kill -9 of the berth CLI in the middle of its multi-call operations (run -d, create, run --rm, rm -f),
# at delays spread over each call, against a real berthd, runc and CNI. A killed client may leave garbage,
# never a dangling reference. After every kill:
#   - `berth ps -a` still works, and every container record names a snapshot that exists;
#   - every mounted rootfs belongs to a listed task;
#   - `berth rm -f` removes whatever the killed call left, and its name can be used again at once;
# and at the end, once the leases the killed calls held are deleted (`ctr leases rm --sync`): no active
# snapshot, no rootfs mount, no netns, no veth on the test's bridge and no shim is left.
# usage: cli_crash.sh BERTHD MODULE_DIR SOURCE_DIR BERTH [ROUNDS]
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
SRC=$3
B=$4
ROUNDS=${5:-8}
for need in /usr/lib/cni/bridge /usr/lib/cni/host-local ctr; do
    command -v "$need" >/dev/null 2>&1 || [ -x "$need" ] || { echo "FAIL $need is missing"; exit 1; }
done
work=$(mktemp -d /tmp/berth-clicrash-XXXXXX)
BR=bk$$
NET=10.232.$(($$ % 200 + 20))
export BERTH_ADDRESS="$work/state/berthd.sock" BERTH_DATA_ROOT="$work/cli" BERTH_FIFO_DIR="$work/fifo"
unset BERTH_NAMESPACE CONTAINERD_NAMESPACE
C="ctr --address $work/state/berthd.sock -n default"
IMG=berth-busybox

cleanup() {
    status=$?
    cli_teardown
    exit $status
}
trap cleanup EXIT

bridge_config "$work/berthd.yaml" "$BR" "$NET"
start_berthd_cli "$work/berthd.yaml"
sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$work/fx" >/dev/null
$B import -q "$work/fx/busybox-oci.tar" >/dev/null || fail "import"

# check_refs WHEN: the invariants that must hold whatever the client was doing when it died
check_refs() {
    $B ps -a >/dev/null 2>"$work/err" || fail "$1: ps -a: $(cat "$work/err")"
    $C snapshots ls | awk 'NR > 1 { print $1 }' >"$work/snaps"
    for id in $($C containers ls -q); do
        key=$($C containers info "$id" | sed -n 's/.*"SnapshotKey": "\([^"]*\)".*/\1/p')
        [ -n "$key" ] || fail "$1: container $id names no snapshot"
        grep -qxF "$key" "$work/snaps" || fail "$1: container $id names snapshot $key, which does not exist"
    done
    $C tasks ls -q >"$work/tasks" 2>/dev/null || true
    for m in $(awk -v w="$work/state/io.containerd.runtime.v2.task/default/" \
        'index($2, w) == 1 && $2 ~ /\/rootfs$/ { print $2 }' /proc/mounts); do
        id=$(basename "$(dirname "$m")")
        grep -qxF "$id" "$work/tasks" || fail "$1: rootfs of $id is mounted, but no such task is listed"
    done
}

# killed NAME DELAY CMD...: runs CMD, kills it with SIGKILL after DELAY seconds (if still running)
killed() {
    what=$1 delay=$2
    shift 2
    "$@" >/dev/null 2>&1 &
    cp=$!
    sleep "$delay"
    kill -9 "$cp" 2>/dev/null || true
    wait "$cp" 2>/dev/null || true
    check_refs "$what killed after ${delay}s"
}

# clear_name NAME: rm -f of whatever the killed call left, then the name is free
clear_name() {
    if $B ps -a -q | grep -qx "$1"; then
        $B rm -f "$1" >/dev/null 2>"$work/err" || fail "rm -f $1 after a kill: $(cat "$work/err")"
    fi
    ! $B ps -a -q | grep -qx "$1" || fail "rm -f $1: still listed"
}

r=0
while [ $r -lt "$ROUNDS" ]; do
    # delays spread over a call's duration: 0 .. ~0.4 s (a run -d here takes 0.1-0.3 s)
    d=$(awk -v r=$r -v n="$ROUNDS" 'BEGIN { printf "%.3f", 0.01 + 0.4 * r / n }')
    killed "run -d" "$d" $B run -d --name "k$r" -v "vol$r:/data" $IMG sleep 600
    [ $((r % 2)) -eq 0 ] || clear_name "k$r"
    killed "create" "$d" $B create --name "c$r" $IMG true
    clear_name "c$r"
    killed "run --rm" "$d" $B run --rm --name "rr$r" $IMG sleep 600
    clear_name "rr$r"
    if $B ps -a -q | grep -qx "k$r"; then
        killed "rm -f" "$(awk -v d="$d" 'BEGIN { printf "%.3f", d / 4 }')" $B rm -f "k$r"
        clear_name "k$r"
    fi
    # the name is usable again at once
    $B run -d --name "k$r" $IMG true >/dev/null 2>"$work/err" || fail "run -d k$r after the kills: $(cat "$work/err")"
    $B rm -f "k$r" >/dev/null 2>"$work/err" || fail "rm -f k$r: $(cat "$work/err")"
    r=$((r + 1))
done

# what the killed calls left is garbage their leases hold: delete the leases, and none of it may remain
for l in $($C leases ls -q); do $C leases rm --sync "$l" >/dev/null || fail "leases rm $l"; done
check_refs "the end"
[ -z "$($C containers ls -q)" ] || fail "containers left: $($C containers ls -q)"
$C snapshots ls | awk 'NR > 1 && $NF != "Committed"' >"$work/active"
[ ! -s "$work/active" ] || fail "active snapshots left after the leases were deleted: $(cat "$work/active")"
awk -v w="$work/" 'index($2, w) == 1 && $2 ~ /rootfs$|netns/ { print $2 }' /proc/mounts >"$work/mounts"
[ ! -s "$work/mounts" ] || fail "mounts left: $(cat "$work/mounts")"
[ -z "$(ls "/sys/class/net/$BR/brif" 2>/dev/null)" ] || fail "veths left on $BR: $(ls "/sys/class/net/$BR/brif")"
! pgrep -f "berth-shim .* $work/" >/dev/null || fail "shims left: $(pgrep -af "berth-shim .* $work/")"
echo "ok: $ROUNDS rounds of kill -9 of run -d, create, run --rm and rm -f"
