#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Logs written by berth-shim (docs/logging.md), through berthd with real runc and Debian's ctr 1.6:
# `ctr run --log-uri 'file:///...?format=cri&max-size=..&max-files=..'`: CRI lines tagged stdout/stderr, a
# line over 16 KiB cut into P pieces, a line begun in the file at once as P (continued by P/F, ended by an F
# at the exit) while the process still runs, rotation twice over
# (path -> path.1 -> path.2, the oldest dropped), all of it in the file when ctr hears of the exit; `-d`
# too; raw `file:///path` appends as containerd's shim (0755 dirs, 0644 file); a terminal's output
# (hand-encoded Tasks.Create through grpcc: ctr cannot ask for a tty with a log) tagged stdout; the stdin
# FIFO held for a log task until CloseIO, so writers may come and go; an exec's log; bad queries and unknown
# schemes refused as InvalidArgument naming the URI; 100 MB through the log (MB/s printed).
# usage: shim_logs.sh BERTHD MODULE_DIR SOURCE_DIR GRPCC
set -eu
[ -z "${SHIM_LOGS_TRACE:-}" ] || set -x
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
SRC=$3
GRPCC=$4
work=$(mktemp -d /tmp/berth-logs-XXXXXX)
cleanup() {
    status=$?
    stop_test_processes
    for p in $(cat "$work"/state/io.containerd.runtime.v2.task/*/*/*.pid 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    for p in $(pgrep -f "berth-shim .* $work/" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
    umount_under "$work"
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT
SOCK=$work/state/berthd.sock
CTR="ctr --address $SOCK"
IMG=docker.io/library/berth-busybox:latest
L=$work/logs
"$BERTHD" --root "$work/root" --state "$work/state" --log-level warn 2>>"$work/log" &
PID=$!
i=0
until $CTR version >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 200 ] || fail "berthd did not start"; sleep 0.05; done
sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$work/fx" >/dev/null
$CTR images import "$work/fx/busybox-oci.tar" >/dev/null

TS='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}Z'
# every line of the files is a CRI line
cri_only() {
    bad=$(cat "$@" | grep -Evc "^$TS (stdout|stderr) [FP] " || true)
    [ "$bad" -eq 0 ] || fail "$bad lines of $* are not CRI lines: $(cat "$@" | grep -Ev "^$TS (stdout|stderr) [FP] " | head -3 | cut -c1-80)"
}
# the lines the records make, "<stream> <text>", P pieces joined to the F that ends them (as kubelet's reader
# does); fails when a record holds more than 16 KiB
joined() {
    cat "$@" | awk '{ t = substr($0, 41); if (length(t) > 16384) exit 1
        buf[$2] = buf[$2] t; if ($3 == "F") { print $2, buf[$2]; buf[$2] = "" } }'
}
wait_stopped() {
    i=0
    until $CTR tasks ls | grep -Eq "^$1 .*STOPPED"; do
        i=$((i + 1)); [ $i -lt 200 ] || fail "task $1 did not stop: $($CTR tasks ls)"; sleep 0.05
    done
}

# --- CRI: both streams, a long line, rotation twice, no final newline; all there when ctr returns --------
# 1500 numbered lines of ~96 bytes make ~200 KB of log: with max-size 64 KiB the file rotates three times
U1="file://$L/c1/c1.log?format=cri&max-size=65536&max-files=3"
$CTR run --rm --log-uri "$U1" "$IMG" c1 sh -c '
    i=0; while [ $i -lt 1500 ]; do echo "line-$i ......................................................"; i=$((i + 1)); done
    busybox head -c 40000 /dev/zero | busybox tr "\0" x; echo
    printf "no-newline-at-end"' >"$work/c1.out" 2>&1 || fail "ctr run c1: $(cat "$work/c1.out")"
[ ! -s "$work/c1.out" ] || fail "output reached ctr, not (only) the log: $(head -c 200 "$work/c1.out")"
for f in c1.log c1.log.1 c1.log.2; do
    [ -f "$L/c1/$f" ] || fail "no $f: $(ls -l "$L/c1")"
    size=$(stat -c %s "$L/c1/$f")
    [ "$size" -le 65536 ] || fail "$f has $size bytes, over max-size"
done
[ ! -e "$L/c1/c1.log.3" ] || fail "max-files=3 kept a fourth file"
for f in c1.log.1 c1.log.2; do
    [ "$(stat -c %s "$L/c1/$f")" -gt $((65536 - 16424 - 1)) ] || fail "$f was rotated early: $(stat -c %s "$L/c1/$f") bytes"
done
cri_only "$L/c1/c1.log.2" "$L/c1/c1.log.1" "$L/c1/c1.log"
# the numbered lines left run without a gap up to the last, and the first ones were dropped
joined "$L/c1/c1.log.2" "$L/c1/c1.log.1" "$L/c1/c1.log" >"$work/c1.lines" || fail "a record over 16 KiB in c1's logs"
sed -n 's/^stdout line-\([0-9]*\) .*/\1/p' "$work/c1.lines" >"$work/nums"
first=$(head -1 "$work/nums")
[ "$first" -gt 0 ] || fail "the oldest lines were not dropped"
[ "$(tail -1 "$work/nums")" -eq 1499 ] || fail "the last numbered line is $(tail -1 "$work/nums")"
seq "$first" 1499 | cmp -s - "$work/nums" || fail "numbered lines missing or out of order in the rotated files"
cat "$L/c1/c1.log.2" "$L/c1/c1.log.1" "$L/c1/c1.log" >"$work/c1.all"
# the 40000 x line cut into pieces of at most 16 KiB (joined() checked), and the unfinished line last,
# ended by an F: P pieces come as the shim reads them, so their number is not fixed
grep '^stdout ' "$work/c1.lines" | tail -2 | awk '{ print length($2) }' >"$work/tags"
printf '40000\n17\n' | cmp -s - "$work/tags" ||
    fail "stdout's last lines are not 40000 x and the unfinished line: $(cat "$work/tags")"
[ "$(grep -c ' stdout P x' "$work/c1.all")" -ge 2 ] || fail "the 40000 x line was not cut: $(grep -c ' stdout P x' "$work/c1.all")"
[ "$(tail -1 "$work/c1.lines")" = "stdout no-newline-at-end" ] || fail "the output without a newline: $(tail -1 "$work/c1.lines")"
grep -Eq "^$TS stdout F (no-newline-at-end)?$" "$work/c1.all" || fail "the output without a newline did not end with an F line"
[ "$(tail -c 1 "$L/c1/c1.log" | od -An -c | tr -d ' ')" = '\n' ] || fail "the log does not end with a newline"

# --- the same detached, with the defaults of format=cri ------------------------------------------------
$CTR run -d --log-uri "file://$L/c2/c2.log?format=cri" "$IMG" c2 sh -c 'echo detached; echo oops >&2; exit 3' >/dev/null
wait_stopped c2
grep -Eq "^$TS stdout F detached$" "$L/c2/c2.log" || fail "detached: $(cat "$L/c2/c2.log")"
grep -Eq "^$TS stderr F oops$" "$L/c2/c2.log" || fail "detached stderr: $(cat "$L/c2/c2.log")"
$CTR tasks rm c2 >/dev/null && $CTR containers rm c2
# an exec's output to a log of its own (ctr tasks exec --log-uri)
$CTR run -d "$IMG" c3 sleep 100 >/dev/null
$CTR tasks exec --exec-id e1 --log-uri "file://$L/c3/e1.log?format=cri" c3 sh -c 'echo from-exec; printf tail >&2' ||
    fail "exec with a log"
grep -Eq "^$TS stdout F from-exec$" "$L/c3/e1.log" && joined "$L/c3/e1.log" | grep -qx "stderr tail" ||
    fail "exec log: $(cat "$L/c3/e1.log" 2>&1)"
$CTR tasks kill -s SIGKILL c3 && wait_stopped c3 && $CTR tasks rm c3 >/dev/null && $CTR containers rm c3

# --- a line begun: in the file as P while the process runs (attach and `logs -f` follow the file), continued
# by another P, ended by an F when the process is killed ---------------------------------------------------
$CTR run -d --log-uri "file://$L/pl/pl.log?format=cri" "$IMG" pl sh -c 'printf partial-; sleep 1; printf line; exec sleep 300' >/dev/null
i=0
until grep -Eq "^$TS stdout P partial-$" "$L/pl/pl.log" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 200 ] || fail "a line begun is not in the log while its process runs: $(cat "$L/pl/pl.log" 2>&1)"; sleep 0.05
done
i=0
until grep -Eq "^$TS stdout P line$" "$L/pl/pl.log"; do
    i=$((i + 1)); [ $i -lt 200 ] || fail "the line's continuation is not in the log: $(cat "$L/pl/pl.log")"; sleep 0.05
