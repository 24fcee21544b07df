/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The listener and the HTTP/2 side: accept on a unix socket, one nghttp2 server session per connection,
 * SETTINGS first (grpc-go drops a connection whose first frame is anything else), and flushing of
 * everything nghttp2 wants to send. What a stream means as a gRPC call is in call.c.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport.h"

#define READ_CHUNK 65536

void
buf_append(buf_t *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len)
            cap *= 2;
        b->data = realloc(b->data, cap);
        if (b->data == NULL)
            abort();
        b->cap = cap;
    }
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
}

void
buf_free(buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void
server_unref(server_t *srv)
{
    if (--srv->refs > 0)
        return;
    free(srv->routes);
    pthread_mutex_destroy(&srv->work_lock);
    pthread_cond_destroy(&srv->work_done);
    free(srv->address);
    for (size_t i = 0; i < srv->n_extra; i++) {
        free(srv->extra[i]->address);
        free(srv->extra[i]);
    }
    free(srv->extra);
    free(srv->uri);
    free(srv);
}

/* ---- connections ---------------------------------------------------------------------------------- */

static void
conn_free(conn_t *c)
{
    server_t *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
    server_unref(srv);
}

void
conn_unref(conn_t *c)
{
    if (--c->refs == 0)
        conn_free(c);
}

static void
on_pipe_closed(uv_handle_t *h)
{
    conn_unref(h->data);
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    conn_t *c = req->data;
    free(req);
    uv_close((uv_handle_t *)&c->pipe, on_pipe_closed);
}

/* Ends every stream (nghttp2_session_del does not report them closed), then the session; the socket
 * closes once pending writes (a GOAWAY, last trailers) are out. */
static void
conn_close(conn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    while (c->streams)
        call_stream_gone(c->streams);
    nghttp2_session_del(c->ng);
    c->ng = NULL;
    uv_read_stop((uv_stream_t *)&c->pipe);
    uv_shutdown_t *req = calloc(1, sizeof(*req));
    req->data = c;
    if (uv_shutdown(req, (uv_stream_t *)&c->pipe, on_shutdown) < 0) {
        free(req);
        uv_close((uv_handle_t *)&c->pipe, on_pipe_closed);
    }
}

typedef struct write_req {
    uv_write_t req;
    conn_t *conn;
    uint8_t *data;
} write_req_t;

static void
on_written(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    conn_t *c = w->conn;
    free(w->data);
    free(w);
    if (status < 0 && !c->closing)
        conn_close(c);
    conn_unref(c);
}

/* Sends whatever nghttp2 has queued, as one write; closes when both sides are done. */
void
conn_flush(conn_t *c)
{
    if (c->closing || c->in_nghttp2 || c->ng == NULL)
        return;
    buf_t out = {0};
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->ng, &data);
        if (n < 0) {
            buf_free(&out);
            conn_close(c);
            return;
        }
        if (n == 0)
            break;
        buf_append(&out, data, (size_t)n);
    }
    size_t done = 0;
    if (out.len > 0) {
        /* most replies fit the socket buffer: write now, queue only what is left */
        uv_buf_t now = uv_buf_init((char *)out.data, (unsigned)out.len);
        int n = uv_try_write((uv_stream_t *)&c->pipe, &now, 1);
        done = n > 0 ? (size_t)n : 0;
    }
    if (done == out.len) {
        buf_free(&out);
    } else {
        write_req_t *w = calloc(1, sizeof(*w));
        w->conn = c;
        w->data = out.data;
        uv_buf_t b = uv_buf_init((char *)out.data + done, (unsigned)(out.len - done));
        c->refs++;
        if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_written) < 0) {
            free(w->data);
            free(w);
            c->refs--;
            conn_close(c);
            return;
        }
    }
    if (!nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng))
        conn_close(c);
}

/* One loop thread, and on_read consumes the bytes before returning: one buffer serves every read. */
static char read_buffer[READ_CHUNK];

static void
alloc_read(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    (void)suggested;
    b->base = read_buffer;
    b->len = sizeof(read_buffer);
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    conn_t *c = s->data;
    if (n > 0 && !c->closing) {
        c->in_nghttp2 = 1;
        ssize_t used = nghttp2_session_mem_recv(c->ng, (const uint8_t *)b->base, (size_t)n);
        c->in_nghttp2 = 0;
        if (used < 0) {
            /* a bad preface or frame: nghttp2 queued a GOAWAY; send it, then hang up */
            conn_flush(c);
            conn_close(c);
        } else {
            conn_flush(c);
        }
    } else if (n < 0 && !c->closing) {
        conn_close(c);
    }
}

/* ---- nghttp2 callbacks ---------------------------------------------------------------------------- */

