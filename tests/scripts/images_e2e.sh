#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Every `ctr images` workflow against berthd: import (OCI layout and docker-archive), ls/check/label/tag/rm,
# export and re-import, mount/unmount with the rootfs compared to the layer, `ctr snapshots diff`, pull and
# push with a real registry (Debian's docker-registry on 127.0.0.1), and the image.post-pull hook (a test
# module that reads each manifest and vetoes one name).
# usage: images_e2e.sh BERTHD MODULE_DIR FIXTURE_MODULE_DIR SOURCE_DIR
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
FX=$3
SRC=$4
work=$(mktemp -d /tmp/berth-images-XXXXXX)
PID=""
cleanup() {
    status=$?
    if [ -n "$PID" ] && kill "$PID" 2>/dev/null; then
        wait "$PID" || { echo "FAIL berthd exited with $? on SIGTERM:"; tail -40 "$work/log"; status=1; }
    fi
    sh "$SRC/tests/fixtures/images/registry.sh" stop "$work/reg" 2>/dev/null || true
    umount_under "$work"
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT
CTR="ctr --address $work/state/berthd.sock"
IMG=docker.io/library/berth-busybox:latest

sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$work/fx" >/dev/null

"$BERTHD" --root "$work/root" --state "$work/state" --log-level warn \
    --set "module_dirs=[\"$FX/images\"]" 2>"$work/log" &
PID=$!
i=0
until $CTR version >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 200 ] || fail "berthd did not start"; sleep 0.05; done

# --- import of an OCI layout, then the record's life ----------------------------------------------------
$CTR events >"$work/events" 2>&1 &
EVENTS=$!
sleep 0.2
$CTR images import "$work/fx/busybox-oci.tar" >/dev/null || fail "import of the OCI layout"
$CTR images ls -q | grep -qx "$IMG" || fail "imported image not listed"
$CTR images check | grep "$IMG" | grep -q "complete" || fail "images check"
grep -q "^default $IMG sha256:[0-9a-f]* layers=1$" "$work/state/test.images.v1.post-pull/post-pull.log" ||
    fail "the post-pull hook did not read the manifest"
$CTR images label "$IMG" team=berth >/dev/null
$CTR images ls "labels.team==berth" | grep -q "$IMG" || fail "label filter"
$CTR images tag "$IMG" docker.io/library/berth-busybox:v2 >/dev/null
$CTR images ls -q | grep -qx docker.io/library/berth-busybox:v2 || fail "tag"
if $CTR images tag "$IMG" docker.io/library/vetoed:1 2>"$work/err"; then fail "the hook's veto was ignored"; fi
grep -q "is not welcome" "$work/err" || fail "the veto's message did not reach the client: $(cat "$work/err")"
! $CTR images ls -q | grep -q vetoed || fail "a vetoed image was stored"
$CTR images rm docker.io/library/berth-busybox:v2 >/dev/null
! $CTR images ls -q | grep -q ":v2" || fail "rm"
sleep 0.2
kill $EVENTS
for topic in /images/create /images/update /images/delete; do
    grep -q "$topic" "$work/events" || fail "no $topic event: $(cat "$work/events")"
done

# --- hostile imports: a huge index.json, a manifest over 4 MiB; nothing stored is lost -------------------
mkdir -p "$work/hostile/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' >"$work/hostile/oci-layout"
{ printf '{"schemaVersion":2,"manifests":[],"annotations":{"x":"'; head -c 32000000 /dev/zero | tr '\0' a; printf '"}}'; } >"$work/hostile/index.json"
tar -C "$work/hostile" -cf "$work/hostile-index.tar" .
if $CTR images import "$work/hostile-index.tar" >/dev/null 2>&1; then fail "a 32 MB index.json was imported"; fi
big="$work/big5"
mkdir -p "$big/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' >"$big/oci-layout"
blob() { echo "$work/fx/busybox-oci/blobs/sha256/$1"; }
mf=$(grep -o 'sha256:[0-9a-f]*' "$work/fx/busybox-oci/index.json" | head -1 | cut -d: -f2)
cfg=$(grep -o '"config":{[^}]*}' "$(blob "$mf")" | grep -o 'sha256:[0-9a-f]*' | cut -d: -f2)
{ printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[],"annotations":{"x":"' "$cfg" "$(stat -c %s "$work/fx/busybox-oci/blobs/sha256/$cfg")"; head -c 5000000 /dev/zero | tr '\0' a; printf '"}}'; } >"$big/m.json"
md=$(sha256sum "$big/m.json" | cut -d' ' -f1)
mv "$big/m.json" "$big/blobs/sha256/$md"
cp "$work/fx/busybox-oci/blobs/sha256/$cfg" "$big/blobs/sha256/$cfg"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"docker.io/library/huge:1"}}]}' \
    "$md" "$(stat -c %s "$big/blobs/sha256/$md")" >"$big/index.json"