done
$CTR tasks ls | grep -Eq '^pl .*RUNNING' || fail "pl is not running: $($CTR tasks ls)"
[ "$(joined "$L/pl/pl.log")" = "" ] || fail "a line ended before the exit: $(cat "$L/pl/pl.log")"
$CTR tasks kill -s SIGKILL pl && wait_stopped pl
cri_only "$L/pl/pl.log"
[ "$(joined "$L/pl/pl.log")" = "stdout partial-line" ] || fail "the line begun: $(cat "$L/pl/pl.log")"
[ "$(sed 's/^[^ ]* //' "$L/pl/pl.log")" = "$(printf 'stdout P partial-\nstdout P line\nstdout F ')" ] ||
    fail "the line begun, continued, ended: $(cat -A "$L/pl/pl.log")"
$CTR tasks rm pl >/dev/null && $CTR containers rm pl

# --- raw: bytes appended as they come, as containerd's shim -----------------------------------------------
for n in 1 2; do
    $CTR run --rm --log-uri "file://$L/raw%20dir/r.log" "$IMG" r$n sh -c 'echo a; sleep 0.2; echo b >&2; sleep 0.2; printf c' ||
        fail "raw run $n"
done
printf 'a\nb\nca\nb\nc' | cmp -s - "$L/raw dir/r.log" || fail "raw log: $(od -c "$L/raw dir/r.log" | head)"
[ "$(stat -c %a "$L/raw dir/r.log")" = 644 ] && [ "$(stat -c %a "$L/raw dir")" = 755 ] ||
    fail "modes: $(stat -c '%a %n' "$L/raw dir" "$L/raw dir/r.log")"

