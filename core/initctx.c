/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Lifecycle: per-plugin directories and config, init in graph order, fini in exact reverse order, and the
 * InitContext calls a plugin makes during its init (lookups limited to what it declared, exports,
 * capabilities, readiness tokens).
 */
#include "initctx.h"

#include <stdint.h>
#include <string.h>

#include "error.h"
#include "paths.h"
#include "util.h"

static berth__initctx_t *
priv(berth_init_ctx_t *ic)
{
    return (berth__initctx_t *)ic;
}

static int
declared(const berth__plugin_t *p, const char *type, const char *id)
{
    const char *const *req = p->reg.requires;
    if (req && req[0] && strcmp(req[0], "*") == 0)
        return 1;
    if (berth__requires_type(req, type))
        return 1;
    if (id == NULL)
        return 0;
    for (size_t i = 0; p->reg.after && p->reg.after[i]; i++) {
        size_t tl = strlen(type);
        if (strncmp(p->reg.after[i], type, tl) == 0 && p->reg.after[i][tl] == '.' &&
            strcmp(p->reg.after[i] + tl + 1, id) == 0)
            return 1;
    }
    return 0;
}

static int
refuse_undeclared(berth__plugin_t *p, const char *type, berth_error_t **err)
{
    return berth__error_make(err, BERTH_EPRECONDITION,
                             "plugin %s looked up type %s, which it does not list in requires",
                             p->uri, type);
}

static void
fill_instance(const berth__plugin_t *q, berth_instance_t *out)
{
    out->type = q->type;
    out->id = q->id;
    out->instance = q->instance;
    out->ops = q->reg.ops;
}

int
berth__ic_get(berth_init_ctx_t *ic, const char *type, const char *id, berth_instance_t *out,
              berth_error_t **err)
{
    berth__initctx_t *c = priv(ic);
    if (!declared(c->plugin, type, id))
        return refuse_undeclared(c->plugin, type, err);
    cleanup_free char *uri = berth__xasprintf("%s.%s", type, id);
    berth__plugin_t *q = berth__registry_find(c->reg, uri);
    if (q == NULL)
        return berth__error_make(err, BERTH_ENOTFOUND, "plugin %s: not found", uri);
    if (q->status != BERTH_ST_OK)
        return berth__error_make(err, BERTH_ENOTFOUND, "plugin %s: %s: %s", uri,
                                 berth__status_name(q->status), q->reason);
    fill_instance(q, out);
    return 0;
}

int
berth__ic_get_single(berth_init_ctx_t *ic, const char *type, berth_instance_t *out,
                     berth_error_t **err)
{
    berth__initctx_t *c = priv(ic);
    if (!declared(c->plugin, type, NULL))
        return refuse_undeclared(c->plugin, type, err);
    const berth__plugin_t *found = NULL, *second = NULL;
    for (size_t i = 0; i < c->reg->norder; i++) {
        const berth__plugin_t *q = c->reg->order[i];
        if (q->status != BERTH_ST_OK || strcmp(q->type, type) != 0)
            continue;
        if (found == NULL)
            found = q;
        else if (second == NULL)
            second = q;
    }
    if (found == NULL)
        return berth__error_make(err, BERTH_ENOTFOUND, "no healthy plugin of type %s", type);
    if (second != NULL)
        return berth__error_make(err, BERTH_EMULTI,
                                 "several plugins of type %s (%s, %s, ...): ask by id", type,
                                 found->uri, second->uri);
    fill_instance(found, out);
    return 0;
}

int
berth__ic_foreach(berth_init_ctx_t *ic, const char *type,
                  int (*cb)(void *user, const berth_instance_t *inst), void *user)
{
    berth__initctx_t *c = priv(ic);
    if (!declared(c->plugin, type, NULL))
        return refuse_undeclared(c->plugin, type, NULL);
    int visited = 0;
    for (size_t i = 0; i < c->reg->norder; i++) {
        const berth__plugin_t *q = c->reg->order[i];
        if (q->status != BERTH_ST_OK || strcmp(q->type, type) != 0)
            continue;
        berth_instance_t inst;
        fill_instance(q, &inst);
        visited++;
        if (cb(user, &inst) != 0)
            break;
    }
    return visited;
}

