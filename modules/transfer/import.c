/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ImageImportStream -> ImageStore (core/transfer/local/import.go over core/images/archive/importer.go): the
 * client streams an OCI layout or docker-archive tar; every regular file becomes a blob as it arrives
 * (libarchive's streaming reader over the stream, nothing spooled), OCI blobs checked against their names.
 * Then the index (index.json, or one built from manifest.json) is walked: its children labelled for the
 * collector, filtered by the store's platforms, unpacked when the store asks, and named by the store.
 */
#include "lib_archive.h" /* libarchive and zlib: opened on first use */
#include "lib_z.h"
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transfer.h"
#include "types/platform.pb-c.h"
#include "types/transfer/imagestore.pb-c.h"
#include "types/transfer/importexport.pb-c.h"

#include "oci.h"

#define JSON_LIMIT OCI_JSON_LIMIT /* containerd's jsonLimit for manifest.json and oci-layout */
#define CHUNK (64 * 1024)

typedef Containerd__Types__Transfer__ImageStore store_pb_t;

typedef struct blob_s {
    char *name;
    char digest[BERTH_DIGEST_MAX];
    int64_t size;
} blob_t;

typedef struct imp_s {
    xjob_t *j;
    xfer_t *x;
    xstream_t *in;
    uint8_t *buf;
    berth_error_t *rerr; /* the stream's error, when libarchive saw a failed read */
    blob_t *blobs;
    size_t n_blobs;
    char **links; /* symlinks: name, target pairs */
    size_t n_links;
    char *layout;   /* oci-layout's contents */
    char *manifest; /* manifest.json's */
    unsigned seq;
    int compress; /* ImageImportStream.force_compress: plain docker-archive layers stored gzipped */
} imp_t;

/* ---- reading the archive -------------------------------------------------------------------------- */

static la_ssize_t
stream_read(struct archive *a, void *user, const void **out)
{
    imp_t *im = user;
    size_t got = 0;
    if (xstream_read(im->in, im->buf, CHUNK, &got, &im->rerr) < 0) {
        libarchive.archive_set_error(a, EIO, "%s",
                                     im->rerr ? im->rerr->message : "import stream failed");
        return -1;
    }
    *out = im->buf;
    return (la_ssize_t)got;
}

static const blob_t *
blob_find(const imp_t *im, const char *name)
{
    for (size_t i = 0; i < im->n_blobs; i++)
        if (strcmp(im->blobs[i].name, name) == 0)
            return &im->blobs[i];
    return NULL;
}

/* path.Clean of an entry name, without a leading "./" or "/" */
static void
clean_name(const char *in, char *out, size_t len)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", in);
    char *parts[256];
    size_t n = 0;
    for (char *save = NULL, *p = strtok_r(tmp, "/", &save); p && n < 256;
         p = strtok_r(NULL, "/", &save)) {
        if (strcmp(p, ".") == 0)
            continue;
        if (strcmp(p, "..") == 0) {
            if (n > 0)
                n--;
            continue;
        }
        parts[n++] = p;
    }
    size_t at = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && at < len; i++)
        at += (size_t)snprintf(out + at, len - at, "%s%s", i ? "/" : "", parts[i]);
}

static int
read_small(imp_t *im, struct archive *a, int64_t size, const char *name, char **out,
           berth_error_t **err)
{
    if (size > JSON_LIMIT)
        return im->x->api->error_make(err, BERTH_EINVAL,
                                      "untar %s: %lld bytes, over the %d MiB limit", name,
                                      (long long)size, JSON_LIMIT >> 20);
    char *p = malloc((size_t)size + 1);
    la_ssize_t n = size > 0 ? libarchive.archive_read_data(a, p, (size_t)size) : 0;
    if (n != size) {
        free(p);
        return im->x->api->error_make(err, BERTH_EINVAL, "untar %s: %s", name,
                                      n < 0 ? libarchive.archive_error_string(a) : "short read");
    }
    p[size] = '\0';
    free(*out);
    *out = p;
    return 0;
}

