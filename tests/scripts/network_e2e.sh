#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Networked containers through berthd with the real ctr, real CNI plugins (/usr/lib/cni), real network
# namespaces and iptables, on the test's OWN bridge (bt<pid>) and subnet (10.231.<x>.0/24): two containers on
# the default network reach each other by IP; the host reaches one through a port published on 127.0.0.1;
# `none` has only lo; `host` is the host's netns; kill -9 of berthd keeps a container's address and port,
# and deleting it then leaves no veth, netns mount, iptables rule or IPAM lease; an endpoint whose task
# vanished while berthd was down goes at start-up; the endpoint hook fixture (fx_endpointhook) gives a
# static IP and vetoes (nothing left); a bad io.berth.ports or an unknown network is a clear error and
# leaves nothing; a named volume's data outlives its container; without the network and volume modules
# plain containers still run. Traffic goes only to 127.0.0.1 and to the
# test's own containers.
# usage: network_e2e.sh BERTHD MODULE_DIR SOURCE_DIR FIXTURE_DIR
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
SRC=$3
FX=$4
for need in /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/portmap /usr/lib/cni/firewall; do
    [ -x "$need" ] || { echo "FAIL $need is missing: apt-get install containernetworking-plugins"; exit 1; }
done
command -v iptables-save >/dev/null || { echo "FAIL iptables-save is missing: apt-get install iptables"; exit 1; }
work=$(mktemp -d /tmp/berth-net-XXXXXX)
BR=bt$$
X=$(($$ % 200 + 20))
NET=10.231.$X
STATIC=$NET.77
TASKS="$work/state/io.containerd.runtime.v2.task/default"
CTR="ctr --address $work/state/berthd.sock"
IMG=docker.io/library/berth-busybox:latest

