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

# A script's own processes, stopped by stop_test_processes: berthd ($PID, its log in $work/log), Go test
# helpers ($HELPER_PIDS, started by start_helper) and registries (their directories in $REGISTRY_DIRS,
# started by tests/fixtures/images/registry.sh).
PID=""
HELPER_PIDS=""
REGISTRY_DIRS=""

# stop_test_processes: stops them all; a berthd that exits non-zero on SIGTERM sets status=1.
stop_test_processes() {
    if [ -n "$PID" ] && kill "$PID" 2>/dev/null; then
        wait "$PID" || { echo "FAIL berthd exited with $? on SIGTERM:"; tail -40 "$work/log"; status=1; }
    fi
    PID=""
    for d in $REGISTRY_DIRS; do
        sh "$(dirname "$0")/../fixtures/images/registry.sh" stop "$d" >/dev/null 2>&1 || true
    done
    for p in $HELPER_PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $HELPER_PIDS; do wait "$p" 2>/dev/null || true; done
}

# cleanup_work: the EXIT trap of a script that works in $work: stops its processes, unmounts and removes
# $work, and exits with the script's status (1 when berthd did not stop cleanly).
cleanup_work() {
    status=$?
    stop_test_processes
    umount_under "$work"
    rm -rf "$work"
    exit $status
}

# start_helper NAME BINARY ARGS...: a Go test helper (tests/go) on a port of its choosing, logging to
# $work/NAME.log; sets $hport and adds its PID to $HELPER_PIDS.
start_helper() {
    name=$1 bin=$2
    shift 2
    "$bin" -port-file "$work/$name.port" "$@" >>"$work/$name.log" 2>&1 &
    HELPER_PIDS="$HELPER_PIDS $!"
    i=0
    while [ ! -s "$work/$name.port" ]; do
        i=$((i + 1))
        [ $i -lt 100 ] || fail "$name did not start: $(cat "$work/$name.log")"
        sleep 0.1
    done
    hport=$(cat "$work/$name.port")
}
