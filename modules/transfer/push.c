/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Push: image store -> registry, as containerd's core/transfer/local/push.go and remotes.PushContent. The
 * image's graph (index, manifests, configs, layers) is read from the namespace's content; each blob is
 * checked with HEAD (present: skipped), mounted from another repository of the same registry when its
 * containerd.io/distribution.source.<host> label names one (what a pull recorded), else uploaded (in chunks
 * when large). Children go before their parents, manifests and indexes by digest, the tag last.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib_crypto.h"
#include "transfer.h"

#include "types/transfer/imagestore.pb-c.h"
#include "types/transfer/registry.pb-c.h"

#define PUSH_CHUNK (64LL << 20) /* above this a blob goes up in PATCH chunks of this size */
#define PUSH_DEPTH 8

typedef struct push_s {
    xjob_t *j;
    const berth_core_api_t *api;
    remote_t remote;
    oci_platform_t *plats; /* platforms.Any over the source's platforms; none: all */
    size_t n_plats;
    char (*done)[BERTH_DIGEST_MAX]; /* blobs already handled in this push */
    size_t n_done, cap_done;
} push_t;

typedef struct reader_s {
    xjob_t *j;
    const char *digest;
} reader_t;

static int
read_blob(void *user, int64_t offset, void *buf, size_t len, size_t *got, berth_error_t **err)
{
    reader_t *r = user;
    return r->j->x->cso->read_at(r->j->x->cs, r->digest, offset, buf, len, got, err);
}

static int
seen(push_t *p, const char *digest)
{
    for (size_t i = 0; i < p->n_done; i++)
        if (strcmp(p->done[i], digest) == 0)
            return 1;
    if (p->n_done == p->cap_done) {
        size_t cap = p->cap_done ? 2 * p->cap_done : 16;
        char(*nd)[BERTH_DIGEST_MAX] = realloc(p->done, cap * BERTH_DIGEST_MAX);
        if (!nd)
            return 0; /* pushing twice is only slower */
        p->done = nd;
        p->cap_done = cap;
    }
    snprintf(p->done[p->n_done++], BERTH_DIGEST_MAX, "%s", digest);
    return 0;
}

/* The first repository other than the destination that the blob's distribution source label names. */
static int
mount_source(push_t *p, const char *digest, char *repo, size_t cap)
{
    xjob_t *j = p->j;
    berth_kv_t *labels = p->api->kv_new();
    berth_content_record_t rec;
    berth_error_t *err = NULL;
    int found = 0;
    if (!labels)
        return 0;
    if (j->x->mdo->content_get(j->x->md, j->ns, digest, &rec, labels, &err) == 0) {
        char key[400];
        snprintf(key, sizeof key, "containerd.io/distribution.source.%s", p->remote.ref.host);
        const char *v = p->api->kv_get(labels, key);
        while (v && *v && !found) {
            const char *comma = strchr(v, ',');
            size_t n = comma ? (size_t)(comma - v) : strlen(v);
            if (n > 0 && n < cap &&
                !(strlen(p->remote.ref.repo) == n && !strncmp(v, p->remote.ref.repo, n))) {
                memcpy(repo, v, n);
                repo[n] = '\0';
                found = 1;
            }
            v = comma ? comma + 1 : NULL;
        }
    } else {
        p->api->error_free(err);
    }
    p->api->kv_free(labels);
    return found;
}

static int
push_blob(push_t *p, const berth_descriptor_t *d, const char *parent, berth_error_t **err)
{
    char name[BERTH_DIGEST_MAX + 16], from[512];
    const char *parents[1] = {parent};
    if (seen(p, d->digest))
        return 0;
    descriptor_ref_key(d, name, sizeof name);
    berth_descriptor_t bd = *d;
    bd.annotations = NULL;
    int rc = reg_blob_exists(p->remote.client, &bd, err);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        job_progress(p->j, "exists", name, parents, 1, d->size, d->size, &bd);
        return 0;
    }
    if (mount_source(p, d->digest, from, sizeof from)) {
        rc = reg_blob_mount(p->remote.client, &bd, from, err);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            job_progress(p->j, "mounted", name, parents, 1, d->size, d->size, &bd);
            return 0;
        }
    }
    job_progress(p->j, "pushing", name, parents, 1, 0, d->size, &bd);
    reader_t r = {p->j, d->digest};
    if ((rc = reg_push_blob(p->remote.client, &bd, read_blob, &r, PUSH_CHUNK, err)) < 0)
        return p->api->error_wrap(err, "failed to push %s", d->digest);
    job_progress(p->j, "complete", name, parents, 1, d->size, d->size, &bd);
    return 0;
}

static int
held(push_t *p, const char *digest)
{
    berth_kv_t *labels = p->api->kv_new();
    berth_content_record_t rec;
    berth_error_t *err = NULL;
    if (!labels)
        return 1;
    int rc = p->j->x->mdo->content_get(p->j->x->md, p->j->ns, digest, &rec, labels, &err);
    p->api->kv_free(labels);
    p->api->error_free(err);
    return rc == 0;
}

