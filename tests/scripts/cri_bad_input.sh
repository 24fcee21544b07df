#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# cri.bad_input: bad requests to every CRI RuntimeService and ImageService method over berthd's real socket
# (grpcc sends each request as protoc encoded it from text, or as raw bytes). Each must end with the gRPC
# code containerd 1.6's CRI gives (or InvalidArgument where it answers Unknown for a request it refuses)
# and a message naming what was wrong: no metadata, empty names, no image, no pod id, unknown ids,
# ambiguous id prefixes, a pod that does not exist or is not ready, log paths outside the pod's log
# directory, absurd resources, invalid sysctls, a seccomp profile that is not there, bad image references,
# duplicate pod and container names (AlreadyExists naming the holder), and malformed protobuf bodies
# (bytes that do not parse, a message cut short, a frame shorter than it declares). berthd must not crash,
# and a pod and a container made first must be intact after it all (listed, running, their records there),
# with nothing a refused request began left behind (no extra pod, container, record, snapshot or mount).
# usage: cri_bad_input.sh BERTHD MODULE_DIR SOURCE_DIR CRICTL GRPCC CRI_PROTO_DIR
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
SRC=$3
CRICTL_BIN=$4
GRPCC=$5
PROTO=$6 # holds runtime/v1/api.proto
[ -x "$CRICTL_BIN" ] || { echo "FAIL no crictl at $CRICTL_BIN (tests/scripts/gotools.sh)"; exit 1; }
work=$(mktemp -d /tmp/berth-cri-bad-XXXXXX)
CTR="ctr --address $work/state/berthd.sock -n k8s.io"
SOCK=$work/state/berthd.sock

cleanup() {
    status=$?
    cri_teardown
    umount_under "$work"
    rm -rf "$work"
    exit $status
}
PID=""
trap cleanup EXIT

printf 'version: 1\n' >"$work/berthd.yaml"
cat >"$work/crictl.yaml" <<YAML
runtime-endpoint: unix://$SOCK
image-endpoint: unix://$SOCK
timeout: 20
YAML
CRICTL="$CRICTL_BIN --config $work/crictl.yaml"
cri_start

# --- what is stored first: a running pod and a running container -----------------------------------------
sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$work/fx" >/dev/null
$CTR images import "$work/fx/busybox-oci.tar" >/dev/null || fail "ctr import"
IMG=docker.io/library/berth-busybox:latest
mkdir -p "$work/logs/pod"
POD_META='metadata { name: "keep" namespace: "cri-bad" uid: "uid-keep" attempt: 0 }'
POD_CFG="$POD_META log_directory: \"$work/logs/pod\" linux { security_context { namespace_options { network: NODE } } }"
cat >"$work/pod.json" <<JSON
{"metadata": {"name": "keep", "namespace": "cri-bad", "uid": "uid-keep", "attempt": 0},
 "log_directory": "$work/logs/pod",
 "linux": {"security_context": {"namespace_options": {"network": 2}}}}
JSON
cat >"$work/ctr.json" <<JSON
{"metadata": {"name": "sleeper"}, "image": {"image": "$IMG"}, "command": ["/bin/sleep", "3600"],
 "log_path": "sleeper.log"}
JSON
POD=$($CRICTL runp "$work/pod.json") || fail "runp"
CID=$($CRICTL create "$POD" "$work/ctr.json" "$work/pod.json") || fail "create"
$CRICTL start "$CID" >/dev/null || fail "start"
SPID=$($CRICTL inspect "$CID" | grep -o '"pid": [0-9]*' | head -1 | grep -o '[0-9]*$')
kill -0 "$SPID" || fail "no sleeper process"
snapshot_count() { $CTR snapshots --snapshotter overlayfs ls | tail -n +2 | wc -l; }
mount_count() { awk -v w="$work/" 'index($2, w) == 1' /proc/mounts | wc -l; }
records0=$($CTR containers ls -q | sort | tr '\n' ' ')
snaps0=$(snapshot_count)
mounts0=$(mount_count)
# a pod that is not ready (stopped): no container can be made in it
cat >"$work/stopped.json" <<JSON
{"metadata": {"name": "stopped", "namespace": "cri-bad", "uid": "uid-stopped", "attempt": 0},
 "linux": {"security_context": {"namespace_options": {"network": 2}}}}
