#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# crash.matrix: kill -9 berthd at a random moment of each operation, start it again and check that a crash
# left garbage at most, never a dangling reference (docs/architecture.md, "Metadata, content and garbage
# collection"; the rule: backing object first and record last, record first and backing object last).
#
# Operations (each in its own namespace m-<op>):
#   ingest     ctr content ingest of 4 blobs (1-8 MiB)
#   import     ctr images import of the multi-layer fixture image, with unpack
#   snapshot   ctr snapshots prepare, (write a file), commit, prepare, commit, view, rm, rm, rm
#   container  ctr run -d, tasks kill, tasks rm, containers rm; containers create, containers rm
#   imagerm    ctr images rm --sync of the unpacked image
#   gc         ctr images rm (no sync) then ctr leases rm --sync: a synchronous collection
# Per kill: the act runs in its own process group; after a seeded random fraction of T (T: the act's time
# in two calibration runs without a kill, halved towards what an act that ends before its kill took)
# berthd gets SIGKILL; berthd is started again and must serve;
# then every berth-shim of this test must serve a task berthd lists, and, in every namespace:
#   - every content record's blob reads back with its digest (ctr content get | sha256sum);
#   - every image is complete (ctr images check);
#   - every snapshot record is known to its snapshotter with a directory (ctr snapshots usage: found,
#     inodes > 0), every active snapshot's and view's mount sources exist, and every committed leaf (a
#     committed snapshot no other committed one has as parent) is viewed, mounted and read (every file);
#   - the operation succeeds again after the crash (the same import, a run from it, the same ingest...).
# berthd runs with background collection off (schedule_delay_ms: 0): the snapshot operation's snapshots
# have no lease (ctr has no flag for one), and any collector, containerd's too, may take them; collections
# happen where asked for, synchronously (images rm --sync, leases rm --sync).
# Per operation, at its end: everything in its namespace can be removed and the namespace too; a clean stop
# (SIGTERM) exits 0 and leaves no mount under the test's dirs, no berth-shim of this test, no FIFO in the
# state dir.
#
# usage: matrix.sh BERTHD MODULE_DIR SOURCE_DIR [--seed S] [--kills N] [--ops a,b,...] [--mb MB]
#                  [--sabotage snapshot,blob] [--keep] [--stop]
#   --kills N     kills in all, shared out over the operations (default 30)
#   --seed S      the kill moments (fractions of T) come from S (printed; each operation's sequence depends
#                 only on S and its name, so --ops OP --kills K repeats OP's fractions when K is what OP got
#                 in the full run; the milliseconds follow the machine's speed, so a rerun is close, not exact)
#   --mb MB       size of the multi-layer image (default 100: ~100 MB in 5 layers)
#   --sabotage    after the first restart, remove by hand a committed snapshot's directory (snapshot) and an
#                 image's config blob (blob) in a namespace of their own: proves the checks can fail
#   --keep        keep the work directory (berthd's log, the acts' output) for a look afterwards
#   --stop        stop at the first kill that finds a violation (implies --keep)
# Exit: 0 no violation, 1 violations (listed, each with a rerun line), 2 the harness itself failed.
set -u
set -o pipefail

SELF=$(readlink -f "$0")

# --- helpers shared by the main run and the acts -------------------------------------------------------
c() { timeout --foreground 120 ctr --address "$SOCK" "$@"; }
cn() { c -n "$NS" "$@"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }

# write_into KEY NAME: mounts the active snapshot KEY, writes file NAME into it, unmounts
write_into() {
    local mnt=$WORK/actmnt line rc
    mkdir -p "$mnt"
    line=$(cn snapshots mounts "$mnt" "$1") || return 1
    eval "$line" || return 1
    echo "$2" >"$mnt/$2"
    rc=$?
    umount "$mnt" || return 1
    return $rc
}

# wait_stopped ID: until the task is STOPPED (or gone); fails when ctr fails or after 10 s
wait_stopped() {
    local i=0 out
    while :; do
        out=$(cn tasks ls) || return 1
        echo "$out" | grep -q "^$1 .*RUNNING" || return 0
        i=$((i + 1))
        [ $i -lt 200 ] || return 1
        sleep 0.05
    done
}

