/* SPDX-License-Identifier: Apache-2.0 */
/* The snapshot directories every snapshotter module shares; see snaptab.h. */
#include "snaptab.h"
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void
snaptab_dir(snaptab_t *t, uint64_t id, const char *sub, char *out, size_t len)
{
    snprintf(out, len, "%s/snapshots/%" PRIu64 "%s%s", t->root, id, sub ? "/" : "", sub ? sub : "");
}

int
snaptab_rm_rf(const char *path)
{
    return fs_remove_tree(path);
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
st_mounts_free(berth_mount_t *m, size_t n)
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

/* Takes away a snapshot directory, whole or half-made, with what the backend made in it. */
static void
destroy_dir(snaptab_t *t, const char *dir)
{
    if (t->backend->destroy)
        t->backend->destroy(t, dir);
    snaptab_rm_rf(dir);
}

int
snaptab_build(snaptab_t *t, uint64_t id,
              int (*make)(snaptab_t *t, const char *dir, void *user, berth_error_t **err),
              void *user, berth_error_t **err)
{
    char tmp[4200], final[4200];
    snprintf(tmp, sizeof(tmp), "%s/snapshots/tmp-%" PRIu64, t->root, id);
    snaptab_dir(t, id, NULL, final, sizeof(final));
    int rc = 0;
    if (mkdir(tmp, 0700) < 0)
        rc = t->api->error_make(err, BERTH_EIO, "create snapshot %" PRIu64 ": %s", id,
                                strerror(errno));
    else if ((rc = make(t, tmp, user, err)) == 0 && rename(tmp, final) < 0)
        rc = t->api->error_make(err, BERTH_EIO, "create snapshot %" PRIu64 ": %s", id,
                                strerror(errno));
    if (rc != 0)
        destroy_dir(t, tmp);
    return rc;
}

typedef struct create_args {
    const berth_snapshot_ref_t *s;
    const char *parent_fs;
} create_args_t;

static int
make_new(snaptab_t *t, const char *dir, void *user, berth_error_t **err)
{
    create_args_t *a = user;
    return t->backend->create(t, dir, a->parent_fs, a->s->kind, err);
}

static int
st_create(void *arg, const berth_snapshot_ref_t *s, berth_error_t **err)
{
    snaptab_t *t = arg;
    char parent_fs[4200];
    if (s->n_parents)
        snaptab_dir(t, s->parents[0], "fs", parent_fs, sizeof(parent_fs));
    create_args_t a = {s, s->n_parents ? parent_fs : NULL};
    return snaptab_build(t, s->id, make_new, &a, err);
}

static int
st_commit(void *arg, const berth_snapshot_ref_t *s, uint64_t fresh, uint64_t *committed,
          berth_error_t **err)
{
    snaptab_t *t = arg;
    char dir[4200];
    snaptab_dir(t, s->id, NULL, dir, sizeof(dir));
    return t->backend->commit(t, s, fresh, dir, committed, err);
}

static int
st_mounts(void *arg, const berth_snapshot_ref_t *s, berth_mount_t **m, size_t *n,
          berth_error_t **err)
{
    snaptab_t *t = arg;
    (void)err;
    *m = NULL;
    *n = 0;
    t->backend->mounts(t, s, m, n);
    return 0;
}

static int
st_remove(void *arg, uint64_t id, berth_error_t **err)
{
    snaptab_t *t = arg;
    char dir[4200];
    struct stat st;
    snaptab_dir(t, id, NULL, dir, sizeof(dir));
    if (lstat(dir, &st) < 0)
        return 0;
    destroy_dir(t, dir);
    if (lstat(dir, &st) == 0) /* what stays is garbage the next list finds */
        return t->api->error_make(err, BERTH_EIO, "remove snapshot %" PRIu64 ": %s", id,
                                  strerror(errno));
    return 0;
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
st_usage(void *arg, uint64_t id, int64_t *size, int64_t *inodes, berth_error_t **err)
{
    snaptab_t *t = arg;
    char fs[4200];
    struct stat st;
    snaptab_dir(t, id, "fs", fs, sizeof(fs));
    if (lstat(fs, &st) < 0)
        return t->api->error_make(err, BERTH_ENOTFOUND, "snapshot %" PRIu64 ": not found", id);
    usage_size = usage_inodes = 0;
    nftw(fs, count_one, 16, FTW_PHYS);
    *size = usage_size;
    *inodes = usage_inodes;
    return 0;
}

static int
st_list(void *arg, int (*cb)(void *user, uint64_t id), void *user, berth_error_t **err)
{
    snaptab_t *t = arg;
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/snapshots", t->root);
    DIR *d = opendir(dir);
    if (d == NULL)
        return t->api->error_make(err, BERTH_EIO, "list %s: %s", dir, strerror(errno));
    struct dirent *de;
    int stop = 0;
    while (!stop && (de = readdir(d)) != NULL) {
        char *end;
        errno = 0;
        unsigned long long id = strtoull(de->d_name, &end, 10);
        if (de->d_name[0] >= '1' && de->d_name[0] <= '9' && *end == '\0' && errno == 0) {
            stop = cb(user, (uint64_t)id);
        } else if (strncmp(de->d_name, "tmp-", 4) == 0) { /* a create a crash interrupted */
            char path[4600];
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
            destroy_dir(t, path);
        }
    }
    closedir(d);
    return 0;
}

const berth_snapshotter_ops_t snaptab_ops = {
    .struct_size = sizeof(berth_snapshotter_ops_t),
    .version = BERTH_SNAPSHOTTER_OPS_VERSION,
    .create = st_create,
    .commit = st_commit,
    .mounts = st_mounts,
    .mounts_free = st_mounts_free,
    .remove = st_remove,
    .usage = st_usage,
    .list = st_list,
};

int
snaptab_plugin_init(berth_init_ctx_t *ic, const snaptab_backend_t *backend, void **instance,
                    berth_error_t **err)
{
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/snapshots", ic->root);
    if (ic->api->mkdir_all(dir, 0700, err) < 0)
        return BERTH_EIO;
    snaptab_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return ic->api->error_make(err, BERTH_ENOMEM, "snapshotter: out of memory");
    t->api = ic->api;
    t->backend = backend;
    t->root = strdup(ic->root);
    ic->api->export_set(ic, "root", ic->root);
    *instance = t;
    return 0;
}

void
snaptab_plugin_fini(void *instance)
{
    snaptab_t *t = instance;
    free(t->root);
    free(t);
}
