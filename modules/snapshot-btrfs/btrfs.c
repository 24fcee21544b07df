/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The btrfs snapshotter (io.containerd.snapshotter.v1.btrfs) on the shared snapshot directories: each
 * snapshot's fs is a subvolume, made empty or as a snapshot of its parent's (read-only for views); a commit
 * is a read-only snapshot of the active one under a new id. Mounts are binds of the subvolume. Init skips
 * unless the root is on btrfs, as containerd's does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>

#include <btrfsutil.h>
#include <linux/magic.h>

#include "snaptab.h"

static int
fail(snaptab_t *t, berth_error_t **err, const char *what, const char *path, enum btrfs_util_error e)
{
    return t->api->error_make(err, BERTH_EIO, "%s %s: %s", what, path, btrfs_util_strerror(e));
}

static int
bt_create(snaptab_t *t, const char *dir, const char *parent_fs, berth_snapshot_kind_t kind,
          berth_error_t **err)
{
    char fs[4300];
    snprintf(fs, sizeof(fs), "%s/fs", dir);
    enum btrfs_util_error e;
    if (parent_fs) {
        int flags = kind == BERTH_SNAPSHOT_VIEW ? BTRFS_UTIL_CREATE_SNAPSHOT_READ_ONLY : 0;
        e = btrfs_util_create_snapshot(parent_fs, fs, flags, NULL, NULL);
        return e == BTRFS_UTIL_OK ? 0 : fail(t, err, "snapshot", parent_fs, e);
    }
    e = btrfs_util_create_subvolume(fs, 0, NULL, NULL);
    if (e == BTRFS_UTIL_OK && kind == BERTH_SNAPSHOT_VIEW)
        e = btrfs_util_set_subvolume_read_only(fs, true);
    return e == BTRFS_UTIL_OK ? 0 : fail(t, err, "create subvolume", fs, e);
}

static int
snapshot_read_only(snaptab_t *t, const char *dir, void *user, berth_error_t **err)
{
    char fs[4300];
    snprintf(fs, sizeof(fs), "%s/fs", dir);
    enum btrfs_util_error e =
        btrfs_util_create_snapshot(user, fs, BTRFS_UTIL_CREATE_SNAPSHOT_READ_ONLY, NULL, NULL);
    return e == BTRFS_UTIL_OK ? 0 : fail(t, err, "snapshot", user, e);
}

/* A read-only snapshot under the fresh id, as containerd's btrfs Commit does: the active subvolume stays as
 * it is until the record names the new one, so a crash between the two leaves only garbage. */
static int
bt_commit(snaptab_t *t, const berth_snapshot_ref_t *s, uint64_t fresh, const char *dir,
          uint64_t *committed, berth_error_t **err)
{
    (void)s;
    char fs[4300];
    snprintf(fs, sizeof(fs), "%s/fs", dir);
    int rc = snaptab_build(t, fresh, snapshot_read_only, fs, err);
    if (rc == 0)
        *committed = fresh;
    return rc;
}

static void
bt_destroy(snaptab_t *t, const char *dir)
{
    char fs[4300];
    snprintf(fs, sizeof(fs), "%s/fs", dir);
    if (btrfs_util_is_subvolume(fs) == BTRFS_UTIL_OK)
        btrfs_util_delete_subvolume(fs, 0);
}

static void
bt_mounts(snaptab_t *t, const berth_snapshot_ref_t *s, berth_mount_t **m, size_t *n)
{
    char fs[4200];
    snaptab_dir(t, s->id, "fs", fs, sizeof(fs));
    const char *opts[] = {s->kind == BERTH_SNAPSHOT_ACTIVE ? "rw" : "ro", "rbind", NULL};
    snaptab_add_mount(m, n, "bind", fs, opts);
}

static const snaptab_backend_t btrfs_backend = {
    .create = bt_create,
    .commit = bt_commit,
    .destroy = bt_destroy,
    .mounts = bt_mounts,
};

static int
btrfs_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    struct statfs st;
    if (statfs(ic->root, &st) < 0 || st.f_type != BTRFS_SUPER_MAGIC)
        return ic->api->error_make(
            err, BERTH_ESKIP,
            "path %s (0x%lx) must be a btrfs filesystem to be used with the btrfs "
            "snapshotter: skip plugin",
            ic->root, (unsigned long)st.f_type);
    return snaptab_plugin_init(ic, &btrfs_backend, instance, err);
}

static const berth_plugin_reg_t btrfs_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_SNAPSHOTTER_TYPE,
    .id = "btrfs",
    .init = btrfs_init,
    .fini = snaptab_plugin_fini,
    .ops = &snaptab_ops,
    .flags = BERTH_PLUGIN_ON_DEMAND,
};

static const berth_plugin_reg_t *const btrfs_plugins[] = {&btrfs_plugin, NULL};

BERTH_MODULE(snapshot_btrfs, .version = "0.1.0", .license = "Apache-2.0", .origin = "berth",
             .description = "btrfs snapshotter (libbtrfsutil)", .plugins = btrfs_plugins)
