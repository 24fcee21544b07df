/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth.services.modules.v1.Modules: the module table, with files, ABI versions, statuses and reasons;
 * Reload; and the event /berth/reload after every reload.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <berth/events.h>

#include "berth/services/modules/v1/modules.pb-c.h"
#include "filters.h"
#include "services.h"

/* Events of daemon-wide things belong to no user namespace; containerd's envelopes need one. */
#define RELOAD_EVENT_NAMESPACE "berth"
#define RELOAD_EVENT_TOPIC "/berth/reload"

typedef struct modules_svc {
    const berth_core_api_t *api;
    const berth_logger_t *log;
    void *exchange; /* the event exchange, NULL while there is none */
    const berth_events_v1_ops_t *events;
} modules_svc_t;

typedef Berth__Services__Modules__V1__Module module_pb_t;

typedef struct listing {
    const filters_t *filters;
    module_pb_t **rows;
    size_t n;
} listing_t;

typedef struct row_view {
    const berth_plugin_info_t *info;
    char uri[512];
} row_view_t;

static const char *
row_field(void *object, const char *const *path, int npath)
{
    const row_view_t *r = object;
    if (npath != 1)
        return NULL;
    const char *f = path[0];
    return strcmp(f, "uri") == 0      ? r->uri
           : strcmp(f, "type") == 0   ? r->info->type
           : strcmp(f, "id") == 0     ? r->info->id
           : strcmp(f, "status") == 0 ? r->info->status
           : strcmp(f, "file") == 0   ? r->info->file
                                      : NULL;
}

static void
collect_row(void *user, const berth_plugin_info_t *info)
{
    listing_t *l = user;
    row_view_t view = {.info = info};
    snprintf(view.uri, sizeof(view.uri), "%s.%s", info->type, info->id);
    if (!filters_match(l->filters, row_field, &view))
        return;
    module_pb_t *m = malloc(sizeof(*m));
    berth__services__modules__v1__module__init(m);
    m->uri = strdup(view.uri);
    m->type = strdup(info->type);
    m->id = strdup(info->id);
    m->file = strdup(info->file);
    m->module = strdup(info->module_name);
    m->version = strdup(info->module_version);
    m->abi = malloc(24);
    snprintf(m->abi, 24, info->abi_major ? "%d.%d" : "", info->abi_major, info->abi_minor);
    m->status = strdup(info->status);
    m->reason = strdup(info->reason);
    m->init_order = info->init_order;
    m->requires = grpc_strv_copy(info->requires, &m->n_requires);
    m->capabilities = grpc_strv_copy(info->capabilities, &m->n_capabilities);
    size_t n = 0;
    while (info->export_keys && info->export_keys[n])
        n++;
    m->exports = calloc(n + 1, sizeof(*m->exports));
    for (size_t i = 0; i < n; i++) {
        Berth__Services__Modules__V1__Module__ExportsEntry *e = malloc(sizeof(*e));
        berth__services__modules__v1__module__exports_entry__init(e);
        e->key = strdup(info->export_keys[i]);
        e->value = strdup(info->export_values[i]);
        m->exports[m->n_exports++] = e;
    }
    l->rows = realloc(l->rows, (l->n + 1) * sizeof(*l->rows));
    l->rows[l->n++] = m;
}

static int
list_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
          size_t *resp_len, berth_error_t **err)
{
    const berth_core_api_t *api = ((const modules_svc_t *)user)->api;
    Berth__Services__Modules__V1__ListModulesRequest *r =
        berth__services__modules__v1__list_modules_request__unpack(NULL, len, req);
    if (r == NULL)
        return grpc_bad_request(
            api, &berth__services__modules__v1__list_modules_request__descriptor, err);
    char msg[512];
    filters_t *f = NULL;
    int rc = filters_parse_n((const char *const *)r->filters, r->n_filters, &f, msg, sizeof(msg));
    berth__services__modules__v1__list_modules_request__free_unpacked(r, NULL);
    if (rc < 0)
        return api->error_make(err, BERTH_EINVAL, "%s", msg);
    listing_t l = {.filters = f};
    api->plugins_list(collect_row, &l);
    Berth__Services__Modules__V1__ListModulesResponse out =
        BERTH__SERVICES__MODULES__V1__LIST_MODULES_RESPONSE__INIT;
    out.modules = l.rows;
    out.n_modules = l.n;
    rc = grpc_pack(&out.base, resp, resp_len);
    for (size_t i = 0; i < l.n; i++)
        protobuf_c_message_free_unpacked(&l.rows[i]->base, NULL);
    free(l.rows);
    filters_free(f);
    return rc;
}

