/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The snapshotter service, type "io.containerd.snapshotter.v1" (modules snapshot-overlay, snapshot-btrfs):
 * the storage under containerd's Snapshotter, and nothing else. Names, parents, kinds, labels and namespaces
 * are the Snapshots service's records (metadata.h); a snapshotter keeps no table of its own. Each snapshot
 * is known to it by a number the Snapshots service allocates (the record carries it), and each call brings
 * what the backend needs to know: the id, the kind, and the parents' ids, nearest first.
 *
 * Crash safety (docs/snapshots.md): the service calls create before it writes the record, and remove after
 * it deleted the record, so a crash leaves at most an id without a record (garbage: the service finds it
 * through list and removes it at start-up, on Cleanup and after a collection), never a record without its
 * storage. A backend therefore needs no journal: create makes the snapshot under a temporary name and
 * renames it to its id as its last step (list must not report an id before that), remove takes away
 * whatever of an id is left (a missing id is no error), and every call may repeat on an id a crash
 * interrupted.
 *
 * Calls are synchronous and may block (pool threads); the service never makes two calls on the same id at
 * once, but calls on different ids come concurrently.
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
/* The ops version this header describes; the service refuses a snapshotter whose ops carry another. */
#define BERTH_SNAPSHOTTER_OPS_VERSION 2

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

/* A snapshot as the service hands it to its snapshotter. Ids are positive and never reused while the
 * snapshotter's storage holds them. */
typedef struct berth_snapshot_ref_s {
    uint64_t id;
    berth_snapshot_kind_t kind;
    const uint64_t *parents; /* committed snapshots, nearest first */
    size_t n_parents;
} berth_snapshot_ref_t;

typedef struct berth_snapshotter_ops_s {
    uint32_t struct_size;
    uint32_t version; /* BERTH_SNAPSHOTTER_OPS_VERSION */
    /* Makes snapshot s (kind active or view) on its parents; id appears (in list) only when complete. */
    int (*create)(void *sn, const berth_snapshot_ref_t *s, berth_error_t **err);
    /* Turns active snapshot s into a committed one and says which id holds it: s->id itself, or a new id
     * made from it (out of `fresh`, which the service allocated). The service then rewrites the record and
     * removes whichever id the record no longer names. */
    int (*commit)(void *sn, const berth_snapshot_ref_t *s, uint64_t fresh, uint64_t *committed,
                  berth_error_t **err);
    /* The mounts of active or view snapshot s (free with mounts_free). */
    int (*mounts)(void *sn, const berth_snapshot_ref_t *s, berth_mount_t **mounts, size_t *n,
                  berth_error_t **err);
    void (*mounts_free)(berth_mount_t *mounts, size_t n);
    /* Removes what is left of id; 0 when nothing is. */
    int (*remove)(void *sn, uint64_t id, berth_error_t **err);
    /* Disk use of the snapshot's own layer. */
    int (*usage)(void *sn, uint64_t id, int64_t *size, int64_t *inodes, berth_error_t **err);
    /* Calls cb for every complete id held; cb returning non-zero stops. The service calls it only while no
     * create or commit runs, so a snapshotter may remove the half-made leftovers of create here. */
    int (*list)(void *sn, int (*cb)(void *user, uint64_t id), void *user, berth_error_t **err);
} berth_snapshotter_ops_t;

#ifdef __cplusplus
}
#endif
#endif /* BERTH_SNAPSHOT_H */
