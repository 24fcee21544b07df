/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The overlayfs snapshotter (io.containerd.snapshotter.v1.overlayfs). Each snapshot is a directory named by
 * a number, so lowerdir options stay short:
 *   <root>/snapshots/<id>/fs      the snapshot's files (the upper dir while active)
 *   <root>/snapshots/<id>/work    overlayfs' work dir
 *   <root>/snapshots/<id>/meta    "<kind>\n<key>\n<parent key>\n"
 * A snapshot is made under a temporary name and renamed into place, and removed by renaming it away
 * first, so a crash leaves only tmp-* and rm-* directories, which Cleanup removes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <berth/module.h>
#include <berth/snapshot.h>

typedef struct entry {
    char *key, *parent;
    berth_snapshot_kind_t kind;
    long id;
} entry_t;

typedef struct overlay {
    const berth_core_api_t *api;
    char *root;
    pthread_mutex_t lock;
    entry_t *entries;
    size_t n;
    long next_id;
} overlay_t;

static entry_t *
find(overlay_t *o, const char *key)
{
    for (size_t i = 0; key && i < o->n; i++)
        if (strcmp(o->entries[i].key, key) == 0)
            return &o->entries[i];
    return NULL;
}

static void
dir_of(overlay_t *o, long id, const char *sub, char *out, size_t len)
{
    snprintf(out, len, "%s/snapshots/%ld%s%s", o->root, id, sub ? "/" : "", sub ? sub : "");
}

static int
write_meta(const char *dir, berth_snapshot_kind_t kind, const char *key, const char *parent)
{
    char tmp[4700], path[4700];
    snprintf(tmp, sizeof(tmp), "%s/meta.tmp", dir);
    snprintf(path, sizeof(path), "%s/meta", dir);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%d\n%s\n%s\n", (int)kind, key, parent ? parent : "");
    int ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    fclose(f);
    return ok && rename(tmp, path) == 0 ? 0 : -1;
}