/* ---- Reload ----------------------------------------------------------------------------------------- */

/* A reload runs on the loop and may finish plugins (this one too), so no pool thread waits for it: Reload is
 * a server stream on our side, one message then the status on the wire (a unary call to the client), and
 * this record outlives the stream: `closed` clears `st`, and `done` then only frees it. */
typedef struct reload_call {
    const berth_grpc_stream_api_t *sapi;
    berth_grpc_stream_t *st;
} reload_call_t;

static void
strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* The lists of a result, copied into a ReloadResponse or a Reloaded (same field numbers, same types). */
typedef struct result_lists {
    char **v[5];
    size_t n[5];
} result_lists_t;

static void
lists_copy(result_lists_t *l, const berth_reload_result_t *res)
{
    const char *const *src[5] = {res->enabled, res->disabled, res->reloaded, res->failed,
                                 res->restart_needed};
    for (int i = 0; i < 5; i++)
        l->v[i] = grpc_strv_copy(src[i], &l->n[i]);
}

static void
lists_free(result_lists_t *l)
{
    for (int i = 0; i < 5; i++)
        strv_free(l->v[i], l->n[i]);
}

static void
reload_done(void *user, const berth_reload_result_t *res)
{
    reload_call_t *call = user;
    const berth_grpc_stream_api_t *sapi = call->sapi;
    berth_grpc_stream_t *st = call->st;
    free(call);
    if (st == NULL)
        return;               /* the client went, or this service was finished by the reload */
    sapi->set_user(st, NULL); /* finish runs `closed`, which must not find the record */
    if (res->code != 0) {
        sapi->finish(st, res->code, res->message);
        return;
    }
    Berth__Services__Modules__V1__ReloadResponse out =
        BERTH__SERVICES__MODULES__V1__RELOAD_RESPONSE__INIT;
    result_lists_t l;
    lists_copy(&l, res);
    out.message = (char *)(res->message ? res->message : "");
    out.enabled = l.v[0], out.n_enabled = l.n[0];
    out.disabled = l.v[1], out.n_disabled = l.n[1];
    out.reloaded = l.v[2], out.n_reloaded = l.n[2];
    out.failed = l.v[3], out.n_failed = l.n[3];
    out.restart_needed = l.v[4], out.n_restart_needed = l.n[4];
    uint8_t *buf;
    size_t len;
    int rc = grpc_pack(&out.base, &buf, &len);
    lists_free(&l);
    if (rc == 0) {
        rc = sapi->send(st, buf, len);
        free(buf);
    }
    sapi->finish(st, rc, rc == 0 ? NULL : "reload: the response could not be sent");
}

static int
reload_open(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st,
            const uint8_t *req, size_t len, berth_error_t **err)
{
    modules_svc_t *m = instance;
    Berth__Services__Modules__V1__ReloadRequest *r =
        berth__services__modules__v1__reload_request__unpack(NULL, len, req);
    if (r == NULL)
        return grpc_bad_request(m->api, &berth__services__modules__v1__reload_request__descriptor,
                                err);
    berth__services__modules__v1__reload_request__free_unpacked(r, NULL);
    if (!BERTH_API_HAS(m->api, reload))
        return m->api->error_make(err, BERTH_ENOTIMPL, "this berthd cannot reload");
    reload_call_t *call = calloc(1, sizeof(*call));
    call->sapi = sapi;
    call->st = st;
    if (m->api->reload(reload_done, call, err) < 0) {
        free(call);
        return *err ? (*err)->code : BERTH_EINTERNAL;
    }
    sapi->set_user(st, call);
    return 0;
}

