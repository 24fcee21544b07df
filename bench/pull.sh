#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/pull: `ctr image pull` with unpack into overlayfs of the ~100 MB, 5-layer fixture image from a local
# registry (Debian's docker-registry on 127.0.0.1): berthd through the Transfer service (containerd 2.4.2's
# ctr, its default path), Debian's containerd 1.6 (its ctr pulls client-side), and the floor: every blob
# downloaded with curl in parallel and hashed with sha256sum (nothing unpacked). Each round starts both
# daemons on empty roots, so every pull downloads every byte. Target: berthd <= 0.5x containerd's time.
# usage: bench/pull.sh [BUILD_DIR] [MB] [CTR2]
set -eu
BUILD=${1:-build}
MB=${2:-100}
CTR2=${3:-${CTR2:-$(cd "$(dirname "$0")/.." && pwd)/.gotools/bin/ctr}}
[ -x "$CTR2" ] || CTR2=/tmp/ctr2/bin/ctr
[ -x "$CTR2" ] || { echo "no containerd 2.4.2 ctr (build it: see tests/gotools)"; exit 1; }
BERTHD=$BUILD/bin/berthd
SRC=$(cd "$(dirname "$0")/.." && pwd)
. "$(dirname "$0")/lib.sh"
sh "$SRC/tests/fixtures/images/build-image.sh" big "$WORK/fx" "$MB" >/dev/null

port=$((20000 + $$ % 20000))
sh "$SRC/tests/fixtures/images/registry.sh" start "$WORK/reg" "$port" >/dev/null
trap 'status=$?; sh "$SRC/tests/fixtures/images/registry.sh" stop "$WORK/reg"; bench_cleanup; exit $status' EXIT
umount_all() { # mounts a daemon may leave under its root (none expected after a pull)
    for d in "$@"; do
        grep -o " $d/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount "$m" 2>/dev/null || true; done
    done
}
sh "$SRC/tests/fixtures/images/build-image.sh" push-registry "$WORK/fx/big-oci" "127.0.0.1:$port" bench/big:1 \
    >/dev/null 2>&1
REF=127.0.0.1:$port/bench/big:1
REG=http://127.0.0.1:$port/v2/bench/big

seconds() { # command... -> elapsed seconds (3 decimals)
    s=$(date +%s.%N)
    "$@" >/dev/null
    e=$(date +%s.%N)
    echo "$s $e" | awk '{printf "%.3f", $2 - $1}'
}
restart() { # both daemons on empty roots
    for p in $BPID $CPID; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    BPID="" CPID=""
    umount_all "$WORK/b" "$WORK/c"
    rm -rf "$WORK/b" "$WORK/c"
    start_daemons
}
# the blobs of the manifest, from the registry itself
manifest=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$REG/manifests/1")
blobs=$(echo "$manifest" | grep -o 'sha256:[0-9a-f]*')
floor() { # waits for its own downloads only (the daemons are children of this shell too)
    pids=""
    for b in $blobs; do
        (curl -fsS "$REG/blobs/$b" | sha256sum >"$WORK/floor.$(echo "$b" | cut -c8-19)") &
        pids="$pids $!"
    done
    for p in $pids; do wait "$p"; done
}
berthd_pull() { "$CTR2" --address "$BSOCK" image pull --plain-http "$REF"; }
containerd_pull() { ctr --address "$CSOCK" images pull --plain-http "$REF"; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

ROUNDS=${ROUNDS:-3}
r=1
while [ $r -le "$ROUNDS" ]; do
    restart
    sync && seconds floor >>"$WORK/floor.t" && echo >>"$WORK/floor.t"
    sync && seconds berthd_pull >>"$WORK/berthd.t" && echo >>"$WORK/berthd.t"
    sync && seconds containerd_pull >>"$WORK/containerd.t" && echo >>"$WORK/containerd.t"
    # both unpacked: the top layer's snapshot exists in each
    [ "$("$CTR2" --address "$BSOCK" snapshots ls | grep -c Committed)" -ge 5 ] ||
        { echo "berthd did not unpack the image"; exit 1; }
    [ "$(ctr --address "$CSOCK" snapshots ls | grep -c Committed)" -ge 5 ] ||
        { echo "containerd did not unpack the image"; exit 1; }
    r=$((r + 1))
done
f=$(median <"$WORK/floor.t")
b=$(median <"$WORK/berthd.t")
c=$(median <"$WORK/containerd.t")
echo "ctr image pull of the $MB MB, 5-layer image from a local registry, unpacked into overlayfs (median of $ROUNDS rounds, empty roots)"
printf '  %-44s %8s s\n' "floor (parallel curl of the blobs + sha256sum)" "$f" "berthd (Transfer, ctr 2.4.2)" "$b" \
    "containerd 1.6 (ctr 1.6, client-side pull)" "$c"
awk -v b="$b" -v c="$c" -v f="$f" 'BEGIN {
    printf "  berthd takes %.2fx containerd'"'"'s time, %.2fx the floor\n", b / c, b / f }'
