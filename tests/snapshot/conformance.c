/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The snapshotter conformance suite: the same cases against any module of type io.containerd.snapshotter.v1,
 * through its C service API (abi/berth/snapshot.h), with real mounts. The suite plays the Snapshots service:
 * it allocates ids and hands each call the kind and the parents' ids, nearest first. Point it at a module with
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
static const berth_snapshotter_ops_t *ops;
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
    cr_assert_eq(ops->version, BERTH_SNAPSHOTTER_OPS_VERSION, "ops version %u", ops->version);
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
expect_code(int rc, int code)
{
    cr_expect_eq(rc, code, "rc %d, wanted %d: %s", rc, code, err ? err->message : "");
    berth__core_api.error_free(err);
    err = NULL;
}

/* A snapshot the suite keeps track of: its id, kind and parent chain. */
typedef struct snap {
    uint64_t id;
    berth_snapshot_kind_t kind;
    uint64_t parents[160];
    size_t n_parents;
} snap_t;

static uint64_t next_id = 1;

static berth_snapshot_ref_t
ref(const snap_t *s)
{
    return (berth_snapshot_ref_t){s->id, s->kind, s->parents, s->n_parents};
}

static int
try_create(snap_t *s, berth_snapshot_kind_t kind, const snap_t *parent)
{
    *s = (snap_t){.id = next_id++, .kind = kind};
    if (parent) {
        s->parents[0] = parent->id;
        memcpy(s->parents + 1, parent->parents, parent->n_parents * sizeof(uint64_t));
        s->n_parents = parent->n_parents + 1;
    }
    berth_snapshot_ref_t r = ref(s);
    return ops->create(sn, &r, &err);
}

static snap_t
create(berth_snapshot_kind_t kind, const snap_t *parent)
{
    snap_t s;
    cr_assert_eq(try_create(&s, kind, parent), 0, "create %llu: %s", (unsigned long long)s.id,
                 err ? err->message : "");
    return s;
}

static snap_t
prepare(const snap_t *parent)
{
    return create(BERTH_SNAPSHOT_ACTIVE, parent);
}

/* As the service: commit, then (its record written) remove the id the record no longer names. */
static void
commit(snap_t *s)
{
    berth_snapshot_ref_t r = ref(s);
    uint64_t fresh = next_id++, committed = 0;
    cr_assert_eq(ops->commit(sn, &r, fresh, &committed, &err), 0, "commit %llu: %s",
                 (unsigned long long)s->id, err ? err->message : "");
    cr_assert(committed == s->id || committed == fresh, "commit answered id %llu",
              (unsigned long long)committed);
    if (committed != s->id)
        cr_assert_eq(ops->remove(sn, s->id, &err), 0);
    s->id = committed;
    s->kind = BERTH_SNAPSHOT_COMMITTED;
}

static void
with_mounted(const snap_t *s, void (*fn)(const char *dir, void *arg), void *arg)
{
    berth_mount_t *m;
    size_t n;
    berth_snapshot_ref_t r = ref(s);
    cr_assert_eq(ops->mounts(sn, &r, &m, &n, &err), 0, "mounts %llu: %s", (unsigned long long)s->id,
                 err ? err->message : "");
    mount_all(m, n, mnt);
    ops->mounts_free(m, n);
    fn(mnt, arg);
    cr_assert_eq(umount(mnt), 0, "umount: %s", strerror(errno));
}

typedef struct listed {
    uint64_t ids[512];
    size_t n;
} listed_t;

static int
collect_id(void *user, uint64_t id)
{
    listed_t *l = user;
    if (l->n < 512)
        l->ids[l->n++] = id;
    return 0;
}

static listed_t
list_ids(void)
{
    listed_t l = {.n = 0};
    cr_assert_eq(ops->list(sn, collect_id, &l, &err), 0, "list: %s", err ? err->message : "");
    return l;
}

static int
listed(const listed_t *l, uint64_t id)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->ids[i] == id)
            return 1;
    return 0;
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
    snap_t a = prepare(NULL);
    const char *f1[] = {"one", "1"};
    with_mounted(&a, write_file, f1);
    commit(&a);
    snap_t b = prepare(&a);
    with_mounted(&b, expect_file, f1);
    const char *f2[] = {"two", "2"};
    with_mounted(&b, write_file, f2);
    commit(&b);
    snap_t v = create(BERTH_SNAPSHOT_VIEW, &b);
    with_mounted(&v, expect_file, f1);
    with_mounted(&v, expect_file, f2);
    snap_t v1 = create(BERTH_SNAPSHOT_VIEW, &a);
    with_mounted(&v1, expect_file, f1);
    const char *no2[] = {"two", NULL};
    with_mounted(&v1, expect_file, no2);
    listed_t l = list_ids();
    cr_expect_eq(l.n, 4, "%zu ids listed, 4 made", l.n);
    cr_expect(listed(&l, a.id) && listed(&l, b.id) && listed(&l, v.id) && listed(&l, v1.id));
}

Test(snapshotter, deletions_are_whiteouts_in_the_layer_above)
{
    snap_t a = prepare(NULL);
    const char *f[] = {"gone", "x"};
    with_mounted(&a, write_file, f);
    commit(&a);
    snap_t b = prepare(&a);
    with_mounted(&b, remove_file, "gone");
    const char *absent[] = {"gone", NULL};
    with_mounted(&b, expect_file, absent);
    commit(&b);
    snap_t c = prepare(&b);
    with_mounted(&c, expect_file, absent);
    snap_t d = prepare(&a);
    with_mounted(&d, expect_file, f);
}

