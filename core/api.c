/* SPDX-License-Identifier: Apache-2.0 */
/* The function table modules get through ic->api (SQLite's sqlite3_api_routines idea). Append only. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "error.h"
#include "initctx.h"
#include "kv.h"
#include "log.h"
#include "paths.h"
#include "registry.h"
#include "util.h"

static void *
api_malloc(size_t n)
{
    return berth__xmalloc(n);
}

static char *
api_strdup(const char *s)
{
    return s ? berth__xstrdup(s) : NULL;
}

static int
api_error_make(berth_error_t **err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = berth__xvasprintf(fmt, ap);
    va_end(ap);
    int rc = berth__error_make(err, code, "%s", msg);
    free(msg);
    return rc;
}

static int
api_error_wrap(berth_error_t **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = berth__xvasprintf(fmt, ap);
    va_end(ap);
    int rc = berth__error_wrap(err, "%s", msg);
    free(msg);
    return rc;
}

static void
api_log(const berth_logger_t *lg, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    berth__vlog(lg, level, fmt, ap);
    va_end(ap);
}

static void api_plugins_list(void (*cb)(void *user, const berth_plugin_info_t *info), void *user);

/* One call per thread at a time: pool threads run one handler each, the loop thread runs inline ones. */
static __thread const char *call_lease_tls;

static void
api_call_set_lease(const char *lease)
{
    call_lease_tls = lease;
}

static const char *
api_call_lease(void)
{
    return call_lease_tls ? call_lease_tls : "";
}

const berth_core_api_t berth__core_api = {
    .size = sizeof(berth_core_api_t),
    .abi_major = BERTH_ABI_MAJOR,
    .abi_minor = BERTH_ABI_MINOR,
    .malloc = api_malloc,
    .free = free,
    .strdup = api_strdup,
    .error_make = api_error_make,
    .error_wrap = api_error_wrap,
    .error_free = berth__error_free,
    .error_name = berth__error_name,
    .log = api_log,
    .vlog = berth__vlog,
    .log_enabled = berth__log_enabled,
    .node_kind = berth__node_kind,
    .map_get = berth__map_get,
    .map_size = berth__map_size,
    .map_key_at = berth__map_key_at,
    .map_value_at = berth__map_value_at,
    .list_size = berth__list_size,
    .list_at = berth__list_at,
    .scalar = berth__scalar,
    .get_string = berth__get_string,
    .get_int = berth__get_int,
    .get_bool = berth__get_bool,
    .get = berth__ic_get,
    .get_single = berth__ic_get_single,
    .foreach = berth__ic_foreach,
    .status = berth__ic_status,
    .export_set = berth__ic_export_set,
    .capability_add = berth__ic_capability_add,
    .readiness_register = berth__ic_readiness_register,
    .readiness_done = berth__ic_readiness_done,
    .hook_register = berth__hook_register,
    .hook_invoke = berth__hook_invoke,
    .hook_mode = berth__hook_mode,
    .kv_new = berth__kv_new,
    .kv_free = berth__kv_free,
    .kv_set = berth__kv_set,
    .kv_unset = berth__kv_unset,
    .kv_get = berth__kv_get,
    .kv_size = berth__kv_size,
    .kv_key_at = berth__kv_key_at,
    .kv_value_at = berth__kv_value_at,
    .plugins_list = api_plugins_list,
    .open_beneath = berth__open_beneath,
    .mkdir_all = berth__mkdir_all,
    .call_on_loop = berth__call_on_loop,
    .call_set_lease = api_call_set_lease,
    .call_lease = api_call_lease,
    .reload = berth__reload_request,
    .demand = berth__demand,
};

/* ---- the live registry, for plugins_list ---------------------------------------------------------- */

static berth__registry_t *live_registry;

void
berth__api_set_registry(berth__registry_t *reg)
{
    live_registry = reg;
}

static void
api_plugins_list(void (*cb)(void *user, const berth_plugin_info_t *info), void *user)
{
    berth__registry_t *reg = live_registry;
    if (reg == NULL)
        return;
    berth_plugin_info_t info;
    for (size_t i = 0; i < reg->norder; i++) {
        berth__registry_info(reg->order[i], &info);
        cb(user, &info);
    }
    for (size_t i = 0; i < reg->nplugins; i++) {
        int in_order = 0;
        for (size_t j = 0; j < reg->norder && !in_order; j++)
            in_order = reg->order[j] == reg->plugins[i];
        if (!in_order) {
            berth__registry_info(reg->plugins[i], &info);
            cb(user, &info);
        }
    }
}

/* ---- call_on_loop: a mutex-guarded queue drained by a uv_async on the loop thread ---------------- */

typedef struct loop_call {
    void (*fn)(void *arg);
    void *arg;
    struct loop_call *next;
} loop_call_t;

static pthread_mutex_t calls_lock = PTHREAD_MUTEX_INITIALIZER;
static loop_call_t *calls_head, *calls_tail;
static uv_async_t *calls_async;

static void
drain_calls(uv_async_t *a)
{
    (void)a;
    pthread_mutex_lock(&calls_lock);
    loop_call_t *c = calls_head;
    calls_head = calls_tail = NULL;
    pthread_mutex_unlock(&calls_lock);
    while (c) {
        loop_call_t *next = c->next;
        c->fn(c->arg);
        free(c);
        c = next;
    }
}

int
berth__call_on_loop_setup(uv_loop_t *loop)
{
    calls_async = berth__xcalloc(1, sizeof(*calls_async));
    int rc = uv_async_init(loop, calls_async, drain_calls);
    if (rc < 0) {
        free(calls_async);
        calls_async = NULL;
        return BERTH_EINTERNAL;
    }
    return 0;
}

static void
free_handle(uv_handle_t *h)
{
    free(h);
}

void
berth__call_on_loop_close(void)
{
    if (calls_async == NULL)
        return;
    drain_calls(calls_async);
    pthread_mutex_lock(&calls_lock);
    uv_async_t *a = calls_async;
    calls_async = NULL;
    pthread_mutex_unlock(&calls_lock);
    uv_close((uv_handle_t *)a, free_handle);
}

int
berth__call_on_loop(void (*fn)(void *arg), void *arg)
{
    if (fn == NULL)
        return BERTH_EINVAL;
    loop_call_t *c = berth__xcalloc(1, sizeof(*c));
    c->fn = fn;
    c->arg = arg;
    pthread_mutex_lock(&calls_lock);
    if (calls_async == NULL) {
        pthread_mutex_unlock(&calls_lock);
        free(c);
        return BERTH_EUNAVAILABLE;
    }
    if (calls_tail)
        calls_tail->next = c;
    else
        calls_head = c;
    calls_tail = c;
    uv_async_send(calls_async);
    pthread_mutex_unlock(&calls_lock);
    return 0;
}
