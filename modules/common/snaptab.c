/* SPDX-License-Identifier: Apache-2.0 */
/* The snapshot table every snapshotter module shares; see snaptab.h. */
#include "snaptab.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef snaptab_t overlay_t; /* the functions below keep their first home's names */
typedef snap_entry_t entry_t;

static entry_t *
find(overlay_t *o, const char *key)
{
    for (size_t i = 0; key && i < o->n; i++)
        if (strcmp(o->entries[i].key, key) == 0)
            return &o->entries[i];
    return NULL;
}

void
snaptab_dir(overlay_t *o, long id, const char *sub, char *out, size_t len)
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

int
snaptab_rm_rf(const char *path)
{
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int
fail(overlay_t *o, berth_error_t **err, int code, const char *fmt, const char *a)
{
    return o->api->error_make(err, code, fmt, a);
}

void
snaptab_add_mount(berth_mount_t **m, size_t *n, const char *type, const char *source,
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
    char tmp[4200], final[4200];
    snprintf(tmp, sizeof(tmp), "%s/snapshots/tmp-%ld", o->root, id);
    snaptab_dir(o, id, NULL, final, sizeof(final));
    if (rc == 0) {
        char parent_fs[4300] = "";
        if (p)
            snaptab_dir(o, p->id, "fs", parent_fs, sizeof(parent_fs));
        if (mkdir(tmp, 0700) < 0)
            rc = o->api->error_make(err, BERTH_EIO, "create snapshot %s: %s", key, strerror(errno));
        else if ((rc = o->backend->create(o, tmp, p ? parent_fs : NULL, kind, err)) == 0 &&
                 (write_meta(tmp, kind, key, parent) < 0 || rename(tmp, final) < 0))
            rc = o->api->error_make(err, BERTH_EIO, "create snapshot %s: %s", key, strerror(errno));
        if (rc != 0) {
            if (o->backend->destroy)
                o->backend->destroy(o, tmp);
            snaptab_rm_rf(tmp);
        }
    }
    if (rc == 0) {
        o->entries = realloc(o->entries, (o->n + 1) * sizeof(entry_t));
        entry_t *e = &o->entries[o->n++];
        *e = (entry_t){strdup(key), strdup(parent ? parent : ""), kind, id};
        o->backend->mounts(o, e, m, n);
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
        o->backend->mounts(o, e, m, n);
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
    char dir[4200];
    if (e == NULL)
        rc = fail(o, err, BERTH_ENOTFOUND, "snapshot %s does not exist: not found", key);
    else if (e->kind != BERTH_SNAPSHOT_ACTIVE)
        rc = fail(o, err, BERTH_EPRECONDITION, "snapshot %s is not active: failed precondition",
                  key);
    else if (find(o, name))
        rc = fail(o, err, BERTH_EEXIST, "snapshot %s: already exists", name);
    if (rc == 0) {
        snaptab_dir(o, e->id, NULL, dir, sizeof(dir));
        if ((rc = o->backend->commit(o, dir, err)) == 0 &&
            write_meta(dir, BERTH_SNAPSHOT_COMMITTED, name, e->parent) < 0)
            rc = o->api->error_make(err, BERTH_EIO, "commit %s: %s", key, strerror(errno));
        if (rc == 0) {
            free(e->key);
            e->key = strdup(name);
            e->kind = BERTH_SNAPSHOT_COMMITTED;
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
        snaptab_dir(o, e->id, NULL, dir, sizeof(dir));
        snprintf(gone, sizeof(gone), "%s/snapshots/rm-%ld", o->root, e->id);
        if (rename(dir, gone) < 0) {
            rc = o->api->error_make(err, BERTH_EIO, "remove %s: %s", key, strerror(errno));
        } else {
            if (o->backend->destroy)
                o->backend->destroy(o, gone);
            snaptab_rm_rf(gone);
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
        snaptab_dir(o, e->id, "fs", fs, sizeof(fs));
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
            if (o->backend->destroy)
                o->backend->destroy(o, path);
            snaptab_rm_rf(path);
        }
    if (d)
        closedir(d);
    pthread_mutex_unlock(&o->lock);
    return 0;
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

const snap_entry_t *
snaptab_find(snaptab_t *t, const char *key)
{
    return find(t, key);
}

int
snaptab_open(snaptab_t *t, const berth_core_api_t *api, const snaptab_backend_t *backend,
             const char *root, berth_error_t **err)
{
    t->api = api;
    t->backend = backend;
    t->root = strdup(root);
    t->next_id = 1;
    pthread_mutex_init(&t->lock, NULL);
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/snapshots", root);
    if (api->mkdir_all(dir, 0700, err) < 0)
        return BERTH_EIO;
    load(t, dir);
    return 0;
}

void
snaptab_close(snaptab_t *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->entries[i].key);
        free(t->entries[i].parent);
    }
    free(t->entries);
    pthread_mutex_destroy(&t->lock);
    free(t->root);
}

const berth_snapshotter_v1_ops_t snaptab_ops = {
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

int
snaptab_plugin_init(berth_init_ctx_t *ic, const snaptab_backend_t *backend, void **instance,
                    berth_error_t **err)
{
    snaptab_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return ic->api->error_make(err, BERTH_ENOMEM, "snapshotter: out of memory");
    int rc = snaptab_open(t, ic->api, backend, ic->root, err);
    if (rc < 0) {
        snaptab_close(t);
        free(t);
        return rc;
    }
    ic->api->export_set(ic, "root", ic->root);
    *instance = t;
    return 0;
}

void
snaptab_plugin_fini(void *instance)
{
    snaptab_close(instance);
    free(instance);
}
