#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Compares the ABI of abi/berth/*.h (as compiled into libberth-abi-surface.so) with the baseline in the tree.
# Any difference fails: grow BERTH_ABI_MINOR and regenerate the baseline on purpose with
#   abidw --no-corpus-path --out-file tests/abi/berth-abi.xml build/tests/libberth-abi-surface.so
# usage: check_abi.sh SURFACE_SO BASELINE_XML
set -eu
so=$1
baseline=$2
if abidiff --no-added-syms "$baseline" "$so"; then
    echo "abi: matches $baseline"
else
    rc=$?
    echo "abi: abidiff exit $rc: abi/berth changed; bump BERTH_ABI_MINOR (or MAJOR) and regenerate the baseline"
    exit 1
fi
