/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Port-forward behind the streaming server (stream.c), SPDY portforward.k8s.io as kubelet serves it:
 * the client opens a pair of streams per connection (streamType error and data, with the same port and
 * requestID headers); the server connects to 127.0.0.1:<port> inside the pod's network namespace (a
 * short-lived thread setns()s there, connects, and is gone) and copies both ways on the loop. A failure
 * is told on the pair's error stream; the pair ends with both streams closed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stream_int.h"

struct pfpair {
    pfpair_t *next;
    sconn_t *k;
    char request_id[64];
    int port;
    uint32_t data_sid, err_sid;
    int connecting, done;
    int fd;
    uv_tcp_t tcp;
    int tcp_open;
    sbuf_t pending; /* client data before the connection is made */
    int fin_in;     /* the client ended its data stream */
    int shut;
    char *errmsg;
};

struct pfs {
    pfpair_t *pairs;
};

static pfs_t *
pfs_of(sconn_t *k)
{
    if (k->pfs == NULL)
        k->pfs = calloc(1, sizeof(pfs_t));
    return k->pfs;
}

static pfpair_t *
pair_by_sid(sconn_t *k, uint32_t sid)
{
    for (pfpair_t *p = k->pfs ? k->pfs->pairs : NULL; p; p = p->next)
        if (p->data_sid == sid || p->err_sid == sid)
            return p;
    return NULL;
}

/* ---- connecting inside the pod's network namespace ---------------------------------------------- */

typedef struct dial {
    const char *netns;
    int port;
    int fd;
    int err;
} dial_t;

static void *
dial_thread(void *arg)
{
    dial_t *d = arg;
    int self = -1, target = -1;
    d->fd = -1;
    if (d->netns && *d->netns) {
        self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        target = open(d->netns, O_RDONLY | O_CLOEXEC);
        if (self < 0 || target < 0 || setns(target, CLONE_NEWNET) < 0) {
            d->err = errno;
            goto out;
        }
    }
    d->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)d->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (d->fd < 0 || connect(d->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        d->err = errno;
        if (d->fd >= 0)
            close(d->fd);
        d->fd = -1;
    }
    /* the thread ends here, so its namespace goes with it; back anyway, as a courtesy to tools */
    if (self >= 0 && target >= 0)
        setns(self, CLONE_NEWNET);
out:
    if (self >= 0)
        close(self);
    if (target >= 0)
        close(target);
    return NULL;
}

static void
connect_run(void *arg)
{
    pfpair_t *p = arg;
    cri_t *c = p->k->c;
    berth_error_t *e = NULL;
    cri_sandbox_t *s = NULL;
    char msg[512];
    if (cri_sandbox_find(c, p->k->req->id, &s, &e) < 0) {
        snprintf(msg, sizeof(msg), "%s", e->message);
        c->api->error_free(e);
        p->errmsg = strdup(msg);
        return;
    }
    dial_t d = {.netns = s->netns_path, .port = p->port};
    pthread_t t;
    /* a thread of its own: setns() changes the calling thread, and pool threads are shared */
    if (pthread_create(&t, NULL, dial_thread, &d) != 0) {
        d.err = EAGAIN;
    } else {
        pthread_join(t, NULL);
    }
    if (d.fd < 0) {
        snprintf(msg, sizeof(msg),
                 "error forwarding port %d to pod %s: failed to connect to localhost:%d inside "
                 "namespace %s: %s",
                 p->port, s->id, p->port, *s->netns_path ? s->netns_path : "(host)",
                 strerror(d.err));
        p->errmsg = strdup(msg);
    }
    p->fd = d.fd;
    cri_sandbox_unref(s);
}

/* ---- the pair on the loop ---------------------------------------------------------------------- */

static void
pair_closed(uv_handle_t *h)
{
    sconn_handle_closed(h);
}

/* Both streams closed; the socket too. */
static void
pair_end(pfpair_t *p)
{
    if (p->done)
        return;
    p->done = 1;
    if (p->errmsg)
        pf_spdy_data(p->k, p->err_sid, p->errmsg, strlen(p->errmsg), 0);
    pf_spdy_data(p->k, p->data_sid, NULL, 0, 1);
    pf_spdy_data(p->k, p->err_sid, NULL, 0, 1);
    if (p->tcp_open) {
        p->tcp_open = 0;
        p->tcp.data = p->k;
        uv_close((uv_handle_t *)&p->tcp, pair_closed);
    }
}

static void
tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(suggested);
    b->len = suggested;
}

static void
tcp_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    pfpair_t *p = st->data;
    if (n > 0 && !p->done)
        pf_spdy_data(p->k, p->data_sid, b->base, (size_t)n, 0);
    free(b->base);
    if (n < 0) /* the pod's side ended (or failed): so does the pair */
        pair_end(p);
}

