/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wire protocols of the CRI streaming server, as pure logic (no loop, no cri_t), so the unit tests
 * (cri.stream_units) drive them alone:
 *   - SPDY/3 framing (what moby/spdystream speaks under the "SPDY/3.1" upgrade) and its zlib header
 *     blocks with the SPDY/3 dictionary, one compression context per direction and connection;
 *   - the HTTP/1.1 request head the upgrade arrives in;
 *   - WebSocket: the handshake's accept key and the k8s channel subprotocols (a channel byte in front of
 *     every message; base64 text messages in the *.base64.* variants);
 *   - the remotecommand error stream: metav1.Status JSON (v4, v5) or the bare message (v1 .. v3).
 */
#ifndef BERTH_CRI_STREAM_PROTO_H
#define BERTH_CRI_STREAM_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib_z.h" /* opened on first use, by spdy_zlib_init */

/* ---- a growable byte buffer ---------------------------------------------------------------------- */

typedef struct sbuf {
    uint8_t *p;
    size_t len, cap;
} sbuf_t;

void sbuf_put(sbuf_t *b, const void *p, size_t n);
void sbuf_u32(sbuf_t *b, uint32_t v);   /* big endian */
void sbuf_consume(sbuf_t *b, size_t n); /* drops the first n bytes */
void sbuf_free(sbuf_t *b);

/* ---- SPDY/3 ---------------------------------------------------------------------------------------- */

enum {
    SPDY_DATA = 0, /* not a control type: data frames have none */
    SPDY_SYN_STREAM = 1,
    SPDY_SYN_REPLY = 2,
    SPDY_RST_STREAM = 3,
    SPDY_SETTINGS = 4,
    SPDY_PING = 6,
    SPDY_GOAWAY = 7,
    SPDY_HEADERS = 8,
    SPDY_WINDOW_UPDATE = 9,
};
#define SPDY_FLAG_FIN 0x01
#define SPDY_FLAG_UNIDIRECTIONAL 0x02
#define SPDY_RST_PROTOCOL_ERROR 1
#define SPDY_RST_INVALID_STREAM 2
#define SPDY_RST_REFUSED_STREAM 3
#define SPDY_RST_CANCEL 5
#define SPDY_MAX_FRAME (1u << 24) /* the 24-bit length */

typedef struct spdy_frame {
    int type; /* SPDY_DATA or a control type */
    uint8_t flags;
    uint32_t stream_id;  /* data, SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS, WINDOW_UPDATE */
    uint32_t value;      /* RST/GOAWAY status, PING id, WINDOW_UPDATE delta, GOAWAY last good id */
    const uint8_t *data; /* a data frame's payload, or the (compressed) header block */
    size_t len;
} spdy_frame_t;

/* One frame from the front of buf: its size (> 0), 0 when more bytes are needed, -1 when it is no
 * SPDY/3 frame (why says what). Pointers in *f point into buf. */
ssize_t spdy_frame_parse(const uint8_t *buf, size_t len, spdy_frame_t *f, const char **why);

/* The SPDY/3 header dictionary (its bytes, built once). */
const uint8_t *spdy_dictionary(size_t *len);

typedef struct spdy_zlib {
    z_stream in, out;
    int in_ok, out_ok;
} spdy_zlib_t;

int spdy_zlib_init(spdy_zlib_t *z);
void spdy_zlib_free(spdy_zlib_t *z);

/* Header name/value pairs: names lowercase; a multi-valued header's values joined by NUL on the wire,
 * only the first kept here. */
typedef struct spdy_headers {
    size_t n;
    char **names, **values;
} spdy_headers_t;

int spdy_headers_decode(spdy_zlib_t *z, const uint8_t *block, size_t len, spdy_headers_t *h,
                        const char **why);
const char *spdy_headers_get(const spdy_headers_t *h, const char *name);
void spdy_headers_free(spdy_headers_t *h);

