/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Content service's streams. Each stream owns a `call`; a step (collect the listing, read a chunk,
 * apply one Write message) runs on the pool, and its result is sent from the loop. A call is freed when
 * the transport said the stream is closed and no step is running.
 */
#include <stddef.h>
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
#define RELEASE_WAIT_S 10    /* longest wait for an ended stream's writer to let go of its ref */
#define RELEASE_GRACE_MS 100 /* longest wait for the end of the stream that holds a ref */

typedef struct msg {
    uint8_t *data;
    size_t len, cap;
    int acked; /* answered already (a pipelined WRITE): `data` is its payload only, to append */
    struct msg *next;
} msg_t;

#define MSG_ALIGN 4096
#define SPARE_MAX 10             /* buffers a Write stream keeps for its next messages */
#define SPARE_CAP_MAX (4u << 20) /* bigger ones are freed at once */

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
    msg_t *spare; /* message buffers to reuse: no page faults of fresh 1 MiB blocks per message */
    int nspare;
    int eof, first;
    int opened, releasing;
    berth_content_writer_t *w; /* NULL while shared */
    int shared;                /* a blob another namespace stored: complete until written to */
    int64_t shared_size;
    char shared_digest[BERTH_DIGEST_MAX];
    char ref[1024];
    int64_t total;
    char expected[BERTH_DIGEST_MAX];
    char lease[256];
    /* pipelining: once a writer is open, a plain WRITE at the expected offset is answered at once and
     * applied in order on the pool (the client's next chunk travels while this one hits the disk) */
    int acking;
    int64_t acked;       /* offset answered so far (loop thread) */
    int64_t pool_offset; /* writer offset after the last step (set on the pool, read after it) */
    /* a plain WRITE still arriving, taken as it comes (write_part): its payload is hashed and
     * copied while the rest travels, so its answer waits for the last frame's bytes only */
    int spec;          /* 1: taken; -1: not one to take */
    size_t spec_at;    /* where its payload starts in the message */
    size_t spec_len;   /* its payload's length */
    size_t spec_taken; /* payload bytes hashed and copied so far */
    msg_t *spec_msg;
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

/* ---- refs of ended Write streams ------------------------------------------------------------------- */

/* The stream of c ended: a new writer for its ref may wait until c lets go of it. */
static void
release_begin(call_t *c)
{
    svc_t *s = c->svc;
    if (c->releasing || c->ref[0] == '\0')
        return;
    c->releasing = 1;
    pthread_mutex_lock(&s->rel_lock);
    s->releasing = realloc(s->releasing, (s->nreleasing + 1) * sizeof(char *));
    s->releasing[s->nreleasing++] = strdup(c->ref);
    pthread_cond_broadcast(&s->rel_cond);
    pthread_mutex_unlock(&s->rel_lock);
}

static void
release_end(call_t *c)
{
    svc_t *s = c->svc;
    if (!c->releasing)
        return;
    pthread_mutex_lock(&s->rel_lock);
    for (size_t i = 0; i < s->nreleasing; i++)
        if (strcmp(s->releasing[i], c->ref) == 0) {
            free(s->releasing[i]);
            s->releasing[i] = s->releasing[--s->nreleasing];
            break;
        }
    s->rel_gen++;
    pthread_cond_broadcast(&s->rel_cond);
    pthread_mutex_unlock(&s->rel_lock);
}

static int
releasing(svc_t *s, const char *ref)
{
    for (size_t i = 0; i < s->nreleasing; i++)
        if (strcmp(s->releasing[i], ref) == 0)
            return 1;
    return 0;
}

static struct timespec
deadline(int64_t ms)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    int64_t ns = t.tv_nsec + ms % 1000 * 1000000;
    t.tv_sec += ms / 1000 + ns / 1000000000;
    t.tv_nsec = ns % 1000000000;
    return t;
}

void
svc_release_begin_wait(svc_t *s, svc_release_wait_t *w)
{
    w->grace = deadline(RELEASE_GRACE_MS);
    w->until = deadline(RELEASE_WAIT_S * 1000);
    pthread_mutex_lock(&s->rel_lock);
    w->gen = s->rel_gen;
    pthread_mutex_unlock(&s->rel_lock);
}

/* A writer for ref found it locked. The holder's stream may have ended with its end still on the way (the
 * Go client's CloseSend does not wait, and its next stream's first message can overtake the end): waits
 * for some writer to let go of its ref, up to a moment while nobody is releasing this ref and up to
 * RELEASE_WAIT_S while somebody is. 1: try again; 0: the lock stands. */
