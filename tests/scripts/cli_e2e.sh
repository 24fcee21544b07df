#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The berth CLI end to end on a real berthd, runc, CNI plugins and a local registry (127.0.0.1):
# --help of every command, the man page and bash completion (generated from the command table); bad input
# (one line "berth: ...", a non-zero exit); import; run --rm (output, exit codes, stdin, flags, signals
# forwarded, snapshot and record gone); -it under script(1) (a tty, its size, raw mode, restored); -d with
# logs (streams, --tail, -t, -f through a rotation); -dit and attach; exec; stop, kill, rm -f of several;
# ps, ps -a, --format json; images, tag, rmi, inspect; volumes and networks, with a published port
# reached on 127.0.0.1 only and a read-only named volume; events, info, version, modules; pull and push
# with progress bars under script(1), plain lines without a tty, and --quiet; a missing image pulled by run.
# usage: cli_e2e.sh BERTHD MODULE_DIR SOURCE_DIR BERTH SHARE_DIR
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
SRC=$3
BERTH=$4
SHARE=$5
for need in /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/portmap script docker-registry; do
    command -v "$need" >/dev/null 2>&1 || [ -x "$need" ] || { echo "FAIL $need is missing"; exit 1; }
done
work=$(mktemp -d /tmp/berth-cli-XXXXXX)
BR=bc$$
BR2=bd$$
X=$(($$ % 200 + 20))
NET=10.232.$X
NET2=10.232.$((X + 1))
export BERTH_ADDRESS="$work/state/berthd.sock" BERTH_DATA_ROOT="$work/cli" BERTH_FIFO_DIR="$work/fifo"
unset BERTH_NAMESPACE CONTAINERD_NAMESPACE
TASKS="$work/state/io.containerd.runtime.v2.task/default"
IMG=berth-busybox
B=$BERTH

