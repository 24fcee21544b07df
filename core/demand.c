/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Plugins on demand (abi/berth/module.h, "On demand"). At start a BERTH_PLUGIN_ON_DEMAND plugin is left
 * deferred unless something needs it at once; its module file is opened only when one of its plugins is
 * initialised. api->demand initialises deferred plugins later, on the loop thread: the ones asked for,
 * the deferred plugins they require (their init looks those up), and the rest of their modules.
 */
#include <glob.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "registry.h"
#include "util.h"

/* Does a start_if pattern of p match a path now? */
static int
has_waiting_work(const berth__registry_t *reg, const berth__plugin_t *p)
{
    for (size_t i = 0; p->reg.start_if && p->reg.start_if[i]; i++) {
        const char *pat = p->reg.start_if[i], *base;
        if (strncmp(pat, "root:", 5) == 0)
            base = reg->cfg->root, pat += 5;
        else if (strncmp(pat, "state:", 6) == 0)
            base = reg->cfg->state, pat += 6;
        else
            continue;
        cleanup_free char *full = berth__xasprintf("%s/%s/%s", base, p->uri, pat);
        glob_t g;
        int rc = glob(full, GLOB_NOSORT, NULL, &g);
        int found = rc == 0 && g.gl_pathc > 0;
        globfree(&g);
        if (found) {
            LOG_DEBUG("plugin %s starts now: %s exists", p->uri, full);
            return 1;
        }
    }
    return 0;
}

static int
deferrable(const berth__registry_t *reg, const berth__plugin_t *p)
{
    return p->status == BERTH_ST_PENDING && (p->reg.flags & BERTH_PLUGIN_ON_DEMAND) &&
           !berth__strv_contains((const char *const *)reg->cfg->required, p->uri) &&
           !has_waiting_work(reg, p);
}

/* Will p run (or, in a reload, does it run) with what it looked up at its init? */
static int
starts(const berth__plugin_t *p, const berth__registry_t *live)
{
    if (p->status == BERTH_ST_PENDING)
        return 1;
    if (live == NULL || p->status != BERTH_ST_DEFERRED)
        return 0;
    const berth__plugin_t *running = berth__registry_find(live, p->uri);
    return running && running->status == BERTH_ST_OK;
}

void
berth__defer_at_start(berth__registry_t *reg, const berth__registry_t *live)
{
    for (size_t i = 0; i < reg->nplugins; i++)
        if (deferrable(reg, reg->plugins[i]))
            berth__plugin_set_status(reg->plugins[i], BERTH_ST_DEFERRED, 0, "%s",
                                     "initialised on first use");
    /* what a starting plugin looks up at its init must be there: its deferred providers start too (and
     * theirs), unless it follows changes and hears of them when they arrive; an on-demand plugin that
     * starts brings the rest of its module, as a demand would */
    for (int grew = 1; grew;) {
        grew = 0;
        for (size_t i = 0; i < reg->nplugins; i++) {
            berth__plugin_t *p = reg->plugins[i];
            if (!starts(p, live))
                continue;
            int whole_module = (p->reg.flags & BERTH_PLUGIN_ON_DEMAND) && p->module != NULL;
            for (size_t j = 0; j < reg->nplugins; j++) {
                berth__plugin_t *q = reg->plugins[j];
                if (q->status != BERTH_ST_DEFERRED || (live && starts(q, live)))
                    continue;
                if ((whole_module && q->module == p->module) ||
                    (p->reg.on_change == NULL && berth__graph_depends(p, q))) {
                    berth__plugin_set_status(q, BERTH_ST_PENDING, 0, "%s", "");
                    grew = 1;
                }
            }
        }
    }
    /* a plugin running now stays so in a reload: its row in the next registry is not deferred */
    for (size_t i = 0; live && i < reg->nplugins; i++)
        if (starts(reg->plugins[i], live) && reg->plugins[i]->status == BERTH_ST_DEFERRED)
            berth__plugin_set_status(reg->plugins[i], BERTH_ST_PENDING, 0, "%s", "");
    if (live != NULL) /* a reload opens what it initialises as it goes */
        return;
    for (size_t i = 0; i < reg->nplugins; i++) {
        berth__plugin_t *p = reg->plugins[i];
        if (p->status == BERTH_ST_PENDING && p->module && p->module->handle == NULL)
            berth__loader_bind(reg, p->module);
    }
}

/* ---- api->demand --------------------------------------------------------------------------------- */

static berth__registry_t *demand_registry;

