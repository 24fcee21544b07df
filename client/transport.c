/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The gRPC transport: HTTP/2 (an nghttp2 client session) on berthd's unix socket.
 *
 * Every call, unary or streaming, owns one connection for its duration: it takes an idle one from the
 * client's pool (a mutex-protected LIFO) or connects, runs one HTTP/2 stream on it, and gives it back, or
 * closes it after an error, a GOAWAY, a timeout or a cancel. No nghttp2 session is ever shared between
 * threads, so the session needs no lock.
 *
 * The client preface and SETTINGS go out with the first request in one write, without waiting for the
 * server's. Flow control is manual: received DATA is consumed (and the window granted back) as the caller
 * takes messages, so a slow reader holds the server back instead of buffering without bound.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "internal.h"

#define BC_STREAM_WINDOW (8u << 20) /* per stream: a few big messages in flight */
#define BC_CONN_WINDOW (16u << 20)
#define BC_OUT_HIGH (256u << 10)    /* stop generating frames past this much unsent output */
#define BC_SENDQ_HIGH (1u << 20)    /* bc_stream_send blocks while more than this is queued */
#define BC_MAX_MESSAGE (256u << 20) /* a length prefix past this is a broken stream */
#define BC_POOL_MAX 32
#define BC_READ_BUF (256u << 10)

typedef struct bc_buf {
    uint8_t *p;
    size_t off, len, cap; /* bytes [off, len) are pending */
} bc_buf_t;

typedef struct bc_conn {
    int fd;
    nghttp2_session *ng;
    bc_buf_t out;          /* frames nghttp2 produced that the socket has not taken yet */
    struct bc_stream *cur; /* the one stream running on it, or NULL while idle */
    int dead;              /* EOF, a socket or protocol error: never reused */
    int goaway;            /* the server said GOAWAY: finish the stream, then close */
    int reused;            /* served a stream before: a failure before any answer may be retried */
    int sys_errno;         /* what killed it (0: EOF) */
    struct bc_conn *next;
    uint8_t *rbuf;
} bc_conn_t;

struct bc_stream {
    berth_client_t *c;
    bc_conn_t *conn;
    int32_t id;
    int64_t deadline_ns; /* CLOCK_MONOTONIC; 0: none */
    int timeout_ms;
    char method[160];
    bc_buf_t sendq; /* message bytes waiting for the data provider */
    int send_eof;   /* close_send: END_STREAM after sendq */
    int deferred;   /* the data provider said DEFERRED: resume it when sendq grows */
    bc_buf_t rbuf;  /* DATA received, not yet taken as messages */
    size_t unconsumed;
    int http_status, grpc_status; /* -1 until seen */
    char *grpc_message;
    int closed;          /* nghttp2 closed the stream */
    int remote_done;     /* the server ended its side (END_STREAM) while ours may still be open */
    uint32_t close_code; /* its RST code (0 for a clean end) */
    int rx_any;          /* the server sent something on this stream */
    int failed;          /* a local failure, sticky: fail_code */
    int fail_code;
    char *fail_msg;
    int retryable;      /* failed before the server answered, on a connection from the pool */
    int sendq_borrowed; /* bc_unary: sendq points at its body, not ours to free */
    int cancel_fd;      /* eventfd, streams opened by bc_stream_open only */
    atomic_int cancelled;
};

/* ---- small helpers ---------------------------------------------------------------------------------- */

static int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Room for n more bytes at b->p + b->len. */
static int
buf_reserve(bc_buf_t *b, size_t n)
{
    if (b->off > 0 && b->off == b->len)
        b->off = b->len = 0;
    if (b->len + n > b->cap) {
        if (b->off > 0) { /* compact first: the pending part moves to the front */
            memmove(b->p, b->p + b->off, b->len - b->off);
            b->len -= b->off;
            b->off = 0;
        }
        if (b->len + n > b->cap) {
            size_t cap = b->cap ? b->cap : 4096;
            while (cap < b->len + n)
                cap *= 2;
            uint8_t *p = realloc(b->p, cap);
            if (p == NULL)
                return -1;
            b->p = p;
            b->cap = cap;
        }
    }
    return 0;
}

