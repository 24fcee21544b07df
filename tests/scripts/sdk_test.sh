#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Installs berth into a temp prefix, builds examples/hello-module out of tree with pkg-config only, and
# checks that the installed berthd finds both its own modules and the example.
# usage: sdk_test.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
tmp=$(mktemp -d /tmp/berth-sdk-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
mkdir -p "$tmp/mods"
# shellcheck disable=SC2046
cc $(pkg-config --cflags berth-module) -shared -fPIC -o "$tmp/mods/hello.so" \
    "$src/examples/hello-module/hello.c" $(pkg-config --libs berth-module)
nm -D --defined-only "$tmp/mods/hello.so" | grep -q ' T berth_module_v1_hello$'
out=$("$tmp/prefix/bin/berthd" modules --init --root "$tmp/root" --state "$tmp/state" \
    --set "module_dirs=[\"$tmp/mods\"]")
echo "$out"
echo "$out" | grep -q "io.berth.hook.v1.hello .* ok .*$tmp/mods/hello.so"
echo "$out" | grep -q "export greeting=hello"
echo "$out" | grep -q "hook daemon.pre-start priority=0 (veto)"
echo "$out" | grep -q "io.containerd.event.v1.exchange .* ok .*$tmp/prefix/lib/berth/modules/events.so"
test -f "$tmp/prefix/include/berth/module.h"
test -f "$tmp/prefix/etc/berth/berthd.yaml"
echo "sdk: ok"
