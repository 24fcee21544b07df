#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The volumes module against a real berthd: the Volumes service through berth_rpc (create, idempotent
# create and AlreadyExists, get, list with filters, remove, prune; bad names, options and binds refused with
# clear errors), the volume.pre-create hook (tests/fixtures/fx_volumehook.c: a label on every volume, a
# veto, options changed), kill -9 safety (deliberate crash points between a create's directory and its
# record and between a removal's record and its directory, then berthd killed at random moments of a loop
# of creates and removes: after each restart every record has its directory and no directory, tmpfs or
# half-removed volume is left without one), and containers through ctr with the io.berth.volumes label:
# data outlives its container, :ro is enforced, an in-use volume cannot be removed, a tmpfs size is
# enforced, a host bind inside the allow-list works and one outside is refused at task create, and
# nothing is left mounted.
# usage: volumes_e2e.sh BERTHD MODULE_DIR SOURCE_DIR FIXTURE_ROOT GRPCC
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
SRC=$3
FX=$4
GRPCC=$5
BERTH_SRC=$SRC
export GRPCC BERTH_SRC
work=$(mktemp -d /tmp/berth-vol-XXXXXX)
LOOP=""
cleanup() {
    status=$?
    [ -z "$LOOP" ] || kill "$LOOP" 2>/dev/null || true
    if [ -n "$PID" ] && kill "$PID" 2>/dev/null; then
        wait "$PID" || { echo "FAIL berthd exited with $? on SIGTERM:"; tail -40 "$work/log"; status=1; }
    fi
    for p in $(cat "$work"/state/io.containerd.runtime.v2.task/*/*/*.pid 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    for p in $(pgrep -f "berth-shim .* $work/" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    umount_under "$work"
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT
SOCK=$work/state/berthd.sock
CTR="ctr --address $SOCK"
IMG=docker.io/library/berth-busybox:latest
VOLS=$work/root/io.berth.volume.v1.local/default
HOOKLOG=$work/state/test.volumes.v1.hook/volumehook.log
mkdir -p "$work/allowed/sub" "$work/allowed-evil" "$work/outside"
ln -s "$work/outside" "$work/allowed/escape"

# start [ENV=VALUE...]: berthd with the hook fixture and $work/allowed as the allow-list
start() {
    env "$@" "$BERTHD" --root "$work/root" --state "$work/state" --log-level info \
        --set "module_dirs=[\"$FX/volumes\"]" \
        --set "plugins.\"io.berth.volume.v1.local\".bind_allow=[\"$work/allowed/\"]" 2>>"$work/log" &
    PID=$!
    i=0
    until $CTR version >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 200 ] || fail "berthd did not start"; sleep 0.05; done
}
# killed: berthd was killed (by a crash point or by us); reaps it
killed() {
    wait "$PID" 2>/dev/null || true
    PID=""
}

# vol METHOD TEXT [--expect CODE] [--ns NS]: one Volumes call (namespace default unless --ns)
vol() {
    _m=$1 _t=$2
    shift 2
    case "$_m" in List) _r=ListVolumes ;; Prune) _r=PruneVolumes ;; *) _r=${_m}Volume ;; esac
    _ns=default
    if [ "${1:-}" = --ns ]; then _ns=$2; shift 2; fi
    berth_rpc "$SOCK" "/berth.services.volumes.v1.Volumes/$_m" "berth.services.volumes.v1.${_r}Request" \
        "berth.services.volumes.v1.${_r}Response" "$_t" --ns "$_ns" "$@"
}
# refused METHOD TEXT CODE MESSAGE: the call ends with gRPC status CODE and a message holding MESSAGE
refused() {
    out=$(vol "$1" "$2" --expect "$3") || fail "$1 $2: not status $3"
    case "$out" in *"$4"*) ;; *) fail "$1 $2: message \"$out\" lacks \"$4\"" ;; esac
}
has() { case "$1" in *"$2"*) ;; *) fail "${3:-}: \"$2\" not in: $1" ;; esac; }
hasnt() { case "$1" in *"$2"*) fail "${3:-}: \"$2\" in: $1" ;; esac; }
opt() { printf 'options {key: "%s" value: "%s"} ' "$1" "$2"; }
mounted() { awk -v p="$1" '$2 == p { f = 1 } END { exit !f }' /proc/mounts; }
names() { vol List "$1" | sed -n 's/^  name: "\(.*\)"$/\1/p' | tr '\n' ' '; }

