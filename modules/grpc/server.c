/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The transport plugin (io.berth.transport.v1.grpc): collects every healthy io.containerd.grpc.v1 service
 * into a routing table, lets hook handlers wrap or replace unary handlers (api.handler-update), and
 * listens on the configured unix socket. It follows reloads (on_change) instead of being finished with a
 * service: a service being finished answers Unavailable and has its calls ended; one that comes back is
 * routed to its new instance; one that stays away is dropped from the table, so it answers Unimplemented
 * ("unknown service"), as it would had berthd started with that config; and api.handler-update runs
 * again over fresh routes. A service whose plugin waits for its first use (BERTH_PLUGIN_ON_DEMAND) is
 * not in the table until a call names it: call.c asks the core for it (api->demand), the service arrives
 * as BERTH_CHANGE_ADDED during that call, and api.handler-update runs over it before the call routes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services.h"
#include "transport.h"

typedef struct collect {
    server_t *srv;
    int failed;
} collect_t;

static int
route_order(const void *a, const void *b)
{
    return strcmp(((const route_t *)a)->path, ((const route_t *)b)->path);
}

/* Drops every route of `svc` from the table (calls routed to it keep their own copies). */
static void
routes_drop(server_t *srv, const service_t *svc)
{
    size_t w = 0;
    for (size_t i = 0; i < srv->nroutes; i++) {
        if (srv->routes[i].svc == svc)
            free(srv->routes[i].path);
        else
            srv->routes[w++] = srv->routes[i];
    }
    srv->nroutes = w;
}

/* By instance and table: two services may share an instance pointer (the core api, say). */
static service_t *
service_of(const server_t *srv, const berth_instance_t *inst)
{
    for (size_t i = 0; i < srv->nroutes; i++) {
        service_t *svc = srv->routes[i].svc;
        if (svc->instance == inst->instance && (const void *)svc->ops == inst->ops)
            return svc;
    }
    return NULL;
}

static service_t *
service_named(const server_t *srv, const char *name)
{
    for (size_t i = 0; i < srv->nroutes; i++)
        if (strcmp(srv->routes[i].svc->name, name) == 0)
            return srv->routes[i].svc;
    return NULL;
}

/* Retires a service: out of the table, the table's reference dropped. */
static void
service_retire(server_t *srv, service_t *svc)
{
    routes_drop(srv, svc);
    service_unref(svc);
}

static int
add_service(void *user, const berth_instance_t *inst)
{
    collect_t *c = user;
    server_t *srv = c->srv;
    const berth_grpc_service_v1_t *ops = inst->ops;
    if (ops == NULL || ops->struct_size < sizeof(*ops) || ops->name == NULL) {
        srv->api->log(srv->log, BERTH_LOG_WARN,
                      "service plugin %s.%s has no service table; not served", inst->type,
                      inst->id);
        return 0;
    }
    /* a service that comes back (a reload) replaces its old, finished record */
    service_t *old = service_named(srv, ops->name);
    if (old != NULL) {
        if (!old->removing)
            srv->api->log(srv->log, BERTH_LOG_WARN,
                          "service %s served by two plugins; %s.%s replaces the other", ops->name,
                          inst->type, inst->id);
        service_retire(srv, old);
    }
    if (ops->n_methods == 0)
        return 0;
    service_t *svc = calloc(1, sizeof(*svc));
    svc->name = strdup(ops->name);
    svc->instance = inst->instance;
    svc->ops = ops;
    svc->refs = 1;
    srv->routes = realloc(srv->routes, (srv->nroutes + ops->n_methods) * sizeof(route_t));
    for (size_t i = 0; i < ops->n_methods; i++) {
        route_t *r = &srv->routes[srv->nroutes++];
        const berth_grpc_method_t *m = &ops->methods[i];
        size_t n = strlen(ops->name) + strlen(m->name) + 3;
        r->path = malloc(n);
        snprintf(r->path, n, "/%s/%s", ops->name, m->name);
        r->method = m;
        r->svc = svc;
        r->instance = inst->instance;
        r->unary = (berth_rpc_handler_t){m->unary, inst->instance, m->flags};
    }
    return 0;
}