tar -C "$big" -cf "$work/huge-manifest.tar" .
if $CTR images import --no-unpack "$work/huge-manifest.tar" 2>"$work/err" >/dev/null; then fail "a 5 MB manifest was imported"; fi
grep -q "over the 4 MiB" "$work/err" || fail "no clear error for a 5 MB manifest: $(cat "$work/err")"
! $CTR images ls -q | grep -q huge || fail "the huge manifest's image was stored"
$CTR images check | grep "$IMG" | grep -q complete || fail "a hostile import hurt a stored image"

# --- a config whose diffID does not match the layer: the unpack aborts and leaves no snapshot behind --
bad="$work/bad-diffid"
cp -r "$work/fx/busybox-oci" "$bad"
sed 's/"diff_ids":\["sha256:[0-9a-f]*"/"diff_ids":["sha256:'"$(printf '%064d' 0)"'"/' "$(blob "$cfg")" >"$bad/config"
bcfg=$(sha256sum "$bad/config" | cut -d' ' -f1)
mv "$bad/config" "$bad/blobs/sha256/$bcfg"
sed -e "s/$cfg/$bcfg/" -e "s/\"size\":$(stat -c %s "$(blob "$cfg")"),\"/\"size\":$(stat -c %s "$bad/blobs/sha256/$bcfg"),\"/" \
    "$(blob "$mf")" >"$bad/manifest"
bmf=$(sha256sum "$bad/manifest" | cut -d' ' -f1)
mv "$bad/manifest" "$bad/blobs/sha256/$bmf"
sed -e "s/$mf/$bmf/" -e "s/\"size\":[0-9]*/\"size\":$(stat -c %s "$bad/blobs/sha256/$bmf")/" \
    -e "s/berth-busybox:latest/bad-diffid:1/" "$work/fx/busybox-oci/index.json" >"$bad/index.json"
tar -C "$bad" -cf "$work/bad-diffid.tar" oci-layout index.json blobs
before=$($CTR snapshots ls | wc -l)
if $CTR images import "$work/bad-diffid.tar" >/dev/null 2>"$work/err"; then fail "a wrong diffID was unpacked"; fi
grep -q "wrong diff id" "$work/err" || fail "no clear error for a wrong diffID: $(cat "$work/err")"
[ "$($CTR snapshots ls | wc -l)" = "$before" ] || fail "the failed unpack left a snapshot: $($CTR snapshots ls)"
$CTR images check | grep "$IMG" | grep -q complete || fail "a failed unpack hurt a stored image"
$CTR images rm docker.io/library/bad-diffid:1 >/dev/null # ctr stores the record before it unpacks

# --- the unpacked rootfs equals the layer ------------------------------------------------------------
mkdir -p "$work/mnt" "$work/layer"
$CTR images mount "$IMG" "$work/mnt" >/dev/null || fail "images mount"
tar -xzf "$(ls -S "$work"/fx/busybox-oci/blobs/sha256/* | head -1)" -C "$work/layer"
(cd "$work/layer" && find . | sort) >"$work/layer.list"
(cd "$work/mnt" && find . | sort) >"$work/mnt.list"
diff "$work/layer.list" "$work/mnt.list" >/dev/null || fail "the rootfs lists other paths than the layer"
cmp "$work/layer/bin/busybox" "$work/mnt/bin/busybox" || fail "bin/busybox differs"
[ "$(cat "$work/mnt/etc/berth-greeting")" = "hello from berth" ] || fail "greeting"
[ "$(readlink "$work/mnt/bin/sh")" = "$(readlink "$work/layer/bin/sh")" ] || fail "symlink"
$CTR images unmount --rm "$work/mnt" >/dev/null || fail "images unmount"
! grep -q " $work/mnt " /proc/mounts || fail "still mounted after unmount"

