#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# containerd 2.4.2's ctr against berthd, without a registry: its basic calls (version, plugins, images ls),
# then image import (OCI layout and docker-archive, through the Streaming and Transfer services, unpacked:
# the image's chain id is a committed snapshot and `ctr run` prints the image's greeting), tag, export
# (every blob named by its digest, index.json naming the image, docker's manifest.json) and re-import of the
# export, hostile archives refused with nothing stored, and Debian's ctr 1.6 working beside it on the same
# images.
# usage: transfer_ctr2.sh BERTHD MODULE_DIR SOURCE_DIR CTR2
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
SRC=$3
CTR2=$4
work=$(mktemp -d /tmp/berth-ctr2-XXXXXX)
trap cleanup_work EXIT
[ -x "$CTR2" ] || fail "no containerd 2.4.2 ctr at $CTR2 (tests/scripts/gotools.sh builds it)"
"$CTR2" --version | grep -q " 2\.4\.2" || fail "$CTR2 is not containerd 2.4.2's ctr: $("$CTR2" --version)"
C2="$CTR2 --address $work/state/berthd.sock"
C1="ctr --address $work/state/berthd.sock"
IMG=docker.io/library/berth-busybox:latest

sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$work/fx" >/dev/null
OCI=$work/fx/busybox-oci
manifest=$(grep -o 'sha256:[0-9a-f]*' "$OCI/index.json" | head -1)
config=$(grep -o '"config":{[^}]*}' "$OCI/blobs/sha256/${manifest#sha256:}" | grep -o 'sha256:[0-9a-f]*')
diffid=$(grep -o '"diff_ids":\["sha256:[0-9a-f]*' "$OCI/blobs/sha256/${config#sha256:}" | grep -o 'sha256:.*')

"$BERTHD" --root "$work/root" --state "$work/state" --log-level warn 2>"$work/log" &
PID=$!
i=0
until $C1 version >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 200 ] || fail "berthd did not start"; sleep 0.05; done

# --- the basic calls ------------------------------------------------------------------------------------
$C2 version >"$work/out" 2>&1 || fail "ctr 2.4.2 version: $(cat "$work/out")"
grep -q "Version: *2.4.2" "$work/out" || fail "ctr version shows no client 2.4.2"
$C2 plugins ls >"$work/plugins" 2>&1 || fail "ctr 2.4.2 plugins ls: $(cat "$work/plugins")"
for p in "io.containerd.transfer.v1 *local" "io.containerd.grpc.v1 *transfer" "io.containerd.grpc.v1 *streaming"; do
    grep -q "^$p .* ok" "$work/plugins" || fail "plugins ls: no healthy $p: $(cat "$work/plugins")"
done
$C2 images ls >/dev/null 2>&1 || fail "ctr 2.4.2 images ls"

# --- import of an OCI layout, unpacked --------------------------------------------------------------------
$C2 image import "$OCI.tar" >"$work/out" 2>&1 || fail "import of the OCI layout: $(cat "$work/out")"
grep -q "saved" "$work/out" || fail "no progress reached the client: $(cat "$work/out")"
$C2 images ls | grep -q "^$IMG .* $manifest " || fail "imported image not listed with $manifest: $($C2 images ls)"
$C2 snapshots ls | grep -q "^$diffid .*Committed" || fail "import did not unpack $diffid: $($C2 snapshots ls)"
$C1 images check | grep "$IMG" | grep -q "complete" || fail "ctr 1.6 images check: $($C1 images check)"
$C2 run --rm "$IMG" ctr2-run >"$work/run" 2>&1 || fail "ctr run: $(cat "$work/run")"
grep -q "hello from berth" "$work/run" || fail "ctr run printed: $(cat "$work/run")"

