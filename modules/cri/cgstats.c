/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgroup statistics for the CRI stats calls: path resolution (cgroupfs and systemd drivers, v1 and v2)
 * and the files' parsing, with containerd's definitions (working set = usage - inactive file, available =
 * limit - working set when there is a limit).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <berth/error.h>

#include "cgstats.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

int
cri_cg_is_v2(const char *root)
{
    struct statfs sf;
    return statfs(root, &sf) == 0 && (unsigned long)sf.f_type == CGROUP2_SUPER_MAGIC;
}

/* ---- paths ------------------------------------------------------------------------------------------ */

static int
put(char *out, size_t len, size_t *at, const char *s)
{
    size_t n = strlen(s);
    if (*at + n >= len)
        return BERTH_EINVAL;
    memcpy(out + *at, s, n + 1);
    *at += n;
    return 0;
}

int
cri_cg_expand_slice(const char *slice, char *out, size_t len)
{
    static const char suffix[] = ".slice";
    size_t n = strlen(slice), s = sizeof(suffix) - 1, at = 0;
    if (len == 0 || n <= s || strcmp(slice + n - s, suffix) != 0 || strchr(slice, '/'))
        return BERTH_EINVAL;
    out[0] = '\0';
    if (n - s == 1 && slice[0] == '-')
        return put(out, len, &at, "/");
    /* each "-" starts a parent: a-b-c.slice lives in a.slice/a-b.slice */
    const char *end = slice + n - s, *comp = slice;
    for (const char *p = slice; p <= end; p++) {
        if (p != end && *p != '-')
            continue;
        if (p == comp)
            return BERTH_EINVAL; /* an empty component: "a--b.slice", "-a.slice" */
        char part[256];
        size_t plen = (size_t)(p - slice);
        if (plen + s >= sizeof(part))
            return BERTH_EINVAL;
        memcpy(part, slice, plen);
        memcpy(part + plen, suffix, s + 1);
        if (put(out, len, &at, "/") < 0 || put(out, len, &at, part) < 0)
            return BERTH_EINVAL;
        comp = p + 1;
    }
    return 0;
}

/* "/a//b/" -> "/a/b"; "" -> "/" */
static int
clean_abs(const char *in, char *out, size_t len)
{
    size_t at = 0;
    if (len < 2)
        return BERTH_EINVAL;
    for (const char *p = in; *p;) {
        while (*p == '/')
            p++;
        if (*p == '\0')
            break;
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return BERTH_EINVAL; /* no walking out of the hierarchy */
        if (at + 1 + n >= len)
            return BERTH_EINVAL;
        out[at++] = '/';
        memcpy(out + at, p, n);
        at += n;
        p += n;
    }
    if (at == 0)
        out[at++] = '/';
    out[at] = '\0';
    return 0;
}

int
cri_cg_rel_path(int systemd, const char *cgroups_path, char *out, size_t len)
{
    if (!systemd)
        return clean_abs(cgroups_path, out, len);
    /* "<slice>:<prefix>:<name>" */
    const char *c1 = strchr(cgroups_path, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c1 == NULL || c2 == NULL || strchr(c2 + 1, ':'))
        return BERTH_EINVAL;
    char slice[256], prefix[128], name[256], unit[400], dir[1024];
    size_t ls = (size_t)(c1 - cgroups_path), lp = (size_t)(c2 - c1 - 1);
    if (ls >= sizeof(slice) || lp >= sizeof(prefix) || strlen(c2 + 1) >= sizeof(name) ||
        c2[1] == '\0')
        return BERTH_EINVAL;
    memcpy(slice, cgroups_path, ls), slice[ls] = '\0';
    memcpy(prefix, c1 + 1, lp), prefix[lp] = '\0';
    snprintf(name, sizeof(name), "%s", c2 + 1);
    if (cri_cg_expand_slice(ls ? slice : "system.slice", dir, sizeof(dir)) < 0)
        return BERTH_EINVAL;
    size_t nl = strlen(name);
    if (nl > 6 && strcmp(name + nl - 6, ".slice") == 0)
        snprintf(unit, sizeof(unit), "%s", name);
    else if (lp)
        snprintf(unit, sizeof(unit), "%s-%s.scope", prefix, name);
    else
        snprintf(unit, sizeof(unit), "%s.scope", name);
    if (strlen(dir) + 1 + strlen(unit) >= len)
        return BERTH_EINVAL;
    snprintf(out, len, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, unit);
    return 0;
}