static int
buf_append(bc_buf_t *b, const void *data, size_t n)
{
    if (buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

static size_t
buf_pending(const bc_buf_t *b)
{
    return b->len - b->off;
}

static void
buf_free(bc_buf_t *b)
{
    free(b->p);
    *b = (bc_buf_t){0};
}

/* Sets the stream's sticky local failure (the first one wins) and returns its code. */
static int stream_fail(bc_stream_t *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int
stream_fail(bc_stream_t *s, int code, const char *fmt, ...)
{
    if (s->failed)
        return s->fail_code;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s->fail_msg, fmt, ap) < 0)
        s->fail_msg = NULL;
    va_end(ap);
    s->failed = 1;
    s->fail_code = code;
    return code;
}

static int
stream_error(bc_stream_t *s, berth_error_t **err)
{
    return bc_error(err, s->fail_code, "%s", s->fail_msg ? s->fail_msg : "out of memory");
}

/* ---- calls: namespace and timeout ------------------------------------------------------------------- */

const char *
bc_namespace(const berth_client_t *c, const berth_call_t *call)
{
    if (call && call->namespace_ && call->namespace_[0])
        return call->namespace_;
    return c->namespace_;
}

int
bc_timeout_ms(const berth_client_t *c, const berth_call_t *call)
{
    if (call && call->timeout_ms > 0)
        return call->timeout_ms;
    if (call && call->timeout_ms < 0)
        return -1;
    return c->timeout_ms > 0 ? c->timeout_ms : -1;
}

/* Streams take only the call's own timeout: the client's default is for unary calls (a subscription or a
 * wait must not die of it). */
static int
stream_timeout_ms(const berth_call_t *call)
{
    return call && call->timeout_ms > 0 ? call->timeout_ms : -1;
}

/* ---- nghttp2 callbacks ------------------------------------------------------------------------------ */

static bc_stream_t *
cur_stream(bc_conn_t *k, int32_t id)
{
    return k->cur && k->cur->id == id ? k->cur : NULL;
}

static int
on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    (void)ng;
    bc_stream_t *s = cur_stream(user, f->hd.stream_id);
    if (s)
        s->rx_any = 1;
    return 0;
}

static int
on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
          const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    (void)ng, (void)flags;
    bc_stream_t *s = cur_stream(user, f->hd.stream_id);
    if (s == NULL)
        return 0;
    if (nlen == 7 && memcmp(name, ":status", 7) == 0)
        s->http_status = atoi((const char *)value);
    else if (nlen == 11 && memcmp(name, "grpc-status", 11) == 0)
        s->grpc_status = atoi((const char *)value);
    else if (nlen == 12 && memcmp(name, "grpc-message", 12) == 0) {
        free(s->grpc_message);
        s->grpc_message = strndup((const char *)value, vlen);
    }
    return 0;
}

static int
on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *user)
{
    (void)flags;
    bc_stream_t *s = cur_stream(user, id);
    if (s == NULL) { /* a stream we are done with: give its connection window back at once */
        nghttp2_session_consume_connection(ng, len);
        return 0;
    }
    s->rx_any = 1;
    if (buf_append(&s->rbuf, data, len) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    s->unconsumed += len;
    return 0;
}

static int
on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    (void)ng;
    bc_conn_t *k = user;
    if (f->hd.type == NGHTTP2_GOAWAY)
        k->goaway = 1;
    /* a bidi stream the server ends first (containerd's Streaming: progress, export): its trailers end
     * the client's receiving, as grpc-go's RecvMsg returns io.EOF then */
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        bc_stream_t *s = cur_stream(k, f->hd.stream_id);
        if (s)
            s->remote_done = 1;
    }
    return 0;
}

static int
on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *user)
{
    (void)ng;
    bc_stream_t *s = cur_stream(user, id);
    if (s) {
        s->closed = 1;
        s->close_code = code;
    }
    return 0;
}

