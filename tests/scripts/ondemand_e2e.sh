#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Plugins on demand (BERTH_PLUGIN_ON_DEMAND) with the default modules, on a real berthd, runc and CNI:
#   a. at start every on-demand plugin is "deferred" (berthd modules --running) and none of their module
#      files is mapped (/proc/PID/maps);
#   b. ctr version answers without any of them; ctr namespaces ls initialises the metadata module (its
#      leases and namespaces services ok), ctr images ls the images module;
#   c. an unknown service still answers Unimplemented "unknown service ..." (containerd's words), and an
#      unknown method of a deferred service initialises it and answers "unknown method ..."; after a
#      reload (SIGHUP, nothing changed) a deferred plugin is still deferred and its first use works;
#   d. a container run with the berth CLI, berthd restarted on the same root and state: the runtime and
#      the Tasks service are initialised at start this time (their start_if matched the live task's
#      bundle) and berth ps lists the container Up;
#   e. ctr plugins ls initialises everything deferred first: no row says "deferred", each its true status.
# usage: ondemand_e2e.sh BERTHD MODULE_DIR SOURCE_DIR BERTH GRPCC
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
SRC=$3
B=$4
GRPCC=$5
for need in /usr/lib/cni/bridge /usr/lib/cni/host-local ctr runc; do
    command -v "$need" >/dev/null 2>&1 || [ -x "$need" ] || { echo "FAIL $need is missing"; exit 1; }
done
work=$(mktemp -d /tmp/berth-ondemand-XXXXXX)
BR=bo$$
NET=10.233.$(($$ % 200 + 20))
SOCK="$work/state/berthd.sock"
export BERTH_ADDRESS="$SOCK" BERTH_DATA_ROOT="$work/cli" BERTH_FIFO_DIR="$work/fifo"
unset BERTH_NAMESPACE CONTAINERD_NAMESPACE
# its own name: the cgroup is /<namespace>/<name>, shared with any other test's container of that name
CN=od$$
C="ctr --address $SOCK"
# every module whose plugins all wait for their first use
DEFERRED_MODULES="cri transfer images content-local runtime-runc volumes network-cni snapshot-overlay
snapshot-btrfs snapshots containers metadata-lmdb"

cleanup() {
    status=$?
    cli_teardown
    exit $status
}
trap cleanup EXIT

# mapped NAME: NAME.so is mapped into berthd
mapped() {
    grep -q "/$1\.so\$" "/proc/$PID/maps"
}

# running_status URI: its STATUS column in `berthd modules --running`
running_status() {
    "$BERTHD" modules --running --address "$SOCK" | awk -v u="$1" '$2 == u { print $3 }'
}

# ctr_status TYPE ID: its STATUS column in ctr plugins ls
ctr_status() {
    $C plugins ls | awk -v t="$1" -v i="$2" '$1 == t && $2 == i { print $4 }'
}

bridge_config "$work/berthd.yaml" "$BR" "$NET"
start_berthd_cli "$work/berthd.yaml" info

# a. deferred, not even mapped
"$BERTHD" modules --running --address "$SOCK" >"$work/modules" || fail "berthd modules --running"
for uri in io.containerd.grpc.v1.cri io.berth.cri.v1.cri io.containerd.grpc.v1.images \
    io.containerd.content.v1.content io.containerd.metadata.v1.lmdb io.containerd.grpc.v1.leases \
    io.containerd.runtime.v2.task io.containerd.grpc.v1.tasks io.containerd.snapshotter.v1.overlayfs \
    io.containerd.grpc.v1.transfer io.berth.network.v1.cni io.containerd.grpc.v1.containers; do
    st=$(awk -v u="$uri" '$2 == u { print $3 }' "$work/modules")
    [ "$st" = deferred ] || fail "a: $uri is \"$st\" at start, not deferred: $(cat "$work/modules")"
done
for uri in io.containerd.event.v1.exchange io.berth.transport.v1.grpc io.containerd.grpc.v1.version; do
    st=$(awk -v u="$uri" '$2 == u { print $3 }' "$work/modules")
    [ "$st" = ok ] || fail "a: $uri is \"$st\" at start, not ok"
done
for m in $DEFERRED_MODULES; do
    ! mapped "$m" || fail "a: $m.so is mapped at start"
done
mapped grpc || fail "a: grpc.so is not mapped (is /proc/$PID/maps readable?)"

# b. what each call needs, and no more
$C version >"$work/out" 2>&1 || fail "b: ctr version: $(cat "$work/out")"
grep -q "Revision" "$work/out" || fail "b: ctr version: $(cat "$work/out")"
! mapped metadata-lmdb || fail "b: ctr version mapped metadata-lmdb.so"
$C namespaces ls >"$work/out" 2>&1 || fail "b: ctr namespaces ls: $(cat "$work/out")"
mapped metadata-lmdb || fail "b: ctr namespaces ls did not map metadata-lmdb.so"
for uri in io.containerd.grpc.v1.leases io.containerd.grpc.v1.namespaces io.containerd.metadata.v1.lmdb; do
    st=$(running_status "$uri")
    [ "$st" = ok ] || fail "b: $uri is \"$st\" after ctr namespaces ls"
