/* SPDX-License-Identifier: Apache-2.0 */
/*
 * streams.c against a fake transport: StreamInit registration (Empty answer, duplicates, a wrong first
 * message), take-once, the byte framing both ways (window credit, 32 KiB Data chunks, EOF), timeouts, a
 * client that goes away, and close freeing the name. The fake's "loop" runs call_on_loop work at once on
 * the calling thread, serialised by a mutex, as the real loop serialises it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "streams.h"
#include "google/protobuf/any.pb-c.h"
#include "services/streaming/v1/streaming.pb-c.h"
#include "types/transfer/streaming.pb-c.h"

extern const berth_core_api_t berth__core_api;
static berth_core_api_t api;
static pthread_mutex_t loop = PTHREAD_MUTEX_INITIALIZER;

static int
fake_call_on_loop(void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&loop);
    fn(arg);
    pthread_mutex_unlock(&loop);
    return 0;
}

/* ---- a fake stream: what the service sent, how it ended ------------------------------------------------ */

typedef struct sent_s {
    char type[128];
    uint8_t *value;
    size_t len;
} sent_t;

struct berth_grpc_stream_s {
    void *user;
    sent_t sent[4096];
    size_t n_sent;
    int finished, code, closed;
};

static const berth_grpc_stream_api_t sapi;

static void
fake_closed(berth_grpc_stream_t *st)
{
    if (!st->closed) {
        st->closed = 1;
        streaming_service.methods[0].closed(NULL, &sapi, st);
    }
}

static int
fake_send(berth_grpc_stream_t *st, const uint8_t *msg, size_t len)
{
    Google__Protobuf__Any *a = google__protobuf__any__unpack(NULL, len, msg);
    cr_assert_not_null(a);
    cr_assert_lt(st->n_sent, 4096);
    sent_t *s = &st->sent[st->n_sent];
    snprintf(s->type, sizeof(s->type), "%s", a->type_url);
    s->value = malloc(a->value.len + 1);
    if (a->value.len)
        memcpy(s->value, a->value.data, a->value.len);
    s->len = a->value.len;
    st->n_sent++;
    google__protobuf__any__free_unpacked(a, NULL);
    return 0;
}

static void
fake_finish(berth_grpc_stream_t *st, int code, const char *message)
{
    st->finished = 1;
    st->code = code;
    fake_closed(st);
}

static const char *
fake_ns(const berth_grpc_stream_t *st)
{
    return "default";
}

static void
fake_set_user(berth_grpc_stream_t *st, void *user)
{
    st->user = user;
}

static void *
fake_get_user(const berth_grpc_stream_t *st)
{
    return st->user;
}

static size_t
fake_pending(const berth_grpc_stream_t *st)
{
    return 0;
}

static const char *
fake_lease(const berth_grpc_stream_t *st)
{
    return "";
}

static const berth_grpc_stream_api_t sapi = {
    .struct_size = sizeof(berth_grpc_stream_api_t),
    .send = fake_send,
    .finish = fake_finish,
    .namespace_ = fake_ns,
    .set_user = fake_set_user,
    .get_user = fake_get_user,
    .pending = fake_pending,
    .lease = fake_lease,
};

static streams_t *m;

static void
setup(void)
{
    api = berth__core_api;
    api.call_on_loop = fake_call_on_loop;
    berth_error_t *err = NULL;
    cr_assert_eq(streams_new(&api, NULL, &m, &err), 0);
}

static void
teardown(void)
{
    streams_free(m);
}

TestSuite(streams, .init = setup, .fini = teardown);

/* The client's side: messages in as the transport hands them over (on the "loop"). */
static int
deliver(berth_grpc_stream_t *st, const char *type, const ProtobufCMessage *msg)
{
    uint8_t vbuf[70000];
    size_t vlen = msg ? protobuf_c_message_pack(msg, vbuf) : 0;
    Google__Protobuf__Any a = GOOGLE__PROTOBUF__ANY__INIT;
    a.type_url = (char *)type;
    a.value.data = vbuf;
    a.value.len = vlen;
    size_t n = google__protobuf__any__get_packed_size(&a);
    uint8_t *buf = malloc(n);
    google__protobuf__any__pack(&a, buf);
    berth_error_t *err = NULL;
    pthread_mutex_lock(&loop);
    int rc = streaming_service.methods[0].message(m, &sapi, st, buf, n, &err);
    pthread_mutex_unlock(&loop);
    free(buf);
    if (err)
        api.error_free(err);
    return rc;
}

