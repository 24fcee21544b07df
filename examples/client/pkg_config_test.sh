#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The library as a user gets it: installed into a temp prefix, found with `pkg-config --cflags --libs
# berth-client`, the example compiled and linked against it and started (its usage line proves it loads).
# usage: pkg_config_test.sh BUILD_DIR SEED_C CC
set -eu
BUILD=$1
SEED=$2
CC=$3
work=$(mktemp -d /tmp/berth-pc-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL $*"; exit 1; }
cmake --install "$BUILD" --prefix "$work/prefix" >"$work/install.log" 2>&1 || fail "install: $(tail "$work/install.log")"
pc=$(find "$work/prefix" -name berth-client.pc | head -1)
[ -n "$pc" ] || fail "no berth-client.pc installed"
export PKG_CONFIG_PATH="$(dirname "$pc")"
flags=$(pkg-config --cflags --libs berth-client) || fail "pkg-config --cflags --libs berth-client"
# shellcheck disable=SC2086
"$CC" -o "$work/seed" "$SEED" $flags || fail "the example does not build with: $flags"
libdir=$(pkg-config --variable=libdir berth-client)
set +e
LD_LIBRARY_PATH="$libdir" "$work/seed" >"$work/out" 2>&1
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "usage:" "$work/out" || fail "the installed example did not run ($rc): $(cat "$work/out")"
echo "pkg-config berth-client: ok ($flags)"