/* Frames appended to out. Header lists are n pairs of (name, value), names lowercased on the wire. */
void spdy_put_data(sbuf_t *out, uint32_t stream_id, uint8_t flags, const void *p, size_t n);
int spdy_put_syn_stream(sbuf_t *out, spdy_zlib_t *z, uint32_t stream_id, uint8_t flags,
                        const char *const *names, const char *const *values, size_t n);
int spdy_put_syn_reply(sbuf_t *out, spdy_zlib_t *z, uint32_t stream_id, uint8_t flags,
                       const char *const *names, const char *const *values, size_t n);
void spdy_put_rst(sbuf_t *out, uint32_t stream_id, uint32_t status);
void spdy_put_ping(sbuf_t *out, uint32_t id);
void spdy_put_goaway(sbuf_t *out, uint32_t last_good, uint32_t status);

/* ---- HTTP/1.1 request head ------------------------------------------------------------------------- */

typedef struct http_req {
    char *method, *path, *query;
    size_t n;
    char **names, **values; /* names lowercased; repeated headers stay separate */
} http_req_t;

/* The head at the front of buf: its size (> 0), 0 when incomplete, -1 when malformed or too large. */
ssize_t http_req_parse(const char *buf, size_t len, http_req_t *r);
const char *http_req_header(const http_req_t *r, const char *name);
/* Every value of a (possibly repeated, comma-separated) header, trimmed, in order, into out (up to
 * max); returns how many. The strings are malloc'd. */
size_t http_req_tokens(const http_req_t *r, const char *name, char **out, size_t max);
void http_req_free(http_req_t *r);

/* ---- remotecommand ---------------------------------------------------------------------------------- */

typedef enum rc_proto {
    RC_V1 = 1, /* channel.k8s.io */
    RC_V2 = 2, /* v2.channel.k8s.io */
    RC_V3 = 3, /* v3.channel.k8s.io: + resize */
    RC_V4 = 4, /* v4.channel.k8s.io: + JSON status */
    RC_V5 = 5, /* v5.channel.k8s.io (WebSocket): + close signal 255 */
} rc_proto_t;

/* The client's preferred protocol we speak (kubelet's negotiation: the client's order), from the
 * X-Stream-Protocol-Version values (SPDY). 0 when none. */
int rc_spdy_negotiate(char *const *client, size_t n, const char **chosen);

/* What the error stream carries at the end: exit_code 0 and no message: success; exit_code > 0: the
 * NonZeroExitCode failure with an ExitCode cause; msg != NULL: an internal error with that message.
 * Returns a malloc'd string (possibly empty for v1..v3 success). */
char *rc_status(rc_proto_t proto, int exit_code, const char *msg);

/* The terminal sizes in a resize stream: whole JSON objects {"Width":..,"Height":..} from the front of
 * buf; each calls cb. Returns the bytes consumed (the rest is an incomplete object), -1 when not JSON. */
ssize_t rc_resize_parse(const char *buf, size_t len,
                        void (*cb)(void *user, unsigned width, unsigned height), void *user);

/* ---- WebSocket -------------------------------------------------------------------------------------- */

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455): 28 chars + NUL into out. */
int ws_accept_key(const char *key, char out[29]);

typedef struct ws_proto {
    const char *name; /* "" when the client named none */
    rc_proto_t version;
    int base64;
} ws_proto_t;

/* The first of the client's Sec-WebSocket-Protocol values kubelet's server accepts for remotecommand
 * (portforward: 0 for exec/attach). 0 and *out, or -1 when none fits. */
int ws_negotiate(char *const *client, size_t n, ws_proto_t *out);

/* A channel message's payload (the channel byte in front; base64 text in the base64 variants), malloc'd. */
uint8_t *ws_channel_encode(const ws_proto_t *p, int channel, const void *data, size_t n,
                           size_t *out_len);
/* An incoming message: its channel and payload (decoded into a malloc'd *data). -1 when malformed. */
int ws_channel_decode(const ws_proto_t *p, const uint8_t *msg, size_t n, int *channel,
                      uint8_t **data, size_t *data_len);

#endif /* BERTH_CRI_STREAM_PROTO_H */