# --- the acts: what is killed; each returns non-zero at the first failed call ----------------------------
act_ingest() {
    local j
    for j in 1 2 3 4; do
        cn content ingest --expected-digest "$(cat "$WORK/blobs/$1-$j.sha")" "ref-$1-$j" \
            <"$WORK/blobs/$1-$j" || return 1
    done
}
act_import() { cn images import "$FX/big-oci.tar" >/dev/null; }
act_snapshot() {
    local k=s$1
    cn snapshots prepare "$k-a" >/dev/null || return 1
    write_into "$k-a" one || return 1
    cn snapshots commit "$k-c1" "$k-a" || return 1
    cn snapshots prepare "$k-b" "$k-c1" >/dev/null || return 1
    write_into "$k-b" two || return 1
    cn snapshots commit "$k-c2" "$k-b" || return 1
    cn snapshots view "$k-v" "$k-c2" >/dev/null || return 1
    cn snapshots rm "$k-v" || return 1
    cn snapshots rm "$k-c2" || return 1
    cn snapshots rm "$k-c1" || return 1
}
act_container() {
    cn run -d --fifo-dir "$WORK/fifo" "$IMG_BB" "k$1" sleep 1000 >/dev/null || return 1
    cn tasks kill -s SIGKILL "k$1" || return 1
    wait_stopped "k$1" || return 1
    cn tasks rm "k$1" >/dev/null || return 1
    cn containers rm "k$1" || return 1
    cn containers create "$IMG_BB" "n$1" || return 1
    cn containers rm "n$1" || return 1
}
act_imagerm() { cn images rm --sync "$IMG_BIG" >/dev/null; }
act_gc() { cn images rm "$IMG_BIG" >/dev/null && cn leases rm --sync "gc-$1"; }

if [ "${1:-}" = --act ]; then # matrix.sh --act OP I, with the environment of the main run
    "act_$2" "$3"
    rc=$?
    now_ms >"$WORK/act.done.tmp" && mv "$WORK/act.done.tmp" "$WORK/act.done"
    exit $rc
fi

# --- the main run ----------------------------------------------------------------------------------------
usage() {
    echo "usage: matrix.sh BERTHD MODULE_DIR SOURCE_DIR [--seed S] [--kills N] [--ops a,b] [--mb MB] [--sabotage snapshot,blob] [--keep]" >&2
    exit 2
}
[ $# -ge 3 ] || usage
harness() { # a failure of the harness itself: never a pass
    echo "crash.matrix: HARNESS FAILURE: $*" >&2
    [ -n "${WORK:-}" ] && [ -f "$WORK/berthd.log" ] && tail -20 "$WORK/berthd.log" >&2
    exit 2
}
command -v ctr >/dev/null || harness "ctr not found (scripts/deps.sh installs Debian's containerd package)"
command -v setsid >/dev/null || harness "setsid not found (util-linux)"
BERTHD=$1
export BERTH_MODULE_DIR=$2
SRC=$3
shift 3
SEED=$(od -An -N4 -tu4 /dev/urandom) || harness "od"
SEED=$((SEED % 2147483648))
KILLS=30
OPS=ingest,import,snapshot,container,imagerm,gc
MB=100
SABOTAGE=""
KEEP=0
STOP=0
while [ $# -gt 0 ]; do
    case "$1" in
    --seed) SEED=$2 && shift 2 ;;
    --kills) KILLS=$2 && shift 2 ;;
    --ops) OPS=$2 && shift 2 ;;
    --mb) MB=$2 && shift 2 ;;
    --sabotage) SABOTAGE=$2 && shift 2 ;;
    --keep) KEEP=1 && shift ;;
    --stop) STOP=1 && KEEP=1 && shift ;;
    *) usage ;;
    esac
