/* SPDX-License-Identifier: Apache-2.0 */
/* berth.services.modules.v1.Modules: the module table, with files, ABI versions, statuses and reasons. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth/services/modules/v1/modules.pb-c.h"
#include "filters.h"
#include "services.h"

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
    const berth_core_api_t *api = user;
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

static const berth_grpc_method_t modules_methods[] = {
    {.name = "List", .kind = BERTH_RPC_UNARY, .flags = BERTH_RPC_INLINE, .unary = list_call},
};

static const berth_grpc_service_v1_t modules_service = {
    .struct_size = sizeof(berth_grpc_service_v1_t),
    .name = "berth.services.modules.v1.Modules",
    .methods = modules_methods,
    .n_methods = 1,
};

static int
modules_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    *instance = (void *)ic->api;
    return 0;
}

const berth_plugin_reg_t grpc_modules_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_GRPC_SERVICE_TYPE,
    .id = "modules",
    .init = modules_init,
    .ops = &modules_service,
};
