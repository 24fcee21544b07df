/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The garbage collector, type "io.containerd.gc.v1" (id "scheduler", module metadata-lmdb). It collects in
 * the background after deletions (it watches the metadata store's dirty count) and on demand.
 */
#ifndef BERTH_GC_H
#define BERTH_GC_H

#include <stdint.h>

#include "error.h"
#include "metadata.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BERTH_GC_TYPE "io.containerd.gc.v1"

typedef struct berth_gc_v1_ops_s {
    uint32_t struct_size;
    /* Collects now, on the calling thread (a pool thread: it blocks on disk). */
    int (*collect)(void *gc, berth_error_t **err);
    /* Registers a sweeper (call from init; remove it in fini): after each
     * collection, outside any transaction, its callbacks hear of every content and snapshot record the
     * collection removed, so the module that owns the bytes removes them (the snapshots service does this
     * for its snapshotters). The sweeper struct is copied. */
    int (*add_sweeper)(void *gc, const berth_gc_removed_t *sweeper, berth_error_t **err);
    /* Removes the sweepers whose user is `user`, waiting for a collection in progress (call from fini). */
    void (*remove_sweeper)(void *gc, void *user);
} berth_gc_v1_ops_t;

#ifdef __cplusplus
}
#endif
#endif /* BERTH_GC_H */
