/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libberth-client's insides: the gRPC transport every wrapper calls, and small shared helpers. Not installed.
 *
 * Method names are gRPC paths: "/containerd.services.images.v1.Images/Get". Messages are protobuf-c's,
 * generated from containerd's API Go module (services/..., types/...) and berth's abi/proto.
 */
#ifndef BERTH_CLIENT_INTERNAL_H
#define BERTH_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>

#include <protobuf-c/protobuf-c.h>

#include "google/protobuf/timestamp.pb-c.h"

#include "berth/client.h"

#define BC_EXPORT __attribute__((visibility("default")))

#ifndef BC_VERSION
#define BC_VERSION "0"
#endif

/* The client (client.c makes it; the pool is the transport's). */
struct bc_conn;
struct berth_client_s {
    char *address;          /* the socket path ("unix://" stripped) */
    char *namespace_;       /* the default namespace, never "" */
    int timeout_ms;         /* unary calls' default; <= 0: none */
    int connect_timeout_ms; /* unused on a unix socket: connect() does not wait for the server */
    pthread_mutex_t pool_mu;
    struct bc_conn *pool; /* idle connections, most recently used first */
    size_t n_pool;
};
/* Closes the pooled connections (berth_client_free). */
void bc_transport_close(berth_client_t *c);

/* ---- errors (client.c) ---- */
/* Sets *err (when err is non-NULL) and returns code. */
int bc_error(berth_error_t **err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefixes (*err)->message with "ctx: " and returns code; nothing without *err. */
int bc_error_wrap(berth_error_t **err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A gRPC status code to a BERTH_E* code, as containerd's errdefs.FromGRPC */
int bc_code_from_grpc(int grpc_status);

/* ---- calls (transport.c) ---- */
/* The namespace of one call ("" never: the client's default at least). */
const char *bc_namespace(const berth_client_t *c, const berth_call_t *call);
/* The call's timeout in ms, -1 for none. */
int bc_timeout_ms(const berth_client_t *c, const berth_call_t *call);

/* One request, one response. *resp is protobuf_c_message_free_unpacked'ed by the caller (NULL allocator).
 * resp_desc NULL: the response body is ignored (Empty). */
int bc_unary(berth_client_t *c, const berth_call_t *call, const char *method,
             const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
             ProtobufCMessage **resp, berth_error_t **err);

/* The same with the messages as bytes (no proto at hand: grpc.health.v1). *resp is malloc'ed. */
int bc_unary_raw(berth_client_t *c, const berth_call_t *call, const char *method,
                 const uint8_t *req, size_t req_len, uint8_t **resp, size_t *resp_len,
                 berth_error_t **err);

/* client-run: the lease every call of this thread runs under (the "containerd-lease" header; NULL: none),
 * set around a multi-call operation such as a container create, as containerd's client leases its ctx.
 * Defined in containers.c. */
extern __thread const char *bc_thread_lease;

/* A streaming call on a connection of its own, taken from the pool and given back (or closed) at free. The
 * call's timeout covers the whole stream. send/recv/close_send are for the thread that owns the stream;
 * bc_stream_cancel may come from any thread and makes a blocked recv return BERTH_ECANCELED. */
typedef struct bc_stream bc_stream_t;
int bc_stream_open(berth_client_t *c, const berth_call_t *call, const char *method,
                   bc_stream_t **out, berth_error_t **err);
/* Queues msg and writes what flow control allows; returns once at most 1 MiB is left unsent (the rest
 * leaves while the owner goes on calling send, close_send or recv). */
int bc_stream_send(bc_stream_t *s, const ProtobufCMessage *msg, berth_error_t **err);
/* Half-closes: the server sees the end of the client's messages (END_STREAM). */
int bc_stream_close_send(bc_stream_t *s, berth_error_t **err);
/* 1 and *msg: a message; 0: the server ended the stream with OK; < 0: its status (or a local error). */
int bc_stream_recv(bc_stream_t *s, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **msg,
                   berth_error_t **err);
void bc_stream_cancel(bc_stream_t *s);
/* Frees the stream. One the server has not ended yet (recv has not returned 0 or an error) is reset
 * first (RST_STREAM CANCEL) and its connection closed: read to the end to keep the connection pooled. */
void bc_stream_free(bc_stream_t *s);

/* ---- conversions (util.c) ---- */
char *bc_strdup(const char *s); /* NULL -> "" ; aborts never: NULL on ENOMEM */
int64_t bc_ts_ns(const Google__Protobuf__Timestamp *ts);
/* protobuf-c map entries (key/value string pairs) to a berth_kv_t array and back */
int bc_kv_from_map(void **entries, size_t n, berth_kv_t **out, size_t *n_out);
/* kv as protobuf-c map entries of entry_desc (a generated *__LabelsEntry descriptor) for a request: an
 * array of n entry pointers (cast it to the field's type) in one block, freed with free(); the strings are
 * kv's, not copied. NULL when n is 0 (or on ENOMEM: check n). */
void **bc_map_from_kv(const ProtobufCMessageDescriptor *entry_desc, const berth_kv_t *kv, size_t n);
const char *bc_kv_get(const berth_kv_t *kv, size_t n, const char *key);

/* A protobuf-c message as JSON text (protobuf's JSON mapping: lowerCamelCase names, int64 as strings, Any's
 * value decoded when the library knows its type, else base64). Caller frees. NULL on ENOMEM. */
char *bc_message_json(const ProtobufCMessage *msg);
/* The descriptor of a type URL the library knows ("containerd.events.TaskExit"), else NULL */
const ProtobufCMessageDescriptor *bc_descriptor_for(const char *type_url);

#endif /* BERTH_CLIENT_INTERNAL_H */
