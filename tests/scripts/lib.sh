# SPDX-License-Identifier: Apache-2.0
# Shared by the test scripts: sourced, never run.

# umount_under DIR: unmounts everything mounted at or below DIR, deepest first (lazily when busy).
umount_under() {
    for m in $(awk -v w="$1" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
}

# fail MSG...: says what failed, shows the end of berthd's log ($work/log) and exits 1.
fail() {
    echo "FAIL $*"
    tail -20 "$work/log" 2>/dev/null
    exit 1
}
