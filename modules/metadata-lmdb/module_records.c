/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Records of other modules ("x\0<ns>\0<kind>\0<key>"): opaque values the owning module serializes (the
 * volumes module's Volume messages, say). The store checks names and keeps namespaces from being deleted
 * under them; what the bytes mean is the owner's business.
 */
#include <stdlib.h>
#include <string.h>

#include "records.h"

static int
record_key(md_t *md, md_key_t *k, const char *ns, const char *kind, const char *key,
           berth_error_t **err)
{
    if (!identifier_valid(ns))
        return md->api->error_make(err, BERTH_EINVAL, "namespace \"%s\": invalid", ns ? ns : "");
    if (kind == NULL || kind[0] == '\0' || strlen(kind) > 64)
        return md->api->error_make(err, BERTH_EINVAL, "record kind must be 1 to 64 bytes");
    if (key == NULL || key[0] == '\0' || strlen(key) > 255)
        return md->api->error_make(err, BERTH_EINVAL, "%s record key must be 1 to 255 bytes", kind);
    if (md_key(k, 'x', ns, kind, key, NULL) < 0)
        return md->api->error_make(err, BERTH_EINVAL, "%s record key too long", kind);
    return 0;
}

static int
put_once(md_t *md, const char *ns, const char *kind, const char *key, const uint8_t *value,
         size_t len, unsigned flags, berth_error_t **err)
{
    md_key_t k;
    MDB_txn *txn;
    if (record_key(md, &k, ns, kind, key, err) < 0 || md_begin(md, 1, &txn, err) < 0)
        return MD_ERR(err);
    MDB_val kv = {k.len, k.data}, val = {len, (void *)value};
    int rc = mdb_put(txn, md->dbi, &kv, &val, (flags & BERTH_RECORD_CREATE) ? MDB_NOOVERWRITE : 0);
    if (rc == MDB_KEYEXIST) {
        mdb_txn_abort(txn);
        return md->api->error_make(err, BERTH_EEXIST, "%s \"%s\": already exists", kind, key);
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return md_fail(md, rc, "write record", err);
    }
    return md_commit(md, txn, err);
}

int
md_record_put(void *arg, const char *ns, const char *kind, const char *key, const uint8_t *value,
              size_t len, unsigned flags, berth_error_t **err)
{
    md_t *md = arg;
    if (identifier_valid(
            ns)) { /* as containerd's buckets: what a namespace holds brings it into being */
        berth_kv_t *none = md->api->kv_new();
        berth_error_t *ignored = NULL;
        if (md_ops.namespace_create(md, ns, none, &ignored) < 0)
            md->api->error_free(ignored);
        md->api->kv_free(none);
    }
    MD_GROWING(md, err, put_once(md, ns, kind, key, value, len, flags, err));
}

int
md_record_get(void *arg, const char *ns, const char *kind, const char *key, uint8_t **value,
              size_t *len, berth_error_t **err)
{
    md_t *md = arg;
    md_key_t k;
    MDB_txn *txn;
    if (record_key(md, &k, ns, kind, key, err) < 0 || md_begin(md, 0, &txn, err) < 0)
        return MD_ERR(err);
    MDB_val kv = {k.len, k.data}, val;
    int rc = mdb_get(txn, md->dbi, &kv, &val);
    if (rc == 0) {
        *value = md->api->malloc(val.mv_size ? val.mv_size : 1);
        memcpy(*value, val.mv_data, val.mv_size);
        *len = val.mv_size;
    }
    mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND)
        return md->api->error_make(err, BERTH_ENOTFOUND, "%s \"%s\": not found", kind, key);
    return rc ? md_fail(md, rc, "read record", err) : 0;
}

typedef struct list_visit {
    size_t prefix_len;
    int (*cb)(void *user, const char *key, const uint8_t *value, size_t len);
    void *user;
} list_visit_t;

static int
visit_record(void *arg, MDB_val *key, MDB_val *value)
{
    list_visit_t *lv = arg;
    size_t n = key->mv_size - lv->prefix_len;
    char name[256];
    if (n == 0 || n >= sizeof(name))
        return 0; /* not a key record_put could have written */
    memcpy(name, (const char *)key->mv_data + lv->prefix_len, n);
    name[n] = '\0';
    return lv->cb(lv->user, name, value->mv_data, value->mv_size);
}

int
md_record_list(void *arg, const char *ns, const char *kind,
               int (*cb)(void *user, const char *key, const uint8_t *value, size_t len), void *user,
               berth_error_t **err)
{
    md_t *md = arg;
    md_key_t prefix;
    if (record_key(md, &prefix, ns, kind, "-", err) < 0)
        return MD_ERR(err);
    md_key(&prefix, 'x', ns, kind, "", NULL); /* "x\0<ns>\0<kind>\0" */
    list_visit_t lv = {prefix.len, cb, user};
    return md_scan_read(md, &prefix, visit_record, &lv, err);
}

static int
delete_once(md_t *md, const char *ns, const char *kind, const char *key, berth_error_t **err)
{
    md_key_t k;
    MDB_txn *txn;
    if (record_key(md, &k, ns, kind, key, err) < 0 || md_begin(md, 1, &txn, err) < 0)
        return MD_ERR(err);
    MDB_val kv = {k.len, k.data};
    int rc = mdb_del(txn, md->dbi, &kv, NULL);
    if (rc != 0) {
        mdb_txn_abort(txn);
        if (rc == MDB_NOTFOUND)
            return md->api->error_make(err, BERTH_ENOTFOUND, "%s \"%s\": not found", kind, key);
        return md_fail(md, rc, "delete record", err);
    }
    return md_commit(md, txn, err);
}

int
md_record_delete(void *arg, const char *ns, const char *kind, const char *key, berth_error_t **err)
{
    md_t *md = arg;
    MD_GROWING(md, err, delete_once(md, ns, kind, key, err));
}
