/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Volumes, type "io.berth.volume.v1" (module volumes, id "local"): named storage per containerd namespace
 * that outlives containers. A volume is a directory under the module's root, a tmpfs of a given size, or
 * a bind of a host path inside the configured allow-list. Its record lives in the metadata store (kind
 * "volumes"); a volume is referenced by every container whose io.berth.volumes label names it, and cannot
 * be removed while referenced (unless forced).
 *
 * Options (driver options, as docker's local driver): "type" = "" (a directory), "tmpfs" or "bind";
 * "size" (tmpfs: bytes, or with a k, m or g suffix); "device" (bind: the host path); "o" (tmpfs: extra
 * mount options, e.g. "mode=0755,uid=1000").
 *
 * Calls block: call them from pool threads. Thread-safe.
 */
#ifndef BERTH_VOLUME_H
#define BERTH_VOLUME_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "hooks.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BERTH_VOLUME_TYPE "io.berth.volume.v1"
/* Volume names: 1..255 bytes of [A-Za-z0-9_.-], not starting with '.' or '-' (so never "." or ".."). */
#define BERTH_VOLUME_NAME_MAX 255

typedef struct berth_volume_v1_ops_s {
    uint32_t struct_size;
    /* Creates a volume (the volume.pre-create hook may change options and labels, or veto). Idempotent:
     * 0 with *created = 0 when it exists with the same options; AlreadyExists when its options differ.
     * labels and options may be NULL. */
    int (*create)(void *vol, const char *ns, const char *name, const berth_kv_t *labels,
                  const berth_kv_t *options, int *created, berth_error_t **err);
    /* The host path a container binds for volume `name`, created (no labels, no options) on first use; a
     * tmpfs volume is mounted if it is not. *path is api->strdup'd (the caller frees with api->free). */
    int (*mount_source)(void *vol, const char *ns, const char *name, char **path,
                        berth_error_t **err);
    /* Whether a host path may be bound into a container (the allow-list): 0 with *resolved (its real
     * path, api->strdup'd) or PermissionDenied naming the path and the allow-list. */
    int (*bind_allowed)(void *vol, const char *host_path, char **resolved, berth_error_t **err);
    /* Removes a volume: FailedPrecondition while a container references it unless force; NotFound. */
    int (*remove)(void *vol, const char *ns, const char *name, int force, berth_error_t **err);
} berth_volume_v1_ops_t;

#ifdef __cplusplus
}
#endif
#endif /* BERTH_VOLUME_H */
