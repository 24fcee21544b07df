#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/images: `ctr images import` (with unpack into overlayfs) of the ~100 MB, 5-layer fixture image into
# berthd and, in the same run, into Debian's containerd (private roots), next to the floor: sha256 of every
# layer blob plus `tar -xzf` of every layer into one directory. Target: berthd <= 0.5x containerd's time.
# usage: bench/images.sh [BUILD_DIR] [MB]
set -eu
BUILD=${1:-build}
MB=${2:-100}
BERTHD=$BUILD/bin/berthd
. "$(dirname "$0")/lib.sh"
sh "$(dirname "$0")/../tests/fixtures/images/build-image.sh" big "$WORK/fx" "$MB" >/dev/null
start_daemons

seconds() { # command... -> elapsed seconds (3 decimals)
    s=$(date +%s.%N)
    "$@" >/dev/null
    e=$(date +%s.%N)
    echo "$s $e" | awk '{printf "%.3f", $2 - $1}'
}
floor() {
    rm -rf "$WORK/floor" && mkdir "$WORK/floor"
    for layer in $(sed -n 's/.*"layers":\[\(.*\)\].*/\1/p' "$WORK/fx/manifest.json" |
        grep -o 'sha256:[0-9a-f]*' | cut -d: -f2); do
        openssl dgst -sha256 "$WORK/fx/big-oci/blobs/sha256/$layer" >/dev/null
        tar -xzf "$WORK/fx/big-oci/blobs/sha256/$layer" -C "$WORK/floor"
    done
}
import() { # socket round
    ctr --address "$1" -n "bench$2" images import "$WORK/fx/big-oci.tar"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# the manifest, for the floor's layer list
idx=$(grep -o 'sha256:[0-9a-f]*' "$WORK/fx/big-oci/index.json" | head -1 | cut -d: -f2)
cp "$WORK/fx/big-oci/blobs/sha256/$idx" "$WORK/fx/manifest.json"

ROUNDS=${ROUNDS:-3}
r=1
while [ $r -le "$ROUNDS" ]; do
    sync && seconds floor >>"$WORK/floor.t" && echo >>"$WORK/floor.t"
    sync && seconds import "$BSOCK" $r >>"$WORK/berthd.t" && echo >>"$WORK/berthd.t"
    sync && seconds import "$CSOCK" $r >>"$WORK/containerd.t" && echo >>"$WORK/containerd.t"
    r=$((r + 1))
done
f=$(median <"$WORK/floor.t")
b=$(median <"$WORK/berthd.t")
c=$(median <"$WORK/containerd.t")
echo "ctr images import of the $MB MB, 5-layer image, unpacked into overlayfs (median of $ROUNDS rounds, each in a new namespace)"
printf '  %-34s %8s s\n' "floor (sha256 + tar -xzf per layer)" "$f" "berthd" "$b" "containerd" "$c"
awk -v b="$b" -v c="$c" -v f="$f" 'BEGIN {
    printf "  berthd takes %.2fx containerd'"'"'s time, %.2fx the floor\n", b / c, b / f }'
