/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libberth-client's core against a real berthd on its socket: the transport (unary calls, streams both
 * ways, flow control with big messages, timeouts, cancel, the connection pool under threads), namespaces,
 * errors, events.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "common.h"
#include "internal.h"
#include "events/task.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "services/containers/v1/containers.pb-c.h"
#include "services/content/v1/content.pb-c.h"
#include "services/leases/v1/leases.pb-c.h"
#include "services/namespaces/v1/namespace.pb-c.h"
#include "types/event.pb-c.h"

static bct_daemon_t d;

static void
setup(void)
{
    bct_start(&d, NULL);
}

static void
teardown(void)
{
    bct_stop(&d);
}

TestSuite(core, .init = setup, .fini = teardown, .timeout = 40);

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(core, version)
{
    berth_client_t *c = bct_client(&d, NULL);
    char *v = NULL, *rev = NULL;
    berth_error_t *err = NULL;
    int r = berth_version(c, NULL, &v, &rev, &err);
    cr_assert_eq(r, 0, "%s", err ? err->message : "");
    cr_expect(strstr(v, "berth") != NULL, "version %s", v);
    cr_expect_neq(rev, NULL);
    berth_free(v);
    berth_free(rev);
    /* again, on the pooled connection */
    cr_expect_eq(berth_version(c, NULL, &v, NULL, NULL), 0);
    berth_free(v);
    berth_client_free(c);
}

Test(core, serving)
{
    berth_client_t *c = bct_client(&d, NULL);
    berth_error_t *err = NULL;
    cr_expect_eq(berth_serving(c, NULL, &err), 0, "%s", err ? err->message : "");
    berth_client_free(c);
}

Test(core, unix_scheme_address)
{
    char addr[500];
    snprintf(addr, sizeof(addr), "unix://%s", d.sock);
    berth_client_t *c = NULL;
    cr_assert_eq(berth_client_new(addr, NULL, &c, NULL), 0);
    cr_expect_str_eq(berth_client_address(c), d.sock);
    cr_expect_eq(berth_version(c, NULL, NULL, NULL, NULL), 0);
    berth_client_free(c);
    /* NULL address: $BERTH_ADDRESS */
    setenv("BERTH_ADDRESS", d.sock, 1);
    cr_assert_eq(berth_client_new(NULL, NULL, &c, NULL), 0);
    cr_expect_str_eq(berth_client_address(c), d.sock);
    cr_expect_eq(berth_version(c, NULL, NULL, NULL, NULL), 0);
    berth_client_free(c);
    unsetenv("BERTH_ADDRESS");
    cr_assert_eq(berth_client_new(NULL, NULL, &c, NULL), 0);
    cr_expect_str_eq(berth_client_address(c), BERTH_CLIENT_DEFAULT_ADDRESS);
    berth_client_free(c);
}

Test(core, missing_socket_is_unavailable_and_names_the_path)
{
    char path[500];
    snprintf(path, sizeof(path), "%s/nothing/berthd.sock", d.dirs.base);
    berth_client_t *c = NULL;
    berth_error_t *err = NULL;
    cr_assert_eq(berth_client_new(path, NULL, &c, &err), 0, "new must not connect");
    int r = berth_version(c, NULL, NULL, NULL, &err);
    cr_assert_eq(r, BERTH_EUNAVAILABLE);
    cr_assert_neq(err, NULL);
    cr_expect_eq(err->code, BERTH_EUNAVAILABLE);
    char want[600];
    snprintf(want, sizeof(want), "connect %s: No such file or directory", path);
    cr_expect_str_eq(err->message, want);
    cr_expect_str_eq(berth_error_class(err->code), "unavailable");
    berth_error_free(err);
    berth_client_free(c);
}

/* Creates lease `id` with the client's default namespace, then finds out which namespace has it. */
static int
lease_in(berth_client_t *c, const char *ns, const char *id)
{
    berth_call_t call = {.namespace_ = ns};
    Containerd__Services__Leases__V1__ListRequest req =
        CONTAINERD__SERVICES__LEASES__V1__LIST_REQUEST__INIT;
    ProtobufCMessage *resp;
    berth_error_t *err = NULL;
    int r = bc_unary(c, &call, "/containerd.services.leases.v1.Leases/List", &req.base,
                     &containerd__services__leases__v1__list_response__descriptor, &resp, &err);
    cr_assert_eq(r, 0, "%s", err ? err->message : "");
    Containerd__Services__Leases__V1__ListResponse *l = (void *)resp;
    int found = 0;
    for (size_t i = 0; i < l->n_leases; i++)
        found |= strcmp(l->leases[i]->id, id) == 0;
    protobuf_c_message_free_unpacked(resp, NULL);
    return found;
}