/* "blobs/sha256/<64 hex>": the digest the name promises, else "" */
static void
named_digest(const char *name, char out[BERTH_DIGEST_MAX])
{
    out[0] = '\0';
    const char *hex = name + strlen("blobs/sha256/");
    if (strncmp(name, "blobs/sha256/", 13) != 0 || strlen(hex) != 64 ||
        strspn(hex, "0123456789abcdef") != 64)
        return;
    snprintf(out, BERTH_DIGEST_MAX, "sha256:%s", hex);
}

/* Streams the entry's bytes into w. */
static int
copy_entry(imp_t *im, struct archive *a, berth_content_writer_t *w, const char *name,
           berth_error_t **err)
{
    const berth_core_api_t *api = im->x->api;
    uint8_t *buf = malloc(CHUNK);
    int rc = 0;
    for (;;) {
        la_ssize_t n = libarchive.archive_read_data(a, buf, CHUNK);
        if (n < 0) {
            rc = im->rerr
                     ? api->error_make(err, im->rerr->code, "untar %s: %s", name, im->rerr->message)
                     : api->error_make(err, BERTH_EINVAL, "untar %s: %s", name,
                                       libarchive.archive_error_string(a));
            break;
        }
        if (n == 0)
            break;
        if ((rc = im->x->cso->writer_write(w, buf, (size_t)n, err)) < 0)
            break;
    }
    free(buf);
    return rc;
}

/* A blob whose name says its digest: stored once, checked on commit; one the store has is not read. */
static int
ingest_named(imp_t *im, struct archive *a, const char *name, const char *digest, int64_t size,
             berth_error_t **err)
{
    berth_descriptor_t d = {.size = size};
    snprintf(d.digest, sizeof(d.digest), "%s", digest);
    berth_content_writer_t *w;
    int64_t have;
    int rc = store_blob_open(im->j, &d, &w, &have, err);
    if (rc == 1)
        return 0; /* libarchive skips the unread data */
    if (rc < 0)
        return rc;
    if (have > 0 && (rc = im->x->cso->writer_truncate(w, 0, err)) < 0) {
        im->x->cso->writer_close(w);
        return rc;
    }
    if ((rc = copy_entry(im, a, w, name, err)) < 0) {
        im->x->cso->writer_close(w);
        return rc;
    }
    rc = store_blob_commit(im->j, w, &d, NULL, err);
    if (rc == BERTH_EPRECONDITION)
        return im->x->api->error_wrap(err, "blob %s does not hold what its name says", name);
    return rc;
}

/* Any other file: hashed as it is stored (a docker-archive layer, index.json, a config). */
static int
ingest_hashed(imp_t *im, struct archive *a, const char *name, int64_t size,
              char digest[BERTH_DIGEST_MAX], berth_error_t **err)
{
    xfer_t *x = im->x;
    char key[192], ref[512];
    snprintf(key, sizeof(key), "tar-%s-%u", im->j->lease, im->seq++);
    snprintf(ref, sizeof(ref), "%s/%s", im->j->ns, key);
    berth_content_writer_t *w;
    int rc = x->mdo->lease_add_resource(x->md, im->j->ns, im->j->lease, "ingests", key, err);
    if (rc == 0)
        rc = x->cso->writer_open(x->cs, ref, size, "", &w, err);
    if (rc < 0)
        return rc;
    if ((rc = copy_entry(im, a, w, name, err)) == 0) {
        x->cso->writer_digest(w, digest);
        /* the lease names the blob before the commit looks: bytes another import left unheld are then
         * either collected before (and this commit writes them) or kept by the lease, never lost between
         * an "already exists" and the record */
        rc = x->mdo->lease_add_resource(x->md, im->j->ns, im->j->lease, "content", digest, err);
        if (rc == 0)
            rc = x->cso->writer_commit(w, size, "", digest, err);
        if (rc == BERTH_EEXIST) {
            x->api->error_free(*err);
            *err = NULL;
            rc = 0;
        }
    }
    x->cso->writer_close(w);
    if (rc < 0) {
        berth_error_t *ignored = NULL;
        if (x->cso->ingest_abort(x->cs, ref, &ignored) < 0)
            x->api->error_free(ignored);
        return rc;
    }
    return store_blob_record(im->j, digest, size, NULL, err);
}

