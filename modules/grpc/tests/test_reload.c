/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The real grpc.so through a reload, on its real socket: the transport's on_change (a service being
 * finished answers Unavailable, has its streams ended with `closed` run while it lives and its unary calls
 * on the pool waited for; one that comes back routes to its new instance; one that stays away is unknown;
 * api.handler-update runs again over fresh routes; other services' streams live on) and Modules.Reload
 * (the answer, a refused config, a client gone or the service finished before the reload is over) and the
 * /berth/reload event. The core is a stand-in (the test drives the changes a reload makes); the clients are
 * grpcc processes. The loop runs on the main thread, the test script on a thread of its own.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <berth/events.h>
#include <berth/grpc.h>
#include <berth/module.h>

/* ---- the stand-in core ---------------------------------------------------------------------------- */

static int
fake_error_make(berth_error_t **err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        *err = calloc(1, sizeof(**err));
        (*err)->code = code;
        if (vasprintf(&(*err)->message, fmt, ap) < 0)
            abort();
        va_end(ap);
    }
    return code;
}

static void
fake_error_free(berth_error_t *err)
{
    if (err)
        free(err->message);
    free(err);
}

static void
fake_log(const berth_logger_t *lg, int level, const char *fmt, ...)
{
    (void)lg;
    (void)level;
    va_list ap;
    va_start(ap, fmt);
    fputs("grpc.so: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static char sock_path[256];

static const berth_config_node_t *
fake_map_get(const berth_config_node_t *map, const char *key)
{
    (void)map;
    (void)key;
    return NULL;
}

static size_t
fake_list_size(const berth_config_node_t *l)
{
    (void)l;
    return 0;
}

static const char *
fake_get_string(const berth_config_node_t *map, const char *key, const char *dflt)
{
    (void)map;
    return strcmp(key, "address") == 0 ? sock_path : dflt;
}

static int
fake_get_int(const berth_config_node_t *map, const char *key, int64_t dflt, int64_t *out,
             berth_error_t **err)
{
    (void)map;
    (void)key;
    (void)err;
    *out = dflt;
    return 0;
}

/* the providers of io.containerd.grpc.v1 foreach hands the transport at init */
static berth_instance_t providers[3];
static size_t n_providers;

static int
fake_foreach(berth_init_ctx_t *ic, const char *type,
             int (*cb)(void *user, const berth_instance_t *inst), void *user)
{
    (void)ic;
    (void)type;
    for (size_t i = 0; i < n_providers; i++)
        cb(user, &providers[i]);
    return (int)n_providers;
}

static int
fake_export_set(berth_init_ctx_t *ic, const char *key, const char *value)
{
    (void)ic;
    (void)key;
    (void)value;
    return 0;
}

static atomic_int ready;

static berth_ready_token_t *
fake_readiness_register(berth_init_ctx_t *ic)
{
    (void)ic;
    return (berth_ready_token_t *)&ready;
}

static void
fake_readiness_done(berth_ready_token_t *t)
{
    (void)t;
    ready = 1;
}

static void
fake_set_lease(const char *lease)
{
    (void)lease;
}

/* call_on_loop and the script's "run this on the loop": one queue, one async handle */
typedef struct job {
    void (*fn)(void *);
    void *arg;
    int *done; /* NULL: nobody waits */
    struct job *next;
} job_t;

static uv_loop_t loop;
static uv_async_t wake;
static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jobs_done = PTHREAD_COND_INITIALIZER;
static job_t *jobs;

static void
push_job(void (*fn)(void *), void *arg, int *done)
{
    job_t *j = calloc(1, sizeof(*j));
    j->fn = fn, j->arg = arg, j->done = done;
    pthread_mutex_lock(&jobs_lock);
    job_t **t = &jobs;
    while (*t)
        t = &(*t)->next;
    *t = j;
    pthread_mutex_unlock(&jobs_lock);
    uv_async_send(&wake);
}

static void
run_jobs(uv_async_t *a)
{
    (void)a;
    for (;;) {
        pthread_mutex_lock(&jobs_lock);
        job_t *j = jobs;
        if (j)
            jobs = j->next;
        pthread_mutex_unlock(&jobs_lock);
        if (j == NULL)
            return;
        j->fn(j->arg);
        if (j->done) {
            pthread_mutex_lock(&jobs_lock);
            *j->done = 1;
            pthread_cond_broadcast(&jobs_done);
            pthread_mutex_unlock(&jobs_lock);
        }
        free(j);
    }
}

static int
fake_call_on_loop(void (*fn)(void *), void *arg)
{
    push_job(fn, arg, NULL);
    return 0;
}

/* from the script's thread: fn(arg) on the loop, and wait for it */
static void
on_loop(void (*fn)(void *), void *arg)
{
    int done = 0;
    push_job(fn, arg, &done);
    pthread_mutex_lock(&jobs_lock);
    while (!done)
        pthread_cond_wait(&jobs_done, &jobs_lock);
    pthread_mutex_unlock(&jobs_lock);
}

/* api.handler-update: one "hook plugin" wrapping /test.Svc/Who; each run makes a new generation, and the
 * script kills the old one as a reload that finished that plugin would */
typedef struct wrapper {
    int gen;
    atomic_int dead;
    berth_rpc_handler_t original;
} wrapper_t;

static wrapper_t *wrappers[8];
static atomic_int hook_runs;
static atomic_int stale_wrapper_calls;

static int
wrapped_who(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    wrapper_t *w = user;
    if (w->dead)
        stale_wrapper_calls++;
    int rc = w->original.fn(w->original.user, ns, req, len, resp, resp_len, err);
    if (rc == 0) {
        *resp = realloc(*resp, *resp_len + 8);
        *resp_len += (size_t)snprintf((char *)*resp + *resp_len, 8, "+w%d", w->gen);
    }
    return rc;
}

static int
fake_hook_invoke(berth_hook_point_t point, void *payload, berth_error_t **err)
{
    (void)err;
    if (point != BERTH_HOOK_API_HANDLER_UPDATE)
        return 0;
    berth_hook_api_handlers_t *h = payload;
    int gen = ++hook_runs;
    wrapper_t *w = calloc(1, sizeof(*w));
    w->gen = gen;
    wrappers[gen] = w;
    if (h->lookup(h, "/test.Svc/Who", &w->original) != 0)
        return 0; /* not served now: nothing to wrap */
    berth_rpc_handler_t mine = {wrapped_who, w, w->original.flags};
    return h->replace(h, "/test.Svc/Who", &mine);
}

/* the on-demand test's hook: wraps Who of every test service it finds, the generation in the answer */
static wrapper_t *lazy_wrappers[32];
static size_t n_lazy_wrappers;

static int
fake_hook_invoke_all(berth_hook_point_t point, void *payload, berth_error_t **err)
{
    (void)err;
    if (point != BERTH_HOOK_API_HANDLER_UPDATE)
        return 0;
    berth_hook_api_handlers_t *h = payload;
    int gen = ++hook_runs;
    static const char *const paths[] = {"/test.Svc/Who", "/test.Lazy/Who", "/test.Late/Who", NULL};
    for (int i = 0; paths[i] && n_lazy_wrappers < 32; i++) {
        berth_rpc_handler_t original;
        if (h->lookup(h, paths[i], &original) != 0)
            continue;
        wrapper_t *w = calloc(1, sizeof(*w));
        w->gen = gen;
        w->original = original;
        lazy_wrappers[n_lazy_wrappers++] = w;
        berth_rpc_handler_t mine = {wrapped_who, w, original.flags};
        h->replace(h, paths[i], &mine);
    }
    return 0;
}

/* Reload: the request is kept; the script answers it */
static void (*reload_cb)(void *user, const berth_reload_result_t *result);
static void *reload_user;
static atomic_int reloads_asked;

static int
fake_reload(void (*done)(void *user, const berth_reload_result_t *result), void *user,
            berth_error_t **err)
{
    (void)err;
    reload_cb = done;
    reload_user = user;
    reloads_asked++;
    return 0;
}

/* the event exchange: what was published */
static char published[4096];

static int
fake_publish(void *instance, int64_t ts, const char *ns, const char *topic, const char *type_url,
             const void *data, size_t len, berth_error_t **err)
{
    (void)instance, (void)ts, (void)err;
    char text[1024];
    size_t n = len < sizeof(text) - 1 ? len : sizeof(text) - 1;
    for (size_t i = 0; i < n; i++) {
        char c = ((const char *)data)[i];
        text[i] = c >= 0x20 && c < 0x7f ? c : '.';
    }
    text[n] = '\0';
    snprintf(published + strlen(published), sizeof(published) - strlen(published), "%s %s %s %s;",
             ns, topic, type_url, text);
    return 0;
}

static const berth_events_v1_ops_t fake_events = {.struct_size = sizeof(berth_events_v1_ops_t),
                                                  .publish = fake_publish};
static int exchange_instance;

static int
fake_get_single(berth_init_ctx_t *ic, const char *type, berth_instance_t *out, berth_error_t **err)
{
    (void)ic;
    if (strcmp(type, BERTH_EVENTS_TYPE) != 0)
        return fake_error_make(err, BERTH_ENOTFOUND, "no %s", type);
    *out = (berth_instance_t){BERTH_EVENTS_TYPE, "exchange", &exchange_instance, &fake_events};
    return 0;
}

static const berth_core_api_t fake_api = {
    .size = sizeof(berth_core_api_t),
    .abi_major = BERTH_ABI_MAJOR,
    .abi_minor = BERTH_ABI_MINOR,
    .error_make = fake_error_make,
    .error_free = fake_error_free,
    .log = fake_log,
    .map_get = fake_map_get,
    .list_size = fake_list_size,
    .get_string = fake_get_string,
    .get_int = fake_get_int,
    .get_single = fake_get_single,
    .foreach = fake_foreach,
    .export_set = fake_export_set,
    .readiness_register = fake_readiness_register,
    .readiness_done = fake_readiness_done,
    .hook_invoke = fake_hook_invoke,
    .call_on_loop = fake_call_on_loop,
    .call_set_lease = fake_set_lease,
    .reload = fake_reload,
};

/* ---- the test services ---------------------------------------------------------------------------- */

typedef struct fake_svc {
    char name[8];
    atomic_int alive;        /* cleared by the script where the core would call fini */
    atomic_int opened;       /* Watch streams opened */
    atomic_int closed;       /* ... and closed */
    atomic_int closed_dead;  /* `closed` ran after fini: the bug this guards against */
    atomic_int slow_started; /* Slow runs on the pool */
    atomic_int slow_ended;   /* ... and returned */
    atomic_int used_dead;    /* a handler ran after fini */
    const berth_grpc_stream_api_t *sapi;
    berth_grpc_stream_t *st; /* the last Watch stream opened */
} fake_svc_t;

static int
who(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp, size_t *resp_len,
    berth_error_t **err)
{
    (void)ns, (void)req, (void)len, (void)err;
    fake_svc_t *f = user;
    if (!f->alive)
        f->used_dead++;
    *resp = (uint8_t *)strdup(f->name);
    *resp_len = strlen(f->name);
    return 0;
}

static int
slow(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp, size_t *resp_len,
     berth_error_t **err)
{
    (void)ns, (void)req, (void)len, (void)err;
    fake_svc_t *f = user;
    f->slow_started = 1;
    usleep(700 * 1000);
    if (!f->alive)
        f->used_dead++;
    f->slow_ended = 1;
    *resp = (uint8_t *)strdup("slow");
    *resp_len = 4;
    return 0;
}

static int
watch_open(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st,
           const uint8_t *req, size_t len, berth_error_t **err)
{
    (void)req, (void)len, (void)err;
    fake_svc_t *f = instance;
    f->sapi = sapi;
    f->st = st;
    f->opened++;
    return 0;
}

static void
watch_closed(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st)
{
    (void)sapi;
    fake_svc_t *f = instance;
    if (!f->alive)
        f->closed_dead++;
    if (f->st == st)
        f->st = NULL;
    f->closed++;
}

static const berth_grpc_method_t svc_methods[] = {
    {.name = "Who", .kind = BERTH_RPC_UNARY, .flags = BERTH_RPC_INLINE, .unary = who},
    {.name = "Slow", .kind = BERTH_RPC_UNARY, .unary = slow},
    {.name = "Watch", .kind = BERTH_RPC_SERVER_STREAM, .open = watch_open, .closed = watch_closed},
};
static const berth_grpc_service_v1_t svc_ops = {sizeof(berth_grpc_service_v1_t), "test.Svc",
                                                svc_methods, 3};
static const berth_grpc_service_v1_t other_ops = {sizeof(berth_grpc_service_v1_t), "test.Other",
                                                  svc_methods, 3};

static fake_svc_t svc_a = {.name = "A", .alive = 1}, svc_b = {.name = "B", .alive = 1},
                  other = {.name = "O", .alive = 1};

/* ---- the on-demand stand-in: plugins deferred until first use (api->demand) ------------------------ */

static void *transport;
static const berth_plugin_reg_t *transport_reg;

static int
ns_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
        size_t *resp_len, berth_error_t **err)
{
    (void)user, (void)req, (void)len, (void)err;
    char out[128];
    *resp_len = (size_t)snprintf(out, sizeof(out), "ns=%s", ns);
    *resp = (uint8_t *)strdup(out);
    return 0;
}

static const berth_grpc_method_t lazy2_methods[] = {
    {.name = "Ns",
     .kind = BERTH_RPC_UNARY,
     .flags = BERTH_RPC_INLINE | BERTH_RPC_NAMESPACED,
     .unary = ns_call},
    {.name = "Watch", .kind = BERTH_RPC_SERVER_STREAM, .open = watch_open, .closed = watch_closed},
};
static const berth_grpc_service_v1_t lazy_ops = {sizeof(berth_grpc_service_v1_t), "test.Lazy",
                                                 svc_methods, 3};
static const berth_grpc_service_v1_t lazy2_ops = {sizeof(berth_grpc_service_v1_t), "test.Lazy2",
                                                  lazy2_methods, 2};
static const berth_grpc_service_v1_t late_ops = {sizeof(berth_grpc_service_v1_t), "test.Late",
                                                 svc_methods, 3};
static fake_svc_t lazy = {.name = "L", .alive = 1}, lazy2 = {.name = "L2", .alive = 1},
                  late = {.name = "T", .alive = 1};
static berth_instance_t lazy_inst = {BERTH_GRPC_SERVICE_TYPE, "lazy", &lazy, &lazy_ops},
                        lazy2_inst = {BERTH_GRPC_SERVICE_TYPE, "lazy2", &lazy2, &lazy2_ops},
                        late_inst = {BERTH_GRPC_SERVICE_TYPE, "late", &late, &late_ops};

/* test.Lazy and test.Lazy2: one module, deferred; test.Broken: its init fails; test.Late: initialised
 * only by a demand of everything (Introspection's Plugins) */
static atomic_int demands, demands_all;
static char last_demand[256];
static int lazy_deferred = 1, late_deferred = 1;

static void
announce(berth_instance_t *inst)
{
    berth_change_t c = {sizeof(c), BERTH_CHANGE_ADDED, inst, NULL};
    transport_reg->on_change(transport, &c);
}

static int
fake_demand(const char *type, const char *key, berth_error_t **err)
{
    demands++;
    snprintf(last_demand, sizeof(last_demand), "%s %s", type ? type : "-", key ? key : "-");
    int n = 0;
    if (type == NULL && key == NULL) {
        demands_all++;
        if (late_deferred) {
            late_deferred = 0;
            announce(&late_inst);
            n++;
        }
        return n;
    }
    if (strcmp(type, BERTH_GRPC_SERVICE_TYPE) != 0)
        return 0;
    if (lazy_deferred && (strcmp(key, "test.Lazy") == 0 || strcmp(key, "test.Lazy2") == 0)) {
        lazy_deferred = 0;
        announce(&lazy_inst);
        announce(&lazy2_inst);
        return 2;
    }
    if (strcmp(key, "test.Broken") == 0)
        return fake_error_make(err, BERTH_EPRECONDITION,
                               "test.grpc.v1.broken: init: the disk is on fire");
    return 0;
}

static void
fake_plugins_list(void (*cb)(void *user, const berth_plugin_info_t *info), void *user)
{
    berth_plugin_info_t row = {.struct_size = sizeof(row),
                               .type = "test.grpc.v1",
                               .id = "late",
                               .file = "late.so",
                               .status = late_deferred ? "deferred" : "ok",
                               .reason = late_deferred ? "waits for its first use" : "",
                               .module_name = "late",
                               .module_version = "1"};
    cb(user, &row);
}

/* ---- grpc.so ---------------------------------------------------------------------------------------- */

static void *handle;
static const berth_plugin_reg_t *modules_reg;
static void *modules;
static berth_instance_t modules_inst;

static const berth_plugin_reg_t *
plugin(const berth_module_desc_t *d, const char *type, const char *id)
{
    for (size_t i = 0; d->plugins[i]; i++)
        if (strcmp(d->plugins[i]->type, type) == 0 && strcmp(d->plugins[i]->id, id) == 0)
            return d->plugins[i];
    return NULL;
}

/* ---- the script (its own thread) ---------------------------------------------------------------- */

static char failure[16384];

#define CHECK(cond, ...)                                                            \
    do {                                                                            \
        if (!(cond)) {                                                              \
            if (failure[0] == '\0') {                                               \
                int at = snprintf(failure, sizeof(failure), "line %d: ", __LINE__); \
                snprintf(failure + at, sizeof(failure) - (size_t)at, __VA_ARGS__);  \
            }                                                                       \
            return NULL;                                                            \
        }                                                                           \
    } while (0)

static char tmpdir[] = "/tmp/berth-grpc-reload-XXXXXX";

/* grpcc, in the background: its output is read when it ends */
static FILE *
grpcc_start(const char *method, const char *extra)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s %s %s %s 2>&1", GRPCC, sock_path, method, extra ? extra : "");
    return popen(cmd, "r");
}

