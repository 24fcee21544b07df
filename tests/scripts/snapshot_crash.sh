#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# kill -9 during snapshot work: a loop of prepare / mount+write / commit / prepare+remove / chain removal
# through ctr runs against berthd, which is killed at a seeded random moment, restarted on the same root,
# and checked: every record has its storage (ctr snapshots usage), every committed snapshot mounts (with its
# chain, under a new active snapshot) and reads back the file written into it, and no storage is left
# without a record.
# ROUNDS rounds; then a committed layer's storage is deleted by hand and berthd must start without its
# record and its children's, warning about each.
# usage: snapshot_crash.sh BERTHD MODULE_DIR [ROUNDS] [SEED]
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
ROUNDS=${3:-12}
SEED=${4:-$(date +%s)}
work=$(mktemp -d /tmp/berth-snapcrash-XXXXXX)
A=$work/state/berthd.sock
SNAPS=$work/root/io.containerd.snapshotter.v1.overlayfs/snapshots
PID=""
LOOP=""
c() { ctr --address "$A" -n crash "$@"; }
fail() {
    echo "FAIL (seed $SEED, round ${round:-}): $*"
    exit 1
}
umount_all() {
    umount_under "$work"
}
cleanup() {
    status=$?
    if [ -n "$LOOP" ]; then
        kill "$LOOP" 2>/dev/null || true
        wait "$LOOP" 2>/dev/null || true
    fi
    if [ -n "$PID" ]; then
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    [ $status -eq 0 ] || tail -30 "$work/log" 2>/dev/null
    umount_all
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT
trap 'exit 1' INT TERM

start() {
    "$BERTHD" --root "$work/root" --state "$work/state" --log-level warn 2>>"$work/log" &
    PID=$!
    i=0
    until [ -S "$A" ] && ctr --address "$A" version >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 200 ] || fail "berthd did not start"
        kill -0 "$PID" 2>/dev/null || fail "berthd exited at start"
        sleep 0.05
    done
}

# One step of the workload: a failure while berthd is not being killed is a real one.
step() {
    "$@" >"$work/step.out" 2>&1 && return 0
    [ -e "$work/killing" ] && exit 0
    echo "step failed with berthd up: $*: $(cat "$work/step.out")" >"$work/failed"
    exit 1
}

workload() {
    r=$1
    mnt=$work/mnt-w
    mkdir -p "$mnt"
    i=0
    last=""
    depth=0
    while :; do
        i=$((i + 1))
        step c snapshots prepare "r$r-a$i" $last
        step c snapshots mounts "$mnt" "r$r-a$i"
        step sh -c "$(cat "$work/step.out")"
        echo "r$r-c$i" >"$mnt/r$r-c$i"
        umount "$mnt"
        step c snapshots commit "r$r-c$i" "r$r-a$i"
        step c snapshots prepare "r$r-t$i" "r$r-c$i"
        step c snapshots rm "r$r-t$i"
        last=r$r-c$i
        depth=$((depth + 1))
        if [ $depth -eq 4 ]; then # the chain goes, top first
            for j in $i $((i - 1)) $((i - 2)) $((i - 3)); do
                step c snapshots rm "r$r-c$j"
            done
            last=""
            depth=0
        fi
    done
}

# Every record has storage, every committed snapshot mounts with its file, and no storage lacks a record.
check() {
    c snapshots ls >"$work/ls" || fail "snapshots ls"
    records=$(($(wc -l <"$work/ls") - 1))
    dirs=$(find "$SNAPS" -mindepth 1 -maxdepth 1 -name '[0-9]*' | wc -l)
    [ "$dirs" -eq "$records" ] || fail "$dirs snapshot directories for $records records"
    tail -n +2 "$work/ls" | while read -r key _; do
        c snapshots usage "$key" >/dev/null 2>&1 || fail "record $key: no storage ($(c snapshots usage "$key" 2>&1))"
    done
    mkdir -p "$work/chk"
    tail -n +2 "$work/ls" | awk '$NF == "Committed" { print $1 }' | while read -r key; do
        c snapshots prepare chk "$key" >/dev/null || fail "prepare on $key"
        sh -c "$(c snapshots mounts "$work/chk" chk)" || fail "mount of $key"
        got=$(cat "$work/chk/$key" 2>/dev/null || true)
        find "$work/chk" -type f -exec cat {} + >/dev/null || fail "$key: its chain does not read"
        umount "$work/chk"
        c snapshots rm chk || fail "rm chk on $key"
        [ "$got" = "$key" ] || fail "committed $key mounts without its file"
    done
}

echo "seed $SEED, $ROUNDS rounds"
start
round=0
while [ $round -lt "$ROUNDS" ]; do
    round=$((round + 1))
    rm -f "$work/killing"
    workload $round &
    LOOP=$!
    delay=$(awk -v s="$SEED" -v r=$round 'BEGIN { srand(s * 100 + r); printf "%.2f", 0.2 + rand() * 2.3 }')
    sleep "$delay"
    touch "$work/killing"
    kill -9 "$PID"
    wait "$PID" 2>/dev/null || true
    PID=""
    wait "$LOOP" 2>/dev/null || true
    LOOP=""
    [ ! -e "$work/failed" ] || fail "$(cat "$work/failed")"
    umount_all
    start
    check
    echo "round $round: killed after ${delay}s, $(($(wc -l <"$work/ls") - 1)) records, all whole"
done

# storage lost behind berthd's back: the record and its children go at start-up, with a warning each
c snapshots prepare lost-a >/dev/null
sh -c "$(c snapshots mounts "$work/chk" lost-a)"
echo lost >"$work/chk/lost-marker"
umount "$work/chk"
c snapshots commit lost-c lost-a
c snapshots prepare lost-child lost-c >/dev/null
c snapshots commit lost-child-c lost-child
c snapshots prepare lost-grandchild lost-child-c >/dev/null
dir=$(dirname "$(dirname "$(ls "$SNAPS"/*/fs/lost-marker)")")
kill "$PID"
wait "$PID" || fail "berthd exited uncleanly"
PID=""
rm -rf "$dir"
start
c snapshots ls >"$work/ls"
if grep -q "^lost-" "$work/ls"; then fail "records without storage survived a start: $(grep '^lost-' "$work/ls")"; fi
for key in lost-c lost-child-c lost-grandchild; do
    grep -q "snapshot $key in namespace crash.*storage missing, record removed" "$work/log" || fail "no warning for $key"
done
check
grep "storage missing" "$work/log"
echo "PASS: $ROUNDS kills, every record whole; lost storage takes its records at start-up"
