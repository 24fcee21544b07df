/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Requests refused before anything is made: what would otherwise fail late (in runc, after a snapshot,
 * a network and a shim were made for nothing) or do harm (a log file outside the pod's log directory).
 * Each answer names the field and the value (InvalidArgument: BERTH_EINVAL).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cri.h"

static int
bad(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return BERTH_EINVAL;
}

/* kubelet's limits (pkg/kubelet/cm) and the kernel's: cpu.shares 2..262144, cfs period 1 ms..1 s,
 * quota -1 (none) or at least 1 ms, oom_score_adj -1000..1000, no negative byte counts. 0 is "not set". */
int
cri_validate_resources(const Runtime__V1__LinuxContainerResources *r, const char *what, char *why,
                       size_t len)
{
    if (r == NULL)
        return 0;
    if (r->cpu_shares < 0 || r->cpu_shares > 262144)
        return bad(why, len, "%s: cpu_shares %lld is out of range (0..262144)", what,
                   (long long)r->cpu_shares);
    if (r->cpu_period != 0 && (r->cpu_period < 1000 || r->cpu_period > 1000000))
        return bad(why, len, "%s: cpu_period %lld is out of range (1000..1000000 us)", what,
                   (long long)r->cpu_period);
    if (r->cpu_quota < -1 || (r->cpu_quota > 0 && r->cpu_quota < 1000))
        return bad(why, len, "%s: cpu_quota %lld is out of range (-1, 0 or >= 1000 us)", what,
                   (long long)r->cpu_quota);
    if (r->memory_limit_in_bytes < 0)
        return bad(why, len, "%s: memory_limit_in_bytes %lld is negative", what,
                   (long long)r->memory_limit_in_bytes);
    if (r->memory_swap_limit_in_bytes < -1)
        return bad(why, len, "%s: memory_swap_limit_in_bytes %lld is out of range (-1 or >= 0)",
                   what, (long long)r->memory_swap_limit_in_bytes);
    if (r->oom_score_adj < -1000 || r->oom_score_adj > 1000)
        return bad(why, len, "%s: oom_score_adj %lld is out of range (-1000..1000)", what,
                   (long long)r->oom_score_adj);
    for (size_t i = 0; i < r->n_hugepage_limits; i++) {
        const Runtime__V1__HugepageLimit *h = r->hugepage_limits[i];
        if (h == NULL || h->page_size == NULL || !*h->page_size)
            return bad(why, len, "%s: a hugepage limit without a page size", what);
    }
    return 0;
}

/* runc's validation (libcontainer/configs/validate: sysctl): only namespaced sysctls, the net.* ones only
 * in a network namespace of the pod's own, ipc ones only in its own IPC namespace, kernel.domainname in
 * its own UTS namespace; a key is dotted words
 * (or a slash path), never one that climbs out of /proc/sys. */
int
cri_validate_sysctls(const Runtime__V1__LinuxPodSandboxConfig *l, int host_net, int host_ipc,
                     char *why, size_t len)
{
    static const char *const ipc_keys[] = {
        "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni",          "kernel.sem", "kernel.shmall",
        "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced", NULL};
    for (size_t i = 0; l != NULL && i < l->n_sysctls; i++) {
        const char *k = l->sysctls[i] ? l->sysctls[i]->key : NULL;
        if (k == NULL || !*k)
            return bad(why, len, "sysctls: an empty name");
        if (strstr(k, "..") != NULL || k[0] == '.' || k[0] == '/' || strpbrk(k, " \t\n=") != NULL)
            return bad(why, len, "sysctl \"%s\": not a sysctl name", k);
        int ipc = strncmp(k, "fs.mqueue.", 10) == 0 || strncmp(k, "fs/mqueue/", 10) == 0;
        for (size_t j = 0; !ipc && ipc_keys[j]; j++)
            ipc = strcmp(k, ipc_keys[j]) == 0;
        int net = strncmp(k, "net.", 4) == 0 || strncmp(k, "net/", 4) == 0;
        if (ipc && host_ipc)
            return bad(why, len,
                       "sysctl \"%s\": not allowed in a pod that shares the host's IPC namespace",
                       k);
        if (net && host_net)
            return bad(why, len,
                       "sysctl \"%s\": not allowed in a pod that uses the host's network namespace",
                       k);
        /* the pod's own UTS namespace (not with the host's network, as containerd pairs them) */
        if (strcmp(k, "kernel.domainname") == 0 && !host_net)
            continue;
        if (!ipc && !net)
            return bad(why, len,
                       "sysctl \"%s\": not a namespaced sysctl (only kernel.msg*, kernel.sem, "
                       "kernel.shm*, fs.mqueue.* and net.*)",
                       k);
    }
    return 0;
}

/* The container's log file must be under the pod's log directory (as kubelet asks): an absolute directory
 * and a path that does not climb out of it. */
int
cri_validate_log_path(const char *dir, const char *path, char *why, size_t len)
{
    if (dir == NULL || !*dir || path == NULL || !*path)
        return 0;
    if (dir[0] != '/')
        return bad(why, len, "log_directory \"%s\": not an absolute path", dir);
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return bad(why, len, "log_path \"%s\": leaves the pod's log directory %s", path, dir);
        p += n;
        p += *p == '/';
    }
    return 0;
}

