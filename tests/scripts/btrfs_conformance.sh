#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs the snapshotter conformance suite against the btrfs module on a loop-mounted btrfs image made here
# (truncate, mkfs.btrfs, mount -o loop) and torn down after.
# usage: btrfs_conformance.sh SUITE MODULE_SO
set -eu
suite=$1
so=$2
work=$(mktemp -d /tmp/berth-btrfs-XXXXXX)
cleanup() {
    umount "$work/mnt" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
truncate -s 2G "$work/image"
mkfs.btrfs -q "$work/image" >/dev/null
mkdir "$work/mnt"
mount -o loop "$work/image" "$work/mnt"
BERTH_SNAPSHOTTER_SO=$so BERTH_SNAPSHOTTER_ROOT=$work/mnt "$suite" --jobs=2
