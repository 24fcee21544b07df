#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# From the busybox fixture's OCI layout, an OCI tar of docker.io/library/berth-multi:latest whose target is
# an index: first an arm64 manifest (its own config, Cmd "arm64"), then the
# fixture's manifest for the host's architecture. Prints nothing; writes OUT_TAR.
# usage: multiarch.sh OCI_DIR HOST_ARCH OUT_TAR
set -eu
src=$1 arch=$2 out=$3
w=$(mktemp -d "${TMPDIR:-/tmp}/berth-multi-XXXXXX")
trap 'rm -rf "$w"' EXIT
cp -r "$src" "$w/l"
b=$w/l/blobs/sha256
sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
m1=$(sed 's/.*"digest":"sha256:\([0-9a-f]*\)".*/\1/' "$src/index.json")
m1size=$(size "$b/$m1")
c1=$(sed 's/.*"config":{[^}]*"digest":"sha256:\([0-9a-f]*\)".*/\1/' "$b/$m1")
# the other platform's config and manifest: same layer, another Cmd
sed 's/"Cmd":\[[^]]*\]/"Cmd":["arm64"]/; s/"architecture":"[a-z0-9]*"/"architecture":"arm64"/' "$b/$c1" >"$w/c2"
c2=$(sha "$w/c2")
cp "$w/c2" "$b/$c2"
sed "s/$c1/$c2/; s/\"size\":$(size "$b/$c1"),/\"size\":$(size "$w/c2"),/" "$b/$m1" >"$w/m2"
m2=$(sha "$w/m2")
cp "$w/m2" "$b/$m2"
M=application/vnd.oci.image.manifest.v1+json
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"%s","digest":"sha256:%s","size":%s,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}},{"mediaType":"%s","digest":"sha256:%s","size":%s,"platform":{"architecture":"%s","os":"linux"}}]}' \
    $M "$m2" "$(size "$w/m2")" $M "$m1" "$m1size" "$arch" >"$w/idx"
idx=$(sha "$w/idx")
cp "$w/idx" "$b/$idx"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"docker.io/library/berth-multi:latest","org.opencontainers.image.ref.name":"latest"}}]}' \
    "$idx" "$(size "$w/idx")" >"$w/l/index.json"
(cd "$w/l" && tar -cf "$out" oci-layout index.json blobs)
