#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs one Go test binary (tests/go/<pkg>, built by berth_go_test) against a berthd of its own: a temporary
# root and state, the socket in BERTH_ADDRESS, berthd's log shown on failure, and a failure when berthd does
# not exit cleanly on SIGTERM. Extra berthd arguments come from BERTHD_ARGS (word-split).
# BTRFS_PLUGIN_DIR=<dir> (e.g. io.containerd.snapshotter.v1.btrfs) mounts a btrfs image of its own (a loop
# device, detached afterwards) at <root>/<dir> before berthd starts, for plugins that need their root on btrfs.
# usage: go_suite.sh BERTHD MODULE_DIR TEST_BINARY [go test flags...]
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
TEST=$3
shift 3
work=$(mktemp -d /tmp/berth-go-XXXXXX)
PID=""
LOOP=""
cleanup() {
    status=$?
    if [ -n "$PID" ] && kill "$PID" 2>/dev/null; then
        wait "$PID" || { echo "FAIL berthd exited with $? on SIGTERM"; status=1; }
    fi
    [ $status -eq 0 ] || tail -40 "$work/log" 2>/dev/null
    umount_under "$work"
    [ -z "$LOOP" ] || losetup -d "$LOOP" 2>/dev/null || true
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT
export BERTH_ADDRESS="$work/state/berthd.sock"
export BERTH_TEST_ROOT="$work/root"
export TMPDIR="$work/tmp"
mkdir -p "$TMPDIR"
if [ -n "${BTRFS_PLUGIN_DIR:-}" ]; then
    truncate -s 2G "$work/btrfs.img"
    mkfs.btrfs -q "$work/btrfs.img" >/dev/null
    LOOP=$(losetup --find --show "$work/btrfs.img")
    mkdir -p "$work/root/$BTRFS_PLUGIN_DIR"
    mount "$LOOP" "$work/root/$BTRFS_PLUGIN_DIR"
fi
# shellcheck disable=SC2086
"$BERTHD" --root "$work/root" --state "$work/state" --log-level warn ${BERTHD_ARGS:-} 2>"$work/log" &
PID=$!
i=0
until [ -S "$BERTH_ADDRESS" ] && ctr --address "$BERTH_ADDRESS" version >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -lt 200 ] || { echo "FAIL berthd did not start"; exit 1; }
    sleep 0.05
done
"$TEST" -test.v "$@"
