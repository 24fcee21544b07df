/* SPDX-License-Identifier: Apache-2.0 */
/*
 * containerd.services.snapshots.v1.Snapshots (io.containerd.grpc.v1.snapshots): the snapshotter chosen by
 * name, its keys namespaced as "<namespace>/<key>", and what each namespace sees (name, parent, kind,
 * labels, times) kept as metadata snapshot records, as containerd's metadata snapshotter wrapper does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include <berth/gc.h>
#include <berth/grpc.h>
#include <berth/metadata.h>
#include <berth/module.h>
#include <berth/snapshot.h>

#include "rpc.h"
#include "filters.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb-c.h"

typedef Containerd__Services__Snapshots__V1__Info info_pb_t;

#define RECORD_MAX (64 * 1024)

typedef struct snapshotter {
    char *name;
    void *sn;
    const berth_snapshotter_v1_ops_t *ops;
} snapshotter_t;

typedef struct svc {
    const berth_core_api_t *api;
    uv_loop_t *loop;
    void *md;
    const berth_metadata_v1_ops_t *mdo;
    snapshotter_t *sns;
    size_t nsns;
    void *gc;
    const berth_gc_v1_ops_t *gc_ops;
    pthread_mutex_t sweep_lock;
    char *
        *pending; /* "<snapshotter>\n<backend key>" the collector removed while children remained */
    size_t n_pending;
} svc_t;

static const snapshotter_t *
pick(svc_t *s, const char *name, berth_error_t **err)
{
    for (size_t i = 0; i < s->nsns; i++)
        if (strcmp(s->sns[i].name, name) == 0)
            return &s->sns[i];
    s->api->error_make(err, BERTH_ENOTFOUND, "snapshotter %s: not loaded", name);
    return NULL;
}

static void
backend_key(char *out, size_t len, const char *ns, const char *key)
{
    snprintf(out, len, "%s/%s", ns, key);
}

static int
bad(svc_t *s, const char *what, berth_error_t **err)
{
    return s->api->error_make(err, BERTH_EINVAL, "request is not a valid %s", what);
}

/* The namespace's record of a snapshot (NotFound when it does not hold one). */
static info_pb_t *
record(svc_t *s, const char *ns, const char *sn, const char *key, berth_error_t **err)
{
    uint8_t *data;
    size_t len;
    if (s->mdo->snapshot_get(s->md, ns, sn, key, &data, &len, err) < 0)
        return NULL;
    info_pb_t *info = containerd__services__snapshots__v1__info__unpack(NULL, len, data);
    s->api->free(data);
    if (info == NULL)
        s->api->error_make(err, BERTH_EDATALOSS, "snapshot %s: record does not decode", key);
    return info;
}

static int
encode_record(svc_t *s, const char *key, const char *parent, int kind, size_t n_labels,
              Containerd__Services__Snapshots__V1__Info__LabelsEntry **labels, uint8_t *buf,
              size_t *len, berth_error_t **err)
{
    info_pb_t info = CONTAINERD__SERVICES__SNAPSHOTS__V1__INFO__INIT;
    info.name = (char *)key;
    info.parent = (char *)parent;
    info.kind = (Containerd__Services__Snapshots__V1__Kind)kind;
    info.labels = labels;
    info.n_labels = n_labels;
    *len = containerd__services__snapshots__v1__info__get_packed_size(&info);
    if (*len > RECORD_MAX)
        return s->api->error_make(err, BERTH_EINVAL, "snapshot %s: labels too large", key);
    containerd__services__snapshots__v1__info__pack(&info, buf);
    return 0;
}

static int
save_record(svc_t *s, const char *ns, const char *sn, const char *key, const char *parent, int kind,
            size_t n_labels, Containerd__Services__Snapshots__V1__Info__LabelsEntry **labels,
            int create, berth_error_t **err)
{
    uint8_t buf[RECORD_MAX];
    size_t len;
    if (encode_record(s, key, parent, kind, n_labels, labels, buf, &len, err) != 0)
        return BERTH_EINVAL;
    return create ? s->mdo->snapshot_create(s->md, ns, sn, buf, len, err)
                  : s->mdo->snapshot_update(s->md, ns, sn, buf, len, err);
}

