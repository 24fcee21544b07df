/* SPDX-License-Identifier: Apache-2.0 */
/*
 * containerd.services.snapshots.v1.Snapshots (io.containerd.grpc.v1.snapshots): what each namespace sees
 * (name, parent, kind, labels, times) kept as metadata snapshot records, as containerd's metadata
 * snapshotter wrapper does, each naming the id under which its snapshotter keeps the storage. The records
 * are the only table: a snapshotter gets id, kind and parent ids with each call (abi/berth/snapshot.h).
 * Storage is made before its record and removed after it; docs/snapshots.md has the whole story.
 */
#include <stddef.h>
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
#include "unknown.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb-c.h"

typedef Containerd__Services__Snapshots__V1__Info info_pb_t;
typedef Containerd__Services__Snapshots__V1__Info__LabelsEntry label_pb_t;

#define RECORD_MAX (64 * 1024)
/* The snapshotter's id of a snapshot rides in its stored record as this field, which containerd's Info
 * does not have (so it never reaches a client: strip_id). */
#define ID_FIELD 1000
/* Deeper parent chains than this are refused (a chain is walked record by record). */
#define CHAIN_MAX 4096

typedef struct snapshotter {
    char *name;
    void *sn;
    const berth_snapshotter_ops_t *ops;
} snapshotter_t;

typedef struct svc {
    const berth_core_api_t *api;
    const berth_logger_t *log;
    uv_loop_t *loop;
    void *md;
    const berth_metadata_v1_ops_t *mdo;
    snapshotter_t *sns;
    size_t nsns;
    void *gc;
    const berth_gc_v1_ops_t *gc_ops;
    /* held shared from a backend's create or commit until its record is written, exclusively by a sweep:
     * an id without a record is garbage only when no one is about to record it */
    pthread_rwlock_t building;
    uint64_t next_id; /* atomic */
    /* Remove's storage, removed by the reaper once the record's deletion is durable */
    pthread_t reaper;
    pthread_mutex_t reap_lock;
    pthread_cond_t reap_cond;
    struct doomed *doomed;
    size_t n_doomed;
    int stopping;
} svc_t;

typedef struct doomed {
    void *sn;
    const berth_snapshotter_ops_t *ops;
    uint64_t id;
} doomed_t;

static const snapshotter_t *
pick(svc_t *s, const char *name, berth_error_t **err)
{
    for (size_t i = 0; i < s->nsns; i++)
        if (strcmp(s->sns[i].name, name) == 0)
            return &s->sns[i];
    s->api->error_make(err, BERTH_ENOTFOUND, "snapshotter %s: not loaded", name);
    return NULL;
}

static int sweep(svc_t *s, const snapshotter_t *sn, berth_error_t **err);

static int
bad(svc_t *s, const char *what, berth_error_t **err)
{
    return s->api->error_make(err, BERTH_EINVAL, "request is not a valid %s", what);
}

static int
err_code(berth_error_t **err, int fallback)
{
    return err && *err ? (*err)->code : fallback;
}

/* ---- records: containerd's Info plus the snapshotter's id ---------------------------------------------- */

static size_t
put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    for (; v >= 0x80; v >>= 7)
        p[n++] = (uint8_t)(v | 0x80);
    p[n++] = (uint8_t)v;
    return n;
}

static uint64_t
record_id(const info_pb_t *info)
{
    for (size_t i = 0; i < info->base.n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *f = &info->base.unknown_fields[i];
        if (f->tag != ID_FIELD || f->wire_type != PROTOBUF_C_WIRE_TYPE_VARINT)
            continue;
        uint64_t v = 0;
        for (size_t j = 0; j < f->len && j < 10; j++)
            v |= (uint64_t)(f->data[j] & 0x7f) << (7 * j);
        return v;
    }
    return 0;
}

