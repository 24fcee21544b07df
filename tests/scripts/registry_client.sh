#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The transfer module's registry client (modules/transfer/registry.h) through regtool against real
# registries (Debian's docker-registry) on 127.0.0.1: anonymous pull and push (monolithic, chunked,
# cross-repository mount, manifest), Range resume after a cut connection, 503 + Retry-After, a blob that
# does not match its digest, a mirror that answers 404 then the upstream, Basic auth (htpasswd), Bearer
# token auth (a token issuer of our own, POST and GET grants, identity tokens), a redirect that must not
# carry the Authorization header, TLS with a test CA and client certificates.
#   registry_client.sh REGTOOL TOKENISSUER CUTPROXY
set -u

REGTOOL=$1
ISSUER=$2
PROXY=$3
SRC=$(cd "$(dirname "$0")/../.." && pwd)
REGSH="$SRC/tests/fixtures/images/registry.sh"
. "$SRC/tests/scripts/lib.sh"

work=$(mktemp -d /tmp/berth-regclient.XXXXXX)
cleanup() {
    stop_test_processes
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT INT TERM

base=$((20000 + $$ % 20000))
next_port=$base
# start_registry NAME [ENV=... ...]: a registry in $work/NAME on a free port; sets $port
start_registry() {
    name=$1
    shift
    for _ in 1 2 3 4 5 6 7 8; do
        next_port=$((next_port + 1))
        if env "$@" sh "$REGSH" start "$work/$name" "$next_port" >"$work/$name.start" 2>&1; then
            REGISTRY_DIRS="$REGISTRY_DIRS $work/$name"
            port=$next_port
            return 0
        fi
        rm -rf "${work:?}/$name"
    done
    cat "$work/$name.start"
    fail "registry $name did not start"
}

# start_helper NAME BINARY ARGS...: a Go helper on a port of its choosing; sets $hport, logs to NAME.log

rt() { "$REGTOOL" "$@"; }
# in the sanitizer build, reports (leaks on error paths too) go to files the end of the script checks
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$work/asan"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$work/ubsan"

# --- the fixture image -------------------------------------------------------------------------------
sh "$SRC/tests/fixtures/images/build-image.sh" busybox "$work/img" >/dev/null || fail "build-image"
layout=$work/img/busybox-oci
MANIFEST=$(grep -o '"digest":"sha256:[0-9a-f]*"' "$layout/index.json" | head -1 | cut -d'"' -f4)
mblob=$layout/blobs/sha256/${MANIFEST#sha256:}
CONFIG=$(grep -o '"config":{[^}]*}' "$mblob" | grep -o 'sha256:[0-9a-f]*')
LAYER=$(grep -o '"layers":\[{[^}]*}' "$mblob" | grep -o 'sha256:[0-9a-f]*')
layer_file=$layout/blobs/sha256/${LAYER#sha256:}
config_file=$layout/blobs/sha256/${CONFIG#sha256:}
LAYER_SIZE=$(stat -c %s "$layer_file")
MT=application/vnd.oci.image.manifest.v1+json
[ -n "$CONFIG" ] && [ -n "$LAYER" ] || fail "fixture digests"

# push_fixture REF [regtool options]: config, layer, manifest through regtool
push_fixture() {
    ref=$1
    shift
    rt "$@" push-blob "$ref" "$config_file" >/dev/null || return 1
    rt "$@" push-blob "$ref" "$layer_file" >/dev/null || return 1
    rt "$@" push-manifest "$ref" "$mblob" "$MT" >/dev/null
}

# --- anonymous, plain HTTP ---------------------------------------------------------------------------
start_registry anon
P1=$port
R1=127.0.0.1:$P1
sh "$SRC/tests/fixtures/images/build-image.sh" push-registry "$layout" "$R1" test/busybox:1 ||
    fail "skopeo push"

out=$(rt resolve "$R1/test/busybox:1") || fail "resolve: $out"
[ "$out" = "$MT $MANIFEST $(stat -c %s "$mblob")" ] || fail "resolve answered '$out'"
out=$(rt resolve "$R1/test/busybox@$MANIFEST") || fail "resolve by digest: $out"
[ "${out#* }" = "$MANIFEST $(stat -c %s "$mblob")" ] || fail "resolve by digest answered '$out'"
if rt resolve "$R1/test/busybox:nope" 2>"$work/err"; then fail "a missing tag resolved"; fi
grep -q "$R1/test/busybox:nope: not found" "$work/err" || fail "missing tag: $(cat "$work/err")"
rt manifest "$R1/test/busybox:1" >"$work/m" && cmp -s "$work/m" "$mblob" || fail "manifest differs"

rt fetch "$R1/test/busybox:1" "$LAYER" "$work/layer" >/dev/null || fail "fetch layer"
cmp -s "$work/layer" "$layer_file" || fail "fetched layer differs"
rt fetch "$R1/test/busybox:1" "$CONFIG" "$work/config" >/dev/null && cmp -s "$work/config" "$config_file" ||
    fail "fetch config"
head -c 100000 "$layer_file" >"$work/part"
rt fetch "$R1/test/busybox:1" "$LAYER" "$work/part" --offset 100000 2>"$work/err" >/dev/null ||
    fail "fetch from an offset: $(cat "$work/err")"
cmp -s "$work/part" "$layer_file" || fail "resumed layer differs"
grep -q "fetched $((LAYER_SIZE - 100000)) bytes" "$work/err" || fail "offset fetch: $(cat "$work/err")"
echo "ok anonymous resolve, manifest, fetch, fetch from an offset"

# --- through a proxy: a cut connection resumes with a Range; 503 + Retry-After; corrupt bytes -------
start_helper cut "$PROXY" -target "http://$R1" -cut 300000
rt fetch "127.0.0.1:$hport/test/busybox:1" "$LAYER" "$work/layer2" 2>"$work/err" >/dev/null ||
    fail "fetch through a cut: $(cat "$work/err")"
cmp -s "$work/layer2" "$layer_file" || fail "layer after a cut differs"
grep "/blobs/$LAYER" "$work/cut.log" >"$work/blobreqs"
grep -q "range= status=200 bytes=300000 cut" "$work/blobreqs" || fail "no cut: $(cat "$work/cut.log")"
grep -q "range=bytes=300000- status=206 bytes=$((LAYER_SIZE - 300000))\$" "$work/blobreqs" ||
    fail "the retry did not fetch only the rest: $(cat "$work/blobreqs")"
[ "$(wc -l <"$work/blobreqs")" -eq 2 ] || fail "blob requests: $(cat "$work/blobreqs")"
echo "ok a cut connection resumes with Range: bytes=300000-"

# several blobs at once (2 in flight), the first cut and resumed
sh "$SRC/tests/fixtures/images/build-image.sh" big "$work/img" 8 >/dev/null || fail "build-image big"
sh "$SRC/tests/fixtures/images/build-image.sh" push-registry "$work/img/big-oci" "$R1" test/big:1 ||
    fail "skopeo push big"
start_helper cutbig "$PROXY" -target "http://$R1" -cut 500000
printf 'plugins:\n  io.containerd.transfer.v1.local:\n    max_concurrent_downloads: 2\n' >"$work/two.yaml"
mkdir "$work/all"
out=$(rt --config "$work/two.yaml" fetch-all "127.0.0.1:$hport/test/big:1" "$work/all" 2>"$work/err") ||
    fail "fetch-all: $(cat "$work/err")"
[ "$out" = "ok 6 blobs" ] || fail "fetch-all said '$out'"
for f in "$work"/all/*; do
    cmp -s "$f" "$work/img/big-oci/blobs/sha256/${f##*/}" || fail "blob ${f##*/} differs"
done
[ "$(grep -c " cut\$" "$work/cutbig.log")" -eq 1 ] && grep -q "range=bytes=500000- status=206" "$work/cutbig.log" ||
    fail "fetch-all resume: $(cat "$work/cutbig.log")"
echo "ok several blobs at once, one of them resumed"

start_helper busy "$PROXY" -target "http://$R1" -fail 2
t0=$(date +%s)
rt fetch "127.0.0.1:$hport/test/busybox:1" "$LAYER" "$work/layer3" >/dev/null 2>"$work/err" ||
    fail "fetch after 503s: $(cat "$work/err")"
t1=$(date +%s)
cmp -s "$work/layer3" "$layer_file" || fail "layer after 503s differs"
[ "$(grep -c "/blobs/$LAYER.*status=503" "$work/busy.log")" -eq 2 ] || fail "503s: $(cat "$work/busy.log")"
[ $((t1 - t0)) -ge 2 ] || fail "Retry-After: 1 not honoured (took $((t1 - t0)) s)"
echo "ok 503 with Retry-After retried"

start_helper corrupt "$PROXY" -target "http://$R1" -corrupt
rt fetch "127.0.0.1:$hport/test/busybox:1" "$LAYER" "$work/bad" >/dev/null 2>"$work/err"
rc=$?
[ $rc -eq 3 ] && grep -q "digest mismatch" "$work/err" || fail "corrupt blob: rc $rc, $(cat "$work/err")"
echo "ok a blob that does not match its digest is reported"

if rt fetch "$R1/test/busybox:1" "$LAYER" "$work/short" --size 1000 2>"$work/err" >/dev/null; then
    fail "a blob longer than its size was accepted"
fi
grep -q "more bytes than its size" "$work/err" || fail "size overrun: $(cat "$work/err")"
echo "ok more bytes than the descriptor's size is an error"

start_helper norange "$PROXY" -target "http://$R1" -norange
head -c 100000 "$layer_file" >"$work/part2"
rt fetch "127.0.0.1:$hport/test/busybox:1" "$LAYER" "$work/part2" --offset 100000 2>"$work/err" >/dev/null ||
    fail "fetch when the Range is ignored: $(cat "$work/err")"
cmp -s "$work/part2" "$layer_file" || fail "layer after a restart differs"
grep -q "starting over" "$work/err" && grep -q "1 restarts" "$work/err" || fail "no restart: $(cat "$work/err")"
echo "ok a server that ignores the Range (200) restarts the download"

start_helper nodigest "$PROXY" -target "http://$R1" -nodigest
nodigest=$hport
out=$(rt resolve "127.0.0.1:$hport/test/busybox:1") || fail "resolve without Docker-Content-Digest"
[ "${out#* }" = "$MANIFEST $(stat -c %s "$mblob")" ] || fail "resolve without a digest header: '$out'"
grep -q "^HEAD /v2/test/busybox/manifests/1 .*status=200" "$work/nodigest.log" &&
    grep -q "^GET /v2/test/busybox/manifests/1 .*status=200" "$work/nodigest.log" ||
    fail "no HEAD then GET: $(cat "$work/nodigest.log")"
echo "ok a HEAD without Docker-Content-Digest is followed by a GET, digested locally"

# --- push: monolithic, chunked (through a logging proxy), exists, mount, manifest --------------------
head -c 300000 /dev/urandom >"$work/blob1"
out=$(rt push-blob "$R1/test/pushed" "$work/blob1") || fail "monolithic push"
d1=${out#pushed }
[ "$out" = "pushed sha256:$(sha256sum "$work/blob1" | cut -d' ' -f1)" ] || fail "push said '$out'"
rt fetch "$R1/test/pushed:x" "$d1" "$work/back1" --size 300000 >/dev/null && cmp -s "$work/back1" "$work/blob1" ||
    fail "monolithic blob did not come back"
[ "$(rt push-blob "$R1/test/pushed" "$work/blob1")" = "exists $d1" ] || fail "second push did not see the blob"

start_helper log "$PROXY" -target "http://$R1"
head -c 200000 /dev/urandom >"$work/blob2"
out=$(rt push-blob "127.0.0.1:$hport/test/pushed" "$work/blob2" --chunk 65536) || fail "chunked push"
d2=${out#pushed }
[ "$(grep -c "^PATCH /v2/test/pushed/blobs/uploads/" "$work/log.log")" -eq 4 ] ||
    fail "chunked push: $(cat "$work/log.log")"
grep -q "^PUT /v2/test/pushed/blobs/uploads/.* status=201" "$work/log.log" || fail "no closing PUT"
rt fetch "$R1/test/pushed:x" "$d2" "$work/back2" --size 200000 >/dev/null && cmp -s "$work/back2" "$work/blob2" ||
    fail "chunked blob did not come back"

out=$(rt push-blob "127.0.0.1:$hport/other/busybox" "$layer_file" --mount-from test/busybox) ||
    fail "mount: $out"
[ "$out" = "mounted $LAYER" ] || fail "mount said '$out'"
grep -q "^POST /v2/other/busybox/blobs/uploads/ range= status=201" "$work/log.log" ||
    fail "mount not answered 201: $(grep POST "$work/log.log")"
out=$(rt push-blob "$R1/other/busybox" "$work/blob1" --mount-from nothing/here 2>/dev/null) ||
    fail "mount fallback: $out"
[ "$out" = "pushed $d1" ] || fail "a mount from a repository without the blob said '$out'"
rt push-blob "$R1/other/busybox" "$config_file" >/dev/null || fail "config push"
rt push-manifest "$R1/other/busybox:2" "$mblob" "$MT" >/dev/null || fail "manifest push"
out=$(rt resolve "$R1/other/busybox:2") || fail "resolve the pushed manifest"
[ "$out" = "$MT $MANIFEST $(stat -c %s "$mblob")" ] || fail "pushed manifest resolved as '$out'"
echo "ok push: monolithic, chunked, exists, mount (201), mount fallback, manifest"

# --- an unreachable mirror, a mirror that has nothing (404), then the upstream; a mirror that has it ---
start_registry mirror
P2=$port
start_helper mproxy "$PROXY" -target "http://127.0.0.1:$P2"
cat >"$work/mirror.yaml" <<EOF
plugins:
  io.containerd.transfer.v1.local:
    registries:
      "$R1":
        server: http://$R1
        mirrors:
          - url: http://127.0.0.1:1
          - url: http://127.0.0.1:$hport
EOF
out=$(rt --config "$work/mirror.yaml" resolve "$R1/test/busybox:1") || fail "resolve with a mirror: $out"
[ "${out#* }" = "$MANIFEST $(stat -c %s "$mblob")" ] || fail "mirror resolve answered '$out'"
grep -q "^HEAD /v2/test/busybox/manifests/1 range= status=404" "$work/mproxy.log" ||
    fail "the mirror was not asked first: $(cat "$work/mproxy.log")"
rt --config "$work/mirror.yaml" fetch "$R1/test/busybox:1" "$LAYER" "$work/layer4" >/dev/null &&
    cmp -s "$work/layer4" "$layer_file" || fail "fetch with a 404 mirror"
grep -q "^GET /v2/test/busybox/blobs/$LAYER range= status=404" "$work/mproxy.log" ||
    fail "the mirror was not asked for the blob"
# the mirror learns the image; now it serves the blob
sh "$SRC/tests/fixtures/images/build-image.sh" push-registry "$layout" "127.0.0.1:$P2" test/busybox:1 ||
    fail "skopeo push to the mirror"
rt --config "$work/mirror.yaml" fetch "$R1/test/busybox:1" "$LAYER" "$work/layer5" >/dev/null &&
    cmp -s "$work/layer5" "$layer_file" || fail "fetch from the mirror"
grep -q "^GET /v2/test/busybox/blobs/$LAYER range= status=200 bytes=$LAYER_SIZE" "$work/mproxy.log" ||
    fail "the mirror did not serve the blob: $(cat "$work/mproxy.log")"
echo "ok mirror: unreachable and 404 fall through to the upstream, a hit is served by the mirror"

# mirror paths: a prefix gets /v2 appended; with override_path the URL's path is the API root
start_helper pfx "$PROXY" -target "http://127.0.0.1:$P2" -strip /pfx
pfx=$hport
start_helper api "$PROXY" -target "http://127.0.0.1:$P2" -strip /api -with /v2
cat >"$work/paths.yaml" <<EOF
plugins:
  io.containerd.transfer.v1.local:
    registries:
      "$R1":
        server: http://127.0.0.1:1
        mirrors:
          - url: http://127.0.0.1:$pfx/pfx
            capabilities: [resolve]
          - url: http://127.0.0.1:$hport/api
            override_path: true
            capabilities: [pull]
EOF
rt --config "$work/paths.yaml" fetch "$R1/test/busybox:1" "$LAYER" "$work/layer11" >/dev/null 2>"$work/err" &&
    cmp -s "$work/layer11" "$layer_file" || fail "fetch through mirror paths: $(cat "$work/err")"
grep -q "^HEAD /v2/test/busybox/manifests/1 range= status=200" "$work/pfx.log" ||
    fail "path prefix: $(cat "$work/pfx.log")"
grep -q "^GET /v2/test/busybox/blobs/$LAYER range= status=200" "$work/api.log" ||
    fail "override_path: $(cat "$work/api.log")"
! grep -q "outside the prefix" "$work/pfx.log" "$work/api.log" || fail "a request missed the mirror's path"
echo "ok mirror URL paths: /v2 appended, or the path itself with override_path; capabilities per mirror"

# the manifest size limit, from the descriptor and while reading
printf 'plugins:\n  io.containerd.transfer.v1.local:\n    manifest_limit: 1024\n' >"$work/limit.yaml"
if rt --config "$work/limit.yaml" manifest "$R1/test/big:1" 2>"$work/err" >/dev/null; then
    fail "a manifest over the limit was fetched"
fi
grep -q "over the limit of 1024" "$work/err" || fail "manifest limit: $(cat "$work/err")"
if rt --config "$work/limit.yaml" resolve "127.0.0.1:$nodigest/test/big:1" 2>"$work/err" >/dev/null; then
    fail "a manifest over the limit was read"
fi
grep -q "larger than the limit of 1024" "$work/err" || fail "manifest read limit: $(cat "$work/err")"
rt --config "$work/limit.yaml" resolve "$R1/test/busybox:1" >/dev/null || fail "a small manifest under the limit"
echo "ok the manifest size limit"

# --- Basic auth (htpasswd) ---------------------------------------------------------------------------
rt htpasswd alice secret >"$work/htpasswd" || fail "bcrypt"
start_registry basic REGISTRY_HTPASSWD="$work/htpasswd"
R3=127.0.0.1:$port
push_fixture "$R3/priv/busybox:1" --user alice:secret || fail "push with Basic auth"
if rt resolve "$R3/priv/busybox:1" 2>"$work/err" >/dev/null; then fail "resolved without credentials"; fi
grep -q "Unauthenticated\|basic authentication needs" "$work/err" || fail "anonymous: $(cat "$work/err")"
if rt --user alice:wrong resolve "$R3/priv/busybox:1" 2>/dev/null >/dev/null; then
    fail "resolved with a wrong password"
fi
rt --user alice:secret fetch "$R3/priv/busybox:1" "$LAYER" "$work/layer6" >/dev/null &&
    cmp -s "$work/layer6" "$layer_file" || fail "fetch with Basic auth"
cat >"$work/basic.yaml" <<EOF
plugins:
  io.containerd.transfer.v1.local:
    registries:
      "$R3":
        auth: {username: alice, password: secret}
EOF
rt --config "$work/basic.yaml" resolve "$R3/priv/busybox:1" >/dev/null 2>"$work/err" ||
    fail "static Basic credentials: $(cat "$work/err")"
! grep -q "credentials asked" "$work/err" || fail "the callback was asked despite static credentials"
echo "ok Basic auth: push, refused anonymously and with a wrong password, callback and static credentials"

# --- Bearer token auth with our issuer ---------------------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/tok.key" -out "$work/tok.crt" -days 2 \
    -subj /CN=berth-token-signer >/dev/null 2>&1 || fail "token certificate"
start_helper issuer "$ISSUER" -key "$work/tok.key" -cert "$work/tok.crt" -user alice -pass secret \
    -refresh identity-xyz
ihport=$hport
start_registry token \
    REGISTRY_TOKEN="http://127.0.0.1:$hport/token berth-registry berth-test-issuer $work/tok.crt"
R4=127.0.0.1:$port
push_fixture "$R4/priv/busybox:1" --user alice:secret || fail "push with a token: $(cat "$work/issuer.log")"
grep -q "^POST user=alice scopes=repository:priv/busybox:pull,push" "$work/issuer.log" ||
    fail "no password grant: $(cat "$work/issuer.log")"
if rt resolve "$R4/priv/busybox:1" 2>"$work/err" >/dev/null; then fail "a private repository resolved anonymously"; fi
grep -q "^GET user= scopes=repository:priv/busybox:pull granted=\[\]" "$work/issuer.log" ||
    fail "no anonymous token request: $(cat "$work/issuer.log")"
rt --user alice:secret fetch "$R4/priv/busybox:1" "$LAYER" "$work/layer7" >/dev/null &&
    cmp -s "$work/layer7" "$layer_file" || fail "fetch with a token"
rt --user identity-xyz resolve "$R4/priv/busybox:1" >/dev/null || fail "identity token"
grep -q "^POST user=refresh" "$work/issuer.log" || fail "no refresh_token grant"
if rt --user alice:wrong resolve "$R4/priv/busybox:1" 2>/dev/null >/dev/null; then fail "a wrong password got a token"; fi
out=$(rt --user alice:secret push-blob "$R4/public/busybox" "$layer_file" --mount-from priv/busybox) ||
    fail "mount with a token: $out"
[ "$out" = "mounted $LAYER" ] || fail "token mount said '$out'"
grep -q "scopes=repository:public/busybox:pull,push|repository:priv/busybox:pull" "$work/issuer.log" ||
    fail "mount scopes: $(cat "$work/issuer.log")"
rt --user alice:secret push-blob "$R4/public/busybox" "$config_file" >/dev/null || fail "public config"
rt --user alice:secret push-manifest "$R4/public/busybox:1" "$mblob" "$MT" >/dev/null || fail "public manifest"
rt fetch "$R4/public/busybox:1" "$LAYER" "$work/layer8" >/dev/null && cmp -s "$work/layer8" "$layer_file" ||
    fail "anonymous pull of a public repository"
echo "ok Bearer tokens: password and refresh grants, anonymous tokens, mount scopes"

# a token server without the POST form (404): GET with Basic credentials; a realm with a query string
start_registry token2 \
    REGISTRY_TOKEN="http://127.0.0.1:$ihport/token?nopost=1 berth-registry berth-test-issuer $work/tok.crt"
R4b=127.0.0.1:$port
: >"$work/issuer.log"
push_fixture "$R4b/priv/busybox:1" --user alice:secret || fail "push when POST is refused"
grep -q "^POST refused" "$work/issuer.log" && grep -q "^GET user=alice scopes=repository:priv/busybox:pull,push" \
    "$work/issuer.log" || fail "no GET fallback: $(cat "$work/issuer.log")"
echo "ok a token server without the POST form is asked with GET and Basic credentials"

# a redirect to another host name carries no Authorization
start_helper redirect "$PROXY" -target "http://$R4" -redirect
rt --user alice:secret fetch "127.0.0.1:$hport/priv/busybox:1" "$LAYER" "$work/layer10" >/dev/null 2>"$work/err" &&
    cmp -s "$work/layer10" "$layer_file" || fail "fetch through a redirect: $(cat "$work/err")"
grep -q "^GET /v2/priv/busybox/blobs/$LAYER range= status=307 auth=yes" "$work/redirect.log" ||
    fail "no authorized redirect: $(cat "$work/redirect.log")"
grep -q "^REDIRECTED /v2/priv/busybox/blobs/$LAYER auth=no" "$work/redirect.log" ||
    fail "Authorization sent to the redirect's host: $(cat "$work/redirect.log")"
echo "ok a blob redirect to another host follows without the Authorization header"

# --- TLS with a test CA -------------------------------------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/ca.key" -out "$work/ca.crt" -days 2 \
    -subj /CN=berth-test-ca >/dev/null 2>&1 || fail "CA"
openssl req -newkey rsa:2048 -nodes -keyout "$work/srv.key" -out "$work/srv.csr" -subj /CN=127.0.0.1 \
    >/dev/null 2>&1 || fail "server key"
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$work/srv.ext"
openssl x509 -req -in "$work/srv.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
    -out "$work/srv.crt" -days 2 -extfile "$work/srv.ext" >/dev/null 2>&1 || fail "server certificate"
start_registry tls REGISTRY_TLS="$work/srv.crt $work/srv.key"
R5=127.0.0.1:$port
tls_config() { # tls_config FILE EXTRA-LINE
    printf 'plugins:\n  io.containerd.transfer.v1.local:\n    registries:\n      "%s":\n        server: https://%s\n%s\n' \
        "$R5" "$R5" "$2" >"$1"
}
tls_config "$work/tls-ca.yaml" "        ca: $work/ca.crt"
tls_config "$work/tls-none.yaml" ""
tls_config "$work/tls-skip.yaml" "        skip_verify: true"
push_fixture "$R5/test/busybox:1" --config "$work/tls-ca.yaml" || fail "push over TLS"
rt --config "$work/tls-ca.yaml" fetch "$R5/test/busybox:1" "$LAYER" "$work/layer9" >/dev/null &&
    cmp -s "$work/layer9" "$layer_file" || fail "fetch over TLS with the test CA"
if rt --config "$work/tls-none.yaml" resolve "$R5/test/busybox:1" 2>"$work/err" >/dev/null; then
    fail "an unknown CA was trusted"
fi
grep -qi "certificate" "$work/err" || fail "unknown CA: $(cat "$work/err")"
rt --config "$work/tls-skip.yaml" resolve "$R5/test/busybox:1" >/dev/null || fail "skip_verify"
rt resolve "$R5/test/busybox:1" >/dev/null || fail "a loopback registry without configuration (TLS first)"
echo "ok TLS: test CA added to the system's, unknown CA refused, skip_verify, loopback default"

# HTTP/2 over TLS, and one connection for the whole pull (the blobs on the multi handle included)
skopeo copy --quiet --dest-tls-verify=false "oci:$work/img/big-oci:latest" "docker://$R5/test/big:1" ||
    fail "skopeo push big over TLS"
printf '    max_concurrent_downloads: 3\n' >>"$work/tls-ca.yaml"
mkdir "$work/all5"
rt -v --config "$work/tls-ca.yaml" fetch-all "$R5/test/big:1" "$work/all5" >/dev/null 2>"$work/err" ||
    fail "fetch-all over TLS: $(cat "$work/err")"
grep "conn=" "$work/err" >"$work/conns"
[ "$(wc -l <"$work/conns")" -eq 8 ] && [ "$(grep -c " HTTP/2\" conn=" "$work/conns")" -eq 8 ] ||
    fail "not HTTP/2: $(cat "$work/conns")"
[ "$(grep -c "conn=new" "$work/conns")" -eq 1 ] || fail "connections not shared: $(cat "$work/conns")"
echo "ok HTTP/2 over TLS, one connection for a whole pull"

# client certificates: a registry that asks for one signed by the test CA
openssl req -newkey rsa:2048 -nodes -keyout "$work/cli.key" -out "$work/cli.csr" -subj /CN=berth-client \
    >/dev/null 2>&1 || fail "client key"
printf 'extendedKeyUsage=clientAuth\n' >"$work/cli.ext"
openssl x509 -req -in "$work/cli.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
    -out "$work/cli.crt" -days 2 -extfile "$work/cli.ext" >/dev/null 2>&1 || fail "client certificate"
start_registry mtls REGISTRY_TLS="$work/srv.crt $work/srv.key $work/ca.crt"
R5=127.0.0.1:$port
tls_config "$work/mtls-none.yaml" "        ca: $work/ca.crt"
tls_config "$work/mtls.yaml" "        ca: $work/ca.crt
        client_cert: $work/cli.crt
        client_key: $work/cli.key"
if rt --config "$work/mtls-none.yaml" resolve "$R5/test/busybox:1" 2>"$work/err" >/dev/null; then
    fail "a registry that wants a client certificate answered without one"
fi
push_fixture "$R5/test/busybox:1" --config "$work/mtls.yaml" || fail "push with a client certificate"
out=$(rt --config "$work/mtls.yaml" resolve "$R5/test/busybox:1") || fail "resolve with a client certificate"
[ "${out#* }" = "$MANIFEST $(stat -c %s "$mblob")" ] || fail "mTLS resolve answered '$out'"
echo "ok TLS client certificates"

if ls "$work"/asan.* "$work"/ubsan.* >/dev/null 2>&1; then
    cat "$work"/asan.* "$work"/ubsan.* 2>/dev/null | head -60
    fail "sanitizer reports"
fi
echo "PASS registry_client"
