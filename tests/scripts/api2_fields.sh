#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Fields containerd 2.x's protos added to services berth serves (docs/containerd2.md), sent hand-encoded
# with grpcc since berth's 1.6 protos and Debian's ctr know none of them:
#   Images.Delete's target, Container.sandbox through Create/Get/List/Update, Tasks.Create's
#   task_api_address, Snapshots.Commit's parent, Diff.Apply's sync_fs, Introspection.PluginInfo.
# usage: api2_fields.sh BERTHD MODULE_DIR SOURCE_DIR GRPCC
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
SRC=$3
GRPCC=$4
work=$(mktemp -d /tmp/berth-api2-XXXXXX)
trap cleanup_work EXIT
SOCK=$work/state/berthd.sock
CTR="ctr --address $SOCK"

# ---- protobuf by hand: hex of a string, a varint, a tagged field -----------------------------------------
hexs() { printf %s "$1" | od -An -v -tx1 | tr -d ' \n'; }
varint() {
    v=$1
    out=""
    while [ "$v" -ge 128 ]; do
        out="$out$(printf %02x $((v % 128 + 128)))"
        v=$((v / 128))
    done
    printf %s "$out$(printf %02x "$v")"
}
# ld TAG HEX: a length-delimited field; str TAG TEXT; vi TAG N: a varint field
ld() { printf %s "$(varint $(($1 * 8 + 2)))$(varint $((${#2} / 2)))$2"; }
str() { ld "$1" "$(hexs "$2")"; }
vi() { printf %s "$(varint $(($1 * 8)))$(varint "$2")"; }
# call METHOD HEX EXPECTED_CODE: the response line (fails the test on another status)
call() {
    "$GRPCC" "$SOCK" "$1" --ns default --hex "$2" --expect "$3" >"$work/out" 2>&1 ||
        { fail "$1 did not answer $3: $(cat "$work/out")"; } >&2
    cat "$work/out"
}

"$BERTHD" --root "$work/root" --state "$work/state" --log-level debug 2>"$work/log" &
PID=$!
i=0
until $CTR version >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 200 ] || fail "berthd did not start"; sleep 0.05; done

# ---- Images.Delete with target (3): only while the record's target digest is that one -------------------
D1=sha256:$(printf one | sha256sum | cut -d' ' -f1)
D2=sha256:$(printf two | sha256sum | cut -d' ' -f1)
MT=application/vnd.oci.image.manifest.v1+json
target() { ld 3 "$(str 1 $MT)$(str 2 "$1")$(vi 3 3)"; }
call /containerd.services.images.v1.Images/Create "$(ld 1 "$(str 1 berth/api2:1)$(target "$D1")")" 0 >/dev/null
out=$(call /containerd.services.images.v1.Images/Delete "$(str 1 berth/api2:1)$(target "$D2")" 5)
echo "$out" | grep -q "has target $D1, not $D2" || fail "Delete with another target: $out"
$CTR images ls -q | grep -qx berth/api2:1 || fail "Delete with another target deleted the image"
call /containerd.services.images.v1.Images/Delete "$(str 1 berth/api2:1)$(target "$D1")" 0 >/dev/null
! $CTR images ls -q | grep -qx berth/api2:1 || fail "Delete with the image's target left it"
echo "ok images: Delete's target"

# ---- Container.sandbox (11): stored, returned by Get and List, immutable through Update -----------------
SPEC=$(ld 5 "$(str 1 types.containerd.io/opencontainers/runtime-spec/1/Spec)$(str 2 '{}')")
C="$(str 1 c1)$(ld 4 "$(str 1 io.containerd.runc.v2)")$SPEC$(str 11 sb-berth-1)"
call /containerd.services.containers.v1.Containers/Create "$(ld 1 "$C")" 0 | grep -q sb-berth-1 ||
    fail "Create did not answer the sandbox: $(cat "$work/out")"
call /containerd.services.containers.v1.Containers/Get "$(str 1 c1)" 0 | grep -q sb-berth-1 ||
    fail "Get did not answer the sandbox"
call /containerd.services.containers.v1.Containers/List "" 0 | grep -q sb-berth-1 ||
    fail "List did not answer the sandbox"
# a full replace keeps it (containerd: not among the fields a replace touches); the path is refused
U="$(str 1 c1)$(ld 4 "$(str 1 io.containerd.runc.v2)")$SPEC$(str 11 sb-other)"
out=$(call /containerd.services.containers.v1.Containers/Update "$(ld 1 "$U")" 0)
echo "$out" | grep -q sb-berth-1 || fail "Update changed or dropped the sandbox: $out"
out=$(call /containerd.services.containers.v1.Containers/Update "$(ld 1 "$U")$(ld 2 "$(str 1 sandbox)")" 3)
echo "$out" | grep -q "cannot update sandbox field" || fail "Update of the sandbox path: $out"
echo "ok containers: sandbox"

