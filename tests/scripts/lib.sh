# SPDX-License-Identifier: Apache-2.0
# Shared by the test scripts: sourced, never run.

# umount_under DIR: unmounts everything mounted at or below DIR, deepest first (lazily when busy).
umount_under() {
    for m in $(awk -v w="$1" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
}

# drop_rules NET_PREFIX...: deletes the nat and filter rules that name any of the prefixes ("10.232.7."):
# those a failed run of a test left on its own subnet
drop_rules() {
    for n in "$@"; do
        for t in nat filter; do
            iptables-save -t $t 2>/dev/null | grep -F -- "$n" | sed -n 's/^-A /-D /p' |
                while read -r rule; do eval "iptables -t $t $rule" 2>/dev/null || true; done
        done
    done
}

# bridge_config FILE BRIDGE NET: a berthd config (FILE) whose default network is BRIDGE on NET.0/24, its CNI
# conf_dir $work/net.d
bridge_config() {
    mkdir -p "$work/net.d"
    cat >"$1" <<EOF
version: 1
plugins:
  io.berth.network.v1.cni:
    conf_dir: $work/net.d
    default_network: {name: berth, bridge: $2, subnet: $3.0/24}
EOF
}

# kill_test_shims: SIGKILL to every berth-shim serving $work (a failed run's)
kill_test_shims() {
    for p in $(pgrep -f "berth-shim .* $work/" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
}

# cri_teardown: the first part of a CRI test's EXIT trap: while berthd runs, its pods stopped and removed
# through crictl ($CRICTL_BIN with $work/crictl.yaml); its processes stopped; containers' inits and the
# shims of $work killed
cri_teardown() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        for p in $("$CRICTL_BIN" --config "$work/crictl.yaml" pods -q 2>/dev/null); do
            "$CRICTL_BIN" --config "$work/crictl.yaml" stopp "$p" >/dev/null 2>&1 || true
            "$CRICTL_BIN" --config "$work/crictl.yaml" rmp -f "$p" >/dev/null 2>&1 || true
        done
    fi
    stop_test_processes
    for f in "$work"/state/io.containerd.runtime.v2.task/*/*/init.pid; do
        [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
    done
    kill_test_shims
}

# crictl_config: $work/crictl.yaml for berthd's socket, and $CRICTL the crictl command that reads it
crictl_config() {
    cat >"$work/crictl.yaml" <<YAML
runtime-endpoint: unix://$work/state/berthd.sock
image-endpoint: unix://$work/state/berthd.sock
timeout: 20
YAML
    CRICTL="$CRICTL_BIN --config $work/crictl.yaml"
}

# cri_start [ARG...]: berthd with $work/berthd.yaml on $work/root and $work/state (log level info, to
# $work/log) and the ARGs, its PID in $PID; waits until crictl gets an answer (fails when berthd exits first)
cri_start() {
    "$BERTHD" --config "$work/berthd.yaml" --root "$work/root" --state "$work/state" --log-level info "$@" \
        2>>"$work/log" &
    PID=$!
    i=0
    until $CRICTL version >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 200 ] || fail "berthd did not start"
        kill -0 "$PID" 2>/dev/null || fail "berthd exited"
        sleep 0.05
    done
}

# cri_restart [ARG...]: berthd stopped (it must exit 0 on SIGTERM) and started again (cri_start ARG...)
cri_restart() {
    kill "$PID"
    wait "$PID" || fail "berthd exited with $? on SIGTERM"
    PID=""
    cri_start "$@"
}

# start_berthd_cli CONFIG [LEVEL]: berthd on $work/root and $work/state with CONFIG, logging (at LEVEL, by
# default warn) to $work/log, its PID in $PID; waits until `$B version` answers
start_berthd_cli() {
    "$BERTHD" --config "$1" --root "$work/root" --state "$work/state" --log-level "${2:-warn}" 2>>"$work/log" &
    PID=$!
    i=0
    until $B version >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 200 ] || fail "berthd did not start"; sleep 0.05; done
}

