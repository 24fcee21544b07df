/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The thin wrappers against a real berthd: snapshots (prepare, mounts, mount(2) of them, commit, view,
 * stat, list, usage, remove), content (info, list, read to memory and to an fd, delete), leases.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "img_fixture.h"

/* ---- snapshots --------------------------------------------------------------------------------------- */

static char listed[4096];

/* 1: listed with that kind; -1: with another; 0: not listed. `listed` shows what was. */
static int
list_has(const char *name, const char *kind)
{
    berth_snapshot_info_t *v = NULL;
    size_t n = 0;
    berth_error_t *err = NULL;
    OK(berth_snapshot_list(cl, NULL, NULL, &v, &n, &err));
    int found = 0;
    size_t len = 0;
    listed[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].name, name) == 0)
            found = strcmp(v[i].kind, kind) == 0 ? 1 : -1;
        int w = snprintf(listed + len, sizeof(listed) - len, "%s(%s) ", v[i].name, v[i].kind);
        if (w > 0 && (size_t)w < sizeof(listed) - len)
            len += (size_t)w;
    }
    berth_snapshot_infos_free(v, n);
    return found;
}

Test(store, snapshots, .init = fx_setup_plain, .fini = fx_teardown, .timeout = 60)
{
    berth_error_t *err = NULL;
    berth_mount_t *m = NULL;
    size_t nm = 0;
    /* a lease names them before they exist, so the daemon's garbage collection (a deletion triggers it)
     * keeps what this test made (the API's calls carry no lease of their own) */
    OK(berth_lease_create(cl, NULL, "snapshot-test", 0, NULL, &err));
    const char *keys[] = {"work-1", "layer-1", "view-1"};
    for (size_t i = 0; i < 3; i++)
        OK(berth_lease_add_resource(cl, NULL, "snapshot-test", keys[i], "snapshots/overlayfs",
                                    &err));
    berth_kv_t labels[] = {{"test.label", "one"}};
    OK(berth_snapshot_prepare(cl, NULL, NULL, "work-1", NULL, labels, 1, &m, &nm, &err));
    cr_assert_gt(nm, 0, "no mounts");
    berth_mounts_free(m, nm);
    OK(berth_snapshot_mounts(cl, NULL, NULL, "work-1", &m, &nm, &err));
    cr_assert_gt(nm, 0);

    /* write into the active snapshot through its mounts */
    char target[400], file[500];
    snprintf(target, sizeof(target), "%s/mnt", fx.dir);
    mkdir(target, 0755);
    OK(berth_mount_all(m, nm, target, &err));
    berth_mounts_free(m, nm);
    snprintf(file, sizeof(file), "%s/hello", target);
    FILE *f = fopen(file, "w");
    cr_assert(f, "write into the mounted snapshot");
    fputs("from the client\n", f);
    fclose(f);
    cr_assert_eq(umount2(target, 0), 0);

    berth_snapshot_info_t *si = NULL;
    OK(berth_snapshot_stat(cl, NULL, NULL, "work-1", &si, &err));
    cr_assert_str_eq(si->kind, "active");
    cr_assert_str_eq(fx_kv(si->labels, si->n_labels, "test.label"), "one");
    berth_snapshot_infos_free(si, 1);

    OK(berth_snapshot_commit(cl, NULL, NULL, "layer-1", "work-1", &err));
    cr_assert_eq(list_has("layer-1", "committed"), 1, "listed: %s", listed);
    cr_assert_eq(list_has("work-1", "active"), 0,
                 "the active snapshot is gone after its commit: %s", listed);

    int64_t size = 0, inodes = 0;
    OK(berth_snapshot_usage(cl, NULL, NULL, "layer-1", &size, &inodes, &err));
    cr_assert_gt(size, 0);
    cr_assert_gt(inodes, 0);

    /* a view on the committed layer sees the file */
    OK(berth_snapshot_view(cl, NULL, NULL, "view-1", "layer-1", &m, &nm, &err));
    OK(berth_mount_all(m, nm, target, &err));
    berth_mounts_free(m, nm);
    size_t len = 0;
    char *text = fx_read(file, &len);
    cr_assert_str_eq(text, "from the client\n");
    free(text);
    f = fopen(file, "w");
    cr_assert_null(f, "a view is read-only");
    cr_assert_eq(umount2(target, 0), 0);
    cr_assert_eq(list_has("view-1", "view"), 1, "listed: %s", listed);
    OK(berth_snapshot_stat(cl, NULL, NULL, "view-1", &si, &err));
    cr_assert_str_eq(si->parent, "layer-1");
    berth_snapshot_infos_free(si, 1);

    /* the parent cannot go before its child */
    cr_assert_lt(berth_snapshot_remove(cl, NULL, NULL, "layer-1", &err), 0);
    berth_error_free(err);
    err = NULL;
    OK(berth_snapshot_remove(cl, NULL, NULL, "view-1", &err));
    OK(berth_snapshot_remove(cl, NULL, NULL, "layer-1", &err));
    cr_assert_eq(list_has("layer-1", "committed"), 0);
    int rc = berth_snapshot_stat(cl, NULL, NULL, "layer-1", &si, &err);
    cr_assert_eq(rc, BERTH_ENOTFOUND);
    berth_error_free(err);
    err = NULL;
    rc = berth_snapshot_mounts(cl, NULL, "nosuchsnapshotter", "x", &m, &nm, &err);
    cr_assert_lt(rc, 0, "an unknown snapshotter");
    berth_error_free(err);
}

