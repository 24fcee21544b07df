/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pull, push, import and export through containerd 2.x's Transfer service, as containerd's Go client does
 * it (core/transfer/proxy, core/streaming/proxy, core/transfer/streaming):
 * - every side channel is a Streaming.Stream call the client opens, whose first message is a StreamInit{id}
 *   the server acknowledges; the id then names the stream inside the TransferRequest;
 * - progress: TransferOptions.progress_stream, the server sends Progress messages, the client only reads;
 * - import: the client sends the archive as Data messages within the credit the server grants with
 *   WindowUpdates (SendStream), then half-closes; export: the client grants WINDOW_SIZE whenever its window
 *   falls below it and receives Data (ReceiveStream) until the server ends the stream;
 * - registry credentials: RegistryResolver.auth_stream, the server asks with AuthRequest, the client
 *   answers an AuthResponse.
 * Each side channel has a thread of its own that owns its stream; the calling thread runs the Transfer
 * call, then cancels what the server left open (after a failure) and joins them.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "store_int.h"
#include "google/protobuf/any.pb-c.h"
#include "services/streaming/v1/streaming.pb-c.h"
#include "services/transfer/v1/transfer.pb-c.h"
#include "types/transfer/imagestore.pb-c.h"
#include "types/transfer/importexport.pb-c.h"
#include "types/transfer/progress.pb-c.h"
#include "types/transfer/registry.pb-c.h"
#include "types/transfer/streaming.pb-c.h"

#define STREAMING_METHOD "/containerd.services.streaming.v1.Streaming/Stream"
#define TRANSFER_METHOD "/containerd.services.transfer.v1.Transfer/Transfer"
#define T_STREAM_INIT "containerd.services.streaming.v1.StreamInit"
#define T_PROGRESS "containerd.types.transfer.Progress"
#define T_DATA "containerd.types.transfer.Data"
#define T_WINDOW "containerd.types.transfer.WindowUpdate"
#define T_AUTH_REQ "containerd.types.transfer.AuthRequest"
#define T_AUTH_RESP "containerd.types.transfer.AuthResponse"
#define T_REGISTRY "containerd.types.transfer.OCIRegistry"
#define T_STORE "containerd.types.transfer.ImageStore"
#define T_IMPORT "containerd.types.transfer.ImageImportStream"
#define T_EXPORT "containerd.types.transfer.ImageExportStream"
/* core/transfer/streaming's sizes */
#define MAX_READ (32 * 1024)
#define WINDOW_SIZE (2 * MAX_READ)

typedef Containerd__Types__Transfer__ImageStore store_pb_t;
typedef Containerd__Types__Platform platform_pb_t;

/* One side channel: a Streaming stream and the thread that owns it. */
typedef struct chan_s {
    bc_stream_t *s;
    char id[64];
    pthread_t th;
    int started;
} chan_t;

typedef struct xfer_s {
    berth_client_t *c;
    berth_call_t call;
    /* progress */
    chan_t prog;
    berth_progress_fn fn;
    void *user;
    char **saved; /* names of "saved" events (import's images) */
    size_t n_saved;
    /* import or export */
    chan_t data;
    int fd;
    berth_error_t *data_err; /* what failed on our side of the data stream (fd read or write) */
    int data_rc;
    /* registry credentials */
    chan_t auth;
    const berth_registry_opts_t *reg;
} xfer_t;

/* ---- Any messages on a stream ------------------------------------------------------------------------ */

static int
send_any(bc_stream_t *s, const char *type_url, const ProtobufCMessage *m, berth_error_t **err)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    protobuf_c_message_pack(m, buf);
    Google__Protobuf__Any a = GOOGLE__PROTOBUF__ANY__INIT;
    a.type_url = (char *)type_url;
    a.value.data = buf;
    a.value.len = len;
    int rc = bc_stream_send(s, &a.base, err);
    free(buf);
    return rc;
}

/* 1 and *a, 0 at the stream's end, < 0 on error. */
static int
recv_any(bc_stream_t *s, Google__Protobuf__Any **a, berth_error_t **err)
{
    *a = NULL;
    return bc_stream_recv(s, &google__protobuf__any__descriptor, (ProtobufCMessage **)a, err);
}

