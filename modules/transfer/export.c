/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ImageStore -> ImageExportStream (core/transfer/local/export.go over core/images/archive/exporter.go): the
 * images the store names, written as an OCI archive (oci-layout, index.json, blobs/sha256/...) and, unless
 * the client skips it, docker's manifest.json, with libarchive straight into the export stream. An index
 * is cut down to the manifests of the wanted platforms (the host's only, by default); each blob is hashed
 * as it is copied.
 */
#include "lib_archive.h" /* opened on first use; SHA256_CTX: EVP leaves per-thread state on pool threads */
#include "lib_crypto.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oci.h"
#include "types/platform.pb-c.h"
#include "types/transfer/imagestore.pb-c.h"
#include "types/transfer/importexport.pb-c.h"

#define CHUNK (64 * 1024)

typedef Containerd__Types__Transfer__ImageStore store_pb_t;
typedef Containerd__Types__Transfer__ImageExportStream export_pb_t;

typedef struct record_s {
    char name[128];
    int dir;
    char digest[BERTH_DIGEST_MAX]; /* a blob, or "" */
    int64_t size;
    char *data; /* a file made here (index.json ...), or NULL */
} record_t;

typedef struct named_s {
    berth_descriptor_t desc; /* the exported manifest */
    char **names;
    size_t n_names;
} named_t;

typedef struct exp_s {
    xjob_t *j;
    xfer_t *x;
    const export_pb_t *opt;
    xstream_t *out;
    berth_error_t *werr; /* the stream's, when a write failed */
    record_t *recs;
    size_t n_recs;
    named_t *mans; /* docker's manifest.json entries */
    size_t n_mans;
} exp_t;

static void
rec_blob(exp_t *e, const berth_descriptor_t *d)
{
    e->recs = realloc(e->recs, (e->n_recs + 1) * sizeof(*e->recs));
    record_t *r = &e->recs[e->n_recs++];
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "blobs/sha256/%.64s", d->digest + 7);
    snprintf(r->digest, sizeof(r->digest), "%s", d->digest);
    r->size = d->size;
}

static void
rec_file(exp_t *e, const char *name, char *data, int dir)
{
    e->recs = realloc(e->recs, (e->n_recs + 1) * sizeof(*e->recs));
    record_t *r = &e->recs[e->n_recs++];
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->data = data;
    r->size = data ? (int64_t)strlen(data) : 0;
    r->dir = dir;
}

static int
valid_digest(const char *d)
{
    return strncmp(d, "sha256:", 7) == 0 && strlen(d) == 71 &&
           strspn(d + 7, "0123456789abcdef") == 64;
}

/* getRecords: a manifest with its config and layers, or an index with everything below it. */
static int
records_of(exp_t *e, const berth_descriptor_t *d, int depth, berth_error_t **err)
{
    const berth_core_api_t *api = e->x->api;
    if (!valid_digest(d->digest))
        return api->error_make(err, BERTH_EINVAL, "invalid digest \"%s\"", d->digest);
    rec_blob(e, d);
    if (oci_is_manifest(d->media_type)) {
        oci_image_t img;
        int rc = oci_image_load(e->j, d, &img, err);
        if (rc < 0)
            return rc;
        rec_blob(e, &img.config);
        for (size_t i = 0; i < img.manifest.n_children; i++)
            rec_blob(e, &img.manifest.children[i].desc);
        oci_image_free(&img);
        return 0;
    }
    if (oci_is_index(d->media_type)) {
        if (depth > 8)
            return api->error_make(err, BERTH_EINVAL, "index %s: nested too deep", d->digest);
        oci_desc_t *kids;
        size_t n;
        int rc = oci_index_children(e->j, d, &kids, &n, err);
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = records_of(e, &kids[i].desc, depth + 1, err);
        oci_descs_free(api, kids, n);
        return rc;
    }
    return 0;
}

/* The export's platform matcher: the client's platforms in order, else the host's exactly. */
static int
platform_fits(const export_pb_t *o, const oci_platform_t *have, int *rank)
{
    if (o->n_platforms == 0) {
        oci_platform_t host;
        platform_host(&host);
        *rank = 0;
        return platform_match(&host, have); /* containerd's DefaultStrict */
    }
    for (size_t i = 0; i < o->n_platforms; i++) {
        oci_platform_t want;
        oci_platform_from_pb(o->platforms[i], &want);
        if (platform_match(&want, have)) { /* platforms.Ordered */
            *rank = (int)i;
            return 1;
        }
    }
    return 0;
}