JSON
STOPPED=$($CRICTL runp "$work/stopped.json") || fail "runp stopped"
$CRICTL stopp "$STOPPED" >/dev/null || fail "stopp"

# --- the calls ------------------------------------------------------------------------------------------
n_cases=0
# call SERVICE METHOD REQUEST_TYPE TEXT CODE REGEX: the request (protobuf text format) must end with gRPC
# status CODE and (when REGEX is not empty) a grpc-message matching REGEX (grep -E)
call() {
    _svc=$1 _m=$2 _t=$3 _text=$4 _code=$5 _re=$6
    n_cases=$((n_cases + 1))
    printf '%s\n' "$_text" | protoc -I"$PROTO" --encode="runtime.v1.$_t" runtime/v1/api.proto \
        >"$work/req" || fail "protoc could not encode $_t: $_text"
    raw "$_svc" "$_m" "$work/req" "$_code" "$_re" "$_text"
}
# raw SERVICE METHOD FILE CODE REGEX WHAT [GRPCC_ARGS]: FILE's bytes as the request
raw() {
    _svc=$1 _m=$2 _f=$3 _code=$4 _re=$5 _what=$6
    shift 6
    "$GRPCC" "$SOCK" "/runtime.v1.$_svc/$_m" --in "$_f" --out "$work/resp" --timeout 30 "$@" \
        >"$work/report" 2>&1 || true
    _got=$(sed -n 's/^stream [0-9]* grpc-status \([0-9-]*\) .*/\1/p' "$work/report")
    _msg=$(sed -n 's/^stream [0-9]* grpc-status [0-9-]* .* grpc-message \(.*\)/\1/p' "$work/report")
    [ "$_got" = "$_code" ] ||
        wrong "$_m ($_what): status ${_got:-none}, want $_code: $(head -1 "$work/report")"
    if [ -n "$_re" ]; then
        printf '%s\n' "$_msg" | grep -Eq -- "$_re" ||
            wrong "$_m ($_what): the message does not say what was wrong (want /$_re/): $_msg"
    fi
    kill -0 "$PID" 2>/dev/null || fail "berthd died after $_m ($_what)"
    [ "$_code" = 0 ] || echo "ok $_m ($_what): $_code $_msg"
}
# wrong MSG: a case answered wrongly; CRI_BAD_INPUT_ALL=1 lists every one before failing
n_wrong=0
wrong() {
    [ -n "${CRI_BAD_INPUT_ALL:-}" ] || fail "$*"
    echo "WRONG $*"
    n_wrong=$((n_wrong + 1))
}
R=RuntimeService
I=ImageService
INV=3 NF=5 AE=6 FP=9
NOID=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef

# RunPodSandbox
call $R RunPodSandbox RunPodSandboxRequest '' $INV 'metadata'
call $R RunPodSandbox RunPodSandboxRequest 'config { hostname: "x" }' $INV 'metadata'
call $R RunPodSandbox RunPodSandboxRequest 'config { metadata { name: "" namespace: "n" uid: "u" } }' $INV 'name'
call $R RunPodSandbox RunPodSandboxRequest 'config { metadata { name: "a" namespace: "n" uid: "" } }' $INV 'uid'
call $R RunPodSandbox RunPodSandboxRequest "config { $POD_CFG }" $AE "$POD"
call $R RunPodSandbox RunPodSandboxRequest \
    'config { metadata { name: "sys" namespace: "n" uid: "u1" } linux { sysctls { key: "kernel.no_such_sysctl" value: "1" } security_context { namespace_options { network: NODE } } } }' \
    $INV 'kernel.no_such_sysctl'
