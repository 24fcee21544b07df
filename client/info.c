/* SPDX-License-Identifier: Apache-2.0 */
/* Namespaces, plugins (Introspection), the server's identity, and berthd's modules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/empty.pb-c.h"
#include "services/introspection/v1/introspection.pb-c.h"
#include "berth/services/modules/v1/modules.pb-c.h"
#include "services/namespaces/v1/namespace.pb-c.h"

#include "internal.h"

/* ---- namespaces ------------------------------------------------------------------------------------- */

BC_EXPORT int
berth_namespace_create(berth_client_t *c, const berth_call_t *call, const char *name,
                       const berth_kv_t *labels, size_t n_labels, berth_error_t **err)
{
    Containerd__Services__Namespaces__V1__Namespace ns =
        CONTAINERD__SERVICES__NAMESPACES__V1__NAMESPACE__INIT;
    ns.name = (char *)name;
    ns.n_labels = n_labels;
    ns.labels = (Containerd__Services__Namespaces__V1__Namespace__LabelsEntry **)bc_map_from_kv(
        &containerd__services__namespaces__v1__namespace__labels_entry__descriptor, labels,
        n_labels);
    if (n_labels && ns.labels == NULL)
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    Containerd__Services__Namespaces__V1__CreateNamespaceRequest req =
        CONTAINERD__SERVICES__NAMESPACES__V1__CREATE_NAMESPACE_REQUEST__INIT;
    req.namespace_ = &ns;
    int r = bc_unary(c, call, "/containerd.services.namespaces.v1.Namespaces/Create", &req.base,
                     NULL, NULL, err);
    free(ns.labels);
    return r;
}

BC_EXPORT int
berth_namespace_list(berth_client_t *c, const berth_call_t *call, char ***names, size_t *n,
                     berth_error_t **err)
{
    *names = NULL;
    *n = 0;
    Containerd__Services__Namespaces__V1__ListNamespacesRequest req =
        CONTAINERD__SERVICES__NAMESPACES__V1__LIST_NAMESPACES_REQUEST__INIT;
    ProtobufCMessage *resp;
    int r = bc_unary(c, call, "/containerd.services.namespaces.v1.Namespaces/List", &req.base,
                     &containerd__services__namespaces__v1__list_namespaces_response__descriptor,
                     &resp, err);
    if (r < 0)
        return r;
    Containerd__Services__Namespaces__V1__ListNamespacesResponse *l = (void *)resp;
    char **out = calloc(l->n_namespaces + 1, sizeof(char *));
    for (size_t i = 0; out && i < l->n_namespaces; i++)
        if ((out[i] = bc_strdup(l->namespaces[i]->name)) == NULL) {
            for (size_t j = 0; j < i; j++)
                free(out[j]);
            free(out);
            out = NULL;
        }
    size_t count = l->n_namespaces;
    protobuf_c_message_free_unpacked(resp, NULL);
    if (out == NULL)
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    *names = out;
    *n = count;
    return 0;
}

BC_EXPORT int
berth_namespace_delete(berth_client_t *c, const berth_call_t *call, const char *name,
                       berth_error_t **err)
{
    Containerd__Services__Namespaces__V1__DeleteNamespaceRequest req =
        CONTAINERD__SERVICES__NAMESPACES__V1__DELETE_NAMESPACE_REQUEST__INIT;
    req.name = (char *)name;
    return bc_unary(c, call, "/containerd.services.namespaces.v1.Namespaces/Delete", &req.base,
                    NULL, NULL, err);
}

/* ---- plugins ---------------------------------------------------------------------------------------- */

static char **
strv_dup(char *const *v, size_t n)
{
    char **out = calloc(n + 1, sizeof(char *));
    for (size_t i = 0; out && i < n; i++)
        if ((out[i] = bc_strdup(v[i])) == NULL) {
            for (size_t j = 0; j < i; j++)
                free(out[j]);
            free(out);
            return NULL;
        }
    return out;
}

static void
strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static int
plugin_from(berth_plugin_t *p, const Containerd__Services__Introspection__V1__Plugin *pb)
{
    p->type = bc_strdup(pb->type);
    p->id = bc_strdup(pb->id);
    p->init_error = bc_strdup(pb->init_err ? pb->init_err->message : "");
    p->requires = strv_dup(pb->requires, pb->n_requires);
    p->n_requires = pb->n_requires;
    p->capabilities = strv_dup(pb->capabilities, pb->n_capabilities);
    p->n_capabilities = pb->n_capabilities;
    int r = bc_kv_from_map((void **)pb->exports, pb->n_exports, &p->exports, &p->n_exports);
    if (!p->type || !p->id || !p->init_error || !p->requires || !p->capabilities || r < 0)
        return BERTH_ENOMEM;
    return 0;
}

