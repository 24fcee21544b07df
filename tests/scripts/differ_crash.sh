#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# images.differ_crash: the walking differ mounts each layer's snapshot on <state>/io.containerd.differ.v1.
# walking/mnt-* while it applies the layer; a kill -9 of berthd then leaves that mount behind, and the
# differ's init must unmount and remove it. Two ways in:
#   1. deterministic: after a clean stop, a mnt-x with a bind mount on it (and a mnt-y without one) are put
#      in the differ's state dir; after a start neither is there and nothing of the test is mounted;
#   2. a real crash: kill -9 of berthd as soon as a mnt-* shows up in /proc/mounts during `ctr images
#      import` of a multi-layer image; after a restart nothing of the test is mounted under the state dir,
#      and the import succeeds again (whether the kill landed inside an apply is printed: timing).
# usage: differ_crash.sh BERTHD MODULE_DIR SOURCE_DIR
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
SRC=$3
work=$(mktemp -d /tmp/berth-differ-crash-XXXXXX)
PID=""
cleanup() {
    status=$?
    if [ -n "$PID" ]; then
        kill -9 "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    umount_under "$work"
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT
CTR="ctr --address $work/state/berthd.sock"
DIFFER=$work/state/io.containerd.differ.v1.walking
IMG=docker.io/library/berth-big:latest
start() {
    "$BERTHD" --root "$work/root" --state "$work/state" --log-level warn 2>>"$work/log" &
    PID=$!
    i=0
    until $CTR version >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 200 ] || fail "berthd did not start"; sleep 0.05; done
}
stop() {
    kill "$PID"
    wait "$PID" || fail "berthd exited with $? on SIGTERM"
    PID=""
}
mounted() { awk -v w="$1" 'index($2, w) == 1' /proc/mounts | grep -q .; }

sh "$SRC/tests/fixtures/images/build-image.sh" big "$work/fx" 40 >/dev/null

# --- 1. deterministic: leftovers put there by hand while berthd is stopped ---------------------------------
start
$CTR images ls >/dev/null || fail "ctr images ls" # the differ waits for its module's first use
stop
[ -d "$DIFFER" ] || fail "the differ made no state dir $DIFFER"
mkdir -p "$DIFFER/mnt-x" "$DIFFER/mnt-y" "$work/bindsrc"
echo left >"$work/bindsrc/file"
mount --bind "$work/bindsrc" "$DIFFER/mnt-x"
mounted "$DIFFER/mnt-x" || fail "the test's bind mount did not happen"
start
! mounted "$DIFFER" || fail "a leftover mount under the differ's state dir stayed: $(grep "$DIFFER" /proc/mounts)"
[ ! -e "$DIFFER/mnt-x" ] && [ ! -e "$DIFFER/mnt-y" ] || fail "leftover mount points stayed: $(ls "$DIFFER")"
[ "$(cat "$work/bindsrc/file")" = left ] || fail "the bind mount's source was touched"
grep -q "leftover mount point $DIFFER/mnt-x" "$work/log" || fail "the removal was not logged"

# --- 2. a kill -9 while a layer is applied ----------------------------------------------------------------
caught=0
for attempt in 1 2 3; do
    $CTR images rm --sync "$IMG" >/dev/null 2>&1 || true
    $CTR images import "$work/fx/big-oci.tar" >/dev/null 2>&1 &
    IMPORT=$!
    killed=0
    i=0
    while kill -0 "$IMPORT" 2>/dev/null && [ $i -lt 20000 ]; do
        if mounted "$DIFFER/mnt-"; then
            kill -9 "$PID"
            killed=1
            caught=$((caught + 1))
            break
        fi
        i=$((i + 1))
    done
    wait "$IMPORT" 2>/dev/null || true
    if [ $killed -eq 1 ]; then
        wait "$PID" 2>/dev/null || true
        PID=""
        start
        ! mounted "$DIFFER" || fail "attempt $attempt: a mount under the differ's state dir survived the restart"
        [ -z "$(ls "$DIFFER")" ] || fail "attempt $attempt: leftovers in $DIFFER: $(ls "$DIFFER")"
    fi
done
echo "kill -9 during an apply: $caught of 3 attempts"
$CTR images import "$work/fx/big-oci.tar" >/dev/null || fail "the import after the crashes"
$CTR images check | grep "$IMG" | grep -q complete || fail "the image is not complete: $($CTR images check)"
$CTR images rm --sync "$IMG" >/dev/null
stop
! mounted "$work" || fail "mounts left: $(grep "$work" /proc/mounts)"
echo "differ crash: ok"
