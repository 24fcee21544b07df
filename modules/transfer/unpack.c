/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unpacking while downloading, as containerd's core/unpack: a thread per unpacker applies layer i as soon as
 * its blob is committed (unpack_ready) and every layer below it is applied. Each layer becomes the
 * committed snapshot named by its chain id (identity.ChainID over the config's diff_ids): one that exists
 * already is skipped; otherwise Prepare("extract-<unique> <chainid>", parent = the previous chain id),
 * apply the layer with the differ, check the diff id, Commit(<chainid>). Snapshots go through the Snapshots
 * service in process, within the job's lease, so its records, labels and crash ordering are its own.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>

#include "lib_crypto.h" /* opened on first use; SHA256_CTX: EVP leaves per-thread state on pool threads */

#include "transfer.h"

#include "services/snapshots/v1/snapshots.pb-c.h"

typedef struct ulayer_s {
    berth_descriptor_t desc; /* annotations not kept (the pull's manifest may go first) */
    char diff_id[BERTH_DIGEST_MAX];
    char chain_id[BERTH_DIGEST_MAX];
    int ready;
} ulayer_t;

struct unpacker_s {
    xjob_t *j;
    char snapshotter[64];
    char config[BERTH_DIGEST_MAX];
    ulayer_t *layers;
    size_t n;
    pthread_t thread;
    int started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int cancelled;
    int rc;
    berth_error_t *err;
};

/* identity.ChainID: chain[0] = diff[0], chain[i] = sha256(chain[i-1] + " " + diff[i]) */
static void
chain_next(const char *parent, const char *diff, char out[BERTH_DIGEST_MAX])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    char buf[2 * BERTH_DIGEST_MAX + 2];
    int n = snprintf(buf, sizeof buf, "%s %s", parent, diff);
    SHA256_CTX h; /* the low-level API: libcrypto.SHA256() goes through EVP */
    libcrypto.SHA256_Init(&h);
    libcrypto.SHA256_Update(&h, buf, (size_t)n);
    libcrypto.SHA256_Final(md, &h);
    strcpy(out, "sha256:");
    for (unsigned i = 0; i < SHA256_DIGEST_LENGTH; i++)
        sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

/* containerd's uniquePart: nanoseconds and 3 random bytes, URL-safe base64 */
static void
unique_part(char *out, size_t cap)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char r[3] = {0};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (getrandom(r, sizeof r, 0) < 0)
        r[0] ^= (unsigned char)ts.tv_nsec;
    char enc[5] = {b64[r[0] >> 2], b64[((r[0] & 3) << 4) | (r[1] >> 4)],
                   b64[((r[1] & 15) << 2) | (r[2] >> 6)], b64[r[2] & 63], 0};
    snprintf(out, cap, "%ld-%s", ts.tv_nsec, enc);
}

/* ---- the Snapshots service, in process ---------------------------------------------------------------- */

typedef Containerd__Services__Snapshots__V1__PrepareSnapshotRequest__LabelsEntry prep_label_t;
typedef Containerd__Services__Snapshots__V1__CommitSnapshotRequest__LabelsEntry commit_label_t;

static int
sn_stat(unpacker_t *u, const char *key, berth_error_t **err)
{
    xjob_t *j = u->j;
    Containerd__Services__Snapshots__V1__StatSnapshotRequest req =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__STAT_SNAPSHOT_REQUEST__INIT;
    req.snapshotter = u->snapshotter;
    req.key = (char *)key;
    uint8_t *resp = NULL;
    size_t len = 0;
    int rc = svc_call(j, j->x->snapshots, j->x->snapshots_svc, "Stat", &req.base, &resp, &len, err);
    free(resp);
    return rc;
}

static void
sn_remove(unpacker_t *u, const char *key)
{
    xjob_t *j = u->j;
    Containerd__Services__Snapshots__V1__RemoveSnapshotRequest req =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__REMOVE_SNAPSHOT_REQUEST__INIT;
    req.snapshotter = u->snapshotter;
    req.key = (char *)key;
    uint8_t *resp = NULL;
    size_t len = 0;
    berth_error_t *err = NULL;
    if (svc_call(j, j->x->snapshots, j->x->snapshots_svc, "Remove", &req.base, &resp, &len, &err) <
        0) {
        j->x->api->log(j->x->log, BERTH_LOG_WARN, "unpack: failed to cleanup %s", key);
        j->x->api->error_free(err);
    }
    free(resp);
}