static berth_grpc_stream_t *
open_stream(const char *id)
{
    berth_grpc_stream_t *st = calloc(1, sizeof(*st));
    berth_error_t *err = NULL;
    cr_assert_eq(streaming_service.methods[0].open(m, &sapi, st, NULL, 0, &err), 0);
    if (id) {
        Containerd__Services__Streaming__V1__StreamInit in =
            CONTAINERD__SERVICES__STREAMING__V1__STREAM_INIT__INIT;
        in.id = (char *)id;
        cr_assert_eq(deliver(st, "containerd.services.streaming.v1.StreamInit", &in.base), 0);
    }
    return st;
}

static void
client_gone(berth_grpc_stream_t *st)
{
    pthread_mutex_lock(&loop);
    fake_closed(st);
    pthread_mutex_unlock(&loop);
}

static void
stream_free(berth_grpc_stream_t *st)
{
    for (size_t i = 0; i < st->n_sent; i++)
        free(st->sent[i].value);
    free(st);
}

static xstream_t *
take(const char *id, int timeout_ms, int *code)
{
    xstream_t *s = NULL;
    berth_error_t *err = NULL;
    *code = streams_take(m, "default", id, timeout_ms, &s, &err);
    if (err)
        api.error_free(err);
    return s;
}

Test(streams, init_answers_empty_and_registers)
{
    berth_grpc_stream_t *st = open_stream("s1");
    cr_assert_eq(st->n_sent, 1);
    cr_assert_str_eq(st->sent[0].type, "google.protobuf.Empty");
    cr_assert_eq(st->sent[0].len, 0);
    int code;
    xstream_t *s = take("s1", 100, &code);
    cr_assert_eq(code, 0);
    cr_assert_null(take("s1", 50, &code), "a stream is taken once");
    cr_assert_eq(code, BERTH_ENOTFOUND);
    cr_assert_null(take("other", 50, &code));
    cr_assert_eq(code, BERTH_ENOTFOUND);
    xstream_release(s);
    client_gone(st);
    stream_free(st);
}

Test(streams, duplicate_and_wrong_first_message)
{
    berth_grpc_stream_t *a = open_stream("dup");
    berth_grpc_stream_t *b = open_stream(NULL);
    Containerd__Services__Streaming__V1__StreamInit in =
        CONTAINERD__SERVICES__STREAMING__V1__STREAM_INIT__INIT;
    in.id = "dup";
    cr_assert_eq(deliver(b, "containerd.services.streaming.v1.StreamInit", &in.base), BERTH_EEXIST);
    berth_grpc_stream_t *c = open_stream(NULL);
    Containerd__Types__Transfer__Data d = CONTAINERD__TYPES__TRANSFER__DATA__INIT;
    cr_assert_eq(deliver(c, "containerd.types.transfer.Data", &d.base), BERTH_EINVAL);
    /* a prefixed type URL is accepted */
    berth_grpc_stream_t *e = open_stream(NULL);
    in.id = "prefixed";
    cr_assert_eq(
        deliver(e, "type.googleapis.com/containerd.services.streaming.v1.StreamInit", &in.base), 0);
    for (berth_grpc_stream_t **p = (berth_grpc_stream_t *[]){a, b, c, e, NULL}; *p; p++) {
        client_gone(*p);
        stream_free(*p);
    }
}

/* ---- reading: the import side -------------------------------------------------------------------------- */

typedef struct reader_s {
    xstream_t *s;
    uint8_t *buf;
    size_t got;
    int rc;
} reader_t;

static void *
read_all(void *arg)
{
    reader_t *r = arg;
    for (;;) {
        size_t n = 0;
        berth_error_t *err = NULL;
        r->rc = xstream_read(r->s, r->buf + r->got, 10000, &n, &err);
        if (err)
            api.error_free(err);
        if (r->rc < 0 || n == 0)
            return NULL;
        r->got += n;
    }
}

