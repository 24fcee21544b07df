#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# CRI stats against a real berthd with crictl (v1.37.0), real runc and real CNI plugins on the test's OWN
# bridge (bq<pid>) and subnet (10.233.<x>.0/24): a pod (its cgroup_parent of its own) with a busy container
# that wrote a file; `crictl stats` shows its CPU (cumulative and rate), memory and writable layer, the
# list's filters (id, pod, label) select it or not; `crictl statsp` shows the pod's CPU, memory, process
# count, its container and its eth0 traffic (after a ping); a host-network pod without a cgroup parent sums
# pause's and its container's cgroups and shows no network; a stopped container leaves the list.
# usage: cri_stats.sh BERTHD MODULE_DIR SOURCE_DIR CRICTL
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
work=$(mktemp -d /tmp/berth-cri-stats-XXXXXX)
BR=bq$$
X=$(($$ % 200 + 20))
NET=10.233.$X
CG=/berth-cri-stats-$$

cleanup() {
    status=$?
    cri_teardown
    drop_rules "$NET."
    umount_under "$work"
    ip link del "$BR" 2>/dev/null || true
    # the pod's cgroups (cgroupfs driver), children first
    for d in $(find /sys/fs/cgroup/*"$CG" /sys/fs/cgroup"$CG" -depth -type d 2>/dev/null); do
        rmdir "$d" 2>/dev/null || true
    done
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
runtime-endpoint: unix://$work/state/berthd.sock
image-endpoint: unix://$work/state/berthd.sock
timeout: 20
pull-image-on-create: false
YAML
CRICTL="$CRICTL_BIN --config $work/crictl.yaml"
cri_start

sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$work/fx" >/dev/null
ctr --address "$work/state/berthd.sock" -n k8s.io images import "$work/fx/busybox-oci.tar" >/dev/null ||
    fail "import of busybox into k8s.io"
IMG=docker.io/library/berth-busybox:latest

cat >"$work/pod.json" <<JSON
{"metadata": {"name": "statspod", "namespace": "cri-stats", "uid": "uid-stats-1", "attempt": 1},
 "hostname": "statspod", "log_directory": "$work/logs",
 "labels": {"app": "stats"}, "linux": {"cgroup_parent": "$CG"}}
JSON
# busy: a file in the writable layer, then a loop that keeps one cpu busy
cat >"$work/busy.json" <<JSON
{"metadata": {"name": "busy"}, "image": {"image": "$IMG"},
 "command": ["/bin/sh", "-c", "head -c 1048576 /dev/zero > /tmp/written; while :; do :; done"],
 "labels": {"role": "busy"}, "log_path": "busy.log", "linux": {}}
JSON
cat >"$work/idle.json" <<JSON
{"metadata": {"name": "idle"}, "image": {"image": "$IMG"}, "command": ["/bin/sleep", "3600"],
 "labels": {"role": "idle"}, "log_path": "idle.log", "linux": {}}
JSON
P=$($CRICTL runp "$work/pod.json") || fail "runp"
B=$($CRICTL create "$P" "$work/busy.json" "$work/pod.json") || fail "create busy"
I=$($CRICTL create "$P" "$work/idle.json" "$work/pod.json") || fail "create idle"
$CRICTL start "$B" >/dev/null || fail "start busy"
$CRICTL start "$I" >/dev/null || fail "start idle"
sleep 2

# flat JSON, then the value of "KEY":{"value":"N"} (the first one after an optional anchor)
flat() { tr -d ' \n'; }
val() { # KEY [ANCHOR] <flat json
    if [ $# -gt 1 ]; then sed "s/.*\"$2\"//"; else cat; fi |
        grep -o "\"$1\":{\"value\":\"[0-9]*\"}" | head -1 | grep -o '[0-9][0-9]*' || echo 0
}
# a pod's own figures: what comes before its containers' list
own() { sed 's/"containers":.*//'; }
positive() { [ "${2:-0}" -gt 0 ] 2>/dev/null || fail "$1 is not > 0 (${2:-none}): $3"; }

# --- one container -------------------------------------------------------------------------------------
s=$($CRICTL stats -o json --id "$B" | flat) || fail "crictl stats --id"
echo "$s" | grep -q "\"id\":\"$B\"" || fail "stats --id $B: $s"
positive "busy: usageCoreNanoSeconds" "$(echo "$s" | val usageCoreNanoSeconds)" "$s"
positive "busy: usageNanoCores" "$(echo "$s" | val usageNanoCores)" "$s"
positive "busy: workingSetBytes" "$(echo "$s" | val workingSetBytes)" "$s"
positive "busy: usageBytes" "$(echo "$s" | val usageBytes)" "$s"
positive "busy: pageFaults" "$(echo "$s" | val pageFaults)" "$s"
used=$(echo "$s" | val usedBytes writableLayer)
[ "$used" -ge 1048576 ] || fail "busy: writable layer usedBytes $used < the 1 MiB written: $s"
positive "busy: inodesUsed" "$(echo "$s" | val inodesUsed writableLayer)" "$s"
echo "$s" | grep -q '"name":"busy"' || fail "busy: no metadata in the attributes: $s"
echo "$s" | grep -q '"role":"busy"' || fail "busy: no labels in the attributes: $s"
# a busy loop is near one core: more than a tenth of it, the idle one far less
nc=$(echo "$s" | val usageNanoCores)
[ "$nc" -gt 100000000 ] || fail "busy: usageNanoCores $nc is not the loop's core"
s2=$($CRICTL stats -o json --id "$I" | flat) || fail "crictl stats --id idle"
nci=$(echo "$s2" | val usageNanoCores)
[ "$nci" -lt "$nc" ] || fail "idle: usageNanoCores $nci not below busy's $nc"
positive "idle: workingSetBytes" "$(echo "$s2" | val workingSetBytes)" "$s2"

# --- the list and its filters ----------------------------------------------------------------------------
l=$($CRICTL stats -o json | flat) || fail "crictl stats"
echo "$l" | grep -q "\"id\":\"$B\"" && echo "$l" | grep -q "\"id\":\"$I\"" || fail "stats list: $l"
l=$($CRICTL stats -o json --pod "$P" | flat) || fail "crictl stats --pod"
echo "$l" | grep -q "\"id\":\"$B\"" || fail "stats --pod: $l"
l=$($CRICTL stats -o json --pod "$(echo "$P" | cut -c1-12)" | flat) || fail "crictl stats --pod prefix"
echo "$l" | grep -q "\"id\":\"$B\"" || fail "stats --pod prefix: $l"
l=$($CRICTL stats -o json --label role=idle | flat) || fail "crictl stats --label"
echo "$l" | grep -q "\"id\":\"$I\"" && ! echo "$l" | grep -q "\"id\":\"$B\"" || fail "stats --label: $l"
l=$($CRICTL stats -o json --label role=none | flat) || fail "crictl stats --label none"
echo "$l" | grep -q '"id"' && fail "stats --label role=none listed: $l"

# --- the pod ----------------------------------------------------------------------------------------------
IP=$($CRICTL inspectp "$P" | grep -A2 '"network"' | grep -o '"ip": *"[^"]*"' | head -1 | cut -d'"' -f4)
case $IP in "$NET".*) busybox ping -c3 -W3 "$IP" >/dev/null || fail "no ping reply from the pod at $IP" ;;
*) fail "pod IP $IP" ;; esac
p=$($CRICTL statsp -o json --id "$P" | flat) || fail "crictl statsp --id"
echo "$p" | grep -q "\"id\":\"$P\"" || fail "statsp: $p"
positive "pod: usageCoreNanoSeconds" "$(echo "$p" | own | val usageCoreNanoSeconds)" "$p"
positive "pod: workingSetBytes" "$(echo "$p" | own | val workingSetBytes)" "$p"
# pause, the loop's sh and sleep: 3 processes in the pod's cgroup
pc=$(echo "$p" | own | val processCount)
[ "$pc" -ge 3 ] || fail "pod: processCount $pc < 3: $p"
echo "$p" | grep -q '"defaultInterface":{"name":"eth0"' || fail "pod: no eth0: $p"
positive "pod: eth0 rxBytes" "$(echo "$p" | val rxBytes defaultInterface)" "$p"
positive "pod: eth0 txBytes" "$(echo "$p" | val txBytes defaultInterface)" "$p"
echo "$p" | grep -q '"name":"statspod"' || fail "pod: no metadata: $p"
# the pod's usage covers its busy container's
pod_cpu=$(echo "$p" | own | val usageCoreNanoSeconds)
busy_cpu=$(echo "$s" | val usageCoreNanoSeconds)
[ "$pod_cpu" -ge "$busy_cpu" ] || fail "pod cpu $pod_cpu < its container's earlier $busy_cpu"
l=$($CRICTL statsp -o json | flat) || fail "crictl statsp"
echo "$l" | grep -q "\"id\":\"$P\"" || fail "statsp list: $l"
l=$($CRICTL statsp -o json --label app=none | flat) || fail "crictl statsp --label none"
echo "$l" | grep -q '"id"' && fail "statsp --label app=none listed: $l"

