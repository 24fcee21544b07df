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
# UpdateContainerResources (the running task's cgroup, the record's spec, the CRI config: all kept across a
# berthd restart; a created container's spec, which its task then takes; a failed task update leaves the
# old spec), ContainerStatus as containerd's (image = the repo tag, image_ref = the repo digest, image_id,
# user, stop signal, reasons Completed/Error/OOMKilled, the verbose info), and a container with stdin
# (stdin_once false) that an attach still writes to after a berthd restart.
# The cri.pre-create-container hook (tests/fixtures/fx_crihook.c) changes the spec (env, annotations) and
# the labels, and vetoes a container named "vetoed".
# usage: cri_containers.sh BERTHD MODULE_DIR SOURCE_DIR CRICTL GRPCC CRI_PROTO_DIR FIXTURE_DIR
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
SRC=$3
CRICTL_BIN=$4
GRPCC=$5
PROTO=$6 # holds runtime/v1/api.proto
FX=$7    # holds fx_crihook.so
[ -x "$CRICTL_BIN" ] || { echo "FAIL no crictl at $CRICTL_BIN (tests/scripts/gotools.sh)"; exit 1; }
work=$(mktemp -d /tmp/berth-cri-ctr-XXXXXX)
CTR="ctr --address $work/state/berthd.sock -n k8s.io"

cleanup() {
    status=$?
    cri_teardown
    umount_under "$work"
    rm -rf "$work"
    exit $status
}
PID=""
trap cleanup EXIT

cat >"$work/berthd.yaml" <<YAML
version: 1
YAML
crictl_config
start() { cri_start --set "module_dirs=[\"$FX\"]"; }
start
# reopen ID: ReopenContainerLog; prints the call's grpc-status
reopen() {
    printf 'container_id: "%s"\n' "$1" |
        protoc -I"$PROTO" --encode=runtime.v1.ReopenContainerLogRequest runtime/v1/api.proto >"$work/reopen.req"
    "$GRPCC" "$work/state/berthd.sock" /runtime.v1.RuntimeService/ReopenContainerLog --in "$work/reopen.req" \
        --out "$work/reopen.resp" >"$work/reopen.report" || true
    sed -n 's/^stream [0-9]* grpc-status \([0-9-]*\) .*/\1/p' "$work/reopen.report"
}
# jget KEY: the first "KEY": value (string or number) of JSON-ish text on stdin
jget() { grep -o "\"$1\": *\"\{0,1\}[^\",]*" | head -1 | sed "s/^\"$1\": *\"\{0,1\}//"; }

# --- the image, the pod ----------------------------------------------------------------------------------
sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$work/fx" >/dev/null
$CTR images import "$work/fx/busybox-oci.tar" >/dev/null || fail "ctr import"
IMG=docker.io/library/berth-busybox:latest
# a repo digest record, as a pull makes one (name@<manifest digest>)
MANIFEST=$($CTR images ls | awk -v i="$IMG" '$1 == i {print $3}')
case $MANIFEST in sha256:*) ;; *) fail "the image's digest: $($CTR images ls)" ;; esac
REPODIGEST=docker.io/library/berth-busybox@$MANIFEST
$CTR images tag "$IMG" "$REPODIGEST" >/dev/null || fail "ctr images tag $REPODIGEST"
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
# the pre-create hook's changes: in the stored spec (env, annotation) and the record's labels
$CTR containers info "$CID" | grep -q '"HOOKED=yes"' || fail "the hook's env is not in the spec"
$CTR containers info "$CID" | grep -q '"berth.test/hooked": "yes"' || fail "the hook's annotation"
$CTR containers info "$CID" | grep -q '"hooked": "cri"' || fail "the hook's label on the record"
$CRICTL ps -a -q --label hooked=cri | grep -qx "$CID" || fail "the hook's label in the CRI config"
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

out=$($CRICTL exec -s "$CID" sh -c 'echo $HOOKED' 2>&1) || fail "exec HOOKED: $out"
[ "$out" = yes ] || fail "the hook's env in the process: $out"
ctr_json vetoed 'true' "$work/vetoed.json"
out=$($CRICTL create "$POD" "$work/vetoed.json" "$work/pod.json" 2>&1) && fail "the hook's veto: $out"
echo "$out" | grep -q "is vetoed" || fail "the veto's message: $out"
$CTR containers ls | grep -q . && [ "$($CTR containers ls -q | wc -l)" -eq 2 ] ||
    fail "a vetoed container left a record: $($CTR containers ls -q)"
$CTR snapshots --snapshotter overlayfs ls | grep -v "^$CID" | grep -q "^[0-9a-f]\{64\} .*Active" &&
    fail "a vetoed container left its snapshot: $($CTR snapshots --snapshotter overlayfs ls)"

