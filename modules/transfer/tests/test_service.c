/* SPDX-License-Identifier: Apache-2.0 */
/*
 * service.c and job.c: the Transfer call's dispatch on its type URLs (the operations replaced by recorders
 * here), containerd's Unimplemented message, undecodable objects, the job's lease (created with a gc.expire
 * label and deleted, or the call's own lease kept), and the echo transfer through two streams of a fake
 * transport.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "transfer.h"
#include "google/protobuf/any.pb-c.h"
#include "services/streaming/v1/streaming.pb-c.h"
#include "services/transfer/v1/transfer.pb-c.h"
#include "types/transfer/imagestore.pb-c.h"
#include "types/transfer/importexport.pb-c.h"
#include "types/transfer/registry.pb-c.h"
#include "types/transfer/streaming.pb-c.h"

extern const berth_core_api_t berth__core_api;
extern const berth_grpc_service_v1_t transfer_service;
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

static __thread char call_lease[128];
static void
fake_set_lease(const char *l)
{
    snprintf(call_lease, sizeof(call_lease), "%s", l ? l : "");
}
static const char *
fake_lease(void)
{
    return call_lease;
}

/* ---- the operations: recorded, not run ---------------------------------------------------------------- */

static char ran[64];
static char lease_seen[128];

#define OP(fn, name, S, D)                                                           \
    int fn(xjob_t *j, const struct S *src, const struct D *dst, berth_error_t **err) \
    {                                                                                \
        snprintf(ran, sizeof(ran), "%s", name);                                      \
        snprintf(lease_seen, sizeof(lease_seen), "%s", j->lease);                    \
        return 0;                                                                    \
    }
OP(xfer_pull, "pull", Containerd__Types__Transfer__OCIRegistry,
   Containerd__Types__Transfer__ImageStore)
OP(xfer_push, "push", Containerd__Types__Transfer__ImageStore,
   Containerd__Types__Transfer__OCIRegistry)
OP(xfer_import, "import", Containerd__Types__Transfer__ImageImportStream,
   Containerd__Types__Transfer__ImageStore)
OP(xfer_export, "export", Containerd__Types__Transfer__ImageStore,
   Containerd__Types__Transfer__ImageExportStream)
OP(xfer_tag, "tag", Containerd__Types__Transfer__ImageStore,
   Containerd__Types__Transfer__ImageStore)

/* ---- a metadata store that keeps leases only ------------------------------------------------------------ */

static char leases[8][128];
static char expire[8][64];
static int n_created, n_deleted;

static int
fake_lease_create(void *md, const char *ns, const char *id, const berth_kv_t *labels,
                  int64_t *created, berth_error_t **err)
{
    snprintf(leases[n_created], sizeof(leases[0]), "%s", id);
    const char *e = api.kv_get(labels, "containerd.io/gc.expire");
    snprintf(expire[n_created], sizeof(expire[0]), "%s", e ? e : "");
    n_created++;
    return 0;
}

static int
fake_lease_delete(void *md, const char *ns, const char *id, berth_error_t **err)
{
    cr_assert_str_eq(id, leases[n_deleted]);
    n_deleted++;
    return 0;
}

static berth_metadata_v1_ops_t mdo;
static xfer_t x;

static void
setup(void)
{
    api = berth__core_api;
    api.call_on_loop = fake_call_on_loop;
    api.call_set_lease = fake_set_lease;
    api.call_lease = fake_lease;
    mdo.lease_create = fake_lease_create;
    mdo.lease_delete = fake_lease_delete;
    memset(&x, 0, sizeof(x));
    x.api = &api;
    x.mdo = &mdo;
    berth_error_t *err = NULL;
    cr_assert_eq(streams_new(&api, NULL, &x.streams, &err), 0);
    ran[0] = lease_seen[0] = call_lease[0] = '\0';
    n_created = n_deleted = 0;
}