/* A call made under a lease (the containerd-lease header) puts what it creates in that lease, as
 * containerd's metadata snapshotter does: an unpack's snapshots live as long as the client's lease. */
static int
join_lease(svc_t *s, const char *ns, const char *sn, const char *key, berth_error_t **err)
{
    const char *lease = s->api->call_lease();
    if (lease[0] == '\0')
        return 0;
    char type[300];
    snprintf(type, sizeof(type), "snapshots/%s", sn);
    return s->mdo->lease_add_resource(s->md, ns, lease, type, key, err);
}

static int
respond_mounts(const berth_mount_t *m, size_t n, uint8_t **resp, size_t *len)
{
    /* Prepare/View/MountsResponse are all {repeated Mount mounts = 1;} */
    Containerd__Types__Mount **pbs = calloc(n + 1, sizeof(*pbs));
    Containerd__Types__Mount *items = calloc(n + 1, sizeof(*items));
    for (size_t i = 0; i < n; i++) {
        containerd__types__mount__init(&items[i]);
        items[i].type = m[i].type;
        items[i].source = m[i].source;
        items[i].options = m[i].options;
        items[i].n_options = m[i].n_options;
        pbs[i] = &items[i];
    }
    Containerd__Services__Snapshots__V1__MountsResponse out =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__MOUNTS_RESPONSE__INIT;
    out.mounts = pbs;
    out.n_mounts = n;
    pack(&out.base, resp, len);
    free(items);
    free(pbs);
    return 0;
}

/* Prepare and View: the backend first, then the namespace's record; a failed record undoes the backend. */
static int
make_snapshot(svc_t *s, const char *ns,
              const Containerd__Services__Snapshots__V1__PrepareSnapshotRequest *r, int kind,
              uint8_t **resp, size_t *len, berth_error_t **err)
{
    const snapshotter_t *sn = pick(s, r->snapshotter, err);
    if (sn == NULL)
        return BERTH_ENOTFOUND;
    if (r->key[0] == '\0')
        return s->api->error_make(err, BERTH_EINVAL, "snapshot key must not be empty");
    if (r->parent[0]) {
        info_pb_t *p = record(s, ns, sn->name, r->parent, err);
        if (p == NULL)
            return err && *err ? (*err)->code : BERTH_ENOTFOUND;
        containerd__services__snapshots__v1__info__free_unpacked(p, NULL);
    }
    char key[2048], parent[2048];
    backend_key(key, sizeof(key), ns, r->key);
    backend_key(parent, sizeof(parent), ns, r->parent);
    berth_mount_t *m = NULL;
    size_t n = 0;
    int rc = kind == BERTH_SNAPSHOT_VIEW
                 ? sn->ops->view(sn->sn, key, r->parent[0] ? parent : "", &m, &n, err)
                 : sn->ops->prepare(sn->sn, key, r->parent[0] ? parent : "", &m, &n, err);
    if (rc != 0)
        return rc;
    /* the lease first: a collection between the two transactions must find the record rooted */
    rc = join_lease(s, ns, sn->name, r->key, err);
    if (rc == 0)
        rc = save_record(s, ns, sn->name, r->key, r->parent, kind, r->n_labels,
                         (Containerd__Services__Snapshots__V1__Info__LabelsEntry **)r->labels, 1,
                         err);
    if (rc != 0)
        sn->ops->remove(sn->sn, key, NULL);
    else
        respond_mounts(m, n, resp, len);
    sn->ops->mounts_free(m, n);
    return rc;
}

static int
prepare_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
             size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Containerd__Services__Snapshots__V1__PrepareSnapshotRequest *r =
        containerd__services__snapshots__v1__prepare_snapshot_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "PrepareSnapshotRequest", err);
    int rc = make_snapshot(s, ns, r, BERTH_SNAPSHOT_ACTIVE, resp, resp_len, err);
    containerd__services__snapshots__v1__prepare_snapshot_request__free_unpacked(r, NULL);
    return rc;
}

static int
view_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
          size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    /* ViewSnapshotRequest has PrepareSnapshotRequest's fields and numbers */
    Containerd__Services__Snapshots__V1__PrepareSnapshotRequest *r =
        containerd__services__snapshots__v1__prepare_snapshot_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "ViewSnapshotRequest", err);
    int rc = make_snapshot(s, ns, r, BERTH_SNAPSHOT_VIEW, resp, resp_len, err);
    containerd__services__snapshots__v1__prepare_snapshot_request__free_unpacked(r, NULL);
    return rc;
}