# Everything the test made goes, also when it failed half-way: the tasks (their delete tears their
# endpoints down), berthd, the shims and container processes by PID, the mounts, the bridge.
cleanup() {
    status=$?
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        for c in $($CTR containers ls -q 2>/dev/null); do
            $CTR tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true
            $CTR tasks rm -f "$c" >/dev/null 2>&1 || true
            $CTR containers rm "$c" >/dev/null 2>&1 || true
        done
    fi
    stop_test_processes
    for f in "$TASKS"/*/init.pid; do
        [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
    done
    kill_test_shims
    # rules a failed run left: every rule naming the test's subnet
    drop_rules "$NET."
    umount_under "$work"
    ip link del "$BR" 2>/dev/null || true
    rm -rf "$work"
    exit $status
}
PID=""
trap cleanup EXIT

mkdir -p "$work/net.d"
cat >"$work/berthd.yaml" <<EOF
version: 1
module_dirs: ["$FX/network"]
plugins:
  io.berth.network.v1.cni:
    conf_dir: $work/net.d
    default_network: {name: berth, bridge: $BR, subnet: $NET.0/24}
  test.endpoint.v1.hook:
    static_ip: $STATIC
EOF
start() {
    "$BERTHD" --config "$work/berthd.yaml" --root "$work/root" --state "$work/state" --log-level info \
        2>>"$work/log" &
    PID=$!
    i=0
    until $CTR version >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 200 ] || fail "berthd did not start"; sleep 0.05; done
}
sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$work/fx" >/dev/null
start
$CTR images import "$work/fx/busybox-oci.tar" >/dev/null

n=0
sh_in() { # CONTAINER CMD: runs CMD in the running container
    n=$((n + 1))
    $CTR tasks exec --exec-id "x$n" "$1" sh -c "$2"
}
addr_of() { sh_in "$1" 'busybox ip -o -4 addr show eth0' | awk '{ print $4 }' | cut -d/ -f1; }
wait_http() { # URL WANT
    i=0
    until [ "$(timeout 3 busybox wget -q -O - "$1" 2>/dev/null)" = "$2" ]; do
        i=$((i + 1)); [ $i -lt 50 ] || return 1; sleep 0.1
    done
}
free_port() { # one nobody listens on (tcp or tcp6)
    p=$(($$ % 20000 + 30000))
    while grep -qi ":$(printf %04X $p) " /proc/net/tcp /proc/net/tcp6 2>/dev/null; do p=$((p + 1)); done
    echo $p
}
net=berth
web() { # ID [LABELS...]: a detached container serving "hello-ID" on port 80
    id=$1
    shift
    $CTR run -d "$@" --label io.berth.network=$net "$IMG" "$id" \
        sh -c "mkdir -p /www && echo hello-$id >/www/index.html && exec busybox httpd -f -p 80 -h /www" >/dev/null
}
stop_rm() { # ID: kill, delete the task (its endpoint goes), remove the container
    $CTR tasks kill -s SIGKILL "$1" >/dev/null 2>&1 || true
    i=0
    until $CTR tasks ls | grep -q "^$1 .*STOPPED"; do i=$((i + 1)); [ $i -lt 100 ] || fail "$1 did not stop"; sleep 0.05; done
    $CTR tasks rm "$1" >/dev/null
    $CTR containers rm "$1"
}
# What an endpoint leaves, for one container: its netns path (from the bundle's config.json), the host end
# of its veth (eth0's peer ifindex), its address.
endpoint_of() { # ID -> "NETNS IFINDEX IP"
    ns=$(grep -o '"type":"network","path":"[^"]*"' "$TASKS/$1/config.json" | sed 's/.*"path":"//; s/"$//')
    case "$ns" in "$work"/*) ;; *) fail "$1: its netns $ns is not under the test's state dir" ;; esac
    grep -q " $ns nsfs " /proc/mounts || fail "$1: its netns $ns is not mounted"
    echo "$ns $(sh_in "$1" 'cat /sys/class/net/eth0/iflink') $(addr_of "$1")"
}
nothing_left() { # ID NETNS IFINDEX IP
    [ ! -d "$TASKS/$1" ] || fail "$1: the bundle is left"
    ! grep -q " $2 nsfs " /proc/mounts || fail "$1: its netns $2 is still mounted"
    [ ! -e "$2" ] || fail "$1: its netns file $2 is left"
    ! ip -o link | grep -q "^$3:" || fail "$1: its veth (ifindex $3) is left: $(ip -o link | grep "^$3:")"
    ! iptables-save | grep -Eq -- "$4([/ ]|$)" || fail "$1: iptables rules name $4: $(iptables-save | grep -E -- "$4([/ ]|$)")"
    [ -z "$(find "$work" -name "$4")" ] || fail "$1: an IPAM lease for $4 is left: $(find "$work" -name "$4")"
}
# Counts of what endpoints make, to show a refused container made none.
census() {
    echo "nsfs=$(awk -v w="$work" '$3 == "nsfs" && index($2, w) == 1' /proc/mounts | wc -l)" \
        "veths=$(ip -o link show master "$BR" 2>/dev/null | wc -l)" \
        "rules=$(iptables-save | grep -cF -- "$NET.")" \
        "leases=$(find "$work" -name "$NET.*" | wc -l)" \
        "bundles=$(ls "$TASKS" 2>/dev/null | wc -l)"
}

# --- none (the default) and host -------------------------------------------------------------------------
links=$($CTR run --rm "$IMG" n1 busybox ip -o link | awk -F': ' '{ print $2 }')
[ "$links" = lo ] || fail "no label: links are $links, not lo only"
links=$($CTR run --rm --label io.berth.network=none "$IMG" n2 busybox ip -o link | awk -F': ' '{ print $2 }')
[ "$links" = lo ] || fail "io.berth.network=none: links are $links, not lo only"
hostns=$(readlink /proc/self/ns/net)
[ "$($CTR run --rm --label io.berth.network=host "$IMG" h1 busybox readlink /proc/self/ns/net)" = "$hostns" ] ||
    fail "io.berth.network=host is not the host's netns ($hostns)"
[ "$($CTR run --rm --label io.berth.network=host "$IMG" h2 cat /etc/resolv.conf)" = "$(cat /etc/resolv.conf)" ] ||
    fail "io.berth.network=host: /etc/resolv.conf is not the host's"

# --- two containers on the default network, a published port ------------------------------------------
PORT=$(free_port)
web a1 --label "io.berth.ports=127.0.0.1:$PORT:80"
web a2
A1=$(addr_of a1)
A2=$(addr_of a2)
case "$A1" in "$NET".*) ;; *) fail "a1's address $A1 is not in $NET.0/24" ;; esac
[ "$A1" != "$A2" ] || fail "a1 and a2 share $A1"
[ "$(sh_in a2 "busybox wget -qO- http://$A1/")" = hello-a1 ] || fail "a2 did not reach a1 at $A1"
[ "$(sh_in a1 "busybox wget -qO- http://$A2/")" = hello-a2 ] || fail "a1 did not reach a2 at $A2"
[ "$(sh_in a1 'cat /etc/hostname')" = a1 ] || fail "a1's /etc/hostname: $(sh_in a1 'cat /etc/hostname')"
sh_in a1 'grep -q a1 /etc/hosts' || fail "a1's /etc/hosts does not name it: $(sh_in a1 'cat /etc/hosts')"
sh_in a1 'test -s /etc/resolv.conf' || fail "a1 has no /etc/resolv.conf"
wait_http "http://127.0.0.1:$PORT/" hello-a1 || fail "127.0.0.1:$PORT did not reach a1's port 80"
HOOKLOG=$work/state/test.endpoint.v1.hook/endpoint.log
grep -q "^default a1 berth eth0 .*$PORT" "$HOOKLOG" || fail "the endpoint hook did not see a1's ports: $(cat "$HOOKLOG")"

# --- kill -9 of berthd: a1 keeps its address and its port; deleting it then leaves nothing ------------
ep=$(endpoint_of a1) || fail "a1: $ep"
set -- $ep
E_NS=$1 E_IF=$2 E_IP=$3
kill -9 "$PID"
wait "$PID" 2>/dev/null || true
PID=""
start
$CTR tasks ls | grep -q "^a1 .*RUNNING" || fail "a1 did not survive the restart"
[ "$(addr_of a1)" = "$A1" ] || fail "a1's address changed over the restart: $A1 -> $(addr_of a1)"
wait_http "http://127.0.0.1:$PORT/" hello-a1 || fail "the published port does not answer after the restart"
stop_rm a1
nothing_left a1 "$E_NS" "$E_IF" "$E_IP"
! timeout 3 busybox wget -q -O - "http://127.0.0.1:$PORT/" >/dev/null 2>&1 || fail "port $PORT still answers after a1 went"
ep=$(endpoint_of a2) || fail "a2: $ep"
set -- $ep
stop_rm a2
nothing_left a2 "$@"

# --- an endpoint whose task vanished while berthd was down goes at start-up ----------------------------
web v1
ep=$(endpoint_of v1) || fail "v1: $ep"
set -- $ep
V_NS=$1 V_IF=$2 V_IP=$3
init=$(cat "$TASKS/v1/init.pid")
shim=$(pgrep -f "berth-shim v1 $work/") || fail "no shim for v1"
kill -9 "$PID"
wait "$PID" 2>/dev/null || true
PID=""
kill -9 "$shim" "$init"
start
i=0
until [ ! -e "$V_NS" ] && ! ip -o link | grep -q "^$V_IF:"; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "v1's endpoint was not torn down at start-up"; sleep 0.05
done
nothing_left v1 "$V_NS" "$V_IF" "$V_IP"
grep -q "v1: gone; tearing its endpoint down" "$work/log" || fail "no log line for v1's teardown"
$CTR containers rm v1

# --- the endpoint hook: a static IP, and a veto that leaves nothing ------------------------------------
web static1
grep -q "^default static1 berth eth0" "$HOOKLOG" || fail "the endpoint hook did not run for static1"
[ "$(addr_of static1)" = "$STATIC" ] || fail "static1 got $(addr_of static1), not the hook's $STATIC"
ep=$(endpoint_of static1) || fail "static1: $ep"
set -- $ep
stop_rm static1
nothing_left static1 "$@"
before=$(census)
if $CTR run --rm --label io.berth.network=berth "$IMG" veto1 true 2>"$work/err"; then fail "the endpoint hook's veto was ignored"; fi
grep -q "container veto1 may not join network berth" "$work/err" || fail "ctr did not get the veto's message: $(cat "$work/err")"
[ "$(census)" = "$before" ] || fail "a vetoed endpoint left something: $before -> $(census)"
$CTR containers rm veto1 2>/dev/null || true

# --- bad labels: clear errors, nothing made -------------------------------------------------------------
before=$(census)
bad() { # ID WORDS LABELS...
    id=$1 words=$2
    shift 2
    if $CTR run --rm "$@" "$IMG" "$id" true 2>"$work/err"; then fail "$id: $* was accepted"; fi
    grep -q "$words" "$work/err" || fail "$id: no clear error ($words): $(cat "$work/err")"
    [ "$(census)" = "$before" ] || fail "$id: a refused container left something: $before -> $(census)"
    $CTR containers rm "$id" 2>/dev/null || true
}
bad b1 'label io.berth.ports: entry 1 "80" is not .*: invalid argument' --label io.berth.network=berth --label io.berth.ports=80
bad b2 'host port "70000" is not a number' --label io.berth.network=berth --label io.berth.ports=70000:80
bad b3 'io.berth.ports needs networks' --label io.berth.ports=8080:80
bad b4 'network "nosuch"' --label io.berth.network=nosuch
bad b5 'cannot be combined' --label io.berth.network=berth,host
bad b6 'label io.berth.volumes' --label io.berth.network=berth --label 'io.berth.volumes=../x:/data'
# the runtime refuses the spec after the endpoint was set up: the endpoint goes again
bad b7 'destination rel must be an absolute path' --label io.berth.network=berth \
    --mount type=bind,src=/tmp,dst=rel,options=rbind:ro
grep -q "^default b7 berth eth0" "$HOOKLOG" || fail "b7's endpoint was never set up: the case tests nothing"

# --- a named volume: created on first use, its data outlives the container --------------------------------
$CTR run --rm --label io.berth.volumes=nv1:/data "$IMG" w1 sh -c 'echo kept >/data/f' ||
    fail "a container with a named volume did not run"
[ "$($CTR run --rm --label io.berth.volumes=nv1:/data:ro "$IMG" w2 cat /data/f)" = kept ] ||
    fail "the volume's data did not outlive its container"
if $CTR run --rm --label io.berth.volumes=nv1:/data:ro "$IMG" w3 sh -c 'echo x >/data/g' 2>/dev/null; then
    fail ":ro was not enforced"
fi
# --- both modules are optional: without them, plain containers run, labelled ones get a clear refusal -------
stop_test_processes
"$BERTHD" --config "$work/berthd.yaml" --root "$work/root" --state "$work/state" --log-level warn \
    --set 'disabled=["io.berth.network.v1.cni","io.berth.volume.v1.local"]' 2>>"$work/log" &
PID=$!
i=0
until $CTR version >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 200 ] || fail "berthd did not start"; sleep 0.05; done
[ "$($CTR run --rm "$IMG" o1 echo plain)" = plain ] || fail "without the network module, a plain container did not run"
if $CTR run --rm --label io.berth.network=berth "$IMG" o2 true 2>"$work/err"; then fail "o2 ran without the network module"; fi
grep -q "the network-cni module (io.berth.network.v1) is not loaded: failed precondition" "$work/err" ||
    fail "o2: $(cat "$work/err")"
$CTR containers rm o2 2>/dev/null || true
echo "network e2e: ok"
