/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The loader: finds *.so files, opens them with dlopen(RTLD_NOW | RTLD_LOCAL), and checks each descriptor
 * in the order of brief §3 (symbol, magic, major, minor, struct size, signature) before reading anything
 * else. Every failure becomes one row with a one-line reason; nothing here is fatal.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "manifest.h"
#include "paths.h"
#include "registry.h"
#include "util.h"

#define MAX_PLUGINS_PER_MODULE 256
#define MAX_REQUIRES 64
#define MAX_REASON 512

static const char core_signature[] = BERTH_BUILD_SIGNATURE;

char *
berth__module_list_cache(const char *state)
{
    return berth__xasprintf("%s/berthd-modules.list", state);
}

char *
berth__loader_builtin_dir(void)
{
    cleanup_free char *exe = berth__exe_dir();
    if (exe == NULL)
        return berth__xstrdup("/usr/lib/berth/modules");
    size_t n = strlen(exe);
    if (n >= 4 && strcmp(exe + n - 4, "/bin") == 0)
        return berth__xasprintf("%.*s/lib/berth/modules", (int)(n - 4), exe);
    return berth__xasprintf("%s/../lib/berth/modules", exe);
}

static char *
module_name_of(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    return berth__xstrndup(base, n > 3 ? n - 3 : n);
}

/* "snapshot-overlay" -> "berth_module_v1_snapshot_overlay" */
static void
entry_symbol(char *buf, size_t len, const char *name, int major)
{
    int n = snprintf(buf, len, "berth_module_v%d_", major);
    for (const char *s = name; *s && (size_t)n + 1 < len; s++)
        buf[n++] = (*s == '-' || *s == '.') ? '_' : *s;
    buf[n] = '\0';
}

/* Names the first comma-separated field that differs, nginx's "not binary compatible" made precise. */
static int
signature_mismatch(const char *mod, char *reason, size_t len)
{
    const char *a = mod, *b = core_signature;
    while (*a || *b) {
        size_t la = strcspn(a, ","), lb = strcspn(b, ",");
        if (la != lb || strncmp(a, b, la) != 0) {
            snprintf(reason, len,
                     "build signature differs: module built with %.*s, berthd has %.*s", (int)la,
                     la ? a : "(nothing)", (int)lb, lb ? b : "(nothing)");
            return 1;
        }
        a += la + (a[la] == ',');
        b += lb + (b[lb] == ',');
    }
    return 0;
}

static int check_desc(const berth_module_desc_t *d, char *reason, size_t len);

/* The ABI checks, in order. Fills *out with the descriptor or reason with why not. */
static int
check_module(void *handle, const char *name, const berth_module_desc_t **out, char *reason,
             size_t len)
{
    char sym[256];
    entry_symbol(sym, sizeof(sym), name, BERTH_ABI_MAJOR);
    const berth_module_desc_t *(*entry)(void) =
        (const berth_module_desc_t *(*)(void))dlsym(handle, sym);
    if (entry == NULL) {
        for (int major = 0; major < 10; major++) {
            char other[256];
            entry_symbol(other, sizeof(other), name, major);
            if (major != BERTH_ABI_MAJOR && dlsym(handle, other) != NULL) {
                snprintf(reason, len,
                         "built for berth ABI %d; this berthd speaks ABI %d (found %s)", major,
                         BERTH_ABI_MAJOR, other);
                return -1;
            }
        }
        snprintf(reason, len, "not a berth module (no %s)", sym);
        return -1;
    }
    const berth_module_desc_t *d = entry();
    if (d == NULL) {
        snprintf(reason, len, "%s returned no descriptor", sym);
        return -1;
    }
    if (check_desc(d, reason, len) < 0)
        return -1;
    if (d->plugins == NULL) {
        snprintf(reason, len, "descriptor lists no plugins");
        return -1;
    }
    *out = d;
    return 0;
}

