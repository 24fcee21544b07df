#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The CRI core against a real berthd with crictl (v1.37.0), real runc, real CNI plugins on the test's OWN
# bridge (bc<pid>) and subnet (10.233.<x>.0/24), and a local plain-HTTP registry on 127.0.0.1: version and
# info (on berthd's socket and on an extra_addresses socket), pull / images / inspecti / rmi, a host-network
# pod and a pod on the test's network (its IP in the pod status, pinged from the host), pods with filters,
# a pod whose pause dies reads NOTREADY (the exit events), a berthd restart keeps a ready pod ready (and its
# pause and IP), stopp and rmp twice each, and `ctr -n k8s.io containers ls` follows it all.
# usage: cri_core.sh BERTHD MODULE_DIR SOURCE_DIR CRICTL
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
SRC=$3
CRICTL_BIN=$4
[ -x "$CRICTL_BIN" ] || { echo "FAIL no crictl at $CRICTL_BIN (tests/scripts/gotools.sh)"; exit 1; }
for need in /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/portmap; do
    [ -x "$need" ] || { echo "FAIL $need is missing: apt-get install containernetworking-plugins"; exit 1; }
done
work=$(mktemp -d /tmp/berth-cri-core-XXXXXX)
BR=bc$$
X=$(($$ % 200 + 20))
NET=10.233.$X
CTR="ctr --address $work/state/berthd.sock -n k8s.io"

# keep_log: on failure, berthd's whole log outlives $work (a crash's sanitizer report is longer than the
# tail fail() shows) and its sanitizer reports are printed
keep_log() {
    [ "$status" -ne 0 ] && [ -s "$work/log" ] || return 0
    keep=${TMPDIR:-/tmp}/berth-cri-core-$$.log
    cp "$work/log" "$keep" && echo "berthd's log: $keep"
    grep -A40 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$work/log" | head -120 || true
}
cleanup() {
    status=$?
    cri_teardown
    drop_rules "$NET."
    umount_under "$work"
    ip link del "$BR" 2>/dev/null || true
    keep_log
    rm -rf "$work"
    exit $status
}
PID=""
trap cleanup EXIT

mkdir -p "$work/net.d"
cat >"$work/berthd.yaml" <<YAML
version: 1
plugins:
  io.berth.transport.v1.grpc:
    extra_addresses: [$work/cri.sock]
  io.berth.network.v1.cni:
    conf_dir: $work/net.d
    default_network: {name: berth, bridge: $BR, subnet: $NET.0/24, firewall: false}
YAML
crictl_config
start() { cri_start; }
restart() { cri_restart; }
# pod NAME UID HOSTNET(true|false) FILE: a PodSandboxConfig for crictl runp
pod() {
    # kubelet's defaults: a PID namespace per container (1: CONTAINER), so killing pause kills no container
    if [ "$3" = true ]; then ns='"security_context": {"namespace_options": {"network": 2, "pid": 1}},'
    else ns='"security_context": {"namespace_options": {"pid": 1}},'; fi
    cat >"$4" <<JSON
{"metadata": {"name": "$1", "namespace": "cri-core", "uid": "$2", "attempt": 1},
 "hostname": "$1", "log_directory": "$work/logs/$1",
 "labels": {"app": "$1", "tier": "test"}, "annotations": {"berth.test/pod": "$1"},
 "dns_config": {"servers": ["127.0.0.53"], "searches": ["cri.test"], "options": ["ndots:2"]},
 "linux": {$ns "cgroup_parent": "/berth-cri-core-$$"}}
JSON
}
field() { # JSON-ish output, key: the first "key": "value" string
    grep -o "\"$1\": *\"[^\"]*\"" | head -1 | sed 's/.*: *"\(.*\)"/\1/'
}

