/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CRI streaming server, as kubelet's pkg/kubelet/cri/streaming serves it for containerd's CRI:
 * Exec, Attach and PortForward validate their request and keep it under a random single-use token
 * (expiring after stream_idle_timeout_ms), answering http://<addr>:<port>/{exec,attach,portforward}/<token>.
 * The client then upgrades that URL to SPDY/3.1 (remotecommand v1..v4, portforward.k8s.io) or WebSocket
 * (channel.k8s.io, v4, v5; base64 variants). The server is a libuv TCP server on the loop thread; the
 * sessions behind it (stream_exec.c, stream_pf.c) do their blocking calls on pool threads.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "stream_int.h"

struct cri_stream_server {
    cri_t *c;
    uv_tcp_t tcp;
    int port;
    pthread_mutex_t lock; /* reqs: the RPC threads add, the loop takes */
    sreq_t *reqs;
    sconn_t *conns;
    int stopping, tcp_closed;
};

static void server_maybe_free(cri_stream_server_t *s);

static uint64_t
now_ms(void)
{
    return uv_hrtime() / 1000000;
}

void
sreq_free(sreq_t *r)
{
    if (r == NULL)
        return;
    for (char **p = r->cmd; p && *p; p++)
        free(*p);
    free(r->cmd);
    free(r->ports);
    free(r);
}

/* ---- the RPCs ------------------------------------------------------------------------------------ */

static void
url_of(cri_t *c, const sreq_t *r, char *out, size_t n)
{
    static const char *const kinds[] = {"exec", "attach", "portforward"};
    const char *addr = c->cfg.stream_address;
    int v6 = strchr(addr, ':') != NULL;
    snprintf(out, n, "http://%s%s%s:%d/%s/%s", v6 ? "[" : "", addr, v6 ? "]" : "",
             c->streams ? c->streams->port : 0, kinds[r->kind], r->token);
}

/* Keeps r under a new token; its URL into url. Expired requests go at the same time. */
static int
sreq_add(cri_t *c, sreq_t *r, char *url, size_t url_len, berth_error_t **err)
{
    cri_stream_server_t *s = c->streams;
    if (s == NULL)
        return c->api->error_make(err, BERTH_EUNAVAILABLE, "the streaming server is not running");
    uint8_t rnd[16];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return c->api->error_make(err, BERTH_EINTERNAL, "getrandom: %s", strerror(errno));
    for (int i = 0; i < 16; i++)
        snprintf(r->token + 2 * i, 3, "%02x", rnd[i]);
    r->expires_ms = now_ms() + (uint64_t)(c->cfg.stream_idle_ms > 0 ? c->cfg.stream_idle_ms : 1);
    pthread_mutex_lock(&s->lock);
    uint64_t now = now_ms();
    for (sreq_t **p = &s->reqs; *p;) {
        if ((*p)->expires_ms <= now) {
            sreq_t *old = *p;
            *p = old->next;
            sreq_free(old);
        } else {
            p = &(*p)->next;
        }
    }
    r->next = s->reqs;
    s->reqs = r;
    pthread_mutex_unlock(&s->lock);
    url_of(c, r, url, url_len);
    return 0;
}

