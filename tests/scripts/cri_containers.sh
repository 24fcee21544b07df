#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# CRI containers against a real berthd with crictl (v1.37.0), real runc and real mounts: a host-network pod,
# the busybox fixture imported into k8s.io with ctr; create (args = command + args, env, working dir, a
# user by name from the image's /etc/passwd, a host mount with host-to-container propagation and a host
# path that does not exist yet), a duplicate name refused, start, ps with filters, inspect (state, pid,
# mounts, exit code and reason once it ended), the CRI log file (timestamps, streams, tags) and crictl logs,
# exec --sync (output, exit code, a timeout), ReopenContainerLog after kubelet's rename of the log (grpcc:
# crictl has no command for it), stop with a timeout on a process that ignores SIGTERM, rm, and
# `ctr -n k8s.io` following the records and snapshots.
# usage: cri_containers.sh BERTHD MODULE_DIR SOURCE_DIR CRICTL GRPCC CRI_PROTO_DIR
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
SRC=$3
CRICTL_BIN=$4
GRPCC=$5
PROTO=$6 # holds runtime/v1/api.proto
[ -x "$CRICTL_BIN" ] || { echo "FAIL no crictl at $CRICTL_BIN (tests/scripts/gotools.sh)"; exit 1; }
work=$(mktemp -d /tmp/berth-cri-ctr-XXXXXX)
CTR="ctr --address $work/state/berthd.sock -n k8s.io"

