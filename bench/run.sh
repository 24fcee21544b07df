#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/run: `ctr run --rm IMAGE id /bin/true` against berthd and, in the same run, Debian's containerd,
# beside the floor (bare `runc run` of a prepared bundle); and the RSS of one idle shim of each.
# Targets: berthd within 1.3x of bare runc; shim RSS <= 1 MB (containerd's is about 13 MB).
# usage: bench/run.sh [BUILD_DIR] [RUNS]
set -eu
BUILD=${1:-build}
RUNS=${2:-10}
BERTHD=$BUILD/bin/berthd
. "$(dirname "$0")/lib.sh"
start_daemons
busybox_on_both
# the floor: a bundle of the same rootfs, run by runc directly
true_bundle

seconds() { # command... -> elapsed seconds over RUNS runs, per run (ms)
    s=$(date +%s.%N)
    i=0
    while [ $i -lt "$RUNS" ]; do "$@" "$i" >/dev/null 2>&1; i=$((i + 1)); done
    e=$(date +%s.%N)
    echo "$s $e $RUNS" | awk '{printf "%.1f", ($2 - $1) * 1000 / $3}'
}
bare() { runc --root "$WORK/runc" run --bundle "$WORK/bundle" "bare$1"; }
berth() { ctr --address "$BSOCK" run --rm "$IMG" "b$1" /bin/true; }
ctrd() { ctr --address "$CSOCK" run --rm "$IMG" "c$1" /bin/true; }
# what any daemon behind containerd's API must pay: the client, and runc's three steps (Create, Start and
# Delete are separate calls, and the pid must exist between Create and Start)
client() { ctr --address "$BSOCK" version; }
steps() {
    runc --root "$WORK/runc" create --bundle "$WORK/bundle" "st$1" &&
        runc --root "$WORK/runc" start "st$1" && runc --root "$WORK/runc" delete --force "st$1"
}
f=$(seconds bare)
b=$(seconds berth)
c=$(seconds ctrd)
k=$(seconds client)
s=$(seconds steps)
echo "ctr run --rm /bin/true, mean of $RUNS runs"
printf '  %-26s %8s ms\n' "floor (bare runc run)" "$f" "berthd" "$b" "containerd" "$c"
awk -v b="$b" -v c="$c" -v f="$f" 'BEGIN { printf "  berthd %.2fx the floor, containerd %.2fx\n", b / f, c / f }'
printf '  %-26s %8s ms\n' "ctr version (client)" "$k" "runc create+start+delete" "$s"
awk -v b="$b" -v c="$c" -v k="$k" -v s="$s" 'BEGIN {
    printf "  over client + runc steps (%.1f ms): berthd +%.1f ms, containerd +%.1f ms\n", k + s, b - k - s, c - k - s }'

# one idle shim each
ctr --address "$BSOCK" run -d "$IMG" idle sleep 600 >/dev/null
ctr --address "$CSOCK" run -d "$IMG" idle sleep 600 >/dev/null
sleep 0.5
rss() { ps -o rss= -p "$1" | awk '{printf "%.2f MB", $1 / 1024}'; }
bshim=$(pgrep -f "berth-shim idle $WORK/" | head -1)
cshim=$(pgrep -f "containerd-shim-runc-v2 .*-id idle" | head -1 || true)
printf '  %-26s %s\n' "berth-shim RSS" "$(rss "$bshim")"
[ -n "$cshim" ] && printf '  %-26s %s\n' "containerd shim RSS" "$(rss "$cshim")"
for s in "$BSOCK" "$CSOCK"; do
    ctr --address "$s" tasks kill -s SIGKILL idle >/dev/null 2>&1 || true
    sleep 0.3
    ctr --address "$s" tasks rm idle >/dev/null 2>&1 || true
    ctr --address "$s" containers rm idle >/dev/null 2>&1 || true
done
