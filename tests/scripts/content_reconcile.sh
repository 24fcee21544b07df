#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Start-up reconciliation of content records: blobs ingested through ctr (one of them held by two
# namespaces), a half-finished ingest left behind, berthd stopped, one blob file deleted by hand, berthd
# restarted. The deleted blob's records must be gone from both namespaces with a warning naming namespace
# and digest; every other blob must be listed and verify; the half-finished ingest must still resume.
# usage: content_reconcile.sh BERTHD MODULE_DIR
set -eu
BERTHD=$1
export BERTH_MODULE_DIR=$2
WORK=$(mktemp -d /tmp/berth-reconcile-XXXXXX)
PID=""
CTRPID=""
cleanup() {
    [ -n "$CTRPID" ] && kill -9 "$CTRPID" 2>/dev/null
    [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
SOCK=$WORK/state/berthd.sock
CTR="ctr --address $SOCK"
BLOBS=$WORK/root/io.containerd.content.v1.content/blobs/sha256
fail=0

start() {
    "$BERTHD" --root "$WORK/root" --state "$WORK/state" --log-level warn 2>>"$WORK/berthd.log" &
    PID=$!
    i=0
    while ! $CTR version >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 200 ] || { echo "berthd did not come up"; cat "$WORK/berthd.log"; exit 1; }
        sleep 0.05
    done
}
stop() {
    kill "$PID"
    wait "$PID" || { echo "FAIL berthd did not stop cleanly"; fail=1; }
    PID=""
}
ingest() { # namespace ref file -> prints the digest
    $CTR -n "$1" content ingest "$2" <"$3"
    d=sha256:$(sha256sum "$3" | cut -c1-64)
    $CTR -n "$1" content label "$d" containerd.io/gc.root=reconcile-test >/dev/null
    echo "$d"
}

start
i=0
while [ $i -lt 4 ]; do
    head -c $((100000 + i * 4099)) /dev/urandom >"$WORK/blob$i"
    eval "d$i=\$(ingest default ref$i \$WORK/blob$i)"
    i=$((i + 1))
done
# the blob to be lost is held by a second namespace too, and an intact one is held there as well
ingest other shared0 "$WORK/blob0" >/dev/null
ingest other shared1 "$WORK/blob1" >/dev/null
# a half-finished ingest: ctr sends the first 2 MiB, then is killed while it waits for more
head -c 3000000 /dev/urandom >"$WORK/partial"
mkfifo "$WORK/fifo"
$CTR content ingest partial <"$WORK/fifo" &
CTRPID=$!
exec 3>"$WORK/fifo"
head -c 2097152 "$WORK/partial" >&3
i=0
until $CTR content active | awk '$1 == "partial" && $2 != "0B" { found = 1 } END { exit !found }'; do
    i=$((i + 1))
    [ $i -lt 100 ] || { echo "FAIL the partial ingest never showed up"; exit 1; }
    sleep 0.05
done
sleep 0.2
kill -9 "$CTRPID"
wait "$CTRPID" 2>/dev/null || true
CTRPID=""
exec 3>&-
stop

rm -f "$BLOBS/${d0#sha256:}"
start
# the content service reconciles at its init, which waits for its first use (BERTH_PLUGIN_ON_DEMAND)
for ns in default other; do
    if $CTR -n $ns content ls -q | grep -q "$d0"; then
        echo "FAIL $ns still lists $d0"
        fail=1
    fi
done
grep -q "content record removed: its blob is missing.*namespace=default digest=$d0" "$WORK/berthd.log" ||
    { echo "FAIL no warning for default's record of $d0"; fail=1; }
grep -q "content record removed: its blob is missing.*namespace=other digest=$d0" "$WORK/berthd.log" ||
    { echo "FAIL no warning for other's record of $d0"; fail=1; }
for d in "$d1" "$d2" "$d3"; do
    $CTR content ls -q | grep -q "$d" || { echo "FAIL $d is not listed after the restart"; fail=1; }
    got=sha256:$($CTR content get "$d" | sha256sum | cut -c1-64)
    [ "$got" = "$d" ] || { echo "FAIL $d reads back as $got"; fail=1; }
done
got=sha256:$($CTR -n other content get "$d1" | sha256sum | cut -c1-64)
[ "$got" = "$d1" ] || { echo "FAIL other's $d1 reads back as $got"; fail=1; }
$CTR content active | awk '$1 == "partial" && $2 != "0B" { found = 1 } END { exit !found }' || { echo "FAIL the half-finished ingest is gone"; fail=1; }
$CTR content ingest partial <"$WORK/partial" || { echo "FAIL resuming the half-finished ingest"; fail=1; }
dp=sha256:$(sha256sum "$WORK/partial" | cut -c1-64)
got=sha256:$($CTR content get "$dp" | sha256sum | cut -c1-64)
[ "$got" = "$dp" ] || { echo "FAIL the resumed ingest reads back as $got"; fail=1; }
stop
[ $fail -eq 0 ] && echo "content reconcile test: ok"
exit $fail
