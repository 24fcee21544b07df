/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Content service's streams. Each stream owns a `call`; a step (collect the listing, read a chunk,
 * apply one Write message) runs on the pool, and its result is sent from the loop. A call is freed when
 * the transport said the stream is closed and no step is running.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters.h"
#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "svc.h"
#include "clock.h"

#define READ_CHUNK (1 << 20)
#define READ_BACKLOG (4 << 20)
#define WRITE_BACKLOG (64 << 20)
#define ACK_AHEAD (8 << 20) /* queued bytes beyond which WRITEs wait for the disk again */
#define LIST_BATCH 100

typedef struct msg {
    uint8_t *data;
    size_t len;
    int acked; /* answered already (a pipelined WRITE): apply it, send nothing */
    struct msg *next;
} msg_t;

typedef struct call call_t;
typedef void (*step_fn)(call_t *c);

struct call {
    svc_t *svc;
    const berth_grpc_stream_api_t *sapi;
    berth_grpc_stream_t *st;
    char ns[80];
    int busy, closed, finished;
    uv_work_t work;
    step_fn run, done;
    uv_timer_t *timer;
    /* a step's result */
    int rc;
    berth_error_t *err;
    uint8_t **out;
    size_t *out_len;
    size_t nout;
    int finish_after;
    /* List */
    filters_t *filters;
    /* Read */
    char digest[BERTH_DIGEST_MAX];
    int64_t offset, end, size; /* size 0: to the end */
    int resolved;
    /* Write */
    msg_t *head, *tail;
    size_t queued;
    msg_t *cur;
    int eof, first;
    berth_content_writer_t *w;
    char ref[1024];
    int64_t total;
    char expected[BERTH_DIGEST_MAX];
    char lease[256];
    /* pipelining: once a writer is open, a plain WRITE at the expected offset is answered at once and
     * applied in order on the pool (the client's next chunk travels while this one hits the disk) */
    int acking;
    int64_t acked;       /* offset answered so far (loop thread) */
    int64_t pool_offset; /* writer offset after the last step (set on the pool, read after it) */
    int64_t started_ns;
};

static void
add_out(call_t *c, const ProtobufCMessage *m)
{
    c->out = realloc(c->out, (c->nout + 1) * sizeof(*c->out));
    c->out_len = realloc(c->out_len, (c->nout + 1) * sizeof(*c->out_len));
    size_t n = protobuf_c_message_get_packed_size(m);
    c->out[c->nout] = malloc(n ? n : 1);
    protobuf_c_message_pack(m, c->out[c->nout]);
    c->out_len[c->nout++] = n;
}

static void
clear_out(call_t *c)
{
    for (size_t i = 0; i < c->nout; i++)
        free(c->out[i]);
    c->nout = 0;
    if (c->err)
        c->svc->api->error_free(c->err);
    c->err = NULL;
    c->rc = 0;
    c->finish_after = 0;
}

static void
call_free(call_t *c)
{
    clear_out(c);
    free(c->out);
    free(c->out_len);
    filters_free(c->filters);
    if (c->w)
        c->svc->cso->writer_close(c->w);
    for (msg_t *m = c->head, *n; m; m = n) {
        n = m->next;
        free(m->data);
        free(m);
    }
    if (c->cur) {
        free(c->cur->data);
        free(c->cur);
    }
    if (c->timer) {
        c->timer->data = NULL;
        uv_close((uv_handle_t *)c->timer, (uv_close_cb)free);
    }
    free(c);
}

static void
finish(call_t *c, int code, const char *message)
{
    if (!c->finished && !c->closed) {
        c->finished = 1;
        c->sapi->finish(c->st, code, message);
    }
}

static void
work_cb(uv_work_t *req)
{
    call_t *c = req->data;
    c->run(c);
}

static void
after_cb(uv_work_t *req, int status)
{
    call_t *c = req->data;
    /* still busy while sending: a send or finish may close the stream, and `closed` must not free us */
    for (size_t i = 0; !c->closed && c->rc == 0 && i < c->nout; i++)
        c->sapi->send(c->st, c->out[i], c->out_len[i]);
    if (c->rc != 0)
        finish(c, c->rc, c->err ? c->err->message : "");
    else if (c->finish_after)
        finish(c, 0, NULL);
    int next = c->rc == 0 && !c->finish_after && c->done;
    clear_out(c); /* before the next step starts filling it from a pool thread */
    c->busy = 0;
    if (c->closed) {
        call_free(c);
        return;
    }
    if (next)
        c->done(c);
}

