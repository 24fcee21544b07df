#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/cri: crictl against berthd and against Debian's containerd CRI (both private: own root, state and
# socket under one temp dir), the same busybox image imported into both, the same pod and container
# configs (host network). Prints, never asserts:
#   - pod start: crictl runp + create + start, median and p90 over ROUNDS (the two runtimes in turn each
#     round, so drift hits both alike), each step's median, and what three crictl calls cost by themselves
#     (crictl version: the client's share); target berthd <= 0.5x containerd's median;
#   - memory: PSS (RSS where smaps_rollup is missing) of the daemon and its shims with 10 running pods;
#     target berthd <= 0.25x containerd's.
# containerd's sandbox image is built here from berth's pause program (BUILD_DIR/libexec/berth/pause; until
# it is built, busybox-static sleeping) and imported with `ctr -n k8s.io images import`; berthd runs its
# built-in pause (its default: no sandbox image). The berthd rows are skipped, saying why, while berthd
# cannot run pods.
# usage: bench/cri.sh [BUILD_DIR] [ROUNDS]   (CRICTL=path overrides the crictl found)
set -eu
BUILD=${1:-build}
ROUNDS=${2:-10}
PODS=10
BERTHD=$BUILD/bin/berthd
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

find_crictl() {
    for c in "${CRICTL:-}" "$HERE/../.gotools/bin/crictl" "$(command -v crictl || true)"; do
        [ -n "$c" ] && [ -x "$c" ] && { echo "$c"; return; }
    done
    echo "crictl missing: GOBIN=\$PWD/.gotools/bin go install sigs.k8s.io/cri-tools/cmd/crictl@v1.37.0" >&2
    exit 1
}
CRICTL=$(find_crictl)

# Pods first (their shims and containers), then the daemons, then leftover shims of this dir (by PID), its
# mounts, the dir: a failed run leaves nothing running.
cri_cleanup() {
    set +e
    for s in b c; do
        [ -f "$WORK/crictl-$s.yaml" ] && "$CRICTL" --config "$WORK/crictl-$s.yaml" rmp --all --force >/dev/null 2>&1
    done
    [ -n "$BPID" ] && kill "$BPID" 2>/dev/null && wait "$BPID" 2>/dev/null
    [ -n "$CPID" ] && kill "$CPID" 2>/dev/null && wait "$CPID" 2>/dev/null
    for p in /proc/[0-9]*; do
        { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q "$WORK/" && kill "${p#/proc/}" 2>/dev/null
    done
    for m in $(awk -v w="$WORK" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
    [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cri_cleanup EXIT
trap 'exit 130' INT TERM
command -v containerd >/dev/null || { echo "containerd missing: apt-get install containerd"; exit 1; }

# ---- the pause image: one layer holding /pause -------------------------------------------------------
PAUSE_IMG=docker.io/library/berth-pause:bench
pause_image() {
    d=$WORK/pause
    mkdir -p "$d/rootfs" "$d/oci/blobs/sha256"
    if [ -x "$BUILD/libexec/berth/pause" ]; then
        cp "$BUILD/libexec/berth/pause" "$d/rootfs/pause"
        entry='["/pause"]'
        PAUSE_FROM="berth's pause ($BUILD/libexec/berth/pause)"
    else # any static program that sleeps, until the pause program is built
        cp /bin/busybox "$d/rootfs/pause"
        entry='["/pause","sleep","2147483647"]'
        PAUSE_FROM="busybox-static sleeping (no $BUILD/libexec/berth/pause yet)"
    fi
    (cd "$d/rootfs" && tar --owner=0 --group=0 --numeric-owner -cf "$d/layer.tar" pause)
    gzip -n -c "$d/layer.tar" >"$d/layer.tar.gz"
    diff=$(sha256sum "$d/layer.tar" | cut -d' ' -f1)
    gz=$(sha256sum "$d/layer.tar.gz" | cut -d' ' -f1)
    cp "$d/layer.tar.gz" "$d/oci/blobs/sha256/$gz"
    printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":%s,"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
        "$entry" "$diff" >"$d/config.json"
    cfg=$(sha256sum "$d/config.json" | cut -d' ' -f1)
    cp "$d/config.json" "$d/oci/blobs/sha256/$cfg"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
        "$cfg" "$(stat -c %s "$d/config.json")" "$gz" "$(stat -c %s "$d/layer.tar.gz")" >"$d/manifest.json"
    man=$(sha256sum "$d/manifest.json" | cut -d' ' -f1)
    cp "$d/manifest.json" "$d/oci/blobs/sha256/$man"
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"bench"}}]}' \
        "$man" "$(stat -c %s "$d/manifest.json")" "$PAUSE_IMG" >"$d/oci/index.json"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$d/oci/oci-layout"
    (cd "$d/oci" && tar -cf "$d/pause-oci.tar" oci-layout index.json blobs)
}