static void
teardown(void)
{
    streams_free(x.streams);
}

TestSuite(service, .init = setup, .fini = teardown);

static Google__Protobuf__Any *
any(const char *type, const ProtobufCMessage *m)
{
    Google__Protobuf__Any *a = calloc(1, sizeof(*a));
    google__protobuf__any__init(a);
    a->type_url = (char *)type;
    if (m) {
        a->value.len = protobuf_c_message_get_packed_size(m);
        a->value.data = malloc(a->value.len + 1);
        protobuf_c_message_pack(m, a->value.data);
    }
    return a;
}

static void
any_free(Google__Protobuf__Any *a)
{
    if (a) {
        free(a->value.data);
        free(a);
    }
}

/* Calls Transfer; returns its code, the error message in msg. */
static int
call(Google__Protobuf__Any *src, Google__Protobuf__Any *dst, const char *progress, char *msg,
     size_t len)
{
    Containerd__Services__Transfer__V1__TransferRequest r =
        CONTAINERD__SERVICES__TRANSFER__V1__TRANSFER_REQUEST__INIT;
    Containerd__Services__Transfer__V1__TransferOptions o =
        CONTAINERD__SERVICES__TRANSFER__V1__TRANSFER_OPTIONS__INIT;
    r.source = src;
    r.destination = dst;
    if (progress) {
        o.progress_stream = (char *)progress;
        r.options = &o;
    }
    size_t n = protobuf_c_message_get_packed_size(&r.base);
    uint8_t *buf = malloc(n + 1), *resp = NULL;
    protobuf_c_message_pack(&r.base, buf);
    size_t resp_len = 0;
    berth_error_t *err = NULL;
    int rc = transfer_service.methods[0].unary(&x, "default", buf, n, &resp, &resp_len, &err);
    snprintf(msg, len, "%s", err ? err->message : "");
    if (err)
        api.error_free(err);
    free(resp);
    free(buf);
    any_free(src);
    any_free(dst);
    return rc;
}

#define T_REG "containerd.types.transfer.OCIRegistry"
#define T_STORE "containerd.types.transfer.ImageStore"
#define T_IMPORT "containerd.types.transfer.ImageImportStream"
#define T_EXPORT "containerd.types.transfer.ImageExportStream"

static Google__Protobuf__Any *
reg(void)
{
    Containerd__Types__Transfer__OCIRegistry r = CONTAINERD__TYPES__TRANSFER__OCIREGISTRY__INIT;
    r.reference = "docker.io/library/busybox:latest";
    return any(T_REG, &r.base);
}

static Google__Protobuf__Any *
store(const char *name)
{
    Containerd__Types__Transfer__ImageStore s = CONTAINERD__TYPES__TRANSFER__IMAGE_STORE__INIT;
    s.name = (char *)name;
    return any(T_STORE, &s.base);
}

static Google__Protobuf__Any *
imp(const char *stream)
{
    Containerd__Types__Transfer__ImageImportStream s =
        CONTAINERD__TYPES__TRANSFER__IMAGE_IMPORT_STREAM__INIT;
    s.stream = (char *)stream;
    return any(T_IMPORT, &s.base);
}

static Google__Protobuf__Any *
exp_(const char *stream)
{
    Containerd__Types__Transfer__ImageExportStream s =
        CONTAINERD__TYPES__TRANSFER__IMAGE_EXPORT_STREAM__INIT;
    s.stream = (char *)stream;
    return any(T_EXPORT, &s.base);
}

