#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/snapshot: Prepare+Commit+Remove cycles per second through the Snapshots API, one call at a time:
# berthd on overlayfs and on btrfs (a loop-mounted image made here), and Debian's containerd on overlayfs,
# in the same run; the two overlayfs runs take turns in slices so a busy machine weighs on both alike.
# Target: berthd >= 2x containerd. Each snapshot carries containerd.io/gc.root so the
# collector, which runs after every Remove, leaves the cycle's own snapshots alone.
# usage: bench/snapshot.sh [BUILD_DIR] [CYCLES]
set -eu
BUILD=${1:-build}
CYCLES=${2:-300}
BERTHD=$BUILD/bin/berthd
. "$(dirname "$0")/lib.sh"
# berthd's btrfs plugin needs its root on btrfs: mount an image there before berthd starts
truncate -s 1G "$WORK/btrfs.img"
mkfs.btrfs -q "$WORK/btrfs.img" >/dev/null
mkdir -p "$WORK/b/root/io.containerd.snapshotter.v1.btrfs"
mount -o loop "$WORK/btrfs.img" "$WORK/b/root/io.containerd.snapshotter.v1.btrfs"
trap 'bench_cleanup; umount "$WORK/b/root/io.containerd.snapshotter.v1.btrfs" 2>/dev/null; rm -rf "$WORK"' EXIT
bench_cleanup() {
    [ -n "$BPID" ] && kill "$BPID" 2>/dev/null && wait "$BPID" 2>/dev/null
    [ -n "$CPID" ] && kill "$CPID" 2>/dev/null && wait "$CPID" 2>/dev/null
    BPID=""
    CPID=""
}
start_daemons
sleep 0.3
echo "Prepare+Commit+Remove, $CYCLES cycles, one call at a time over one connection"
# berthd and containerd overlayfs take turns in 6 slices, so a busy machine slows both alike
slices=6
per=$((CYCLES / slices))
bt=0
ct=0
i=0
while [ $i -lt $slices ]; do
    bt=$(echo "$bt $("$BUILD/bin/snapcycle" "$BSOCK" overlayfs "$per")" | awk '{ print $1 + $5 }')
    ct=$(echo "$ct $("$BUILD/bin/snapcycle" "$CSOCK" overlayfs "$per")" | awk '{ print $1 + $5 }')
    i=$((i + 1))
done
n=$((per * slices))
rate() { echo "$1 $n" | awk '{ printf "%d cycles in %.3f s: %.0f cycles/s", $2, $1, $2 / $1 }'; }
printf '  %-24s %s\n' "berthd overlayfs" "$(rate "$bt")"
printf '  %-24s %s\n' "berthd btrfs" "$("$BUILD/bin/snapcycle" "$BSOCK" btrfs "$CYCLES")"
printf '  %-24s %s\n' "containerd overlayfs" "$(rate "$ct")"
echo "$bt $ct" | awk '{ printf "  berthd/containerd overlayfs: %.2fx (target >= 2x)\n", $2 / $1 }'