# --- a host-network pod without a cgroup parent: pause's and its container's cgroups summed, no network ----
cat >"$work/hpod.json" <<JSON
{"metadata": {"name": "hostpod", "namespace": "cri-stats", "uid": "uid-stats-2", "attempt": 1},
 "log_directory": "$work/logs", "linux": {"security_context": {"namespace_options": {"network": 2}}}}
JSON
H=$($CRICTL runp "$work/hpod.json") || fail "runp host pod"
HB=$($CRICTL create "$H" "$work/busy.json" "$work/hpod.json") || fail "create in the host pod"
$CRICTL start "$HB" >/dev/null || fail "start in the host pod"
sleep 1
h=$($CRICTL statsp -o json --id "$H" | flat) || fail "crictl statsp host pod"
positive "host pod: usageCoreNanoSeconds" "$(echo "$h" | own | val usageCoreNanoSeconds)" "$h"
positive "host pod: workingSetBytes" "$(echo "$h" | own | val workingSetBytes)" "$h"
hc=$(echo "$h" | own | val processCount)
[ "$hc" -ge 2 ] || fail "host pod: processCount $hc < 2 (pause and the loop): $h"
echo "$h" | grep -q '"defaultInterface"' && fail "host pod: the host's network shown as the pod's: $h"
echo "$h" | grep -q "\"id\":\"$HB\"" || fail "host pod: its container is not listed: $h"
$CRICTL stopp "$H" >/dev/null || fail "stopp host pod"
$CRICTL rmp "$H" >/dev/null || fail "rmp host pod"

# --- a stopped container leaves the list ----------------------------------------------------------------
$CRICTL stop "$B" >/dev/null || fail "stop busy"
l=$($CRICTL stats -o json | flat) || fail "crictl stats after stop"
echo "$l" | grep -q "\"id\":\"$B\"" && fail "a stopped container is listed: $l"
$CRICTL stopp "$P" >/dev/null || fail "stopp"
$CRICTL rmp "$P" >/dev/null || fail "rmp"
echo "PASS cri_stats"