int
cri_cg_parent_rel_path(int systemd, const char *parent, char *out, size_t len)
{
    if (systemd && *parent)
        return cri_cg_expand_slice(parent, out, len);
    return clean_abs(parent, out, len);
}

int
cri_cg_dir(const cri_cg_t *g, const char *rel, const char *controller, char *out, size_t len)
{
    int n = g->v2 ? snprintf(out, len, "%s%s", g->root, strcmp(rel, "/") == 0 ? "" : rel)
                  : snprintf(out, len, "%s/%s%s", g->root, controller,
                             strcmp(rel, "/") == 0 ? "" : rel);
    return n < 0 || (size_t)n >= len ? BERTH_EINVAL : 0;
}

/* ---- parsing ---------------------------------------------------------------------------------------- */

int
cri_cg_kv(const char *text, const char *key, uint64_t *out)
{
    size_t kl = strlen(key);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(p + kl + 1, &end, 10);
            if (errno || end == p + kl + 1)
                return BERTH_EINVAL;
            *out = v;
            return 0;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return BERTH_ENOTFOUND;
}

/* a file holding one number ("max" for none) */
static int
number(const char *text, uint64_t *out)
{
    if (text == NULL)
        return BERTH_ENOTFOUND;
    if (strncmp(text, "max", 3) == 0) {
        *out = UINT64_MAX;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text)
        return BERTH_EINVAL;
    *out = v;
    return 0;
}

static void
memory_common(uint64_t inactive_file, cri_cg_stats_t *st)
{
    st->working_set = inactive_file < st->usage ? st->usage - inactive_file : 0;
    st->has_mem = 1;
}

void
cri_cg_memory_v1(const char *usage, const char *limit, const char *stat, cri_cg_stats_t *st)
{
    uint64_t inactive = 0;
    if (number(usage, &st->usage) < 0)
        return;
    if (number(limit, &st->limit) < 0)
        st->limit = UINT64_MAX;
    if (stat) {
        cri_cg_kv(stat, "total_inactive_file", &inactive);
        cri_cg_kv(stat, "total_rss", &st->rss);
        cri_cg_kv(stat, "total_pgfault", &st->pgfault);
        cri_cg_kv(stat, "total_pgmajfault", &st->pgmajfault);
    }
    memory_common(inactive, st);
}

void
cri_cg_memory_v2(const char *current, const char *max, const char *stat, cri_cg_stats_t *st)
{
    uint64_t inactive = 0;
    if (number(current, &st->usage) < 0)
        return;
    if (number(max, &st->limit) < 0)
        st->limit = UINT64_MAX;
    if (stat) {
        cri_cg_kv(stat, "inactive_file", &inactive);
        cri_cg_kv(stat, "anon", &st->rss);
        cri_cg_kv(stat, "pgfault", &st->pgfault);
        cri_cg_kv(stat, "pgmajfault", &st->pgmajfault);
    }
    memory_common(inactive, st);
}

uint64_t
cri_cg_available(const cri_cg_stats_t *st)
{
    /* the kernel rounds "no limit" to a page multiple below 2^63: containerd counts above 2^62 as none */
    if (!st->has_mem || st->limit > (UINT64_C(1) << 62))
        return 0;
    return st->limit > st->working_set ? st->limit - st->working_set : 0;
}

uint64_t
cri_nano_cores(uint64_t prev_cpu_ns, int64_t prev_t_ns, uint64_t cpu_ns, int64_t t_ns)
{
    if (t_ns <= prev_t_ns || cpu_ns < prev_cpu_ns)
        return 0;
    /* in long double: ns * 1e9 overflows 64 bits after 18 cpu-seconds */
    long double r = (long double)(cpu_ns - prev_cpu_ns) * 1e9L / (long double)(t_ns - prev_t_ns);
    return (uint64_t)r;
}

