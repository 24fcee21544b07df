/* SPDX-License-Identifier: Apache-2.0 */
/* `berthd modules` and `berthd config default|dump|check`, and the set-up they share with the daemon. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "error.h"
#include "log.h"
#include "manifest.h"
#include "paths.h"
#include "util.h"

/* Sets a top-level string key from a flag, quoted so any path survives YAML. */
static int
set_flag(berth__config_t *cfg, const char *key, const char *value, berth_error_t **err)
{
    size_t n = strlen(value);
    char *q = berth__xmalloc(2 * n + 3), *w = q;
    *w++ = '"';
    for (size_t i = 0; i < n; i++) {
        if (value[i] == '"' || value[i] == '\\')
            *w++ = '\\';
        *w++ = value[i];
    }
    *w++ = '"';
    *w = '\0';
    char *assignment = berth__xasprintf("%s=%s", key, q);
    int rc = berth__config_set(cfg, assignment, err);
    free(assignment);
    free(q);
    return rc;
}

int
berth__config_from_opts(berth__config_t *cfg, const berth__opts_t *o, berth_error_t **err)
{
    if (berth__config_load(cfg, o->config_path, err) < 0)
        return -1;
    for (size_t i = 0; o->sets && o->sets[i]; i++)
        if (berth__config_set(cfg, o->sets[i], err) < 0)
            return -1;
    if ((o->root && set_flag(cfg, "root", o->root, err) < 0) ||
        (o->state && set_flag(cfg, "state", o->state, err) < 0) ||
        (o->log_level && set_flag(cfg, "log_level", o->log_level, err) < 0))
        return berth__error_wrap(err, "command-line flag");
    return 0;
}

int
berth__prepare_registry(berth__registry_t *reg, const berth__opts_t *o, berth_error_t **err)
{
    cleanup_free char *cache = o->daemon ? berth__module_list_cache(reg->cfg->state) : NULL;
    berth__load_opts_t lo = {.builtin_dir = o->builtin_dir, .probe = o->probe, .list_cache = cache};
    berth__loader_scan(reg, &lo);
    if (!o->daemon) /* the commands show and check every module as its file is now */
        berth__loader_bind_all(reg);
    const char **uris = berth__registry_uris(reg);
    int rc = berth__config_resolve_plugin_sets(reg->cfg, uris, err);
    if (rc == 0)
        rc = berth__config_check_plugin_uris(reg->cfg, uris, err);
    free(uris);
    /* --set may have added plugin sections: positions decide graph and hook ties */
    for (size_t i = 0; i < reg->nplugins; i++)
        reg->plugins[i]->config_position =
            berth__config_plugin_position(reg->cfg, reg->plugins[i]->uri);
    if (rc == 0)
        rc = berth__registry_validate_config(reg, err);
    if (rc < 0)
        return -1;
    berth__graph_resolve(reg);
    return 0;
}

/* ---- berthd modules ------------------------------------------------------------------------------ */

static void
print_hook(void *user, berth_hook_point_t point, int priority)
{
    FILE *out = user;
    fprintf(out, "      hook %s priority=%d (%s)\n", berth__hook_point_name(point), priority,
            point < BERTH_HOOK_POINT_COUNT ? (const char *[]){"", "mutating", "veto", "advisory",
                                                              "post"}[berth__hook_mode(point)]
                                           : "");
}

static void
print_row(FILE *out, const berth__plugin_t *p, int order)
{
    char ord[16] = "-";
    if (order > 0)
        snprintf(ord, sizeof(ord), "%d", order);
    fprintf(out, "%-5s %-44s %-15s %s%s%s\n", ord, p->uri, berth__status_name(p->status),
            p->module ? p->module->path : "-", p->reason[0] ? "  " : "", p->reason);
    for (size_t i = 0; p->export_keys && p->export_keys[i]; i++)
        fprintf(out, "      export %s=%s\n", p->export_keys[i], p->export_values[i]);
    for (size_t i = 0; p->capabilities && p->capabilities[i]; i++)
        fprintf(out, "      capability %s\n", p->capabilities[i]);
    berth__hook_foreach_of(p, print_hook, out);
}

static void
print_table(FILE *out, const berth__registry_t *reg)
{
    fprintf(out, "%-5s %-44s %-15s %s\n", "ORDER", "URI", "STATUS", "FILE  REASON");
    for (size_t i = 0; i < reg->norder; i++) {
        const berth__plugin_t *p = reg->order[i];
        print_row(out, p, p->init_order ? p->init_order : (int)i + 1);
    }
    for (size_t i = 0; i < reg->nplugins; i++) {
        const berth__plugin_t *p = reg->plugins[i];
        int in_order = 0;
        for (size_t j = 0; j < reg->norder && !in_order; j++)
            in_order = reg->order[j] == p;
        if (!in_order)
            print_row(out, p, 0);
    }
}