# --- ctr snapshots diff: an added file and a whiteout ---------------------------------------------------
chain=$($CTR snapshots ls | awk 'NR > 1 && $NF == "Committed" { print $1; exit }')
[ -n "$chain" ] || fail "no committed snapshot after unpack"
$CTR snapshots prepare work "$chain" >/dev/null
eval "$($CTR snapshots mounts "$work/mnt" work)"
echo added >"$work/mnt/etc/added"
rm "$work/mnt/etc/berth-greeting"
umount "$work/mnt"
$CTR snapshots diff work >"$work/diff.tgz" || fail "snapshots diff"
tar -tzf "$work/diff.tgz" >"$work/diff.list"
grep -qx "etc/added" "$work/diff.list" || fail "diff misses the added file: $(cat "$work/diff.list")"
grep -qx "etc/.wh.berth-greeting" "$work/diff.list" || fail "diff misses the whiteout"
! grep -q "busybox" "$work/diff.list" || fail "diff carries unchanged files"
$CTR snapshots rm work

# --- export, remove everything, re-import the export ---------------------------------------------------
$CTR images export "$work/export.tar" "$IMG" || fail "export"
$CTR images rm --sync "$IMG" >/dev/null
[ -z "$($CTR images ls -q)" ] || fail "images left after rm"
# the collector removed the unpacked snapshots' records, and the snapshotter their directories
[ -z "$($CTR snapshots ls | tail -n +2)" ] || fail "snapshots left after rm --sync: $($CTR snapshots ls)"
[ -z "$(ls "$work/root/io.containerd.snapshotter.v1.overlayfs/snapshots")" ] ||
    fail "snapshot directories left on disk after rm --sync"
$CTR images import "$work/export.tar" >/dev/null || fail "re-import of the export"
$CTR images check | grep "$IMG" | grep -q complete || fail "the re-imported image is incomplete"
$CTR images rm --sync "$IMG" >/dev/null

# --- docker-archive import ---------------------------------------------------------------------------
$CTR images import "$work/fx/busybox-docker.tar" >/dev/null || fail "import of the docker archive"
$CTR images ls -q | grep -qx "$IMG" || fail "docker-archive image not listed"
$CTR images check | grep "$IMG" | grep -q complete || fail "docker-archive image incomplete"

# --- ctr containers: create/ls/info/label/rm, and the container hooks (tests/fixtures/fx_containerhooks.c)
$CTR containers create "$IMG" c1 >/dev/null || fail "containers create"
$CTR containers ls -q | grep -qx c1 || fail "containers ls"
$CTR containers info c1 | grep -q '"hooked": "pre-create"' || fail "the pre-create hook did not label c1"
$CTR containers label c1 team=berth >/dev/null || fail "containers label"
$CTR containers info c1 | grep -q '"updated-by-hook": "yes"' || fail "the pre-update hook did not run"
$CTR containers ls "labels.team==berth" | grep -q c1 || fail "container label filter"
if $CTR containers label c1 forbid=yes 2>"$work/err"; then fail "the post-update veto was ignored"; fi
grep -q "may not be forbidden" "$work/err" || fail "no veto message: $(cat "$work/err")"
! $CTR containers info c1 | grep -q '"forbid"' || fail "a vetoed update was stored"
if $CTR containers create "$IMG" veto1 2>"$work/err"; then fail "the pre-create veto was ignored"; fi
grep -q "veto1 is vetoed" "$work/err" || fail "no pre-create veto message: $(cat "$work/err")"
! $CTR containers ls -q | grep -q veto1 || fail "a vetoed container was stored"
$CTR containers rm c1 >/dev/null || fail "containers rm"
[ -z "$($CTR containers ls -q)" ] || fail "containers left after rm"
$CTR snapshots rm veto1 2>/dev/null || true # ctr prepared it before the refused Create

# --- pull and push with a real registry ----------------------------------------------------------------
port=$((20000 + $$ % 20000))
sh "$SRC/tests/fixtures/images/registry.sh" start "$work/reg" "$port" >/dev/null || fail "registry"
sh "$SRC/tests/fixtures/images/build-image.sh" push-registry "$work/fx/busybox-oci" "127.0.0.1:$port" \
    berth/busybox:latest >/dev/null 2>&1 || fail "skopeo copy into the registry"
REMOTE=127.0.0.1:$port/berth/busybox:latest
$CTR images pull --plain-http "$REMOTE" >/dev/null || fail "pull"
$CTR images check | grep "$REMOTE" | grep -q complete || fail "pulled image incomplete"
$CTR images tag "$REMOTE" "127.0.0.1:$port/berth/copy:1" >/dev/null
$CTR images push --plain-http "127.0.0.1:$port/berth/copy:1" >/dev/null || fail "push"
skopeo inspect --tls-verify=false "docker://127.0.0.1:$port/berth/copy:1" >/dev/null ||
    fail "the pushed image is not in the registry"
echo "ctr images workflows: ok"
