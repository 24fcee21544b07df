/* SPDX-License-Identifier: Apache-2.0 */
/*
 * containerd's Streaming service and the registry of the streams it opened (core/streaming, plugins/
 * streaming/manager.go, plugins/services/streaming/service.go), and the byte framing transfers use on them
 * (core/transfer/streaming: Data messages, WindowUpdate credits).
 *
 * Two threads meet here. The gRPC side runs on the loop thread: messages arrive through the transport's
 * callbacks and go into the stream's queue; sends and the finish are handed to the loop with call_on_loop.
 * A worker on a pool thread blocks on the stream's condition variable. A stream is referenced by the
 * transport (open .. closed), by each taker and by each loop callback in flight; the last release frees it.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "streams.h"
#include "google/protobuf/any.pb-c.h"
#include "services/streaming/v1/streaming.pb-c.h"
#include "types/transfer/streaming.pb-c.h"

#define STREAM_INIT_TYPE "containerd.services.streaming.v1.StreamInit"
#define EMPTY_TYPE "google.protobuf.Empty"
#define DATA_TYPE "containerd.types.transfer.Data"
#define WINDOW_TYPE "containerd.types.transfer.WindowUpdate"
#define MAX_READ (32 * 1024)
#define WINDOW_SIZE (2 * MAX_READ)
/* a sender waits while this much is queued for the client and not taken */
#define SEND_BACKLOG (1 << 20)
/* messages a client may queue that no worker takes (a stream nobody reads) */
#define RECV_BACKLOG (16 << 20)

typedef struct msg_s {
    struct msg_s *next;
    char *type_url;
    uint8_t *value;
    size_t len;
} msg_t;

struct xstream_s {
    streams_t *m;
    atomic_int refs;
    /* loop thread only */
    const berth_grpc_stream_api_t *sapi;
    berth_grpc_stream_t *st; /* NULL once closed */
    int registered, finished;
    /* under lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    msg_t *head, *tail;
    size_t queued;    /* bytes in the queue */
    int eof;          /* the client half-closed */
    int gone;         /* the call ended (closed) */
    size_t in_flight; /* bytes handed to the loop, not yet given to the transport */
    size_t pending;   /* the transport's backlog as last seen */
    /* the byte framing (one worker at a time) */
    int32_t window; /* reader: credit granted minus bytes received */
    int32_t credit; /* writer: bytes the client will take */
    /* writer: the client's window as containerd's ReceiveStream keeps it (it grants WINDOW_SIZE before each
     * receive while below WINDOW_SIZE), replayed here, so the writer knows how many WindowUpdates the
     * client will have sent once it took everything; and the last WINDOW_SIZE bytes, held back (see
     * xstream_write_end) */
    int32_t client_window;
    uint64_t updates_expected, updates_seen;
    int foreign_grants; /* a grant of another size: not ReceiveStream's pattern, nothing to count on */
    uint8_t *hold;
    size_t hold_len;
    msg_t *partial; /* reader: a Data message not yet read to its end */
    size_t partial_off;
    char ns[256], id[256];
    int taken;
    struct xstream_s *next; /* in the registry */
};

struct streams_s {
    const berth_core_api_t *api;
    const berth_logger_t *log;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    xstream_t *list;
};

static void
cond_init(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

/* The deadline timeout_ms from now (-1: none). */
static void
deadline_of(int timeout_ms, struct timespec *ts)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    if (timeout_ms < 0)
        return;
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static int
wait_until(pthread_cond_t *c, pthread_mutex_t *l, int timeout_ms, const struct timespec *dl)
{
    if (timeout_ms < 0)
        return pthread_cond_wait(c, l);
    return pthread_cond_timedwait(c, l, dl);
}

int
streams_new(const berth_core_api_t *api, const berth_logger_t *log, streams_t **out,
            berth_error_t **err)
{
    streams_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return api->error_make(err, BERTH_ENOMEM, "streams: out of memory");
    m->api = api;
    m->log = log;
    pthread_mutex_init(&m->lock, NULL);
    cond_init(&m->cond);
    *out = m;
    return 0;
}

/* The transport closed every stream before this plugin's fini (it requires the gRPC services). */
void
streams_free(streams_t *m)
{
    if (m == NULL)
        return;
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->cond);
    free(m);
}