call $R RunPodSandbox RunPodSandboxRequest \
    'config { metadata { name: "sys2" namespace: "n" uid: "u2" } linux { sysctls { key: "../../etc/passwd" value: "1" } security_context { namespace_options { network: NODE } } } }' \
    $INV 'etc/passwd'
call $R RunPodSandbox RunPodSandboxRequest \
    "config { metadata { name: \"sec\" namespace: \"n\" uid: \"u3\" } linux { security_context { namespace_options { network: NODE } seccomp { profile_type: Localhost localhost_ref: \"$work/no-such-profile.json\" } } } }" \
    $INV 'no-such-profile.json'
call $R RunPodSandbox RunPodSandboxRequest \
    'config { metadata { name: "res" namespace: "n" uid: "u4" } linux { resources { memory_limit_in_bytes: -5 } security_context { namespace_options { network: NODE } } } }' \
    $INV 'memory'
call $R RunPodSandbox RunPodSandboxRequest \
    'config { metadata { name: "rl" namespace: "n" uid: "u5" } log_directory: "relative/logs" linux { security_context { namespace_options { network: NODE } } } }' \
    $INV 'relative/logs'
# StopPodSandbox, RemovePodSandbox, PodSandboxStatus
call $R StopPodSandbox StopPodSandboxRequest '' $INV 'id'
call $R RemovePodSandbox RemovePodSandboxRequest '' $INV 'id'
call $R RemovePodSandbox RemovePodSandboxRequest "pod_sandbox_id: \"$NOID\"" 0 ''
call $R PodSandboxStatus PodSandboxStatusRequest '' $INV 'id'
call $R PodSandboxStatus PodSandboxStatusRequest "pod_sandbox_id: \"$NOID\"" $NF "$NOID"
call $R PodSandboxStats PodSandboxStatsRequest "pod_sandbox_id: \"$NOID\"" $NF "$NOID"
call $R PodSandboxStats PodSandboxStatsRequest '' $INV 'id'
call $R PortForward PortForwardRequest "pod_sandbox_id: \"$NOID\" port: 80" $NF "$NOID"
call $R PortForward PortForwardRequest '' $INV 'id'
call $R ListPodSandbox ListPodSandboxRequest "filter { id: \"$NOID\" }" 0 ''

# CreateContainer
call $R CreateContainer CreateContainerRequest "pod_sandbox_id: \"$POD\"" $INV 'metadata'
call $R CreateContainer CreateContainerRequest "pod_sandbox_id: \"$POD\" config { image { image: \"$IMG\" } }" $INV 'metadata'
call $R CreateContainer CreateContainerRequest "pod_sandbox_id: \"$POD\" config { metadata { name: \"\" } image { image: \"$IMG\" } }" $INV 'name'
call $R CreateContainer CreateContainerRequest "pod_sandbox_id: \"$POD\" config { metadata { name: \"c1\" } }" $INV 'image'
call $R CreateContainer CreateContainerRequest "config { metadata { name: \"c$n_cases\" } image { image: \"$IMG\" } } sandbox_config { $POD_CFG }" $INV 'pod sandbox id'
call $R CreateContainer CreateContainerRequest "pod_sandbox_id: \"$NOID\" config { metadata { name: \"c$n_cases\" } image { image: \"$IMG\" } }" $NF "$NOID"
call $R CreateContainer CreateContainerRequest "pod_sandbox_id: \"$STOPPED\" config { metadata { name: \"c$n_cases\" } image { image: \"$IMG\" } }" $FP 'not ready'
call $R CreateContainer CreateContainerRequest \
    "pod_sandbox_id: \"$POD\" config { metadata { name: \"c1\" } image { image: \"docker.io/library/no-such-image:1\" } } sandbox_config { $POD_CFG }" \
    $NF 'no-such-image'
call $R CreateContainer CreateContainerRequest \
    "pod_sandbox_id: \"$POD\" config { metadata { name: \"c1\" } image { image: \"Bad//Ref::x\" } } sandbox_config { $POD_CFG }" \
    $INV 'Bad//Ref::x'
