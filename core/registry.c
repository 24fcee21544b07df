/* SPDX-License-Identifier: Apache-2.0 */
#include "registry.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "error.h"
#include "manifest.h"
#include "util.h"

static const char *const status_names[] = {
    [BERTH_ST_PENDING] = "ok", /* statically fine; shown as ok by `berthd modules` without --init */
    [BERTH_ST_OK] = "ok",
    [BERTH_ST_SKIP] = "skip",
    [BERTH_ST_ERROR] = "error",
    [BERTH_ST_DISABLED] = "disabled",
    [BERTH_ST_ABI_ERROR] = "abi-error",
    [BERTH_ST_DEP_UNAVAILABLE] = "dep-unavailable",
    [BERTH_ST_DEFERRED] = "deferred",
};

const char *
berth__status_name(berth__status_t st)
{
    return status_names[st];
}

void
berth__registry_init(berth__registry_t *reg, berth__config_t *cfg, uv_loop_t *loop)
{
    memset(reg, 0, sizeof(*reg));
    reg->cfg = cfg;
    reg->loop = loop;
}

void
berth__plugin_free(berth__plugin_t *p)
{
    free(p->type);
    free(p->id);
    free(p->uri);
    free(p->reason);
    free(p->root_cause);
    berth__strv_free(p->export_keys);
    berth__strv_free(p->export_values);
    berth__strv_free(p->capabilities);
    free(p);
}

void
berth__registry_free(berth__registry_t *reg)
{
    for (size_t i = 0; i < reg->nplugins; i++)
        berth__plugin_free(reg->plugins[i]);
    free(reg->plugins);
    free(reg->order);
    /* Module handles stay mapped: code of theirs may still be referenced by pending atexit or TLS
     * destructors, and a process that exits gains nothing from unmapping. */
    for (size_t i = 0; i < reg->nmodules; i++) {
        free(reg->modules[i]->path);
        free(reg->modules[i]->name);
        berth__manifest_free(reg->modules[i]->manifest);
        free(reg->modules[i]);
    }
    free(reg->modules);
    memset(reg, 0, sizeof(*reg));
}

berth__plugin_t *
berth__registry_add(berth__registry_t *reg, berth__module_t *mod, const char *type, const char *id)
{
    berth__plugin_t *p = berth__xcalloc(1, sizeof(*p));
    p->module = mod;
    p->type = berth__xstrdup(type);
    p->id = berth__xstrdup(id);
    p->uri = berth__xasprintf("%s.%s", type, id);
    p->reason = berth__xstrdup("");
    p->config_position = reg->cfg ? berth__config_plugin_position(reg->cfg, p->uri) : INT32_MAX;
    p->logger.tag = p->uri;
    reg->plugins = berth__xrealloc(reg->plugins, (reg->nplugins + 1) * sizeof(*reg->plugins));
    reg->plugins[reg->nplugins++] = p;
    return p;
}

berth__plugin_t *
berth__registry_find(const berth__registry_t *reg, const char *uri)
{
    for (size_t i = 0; i < reg->nplugins; i++)
        if (strcmp(reg->plugins[i]->uri, uri) == 0 &&
            strcmp(reg->plugins[i]->type, BERTH_MODULE_ROW_TYPE) != 0)
            return reg->plugins[i];
    return NULL;
}

void
berth__plugin_set_status(berth__plugin_t *p, berth__status_t st, int code, const char *fmt, ...)
{
    p->status = st;
    p->error_code = code;
    free(p->reason);
    va_list ap;
    va_start(ap, fmt);
    p->reason = berth__xvasprintf(fmt, ap);
    va_end(ap);
    free(p->root_cause);
    p->root_cause = NULL;
    if (st != BERTH_ST_OK && st != BERTH_ST_PENDING && st != BERTH_ST_DEFERRED)
        p->root_cause = berth__xasprintf("%s: %s: %s", p->uri, status_names[st], p->reason);
}

const char **
berth__registry_uris(const berth__registry_t *reg)
{
    const char **v = berth__xcalloc(reg->nplugins + 1, sizeof(char *));
    size_t n = 0;
    for (size_t i = 0; i < reg->nplugins; i++)
        if (strcmp(reg->plugins[i]->type, BERTH_MODULE_ROW_TYPE) != 0)
            v[n++] = reg->plugins[i]->uri;
    return v;
}

void
berth__registry_info(const berth__plugin_t *p, berth_plugin_info_t *info)
{
    memset(info, 0, sizeof(*info));
    info->struct_size = sizeof(*info);
    info->type = p->type;
    info->id = p->id;
    info->file = p->module ? p->module->path : "";
    info->status = status_names[p->status];
    info->reason = p->reason;
    info->error_code = p->error_code;
    info->init_order = p->init_order;
    info->requires = p->reg.requires;
    info->platforms = p->reg.platforms;
    info->capabilities = (const char *const *)p->capabilities;
    info->export_keys = (const char *const *)p->export_keys;
    info->export_values = (const char *const *)p->export_values;
    info->module_name = p->module ? p->module->name : "";
    info->module_version =
        p->module && p->module->desc && p->module->desc->version ? p->module->desc->version : "";
    info->abi_major = p->module && p->module->desc ? p->module->desc->abi_major : 0;
    info->abi_minor = p->module && p->module->desc ? p->module->desc->abi_minor : 0;
}
