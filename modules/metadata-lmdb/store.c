/* SPDX-License-Identifier: Apache-2.0 */
#include "store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int
md_fail(md_t *md, int rc, const char *what, berth_error_t **err)
{
    if (rc == MDB_MAP_FULL)
        return md->api->error_make(err, BERTH_ERESOURCE,
                                   "%s: metadata store is full (map_size %lld bytes); raise "
                                   "plugins.io.containerd.metadata.v1.lmdb.map_size",
                                   what, (long long)md->map_size);
    return md->api->error_make(err, BERTH_EINTERNAL, "%s: lmdb: %s", what, mdb_strerror(rc));
}

int
md_open(md_t *md, const char *dir, int64_t map_size, berth_error_t **err)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/meta.mdb", dir);
    md->map_size = map_size;
    int rc = mdb_env_create(&md->env);
    if (rc == 0)
        rc = mdb_env_set_mapsize(md->env, (size_t)map_size);
    if (rc == 0)
        rc = mdb_env_set_maxreaders(md->env, 512);
    /* NOTLS: read transactions come from pool threads and are not tied to one. NOMETASYNC: md_commit
     * flushes the meta page itself, md_commit_deferred leaves it to the next commit (md_commit) */
    if (rc == 0)
        rc = mdb_env_open(md->env, path, MDB_NOSUBDIR | MDB_NOTLS | MDB_NOMETASYNC, 0600);
    if (rc != 0) {
        mdb_env_close(md->env);
        md->env = NULL;
        return md->api->error_make(err, BERTH_EIO, "open %s: %s", path, mdb_strerror(rc));
    }
    MDB_txn *txn;
    rc = mdb_txn_begin(md->env, NULL, 0, &txn);
    if (rc == 0 && (rc = mdb_dbi_open(txn, NULL, 0, &md->dbi)) == 0)
        rc = mdb_txn_commit(txn);
    if (rc != 0) {
        mdb_env_close(md->env);
        md->env = NULL;
        return md->api->error_make(err, BERTH_EIO, "open %s: %s", path, mdb_strerror(rc));
    }
    return 0;
}

void
md_close(md_t *md)
{
    if (md->env)
        mdb_env_close(md->env);
    md->env = NULL;
}

int
md_begin(md_t *md, int write, MDB_txn **txn, berth_error_t **err)
{
    int rc = mdb_txn_begin(md->env, NULL, write ? 0 : MDB_RDONLY, txn);
    return rc == 0 ? 0 : md_fail(md, rc, "begin transaction", err);
}

int
md_commit_deferred(md_t *md, MDB_txn *txn, berth_error_t **err)
{
    int rc = mdb_txn_commit(txn);
    return rc == 0 ? 0 : md_fail(md, rc, "commit", err);
}

int
md_sync(void *arg, berth_error_t **err)
{
    md_t *md = arg;
    int rc = mdb_env_sync(md->env, 1);
    return rc == 0 ? 0 : md_fail(md, rc, "sync", err);
}

/* Durable on return: the data pages were flushed by the commit, the meta page that makes them current is
 * flushed here. A commit that wrote nothing (LMDB skips it) costs no flush unless another landed since. */
int
md_commit(md_t *md, MDB_txn *txn, berth_error_t **err)
{
    size_t id = mdb_txn_id(txn);
    int rc = mdb_txn_commit(txn);
    MDB_envinfo info;
    if (rc == 0 && mdb_env_info(md->env, &info) == 0 && info.me_last_txnid >= id)
        rc = mdb_env_sync(md->env, 1);
    return rc == 0 ? 0 : md_fail(md, rc, "commit", err);
}

int
md_key(md_key_t *k, char kind, ...)
{
    va_list ap;
    va_start(ap, kind);
    k->data[0] = kind;
    k->len = 1;
    for (const char *part = va_arg(ap, const char *); part; part = va_arg(ap, const char *)) {
        size_t n = strlen(part);
        if (k->len + 1 + n > sizeof(k->data)) {
            va_end(ap);
            return -1;
        }
        k->data[k->len++] = '\0';
        memcpy(k->data + k->len, part, n);
        k->len += n;
    }
    va_end(ap);
    return 0;
}

int
md_has_prefix(const MDB_val *have, const md_key_t *prefix)
{
    return have->mv_size >= prefix->len && memcmp(have->mv_data, prefix->data, prefix->len) == 0;
}

int
md_any_prefix(MDB_txn *txn, MDB_dbi dbi, const md_key_t *prefix)
{
    MDB_cursor *c;
    if (mdb_cursor_open(txn, dbi, &c) != 0)
        return 0;
    MDB_val k = {prefix->len, (void *)prefix->data}, v;
    int found = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE) == 0 && md_has_prefix(&k, prefix);
    mdb_cursor_close(c);
    return found;
}

int
md_delete_prefix(md_t *md, MDB_txn *txn, const md_key_t *prefix, berth_error_t **err)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, md->dbi, &c);
    if (rc != 0)
        return md_fail(md, rc, "delete", err);
    MDB_val k = {prefix->len, (void *)prefix->data}, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && md_has_prefix(&k, prefix)) {
        if ((rc = mdb_cursor_del(c, 0)) != 0)
            break;
        rc = mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT);
        if (rc == EINVAL || rc == MDB_NOTFOUND) /* deleted the last key */
            break;
    }
    mdb_cursor_close(c);
    return rc == 0 || rc == MDB_NOTFOUND || rc == EINVAL ? 0 : md_fail(md, rc, "delete", err);
}

int
md_check_labels(md_t *md, const berth_kv_t *labels, const char *what, berth_error_t **err)
{
    for (size_t i = 0; i < md->api->kv_size(labels); i++) {
        const char *k = md->api->kv_key_at(labels, i), *v = md->api->kv_value_at(labels, i);
        if (strlen(k) + strlen(v) > BERTH_LABEL_MAX)
            return md->api->error_make(
                err, BERTH_EINVAL,
                "%s: label key and value greater than maximum size (%d bytes), "
                "key: %.10s",
                what, BERTH_LABEL_MAX, k);
    }
    return 0;
}

int
md_scan(MDB_txn *txn, MDB_dbi dbi, const md_key_t *prefix, md_visit_fn each, void *user)
{
    MDB_cursor *c;
    if (mdb_cursor_open(txn, dbi, &c) != 0)
        return BERTH_EINTERNAL;
    MDB_val k = {prefix->len, (void *)prefix->data}, v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    for (; rc == 0 && md_has_prefix(&k, prefix); rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
        if (each(user, &k, &v) != 0)
            break;
    mdb_cursor_close(c);
    return 0;
}

int
md_scan_read(md_t *md, const md_key_t *prefix, md_visit_fn each, void *user, berth_error_t **err)
{
    MDB_txn *txn;
    if (md_begin(md, 0, &txn, err) < 0)
        return MD_ERR(err);
    int rc = md_scan(txn, md->dbi, prefix, each, user);
    mdb_txn_abort(txn);
    return rc == 0 ? 0 : md->api->error_make(err, rc, "scan: cursor");
}
