#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The example's seed flow against a real berthd (runc) and Debian's docker-registry on 127.0.0.1 holding the
# busybox fixture: the image's default command, a command's output and exit status, a task that runs too
# long is killed (137); nothing is left behind (container, snapshot, FIFOs).
# usage: seed_test.sh BERTHD MODULE_DIR SOURCE_DIR EXAMPLE
set -eu
BERTHD=$1
export BERTH_MODULE_DIR=$2
SRC=$3
EXAMPLE=$4
. "$SRC/tests/scripts/lib.sh"
work=$(mktemp -d /tmp/berth-example-XXXXXX)
cleanup() {
    status=$?
    for p in $(cat "$work"/state/io.containerd.runtime.v2.task/*/*/*.pid 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    stop_test_processes
    umount_under "$work"
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT
export BERTH_ADDRESS="$work/state/berthd.sock" BERTH_FIFO_DIR="$work/fifo" BERTH_NAMESPACE=example
CTR="ctr --address $BERTH_ADDRESS --namespace example"

"$BERTHD" --root "$work/root" --state "$work/state" --log-level warn 2>>"$work/log" &
PID=$!
i=0
until $CTR version >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 200 ] || fail "berthd did not start"; sleep 0.05; done

sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$work/fx" >/dev/null
port=$((20000 + $$ % 20000))
for _ in 1 2 3 4 5 6 7 8; do
    port=$((port + 1))
    if sh "$SRC/tests/fixtures/images/registry.sh" start "$work/reg" "$port" >"$work/reg.start" 2>&1; then
        REGISTRY_DIRS="$work/reg"
        break
    fi
    rm -rf "$work/reg"
done
[ -n "$REGISTRY_DIRS" ] || fail "registry did not start: $(cat "$work/reg.start")"
sh "$SRC/tests/fixtures/images/build-image.sh" push-registry "$work/fx/busybox-oci" "127.0.0.1:$port" \
    berth/busybox:1 >/dev/null 2>&1 || fail "push of the fixture into the registry"
REF="127.0.0.1:$port/berth/busybox:1"

out=$("$EXAMPLE" --plain-http "$REF") || fail "the default command: $out"
[ "$out" = "hello from berth" ] || fail "the default command printed: $out"
set +e
out=$("$EXAMPLE" --plain-http "$REF" sh -c 'echo out; echo err >&2; exit 3' 2>"$work/err")
rc=$?
set -e
[ $rc -eq 3 ] || fail "exit status 3 came back as $rc"
[ "$out" = out ] || fail "stdout: $out"
[ "$(cat "$work/err")" = err ] || fail "stderr: $(cat "$work/err")"
set +e
"$EXAMPLE" --plain-http "$REF" sleep 100
rc=$?
set -e
[ $rc -eq 137 ] || fail "a task past the wait's timeout: status $rc, not 137 (killed)"

[ -z "$($CTR containers ls -q)" ] || fail "containers left: $($CTR containers ls -q)"
! $CTR snapshots info berth-example >/dev/null 2>&1 || fail "the container's snapshot was left"
[ -z "$(ls -A "$work/fifo" 2>/dev/null)" ] || fail "FIFOs left: $(ls -A "$work/fifo")"
$CTR images ls -q | grep -qx "$REF" || fail "the pulled image is not stored"
echo "example seed flow: ok"
