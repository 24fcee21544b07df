/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every snapshotter module shares: the table of snapshots (key, parent, kind, numeric id), kept as a
 * `meta` file in <root>/snapshots/<id>/, made under tmp-<id> and renamed into place, removed by renaming to
 * rm-<id> first (so a crash leaves only names Cleanup knows), with one lock. A backend supplies what is
 * filesystem-specific: how a snapshot's `fs` is made from its parent's, committed, destroyed and mounted.
 */
#ifndef BERTH_MODULES_SNAPTAB_H
#define BERTH_MODULES_SNAPTAB_H

#include <pthread.h>
#include <stddef.h>

#include <berth/module.h>
#include <berth/snapshot.h>

typedef struct snap_entry {
    char *key, *parent;
    berth_snapshot_kind_t kind;
    long id;
} snap_entry_t;

typedef struct snaptab snaptab_t;

typedef struct snaptab_backend {
    /* Makes <dir>/fs (and whatever else the backend keeps in dir): empty, or from parent_fs. */
    int (*create)(snaptab_t *t, const char *dir, const char *parent_fs, berth_snapshot_kind_t kind,
                  berth_error_t **err);
    /* Turns an active snapshot's fs into a committed (read-only, parent-able) one. */
    int (*commit)(snaptab_t *t, const char *dir, berth_error_t **err);
    /* Undoes create before dir is deleted (btrfs subvolumes cannot be unlinked). */
    void (*destroy)(snaptab_t *t, const char *dir);
    /* The mounts of an active or view snapshot. Called with the table locked. */
    void (*mounts)(snaptab_t *t, const snap_entry_t *e, berth_mount_t **m, size_t *n);
} snaptab_backend_t;

struct snaptab {
    const berth_core_api_t *api;
    const snaptab_backend_t *backend;
    char *root;
    pthread_mutex_t lock;
    snap_entry_t *entries;
    size_t n;
    long next_id;
};

int snaptab_open(snaptab_t *t, const berth_core_api_t *api, const snaptab_backend_t *backend,
                 const char *root, berth_error_t **err);
void snaptab_close(snaptab_t *t);
/* A snapshotter plugin's init and fini around a table at the plugin's root (exported as "root"). */
int snaptab_plugin_init(berth_init_ctx_t *ic, const snaptab_backend_t *backend, void **instance,
                        berth_error_t **err);
void snaptab_plugin_fini(void *instance);
/* The snapshot with this key, or NULL (table locked). */
const snap_entry_t *snaptab_find(snaptab_t *t, const char *key);
/* <root>/snapshots/<id>[/<sub>] */
void snaptab_dir(snaptab_t *t, long id, const char *sub, char *out, size_t len);
/* Appends a mount to a list. */
void snaptab_add_mount(berth_mount_t **m, size_t *n, const char *type, const char *source,
                       const char *const *opts);
int snaptab_rm_rf(const char *path);

/* The berth_snapshotter_v1_ops_t functions, on a snaptab_t instance. */
extern const berth_snapshotter_v1_ops_t snaptab_ops;

#endif
