#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each for a fixed number of inputs from a
# fixed seed, so a CI run is repeatable; any crash, leak or blow-up fails. Longer hunts: RUNS=-1 SECONDS=600.
# usage: fuzz.sh SOURCE_DIR DEFAULT_CONFIG_C [RUNS]
set -eu
src=$1
defcfg=$2
runs=${3:-200000}
secs=${SECONDS_LIMIT:-600}
work=$(mktemp -d /tmp/berth-fuzz-XXXXXX)
trap 'rm -rf "$work"' EXIT
CFLAGS="-g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
# shellcheck disable=SC2086
clang $CFLAGS -I"$src/abi" -I"$src/core" $(pkg-config --cflags libuv yaml-0.1) -o "$work/fuzz_config" \
    "$src/tests/fuzz/fuzz_config.c" "$src/core/config.c" "$src/core/config_node.c" "$src/core/util.c" \
    "$src/core/error.c" "$src/core/log.c" "$defcfg" -lyaml
# shellcheck disable=SC2086
clang $CFLAGS -I"$src/modules/common" -o "$work/fuzz_filters" "$src/tests/fuzz/fuzz_filters.c" \
    "$src/modules/common/filters.c"
mkdir -p "$work/config" "$work/filters"
cp "$src/config/berthd.yaml" "$work/config/"
printf 'version: 1\nplugins:\n  io.x.v1.p: {name: a, count: 0x10, list: [a, "b"]}\n' >"$work/config/plugins.yaml"
printf 'topic=="/tasks/exit"\nnamespace==default,topic~=/^\\/images\\//\n' >"$work/filters/seed"
for t in config filters; do
    echo "fuzzing $t: $runs inputs"
    "$work/fuzz_$t" -seed=1 -runs="$runs" -max_total_time="$secs" -max_len=4096 -artifact_prefix="$work/" \
        "$work/$t" >"$work/$t.log" 2>&1 ||
        { tail -40 "$work/$t.log"; exit 1; }
    grep -E "^#[0-9]+.*DONE" "$work/$t.log" | tail -1 || true
done
echo "fuzz: no crash"
