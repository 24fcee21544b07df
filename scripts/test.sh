#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Builds berth twice (plain, and ASan+UBSan) with -Werror and runs every test in both builds.
set -eu
cd "$(dirname "$0")/.."
echo "== started at $(date +%T)"
scripts/deps.sh
JOBS=$(nproc)

# build_tree DIR CMAKE_ARGS...: configures and builds DIR (the compilers at low priority when NICE is set)
build_tree() {
    dir=$1
    shift
    cmake -S . -B "$dir" -DBERTH_WERROR=ON "$@" >/dev/null
    ${NICE:-} cmake --build "$dir" -j"$JOBS" >/dev/null
    echo "== $dir built at $(date +%T)"
}

echo "== build/ (RelWithDebInfo)"
build_tree build
# The sanitizer tree builds while the plain suite runs, its compilers at low priority: most of that suite
# waits on processes it started (runc, CNI plugins, critest's containers), not on the CPU.
(NICE="nice -n 10" build_tree build-asan -DBERTH_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug 2>build/asan-build.log) &
ASAN_BUILD=$!
plain=0
ctest --test-dir build --output-on-failure -j"$JOBS" || plain=$?
# critest's counts for both runtimes (cri.critest prints them; ctest keeps a passing test's output in its log)
grep -E '^(containerd|berthd): critest|^specs containerd passes|^  (gap|fixed|new|stale): ' \
    build/Testing/Temporary/LastTest.log 2>/dev/null || true
asan=0
wait "$ASAN_BUILD" || asan=$?
[ "$plain" -eq 0 ] || exit "$plain"
[ "$asan" -eq 0 ] || { echo "== build-asan/ failed to build:"; tail -50 build/asan-build.log; exit "$asan"; }
echo "== build-asan/ (ASan+UBSan)"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j"$JOBS"