# --- bad URIs: InvalidArgument naming the URI, nothing left behind ---------------------------------------
for uri in "file://$L/b/b.log?format=cri&max-size=lots" "file://$L/b/b.log?format=cri&max-files=0" \
    "file://$L/b/b.log?colour=red" "file://$L/b/b.log?format=json" "fluent://$L/b/b.log"; do
    if $CTR run --rm --log-uri "$uri" "$IMG" bad1 true 2>"$work/err"; then fail "$uri was accepted"; fi
    grep -qF "log uri $uri" "$work/err" && grep -q "invalid argument" "$work/err" ||
        fail "$uri: $(cat "$work/err")"
    [ ! -d "$work/state/io.containerd.runtime.v2.task/default/bad1" ] || fail "$uri left a bundle"
    [ ! -e "$L/b" ] || fail "$uri made its directory"
    $CTR containers rm bad1 2>/dev/null || true
done

# --- hand-encoded Tasks calls (ctr cannot ask for these): a tty to a log, stdin held until CloseIO -------
hexs() { printf %s "$1" | od -An -v -tx1 | tr -d ' \n'; }
varint() {
    v=$1 out=""
    while [ "$v" -ge 128 ]; do out="$out$(printf %02x $((v % 128 + 128)))"; v=$((v / 128)); done
    printf %s "$out$(printf %02x "$v")"
}
ld() { printf %s "$(varint $(($1 * 8 + 2)))$(varint $((${#2} / 2)))$2"; }
str() { ld "$1" "$(hexs "$2")"; }
vi() { printf %s "$(varint $(($1 * 8)))$(varint "$2")"; }
call() {
    "$GRPCC" "$SOCK" "/containerd.services.tasks.v1.Tasks/$1" --ns default --hex "$2" >"$work/out" 2>&1 ||
        fail "Tasks.$1: $(cat "$work/out")"
}
# containers from a spec of the image's rootfs unpacked (absolute root.path: no snapshot, no rootfs mounts)
mkdir "$work/rootfs"
tar -xzf "$(ls -S "$work"/fx/busybox-oci/blobs/sha256/* | head -1)" -C "$work/rootfs"
spec() { # TERMINAL ARGS_JSON
    printf '{"ociVersion":"1.0.2","process":{"terminal":%s,"user":{"uid":0,"gid":0},"args":%s,' "$1" "$2"
    printf '"env":["PATH=/bin"],"cwd":"/"},"root":{"path":"%s"},' "$work/rootfs"
    printf '"mounts":[{"destination":"/proc","type":"proc","source":"proc"},'
    printf '{"destination":"/dev/pts","type":"devpts","source":"devpts","options":["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620"]}],'
    printf '"linux":{"namespaces":[{"type":"pid"},{"type":"mount"}]}}'
}
# create_task ID STDIN STDOUT STDERR TERMINAL
create_task() {
    call Create "$(str 1 "$1")$(str 4 "$2")$(str 5 "$3")$(str 6 "$4")$(vi 7 "$5")"
}