Test(store, mount_all_reports_failure, .init = fx_setup_plain, .fini = fx_teardown, .timeout = 30)
{
    char opt[] = "ro";
    char *opts[] = {opt};
    berth_mount_t m = {.type = "bind",
                       .source = "/nonexistent/berth",
                       .target = "",
                       .options = opts,
                       .n_options = 1};
    berth_error_t *err = NULL;
    char target[400];
    snprintf(target, sizeof(target), "%s/mnt2", fx.dir);
    mkdir(target, 0755);
    int rc = berth_mount_all(&m, 1, target, &err);
    cr_assert_lt(rc, 0);
    cr_assert(strstr(err->message, "/nonexistent/berth"), "%s", err->message);
    berth_error_free(err);
}

/* ---- content ----------------------------------------------------------------------------------------- */

Test(store, content, .init = fx_setup_plain, .fini = fx_teardown, .timeout = 60)
{
    fx_import(cl, &fx);
    berth_error_t *err = NULL;
    char blob[1024];
    snprintf(blob, sizeof(blob), "%s/%s", fx.blobs, fx.layer + 7);
    size_t want_len = 0;
    char *want = fx_read(blob, &want_len);

    berth_content_info_t *ci = NULL;
    OK(berth_content_info(cl, NULL, fx.layer, &ci, &err));
    cr_assert_str_eq(ci->digest, fx.layer);
    cr_assert_eq(ci->size, (int64_t)want_len);
    berth_content_infos_free(ci, 1);

    berth_content_info_t *v = NULL;
    size_t n = 0;
    OK(berth_content_list(cl, NULL, NULL, 0, &v, &n, &err));
    int seen = 0;
    for (size_t i = 0; i < n; i++)
        seen += !strcmp(v[i].digest, fx.layer) + !strcmp(v[i].digest, fx.manifest) +
                !strcmp(v[i].digest, fx.config);
    cr_assert_eq(seen, 3, "list: layer, manifest and config");
    berth_content_infos_free(v, n);
    char filter[120];
    snprintf(filter, sizeof(filter), "digest==%s", fx.config);
    const char *filters[] = {filter};
    OK(berth_content_list(cl, NULL, filters, 1, &v, &n, &err));
    cr_assert_eq(n, 1);
    cr_assert_str_eq(v[0].digest, fx.config);
    berth_content_infos_free(v, n);

    /* the layer to memory: the same bytes */
    char *data = NULL;
    size_t len = 0;
    OK(berth_content_read(cl, NULL, fx.layer, -1, &data, &len, &err));
    cr_assert_eq(len, want_len);
    cr_assert(memcmp(data, want, len) == 0, "the bytes differ");
    free(data);
    free(want);
    /* to an fd: its sha256 is the digest */
    char out[400];
    snprintf(out, sizeof(out), "%s/layer.out", fx.dir);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    OK(berth_content_read(cl, NULL, fx.layer, fd, NULL, NULL, &err));
    close(fd);
    fx_sh("sha256sum %s | grep -q ^%s", out, fx.layer + 7);

    OK(berth_content_delete(cl, NULL, fx.config, &err));
    int rc = berth_content_info(cl, NULL, fx.config, &ci, &err);
    cr_assert_eq(rc, BERTH_ENOTFOUND);
    berth_error_free(err);
    err = NULL;
    rc = berth_content_read(cl, NULL, fx.config, -1, &data, &len, &err);
    cr_assert_eq(rc, BERTH_ENOTFOUND, "read of a deleted blob: %d", rc);
    berth_error_free(err);
}