static int
read_meta(const char *dir, entry_t *e)
{
    char path[4700], line[3][2048];
    snprintf(path, sizeof(path), "%s/meta", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    int n = 0;
    while (n < 3 && fgets(line[n], sizeof(line[n]), f)) {
        line[n][strcspn(line[n], "\n")] = '\0';
        n++;
    }
    fclose(f);
    if (n < 2)
        return -1;
    e->kind = (berth_snapshot_kind_t)atoi(line[0]);
    e->key = strdup(line[1]);
    e->parent = strdup(n > 2 ? line[2] : "");
    return 0;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int
rm_rf(const char *path)
{
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int
fail(overlay_t *o, berth_error_t **err, int code, const char *fmt, const char *a)
{
    return o->api->error_make(err, code, fmt, a);
}

/* ---- mounts --------------------------------------------------------------------------------------- */

static void
add_mount(berth_mount_t **m, size_t *n, const char *type, const char *source,
          const char *const *opts)
{
    *m = realloc(*m, (*n + 1) * sizeof(**m));
    berth_mount_t *x = &(*m)[(*n)++];
    x->type = strdup(type);
    x->source = strdup(source);
    x->n_options = 0;
    while (opts[x->n_options])
        x->n_options++;
    x->options = calloc(x->n_options + 1, sizeof(char *));
    for (size_t i = 0; i < x->n_options; i++)
        x->options[i] = strdup(opts[i]);
}

static void
ov_mounts_free(berth_mount_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(m[i].type);
        free(m[i].source);
        for (size_t j = 0; j < m[i].n_options; j++)
            free(m[i].options[j]);
        free(m[i].options);
    }
    free(m);
}

/* "lowerdir=<p1>/fs:<p2>/fs..." nearest parent first; NULL when there is no parent. */
static char *
lowerdirs(overlay_t *o, const entry_t *e, int *count)
{
    char *out = NULL;
    size_t len = 0;
    *count = 0;
    for (const entry_t *p = find(o, e->parent); p; p = find(o, p->parent)) {
        char dir[4200];
        dir_of(o, p->id, "fs", dir, sizeof(dir));
        out = realloc(out, len + strlen(dir) + 12);
        len += (size_t)sprintf(out + len, "%s%s", *count ? ":" : "lowerdir=", dir);
        (*count)++;
    }
    return out;
}

static void
build_mounts(overlay_t *o, const entry_t *e, berth_mount_t **m, size_t *n)
{
    char fs[4200], work[4200], upper[4300], workopt[4300];
    dir_of(o, e->id, "fs", fs, sizeof(fs));
    dir_of(o, e->id, "work", work, sizeof(work));
    int layers;
    char *lower = lowerdirs(o, e, &layers);
    *m = NULL;
    *n = 0;
    if (layers == 0) {
        const char *opts[] = {e->kind == BERTH_SNAPSHOT_ACTIVE ? "rw" : "ro", "rbind", NULL};
        add_mount(m, n, "bind", fs, opts);
    } else if (e->kind == BERTH_SNAPSHOT_VIEW && layers == 1) {
        const char *opts[] = {"ro", "rbind", NULL};
        add_mount(m, n, "bind", lower + strlen("lowerdir="), opts);
    } else if (e->kind == BERTH_SNAPSHOT_VIEW) {
        const char *opts[] = {lower, NULL};
        add_mount(m, n, "overlay", "overlay", opts);
    } else {
        snprintf(workopt, sizeof(workopt), "workdir=%s", work);
        snprintf(upper, sizeof(upper), "upperdir=%s", fs);
        const char *opts[] = {workopt, upper, lower, NULL};
        add_mount(m, n, "overlay", "overlay", opts);
    }
    free(lower);
}

/* ---- operations ----------------------------------------------------------------------------------- */

static int
create(overlay_t *o, berth_snapshot_kind_t kind, const char *key, const char *parent,
       berth_mount_t **m, size_t *n, berth_error_t **err)
{
    if (key == NULL || key[0] == '\0')
        return fail(o, err, BERTH_EINVAL, "snapshot key must not be empty%s", "");
    pthread_mutex_lock(&o->lock);
    int rc = 0;
    const entry_t *p = parent && parent[0] ? find(o, parent) : NULL;
    if (find(o, key))
        rc = fail(o, err, BERTH_EEXIST, "snapshot %s: already exists", key);
    else if (parent && parent[0] && p == NULL)
        rc = fail(o, err, BERTH_ENOTFOUND, "parent snapshot %s does not exist: not found", parent);
    else if (p && p->kind != BERTH_SNAPSHOT_COMMITTED)
        rc = fail(o, err, BERTH_EPRECONDITION, "parent %s is not a committed snapshot", parent);
    long id = o->next_id++;
    char tmp[4200], final[4200], sub[4300];
    snprintf(tmp, sizeof(tmp), "%s/snapshots/tmp-%ld", o->root, id);
    dir_of(o, id, NULL, final, sizeof(final));
    if (rc == 0) {
        snprintf(sub, sizeof(sub), "%s/fs", tmp);
        int ok = mkdir(tmp, 0700) == 0 && mkdir(sub, 0755) == 0;
        snprintf(sub, sizeof(sub), "%s/work", tmp);
        ok = ok && mkdir(sub, 0711) == 0 && write_meta(tmp, kind, key, parent) == 0 &&
             rename(tmp, final) == 0;
        if (!ok) {
            rc = o->api->error_make(err, BERTH_EIO, "create snapshot %s: %s", key, strerror(errno));
            rm_rf(tmp);
        }
    }
    if (rc == 0) {
        o->entries = realloc(o->entries, (o->n + 1) * sizeof(entry_t));
        entry_t *e = &o->entries[o->n++];
        *e = (entry_t){strdup(key), strdup(parent ? parent : ""), kind, id};
        build_mounts(o, e, m, n);
    }
    pthread_mutex_unlock(&o->lock);
    return rc;
}

static int
ov_prepare(void *arg, const char *key, const char *parent, berth_mount_t **m, size_t *n,
           berth_error_t **err)
{
    return create(arg, BERTH_SNAPSHOT_ACTIVE, key, parent, m, n, err);
}

static int
ov_view(void *arg, const char *key, const char *parent, berth_mount_t **m, size_t *n,
        berth_error_t **err)
{
    return create(arg, BERTH_SNAPSHOT_VIEW, key, parent, m, n, err);
}

static int
ov_mounts(void *arg, const char *key, berth_mount_t **m, size_t *n, berth_error_t **err)
{
    overlay_t *o = arg;
    pthread_mutex_lock(&o->lock);
    entry_t *e = find(o, key);
    int rc = 0;
    if (e == NULL || e->kind == BERTH_SNAPSHOT_COMMITTED)
        rc = fail(o, err, e ? BERTH_EPRECONDITION : BERTH_ENOTFOUND,
                  e ? "snapshot %s is committed: no mounts"
                    : "snapshot %s does not exist: not found",
                  key);
    else
        build_mounts(o, e, m, n);
    pthread_mutex_unlock(&o->lock);
    return rc;
}

static int
ov_commit(void *arg, const char *name, const char *key, berth_error_t **err)
{
    overlay_t *o = arg;
    pthread_mutex_lock(&o->lock);
    entry_t *e = find(o, key);
    int rc = 0;
    char dir[4200], work[4300];
    if (e == NULL)
        rc = fail(o, err, BERTH_ENOTFOUND, "snapshot %s does not exist: not found", key);
    else if (e->kind != BERTH_SNAPSHOT_ACTIVE)
        rc = fail(o, err, BERTH_EPRECONDITION, "snapshot %s is not active: failed precondition",
                  key);
    else if (find(o, name))
        rc = fail(o, err, BERTH_EEXIST, "snapshot %s: already exists", name);
    if (rc == 0) {
        dir_of(o, e->id, NULL, dir, sizeof(dir));
        if (write_meta(dir, BERTH_SNAPSHOT_COMMITTED, name, e->parent) < 0) {
            rc = o->api->error_make(err, BERTH_EIO, "commit %s: %s", key, strerror(errno));
        } else {
            free(e->key);
            e->key = strdup(name);
            e->kind = BERTH_SNAPSHOT_COMMITTED;
            snprintf(work, sizeof(work), "%s/work", dir);
            rm_rf(work); /* a committed snapshot is never an upper dir again */
            mkdir(work, 0711);
        }
    }
    pthread_mutex_unlock(&o->lock);
    return rc;
}

static int
ov_remove(void *arg, const char *key, berth_error_t **err)
{
    overlay_t *o = arg;
    pthread_mutex_lock(&o->lock);
    entry_t *e = find(o, key);
    int rc = 0;
    if (e == NULL)
        rc = fail(o, err, BERTH_ENOTFOUND, "snapshot %s does not exist: not found", key);
    for (size_t i = 0; rc == 0 && i < o->n; i++)
        if (strcmp(o->entries[i].parent, key) == 0)
            rc = fail(o, err, BERTH_EPRECONDITION, "cannot remove snapshot %s with child", key);
    if (rc == 0) {
        char dir[4200], gone[4200];
        dir_of(o, e->id, NULL, dir, sizeof(dir));
        snprintf(gone, sizeof(gone), "%s/snapshots/rm-%ld", o->root, e->id);
        if (rename(dir, gone) < 0) {
            rc = o->api->error_make(err, BERTH_EIO, "remove %s: %s", key, strerror(errno));
        } else {
            rm_rf(gone);
            free(e->key);
            free(e->parent);
            *e = o->entries[--o->n];
        }
    }
    pthread_mutex_unlock(&o->lock);
    return rc;
}

static void
info_of(const entry_t *e, berth_snapshot_info_t *out)
{
    snprintf(out->key, sizeof(out->key), "%s", e->key);
    snprintf(out->parent, sizeof(out->parent), "%s", e->parent);
    out->kind = e->kind;
}

static int
ov_stat(void *arg, const char *key, berth_snapshot_info_t *out, berth_error_t **err)
{
    overlay_t *o = arg;
    pthread_mutex_lock(&o->lock);
    entry_t *e = find(o, key);
    if (e)
        info_of(e, out);
    pthread_mutex_unlock(&o->lock);
    return e ? 0 : fail(o, err, BERTH_ENOTFOUND, "snapshot %s does not exist: not found", key);
}

static __thread int64_t usage_size, usage_inodes;

static int
count_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)flag;
    (void)ftw;
    usage_inodes++;
    usage_size += (int64_t)st->st_blocks * 512;
    return 0;
}

