#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The crictl workflow end to end against berthd, as a user drives it: pull from a plain-HTTP registry on
# 127.0.0.1, `runp` a pod on the test's OWN bridge (bx<pid>) and subnet (10.235.<x>.0/24), `create` and
# `start` a web server and a shell container, `ps` (all, by state, by pod, by name), `exec` (output, exit
# code, stdin), `exec -it` under script(1), `attach`, `logs` (and --tail), `port-forward` (curl on
# 127.0.0.1), `stats` (the running containers with their CPU and memory), `stop`, `stopp`, `rmp` (its
# containers go too) and `rmi`; each output is checked, and after rmp and rmi nothing is left (pods,
# containers, images, records in `ctr -n k8s.io`, the bridge's address leases). Traffic goes only to
# 127.0.0.1 and the test's own pod.
# usage: cri_crictl.sh BERTHD MODULE_DIR SOURCE_DIR CRICTL
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
SRC=$3
CRICTL_BIN=$4
[ -x "$CRICTL_BIN" ] || { echo "FAIL no crictl at $CRICTL_BIN (tests/scripts/gotools.sh)"; exit 1; }
for need in /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/portmap; do
    [ -x "$need" ] || { echo "FAIL $need is missing: apt-get install containernetworking-plugins"; exit 1; }
done
command -v curl >/dev/null || { echo "FAIL curl is missing"; exit 1; }
command -v script >/dev/null || { echo "FAIL script is missing: apt-get install bsdutils"; exit 1; }
work=$(mktemp -d /tmp/berth-crictl-XXXXXX)
BR=bx$$
X=$(($$ % 200 + 20))
NET=10.235.$X
LPORT=$((30000 + $$ % 20000))
CTR="ctr --address $work/state/berthd.sock -n k8s.io"
PF_PID=""

# keep_log: on failure, berthd's whole log outlives $work (a crash's sanitizer report is longer than the
# tail fail() shows) and its sanitizer reports are printed
keep_log() {
    [ "$status" -ne 0 ] && [ -s "$work/log" ] || return 0
    keep=${TMPDIR:-/tmp}/berth-crictl-$$.log
    cp "$work/log" "$keep" && echo "berthd's log: $keep"
    grep -A40 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$work/log" | head -120 || true
}
cleanup() {
    status=$?
    [ -z "$PF_PID" ] || kill "$PF_PID" 2>/dev/null || true
    cri_teardown
    drop_rules "$NET."
    umount_under "$work"
    ip link del "$BR" 2>/dev/null || true
    keep_log
    rm -rf "$work"
    exit $status
}
PID=""
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- a registry holding berth's busybox test image ------------------------------------------------------
sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$work/fx" >/dev/null
port=$((20000 + $$ % 20000))
for _ in 1 2 3 4 5 6 7 8; do
    port=$((port + 1))
    if sh "$SRC/tests/fixtures/images/registry.sh" start "$work/reg" "$port" >"$work/reg.start" 2>&1; then
        REGISTRY_DIRS="$work/reg"
        break
    fi
    rm -rf "$work/reg"
done
[ -n "$REGISTRY_DIRS" ] || fail "registry: $(cat "$work/reg.start")"
R=127.0.0.1:$port
IMG=$R/crictl/busybox:1.0
sh "$SRC/tests/fixtures/images/build-image.sh" push-registry "$work/fx/busybox-oci" "$R" crictl/busybox:1.0 ||
    fail "push to the registry"