/* What a client sees of a record: containerd's Info without our field. */
static void
strip_id(info_pb_t *info)
{
    for (size_t i = 0; i < info->base.n_unknown_fields; i++)
        free(info->base.unknown_fields[i].data);
    free(info->base.unknown_fields);
    info->base.unknown_fields = NULL;
    info->base.n_unknown_fields = 0;
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

/* NotFound with containerd's words when the namespace holds no such snapshot. */
static info_pb_t *
existing(svc_t *s, const char *ns, const char *sn, const char *key, berth_error_t **err)
{
    berth_error_t *miss = NULL;
    info_pb_t *info = record(s, ns, sn, key, &miss);
    if (info == NULL && miss && miss->code == BERTH_ENOTFOUND)
        s->api->error_make(err, BERTH_ENOTFOUND, "snapshot %s does not exist: not found", key);
    else if (info == NULL && err && miss)
        *err = miss, miss = NULL;
    if (miss)
        s->api->error_free(miss);
    return info;
}

static int
encode_record(svc_t *s, const char *key, const char *parent, int kind, size_t n_labels,
              label_pb_t **labels, uint64_t id, uint8_t *buf, size_t *len, berth_error_t **err)
{
    info_pb_t info = CONTAINERD__SERVICES__SNAPSHOTS__V1__INFO__INIT;
    info.name = (char *)key;
    info.parent = (char *)parent;
    info.kind = (Containerd__Services__Snapshots__V1__Kind)kind;
    info.labels = labels;
    info.n_labels = n_labels;
    *len = containerd__services__snapshots__v1__info__get_packed_size(&info);
    if (*len + 16 > RECORD_MAX)
        return s->api->error_make(err, BERTH_EINVAL, "snapshot %s: labels too large", key);
    containerd__services__snapshots__v1__info__pack(&info, buf);
    *len += put_varint(buf + *len, (uint64_t)ID_FIELD << 3 | PROTOBUF_C_WIRE_TYPE_VARINT);
    *len += put_varint(buf + *len, id);
    return 0;
}

/* A snapshot as its snapshotter needs it: id, kind, and the ids of its parents (free ref->parents). */
static int
ref_of(svc_t *s, const char *ns, const char *sn, const info_pb_t *info, berth_snapshot_ref_t *ref,
       berth_error_t **err)
{
    uint64_t *ids = NULL;
    size_t n = 0;
    char *parent = strdup(info->parent);
    int rc = 0;
    while (rc == 0 && parent[0]) {
        info_pb_t *p = record(s, ns, sn, parent, err);
        if (p == NULL || n == CHAIN_MAX || (n % 64 == 0 && !(ids = realloc(ids, (n + 64) * 8))))
            rc = p == NULL ? err_code(err, BERTH_ENOTFOUND)
                           : s->api->error_make(err, BERTH_EINVAL, "snapshot %s: chain too deep",
                                                info->name);
        if (rc == 0) {
            ids[n++] = record_id(p);
            free(parent);
            parent = strdup(p->parent);
        }
        if (p)
            containerd__services__snapshots__v1__info__free_unpacked(p, NULL);
    }
    free(parent);
    *ref = (berth_snapshot_ref_t){record_id(info), (berth_snapshot_kind_t)info->kind, ids, n};
    if (rc != 0)
        free(ids);
    return rc;
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

static int
mounts_of(const snapshotter_t *sn, const berth_snapshot_ref_t *ref, uint8_t **resp, size_t *len,
          berth_error_t **err)
{
    berth_mount_t *m = NULL;
    size_t n = 0;
    int rc = sn->ops->mounts(sn->sn, ref, &m, &n, err);
    if (rc == 0)
        respond_mounts(m, n, resp, len);
    sn->ops->mounts_free(m, n);
    return rc;
}

/* The parent a new snapshot goes on: committed, with its chain. */
static int
parent_ref(svc_t *s, const char *ns, const char *sn, const char *parent, berth_snapshot_ref_t *ref,
           berth_error_t **err)
{
    *ref = (berth_snapshot_ref_t){0};
    if (parent[0] == '\0')
        return 0;
    berth_error_t *miss = NULL;
    info_pb_t *p = record(s, ns, sn, parent, &miss);
    int rc = 0;
    if (p == NULL && miss && miss->code == BERTH_ENOTFOUND)
        rc = s->api->error_make(err, BERTH_ENOTFOUND,
                                "parent snapshot %s does not exist: not found", parent);
    else if (p == NULL)
        rc = s->api->error_make(err, miss ? miss->code : BERTH_EUNKNOWN, "parent snapshot %s: %s",
                                parent, miss ? miss->message : "unreadable");
    else if (p->kind != CONTAINERD__SERVICES__SNAPSHOTS__V1__KIND__COMMITTED)
        rc = s->api->error_make(err, BERTH_EINVAL,
                                "parent %s is not a committed snapshot: invalid argument", parent);
    else
        rc = ref_of(s, ns, sn, p, ref, err);
    if (miss)
        s->api->error_free(miss);
    if (p)
        containerd__services__snapshots__v1__info__free_unpacked(p, NULL);
    return rc;
}

/* Prepare and View: the snapshotter makes the snapshot under a fresh id, then one transaction writes the
 * record (with the id) and its lease membership. A crash between the two leaves an id without a record:
 * garbage the next sweep takes. */
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
    info_pb_t *have = record(s, ns, sn->name, r->key, NULL);
    if (have) {
        containerd__services__snapshots__v1__info__free_unpacked(have, NULL);
        return s->api->error_make(err, BERTH_EEXIST, "snapshot %s: already exists", r->key);
    }
    berth_snapshot_ref_t p;
    int rc = parent_ref(s, ns, sn->name, r->parent, &p, err);
    if (rc != 0)
        return rc;
    uint64_t *chain = malloc((p.n_parents + 1) * sizeof(uint64_t));
    chain[0] = p.id;
    if (p.n_parents)
        memcpy(chain + 1, p.parents, p.n_parents * sizeof(uint64_t));
    free((void *)p.parents);
    berth_snapshot_ref_t ref = {__atomic_fetch_add(&s->next_id, 1, __ATOMIC_RELAXED),
                                (berth_snapshot_kind_t)kind, chain,
                                r->parent[0] ? p.n_parents + 1 : 0};
    uint8_t buf[RECORD_MAX];
    size_t blen;
    rc = encode_record(s, r->key, r->parent, kind, r->n_labels, (label_pb_t **)r->labels, ref.id,
                       buf, &blen, err);
    if (rc == 0) {
        pthread_rwlock_rdlock(&s->building);
        rc = sn->ops->create(sn->sn, &ref, err);
        /* deferred: losing this record to a system crash loses nothing but the garbage it names */
        if (rc == 0 &&
            (rc = s->mdo->snapshot_store(s->md, ns, sn->name, NULL, buf, blen, s->api->call_lease(),
                                         BERTH_METADATA_DEFERRED, err)) != 0)
            sn->ops->remove(sn->sn, ref.id, NULL);
        pthread_rwlock_unlock(&s->building);
    }
    if (rc == 0)
        rc = mounts_of(sn, &ref, resp, len, err);
    free(chain);
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
    info_pb_t *info = rc == 0 ? existing(s, ns, sn->name, r->key, err) : NULL;
    if (rc == 0 && info == NULL)
        rc = err_code(err, BERTH_ENOTFOUND);
    if (rc == 0 && info->kind == CONTAINERD__SERVICES__SNAPSHOTS__V1__KIND__COMMITTED)
        rc = s->api->error_make(err, BERTH_EPRECONDITION,
                                "snapshot %s is committed: not active or view: failed precondition",
                                r->key);
    berth_snapshot_ref_t ref = {0};
    if (rc == 0 && (rc = ref_of(s, ns, sn->name, info, &ref, err)) == 0)
        rc = mounts_of(sn, &ref, resp, resp_len, err);
    free((void *)ref.parents);
    if (info)
        containerd__services__snapshots__v1__info__free_unpacked(info, NULL);
    containerd__services__snapshots__v1__mounts_request__free_unpacked(r, NULL);
    return rc;
}

/* The snapshotter commits (in place, or into a fresh id), then one transaction replaces the active record
 * by the committed one naming that id; the id the record no longer names goes last. */
static int
commit_snapshot(svc_t *s, const char *ns, const snapshotter_t *sn,
                const Containerd__Services__Snapshots__V1__CommitSnapshotRequest *r,
                const info_pb_t *info, berth_error_t **err)
{
    if (info->kind != CONTAINERD__SERVICES__SNAPSHOTS__V1__KIND__ACTIVE)
        return s->api->error_make(err, BERTH_EPRECONDITION,
                                  "snapshot %s is not active: failed precondition", r->key);
    info_pb_t *taken = record(s, ns, sn->name, r->name, NULL);
    if (taken) {
        containerd__services__snapshots__v1__info__free_unpacked(taken, NULL);
        return s->api->error_make(err, BERTH_EEXIST, "snapshot %s: already exists", r->name);
    }
    berth_snapshot_ref_t ref;
    int rc = ref_of(s, ns, sn->name, info, &ref, err);
    if (rc != 0)
        return rc;
    uint64_t committed = 0, fresh = __atomic_fetch_add(&s->next_id, 1, __ATOMIC_RELAXED);
    uint8_t buf[RECORD_MAX];
    size_t blen;
    pthread_rwlock_rdlock(&s->building);
    rc = sn->ops->commit(sn->sn, &ref, fresh, &committed, err);
    if (rc == 0)
        rc = encode_record(s, r->name, info->parent, BERTH_SNAPSHOT_COMMITTED, r->n_labels,
                           (label_pb_t **)r->labels, committed, buf, &blen, err);
    if (rc == 0)
        /* deferred when in place: undone, the active record still names whole storage; not when an
         * id is removed next, which the record must no longer name */
        rc = s->mdo->snapshot_store(s->md, ns, sn->name, r->key, buf, blen, s->api->call_lease(),
                                    committed == ref.id ? BERTH_METADATA_DEFERRED : 0, err);
    if (committed && committed != ref.id)
        sn->ops->remove(sn->sn, rc == 0 ? ref.id : committed, NULL);
    pthread_rwlock_unlock(&s->building);
    free((void *)ref.parents);
    return rc;
}

/* containerd 2.x's CommitSnapshotRequest.parent (5): a snapshot prepared without a parent is rebased onto
 * it at commit, for snapshotters advertising the "rebase" capability. berth's snapshotters do not (and
 * introspection says so), so that is Unimplemented; the parent the active snapshot already has is accepted,
 * another one refused as containerd's snapshot storage words it. */
static int
check_rebase(svc_t *s, const Containerd__Services__Snapshots__V1__CommitSnapshotRequest *r,
             const info_pb_t *info, berth_error_t **err)
{
    const uint8_t *p;
    size_t n;
    int has = unknown_bytes(&r->base, 5, &p, &n);
    if (has < 0)
        return bad(s, "CommitSnapshotRequest", err);
    if (has == 0 || n == 0 || (strlen(info->parent) == n && memcmp(info->parent, p, n) == 0))
        return 0;
    if (info->parent[0] == '\0')
        return s->api->error_make(err, BERTH_ENOTIMPL,
                                  "snapshot %s: rebase onto parent %.*s on commit: the snapshotter "
                                  "cannot rebase: not implemented",
                                  r->key, (int)(n > 200 ? 200 : n), (const char *)p);
    return s->api->error_make(err, BERTH_EINVAL,
                              "cannot change parent of active snapshot \"%s\" on commit: invalid "
                              "argument",
                              r->key);
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
    info_pb_t *info = rc == 0 ? existing(s, ns, sn->name, r->key, err) : NULL;
    if (rc == 0 && info == NULL)
        rc = err_code(err, BERTH_ENOTFOUND);
    if (rc == 0)
        rc = check_rebase(s, r, info, err);
    if (rc == 0)
        rc = commit_snapshot(s, ns, sn, r, info, err);
    if (info)
        containerd__services__snapshots__v1__info__free_unpacked(info, NULL);
    containerd__services__snapshots__v1__commit_snapshot_request__free_unpacked(r, NULL);
    *resp = NULL;
    *resp_len = 0;
    return rc;
}

/* ---- Remove: the record first, the storage once the record's deletion is durable --------------------- */

/* Waits for removed records' storage, makes their deletions durable (one flush for all, often merged by the
 * disk with the next request's), then removes the storage. Whatever a crash leaves, a sweep takes. */
static void *
reap(void *arg)
{
    svc_t *s = arg;
    pthread_mutex_lock(&s->reap_lock);
    for (;;) {
        while (s->n_doomed == 0 && !s->stopping)
            pthread_cond_wait(&s->reap_cond, &s->reap_lock);
        if (s->n_doomed == 0)
            break;
        doomed_t *batch = s->doomed;
        size_t n = s->n_doomed;
        s->doomed = NULL;
        s->n_doomed = 0;
        pthread_mutex_unlock(&s->reap_lock);
        if (s->mdo->sync(s->md, NULL) == 0)
            for (size_t i = 0; i < n; i++)
                batch[i].ops->remove(batch[i].sn, batch[i].id, NULL);
        free(batch);
        pthread_mutex_lock(&s->reap_lock);
    }
    pthread_mutex_unlock(&s->reap_lock);
    return NULL;
}

static void
reap_later(svc_t *s, const snapshotter_t *sn, uint64_t id)
{
    pthread_mutex_lock(&s->reap_lock);
    doomed_t *grown = realloc(s->doomed, (s->n_doomed + 1) * sizeof(*grown));
    if (grown) { /* else the storage stays for the next sweep */
        s->doomed = grown;
        s->doomed[s->n_doomed++] = (doomed_t){sn->sn, sn->ops, id};
        pthread_cond_signal(&s->reap_cond);
    }
    pthread_mutex_unlock(&s->reap_lock);
}

/* The record first (one transaction, which refuses a parent, with deferred durability), the storage when
 * the reaper has made the deletion durable. A client's Remove costs one disk flush. */
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
    info_pb_t *info = rc == 0 ? existing(s, ns, sn->name, r->key, err) : NULL;
    if (rc == 0 && info == NULL)
        rc = err_code(err, BERTH_ENOTFOUND);
    if (rc == 0)
        rc = s->mdo->snapshot_remove(s->md, ns, sn->name, r->key, BERTH_METADATA_DEFERRED, err);
    if (rc == 0)
        reap_later(s, sn, record_id(info));
    if (info)
        containerd__services__snapshots__v1__info__free_unpacked(info, NULL);
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
    info_pb_t *info = existing(s, ns, sn, key, err);
    if (info == NULL)
        return err_code(err, BERTH_ENOTFOUND);
    strip_id(info);
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
    info_pb_t *have = rc == 0 ? existing(s, ns, sn->name, r->info->name, err) : NULL;
    if (rc == 0 && have == NULL)
        rc = err_code(err, BERTH_ENOTFOUND);
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
        uint8_t buf[RECORD_MAX];
        size_t blen;
        rc = encode_record(s, have->name, have->parent, have->kind, n, ptrs, record_id(have), buf,
                           &blen, err);
        if (rc == 0)
            rc = s->mdo->snapshot_update(s->md, ns, sn->name, buf, blen, err);
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
    info_pb_t *info = rc == 0 ? existing(s, ns, sn->name, r->key, err) : NULL;
    if (rc == 0 && info == NULL)
        rc = err_code(err, BERTH_ENOTFOUND);
    if (rc == 0) {
        Containerd__Services__Snapshots__V1__UsageResponse out =
            CONTAINERD__SERVICES__SNAPSHOTS__V1__USAGE_RESPONSE__INIT;
        rc = sn->ops->usage(sn->sn, record_id(info), &out.size, &out.inodes, err);
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
    int rc = sn ? sweep(s, sn, err) : BERTH_ENOTFOUND;
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
    strip_id(info);
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

/* ---- ids against records: garbage, and records that lost their storage ------------------------------ */

typedef struct ids {
    uint64_t *v;
    size_t n;
} ids_t;

static int
add_id(void *user, uint64_t id)
{
    ids_t *ids = user;
    if ((ids->n & (ids->n - 1)) == 0)
        ids->v = realloc(ids->v, (ids->n ? ids->n * 2 : 1) * sizeof(uint64_t));
    ids->v[ids->n++] = id;
    return 0;
}

static int
cmp_id(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int
has_id(const ids_t *ids, uint64_t id)
{
    return ids->n && bsearch(&id, ids->v, ids->n, sizeof(uint64_t), cmp_id) != NULL;
}

/* One snapshotter's records in every namespace. */
typedef struct rec {
    char *ns, *key, *parent;
    uint64_t id;
    int gone, orphan; /* gone: 1 to remove, 2 removed; orphan: its own storage is there */
} rec_t;

typedef struct recs {
    svc_t *svc;
    const char *sn, *ns;
    rec_t *v;
    size_t n;
} recs_t;

static int
add_rec(void *user, const uint8_t *data, size_t len)
{
    recs_t *r = user;
    info_pb_t *info = containerd__services__snapshots__v1__info__unpack(NULL, len, data);
    if (info == NULL)
        return 0;
    r->v = realloc(r->v, (r->n + 1) * sizeof(*r->v));
    r->v[r->n++] =
        (rec_t){strdup(r->ns), strdup(info->name), strdup(info->parent), record_id(info), 0, 0};
    containerd__services__snapshots__v1__info__free_unpacked(info, NULL);
    return 0;
}

static int
add_ns_recs(void *user, const char *ns, const berth_kv_t *labels)
{
    recs_t *r = user;
    (void)labels;
    r->ns = ns;
    return r->svc->mdo->snapshot_list(r->svc->md, ns, r->sn, add_rec, r, NULL) < 0 ? -1 : 0;
}

static int
load_recs(svc_t *s, const char *sn, recs_t *r, berth_error_t **err)
{
    *r = (recs_t){.svc = s, .sn = sn};
    return s->mdo->namespace_list(s->md, add_ns_recs, r, err);
}

static void
recs_free(recs_t *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].ns);
        free(r->v[i].key);
        free(r->v[i].parent);
    }
    free(r->v);
}

