/* SPDX-License-Identifier: Apache-2.0 */
/* Which blobs a namespace holds: "b\0<ns>\0<digest>" -> containerd's content Info message. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "records.h"
#include "clock.h"

typedef Containerd__Services__Content__V1__Info info_pb_t;

static int
read_info(md_t *md, MDB_txn *txn, const md_key_t *k, info_pb_t **out, berth_error_t **err)
{
    MDB_val key = {k->len, (void *)k->data}, val;
    *out = NULL;
    int rc = mdb_get(txn, md->dbi, &key, &val);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return md_fail(md, rc, "read content record", err);
    *out = containerd__services__content__v1__info__unpack(NULL, val.mv_size, val.mv_data);
    return *out ? 0 : md->api->error_make(err, BERTH_EDATALOSS, "content record does not decode");
}

static int
write_info(md_t *md, MDB_txn *txn, const md_key_t *k, const char *digest, int64_t size,
           int64_t created, int64_t updated, const berth_kv_t *labels, berth_error_t **err)
{
    Google__Protobuf__Timestamp c, u;
    clock_set_ts(&c, created);
    clock_set_ts(&u, updated);
    info_pb_t rec = CONTAINERD__SERVICES__CONTENT__V1__INFO__INIT;
    rec.digest = (char *)digest;
    rec.size = size;
    rec.created_at = &c;
    rec.updated_at = &u;
    rec.labels = (Containerd__Services__Content__V1__Info__LabelsEntry **)md_entries_of(
        md, labels, &containerd__services__content__v1__info__labels_entry__descriptor,
        &rec.n_labels);
    int rc = md_put_message(md, txn, k, &rec.base, err);
    md_entries_free((md_map_entry_t **)rec.labels, rec.n_labels);
    return rc;
}

static int
content_key(md_t *md, md_key_t *k, const char *ns, const char *digest, berth_error_t **err)
{
    if (md_key(k, 'b', ns, digest, NULL) < 0)
        return md->api->error_make(err, BERTH_EINVAL, "digest too long");
    return 0;
}

/* Read-modify-write of one record inside a write transaction. */
static int
content_update(md_t *md, const char *ns, const char *digest, int64_t size, const berth_kv_t *labels,
               int create, berth_error_t **err)
{
    md_key_t k;
    MDB_txn *txn;
    if (content_key(md, &k, ns, digest, err) < 0 ||
        (labels && md_check_labels(md, labels, "content labels", err) < 0) ||
        md_begin(md, 1, &txn, err) < 0)
        return MD_ERR(err);
    info_pb_t *have = NULL;
    int rc = read_info(md, txn, &k, &have, err);
    if (rc == 0 && have == NULL && !create)
        rc = md->api->error_make(err, BERTH_ENOTFOUND, "content digest %s: not found", digest);
    if (rc == 0) {
        berth_kv_t *kv = md->api->kv_new();
        if (labels)
            for (size_t i = 0; i < md->api->kv_size(labels); i++)
                md->api->kv_set(kv, md->api->kv_key_at(labels, i), md->api->kv_value_at(labels, i));
        else if (have)
            md_entries_to_kv(md, (md_map_entry_t **)have->labels, have->n_labels, kv);
        int64_t now = clock_now_ns();
        rc = write_info(md, txn, &k, digest, size >= 0 ? size : (have ? have->size : 0),
                        have ? clock_ts_ns(have->created_at) : now, now, kv, err);
        md->api->kv_free(kv);
    }
    if (have)
        containerd__services__content__v1__info__free_unpacked(have, NULL);
    if (rc < 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return md_commit(md, txn, err);
}

int
md_content_put(void *arg, const char *ns, const char *digest, int64_t size,
               const berth_kv_t *labels, berth_error_t **err)
{
    md_t *md = arg;
    if (!identifier_valid(ns))
        return md->api->error_make(err, BERTH_EINVAL, "namespace \"%s\": invalid", ns);
    /* holding a blob brings the namespace into being, as containerd's buckets do */
    berth_kv_t *none = md->api->kv_new();
    berth_error_t *ignored = NULL;
    if (md_ops.namespace_create(md, ns, none, &ignored) < 0)
        md->api->error_free(ignored);
    md->api->kv_free(none);
    return content_update(md, ns, digest, size, labels, 1, err);
}

int
md_content_set_labels(void *arg, const char *ns, const char *digest, const berth_kv_t *labels,
                      berth_error_t **err)
{
    return content_update(arg, ns, digest, -1, labels, 0, err);
}

static void
fill_record(md_t *md, const info_pb_t *rec, berth_content_record_t *out, berth_kv_t *labels)
{
    out->digest = rec->digest;
    out->size = rec->size;
    out->created_ns = clock_ts_ns(rec->created_at);
    out->updated_ns = clock_ts_ns(rec->updated_at);
    if (labels)
        md_entries_to_kv(md, (md_map_entry_t **)rec->labels, rec->n_labels, labels);
    out->labels = labels;
}

int
md_content_get(void *arg, const char *ns, const char *digest, berth_content_record_t *out,
               berth_kv_t *labels, berth_error_t **err)
{
    md_t *md = arg;
    md_key_t k;
    MDB_txn *txn;
    if (content_key(md, &k, ns, digest, err) < 0 || md_begin(md, 0, &txn, err) < 0)
        return MD_ERR(err);
    info_pb_t *have = NULL;
    int rc = read_info(md, txn, &k, &have, err);
    mdb_txn_abort(txn);
    if (rc == 0 && have == NULL)
        rc = md->api->error_make(err, BERTH_ENOTFOUND, "content digest %s: not found", digest);
    if (rc == 0) {
        fill_record(md, have, out, labels);
        out->digest = NULL; /* the caller knows it; the record's copy dies below */
    }
    if (have)
        containerd__services__content__v1__info__free_unpacked(have, NULL);
    return rc;
}

int
md_content_delete(void *arg, const char *ns, const char *digest, berth_error_t **err)
{
    md_t *md = arg;
    md_key_t k;
    MDB_txn *txn;
    if (content_key(md, &k, ns, digest, err) < 0 || md_begin(md, 1, &txn, err) < 0)
        return MD_ERR(err);
    MDB_val key = {k.len, k.data};
    int rc = mdb_del(txn, md->dbi, &key, NULL);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc == MDB_NOTFOUND ? md->api->error_make(err, BERTH_ENOTFOUND,
                                                        "content digest %s: not found", digest)
                                  : md_fail(md, rc, "delete content record", err);
    }
    MD_MARK_DIRTY(md);
    return md_commit(md, txn, err);
}

