/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hook points: PouchContainer's plugin interfaces, with many handlers per point.
 *
 * A plugin registers handlers from its init with api->hook_register(ic, point, priority, fn, user, err).
 * Handlers of one point run in order of priority (higher first), then config order (the position of the
 * plugin's section under `plugins:`; plugins without one come after, in init order), then registration order.
 * The module that owns an operation fires its point with api->hook_invoke(point, payload, err).
 *
 * Each point has one mode, fixed here and enforced by the core's dispatcher:
 *   MUTATING  handlers may change the payload; each sees the previous ones' changes. An error is a veto.
 *   VETO      an error aborts the operation; its message reaches the client (FailedPrecondition unless the
 *             handler gave another class). The remaining handlers do not run.
 *   ADVISORY  errors are logged and the next handler runs; the operation goes on.
 *   POST      runs after the operation succeeded and never undoes it; errors are logged and counted in the
 *             plugin's status, and the next handler runs.
 *
 * Payload structs start with struct_size; fields are only ever appended. Strings a mutating handler
 * replaces are freed with api->free and set to a string from api->strdup. Label sets are berth_kv_t,
 * changed through api->kv_set/kv_unset.
 *
 * Threading: hook_invoke runs handlers on the calling thread. Daemon points run on the loop thread; the
 * others run on a thread-pool thread of the operation's handler, so handlers must be thread-safe and must
 * not block for unbounded time.
 */
#ifndef BERTH_HOOKS_H
#define BERTH_HOOKS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum berth_hook_point {
    /* VETO. Fired by the core after every plugin initialised and before READY=1 / any client is served.
     * An error stops the daemon (exit 1). Payload: NULL. */
    BERTH_HOOK_DAEMON_PRE_START = 0,
    /* ADVISORY. Fired by the core on shutdown, before the first fini. Best effort: not run if the daemon is
     * killed. Payload: NULL. */
    BERTH_HOOK_DAEMON_PRE_STOP = 1,
    /* MUTATING. Containers.Create, before anything is stored. Payload: berth_hook_container_create_t. */
    BERTH_HOOK_CONTAINER_PRE_CREATE = 2,
    /* MUTATING. Tasks.Create, before the spec is written to the bundle: handlers add OCI prestart hooks
     * with payload->add_prestart. Payload: berth_hook_container_start_t. */
    BERTH_HOOK_CONTAINER_PRE_START = 3,
    /* MUTATING. Containers.Update / Tasks.Update, before the update is applied.
     * Payload: berth_hook_container_update_t. */
    BERTH_HOOK_CONTAINER_PRE_UPDATE = 4,
    /* VETO. After an update was merged, before resources are applied to a running task.
     * Payload: berth_hook_container_update_t (read-only). */
    BERTH_HOOK_CONTAINER_POST_UPDATE = 5,
    /* VETO (PouchContainer's ImagePlugin.PostPull). Images.Create, or Images.Update changing the target: the
     * last step of ctr's pull and import, fired before the record is stored; an error aborts the call and
     * reaches the client. Handlers may read the target through the content store (content.h).
     * Payload: berth_hook_image_t. */
    BERTH_HOOK_IMAGE_POST_PULL = 6,
    /* MUTATING. Before a volume is created (the volumes module): handlers may change its options and
     * labels; an error vetoes the creation. Payload: berth_hook_volume_t (id = volume name). */
    BERTH_HOOK_VOLUME_PRE_CREATE = 7,
    /* MUTATING (ADVISORY before ABI minor 3, when nothing fired it). Before each network's CNI ADD (the
     * network module): handlers may add CNI_ARGS and runtime capabilities (a static IP, say); an error
     * vetoes the endpoint, and the task is not created. Payload: berth_hook_endpoint_t (id = container
     * id). */
    BERTH_HOOK_ENDPOINT_PRE_CREATE = 8,
    /* MUTATING. CRI CreateContainer, before the container is created. Payload: berth_hook_container_create_t. */
    BERTH_HOOK_CRI_PRE_CREATE_CONTAINER = 9,
    /* MUTATING. Fired by a transport after it built its handler table and before it serves, and again over
     * fresh handlers after a reload that finished or initialised a plugin: handlers may wrap or replace any
     * method's handler. Payload: berth_hook_api_handlers_t. */
    BERTH_HOOK_API_HANDLER_UPDATE = 10,
    BERTH_HOOK_POINT_COUNT = 11
} berth_hook_point_t;

typedef enum berth_hook_mode {
    BERTH_HOOK_MUTATING = 1,
    BERTH_HOOK_VETO = 2,
    BERTH_HOOK_ADVISORY = 3,
    BERTH_HOOK_POST = 4
} berth_hook_mode_t;

/* A handler. Returns 0 or a negative BERTH_E* with *err filled (api->error_make). */
typedef int (*berth_hook_fn)(void *user, berth_hook_point_t point, void *payload,
                             berth_error_t **err);

