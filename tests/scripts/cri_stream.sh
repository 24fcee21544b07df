#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The CRI streaming server end to end, with the real crictl (v1.37) against berthd: a pod on the test's
# OWN bridge and subnet (10.233.<x>.0/24); `crictl exec` over SPDY (output, exit codes, stderr, piped
# stdin) and over WebSocket (v5.channel.k8s.io); `crictl exec -it` under script(1) (a terminal, its size);
# `crictl attach -it` to a container made with stdin and tty; `crictl attach -i` seeing a line begun at once; `crictl port-forward` (SPDY, and SPDY
# tunnelled in WebSocket) to a busybox httpd in the pod, reached with curl on 127.0.0.1; a streaming URL is single-use. Traffic goes only to 127.0.0.1
# and the test's own pod.
# The Exec RPC itself through grpcc (tests/tools) and protoc: kubelet's validation (tty with stderr, no
# stream, a container that is not running), and the URL it answers taken once only.
# usage: cri_stream.sh BERTHD MODULE_DIR SOURCE_DIR CRICTL GRPCC CRI_PROTO_DIR
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
SRC=$3
CRICTL_BIN=$4
GRPCC=$5
PROTO=$6
[ -x "$CRICTL_BIN" ] || { echo "FAIL crictl is missing: $CRICTL_BIN"; exit 1; }
for need in /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/portmap; do
    [ -x "$need" ] || { echo "FAIL $need is missing: apt-get install containernetworking-plugins"; exit 1; }
done
command -v curl >/dev/null || { echo "FAIL curl is missing"; exit 1; }
work=$(mktemp -d /tmp/berth-cristream-XXXXXX)
BR=bs$$
X=$(($$ % 200 + 20))
NET=10.233.$X
LPORT=$((20000 + $$ % 20000))
CTR="ctr --address $work/state/berthd.sock -n k8s.io"
IMG=docker.io/library/berth-busybox:latest
PF_PID=""

cleanup() {
    status=$?
    set +e # every step runs, whatever the one before it did
    if [ -n "$PF_PID" ]; then kill "$PF_PID" 2>/dev/null; fi
    cri_teardown
    drop_rules "$NET."
    umount_under "$work"
    # the pod's cgroup parent (runc removed what was below it)
    for d in $(find /sys/fs/cgroup -maxdepth 2 -name "berth-cri-stream-$$" -type d 2>/dev/null); do
        find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    ip link del "$BR" 2>/dev/null || true
    rm -rf "$work"
    exit $status
}
PID=""
trap cleanup EXIT

mkdir -p "$work/net.d" "$work/logs"
cat >"$work/berthd.yaml" <<EOF
version: 1
plugins:
  io.berth.network.v1.cni:
    conf_dir: $work/net.d
    default_network: {name: berth, bridge: $BR, subnet: $NET.0/24}
  io.berth.cri.v1.cri:
    stream_address: 127.0.0.1
    stream_port: 0
EOF
cat >"$work/crictl.yaml" <<EOF
runtime-endpoint: unix://$work/state/berthd.sock
image-endpoint: unix://$work/state/berthd.sock
timeout: 20
EOF
crictl() { "$CRICTL_BIN" --config "$work/crictl.yaml" "$@"; }

"$BERTHD" --config "$work/berthd.yaml" --root "$work/root" --state "$work/state" --log-level info \
    >>"$work/log" 2>&1 &
PID=$!
i=0
until crictl version >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 200 ] || fail "berthd did not start"; sleep 0.05; done

sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$work/fx" >/dev/null
$CTR images import "$work/fx/busybox-oci.tar" >/dev/null

# --- a pod and its containers -------------------------------------------------------------------------
cat >"$work/pod.json" <<EOF
{"metadata": {"name": "stream", "namespace": "test", "uid": "stream-$$", "attempt": 0},
 "log_directory": "$work/logs", "linux": {"cgroup_parent": "/berth-cri-stream-$$"}}
EOF
ctr_json() { # name, command (JSON array), extra fields
    cat >"$work/$1.json" <<EOF
{"metadata": {"name": "$1"}, "image": {"image": "$IMG"}, "command": $2,
 "log_path": "$1.log", "linux": {} $3}
EOF
}
ctr_json sleeper '["sleep", "3600"]' ''
ctr_json shell '["sh"]' ', "stdin": true, "tty": true'
# no log_path, as critest's attach container: its output still reaches an attach
cat >"$work/once.json" <<JSON
{"metadata": {"name": "once"}, "image": {"image": "$IMG"}, "command": ["sh"], "linux": {},
 "stdin": true, "stdin_once": true}