# --- ps filters -----------------------------------------------------------------------------------------
$CRICTL ps -q --state running | grep -qx "$CID" || fail "ps --state running"
[ -z "$($CRICTL ps -q --state exited)" ] || fail "ps --state exited lists $($CRICTL ps -q --state exited)"
$CRICTL ps -q --pod "$POD" | grep -qx "$CID" || fail "ps --pod"
$CRICTL ps -q --label app=app --label tier=test | grep -qx "$CID" || fail "ps --label"
[ -z "$($CRICTL ps -q --label app=other)" ] || fail "ps --label app=other"
$CRICTL ps -q --id "$(echo "$CID" | cut -c1-12)" | grep -qx "$CID" || fail "ps --id prefix"
$CRICTL ps -q --name '^app$' | grep -qx "$CID" || fail "ps --name"

# --- a container with stdin (stdin_once false): cat copies what an attach writes to its log ------------------
cat >"$work/in.json" <<JSON
{"metadata": {"name": "in"}, "image": {"image": "$IMG"}, "command": ["/bin/cat"], "stdin": true,
 "log_path": "in.log"}
JSON
INID=$($CRICTL create "$POD" "$work/in.json" "$work/pod.json") || fail "create in"
$CRICTL start "$INID" >/dev/null || fail "start in"

# --- a berthd restart: the container runs on, found again with its config and log ---------------------------
kill "$PID"
wait "$PID" || fail "berthd exited with $? on SIGTERM"
PID=""
start
$CRICTL ps -q --state running | grep -qx "$CID" || fail "after a restart: $($CRICTL ps -a)"
# the stdin of "in" is still open (cat runs) and an attach writes to it
$CRICTL ps -q --state running | grep -qx "$INID" || fail "cat saw its stdin end at the restart: $($CRICTL ps -a)"
(sleep 1; echo via-attach-$((6 * 7)); sleep 1) | timeout -s KILL 5 $CRICTL attach -i "$INID" >"$work/attach-in" 2>&1 || true
i=0
until grep -q "stdout F via-attach-42" "$work/logs/pod/in.log" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 60 ] || fail "attach after a restart: nothing reached stdin: $(cat "$work/attach-in"); log: $(cat "$work/logs/pod/in.log" 2>&1)"
    sleep 0.05
done
$CRICTL ps -q --state running | grep -qx "$INID" || fail "the attach's end closed stdin (stdin_once is false)"
$CRICTL rm -f "$INID" >/dev/null || fail "rm -f in"

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
echo "$st" | tr -d ' \n' | grep -q '"user":{"linux":{"gid":"65534","supplementalGroups":\[\],"uid":"65534"}' || fail "inspect user: $st"
echo "$st" | grep -q '"stopSignal": "SIGNAL_SIGTERM"' || fail "inspect stopSignal: $st"
# containerd's verbose info: sandboxID, pid, snapshot, runtime, the CRI config and the spec
echo "$st" | grep -q "\"sandboxID\": \"$POD\"" || fail "info sandboxID: $st"
echo "$st" | grep -q '"snapshotKey": "'"$CID"'"' || fail "info snapshotKey: $st"
echo "$st" | grep -q '"runtimeType": "io.containerd.runc.v2"' || fail "info runtimeType: $st"
echo "$st" | grep -q '"run_as_username": "nobody"' || fail "info config: $st"
echo "$st" | grep -q '"log_path": "app.log"' || fail "info config log_path: $st"
echo "$st" | grep -q '"ociVersion"' || fail "info runtimeSpec: $st"

# --- exec --sync: output, exit code, the mount's propagation, a timeout -----------------------------------
out=$($CRICTL exec -s "$CID" sh -c 'echo $FOO; pwd; id -u' 2>&1) || fail "exec: $out"
[ "$(echo "$out" | tr '\n' ' ')" = "bar /work 65534 " ] || fail "exec output: $out"
out=$($CRICTL exec -s "$CID" sh -c 'echo to-err >&2; exit 3' 2>&1) && fail "exit 3 was success: $out"
echo "$out" | grep -q "to-err" || fail "exec stderr: $out"
echo "$out" | grep -q "3" || fail "exec exit code: $out"
$CRICTL exec -s "$CID" sh -c 'echo shared >/dev/shm/podfile' >/dev/null 2>&1 || fail "writing /dev/shm"
[ "$(cat "$work/state/io.berth.cri.v1.cri/sandboxes/$POD/shm/podfile" 2>&1)" = shared ] ||
    fail "/dev/shm is not the pod's: $(ls "$work/state/io.berth.cri.v1.cri/sandboxes/$POD" 2>&1)"
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
# a second update merges into the first (containerd's WithResources): the shares stay
$CRICTL update --memory 100663296 "$CID" >/dev/null || fail "a second update"
[ "$(cat "$cg")" = 100663296 ] || fail "second update: $cg is $(cat "$cg" 2>&1)"
# a task update that fails leaves the spec as it was (containerd puts the old spec back)
out=$($CRICTL update --cpuset-cpus 4095 "$CID" 2>&1) && fail "an update to cpu 4095 succeeded: $out"
$CTR containers info "$CID" | grep -q '"cpus": "4095"' && fail "a failed update left its cpuset in the spec"
$CRICTL inspect "$CID" | grep -q '"cpusetCpus": "4095"' && fail "a failed update left its cpuset in the status"
# a created container: only its spec, which the task takes when it starts
cat >"$work/upd.json" <<JSON
{"metadata": {"name": "upd"}, "image": {"image": "$IMG"}, "command": ["/bin/sleep", "1000"]}
JSON
UID_=$($CRICTL create "$POD" "$work/upd.json" "$work/pod.json") || fail "create upd"
$CRICTL update --memory 50331648 "$UID_" >/dev/null || fail "update of a created container"
$CTR containers info "$UID_" | grep -q '"limit": 50331648' || fail "update (created): the record's spec"
$CRICTL start "$UID_" >/dev/null || fail "start upd"
cgu=/sys/fs/cgroup/memory/k8s.io/$UID_/memory.limit_in_bytes
[ -f "$cgu" ] || cgu=/sys/fs/cgroup/k8s.io/$UID_/memory.max
[ "$(cat "$cgu")" = 50331648 ] || fail "the started container's limit: $cgu is $(cat "$cgu" 2>&1)"
# all of it after a berthd restart: the status (the CRI config), the verbose config and spec
kill "$PID"
wait "$PID" || fail "berthd exited with $? on SIGTERM"
PID=""
start
st=$($CRICTL inspect "$CID")
echo "$st" | grep -q '"memoryLimitInBytes": "100663296"' || fail "after a restart: the status's memory: $st"
echo "$st" | grep -q '"cpuShares": "256"' || fail "after a restart: the status's cpu shares: $st"
echo "$st" | grep -q '"memory_limit_in_bytes": 100663296' || fail "after a restart: info config: $st"
echo "$st" | grep -q '"limit": 100663296' || fail "after a restart: info runtimeSpec: $st"
$CRICTL inspect "$UID_" | grep -q '"memoryLimitInBytes": "50331648"' ||
    fail "after a restart: the created-then-updated container's status: $($CRICTL inspect "$UID_")"
