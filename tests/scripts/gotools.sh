#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Builds the Go clients the tests drive that Debian does not package: containerd 2.4.2's ctr (whose image
# pull/push/import/export/tag go through the Transfer service), with `go install` from the module proxy into
# DEST/bin. DEST is shared by every build dir of a source tree (<source>/.gotools): a tool already built at
# its version is not rebuilt, and a lock keeps two builds from racing.
# usage: gotools.sh DEST
set -eu
DEST=$1
GO=${BERTH_GO:-/usr/local/go/bin/go}
CTR_VERSION=v2.4.2

built() { [ -x "$DEST/bin/ctr" ] && [ "$(cat "$DEST/bin/ctr.version" 2>/dev/null)" = "$CTR_VERSION" ]; }
built && exit 0
[ -x "$GO" ] || { echo "gotools.sh: no go tool at $GO (set BERTH_GO)" >&2; exit 1; }
mkdir -p "$DEST/bin"
exec 9>"$DEST/.lock"
flock 9
built && exit 0
echo "gotools.sh: building containerd $CTR_VERSION's ctr into $DEST/bin (go install, once)" >&2
# everything inside DEST (removable: -modcacherw), the toolchain as installed, the proxy as configured
GOPATH="$DEST/gopath" GOMODCACHE="$DEST/gopath/pkg/mod" GOCACHE="$DEST/gocache" GOFLAGS=-modcacherw \
    GOTOOLCHAIN=local GOBIN="$DEST/bin" \
    "$GO" install "github.com/containerd/containerd/v2/cmd/ctr@$CTR_VERSION"
"$DEST/bin/ctr" --version | grep -q "${CTR_VERSION#v}" || { echo "gotools.sh: built ctr is not $CTR_VERSION" >&2; exit 1; }
echo "$CTR_VERSION" >"$DEST/bin/ctr.version"
