#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Pull and push through berthd's Transfer service, driven by containerd 2.4.2's ctr (its default transfer
# path), against Debian's docker-registry on 127.0.0.1: an anonymous pull unpacked while downloading (the top
# chain id's snapshot exists, `ctr run` of the pulled image prints its greeting), a multi-platform index (the
# host's manifest picked and unpacked; --platform linux/arm64 picks the other and only stores it), a blob
# whose bytes do not match its digest (refused: nothing committed, no image record), a config whose diff id
# is not its layer's (the unpack fails: no snapshot left, no record), the image.post-pull
# hook's veto (no record), push of a new image (uploaded) and of one whose layers another repository of the
# registry holds (mounted, not uploaded: the registry's own access log says so); and through the hosts
# configuration of berthd's YAML and the request's auth stream: Basic auth (htpasswd, `ctr --user`), Bearer
# tokens (tests/go/tokenissuer), TLS with a test CA, a mirror that answers 404 (the upstream serves), and a
# connection cut in the middle of a blob (tests/go/cutproxy: the retry asks for, and gets, only the rest).
# usage: transfer_e2e.sh BERTHD MODULE_DIR FIXTURE_MODULE_DIR SOURCE_DIR CTR2 BINDIR
#   BINDIR holds regtool, go-tokenissuer and go-cutproxy (the build's bin/)
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
FX=$3
SRC=$4
CTR2=$5
BIN=$6
[ -x "$CTR2" ] || fail "no containerd 2.4.2 ctr at $CTR2"
work=$(mktemp -d /tmp/berth-transfer-XXXXXX)
trap cleanup_work EXIT
CTR="$CTR2 --address $work/state/berthd.sock"
CTR1="ctr --address $work/state/berthd.sock" # Debian's 1.6: tag and import client-side, not through Transfer

sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$work/fx" >/dev/null
BB=$work/fx/busybox-oci/blobs/sha256

# --- registries: plain, Basic, token, TLS, an upstream with a 404 mirror, a cutting proxy -----------------
port=$((20000 + $$ % 20000))
# start_registry DIR [ENV=...]: on the next free port; sets $port
start_registry() {
    dir=$1
    shift
    for _ in 1 2 3 4 5 6 7 8; do
        port=$((port + 1))
        if env "$@" sh "$SRC/tests/fixtures/images/registry.sh" start "$dir" "$port" >"$dir.start" 2>&1; then
            REGISTRY_DIRS="$REGISTRY_DIRS $dir"
            return 0
        fi
        rm -rf "$dir"
    done
    fail "registry $dir did not start: $(cat "$dir.start")"
}
# the plain registry logs every request at level info (its access log proves mounts and uploads)
start_registry "$work/reg" REGISTRY_LOG_LEVEL=info
R=127.0.0.1:$port
URL=http://$R
"$BIN/regtool" htpasswd alice secret >"$work/htpasswd" || fail "bcrypt"
start_registry "$work/basic" REGISTRY_HTPASSWD="$work/htpasswd"
RB=127.0.0.1:$port
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/tok.key" -out "$work/tok.crt" -days 2 \
    -subj /CN=berth-token-signer >/dev/null 2>&1 || fail "token certificate"
start_helper issuer "$BIN/go-tokenissuer" -key "$work/tok.key" -cert "$work/tok.crt" -user alice -pass secret
start_registry "$work/token" REGISTRY_TOKEN="http://127.0.0.1:$hport/token berth-registry berth-test-issuer $work/tok.crt"
RT=127.0.0.1:$port
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/ca.key" -out "$work/ca.crt" -days 2 \
    -subj /CN=berth-test-ca >/dev/null 2>&1 || fail "CA"
openssl req -newkey rsa:2048 -nodes -keyout "$work/srv.key" -out "$work/srv.csr" -subj /CN=127.0.0.1 \
    >/dev/null 2>&1 || fail "server key"
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$work/srv.ext"
openssl x509 -req -in "$work/srv.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
    -out "$work/srv.crt" -days 2 -extfile "$work/srv.ext" >/dev/null 2>&1 || fail "server certificate"
