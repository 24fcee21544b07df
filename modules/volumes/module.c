/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The volumes module: named volumes (io.berth.volume.v1.local, volume.c) and berth's Volumes service in
 * front of them (io.containerd.grpc.v1.volumes, service.c).
 */
#include <stdlib.h>

#include "volumes.h"

static const berth_config_field_t vol_config[] = {
    {"bind_allow", BERTH_CFG_LIST, "[]",
     "host directories whose insides may be bound into containers (bind volumes and /host/path "
     "entries of io.berth.volumes); empty: binds are refused"},
    {NULL, 0, NULL, NULL},
};

static const char *const vol_requires[] = {BERTH_METADATA_TYPE, NULL};

static const berth_plugin_reg_t vol_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_VOLUME_TYPE,
    .id = VOL_DRIVER,
    .requires = vol_requires,
    .config = vol_config,
    .init = vol_init,
    .fini = vol_fini,
    .ops = &vol_ops,
    .flags = BERTH_PLUGIN_ON_DEMAND,
};

static const char *const service_requires[] = {BERTH_VOLUME_TYPE, NULL};
static const char *const service_after[] = {BERTH_VOLUME_TYPE "." VOL_DRIVER, NULL};

static const berth_plugin_reg_t service_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_GRPC_SERVICE_TYPE,
    .id = "volumes",
    .requires = service_requires,
    .after = service_after,
    .init = volumes_service_init,
    .fini = free,
    .ops = &volumes_service,
    .flags = BERTH_PLUGIN_ON_DEMAND,
};

static const berth_plugin_reg_t *const volumes_plugins[] = {&vol_plugin, &service_plugin, NULL};

BERTH_MODULE(volumes, .version = "0.1.0", .license = "Apache-2.0", .origin = "berth",
             .description = "named volumes (directories, tmpfs, binds inside an allow-list) and "
                            "berth's Volumes service",
             .plugins = volumes_plugins)