cleanup() {
    status=$?
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        for p in $($CRICTL pods -q 2>/dev/null); do
            $CRICTL stopp "$p" >/dev/null 2>&1 || true
            $CRICTL rmp "$p" >/dev/null 2>&1 || true
        done
    fi
    stop_test_processes
    for f in "$work"/state/io.containerd.runtime.v2.task/*/*/init.pid; do
        [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
    done
    for p in $(pgrep -f "berth-shim .* $work/" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    umount_under "$work"
    rm -rf "$work"
    exit $status
}
PID=""
trap cleanup EXIT

cat >"$work/berthd.yaml" <<YAML
version: 1
YAML
cat >"$work/crictl.yaml" <<YAML
runtime-endpoint: unix://$work/state/berthd.sock
image-endpoint: unix://$work/state/berthd.sock
timeout: 20
YAML
CRICTL="$CRICTL_BIN --config $work/crictl.yaml"
"$BERTHD" --config "$work/berthd.yaml" --root "$work/root" --state "$work/state" --log-level info \
    2>>"$work/log" &
PID=$!
i=0
until $CRICTL version >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -lt 200 ] || fail "berthd did not start"
    kill -0 "$PID" 2>/dev/null || fail "berthd exited"
    sleep 0.05
done
# reopen ID: ReopenContainerLog; prints the call's grpc-status
reopen() {
    printf 'container_id: "%s"\n' "$1" |
        protoc -I"$PROTO" --encode=runtime.v1.ReopenContainerLogRequest runtime/v1/api.proto >"$work/reopen.req"
    "$GRPCC" "$work/state/berthd.sock" /runtime.v1.RuntimeService/ReopenContainerLog --in "$work/reopen.req" \
        --out "$work/reopen.resp" >"$work/reopen.report" || true
    sed -n 's/^stream [0-9]* grpc-status \([0-9-]*\) .*/\1/p' "$work/reopen.report"
}
# jget KEY: the first "KEY": value (string or number) of JSON-ish text on stdin
jget() { grep -o "\"$1\": *\"\{0,1\}[^\",]*" | head -1 | sed 's/.*: *"\{0,1\}//'; }

# --- the image, the pod ----------------------------------------------------------------------------------
sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$work/fx" >/dev/null
$CTR images import "$work/fx/busybox-oci.tar" >/dev/null || fail "ctr import"
IMG=docker.io/library/berth-busybox:latest
mkdir -p "$work/logs/pod"
cat >"$work/pod.json" <<JSON
{"metadata": {"name": "web", "namespace": "cri-ctr", "uid": "uid-$$", "attempt": 0},
 "hostname": "webhost", "log_directory": "$work/logs/pod",
 "linux": {"security_context": {"namespace_options": {"network": 2}}}}
JSON
POD=$($CRICTL runp "$work/pod.json") || fail "runp"

# --- a host directory on a shared mount: what is mounted under it later shows in the container ---------
mkdir -p "$work/hostdir"
mount --bind "$work/hostdir" "$work/hostdir"
mount --make-shared "$work/hostdir"
echo from-the-host >"$work/hostdir/file"
chmod 755 "$work/hostdir"

# ctr_json NAME SCRIPT FILE: a ContainerConfig running sh -c SCRIPT as nobody in /work with FOO=bar
ctr_json() {
    cat >"$3" <<JSON
{"metadata": {"name": "$1"}, "image": {"image": "$IMG"},
 "command": ["/bin/sh", "-c"], "args": ["$2", "argzero"],
 "envs": [{"key": "FOO", "value": "bar"}, {"key": "PATH", "value": "/bin:/sbin"}],
 "working_dir": "/work", "log_path": "$1.log",
 "labels": {"app": "$1", "tier": "test"}, "annotations": {"berth.test/ctr": "$1"},
 "mounts": [{"container_path": "/mnt/host", "host_path": "$work/hostdir", "readonly": true,
             "propagation": 1},
            {"container_path": "/mnt/made", "host_path": "$work/made/here"}],
 "linux": {"security_context": {"run_as_username": "nobody"}}}
JSON
}
# the main process: its args, env, cwd, user, the mount; then it ignores SIGTERM and sleeps
ctr_json app 'echo \"args=$0 $*\"; echo FOO=$FOO PATH=$PATH; pwd; id -u; id -g; echo HOSTNAME=$HOSTNAME; cat /mnt/host/file; echo to-stderr >&2; trap \"\" TERM; exec sleep 1000' "$work/app.json"
start_s=$(date +%s)
CID=$($CRICTL create "$POD" "$work/app.json" "$work/pod.json") || fail "create"
[ ${#CID} -eq 64 ] || fail "create answered $CID"
[ -d "$work/made/here" ] || fail "the missing host path was not made"
out=$($CRICTL create "$POD" "$work/app.json" "$work/pod.json" 2>&1) && fail "a second container named app: $out"
echo "$out" | grep -q "is reserved for" || fail "duplicate name: $out"
$CRICTL ps -a --id "$CID" | grep -q "Created" || fail "ps: not Created: $($CRICTL ps -a)"
$CTR containers ls | grep -q "^$CID" || fail "ctr does not list the container record"
$CTR containers info "$CID" | grep -q '"io.cri-containerd.kind": "container"' || fail "record labels"
$CTR snapshots --snapshotter overlayfs ls | grep -q "^$CID" || fail "no snapshot $CID"

$CRICTL start "$CID" >/dev/null || fail "start"
out=$($CRICTL start "$CID" 2>&1) && fail "a second start: $out"
LOG=$work/logs/pod/app.log
i=0
until grep -q to-stderr "$LOG" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 100 ] || fail "no log at $LOG: $(cat "$LOG" 2>&1)"
    sleep 0.05
done

# --- what the process saw ------------------------------------------------------------------------------
logs=$($CRICTL logs "$CID" 2>&1) || fail "crictl logs"
for want in "args=argzero" "FOO=bar PATH=/bin:/sbin" "/work" "HOSTNAME=webhost" "from-the-host"; do
    echo "$logs" | grep -qx ".*$want.*" || fail "logs lack $want: $logs"
done
[ "$(echo "$logs" | sed -n 4p)" = 65534 ] && [ "$(echo "$logs" | sed -n 5p)" = 65534 ] ||
    fail "not nobody (65534:65534): $logs"
grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]+Z stdout F FOO=bar PATH=/bin:/sbin$' "$LOG" ||
    fail "CRI log line (stdout): $(cat "$LOG")"
grep -Eq '^[0-9-]+T[0-9:.]+Z stderr F to-stderr$' "$LOG" || fail "CRI log line (stderr): $(cat "$LOG")"

# --- ps filters -----------------------------------------------------------------------------------------
$CRICTL ps -q --state running | grep -qx "$CID" || fail "ps --state running"
[ -z "$($CRICTL ps -q --state exited)" ] || fail "ps --state exited lists $($CRICTL ps -q --state exited)"
$CRICTL ps -q --pod "$POD" | grep -qx "$CID" || fail "ps --pod"
$CRICTL ps -q --label app=app --label tier=test | grep -qx "$CID" || fail "ps --label"
[ -z "$($CRICTL ps -q --label app=other)" ] || fail "ps --label app=other"
$CRICTL ps -q --id "$(echo "$CID" | cut -c1-12)" | grep -qx "$CID" || fail "ps --id prefix"
$CRICTL ps -q --name '^app$' | grep -qx "$CID" || fail "ps --name"

# --- inspect ---------------------------------------------------------------------------------------------
st=$($CRICTL inspect "$CID") || fail "inspect"
[ "$(echo "$st" | jget state)" = CONTAINER_RUNNING ] || fail "inspect state: $st"
echo "$st" | grep -q '"containerPath": "/mnt/host"' || fail "inspect mounts: $st"
echo "$st" | grep -q '"propagation": "PROPAGATION_HOST_TO_CONTAINER"' || fail "inspect propagation: $st"
echo "$st" | grep -q "\"logPath\": \"$LOG\"" || fail "inspect logPath: $st"
echo "$st" | grep -q '"berth.test/ctr": "app"' || fail "inspect annotations: $st"
pid=$(echo "$st" | jget pid)
[ -n "$pid" ] && [ "$pid" -gt 0 ] && kill -0 "$pid" || fail "inspect pid: $pid"
echo "$st" | grep -q '"io.kubernetes.cri.sandbox-id": "'"$POD"'"' || fail "the spec's annotations: $st"
grep -q "sleep" "/proc/$pid/cmdline" || fail "pid $pid is not the sleep"

# --- exec --sync: output, exit code, the mount's propagation, a timeout -----------------------------------
out=$($CRICTL exec -s "$CID" sh -c 'echo $FOO; pwd; id -u' 2>&1) || fail "exec: $out"
[ "$(echo "$out" | tr '\n' ' ')" = "bar /work 65534 " ] || fail "exec output: $out"
out=$($CRICTL exec -s "$CID" sh -c 'echo to-err >&2; exit 3' 2>&1) && fail "exit 3 was success: $out"
echo "$out" | grep -q "to-err" || fail "exec stderr: $out"
echo "$out" | grep -q "3" || fail "exec exit code: $out"
mkdir -p "$work/hostdir/sub"
mount -t tmpfs tmpfs "$work/hostdir/sub"
echo propagated >"$work/hostdir/sub/f"
out=$($CRICTL exec -s "$CID" cat /mnt/host/sub/f 2>&1) || fail "host-to-container propagation: $out"
[ "$out" = propagated ] || fail "propagated file: $out"
out=$($CRICTL exec -s "$CID" sh -c 'touch /mnt/host/x' 2>&1) && fail "a read-only mount was written"

# --- UpdateContainerResources: the running task's cgroup and the status --------------------------------------
$CRICTL update --memory 67108864 --cpu-share 256 "$CID" >/dev/null || fail "update"
cg=/sys/fs/cgroup/memory/k8s.io/$CID/memory.limit_in_bytes
[ -f "$cg" ] || cg=/sys/fs/cgroup/k8s.io/$CID/memory.max
[ "$(cat "$cg")" = 67108864 ] || fail "update: $cg is $(cat "$cg" 2>&1)"
st=$($CRICTL inspect "$CID")
echo "$st" | grep -q '"memoryLimitInBytes": "67108864"' || fail "update: the status: $st"
$CTR containers info "$CID" | grep -q '"limit": 67108864' || fail "update: the record's spec"

# --- ReopenContainerLog: kubelet renamed the log; the new file is there when the call answers, and the
# process's next output goes to it ----------------------------------------------------------------------------
mv "$LOG" "$LOG.old"
[ "$(reopen "$CID")" = 0 ] || fail "ReopenContainerLog: $(cat "$work/reopen.report")"
[ -f "$LOG" ] || fail "no new log file after ReopenContainerLog"
$CRICTL exec -s "$CID" sh -c 'echo after-reopen >/proc/$(pidof sleep)/fd/1' >/dev/null 2>&1 ||
    fail "writing to the container's stdout"
i=0
until grep -q "stdout F after-reopen" "$LOG"; do
    i=$((i + 1))
    [ $i -lt 100 ] || fail "nothing in the reopened log: $(cat "$LOG") / old: $(tail -2 "$LOG.old")"
    sleep 0.05
done
grep -q after-reopen "$LOG.old" && fail "the renamed log still grew"

t0=$(date +%s)
out=$($CRICTL exec -s --timeout 1 "$CID" sleep 30 2>&1) && fail "exec past its timeout succeeded: $out"
t1=$(date +%s)
[ $((t1 - t0)) -lt 10 ] || fail "the exec timeout took $((t1 - t0)) s"
echo "$out" | grep -qi "timeout\|deadline" || fail "exec timeout: $out"
pgrep -f "sleep 30" >/dev/null && fail "the timed-out exec still runs"

# --- a container that ends by itself: its exit code and reason --------------------------------------------
ctr_json quick 'echo quick; exit 7' "$work/quick.json"
QID=$($CRICTL create "$POD" "$work/quick.json" "$work/pod.json") || fail "create quick"
$CRICTL start "$QID" >/dev/null || fail "start quick"
i=0
until [ "$($CRICTL inspect "$QID" | jget state)" = CONTAINER_EXITED ]; do
    i=$((i + 1))
    [ $i -lt 100 ] || fail "quick did not exit: $($CRICTL inspect "$QID")"
    sleep 0.05
done
st=$($CRICTL inspect "$QID")
[ "$(echo "$st" | jget exitCode)" = 7 ] || fail "exit code: $st"
[ "$(echo "$st" | jget reason)" = Error ] || fail "reason: $st"
$CRICTL ps -q --state exited | grep -qx "$QID" || fail "ps --state exited"
out=$($CRICTL exec -s "$QID" true 2>&1) && fail "exec in an exited container: $out"

# --- stop: SIGTERM is ignored, SIGKILL after the timeout ----------------------------------------------------
t0=$(date +%s)
$CRICTL stop --timeout 2 "$CID" >/dev/null || fail "stop"
t1=$(date +%s)
[ $((t1 - t0)) -ge 2 ] && [ $((t1 - t0)) -lt 12 ] || fail "stop took $((t1 - t0)) s (timeout 2)"
st=$($CRICTL inspect "$CID")
[ "$(echo "$st" | jget state)" = CONTAINER_EXITED ] || fail "stopped state: $st"
[ "$(echo "$st" | jget exitCode)" = 137 ] || fail "stopped exit code (SIGKILL): $st"
kill -0 "$pid" 2>/dev/null && fail "the container's process $pid survived stop"
$CRICTL stop "$CID" >/dev/null || fail "stopping a stopped container"
[ "$(reopen "$CID")" = 9 ] || fail "ReopenContainerLog of a stopped container: $(cat "$work/reopen.report")"

# --- rm ----------------------------------------------------------------------------------------------------
$CRICTL rm "$CID" "$QID" >/dev/null || fail "rm"
[ -z "$($CRICTL ps -a -q)" ] || fail "ps -a after rm: $($CRICTL ps -a)"
$CTR containers ls -q | grep -q "$CID" && fail "the record outlived rm"
$CTR snapshots --snapshotter overlayfs ls | grep -q "^$CID" && fail "the snapshot outlived rm"
out=$($CRICTL inspect "$CID" 2>&1) && fail "inspect after rm: $out"
# the name is free again
CID2=$($CRICTL create "$POD" "$work/app.json" "$work/pod.json") || fail "create after rm"
$CRICTL rm "$CID2" >/dev/null || fail "rm of a created container"

$CRICTL stopp "$POD" >/dev/null || fail "stopp"
$CRICTL rmp "$POD" >/dev/null || fail "rmp"
echo "PASS cri.containers in $(($(date +%s) - start_s)) s"
