/* SPDX-License-Identifier: Apache-2.0 */
/*
 * containerd.services.introspection.v1.Introspection: Plugins from the core's live plugin table (so it
 * also shows plugins that failed, with their reason as init_err, the way `ctr plugins ls` expects; plugins
 * waiting for their first use are initialised first, so their status is known), and
 * Server with a UUID kept under the plugin's root.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "filters.h"
#include "github.com/containerd/containerd/api/services/introspection/v1/introspection.pb-c.h"
#include "services.h"
#include "unknown.h"

typedef Containerd__Services__Introspection__V1__Plugin plugin_pb_t;

typedef struct introspection {
    const berth_core_api_t *api;
    const berth_logger_t *log;
    char uuid[37];
    uint64_t pidns; /* the inode of /proc/self/ns/pid, as containerd's Server answers it */
} introspection_t;

typedef struct listing {
    const filters_t *filters;
    const char *want_type, *want_id; /* PluginInfo: the one plugin */
    int failed;
    int deferred; /* PluginInfo: the plugin waits for its first use */
    plugin_pb_t **plugins;
    size_t n;
} listing_t;

static const char *
plugin_field(void *object, const char *const *path, int npath)
{
    const berth_plugin_info_t *p = object;
    if (npath < 1)
        return NULL;
    return strcmp(path[0], "type") == 0 ? p->type : strcmp(path[0], "id") == 0 ? p->id : NULL;
}

static void
add_platforms(plugin_pb_t *pb, const char *const *platforms)
{
    size_t n = 0;
    while (platforms && platforms[n])
        n++;
    pb->platforms = calloc(n + 1, sizeof(*pb->platforms));
    for (size_t i = 0; i < n; i++) {
        Containerd__Types__Platform *p = malloc(sizeof(*p));
        containerd__types__platform__init(p);
        char *copy = strdup(platforms[i]), *save = NULL;
        char *os = strtok_r(copy, "/", &save), *arch = strtok_r(NULL, "/", &save),
             *variant = strtok_r(NULL, "/", &save);
        p->os = strdup(os ? os : "");
        p->architecture = strdup(arch ? arch : "");
        p->variant = strdup(variant ? variant : "");
        free(copy);
        pb->platforms[pb->n_platforms++] = p;
    }
}

static void
add_exports(plugin_pb_t *pb, const berth_plugin_info_t *info)
{
    size_t n = 0;
    while (info->export_keys && info->export_keys[n])
        n++;
    pb->exports = calloc(n + 1, sizeof(*pb->exports));
    for (size_t i = 0; i < n; i++) {
        Containerd__Services__Introspection__V1__Plugin__ExportsEntry *e = malloc(sizeof(*e));
        containerd__services__introspection__v1__plugin__exports_entry__init(e);
        e->key = strdup(info->export_keys[i]);
        e->value = strdup(info->export_values[i]);
        pb->exports[pb->n_exports++] = e;
    }
}

/* Non-ok rows carry init_err; ctr shows "skip" when its message says "skip plugin", else "error". */
static void
add_init_err(plugin_pb_t *pb, const berth_plugin_info_t *info)
{
    if (strcmp(info->status, "ok") == 0)
        return;
    Google__Rpc__Status *s = malloc(sizeof(*s));
    google__rpc__status__init(s);
    s->code = info->error_code ? grpc_status_of(info->error_code) : 2;
    int plain = strcmp(info->status, "skip") == 0 || strcmp(info->status, "error") == 0;
    int disabled = strcmp(info->status, "disabled") == 0;
    size_t n = strlen(info->status) + strlen(info->reason) + 32;
    s->message = malloc(n);
    if (plain)
        snprintf(s->message, n, "%s", info->reason);
    else if (disabled)
        snprintf(s->message, n, "%s: skip plugin", info->reason);
    else
        snprintf(s->message, n, "%s: %s", info->status, info->reason);
    pb->init_err = s;
}

static void
collect_plugin(void *user, const berth_plugin_info_t *info)
{
    listing_t *l = user;
    if (l->want_type ? strcmp(info->type, l->want_type) != 0 || strcmp(info->id, l->want_id) != 0
                     : !filters_match(l->filters, plugin_field, (void *)info))
        return;
    if (l->want_type) {
        l->failed = strcmp(info->status, "ok") != 0;
        l->deferred = strcmp(info->status, "deferred") == 0;
    }
    plugin_pb_t *pb = malloc(sizeof(*pb));
    containerd__services__introspection__v1__plugin__init(pb);
    pb->type = strdup(info->type);
    pb->id = strdup(info->id);
    pb->requires = grpc_strv_copy(info->requires, &pb->n_requires);
    for (size_t i = 0; i < pb->n_requires;
         i++) /* containerd lists types; '?' (optional) is berth's */
        if (pb->requires[i][0] == '?')
            memmove(pb->requires[i], pb -> requires[i] + 1, strlen(pb->requires[i]));
    pb->capabilities = grpc_strv_copy(info->capabilities, &pb->n_capabilities);
    add_platforms(pb, info->platforms);
    add_exports(pb, info);
    add_init_err(pb, info);
    l->plugins = realloc(l->plugins, (l->n + 1) * sizeof(*l->plugins));
    l->plugins[l->n++] = pb;
}

