/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cri_call_server_stream: a server-streaming method of another module's service, in process, in the
 * k8s.io namespace (Content.Read above all: image manifests and configs). cri_call takes unary methods
 * only; a stream's handler runs on the loop thread and sends through a stream API, so this plays the
 * transport: it opens the stream on the loop, hands each message to the caller's callback (on the loop
 * thread), and waits on the calling (pool) thread until the handler finished and was told the stream
 * closed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "container.h"

typedef struct scall {
    cri_t *c;
    const berth_grpc_method_t *m;
    void *instance;
    uint8_t *req;
    size_t req_len;
    int (*cb)(void *user, const uint8_t *msg, size_t len);
    void *cb_user;
    void *stream_user; /* the handler's (set_user) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int finished, closed, abandoned;
    int code;
    char message[512];
} scall_t;

/* the berth_grpc_stream_t the handler sees is this call */
#define CALL(st) ((scall_t *)(void *)(st))

static void scall_free(scall_t *s);
static const berth_grpc_stream_api_t sapi; /* below */

static int
s_send(berth_grpc_stream_t *st, const uint8_t *msg, size_t len)
{
    scall_t *s = CALL(st);
    if (s->finished)
        return BERTH_EUNAVAILABLE;
    if (s->cb != NULL && s->cb(s->cb_user, msg, len) != 0) {
        s->cb = NULL; /* the caller has enough; the rest is dropped */
    }
    return 0;
}

static void
closed_run(void *arg)
{
    scall_t *s = arg;
    if (s->m->closed != NULL)
        s->m->closed(s->instance, &sapi, (berth_grpc_stream_t *)(void *)s);
    pthread_mutex_lock(&s->mu);
    s->closed = 1;
    int gone = s->abandoned;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (gone)
        scall_free(s);
}

static void
s_finish(berth_grpc_stream_t *st, int code, const char *message)
{
    scall_t *s = CALL(st);
    if (s->finished)
        return;
    pthread_mutex_lock(&s->mu);
    s->finished = 1;
    s->code = code;
    snprintf(s->message, sizeof(s->message), "%s", message ? message : "");
    pthread_mutex_unlock(&s->mu);
    /* `closed` follows, as the transport does it: later on the loop, not inside the handler's call */
    s->c->api->call_on_loop(closed_run, s);
}

static const char *
s_namespace(const berth_grpc_stream_t *st)
{
    (void)st;
    return CRI_NAMESPACE;
}

static void
s_set_user(berth_grpc_stream_t *st, void *user)
{
    CALL(st)->stream_user = user;
}

static void *
s_get_user(const berth_grpc_stream_t *st)
{
    return CALL(st)->stream_user;
}

static size_t
s_pending(const berth_grpc_stream_t *st)
{
    (void)st;
    return 0; /* the callback took every message already */
}

static const char *
s_lease(const berth_grpc_stream_t *st)
{
    (void)st;
    return "";
}

static void
s_set_part_handler(berth_grpc_stream_t *st,
                   void (*fn)(void *user, const uint8_t *msg, size_t have, size_t len))
{
    (void)st, (void)fn;
}

static const berth_grpc_stream_api_t sapi = {
    .struct_size = sizeof(berth_grpc_stream_api_t),
    .send = s_send,
    .finish = s_finish,
    .namespace_ = s_namespace,
    .set_user = s_set_user,
    .get_user = s_get_user,
    .pending = s_pending,
    .lease = s_lease,
    .set_part_handler = s_set_part_handler,
};

static void
scall_free(scall_t *s)
{
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->req);
    free(s);
}

static void
open_run(void *arg)
{
    scall_t *s = arg;
    berth_error_t *err = NULL;
    int rc =
        s->m->open(s->instance, &sapi, (berth_grpc_stream_t *)(void *)s, s->req, s->req_len, &err);
    if (rc < 0) {
        /* an open that fails ends the call without a stream to close */
        pthread_mutex_lock(&s->mu);
        s->finished = s->closed = 1;
        s->code = rc;
        snprintf(s->message, sizeof(s->message), "%s", err && err->message ? err->message : "");
        int gone = s->abandoned;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        s->c->api->error_free(err);
        if (gone)
            scall_free(s);
    }
}

