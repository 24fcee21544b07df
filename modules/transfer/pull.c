/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pull: registry -> image store, as containerd's core/transfer/local/pull.go. Resolve the reference, walk the
 * index and manifests (platform filter of the ImageStore: its platforms, all_metadata, manifest_limit),
 * storing each manifest, index and config with containerd's gc.ref labels for its children and the
 * distribution source label (push mounts from it), then download every selected layer at once into
 * resumable ingests while an unpacker per image applies them in order as they commit. The image records
 * (ImageStore.Store's rules) come last, so a failed pull leaves no record: only blobs its lease held.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib_crypto.h"
#include "transfer.h"

#include "types/transfer/imagestore.pb-c.h"
#include "types/transfer/registry.pb-c.h"

#define PROGRESS_EVERY_NS 300000000LL /* containerd's progress tracker ticks every 300 ms */

typedef struct waiter_s {
    unpacker_t *u;
    size_t layer;
} waiter_t;

typedef struct blob_s {
    struct pull_s *p;
    berth_descriptor_t desc; /* no annotations */
    char name[BERTH_DIGEST_MAX + 16];
    char parent[BERTH_DIGEST_MAX + 16];
    berth_content_writer_t *w;
    int64_t have, got;
    int64_t last_ns;
    int rc;
    berth_error_t *err;
    waiter_t *waiters;
    size_t n_waiters;
} blob_t;

typedef struct uplat_s {
    oci_platform_t platform;
    char snapshotter[64];
} uplat_t;

typedef struct pull_s {
    xjob_t *j;
    const berth_core_api_t *api;
    const Containerd__Types__Transfer__ImageStore *dst;
    remote_t remote;
    oci_platform_t host;
    oci_platform_t *plats; /* the image store's platform filter; none: every platform */
    size_t n_plats;
    uplat_t *ups; /* unpack configurations this daemon can run */
    size_t n_ups;
    blob_t *blobs;
    size_t n_blobs, cap_blobs;
    unpacker_t **unpackers;
    size_t n_unpackers;
    char dist_key[400];
} pull_t;

static int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void
progress(pull_t *p, const char *event, const char *name, const char *parent, int64_t done,
         int64_t total, const berth_descriptor_t *d)
{
    const char *parents[1] = {parent};
    job_progress(p->j, event, name, parents, parent && parent[0] ? 1 : 0, done, total, d);
}

/* ---- labels ------------------------------------------------------------------------------------------ */

/* containerd's ChildGCLabels, numbered as SetChildrenMappedLabels numbers them */
static int
child_labels(pull_t *p, const oci_manifest_t *m, berth_kv_t *kv)
{
    size_t nm = 0, nl = 0, nc = 0, no = 0;
    char key[128];
    if (!m->is_index) {
        if (p->api->kv_set(kv, "containerd.io/gc.ref.content.config", m->config.digest) < 0)
            return BERTH_ENOMEM;
        nc++;
    }
    for (size_t i = 0; i < m->n_children; i++) {
        const berth_descriptor_t *d = &m->children[i].desc;
        if (media_is_config(d->media_type)) {
            if (nc == 0)
                snprintf(key, sizeof key, "containerd.io/gc.ref.content.config");
            else
                snprintf(key, sizeof key, "containerd.io/gc.ref.content.config%zu", nc);
            nc++;
        } else if (media_is_manifest(d->media_type))
            snprintf(key, sizeof key, "containerd.io/gc.ref.content.m.%zu", nm++);
        else if (media_is_layer(d->media_type))
            snprintf(key, sizeof key, "containerd.io/gc.ref.content.l.%zu", nl++);
        else
            snprintf(key, sizeof key, "containerd.io/gc.ref.content.%zu", no++);
        if (p->api->kv_set(kv, key, d->digest) < 0)
            return BERTH_ENOMEM;
    }
    return 0;
}

/* ---- small blobs: manifests, indexes, configs --------------------------------------------------------- */

typedef struct membuf_s {
    const berth_core_api_t *api;
    uint8_t *data;
    size_t len, cap;
    int rc;
    berth_error_t *err;
} membuf_t;

static int
mem_restart(void *user, berth_error_t **err)
{
    (void)err;
    ((membuf_t *)user)->len = 0;
    return 0;
}

static int
mem_data(void *user, const void *buf, size_t len, berth_error_t **err)
{
    membuf_t *m = user;
    if (len >
        m->cap - m->len) /* the client delivers at most desc.size bytes; refuse more all the same */
        return m->api->error_make(err, BERTH_EINVAL,
                                  "blob larger than its descriptor: invalid argument");
    memcpy(m->data + m->len, buf, len);
    m->len += len;
    return 0;
}

static void
mem_done(void *user, int rc, berth_error_t *err)
{
    membuf_t *m = user;
    m->rc = rc;
    m->err = err;
}

/* The blob's bytes from the namespace when it holds them, else from the registry (stored with labels). */
static int
get_small(pull_t *p, const berth_descriptor_t *d, const char *parent, uint8_t **data, size_t *len,
          int *local, berth_error_t **err)
{
    char name[BERTH_DIGEST_MAX + 16];
    descriptor_ref_key(d, name, sizeof name);
    progress(p, "waiting", name, parent, 0, d->size, d);
    int64_t limit = p->j->x->reg.manifest_limit > 0 ? p->j->x->reg.manifest_limit : 4 << 20;
    berth_error_t *e2 = NULL;
    /* the lease first, then the look (as store_blob_open): a collection either ran before and the read
     * finds nothing, or after, and the lease keeps what the read found (an image removed meanwhile) */
    xfer_t *x = p->j->x;
    int rc = x->mdo->lease_add_resource(x->md, p->j->ns, p->j->lease, "content", d->digest, err);
    if (rc < 0)
        return rc;
    rc = store_blob_read(p->j, d->digest, limit, data, len, &e2);
    if (rc == 0) {
        *local = 1;
        progress(p, "already exists", name, NULL, d->size, d->size, d);
        return 0;
    }
    if (rc != BERTH_ENOTFOUND) {
        *err = e2;
        return rc;
    }
    p->api->error_free(e2);
    *local = 0;
    if (media_is_index(d->media_type) || media_is_manifest(d->media_type))
        return reg_fetch_manifest(p->remote.client, d, data, len, err);
    if (d->size > limit)
        return p->api->error_make(err, BERTH_EINVAL,
                                  "%s: %lld bytes is over the limit of %lld: invalid argument",
                                  d->digest, (long long)d->size, (long long)limit);
    /* a config is a blob: fetched through the blob path into memory, verified by put_small's store */
    membuf_t mb = {
        .api = p->api, .data = malloc(d->size ? (size_t)d->size : 1), .cap = (size_t)d->size};
    if (!mb.data)
        return p->api->error_make(err, BERTH_ENOMEM, "out of memory");
    reg_blob_job_t job = {
        .desc = *d, .restart = mem_restart, .data = mem_data, .done = mem_done, .user = &mb};
    job.desc.annotations = NULL;
    rc = reg_fetch_blobs(p->remote.client, &job, 1, err);
    if (rc == 0 && mb.rc < 0)
        rc = mb.rc;
    p->api->error_free(mb.err);
    if (rc < 0) {
        free(mb.data);
        return rc;
    }
    *data = mb.data;
    *len = mb.len;
    return rc;
}

static int
put_small(pull_t *p, const berth_descriptor_t *d, const uint8_t *data, size_t len,
          berth_kv_t *labels, int local, const char *parent, berth_error_t **err)
{
    char name[BERTH_DIGEST_MAX + 16];
    descriptor_ref_key(d, name, sizeof name);
    int rc = p->api->kv_set(labels, p->dist_key, p->remote.ref.repo);
    if (rc < 0)
        return p->api->error_make(err, BERTH_ENOMEM, "out of memory");
    if (local) {
        for (size_t i = 0; i < p->api->kv_size(labels); i++)
            if ((rc = store_blob_label(p->j, d->digest, p->api->kv_key_at(labels, i),
                                       p->api->kv_value_at(labels, i), err)) < 0)
                return rc;
        return 0;
    }
    if ((rc = store_blob_put(p->j, d, data, len, labels, err)) < 0)
        return rc;
    progress(p, "complete", name, parent, d->size, d->size, d);
    return 0;
}

/* ---- layers ------------------------------------------------------------------------------------------ */

static blob_t *
add_layer(pull_t *p, const berth_descriptor_t *d, const char *parent, berth_error_t **err)
{
    for (size_t i = 0; i < p->n_blobs; i++)
        if (strcmp(p->blobs[i].desc.digest, d->digest) == 0)
            return &p->blobs[i];
    if (p->n_blobs == p->cap_blobs) {
        size_t cap = p->cap_blobs ? 2 * p->cap_blobs : 16;
        blob_t *nb = realloc(p->blobs, cap * sizeof *nb);
        if (!nb) {
            p->api->error_make(err, BERTH_ENOMEM, "out of memory");
            return NULL;
        }
        p->blobs = nb;
        p->cap_blobs = cap;
    }
    blob_t *b = &p->blobs[p->n_blobs++];
    memset(b, 0, sizeof *b);
    b->p = p;
    b->desc = *d;
    b->desc.annotations = NULL;
    descriptor_ref_key(d, b->name, sizeof b->name);
    snprintf(b->parent, sizeof b->parent, "%s", parent);
    return b;
}

static int
add_waiter(pull_t *p, size_t bi, unpacker_t *u, size_t layer, berth_error_t **err)
{
    blob_t *b = &p->blobs[bi];
    waiter_t *nw = realloc(b->waiters, (b->n_waiters + 1) * sizeof *nw);
    if (!nw)
        return p->api->error_make(err, BERTH_ENOMEM, "out of memory");
    b->waiters = nw;
    b->waiters[b->n_waiters++] = (waiter_t){u, layer};
    return 0;
}

static void
blob_ready(blob_t *b)
{
    for (size_t i = 0; i < b->n_waiters; i++)
        unpack_ready(b->waiters[i].u, b->waiters[i].layer);
}

static int
blob_restart(void *user, berth_error_t **err)
{
    blob_t *b = user;
    b->got = 0;
    b->have = 0;
    return b->p->j->x->cso->writer_truncate(b->w, 0, err);
}

static int
blob_data(void *user, const void *buf, size_t len, berth_error_t **err)
{
    blob_t *b = user;
    int rc = b->p->j->x->cso->writer_write(b->w, buf, len, err);
    if (rc < 0)
        return rc;
    b->got += (int64_t)len;
    int64_t t = now_ns();
    if (t - b->last_ns >= PROGRESS_EVERY_NS) {
        b->last_ns = t;
        progress(b->p, "downloading", b->name, b->parent, b->have + b->got, b->desc.size, &b->desc);
    }
    return 0;
}

static void
blob_done(void *user, int rc, berth_error_t *err)
{
    blob_t *b = user;
    pull_t *p = b->p;
    if (rc < 0) {
        p->j->x->cso->writer_close(b->w); /* the ingest stays for a resume */
        b->w = NULL;
        b->rc = rc;
        b->err = err;
        return;
    }
    berth_kv_t *labels = p->api->kv_new();
    if (labels)
        p->api->kv_set(labels, p->dist_key, p->remote.ref.repo);
    rc = store_blob_commit(p->j, b->w, &b->desc, labels, &b->err);
    p->api->kv_free(labels);
    b->w = NULL;
    b->rc = rc;
    if (rc < 0)
        return;
    progress(p, "complete", b->name, b->parent, b->desc.size, b->desc.size, &b->desc);
    blob_ready(b);
}

static int
download_layers(pull_t *p, berth_error_t **err)
{
    const berth_core_api_t *api = p->api;
    reg_blob_job_t *jobs = calloc(p->n_blobs ? p->n_blobs : 1, sizeof *jobs);
    size_t n = 0;
    int rc = 0;
    if (!jobs)
        return api->error_make(err, BERTH_ENOMEM, "out of memory");
    for (size_t i = 0; i < p->n_blobs && rc == 0; i++) {
        blob_t *b = &p->blobs[i];
        progress(p, "waiting", b->name, b->parent, 0, b->desc.size, &b->desc);
        rc = store_blob_open(p->j, &b->desc, &b->w, &b->have, err);
        if (rc < 0)
            break;
        if (rc == 1) {
            rc = 0;
            progress(p, "already exists", b->name, NULL, b->desc.size, b->desc.size, &b->desc);
            /* a blob from another pull still gets this repository as a source */
            berth_error_t *e2 = NULL;
            if (store_blob_label(p->j, b->desc.digest, p->dist_key, p->remote.ref.repo, &e2) < 0)
                api->error_free(e2);
            blob_ready(b);
            continue;
        }
        if (b->have > 0)
            api->log(p->j->x->log, BERTH_LOG_INFO, "pull: resuming %s at %lld of %lld bytes",
                     b->desc.digest, (long long)b->have, (long long)b->desc.size);
        jobs[n++] = (reg_blob_job_t){.desc = b->desc,
                                     .offset = b->have,
                                     .restart = blob_restart,
                                     .data = blob_data,
                                     .done = blob_done,
                                     .user = b};
    }
    if (rc == 0 && n > 0) {
        berth_error_t *e2 = NULL;
        int frc = reg_fetch_blobs(p->remote.client, jobs, n, &e2);
        /* a commit failure (a digest mismatch) is the blob's own, not the client's */
        for (size_t i = 0; i < n && rc == 0; i++) {
            blob_t *b = jobs[i].user;
            if (b->rc < 0) {
                rc = b->rc;
                *err = b->err;
                b->err = NULL;
                api->error_wrap(err, "failed to fetch %s", b->desc.digest);
            }
        }
        if (rc == 0 && frc < 0) {
            rc = frc;
            *err = e2;
        } else {
            api->error_free(e2);
        }
    }
    for (size_t i = 0; i < p->n_blobs; i++) {
        blob_t *b = &p->blobs[i];
        if (b->w) /* opened but never run (an earlier failure) */
            p->j->x->cso->writer_close(b->w), b->w = NULL;
        if (b->err)
            api->error_free(b->err), b->err = NULL;
    }
    free(jobs);
    return rc;
}

/* ---- the walk ------------------------------------------------------------------------------------------ */

static int
want_platform(const pull_t *p, const oci_platform_t *have)
{
    if (p->n_plats == 0)
        return 1;
    for (size_t i = 0; i < p->n_plats; i++)
        if (platform_match(&p->plats[i], have))
            return 1;
    return 0;
}

/* orderedPlatformComparer: the index of the first wanted platform a child matches; no platform sorts last */
static size_t
order_of(const pull_t *p, const oci_child_t *c)
{
    if (!c->has_platform)
        return (size_t)-1;
    for (size_t i = 0; i < p->n_plats; i++)
        if (platform_match(&p->plats[i], &c->platform))
            return i;
    return p->n_plats;
}

static int handle(pull_t *p, const berth_descriptor_t *d, const char *parent,
                  const oci_child_t *entry, int depth, berth_error_t **err);

static int
handle_manifest(pull_t *p, const char *name, const oci_manifest_t *m, const oci_child_t *entry,
                berth_error_t **err)
{
    const berth_core_api_t *api = p->api;
    uint8_t *cfg = NULL;
    size_t cfg_len = 0;
    int local = 0;
    int rc = get_small(p, &m->config, name, &cfg, &cfg_len, &local, err);
    if (rc < 0)
        return rc;
    berth_kv_t *labels = api->kv_new();
    rc = labels ? put_small(p, &m->config, cfg, cfg_len, labels, local, name, err)
                : api->error_make(err, BERTH_ENOMEM, "out of memory");
    api->kv_free(labels);
    if (rc < 0) {
        free(cfg);
        return rc;
    }
    /* all_metadata: a manifest of another platform keeps only its config (FilterManifestByPlatformHandler) */
    if (entry && entry->has_platform && !want_platform(p, &entry->platform)) {
        free(cfg);
        return 0;
    }
    unpacker_t *u = NULL;
    oci_platform_t cp;
    if (p->n_ups > 0 && m->n_children > 0 && config_platform(api, cfg, cfg_len, &cp, err) == 0) {
        const uplat_t *up = NULL;
        for (size_t i = 0; i < p->n_ups && !up; i++)
            if (platform_rank(&p->ups[i].platform, &cp) >= 0)
                up = &p->ups[i];
        if (up) {
            if ((rc = unpack_start(p->j, up->snapshotter, &m->config, m, &u, err)) < 0) {
                free(cfg);
                return rc;
            }
            unpacker_t **nu = realloc(p->unpackers, (p->n_unpackers + 1) * sizeof *nu);
            if (!nu) {
                unpack_cancel(u);
                berth_error_t *e2 = NULL;
                unpack_finish(u, &e2);
                api->error_free(e2);
                free(cfg);
                return api->error_make(err, BERTH_ENOMEM, "out of memory");
            }
            p->unpackers = nu;
            p->unpackers[p->n_unpackers++] = u;
        } else {
            api->log(p->j->x->log, BERTH_LOG_DEBUG,
                     "pull: unpacker does not support platform %s/%s%s%s, only "
                     "fetching layers",
                     cp.os, cp.arch, cp.variant[0] ? "/" : "", cp.variant);
        }
    }
    free(cfg);
    for (size_t i = 0; i < m->n_children; i++) {
        blob_t *b = add_layer(p, &m->children[i].desc, name, err);
        if (!b)
            return BERTH_ENOMEM;
        if (u && (rc = add_waiter(p, (size_t)(b - p->blobs), u, i, err)) < 0)
            return rc;
    }
    return 0;
}

static int
handle_index(pull_t *p, const oci_manifest_t *m, const char *name, int depth, berth_error_t **err)
{
    const Containerd__Types__Transfer__ImageStore *dst = p->dst;
    size_t n = 0;
    const oci_child_t **sel = calloc(m->n_children ? m->n_children : 1, sizeof *sel);
    if (!sel)
        return p->api->error_make(err, BERTH_ENOMEM, "out of memory");
    for (size_t i = 0; i < m->n_children; i++) {
        const oci_child_t *c = &m->children[i];
        /* all_metadata fetches every manifest (the filter applies to their layers); else FilterPlatforms */
        if (dst->all_metadata || !c->has_platform || want_platform(p, &c->platform))
            sel[n++] = c;
    }
    if (dst->manifest_limit > 0) {
        /* LimitManifests: a stable sort by the platform order, then the first manifest_limit */
        for (size_t i = 1; i < n; i++)
            for (size_t k = i; k > 0 && order_of(p, sel[k]) < order_of(p, sel[k - 1]); k--) {
                const oci_child_t *t = sel[k];
                sel[k] = sel[k - 1];
                sel[k - 1] = t;
            }
        if (n == 0) {
            free(sel);
            return p->api->error_make(err, BERTH_ENOTFOUND,
                                      "no match for platform in manifest: not found");
        }
        if (n > dst->manifest_limit)
            n = dst->manifest_limit;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = handle(p, &sel[i]->desc, name, sel[i], depth + 1, err);
    free(sel);
    return rc;
}

static int
handle(pull_t *p, const berth_descriptor_t *d, const char *parent, const oci_child_t *entry,
       int depth, berth_error_t **err)
{
    const berth_core_api_t *api = p->api;
    if (depth > 8)
        return api->error_make(err, BERTH_EINVAL, "%s: indexes nested too deep: invalid argument",
                               d->digest);
    if (!strcmp(d->media_type, "application/vnd.docker.distribution.manifest.v1+prettyjws") ||
        !strcmp(d->media_type, "application/vnd.docker.distribution.manifest.v1+json"))
        return api->error_make(
            err, BERTH_EINVAL,
            "schema 1 image manifests are no longer supported: invalid argument");
    if (!media_is_index(d->media_type) && !media_is_manifest(d->media_type)) {
        api->log(p->j->x->log, BERTH_LOG_DEBUG, "pull: skipping %s of media type %s", d->digest,
                 d->media_type);
        return 0;
    }
    char name[BERTH_DIGEST_MAX + 16];
    descriptor_ref_key(d, name, sizeof name);
    uint8_t *data = NULL;
    size_t len = 0;
    int local = 0;
    int rc = get_small(p, d, parent, &data, &len, &local, err);
    if (rc < 0)
        return rc;
    oci_manifest_t m;
    rc = manifest_parse(api, d->media_type, data, len, &m, err);
    if (rc < 0) {
        free(data);
        return rc;
    }
    berth_kv_t *labels = api->kv_new();
    if (!labels || child_labels(p, &m, labels) < 0)
        rc = api->error_make(err, BERTH_ENOMEM, "out of memory");
    else
        rc = put_small(p, d, data, len, labels, local, parent, err);
    api->kv_free(labels);
    free(data);
    if (rc == 0)
        rc = m.is_index ? handle_index(p, &m, name, depth, err)
                        : handle_manifest(p, name, &m, entry, err);
    manifest_free(&m);
    return rc;
}

/* ---- set-up ------------------------------------------------------------------------------------------ */

static void
platform_from_pb(const Containerd__Types__Platform *pb, oci_platform_t *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->os, sizeof out->os, "%s", pb && pb->os ? pb->os : "");
    snprintf(out->arch, sizeof out->arch, "%s", pb && pb->architecture ? pb->architecture : "");
    snprintf(out->variant, sizeof out->variant, "%s", pb && pb->variant ? pb->variant : "");
}

static int
setup_platforms(pull_t *p, berth_error_t **err)
{
    const Containerd__Types__Transfer__ImageStore *dst = p->dst;
    platform_host(&p->host);
    if (dst->n_platforms) {
        if (!(p->plats = calloc(dst->n_platforms, sizeof *p->plats)))
            return p->api->error_make(err, BERTH_ENOMEM, "out of memory");
        for (size_t i = 0; i < dst->n_platforms; i++)
            platform_from_pb(dst->platforms[i], &p->plats[p->n_plats++]);
    }
    if (dst->n_unpacks) {
        if (!(p->ups = calloc(dst->n_unpacks, sizeof *p->ups)))
            return p->api->error_make(err, BERTH_ENOMEM, "out of memory");
        for (size_t i = 0; i < dst->n_unpacks; i++) {
            const Containerd__Types__Transfer__UnpackConfiguration *uc = dst->unpacks[i];
            oci_platform_t want;
            if (uc->platform)
                platform_from_pb(uc->platform, &want);
            else
                want = p->host;
            /* getSupportedPlatform: the daemon unpacks only what its own platform runs */
            if (platform_rank(&p->host, &want) < 0) {
                p->api->log(p->j->x->log, BERTH_LOG_WARN,
                            "Unpack configuration not supported, skipping platform=%s/%s%s%s "
                            "snapshotter=%s",
                            want.os, want.arch, want.variant[0] ? "/" : "", want.variant,
                            uc->snapshotter ? uc->snapshotter : "");
                continue;
            }
            uplat_t *up = &p->ups[p->n_ups++];
            /* the unpacker then matches image configs with the daemon's platform matcher */
            up->platform = p->host;
            snprintf(up->snapshotter, sizeof up->snapshotter, "%s",
                     uc->snapshotter && uc->snapshotter[0] ? uc->snapshotter
                                                           : p->j->x->default_snapshotter);
        }
    }
    return 0;
}

static void
pull_free(pull_t *p)
{
    for (size_t i = 0; i < p->n_blobs; i++)
        free(p->blobs[i].waiters);
    free(p->blobs);
    free(p->unpackers);
    free(p->plats);
    free(p->ups);
    remote_close(&p->remote);
}

int
xfer_pull(xjob_t *j, const Containerd__Types__Transfer__OCIRegistry *src,
          const Containerd__Types__Transfer__ImageStore *dst, berth_error_t **err)
{
    const berth_core_api_t *api = j->x->api;
    pull_t p = {.j = j, .api = api, .dst = dst};
    char msg[1200];
    int rc = remote_open(j, src, &p.remote, err);
    if (rc < 0)
        return rc;
    snprintf(p.dist_key, sizeof p.dist_key, "containerd.io/distribution.source.%s",
             p.remote.ref.host);
    if ((rc = setup_platforms(&p, err)) < 0)
        goto out;

    snprintf(msg, sizeof msg, "Resolving from OCI Registry (%s)", src->reference);
    job_progress(j, msg, "", NULL, 0, 0, 0, NULL);
    berth_descriptor_t root;
    memset(&root, 0, sizeof root);
    if ((rc = reg_resolve(p.remote.client, &root, err)) < 0) {
        api->error_wrap(err, "failed to resolve image");
        goto out;
    }
    root.annotations = NULL;
    snprintf(msg, sizeof msg, "Pulling from OCI Registry (%s)", src->reference);
    job_progress(j, msg, "", NULL, 0, 0, 0, NULL);
    job_progress(j, "fetching image content", p.remote.ref.name, NULL, 0, 0, 0, &root);

    rc = handle(&p, &root, p.remote.ref.name, NULL, 0, err);
    if (rc == 0)
        rc = download_layers(&p, err);
    if (rc < 0)
        for (size_t i = 0; i < p.n_unpackers; i++)
            unpack_cancel(p.unpackers[i]);
    for (size_t i = 0; i < p.n_unpackers; i++) {
        berth_error_t *e2 = NULL;
        int urc = unpack_finish(p.unpackers[i], &e2);
        if (urc < 0 && rc == 0) {
            rc = urc;
            *err = e2;
        } else {
            api->error_free(e2);
        }
    }
    p.n_unpackers = 0;
    if (rc < 0)
        goto out;
    /* ImageStore.Store's names (tag.c), each record through the Images service: post-pull hook, events */
    if ((rc = imagestore_store(j, dst, &root, err)) < 0)
        goto out;
    snprintf(msg, sizeof msg, "Completed pull from OCI Registry (%s)", src->reference);
    job_progress(j, msg, "", NULL, 0, 0, 0, NULL);
out:
    pull_free(&p);
    /* TLS left OpenSSL's per-thread state on this pool thread (freed only when a thread exits) */
    if (libcrypto_loaded())
        libcrypto.OPENSSL_thread_stop();
    return rc;
}
