/* SPDX-License-Identifier: Apache-2.0 */
/*
 * grpcc: a small gRPC-over-HTTP/2 client for tests, on nghttp2 and a unix socket. It sends one request
 * message (or a deliberately broken one) on N concurrent streams and prints what came back, so the tests
 * can check grpc-status exactly where h2load and ctr cannot.
 *
 *   grpcc SOCKET /pkg.Service/Method [--ns NS] [--hex HEX] [--publish TOPIC TYPE_URL VALUE]
 *         [--compressed] [--size N] [--streams N] [--timeout T] [--content-type CT] [--expect CODE]
 *         [--header NAME=VALUE]...
 *
 * --header adds a header after the others (up to 8; repeat a name to send it more than once).
 * --in FILE sends FILE's bytes as the request message (what `protoc --encode` wrote); --out FILE writes the
 * first stream's response body as it came (gRPC's 5-byte frame headers included) for `protoc --decode`.
 *
 * Prints one line per stream: "stream N grpc-status S messages M bytes B grpc-message <text>", then
 * "summary ok=<streams with the expected or zero status> total=<N>". Exit status 0 when every stream got
 * --expect (default 0), 1 otherwise, 2 on usage or connection errors.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

typedef struct call {
    int32_t id;
    int status; /* -1 until trailers */
    char message[512];
    int http_status;
    size_t bytes;
    int messages;
    int done;
    char text[16384]; /* the response bytes, non-printable ones as '.' */
} call_t;

typedef struct client {
    int fd;
    nghttp2_session *ng;
    uint8_t *body;
    size_t body_len;
    call_t *calls;
    int ncalls;
    int finished;
    FILE *out; /* --out: the first stream's response body */
} client_t;

typedef struct body_src {
    const uint8_t *data;
    size_t len, off;
} body_src_t;

static call_t *
call_of(client_t *c, int32_t id)
{
    for (int i = 0; i < c->ncalls; i++)
        if (c->calls[i].id == id)
            return &c->calls[i];
    return NULL;
}

static ssize_t
send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *user)
{
    client_t *c = user;
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
    if (n < 0)
        return errno == EAGAIN ? NGHTTP2_ERR_WOULDBLOCK : NGHTTP2_ERR_CALLBACK_FAILURE;
    return n;
}

static int
on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
          const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    call_t *call = call_of(user, f->hd.stream_id);
    if (call == NULL)
        return 0;
    if (nlen == 11 && memcmp(name, "grpc-status", 11) == 0)
        call->status = atoi((const char *)value);
    else if (nlen == 12 && memcmp(name, "grpc-message", 12) == 0)
        snprintf(call->message, sizeof(call->message), "%.*s", (int)vlen, value);
    else if (nlen == 7 && memcmp(name, ":status", 7) == 0)
        call->http_status = atoi((const char *)value);
    return 0;
}

static int
on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *user)
{
    client_t *c = user;
    call_t *call = call_of(c, id);
    if (call == NULL)
        return 0;
    if (c->out && call == &c->calls[0])
        fwrite(data, 1, len, c->out);
    for (size_t i = 0; i < len && call->bytes + i < sizeof(call->text) - 1; i++)
        call->text[call->bytes + i] = data[i] >= 0x20 && data[i] < 0x7f ? (char)data[i] : '.';
    call->bytes += len;
    return 0;
}

static int
on_close(nghttp2_session *s, int32_t id, uint32_t code, void *user)
{
    client_t *c = user;
    call_t *call = call_of(c, id);
    if (call && !call->done) {
        call->done = 1;
        if (call->status < 0 && code != 0)
            snprintf(call->message, sizeof(call->message), "stream reset: %s",
                     nghttp2_http2_strerror(code));
        c->finished++;
    }
    return 0;
}