int
cri_call_server_stream(cri_t *c, cri_svc_id_t svc, const char *method, const ProtobufCMessage *req,
                       int (*cb)(void *user, const uint8_t *msg, size_t len), void *user,
                       int64_t timeout_ms, berth_error_t **err)
{
    const berth_core_api_t *api = c->api;
    const berth_grpc_service_v1_t *ops = c->svc[svc].ops;
    const berth_grpc_method_t *m = NULL;
    for (size_t i = 0; ops != NULL && i < ops->n_methods; i++)
        if (strcmp(ops->methods[i].name, method) == 0)
            m = &ops->methods[i];
    if (m == NULL || m->kind != BERTH_RPC_SERVER_STREAM || m->open == NULL)
        return api->error_make(err, BERTH_ENOTIMPL, "%s/%s: not a server stream",
                               ops ? ops->name : "?", method);
    scall_t *s = calloc(1, sizeof(*s));
    s->c = c;
    s->m = m;
    s->instance = c->svc[svc].instance;
    s->req_len = protobuf_c_message_get_packed_size(req);
    s->req = malloc(s->req_len ? s->req_len : 1);
    protobuf_c_message_pack(req, s->req);
    s->cb = cb;
    s->cb_user = user;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (api->call_on_loop(open_run, s) < 0) {
        scall_free(s);
        return api->error_make(err, BERTH_EUNAVAILABLE, "%s/%s: the loop is gone", ops->name,
                               method);
    }
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000)
        until.tv_sec++, until.tv_nsec -= 1000000000;
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    while (!s->closed)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT && !s->closed) {
            /* the loop still holds the call: it frees it once closed */
            s->abandoned = 1;
            s->cb = NULL;
            pthread_mutex_unlock(&s->mu);
            return api->error_make(err, BERTH_ETIMEDOUT, "%s/%s: no end after %lld ms", ops->name,
                                   method, (long long)timeout_ms);
        }
    pthread_mutex_unlock(&s->mu);
    if (s->code != 0)
        rc = api->error_make(err, s->code, "%s", s->message);
    scall_free(s);
    return rc;
}

/* ---- Content.Read of a whole (small) blob -------------------------------------------------------------- */

typedef struct blob_buf {
    uint8_t *data;
    size_t len, max;
    int too_big;
} blob_buf_t;

static int
blob_part(void *user, const uint8_t *msg, size_t len)
{
    blob_buf_t *b = user;
    Containerd__Services__Content__V1__ReadContentResponse *r =
        containerd__services__content__v1__read_content_response__unpack(NULL, len, msg);
    if (r == NULL)
        return 0;
    int stop = 0;
    if (b->len + r->data.len > b->max) {
        b->too_big = 1;
        stop = 1;
    } else if (r->data.len > 0) {
        uint8_t *n = realloc(b->data, b->len + r->data.len + 1);
        if (n != NULL) {
            memcpy(n + b->len, r->data.data, r->data.len);
            b->data = n;
            b->len += r->data.len;
            b->data[b->len] = '\0';
        }
    }
    containerd__services__content__v1__read_content_response__free_unpacked(r, NULL);
    return stop;
}

int
cri_content_read(cri_t *c, const char *digest, size_t max, uint8_t **out, size_t *out_len,
                 berth_error_t **err)
{
    Containerd__Services__Content__V1__ReadContentRequest req =
        CONTAINERD__SERVICES__CONTENT__V1__READ_CONTENT_REQUEST__INIT;
    req.digest = (char *)digest;
    blob_buf_t b = {.max = max};
    int rc =
        cri_call_server_stream(c, CRI_SVC_CONTENT, "Read", &req.base, blob_part, &b, 30000, err);
    if (rc == 0 && b.too_big)
        rc =
            c->api->error_make(err, BERTH_ERESOURCE, "blob %s: larger than %zu bytes", digest, max);
    if (rc < 0) {
        free(b.data);
        return rc;
    }
    if (b.data == NULL)
        b.data = calloc(1, 1);
    *out = b.data;
    *out_len = b.len;
    return 0;
}