/* What a descriptor (or a manifest's copy of one) must pass before anything else of it is read. */
static int
check_desc(const berth_module_desc_t *d, char *reason, size_t len)
{
    if (d->magic != BERTH_MODULE_MAGIC) {
        snprintf(reason, len, "garbled descriptor: magic 0x%08x, expected 0x%08x", d->magic,
                 BERTH_MODULE_MAGIC);
        return -1;
    }
    if (d->abi_major != BERTH_ABI_MAJOR) {
        snprintf(reason, len, "ABI major %u, need %d", d->abi_major, BERTH_ABI_MAJOR);
        return -1;
    }
    if (d->abi_minor > BERTH_ABI_MINOR) {
        snprintf(reason, len, "needs berthd ABI %d.%u, this berthd is %d.%d", BERTH_ABI_MAJOR,
                 d->abi_minor, BERTH_ABI_MAJOR, BERTH_ABI_MINOR);
        return -1;
    }
    size_t min = offsetof(berth_module_desc_t, plugins) + sizeof(d->plugins);
    if (d->struct_size < min) {
        snprintf(reason, len,
                 "descriptor struct_size %u is smaller than the %zu bytes ABI 1.0 needs",
                 d->struct_size, min);
        return -1;
    }
    if (d->signature == NULL) {
        snprintf(reason, len, "descriptor has no build signature");
        return -1;
    }
    if (signature_mismatch(d->signature, reason, len))
        return -1;
    return 0;
}

static void *
open_module(const char *path, const char *name, const berth_module_desc_t **desc, char *reason,
            size_t len)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        snprintf(reason, len, "dlopen: %s", dlerror());
        return NULL;
    }
    if (check_module(h, name, desc, reason, len) < 0) {
        dlclose(h);
        return NULL;
    }
    return h;
}

/* ---- probing in a child: a crashing constructor becomes a reason, not a dead daemon ---------------- */

typedef struct probe_result {
    int ok;
    char reason[MAX_REASON];
    char **uris;
} probe_result_t;

static void
probe_child(int wfd, const char *path, const char *name)
{
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0)
        dup2(devnull, STDERR_FILENO);
    FILE *out = fdopen(wfd, "w");
    char reason[MAX_REASON];
    const berth_module_desc_t *d = NULL;
    void *h = open_module(path, name, &d, reason, sizeof(reason));
    if (h == NULL) {
        fprintf(out, "error %s\n", reason);
    } else {
        fprintf(out, "ok\n");
        for (size_t i = 0; i < MAX_PLUGINS_PER_MODULE && d->plugins[i]; i++) {
            const berth_plugin_reg_t *r = d->plugins[i];
            if (r->struct_size >= offsetof(berth_plugin_reg_t, requires) && r->type && r->id)
                fprintf(out, "%s.%s\n", r->type, r->id);
        }
    }
    fflush(out);
    _exit(0); /* no atexit, no destructors of the probed module, no leak check in the child */
}

static void
probe_parse(probe_result_t *res, char *buf)
{
    char *save = NULL;
    char *line = strtok_r(buf, "\n", &save);
    if (line == NULL)
        return;
    if (strncmp(line, "error ", 6) == 0) {
        snprintf(res->reason, sizeof(res->reason), "%s", line + 6);
        return;
    }
    if (strcmp(line, "ok") != 0)
        return;
    res->ok = 1;
    while ((line = strtok_r(NULL, "\n", &save)) != NULL)
        berth__strv_push(&res->uris, line);
}

