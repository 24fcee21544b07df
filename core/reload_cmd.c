/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `berthd reload` and `berthd modules --address SOCK|--running`: calls to a running berthd over its socket
 * (berth.services.modules.v1.Modules). berthd itself does not link libnghttp2 or libberth-client (what it
 * maps at start is part of its footprint): these commands dlopen libberth-client.so.0 when they run, found
 * beside the executable as the modules are (<prefix>/bin/berthd -> <prefix>/lib/libberth-client.so.0,
 * which is also the build tree's layout), else through the dynamic linker's search path.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../client/include/berth/client.h" /* types only: nothing of the library is linked */
#include "config.h"
#include "error.h"
#include "paths.h"
#include "reload_cmd.h"
#include "util.h"

#define TRANSPORT_URI "io.berth.transport.v1.grpc"
#define CLIENT_SONAME "libberth-client.so.0"
/* a reload takes as long as the plugins it initialises: generous, but not forever */
#define RELOAD_TIMEOUT_MS 300000

/* ---- the socket address --------------------------------------------------------------------------- */

/* Keeps the --set assignments that address the transport's section: the others name plugins this command
 * does not load, and resolving them needs every module's URI. */
static char **
transport_sets(char **pending)
{
    char **keep = NULL;
    for (size_t i = 0; pending && pending[i]; i++) {
        const char *key = pending[i] + strlen("plugins.");
        if (strncmp(key, "\"" TRANSPORT_URI "\".", strlen(TRANSPORT_URI) + 3) == 0 ||
            strncmp(key, TRANSPORT_URI ".", strlen(TRANSPORT_URI) + 1) == 0 ||
            strncmp(key, "\"" TRANSPORT_URI "\"=", strlen(TRANSPORT_URI) + 3) == 0 ||
            strncmp(key, TRANSPORT_URI "=", strlen(TRANSPORT_URI) + 1) == 0)
            berth__strv_push(&keep, pending[i]);
    }
    return keep;
}

char *
berth__remote_address(const berth__remote_opts_t *o, berth_error_t **err)
{
    if (o->address != NULL)
        return berth__xstrdup(o->address);
    berth__config_t cfg = {0};
    char *address = NULL;
    if (berth__config_load(&cfg, o->config_path, err) < 0)
        goto out;
    for (size_t i = 0; o->sets && o->sets[i]; i++)
        if (berth__config_set(&cfg, o->sets[i], err) < 0)
            goto out;
    char **keep = transport_sets(cfg.pending_plugin_sets);
    berth__strv_free(cfg.pending_plugin_sets);
    cfg.pending_plugin_sets = keep;
    const char *const known[] = {TRANSPORT_URI, NULL};
    if (berth__config_resolve_plugin_sets(&cfg, known, err) < 0)
        goto out;
    const berth_config_node_t *section =
        berth__map_get(berth__map_get(cfg.tree, "plugins"), TRANSPORT_URI);
    const char *configured = berth__get_string(section, "address", "");
    if (configured[0] != '\0')
        address = berth__xstrdup(configured);
    else
        address = berth__xasprintf("%s/berthd.sock", o->state ? o->state : cfg.state);
out:
    berth__config_free(&cfg);
    return address;
}

/* ---- the client library, at command time ---------------------------------------------------------- */

typedef struct client_lib {
    void *handle;
    int (*client_new)(const char *, const berth_client_options_t *, berth_client_t **,
                      berth_error_t **);
    void (*client_free)(berth_client_t *);
    void (*error_free)(berth_error_t *);
    int (*modules_reload)(berth_client_t *, const berth_call_t *, berth_modules_reload_t *,
                          berth_error_t **);
    void (*modules_reload_free)(berth_modules_reload_t *);
    int (*modules)(berth_client_t *, const berth_call_t *, berth_module_t **, size_t *,
                   berth_error_t **);
    void (*modules_free)(berth_module_t *, size_t);
} client_lib_t;

static void *
open_client_library(char **tried)
{
    cleanup_free char *exe = berth__exe_dir();
    char *beside = NULL;
    if (exe != NULL) {
        size_t n = strlen(exe);
        if (n >= 4 && strcmp(exe + n - 4, "/bin") == 0)
            beside = berth__xasprintf("%.*s/lib/" CLIENT_SONAME, (int)(n - 4), exe);
        else
            beside = berth__xasprintf("%s/../lib/" CLIENT_SONAME, exe);
    }
    void *h = beside ? dlopen(beside, RTLD_NOW | RTLD_LOCAL) : NULL;
    if (h == NULL)
        h = dlopen(CLIENT_SONAME, RTLD_NOW | RTLD_LOCAL);
    *tried = beside ? beside : berth__xstrdup("-");
    return h;
}

static int
client_lib_open(client_lib_t *lib)
{
    memset(lib, 0, sizeof(*lib));
    cleanup_free char *tried = NULL;
    lib->handle = open_client_library(&tried);
    if (lib->handle == NULL) {
        fprintf(stderr, "berthd: cannot load the client library (%s, then " CLIENT_SONAME "): %s\n",
                tried, dlerror());
        return -1;
    }
    struct {
        void **fn;
        const char *name;
    } syms[] = {
        {(void **)&lib->client_new, "berth_client_new"},
        {(void **)&lib->client_free, "berth_client_free"},
        {(void **)&lib->error_free, "berth_error_free"},
        {(void **)&lib->modules_reload, "berth_modules_reload"},
        {(void **)&lib->modules_reload_free, "berth_modules_reload_free"},
        {(void **)&lib->modules, "berth_modules"},
        {(void **)&lib->modules_free, "berth_modules_free"},
    };
    for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
        *syms[i].fn = dlsym(lib->handle, syms[i].name);
        if (*syms[i].fn == NULL) {
            fprintf(stderr, "berthd: the client library has no %s: %s\n", syms[i].name, dlerror());
            dlclose(lib->handle);
            lib->handle = NULL;
            return -1;
        }
    }
    return 0;
}

