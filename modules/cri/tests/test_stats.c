/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pure parts of the stats: cgroup paths for both drivers and both versions, memory.stat / cpu.stat
 * parsing with containerd's definitions, the nano-cores rate, /proc/net/dev, and reading a cgroup tree
 * made here (v1 and v2 layouts).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <berth/error.h>

#include "cgstats.h"

static void
expect_slice(const char *slice, const char *want)
{
    char out[256];
    int rc = cri_cg_expand_slice(slice, out, sizeof(out));
    if (want == NULL) {
        cr_expect_lt(rc, 0, "%s expanded to %s", slice, out);
        return;
    }
    cr_expect_eq(rc, 0, "%s not expanded", slice);
    cr_expect_str_eq(out, want, "%s", slice);
}

Test(cgroup_paths, systemd_slices_expand)
{
    expect_slice("system.slice", "/system.slice");
    expect_slice("a-b-c.slice", "/a.slice/a-b.slice/a-b-c.slice");
    expect_slice("kubepods-besteffort-pod12ab.slice",
                 "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12ab.slice");
    expect_slice("-.slice", "/");
    expect_slice("a--b.slice", NULL);
    expect_slice("-a.slice", NULL);
    expect_slice("a-.slice", NULL);
    expect_slice("a/b.slice", NULL);
    expect_slice("foo.scope", NULL);
    expect_slice(".slice", NULL);
    char small[8];
    cr_expect_lt(cri_cg_expand_slice("abcdef-ghijk.slice", small, sizeof(small)), 0);
}

static void
expect_rel(int systemd, const char *in, const char *want)
{
    char out[512];
    int rc = cri_cg_rel_path(systemd, in, out, sizeof(out));
    if (want == NULL) {
        cr_expect_lt(rc, 0, "%s resolved to %s", in, out);
        return;
    }
    cr_expect_eq(rc, 0, "%s not resolved", in);
    cr_expect_str_eq(out, want, "%s", in);
}

Test(cgroup_paths, container_paths_for_both_drivers)
{
    expect_rel(0, "/kubepods/besteffort/pod1/abc", "/kubepods/besteffort/pod1/abc");
    expect_rel(0, "kubepods//pod1/abc/", "/kubepods/pod1/abc");
    expect_rel(0, "/a/../../etc", NULL);
    expect_rel(1, "kubepods-besteffort-pod1.slice:cri-berth:abc",
               "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/"
               "cri-berth-abc.scope");
    expect_rel(1, ":cri-berth:abc", "/system.slice/cri-berth-abc.scope");
    expect_rel(1, "-.slice:cri-berth:abc", "/cri-berth-abc.scope");
    expect_rel(1, "a.slice::x.slice", "/a.slice/x.slice");
    expect_rel(1, "/kubepods/abc", NULL);
    expect_rel(1, "a.slice:cri-berth:", NULL);
    expect_rel(1, "a.slice:p:q:r", NULL);
    char out[512];
    cr_expect_eq(cri_cg_parent_rel_path(1, "kubepods-pod1.slice", out, sizeof(out)), 0);
    cr_expect_str_eq(out, "/kubepods.slice/kubepods-pod1.slice");
    cr_expect_eq(cri_cg_parent_rel_path(0, "/kubepods/pod1", out, sizeof(out)), 0);
    cr_expect_str_eq(out, "/kubepods/pod1");
}

Test(cgroup_paths, directories_for_both_versions)
{
    char out[512];
    cri_cg_t v1 = {"/sys/fs/cgroup", 0, 0}, v2 = {"/sys/fs/cgroup", 1, 0};
    cr_expect_eq(cri_cg_dir(&v1, "/k/abc", "memory", out, sizeof(out)), 0);
    cr_expect_str_eq(out, "/sys/fs/cgroup/memory/k/abc");
    cr_expect_eq(cri_cg_dir(&v1, "/", "cpuacct", out, sizeof(out)), 0);
    cr_expect_str_eq(out, "/sys/fs/cgroup/cpuacct");
    cr_expect_eq(cri_cg_dir(&v2, "/k/abc", "memory", out, sizeof(out)), 0);
    cr_expect_str_eq(out, "/sys/fs/cgroup/k/abc");
    cr_expect_lt(cri_cg_dir(&v2, "/k/abc", "memory", out, 10), 0);
}