/* `ctr plugins ls` shows each plugin's true status (ok, skip, error), which only its init tells: every
 * plugin still waiting for its first use (BERTH_PLUGIN_ON_DEMAND) is initialised first. Those that fail
 * show their error in their rows. `berthd modules --running` shows them as "deferred" instead. Loop
 * thread (the methods are inline). */
static void
demand_all(introspection_t *x)
{
    if (!BERTH_API_HAS(x->api, demand))
        return;
    berth_error_t *err = NULL;
    /* a plugin that skips or fails says so in its row (and in the core's log): no warning here on
     * every listing */
    if (x->api->demand(NULL, NULL, &err) < 0)
        x->api->log(x->log, BERTH_LOG_DEBUG, "plugins initialised for Plugins: %s",
                    err && err->message ? err->message : "a plugin failed");
    if (err)
        x->api->error_free(err);
}

static int
plugins_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
             size_t *resp_len, berth_error_t **err)
{
    introspection_t *x = user;
    Containerd__Services__Introspection__V1__PluginsRequest *r =
        containerd__services__introspection__v1__plugins_request__unpack(NULL, len, req);
    if (r == NULL)
        return grpc_bad_request(
            x->api, &containerd__services__introspection__v1__plugins_request__descriptor, err);
    char msg[512];
    filters_t *f = NULL;
    if (filters_parse_n((const char *const *)r->filters, r->n_filters, &f, msg, sizeof(msg)) < 0) {
        containerd__services__introspection__v1__plugins_request__free_unpacked(r, NULL);
        return x->api->error_make(err, BERTH_EINVAL, "%s", msg);
    }
    demand_all(x);
    listing_t l = {.filters = f};
    x->api->plugins_list(collect_plugin, &l);
    Containerd__Services__Introspection__V1__PluginsResponse out =
        CONTAINERD__SERVICES__INTROSPECTION__V1__PLUGINS_RESPONSE__INIT;
    out.plugins = l.plugins;
    out.n_plugins = l.n;
    int rc = grpc_pack(&out.base, resp, resp_len);
    for (size_t i = 0; i < l.n; i++)
        protobuf_c_message_free_unpacked(&l.plugins[i]->base, NULL);
    free(l.plugins);
    filters_free(f);
    containerd__services__introspection__v1__plugins_request__free_unpacked(r, NULL);
    return rc;
}

/* containerd 2.x's PluginInfo (not in the 1.6 protos, so decoded by hand): PluginInfoRequest {type = 1,
 * id = 2, options = 3}. The plugin's row as Plugins gives it; NotFound for an unknown one. No berth plugin
 * answers options, so those get containerd's answer for such a plugin (FailedPrecondition when it did not
 * load, else Unimplemented). */
static int
plugin_info_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
                 size_t *resp_len, berth_error_t **err)
{
    introspection_t *x = user;
    char type[256] = "", id[256] = "";
    int options = 0, rc;
    size_t off = 0;
    uint32_t tag;
    int wire;
    uint64_t v;
    const uint8_t *d = NULL;
    size_t dl = 0;
    while ((rc = unknown_next(req, len, &off, &tag, &wire, &v, &d, &dl)) == 1) {
        int text = wire == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED && (tag == 1 || tag == 2);
        if (text && dl >= sizeof(type))
            return x->api->error_make(err, BERTH_EINVAL, "plugin type or id too long");
        if (text)
            snprintf(tag == 1 ? type : id, sizeof(type), "%.*s", (int)dl, (const char *)d);
        else if (tag == 3)
            options = 1;
    }
    if (rc < 0)
        return x->api->error_make(err, BERTH_EINVAL, "request is not a valid PluginInfoRequest");
    listing_t l = {.want_type = type, .want_id = id};
    x->api->plugins_list(collect_plugin, &l);
    if (l.n > 0 && l.deferred) { /* its true status, as Plugins gives it */
        for (size_t i = 0; i < l.n; i++)
            protobuf_c_message_free_unpacked(&l.plugins[i]->base, NULL);
        free(l.plugins);
        demand_all(x);
        l = (listing_t){.want_type = type, .want_id = id};
        x->api->plugins_list(collect_plugin, &l);
    }
    if (l.n == 0)
        rc =
            x->api->error_make(err, BERTH_ENOTFOUND, "plugin %s.%s not found: not found", type, id);
    else if (options && l.failed)
        rc = x->api->error_make(err, BERTH_EPRECONDITION,
                                "cannot get extra info, plugin not successfully loaded: failed "
                                "precondition");
    else if (options)
        rc = x->api->error_make(err, BERTH_ENOTIMPL,
                                "plugin does not provided extra information: not implemented");
    if (rc == 0) {
        /* PluginInfoResponse {Plugin plugin = 1;} is, on the wire, a PluginsResponse of one plugin */
        Containerd__Services__Introspection__V1__PluginsResponse out =
            CONTAINERD__SERVICES__INTROSPECTION__V1__PLUGINS_RESPONSE__INIT;
        out.plugins = l.plugins;
        out.n_plugins = 1;
        rc = grpc_pack(&out.base, resp, resp_len);
    }
    for (size_t i = 0; i < l.n; i++)
        protobuf_c_message_free_unpacked(&l.plugins[i]->base, NULL);
    free(l.plugins);
    (void)ns;
    return rc;
}