/* Prepare with labels; the mounts come back as the differ wants them. */
static int
sn_prepare(unpacker_t *u, const char *key, const char *parent, const char *const *kv, size_t n_kv,
           berth_mount_t **mounts, size_t *n_mounts, berth_error_t **err)
{
    xjob_t *j = u->j;
    Containerd__Services__Snapshots__V1__PrepareSnapshotRequest req =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__PREPARE_SNAPSHOT_REQUEST__INIT;
    prep_label_t ents[8], *ptrs[8];
    for (size_t i = 0; i < n_kv && i < 8; i++) {
        prep_label_t e =
            CONTAINERD__SERVICES__SNAPSHOTS__V1__PREPARE_SNAPSHOT_REQUEST__LABELS_ENTRY__INIT;
        e.key = (char *)kv[2 * i];
        e.value = (char *)kv[2 * i + 1];
        ents[i] = e;
        ptrs[i] = &ents[i];
    }
    req.snapshotter = u->snapshotter;
    req.key = (char *)key;
    req.parent = (char *)parent;
    req.n_labels = n_kv < 8 ? n_kv : 8;
    req.labels = ptrs;
    uint8_t *resp = NULL;
    size_t len = 0;
    int rc =
        svc_call(j, j->x->snapshots, j->x->snapshots_svc, "Prepare", &req.base, &resp, &len, err);
    if (rc < 0)
        return rc;
    Containerd__Services__Snapshots__V1__PrepareSnapshotResponse *r =
        containerd__services__snapshots__v1__prepare_snapshot_response__unpack(NULL, len, resp);
    free(resp);
    if (!r)
        return j->x->api->error_make(err, BERTH_EINTERNAL, "prepare %s: undecodable response", key);
    berth_mount_t *m = calloc(r->n_mounts ? r->n_mounts : 1, sizeof *m);
    rc = m ? 0 : j->x->api->error_make(err, BERTH_ENOMEM, "out of memory");
    for (size_t i = 0; m && i < r->n_mounts; i++) {
        Containerd__Types__Mount *pm = r->mounts[i];
        m[i].type = strdup(pm->type ? pm->type : "");
        m[i].source = strdup(pm->source ? pm->source : "");
        m[i].options = calloc(pm->n_options ? pm->n_options : 1, sizeof(char *));
        if (!m[i].type || !m[i].source || !m[i].options)
            rc = j->x->api->error_make(err, BERTH_ENOMEM, "out of memory");
        for (size_t k = 0; m[i].options && k < pm->n_options; k++, m[i].n_options++)
            m[i].options[k] = strdup(pm->options[k]);
    }
    *mounts = m;
    *n_mounts = m ? r->n_mounts : 0;
    containerd__services__snapshots__v1__prepare_snapshot_response__free_unpacked(r, NULL);
    return rc;
}

static void
mounts_free(berth_mount_t *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++) {
        free(m[i].type);
        free(m[i].source);
        for (size_t k = 0; k < m[i].n_options; k++)
            free(m[i].options[k]);
        free(m[i].options);
    }
    free(m);
}

static int
sn_commit(unpacker_t *u, const char *name, const char *key, const char *const *kv, size_t n_kv,
          berth_error_t **err)
{
    xjob_t *j = u->j;
    Containerd__Services__Snapshots__V1__CommitSnapshotRequest req =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__COMMIT_SNAPSHOT_REQUEST__INIT;
    commit_label_t ents[8], *ptrs[8];
    for (size_t i = 0; i < n_kv && i < 8; i++) {
        commit_label_t e =
            CONTAINERD__SERVICES__SNAPSHOTS__V1__COMMIT_SNAPSHOT_REQUEST__LABELS_ENTRY__INIT;
        e.key = (char *)kv[2 * i];
        e.value = (char *)kv[2 * i + 1];
        ents[i] = e;
        ptrs[i] = &ents[i];
    }
    req.snapshotter = u->snapshotter;
    req.name = (char *)name;
    req.key = (char *)key;
    req.n_labels = n_kv < 8 ? n_kv : 8;
    req.labels = ptrs;
    uint8_t *resp = NULL;
    size_t len = 0;
    int rc =
        svc_call(j, j->x->snapshots, j->x->snapshots_svc, "Commit", &req.base, &resp, &len, err);
    free(resp);
    return rc;
}

