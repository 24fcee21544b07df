/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cri.stream_units: the streaming server's protocol logic alone (stream_proto.c): SPDY/3 frames and
 * zlib header blocks, the HTTP upgrade request, WebSocket through wslay with the k8s channel framing, the
 * remotecommand status and resize messages.
 */
#include <string.h>

#include <criterion/criterion.h>
#include <json-c/json.h>
#include <wslay/wslay.h>

#include "stream_proto.h"

/* ---- SPDY ---------------------------------------------------------------------------------------- */

Test(spdy, dictionary_is_spdy3s)
{
    size_t n;
    const uint8_t *d = spdy_dictionary(&n);
    cr_assert_eq(n, 1423); /* spdystream's headerDictionary: no NUL at the end */
    cr_assert(memcmp(d, "\0\0\0\7options\0\0\0\4head", 19) == 0);
    cr_assert(memcmp(d + n - 6, "enq=0.", 6) == 0);
    uLong adler = adler32(adler32(0, NULL, 0), d, (uInt)n);
    cr_assert_eq(adler, 0xe3c6a7c2ul, "the dictionary's id is %lx", adler);
}

static void
check_roundtrip(spdy_zlib_t *client, spdy_zlib_t *server, uint32_t id, const char *type)
{
    const char *names[] = {"streamType", "port"}, *values[] = {type, "8080"};
    sbuf_t out = {0};
    cr_assert_eq(spdy_put_syn_stream(&out, client, id, 0, names, values, 2), 0);
    spdy_frame_t f;
    const char *why = NULL;
    cr_assert_eq(spdy_frame_parse(out.p, out.len, &f, &why), (ssize_t)out.len);
    cr_assert_eq(f.type, SPDY_SYN_STREAM);
    cr_assert_eq(f.stream_id, id);
    spdy_headers_t h;
    cr_assert_eq(spdy_headers_decode(server, f.data, f.len, &h, &why), 0, "%s", why);
    cr_assert_eq(h.n, 2);
    cr_assert_str_eq(h.names[0], "streamtype"); /* lowercased on the wire */
    cr_assert_str_eq(spdy_headers_get(&h, "streamtype"), type);
    cr_assert_str_eq(spdy_headers_get(&h, "port"), "8080");
    spdy_headers_free(&h);
    sbuf_free(&out);
}

Test(spdy, header_blocks_share_one_zlib_stream_per_direction)
{
    spdy_zlib_t client, server;
    cr_assert_eq(spdy_zlib_init(&client), 0);
    cr_assert_eq(spdy_zlib_init(&server), 0);
    check_roundtrip(&client, &server, 1, "error");
    check_roundtrip(&client, &server, 3,
                    "stdout"); /* the second block refers to the first's window */
    check_roundtrip(&client, &server, 5, "stderr");
    spdy_zlib_free(&client);
    spdy_zlib_free(&server);
}

Test(spdy, header_block_out_of_order_fails)
{
    spdy_zlib_t client, server;
    spdy_zlib_init(&client);
    spdy_zlib_init(&server);
    const char *names[] = {"streamtype"}, *values[] = {"stdin"};
    sbuf_t a = {0}, b = {0};
    spdy_put_syn_reply(&a, &client, 1, 0, names, values, 1);
    spdy_put_syn_reply(&b, &client, 3, 0, names, values, 1);
    spdy_frame_t f;
    const char *why;
    spdy_headers_t h;
    cr_assert_gt(spdy_frame_parse(b.p, b.len, &f, &why), 0);
    /* the second block alone has no zlib header: a decoder that skipped the first one fails */
    cr_assert_eq(spdy_headers_decode(&server, f.data, f.len, &h, &why), -1);
    sbuf_free(&a);
    sbuf_free(&b);
    spdy_zlib_free(&client);
    spdy_zlib_free(&server);
}