static int
required_exit(berth__registry_t *reg)
{
    berth_error_t *err = NULL;
    if (berth__registry_check_required(reg, &err) == 0)
        return 0;
    fprintf(stderr, "berthd: %s\n", berth__error_msg(err));
    berth__error_free(err);
    return 1;
}

static int
modules_with_init(berth__registry_t *reg, uv_loop_t *loop)
{
    berth_error_t *err = NULL;
    int lock_fd = -1;
    if (berth__mkdir_all(reg->cfg->root, 0711, &err) < 0 ||
        berth__mkdir_all(reg->cfg->state, 0711, &err) < 0 ||
        (lock_fd = berth__lock_root(reg->cfg->root, &err)) < 0) {
        fprintf(stderr, "berthd: %s\n", berth__error_msg(err));
        berth__error_free(err);
        return 1;
    }
    berth__registry_init_all(reg);
    print_table(stdout, reg);
    int rc = required_exit(reg);
    berth__registry_fini_all(reg);
    berth__call_on_loop_close();
    uv_run(loop, UV_RUN_DEFAULT);
    close(lock_fd);
    return rc;
}

int
berth__cmd_modules(const berth__opts_t *o)
{
    signal(SIGPIPE, SIG_IGN);
    berth__config_t cfg = {0};
    berth__registry_t reg;
    uv_loop_t loop;
    berth_error_t *err = NULL;
    int rc = 1;
    uv_loop_init(&loop);
    berth__registry_init(&reg, &cfg, &loop);
    if (berth__config_from_opts(&cfg, o, &err) < 0 || berth__prepare_registry(&reg, o, &err) < 0) {
        fprintf(stderr, "berthd: config: %s\n", berth__error_msg(err));
        berth__error_free(err);
        goto out;
    }
    berth__log_setup(cfg.log_level, cfg.log_format);
    if (o->init) {
        berth__call_on_loop_setup(&loop);
        berth__api_set_registry(&reg);
        rc = modules_with_init(&reg, &loop);
        berth__api_set_registry(NULL);
    } else {
        print_table(stdout, &reg);
        rc = required_exit(&reg);
    }
out:
    berth__hooks_reset();
    berth__registry_free(&reg);
    berth__config_free(&cfg);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rc;
}

/* ---- berthd modules --manifest ------------------------------------------------------------------ */

int
berth__cmd_manifest(const char *path)
{
    char reason[512];
    const berth_module_desc_t *d = NULL;
    if (berth__loader_open_file(path, &d, reason, sizeof(reason)) == NULL) {
        fprintf(stderr, "berthd: %s: %s\n", path, reason);
        return 1;
    }
    int on_demand = 0;
    for (size_t i = 0; d->plugins[i]; i++)
        on_demand |= d->plugins[i]->struct_size >= offsetof(berth_plugin_reg_t, on_change) &&
                     (d->plugins[i]->flags & BERTH_PLUGIN_ON_DEMAND);
    if (on_demand)
        berth__manifest_write(stdout, d);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* ---- berthd config ------------------------------------------------------------------------------- */

int
berth__cmd_config(const berth__opts_t *o, const char *what)
{
    berth__opts_t eff = *o;
    if (strcmp(what, "default") == 0) { /* the built-in text, untouched by --config and --set */
        eff.config_path = NULL;
        eff.sets = NULL;
        eff.root = eff.state = eff.log_level = NULL;
    } else if (strcmp(what, "dump") != 0 && strcmp(what, "check") != 0) {
        fprintf(stderr, "berthd: unknown config command `%s` (default, dump, check)\n", what);
        return 2;
    }
    berth__log_setup(BERTH_LOG_ERROR, BERTH_LOG_FORMAT_LOGFMT);
    berth__config_t cfg = {0};
    berth__registry_t reg;
    berth__registry_init(&reg, &cfg, NULL);
    berth_error_t *err = NULL;
    int rc = 0;
    if (berth__config_from_opts(&cfg, &eff, &err) < 0 ||
        berth__prepare_registry(&reg, &eff, &err) < 0) {
        fprintf(stderr, "berthd: config: %s\n", berth__error_msg(err));
        berth__error_free(err);
        rc = 1;
    } else if (strcmp(what, "check") == 0) {
        printf("%s: ok\n", cfg.file);
    } else {
        berth__config_emit(stdout, cfg.tree);
    }
    berth__registry_free(&reg);
    berth__config_free(&cfg);
    return rc;
}