start_registry "$work/tls" REGISTRY_TLS="$work/srv.crt $work/srv.key"
RS=127.0.0.1:$port
start_registry "$work/upstream"
RU=127.0.0.1:$port
start_registry "$work/mirror"
start_helper mproxy "$BIN/go-cutproxy" -target "http://127.0.0.1:$port"
RM=127.0.0.1:$hport
start_helper cut "$BIN/go-cutproxy" -target "http://$R" -cut 300000
RC=127.0.0.1:$hport

{
    echo "module_dirs: [\"$FX/images\"]"
    echo "plugins:"
    echo "  io.containerd.transfer.v1.local:"
    echo "    registries:"
    echo "      \"$RS\": {server: \"https://$RS\", ca: \"$work/ca.crt\"}"
    echo "      \"$RU\": {server: \"http://$RU\", mirrors: [{url: \"http://$RM\"}]}"
} >"$work/berthd.yaml"
"$BERTHD" --root "$work/root" --state "$work/state" --log-level warn -c "$work/berthd.yaml" 2>"$work/log" &
PID=$!
i=0
until $CTR version >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 200 ] || fail "berthd did not start"; sleep 0.05; done

# --- helpers: blobs and manifests straight into the registry (curl, monolithic uploads) ------------------
sha() { sha256sum "$1" | cut -d' ' -f1; }
upload() { upload_to "$R" "$@"; }
put_manifest() { put_manifest_to "$R" "$@"; }
upload_to() { # HOST REPO FILE: POST a session, PUT the bytes with their digest (no one-shot POST here)
    u=http://$1
    shift
    loc=$(curl -fsS -D - -o /dev/null -X POST "$u/v2/$1/blobs/uploads/" | tr -d '\r' |
        sed -n 's/^[Ll]ocation: //p')
    case $loc in http*) ;; *) loc=$u$loc ;; esac
    case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
    curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$2" \
        "$loc${sep}digest=sha256:$(sha "$2")" || fail "upload of $2 to $1"
}
put_manifest_to() { # HOST REPO REF MEDIATYPE FILE
    curl -fsS -o /dev/null -X PUT -H "Content-Type: $4" --data-binary @"$5" "http://$1/v2/$2/manifests/$3" ||
        fail "manifest $3 of $2"
}
has_content() { $CTR content ls -q | grep -qx "sha256:$1"; }
has_snapshot() { $CTR snapshots ls | awk 'NR > 1 { print $1 }' | grep -qx "sha256:$1"; }
OCI_M=application/vnd.oci.image.manifest.v1+json
OCI_I=application/vnd.oci.image.index.v1+json

mf=$(grep -o 'sha256:[0-9a-f]*' "$work/fx/busybox-oci/index.json" | head -1 | cut -d: -f2)
cfg=$(grep -o '"config":{[^}]*}' "$BB/$mf" | grep -o 'sha256:[0-9a-f]*' | cut -d: -f2)
lay=$(grep -o '"layers":\[.*' "$BB/$mf" | grep -o 'sha256:[0-9a-f]*' | cut -d: -f2)
diffid=$(grep -o '"diff_ids":\["sha256:[0-9a-f]*' "$BB/$cfg" | cut -d: -f3)
for b in "$cfg" "$lay"; do upload berth/busybox "$BB/$b"; done
put_manifest berth/busybox latest $OCI_M "$BB/$mf"

# --- anonymous pull, unpacked while downloading; the image runs ----------------------------------------
REMOTE=$R/berth/busybox:latest
$CTR image pull --plain-http "$REMOTE" >"$work/out" 2>&1 || fail "pull: $(cat "$work/out")"
$CTR images ls -q | grep -qx "$REMOTE" || fail "the pulled image has no record"
$CTR images check | grep "$REMOTE" | grep -q complete || fail "pulled image incomplete"
has_snapshot "$diffid" || fail "no committed snapshot of the top chain id $diffid: $($CTR snapshots ls)"
$CTR content ls | grep "sha256:$lay" | grep -q "containerd.io/uncompressed=sha256:$diffid" ||
    fail "the layer is not labelled with its diff id: $($CTR content ls)"