BC_EXPORT void
berth_plugins_free(berth_plugin_t *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++) {
        free(p[i].type);
        free(p[i].id);
        free(p[i].init_error);
        strv_free(p[i].requires, p[i].n_requires);
        strv_free(p[i].capabilities, p[i].n_capabilities);
        berth_kv_free(p[i].exports, p[i].n_exports);
    }
    free(p);
}

BC_EXPORT int
berth_plugins(berth_client_t *c, const berth_call_t *call, const char *const *filters,
              size_t n_filters, berth_plugin_t **out, size_t *n, berth_error_t **err)
{
    *out = NULL;
    *n = 0;
    Containerd__Services__Introspection__V1__PluginsRequest req =
        CONTAINERD__SERVICES__INTROSPECTION__V1__PLUGINS_REQUEST__INIT;
    req.n_filters = n_filters;
    req.filters = (char **)filters;
    ProtobufCMessage *resp;
    int r = bc_unary(
        c, call, "/containerd.services.introspection.v1.Introspection/Plugins", &req.base,
        &containerd__services__introspection__v1__plugins_response__descriptor, &resp, err);
    if (r < 0)
        return r;
    Containerd__Services__Introspection__V1__PluginsResponse *l = (void *)resp;
    berth_plugin_t *p = calloc(l->n_plugins + 1, sizeof(*p));
    r = p ? 0 : BERTH_ENOMEM;
    for (size_t i = 0; r == 0 && i < l->n_plugins; i++)
        r = plugin_from(&p[i], l->plugins[i]);
    size_t count = l->n_plugins;
    protobuf_c_message_free_unpacked(resp, NULL);
    if (r < 0) {
        berth_plugins_free(p, count);
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    }
    *out = p;
    *n = count;
    return 0;
}

/* ---- the server ------------------------------------------------------------------------------------- */

BC_EXPORT void
berth_server_info_free(berth_server_info_t *s)
{
    if (s == NULL)
        return;
    free(s->uuid);
    strv_free(s->deprecations, s->n_deprecations);
    *s = (berth_server_info_t){0};
}

BC_EXPORT int
berth_server_info(berth_client_t *c, const berth_call_t *call, berth_server_info_t *out,
                  berth_error_t **err)
{
    *out = (berth_server_info_t){0};
    Google__Protobuf__Empty req = GOOGLE__PROTOBUF__EMPTY__INIT;
    ProtobufCMessage *resp;
    int r =
        bc_unary(c, call, "/containerd.services.introspection.v1.Introspection/Server", &req.base,
                 &containerd__services__introspection__v1__server_response__descriptor, &resp, err);
    if (r < 0)
        return r;
    Containerd__Services__Introspection__V1__ServerResponse *s = (void *)resp;
    out->uuid = bc_strdup(s->uuid);
    out->pid = s->pid;
    out->deprecations = calloc(s->n_deprecations + 1, sizeof(char *));
    int bad = out->uuid == NULL || out->deprecations == NULL;
    for (size_t i = 0; !bad && i < s->n_deprecations; i++) {
        const Containerd__Services__Introspection__V1__DeprecationWarning *w = s->deprecations[i];
        /* "id: message", as ctr deprecations list shows them */
        if (asprintf(&out->deprecations[i], "%s: %s", w->id ? w->id : "",
                     w->message ? w->message : "") < 0)
            bad = 1, out->deprecations[i] = NULL;
        else
            out->n_deprecations = i + 1;
    }
    protobuf_c_message_free_unpacked(resp, NULL);
    if (bad) {
        berth_server_info_free(out);
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    }
    return 0;
}

/* ---- berthd's modules ------------------------------------------------------------------------------- */

BC_EXPORT void
berth_modules_free(berth_module_t *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++) {
        char **s[] = {&m[i].uri,     &m[i].type, &m[i].id,     &m[i].file,  &m[i].module,
                      &m[i].version, &m[i].abi,  &m[i].status, &m[i].reason};
        for (size_t j = 0; j < sizeof(s) / sizeof(s[0]); j++)
            free(*s[j]);
        strv_free(m[i].requires, m[i].n_requires);
        berth_kv_free(m[i].exports, m[i].n_exports);
    }
    free(m);
}