JSON
ctr_json part '["sh"]' ', "stdin": true'
ctr_json web '["sh", "-c", "mkdir -p /tmp/www && echo served-by-the-pod > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"]' ''
POD=$(crictl runp "$work/pod.json") || fail "runp"
for c in sleeper shell once part web; do
    id=$(crictl create "$POD" "$work/$c.json" "$work/pod.json") || fail "create $c"
    crictl start "$id" >/dev/null || fail "start $c"
    eval "C_$c=$id"
done

# --- exec over SPDY (crictl's default transport) -----------------------------------------------------
out=$(crictl exec "$C_sleeper" echo hello) || fail "exec echo: $out"
[ "$out" = hello ] || fail "exec echo said '$out'"
# crictl exits 1 and names the code (client-go's CodeExitError from the v4 status's ExitCode cause)
crictl exec "$C_sleeper" sh -c 'exit 7' >/dev/null 2>"$work/e" && fail "exec exit 7 succeeded"
grep -q 'command terminated with exit code 7' "$work/e" || fail "exec exit 7: $(cat "$work/e")"
crictl exec "$C_sleeper" sh -c 'echo to-out; echo to-err >&2' >"$work/o" 2>"$work/e" || fail "exec stderr"
[ "$(cat "$work/o")" = to-out ] || fail "exec stdout: $(cat "$work/o")"
grep -qx to-err "$work/e" || fail "exec stderr: $(cat "$work/e")"
out=$(printf 'line1\nline2\n' | crictl exec -i "$C_sleeper" sh -c 'cat; echo done') || fail "exec -i"
[ "$out" = "$(printf 'line1\nline2\ndone')" ] || fail "exec -i: stdin piped gave '$out'"
big=$(crictl exec "$C_sleeper" sh -c 'seq 1 20000' | wc -l)
[ "$big" -eq 20000 ] || fail "exec: 20000 lines came as $big"

# --- exec over WebSocket (v5.channel.k8s.io) -----------------------------------------------------------
out=$(crictl exec --transport websocket "$C_sleeper" sh -c 'echo ws-out; echo ws-err >&2' 2>"$work/e") ||
    fail "exec over websocket: $out $(cat "$work/e")"
[ "$out" = ws-out ] || fail "websocket exec said '$out'"
grep -qx ws-err "$work/e" || fail "websocket exec stderr: $(cat "$work/e")"
crictl exec --transport websocket "$C_sleeper" sh -c 'exit 3' >/dev/null 2>"$work/e" &&
    fail "websocket exec exit 3 succeeded"
grep -q 'command terminated with exit code 3' "$work/e" || fail "websocket exec exit 3: $(cat "$work/e")"
out=$(echo via-ws | crictl exec --transport websocket -i "$C_sleeper" cat) || fail "websocket exec -i"
[ "$out" = via-ws ] || fail "websocket exec -i gave '$out'"

# every exec's FIFOs went with it (Tasks.DeleteProcess, then the directory)
left=$(find "$work/state/io.berth.cri.v1.cri/exec" -mindepth 1 2>/dev/null | head -3)
[ -z "$left" ] || fail "exec left behind: $left"

# --- exec -it under script(1): a terminal and its size ------------------------------------------------
script -qec "stty rows 33 cols 111; $CRICTL_BIN --config $work/crictl.yaml exec -it $C_sleeper sh -c 'tty; stty size; exit 4'" \
    /dev/null </dev/null >"$work/tty" 2>&1 || true
grep -q '/dev/pts/' "$work/tty" || fail "exec -it: no terminal: $(cat "$work/tty")"
grep -q '33 111' "$work/tty" || fail "exec -it: the size did not arrive: $(cat "$work/tty")"

# --- attach to the container with stdin and a terminal -----------------------------------------------
# script(1) gives crictl a terminal; what it types reaches the container's shell, whose echo comes back
# through the container's log; `exit` ends the container and so the attach.
(sleep 1.5; printf 'echo attached-$((6 * 7))\n'; sleep 1.5; printf 'exit\n'; sleep 3) |
    script -qec "$CRICTL_BIN --config $work/crictl.yaml attach -it $C_shell" /dev/null >"$work/attach" 2>&1 &
APID=$!
i=0
while kill -0 $APID 2>/dev/null; do i=$((i + 1)); [ $i -lt 200 ] || { kill $APID; fail "attach did not end"; }; sleep 0.1; done
grep -q 'attached-42' "$work/attach" ||
    fail "attach: the shell's answer did not come: $(cat "$work/attach"); the log: $(cat "$work/logs/shell.log")"

# --- attach without a terminal to a container with stdin_once and no log file, as critest's: its `sh` reads
# what comes, answers through the log, and the end of the client's stdin closes the container's, so `sh`
# exits and the attach ends ------------------------------------------------------------------------------
(sleep 1; printf 'echo once-$((6 * 7))\n') | timeout 20 "$CRICTL_BIN" --config "$work/crictl.yaml" attach -i "$C_once" \
    >"$work/attach-once" 2>&1 || fail "attach -i to a stdin_once container did not end: $(cat "$work/attach-once")"