Test(spdy, data_and_control_frames)
{
    sbuf_t out = {0};
    spdy_put_data(&out, 7, SPDY_FLAG_FIN, "hello", 5);
    spdy_put_rst(&out, 9, SPDY_RST_CANCEL);
    spdy_put_ping(&out, 42);
    spdy_put_goaway(&out, 11, 0);
    static const uint8_t data_wire[] = {0, 0, 0, 7, 1, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'};
    cr_assert(memcmp(out.p, data_wire, sizeof(data_wire)) == 0);
    static const uint8_t ping_wire[] = {0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 42};
    cr_assert(memcmp(out.p + 13 + 16, ping_wire, sizeof(ping_wire)) == 0);
    spdy_frame_t f;
    const char *why;
    size_t off = 0;
    cr_assert_eq(spdy_frame_parse(out.p, 12, &f, &why), 0); /* incomplete */
    ssize_t n = spdy_frame_parse(out.p, out.len, &f, &why);
    cr_assert_eq(n, 13);
    cr_assert(f.type == SPDY_DATA && f.stream_id == 7 && f.flags == SPDY_FLAG_FIN && f.len == 5);
    cr_assert(memcmp(f.data, "hello", 5) == 0);
    off += (size_t)n;
    n = spdy_frame_parse(out.p + off, out.len - off, &f, &why);
    cr_assert(f.type == SPDY_RST_STREAM && f.stream_id == 9 && f.value == SPDY_RST_CANCEL);
    off += (size_t)n;
    n = spdy_frame_parse(out.p + off, out.len - off, &f, &why);
    cr_assert(f.type == SPDY_PING && f.value == 42);
    off += (size_t)n;
    n = spdy_frame_parse(out.p + off, out.len - off, &f, &why);
    cr_assert(f.type == SPDY_GOAWAY && f.value == 11);
    cr_assert_eq(off + (size_t)n, out.len);
    sbuf_free(&out);
}

Test(spdy, rejects_other_versions_and_short_frames)
{
    static const uint8_t v2[] = {0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1};
    static const uint8_t short_rst[] = {0x80, 3, 0, 3, 0, 0, 0, 4, 0, 0, 0, 1};
    spdy_frame_t f;
    const char *why = NULL;
    cr_assert_eq(spdy_frame_parse(v2, sizeof(v2), &f, &why), -1);
    cr_assert_not_null(why);
    cr_assert_eq(spdy_frame_parse(short_rst, sizeof(short_rst), &f, &why), -1);
}

/* ---- HTTP ---------------------------------------------------------------------------------------- */

static const char upgrade_req[] = "POST /exec/abc123?x=1 HTTP/1.1\r\n"
                                  "Host: 127.0.0.1:1234\r\n"
                                  "Connection: Upgrade\r\n"
                                  "Upgrade: SPDY/3.1\r\n"
                                  "X-Stream-Protocol-Version: v5.channel.k8s.io\r\n"
                                  "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
                                  "x-stream-protocol-version: v3.channel.k8s.io, channel.k8s.io\r\n"
                                  "\r\nSPDYBYTES";

Test(http, upgrade_request_and_negotiation)
{
    http_req_t r;
    cr_assert_eq(http_req_parse(upgrade_req, 40, &r), 0); /* incomplete */
    ssize_t n = http_req_parse(upgrade_req, sizeof(upgrade_req) - 1, &r);
    cr_assert_eq(n, (ssize_t)(sizeof(upgrade_req) - 1 - strlen("SPDYBYTES")));
    cr_assert_str_eq(r.method, "POST");
    cr_assert_str_eq(r.path, "/exec/abc123");
    cr_assert_str_eq(r.query, "x=1");
    cr_assert_str_eq(http_req_header(&r, "upgrade"), "SPDY/3.1");
    char *tok[8];
    size_t k = http_req_tokens(&r, "X-Stream-Protocol-Version", tok, 8);
    cr_assert_eq(k, 4);
    const char *chosen = NULL;
    /* v5 is WebSocket-only: the client's first one we speak over SPDY is v4 */
    cr_assert_eq(rc_spdy_negotiate(tok, k, &chosen), RC_V4);
    cr_assert_str_eq(chosen, "v4.channel.k8s.io");
    cr_assert_eq(rc_spdy_negotiate(tok + 3, 1, &chosen), RC_V1);
    cr_assert_eq(rc_spdy_negotiate(tok, 1, &chosen), 0);
    for (size_t i = 0; i < k; i++)
        free(tok[i]);
    http_req_free(&r);
}

Test(http, malformed)
{
    http_req_t r;
    cr_assert_eq(http_req_parse("GARBAGE\r\n\r\n", 11, &r), -1);
    cr_assert_eq(http_req_parse("GET / HTTP/1.1\r\nNoColon\r\n\r\n", 27, &r), -1);
}

/* ---- remotecommand -------------------------------------------------------------------------------- */

Test(remotecommand, v4_status_json)
{
    char *s = rc_status(RC_V4, 0, NULL);
    json_object *o = json_tokener_parse(s);
    cr_assert_not_null(o);
    cr_assert_str_eq(json_object_get_string(json_object_object_get(o, "status")), "Success");
    json_object_put(o);
    free(s);

    s = rc_status(RC_V4, 7, NULL);
    o = json_tokener_parse(s);
    cr_assert_str_eq(json_object_get_string(json_object_object_get(o, "status")), "Failure");
    cr_assert_str_eq(json_object_get_string(json_object_object_get(o, "reason")),
                     "NonZeroExitCode");
    json_object *causes = json_object_object_get(json_object_object_get(o, "details"), "causes");
    cr_assert_eq(json_object_array_length(causes), 1);
    json_object *c = json_object_array_get_idx(causes, 0);
    /* metav1.StatusCause's Type is "reason" in JSON; client-go parses the code from its message */
    cr_assert_str_eq(json_object_get_string(json_object_object_get(c, "reason")), "ExitCode");
    cr_assert_str_eq(json_object_get_string(json_object_object_get(c, "message")), "7");
    json_object_put(o);
    free(s);

    s = rc_status(RC_V5, 0, "no such process");
    o = json_tokener_parse(s);
    cr_assert_str_eq(json_object_get_string(json_object_object_get(o, "message")),
                     "no such process");
    json_object_put(o);
    free(s);
}

Test(remotecommand, v1_status_is_the_message)
{
    char *s = rc_status(RC_V2, 0, NULL);
    cr_assert_str_eq(s, "");
    free(s);
    s = rc_status(RC_V3, 0, "boom");
    cr_assert_str_eq(s, "boom");
    free(s);
}

static void
on_size(void *user, unsigned w, unsigned h)
{
    unsigned *sz = user;
    sz[0]++;
    sz[1] = w;
    sz[2] = h;
}

Test(remotecommand, resize_messages)
{
    const char in[] = "{\"Width\":80,\"Height\":24}{\"Width\":132,\"Height\":43}{\"Width\":1";
    unsigned sz[3] = {0};
    ssize_t n = rc_resize_parse(in, sizeof(in) - 1, on_size, sz);
    cr_assert_eq(sz[0], 2);
    cr_assert(sz[1] == 132 && sz[2] == 43);
    cr_assert_eq(n, (ssize_t)(sizeof(in) - 1 - strlen("{\"Width\":1")));
    cr_assert_eq(rc_resize_parse("]]", 2, on_size, sz), -1);
}

/* ---- WebSocket ------------------------------------------------------------------------------------ */

Test(ws, accept_key_rfc6455)
{
    char out[29];
    cr_assert_eq(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
    cr_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

Test(ws, negotiation_as_kubelet)
{
    char *v5[] = {"v5.channel.k8s.io", "v4.channel.k8s.io"};
    char *b64[] = {"bogus", "v4.base64.channel.k8s.io"};
    char *none[] = {"v5.base64.channel.k8s.io"};
    ws_proto_t p;
    cr_assert_eq(ws_negotiate(v5, 2, &p), 0);
    cr_assert(p.version == RC_V5 && !p.base64);
    cr_assert_eq(ws_negotiate(b64, 2, &p), 0);
    cr_assert(p.version == RC_V4 && p.base64);
    cr_assert_eq(ws_negotiate(none, 1, &p), -1);
}

Test(ws, channel_framing)
{
    ws_proto_t bin = {"v5.channel.k8s.io", RC_V5, 0}, b64 = {"base64.channel.k8s.io", RC_V1, 1};
    size_t n;
    uint8_t *m = ws_channel_encode(&bin, 1, "out", 3, &n);
    cr_assert(n == 4 && m[0] == 1 && memcmp(m + 1, "out", 3) == 0);
    free(m);
    m = ws_channel_encode(&b64, 2, "hello", 5, &n);
    cr_assert_eq(n, 9);
    cr_assert(memcmp(m, "2aGVsbG8=", 9) == 0);
    int ch;
    uint8_t *d;
    size_t dl;
    cr_assert_eq(ws_channel_decode(&b64, m, n, &ch, &d, &dl), 0);
    cr_assert(ch == 2 && dl == 5 && memcmp(d, "hello", 5) == 0);
    free(d);
    free(m);
    cr_assert_eq(ws_channel_decode(&b64, (const uint8_t *)"0abc", 4, &ch, &d, &dl), -1);
}

/* wslay client and server contexts wired together through two memory pipes */
typedef struct pipe_end {
    sbuf_t *in, *out;
    int got;
    int channel;
    char text[64];
    int closed;
} pipe_end_t;

static ssize_t
mem_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    (void)flags;
    pipe_end_t *e = user;
    if (e->in->len == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < e->in->len ? len : e->in->len;
    memcpy(buf, e->in->p, n);
    sbuf_consume(e->in, n);
    return (ssize_t)n;
}

static ssize_t
mem_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
    (void)ctx, (void)flags;
    pipe_end_t *e = user;
    sbuf_put(e->out, data, len);
    return (ssize_t)len;
}

static int
mem_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    (void)ctx, (void)user;
    memset(buf, 0x5a, len);
    return 0;
}

static void
mem_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    (void)ctx;
    pipe_end_t *e = user;
    if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
        e->closed = 1;
        return;
    }
    ws_proto_t bin = {"v5.channel.k8s.io", RC_V5, 0};
    uint8_t *d;
    size_t dl;
    cr_assert_eq(ws_channel_decode(&bin, arg->msg, arg->msg_length, &e->channel, &d, &dl), 0);
    memcpy(e->text, d, dl < 63 ? dl : 63);
    e->text[dl < 63 ? dl : 63] = 0;
    free(d);
    e->got++;
}

