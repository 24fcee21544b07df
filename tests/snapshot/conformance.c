/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The snapshotter conformance suite: the same cases against any module of type io.containerd.snapshotter.v1,
 * through its C service API (abi/berth/snapshot.h), with real mounts. Point it at a module with
 *   BERTH_SNAPSHOTTER_SO=/path/to/module.so  [BERTH_SNAPSHOTTER_ROOT=/dir/on/the/right/filesystem]
 * (a third party runs it against theirs the same way). Needs root: it mounts what the snapshotter returns.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <berth/module.h>
#include <berth/snapshot.h>

extern const berth_core_api_t berth__core_api;

static berth_core_api_t test_api;
static const berth_plugin_reg_t *reg;
static const berth_snapshotter_v1_ops_t *ops;
static void *handle, *sn;
static char base[256], root[300], mnt[300];
static berth_error_t *err;

static int
no_export(berth_init_ctx_t *ic, const char *key, const char *value)
{
    return 0;
}

static void
open_snapshotter(void)
{
    berth_init_ctx_t ic = {
        .size = sizeof(ic), .api = &test_api, .uri = "conformance", .root = root};
    int rc = reg->init(&ic, &sn, &err);
    cr_assert_eq(rc, 0, "init: %s", err ? err->message : "");
}

static void
setup(void)
{
    test_api = berth__core_api;
    test_api.export_set = no_export;
    const char *so = getenv("BERTH_SNAPSHOTTER_SO");
    cr_assert(so != NULL, "set BERTH_SNAPSHOTTER_SO to the module to test");
    handle = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    cr_assert(handle != NULL, "%s", dlerror());
    const char *name = strrchr(so, '/') ? strrchr(so, '/') + 1 : so;
    char sym[256];
    int n = snprintf(sym, sizeof(sym), "berth_module_v1_%s", name);
    sym[n - 3] = '\0'; /* drop ".so" */
    for (char *c = sym; *c; c++)
        *c = *c == '-' ? '_' : *c;
    const berth_module_desc_t *(*entry)(void) =
        (const berth_module_desc_t *(*)(void))dlsym(handle, sym);
    cr_assert(entry != NULL, "no %s in %s", sym, so);
    for (size_t i = 0; entry()->plugins[i]; i++)
        if (strcmp(entry()->plugins[i]->type, BERTH_SNAPSHOTTER_TYPE) == 0)
            reg = entry()->plugins[i];
    cr_assert(reg != NULL, "%s registers no snapshotter", so);
    ops = reg->ops;
    const char *parent = getenv("BERTH_SNAPSHOTTER_ROOT");
    snprintf(base, sizeof(base), "%s/sn-XXXXXX", parent ? parent : "/tmp");
    cr_assert(mkdtemp(base) != NULL, "mkdtemp in %s: %s", base, strerror(errno));
    snprintf(root, sizeof(root), "%s/root", base);
    snprintf(mnt, sizeof(mnt), "%s/mnt", base);
    mkdir(root, 0700);
    mkdir(mnt, 0755);
    open_snapshotter();
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void
teardown(void)
{
    umount2(mnt, MNT_DETACH);
    if (reg && sn)
        reg->fini(sn);
    berth__core_api.error_free(err);
    err = NULL;
    nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (handle)
        dlclose(handle);
}

TestSuite(snapshotter, .init = setup, .fini = teardown, .timeout = 120);

/* ---- mounting what the snapshotter says ----------------------------------------------------------- */

/* Mounts the list at target. overlay's lowerdir option is made relative to the longest common directory
 * when it would not fit a page, as containerd's mount package does, so long chains mount. */
static void
mount_all(const berth_mount_t *m, size_t n, const char *target)
{
    cr_assert_eq(n, 1, "one mount expected, got %zu", n);
    char data[65536] = "";
    unsigned long flags = 0;
    for (size_t i = 0; i < m->n_options; i++) {
        const char *o = m->options[i];
        if (strcmp(o, "ro") == 0)
            flags |= MS_RDONLY;
        else if (strcmp(o, "rbind") == 0)
            flags |= MS_BIND | MS_REC;
        else if (strcmp(o, "bind") == 0)
            flags |= MS_BIND;
        else if (strcmp(o, "rw") != 0)
            snprintf(data + strlen(data), sizeof(data) - strlen(data), "%s%s", data[0] ? "," : "",
                     o);
    }
    const char *type = strcmp(m->type, "bind") == 0 ? "none" : m->type;
    char cwd[4096];
    cr_assert(getcwd(cwd, sizeof(cwd)) != NULL);
    if (strlen(data) >= 4096 && strcmp(m->type, "overlay") == 0) {
        /* every lower dir is <root>/snapshots/<id>/fs: chdir there and name them <id>/fs */
        char dir[512], *out = calloc(1, 65536), *save = NULL;
        snprintf(dir, sizeof(dir), "%s/snapshots", root);
        cr_assert_eq(chdir(dir), 0);
        for (char *opt = strtok_r(data, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
            size_t dl = strlen(dir);
            strcat(out, out[0] ? "," : "");
            if (strncmp(opt, "lowerdir=", 9) == 0) {
                strcat(out, "lowerdir=");
                char *s2 = NULL;
                int first = 1;
                for (char *p = strtok_r(opt + 9, ":", &s2); p;
                     p = strtok_r(NULL, ":", &s2), first = 0) {
                    strcat(out, first ? "" : ":");
                    strcat(out, strncmp(p, dir, dl) == 0 ? p + dl + 1 : p);
                }
            } else {
                strcat(out, opt);
            }
        }
        snprintf(data, sizeof(data), "%s", out);
        free(out);
    }
    int rc = mount(m->source, target, type, flags, data[0] ? data : NULL);
    int e = errno;
    if (chdir(cwd) != 0)
        abort();
    cr_assert_eq(rc, 0, "mount %s %s (%zu bytes of options): %s", m->type, m->source, strlen(data),
                 strerror(e));
    if ((flags & MS_BIND) && (flags & MS_RDONLY)) /* a bind mount takes ro only on a remount */
        cr_assert_eq(mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL), 0);
}

static void
with_mounted(const char *key, void (*fn)(const char *dir, void *arg), void *arg)
{
    berth_mount_t *m;
    size_t n;
    cr_assert_eq(ops->mounts(sn, key, &m, &n, &err), 0, "mounts %s: %s", key,
                 err ? err->message : "");
    mount_all(m, n, mnt);
    ops->mounts_free(m, n);
    fn(mnt, arg);
    cr_assert_eq(umount(mnt), 0, "umount: %s", strerror(errno));
}

static void
prepare(const char *key, const char *parent)
{
    berth_mount_t *m;
    size_t n;
    cr_assert_eq(ops->prepare(sn, key, parent, &m, &n, &err), 0, "prepare %s: %s", key,
                 err ? err->message : "");
    ops->mounts_free(m, n);
}

static void
commit(const char *name, const char *key)
{
    cr_assert_eq(ops->commit(sn, name, key, &err), 0, "commit %s: %s", key,
                 err ? err->message : "");
}

static void
expect_code(int rc, int code)
{
    cr_expect_eq(rc, code, "rc %d, wanted %d: %s", rc, code, err ? err->message : "");
    berth__core_api.error_free(err);
    err = NULL;
}

static void
write_file(const char *dir, void *arg)
{
    const char **kv = arg;
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", dir, kv[0]);
    FILE *f = fopen(path, "w");
    cr_assert(f != NULL, "%s: %s", path, strerror(errno));
    fputs(kv[1], f);
    fclose(f);
}

static void
expect_file(const char *dir, void *arg)
{
    const char **kv = arg;
    char path[600], buf[256] = "";
    snprintf(path, sizeof(path), "%s/%s", dir, kv[0]);
    FILE *f = fopen(path, "r");
    if (kv[1] == NULL) {
        cr_expect(f == NULL, "%s should not exist", kv[0]);
    } else {
        cr_assert(f != NULL, "%s: %s", path, strerror(errno));
        cr_expect(fgets(buf, sizeof(buf), f) != NULL);
        cr_expect_str_eq(buf, kv[1]);
    }
    if (f)
        fclose(f);
}

static void
remove_file(const char *dir, void *arg)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", dir, (const char *)arg);
    cr_assert_eq(unlink(path), 0, "%s: %s", path, strerror(errno));
}

