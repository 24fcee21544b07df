/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gRPC services as plugins.
 *
 * A gRPC service is a plugin of type "io.containerd.grpc.v1" (as containerd's are) whose `ops` is a
 * berth_grpc_service_v1_t: the full service name and a table of methods. The transport plugin
 * (io.berth.transport.v1.grpc) requires that type and serves every healthy instance, so any module, in tree
 * or out of tree, adds services by registering one. Handlers work on serialized protobuf bytes: modules
 * decode with their own protobuf-c code, and no protobuf type crosses this ABI.
 *
 * Threading (brief §4): a unary handler runs on a thread-pool thread, or inline on the loop thread when the
 * method has BERTH_RPC_INLINE (version, health, introspection: no blocking, no locks held long). Stream
 * callbacks and every berth_grpc_stream_api_t call happen on the loop thread; work done elsewhere comes back
 * with api->call_on_loop.
 *
 * Errors: return a negative BERTH_E* and fill *err; the transport sends the gRPC status containerd's errdefs
 * would (NotFound -> 5, AlreadyExists -> 6, InvalidArgument -> 3, FailedPrecondition -> 9, Unimplemented
 * -> 12, Unavailable -> 14, ...) with the message, in containerd's "<detail>: not found" style.
 */
#ifndef BERTH_GRPC_H
#define BERTH_GRPC_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "hooks.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BERTH_GRPC_SERVICE_TYPE "io.containerd.grpc.v1"
/* Method flag: the call needs a valid containerd-namespace header (missing: FailedPrecondition
 * "namespace is required", malformed: InvalidArgument), checked by the transport before the handler. */
#define BERTH_RPC_NAMESPACED 0x2u
#define BERTH_TRANSPORT_TYPE "io.berth.transport.v1"

typedef enum berth_rpc_kind {
    BERTH_RPC_UNARY = 0,
    BERTH_RPC_SERVER_STREAM = 1,
    BERTH_RPC_CLIENT_STREAM = 2,
    BERTH_RPC_BIDI_STREAM = 3
} berth_rpc_kind_t;

/* One call's stream, owned by the transport. Valid from `open` until `closed` returns. */
typedef struct berth_grpc_stream_s berth_grpc_stream_t;

/* What a stream handler can do with its stream (loop thread only). */
typedef struct berth_grpc_stream_api_s {
    uint32_t struct_size;
    /* Queues one response message (copied). BERTH_EUNAVAILABLE once the stream is finished or gone. */
    int (*send)(berth_grpc_stream_t *st, const uint8_t *msg, size_t len);
    /* Ends the call with a status: code 0 or a BERTH_E*; message may be NULL. `closed` follows. */
    void (*finish)(berth_grpc_stream_t *st, int code, const char *message);
    /* The containerd-namespace header of the call ("" when absent). */
    const char *(*namespace_)(const berth_grpc_stream_t *st);
    /* A per-stream pointer for the handler. */
    void (*set_user)(berth_grpc_stream_t *st, void *user);
    void *(*get_user)(const berth_grpc_stream_t *st);
    /* Response bytes queued and not yet taken by the client: a producer waits while this is large. */
    size_t (*pending)(const berth_grpc_stream_t *st);
    /* The containerd-lease header of the call ("" when absent): what the call creates joins that lease. */
    const char *(*lease)(const berth_grpc_stream_t *st);
    /* Since ABI minor 2 (check struct_size): `fn` hears of each request message still arriving, with the
     * stream's user pointer, each time more of it came: the first `have` of its `len` bytes, at msg (valid
     * during the call only). The whole message then comes through `message` as usual. Lets a handler
     * work on a big message while the rest of it travels. NULL: no more of that. */
    void (*set_part_handler)(berth_grpc_stream_t *st,
                             void (*fn)(void *user, const uint8_t *msg, size_t have, size_t len));
} berth_grpc_stream_api_t;

typedef struct berth_grpc_method_s {
    const char *name; /* "Subscribe"; the path is "/<service>/<name>" */
    berth_rpc_kind_t kind;
    uint32_t flags;                /* BERTH_RPC_INLINE (hooks.h), BERTH_RPC_NAMESPACED */
    const void *input_descriptor;  /* optional: the ProtobufCMessageDescriptor of the request */
    const void *output_descriptor; /* optional: of the response */
    /* BERTH_RPC_UNARY: the handler (hooks.h); `user` is the plugin instance. */
    berth_rpc_fn unary;
    /* streams: `open` gets the first request message (server streams) or an empty one (client and bidi
     * streams, whose messages then arrive through `message`). Returning an error ends the call with it. */
    int (*open)(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st,
                const uint8_t *req, size_t req_len, berth_error_t **err);
    int (*message)(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st,
                   const uint8_t *msg, size_t len, berth_error_t **err);
    /* The client half-closed (client and bidi streams). */
    void (*end_of_input)(void *instance, const berth_grpc_stream_api_t *sapi,
                         berth_grpc_stream_t *st);
    /* Exactly once per opened stream, whatever ended it (finish, cancel, deadline, disconnect). The
     * stream must not be used after this returns. */
    void (*closed)(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st);
} berth_grpc_method_t;

/* The `ops` of an io.containerd.grpc.v1 plugin. */
typedef struct berth_grpc_service_v1_s {
    uint32_t struct_size;
    const char *name; /* full name: "containerd.services.version.v1.Version" */
    const berth_grpc_method_t *methods;
    size_t n_methods;
} berth_grpc_service_v1_t;

#ifdef __cplusplus
}
#endif
#endif /* BERTH_GRPC_H */
