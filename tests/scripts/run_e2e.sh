#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Containers through berthd's runc runtime with the real ctr: run --rm with output, exit codes and stdin;
# run -d with tasks ls/ps/pause/resume/exec/kill/rm; SIGTERM to a trapping shell (143) and SIGKILL (137);
# live restore: kill -9 berthd, start it again, the task is still there and its exit still arrives; a shim
# killed with -9 is cleaned up.
# usage: run_e2e.sh BERTHD MODULE_DIR SOURCE_DIR
set -eu
BERTHD=$1
export BERTH_MODULE_DIR=$2
SRC=$3
work=$(mktemp -d /tmp/berth-run-XXXXXX)
PID=""
cleanup() {
    status=$?
    if [ -n "$PID" ] && kill "$PID" 2>/dev/null; then
        wait "$PID" || { echo "FAIL berthd exited with $? on SIGTERM:"; tail -40 "$work/log"; status=1; }
    fi
    for p in $(cat "$work"/state/io.containerd.runtime.v2.task/*/*/*.pid 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    pkill -f "berth-shim .* $work/" 2>/dev/null || true
    for m in $(awk -v w="$work" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT
fail() {
    echo "FAIL $*"
    tail -20 "$work/log" 2>/dev/null
    exit 1
}
CTR="ctr --address $work/state/berthd.sock"
IMG=docker.io/library/berth-busybox:latest
start() {
    "$BERTHD" --root "$work/root" --state "$work/state" --log-level warn 2>>"$work/log" &
    PID=$!
    i=0
    until $CTR version >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 200 ] || fail "berthd did not start"; sleep 0.05; done
}
sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$work/fx" >/dev/null
start
$CTR images import "$work/fx/busybox-oci.tar" >/dev/null

# --- run --rm: output, exit codes, stdin -------------------------------------------------------------
[ "$($CTR run --rm "$IMG" r1 echo hello)" = hello ] || fail "ctr run --rm echo hello"
[ "$($CTR run --rm "$IMG" r2)" = "hello from berth" ] || fail "the image's default command"
set +e
$CTR run --rm "$IMG" r3 sh -c 'exit 7'
[ $? -eq 7 ] || fail "exit code 7 did not propagate"
set -e
[ "$(echo through-stdin | $CTR run --rm "$IMG" r4 cat)" = through-stdin ] || fail "stdin"

# --- bad input: an unknown runtime, a task that does not exist, an oversized label ---------------------
if $CTR run --rm --runtime io.containerd.nosuch.v1 "$IMG" bad1 true 2>"$work/err"; then fail "an unknown runtime ran"; fi
grep -q "io.containerd.nosuch.v1: not supported" "$work/err" || fail "no clear error for an unknown runtime: $(cat "$work/err")"
$CTR containers rm bad1 2>/dev/null || true
[ ! -d "$work/state/io.containerd.runtime.v2.task/default/bad1" ] || fail "a refused task left its bundle"
if $CTR tasks start nosuch 2>"$work/err"; then fail "started a task that does not exist"; fi
grep -q "not found" "$work/err" || fail "no NotFound for a missing task: $(cat "$work/err")"
big=$(head -c 5000 /dev/zero | tr '\0' x)
if $CTR containers create --label "k=$big" "$IMG" bad2 2>"$work/err"; then fail "a 5000-byte label was stored"; fi
grep -qi "label" "$work/err" || fail "no clear error for an oversized label: $(cat "$work/err")"
! $CTR containers ls -q | grep -q bad2 || fail "a refused container was stored"
$CTR snapshots rm bad2 2>/dev/null || true

# --- run -d and the task commands --------------------------------------------------------------------
$CTR run -d "$IMG" d1 sleep 1000 >/dev/null
$CTR tasks ls | grep -q "^d1 .*RUNNING" || fail "tasks ls: $($CTR tasks ls)"
$CTR tasks ps d1 | grep -q "^[0-9]" || fail "tasks ps"
$CTR tasks pause d1 && $CTR tasks ls | grep -q "^d1 .*PAUSED" || fail "tasks pause"
$CTR tasks resume d1 && $CTR tasks ls | grep -q "^d1 .*RUNNING" || fail "tasks resume"
[ "$($CTR tasks exec --exec-id e1 d1 echo from-exec)" = from-exec ] || fail "tasks exec"
$CTR tasks kill -s SIGKILL d1
i=0
until $CTR tasks ls | grep -q "^d1 .*STOPPED"; do i=$((i + 1)); [ $i -lt 100 ] || fail "kill"; sleep 0.05; done
$CTR tasks rm d1 >/dev/null && $CTR containers rm d1 || fail "tasks rm / containers rm"

# --- signals: a trapping shell exits 143 on SIGTERM, anything 137 on SIGKILL ---------------------------
set +e
$CTR run --rm "$IMG" s1 sh -c 'trap "exit 143" TERM; while :; do sleep 0.1; done' &
RUN=$!
sleep 1
$CTR tasks kill s1
wait $RUN
[ $? -eq 143 ] || fail "SIGTERM to a trapping shell"
$CTR run --rm "$IMG" s2 sleep 100 &
RUN=$!
sleep 1
$CTR tasks kill -s SIGKILL s2
wait $RUN
[ $? -eq 137 ] || fail "SIGKILL"
set -e

# --- live restore ------------------------------------------------------------------------------------
$CTR run -d "$IMG" live sleep 1000 >/dev/null
kill -9 "$PID"
wait "$PID" 2>/dev/null || true
PID=""
start
$CTR tasks ls | grep -q "^live .*RUNNING" || fail "the task did not survive a berthd restart"
$CTR events >"$work/events" 2>&1 &
EVENTS=$!
sleep 0.2
$CTR tasks kill -s SIGKILL live
i=0
until grep -q "/tasks/exit" "$work/events"; do i=$((i + 1)); [ $i -lt 100 ] || fail "no exit event after restart"; sleep 0.05; done
kill $EVENTS
$CTR tasks rm live >/dev/null && $CTR containers rm live

# --- a shim killed with -9: berthd notices, cleans up and reports the exit -----------------------------
$CTR run -d "$IMG" k9 sleep 1000 >/dev/null
shim=$(pgrep -f "berth-shim k9 $work/") || fail "no shim for k9"
kill -9 "$shim"
i=0
while $CTR tasks ls | grep -q "^k9 "; do i=$((i + 1)); [ $i -lt 100 ] || fail "a dead shim's task stays listed"; sleep 0.05; done
i=0
while [ -d "$work/state/io.containerd.runtime.v2.task/default/k9" ]; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "a dead shim's bundle stays"; sleep 0.05
done
$CTR containers rm k9

# --- nothing left behind -------------------------------------------------------------------------------
[ -z "$($CTR tasks ls -q 2>/dev/null)" ] || fail "tasks left"
! awk '{ print $2 }' /proc/mounts | grep -q "^$work/state" || fail "rootfs mounts left"
! pgrep -f "berth-shim .* $work/" >/dev/null || fail "shims left"
echo "ctr run workflows: ok"
