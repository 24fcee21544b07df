#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# berth.services.networks.v1.Networks through berthd with the network-cni module (its own bridge names and
# 10.231.x.0/24 subnets): the default network, one from berth's YAML and one from a conflist file in
# conf_dir are listed with their sources; Create/Get/List (filters)/Remove of a bridge network and of a
# conflist network; bad names, bad JSON, bad subnets and a gateway outside the subnet are refused with
# clear errors, and so are plugins CNI VERSION does not find or that lack the conflist's cniVersion;
# AlreadyExists; Remove of config networks and of a network an endpoint uses is refused;
# Endpoints; a network made through the API is still there after a restart.
# usage: network_api.sh BERTHD MODULE_DIR SOURCE_DIR GRPCC
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
export BERTH_SRC=$3
export GRPCC=$4
work=$(mktemp -d /tmp/berth-netapi-XXXXXX)
trap cleanup_work EXIT
SOCK=$work/state/berthd.sock
k=$((20 + $$ % 50 * 4))
tag=$(($$ % 100000))

mkdir -p "$work/net.d"
cat >"$work/net.d/10-filenet.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "filenet",
 "plugins": [{"type": "bridge", "bridge": "bf$tag",
              "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.231.$((k + 3)).0/24"}]]}}]}
EOF
echo 'not json' >"$work/net.d/20-broken.conflist"
cat >"$work/berthd.yaml" <<EOF
version: 1
plugins:
  io.berth.network.v1.cni:
    conf_dir: $work/net.d
    default_network: {bridge: bn$tag, subnet: 10.231.$k.0/24}
    networks:
      yamlnet: {bridge: by$tag, subnet: 10.231.$((k + 1)).0/24, internal: true, firewall: false}
EOF

start() {
    "$BERTHD" --config "$work/berthd.yaml" --root "$work/root" --state "$work/state" --log-level warn \
        2>>"$work/log" &
    PID=$!
    i=0
    until [ -S "$SOCK" ] && rpc List ListNetworksRequest ListNetworksResponse '' >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 200 ] || fail "berthd did not start"
        sleep 0.05
    done
}
stop() {
    kill "$PID"
    wait "$PID" || fail "berthd exited with $? on SIGTERM"
    PID=""
}

P=berth.services.networks.v1
rpc() { # METHOD REQ RESP TEXT [--expect N]
    m=$1 req=$2 resp=$3 text=$4
    shift 4
    berth_rpc "$SOCK" "/$P.Networks/$m" "$P.$req" "$P.$resp" "$text" "$@"
}
# refused METHOD REQ RESP TEXT CODE WORDS: the call ends with gRPC status CODE and a message holding WORDS
refused() {
    out=$(rpc "$1" "$2" "$3" "$4" --expect "$5") || fail "$1 $4: not status $5"
    case "$out" in
    *"grpc-status $5 "*"$6"*) ;;
    *) fail "$1 $4: wanted status $5 with '$6', got: $out" ;;
    esac
}
names() { rpc List ListNetworksRequest ListNetworksResponse "$1" | sed -n 's/^  name: "\(.*\)"/\1/p' | tr '\n' ' '; }

start

# --- the networks from the config: default, YAML, conflist file (the broken file is skipped) -----------
[ "$(names '')" = "berth filenet yamlnet " ] || fail "list: $(names '')"
out=$(rpc Get GetNetworkRequest GetNetworkResponse 'name: "berth"')
echo "$out" | grep -q 'source: "default"' || fail "default source: $out"
echo "$out" | grep -q "bridge: \"bn$tag\"" || fail "default bridge: $out"
echo "$out" | grep -q "subnet: \"10.231.$k.0/24\"" || fail "default subnet: $out"
echo "$out" | grep -q "gateway: \"10.231.$k.1\"" || fail "default gateway: $out"
echo "$out" | grep -q 'driver: "bridge"' || fail "default driver: $out"
echo "$out" | grep -q 'portMappings' || fail "default has no portmap: $out"
echo "$out" | grep -qF "$work/state/io.berth.network.v1.cni/ipam" ||
    fail "default IPAM dataDir is not under the state dir: $out"
out=$(rpc Get GetNetworkRequest GetNetworkResponse 'name: "yamlnet"')
echo "$out" | grep -q 'source: "config"' || fail "yamlnet source: $out"
echo "$out" | grep -q 'ipMasq\\":false' || fail "internal yamlnet masquerades: $out"
echo "$out" | grep -q 'firewall' && fail "yamlnet has firewall: false: $out"
out=$(rpc Get GetNetworkRequest GetNetworkResponse 'name: "filenet"')
echo "$out" | grep -q 'source: "file"' || fail "filenet source: $out"
grep -q "conflist .*20-broken.conflist ignored" "$work/log" || fail "the broken conflist was not reported"