/* ---- the cases ------------------------------------------------------------------------------------ */

Test(snapshotter, prepare_commit_view_chain)
{
    prepare("a", "");
    const char *f1[] = {"one", "1"};
    with_mounted("a", write_file, f1);
    commit("a-c", "a");
    prepare("b", "a-c");
    with_mounted("b", expect_file, f1);
    const char *f2[] = {"two", "2"};
    with_mounted("b", write_file, f2);
    commit("b-c", "b");
    berth_mount_t *m;
    size_t n;
    cr_assert_eq(ops->view(sn, "v", "b-c", &m, &n, &err), 0);
    ops->mounts_free(m, n);
    with_mounted("v", expect_file, f1);
    with_mounted("v", expect_file, f2);
    berth_snapshot_info_t info;
    cr_assert_eq(ops->stat(sn, "b-c", &info, &err), 0);
    cr_expect_eq(info.kind, BERTH_SNAPSHOT_COMMITTED);
    cr_expect_str_eq(info.parent, "a-c");
    cr_assert_eq(ops->stat(sn, "v", &info, &err), 0);
    cr_expect_eq(info.kind, BERTH_SNAPSHOT_VIEW);
}

Test(snapshotter, deletions_are_whiteouts_in_the_layer_above)
{
    prepare("a", "");
    const char *f[] = {"gone", "x"};
    with_mounted("a", write_file, f);
    commit("a-c", "a");
    prepare("b", "a-c");
    with_mounted("b", remove_file, "gone");
    const char *absent[] = {"gone", NULL};
    with_mounted("b", expect_file, absent);
    commit("b-c", "b");
    prepare("c", "b-c");
    with_mounted("c", expect_file, absent);
    prepare("d", "a-c");
    with_mounted("d", expect_file, f);
}