/* ---- one layer ------------------------------------------------------------------------------------------ */

static void
extract_progress(unpacker_t *u, size_t i, const char *event)
{
    char name[BERTH_DIGEST_MAX + 16], parent[BERTH_DIGEST_MAX + 16];
    snprintf(name, sizeof name, "layer-%s", u->layers[i].desc.digest);
    snprintf(parent, sizeof parent, "config-%s", u->config);
    const char *parents[1] = {parent};
    job_progress(u->j, event, name, parents, 1, u->layers[i].desc.size, u->layers[i].desc.size,
                 &u->layers[i].desc);
}

static int
apply_layer(unpacker_t *u, size_t i, berth_error_t **err)
{
    xjob_t *j = u->j;
    const berth_core_api_t *api = j->x->api;
    ulayer_t *l = &u->layers[i];
    const char *parent = i > 0 ? u->layers[i - 1].chain_id : "";
    berth_error_t *e2 = NULL;

    int rc = sn_stat(u, l->chain_id, &e2);
    if (rc == 0)
        return 0; /* committed already (another image, an earlier pull) */
    if (rc != BERTH_ENOTFOUND) {
        *err = e2;
        return rc;
    }
    api->error_free(e2), e2 = NULL;

    const char *kv[6] = {"containerd.io/snapshot.ref",
                         l->chain_id,
                         "containerd.io/snapshot/diff-id",
                         l->diff_id,
                         "containerd.io/snapshot/parent-chain-id",
                         parent};
    size_t n_kv = i > 0 ? 3 : 2;
    char key[256], uniq[64];
    berth_mount_t *mounts = NULL;
    size_t n_mounts = 0;
    for (int attempt = 1;; attempt++) {
        unique_part(uniq, sizeof uniq);
        snprintf(key, sizeof key, "extract-%s %s", uniq, l->chain_id);
        rc = sn_prepare(u, key, parent, kv, n_kv, &mounts, &n_mounts, &e2);
        if (rc == 0)
            break;
        mounts_free(mounts, n_mounts), mounts = NULL, n_mounts = 0;
        if (rc != BERTH_EEXIST || attempt == 3) {
            *err = e2;
            return api->error_wrap(err, "failed to prepare extraction snapshot \"%s\"", key);
        }
        api->error_free(e2), e2 = NULL;
        if (sn_stat(u, l->chain_id, &e2) == 0)
            return 0;
        api->error_free(e2), e2 = NULL;
    }

    extract_progress(u, i, "extracting");
    berth_descriptor_t applied;
    memset(&applied, 0, sizeof applied);
    rc = j->x->dfo->apply(j->x->differ, j->ns, &l->desc, mounts, n_mounts, &applied, err);
    mounts_free(mounts, n_mounts);
    if (rc < 0) {
        sn_remove(u, key);
        return api->error_wrap(err, "failed to extract layer (%s %s) to %s as \"%s\"",
                               l->desc.media_type, l->desc.digest, u->snapshotter, key);
    }
    if (strcmp(applied.digest, l->diff_id) != 0) {
        sn_remove(u, key);
        return api->error_make(err, BERTH_EPRECONDITION,
                               "wrong diff id \"%s\" calculated on extraction \"%s\", desc \"%s\"",
                               applied.digest, l->diff_id, l->desc.digest);
    }
    rc = sn_commit(u, l->chain_id, key, kv, n_kv, &e2);
    if (rc < 0) {
        sn_remove(u, key);
        if (rc == BERTH_EEXIST) { /* another unpack committed it meanwhile */
            api->error_free(e2);
            return 0;
        }
        *err = e2;
        return api->error_wrap(err, "failed to commit snapshot %s", key);
    }
    extract_progress(u, i, "extracted");
    /* what containerd's unpacker records so the differ and later pulls know the layer's diff id */
    if (store_blob_label(j, l->desc.digest, "containerd.io/uncompressed", l->diff_id, &e2) < 0) {
        api->log(j->x->log, BERTH_LOG_WARN, "unpack: labelling %s failed", l->desc.digest);
        api->error_free(e2);
    }
    return 0;
}