static void
grpcc_end(FILE *p, char *out, size_t len)
{
    size_t n = fread(out, 1, len - 1, p);
    out[n] = '\0';
    pclose(p);
}

static void
grpcc(const char *method, const char *extra, char *out, size_t len)
{
    grpcc_end(grpcc_start(method, extra), out, len);
}

static int
wait_for(atomic_int *v, int want)
{
    for (int i = 0; i < 1000 && *v < want; i++)
        usleep(10 * 1000);
    return *v >= want;
}

static void
removing(void *arg)
{
    berth_change_t c = {sizeof(c), BERTH_CHANGE_REMOVING, arg, NULL};
    transport_reg->on_change(transport, &c);
}

static void
added(void *arg)
{
    berth_change_t c = {sizeof(c), BERTH_CHANGE_ADDED, arg, NULL};
    transport_reg->on_change(transport, &c);
}

static const char *const changed_list[] = {"test.grpc.v1.svc", NULL};
static const char *const none[] = {NULL};
static berth_reload_result_t result_changed = {
    sizeof(berth_reload_result_t), 0, "1 reloaded", none, none, changed_list, none, none};
static berth_reload_result_t result_disabled = {
    sizeof(berth_reload_result_t), 0, "1 disabled", none, changed_list, none, none, none};
