/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One HTTP/2 stream as one gRPC call: routing on :path, length-prefixed messages in, handlers (inline, on
 * the pool, or streaming), and the response as HEADERS, DATA, trailers, or a trailers-only error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identifiers.h"
#include "transport.h"

#define NV(n, v)                                                                               \
    {                                                                                          \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NO_COPY_NAME \
    }

static int
route_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const route_t *)elem)->path);
}

const route_t *
routes_find(const server_t *srv, const char *path)
{
    return bsearch(path, srv->routes, srv->nroutes, sizeof(route_t), route_cmp);
}

void
service_unref(service_t *svc)
{
    if (--svc->refs > 0)
        return;
    free(svc->name);
    free(svc);
}

static void
finish_reloading(stream_t *st, const service_t *svc)
{
    char msg[512];
    snprintf(msg, sizeof(msg), "service %.400s is being reloaded", svc->name);
    call_finish(st, BERTH_EUNAVAILABLE, msg);
}

/* ---- responses ------------------------------------------------------------------------------------ */

static void
submit_trailers(stream_t *st)
{
    char code[16];
    snprintf(code, sizeof(code), "%d", st->status);
    nghttp2_nv trailers[] = {NV("grpc-status", code), NV("grpc-message", st->status_message)};
    nghttp2_submit_trailer(st->conn->ng, st->id, trailers, 2);
    st->trailers_sent = 1;
}

static ssize_t
read_out(nghttp2_session *ng, int32_t id, uint8_t *dst, size_t len, uint32_t *flags,
         nghttp2_data_source *src, void *user)
{
    (void)ng;
    (void)id;
    (void)user;
    stream_t *st = src->ptr;
    size_t avail = st->out.len - st->out_off;
    size_t n = avail < len ? avail : len;
    if (n > 0)
        memcpy(dst, st->out.data + st->out_off, n);
    st->out_off += n;
    if (st->out_off == st->out.len)
        st->out.len = st->out_off = 0;
    if (st->out.len == 0 && st->finished) {
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        submit_trailers(st);
        return (ssize_t)n;
    }
    return n == 0 ? NGHTTP2_ERR_DEFERRED : (ssize_t)n;
}

static void
start_response(stream_t *st)
{
    nghttp2_nv headers[] = {NV(":status", "200"), NV("content-type", "application/grpc")};
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_out};
    nghttp2_submit_response(st->conn->ng, st->id, headers, 2, &prd);
    st->response_started = 1;
}

/* An error before any message: one HEADERS frame with END_STREAM carrying the status. */
static void
respond_trailers_only(stream_t *st)
{
    char code[16];
    snprintf(code, sizeof(code), "%d", st->status);
    nghttp2_nv headers[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                            NV("grpc-status", code), NV("grpc-message", st->status_message)};
    nghttp2_submit_response(st->conn->ng, st->id, headers, 4, NULL);
    st->response_started = 1;
    st->trailers_sent = 1;
}

static int
stream_send(stream_t *st, const uint8_t *msg, size_t len)
{
    if (st->finished || st->gone || st->conn->closing)
        return BERTH_EUNAVAILABLE;
    uint8_t prefix[5] = {0, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                         (uint8_t)len};
    buf_append(&st->out, prefix, 5);
    buf_append(&st->out, msg, len);
    if (!st->response_started)
        start_response(st);
    else
        nghttp2_session_resume_data(st->conn->ng, st->id);
    conn_flush(st->conn);
    return 0;
}

static void
stop_deadline(stream_t *st)
{
    if (st->deadline) {
        st->deadline->data = NULL;
        uv_close((uv_handle_t *)st->deadline, (uv_close_cb)free);
        st->deadline = NULL;
    }
}

void
call_finish(stream_t *st, int code, const char *message)
{
    if (st->finished || st->gone || st->conn->closing)
        return;
    st->finished = 1;
    stop_deadline(st);
    st->status = grpc_status_of(code);
    st->status_message = code == 0 ? strdup("") : grpc_status_message(code, message);
    if (!st->response_started)
        respond_trailers_only(st);
    else
        nghttp2_session_resume_data(st->conn->ng, st->id);
    /* no flush here: a flush may close and free the stream under the caller's feet */
}

