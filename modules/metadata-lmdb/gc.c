/* SPDX-License-Identifier: Apache-2.0 */
/*
 * io.containerd.gc.v1.scheduler: runs the metadata store's mark and sweep after deletions (it polls the
 * store's dirty count every schedule_delay_ms), removes the blobs no namespace holds any more, and drops
 * ingests untouched for 24 hours that no lease holds.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <berth/content.h>
#include <berth/gc.h>

#include "records.h"
#include "services.h"
#include "clock.h"

#define INGEST_EXPIRY_NS (24LL * 3600 * 1000000000)

typedef struct gc {
    const berth_core_api_t *api;
    const berth_logger_t *log;
    void *md;
    const berth_metadata_v1_ops_t *mdo;
    void *cs;
    const berth_content_v1_ops_t *cso;
    pthread_mutex_t lock; /* one collection at a time */
    uv_timer_t *timer;
    uv_work_t work;
    int busy;
    int stopping;
    berth_gc_removed_t *sweepers;
    size_t n_sweepers;
} gc_t;

typedef struct removed_snapshot {
    char *ns, *snapshotter, *key;
} removed_snapshot_t;

typedef struct removed {
    char **digests;
    size_t n;
    removed_snapshot_t *snapshots;
    size_t n_snapshots;
} removed_t;

static void
note_removed(void *user, const char *digest)
{
    removed_t *r = user;
    r->digests = realloc(r->digests, (r->n + 1) * sizeof(char *));
    r->digests[r->n++] = strdup(digest);
}

/* Snapshot bytes belong to the snapshotters: the sweepers hear of each record once the transaction is
 * over. */
static void
note_snapshot(void *user, const char *ns, const char *snapshotter, const char *key)
{
    removed_t *r = user;
    r->snapshots = realloc(r->snapshots, (r->n_snapshots + 1) * sizeof(*r->snapshots));
    r->snapshots[r->n_snapshots++] =
        (removed_snapshot_t){strdup(ns), strdup(snapshotter), strdup(key)};
}

/* Only after a commit: when the collection failed (a full map, say) the records are all still there. */
static void
sweep_snapshots(gc_t *g, removed_t *r, int committed)
{
    for (size_t i = 0; i < r->n_snapshots; i++) {
        removed_snapshot_t *s = &r->snapshots[i];
        for (size_t j = 0; committed && j < g->n_sweepers; j++)
            if (g->sweepers[j].snapshot)
                g->sweepers[j].snapshot(g->sweepers[j].user, s->ns, s->snapshotter, s->key);
        free(s->ns);
        free(s->snapshotter);
        free(s->key);
    }
    free(r->snapshots);
}

static int
gc_add_sweeper(void *arg, const berth_gc_removed_t *sweeper, berth_error_t **err)
{
    gc_t *g = arg;
    (void)err;
    berth_gc_removed_t copy = {.struct_size = sizeof(copy)};
    memcpy(&copy, sweeper,
           sweeper->struct_size < sizeof(copy) ? sweeper->struct_size : sizeof(copy));
    pthread_mutex_lock(&g->lock);
    g->sweepers = realloc(g->sweepers, (g->n_sweepers + 1) * sizeof(*g->sweepers));
    g->sweepers[g->n_sweepers++] = copy;
    pthread_mutex_unlock(&g->lock);
    return 0;
}

static int
expire_ingest(void *user, const berth_ingest_status_t *st)
{
    gc_t *g = user;
    if (st->updated_ns > clock_now_ns() - INGEST_EXPIRY_NS)
        return 0;
    char ns[128];
    const char *slash = strchr(st->ref, '/');
    if (slash == NULL || (size_t)(slash - st->ref) >= sizeof(ns))
        return 0;
    memcpy(ns, st->ref, (size_t)(slash - st->ref));
    ns[slash - st->ref] = '\0';
    if (g->mdo->lease_holds(g->md, ns, "ingests", slash + 1, NULL) == 0)
        g->cso->ingest_abort(g->cs, st->ref, NULL);
    return 0;
}

static void
remove_blob(void *user, const char *digest)
{
    gc_t *g = user;
    g->cso->remove(g->cs, digest, NULL);
}