static void
reload_closed(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st)
{
    (void)instance;
    reload_call_t *call = sapi->get_user(st);
    if (call != NULL)
        call->st = NULL; /* reload_done frees it */
}

/* ---- /berth/reload -------------------------------------------------------------------------------- */

static void
publish_reloaded(modules_svc_t *m, const berth_reload_result_t *res)
{
    if (m->exchange == NULL)
        return;
    Berth__Services__Modules__V1__Reloaded ev = BERTH__SERVICES__MODULES__V1__RELOADED__INIT;
    result_lists_t l;
    lists_copy(&l, res);
    ev.message = (char *)(res->message ? res->message : "");
    ev.error = res->code != 0 ? ev.message : "";
    ev.enabled = l.v[0], ev.n_enabled = l.n[0];
    ev.disabled = l.v[1], ev.n_disabled = l.n[1];
    ev.reloaded = l.v[2], ev.n_reloaded = l.n[2];
    ev.failed = l.v[3], ev.n_failed = l.n[3];
    ev.restart_needed = l.v[4], ev.n_restart_needed = l.n[4];
    uint8_t *buf;
    size_t len;
    berth_error_t *err = NULL;
    if (grpc_pack(&ev.base, &buf, &len) == 0) {
        if (m->events->publish(m->exchange, 0, RELOAD_EVENT_NAMESPACE, RELOAD_EVENT_TOPIC,
                               berth__services__modules__v1__reloaded__descriptor.name, buf, len,
                               &err) < 0) {
            m->api->log(m->log, BERTH_LOG_WARN, "publish %s: %s", RELOAD_EVENT_TOPIC,
                        err ? err->message : "");
            m->api->error_free(err);
        }
        free(buf);
    }
    lists_free(&l);
}

static void
modules_on_change(void *instance, const berth_change_t *change)
{
    modules_svc_t *m = instance;
    const berth_instance_t *p = change->provider;
    switch (change->what) {
    case BERTH_CHANGE_REMOVING:
        if (p != NULL && p->instance == m->exchange)
            m->exchange = NULL, m->events = NULL;
        break;
    case BERTH_CHANGE_ADDED:
        if (p != NULL && strcmp(p->type, BERTH_EVENTS_TYPE) == 0 && m->exchange == NULL)
            m->exchange = p->instance, m->events = p->ops;
        break;
    case BERTH_CHANGE_RELOADED:
        if (change->result != NULL)
            publish_reloaded(m, change->result);
        break;
    default:
        break;
    }
}

/* ---- the plugin ----------------------------------------------------------------------------------- */

static const berth_grpc_method_t modules_methods[] = {
    {.name = "List", .kind = BERTH_RPC_UNARY, .flags = BERTH_RPC_INLINE, .unary = list_call},
    {.name = "Reload",
     .kind = BERTH_RPC_SERVER_STREAM,
     .open = reload_open,
     .closed = reload_closed},
};

static const berth_grpc_service_v1_t modules_service = {
    .struct_size = sizeof(berth_grpc_service_v1_t),
    .name = "berth.services.modules.v1.Modules",
    .methods = modules_methods,
    .n_methods = sizeof(modules_methods) / sizeof(modules_methods[0]),
};

static int
modules_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    modules_svc_t *m = calloc(1, sizeof(*m));
    m->api = ic->api;
    m->log = ic->log;
    berth_instance_t exchange;
    berth_error_t *none = NULL;
    /* optional: without an exchange there is no /berth/reload event, the rest works */
    if (ic->api->get_single(ic, BERTH_EVENTS_TYPE, &exchange, &none) == 0) {
        m->exchange = exchange.instance;
        m->events = exchange.ops;
    }
    ic->api->error_free(none);
    (void)err;
    *instance = m;
    return 0;
}

static const char *const modules_requires[] = {"?" BERTH_EVENTS_TYPE, NULL};

const berth_plugin_reg_t grpc_modules_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_GRPC_SERVICE_TYPE,
    .id = "modules",
    .requires = modules_requires,
    .init = modules_init,
    .fini = free,
    .ops = &modules_service,
    .on_change = modules_on_change,
};