static void
add_name(exp_t *e, const berth_descriptor_t *m, const char *name)
{
    named_t *t = NULL;
    for (size_t i = 0; i < e->n_mans && t == NULL; i++)
        if (strcmp(e->mans[i].desc.digest, m->digest) == 0)
            t = &e->mans[i];
    if (t == NULL) {
        e->mans = realloc(e->mans, (e->n_mans + 1) * sizeof(*e->mans));
        t = &e->mans[e->n_mans++];
        memset(t, 0, sizeof(*t));
        t->desc = *m;
        t->desc.annotations = NULL;
    }
    if (name && name[0]) {
        t->names = realloc(t->names, (t->n_names + 1) * sizeof(char *));
        t->names[t->n_names++] = strdup(name);
    }
}

/* An index image: its blob, then the manifests of the wanted platforms (all of them, with
 * all_platforms, are written; the best fitting one is the image's docker manifest). */
static int
export_index(exp_t *e, const berth_descriptor_t *d, const char *name, berth_error_t **err)
{
    const berth_core_api_t *api = e->x->api;
    rec_blob(e, d);
    oci_desc_t *kids;
    size_t n;
    int rc = oci_index_children(e->j, d, &kids, &n, err);
    if (rc < 0)
        return rc;
    int best = -1, best_rank = 1 << 30;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int rank = 1 << 29;
        int fits = !kids[i].has_platform || platform_fits(e->opt, &kids[i].platform, &rank);
        if (!fits && !e->opt->all_platforms)
            continue;
        if (fits && rank < best_rank) {
            best = (int)i;
            best_rank = rank;
        }
        rc = records_of(e, &kids[i].desc, 1, err);
    }
    if (rc == 0 && best < 0)
        rc = api->error_make(err, BERTH_ENOTFOUND, "no manifest found for platform: not found");
    if (rc == 0)
        add_name(e, &kids[best].desc, name);
    oci_descs_free(api, kids, n);
    return rc;
}

/* ---- the files made here ---------------------------------------------------------------------------- */

/* docker's FamiliarString: docker.io/library/x:t -> x:t, docker.io/u/x:t -> u/x:t */
static const char *
familiar(const char *name)
{
    if (strncmp(name, "docker.io/library/", 18) == 0 && strchr(name + 18, '/') == NULL)
        return name + 18;
    if (strncmp(name, "docker.io/", 10) == 0)
        return name + 10;
    return name;
}

static char *
dup_json(json_object *o)
{
    char *s = strdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return s;
}

static int
docker_manifests(exp_t *e, berth_error_t **err)
{
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < e->n_mans; i++) {
        oci_image_t img;
        if (oci_image_load(e->j, &e->mans[i].desc, &img, err) < 0) {
            json_object_put(arr);
            return (*err)->code;
        }
        char path[sizeof(img.config.digest) + 16];
        json_object *m = json_object_new_object();
        snprintf(path, sizeof(path), "blobs/sha256/%.64s", img.config.digest + 7);
        json_object_object_add(m, "Config", json_object_new_string(path));
        json_object *tags = json_object_new_array(), *layers = json_object_new_array();
        for (size_t k = 0; k < e->mans[i].n_names; k++)
            json_object_array_add(tags, json_object_new_string(familiar(e->mans[i].names[k])));
        for (size_t k = 0; k < img.manifest.n_children; k++) {
            snprintf(path, sizeof(path), "blobs/sha256/%s",
                     img.manifest.children[k].desc.digest + 7);
            json_object_array_add(layers, json_object_new_string(path));
        }
        json_object_object_add(m, "RepoTags", e->mans[i].n_names ? tags : NULL);
        if (e->mans[i].n_names == 0)
            json_object_put(tags);
        json_object_object_add(m, "Layers", layers);
        json_object_array_add(arr, m);
        oci_image_free(&img);
    }
    rec_file(e, "manifest.json", dup_json(arr), 0);
    return 0;
}

static json_object *
index_entry(const berth_descriptor_t *d, const char *name)
{
    json_object *o = oci_json_desc(d->media_type, d->digest, d->size);
    json_object *ann = json_object_new_object();
    json_object_object_add(ann, ANN_IMAGE_NAME, json_object_new_string(name));
    json_object_object_add(ann, ANN_REF_NAME, json_object_new_string(oci_ref_name(name)));
    json_object_object_add(o, "annotations", ann);
    return o;
}

/* ---- writing ---------------------------------------------------------------------------------------- */