static berth_reload_result_t result_refused = {sizeof(berth_reload_result_t),
                                               BERTH_EINVAL,
                                               "/etc/b.yaml:3:1: log_levle: unknown key",
                                               none,
                                               none,
                                               none,
                                               none,
                                               none};

static void
reloaded(void *arg)
{
    berth_change_t c = {sizeof(c), BERTH_CHANGE_RELOADED, NULL, arg};
    transport_reg->on_change(transport, &c);
    modules_reg->on_change(modules, &c);
}

static void
finish_reload(void *arg)
{
    void (*cb)(void *, const berth_reload_result_t *) = reload_cb;
    reload_cb = NULL;
    cb(reload_user, arg);
}

static void
other_send_and_finish(void *arg)
{
    (void)arg;
    if (other.st == NULL)
        return;
    other.sapi->send(other.st, (const uint8_t *)"still-here", 10);
    other.sapi->finish(other.st, 0, NULL);
}

static void
lazy2_send_and_finish(void *arg)
{
    (void)arg;
    if (lazy2.st == NULL)
        return;
    lazy2.sapi->send(lazy2.st, (const uint8_t *)"lazy-stream", 11);
    lazy2.sapi->finish(lazy2.st, 0, NULL);
}

static void *
script(void *arg)
{
    (void)arg;
    char out[4096], out2[4096], out3[4096];
    CHECK(wait_for(&ready, 1), "the transport never served");

    grpcc("/test.Svc/Who", NULL, out, sizeof(out));
    CHECK(strstr(out, "grpc-status 0 ") && strstr(out, "A+w1"), "Who before: %s", out);

    /* open: a stream of test.Svc, one of test.Other, a slow unary call of test.Svc */
    FILE *w1 = grpcc_start("/test.Svc/Watch", NULL);
    FILE *w2 = grpcc_start("/test.Other/Watch", NULL);
    CHECK(wait_for(&svc_a.opened, 1) && wait_for(&other.opened, 1), "the streams did not open");
    FILE *s1 = grpcc_start("/test.Svc/Slow", NULL);
    CHECK(wait_for(&svc_a.slow_started, 1), "Slow did not start");

    /* test.Svc is being finished */
    on_loop(removing, &providers[0]);
    CHECK(svc_a.closed == 1, "REMOVING returned with the Watch stream's `closed` not run");
    CHECK(svc_a.slow_ended == 1, "REMOVING returned with Slow still running on the pool");
    CHECK(other.closed == 0, "test.Other's stream was closed");
    svc_a.alive = 0; /* fini */
    grpcc_end(w1, out, sizeof(out));
    CHECK(strstr(out, "grpc-status 14 ") && strstr(out, "service test.Svc is being reloaded"),
          "the Watch stream of test.Svc: %s", out);
    grpcc_end(s1, out, sizeof(out));
    CHECK(strstr(out, "grpc-status 0 ") && strstr(out, "slow"), "Slow: %s", out);
    grpcc("/test.Svc/Who", NULL, out, sizeof(out));
    CHECK(strstr(out, "grpc-status 14 ") && strstr(out, "service test.Svc is being reloaded"),
          "Who while being reloaded: %s", out);

    /* it comes back as a new instance; the reload finished (and re-initialised) the hook plugin */
    providers[0].instance = &svc_b;
    on_loop(added, &providers[0]);
    wrappers[1]->dead = 1;
    on_loop(reloaded, &result_changed);
    CHECK(hook_runs == 2, "api.handler-update ran %d times, not 2", (int)hook_runs);
    grpcc("/test.Svc/Who", NULL, out, sizeof(out));
    CHECK(strstr(out, "grpc-status 0 ") && strstr(out, "B+w2"), "Who after: %s", out);
    CHECK(stale_wrapper_calls == 0, "a wrapper of a finished plugin was called");
    CHECK(svc_a.used_dead == 0 && svc_a.closed_dead == 0, "the finished instance was used");

    /* test.Other's stream lived through it all */
    on_loop(other_send_and_finish, NULL);
    grpcc_end(w2, out, sizeof(out));
    CHECK(strstr(out, "grpc-status 0 ") && strstr(out, "still-here"), "test.Other's stream: %s",
          out);

    /* Modules.Reload: the answer, then the event */
    FILE *r1 = grpcc_start("/berth.services.modules.v1.Modules/Reload", NULL);
    CHECK(wait_for(&reloads_asked, 1), "Reload did not ask the core");
    on_loop(finish_reload, &result_changed);
    grpcc_end(r1, out, sizeof(out));
    CHECK(strstr(out, "grpc-status 0 ") && strstr(out, "1 reloaded") &&
              strstr(out, "test.grpc.v1.svc"),
          "Reload: %s", out);
    CHECK(strstr(published, "berth /berth/reload berth.services.modules.v1.Reloaded") &&
              strstr(published, "1 reloaded"),
          "published: %s", published);

    /* a refused config: InvalidArgument with the config error, and the event says so too */
    published[0] = '\0';
    r1 = grpcc_start("/berth.services.modules.v1.Modules/Reload", NULL);
    CHECK(wait_for(&reloads_asked, 2), "Reload did not ask the core");
    on_loop(finish_reload, &result_refused);
    on_loop(reloaded, &result_refused);
    grpcc_end(r1, out, sizeof(out));
    CHECK(strstr(out, "grpc-status 3 ") &&
              strstr(out, "/etc/b.yaml:3:1: log_levle: unknown key: invalid argument"),
          "refused Reload: %s", out);
    CHECK(strstr(published, "/berth/reload") && strstr(published, "log_levle: unknown key"),
          "published: %s", published);

    /* the client goes before the reload is over: done must not touch the stream */
    r1 = grpcc_start("/berth.services.modules.v1.Modules/Reload", "--timeout 200m");
    grpcc_end(r1, out, sizeof(out));
    CHECK(strstr(out, "grpc-status 4 "), "Reload past its deadline: %s", out);
    CHECK(reloads_asked == 3, "Reload did not ask the core");
    on_loop(finish_reload, &result_changed);

    /* the Modules service itself is finished by the reload it answers */
    r1 = grpcc_start("/berth.services.modules.v1.Modules/Reload", NULL);
    CHECK(wait_for(&reloads_asked, 4), "Reload did not ask the core");
    on_loop(removing, &modules_inst);
    grpcc_end(r1, out2, sizeof(out2));
    CHECK(strstr(out2, "grpc-status 14 ") &&
              strstr(out2, "service berth.services.modules.v1.Modules is being reloaded"),
          "Reload of a service being finished: %s", out2);

    /* test.Svc and Modules disabled for good: unknown, as at a start with that config */
    on_loop(removing, &providers[0]);
    svc_b.alive = 0;
    on_loop(finish_reload, &result_disabled);
    on_loop(reloaded, &result_disabled);
    grpcc("/test.Svc/Who", "--expect 12", out3, sizeof(out3));
    CHECK(strstr(out3, "grpc-status 12 ") && strstr(out3, "unknown service test.Svc"),
          "Who when disabled: %s", out3);
    grpcc("/berth.services.modules.v1.Modules/List", "--expect 12", out3, sizeof(out3));
    CHECK(strstr(out3, "grpc-status 12 "), "Modules.List when disabled: %s", out3);
    CHECK(svc_b.used_dead == 0 && svc_b.closed_dead == 0, "the finished instance was used");
    return NULL;
}