grep -q 'once-42' "$work/attach-once" || fail "attach -i: no answer: $(cat "$work/attach-once")"
i=0
until crictl inspect "$C_once" | grep -q '"state": "CONTAINER_EXITED"'; do i=$((i + 1)); [ $i -lt 100 ] || fail "the stdin_once container did not exit"; sleep 0.1; done

# --- attach without a terminal sees output that does not end its line at once, as critest's attach spec
# (`echo -n hello`): the shim writes a line begun into the log as a P entry while `sh` waits for more input;
# crictl logs (kubelet's reader) shows it too -------------------------------------------------------------
mkfifo "$work/part.in"
"$CRICTL_BIN" --config "$work/crictl.yaml" attach -i "$C_part" <"$work/part.in" >"$work/attach-part" 2>&1 &
APID=$!
exec 7>"$work/part.in"
printf 'printf partial-$((6 * 7))\n' >&7
i=0
until grep -q 'partial-42' "$work/attach-part"; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "attach: a line begun did not come: $(cat "$work/attach-part"); the log: $(cat "$work/logs/part.log")"
    sleep 0.1
done
crictl inspect "$C_part" | grep -q '"state": "CONTAINER_RUNNING"' || fail "the partial-line container is not running"
[ "$(cat "$work/attach-part")" = partial-42 ] || fail "attach -i: $(cat -A "$work/attach-part")"
[ "$(crictl logs "$C_part" 2>/dev/null)" = partial-42 ] || fail "crictl logs of a line begun: $(crictl logs "$C_part" 2>&1)"
kill -9 $APID # crictl attach outlives SIGTERM, and the end of its stdin (sh has no stdin_once)
wait $APID 2>/dev/null || true
exec 7>&-

# --- port-forward to the pod's httpd: SPDY, then SPDY tunnelled in WebSocket ---------------------------
for transport in spdy websocket; do
    crictl port-forward --transport $transport "$POD" "$LPORT:8080" >"$work/pf" 2>&1 &
    PF_PID=$!
    i=0
    until grep -q Forwarding "$work/pf"; do i=$((i + 1)); [ $i -lt 100 ] || fail "port-forward ($transport): $(cat "$work/pf")"; sleep 0.1; done
    for n in 1 2; do
        out=$(curl -fsS --max-time 10 "http://127.0.0.1:$LPORT/") ||
            fail "curl through port-forward ($transport, $n): $(cat "$work/pf")"
        [ "$out" = served-by-the-pod ] || fail "port-forward ($transport) gave '$out'"
    done
    kill "$PF_PID"
    wait "$PF_PID" 2>/dev/null || true
    PF_PID=""
    LPORT=$((LPORT + 1))
done

# --- the Exec RPC: validation, and its URL is single-use -------------------------------------------------
exec_rpc() { # text-format ExecRequest, expected gRPC code; the URL into $url
    printf '%s\n' "$1" | protoc -I"$PROTO" --encode=runtime.v1.ExecRequest runtime/v1/api.proto >"$work/req.bin"
    "$GRPCC" "$work/state/berthd.sock" /runtime.v1.RuntimeService/Exec --in "$work/req.bin" \
        --out "$work/resp.bin" --expect "$2" >"$work/grpcc.out" || fail "Exec($1): $(cat "$work/grpcc.out")"
    url=""
    [ "$2" -ne 0 ] || url=$(tail -c +6 "$work/resp.bin" |
        protoc -I"$PROTO" --decode=runtime.v1.ExecResponse runtime/v1/api.proto | sed -n 's/^url: "\(.*\)"$/\1/p')
}
exec_rpc "container_id: \"$C_sleeper\" cmd: \"true\" tty: true stderr: true stdout: true" 3
exec_rpc "container_id: \"$C_sleeper\" cmd: \"true\"" 3
exec_rpc "container_id: \"0000000000000000000000000000000000000000000000000000000000000000\" cmd: \"true\" stdout: true" 5
exec_rpc "container_id: \"$C_sleeper\" cmd: \"true\" stdout: true" 0
case "$url" in http://127.0.0.1:*/exec/*) ;; *) fail "Exec answered the URL '$url'" ;; esac
upgrade() {
    curl -s -o /dev/null --max-time 2 -w '%{http_code}' -X POST -H 'Connection: Upgrade' \
        -H 'Upgrade: SPDY/3.1' -H 'X-Stream-Protocol-Version: v4.channel.k8s.io' "$1" || true
}
[ "$(upgrade "$url")" = 101 ] || fail "the URL did not upgrade to SPDY/3.1"
[ "$(upgrade "$url")" = 404 ] || fail "the URL served twice"
[ "$(upgrade "${url%/*}/nosuchtoken")" = 404 ] || fail "an unknown token was served"
echo "PASS cri.stream"