static ssize_t
read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
          nghttp2_data_source *src, void *user)
{
    body_src_t *b = src->ptr;
    size_t n = b->len - b->off < len ? b->len - b->off : len;
    memcpy(buf, b->data + b->off, n);
    b->off += n;
    if (b->off == b->len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static size_t
put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    do {
        p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* field <num>, wire type 2 (bytes) */
static size_t
put_bytes(uint8_t *p, int num, const void *data, size_t len)
{
    size_t n = put_varint(p, (uint64_t)(num << 3 | 2));
    n += put_varint(p + n, len);
    memcpy(p + n, data, len);
    return n + len;
}

/* PublishRequest{topic: 1, event: 2 Any{type_url: 1, value: 2}} */
static size_t
encode_publish(uint8_t *out, const char *topic, const char *type_url, const char *value)
{
    uint8_t any[4096];
    size_t an = put_bytes(any, 1, type_url, strlen(type_url));
    an += put_bytes(any + an, 2, value, strlen(value));
    size_t n = put_bytes(out, 1, topic, strlen(topic));
    return n + put_bytes(out + n, 2, any, an);
}

static size_t
decode_hex(uint8_t *out, const char *hex)
{
    size_t n = 0;
    for (; hex[0] && hex[1]; hex += 2) {
        unsigned v;
        sscanf(hex, "%2x", &v);
        out[n++] = (uint8_t)v;
    }
    return n;
}

static int
connect_unix(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fprintf(stderr, "grpcc: connect %s: %s\n", path, strerror(errno));
        exit(2);
    }
    return fd;
}

static void
pump(client_t *c, int timeout_ms)
{
    while (c->finished < c->ncalls &&
           (nghttp2_session_want_read(c->ng) || nghttp2_session_want_write(c->ng))) {
        if (nghttp2_session_send(c->ng) != 0)
            break;
        struct pollfd p = {c->fd, POLLIN, 0};
        int r = poll(&p, 1, timeout_ms);
        if (r <= 0)
            break;
        uint8_t buf[65536];
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n <= 0 || nghttp2_session_mem_recv(c->ng, buf, (size_t)n) < 0)
            break;
    }
}

int
main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: grpcc SOCKET PATH [options]\n");
        return 2;
    }
    const char *ns = "default", *timeout = NULL, *ctype = "application/grpc", *out = NULL;
    static uint8_t msg[1 << 22];
    size_t mlen = 0;
    int compressed = 0, streams = 1, expect = 0;
    long declared = -1;
    const char *extra[8];
    size_t nextra = 0;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--ns") == 0 && i + 1 < argc)
            ns = argv[++i];
        else if (strcmp(argv[i], "--hex") == 0 && i + 1 < argc)
            mlen = decode_hex(msg, argv[++i]);
        else if (strcmp(argv[i], "--in") == 0 && i + 1 < argc) {
            FILE *f = fopen(argv[++i], "rb");
            if (f == NULL) {
                fprintf(stderr, "grpcc: %s: cannot open\n", argv[i]);
                return 2;
            }
            mlen = fread(msg, 1, sizeof(msg), f);
            fclose(f);
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out = argv[++i];
        else if (strcmp(argv[i], "--publish") == 0 && i + 3 < argc)
            mlen = encode_publish(msg, argv[i + 1], argv[i + 2], argv[i + 3]), i += 3;
        else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
            mlen = (size_t)atol(argv[++i]) % sizeof(msg), memset(msg, 0, mlen);
        else if (strcmp(argv[i], "--declared-len") == 0 && i + 1 < argc)
            declared = atol(argv[++i]);
        else if (strcmp(argv[i], "--compressed") == 0)
            compressed = 1;
        else if (strcmp(argv[i], "--streams") == 0 && i + 1 < argc)
            streams = atoi(argv[++i]);
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            timeout = argv[++i];
        else if (strcmp(argv[i], "--content-type") == 0 && i + 1 < argc)
            ctype = argv[++i];
        else if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc)
            expect = atoi(argv[++i]);
        else if (strcmp(argv[i], "--header") == 0 && i + 1 < argc && nextra < 8 &&
                 strchr(argv[i + 1], '=') != NULL)
            extra[nextra++] = argv[++i];
        else {
            fprintf(stderr, "grpcc: bad argument %s\n", argv[i]);
            return 2;
        }
    }
    client_t c = {.fd = connect_unix(argv[1])};
    if (out && (c.out = fopen(out, "wb")) == NULL) {
        fprintf(stderr, "grpcc: %s: cannot create\n", out);
        return 2;
    }
    c.body_len = 5 + mlen;
    c.body = malloc(c.body_len);
    size_t len = declared >= 0 ? (size_t)declared : mlen;
    c.body[0] = (uint8_t)compressed;
    c.body[1] = (uint8_t)(len >> 24), c.body[2] = (uint8_t)(len >> 16),
    c.body[3] = (uint8_t)(len >> 8);
    c.body[4] = (uint8_t)len;
    memcpy(c.body + 5, msg, mlen);
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
    nghttp2_session_client_new(&c.ng, cbs, &c);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100000}};
    nghttp2_submit_settings(c.ng, NGHTTP2_FLAG_NONE, settings, 1);
    c.calls = calloc((size_t)streams, sizeof(call_t));
    body_src_t *srcs = calloc((size_t)streams, sizeof(body_src_t));
    for (int i = 0; i < streams; i++) {
        nghttp2_nv hdrs[16] = {
            {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
            {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
            {(uint8_t *)":path", (uint8_t *)argv[2], 5, strlen(argv[2]), 0},
            {(uint8_t *)":authority", (uint8_t *)"localhost", 10, 9, 0},
            {(uint8_t *)"content-type", (uint8_t *)ctype, 12, strlen(ctype), 0},
            {(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, 0},
        };
        size_t nh = 6;
        if (ns[0])
            hdrs[nh++] =
                (nghttp2_nv){(uint8_t *)"containerd-namespace", (uint8_t *)ns, 20, strlen(ns), 0};
        if (timeout)
            hdrs[nh++] =
                (nghttp2_nv){(uint8_t *)"grpc-timeout", (uint8_t *)timeout, 12, strlen(timeout), 0};
        for (size_t h = 0; h < nextra; h++) {
            const char *eq = strchr(extra[h], '=');
            hdrs[nh++] = (nghttp2_nv){(uint8_t *)extra[h], (uint8_t *)eq + 1,
                                      (size_t)(eq - extra[h]), strlen(eq + 1), 0};
        }
        srcs[i] = (body_src_t){c.body, c.body_len, 0};
        nghttp2_data_provider prd = {.source.ptr = &srcs[i], .read_callback = read_body};
        c.calls[i].status = -1;
        c.calls[i].id = nghttp2_submit_request(c.ng, NULL, hdrs, nh, &prd, NULL);
        c.ncalls++;
    }
    pump(&c, 20000);
    int ok = 0;
    for (int i = 0; i < c.ncalls; i++) {
        call_t *k = &c.calls[i];
        if (streams <= 10)
            printf("stream %d grpc-status %d http %d bytes %zu grpc-message %s\ndata %s\n", k->id,
                   k->status, k->http_status, k->bytes, k->message, k->text);
        ok += k->status == expect;
    }
    printf("summary ok=%d total=%d\n", ok, c.ncalls);
    nghttp2_session_del(c.ng);
    if (c.out)
        fclose(c.out);
    close(c.fd);
    free(c.calls);
    free(srcs);
    free(c.body);
    return ok == c.ncalls ? 0 : 1;
}