static const char v1_stat[] = "cache 100\nrss 7\npgfault 1\npgmajfault 1\ninactive_file 3\n"
                              "total_cache 9000\ntotal_rss 4096\ntotal_pgfault 321\n"
                              "total_pgmajfault 12\ntotal_inactive_file 1000\n";

Test(cgroup_files, key_values_match_whole_keys)
{
    uint64_t v = 0;
    cr_expect_eq(cri_cg_kv(v1_stat, "pgfault", &v), 0);
    cr_expect_eq(v, 1);
    cr_expect_eq(cri_cg_kv(v1_stat, "total_pgfault", &v), 0);
    cr_expect_eq(v, 321);
    cr_expect_eq(cri_cg_kv(v1_stat, "fault", &v), BERTH_ENOTFOUND);
    cr_expect_eq(cri_cg_kv("usage_usec 15\nuser_usec 10\n", "usage_usec", &v), 0);
    cr_expect_eq(v, 15);
    cr_expect_lt(cri_cg_kv("usage_usec x\n", "usage_usec", &v), 0);
}

Test(cgroup_files, memory_v1_as_containerd)
{
    cri_cg_stats_t st = {0};
    cri_cg_memory_v1("5000\n", "9223372036854771712\n", v1_stat, &st);
    cr_assert(st.has_mem);
    cr_expect_eq(st.usage, 5000);
    cr_expect_eq(st.working_set, 4000, "usage - total_inactive_file");
    cr_expect_eq(st.rss, 4096);
    cr_expect_eq(st.pgfault, 321);
    cr_expect_eq(st.pgmajfault, 12);
    cr_expect_eq(cri_cg_available(&st), 0, "no limit: no available figure");
    memset(&st, 0, sizeof(st));
    cri_cg_memory_v1("5000\n", "10000\n", v1_stat, &st);
    cr_expect_eq(cri_cg_available(&st), 6000);
    memset(&st, 0, sizeof(st));
    cri_cg_memory_v1("500\n", "10000\n", v1_stat, &st);
    cr_expect_eq(st.working_set, 0, "inactive file above usage: 0, not a wrap");
    memset(&st, 0, sizeof(st));
    cri_cg_memory_v1(NULL, "10000\n", v1_stat, &st);
    cr_expect(!st.has_mem);
}

Test(cgroup_files, memory_v2_as_containerd)
{
    cri_cg_stats_t st = {0};
    cri_cg_memory_v2("8192\n", "max\n",
                     "anon 2048\nfile 4096\ninactive_file 1024\nactive_file 0\npgfault 50\n"
                     "pgmajfault 2\n",
                     &st);
    cr_assert(st.has_mem);
    cr_expect_eq(st.usage, 8192);
    cr_expect_eq(st.working_set, 7168);
    cr_expect_eq(st.rss, 2048, "anon");
    cr_expect_eq(st.pgfault, 50);
    cr_expect_eq(st.pgmajfault, 2);
    cr_expect_eq(st.limit, UINT64_MAX);
    cr_expect_eq(cri_cg_available(&st), 0);
    memset(&st, 0, sizeof(st));
    cri_cg_memory_v2("8192\n", "16384\n", "inactive_file 1024\n", &st);
    cr_expect_eq(cri_cg_available(&st), 16384 - 7168);
}

Test(rate, nano_cores)
{
    /* one core busy for a second: 1e9 nano-cores */
    cr_expect_eq(cri_nano_cores(1000, 5000000000LL, 1000001000ULL, 6000000000LL), 1000000000ULL);
    /* half a core over 10 s */
    cr_expect_eq(cri_nano_cores(0, 0, 5000000000ULL, 10000000000LL), 500000000ULL);
    /* large counters do not overflow: 100 000 cpu-seconds then 4 cores over 2 s */
    uint64_t base = 100000ULL * 1000000000ULL;
    cr_expect_eq(cri_nano_cores(base, 1, base + 8000000000ULL, 2000000001LL), 4000000000ULL);
    cr_expect_eq(cri_nano_cores(10, 100, 20, 100), 0, "no interval");
    cr_expect_eq(cri_nano_cores(10, 200, 20, 100), 0, "time went back");
    cr_expect_eq(cri_nano_cores(30, 100, 20, 200), 0, "counter went back");
}

