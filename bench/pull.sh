#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/pull: `ctr image pull` with unpack into overlayfs of the ~100 MB, 5-layer fixture image from a local
# registry (Debian's docker-registry on 127.0.0.1): berthd through the Transfer service (containerd 2.4.2's
# ctr, its default path), Debian's containerd 1.6 (its ctr pulls client-side), and the floor: every blob
# downloaded with curl in parallel and hashed with sha256sum (nothing unpacked). Each round starts both
# daemons on empty roots, so every pull downloads every byte. Target: berthd <= 0.5x containerd's time.
# containerd 2.4.2 joins the comparison (its Transfer service, driven by the same ctr 2.4.2) when CONTAINERD2
# names its binary or <repo>/.gotools/bin/containerd exists; BUILD_CONTAINERD2=1 builds it there first
# (`go install -tags no_btrfs` through the module proxy, a few minutes once).
# usage: bench/pull.sh [BUILD_DIR] [MB] [CTR2]
set -eu
BUILD=${1:-build}
MB=${2:-100}
CTR2=${3:-${CTR2:-$(cd "$(dirname "$0")/.." && pwd)/.gotools/bin/ctr}}
[ -x "$CTR2" ] || CTR2=/tmp/ctr2/bin/ctr
[ -x "$CTR2" ] || { echo "no containerd 2.4.2 ctr (build it: see tests/gotools)"; exit 1; }
BERTHD=$BUILD/bin/berthd
SRC=$(cd "$(dirname "$0")/.." && pwd)
CONTAINERD2=${CONTAINERD2:-$SRC/.gotools/bin/containerd}
if [ ! -x "$CONTAINERD2" ] && [ "${BUILD_CONTAINERD2:-0}" = 1 ]; then
    echo "building containerd v2.4.2 into $SRC/.gotools/bin (once)" >&2
    GOPATH="$SRC/.gotools/gopath" GOMODCACHE="$SRC/.gotools/gopath/pkg/mod" GOCACHE="$SRC/.gotools/gocache" \
        GOFLAGS=-modcacherw GOTOOLCHAIN=local GOBIN="$SRC/.gotools/bin" \
        /usr/local/go/bin/go install -tags no_btrfs github.com/containerd/containerd/v2/cmd/containerd@v2.4.2
    CONTAINERD2=$SRC/.gotools/bin/containerd
fi
[ -x "$CONTAINERD2" ] || CONTAINERD2=""
C2PID=""
. "$(dirname "$0")/lib.sh"
sh "$SRC/tests/fixtures/images/build-image.sh" big "$WORK/fx" "$MB" >/dev/null

port=$((20000 + $$ % 20000))
sh "$SRC/tests/fixtures/images/registry.sh" start "$WORK/reg" "$port" >/dev/null
stop_containerd2() { [ -n "$C2PID" ] && kill "$C2PID" 2>/dev/null && wait "$C2PID" 2>/dev/null; C2PID=""; }
trap 'status=$?; stop_containerd2; sh "$SRC/tests/fixtures/images/registry.sh" stop "$WORK/reg"; bench_cleanup; exit $status' EXIT
start_containerd2() { # its own root, state and socket; only what a pull needs
    cat >"$WORK/containerd2.toml" <<TOML
version = 3
root = "$WORK/c2/root"
state = "$WORK/c2/state"
[grpc]
  address = "$WORK/c2/containerd.sock"
[ttrpc]
  address = "$WORK/c2/containerd.sock.ttrpc"
TOML
    "$CONTAINERD2" --config "$WORK/containerd2.toml" --log-level error 2>"$WORK/containerd2.log" &
    C2PID=$!
    C2SOCK=$WORK/c2/containerd.sock
    wait_socket "$C2SOCK"
}
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
    stop_containerd2
    umount_all "$WORK/b" "$WORK/c" "$WORK/c2"
    rm -rf "$WORK/b" "$WORK/c" "$WORK/c2"
    start_daemons
    [ -z "$CONTAINERD2" ] || start_containerd2
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
containerd2_pull() { "$CTR2" --address "$C2SOCK" image pull --plain-http "$REF"; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

ROUNDS=${ROUNDS:-3}
r=1
while [ $r -le "$ROUNDS" ]; do
    restart
    sync && seconds floor >>"$WORK/floor.t" && echo >>"$WORK/floor.t"
    sync && seconds berthd_pull >>"$WORK/berthd.t" && echo >>"$WORK/berthd.t"
    sync && seconds containerd_pull >>"$WORK/containerd.t" && echo >>"$WORK/containerd.t"
    if [ -n "$CONTAINERD2" ]; then
        sync && seconds containerd2_pull >>"$WORK/containerd2.t" && echo >>"$WORK/containerd2.t"
        [ "$("$CTR2" --address "$C2SOCK" snapshots ls | grep -c Committed)" -ge 5 ] ||
            { echo "containerd 2 did not unpack the image"; exit 1; }
    fi
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
if [ -n "$CONTAINERD2" ]; then
    c2=$(median <"$WORK/containerd2.t")
    printf '  %-44s %8s s\n' "containerd 2.4.2 (Transfer, ctr 2.4.2)" "$c2"
    awk -v b="$b" -v c="$c2" 'BEGIN { printf "  berthd takes %.2fx containerd 2.4.2'"'"'s time\n", b / c }'
else
    echo "  (containerd 2.4.2 not measured: set CONTAINERD2 or BUILD_CONTAINERD2=1)"
fi