static int
mounts_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Containerd__Services__Snapshots__V1__MountsRequest *r =
        containerd__services__snapshots__v1__mounts_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "MountsRequest", err);
    const snapshotter_t *sn = pick(s, r->snapshotter, err);
    int rc = sn ? 0 : BERTH_ENOTFOUND;
    info_pb_t *info = rc == 0 ? record(s, ns, sn->name, r->key, err) : NULL;
    if (rc == 0 && info == NULL)
        rc = err && *err ? (*err)->code : BERTH_ENOTFOUND;
    if (rc == 0) {
        char key[2048];
        backend_key(key, sizeof(key), ns, r->key);
        berth_mount_t *m = NULL;
        size_t n = 0;
        rc = sn->ops->mounts(sn->sn, key, &m, &n, err);
        if (rc == 0) {
            respond_mounts(m, n, resp, resp_len);
            sn->ops->mounts_free(m, n);
        }
    }
    if (info)
        containerd__services__snapshots__v1__info__free_unpacked(info, NULL);
    containerd__services__snapshots__v1__mounts_request__free_unpacked(r, NULL);
    return rc;
}

static int
commit_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Containerd__Services__Snapshots__V1__CommitSnapshotRequest *r =
        containerd__services__snapshots__v1__commit_snapshot_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "CommitSnapshotRequest", err);
    const snapshotter_t *sn = pick(s, r->snapshotter, err);
    int rc = sn ? 0 : BERTH_ENOTFOUND;
    info_pb_t *info = rc == 0 ? record(s, ns, sn->name, r->key, err) : NULL;
    if (rc == 0 && info == NULL)
        rc = err && *err ? (*err)->code : BERTH_ENOTFOUND;
    if (rc == 0 && info->kind != CONTAINERD__SERVICES__SNAPSHOTS__V1__KIND__ACTIVE)
        rc = s->api->error_make(err, BERTH_EPRECONDITION, "snapshot %s is not active", r->key);
    char key[2048], name[2048];
    backend_key(key, sizeof(key), ns, r->key);
    backend_key(name, sizeof(name), ns, r->name);
    /* the records first, in one transaction; a backend that then fails gets them put back */
    uint8_t buf[RECORD_MAX];
    size_t blen = 0;
    if (rc == 0)
        rc = encode_record(s, r->name, info->parent, BERTH_SNAPSHOT_COMMITTED, r->n_labels,
                           (Containerd__Services__Snapshots__V1__Info__LabelsEntry **)r->labels,
                           buf, &blen, err);
    if (rc == 0) /* the lease first, as in Prepare */
        rc = join_lease(s, ns, sn->name, r->name, err);
    if (rc == 0)
        rc = s->mdo->snapshot_commit(s->md, ns, sn->name, r->key, buf, blen, err);
    if (rc == 0 && (rc = sn->ops->commit(sn->sn, name, key, err)) != 0) {
        blen = containerd__services__snapshots__v1__info__get_packed_size(info);
        if (blen <= sizeof(buf)) {
            containerd__services__snapshots__v1__info__pack(info, buf);
            s->mdo->snapshot_commit(s->md, ns, sn->name, r->name, buf, blen, NULL);
        }
    }
    if (info)
        containerd__services__snapshots__v1__info__free_unpacked(info, NULL);
    containerd__services__snapshots__v1__commit_snapshot_request__free_unpacked(r, NULL);
    *resp = NULL;
    *resp_len = 0;
    return rc;
}

static int
remove_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Containerd__Services__Snapshots__V1__RemoveSnapshotRequest *r =
        containerd__services__snapshots__v1__remove_snapshot_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "RemoveSnapshotRequest", err);
    const snapshotter_t *sn = pick(s, r->snapshotter, err);
    int rc = sn ? 0 : BERTH_ENOTFOUND;
    if (rc == 0)
        rc = s->mdo->snapshot_delete(s->md, ns, sn->name, r->key, err);
    if (rc == 0) {
        char key[2048];
        backend_key(key, sizeof(key), ns, r->key);
        sn->ops->remove(sn->sn, key, NULL); /* what is left behind, Cleanup takes */
    }
    containerd__services__snapshots__v1__remove_snapshot_request__free_unpacked(r, NULL);
    *resp = NULL;
    *resp_len = 0;
    return rc;
}