start

# --- create: idempotent, AlreadyExists, the hook's label -------------------------------------------------
out=$(vol Create 'name: "data" labels {key: "a" value: "b"}')
has "$out" 'created: true' "first create"
has "$out" 'key: "hooked"' "the hook's label"
has "$out" "mountpoint: \"$VOLS/data/_data\"" "mountpoint"
[ -d "$VOLS/data/_data" ] || fail "no $VOLS/data/_data"
echo kept >"$VOLS/data/_data/file"
out=$(vol Create 'name: "data" labels {key: "a" value: "b"}') || fail "a second create of the same volume"
hasnt "$out" 'created: true' "a second create of the same volume"
[ "$(cat "$VOLS/data/_data/file")" = kept ] || fail "an idempotent create touched the data"
refused Create "name: \"data\" $(opt type tmpfs)" 6 'volume "data" exists with other options'
out=$(vol Create "name: \"t1\" $(opt type tmpfs) $(opt size 1m) $(opt o mode=0700,uid=1000)")
has "$out" 'created: true' "tmpfs create"
mounted "$VOLS/t1/_data" || fail "t1's tmpfs is not mounted"
grep " $VOLS/t1/_data tmpfs .*size=1024k" /proc/mounts | grep -q "uid=1000" || fail "t1's tmpfs options: $(grep t1 /proc/mounts)"
# the hook may change options: hooktmpfs* become 1m tmpfs volumes
out=$(vol Create 'name: "hooktmpfs1"')
has "$out" 'value: "tmpfs"' "options the hook set"
mounted "$VOLS/hooktmpfs1/_data" || fail "the hook's tmpfs is not mounted"
grep -q "^default hooktmpfs1$" "$HOOKLOG" || fail "hook log: $(cat "$HOOKLOG")"
grep -q "^default t1 .*type=tmpfs" "$HOOKLOG" || fail "the hook did not see t1's options: $(cat "$HOOKLOG")"
# the hook's veto: nothing made
refused Create 'name: "veto1"' 9 "fx_volumehook refuses names starting with veto"
[ ! -e "$VOLS/veto1" ] || fail "a vetoed volume left $VOLS/veto1"
refused Get 'name: "veto1"' 5 'volume "veto1": not found'

# --- bad names and options: clear errors, nothing stored -------------------------------------------------
long=$(printf 'n%.0s' $(seq 300))
refused Create 'name: ".."' 3 "volume name \"..\" is invalid: it must not start with '.' or '-'"
refused Create 'name: "/"' 3 "volume name \"/\" is invalid: character '/'"
refused Create "name: \"$long\"" 3 "is 300 bytes long: at most 255"
refused Create 'name: ""' 3 "volume name is empty"
refused Create 'name: "a/b"' 3 "character '/'"
refused Create "name: \"x\" $(opt colour blue)" 3 'unknown option "colour" (known: type, size, device, o)'
refused Create "name: \"x\" $(opt size 1m)" 3 "option size is for type tmpfs only"
refused Create "name: \"x\" $(opt type nfs)" 3 'option type "nfs" is unknown'
refused Create "name: \"x\" $(opt type tmpfs) $(opt size 10x)" 3 'option size "10x" is not a number'
refused Create "name: \"x\" $(opt type tmpfs) $(opt o exec)" 3 'option o: "exec" is not allowed (allowed: mode, uid, gid, nr_inodes'
refused Create "name: \"x\" $(opt type bind)" 3 "type bind needs option device"
refused Get 'name: "x"' 5 'volume "x": not found'
[ ! -e "$VOLS/x" ] || fail "a refused create left $VOLS/x"

# --- binds: inside the allow-list only (component-wise, symlinks resolved) -------------------------------
out=$(vol Create "name: \"b1\" $(opt type bind) $(opt device "$work/allowed/sub")")
has "$out" "mountpoint: \"$work/allowed/sub\"" "a bind's mountpoint"
refused Create "name: \"b2\" $(opt type bind) $(opt device "$work/allowed-evil")" 7 \
    "bind source \"$work/allowed-evil\" is not inside the allow-list (bind_allow: $work/allowed)"