/* ---- leases ------------------------------------------------------------------------------------------ */

static berth_lease_t *
find_lease(berth_lease_t *v, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].id, id) == 0)
            return &v[i];
    return NULL;
}

Test(store, leases, .init = fx_setup_plain, .fini = fx_teardown, .timeout = 60)
{
    berth_error_t *err = NULL;
    berth_lease_t *l = NULL;
    OK(berth_lease_create(cl, NULL, "client-lease", 3600, &l, &err));
    cr_assert_str_eq(l->id, "client-lease");
    berth_leases_free(l, 1);
    OK(berth_lease_create(cl, NULL, NULL, 0, &l, &err));
    char random_id[100];
    snprintf(random_id, sizeof(random_id), "%s", l->id);
    cr_assert_gt(strlen(random_id), 0);
    berth_leases_free(l, 1);
    int rc = berth_lease_create(cl, NULL, "client-lease", 0, NULL, &err);
    cr_assert_eq(rc, BERTH_EEXIST);
    berth_error_free(err);
    err = NULL;

    berth_lease_t *v = NULL;
    size_t n = 0;
    OK(berth_lease_list(cl, NULL, &v, &n, &err));
    berth_lease_t *mine = find_lease(v, n, "client-lease");
    cr_assert(mine, "not listed");
    const char *exp = fx_kv(mine->labels, mine->n_labels, "containerd.io/gc.expire");
    cr_assert(exp && strlen(exp) == 20 && exp[19] == 'Z', "gc.expire: %s", exp ? exp : "none");
    cr_assert(find_lease(v, n, random_id));
    berth_leases_free(v, n);

    fx_import(cl, &fx);
    OK(berth_lease_add_resource(cl, NULL, "client-lease", fx.layer, "content", &err));
    rc = berth_lease_add_resource(cl, NULL, "no-such-lease", fx.layer, "content", &err);
    cr_assert_lt(rc, 0);
    berth_error_free(err);
    err = NULL;

    OK(berth_lease_delete(cl, NULL, "client-lease", 1, &err));
    OK(berth_lease_delete(cl, NULL, random_id, 0, &err));
    OK(berth_lease_list(cl, NULL, &v, &n, &err));
    cr_assert_null(find_lease(v, n, "client-lease"));
    cr_assert_null(find_lease(v, n, random_id));
    berth_leases_free(v, n);
    rc = berth_lease_delete(cl, NULL, "client-lease", 0, &err);
    cr_assert_eq(rc, BERTH_ENOTFOUND);
    berth_error_free(err);
}

/* A call's lease (berth_call_t.lease, the containerd-lease header) keeps what the call made from the garbage
 * collector until the lease goes: a snapshot prepared under it survives a collection another lease's
 * synchronous delete runs, and goes with its own lease's. */
Test(store, call_lease, .init = fx_setup_plain, .fini = fx_teardown, .timeout = 60)
{
    berth_error_t *err = NULL;
    OK(berth_lease_create(cl, NULL, "call-lease", 0, NULL, &err));
    berth_call_t under = {.lease = "call-lease"};
    berth_mount_t *m = NULL;
    size_t nm = 0;
    OK(berth_snapshot_prepare(cl, &under, NULL, "leased-snap", NULL, NULL, 0, &m, &nm, &err));
    berth_mounts_free(m, nm);
    OK(berth_lease_create(cl, NULL, "trigger", 0, NULL, &err));
    OK(berth_lease_delete(cl, NULL, "trigger", 1,
                          &err)); /* sync: a collection runs before it returns */
    cr_assert_eq(list_has("leased-snap", "active"), 1, "the leased snapshot was collected: %s",
                 listed);
    OK(berth_lease_delete(cl, NULL, "call-lease", 1, &err));
    cr_assert_eq(list_has("leased-snap", "active"), 0, "the snapshot outlived its lease: %s",
                 listed);
}
