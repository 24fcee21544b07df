/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every snapshotter module shares: a snapshot is the directory <root>/snapshots/<id> and nothing else
 * (no table: names, parents and kinds come with each call from the Snapshots service's records, see
 * abi/berth/snapshot.h). create builds it as tmp-<id> and renames it into place; remove and list take
 * whatever a crash left. A backend supplies what is filesystem-specific: how a snapshot's `fs` is made from
 * its parent's, committed, destroyed and mounted.
 */
#ifndef BERTH_MODULES_SNAPTAB_H
#define BERTH_MODULES_SNAPTAB_H

#include <stddef.h>

#include <berth/module.h>
#include <berth/snapshot.h>

typedef struct snaptab snaptab_t;

typedef struct snaptab_backend {
    /* Makes <dir>/fs (and whatever else the backend keeps in dir): empty, or from parent_fs. */
    int (*create)(snaptab_t *t, const char *dir, const char *parent_fs, berth_snapshot_kind_t kind,
                  berth_error_t **err);
    /* Commits active snapshot s: in place (*committed = s->id), or as new snapshot dir (*committed =
     * fresh), made complete before it returns. */
    int (*commit)(snaptab_t *t, const berth_snapshot_ref_t *s, uint64_t fresh, const char *dir,
                  uint64_t *committed, berth_error_t **err);
    /* Undoes create before dir is deleted (btrfs subvolumes cannot be unlinked). */
    void (*destroy)(snaptab_t *t, const char *dir);
    /* The mounts of an active or view snapshot. */
    void (*mounts)(snaptab_t *t, const berth_snapshot_ref_t *s, berth_mount_t **m, size_t *n);
} snaptab_backend_t;

struct snaptab {
    const berth_core_api_t *api;
    const snaptab_backend_t *backend;
    char *root;
};

/* A snapshotter plugin's init and fini around <plugin root>/snapshots (the root is exported as "root"). */
int snaptab_plugin_init(berth_init_ctx_t *ic, const snaptab_backend_t *backend, void **instance,
                        berth_error_t **err);
void snaptab_plugin_fini(void *instance);
/* <root>/snapshots/<id>[/<sub>] */
void snaptab_dir(snaptab_t *t, uint64_t id, const char *sub, char *out, size_t len);
/* Builds <root>/snapshots/tmp-<id> with make(dir), then renames it to <id>; undoes it on failure. */
int snaptab_build(snaptab_t *t, uint64_t id,
                  int (*make)(snaptab_t *t, const char *dir, void *user, berth_error_t **err),
                  void *user, berth_error_t **err);
/* Appends a mount to a list. */
void snaptab_add_mount(berth_mount_t **m, size_t *n, const char *type, const char *source,
                       const char *const *opts);
int snaptab_rm_rf(const char *path);

/* The berth_snapshotter_ops_t functions, on a snaptab_t instance. */
extern const berth_snapshotter_ops_t snaptab_ops;

#endif
