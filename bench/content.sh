#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/content: `ctr content ingest` of a 200 MiB file into berthd and, in the same run, into Debian's
# containerd (private root and socket), next to the floor: sha256 of the file plus a copy of it.
# Target: berthd >= 3x containerd, within 1.3x of the floor.
# usage: bench/content.sh [BUILD_DIR] [MiB]
set -eu
BUILD=${1:-build}
MIB=${2:-200}
BERTHD=$BUILD/bin/berthd
. "$(dirname "$0")/lib.sh"
start_daemons
head -c $((MIB * 1024 * 1024)) /dev/urandom >"$WORK/blob"

seconds() { # command... -> elapsed seconds (3 decimals)
    s=$(date +%s.%N)
    "$@" >/dev/null
    e=$(date +%s.%N)
    echo "$s $e" | awk '{printf "%.3f", $2 - $1}'
}
floor() { openssl dgst -sha256 "$WORK/blob" >/dev/null && cp "$WORK/blob" "$WORK/copy" && sync "$WORK/copy"; }
ingest() { ctr --address "$1" content ingest "bench-$2" <"$WORK/blob"; }

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Rounds alternate the three, each after a sync, so one's writeback does not land on the next.
ROUNDS=${ROUNDS:-3}
r=1
while [ $r -le "$ROUNDS" ]; do
    sync && seconds floor >>"$WORK/floor.t" && echo >>"$WORK/floor.t"
    sync && seconds ingest "$BSOCK" $r >>"$WORK/berthd.t" && echo >>"$WORK/berthd.t"
    sync && seconds ingest "$CSOCK" $r >>"$WORK/containerd.t" && echo >>"$WORK/containerd.t"
    r=$((r + 1))
done
f=$(median <"$WORK/floor.t")
b=$(median <"$WORK/berthd.t")
c=$(median <"$WORK/containerd.t")
echo "content ingest of $MIB MiB (ctr content ingest, unix socket; median of $ROUNDS rounds)"
printf '  %-28s %8s s\n' "floor (sha256 + cp + sync)" "$f" "berthd" "$b" "containerd" "$c"
awk -v b="$b" -v c="$c" -v f="$f" 'BEGIN {
    printf "  berthd is %.2fx containerd, %.2fx the floor\n", c / b, b / f }'
