/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The plugin table: every module file the loader saw and every plugin it found, with status and reason,
 * kept for the daemon's whole life (introspection reads it; containerd keeps Plugin{err} the same way).
 */
#ifndef BERTH_CORE_REGISTRY_H
#define BERTH_CORE_REGISTRY_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include <uv.h>

#include <berth/module.h>

#include "config.h"
#include "log.h"

typedef enum berth__status {
    BERTH_ST_PENDING = 0, /* resolved, not initialised (yet) */
    BERTH_ST_OK,
    BERTH_ST_SKIP,
    BERTH_ST_ERROR,
    BERTH_ST_DISABLED,
    BERTH_ST_ABI_ERROR,
    BERTH_ST_DEP_UNAVAILABLE,
    BERTH_ST_DEFERRED /* BERTH_PLUGIN_ON_DEMAND: initialised on its first use (demand.c) */
} berth__status_t;

/* Type of the rows that stand for a module file that failed before its plugins could be read. */
#define BERTH_MODULE_ROW_TYPE "berth.module"

typedef struct berth__module {
    char *path;
    char *name;   /* basename without ".so" */
    void *handle; /* dlopen handle; NULL when never opened or closed after failure */
    const berth_module_desc_t *desc;  /* valid while handle is open, or the manifest's until then */
    struct berth__manifest *manifest; /* what its ELF section said; NULL when it had none */
    /* the file as it was when scanned: a reload loads a file whose identity changed again */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} berth__module_t;

typedef struct berth__plugin berth__plugin_t;

/* The core's InitContext: the public head of abi/berth/module.h, then private fields. */
typedef struct berth__initctx {
    berth_init_ctx_t pub;
    berth__plugin_t *plugin;
    struct berth__registry *reg;
} berth__initctx_t;

struct berth__plugin {
    berth__module_t *module; /* NULL for rows made by the core itself */
    berth_plugin_reg_t reg; /* copy of the module's registration, zero-filled past struct_size; from
                              * the manifest (no init, fini, ops) until its module is opened */
    const char *key;        /* what api->demand matches (a gRPC service name), or NULL */
    char *type, *id, *uri;
    berth__status_t status;
    char *reason;     /* why not ok; "" when ok */
    char *root_cause; /* "<uri>: <status>: <reason>", what dependents quote */
    int error_code;
    int init_order;      /* 1-based, 0 = not initialised */
    int config_position; /* under plugins:, INT32_MAX when none */
    void *instance;
    berth__initctx_t ic;
    berth_logger_t logger;
    char **export_keys, **export_values, **capabilities;
    int ready_tokens;       /* registered during init */
    int stopped;            /* fini has run */
    unsigned hook_failures; /* POST/ADVISORY handler errors */
};

typedef struct berth__registry {
    berth__config_t *cfg;
    uv_loop_t *loop;
    berth__module_t **modules;
    size_t nmodules;
    berth__plugin_t **plugins; /* discovery order */
    size_t nplugins;
    berth__plugin_t **order; /* init order (resolved by the graph) */
    size_t norder;
    size_t ninit;      /* how many of `order` have had init called */
    int pending_ready; /* readiness tokens not yet done */
    int ready_sent;
    int fatal;                                     /* a plugin with readiness tokens failed */
    void (*on_ready)(struct berth__registry *reg); /* called once when the last token is done */
} berth__registry_t;

const char *berth__status_name(berth__status_t st);

/* registry.c */
void berth__registry_init(berth__registry_t *reg, berth__config_t *cfg, uv_loop_t *loop);
void berth__registry_free(berth__registry_t *reg);
berth__plugin_t *berth__registry_add(berth__registry_t *reg, berth__module_t *mod, const char *type,
                                     const char *id);
void berth__plugin_free(berth__plugin_t *p);
berth__plugin_t *berth__registry_find(const berth__registry_t *reg, const char *uri);
void berth__plugin_set_status(berth__plugin_t *p, berth__status_t st, int code, const char *fmt,
                              ...) __attribute__((format(printf, 4, 5)));
/* NULL-terminated URIs of every plugin row that came from a module (caller frees the array only). */
const char **berth__registry_uris(const berth__registry_t *reg);
void berth__registry_info(const berth__plugin_t *p, berth_plugin_info_t *info);

/* loader.c: scans the built-in module dir and cfg->module_dirs. probe: load each file in a child first. */
typedef struct berth__load_opts {
    const char *builtin_dir; /* NULL: <dir of berthd>/../lib/berth/modules */
    int probe;
    /* reload: module files this registry already opened and that did not change are shared from it (the
     * new registry's modules array then holds the very same records); a changed file that it opened is
     * loaded from a copy in copy_dir, since dlopen would hand back the old mapping for the same path */
    const struct berth__registry *reuse;
    const char *copy_dir;
    /* the daemon: what a probe found in a file is kept in this file, keyed by the file's identity, so a
     * later start (or reload) with `disabled` set forks no probe for a file it already read */
    const char *list_cache;
    struct berth__list_cache *cache; /* the loader's own */
} berth__load_opts_t;
int berth__loader_scan(berth__registry_t *reg, const berth__load_opts_t *opts);
/* Where the daemon keeps what probes found (berth__load_opts_t.list_cache); caller frees. */
char *berth__module_list_cache(const char *state);
/* The default built-in module directory for this executable; caller frees. */
char *berth__loader_builtin_dir(void);