static void
pending_written(uv_write_t *w, int status)
{
    (void)status;
    free(w->data);
    free(w);
}

static void
on_shut(uv_shutdown_t *sh, int status)
{
    (void)status;
    free(sh);
}

static void
flush(pfpair_t *p)
{
    if (!p->tcp_open || p->done)
        return;
    if (p->pending.len) {
        uv_write_t *w = malloc(sizeof(*w));
        uv_buf_t b = uv_buf_init((char *)p->pending.p, (unsigned)p->pending.len);
        w->data = p->pending.p;
        p->pending = (sbuf_t){0};
        if (uv_write(w, (uv_stream_t *)&p->tcp, &b, 1, pending_written) < 0) {
            free(w->data);
            free(w);
        }
    }
    if (p->fin_in && !p->shut) {
        p->shut = 1; /* a TCP FIN to the pod's server: the client sends no more */
        uv_shutdown_t *sh = malloc(sizeof(*sh));
        if (uv_shutdown(sh, (uv_stream_t *)&p->tcp, on_shut) < 0)
            free(sh);
    }
}

static void
connected(void *arg)
{
    pfpair_t *p = arg;
    p->connecting = 0;
    if (p->done || p->k->closing) {
        if (p->fd >= 0)
            close(p->fd);
        p->fd = -1;
        return;
    }
    if (p->fd < 0) {
        pair_end(p);
        return;
    }
    uv_tcp_init(p->k->c->loop, &p->tcp);
    p->tcp.data = p;
    p->k->handles++;
    p->tcp_open = 1;
    if (uv_tcp_open(&p->tcp, p->fd) < 0) {
        close(p->fd);
        p->fd = -1;
        pair_end(p);
        return;
    }
    p->fd = -1;
    uv_read_start((uv_stream_t *)&p->tcp, tcp_alloc, tcp_read);
    flush(p);
}

void
pfs_stream(sconn_t *k, uint32_t sid, const char *type, const char *port, const char *request_id,
           int fin)
{
    pfs_t *ps = pfs_of(k);
    int is_data = type && strcmp(type, "data") == 0;
    int is_err = type && strcmp(type, "error") == 0;
    char *end = NULL;
    long pn = port ? strtol(port, &end, 10) : 0;
    if ((!is_data && !is_err) || pn <= 0 || pn > 65535 || (end && *end)) {
        spdy_send_rst(k, sid, SPDY_RST_PROTOCOL_ERROR);
        return;
    }
    char rid[64];
    /* clients before requestID paired streams by order: the data stream follows its error stream */
    snprintf(rid, sizeof(rid), "%s", request_id ? request_id : "");
    pfpair_t *p = NULL;
    for (pfpair_t *q = ps->pairs; q; q = q->next)
        if (!q->done && strcmp(q->request_id, rid) == 0 && (is_data ? !q->data_sid : !q->err_sid))
            p = q;
    if (p == NULL) {
        p = calloc(1, sizeof(*p));
        p->k = k;
        p->fd = -1;
        p->port = (int)pn;
        snprintf(p->request_id, sizeof(p->request_id), "%s", rid);
        p->next = ps->pairs;
        ps->pairs = p;
    }
    if (is_data) {
        p->data_sid = sid;
        p->fin_in = fin;
    } else {
        p->err_sid = sid;
    }
    if (p->data_sid && p->err_sid && !p->connecting) {
        p->connecting = 1;
        stream_work(k, connect_run, connected, p);
    }
}

void
pfs_data(sconn_t *k, uint32_t sid, const uint8_t *data, size_t n, int fin)
{
    pfpair_t *p = pair_by_sid(k, sid);
    if (p == NULL || p->done || sid != p->data_sid)
        return; /* the error stream carries nothing from the client */
    sbuf_put(&p->pending, data, n);
    if (fin)
        p->fin_in = 1;
    flush(p);
}

void
pfs_reset(sconn_t *k, uint32_t sid)
{
    pfpair_t *p = pair_by_sid(k, sid);
    if (p && !p->done && !p->connecting)
        pair_end(p);
    else if (p)
        p->done = 1; /* connected() closes what it made */
}

void
pfs_gone(sconn_t *k)
{
    for (pfpair_t *p = k->pfs ? k->pfs->pairs : NULL; p; p = p->next) {
        if (p->tcp_open) {
            p->tcp_open = 0;
            p->tcp.data = k;
            uv_close((uv_handle_t *)&p->tcp, pair_closed);
        }
        p->done = 1;
    }
}

void
pfs_free(pfs_t *ps)
{
    for (pfpair_t *p = ps->pairs, *next; p; p = next) {
        next = p->next;
        if (p->fd >= 0)
            close(p->fd);
        sbuf_free(&p->pending);
        free(p->errmsg);
        free(p);
    }
    free(ps);
}