Test(snapshotter, bad_requests)
{
    berth_mount_t *m;
    size_t n;
    prepare("a", "");
    expect_code(ops->prepare(sn, "a", "", &m, &n, &err), BERTH_EEXIST);
    expect_code(ops->prepare(sn, "x", "nope", &m, &n, &err), BERTH_ENOTFOUND);
    expect_code(ops->prepare(sn, "x", "a", &m, &n, &err),
                BERTH_EPRECONDITION); /* parent not committed */
    cr_assert_eq(ops->view(sn, "v", "", &m, &n, &err), 0);
    ops->mounts_free(m, n);
    expect_code(ops->commit(sn, "v-c", "v", &err), BERTH_EPRECONDITION); /* committing a view */
    commit("a-c", "a");
    prepare("child", "a-c");
    expect_code(ops->remove(sn, "a-c", &err), BERTH_EPRECONDITION); /* it has a child */
    expect_code(ops->remove(sn, "nope", &err), BERTH_ENOTFOUND);
    cr_assert_eq(ops->remove(sn, "child", &err), 0);
    cr_assert_eq(ops->remove(sn, "a-c", &err), 0);
    /* keys are names, never paths */
    prepare("../../escape", "");
    prepare("/abs/key", "");
    struct stat st;
    char outside[600];
    snprintf(outside, sizeof(outside), "%s/escape", base);
    cr_expect_neq(stat(outside, &st), 0, "a key made a path outside the root");
}

static void
try_write(const char *dir, void *arg)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/new", dir);
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    cr_expect_lt(fd, 0, "a view is writable");
    cr_expect_eq(errno, EROFS);
    if (fd >= 0)
        close(fd);
}

Test(snapshotter, views_are_read_only)
{
    prepare("a", "");
    commit("a-c", "a");
    prepare("b", "a-c");
    commit("b-c", "b");
    berth_mount_t *m;
    size_t n;
    cr_assert_eq(ops->view(sn, "v1", "a-c", &m, &n, &err), 0); /* one parent */
    ops->mounts_free(m, n);
    cr_assert_eq(ops->view(sn, "v2", "b-c", &m, &n, &err), 0); /* a chain */
    ops->mounts_free(m, n);
    with_mounted("v1", try_write, NULL);
    with_mounted("v2", try_write, NULL);
}

static int
collect_key(void *user, const berth_snapshot_info_t *info)
{
    strcat(user, info->key);
    strcat(user, ";");
    return 0;
}

static void
fill(const char *dir, void *arg)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/big", dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 100000; i++)
        fputs("0123456789", f);
    fclose(f);
}

Test(snapshotter, walk_and_usage)
{
    prepare("a", "");
    prepare("b", "");
    char keys[256] = "";
    cr_assert_eq(ops->walk(sn, collect_key, keys, &err), 0);
    cr_expect(strstr(keys, "a;") && strstr(keys, "b;"), "%s", keys);
    with_mounted("a", fill, NULL);
    int64_t size = 0, inodes = 0;
    cr_assert_eq(ops->usage(sn, "a", &size, &inodes, &err), 0);
    cr_expect_geq(size, 1000000);
    cr_expect_geq(inodes, 2);
}