# --- tag, export, re-import of the export -----------------------------------------------------------------
$C2 image tag "$IMG" docker.io/library/berth-busybox:v2 >/dev/null || fail "tag"
$C2 images ls | grep -q "^docker.io/library/berth-busybox:v2 .* $manifest " || fail "tag: $($C2 images ls)"
$C2 image export "$work/export.tar" "$IMG" >/dev/null 2>&1 || fail "export"
mkdir "$work/export"
tar -C "$work/export" -xf "$work/export.tar" || fail "the export is not a tar"
[ "$(cat "$work/export/oci-layout")" = '{"imageLayoutVersion":"1.0.0"}' ] || fail "oci-layout"
grep -q "\"io.containerd.image.name\":\"$IMG\"" "$work/export/index.json" || fail "index.json: $(cat "$work/export/index.json")"
grep -q "\"digest\":\"$manifest\"" "$work/export/index.json" || fail "index.json names another manifest"
grep -q '"RepoTags":\["berth-busybox:latest"\]' "$work/export/manifest.json" || fail "manifest.json: $(cat "$work/export/manifest.json")"
n=0
for b in "$work"/export/blobs/sha256/*; do
    [ "$(sha256sum "$b" | cut -d' ' -f1)" = "$(basename "$b")" ] || fail "export: blob $(basename "$b") holds other bytes"
    n=$((n + 1))
done
[ $n -eq 3 ] || fail "export holds $n blobs, not 3"
$C2 image export --skip-manifest-json "$work/skip.tar" "$IMG" >/dev/null 2>&1 || fail "export --skip-manifest-json"
! tar -tf "$work/skip.tar" | grep -q manifest.json || fail "--skip-manifest-json wrote manifest.json"
$C2 image rm "$IMG" docker.io/library/berth-busybox:v2 >/dev/null
$C2 image import --no-unpack "$work/export.tar" >/dev/null 2>&1 || fail "re-import of the export"
$C2 images ls | grep -q "^$IMG .* $manifest " || fail "re-imported image: $($C2 images ls)"
$C1 images check | grep "$IMG" | grep -q "complete" || fail "the re-imported image is incomplete"

# --- ImageStore naming: --index-name names the archive's index; --digests with a base name outside the
# archive's names gives <base>@<digest> for the manifest and the index (as containerd), no tag
index=$(sha256sum "$work/export/index.json" | cut -d' ' -f1)
$C2 image import --no-unpack --index-name docker.io/library/idx:1 "$work/export.tar" >/dev/null 2>&1 || fail "--index-name"
$C2 images ls | grep -q "^docker.io/library/idx:1 .*application/vnd.oci.image.index.v1+json *sha256:$index " ||
    fail "--index-name: $($C2 images ls)"
$C2 image import --no-unpack --digests --base-name docker.io/library/based "$OCI.tar" >/dev/null 2>&1 || fail "--digests"
oindex=sha256:$(sha256sum "$OCI/index.json" | cut -d' ' -f1)
for d in "$manifest" "$oindex"; do
    $C2 images ls -q | grep -qx "docker.io/library/based@$d" || fail "--digests: no @$d: $($C2 images ls -q)"
done
! $C2 images ls -q | grep -q "^docker.io/library/based:" || fail "--base-name took a name outside it"
$C2 image rm docker.io/library/idx:1 "docker.io/library/based@$manifest" "docker.io/library/based@$oindex" >/dev/null

# --- a multi-platform index: import keeps the host's manifest (or all), export writes the wanted ones ---
sha() { sha256sum "$1" | cut -d' ' -f1; }
m=$work/multi
mkdir -p "$m/rootfs/etc" "$m/layout/blobs/sha256"
echo "arm64 only" >"$m/rootfs/etc/arm64-marker"
tar -C "$m/rootfs" --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - etc | gzip -n >"$m/layer.tgz"
printf '{"architecture":"arm64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$(gzip -dc "$m/layer.tgz" | sha256sum | cut -d' ' -f1)" >"$m/config.json"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "$(sha "$m/config.json")" "$(stat -c %s "$m/config.json")" "$(sha "$m/layer.tgz")" "$(stat -c %s "$m/layer.tgz")" >"$m/manifest.json"
amf=$(sha "$m/manifest.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"arm64","os":"linux"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"amd64","os":"linux"}}]}' \
    "$amf" "$(stat -c %s "$m/manifest.json")" "$manifest" "$(stat -c %s "$OCI/blobs/sha256/${manifest#sha256:}")" >"$m/index.json"
midx=$(sha "$m/index.json")
cp "$OCI"/blobs/sha256/* "$m/layout/blobs/sha256/"
for f in config.json layer.tgz manifest.json index.json; do cp "$m/$f" "$m/layout/blobs/sha256/$(sha "$m/$f")"; done
cp "$OCI/oci-layout" "$m/layout/"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"docker.io/library/multi:1"}}]}' \
    "$midx" "$(stat -c %s "$m/index.json")" >"$m/layout/index.json"
tar -C "$m/layout" -cf "$m/multi.tar" oci-layout index.json blobs
$C2 image import --no-unpack "$m/multi.tar" >/dev/null 2>&1 || fail "import of a multi-platform index"
$C2 images ls | grep -q "^docker.io/library/multi:1 .* sha256:$midx " || fail "multi: $($C2 images ls)"
# the index holds (gc labels) the host's manifest only: the arm64 one is left to the collector
$C1 content ls | grep "sha256:$midx" | grep -q "containerd.io/gc.ref.content.m.0=$manifest" ||
    fail "multi: the index does not hold the amd64 manifest: $($C1 content ls)"
! $C1 content ls | grep "sha256:$midx" | grep -q "sha256:$amf" || fail "the index holds arm64 without --all-platforms"
$C2 image rm docker.io/library/multi:1 >/dev/null
$C2 image import --no-unpack --all-platforms "$m/multi.tar" >/dev/null 2>&1 || fail "import --all-platforms"
$C1 content ls | grep "sha256:$midx" | grep -q "containerd.io/gc.ref.content.m.0=sha256:$amf" ||
    fail "--all-platforms: the index does not hold the arm64 manifest"
$C2 image export "$m/host.tar" docker.io/library/multi:1 >/dev/null 2>&1 || fail "export of the index"
tar -tf "$m/host.tar" | grep -q "${manifest#sha256:}" || fail "export: no amd64 manifest"
! tar -tf "$m/host.tar" | grep -q "$amf" || fail "export took the arm64 manifest by default"
tar -xOf "$m/host.tar" manifest.json | grep -q "${config#sha256:}" || fail "export: manifest.json is not the host's"
$C2 image export --platform linux/arm64 "$m/arm.tar" docker.io/library/multi:1 >/dev/null 2>&1 || fail "export --platform"
tar -tf "$m/arm.tar" | grep -q "$amf" || fail "export --platform linux/arm64: no arm64 manifest"
! tar -tf "$m/arm.tar" | grep -q "${manifest#sha256:}" || fail "export --platform linux/arm64 took amd64 too"
$C2 image export --all-platforms "$m/all.tar" docker.io/library/multi:1 >/dev/null 2>&1 || fail "export --all-platforms"
[ "$(tar -tf "$m/all.tar" | grep -c "^blobs/sha256/.")" -eq 7 ] || fail "export --all-platforms: $(tar -tf "$m/all.tar")"
$C2 image rm docker.io/library/multi:1 >/dev/null

# --- docker-archive: a manifest made from manifest.json, unpacked into the same chain ---------------------
$C2 image import "$work/fx/busybox-docker.tar" >"$work/out" 2>&1 || fail "import of the docker archive: $(cat "$work/out")"
$C2 images ls | grep "^$IMG " | grep -q "application/vnd.docker.distribution.manifest.v2+json" ||
    fail "docker archive: $($C2 images ls)"
dmanifest=$($C2 images ls | awk -v i="$IMG" '$1 == i { print $3 }')
$C1 content get "$dmanifest" | grep -q "\"digest\":\"$config\"" || fail "docker archive: the manifest names another config"
$C1 images check | grep "$IMG" | grep -q "complete" || fail "docker archive: $($C1 images check)"
$C2 snapshots ls | grep -q "^$diffid .*Committed" || fail "docker archive: no snapshot $diffid"

# --compress-blobs: the docker-archive's plain layer stored gzipped, labelled with what it holds, unpacked
$C2 image rm "$IMG" >/dev/null
$C2 snapshots rm "$diffid" >/dev/null 2>&1 || true # or the collector took it with the image
i=0
while $C2 snapshots ls | grep -q "^$diffid "; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "snapshot $diffid is still there"; sleep 0.05
done
$C2 image import --compress-blobs "$work/fx/busybox-docker.tar" >"$work/out" 2>&1 ||
    fail "import --compress-blobs: $(cat "$work/out")"
cmanifest=$($C2 images ls | awk -v i="$IMG" '$1 == i { print $3 }')
$C1 content get "$cmanifest" | grep -q "application/vnd.docker.image.rootfs.diff.tar.gzip" ||
    fail "--compress-blobs: the layer is not gzip: $($C1 content get "$cmanifest")"
$C1 content ls | grep -q "containerd.io/uncompressed=$diffid" || fail "--compress-blobs: no uncompressed label"
$C2 snapshots ls | grep -q "^$diffid .*Committed" || fail "--compress-blobs: no snapshot $diffid"
$C1 images check | grep "$IMG" | grep -q "complete" || fail "--compress-blobs: $($C1 images check)"

# --- hostile archives: nothing stored ----------------------------------------------------------------------
cp -r "$OCI" "$work/lie"
echo "not what the name says" >"$work/lie/blobs/sha256/$(printf '%064d' 0)"
sed -i "s/berth-busybox:latest/liar:1/" "$work/lie/index.json"
tar -C "$work/lie" -cf "$work/lie.tar" oci-layout index.json blobs
if $C2 image import "$work/lie.tar" >"$work/out" 2>&1; then fail "a blob unlike its name was imported"; fi
grep -q "does not hold what its name says" "$work/out" || fail "no clear error for a lying blob: $(cat "$work/out")"
! $C2 images ls -q | grep -q liar || fail "the lying archive's image was stored"
head -c 5000 /dev/urandom >"$work/junk.tar"
if $C2 image import "$work/junk.tar" >"$work/out" 2>&1; then fail "junk was imported"; fi
! $C2 images ls -q | grep -vq "berth-busybox" || fail "junk stored an image: $($C2 images ls -q)"

# --- ctr 1.6 beside it -----------------------------------------------------------------------------------
$C1 images import "$work/export.tar" >/dev/null || fail "ctr 1.6 import of ctr 2's export"
$C1 images ls -q | grep -qx "$IMG" || fail "ctr 1.6 images ls"
$C1 images tag "$IMG" docker.io/library/berth-busybox:v1 >/dev/null || fail "ctr 1.6 tag"
$C2 images ls -q | grep -qx docker.io/library/berth-busybox:v1 || fail "ctr 2 does not see ctr 1.6's tag"
$C1 images rm docker.io/library/berth-busybox:v1 >/dev/null || fail "ctr 1.6 rm"
echo "ok"