/* Loads the library and makes a client on the daemon's socket; prints what went wrong. */
static berth_client_t *
connect_daemon(const berth__remote_opts_t *o, client_lib_t *lib)
{
    berth_error_t *err = NULL;
    cleanup_free char *address = berth__remote_address(o, &err);
    if (address == NULL) {
        fprintf(stderr, "berthd: config: %s\n", berth__error_msg(err));
        berth__error_free(err);
        return NULL;
    }
    if (client_lib_open(lib) < 0)
        return NULL;
    berth_client_t *c = NULL;
    if (lib->client_new(address, NULL, &c, &err) < 0) {
        fprintf(stderr, "berthd: %s: %s\n", address, err ? err->message : "");
        lib->error_free(err);
        return NULL;
    }
    return c;
}

/* The library stays mapped: its once-made statics (nghttp2 callbacks) live until exit, where they would
 * read as leaks once unmapped, and the command ends right after. */
static void
client_lib_close(client_lib_t *lib, berth_client_t *c)
{
    lib->client_free(c);
}

/* ---- berthd reload -------------------------------------------------------------------------------- */

/* containerd's errdefs add the class to a status message ("...: invalid argument") and its clients
 * strip it again: so does this, so the line reads as `berthd config check`'s does. */
static const char *
without_class(char *message, const char *cls)
{
    size_t n = strlen(message), k = strlen(cls);
    if (n >= k + 2 && strcmp(message + n - k, cls) == 0 && message[n - k - 2] == ':')
        message[n - k - 2] = '\0';
    return message;
}

static void
print_list(const char *what, char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%s %s\n", what, v[i]);
}

int
berth__cmd_reload(const berth__remote_opts_t *o)
{
    client_lib_t lib;
    berth_client_t *c = connect_daemon(o, &lib);
    if (c == NULL)
        return 1;
    berth_call_t call = {.timeout_ms = RELOAD_TIMEOUT_MS};
    berth_modules_reload_t r;
    berth_error_t *err = NULL;
    int rc = 0;
    if (lib.modules_reload(c, &call, &r, &err) < 0) {
        if (err != NULL && err->code == BERTH_EINVAL)
            fprintf(stderr, "berthd: config: %s\n",
                    without_class(err->message, "invalid argument"));
        else
            fprintf(stderr, "berthd: reload: %s\n", err ? err->message : "failed");
        lib.error_free(err);
        rc = 1;
    } else {
        print_list("enabled", r.enabled, r.n_enabled);
        print_list("disabled", r.disabled, r.n_disabled);
        print_list("reloaded", r.reloaded, r.n_reloaded);
        print_list("failed", r.failed, r.n_failed);
        print_list("restart-needed", r.restart_needed, r.n_restart_needed);
        if (r.message[0] != '\0')
            printf("%s\n", r.message);
        rc = r.n_failed > 0 ? 1 : 0;
        lib.modules_reload_free(&r);
    }
    client_lib_close(&lib, c);
    return rc;
}

/* ---- berthd modules --running --------------------------------------------------------------------- */

int
berth__cmd_modules_running(const berth__remote_opts_t *o)
{
    client_lib_t lib;
    berth_client_t *c = connect_daemon(o, &lib);
    if (c == NULL)
        return 1;
    berth_module_t *m = NULL;
    size_t n = 0;
    berth_error_t *err = NULL;
    int rc = 0;
    if (lib.modules(c, NULL, &m, &n, &err) < 0) {
        fprintf(stderr, "berthd: modules: %s\n", err ? err->message : "failed");
        lib.error_free(err);
        rc = 1;
    } else {
        /* `berthd modules`' columns, from the daemon's table */
        printf("%-5s %-44s %-15s %s\n", "ORDER", "URI", "STATUS", "FILE  REASON");
        for (size_t i = 0; i < n; i++) {
            char ord[16] = "-";
            if (m[i].init_order > 0)
                snprintf(ord, sizeof(ord), "%d", (int)m[i].init_order);
            printf("%-5s %-44s %-15s %s%s%s\n", ord, m[i].uri, m[i].status,
                   m[i].file[0] ? m[i].file : "-", m[i].reason[0] ? "  " : "", m[i].reason);
            for (size_t j = 0; j < m[i].n_exports; j++)
                printf("      export %s=%s\n", m[i].exports[j].key, m[i].exports[j].value);
        }
        lib.modules_free(m, n);
    }
    client_lib_close(&lib, c);
    return rc;
}