call $R CreateContainer CreateContainerRequest \
    "pod_sandbox_id: \"$POD\" config { metadata { name: \"sleeper\" } image { image: \"$IMG\" } } sandbox_config { $POD_CFG }" \
    $AE "$CID"
call $R CreateContainer CreateContainerRequest \
    "pod_sandbox_id: \"$POD\" config { metadata { name: \"c$n_cases\" } image { image: \"$IMG\" } log_path: \"../../escape.log\" } sandbox_config { $POD_CFG }" \
    $INV 'escape.log'
call $R CreateContainer CreateContainerRequest \
    "pod_sandbox_id: \"$POD\" config { metadata { name: \"c$n_cases\" } image { image: \"$IMG\" } log_path: \"c1/../../../escape.log\" } sandbox_config { $POD_CFG }" \
    $INV 'escape.log'
call $R CreateContainer CreateContainerRequest \
    "pod_sandbox_id: \"$POD\" config { metadata { name: \"c$n_cases\" } image { image: \"$IMG\" } log_path: \"c1.log\" } sandbox_config { $POD_META log_directory: \"relative/dir\" }" \
    $INV 'relative/dir'
call $R CreateContainer CreateContainerRequest \
    "pod_sandbox_id: \"$POD\" config { metadata { name: \"c$n_cases\" } image { image: \"$IMG\" } linux { resources { memory_limit_in_bytes: -1048576 } } } sandbox_config { $POD_CFG }" \
    $INV 'memory'
call $R CreateContainer CreateContainerRequest \
    "pod_sandbox_id: \"$POD\" config { metadata { name: \"c$n_cases\" } image { image: \"$IMG\" } linux { resources { cpu_shares: 9223372036854775807 } } } sandbox_config { $POD_CFG }" \
    $INV 'cpu.shares|cpu_shares'
call $R CreateContainer CreateContainerRequest \
    "pod_sandbox_id: \"$POD\" config { metadata { name: \"c$n_cases\" } image { image: \"$IMG\" } linux { resources { cpu_quota: -7 cpu_period: 100000 } } } sandbox_config { $POD_CFG }" \
    $INV 'cpu.quota|cpu_quota'
call $R CreateContainer CreateContainerRequest \
    "pod_sandbox_id: \"$POD\" config { metadata { name: \"c$n_cases\" } image { image: \"$IMG\" } linux { resources { oom_score_adj: 5000 } } } sandbox_config { $POD_CFG }" \
    $INV 'oom_score_adj'
call $R CreateContainer CreateContainerRequest \
    "pod_sandbox_id: \"$POD\" config { metadata { name: \"c$n_cases\" } image { image: \"$IMG\" } linux { security_context { run_as_group { value: 5 } } } } sandbox_config { $POD_CFG }" \
    $INV 'run_as_group'
call $R CreateContainer CreateContainerRequest \
    "pod_sandbox_id: \"$POD\" config { metadata { name: \"c$n_cases\" } image { image: \"$IMG\" } linux { security_context { seccomp { profile_type: Localhost localhost_ref: \"$work/no-such-profile.json\" } } } } sandbox_config { $POD_CFG }" \
    $INV 'no-such-profile.json'
call $R CreateContainer CreateContainerRequest \
    "pod_sandbox_id: \"$POD\" config { metadata { name: \"c$n_cases\" } image { image: \"$IMG\" } linux { security_context { seccomp { profile_type: Localhost localhost_ref: \"\" } } } } sandbox_config { $POD_CFG }" \
    $INV 'seccomp|localhost'
printf 'not json {' >"$work/garbage-profile.json"
call $R CreateContainer CreateContainerRequest \
    "pod_sandbox_id: \"$POD\" config { metadata { name: \"c$n_cases\" } image { image: \"$IMG\" } linux { security_context { seccomp { profile_type: Localhost localhost_ref: \"$work/garbage-profile.json\" } } } } sandbox_config { $POD_CFG }" \
    $INV 'garbage-profile.json'