/* Removes every id no record names. Exclusive of creates and commits, whose ids have no record yet. */
static int
sweep(svc_t *s, const snapshotter_t *sn, berth_error_t **err)
{
    pthread_rwlock_wrlock(&s->building);
    recs_t r;
    ids_t held = {0}, named = {0};
    int rc = load_recs(s, sn->name, &r, err);
    if (rc == 0)
        rc = sn->ops->list(sn->sn, add_id, &held, err);
    for (size_t i = 0; rc == 0 && i < r.n; i++)
        add_id(&named, r.v[i].id);
    /* a deletion the records already miss may still be undone by a system crash until this returns */
    if (rc == 0)
        rc = s->mdo->sync(s->md, err);
    if (named.n)
        qsort(named.v, named.n, sizeof(uint64_t), cmp_id);
    for (size_t i = 0; rc == 0 && i < held.n; i++)
        if (!has_id(&named, held.v[i]))
            sn->ops->remove(sn->sn, held.v[i], NULL);
    pthread_rwlock_unlock(&s->building);
    recs_free(&r);
    free(held.v);
    free(named.v);
    return rc;
}

/* The collector removed records: their storage goes. */
static void
sweep_snapshot(void *user, const char *ns, const char *snapshotter, const char *key)
{
    svc_t *s = user;
    (void)ns;
    (void)key;
    berth_error_t *err = NULL;
    const snapshotter_t *sn = pick(s, snapshotter, NULL);
    if (sn && sweep(s, sn, &err) < 0) {
        s->api->log(s->log, BERTH_LOG_WARN, "sweep snapshotter %s: %s", snapshotter,
                    err ? err->message : "");
        s->api->error_free(err);
    }
}