/* typeurl accepts a "type.googleapis.com/" style prefix */
static int
any_is(const Google__Protobuf__Any *a, const char *type)
{
    const char *slash = strrchr(a->type_url, '/');
    return strcmp(slash ? slash + 1 : a->type_url, type) == 0;
}

/* containerd's streaming.GenerateID: the purpose and a random suffix */
static void
gen_id(const char *prefix, char *out, size_t size)
{
    uint8_t r[8] = {0};
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        /* never short for 8 bytes once the pool is ready; the time keeps ids apart otherwise */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        memcpy(r, &ts.tv_nsec, sizeof(r) < sizeof(ts.tv_nsec) ? sizeof(r) : sizeof(ts.tv_nsec));
    }
    snprintf(out, size, "%s-%02x%02x%02x%02x%02x%02x%02x%02x", prefix, r[0], r[1], r[2], r[3], r[4],
             r[5], r[6], r[7]);
}

/* Opens a Streaming stream named prefix-<random> and waits for the server's acknowledgement. */
static int
chan_open(xfer_t *x, chan_t *ch, const char *prefix, berth_error_t **err)
{
    gen_id(prefix, ch->id, sizeof(ch->id));
    int rc = bc_stream_open(x->c, &x->call, STREAMING_METHOD, &ch->s, err);
    if (rc < 0)
        return bc_error_wrap(err, rc, "open %s stream", prefix);
    Containerd__Services__Streaming__V1__StreamInit init =
        CONTAINERD__SERVICES__STREAMING__V1__STREAM_INIT__INIT;
    init.id = ch->id;
    rc = send_any(ch->s, T_STREAM_INIT, &init.base, err);
    Google__Protobuf__Any *ack = NULL;
    if (rc == 0 && (rc = recv_any(ch->s, &ack, err)) == 0)
        rc = bc_error(err, BERTH_EUNAVAILABLE,
                      "the server ended the stream before its acknowledgement");
    if (ack)
        protobuf_c_message_free_unpacked(&ack->base, NULL);
    if (rc < 0) {
        bc_stream_free(ch->s);
        ch->s = NULL;
        return bc_error_wrap(err, rc, "open %s stream", prefix);
    }
    return 0;
}

static int
chan_start(chan_t *ch, void *(*fn)(void *), xfer_t *x, berth_error_t **err)
{
    int e = pthread_create(&ch->th, NULL, fn, x);
    if (e != 0)
        return bc_error(err, BERTH_ERESOURCE, "start the %s stream's thread: %s", ch->id,
                        strerror(e));
    ch->started = 1;
    return 0;
}

/* cancel: the server may have left the stream open (a failed transfer, an auth stream never asked) */
static void
chan_end(chan_t *ch, int cancel)
{
    if (ch->s && cancel)
        bc_stream_cancel(ch->s);
    if (ch->started)
        pthread_join(ch->th, NULL);
    ch->started = 0;
    if (ch->s)
        bc_stream_free(ch->s);
    ch->s = NULL;
}

/* ---- progress ---------------------------------------------------------------------------------------- */

static void
note_saved(xfer_t *x, const char *name)
{
    if (name == NULL || !name[0])
        return;
    for (size_t i = 0; i < x->n_saved; i++)
        if (strcmp(x->saved[i], name) == 0)
            return;
    char **v = realloc(x->saved, (x->n_saved + 1) * sizeof(*v));
    if (v == NULL)
        return;
    x->saved = v;
    if ((v[x->n_saved] = strdup(name)) != NULL)
        x->n_saved++;
}

static void
deliver_progress(xfer_t *x, const Containerd__Types__Transfer__Progress *p)
{
    if (strcmp(p->event, "saved") == 0)
        note_saved(x, p->name);
    if (x->fn == NULL)
        return;
    berth_descriptor_t d = {0};
    berth_progress_t bp = {
        .event = p->event,
        .name = p->name,
        .parents = (const char *const *)p->parents,
        .n_parents = p->n_parents,
        .progress = p->progress,
        .total = p->total,
    };
    if (p->desc) {
        d.media_type = p->desc->media_type;
        d.digest = p->desc->digest;
        d.size = p->desc->size;
        bp.desc = &d;
    }
    x->fn(x->user, &bp);
}

