#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The main job: build berthd, start it on its built-in default config, show its modules, stop it cleanly.
# It uses a private root and state under /tmp so it never touches a system berthd.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

WORK=$(mktemp -d /tmp/berth-main-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
BERTHD=build/bin/berthd

echo "== starting berthd (built-in default config, root and state under $WORK)"
mkfifo "$WORK/ready"
"$BERTHD" --root "$WORK/root" --state "$WORK/state" --ready-fd 3 3>"$WORK/ready" &
PID=$!
read -r line <"$WORK/ready"
echo "berthd pid $PID says: $line"

echo "== berthd modules"
"$BERTHD" modules --root "$WORK/root" --state "$WORK/state"

echo "== stopping berthd (SIGTERM)"
kill -TERM "$PID"
wait "$PID"
echo "berthd exited with status $?"