spec true '["sh","-c","echo tty-out; echo tty-err >&2; printf tty-end"]' >"$work/t1.json"
$CTR containers create --config "$work/t1.json" t1
create_task t1 "" "file://$L/t1/t1.log?format=cri" "file://$L/t1/t1.log?format=cri" 1
call Start "$(str 1 t1)"
wait_stopped t1
cri_only "$L/t1/t1.log"
! grep -q " stderr " "$L/t1/t1.log" || fail "a terminal's output tagged stderr: $(cat "$L/t1/t1.log")"
grep -q " stdout F tty-out" "$L/t1/t1.log" && grep -q " stdout F tty-err" "$L/t1/t1.log" &&
    joined "$L/t1/t1.log" | grep -qx "stdout tty-end" || fail "terminal log: $(cat -A "$L/t1/t1.log")"
$CTR tasks rm t1 >/dev/null && $CTR containers rm t1

mkfifo "$work/s1.in"
spec false '["cat"]' >"$work/s1.json"
$CTR containers create --config "$work/s1.json" s1
create_task s1 "$work/s1.in" "file://$L/s1/s1.log?format=cri" "file://$L/s1/s1.log?format=cri" 0
call Start "$(str 1 s1)"
# writers that come and go: cat must not see the end of its input (nor go: the open would wait for ever)
timeout 5 sh -c "echo first >'$work/s1.in'" || fail "stdin: no reader for the first writer"
sleep 0.3
timeout 5 sh -c "echo second >'$work/s1.in'" || fail "stdin: no reader left after the first writer went"
sleep 0.3
$CTR tasks ls | grep -Eq '^s1 .*RUNNING' || fail "cat ended when a stdin writer went: $($CTR tasks ls)"
call CloseIO "$(str 1 s1)$(vi 3 1)"
wait_stopped s1
[ "$(sed 's/^[^ ]* //' "$L/s1/s1.log")" = "$(printf 'stdout F first\nstdout F second')" ] ||
    fail "stdin through attach-like writers: $(cat "$L/s1/s1.log")"
$CTR tasks rm s1 >/dev/null && $CTR containers rm s1

# --- 100 MB of 100-byte lines through a CRI log, against the same to /dev/null in the container ----------
gen='busybox yes 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789 | busybox head -c 100000000'
t0=$(date +%s%N)
$CTR run --rm "$IMG" p0 sh -c "$gen >/dev/null"
t1=$(date +%s%N)
$CTR run --rm --log-uri "file://$L/p1/p1.log?format=cri&max-size=1g&max-files=1" "$IMG" p1 sh -c "$gen"
t2=$(date +%s%N)
lines=$(wc -l <"$L/p1/p1.log")
[ "$lines" -ge 990000 ] || fail "100 MB of lines gave $lines log lines"
base=$(((t1 - t0) / 1000000)) logged=$(((t2 - t1) / 1000000))
echo "100 MB to stdout: $logged ms through the CRI log ($((100000 / (logged > 0 ? logged : 1))) MB/s), $base ms to /dev/null"
[ "$logged" -lt 60000 ] || fail "100 MB through the log took $logged ms"
# the shim's own CPU for those 100 MB (read, format, write), measured on a detached run before its delete
$CTR run -d --log-uri "file://$L/p2/p2.log?format=cri&max-size=1g&max-files=1" "$IMG" p2 sh -c "$gen" >/dev/null
wait_stopped p2
shim=$(pgrep -f "berth-shim p2 $work/")
cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($14 + $15) * 1000 / hz }' "/proc/$shim/stat")
echo "berth-shim CPU for 100 MB: $cpu ms ($((100000 / (cpu > 0 ? cpu : 1))) MB/s of one core)"
$CTR tasks rm p2 >/dev/null && $CTR containers rm p2

sleep 0.2
[ -z "$(pgrep -f "berth-shim .* $work/")" ] || fail "shims left: $(pgrep -af "berth-shim .* $work/")"
echo "PASS shim logs"