# cli_teardown: the body of the EXIT trap of a script that runs containers with the berth CLI ($B) on its
# own bridge ($BR, subnet $NET) in $work: its containers removed while berthd runs, its processes stopped,
# shims killed, rules, mounts, bridge and $work gone. The trap keeps $? in $status first and exits with it.
cli_teardown() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        for c in $($B ps -a -q 2>/dev/null); do $B rm -f "$c" >/dev/null 2>&1 || true; done
    fi
    stop_test_processes
    kill_test_shims
    drop_rules "$NET."
    umount_under "$work"
    ip link del "$BR" 2>/dev/null || true
    rm -rf "$work"
}

# reload_config FILE DISABLED [LINE]: bridge_config's file for $BR/$NET with `disabled: [DISABLED]`, and
# LINE appended when given
reload_config() {
    bridge_config "$1" "$BR" "$NET"
    sed -i "1a disabled: [$2]" "$1"
    [ -z "${3:-}" ] || printf '%s\n' "$3" >>"$1"
}

# reload: SIGHUP to berthd ($PID, logging at info to $work/log), then waits for the outcome of this reload
# in the log and sets $out to that line. Counts in $reloads (so never call it in a subshell).
reloads=0
reload() {
    reloads=$((reloads + 1))
    kill -HUP "$PID" || fail "berthd is gone before reload $reloads"
    i=0
    until [ "$(grep -c 'msg="reloaded:\|reload refused' "$work/log")" -ge $reloads ]; do
        kill -0 "$PID" 2>/dev/null || fail "berthd died during reload $reloads"
        i=$((i + 1)); [ $i -lt 600 ] || fail "reload $reloads never finished"; sleep 0.05
    done
    out=$(grep 'msg="reloaded:\|reload refused' "$work/log" | tail -1)
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

# berth_rpc SOCKET METHOD REQUEST_TYPE RESPONSE_TYPE TEXT [GRPCC_ARGS...]: one call to one of berth's own
# services (abi/proto/berth/services/<svc>/v1/<svc>.proto), the request in protobuf text format. Prints the
# response in text format, or "grpc-status S grpc-message M" when the call ended with an error the caller
# expected (--expect S). Returns 1, with grpcc's report on stderr, when the status was not the expected one.
# Needs $GRPCC (tests/tools/grpcc) and $BERTH_SRC (the source tree); protoc encodes and decodes.
berth_rpc() {
    _sock=$1 _method=$2 _req=$3 _resp=$4 _text=$5
    shift 5
    _svc=$(echo "$_req" | cut -d. -f3)
    _proto="berth/services/$_svc/v1/$_svc.proto"
    _tmp=$(mktemp -d "${work:-/tmp}/berth-rpc-XXXXXX") # in the script's $work: gone with it if killed
    printf '%s\n' "$_text" | protoc -I"$BERTH_SRC/abi/proto" -I/usr/include --encode="$_req" "$_proto" \
        >"$_tmp/req" || { rm -rf "$_tmp"; fail "berth_rpc: protoc could not encode $_req: $_text"; }
    if ! "$GRPCC" "$_sock" "$_method" --in "$_tmp/req" --out "$_tmp/resp" "$@" >"$_tmp/report"; then
        cat "$_tmp/report" >&2
        rm -rf "$_tmp"
        return 1
    fi
    _status=$(sed -n 's/^stream [0-9]* grpc-status \([0-9-]*\) .*/\1/p' "$_tmp/report")
    _rc=0
    # the answer is read whole before the temp dir goes: a reader that stops early (grep -q) must not
    # leave it behind
    if [ "$_status" = 0 ]; then
        _out=$(tail -c +6 "$_tmp/resp" |
            protoc -I"$BERTH_SRC/abi/proto" -I/usr/include --decode="$_resp" "$_proto") || _rc=$?
    else
        _out=$(sed -n 's/^stream [0-9]* grpc-status \([0-9-]*\) .* grpc-message \(.*\)/grpc-status \1 grpc-message \2/p' \
            "$_tmp/report")
    fi
    rm -rf "$_tmp"
    [ "$_rc" -eq 0 ] || return "$_rc"
    printf '%s\n' "$_out"
}