/* core/transfer/proxy's progress goroutine: every Progress to the callback until the server ends it */
static void *
progress_main(void *arg)
{
    xfer_t *x = arg;
    for (;;) {
        Google__Protobuf__Any *a;
        berth_error_t *e = NULL;
        if (recv_any(x->prog.s, &a, &e) <= 0) {
            berth_error_free(e);
            break;
        }
        if (any_is(a, T_PROGRESS)) {
            Containerd__Types__Transfer__Progress *p =
                containerd__types__transfer__progress__unpack(NULL, a->value.len, a->value.data);
            if (p) {
                deliver_progress(x, p);
                containerd__types__transfer__progress__free_unpacked(p, NULL);
            }
        }
        protobuf_c_message_free_unpacked(&a->base, NULL);
    }
    return NULL;
}

/* ---- import: SendStream ------------------------------------------------------------------------------ */

/* Records what failed on our side; the stream goes on to its end (the server then fails or finishes on
 * its own, as it would with containerd's client), so no transport behaviour is counted on. */
static void
data_fail(xfer_t *x, int code, const char *what)
{
    if (x->data_rc == 0)
        x->data_rc = bc_error(&x->data_err, code, "%s: %s", what, strerror(errno));
}

/* The credit granted by one message; 0 for anything else. */
static int32_t
window_of(const Google__Protobuf__Any *a)
{
    if (!any_is(a, T_WINDOW))
        return 0;
    Containerd__Types__Transfer__WindowUpdate *u =
        containerd__types__transfer__window_update__unpack(NULL, a->value.len, a->value.data);
    int32_t n = u ? u->update : 0;
    if (u)
        containerd__types__transfer__window_update__free_unpacked(u, NULL);
    return n;
}

/* Waits for credit; 0 when the stream ended first. */
static int
wait_window(xfer_t *x, int32_t *remaining)
{
    while (*remaining <= 0) {
        Google__Protobuf__Any *a;
        berth_error_t *e = NULL;
        if (recv_any(x->data.s, &a, &e) <= 0) {
            berth_error_free(e);
            return 0;
        }
        *remaining += window_of(a);
        protobuf_c_message_free_unpacked(&a->base, NULL);
    }
    return 1;
}

/* Takes what the server still sends (grants) until it ends the stream. */
static void
drain(bc_stream_t *s)
{
    for (;;) {
        Google__Protobuf__Any *a;
        berth_error_t *e = NULL;
        if (recv_any(s, &a, &e) <= 0) {
            berth_error_free(e);
            return;
        }
        protobuf_c_message_free_unpacked(&a->base, NULL);
    }
}