static void *
unpack_thread(void *arg)
{
    unpacker_t *u = arg;
    int rc = 0;
    berth_error_t *err = NULL;
    for (size_t i = 0; i < u->n && rc == 0; i++) {
        pthread_mutex_lock(&u->lock);
        while (!u->layers[i].ready && !u->cancelled)
            pthread_cond_wait(&u->cond, &u->lock);
        int cancelled = u->cancelled;
        pthread_mutex_unlock(&u->lock);
        if (cancelled) {
            rc = u->j->x->api->error_make(&err, BERTH_ECANCELED, "unpack: aborted");
            break;
        }
        rc = apply_layer(u, i, &err);
    }
    u->rc = rc;
    u->err = err;
    return NULL;
}

int
unpack_start(xjob_t *j, const char *snapshotter, const berth_descriptor_t *config,
             const oci_manifest_t *manifest, unpacker_t **out, berth_error_t **err)
{
    const berth_core_api_t *api = j->x->api;
    uint8_t *data = NULL;
    size_t len = 0;
    char(*ids)[BERTH_DIGEST_MAX] = NULL;
    size_t n = 0;
    *out = NULL;
    int rc = store_blob_read(j, config->digest,
                             j->x->reg.manifest_limit > 0 ? j->x->reg.manifest_limit : 4 << 20,
                             &data, &len, err);
    if (rc < 0)
        return rc;
    rc = config_diff_ids(api, data, len, &ids, &n, err);
    free(data);
    if (rc < 0)
        return rc;
    if (n != manifest->n_children) {
        free(ids);
        return api->error_make(err, BERTH_EINVAL,
                               "number of layers and diffIDs don't match: %zu != %zu",
                               manifest->n_children, n);
    }
    unpacker_t *u = calloc(1, sizeof *u);
    if (!u || !(u->layers = calloc(n ? n : 1, sizeof *u->layers))) {
        free(u);
        free(ids);
        return api->error_make(err, BERTH_ENOMEM, "out of memory");
    }
    u->j = j;
    snprintf(u->snapshotter, sizeof u->snapshotter, "%s", snapshotter);
    snprintf(u->config, sizeof u->config, "%s", config->digest);
    u->n = n;
    for (size_t i = 0; i < n; i++) {
        u->layers[i].desc = manifest->children[i].desc;
        u->layers[i].desc.annotations = NULL;
        strcpy(u->layers[i].diff_id, ids[i]);
        if (i == 0)
            strcpy(u->layers[i].chain_id, ids[i]);
        else
            chain_next(u->layers[i - 1].chain_id, ids[i], u->layers[i].chain_id);
    }
    free(ids);
    pthread_mutex_init(&u->lock, NULL);
    pthread_cond_init(&u->cond, NULL);
    if ((rc = pthread_create(&u->thread, NULL, unpack_thread, u)) != 0) {
        pthread_mutex_destroy(&u->lock);
        pthread_cond_destroy(&u->cond);
        free(u->layers);
        free(u);
        return api->error_make(err, BERTH_EINTERNAL, "unpack: thread: %s", strerror(rc));
    }
    u->started = 1;
    *out = u;
    return 0;
}

void
unpack_ready(unpacker_t *u, size_t layer)
{
    if (!u || layer >= u->n)
        return;
    pthread_mutex_lock(&u->lock);
    u->layers[layer].ready = 1;
    pthread_cond_broadcast(&u->cond);
    pthread_mutex_unlock(&u->lock);
}

void
unpack_cancel(unpacker_t *u)
{
    if (!u)
        return;
    pthread_mutex_lock(&u->lock);
    u->cancelled = 1;
    pthread_cond_broadcast(&u->cond);
    pthread_mutex_unlock(&u->lock);
}

const char *
unpack_chain_id(const unpacker_t *u)
{
    return u && u->n ? u->layers[u->n - 1].chain_id : "";
}

int
unpack_finish(unpacker_t *u, berth_error_t **err)
{
    if (!u)
        return 0;
    xjob_t *j = u->j;
    if (u->started)
        pthread_join(u->thread, NULL);
    int rc = u->rc;
    if (rc < 0) {
        *err = u->err;
    } else if (u->n > 0) {
        char key[128];
        snprintf(key, sizeof key, "containerd.io/gc.ref.snapshot.%s", u->snapshotter);
        rc = store_blob_label(j, u->config, key, u->layers[u->n - 1].chain_id, err);
    }
    pthread_mutex_destroy(&u->lock);
    pthread_cond_destroy(&u->cond);
    free(u->layers);
    free(u);
    return rc;
}