static la_ssize_t
stream_write(struct archive *a, void *user, const void *buf, size_t len)
{
    exp_t *e = user;
    if (xstream_write(e->out, buf, len, &e->werr) < 0) {
        libarchive.archive_set_error(a, EIO, "%s",
                                     e->werr ? e->werr->message : "export stream failed");
        return -1;
    }
    return (la_ssize_t)len;
}

static int
cmp_rec(const void *a, const void *b)
{
    return strcmp(((const record_t *)a)->name, ((const record_t *)b)->name);
}

static int
write_fail(exp_t *e, struct archive *a, const char *what, berth_error_t **err)
{
    if (e->werr)
        return e->x->api->error_make(err, e->werr->code, "%s: %s", what, e->werr->message);
    return e->x->api->error_make(err, BERTH_EIO, "%s: %s", what,
                                 libarchive.archive_error_string(a));
}

/* A blob into the archive, hashed on the way (containerd: "unexpected digest copied"). */
static int
copy_blob(exp_t *e, struct archive *a, const record_t *r, berth_error_t **err)
{
    xfer_t *x = e->x;
    berth_content_record_t cr;
    if (x->mdo->content_get(x->md, e->j->ns, r->digest, &cr, NULL, err) < 0)
        return (*err)->code;
    uint8_t *buf = malloc(CHUNK);
    SHA256_CTX h;
    libcrypto.SHA256_Init(&h);
    int rc = 0;
    for (int64_t at = 0; rc == 0 && at < r->size;) {
        size_t want = r->size - at < CHUNK ? (size_t)(r->size - at) : CHUNK, got = 0;
        rc = x->cso->read_at(x->cs, r->digest, at, buf, want, &got, err);
        if (rc == 0 && got == 0)
            rc = x->api->error_make(err, BERTH_EDATALOSS, "content %s: shorter than %lld",
                                    r->digest, (long long)r->size);
        if (rc == 0 && libarchive.archive_write_data(a, buf, got) != (la_ssize_t)got)
            rc = write_fail(e, a, r->name, err);
        libcrypto.SHA256_Update(&h, buf, got);
        at += (int64_t)got;
    }
    if (rc == 0) {
        unsigned char md[32];
        char hex[65];
        libcrypto.SHA256_Final(md, &h);
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        if (strcmp(hex, r->digest + 7) != 0)
            rc =
                x->api->error_make(err, BERTH_EDATALOSS, "unexpected digest sha256:%s copied", hex);
    }
    free(buf);
    return rc;
}

static int
write_archive(exp_t *e, berth_error_t **err)
{
    qsort(e->recs, e->n_recs, sizeof(*e->recs), cmp_rec);
    struct archive *a = libarchive.archive_write_new();
    libarchive.archive_write_set_format_pax_restricted(a);
    libarchive.archive_write_set_bytes_in_last_block(a, 1);
    int rc = 0;
    if (libarchive.archive_write_open(a, e, NULL, stream_write, NULL) != ARCHIVE_OK)
        rc = write_fail(e, a, "export", err);
    struct archive_entry *ent = libarchive.archive_entry_new();
    for (size_t i = 0; rc == 0 && i < e->n_recs; i++) {
        const record_t *r = &e->recs[i];
        if (i > 0 && strcmp(r->name, e->recs[i - 1].name) == 0)
            continue;
        libarchive.archive_entry_clear(ent);
        libarchive.archive_entry_set_pathname(ent, r->name);
        libarchive.archive_entry_set_filetype(ent, r->dir ? AE_IFDIR : AE_IFREG);
        libarchive.archive_entry_set_perm(ent, r->dir ? 0755
                                               : (r->digest[0] || !strcmp(r->name, "oci-layout"))
                                                   ? 0444
                                                   : 0644);
        libarchive.archive_entry_set_size(ent, r->dir ? 0 : r->size);
        if (libarchive.archive_write_header(a, ent) != ARCHIVE_OK) {
            rc = write_fail(e, a, r->name, err);
            break;
        }
        if (r->data && r->size > 0 &&
            libarchive.archive_write_data(a, r->data, (size_t)r->size) != r->size)
            rc = write_fail(e, a, r->name, err);
        else if (r->digest[0])
            rc = copy_blob(e, a, r, err);
    }
    libarchive.archive_entry_free(ent);
    if (rc == 0 && libarchive.archive_write_close(a) != ARCHIVE_OK)
        rc = write_fail(e, a, "export", err);
    libarchive.archive_write_free(a);
    return rc;
}

/* ---- the transfer ----------------------------------------------------------------------------------- */

typedef struct image_s {
    char name[4096];
    berth_descriptor_t target;
} image_t;

