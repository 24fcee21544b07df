#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `ctr snapshots --snapshotter btrfs ...` against berthd, whose btrfs plugin root is a loop-mounted btrfs
# image made here; without it the plugin reports skip, as containerd's does.
# usage: ctr_btrfs.sh BERTHD MODULE_DIR
set -eu
BERTHD=$1
export BERTH_MODULE_DIR=$2
work=$(mktemp -d /tmp/berth-ctr-btrfs-XXXXXX)
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    umount "$work/mnt" 2>/dev/null || true
    umount "$work/root/io.containerd.snapshotter.v1.btrfs" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
CTR="ctr --address $work/state/berthd.sock"

# first without btrfs: skip, with containerd's reason
"$BERTHD" modules --init --root "$work/root" --state "$work/state" | grep -q "io.containerd.snapshotter.v1.btrfs .*skip .*must be a btrfs filesystem"

truncate -s 1G "$work/image"
mkfs.btrfs -q "$work/image" >/dev/null
mkdir -p "$work/root/io.containerd.snapshotter.v1.btrfs" "$work/mnt"
mount -o loop "$work/image" "$work/root/io.containerd.snapshotter.v1.btrfs"
# no background collection: a view carries no gc.root, and collecting is not this test's subject
"$BERTHD" --root "$work/root" --state "$work/state" --log-level warn \
    --set plugins.io.containerd.gc.v1.scheduler.schedule_delay_ms=0 2>"$work/log" &
PID=$!
i=0
until $CTR version >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 200 ] || exit 1; sleep 0.05; done

$CTR plugins ls | grep -q "io.containerd.snapshotter.v1 .*btrfs .*ok"
S="$CTR snapshots --snapshotter btrfs"
mount_at() { # key: mounts it at $work/mnt, failing loudly when ctr has no mount to give
    cmd=$($S mounts "$work/mnt" "$1")
    [ -n "$cmd" ] || { echo "FAIL no mounts for $1"; exit 1; }
    eval "$cmd"
}
$S prepare base
mount_at base
echo layered >"$work/mnt/file"
umount "$work/mnt"
$S commit base-c base
$S prepare child base-c
mount_at child
[ "$(cat "$work/mnt/file")" = layered ]
umount "$work/mnt"
$S view look base-c
mount_at look
if touch "$work/mnt/new" 2>/dev/null; then echo "FAIL a btrfs view is writable"; exit 1; fi
umount "$work/mnt"
$S ls | grep -q "child .*base-c .*Active"
$S usage child | grep -q child
if $S rm base-c 2>/dev/null; then echo "FAIL removed a snapshot with children"; exit 1; fi
$S rm child look base-c
[ -z "$($S ls | tail -n +2)" ]
echo "ctr snapshots on btrfs: ok"
