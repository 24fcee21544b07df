#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Crash safety of content ingest: 100 `ctr content ingest` calls, berthd killed with SIGKILL at a random
# moment among them, then restarted. Every ingest ctr saw succeed must be there and verify; every blob
# listed must verify (nothing partial is ever visible); interrupted ingests may be resumed or aborted.
# usage: crash_test.sh BERTHD MODULE_DIR
set -eu
BERTHD=$1
export BERTH_MODULE_DIR=$2
WORK=$(mktemp -d /tmp/berth-crash-XXXXXX)
PID=""
cleanup() {
    [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
SOCK=$WORK/state/berthd.sock
CTR="ctr --address $SOCK"

start() {
    "$BERTHD" --root "$WORK/root" --state "$WORK/state" --log-level error 2>>"$WORK/berthd.log" &
    PID=$!
    i=0
    while ! timeout 10 $CTR version >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 200 ] || { echo "berthd did not come up"; cat "$WORK/berthd.log"; exit 1; }
        sleep 0.05
    done
}

start
mkdir "$WORK/blobs"
# every blob gets a gc.root label right after it is committed, so no collection takes it
i=0
while [ $i -lt 100 ]; do
    head -c $(( (i * 7919) % 900000 + 1 )) /dev/urandom >"$WORK/blobs/$i"
    i=$((i + 1))
done
(
    i=0
    while [ $i -lt 100 ]; do
        if timeout 60 $CTR content ingest "ref$i" <"$WORK/blobs/$i" 2>/dev/null; then
            d=sha256:$(sha256sum "$WORK/blobs/$i" | cut -c1-64)
            $CTR content label "$d" containerd.io/gc.root=crash-test >/dev/null 2>&1 && echo "$d" >>"$WORK/committed"
        fi
        i=$((i + 1))
    done
) &
LOADER=$!
sleep "0.$(( $(od -An -N1 -tu1 /dev/urandom) % 9 + 1 ))"
kill -9 "$PID"
wait "$PID" 2>/dev/null || true
wait "$LOADER" 2>/dev/null || true
touch "$WORK/committed"
echo "killed berthd after $(wc -l <"$WORK/committed") labelled commits"

start
fail=0
for d in $(cat "$WORK/committed"); do
    got=sha256:$($CTR content get "$d" | sha256sum | cut -c1-64)
    [ "$got" = "$d" ] || { echo "FAIL committed $d reads back as $got"; fail=1; }
done
n=0
for d in $($CTR content ls -q); do
    n=$((n + 1))
    got=sha256:$($CTR content get "$d" | sha256sum | cut -c1-64)
    [ "$got" = "$d" ] || { echo "FAIL listed $d reads back as $got"; fail=1; }
done
echo "after restart: $n blobs listed, all verified; active ingests:"
$CTR content active
# an interrupted ingest can be finished after the restart
for ref in $($CTR content active | awk 'NR > 1 {print $1}'); do
    i=${ref#ref}
    $CTR content ingest "$ref" <"$WORK/blobs/$i" || { echo "FAIL resuming $ref"; fail=1; }
done
kill "$PID"
wait "$PID" || { echo "FAIL berthd did not stop cleanly"; fail=1; }
PID=""
[ $fail -eq 0 ] && echo "crash test: ok"
exit $fail