static void *
import_main(void *arg)
{
    xfer_t *x = arg;
    uint8_t buf[MAX_READ];
    int32_t remaining = 0;
    /* credit is taken only when it runs out: the server grants while below its window, so what it sends
     * meanwhile waits in the stream (a few small messages) */
    while (wait_window(x, &remaining)) {
        size_t want = remaining < MAX_READ ? (size_t)remaining : MAX_READ;
        ssize_t n = read(x->fd, buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            data_fail(x, BERTH_EIO, "import: read the archive");
        berth_error_t *e = NULL;
        if (n <= 0) { /* the end of the archive: the server reads EOF */
            bc_stream_close_send(x->data.s, &e);
            berth_error_free(e);
            drain(x->data.s);
            break;
        }
        Containerd__Types__Transfer__Data d = CONTAINERD__TYPES__TRANSFER__DATA__INIT;
        d.data.data = buf;
        d.data.len = (size_t)n;
        if (send_any(x->data.s, T_DATA, &d.base, &e) < 0) {
            berth_error_free(e); /* the server went: its Transfer answer says why */
            break;
        }
        remaining -= (int32_t)n;
    }
    return NULL;
}

/* ---- export: ReceiveStream --------------------------------------------------------------------------- */

static int
write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void *
export_main(void *arg)
{
    xfer_t *x = arg;
    int32_t window = 0;
    for (;;) {
        berth_error_t *e = NULL;
        if (window < WINDOW_SIZE) {
            Containerd__Types__Transfer__WindowUpdate u =
                CONTAINERD__TYPES__TRANSFER__WINDOW_UPDATE__INIT;
            u.update = WINDOW_SIZE;
            if (send_any(x->data.s, T_WINDOW, &u.base, &e) == 0)
                window += WINDOW_SIZE;
            berth_error_free(e); /* a stream the server ended: the receive below says so */
            e = NULL;
        }
        Google__Protobuf__Any *a;
        int rc = recv_any(x->data.s, &a, &e);
        if (rc <= 0) { /* a failed stream: the Transfer's answer says why */
            berth_error_free(e);
            break;
        }
        Containerd__Types__Transfer__Data *d =
            any_is(a, T_DATA)
                ? containerd__types__transfer__data__unpack(NULL, a->value.len, a->value.data)
                : NULL;
        protobuf_c_message_free_unpacked(&a->base, NULL);
        if (d == NULL)
            continue;
        /* after a failed write the rest is taken and dropped, so the server ends normally */
        if (x->data_rc == 0 && write_all(x->fd, d->data.data, d->data.len) < 0)
            data_fail(x, BERTH_EIO, "export: write the archive");
        window -= (int32_t)d->data.len;
        containerd__types__transfer__data__free_unpacked(d, NULL);
    }
    return NULL;
}

/* ---- registry credentials ---------------------------------------------------------------------------- */

/* OCIRegistry's credential goroutine: each AuthRequest gets the configured credentials */
static void *
auth_main(void *arg)
{
    xfer_t *x = arg;
    const berth_registry_opts_t *r = x->reg;
    for (;;) {
        Google__Protobuf__Any *a;
        berth_error_t *e = NULL;
        if (recv_any(x->auth.s, &a, &e) <= 0) {
            berth_error_free(e);
            break;
        }
        int ask = any_is(a, T_AUTH_REQ);
        protobuf_c_message_free_unpacked(&a->base, NULL);
        if (!ask)
            continue;
        Containerd__Types__Transfer__AuthResponse resp =
            CONTAINERD__TYPES__TRANSFER__AUTH_RESPONSE__INIT;
        resp.secret = (char *)(r->secret ? r->secret : "");
        if (r->username && r->username[0]) {
            resp.authtype = CONTAINERD__TYPES__TRANSFER__AUTH_TYPE__CREDENTIALS;
            resp.username = (char *)r->username;
        } else {
            resp.authtype = CONTAINERD__TYPES__TRANSFER__AUTH_TYPE__REFRESH;
        }
        if (send_any(x->auth.s, T_AUTH_RESP, &resp.base, &e) < 0) {
            berth_error_free(e);
            break;
        }
    }
    return NULL;
}

/* ---- request parts ----------------------------------------------------------------------------------- */

/* The platform berth's client is built for, as containerd's platforms.DefaultSpec */
static void
host_platform(platform_pb_t *p)
{
    p->os = "linux";
#if defined(__x86_64__)
    p->architecture = "amd64";
#elif defined(__aarch64__)
    p->architecture = "arm64";
#elif defined(__arm__)
    p->architecture = "arm";
    p->variant = "v7";
#elif defined(__i386__)
    p->architecture = "386";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    p->architecture = "ppc64le";
#elif defined(__s390x__)
    p->architecture = "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
    p->architecture = "riscv64";
#else
    p->architecture = "unknown";
#endif
}

/* "os[/arch[/variant]]" or "arch" (containerd's platforms.Parse, its common cases); buf holds the parts */
static int
parse_platform(const char *spec, platform_pb_t *p, char *buf, size_t size, berth_error_t **err)
{
    containerd__types__platform__init(p);
    host_platform(p);
    if (snprintf(buf, size, "%s", spec) >= (int)size || !buf[0])
        return bc_error(err, BERTH_EINVAL, "platform \"%s\": invalid", spec);
    char *parts[3] = {buf, NULL, NULL};
    size_t n = 1;
    for (char *s = buf; *s; s++)
        if (*s == '/') {
            if (n == 3)
                return bc_error(err, BERTH_EINVAL, "platform \"%s\": too many parts", spec);
            *s = '\0';
            parts[n++] = s + 1;
        }
    static const char *const oses[] = {"linux", "windows", "darwin", "freebsd"};
    int is_os = 0;
    for (size_t i = 0; i < sizeof(oses) / sizeof(*oses); i++)
        is_os |= strcmp(parts[0], oses[i]) == 0;
    if (n == 1 && !is_os) { /* an architecture alone */
        p->architecture = parts[0];
        p->variant = (char *)protobuf_c_empty_string;
    } else {
        p->os = parts[0];
        if (n > 1) {
            p->architecture = parts[1];
            p->variant = n > 2 ? parts[2] : (char *)protobuf_c_empty_string;
        }
    }
    if (!strcmp(p->architecture, "x86_64") || !strcmp(p->architecture, "x86-64"))
        p->architecture = "amd64";
    else if (!strcmp(p->architecture, "aarch64"))
        p->architecture = "arm64";
    for (size_t i = 0; i < n; i++)
        if (!parts[i][0])
            return bc_error(err, BERTH_EINVAL, "platform \"%s\": an empty part", spec);
    return 0;
}

/* The platform of a pull, push, import or export: opts' or the host's. */
typedef struct plat_s {
    platform_pb_t pb, *ptr;
    char buf[128];
} plat_t;

static int
plat_init(plat_t *p, const char *spec, berth_error_t **err)
{
    p->ptr = &p->pb;
    if (spec && spec[0])
        return parse_platform(spec, &p->pb, p->buf, sizeof(p->buf), err);
    containerd__types__platform__init(&p->pb);
    host_platform(&p->pb);
    return 0;
}

/* The resolver of an OCIRegistry; headers: entries the caller frees (ents, ptrs) */
typedef struct resolver_s {
    Containerd__Types__Transfer__RegistryResolver pb;
    Containerd__Types__Transfer__RegistryResolver__HeadersEntry *ents, **ptrs;
} resolver_t;

static int
resolver_init(xfer_t *x, resolver_t *r, const berth_registry_opts_t *o, berth_error_t **err)
{
    containerd__types__transfer__registry_resolver__init(&r->pb);
    r->ents = NULL;
    r->ptrs = NULL;
    if (o == NULL)
        return 0;
    if (o->plain_http)
        r->pb.default_scheme = "http";
    if (o->hosts_dir)
        r->pb.host_dir = (char *)o->hosts_dir;
    if (BC_MAP_FROM_KV(Containerd__Types__Transfer__RegistryResolver__HeadersEntry,
                       CONTAINERD__TYPES__TRANSFER__REGISTRY_RESOLVER__HEADERS_ENTRY__INIT,
                       o->headers, o->n_headers, r->ents, r->ptrs) < 0)
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    r->pb.n_headers = o->n_headers;
    r->pb.headers = r->ptrs;
    if ((o->username && o->username[0]) || (o->secret && o->secret[0])) {
        x->reg = o;
        int rc = chan_open(x, &x->auth, "creds", err);
        if (rc == 0)
            rc = chan_start(&x->auth, auth_main, x, err);
        if (rc < 0)
            return rc;
        r->pb.auth_stream = x->auth.id;
    }
    return 0;
}

static void
resolver_clear(resolver_t *r)
{
    free(r->ents);
    free(r->ptrs);
}

/* ---- the transfer ------------------------------------------------------------------------------------ */

static void
xfer_init(xfer_t *x, berth_client_t *c, const berth_call_t *call, berth_progress_fn fn, void *user)
{
    memset(x, 0, sizeof(*x));
    x->c = c;
    x->call = bc_long_call(call);
    x->fn = fn;
    x->user = user;
    x->fd = -1;
}

/* The progress stream, when someone listens (or import collects the names it saved). */
static int
xfer_progress(xfer_t *x, berth_error_t **err)
{
    int rc = chan_open(x, &x->prog, "progress", err);
    if (rc == 0)
        rc = chan_start(&x->prog, progress_main, x, err);
    return rc;
}

/* Ends every side channel: after success the server has ended progress and data; auth may stay open. */
static void
xfer_finish(xfer_t *x, int ok)
{
    chan_end(&x->auth, 1);
    chan_end(&x->data, !ok);
    chan_end(&x->prog, !ok);
    bc_strv_free(x->saved, x->n_saved);
    x->saved = NULL;
    x->n_saved = 0;
    berth_error_free(x->data_err);
    x->data_err = NULL;
}

static int
pack_any(Google__Protobuf__Any *a, const char *type, const ProtobufCMessage *m)
{
    google__protobuf__any__init(a);
    a->type_url = (char *)type;
    a->value.len = protobuf_c_message_get_packed_size(m);
    a->value.data = malloc(a->value.len ? a->value.len : 1);
    if (a->value.data == NULL)
        return BERTH_ENOMEM;
    protobuf_c_message_pack(m, a->value.data);
    return 0;
}

static int
xfer_call(xfer_t *x, const char *src_type, const ProtobufCMessage *src, const char *dst_type,
          const ProtobufCMessage *dst, berth_error_t **err)
{
    Google__Protobuf__Any asrc, adst;
    Containerd__Services__Transfer__V1__TransferOptions o =
        CONTAINERD__SERVICES__TRANSFER__V1__TRANSFER_OPTIONS__INIT;
    Containerd__Services__Transfer__V1__TransferRequest req =
        CONTAINERD__SERVICES__TRANSFER__V1__TRANSFER_REQUEST__INIT;
    int rc = pack_any(&asrc, src_type, src);
    int rc2 = pack_any(&adst, dst_type, dst);
    if (rc == 0 && rc2 == 0) {
        if (x->prog.s)
            o.progress_stream = x->prog.id;
        req.source = &asrc;
        req.destination = &adst;
        req.options = &o;
        rc = bc_unary(x->c, &x->call, TRANSFER_METHOD, &req.base, NULL, NULL, err);
    } else {
        rc = bc_error(err, BERTH_ENOMEM, "out of memory");
    }
    free(asrc.value.data);
    free(adst.value.data);
    return rc;
}

/* ---- pull -------------------------------------------------------------------------------------------- */

BC_EXPORT int
berth_image_pull(berth_client_t *c, const berth_call_t *call, const char *ref,
                 const berth_pull_opts_t *opts, berth_image_t **out, berth_error_t **err)
{
    static const berth_pull_opts_t none = {0};
    if (out)
        *out = NULL;
    if (ref == NULL || !ref[0])
        return bc_error(err, BERTH_EINVAL, "pull: a reference is required");
    if (opts == NULL)
        opts = &none;
    xfer_t x;
    xfer_init(&x, c, call, opts->progress, opts->progress_user);
    plat_t plat;
    resolver_t res = {0};
    int rc = plat_init(&plat, opts->platform, err);
    if (rc == 0 && opts->progress)
        rc = xfer_progress(&x, err);
    if (rc == 0)
        rc = resolver_init(&x, &res, &opts->registry, err);
    if (rc == 0) {
        Containerd__Types__Transfer__OCIRegistry reg =
            CONTAINERD__TYPES__TRANSFER__OCIREGISTRY__INIT;
        reg.reference = (char *)ref;
        reg.resolver = &res.pb;
        /* ctr pull's store: this platform, every platform's metadata, unpack when asked */
        store_pb_t is = CONTAINERD__TYPES__TRANSFER__IMAGE_STORE__INIT;
        Containerd__Types__Transfer__UnpackConfiguration
            up = CONTAINERD__TYPES__TRANSFER__UNPACK_CONFIGURATION__INIT,
            *ups[1] = {&up};
        is.name = (char *)ref;
        is.platforms = &plat.ptr;
        is.n_platforms = 1;
        is.all_metadata = 1;
        if (opts->unpack) {
            up.platform = &plat.pb;
            up.snapshotter = (char *)(opts->snapshotter && opts->snapshotter[0]
                                          ? opts->snapshotter
                                          : BERTH_CLIENT_DEFAULT_SNAPSHOTTER);
            is.unpacks = ups;
            is.n_unpacks = 1;
        }
        rc = xfer_call(&x, T_REGISTRY, &reg.base, T_STORE, &is.base, err);
    }
    xfer_finish(&x, rc == 0);
    resolver_clear(&res);
    if (rc == 0 && out)
        rc = berth_image_get(c, call, ref, out, err);
    if (rc < 0)
        return bc_error_wrap(err, rc, "pull \"%s\"", ref);
    return 0;
}

/* ---- push -------------------------------------------------------------------------------------------- */

BC_EXPORT int
berth_image_push(berth_client_t *c, const berth_call_t *call, const char *name, const char *ref,
                 const berth_push_opts_t *opts, berth_error_t **err)
{
    static const berth_push_opts_t none = {0};
    if (name == NULL || !name[0])
        return bc_error(err, BERTH_EINVAL, "push: an image name is required");
    if (ref == NULL || !ref[0])
        ref = name;
    if (opts == NULL)
        opts = &none;
    xfer_t x;
    xfer_init(&x, c, call, opts->progress, opts->progress_user);
    plat_t plat;
    resolver_t res = {0};
    int rc = opts->platform ? plat_init(&plat, opts->platform, err) : 0;
    if (rc == 0 && opts->progress)
        rc = xfer_progress(&x, err);
    if (rc == 0)
        rc = resolver_init(&x, &res, &opts->registry, err);
    if (rc == 0) {
        store_pb_t is = CONTAINERD__TYPES__TRANSFER__IMAGE_STORE__INIT;
        is.name = (char *)name;
        if (opts->platform) {
            is.platforms = &plat.ptr;
            is.n_platforms = 1;
        }
        Containerd__Types__Transfer__OCIRegistry reg =
            CONTAINERD__TYPES__TRANSFER__OCIREGISTRY__INIT;
        reg.reference = (char *)ref;
        reg.resolver = &res.pb;
        rc = xfer_call(&x, T_STORE, &is.base, T_REGISTRY, &reg.base, err);
    }
    xfer_finish(&x, rc == 0);
    resolver_clear(&res);
    if (rc < 0)
        return bc_error_wrap(err, rc, "push \"%s\"", ref);
    return 0;
}

/* ---- import ------------------------------------------------------------------------------------------ */

/* The images a transfer saved, from the store (in the order the server saved them). */
static int
saved_images(berth_client_t *c, const berth_call_t *call, char **names, size_t n_names,
             berth_image_t **out, size_t *n, berth_error_t **err)
{
    berth_image_t *v = n_names ? calloc(n_names, sizeof(*v)) : NULL;
    if (n_names && v == NULL)
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    size_t k = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n_names; i++) {
        berth_image_t *img = NULL;
        rc = berth_image_get(c, call, names[i], &img, err);
        if (rc == 0) {
            v[k++] = *img;
            free(img);
        }
    }
    if (rc < 0) {
        berth_images_free(v, k);
        return rc;
    }
    *out = v;
    *n = k;
    return 0;
}