static void
lease_create(berth_client_t *c, const berth_call_t *call, const char *id)
{
    Containerd__Services__Leases__V1__CreateRequest req =
        CONTAINERD__SERVICES__LEASES__V1__CREATE_REQUEST__INIT;
    req.id = (char *)id;
    ProtobufCMessage *resp;
    berth_error_t *err = NULL;
    int r = bc_unary(c, call, "/containerd.services.leases.v1.Leases/Create", &req.base,
                     &containerd__services__leases__v1__create_response__descriptor, &resp, &err);
    cr_assert_eq(r, 0, "%s", err ? err->message : "");
    protobuf_c_message_free_unpacked(resp, NULL);
}

Test(core, namespace_precedence_reaches_the_server)
{
    setenv("BERTH_NAMESPACE", "from-berth", 1);
    setenv("CONTAINERD_NAMESPACE", "from-containerd", 1);
    berth_client_options_t o = {.namespace_ = "from-options"};
    berth_client_t *c = bct_client(&d, &o);
    cr_expect_str_eq(berth_client_namespace(c), "from-options");
    lease_create(c, NULL, "l-options");
    berth_client_free(c);

    c = bct_client(&d, NULL);
    cr_expect_str_eq(berth_client_namespace(c), "from-berth");
    lease_create(c, NULL, "l-berth");
    /* a call's namespace beats the client's */
    berth_call_t call = {.namespace_ = "from-call"};
    lease_create(c, &call, "l-call");
    berth_client_free(c);

    unsetenv("BERTH_NAMESPACE");
    c = bct_client(&d, NULL);
    cr_expect_str_eq(berth_client_namespace(c), "from-containerd");
    lease_create(c, NULL, "l-containerd");
    berth_client_free(c);

    unsetenv("CONTAINERD_NAMESPACE");
    c = bct_client(&d, NULL);
    cr_expect_str_eq(berth_client_namespace(c), "default");
    lease_create(c, NULL, "l-default");

    cr_expect(lease_in(c, "from-options", "l-options"));
    cr_expect(lease_in(c, "from-berth", "l-berth"));
    cr_expect(lease_in(c, "from-call", "l-call"));
    cr_expect(lease_in(c, "from-containerd", "l-containerd"));
    cr_expect(lease_in(c, "default", "l-default"));
    cr_expect(!lease_in(c, "default", "l-berth"));
    cr_expect(!lease_in(c, "from-berth", "l-call"));
    berth_client_free(c);
}

Test(core, server_errors_keep_class_and_message)
{
    berth_client_t *c = bct_client(&d, NULL);
    berth_error_t *err = NULL;
    int r = berth_namespace_delete(c, NULL, "no-such-ns", &err);
    cr_assert_eq(r, BERTH_ENOTFOUND, "got %d %s", r, err ? err->message : "");
    cr_expect_eq(err->code, BERTH_ENOTFOUND);
    cr_expect_str_eq(err->message, "namespace \"no-such-ns\": not found");
    cr_expect_str_eq(berth_error_class(r), "not found");
    berth_error_free(err);
    err = NULL;

    /* grpc-message arrives percent-encoded: '%' and non-ASCII come back as sent */
    r = berth_namespace_create(c, NULL, "bad name%/\xc3\xa9", NULL, 0, &err);
    cr_assert_eq(r, BERTH_EINVAL, "got %d %s", r, err ? err->message : "");
    cr_expect(strstr(err->message, "identifier \"bad name%/\xc3\xa9\" must match") != NULL, "%s",
              err->message);
    berth_error_free(err);
    err = NULL;

    Containerd__Services__Content__V1__InfoRequest req =
        CONTAINERD__SERVICES__CONTENT__V1__INFO_REQUEST__INIT;
    req.digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    ProtobufCMessage *resp = NULL;
    r = bc_unary(c, NULL, "/containerd.services.content.v1.Content/Info", &req.base,
                 &containerd__services__content__v1__info_response__descriptor, &resp, &err);
    cr_assert_eq(r, BERTH_ENOTFOUND, "got %d %s", r, err ? err->message : "");
    cr_expect(strstr(err->message, req.digest) != NULL, "%s", err->message);
    cr_expect_eq(resp, NULL);
    berth_error_free(err);
    err = NULL;

    /* an unknown method: Unimplemented, and the connection stays usable */
    r = bc_unary(c, NULL, "/containerd.services.nothing.v1.Nothing/Get", &req.base, NULL, NULL,
                 &err);
    cr_expect_eq(r, BERTH_ENOTIMPL, "got %d %s", r, err ? err->message : "");
    berth_error_free(err);
    cr_expect_eq(berth_version(c, NULL, NULL, NULL, NULL), 0);
    berth_client_free(c);
}

