#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# crash.matrix_detects: the matrix's checks can fail. One kill of the snapshot operation with --sabotage:
# after the restart a committed snapshot's directory and an image's config blob are removed by hand; the
# matrix must exit 1 (violations, not a harness failure) and name both.
# usage: detects.sh BERTHD MODULE_DIR SOURCE_DIR
set -u
out=$(mktemp /tmp/berth-crash-detects-XXXXXX)
trap 'rm -f "$out"' EXIT
bash "$(dirname "$0")/matrix.sh" "$1" "$2" "$3" --ops snapshot --kills 1 --mb 4 --sabotage snapshot,blob >"$out" 2>&1
rc=$?
cat "$out"
fail() {
    echo "FAIL $*"
    exit 1
}
[ $rc -eq 1 ] || fail "the matrix exited $rc, not 1 (violations found)"
dir=$(sed -n 's/^crash.matrix: SABOTAGE: removed \([^,]*\), the directory of committed snapshot \([^ ]*\) .*/\1 \2/p' "$out")
blob=$(sed -n 's/^crash.matrix: SABOTAGE: removed [^,]*, the blob of \([^,]*\),.*/\1/p' "$out")
[ -n "$dir" ] && [ -n "$blob" ] || fail "the sabotage did not happen"
key=${dir#* }
grep -q "^VIOLATION .*snapshot $key .*mount source ${dir%% *} does not exist" "$out" ||
    fail "no violation names the removed directory of $key"
grep -q "^VIOLATION .*committed snapshot $key .*does not mount" "$out" || fail "the broken view was not reported"
grep -q "^VIOLATION .*$blob" "$out" || fail "no violation names the removed blob $blob"
echo "crash.matrix_detects: ok"