static int
read_entry(imp_t *im, struct archive *a, struct archive_entry *e, berth_error_t **err)
{
    char name[4096];
    clean_name(libarchive.archive_entry_pathname(e), name, sizeof(name));
    mode_t type = libarchive.archive_entry_filetype(e);
    if (type == AE_IFLNK) {
        char dir[4096], target[8192], joined[8192];
        snprintf(dir, sizeof(dir), "%s", name);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        else
            dir[0] = '\0';
        snprintf(target, sizeof(target), "%s/%s", dir, libarchive.archive_entry_symlink(e));
        clean_name(target, joined, sizeof(joined));
        im->links = realloc(im->links, (im->n_links + 2) * sizeof(char *));
        im->links[im->n_links++] = strdup(name);
        im->links[im->n_links++] = strdup(joined);
        return 0;
    }
    if (type != AE_IFREG)
        return 0;
    int64_t size = libarchive.archive_entry_size(e);
    if (strcmp(name, "oci-layout") == 0)
        return read_small(im, a, size, name, &im->layout, err);
    if (strcmp(name, "manifest.json") == 0)
        return read_small(im, a, size, name, &im->manifest, err);
    blob_t b = {.size = size};
    named_digest(name, b.digest);
    int rc = b.digest[0] ? ingest_named(im, a, name, b.digest, size, err)
                         : ingest_hashed(im, a, name, size, b.digest, err);
    if (rc < 0)
        return im->x->api->error_wrap(err, "failed to ingest \"%s\"", name);
    b.name = strdup(name);
    im->blobs = realloc(im->blobs, (im->n_blobs + 1) * sizeof(*im->blobs));
    im->blobs[im->n_blobs++] = b;
    return 0;
}

static int
read_archive(imp_t *im, berth_error_t **err)
{
    struct archive *a = libarchive.archive_read_new();
    libarchive.archive_read_support_format_tar(a);
    libarchive.archive_read_support_filter_all(a); /* a compressed archive works too */
    int rc = 0;
    if (libarchive.archive_read_open(a, im, NULL, stream_read, NULL) != ARCHIVE_OK) {
        rc = im->x->api->error_make(err, BERTH_EINVAL, "import stream: %s",
                                    libarchive.archive_error_string(a));
    } else {
        for (;;) {
            struct archive_entry *e;
            int r = libarchive.archive_read_next_header(a, &e);
            if (r == ARCHIVE_EOF)
                break;
            if (r < ARCHIVE_WARN) {
                rc = im->rerr ? im->x->api->error_make(err, im->rerr->code, "%s", im->rerr->message)
                              : im->x->api->error_make(err, BERTH_EINVAL, "import: %s",
                                                       libarchive.archive_error_string(a));
                break;
            }
            if ((rc = read_entry(im, a, e, err)) < 0)
                break;
        }
    }
    libarchive.archive_read_free(a);
    return rc;
}

/* ---- docker-archive: manifest.json to an index -------------------------------------------------------- */

/* docker's ParseDockerRef: a familiar name made full ("busybox" -> docker.io/library/busybox:latest) */
static void
normalize_ref(const char *ref, char *out, size_t len)
{
    const char *slash = strchr(ref, '/');
    char full[1024];
    if (slash == NULL)
        snprintf(full, sizeof(full), "docker.io/library/%s", ref);
    else if (memchr(ref, '.', (size_t)(slash - ref)) || memchr(ref, ':', (size_t)(slash - ref)) ||
             strncmp(ref, "localhost/", 10) == 0)
        snprintf(full, sizeof(full), "%s", ref);
    else
        snprintf(full, sizeof(full), "docker.io/%s", ref);
    const char *last = strrchr(full, '/');
    if (strchr(last, ':') == NULL && strchr(last, '@') == NULL)
        snprintf(out, len, "%s:latest", full);
    else
        snprintf(out, len, "%s", full);
}

static const char *
layer_media_type(imp_t *im, const blob_t *b)
{
    uint8_t head[4] = {0};
    size_t got = 0;
    im->x->cso->read_at(im->x->cs, b->digest, 0, head, sizeof(head), &got, NULL);
    if (got >= 2 && head[0] == 0x1f && head[1] == 0x8b)
        return MT_DOCKER_LAYER_GZIP;
    if (got >= 4 && head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd)
        return MT_DOCKER_LAYER_GZIP; /* containerd's default branch: any compression reads as gzip */
    return MT_DOCKER_LAYER;
}

