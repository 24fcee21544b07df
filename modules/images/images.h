/* SPDX-License-Identifier: Apache-2.0 */
/* The images module's shared state: the Images service, the walking differ and the Diff service. */
#ifndef BERTH_MODULES_IMAGES_H
#define BERTH_MODULES_IMAGES_H

#include <berth/content.h>
#include <berth/diff.h>
#include <berth/events.h>
#include <berth/gc.h>
#include <berth/grpc.h>
#include <berth/metadata.h>
#include <berth/module.h>

#include "apply.h"
#include "github.com/containerd/containerd/api/events/image.pb-c.h"
#include "github.com/containerd/containerd/api/services/diff/v1/diff.pb-c.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.pb-c.h"

typedef struct images {
    const berth_core_api_t *api;
    void *md;
    const berth_metadata_v1_ops_t *mdo;
    void *events; /* NULL when the exchange is off */
    const berth_events_v1_ops_t *events_ops;
    void *gc; /* NULL when the collector is off */
    const berth_gc_v1_ops_t *gc_ops;
} images_t;

typedef struct differ {
    const berth_core_api_t *api;
    const berth_logger_t *log;
    void *md;
    const berth_metadata_v1_ops_t *mdo;
    void *cs;
    const berth_content_v1_ops_t *cso;
    char *scratch; /* private mount points live here */
    layer_apply_opts_t limits;
} differ_t;

extern const berth_grpc_service_v1_t images_service;
extern const berth_grpc_service_v1_t diff_service;
extern const berth_differ_v1_ops_t differ_ops;

/* The differ's steps, in differ.c and layer_diff.c. */
int differ_apply(void *d, const char *ns, const berth_descriptor_t *layer, const berth_mount_t *m,
                 size_t n, berth_descriptor_t *applied, berth_error_t **err);
int differ_diff(void *d, const char *ns, const berth_mount_t *lower, size_t n_lower,
                const berth_mount_t *upper, size_t n_upper, const char *media_type, const char *ref,
                const berth_kv_t *labels, berth_descriptor_t *out, berth_error_t **err);

/* Mounts a containerd mount list read-write (or read-only) on a fresh directory under `scratch`; a single
 * bind mount is used in place. Fills `root` (the directory to use) and returns 0; unmount with
 * mounts_release. */
typedef struct mounted {
    char root[4200];
    char point[4200]; /* "" when nothing was mounted */
} mounted_t;
int mounts_acquire(differ_t *d, const berth_mount_t *m, size_t n, int readonly, mounted_t *out,
                   berth_error_t **err);
void mounts_release(mounted_t *mt);

#endif