static int
count_events(void *user, const berth_event_t *ev)
{
    (void)ev;
    ++*(int *)user;
    return 0;
}

Test(core, timeout_is_etimedout)
{
    berth_client_t *c = bct_client(&d, NULL);
    berth_call_t call = {.timeout_ms = 200};
    berth_error_t *err = NULL;
    int n = 0;
    const char *filters[] = {"topic==\"/nothing/ever\""};
    double t0 = now_s();
    int r = berth_events_subscribe(c, &call, filters, 1, count_events, &n, &err);
    double dt = now_s() - t0;
    cr_assert_eq(r, BERTH_ETIMEDOUT, "got %d %s", r, err ? err->message : "");
    cr_expect_eq(err->code, BERTH_ETIMEDOUT);
    cr_expect(dt >= 0.19 && dt < 2, "took %.3f s", dt);
    cr_expect_eq(n, 0);
    berth_error_free(err);
    /* the client still works after the timed-out stream's connection went */
    cr_expect_eq(berth_version(c, NULL, NULL, NULL, NULL), 0);
    berth_client_free(c);
}

/* A socket that takes connections and never answers: only the client's own deadline ends the call. */
Test(core, local_deadline_when_the_server_is_silent)
{
    char path[500];
    snprintf(path, sizeof(path), "%s/silent.sock", d.dirs.base);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    cr_assert_lt(strlen(path), sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path) + 1);
    cr_assert_eq(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(l, 8), 0);
    berth_client_t *c = NULL;
    cr_assert_eq(berth_client_new(path, NULL, &c, NULL), 0);
    berth_call_t call = {.timeout_ms = 200};
    berth_error_t *err = NULL;
    double t0 = now_s();
    int r = berth_version(c, &call, NULL, NULL, &err);
    double dt = now_s() - t0;
    cr_expect_eq(r, BERTH_ETIMEDOUT, "got %d %s", r, err ? err->message : "");
    cr_expect(dt >= 0.19 && dt < 2, "took %.3f s", dt);
    berth_error_free(err);
    err = NULL;
    r = berth_events_subscribe(c, &call, NULL, 0, count_events, NULL, &err);
    cr_expect_eq(r, BERTH_ETIMEDOUT, "got %d %s", r, err ? err->message : "");
    berth_error_free(err);
    berth_client_free(c);
    close(l);
}

/* What a request looks like on the wire: the silent socket's side reads the preface and the first HEADERS
 * frame and decodes it with nghttp2's HPACK inflater. */
typedef struct wire {
    int listener;
    char headers[2048]; /* "name: value\n"... */
    int got_data;       /* the first read had the preface, SETTINGS, HEADERS and DATA: one write */
} wire_t;

static void *
wire_read(void *arg)
{
    wire_t *w = arg;
    int fd = accept(w->listener, NULL, NULL);
    uint8_t buf[65536];
    size_t len = 0;
    int first_read = 0;
    /* until the HEADERS and the DATA of stream 1 are in, or the client hangs up */
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        size_t off = 24;
        int headers = 0, data = 0;
        while (off + 9 <= len) {
            size_t flen = (size_t)buf[off] << 16 | (size_t)buf[off + 1] << 8 | buf[off + 2];
            if (off + 9 + flen > len)
                break;
            headers |= buf[off + 3] == 1;
            data |= buf[off + 3] == 0;
            off += 9 + flen;
        }
        if (first_read++ == 0)
            w->got_data = headers && data;
        if (headers && data)
            break;
    }
    nghttp2_hd_inflater *inf;
    nghttp2_hd_inflate_new(&inf);
    for (size_t off = 24; off + 9 <= len;) {
        size_t flen = (size_t)buf[off] << 16 | (size_t)buf[off + 1] << 8 | buf[off + 2];
        uint8_t type = buf[off + 3];
        if (type == 1) {
            uint8_t *in = buf + off + 9;
            size_t inlen = flen;
            for (;;) {
                nghttp2_nv nv;
                int flags = 0;
                ssize_t r = nghttp2_hd_inflate_hd2(inf, &nv, &flags, in, inlen, 1);
                if (r < 0)
                    break;
                in += r, inlen -= (size_t)r;
                if (flags & NGHTTP2_HD_INFLATE_EMIT) {
                    size_t at = strlen(w->headers);
                    snprintf(w->headers + at, sizeof(w->headers) - at, "%.*s: %.*s\n",
                             (int)nv.namelen, nv.name, (int)nv.valuelen, nv.value);
                }
                if (flags & NGHTTP2_HD_INFLATE_FINAL) {
                    nghttp2_hd_inflate_end_headers(inf);
                    break;
                }
                if (inlen == 0 && !(flags & NGHTTP2_HD_INFLATE_EMIT))
                    break;
            }
        }
        off += 9 + flen;
    }
    nghttp2_hd_inflate_del(inf);
    close(fd);
    return NULL;
}

