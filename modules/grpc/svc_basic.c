/* SPDX-License-Identifier: Apache-2.0 */
/* Version and grpc.health.v1.Health: answered inline on the loop, no state but their config. */
#include <stdlib.h>
#include <string.h>

#include "github.com/containerd/containerd/api/services/version/v1/version.pb-c.h"
#include "services.h"

int
grpc_pack(const ProtobufCMessage *m, uint8_t **out, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    *out = malloc(*len ? *len : 1);
    if (*out == NULL)
        return BERTH_ENOMEM;
    protobuf_c_message_pack(m, *out);
    return 0;
}

char **
grpc_strv_copy(const char *const *v, size_t *n)
{
    *n = 0;
    while (v && v[*n])
        (*n)++;
    char **out = calloc(*n + 1, sizeof(char *));
    for (size_t i = 0; i < *n; i++)
        out[i] = strdup(v[i]);
    return out;
}

int
grpc_bad_request(const berth_core_api_t *api, const ProtobufCMessageDescriptor *d,
                 berth_error_t **err)
{
    return api->error_make(err, BERTH_EINVAL, "request is not a valid %s", d->name);
}

/* ---- containerd.services.version.v1.Version -------------------------------------------------------- */

typedef struct version {
    char *version, *revision;
} version_t;

static int
version_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
             size_t *resp_len, berth_error_t **err)
{
    version_t *v = user;
    Containerd__Services__Version__V1__VersionResponse r =
        CONTAINERD__SERVICES__VERSION__V1__VERSION_RESPONSE__INIT;
    r.version = v->version;
    r.revision = v->revision;
    return grpc_pack(&r.base, resp, resp_len);
}

static const berth_grpc_method_t version_methods[] = {
    {.name = "Version",
     .kind = BERTH_RPC_UNARY,
     .flags = BERTH_RPC_INLINE,
     .output_descriptor = &containerd__services__version__v1__version_response__descriptor,
     .unary = version_call},
};

static const berth_grpc_service_v1_t version_service = {
    .struct_size = sizeof(berth_grpc_service_v1_t),
    .name = "containerd.services.version.v1.Version",
    .methods = version_methods,
    .n_methods = 1,
};

static int
version_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    version_t *v = calloc(1, sizeof(*v));
    v->version = strdup(ic->api->get_string(ic->config, "version", BERTH_REPORTED_VERSION));
    v->revision = strdup(ic->api->get_string(ic->config, "revision", BERTH_REVISION));
    *instance = v;
    return 0;
}

static void
version_fini(void *instance)
{
    version_t *v = instance;
    free(v->version);
    free(v->revision);
    free(v);
}

static const berth_config_field_t version_config[] = {
    {"version", BERTH_CFG_STRING, "\"" BERTH_REPORTED_VERSION "\"",
     "version reported to clients: the containerd release whose API berthd serves, + berth's own"},
    {"revision", BERTH_CFG_STRING, "\"" BERTH_REVISION "\"", "revision reported to clients"},
    {NULL, 0, NULL, NULL},
};

const berth_plugin_reg_t grpc_version_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_GRPC_SERVICE_TYPE,
    .id = "version",
    .config = version_config,
    .init = version_init,
    .fini = version_fini,
    .ops = &version_service,
};

/* ---- grpc.health.v1.Health ------------------------------------------------------------------------ */

static int
health_check(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
             size_t *resp_len, berth_error_t **err)
{
    /* HealthCheckResponse{status: SERVING}: field 1, varint 1. The message is two bytes; no proto needed. */
    *resp = malloc(2);
    (*resp)[0] = 0x08;
    (*resp)[1] = 0x01;
    *resp_len = 2;
    return 0;
}

static const berth_grpc_method_t health_methods[] = {
    {.name = "Check", .kind = BERTH_RPC_UNARY, .flags = BERTH_RPC_INLINE, .unary = health_check},
};

static const berth_grpc_service_v1_t health_service = {
    .struct_size = sizeof(berth_grpc_service_v1_t),
    .name = "grpc.health.v1.Health",
    .methods = health_methods,
    .n_methods = 1,
};

static int
health_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    *instance = NULL;
    return 0;
}

const berth_plugin_reg_t grpc_health_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_GRPC_SERVICE_TYPE,
    .id = "healthcheck",
    .init = health_init,
    .ops = &health_service,
};