static int
import_run(xfer_t *x, int fd, const berth_import_opts_t *opts, berth_error_t **err)
{
    plat_t plat;
    int rc = plat_init(&plat, opts->platform, err);
    /* always: the "saved" events name the images stored */
    if (rc == 0)
        rc = xfer_progress(x, err);
    x->fd = fd;
    if (rc == 0)
        rc = chan_open(x, &x->data, "import", err);
    if (rc == 0)
        rc = chan_start(&x->data, import_main, x, err);
    if (rc < 0)
        return rc;
    Containerd__Types__Transfer__ImageImportStream src =
        CONTAINERD__TYPES__TRANSFER__IMAGE_IMPORT_STREAM__INIT;
    src.stream = x->data.id;
    /* ctr import's store: images named by their annotations, or under base_name (default
     * "import-<date>", which a named annotation may overwrite) */
    store_pb_t is = CONTAINERD__TYPES__TRANSFER__IMAGE_STORE__INIT;
    Containerd__Types__Transfer__ImageReference
        prefix = CONTAINERD__TYPES__TRANSFER__IMAGE_REFERENCE__INIT,
        *refs[1] = {&prefix};
    char def[64];
    if (opts->base_name && opts->base_name[0]) {
        prefix.name = (char *)opts->base_name;
    } else {
        time_t now = time(NULL);
        struct tm tm;
        strftime(def, sizeof(def), "import-%Y-%m-%d", localtime_r(&now, &tm));
        prefix.name = def;
        prefix.allow_overwrite = 1;
    }
    prefix.is_prefix = 1;
    is.extra_references = refs;
    is.n_extra_references = 1;
    if (opts->index_name)
        is.name = (char *)opts->index_name;
    if (opts->all_platforms) {
        is.all_metadata = 1;
    } else {
        is.platforms = &plat.ptr;
        is.n_platforms = 1;
    }
    Containerd__Types__Transfer__UnpackConfiguration
        up = CONTAINERD__TYPES__TRANSFER__UNPACK_CONFIGURATION__INIT,
        *ups[1] = {&up};
    if (opts->unpack) {
        up.platform = &plat.pb;
        up.snapshotter =
            (char *)(opts->snapshotter && opts->snapshotter[0] ? opts->snapshotter
                                                               : BERTH_CLIENT_DEFAULT_SNAPSHOTTER);
        is.unpacks = ups;
        is.n_unpacks = 1;
    }
    return xfer_call(x, T_IMPORT, &src.base, T_STORE, &is.base, err);
}

