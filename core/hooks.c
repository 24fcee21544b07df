/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hook dispatch (abi/berth/hooks.h). Handlers are registered on the loop thread during init and may be
 * invoked from pool threads, so the table is guarded by a read-write lock.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "registry.h"
#include "util.h"

typedef struct handler {
    berth__plugin_t *plugin;
    int priority;
    unsigned seq;
    berth_hook_fn fn;
    void *user;
} handler_t;

static const struct point_info {
    const char *name;
    berth_hook_mode_t mode;
} points[BERTH_HOOK_POINT_COUNT] = {
    [BERTH_HOOK_DAEMON_PRE_START] = {"daemon.pre-start", BERTH_HOOK_VETO},
    [BERTH_HOOK_DAEMON_PRE_STOP] = {"daemon.pre-stop", BERTH_HOOK_ADVISORY},
    [BERTH_HOOK_CONTAINER_PRE_CREATE] = {"container.pre-create", BERTH_HOOK_MUTATING},
    [BERTH_HOOK_CONTAINER_PRE_START] = {"container.pre-start", BERTH_HOOK_MUTATING},
    [BERTH_HOOK_CONTAINER_PRE_UPDATE] = {"container.pre-update", BERTH_HOOK_MUTATING},
    [BERTH_HOOK_CONTAINER_POST_UPDATE] = {"container.post-update", BERTH_HOOK_VETO},
    [BERTH_HOOK_IMAGE_POST_PULL] = {"image.post-pull", BERTH_HOOK_VETO},
    [BERTH_HOOK_VOLUME_PRE_CREATE] = {"volume.pre-create", BERTH_HOOK_MUTATING},
    [BERTH_HOOK_ENDPOINT_PRE_CREATE] = {"endpoint.pre-create", BERTH_HOOK_MUTATING},
    [BERTH_HOOK_CRI_PRE_CREATE_CONTAINER] = {"cri.pre-create-container", BERTH_HOOK_MUTATING},
    [BERTH_HOOK_API_HANDLER_UPDATE] = {"api.handler-update", BERTH_HOOK_MUTATING},
};

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static handler_t *table[BERTH_HOOK_POINT_COUNT];
static size_t count[BERTH_HOOK_POINT_COUNT];
static unsigned next_seq;

const char *
berth__hook_point_name(berth_hook_point_t point)
{
    return (unsigned)point < BERTH_HOOK_POINT_COUNT ? points[point].name : "unknown";
}

berth_hook_mode_t
berth__hook_mode(berth_hook_point_t point)
{
    return (unsigned)point < BERTH_HOOK_POINT_COUNT ? points[point].mode : 0;
}

/* priority (higher first), then config position of the plugin, then init order, then registration */
static int
runs_before(const handler_t *a, const handler_t *b)
{
    if (a->priority != b->priority)
        return a->priority > b->priority;
    if (a->plugin->config_position != b->plugin->config_position)
        return a->plugin->config_position < b->plugin->config_position;
    if (a->plugin->init_order != b->plugin->init_order)
        return a->plugin->init_order < b->plugin->init_order;
    return a->seq < b->seq;
}

int
berth__hook_register(berth_init_ctx_t *ic, berth_hook_point_t point, int priority, berth_hook_fn fn,
                     void *user, berth_error_t **err)
{
    if ((unsigned)point >= BERTH_HOOK_POINT_COUNT)
        return berth__error_make(err, BERTH_EINVAL, "hook point %d does not exist", (int)point);
    if (fn == NULL || ic == NULL)
        return berth__error_make(err, BERTH_EINVAL, "hook %s: no handler function",
                                 berth__hook_point_name(point));
    handler_t h = {((berth__initctx_t *)ic)->plugin, priority, 0, fn, user};
    pthread_rwlock_wrlock(&lock);
    h.seq = next_seq++;
    table[point] = berth__xrealloc(table[point], (count[point] + 1) * sizeof(handler_t));
    size_t at = count[point];
    while (at > 0 && runs_before(&h, &table[point][at - 1])) {
        table[point][at] = table[point][at - 1];
        at--;
    }
    table[point][at] = h;
    count[point]++;
    pthread_rwlock_unlock(&lock);
    return 0;
}

int
berth__hook_invoke(berth_hook_point_t point, void *payload, berth_error_t **err)
{
    if ((unsigned)point >= BERTH_HOOK_POINT_COUNT)
        return berth__error_make(err, BERTH_EINVAL, "hook point %d does not exist", (int)point);
    berth_hook_mode_t mode = points[point].mode;
    int rc = 0;
    pthread_rwlock_rdlock(&lock);
    for (size_t i = 0; i < count[point]; i++) {
        handler_t *h = &table[point][i];
        berth_error_t *herr = NULL;
        int hrc = h->fn(h->user, point, payload, &herr);
        if (hrc == 0) {
            berth__error_free(herr);
            continue;
        }
        if (mode == BERTH_HOOK_VETO || mode == BERTH_HOOK_MUTATING) {
            if (herr == NULL)
                berth__error_make(&herr, hrc, "handler failed");
            if (err) {
                *err = herr;
                berth__error_wrap(err, "%s hook of %s", points[point].name, h->plugin->uri);
            } else {
                berth__error_free(herr);
            }
            rc = hrc;
            break;
        }
        __atomic_add_fetch(&h->plugin->hook_failures, 1, __ATOMIC_RELAXED);
        berth__log(&h->plugin->logger, BERTH_LOG_WARN, "%s hook failed: %s", points[point].name,
                   berth__error_msg(herr));
        berth__error_free(herr);
    }
    pthread_rwlock_unlock(&lock);
    return rc;
}

void
berth__hook_forget(const berth__plugin_t *p)
{
    pthread_rwlock_wrlock(&lock);
    for (size_t pt = 0; pt < BERTH_HOOK_POINT_COUNT; pt++) {
        size_t kept = 0;
        for (size_t i = 0; i < count[pt]; i++)
            if (table[pt][i].plugin != p)
                table[pt][kept++] = table[pt][i];
        count[pt] = kept;
        if (kept == 0) {
            free(table[pt]);
            table[pt] = NULL;
        }
    }
    pthread_rwlock_unlock(&lock);
}

void
berth__hook_foreach_of(const berth__plugin_t *p,
                       void (*cb)(void *user, berth_hook_point_t point, int priority), void *user)
{
    pthread_rwlock_rdlock(&lock);
    for (size_t pt = 0; pt < BERTH_HOOK_POINT_COUNT; pt++)
        for (size_t i = 0; i < count[pt]; i++)
            if (table[pt][i].plugin == p)
                cb(user, (berth_hook_point_t)pt, table[pt][i].priority);
    pthread_rwlock_unlock(&lock);
}

void
berth__hooks_reset(void)
{
    pthread_rwlock_wrlock(&lock);
    for (size_t pt = 0; pt < BERTH_HOOK_POINT_COUNT; pt++) {
        free(table[pt]);
        table[pt] = NULL;
        count[pt] = 0;
    }
    pthread_rwlock_unlock(&lock);
}