static int
module_from(berth_module_t *m, const Berth__Services__Modules__V1__Module *pb)
{
    struct {
        char **dst;
        const char *src;
    } f[] = {{&m->uri, pb->uri},   {&m->type, pb->type},     {&m->id, pb->id},
             {&m->file, pb->file}, {&m->module, pb->module}, {&m->version, pb->version},
             {&m->abi, pb->abi},   {&m->status, pb->status}, {&m->reason, pb->reason}};
    int bad = 0;
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        bad |= (*f[i].dst = bc_strdup(f[i].src)) == NULL;
    m->init_order = pb->init_order;
    m->requires = strv_dup(pb->requires, pb->n_requires);
    m->n_requires = pb->n_requires;
    bad |= m->requires == NULL;
    bad |= bc_kv_from_map((void **)pb->exports, pb->n_exports, &m->exports, &m->n_exports) < 0;
    return bad ? BERTH_ENOMEM : 0;
}

BC_EXPORT int
berth_modules(berth_client_t *c, const berth_call_t *call, berth_module_t **out, size_t *n,
              berth_error_t **err)
{
    *out = NULL;
    *n = 0;
    Berth__Services__Modules__V1__ListModulesRequest req =
        BERTH__SERVICES__MODULES__V1__LIST_MODULES_REQUEST__INIT;
    ProtobufCMessage *resp;
    int r = bc_unary(c, call, "/berth.services.modules.v1.Modules/List", &req.base,
                     &berth__services__modules__v1__list_modules_response__descriptor, &resp, err);
    if (r < 0)
        return r;
    Berth__Services__Modules__V1__ListModulesResponse *l = (void *)resp;
    berth_module_t *m = calloc(l->n_modules + 1, sizeof(*m));
    r = m ? 0 : BERTH_ENOMEM;
    for (size_t i = 0; r == 0 && i < l->n_modules; i++)
        r = module_from(&m[i], l->modules[i]);
    size_t count = l->n_modules;
    protobuf_c_message_free_unpacked(resp, NULL);
    if (r < 0) {
        berth_modules_free(m, count);
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    }
    *out = m;
    *n = count;
    return 0;
}

BC_EXPORT void
berth_modules_reload_free(berth_modules_reload_t *r)
{
    if (r == NULL)
        return;
    free(r->message);
    strv_free(r->enabled, r->n_enabled);
    strv_free(r->disabled, r->n_disabled);
    strv_free(r->reloaded, r->n_reloaded);
    strv_free(r->failed, r->n_failed);
    strv_free(r->restart_needed, r->n_restart_needed);
    memset(r, 0, sizeof(*r));
}

BC_EXPORT int
berth_modules_reload(berth_client_t *c, const berth_call_t *call, berth_modules_reload_t *out,
                     berth_error_t **err)
{
    memset(out, 0, sizeof(*out));
    Berth__Services__Modules__V1__ReloadRequest req =
        BERTH__SERVICES__MODULES__V1__RELOAD_REQUEST__INIT;
    ProtobufCMessage *resp;
    int r = bc_unary(c, call, "/berth.services.modules.v1.Modules/Reload", &req.base,
                     &berth__services__modules__v1__reload_response__descriptor, &resp, err);
    if (r < 0)
        return r;
    Berth__Services__Modules__V1__ReloadResponse *pb = (void *)resp;
    out->message = bc_strdup(pb->message);
    out->enabled = strv_dup(pb->enabled, pb->n_enabled);
    out->n_enabled = pb->n_enabled;
    out->disabled = strv_dup(pb->disabled, pb->n_disabled);
    out->n_disabled = pb->n_disabled;
    out->reloaded = strv_dup(pb->reloaded, pb->n_reloaded);
    out->n_reloaded = pb->n_reloaded;
    out->failed = strv_dup(pb->failed, pb->n_failed);
    out->n_failed = pb->n_failed;
    out->restart_needed = strv_dup(pb->restart_needed, pb->n_restart_needed);
    out->n_restart_needed = pb->n_restart_needed;
    protobuf_c_message_free_unpacked(resp, NULL);
    if (out->message == NULL || out->enabled == NULL || out->disabled == NULL ||
        out->reloaded == NULL || out->failed == NULL || out->restart_needed == NULL) {
        berth_modules_reload_free(out);
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    }
    return 0;
}