refused Create "name: \"b3\" $(opt type bind) $(opt device "$work/allowed/escape")" 7 \
    "(really \"$work/outside\") is not inside the allow-list"
refused Create "name: \"b4\" $(opt type bind) $(opt device /etc)" 7 "is not inside the allow-list"
refused Create "name: \"b5\" $(opt type bind) $(opt device "$work/allowed/nothing")" 5 "No such file or directory"

# --- get, list, filters, namespaces -----------------------------------------------------------------------
out=$(vol Get 'name: "data"')
has "$out" 'key: "a"' "Get's labels"
has "$out" 'driver: "local"' "Get's driver"
has "$out" 'created_at' "Get's created_at"
vol Create 'name: "elsewhere"' --ns other >/dev/null
[ "$(names '')" = "b1 data hooktmpfs1 t1 " ] || fail "List: $(names '')"
[ "$(names 'filters: "name==data"')" = "data " ] || fail "name filter: $(names 'filters: "name==data"')"
[ "$(names 'filters: "options.type==tmpfs"')" = "hooktmpfs1 t1 " ] || fail "options filter"
[ "$(names 'filters: "labels.a==b"')" = "data " ] || fail "labels filter"
[ "$(names 'filters: "labels.hooked==yes,driver==local"')" = "b1 data hooktmpfs1 t1 " ] || fail "labels and driver"
[ "$(names "filters: \"mountpoint==\\\"$work/allowed/sub\\\"\"")" = "b1 " ] || fail "mountpoint filter"
[ "$(names 'filters: "dangling==true"')" = "b1 data hooktmpfs1 t1 " ] || fail "dangling filter"
[ "$(names 'filters: "name==b1" filters: "name==t1"')" = "b1 t1 " ] || fail "two filters"
refused List 'filters: "name=="' 3 "parse error"

# --- remove and prune -------------------------------------------------------------------------------------
vol Remove 'name: "data"' >/dev/null
[ ! -e "$VOLS/data" ] || fail "remove left $VOLS/data"
refused Remove 'name: "data"' 5 'volume "data": not found'
vol Remove 'name: "b1"' >/dev/null
[ -d "$work/allowed/sub" ] || fail "removing a bind volume removed its host directory"
vol Create 'name: "p1"' >/dev/null
vol Create "name: \"p2\" $(opt type tmpfs) $(opt size 4m)" >/dev/null
head -c 300000 /dev/zero >"$VOLS/p1/_data/a"
head -c 200000 /dev/zero >"$VOLS/p2/_data/b"
out=$(vol Prune 'filters: "name~=^p"')
has "$out" 'removed: "p1"' "prune"
has "$out" 'removed: "p2"' "prune"
bytes=$(echo "$out" | sed -n 's/^space_reclaimed: //p')
[ "${bytes:-0}" -ge 500000 ] || fail "prune reclaimed ${bytes:-0} bytes: $out"
[ ! -e "$VOLS/p1" ] && [ ! -e "$VOLS/p2" ] || fail "prune left directories"
! mounted "$VOLS/p2/_data" || fail "prune left p2's tmpfs mounted"
[ "$(names '')" = "hooktmpfs1 t1 " ] || fail "after prune: $(names '')"
[ "$(vol List '' --ns other | grep -c 'name: "elsewhere"')" = 1 ] || fail "prune in default touched other"
echo "ok service"

