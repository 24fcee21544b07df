/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The differ service, type "io.containerd.differ.v1" (module images, id "walking"): applies image layers
 * onto mounts and computes layers from the difference between two mount sets, as containerd's walking
 * differ does. The Diff gRPC service and the runtime's unpacking use it.
 *
 * Calls are synchronous and block on disk: call them from pool threads. `ns` is the namespace whose
 * content the call reads and writes (metadata.h visibility rules apply).
 */
#ifndef BERTH_DIFF_H
#define BERTH_DIFF_H

#include <stddef.h>
#include <stdint.h>

#include "content.h"
#include "error.h"
#include "hooks.h"
#include "snapshot.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BERTH_DIFFER_TYPE "io.containerd.differ.v1"

/* An OCI descriptor. Annotations may be NULL. */
typedef struct berth_descriptor_s {
    char media_type[256];
    char digest[BERTH_DIGEST_MAX];
    int64_t size;
    const berth_kv_t *annotations;
} berth_descriptor_t;

typedef struct berth_differ_v1_ops_s {
    uint32_t struct_size;
    /* Applies the layer `layer` (a blob of the namespace: gzip, zstd or plain tar, OCI or Docker media
     * types) onto the mounts and fills `applied` with the uncompressed layer (media type
     * application/vnd.oci.image.layer.v1.tar, digest = the diffID, size). When the layer descriptor's
     * annotations or the blob's labels name containerd.io/uncompressed, the diffID must match
     * (FailedPrecondition otherwise). Hostile archives are refused (InvalidArgument naming the entry);
     * nothing outside the mounts' root changes. */
    int (*apply)(void *differ, const char *ns, const berth_descriptor_t *layer,
                 const berth_mount_t *mounts, size_t n_mounts, berth_descriptor_t *applied,
                 berth_error_t **err);
    /* Writes the changes from `lower` to `upper` as a layer of `media_type` ("" = tar+gzip) into the
     * content store under the ingest ref `ref` ("" = generated), labelled with `labels` (may be NULL) and
     * containerd.io/uncompressed; fills `out` with its descriptor. */
    int (*diff)(void *differ, const char *ns, const berth_mount_t *lower, size_t n_lower,
                const berth_mount_t *upper, size_t n_upper, const char *media_type, const char *ref,
                const berth_kv_t *labels, berth_descriptor_t *out, berth_error_t **err);
} berth_differ_v1_ops_t;

#ifdef __cplusplus
}
#endif
#endif /* BERTH_DIFF_H */