static int
want(const push_t *p, const oci_child_t *c)
{
    if (p->n_plats == 0 || !c->has_platform)
        return 1;
    for (size_t i = 0; i < p->n_plats; i++)
        if (platform_match(&p->plats[i], &c->platform))
            return 1;
    return 0;
}

/* Pushes d's children, then d (by digest, or by tag when given). */
static int
push_node(push_t *p, const berth_descriptor_t *d, const char *parent, const char *tag, int depth,
          berth_error_t **err)
{
    const berth_core_api_t *api = p->api;
    if (depth > PUSH_DEPTH)
        return api->error_make(err, BERTH_EINVAL, "%s: indexes nested too deep: invalid argument",
                               d->digest);
    if (!media_is_index(d->media_type) && !media_is_manifest(d->media_type))
        return push_blob(p, d, parent, err);
    char name[BERTH_DIGEST_MAX + 16];
    descriptor_ref_key(d, name, sizeof name);
    uint8_t *data = NULL;
    size_t len = 0;
    int64_t limit = p->j->x->reg.manifest_limit > 0 ? p->j->x->reg.manifest_limit : 4 << 20;
    int rc = store_blob_read(p->j, d->digest, limit, &data, &len, err);
    if (rc < 0)
        return rc;
    oci_manifest_t m;
    if ((rc = manifest_parse(api, d->media_type, data, len, &m, err)) < 0) {
        free(data);
        return rc;
    }
    if (m.is_index) {
        for (size_t i = 0; i < m.n_children && rc == 0; i++) {
            if (!want(p, &m.children[i]))
                continue;
            /* a manifest of a platform this namespace never fetched (a single-platform pull) */
            if (!held(p, m.children[i].desc.digest)) {
                api->log(p->j->x->log, BERTH_LOG_DEBUG, "push: %s not held, skipped",
                         m.children[i].desc.digest);
                continue;
            }
            rc = push_node(p, &m.children[i].desc, name, NULL, depth + 1, err);
        }
    } else {
        rc = push_blob(p, &m.config, name, err);
        for (size_t i = 0; i < m.n_children && rc == 0; i++)
            rc = push_blob(p, &m.children[i].desc, name, err);
    }
    manifest_free(&m);
    if (rc == 0) {
        const char *parents[1] = {parent};
        berth_descriptor_t bd = *d;
        bd.annotations = NULL;
        job_progress(p->j, "pushing", name, parents, parent ? 1 : 0, 0, d->size, &bd);
        rc = reg_push_manifest(p->remote.client, tag && tag[0] ? tag : d->digest, d->media_type,
                               data, len, err);
        if (rc == 0)
            job_progress(p->j, "complete", name, parents, parent ? 1 : 0, d->size, d->size, &bd);
    }
    free(data);
    return rc;
}

int
xfer_push(xjob_t *j, const Containerd__Types__Transfer__ImageStore *src,
          const Containerd__Types__Transfer__OCIRegistry *dst, berth_error_t **err)
{
    const berth_core_api_t *api = j->x->api;
    push_t p = {.j = j, .api = api};
    char msg[1200];
    if (!src->name || !src->name[0])
        return api->error_make(err, BERTH_EINVAL, "image name is required: invalid argument");
    berth_descriptor_t target;
    memset(&target, 0, sizeof target);
    int rc = store_image_get(j, src->name, &target, err);
    if (rc < 0)
        return rc;
    if ((rc = remote_open(j, dst, &p.remote, err)) < 0)
        return rc;
    if (src->n_platforms) {
        if (!(p.plats = calloc(src->n_platforms, sizeof *p.plats))) {
            rc = api->error_make(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < src->n_platforms; i++) {
            const Containerd__Types__Platform *pb = src->platforms[i];
            oci_platform_t *q = &p.plats[p.n_plats++];
            snprintf(q->os, sizeof q->os, "%s", pb->os ? pb->os : "");
            snprintf(q->arch, sizeof q->arch, "%s", pb->architecture ? pb->architecture : "");
            snprintf(q->variant, sizeof q->variant, "%s", pb->variant ? pb->variant : "");
        }
    }
    snprintf(msg, sizeof msg, "Pushing to OCI Registry (%s)", dst->reference);
    job_progress(j, msg, "", NULL, 0, 0, 0, NULL);
    job_progress(j, "pushing content", src->name, NULL, 0, 0, 0, &target);
    /* the tag names the root; a reference by digest pushes it by digest */
    rc = push_node(&p, &target, src->name, p.remote.ref.tag[0] ? p.remote.ref.tag : NULL, 0, err);
    if (rc < 0)
        goto out;
    job_progress(j, "pushed content", src->name, NULL, 0, 0, 0, &target);
    snprintf(msg, sizeof msg, "Completed push to OCI Registry (%s)", dst->reference);
    job_progress(j, msg, "", NULL, 0, 0, 0, &target);
out:
    free(p.plats);
    free(p.done);
    remote_close(&p.remote);
    /* TLS left OpenSSL's per-thread state on this pool thread (freed only when a thread exits) */
    if (libcrypto_loaded())
        libcrypto.OPENSSL_thread_stop();
    return rc;
}