static int
gc_collect(void *arg, berth_error_t **err)
{
    gc_t *g = arg;
    removed_t r = {0};
    pthread_mutex_lock(&g->lock);
    berth_gc_removed_t hooks = {sizeof(hooks), &r, note_removed, note_snapshot};
    int rc = g->mdo->gc_collect(g->md, clock_now_ns(), &hooks, err);
    if (rc == 0)
        md_content_sweep(g->md, r.digests, r.n, remove_blob, g);
    for (size_t i = 0; i < r.n; i++)
        free(r.digests[i]);
    sweep_snapshots(g, &r, rc == 0);
    if (rc == 0)
        g->cso->ingest_list(g->cs, expire_ingest, g, NULL);
    pthread_mutex_unlock(&g->lock);
    if (rc == 0 && r.n + r.n_snapshots > 0)
        g->api->log(g->log, BERTH_LOG_DEBUG, "collected content=%zu snapshots=%zu", r.n,
                    r.n_snapshots);
    free(r.digests);
    return rc;
}

static void
run_collect(uv_work_t *req)
{
    gc_t *g = req->data;
    berth_error_t *err = NULL;
    if (gc_collect(g, &err) < 0) {
        g->api->log(g->log, BERTH_LOG_WARN, "garbage collection failed: %s",
                    err ? err->message : "");
        g->api->error_free(err);
    }
}

static void
gc_remove_sweeper(void *arg, void *user)
{
    gc_t *g = arg;
    pthread_mutex_lock(&g->lock);
    size_t kept = 0;
    for (size_t i = 0; i < g->n_sweepers; i++)
        if (g->sweepers[i].user != user)
            g->sweepers[kept++] = g->sweepers[i];
    g->n_sweepers = kept;
    pthread_mutex_unlock(&g->lock);
}

static void
gc_free(gc_t *g)
{
    pthread_mutex_destroy(&g->lock);
    free(g->sweepers);
    free(g);
}

static void
after_collect(uv_work_t *req, int status)
{
    gc_t *g = req->data;
    g->busy = 0;
    if (g->stopping)
        gc_free(g);
}

static void
on_tick(uv_timer_t *t)
{
    gc_t *g = t->data;
    if (g->busy || g->mdo->gc_dirty(g->md) == 0)
        return;
    g->busy = 1;
    g->work.data = g;
    uv_queue_work(t->loop, &g->work, run_collect, after_collect);
}

static const berth_gc_v1_ops_t gc_ops = {
    .struct_size = sizeof(berth_gc_v1_ops_t),
    .collect = gc_collect,
    .add_sweeper = gc_add_sweeper,
    .remove_sweeper = gc_remove_sweeper,
};

static const berth_config_field_t gc_config[] = {
    {"schedule_delay_ms", BERTH_CFG_INT, "100",
     "how often the collector looks for deletions to act on (0 disables background collection)"},
    {NULL, 0, NULL, NULL},
};

static int
gc_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    const berth_core_api_t *api = ic->api;
    berth_instance_t md, cs;
    int64_t delay;
    if (api->get_single(ic, BERTH_METADATA_TYPE, &md, err) < 0 ||
        api->get_single(ic, BERTH_CONTENT_TYPE, &cs, err) < 0 ||
        api->get_int(ic->config, "schedule_delay_ms", 100, &delay, err) < 0)
        return err && *err ? (*err)->code : BERTH_EUNKNOWN;
    gc_t *g = calloc(1, sizeof(*g));
    g->api = api;
    g->log = ic->log;
    g->md = md.instance;
    g->mdo = md.ops;
    g->cs = cs.instance;
    g->cso = cs.ops;
    pthread_mutex_init(&g->lock, NULL);
    if (delay > 0) {
        g->timer = calloc(1, sizeof(*g->timer));
        uv_timer_init(ic->loop, g->timer);
        g->timer->data = g;
        uv_timer_start(g->timer, on_tick, (uint64_t)delay, (uint64_t)delay);
    }
    *instance = g;
    return 0;
}

static void
gc_fini(void *instance)
{
    gc_t *g = instance;
    if (g->timer)
        uv_close((uv_handle_t *)g->timer, (uv_close_cb)free);
    /* a collection still running holds the lock; the metadata and content stores outlive it only if
     * we wait for it here */
    pthread_mutex_lock(&g->lock);
    pthread_mutex_unlock(&g->lock);
    g->stopping = 1;
    if (!g->busy)
        gc_free(g);
}

static const char *const gc_requires[] = {BERTH_METADATA_TYPE, BERTH_CONTENT_TYPE, NULL};

const berth_plugin_reg_t md_gc_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_GC_TYPE,
    .id = "scheduler",
    .requires = gc_requires,
    .config = gc_config,
    .init = gc_init,
    .fini = gc_fini,
    .ops = &gc_ops,
    .flags = BERTH_PLUGIN_ON_DEMAND,
};
