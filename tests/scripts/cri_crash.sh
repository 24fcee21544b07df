#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# cri.crash: berthd killed with SIGKILL in the middle of the CRI's create and remove paths, restarted, and
# what it finds checked. Each round one call runs in the background (RunPodSandbox, CreateContainer,
# StartContainer, StopContainer + RemoveContainer, StopPodSandbox + RemovePodSandbox: crictl runp, create,
# start, rm -f, rmp -f) and berthd is killed after a delay spread over the call's duration (rounds of the
# same call use growing delays), then started again. Then, once the garbage collection at start has run:
#   - every pod and container the CRI lists answers its status; its containerd record exists
#     (ctr -n k8s.io containers ls); a container's record names its snapshot, which exists; a running one
#     has a live task (ctr tasks ls) and a ready pod a live pause;
#   - every record of k8s.io is a listed pod or container (no record without its CRI object);
#   - every mount under the test's root and state belongs to a listed pod or container (its rootfs, the
#     pod's shm, its netns), and so does every network namespace; no more veths hang on the test's
#     bridge than listed pods have network namespaces;
#   - what the round made can be removed (crictl rm / rmp), leftovers of the crash included.
# At the end everything is removed and berthd stopped: no mount, netns, veth, shim or record is left.
# Rounds: CRI_CRASH_ROUNDS (default 15; the sanitizer build runs fewer, as crash.matrix does).
# usage: cri_crash.sh BERTHD MODULE_DIR SOURCE_DIR CRICTL [ROUNDS]
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
SRC=$3
CRICTL_BIN=$4
ROUNDS=${5:-${CRI_CRASH_ROUNDS:-15}}
[ -x "$CRICTL_BIN" ] || { echo "FAIL no crictl at $CRICTL_BIN (tests/scripts/gotools.sh)"; exit 1; }
for need in /usr/lib/cni/bridge /usr/lib/cni/host-local; do
    [ -x "$need" ] || { echo "FAIL $need is missing: apt-get install containernetworking-plugins"; exit 1; }
done
work=$(mktemp -d /tmp/berth-cri-crash-XXXXXX)
BR=bk$$
X=$(($$ % 200 + 20))
NET=10.233.$X
STATE=$work/state
CTR="ctr --address $STATE/berthd.sock -n k8s.io"
NETNS_DIR=$STATE/io.berth.network.v1.cni/netns
shims() { pgrep -f "berth-shim .* $work/" || true; }

cleanup() {
    status=$?
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        for p in $($CRICTL pods -q 2>/dev/null); do $CRICTL rmp -f "$p" >/dev/null 2>&1 || true; done
    fi
    if [ -n "$PID" ]; then
        kill -9 "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
        PID=""
    fi
    for f in "$STATE"/io.containerd.runtime.v2.task/*/*/init.pid; do
        [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
    done
    for p in $(shims); do kill -9 "$p" 2>/dev/null || true; done
    for v in $(ip -o link show master "$BR" 2>/dev/null | awk -F': ' '{ print $2 }' | cut -d@ -f1); do
        ip link del "$v" 2>/dev/null || true
    done
    iptables-save -t nat 2>/dev/null | grep -F -- "$NET." | sed -n 's/^-A /-D /p' |
        while read -r rule; do eval "iptables -t nat $rule" 2>/dev/null || true; done
    umount_under "$work"
    ip link del "$BR" 2>/dev/null || true
    rm -rf "$work"
    exit $status
}
PID=""
trap cleanup EXIT

mkdir -p "$work/net.d" "$work/logs"
cat >"$work/berthd.yaml" <<YAML
version: 1
plugins:
  io.berth.network.v1.cni:
    conf_dir: $work/net.d
    default_network: {name: berth, bridge: $BR, subnet: $NET.0/24, firewall: false}
YAML
cat >"$work/crictl.yaml" <<YAML
runtime-endpoint: unix://$STATE/berthd.sock
image-endpoint: unix://$STATE/berthd.sock
timeout: 30
YAML
CRICTL="$CRICTL_BIN --config $work/crictl.yaml"
start() {
    "$BERTHD" --config "$work/berthd.yaml" --root "$work/root" --state "$STATE" --log-level info \
        2>>"$work/log" &
    PID=$!
    local i=0
    until $CRICTL version >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 300 ] || fail "berthd did not start"
        kill -0 "$PID" 2>/dev/null || fail "berthd exited at start"
        sleep 0.05
    done
}
crash() {
    kill -9 "$PID"
    wait "$PID" 2>/dev/null || true
    PID=""
}
# pod NAME: a PodSandboxConfig on the test's network
pod() {
    cat >"$work/$1.pod.json" <<JSON
{"metadata": {"name": "$1", "namespace": "cri-crash", "uid": "uid-$1", "attempt": 0},
 "log_directory": "$work/logs/$1", "linux": {"security_context": {"namespace_options": {"pid": 1}}}}
JSON
    echo "$work/$1.pod.json"
}
# ctr_cfg NAME: a ContainerConfig that sleeps
ctr_cfg() {
    cat >"$work/$1.ctr.json" <<JSON
{"metadata": {"name": "$1"}, "image": {"image": "$IMG"}, "command": ["/bin/sleep", "3600"],
 "log_path": "$1.log", "linux": {"security_context": {"namespace_options": {"pid": 1}}}}
JSON
    echo "$work/$1.ctr.json"
}
jget() { grep -o "\"$1\": *\"\{0,1\}[^\",]*" | head -1 | sed "s/^\"$1\": *\"\{0,1\}//"; }

