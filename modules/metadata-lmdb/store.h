/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The LMDB environment and the key layout. One unnamed database; keys are NUL-separated paths, so records of
 * one namespace sort together and prefix scans find them:
 *   "n\0<ns>"                          namespace record (containerd's Namespace message: name, labels)
 *   "l\0<ns>\0<id>"                    lease record (containerd's Lease message: id, created_at, labels)
 *   "r\0<ns>\0<id>\0<type>\0<resource>" lease resource (empty value)
 *   "x\0<ns>\0<kind>\0<key>"            another module's record (its own bytes; module_records.c)
 * Values are protobuf, encoded with the containerd messages protoc-c generated.
 */
#ifndef BERTH_METADATA_STORE_H
#define BERTH_METADATA_STORE_H

#include <lmdb.h>
#include <pthread.h>

#include <berth/metadata.h>
#include <berth/module.h>

#define MD_KEY_MAX 2048

typedef struct md {
    MDB_env *env;
    MDB_dbi dbi;
    const berth_core_api_t *api;
    const berth_logger_t *log;
    int64_t map_size; /* the map's size now (it grows); atomic */
    uint64_t dirty;   /* deletions since the last collection; atomic */
    /* Shared by every open transaction, exclusive to grow the map: LMDB may change its map size only
     * while no transaction of this process is open. Reader-preferring, so nested transactions of one
     * thread never wait behind a grower. */
    pthread_rwlock_t map_lock;
    /* Growers waiting for map_lock: while there are any, a thread with no transaction open waits before it
     * begins one, so a steady stream of readers cannot starve a grower. */
    int growers;
    pthread_mutex_t grow_mu;
    pthread_cond_t grow_cv;
    /* Shared by content_put, exclusive while the collector checks that no namespace holds a blob and
     * removes its bytes: a record put by an adopter (transfer, Write) can then not land between the
     * collector's check and its removal (the adopter checks the bytes are there after its put). Taken
     * before any transaction begins. */
    pthread_rwlock_t sweep_lock;
} md_t;

/* A deletion happened: the garbage collector should look again. */
#define MD_MARK_DIRTY(md) __atomic_add_fetch(&(md)->dirty, 1, __ATOMIC_RELAXED)

typedef struct md_key {
    char data[MD_KEY_MAX];
    size_t len;
} md_key_t;

int md_open(md_t *md, const char *dir, int64_t map_size, berth_error_t **err);
void md_close(md_t *md);
/* Every transaction begins with md_begin and ends with md_commit or md_abort (they hold map_lock). */
int md_begin(md_t *md, int write, MDB_txn **txn, berth_error_t **err);
/* Commits; on failure the transaction is gone and *err says why. */
int md_commit(md_t *md, MDB_txn *txn, berth_error_t **err);
void md_abort(MDB_txn *txn);
/* Code from elsewhere that still ends a transaction the LMDB way releases map_lock all the same. */
#define mdb_txn_abort(txn) md_abort(txn)
/* An LMDB failure as a berth error: MDB_MAP_FULL is ResourceExhausted (and noted for md_grow_if_full),
 * the rest Internal. */
/* A commit a system crash may undo (while no later md_commit has returned): for a record whose loss leaves
 * only garbage (a snapshot made before its record). kill -9 never undoes it. */
int md_commit_deferred(md_t *md, MDB_txn *txn, berth_error_t **err);
/* Makes every returned transaction durable (the metadata ops' sync). */
int md_sync(void *md, berth_error_t **err);
int md_fail(md_t *md, int rc, const char *what, berth_error_t **err);

/* Before an operation: forget an earlier full map. */
void md_full_reset(void);
/* After an operation failed: when it failed because the map was full, and this thread has no
 * transaction open, doubles the map, drops *err and returns 1 (run the operation again); else 0. */
int md_grow_if_full(md_t *md, berth_error_t **err);

/* The body of a write operation's wrapper: runs `call` (one or more whole transactions, nothing done
 * outside LMDB before its commit) again for as long as a full map could be grown. */
#define MD_GROWING(md, err, call)                                  \
    do {                                                           \
        int rc_;                                                   \
        md_full_reset();                                           \
        while ((rc_ = (call)) < 0 && md_grow_if_full((md), (err))) \
            md_full_reset();                                       \
        return rc_;                                                \
    } while (0)

/* Builds "<kind>\0<p1>\0<p2>..." from NULL-terminated parts; -1 if too long. */
int md_key(md_key_t *k, char kind, ...);
/* 1 when key `have` starts with the prefix. */
int md_has_prefix(const MDB_val *have, const md_key_t *prefix);
/* Deletes every key with the prefix. */
int md_delete_prefix(md_t *md, MDB_txn *txn, const md_key_t *prefix, berth_error_t **err);
/* 1 when some key has the prefix. */
int md_any_prefix(MDB_txn *txn, MDB_dbi dbi, const md_key_t *prefix);

/* Calls each(user, key, value) for every key with the prefix, in key order, until it returns non-zero. */
typedef int (*md_visit_fn)(void *user, MDB_val *key, MDB_val *value);
int md_scan(MDB_txn *txn, MDB_dbi dbi, const md_key_t *prefix, md_visit_fn each, void *user);
/* The same inside a read transaction of its own. */
int md_scan_read(md_t *md, const md_key_t *prefix, md_visit_fn each, void *user,
                 berth_error_t **err);

/* Labels as containerd's labels.Validate allows them. */
int md_check_labels(md_t *md, const berth_kv_t *labels, const char *what, berth_error_t **err);

/* The code of the error already in *err: what a function returns after a callee failed. */
#define MD_ERR(err) ((err) && *(err) ? (*(err))->code : BERTH_EUNKNOWN)

extern const berth_metadata_v1_ops_t md_ops;

#endif
