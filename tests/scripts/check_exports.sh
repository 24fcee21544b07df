#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Every module exports exactly one symbol, its entry function (brief §3).
# usage: check_exports.sh MODULE_DIR
set -eu
dir=$1
n=0
for so in "$dir"/*.so; do
    [ -e "$so" ] || continue
    n=$((n + 1))
    name=$(basename "$so" .so | tr '-' '_')
    syms=$(nm -D --defined-only "$so" | awk '{print $3}' | grep -v '^_init$\|^_fini$\|^__bss_start$\|^_edata$\|^_end$' || true)
    if [ "$syms" != "berth_module_v1_$name" ]; then
        echo "FAIL $so exports:"
        echo "$syms"
        exit 1
    fi
    echo "ok   $so exports only berth_module_v1_$name"
done
[ "$n" -gt 0 ] || { echo "FAIL no modules in $dir"; exit 1; }