/* ---- api.handler-update --------------------------------------------------------------------------- */

static int
handlers_lookup(berth_hook_api_handlers_t *self, const char *path, berth_rpc_handler_t *out)
{
    const route_t *r = routes_find(self->priv, path);
    if (r == NULL || r->method->kind != BERTH_RPC_UNARY)
        return BERTH_ENOTFOUND;
    *out = r->unary;
    return 0;
}

static int
handlers_replace(berth_hook_api_handlers_t *self, const char *path, const berth_rpc_handler_t *h)
{
    route_t *r = (route_t *)routes_find(self->priv, path);
    if (r == NULL || r->method->kind != BERTH_RPC_UNARY || h == NULL || h->fn == NULL)
        return BERTH_ENOTFOUND;
    r->unary = *h;
    return 0;
}

static int
run_handler_hooks(server_t *srv, berth_error_t **err)
{
    srv->hooks_run = 1;
    berth_hook_api_handlers_t payload = {
        .struct_size = sizeof(payload),
        .transport = srv->uri,
        .lookup = handlers_lookup,
        .replace = handlers_replace,
        .priv = srv,
    };
    return srv->api->hook_invoke(BERTH_HOOK_API_HANDLER_UPDATE, &payload, err);
}

static void
start_serving(void *arg)
{
    server_t *srv = arg;
    berth_error_t *err = NULL;
    if (!srv->closing) {
        if (run_handler_hooks(srv, &err) < 0 || server_accept(srv, &err) < 0) {
            srv->api->log(srv->log, BERTH_LOG_ERROR, "not serving: %s", err ? err->message : "");
            srv->api->error_free(err);
        } else {
            srv->api->log(srv->log, BERTH_LOG_INFO, "serving address=%s methods=%zu", srv->address,
                          srv->nroutes);
            for (size_t i = 0; i < srv->n_extra; i++)
                srv->api->log(srv->log, BERTH_LOG_INFO, "serving address=%s extra=true",
                              srv->extra[i]->address);
        }
    }
    srv->api->readiness_done(srv->ready); /* also frees the token when we stopped before serving */
    server_unref(srv);
}

/* ---- reloads ------------------------------------------------------------------------------------- */

static void
service_removing(server_t *srv, const berth_instance_t *inst)
{
    service_t *svc = service_of(srv, inst);
    if (svc == NULL || svc->removing)
        return;
    srv->api->log(srv->log, BERTH_LOG_INFO, "service %s: being reloaded, calls ended", svc->name);
    calls_end_service(srv, svc);
}

/* Every route back to its own handler (the wrappers of plugins finished since are gone with them), then
 * every api.handler-update handler registered now wraps afresh. */
static void
rerun_handler_hooks(server_t *srv, const char *after)
{
    srv->rehook_pending = 0;
    for (size_t i = 0; i < srv->nroutes; i++) {
        route_t *r = &srv->routes[i];
        r->unary = (berth_rpc_handler_t){r->method->unary, r->instance, r->method->flags};
    }
    berth_error_t *err = NULL;
    if (run_handler_hooks(srv, &err) < 0) {
        srv->api->log(srv->log, BERTH_LOG_ERROR, "api.handler-update after %s: %s", after,
                      err ? err->message : "");
        srv->api->error_free(err);
    }
}

void
server_rehook(server_t *srv)
{
    if (srv->rehook_pending && srv->hooks_run && !srv->closing)
        rerun_handler_hooks(srv, "a plugin's first use");
}

static void
service_added(server_t *srv, const berth_instance_t *inst)
{
    collect_t collect = {srv, 0};
    add_service(&collect, inst);
    qsort(srv->routes, srv->nroutes, sizeof(route_t), route_order);
    const berth_grpc_service_v1_t *ops = inst->ops;
    if (ops != NULL && ops->name != NULL)
        srv->api->log(srv->log, BERTH_LOG_INFO, "service %s: served by %s.%s", ops->name,
                      inst->type, inst->id);
    if (!srv->hooks_run)
        return; /* serving has not started: start_serving runs the hooks over it */
    /* A reload's end (RELOADED) reruns api.handler-update; a plugin initialised on first use
     * (api->demand) has no such end. The hooks are owed until then: no call routes before they ran
     * (call.c runs them first), whoever asked for the plugin. */
    srv->rehook_pending = 1;
}