size_t
cri_netdev_parse(const char *text, cri_netdev_t *out, size_t max)
{
    size_t n = 0;
    for (const char *p = text; p && *p && n < max;) {
        const char *colon = strchr(p, ':'), *nl = strchr(p, '\n');
        if (colon && (nl == NULL || colon < nl)) {
            const char *s = p;
            while (*s == ' ')
                s++;
            size_t nlen = (size_t)(colon - s);
            unsigned long long v[16];
            int got = sscanf(colon + 1,
                             "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu "
                             "%llu %llu %llu",
                             &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9],
                             &v[10], &v[11], &v[12], &v[13], &v[14], &v[15]);
            if (got == 16 && nlen > 0 && nlen < sizeof(out[n].name) &&
                !(nlen == 2 && strncmp(s, "lo", 2) == 0)) {
                memcpy(out[n].name, s, nlen);
                out[n].name[nlen] = '\0';
                /* receive: bytes packets errs ...; transmit (from the 9th): bytes packets errs */
                out[n].rx_bytes = v[0], out[n].rx_errors = v[2];
                out[n].tx_bytes = v[8], out[n].tx_errors = v[10];
                n++;
            }
        }
        p = nl ? nl + 1 : NULL;
    }
    return n;
}

/* ---- reading ---------------------------------------------------------------------------------------- */

char *
cri_read_text(const char *path)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (size_t r; buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += r;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb, cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

static char *
read_in(const char *dir, const char *file)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
        return NULL;
    return cri_read_text(path);
}

static int
is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static void
read_cpu(const cri_cg_t *g, const char *rel, cri_cg_stats_t *st)
{
    char dir[4096];
    if (cri_cg_dir(g, rel, "cpuacct", dir, sizeof(dir)) < 0)
        return;
    if (g->v2) {
        char *t = read_in(dir, "cpu.stat");
        uint64_t us;
        if (t && cri_cg_kv(t, "usage_usec", &us) == 0)
            st->cpu_ns = us * 1000, st->has_cpu = 1;
        free(t);
        return;
    }
    char *t = read_in(dir, "cpuacct.usage");
    if (t == NULL && cri_cg_dir(g, rel, "cpu,cpuacct", dir, sizeof(dir)) == 0)
        t = read_in(dir, "cpuacct.usage");
    if (t && number(t, &st->cpu_ns) == 0)
        st->has_cpu = 1;
    free(t);
}

static void
read_memory(const cri_cg_t *g, const char *rel, cri_cg_stats_t *st)
{
    char dir[4096];
    if (cri_cg_dir(g, rel, "memory", dir, sizeof(dir)) < 0)
        return;
    char *a = read_in(dir, g->v2 ? "memory.current" : "memory.usage_in_bytes");
    char *b = read_in(dir, g->v2 ? "memory.max" : "memory.limit_in_bytes");
    char *s = read_in(dir, "memory.stat");
    if (g->v2)
        cri_cg_memory_v2(a, b, s, st);
    else
        cri_cg_memory_v1(a, b, s, st);
    free(a), free(b), free(s);
}

static void
read_pids(const cri_cg_t *g, const char *rel, cri_cg_stats_t *st)
{
    char dir[4096];
    if (cri_cg_dir(g, rel, "pids", dir, sizeof(dir)) < 0)
        return;
    char *t = read_in(dir, "pids.current");
    if (t && number(t, &st->pids) == 0)
        st->has_pids = 1;
    free(t);
}

int
cri_cg_read(const cri_cg_t *g, const char *rel, cri_cg_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    out->limit = UINT64_MAX;
    read_cpu(g, rel, out);
    read_memory(g, rel, out);
    read_pids(g, rel, out);
    if (out->has_cpu || out->has_mem || out->has_pids)
        return 0;
    char dir[4096];
    return cri_cg_dir(g, rel, "memory", dir, sizeof(dir)) == 0 && is_dir(dir) ? 0 : BERTH_ENOTFOUND;
}

static uint64_t
sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

void
cri_cg_add(cri_cg_stats_t *a, const cri_cg_stats_t *b)
{
    if (b->has_cpu)
        a->cpu_ns += b->cpu_ns, a->has_cpu = 1;
    if (b->has_mem) {
        a->usage += b->usage, a->working_set += b->working_set, a->rss += b->rss;
        a->pgfault += b->pgfault, a->pgmajfault += b->pgmajfault;
        a->limit = a->has_mem ? sat_add(a->limit, b->limit) : b->limit;
        a->has_mem = 1;
    }
    if (b->has_pids)
        a->pids += b->pids, a->has_pids = 1;
}
