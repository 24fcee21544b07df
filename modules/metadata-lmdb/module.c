/* SPDX-License-Identifier: Apache-2.0 */
/* metadata-lmdb.so: the metadata store (io.containerd.metadata.v1.lmdb) and the gRPC services over it. */
#include <stdlib.h>

#include "services.h"
#include "store.h"

static const berth_config_field_t md_config[] = {
    {"map_size", BERTH_CFG_INT, "1073741824",
     "initial size of the LMDB map, in bytes; a full map is doubled and the write run again"},
    {NULL, 0, NULL, NULL},
};

static int
md_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    md_t *md = calloc(1, sizeof(*md));
    md->api = ic->api;
    md->log = ic->log;
    int64_t map_size;
    if (ic->api->get_int(ic->config, "map_size", 1 << 30, &map_size, err) < 0)
        goto fail;
    if (map_size < (1 << 20)) {
        ic->api->error_make(err, BERTH_EINVAL, "map_size %lld: must be at least 1 MiB",
                            (long long)map_size);
        goto fail;
    }
    if (md_open(md, ic->root, map_size, err) < 0)
        goto fail;
    *instance = md;
    return 0;
fail:
    free(md);
    return -1;
}

static void
md_fini(void *instance)
{
    md_t *md = instance;
    md_close(md);
    free(md);
}

static const berth_plugin_reg_t md_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_METADATA_TYPE,
    .id = "lmdb",
    .config = md_config,
    .init = md_init,
    .fini = md_fini,
    .ops = &md_ops,
    .flags = BERTH_PLUGIN_NO_RELOAD | BERTH_PLUGIN_ON_DEMAND,
};

static const berth_plugin_reg_t *const md_plugins[] = {&md_plugin, &md_namespaces_plugin,
                                                       &md_leases_plugin, &md_gc_plugin, NULL};

BERTH_MODULE(metadata_lmdb, .version = "0.1.0", .license = "Apache-2.0", .origin = "berth",
             .description =
                 "namespaces and leases in LMDB, with containerd's Namespaces and Leases services",
             .plugins = md_plugins)