/* Stat and Update answer {Info info = 1;} with the record as stored. */
static int
respond_info(svc_t *s, const char *ns, const char *sn, const char *key, uint8_t **resp, size_t *len,
             berth_error_t **err)
{
    info_pb_t *info = record(s, ns, sn, key, err);
    if (info == NULL)
        return err && *err ? (*err)->code : BERTH_ENOTFOUND;
    Containerd__Services__Snapshots__V1__StatSnapshotResponse out =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__STAT_SNAPSHOT_RESPONSE__INIT;
    out.info = info;
    pack(&out.base, resp, len);
    containerd__services__snapshots__v1__info__free_unpacked(info, NULL);
    return 0;
}

static int
stat_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
          size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Containerd__Services__Snapshots__V1__StatSnapshotRequest *r =
        containerd__services__snapshots__v1__stat_snapshot_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "StatSnapshotRequest", err);
    const snapshotter_t *sn = pick(s, r->snapshotter, err);
    int rc = sn ? respond_info(s, ns, sn->name, r->key, resp, resp_len, err) : BERTH_ENOTFOUND;
    containerd__services__snapshots__v1__stat_snapshot_request__free_unpacked(r, NULL);
    return rc;
}

static int
update_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Containerd__Services__Snapshots__V1__UpdateSnapshotRequest *r =
        containerd__services__snapshots__v1__update_snapshot_request__unpack(NULL, len, req);
    if (r == NULL || r->info == NULL) {
        if (r)
            containerd__services__snapshots__v1__update_snapshot_request__free_unpacked(r, NULL);
        return bad(s, "UpdateSnapshotRequest", err);
    }
    const snapshotter_t *sn = pick(s, r->snapshotter, err);
    int rc = sn ? 0 : BERTH_ENOTFOUND;
    info_pb_t *have = rc == 0 ? record(s, ns, sn->name, r->info->name, err) : NULL;
    if (rc == 0 && have == NULL)
        rc = err && *err ? (*err)->code : BERTH_ENOTFOUND;
    berth_kv_t *labels = s->api->kv_new();
    for (size_t i = 0; rc == 0 && i < have->n_labels; i++)
        s->api->kv_set(labels, have->labels[i]->key, have->labels[i]->value);
    int replace = r->update_mask == NULL || r->update_mask->n_paths == 0;
    for (size_t i = 0; rc == 0 && !replace && i < r->update_mask->n_paths; i++) {
        const char *p = r->update_mask->paths[i];
        if (strcmp(p, "labels") == 0) {
            replace = 1;
        } else if (strncmp(p, "labels.", 7) == 0) {
            const char *v = NULL;
            for (size_t j = 0; j < r->info->n_labels; j++)
                if (strcmp(r->info->labels[j]->key, p + 7) == 0)
                    v = r->info->labels[j]->value;
            if (v && v[0])
                s->api->kv_set(labels, p + 7, v);
            else
                s->api->kv_unset(labels, p + 7);
        } else {
            rc = s->api->error_make(err, BERTH_EINVAL, "cannot update %s field on snapshot %s", p,
                                    r->info->name);
        }
    }
    if (rc == 0 && replace) {
        s->api->kv_free(labels);
        labels = s->api->kv_new();
        for (size_t i = 0; i < r->info->n_labels; i++)
            s->api->kv_set(labels, r->info->labels[i]->key, r->info->labels[i]->value);
    }
    if (rc == 0) {
        size_t n = s->api->kv_size(labels);
        Containerd__Services__Snapshots__V1__Info__LabelsEntry *items =
                                                                   calloc(n + 1, sizeof(*items)),
                                                               **ptrs =
                                                                   calloc(n + 1, sizeof(*ptrs));
        for (size_t i = 0; i < n; i++) {
            containerd__services__snapshots__v1__info__labels_entry__init(&items[i]);
            items[i].key = (char *)s->api->kv_key_at(labels, i);
            items[i].value = (char *)s->api->kv_value_at(labels, i);
            ptrs[i] = &items[i];
        }
        rc = save_record(s, ns, sn->name, have->name, have->parent, have->kind, n, ptrs, 0, err);
        free(items);
        free(ptrs);
    }
    if (rc == 0)
        rc = respond_info(s, ns, sn->name, r->info->name, resp, resp_len, err);
    s->api->kv_free(labels);
    if (have)
        containerd__services__snapshots__v1__info__free_unpacked(have, NULL);
    containerd__services__snapshots__v1__update_snapshot_request__free_unpacked(r, NULL);
    return rc;
}

