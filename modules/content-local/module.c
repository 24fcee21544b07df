/* SPDX-License-Identifier: Apache-2.0 */
/* content-local.so: the content store (io.containerd.content.v1.content) and the Content service. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

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
    .flags = BERTH_PLUGIN_ON_DEMAND,
};

/* ---- start-up reconciliation ------------------------------------------------------------------------ */

typedef struct missing {
    const berth_core_api_t *api;
    const berth_content_v1_ops_t *cso;
    void *cs;
    char **ns, **digest;
    size_t n;
} missing_t;

static int
note_missing(void *user, const char *ns, const berth_content_record_t *rec)
{
    missing_t *m = user;
    berth_blob_info_t info;
    berth_error_t *err = NULL;
    int rc = m->cso->info(m->cs, rec->digest, &info, &err);
    if (err)
        m->api->error_free(err);
    if (rc != BERTH_ENOTFOUND)
        return 0;
    m->ns = realloc(m->ns, (m->n + 1) * sizeof(char *));
    m->digest = realloc(m->digest, (m->n + 1) * sizeof(char *));
    m->ns[m->n] = strdup(ns);
    m->digest[m->n++] = strdup(rec->digest);
    return 0;
}

/* A record whose blob file is gone (lost with a disk, removed by hand) is a dangling reference: each
 * namespace's record goes, with a warning. Blobs without records are the garbage collector's; ingests stay
 * resumable. A failure here is logged: the service still starts. */
static void
reconcile(berth_init_ctx_t *ic, const berth_metadata_v1_ops_t *mdo, void *md,
          const berth_content_v1_ops_t *cso, void *cs)
{
    const berth_core_api_t *api = ic->api;
    if (mdo->struct_size <
        offsetof(berth_metadata_v1_ops_t, content_list_all) + sizeof(mdo->content_list_all)) {
        api->log(ic->log, BERTH_LOG_INFO,
                 "content records not reconciled: the metadata store cannot list them all");
        return;
    }
    missing_t m = {.api = api, .cso = cso, .cs = cs};
    berth_error_t *err = NULL;
    if (mdo->content_list_all(md, note_missing, &m, &err) < 0) {
        api->log(ic->log, BERTH_LOG_ERROR, "content records not reconciled: %s",
                 err ? err->message : "");
        if (err)
            api->error_free(err);
    }
    for (size_t i = 0; i < m.n; i++) {
        err = NULL;
        int rc = mdo->content_delete(md, m.ns[i], m.digest[i], &err);
        if (rc == 0)
            api->log(ic->log, BERTH_LOG_WARN,
                     "content record removed: its blob is missing namespace=%s digest=%s", m.ns[i],
                     m.digest[i]);
        else if (rc != BERTH_ENOTFOUND) /* NotFound: gone meanwhile */
            api->log(ic->log, BERTH_LOG_ERROR,
                     "content record of a missing blob not removed: %s namespace=%s digest=%s",
                     err ? err->message : "", m.ns[i], m.digest[i]);
        if (err)
            api->error_free(err);
        free(m.ns[i]);
        free(m.digest[i]);
    }
    free(m.ns);
    free(m.digest);
}

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
    reconcile(ic, md.ops, md.instance, cso, cs.instance);
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
    .flags = BERTH_PLUGIN_ON_DEMAND,
};

static const berth_plugin_reg_t *const content_plugins[] = {&store_plugin, &service_plugin, NULL};

BERTH_MODULE(content_local, .version = "0.1.0", .license = "Apache-2.0", .origin = "berth",
             .description = "content-addressed blobs on disk, with containerd's Content service",
             .plugins = content_plugins)