# --- kill -9 at the crash points: after a create's tmpfs, after a removal's record -----------------------
stop_test_processes
start BERTH_TEST_VOLUMES_CRASH=create
vol Create "name: \"crash1\" $(opt type tmpfs) $(opt size 1m)" >/dev/null 2>&1 && fail "the create crash point did not fire"
killed
mounted "$VOLS/crash1/_data" || fail "the crash point fired before the tmpfs was mounted"
start
# the collector starts with the volume plugin, at its first use (BERTH_PLUGIN_ON_DEMAND)
refused Get 'name: "crash1"' 5 "not found"
i=0
while [ -e "$VOLS/crash1" ]; do i=$((i + 1)); [ $i -lt 100 ] || fail "the collector left $VOLS/crash1"; sleep 0.05; done
! mounted "$VOLS/crash1/_data" || fail "the collector left crash1's tmpfs mounted"
vol Create "name: \"crash2\" $(opt type tmpfs) $(opt size 1m)" >/dev/null
echo gone >"$VOLS/crash2/_data/f"
stop_test_processes
start BERTH_TEST_VOLUMES_CRASH=remove
vol Remove 'name: "crash2"' >/dev/null 2>&1 && fail "the remove crash point did not fire"
killed
[ -e "$VOLS/crash2/_data/f" ] || fail "the crash point fired after the directory went"
start
refused Get 'name: "crash2"' 5 "not found"
i=0
while [ -e "$VOLS/crash2" ]; do i=$((i + 1)); [ $i -lt 100 ] || fail "the collector left $VOLS/crash2"; sleep 0.05; done
! mounted "$VOLS/crash2/_data" || fail "the collector left crash2's tmpfs mounted"
vol Get 'name: "t1"' >/dev/null || fail "the collector took t1"
[ -d "$VOLS/t1/_data" ] || fail "the collector took t1's directory"
echo "ok crash points"