int
berth__ic_status(berth_init_ctx_t *ic, const char *uri, const char **status, const char **reason)
{
    const berth__plugin_t *q = berth__registry_find(priv(ic)->reg, uri);
    if (q == NULL)
        return BERTH_ENOTFOUND;
    if (status)
        *status = berth__status_name(q->status);
    if (reason)
        *reason = q->reason;
    return 0;
}

int
berth__ic_export_set(berth_init_ctx_t *ic, const char *key, const char *value)
{
    berth__plugin_t *p = priv(ic)->plugin;
    if (key == NULL || value == NULL || key[0] == '\0')
        return BERTH_EINVAL;
    for (size_t i = 0; p->export_keys && p->export_keys[i]; i++)
        if (strcmp(p->export_keys[i], key) == 0) {
            free(p->export_values[i]);
            p->export_values[i] = berth__xstrdup(value);
            return 0;
        }
    berth__strv_push(&p->export_keys, key);
    berth__strv_push(&p->export_values, value);
    return 0;
}

int
berth__ic_capability_add(berth_init_ctx_t *ic, const char *capability)
{
    berth__plugin_t *p = priv(ic)->plugin;
    if (capability == NULL || capability[0] == '\0')
        return BERTH_EINVAL;
    if (!berth__strv_contains((const char *const *)p->capabilities, capability))
        berth__strv_push(&p->capabilities, capability);
    return 0;
}

struct berth_ready_token_s {
    berth__registry_t *reg;
    int done;
};

berth_ready_token_t *
berth__ic_readiness_register(berth_init_ctx_t *ic)
{
    berth__initctx_t *c = priv(ic);
    berth_ready_token_t *t = berth__xcalloc(1, sizeof(*t));
    t->reg = c->reg;
    c->plugin->ready_tokens++;
    c->reg->pending_ready++;
    return t;
}

void
berth__ic_readiness_done(berth_ready_token_t *t)
{
    if (t == NULL)
        return;
    berth__registry_t *reg = t->reg;
    free(t);
    if (--reg->pending_ready == 0 && reg->on_ready && !reg->ready_sent) {
        reg->ready_sent = 1;
        reg->on_ready(reg);
    }
}

/* ---- lifecycle ------------------------------------------------------------------------------------ */

int
berth__registry_validate_config(berth__registry_t *reg, berth_error_t **err)
{
    for (size_t i = 0; i < reg->nplugins; i++) {
        berth__plugin_t *p = reg->plugins[i];
        if (p->status != BERTH_ST_PENDING && p->status != BERTH_ST_OK)
            continue;
        const berth_config_node_t *section;
        if (berth__config_plugin_section(reg->cfg, p->uri, p->reg.config, &section, err) < 0)
            return -1;
        p->ic.pub.config = section;
    }
    return 0;
}

static int
prepare_dirs(berth__registry_t *reg, berth__plugin_t *p, berth_error_t **err)
{
    char *root = berth__xasprintf("%s/%s", reg->cfg->root, p->uri);
    char *state = berth__xasprintf("%s/%s", reg->cfg->state, p->uri);
    free((char *)p->ic.pub.root); /* a reload's second try of a plugin that did not start */
    free((char *)p->ic.pub.state);
    p->ic.pub.root = root;
    p->ic.pub.state = state;
    if (berth__mkdir_all(root, 0700, err) < 0 || berth__mkdir_all(state, 0700, err) < 0)
        return -1;
    return 0;
}

