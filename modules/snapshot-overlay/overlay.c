/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The overlayfs snapshotter (io.containerd.snapshotter.v1.overlayfs) on the shared snapshot directories
 * (modules/common/snaptab.h). A snapshot is <root>/snapshots/<id>/{fs,work}: fs is the upper dir while
 * active and a lower dir once committed; numeric ids keep lowerdir options short. A snapshot without a
 * parent is a bind mount, a view of one committed snapshot a read-only bind of it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "snaptab.h"

static int
ov_create(snaptab_t *t, const char *dir, const char *parent_fs, berth_snapshot_kind_t kind,
          berth_error_t **err)
{
    char fs[4300], work[4300];
    snprintf(fs, sizeof(fs), "%s/fs", dir);
    snprintf(work, sizeof(work), "%s/work", dir);
    if (mkdir(fs, 0755) < 0 || mkdir(work, 0711) < 0)
        return t->api->error_make(err, BERTH_EIO, "create %s: cannot make its directories", dir);
    return 0;
}

static int
ov_commit(snaptab_t *t, const berth_snapshot_ref_t *s, uint64_t fresh, const char *dir,
          uint64_t *committed, berth_error_t **err)
{
    /* nothing to do on disk: the kind lives in the record, fs/ becomes a lower dir as it is; work/ stays
     * (as containerd leaves it), since emptying it would cost two directory operations for nothing */
    (void)t, (void)fresh, (void)dir, (void)err;
    *committed = s->id;
    return 0;
}

/* "lowerdir=<p1>/fs:<p2>/fs..." nearest parent first; NULL when there is no parent. */
static char *
lowerdirs(snaptab_t *t, const berth_snapshot_ref_t *s)
{
    char *out = NULL;
    size_t len = 0;
    for (size_t i = 0; i < s->n_parents; i++) {
        char dir[4200];
        snaptab_dir(t, s->parents[i], "fs", dir, sizeof(dir));
        out = realloc(out, len + strlen(dir) + 12);
        len += (size_t)sprintf(out + len, "%s%s", i ? ":" : "lowerdir=", dir);
    }
    return out;
}

static void
ov_mounts(snaptab_t *t, const berth_snapshot_ref_t *s, berth_mount_t **m, size_t *n)
{
    char fs[4200], work[4200], upper[4300], workopt[4300];
    snaptab_dir(t, s->id, "fs", fs, sizeof(fs));
    snaptab_dir(t, s->id, "work", work, sizeof(work));
    char *lower = lowerdirs(t, s);
    if (s->n_parents == 0) {
        const char *opts[] = {s->kind == BERTH_SNAPSHOT_ACTIVE ? "rw" : "ro", "rbind", NULL};
        snaptab_add_mount(m, n, "bind", fs, opts);
    } else if (s->kind == BERTH_SNAPSHOT_VIEW && s->n_parents == 1) {
        const char *opts[] = {"ro", "rbind", NULL};
        snaptab_add_mount(m, n, "bind", lower + strlen("lowerdir="), opts);
    } else if (s->kind == BERTH_SNAPSHOT_VIEW) {
        const char *opts[] = {lower, NULL};
        snaptab_add_mount(m, n, "overlay", "overlay", opts);
    } else {
        snprintf(workopt, sizeof(workopt), "workdir=%s", work);
        snprintf(upper, sizeof(upper), "upperdir=%s", fs);
        const char *opts[] = {workopt, upper, lower, NULL};
        snaptab_add_mount(m, n, "overlay", "overlay", opts);
    }
    free(lower);
}

static const snaptab_backend_t overlay_backend = {
    .create = ov_create,
    .commit = ov_commit,
    .mounts = ov_mounts,
};

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

static int
overlay_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    if (!overlay_supported())
        return ic->api->error_make(err, BERTH_ESKIP,
                                   "overlayfs is not supported by this kernel: skip plugin");
    return snaptab_plugin_init(ic, &overlay_backend, instance, err);
}

static const berth_plugin_reg_t overlay_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_SNAPSHOTTER_TYPE,
    .id = "overlayfs",
    .init = overlay_init,
    .fini = snaptab_plugin_fini,
    .ops = &snaptab_ops,
    .flags = BERTH_PLUGIN_ON_DEMAND,
};

static const berth_plugin_reg_t *const overlay_plugins[] = {&overlay_plugin, NULL};

BERTH_MODULE(snapshot_overlay, .version = "0.1.0", .license = "Apache-2.0", .origin = "berth",
             .description = "overlayfs snapshotter", .plugins = overlay_plugins)
