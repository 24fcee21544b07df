#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Containers through berthd's runc runtime with the real ctr: run --rm with output, exit codes and stdin;
# terminals (run -t, exec -t, attach, resize) under script(1); run -d with tasks ls/ps/pause/resume/exec/
# kill/rm; SIGTERM to a trapping shell (143) and SIGKILL (137); an OOM kill and /tasks/oom; the pre-start hooks (tests/fixtures/
# fx_containerhooks.c) and the spec checks; live restore: kill -9 berthd, start it again, the task is still
# there and its exit still arrives, a bundle nobody owns is removed; a shim killed with -9 is cleaned up; no
# fds, FIFOs, mounts or shims left.
# usage: run_e2e.sh BERTHD MODULE_DIR SOURCE_DIR FIXTURE_MODULE_DIR
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
SRC=$3
FX=$4
work=$(mktemp -d /tmp/berth-run-XXXXXX)
PID=""
cleanup() {
    status=$?
    if [ -n "$PID" ] && kill "$PID" 2>/dev/null; then
        wait "$PID" || { echo "FAIL berthd exited with $? on SIGTERM:"; tail -40 "$work/log"; status=1; }
    fi
    for p in $(cat "$work"/state/io.containerd.runtime.v2.task/*/*/*.pid 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    pkill -f "berth-shim .* $work/" 2>/dev/null || true
    umount_under "$work"
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT
CTR="ctr --address $work/state/berthd.sock"
IMG=docker.io/library/berth-busybox:latest
start() {
    "$BERTHD" --root "$work/root" --state "$work/state" --log-level warn \
        --set "module_dirs=[\"$FX/images\"]" 2>>"$work/log" &
    PID=$!
    i=0
    until $CTR version >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 200 ] || fail "berthd did not start"; sleep 0.05; done
}
sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$work/fx" >/dev/null
start
$CTR images import "$work/fx/busybox-oci.tar" >/dev/null
fds() { ls "/proc/$1/fd" | wc -l; }
fifos() { find /run/containerd/fifo -type p 2>/dev/null | wc -l; }
FIFOS=$(fifos)

# --- run --rm: output, exit codes, stdin -------------------------------------------------------------
[ "$($CTR run --rm "$IMG" r1 echo hello)" = hello ] || fail "ctr run --rm echo hello"
[ "$($CTR run --rm "$IMG" r2)" = "hello from berth" ] || fail "the image's default command"
set +e
$CTR run --rm "$IMG" r3 sh -c 'exit 7'
[ $? -eq 7 ] || fail "exit code 7 did not propagate"
set -e
[ "$(echo through-stdin | $CTR run --rm "$IMG" r4 cat)" = through-stdin ] || fail "stdin"
FDS=$(fds "$PID") # berthd's, once warm: the same after every workflow below

# --- terminals: run -t, exec -t and attach under script(1), which gives ctr a terminal ------------------
tty_run() { script -qec "$1" /dev/null </dev/null >"$work/tty" 2>&1; }
set +e
tty_run "stty rows 33 cols 111; $CTR run -t --rm $IMG t1 sh -c 'sleep 0.5; tty; stty size; exit 3'"
rc=$?
set -e
[ $rc -eq 3 ] || fail "exit code through a terminal: $rc; $(cat "$work/tty")"
grep -q "/dev/pts/[0-9]" "$work/tty" || fail "run -t: no terminal: $(cat "$work/tty")"
grep -q "33 111" "$work/tty" || fail "run -t: the terminal was not resized: $(cat "$work/tty")"
tty_run "$CTR run -t -d $IMG t2 sh"
shim=$(pgrep -f "berth-shim t2 $work/") || fail "no shim for t2"
shimfds=$(fds "$shim")
tty_run "$CTR tasks exec -t --exec-id x1 t2 sh -c 'tty; echo exec-in-tty'"
grep -q "exec-in-tty" "$work/tty" || fail "exec -t: $(cat "$work/tty")"
[ "$(fds "$shim")" -eq "$shimfds" ] || fail "the shim leaked fds over an exec: $shimfds -> $(fds "$shim")"
(sleep 1; echo 'echo typed-$((6*7))'; sleep 0.5; echo 'exit 5'; sleep 1) |
    timeout 30 script -qec "$CTR tasks attach t2" /dev/null >"$work/tty" 2>&1 || true
grep -q "typed-42" "$work/tty" || fail "attach: typed input did not reach the shell: $(cat "$work/tty")"
$CTR containers rm t2 || fail "containers rm t2" # attach deleted the task

# --- the pre-start hooks: fx_containerhooks adds "low" (-100) then "high" (10); runc runs high first ------
[ "$($CTR run --rm "$IMG" pst1 echo started)" = started ] || fail "run with pre-start hooks"
[ "$(grep " pst1$" "$work/state/prestart.log")" = "$(printf 'high pst1\nlow pst1')" ] ||
    fail "prestart hooks ran as: $(cat "$work/state/prestart.log")"
$CTR run -d "$IMG" pst2 sleep 100 >/dev/null
if $CTR tasks start pst2 2>"$work/err"; then fail "a second task for pst2 was started"; fi
grep -q "already exists" "$work/err" || fail "duplicate task: $(cat "$work/err")"
[ "$(grep -c " pst2$" "$work/state/prestart.log")" -eq 2 ] || fail "pre-start hooks ran for a refused duplicate"
$CTR tasks kill -s SIGKILL pst2 && sleep 0.3 && $CTR tasks rm pst2 >/dev/null && $CTR containers rm pst2
if $CTR run --rm "$IMG" nostart1 true 2>"$work/err"; then fail "the pre-start veto was ignored"; fi
grep -q "nostart1 may not start" "$work/err" || fail "no pre-start veto message: $(cat "$work/err")"
[ ! -d "$work/state/io.containerd.runtime.v2.task/default/nostart1" ] || fail "a vetoed task left its bundle"
$CTR containers rm nostart1 2>/dev/null || true

# --- spec checks: a bad spec is InvalidArgument naming what was wrong, and nothing is left half-made ------
mkdir "$work/rootfs"
tar -xzf "$(ls -S "$work"/fx/busybox-oci/blobs/sha256/* | head -1)" -C "$work/rootfs"
spec() { # SECCOMP USER -> a spec with the rootfs at $work/rootfs
    printf '{"ociVersion":"1.0.2","process":{"user":%s,"args":["/bin/echo","from-config"],"env":["PATH=/bin"],' "$2"
    printf '"cwd":"/"},"root":{"path":"%s"},"mounts":[{"destination":"/proc","type":"proc","source":"proc"}],' "$work/rootfs"
    printf '"linux":{"namespaces":[{"type":"pid"},{"type":"mount"}]%s}}' "$1"
}
sc() { printf ',"seccomp":{"defaultAction":"SCMP_ACT_ALLOW","architectures":["%s"],"syscalls":[{"names":["acct","%s"],"action":"SCMP_ACT_ERRNO"}]}' "$1" "$2"; }
spec "$(sc SCMP_ARCH_X86_64 swapon)" '{"uid":0,"gid":0}' >"$work/spec-ok.json"
[ "$($CTR run --rm --config "$work/spec-ok.json" sp0)" = from-config ] || fail "a good spec with seccomp did not run"
spec "$(sc SCMP_ARCH_X86_64 nosuch_syscall)" '{"uid":0,"gid":0}' >"$work/spec-1.json"
spec "$(sc SCMP_ARCH_NOPE swapon)" '{"uid":0,"gid":0}' >"$work/spec-2.json"
spec "" '{"uid":3000000000,"gid":0}' >"$work/spec-3.json"
spec "" '{"uid":0,"gid":0,"additionalGids":[4000000000]}' >"$work/spec-4.json"
for case in "1:unknown syscall nosuch_syscall" "2:unknown architecture SCMP_ARCH_NOPE" \
    "3:process.user.uid 3000000000 is out of range" "4:process.user.additionalGids\[0\] 4000000000 is out of range"; do
    n=${case%%:*}
    if $CTR run --rm --config "$work/spec-$n.json" "sp$n" 2>"$work/err"; then fail "bad spec $n ran"; fi
    grep -q "spec: .*${case#*:}.*invalid argument" "$work/err" || fail "spec $n: $(cat "$work/err")"
    [ ! -d "$work/state/io.containerd.runtime.v2.task/default/sp$n" ] || fail "bad spec $n left its bundle"
    $CTR containers rm "sp$n" 2>/dev/null || true
done
if $CTR run --rm --mount type=bind,src=/tmp,dst=rel,options=rbind:ro "$IMG" sp5 true 2>"$work/err"; then
    fail "a relative mount destination was accepted"
fi
grep -q "destination rel must be an absolute path" "$work/err" || fail "mount check: $(cat "$work/err")"
$CTR run --rm --seccomp "$IMG" sp6 echo seccomp-ok | grep -q seccomp-ok || fail "containerd's default seccomp profile"

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
shim=$(pgrep -f "berth-shim d1 $work/") || fail "no shim for d1"
shimfds=$(fds "$shim")
! ls -l "/proc/$shim/fd" | grep -q "$work/root" || fail "the shim holds berthd's files: $(ls -l "/proc/$shim/fd")"
[ "$($CTR tasks exec --exec-id e1 d1 echo from-exec)" = from-exec ] || fail "tasks exec"
[ "$(fds "$shim")" -eq "$shimfds" ] || fail "the shim leaked fds over an exec: $shimfds -> $(fds "$shim")"
$CTR tasks kill -s SIGKILL d1
i=0
until $CTR tasks ls | grep -q "^d1 .*STOPPED"; do i=$((i + 1)); [ $i -lt 100 ] || fail "kill"; sleep 0.05; done
$CTR tasks rm d1 >/dev/null && $CTR containers rm d1 || fail "tasks rm / containers rm"
# deletes of one task at once (the CRI's stop and remove race so): one deletes, the others find it gone, and
# no call uses the task after it was freed (the sanitizer build sees that)
$CTR run -d "$IMG" d2 true >/dev/null
i=0
until $CTR tasks ls | grep -q "^d2 .*STOPPED"; do i=$((i + 1)); [ $i -lt 100 ] || fail "d2 did not stop"; sleep 0.05; done
ok=0
rms=""
for n in 1 2 3 4; do
    $CTR tasks rm d2 >"$work/rm$n" 2>&1 &
    rms="$rms $!"
done
for p in $rms; do wait "$p" && ok=$((ok + 1)); done
[ $ok -ge 1 ] || fail "no delete of d2 succeeded: $(cat "$work"/rm*)"
! $CTR tasks ls | grep -q "^d2 " || fail "d2's task is still listed"
$CTR version >/dev/null || fail "berthd died over concurrent deletes"
$CTR containers rm d2 || fail "containers rm d2"

# --- signals: a trapping shell exits 143 on SIGTERM, anything 137 on SIGKILL ---------------------------
# (a signal must reach a started task: a kill between ctr's create and start fails its start, as under load)
running() {
    i=0
    until $CTR tasks ls | grep -q "^$1 .*RUNNING"; do i=$((i + 1)); [ $i -lt 200 ] || fail "$1 did not run"; sleep 0.05; done
}
set +e
$CTR run --rm "$IMG" s1 sh -c 'trap "exit 143" TERM; while :; do sleep 0.1; done' &
RUN=$!
running s1
sleep 0.3 # the trap is set
$CTR tasks kill s1
wait $RUN
[ $? -eq 143 ] || fail "SIGTERM to a trapping shell"
$CTR run --rm "$IMG" s2 sleep 100 &
RUN=$!
running s2
$CTR tasks kill -s SIGKILL s2
wait $RUN
[ $? -eq 137 ] || fail "SIGKILL"
set -e

# --- OOM: a container over its memory limit is killed (137), and /tasks/oom is published first -----------
$CTR events >"$work/oomev" 2>&1 &
EVENTS=$!
sleep 0.2
$CTR run --rm --memory-limit 16777216 "$IMG" nooom1 true || fail "a container under its memory limit"
set +e
$CTR run --rm --memory-limit 16777216 "$IMG" oom1 sh -c 'tail /dev/zero'
rc=$?
set -e
[ $rc -eq 137 ] || fail "a container over its memory limit exited $rc"
i=0
until grep -q '/tasks/oom {"container_id":"oom1"}' "$work/oomev"; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "no /tasks/oom: $(cat "$work/oomev")"; sleep 0.05
done
kill $EVENTS
! grep -q '/tasks/oom {"container_id":"nooom1"}' "$work/oomev" || fail "an OOM event for a container that exited normally"

# a client that just went (the events subscriber killed above) may still hold its socket for a moment; a
# leak stays
i=0
until [ "$(fds "$PID")" -le "$FDS" ]; do
    i=$((i + 1))
    [ $i -lt 40 ] || fail "berthd leaked fds: $FDS -> $(fds "$PID"): $(ls -l /proc/$PID/fd)"
    sleep 0.05
done

# --- live restore, and a bundle nobody owns (no shim, a mount in its rootfs) ------------------------------
$CTR run -d "$IMG" live sleep 1000 >/dev/null
orphan=$work/state/io.containerd.runtime.v2.task/default/orphan1
mkdir -p "$orphan/rootfs" && echo '{}' >"$orphan/config.json"
mount -t tmpfs berth-orphan "$orphan/rootfs"
kill -9 "$PID"
wait "$PID" 2>/dev/null || true
PID=""
start
$CTR tasks ls | grep -q "^live .*RUNNING" || fail "the task did not survive a berthd restart"
[ ! -d "$orphan" ] || fail "a bundle nobody owns was not removed"
! grep -q "$orphan" /proc/mounts || fail "a bundle nobody owns kept its mount"
$CTR events >"$work/events" 2>&1 &
EVENTS=$!
sleep 0.2
$CTR tasks kill -s SIGKILL live
i=0
until grep -q "/tasks/exit" "$work/events"; do i=$((i + 1)); [ $i -lt 100 ] || fail "no exit event after restart"; sleep 0.05; done
kill $EVENTS
$CTR tasks rm live >/dev/null && $CTR containers rm live
# a process that ends while berthd is away: STOPPED after the restart, and removable
$CTR run -d "$IMG" away sleep 1000 >/dev/null
awaypid=$($CTR tasks ls | awk '$1 == "away" { print $2 }')
kill -9 "$PID"
wait "$PID" 2>/dev/null || true
PID=""
kill -9 "$awaypid"
sleep 0.3 # the shim reaps it with no berthd listening
start
$CTR events >"$work/events-away" 2>&1 &
EVENTS=$!
i=0
until $CTR tasks ls | grep -q "^away .*STOPPED"; do i=$((i + 1)); [ $i -lt 100 ] || fail "away: not STOPPED after the restart: $($CTR tasks ls)"; sleep 0.05; done
$CTR tasks rm away >/dev/null && $CTR containers rm away || fail "away: rm"
kill $EVENTS

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
# ctr removes a task's FIFOs when it deletes the task; k9's task was deleted by its shim's death instead
for f in $(find /run/containerd/fifo -name 'k9-stdin' 2>/dev/null); do rm -rf "$(dirname "$f")"; done

# --- nothing left behind -------------------------------------------------------------------------------
[ -z "$($CTR tasks ls -q 2>/dev/null)" ] || fail "tasks left"
! awk '{ print $2 }' /proc/mounts | grep -q "^$work/state" || fail "rootfs mounts left"
! pgrep -f "berth-shim .* $work/" >/dev/null || fail "shims left"
[ "$(fifos)" -le "$FIFOS" ] || fail "FIFOs left in /run/containerd/fifo: $FIFOS -> $(fifos)"
[ -z "$(find "$work/state" -type p)" ] || fail "FIFOs left in the state dir"
echo "ctr run workflows: ok"