static stream_t *
stream_of(nghttp2_session *ng, int32_t id)
{
    return nghttp2_session_get_stream_user_data(ng, id);
}

static int
on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    conn_t *c = user;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    stream_t *st = calloc(1, sizeof(*st));
    st->conn = c;
    st->id = f->hd.stream_id;
    st->timeout_ms = -1;
    st->next = c->streams;
    if (c->streams)
        c->streams->prev = st;
    c->streams = st;
    nghttp2_session_set_stream_user_data(ng, st->id, st);
    return 0;
}

static int
header_is(const uint8_t *name, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(name, want, len) == 0;
}

static int
on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
          const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    (void)flags;
    (void)user;
    stream_t *st = stream_of(ng, f->hd.stream_id);
    if (st == NULL || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (header_is(name, nlen, ":path")) {
        free(st->path);
        st->path = strndup((const char *)value, vlen);
    } else if (header_is(name, nlen, "content-type")) {
        st->grpc_content_type = vlen >= 16 && memcmp(value, "application/grpc", 16) == 0 &&
                                (vlen == 16 || value[16] == '+' || value[16] == ';');
    } else if (header_is(name, nlen, "containerd-namespace")) {
        /* containerd's client prepends a value each time a namespace is set on a context that has
         * one (the latest first) and containerd uses the first value, so the first one wins here */
        if (st->seen_namespace)
            return 0;
        st->seen_namespace = 1;
        if (vlen < sizeof(st->namespace_)) {
            memcpy(st->namespace_, value, vlen);
            st->namespace_[vlen] = '\0';
        } else {
            st->bad_namespace = 1;
        }
    } else if (header_is(name, nlen, "containerd-lease")) {
        /* the same prepending as containerd-namespace, the same first-wins rule */
        if (st->seen_lease)
            return 0;
        st->seen_lease = 1;
        snprintf(st->lease, sizeof(st->lease), "%.*s", (int)(vlen < sizeof(st->lease) ? vlen : 0),
                 value);
    } else if (header_is(name, nlen, "grpc-timeout")) {
        st->timeout_ms = grpc_parse_timeout((const char *)value, vlen);
    } else if (header_is(name, nlen, "grpc-encoding")) {
        st->compressed_allowed = !(vlen == 8 && memcmp(value, "identity", 8) == 0);
    }
    return 0;
}

static int
on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    (void)user;
    stream_t *st = stream_of(ng, f->hd.stream_id);
    if (st == NULL)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
        call_headers_done(st);
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        call_end_of_input(stream_of(ng, f->hd.stream_id));
    return 0;
}

static int
on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
              void *user)
{
    (void)flags;
    (void)user;
    stream_t *st = stream_of(ng, id);
    if (st != NULL)
        call_data(st, data, len);
    return 0;
}

static int
on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *user)
{
    (void)code;
    (void)user;
    stream_t *st = stream_of(ng, id);
    if (st != NULL) {
        nghttp2_session_set_stream_user_data(ng, id, NULL);
        call_stream_gone(st);
    }
    return 0;
}

static nghttp2_session_callbacks *
callbacks(void)
{
    static nghttp2_session_callbacks *cbs;
    if (cbs == NULL) {
        nghttp2_session_callbacks_new(&cbs);
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    }
    return cbs;
}

static int
session_start(conn_t *c)
{
    nghttp2_option *opt;
    nghttp2_option_new(&opt);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    int rc = nghttp2_session_server_new2(&c->ng, callbacks(), c, opt);
    nghttp2_option_del(opt);
    if (rc != 0)
        return -1;
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)c->srv->max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 20},
        {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 16384},
    };
    if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, settings, 3) != 0)
        return -1;
    /* a bigger connection window, announced only after SETTINGS went first */
    nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, 16 << 20);
    return 0;
}

static void
on_connection(uv_stream_t *listener, int status)
{
    server_t *srv = listener->data;
    if (status < 0 || srv->closing)
        return;
    conn_t *c = calloc(1, sizeof(*c));
    c->srv = srv;
    c->refs = 1;
    srv->refs++;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    uv_pipe_init(srv->loop, &c->pipe, 0);
    c->pipe.data = c;
    if (uv_accept(listener, (uv_stream_t *)&c->pipe) < 0 || session_start(c) < 0) {
        c->closing = 1;
        if (c->ng)
            nghttp2_session_del(c->ng);
        c->ng = NULL;
        uv_close((uv_handle_t *)&c->pipe, on_pipe_closed);
        return;
    }
    conn_flush(c); /* SETTINGS, before reading anything */
    uv_read_start((uv_stream_t *)&c->pipe, alloc_read, on_read);
}