/* The request body: whatever bc_stream_send queued, END_STREAM after close_send. */
static ssize_t
read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
          nghttp2_data_source *src, void *user)
{
    (void)ng, (void)id, (void)user;
    bc_stream_t *s = src->ptr;
    size_t n = buf_pending(&s->sendq);
    if (n == 0 && !s->send_eof) {
        s->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    if (n > len)
        n = len;
    if (n) {
        memcpy(buf, s->sendq.p + s->sendq.off, n);
        s->sendq.off += n;
    }
    if (s->send_eof && buf_pending(&s->sendq) == 0)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static nghttp2_session_callbacks *callbacks;
static nghttp2_option *session_option;
static pthread_once_t callbacks_once = PTHREAD_ONCE_INIT;

static void
callbacks_init(void)
{
    if (nghttp2_session_callbacks_new(&callbacks) != 0)
        return;
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
    if (nghttp2_option_new(&session_option) == 0)
        /* windows are granted as the caller takes messages (bc_stream_recv), not as DATA arrives */
        nghttp2_option_set_no_auto_window_update(session_option, 1);
}

/* ---- connections ------------------------------------------------------------------------------------ */

static void
conn_close(bc_conn_t *k)
{
    if (k == NULL)
        return;
    nghttp2_session_del(k->ng);
    if (k->fd >= 0)
        close(k->fd);
    buf_free(&k->out);
    free(k->rbuf);
    free(k);
}

/* Moves frames from nghttp2 to the socket without blocking. 0, or -errno when the socket failed. */
static int
conn_flush(bc_conn_t *k)
{
    for (;;) {
        while (buf_pending(&k->out) < BC_OUT_HIGH) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(k->ng, &data);
            if (n < 0)
                return -EPROTO;
            if (n == 0)
                break;
            /* frames are gathered and leave in one send: preface, SETTINGS, HEADERS, DATA */
            if (buf_append(&k->out, data, (size_t)n) < 0)
                return -ENOMEM;
        }
        if (buf_pending(&k->out) == 0)
            return 0;
        ssize_t w =
            send(k->fd, k->out.p + k->out.off, buf_pending(&k->out), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 0 : -errno;
        }
        k->out.off += (size_t)w;
        if (k->out.off == k->out.len)
            k->out.off = k->out.len = 0;
        else if (buf_pending(&k->out) >= BC_OUT_HIGH)
            return 0; /* the socket is full; poll for POLLOUT */
    }
}

/* Reads what the socket has and feeds it to nghttp2. 0; -errno on a socket error; k->dead on EOF. */
static int
conn_read(bc_conn_t *k)
{
    for (int i = 0; i < 16; i++) {
        ssize_t n = recv(k->fd, k->rbuf, BC_READ_BUF, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return 0;
            k->dead = 1;
            k->sys_errno = errno;
            return -errno;
        }
        if (n == 0) {
            k->dead = 1;
            return 0;
        }
        ssize_t r = nghttp2_session_mem_recv(k->ng, k->rbuf, (size_t)n);
        if (r < 0) {
            k->dead = 1;
            k->sys_errno = EPROTO;
            return -EPROTO;
        }
        if ((size_t)n < BC_READ_BUF)
            return 0;
    }
    return 0;
}

static int
conn_new(berth_client_t *c, bc_conn_t **out, berth_error_t **err)
{
    pthread_once(&callbacks_once, callbacks_init);
    if (callbacks == NULL || session_option == NULL)
        return bc_error(err, BERTH_ENOMEM, "nghttp2: out of memory");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(c->address) >= sizeof(sa.sun_path))
        return bc_error(err, BERTH_EINVAL, "connect %s: socket path too long", c->address);
    memcpy(sa.sun_path, c->address, strlen(c->address) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return bc_error(err, BERTH_EUNAVAILABLE, "socket: %s", strerror(errno));
    /* a listener whose backlog is full makes connect() wait: SO_SNDTIMEO bounds that wait */
    struct timeval tv = {c->connect_timeout_ms / 1000, (c->connect_timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        close(fd);
        if (e == EAGAIN || e == EWOULDBLOCK || e == EINPROGRESS)
            return bc_error(err, BERTH_ETIMEDOUT, "connect %s: timed out after %d ms", c->address,
                            c->connect_timeout_ms);
        return bc_error(err, BERTH_EUNAVAILABLE, "connect %s: %s", c->address, strerror(e));
    }
    tv = (struct timeval){0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    bc_conn_t *k = calloc(1, sizeof(*k));
    if (k == NULL || (k->rbuf = malloc(BC_READ_BUF)) == NULL) {
        free(k);
        close(fd);
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    }
    k->fd = fd;
    if (nghttp2_session_client_new2(&k->ng, callbacks, k, session_option) != 0) {
        k->ng = NULL;
        conn_close(k);
        return bc_error(err, BERTH_ENOMEM, "nghttp2: out of memory");
    }
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, BC_STREAM_WINDOW},
    };
    /* queued only: they leave with the first request, the server's SETTINGS are not awaited */
    nghttp2_submit_settings(k->ng, NGHTTP2_FLAG_NONE, settings, 2);
    nghttp2_session_set_local_window_size(k->ng, NGHTTP2_FLAG_NONE, 0, BC_CONN_WINDOW);
    *out = k;
    return 0;
}

/* An idle connection the server has not closed meanwhile (a pending EOF or GOAWAY shows as readable). */
static bc_conn_t *
pool_take(berth_client_t *c)
{
    for (;;) {
        pthread_mutex_lock(&c->pool_mu);
        bc_conn_t *k = c->pool;
        if (k) {
            c->pool = k->next;
            c->n_pool--;
        }
        pthread_mutex_unlock(&c->pool_mu);
        if (k == NULL)
            return NULL;
        k->next = NULL;
        struct pollfd p = {k->fd, POLLIN, 0};
        if (poll(&p, 1, 0) > 0)
            conn_read(k);
        if (!k->dead && !k->goaway && nghttp2_session_want_read(k->ng))
            return k;
        conn_close(k);
    }
}

static void
pool_put(berth_client_t *c, bc_conn_t *k)
{
    k->cur = NULL;
    k->reused = 1;
    pthread_mutex_lock(&c->pool_mu);
    if (c->n_pool < BC_POOL_MAX) {
        k->next = c->pool;
        c->pool = k;
        c->n_pool++;
        k = NULL;
    }
    pthread_mutex_unlock(&c->pool_mu);
    conn_close(k);
}

void
bc_transport_close(berth_client_t *c)
{
    bc_conn_t *k = c->pool;
    while (k) {
        bc_conn_t *next = k->next;
        conn_close(k);
        k = next;
    }
    c->pool = NULL;
    c->n_pool = 0;
}

/* ---- streams ---------------------------------------------------------------------------------------- */

static void
timeout_header(char *buf, size_t n, int ms)
{
    /* at most 8 digits (gRPC's rule) */
    if (ms < 100000000)
        snprintf(buf, n, "%dm", ms);
    else
        snprintf(buf, n, "%dS", ms / 1000);
}

#define NV(n, v, vl)                                                                      \
    {                                                                                     \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NO_COPY_NAME \
    }

/* Submits the request's HEADERS on a fresh or pooled connection; nothing is written yet. */
static int
stream_start(bc_stream_t *s, const char *ns, int fresh, berth_error_t **err)
{
    berth_client_t *c = s->c;
    bc_conn_t *k = fresh ? NULL : pool_take(c);
    if (k == NULL) {
        int r = conn_new(c, &k, err);
        if (r < 0)
            return r;
    }
    s->conn = k;
    char tmo[32] = "";
    if (s->timeout_ms > 0)
        timeout_header(tmo, sizeof(tmo), s->timeout_ms);
    nghttp2_nv hdrs[] = {
        NV(":method", "POST", 4),
        NV(":scheme", "http", 4),
        NV(":path", s->method, strlen(s->method)),
        NV(":authority", "localhost", 9),
        NV("content-type", "application/grpc", 16),
        NV("user-agent", "berth-client/" BC_VERSION " grpc-c",
           strlen("berth-client/" BC_VERSION " grpc-c")),
        NV("te", "trailers", 8),
        NV("containerd-namespace", ns, strlen(ns)),
        NV("grpc-timeout", tmo, strlen(tmo)),
        NV("containerd-lease", bc_thread_lease ? bc_thread_lease : "",
           bc_thread_lease ? strlen(bc_thread_lease) : 0),
    };
    size_t nh = sizeof(hdrs) / sizeof(hdrs[0]) - 2;
    if (tmo[0])
        nh++;
    if (bc_thread_lease) /* client-run: the lease of a multi-call operation (container create) */
        hdrs[nh++] = hdrs[sizeof(hdrs) / sizeof(hdrs[0]) - 1];
    nghttp2_data_provider prd = {.source.ptr = s, .read_callback = read_body};
    k->cur = s;
    s->id = nghttp2_submit_request(k->ng, NULL, hdrs, nh, &prd, NULL);
    if (s->id < 0) {
        k->cur = NULL;
        k->dead = 1;
        if (s->id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE && !fresh) {
            /* a pooled connection that used up its 2^30 stream ids: a new one takes over */
            conn_close(k);
            s->conn = NULL;
            return stream_start(s, ns, 1, err);
        }
        return bc_error(err, BERTH_EINTERNAL, "%s: %s", s->method, nghttp2_strerror(s->id));
    }
    return 0;
}

enum wait_for { W_MSG, W_CLOSED, W_SENDQ };

static int
msg_ready(const bc_stream_t *s)
{
    size_t n = buf_pending(&s->rbuf);
    if (n < 5)
        return 0;
    const uint8_t *p = s->rbuf.p + s->rbuf.off;
    size_t len = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
    return n >= 5 + len || len > BC_MAX_MESSAGE;
}

static int
ready(const bc_stream_t *s, enum wait_for w)
{
    if (s->closed)
        return 1;
    switch (w) {
    case W_MSG:
        return msg_ready(s) || s->remote_done;
    case W_SENDQ:
        return buf_pending(&s->sendq) < BC_SENDQ_HIGH;
    default:
        return 0;
    }
}

/* Resets the stream (the server stops working for it) and dooms the connection. */
static void
stream_abort(bc_stream_t *s)
{
    bc_conn_t *k = s->conn;
    if (k == NULL || k->dead)
        return;
    if (!s->closed) {
        nghttp2_submit_rst_stream(k->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
        conn_flush(k);
    }
    k->dead = 1;
}

/* The connection died under the stream. Retrying is safe only when the server never answered it on a
 * connection that had been idle in the pool (the server closed it meanwhile). */
static int
conn_lost(bc_stream_t *s, int e)
{
    bc_conn_t *k = s->conn;
    k->dead = 1;
    s->retryable = k->reused && !s->rx_any;
    if (e == 0)
        return stream_fail(s, BERTH_EUNAVAILABLE, "%s: connection to %s closed by the server",
                           s->method, s->c->address);
    return stream_fail(s, BERTH_EUNAVAILABLE, "%s: connection to %s: %s", s->method, s->c->address,
                       strerror(e));
}

/* Runs the connection until the stream is ready for w, fails, times out or is cancelled. */
static int
stream_wait(bc_stream_t *s, enum wait_for w)
{
    bc_conn_t *k = s->conn;
    for (;;) {
        if (s->failed)
            return s->fail_code;
        /* an answer that is there needs no flush first: a SETTINGS ack can wait for the next call */
        if (w != W_SENDQ && ready(s, w))
            return 0;
        if (w == W_CLOSED && s->unconsumed) { /* a unary answer: take DATA as it comes */
            nghttp2_session_consume(k->ng, s->id, s->unconsumed);
            s->unconsumed = 0;
        }
        if (k->dead && !s->closed)
            return conn_lost(s, k->sys_errno);
        if (!k->dead) {
            int r = conn_flush(k);
            if (r < 0)
                return conn_lost(s, -r);
        }
        if (ready(s, w))
            return 0;
        if (!nghttp2_session_want_read(k->ng) && !nghttp2_session_want_write(k->ng))
            return conn_lost(s, 0);
        if (atomic_load(&s->cancelled)) {
            stream_abort(s);
            return stream_fail(s, BERTH_ECANCELED, "%s: canceled", s->method);
        }
        int timeout = -1;
        if (s->deadline_ns) {
            int64_t left = s->deadline_ns - now_ns();
            if (left <= 0) {
                stream_abort(s);
                return stream_fail(s, BERTH_ETIMEDOUT, "%s: deadline exceeded (%d ms)", s->method,
                                   s->timeout_ms);
            }
            timeout = (int)((left + 999999) / 1000000);
        }
        struct pollfd p[2] = {
            {k->fd, (short)(POLLIN | (buf_pending(&k->out) ? POLLOUT : 0)), 0},
            {s->cancel_fd, POLLIN, 0},
        };
        int n = poll(p, s->cancel_fd >= 0 ? 2 : 1, timeout);
        if (n < 0 && errno != EINTR)
            return stream_fail(s, BERTH_EIO, "poll: %s", strerror(errno));
        if (n <= 0)
            continue;
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            int r = conn_read(k);
            if (r < 0 && !s->closed)
                return conn_lost(s, -r);
        }
    }
}

static char *
percent_decode(const char *in)
{
    size_t n = strlen(in);
    char *out = malloc(n + 1), *o = out;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (in[i] == '%' && i + 2 < n && sscanf(in + i + 1, "%2x", &v) == 1) {
            *o++ = (char)v;
            i += 2;
        } else
            *o++ = in[i];
    }
    *o = 0;
    return out;
}