void
berth__demand_setup(berth__registry_t *reg)
{
    demand_registry = reg;
}

static int
matches(const berth__plugin_t *p, const char *type, const char *key)
{
    return p->status == BERTH_ST_DEFERRED && (type == NULL || strcmp(p->type, type) == 0) &&
           (key == NULL || (p->key && strcmp(p->key, key) == 0));
}

/* The set to initialise: the matches, their deferred providers and their modules' deferred plugins. */
static size_t
closure(berth__registry_t *reg, unsigned char *in, const char *type, const char *key)
{
    size_t asked = 0;
    for (size_t i = 0; i < reg->nplugins; i++)
        if ((in[i] = (unsigned char)matches(reg->plugins[i], type, key)))
            asked++;
    for (int grew = asked > 0; grew;) {
        grew = 0;
        for (size_t i = 0; i < reg->nplugins; i++) {
            const berth__plugin_t *p = reg->plugins[i];
            if (!in[i])
                continue;
            for (size_t j = 0; j < reg->nplugins; j++) {
                const berth__plugin_t *q = reg->plugins[j];
                if (in[j] || q->status != BERTH_ST_DEFERRED)
                    continue;
                if ((q->module && q->module == p->module) ||
                    (p->reg.on_change == NULL && berth__graph_depends(p, q))) {
                    in[j] = 1;
                    grew = 1;
                }
            }
        }
    }
    return asked;
}

void
berth__plugin_tell(berth__plugin_t *w, int what, const berth__plugin_t *provider,
                   const berth_reload_result_t *result)
{
    berth_instance_t inst = {0};
    if (provider)
        inst =
            (berth_instance_t){provider->type, provider->id, provider->instance, provider->reg.ops};
    berth_change_t ch = {sizeof(ch), what, provider ? &inst : NULL, result};
    w->reg.on_change(w->instance, &ch);
}

static void
tell_added(berth__registry_t *reg, const berth__plugin_t *p)
{
    for (size_t i = 0; i < reg->norder; i++) {
        berth__plugin_t *w = reg->order[i];
        if (w != p && w->status == BERTH_ST_OK && w->reg.on_change && berth__graph_depends(w, p))
            berth__plugin_tell(w, BERTH_CHANGE_ADDED, p, NULL);
    }
}

int
berth__demand(const char *type, const char *key, berth_error_t **err)
{
    berth__registry_t *reg = demand_registry;
    if (reg == NULL)
        return berth__error_make(err, BERTH_EUNAVAILABLE, "demand: the daemon is not running");
    cleanup_free unsigned char *in = berth__xcalloc(reg->nplugins + 1, 1);
    cleanup_free unsigned char *asked = berth__xcalloc(reg->nplugins + 1, 1);
    for (size_t i = 0; i < reg->nplugins; i++)
        asked[i] = (unsigned char)matches(reg->plugins[i], type, key);
    if (closure(reg, in, type, key) == 0)
        return 0;
    int started = 0;
    const berth__plugin_t *failed = NULL;
    reg->fatal = 0;
    for (size_t i = 0; i < reg->norder; i++) {
        berth__plugin_t *p = reg->order[i];
        size_t k = 0;
        while (k < reg->nplugins && reg->plugins[k] != p)
            k++;
        if (k == reg->nplugins || !in[k] || p->status != BERTH_ST_DEFERRED)
            continue;
        berth__plugin_set_status(p, BERTH_ST_PENDING, 0, "%s", "");
        if (berth__graph_check_deps(reg, p, 1) < 0) {
            LOG_WARN("not loading plugin %s: %s", p->uri, p->reason);
        } else {
            LOG_INFO("loading plugin %s on first use", p->uri);
            berth__init_one(reg, p);
        }
        if (p->status == BERTH_ST_OK) {
            started++;
            tell_added(reg, p);
        } else if (asked[k] && p->status != BERTH_ST_SKIP && failed == NULL) {
            failed = p;
        }
    }
    reg->fatal = 0; /* readiness was said long ago: a failed init here is reported, not fatal */
    /* as after a start where it failed: what it would serve is not served (containerd answers a service
     * whose plugin did not load with Unimplemented); the first asker also learns why. A skip is no
     * failure: the plugin does not apply here. */
    if (failed != NULL && started == 0)
        return berth__error_make(err, BERTH_ENOTIMPL, "plugin %s: %s: %s", failed->uri,
                                 berth__status_name(failed->status), failed->reason);
    return started;
}