# ---- the daemons --------------------------------------------------------------------------------------
wait_daemon() { # SOCKET PID LOG: up to 30 s
    i=0
    while [ ! -S "$1" ] && [ $i -lt 600 ] && kill -0 "$2" 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
    [ -S "$1" ] || { echo "no socket at $1; the end of $3:"; tail -n 5 "$3"; exit 1; }
}

start_containerd() {
    mkdir -p "$WORK/c/cni" "$WORK/c/opt"
    cat >"$WORK/containerd.toml" <<TOML
version = 2
root = "$WORK/c/root"
state = "$WORK/c/state"
[grpc]
  address = "$WORK/c/containerd.sock"
[ttrpc]
  address = "$WORK/c/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$WORK/c/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMG"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # the sandbox's oom_score_adj -998 is refused in an unprivileged-oom environment: clamp to ours
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$WORK/c/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$WORK/c/runc"
TOML
    containerd --config "$WORK/containerd.toml" --log-level ${CONTAINERD_LOG_LEVEL:-error} 2>"$WORK/containerd.log" &
    CPID=$!
    CSOCK=$WORK/c/containerd.sock
    wait_daemon "$CSOCK" "$CPID" "$WORK/containerd.log"
}

start_berthd() {
    "$BERTHD" --root "$WORK/b/root" --state "$WORK/b/state" --log-level warn 2>"$WORK/berthd.log" &
    BPID=$!
    BSOCK=$WORK/b/state/berthd.sock
    wait_daemon "$BSOCK" "$BPID" "$WORK/berthd.log"
}

crictl_config() { # NAME SOCKET
    printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 30\npull-image-on-create: false\n' \
        "$2" "$2" >"$WORK/crictl-$1.yaml"
}
cri() { # NAME ARGS...
    n=$1
    shift
    "$CRICTL" --config "$WORK/crictl-$n.yaml" "$@" 2>>"$WORK/crictl-$n.err"
}

# ---- configs --------------------------------------------------------------------------------------------
IMG=docker.io/library/berth-busybox:latest
pod_config() { # NAME ROUND -> path
    f=$WORK/cfg/pod-$1-$2.json
    mkdir -p "$WORK/cfg" "$WORK/logs/$1-$2"
    printf '{"metadata":{"name":"bench-%s","namespace":"bench","uid":"uid-%s-%s","attempt":0},"log_directory":"%s","linux":{"security_context":{"namespace_options":{"network":2}}}}\n' \
        "$2" "$1" "$2" "$WORK/logs/$1-$2" >"$f"
    echo "$f"
}
CTR_CFG=$WORK/cfg/ctr.json
mkdir -p "$WORK/cfg"
printf '{"metadata":{"name":"sleep"},"image":{"image":"%s"},"command":["/bin/sleep","3600"],"log_path":"sleep.log","linux":{}}\n' \
    "$IMG" >"$CTR_CFG"