int
svc_release_wait(svc_t *s, const char *ref, svc_release_wait_t *w)
{
    int again = 1;
    pthread_mutex_lock(&s->rel_lock);
    while (again && s->rel_gen == w->gen)
        again = pthread_cond_timedwait(&s->rel_cond, &s->rel_lock,
                                       releasing(s, ref) ? &w->until : &w->grace) == 0;
    w->gen = s->rel_gen;
    pthread_mutex_unlock(&s->rel_lock);
    return again;
}

void
svc_free(void *instance)
{
    svc_t *s = instance;
    for (size_t i = 0; i < s->nreleasing; i++)
        free(s->releasing[i]);
    free(s->releasing);
    pthread_cond_destroy(&s->rel_cond);
    pthread_mutex_destroy(&s->rel_lock);
    free(s);
}

static void
msg_free_list(msg_t *m)
{
    for (msg_t *n; m; m = n) {
        n = m->next;
        free(m->data);
        free(m);
    }
}

/* A message buffer of at least len bytes, a spare one if it fits (loop thread). */
static msg_t *
msg_get(call_t *c, size_t len)
{
    msg_t *m = c->spare;
    if (m != NULL && m->cap >= len) {
        c->spare = m->next;
        c->nspare--;
    } else {
        m = calloc(1, sizeof(*m));
        m->cap = len ? len : 1;
        /* page-aligned: the store writes such a payload past the page cache (O_DIRECT) */
        void *p = NULL;
        if (posix_memalign(&p, MSG_ALIGN, m->cap) != 0)
            abort();
        m->data = p;
    }
    m->next = NULL;
    m->len = len;
    m->acked = 0;
    return m;
}