$CTR content ls | grep "sha256:$cfg" | grep -q "containerd.io/gc.ref.snapshot.overlayfs=sha256:$diffid" ||
    fail "the config does not hold the snapshot"
$CTR content ls | grep "sha256:$mf" | grep -q "containerd.io/gc.ref.content.l.0=sha256:$lay" ||
    fail "the manifest does not hold its layer"
$CTR content ls | grep "sha256:$lay" | grep -q "containerd.io/distribution.source.$R=berth/busybox" ||
    fail "the layer has no distribution source label"
[ "$($CTR run --rm "$REMOTE" r1)" = "hello from berth" ] || fail "ctr run of the pulled image"
# a second pull finds everything in place
$CTR image pull --plain-http "$REMOTE" >"$work/out" 2>&1 || fail "second pull: $(cat "$work/out")"

# --- a multi-platform index: the host's manifest, or --platform's ----------------------------------------
arm=$work/arm
mkdir -p "$arm/rootfs/etc"
echo "arm64 only" >"$arm/rootfs/etc/arm64-marker"
tar -C "$arm/rootfs" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$arm/layer.tar" etc
gzip -n -c "$arm/layer.tar" >"$arm/layer.tgz"
adiff=$(sha "$arm/layer.tar")
alay=$(sha "$arm/layer.tgz")
printf '{"architecture":"arm64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$adiff" >"$arm/config.json"
acfg=$(sha "$arm/config.json")
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    $OCI_M "$acfg" "$(stat -c %s "$arm/config.json")" "$alay" "$(stat -c %s "$arm/layer.tgz")" >"$arm/manifest.json"
amf=$(sha "$arm/manifest.json")
printf '{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"sha256:%s","size":%s,"platform":{"architecture":"arm64","os":"linux"}},{"mediaType":"%s","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"}}]}' \
    $OCI_I $OCI_M "$amf" "$(stat -c %s "$arm/manifest.json")" $OCI_M "$mf" "$(stat -c %s "$BB/$mf")" >"$arm/index.json"
aidx=$(sha "$arm/index.json")
for f in "$BB/$cfg" "$BB/$lay" "$arm/config.json" "$arm/layer.tgz"; do upload berth/multi "$f"; done
put_manifest berth/multi "sha256:$amf" $OCI_M "$arm/manifest.json"
put_manifest berth/multi "sha256:$mf" $OCI_M "$BB/$mf"
put_manifest berth/multi 1 $OCI_I "$arm/index.json"
MULTI=$R/berth/multi:1
if [ "$(uname -m)" = x86_64 ]; then
    $CTR image pull --plain-http "$MULTI" >"$work/out" 2>&1 || fail "pull of the index: $(cat "$work/out")"
    $CTR images ls | grep "^$MULTI " | grep -q "sha256:$aidx" || fail "the image's target is not the index"
    has_content "$amf" || fail "all metadata: the other platform's manifest was not fetched"
    has_content "$acfg" || fail "all metadata: the other platform's config was not fetched"
    ! has_content "$alay" || fail "the other platform's layer was fetched"
    [ "$($CTR run --rm "$MULTI" r2)" = "hello from berth" ] || fail "ctr run of the index's amd64 image"
    $CTR images rm "$MULTI" >/dev/null
    $CTR image pull --plain-http --platform linux/arm64 "$MULTI" >"$work/out" 2>&1 ||
        fail "pull of linux/arm64: $(cat "$work/out")"
    has_content "$alay" || fail "--platform linux/arm64 did not fetch its layer"
    ! has_snapshot "$adiff" || fail "a foreign platform's layer was unpacked"
    $CTR images ls -q | grep -qx "$MULTI" || fail "the arm64 pull stored no image record"
fi

