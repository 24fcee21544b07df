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

sync
f=$(seconds floor)
b=$(seconds ingest "$BSOCK" 1)
c=$(seconds ingest "$CSOCK" 1)
echo "content ingest of $MIB MiB (ctr content ingest, unix socket)"
printf '  %-28s %8s s\n' "floor (sha256 + cp + sync)" "$f" "berthd" "$b" "containerd" "$c"
awk -v b="$b" -v c="$c" -v f="$f" 'BEGIN {
    printf "  berthd is %.2fx containerd, %.2fx the floor\n", c / b, b / f }'