static const char *const grpc_code_names[] = {
    "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated"};

/* gRPC's mapping of an HTTP status without grpc-status (a proxy or a non-gRPC server) */
static int
grpc_from_http(int http)
{
    switch (http) {
    case 400:
        return 13;
    case 401:
        return 16;
    case 403:
        return 7;
    case 404:
        return 12;
    case 429:
    case 502:
    case 503:
    case 504:
        return 14;
    default:
        return 2;
    }
}

/* The stream's end as a return code: 0 for grpc-status 0, else the mapped error with the server's
 * message. */
static int
stream_status(bc_stream_t *s, berth_error_t **err)
{
    if (s->failed)
        return stream_error(s, err);
    if (s->grpc_status == 0)
        return 0;
    if (s->grpc_status > 0) {
        int st = s->grpc_status;
        char *msg = s->grpc_message ? percent_decode(s->grpc_message) : NULL;
        int r;
        if (msg && msg[0])
            r = bc_error(err, bc_code_from_grpc(st), "%s", msg);
        else
            r = bc_error(err, bc_code_from_grpc(st), "%s: %s", s->method,
                         st < 17 ? grpc_code_names[st] : "unknown status");
        free(msg);
        return r;
    }
    if (s->http_status > 0 && s->http_status != 200)
        return bc_error(err, bc_code_from_grpc(grpc_from_http(s->http_status)),
                        "%s: HTTP status %d", s->method, s->http_status);
    if (s->close_code == NGHTTP2_REFUSED_STREAM)
        return bc_error(err, BERTH_EUNAVAILABLE, "%s: stream refused by the server", s->method);
    if (s->close_code != 0)
        return bc_error(err, BERTH_EINTERNAL, "%s: stream reset by the server: %s", s->method,
                        nghttp2_http2_strerror(s->close_code));
    return bc_error(err, BERTH_EINTERNAL, "%s: the server ended the stream without a grpc-status",
                    s->method);
}

