/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Walking a stored image as containerd's client does: Images.Get -> target -> (index: the manifest of the
 * platform, as containerd's default matcher) -> manifest -> config. Blobs come through Content.Read.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <json-c/json.h>

#include "image_internal.h"
#include "internal.h"
#include "services/content/v1/content.pb-c.h"
#include "services/images/v1/images.pb-c.h"

/* ---- SHA-256 (FIPS 180-4): only for ChainIDs, so the library needs no crypto dependency ---- */

typedef struct {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    size_t n;
} sha256_t;

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void
sha256_block(sha256_t *s, const uint8_t *p)
{
    uint32_t w[64], a[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(a, s->h, sizeof a);
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = a[7] + (ROR(a[4], 6) ^ ROR(a[4], 11) ^ ROR(a[4], 25)) +
                      ((a[4] & a[5]) ^ (~a[4] & a[6])) + K[i] + w[i];
        uint32_t t2 = (ROR(a[0], 2) ^ ROR(a[0], 13) ^ ROR(a[0], 22)) +
                      ((a[0] & a[1]) ^ (a[0] & a[2]) ^ (a[1] & a[2]));
        memmove(a + 1, a, 7 * sizeof a[0]);
        a[4] += t1;
        a[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++)
        s->h[i] += a[i];
}

static void
sha256_update(sha256_t *s, const uint8_t *p, size_t len)
{
    s->len += len;
    while (len) {
        size_t k = 64 - s->n < len ? 64 - s->n : len;
        memcpy(s->buf + s->n, p, k);
        s->n += k, p += k, len -= k;
        if (s->n == 64) {
            sha256_block(s, s->buf);
            s->n = 0;
        }
    }
}

void
bc_sha256_digest(const void *data, size_t len, char out[72])
{
    sha256_t s = {.h = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c,
                        0x1f83d9ab, 0x5be0cd19}};
    sha256_update(&s, data, len);
    uint64_t bits = s.len * 8;
    uint8_t pad = 0x80, zero = 0, lenb[8];
    sha256_update(&s, &pad, 1);
    while (s.n != 56)
        sha256_update(&s, &zero, 1);
    for (int i = 0; i < 8; i++)
        lenb[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_update(&s, lenb, 8);
    char *o = out + sprintf(out, "sha256:");
    for (int i = 0; i < 8; i++)
        o += sprintf(o, "%08x", s.h[i]);
}

char *
bc_chain_id(char *const *diff_ids, size_t n)
{
    if (n == 0)
        return NULL;
    char cur[72];
    snprintf(cur, sizeof cur, "%s", diff_ids[0]);
    for (size_t i = 1; i < n; i++) {
        /* ChainID(L0..Ln) = SHA256(ChainID(L0..Ln-1) + " " + DiffID(Ln)) */
        char *buf = NULL;
        if (asprintf(&buf, "%s %s", cur, diff_ids[i]) < 0)
            return NULL;
        bc_sha256_digest(buf, strlen(buf), cur);
        free(buf);
    }
    return strdup(cur);
}

/* ---- platforms ---- */

const char *
bc_default_platform(void)
{
    static const char *p;
    if (p)
        return p;
    struct utsname u;
    const char *r = "linux/amd64";
    if (uname(&u) == 0) {
        if (!strcmp(u.machine, "aarch64"))
            r = "linux/arm64";
        else if (!strncmp(u.machine, "arm", 3))
            r = "linux/arm";
        else if (!strcmp(u.machine, "ppc64le"))
            r = "linux/ppc64le";
        else if (!strcmp(u.machine, "s390x"))
            r = "linux/s390x";
        else if (!strcmp(u.machine, "riscv64"))
            r = "linux/riscv64";
    }
    p = r;
    return p;
}

static int
platform_matches(json_object *plat, const char *want)
{
    json_object *o, *a;
    if (!plat || !json_object_object_get_ex(plat, "os", &o) ||
        !json_object_object_get_ex(plat, "architecture", &a))
        return 0;
    const char *os = json_object_get_string(o), *arch = json_object_get_string(a);
    if (!strcmp(arch, "x86_64") || !strcmp(arch, "x86-64"))
        arch = "amd64";
    else if (!strcmp(arch, "aarch64"))
        arch = "arm64";
    size_t ol = strlen(os);
    /* want is "os/arch[/variant]"; the variant is not compared (amd64 has none, arm64's is v8) */
    return !strncmp(want, os, ol) && want[ol] == '/' &&
           !strncmp(want + ol + 1, arch, strlen(arch)) &&
           (want[ol + 1 + strlen(arch)] == '\0' || want[ol + 1 + strlen(arch)] == '/');
}

/* ---- blobs ---- */

int
bc_blob_read(berth_client_t *c, const berth_call_t *call, const char *digest, char **data,
             size_t *len, berth_error_t **err)
{
    bc_stream_t *s = NULL;
    int rc = bc_stream_open(c, call, "/containerd.services.content.v1.Content/Read", &s, err);
    if (rc < 0)
        return rc;
    Containerd__Services__Content__V1__ReadContentRequest req =
        CONTAINERD__SERVICES__CONTENT__V1__READ_CONTENT_REQUEST__INIT;
    req.digest = (char *)digest;
    char *buf = NULL;
    size_t n = 0;
    if ((rc = bc_stream_send(s, &req.base, err)) < 0 || (rc = bc_stream_close_send(s, err)) < 0)
        goto out;
    for (;;) {
        ProtobufCMessage *m = NULL;
        rc = bc_stream_recv(
            s, &containerd__services__content__v1__read_content_response__descriptor, &m, err);
        if (rc <= 0)
            break;
        Containerd__Services__Content__V1__ReadContentResponse *r = (void *)m;
        char *nb = realloc(buf, n + r->data.len + 1);
        if (!nb) {
            protobuf_c_message_free_unpacked(m, NULL);
            rc = bc_error(err, BERTH_ENOMEM, "read blob %s: out of memory", digest);
            break;
        }
        buf = nb;
        memcpy(buf + n, r->data.data, r->data.len);
        n += r->data.len;
        protobuf_c_message_free_unpacked(m, NULL);
    }
out:
    bc_stream_free(s);
    if (rc < 0) {
        free(buf);
        return bc_error_wrap(err, rc, "read blob %s", digest);
    }
    if (!buf && !(buf = malloc(1)))
        return bc_error(err, BERTH_ENOMEM, "read blob %s: out of memory", digest);
    buf[n] = '\0';
    *data = buf;
    if (len)
        *len = n;
    return 0;
}

/* ---- the walk ---- */

static int
desc_from_json(json_object *d, berth_descriptor_t *out)
{
    json_object *mt = NULL, *dg = NULL, *sz = NULL;
    json_object_object_get_ex(d, "mediaType", &mt);
    json_object_object_get_ex(d, "digest", &dg);
    json_object_object_get_ex(d, "size", &sz);
    out->media_type = bc_strdup(mt ? json_object_get_string(mt) : "");
    out->digest = bc_strdup(dg ? json_object_get_string(dg) : "");
    out->size = sz ? json_object_get_int64(sz) : 0;
    return out->media_type && out->digest ? 0 : BERTH_ENOMEM;
}

static void
desc_clear(berth_descriptor_t *d)
{
    free(d->media_type);
    free(d->digest);
    d->media_type = d->digest = NULL;
}

static int
is_index(const char *mt)
{
    return !strcmp(mt, "application/vnd.oci.image.index.v1+json") ||
           !strcmp(mt, "application/vnd.docker.distribution.manifest.list.v2+json");
}

static int
is_manifest(const char *mt)
{
    return !strcmp(mt, "application/vnd.oci.image.manifest.v1+json") ||
           !strcmp(mt, "application/vnd.docker.distribution.manifest.v2+json");
}

static int
read_json(berth_client_t *c, const berth_call_t *call, const char *digest, json_object **out,
          berth_error_t **err)
{
    char *data = NULL;
    int rc = bc_blob_read(c, call, digest, &data, NULL, err);
    if (rc < 0)
        return rc;
    *out = json_tokener_parse(data);
    free(data);
    if (!*out)
        return bc_error(err, BERTH_EINVAL, "blob %s: not JSON", digest);
    return 0;
}

/* From an index (possibly nested) to the platform's manifest: the first match in the index's order, a
 * manifest without a platform only when none matches (containerd's matcher sorts the same way). */
static int
pick_manifest(berth_client_t *c, const berth_call_t *call, bc_image_t *img,
              const berth_descriptor_t *idx, const char *platform, int depth, berth_error_t **err)
{
    json_object *j = NULL, *ms = NULL;
    int rc = read_json(c, call, idx->digest, &j, err);
    if (rc < 0)
        return rc;
    img->size += idx->size;
    json_object_object_get_ex(j, "manifests", &ms);
    size_t n = ms ? json_object_array_length(ms) : 0;
    json_object *found = NULL, *fallback = NULL;
    for (size_t i = 0; i < n && !found; i++) {
        json_object *m = json_object_array_get_idx(ms, i), *mt = NULL, *plat = NULL;
        json_object_object_get_ex(m, "mediaType", &mt);
        int has_plat = json_object_object_get_ex(m, "platform", &plat);
        if (has_plat && platform_matches(plat, platform))
            found = m;
        else if (!has_plat && !fallback && mt && is_manifest(json_object_get_string(mt)))
            fallback = m;
        else if (!has_plat && !fallback && mt && is_index(json_object_get_string(mt)))
            fallback = m;
    }
    if (!found)
        found = fallback;
    if (!found) {
        json_object_put(j);
        return bc_error(err, BERTH_ENOTFOUND, "image \"%s\": no manifest for platform %s",
                        img->name, platform);
    }
    berth_descriptor_t d = {0};
    desc_from_json(found, &d);
    json_object_put(j);
    if (is_index(d.media_type) && depth < 4) {
        rc = pick_manifest(c, call, img, &d, platform, depth + 1, err);
        desc_clear(&d);
        return rc;
    }
    img->manifest = d;
    return 0;
}

static int
read_manifest(berth_client_t *c, const berth_call_t *call, bc_image_t *img, berth_error_t **err)
{
    json_object *j = NULL, *cfg = NULL, *layers = NULL;
    int rc = read_json(c, call, img->manifest.digest, &j, err);
    if (rc < 0)
        return rc;
    if (!json_object_object_get_ex(j, "config", &cfg)) {
        json_object_put(j);
        return bc_error(err, BERTH_EINVAL, "image \"%s\": manifest %s has no config", img->name,
                        img->manifest.digest);
    }
    desc_from_json(cfg, &img->config);
    json_object_object_get_ex(j, "layers", &layers);
    size_t n = layers ? json_object_array_length(layers) : 0;
    img->layers = calloc(n ? n : 1, sizeof *img->layers);
    for (size_t i = 0; img->layers && i < n; i++) {
        desc_from_json(json_object_array_get_idx(layers, i), &img->layers[i]);
        img->n_layers++;
        img->size += img->layers[i].size;
    }
    img->size += img->manifest.size + img->config.size;
    json_object_put(j);
    return img->layers ? 0 : bc_error(err, BERTH_ENOMEM, "out of memory");
}

static int
read_config(berth_client_t *c, const berth_call_t *call, bc_image_t *img, berth_error_t **err)
{
    int rc = bc_blob_read(c, call, img->config.digest, &img->config_json, NULL, err);
    if (rc < 0)
        return rc;
    json_object *j = json_tokener_parse(img->config_json), *rootfs = NULL, *ids = NULL;
    if (!j)
        return bc_error(err, BERTH_EINVAL, "image \"%s\": config %s is not JSON", img->name,
                        img->config.digest);
    if (json_object_object_get_ex(j, "rootfs", &rootfs))
        json_object_object_get_ex(rootfs, "diff_ids", &ids);
    size_t n = ids ? json_object_array_length(ids) : 0;
    img->diff_ids = calloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; img->diff_ids && i < n; i++)
        img->diff_ids[img->n_diff_ids++] =
            bc_strdup(json_object_get_string(json_object_array_get_idx(ids, i)));
    json_object_put(j);
    if (!img->diff_ids)
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    img->chain_id = n ? bc_chain_id(img->diff_ids, n) : bc_strdup("");
    return 0;
}