# mkimage DIR: a one-layer amd64 image of random bytes: DIR/{layer.tar,layer.tgz,config.json,manifest.json}
mkimage() { # DIR [BYTES]
    mkdir -p "$1/rootfs/etc"
    head -c "${2:-200000}" /dev/urandom >"$1/rootfs/etc/noise"
    tar -C "$1/rootfs" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$1/layer.tar" etc
    gzip -n -c "$1/layer.tar" >"$1/layer.tgz"
    printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
        "$(sha "$1/layer.tar")" >"$1/config.json"
    printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
        $OCI_M "$(sha "$1/config.json")" "$(stat -c %s "$1/config.json")" "$(sha "$1/layer.tgz")" \
        "$(stat -c %s "$1/layer.tgz")" >"$1/manifest.json"
}
# layout DIR NAME: DIR/image.tar, an OCI layout of mkimage's image named NAME
layout() {
    mkdir -p "$1/oci/blobs/sha256"
    for f in layer.tgz config.json manifest.json; do cp "$1/$f" "$1/oci/blobs/sha256/$(sha "$1/$f")"; done
    echo '{"imageLayoutVersion":"1.0.0"}' >"$1/oci/oci-layout"
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"%s","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s"}}]}' \
        $OCI_M "$(sha "$1/manifest.json")" "$(stat -c %s "$1/manifest.json")" "$2" >"$1/oci/index.json"
    tar -C "$1/oci" -cf "$1/image.tar" oci-layout index.json blobs
}

# --- a blob whose bytes are not its digest: refused, nothing committed, no image record -------------------
bad=$work/bad
mkimage "$bad"
blay=$(sha "$bad/layer.tgz")
upload berth/bad "$bad/config.json"
upload berth/bad "$bad/layer.tgz"
put_manifest berth/bad 1 $OCI_M "$bad/manifest.json"
# the registry serves what its disk holds: same size, other bytes
stored=$(find "$work/reg/data" -path "*/blobs/sha256/*/$blay/data")
[ -f "$stored" ] || fail "the registry's copy of the bad layer is not where expected"
head -c "$(stat -c %s "$bad/layer.tgz")" /dev/urandom >"$stored"
if $CTR image pull --plain-http "$R/berth/bad:1" >"$work/out" 2>&1; then fail "a corrupt blob was accepted"; fi
grep -qi "digest\|precondition" "$work/out" || fail "no digest error for a corrupt blob: $(cat "$work/out")"
! has_content "$blay" || fail "the corrupt blob was committed"
! $CTR images ls -q | grep -q "berth/bad" || fail "a failed pull left an image record"

# --- a config whose diff id does not match its layer: the unpack fails, no snapshot, no record ----------------
wrong=$work/wrong
mkimage "$wrong"
zero=$(printf '%064d' 0)
sed "s/\"diff_ids\":\[\"sha256:[0-9a-f]*\"/\"diff_ids\":[\"sha256:$zero\"/" "$wrong/config.json" >"$wrong/c2"
mv "$wrong/c2" "$wrong/config.json"
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    $OCI_M "$(sha "$wrong/config.json")" "$(stat -c %s "$wrong/config.json")" "$(sha "$wrong/layer.tgz")" \
    "$(stat -c %s "$wrong/layer.tgz")" >"$wrong/manifest.json"
for f in config.json layer.tgz; do upload berth/wrong "$wrong/$f"; done
put_manifest berth/wrong 1 $OCI_M "$wrong/manifest.json"
snaps=$($CTR snapshots ls | wc -l)
if $CTR image pull --plain-http "$R/berth/wrong:1" >"$work/out" 2>&1; then fail "a wrong diff id was unpacked"; fi
grep -q "wrong diff id" "$work/out" || fail "no clear error for a wrong diff id: $(cat "$work/out")"
[ "$($CTR snapshots ls | wc -l)" = "$snaps" ] || fail "the failed unpack left a snapshot: $($CTR snapshots ls)"
! $CTR images ls -q | grep -q "berth/wrong" || fail "a failed unpack left an image record"

# --- the image.post-pull hook vetoes: no record ------------------------------------------------------------
for b in "$cfg" "$lay"; do upload berth/vetoed "$BB/$b"; done
put_manifest berth/vetoed 1 $OCI_M "$BB/$mf"
if $CTR image pull --plain-http "$R/berth/vetoed:1" >"$work/out" 2>&1; then fail "the post-pull veto was ignored"; fi
grep -q "is not welcome" "$work/out" || fail "the veto's message did not reach ctr: $(cat "$work/out")"
! $CTR images ls -q | grep -q vetoed || fail "a vetoed pull stored an image record"
grep -q "default $REMOTE sha256:$mf layers=1" "$work/state/test.images.v1.post-pull/post-pull.log" ||
    fail "the post-pull hook did not see the pulled image"

