/* SPDX-License-Identifier: Apache-2.0 */
/* OCI and Docker image JSON for import and export (oci.h). */
#include "lib_crypto.h" /* opened on first use; SHA256_CTX: EVP leaves per-thread state on pool threads */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oci.h"
#include "types/platform.pb-c.h"

int
oci_is_index(const char *mt)
{
    return strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0;
}

int
oci_is_manifest(const char *mt)
{
    return strcmp(mt, MT_OCI_MANIFEST) == 0 || strcmp(mt, MT_DOCKER_MANIFEST) == 0;
}

int
oci_is_layer(const char *mt)
{
    return strstr(mt, ".layer.") != NULL || strstr(mt, "rootfs.diff") != NULL;
}

const char *
oci_json_str(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return "";
}

json_object *
oci_json_desc(const char *media_type, const char *digest, int64_t size)
{
    json_object *d = json_object_new_object();
    json_object_object_add(d, "mediaType", json_object_new_string(media_type));
    json_object_object_add(d, "digest", json_object_new_string(digest));
    json_object_object_add(d, "size", json_object_new_int64(size));
    return d;
}

static void
sha256_of(const void *data, size_t len, char out[BERTH_DIGEST_MAX])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256_CTX c; /* not libcrypto.SHA256(): OpenSSL 3 runs it through EVP */
    libcrypto.SHA256_Init(&c);
    libcrypto.SHA256_Update(&c, data, len);
    libcrypto.SHA256_Final(md, &c);
    int at = snprintf(out, BERTH_DIGEST_MAX, "sha256:");
    for (unsigned i = 0; i < SHA256_DIGEST_LENGTH; i++)
        at += snprintf(out + at, (size_t)(BERTH_DIGEST_MAX - at), "%02x", md[i]);
}

int
oci_json_put(xjob_t *j, json_object *o, const char *media_type, berth_descriptor_t *d,
             berth_error_t **err)
{
    size_t len = 0;
    const char *s = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    memset(d, 0, sizeof(*d));
    snprintf(d->media_type, sizeof(d->media_type), "%s", media_type);
    sha256_of(s, len, d->digest);
    d->size = (int64_t)len;
    return store_blob_put(j, d, (const uint8_t *)s, len, NULL, err);
}

void
oci_platform_from_pb(const Containerd__Types__Platform *pb, oci_platform_t *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->os, sizeof(out->os), "%s", pb->os);
    snprintf(out->arch, sizeof(out->arch), "%s", pb->architecture);
    snprintf(out->variant, sizeof(out->variant), "%s", pb->variant);
}

int
oci_desc_parse(const berth_core_api_t *api, json_object *o, oci_desc_t *d, berth_error_t **err)
{
    memset(d, 0, sizeof(*d));
    json_object *v = NULL;
    const char *digest = oci_json_str(o, "digest");
    if (strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != 71 ||
        strspn(digest + 7, "0123456789abcdef") != 64)
        return api->error_make(err, BERTH_EINVAL, "descriptor: invalid digest \"%s\"", digest);
    if (!json_object_object_get_ex(o, "size", &v) || !json_object_is_type(v, json_type_int) ||
        json_object_get_int64(v) < 0)
        return api->error_make(err, BERTH_EINVAL, "descriptor %s: invalid size", digest);
    snprintf(d->desc.digest, sizeof(d->desc.digest), "%s", digest);
    snprintf(d->desc.media_type, sizeof(d->desc.media_type), "%s", oci_json_str(o, "mediaType"));
    d->desc.size = json_object_get_int64(v);
    if (json_object_object_get_ex(o, "annotations", &v) &&
        json_object_is_type(v, json_type_object)) {
        berth_kv_t *kv = api->kv_new();
        json_object_object_foreach(v, key, val)
        {
            if (json_object_is_type(val, json_type_string))
                api->kv_set(kv, key, json_object_get_string(val));
        }
        d->desc.annotations = kv;
    }
    if (json_object_object_get_ex(o, "platform", &v) && json_object_is_type(v, json_type_object)) {
        d->has_platform = 1;
        snprintf(d->platform.os, sizeof(d->platform.os), "%s", oci_json_str(v, "os"));
        snprintf(d->platform.arch, sizeof(d->platform.arch), "%s", oci_json_str(v, "architecture"));
        snprintf(d->platform.variant, sizeof(d->platform.variant), "%s",
                 oci_json_str(v, "variant"));
    }
    return 0;
}

void
oci_desc_clear(const berth_core_api_t *api, oci_desc_t *d)
{
    if (d->desc.annotations)
        api->kv_free((berth_kv_t *)d->desc.annotations);
    d->desc.annotations = NULL;
}

void
oci_descs_free(const berth_core_api_t *api, oci_desc_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        oci_desc_clear(api, &v[i]);
    free(v);
}

static int
read_json(xjob_t *j, const char *digest, int64_t limit, json_object **out, berth_error_t **err)
{
    uint8_t *data;
    size_t len;
    if (store_blob_read(j, digest, limit, &data, &len, err) < 0)
        return (*err)->code;
    json_tokener *tok = json_tokener_new();
    *out = json_tokener_parse_ex(tok, (const char *)data, (int)len);
    int ok = *out && json_tokener_get_error(tok) == json_tokener_success &&
             json_object_is_type(*out, json_type_object);
    json_tokener_free(tok);
    free(data);
    if (!ok) {
        json_object_put(*out);
        *out = NULL;
        return j->x->api->error_make(err, BERTH_EINVAL, "content %s: not a JSON object", digest);
    }
    return 0;
}