/* Finishes and sends at once, from outside nghttp2's callbacks. The stream may be gone afterwards. */
static void
finish_now(stream_t *st, int code, const char *message)
{
    conn_t *c = st->conn;
    c->refs++;
    call_finish(st, code, message);
    conn_flush(c);
    conn_unref(c);
}

static void
finish_with(stream_t *st, int code, berth_error_t *err)
{
    const berth_core_api_t *api = st->conn->srv->api;
    call_finish(st, code, err ? err->message : "");
    if (err)
        api->error_free(err);
}

/* ---- the stream api handed to streaming handlers -------------------------------------------------- */

static void
sapi_finish(stream_t *st, int code, const char *message)
{
    finish_now(st, code, message);
}

static const char *
sapi_namespace(const stream_t *st)
{
    return st->namespace_;
}

static void
sapi_set_user(stream_t *st, void *user)
{
    st->user = user;
}

static void *
sapi_get_user(const stream_t *st)
{
    return st->user;
}

static size_t
sapi_pending(const stream_t *st)
{
    return st->out.len - st->out_off;
}

static const char *
sapi_lease(const stream_t *st)
{
    return st->lease;
}

static void
sapi_set_part_handler(stream_t *st,
                      void (*fn)(void *user, const uint8_t *msg, size_t have, size_t len))
{
    st->part = fn;
}

const berth_grpc_stream_api_t grpc_stream_api = {
    .struct_size = sizeof(berth_grpc_stream_api_t),
    .send = stream_send,
    .finish = sapi_finish,
    .namespace_ = sapi_namespace,
    .set_user = sapi_set_user,
    .get_user = sapi_get_user,
    .pending = sapi_pending,
    .lease = sapi_lease,
    .set_part_handler = sapi_set_part_handler,
};

/* ---- unary calls ---------------------------------------------------------------------------------- */

typedef struct unary_work {
    uv_work_t req;
    stream_t *st;
    service_t *svc; /* kept alive by the stream's reference */
    berth_rpc_handler_t handler;
    char namespace_[80];
    char lease[256];
    buf_t request;
    uint8_t *resp;
    size_t resp_len;
    int rc;
    berth_error_t *err;
} unary_work_t;

/* Ends a unary call; the caller flushes. */
static void
unary_done(stream_t *st, int rc, uint8_t *resp, size_t resp_len, berth_error_t *err)
{
    const berth_core_api_t *api = st->conn->srv->api;
    if (rc == 0 && stream_send(st, resp ? resp : (uint8_t *)"", resp_len) == 0)
        call_finish(st, 0, NULL);
    else if (rc != 0)
        call_finish(st, rc, err ? err->message : "");
    free(resp);
    if (err)
        api->error_free(err);
}

static void
run_unary(uv_work_t *req)
{
    unary_work_t *w = (unary_work_t *)req;
    server_t *srv = w->st->conn->srv;
    srv->api->call_set_lease(w->lease);
    w->rc = w->handler.fn(w->handler.user, w->namespace_, w->request.data, w->request.len, &w->resp,
                          &w->resp_len, &w->err);
    srv->api->call_set_lease(NULL);
    pthread_mutex_lock(&srv->work_lock);
    srv->working--;
    w->svc->working--;
    /* server_stop waits for the server's count, a reload for one service's */
    pthread_cond_broadcast(&srv->work_done);
    pthread_mutex_unlock(&srv->work_lock);
}

static void
stream_free(stream_t *st)
{
    stop_deadline(st);
    buf_free(&st->in);
    buf_free(&st->unary_req);
    buf_free(&st->out);
    free(st->status_message);
    free(st->path);
    if (st->route != NULL)
        service_unref(st->routed.svc);
    free(st);
}

static void
after_unary(uv_work_t *req, int status)
{
    (void)status;
    unary_work_t *w = (unary_work_t *)req;
    stream_t *st = w->st;
    conn_t *c = st->conn;
    st->in_work = 0;
    if (st->gone) {
        free(w->resp);
        if (w->err)
            c->srv->api->error_free(w->err);
        stream_free(st);
    } else {
        unary_done(st, w->rc, w->resp, w->resp_len, w->err);
        conn_flush(c);
    }
    buf_free(&w->request);
    free(w);
    conn_unref(c);
}