# --- push: a new image is uploaded; one whose layers another repository holds is mounted ------------------
since() { tail -n +"$(($1 + 1))" "$work/reg/registry.log"; }
fresh=$work/fresh
mkimage "$fresh"
layout "$fresh" "$R/berth/fresh:1"
flay=$(sha "$fresh/layer.tgz")
$CTR1 images import --no-unpack "$fresh/image.tar" >/dev/null || fail "import"
mark=$(wc -l <"$work/reg/registry.log")
$CTR image push --plain-http "$R/berth/fresh:1" >"$work/out" 2>&1 || fail "push: $(cat "$work/out")"
curl -fsS -o /dev/null -H "Accept: $OCI_M" "$URL/v2/berth/fresh/manifests/1" || fail "the pushed tag is missing"
curl -fsS -o "$work/got" "$URL/v2/berth/fresh/blobs/sha256:$flay" || fail "the pushed layer is missing"
cmp -s "$work/got" "$fresh/layer.tgz" || fail "the pushed layer differs"
since "$mark" | grep '"PUT /v2/berth/fresh/blobs/uploads/' | grep -q "digest=sha256%3A$flay\|digest=sha256:$flay" ||
    fail "the new layer was not uploaded: $(since "$mark" | grep -c '"PUT ')"
# the pulled busybox carries berth/busybox as its source: pushed elsewhere, its layer is mounted from there
$CTR1 images tag "$REMOTE" "$R/berth/copy:1" >/dev/null
mark=$(wc -l <"$work/reg/registry.log")
$CTR image push --plain-http "$R/berth/copy:1" >"$work/out" 2>&1 || fail "push of the copy: $(cat "$work/out")"
curl -fsS -o /dev/null -I "$URL/v2/berth/copy/blobs/sha256:$lay" || fail "the copy's layer is missing"
since "$mark" | grep '"POST /v2/berth/copy/blobs/uploads/?' | grep "mount=sha256:$lay" | grep -q '" 201 ' ||
    fail "the layer was not mounted: $(since "$mark" | grep '"POST ')"
! since "$mark" | grep -q '"PUT /v2/berth/copy/blobs/uploads/.*'"$lay" || fail "the layer was uploaded, not mounted"
# pushing again: everything is there (HEAD), nothing goes up
mark=$(wc -l <"$work/reg/registry.log")
$CTR image push --plain-http "$R/berth/copy:1" >"$work/out" 2>&1 || fail "second push: $(cat "$work/out")"
! since "$mark" | grep -q '"PATCH \|"PUT /v2/berth/copy/blobs' || fail "a second push uploaded again"

# --- credentials through the auth stream: Basic, then Bearer tokens ----------------------------------------
rt_push() { # REF OPTS...: the busybox fixture through regtool
    ref=$1
    shift
    "$BIN/regtool" "$@" push-blob "$ref" "$BB/$cfg" >/dev/null &&
        "$BIN/regtool" "$@" push-blob "$ref" "$BB/$lay" >/dev/null &&
        "$BIN/regtool" "$@" push-manifest "$ref" "$BB/$mf" $OCI_M >/dev/null
}
rt_push "$RB/priv/busybox:1" --user alice:secret || fail "fixture into the Basic registry"
if $CTR image pull --plain-http "$RB/priv/busybox:1" >"$work/out" 2>&1; then fail "pulled anonymously with Basic auth"; fi
! $CTR images ls -q | grep -q "$RB/" || fail "a refused pull stored a record"
if $CTR image pull --plain-http --user alice:wrong "$RB/priv/busybox:1" >"$work/out" 2>&1; then
    fail "pulled with a wrong password"
fi
$CTR image pull --plain-http --user alice:secret "$RB/priv/busybox:1" >"$work/out" 2>&1 ||
    fail "pull with Basic auth: $(cat "$work/out")"