static void
stream_init(bc_stream_t *s, berth_client_t *c, const char *method, int timeout_ms)
{
    memset(s, 0, sizeof(*s));
    s->c = c;
    snprintf(s->method, sizeof(s->method), "%s", method);
    s->timeout_ms = timeout_ms;
    if (timeout_ms > 0)
        s->deadline_ns = now_ns() + (int64_t)timeout_ms * 1000000;
    s->http_status = s->grpc_status = -1;
    s->cancel_fd = -1;
}

/* Gives the connection back (a clean end) or closes it; frees what the stream holds, not the stream. */
static void
stream_release(bc_stream_t *s)
{
    bc_conn_t *k = s->conn;
    if (k) {
        if (!s->closed)
            stream_abort(s);
        else if (s->unconsumed && !k->dead)
            nghttp2_session_consume(k->ng, s->id, s->unconsumed);
        if (k->dead || k->goaway || s->failed)
            conn_close(k);
        else
            pool_put(s->c, k);
        s->conn = NULL;
    }
    if (!s->sendq_borrowed)
        buf_free(&s->sendq);
    buf_free(&s->rbuf);
    free(s->grpc_message);
    free(s->fail_msg);
    s->grpc_message = s->fail_msg = NULL;
    if (s->cancel_fd >= 0)
        close(s->cancel_fd);
    s->cancel_fd = -1;
}