# pod_up NAME ROUND [STEPS_FILE]: runp + create + start; prints the pod id; appends each step's
# microseconds to STEPS_FILE ("runp create start")
pod_up() {
    p=$(pod_config "$1" "$2")
    a=$(date +%s%N)
    pod=$(cri "$1" runp "$p") || return 1
    b=$(date +%s%N)
    c=$(cri "$1" create "$pod" "$CTR_CFG" "$p") || return 1
    d=$(date +%s%N)
    cri "$1" start "$c" >/dev/null || return 1
    e=$(date +%s%N)
    [ -z "${3:-}" ] || echo "$(((b - a) / 1000)) $(((d - b) / 1000)) $(((e - d) / 1000))" >>"$3"
    echo "$pod"
}
pod_down() { cri "$1" stopp "$2" >/dev/null && cri "$1" rmp "$2" >/dev/null; }

# ---- memory: PSS of the daemon and of its shims (processes of this bench's dir) ------------------------
pss_kb() { # PID
    if [ -r "/proc/$1/smaps_rollup" ]; then
        awk '/^Pss:/ { print $2; exit }' "/proc/$1/smaps_rollup"
    else
        awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
    fi
}
memory_kb() { # DAEMON_PID SHIM_EXE_NAME -> "total_kB shims"
    total=$(pss_kb "$1") n=0
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        exe=$(readlink "$p/exe" 2>/dev/null) || continue
        [ "${exe##*/}" = "$2" ] || continue
        { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q "$WORK" || continue
        kb=$(pss_kb "$pid" 2>/dev/null) || continue
        total=$((total + ${kb:-0})) n=$((n + 1))
    done
    echo "$total $n"
}

# ---- the runs ------------------------------------------------------------------------------------------
pause_image
start_containerd
crictl_config c "$CSOCK"
sh "$HERE/../tests/fixtures/images/build-image.sh" busybox "$WORK/fx" >/dev/null
ctr --address "$CSOCK" -n k8s.io images import "$WORK/fx/busybox-oci.tar" >/dev/null
ctr --address "$CSOCK" -n k8s.io images import "$WORK/pause/pause-oci.tar" >/dev/null

SIDES="c"
BWHY=""
if [ ! -x "$BERTHD" ]; then
    BWHY="no $BERTHD"
else
    start_berthd
    crictl_config b "$BSOCK"
    ctr --address "$BSOCK" -n k8s.io images import "$WORK/fx/busybox-oci.tar" >/dev/null
    if pod=$(pod_up b warm); then
        pod_down b "$pod" || true
        SIDES="b c"
    else
        BWHY="berthd cannot run pods yet: $(tail -n 1 "$WORK/crictl-b.err" 2>/dev/null | cut -c1-160)"
    fi
fi
pod=$(pod_up c warm) || { echo "containerd: runp/create/start failed:"; tail -n 5 "$WORK/crictl-c.err"; exit 1; }
pod_down c "$pod"

round=0
while [ $round -lt "$ROUNDS" ]; do
    for s in $SIDES; do
        t0=$(date +%s%N)
        pod=$(pod_up "$s" "$round" "$WORK/steps.$s") || { echo "$s: pod start failed in round $round:"; tail -n 3 "$WORK/crictl-$s.err"; exit 1; }
        t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000)) >>"$WORK/t.$s"
        pod_down "$s" "$pod"
        # the client's own share: three crictl calls that do nothing
        t0=$(date +%s%N)
        for _ in 1 2 3; do cri "$s" version >/dev/null; done
        t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000)) >>"$WORK/t.floor$s"
    done
    round=$((round + 1))
done

stat_of() { # SIDE -> "median p90" in ms
    sort -n "$WORK/t.$1" | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        p = int(NR * 0.9 + 0.999999); if (p < 1) p = 1
        printf "%.1f %.1f", m / 1000, v[p] / 1000 }'
}

# memory with PODS pods running on each
for s in $SIDES; do
    i=0
    while [ $i -lt $PODS ]; do
        pod_up "$s" "mem$i" >>"$WORK/pods.$s" || { echo "$s: pod $i failed"; exit 1; }
        i=$((i + 1))
    done