Test(snapshotter, remove_takes_what_is_there_and_nothing_is_no_error)
{
    snap_t a = prepare(NULL);
    const char *f[] = {"x", "1"};
    with_mounted(&a, write_file, f);
    cr_assert_eq(ops->remove(sn, a.id, &err), 0);
    listed_t l = list_ids();
    cr_expect(!listed(&l, a.id), "id %llu still listed after remove", (unsigned long long)a.id);
    cr_expect_eq(ops->remove(sn, a.id, &err), 0, "removing twice: %s", err ? err->message : "");
    cr_expect_eq(ops->remove(sn, 987654, &err), 0, "removing an unknown id");
    struct stat st;
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/snapshots/%llu", root, (unsigned long long)a.id);
    cr_expect_neq(stat(dir, &st), 0, "%s stayed", dir);
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
    snap_t a = prepare(NULL);
    commit(&a);
    snap_t b = prepare(&a);
    commit(&b);
    snap_t v1 = create(BERTH_SNAPSHOT_VIEW, &a);   /* one parent */
    snap_t v2 = create(BERTH_SNAPSHOT_VIEW, &b);   /* a chain */
    snap_t v0 = create(BERTH_SNAPSHOT_VIEW, NULL); /* none */
    with_mounted(&v1, try_write, NULL);
    with_mounted(&v2, try_write, NULL);
    with_mounted(&v0, try_write, NULL);
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

Test(snapshotter, usage)
{
    snap_t a = prepare(NULL);
    with_mounted(&a, fill, NULL);
    int64_t size = 0, inodes = 0;
    cr_assert_eq(ops->usage(sn, a.id, &size, &inodes, &err), 0);
    cr_expect_geq(size, 1000000);
    cr_expect_geq(inodes, 2);
    commit(&a);
    cr_assert_eq(ops->usage(sn, a.id, &size, &inodes, &err), 0);
    cr_expect_geq(size, 1000000, "a committed layer's usage: %lld", (long long)size);
    expect_code(ops->usage(sn, 987654, &size, &inodes, &err), BERTH_ENOTFOUND);
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
    snap_t a = prepare(NULL);
    with_mounted(&a, make_special, NULL);
    commit(&a);
    snap_t b = prepare(&a);
    with_mounted(&b, check_special, NULL);
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
    snap_t layer, parent;
    for (int i = 0; i < 128; i++) {
        layer = prepare(i ? &parent : NULL);
        with_mounted(&layer, write_layer_file, &i);
        commit(&layer);
        parent = layer;
    }
    snap_t top = prepare(&parent);
    int found = 0;
    with_mounted(&top, count_layer_files, &found);
    cr_expect_eq(found, 128, "the mounted chain shows %d of 128 layers", found);
}

static uint64_t shared_next = 1000;

static void *
create_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++) {
        berth_snapshot_ref_t r = {__atomic_fetch_add(&shared_next, 1, __ATOMIC_RELAXED),
                                  BERTH_SNAPSHOT_ACTIVE, NULL, 0};
        berth_error_t *e = NULL;
        ops->create(sn, &r, &e);
        berth__core_api.error_free(e);
    }
    return NULL;
}

Test(snapshotter, concurrent_creates)
{
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, create_many, (void *)i);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    listed_t l = list_ids();
    cr_expect_eq(l.n, 80, "%zu snapshots after 80 concurrent creates", l.n);
}

Test(snapshotter, state_survives_a_restart_and_list_takes_half_made_ones)
{
    snap_t a = prepare(NULL);
    const char *f[] = {"kept", "yes"};
    with_mounted(&a, write_file, f);
    commit(&a);
    reg->fini(sn);
    sn = NULL;
    /* what a crash inside create leaves: a half-made snapshot directory */
    char orphan[600];
    snprintf(orphan, sizeof(orphan), "%s/snapshots/tmp-999", root);
    mkdir(orphan, 0700);
    open_snapshotter();
    listed_t l = list_ids();
    cr_expect_eq(l.n, 1, "%zu ids after a restart, 1 made", l.n);
    cr_expect(listed(&l, a.id), "a committed snapshot did not survive a restart");
    struct stat st;
    cr_expect_neq(stat(orphan, &st), 0, "list left %s", orphan);
    snap_t b = prepare(&a);
    with_mounted(&b, expect_file, f);
}

Test(snapshotter, a_commit_the_service_did_not_record_leaves_the_active_one_whole)
{
    /* a crash after the snapshotter's commit and before the record's: the record still names the active
     * id, which must still mount and hold what was written */
    snap_t a = prepare(NULL);
    const char *f[] = {"data", "v"};
    with_mounted(&a, write_file, f);
    berth_snapshot_ref_t r = ref(&a);
    uint64_t fresh = next_id++, committed = 0;
    cr_assert_eq(ops->commit(sn, &r, fresh, &committed, &err), 0);
    with_mounted(&a, expect_file, f);
    if (committed != a.id) /* the service's sweep takes the id no record names */
        cr_assert_eq(ops->remove(sn, committed, &err), 0);
    const char *g[] = {"more", "w"};
    with_mounted(&a, write_file, g);
    commit(&a);
    snap_t b = prepare(&a);
    with_mounted(&b, expect_file, f);
    with_mounted(&b, expect_file, g);
}