/* containerd's compressBlob: a plain layer gzipped into a blob of its own, labelled with the digest of
 * what it holds (containerd.io/uncompressed), so the unpacker checks the diffID against it. */
static int
deflate_into(imp_t *im, const blob_t *b, berth_content_writer_t *w, berth_error_t **err)
{
    xfer_t *x = im->x;
    int lrc = libz_load(x->api, err);
    if (lrc < 0)
        return lrc;
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (libz.deflateInit2_(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                           ZLIB_VERSION, (int)sizeof(z_stream)) != Z_OK)
        return x->api->error_make(err, BERTH_ENOMEM, "gzip: cannot start");
    uint8_t *in = malloc(CHUNK), *out = malloc(CHUNK);
    int rc = 0, zrc = Z_OK;
    for (int64_t at = 0; rc == 0 && zrc != Z_STREAM_END;) {
        size_t got = 0;
        if (at < b->size)
            rc = x->cso->read_at(x->cs, b->digest, at, in, CHUNK, &got, err);
        if (rc < 0)
            break;
        at += (int64_t)got;
        zs.next_in = in;
        zs.avail_in = (uInt)got;
        int flush = got == 0 || at >= b->size ? Z_FINISH : Z_NO_FLUSH;
        do {
            zs.next_out = out;
            zs.avail_out = CHUNK;
            zrc = libz.deflate(&zs, flush);
            size_t n = CHUNK - zs.avail_out;
            if (n > 0 && (rc = x->cso->writer_write(w, out, n, err)) < 0)
                break;
        } while (rc == 0 && zs.avail_out == 0);
    }
    libz.deflateEnd(&zs);
    free(in);
    free(out);
    return rc;
}

static int
compress_layer(imp_t *im, const blob_t *b, berth_descriptor_t *out, berth_error_t **err)
{
    xfer_t *x = im->x;
    char key[128], ref[512];
    snprintf(key, sizeof(key), "compress-blob-sha256-%.64s", b->digest + 7);
    snprintf(ref, sizeof(ref), "%s/%s", im->j->ns, key);
    berth_content_writer_t *w;
    int rc = x->mdo->lease_add_resource(x->md, im->j->ns, im->j->lease, "ingests", key, err);
    if (rc == 0)
        rc = x->cso->writer_open(x->cs, ref, 0, "", &w, err);
    if (rc < 0)
        return rc;
    berth_ingest_status_t st;
    x->cso->writer_status(w, &st);
    if (st.offset > 0)
        rc = x->cso->writer_truncate(w, 0, err);
    if (rc == 0)
        rc = deflate_into(im, b, w, err);
    memset(out, 0, sizeof(*out));
    if (rc == 0) {
        x->cso->writer_status(w, &st);
        x->cso->writer_digest(w, out->digest);
        out->size = st.offset;
        char committed[BERTH_DIGEST_MAX];
        rc = x->mdo->lease_add_resource(x->md, im->j->ns, im->j->lease, "content", out->digest,
                                        err); /* before the commit looks, as in ingest_hashed */
        if (rc == 0)
            rc = x->cso->writer_commit(w, out->size, out->digest, committed, err);
        if (rc == BERTH_EEXIST) {
            x->api->error_free(*err);
            *err = NULL;
            rc = 0;
        }
    }
    x->cso->writer_close(w);
    if (rc < 0)
        return x->api->error_wrap(err, "compress layer %s", b->name);
    snprintf(out->media_type, sizeof(out->media_type), "%s", MT_DOCKER_LAYER_GZIP);
    berth_kv_t *labels = x->api->kv_new();
    x->api->kv_set(labels, "containerd.io/uncompressed", b->digest);
    rc = store_blob_record(im->j, out->digest, out->size, labels, err);
    x->api->kv_free(labels);
    return rc;
}

static const blob_t *
resolve(const imp_t *im, const char *name)
{
    char clean[4096];
    clean_name(name, clean, sizeof(clean));
    const blob_t *b = blob_find(im, clean);
    for (size_t i = 0; b == NULL && i + 1 < im->n_links; i += 2)
        if (strcmp(im->links[i], clean) == 0)
            b = blob_find(im, im->links[i + 1]);
    return b;
}

