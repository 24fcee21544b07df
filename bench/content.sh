#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/content: `ctr content ingest` (Debian's ctr 1.6: one Write stream, a STAT, synchronous 1 MiB WRITEs
# each waiting for its answer, a COMMIT) of a 200 MiB file into berthd and, in the same run, into Debian's
# containerd (private root and socket), beside the floor: sha256 of the file, a copy of it and a sync.
# Each ingest is timed wall-clock from ctr's start to its exit (ctr's start-up, about 80 ms, included) and
# the commit is durable when it returns (both fsync the data file). Rounds alternate the three, each after
# a sync; the medians are reported, with two load-independent figures per ingest: the daemon's CPU time
# (utime + stime of its process over the ingest) and ctr's own (user + sys).
# Target: berthd >= 3x containerd. ctr itself bounds it: against a server that only parses and answers
# its WRITEs (no hashing, no disk) the same ingest takes about 0.4 s, ctr using ~0.45 s of CPU.
# usage: bench/content.sh [BUILD_DIR] [MiB]   (ROUNDS=n, default 5)
set -eu
BUILD=${1:-build}
MIB=${2:-200}
BERTHD=$BUILD/bin/berthd
. "$(dirname "$0")/lib.sh"
start_daemons
head -c $((MIB * 1024 * 1024)) /dev/urandom >"$WORK/blob"
HZ=$(getconf CLK_TCK)

now() { date +%s%N; }
proc_cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }  # utime + stime of a process, in ticks
kids_cpu() { awk '{ print $16 + $17 }' "/proc/$$/stat"; } # of this shell's waited-for children
floor() { openssl dgst -sha256 "$WORK/blob" >/dev/null && cp "$WORK/blob" "$WORK/copy" && sync "$WORK/copy"; }

# name socket pid round: appends "wall_ms daemon_cpu_ms ctr_cpu_ms" to $WORK/name.t
ingest() {
    d0=$(proc_cpu "$3")
    k0=$(kids_cpu)
    s=$(now)
    ctr --address "$2" content ingest "bench-$4" <"$WORK/blob" >/dev/null
    e=$(now)
    k1=$(kids_cpu)
    d1=$(proc_cpu "$3")
    echo "$(((e - s) / 1000000)) $(((d1 - d0) * 1000 / HZ)) $(((k1 - k0) * 1000 / HZ))" >>"$WORK/$1.t"
}
timed_floor() {
    s=$(now)
    floor
    e=$(now)
    echo "$(((e - s) / 1000000))" >>"$WORK/floor.t"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
col() { cut -d' ' -f"$2" <"$WORK/$1.t" | median; }

ROUNDS=${ROUNDS:-5}
r=1
while [ $r -le "$ROUNDS" ]; do
    sync && timed_floor
    sync && ingest berthd "$BSOCK" "$BPID" $r
    sync && ingest containerd "$CSOCK" "$CPID" $r
    r=$((r + 1))
done
f=$(col floor 1)
b=$(col berthd 1)
c=$(col containerd 1)
echo "content ingest of $MIB MiB (ctr content ingest, unix socket; medians of $ROUNDS rounds)"
printf '  %-28s %8s %12s %10s\n' "" "wall ms" "daemon CPU" "ctr CPU"
printf '  %-28s %8s\n' "floor (sha256 + cp + sync)" "$f"
printf '  %-28s %8s %12s %10s\n' berthd "$b" "$(col berthd 2)" "$(col berthd 3)" \
    containerd "$c" "$(col containerd 2)" "$(col containerd 3)"
awk -v b="$b" -v c="$c" -v f="$f" 'BEGIN {
    printf "  berthd is %.2fx containerd, %.2fx the floor\n", c / b, b / f }'