/* Marks the records whose storage is missing, and their descendants; returns how many. */
static size_t
mark_lost(recs_t *r, const ids_t *held)
{
    size_t lost = 0;
    for (int more = 1; more;) {
        more = 0;
        for (size_t i = 0; i < r->n; i++) {
            rec_t *x = &r->v[i];
            int gone = x->id == 0 || !has_id(held, x->id), orphan = 0;
            for (size_t j = 0; !gone && x->parent[0] && j < r->n; j++)
                gone = orphan = r->v[j].gone && strcmp(r->v[j].ns, x->ns) == 0 &&
                                strcmp(r->v[j].key, x->parent) == 0;
            if (gone && !x->gone) {
                x->gone = more = 1;
                x->orphan = orphan;
                lost++;
            }
        }
    }
    return lost;
}

/* Start-up: a record whose storage is missing (a crash of an older berthd, or storage removed by hand)
 * would fail every request that reaches it, so it goes, children first, with a warning; then the ids no
 * record names (garbage) go, and ids continue after the highest seen. */
static int
reconcile(svc_t *s, const snapshotter_t *sn, berth_error_t **err)
{
    recs_t r;
    ids_t held = {0};
    int rc = load_recs(s, sn->name, &r, err);
    if (rc == 0)
        rc = sn->ops->list(sn->sn, add_id, &held, err);
    if (held.n)
        qsort(held.v, held.n, sizeof(uint64_t), cmp_id);
    size_t lost = rc == 0 ? mark_lost(&r, &held) : 0;
    for (size_t pass = 0; lost && pass <= r.n; pass++)
        for (size_t i = 0; i < r.n; i++) {
            rec_t *x = &r.v[i];
            if (x->gone != 1 || s->mdo->snapshot_delete(s->md, x->ns, sn->name, x->key, NULL) != 0)
                continue;
            s->api->log(s->log, BERTH_LOG_WARN,
                        "snapshot %s in namespace %s (%s, id %llu): %s missing, record removed",
                        x->key, x->ns, sn->name, (unsigned long long)x->id,
                        x->orphan ? "a parent's storage" : "storage");
            x->gone = 2;
        }
    for (size_t i = 0; i < held.n; i++)
        if (held.v[i] >= s->next_id)
            s->next_id = held.v[i] + 1;
    for (size_t i = 0; i < r.n; i++)
        if (r.v[i].id >= s->next_id)
            s->next_id = r.v[i].id + 1;
    recs_free(&r);
    free(held.v);
    return rc == 0 ? sweep(s, sn, err) : rc;
}