done
for n in "$SEED" "$KILLS" "$MB"; do case "$n" in '' | *[!0-9]*) usage ;; esac; done
[ -x "$BERTHD" ] || harness "$BERTHD is not an executable"
[ -d "$BERTH_MODULE_DIR" ] || harness "$BERTH_MODULE_DIR is not a directory"
read -r -a OPLIST <<<"${OPS//,/ }"
for op in "${OPLIST[@]}"; do
    declare -F "act_$op" >/dev/null || harness "unknown operation $op (known: ingest import snapshot container imagerm gc)"
done
[ "${#OPLIST[@]}" -gt 0 ] || usage

WORK=$(mktemp -d /tmp/berth-crash-matrix-XXXXXX) || harness "mktemp"
ROOT=$WORK/root
STATE=$WORK/state
SOCK=$STATE/berthd.sock
FX=$WORK/fx
IMG_BB=docker.io/library/berth-busybox:latest
IMG_BIG=docker.io/library/berth-big:latest
export WORK SOCK FX IMG_BB IMG_BIG
mkdir -p "$WORK/fifo" "$WORK/blobs" "$WORK/chkmnt" "$WORK/actmnt"
PID=""
APID=""

unmount_all() { # everything mounted under the work dir, deepest first
    local m
    for m in $(awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
}
our_shims() { pgrep -f "berth-shim .*$WORK/" 2>/dev/null; }
cleanup() {
    local status=$? p
    trap - EXIT
    [ -n "$APID" ] && kill -9 -- "-$APID" 2>/dev/null
    if [ -n "$PID" ]; then
        kill -9 "$PID" 2>/dev/null
        wait "$PID" 2>/dev/null
    fi
    for p in $(cat "$STATE"/io.containerd.runtime.v2.task/*/*/*.pid 2>/dev/null) $(our_shims); do
        kill -9 "$p" 2>/dev/null
    done
    unmount_all
    if [ "$KEEP" = 1 ]; then echo "crash.matrix: work directory kept: $WORK"; else rm -rf "$WORK"; fi
    exit $status
}
trap cleanup EXIT
trap 'exit 2' INT TERM

# --- RNG: a 31-bit LCG per operation, seeded from the seed and the operation's name ------------------------
RNG=0
rng_seed() {
    local h=0 k ch
    for ((k = 0; k < ${#1}; k++)); do
        printf -v ch %d "'${1:k:1}"
        h=$(((h * 31 + ch) % 2147483648))
    done
    RNG=$(((SEED + h) % 2147483648))
}
R=0
rand() { # N: R = a number in [0, N)
    RNG=$(((RNG * 1103515245 + 12345) % 2147483648))
    R=$(((RNG >> 8) % $1))
}

# --- violations -------------------------------------------------------------------------------------------
declare -A N_KILLS N_IDLE N_VIOL
OP=setup
KILLNO=0
AT=""
viol() {
    local where="$OP, kill $KILLNO at $AT" msg="$*"
    [ "$KILLNO" = 0 ] && where="$OP, $AT"
    msg=${msg//$'\n'/ }
    echo "VIOLATION [$where] ${msg//  / }" | tee -a "$WORK/violations"
}

# --- berthd -------------------------------------------------------------------------------------------------
start_berthd() { # returns non-zero when berthd does not serve within 30 s
    echo "--- start $(date +%T.%N)" >>"$WORK/berthd.log"
    "$BERTHD" --root "$ROOT" --state "$STATE" --log-level warn \
        --set plugins.io.containerd.gc.v1.scheduler.schedule_delay_ms=0 2>>"$WORK/berthd.log" &
    PID=$!
    local i=0
    until ctr --address "$SOCK" version >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -ge 600 ] || ! kill -0 "$PID" 2>/dev/null; then
            wait "$PID" 2>/dev/null
            echo "berthd did not serve (exit $?); its log ends:" >&2
            tail -15 "$WORK/berthd.log" >&2
            kill -9 "$PID" 2>/dev/null
            PID=""
            return 1
        fi
        sleep 0.05
    done
}
kill9_berthd() {
    kill -9 "$PID"
    wait "$PID" 2>/dev/null
    PID=""
}
# stop_clean: SIGTERM; exit 0 within 30 s; then no mounts, shims or FIFOs of this test
stop_clean() {
    local i=0 rc p m f
    kill -TERM "$PID"
    while kill -0 "$PID" 2>/dev/null && [ $i -lt 300 ]; do i=$((i + 1)) && sleep 0.1; done
    if kill -0 "$PID" 2>/dev/null; then
        viol "clean stop: berthd still runs 30 s after SIGTERM"
        kill -9 "$PID"
    fi
    wait "$PID"
    rc=$?
    PID=""
    [ $rc -eq 0 ] || viol "clean stop: berthd exited with $rc on SIGTERM; log: $(tail -5 "$WORK/berthd.log" | tr '\n' '|')"
    for m in $(awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts); do
        viol "clean stop: $m is still mounted"
    done
    unmount_all
    for p in $(our_shims); do
        viol "clean stop: berth-shim $p of this test still runs: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
        kill -9 "$p" 2>/dev/null
    done
    for f in $(find "$STATE" -type p 2>/dev/null); do viol "clean stop: FIFO $f left in the state dir"; done
}

# --- the invariant checks -----------------------------------------------------------------------------------
# mount_paths: reads `ctr snapshots mounts` lines, prints each host path a mount uses
mount_paths() {
    awk '$1 == "mount" && $2 == "-t" {
        if ($3 == "bind" || $0 ~ /-o ([^ ]*,)?r?bind(,| |$)/) print $4
        for (i = 6; i < NF; i++) if ($i == "-o") {
            n = split($(i + 1), o, ",")
            for (j = 1; j <= n; j++) {
                if (o[j] ~ /^lowerdir=/) { m = split(substr(o[j], 10), l, ":"); for (k = 1; k <= m; k++) print l[k] }
                else if (o[j] ~ /^(upperdir|workdir)=/) { sub(/^[a-z]*=/, "", o[j]); print o[j] }
            }
        }
    }'
}
# still_there KIND KEY: whether the record still exists (a background collection may take it mid-check)
still_there() {
    case "$1" in
    snapshot) cn snapshots info "$2" >/dev/null 2>&1 ;;
    content) cn content info "$2" >/dev/null 2>&1 ;;
    esac
}
declare -A VERIFIED # blob digests read back in this check (the blob store is shared by all namespaces)
check_content() {
    local d got err all
    all=$(cn content ls -q 2>&1) || { viol "ctr content ls (namespace $NS) failed: ${all:0:800}"; return; }
    for d in $all; do
        [ -n "${VERIFIED[$d]:-}" ] && continue
        got=sha256:$(cn content get "$d" 2>"$WORK/err" | sha256sum | cut -c1-64)
        if [ "$got" = "$d" ]; then
            VERIFIED[$d]=1
        elif still_there content "$d"; then
            err=$(head -c 800 "$WORK/err")
            viol "content $d (namespace $NS) does not read back: got $got${err:+: $err}"
        fi
    done
}
check_images() {
    local out
    local out line
    out=$(cn images check 2>"$WORK/err") || { viol "ctr images check (namespace $NS) failed: $(head -c 800 "$WORK/err")"; return; }
    while read -r line; do
        [ -z "$line" ] || viol "image not complete (namespace $NS): $line"
    done <<<"$(echo "$out" | awk 'NR > 1 && $4 != "complete" { print }')"
}
# check_mount_sources WHAT: reads mount lines on stdin; every path they name must exist
check_mount_sources() {
    local p
    for p in $(mount_paths); do
        [ -e "$p" ] || viol "$1 (namespace $NS): its mount source $p does not exist"
    done
}
check_snapshots() {
    local ls key parent kind out line leaves usage ck err
    ls=$(cn snapshots ls 2>&1) || { viol "ctr snapshots ls (namespace $NS) failed: ${ls:0:800}"; return; }
    ls=$(echo "$ls" | awk 'NR > 1 { if (NF == 2) print $1, "-", $2; else print $1, $2, $3 }')
    [ -n "$ls" ] || return 0
    # every record: known to its snapshotter, with a directory that holds something
    usage=$(cn snapshots usage -b 2>/dev/null) || usage=""
    while read -r key parent kind; do
        line=$(echo "$usage" | awk -v k="$key" '$1 == k')
        if [ -z "$line" ]; then
            line=$(cn snapshots usage -b "$key" 2>&1 | awk -v k="$key" '$1 == k || /ctr:/')
        fi
        case "$line" in
        "$key "*)
            [ "$(echo "$line" | awk '{ print $3 }')" != 0 ] ||
                viol "snapshot $key ($kind, namespace $NS): its snapshotter counts 0 inodes (no directory)"
            ;;
        *) still_there snapshot "$key" && viol "snapshot $key ($kind, namespace $NS) has no backing object: $line" ;;
        esac
        case "$kind" in
        Active | View)
            out=$(cn snapshots mounts "$WORK/chkmnt" "$key" 2>&1)
            if [ $? -ne 0 ]; then
                still_there snapshot "$key" && viol "snapshot $key ($kind, namespace $NS): ctr snapshots mounts failed: ${out:0:800}"
            else
                check_mount_sources "snapshot $key ($kind)" <<<"$out"
            fi
            ;;
        esac
    done <<<"$ls"
    # every committed leaf: viewed, mounted, every file read
    leaves=$(echo "$ls" | awk '$3 == "Committed" { c[$1] = 1; p[$2] = 1 } END { for (k in c) if (!(k in p)) print k }')
    for key in $leaves; do
        ck=crash-check-$RANDOM$RANDOM
        out=$(cn snapshots view --target "$WORK/chkmnt" "$ck" "$key" 2>&1)
        if [ $? -ne 0 ]; then
            still_there snapshot "$key" && viol "committed snapshot $key (namespace $NS): view failed: ${out:0:800}"
            continue
        fi
        check_mount_sources "committed snapshot $key (its view)" <<<"$out"
        if ! err=$(eval "$(echo "$out" | grep '^mount ')" 2>&1); then
            viol "committed snapshot $key (namespace $NS): its view does not mount: ${err:0:800}"
        else
            err=$(find "$WORK/chkmnt" -xdev -type f -exec cat {} + 2>&1 >/dev/null) ||
                viol "committed snapshot $key (namespace $NS): reading its files failed: ${err:0:800}"
            umount "$WORK/chkmnt" || umount -l "$WORK/chkmnt"
        fi
        cn snapshots rm "$ck" 2>/dev/null
    done
}
# check_shims: every berth-shim of this test serves a task the restarted berthd lists
check_shims() {
    local p bundle ns id listed
    for p in $(our_shims); do
        bundle=$(tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | sed -n 3p)
        [ -n "$bundle" ] || continue
        id=${bundle##*/}
        ns=${bundle%/*}
        ns=${ns##*/}
        listed=$(c -n "$ns" tasks ls -q 2>/dev/null)
        if ! echo "$listed" | grep -qx -- "$id"; then
            sleep 1 # a shim on its way out
            kill -0 "$p" 2>/dev/null && [ -d "/proc/$p" ] &&
                viol "berth-shim $p for $ns/$id runs, but berthd lists no such task (tasks ls -n $ns: $(echo $listed))"
        fi
    done
}
check_all() {
    local nss
    check_shims
    VERIFIED=()
    nss=$(c namespaces ls -q 2>&1) || { viol "ctr namespaces ls failed: ${nss:0:800}"; return; }
    for NS in $nss; do
        check_content
        check_images
        check_snapshots
    done
}

# --- per-operation setup (unkilled), verify (after each restart) and fixtures --------------------------------
run_echo() { # IMAGE ID: a container runs from the image and prints what its layers hold
    local out
    out=$(cn run --rm --fifo-dir "$WORK/fifo" "$1" "$2" sh -c 'cat /etc/berth-greeting; ls /' 2>&1)
    case "$out" in
    "hello from berth"*) return 0 ;;
    *) echo "${out:0:800}" && return 1 ;;
    esac
}
reimport() { # the same import succeeds after the crash, the image is complete, a container runs from it
    local out
    out=$(cn images import "$FX/big-oci.tar" 2>&1) || { viol "the import after the crash failed: ${out:0:800}"; return; }
    cn images check 2>&1 | grep -q "^$IMG_BIG .*complete" || viol "the image imported after the crash is not complete"
    out=$(run_echo "$IMG_BIG" "r$1") || viol "no container runs from the image imported after the crash: $out"
}
import_big() {
    local out
    out=$(cn images import "$FX/big-oci.tar" 2>&1) || viol "setup: import of the image failed: ${out:0:800}"
}
setup_ingest() {
    local j sz
    rm -f "$WORK"/blobs/*
    for j in 1 2 3 4; do
        rand 7340032
        sz=$((R + 1048576))
        head -c "$sz" /dev/urandom >"$WORK/blobs/$1-$j"
        echo "sha256:$(sha256sum "$WORK/blobs/$1-$j" | cut -c1-64)" >"$WORK/blobs/$1-$j.sha"
    done
}
verify_ingest() {
    local out
    out=$(act_ingest "$1" 2>&1) || viol "the same ingest after the crash failed: ${out:0:800}"
}
setup_import() { wipe_ns; }
verify_import() { reimport "$1"; }
setup_snapshot() { :; }
verify_snapshot() {
    local out
    out=$(act_snapshot "again$1" 2>&1) || viol "the snapshot cycle after the crash failed: ${out:0:800}"
}
setup_container() {
    if [ "$1" = 0 ]; then
        cn images import "$FX/busybox-oci.tar" >/dev/null || harness "import of busybox for the container operation"
    fi
}
verify_container() {
    local out
    out=$(run_echo "$IMG_BB" "v$1") || viol "no container runs after the crash: $out"
    out=$(act_container "again$1" 2>&1) || viol "the container cycle after the crash failed: ${out:0:800}"
}
setup_imagerm() { import_big; }
verify_imagerm() { reimport "$1"; }
setup_gc() {
    local out
    import_big
    out=$(cn leases create --id "gc-$1" 2>&1) || viol "setup: leases create failed: ${out:0:800}"
}
verify_gc() { reimport "$1"; }

# wipe_ns: removes everything in namespace $NS and the namespace; what cannot be removed is a violation
wipe_ns() {
    local t k pass out left
    for t in $(cn tasks ls -q 2>/dev/null); do
        cn tasks kill -s SIGKILL "$t" 2>/dev/null
        wait_stopped "$t"
        out=$(cn tasks rm -f "$t" 2>&1) || viol "wipe: tasks rm $t: ${out:0:800}"
    done
    for k in $(cn containers ls -q 2>/dev/null); do
        out=$(cn containers rm "$k" 2>&1) || viol "wipe: containers rm $k: ${out:0:800}"
    done
    for k in $(cn images ls -q 2>/dev/null); do
        out=$(cn images rm --sync "$k" 2>&1) || viol "wipe: images rm --sync $k: ${out:0:800}"
    done
    for k in $(cn leases ls -q 2>/dev/null); do
        out=$(cn leases rm --sync "$k" 2>&1) || viol "wipe: leases rm --sync $k: ${out:0:800}"
    done
    for pass in 1 2 3 4 5 6 7 8 9 10; do # children before parents
        left=$(cn snapshots ls 2>/dev/null | awk 'NR > 1 { print $1 }')
        [ -n "$left" ] || break
        for k in $left; do cn snapshots rm "$k" >/dev/null 2>&1; done
    done
    [ -z "$left" ] || viol "wipe: snapshots that cannot be removed: $(echo "$left" | tr '\n' ' ')"
    for k in $(cn content ls -q 2>/dev/null); do
        out=$(cn content rm "$k" 2>&1) || viol "wipe: content rm $k: ${out:0:800}"
    done
    if c namespaces ls -q 2>/dev/null | grep -qx "$NS"; then
        out=$(c namespaces rm "$NS" 2>&1) || viol "wipe: namespace $NS cannot be removed: ${out:0:800}"
    fi
}

# --- sabotage: break a snapshot and a blob by hand, so the checks must report them ------------------------
sabotage() {
    local ns_saved=$NS key out src blob
    NS=m-sabotage
    cn images import "$FX/busybox-oci.tar" >/dev/null || harness "sabotage: import"
    case ",$SABOTAGE," in
    *,snapshot,*)
        key=$(cn snapshots ls | awk 'NR > 1 && $NF == "Committed" { print $1; exit }')
        cn snapshots view sabotage-view "$key" >/dev/null || harness "sabotage: no view of $key"
        out=$(cn snapshots mounts "$WORK/chkmnt" sabotage-view) || harness "sabotage: no mounts for $key"
        src=$(echo "$out" | mount_paths | head -1)
        [ -d "$src" ] || harness "sabotage: no directory in $out"
        cn snapshots rm sabotage-view
        rm -rf "$src"
        echo "crash.matrix: SABOTAGE: removed $src, the directory of committed snapshot $key (namespace $NS)"
        ;;
    esac
    case ",$SABOTAGE," in
    *,blob,*)
        key=$(cn images ls | awk -v i="$IMG_BB" '$1 == i { print $3 }')
        key=$(cn content get "$key" | grep -o '"config":{[^}]*}' | grep -o 'sha256:[0-9a-f]*')
        blob=$(find "$ROOT" -type f -name "${key#sha256:}" | head -1)
        [ -n "$blob" ] || harness "sabotage: no file for blob $key under $ROOT"
        rm -f "$blob"
        echo "crash.matrix: SABOTAGE: removed $blob, the blob of $key, the config of $IMG_BB (namespace $NS)"
        ;;
    esac
    NS=$ns_saved
}

# --- one operation: calibrate, then kill rounds -------------------------------------------------------------
# run_act OP I: starts the act in a process group of its own; APID
run_act() {
    rm -f "$WORK/act.done"
    NS=m-$1 setsid bash "$SELF" --act "$1" "$2" >>"$WORK/act-$1.log" 2>&1 &
    APID=$!
}
# reap_act: waits up to 10 s for the act to give up (its calls fail against a dead berthd; a ctr import
# cut off mid-unpack can wait for a connection forever), then kills its process group
reap_act() {
    local i=0
    while kill -0 "$APID" 2>/dev/null && [ $i -lt 100 ]; do i=$((i + 1)) && sleep 0.1; done
    kill -9 -- "-$APID" 2>/dev/null
    wait "$APID" 2>/dev/null
    local rc=$?
    APID=""
    umount "$WORK/actmnt" 2>/dev/null
    return $rc
}
run_op() {
    local op=$1 kills=$2 i t0 t T d idle
    OP=$op
    NS=m-$op
    KILLNO=0
    AT=""
    N_KILLS[$op]=0
    N_IDLE[$op]=0
    rng_seed "$op"
    [ -n "$PID" ] || start_berthd || harness "berthd does not start"
    # calibration: the act twice without a kill (the first run also warms caches); both must succeed
    AT="calibration"
    T=""
    for i in 0 00; do
        "setup_$op" "$i"
        t0=$(now_ms)
        run_act "$op" "$i"
        reap_act || harness "$op fails without a crash (see below):
$(tail -5 "$WORK/act-$op.log")"
        t=$(($(now_ms) - t0))
        [ -n "$T" ] && [ "$T" -le "$t" ] || T=$t
    done
    echo "crash.matrix: $op: one act takes $T ms; $kills kills"
    for ((i = 1; i <= kills; i++)); do
        KILLNO=$i
        AT="setup"
        t0=$(now_ms)
        "setup_$op" "$i"
        rand 1000
        pm=$R
        d=$((T * pm / 1000))
        run_act "$op" "$i"
        t1=$(now_ms)
        sleep_ms "$d"
        idle=""
        [ ! -e "$WORK/act.done" ] || idle=" (the act had ended after $(($(cat "$WORK/act.done") - t1)) ms)"
        kill9_berthd
        AT="$((pm / 10)).$((pm % 10))% = $d ms of ~$T"
        # the calibration can overestimate (a loaded machine); an act seen to end sooner halves the gap
        [ -z "$idle" ] || T=$(((T + $(cat "$WORK/act.done") - t1) / 2))
        N_KILLS[$op]=$((${N_KILLS[$op]} + 1))
        [ -z "$idle" ] || N_IDLE[$op]=$((${N_IDLE[$op]} + 1))
        reap_act
        if ! start_berthd; then
            viol "berthd does not serve after the kill"
            start_berthd || { echo "crash.matrix: berthd cannot be started again; the matrix stops here"; return 1; }
        fi
        t2=$(now_ms)
        if [ -n "$SABOTAGE" ]; then
            sabotage
            SABOTAGE=""
        fi
        check_all
        t3=$(now_ms)
        NS=m-$op
        "verify_$op" "$i"
        echo "crash.matrix: $op: kill $i at $AT$idle (setup $((t1 - t0)) ms, check $((t3 - t2)) ms, verify $(($(now_ms) - t3)) ms)"
        if [ "$STOP" = 1 ] && [ -s "$WORK/violations" ]; then
            echo "crash.matrix: --stop: stopping at the first violation"
            return 1
        fi
    done
    KILLNO=0
    AT="at the end"
    for NS in $(c namespaces ls -q); do wipe_ns; done
    stop_clean
}

echo "crash.matrix: seed $SEED, $KILLS kills over ${OPLIST[*]}, image ${MB} MB; work dir $WORK"
sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$FX" >/dev/null || harness "build-image.sh busybox"
sh "$SRC/tests/fixtures/images/build-image.sh" big "$FX" "$MB" >/dev/null || harness "build-image.sh big"
nops=${#OPLIST[@]}
k=0
for op in "${OPLIST[@]}"; do
    n=$((KILLS / nops + (k < KILLS % nops ? 1 : 0)))
    k=$((k + 1))
    PER[$k]=$n
    run_op "$op" "$n" || break
done

echo
echo "crash.matrix: seed $SEED"
printf '%-10s %6s %6s %11s\n' operation kills idle violations
total=0
touch "$WORK/violations"
for op in "${OPLIST[@]}"; do
    # counted from the list: a violation found in a subshell counts too
    N_VIOL[$op]=$(grep -c "^VIOLATION \[$op[],]" "$WORK/violations")
    printf '%-10s %6s %6s %11s\n' "$op" "${N_KILLS[$op]:-0}" "${N_IDLE[$op]:-0}" "${N_VIOL[$op]:-0}"
    total=$((total + ${N_VIOL[$op]:-0}))
done
echo "(idle: kills that came after the act had ended)"
if [ $total -gt 0 ]; then
    echo
    echo "$total violations, alike ones (random names aside) counted together:"
    sed -e 's/^VIOLATION \[\([a-z]*\), [^]]*\]/\1:/' -e 's/extract-[0-9]*-[A-Za-z0-9_-]*/extract-N/g' \
        -e 's/crash-check-[0-9]*/crash-check-N/g' -e 's/berth-shim [0-9]* /berth-shim PID /' "$WORK/violations" |
        sort | uniq -c | sort -rn
    echo "each one, with the kill that found it:"
    cat "$WORK/violations"
    echo
    echo "rerun one operation with the same delays:"
    k=0
    for op in "${OPLIST[@]}"; do
        k=$((k + 1))
        [ "${N_VIOL[$op]:-0}" -gt 0 ] &&
            echo "  bash $SELF $BERTHD $BERTH_MODULE_DIR $SRC --seed $SEED --ops $op --kills ${PER[$k]} --mb $MB"
    done
    exit 1
fi
echo "crash.matrix: no violation"
exit 0