# --- Create, Get, List, Remove: a bridge network and a conflist network -------------------------------
out=$(rpc Create CreateNetworkRequest CreateNetworkResponse \
    "name: \"apinet\" subnet: \"10.231.$((k + 2)).0/24\" labels { key: \"team\" value: \"blue\" }")
echo "$out" | grep -q 'source: "api"' || fail "create: $out"
echo "$out" | grep -q 'bridge: "br-apinet"' || fail "create: default bridge name: $out"
echo "$out" | grep -q "gateway: \"10.231.$((k + 2)).1\"" || fail "create: default gateway: $out"
echo "$out" | grep -q 'value: "blue"' || fail "create: labels: $out"
[ -f "$work/root/io.berth.network.v1.cni/networks/apinet.json" ] || fail "apinet is not kept in a file"
CL="{\\\"cniVersion\\\":\\\"1.0.0\\\",\\\"plugins\\\":[{\\\"type\\\":\\\"bridge\\\",\\\"bridge\\\":\\\"bc$tag\\\",\\\"ipam\\\":{\\\"type\\\":\\\"host-local\\\",\\\"subnet\\\":\\\"10.231.$((k + 3)).0/24\\\"}}]}"
out=$(rpc Create CreateNetworkRequest CreateNetworkResponse "name: \"clnet\" conflist: \"$CL\"")
echo "$out" | grep -q "bridge: \"bc$tag\"" || fail "conflist create: $out"
echo "$out" | grep -q 'name\\":\\"clnet' || fail "conflist create: the name is not set in it: $out"
rpc Get GetNetworkRequest GetNetworkResponse 'name: "clnet"' | grep -q 'source: "api"' || fail "get clnet"
[ "$(names '')" = "apinet berth clnet filenet yamlnet " ] || fail "list: $(names '')"
[ "$(names 'filters: "source==api"')" = "apinet clnet " ] || fail "filter source: $(names 'filters: "source==api"')"
[ "$(names 'filters: "labels.team==blue"')" = "apinet " ] || fail "filter labels"
[ "$(names 'filters: "name~=^y" filters: "source==file"')" = "filenet yamlnet " ] || fail "filters (any)"
refused List ListNetworksRequest ListNetworksResponse 'filters: "name=="' 3 "parse error"

# --- refusals ------------------------------------------------------------------------------------------
refused Create CreateNetworkRequest CreateNetworkResponse "name: \"apinet\" subnet: \"10.231.$((k + 2)).0/24\"" \
    6 'network "apinet": already exists'
refused Create CreateNetworkRequest CreateNetworkResponse 'name: "berth" subnet: "10.9.0.0/24"' 6 "already exists"
refused Create CreateNetworkRequest CreateNetworkResponse 'name: "bad/name" subnet: "10.9.0.0/24"' 3 \
    'network name "bad/name" is not valid'
refused Create CreateNetworkRequest CreateNetworkResponse 'name: "-dash" subnet: "10.9.0.0/24"' 3 "is not valid"
long=$(printf 'n%.0s' $(seq 65))
refused Create CreateNetworkRequest CreateNetworkResponse "name: \"$long\" subnet: \"10.9.0.0/24\"" 3 "at most 64"
refused Create CreateNetworkRequest CreateNetworkResponse 'name: ""' 3 "is not valid"
refused Create CreateNetworkRequest CreateNetworkResponse 'name: "j1" conflist: "{not json"' 3 \
    "conflist is not valid JSON"
refused Create CreateNetworkRequest CreateNetworkResponse 'name: "j2" conflist: "{\"plugins\":[]}"' 3 \
    'non-empty "plugins" array'
refused Create CreateNetworkRequest CreateNetworkResponse 'name: "j3" conflist: "{\"name\":\"other\",\"plugins\":[{\"type\":\"bridge\"}]}"' 3 \
    'conflist name "other" differs'
refused Create CreateNetworkRequest CreateNetworkResponse 'name: "j4" conflist: "{\"plugins\":[{\"type\":\"../x\"}]}"' 3 \
    'no valid "type"'
refused Create CreateNetworkRequest CreateNetworkResponse 'name: "j5" conflist: "{\"plugins\":[{\"type\":\"nosuchplugin\"}]}"' 3 \
    'cni plugin "nosuchplugin" not found in /usr/lib/cni:/opt/cni/bin'
refused Create CreateNetworkRequest CreateNetworkResponse 'name: "j6" conflist: "{\"cniVersion\":\"9.9.9\",\"plugins\":[{\"type\":\"bridge\"}]}"' 3 \
    'cni plugin bridge does not support cniVersion 9.9.9'