int
oci_index_children(xjob_t *j, const berth_descriptor_t *index, oci_desc_t **out, size_t *n,
                   berth_error_t **err)
{
    const berth_core_api_t *api = j->x->api;
    json_object *o, *ms = NULL;
    *out = NULL;
    *n = 0;
    int rc = read_json(j, index->digest, OCI_JSON_LIMIT, &o, err);
    if (rc < 0)
        return rc;
    if (!json_object_object_get_ex(o, "manifests", &ms) ||
        !json_object_is_type(ms, json_type_array)) {
        json_object_put(o);
        return 0; /* an index without manifests: nothing below it */
    }
    size_t len = json_object_array_length(ms);
    oci_desc_t *v = calloc(len ? len : 1, sizeof(*v));
    for (size_t i = 0; rc == 0 && i < len; i++) {
        rc = oci_desc_parse(api, json_object_array_get_idx(ms, i), &v[i], err);
        if (rc == 0)
            *n = i + 1;
    }
    json_object_put(o);
    if (rc < 0) {
        oci_descs_free(api, v, *n);
        *n = 0;
        return api->error_wrap(err, "index %s", index->digest);
    }
    *out = v;
    return 0;
}

static int
label(xjob_t *j, const char *parent, const char *key, int idx, const char *digest,
      berth_error_t **err)
{
    char k[128];
    if (idx < 0)
        snprintf(k, sizeof(k), "containerd.io/gc.ref.content.%s", key);
    else
        snprintf(k, sizeof(k), "containerd.io/gc.ref.content.%s%d", key, idx);
    return store_blob_label(j, parent, k, digest, err);
}

int
oci_label_children(xjob_t *j, const char *parent, const oci_desc_t *kids, size_t n,
                   berth_error_t **err)
{
    int m = 0, other = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = oci_is_manifest(kids[i].desc.media_type)
                     ? label(j, parent, "m.", m++, kids[i].desc.digest, err)
                     : label(j, parent, "", other++, kids[i].desc.digest, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int
manifest_read(xjob_t *j, const berth_descriptor_t *md, json_object **o, berth_descriptor_t *config,
              oci_manifest_t *layers, berth_error_t **err)
{
    const berth_core_api_t *api = j->x->api;
    int rc = read_json(j, md->digest, OCI_MANIFEST_LIMIT, o, err);
    if (rc < 0)
        return rc;
    json_object *c = NULL, *ls = NULL;
    oci_desc_t cd;
    memset(layers, 0, sizeof(*layers));
    if (!json_object_object_get_ex(*o, "config", &c) ||
        (rc = oci_desc_parse(api, c, &cd, err)) < 0) {
        json_object_put(*o);
        return rc < 0 ? api->error_wrap(err, "manifest %s: config", md->digest)
                      : api->error_make(err, BERTH_EINVAL, "manifest %s: no config", md->digest);
    }
    oci_desc_clear(api, &cd);
    *config = cd.desc;
    json_object_object_get_ex(*o, "layers", &ls);
    size_t n = ls && json_object_is_type(ls, json_type_array) ? json_object_array_length(ls) : 0;
    layers->children = calloc(n ? n : 1, sizeof(*layers->children));
    for (size_t i = 0; i < n; i++) {
        oci_desc_t ld;
        if ((rc = oci_desc_parse(api, json_object_array_get_idx(ls, i), &ld, err)) < 0) {
            free(layers->children);
            layers->children = NULL;
            json_object_put(*o);
            return api->error_wrap(err, "manifest %s: layer %zu", md->digest, i);
        }
        oci_desc_clear(api, &ld);
        layers->children[i].desc = ld.desc;
        layers->n_children = i + 1;
    }
    return 0;
}

int
oci_label_manifest(xjob_t *j, const berth_descriptor_t *md, berth_error_t **err)
{
    json_object *o;
    berth_descriptor_t config;
    oci_manifest_t layers;
    int rc = manifest_read(j, md, &o, &config, &layers, err);
    if (rc < 0)
        return rc;
    json_object_put(o);
    rc = label(j, md->digest, "config", -1, config.digest, err);
    for (size_t i = 0; rc == 0 && i < layers.n_children; i++)
        rc = label(j, md->digest, "l.", (int)i, layers.children[i].desc.digest, err);
    free(layers.children);
    return rc;
}

int
oci_image_load(xjob_t *j, const berth_descriptor_t *md, oci_image_t *out, berth_error_t **err)
{
    memset(out, 0, sizeof(*out));
    json_object *o, *c;
    int rc = manifest_read(j, md, &o, &out->config, &out->manifest, err);
    if (rc < 0)
        return rc;
    json_object_put(o);
    if ((rc = read_json(j, out->config.digest, OCI_JSON_LIMIT, &c, err)) < 0) {
        oci_image_free(out);
        return rc;
    }
    snprintf(out->platform.os, sizeof(out->platform.os), "%s", oci_json_str(c, "os"));
    snprintf(out->platform.arch, sizeof(out->platform.arch), "%s", oci_json_str(c, "architecture"));
    snprintf(out->platform.variant, sizeof(out->platform.variant), "%s",
             oci_json_str(c, "variant"));
    json_object_put(c);
    return 0;
}

void
oci_image_free(oci_image_t *img)
{
    free(img->manifest.children);
    img->manifest.children = NULL;
    img->manifest.n_children = 0;
}

const char *
oci_ref_name(const char *name)
{
    const char *last = strrchr(name, '/');
    const char *colon = strchr(last ? last : name, ':');
    const char *at = strchr(name, '@');
    return colon && (!at || colon < at) ? colon + 1 : name;
}
