/* SPDX-License-Identifier: Apache-2.0 */
/*
 * userfiles.c: etc/passwd and etc/group found through a snapshot's layers as overlayfs finds them (top layer
 * first, whiteouts, opaque directories), in layer trees made here; what it does not follow (symlinks, other
 * mounts, other overlay options) is left to a mount (-1).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "userfiles.h"

static char top[256];

static void
setup(void)
{
    snprintf(top, sizeof(top), "/tmp/berth-userfiles-XXXXXX");
    cr_assert_not_null(mkdtemp(top));
    char p[512];
    snprintf(p, sizeof(p), "%s/out", top);
    cr_assert_eq(mkdir(p, 0700), 0);
}

static void
teardown(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
    cr_expect_eq(system(cmd), 0);
}

/* <top>/<layer>/etc/<name> holding text (NULL: only the etc dir) */
static void
put(const char *layer, const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", top, layer);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/%s/etc", top, layer);
    mkdir(p, 0755);
    if (name == NULL)
        return;
    snprintf(p, sizeof(p), "%s/%s/etc/%s", top, layer, name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f, "%s", p);
    fputs(text, f);
    fclose(f);
}

static void
whiteout(const char *layer, const char *rel)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", top, layer);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/%s/%s", top, layer, rel);
    cr_assert_eq(mknod(p, S_IFCHR | 0, makedev(0, 0)), 0, "mknod %s", p);
}

static char *
got(const char *name)
{
    static char buf[256];
    char p[512];
    snprintf(p, sizeof(p), "%s/out/%s", top, name);
    FILE *f = fopen(p, "r");
    if (f == NULL)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* an overlay mount of upper "u" over the lowers, nearest first */
static int
run_overlay(const char *lowers)
{
    char up[512], low[1024], work[512], out[512];
    snprintf(up, sizeof(up), "upperdir=%s/u", top);
    snprintf(work, sizeof(work), "workdir=%s/w", top);
    size_t n = (size_t)snprintf(low, sizeof(low), "lowerdir=");
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", lowers);
    for (char *l = strtok(copy, ":"); l; l = strtok(NULL, ":"))
        n += (size_t)snprintf(low + n, sizeof(low) - n, "%s%s/%s", n > 9 ? ":" : "", top, l);
    snprintf(out, sizeof(out), "%s/u", top);
    mkdir(out, 0755);
    snprintf(out, sizeof(out), "%s/out", top);
    const char *opts[] = {work, up, low};
    return cri_user_files_from_layers("overlay", "overlay", opts, 3, out);
}

TestSuite(userfiles, .init = setup, .fini = teardown);

Test(userfiles, nearest_layer_wins)
{
    put("l2", "passwd", "old:x:1:1::/:/bin/sh\n");
    put("l2", "group", "g2:x:2:\n");
    put("l1", "passwd", "new:x:1:1::/:/bin/sh\n");
    cr_assert_eq(run_overlay("l1:l2"), 0);
    cr_expect_str_eq(got("passwd"), "new:x:1:1::/:/bin/sh\n");
    cr_expect_str_eq(got("group"), "g2:x:2:\n", "group from the lower layer");
}

Test(userfiles, upper_first)
{
    put("l1", "passwd", "lower\n");
    put("u", "passwd", "upper\n");
    cr_assert_eq(run_overlay("l1"), 0);
    cr_expect_str_eq(got("passwd"), "upper\n");
}

Test(userfiles, whiteout_of_the_file_hides_lower)
{
    put("l2", "passwd", "old\n");
    put("l1", NULL, NULL);
    whiteout("l1", "etc/passwd");
    cr_assert_eq(run_overlay("l1:l2"), 0);
    cr_expect_null(got("passwd"), "a whited-out passwd was copied");
}

Test(userfiles, whiteout_of_etc_hides_lower)
{
    put("l2", "passwd", "old\n");
    whiteout("l1", "etc");
    cr_assert_eq(run_overlay("l1:l2"), 0);
    cr_expect_null(got("passwd"));
}

Test(userfiles, opaque_etc_hides_lower)
{
    put("l2", "passwd", "old\n");
    put("l2", "group", "oldg\n");
    put("l1", "group", "newg\n");
    char p[512];
    snprintf(p, sizeof(p), "%s/l1/etc", top);
    cr_assert_eq(setxattr(p, "trusted.overlay.opaque", "y", 1, 0), 0, "setxattr (needs root)");
    cr_assert_eq(run_overlay("l1:l2"), 0);
    cr_expect_null(got("passwd"), "passwd of a layer below an opaque etc was copied");
    cr_expect_str_eq(got("group"), "newg\n");
}

Test(userfiles, bind_is_one_layer)
{
    put("b", "passwd", "bound\n");
    char src[512], out[512];
    snprintf(src, sizeof(src), "%s/b", top);
    snprintf(out, sizeof(out), "%s/out", top);
    const char *opts[] = {"rbind", "rw"};
    cr_assert_eq(cri_user_files_from_layers("bind", src, opts, 2, out), 0);
    cr_expect_str_eq(got("passwd"), "bound\n");
    cr_expect_null(got("group"));
}

Test(userfiles, what_it_does_not_follow_is_mounted)
{
    put("l1", NULL, NULL);
    char p[512], out[512];
    snprintf(p, sizeof(p), "%s/l1/etc/passwd", top);
    cr_assert_eq(symlink("../usr/lib/passwd", p), 0);
    cr_expect_eq(run_overlay("l1"), -1, "a symlinked passwd");
    cr_expect_null(got("passwd"));
    snprintf(out, sizeof(out), "%s/out", top);
    const char *userxattr[] = {"lowerdir=/x", "userxattr"};
    cr_expect_eq(cri_user_files_from_layers("overlay", "overlay", userxattr, 2, out), -1);
    cr_expect_eq(cri_user_files_from_layers("btrfs", "/x", NULL, 0, out), -1);
}
