#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/rpc: Version RPCs per second, berthd and Debian's containerd side by side on private sockets,
# with h2load at -c1 -m1, -c4 -m10 and -c4 -m100. A separate correctness pass checks grpc-status (h2load
# only sees :status). Target: berthd >= 3x containerd pipelined, >= 1.2x at c1 m1, no failed requests.
# usage: bench/rpc.sh [BUILD_DIR] [REQUESTS]
set -eu
BUILD=${1:-build}
N=${2:-200000}
BERTHD=$BUILD/bin/berthd
GRPCC=$BUILD/bin/grpcc
command -v h2load >/dev/null || { echo "h2load missing: apt-get install nghttp2-client"; exit 1; }

. "$(dirname "$0")/lib.sh"
start_daemons
sleep 0.5

printf '\000\000\000\000\000' >"$WORK/empty.grpc"
PATH_V=http://localhost/containerd.services.version.v1.Version/Version

rps() { # socket clients streams -> requests/s (prints "failed" when h2load saw failures)
    out=$(h2load --base-uri="unix:$1" -n "$N" -c "$2" -m "$3" -d "$WORK/empty.grpc" \
        -H 'content-type: application/grpc' -H 'te: trailers' -H 'containerd-namespace: default' "$PATH_V" 2>&1)
    ok=$(echo "$out" | awk '/^requests:/ {print $8}')
    failed=$(echo "$out" | awk '/^requests:/ {print $10}')
    r=$(echo "$out" | awk '/^finished in/ {gsub(",", "", $4); print $4}')
    if [ "$ok" != "$N" ]; then echo "failed($failed)"; else echo "$r"; fi
}

echo "correctness: grpc-status of 1000 Version calls on 100 streams each"
"$GRPCC" "$BSOCK" /containerd.services.version.v1.Version/Version --streams 1000 | sed 's/^/  berthd:     /'
"$GRPCC" "$CSOCK" /containerd.services.version.v1.Version/Version --streams 1000 | sed 's/^/  containerd: /'

echo "Version RPC, $N requests, h2load over a unix socket"
printf '  %-10s %14s %14s %8s\n' "load" "berthd req/s" "containerd" "ratio"
for load in "1 1" "4 10" "4 100"; do
    set -- $load
    b=$(rps "$BSOCK" "$1" "$2")
    c=$(rps "$CSOCK" "$1" "$2")
    ratio=$(awk -v b="$b" -v c="$c" 'BEGIN { if (b + 0 > 0 && c + 0 > 0) printf "%.2fx", b / c; else print "-" }')
    printf '  %-10s %14s %14s %8s\n' "-c$1 -m$2" "$b" "$c" "$ratio"
done
echo "idle RSS after the runs: berthd $(awk '/VmRSS/ {print $2, $3}' /proc/$BPID/status), containerd $(awk '/VmRSS/ {print $2, $3}' /proc/$CPID/status)"