$CRICTL rm -f "$UID_" >/dev/null || fail "rm -f upd"

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
out=$($CRICTL exec -s --timeout 1 "$CID" sleep 37 2>&1) && fail "exec past its timeout succeeded: $out"
t1=$(date +%s)
[ $((t1 - t0)) -lt 10 ] || fail "the exec timeout took $((t1 - t0)) s"
echo "$out" | grep -qi "timeout\|deadline" || fail "exec timeout: $out"
pgrep -xf "sleep 37" >/dev/null && fail "the timed-out exec still runs"

# --- a container that ends by itself: its exit code and reason --------------------------------------------
# created by the image's id, as kubelet does (the image_ref PullImage / ImageStatus answered)
IMGID=$($CRICTL inspecti "$IMG" | jget id)
case $IMGID in sha256:*) ;; *) fail "inspecti id: $IMGID" ;; esac
ctr_json quick 'echo quick; exit 7' "$work/quick.json"
sed -i "s|\"image\": \"$IMG\"|\"image\": \"$IMGID\"|" "$work/quick.json"
grep -q "$IMGID" "$work/quick.json" || fail "quick.json: $(cat "$work/quick.json")"
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
# containerd: image = the image's repo tag (the container was made by id), image_ref = its repo digest,
# image_id = its id
echo "$st" | grep -q "\"imageRef\": \"$REPODIGEST\"" || fail "imageRef (want $REPODIGEST): $st"
echo "$st" | grep -q "\"imageId\": \"$IMGID\"" || fail "imageId: $st"
echo "$st" | grep -q "\"image\": \"$IMG\"" || fail "image: $st"
ctr_json done 'exit 0' "$work/done.json"
DID=$($CRICTL create "$POD" "$work/done.json" "$work/pod.json") || fail "create done"
# the OOM killer: 100 MB in a shell variable under a 16 MiB limit
cat >"$work/oom.json" <<JSON
{"metadata": {"name": "oom"}, "image": {"image": "$IMG"},
 "command": ["/bin/sh", "-c", "a=\$(head -c 100000000 /dev/zero | tr '\\\\0' x); echo survived"],
 "linux": {"resources": {"memory_limit_in_bytes": 16777216}}}
JSON
OID=$($CRICTL create "$POD" "$work/oom.json" "$work/pod.json") || fail "create oom"
$CRICTL start "$DID" "$OID" >/dev/null || fail "start done, oom"
for c in "$DID" "$OID"; do
    i=0
    until [ "$($CRICTL inspect "$c" | jget state)" = CONTAINER_EXITED ]; do
        i=$((i + 1))
        [ $i -lt 200 ] || fail "$c did not exit: $($CRICTL inspect "$c")"
        sleep 0.05
    done
done
st=$($CRICTL inspect "$DID")
[ "$(echo "$st" | jget exitCode)" = 0 ] && [ "$(echo "$st" | jget reason)" = Completed ] || fail "Completed: $st"
st=$($CRICTL inspect "$OID")
[ "$(echo "$st" | jget exitCode)" = 137 ] && [ "$(echo "$st" | jget reason)" = OOMKilled ] || fail "OOMKilled: $st"
$CRICTL rm "$DID" "$OID" >/dev/null || fail "rm done, oom"
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