# the other container methods
for m in StartContainer ContainerStatus ContainerStats ReopenContainerLog UpdateContainerResources StopContainer; do
    t=${m}Request
    call $R "$m" "$t" '' $INV 'id'
    call $R "$m" "$t" "container_id: \"$NOID\"" $NF "$NOID"
done
call $R RemoveContainer RemoveContainerRequest '' $INV 'id'
call $R RemoveContainer RemoveContainerRequest "container_id: \"$NOID\"" 0 ''
call $R StartContainer StartContainerRequest "container_id: \"$CID\"" $FP 'RUNNING|running'
call $R UpdateContainerResources UpdateContainerResourcesRequest \
    "container_id: \"$CID\" linux { memory_limit_in_bytes: -1 }" $INV 'memory'
call $R UpdateContainerResources UpdateContainerResourcesRequest \
    "container_id: \"$CID\" linux { cpu_shares: 9223372036854775807 }" $INV 'cpu.shares|cpu_shares'
call $R ExecSync ExecSyncRequest '' $INV 'id'
call $R ExecSync ExecSyncRequest "container_id: \"$NOID\" cmd: \"true\"" $NF "$NOID"
call $R ExecSync ExecSyncRequest "container_id: \"$CID\"" $INV 'cmd|command'
call $R Exec ExecRequest "container_id: \"$NOID\" cmd: \"true\" stdout: true" $NF "$NOID"
call $R Exec ExecRequest "container_id: \"$CID\" stdout: true" $INV 'cmd|command'
call $R Exec ExecRequest "container_id: \"$CID\" cmd: \"true\"" $INV 'stdin|stdout|stderr'
call $R Exec ExecRequest '' $INV 'id'
call $R Attach AttachRequest "container_id: \"$NOID\" stdout: true" $NF "$NOID"
call $R Attach AttachRequest '' $INV 'id'
call $R ListContainers ListContainersRequest "filter { id: \"$NOID\" }" 0 ''

# ambiguous id prefixes: 17 containers (created, not started) hold two ids with the same first hex digit
for n in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17; do
    sed "s/\"sleeper\"/\"amb$n\"/; s/sleeper.log/amb$n.log/" "$work/ctr.json" >"$work/amb.json"
    $CRICTL create "$POD" "$work/amb.json" "$work/pod.json" >>"$work/amb.ids" || fail "create amb$n"
done
dup=$( (cat "$work/amb.ids"; echo "$CID") | cut -c1 | sort | uniq -d | head -1)
call $R ContainerStatus ContainerStatusRequest "container_id: \"$dup\"" $INV 'ambiguous'
call $R StopContainer StopContainerRequest "container_id: \"$dup\"" $INV 'ambiguous'
call $R RemoveContainer RemoveContainerRequest "container_id: \"$dup\"" $INV 'ambiguous'
for k in $(cat "$work/amb.ids"); do $CRICTL rm "$k" >/dev/null || fail "rm $k"; done
# a pod id prefix shared with the other pod, when they share one
p2=$(printf '%s\n%s\n' "$POD" "$STOPPED" | cut -c1-2 | uniq -d)
if [ -n "$p2" ]; then
    call $R RemovePodSandbox RemovePodSandboxRequest "pod_sandbox_id: \"$p2\"" $INV 'ambiguous'
fi

# ImageService
call $I PullImage PullImageRequest '' $INV 'image'
call $I PullImage PullImageRequest 'image { image: "" }' $INV 'image'
call $I PullImage PullImageRequest 'image { image: "Bad//Ref::x" }' $INV 'Bad//Ref::x'
call $I PullImage PullImageRequest 'image { image: "127.0.0.1:1/nothing/here:1" }' 14 '127.0.0.1:1/nothing/here'
call $I ImageStatus ImageStatusRequest '' $INV 'image'
call $I ImageStatus ImageStatusRequest 'image { image: "docker.io/library/no-such-image:1" }' 0 ''
call $I ImageStatus ImageStatusRequest 'image { image: "UPPER/Case" }' $INV 'UPPER/Case'
call $I RemoveImage RemoveImageRequest '' $INV 'image'
call $I RemoveImage RemoveImageRequest 'image { image: "docker.io/library/no-such-image:1" }' 0 ''
call $I RemoveImage RemoveImageRequest 'image { image: "Bad//Ref::x" }' $INV 'Bad//Ref::x'
call $I ImageFsInfo ImageFsInfoRequest '' 0 ''