/* Opens a module the loader only read the manifest of, and binds its rows to the real registrations.
 * On failure every row of it not yet running gets the reason (abi-error) and -1 is returned. */
int berth__loader_bind(berth__registry_t *reg, berth__module_t *mod);
/* Opens one module file and checks its descriptor (no rows made): the handle, or NULL with reason. */
void *berth__loader_open_file(const char *path, const berth_module_desc_t **desc, char *reason,
                              size_t len);
/* Every module still unopened is opened (commands that show or run everything). */
void berth__loader_bind_all(berth__registry_t *reg);

/* demand.c: plugins on demand (module.h, "On demand").
 * Marks the pending BERTH_PLUGIN_ON_DEMAND plugins deferred, except those `required` lists, those a
 * start_if pattern matches, and the providers that a plugin starting (or, in a reload, running in `live`)
 * needs at its init; then opens the modules that have a plugin to initialise. */
void berth__defer_at_start(berth__registry_t *reg, const struct berth__registry *live);
/* api->demand on the daemon's registry (set by the daemon once it has one; NULL at shutdown). */
void berth__demand_setup(berth__registry_t *reg);
int berth__demand(const char *type, const char *key, berth_error_t **err);
/* Tells w (an on_change plugin) of a change. */
void berth__plugin_tell(berth__plugin_t *w, int what, const berth__plugin_t *provider,
                        const berth_reload_result_t *result);

/* graph.c: orders pending plugins, marks cycles and static dependency failures. */
void berth__graph_resolve(berth__registry_t *reg);
/* Does a come after b: a type it requires ("*": every plugin that does not itself require "*"), or b's URI
 * in its after list? */
int berth__graph_depends(const berth__plugin_t *a, const berth__plugin_t *b);
/* Reload: orders every ok and pending plugin together (running ones keep their relative order). */
void berth__graph_reorder(berth__registry_t *reg);
/* Before init: 0 if every requirement of p has an ok (or, statically, pending) provider; else marks p
 * dep-unavailable and returns -1. */
int berth__graph_check_deps(berth__registry_t *reg, berth__plugin_t *p, int at_init);

/* initctx.c */
int berth__registry_validate_config(berth__registry_t *reg, berth_error_t **err);
/* Initialises every plugin in order. Returns 0, or -1 when a plugin holding readiness tokens failed. */
int berth__registry_init_all(berth__registry_t *reg);
/* Initialises one plugin whose dependencies are up (reload uses it too). */
void berth__init_one(berth__registry_t *reg, berth__plugin_t *p);
void berth__registry_fini_all(berth__registry_t *reg);
/* Required plugins that are not ok: 0 if all fine, else fills *err with the reasons. */
int berth__registry_check_required(berth__registry_t *reg, berth_error_t **err);

/* api.c */
extern const berth_core_api_t berth__core_api;
void berth__api_set_registry(berth__registry_t *reg);
int berth__call_on_loop_setup(uv_loop_t *loop);
void berth__call_on_loop_close(void);
int berth__call_on_loop(void (*fn)(void *arg), void *arg);

/* reload.c: api->reload (module.h); SIGHUP asks through it with done = NULL. */
int berth__reload_request(void (*done)(void *user, const berth_reload_result_t *result), void *user,
                          berth_error_t **err);
struct berth__opts;
/* The daemon's registry and the options it started with (a reload reads the config the same way). */
void berth__reload_setup(berth__registry_t *reg, const struct berth__opts *opts);
/* At shutdown, before any fini: requests still waiting are answered Unavailable; no reload runs after. */
void berth__reload_shutdown(void);
/* After the last fini: frees the configs earlier reloads replaced. */
void berth__reload_teardown(void);

/* hooks.c */
int berth__hook_register(berth_init_ctx_t *ic, berth_hook_point_t point, int priority,
                         berth_hook_fn fn, void *user, berth_error_t **err);
int berth__hook_invoke(berth_hook_point_t point, void *payload, berth_error_t **err);
berth_hook_mode_t berth__hook_mode(berth_hook_point_t point);
const char *berth__hook_point_name(berth_hook_point_t point);
/* Drops the handlers a plugin registered (at its fini). */
void berth__hook_forget(const berth__plugin_t *p);
/* Calls cb for each handler p registered, in dispatch order. */
void berth__hook_foreach_of(const berth__plugin_t *p,
                            void (*cb)(void *user, berth_hook_point_t point, int priority),
                            void *user);
void berth__hooks_reset(void);

#endif