start
# --- Version and Status, on berthd's socket and on the extra one --------------------------------------
v=$($CRICTL version) || fail "crictl version"
echo "$v" | grep -q "RuntimeName: *berth" || fail "version: $v"
echo "$v" | grep -q "RuntimeApiVersion: *v1" || fail "version: $v"
$CRICTL_BIN --runtime-endpoint "unix://$work/cri.sock" --timeout 10s version | grep -q "RuntimeName: *berth" ||
    fail "the extra_addresses socket does not serve the CRI"
info=$($CRICTL info) || fail "crictl info"
echo "$info" | tr -d ' \n' | grep -q '"status":true,"type":"RuntimeReady"' || fail "RuntimeReady: $info"
echo "$info" | tr -d ' \n' | grep -q '"status":true,"type":"NetworkReady"' || fail "NetworkReady: $info"
echo "$info" | grep -q '"cgroupDriver"' || fail "no verbose config in info: $info"

# --- images through a local registry ------------------------------------------------------------------
sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$work/fx" >/dev/null
BB=$work/fx/busybox-oci/blobs/sha256
port=$((20000 + $$ % 20000))
for _ in 1 2 3 4 5 6 7 8; do
    port=$((port + 1))
    if sh "$SRC/tests/fixtures/images/registry.sh" start "$work/reg" "$port" >"$work/reg.start" 2>&1; then
        REGISTRY_DIRS="$work/reg"
        break
    fi
    rm -rf "$work/reg"
done
[ -n "$REGISTRY_DIRS" ] || fail "registry: $(cat "$work/reg.start")"
R=127.0.0.1:$port
sha() { sha256sum "$1" | cut -d' ' -f1; }
upload() { # REPO FILE
    loc=$(curl -fsS -D - -o /dev/null -X POST "http://$R/v2/$1/blobs/uploads/" | tr -d '\r' |
        sed -n 's/^[Ll]ocation: //p')
    case $loc in http*) ;; *) loc=http://$R$loc ;; esac
    case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
    curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$2" \
        "$loc${sep}digest=sha256:$(sha "$2")" || fail "upload of $2"
}
mf=$(grep -o 'sha256:[0-9a-f]*' "$work/fx/busybox-oci/index.json" | head -1 | cut -d: -f2)
cfg=$(grep -o '"config":{[^}]*}' "$BB/$mf" | grep -o 'sha256:[0-9a-f]*' | cut -d: -f2)
for b in $cfg $(grep -o '"layers":\[.*' "$BB/$mf" | grep -o 'sha256:[0-9a-f]*' | cut -d: -f2); do
    upload cri/busybox "$BB/$b"
done
curl -fsS -o /dev/null -X PUT -H "Content-Type: application/vnd.oci.image.manifest.v1+json" \
    --data-binary @"$BB/$mf" "http://$R/v2/cri/busybox/manifests/1.0" || fail "manifest"
