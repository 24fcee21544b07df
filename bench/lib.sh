# SPDX-License-Identifier: Apache-2.0
# Shared by the bench scripts: a private berthd and a private containerd side by side, cleaned up on exit.
# Sets WORK, BSOCK, CSOCK, BPID, CPID. Needs BERTHD set.

WORK=$(mktemp -d /tmp/berth-bench-XXXXXX)
BPID=""
CPID=""
bench_cleanup() {
    [ -n "$BPID" ] && kill "$BPID" 2>/dev/null && wait "$BPID" 2>/dev/null
    [ -n "$CPID" ] && kill "$CPID" 2>/dev/null && wait "$CPID" 2>/dev/null
    rm -rf "$WORK"
}
trap bench_cleanup EXIT

wait_socket() {
    i=0
    while [ ! -S "$1" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    [ -S "$1" ] || { echo "no socket at $1"; exit 1; }
}

start_daemons() {
    command -v containerd >/dev/null || { echo "containerd missing: apt-get install containerd"; exit 1; }
    "$BERTHD" --root "$WORK/b/root" --state "$WORK/b/state" --log-level warn 2>"$WORK/berthd.log" &
    BPID=$!
    cat >"$WORK/containerd.toml" <<TOML
version = 2
root = "$WORK/c/root"
state = "$WORK/c/state"
[grpc]
  address = "$WORK/c/containerd.sock"
[ttrpc]
  address = "$WORK/c/containerd.sock.ttrpc"
TOML
    containerd --config "$WORK/containerd.toml" --log-level error 2>"$WORK/containerd.log" &
    CPID=$!
    BSOCK=$WORK/b/state/berthd.sock
    CSOCK=$WORK/c/containerd.sock
    wait_socket "$BSOCK"
    wait_socket "$CSOCK"
}

# busybox_on_both: the busybox fixture built offline and imported into berthd and containerd; sets IMG.
busybox_on_both() {
    sh "$(dirname "$0")/../tests/fixtures/images/build-image.sh" busybox "$WORK/fx" >/dev/null
    IMG=docker.io/library/berth-busybox:latest
    ctr --address "$BSOCK" images import "$WORK/fx/busybox-oci.tar" >/dev/null
    ctr --address "$CSOCK" images import "$WORK/fx/busybox-oci.tar" >/dev/null
}

# true_bundle: $WORK/bundle, the fixture's rootfs with runc's default spec running /bin/true (the floor)
true_bundle() {
    mkdir -p "$WORK/bundle/rootfs"
    tar -xzf "$(ls -S "$WORK"/fx/busybox-oci/blobs/sha256/* | head -1)" -C "$WORK/bundle/rootfs"
    (cd "$WORK/bundle" && runc spec && sed -i 's/"terminal": true/"terminal": false/; s/"sh"/"\/bin\/true"/' config.json)
}
