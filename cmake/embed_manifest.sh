#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Writes a module's manifest into its ELF section .berth.manifest (abi/berth/module.h, "On demand"), so
# berthd learns its plugins without opening it. A module with no BERTH_PLUGIN_ON_DEMAND plugin gets none
# (it is opened at start anyway), nor does one berthd refuses to load (it reports why at start instead).
# usage: embed_manifest.sh BERTHD MODULE.so OBJCOPY
set -u
berthd=$1
so=$2
objcopy=$3
mf="$so.manifest"
trap 'rm -f "$mf"' EXIT
if ! ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" "$berthd" modules --manifest "$so" >"$mf" 2>/dev/null; then
    exit 0
fi
[ -s "$mf" ] || exit 0
exec "$objcopy" --remove-section .berth.manifest --add-section .berth.manifest="$mf" \
    --set-section-flags .berth.manifest=readonly,contents "$so"
