#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# runtime.shim_crash: a shim's init process is its task's record (modules/runtime-runc/runtime.c); a
# berthd killed between starting a shim and asking it to create the task leaves a shim without a task and a
# mounted rootfs, which the next start must remove. Two ways in:
#   1. deterministic: while berthd is stopped, a berth-shim is started by hand for a bundle "ghost" (its
#      rootfs a tmpfs) and never asked to create; after a start the shim, its mount and bundle are gone.
#      So are those of a shim whose ready pipe had no reader ("late": it exits and removes its socket) and of
#      a "mute" one that accepts, closes without answering and stops listening (python3 plays it);
#   2. a real crash: ctr run -d, kill -9 of berthd after 0.020, 0.025 .. 0.120 s (a fresh container each time),
#      restart; every berth-shim of this test must serve a task `ctr tasks ls` lists;
#   3. an exit nobody heard: berthd killed, then the container's process; the shim reaps it with no client
#      connected, and tells it (its exit line, pid and status 137) to the first client that connects (as
#      berthd's watch after a restart); after the restart the task is STOPPED and its delete says 137 (ctr's warning).
# At the end everything is removed with ctr, berthd stops cleanly, and no shim, runc container or mount of
# the test remains. Bash: the shim's socket name is a 64-bit FNV-1a hash, computed with wrapping arithmetic.
# usage: shim_crash.sh BERTHD MODULE_DIR SOURCE_DIR
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
SRC=$3
SHIM=$(dirname "$BERTHD")/berth-shim
work=$(mktemp -d /tmp/berth-shim-crash-XXXXXX)
PID=""
shims() { pgrep -f "^berth-shim .* $work/" || true; }
cleanup() {
    status=$?
    if [ -n "$PID" ]; then
        kill -9 "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    for p in $(shims); do kill -9 "$p" 2>/dev/null || true; done
    for c in $(runc --root "$work/state/runc/default" list -q 2>/dev/null); do
        runc --root "$work/state/runc/default" delete --force "$c" 2>/dev/null || true
    done
    umount_under "$work"
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT
[ -x "$SHIM" ] || fail "no berth-shim beside berthd: $SHIM"
CTR="ctr --address $work/state/berthd.sock"
IMG=docker.io/library/berth-busybox:latest
BUNDLES=$work/state/io.containerd.runtime.v2.task/default
start() {
    "$BERTHD" --root "$work/root" --state "$work/state" --log-level warn 2>>"$work/log" &
    PID=$!
    local i=0
    until $CTR version >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 200 ] || fail "berthd did not start"; sleep 0.05; done
}
stop() {
    kill "$PID"
    wait "$PID" || fail "berthd exited with $? on SIGTERM"
    PID=""
}
# every berth-shim of this test serves a task berthd lists, and so does every mounted rootfs (a dead
# shim's is cleaned up in the background: given a few seconds)
check_shims() {
    local listed p id m i
    listed=$($CTR tasks ls -q) || fail "tasks ls after restart"
    for p in $(shims); do
        id=$(tr '\0' ' ' <"/proc/$p/cmdline" | cut -d' ' -f2)
        echo "$listed" | grep -qx "$id" || fail "$1: shim $p of $id serves no listed task (tasks: $listed)"
    done
    for m in $(awk -v w="$BUNDLES/" 'index($2, w) == 1 { print $2 }' /proc/mounts); do
        id=$(basename "$(dirname "$m")")
        i=0
        while ! $CTR tasks ls -q | grep -qx "$id" && grep -q " $m " /proc/mounts; do
            i=$((i + 1))
            [ $i -lt 100 ] || fail "$1: $m is mounted for no listed task"
            sleep 0.05
        done
    done
}
# the shim's socket: <state>/s/<FNV-1a 64 of "ns/id" with berth's offset basis>.sock (runtime.c)
socket_of() {
    local s="$1/$2" h=1469598103934665603 i c
    for ((i = 0; i < ${#s}; i++)); do
        printf -v c '%d' "'${s:i:1}"
        h=$(((h ^ c) * 1099511628211))
    done
    printf '%s/s/%016x.sock' "$work/state" "$h"
}

sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$work/fx" >/dev/null
start
$CTR images import "$work/fx/busybox-oci.tar" >/dev/null

# --- 1. deterministic: a shim started by hand, never asked to create ----------------------------------------
$CTR run -d --fifo-dir "$work/fifo" "$IMG" keep sleep 1000 >/dev/null # a real task: it must survive the start below
stop
ghost=$BUNDLES/ghost
mkdir -p "$ghost/rootfs" && echo '{}' >"$ghost/config.json"
mount -t tmpfs berth-ghost "$ghost/rootfs"
(exec -a berth-shim "$SHIM" ghost "$ghost" "$(socket_of default ghost)" "$work/state/runc/default" runc 3 3>/dev/null)
i=0
until [ -S "$(socket_of default ghost)" ]; do i=$((i + 1)); [ $i -lt 100 ] || fail "the ghost shim did not listen"; sleep 0.05; done
pgrep -f "^berth-shim ghost $work/" >/dev/null || fail "the ghost shim is not running"
# a shim whose berthd died before reading its "ready": it exits, and takes its socket along
late=$BUNDLES/late
mkdir -p "$late/rootfs" && echo '{}' >"$late/config.json"
mount -t tmpfs berth-late "$late/rootfs"
exec 4> >(exit 0)
sleep 0.2 # the pipe's reader is gone
(exec -a berth-shim "$SHIM" late "$late" "$(socket_of default late)" "$work/state/runc/default" runc 4)
exec 4>&-
i=0
while pgrep -f "^berth-shim late $work/" >/dev/null; do i=$((i + 1)); [ $i -lt 100 ] || fail "the late shim still runs"; sleep 0.05; done
[ ! -e "$(socket_of default late)" ] || fail "the late shim left its socket"
# a shim that closes the connection without an answer and stops listening (as one whose ready went nowhere):
# gone, so its bundle is cleaned up; never kept as a task nobody can reach
mute=$BUNDLES/mute
mkdir -p "$mute/rootfs" && echo '{}' >"$mute/config.json"
mount -t tmpfs berth-mute "$mute/rootfs"
python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(4); s.settimeout(60)
while True:  # a bare connect first (is anyone there?), then the request: closed unanswered
    c, _ = s.accept()
    if c.recv(100):
        break
    c.close()
c.close(); s.close(); os.unlink(sys.argv[1])
' "$(socket_of default mute)" &
MUTE=$!
i=0
until [ -S "$(socket_of default mute)" ]; do i=$((i + 1)); [ $i -lt 100 ] || fail "the mute listener did not listen"; sleep 0.05; done
start
$CTR tasks ls | grep -q "^keep .*RUNNING" || fail "the real task did not survive: $($CTR tasks ls)"
i=0
while pgrep -f "^berth-shim ghost $work/" >/dev/null; do i=$((i + 1)); [ $i -lt 100 ] || fail "the ghost shim still runs"; sleep 0.05; done
! grep -q "$ghost" /proc/mounts || fail "the ghost's rootfs is still mounted"
[ ! -e "$ghost" ] || fail "the ghost's bundle stayed"
[ ! -e "$(socket_of default ghost)" ] || fail "the ghost's socket stayed"
grep -q "task default/ghost: a shim without a task" "$work/log" || fail "the removal was not logged"
wait $MUTE || fail "the mute listener failed"
i=0
while grep -q "$mute" /proc/mounts || [ -e "$mute" ]; do i=$((i + 1)); [ $i -lt 100 ] || fail "the mute shim's bundle stayed"; sleep 0.05; done
grep -Eq "task default/mute: its shim (was gone|died)" "$work/log" || fail "the mute shim's cleanup was not logged"
! $CTR tasks ls -q | grep -qx mute || fail "the mute shim's task is listed"
for b in late; do
    ! grep -q "$BUNDLES/$b" /proc/mounts || fail "the $b rootfs is still mounted"
    [ ! -e "$BUNDLES/$b" ] || fail "the $b bundle stayed"
done
check_shims ghost

# --- 2. kill -9 of berthd at a series of moments into ctr run -d --------------------------------------------
n=0
for ms in $(seq 20 5 120); do
    delay=$(printf '0.%03d' "$ms")
    n=$((n + 1))
    $CTR run -d --fifo-dir "$work/fifo" "$IMG" "c$n" sleep 1000 >/dev/null 2>&1 &
    RUN=$!
    sleep "$delay"
    kill -9 "$PID"
    wait "$PID" 2>/dev/null || true
    PID=""
    wait "$RUN" 2>/dev/null || true
    start
    check_shims "kill after ${delay}s"
done
echo "shims without a task removed at start: $(grep -c "a shim without a task" "$work/log") (1 by hand)"

# --- 3. an exit while berthd is away is told to the next client of the shim ---------------------------------
$CTR run -d --fifo-dir "$work/fifo" "$IMG" away sleep 1000 >/dev/null
awaypid=$($CTR tasks ls | awk '$1 == "away" { print $2 }')
[ -n "$awaypid" ] || fail "away: no pid: $($CTR tasks ls)"
kill -9 "$PID"
wait "$PID" 2>/dev/null || true
PID=""
kill -9 "$awaypid"
i=0
while [ -e "/proc/$awaypid" ]; do i=$((i + 1)); [ $i -lt 100 ] || fail "away: its shim did not reap it"; sleep 0.05; done
# a bare connection, as berthd's watch: the exit comes first, unasked
told=$(python3 - "$(socket_of default away)" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
buf = b""
try:
    while b"\n" not in buf:
        d = s.recv(4096)
        if not d:
            break
        buf += d
except socket.timeout:
    pass
print(buf.split(b"\n")[0].decode().replace("\t", " "))
PY
) || fail "away: could not connect to its shim"
echo "$told" | grep -Eq "^e exit  $awaypid 137 [0-9]{19}$" || fail "away: the shim told a new client '$told', not its exit"
start
$CTR tasks ls | grep -Eq "^away +$awaypid +STOPPED" || fail "away: not STOPPED after the restart: $($CTR tasks ls)"
$CTR tasks rm away >"$work/rm-away" 2>&1 || fail "away: tasks rm: $(cat "$work/rm-away")"
grep -q "exit code 137" "$work/rm-away" || fail "away: its delete did not say exit code 137: $(cat "$work/rm-away")"
$CTR containers rm away

# --- everything goes through ctr; then a clean stop leaves nothing ------------------------------------------
for t in $($CTR tasks ls -q); do
    $CTR tasks kill -s SIGKILL "$t" 2>/dev/null || true
    i=0
    while $CTR tasks ls | grep -q "^$t .*RUNNING"; do i=$((i + 1)); [ $i -lt 100 ] || fail "task $t did not stop"; sleep 0.05; done
    $CTR tasks rm "$t" >/dev/null || fail "tasks rm $t"
done
for c in $($CTR containers ls -q); do $CTR containers rm "$c" || fail "containers rm $c"; done
stop
[ -z "$(shims)" ] || fail "shims left: $(shims)"
[ -z "$(runc --root "$work/state/runc/default" list -q 2>/dev/null)" ] ||
    fail "runc containers left: $(runc --root "$work/state/runc/default" list -q)"
! awk '{ print $2 }' /proc/mounts | grep -q "^$work" || fail "mounts left: $(grep "$work" /proc/mounts)"
[ -z "$(ls "$BUNDLES" 2>/dev/null)" ] || fail "bundles left: $(ls "$BUNDLES")"
echo "shim crash: ok"
