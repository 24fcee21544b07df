#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# critest (cri-tools v1.37.0) against berthd's CRI and, in the same run on the same machine, against Debian's
# containerd 1.6.20 with its CRI plugin: the yardstick. Both runtimes get the same images (critest's own
# names, built offline by tests/fixtures/images/critest-images.sh and served by a plain-HTTP registry on
# 127.0.0.1 that each runtime's hosts configuration maps registry.k8s.io, gcr.io and k8s.gcr.io to), each its
# own root, state, socket, bridge (btc<pid> and btb<pid>) and subnet (10.234.<x>.0/24 and 10.234.<x+1>.0/24)
# through the CNI plugins in /usr/lib/cni. Prints passed/failed/skipped for each runtime and every spec
# containerd passes but berthd does not; fails when such a spec is not in tests/fixtures/cri/known-failing.txt
# (the gap while the CRI module is incomplete; it must shrink), and reports listed specs that now pass.
#
# Why not critest's --registry-prefix: PrepareImageName (pkg/framework/util.go) keeps only the repository
# path of a reference under the prefix, dropping its tag or digest (every image becomes :latest), and the
# image specs compare repo tags with the unprefixed names. Mapping the registry hosts keeps every reference
# as critest wrote it.
# usage: critest.sh BERTHD MODULE_DIR SOURCE_DIR TOOLS_BIN PAUSE
#   TOOLS_BIN holds critest and crictl (tests/scripts/gotools.sh), PAUSE is berth's pause program (the
#   sandbox image of containerd is built from it).
# Environment: CRITEST_RUNTIMES (default "containerd berthd"), CRITEST_FOCUS (a ginkgo focus regexp, to run a
# part while debugging), CRITEST_SEQUENTIAL=1 (one runtime after the other instead of both at once: the time
# each takes alone), CRITEST_KEEP=DIR (critest's outputs and reports are copied there).
set -eu
export LC_ALL=C # sort and comm agree on the order of spec names
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
SRC=$3
TOOLS=$(cd "$4" && pwd)
PAUSE=$5
RUNTIMES=${CRITEST_RUNTIMES:-containerd berthd}
CRITEST=$TOOLS/critest
CRICTL=$TOOLS/crictl
KNOWN=$SRC/tests/fixtures/cri/known-failing.txt
for need in "$CRITEST" "$CRICTL"; do
    [ -x "$need" ] || { echo "FAIL no $need (tests/scripts/gotools.sh builds it)"; exit 1; }
done
for need in /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/portmap /usr/lib/cni/loopback; do
    [ -x "$need" ] || { echo "FAIL $need is missing: apt-get install containernetworking-plugins"; exit 1; }
done
command -v containerd >/dev/null || { echo "FAIL containerd is missing: apt-get install containerd"; exit 1; }
work=$(mktemp -d /tmp/berth-critest-XXXXXX)
X=$(($$ % 100 * 2 + 20))
NETC=10.234.$X
NETB=10.234.$((X + 1))
BRC=btc$$
BRB=btb$$
CD_PID=""

# crictl_on SOCKET ARGS...
crictl_on() {
    _s=$1
    shift
    "$CRICTL" --runtime-endpoint "unix://$_s" --image-endpoint "unix://$_s" --timeout 20s "$@"
}

