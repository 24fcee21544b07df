/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reload (module.h, "Reload"): SIGHUP or api->reload re-reads the config the daemon started from (the same
 * file, --set values and flags), builds and validates a whole new registry beside the live one (a refused
 * config changes nothing), then applies the difference to the live registry on the loop thread:
 *   1. decide, per plugin: disable (finished, now disabled or gone from its file), reload (finished and
 *      initialised again: its section changed, its file was replaced, or a provider it holds is finished or
 *      newly enabled), enable (newly enabled, or not running and worth another try);
 *   2. finish, in reverse init order, telling plugins that follow their providers (on_change) first;
 *   3. adopt the new config and the new rows, order everything again, initialise the pending plugins in
 *      order, telling on_change plugins of each new provider;
 *   4. report what changed to the requester and to every on_change plugin.
 * BERTH_PLUGIN_NO_RELOAD plugins are never finished: a change that needs it is reported as needing a restart.
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "error.h"
#include "log.h"
#include "util.h"

typedef enum action { ACT_NONE = 0, ACT_DISABLE, ACT_RELOAD, ACT_ENABLE } action_t;

typedef struct request {
    void (*done)(void *user, const berth_reload_result_t *result);
    void *user;
    struct request *next;
} request_t;

static struct {
    berth__registry_t *reg;
    const berth__opts_t *opts;
    berth__config_t **old_cfgs; /* plugins initialised with them may still read them */
    size_t nold;
    request_t *queue; /* waiting for the next reload */
    int scheduled, running;
    unsigned generation;
} R;

/* ---- the result ----------------------------------------------------------------------------------- */

typedef struct result {
    int code;
    char *message;
    char **enabled, **disabled, **reloaded, **failed, **restart_needed;
} result_t;

static void
result_free(result_t *r)
{
    free(r->message);
    berth__strv_free(r->enabled);
    berth__strv_free(r->disabled);
    berth__strv_free(r->reloaded);
    berth__strv_free(r->failed);
    berth__strv_free(r->restart_needed);
}