static int32_t
credit_sent(berth_grpc_stream_t *st)
{
    int32_t total = 0;
    pthread_mutex_lock(&loop);
    for (size_t i = 0; i < st->n_sent; i++)
        if (strcmp(st->sent[i].type, "containerd.types.transfer.WindowUpdate") == 0) {
            Containerd__Types__Transfer__WindowUpdate *u =
                containerd__types__transfer__window_update__unpack(NULL, st->sent[i].len,
                                                                   st->sent[i].value);
            total += u->update;
            containerd__types__transfer__window_update__free_unpacked(u, NULL);
        }
    pthread_mutex_unlock(&loop);
    return total;
}

static void
wait_credit(berth_grpc_stream_t *st, int32_t at_least)
{
    for (int i = 0; i < 2000 && credit_sent(st) < at_least; i++)
        usleep(1000);
    cr_assert_geq(credit_sent(st), at_least);
}

Test(streams, read_bytes_with_window_credit)
{
    berth_grpc_stream_t *st = open_stream("in");
    int code;
    reader_t r = {.s = take("in", 100, &code), .buf = malloc(200000)};
    pthread_t t;
    pthread_create(&t, NULL, read_all, &r);
    wait_credit(st, 65536); /* credit first: the client sends nothing without it */
    static uint8_t chunk[32768];
    size_t sent = 0;
    for (int k = 0; k < 5; k++) {
        wait_credit(st, (int32_t)(sent + 1)); /* never more than the reader granted */
        for (size_t i = 0; i < sizeof(chunk); i++)
            chunk[i] = (uint8_t)(sent + i);
        Containerd__Types__Transfer__Data d = CONTAINERD__TYPES__TRANSFER__DATA__INIT;
        d.data.data = chunk;
        d.data.len = k == 4 ? 1000 : sizeof(chunk);
        cr_assert_eq(deliver(st, "containerd.types.transfer.Data", &d.base), 0);
        sent += d.data.len;
    }
    pthread_mutex_lock(&loop);
    streaming_service.methods[0].end_of_input(m, &sapi, st);
    pthread_mutex_unlock(&loop);
    pthread_join(t, NULL);
    cr_assert_eq(r.rc, 0);
    cr_assert_eq(r.got, sent);
    for (size_t i = 0; i < sent; i++)
        cr_assert_eq(r.buf[i], (uint8_t)i, "byte %zu", i);
    xstream_close(r.s);
    cr_assert(st->finished && st->code == 0);
    xstream_release(r.s);
    free(r.buf);
    stream_free(st);
}

/* ---- writing: the export side ------------------------------------------------------------------------- */

typedef struct writer_s {
    xstream_t *s;
    size_t len;
    int rc;
} writer_t;

static void *
write_all(void *arg)
{
    writer_t *w = arg;
    uint8_t *buf = malloc(w->len);
    for (size_t i = 0; i < w->len; i++)
        buf[i] = (uint8_t)(i * 7);
    berth_error_t *err = NULL;
    int rc = xstream_write(w->s, buf, w->len, &err);
    if (rc == 0)
        rc = xstream_write_end(w->s, 5000, &err);
    __atomic_store_n(&w->rc, rc, __ATOMIC_SEQ_CST);
    if (err)
        api.error_free(err);
    free(buf);
    return NULL;
}

static size_t
data_sent(berth_grpc_stream_t *st, size_t *max_chunk)
{
    size_t total = 0;
    *max_chunk = 0;
    pthread_mutex_lock(&loop);
    for (size_t i = 0; i < st->n_sent; i++)
        if (strcmp(st->sent[i].type, "containerd.types.transfer.Data") == 0) {
            Containerd__Types__Transfer__Data *d =
                containerd__types__transfer__data__unpack(NULL, st->sent[i].len, st->sent[i].value);
            for (size_t k = 0; k < d->data.len; k++)
                cr_assert_eq(d->data.data[k], (uint8_t)((total + k) * 7));
            total += d->data.len;
            if (d->data.len > *max_chunk)
                *max_chunk = d->data.len;
            containerd__types__transfer__data__free_unpacked(d, NULL);
        }
    pthread_mutex_unlock(&loop);
    return total;
}

static void
grant(berth_grpc_stream_t *st, int32_t n)
{
    Containerd__Types__Transfer__WindowUpdate u = CONTAINERD__TYPES__TRANSFER__WINDOW_UPDATE__INIT;
    u.update = n;
    cr_assert_eq(deliver(st, "containerd.types.transfer.WindowUpdate", &u.base), 0);
}