/* One manifest.json entry: its docker schema 2 manifest stored, its index entries appended. */
static int
docker_image(imp_t *im, json_object *entry, json_object *manifests, berth_error_t **err)
{
    const berth_core_api_t *api = im->x->api;
    const char *cfg_name = oci_json_str(entry, "Config");
    const blob_t *cfg = resolve(im, cfg_name);
    if (cfg == NULL)
        return api->error_make(err, BERTH_ENOTFOUND, "image config \"%s\": not found", cfg_name);
    json_object *m = json_object_new_object();
    json_object_object_add(m, "schemaVersion", json_object_new_int(2));
    json_object_object_add(m, "mediaType", json_object_new_string(MT_DOCKER_MANIFEST));
    json_object_object_add(m, "config", oci_json_desc(MT_DOCKER_CONFIG, cfg->digest, cfg->size));
    json_object *layers = json_object_new_array(), *lnames = NULL;
    json_object_object_add(m, "layers", layers);
    json_object_object_get_ex(entry, "Layers", &lnames);
    for (size_t i = 0; lnames && i < json_object_array_length(lnames); i++) {
        const char *ln = json_object_get_string(json_object_array_get_idx(lnames, i));
        const blob_t *b = ln ? resolve(im, ln) : NULL;
        if (b == NULL) {
            json_object_put(m);
            return api->error_make(err, BERTH_ENOTFOUND,
                                   "failed to resolve layers: layer \"%s\" not found",
                                   ln ? ln : "");
        }
        const char *mt = layer_media_type(im, b);
        berth_descriptor_t gz;
        if (im->compress && strcmp(mt, MT_DOCKER_LAYER) == 0) {
            int rc = compress_layer(im, b, &gz, err);
            if (rc < 0) {
                json_object_put(m);
                return rc;
            }
            json_object_array_add(layers, oci_json_desc(gz.media_type, gz.digest, gz.size));
            continue;
        }
        json_object_array_add(layers, oci_json_desc(mt, b->digest, b->size));
    }
    berth_descriptor_t md = {.size = 0};
    int rc = oci_json_put(im->j, m, MT_DOCKER_MANIFEST, &md, err);
    json_object_put(m);
    if (rc < 0)
        return rc;
    /* the platform, from the config */
    uint8_t *cdata = NULL;
    size_t clen = 0;
    json_object *platform = NULL;
    if (store_blob_read(im->j, cfg->digest, JSON_LIMIT, &cdata, &clen, err) < 0)
        return (*err)->code;
    json_tokener *tok = json_tokener_new(); /* the blob has no NUL: parse by length */
    json_object *c = json_tokener_parse_ex(tok, (const char *)cdata, (int)clen);
    json_tokener_free(tok);
    free(cdata);
    if (c && oci_json_str(c, "os")[0]) {
        platform = json_object_new_object();
        json_object_object_add(platform, "architecture",
                               json_object_new_string(oci_json_str(c, "architecture")));
        json_object_object_add(platform, "os", json_object_new_string(oci_json_str(c, "os")));
        if (oci_json_str(c, "variant")[0])
            json_object_object_add(platform, "variant",
                                   json_object_new_string(oci_json_str(c, "variant")));
    }
    json_object_put(c);
    json_object *tags = NULL;
    json_object_object_get_ex(entry, "RepoTags", &tags);
    size_t nt = tags ? json_object_array_length(tags) : 0;
    for (size_t i = 0; i < (nt ? nt : 1); i++) {
        json_object *d = oci_json_desc(md.media_type, md.digest, md.size);
        if (nt) {
            char norm[1100];
            normalize_ref(json_object_get_string(json_object_array_get_idx(tags, i)), norm,
                          sizeof(norm));
            json_object *ann = json_object_new_object();
            json_object_object_add(ann, ANN_IMAGE_NAME, json_object_new_string(norm));
            json_object_object_add(ann, ANN_REF_NAME, json_object_new_string(oci_ref_name(norm)));
            json_object_object_add(d, "annotations", ann);
        }
        if (platform)
            json_object_object_add(d, "platform", json_object_get(platform));
        json_object_array_add(manifests, d);
    }
    json_object_put(platform);
    return 0;
}