static int
usage_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
           size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Containerd__Services__Snapshots__V1__UsageRequest *r =
        containerd__services__snapshots__v1__usage_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "UsageRequest", err);
    const snapshotter_t *sn = pick(s, r->snapshotter, err);
    int rc = sn ? 0 : BERTH_ENOTFOUND;
    info_pb_t *info = rc == 0 ? record(s, ns, sn->name, r->key, err) : NULL;
    if (rc == 0 && info == NULL)
        rc = err && *err ? (*err)->code : BERTH_ENOTFOUND;
    if (rc == 0) {
        char key[2048];
        backend_key(key, sizeof(key), ns, r->key);
        Containerd__Services__Snapshots__V1__UsageResponse out =
            CONTAINERD__SERVICES__SNAPSHOTS__V1__USAGE_RESPONSE__INIT;
        rc = sn->ops->usage(sn->sn, key, &out.size, &out.inodes, err);
        if (rc == 0)
            pack(&out.base, resp, resp_len);
    }
    if (info)
        containerd__services__snapshots__v1__info__free_unpacked(info, NULL);
    containerd__services__snapshots__v1__usage_request__free_unpacked(r, NULL);
    return rc;
}

static int
cleanup_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
             size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Containerd__Services__Snapshots__V1__CleanupRequest *r =
        containerd__services__snapshots__v1__cleanup_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "CleanupRequest", err);
    const snapshotter_t *sn = pick(s, r->snapshotter, err);
    int rc = sn ? sn->ops->cleanup(sn->sn, err) : BERTH_ENOTFOUND;
    containerd__services__snapshots__v1__cleanup_request__free_unpacked(r, NULL);
    *resp = NULL;
    *resp_len = 0;
    return rc;
}

/* ---- List: collected on the pool, sent from the loop ---------------------------------------------- */

typedef struct listing {
    uv_work_t work;
    svc_t *svc;
    const berth_grpc_stream_api_t *sapi;
    berth_grpc_stream_t *st;
    char ns[80];
    char sn[256];
    filters_t *filters;
    uint8_t **out;
    size_t *out_len, nout;
    info_pb_t **batch;
    size_t nbatch;
    int rc;
    berth_error_t *err;
    int closed;
} listing_t;

static const char *
info_field(void *object, const char *const *path, int npath)
{
    const info_pb_t *i = object;
    if (npath == 1 && strcmp(path[0], "name") == 0)
        return i->name;
    if (npath == 1 && strcmp(path[0], "parent") == 0)
        return i->parent;
    if (npath == 1 && strcmp(path[0], "kind") == 0)
        return i->kind == 1 ? "view" : i->kind == 2 ? "active" : i->kind == 3 ? "committed" : NULL;
    for (size_t k = 0; npath == 2 && strcmp(path[0], "labels") == 0 && k < i->n_labels; k++)
        if (strcmp(i->labels[k]->key, path[1]) == 0)
            return i->labels[k]->value;
    return NULL;
}

static void
flush_batch(listing_t *l)
{
    if (l->nbatch == 0)
        return;
    Containerd__Services__Snapshots__V1__ListSnapshotsResponse out =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__LIST_SNAPSHOTS_RESPONSE__INIT;
    out.info = l->batch;
    out.n_info = l->nbatch;
    l->out = realloc(l->out, (l->nout + 1) * sizeof(*l->out));
    l->out_len = realloc(l->out_len, (l->nout + 1) * sizeof(*l->out_len));
    pack(&out.base, &l->out[l->nout], &l->out_len[l->nout]);
    l->nout++;
    for (size_t i = 0; i < l->nbatch; i++)
        containerd__services__snapshots__v1__info__free_unpacked(l->batch[i], NULL);
    l->nbatch = 0;
}

