/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The berth module ABI.
 *
 * A module is a shared object `<name>.so` exporting exactly one symbol, the side-effect-free function
 * `berth_module_v1_<name>` (dashes in <name> become underscores), which returns a descriptor. The loader
 * checks, in this order and before reading anything else: the symbol, magic, ABI major (equal), ABI minor
 * (not newer than berthd's), struct_size, and the build signature. Then it validates each registration.
 *
 * Modules never link against berthd: everything they need from the core comes through the function table
 * `ic->api` (berth_core_api_t). It starts with its size and only ever grows at the end; a module that needs a
 * function added in minor N declares abi_minor N (BERTH_MODULE does that for you) and is refused cleanly by
 * an older berthd. BERTH_API_HAS tells whether a table has a function.
 *
 * Threading: init, fini and InitContext calls run on the loop thread. After init returns, the module must not
 * keep or use its InitContext except for the fields documented as long-lived (log, api, loop).
 */
#ifndef BERTH_MODULE_H
#define BERTH_MODULE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "error.h"
#include "hooks.h"
#include "log.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BERTH_ABI_MAJOR 1
/* 2: berth_grpc_stream_api_t.set_part_handler; 3: network.h, volume.h, metadata records, the endpoint
 * and volume hook payloads; 4: berth_network_v1_ops_t.define; 5: reload (berth_plugin_reg_t.on_change,
 * api->reload); 6: plugins on demand (BERTH_PLUGIN_ON_DEMAND, berth_plugin_reg_t.start_if, api->demand) */
#define BERTH_ABI_MINOR 6
#define BERTH_MODULE_MAGIC 0x48545242u /* "BRTH" little-endian */

/* ---- build signature: everything a version number cannot catch ---------------------------------- */
#define BERTH__STR2(x) #x
#define BERTH__STR(x) BERTH__STR2(x)
#if defined(__SANITIZE_ADDRESS__)
#define BERTH__SIG_ASAN "asan1"
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BERTH__SIG_ASAN "asan1"
#endif
#endif
#ifndef BERTH__SIG_ASAN
#define BERTH__SIG_ASAN "asan0"
#endif
/* gcc has no macro for UBSan: berth's build and the berth-module.pc set BERTH_BUILD_UBSAN. */
#if defined(BERTH_BUILD_UBSAN) && BERTH_BUILD_UBSAN
#define BERTH__SIG_UBSAN "ubsan1"
#else
#define BERTH__SIG_UBSAN "ubsan0"
#endif
#if __SIZEOF_LONG__ == 8 || (defined(_FILE_OFFSET_BITS) && _FILE_OFFSET_BITS == 64)
#define BERTH__SIG_OFF "off64"
#else
#define BERTH__SIG_OFF "off32"
#endif
#if __SIZEOF_LONG__ == 8 || (defined(_TIME_BITS) && _TIME_BITS == 64)
#define BERTH__SIG_TIME "time64"
#else
#define BERTH__SIG_TIME "time32"
#endif
/* Comma-separated name+value fields; the loader names the first one that differs from berthd's. */
#define BERTH_BUILD_SIGNATURE                                                                   \
    "ptr" BERTH__STR(__SIZEOF_POINTER__) "," BERTH__SIG_OFF "," BERTH__SIG_TIME                 \
                                         ",uv" BERTH__STR(UV_VERSION_MAJOR) "," BERTH__SIG_ASAN \
                                                                            "," BERTH__SIG_UBSAN

typedef struct berth_init_ctx_s berth_init_ctx_t;
typedef struct berth_core_api_s berth_core_api_t;
typedef struct berth_ready_token_s berth_ready_token_t;
typedef struct berth_change_s berth_change_t;

/* Registration flags. */
#define BERTH_PLUGIN_NO_RELOAD 0x1u /* never toggled at runtime (e.g. the metadata store) */
#define BERTH_PLUGIN_ON_DEMAND \
    0x2u /* ABI minor 6: initialised on first use, not at start (below) */

/*
 * On demand (ABI minor 6). A plugin flagged BERTH_PLUGIN_ON_DEMAND does no work of its own at start: it
 * only answers calls (its gRPC service, or the ops of its type that other plugins use). The core then
 * leaves it "deferred" at start, and does not even open its module file when every plugin in it is
 * deferred and the file carries a manifest (below). It is initialised, with the deferred plugins it
 * requires first and the other plugins of its module, on first use:
 *   - a call to its gRPC service (the transport asks through api->demand);
 *   - a plugin starting (at start or later) that requires its type or names it in `after`, unless that
 *     plugin follows changes (on_change: it then hears BERTH_CHANGE_ADDED when the provider arrives);
 *   - api->demand, e.g. Introspection listing plugins with their true status.
 * A plugin is initialised at start after all when `required` lists it, or when one of its `start_if`
 * patterns matches a path: there is work waiting for it (a runtime with live tasks, say). Either way the
 * other on-demand plugins of its module start with it, as on a first use.
 * So ON_DEMAND suits a plugin that registers no hooks (they would not run until its first use), keeps no
 * timers or watches that must run while nobody calls it, and finds at its init whatever happened while
 * it was deferred (as after a restart).
 * The manifest: a module built with berth's CMake function (berth_add_module) carries a copy of its
 * descriptor as text in the ELF section ".berth.manifest", written at build time by
 * `berthd modules --manifest FILE`; the core reads it with plain file reads, so a deferred module costs
 * neither mapping nor relocation. A module without one is opened at start as before (its deferred
 * plugins still wait for their first use to initialise).
 */

/*
 * Reload (ABI minor 5). On SIGHUP or `berthd reload` the core re-reads the config, validates all of it, and
 * applies the difference while the daemon runs: plugins newly disabled are finished (after their
 * dependents), newly enabled ones are initialised, and a plugin whose section changed, or whose module file
 * was replaced on disk, is finished and initialised again. So is every plugin that requires a type (or names
 * a URI in `after`) of a plugin being finished, unless it sets `on_change`. A plugin flagged
 * BERTH_PLUGIN_NO_RELOAD is never finished by a reload: a change that needs that is reported as needing a
 * restart and not applied.
 *
 * To be reloadable a module must keep every piece of state in its instance: fini closes every handle and
 * file it opened, frees what init made and leaves nothing in static storage that a second init would
 * trip on (a "once" flag, a cached pointer to a provider). Init may run again in the same process, from the
 * same mapping or from a new copy of the file, while running containers and stored data stay where they
 * are. Its InitContext's config, root and state are those of the new init.
 */

/* One plugin. A module carries one or more. Filled by the module; the core reads min(struct_size, known). */
typedef struct berth_plugin_reg_s {
    uint32_t struct_size; /* sizeof(berth_plugin_reg_t) as compiled */
    const char *type;     /* "io.containerd.event.v1"; the interface version is in the name */
    const char *id;       /* "exchange"; URI = type "." id */
    /* NULL-terminated types it may look up; {"*", NULL} = every type. A type written with a leading '?'
     * ("?io.berth.network.v1", ABI minor 3) is optional: the plugin initialises after its providers but
     * also without any (a lookup then gives NotFound). */
    const char *const *requires;
    const char *const *after; /* NULL-terminated URIs it needs by name (missing: dep-unavailable) */
    const char *const *platforms; /* NULL-terminated "os/arch[/variant]"; NULL = host platform */
    const berth_config_field_t *config; /* schema, ends with {NULL}; NULL = takes no config */
    /* Returns 0 with *instance set, BERTH_ESKIP with a message containing "skip plugin", or an error. */
    int (*init)(berth_init_ctx_t *ic, void **instance, berth_error_t **err);
    /* Reverse init order, on the loop thread. Must start closing every libuv handle it owns. */
    void (*fini)(void *instance);
    const void *ops; /* the type's vtable (e.g. const berth_events_v1_ops_t *) */
    uint32_t flags;  /* BERTH_PLUGIN_* */
    /* ABI minor 5, optional: follow changes at runtime instead of being finished and initialised again
     * with the providers of a type it requires (see berth_change_t). Loop thread. */
    void (*on_change)(void *instance, const berth_change_t *change);
    /* ABI minor 6, optional, for BERTH_PLUGIN_ON_DEMAND plugins: NULL-terminated glob(3) patterns, each
     * "root:<pattern>" or "state:<pattern>" below the plugin's own root or state directory
     * ("state:*" + "/" + "*": any entry two levels down). When one matches at start, the plugin is
     * initialised at start like any other. */
    const char *const *start_if;
    void *reserved[3];
} berth_plugin_reg_t;

/* What the entry function returns. Static data: the loader may call the entry more than once. */
typedef struct berth_module_desc_s {
    uint32_t magic;        /* BERTH_MODULE_MAGIC */
    uint16_t abi_major;    /* BERTH_ABI_MAJOR as compiled */
    uint16_t abi_minor;    /* the newest core-table minor the module uses */
    uint32_t struct_size;  /* sizeof(berth_module_desc_t) as compiled */
    const char *signature; /* BERTH_BUILD_SIGNATURE as compiled */
    const char *name;      /* file basename without .so */
    const char *version;
    const char *license; /* SPDX expression */
    const char *origin;  /* URL or vendor */
    const char *description;
    const berth_plugin_reg_t *const *plugins; /* NULL-terminated */
    void *reserved[8];
} berth_module_desc_t;

#if defined(__GNUC__)
#define BERTH_EXPORT __attribute__((visibility("default")))
#else
#define BERTH_EXPORT
#endif

/* Defines the entry function. NAME is the file basename with '-' as '_'. Usage:
 *   BERTH_MODULE(hello, .version = "1.0", .license = "Apache-2.0", .plugins = hello_plugins);
 */
#define BERTH_MODULE(NAME, ...)                                                              \
    BERTH_EXPORT const berth_module_desc_t *berth_module_v1_##NAME(void);                    \
    BERTH_EXPORT const berth_module_desc_t *berth_module_v1_##NAME(void)                     \
    {                                                                                        \
        static const berth_module_desc_t desc = {.magic = BERTH_MODULE_MAGIC,                \
                                                 .abi_major = BERTH_ABI_MAJOR,               \
                                                 .abi_minor = BERTH_ABI_MINOR,               \
                                                 .struct_size = sizeof(berth_module_desc_t), \
                                                 .signature = BERTH_BUILD_SIGNATURE,         \
                                                 .name = #NAME,                              \
                                                 __VA_ARGS__};                               \
        return &desc;                                                                        \
    }

/* A healthy instance, as get/get_single/foreach hand it out. Borrowed: valid until its plugin's fini. */
typedef struct berth_instance_s {
    const char *type;
    const char *id;
    void *instance;
    const void *ops;
} berth_instance_t;

/* What a reload did (api->reload, BERTH_CHANGE_RELOADED). Every list is NULL-terminated, of URIs or of
 * "<uri>: <reason>" strings; all borrowed for the callback only. */
typedef struct berth_reload_result_s {
    uint32_t struct_size;
    int code;                    /* 0, or the BERTH_E* of a refused config (then nothing changed) */
    const char *message;         /* a one-line summary, or the error `berthd config check` gives */
    const char *const *enabled;  /* newly initialised */
    const char *const *disabled; /* finished: disabled now, or no longer provided by a file */
    const char *const *reloaded; /* finished and initialised again */
    const char *const *failed;   /* "<uri>: <reason>": its (re)init failed */
    const char *const *restart_needed; /* "<uri>: <why>": changed, but needs a restart */
} berth_reload_result_t;

/* What on_change hears, on the loop thread:
 *   BERTH_CHANGE_REMOVING  `provider` (of a type this plugin requires) is about to be finished: stop using
 *                          it before returning; its fini follows.
 *   BERTH_CHANGE_ADDED     `provider` was just initialised by a reload.
 *   BERTH_CHANGE_RELOADED  a reload is over; `result` says what it did (every healthy plugin with on_change
 *                          hears it, whatever it requires). */
#define BERTH_CHANGE_REMOVING 1
#define BERTH_CHANGE_ADDED 2
#define BERTH_CHANGE_RELOADED 3
struct berth_change_s {
    uint32_t struct_size;
    int what;
    const struct berth_instance_s *provider; /* REMOVING, ADDED */
    const berth_reload_result_t *result;     /* RELOADED */
};

/* One row of the plugin table (introspection, `berthd modules`). Borrowed for the callback only. */
typedef struct berth_plugin_info_s {
    uint32_t struct_size;
    const char *type;
    const char *id;
    const char *file;   /* the .so it came from */
    const char *status; /* ok | skip | error | disabled | abi-error | dep-unavailable */
    const char *reason; /* "" when ok */
    int error_code;     /* BERTH_E* behind a non-ok status, 0 when ok */
    int init_order;     /* 1-based; 0 = never initialised */
    const char *const *requires;
    const char *const *platforms;
    const char *const *capabilities;
    const char *const *export_keys; /* parallel to export_values */
    const char *const *export_values;
    const char *module_name; /* the module file's name and version, "" for core rows */
    const char *module_version;
    int abi_major, abi_minor; /* what the module was built for; 0 when unknown */
} berth_plugin_info_t;

/* The core's function table. Append only; never reorder, never remove. */
struct berth_core_api_s {
    uint32_t size; /* sizeof as compiled into berthd */
    uint16_t abi_major, abi_minor;

    /* memory: for anything whose ownership crosses the boundary */
    void *(*malloc)(size_t n);
    void (*free)(void *p);
    char *(*strdup)(const char *s);

    /* errors (error.h). Both return `code` / the record's code, so `return api->error_make(...)` reads. */
    int (*error_make)(berth_error_t **err, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    /* Prefixes "<fmt>: " to the message of *err (if any); returns its code. */
    int (*error_wrap)(berth_error_t **err, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
    void (*error_free)(berth_error_t *err);
    const char *(*error_name)(int code); /* "NotFound" */

    /* logging (log.h). */
    void (*log)(const berth_logger_t *lg, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    void (*vlog)(const berth_logger_t *lg, int level, const char *fmt, va_list ap);
    int (*log_enabled)(const berth_logger_t *lg, int level);

    /* config (config.h). A NULL node reads as absent everywhere. */
    int (*node_kind)(const berth_config_node_t *n);
    const berth_config_node_t *(*map_get)(const berth_config_node_t *map, const char *key);
    size_t (*map_size)(const berth_config_node_t *map);
    const char *(*map_key_at)(const berth_config_node_t *map, size_t i);
    const berth_config_node_t *(*map_value_at)(const berth_config_node_t *map, size_t i);
    size_t (*list_size)(const berth_config_node_t *list);
    const berth_config_node_t *(*list_at)(const berth_config_node_t *list, size_t i);
    const char *(*scalar)(const berth_config_node_t *n); /* NULL unless a scalar */
    const char *(*get_string)(const berth_config_node_t *map, const char *key, const char *dflt);
    int (*get_int)(const berth_config_node_t *map, const char *key, int64_t dflt, int64_t *out,
                   berth_error_t **err);
    int (*get_bool)(const berth_config_node_t *map, const char *key, int dflt, int *out,
                    berth_error_t **err);

    /* InitContext lookups: only types listed in the caller's `requires` (or by URI in `after`). */
    int (*get)(berth_init_ctx_t *ic, const char *type, const char *id, berth_instance_t *out,
               berth_error_t **err);
    int (*get_single)(berth_init_ctx_t *ic, const char *type, berth_instance_t *out,
                      berth_error_t **err);
    /* Healthy instances in init order; cb returning non-zero stops early. Returns how many were visited,
     * or a negative BERTH_E* if the type was not declared. */
    int (*foreach)(berth_init_ctx_t *ic, const char *type,
                   int (*cb)(void *user, const berth_instance_t *inst), void *user);
    /* Status of any plugin by URI ("ok", "skip", ...), reason copied into the static-lifetime core table. */
    int (*status)(berth_init_ctx_t *ic, const char *uri, const char **status, const char **reason);

    /* metadata shown by introspection */
    int (*export_set)(berth_init_ctx_t *ic, const char *key, const char *value);
    int (*capability_add)(berth_init_ctx_t *ic, const char *capability);

    /* readiness: READY=1 is sent once every token registered during init is done. After a plugin
     * registers a token, a failed init stops the daemon (containerd #9153). Loop thread only. */
    berth_ready_token_t *(*readiness_register)(berth_init_ctx_t *ic);
    void (*readiness_done)(berth_ready_token_t *token);

    /* hooks (hooks.h) */
    int (*hook_register)(berth_init_ctx_t *ic, berth_hook_point_t point, int priority,
                         berth_hook_fn fn, void *user, berth_error_t **err);
    int (*hook_invoke)(berth_hook_point_t point, void *payload, berth_error_t **err);
    berth_hook_mode_t (*hook_mode)(berth_hook_point_t point);

    /* string maps for hook payloads and labels */
    berth_kv_t *(*kv_new)(void);
    void (*kv_free)(berth_kv_t *kv);
    int (*kv_set)(berth_kv_t *kv, const char *key, const char *value);
    int (*kv_unset)(berth_kv_t *kv, const char *key);
    const char *(*kv_get)(const berth_kv_t *kv, const char *key);
    size_t (*kv_size)(const berth_kv_t *kv);
    const char *(*kv_key_at)(const berth_kv_t *kv, size_t i);
    const char *(*kv_value_at)(const berth_kv_t *kv, size_t i);

    /* the plugin table, for introspection services: every row, in init order then the rest */
    void (*plugins_list)(void (*cb)(void *user, const berth_plugin_info_t *info), void *user);

    /* path safety: open `rel` beneath the directory fd `dirfd` (openat2 RESOLVE_BENEATH|NO_MAGICLINKS,
     * refusing "..", absolute paths and symlink escapes). Returns an fd or a negative BERTH_E*. */
    int (*open_beneath)(int dirfd, const char *rel, int flags, unsigned mode, berth_error_t **err);
    /* mkdir -p with `mode` for each created component; an existing path must be a directory. */
    int (*mkdir_all)(const char *path, unsigned mode, berth_error_t **err);

    /* run fn(arg) on the loop thread soon; callable from any thread (how pool work reports back). */
    int (*call_on_loop)(void (*fn)(void *arg), void *arg);

    /* the RPC being served on this thread: a transport sets the call's containerd-lease header around each
     * unary handler it runs (NULL clears); a handler reads it with call_lease ("" outside a call or when
     * the call names no lease), so what the call creates can join that lease. */
    void (*call_set_lease)(const char *lease);
    const char *(*call_lease)(void);

    /* ABI minor 5. Asks for a reload (as SIGHUP does). It runs on the loop soon after, never inside this
     * call; requests made while one runs are served by one more reload after it. `done` (may be NULL)
     * is called once, on the loop thread, with what it did. Loop thread only. */
    int (*reload)(void (*done)(void *user, const berth_reload_result_t *result), void *user,
                  berth_error_t **err);

    /* ABI minor 6. Initialises plugins deferred until first use (BERTH_PLUGIN_ON_DEMAND): with a type and
     * a key, those of the type whose key matches (for io.containerd.grpc.v1 the key is the full gRPC
     * service name); with a type and no key, every deferred plugin of the type; with neither, all of
     * them. The deferred plugins they require come first, and the other plugins of their modules with
     * them; plugins that follow changes (on_change) hear BERTH_CHANGE_ADDED of each. Returns how many
     * were initialised (0: nothing deferred matched, or what matched skipped: not applicable here), or
     * BERTH_ENOTIMPL with *err naming the plugin and why when what matched failed to initialise and
     * nothing started. Loop thread only. */
    int (*demand)(const char *type, const char *key, berth_error_t **err);
};

#define BERTH_API_HAS(api, fn)                                                              \
    (offsetof(berth_core_api_t, fn) + sizeof(((berth_core_api_t *)0)->fn) <= (api)->size && \
     (api)->fn != NULL)

/* The InitContext. Only these leading fields are public (read-only); the core keeps more after them. */
struct berth_init_ctx_s {
    uint32_t size;               /* of the public part as berthd compiled it */
    const berth_core_api_t *api; /* long-lived */
    const char *type;
    const char *id;
    const char *uri;         /* type "." id */
    const char *root;        /* <root>/<uri>, created 0700 */
    const char *state;       /* <state>/<uri>, created 0700 */
    const char *daemon_root; /* berthd's root and state, for paths shared by contract */
    const char *daemon_state;
    const berth_config_node_t
        *config;               /* this plugin's section, validated, defaults filled; a map */
    uv_loop_t *loop;           /* long-lived */
    const berth_logger_t *log; /* long-lived: until after fini */
};

#ifdef __cplusplus
}
#endif
#endif /* BERTH_MODULE_H */
