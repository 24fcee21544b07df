/* SPDX-License-Identifier: Apache-2.0 */
/*
 * containerd's Streaming service (containerd.services.streaming.v1.Streaming) and the streams it opens.
 *
 * A client opens Stream, sends StreamInit{id}; the service registers the stream under (namespace, id) and
 * answers with an Any holding google.protobuf.Empty. A transfer then names the stream (progress, auth,
 * import/export data) and its worker uses it from a pool thread through the blocking calls below; the gRPC
 * side runs on the loop thread (messages come in through the transport's callbacks, go out through
 * api->call_on_loop). Any type URLs are proto full names without a prefix ("containerd.types.transfer.Data"),
 * as containerd's typeurl writes them; a received "type.googleapis.com/" prefix is accepted.
 */
#ifndef BERTH_TRANSFER_STREAMS_H
#define BERTH_TRANSFER_STREAMS_H

#include <stddef.h>
#include <stdint.h>

#include <berth/error.h>
#include <berth/grpc.h>
#include <berth/module.h>

typedef struct streams_s streams_t; /* the registry of open streams, one per transfer plugin */
typedef struct xstream_s xstream_t; /* one open stream, referenced */

int streams_new(const berth_core_api_t *api, const berth_logger_t *log, streams_t **out,
                berth_error_t **err);
void streams_free(streams_t *m);
/* The Streaming service's method table (its instance is the streams_t). */
extern const berth_grpc_service_v1_t streaming_service;

/* Takes the stream registered as id in namespace ns (a reference: release with xstream_release). A stream is
 * taken at most once. NotFound when there is none after waiting up to timeout_ms for it to register. */
int streams_take(streams_t *m, const char *ns, const char *id, int timeout_ms, xstream_t **out,
                 berth_error_t **err);
void xstream_release(xstream_t *s);

/* Sends one Any. Blocks while the client has not taken what was sent before (transport backpressure).
 * Unavailable once the client went away. */
int xstream_send(xstream_t *s, const char *type_url, const uint8_t *value, size_t len,
                 berth_error_t **err);
/* Receives the next Any (type_url and value malloc'd). 1 on a message, 0 at end of input (client half-closed),
 * negative on error; DeadlineExceeded after timeout_ms (-1 waits for ever). */
int xstream_recv(xstream_t *s, char **type_url, uint8_t **value, size_t *len, int timeout_ms,
                 berth_error_t **err);
/* Ends the stream with OK (the client sees EOF). Idempotent. */
void xstream_close(xstream_t *s);

/* Byte streams in containerd's transfer framing (Data messages, WindowUpdate credits of 64 KiB). */
/* Reader side (import): sends window updates, returns up to len bytes; 0 at EOF. */
int xstream_read(xstream_t *s, void *buf, size_t len, size_t *got, berth_error_t **err);
/* Writer side (export): waits for window credit from the client, sends Data chunks of at most 32 KiB. The
 * last 64 KiB written stay held until xstream_write_end. */
int xstream_write(xstream_t *s, const void *buf, size_t len, berth_error_t **err);
/* Sends the held bytes and waits (up to timeout_ms, -1 for ever) until the client acknowledged taking every
 * byte (its next WindowUpdate) or closed its side. Then the stream may be closed. */
int xstream_write_end(xstream_t *s, int timeout_ms, berth_error_t **err);

#endif