int
bc_image_resolve(berth_client_t *c, const berth_call_t *call, const char *name,
                 const char *platform, bc_image_t **out, berth_error_t **err)
{
    if (!name || !*name)
        return bc_error(err, BERTH_EINVAL, "image name is empty");
    if (!platform)
        platform = bc_default_platform();
    Containerd__Services__Images__V1__GetImageRequest req =
        CONTAINERD__SERVICES__IMAGES__V1__GET_IMAGE_REQUEST__INIT;
    req.name = (char *)name;
    ProtobufCMessage *resp = NULL;
    int rc =
        bc_unary(c, call, "/containerd.services.images.v1.Images/Get", &req.base,
                 &containerd__services__images__v1__get_image_response__descriptor, &resp, err);
    if (rc < 0)
        return bc_error_wrap(err, rc, "image \"%s\"", name);
    Containerd__Services__Images__V1__GetImageResponse *r = (void *)resp;
    bc_image_t *img = calloc(1, sizeof *img);
    if (!img) {
        protobuf_c_message_free_unpacked(resp, NULL);
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    }
    img->name = bc_strdup(name);
    Containerd__Types__Descriptor *t = r->image ? r->image->target : NULL;
    img->target.media_type = bc_strdup(t ? t->media_type : "");
    img->target.digest = bc_strdup(t ? t->digest : "");
    img->target.size = t ? t->size : 0;
    protobuf_c_message_free_unpacked(resp, NULL);

    if (is_index(img->target.media_type)) {
        rc = pick_manifest(c, call, img, &img->target, platform, 0, err);
    } else if (is_manifest(img->target.media_type)) {
        img->manifest.media_type = bc_strdup(img->target.media_type);
        img->manifest.digest = bc_strdup(img->target.digest);
        img->manifest.size = img->target.size;
    } else {
        rc = bc_error(err, BERTH_EINVAL, "image \"%s\": unknown target media type \"%s\"", name,
                      img->target.media_type);
    }
    if (rc == 0)
        rc = read_manifest(c, call, img, err);
    if (rc == 0)
        rc = read_config(c, call, img, err);
    if (rc < 0) {
        bc_image_free(img);
        return rc;
    }
    *out = img;
    return 0;
}

