#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The main job: build berthd, start it on its built-in default config (root /var/lib/berth, state
# /run/berth, so run it as root), show its modules, import a busybox image built offline, run a container
# that prints a greeting, stop it cleanly.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

WORK=$(mktemp -d /tmp/berth-main-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
BERTHD=build/bin/berthd

echo "== starting berthd on its built-in default config"
mkfifo "$WORK/ready"
"$BERTHD" --ready-fd 3 3>"$WORK/ready" &
PID=$!
read -r line <"$WORK/ready"
echo "berthd pid $PID says: $line"

echo "== berthd modules"
"$BERTHD" modules

echo "== containerd's ctr against berthd"
ctr --address /run/berth/berthd.sock version
ctr --address /run/berth/berthd.sock plugins ls

echo "== a container: import the busybox fixture, ctr run --rm"
sh tests/fixtures/images/build-image.sh busybox "$WORK/fx" >/dev/null
ctr --address /run/berth/berthd.sock images import "$WORK/fx/busybox-oci.tar"
ctr --address /run/berth/berthd.sock run --rm docker.io/library/berth-busybox:latest berth-demo-$$

echo "== stopping berthd (SIGTERM)"
kill -TERM "$PID"
wait "$PID"
echo "berthd exited with status $?"