static int
server_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    introspection_t *x = user;
    Containerd__Services__Introspection__V1__ServerResponse out =
        CONTAINERD__SERVICES__INTROSPECTION__V1__SERVER_RESPONSE__INIT;
    out.uuid = x->uuid;
    /* containerd 2.x's pid (2) and pidns (3), as unknown fields protobuf-c packs; deprecations (4) stays
     * empty: berth has nothing deprecated to warn about */
    uint8_t pid[10], pidns[10];
    ProtobufCMessageUnknownField more[2] = {
        {.tag = 2, .wire_type = PROTOBUF_C_WIRE_TYPE_VARINT, .data = pid},
        {.tag = 3, .wire_type = PROTOBUF_C_WIRE_TYPE_VARINT, .data = pidns},
    };
    more[0].len = unknown_put_varint(pid, (uint64_t)getpid());
    more[1].len = unknown_put_varint(pidns, x->pidns);
    out.base.unknown_fields = more;
    out.base.n_unknown_fields = x->pidns ? 2 : 1;
    (void)ns;
    (void)req;
    (void)len;
    return grpc_pack(&out.base, resp, resp_len);
}

static const berth_grpc_method_t introspection_methods[] = {
    {.name = "Plugins", .kind = BERTH_RPC_UNARY, .flags = BERTH_RPC_INLINE, .unary = plugins_call},
    {.name = "Server", .kind = BERTH_RPC_UNARY, .flags = BERTH_RPC_INLINE, .unary = server_call},
    {.name = "PluginInfo",
     .kind = BERTH_RPC_UNARY,
     .flags = BERTH_RPC_INLINE,
     .unary = plugin_info_call},
};

static const berth_grpc_service_v1_t introspection_service = {
    .struct_size = sizeof(berth_grpc_service_v1_t),
    .name = "containerd.services.introspection.v1.Introspection",
    .methods = introspection_methods,
    .n_methods = sizeof(introspection_methods) / sizeof(introspection_methods[0]),
};

static int
valid_uuid(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++)
        if ((i == 8 || i == 13 || i == 18 || i == 23) ? s[i] != '-'
                                                      : !strchr("0123456789abcdef", s[i]))
            return 0;
    return 1;
}

/* The UUID survives restarts, as containerd's does: <root>/uuid, made once from getrandom (v4). */
static int
load_uuid(berth_init_ctx_t *ic, introspection_t *x, berth_error_t **err)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/uuid", ic->root);
    FILE *f = fopen(path, "r");
    if (f) {
        int ok = fgets(x->uuid, sizeof(x->uuid), f) != NULL && valid_uuid(x->uuid);
        fclose(f);
        if (ok)
            return 0;
    }
    uint8_t b[16];
    if (getrandom(b, sizeof(b), 0) != sizeof(b))
        return ic->api->error_make(err, BERTH_EIO, "getrandom: %s", strerror(errno));
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(x->uuid, sizeof(x->uuid),
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, x->uuid, 36) != 36 || fsync(fd) < 0 || close(fd) < 0 ||
        rename(tmp, path) < 0) {
        if (fd >= 0)
            close(fd);
        return ic->api->error_make(err, BERTH_EIO, "write %s: %s", path, strerror(errno));
    }
    return 0;
}

static int
introspection_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    introspection_t *x = calloc(1, sizeof(*x));
    x->api = ic->api;
    x->log = ic->log;
    if (load_uuid(ic, x, err) < 0) {
        free(x);
        return -1;
    }
    struct stat st;
    if (stat("/proc/self/ns/pid", &st) == 0)
        x->pidns = (uint64_t)st.st_ino;
    *instance = x;
    return 0;
}

const berth_plugin_reg_t grpc_introspection_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_GRPC_SERVICE_TYPE,
    .id = "introspection",
    .init = introspection_init,
    .fini = free,
    .ops = &introspection_service,
};