# --- kill -9 at random moments of a loop of creates and removes ------------------------------------------
# consistent: every record's directory is there, every directory has its record, nothing half-removed
consistent() {
    recs=$(names '')
    for n in $recs; do [ -d "$VOLS/$n/_data" ] || { echo "record $n has no directory"; return 1; }; done
    for d in "$VOLS"/* "$VOLS"/.[!.]*; do
        [ -e "$d" ] || continue
        n=$(basename "$d")
        case " $recs" in *" $n "*) ;; *) echo "directory $n has no record"; return 1 ;; esac
    done
    for m in $(awk -v w="$VOLS/" 'index($2, w) == 1 { print $2 }' /proc/mounts); do
        n=$(basename "$(dirname "$m")")
        case " $recs" in *" $n "*) ;; *) echo "mount $m has no record"; return 1 ;; esac
    done
}
round=0
while [ $round -lt 4 ]; do
    round=$((round + 1))
    (
        j=0
        while :; do
            j=$((j + 1))
            n=k$((j % 5))
            if [ $((j % 2)) = 0 ]; then
                vol Create "name: \"$n\" $(opt type tmpfs) $(opt size 1m)" >/dev/null 2>&1 ||
                    vol Create "name: \"$n\"" >/dev/null 2>&1 || true
            else
                vol Remove "name: \"$n\" force: true" >/dev/null 2>&1 || true
            fi
        done
    ) &
    LOOP=$!
    sleep "$(awk -v r=$round 'BEGIN { srand(); printf "%.2f", 0.8 + rand() * 1.5 }')"
    kill -9 "$PID"
    killed
    kill "$LOOP" 2>/dev/null || true
    wait "$LOOP" 2>/dev/null || true
    LOOP=""
    start
    i=0
    until why=$(consistent); do i=$((i + 1)); [ $i -lt 60 ] || fail "round $round: $why"; sleep 0.1; done
done
vol List '' | grep -q 'name: "k' || echo "note: no k* volume survived the kill rounds"
echo "ok kill -9 rounds"

# --- containers: the io.berth.volumes label -----------------------------------------------------------------
sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$work/fx" >/dev/null
$CTR images import "$work/fx/busybox-oci.tar" >/dev/null
L=io.berth.volumes
# a volume made on first use outlives its container
$CTR run --rm --label "$L=cdata:/data" "$IMG" c1 sh -c 'echo from-c1 > /data/f' || fail "c1 could not write its volume"
grep -q "^default cdata$" "$HOOKLOG" || fail "first use did not fire the hook"
has "$(vol Get 'name: "cdata"')" 'key: "hooked"' "the volume made on first use"
[ "$($CTR run --rm --label "$L=cdata:/srv/x" "$IMG" c2 cat /srv/x/f)" = from-c1 ] || fail "c2 did not read c1's data"
# :ro
$CTR run --rm --label "$L=cdata:/data:ro" "$IMG" c3 sh -c 'echo x > /data/g' 2>/dev/null && fail ":ro: the write succeeded"
[ "$($CTR run --rm --label "$L=cdata:/data:ro" "$IMG" c3b cat /data/f)" = from-c1 ] || fail ":ro: cannot read"
[ ! -e "$VOLS/cdata/_data/g" ] || fail ":ro: the file was written"
# in use: a container that exists with the label (running or not) keeps its volume
$CTR run -d --label "$L=cdata:/data,ctmp:/t" "$IMG" c4 sleep 300 >/dev/null
$CTR containers create --label "$L=/bin:/b:ro,cdata:/d" "$IMG" c5 true
refused Remove 'name: "cdata"' 9 'volume "cdata" is in use by containers c4, c5'
out=$(vol Get 'name: "cdata"')
has "$out" 'containers: "c4"' "Get's containers"
has "$out" 'containers: "c5"' "Get's containers"
[ "$(vol List 'filters: "name==cdata"' | grep -c 'containers: "c[45]"')" = 2 ] || fail "List's containers"
[ "$(names 'filters: "dangling==false"')" = "cdata ctmp " ] || fail "dangling==false: $(names 'filters: "dangling==false"')"
out=$(vol Prune '')
hasnt "$out" '"cdata"' "prune of an in-use volume"
has "$out" 'removed: "t1"' "prune of an unused volume"
$CTR containers rm c5
$CTR tasks kill -s KILL c4 >/dev/null
i=0
while $CTR tasks ls | grep -q "^c4 .*RUNNING"; do i=$((i + 1)); [ $i -lt 100 ] || fail "c4 did not stop"; sleep 0.05; done
$CTR tasks rm c4 >/dev/null 2>&1 || true
$CTR containers rm c4
vol Remove 'name: "cdata"' >/dev/null || fail "a volume no container names could not be removed"
# a tmpfs size is enforced
vol Create "name: \"small\" $(opt type tmpfs) $(opt size 1m)" >/dev/null
$CTR run --rm --label "$L=small:/t" "$IMG" c6 busybox dd if=/dev/zero of=/t/ok bs=1024 count=512 2>/dev/null ||
    fail "512k did not fit a 1m tmpfs"
$CTR run --rm --label "$L=small:/t" "$IMG" c7 busybox dd if=/dev/zero of=/t/big bs=1024 count=2048 2>/dev/null &&
    fail "2m fitted a 1m tmpfs"
# host binds: inside the allow-list they work, outside they are refused at task create
echo on-the-host >"$work/allowed/sub/h"
[ "$($CTR run --rm --label "$L=$work/allowed/sub:/h:ro" "$IMG" c8 cat /h/h)" = on-the-host ] || fail "allowed bind"
for bad in "$work/outside" "$work/allowed-evil" "$work/allowed/escape"; do
    out=$($CTR run --rm --label "$L=$bad:/h" "$IMG" c9 true 2>&1) && fail "bind of $bad was allowed"
    has "$out" "is not inside the allow-list" "bind of $bad"
    $CTR containers rm c9 >/dev/null 2>&1 || true
done
out=$($CTR run --rm --label "$L=..:/x" "$IMG" c10 true 2>&1) && fail "a bad label was accepted"
has "$out" "volume name \"..\" is invalid" "a bad label"
$CTR containers rm c10 >/dev/null 2>&1 || true
echo "ok containers"

# --- nothing left mounted: no container mounts; the volumes' tmpfs go with the volumes -------------------
# (the network module keeps its netns directory mounted while berthd runs: not a container's)
NETNS=$work/state/io.berth.network.v1.cni/netns
mounts_left() { awk -v w="$work/" -v n="$NETNS" 'index($2, w) == 1 && $2 != n { print $2 }' /proc/mounts; }
stray=$(mounts_left | grep -v "^$VOLS/" || true)
[ -z "$stray" ] || fail "mounts left: $stray"
for n in $(names ''); do vol Remove "name: \"$n\"" >/dev/null; done
vol Remove 'name: "elsewhere"' --ns other >/dev/null
stray=$(mounts_left)
[ -z "$stray" ] || fail "mounts left after removing every volume: $stray"
[ -z "$(ls -A "$VOLS")" ] || fail "left in $VOLS: $(ls -A "$VOLS")"
echo "ok volumes e2e"
