/* SPDX-License-Identifier: Apache-2.0 */
/* Volume driver options: what each type takes, sizes, tmpfs's o, and each refusal's message. */
#include <criterion/criterion.h>
#include <string.h>

#include "options.h"

static char errbuf[512];

#define N(a) (sizeof(a) / sizeof(a[0]))

static volopts_t
ok(size_t n, const char *const *k, const char *const *v)
{
    volopts_t o;
    cr_assert_eq(volopts_parse(n, k, v, &o, errbuf, sizeof(errbuf)), 0, "%s", errbuf);
    return o;
}

static void
refused(size_t n, const char *const *k, const char *const *v, const char *want)
{
    volopts_t o;
    errbuf[0] = '\0';
    cr_assert_eq(volopts_parse(n, k, v, &o, errbuf, sizeof(errbuf)), -1, "accepted (%s)", want);
    cr_assert(strstr(errbuf, want) != NULL, "error \"%s\" lacks \"%s\"", errbuf, want);
}

Test(options, directory_by_default)
{
    volopts_t o = ok(0, NULL, NULL);
    cr_assert_eq(o.type, VOL_DIR);
    const char *k[] = {"type"}, *v[] = {""};
    o = ok(1, k, v);
    cr_assert_eq(o.type, VOL_DIR);
}

Test(options, tmpfs_with_size_and_o)
{
    const char *k[] = {"type", "size", "o"};
    const char *v[] = {"tmpfs", "10m", "mode=1777,uid=1000,gid=1000,nr_inodes=4k"};
    volopts_t o = ok(3, k, v);
    cr_assert_eq(o.type, VOL_TMPFS);
    cr_assert_eq(o.size, 10u << 20);
    cr_assert_str_eq(o.tmpfs_data, "size=10485760,mode=1777,uid=1000,gid=1000,nr_inodes=4k");
    const char *k2[] = {"type"}, *v2[] = {"tmpfs"};
    o = ok(1, k2, v2);
    cr_assert_str_eq(o.tmpfs_data, "");
}

Test(options, bind_needs_an_absolute_device)
{
    const char *k[] = {"type", "device"}, *v[] = {"bind", "/srv/data"};
    volopts_t o = ok(2, k, v);
    cr_assert_eq(o.type, VOL_BIND);
    cr_assert_str_eq(o.device, "/srv/data");
    const char *k1[] = {"type"}, *v1[] = {"bind"};
    refused(1, k1, v1, "type bind needs option device");
    const char *v2[] = {"bind", "srv/data"};
    refused(2, k, v2, "option device \"srv/data\" is not an absolute path");
}

Test(options, refusals)
{
    const char *k[] = {"colour"}, *v[] = {"blue"};
    refused(1, k, v, "unknown option \"colour\" (known: type, size, device, o)");
    const char *kt[] = {"type"}, *vt[] = {"nfs"};
    refused(1, kt, vt, "option type \"nfs\" is unknown");
    const char *ks[] = {"size"}, *vs[] = {"1m"};
    refused(1, ks, vs, "option size is for type tmpfs only (this volume is a directory)");
    const char *ko[] = {"type", "o"}, *vo[] = {"bind", "mode=0700"};
    refused(2, ko, vo, "option o is for type tmpfs only (this volume is a bind)");
    const char *kd[] = {"device"}, *vd[] = {"/srv"};
    refused(1, kd, vd, "option device is for type bind only");
    const char *k3[] = {"type", "o"};
    const char *v3[] = {"tmpfs", "exec"};
    refused(2, k3, v3, "option o: \"exec\" is not allowed (allowed: mode, uid, gid, nr_inodes");
    const char *v4[] = {"tmpfs", "mode=0755,suid=1"};
    refused(2, k3, v4, "option o: \"suid\" is not allowed");
    const char *v5[] = {"tmpfs", "size=1g"};
    refused(2, k3, v5, "use the option size");
    const char *v6[] = {"tmpfs", "mode=0999"};
    refused(2, k3, v6, "option o: mode \"0999\" is not a number (octal)");
    const char *v7[] = {"tmpfs", "uid=abc"};
    refused(2, k3, v7, "option o: uid \"abc\" is not a number");
    const char *v8[] = {"tmpfs", "mode=17777"};
    refused(2, k3, v8, "too large");
    const char *k9[] = {"type", "size"}, *v9[] = {"tmpfs", "10x"};
    refused(2, k9, v9, "option size \"10x\" is not a number (with an optional k, m or g suffix)");
}

Test(size, parse)
{
    uint64_t n;
    cr_assert_eq(volsize_parse("4096", &n, errbuf, sizeof(errbuf)), 0);
    cr_assert_eq(n, 4096);
    cr_assert_eq(volsize_parse("64k", &n, errbuf, sizeof(errbuf)), 0);
    cr_assert_eq(n, 65536);
    cr_assert_eq(volsize_parse("3M", &n, errbuf, sizeof(errbuf)), 0);
    cr_assert_eq(n, 3u << 20);
    cr_assert_eq(volsize_parse("2g", &n, errbuf, sizeof(errbuf)), 0);
    cr_assert_eq(n, 2ull << 30);
    const char *bad[] = {
        "", "k", "-1", "1.5m", "1mb", "1 m", "0", "99999999999999999999", "17179869184g"};
    for (size_t i = 0; i < N(bad); i++)
        cr_assert_eq(volsize_parse(bad[i], &n, errbuf, sizeof(errbuf)), -1, "%s accepted", bad[i]);
    cr_assert_eq(volsize_parse("0", &n, errbuf, sizeof(errbuf)), -1);
    cr_assert(strstr(errbuf, "must be more than 0") != NULL, "%s", errbuf);
}