cleanup() {
    status=$?
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        for c in $($B ps -a -q 2>/dev/null); do $B rm -f "$c" >/dev/null 2>&1 || true; done
    fi
    stop_test_processes
    for f in "$TASKS"/*/init.pid; do
        [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
    done
    kill_test_shims
    drop_rules "$NET." "$NET2."
    umount_under "$work"
    ip link del "$BR" 2>/dev/null || true
    ip link del "$BR2" 2>/dev/null || true
    rm -rf "$work"
    exit $status
}
PID=""
trap cleanup EXIT

bridge_config "$work/berthd.yaml" "$BR" "$NET"
start_berthd_cli "$work/berthd.yaml"
sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$work/fx" >/dev/null

# under script(1): a failure says what the terminal showed (set -e would end the test silently)
tty_run() { script -qec "$1" /dev/null </dev/null >"$work/tty" 2>&1 || fail "under a terminal: $1: $(cat "$work/tty")"; }
# one_line_error WHAT CMD...: CMD fails with exactly one line "berth: ..." on stderr; the line in $work/err
one_line_error() {
    what=$1
    shift
    if "$@" >"$work/out" 2>"$work/err"; then fail "$what: succeeded: $(cat "$work/out")"; fi
    [ "$(wc -l <"$work/err")" -eq 1 ] || fail "$what: not one line: $(cat "$work/err")"
    grep -q "^berth: " "$work/err" || fail "$what: no 'berth: ' line: $(cat "$work/err")"
}

# --- the command table: --help, man page, completion -------------------------------------------------------
n=0
for c in $($B __gen commands | tr ' ' '_'); do
    c=$(echo "$c" | tr '_' ' ')
    # shellcheck disable=SC2086
    $B $c --help >"$work/out" 2>&1 || fail "berth $c --help failed: $(cat "$work/out")"
    grep -q "^Usage: berth $c " "$work/out" || fail "berth $c --help: $(head -3 "$work/out")"
    n=$((n + 1))
done
[ $n -ge 30 ] || fail "only $n commands in the table"
$B --help | grep -q "^  run " || fail "berth --help lists no run"
$B run --help | grep -q -- "--cap-add" || fail "run --help has no --cap-add"
MAN=$SHARE/man/man1/berth.1
[ -s "$MAN" ] || fail "no man page at $MAN"
[ "$(cat "$MAN")" = "$($B __gen man)" ] || fail "the installed man page is not the table's"
if command -v groff >/dev/null; then
    groff -man -Tutf8 -ww -z "$MAN" 2>"$work/err" && [ ! -s "$work/err" ] || fail "groff warns: $(cat "$work/err")"
    MANWIDTH=100 man -l "$MAN" 2>/dev/null | grep -q "berth run \[OPTIONS\] IMAGE" || fail "man -l: no berth run"
fi
COMP=$SHARE/bash-completion/completions/berth
bash -n "$COMP" || fail "the completion is not bash"
# shellcheck disable=SC2016
comp() { bash -c ". '$COMP'; COMP_WORDS=($1); COMP_CWORD=$2; _berth; echo \${COMPREPLY[*]}"; }
[ "$(comp "berth ru" 1)" = run ] || fail "completion of ru: $(comp "berth ru" 1)"
[ "$(comp "berth run --rm --na" 3)" = --name ] || fail "completion of run --na: $(comp "berth run --rm --na" 3)"
[ "$(comp "berth volume pr" 2)" = prune ] || fail "completion of volume pr"

# --- bad input: one line, a non-zero exit ----------------------------------------------------------------
one_line_error "no daemon" env BERTH_ADDRESS="$work/nosuch.sock" $B ps
grep -qx "berth: cannot connect to berthd at $work/nosuch.sock: no such file" "$work/err" || fail "no daemon: $(cat "$work/err")"
set +e
$B --address "$work/nosuch.sock" version >/dev/null 2>&1
[ $? -eq 125 ] || fail "no daemon: not 125"
set -e
one_line_error "bad port" $B run --rm -p 127.0.0.1:80 $IMG true
grep -q 'invalid port spec "127.0.0.1:80"' "$work/err" || fail "bad port: $(cat "$work/err")"
one_line_error "bad port 2" $B run --rm -p 70000:80 $IMG true
one_line_error "bad volume" $B run --rm -v data $IMG true
grep -q 'invalid volume spec "data"' "$work/err" || fail "bad volume: $(cat "$work/err")"
one_line_error "bad volume 2" $B run --rm -v data:rel $IMG true
one_line_error "unknown flag" $B run --bogus $IMG true
grep -q "unknown flag: --bogus" "$work/err" || fail "unknown flag: $(cat "$work/err")"
one_line_error "missing argument" $B run
one_line_error "missing flag value" $B run --name
one_line_error "unknown command" $B frobnicate
$B ps -a -q >"$work/out"
[ ! -s "$work/out" ] || fail "bad input left containers: $(cat "$work/out")"

# --- import: plain lines without a terminal, the image listed ------------------------------------------------
$B import "$work/fx/busybox-oci.tar" >"$work/out" || fail "import"
! grep -q "$(printf '\033')" "$work/out" || fail "import printed escapes without a terminal"
[ "$($B import -q "$work/fx/busybox-oci.tar" | wc -l)" -le 1 ] || fail "import -q printed progress"
tty_run "$B import $work/fx/busybox-oci.tar"
grep -q "$(printf '\033')\[" "$work/tty" && grep -q "saved" "$work/tty" || fail "import on a terminal: $(cat -A "$work/tty")"
$B images | grep -Eq "^berth-busybox +latest +sha256:[0-9a-f]{12} +[0-9.]+[kM]B " || fail "images: $($B images)"
one_line_error "unknown image" $B run --rm --pull never nosuch/image true
grep -q 'docker.io/nosuch/image:latest' "$work/err" || fail "unknown image: $(cat "$work/err")"
# docker's notice "Unable to find image ... locally" comes first: one error line, the last
if $B run --rm --plain-http 127.0.0.1:1/nosuch true >/dev/null 2>"$work/err"; then fail "ran an image from nowhere"; fi
[ "$(grep -c '^berth: ' "$work/err")" -eq 1 ] && tail -1 "$work/err" | grep -q '^berth: .*127.0.0.1:1' ||
    fail "unknown image from a registry that is not there: $(cat "$work/err")"

# --- run --rm: output, exit codes, stdin, flags ---------------------------------------------------------
SNAPS="$work/root/io.containerd.snapshotter.v1.overlayfs/snapshots"
nsnap=$(ls "$SNAPS" | wc -l)
[ "$($B run --rm $IMG echo hello)" = hello ] || fail "run --rm echo hello"
[ "$($B run --rm $IMG)" = "hello from berth" ] || fail "the image's default command"
set +e
$B run --rm $IMG sh -c 'exit 7'
rc=$?
set -e
[ $rc -eq 7 ] || fail "exit code 7: $rc"
[ "$(echo through-stdin | $B run --rm -i $IMG cat)" = through-stdin ] || fail "stdin with -i"
[ "$(echo not-read | $B run --rm $IMG cat)" = "" ] || fail "stdin without -i reached the container"
[ "$($B run --rm $IMG sh -c 'echo err >&2' 2>&1 >/dev/null)" = err ] || fail "stderr"
[ "$($B ps -a -q)" = "" ] || fail "run --rm left containers: $($B ps -a)"
[ "$(ls "$SNAPS" | wc -l)" -eq "$nsnap" ] || fail "run --rm left snapshots"
out=$($B run --rm -e FOO=bar -w /tmp -u 1000:1000 --hostname hosty $IMG sh -c 'echo $FOO $(pwd) $(id -u):$(id -g) $(hostname)')
[ "$out" = "bar /tmp 1000:1000 hosty" ] || fail "-e -w -u --hostname: $out"
[ "$($B run --rm --entrypoint /bin/echo $IMG via-entrypoint)" = via-entrypoint ] || fail "--entrypoint"
if $B run --rm --read-only $IMG touch /x 2>/dev/null; then fail "--read-only: the rootfs was writable"; fi
$B run --rm --cap-drop NET_RAW --cap-add SYS_TIME $IMG sh -c 'grep CapEff /proc/self/status' >"$work/out"
[ "$(awk '{ print $2 }' "$work/out")" != 00000000a80425fb ] || fail "--cap-add/--cap-drop changed nothing"
$B create --name lim --memory 16m --cpus 0.5 --label a=b $IMG true >/dev/null
$B inspect lim >"$work/inspect"
grep -q '"limit": 16777216' "$work/inspect" || fail "--memory not in the spec"
grep -q '"quota": 50000' "$work/inspect" || fail "--cpus not in the spec"
grep -q '"a": "b"' "$work/inspect" || fail "--label"
[ "$($B ps -a --format json | grep '"Names":"lim"' | grep -c '"State":"created"')" -eq 1 ] || fail "ps: lim not created"
$B start lim >/dev/null
$B rm lim >/dev/null 2>&1 || { sleep 0.5; $B rm lim >/dev/null; }

# --- signals: forwarded to the task ---------------------------------------------------------------------
for s in TERM:143 INT:130 HUP:129 USR1:138; do
    sig=${s%%:*}
    code=${s#*:}
    $B run --rm --name "sig$sig" $IMG sh -c "trap 'exit $code' $sig; echo ready; while :; do sleep 0.1; done" >"$work/sig" &
    RUN=$!
    i=0
    until grep -q ready "$work/sig"; do i=$((i + 1)); [ $i -lt 100 ] || fail "sig$sig did not start"; sleep 0.05; done
    kill -"$sig" $RUN
    set +e
    wait $RUN
    rc=$?
    set -e
    [ $rc -eq "$code" ] || fail "SIG$sig was not forwarded: exit $rc, want $code"
done

# --- run -d --rm: removed when it exits, with its log dir --------------------------------------------------
$B run -d --rm --name drm $IMG sh -c 'echo bye; sleep 0.5' >/dev/null
$B ps -q | grep -qx drm || fail "run -d --rm: not running"
i=0
until ! $B ps -a -q | grep -qx drm; do i=$((i + 1)); [ $i -lt 100 ] || fail "run -d --rm: not removed"; sleep 0.1; done
[ ! -e "$work/cli/containers/default/drm" ] || fail "run -d --rm left its log dir"

# --- -it under script: a tty, its size, raw mode while it runs, restored after --------------------------
set +e
tty_run "stty rows 33 cols 111; $B run -it --rm $IMG sh -c 'tty; stty size; exit 3'; echo after=\$?; stty -a"
set -e
grep -q "/dev/pts/[0-9]" "$work/tty" || fail "run -it: no terminal: $(cat "$work/tty")"
grep -q "33 111" "$work/tty" || fail "run -it: the size did not follow: $(cat "$work/tty")"
grep -q "after=3" "$work/tty" || fail "run -it: exit code: $(cat "$work/tty")"
grep -q " icanon" "$work/tty" && grep -q " echo" "$work/tty" || fail "the terminal was not restored: $(cat "$work/tty")"
script -qec "stty rows 20 cols 70; $B run -it --rm --name rawck $IMG sh -c 'sleep 2; stty size'" /dev/null </dev/null >"$work/rawtty" 2>&1 &
SCRIPT=$!
i=0
until bp=$(pgrep -f "^$B run -it --rm --name rawck") && [ -n "$bp" ] && [ -e "$TASKS/rawck/init.pid" ]; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "run -it rawck did not start"; sleep 0.05
done
pts=$(readlink "/proc/$bp/fd/0")
# init.pid exists once the task is created; berth goes raw just after (before start): give it time
i=0
until stty -F "$pts" -a >"$work/raw" && grep -q -- "-icanon" "$work/raw"; do
    i=$((i + 1)); [ $i -lt 100 ] || break; sleep 0.05
done
stty -F "$pts" rows 44 cols 99 # the kernel sends SIGWINCH; berth resizes the container's pty
wait $SCRIPT || true
grep -q -- "-icanon" "$work/raw" && grep -q -- "-echo " "$work/raw" || fail "run -it: the terminal was not raw: $(cat "$work/raw")"
grep -q "44 99" "$work/rawtty" || fail "run -it: SIGWINCH was not followed: $(cat "$work/rawtty")"

# --- detached: logs, streams, --tail, -t, -f through a rotation ------------------------------------------------
id=$($B run -d $IMG sh -c 'echo out1; echo err1 >&2; echo out2; printf no-newline')
echo "$id" | grep -Eq '^[0-9a-f]{12}$' || fail "run -d printed $id"
$B logs -f "$id" >"$work/o" 2>"$work/e"
[ "$(cat "$work/o")" = "$(printf 'out1\nout2\nno-newline')" ] || fail "logs stdout: $(cat -A "$work/o")"
[ "$(cat "$work/e")" = err1 ] || fail "logs stderr: $(cat -A "$work/e")"
[ "$($B logs --tail 1 "$id" 2>/dev/null)" = no-newline ] || fail "logs --tail 1: $($B logs --tail 1 "$id")"
$B logs -t "$id" 2>/dev/null | head -1 | grep -Eq '^20[0-9-]+T[0-9:.]+Z out1$' || fail "logs -t: $($B logs -t "$id")"
$B ps -a | grep -q "^$id .*Exited (0)" || fail "ps -a: $id not exited: $($B ps -a)"
! $B ps | grep -q "$id" || fail "ps shows an exited container"
logdir=$work/cli/containers/default/$id
[ -f "$logdir/$id.log" ] || fail "no log at $logdir"
$B rm "$id" >/dev/null
[ ! -e "$logdir" ] || fail "rm left the log dir"
# 120000 numbered lines of 120 bytes: the log rotates (10 MiB); logs -f started first sees them all, in order
$B run -d --name rot $IMG sh -c 'sleep 1; i=0; pad=$(printf "%0100d" 0); while [ $i -lt 120000 ]; do i=$((i+1)); echo "$i $pad"; done' >/dev/null
$B logs -f rot >"$work/follow" &
LOGS=$!
wait $LOGS || fail "logs -f rot failed"
[ -f "$work/cli/containers/default/rot/rot.log.1" ] || fail "the log did not rotate"
[ "$(wc -l <"$work/follow")" -eq 120000 ] || fail "logs -f through the rotation: $(wc -l <"$work/follow") lines"
[ "$(head -1 "$work/follow" | cut -d' ' -f1)" = 1 ] && [ "$(tail -1 "$work/follow" | cut -d' ' -f1)" = 120000 ] ||
    fail "logs -f: order"
[ "$($B logs rot | wc -l)" -eq 120000 ] || fail "logs of the rotated files: $($B logs rot | wc -l) lines"
[ "$($B logs --tail 3 rot | cut -d' ' -f1 | tr '\n' ' ')" = "119998 119999 120000 " ] || fail "--tail across files"
$B rm rot >/dev/null

# --- -dit and attach; exec ---------------------------------------------------------------------------------
$B run -dit --name att $IMG sh >/dev/null
(sleep 1; echo 'echo typed-$((6*7))'; sleep 0.5; echo 'exit 5') | timeout 30 $B attach att >"$work/att" 2>&1 && rc=0 || rc=$?
[ $rc -eq 5 ] || fail "attach: exit $rc: $(cat "$work/att")"
grep -q "typed-42" "$work/att" || fail "attach: typed input: $(cat "$work/att")"
$B rm att >/dev/null
$B run -d --name ex $IMG sleep 1000 >/dev/null
[ "$($B exec ex echo from-exec)" = from-exec ] || fail "exec"
[ "$(echo in | $B exec -i ex cat)" = in ] || fail "exec -i"
set +e
$B exec ex sh -c 'exit 9'
rc=$?
set -e
[ $rc -eq 9 ] || fail "exec exit code: $rc"
tty_run "$B exec -it ex sh -c 'tty; exit 4'; echo after=\$?"
grep -q "/dev/pts/" "$work/tty" && grep -q "after=4" "$work/tty" || fail "exec -it: $(cat "$work/tty")"

# --- stop, kill, rm -f of several; ps ------------------------------------------------------------------------
$B run -d --name s1 $IMG sleep 1000 >/dev/null
$B run -d --name s2 $IMG sh -c 'trap "exit 0" TERM; while :; do sleep 0.1; done' >/dev/null
$B run -d --name s3 $IMG sleep 1000 >/dev/null
[ "$($B ps -q | sort | tr '\n' ' ')" = "ex s1 s2 s3 " ] || fail "ps -q: $($B ps -q)"
$B ps | head -1 | grep -q "^CONTAINER ID   IMAGE  .* COMMAND  .* CREATED  .* STATUS  .* PORTS  .* NAMES$" || fail "ps header: $($B ps | head -1)"
$B ps --format json | grep '"Names":"s1"' | grep -q '"State":"running"' || fail "ps --format json: $($B ps --format json)"
sleep 0.3 # s2's trap is set
$B stop s2 >/dev/null
$B ps -a | grep -q "^s2 .*Exited (0)" || fail "stop: SIGTERM did not end s2: $($B ps -a)"
start=$(date +%s)
$B stop -t 1 s3 >/dev/null
[ $(($(date +%s) - start)) -le 4 ] || fail "stop -t 1 took too long"
$B ps -a | grep -q "^s3 .*Exited (137)" || fail "stop -t 1: no SIGKILL: $($B ps -a)"
$B kill -s USR2 s1 >/dev/null
$B ps -a | grep -q "^s1 .*Up " || fail "ps: s1 after a kill -s USR2 (sleep dies of it?)"
one_line_error "rm of a running container" $B rm s1
grep -q 'container "s1" is running' "$work/err" || fail "rm running: $(cat "$work/err")"
$B rm -f s1 s2 s3 ex >/dev/null || fail "rm -f of several"
[ "$($B ps -a -q)" = "" ] || fail "rm -f left: $($B ps -a)"
[ "$(ls "$SNAPS" | wc -l)" -eq "$nsnap" ] || fail "rm left snapshots"

# --- images, tag, rmi, inspect ------------------------------------------------------------------------------
$B tag $IMG mytag:1
$B images | grep -q "^mytag  *1 " || fail "tag: $($B images)"
$B images --format json | grep -q '"Name":"docker.io/library/mytag:1"' || fail "images --format json"
$B inspect mytag:1 | grep -q '"Name": "docker.io/library/mytag:1"' || fail "inspect of an image"
$B rmi mytag:1 >/dev/null
! $B images -q | grep -q mytag || fail "rmi: $($B images)"
one_line_error "rmi of nothing" $B rmi mytag:1
one_line_error "inspect of nothing" $B inspect nosuchthing

# --- volumes and networks: a published port on 127.0.0.1 only, a read-only named volume --------------------
[ "$($B volume create vol1)" = vol1 ] || fail "volume create"
$B volume ls | grep -q "^local  *vol1 " || fail "volume ls: $($B volume ls)"
$B volume inspect vol1 | grep -q '"Name": "vol1"' || fail "volume inspect"
$B run --rm -v vol1:/www $IMG sh -c 'echo served-by-berth >/www/index.html'
$B network create --subnet "$NET2.0/24" --bridge "$BR2" net2 >/dev/null
$B network ls | grep -q "^net2  *bridge  *$NET2.0/24 " || fail "network ls: $($B network ls)"
$B network inspect net2 | grep -q "\"Bridge\": \"$BR2\"" || fail "network inspect"
port=$(($$ % 20000 + 30000))
while grep -qi ":$(printf %04X $port) " /proc/net/tcp /proc/net/tcp6 2>/dev/null; do port=$((port + 1)); done
$B run -d --name web --network net2 -p "127.0.0.1:$port:80" -v vol1:/www:ro $IMG busybox httpd -f -p 80 -h /www >/dev/null
i=0
until [ "$(timeout 3 busybox wget -q -O - "http://127.0.0.1:$port/" 2>/dev/null)" = served-by-berth ]; do
    i=$((i + 1)); [ $i -lt 50 ] || fail "the published port: $(busybox wget -O - "http://127.0.0.1:$port/" 2>&1)"; sleep 0.1
done
if timeout 3 busybox wget -q -O - "http://$NET2.1:$port/" >/dev/null 2>&1; then fail "the port was published beyond 127.0.0.1"; fi
$B ps | grep -q "127.0.0.1:$port->80/tcp" || fail "ps PORTS: $($B ps)"
$B exec web sh -c "ip -o -4 addr show eth0" | grep -q " $NET2\." || fail "--network net2: not on $NET2"
if $B exec web touch /www/x 2>/dev/null; then fail "-v vol1:/www:ro was writable"; fi
one_line_error "volume rm in use" $B volume rm vol1
$B rm -f web >/dev/null
$B network rm net2 >/dev/null
! $B network ls -q | grep -q net2 || fail "network rm"
$B volume create vol2 >/dev/null
$B volume rm vol1 >/dev/null
$B volume prune -f | grep -q "^vol2$" || fail "volume prune"
[ "$($B volume ls -q)" = "" ] || fail "volumes left: $($B volume ls)"

# --- events, version, info, modules ---------------------------------------------------------------------
$B events >"$work/events" &
EVENTS=$!
sleep 0.3
$B run --rm --name evt $IMG true
i=0
until grep -q " default /tasks/exit {.*\"containerId\":\"evt\"" "$work/events"; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "events: $(cat "$work/events")"; sleep 0.05
done
kill $EVENTS
wait $EVENTS 2>/dev/null || true
$B version | grep -q "^ Version:  1.6" || fail "version: $($B version)"
$B info | grep -q "^Snapshotters: .*overlayfs" || fail "info: $($B info)"
$B info | grep -q "^Networks: .*berth" || fail "info networks: $($B info)"
$B modules | grep -q "runtime-runc.so" || fail "modules: $($B modules)"

# --- a registry on 127.0.0.1: push and pull with progress bars, plain lines, --quiet ---------------------------
rport=$((20000 + $$ % 20000))
for _ in 1 2 3 4 5 6 7 8; do
    rport=$((rport + 1))
    if sh "$SRC/tests/fixtures/images/registry.sh" start "$work/reg" "$rport" >"$work/reg.start" 2>&1; then
        REGISTRY_DIRS="$work/reg"
        break
    fi
    rm -rf "$work/reg"
done
[ -n "$REGISTRY_DIRS" ] || fail "the registry did not start: $(cat "$work/reg.start")"
REF=127.0.0.1:$rport/cli/busybox:1
$B tag $IMG "$REF"
tty_run "$B push --plain-http $REF"
grep -q "$(printf '\033')\[" "$work/tty" || fail "push on a terminal: no redraw: $(cat -A "$work/tty")"
grep -q "\[=*" "$work/tty" || fail "push on a terminal: no bar: $(cat -A "$work/tty")"
$B rmi "$REF" >/dev/null
$B rmi $IMG >/dev/null
tty_run "$B pull --plain-http $REF"
grep -q "layer [0-9a-f]\{12\}" "$work/tty" || fail "pull on a terminal: no layer line: $(cat -A "$work/tty")"
grep -q "$(printf '\033')\[" "$work/tty" || fail "pull on a terminal: no redraw"
$B rmi "$REF" >/dev/null
$B pull --plain-http "$REF" >"$work/out"
! grep -q "$(printf '\033')" "$work/out" || fail "pull without a terminal printed escapes"
[ "$(wc -l <"$work/out")" -ge 3 ] || fail "pull without a terminal: plain lines: $(cat "$work/out")"
[ "$(tail -1 "$work/out")" = "$REF" ] || fail "pull: the last line is not the name"
$B rmi "$REF" >/dev/null
[ "$($B pull -q --plain-http "$REF")" = "$REF" ] || fail "pull -q printed more than the name"
$B rmi "$REF" >/dev/null
$B run --rm --plain-http "$REF" echo pulled-first >"$work/out" 2>"$work/err" || fail "run of a missing image: $(cat "$work/err")"
[ "$(cat "$work/out")" = pulled-first ] || fail "run of a missing image: $(cat "$work/out")"
grep -q "Unable to find image '$REF' locally" "$work/err" || fail "run did not say it pulls: $(cat "$work/err")"
$B images -q | grep -qx "$REF" || fail "run did not keep the pulled image"

# --- nothing left: containers, tasks, shims, FIFOs ------------------------------------------------------------
[ "$($B ps -a -q)" = "" ] || fail "containers left: $($B ps -a)"
! pgrep -f "berth-shim .* $work/" >/dev/null || fail "shims left"
[ "$(find "$work/fifo" -type p 2>/dev/null | wc -l)" -eq 0 ] || fail "FIFOs left: $(find "$work/fifo" -type p)"
echo "PASS cli_e2e"