refused Create CreateNetworkRequest CreateNetworkResponse 'name: "s0"' 3 "needs a subnet"
refused Create CreateNetworkRequest CreateNetworkResponse 'name: "s1" subnet: "10.9.0.0/33"' 3 "prefix must be"
refused Create CreateNetworkRequest CreateNetworkResponse 'name: "s2" subnet: "300.1.1.0/24"' 3 "is not an IP address"
refused Create CreateNetworkRequest CreateNetworkResponse 'name: "s3" subnet: "10.9.0.1/24"' 3 "host bits set"
refused Create CreateNetworkRequest CreateNetworkResponse 'name: "s4" subnet: "10.9.0.0"' 3 "is not a CIDR"
refused Create CreateNetworkRequest CreateNetworkResponse 'name: "s5" subnet: "10.9.0.0/24" gateway: "10.8.0.1"' 3 \
    'gateway "10.8.0.1" is not an address in subnet'
refused Create CreateNetworkRequest CreateNetworkResponse 'name: "s6" subnet: "10.9.0.0/24" bridge: "abcdefghijklmnop"' 3 \
    "must be 1..15 bytes"
[ "$(names '')" = "apinet berth clnet filenet yamlnet " ] || fail "a refused create left something: $(names '')"
refused Get GetNetworkRequest GetNetworkResponse 'name: "nosuch"' 5 'network "nosuch": not found'
refused Remove RemoveNetworkRequest RemoveNetworkResponse 'name: "nosuch"' 5 'network "nosuch": not found'
refused Remove RemoveNetworkRequest RemoveNetworkResponse 'name: "berth"' 9 "comes from the default config"
refused Remove RemoveNetworkRequest RemoveNetworkResponse 'name: "yamlnet"' 9 "comes from the config"
refused Remove RemoveNetworkRequest RemoveNetworkResponse 'name: "filenet"' 9 "comes from the config directory"

# --- Endpoints, and Remove while one uses the network (a record as setup journals it) -----------------
[ -z "$(rpc Endpoints ListEndpointsRequest ListEndpointsResponse '')" ] || fail "endpoints of a fresh berthd"
refused Endpoints ListEndpointsRequest ListEndpointsResponse 'network: "nosuch"' 5 "not found"
rec=$work/state/io.berth.network.v1.cni/endpoints/default
mkdir -p "$rec"
cat >"$rec/c1.json" <<EOF
{"namespace":"default","id":"c1","state":"ready","netns":"/nonexistent","ports":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}],
 "networks":[{"name":"apinet","ifname":"eth0","result":{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","mac":"aa:bb:cc:dd:ee:ff","sandbox":"/x"}],
 "ips":[{"address":"10.231.$((k + 2)).5/24","gateway":"10.231.$((k + 2)).1","interface":0}]}}]}
EOF
out=$(rpc Endpoints ListEndpointsRequest ListEndpointsResponse 'network: "apinet"')
echo "$out" | grep -q 'container_id: "c1"' || fail "endpoints: $out"
echo "$out" | grep -q "addresses: \"10.231.$((k + 2)).5/24\"" || fail "endpoints address: $out"
echo "$out" | grep -q 'host_port: 8080' || fail "endpoints ports: $out"
echo "$out" | grep -q 'mac: "aa:bb:cc:dd:ee:ff"' || fail "endpoints mac: $out"
[ -z "$(rpc Endpoints ListEndpointsRequest ListEndpointsResponse 'network: "clnet"')" ] || fail "clnet has no endpoints"
refused Remove RemoveNetworkRequest RemoveNetworkResponse 'name: "apinet"' 9 "in use by 1 endpoint"
rm "$rec/c1.json"

# --- a restart keeps API networks; Remove removes them ------------------------------------------------
stop
start
[ "$(names '')" = "apinet berth clnet filenet yamlnet " ] || fail "after a restart: $(names '')"
rpc Get GetNetworkRequest GetNetworkResponse 'name: "apinet"' | grep -q 'value: "blue"' || fail "labels after restart"
rpc Remove RemoveNetworkRequest RemoveNetworkResponse 'name: "apinet"' >/dev/null || fail "remove apinet"
rpc Remove RemoveNetworkRequest RemoveNetworkResponse 'name: "clnet"' >/dev/null || fail "remove clnet"
refused Get GetNetworkRequest GetNetworkResponse 'name: "apinet"' 5 "not found"
[ ! -e "$work/root/io.berth.network.v1.cni/networks/apinet.json" ] || fail "apinet's file is left"
[ "$(names '')" = "berth filenet yamlnet " ] || fail "after remove: $(names '')"
stop
start
[ "$(names '')" = "berth filenet yamlnet " ] || fail "removed networks came back: $(names '')"
stop
echo "PASS network.api"