$CTR images ls -q | grep -qx "$RB/priv/busybox:1" || fail "no record after the Basic pull"
rt_push "$RT/priv/busybox:1" --user alice:secret || fail "fixture into the token registry"
if $CTR image pull --plain-http "$RT/priv/busybox:1" >"$work/out" 2>&1; then fail "pulled anonymously with tokens"; fi
$CTR image pull --plain-http --user alice:secret "$RT/priv/busybox:1" >"$work/out" 2>&1 ||
    fail "pull with a token: $(cat "$work/out")"
$CTR images ls -q | grep -qx "$RT/priv/busybox:1" || fail "no record after the token pull"
[ "$(grep -c "user=alice scopes=repository:priv/busybox:pull" "$work/issuer.log")" -ge 2 ] ||
    fail "berthd never asked the issuer for alice's token: $(cat "$work/issuer.log")"

# --- TLS with the test CA of the hosts configuration -------------------------------------------------------
printf 'plugins:\n  io.containerd.transfer.v1.local:\n    registries:\n      "%s": {server: "https://%s", ca: "%s"}\n' \
    "$RS" "$RS" "$work/ca.crt" >"$work/tls.yaml"
rt_push "$RS/test/busybox:1" --config "$work/tls.yaml" || fail "fixture into the TLS registry"
$CTR image pull "$RS/test/busybox:1" >"$work/out" 2>&1 || fail "pull over TLS: $(cat "$work/out")"
$CTR images ls -q | grep -qx "$RS/test/busybox:1" || fail "no record after the TLS pull"

# --- a mirror without the image answers 404: the upstream serves it -----------------------------------------
mirrored=$work/mirrored
mkimage "$mirrored"
for f in config.json layer.tgz; do upload_to "$RU" berth/mirrored "$mirrored/$f"; done
put_manifest_to "$RU" berth/mirrored 1 $OCI_M "$mirrored/manifest.json"
$CTR image pull --plain-http "$RU/berth/mirrored:1" >"$work/out" 2>&1 ||
    fail "pull past a 404 mirror: $(cat "$work/out")"
grep -q "/v2/berth/mirrored/manifests/1 .*status=404" "$work/mproxy.log" ||
    fail "the mirror was not asked first: $(cat "$work/mproxy.log")"
grep -q "GET /v2/berth/mirrored/blobs/sha256:$(sha "$mirrored/layer.tgz") .*status=404" "$work/mproxy.log" ||
    fail "the mirror was not asked for the layer: $(cat "$work/mproxy.log")"
has_content "$(sha "$mirrored/layer.tgz")" || fail "the layer did not come from the upstream"

# --- a connection cut in the middle of a layer: the retry fetches only the rest ------------------------------
big=$work/cutimg
mkimage "$big" 1500000
for f in config.json layer.tgz; do upload berth/cut "$big/$f"; done
put_manifest berth/cut 1 $OCI_M "$big/manifest.json"
blay=$(sha "$big/layer.tgz")
bsize=$(stat -c %s "$big/layer.tgz")
# the proxy cuts the first blob it serves: the config goes in beforehand, so that blob is the layer
$CTR1 content ingest --expected-digest "sha256:$(sha "$big/config.json")" cutcfg <"$big/config.json" ||
    fail "config ingest"
$CTR image pull --plain-http "$RC/berth/cut:1" >"$work/out" 2>&1 || fail "pull through a cut: $(cat "$work/out")"
grep "/blobs/sha256:$blay" "$work/cut.log" >"$work/cutreqs" || true
grep -q "range= status=200 bytes=300000 cut" "$work/cutreqs" || fail "no cut: $(cat "$work/cut.log")"
grep -q "range=bytes=300000- status=206 bytes=$((bsize - 300000))\$" "$work/cutreqs" ||
    fail "the retry did not fetch only the rest: $(cat "$work/cutreqs")"
[ "$(wc -l <"$work/cutreqs")" -eq 2 ] || fail "layer requests: $(cat "$work/cutreqs")"
$CTR images check | grep "$RC/berth/cut:1" | grep -q complete || fail "the resumed image is incomplete"
has_snapshot "$(sha "$big/layer.tar")" || fail "the resumed layer was not unpacked"
echo "transfer pull/push workflows: ok"
