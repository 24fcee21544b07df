/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The transfer module: the worker plugin io.containerd.transfer.v1.local (content, metadata, differ, and the
 * Images and Snapshots services in process) and the two gRPC services in front of it,
 * io.containerd.grpc.v1.transfer and io.containerd.grpc.v1.streaming.
 *
 * The worker is of its own type: a plugin of type io.containerd.grpc.v1 cannot require that type (it would
 * wait for itself), so the worker names the two services it calls by URI in `after`, and the gRPC plugins
 * require io.containerd.transfer.v1.
 */
#include <stdlib.h>
#include <string.h>

#include "transfer.h"

#define TRANSFER_TYPE "io.containerd.transfer.v1"

extern const berth_grpc_service_v1_t transfer_service;

static int
code_of(berth_error_t **err)
{
    return err && *err ? (*err)->code : BERTH_EUNKNOWN;
}

/* ---- io.containerd.transfer.v1.local ----------------------------------------------------------------- */

/* The keys reg_config_load (regconfig.c) reads are declared here, with the worker's own. */
static const berth_config_field_t local_config[] = {
    {"default_snapshotter", BERTH_CFG_STRING, "overlayfs",
     "the snapshotter an ImageStore's unpack uses when it names none"},
    {"max_concurrent_downloads", BERTH_CFG_INT, "3", "blobs one pull downloads at once"},
    {"max_concurrent_uploads", BERTH_CFG_INT, "3", "blobs one push uploads at once"},
    {"max_concurrent_unpacks", BERTH_CFG_INT, "1",
     "layers one unpack applies at once (1: in order, as containerd)"},
    {"connect_timeout_ms", BERTH_CFG_INT, "30000", "registry connection timeout, milliseconds"},
    {"low_speed_time", BERTH_CFG_INT, "30",
     "seconds a registry transfer may stay below low_speed_limit before it is cut and retried"},
    {"low_speed_limit", BERTH_CFG_INT, "1", "bytes per second (see low_speed_time)"},
    {"retries", BERTH_CFG_INT, "5",
     "attempts per registry request on 5xx, 429 and cut connections"},
    {"manifest_limit", BERTH_CFG_INT, "4194304", "the largest manifest or index fetched, bytes"},
    {"registries", BERTH_CFG_MAP, "{}",
     "registry hosts: mirrors, TLS, credentials, headers (docs/registries.md)"},
    {NULL, 0, NULL, NULL},
};

static void
local_fini(void *instance)
{
    xfer_t *x = instance;
    if (x == NULL)
        return;
    streams_free(x->streams);
    reg_config_free(&x->reg);
    free(x);
}

static int
local_services(berth_init_ctx_t *ic, xfer_t *x, berth_error_t **err)
{
    const berth_core_api_t *api = ic->api;
    berth_instance_t im, sn;
    if (api->get(ic, BERTH_GRPC_SERVICE_TYPE, "images", &im, err) < 0 ||
        api->get(ic, BERTH_GRPC_SERVICE_TYPE, "snapshots", &sn, err) < 0)
        return code_of(err);
    x->images = im.instance;
    x->images_svc = im.ops;
    x->snapshots = sn.instance;
    x->snapshots_svc = sn.ops;
    return 0;
}

static int
local_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    const berth_core_api_t *api = ic->api;
    berth_instance_t md, cs, df;
    if (api->get_single(ic, BERTH_METADATA_TYPE, &md, err) < 0 ||
        api->get_single(ic, BERTH_CONTENT_TYPE, &cs, err) < 0 ||
        api->get(ic, BERTH_DIFFER_TYPE, "walking", &df, err) < 0)
        return code_of(err);
    /* libcurl, libarchive and libcrypto are opened (and curl_global_init run) by the first transfer that
     * needs them (lazylib.h), on its pool thread: the transfer's end lets go of OpenSSL's per-thread state
     * there (OPENSSL_thread_stop) */
    xfer_t *x = calloc(1, sizeof(*x));
    x->api = api;
    x->log = ic->log;
    x->md = md.instance;
    x->mdo = md.ops;
    x->cs = cs.instance;
    x->cso = cs.ops;
    x->differ = df.instance;
    x->dfo = df.ops;
    int64_t unpacks = 1;
    int rc = local_services(ic, x, err);
    if (rc == 0)
        rc = api->get_int(ic->config, "max_concurrent_unpacks", 1, &unpacks, err);
    if (rc == 0 && (unpacks < 1 || unpacks > 64))
        rc = api->error_make(err, BERTH_EINVAL, "max_concurrent_unpacks must be within 1..64");
    const char *sn = api->get_string(ic->config, "default_snapshotter", "overlayfs");
    if (rc == 0 && (strlen(sn) == 0 || strlen(sn) >= sizeof(x->default_snapshotter)))
        rc = api->error_make(err, BERTH_EINVAL,
                             "default_snapshotter \"%s\": not a snapshotter name", sn);
    if (rc == 0)
        rc = reg_config_load(api, ic->config, &x->reg, err);
    if (rc == 0)
        rc = streams_new(api, ic->log, &x->streams, err);
    if (rc < 0) {
        local_fini(x); /* reg_config_free takes a zeroed or half-loaded config */
        return rc;
    }
    snprintf(x->default_snapshotter, sizeof(x->default_snapshotter), "%s", sn);
    x->max_concurrent_unpacks = (int)unpacks;
    *instance = x;
    return 0;
}

static const char *const local_requires[] = {BERTH_METADATA_TYPE, BERTH_CONTENT_TYPE,
                                             BERTH_DIFFER_TYPE, NULL};
static const char *const local_after[] = {"io.containerd.grpc.v1.images",
                                          "io.containerd.grpc.v1.snapshots", NULL};

static const berth_plugin_reg_t local_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = TRANSFER_TYPE,
    .id = "local",
    .requires = local_requires,
    .after = local_after,
    .config = local_config,
    .init = local_init,
    .fini = local_fini,
    .flags = BERTH_PLUGIN_ON_DEMAND,
};

/* ---- io.containerd.grpc.v1.transfer and .streaming ----------------------------------------------------- */

static int
transfer_svc_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    berth_instance_t w;
    if (ic->api->get(ic, TRANSFER_TYPE, "local", &w, err) < 0)
        return code_of(err);
    *instance = w.instance; /* the worker's: freed by its fini */
    return 0;
}

static int
streaming_svc_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    berth_instance_t w;
    if (ic->api->get(ic, TRANSFER_TYPE, "local", &w, err) < 0)
        return code_of(err);
    *instance = ((xfer_t *)w.instance)->streams;
    return 0;
}

static const char *const svc_requires[] = {TRANSFER_TYPE, NULL};

static const berth_plugin_reg_t transfer_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_GRPC_SERVICE_TYPE,
    .id = "transfer",
    .requires = svc_requires,
    .init = transfer_svc_init,
    .ops = &transfer_service,
    .flags = BERTH_PLUGIN_ON_DEMAND,
};

static const berth_plugin_reg_t streaming_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_GRPC_SERVICE_TYPE,
    .id = "streaming",
    .requires = svc_requires,
    .init = streaming_svc_init,
    .ops = &streaming_service,
    .flags = BERTH_PLUGIN_ON_DEMAND,
};

static const berth_plugin_reg_t *const transfer_plugins[] = {&local_plugin, &transfer_plugin,
                                                             &streaming_plugin, NULL};

BERTH_MODULE(transfer, .version = "0.1.0", .license = "Apache-2.0", .origin = "berth",
             .description = "containerd 2.x's Transfer and Streaming services (image pull, push, "
                            "import, export, tag)",
             .plugins = transfer_plugins)