/* Keeps a used buffer for the next message (loop thread). */
static void
msg_put(call_t *c, msg_t *m)
{
    if (m == NULL)
        return;
    if (c->nspare >= SPARE_MAX || m->cap > SPARE_CAP_MAX) {
        m->next = NULL;
        msg_free_list(m);
        return;
    }
    m->next = c->spare;
    c->spare = m;
    c->nspare++;
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
    release_end(c);
    msg_free_list(c->head);
    msg_free_list(c->spare);
    msg_free_list(c->cur);
    msg_free_list(c->spec_msg);
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
        release_begin(c);
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
    release_begin(c);
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
typedef Containerd__Services__Content__V1__WriteContentResponse write_resp_t;

static int
ns_holds(call_t *c, const char *digest)
{
    berth_content_record_t rec;
    berth_error_t *ignored = NULL;
    int rc = c->svc->mdo->content_get(c->svc->md, c->ns, digest, &rec, NULL, &ignored);
    if (ignored)
        c->svc->api->error_free(ignored);
    return rc == 0;
}

/* The namespace holds the blob already: it joins the lease (as containerd's) and the writer hears
 * AlreadyExists. */
static int
already_here(call_t *c, const char *digest)
{
    svc_t *s = c->svc;
    berth_error_t *ignored = NULL;
    if (c->lease[0] &&
        s->mdo->lease_add_resource(s->md, c->ns, c->lease, "content", digest, &ignored) < 0)
        s->api->error_free(ignored);
    clear_out(c);
    return c->rc = s->api->error_make(&c->err, BERTH_EEXIST, "content %s: already exists", digest);
}

/* The blob joins this namespace with the commit's labels; AlreadyExists when it holds it already. */
static int
record_blob(call_t *c, const write_req_t *r, const char *digest, int64_t size)
{
    svc_t *s = c->svc;
    if (ns_holds(c, digest))
        return already_here(c, digest);
    berth_kv_t *labels = s->api->kv_new();
    for (size_t i = 0; i < r->n_labels; i++)
        s->api->kv_set(labels, r->labels[i]->key, r->labels[i]->value);
    /* containerd's leased writes: the blob joins the lease before its record exists, so no collection
     * in between finds the record unrooted */
    if (c->lease[0])
        c->rc = s->mdo->lease_add_resource(s->md, c->ns, c->lease, "content", digest, &c->err);
    if (c->rc == 0)
        c->rc = s->mdo->content_put(s->md, c->ns, digest, size, labels, &c->err);
    s->api->kv_free(labels);
    return c->rc;
}

/* Opens the ingest. containerd's shared policy: a blob the store has, asked for by digest (and a size that
 * is 0 or its own) from a namespace that does not hold it, gets a writer that is complete already
 * (`shared`); committing it records the blob in this namespace, writing to it copies the blob into a real
 * ingest first (unshare). */
static int
open_writer(call_t *c, const write_req_t *r)
{
    svc_t *s = c->svc;
    if (r->ref[0] == '\0')
        return c->rc =
                   s->api->error_make(&c->err, BERTH_EINVAL, "first message must have a reference");
    if (r->expected[0] && !cs_valid_digest(r->expected))
        return c->rc = s->api->error_make(&c->err, BERTH_EINVAL, "invalid expected digest %s",
                                          r->expected);
    c->total = r->total;
    snprintf(c->expected, sizeof(c->expected), "%s", r->expected);
    if (c->expected[0] && ns_holds(c, c->expected))
        return already_here(c, c->expected);
    if (c->lease[0] && (c->rc = s->mdo->lease_add_resource(s->md, c->ns, c->lease, "ingests",
                                                           r->ref, &c->err)) != 0)
        return c->rc;
    berth_blob_info_t info;
    int stored = c->expected[0] && s->cso->info(s->cs, c->expected, &info, NULL) == 0;
    if (stored && (c->total == 0 || c->total == info.size)) {
        c->shared = 1;
        c->shared_size = c->total = info.size;
        snprintf(c->shared_digest, sizeof(c->shared_digest), "%s", c->expected);
        c->started_ns = clock_now_ns();
        return 0;
    }
    /* the store checks the digest only for a blob it does not have: one it has joins the namespace
     * at commit */
    svc_release_wait_t rw;
    svc_release_begin_wait(s, &rw);
    const char *want = stored ? "" : c->expected;
    c->rc = s->cso->writer_open(s->cs, c->ref, c->total, want, &c->w, &c->err);
    /* the client may have closed its last writer of this ref and opened the next before we let go */
    while (c->rc == BERTH_EUNAVAILABLE && svc_release_wait(s, c->ref, &rw)) {
        clear_out(c);
        c->rc = s->cso->writer_open(s->cs, c->ref, c->total, want, &c->w, &c->err);
    }
    if (c->rc == 0) {
        berth_ingest_status_t st;
        s->cso->writer_status(c->w, &st);
        c->started_ns = st.started_ns;
    }
    return c->rc;
}

/* Turns a shared writer into a real ingest holding the blob's first `keep` bytes (0 or all of it). */
static int
unshare_blob(call_t *c, int64_t keep)
{
    svc_t *s = c->svc;
    if ((c->rc = s->cso->writer_open(s->cs, c->ref, c->total, "", &c->w, &c->err)) != 0)
        return c->rc;
    berth_ingest_status_t st;
    s->cso->writer_status(c->w, &st);
    if (st.offset > 0 && (c->rc = s->cso->writer_truncate(c->w, 0, &c->err)) != 0)
        return c->rc;
    uint8_t *buf = malloc(READ_CHUNK);
    for (int64_t at = 0; at < keep && c->rc == 0;) {
        size_t got = 0;
        size_t want = keep - at < READ_CHUNK ? (size_t)(keep - at) : READ_CHUNK;
        c->rc = s->cso->read_at(s->cs, c->shared_digest, at, buf, want, &got, &c->err);
        if (c->rc == 0 && got == 0)
            c->rc = s->api->error_make(&c->err, BERTH_EDATALOSS, "content %s: shorter than %lld",
                                       c->shared_digest, (long long)keep);
        if (c->rc == 0)
            c->rc = s->cso->writer_write(c->w, buf, got, &c->err);
        at += (int64_t)got;
    }
    free(buf);
    c->shared = 0;
    return c->rc;
}

/* What a response tells of the writer: offset, times and the digest of the bytes so far. */
static void
writer_view(call_t *c, int64_t *offset, int64_t *updated_ns, char digest[BERTH_DIGEST_MAX])
{
    if (c->w == NULL) {
        *offset = c->shared_size;
        *updated_ns = c->started_ns;
        snprintf(digest, BERTH_DIGEST_MAX, "%s", c->shared_digest);
        return;
    }
    berth_ingest_status_t st;
    c->svc->cso->writer_status(c->w, &st);
    *offset = st.offset;
    *updated_ns = st.updated_ns;
    c->svc->cso->writer_digest(c->w, digest);
}

static void
commit(call_t *c, const write_req_t *r, int64_t offset, char digest[BERTH_DIGEST_MAX])
{
    svc_t *s = c->svc;
    if (c->w == NULL) { /* shared: the blob as it is, or nothing */
        if (c->total > 0 && c->total != c->shared_size)
            c->rc = s->api->error_make(&c->err, BERTH_EPRECONDITION,
                                       "%s failed size validation: %lld != %lld", r->ref,
                                       (long long)c->shared_size, (long long)c->total);
        else if (c->expected[0] && strcmp(c->expected, c->shared_digest) != 0)
            c->rc = s->api->error_make(&c->err, BERTH_EPRECONDITION,
                                       "%s: unexpected digest %s, expected %s", r->ref,
                                       c->shared_digest, c->expected);
        else
            record_blob(c, r, c->shared_digest, c->shared_size);
        snprintf(digest, BERTH_DIGEST_MAX, "%s", c->shared_digest);
        return;
    }
    c->rc = s->cso->writer_commit(c->w, c->total, c->expected, digest, &c->err);
    if (c->rc == BERTH_EEXIST) { /* stored by another namespace (the ingest is gone): join it */
        clear_out(c);
        c->rc = 0;
    }
    if (c->rc == 0)
        record_blob(c, r, digest, offset);
}

/* One request of the Write stream, as containerd's content server handles it. */
static void
write_apply(call_t *c, const write_req_t *r, write_resp_t *out, char digest[BERTH_DIGEST_MAX])
{
    svc_t *s = c->svc;
    out->action = r->action;
    if (r->expected[0]) {
        snprintf(c->expected, sizeof(c->expected), "%s", r->expected);
        if (ns_holds(c, r->expected)) { /* containerd drops the ingest too */
            if (c->w) {
                s->cso->writer_close(c->w);
                c->w = NULL;
                berth_error_t *ignored = NULL;
                if (s->cso->ingest_abort(s->cs, c->ref, &ignored) < 0)
                    s->api->error_free(ignored);
            }
            already_here(c, r->expected);
            return;
        }
    }
    if (r->total > 0)
        c->total = r->total;
    int64_t offset, updated_ns;
    if (r->action == CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__STAT)
        return;
    writer_view(c, &offset, &updated_ns, digest);
    if (r->offset > 0 && r->offset != offset) {
        c->rc = s->api->error_make(&c->err, BERTH_ERANGE,
                                   "write @%lld must occur at current offset %lld",
                                   (long long)r->offset, (long long)offset);
        return;
    }
    if (r->offset == 0 && offset > 0) {
        if ((c->rc = c->w ? s->cso->writer_truncate(c->w, 0, &c->err) : unshare_blob(c, 0)) != 0)
            return;
        offset = 0;
    }
    if (r->data.len > 0) {
        if (c->w == NULL && unshare_blob(c, c->shared_size) != 0)
            return;
        if ((c->rc = s->cso->writer_write(c->w, r->data.data, r->data.len, &c->err)) != 0)
            return;
        offset += (int64_t)r->data.len;
    }
    if (r->action == CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__COMMIT) {
        commit(c, r, offset, digest);
        out->offset = c->w ? offset : c->shared_size;
        if (c->rc == 0)
            c->finish_after = 1;
    }
}

static void
write_run(call_t *c)
{
    svc_t *s = c->svc;
    if (c->cur
            ->acked) { /* hashed and answered on the loop; a failure now ends the stream with it */
        c->rc = s->cso->writer_append(c->w, c->cur->data, c->cur->len, &c->err);
        return;
    }
    /* c->cur stays ours until the loop takes the next message (write_next recycles it) */
    write_req_t *r = containerd__services__content__v1__write_content_request__unpack(
        NULL, c->cur->len, c->cur->data);
    if (r == NULL) {
        c->rc =
            s->api->error_make(&c->err, BERTH_EINVAL, "request is not a valid WriteContentRequest");
        return;
    }
    if (!c->opened) {
        c->opened = 1;
        if (open_writer(c, r) != 0) {
            containerd__services__content__v1__write_content_request__free_unpacked(r, NULL);
            return;
        }
    }
    write_resp_t out = CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_RESPONSE__INIT;
    char digest[BERTH_DIGEST_MAX] = "";
    write_apply(c, r, &out, digest);
    if (c->rc == 0) {
        Google__Protobuf__Timestamp started, updated;
        int64_t updated_ns = 0;
        if (c->finish_after) { /* committed: the ingest is gone; write_apply set the blob's offset */
            updated_ns = clock_now_ns();
        } else {
            writer_view(c, &out.offset, &updated_ns, digest);
            c->pool_offset = out.offset;
        }
        out.total = c->total;
        clock_set_ts(&started, c->started_ns);
        clock_set_ts(&updated, updated_ns ? updated_ns : c->started_ns);
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
    msg_put(c, c->cur); /* the last step is done with it */
    c->cur = NULL;
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

/* The fields of a WriteContentRequest as they are on the wire, its data not copied (protobuf-c's unpack
 * copies a 1 MiB payload, and the loop would pay for that on every WRITE). */
typedef struct wire_write {
    uint64_t action, total, offset;
    size_t ref_len, expected_len, nlabels;
    const uint8_t *data;
    size_t data_len;
} wire_write_t;

static int
read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

static int
field_kind(uint64_t key)
{
    int field = (int)(key >> 3), type = (int)(key & 7);
    if ((field == 1 || field == 3 || field == 5) && type == 0)
        return 0; /* a varint */
    if ((field == 2 || field == 4 || field == 6 || field == 7) && type == 2)
        return 2; /* length-delimited */
    return -1;
}

/* Reads the fields of `len` bytes, or of the head of a message up to its data field when `head` (the
 * payload need not be there). 1: read, all fields known and of their proper wire type; 0: anything else
 * (protobuf-c's unpack on the pool decides about it then); -1 (head only): the head is not all here. */
static int
scan_write(const uint8_t *p, size_t len, int head, wire_write_t *w)
{
    const uint8_t *end = p + len;
    memset(w, 0, sizeof(*w));
    while (p < end) {
        uint64_t key, v;
        if (read_varint(&p, end, &key) < 0)
            return head ? -1 : 0;
        int kind = field_kind(key);
        if (kind < 0)
            return 0;
        if (read_varint(&p, end, &v) < 0)
            return head ? -1 : 0;
        if ((key >> 3) == 6) {
            w->data = p;
            w->data_len = v;
            if (head)
                return 1;
        }
        if (kind == 2 && v > (uint64_t)(end - p))
            return head ? -1 : 0;
        switch (key >> 3) {
        case 1:
            w->action = v;
            break;
        case 3:
            w->total = v;
            break;
        case 5:
            w->offset = v;
            break;
        case 2:
            w->ref_len = v;
            break;
        case 4:
            w->expected_len = v;
            break;
        case 7:
            w->nlabels++;
            break;
        }
        if (kind == 2)
            p += v;
    }
    return head ? -1 : 1;
}

/* A WRITE of bytes at the offset answered so far and nothing else: one to answer at once. */
static int
plain_write(const call_t *c, const wire_write_t *r)
{
    return r->action == CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__WRITE && r->data_len > 0 &&
           r->expected_len == 0 && r->nlabels == 0 &&
           (r->total == 0 || (int64_t)r->total == c->total) && (int64_t)r->offset == c->acked;
}

/* Sends the answer to a plain WRITE whose bytes are all hashed (loop thread). */
static void
send_ack(call_t *c, size_t payload_len)
{
    char digest[BERTH_DIGEST_MAX];
    c->svc->cso->writer_digest(c->w, digest);
    Google__Protobuf__Timestamp started, updated;
    clock_set_ts(&started, c->started_ns);
    clock_set_ts(&updated, clock_now_ns());
    write_resp_t out = CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_RESPONSE__INIT;
    out.action = CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__WRITE;
    out.offset = c->acked + (int64_t)payload_len;
    out.total = c->total;
    out.started_at = &started;
    out.updated_at = &updated;
    out.digest = digest;
    uint8_t small[512];
    size_t n = protobuf_c_message_get_packed_size(&out.base);
    uint8_t *buf = n <= sizeof(small) ? small : malloc(n);
    protobuf_c_message_pack(&out.base, buf);
    c->sapi->send(c->st, buf, n);
    if (buf != small)
        free(buf);
    c->acked = out.offset;
}

/* Whether a message may be answered at once: the writer is open, nothing waits for its turn, and not
 * too much waits for the disk. */
static int
may_ack(const call_t *c, size_t len)
{
    return c->acking && c->w != NULL && c->queued + len <= ACK_AHEAD;
}

/* Hashes and copies the payload bytes of the message being taken that are here now (`have` bytes of
 * the message at msg). */
static void
take_payload(call_t *c, const uint8_t *msg, size_t have)
{
    size_t upto = have - c->spec_at < c->spec_len ? have - c->spec_at : c->spec_len;
    if (upto <= c->spec_taken)
        return;
    const uint8_t *from = msg + c->spec_at + c->spec_taken;
    c->svc->cso->writer_hash(c->w, from, upto - c->spec_taken);
    memcpy(c->spec_msg->data + c->spec_taken, from, upto - c->spec_taken);
    c->spec_taken = upto;
}

/* Part of a message is here (loop thread): a plain WRITE is taken as it arrives. Its answer is decided
 * now: the conditions of may_ack and plain_write cannot change before the message is whole (messages
 * arrive in order; only the pool's progress changes meanwhile, and it only lowers `queued`). */
static void
write_part(void *user, const uint8_t *msg, size_t have, size_t len)
{
    call_t *c = user;
    if (c == NULL || c->finished || c->spec < 0)
        return;
    if (c->spec == 0) {
        wire_write_t r;
        if (!may_ack(c, len))
            return; /* the pool may catch up before the next part */
        int rc = scan_write(msg, have, 1, &r);
        if (rc < 0)
            return;
        size_t at = r.data ? (size_t)(r.data - msg) : 0;
        if (rc == 0 || !plain_write(c, &r) || at + r.data_len != len) {
            c->spec = -1;
            return;
        }
        c->spec = 1;
        c->spec_at = at;
        c->spec_len = r.data_len;
        c->spec_taken = 0;
        c->spec_msg = msg_get(c, r.data_len);
    }
    take_payload(c, msg, have);
}

/* Answers a plain WRITE at the expected offset right away (loop thread) and queues its payload for the
 * pool. 1: done; 0: not one (nothing was taken); <0: the error that ends the stream. */
static int
early_ack(call_t *c, const uint8_t *data, size_t len, berth_error_t **err)
{
    wire_write_t r;
    int taken = c->spec == 1;
    int ok = (taken || may_ack(c, len)) && scan_write(data, len, 0, &r) == 1 && plain_write(c, &r);
    if (taken && (!ok || r.data != data + c->spec_at || r.data_len != c->spec_len)) {
        msg_put(c, c->spec_msg);
        c->spec_msg = NULL;
        return c->svc->api->error_make(err, BERTH_EINTERNAL,
                                       "write stream: a message taken in parts changed its mind");
    }
    if (!ok)
        return 0;
    msg_t *m = c->spec_msg;
    if (!taken) {
        m = msg_get(c, r.data_len);
        c->spec_at = (size_t)(r.data - data);
        c->spec_len = r.data_len;
        c->spec_taken = 0;
        c->spec_msg = m;
    }
    /* hash before answering (the answer carries the digest so far), write to disk after */
    take_payload(c, data, len);
    c->spec_msg = NULL;
    send_ack(c, r.data_len);
    m->acked = 1;
    if (c->tail)
        c->tail->next = m;
    else
        c->head = m;
    c->tail = m;
    c->queued += m->len;
    return 1;
}

int
content_write_open(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st,
                   const uint8_t *req, size_t len, berth_error_t **err)
{
    call_new(instance, sapi, st);
    if (sapi->struct_size >=
        offsetof(berth_grpc_stream_api_t, set_part_handler) + sizeof(sapi->set_part_handler))
        sapi->set_part_handler(st, write_part);
    return 0;
}

int
content_write_message(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st,
                      const uint8_t *data, size_t len, berth_error_t **err)
{
    call_t *c = sapi->get_user(st);
    if (!c->first) { /* the ref, known on the loop: an ended stream's ref is released by name */
        c->first = 1;
        write_req_t *r =
            containerd__services__content__v1__write_content_request__unpack(NULL, len, data);
        if (r && r->ref[0])
            snprintf(c->ref, sizeof(c->ref), "%s/%s", c->ns, r->ref);
        if (r)
            containerd__services__content__v1__write_content_request__free_unpacked(r, NULL);
    }
    int acked = early_ack(c, data, len, err);
    c->spec = 0; /* the next message is a new one */
    if (acked < 0)
        return acked;
    if (acked == 0) {
        c->acking = 0; /* this one needs its turn; so do the ones behind it */
        if (c->queued + len > WRITE_BACKLOG)
            return c->svc->api->error_make(
                err, BERTH_ERESOURCE,
                "write stream: more than %d bytes queued; wait for each response", WRITE_BACKLOG);
        msg_t *m = msg_get(c, len);
        if (len > 0)
            memcpy(m->data, data, len);
        if (c->tail)
            c->tail->next = m;
        else
            c->head = m;
        c->tail = m;
        c->queued += len;
    }
    write_next(c);
    return 0;
}

void
content_write_end(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st)
{
    call_t *c = sapi->get_user(st);
    release_begin(c);
    c->eof = 1;
    write_next(c);
}