static void *script_result;
static atomic_int script_over;

static void *
script_main(void *arg)
{
    script_result = script(arg);
    script_over = 1;
    uv_async_send(&wake);
    return NULL;
}

static void
check_over(uv_async_t *a)
{
    run_jobs(a);
}

Test(grpc_reload, transport_and_modules, .timeout = 90)
{
    cr_assert(mkdtemp(tmpdir) != NULL);
    snprintf(sock_path, sizeof(sock_path), "%s/berthd.sock", tmpdir);
    uv_loop_init(&loop);
    uv_async_init(&loop, &wake, check_over);
    handle = dlopen(GRPC_SO, RTLD_NOW | RTLD_LOCAL);
    cr_assert(handle != NULL, "%s", dlerror());
    const berth_module_desc_t *(*entry)(void) =
        (const berth_module_desc_t *(*)(void))dlsym(handle, "berth_module_v1_grpc");
    cr_assert(entry != NULL);
    transport_reg = plugin(entry(), BERTH_TRANSPORT_TYPE, "grpc");
    modules_reg = plugin(entry(), BERTH_GRPC_SERVICE_TYPE, "modules");
    cr_assert(transport_reg && modules_reg && transport_reg->on_change && modules_reg->on_change);

    berth_error_t *err = NULL;
    berth_init_ctx_t mic = {.size = sizeof(mic),
                            .api = &fake_api,
                            .loop = &loop,
                            .uri = "io.containerd.grpc.v1.modules",
                            .daemon_state = tmpdir};
    cr_assert_eq(modules_reg->init(&mic, &modules, &err), 0, "%s", err ? err->message : "");
    modules_inst =
        (berth_instance_t){BERTH_GRPC_SERVICE_TYPE, "modules", modules, modules_reg->ops};
    providers[0] = (berth_instance_t){BERTH_GRPC_SERVICE_TYPE, "svc", &svc_a, &svc_ops};
    providers[1] = (berth_instance_t){BERTH_GRPC_SERVICE_TYPE, "other", &other, &other_ops};
    providers[2] = modules_inst;
    n_providers = 3;
    berth_init_ctx_t tic = {.size = sizeof(tic),
                            .api = &fake_api,
                            .loop = &loop,
                            .uri = "io.berth.transport.v1.grpc",
                            .daemon_state = tmpdir};
    cr_assert_eq(transport_reg->init(&tic, &transport, &err), 0, "%s", err ? err->message : "");

    pthread_t t;
    pthread_create(&t, NULL, script_main, NULL);
    while (!script_over)
        uv_run(&loop, UV_RUN_ONCE);
    pthread_join(t, NULL);
    run_jobs(NULL);

    transport_reg->fini(transport);
    modules_reg->fini(modules);
    uv_close((uv_handle_t *)&wake, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(uv_loop_close(&loop), 0);
    for (size_t i = 0; i < sizeof(wrappers) / sizeof(wrappers[0]); i++)
        free(wrappers[i]);
    rmdir(tmpdir);
    dlclose(handle);
    cr_assert(failure[0] == '\0', "%s", failure);
}

/* ---- plugins on demand ---------------------------------------------------------------------------- */

static berth_core_api_t demand_api;

static void *
demand_script(void *arg)
{
    (void)arg;
    char out[8192];
    CHECK(wait_for(&ready, 1), "the transport never served");
    CHECK(hook_runs == 1, "api.handler-update ran %d times at start", (int)hook_runs);

    /* the first call to a deferred service initialises its module, then routes, wrapped by the hooks */
    grpcc("/test.Lazy/Who", NULL, out, sizeof(out));
    CHECK(strstr(out, "grpc-status 0 ") && strstr(out, "L+w2"), "first Lazy/Who: %s", out);
    CHECK(demands == 1 && strcmp(last_demand, BERTH_GRPC_SERVICE_TYPE " test.Lazy") == 0,
          "demands %d, last \"%s\"", (int)demands, last_demand);
    CHECK(hook_runs == 2, "api.handler-update ran %d times, not 2", (int)hook_runs);
    grpcc("/test.Lazy/Who", NULL, out, sizeof(out));
    CHECK(strstr(out, "grpc-status 0 ") && strstr(out, "L+w2"), "second Lazy/Who: %s", out);
    CHECK(demands == 1, "a served service was demanded again");
    /* pool handlers and streams of it, and of the module's other service */
    grpcc("/test.Lazy/Slow", NULL, out, sizeof(out));
    CHECK(strstr(out, "grpc-status 0 ") && strstr(out, "slow"), "Lazy/Slow: %s", out);
    FILE *w = grpcc_start("/test.Lazy2/Watch", NULL);
    CHECK(wait_for(&lazy2.opened, 1), "the Lazy2 stream did not open");
    on_loop(lazy2_send_and_finish, NULL);
    grpcc_end(w, out, sizeof(out));
    CHECK(strstr(out, "grpc-status 0 ") && strstr(out, "lazy-stream"), "Lazy2/Watch: %s", out);
    /* the namespace checks of a namespaced method */
    grpcc("/test.Lazy2/Ns", "--ns '' --expect 9", out, sizeof(out));
    CHECK(strstr(out, "grpc-status 9 ") && strstr(out, "namespace is required"),
          "Lazy2/Ns without a namespace: %s", out);
    grpcc("/test.Lazy2/Ns", "--ns 'b@d' --expect 3", out, sizeof(out));
    CHECK(strstr(out, "grpc-status 3 "), "Lazy2/Ns with a bad namespace: %s", out);
    grpcc("/test.Lazy2/Ns", "--ns k8s.io", out, sizeof(out));
    CHECK(strstr(out, "grpc-status 0 ") && strstr(out, "ns=k8s.io"), "Lazy2/Ns: %s", out);
    CHECK(demands == 1, "Lazy2 was demanded though it came with Lazy");

    /* nothing deferred serves it: Unimplemented, in grpc-go's words, as without deferral */
    grpcc("/test.Nope/Who", "--expect 12", out, sizeof(out));
    CHECK(strstr(out, "grpc-status 12 ") && strstr(out, "unknown service test.Nope"),
          "an unknown service: %s", out);
    CHECK(demands == 2, "an unknown service was not asked for");
    grpcc("/test.Lazy/Nope", "--expect 12", out, sizeof(out));
    CHECK(strstr(out, "grpc-status 12 ") &&
              strstr(out, "unknown method Nope for service test.Lazy"),
          "an unknown method: %s", out);
    CHECK(demands == 2, "an unknown method of a served service was demanded");
    grpcc("/nonsense", "--expect 12", out, sizeof(out));
    CHECK(strstr(out, "grpc-status 12 ") && strstr(out, "malformed method name"),
          "a malformed path: %s", out);
    CHECK(demands == 2, "a malformed path was demanded");

    /* its init fails: the call fails with that error, naming the plugin */
    grpcc("/test.Broken/Who", "--expect 9", out, sizeof(out));
    CHECK(strstr(out, "grpc-status 9 ") && strstr(out, "test.Broken") &&
              strstr(out, "test.grpc.v1.broken: init: the disk is on fire"),
          "a service whose init fails: %s", out);

    /* PluginInfo of a deferred plugin initialises what is deferred first: its true status
     * (PluginInfoRequest {type: "test.grpc.v1", id: "late"}) */
    grpcc("/containerd.services.introspection.v1.Introspection/PluginInfo",
          "--hex 0a0c746573742e677270632e763112046c617465", out, sizeof(out));
    CHECK(strstr(out, "grpc-status 0 ") && strstr(out, "late") && !strstr(out, "deferred"),
          "PluginInfo: %s", out);
    CHECK(demands_all == 1, "PluginInfo did not initialise the deferred plugins");
    /* Plugins does so every time (nothing is left here): the true status, never "deferred" */
    grpcc("/containerd.services.introspection.v1.Introspection/Plugins", NULL, out, sizeof(out));
    CHECK(strstr(out, "grpc-status 0 ") && strstr(out, "late") && !strstr(out, "deferred"),
          "Plugins: %s", out);
    CHECK(demands_all == 2, "Plugins did not ask for the deferred plugins");
    /* the service that came with it is served, wrapped before its first call routes */
    grpcc("/test.Late/Who", NULL, out, sizeof(out));
    CHECK(strstr(out, "grpc-status 0 ") && strstr(out, "T+w3"), "Late/Who: %s", out);
    CHECK(hook_runs == 3, "api.handler-update ran %d times, not 3", (int)hook_runs);
    grpcc("/test.Lazy/Who", NULL, out, sizeof(out));
    CHECK(strstr(out, "L+w3"), "Lazy/Who after the rerun: %s", out);
    return NULL;
}

static void *
demand_script_main(void *arg)
{
    script_result = demand_script(arg);
    script_over = 1;
    uv_async_send(&wake);
    return NULL;
}

Test(grpc_demand, deferred_services, .timeout = 90)
{
    cr_assert(mkdtemp(tmpdir) != NULL);
    snprintf(sock_path, sizeof(sock_path), "%s/berthd.sock", tmpdir);
    demand_api = fake_api;
    demand_api.demand = fake_demand;
    demand_api.hook_invoke = fake_hook_invoke_all;
    demand_api.plugins_list = fake_plugins_list;
    uv_loop_init(&loop);
    uv_async_init(&loop, &wake, check_over);
    handle = dlopen(GRPC_SO, RTLD_NOW | RTLD_LOCAL);
    cr_assert(handle != NULL, "%s", dlerror());
    const berth_module_desc_t *(*entry)(void) =
        (const berth_module_desc_t *(*)(void))dlsym(handle, "berth_module_v1_grpc");
    cr_assert(entry != NULL);
    transport_reg = plugin(entry(), BERTH_TRANSPORT_TYPE, "grpc");
    const berth_plugin_reg_t *intro_reg = plugin(entry(), BERTH_GRPC_SERVICE_TYPE, "introspection");
    cr_assert(transport_reg && intro_reg);

    berth_error_t *err = NULL;
    void *intro = NULL;
    berth_init_ctx_t iic = {.size = sizeof(iic),
                            .api = &demand_api,
                            .loop = &loop,
                            .uri = "io.containerd.grpc.v1.introspection",
                            .root = tmpdir,
                            .daemon_state = tmpdir};
    cr_assert_eq(intro_reg->init(&iic, &intro, &err), 0, "%s", err ? err->message : "");
    providers[0] = (berth_instance_t){BERTH_GRPC_SERVICE_TYPE, "svc", &svc_a, &svc_ops};
    providers[1] =
        (berth_instance_t){BERTH_GRPC_SERVICE_TYPE, "introspection", intro, intro_reg->ops};
    n_providers = 2;
    berth_init_ctx_t tic = {.size = sizeof(tic),
                            .api = &demand_api,
                            .loop = &loop,
                            .uri = "io.berth.transport.v1.grpc",
                            .daemon_state = tmpdir};
    cr_assert_eq(transport_reg->init(&tic, &transport, &err), 0, "%s", err ? err->message : "");

    pthread_t t;
    pthread_create(&t, NULL, demand_script_main, NULL);
    while (!script_over)
        uv_run(&loop, UV_RUN_ONCE);
    pthread_join(t, NULL);
    run_jobs(NULL);

    transport_reg->fini(transport);
    intro_reg->fini(intro);
    uv_close((uv_handle_t *)&wake, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(uv_loop_close(&loop), 0);
    for (size_t i = 0; i < n_lazy_wrappers; i++)
        free(lazy_wrappers[i]);
    char uuid[300];
    snprintf(uuid, sizeof(uuid), "%s/uuid", tmpdir);
    unlink(uuid);
    rmdir(tmpdir);
    dlclose(handle);
    cr_assert(failure[0] == '\0', "%s", failure);
}