Test(netdev, parses_proc_net_dev)
{
    const char *t = "Inter-|   Receive                                                |  Transmit\n"
                    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    "
                    "packets errs drop "
                    "fifo colls carrier compressed\n"
                    "    lo:  100  2  0  0  0  0  0  0  100  2  0  0  0  0  0  0\n"
                    "  eth0: 1234  10  3  0  0  0  0  0  5678  20  4  0  0  0  0  0\n"
                    "  net1:1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n";
    cri_netdev_t d[4];
    size_t n = cri_netdev_parse(t, d, 4);
    cr_assert_eq(n, 2);
    cr_expect_str_eq(d[0].name, "eth0");
    cr_expect_eq(d[0].rx_bytes, 1234);
    cr_expect_eq(d[0].rx_errors, 3);
    cr_expect_eq(d[0].tx_bytes, 5678);
    cr_expect_eq(d[0].tx_errors, 4);
    cr_expect_str_eq(d[1].name, "net1");
    cr_expect_eq(d[1].rx_bytes, 1);
    cr_expect_eq(d[1].tx_bytes, 9);
    cr_expect_eq(cri_netdev_parse(t, d, 1), 1);
}

/* ---- a cgroup tree of our own ---- */

static void
put_file(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "mkdir -p '%s'", dir);
    cr_assert_eq(system(path), 0);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert(f != NULL, "%s", path);
    fputs(text, f);
    fclose(f);
}

static char root[64];

static void
mk_root(void)
{
    snprintf(root, sizeof(root), "/tmp/berth-cgtest-XXXXXX");
    cr_assert(mkdtemp(root) != NULL);
}

static void
rm_root(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    cr_expect_eq(system(cmd), 0);
}

Test(cgroup_read, v1_tree, .init = mk_root, .fini = rm_root)
{
    char d[512];
    snprintf(d, sizeof(d), "%s/cpuacct/kubepods/abc", root);
    put_file(d, "cpuacct.usage", "123456789\n");
    snprintf(d, sizeof(d), "%s/memory/kubepods/abc", root);
    put_file(d, "memory.usage_in_bytes", "5000\n");
    put_file(d, "memory.limit_in_bytes", "10000\n");
    put_file(d, "memory.stat", v1_stat);
    snprintf(d, sizeof(d), "%s/pids/kubepods/abc", root);
    put_file(d, "pids.current", "3\n");
    cri_cg_t g = {root, 0, 0};
    char rel[256];
    cr_assert_eq(cri_cg_rel_path(0, "/kubepods/abc", rel, sizeof(rel)), 0);
    cri_cg_stats_t st;
    cr_assert_eq(cri_cg_read(&g, rel, &st), 0);
    cr_expect(st.has_cpu && st.has_mem && st.has_pids);
    cr_expect_eq(st.cpu_ns, 123456789);
    cr_expect_eq(st.working_set, 4000);
    cr_expect_eq(cri_cg_available(&st), 6000);
    cr_expect_eq(st.pids, 3);
    cr_expect_eq(cri_cg_read(&g, "/kubepods/gone", &st), BERTH_ENOTFOUND);
}

Test(cgroup_read, v2_systemd_tree, .init = mk_root, .fini = rm_root)
{
    char d[512];
    snprintf(d, sizeof(d), "%s/kubepods.slice/kubepods-pod1.slice/cri-berth-abc.scope", root);
    put_file(d, "cpu.stat", "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n");
    put_file(d, "memory.current", "8192\n");
    put_file(d, "memory.max", "max\n");
    put_file(d, "memory.stat", "anon 2048\ninactive_file 1024\npgfault 5\npgmajfault 1\n");
    put_file(d, "pids.current", "2\n");
    cri_cg_t g = {root, 1, 1};
    char rel[256];
    cr_assert_eq(cri_cg_rel_path(1, "kubepods-pod1.slice:cri-berth:abc", rel, sizeof(rel)), 0);
    cri_cg_stats_t st, sum = {0};
    cr_assert_eq(cri_cg_read(&g, rel, &st), 0);
    cr_expect_eq(st.cpu_ns, 2500000, "usage_usec in ns");
    cr_expect_eq(st.working_set, 7168);
    cr_expect_eq(st.rss, 2048);
    cr_expect_eq(st.pids, 2);
    cri_cg_add(&sum, &st);
    cri_cg_add(&sum, &st);
    cr_expect_eq(sum.cpu_ns, 5000000);
    cr_expect_eq(sum.working_set, 2 * 7168);
    cr_expect_eq(sum.limit, UINT64_MAX);
    cr_expect_eq(sum.pids, 4);
    cr_expect_eq(cri_cg_is_v2(root), 0, "a tmp directory is no cgroup2 mount");
}
