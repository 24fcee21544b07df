#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# UpdateRuntimeConfig's pod CIDR into the network, as containerd's conf_template: berthd (real runc, real
# CNI plugins) whose cri `network` is made from a template (containerd's own, with its range idioms) on the
# test's OWN bridge (bp<pid>); before the CIDR no pod of that network runs; the RPC (grpcc) makes the
# network, a pod gets an address in the CIDR; the same CIDR again changes nothing; a berthd restart keeps
# the network; another CIDR while a pod uses it leaves it as it is; once the pod is gone it is replaced.
# usage: cri_podcidr.sh BERTHD MODULE_DIR CRICTL GRPCC CRI_PROTO_DIR
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
CRICTL_BIN=$3
GRPCC=$4
PROTO=$5
[ -x "$CRICTL_BIN" ] || { echo "FAIL no crictl at $CRICTL_BIN (tests/scripts/gotools.sh)"; exit 1; }
for need in /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/portmap; do
    [ -x "$need" ] || { echo "FAIL $need is missing: apt-get install containernetworking-plugins"; exit 1; }
done
work=$(mktemp -d /tmp/berth-cri-cidr-XXXXXX)
BR=bp$$
BR0=bq$$
X=$(($$ % 60 + 120)) # 120..179; NET2 180..239
NET=10.233.$X
NET2=10.233.$((X + 60))

cleanup() {
    status=$?
    cri_teardown
    drop_rules "$NET." "$NET2."
    umount_under "$work"
    ip link del "$BR" 2>/dev/null || true
    ip link del "$BR0" 2>/dev/null || true
    [ -n "${KEEP_LOG:-}" ] && cp "$work/log" "$KEEP_LOG" 2>/dev/null; rm -rf "$work"
    exit $status
}
PID=""
trap cleanup EXIT

mkdir -p "$work/net.d"
# containerd's template (its docs), on our own bridge
cat >"$work/template.json" <<JSON
{
  "name": "ignored",
  "cniVersion": "0.4.0",
  "plugins": [{
    "type": "bridge", "bridge": "$BR", "isGateway": true, "ipMasq": true,
    "ipam": {
      "type": "host-local",
      "ranges": [{{range \$i, \$range := .PodCIDRRanges}}{{if \$i}}, {{end}}[{"subnet": "{{\$range}}"}]{{end}}],
      "routes": [{{range \$i, \$route := .Routes}}{{if \$i}}, {{end}}{"dst": "{{\$route}}"}{{end}}]
    }
  }, {"type": "portmap", "capabilities": {"portMappings": true}}]
}
JSON
cat >"$work/berthd.yaml" <<YAML
version: 1
plugins:
  io.berth.network.v1.cni:
    conf_dir: $work/net.d
    default_network: {name: berth, bridge: $BR0, subnet: 10.233.250.0/24, firewall: false}
  io.berth.cri.v1.cri:
    network: podnet
    conf_template: $work/template.json
YAML
crictl_config
start() { cri_start; }
restart() { cri_restart; }
# cidr CIDR: UpdateRuntimeConfig; prints the call's grpc-status
cidr() {
    printf 'runtime_config { network_config { pod_cidr: "%s" } }\n' "$1" |
        protoc -I"$PROTO" --encode=runtime.v1.UpdateRuntimeConfigRequest runtime/v1/api.proto >"$work/urc.req"
    "$GRPCC" "$work/state/berthd.sock" /runtime.v1.RuntimeService/UpdateRuntimeConfig --in "$work/urc.req" \
        --out "$work/urc.resp" >"$work/urc.report" || true
    sed -n 's/^stream [0-9]* grpc-status \([0-9-]*\) .*/\1/p' "$work/urc.report"
}
# podip NAME: runs a pod (own network) named NAME; prints its id, its IP in $work/NAME.ip
podip() {
    cat >"$work/$1.json" <<JSON
{"metadata": {"name": "$1", "namespace": "cri-cidr", "uid": "uid-$1-$$", "attempt": 0}}
JSON
    id=$($CRICTL runp "$work/$1.json") || return 1
    $CRICTL inspectp "$id" | grep -o '"ip": "[0-9.]*"' | head -1 | sed 's/.*: "//; s/"//' >"$work/$1.ip"
    echo "$id"
}
start

# --- no CIDR yet: the network does not exist, no pod runs on it ---------------------------------------------
out=$(podip early 2>&1) && fail "a pod ran before the network was made: $out"
echo "$out" | grep -q 'podnet' || fail "the early pod's error: $out"

# --- the CIDR makes the network from the template ------------------------------------------------------------
[ "$(cidr "$NET.0/24")" = 0 ] || fail "UpdateRuntimeConfig: $(cat "$work/urc.report")"
$CRICTL info | grep -q "\"podCIDR\": \"$NET.0/24\"" || fail "info lacks the pod CIDR: $($CRICTL info)"
P1=$(podip one) || fail "runp after the pod CIDR"
case $(cat "$work/one.ip") in "$NET".*) ;; *) fail "pod IP $(cat "$work/one.ip") is not in $NET.0/24" ;; esac
ip -4 addr show "$BR" | grep -q "inet $NET.1/24" || fail "the bridge $BR has no gateway: $(ip addr show "$BR" 2>&1)"
busybox ping -c1 -W3 "$(cat "$work/one.ip")" >/dev/null || fail "the pod does not answer on $(cat "$work/one.ip")"
[ "$(cidr "$NET.0/24")" = 0 ] || fail "the same CIDR again: $(cat "$work/urc.report")"
grep -q "replaced" "$work/log" && fail "the same CIDR replaced the network"

# --- a restart keeps the network (the next pod gets the next address) ------------------------------------
restart
P2=$(podip two) || fail "runp after a restart"
case $(cat "$work/two.ip") in "$NET".*) ;; *) fail "after a restart: pod IP $(cat "$work/two.ip")" ;; esac

# --- another CIDR while pods use the network: kept; once they are gone: replaced ---------------------------
[ "$(cidr "$NET2.0/24")" = 0 ] || fail "another CIDR (in use): $(cat "$work/urc.report")"
grep -q "network podnet kept" "$work/log" || fail "no word of the network kept: $(tail -5 "$work/log")"
for p in "$P1" "$P2"; do
    $CRICTL stopp "$p" >/dev/null && $CRICTL rmp "$p" >/dev/null || fail "stopp/rmp $p"
done
[ "$(cidr "$NET2.0/24")" = 0 ] || fail "another CIDR: $(cat "$work/urc.report")"
grep -q "network podnet: replaced" "$work/log" || fail "the network was not replaced: $(tail -5 "$work/log")"
f=$(find "$work/root" -name podnet.json | head -1)
grep -q "$NET2.0/24" "$f" || fail "the kept network ($f) lacks the new CIDR: $(cat "$f" 2>&1)"
# CNI's bridge plugin will not give its bridge a second gateway address: the bridge goes (a reboot's work)
ip link del "$BR"
P3=$(podip three) || fail "runp after the second CIDR"
case $(cat "$work/three.ip") in "$NET2".*) ;; *) fail "pod IP $(cat "$work/three.ip") is not in $NET2.0/24" ;; esac
# a template the engine cannot read: the RPC says so
echo '{"name": "x", {{.Nope}} }' >"$work/template.json"
[ "$(cidr "10.233.251.0/24")" = 3 ] || fail "a bad template: $(cat "$work/urc.report")"
$CRICTL stopp "$P3" >/dev/null && $CRICTL rmp "$P3" >/dev/null || fail "stopp/rmp three"
echo "PASS cri.podcidr"