/* Runs one step on the pool; `done` (on the loop) decides what follows. */
static void
step(call_t *c, step_fn run, step_fn done)
{
    c->busy = 1;
    c->run = run;
    c->done = done;
    c->work.data = c;
    uv_queue_work(c->svc->loop, &c->work, work_cb, after_cb);
}

static call_t *
call_new(svc_t *s, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st)
{
    call_t *c = calloc(1, sizeof(*c));
    c->svc = s;
    c->sapi = sapi;
    c->st = st;
    snprintf(c->ns, sizeof(c->ns), "%s", sapi->namespace_(st));
    snprintf(c->lease, sizeof(c->lease), "%s", sapi->lease(st));
    sapi->set_user(st, c);
    return c;
}

void
content_stream_closed(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st)
{
    call_t *c = sapi->get_user(st);
    if (c == NULL)
        return;
    c->closed = 1;
    if (!c->busy)
        call_free(c);
}

/* ---- List ----------------------------------------------------------------------------------------- */

typedef struct listing {
    call_t *c;
    Containerd__Services__Content__V1__Info **batch;
    size_t n;
} listing_t;

static const char *
record_field(void *object, const char *const *path, int npath)
{
    const berth_content_record_t *r = ((void **)object)[0];
    const berth_core_api_t *api = ((void **)object)[1];
    if (npath == 1 && strcmp(path[0], "digest") == 0)
        return r->digest;
    if (npath == 2 && strcmp(path[0], "labels") == 0)
        return api->kv_get(r->labels, path[1]);
    return NULL;
}

static void
flush_batch(listing_t *l)
{
    if (l->n == 0)
        return;
    Containerd__Services__Content__V1__ListContentResponse out =
        CONTAINERD__SERVICES__CONTENT__V1__LIST_CONTENT_RESPONSE__INIT;
    out.info = l->batch;
    out.n_info = l->n;
    add_out(l->c, &out.base);
    for (size_t i = 0; i < l->n; i++)
        protobuf_c_message_free_unpacked(&l->batch[i]->base, NULL);
    l->n = 0;
}

static int
collect_record(void *user, const berth_content_record_t *r)
{
    listing_t *l = user;
    svc_t *s = l->c->svc;
    void *view[2] = {(void *)r, (void *)s->api};
    if (!filters_match(l->c->filters, record_field, view))
        return 0;
    Containerd__Services__Content__V1__Info *pb = content_info_pb_new(s, r->digest, r);
    l->batch[l->n++] = pb;
    if (l->n == LIST_BATCH)
        flush_batch(l);
    return 0;
}

static void
list_run(call_t *c)
{
    listing_t l = {.c = c, .batch = calloc(LIST_BATCH, sizeof(*l.batch))};
    c->rc = c->svc->mdo->content_list(c->svc->md, c->ns, collect_record, &l, &c->err);
    flush_batch(&l);
    free(l.batch);
    c->finish_after = 1;
}

int
content_list_open(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st,
                  const uint8_t *req, size_t len, berth_error_t **err)
{
    svc_t *s = instance;
    Containerd__Services__Content__V1__ListContentRequest *r =
        containerd__services__content__v1__list_content_request__unpack(NULL, len, req);
    if (r == NULL)
        return s->api->error_make(err, BERTH_EINVAL, "request is not a valid ListContentRequest");
    filters_t *f = NULL;
    char msg[512];
    int rc = filters_parse_n((const char *const *)r->filters, r->n_filters, &f, msg, sizeof(msg));
    containerd__services__content__v1__list_content_request__free_unpacked(r, NULL);
    if (rc < 0)
        return s->api->error_make(err, BERTH_EINVAL, "%s", msg);
    call_t *c = call_new(s, sapi, st);
    c->filters = f;
    step(c, list_run, NULL);
    return 0;
}

/* ---- Read ----------------------------------------------------------------------------------------- */

static void read_next(call_t *c);