/* A failure of our side (reading the fd) says more than the server's "unexpected EOF". */
static int
local_error(xfer_t *x, int rc, berth_error_t **err)
{
    if (x->data_rc == 0)
        return rc;
    if (err) {
        berth_error_free(*err);
        *err = x->data_err;
        x->data_err = NULL;
    }
    return x->data_rc;
}

BC_EXPORT int
berth_image_import(berth_client_t *c, const berth_call_t *call, int fd,
                   const berth_import_opts_t *opts, berth_image_t **out, size_t *n,
                   berth_error_t **err)
{
    static const berth_import_opts_t none = {0};
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (fd < 0)
        return bc_error(err, BERTH_EINVAL, "import: no archive (fd %d)", fd);
    if (opts == NULL)
        opts = &none;
    xfer_t x;
    xfer_init(&x, c, call, opts->progress, opts->progress_user);
    int rc = import_run(&x, fd, opts, err);
    chan_end(&x.data, rc < 0);
    chan_end(&x.prog, rc < 0); /* every "saved" event is in */
    rc = local_error(&x, rc, err);
    char **saved = x.saved;
    size_t n_saved = x.n_saved;
    x.saved = NULL;
    x.n_saved = 0;
    xfer_finish(&x, rc == 0);
    if (rc == 0 && out && n) {
        size_t k = 0;
        rc = saved_images(c, call, saved, n_saved, out, &k, err);
        *n = k;
    }
    bc_strv_free(saved, n_saved);
    if (rc < 0)
        return bc_error_wrap(err, rc, "import");
    return 0;
}