# Everything either runtime made goes, also after a failure half-way: pods (their netns, veths, iptables
# rules), the daemons, shims and container processes, mounts, bridges.
cleanup() {
    status=$?
    for sock in "$work/containerd/containerd.sock" "$work/state/berthd.sock"; do
        [ -S "$sock" ] || continue
        for p in $(crictl_on "$sock" pods -q 2>/dev/null); do
            crictl_on "$sock" stopp "$p" >/dev/null 2>&1 || true
            crictl_on "$sock" rmp "$p" >/dev/null 2>&1 || true
        done
    done
    if [ -n "$CD_PID" ] && kill "$CD_PID" 2>/dev/null; then wait "$CD_PID" 2>/dev/null || true; fi
    stop_test_processes
    for p in $(pgrep -f "containerd-shim-runc-v2 .*$work/" 2>/dev/null) \
        $(pgrep -f "berth-shim .*$work/" 2>/dev/null); do
        kill -9 "$p" 2>/dev/null || true
    done
    for net in "$NETC" "$NETB"; do
        for t in nat filter; do
            iptables-save -t $t 2>/dev/null | grep -F -- "$net." | sed -n 's/^-A /-D /p' |
                while read -r rule; do eval "iptables -t $t $rule" 2>/dev/null || true; done
        done
    done
    umount_under "$work"
    ip link del "$BRC" 2>/dev/null || true
    ip link del "$BRB" 2>/dev/null || true
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# CRITEST_REPORTS=DIR: no runtime, no critest: the reports a CRITEST_KEEP run left in DIR are compared again
# (the allowlist's effect, checked without a 15-minute run)
if [ -n "${CRITEST_REPORTS:-}" ]; then
    cp "$CRITEST_REPORTS"/*.xml "$work"/
    RUNTIMES="containerd berthd"
fi

# --- the registry and critest's images -------------------------------------------------------------------
start_registry() {
    port=$((20000 + $$ % 20000))
    for _ in 1 2 3 4 5 6 7 8; do
        port=$((port + 1))
        if sh "$SRC/tests/fixtures/images/registry.sh" start "$work/reg" "$port" >"$work/reg.start" 2>&1; then
            REGISTRY_DIRS="$work/reg"
            break
        fi
        rm -rf "$work/reg"
    done
    [ -n "$REGISTRY_DIRS" ] || fail "the registry did not start: $(cat "$work/reg.start")"
    REG=127.0.0.1:$port
    [ -x "$PAUSE" ] || fail "no pause program at $PAUSE"
    sh "$SRC/tests/fixtures/images/critest-images.sh" "$work/images" "$REG" "$PAUSE" >"$work/images.log" 2>&1 ||
        fail "critest's images: $(cat "$work/images.log")"
    HOSTS="registry.k8s.io gcr.io k8s.gcr.io docker.io"
}

# --- containerd 1.6 with its CRI plugin ------------------------------------------------------------------
start_containerd() {
    c=$work/containerd
    mkdir -p "$c/net.d"
    for h in $HOSTS; do
        mkdir -p "$c/certs.d/$h"
        # 1.6.20 refuses a hosts.toml without a host tree ("invalid `host` tree") and then goes to the
        # real registry: the local one is both the mirror and the server
        printf 'server = "http://%s"\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' "$REG" "$REG" \
            >"$c/certs.d/$h/hosts.toml"
    done
    cat >"$c/net.d/10-critest.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "critest-containerd", "plugins": [
  {"type": "bridge", "bridge": "$BRC", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$NETC.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": "$c/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOF
    cat >"$c/config.toml" <<EOF
version = 2
root = "$c/root"
state = "$c/state"
plugin_dir = ""
[grpc]
  address = "$c/containerd.sock"
[ttrpc]
  address = "$c/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.6"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # this machine withholds CAP_SYS_RESOURCE: the pause's oom_score_adj -998 fails in runc ("can't get
  # final child's PID from pipe"); restricted, it is never below containerd's own
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$c/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$c/certs.d"
EOF
    containerd --config "$c/config.toml" >>"$c/log" 2>&1 &
    CD_PID=$!
    i=0
    until crictl_on "$c/containerd.sock" info >"$c/info" 2>&1; do
        i=$((i + 1))
        kill -0 "$CD_PID" 2>/dev/null || { tail -30 "$c/log"; fail "containerd exited"; }
        [ $i -lt 300 ] || { tail -30 "$c/log"; cat "$c/info"; fail "containerd did not start"; }
        sleep 0.1
    done
}

# --- berthd with the cri module --------------------------------------------------------------------------
start_berthd() {
    mkdir -p "$work/net.d"
    {
        echo "version: 1"
        echo "plugins:"
        echo "  io.berth.network.v1.cni:"
        echo "    conf_dir: $work/net.d"
        echo "    default_network: {name: berth, bridge: $BRB, subnet: $NETB.0/24}"
        echo "  io.containerd.transfer.v1.local:"
        echo "    registries:"
        for h in $HOSTS; do echo "      $h: {server: http://$REG}"; done
    } >"$work/berthd.yaml"
    "$BERTHD" --config "$work/berthd.yaml" --root "$work/root" --state "$work/state" --log-level info \
        2>>"$work/log" &
    PID=$!
    i=0
    until crictl_on "$work/state/berthd.sock" version >/dev/null 2>&1; do
        i=$((i + 1))
        kill -0 "$PID" 2>/dev/null || fail "berthd exited"
        [ $i -lt 300 ] || fail "berthd did not start"
        sleep 0.1
    done
}

# run_critest NAME SOCKET REPORT [GINKGO FLAGS...]: critest's validation suite (one ginkgo process: critest's
# -parallel defaults to 1, and ginkgo refuses the flag when it is given), its JUnit reports in
# $work/REPORT.<n>.xml, its output in $work/REPORT.out, its wall time (seconds) added to $work/NAME.time.
# A spec can hang (a stream nobody ends has no deadline in critest's client): when critest prints nothing
# for $STALL seconds (containerd's slowest spec takes 8 s here) it is interrupted (ginkgo reports the spec as interrupted, the rest as skipped) and
# started again without the specs that already ran.
STALL=${CRITEST_STALL:-150}
run_critest() {
    _t0=$(date +%s)
    _name=$1 _sock=$2 _rep=$3
    shift 3
    _n=0
    : >"$work/$_rep.skip"
    while :; do
        _n=$((_n + 1))
        # skip flags for the specs that already ran, one per spec (ginkgo ORs them)
        _skips=$(sed 's/[][\\.*+?(){}|^$]/\\&/g; s/^/-ginkgo.skip=/' "$work/$_rep.skip")
        # critest writes temporary files relative to its working directory
        # shellcheck disable=SC2086
        (
            IFS='
'
            set -f
            cd "$work" && exec "$CRITEST" -runtime-endpoint "unix://$_sock" -image-endpoint "unix://$_sock" \
                -test-images-file "$work/images/test-images.yaml" -ginkgo.junit-report "$work/$_rep.$_n.xml" \
                -ginkgo.no-color -ginkgo.timeout 40m "$@" $_skips
        ) >>"$work/$_rep.out" 2>&1 &
        _cpid=$!
        _stalled="" _size=-1 _quiet=0
        while kill -0 "$_cpid" 2>/dev/null; do
            sleep 5
            _now=$(stat -c %s "$work/$_rep.out" 2>/dev/null || echo 0)
            if [ "$_now" = "$_size" ]; then _quiet=$((_quiet + 5)); else _quiet=0 _size=$_now; fi
            if [ "$_quiet" -ge "$STALL" ]; then
                echo "critest.sh: $_rep: no progress for ${STALL}s, interrupting critest" | tee -a "$work/$_rep.out"
                _stalled=1
                kill -INT "$_cpid" 2>/dev/null || true
                _i=0
                while kill -0 "$_cpid" 2>/dev/null && [ $_i -lt 24 ]; do _i=$((_i + 1)); sleep 5; done
                kill -KILL "$_cpid" 2>/dev/null || true
                break
            fi
        done
        wait "$_cpid" 2>/dev/null || true
        [ -n "$_stalled" ] && [ -s "$work/$_rep.$_n.xml" ] && [ $_n -lt 5 ] || break
        # every spec that ran (the hung one is "interrupted"), as ginkgo's full text: the JUnit name
        # without "[It] " and the [Serial] decorator
        results "$_rep.$_n" | grep -v '^skipped' | cut -f2 | sed 's/ \[It\] / /; s/ \[Serial\]$//' \
            >>"$work/$_rep.skip"
    done
    echo $(($(cat "$work/$_name.time" 2>/dev/null || echo 0) + $(date +%s) - _t0)) >"$work/$_name.time"
}

# results REPORT...: "STATE<TAB>spec name" for every spec of the reports $work/REPORT.xml and
# $work/REPORT.<n>.xml (ginkgo's JUnit: one testcase per spec, its state in the status attribute; names
# unescaped); a spec that ran in one report and is skipped in another has the state it ran with
results() {
    for _r in "$@"; do
        for _f in "$work/$_r".xml "$work/$_r".[0-9]*.xml; do
            [ -f "$_f" ] || continue
            sed -n 's/.*<testcase name="\([^"]*\)" classname="[^"]*" status="\([a-z]*\)".*/\2\t\1/p' "$_f" |
                grep -v '	\[\(BeforeSuite\|AfterSuite\|SynchronizedBeforeSuite\|SynchronizedAfterSuite\|ReportAfterSuite\)\]' |
                sed 's/^\([a-z]*\)\t\[It\] /\1\t/; s/&#34;/"/g; s/&#39;/'"'"'/g; s/&lt;/</g; s/&gt;/>/g; s/&amp;/\&/g'
        done
    done | awk -F '\t' '!($2 in st) || st[$2] == "skipped" { st[$2] = $1 } END { for (n in st) print st[n] "\t" n }' |
        sort -t '	' -k2
}
summary() {
    printf '%s: critest %s passed, %s failed, %s skipped (of %s) in %ss\n' "$1" \
        "$(grep -c '^passed' "$work/$1.res" || true)" \
        "$(grep -c '^\(failed\|panicked\|timedout\|interrupted\|aborted\)' "$work/$1.res" || true)" \
        "$(grep -c '^\(skipped\|pending\)' "$work/$1.res" || true)" "$(wc -l <"$work/$1.res")" \
        "$(cat "$work/$1.time" 2>/dev/null || echo '?')"
}

