/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The images module: containerd's Images service (io.containerd.grpc.v1.images), the walking differ
 * (io.containerd.differ.v1.walking) and the Diff service in front of it (io.containerd.grpc.v1.diff).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "images.h"

int diff_service_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err);

static int
code_of(berth_error_t **err)
{
    return err && *err ? (*err)->code : BERTH_EUNKNOWN;
}

/* ---- io.containerd.grpc.v1.images ------------------------------------------------------------------- */

static int
images_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    const berth_core_api_t *api = ic->api;
    berth_instance_t md, ev, gc;
    if (api->get_single(ic, BERTH_METADATA_TYPE, &md, err) < 0 ||
        api->get_single(ic, BERTH_EVENTS_TYPE, &ev, err) < 0 ||
        api->get_single(ic, BERTH_GC_TYPE, &gc, err) < 0)
        return code_of(err);
    images_t *s = calloc(1, sizeof(*s));
    *s = (images_t){api, md.instance, md.ops, ev.instance, ev.ops, gc.instance, gc.ops};
    *instance = s;
    return 0;
}

/* containerd's images service needs the metadata store, the collector (Delete with sync) and events */
static const char *const images_requires[] = {BERTH_METADATA_TYPE, BERTH_GC_TYPE, BERTH_EVENTS_TYPE,
                                              NULL};

static const berth_plugin_reg_t images_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_GRPC_SERVICE_TYPE,
    .id = "images",
    .requires = images_requires,
    .init = images_init,
    .fini = free,
    .ops = &images_service,
    .flags = BERTH_PLUGIN_ON_DEMAND,
};

/* ---- io.containerd.differ.v1.walking ---------------------------------------------------------------- */

static const berth_config_field_t differ_config[] = {
    {"allow_device_nodes", BERTH_CFG_BOOL, "true",
     "create block and character devices that layers carry (containerd does, as root)"},
    {"max_layer_bytes", BERTH_CFG_INT, "68719476736",
     "the most bytes one layer may decompress to (a bound on gzip bombs); 0: no bound"},
    {"max_compression_ratio", BERTH_CFG_INT, "1000",
     "the most decompressed bytes per compressed byte after the first MiB; 0: no bound"},
    {NULL, 0, NULL, NULL},
};

static int
differ_limits(berth_init_ctx_t *ic, layer_apply_opts_t *o, berth_error_t **err)
{
    const berth_core_api_t *api = ic->api;
    int devices;
    int64_t bytes, ratio;
    if (api->get_bool(ic->config, "allow_device_nodes", 1, &devices, err) < 0 ||
        api->get_int(ic->config, "max_layer_bytes", 68719476736LL, &bytes, err) < 0 ||
        api->get_int(ic->config, "max_compression_ratio", 1000, &ratio, err) < 0)
        return code_of(err);
    if (bytes < 0 || ratio < 0)
        return api->error_make(err, BERTH_EINVAL,
                               "max_layer_bytes and max_compression_ratio must "
                               "not be negative");
    *o = (layer_apply_opts_t){
        .allow_devices = devices, .max_bytes = (uint64_t)bytes, .max_ratio = (uint64_t)ratio};
    return 0;
}

/* A kill of berthd during Apply or Diff leaves its private mount point mounted (mounts.c). The state dir
 * holds nothing else of the differ's and no Apply runs before init returns, so every mnt-* is such
 * garbage: unmounted (lazily when busy) and removed. */
static void
differ_sweep(const berth_core_api_t *api, const berth_logger_t *log, const char *state)
{
    DIR *dir = opendir(state);
    for (struct dirent *e; dir && (e = readdir(dir)) != NULL;) {
        if (strncmp(e->d_name, "mnt-", 4) != 0)
            continue;
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", state, e->d_name);
        int mounts = 0;
        while (umount2(path, 0) == 0)
            mounts++;
        if (errno == EBUSY && umount2(path, MNT_DETACH) == 0)
            mounts++;
        if (rmdir(path) < 0 && errno != ENOENT)
            api->log(log, BERTH_LOG_WARN, "differ: leftover mount point %s: %s", path,
                     strerror(errno));
        else
            api->log(log, BERTH_LOG_WARN,
                     "differ: removed leftover mount point %s (%d mounts) of an interrupted apply",
                     path, mounts);
    }
    if (dir)
        closedir(dir);
}

static int
differ_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    const berth_core_api_t *api = ic->api;
    berth_instance_t md, cs;
    layer_apply_opts_t limits;
    if (api->get_single(ic, BERTH_METADATA_TYPE, &md, err) < 0 ||
        api->get_single(ic, BERTH_CONTENT_TYPE, &cs, err) < 0 ||
        differ_limits(ic, &limits, err) < 0)
        return code_of(err);
    differ_sweep(api, ic->log, ic->state);
    differ_t *d = calloc(1, sizeof(*d));
    *d = (differ_t){api,         ic->log, md.instance,       md.ops,
                    cs.instance, cs.ops,  strdup(ic->state), limits};
    *instance = d;
    return 0;
}

static void
differ_fini(void *instance)
{
    differ_t *d = instance;
    free(d->scratch);
    free(d);
}

const berth_differ_v1_ops_t differ_ops = {
    .struct_size = sizeof(berth_differ_v1_ops_t),
    .apply = differ_apply,
    .diff = differ_diff,
};

static const char *const differ_requires[] = {BERTH_METADATA_TYPE, BERTH_CONTENT_TYPE, NULL};

/* On first use, but at start when an apply was interrupted (a kill -9): its layer's mounts on <state>/mnt-*
 * pin a snapshot and a mount until the differ's init takes them down. */
static const char *const differ_start_if[] = {"state:mnt-*", NULL};

static const berth_plugin_reg_t differ_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_DIFFER_TYPE,
    .id = "walking",
    .requires = differ_requires,
    .config = differ_config,
    .init = differ_init,
    .fini = differ_fini,
    .ops = &differ_ops,
    .flags = BERTH_PLUGIN_ON_DEMAND,
    .start_if = differ_start_if,
};

/* ---- io.containerd.grpc.v1.diff --------------------------------------------------------------------- */

static const char *const diff_requires[] = {BERTH_DIFFER_TYPE, NULL};

static const berth_plugin_reg_t diff_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_GRPC_SERVICE_TYPE,
    .id = "diff",
    .requires = diff_requires,
    .init = diff_service_init,
    .fini = free,
    .ops = &diff_service,
    .flags = BERTH_PLUGIN_ON_DEMAND,
};

static const berth_plugin_reg_t *const images_plugins[] = {&images_plugin, &differ_plugin,
                                                           &diff_plugin, NULL};

BERTH_MODULE(images, .version = "0.1.0", .license = "Apache-2.0", .origin = "berth",
             .description = "containerd's Images and Diff services and the walking differ",
             .plugins = images_plugins)