/* A string map (labels, annotations). Opaque; used through api->kv_*. */
typedef struct berth_kv_s berth_kv_t;

typedef struct berth_hook_container_create_s {
    uint32_t struct_size;
    const char *namespace_;
    const char *id;
    char *image;        /* mutable */
    char *runtime;      /* mutable: runtime name, e.g. io.containerd.runc.v2 */
    char *snapshotter;  /* mutable: pouch's multi-snapshotter use */
    char *snapshot_key; /* mutable */
    char *spec_json;    /* mutable: the OCI spec as JSON text, NULL when the request carries none */
    berth_kv_t *labels; /* mutable */
} berth_hook_container_create_t;

typedef struct berth_hook_container_start_s {
    uint32_t struct_size;
    const char *namespace_;
    const char *id;
    const char *bundle;    /* bundle directory */
    const char *spec_json; /* read-only */
    /* Adds an OCI prestart hook. Hooks run higher priority first; hooks already in the spec count as
     * priority 0 - their index. argv/env are NULL-terminated and copied. */
    int (*add_prestart)(struct berth_hook_container_start_s *self, int priority, const char *path,
                        const char *const *argv, const char *const *env, berth_error_t **err);
    void *priv; /* the invoker's */
} berth_hook_container_start_t;

typedef struct berth_hook_container_update_s {
    uint32_t struct_size;
    const char *namespace_;
    const char *id;
    const char *rootfs; /* may be NULL when no task runs */
    char *
        resources_json; /* mutable at pre-update: the requested resources, OCI LinuxResources JSON */
    berth_kv_t *env;    /* mutable at pre-update: the process env as NAME -> value */
    berth_kv_t *labels; /* mutable at pre-update */
} berth_hook_container_update_t;

typedef struct berth_hook_image_s {
    uint32_t struct_size;
    const char *namespace_;
    const char *name;          /* image reference */
    const char *target_digest; /* the manifest or index digest */
    const char *snapshotter;   /* the snapshotter it was unpacked into, NULL if not known */
    const char *target_media_type;
    int64_t target_size;
} berth_hook_image_t;

typedef struct berth_hook_generic_s {
    uint32_t struct_size;
    const char *namespace_;
    const char *id;
    berth_kv_t *options; /* mutable for MUTATING points */
} berth_hook_generic_t;

/* endpoint.pre-create's payload. Starts as berth_hook_generic_t does, so a handler written for that still
 * reads it. */
typedef struct berth_hook_endpoint_s {
    uint32_t struct_size;
    const char *namespace_;
    const char *id;      /* container (or pod sandbox) id */
    berth_kv_t *options; /* mutable: CNI_ARGS to add, as key -> value */
    const char *network; /* the network about to get the ADD */
    const char *ifname;  /* the interface it makes, e.g. "eth0" */
    const char
        *ports_json; /* the requested ports, CNI portMappings JSON: [{"hostPort":8080,...}] */
    berth_kv_t
        *capabilities; /* mutable: runtimeConfig entries by capability name, each a JSON value,
                               * e.g. "ips" -> ["10.88.7.7/16"] */
} berth_hook_endpoint_t;

/* volume.pre-create's payload. Starts as berth_hook_generic_t does. */
typedef struct berth_hook_volume_s {
    uint32_t struct_size;
    const char *namespace_;
    const char *id;      /* the volume name */
    berth_kv_t *options; /* mutable: driver options (type, size, device, o) */
    berth_kv_t *labels;  /* mutable */
} berth_hook_volume_t;

/* A unary RPC handler on serialized protobuf: request bytes in, response bytes out (allocated with
 * api->malloc, freed by the transport). flags: BERTH_RPC_INLINE runs it on the loop thread. */
typedef int (*berth_rpc_fn)(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                            uint8_t **resp, size_t *resp_len, berth_error_t **err);
#define BERTH_RPC_INLINE 0x1u
typedef struct berth_rpc_handler_s {
    berth_rpc_fn fn;
    void *user;
    uint32_t flags;
} berth_rpc_handler_t;

typedef struct berth_hook_api_handlers_s {
    uint32_t struct_size;
    const char *transport; /* the transport's URI */
    /* path: "/containerd.services.version.v1.Version/Version". lookup gives the current handler (to wrap
     * it: keep it and call it from yours); replace installs a new one. Both BERTH_ENOTFOUND for an unknown
     * path; replace may also add a new path. */
    int (*lookup)(struct berth_hook_api_handlers_s *self, const char *path,
                  berth_rpc_handler_t *out);
    int (*replace)(struct berth_hook_api_handlers_s *self, const char *path,
                   const berth_rpc_handler_t *h);
    void *priv; /* the transport's */
} berth_hook_api_handlers_t;

#ifdef __cplusplus
}
#endif
#endif /* BERTH_HOOKS_H */