static int
ov_usage(void *arg, const char *key, int64_t *size, int64_t *inodes, berth_error_t **err)
{
    overlay_t *o = arg;
    char fs[4200];
    pthread_mutex_lock(&o->lock);
    entry_t *e = find(o, key);
    if (e)
        dir_of(o, e->id, "fs", fs, sizeof(fs));
    pthread_mutex_unlock(&o->lock);
    if (e == NULL)
        return fail(o, err, BERTH_ENOTFOUND, "snapshot %s does not exist: not found", key);
    usage_size = usage_inodes = 0;
    nftw(fs, count_one, 16, FTW_PHYS);
    *size = usage_size;
    *inodes = usage_inodes;
    return 0;
}

static int
ov_walk(void *arg, int (*cb)(void *user, const berth_snapshot_info_t *info), void *user,
        berth_error_t **err)
{
    overlay_t *o = arg;
    pthread_mutex_lock(&o->lock);
    size_t n = o->n;
    berth_snapshot_info_t *all = calloc(n + 1, sizeof(*all));
    for (size_t i = 0; i < n; i++)
        info_of(&o->entries[i], &all[i]);
    pthread_mutex_unlock(&o->lock);
    for (size_t i = 0; i < n && cb(user, &all[i]) == 0; i++)
        ;
    free(all);
    return 0;
}