static void
make_special(const char *dir, void *arg)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/owned", dir);
    FILE *f = fopen(path, "w");
    fclose(f);
    cr_assert_eq(chown(path, 1234, 5678), 0);
    cr_assert_eq(chmod(path, 04755), 0);
    cr_assert_eq(setxattr(path, "user.berth", "yes", 3, 0), 0, "setxattr: %s", strerror(errno));
}

static void
check_special(const char *dir, void *arg)
{
    char path[600], value[16] = "";
    snprintf(path, sizeof(path), "%s/owned", dir);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_uid, 1234);
    cr_expect_eq(st.st_gid, 5678);
    cr_expect_eq(st.st_mode & 07777, 04755);
    cr_expect_eq(getxattr(path, "user.berth", value, sizeof(value)), 3);
    cr_expect_str_eq(value, "yes");
}

Test(snapshotter, ownership_modes_and_xattrs_survive_layers)
{
    prepare("a", "");
    with_mounted("a", make_special, NULL);
    commit("a-c", "a");
    prepare("b", "a-c");
    with_mounted("b", check_special, NULL);
}

static void
write_layer_file(const char *dir, void *arg)
{
    int i = *(int *)arg;
    char path[600];
    snprintf(path, sizeof(path), "%s/layer-%03d", dir, i);
    FILE *f = fopen(path, "w");
    fprintf(f, "%d", i);
    fclose(f);
}

static void
count_layer_files(const char *dir, void *arg)
{
    int found = 0;
    for (int i = 0; i < 128; i++) {
        char path[600];
        snprintf(path, sizeof(path), "%s/layer-%03d", dir, i);
        found += access(path, F_OK) == 0;
    }
    *(int *)arg = found;
}

Test(snapshotter, a_chain_of_128_layers_mounts_whole)
{
    char parent[32] = "", key[32], name[32];
    for (int i = 0; i < 128; i++) {
        snprintf(key, sizeof(key), "l%d", i);
        snprintf(name, sizeof(name), "l%d-c", i);
        prepare(key, parent);
        with_mounted(key, write_layer_file, &i);
        commit(name, key);
        snprintf(parent, sizeof(parent), "%s", name);
    }
    prepare("top", parent);
    int found = 0;
    with_mounted("top", count_layer_files, &found);
    cr_expect_eq(found, 128, "the mounted chain shows %d of 128 layers", found);
}

static void *
prepare_many(void *arg)
{
    long t = (long)arg;
    for (int i = 0; i < 20; i++) {
        char key[32];
        snprintf(key, sizeof(key), "t%ld-%d", t, i);
        berth_mount_t *m;
        size_t n;
        berth_error_t *e = NULL;
        if (ops->prepare(sn, key, "", &m, &n, &e) == 0)
            ops->mounts_free(m, n);
        berth__core_api.error_free(e);
    }
    return NULL;
}

Test(snapshotter, concurrent_prepares)
{
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, prepare_many, (void *)i);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    char keys[4096] = "";
    ops->walk(sn, collect_key, keys, &err);
    int count = 0;
    for (char *p = keys; (p = strchr(p, ';')); p++)
        count++;
    cr_expect_eq(count, 80, "%d snapshots after 80 concurrent prepares", count);
}

Test(snapshotter, state_survives_a_restart_and_cleanup_removes_orphans)
{
    prepare("a", "");
    const char *f[] = {"kept", "yes"};
    with_mounted("a", write_file, f);
    commit("a-c", "a");
    reg->fini(sn);
    sn = NULL;
    /* what a crash between steps leaves: a half-made snapshot directory */
    char orphan[600];
    snprintf(orphan, sizeof(orphan), "%s/snapshots/tmp-999", root);
    mkdir(orphan, 0700);
    open_snapshotter();
    berth_snapshot_info_t info;
    cr_assert_eq(ops->stat(sn, "a-c", &info, &err), 0,
                 "a committed snapshot did not survive a restart");
    prepare("b", "a-c");
    with_mounted("b", expect_file, f);
    cr_assert_eq(ops->cleanup(sn, &err), 0);
    struct stat st;
    cr_expect_neq(stat(orphan, &st), 0, "cleanup left %s", orphan);
}