static int
add_snapshotter(void *user, const berth_instance_t *inst)
{
    svc_t *s = user;
    const berth_snapshotter_ops_t *ops = inst->ops;
    if (ops->struct_size < sizeof(*ops) || ops->version != BERTH_SNAPSHOTTER_OPS_VERSION) {
        s->api->log(s->log, BERTH_LOG_WARN, "snapshotter %s: ops version %u, not %u: not used",
                    inst->id, (unsigned)ops->version, (unsigned)BERTH_SNAPSHOTTER_OPS_VERSION);
        return 0;
    }
    snapshotter_t sn = {strdup(inst->id), inst->instance, ops};
    berth_error_t *err = NULL;
    if (reconcile(s, &sn, &err) < 0) {
        s->api->log(s->log, BERTH_LOG_WARN, "snapshotter %s: start-up check: %s", inst->id,
                    err ? err->message : "");
        s->api->error_free(err);
    }
    s->sns = realloc(s->sns, (s->nsns + 1) * sizeof(*s->sns));
    s->sns[s->nsns++] = sn;
    return 0;
}

static int
service_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    berth_instance_t md, gc;
    if (ic->api->get_single(ic, BERTH_METADATA_TYPE, &md, err) < 0 ||
        ic->api->get_single(ic, BERTH_GC_TYPE, &gc, err) < 0)
        return err && *err ? (*err)->code : BERTH_EUNKNOWN;
    const berth_metadata_v1_ops_t *mdo = md.ops;
    if (mdo->struct_size < offsetof(berth_metadata_v1_ops_t, sync) + sizeof(void *))
        return ic->api->error_make(err, BERTH_EPRECONDITION,
                                   "metadata store has no snapshot_store or sync: too old");
    svc_t *s = calloc(1, sizeof(*s));
    s->api = ic->api;
    s->log = ic->log;
    s->loop = ic->loop;
    s->md = md.instance;
    s->mdo = mdo;
    s->gc = gc.instance;
    s->gc_ops = gc.ops;
    s->next_id = 1;
    pthread_rwlock_init(&s->building, NULL);
    pthread_mutex_init(&s->reap_lock, NULL);
    pthread_cond_init(&s->reap_cond, NULL);
    if (pthread_create(&s->reaper, NULL, reap, s) != 0) {
        free(s);
        return ic->api->error_make(err, BERTH_EINTERNAL, "snapshots: cannot start the reaper");
    }
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
    pthread_mutex_lock(&s->reap_lock);
    s->stopping = 1;
    pthread_cond_signal(&s->reap_cond);
    pthread_mutex_unlock(&s->reap_lock);
    pthread_join(s->reaper, NULL);
    pthread_cond_destroy(&s->reap_cond);
    pthread_mutex_destroy(&s->reap_lock);
    pthread_rwlock_destroy(&s->building);
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
    .flags = BERTH_PLUGIN_ON_DEMAND,
};

static const berth_plugin_reg_t *const snapshots_plugins[] = {&service_plugin, NULL};

BERTH_MODULE(snapshots, .version = "0.1.0", .license = "Apache-2.0", .origin = "berth",
             .description = "containerd's Snapshots service over the snapshotter modules",
             .plugins = snapshots_plugins)