typedef struct content_visit {
    md_t *md;
    int (*cb)(void *user, const berth_content_record_t *rec);
    void *user;
} content_visit_t;

static int
visit_content(void *user, MDB_val *k, MDB_val *v)
{
    content_visit_t *cv = user;
    info_pb_t *rec = containerd__services__content__v1__info__unpack(NULL, v->mv_size, v->mv_data);
    if (rec == NULL)
        return 0;
    berth_kv_t *kv = cv->md->api->kv_new();
    berth_content_record_t out;
    fill_record(cv->md, rec, &out, kv);
    int stop = cv->cb(cv->user, &out);
    cv->md->api->kv_free(kv);
    containerd__services__content__v1__info__free_unpacked(rec, NULL);
    return stop;
}

int
md_content_list(void *arg, const char *ns, int (*cb)(void *user, const berth_content_record_t *rec),
                void *user, berth_error_t **err)
{
    content_visit_t cv = {arg, cb, user};
    md_key_t prefix;
    md_key(&prefix, 'b', ns, "", NULL);
    return md_scan_read(arg, &prefix, visit_content, &cv, err);
}

typedef struct content_visit_all {
    md_t *md;
    int (*cb)(void *user, const char *ns, const berth_content_record_t *rec);
    void *user;
} content_visit_all_t;

/* Keys are "b\0<ns>\0<digest>". */
static int
visit_content_all(void *user, MDB_val *k, MDB_val *v)
{
    content_visit_all_t *cv = user;
    const char *key = k->mv_data;
    char ns[256];
    size_t n = 0;
    while (2 + n < k->mv_size && key[2 + n] != '\0' && n + 1 < sizeof(ns))
        n++;
    memcpy(ns, key + 2, n);
    ns[n] = '\0';
    info_pb_t *rec = containerd__services__content__v1__info__unpack(NULL, v->mv_size, v->mv_data);
    if (rec == NULL)
        return 0;
    berth_content_record_t out;
    fill_record(cv->md, rec, &out, NULL);
    int stop = cv->cb(cv->user, ns, &out);
    containerd__services__content__v1__info__free_unpacked(rec, NULL);
    return stop;
}

int
md_content_list_all(void *arg,
                    int (*cb)(void *user, const char *ns, const berth_content_record_t *rec),
                    void *user, berth_error_t **err)
{
    content_visit_all_t cv = {arg, cb, user};
    md_key_t prefix;
    md_key(&prefix, 'b', "", NULL); /* "b\0" */
    return md_scan_read(arg, &prefix, visit_content_all, &cv, err);
}

/* Scans every namespace's records for the digest: blobs are few compared to what a scan costs here. */
int
md_content_held(void *arg, const char *digest, berth_error_t **err)
{
    md_t *md = arg;
    MDB_txn *txn;
    MDB_cursor *c;
    if (md_begin(md, 0, &txn, err) < 0)
        return MD_ERR(err);
    if (mdb_cursor_open(txn, md->dbi, &c) != 0) {
        mdb_txn_abort(txn);
        return md->api->error_make(err, BERTH_EINTERNAL, "content held: cursor");
    }
    md_key_t prefix;
    md_key(&prefix, 'b', "", NULL); /* "b\0" */
    MDB_val k = {prefix.len, prefix.data}, v;
    size_t dl = strlen(digest);
    int held = 0;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
         rc == 0 && md_has_prefix(&k, &prefix) && !held; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
        held = k.mv_size > dl && memcmp((char *)k.mv_data + k.mv_size - dl, digest, dl) == 0 &&
               ((char *)k.mv_data)[k.mv_size - dl - 1] == '\0';
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    return held;
}