static void push_fmt(char ***v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
push_fmt(char ***v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = berth__xvasprintf(fmt, ap);
    va_end(ap);
    berth__strv_push(v, s);
    free(s);
}

static const char *const empty_list[] = {NULL};

static const char *const *
view(char **v)
{
    return v ? (const char *const *)v : empty_list;
}

static void
result_view(const result_t *r, berth_reload_result_t *out)
{
    *out = (berth_reload_result_t){
        .struct_size = sizeof(*out),
        .code = r->code,
        .message = r->message ? r->message : "",
        .enabled = view(r->enabled),
        .disabled = view(r->disabled),
        .reloaded = view(r->reloaded),
        .failed = view(r->failed),
        .restart_needed = view(r->restart_needed),
    };
}

/* ---- comparing configs ----------------------------------------------------------------------------- */

static int
node_equal(const berth_config_node_t *a, const berth_config_node_t *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (a->kind != b->kind || a->n != b->n)
        return 0;
    if (a->kind == BERTH_CONFIG_SCALAR)
        return strcmp(a->text ? a->text : "", b->text ? b->text : "") == 0;
    for (size_t i = 0; i < a->n; i++) {
        if (a->kind == BERTH_CONFIG_MAP && strcmp(a->keys[i], b->keys[i]) != 0)
            return 0;
        if (!node_equal(a->items[i], b->items[i]))
            return 0;
    }
    return 1;
}

static int
str_equal(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Top-level keys: logging applies now; the rest needs a restart. */
static void
compare_top_level(const berth__config_t *old, const berth__config_t *new, result_t *res)
{
    if (!str_equal(old->root, new->root))
        push_fmt(&res->restart_needed, "root: %s -> %s needs a restart", old->root, new->root);
    if (!str_equal(old->state, new->state))
        push_fmt(&res->restart_needed, "state: %s -> %s needs a restart", old->state, new->state);
    if (old->thread_pool_size != new->thread_pool_size)
        push_fmt(&res->restart_needed, "thread_pool_size: %d -> %d needs a restart",
                 old->thread_pool_size, new->thread_pool_size);
    if (old->log_level != new->log_level || old->log_format != new->log_format)
        berth__log_setup(new->log_level, new->log_format);
}

/* ---- building the next registry --------------------------------------------------------------------- */

/* Frees a registry built for a reload, except what the live one shares or adopted (set to NULL). */
static void
next_free(berth__registry_t *next, berth__config_t *cfg)
{
    size_t kept = 0;
    for (size_t i = 0; i < next->nmodules; i++) {
        int shared = 0;
        for (size_t j = 0; j < R.reg->nmodules && !shared; j++)
            shared = R.reg->modules[j] == next->modules[i];
        if (!shared && next->modules[i] != NULL)
            next->modules[kept++] = next->modules[i];
    }
    next->nmodules = kept;
    size_t rows = 0;
    for (size_t i = 0; i < next->nplugins; i++)
        if (next->plugins[i] != NULL)
            next->plugins[rows++] = next->plugins[i];
    next->nplugins = rows;
    berth__registry_free(next);
    if (cfg) {
        berth__config_free(cfg);
        free(cfg);
    }
}

/* The config as the daemon would start with it now, and every plugin row it gives; statically checked. */
static int
build_next(berth__registry_t *next, berth__config_t **cfg_out, berth_error_t **err)
{
    berth__config_t *cfg = berth__xcalloc(1, sizeof(*cfg));
    berth__registry_init(next, cfg, R.reg->loop);
    *cfg_out = cfg;
    if (berth__config_from_opts(cfg, R.opts, err) < 0)
        return -1;
    cleanup_free char *copies = berth__xasprintf("%s/berthd-modules", R.reg->cfg->state);
    cleanup_free char *cache = berth__module_list_cache(R.reg->cfg->state);
    berth__load_opts_t lo = {.builtin_dir = R.opts->builtin_dir,
                             .probe = R.opts->probe,
                             .reuse = R.reg,
                             .copy_dir = copies,
                             .list_cache = cache};
    berth__loader_scan(next, &lo);
    const char **uris = berth__registry_uris(next);
    int rc = berth__config_resolve_plugin_sets(cfg, uris, err);
    if (rc == 0)
        rc = berth__config_check_plugin_uris(cfg, uris, err);
    free(uris);
    for (size_t i = 0; i < next->nplugins; i++)
        next->plugins[i]->config_position =
            berth__config_plugin_position(cfg, next->plugins[i]->uri);
    if (rc == 0)
        rc = berth__registry_validate_config(next, err);
    if (rc < 0)
        return -1;
    berth__graph_resolve(next);
    berth__defer_at_start(next, R.reg);
    return berth__registry_check_required(next, err);
}

/* ---- deciding --------------------------------------------------------------------------------------- */

typedef struct plan {
    berth__registry_t *next;
    size_t n;                  /* live rows, then next-only rows */
    berth__plugin_t **row;     /* the live row (NULL for next-only) */
    berth__plugin_t **counter; /* its row in next (NULL: gone) */
    action_t *act;
    unsigned char *was_ok;       /* running before the reload */
    unsigned char *now_deferred; /* enabled by this reload, to start on first use */
    char **why;                  /* for a disable: the reason its row gets */
} plan_t;

static berth__plugin_t *
subject(const plan_t *pl, size_t i)
{
    return pl->row[i] ? pl->row[i] : pl->counter[i];
}

static int
is_module_row(const berth__plugin_t *p)
{
    return strcmp(p->type, BERTH_MODULE_ROW_TYPE) == 0;
}

/* Does a depend on b, by the graph's rule? Module-file rows have no dependencies. */
static int
depends(const berth__plugin_t *a, const berth__plugin_t *b)
{
    return !is_module_row(a) && !is_module_row(b) && berth__graph_depends(a, b);
}

static void
plan_add(plan_t *pl, berth__plugin_t *row, berth__plugin_t *counter)
{
    size_t i = pl->n++;
    pl->row[i] = row;
    pl->counter[i] = counter;
    pl->was_ok[i] = row && row->status == BERTH_ST_OK;
}

/* The next registry's row for a module file that failed its checks, if this path is one. */
static const berth__plugin_t *
broken_file(const berth__registry_t *next, const char *path)
{
    for (size_t i = 0; i < next->nplugins; i++) {
        const berth__plugin_t *q = next->plugins[i];
        if (is_module_row(q) && q->module && strcmp(q->module->path, path) == 0)
            return q;
    }
    return NULL;
}

static void
decide_one(plan_t *pl, size_t i, result_t *res)
{
    berth__plugin_t *p = pl->row[i], *q = pl->counter[i];
    if (q && q->status == BERTH_ST_DEFERRED && (p == NULL || p->status == BERTH_ST_DISABLED))
        pl->now_deferred[i] = 1;
    if (p == NULL) { /* a row only the new config has: a new file, or a new registration */
        pl->act[i] = q->status == BERTH_ST_PENDING ? ACT_ENABLE : ACT_NONE;
        return;
    }
    if (p->status != BERTH_ST_OK) {
        /* disabled before, failed (its cause may be fixed), or changed: try it; a skip that nothing
         * changed would skip again, and trying it would take its dependents down for nothing; one
         * without a dependency waits for a provider to change (wake_waiting) */
        int changed =
            q && (!node_equal(p->ic.pub.config, q->ic.pub.config) || q->module != p->module);
        int worth = p->status == BERTH_ST_DISABLED || p->status == BERTH_ST_ERROR ||
                    p->status == BERTH_ST_DEFERRED || changed;
        pl->act[i] = q && q->status == BERTH_ST_PENDING && worth ? ACT_ENABLE : ACT_NONE;
        return;
    }
    const berth__plugin_t *broken =
        q == NULL && p->module ? broken_file(pl->next, p->module->path) : NULL;
    if (broken != NULL) {
        push_fmt(&res->failed, "%s: %s: %s (still running the code loaded before)", p->uri,
                 p->module->path, broken->reason);
    } else if (q == NULL) {
        pl->act[i] = ACT_DISABLE;
        pl->why[i] = berth__xasprintf("no longer provided by %s",
                                      p->module ? p->module->path : "any module");
    } else if (q->status == BERTH_ST_DISABLED) {
        pl->act[i] = ACT_DISABLE;
        pl->why[i] = berth__xstrdup(q->reason);
    } else if (q->status == BERTH_ST_ABI_ERROR) {
        push_fmt(&res->failed, "%s: %s (still running the code loaded before)", p->uri, q->reason);
    } else if (!node_equal(p->ic.pub.config, q->ic.pub.config) || q->module != p->module) {
        pl->act[i] = ACT_RELOAD;
    }
}

/* A plugin that lacked a dependency is tried again when a provider it needs is enabled or reinitialised. */
static void
wake_waiting(plan_t *pl)
{
    for (int grew = 1; grew;) {
        grew = 0;
        for (size_t i = 0; i < pl->n; i++) {
            berth__plugin_t *p = pl->row[i], *q = pl->counter[i];
            if (pl->act[i] != ACT_NONE || p == NULL || p->status != BERTH_ST_DEP_UNAVAILABLE ||
                q == NULL || q->status != BERTH_ST_PENDING)
                continue;
            for (size_t j = 0; j < pl->n && pl->act[i] == ACT_NONE; j++)
                if ((pl->act[j] == ACT_ENABLE || pl->act[j] == ACT_RELOAD) &&
                    depends(p, subject(pl, j)))
                    pl->act[i] = ACT_ENABLE;
            grew |= pl->act[i] != ACT_NONE;
        }
    }
}

/* Whoever depends on a plugin being finished or enabled is finished and initialised again with it, unless
 * it follows changes itself. Returns the index of a NO_RELOAD plugin that would have to be, or -1. */
static ssize_t
spread(plan_t *pl)
{
    for (int grew = 1; grew;) {
        grew = 0;
        for (size_t i = 0; i < pl->n; i++) {
            if (pl->act[i] == ACT_NONE)
                continue;
            for (size_t j = 0; j < pl->n; j++) {
                berth__plugin_t *d = pl->row[j];
                if (pl->act[j] != ACT_NONE || d == NULL || d->status != BERTH_ST_OK ||
                    d->reg.on_change != NULL || !depends(d, subject(pl, i)))
                    continue;
                if (d->reg.flags & BERTH_PLUGIN_NO_RELOAD)
                    return (ssize_t)j;
                pl->act[j] = ACT_RELOAD;
                grew = 1;
            }
        }
    }
    return -1;
}

/* Drops changes that would finish a NO_RELOAD plugin, one root at a time, until none would. */
static void
keep_no_reload_running(plan_t *pl, result_t *res)
{
    action_t *wanted = berth__xcalloc(pl->n + 1, sizeof(*wanted));
    memcpy(wanted, pl->act, pl->n * sizeof(*wanted));
    for (size_t i = 0; i < pl->n; i++) {
        berth__plugin_t *p = pl->row[i];
        if (pl->act[i] != ACT_NONE && p && p->status == BERTH_ST_OK &&
            (p->reg.flags & BERTH_PLUGIN_NO_RELOAD)) {
            push_fmt(&res->restart_needed, "%s: changed; it cannot be reloaded (%s)", p->uri,
                     "BERTH_PLUGIN_NO_RELOAD");
            wanted[i] = pl->act[i] = ACT_NONE;
        }
    }
    for (;;) {
        ssize_t blocker = spread(pl);
        if (blocker < 0)
            break;
        /* find a root whose closure alone reaches the blocker, and hold it back */
        for (size_t i = 0; i < pl->n; i++) {
            if (wanted[i] == ACT_NONE)
                continue;
            memset(pl->act, 0, pl->n * sizeof(*pl->act));
            pl->act[i] = wanted[i];
            if (spread(pl) >= 0) {
                push_fmt(&res->restart_needed,
                         "%s: needs a restart: %s depends on it and cannot be reloaded",
                         subject(pl, i)->uri, pl->row[blocker]->uri);
                wanted[i] = ACT_NONE;
                break;
            }
        }
        memcpy(pl->act, wanted, pl->n * sizeof(*wanted));
    }
    free(wanted);
}

static void
plan_build(plan_t *pl, berth__registry_t *next, result_t *res)
{
    berth__registry_t *reg = R.reg;
    size_t cap = reg->nplugins + next->nplugins + 1;
    pl->next = next;
    pl->row = berth__xcalloc(cap, sizeof(*pl->row));
    pl->counter = berth__xcalloc(cap, sizeof(*pl->counter));
    pl->act = berth__xcalloc(cap, sizeof(*pl->act));
    pl->was_ok = berth__xcalloc(cap, 1);
    pl->now_deferred = berth__xcalloc(cap, 1);
    pl->why = berth__xcalloc(cap, sizeof(*pl->why));
    for (size_t i = 0; i < reg->nplugins; i++)
        if (!is_module_row(reg->plugins[i]))
            plan_add(pl, reg->plugins[i], berth__registry_find(next, reg->plugins[i]->uri));
    for (size_t i = 0; i < next->nplugins; i++) {
        berth__plugin_t *q = next->plugins[i];
        if (!is_module_row(q) && berth__registry_find(reg, q->uri) == NULL)
            plan_add(pl, NULL, q);
    }
    for (size_t i = 0; i < pl->n; i++)
        decide_one(pl, i, res);
    wake_waiting(pl);
    keep_no_reload_running(pl, res);
}

static void
plan_free(plan_t *pl)
{
    for (size_t i = 0; i < pl->n; i++)
        free(pl->why[i]);
    free(pl->row);
    free(pl->counter);
    free(pl->act);
    free(pl->was_ok);
    free(pl->now_deferred);
    free(pl->why);
}

/* ---- applying ---------------------------------------------------------------------------------------- */

/* on_change plugins that depend on p and keep running hear of it. */
static void
tell_followers(berth__registry_t *reg, const plan_t *pl, const berth__plugin_t *p, int what)
{
    for (size_t i = 0; i < reg->norder; i++) {
        berth__plugin_t *w = reg->order[i];
        if (w->status != BERTH_ST_OK || w->reg.on_change == NULL || !depends(w, p))
            continue;
        int leaving = 0;
        for (size_t j = 0; j < pl->n && !leaving; j++)
            leaving = pl->row[j] == w && pl->act[j] != ACT_NONE;
        if (!leaving)
            berth__plugin_tell(w, what, p, NULL);
    }
}

static action_t
action_of(const plan_t *pl, const berth__plugin_t *p)
{
    for (size_t i = 0; i < pl->n; i++)
        if (pl->row[i] == p)
            return pl->act[i];
    return ACT_NONE;
}

static void
finish(berth__registry_t *reg, const plan_t *pl)
{
    for (size_t i = reg->norder; i-- > 0;) {
        berth__plugin_t *p = reg->order[i];
        action_t a = action_of(pl, p);
        if (p->status != BERTH_ST_OK || (a != ACT_DISABLE && a != ACT_RELOAD))
            continue;
        tell_followers(reg, pl, p, BERTH_CHANGE_REMOVING);
        LOG_INFO("reload: stopping plugin %s", p->uri);
        berth__hook_forget(p);
        if (p->reg.fini)
            p->reg.fini(p->instance);
        p->instance = NULL;
        free((char *)p->ic.pub.root);
        free((char *)p->ic.pub.state);
        p->ic.pub.root = p->ic.pub.state = NULL;
        berth__strv_free(p->export_keys);
        berth__strv_free(p->export_values);
        berth__strv_free(p->capabilities);
        p->export_keys = p->export_values = p->capabilities = NULL;
        p->ready_tokens = 0;
        p->init_order = 0;
        berth__plugin_set_status(p, BERTH_ST_PENDING, 0, "%s", "");
    }
}

static void
copy_status(berth__plugin_t *p, const berth__plugin_t *q)
{
    berth__plugin_set_status(p, q->status, q->error_code, "%s", q->reason);
}

/* Moves the next registry's row q into the live one. */
static void
adopt_row(berth__registry_t *reg, berth__registry_t *next, berth__plugin_t *q)
{
    for (size_t i = 0; i < next->nplugins; i++)
        if (next->plugins[i] == q)
            next->plugins[i] = NULL;
    reg->plugins = berth__xrealloc(reg->plugins, (reg->nplugins + 1) * sizeof(*reg->plugins));
    reg->plugins[reg->nplugins++] = q;
}

static void
drop_row(berth__registry_t *reg, berth__plugin_t *p)
{
    size_t kept = 0;
    for (size_t i = 0; i < reg->nplugins; i++)
        if (reg->plugins[i] != p)
            reg->plugins[kept++] = reg->plugins[i];
    reg->nplugins = kept;
    kept = 0;
    for (size_t i = 0; i < reg->norder; i++)
        if (reg->order[i] != p)
            reg->order[kept++] = reg->order[i];
    reg->norder = kept;
    berth__plugin_free(p);
}

/* The live registry takes the new config, the next registry's module files and its rows' state. */
static void
merge(berth__registry_t *reg, berth__config_t *cfg, plan_t *pl)
{
    berth__registry_t *next = pl->next;
    /* the old config stays alive: a plugin left running may hold strings of its section */
    berth__config_t *old = berth__xmalloc(sizeof(*old));
    *old = *reg->cfg;
    *reg->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    R.old_cfgs = berth__xrealloc(R.old_cfgs, (R.nold + 1) * sizeof(*R.old_cfgs));
    R.old_cfgs[R.nold++] = old;
    for (size_t i = 0; i < next->nmodules; i++) {
        int shared = 0;
        for (size_t j = 0; j < reg->nmodules && !shared; j++)
            shared = reg->modules[j] == next->modules[i];
        if (!shared) {
            reg->modules =
                berth__xrealloc(reg->modules, (reg->nmodules + 1) * sizeof(*reg->modules));
            reg->modules[reg->nmodules++] = next->modules[i];
        }
        next->modules[i] = NULL;
    }
    for (size_t i = 0; i < pl->n; i++) {
        berth__plugin_t *p = pl->row[i], *q = pl->counter[i];
        if (p == NULL) {
            adopt_row(reg, next, q);
            continue;
        }
        if (q == NULL) {
            if (pl->act[i] == ACT_DISABLE)
                berth__plugin_set_status(p, BERTH_ST_DISABLED, 0, "%s", pl->why[i]);
            continue; /* dropped below, once the lists are built */
        }
        p->config_position = q->config_position;
        p->ic.pub.config = q->ic.pub.config;
        if (pl->act[i] == ACT_RELOAD || pl->act[i] == ACT_ENABLE) {
            p->module = q->module; /* a replaced file is picked up by what is (re)initialised */
            p->reg = q->reg;
            p->key = q->key;
            berth__plugin_set_status(p, BERTH_ST_PENDING, 0, "%s", "");
        } else if (pl->act[i] == ACT_DISABLE || p->status != BERTH_ST_OK) {
            if (p->status != BERTH_ST_OK) { /* not running: it follows its file as it is now */
                p->module = q->module;
                p->reg = q->reg;
                p->key = q->key;
            }
            copy_status(p, q);
            if (pl->act[i] == ACT_DISABLE && pl->why[i])
                berth__plugin_set_status(p, BERTH_ST_DISABLED, 0, "%s", pl->why[i]);
        }
    }
    /* rows for module files that failed their checks: the new scan's */
    for (size_t i = reg->nplugins; i-- > 0;)
        if (is_module_row(reg->plugins[i]))
            drop_row(reg, reg->plugins[i]);
    for (size_t i = 0; i < next->nplugins; i++)
        if (next->plugins[i] && is_module_row(next->plugins[i]))
            adopt_row(reg, next, next->plugins[i]);
}

/* Initialises the pending plugins in order; on_change plugins hear of each new one. */
static void
init_pending(berth__registry_t *reg, const plan_t *pl)
{
    reg->fatal = 0;
    for (size_t i = 0; i < reg->norder; i++) {
        berth__plugin_t *p = reg->order[i];
        if (p->status != BERTH_ST_PENDING)
            continue;
        if (berth__graph_check_deps(reg, p, 1) < 0) {
            LOG_WARN("reload: not loading plugin %s: %s", p->uri, p->reason);
            continue;
        }
        LOG_INFO("reload: loading plugin %s", p->uri);
        berth__init_one(reg, p);
        if (p->status == BERTH_ST_OK)
            tell_followers(reg, pl, p, BERTH_CHANGE_ADDED);
    }
    reg->fatal = 0; /* readiness was said long ago: a failed init here is reported, not fatal */
}

static void
list_outcome(const plan_t *pl, result_t *res)
{
    for (size_t i = 0; i < pl->n; i++) {
        berth__plugin_t *p = subject(pl, i);
        int ok = p->status == BERTH_ST_OK;
        switch (pl->act[i]) {
        case ACT_DISABLE:
            berth__strv_push(&res->disabled, p->uri);
            break;
        case ACT_RELOAD:
            if (ok)
                berth__strv_push(&res->reloaded, p->uri);
            break;
        case ACT_ENABLE:
            if (ok)
                berth__strv_push(&res->enabled, p->uri);
            break;
        case ACT_NONE:
            if (pl->now_deferred[i] && p->status == BERTH_ST_DEFERRED)
                berth__strv_push(&res->enabled, p->uri);
            break;
        }
        /* a plugin that ran and no longer does, or that was asked to start and did not; one whose
         * provider was disabled on purpose is disabled with it */
        if (!ok && pl->act[i] == ACT_RELOAD &&
            (p->status == BERTH_ST_SKIP ||
             (p->status == BERTH_ST_DEP_UNAVAILABLE && p->root_cause &&
              strstr(p->root_cause, ": disabled: "))))
            berth__strv_push(&res->disabled, p->uri);
        else if (!ok && pl->act[i] == ACT_RELOAD)
            push_fmt(&res->failed, "%s: %s: %s", p->uri, berth__status_name(p->status), p->reason);
        else if (!ok && pl->act[i] == ACT_ENABLE && p->status != BERTH_ST_SKIP &&
                 (pl->row[i] == NULL || pl->row[i]->status != BERTH_ST_DISABLED))
            push_fmt(&res->failed, "%s: %s: %s", p->uri, berth__status_name(p->status), p->reason);
    }
}

static void
summarise(result_t *res)
{
    size_t e = berth__strv_len((const char *const *)res->enabled),
           d = berth__strv_len((const char *const *)res->disabled),
           r = berth__strv_len((const char *const *)res->reloaded),
           f = berth__strv_len((const char *const *)res->failed),
           n = berth__strv_len((const char *const *)res->restart_needed);
    res->message = berth__xasprintf(
        "reloaded: %zu enabled, %zu disabled, %zu reinitialised, %zu failed, %zu need a restart", e,
        d, r, f, n);
}

static void
apply(berth__registry_t *next, berth__config_t *cfg, result_t *res)
{
    berth__registry_t *reg = R.reg;
    plan_t pl = {0};
    compare_top_level(reg->cfg, cfg, res);
    plan_build(&pl, next, res);
    finish(reg, &pl);
    merge(reg, cfg, &pl);
    berth__graph_reorder(reg);
    init_pending(reg, &pl);
    /* ENABLE rows that did not start keep the status init gave them; a failed retry of a plugin that was
     * already failing is no news */
    list_outcome(&pl, res);
    for (size_t i = 0; i < pl.n; i++) /* rows no file provides now, unless still running */
        if (pl.row[i] && pl.counter[i] == NULL && pl.row[i]->status != BERTH_ST_OK)
            drop_row(reg, pl.row[i]);
    plan_free(&pl);
    summarise(res);
    berth_error_t *err = NULL;
    if (berth__registry_check_required(reg, &err) < 0) {
        char *m = berth__xasprintf("%s; %s", res->message, berth__error_msg(err));
        free(res->message);
        res->message = m;
        berth__error_free(err);
    }
}

/* ---- running ------------------------------------------------------------------------------------------ */

static void
announce(const result_t *res)
{
    berth_reload_result_t view_;
    result_view(res, &view_);
    for (size_t i = 0; i < R.reg->norder; i++) {
        berth__plugin_t *w = R.reg->order[i];
        if (w->status == BERTH_ST_OK && w->reg.on_change)
            berth__plugin_tell(w, BERTH_CHANGE_RELOADED, NULL, &view_);
    }
}

/* A line per plugin, then the summary: the summary is the last line of a reload (tests wait for it). */
static void
log_result(const result_t *res)
{
    if (res->code != 0) {
        LOG_ERROR("reload refused, nothing changed: config: %s", res->message);
        return;
    }
    char **lists[] = {res->enabled, res->disabled, res->reloaded, res->failed, res->restart_needed};
    const char *names[] = {"enabled", "disabled", "reinitialised", "failed", "needs a restart"};
    for (size_t l = 0; l < 5; l++)
        for (size_t i = 0; lists[l] && lists[l][i]; i++) {
            if (l >= 3)
                LOG_WARN("reload: %s: %s", names[l], lists[l][i]);
            else
                LOG_INFO("reload: %s: %s", names[l], lists[l][i]);
        }
    LOG_INFO("%s", res->message);
}

static void
run_reload(void *arg)
{
    (void)arg;
    R.scheduled = 0;
    if (R.reg == NULL)
        return;
    request_t *batch = R.queue;
    R.queue = NULL;
    R.running = 1;
    R.generation++;
    LOG_INFO("reload %u: reading the config again", R.generation);
    result_t res = {0};
    berth__registry_t next;
    berth__config_t *cfg = NULL;
    berth_error_t *err = NULL;
    if (build_next(&next, &cfg, &err) < 0) {
        res.code = err ? err->code : BERTH_EINVAL;
        res.message = berth__xstrdup(berth__error_msg(err));
        berth__error_free(err);
    } else {
        apply(&next, cfg, &res);
    }
    next_free(&next, cfg);
    log_result(&res);
    announce(&res);
    berth_reload_result_t out;
    result_view(&res, &out);
    while (batch) {
        request_t *r = batch;
        batch = r->next;
        if (r->done)
            r->done(r->user, &out);
        free(r);
    }
    result_free(&res);
    R.running = 0;
    if (R.queue && !R.scheduled) {
        R.scheduled = 1;
        berth__call_on_loop(run_reload, NULL);
    }
}

int
berth__reload_request(void (*done)(void *user, const berth_reload_result_t *result), void *user,
                      berth_error_t **err)
{
    if (R.reg == NULL)
        return berth__error_make(err, BERTH_EUNAVAILABLE, "reload: the daemon is not running");
    request_t *r = berth__xcalloc(1, sizeof(*r));
    r->done = done;
    r->user = user;
    request_t **tail = &R.queue;
    while (*tail)
        tail = &(*tail)->next;
    *tail = r;
    if (!R.scheduled && !R.running) {
        R.scheduled = 1;
        if (berth__call_on_loop(run_reload, NULL) < 0) {
            R.scheduled = 0;
            R.queue = r->next;
            free(r);
            return berth__error_make(err, BERTH_EUNAVAILABLE, "reload: the daemon is stopping");
        }
    }
    return 0;
}

/* Copies of replaced module files are unlinked once opened; a kill -9 in between leaves one behind. */
static void
remove_stale_copies(const char *state)
{
    cleanup_free char *dir = berth__xasprintf("%s/berthd-modules", state);
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    rmdir(dir);
}

void
berth__reload_setup(berth__registry_t *reg, const berth__opts_t *opts)
{
    R.reg = reg;
    R.opts = opts;
    remove_stale_copies(reg->cfg->state);
}

void
berth__reload_shutdown(void)
{
    result_t res = {.code = BERTH_EUNAVAILABLE,
                    .message = berth__xstrdup("berthd is shutting down")};
    berth_reload_result_t out;
    result_view(&res, &out);
    R.reg = NULL;
    while (R.queue) {
        request_t *r = R.queue;
        R.queue = r->next;
        if (r->done)
            r->done(r->user, &out);
        free(r);
    }
    result_free(&res);
}

void
berth__reload_teardown(void)
{
    berth__reload_shutdown();
    for (size_t i = 0; i < R.nold; i++) {
        berth__config_free(R.old_cfgs[i]);
        free(R.old_cfgs[i]);
    }
    free(R.old_cfgs);
    R.old_cfgs = NULL;
    R.nold = 0;
}