static int
collect(void *user, const uint8_t *data, size_t len)
{
    listing_t *l = user;
    info_pb_t *info = containerd__services__snapshots__v1__info__unpack(NULL, len, data);
    if (info == NULL)
        return 0;
    if (!filters_match(l->filters, info_field, info)) {
        containerd__services__snapshots__v1__info__free_unpacked(info, NULL);
        return 0;
    }
    l->batch[l->nbatch++] = info;
    if (l->nbatch == 100)
        flush_batch(l);
    return 0;
}

static void
list_run(uv_work_t *req)
{
    listing_t *l = req->data;
    l->batch = calloc(100, sizeof(*l->batch));
    l->rc = l->svc->mdo->snapshot_list(l->svc->md, l->ns, l->sn, collect, l, &l->err);
    flush_batch(l);
    free(l->batch);
}

static void
listing_free(listing_t *l)
{
    for (size_t i = 0; i < l->nout; i++)
        free(l->out[i]);
    free(l->out);
    free(l->out_len);
    filters_free(l->filters);
    if (l->err)
        l->svc->api->error_free(l->err);
    free(l);
}

static void
list_done(uv_work_t *req, int status)
{
    listing_t *l = req->data;
    if (!l->closed) {
        l->sapi->set_user(l->st, NULL);
        for (size_t i = 0; l->rc == 0 && i < l->nout; i++)
            l->sapi->send(l->st, l->out[i], l->out_len[i]);
        l->sapi->finish(l->st, l->rc, l->err ? l->err->message : NULL);
    }
    listing_free(l);
}

static int
list_open(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st,
          const uint8_t *req, size_t len, berth_error_t **err)
{
    svc_t *s = instance;
    Containerd__Services__Snapshots__V1__ListSnapshotsRequest *r =
        containerd__services__snapshots__v1__list_snapshots_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "ListSnapshotsRequest", err);
    int rc = pick(s, r->snapshotter, err) ? 0 : BERTH_ENOTFOUND;
    listing_t *l = calloc(1, sizeof(*l));
    char msg[512];
    if (rc == 0 && filters_parse_n((const char *const *)r->filters, r->n_filters, &l->filters, msg,
                                   sizeof(msg)) < 0)
        rc = s->api->error_make(err, BERTH_EINVAL, "%s", msg);
    if (rc == 0) {
        l->svc = s;
        l->sapi = sapi;
        l->st = st;
        snprintf(l->ns, sizeof(l->ns), "%s", sapi->namespace_(st));
        snprintf(l->sn, sizeof(l->sn), "%s", r->snapshotter);
        l->work.data = l;
        sapi->set_user(st, l);
        uv_queue_work(s->loop, &l->work, list_run, list_done);
    } else {
        free(l);
    }
    containerd__services__snapshots__v1__list_snapshots_request__free_unpacked(r, NULL);
    return rc;
}

static void
list_closed(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st)
{
    listing_t *l = sapi->get_user(st);
    if (l)
        l->closed = 1; /* list_done frees it */
}

static const berth_grpc_method_t snapshots_methods[] = {
    NS_UNARY("Prepare", prepare_call),
    NS_UNARY("View", view_call),
    NS_UNARY("Mounts", mounts_call),
    NS_UNARY("Commit", commit_call),
    NS_UNARY("Remove", remove_call),
    NS_UNARY("Stat", stat_call),
    NS_UNARY("Update", update_call),
    {.name = "List",
     .kind = BERTH_RPC_SERVER_STREAM,
     .flags = BERTH_RPC_NAMESPACED,
     .open = list_open,
     .closed = list_closed},
    NS_UNARY("Usage", usage_call),
    NS_UNARY("Cleanup", cleanup_call),
};

static const berth_grpc_service_v1_t snapshots_service = {
    .struct_size = sizeof(berth_grpc_service_v1_t),
    .name = "containerd.services.snapshots.v1.Snapshots",
    .methods = snapshots_methods,
    .n_methods = sizeof(snapshots_methods) / sizeof(snapshots_methods[0]),
};

/* ---- the collector's sweeper: records gone, so the bytes go ------------------------------------------ */

