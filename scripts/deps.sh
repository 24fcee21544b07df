#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian 12 packages berth builds, tests and runs with. Idempotent; silent when all are there.
set -eu
PACKAGES="gcc make cmake pkg-config binutils libuv1-dev libyaml-dev libcriterion-dev abigail-tools clang-format
  libnghttp2-dev nghttp2-client libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev
  golang-github-containerd-containerd-dev golang-github-gogo-protobuf-dev golang-github-gogo-googleapis-dev
  containerd liblmdb-dev libssl-dev clang libbtrfsutil-dev btrfs-progs
  libarchive-dev zlib1g-dev busybox-static docker-registry skopeo runc libjson-c-dev libseccomp-dev
  libclang-rt-14-dev golang-1.19-go libcurl4-openssl-dev"

PACKAGES="$PACKAGES openssl" # test certificates of tests/scripts/registry_client.sh
PACKAGES="$PACKAGES containernetworking-plugins iptables iproute2" # the network-cni module and its tests
PACKAGES="$PACKAGES protobuf-compiler" # protoc: requests to and answers from berth's own services in tests
PACKAGES="$PACKAGES man-db" # the CLI's generated man page rendered in cli.e2e (groff-base comes with it)
PACKAGES="$PACKAGES libwslay-dev curl" # the CRI streaming server's WebSocket; curl in its end-to-end test
missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "berth: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