static void
dispatch_unary(stream_t *st)
{
    /* the handler as the table has it now: a reload may have re-run api.handler-update since the
     * headers came, and a wrapper from then may belong to a plugin that is gone */
    server_t *srv = st->conn->srv;
    server_rehook(srv);
    const route_t *now = routes_find(srv, st->path);
    service_t *svc = st->routed.svc;
    if (now == NULL || now->svc != svc || svc->removing) {
        finish_reloading(st, svc);
        return;
    }
    const berth_rpc_handler_t *h = &now->unary;
    if (h->flags & BERTH_RPC_INLINE) {
        uint8_t *resp = NULL;
        size_t len = 0;
        berth_error_t *err = NULL;
        const berth_core_api_t *api = st->conn->srv->api;
        api->call_set_lease(st->lease);
        int rc = h->fn(h->user, st->namespace_, st->unary_req.data, st->unary_req.len, &resp, &len,
                       &err);
        api->call_set_lease(NULL);
        unary_done(st, rc, resp, len, err);
        return;
    }
    unary_work_t *w = calloc(1, sizeof(*w));
    w->st = st;
    w->handler = *h;
    memcpy(w->namespace_, st->namespace_, sizeof(w->namespace_));
    memcpy(w->lease, st->lease, sizeof(w->lease));
    w->request = st->unary_req;
    memset(&st->unary_req, 0, sizeof(st->unary_req));
    w->svc = svc;
    pthread_mutex_lock(&srv->work_lock);
    srv->working++;
    svc->working++;
    pthread_mutex_unlock(&srv->work_lock);
    st->in_work = 1;
    st->conn->refs++;
    uv_queue_work(srv->loop, &w->req, run_unary, after_unary);
}

/* ---- requests ------------------------------------------------------------------------------------- */

static void
on_deadline(uv_timer_t *t)
{
    stream_t *st = t->data;
    if (st != NULL)
        finish_now(st, BERTH_ETIMEDOUT, "context deadline exceeded");
}

static int
check_namespace(stream_t *st)
{
    char msg[200];
    if (st->bad_namespace || (st->namespace_[0] && !identifier_valid(st->namespace_))) {
        snprintf(msg, sizeof(msg), "identifier \"%.80s\" must match " IDENTIFIER_PATTERN,
                 st->bad_namespace ? "(too long)" : st->namespace_);
        call_finish(st, BERTH_EINVAL, msg);
        return -1;
    }
    if (st->namespace_[0] == '\0') {
        call_finish(st, BERTH_EPRECONDITION, "namespace is required");
        return -1;
    }
    return 0;
}

static int
service_known(const server_t *srv, const char *path, size_t service_len)
{
    for (size_t i = 0; i < srv->nroutes; i++)
        if (strncmp(srv->routes[i].path, path, service_len + 1) == 0 &&
            srv->routes[i].path[service_len + 1] == '/')
            return 1;
    return 0;
}

/* grpc-go's words, since clients (ctr's containers ls) probe for Unimplemented. */
static void
unknown_method(stream_t *st)
{
    char msg[512];
    const char *slash = st->path && st->path[0] == '/' ? strrchr(st->path, '/') : NULL;
    if (slash == NULL || slash == st->path) {
        snprintf(msg, sizeof(msg), "malformed method name: \"%.400s\"", st->path ? st->path : "");
    } else {
        int service_len = (int)(slash - st->path - 1);
        if (service_known(st->conn->srv, st->path, (size_t)service_len))
            snprintf(msg, sizeof(msg), "unknown method %.200s for service %.*s", slash + 1,
                     service_len < 200 ? service_len : 200, st->path + 1);
        else
            snprintf(msg, sizeof(msg), "unknown service %.*s",
                     service_len < 400 ? service_len : 400, st->path + 1);
    }
    call_finish(st, BERTH_ENOTIMPL, msg);
}

/* A call to a service not in the table: its plugin may wait for its first use (BERTH_PLUGIN_ON_DEMAND).
 * The core initialises it now (its deferred requirements first); the service arrives in the table as
 * BERTH_CHANGE_ADDED during api->demand, and api.handler-update runs over it before the call routes, as
 * after a reload. 0: look the route up again (nothing deferred served it: Unimplemented as ever); -1: the
 * call is finished (the plugin's init failed, or the server began stopping meanwhile). Loop thread. */