static int
strv_empty(const char *const *v)
{
    return v == NULL || v[0] == NULL;
}

static void
reload_over(server_t *srv, const berth_reload_result_t *result)
{
    /* services finished and not initialised again (disabled, or their init failed) leave the table */
    for (size_t i = 0; i < srv->nroutes;) {
        service_t *svc = srv->routes[i].svc;
        if (svc->removing) {
            srv->api->log(srv->log, BERTH_LOG_INFO, "service %s: no longer served", svc->name);
            service_retire(srv, svc);
            i = 0;
        } else {
            i++;
        }
    }
    if (!srv->hooks_run)
        return; /* serving has not started: start_serving runs the hooks */
    if (!srv->rehook_pending && (result == NULL || result->code != 0 ||
                                 (strv_empty(result->enabled) && strv_empty(result->disabled) &&
                                  strv_empty(result->reloaded) && strv_empty(result->failed))))
        return; /* nothing was finished or initialised (or the config was refused): handlers stand */
    rerun_handler_hooks(srv, "the reload");
}

static void
transport_on_change(void *instance, const berth_change_t *change)
{
    server_t *srv = instance;
    if (srv->closing)
        return;
    const berth_instance_t *p = change->provider;
    switch (change->what) {
    case BERTH_CHANGE_REMOVING:
        if (p != NULL && strcmp(p->type, BERTH_GRPC_SERVICE_TYPE) == 0)
            service_removing(srv, p);
        break;
    case BERTH_CHANGE_ADDED:
        if (p != NULL && strcmp(p->type, BERTH_GRPC_SERVICE_TYPE) == 0)
            service_added(srv, p);
        break;
    case BERTH_CHANGE_RELOADED:
        reload_over(srv, change->result);
        break;
    default:
        break;
    }
}

/* ---- init / fini ---------------------------------------------------------------------------------- */

static const berth_config_field_t transport_config[] = {
    {"address", BERTH_CFG_STRING, "\"\"", "unix socket path; empty means <state>/berthd.sock"},
    {"extra_addresses", BERTH_CFG_LIST, "[]",
     "more unix socket paths serving every service, as address does (kubelet's CRI endpoint)"},
    {"uid", BERTH_CFG_INT, "-1", "owner of the socket (-1: berthd's)"},
    {"gid", BERTH_CFG_INT, "-1", "group of the socket (-1: berthd's)"},
    {"mode", BERTH_CFG_INT, "0660", "permissions of the socket"},
    {"max_message_size", BERTH_CFG_INT, "16777216",
     "largest request or response message, in bytes"},
    {"max_concurrent_streams", BERTH_CFG_INT, "1024",
     "HTTP/2 streams one connection may have open"},
    {NULL, 0, NULL, NULL},
};