# check ROUND: the invariants after a restart
check() {
    local r=$1 pods ctrs ids records p k st pid m id rest ns n_ns n_veth tasks snaps
    pods=$($CRICTL pods -q) || fail "$r: pods"
    ctrs=$($CRICTL ps -aq) || fail "$r: ps -a"
    ids=" $(echo $pods $ctrs) "
    records=$($CTR containers ls -q) || fail "$r: ctr containers ls"
    tasks=$($CTR tasks ls) || fail "$r: ctr tasks ls"
    snaps=$($CTR snapshots --snapshotter overlayfs ls) || fail "$r: ctr snapshots ls"
    for p in $pods; do
        st=$($CRICTL inspectp "$p") || fail "$r: pod $p is listed but has no status"
        echo "$records" | grep -qx "$p" || fail "$r: pod $p is listed without its containerd record"
        if echo "$st" | grep -q '"state": "SANDBOX_READY"'; then
            pid=$(echo "$st" | grep -o '"pid": [0-9]*' | head -1 | grep -o '[0-9]*$')
            [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null ||
                fail "$r: pod $p is ready but its pause ($pid) is not running: $st"
        fi
    done
    for k in $ctrs; do
        st=$($CRICTL inspect "$k") || fail "$r: container $k is listed but has no status"
        echo "$records" | grep -qx "$k" || fail "$r: container $k is listed without its containerd record"
        $CTR containers info "$k" | grep -q "\"SnapshotKey\": \"$k\"" ||
            fail "$r: container $k: its record names no snapshot: $($CTR containers info "$k")"
        echo "$snaps" | grep -q "^$k " ||
            fail "$r: container $k: its snapshot is gone"
        if echo "$st" | grep -q '"state": "CONTAINER_RUNNING"'; then
            echo "$tasks" | awk -v k="$k" '$1 == k && $3 == "RUNNING"' | grep -q . ||
                fail "$r: container $k is running without a running task: $tasks"
        fi
    done
    for id in $records; do
        case $ids in *" $id "*) ;; *) fail "$r: record $id of k8s.io is no listed pod or container" ;; esac
    done
    # mounts: a task's rootfs, a pod's shm, a pod's netns, the netns dir itself
    for m in $(awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -u); do
        case $m in
        "$NETNS_DIR") continue ;;
        "$NETNS_DIR"/k8s.io/*) id=${m#"$NETNS_DIR"/k8s.io/} ;;
        "$STATE"/io.containerd.runtime.v2.task/k8s.io/*/rootfs)
            id=${m#"$STATE"/io.containerd.runtime.v2.task/k8s.io/}
            id=${id%/rootfs} ;;
        "$STATE"/io.berth.cri.v1.cri/sandboxes/*/shm)
            id=${m#"$STATE"/io.berth.cri.v1.cri/sandboxes/}
            id=${id%/shm} ;;
        *) fail "$r: a mount of nothing the test knows: $m" ;;
        esac
        case $ids in
        *" $id "*) ;;
        *)
            # a task's rootfs of a dead shim is cleaned up in the background: given a few seconds
            rest=0
            while grep -q " $m " /proc/mounts; do
                rest=$((rest + 1))
                [ $rest -lt 60 ] || fail "$r: $m is mounted for no listed pod or container (pods: $pods; containers: $ctrs)"
                sleep 0.05
            done
            ;;
        esac
    done
    n_ns=0
    for ns in "$NETNS_DIR"/k8s.io/*; do
        [ -e "$ns" ] || continue
        id=$(basename "$ns")
        case " $(echo $pods) " in *" $id "*) ;; *) fail "$r: netns $ns of no listed pod" ;; esac
        n_ns=$((n_ns + 1))
    done
    n_veth=$(ip -o link show master "$BR" 2>/dev/null | wc -l)
    [ "$n_veth" -le "$n_ns" ] ||
        fail "$r: $n_veth veths on $BR for $n_ns pod network namespaces: $(ip -o link show master "$BR")"
}

start
sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$work/fx" >/dev/null
$CTR images import "$work/fx/busybox-oci.tar" >/dev/null || fail "ctr import"
IMG=docker.io/library/berth-busybox:latest
base() { # the pod that create, start and rm work in: made again when a round lost it
    BP=$($CRICTL pods -q --name base --state ready | head -1)
    if [ -z "$BP" ]; then
        for p in $($CRICTL pods -q --name base); do $CRICTL rmp -f "$p" >/dev/null || fail "rmp an old base"; done
        BP=$($CRICTL runp "$(pod base)") || fail "runp base"
    fi
}
ops=(runp create start rm rmp)
# the kill's delay for round r: the k-th round of a call (of K) waits 0.02 s + k/K of about the call's
# duration on a loaded 2-core machine (runp and rmp set up or tear down a CNI network: the longest)
span_of() { case $1 in runp) echo 120 ;; create) echo 60 ;; start) echo 80 ;; rm) echo 90 ;; rmp) echo 140 ;; esac; }
delay_of() {
    local k=$(($1 / 5)) n=$(((ROUNDS + 4) / 5))
    local cs=$((2 + k * $(span_of "${ops[$(($1 % 5))]}") / n))
    printf '%d.%02d' $((cs / 100)) $((cs % 100))
}
t0=$(date +%s)
for ((r = 0; r < ROUNDS; r++)); do
    op=${ops[$((r % 5))]}
    d=$(delay_of "$r")
    base
    case $op in
    runp) cmd="$CRICTL runp $(pod p$r)" ;;
    create) cmd="$CRICTL create $BP $(ctr_cfg c$r) $work/base.pod.json" ;;
    start)
        k=$($CRICTL create "$BP" "$(ctr_cfg c$r)" "$work/base.pod.json") || fail "$r: create for start"
        cmd="$CRICTL start $k" ;;
    rm)
        k=$($CRICTL create "$BP" "$(ctr_cfg c$r)" "$work/base.pod.json") || fail "$r: create for rm"
        $CRICTL start "$k" >/dev/null || fail "$r: start for rm"
        cmd="$CRICTL rm -f $k" ;;
    rmp)
        p=$($CRICTL runp "$(pod p$r)") || fail "$r: runp for rmp"
        k=$($CRICTL create "$p" "$(ctr_cfg c$r)" "$work/p$r.pod.json") || fail "$r: create for rmp"
        $CRICTL start "$k" >/dev/null || fail "$r: start for rmp"
        cmd="$CRICTL rmp -f $p" ;;
    esac
    $cmd >"$work/op.out" 2>&1 &
    opid=$!
    sleep "$d"
    crash
    wait "$opid" && done_before=yes || done_before=no
    echo "round $r: $op, killed after ${d}s (call finished first: $done_before)"
    start
    check "$r ($op after ${d}s)"
    # what the round left, leftovers of the crash included, can be removed
    for p in $($CRICTL pods -q); do
        [ "$p" = "$BP" ] && continue
        $CRICTL rmp -f "$p" >/dev/null 2>"$work/rm.err" || fail "$r: rmp -f $p: $(cat "$work/rm.err")"
    done
    for k in $($CRICTL ps -aq); do
        $CRICTL rm -f "$k" >/dev/null 2>"$work/rm.err" || fail "$r: rm -f $k: $(cat "$work/rm.err")"
    done
    check "$r (after removing)"
done
echo "$ROUNDS rounds in $(($(date +%s) - t0)) s"

# --- everything removed: nothing is left ----------------------------------------------------------------
for p in $($CRICTL pods -q); do $CRICTL rmp -f "$p" >/dev/null || fail "final rmp $p"; done
[ -z "$($CRICTL pods -q)$($CRICTL ps -aq)" ] || fail "left: $($CRICTL pods) $($CRICTL ps -a)"
[ -z "$($CTR containers ls -q)" ] || fail "records left: $($CTR containers ls)"
[ -z "$($CTR tasks ls -q)" ] || fail "tasks left: $($CTR tasks ls)"
[ -z "$($CTR snapshots --snapshotter overlayfs ls | tail -n +2 | awk '$3 == "Active"')" ] ||
    fail "active snapshots left: $($CTR snapshots --snapshotter overlayfs ls)"
kill "$PID"
wait "$PID" || fail "berthd exited with $? on SIGTERM"
PID=""
i=0
while [ -n "$(shims)" ]; do i=$((i + 1)); [ $i -lt 100 ] || fail "shims left: $(shims)"; sleep 0.05; done
# (the network module's netns dir, a shared bind mount of itself, goes with the last netns: even when an
# earlier berthd made it)
left=$(awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts)
[ -z "$left" ] || fail "mounts left: $left"
[ -z "$(ls "$NETNS_DIR/k8s.io" 2>/dev/null)" ] || fail "netns left: $(ls "$NETNS_DIR/k8s.io")"
[ "$(ip -o link show master "$BR" 2>/dev/null | wc -l)" -eq 0 ] ||
    fail "veths left: $(ip -o link show master "$BR")"
echo "PASS cri_crash"