static int
demand_service(stream_t *st)
{
    server_t *srv = st->conn->srv;
    const berth_core_api_t *api = srv->api;
    const char *slash = st->path[0] == '/' ? strrchr(st->path, '/') : NULL;
    if (slash == NULL || slash == st->path || !BERTH_API_HAS(api, demand))
        return 0;
    size_t service_len = (size_t)(slash - st->path - 1);
    if (service_known(srv, st->path, service_len))
        return 0; /* served: an unknown method of it */
    char service[512];
    if (service_len >= sizeof(service))
        return 0;
    memcpy(service, st->path + 1, service_len);
    service[service_len] = '\0';
    berth_error_t *err = NULL;
    int rc = api->demand(BERTH_GRPC_SERVICE_TYPE, service, &err);
    api->log(srv->log, BERTH_LOG_DEBUG, "service %s: not served; on first use: %d initialised",
             service, rc);
    if (rc < 0) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "service %.200s: %.700s", service,
                 err && err->message ? err->message : "its plugin did not initialise");
        api->log(srv->log, BERTH_LOG_ERROR, "%s", msg);
        if (err)
            api->error_free(err);
        call_finish(st, rc, msg);
        return -1;
    }
    if (err)
        api->error_free(err);
    if (srv->closing) {
        call_finish(st, BERTH_EUNAVAILABLE, "server shutting down");
        return -1;
    }
    if (rc > 0)
        server_rehook(srv);
    return 0;
}

static void
open_stream(stream_t *st, const uint8_t *req, size_t len)
{
    const berth_grpc_method_t *m = st->route->method;
    berth_error_t *err = NULL;
    st->opened = 1;
    int rc = m->open ? m->open(st->route->instance, &grpc_stream_api, st, req, len, &err)
                     : BERTH_ENOTIMPL;
    if (rc != 0)
        finish_with(st, rc, err);
    else if (!st->response_started && !st->finished)
        start_response(st); /* headers now: a stream may stay quiet for a long time */
}

void
call_headers_done(stream_t *st)
{
    server_t *srv = st->conn->srv;
    if (!st->grpc_content_type) {
        nghttp2_nv headers[] = {NV(":status", "415"), NV("content-type", "text/plain")};
        nghttp2_submit_response(st->conn->ng, st->id, headers, 2, NULL);
        st->response_started = st->finished = st->trailers_sent = 1;
        return;
    }
    if (srv->closing) {
        call_finish(st, BERTH_EUNAVAILABLE, "server shutting down");
        return;
    }
    server_rehook(srv); /* services that came since the hooks last ran: wrapped first */
    const route_t *r = st->path ? routes_find(srv, st->path) : NULL;
    if (r == NULL && st->path != NULL && demand_service(st) == 0)
        r = routes_find(srv, st->path);
    if (st->finished)
        return;
    if (r == NULL) {
        unknown_method(st);
        return;
    }
    if (r->svc->removing) {
        finish_reloading(st, r->svc);
        return;
    }
    /* a copy: the table changes when a reload adds or drops services */
    st->routed = *r;
    st->routed.path = NULL;
    st->routed.svc->refs++;
    st->route = &st->routed;
    if ((st->route->method->flags & BERTH_RPC_NAMESPACED) && check_namespace(st) < 0)
        return;
    if (st->timeout_ms >= 0) {
        st->deadline = calloc(1, sizeof(*st->deadline));
        uv_timer_init(srv->loop, st->deadline);
        st->deadline->data = st;
        uv_timer_start(st->deadline, on_deadline, (uint64_t)st->timeout_ms, 0);
    }
    berth_rpc_kind_t kind = st->route->method->kind;
    if (kind == BERTH_RPC_CLIENT_STREAM || kind == BERTH_RPC_BIDI_STREAM)
        open_stream(st, (const uint8_t *)"", 0);
}

static void
deliver_message(stream_t *st, const uint8_t *msg, size_t len)
{
    const berth_grpc_method_t *m = st->route->method;
    if (m->kind == BERTH_RPC_CLIENT_STREAM || m->kind == BERTH_RPC_BIDI_STREAM) {
        berth_error_t *err = NULL;
        int rc = m->message ? m->message(st->route->instance, &grpc_stream_api, st, msg, len, &err)
                            : BERTH_ENOTIMPL;
        if (rc != 0)
            finish_with(st, rc, err);
        return;
    }
    if (st->messages_in++ > 0) {
        call_finish(st, BERTH_EINTERNAL,
                    "grpc: more than one request message for a non-client-streaming method");
        return;
    }
    if (m->kind == BERTH_RPC_SERVER_STREAM)
        open_stream(st, msg, len);
    else
        buf_append(&st->unary_req, msg, len);
}