mkdir -p "$work/net.d" "$work/logs"
cat >"$work/berthd.yaml" <<EOF
version: 1
plugins:
  io.berth.network.v1.cni:
    conf_dir: $work/net.d
    default_network: {name: berth, bridge: $BR, subnet: $NET.0/24}
  io.containerd.transfer.v1.local:
    registries:
      $R: {server: http://$R}
EOF
cat >"$work/crictl.yaml" <<EOF
runtime-endpoint: unix://$work/state/berthd.sock
image-endpoint: unix://$work/state/berthd.sock
timeout: 20
EOF
crictl() { "$CRICTL_BIN" --config "$work/crictl.yaml" "$@"; }
"$BERTHD" --config "$work/berthd.yaml" --root "$work/root" --state "$work/state" --log-level info \
    2>>"$work/log" &
PID=$!
i=0
until crictl version >/dev/null 2>&1; do
    i=$((i + 1))
    kill -0 "$PID" 2>/dev/null || fail "berthd exited"
    [ $i -lt 200 ] || fail "berthd did not start"
    sleep 0.05
done
# step NAME: the step the checks below belong to, printed so a failure says how far the workflow got
step() { echo "step $1"; }

# --- pull -------------------------------------------------------------------------------------------------
step pull
out=$(crictl pull "$IMG" 2>&1) || fail "pull: $out"
echo "$out" | grep -q "Image is up to date for sha256:[0-9a-f]\{64\}" || fail "pull said: $out"
IMGID=${out##*sha256:}
crictl images | grep -q "^$R/crictl/busybox *1.0 *$(echo "$IMGID" | cut -c1-13)" ||
    fail "images: $(crictl images)"

# --- runp ------------------------------------------------------------------------------------------------
step runp
cat >"$work/pod.json" <<EOF
{"metadata": {"name": "crictl-pod", "namespace": "crictl", "uid": "crictl-$$", "attempt": 1},
 "hostname": "crictl-pod", "log_directory": "$work/logs", "labels": {"app": "crictl"},
 "dns_config": {"servers": ["127.0.0.53"], "searches": ["crictl.test"]},
 "port_mappings": [{"container_port": 8080, "host_port": 0}], "linux": {}}
EOF
POD=$(crictl runp "$work/pod.json") || fail "runp"
[ ${#POD} -eq 64 ] || fail "runp answered '$POD'"
sn=$(crictl inspectp "$POD") || fail "inspectp"
echo "$sn" | grep -q '"state": "SANDBOX_READY"' || fail "pod not ready: $sn"
IP=$(echo "$sn" | grep -A2 '"network"' | grep -o '"ip": "[^"]*"' | head -1 | cut -d'"' -f4)
case $IP in "$NET".*) ;; *) fail "pod IP '$IP' not in the test's $NET.0/24" ;; esac
crictl pods | grep -q "^$(echo "$POD" | cut -c1-13) .* Ready *crictl-pod *crictl *1" || fail "pods: $(crictl pods)"

# --- create, start ----------------------------------------------------------------------------------------
step create
ctr_json() { # NAME COMMAND-JSON [EXTRA-FIELDS]
    cat >"$work/$1.json" <<EOF
{"metadata": {"name": "$1"}, "image": {"image": "$IMG"}, "command": $2, "log_path": "$1.log",
 "labels": {"role": "$1"}, "envs": [{"key": "GREETING", "value": "hello-$1"}], "linux": {} ${3:-}}
EOF
}
ctr_json web '["sh", "-c", "mkdir -p /tmp/www && echo served-by-crictl > /tmp/www/index.html && echo web-up && echo web-err >&2 && exec httpd -f -p 8080 -h /tmp/www"]'
ctr_json shell '["sh"]' ', "stdin": true, "tty": true'
WEB=$(crictl create "$POD" "$work/web.json" "$work/pod.json") || fail "create web"
SHELL_C=$(crictl create "$POD" "$work/shell.json" "$work/pod.json") || fail "create shell"
crictl ps -a | grep -q "^$(echo "$WEB" | cut -c1-13) .* Created *web " || fail "created web: $(crictl ps -a)"
step start
crictl start "$WEB" "$SHELL_C" >/dev/null || fail "start"

# --- ps ------------------------------------------------------------------------------------------------
step ps
i=0
until [ "$(crictl ps -q --state running | wc -l)" -eq 2 ]; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "ps: not both running: $(crictl ps -a)"; sleep 0.1
done
# (the POD column comes from kubelet's io.kubernetes.pod.* labels, which crictl create does not set)
crictl ps | grep -q "^$(echo "$WEB" | cut -c1-13) .* Running *web *0 *$(echo "$POD" | cut -c1-13) " ||
    fail "ps: $(crictl ps)"
[ "$(crictl ps -q --name web)" = "$WEB" ] || fail "ps --name web: $(crictl ps --name web)"
[ "$(crictl ps -q --pod "$POD" | sort)" = "$(printf '%s\n%s\n' "$WEB" "$SHELL_C" | sort)" ] ||
    fail "ps --pod: $(crictl ps --pod "$POD")"
[ "$(crictl ps -q --label role=shell)" = "$SHELL_C" ] || fail "ps --label: $(crictl ps --label role=shell)"
crictl inspect "$WEB" | grep -q '"state": "CONTAINER_RUNNING"' || fail "inspect: $(crictl inspect "$WEB")"

# --- exec ---------------------------------------------------------------------------------------------
step exec
out=$(crictl exec "$WEB" sh -c 'echo $GREETING; hostname') || fail "exec: $out"
[ "$out" = "$(printf 'hello-web\ncrictl-pod')" ] || fail "exec said '$out'"
# crictl 1.37 wraps the stream's exit status in its error (and exits 1): the code is in the message
crictl exec "$WEB" sh -c 'exit 5' >/dev/null 2>"$work/e" && fail "exec 'exit 5' succeeded"
grep -q "exit code 5" "$work/e" || fail "exec 'exit 5': $(cat "$work/e")"
out=$(echo piped | crictl exec -i "$WEB" cat) || fail "exec -i"
[ "$out" = piped ] || fail "exec -i said '$out'"
out=$(crictl exec -s "$WEB" cat /etc/resolv.conf) || fail "exec -s"
echo "$out" | grep -q "nameserver 127.0.0.53" || fail "the pod's resolv.conf: $out"

# --- exec -it: a terminal (script(1) gives crictl one) ------------------------------------------------
step exec-it
script -qec "stty rows 21 cols 77; $CRICTL_BIN --config $work/crictl.yaml exec -it $WEB sh -c 'tty; stty size'" \
    /dev/null </dev/null >"$work/tty" 2>&1 || true
grep -q '/dev/pts/' "$work/tty" || fail "exec -it: no terminal: $(cat "$work/tty")"
grep -q '21 77' "$work/tty" || fail "exec -it: the window size did not arrive: $(cat "$work/tty")"

# --- attach: what is typed reaches the shell, its answer comes back ---------------------------------------
step attach
(sleep 1.5; printf 'echo attached-$((6 * 7))\n'; sleep 2; printf 'exit\n'; sleep 2) |
    script -qec "$CRICTL_BIN --config $work/crictl.yaml attach -it $SHELL_C" /dev/null >"$work/attach" 2>&1 &
APID=$!
i=0
while kill -0 $APID 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 200 ] || { kill $APID; fail "attach did not end"; }; sleep 0.1
done
grep -q 'attached-42' "$work/attach" || fail "attach: the shell's answer did not come: $(cat "$work/attach")"
i=0
until crictl inspect "$SHELL_C" | grep -q '"state": "CONTAINER_EXITED"'; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "the attached shell did not exit"; sleep 0.1
done

# --- logs --------------------------------------------------------------------------------------------
step logs
crictl logs "$WEB" >"$work/lo" 2>"$work/le" || fail "logs"
[ "$(cat "$work/lo")" = web-up ] || fail "logs stdout: $(cat "$work/lo")"
[ "$(cat "$work/le")" = web-err ] || fail "logs stderr: $(cat "$work/le")"
grep -q '^[0-9-]*T[0-9:.]*Z stdout F web-up$' "$work/logs/web.log" ||
    fail "the log file is not in the CRI format: $(cat "$work/logs/web.log")"
[ "$(crictl logs --tail 1 "$WEB" 2>&1)" = web-err ] || fail "logs --tail 1: $(crictl logs --tail 1 "$WEB" 2>&1)"
crictl logs "$SHELL_C" 2>&1 | grep -q 'attached-42' || fail "the shell's log: $(crictl logs "$SHELL_C" 2>&1)"

# --- port-forward -------------------------------------------------------------------------------------
step port-forward
crictl port-forward "$POD" "$LPORT:8080" >"$work/pf" 2>&1 &
PF_PID=$!
i=0
until grep -q Forwarding "$work/pf"; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "port-forward: $(cat "$work/pf")"; sleep 0.1
done
out=$(curl -fsS --max-time 10 "http://127.0.0.1:$LPORT/") || fail "curl through port-forward: $(cat "$work/pf")"
[ "$out" = served-by-crictl ] || fail "port-forward gave '$out'"
kill "$PF_PID"
wait "$PF_PID" 2>/dev/null || true
PF_PID=""
out=$(curl -fsS --max-time 10 "http://$IP:8080/") || fail "the pod's own address"
[ "$out" = served-by-crictl ] || fail "the pod's address gave '$out'"

# --- stats ------------------------------------------------------------------------------------------
step stats
# 20 MB the container holds in its working set: in the pod's /dev/shm (a tmpfs: its pages are charged to the
# writer's cgroup and are swap-backed, so they stay in the working set). Not a file in its layer (/tmp): those
# pages are page cache, which the kernel may keep on the inactive file list, and the working set is usage minus
# inactive_file (kubelet's and cadvisor's definition): it then reads about 1 MB, whatever berth does.
crictl exec "$WEB" sh -c 'head -c 20000000 /dev/zero >/dev/shm/fill; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done'
st=$(crictl stats -o json --id "$WEB") || fail "stats"
echo "$st" | tr -d ' \n' | grep -q "\"id\":\"$WEB\"" || fail "stats has no entry for web: $st"
mem=$(echo "$st" | tr -d ' \n' | grep -o '"workingSetBytes":{"value":"[0-9]*"' | head -1 | grep -o '[0-9]*')
[ -n "$mem" ] && [ "$mem" -gt 20000000 ] || fail "stats: web's working set '$mem' without the 20 MB in /dev/shm: $st"
use=$(echo "$st" | tr -d ' \n' | grep -o '"usageBytes":{"value":"[0-9]*"' | head -1 | grep -o '[0-9]*')
[ -n "$use" ] && [ "$use" -ge "$mem" ] || fail "stats: web's usage '$use' below its working set: $st"
cpu=$(echo "$st" | tr -d ' \n' | grep -o '"usageCoreNanoSeconds":{"value":"[0-9]*"' | head -1 | grep -o '[0-9]*')
[ -n "$cpu" ] && [ "$cpu" -gt 0 ] || fail "stats: web's CPU time '$cpu': $st"
crictl stats | grep -q "^$(echo "$WEB" | cut -c1-13) *web " || fail "stats table: $(crictl stats)"
crictl statsp -o json "$POD" 2>/dev/null | tr -d ' \n' | grep -q "\"id\":\"$POD\"" ||
    fail "statsp: $(crictl statsp "$POD" 2>&1)"

# --- stop, stopp, rmp --------------------------------------------------------------------------------
step stop
crictl stop "$WEB" >/dev/null || fail "stop"
crictl inspect "$WEB" | grep -q '"state": "CONTAINER_EXITED"' || fail "stopped web: $(crictl inspect "$WEB")"
step stopp
crictl stopp "$POD" >/dev/null || fail "stopp"
crictl inspectp "$POD" | grep -q '"state": "SANDBOX_NOTREADY"' || fail "stopped pod: $(crictl inspectp "$POD")"
crictl stopp "$POD" >/dev/null || fail "stopp twice"
curl -fsS --max-time 2 "http://$IP:8080/" >/dev/null 2>&1 && fail "the pod still serves after stopp"
step rmp
crictl rmp "$POD" >/dev/null || fail "rmp"
[ -z "$(crictl pods -q)" ] || fail "rmp left pods: $(crictl pods)"
[ -z "$(crictl ps -aq)" ] || fail "rmp left containers: $(crictl ps -a)"
[ -z "$($CTR containers ls -q)" ] || fail "rmp left records: $($CTR containers ls)"
! ls "$work"/state/*/networks/berth/"$NET".* >/dev/null 2>&1 || fail "rmp left an address lease"

# --- rmi ---------------------------------------------------------------------------------------------
step rmi
crictl rmi "$IMG" >/dev/null || fail "rmi"
[ -z "$(crictl images -q)" ] || fail "rmi left images: $(crictl images)"
[ -z "$($CTR images ls -q)" ] || fail "rmi left image records: $($CTR images ls)"
echo "PASS cri.crictl"