static void
read_run(call_t *c)
{
    svc_t *s = c->svc;
    if (!c->resolved) { /* first step: is it in this namespace, and how big */
        berth_content_record_t rec;
        if ((c->rc = s->mdo->content_get(s->md, c->ns, c->digest, &rec, NULL, &c->err)) != 0)
            return;
        if (c->offset > rec.size) {
            c->rc = s->api->error_make(&c->err, BERTH_ERANGE,
                                       "read of %s at offset %lld: the blob is %lld bytes",
                                       c->digest, (long long)c->offset, (long long)rec.size);
            return;
        }
        c->end = c->size == 0 || c->offset + c->size > rec.size ? rec.size : c->offset + c->size;
        c->resolved = 1;
    }
    size_t want = c->end - c->offset < READ_CHUNK ? (size_t)(c->end - c->offset) : READ_CHUNK;
    if (want == 0) {
        c->finish_after = 1;
        return;
    }
    uint8_t *buf = malloc(want);
    size_t got = 0;
    c->rc = s->cso->read_at(s->cs, c->digest, c->offset, buf, want, &got, &c->err);
    if (c->rc == 0) {
        Containerd__Services__Content__V1__ReadContentResponse out =
            CONTAINERD__SERVICES__CONTENT__V1__READ_CONTENT_RESPONSE__INIT;
        out.offset = c->offset;
        out.data.data = buf;
        out.data.len = got;
        add_out(c, &out.base);
        c->offset += (int64_t)got;
        if (got == 0 || c->offset >= c->end)
            c->finish_after = 1;
    }
    free(buf);
}

static void
read_retry(uv_timer_t *t)
{
    call_t *c = t->data;
    if (c != NULL)
        read_next(c);
}

/* Reads the next chunk unless the client has not taken the last ones yet. */
static void
read_next(call_t *c)
{
    if (c->sapi->pending(c->st) > READ_BACKLOG) {
        if (c->timer == NULL) {
            c->timer = calloc(1, sizeof(*c->timer));
            uv_timer_init(c->svc->loop, c->timer);
            c->timer->data = c;
        }
        uv_timer_start(c->timer, read_retry, 2, 0);
        return;
    }
    step(c, read_run, read_next);
}

int
content_read_open(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st,
                  const uint8_t *req, size_t len, berth_error_t **err)
{
    svc_t *s = instance;
    Containerd__Services__Content__V1__ReadContentRequest *r =
        containerd__services__content__v1__read_content_request__unpack(NULL, len, req);
    if (r == NULL)
        return s->api->error_make(err, BERTH_EINVAL, "request is not a valid ReadContentRequest");
    int rc = 0;
    if (!cs_valid_digest(r->digest))
        rc = s->api->error_make(err, BERTH_EINVAL, "invalid digest %s", r->digest);
    else if (r->offset < 0 || r->size < 0)
        rc = s->api->error_make(err, BERTH_EINVAL, "offset and size must not be negative");
    if (rc == 0) {
        call_t *c = call_new(s, sapi, st);
        snprintf(c->digest, sizeof(c->digest), "%s", r->digest);
        c->offset = r->offset;
        c->size = r->size;
        read_next(c);
    }
    containerd__services__content__v1__read_content_request__free_unpacked(r, NULL);
    return rc;
}

/* ---- Write ---------------------------------------------------------------------------------------- */

typedef Containerd__Services__Content__V1__WriteContentRequest write_req_t;

/* containerd's shared policy: a blob the store already has joins this namespace, and the writer hears
 * AlreadyExists. */
static void
link_existing(call_t *c, const char *digest, int64_t size)
{
    svc_t *s = c->svc;
    berth_error_t *ignored = NULL;
    /* the lease first: a collection between the two transactions must find the record rooted */
    if (c->lease[0] &&
        s->mdo->lease_add_resource(s->md, c->ns, c->lease, "content", digest, &ignored) < 0)
        s->api->error_free(ignored);
    ignored = NULL;
    if (s->mdo->content_put(s->md, c->ns, digest, size, NULL, &ignored) < 0)
        s->api->error_free(ignored);
    clear_out(c);
    c->rc = s->api->error_make(&c->err, BERTH_EEXIST, "content %s: already exists", digest);
}