if [ -z "${CRITEST_REPORTS:-}" ]; then
    start_registry
    for r in $RUNTIMES; do
        case $r in
        containerd) start_containerd ;;
        berthd) start_berthd ;;
        *) fail "unknown runtime $r (containerd, berthd)" ;;
        esac
    done
fi
sock_of() { if [ "$1" = containerd ]; then echo "$work/containerd/containerd.sock"; else echo "$work/state/berthd.sock"; fi; }
# Both runtimes at once nearly halve the wall time on 2 cores. Three specs use fixed host ports (12000 for a
# port mapping, 12001 and 12002 for port-forward listeners, 12003 for a host-network server): they would
# collide, so they run afterwards, one runtime after the other.
HOSTPORT='port mapping with host port and container port|runtime should support portforward'
if [ -n "${CRITEST_REPORTS:-}" ]; then
    :
elif [ -n "${CRITEST_FOCUS:-}" ]; then
    for r in $RUNTIMES; do run_critest "$r" "$(sock_of "$r")" "$r" -ginkgo.focus "$CRITEST_FOCUS"; done
else
    if [ -n "${CRITEST_SEQUENTIAL:-}" ]; then
        for r in $RUNTIMES; do run_critest "$r" "$(sock_of "$r")" "$r" -ginkgo.skip "$HOSTPORT"; done
    else
        # (waited for by PID: a bare wait would wait for the daemons too)
        _jobs=""
        for r in $RUNTIMES; do
            run_critest "$r" "$(sock_of "$r")" "$r" -ginkgo.skip "$HOSTPORT" &
            _jobs="$_jobs $!"
        done
        for j in $_jobs; do wait "$j"; done
    fi
    for r in $RUNTIMES; do run_critest "$r" "$(sock_of "$r")" "$r-hostport" -ginkgo.focus "$HOSTPORT"; done