static int
ov_cleanup(void *arg, berth_error_t **err)
{
    overlay_t *o = arg;
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/snapshots", o->root);
    pthread_mutex_lock(&o->lock);
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        if (strncmp(de->d_name, "tmp-", 4) == 0 || strncmp(de->d_name, "rm-", 3) == 0) {
            char path[4600];
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
            rm_rf(path);
        }
    if (d)
        closedir(d);
    pthread_mutex_unlock(&o->lock);
    return 0;
}

static const berth_snapshotter_v1_ops_t overlay_ops = {
    .struct_size = sizeof(berth_snapshotter_v1_ops_t),
    .prepare = ov_prepare,
    .view = ov_view,
    .mounts = ov_mounts,
    .mounts_free = ov_mounts_free,
    .commit = ov_commit,
    .remove = ov_remove,
    .stat = ov_stat,
    .usage = ov_usage,
    .walk = ov_walk,
    .cleanup = ov_cleanup,
};

/* ---- init ----------------------------------------------------------------------------------------- */

static int
overlay_supported(void)
{
    FILE *f = fopen("/proc/filesystems", "r");
    char line[256];
    int found = 0;
    while (f && !found && fgets(line, sizeof(line), f))
        found = strstr(line, "\toverlay\n") != NULL;
    if (f)
        fclose(f);
    return found;
}

static void
load(overlay_t *o, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        char *end;
        long id = strtol(de->d_name, &end, 10);
        if (*end != '\0' || de->d_name[0] == '\0')
            continue;
        char sub[4600];
        snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
        entry_t e = {.id = id};
        if (read_meta(sub, &e) < 0)
            continue;
        o->entries = realloc(o->entries, (o->n + 1) * sizeof(entry_t));
        o->entries[o->n++] = e;
        if (id >= o->next_id)
            o->next_id = id + 1;
    }
    if (d)
        closedir(d);
}

static int
overlay_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    if (!overlay_supported())
        return ic->api->error_make(err, BERTH_ESKIP,
                                   "overlayfs is not supported by this kernel: skip plugin");
    overlay_t *o = calloc(1, sizeof(*o));
    o->api = ic->api;
    o->root = strdup(ic->root);
    o->next_id = 1;
    pthread_mutex_init(&o->lock, NULL);
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/snapshots", ic->root);
    if (ic->api->mkdir_all(dir, 0700, err) < 0) {
        free(o->root);
        free(o);
        return BERTH_EIO;
    }
    load(o, dir);
    ic->api->export_set(ic, "root", ic->root);
    *instance = o;
    return 0;
}

static void
overlay_fini(void *instance)
{
    overlay_t *o = instance;
    for (size_t i = 0; i < o->n; i++) {
        free(o->entries[i].key);
        free(o->entries[i].parent);
    }
    free(o->entries);
    pthread_mutex_destroy(&o->lock);
    free(o->root);
    free(o);
}

static const berth_plugin_reg_t overlay_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_SNAPSHOTTER_TYPE,
    .id = "overlayfs",
    .init = overlay_init,
    .fini = overlay_fini,
    .ops = &overlay_ops,
};

static const berth_plugin_reg_t *const overlay_plugins[] = {&overlay_plugin, NULL};

BERTH_MODULE(snapshot_overlay, .version = "0.1.0", .license = "Apache-2.0", .origin = "berth",
             .description = "overlayfs snapshotter", .plugins = overlay_plugins)
