/* SPDX-License-Identifier: Apache-2.0 */
#include "store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Per thread: transactions this thread has open (a grower must have none, or it would wait for itself),
 * and whether its last LMDB failure was a full map. */
static __thread int txn_depth;
static __thread int map_was_full;

/* A grower waits this long for open transactions to end before it gives up. */
#define GROW_WAIT_S 30

int
md_fail(md_t *md, int rc, const char *what, berth_error_t **err)
{
    if (rc == MDB_MAP_FULL) {
        map_was_full = 1;
        return md->api->error_make(
            err, BERTH_ERESOURCE, "%s: metadata store is full (map %lld bytes) and could not grow",
            what, (long long)__atomic_load_n(&md->map_size, __ATOMIC_RELAXED));
    }
    return md->api->error_make(err, BERTH_EINTERNAL, "%s: lmdb: %s", what, mdb_strerror(rc));
}

static int
open_failed(md_t *md, const char *path, int rc, berth_error_t **err)
{
    mdb_env_close(md->env);
    md->env = NULL;
    pthread_rwlock_destroy(&md->map_lock);
    pthread_rwlock_destroy(&md->sweep_lock);
    pthread_mutex_destroy(&md->grow_mu);
    pthread_cond_destroy(&md->grow_cv);
    return md->api->error_make(err, BERTH_EIO, "open %s: %s", path, mdb_strerror(rc));
}

int
md_open(md_t *md, const char *dir, int64_t map_size, berth_error_t **err)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/meta.mdb", dir);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_READER_NP);
    pthread_rwlock_init(&md->map_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_rwlock_init(&md->sweep_lock, NULL);
    pthread_mutex_init(&md->grow_mu, NULL);
    pthread_cond_init(&md->grow_cv, NULL);
    md->growers = 0;
    int rc = mdb_env_create(&md->env);
    if (rc == 0)
        rc = mdb_env_set_mapsize(md->env, (size_t)map_size);
    if (rc == 0)
        rc = mdb_env_set_maxreaders(md->env, 512);
    /* NOTLS: read transactions come from pool threads and are not tied to one. NOMETASYNC: md_commit
     * flushes the meta page itself, md_commit_deferred leaves it to the next commit (md_commit) */
    if (rc == 0)
        rc = mdb_env_open(md->env, path, MDB_NOSUBDIR | MDB_NOTLS | MDB_NOMETASYNC, 0600);
    if (rc != 0)
        return open_failed(md, path, rc, err);
    mdb_env_set_userctx(md->env, md); /* md_abort finds md from the transaction */
    /* a map grown in an earlier run opens at the size of its data, when that is more */
    MDB_envinfo info;
    mdb_env_info(md->env, &info);
    md->map_size = (int64_t)info.me_mapsize;
    MDB_txn *txn;
    rc = mdb_txn_begin(md->env, NULL, 0, &txn);
    if (rc == 0 && (rc = mdb_dbi_open(txn, NULL, 0, &md->dbi)) == 0)
        rc = mdb_txn_commit(txn);
    if (rc != 0)
        return open_failed(md, path, rc, err);
    return 0;
}

void
md_close(md_t *md)
{
    if (md->env) {
        mdb_env_close(md->env);
        pthread_rwlock_destroy(&md->map_lock);
        pthread_rwlock_destroy(&md->sweep_lock);
        pthread_mutex_destroy(&md->grow_mu);
        pthread_cond_destroy(&md->grow_cv);
    }
    md->env = NULL;
}

int
md_begin(md_t *md, int write, MDB_txn **txn, berth_error_t **err)
{
    /* a thread that holds a transaction must not wait (the grower waits for it); the others let a grower
     * in first */
    if (txn_depth == 0 && __atomic_load_n(&md->growers, __ATOMIC_ACQUIRE) > 0) {
        pthread_mutex_lock(&md->grow_mu);
        while (md->growers > 0)
            pthread_cond_wait(&md->grow_cv, &md->grow_mu);
        pthread_mutex_unlock(&md->grow_mu);
    }
    pthread_rwlock_rdlock(&md->map_lock);
    int rc = mdb_txn_begin(md->env, NULL, write ? 0 : MDB_RDONLY, txn);
    if (rc != 0) {
        pthread_rwlock_unlock(&md->map_lock);
        return md_fail(md, rc, "begin transaction", err);
    }
    txn_depth++;
    return 0;
}

static void
txn_ended(md_t *md)
{
    txn_depth--;
    pthread_rwlock_unlock(&md->map_lock);
}

int
md_commit_deferred(md_t *md, MDB_txn *txn, berth_error_t **err)
{
    int rc = mdb_txn_commit(txn);
    txn_ended(md);
    return rc == 0 ? 0 : md_fail(md, rc, "commit", err);
}

void
md_abort(MDB_txn *txn)
{
    md_t *md = mdb_env_get_userctx(mdb_txn_env(txn));
    (mdb_txn_abort)(txn); /* the function, not store.h's macro */
    txn_ended(md);
}

void
md_full_reset(void)
{
    map_was_full = 0;
}

/* A grower announces itself (d = 1) before it waits for map_lock and retires (d = -1) after. */
static void
growers_add(md_t *md, int d)
{
    pthread_mutex_lock(&md->grow_mu);
    if (__atomic_add_fetch(&md->growers, d, __ATOMIC_RELEASE) == 0)
        pthread_cond_broadcast(&md->grow_cv);
    pthread_mutex_unlock(&md->grow_mu);
}

static int grow_exclusive(md_t *md, int64_t seen);

/* Doubles the map unless someone grew it since `seen`; 0 when it is bigger now. */
static int
grow(md_t *md, int64_t seen)
{
    growers_add(md, 1);
    int rc = grow_exclusive(md, seen);
    growers_add(md, -1);
    return rc;
}

static int
grow_exclusive(md_t *md, int64_t seen)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += GROW_WAIT_S;
    int rc = pthread_rwlock_timedwrlock(&md->map_lock, &until);
    if (rc != 0) {
        md->api->log(md->log, BERTH_LOG_WARN,
                     "metadata store is full (map %lld bytes) and cannot grow: transactions stayed "
                     "open for %d s",
                     (long long)seen, GROW_WAIT_S);
        return -1;
    }
    int64_t now = md->map_size;
    if (now == seen) {
        now = seen * 2;
        rc = mdb_env_set_mapsize(md->env, (size_t)now);
        if (rc == 0) {
            __atomic_store_n(&md->map_size, now, __ATOMIC_RELAXED);
            md->api->log(md->log, BERTH_LOG_INFO,
                         "metadata store was full: map grown from %lld to %lld bytes",
                         (long long)seen, (long long)now);
        } else {
            md->api->log(md->log, BERTH_LOG_WARN,
                         "metadata store is full (map %lld bytes) and cannot grow to %lld: %s",
                         (long long)seen, (long long)now, mdb_strerror(rc));
        }
    }
    pthread_rwlock_unlock(&md->map_lock);
    return rc == 0 ? 0 : -1;
}

int
md_grow_if_full(md_t *md, berth_error_t **err)
{
    if (!map_was_full || txn_depth > 0)
        return 0;
    map_was_full = 0;
    /* read before waiting: a grower that goes first makes this one's doubling unnecessary */
    if (grow(md, __atomic_load_n(&md->map_size, __ATOMIC_RELAXED)) < 0)
        return 0;
    if (err && *err) {
        md->api->error_free(*err);
        *err = NULL;
    }
    return 1;
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
    txn_ended(md);
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