static int
open_writer(call_t *c, const write_req_t *r)
{
    svc_t *s = c->svc;
    if (r->ref[0] == '\0')
        return c->rc =
                   s->api->error_make(&c->err, BERTH_EINVAL, "first message must have a reference");
    if (c->lease[0] && (c->rc = s->mdo->lease_add_resource(s->md, c->ns, c->lease, "ingests",
                                                           r->ref, &c->err)) != 0)
        return c->rc;
    snprintf(c->ref, sizeof(c->ref), "%s/%s", c->ns, r->ref);
    c->total = r->total;
    snprintf(c->expected, sizeof(c->expected), "%s", r->expected);
    c->rc = s->cso->writer_open(s->cs, c->ref, c->total, c->expected, &c->w, &c->err);
    if (c->rc == BERTH_EEXIST) {
        berth_blob_info_t info;
        s->cso->info(s->cs, c->expected, &info, NULL);
        link_existing(c, c->expected, info.size);
    }
    return c->rc;
}

static void
apply_labels(call_t *c, const write_req_t *r, const char *digest, int64_t size)
{
    svc_t *s = c->svc;
    berth_kv_t *labels = s->api->kv_new();
    for (size_t i = 0; i < r->n_labels; i++)
        s->api->kv_set(labels, r->labels[i]->key, r->labels[i]->value);
    /* containerd's leased writes: the blob joins the lease, before its record exists, so no collection
     * in between finds the record unrooted */
    if (c->lease[0])
        c->rc = s->mdo->lease_add_resource(s->md, c->ns, c->lease, "content", digest, &c->err);
    if (c->rc == 0)
        c->rc = s->mdo->content_put(s->md, c->ns, digest, size, labels, &c->err);
    s->api->kv_free(labels);
}

/* One request of the Write stream, as containerd's content server handles it. */
static void
write_apply(call_t *c, const write_req_t *r,
            Containerd__Services__Content__V1__WriteContentResponse *out,
            char digest[BERTH_DIGEST_MAX])
{
    svc_t *s = c->svc;
    berth_ingest_status_t st;
    s->cso->writer_status(c->w, &st);
    out->action = r->action;
    out->offset = st.offset;
    if (r->expected[0]) {
        berth_blob_info_t info;
        snprintf(c->expected, sizeof(c->expected), "%s", r->expected);
        if (s->cso->info(s->cs, r->expected, &info, NULL) == 0) {
            link_existing(c, r->expected, info.size);
            return;
        }
    }
    if (r->total > 0)
        c->total = r->total;
    if (r->action == CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__STAT) {
        out->total = c->total;
        return;
    }
    if (r->offset > 0 && r->offset != st.offset) {
        c->rc = s->api->error_make(&c->err, BERTH_ERANGE,
                                   "write @%lld must occur at current offset %lld",
                                   (long long)r->offset, (long long)st.offset);
        return;
    }
    if (r->offset == 0 && st.offset > 0) {
        if ((c->rc = s->cso->writer_truncate(c->w, 0, &c->err)) != 0)
            return;
        out->offset = 0;
    }
    if (r->data.len > 0) {
        if ((c->rc = s->cso->writer_write(c->w, r->data.data, r->data.len, &c->err)) != 0)
            return;
        out->offset += (int64_t)r->data.len;
    }
    if (r->action != CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__COMMIT)
        return;
    c->rc = s->cso->writer_commit(c->w, c->total, c->expected, digest, &c->err);
    if (c->rc == BERTH_EEXIST) {
        link_existing(c, digest, out->offset);
        return;
    }
    if (c->rc == 0)
        apply_labels(c, r, digest, out->offset);
    if (c->rc == 0)
        c->finish_after = 1;
}