/* ImageStore.Lookup: its name, then each extra reference (prefixes cannot be looked up). */
static int
lookup(xjob_t *j, const store_pb_t *is, image_t **out, size_t *n, berth_error_t **err)
{
    const berth_core_api_t *api = j->x->api;
    image_t *v = calloc(is->n_extra_references + 1, sizeof(*v));
    size_t k = 0;
    int rc = 0;
    if (is->name[0]) {
        snprintf(v[k].name, sizeof(v[k].name), "%s", is->name);
        rc = store_image_get(j, is->name, &v[k++].target, err);
    }
    for (size_t i = 0; rc == 0 && i < is->n_extra_references; i++) {
        const Containerd__Types__Transfer__ImageReference *r = is->extra_references[i];
        if (r->is_prefix) {
            rc = api->error_make(err, BERTH_ENOTIMPL,
                                 "prefix lookup on export not implemented: not implemented");
            break;
        }
        snprintf(v[k].name, sizeof(v[k].name), "%s", r->name);
        rc = store_image_get(j, r->name, &v[k++].target, err);
    }
    if (rc < 0) {
        free(v);
        return rc;
    }
    *out = v;
    *n = k;
    return 0;
}

static int
plan(exp_t *e, const image_t *imgs, size_t n, berth_error_t **err)
{
    const berth_core_api_t *api = e->x->api;
    json_object *manifests = json_object_new_array();
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const berth_descriptor_t *t = &imgs[i].target;
        json_object_array_add(manifests, index_entry(t, imgs[i].name));
        if (oci_is_manifest(t->media_type)) {
            rc = records_of(e, t, 0, err);
            if (rc == 0)
                add_name(e, t, imgs[i].name);
        } else if (oci_is_index(t->media_type)) {
            rc = export_index(e, t, imgs[i].name, err);
        } else {
            rc = api->error_make(err, BERTH_EINVAL,
                                 "only manifests may be exported: invalid argument");
        }
    }
    json_object *idx = json_object_new_object();
    json_object_object_add(idx, "schemaVersion", json_object_new_int(2));
    json_object_object_add(idx, "mediaType", json_object_new_string(MT_OCI_INDEX));
    json_object_object_add(idx, "manifests", manifests);
    rec_file(e, "index.json", dup_json(idx), 0);
    rec_file(e, "oci-layout", strdup("{\"imageLayoutVersion\":\"1.0.0\"}"), 0);
    if (rc == 0 && !e->opt->skip_compatibility_manifest && e->n_mans > 0)
        rc = docker_manifests(e, err);
    rec_file(e, "blobs/", NULL, 1);
    rec_file(e, "blobs/sha256/", NULL, 1);
    return rc;
}

int
xfer_export(xjob_t *j, const struct Containerd__Types__Transfer__ImageStore *src,
            const struct Containerd__Types__Transfer__ImageExportStream *dst, berth_error_t **err)
{
    xfer_t *x = j->x;
    const berth_core_api_t *api = x->api;
    exp_t e = {.j = j, .x = x, .opt = dst};
    job_progress(j, "Exporting", NULL, NULL, 0, 0, 0, NULL);
    image_t *imgs = NULL;
    size_t n = 0;
    int rc = lookup(j, src, &imgs, &n, err);
    if (rc == 0)
        rc = plan(&e, imgs, n, err);
    if (rc == 0 && (rc = streams_take(x->streams, j->ns, dst->stream, 10000, &e.out, err)) < 0)
        api->error_wrap(err, "export stream \"%s\"", dst->stream);
    if (rc == 0)
        rc = write_archive(&e, err);
    /* ctr returns once Transfer does, its copy of the stream into the file on a goroutine of its own: answer
     * only when the client took every byte */
    if (rc == 0)
        rc = xstream_write_end(e.out, 60000, err);
    if (e.out) {
        xstream_close(e.out); /* the client's EOF: the archive is whole only when rc is 0 */
        xstream_release(e.out);
    }
    if (rc == 0)
        job_progress(j, "Completed export", NULL, NULL, 0, 0, 0, NULL);
    api->error_free(e.werr);
    for (size_t i = 0; i < e.n_recs; i++)
        free(e.recs[i].data);
    for (size_t i = 0; i < e.n_mans; i++) {
        for (size_t k = 0; k < e.mans[i].n_names; k++)
            free(e.mans[i].names[k]);
        free(e.mans[i].names);
    }
    free(e.recs);
    free(e.mans);
    free(imgs);
    return rc;
}
