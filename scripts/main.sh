#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The main job: build berthd and the berth CLI, start berthd on its built-in default config (root
# /var/lib/berth, state /run/berth, so run it as root), show its modules, import a busybox image built
# offline, `berth run --rm` a web server on the default CNI network with a published port and a named volume,
# fetch a page through the port, stop it, show that containerd's ctr still works, stop berthd cleanly.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

WORK=$(mktemp -d /tmp/berth-main-XXXXXX)
BERTHD=build/bin/berthd
BERTH=build/bin/berth
PORT=18080
PID=""
RUN=""
cleanup() {
    [ -n "$RUN" ] && kill "$RUN" 2>/dev/null
    [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== starting berthd on its built-in default config"
mkfifo "$WORK/ready"
"$BERTHD" --ready-fd 3 3>"$WORK/ready" &
PID=$!
read -r line <"$WORK/ready"
echo "berthd pid $PID says: $line"

echo "== berth version; berth modules"
"$BERTH" version
"$BERTH" modules

echo "== berth import: the busybox fixture (built offline)"
sh tests/fixtures/images/build-image.sh busybox "$WORK/fx" >/dev/null
"$BERTH" import "$WORK/fx/busybox-oci.tar"
"$BERTH" images
IMAGE=docker.io/library/berth-busybox:latest

echo "== berth run --rm: a web server on the network \"berth\", port 127.0.0.1:$PORT, volume berth-demo"
"$BERTH" volume create berth-demo >/dev/null
"$BERTH" run --rm -q --name berth-demo-$$ --network berth -p 127.0.0.1:$PORT:80 -v berth-demo:/www \
    "$IMAGE" sh -c 'echo "hello from a berth container" >/www/index.html; exec httpd -f -p 80 -h /www' &
RUN=$!
tries=0
until page=$(curl -fsS --max-time 2 "http://127.0.0.1:$PORT/" 2>/dev/null); do
    tries=$((tries + 1))
    [ $tries -lt 100 ] || { echo "the web server did not answer on 127.0.0.1:$PORT" >&2; exit 1; }
    sleep 0.1
done
echo "curl http://127.0.0.1:$PORT/ -> $page"
"$BERTH" ps
"$BERTH" stop -t 1 berth-demo-$$ >/dev/null # httpd as pid 1 ignores SIGTERM: SIGKILL after 1 s
set +e
wait "$RUN"
status=$?
set -e
RUN=""
echo "berth run exited with the container's status, $status (SIGKILL: 137); --rm removed the container:"
"$BERTH" ps -a
echo "the volume keeps the page: $("$BERTH" run --rm -v berth-demo:/www "$IMAGE" cat /www/index.html)"
"$BERTH" volume rm berth-demo

echo "== containerd's ctr against the same berthd"
ctr --address /run/berth/berthd.sock version
ctr --address /run/berth/berthd.sock images ls -q
ctr --address /run/berth/berthd.sock run --rm "$IMAGE" berth-ctr-demo-$$ echo "ctr run works too"

echo "== stopping berthd (SIGTERM)"
kill -TERM "$PID"
wait "$PID"
echo "berthd exited with status $?"
PID=""