static int
docker_index(imp_t *im, berth_descriptor_t *index, berth_error_t **err)
{
    const berth_core_api_t *api = im->x->api;
    json_object *mf = json_tokener_parse(im->manifest);
    if (mf == NULL || !json_object_is_type(mf, json_type_array)) {
        json_object_put(mf);
        return api->error_make(err, BERTH_EINVAL,
                               "untar manifest \"manifest.json\": not a JSON array");
    }
    json_object *idx = json_object_new_object();
    json_object_object_add(idx, "schemaVersion", json_object_new_int(2));
    json_object *manifests = json_object_new_array();
    json_object_object_add(idx, "manifests", manifests);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < json_object_array_length(mf); i++)
        rc = docker_image(im, json_object_array_get_idx(mf, i), manifests, err);
    if (rc == 0)
        rc = oci_json_put(im->j, idx, MT_OCI_INDEX, index, err);
    json_object_put(idx);
    json_object_put(mf);
    return rc;
}

/* The index of the archive: index.json of an OCI layout, or one built from docker's manifest.json. */
static int
archive_index(imp_t *im, berth_descriptor_t *index, berth_error_t **err)
{
    const berth_core_api_t *api = im->x->api;
    if (im->layout) {
        json_object *l = json_tokener_parse(im->layout);
        const char *v = l ? oci_json_str(l, "imageLayoutVersion") : "";
        int ok = strcmp(v, "1.0.0") == 0;
        int rc = ok ? 0
                    : api->error_make(err, BERTH_EINVAL, "unsupported OCI version %s",
                                      v[0] ? v : "\"\"");
        json_object_put(l);
        if (rc < 0)
            return rc;
        const blob_t *b = blob_find(im, "index.json");
        if (b == NULL)
            return api->error_make(err, BERTH_EINVAL, "missing index.json in OCI layout 1.0.0");
        memset(index, 0, sizeof(*index));
        snprintf(index->media_type, sizeof(index->media_type), "%s", MT_OCI_INDEX);
        snprintf(index->digest, sizeof(index->digest), "%s", b->digest);
        index->size = b->size;
        return 0;
    }
    if (im->manifest == NULL)
        return api->error_make(err, BERTH_EINVAL, "unrecognized image format");
    return docker_index(im, index, err);
}

/* ---- the walk ------------------------------------------------------------------------------------- */

static int
platform_wanted(const store_pb_t *is, const oci_desc_t *d)
{
    if (is->n_platforms == 0 || !d->has_platform)
        return 1;
    for (size_t i = 0; i < is->n_platforms; i++) {
        oci_platform_t want;
        oci_platform_from_pb(is->platforms[i], &want);
        if (platform_match(&want, &d->platform)) /* containerd's platforms.Ordered */
            return 1;
    }
    return 0;
}

/* Unpacks the manifest into each snapshotter whose platform it fits. */
static int
unpack_manifest(xjob_t *j, const store_pb_t *is, const berth_descriptor_t *mdesc,
                berth_error_t **err)
{
    if (is->n_unpacks == 0)
        return 0;
    oci_image_t img;
    int rc = oci_image_load(j, mdesc, &img, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; rc == 0 && i < is->n_unpacks; i++) {
        const Containerd__Types__Transfer__UnpackConfiguration *u = is->unpacks[i];
        oci_platform_t want;
        if (u->platform)
            oci_platform_from_pb(u->platform, &want);
        else
            platform_host(&want);
        if (platform_rank(&want, &img.platform) < 0)
            continue;
        const char *sn = u->snapshotter[0] ? u->snapshotter : j->x->default_snapshotter;
        job_progress(j, "unpacking", mdesc->digest, NULL, 0, 0, 0, mdesc);
        unpacker_t *up = NULL;
        rc = unpack_start(j, sn, &img.config, &img.manifest, &up, err);
        if (rc == 0) {
            for (size_t l = 0; l < img.manifest.n_children; l++)
                unpack_ready(up, l);
            rc = unpack_finish(up, err);
        }
    }
    oci_image_free(&img);
    return rc;
}

