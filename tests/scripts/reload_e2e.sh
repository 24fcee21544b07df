#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Reload with the real modules and a container running: each kind of module (network, volume, runtime,
# snapshotter, CRI, transfer, content store, event exchange) is disabled by editing the config and sending
# SIGHUP, then enabled again the same way. After each step:
#   - the container's process is the same one, still running, and `berth ps` lists it Up;
#   - the plugin's row says what the config asks (ctr plugins ls: Introspection);
#   - once enabled again, `berth exec` into the container works and the image is still stored;
# plus: an Events stream opened at the start survives every reload that leaves the exchange alone and hears
# /berth/reload; a change to the metadata store (NO_RELOAD) is reported as needing a restart and applies
# nothing; a bad config is refused with `berthd config check`'s message and changes nothing.
# usage: reload_e2e.sh BERTHD MODULE_DIR SOURCE_DIR BERTH
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
SRC=$3
B=$4
for need in /usr/lib/cni/bridge /usr/lib/cni/host-local ctr runc; do
    command -v "$need" >/dev/null 2>&1 || [ -x "$need" ] || { echo "FAIL $need is missing"; exit 1; }
done
work=$(mktemp -d /tmp/berth-reload-XXXXXX)
BR=br$$
NET=10.231.$(($$ % 200 + 20))
export BERTH_ADDRESS="$work/state/berthd.sock" BERTH_DATA_ROOT="$work/cli" BERTH_FIFO_DIR="$work/fifo"
unset BERTH_NAMESPACE CONTAINERD_NAMESPACE
# its own name: the cgroup is /<namespace>/<name>, shared with any other test's container of that name
CN=re$$
C="ctr --address $work/state/berthd.sock"
EVENTS_PID=""

cleanup() {
    status=$?
    [ -z "$EVENTS_PID" ] || kill "$EVENTS_PID" 2>/dev/null || true
    cli_teardown
    exit $status
}
trap cleanup EXIT

# status_of TYPE ID: its STATUS column in ctr plugins ls
status_of() {
    $C plugins ls | awk -v t="$1" -v i="$2" '$1 == t && $2 == i { print $4 }'
}

# still_running WHEN [alone]: the container's first process is the one from the start, and (unless
# `alone`: the services ps needs may be the ones disabled) berth ps lists it Up
still_running() {
    kill -0 "$CPID" 2>/dev/null || fail "$1: the container's process $CPID is gone"
    [ "${2:-}" = alone ] ||
        $B ps 2>"$work/err" | grep -q " Up .* $CN\$" || fail "$1: berth ps does not list $CN Up: $($B ps 2>&1)"
}

reload_config "$work/berthd.yaml" ""
start_berthd_cli "$work/berthd.yaml" info
sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$work/fx" >/dev/null
$B import -q "$work/fx/busybox-oci.tar" >/dev/null || fail "import"
$B run -d --name $CN berth-busybox sleep 1000 >/dev/null || fail "run"
CPID=$($C -n default tasks ls | awk -v n="$CN" '$1 == n { print $2 }')
[ -n "$CPID" ] || fail "no pid for $CN"
$C events >"$work/events" 2>&1 &
EVENTS_PID=$!
sleep 0.3

# toggle TYPE ID: disabled, then enabled again, with the container running throughout
toggle() {
    uri="$1.$2"
    reload_config "$work/berthd.yaml" "$uri"
    reload
    echo "$out" | grep -q "msg=\"reloaded: .*[1-9][0-9]* disabled" || fail "disable $uri: $out"
    grep -q "reload: disabled: $uri" "$work/log" || fail "disable $uri: not reported"
    st=$(status_of "$1" "$2")
    [ "$st" = skip ] || fail "disable $uri: ctr plugins ls says '$st'"
    still_running "with $uri disabled" alone
    reload_config "$work/berthd.yaml" ""
    reload
    echo "$out" | grep -q "0 failed" || fail "enable $uri: $out"
    st=$(status_of "$1" "$2")
    [ "$st" = ok ] || fail "enable $uri: ctr plugins ls says '$st'"
    still_running "with $uri enabled again"
    [ "$($B exec $CN echo alive 2>&1)" = alive ] || fail "exec after toggling $uri: $($B exec $CN echo alive 2>&1)"
    $B images | grep -q berth-busybox || fail "the image is gone after toggling $uri"
    echo "ok: $uri toggled"
}

toggle io.berth.network.v1 cni
toggle io.berth.volume.v1 local
toggle io.containerd.runtime.v2 task
toggle io.containerd.snapshotter.v1 overlayfs
toggle io.berth.cri.v1 cri
toggle io.containerd.transfer.v1 local
toggle io.containerd.content.v1 content
kill -0 "$EVENTS_PID" 2>/dev/null || fail "the Events stream did not survive reloads that left the exchange alone"
# ctr cannot decode the payload (berth.services.modules.v1.Reloaded) and logs its type URL instead of the line
grep -qE "/berth/reload|berth\.services\.modules\.v1\.Reloaded" "$work/events" ||
    fail "the Events stream heard no /berth/reload: $(cat "$work/events")"
echo "ok: an Events stream stayed open through $reloads reloads and heard /berth/reload"
toggle io.containerd.event.v1 exchange

# the metadata store cannot be reloaded: reported, and nothing of it changes
reload_config "$work/berthd.yaml" "" "  io.containerd.metadata.v1.lmdb: {map_size: 2147483648}"
"$BERTHD" --config "$work/berthd.yaml" config check >/dev/null 2>&1 || fail "metadata config rejected"
before=$(grep -c "reload: stopping plugin" "$work/log")
reload
grep -q "needs a restart: io.containerd.metadata.v1.lmdb" "$work/log" ||
    fail "a metadata change was not reported as needing a restart: $out"
[ "$(grep -c "reload: stopping plugin" "$work/log")" = "$before" ] || fail "a NO_RELOAD change stopped plugins"
echo "ok: metadata change reported as needing a restart, nothing stopped"

# a bad config: the same message as config check, and nothing changes
reload_config "$work/berthd.yaml" "" "bogus_key: 1"
want=$("$BERTHD" --config "$work/berthd.yaml" config check 2>&1) && fail "config check accepted a bad key"
want=${want#berthd: }
before=$(grep -c "reload: stopping plugin" "$work/log")
reload
echo "$out" | grep -qF "$want" || fail "bad config: '$out' does not carry '$want'"
[ "$(grep -c "reload: stopping plugin" "$work/log")" = "$before" ] || fail "a refused config stopped plugins"
still_running "after a refused config"
echo "ok: a bad config is refused with config check's message"

$B rm -f $CN >/dev/null || fail "rm -f $CN"
echo "ok: reload with a running container"