done
sleep 2
for s in $SIDES; do
    if [ "$s" = b ]; then memory_kb "$BPID" berth-shim >"$WORK/mem.b"; else memory_kb "$CPID" containerd-shim-runc-v2 >"$WORK/mem.c"; fi
done

cver=$(containerd --version | awk '{print $3}')
echo "CRI pod start: crictl runp + create + start (host network, busybox sleep), $ROUNDS rounds"
echo "  containerd's sandbox image: $PAUSE_FROM"
printf '  %-32s %9s %9s\n' "" "median ms" "p90 ms"
[ -z "$BWHY" ] && printf '  %-32s %9s %9s\n' "berthd" $(stat_of b)
printf '  %-32s %9s %9s\n' "containerd $cver" $(stat_of c)
for s in $SIDES; do
    if [ "$s" = b ]; then n=berthd; else n=containerd; fi
    printf '  %-32s %9s %9s\n' "(3 x crictl version, $n)" $(stat_of "floor$s")
done
echo "  the steps' medians (ms), runp / create / start:"
for s in $SIDES; do
    if [ "$s" = b ]; then n=berthd; else n="containerd $cver"; fi
    printf '  %-32s %s\n' "$n" "$(for k in 1 2 3; do cut -d' ' -f$k "$WORK/steps.$s" | sort -n | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f ", m / 1000 }'; done)"
done
# the daemon's share: the median less what its three crictl calls cost by themselves (the client's start,
# the same program for both runtimes, is most of a pod start on a loaded machine)
echo "  the daemon's share (median less the 3 crictl calls' median, ms):"
for s in $SIDES; do
    if [ "$s" = b ]; then n=berthd; else n="containerd $cver"; fi
    printf '  %-32s %9.1f\n' "$n" "$(awk -v m="$(stat_of "$s" | cut -d' ' -f1)" -v f="$(stat_of "floor$s" | cut -d' ' -f1)" 'BEGIN { print m - f }')"
done
echo "Memory with $PODS pods running (PSS of the daemon + its shims)"
printf '  %-32s %9s %6s\n' "" "MiB" "shims"
[ -z "$BWHY" ] && set -- $(cat "$WORK/mem.b") && printf '  %-32s %9s %6s\n' "berthd" "$(awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }')" "$2"
set -- $(cat "$WORK/mem.c")
printf '  %-32s %9s %6s\n' "containerd $cver" "$(awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }')" "$2"
if [ -z "$BWHY" ]; then
    bm=$(stat_of b | cut -d' ' -f1) cm=$(stat_of c | cut -d' ' -f1)
    awk -v b="$bm" -v c="$cm" 'BEGIN { r = b / c
        printf "  target: pod start <= 0.5x containerd: %.2fx, %s\n", r, r <= 0.5 ? "met" : "NOT met" }'
    bf=$(stat_of floorb | cut -d' ' -f1) cf=$(stat_of floorc | cut -d' ' -f1)
    awk -v b="$bm" -v c="$cm" -v bf="$bf" -v cf="$cf" 'BEGIN { if (c - cf > 0)
        printf "  (the daemons alone, the cost of the crictl calls taken out: %.2fx)\n", (b - bf) / (c - cf) }'
    bk=$(cut -d' ' -f1 "$WORK/mem.b") ck=$(cut -d' ' -f1 "$WORK/mem.c")
    awk -v b="$bk" -v c="$ck" 'BEGIN { r = b / c
        printf "  target: memory <= 0.25x containerd: %.2fx, %s\n", r, r <= 0.25 ? "met" : "NOT met" }'
else
    echo "  berthd: not measured ($BWHY)"
    echo "  targets: pod start <= 0.5x containerd, memory <= 0.25x containerd: not measured"
fi

# the pods go before the daemons (lib.sh's trap stops the daemons, then removes the dir)
for s in $SIDES; do
    while read -r pod; do pod_down "$s" "$pod" || true; done <"$WORK/pods.$s"
done
