#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Builds berth twice (plain, and ASan+UBSan) with -Werror and runs every test in both builds.
set -eu
cd "$(dirname "$0")/.."
echo "== started at $(date +%T)"
scripts/deps.sh
JOBS=$(nproc)

run_suite() {
    dir=$1
    shift
    cmake -S . -B "$dir" -DBERTH_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j"$JOBS" >/dev/null
    echo "== $dir built at $(date +%T)"
    ctest --test-dir "$dir" --output-on-failure -j"$JOBS"
}

echo "== build/ (RelWithDebInfo)"
run_suite build
# critest's counts for both runtimes (cri.critest prints them; ctest keeps a passing test's output in its log)
grep -E '^(containerd|berthd): critest|^specs containerd passes|^  (gap|fixed|new|stale): ' \
    build/Testing/Temporary/LastTest.log 2>/dev/null || true
echo "== build-asan/ (ASan+UBSan)"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite build-asan -DBERTH_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