/* ---- the listener --------------------------------------------------------------------------------- */

static int
remove_stale_socket(server_t *srv, const char *address, berth_error_t **err)
{
    struct stat st;
    if (lstat(address, &st) < 0)
        return errno == ENOENT
                   ? 0
                   : srv->api->error_make(err, BERTH_EIO, "stat %s: %s", address, strerror(errno));
    if (!S_ISSOCK(st.st_mode))
        return srv->api->error_make(err, BERTH_EEXIST, "%s exists and is not a socket", address);
    if (unlink(address) < 0)
        return srv->api->error_make(err, BERTH_EIO, "remove stale socket %s: %s", address,
                                    strerror(errno));
    return 0;
}

static int
listen_one(server_t *srv, uv_pipe_t *pipe, int *listening, const char *address, int64_t uid,
           int64_t gid, int64_t mode, berth_error_t **err)
{
    if (strlen(address) >= 108)
        return srv->api->error_make(err, BERTH_EINVAL, "socket address %s is longer than 107 bytes",
                                    address);
    if (remove_stale_socket(srv, address, err) < 0)
        return -1;
    uv_pipe_init(srv->loop, pipe, 0);
    pipe->data = srv;
    srv->refs++;
    *listening = 1;
    int rc = uv_pipe_bind(pipe, address);
    if (rc < 0)
        return srv->api->error_make(err, BERTH_EIO, "bind %s: %s", address, uv_strerror(rc));
    if (chmod(address, (mode_t)mode) < 0)
        return srv->api->error_make(err, BERTH_EIO, "chmod %s: %s", address, strerror(errno));
    if ((uid >= 0 || gid >= 0) && chown(address, (uid_t)uid, (gid_t)gid) < 0)
        return srv->api->error_make(err, BERTH_EIO, "chown %s to %lld:%lld: %s", address,
                                    (long long)uid, (long long)gid, strerror(errno));
    return 0;
}

int
server_listen(server_t *srv, int64_t uid, int64_t gid, int64_t mode, berth_error_t **err)
{
    if (listen_one(srv, &srv->listener, &srv->listening, srv->address, uid, gid, mode, err) < 0)
        return -1;
    for (size_t i = 0; i < srv->n_extra; i++) {
        extra_listener_t *x = srv->extra[i];
        if (listen_one(srv, &x->pipe, &x->listening, x->address, uid, gid, mode, err) < 0)
            return -1;
    }
    return 0;
}

int
server_accept(server_t *srv, berth_error_t **err)
{
    int rc = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection);
    if (rc < 0)
        return srv->api->error_make(err, BERTH_EIO, "listen on %s: %s", srv->address,
                                    uv_strerror(rc));
    for (size_t i = 0; i < srv->n_extra; i++) {
        rc = uv_listen((uv_stream_t *)&srv->extra[i]->pipe, 511, on_connection);
        if (rc < 0)
            return srv->api->error_make(err, BERTH_EIO, "listen on %s: %s", srv->extra[i]->address,
                                        uv_strerror(rc));
    }
    return 0;
}

static void
on_listener_closed(uv_handle_t *h)
{
    server_unref(h->data);
}

/* Graceful stop: no new connections; GOAWAY and Unavailable for what is open; wait for pool handlers. */
void
server_stop(server_t *srv)
{
    srv->closing = 1;
    if (srv->listening) {
        uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
        unlink(srv->address);
    }
    for (size_t i = 0; i < srv->n_extra; i++)
        if (srv->extra[i]->listening) {
            srv->extra[i]->listening = 0;
            uv_close((uv_handle_t *)&srv->extra[i]->pipe, on_listener_closed);
            unlink(srv->extra[i]->address);
        }
    for (conn_t *c = srv->conns; c; c = c->next) {
        if (c->closing)
            continue;
        /* no flushing while walking the list: a flush may close (and free) streams */
        c->in_nghttp2 = 1;
        for (stream_t *st = c->streams; st; st = st->next)
            if (!st->finished && !st->in_work)
                call_finish(st, BERTH_EUNAVAILABLE, "server shutting down");
        c->in_nghttp2 = 0;
        nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(c->ng), NGHTTP2_NO_ERROR,
                              NULL, 0);
        conn_flush(c);
    }
    /* handlers on pool threads may still use service instances, which are finalised right after us */
    pthread_mutex_lock(&srv->work_lock);
    while (srv->working > 0)
        pthread_cond_wait(&srv->work_done, &srv->work_lock);
    pthread_mutex_unlock(&srv->work_lock);
    for (conn_t *c = srv->conns, *next; c; c = next) {
        next = c->next;
        c->refs++;
        conn_close(c);
        conn_unref(c);
    }
    server_unref(srv);
}