/* Appends msg to sendq with its 5-byte prefix, packed in place. */
static int
frame_message(bc_buf_t *q, const ProtobufCMessage *msg)
{
    size_t n = msg ? protobuf_c_message_get_packed_size(msg) : 0;
    if (n > BC_MAX_MESSAGE)
        return BERTH_ERESOURCE;
    uint8_t hdr[5] = {0, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    if (buf_append(q, hdr, 5) < 0 || buf_reserve(q, n) < 0)
        return BERTH_ENOMEM;
    if (n)
        protobuf_c_message_pack(msg, q->p + q->len);
    q->len += n;
    return 0;
}

/* Takes one complete message off rbuf: *data, *len point into rbuf until the next call. */
static int
take_message(bc_stream_t *s, const uint8_t **data, size_t *len, berth_error_t **err)
{
    const uint8_t *p = s->rbuf.p + s->rbuf.off;
    size_t n = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
    if (n > BC_MAX_MESSAGE) {
        stream_abort(s);
        stream_fail(s, BERTH_ERESOURCE, "%s: a %zu-byte message is past the limit", s->method, n);
        return stream_error(s, err);
    }
    if (p[0] != 0) {
        stream_abort(s);
        stream_fail(s, BERTH_EINTERNAL, "%s: a compressed message (none was asked for)", s->method);
        return stream_error(s, err);
    }
    *data = p + 5;
    *len = n;
    s->rbuf.off += 5 + n;
    size_t used = 5 + n < s->unconsumed ? 5 + n : s->unconsumed;
    if (used) {
        nghttp2_session_consume(s->conn->ng, s->id, used);
        s->unconsumed -= used;
        /* a WINDOW_UPDATE is due (half a window consumed): send it now, not once the buffer is empty,
         * so the server keeps streaming while the caller works through what is here */
        if (!s->conn->dead && nghttp2_session_want_write(s->conn->ng) && conn_flush(s->conn) < 0)
            s->conn->dead = 1;
    }
    return 1;
}

static int
unpack(bc_stream_t *s, const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
       ProtobufCMessage **msg, berth_error_t **err)
{
    *msg = protobuf_c_message_unpack(desc, NULL, len, data);
    if (*msg == NULL)
        return bc_error(err, BERTH_EINTERNAL, "%s: cannot decode the %s response (%zu bytes)",
                        s->method, desc->name, len);
    return 0;
}

/* Runs one request body (framed) to the end of the stream; s then holds the answer, checked. Retries
 * once on a fresh connection when a pooled one turns out dead before the server answered. */
static int
unary_run(berth_client_t *c, const berth_call_t *call, const char *method, bc_buf_t *body,
          bc_stream_t *s, berth_error_t **err)
{
    const char *ns = bc_namespace(c, call);
    int timeout = bc_timeout_ms(c, call);
    for (int attempt = 0;; attempt++) {
        stream_init(s, c, method, timeout);
        s->sendq = *body;
        s->sendq_borrowed = 1;
        s->send_eof = 1;
        int r = stream_start(s, ns, attempt > 0, err);
        if (r < 0)
            return r;
        r = stream_wait(s, W_CLOSED);
        /* REFUSED_STREAM (a GOAWAY's cut): the server did not process it, a retry is safe */
        if (r == 0 && s->close_code == NGHTTP2_REFUSED_STREAM && s->grpc_status < 0)
            s->retryable = 1, r = -1;
        if (r < 0 && s->retryable && attempt == 0) {
            stream_release(s);
            continue;
        }
        r = stream_status(s, err);
        if (r == 0 && !msg_ready(s))
            return bc_error(err, BERTH_EINTERNAL, "%s: the server sent no response message",
                            method);
        return r;
    }
}

int
bc_unary(berth_client_t *c, const berth_call_t *call, const char *method,
         const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
         ProtobufCMessage **resp, berth_error_t **err)
{
    if (resp)
        *resp = NULL;
    bc_buf_t body = {0};
    if (frame_message(&body, req) < 0) {
        buf_free(&body);
        return bc_error(err, BERTH_ENOMEM, "%s: out of memory", method);
    }
    bc_stream_t s;
    int r = unary_run(c, call, method, &body, &s, err);
    if (r == 0 && resp_desc && resp) { /* resp NULL: the caller wants no answer */
        const uint8_t *data;
        size_t len;
        if ((r = take_message(&s, &data, &len, err)) > 0)
            r = unpack(&s, resp_desc, data, len, resp, err);
    }
    stream_release(&s);
    buf_free(&body);
    return r;
}

int
bc_unary_raw(berth_client_t *c, const berth_call_t *call, const char *method, const uint8_t *req,
             size_t req_len, uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    *resp = NULL;
    *resp_len = 0;
    bc_buf_t body = {0};
    uint8_t hdr[5] = {0, (uint8_t)(req_len >> 24), (uint8_t)(req_len >> 16),
                      (uint8_t)(req_len >> 8), (uint8_t)req_len};
    if (buf_append(&body, hdr, 5) < 0 || (req_len && buf_append(&body, req, req_len) < 0)) {
        buf_free(&body);
        return bc_error(err, BERTH_ENOMEM, "%s: out of memory", method);
    }
    bc_stream_t s;
    int r = unary_run(c, call, method, &body, &s, err);
    if (r == 0) {
        const uint8_t *data;
        size_t len;
        if ((r = take_message(&s, &data, &len, err)) > 0) {
            r = 0;
            *resp = malloc(len ? len : 1);
            if (*resp == NULL)
                r = bc_error(err, BERTH_ENOMEM, "out of memory");
            else {
                memcpy(*resp, data, len);
                *resp_len = len;
            }
        }
    }
    stream_release(&s);
    buf_free(&body);
    return r;
}

int
bc_stream_open(berth_client_t *c, const berth_call_t *call, const char *method, bc_stream_t **out,
               berth_error_t **err)
{
    *out = NULL;
    bc_stream_t *s = malloc(sizeof(*s));
    if (s == NULL)
        return bc_error(err, BERTH_ENOMEM, "%s: out of memory", method);
    const char *ns = bc_namespace(c, call);
    int r;
    for (int attempt = 0;; attempt++) {
        stream_init(s, c, method, stream_timeout_ms(call));
        s->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->cancel_fd < 0) {
            r = bc_error(err, BERTH_EIO, "eventfd: %s", strerror(errno));
            break;
        }
        r = stream_start(s, ns, attempt > 0, err);
        if (r < 0)
            break;
        /* the HEADERS go now: the server may act on the stream before we send a message */
        int w = conn_flush(s->conn);
        if (w < 0) {
            conn_lost(s, -w);
            if (s->retryable && attempt == 0) {
                stream_release(s);
                continue;
            }
            r = stream_error(s, err);
            break;
        }
        *out = s;
        return 0;
    }
    stream_release(s);
    free(s);
    return r;
}