static void
msg_free(msg_t *g)
{
    if (g) {
        free(g->type_url);
        free(g->value);
        free(g);
    }
}

static void
ref(xstream_t *s)
{
    atomic_fetch_add(&s->refs, 1);
}

void
xstream_release(xstream_t *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (msg_t *g = s->head, *n; g; g = n) {
        n = g->next;
        msg_free(g);
    }
    msg_free(s->partial);
    free(s->hold);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}

/* ---- the registry ------------------------------------------------------------------------------------ */

static void
unregister(xstream_t *s)
{
    streams_t *m = s->m;
    if (!s->registered)
        return;
    pthread_mutex_lock(&m->lock);
    for (xstream_t **p = &m->list; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    pthread_mutex_unlock(&m->lock);
    s->registered = 0;
}

int
streams_take(streams_t *m, const char *ns, const char *id, int timeout_ms, xstream_t **out,
             berth_error_t **err)
{
    struct timespec dl;
    deadline_of(timeout_ms, &dl);
    pthread_mutex_lock(&m->lock);
    for (;;) {
        for (xstream_t *s = m->list; s; s = s->next)
            if (strcmp(s->ns, ns) == 0 && strcmp(s->id, id) == 0 && !s->taken) {
                s->taken = 1;
                ref(s);
                pthread_mutex_unlock(&m->lock);
                *out = s;
                return 0;
            }
        if (wait_until(&m->cond, &m->lock, timeout_ms, &dl) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&m->lock);
    return m->api->error_make(err, BERTH_ENOTFOUND, "stream \"%s\": not found", id);
}

/* ---- sending, from any thread ------------------------------------------------------------------------ */

typedef struct send_job_s {
    xstream_t *s;
    uint8_t *data; /* NULL: finish */
    size_t len;
    int poll; /* only refresh `pending` */
} send_job_t;

static void
on_loop_send(void *arg)
{
    send_job_t *sj = arg;
    xstream_t *s = sj->s;
    int dead = 0;
    if (s->st && !s->finished) {
        if (sj->poll) {
        } else if (sj->data) {
            dead = s->sapi->send(s->st, sj->data, sj->len) < 0;
        } else {
            unregister(s); /* as containerd's Close: the name is free again */
            s->finished = 1;
            s->sapi->finish(s->st, 0, NULL); /* may call `closed` right away */
        }
    }
    pthread_mutex_lock(&s->lock);
    if (!sj->poll && sj->data)
        s->in_flight -= sj->len;
    s->pending = s->st ? s->sapi->pending(s->st) : 0;
    if (dead)
        s->gone = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    free(sj->data);
    free(sj);
    xstream_release(s);
}

static int
post(xstream_t *s, uint8_t *data, size_t len, int poll)
{
    send_job_t *sj = calloc(1, sizeof(*sj));
    sj->s = s;
    sj->data = data;
    sj->len = len;
    sj->poll = poll;
    ref(s);
    if (s->m->api->call_on_loop(on_loop_send, sj) < 0) {
        free(sj);
        free(data);
        atomic_fetch_sub(&s->refs, 1); /* the caller holds another */
        return -1;
    }
    return 0;
}

static uint8_t *
pack_any(const char *type_url, const uint8_t *value, size_t len, size_t *out_len)
{
    Google__Protobuf__Any a = GOOGLE__PROTOBUF__ANY__INIT;
    a.type_url = (char *)type_url;
    a.value.data = (uint8_t *)value;
    a.value.len = len;
    *out_len = google__protobuf__any__get_packed_size(&a);
    uint8_t *buf = malloc(*out_len ? *out_len : 1);
    google__protobuf__any__pack(&a, buf);
    return buf;
}

int
xstream_send(xstream_t *s, const char *type_url, const uint8_t *value, size_t len,
             berth_error_t **err)
{
    const berth_core_api_t *api = s->m->api;
    pthread_mutex_lock(&s->lock);
    /* backpressure: wait while the client has not taken what is queued, polling the transport */
    while (!s->gone && s->in_flight + s->pending > SEND_BACKLOG) {
        pthread_mutex_unlock(&s->lock);
        post(s, NULL, 0, 1);
        pthread_mutex_lock(&s->lock);
        struct timespec dl;
        deadline_of(20, &dl);
        pthread_cond_timedwait(&s->cond, &s->lock, &dl);
    }
    int gone = s->gone;
    size_t n = 0;
    uint8_t *buf = NULL;
    if (!gone) {
        buf = pack_any(type_url, value, len, &n);
        s->in_flight += n;
    }
    pthread_mutex_unlock(&s->lock);
    if (gone || post(s, buf, n, 0) < 0)
        return api->error_make(err, BERTH_EUNAVAILABLE, "stream \"%s\": closed by the client",
                               s->id);
    return 0;
}

void
xstream_close(xstream_t *s)
{
    if (s)
        post(s, NULL, 0, 0);
}

/* ---- receiving -------------------------------------------------------------------------------------- */

/* Strips the "type.googleapis.com/" style prefix typeurl accepts. */
static const char *
bare_type(const char *url)
{
    const char *slash = strrchr(url, '/');
    return slash ? slash + 1 : url;
}

int
xstream_recv(xstream_t *s, char **type_url, uint8_t **value, size_t *len, int timeout_ms,
             berth_error_t **err)
{
    const berth_core_api_t *api = s->m->api;
    struct timespec dl;
    deadline_of(timeout_ms, &dl);
    pthread_mutex_lock(&s->lock);
    while (s->head == NULL && !s->eof && !s->gone)
        if (wait_until(&s->cond, &s->lock, timeout_ms, &dl) == ETIMEDOUT) {
            pthread_mutex_unlock(&s->lock);
            return api->error_make(err, BERTH_ETIMEDOUT, "stream \"%s\": nothing received in %d ms",
                                   s->id, timeout_ms);
        }
    msg_t *g = s->head;
    if (g) {
        s->head = g->next;
        if (s->head == NULL)
            s->tail = NULL;
        s->queued -= g->len;
    }
    int gone = s->gone && !s->eof;
    pthread_mutex_unlock(&s->lock);
    if (g == NULL && gone)
        return api->error_make(err, BERTH_EUNAVAILABLE, "stream \"%s\": closed by the client",
                               s->id);
    if (g == NULL)
        return 0;
    *type_url = g->type_url;
    *value = g->value;
    *len = g->len;
    free(g);
    return 1;
}

/* ---- byte streams ----------------------------------------------------------------------------------- */

static int
send_window(xstream_t *s, int32_t update, berth_error_t **err)
{
    Containerd__Types__Transfer__WindowUpdate u = CONTAINERD__TYPES__TRANSFER__WINDOW_UPDATE__INIT;
    u.update = update;
    uint8_t buf[16];
    size_t n = containerd__types__transfer__window_update__pack(&u, buf);
    return xstream_send(s, WINDOW_TYPE, buf, n, err);
}

int
xstream_read(xstream_t *s, void *buf, size_t len, size_t *got, berth_error_t **err)
{
    const berth_core_api_t *api = s->m->api;
    *got = 0;
    while (s->partial == NULL) {
        if (s->window < WINDOW_SIZE) {
            berth_error_t *ignored = NULL;
            /* a client that half-closed takes no more credit: not an error (containerd ignores EOF) */
            if (send_window(s, WINDOW_SIZE, &ignored) == 0)
                s->window += WINDOW_SIZE;
            else
                api->error_free(ignored);
        }
        char *type;
        uint8_t *value;
        size_t vlen;
        int rc = xstream_recv(s, &type, &value, &vlen, -1, err);
        if (rc <= 0)
            return rc;
        if (strcmp(bare_type(type), DATA_TYPE) != 0) {
            api->log(s->m->log, BERTH_LOG_WARN, "stream %s: ignoring a %s", s->id, type);
            free(type);
            free(value);
            continue;
        }
        Containerd__Types__Transfer__Data *d =
            containerd__types__transfer__data__unpack(NULL, vlen, value);
        free(type);
        free(value);
        if (d == NULL)
            return api->error_make(err, BERTH_EINVAL,
                                   "stream \"%s\": a Data message that does not decode", s->id);
        s->window -= (int32_t)d->data.len;
        if (d->data.len > 0) {
            msg_t *g = calloc(1, sizeof(*g));
            g->value = malloc(d->data.len);
            memcpy(g->value, d->data.data, d->data.len);
            g->len = d->data.len;
            s->partial = g;
            s->partial_off = 0;
        }
        containerd__types__transfer__data__free_unpacked(d, NULL);
    }
    size_t n = s->partial->len - s->partial_off;
    if (n > len)
        n = len;
    memcpy(buf, s->partial->value + s->partial_off, n);
    s->partial_off += n;
    if (s->partial_off == s->partial->len) {
        msg_free(s->partial);
        s->partial = NULL;
    }
    *got = n;
    return 0;
}

/* A message received while writing: a WindowUpdate adds credit and is counted; anything else is logged.
 * Frees type and value. */
static void
count_window(xstream_t *s, char *type, uint8_t *value, size_t vlen)
{
    if (strcmp(bare_type(type), WINDOW_TYPE) == 0) {
        Containerd__Types__Transfer__WindowUpdate *u =
            containerd__types__transfer__window_update__unpack(NULL, vlen, value);
        if (u && u->update > 0)
            s->credit += u->update;
        if (u) {
            s->updates_seen++;
            if (u->update != WINDOW_SIZE)
                s->foreign_grants = 1;
            containerd__types__transfer__window_update__free_unpacked(u, NULL);
        }
    } else {
        s->m->api->log(s->m->log, BERTH_LOG_WARN, "stream %s: ignoring a %s", s->id, type);
    }
    free(type);
    free(value);
}

/* Takes every WindowUpdate the client sent; waits until the credit covers n bytes (n >= 1). */
static int
wait_credit(xstream_t *s, size_t n, berth_error_t **err)
{
    for (;;) {
        pthread_mutex_lock(&s->lock);
        int have = s->head != NULL;
        pthread_mutex_unlock(&s->lock);
        if (!have && s->credit > 0 && (size_t)s->credit >= n)
            return 0;
        char *type;
        uint8_t *value;
        size_t vlen;
        int rc = xstream_recv(s, &type, &value, &vlen, -1, err);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return s->m->api->error_make(err, BERTH_EUNAVAILABLE,
                                         "stream \"%s\": the client stopped reading (short write)",
                                         s->id);
        count_window(s, type, value, vlen);
    }
}

/* One Data message of n bytes, once the client granted the credit for all of it. */
static int
send_data(xstream_t *s, const uint8_t *p, size_t n, berth_error_t **err)
{
    int rc = wait_credit(s, n, err);
    if (rc < 0)
        return rc;
    Containerd__Types__Transfer__Data d = CONTAINERD__TYPES__TRANSFER__DATA__INIT;
    d.data.data = (uint8_t *)p;
    d.data.len = n;
    size_t plen = containerd__types__transfer__data__get_packed_size(&d);
    uint8_t *pb = malloc(plen);
    containerd__types__transfer__data__pack(&d, pb);
    rc = xstream_send(s, DATA_TYPE, pb, plen, err);
    free(pb);
    if (rc < 0)
        return rc;
    s->credit -= (int32_t)n;
    /* the client's side of it: a grant before each receive while below WINDOW_SIZE */
    if (s->client_window < WINDOW_SIZE) {
        s->client_window += WINDOW_SIZE;
        s->updates_expected++;
    }
    s->client_window -= (int32_t)n;
    return 0;
}

/* Sends bytes in messages of at most MAX_READ, within the client's credit. */
static int
send_bytes(xstream_t *s, const uint8_t *p, size_t len, berth_error_t **err)
{
    while (len > 0) {
        int rc = wait_credit(s, 1, err);
        if (rc < 0)
            return rc;
        size_t n = len < MAX_READ ? len : MAX_READ;
        if (n > (size_t)s->credit)
            n = (size_t)s->credit;
        if ((rc = send_data(s, p, n, err)) < 0)
            return rc;
        p += n;
        len -= n;
    }
    return 0;
}

/* The last WINDOW_SIZE bytes written so far stay here until xstream_write_end. */
int
xstream_write(xstream_t *s, const void *buf, size_t len, berth_error_t **err)
{
    const uint8_t *p = buf;
    if (s->hold == NULL && (s->hold = malloc(WINDOW_SIZE)) == NULL)
        return s->m->api->error_make(err, BERTH_ENOMEM, "stream \"%s\": out of memory", s->id);
    size_t excess = s->hold_len + len > WINDOW_SIZE ? s->hold_len + len - WINDOW_SIZE : 0;
    size_t from_hold = excess < s->hold_len ? excess : s->hold_len;
    int rc = send_bytes(s, s->hold, from_hold, err);
    if (rc < 0)
        return rc;
    memmove(s->hold, s->hold + from_hold, s->hold_len - from_hold);
    s->hold_len -= from_hold;
    if ((rc = send_bytes(s, p, excess - from_hold, err)) < 0)
        return rc;
    memcpy(s->hold + s->hold_len, p + (excess - from_hold), len - (excess - from_hold));
    s->hold_len += len - (excess - from_hold);
    return 0;
}

/* containerd's ctr returns once Transfer does, and its copy of the stream into the file runs on a goroutine
 * of its own: the writer must not answer before the client took every byte (a client granting in another
 * pattern than containerd's is not waited for). The held tail goes as one
 * message sized so that the client's window falls below WINDOW_SIZE (the whole tail when the stream is
 * shorter than that; WINDOW_SIZE bytes otherwise, and the window is below 2 x WINDOW_SIZE), so the client
 * grants once more after it took the last byte; that grant, counted, is the acknowledgement. */
int
xstream_write_end(xstream_t *s, int timeout_ms, berth_error_t **err)
{
    int rc = s->hold_len ? send_data(s, s->hold, s->hold_len, err) : 0;
    free(s->hold);
    s->hold = NULL;
    s->hold_len = 0;
    if (rc < 0)
        return rc;
    uint64_t expected = s->updates_expected + (s->client_window < WINDOW_SIZE ? 1 : 0);
    while (!s->foreign_grants && s->updates_seen < expected) {
        char *type;
        uint8_t *value;
        size_t vlen;
        rc = xstream_recv(s, &type, &value, &vlen, timeout_ms, err);
        if (rc < 0)
            return s->m->api->error_wrap(
                err, "stream \"%s\": the client did not take the last bytes", s->id);
        if (rc == 0)
            return 0; /* the client closed its side: it has everything it wanted */
        count_window(s, type, value, vlen);
    }
    return 0;
}

/* ---- the Streaming service (loop thread) ------------------------------------------------------------- */

static int
stream_open(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st,
            const uint8_t *req, size_t req_len, berth_error_t **err)
{
    streams_t *m = instance;
    xstream_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return m->api->error_make(err, BERTH_ENOMEM, "stream: out of memory");
    s->m = m;
    atomic_init(&s->refs, 1); /* the transport's, until closed */
    s->sapi = sapi;
    s->st = st;
    pthread_mutex_init(&s->lock, NULL);
    cond_init(&s->cond);
    snprintf(s->ns, sizeof(s->ns), "%s", sapi->namespace_(st));
    sapi->set_user(st, s);
    return 0;
}

/* The first message: StreamInit{id}; the stream is registered and told so with an Empty. */
static int
stream_init(xstream_t *s, const Google__Protobuf__Any *a, berth_error_t **err)
{
    streams_t *m = s->m;
    if (strcmp(bare_type(a->type_url), STREAM_INIT_TYPE) != 0)
        return m->api->error_make(err, BERTH_EINVAL,
                                  "stream: the first message must be a StreamInit, not %s",
                                  a->type_url);
    Containerd__Services__Streaming__V1__StreamInit *in =
        containerd__services__streaming__v1__stream_init__unpack(NULL, a->value.len, a->value.data);
    if (in == NULL || in->id[0] == '\0' || strlen(in->id) >= sizeof(s->id)) {
        if (in)
            containerd__services__streaming__v1__stream_init__free_unpacked(in, NULL);
        return m->api->error_make(err, BERTH_EINVAL, "stream: a StreamInit without a valid id");
    }
    snprintf(s->id, sizeof(s->id), "%s", in->id);
    containerd__services__streaming__v1__stream_init__free_unpacked(in, NULL);
    pthread_mutex_lock(&m->lock);
    for (xstream_t *o = m->list; o; o = o->next)
        if (strcmp(o->ns, s->ns) == 0 && strcmp(o->id, s->id) == 0) {
            pthread_mutex_unlock(&m->lock);
            return m->api->error_make(err, BERTH_EEXIST, "stream \"%s\": already exists", s->id);
        }
    s->next = m->list;
    m->list = s;
    s->registered = 1;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    size_t n;
    uint8_t *buf = pack_any(EMPTY_TYPE, NULL, 0, &n);
    s->sapi->send(s->st, buf, n);
    free(buf);
    return 0;
}

static int
stream_message(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st,
               const uint8_t *data, size_t len, berth_error_t **err)
{
    streams_t *m = instance;
    xstream_t *s = sapi->get_user(st);
    Google__Protobuf__Any *a = google__protobuf__any__unpack(NULL, len, data);
    if (a == NULL)
        return m->api->error_make(err, BERTH_EINVAL, "stream: a message that is not an Any");
    int rc = 0;
    if (s->id[0] == '\0') {
        rc = stream_init(s, a, err);
    } else {
        pthread_mutex_lock(&s->lock);
        if (s->queued + a->value.len > RECV_BACKLOG) {
            rc = m->api->error_make(err, BERTH_ERESOURCE,
                                    "stream \"%s\": more than %d bytes sent and not taken", s->id,
                                    RECV_BACKLOG);
        } else {
            msg_t *g = calloc(1, sizeof(*g));
            g->type_url = strdup(a->type_url);
            g->value = malloc(a->value.len ? a->value.len : 1);
            if (a->value.len)
                memcpy(g->value, a->value.data, a->value.len);
            g->len = a->value.len;
            if (s->tail)
                s->tail->next = g;
            else
                s->head = g;
            s->tail = g;
            s->queued += g->len;
            pthread_cond_broadcast(&s->cond);
        }
        pthread_mutex_unlock(&s->lock);
    }
    google__protobuf__any__free_unpacked(a, NULL);
    return rc;
}

static void
stream_end_of_input(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st)
{
    xstream_t *s = sapi->get_user(st);
    if (s->id[0] == '\0' && !s->finished) { /* no StreamInit: nothing to keep open */
        s->finished = 1;
        sapi->finish(st, BERTH_EINVAL, "stream: closed before its StreamInit");
        return;
    }
    pthread_mutex_lock(&s->lock);
    s->eof = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void
stream_closed(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st)
{
    xstream_t *s = sapi->get_user(st);
    if (s == NULL)
        return;
    unregister(s);
    s->st = NULL;
    pthread_mutex_lock(&s->lock);
    s->gone = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    xstream_release(s);
}

static const berth_grpc_method_t streaming_methods[] = {
    {
        .name = "Stream",
        .kind = BERTH_RPC_BIDI_STREAM,
        .flags = BERTH_RPC_NAMESPACED,
        .open = stream_open,
        .message = stream_message,
        .end_of_input = stream_end_of_input,
        .closed = stream_closed,
    },
};

const berth_grpc_service_v1_t streaming_service = {
    .struct_size = sizeof(berth_grpc_service_v1_t),
    .name = "containerd.services.streaming.v1.Streaming",
    .methods = streaming_methods,
    .n_methods = 1,
};