/* Tells a streaming handler that asked about the message still arriving (st->in holds its start). */
static void
message_part(stream_t *st)
{
    if (st->part == NULL || st->in.len <= 5)
        return;
    const uint8_t *p = st->in.data;
    uint32_t mlen = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    st->part(st->user, p + 5, st->in.len - 5, mlen);
}

int
call_data(stream_t *st, const uint8_t *data, size_t len)
{
    if (st->finished || st->route == NULL)
        return 0;
    buf_append(&st->in, data, len);
    size_t off = 0;
    while (!st->finished && st->in.len - off >= 5) {
        const uint8_t *p = st->in.data + off;
        uint32_t mlen = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
        if (p[0] & 1) {
            call_finish(st, BERTH_EINTERNAL,
                        "grpc: compressed message received, but no compression was "
                        "negotiated (berthd accepts identity encoding only)");
            break;
        }
        if ((int64_t)mlen > st->conn->srv->max_message) {
            char msg[128];
            snprintf(msg, sizeof(msg), "grpc: received message larger than max (%u vs. %lld)", mlen,
                     (long long)st->conn->srv->max_message);
            call_finish(st, BERTH_ERESOURCE, msg);
            break;
        }
        if (st->in.len - off - 5 < mlen)
            break;
        deliver_message(st, p + 5, mlen);
        off += 5 + (size_t)mlen;
    }
    if (st->finished) {
        buf_free(&st->in);
        return 0;
    }
    if (off > 0) {
        memmove(st->in.data, st->in.data + off, st->in.len - off);
        st->in.len -= off;
    }
    message_part(st);
    return 0;
}

void
call_end_of_input(stream_t *st)
{
    if (st == NULL || st->finished || st->gone || st->route == NULL)
        return;
    if (st->in.len > 0) {
        call_finish(st, BERTH_EINTERNAL, "grpc: the request ended inside a message");
        return;
    }
    const berth_grpc_method_t *m = st->route->method;
    switch (m->kind) {
    case BERTH_RPC_UNARY:
        dispatch_unary(st);
        break;
    case BERTH_RPC_SERVER_STREAM:
        if (!st->opened)
            open_stream(st, (const uint8_t *)"", 0);
        break;
    default:
        if (m->end_of_input)
            m->end_of_input(st->route->instance, &grpc_stream_api, st);
    }
}

void
call_stream_gone(stream_t *st)
{
    conn_t *c = st->conn;
    if (st->prev)
        st->prev->next = st->next;
    else
        c->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    st->gone = 1;
    stop_deadline(st);
    if (st->opened && st->route->method->closed) {
        st->opened = 0;
        st->route->method->closed(st->route->instance, &grpc_stream_api, st);
    }
    if (!st->in_work)
        stream_free(st);
}

void
calls_end_service(server_t *srv, service_t *svc)
{
    svc->removing = 1;
    for (conn_t *c = srv->conns; c; c = c->next) {
        if (c->closing)
            continue;
        /* no flushing while walking the streams: a flush may close (and free) them */
        c->in_nghttp2 = 1;
        for (stream_t *st = c->streams; st; st = st->next) {
            if (st->route == NULL || st->routed.svc != svc)
                continue;
            if (!st->finished && !st->in_work)
                finish_reloading(st, svc);
            /* `closed` now, while the instance lives; the stream itself goes when its trailers are out */
            if (st->opened) {
                st->opened = 0;
                if (st->route->method->closed)
                    st->route->method->closed(st->route->instance, &grpc_stream_api, st);
            }
        }
        c->in_nghttp2 = 0;
    }
    for (conn_t *c = srv->conns, *next; c; c = next) {
        next = c->next;
        c->refs++;
        conn_flush(c);
        next = c->next;
        conn_unref(c);
    }
    /* its handlers on pool threads may use the instance, which is finished right after us */
    pthread_mutex_lock(&srv->work_lock);
    while (svc->working > 0)
        pthread_cond_wait(&srv->work_done, &srv->work_lock);
    pthread_mutex_unlock(&srv->work_lock);
}