static int
stream_closed_error(bc_stream_t *s, berth_error_t **err)
{
    int r = stream_status(s, err);
    if (r == 0)
        r = bc_error(err, BERTH_EPRECONDITION, "%s: the server already ended the stream",
                     s->method);
    return r;
}

int
bc_stream_send(bc_stream_t *s, const ProtobufCMessage *msg, berth_error_t **err)
{
    if (s->failed)
        return stream_error(s, err);
    if (s->closed)
        return stream_closed_error(s, err);
    if (s->send_eof)
        return bc_error(err, BERTH_EPRECONDITION, "%s: send after close_send", s->method);
    int r = frame_message(&s->sendq, msg);
    if (r < 0)
        return bc_error(err, r, "%s: cannot frame the message", s->method);
    if (s->deferred) {
        s->deferred = 0;
        nghttp2_session_resume_data(s->conn->ng, s->id);
    }
    r = stream_wait(s, W_SENDQ);
    if (r < 0)
        return stream_error(s, err);
    if (s->closed && buf_pending(&s->sendq))
        return stream_closed_error(s, err);
    return 0;
}

int
bc_stream_close_send(bc_stream_t *s, berth_error_t **err)
{
    if (s->failed)
        return stream_error(s, err);
    if (s->send_eof || s->closed)
        return 0;
    s->send_eof = 1;
    if (s->deferred) {
        s->deferred = 0;
        nghttp2_session_resume_data(s->conn->ng, s->id);
    }
    int r = conn_flush(s->conn);
    if (r < 0) {
        conn_lost(s, -r);
        return stream_error(s, err);
    }
    return 0;
}