static int
written(writer_t *w)
{
    return __atomic_load_n(&w->rc, __ATOMIC_SEQ_CST) != 1;
}

/* Credit bounds every message; the last 64 KiB go as one message once the credit covers them, and the
 * writer ends only after the client granted again (it took the last byte), as ctr's ReceiveStream does. */
Test(streams, write_only_against_credit)
{
    berth_grpc_stream_t *st = open_stream("out");
    int code;
    writer_t w = {.s = take("out", 100, &code), .len = 100000, .rc = 1};
    pthread_t t;
    pthread_create(&t, NULL, write_all, &w);
    size_t max;
    usleep(50000);
    cr_assert_eq(data_sent(st, &max), 0, "nothing sent without credit");
    grant(st, 65536);
    for (int i = 0; i < 2000 && data_sent(st, &max) < 100000 - 65536; i++)
        usleep(1000);
    usleep(50000);
    cr_assert_eq(data_sent(st, &max), 100000 - 65536, "all but the held tail");
    cr_assert_leq(max, 32768);
    grant(st, 65536);
    for (int i = 0; i < 2000 && data_sent(st, &max) < 100000; i++)
        usleep(1000);
    cr_assert_eq(data_sent(st, &max), 100000);
    usleep(50000);
    cr_assert_not(written(&w), "the writer ended before the client acknowledged the last bytes");
    grant(st, 65536);
    pthread_join(t, NULL);
    cr_assert_eq(w.rc, 0);
    xstream_close(w.s);
    xstream_release(w.s);
    stream_free(st);
}

Test(streams, writer_fails_when_the_client_stops)
{
    berth_grpc_stream_t *st = open_stream("short");
    int code;
    writer_t w = {.s = take("short", 100, &code), .len = 1000};
    pthread_t t;
    pthread_create(&t, NULL, write_all, &w);
    usleep(20000);
    pthread_mutex_lock(&loop);
    streaming_service.methods[0].end_of_input(m, &sapi, st);
    pthread_mutex_unlock(&loop);
    pthread_join(t, NULL);
    cr_assert_eq(w.rc, BERTH_EUNAVAILABLE);
    xstream_release(w.s);
    client_gone(st);
    stream_free(st);
}

/* ---- timeouts, a vanished client, names freed by close ------------------------------------------------- */

Test(streams, recv_timeout_gone_and_close)
{
    berth_grpc_stream_t *st = open_stream("t");
    int code;
    xstream_t *s = take("t", 100, &code);
    char *type;
    uint8_t *value;
    size_t len;
    berth_error_t *err = NULL;
    cr_assert_eq(xstream_recv(s, &type, &value, &len, 30, &err), BERTH_ETIMEDOUT);
    api.error_free(err);
    err = NULL;
    client_gone(st);
    cr_assert_eq(xstream_recv(s, &type, &value, &len, 1000, &err), BERTH_EUNAVAILABLE);
    api.error_free(err);
    err = NULL;
    cr_assert_eq(xstream_send(s, "x", (const uint8_t *)"", 0, &err), BERTH_EUNAVAILABLE);
    api.error_free(err);
    xstream_close(s); /* nothing left to finish: a no-op */
    xstream_release(s);
    stream_free(st);

    /* a closed stream's name is free again */
    berth_grpc_stream_t *a = open_stream("again");
    xstream_t *sa = take("again", 100, &code);
    xstream_close(sa);
    cr_assert(a->finished);
    xstream_release(sa);
    berth_grpc_stream_t *b = open_stream("again");
    cr_assert_eq(b->n_sent, 1);
    client_gone(b);
    stream_free(a);
    stream_free(b);
}

typedef struct taker_s {
    xstream_t *s;
    int code;
} taker_t;

static void *
take_late(void *arg)
{
    taker_t *t = arg;
    t->s = take("late", 5000, &t->code);
    return NULL;
}

Test(streams, take_waits_for_a_late_registration)
{
    taker_t tk = {NULL, 1};
    pthread_t t;
    pthread_create(&t, NULL, take_late, &tk);
    usleep(50000);
    berth_grpc_stream_t *st = open_stream("late");
    pthread_join(t, NULL);
    cr_assert_eq(tk.code, 0);
    cr_assert_not_null(tk.s);
    xstream_close(tk.s);
    xstream_release(tk.s);
    stream_free(st);
}