done
! mapped images || fail "b: ctr namespaces ls mapped images.so"
! mapped cri || fail "b: ctr namespaces ls mapped cri.so"
$C images ls >"$work/out" 2>&1 || fail "b: ctr images ls: $(cat "$work/out")"
mapped images || fail "b: ctr images ls did not map images.so"
! mapped cri || fail "b: ctr images ls mapped cri.so"

# c. Unimplemented, as containerd answers it
"$GRPCC" "$SOCK" /no.such.v1.Service/Method --expect 12 >"$work/out" 2>&1 ||
    fail "c: an unknown service: $(cat "$work/out")"
grep -q "grpc-status 12 .*unknown service no.such.v1.Service" "$work/out" ||
    fail "c: an unknown service: $(cat "$work/out")"
! mapped cri || fail "c: an unknown service mapped cri.so"
! mapped snapshots || fail "c: snapshots.so mapped before its first use"
"$GRPCC" "$SOCK" /containerd.services.snapshots.v1.Snapshots/Nope --expect 12 >"$work/out" 2>&1 ||
    fail "c: an unknown method of a deferred service: $(cat "$work/out")"
grep -q "grpc-status 12 .*unknown method Nope for service containerd.services.snapshots.v1.Snapshots" \
    "$work/out" || fail "c: an unknown method of a deferred service: $(cat "$work/out")"
mapped snapshots || fail "c: a call to the Snapshots service did not map snapshots.so"

# c2. a reload (nothing changed) leaves deferred plugins deferred, and their first use still works
! mapped containers || fail "c2: containers.so mapped before its first use"
reload
st=$(running_status io.containerd.grpc.v1.containers)
[ "$st" = deferred ] || fail "c2: the Containers service is \"$st\" after a reload, not deferred"
$C containers ls >"$work/out" 2>&1 || fail "c2: ctr containers ls after a reload: $(cat "$work/out")"
mapped containers || fail "c2: ctr containers ls after a reload did not map containers.so"

# d. a live task: the runtime starts with berthd again
sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$work/fx" >/dev/null
$B import -q "$work/fx/busybox-oci.tar" >"$work/out" 2>&1 || fail "d: import: $(cat "$work/out")"
$B run -d --name $CN berth-busybox sleep 1000 >"$work/out" 2>&1 || fail "d: run: $(cat "$work/out")"
$B ps | grep -q " Up .* $CN\$" || fail "d: berth ps does not list $CN Up: $($B ps 2>&1)"
kill "$PID"
wait "$PID" || fail "d: berthd exited with $? on SIGTERM"
PID=""
start_berthd_cli "$work/berthd.yaml" info
mapped runtime-runc || fail "d: runtime-runc.so not mapped at start with a task running"
st=$(running_status io.containerd.runtime.v2.task)
[ "$st" = ok ] || fail "d: the runtime is \"$st\" at start with a task running"
st=$(running_status io.containerd.grpc.v1.tasks)
[ "$st" = ok ] || fail "d: the Tasks service is \"$st\" at start with a task running (exits unpublished)"
! mapped cri || fail "d: cri.so mapped at start without pods"
$B ps >"$work/out" 2>&1 || fail "d: berth ps: $(cat "$work/out")"
grep -q " Up .* $CN\$" "$work/out" || fail "d: berth ps does not list $CN Up after the restart: $(cat "$work/out")"

# e. every plugin's true status
$C plugins ls >"$work/plugins" 2>&1 || fail "e: ctr plugins ls: $(cat "$work/plugins")"
! grep -q deferred "$work/plugins" || fail "e: ctr plugins ls shows deferred plugins: $(cat "$work/plugins")"
awk 'NR > 1 && $4 != "ok" && $4 != "skip" && $4 != "error" { print; bad = 1 } END { exit bad }' \
    "$work/plugins" || fail "e: rows without a status: $(cat "$work/plugins")"
for row in "io.containerd.grpc.v1 cri" "io.berth.cri.v1 cri" "io.containerd.transfer.v1 local" \
    "io.containerd.snapshotter.v1 overlayfs" "io.containerd.grpc.v1 volumes" "io.berth.network.v1 cni"; do
    # shellcheck disable=SC2086 # TYPE ID, split on purpose
    st=$(ctr_status $row)
    [ "$st" = ok ] || fail "e: $row is \"$st\" in ctr plugins ls: $(cat "$work/plugins")"
done
for m in cri transfer volumes network-cni snapshot-overlay; do
    mapped "$m" || fail "e: $m.so not mapped after ctr plugins ls"
done
# berthd's own view says what ran: nothing is left deferred
"$BERTHD" modules --running --address "$SOCK" >"$work/modules"
! grep -q " deferred " "$work/modules" || fail "e: still deferred after Plugins: $(cat "$work/modules")"
$B ps | grep -q " Up .* $CN\$" || fail "e: berth ps does not list $CN Up: $($B ps 2>&1)"
echo "PASS ondemand.e2e"