static int
sweep_one(svc_t *s, const char *entry)
{
    const char *nl = strchr(entry, '\n');
    for (size_t i = 0; nl && i < s->nsns; i++)
        if (strlen(s->sns[i].name) == (size_t)(nl - entry) &&
            strncmp(s->sns[i].name, entry, (size_t)(nl - entry)) == 0)
            return s->sns[i].ops->remove(s->sns[i].sn, nl + 1, NULL);
    return 0; /* a snapshotter no longer loaded: nothing to remove */
}

/* A parent goes after its children: what could not go yet is retried each time something else went. */
static void
sweep_snapshot(void *user, const char *ns, const char *snapshotter, const char *key)
{
    svc_t *s = user;
    char *entry = NULL;
    if (asprintf(&entry, "%s\n%s/%s", snapshotter, ns, key) < 0)
        return;
    pthread_mutex_lock(&s->sweep_lock);
    int rc = sweep_one(s, entry);
    if (rc == BERTH_EPRECONDITION) {
        s->pending = realloc(s->pending, (s->n_pending + 1) * sizeof(char *));
        s->pending[s->n_pending++] = entry;
        entry = NULL;
    }
    for (int progress = rc != BERTH_EPRECONDITION; progress;) {
        progress = 0;
        for (size_t i = 0; i < s->n_pending; i++)
            if (sweep_one(s, s->pending[i]) != BERTH_EPRECONDITION) {
                free(s->pending[i]);
                s->pending[i--] = s->pending[--s->n_pending];
                progress = 1;
            }
    }
    pthread_mutex_unlock(&s->sweep_lock);
    free(entry);
}

static int
add_snapshotter(void *user, const berth_instance_t *inst)
{
    svc_t *s = user;
    s->sns = realloc(s->sns, (s->nsns + 1) * sizeof(*s->sns));
    s->sns[s->nsns++] = (snapshotter_t){strdup(inst->id), inst->instance, inst->ops};
    return 0;
}

static int
service_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    berth_instance_t md, gc;
    if (ic->api->get_single(ic, BERTH_METADATA_TYPE, &md, err) < 0 ||
        ic->api->get_single(ic, BERTH_GC_TYPE, &gc, err) < 0)
        return err && *err ? (*err)->code : BERTH_EUNKNOWN;
    svc_t *s = calloc(1, sizeof(*s));
    s->api = ic->api;
    s->loop = ic->loop;
    s->md = md.instance;
    s->mdo = md.ops;
    s->gc = gc.instance;
    s->gc_ops = gc.ops;
    pthread_mutex_init(&s->sweep_lock, NULL);
    ic->api->foreach (ic, BERTH_SNAPSHOTTER_TYPE, add_snapshotter, s);
    berth_gc_removed_t sweeper = {
        .struct_size = sizeof(sweeper), .user = s, .snapshot = sweep_snapshot};
    *instance = s;
    return s->gc_ops->add_sweeper(s->gc, &sweeper, err);
}

static void
service_fini(void *instance)
{
    svc_t *s = instance;
    s->gc_ops->remove_sweeper(s->gc, s);
    for (size_t i = 0; i < s->n_pending; i++)
        free(s->pending[i]);
    free(s->pending);
    pthread_mutex_destroy(&s->sweep_lock);
    for (size_t i = 0; i < s->nsns; i++)
        free(s->sns[i].name);
    free(s->sns);
    free(s);
}

/* the collector: snapshots whose records it removes are removed from their snapshotter through us */
static const char *const service_requires[] = {BERTH_METADATA_TYPE, BERTH_SNAPSHOTTER_TYPE,
                                               BERTH_GC_TYPE, NULL};

static const berth_plugin_reg_t service_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_GRPC_SERVICE_TYPE,
    .id = "snapshots",
    .requires = service_requires,
    .init = service_init,
    .fini = service_fini,
    .ops = &snapshots_service,
};

static const berth_plugin_reg_t *const snapshots_plugins[] = {&service_plugin, NULL};

BERTH_MODULE(snapshots, .version = "0.1.0", .license = "Apache-2.0", .origin = "berth",
             .description = "containerd's Snapshots service over the snapshotter modules",
             .plugins = snapshots_plugins)