static void
probe_file(const char *path, const char *name, probe_result_t *res)
{
    memset(res, 0, sizeof(*res));
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        snprintf(res->reason, sizeof(res->reason), "probe: pipe: %s", strerror(errno));
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        probe_child(p[1], path, name);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        snprintf(res->reason, sizeof(res->reason), "probe: fork: %s", strerror(errno));
        return;
    }
    char buf[16384];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof(buf) - 1) {
        r = read(p[0], buf + n, sizeof(buf) - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    close(p[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (clean) {
        probe_parse(res, buf);
        if (!res->ok && res->reason[0] == '\0')
            snprintf(res->reason, sizeof(res->reason), "probe: no answer from the probing child");
    } else if (WIFSIGNALED(status)) {
        const char *abbrev = sigabbrev_np(WTERMSIG(status));
        snprintf(res->reason, sizeof(res->reason), "crashed (SIG%s) while loading",
                 abbrev ? abbrev : "?");
    } else {
        /* sanitizers catch the fault and exit instead of dying by the signal */
        snprintf(res->reason, sizeof(res->reason), "crashed while loading (exit status %d)",
                 WEXITSTATUS(status));
    }
}

/* ---- what probes found, kept across starts -------------------------------------------------------- */

/* Lines "<dev> <ino> <size> <mtime> <path>\t<uri> <uri>...": a file with the same identity lists the same
 * plugins, so it needs no probe. Written whole to a temporary file and renamed over the old one. */
typedef struct berth__list_cache {
    char **lines;
    int dirty;
} list_cache_t;

static char *
cache_key(const char *path, const struct stat *st)
{
    return berth__xasprintf("%llu %llu %lld %lld.%09ld %s", (unsigned long long)st->st_dev,
                            (unsigned long long)st->st_ino, (long long)st->st_size,
                            (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec, path);
}

static int
cache_lookup(list_cache_t *c, const char *path, const struct stat *st, probe_result_t *res)
{
    if (c == NULL)
        return 0;
    cleanup_free char *key = cache_key(path, st);
    size_t kl = strlen(key);
    for (size_t i = 0; c->lines && c->lines[i]; i++) {
        if (strncmp(c->lines[i], key, kl) != 0 || c->lines[i][kl] != '\t')
            continue;
        memset(res, 0, sizeof(*res));
        res->ok = 1;
        cleanup_free char *uris = berth__xstrdup(c->lines[i] + kl + 1);
        char *save = NULL;
        for (char *u = strtok_r(uris, " ", &save); u; u = strtok_r(NULL, " ", &save))
            if (strchr(u, '.'))
                berth__strv_push(&res->uris, u);
        return res->uris != NULL;
    }
    return 0;
}

static void
cache_remember(list_cache_t *c, const char *path, const struct stat *st, const probe_result_t *res)
{
    if (c == NULL || res->uris == NULL)
        return;
    char *line = cache_key(path, st);
    for (size_t i = 0; res->uris[i]; i++) {
        char *l = berth__xasprintf("%s%c%s", line, i ? ' ' : '\t', res->uris[i]);
        free(line);
        line = l;
    }
    berth__strv_push(&c->lines, line);
    free(line);
    c->dirty = 1;
}

static void
cache_load(list_cache_t *c, const char *file)
{
    FILE *f = fopen(file, "re");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (f && (n = getline(&line, &cap, f)) > 0) {
        line[strcspn(line, "\n")] = '\0';
        if (strchr(line, '\t'))
            berth__strv_push(&c->lines, line);
    }
    free(line);
    if (f)
        fclose(f);
}

/* Only the lines of files still there and unchanged are kept. */
static void
cache_save(list_cache_t *c, const char *file)
{
    if (!c->dirty)
        return;
    cleanup_free char *tmp = berth__xasprintf("%s.tmp", file);
    FILE *f = fopen(tmp, "we");
    if (f == NULL)
        return;
    for (size_t i = 0; c->lines && c->lines[i]; i++) {
        char *tab = strchr(c->lines[i], '\t'), *path = c->lines[i];
        for (int sp = 0; sp < 4 && path; sp++)
            path = strchr(path + 1, ' ');
        struct stat st;
        if (path == NULL || tab == NULL)
            continue;
        cleanup_free char *p = berth__xstrndup(path + 1, (size_t)(tab - path - 1));
        cleanup_free char *key = stat(p, &st) == 0 ? cache_key(p, &st) : NULL;
        if (key && strncmp(c->lines[i], key, strlen(key)) == 0)
            fprintf(f, "%s\n", c->lines[i]);
    }
    if (fclose(f) != 0 || rename(tmp, file) != 0)
        unlink(tmp);
}

/* ---- registrations ------------------------------------------------------------------------------- */

static berth__plugin_t *
module_row(berth__registry_t *reg, berth__module_t *mod, berth__status_t st, const char *reason)
{
    berth__plugin_t *p = berth__registry_add(reg, mod, BERTH_MODULE_ROW_TYPE, mod->name);
    berth__plugin_set_status(p, st, BERTH_EINVAL, "%s", reason);
    return p;
}

static int
uri_parts(const char *uri)
{
    int parts = 1;
    for (const char *s = uri; *s; s++)
        parts += *s == '.';
    return parts;
}

/* Stands in for a manifest row's init in the checks: the real one comes when the module is opened. */
static int
manifest_init_placeholder(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    (void)ic;
    (void)instance;
    (void)err;
    return BERTH_EINTERNAL;
}

static const char *
registration_problem(const berth_plugin_reg_t *r, char *buf, size_t len)
{
    if (r->type == NULL || r->type[0] == '\0' || r->id == NULL || r->id[0] == '\0')
        return "registration has an empty type or id";
    for (const char *s = r->type; *s; s++)
        if (*s <= ' ' || *s == '/')
            return "registration type contains a space, control character or '/'";
    for (const char *s = r->id; *s; s++)
        if (*s <= ' ' || *s == '/')
            return "registration id contains a space, control character or '/'";
    if (uri_parts(r->type) + uri_parts(r->id) < 4)
        return "plugin URI needs at least four dot-separated parts (e.g. "
               "io.containerd.event.v1.exchange)";
    if (r->init == NULL)
        return "registration has no init function";
    size_t n = 0;
    for (; r->requires && r->requires[n]; n++) {
        if (n >= MAX_REQUIRES)
            return "registration has too many requires";
        if (strcmp(r->requires[n], "*") == 0 && (n > 0 || r->requires[1] != NULL))
            return "requires \"*\" must stand alone";
        if (strcmp(berth__required_type(r->requires[n]), r->type) == 0) {
            snprintf(buf, len, "plugin requires its own type %s", r->type);
            return buf;
        }
    }
    return NULL;
}

static void add_row(berth__registry_t *reg, berth__module_t *mod, const berth_plugin_reg_t *r,
                    size_t index, const char *const *key);

static void
add_registration(berth__registry_t *reg, berth__module_t *mod, const berth_plugin_reg_t *r,
                 size_t index)
{
    add_row(reg, mod, r, index, NULL);
}

/* One row per registration; `key` is set for a manifest's (whose init, fini and ops come when bound). */
static void
add_row(berth__registry_t *reg, berth__module_t *mod, const berth_plugin_reg_t *r, size_t index,
        const char *const *key)
{
    if (r->struct_size < offsetof(berth_plugin_reg_t, ops)) {
        char reason[MAX_REASON];
        snprintf(reason, sizeof(reason),
                 "registration %zu: struct_size %u is smaller than the %zu bytes "
                 "ABI 1.0 needs",
                 index, r->struct_size, offsetof(berth_plugin_reg_t, ops));
        module_row(reg, mod, BERTH_ST_ABI_ERROR, reason);
        return;
    }
    berth_plugin_reg_t copy = {0};
    memcpy(&copy, r, r->struct_size < sizeof(copy) ? r->struct_size : sizeof(copy));
    char buf[MAX_REASON];
    if (key != NULL)
        copy.init = manifest_init_placeholder;
    const char *problem = registration_problem(&copy, buf, sizeof(buf));
    if (key != NULL)
        copy.init = NULL;
    if (problem != NULL && (copy.type == NULL || copy.id == NULL || !copy.type[0] || !copy.id[0])) {
        cleanup_free char *reason = berth__xasprintf("registration %zu: %s", index, problem);
        module_row(reg, mod, BERTH_ST_ABI_ERROR, reason);
        return;
    }
    char *uri = berth__xasprintf("%s.%s", copy.type, copy.id);
    berth__plugin_t *dup = berth__registry_find(reg, uri);
    free(uri);
    berth__plugin_t *p = berth__registry_add(reg, mod, copy.type, copy.id);
    p->reg = copy;
    p->key = key ? *key : berth__manifest_key_of(&copy);
    if (problem != NULL)
        berth__plugin_set_status(p, BERTH_ST_ABI_ERROR, BERTH_EINVAL, "%s", problem);
    else if (dup != NULL)
        berth__plugin_set_status(p, BERTH_ST_ABI_ERROR, BERTH_EEXIST,
                                 "duplicate plugin %s: registered by both %s and %s", p->uri,
                                 dup->module ? dup->module->path : "berthd", mod->path);
    else if (berth__strv_contains((const char *const *)reg->cfg->disabled, p->uri))
        berth__plugin_set_status(p, BERTH_ST_DISABLED, 0, "disabled in config");
}

static int
all_disabled(const berth__registry_t *reg, char **uris)
{
    if (uris == NULL || uris[0] == NULL)
        return 0;
    for (size_t i = 0; uris[i]; i++)
        if (!berth__strv_contains((const char *const *)reg->cfg->disabled, uris[i]))
            return 0;
    return 1;
}

static int
same_file(const berth__module_t *m, const struct stat *st)
{
    return m->dev == st->st_dev && m->ino == st->st_ino && m->size == st->st_size &&
           m->mtime.tv_sec == st->st_mtim.tv_sec && m->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static void
add_module(berth__registry_t *reg, berth__module_t *mod)
{
    reg->modules = berth__xrealloc(reg->modules, (reg->nmodules + 1) * sizeof(*reg->modules));
    reg->modules[reg->nmodules++] = mod;
}

static void
add_registrations(berth__registry_t *reg, berth__module_t *mod)
{
    size_t i = 0;
    for (; i < MAX_PLUGINS_PER_MODULE && mod->desc->plugins[i]; i++)
        add_registration(reg, mod, mod->desc->plugins[i], i);
    if (i == 0)
        module_row(reg, mod, BERTH_ST_ABI_ERROR, "descriptor lists no plugins");
}

/* The reused registry's record of this path: shared when the file did not change (*changed = 0). */
static berth__module_t *
reusable(const berth__load_opts_t *opts, const char *path, const struct stat *st, int *changed)
{
    *changed = 0;
    for (size_t i = 0; opts->reuse && i < opts->reuse->nmodules; i++) {
        berth__module_t *m = opts->reuse->modules[i];
        if ((m->handle == NULL && m->manifest == NULL) || strcmp(m->path, path) != 0)
            continue;
        if (same_file(m, st))
            return m;
        if (m->handle != NULL) /* a file never opened needs no copy: dlopen has no mapping of it */
            *changed = 1;
    }
    return NULL;
}

/* dlopen matches an open object by the name it was opened with: a copy under a new name loads anew. */
static void *
open_copy(const char *path, const char *name, const char *copy_dir,
          const berth_module_desc_t **desc, char *reason, size_t len)
{
    static unsigned copies;
    cleanup_free char *copy =
        berth__xasprintf("%s/%s.%ld.%u.so", copy_dir, name, (long)getpid(), ++copies);
    berth_error_t *err = NULL;
    if (berth__mkdir_all(copy_dir, 0700, &err) < 0 || berth__copy_file(path, copy, &err) < 0) {
        snprintf(reason, len, "copy for loading: %s", berth__error_msg(err));
        berth__error_free(err);
        return NULL;
    }
    void *h = open_module(copy, name, desc, reason, len);
    unlink(copy); /* the mapping stays */
    return h;
}

static void
add_manifest_rows(berth__registry_t *reg, berth__module_t *mod)
{
    const berth__manifest_t *m = mod->manifest;
    for (size_t i = 0; i < m->nregs; i++)
        add_row(reg, mod, &m->regs[i], i, (const char *const *)&m->keys[i]);
}

/* A module carrying a manifest gets its rows from it, unopened: 1. Without one (or with one this berthd
 * cannot use) it is opened as before: 0. A manifest failing the descriptor checks is a row of its own,
 * as the descriptor would have been. */
static int
load_manifest(berth__registry_t *reg, berth__module_t *mod)
{
    cleanup_free char *text = NULL;
    if (berth__manifest_read(mod->path, &text) <= 0)
        return 0;
    const char *why = NULL;
    berth__manifest_t *m = berth__manifest_parse(text, &why);
    if (m == NULL) {
        LOG_WARN("module %s: manifest not used (%s): opening it at start", mod->path, why);
        return 0;
    }
    char reason[MAX_REASON];
    char expected[256], named[256]; /* names compare as entry symbols do ('-' and '.' as '_') */
    entry_symbol(expected, sizeof(expected), mod->name, BERTH_ABI_MAJOR);
    entry_symbol(named, sizeof(named), m->desc.name, BERTH_ABI_MAJOR);
    if (strcmp(expected, named) != 0) {
        LOG_WARN("module %s: its manifest is for %s: opening it at start", mod->path, m->desc.name);
        berth__manifest_free(m);
        return 0;
    }
    if (check_desc(&m->desc, reason, sizeof(reason)) < 0) {
        module_row(reg, mod, BERTH_ST_ABI_ERROR, reason);
        berth__manifest_free(m);
        return 1;
    }
    mod->manifest = m;
    mod->desc = &m->desc;
    add_manifest_rows(reg, mod);
    return 1;
}

/* The registration in an open module's descriptor for row p, or NULL. */
static const berth_plugin_reg_t *
registration_of(const berth_module_desc_t *d, const berth__plugin_t *p)
{
    for (size_t i = 0; i < MAX_PLUGINS_PER_MODULE && d->plugins[i]; i++) {
        const berth_plugin_reg_t *r = d->plugins[i];
        if (r->struct_size >= offsetof(berth_plugin_reg_t, requires) && r->type && r->id &&
            strcmp(r->type, p->type) == 0 && strcmp(r->id, p->id) == 0)
            return r;
    }
    return NULL;
}

static void
bind_failed(berth__registry_t *reg, berth__module_t *mod, const char *reason)
{
    for (size_t i = 0; i < reg->nplugins; i++) {
        berth__plugin_t *p = reg->plugins[i];
        if (p->module == mod && (p->status == BERTH_ST_PENDING || p->status == BERTH_ST_DEFERRED))
            berth__plugin_set_status(p, BERTH_ST_ABI_ERROR, BERTH_EINVAL, "%s", reason);
    }
}

void *
berth__loader_open_file(const char *path, const berth_module_desc_t **desc, char *reason,
                        size_t len)
{
    cleanup_free char *name = module_name_of(path);
    return open_module(path, name, desc, reason, len);
}

int
berth__loader_bind(berth__registry_t *reg, berth__module_t *mod)
{
    if (mod->handle != NULL)
        return 0;
    char reason[MAX_REASON];
    const berth_module_desc_t *d = NULL;
    mod->handle = open_module(mod->path, mod->name, &d, reason, sizeof(reason));
    if (mod->handle == NULL) {
        bind_failed(reg, mod, reason);
        return -1;
    }
    mod->desc = d;
    LOG_DEBUG("opened module %s on first use", mod->path);
    for (size_t i = 0; i < reg->nplugins; i++) {
        berth__plugin_t *p = reg->plugins[i];
        if (p->module != mod || strcmp(p->type, BERTH_MODULE_ROW_TYPE) == 0)
            continue;
        const berth_plugin_reg_t *r = registration_of(d, p);
        berth_plugin_reg_t copy = {0};
        if (r != NULL)
            memcpy(&copy, r, r->struct_size < sizeof(copy) ? r->struct_size : sizeof(copy));
        char buf[MAX_REASON];
        const char *problem = r == NULL ? "its manifest lists it, its descriptor does not"
                              : r->struct_size < offsetof(berth_plugin_reg_t, ops)
                                  ? "registration struct_size is smaller than ABI 1.0 needs"
                                  : registration_problem(&copy, buf, sizeof(buf));
        if (problem != NULL) {
            if (p->status == BERTH_ST_PENDING || p->status == BERTH_ST_DEFERRED)
                berth__plugin_set_status(p, BERTH_ST_ABI_ERROR, BERTH_EINVAL, "%s", problem);
            continue;
        }
        p->reg = copy;
    }
    return 0;
}

void
berth__loader_bind_all(berth__registry_t *reg)
{
    for (size_t i = 0; i < reg->nmodules; i++)
        if (reg->modules[i]->manifest && reg->modules[i]->handle == NULL)
            berth__loader_bind(reg, reg->modules[i]);
}

static void
load_file(berth__registry_t *reg, const char *path, const struct stat *st,
          const berth__load_opts_t *opts)
{
    int changed = 0;
    berth__module_t *shared = reusable(opts, path, st, &changed);
    if (shared != NULL) {
        add_module(reg, shared);
        if (shared->handle != NULL)
            add_registrations(reg, shared);
        else
            add_manifest_rows(reg, shared);
        return;
    }
    berth__module_t *mod = berth__xcalloc(1, sizeof(*mod));
    mod->path = berth__xstrdup(path);
    mod->name = module_name_of(path);
    mod->dev = st->st_dev;
    mod->ino = st->st_ino;
    mod->size = st->st_size;
    mod->mtime = st->st_mtim;
    add_module(reg, mod);
    if (!opts->probe && !changed && load_manifest(reg, mod))
        return;

    if (opts->probe || (reg->cfg->disabled && reg->cfg->disabled[0])) {
        probe_result_t res;
        if (opts->probe || !cache_lookup(opts->cache, path, st, &res)) {
            probe_file(path, mod->name, &res);
            if (res.ok && !opts->probe)
                cache_remember(opts->cache, path, st, &res);
        }
        if (!res.ok) {
            module_row(reg, mod, BERTH_ST_ABI_ERROR, res.reason);
            return;
        }
        int skip_open = all_disabled(reg, res.uris);
        if (skip_open) /* never opened: a disabled module costs nothing (containerd #2061) */
            for (size_t i = 0; res.uris[i]; i++) {
                char *dot = strrchr(res.uris[i], '.');
                *dot = '\0';
                berth__plugin_t *p = berth__registry_add(reg, mod, res.uris[i], dot + 1);
                berth__plugin_set_status(p, BERTH_ST_DISABLED, 0,
                                         "disabled in config (not loaded)");
            }
        berth__strv_free(res.uris);
        if (skip_open)
            return;
    }
    char reason[MAX_REASON];
    mod->handle =
        changed && opts->copy_dir
            ? open_copy(path, mod->name, opts->copy_dir, &mod->desc, reason, sizeof(reason))
            : open_module(path, mod->name, &mod->desc, reason, sizeof(reason));
    if (mod->handle == NULL) {
        module_row(reg, mod, BERTH_ST_ABI_ERROR, reason);
        return;
    }
    add_registrations(reg, mod);
}

static int
is_module_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 3 && strcmp(d->d_name + n - 3, ".so") == 0;
}

static void
scan_dir(berth__registry_t *reg, const char *dir, const berth__load_opts_t *opts, int must_exist)
{
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, is_module_file, alphasort);
    if (n < 0) {
        if (must_exist || errno != ENOENT)
            LOG_WARN("module directory %s: %s", dir, strerror(errno));
        return;
    }
    for (int i = 0; i < n; i++) {
        cleanup_free char *path = berth__xasprintf("%s/%s", dir, ents[i]->d_name);
        free(ents[i]);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            load_file(reg, path, &st, opts);
    }
    free(ents);
}

int
berth__loader_scan(berth__registry_t *reg, const berth__load_opts_t *opts)
{
    list_cache_t cache = {0};
    berth__load_opts_t o = *opts;
    if (o.list_cache) {
        cache_load(&cache, o.list_cache);
        o.cache = &cache;
    }
    cleanup_free char *builtin = o.builtin_dir ? NULL : berth__loader_builtin_dir();
    scan_dir(reg, o.builtin_dir ? o.builtin_dir : builtin, &o, 0);
    for (size_t i = 0; reg->cfg->module_dirs && reg->cfg->module_dirs[i]; i++)
        scan_dir(reg, reg->cfg->module_dirs[i], &o, 1);
    if (o.list_cache)
        cache_save(&cache, o.list_cache);
    berth__strv_free(cache.lines);
    return 0;
}
