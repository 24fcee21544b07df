/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The snapshotter service, type "io.containerd.snapshotter.v1" (modules snapshot-overlay, snapshot-btrfs):
 * containerd's Snapshotter over raw keys. Namespacing and labels are the metadata module's business
 * (metadata.h snapshot records); the Snapshots service maps "<namespace>/<key>" onto these keys, as
 * containerd's metadata snapshotter wrapper does.
 *
 * Semantics as containerd's: Prepare makes an active (writable) snapshot on a committed parent (or none),
 * View a read-only one, Commit turns an active snapshot into a committed one under a new name, Remove
 * refuses a snapshot that has children. Calls are synchronous, thread-safe, and may block (pool threads).
 */
#ifndef BERTH_SNAPSHOT_H
#define BERTH_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BERTH_SNAPSHOTTER_TYPE "io.containerd.snapshotter.v1"

/* containerd's snapshots.v1.Kind values */
typedef enum berth_snapshot_kind {
    BERTH_SNAPSHOT_VIEW = 1,
    BERTH_SNAPSHOT_ACTIVE = 2,
    BERTH_SNAPSHOT_COMMITTED = 3
} berth_snapshot_kind_t;

/* One mount as containerd's types.Mount; a list of them is freed with the ops' mounts_free. */
typedef struct berth_mount_s {
    char *type;
    char *source;
    char **options; /* n_options strings */
    size_t n_options;
} berth_mount_t;

typedef struct berth_snapshot_info_s {
    char key[1024];
    char parent[1024]; /* "" when none */
    berth_snapshot_kind_t kind;
} berth_snapshot_info_t;

typedef struct berth_snapshotter_v1_ops_s {
    uint32_t struct_size;
    /* NotFound for an unknown parent, FailedPrecondition when the parent is not committed, AlreadyExists
     * for a key in use. The mounts to use come back (free with mounts_free). */
    int (*prepare)(void *sn, const char *key, const char *parent, berth_mount_t **mounts, size_t *n,
                   berth_error_t **err);
    int (*view)(void *sn, const char *key, const char *parent, berth_mount_t **mounts, size_t *n,
                berth_error_t **err);
    int (*mounts)(void *sn, const char *key, berth_mount_t **mounts, size_t *n,
                  berth_error_t **err);
    void (*mounts_free)(berth_mount_t *mounts, size_t n);
    /* FailedPrecondition unless key is active. */
    int (*commit)(void *sn, const char *name, const char *key, berth_error_t **err);
    int (*remove)(void *sn, const char *key, berth_error_t **err);
    int (*stat)(void *sn, const char *key, berth_snapshot_info_t *out, berth_error_t **err);
    int (*usage)(void *sn, const char *key, int64_t *size, int64_t *inodes, berth_error_t **err);
    int (*walk)(void *sn, int (*cb)(void *user, const berth_snapshot_info_t *info), void *user,
                berth_error_t **err);
    /* Removes what a crash left half-made. */
    int (*cleanup)(void *sn, berth_error_t **err);
} berth_snapshotter_v1_ops_t;

#ifdef __cplusplus
}
#endif
#endif /* BERTH_SNAPSHOT_H */