/* The request under token, taken (single use); NULL when unknown or expired. */
static sreq_t *
sreq_take(cri_stream_server_t *s, sreq_kind_t kind, const char *token)
{
    sreq_t *found = NULL;
    pthread_mutex_lock(&s->lock);
    for (sreq_t **p = &s->reqs; *p; p = &(*p)->next) {
        if (strcmp((*p)->token, token) == 0) {
            found = *p;
            *p = found->next;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (found && (found->kind != kind || found->expires_ms <= now_ms())) {
        sreq_free(found);
        found = NULL;
    }
    return found;
}

static int
running_container(cri_t *c, const char *id, int *tty, berth_error_t **err)
{
    cri_container_t *k = NULL;
    int rc = cri_container_find(c, id, &k, err);
    if (rc < 0)
        return rc; /* its code (NotFound) is the RPC's */
    if (k->state != CRI_CONTAINER_RUNNING)
        rc = c->api->error_make(err, BERTH_EPRECONDITION, "container %s: not running", k->id);
    if (tty)
        *tty = k->config && k->config->tty;
    cri_container_unref(k);
    return rc;
}

/* kubelet's validateExecRequest / validateAttachRequest */
static int
check_streams(cri_t *c, int tty, int in, int out, int errs, berth_error_t **err)
{
    if (tty && errs)
        return c->api->error_make(err, BERTH_EINVAL, "tty and stderr cannot both be true");
    if (!in && !out && !errs)
        return c->api->error_make(err, BERTH_EINVAL, "one of stdin, stdout, or stderr must be set");
    return 0;
}

static int
reply_url(cri_t *c, sreq_t *r, const ProtobufCMessageDescriptor *d, uint8_t **resp,
          size_t *resp_len, berth_error_t **err)
{
    char url[512];
    int rc = sreq_add(c, r, url, sizeof(url), err);
    if (rc < 0) {
        sreq_free(r);
        return rc;
    }
    /* ExecResponse, AttachResponse and PortForwardResponse are all { string url = 1; } */
    Runtime__V1__ExecResponse out = RUNTIME__V1__EXEC_RESPONSE__INIT;
    out.base.descriptor = d;
    out.url = url;
    return cri_reply(c, &out.base, resp, resp_len);
}

int
cri_rpc_Exec(void *user, const char *namespace_, const uint8_t *req, size_t req_len, uint8_t **resp,
             size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__ExecRequest *in = runtime__v1__exec_request__unpack(NULL, req_len, req);
    if (in == NULL)
        return c->api->error_make(err, BERTH_EINVAL, "Exec: the request does not unpack");
    int rc = 0;
    if (in->n_cmd == 0)
        rc = c->api->error_make(err, BERTH_EINVAL, "Exec: cmd is empty");
    if (rc == 0)
        rc = check_streams(c, in->tty, in->stdin, in->stdout, in->stderr, err);
    if (rc == 0)
        rc = running_container(c, in->container_id, NULL, err);
    if (rc == 0) {
        sreq_t *r = calloc(1, sizeof(*r));
        r->kind = SREQ_EXEC;
        snprintf(r->id, sizeof(r->id), "%s", in->container_id);
        r->cmd = calloc(in->n_cmd + 1, sizeof(char *));
        for (size_t i = 0; i < in->n_cmd; i++)
            r->cmd[i] = strdup(in->cmd[i]);
        r->in = in->stdin, r->out = in->stdout, r->err = in->stderr, r->tty = in->tty;
        rc = reply_url(c, r, &runtime__v1__exec_response__descriptor, resp, resp_len, err);
    }
    runtime__v1__exec_request__free_unpacked(in, NULL);
    return rc;
}

int
cri_rpc_Attach(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
               uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__AttachRequest *in = runtime__v1__attach_request__unpack(NULL, req_len, req);
    if (in == NULL)
        return c->api->error_make(err, BERTH_EINVAL, "Attach: the request does not unpack");
    int tty = 0;
    int rc = check_streams(c, in->tty, in->stdin, in->stdout, in->stderr, err);
    if (rc == 0)
        rc = running_container(c, in->container_id, &tty, err);
    if (rc == 0) {
        sreq_t *r = calloc(1, sizeof(*r));
        r->kind = SREQ_ATTACH;
        snprintf(r->id, sizeof(r->id), "%s", in->container_id);
        /* the container's terminal decides how its output comes (one stream) */
        r->in = in->stdin, r->out = in->stdout, r->err = in->stderr && !tty, r->tty = in->tty;
        rc = reply_url(c, r, &runtime__v1__attach_response__descriptor, resp, resp_len, err);
    }
    runtime__v1__attach_request__free_unpacked(in, NULL);
    return rc;
}

int
cri_rpc_PortForward(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                    uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__PortForwardRequest *in =
        runtime__v1__port_forward_request__unpack(NULL, req_len, req);
    if (in == NULL)
        return c->api->error_make(err, BERTH_EINVAL, "PortForward: the request does not unpack");
    cri_sandbox_t *s = NULL;
    int rc = cri_sandbox_find(c, in->pod_sandbox_id, &s, err);
    if (rc == 0 && s->state != CRI_SANDBOX_READY)
        rc = c->api->error_make(err, BERTH_EPRECONDITION, "pod sandbox %s: not ready", s->id);
    for (size_t i = 0; rc == 0 && i < in->n_port; i++)
        if (in->port[i] <= 0 || in->port[i] > 65535)
            rc = c->api->error_make(err, BERTH_EINVAL, "PortForward: port %d: out of range",
                                    in->port[i]);
    if (rc == 0) {
        sreq_t *r = calloc(1, sizeof(*r));
        r->kind = SREQ_PORTFORWARD;
        snprintf(r->id, sizeof(r->id), "%s", s->id);
        r->n_ports = in->n_port;
        r->ports = calloc(in->n_port + 1, sizeof(int32_t));
        if (in->n_port) /* crictl's port-forward names no port here: they come with the streams */
            memcpy(r->ports, in->port, in->n_port * sizeof(int32_t));
        rc = reply_url(c, r, &runtime__v1__port_forward_response__descriptor, resp, resp_len, err);
    }
    if (s)
        cri_sandbox_unref(s);
    runtime__v1__port_forward_request__free_unpacked(in, NULL);
    return rc;
}

/* ---- connections ------------------------------------------------------------------------------- */

static void sconn_free(sconn_t *k);

void
sconn_ref(sconn_t *k)
{
    k->refs++;
}

void
sconn_unref(sconn_t *k)
{
    if (--k->refs == 0 && k->handles == 0)
        sconn_free(k);
}

void
sconn_handle_closed(uv_handle_t *h)
{
    sconn_t *k = h->data;
    if (--k->handles == 0 && k->refs == 0)
        sconn_free(k);
}

static void
sconn_free(sconn_t *k)
{
    cri_stream_server_t *s = k->srv;
    if (k->prev)
        k->prev->next = k->next;
    else if (s->conns == k)
        s->conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    sbuf_free(&k->in);
    sbuf_free(&k->resize);
    sbuf_free(&k->tin);
    if (k->z_ok)
        spdy_zlib_free(&k->z);
    if (k->ws)
        libwslay.wslay_event_context_free(k->ws);
    if (k->rcs)
        rcs_free(k->rcs);
    if (k->pfs)
        pfs_free(k->pfs);
    sreq_free(k->req);
    free(k);
    if (s->stopping)
        server_maybe_free(s);
}

typedef struct wreq {
    uv_write_t w;
    uv_buf_t b;
} wreq_t;

static void
on_written(uv_write_t *w, int status)
{
    (void)status;
    wreq_t *r = (wreq_t *)w;
    free(r->b.base);
    free(r);
}

static void
sconn_write(sconn_t *k, const void *p, size_t n)
{
    if (k->closing || k->ended || n == 0)
        return;
    wreq_t *r = malloc(sizeof(*r));
    r->b = uv_buf_init(malloc(n), (unsigned)n);
    memcpy(r->b.base, p, n);
    if (uv_write(&r->w, (uv_stream_t *)&k->tcp, &r->b, 1, on_written) < 0) {
        free(r->b.base);
        free(r);
    }
}

static void ws_flush(sconn_t *k);

/* SPDY's output: on the socket, or in a WebSocket message when it is tunnelled */
static void
sconn_write_buf(sconn_t *k, sbuf_t *b)
{
    if (k->tunnel && b->len && !k->closing) {
        struct wslay_event_msg msg = {WSLAY_BINARY_FRAME, b->p, b->len};
        libwslay.wslay_event_queue_msg(k->ws, &msg); /* wslay copies */
        ws_flush(k);
    } else {
        sconn_write(k, b->p, b->len);
    }
    b->len = 0;
}

/* Closes the connection now: the sessions are told, the socket closed once pending writes went. */
static void
sconn_close(sconn_t *k)
{
    if (k->closing)
        return;
    if (k->rcs)
        rcs_gone(k);
    if (k->pfs)
        pfs_gone(k);
    k->closing = 1;
    uv_close((uv_handle_t *)&k->tcp, sconn_handle_closed);
}

static void
on_shutdown(uv_shutdown_t *sh, int status)
{
    (void)status;
    sconn_t *k = sh->data;
    free(sh);
    sconn_close(k);
    sconn_unref(k);
}

/* Ends the connection after what was written: what the sessions send last reaches the client. */
void
sconn_end(sconn_t *k)
{
    if (k->ended || k->closing)
        return;
    k->ended = 1;
    uv_shutdown_t *sh = malloc(sizeof(*sh));
    sh->data = k;
    sconn_ref(k);
    if (uv_shutdown(sh, (uv_stream_t *)&k->tcp, on_shutdown) < 0) {
        free(sh);
        sconn_unref(k);
        sconn_close(k);
    }
}

static void
http_error(sconn_t *k, int code, const char *reason, const char *extra, const char *msg)
{
    char buf[1024];
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n%s"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     code, reason, extra ? extra : "", strlen(msg), msg);
    sconn_write(k, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
    sconn_end(k);
}

typedef struct work {
    uv_work_t w;
    sconn_t *k;
    void (*work)(void *), (*done)(void *);
    void *arg;
} work_t;

static void
work_run(uv_work_t *w)
{
    work_t *x = w->data;
    x->work(x->arg);
}

static void
work_done(uv_work_t *w, int status)
{
    (void)status;
    work_t *x = w->data;
    if (x->done)
        x->done(x->arg);
    sconn_unref(x->k);
    free(x);
}

void
stream_work(sconn_t *k, void (*work)(void *arg), void (*done)(void *arg), void *arg)
{
    work_t *x = calloc(1, sizeof(*x));
    x->w.data = x;
    x->k = k;
    x->work = work;
    x->done = done;
    x->arg = arg;
    sconn_ref(k);
    if (uv_queue_work(k->c->loop, &x->w, work_run, work_done) < 0) {
        work_run(&x->w); /* cannot happen with a live loop; keeps the contract */
        work_done(&x->w, 0);
    }
}

/* ---- remotecommand output ------------------------------------------------------------------------- */

static void
ws_flush(sconn_t *k)
{
    if (k->ws && !k->closing)
        libwslay.wslay_event_send(k->ws);
}

void
rc_send(sconn_t *k, int ch, const void *p, size_t n)
{
    if (k->closing)
        return;
    if (k->mode == MODE_SPDY) {
        if (k->ch_sid[ch] == 0)
            return;
        sbuf_t out = {0};
        size_t off = 0;
        do { /* an empty message is one empty frame */
            size_t m = n - off > 32768 ? 32768 : n - off;
            spdy_put_data(&out, k->ch_sid[ch], 0, p ? (const uint8_t *)p + off : NULL, m);
            off += m;
        } while (off < n);
        sconn_write_buf(k, &out);
        sbuf_free(&out);
    } else if (k->mode == MODE_WS) {
        size_t len;
        uint8_t *m = ws_channel_encode(&k->wsp, ch, p, n, &len);
        struct wslay_event_msg msg = {k->wsp.base64 ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME, m,
                                      len};
        libwslay.wslay_event_queue_msg(k->ws, &msg); /* wslay copies */
        free(m);
        ws_flush(k);
    }
}

void
rc_end(sconn_t *k, int exit_code, const char *msg)
{
    if (k->closing || k->ended)
        return;
    char *status = rc_status(k->proto, exit_code, msg);
    if (k->mode == MODE_SPDY) {
        sbuf_t out = {0};
        static const int order[] = {CH_STDOUT, CH_STDERR, CH_ERROR, CH_STDIN, CH_RESIZE};
        for (size_t i = 0; i < 5; i++) {
            uint32_t sid = k->ch_sid[order[i]];
            if (sid == 0)
                continue;
            if (order[i] == CH_ERROR && *status)
                spdy_put_data(&out, sid, 0, status, strlen(status));
            spdy_put_data(&out, sid, SPDY_FLAG_FIN, NULL, 0);
        }
        spdy_put_goaway(&out, k->last_sid, 0);
        sconn_write_buf(k, &out);
        sbuf_free(&out);
    } else if (k->mode == MODE_WS) {
        if (*status)
            rc_send(k, CH_ERROR, status, strlen(status));
        libwslay.wslay_event_queue_close(k->ws, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
        ws_flush(k);
    }
    free(status);
    sconn_end(k);
}

/* ---- SPDY ----------------------------------------------------------------------------------------- */

static int
channel_of(const char *type)
{
    static const char *const names[CH_COUNT] = {"stdin", "stdout", "stderr", "error", "resize"};
    for (int i = 0; type && i < CH_COUNT; i++)
        if (strcmp(type, names[i]) == 0)
            return i;
    return -1;
}

static void
on_size(void *user, unsigned w, unsigned h)
{
    rcs_resize(user, w, h);
}

/* The remotecommand session starts once the error stream and every stream the request asked for
 * are there (kubelet waits for the same set). */
static void
rc_maybe_start(sconn_t *k)
{
    if (k->rcs || k->closing)
        return;
    sreq_t *r = k->req;
    if (!k->ch_sid[CH_ERROR] || (r->in && !k->ch_sid[CH_STDIN]) ||
        (r->out && !k->ch_sid[CH_STDOUT]) || (r->err && !r->tty && !k->ch_sid[CH_STDERR]))
        return;
    rcs_start(k);
}

static void
spdy_rc_data(sconn_t *k, uint32_t sid, const uint8_t *p, size_t n, int fin)
{
    if (sid == k->ch_sid[CH_STDIN] && sid) {
        if (n)
            rcs_stdin(k, p, n);
        if (fin)
            rcs_stdin_eof(k);
    } else if (sid == k->ch_sid[CH_RESIZE] && sid) {
        sbuf_put(&k->resize, p, n);
        ssize_t used = rc_resize_parse((const char *)k->resize.p, k->resize.len, on_size, k);
        if (used < 0)
            k->resize.len = 0;
        else
            sbuf_consume(&k->resize, (size_t)used);
    }
}

static void
spdy_syn_stream(sconn_t *k, const spdy_frame_t *f)
{
    spdy_headers_t h;
    const char *why = "";
    if (spdy_headers_decode(&k->z, f->data, f->len, &h, &why) < 0 ||
        ((f->stream_id <= k->last_sid || !(f->stream_id & 1)) &&
         (spdy_headers_free(&h), why = "stream id out of order"))) {
        k->c->api->log(k->c->log, BERTH_LOG_WARN, "streaming: SPDY: %s", why);
        sconn_close(k);
        return;
    }
    k->last_sid = f->stream_id;
    sbuf_t out = {0};
    spdy_put_syn_reply(&out, &k->z, f->stream_id, 0, NULL, NULL, 0);
    sconn_write_buf(k, &out);
    sbuf_free(&out);
    const char *type = spdy_headers_get(&h, "streamtype");
    int fin = f->flags & SPDY_FLAG_FIN;
    if (k->req->kind == SREQ_PORTFORWARD) {
        pfs_stream(k, f->stream_id, type, spdy_headers_get(&h, "port"),
                   spdy_headers_get(&h, "requestid"), fin);
    } else {
        int ch = channel_of(type);
        if (ch < 0 || k->ch_sid[ch]) {
            out = (sbuf_t){0};
            spdy_put_rst(&out, f->stream_id, SPDY_RST_REFUSED_STREAM);
            sconn_write_buf(k, &out);
            sbuf_free(&out);
        } else {
            k->ch_sid[ch] = f->stream_id;
            rc_maybe_start(k);
            if (fin)
                spdy_rc_data(k, f->stream_id, NULL, 0, 1);
        }
    }
    spdy_headers_free(&h);
}

static void
spdy_input(sconn_t *k, sbuf_t *in)
{
    size_t off = 0;
    while (!k->closing) {
        spdy_frame_t f;
        const char *why = "";
        ssize_t n = spdy_frame_parse(in->p + off, in->len - off, &f, &why);
        if (n == 0)
            break;
        if (n < 0) {
            k->c->api->log(k->c->log, BERTH_LOG_WARN, "streaming: SPDY: %s", why);
            sconn_close(k);
            return;
        }
        off += (size_t)n;
        int fin = f.flags & SPDY_FLAG_FIN;
        sbuf_t out = {0};
        switch (f.type) {
        case SPDY_SYN_STREAM:
            spdy_syn_stream(k, &f);
            break;
        case SPDY_DATA:
            if (k->req->kind == SREQ_PORTFORWARD)
                pfs_data(k, f.stream_id, f.data, f.len, fin);
            else
                spdy_rc_data(k, f.stream_id, f.data, f.len, fin);
            break;
        case SPDY_RST_STREAM:
            if (k->req->kind == SREQ_PORTFORWARD)
                pfs_reset(k, f.stream_id);
            else if (f.stream_id == k->ch_sid[CH_STDIN])
                rcs_stdin_eof(k);
            break;
        case SPDY_PING:
            spdy_put_ping(&out, f.value);
            sconn_write_buf(k, &out);
            break;
        case SPDY_GOAWAY:
            sconn_end(k);
            break;
        case SPDY_HEADERS: { /* decoded to keep the zlib stream in step; nothing to do with them */
            spdy_headers_t h;
            if (spdy_headers_decode(&k->z, f.data, f.len, &h, &why) == 0)
                spdy_headers_free(&h);
            break;
        }
        default: /* SETTINGS, WINDOW_UPDATE: spdystream sends no windows we must honour */
            break;
        }
        sbuf_free(&out);
    }
    if (!k->closing)
        sbuf_consume(in, off);
}

void
pf_spdy_data(sconn_t *k, uint32_t sid, const void *p, size_t n, int fin)
{
    if (k->closing)
        return;
    sbuf_t out = {0};
    size_t off = 0;
    do {
        size_t m = n - off > 32768 ? 32768 : n - off;
        spdy_put_data(&out, sid, fin && off + m == n ? SPDY_FLAG_FIN : 0,
                      p ? (const uint8_t *)p + off : NULL, m);
        off += m;
    } while (off < n);
    sconn_write_buf(k, &out);
    sbuf_free(&out);
}

void
spdy_send_rst(sconn_t *k, uint32_t sid, uint32_t status)
{
    sbuf_t out = {0};
    spdy_put_rst(&out, sid, status);
    sconn_write_buf(k, &out);
    sbuf_free(&out);
}

/* ---- WebSocket ------------------------------------------------------------------------------------ */

static ssize_t
ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    (void)flags;
    sconn_t *k = user;
    if (k->in.len == 0) {
        libwslay.wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < k->in.len ? len : k->in.len;
    memcpy(buf, k->in.p, n);
    sbuf_consume(&k->in, n);
    return (ssize_t)n;
}

static ssize_t
ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
    (void)ctx, (void)flags;
    sconn_write(user, data, len);
    return (ssize_t)len;
}

static void
ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    (void)ctx;
    sconn_t *k = user;
    if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
        sconn_end(k);
        return;
    }
    if (arg->opcode != WSLAY_BINARY_FRAME && arg->opcode != WSLAY_TEXT_FRAME)
        return;
    if (k->tunnel) { /* the messages are a byte stream of SPDY frames */
        sbuf_put(&k->tin, arg->msg, arg->msg_length);
        spdy_input(k, &k->tin);
        return;
    }
    if (k->wsp.version == RC_V5 && arg->msg_length == 2 && arg->msg[0] == 255) {
        if (arg->msg[1] == CH_STDIN)
            rcs_stdin_eof(k); /* v5's close signal: the client's stdin ended */
        return;
    }
    int ch;
    uint8_t *d;
    size_t n;
    if (ws_channel_decode(&k->wsp, arg->msg, arg->msg_length, &ch, &d, &n) < 0)
        return;
    if (ch == CH_STDIN && n)
        rcs_stdin(k, d, n);
    else if (ch == CH_RESIZE) {
        sbuf_put(&k->resize, d, n);
        ssize_t used = rc_resize_parse((const char *)k->resize.p, k->resize.len, on_size, k);
        if (used < 0)
            k->resize.len = 0;
        else
            sbuf_consume(&k->resize, (size_t)used);
    }
    free(d);
}

static void
ws_input(sconn_t *k)
{
    if (libwslay.wslay_event_recv(k->ws) != 0) {
        sconn_close(k);
        return;
    }
    ws_flush(k); /* pongs, close replies */
    if (!libwslay.wslay_event_want_read(k->ws) && !libwslay.wslay_event_want_write(k->ws))
        sconn_end(k);
}

/* ---- the upgrade --------------------------------------------------------------------------------- */

static int
upgrade_is(const http_req_t *r, const char *proto)
{
    const char *u = http_req_header(r, "upgrade");
    return u && strcasecmp(u, proto) == 0;
}

static void
upgrade_spdy(sconn_t *k, const http_req_t *r)
{
    char *tok[16];
    size_t n = http_req_tokens(r, "x-stream-protocol-version", tok, 16);
    const char *chosen = NULL;
    if (k->req->kind == SREQ_PORTFORWARD) {
        for (size_t i = 0; i < n && !chosen; i++)
            if (strcmp(tok[i], "portforward.k8s.io") == 0)
                chosen = "portforward.k8s.io";
    } else {
        k->proto = rc_spdy_negotiate(tok, n, &chosen);
    }
    for (size_t i = 0; i < n; i++)
        free(tok[i]);
    if (chosen == NULL) {
        const char *acc = k->req->kind == SREQ_PORTFORWARD
                              ? "X-Accepted-Stream-Protocol-Versions: portforward.k8s.io\r\n"
                              : "X-Accepted-Stream-Protocol-Versions: v4.channel.k8s.io\r\n"
                                "X-Accepted-Stream-Protocol-Versions: v3.channel.k8s.io\r\n"
                                "X-Accepted-Stream-Protocol-Versions: v2.channel.k8s.io\r\n"
                                "X-Accepted-Stream-Protocol-Versions: channel.k8s.io\r\n";
        http_error(k, 403, "Forbidden", acc,
                   n ? "unable to upgrade: unable to negotiate protocol\n"
                     : "unable to upgrade: X-Stream-Protocol-Version is required\n");
        return;
    }
    if (spdy_zlib_init(&k->z) < 0) {
        http_error(k, 500, "Internal Server Error", NULL, "zlib\n");
        return;
    }
    k->z_ok = 1;
    char buf[256];
    int len = snprintf(buf, sizeof(buf),
                       "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                       "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: %s\r\n\r\n",
                       chosen);
    sconn_write(k, buf, (size_t)len);
    k->mode = MODE_SPDY;
}

static void
upgrade_ws(sconn_t *k, const http_req_t *r)
{
    const char *key = http_req_header(r, "sec-websocket-key");
    char accept[29];
    if (key == NULL || ws_accept_key(key, accept) < 0) {
        http_error(k, 400, "Bad Request", NULL, "missing Sec-WebSocket-Key\n");
        return;
    }
    char *tok[16];
    size_t n = http_req_tokens(r, "sec-websocket-protocol", tok, 16);
    int rc = -1;
    if (k->req->kind == SREQ_PORTFORWARD) {
        /* kubectl/crictl port-forward --transport websocket: SPDY tunnelled in binary messages */
        for (size_t i = 0; i < n && rc < 0; i++)
            if (strcmp(tok[i], "SPDY/3.1+portforward.k8s.io") == 0)
                rc = 0;
        k->wsp = (ws_proto_t){"SPDY/3.1+portforward.k8s.io", RC_V4, 0};
        if (rc == 0 && spdy_zlib_init(&k->z) == 0)
            k->z_ok = k->tunnel = 1;
        else
            rc = -1;
    } else {
        rc = ws_negotiate(tok, n, &k->wsp);
    }
    for (size_t i = 0; i < n; i++)
        free(tok[i]);
    if (rc < 0) {
        http_error(k, 400, "Bad Request", NULL, "unable to negotiate a channel subprotocol\n");
        return;
    }
    k->proto = k->wsp.version;
    if (libwslay_load(NULL, NULL) < 0) {
        http_error(k, 500, "Internal Server Error", NULL, "libwslay.so: cannot open\n");
        return;
    }
    static const struct wslay_event_callbacks cb = {ws_recv_cb, ws_send_cb, NULL,     NULL,
                                                    NULL,       NULL,       ws_msg_cb};
    libwslay.wslay_event_context_server_init(&k->ws, &cb, k);
    char buf[512], proto[128] = "";
    if (*k->wsp.name)
        snprintf(proto, sizeof(proto), "Sec-WebSocket-Protocol: %s\r\n", k->wsp.name);
    int len = snprintf(buf, sizeof(buf),
                       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
                       accept, proto);
    sconn_write(k, buf, (size_t)len);
    k->mode = MODE_WS;
    if (k->tunnel)
        return;
    /* kubelet tells the client the channels are open with an empty message on the first output */
    sreq_t *q = k->req;
    rc_send(k, q->out ? CH_STDOUT : q->err ? CH_STDERR : CH_ERROR, "", 0);
    /* every channel exists at once in WebSocket */
    for (int ch = 0; ch < CH_COUNT; ch++)
        k->ch_sid[ch] = 1;
    rcs_start(k);
}

static void
head_input(sconn_t *k)
{
    http_req_t r;
    ssize_t n = http_req_parse((const char *)k->in.p, k->in.len, &r);
    if (n == 0)
        return;
    if (n < 0) {
        http_error(k, 400, "Bad Request", NULL, "malformed request\n");
        return;
    }
    sbuf_consume(&k->in, (size_t)n);
    static const struct {
        const char *prefix;
        sreq_kind_t kind;
    } routes[] = {
        {"/exec/", SREQ_EXEC}, {"/attach/", SREQ_ATTACH}, {"/portforward/", SREQ_PORTFORWARD}};
    for (size_t i = 0; i < 3 && k->req == NULL; i++) {
        size_t l = strlen(routes[i].prefix);
        if (strncmp(r.path, routes[i].prefix, l) == 0)
            k->req = sreq_take(k->srv, routes[i].kind, r.path + l);
    }
    if (k->req == NULL)
        http_error(k, 404, "Not Found", NULL, "404 page not found\n");
    else if (upgrade_is(&r, "websocket"))
        upgrade_ws(k, &r);
    else if (upgrade_is(&r, "SPDY/3.1"))
        upgrade_spdy(k, &r);
    else
        http_error(k, 400, "Bad Request", NULL, "unable to upgrade: missing upgrade headers\n");
    http_req_free(&r);
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(suggested);
    b->len = suggested;
}

static void
on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    sconn_t *k = st->data;
    if (n < 0) {
        free(b->base);
        sconn_close(k);
        return;
    }
    sbuf_put(&k->in, b->base, (size_t)n);
    free(b->base);
    if (k->in.len > (64u << 20)) { /* a client that sends without reading what it asked for */
        sconn_close(k);
        return;
    }
    if (k->mode == MODE_HEAD)
        head_input(k);
    if (k->closing)
        return;
    if (k->mode == MODE_SPDY)
        spdy_input(k, &k->in);
    else if (k->mode == MODE_WS)
        ws_input(k);
}