static int
alnum_lower(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/* One path component of a repository name: [a-z0-9]+ joined by ".", "_", "__" or runs of "-". */
static int
path_component_ok(const char *p, size_t n)
{
    if (n == 0 || !alnum_lower(p[0]) || !alnum_lower(p[n - 1]))
        return 0;
    for (size_t i = 1; i < n; i++) {
        if (alnum_lower(p[i]))
            continue;
        if (p[i] == '.' || p[i] == '_') {
            size_t run = 1;
            while (i + run < n && p[i + run] == p[i])
                run++;
            if (run > (p[i] == '_' ? 2u : 1u))
                return 0;
            i += run - 1;
        } else if (p[i] != '-') {
            return 0;
        }
        if (!alnum_lower(p[i + 1]) && p[i + 1] != '-')
            return 0;
    }
    return 1;
}

/* A registry host: dotted labels of letters, digits and "-", an optional :port. */
static int
domain_ok(const char *p, size_t n)
{
    const char *colon = memchr(p, ':', n);
    size_t hn = colon ? (size_t)(colon - p) : n;
    if (hn == 0)
        return 0;
    for (size_t i = 0; i < hn; i++) {
        char ch = p[i];
        if (!(alnum_lower(ch) || (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '.'))
            return 0;
        if (ch == '.' && (i == 0 || i + 1 == hn || p[i + 1] == '.'))
            return 0;
    }
    if (colon) {
        if (colon + 1 == p + n)
            return 0;
        for (const char *q = colon + 1; q < p + n; q++)
            if (*q < '0' || *q > '9')
                return 0;
    }
    return 1;
}

/* An image reference as docker's reference grammar (distribution/reference) has it: [host/]path[:tag]
 * [@algo:hex], or an image id (sha256:<hex>) or id prefix, which image lookups also take. */
int
cri_validate_image_ref(const char *ref, char *why, size_t len)
{
    if (ref == NULL || !*ref)
        return bad(why, len, "image: a name or id is required");
    size_t n = strlen(ref);
    if (n > 512)
        return bad(why, len, "image \"%.64s...\": the reference is too long", ref);
    if (strncmp(ref, "sha256:", 7) == 0 && strspn(ref + 7, "0123456789abcdef") == n - 7 && n > 7)
        return 0;
    const char *at = strchr(ref, '@');
    size_t name_end = at ? (size_t)(at - ref) : n;
    if (at) {
        const char *colon = strchr(at + 1, ':');
        if (colon == NULL || colon == at + 1 || colon[1] == '\0' ||
            strspn(colon + 1, "0123456789abcdefABCDEF") != strlen(colon + 1))
            return bad(why, len, "image \"%s\": invalid reference format (digest)", ref);
    }
    /* the tag: after the last ':' that follows the last '/' */
    const char *slash = memrchr(ref, '/', name_end);
    const char *tag =
        memrchr(slash ? slash : ref, ':', name_end - (size_t)((slash ? slash : ref) - ref));
    size_t path_end = tag ? (size_t)(tag - ref) : name_end;
    if (tag) {
        size_t tn = name_end - (size_t)(tag - ref) - 1;
        if (tn == 0 || tn > 128)
            return bad(why, len, "image \"%s\": invalid reference format (tag)", ref);
        for (size_t i = 1; i <= tn; i++) {
            char ch = tag[i];
            int word = alnum_lower(ch) || (ch >= 'A' && ch <= 'Z') || ch == '_';
            if (!word && (i == 1 || (ch != '.' && ch != '-')))
                return bad(why, len, "image \"%s\": invalid reference format (tag)", ref);
        }
    }
    /* the first component is a host when it has a '.' or ':' or is localhost */
    const char *p = ref, *end = ref + path_end;
    const char *first = memchr(p, '/', path_end);
    if (first && (memchr(p, '.', (size_t)(first - p)) || memchr(p, ':', (size_t)(first - p)) ||
                  ((size_t)(first - p) == 9 && strncmp(p, "localhost", 9) == 0))) {
        if (!domain_ok(p, (size_t)(first - p)))
            return bad(why, len, "image \"%s\": invalid reference format (registry host)", ref);
        p = first + 1;
    }
    if (p == end)
        return bad(why, len, "image \"%s\": invalid reference format (no repository)", ref);
    while (p <= end) {
        const char *s = memchr(p, '/', (size_t)(end - p));
        size_t cn = s ? (size_t)(s - p) : (size_t)(end - p);
        if (!path_component_ok(p, cn))
            return bad(why, len,
                       "image \"%s\": invalid reference format (repository names are lowercase "
                       "letters, digits and separators)",
                       ref);
        if (s == NULL)
            break;
        p = s + 1;
    }
    return 0;
}