Test(core, request_headers_are_containerds)
{
    char path[500];
    snprintf(path, sizeof(path), "%s/wire.sock", d.dirs.base);
    wire_t w = {.listener = socket(AF_UNIX, SOCK_STREAM, 0)};
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    cr_assert_lt(strlen(path), sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path) + 1);
    cr_assert_eq(bind(w.listener, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(w.listener, 8), 0);
    pthread_t t;
    pthread_create(&t, NULL, wire_read, &w);
    berth_client_options_t o = {.namespace_ = "wire-ns"};
    berth_client_t *c = NULL;
    cr_assert_eq(berth_client_new(path, &o, &c, NULL), 0);
    berth_call_t call = {.timeout_ms = 1500};
    int r = berth_version(c, &call, NULL, NULL, NULL);
    pthread_join(t, NULL);
    cr_expect_neq(r, 0);
    const char *want[] = {":method: POST\n",
                          ":scheme: http\n",
                          ":path: /containerd.services.version.v1.Version/Version\n",
                          ":authority: localhost\n",
                          "content-type: application/grpc\n",
                          "te: trailers\n",
                          "user-agent: berth-client/",
                          "containerd-namespace: wire-ns\n",
                          "grpc-timeout: 1500m\n"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        cr_expect(strstr(w.headers, want[i]) != NULL, "no %s in\n%s", want[i], w.headers);
    cr_expect(w.got_data, "the request's DATA did not come with its HEADERS");
    berth_client_free(c);
    close(w.listener);
}

/* The pooled connections of a daemon that restarted are dead: the next calls must not fail for it. */
Test(core, pooled_connections_survive_a_daemon_restart)
{
    berth_client_t *c = bct_client(&d, NULL);
    cr_assert_eq(berth_version(c, NULL, NULL, NULL, NULL), 0);
    cr_assert_eq(berth_serving(c, NULL, NULL), 0);
    cr_assert_geq(c->n_pool, 1);
    bct_restart(&d, NULL);
    berth_error_t *err = NULL;
    for (int i = 0; i < 3; i++) {
        int r = berth_version(c, NULL, NULL, NULL, &err);
        cr_expect_eq(r, 0, "call %d after the restart: %s", i, err ? err->message : "");
        berth_error_free(err);
        err = NULL;
    }
    berth_client_free(c);
}

typedef struct hammer {
    berth_client_t *c;
    int ok;
    char first_error[256];
} hammer_t;

static void *
hammer(void *arg)
{
    hammer_t *h = arg;
    for (int i = 0; i < 200; i++) {
        char *v = NULL;
        berth_error_t *err = NULL;
        if (berth_version(h->c, NULL, &v, NULL, &err) == 0 && v && strstr(v, "berth"))
            h->ok++;
        else if (!h->first_error[0])
            snprintf(h->first_error, sizeof(h->first_error), "%s", err ? err->message : "?");
        berth_free(v);
        berth_error_free(err);
    }
    return NULL;
}

Test(core, eight_threads_share_one_client)
{
    berth_client_t *c = bct_client(&d, NULL);
    pthread_t t[8];
    hammer_t h[8];
    for (int i = 0; i < 8; i++) {
        h[i] = (hammer_t){.c = c};
        pthread_create(&t[i], NULL, hammer, &h[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        cr_expect_eq(h[i].ok, 200, "thread %d: %d of 200 (%s)", i, h[i].ok, h[i].first_error);
    }
    /* at most one connection per thread ever was made: they are all idle in the pool now */
    cr_expect(c->n_pool >= 1 && c->n_pool <= 8, "%zu pooled", c->n_pool);
    berth_client_free(c);
}

typedef struct canceller {
    bc_stream_t *s;
    int delay_ms;
} canceller_t;

static void *
cancel_later(void *arg)
{
    canceller_t *k = arg;
    usleep((useconds_t)k->delay_ms * 1000);
    bc_stream_cancel(k->s);
    return NULL;
}

Test(core, stream_cancelled_from_another_thread)
{
    berth_client_t *c = bct_client(&d, NULL);
    berth_error_t *err = NULL;
    bc_stream_t *s = NULL;
    int r = bc_stream_open(c, NULL, "/containerd.services.events.v1.Events/Subscribe", &s, &err);
    cr_assert_eq(r, 0, "%s", err ? err->message : "");
    cr_assert_eq(bc_stream_close_send(s, &err), 0);
    canceller_t k = {s, 200};
    pthread_t t;
    pthread_create(&t, NULL, cancel_later, &k);
    double t0 = now_s();
    ProtobufCMessage *m = NULL;
    r = bc_stream_recv(s, &containerd__types__envelope__descriptor, &m, &err);
    double dt = now_s() - t0;
    pthread_join(t, NULL);
    cr_expect_eq(r, BERTH_ECANCELED, "got %d %s", r, err ? err->message : "");
    cr_expect(dt >= 0.15 && dt < 2, "took %.3f s", dt);
    cr_expect_eq(m, NULL);
    berth_error_free(err);
    bc_stream_free(s);
    cr_expect_eq(berth_version(c, NULL, NULL, NULL, NULL), 0);
    berth_client_free(c);
}

/* Writes `len` bytes through Content/Write (a bidi stream), commits under their digest. */
static void
content_write(berth_client_t *c, const uint8_t *data, size_t len, const char *digest)
{
    berth_error_t *err = NULL;
    bc_stream_t *s = NULL;
    cr_assert_eq(bc_stream_open(c, NULL, "/containerd.services.content.v1.Content/Write", &s, &err),
                 0);
    size_t chunk = 1 << 20;
    for (size_t off = 0; off < len; off += chunk) {
        Containerd__Services__Content__V1__WriteContentRequest w =
            CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_REQUEST__INIT;
        w.action = CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__WRITE;
        w.ref = "bigblob";
        w.total = (int64_t)len;
        w.offset = (int64_t)off;
        w.data.data = (uint8_t *)data + off;
        w.data.len = len - off < chunk ? len - off : chunk;
        int r = bc_stream_send(s, &w.base, &err);
        cr_assert_eq(r, 0, "write at %zu: %s", off, err ? err->message : "");
        /* the service answers each write */
        ProtobufCMessage *m;
        r = bc_stream_recv(
            s, &containerd__services__content__v1__write_content_response__descriptor, &m, &err);
        cr_assert_eq(r, 1, "answer at %zu: %d %s", off, r, err ? err->message : "");
        protobuf_c_message_free_unpacked(m, NULL);
    }
    Containerd__Services__Content__V1__WriteContentRequest w =
        CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_REQUEST__INIT;
    w.action = CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__COMMIT;
    w.ref = "bigblob";
    w.total = (int64_t)len;
    w.offset = (int64_t)len;
    w.expected = (char *)digest;
    cr_assert_eq(bc_stream_send(s, &w.base, &err), 0, "%s", err ? err->message : "");
    cr_assert_eq(bc_stream_close_send(s, &err), 0);
    ProtobufCMessage *m;
    int r = bc_stream_recv(
        s, &containerd__services__content__v1__write_content_response__descriptor, &m, &err);
    cr_assert_eq(r, 1, "commit: %d %s", r, err ? err->message : "");
    Containerd__Services__Content__V1__WriteContentResponse *wr = (void *)m;
    cr_expect_str_eq(wr->digest, digest);
    protobuf_c_message_free_unpacked(m, NULL);
    r = bc_stream_recv(s, &containerd__services__content__v1__write_content_response__descriptor,
                       &m, &err);
    cr_expect_eq(r, 0, "end: %d %s", r, err ? err->message : "");
    bc_stream_free(s);
}

/* sha256 by sha256sum: the test needs no crypto library */
static void
digest_of(const char *dir, const uint8_t *data, size_t len, char *out, size_t n)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/blob", dir);
    FILE *f = fopen(path, "wb");
    cr_assert(f != NULL);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
    const char *argv[] = {"/usr/bin/sha256sum", path, NULL};
    run_result_t r = run_prog(argv, 30);
    cr_assert_eq(r.status, 0);
    snprintf(out, n, "sha256:%.64s", r.out);
    run_free(&r);
    unlink(path);
}

Test(core, big_messages_both_ways)
{
    size_t len = 24u << 20; /* past every window: both directions need flow control to finish */
    uint8_t *data = malloc(len);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        data[i] = (uint8_t)x;
    }
    char digest[80];
    digest_of(d.dirs.base, data, len, digest, sizeof(digest));
    berth_client_t *c = bct_client(&d, NULL);
    content_write(c, data, len, digest);

    /* Read streams it back in chunks; a slow reader (here: none, all at once) must still get all */
    Containerd__Services__Content__V1__ReadContentRequest req =
        CONTAINERD__SERVICES__CONTENT__V1__READ_CONTENT_REQUEST__INIT;
    req.digest = digest;
    berth_error_t *err = NULL;
    bc_stream_t *s = NULL;
    cr_assert_eq(bc_stream_open(c, NULL, "/containerd.services.content.v1.Content/Read", &s, &err),
                 0);
    cr_assert_eq(bc_stream_send(s, &req.base, &err), 0);
    cr_assert_eq(bc_stream_close_send(s, &err), 0);
    size_t got = 0;
    int same = 1, r;
    ProtobufCMessage *m;
    while ((r = bc_stream_recv(
                s, &containerd__services__content__v1__read_content_response__descriptor, &m,
                &err)) == 1) {
        Containerd__Services__Content__V1__ReadContentResponse *rr = (void *)m;
        if ((size_t)rr->offset != got || got + rr->data.len > len ||
            memcmp(data + got, rr->data.data, rr->data.len) != 0)
            same = 0;
        got += rr->data.len;
        protobuf_c_message_free_unpacked(m, NULL);
    }
    cr_expect_eq(r, 0, "%d %s", r, err ? err->message : "");
    cr_expect_eq(got, len);
    cr_expect(same, "the bytes read differ from those written");
    bc_stream_free(s);

    /* the connection went back to the pool with its windows intact: another read of it works */
    cr_expect_eq(berth_version(c, NULL, NULL, NULL, NULL), 0);
    free(data);
    berth_client_free(c);
}

typedef struct ev_wait {
    char json[4096];
    char topic[128];
    char ns[128];
    char type_url[128];
} ev_wait_t;

static int
want_container_create(void *user, const berth_event_t *ev)
{
    ev_wait_t *w = user;
    if (strcmp(ev->topic, "/containers/create") != 0)
        return 0;
    snprintf(w->topic, sizeof(w->topic), "%s", ev->topic);
    snprintf(w->ns, sizeof(w->ns), "%s", ev->namespace_);
    snprintf(w->type_url, sizeof(w->type_url), "%s", ev->type_url);
    snprintf(w->json, sizeof(w->json), "%s", ev->json ? ev->json : "(null)");
    return 1;
}

typedef struct ct_maker {
    const char *sock;
    int rc;
    char error[256];
    atomic_int done; /* the subscriber got its event */
} ct_maker_t;

static void *
make_container(void *arg)
{
    ct_maker_t *k = arg;
    berth_client_t *c = NULL;
    berth_client_new(k->sock, NULL, &c, NULL);
    Google__Protobuf__Any opts = GOOGLE__PROTOBUF__ANY__INIT, spec = GOOGLE__PROTOBUF__ANY__INIT;
    opts.type_url = "example.com/x.y.Unknown";
    opts.value = (ProtobufCBinaryData){3, (uint8_t *)"\x01\x02\x03"};
    spec.type_url = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
    spec.value = (ProtobufCBinaryData){2, (uint8_t *)"{}"};
    Containerd__Services__Containers__V1__Container__Runtime rt =
        CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__RUNTIME__INIT;
    rt.name = "io.containerd.runc.v2";
    rt.options = &opts;
    Containerd__Services__Containers__V1__Container ct =
        CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__INIT;
    ct.image = "docker.io/library/busybox:latest";
    ct.runtime = &rt;
    ct.spec = &spec;
    Containerd__Services__Containers__V1__CreateContainerRequest req =
        CONTAINERD__SERVICES__CONTAINERS__V1__CREATE_CONTAINER_REQUEST__INIT;
    req.container = &ct;
    berth_call_t call = {.namespace_ = "evns"};
    /* a container every 100 ms until the subscriber saw one: no guess at when the server has
     * registered the subscription */
    for (int i = 0; i < 100 && !atomic_load(&k->done) && k->rc == 0; i++) {
        char id[32];
        snprintf(id, sizeof(id), "evct-%d", i);
        ct.id = id;
        berth_error_t *err = NULL;
        ProtobufCMessage *resp = NULL;
        k->rc =
            bc_unary(c, &call, "/containerd.services.containers.v1.Containers/Create", &req.base,
                     &containerd__services__containers__v1__create_container_response__descriptor,
                     &resp, &err);
        if (err)
            snprintf(k->error, sizeof(k->error), "%s", err->message);
        berth_error_free(err);
        if (resp)
            protobuf_c_message_free_unpacked(resp, NULL);
        usleep(100 * 1000);
    }
    berth_client_free(c);
    return NULL;
}

Test(core, events_arrive_decoded)
{
    berth_client_t *c = bct_client(&d, NULL);
    ct_maker_t k = {d.sock, 0, "", 0};
    pthread_t t;
    pthread_create(&t, NULL, make_container, &k);
    ev_wait_t w = {0};
    berth_call_t call = {.timeout_ms = 10000};
    berth_error_t *err = NULL;
    const char *filters[] = {"topic~=\"^/containers/\"", "topic==\"/tasks/exit\""};
    int r = berth_events_subscribe(c, &call, filters, 2, want_container_create, &w, &err);
    atomic_store(&k.done, 1);
    pthread_join(t, NULL);
    cr_assert_eq(k.rc, 0, "container create: %s", k.error);
    cr_assert_eq(r, 0, "%d %s", r, err ? err->message : "");
    cr_expect_str_eq(w.topic, "/containers/create");
    cr_expect_str_eq(w.ns, "evns");
    cr_expect_str_eq(w.type_url, "containerd.events.ContainerCreate");
    int n = -1;
    cr_assert_eq(sscanf(w.json, "{\"id\":\"evct-%d\"", &n), 1, "%s", w.json);
    char want[512];
    snprintf(want, sizeof(want),
             "{\"id\":\"evct-%d\",\"image\":\"docker.io/library/busybox:latest\",\"runtime\":{"
             "\"name\":\"io.containerd.runc.v2\",\"options\":{\"@type\":\"example.com/x.y."
             "Unknown\",\"value\":\"AQID\"}}}",
             n);
    cr_expect_str_eq(w.json, want);
    berth_client_free(c);
}

Test(core, json_mapping)
{
    /* int64 as strings, enums by name, bytes as base64, defaults left out */
    Containerd__Services__Content__V1__WriteContentRequest w =
        CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_REQUEST__INIT;
    w.action = CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__COMMIT;
    w.ref = "r\"1";
    w.total = 5000000000;
    w.data = (ProtobufCBinaryData){4, (uint8_t *)"abcd"};
    berth_kv_t kv[] = {{"a/b", "1"}, {"c", "2"}};
    w.n_labels = 2;
    w.labels = (void *)bc_map_from_kv(
        &containerd__services__content__v1__write_content_request__labels_entry__descriptor, kv, 2);
    char *j = bc_message_json(&w.base);
    cr_expect_str_eq(j, "{\"action\":\"COMMIT\",\"ref\":\"r\\\"1\",\"total\":\"5000000000\","
                        "\"data\":\"YWJjZA==\",\"labels\":{\"a/b\":\"1\",\"c\":\"2\"}}");
    free(j);
    free(w.labels);

    /* an Envelope: Timestamp as RFC 3339, a known Any decoded in place */
    Containerd__Events__TaskExit ex = CONTAINERD__EVENTS__TASK_EXIT__INIT;
    Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    at.seconds = 1796144400; /* 2026-12-01T17:00:00Z */
    at.nanos = 123000000;
    ex.container_id = "c1";
    ex.id = "c1";
    ex.pid = 42;
    ex.exit_status = 137;
    ex.exited_at = &at;
    uint8_t buf[256];
    size_t n = protobuf_c_message_pack(&ex.base, buf);
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    any.type_url = "containerd.events.TaskExit";
    any.value = (ProtobufCBinaryData){n, buf};
    Containerd__Types__Envelope env = CONTAINERD__TYPES__ENVELOPE__INIT;
    env.timestamp = &at;
    env.namespace_ = "default";
    env.topic = "/tasks/exit";
    env.event = &any;
    j = bc_message_json(&env.base);
    cr_expect_str_eq(j, "{\"timestamp\":\"2026-12-01T17:00:00.123Z\",\"namespace\":\"default\","
                        "\"topic\":\"/tasks/exit\",\"event\":{\"@type\":\"containerd.events."
                        "TaskExit\",\"containerId\":\"c1\",\"id\":\"c1\",\"pid\":42,\"exitStatus\":"
                        "137,\"exitedAt\":\"2026-12-01T17:00:00.123Z\"}}");
    free(j);
    cr_expect_eq(bc_descriptor_for("types.googleapis.com/containerd.events.TaskExit"),
                 &containerd__events__task_exit__descriptor);
    cr_expect_eq(bc_descriptor_for("containerd.events.Nothing"), NULL);
}

Test(core, plugins_server_modules_namespaces)
{
    berth_client_t *c = bct_client(&d, NULL);
    berth_error_t *err = NULL;
    berth_plugin_t *p = NULL;
    size_t n = 0;
    int r = berth_plugins(c, NULL, NULL, 0, &p, &n, &err);
    cr_assert_eq(r, 0, "%s", err ? err->message : "");
    int content = 0;
    for (size_t i = 0; i < n; i++)
        content |= strcmp(p[i].type, "io.containerd.content.v1") == 0;
    cr_expect(content, "no content plugin among %zu", n);
    berth_plugins_free(p, n);
    const char *f[] = {"type==io.containerd.content.v1"};
    cr_assert_eq(berth_plugins(c, NULL, f, 1, &p, &n, &err), 0);
    cr_expect_eq(n, 1);
    if (n == 1)
        cr_expect_str_eq(p[0].init_error, "");
    berth_plugins_free(p, n);

    berth_server_info_t si;
    cr_assert_eq(berth_server_info(c, NULL, &si, &err), 0, "%s", err ? err->message : "");
    cr_expect_eq(strlen(si.uuid), 36, "uuid %s", si.uuid);
    cr_expect_eq(si.pid, (uint64_t)d.pid);
    berth_server_info_free(&si);

    berth_module_t *m = NULL;
    r = berth_modules(c, NULL, &m, &n, &err);
    cr_assert_eq(r, 0, "%s", err ? err->message : "");
    int grpc = 0;
    for (size_t i = 0; i < n; i++)
        grpc |= strstr(m[i].file, "grpc") != NULL;
    cr_expect(n > 0 && grpc, "%zu modules, none from the grpc module's file", n);
    berth_modules_free(m, n);

    cr_assert_eq(berth_namespace_create(c, NULL, "made", NULL, 0, &err), 0, "%s",
                 err ? err->message : "");
    char **names = NULL;
    cr_assert_eq(berth_namespace_list(c, NULL, &names, &n, &err), 0);
    int made = 0;
    for (size_t i = 0; i < n; i++) {
        made |= strcmp(names[i], "made") == 0;
        berth_free(names[i]);
    }
    berth_free(names);
    cr_expect(made);
    r = berth_namespace_create(c, NULL, "made", NULL, 0, &err);
    cr_expect_eq(r, BERTH_EEXIST, "%d", r);
    berth_error_free(err);
    err = NULL;
    cr_expect_eq(berth_namespace_delete(c, NULL, "made", &err), 0);
    berth_client_free(c);
}

/* Modules.Reload with the config berthd started with: applied, nothing changed, and the daemon serves on */
Test(core, modules_reload)
{
    berth_client_t *c = bct_client(&d, NULL);
    berth_error_t *err = NULL;
    berth_modules_reload_t r;
    berth_call_t call = {.timeout_ms = 60000};
    for (int round = 0; round < 2; round++) {
        int rc = berth_modules_reload(c, &call, &r, &err);
        cr_assert_eq(rc, 0, "round %d: %s", round, err ? err->message : "");
        cr_expect_str_neq(r.message, "", "no summary");
        /* a plugin that skipped (btrfs here) is tried again, and its dependents with it: only
         * "reloaded" may be non-empty */
        cr_expect(r.n_enabled == 0 && r.n_disabled == 0 && r.n_failed == 0,
                  "the same config enabled, disabled or failed something: %zu %zu %zu", r.n_enabled,
                  r.n_disabled, r.n_failed);
        for (size_t i = 0; i < r.n_reloaded; i++)
            cr_expect(strchr(r.reloaded[i], '.') != NULL, "reloaded: \"%s\"", r.reloaded[i]);
        cr_expect(r.enabled != NULL && r.enabled[r.n_enabled] == NULL &&
                      r.reloaded[r.n_reloaded] == NULL,
                  "lists end with NULL");
        berth_modules_reload_free(&r);
    }
    cr_expect_eq(berth_serving(c, NULL, &err), 0, "%s", err ? err->message : "");
    berth_client_free(c);
}
