/* SPDX-License-Identifier: Apache-2.0 */
/* content-local.so: the content store (io.containerd.content.v1.content) and the Content service. */
#include <stddef.h>
#include <stdlib.h>

#include "svc.h"

static int
store_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    cs_t *cs = calloc(1, sizeof(*cs));
    cs->api = ic->api;
    cs->log = ic->log;
    int rc = cs_open(cs, ic->root, err);
    if (rc < 0) {
        cs_close(cs);
        free(cs);
        return rc;
    }
    ic->api->export_set(ic, "root", ic->root);
    *instance = cs;
    return 0;
}

static void
store_fini(void *instance)
{
    cs_close(instance);
    free(instance);
}

static const berth_plugin_reg_t store_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_CONTENT_TYPE,
    .id = "content",
    .init = store_init,
    .fini = store_fini,
    .ops = &cs_ops,
};

static int
service_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    berth_instance_t md, cs;
    if (ic->api->get_single(ic, BERTH_METADATA_TYPE, &md, err) < 0 ||
        ic->api->get_single(ic, BERTH_CONTENT_TYPE, &cs, err) < 0)
        return err && *err ? (*err)->code : BERTH_EUNKNOWN;
    const berth_content_v1_ops_t *cso = cs.ops;
    if (cso->struct_size <
        offsetof(berth_content_v1_ops_t, writer_digest) + sizeof(cso->writer_digest))
        return ic->api->error_make(
            err, BERTH_EPRECONDITION,
            "content store: too old for the Content service (no writer_digest)");
    svc_t *s = calloc(1, sizeof(*s));
    s->api = ic->api;
    s->loop = ic->loop;
    s->md = md.instance;
    s->mdo = md.ops;
    s->cs = cs.instance;
    s->cso = cs.ops;
    pthread_mutex_init(&s->rel_lock, NULL);
    pthread_cond_init(&s->rel_cond, NULL);
    *instance = s;
    return 0;
}

static const char *const service_requires[] = {BERTH_METADATA_TYPE, BERTH_CONTENT_TYPE, NULL};

static const berth_plugin_reg_t service_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_GRPC_SERVICE_TYPE,
    .id = "content",
    .requires = service_requires,
    .init = service_init,
    .fini = svc_free,
    .ops = &content_service,
};

static const berth_plugin_reg_t *const content_plugins[] = {&store_plugin, &service_plugin, NULL};

BERTH_MODULE(content_local, .version = "0.1.0", .license = "Apache-2.0", .origin = "berth",
             .description = "content-addressed blobs on disk, with containerd's Content service",
             .plugins = content_plugins)