/* ---- export ------------------------------------------------------------------------------------------ */

BC_EXPORT int
berth_image_export(berth_client_t *c, const berth_call_t *call, const char *const *names,
                   size_t n_names, int fd, const berth_export_opts_t *opts, berth_error_t **err)
{
    static const berth_export_opts_t none = {0};
    if (n_names == 0 || names == NULL)
        return bc_error(err, BERTH_EINVAL, "export: no image named");
    if (fd < 0)
        return bc_error(err, BERTH_EINVAL, "export: no archive (fd %d)", fd);
    if (opts == NULL)
        opts = &none;
    xfer_t x;
    xfer_init(&x, c, call, NULL, NULL);
    x.fd = fd;
    plat_t plat;
    Containerd__Types__Transfer__ImageReference *refs = calloc(n_names, sizeof(*refs));
    Containerd__Types__Transfer__ImageReference **rp = calloc(n_names, sizeof(*rp));
    int rc = refs && rp ? 0 : bc_error(err, BERTH_ENOMEM, "out of memory");
    if (rc == 0 && opts->platform)
        rc = plat_init(&plat, opts->platform, err);
    if (rc == 0)
        rc = chan_open(&x, &x.data, "export", err);
    if (rc == 0)
        rc = chan_start(&x.data, export_main, &x, err);
    if (rc == 0) {
        /* ctr export's source: a store naming each image as an extra reference */
        store_pb_t is = CONTAINERD__TYPES__TRANSFER__IMAGE_STORE__INIT;
        for (size_t i = 0; i < n_names; i++) {
            containerd__types__transfer__image_reference__init(&refs[i]);
            refs[i].name = (char *)names[i];
            rp[i] = &refs[i];
        }
        is.extra_references = rp;
        is.n_extra_references = n_names;
        Containerd__Types__Transfer__ImageExportStream dst =
            CONTAINERD__TYPES__TRANSFER__IMAGE_EXPORT_STREAM__INIT;
        dst.stream = x.data.id;
        if (opts->platform) {
            dst.platforms = &plat.ptr;
            dst.n_platforms = 1;
        }
        dst.all_platforms = opts->all_platforms != 0;
        dst.skip_compatibility_manifest = opts->skip_manifest_json != 0;
        rc = xfer_call(&x, T_STORE, &is.base, T_EXPORT, &dst.base, err);
    }
    /* the server ended the stream after our last grant: the file has every byte once the thread ends */
    chan_end(&x.data, rc < 0);
    rc = local_error(&x, rc, err);
    xfer_finish(&x, rc == 0);
    free(refs);
    free(rp);
    if (rc < 0)
        return n_names == 1 ? bc_error_wrap(err, rc, "export \"%s\"", names[0])
                            : bc_error_wrap(err, rc, "export");
    return 0;
}