int
bc_stream_recv(bc_stream_t *s, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **msg,
               berth_error_t **err)
{
    *msg = NULL;
    for (;;) {
        if (s->failed)
            return stream_error(s, err);
        if (msg_ready(s)) {
            const uint8_t *data;
            size_t len;
            int r = take_message(s, &data, &len, err);
            if (r < 0)
                return r;
            r = unpack(s, desc, data, len, msg, err);
            return r < 0 ? r : 1;
        }
        if (s->closed || s->remote_done) {
            if (buf_pending(&s->rbuf) && s->grpc_status == 0)
                return bc_error(err, BERTH_EINTERNAL, "%s: the stream ended inside a message",
                                s->method);
            return stream_status(s, err);
        }
        /* the buffer holds no whole message: grant the window for what arrived, then wait */
        if (s->unconsumed) {
            nghttp2_session_consume(s->conn->ng, s->id, s->unconsumed);
            s->unconsumed = 0;
        }
        if (stream_wait(s, W_MSG) < 0)
            return stream_error(s, err);
    }
}

void
bc_stream_cancel(bc_stream_t *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->cancelled, 1);
    uint64_t one = 1;
    if (s->cancel_fd >= 0 && write(s->cancel_fd, &one, sizeof(one)) < 0) {
        /* the counter cannot overflow from one cancel; the flag alone is enough then */
    }
}

void
bc_stream_free(bc_stream_t *s)
{
    if (s == NULL)
        return;
    stream_release(s);
    free(s);
}