static void
on_connection(uv_stream_t *server, int status)
{
    cri_stream_server_t *s = server->data;
    if (status < 0)
        return;
    sconn_t *k = calloc(1, sizeof(*k));
    k->srv = s;
    k->c = s->c;
    uv_tcp_init(s->c->loop, &k->tcp);
    k->tcp.data = k;
    k->handles = 1;
    k->next = s->conns;
    if (s->conns)
        s->conns->prev = k;
    s->conns = k;
    if (uv_accept(server, (uv_stream_t *)&k->tcp) < 0 ||
        uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read) < 0)
        sconn_close(k);
}

/* ---- start and stop ------------------------------------------------------------------------------ */

/* a server that could not listen: freed once its handle is closed (the handle is not its first field) */
static void
server_unbound(uv_handle_t *h)
{
    cri_stream_server_t *s = h->data;
    pthread_mutex_destroy(&s->lock);
    free(s);
}

int
cri_stream_server_start(cri_t *c, berth_error_t **err)
{
    cri_stream_server_t *s = calloc(1, sizeof(*s));
    s->c = c;
    pthread_mutex_init(&s->lock, NULL);
    struct sockaddr_storage ss;
    const char *addr = c->cfg.stream_address;
    int port = (int)c->cfg.stream_port;
    int rc = strchr(addr, ':') ? uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&ss)
                               : uv_ip4_addr(addr, port, (struct sockaddr_in *)&ss);
    if (rc < 0) {
        free(s);
        return c->api->error_make(err, BERTH_EINVAL, "stream_address %s: not an IP address", addr);
    }
    uv_tcp_init(c->loop, &s->tcp);
    s->tcp.data = s;
    rc = uv_tcp_bind(&s->tcp, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->tcp, 128, on_connection);
    if (rc < 0) {
        uv_close((uv_handle_t *)&s->tcp, server_unbound);
        return c->api->error_make(err, BERTH_EUNAVAILABLE, "streaming server on %s:%d: %s", addr,
                                  port, uv_strerror(rc));
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&bound, &len);
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    c->streams = s;
    c->api->log(c->log, BERTH_LOG_INFO, "streaming server on %s:%d", addr, s->port);
    return 0;
}

/* The server goes once its socket is closed and its last connection gone. */
static void
server_maybe_free(cri_stream_server_t *s)
{
    if (!s->tcp_closed || s->conns)
        return;
    for (sreq_t *r = s->reqs, *next; r; r = next) {
        next = r->next;
        sreq_free(r);
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static void
server_closed(uv_handle_t *h)
{
    cri_stream_server_t *s = h->data;
    s->tcp_closed = 1;
    server_maybe_free(s);
}

void
cri_stream_server_stop(cri_t *c)
{
    cri_stream_server_t *s = c->streams;
    if (s == NULL)
        return;
    s->stopping = 1;
    for (sconn_t *k = s->conns; k; k = k->next)
        sconn_close(k);
    pthread_mutex_lock(&s->lock);
    c->streams = NULL;
    pthread_mutex_unlock(&s->lock);
    uv_close((uv_handle_t *)&s->tcp, server_closed);
}