Test(ws, messages_through_wslay)
{
    sbuf_t c2s = {0}, s2c = {0};
    pipe_end_t ce = {.in = &s2c, .out = &c2s}, se = {.in = &c2s, .out = &s2c};
    struct wslay_event_callbacks cb = {mem_recv, mem_send, mem_genmask, NULL, NULL, NULL, mem_msg};
    wslay_event_context_ptr client, server;
    cr_assert_eq(wslay_event_context_client_init(&client, &cb, &ce), 0);
    cr_assert_eq(wslay_event_context_server_init(&server, &cb, &se), 0);
    ws_proto_t bin = {"v5.channel.k8s.io", RC_V5, 0};
    size_t n;
    uint8_t *m = ws_channel_encode(&bin, 0, "typed", 5, &n);
    struct wslay_event_msg msg = {WSLAY_BINARY_FRAME, m, n};
    cr_assert_eq(wslay_event_queue_msg(client, &msg), 0);
    cr_assert_eq(wslay_event_send(client), 0);
    free(m);
    cr_assert_eq(c2s.p[0], 0x82); /* FIN + binary */
    cr_assert(c2s.p[1] & 0x80);   /* a client masks */
    cr_assert_eq(wslay_event_recv(server), 0);
    cr_assert_eq(se.got, 1);
    cr_assert_eq(se.channel, 0);
    cr_assert_str_eq(se.text, "typed");
    m = ws_channel_encode(&bin, 1, "output", 6, &n);
    msg = (struct wslay_event_msg){WSLAY_BINARY_FRAME, m, n};
    wslay_event_queue_msg(server, &msg);
    wslay_event_send(server);
    free(m);
    cr_assert_eq(s2c.p[1] & 0x80, 0); /* a server does not */
    wslay_event_recv(client);
    cr_assert(ce.got == 1 && ce.channel == 1);
    cr_assert_str_eq(ce.text, "output");
    /* a close from the server reaches the client as a close */
    wslay_event_queue_close(server, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
    wslay_event_send(server);
    wslay_event_recv(client);
    cr_assert(ce.closed);
    wslay_event_context_free(client);
    wslay_event_context_free(server);
    sbuf_free(&c2s);
    sbuf_free(&s2c);
}