IMG=$R/cri/busybox:1.0
out=$($CRICTL pull "$IMG" 2>&1) || fail "pull: $out"
echo "$out" | grep -q "sha256:$cfg" || fail "pull did not answer the config digest: $out"
$CRICTL images | grep -q "$R/cri/busybox *1.0 *${cfg%"${cfg#????????????}"}" ||
    fail "images: $($CRICTL images)"
st=$($CRICTL inspecti "$IMG") || fail "inspecti"
echo "$st" | grep -q "\"id\": \"sha256:$cfg\"" || fail "inspecti id: $st"
echo "$st" | grep -q "$R/cri/busybox@sha256:$mf" || fail "inspecti repo digest: $st"
echo "$st" | grep -q '"size": "[1-9]' || fail "inspecti size: $st"
$CRICTL inspecti "sha256:$cfg" | grep -q "$R/cri/busybox:1.0" || fail "inspecti by id"
$CTR images ls -q | grep -qx "sha256:$cfg" || fail "no id record: $($CTR images ls -q)"
$CRICTL rmi "$IMG" >/dev/null || fail "rmi"
[ -z "$($CRICTL images -q)" ] || fail "rmi left: $($CRICTL images)"
[ -z "$($CTR images ls -q)" ] || fail "rmi left records: $($CTR images ls -q)"
$CRICTL rmi "$IMG" >/dev/null 2>&1 && fail "rmi of a missing image should say so (crictl checks first)"
$CRICTL pull "$IMG" >/dev/null || fail "pull again"
fs=$($CRICTL imagefsinfo) || fail "imagefsinfo"
echo "$fs" | grep -q '"usedBytes"' || fail "imagefsinfo: $fs"

# --- pods ---------------------------------------------------------------------------------------------
mkdir -p "$work/logs"
# GetContainerEvents: a stream open across what follows (until the restart ends it)
$CRICTL events >"$work/events.json" 2>"$work/events.err" &
HELPER_PIDS="$HELPER_PIDS $!"
sleep 0.3
pod hostpod uid-host-1 true "$work/hostpod.json"
pod netpod uid-net-1 false "$work/netpod.json"
H=$($CRICTL runp "$work/hostpod.json") || fail "runp (host network)"
N=$($CRICTL runp "$work/netpod.json") || fail "runp (pod network)"
[ ${#H} -eq 64 ] && [ ${#N} -eq 64 ] || fail "pod ids: $H $N"
out=$($CRICTL runp "$work/netpod.json" 2>&1) && fail "a second pod of the same name ran"
echo "$out" | grep -q "$N" || fail "the duplicate's error does not name the holder: $out"
$CTR containers ls | grep -q "^$H" || fail "ctr -n k8s.io containers ls: $($CTR containers ls)"
$CTR containers info "$N" | grep -q '"io.cri-containerd.kind": "sandbox"' || fail "no kind label"
sn=$($CRICTL inspectp "$N") || fail "inspectp"
echo "$sn" | grep -q '"state": "SANDBOX_READY"' || fail "not ready: $sn"
IP=$(echo "$sn" | grep -A2 '"network"' | field ip)
case $IP in "$NET".*) ;; *) fail "pod IP $IP not in $NET.0/24: $sn" ;; esac
busybox ping -c1 -W3 "$IP" >/dev/null || fail "no ping reply from the pod at $IP"
netns=$(echo "$sn" | field netNamespacePath)
[ -e "$netns" ] || fail "netns $netns: $sn"
nsenter --net="$netns" cat /proc/net/dev | grep -q eth0 || fail "no eth0 in the pod's netns"
hs=$($CRICTL inspectp "$H")
echo "$hs" | grep -q '"network": "NODE"' || fail "host pod namespaces: $hs"
grep -q "nameserver 127.0.0.53" "$(echo "$hs" | field resolvPath)" || fail "host pod resolv.conf"
pausepid=$(echo "$sn" | grep -o '"pid": [0-9]*' | head -1 | grep -o '[0-9]*$')
[ -n "$pausepid" ] && [ "$(cat /proc/"$pausepid"/comm)" = pause ] || fail "pause pid $pausepid"

# events: created and started for the pod, with its status (kubelet's evented PLEG reads it)
wait_event() { # FILE ID TYPE
    i=0
    until tr -d ' \n' <"$1" | grep -q "\"containerId\":\"$2\",\"containerEventType\":\"$3\""; do
        i=$((i + 1)); [ $i -lt 100 ] || fail "no $3 event for $2: $(cat "$1" "$1.err" 2>/dev/null)"; sleep 0.05
    done
}
wait_event "$work/events.json" "$N" CONTAINER_CREATED_EVENT
wait_event "$work/events.json" "$N" CONTAINER_STARTED_EVENT
grep -q '"podSandboxStatus"' "$work/events.json" || fail "events without the pod status"

# a container in the pod (the containers part): StopPodSandbox kills it, RemovePodSandbox removes it
cat >"$work/sleeper.json" <<JSON
{"metadata": {"name": "sleeper"}, "image": {"image": "$IMG"}, "command": ["/bin/sleep", "3600"],
 "log_path": "sleeper.log", "linux": {"security_context": {"namespace_options": {"pid": 1}}}}
JSON
K=$($CRICTL create "$N" "$work/sleeper.json" "$work/netpod.json") || fail "create a container in the pod"
$CRICTL start "$K" >/dev/null || fail "start the container"
sed 's/"sleeper"/"victim"/; s/sleeper.log/victim.log/' "$work/sleeper.json" >"$work/victim.json"
V=$($CRICTL create "$N" "$work/victim.json" "$work/netpod.json") || fail "create the victim"
$CRICTL start "$V" >/dev/null || fail "start the victim"

# a container killed by the OOM killer: exited, reason OOMKilled (the /tasks/oom event came first)
cat >"$work/hog.json" <<JSON
{"metadata": {"name": "hog"}, "image": {"image": "$IMG"},
 "command": ["/bin/sh", "-c", "a=\$(head -c 200000000 /dev/zero | tr '\\\\0' x); sleep 1"],
 "log_path": "hog.log", "linux": {"resources": {"memory_limit_in_bytes": 20971520},
 "security_context": {"namespace_options": {"pid": 1}}}}
JSON
O=$($CRICTL create "$N" "$work/hog.json" "$work/netpod.json") || fail "create the hog"
$CRICTL start "$O" >/dev/null || fail "start the hog"
i=0
until $CRICTL inspect "$O" | grep -q '"state": "CONTAINER_EXITED"'; do
    i=$((i + 1)); [ $i -lt 200 ] || fail "the hog did not end: $($CRICTL inspect "$O")"; sleep 0.05
done
$CRICTL inspect "$O" | grep -q '"reason": "OOMKilled"' || fail "the hog's reason: $($CRICTL inspect "$O")"
$CRICTL rm "$O" >/dev/null || fail "rm the hog"

# filters
[ "$($CRICTL pods -q | wc -l)" -eq 2 ] || fail "pods: $($CRICTL pods)"
[ "$($CRICTL pods -q --label app=netpod)" = "$N" ] || fail "label filter: $($CRICTL pods --label app=netpod)"
[ "$($CRICTL pods -q --label tier=test | wc -l)" -eq 2 ] || fail "label filter tier"
[ -z "$($CRICTL pods -q --label app=none)" ] || fail "label filter none"
[ "$($CRICTL pods -q --id "$(echo "$H" | cut -c1-12)")" = "$H" ] || fail "id prefix filter"
[ "$($CRICTL pods -q --name hostpod)" = "$H" ] || fail "name filter"

# --- restart: the ready pod stays ready, its pause and address too; a container that died meanwhile
# reads exited with the status its shim saw ----------------------------------------------------------------
vpid=$($CTR tasks ls | awk -v v="$V" '$1 == v { print $2 }')
[ -n "$vpid" ] || fail "no task of the victim: $($CTR tasks ls)"
kill "$PID"
wait "$PID" || fail "berthd exited with $? on SIGTERM"
PID=""
kill -9 "$vpid"
start
vs=$($CRICTL inspect "$V")
echo "$vs" | grep -q '"state": "CONTAINER_EXITED"' || fail "a container dead while berthd was down: $vs"
echo "$vs" | grep -q '"exitCode": 137' || fail "the victim's exit status: $vs"
$CRICTL inspect "$K" | grep -q '"state": "CONTAINER_RUNNING"' || fail "the sleeper did not survive the restart"
sn=$($CRICTL inspectp "$N") || fail "inspectp after restart"
echo "$sn" | grep -q '"state": "SANDBOX_READY"' || fail "not ready after restart: $sn"
[ "$(echo "$sn" | grep -A2 '"network"' | field ip)" = "$IP" ] || fail "IP changed: $sn"
kill -0 "$pausepid" || fail "pause died with the restart"
busybox ping -c1 -W3 "$IP" >/dev/null || fail "no ping reply after the restart"

# --- exits: the pause of the host pod dies, the pod reads NOTREADY --------------------------------------
hp=$($CRICTL inspectp "$H" | grep -o '"pid": [0-9]*' | head -1 | grep -o '[0-9]*$')
kill -9 "$hp"
i=0
until $CRICTL inspectp "$H" | grep -q '"state": "SANDBOX_NOTREADY"'; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "a dead pause left the pod ready"; sleep 0.05
done
[ "$($CRICTL pods -q --state notready)" = "$H" ] || fail "state filter: $($CRICTL pods)"
[ "$($CRICTL pods -q --state ready)" = "$N" ] || fail "state filter ready"

# --- stop and remove, twice each ------------------------------------------------------------------------
$CRICTL events >"$work/events2.json" 2>"$work/events2.json.err" &
HELPER_PIDS="$HELPER_PIDS $!"
sleep 0.3
$CRICTL inspect "$K" | grep -q '"state": "CONTAINER_RUNNING"' || fail "the container is not running"
$CRICTL stopp "$N" >/dev/null || fail "stopp"
ks=$($CRICTL inspect "$K")
echo "$ks" | grep -q '"state": "CONTAINER_EXITED"' || fail "stopp left the container: $ks"
echo "$ks" | grep -q '"exitCode": 137' || fail "the container did not die of SIGKILL: $ks"
wait_event "$work/events2.json" "$K" CONTAINER_STOPPED_EVENT
$CRICTL stopp "$N" >/dev/null || fail "stopp twice"
$CRICTL inspectp "$N" | grep -q '"state": "SANDBOX_NOTREADY"' || fail "stopped pod not NOTREADY"
kill -0 "$pausepid" 2>/dev/null && fail "pause still runs after stopp"
[ -e "$netns" ] && fail "the netns is still there after stopp"
busybox ping -c1 -W1 "$IP" >/dev/null 2>&1 && fail "the pod still answers after stopp"
for p in "$N" "$H"; do
    $CRICTL rmp "$p" >/dev/null || fail "rmp $p"
    $CRICTL rmp "$p" >/dev/null 2>&1 || true # crictl resolves the id first: the RPC is checked below
done
[ -z "$($CRICTL pods -q)" ] || fail "pods left: $($CRICTL pods)"
# StopPodSandbox of a pod that is gone succeeds (crictl rmp asks the status first: critest checks Remove)
$CRICTL stopp "$N" >/dev/null || fail "stopp of a removed pod is not idempotent"
[ -z "$($CRICTL ps -aq)" ] || fail "rmp left containers: $($CRICTL ps -a)"
wait_event "$work/events2.json" "$N" CONTAINER_DELETED_EVENT
[ -z "$($CTR containers ls -q)" ] || fail "records left: $($CTR containers ls)"
[ -z "$(ls "$work/state/io.berth.cri.v1.cri/sandboxes" 2>/dev/null)" ] || fail "sandbox files left"
# Stop and Remove of one pod at once (kubelet does that): both succeed, nothing is left
P=$($CRICTL runp "$work/netpod.json") || fail "runp for the race"
$CRICTL stopp "$P" >"$work/race1" 2>&1 &
r1=$!
$CRICTL rmp -f "$P" >"$work/race2" 2>&1 || fail "rmp during stopp: $(cat "$work/race2")"
wait $r1 || grep -q "not found" "$work/race1" || fail "stopp during rmp: $(cat "$work/race1")"
[ -z "$($CRICTL pods -q)" ] || fail "the race left a pod: $($CRICTL pods)"
# what a crash while a pod was made leaves: its files and shm mount, removed at start
G=$work/state/io.berth.cri.v1.cri/sandboxes/$(printf '%064d' 7)
mkdir -p "$G/shm" && mount -t tmpfs shm "$G/shm" && : >"$G/hosts"
restart
[ -z "$($CRICTL pods -q)" ] || fail "pods came back after a restart: $($CRICTL pods)"
[ -e "$G" ] && fail "a crashed pod's files are still there"
grep -q " $G/shm " /proc/mounts && fail "a crashed pod's shm is still mounted"

# --- sandbox_image: a pause image (the built pause, Entrypoint /pause) pulled for the first pod -----------
mkdir -p "$work/pimg"
cp "$BERTH_MODULE_DIR/../../../libexec/berth/pause" "$work/pimg/pause"
tar --sort=name --owner=0 --group=0 --mtime=@0 -C "$work/pimg" -cf "$work/player.tar" pause
ld=$(sha "$work/player.tar")
printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/pause"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$ld" >"$work/pconfig.json"
pc=$(sha "$work/pconfig.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$pc" "$(stat -c %s "$work/pconfig.json")" "$ld" "$(stat -c %s "$work/player.tar")" >"$work/pmanifest.json"
upload cri/pause "$work/player.tar"
upload cri/pause "$work/pconfig.json"
curl -fsS -o /dev/null -X PUT -H "Content-Type: application/vnd.oci.image.manifest.v1+json" \
    --data-binary @"$work/pmanifest.json" "http://$R/v2/cri/pause/manifests/3.9" || fail "pause manifest"
cat >>"$work/berthd.yaml" <<YAML
  io.berth.cri.v1.cri:
    sandbox_image: $R/cri/pause:3.9
YAML
restart
S=$($CRICTL runp "$work/netpod.json") || fail "runp with sandbox_image"
$CRICTL images | grep -q "$R/cri/pause *3.9" || fail "sandbox_image not pulled: $($CRICTL images)"
$CTR containers info "$S" | grep -q "\"Image\": \"$R/cri/pause:3.9\"" || fail "the record does not name the image"
$CTR containers info "$S" | grep -q "\"SnapshotKey\": \"$S\"" || fail "no snapshot key: $($CTR containers info "$S")"
sp=$($CRICTL inspectp "$S" | grep -o '"pid": [0-9]*' | head -1 | grep -o '[0-9]*$')
[ "$(cat /proc/"$sp"/comm)" = pause ] || fail "sandbox_image's pause is not running"
$CTR snapshots ls | grep -q "^$S" || fail "no snapshot of the sandbox: $($CTR snapshots ls)"
# the lease that held the snapshot until the record did is gone (the record holds it now)
$CTR leases ls | grep -q "cri-sandbox-" && fail "the sandbox's lease outlived its start: $($CTR leases ls)"
$CRICTL stopp "$S" >/dev/null && $CRICTL rmp "$S" >/dev/null || fail "stopp/rmp with sandbox_image"
$CTR snapshots ls | grep -q "^$S" && fail "the sandbox's snapshot outlived it"
# a streaming address nothing can bind: the CRI says why and stays off; berthd serves the rest and stops cleanly
kill "$PID"
wait "$PID" || fail "berthd exited with $? on SIGTERM"
PID=""
cat >>"$work/berthd.yaml" <<YAML
    stream_address: 192.0.2.1
YAML
"$BERTHD" --config "$work/berthd.yaml" --root "$work/root" --state "$work/state" 2>>"$work/badlog" &
PID=$!
i=0
until $CTR version >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 200 ] || fail "berthd did not start with a bad stream_address"; sleep 0.05; done
# the CRI waits for its first use (BERTH_PLUGIN_ON_DEMAND): its init, and the error, come with the first call
! $CRICTL version >/dev/null 2>&1 || fail "the CRI answered without its streaming server"
grep -q "streaming server on 192.0.2.1:0: address not available" "$work/badlog" || fail "no clear error for the stream address: $(cat "$work/badlog")"
kill "$PID"
wait "$PID" || fail "berthd exited with $? on SIGTERM after a failed CRI init"
PID=""
echo "PASS cri_core"