# --- malformed bodies: bytes that do not parse (a field of wire type 7), a message cut short, a frame
# shorter than its declared length -----------------------------------------------------------------------
printf '\377\377\377\377\377\377\377\377\377\177\007' >"$work/junk"
printf '%s\n' "config { $POD_CFG }" | protoc -I"$PROTO" --encode=runtime.v1.RunPodSandboxRequest \
    runtime/v1/api.proto | head -c 20 >"$work/cut"
for m in Version Status RunPodSandbox StopPodSandbox RemovePodSandbox PodSandboxStatus ListPodSandbox \
    CreateContainer StartContainer StopContainer RemoveContainer ListContainers ContainerStatus \
    UpdateContainerResources ReopenContainerLog ExecSync Exec Attach PortForward ContainerStats \
    ListContainerStats PodSandboxStats ListPodSandboxStats UpdateRuntimeConfig RuntimeConfig \
    GetContainerEvents; do
    n_cases=$((n_cases + 1))
    raw $R "$m" "$work/junk" $INV '' "junk bytes"
done
for m in ListMetricDescriptors ListPodSandboxMetrics UpdatePodSandboxResources; do # not implemented yet
    n_cases=$((n_cases + 1))
    raw $R "$m" "$work/junk" 12 "$m" "junk bytes"
done
for m in ListImages ImageStatus PullImage RemoveImage ImageFsInfo; do
    n_cases=$((n_cases + 1))
    raw $I "$m" "$work/junk" $INV '' "junk bytes"
done
n_cases=$((n_cases + 3))
raw $R RunPodSandbox "$work/cut" $INV 'RunPodSandbox' "a message cut short"
raw $R CreateContainer "$work/cut" $INV 'CreateContainer' "a message cut short"
raw $R RunPodSandbox "$work/cut" 13 '' "a frame declaring 200 bytes, 20 sent" --declared-len 200
kill -0 "$PID" || fail "berthd died"
[ "$n_wrong" -eq 0 ] || fail "$n_wrong of $n_cases bad requests answered wrongly"

# --- what was stored is intact, and nothing a refused request began is left --------------------------------
$CRICTL inspectp "$POD" | grep -q '"state": "SANDBOX_READY"' || fail "the pod: $($CRICTL inspectp "$POD")"
$CRICTL inspect "$CID" | grep -q '"state": "CONTAINER_RUNNING"' || fail "the container: $($CRICTL inspect "$CID")"
kill -0 "$SPID" || fail "the container's process is gone"
[ "$($CRICTL pods -q | sort | tr '\n' ' ')" = "$(printf '%s\n%s\n' "$POD" "$STOPPED" | sort | tr '\n' ' ')" ] ||
    fail "pods: $($CRICTL pods)"
[ "$($CRICTL ps -aq)" = "$CID" ] || fail "containers: $($CRICTL ps -a)"
records=$($CTR containers ls -q | grep -v "^$STOPPED\$" | sort | tr '\n' ' ')
[ "$records" = "$records0" ] || fail "records before: $records0, after: $records"
[ "$(snapshot_count)" = "$snaps0" ] || fail "snapshots: $snaps0 before, $($CTR snapshots --snapshotter overlayfs ls)"
[ "$(mount_count)" = "$mounts0" ] || fail "mounts: $mounts0 before, now: $(awk -v w="$work/" 'index($2, w) == 1' /proc/mounts)"
ls "$work/logs" | grep -q escape && fail "a log outside the pod's log directory was made"
[ -e "$work/escape.log" ] && fail "a log outside the pod's log directory was made"
$CRICTL exec --sync "$CID" true >/dev/null || fail "exec in the kept container"
echo "PASS cri_bad_input: $n_cases bad requests"