Test(service, dispatch_as_containerd)
{
    char msg[512];
    struct {
        Google__Protobuf__Any *s, *d;
        const char *op;
    } cases[] = {
        {reg(), store("a"), "pull"},       {store("a"), reg(), "push"},
        {store("a"), exp_("e"), "export"}, {store("a"), store("b"), "tag"},
        {imp("i"), store("a"), "import"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ran[0] = '\0';
        cr_assert_eq(call(cases[i].s, cases[i].d, NULL, msg, sizeof(msg)), 0, "%s: %s", cases[i].op,
                     msg);
        cr_assert_str_eq(ran, cases[i].op);
    }
    /* each ran in a lease of its own, expiring, deleted at the end */
    cr_assert_eq(n_created, 5);
    cr_assert_eq(n_deleted, 5);
    cr_assert(strncmp(leases[0], "transfer-", 9) == 0, "%s", leases[0]);
    cr_assert_str_eq(lease_seen, leases[4]);
    cr_assert_eq(strlen(expire[0]), 20, "gc.expire as RFC 3339: %s", expire[0]);
}

Test(service, the_calls_own_lease_is_used_and_kept)
{
    char msg[512];
    fake_set_lease("mine");
    cr_assert_eq(call(store("a"), store("b"), NULL, msg, sizeof(msg)), 0);
    cr_assert_str_eq(lease_seen, "mine");
    cr_assert_eq(n_created + n_deleted, 0);
}

Test(service, unimplemented_pairs)
{
    char msg[512];
    cr_assert_eq(call(reg(), reg(), NULL, msg, sizeof(msg)), BERTH_ENOTIMPL);
    cr_assert_str_eq(msg, "unable to transfer from containerd.types.transfer.OCIRegistry to "
                          "containerd.types.transfer.OCIRegistry: not implemented");
    cr_assert_eq(call(exp_("e"), store("a"), NULL, msg, sizeof(msg)), BERTH_ENOTIMPL);
    cr_assert_eq(call(NULL, store("a"), NULL, msg, sizeof(msg)), BERTH_ENOTIMPL);
    cr_assert_eq(call(any("google.protobuf.Empty", NULL), store("a"), NULL, msg, sizeof(msg)),
                 BERTH_ENOTIMPL);
    cr_assert_str_eq(ran, "");
}

Test(service, undecodable_object)
{
    char msg[512];
    Google__Protobuf__Any *bad = any(T_STORE, NULL);
    bad->value.data = malloc(2);
    memcpy(bad->value.data, "\xff\xff", 2);
    bad->value.len = 2;
    cr_assert_eq(call(reg(), bad, NULL, msg, sizeof(msg)), BERTH_EINVAL);
    cr_assert(strstr(msg, "does not decode"), "%s", msg);
    cr_assert_str_eq(ran, "");
    cr_assert_eq(n_created, n_deleted, "the lease goes on failure too");
}

Test(service, a_missing_progress_stream_is_not_found)
{
    char msg[512];
    /* streams_take waits 10 s for a late registration: this test pays for it once */
    cr_assert_eq(call(store("a"), store("b"), "nope", msg, sizeof(msg)), BERTH_ENOTFOUND);
    cr_assert(strstr(msg, "progress stream \"nope\""), "%s", msg);
    cr_assert_str_eq(ran, "");
}

/* ---- echo through two streams of a fake transport ----------------------------------------------------- */

struct berth_grpc_stream_s {
    void *user;
    size_t data_bytes;
    int finished;
    uint8_t *data;
};

static int
f_send(berth_grpc_stream_t *st, const uint8_t *msg, size_t len)
{
    Google__Protobuf__Any *a = google__protobuf__any__unpack(NULL, len, msg);
    if (strcmp(a->type_url, "containerd.types.transfer.Data") == 0) {
        Containerd__Types__Transfer__Data *d =
            containerd__types__transfer__data__unpack(NULL, a->value.len, a->value.data);
        st->data = realloc(st->data, st->data_bytes + d->data.len);
        memcpy(st->data + st->data_bytes, d->data.data, d->data.len);
        st->data_bytes += d->data.len;
        containerd__types__transfer__data__free_unpacked(d, NULL);
    }
    google__protobuf__any__free_unpacked(a, NULL);
    return 0;
}

static const berth_grpc_stream_api_t fsapi;

static void
f_finish(berth_grpc_stream_t *st, int code, const char *m)
{
    st->finished = 1;
    streaming_service.methods[0].closed(x.streams, &fsapi, st);
}
static const char *
f_ns(const berth_grpc_stream_t *st)
{
    return "default";
}
static void
f_set_user(berth_grpc_stream_t *st, void *u)
{
    st->user = u;
}
static void *
f_get_user(const berth_grpc_stream_t *st)
{
    return st->user;
}
static size_t
f_pending(const berth_grpc_stream_t *st)
{
    return 0;
}
static const char *
f_lease(const berth_grpc_stream_t *st)
{
    return "";
}
static const berth_grpc_stream_api_t fsapi = {sizeof(fsapi), f_send,     f_finish,  f_ns,
                                              f_set_user,    f_get_user, f_pending, f_lease};

static void
deliver(berth_grpc_stream_t *st, const char *type, const ProtobufCMessage *m)
{
    Google__Protobuf__Any *a = any(type, m);
    size_t n = google__protobuf__any__get_packed_size(a);
    uint8_t *buf = malloc(n);
    google__protobuf__any__pack(a, buf);
    berth_error_t *err = NULL;
    pthread_mutex_lock(&loop);
    cr_assert_eq(streaming_service.methods[0].message(x.streams, &fsapi, st, buf, n, &err), 0);
    pthread_mutex_unlock(&loop);
    free(buf);
    any_free(a);
}

static berth_grpc_stream_t *
open_stream(const char *id)
{
    berth_grpc_stream_t *st = calloc(1, sizeof(*st));
    berth_error_t *err = NULL;
    cr_assert_eq(streaming_service.methods[0].open(x.streams, &fsapi, st, NULL, 0, &err), 0);
    Containerd__Services__Streaming__V1__StreamInit in =
        CONTAINERD__SERVICES__STREAMING__V1__STREAM_INIT__INIT;
    in.id = (char *)id;
    deliver(st, "containerd.services.streaming.v1.StreamInit", &in.base);
    return st;
}

static int echo_rc;
static char echo_msg[512];

static void *
run_echo(void *arg)
{
    echo_rc = call(imp("in"), exp_("out"), NULL, echo_msg, sizeof(echo_msg));
    return NULL;
}

Test(service, echo_copies_the_bytes)
{
    berth_grpc_stream_t *in = open_stream("in"), *out = open_stream("out");
    pthread_t t;
    pthread_create(&t, NULL, run_echo, NULL);
    Containerd__Types__Transfer__WindowUpdate u = CONTAINERD__TYPES__TRANSFER__WINDOW_UPDATE__INIT;
    u.update = 1 << 20; /* the receiving client's credit */
    deliver(out, "containerd.types.transfer.WindowUpdate", &u.base);
    static uint8_t chunk[20000];
    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = (uint8_t)(i * 13);
    for (int k = 0; k < 3; k++) {
        Containerd__Types__Transfer__Data d = CONTAINERD__TYPES__TRANSFER__DATA__INIT;
        d.data.data = chunk;
        d.data.len = sizeof(chunk);
        deliver(in, "containerd.types.transfer.Data", &d.base);
    }
    pthread_mutex_lock(&loop);
    streaming_service.methods[0].end_of_input(x.streams, &fsapi, in);
    pthread_mutex_unlock(&loop);
    pthread_join(t, NULL);
    cr_assert_eq(echo_rc, 0, "%s", echo_msg);
    cr_assert_eq(out->data_bytes, 3 * sizeof(chunk));
    for (size_t i = 0; i < out->data_bytes; i++)
        cr_assert_eq(out->data[i], (uint8_t)((i % sizeof(chunk)) * 13));
    cr_assert(in->finished && out->finished, "both streams ended");
    free(out->data);
    free(in);
    free(out);
}