void
bc_image_free(bc_image_t *img)
{
    if (!img)
        return;
    free(img->name);
    desc_clear(&img->target);
    desc_clear(&img->manifest);
    desc_clear(&img->config);
    for (size_t i = 0; i < img->n_layers; i++)
        desc_clear(&img->layers[i]);
    free(img->layers);
    for (size_t i = 0; i < img->n_diff_ids; i++)
        free(img->diff_ids[i]);
    free(img->diff_ids);
    free(img->config_json);
    free(img->chain_id);
    free(img);
}

BC_EXPORT int
berth_image_config(berth_client_t *c, const berth_call_t *call, const char *name,
                   char **config_json, berth_error_t **err)
{
    bc_image_t *img = NULL;
    int rc = bc_image_resolve(c, call, name, NULL, &img, err);
    if (rc < 0)
        return rc;
    *config_json = img->config_json;
    img->config_json = NULL;
    bc_image_free(img);
    return 0;
}

BC_EXPORT int
berth_image_size(berth_client_t *c, const berth_call_t *call, const char *name, int64_t *size,
                 berth_error_t **err)
{
    bc_image_t *img = NULL;
    int rc = bc_image_resolve(c, call, name, NULL, &img, err);
    if (rc < 0)
        return rc;
    *size = img->size;
    bc_image_free(img);
    return 0;
}