static void
write_run(call_t *c)
{
    svc_t *s = c->svc;
    write_req_t *r = containerd__services__content__v1__write_content_request__unpack(
        NULL, c->cur->len, c->cur->data);
    int acked = c->cur->acked;
    free(c->cur->data);
    free(c->cur);
    c->cur = NULL;
    if (r == NULL) {
        c->rc =
            s->api->error_make(&c->err, BERTH_EINVAL, "request is not a valid WriteContentRequest");
        return;
    }
    if (c->w == NULL && open_writer(c, r) != 0) {
        containerd__services__content__v1__write_content_request__free_unpacked(r, NULL);
        return;
    }
    if (acked) { /* its answer went out already; a failure now ends the stream with the error */
        c->rc = s->cso->writer_write(c->w, r->data.data, r->data.len, &c->err);
        containerd__services__content__v1__write_content_request__free_unpacked(r, NULL);
        return;
    }
    Containerd__Services__Content__V1__WriteContentResponse out =
        CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_RESPONSE__INIT;
    char digest[BERTH_DIGEST_MAX] = "";
    write_apply(c, r, &out, digest);
    if (c->rc == 0) {
        berth_ingest_status_t st;
        Google__Protobuf__Timestamp started, updated;
        if (c->finish_after) { /* committed: the writer's ingest is gone */
            started.seconds = updated.seconds = 0;
            clock_set_ts(&started, 0);
            clock_set_ts(&updated, 0);
        } else {
            s->cso->writer_status(c->w, &st);
            clock_set_ts(&started, st.started_ns);
            clock_set_ts(&updated, st.updated_ns);
            c->pool_offset = st.offset;
            c->started_ns = st.started_ns;
        }
        out.started_at = &started;
        out.updated_at = &updated;
        out.digest = digest;
        add_out(c, &out.base);
    }
    containerd__services__content__v1__write_content_request__free_unpacked(r, NULL);
}

static void write_next(call_t *c);

static void
write_next(call_t *c)
{
    if (c->finished || c->busy)
        return;
    if (c->w && !c->acking && c->head == NULL) { /* caught up: answer plain WRITEs early again */
        c->acking = 1;
        c->acked = c->pool_offset;
    }
    if (c->head == NULL) {
        if (c->eof)
            finish(c, 0, NULL); /* the client closed without committing: that is allowed */
        return;
    }
    c->cur = c->head;
    c->head = c->head->next;
    if (c->head == NULL)
        c->tail = NULL;
    c->queued -= c->cur->len;
    step(c, write_run, write_next);
}

/* Answers a plain WRITE at the expected offset right away (loop thread). */
static int
early_ack(call_t *c, const uint8_t *data, size_t len)
{
    write_req_t *r =
        containerd__services__content__v1__write_content_request__unpack(NULL, len, data);
    if (r == NULL)
        return 0;
    int ok = r->action == CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__WRITE &&
             r->data.len > 0 && r->expected[0] == '\0' && (r->total == 0 || r->total == c->total) &&
             r->offset == c->acked;
    if (ok) {
        Google__Protobuf__Timestamp started, updated;
        clock_set_ts(&started, c->started_ns);
        clock_set_ts(&updated, clock_now_ns());
        Containerd__Services__Content__V1__WriteContentResponse out =
            CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_RESPONSE__INIT;
        out.action = r->action;
        out.offset = c->acked + (int64_t)r->data.len;
        out.started_at = &started;
        out.updated_at = &updated;
        size_t n = protobuf_c_message_get_packed_size(&out.base);
        uint8_t *buf = malloc(n ? n : 1);
        protobuf_c_message_pack(&out.base, buf);
        c->sapi->send(c->st, buf, n);
        free(buf);
        c->acked = out.offset;
    }
    containerd__services__content__v1__write_content_request__free_unpacked(r, NULL);
    return ok;
}

int
content_write_open(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st,
                   const uint8_t *req, size_t len, berth_error_t **err)
{
    call_new(instance, sapi, st);
    return 0;
}

int
content_write_message(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st,
                      const uint8_t *data, size_t len, berth_error_t **err)
{
    call_t *c = sapi->get_user(st);
    int acked = c->acking && c->queued + len <= ACK_AHEAD && early_ack(c, data, len);
    if (!acked)
        c->acking = 0; /* this one needs its turn; so do the ones behind it */
    if (c->queued + len > WRITE_BACKLOG)
        return c->svc->api->error_make(
            err, BERTH_ERESOURCE, "write stream: more than %d bytes queued; wait for each response",
            WRITE_BACKLOG);
    msg_t *m = calloc(1, sizeof(*m));
    m->data = malloc(len ? len : 1);
    if (len > 0)
        memcpy(m->data, data, len);
    m->len = len;
    m->acked = acked;
    if (c->tail)
        c->tail->next = m;
    else
        c->head = m;
    c->tail = m;
    c->queued += len;
    write_next(c);
    return 0;
}

void
content_write_end(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st)
{
    call_t *c = sapi->get_user(st);
    c->eof = 1;
    write_next(c);
}