static int
read_config(berth_init_ctx_t *ic, server_t *srv, int64_t *uid, int64_t *gid, int64_t *mode,
            berth_error_t **err)
{
    const berth_core_api_t *api = ic->api;
    const char *address = api->get_string(ic->config, "address", "");
    if (address[0] == '\0') {
        size_t n = strlen(ic->daemon_state) + sizeof("/berthd.sock");
        srv->address = malloc(n);
        snprintf(srv->address, n, "%s/berthd.sock", ic->daemon_state);
    } else {
        srv->address = strdup(address);
    }
    if (srv->address[0] != '/')
        return api->error_make(err, BERTH_EINVAL, "address %s: must be an absolute path",
                               srv->address);
    const berth_config_node_t *extra = api->map_get(ic->config, "extra_addresses");
    size_t n_extra = api->list_size(extra);
    srv->extra = calloc(n_extra + 1, sizeof(*srv->extra));
    for (size_t i = 0; i < n_extra; i++) {
        const char *a = api->scalar(api->list_at(extra, i));
        if (a == NULL || a[0] != '/')
            return api->error_make(err, BERTH_EINVAL,
                                   "extra_addresses[%zu] %s: must be an absolute path", i,
                                   a ? a : "(not a string)");
        for (size_t j = 0; j < srv->n_extra; j++)
            if (strcmp(srv->extra[j]->address, a) == 0)
                return api->error_make(err, BERTH_EINVAL, "extra_addresses: %s is listed twice", a);
        if (strcmp(a, srv->address) == 0)
            return api->error_make(err, BERTH_EINVAL, "extra_addresses: %s is the address itself",
                                   a);
        extra_listener_t *x = calloc(1, sizeof(*x));
        x->address = strdup(a);
        srv->extra[srv->n_extra++] = x;
    }
    if (api->get_int(ic->config, "uid", -1, uid, err) < 0 ||
        api->get_int(ic->config, "gid", -1, gid, err) < 0 ||
        api->get_int(ic->config, "mode", 0660, mode, err) < 0 ||
        api->get_int(ic->config, "max_message_size", 16 << 20, &srv->max_message, err) < 0 ||
        api->get_int(ic->config, "max_concurrent_streams", 1024, &srv->max_streams, err) < 0)
        return -1;
    if (*mode < 0 || *mode > 07777)
        return api->error_make(err, BERTH_EINVAL, "mode %llo: not a permission mode",
                               (long long)*mode);
    if (srv->max_message < 1024 || srv->max_message > (1ll << 30))
        return api->error_make(err, BERTH_EINVAL, "max_message_size %lld: must be 1 KiB .. 1 GiB",
                               (long long)srv->max_message);
    if (srv->max_streams < 1 || srv->max_streams > (1 << 20))
        return api->error_make(err, BERTH_EINVAL,
                               "max_concurrent_streams %lld: must be 1 .. 1048576",
                               (long long)srv->max_streams);
    return 0;
}

static int
transport_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    server_t *srv = calloc(1, sizeof(*srv));
    srv->api = ic->api;
    srv->log = ic->log;
    srv->loop = ic->loop;
    srv->uri = strdup(ic->uri);
    srv->refs = 1;
    pthread_mutex_init(&srv->work_lock, NULL);
    pthread_cond_init(&srv->work_done, NULL);
    int64_t uid, gid, mode;
    collect_t collect = {srv, 0};
    if (read_config(ic, srv, &uid, &gid, &mode, err) < 0)
        goto fail;
    ic->api->foreach (ic, BERTH_GRPC_SERVICE_TYPE, add_service, &collect);
    qsort(srv->routes, srv->nroutes, sizeof(route_t), route_order);
    if (server_listen(srv, uid, gid, mode, err) < 0)
        goto fail;
    ic->api->export_set(ic, "address", srv->address);
    /* Serving starts once the loop runs: after every plugin's init (so every api.handler-update handler
     * is registered, whatever the init order) and after daemon.pre-start. READY=1 waits for it. */
    srv->ready = ic->api->readiness_register(ic);
    srv->refs++;
    ic->api->call_on_loop(start_serving, srv);
    *instance = srv;
    return 0;
fail:
    while (srv->nroutes > 0)
        service_retire(srv, srv->routes[0].svc);
    server_stop(srv);
    return -1;
}

static void
transport_fini(void *instance)
{
    server_t *srv = instance;
    /* routes are gone; no new call can route, and server_stop ends the open ones */
    while (srv->nroutes > 0)
        service_retire(srv, srv->routes[0].svc);
    server_stop(srv);
}

static const char *const transport_requires[] = {BERTH_GRPC_SERVICE_TYPE, NULL};

const berth_plugin_reg_t grpc_transport_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_TRANSPORT_TYPE,
    .id = "grpc",
    .requires = transport_requires,
    .config = transport_config,
    .init = transport_init,
    .fini = transport_fini,
    .on_change = transport_on_change,
};