fi
# CRITEST_KEEP=DIR keeps the reports and critest's output there (debugging)
keep() { [ -z "${CRITEST_KEEP:-}" ] || cp "$work"/*.out "$work"/*.xml "$work"/*.res "$CRITEST_KEEP"/ 2>/dev/null || true; }
for r in $RUNTIMES; do
    ls "$work/$r".*xml >/dev/null 2>&1 || { tail -30 "$work/$r.out"; fail "critest against $r wrote no report"; }
    results "$r-hostport" "$r" >"$work/$r.res"
    summary "$r"
done
keep
case " $RUNTIMES " in *" containerd "*) ;; *) exit 0 ;; esac
case " $RUNTIMES " in *" berthd "*) ;; *) exit 0 ;; esac

# --- the gap: what containerd passes and berthd does not --------------------------------------------------
names() { sed -n "s/^$1\t//p" "$work/$2.res" | sort -u; } # STATE-REGEXP RUNTIME
names passed containerd >"$work/c.pass"
names passed berthd >"$work/b.pass"
names '[a-z]*' berthd >"$work/b.all"
comm -23 "$work/c.pass" "$work/b.pass" >"$work/gap"
grep -v '^[[:space:]]*\(#\|$\)' "$KNOWN" 2>/dev/null | sort -u >"$work/known" || true
comm -23 "$work/gap" "$work/known" >"$work/new"
comm -12 "$work/known" "$work/b.pass" >"$work/fixed"
comm -23 "$work/known" "$work/b.all" >"$work/unknown"
echo "specs containerd passes and berthd does not: $(wc -l <"$work/gap") ($(wc -l <"$work/known") listed in" \
    "tests/fixtures/cri/known-failing.txt)"
sed 's/^/  gap: /' "$work/gap"
if [ -s "$work/fixed" ]; then
    echo "known-failing specs that pass on berthd now (remove them from tests/fixtures/cri/known-failing.txt):"
    sed 's/^/  fixed: /' "$work/fixed"
fi
if [ -s "$work/unknown" ]; then
    echo "known-failing entries critest did not run (renamed or removed specs: remove them):"
    sed 's/^/  stale: /' "$work/unknown"
fi
if [ -s "$work/new" ]; then
    echo "FAIL specs containerd passes fail on berthd and are not in tests/fixtures/cri/known-failing.txt:"
    sed 's/^/  new: /' "$work/new"
    exit 1
fi
echo "PASS cri.critest"
