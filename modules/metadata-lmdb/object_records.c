/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Images ("i\0<ns>\0<name>") and containers ("c\0<ns>\0<id>"), stored as the containerd messages their
 * services speak. The store validates them as containerd's metadata package does and stamps the times.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.pb-c.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb-c.h"
#include "records.h"
#include "clock.h"

typedef Containerd__Services__Images__V1__Image image_pb_t;
typedef Containerd__Services__Containers__V1__Container container_pb_t;

/* Sets *slot to t, reusing the unpacked Timestamp or allocating one free_unpacked will free. */
static void
stamp(Google__Protobuf__Timestamp **slot, int64_t t)
{
    if (*slot == NULL) {
        *slot = malloc(sizeof(**slot));
        google__protobuf__timestamp__init(*slot);
    }
    (*slot)->seconds = t / 1000000000;
    (*slot)->nanos = (int32_t)(t % 1000000000);
}

static int
labels_ok(md_t *md, md_map_entry_t **e, size_t n, const char *what, berth_error_t **err)
{
    berth_kv_t *kv = md->api->kv_new();
    md_entries_to_kv(md, e, n, kv);
    int rc = md_check_labels(md, kv, what, err);
    md->api->kv_free(kv);
    return rc;
}

static int
digest_ok(const char *d)
{
    if (strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71)
        return 0;
    for (const char *p = d + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

/* containerd's validateImage */
static int
image_check(md_t *md, const image_pb_t *img, berth_error_t **err)
{
    if (img->name[0] == '\0')
        return md->api->error_make(err, BERTH_EINVAL, "image name must not be empty");
    if (labels_ok(md, (md_map_entry_t **)img->labels, img->n_labels, "image.Labels", err) < 0)
        return BERTH_EINVAL;
    if (img->target == NULL || !digest_ok(img->target->digest))
        return md->api->error_make(err, BERTH_EINVAL, "image.Target.Digest %s: invalid",
                                   img->target ? img->target->digest : "(none)");
    if (img->target->media_type[0] == '\0')
        return md->api->error_make(err, BERTH_EINVAL, "image.Target.MediaType must be set");
    return 0;
}

/* containerd's validateContainer */
static int
container_check(md_t *md, const container_pb_t *c, berth_error_t **err)
{
    if (!identifier_valid(c->id))
        return md->api->error_make(err, BERTH_EINVAL,
                                   "container.ID: identifier \"%s\" must match %s", c->id,
                                   IDENTIFIER_PATTERN);
    if (labels_ok(md, (md_map_entry_t **)c->labels, c->n_labels, "containers.Labels", err) < 0)
        return BERTH_EINVAL;
    if (c->runtime == NULL || c->runtime->name[0] == '\0')
        return md->api->error_make(err, BERTH_EINVAL, "container.Runtime.Name must be set");
    if (c->spec == NULL)
        return md->api->error_make(err, BERTH_EINVAL, "container.Spec must be set");
    if (c->snapshot_key[0] && c->snapshotter[0] == '\0')
        return md->api->error_make(
            err, BERTH_EINVAL, "container.Snapshotter must be set if container.SnapshotKey is set");
    return 0;
}

typedef struct kind {
    char key;
    const char *noun;
    const ProtobufCMessageDescriptor *desc;
    const char *(*name)(const ProtobufCMessage *m);
    int (*check)(md_t *md, const ProtobufCMessage *m, berth_error_t **err);
    Google__Protobuf__Timestamp **(*created)(ProtobufCMessage *m);
    Google__Protobuf__Timestamp **(*updated)(ProtobufCMessage *m);
} kind_t;

static const char *
image_name(const ProtobufCMessage *m)
{
    return ((const image_pb_t *)m)->name;
}
static int
image_check_m(md_t *md, const ProtobufCMessage *m, berth_error_t **err)
{
    return image_check(md, (const image_pb_t *)m, err);
}
static Google__Protobuf__Timestamp **
image_created(ProtobufCMessage *m)
{
    return &((image_pb_t *)m)->created_at;
}
static Google__Protobuf__Timestamp **
image_updated(ProtobufCMessage *m)
{
    return &((image_pb_t *)m)->updated_at;
}
static const char *
container_id(const ProtobufCMessage *m)
{
    return ((const container_pb_t *)m)->id;
}
static int
container_check_m(md_t *md, const ProtobufCMessage *m, berth_error_t **err)
{
    return container_check(md, (const container_pb_t *)m, err);
}
static Google__Protobuf__Timestamp **
container_created(ProtobufCMessage *m)
{
    return &((container_pb_t *)m)->created_at;
}
static Google__Protobuf__Timestamp **
container_updated(ProtobufCMessage *m)
{
    return &((container_pb_t *)m)->updated_at;
}

typedef Containerd__Services__Snapshots__V1__Info snapshot_pb_t;

static const char *
snapshot_name(const ProtobufCMessage *m)
{
    return ((const snapshot_pb_t *)m)->name;
}
static int
snapshot_check_m(md_t *md, const ProtobufCMessage *m, berth_error_t **err)
{
    const snapshot_pb_t *sn = (const snapshot_pb_t *)m;
    if (sn->name[0] == '\0')
        return md->api->error_make(err, BERTH_EINVAL, "snapshot key must not be empty");
    return labels_ok(md, (md_map_entry_t **)sn->labels, sn->n_labels, "snapshot labels", err) < 0
               ? BERTH_EINVAL
               : 0;
}
static Google__Protobuf__Timestamp **
snapshot_created(ProtobufCMessage *m)
{
    return &((snapshot_pb_t *)m)->created_at;
}
static Google__Protobuf__Timestamp **
snapshot_updated(ProtobufCMessage *m)
{
    return &((snapshot_pb_t *)m)->updated_at;
}

static const kind_t images = {
    'i',          "image",       &containerd__services__images__v1__image__descriptor,
    image_name,   image_check_m, image_created,
    image_updated};
static const kind_t containers = {'c',
                                  "container",
                                  &containerd__services__containers__v1__container__descriptor,
                                  container_id,
                                  container_check_m,
                                  container_created,
                                  container_updated};
static const kind_t snapshots = {'s',
                                 "snapshot",
                                 &containerd__services__snapshots__v1__info__descriptor,
                                 snapshot_name,
                                 snapshot_check_m,
                                 snapshot_created,
                                 snapshot_updated};

/* The record key: "<kind>\0<ns>\0<name>", or with a snapshotter "s\0<ns>\0<snapshotter>\0<key>". */
static int
object_key(md_key_t *key, const kind_t *k, const char *ns, const char *sub, const char *name)
{
    return sub ? md_key(key, k->key, ns, sub, name, NULL) : md_key(key, k->key, ns, name, NULL);
}

static int
delete_in(md_t *md, MDB_txn *txn, const kind_t *k, const char *ns, const char *sub,
          const char *name, berth_error_t **err)
{
    md_key_t key;
    if (object_key(&key, k, ns, sub, name) < 0)
        return md->api->error_make(err, BERTH_EINVAL, "%s name too long", k->noun);
    MDB_val kv = {key.len, key.data};
    int rc = mdb_del(txn, md->dbi, &kv, NULL);
    if (rc == MDB_NOTFOUND)
        return md->api->error_make(err, BERTH_ENOTFOUND, "%s \"%s\": not found", k->noun, name);
    if (rc != 0)
        return md_fail(md, rc, "delete", err);
    MD_MARK_DIRTY(md);
    return 0;
}

/* What else a store does in its transaction (a snapshot's parent check and lease membership). */
typedef struct store_extra {
    int (*run)(md_t *md, MDB_txn *txn, const char *ns, const ProtobufCMessage *m, void *user,
               berth_error_t **err);
    void *user;
    int deferred; /* md_commit_deferred */
} store_extra_t;

/* Stores the record; `replaces` (may be NULL) names a record of the same kind that the same transaction
 * deletes (a snapshot's commit: the active key becomes the committed name). */
static int
object_store_in(md_t *md, const kind_t *k, const char *ns, const char *sub, const uint8_t *data,
                size_t len, int create, const char *replaces, const store_extra_t *extra,
                berth_error_t **err)
{
    if (!identifier_valid(ns))
        return md->api->error_make(err, BERTH_EINVAL, "namespace \"%s\": invalid", ns);
    ProtobufCMessage *m = protobuf_c_message_unpack(k->desc, NULL, len, data);
    if (m == NULL)
        return md->api->error_make(err, BERTH_EINVAL, "%s: not a valid %s message", k->noun,
                                   k->desc->name);
    int rc = k->check(md, m, err);
    md_key_t key;
    if (rc == 0 && object_key(&key, k, ns, sub, k->name(m)) < 0)
        rc = md->api->error_make(err, BERTH_EINVAL, "%s name too long", k->noun);
    if (rc == 0 &&
        create) { /* as containerd's buckets: what a namespace holds brings it into being */
        berth_kv_t *none = md->api->kv_new();
        berth_error_t *ignored = NULL;
        if (md_ops.namespace_create(md, ns, none, &ignored) < 0)
            md->api->error_free(ignored);
        md->api->kv_free(none);
    }
    MDB_txn *txn = NULL;
    if (rc == 0 && md_begin(md, 1, &txn, err) < 0)
        rc = MD_ERR(err);
    if (rc == 0) {
        MDB_val kv = {key.len, key.data}, val;
        int have = mdb_get(txn, md->dbi, &kv, &val) == 0;
        int64_t now = clock_now_ns(), created = now;
        if (have && create)
            rc = md->api->error_make(err, BERTH_EEXIST, "%s \"%s\": already exists", k->noun,
                                     k->name(m));
        else if (!have && !create)
            rc = md->api->error_make(err, BERTH_ENOTFOUND, "%s \"%s\": not found", k->noun,
                                     k->name(m));
        if (rc == 0 && have) { /* an update keeps the creation time */
            ProtobufCMessage *old =
                protobuf_c_message_unpack(k->desc, NULL, val.mv_size, val.mv_data);
            if (old) {
                created = clock_ts_ns(*k->created(old));
                protobuf_c_message_free_unpacked(old, NULL);
            }
        }
        if (rc == 0) {
            stamp(k->created(m), created);
            stamp(k->updated(m), now);
            rc = md_put_message(md, txn, &key, m, err);
        }
        if (rc == 0 && replaces)
            rc = delete_in(md, txn, k, ns, sub, replaces, err);
        if (rc == 0 && extra)
            rc = extra->run(md, txn, ns, m, extra->user, err);
        if (rc == 0 && extra && extra->deferred)
            rc = md_commit_deferred(md, txn, err);
        else if (rc == 0)
            rc = md_commit(md, txn, err);
        else
            mdb_txn_abort(txn);
    }
    protobuf_c_message_free_unpacked(m, NULL);
    return rc;
}

static int
object_store(md_t *md, const kind_t *k, const char *ns, const char *sub, const uint8_t *data,
             size_t len, int create, const char *replaces, berth_error_t **err)
{
    return object_store_in(md, k, ns, sub, data, len, create, replaces, NULL, err);
}

static int
object_put(md_t *md, const kind_t *k, const char *ns, const char *sub, const uint8_t *data,
           size_t len, int create, berth_error_t **err)
{
    return object_store(md, k, ns, sub, data, len, create, NULL, err);
}

static int
object_get(md_t *md, const kind_t *k, const char *ns, const char *sub, const char *name,
           uint8_t **out, size_t *len, berth_error_t **err)
{
    md_key_t key;
    MDB_txn *txn;
    if (object_key(&key, k, ns, sub, name) < 0)
        return md->api->error_make(err, BERTH_EINVAL, "%s name too long", k->noun);
    if (md_begin(md, 0, &txn, err) < 0)
        return MD_ERR(err);
    MDB_val kv = {key.len, key.data}, val;
    int rc = mdb_get(txn, md->dbi, &kv, &val);
    if (rc == 0) {
        *out = md->api->malloc(val.mv_size ? val.mv_size : 1);
        memcpy(*out, val.mv_data, val.mv_size);
        *len = val.mv_size;
    }
    mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND)
        return md->api->error_make(err, BERTH_ENOTFOUND, "%s \"%s\": not found", k->noun, name);
    return rc == 0 ? 0 : md_fail(md, rc, "read", err);
}

typedef struct object_visit {
    int (*cb)(void *user, const uint8_t *data, size_t len);
    void *user;
} object_visit_t;

static int
visit_object(void *user, MDB_val *k, MDB_val *v)
{
    object_visit_t *ov = user;
    return ov->cb(ov->user, v->mv_data, v->mv_size);
}

static int
object_list(md_t *md, const kind_t *k, const char *ns, const char *sub,
            int (*cb)(void *user, const uint8_t *data, size_t len), void *user, berth_error_t **err)
{
    object_visit_t ov = {cb, user};
    md_key_t prefix;
    object_key(&prefix, k, ns, sub, "");
    return md_scan_read(md, &prefix, visit_object, &ov, err);
}

static int
object_delete(md_t *md, const kind_t *k, const char *ns, const char *sub, const char *name,
              berth_error_t **err)
{
    MDB_txn *txn;
    if (md_begin(md, 1, &txn, err) < 0)
        return MD_ERR(err);
    int rc = delete_in(md, txn, k, ns, sub, name, err);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return md_commit(md, txn, err);
}

int
md_image_create(void *md, const char *ns, const uint8_t *d, size_t len, berth_error_t **err)
{
    return object_put(md, &images, ns, NULL, d, len, 1, err);
}
int
md_image_update(void *md, const char *ns, const uint8_t *d, size_t len, berth_error_t **err)
{
    return object_put(md, &images, ns, NULL, d, len, 0, err);
}
int
md_image_get(void *md, const char *ns, const char *name, uint8_t **d, size_t *len,
             berth_error_t **err)
{
    return object_get(md, &images, ns, NULL, name, d, len, err);
}
int
md_image_list(void *md, const char *ns, int (*cb)(void *, const uint8_t *, size_t), void *user,
              berth_error_t **err)
{
    return object_list(md, &images, ns, NULL, cb, user, err);
}
int
md_image_delete(void *md, const char *ns, const char *name, berth_error_t **err)
{
    return object_delete(md, &images, ns, NULL, name, err);
}
int
md_container_create(void *md, const char *ns, const uint8_t *d, size_t len, berth_error_t **err)
{
    return object_put(md, &containers, ns, NULL, d, len, 1, err);
}
int
md_container_update(void *md, const char *ns, const uint8_t *d, size_t len, berth_error_t **err)
{
    return object_put(md, &containers, ns, NULL, d, len, 0, err);
}
int
md_container_get(void *md, const char *ns, const char *id, uint8_t **d, size_t *len,
                 berth_error_t **err)
{
    return object_get(md, &containers, ns, NULL, id, d, len, err);
}
int
md_container_list(void *md, const char *ns, int (*cb)(void *, const uint8_t *, size_t), void *user,
                  berth_error_t **err)
{
    return object_list(md, &containers, ns, NULL, cb, user, err);
}
int
md_container_delete(void *md, const char *ns, const char *id, berth_error_t **err)
{
    return object_delete(md, &containers, ns, NULL, id, err);
}

int
md_snapshot_create(void *md, const char *ns, const char *sn, const uint8_t *d, size_t len,
                   berth_error_t **err)
{
    return object_put(md, &snapshots, ns, sn, d, len, 1, err);
}
int
md_snapshot_update(void *md, const char *ns, const char *sn, const uint8_t *d, size_t len,
                   berth_error_t **err)
{
    return object_put(md, &snapshots, ns, sn, d, len, 0, err);
}
int
md_snapshot_get(void *md, const char *ns, const char *sn, const char *key, uint8_t **d, size_t *len,
                berth_error_t **err)
{
    return object_get(md, &snapshots, ns, sn, key, d, len, err);
}
int
md_snapshot_list(void *md, const char *ns, const char *sn,
                 int (*cb)(void *, const uint8_t *, size_t), void *user, berth_error_t **err)
{
    return object_list(md, &snapshots, ns, sn, cb, user, err);
}

int
md_snapshot_commit(void *md, const char *ns, const char *sn, const char *key, const uint8_t *d,
                   size_t len, berth_error_t **err)
{
    return object_store(md, &snapshots, ns, sn, d, len, 1, key, err);
}

typedef struct snapshot_extra {
    const char *sn, *lease;
} snapshot_extra_t;

static int
snapshot_in(md_t *md, MDB_txn *txn, const char *ns, const char *sn, const char *key,
            snapshot_pb_t **out)
{
    md_key_t k;
    MDB_val kv, val;
    *out = NULL;
    if (object_key(&k, &snapshots, ns, sn, key) < 0)
        return -1;
    kv = (MDB_val){k.len, k.data};
    if (mdb_get(txn, md->dbi, &kv, &val) != 0)
        return -1;
    *out = containerd__services__snapshots__v1__info__unpack(NULL, val.mv_size, val.mv_data);
    return *out ? 0 : -1;
}

/* In the record's transaction: its parent is there and committed (a Remove cannot have raced it away),
 * and the lease, if any, lists it. */
static int
snapshot_extra(md_t *md, MDB_txn *txn, const char *ns, const ProtobufCMessage *m, void *user,
               berth_error_t **err)
{
    snapshot_extra_t *x = user;
    const snapshot_pb_t *info = (const snapshot_pb_t *)m;
    if (info->parent[0]) {
        snapshot_pb_t *p;
        int rc = snapshot_in(md, txn, ns, x->sn, info->parent, &p);
        int committed = p && p->kind == CONTAINERD__SERVICES__SNAPSHOTS__V1__KIND__COMMITTED;
        if (p)
            containerd__services__snapshots__v1__info__free_unpacked(p, NULL);
        if (rc < 0)
            return md->api->error_make(
                err, BERTH_ENOTFOUND, "parent snapshot %s does not exist: not found", info->parent);
        if (!committed)
            return md->api->error_make(err, BERTH_EINVAL,
                                       "parent %s is not a committed snapshot: invalid argument",
                                       info->parent);
    }
    if (x->lease == NULL || x->lease[0] == '\0')
        return 0;
    char type[300];
    snprintf(type, sizeof(type), "snapshots/%s", x->sn);
    return md_lease_add_in(md, txn, ns, x->lease, type, info->name, err);
}

int
md_snapshot_store(void *md, const char *ns, const char *sn, const char *replaces, const uint8_t *d,
                  size_t len, const char *lease, unsigned flags, berth_error_t **err)
{
    snapshot_extra_t x = {sn, lease};
    store_extra_t extra = {snapshot_extra, &x, (flags & BERTH_METADATA_DEFERRED) != 0};
    return object_store_in(md, &snapshots, ns, sn, d, len, 1, replaces, &extra, err);
}

typedef struct child_search {
    const char *parent;
    int found;
} child_search_t;

static int
find_child(void *user, MDB_val *k, MDB_val *v)
{
    child_search_t *c = user;
    snapshot_pb_t *info =
        containerd__services__snapshots__v1__info__unpack(NULL, v->mv_size, v->mv_data);
    if (info) {
        c->found |= strcmp(info->parent, c->parent) == 0;
        containerd__services__snapshots__v1__info__free_unpacked(info, NULL);
    }
    return c->found;
}

/* The child check and the delete in one transaction: a Prepare on this parent cannot slip in between. */
int
md_snapshot_remove(void *arg, const char *ns, const char *sn, const char *key, unsigned flags,
                   berth_error_t **err)
{
    md_t *md = arg;
    MDB_txn *txn;
    if (md_begin(md, 1, &txn, err) < 0)
        return MD_ERR(err);
    child_search_t c = {key, 0};
    md_key_t prefix;
    object_key(&prefix, &snapshots, ns, sn, "");
    md_scan(txn, md->dbi, &prefix, find_child, &c);
    int rc =
        c.found ? md->api->error_make(err, BERTH_EPRECONDITION, "cannot remove snapshot with child")
                : delete_in(md, txn, &snapshots, ns, sn, key, err);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return flags & BERTH_METADATA_DEFERRED ? md_commit_deferred(md, txn, err)
                                           : md_commit(md, txn, err);
}

int
md_snapshot_delete(void *md, const char *ns, const char *sn, const char *key, berth_error_t **err)
{
    return md_snapshot_remove(md, ns, sn, key, 0, err);
}

/* The content an image record roots: its target (gc_records.c asks). */
const char *
md_image_target(const uint8_t *data, size_t len, char *out, size_t outlen)
{
    image_pb_t *img = containerd__services__images__v1__image__unpack(NULL, len, data);
    if (img == NULL)
        return NULL;
    const char *result = NULL;
    if (img->target && strlen(img->target->digest) < outlen) {
        strcpy(out, img->target->digest);
        result = out;
    }
    containerd__services__images__v1__image__free_unpacked(img, NULL);
    return result;
}