# ---- Tasks.Create with task_api_address (11): refused, not run elsewhere ------------------------------
out=$(call /containerd.services.tasks.v1.Tasks/Create "$(str 1 c1)$(str 11 unix:///run/sb.sock)" 12)
echo "$out" | grep -q "task_api_address unix:///run/sb.sock" || fail "Tasks.Create: $out"
# the deprecated place containerd 2.x still reads: the runc options' task_api_address (12)
RO=$(ld 9 "$(str 1 containerd.runc.v1.Options)$(ld 2 "$(vi 1 1)$(str 12 unix:///run/sb2.sock)")")
out=$(call /containerd.services.tasks.v1.Tasks/Create "$(str 1 c1)$RO" 12)
echo "$out" | grep -q "task_api_address unix:///run/sb2.sock" || fail "Tasks.Create, runc options: $out"
echo "ok tasks: task_api_address"

# ---- Snapshots.Commit with parent (5): the current parent is accepted, a rebase is not implemented -----
SN=/containerd.services.snapshots.v1.Snapshots
# labels (4) with containerd.io/gc.root, or the collector takes the unreferenced snapshots
ROOT=$(ld 4 "$(str 1 containerd.io/gc.root)$(str 2 1)")
call $SN/Prepare "$(str 1 overlayfs)$ROOT$(str 2 k1)" 0 >/dev/null
call $SN/Commit "$(str 1 overlayfs)$ROOT$(str 2 c1)$(str 3 k1)" 0 >/dev/null
call $SN/Prepare "$(str 1 overlayfs)$ROOT$(str 2 k2)$(str 3 c1)" 0 >/dev/null
call $SN/Commit "$(str 1 overlayfs)$ROOT$(str 2 c2)$(str 3 k2)$(str 5 c1)" 0 >/dev/null
call $SN/Prepare "$(str 1 overlayfs)$ROOT$(str 2 k3)$(str 3 c1)" 0 >/dev/null
out=$(call $SN/Commit "$(str 1 overlayfs)$ROOT$(str 2 c3)$(str 3 k3)$(str 5 c2)" 3)
echo "$out" | grep -q "cannot change parent" || fail "Commit onto another parent: $out"
call $SN/Prepare "$(str 1 overlayfs)$ROOT$(str 2 k4)" 0 >/dev/null
out=$(call $SN/Commit "$(str 1 overlayfs)$ROOT$(str 2 c4)$(str 3 k4)$(str 5 c1)" 12)
echo "$out" | grep -q "cannot rebase" || fail "Commit with a rebase: $out"
$CTR snapshots ls | grep -q "^k4 " || fail "the refused rebase did not leave the active snapshot"
echo "ok snapshots: Commit's parent"

# ---- Diff.Apply with sync_fs (4): the target's filesystem is synced, and said so in the debug log -----
mkdir -p "$work/layer/etc" "$work/target"
echo berth >"$work/layer/etc/api2"
tar -C "$work/layer" -cf "$work/layer.tar" etc
LD=sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
LS=$(stat -c %s "$work/layer.tar")
$CTR content ingest --expected-size "$LS" --expected-digest "$LD" api2-layer <"$work/layer.tar" ||
    fail "content ingest"
LMT=application/vnd.oci.image.layer.v1.tar
apply() { printf %s "$(ld 1 "$(str 1 $LMT)$(str 2 "$LD")$(vi 3 "$LS")")$(ld 2 "$(str 1 bind)$(str 2 "$1")$(str 4 rbind)$(str 4 rw)")$2"; }
call /containerd.services.diff.v1.Diff/Apply "$(apply "$work/target" "")" 0 >/dev/null
[ "$(cat "$work/target/etc/api2")" = berth ] || fail "Apply did not write the layer"
! grep -q "synced the filesystem of $work/target" "$work/log" || fail "Apply without sync_fs synced"
mkdir -p "$work/target2"
call /containerd.services.diff.v1.Diff/Apply "$(apply "$work/target2" "$(vi 4 1)")" 0 >/dev/null
[ "$(cat "$work/target2/etc/api2")" = berth ] || fail "Apply with sync_fs did not write the layer"
grep -q "synced the filesystem of $work/target2" "$work/log" || fail "Apply with sync_fs did not sync"
echo "ok diff: Apply's sync_fs"

# ---- Introspection.PluginInfo: the plugin's row, NotFound for an unknown one, no extra info ------------
IN=/containerd.services.introspection.v1.Introspection/PluginInfo
call $IN "$(str 1 io.containerd.grpc.v1)$(str 2 introspection)" 0 | grep -q "io.containerd.grpc.v1.*introspection" ||
    fail "PluginInfo did not answer the plugin"
out=$(call $IN "$(str 1 io.containerd.grpc.v1)$(str 2 nosuch)" 5)
echo "$out" | grep -q "plugin io.containerd.grpc.v1.nosuch not found" || fail "PluginInfo of none: $out"
call $IN "$(str 1 io.containerd.grpc.v1)$(str 2 introspection)$(ld 3 "$(str 1 x)")" 12 >/dev/null
echo "ok introspection: PluginInfo"

# ---- containerd 2.4.2's ctr, when the test build made it ---------------------------------------------
if [ -x "$SRC/.gotools/bin/ctr" ]; then
    CTR2="$SRC/.gotools/bin/ctr --address $SOCK"
    $CTR2 containers info c1 | grep -q '"SandboxID": "sb-berth-1"' || fail "ctr 2.4.2 did not see the sandbox"
    echo "ok ctr 2.4.2: containers info shows the sandbox"
    $CTR2 info >"$work/info" || fail "ctr 2.4.2 info"
    grep -q "\"pid\": $PID," "$work/info" || fail "ctr info has not berthd's pid: $(cat "$work/info")"
    grep -q "\"pidns\": $(stat -L -c %i /proc/$PID/ns/pid)\$" "$work/info" ||
        fail "ctr info has not berthd's pid namespace: $(cat "$work/info")"
    [ -z "$($CTR2 deprecations list)" ] || fail "deprecations listed"
    echo "ok ctr 2.4.2: info's pid and pidns, no deprecations"
fi
echo PASS