/* A child of the imported index: a manifest (checked, labelled, unpacked) or a nested index. */
static int
walk_child(xjob_t *j, const store_pb_t *is, const oci_desc_t *d, int depth, berth_error_t **err)
{
    if (oci_is_index(d->desc.media_type)) {
        if (depth > 8)
            return j->x->api->error_make(err, BERTH_EINVAL, "index %s: nested too deep",
                                         d->desc.digest);
        oci_desc_t *kids = NULL;
        size_t n = 0;
        int rc = oci_index_children(j, &d->desc, &kids, &n, err);
        size_t kept = 0;
        for (size_t i = 0; rc == 0 && i < n; i++)
            if (platform_wanted(is, &kids[i]))
                kids[kept++] = kids[i];
            else
                oci_desc_clear(j->x->api, &kids[i]);
        if (rc == 0)
            rc = oci_label_children(j, d->desc.digest, kids, kept, err);
        for (size_t i = 0; rc == 0 && i < kept; i++)
            rc = walk_child(j, is, &kids[i], depth + 1, err);
        oci_descs_free(j->x->api, kids, kept);
        return rc;
    }
    if (!oci_is_manifest(d->desc.media_type))
        return 0; /* containerd walks what it does not know as a leaf */
    int rc = oci_label_manifest(j, &d->desc, err);
    if (rc == 0)
        rc = unpack_manifest(j, is, &d->desc, err);
    return rc;
}

int
xfer_import(xjob_t *j, const struct Containerd__Types__Transfer__ImageImportStream *src,
            const struct Containerd__Types__Transfer__ImageStore *dst, berth_error_t **err)
{
    xfer_t *x = j->x;
    const berth_core_api_t *api = x->api;
    imp_t im = {.j = j, .x = x, .compress = src->force_compress};
    job_progress(j, "Importing", NULL, NULL, 0, 0, 0, NULL);
    int rc = streams_take(x->streams, j->ns, src->stream, 10000, &im.in, err);
    if (rc < 0)
        return api->error_wrap(err, "import stream \"%s\"", src->stream);
    im.buf = malloc(CHUNK);
    rc = read_archive(&im, err);
    xstream_close(im.in); /* the client sees the end of the stream (containerd's Close) */
    berth_descriptor_t index;
    if (rc == 0)
        rc = archive_index(&im, &index, err);
    oci_desc_t *kids = NULL;
    size_t n = 0, kept = 0;
    if (rc == 0)
        rc = oci_index_children(j, &index, &kids, &n, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!platform_wanted(dst, &kids[i])) {
            oci_desc_clear(api, &kids[i]);
            continue;
        }
        kids[kept++] = kids[i];
    }
    if (rc == 0)
        rc = oci_label_children(j, index.digest, kids, kept, err);
    for (size_t i = 0; rc == 0 && i < kept; i++)
        rc = walk_child(j, dst, &kids[i], 1, err);
    /* names: the index itself (by the store's name), then each child by its annotations */
    if (rc == 0 && (rc = imagestore_store(j, dst, &index, err)) == BERTH_ENOTFOUND) {
        api->error_free(*err);
        *err = NULL;
        rc = 0;
    }
    for (size_t i = 0; rc == 0 && i < kept; i++) {
        berth_kv_t *ann = (berth_kv_t *)kids[i].desc.annotations;
        if (ann == NULL)
            kids[i].desc.annotations = ann = api->kv_new();
        api->kv_set(ann, "io.containerd.import.ref-source", "annotation");
        if ((rc = imagestore_store(j, dst, &kids[i].desc, err)) == BERTH_ENOTFOUND) {
            api->log(x->log, BERTH_LOG_INFO, "import: no image name for %s", kids[i].desc.digest);
            api->error_free(*err);
            *err = NULL;
            rc = 0;
        }
    }
    oci_descs_free(api, kids, kept);
    if (rc == 0)
        job_progress(j, "Completed import", NULL, NULL, 0, 0, 0, NULL);
    xstream_release(im.in);
    api->error_free(im.rerr);
    for (size_t i = 0; i < im.n_blobs; i++)
        free(im.blobs[i].name);
    for (size_t i = 0; i < im.n_links; i++)
        free(im.links[i]);
    free(im.blobs);
    free(im.links);
    free(im.layout);
    free(im.manifest);
    free(im.buf);
    return rc;
}
