#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/cli: `berth run --rm IMAGE /bin/true` beside `ctr run --rm` on berthd and on Debian's containerd
# (both private, bench/lib.sh), bare `runc run`, and the floor: `runc create` + `runc start` +
# `runc delete` of a prepared bundle (what any client of containerd's API must pay). The rows are run in
# turn, round after round, so drift hits them alike; median and p90 per row, and each median over the
# floor's. Target: berth run --rm <= 1.15x the floor.
# The berth row is skipped (and said so) when BUILD_DIR/bin/berth is missing.
# usage: bench/cli.sh [BUILD_DIR] [ROUNDS]
set -eu
BUILD=${1:-build}
ROUNDS=${2:-20}
BERTHD=$BUILD/bin/berthd
BERTH=$BUILD/bin/berth
. "$(dirname "$0")/lib.sh"
start_daemons
busybox_on_both
# the bundle of the floor and of bare runc: the image's rootfs, runc's default spec running /bin/true
true_bundle

# the CLI's own files (its data root and FIFOs) under the bench's dir, never /var/lib/berth or /run/berth
export BERTH_DATA_ROOT="$WORK/cli" BERTH_FIFO_DIR="$WORK/fifo"
floor() {
    runc --root "$WORK/runc" create --bundle "$WORK/bundle" "fl$1" &&
        runc --root "$WORK/runc" start "fl$1" && runc --root "$WORK/runc" delete --force "fl$1"
}
bare() { runc --root "$WORK/runc" run --bundle "$WORK/bundle" "bare$1"; }
berth_cli() { "$BERTH" --address "$BSOCK" run --rm "$IMG" /bin/true; }
ctr_berthd() { ctr --address "$BSOCK" run --rm "$IMG" "b$1" /bin/true; }
ctr_containerd() { ctr --address "$CSOCK" run --rm "$IMG" "c$1" /bin/true; }

ROWS="floor bare ctr_berthd ctr_containerd"
if [ -x "$BERTH" ]; then
    ROWS="floor bare berth_cli ctr_berthd ctr_containerd"
    berth_cli 0 >/dev/null 2>&1 || { echo "$BERTH run --rm failed:"; berth_cli 0; exit 1; }
else
    echo "(no $BERTH: the berth run --rm row is skipped)"
fi
# one warm-up each (page cache, the daemons' first requests)
for r in $ROWS; do "$r" warm >/dev/null 2>&1 || { echo "$r failed:"; "$r" warm; exit 1; }; done

round=0
while [ $round -lt "$ROUNDS" ]; do
    for r in $ROWS; do
        s=$(date +%s%N)
        "$r" "$round" >/dev/null 2>&1 || { echo "$r failed in round $round"; exit 1; }
        e=$(date +%s%N)
        echo $(((e - s) / 1000)) >>"$WORK/t.$r" # microseconds
    done
    round=$((round + 1))
done

# stat ROW -> "median p90" in ms
stat_of() {
    sort -n "$WORK/t.$1" | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        p = int(NR * 0.9 + 0.999999); if (p < 1) p = 1
        printf "%.1f %.1f", m / 1000, v[p] / 1000 }'
}
label() {
    case $1 in
    floor) echo "floor: runc create+start+delete" ;;
    bare) echo "runc run (bare)" ;;
    berth_cli) echo "berth run --rm (berthd)" ;;
    ctr_berthd) echo "ctr run --rm (berthd)" ;;
    ctr_containerd) echo "ctr run --rm (containerd $(containerd --version | awk '{print $3}'))" ;;
    esac
}
fmed=$(stat_of floor | cut -d' ' -f1)
echo "/bin/true in a new container, $ROUNDS rounds"
printf '  %-40s %9s %9s %8s\n' "" "median ms" "p90 ms" "x floor"
for r in $ROWS; do
    set -- $(stat_of "$r")
    printf '  %-40s %9s %9s %8s\n' "$(label "$r")" "$1" "$2" "$(awk -v a="$1" -v f="$fmed" 'BEGIN { printf "%.2fx", a / f }')"
done
if [ -x "$BERTH" ]; then
    bmed=$(stat_of berth_cli | cut -d' ' -f1)
    awk -v b="$bmed" -v f="$fmed" 'BEGIN { r = b / f
        printf "  target: berth run --rm <= 1.15x floor: %.2fx, %s\n", r, r <= 1.15 ? "met" : "NOT met" }'
else
    echo "  target: berth run --rm <= 1.15x floor: not measured (no $BERTH)"
fi