void
berth__init_one(berth__registry_t *reg, berth__plugin_t *p)
{
    berth_error_t *err = NULL;
    berth__initctx_t *c = &p->ic;
    c->pub.size = sizeof(c->pub);
    c->pub.api = &berth__core_api;
    c->pub.type = p->type;
    c->pub.id = p->id;
    c->pub.uri = p->uri;
    c->pub.daemon_root = reg->cfg->root;
    c->pub.daemon_state = reg->cfg->state;
    c->pub.loop = reg->loop;
    c->pub.log = &p->logger;
    c->plugin = p;
    c->reg = reg;
    /* a module known by its manifest only is opened by the first of its plugins to start */
    if (p->module && p->module->handle == NULL && berth__loader_bind(reg, p->module) < 0) {
        LOG_WARN("failed to load plugin %s: %s", p->uri, p->reason);
        return;
    }
    if (p->reg.init == NULL) { /* bound, yet still a manifest's row: its registration was refused */
        berth__plugin_set_status(p, BERTH_ST_ABI_ERROR, BERTH_EINVAL, "%s",
                                 "its module has no registration for it");
        return;
    }
    p->init_order = (int)++reg->ninit;
    if (prepare_dirs(reg, p, &err) < 0) {
        berth__plugin_set_status(p, BERTH_ST_ERROR, err->code, "%s", err->message);
        berth__error_free(err);
        return;
    }
    int rc = p->reg.init(&c->pub, &p->instance, &err);
    if (rc == 0) {
        berth__plugin_set_status(p, BERTH_ST_OK, 0, "%s", "");
        LOG_DEBUG("loaded plugin id=%s type=%s", p->id, p->type);
        return;
    }
    const char *msg = berth__error_msg(err);
    if (rc == BERTH_ESKIP) {
        /* ctr tells skip from error by these words */
        if (strstr(msg, "skip plugin"))
            berth__plugin_set_status(p, BERTH_ST_SKIP, rc, "%s", msg);
        else
            berth__plugin_set_status(p, BERTH_ST_SKIP, rc, "%s: skip plugin", msg);
        LOG_INFO("skip loading plugin %s: %s", p->uri, p->reason);
    } else {
        berth__plugin_set_status(p, BERTH_ST_ERROR, rc, "%s", msg);
        LOG_WARN("failed to load plugin %s: %s", p->uri, msg);
    }
    berth__error_free(err);
    berth__hook_forget(p);
    if (p->ready_tokens > 0)
        reg->fatal = 1;
}

int
berth__registry_init_all(berth__registry_t *reg)
{
    for (size_t i = 0; i < reg->norder && !reg->fatal; i++) {
        berth__plugin_t *p = reg->order[i];
        if (p->status != BERTH_ST_PENDING)
            continue;
        if (berth__graph_check_deps(reg, p, 1) < 0) {
            LOG_WARN("not loading plugin %s: %s", p->uri, p->reason);
            continue;
        }
        berth__init_one(reg, p);
    }
    return reg->fatal ? -1 : 0;
}

void
berth__registry_fini_all(berth__registry_t *reg)
{
    for (size_t i = reg->norder; i-- > 0;) {
        berth__plugin_t *p = reg->order[i];
        if (p->status != BERTH_ST_OK || p->stopped)
            continue;
        LOG_DEBUG("stopping plugin %s", p->uri);
        berth__hook_forget(p);
        if (p->reg.fini)
            p->reg.fini(p->instance);
        p->instance = NULL;
        p->stopped = 1;
    }
    for (size_t i = 0; i < reg->nplugins; i++) {
        free((char *)reg->plugins[i]->ic.pub.root);
        free((char *)reg->plugins[i]->ic.pub.state);
        reg->plugins[i]->ic.pub.root = reg->plugins[i]->ic.pub.state = NULL;
    }
}

int
berth__registry_check_required(berth__registry_t *reg, berth_error_t **err)
{
    char *msg = NULL;
    for (size_t i = 0; reg->cfg->required && reg->cfg->required[i]; i++) {
        const char *uri = reg->cfg->required[i];
        const berth__plugin_t *p = berth__registry_find(reg, uri);
        char *line = NULL;
        if (p == NULL)
            line = berth__xasprintf("required plugin %s not included (no module provides it)", uri);
        else if (p->status != BERTH_ST_OK && p->status != BERTH_ST_PENDING)
            line = berth__xasprintf("required plugin %s is %s: %s", uri,
                                    berth__status_name(p->status), p->reason);
        if (line == NULL)
            continue;
        char *joined = msg ? berth__xasprintf("%s; %s", msg, line) : line;
        if (msg) {
            free(msg);
            free(line);
        }
        msg = joined;
    }
    if (msg == NULL)
        return 0;
    berth__error_make(err, BERTH_EPRECONDITION, "%s", msg);
    free(msg);
    return -1;
}
