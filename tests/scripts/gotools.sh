#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Builds the Go clients the tests drive that Debian does not package, with `go install` from the module proxy
# into DEST/bin: containerd 2.4.2's ctr (whose image pull/push/import/export/tag go through the Transfer
# service), and cri-tools v1.37.0's crictl and critest (the CRI tests: tests/scripts/critest.sh,
# cri_crictl.sh). DEST is shared by every build dir of a source tree (<source>/.gotools): a tool already
# built at its version (DEST/bin/<tool>.version) is not rebuilt, and a lock keeps two builds from racing.
# usage: gotools.sh DEST
set -eu
DEST=$1
GO=${BERTH_GO:-/usr/local/go/bin/go}
CTR_VERSION=v2.4.2
CRI_TOOLS_VERSION=v1.37.0

# built TOOL VERSION: DEST/bin/TOOL is there and was built at VERSION
built() { [ -x "$DEST/bin/$1" ] && [ "$(cat "$DEST/bin/$1.version" 2>/dev/null)" = "$2" ]; }
all_built() {
    built ctr "$CTR_VERSION" && built crictl "$CRI_TOOLS_VERSION" && built critest "$CRI_TOOLS_VERSION"
}
all_built && exit 0
[ -x "$GO" ] || { echo "gotools.sh: no go tool at $GO (set BERTH_GO)" >&2; exit 1; }
mkdir -p "$DEST/bin"
exec 9>"$DEST/.lock"
flock 9

# install TOOL VERSION PACKAGE MODULE: go install PACKAGE@VERSION unless built; checks that the binary's
# build info names MODULE at VERSION before stamping it
install() {
    built "$1" "$2" && return 0
    echo "gotools.sh: building $4 $2's $1 into $DEST/bin (go install, once)" >&2
    # everything inside DEST (removable: -modcacherw), the toolchain as installed, the proxy as configured
    GOPATH="$DEST/gopath" GOMODCACHE="$DEST/gopath/pkg/mod" GOCACHE="$DEST/gocache" GOFLAGS=-modcacherw \
        GOTOOLCHAIN=local GOBIN="$DEST/bin" \
        "$GO" install "$3@$2"
    "$GO" version -m "$DEST/bin/$1" | grep -Eq "^[[:space:]]+mod[[:space:]]+$4[[:space:]]+$2[[:space:]]" ||
        { echo "gotools.sh: built $1 is not $4 $2" >&2; exit 1; }
    echo "$2" >"$DEST/bin/$1.version"
}
install ctr "$CTR_VERSION" github.com/containerd/containerd/v2/cmd/ctr github.com/containerd/containerd/v2
install crictl "$CRI_TOOLS_VERSION" sigs.k8s.io/cri-tools/cmd/crictl sigs.k8s.io/cri-tools
# critest is a test binary (cmd/critest holds only _test.go files): `go test -c` inside the module as
# downloaded, its version stamped as cri-tools' Makefile does
install_critest() {
    built critest "$1" && return 0
    echo "gotools.sh: building sigs.k8s.io/cri-tools $1's critest into $DEST/bin (go test -c, once)" >&2
    mod=$(GOPATH="$DEST/gopath" GOMODCACHE="$DEST/gopath/pkg/mod" GOFLAGS=-modcacherw GOTOOLCHAIN=local \
        "$GO" mod download -json "sigs.k8s.io/cri-tools@$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -f "$mod/go.mod" ] || { echo "gotools.sh: no sigs.k8s.io/cri-tools@$1 in the module cache" >&2; exit 1; }
    (cd "$mod" && GOPATH="$DEST/gopath" GOMODCACHE="$DEST/gopath/pkg/mod" GOCACHE="$DEST/gocache" \
        GOFLAGS="-modcacherw -mod=mod" GOTOOLCHAIN=local CGO_ENABLED=0 \
        "$GO" test -c -o "$DEST/bin/critest" -ldflags "-X sigs.k8s.io/cri-tools/pkg/version.Version=$1" \
        ./cmd/critest)
    "$DEST/bin/critest" -version 2>&1 | grep -q "^critest version: $1\$" ||
        { echo "gotools.sh: built critest is not $1" >&2; exit 1; }
    echo "$1" >"$DEST/bin/critest.version"
}
install_critest "$CRI_TOOLS_VERSION"
