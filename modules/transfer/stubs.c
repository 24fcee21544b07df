/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Weak stand-ins for the functions other files of the module define (registry.c/regconfig.c, pull.c,
 * push.c, unpack.c, manifest.c), so the module links while those are being written: a real definition
 * anywhere in the module replaces its stand-in. Each stand-in answers Unimplemented.
 */
#include <string.h>

#include "transfer.h"

#define WEAK __attribute__((weak))

static int
unimplemented(const berth_core_api_t *api, berth_error_t **err, const char *what)
{
    return api->error_make(err, BERTH_ENOTIMPL, "%s: not implemented", what);
}

WEAK int
reg_config_load(const berth_core_api_t *api, const berth_config_node_t *plugin_config,
                reg_config_t *out, berth_error_t **err)
{
    memset(out, 0, sizeof(*out));
    out->max_concurrent_downloads = 3;
    out->max_concurrent_uploads = 3;
    out->connect_timeout_ms = 30000;
    out->low_speed_time_s = 30;
    out->low_speed_limit = 1;
    out->retries = 5;
    out->manifest_limit = 4 << 20;
    return 0;
}

WEAK void
reg_config_free(reg_config_t *cfg)
{
    (void)cfg;
}

WEAK int
xfer_pull(xjob_t *j, const struct Containerd__Types__Transfer__OCIRegistry *src,
          const struct Containerd__Types__Transfer__ImageStore *dst, berth_error_t **err)
{
    return unimplemented(j->x->api, err, "pull");
}

WEAK int
xfer_push(xjob_t *j, const struct Containerd__Types__Transfer__ImageStore *src,
          const struct Containerd__Types__Transfer__OCIRegistry *dst, berth_error_t **err)
{
    return unimplemented(j->x->api, err, "push");
}

WEAK int
unpack_start(xjob_t *j, const char *snapshotter, const berth_descriptor_t *config,
             const oci_manifest_t *manifest, unpacker_t **out, berth_error_t **err)
{
    *out = NULL;
    return unimplemented(j->x->api, err, "unpack");
}

WEAK void
unpack_ready(unpacker_t *u, size_t layer)
{
}

WEAK void
unpack_cancel(unpacker_t *u)
{
}

WEAK int
unpack_finish(unpacker_t *u, berth_error_t **err)
{
    return 0;
}

WEAK int
manifest_parse(const berth_core_api_t *api, const char *media_type, const uint8_t *data, size_t len,
               oci_manifest_t *out, berth_error_t **err)
{
    memset(out, 0, sizeof(*out));
    return unimplemented(api, err, "manifest parsing");
}

WEAK void
manifest_free(oci_manifest_t *m)
{
}

WEAK int
config_diff_ids(const berth_core_api_t *api, const uint8_t *data, size_t len,
                char (**ids)[BERTH_DIGEST_MAX], size_t *n, berth_error_t **err)
{
    *ids = NULL;
    *n = 0;
    return unimplemented(api, err, "image config parsing");
}

WEAK int
platform_parse(const berth_core_api_t *api, const char *spec, oci_platform_t *out,
               berth_error_t **err)
{
    memset(out, 0, sizeof(*out));
    return unimplemented(api, err, "platform parsing");
}

WEAK void
platform_host(oci_platform_t *out)
{
    memset(out, 0, sizeof(*out));
    strcpy(out->os, "linux");
    strcpy(out->arch, "amd64");
}

WEAK int
platform_rank(const oci_platform_t *want, const oci_platform_t *have)
{
    return strcmp(want->os, have->os) == 0 && strcmp(want->arch, have->arch) == 0 ? 0 : -1;
}
