/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OCI runtime specs from CRI configs, as containerd 1.6's CRI generates them (pkg/cri/server
 * container_create_linux.go, sandbox_run_linux.go, pkg/cri/opts and oci/spec.go's defaults): what a
 * client can see inside the container (process, mounts, namespaces, resources, security) is the same.
 * Pure logic apart from reading the host's view of what a spec names: host paths of mounts (created
 * when missing, as containerd does), devices, the mount table (propagation), the rootfs's passwd/group.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cri.h"

#define DEFAULT_PATH_ENV "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define SANDBOX_CPU_SHARES 2
#define SANDBOX_OOM_SCORE_ADJ (-998)

static int
fail(char *why, size_t len, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why != NULL && len > 0)
        vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- small json helpers ---------------------------------------------------------------------------- */

static json_object *
jstr(const char *s)
{
    return json_object_new_string(s != NULL ? s : "");
}

static json_object *
strv_array(const char *const *v)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        json_object_array_add(a, jstr(v[i]));
    return a;
}

static json_object *
child(json_object *o, const char *k)
{
    json_object *c;
    if (!json_object_object_get_ex(o, k, &c) || c == NULL) {
        c = json_object_new_object();
        json_object_object_add(o, k, c);
    }
    return c;
}

static int
array_has(json_object *a, const char *s)
{
    for (size_t i = 0; a != NULL && i < json_object_array_length(a); i++)
        if (strcmp(json_object_get_string(json_object_array_get_idx(a, i)), s) == 0)
            return 1;
    return 0;
}

static void
array_remove(json_object *a, const char *s)
{
    for (size_t i = 0; a != NULL && i < json_object_array_length(a);) {
        if (strcmp(json_object_get_string(json_object_array_get_idx(a, i)), s) == 0)
            json_object_array_del_idx(a, i, 1);
        else
            i++;
    }
}

/* ---- containerd's default spec (oci/spec.go populateDefaultUnixSpec, minus /run as CRI does) ------- */

static const char *const default_caps[] = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
    NULL,
};

/* Every capability by number (linux/capability.h); the kernel's last one bounds the list, as
 * containerd's cap.Current() does for privileged containers and "ALL". */
static const char *const all_cap_names[] = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};

static int
last_cap(void)
{
    int n = (int)(sizeof(all_cap_names) / sizeof(all_cap_names[0])) - 1, v = -1;
    FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "r");
    if (f != NULL) {
        if (fscanf(f, "%d", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v >= 0 && v < n ? v : n;
}

static const char *const masked_paths[] = {
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
    NULL,
};
static const char *const readonly_paths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
};

static json_object *
mount_obj(const char *dst, const char *type, const char *src, const char *const *opts)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "destination", jstr(dst));
    json_object_object_add(m, "type", jstr(type));
    json_object_object_add(m, "source", jstr(src));
    json_object_object_add(m, "options", strv_array(opts));
    return m;
}

static json_object *
default_mounts(void)
{
    json_object *a = json_object_new_array();
    json_object_array_add(
        a, mount_obj("/proc", "proc", "proc", (const char *[]){"nosuid", "noexec", "nodev", NULL}));
    json_object_array_add(
        a, mount_obj("/dev", "tmpfs", "tmpfs",
                     (const char *[]){"nosuid", "strictatime", "mode=755", "size=65536k", NULL}));
    json_object_array_add(a,
                          mount_obj("/dev/pts", "devpts", "devpts",
                                    (const char *[]){"nosuid", "noexec", "newinstance",
                                                     "ptmxmode=0666", "mode=0620", "gid=5", NULL}));
    json_object_array_add(a, mount_obj("/dev/shm", "tmpfs", "shm",
                                       (const char *[]){"nosuid", "noexec", "nodev", "mode=1777",
                                                        "size=65536k", NULL}));
    json_object_array_add(a, mount_obj("/dev/mqueue", "mqueue", "mqueue",
                                       (const char *[]){"nosuid", "noexec", "nodev", NULL}));
    json_object_array_add(a, mount_obj("/sys", "sysfs", "sysfs",
                                       (const char *[]){"nosuid", "noexec", "nodev", "ro", NULL}));
    return a;
}

static json_object *
namespace_obj(const char *type, const char *path)
{
    json_object *n = json_object_new_object();
    json_object_object_add(n, "type", jstr(type));
    if (path != NULL && *path)
        json_object_object_add(n, "path", jstr(path));
    return n;
}

static json_object *
default_spec(const char *id, const char *cgroup_path)
{
    json_object *s = json_object_new_object();
    json_object_object_add(s, "ociVersion", jstr("1.0.2-dev"));
    json_object *proc = child(s, "process");
    json_object *user = child(proc, "user");
    json_object_object_add(user, "uid", json_object_new_int(0));
    json_object_object_add(user, "gid", json_object_new_int(0));
    json_object_object_add(proc, "args", json_object_new_array());
    json_object_object_add(proc, "env", json_object_new_array());
    json_object_object_add(proc, "cwd", jstr("/"));
    json_object *caps = child(proc, "capabilities");
    json_object_object_add(caps, "bounding", strv_array(default_caps));
    json_object_object_add(caps, "effective", strv_array(default_caps));
    json_object_object_add(caps, "permitted", strv_array(default_caps));
    json_object_object_add(proc, "noNewPrivileges", json_object_new_boolean(1));
    json_object *root = child(s, "root");
    json_object_object_add(root, "path", jstr("rootfs"));
    json_object_object_add(s, "mounts", default_mounts());
    json_object *lin = child(s, "linux");
    json_object *res = child(lin, "resources");
    json_object *devs = json_object_new_array();
    json_object *deny = json_object_new_object();
    json_object_object_add(deny, "allow", json_object_new_boolean(0));
    json_object_object_add(deny, "access", jstr("rwm"));
    json_object_array_add(devs, deny);
    json_object_object_add(res, "devices", devs);
    char cg[PATH_MAX];
    if (cgroup_path != NULL && *cgroup_path)
        snprintf(cg, sizeof(cg), "%s", cgroup_path);
    else
        snprintf(cg, sizeof(cg), "/%s/%s", CRI_NAMESPACE, id);
    json_object_object_add(lin, "cgroupsPath", jstr(cg));
    json_object *ns = json_object_new_array();
    const char *types[] = {"pid", "ipc", "uts", "mount", "network"};
    for (size_t i = 0; i < 5; i++)
        json_object_array_add(ns, namespace_obj(types[i], NULL));
    json_object_object_add(lin, "namespaces", ns);
    json_object_object_add(lin, "maskedPaths", strv_array(masked_paths));
    json_object_object_add(lin, "readonlyPaths", strv_array(readonly_paths));
    return s;
}

static void
remove_namespace(json_object *s, const char *type)
{
    json_object *ns = json_object_object_get(json_object_object_get(s, "linux"), "namespaces");
    for (size_t i = 0; ns != NULL && i < json_object_array_length(ns);) {
        json_object *t = json_object_object_get(json_object_array_get_idx(ns, i), "type");
        if (strcmp(json_object_get_string(t), type) == 0)
            json_object_array_del_idx(ns, i, 1);
        else
            i++;
    }
}

static void
set_namespace(json_object *s, const char *type, const char *path)
{
    remove_namespace(s, type);
    json_object *ns = json_object_object_get(json_object_object_get(s, "linux"), "namespaces");
    json_object_array_add(ns, namespace_obj(type, path));
}

static void
remove_mount(json_object *s, const char *dst)
{
    json_object *ms = json_object_object_get(s, "mounts");
    for (size_t i = 0; i < json_object_array_length(ms);) {
        json_object *d = json_object_object_get(json_object_array_get_idx(ms, i), "destination");
        if (strcmp(json_object_get_string(d), dst) == 0)
            json_object_array_del_idx(ms, i, 1);
        else
            i++;
    }
}

static void
add_annotation(json_object *s, const char *k, const char *v)
{
    json_object_object_add(child(s, "annotations"), k, jstr(v));
}

/* oci.WithEnv: a later value of a name replaces the earlier one in its place. */
static void
env_set(json_object *env, const char *kv)
{
    const char *eq = strchr(kv, '=');
    size_t n = eq != NULL ? (size_t)(eq - kv) : strlen(kv);
    for (size_t i = 0; i < json_object_array_length(env); i++) {
        const char *e = json_object_get_string(json_object_array_get_idx(env, i));
        if (strncmp(e, kv, n) == 0 && (e[n] == '=' || e[n] == '\0')) {
            json_object_array_put_idx(env, i, jstr(kv));
            return;
        }
    }
    json_object_array_add(env, jstr(kv));
}

/* ---- users: the rootfs's /etc/passwd and /etc/group (containerd's oci.WithUser) --------------------- */

typedef struct pw_entry {
    char name[256];
    long uid, gid;
    int found;
} pw_entry_t;

/* Finds in a passwd-format file the entry whose name is `name` (or, name NULL, whose id is `id`). */
static int
passwd_find(const char *path, const char *name, long id, pw_entry_t *out)
{
    memset(out, 0, sizeof(*out));
    FILE *f = path != NULL ? fopen(path, "r") : NULL;
    if (f == NULL)
        return 0;
    char line[4096];
    while (fgets(line, sizeof(line), f) != NULL) {
        char *save = NULL, *fields[4] = {0};
        char *p = line;
        int n = 0;
        /* strsep keeps empty fields (a passwd line may have an empty password) */
        while (n < 4 && (fields[n] = strsep(&p, ":\n")) != NULL)
            n++;
        (void)save;
        if (n < 4 || fields[0][0] == '\0')
            continue;
        char *end;
        long uid = strtol(fields[2], &end, 10);
        if (*end != '\0')
            continue;
        long gid = strtol(fields[3], &end, 10);
        if (*end != '\0')
            gid = 0;
        if ((name != NULL && strcmp(fields[0], name) == 0) || (name == NULL && uid == id)) {
            snprintf(out->name, sizeof(out->name), "%s", fields[0]);
            out->uid = uid;
            out->gid = gid;
            out->found = 1;
            break;
        }
    }
    fclose(f);
    return out->found;
}

/* The gids of the groups listing `user` as a member; the group named `group` (if any) as *named. */
static size_t
group_scan(const char *path, const char *user, const char *group, long *named, long *gids,
           size_t max)
{
    size_t n = 0;
    FILE *f = path != NULL ? fopen(path, "r") : NULL;
    if (f == NULL)
        return 0;
    char line[8192];
    while (fgets(line, sizeof(line), f) != NULL) {
        char *p = line, *fields[4] = {0};
        int k = 0;
        while (k < 4 && (fields[k] = strsep(&p, ":\n")) != NULL)
            k++;
        if (k < 3)
            continue;
        char *end;
        long gid = strtol(fields[2], &end, 10);
        if (*end != '\0' || end == fields[2])
            continue;
        if (group != NULL && named != NULL && strcmp(fields[0], group) == 0)
            *named = gid;
        if (user == NULL || k < 4 || fields[3] == NULL)
            continue;
        char *members = fields[3], *m;
        while ((m = strsep(&members, ",")) != NULL)
            if (strcmp(m, user) == 0 && n < max) {
                gids[n++] = gid;
                break;
            }
    }
    fclose(f);
    return n;
}

static int
is_number(const char *s)
{
    if (s == NULL || *s == '\0')
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* oci.WithUser(userstr): "user", "uid", "user:group", "uid:gid" (names resolved in the rootfs). Sets
 * process.user uid/gid; *name gets the user's name when known (for the additional gids). */
static int
resolve_user(const char *userstr, const char *passwd, const char *group, long *uid, long *gid,
             char *name, size_t name_len, char *why, size_t why_len)
{
    char u[512], *g;
    snprintf(u, sizeof(u), "%s", userstr);
    g = strchr(u, ':');
    if (g != NULL)
        *g++ = '\0';
    pw_entry_t pw;
    name[0] = '\0';
    if (is_number(u)) {
        *uid = strtol(u, NULL, 10);
        *gid = 0;
        if (passwd_find(passwd, NULL, *uid, &pw)) {
            *gid = pw.gid;
            snprintf(name, name_len, "%s", pw.name);
        }
    } else if (u[0] != '\0') {
        if (!passwd_find(passwd, u, 0, &pw))
            return fail(why, why_len, BERTH_EINVAL,
                        "user \"%s\": no such user in the image's /etc/passwd", u);
        *uid = pw.uid;
        *gid = pw.gid;
        snprintf(name, name_len, "%s", pw.name);
    }
    if (g != NULL && *g) {
        if (is_number(g)) {
            *gid = strtol(g, NULL, 10);
        } else {
            long named = -1;
            group_scan(group, NULL, g, &named, NULL, 0);
            if (named < 0)
                return fail(why, why_len, BERTH_EINVAL,
                            "group \"%s\": no such group in the image's /etc/group", g);
            *gid = named;
        }
    }
    return 0;
}

static int
cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

/* mergeGids: the union, sorted, each once. */
static void
set_additional_gids(json_object *user, long *gids, size_t n)
{
    if (n == 0)
        return;
    qsort(gids, n, sizeof(long), cmp_long);
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        if (i == 0 || gids[i] != gids[i - 1])
            json_object_array_add(a, json_object_new_int64(gids[i]));
    json_object_object_add(user, "additionalGids", a);
}

/* ---- seccomp (pkg/cri/server helpers: GenerateSeccompSpecOpts) --------------------------------------- */

static int
apply_seccomp(json_object *s, const Runtime__V1__SecurityProfile *sp, const char *legacy,
              int privileged, const char *profile_root, char *why, size_t why_len)
{
    if (privileged)
        return 0; /* a privileged process is never confined by seccomp */
    enum { NONE, DEFAULT, LOCAL } kind = NONE;
    const char *path = NULL;
    if (sp != NULL) {
        switch (sp->profile_type) {
        case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault:
            kind = DEFAULT;
            break;
        case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost:
            kind = LOCAL;
            path = sp->localhost_ref;
            break;
        default:
            kind = NONE;
        }
    } else if (legacy != NULL && *legacy) {
        if (strcmp(legacy, "runtime/default") == 0 || strcmp(legacy, "docker/default") == 0)
            kind = DEFAULT;
        else if (strncmp(legacy, "localhost/", 10) == 0) {
            kind = LOCAL;
            path = legacy + 10;
        } else if (strcmp(legacy, "unconfined") != 0)
            return fail(why, why_len, BERTH_EINVAL, "unsupported seccomp profile \"%s\"", legacy);
    }
    json_object *prof = NULL;
    if (kind == DEFAULT) {
        json_object *bounding = json_object_object_get(
            json_object_object_get(json_object_object_get(s, "process"), "capabilities"),
            "bounding");
        size_t n = bounding != NULL ? json_object_array_length(bounding) : 0;
        const char **caps = calloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
            caps[i] = json_object_get_string(json_object_array_get_idx(bounding, i));
        prof = cri_seccomp_default(caps);
        free(caps);
    } else if (kind == LOCAL) {
        if (path == NULL || *path == '\0')
            return fail(why, why_len, BERTH_EINVAL, "seccomp: a Localhost profile needs a path");
        char full[PATH_MAX];
        if (path[0] != '/' && profile_root != NULL && *profile_root)
            snprintf(full, sizeof(full), "%s/%s", profile_root, path);
        else
            snprintf(full, sizeof(full), "%s", path);
        int rc = cri_seccomp_localhost(full, &prof, why, why_len);
        if (rc < 0)
            return rc;
    }
    if (prof != NULL)
        json_object_object_add(child(s, "linux"), "seccomp", prof);
    return 0;
}

/* The deprecated seccomp_profile_path field, still sent by older kubelets. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static const char *
legacy_seccomp_sandbox(const Runtime__V1__LinuxSandboxSecurityContext *sc)
{
    return sc != NULL ? sc->seccomp_profile_path : NULL;
}

static const char *
legacy_seccomp_container(const Runtime__V1__LinuxContainerSecurityContext *sc)
{
    return sc != NULL ? sc->seccomp_profile_path : NULL;
}
#pragma GCC diagnostic pop

/* containerd's restrict_oom_score_adj, applied when it must be: a process without CAP_SYS_RESOURCE
 * cannot lower its oom_score_adj (runc's init fails on EACCES), so nothing goes below berthd's own. */
static int
oom_score_adj(int want)
{
    int cur = 0, can_lower = 1;
    FILE *f = fopen("/proc/self/oom_score_adj", "r");
    if (f != NULL) {
        if (fscanf(f, "%d", &cur) != 1)
            cur = 0;
        fclose(f);
    }
    f = fopen("/proc/self/status", "r");
    char line[256];
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        unsigned long long eff;
        if (sscanf(line, "CapEff: %llx", &eff) == 1)
            can_lower = (eff >> 24) & 1; /* CAP_SYS_RESOURCE */
    }
    if (f != NULL)
        fclose(f);
    return !can_lower && want < cur ? cur : want;
}

/* ---- the sandbox ------------------------------------------------------------------------------------ */

static const char *
meta_str(const char *s)
{
    return s != NULL ? s : "";
}

static char *
finish(json_object *s, char **json)
{
    *json = strdup(json_object_to_json_string_ext(s, JSON_C_TO_STRING_PLAIN));
    json_object_put(s);
    return *json;
}

static void
set_sysctls(json_object *s, const Runtime__V1__LinuxPodSandboxConfig *l)
{
    if (l == NULL || l->n_sysctls == 0)
        return;
    json_object *sc = child(child(s, "linux"), "sysctl");
    for (size_t i = 0; i < l->n_sysctls; i++)
        json_object_object_add(sc, l->sysctls[i]->key, jstr(l->sysctls[i]->value));
}

static void
add_i64_annotation(json_object *s, const char *k, int64_t v)
{
    char b[32];
    snprintf(b, sizeof(b), "%lld", (long long)v);
    add_annotation(s, k, b);
}

int
cri_spec_sandbox(const Runtime__V1__PodSandboxConfig *cfg, const cri_sandbox_spec_opts_t *o,
                 char **json, char *why, size_t why_len)
{
    *json = NULL;
    const Runtime__V1__LinuxPodSandboxConfig *l = cfg->linux;
    const Runtime__V1__LinuxSandboxSecurityContext *sc = l != NULL ? l->security_context : NULL;
    const Runtime__V1__NamespaceOption *nso = sc != NULL ? sc->namespace_options : NULL;
    json_object *s = default_spec(o->id, o->cgroup_path);
    json_object *proc = json_object_object_get(s, "process");

    json_object_array_add(
        json_object_object_get(proc, "args"),
        jstr(o->pause_argv0 != NULL && *o->pause_argv0 ? o->pause_argv0 : "/pause"));
    json_object_array_add(json_object_object_get(proc, "env"), jstr(DEFAULT_PATH_ENV));
    json_object_object_add(json_object_object_get(s, "root"), "readonly",
                           json_object_new_boolean(1));
    int host_net = nso != NULL && nso->network == RUNTIME__V1__NAMESPACE_MODE__NODE;
    /* kubelet sends no hostname for host-network pods; runc refuses one without a UTS namespace */
    if (cfg->hostname != NULL && *cfg->hostname && !host_net)
        json_object_object_add(s, "hostname", jstr(cfg->hostname));
    int host_ipc = nso != NULL && nso->ipc == RUNTIME__V1__NAMESPACE_MODE__NODE;
    if (host_net) {
        remove_namespace(s, "network");
        remove_namespace(s, "uts");
    } else if (o->netns_path != NULL && *o->netns_path) {
        set_namespace(s, "network", o->netns_path);
    }
    if (nso != NULL && nso->pid == RUNTIME__V1__NAMESPACE_MODE__NODE)
        remove_namespace(s, "pid");
    if (host_ipc)
        remove_namespace(s, "ipc");

    /* the pod's /dev/shm (the host's with host IPC) and resolv.conf, read-only for the pause process */
    json_object *ms = json_object_object_get(s, "mounts");
    const char *shm = host_ipc ? "/dev/shm" : o->shm_path;
    if (shm != NULL && *shm) {
        remove_mount(s, "/dev/shm"); /* without a pod shm the default tmpfs stays */
        json_object_array_add(
            ms, mount_obj("/dev/shm", "bind", shm,
                          (const char *[]){"rbind", "ro", "nosuid", "nodev", "noexec", NULL}));
    }
    if (o->resolv_path != NULL && *o->resolv_path)
        json_object_array_add(
            ms, mount_obj("/etc/resolv.conf", "bind", o->resolv_path,
                          (const char *[]){"rbind", "ro", "nosuid", "nodev", "noexec", NULL}));

    if (sc != NULL && sc->n_supplemental_groups > 0) {
        long *g = calloc(sc->n_supplemental_groups, sizeof(long));
        for (size_t i = 0; i < sc->n_supplemental_groups; i++)
            g[i] = (long)sc->supplemental_groups[i];
        set_additional_gids(json_object_object_get(proc, "user"), g, sc->n_supplemental_groups);
        free(g);
    }
    set_sysctls(s, l);

    json_object *cpu = child(child(child(s, "linux"), "resources"), "cpu");
    json_object_object_add(cpu, "shares", json_object_new_int64(SANDBOX_CPU_SHARES));
    json_object_object_add(proc, "oomScoreAdj",
                           json_object_new_int(oom_score_adj(SANDBOX_OOM_SCORE_ADJ)));

    if (l != NULL && l->resources != NULL) {
        add_i64_annotation(s, "io.kubernetes.cri.sandbox-cpu-period", l->resources->cpu_period);
        add_i64_annotation(s, "io.kubernetes.cri.sandbox-cpu-quota", l->resources->cpu_quota);
        add_i64_annotation(s, "io.kubernetes.cri.sandbox-cpu-shares", l->resources->cpu_shares);
        add_i64_annotation(s, "io.kubernetes.cri.sandbox-memory",
                           l->resources->memory_limit_in_bytes);
    }
    const Runtime__V1__PodSandboxMetadata *md = cfg->metadata;
    add_annotation(s, CRI_ANN_SANDBOX_ID, o->id);
    add_annotation(s, CRI_ANN_SANDBOX_NAMESPACE, md != NULL ? meta_str(md->namespace_) : "");
    add_annotation(s, CRI_ANN_SANDBOX_UID, md != NULL ? meta_str(md->uid) : "");
    add_annotation(s, CRI_ANN_SANDBOX_NAME, md != NULL ? meta_str(md->name) : "");
    add_annotation(s, CRI_ANN_SANDBOX_LOG_DIR, meta_str(cfg->log_directory));
    add_annotation(s, "io.kubernetes.cri.sandbox-image-name",
                   o->image_name != NULL ? o->image_name : "");
    add_annotation(s, CRI_ANN_CONTAINER_TYPE, "sandbox");

    /* sandboxContainerSpecOpts: seccomp, then the user */
    int rc = apply_seccomp(s, sc != NULL ? sc->seccomp : NULL, legacy_seccomp_sandbox(sc),
                           sc != NULL && sc->privileged, o->seccomp_profile_root, why, why_len);
    if (rc < 0) {
        json_object_put(s);
        return rc;
    }
    if (sc != NULL && sc->run_as_user == NULL && sc->run_as_group != NULL) {
        json_object_put(s);
        return fail(why, why_len, BERTH_EINVAL, "user group \"%lld\" is specified without user",
                    (long long)sc->run_as_group->value);
    }
    if (sc != NULL && sc->run_as_user != NULL) {
        json_object *u = json_object_object_get(proc, "user");
        json_object_object_add(u, "uid", json_object_new_int64(sc->run_as_user->value));
        json_object_object_add(
            u, "gid",
            json_object_new_int64(sc->run_as_group != NULL ? sc->run_as_group->value : 0));
    }
    finish(s, json);
    return 0;
}

/* ---- the container ---------------------------------------------------------------------------------- */

/* WithProcessArgs (moby's merge): the config's command replaces the entrypoint, its args the cmd. */
static int
process_args(json_object *proc, const Runtime__V1__ContainerConfig *cfg,
             const cri_image_config_t *img, char *why, size_t why_len)
{
    json_object *args = json_object_object_get(proc, "args");
    char *const *command = cfg->command, *const *cargs = cfg->args;
    size_t n_command = cfg->n_command, n_args = cfg->n_args;
    const char *const *ep = NULL, *const *cmd = NULL;
    if (n_command == 0) {
        if (n_args == 0 && img != NULL)
            cmd = (const char *const *)img->cmd;
        /* an entrypoint of one empty string means none (docker's ENTRYPOINT [""]) */
        if (img != NULL && img->entrypoint != NULL &&
            !(img->entrypoint[0] != NULL && img->entrypoint[1] == NULL &&
              img->entrypoint[0][0] == '\0'))
            ep = (const char *const *)img->entrypoint;
    }
    for (size_t i = 0; i < n_command; i++)
        json_object_array_add(args, jstr(command[i]));
    for (size_t i = 0; ep != NULL && ep[i] != NULL; i++)
        json_object_array_add(args, jstr(ep[i]));
    for (size_t i = 0; i < n_args; i++)
        json_object_array_add(args, jstr(cargs[i]));
    for (size_t i = 0; cmd != NULL && cmd[i] != NULL; i++)
        json_object_array_add(args, jstr(cmd[i]));
    if (json_object_array_length(args) == 0)
        return fail(why, why_len, BERTH_EINVAL, "no command specified");
    return 0;
}

/* path.Clean's part count, the sort key of orderedMounts */
static int
path_parts(const char *p)
{
    int n = 0;
    for (const char *q = p; *q; q++)
        if (*q == '/' && q[1] != '\0' && q[1] != '/')
            n++;
    if (p[0] != '/' && p[0] != '\0')
        n++;
    return n;
}

static void
clean_path(const char *in, char *out, size_t len)
{
    size_t o = 0;
    for (const char *p = in; *p && o + 1 < len; p++) {
        if (*p == '/' && o > 0 && out[o - 1] == '/')
            continue;
        out[o++] = *p;
    }
    while (o > 1 && out[o - 1] == '/')
        o--;
    out[o] = '\0';
}

/* The mount (from /proc/self/mountinfo) under which path lives: its optional fields. */
static int
mount_propagation(const char *path, char *opt, size_t opt_len, char *mnt, size_t mnt_len)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (f == NULL)
        return -1;
    char line[8192];
    size_t best = 0;
    int found = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        char mp[4096], rest[4096];
        /* id parent major:minor root mountpoint options optional... - type source superopts */
        if (sscanf(line, "%*s %*s %*s %*s %4095s %*s %4095[^\n]", mp, rest) != 2)
            continue;
        size_t n = strlen(mp);
        int under = strcmp(mp, "/") == 0 ||
                    (strncmp(path, mp, n) == 0 && (path[n] == '/' || path[n] == '\0'));
        if (!under || (found && n < best))
            continue;
        best = n;
        found = 1;
        char *dash = strstr(rest, " - ");
        if (dash != NULL)
            *dash = '\0';
        snprintf(opt, opt_len, "%s", rest);
        snprintf(mnt, mnt_len, "%s", mp);
    }
    fclose(f);
    return found ? 0 : -1;
}

typedef struct cmount {
    const char *container_path, *host_path;
    int readonly;
    Runtime__V1__MountPropagation propagation;
    int idx;
} cmount_t;

static int
cmount_cmp(const void *a, const void *b)
{
    const cmount_t *x = a, *y = b;
    int d = path_parts(x->container_path) - path_parts(y->container_path);
    return d != 0 ? d : x->idx - y->idx; /* stable */
}

static int
add_bind(json_object *s, const cmount_t *m, char *why, size_t why_len)
{
    struct stat st;
    if (stat(m->host_path, &st) < 0) {
        if (errno != ENOENT)
            return fail(why, why_len, BERTH_EIO, "failed to stat \"%s\": %s", m->host_path,
                        strerror(errno));
        /* containerd creates a missing host path as a directory */
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof(tmp), "%s", m->host_path);
        for (char *p = tmp + 1; *p; p++)
            if (*p == '/') {
                *p = '\0';
                mkdir(tmp, 0755);
                *p = '/';
            }
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return fail(why, why_len, BERTH_EIO, "failed to mkdir \"%s\": %s", m->host_path,
                        strerror(errno));
    }
    char src[PATH_MAX];
    if (realpath(m->host_path, src) == NULL)
        return fail(why, why_len, BERTH_EIO, "failed to resolve symlink \"%s\": %s", m->host_path,
                    strerror(errno));
    json_object *lin = child(s, "linux");
    const char *rp = json_object_get_string(json_object_object_get(lin, "rootfsPropagation"));
    const char *prop = "rprivate";
    if (m->propagation == RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL ||
        m->propagation == RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER) {
        char opt[4096] = "", mnt[4096] = "";
        int bidi = m->propagation == RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL;
        if (mount_propagation(src, opt, sizeof(opt), mnt, sizeof(mnt)) == 0) {
            int shared = strstr(opt, "shared:") != NULL, slave = strstr(opt, "master:") != NULL;
            if (bidi && !shared)
                return fail(why, why_len, BERTH_EINVAL,
                            "path \"%s\" is mounted on \"%s\" but it is not a shared mount", src,
                            mnt);
            if (!bidi && !shared && !slave)
                return fail(
                    why, why_len, BERTH_EINVAL,
                    "path \"%s\" is mounted on \"%s\" but it is not a shared or slave mount", src,
                    mnt);
        }
        if (bidi) {
            prop = "rshared";
            json_object_object_add(lin, "rootfsPropagation", jstr("rshared"));
        } else {
            prop = "rslave";
            if (rp == NULL || (strcmp(rp, "rshared") != 0 && strcmp(rp, "rslave") != 0))
                json_object_object_add(lin, "rootfsPropagation", jstr("rslave"));
        }
    }
    json_object_array_add(
        json_object_object_get(s, "mounts"),
        mount_obj(m->container_path, "bind", src,
                  (const char *[]){"rbind", prop, m->readonly ? "ro" : "rw", NULL}));
    return 0;
}

static int
in_cri_mounts(const Runtime__V1__ContainerConfig *cfg, const char *dst)
{
    char a[PATH_MAX], b[PATH_MAX];
    clean_path(dst, a, sizeof(a));
    for (size_t i = 0; i < cfg->n_mounts; i++) {
        clean_path(cfg->mounts[i]->container_path, b, sizeof(b));
        if (strcmp(a, b) == 0)
            return 1;
    }
    return 0;
}

static int
exists(const char *p)
{
    struct stat st;
    return p != NULL && *p && stat(p, &st) == 0;
}

/* WithMounts: the cgroup mount, the defaults not overridden, then the CRI and the sandbox's mounts
 * sorted by depth. */
static int
container_mounts(json_object *s, const Runtime__V1__ContainerConfig *cfg, const cri_sandbox_t *sb,
                 const cri_container_spec_opts_t *o, int readonly_rootfs, int host_ipc, char *why,
                 size_t why_len)
{
    json_object *ms = json_object_object_get(s, "mounts");
    json_object_array_add(
        ms, mount_obj("/sys/fs/cgroup", "cgroup", "cgroup",
                      (const char *[]){"nosuid", "noexec", "nodev", "relatime", "ro", NULL}));
    size_t cap = cfg->n_mounts + 4, n = 0;
    cmount_t *all = calloc(cap, sizeof(*all));
    for (size_t i = 0; i < cfg->n_mounts; i++) {
        Runtime__V1__Mount *m = cfg->mounts[i];
        all[n] = (cmount_t){m->container_path, m->host_path, m->readonly, m->propagation, (int)n};
        n++;
    }
    struct {
        const char *dst, *src;
        int ro;
    } extra[] = {
        {"/etc/hostname", sb != NULL ? sb->hostname_path : NULL, readonly_rootfs},
        {"/etc/hosts", sb != NULL ? sb->hosts_path : NULL, readonly_rootfs},
        {"/etc/resolv.conf", sb != NULL ? sb->resolv_path : NULL, readonly_rootfs},
        {"/dev/shm", host_ipc ? "/dev/shm" : o->shm_path, 0},
    };
    for (size_t i = 0; i < 4; i++)
        if (!in_cri_mounts(cfg, extra[i].dst) && exists(extra[i].src)) {
            all[n] = (cmount_t){extra[i].dst, extra[i].src, extra[i].ro,
                                RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE, (int)n};
            n++;
        }
    qsort(all, n, sizeof(*all), cmount_cmp);

    /* defaults overridden by a supplied mount (or anything under a supplied /dev) go */
    int dev = 0;
    for (size_t i = 0; i < n; i++) {
        char c[PATH_MAX];
        clean_path(all[i].container_path, c, sizeof(c));
        if (strcmp(c, "/dev") == 0)
            dev = 1;
    }
    for (size_t i = 0; i < json_object_array_length(ms);) {
        const char *d = json_object_get_string(
            json_object_object_get(json_object_array_get_idx(ms, i), "destination"));
        int drop = (dev && strncmp(d, "/dev/", 5) == 0);
        for (size_t j = 0; j < n && !drop; j++) {
            char c[PATH_MAX];
            clean_path(all[j].container_path, c, sizeof(c));
            drop = strcmp(c, d) == 0;
        }
        if (drop)
            json_object_array_del_idx(ms, i, 1);
        else
            i++;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = add_bind(s, &all[i], why, why_len);
    free(all);
    return rc;
}

static int
add_device(json_object *s, const char *host, const char *ctr, const char *perms, char *why,
           size_t why_len)
{
    char real[PATH_MAX];
    struct stat st;
    if (realpath(host, real) == NULL || stat(real, &st) < 0)
        return fail(why, why_len, BERTH_EINVAL, "device \"%s\": %s", host, strerror(errno));
    const char *type;
    if (S_ISCHR(st.st_mode))
        type = "c";
    else if (S_ISBLK(st.st_mode))
        type = "b";
    else
        return fail(why, why_len, BERTH_EINVAL, "\"%s\" is not a device node", host);
    json_object *lin = child(s, "linux");
    json_object *devs = json_object_object_get(lin, "devices");
    if (devs == NULL) {
        devs = json_object_new_array();
        json_object_object_add(lin, "devices", devs);
    }
    json_object *d = json_object_new_object();
    json_object_object_add(d, "path", jstr(ctr != NULL && *ctr ? ctr : host));
    json_object_object_add(d, "type", jstr(type));
    json_object_object_add(d, "major", json_object_new_int64(major(st.st_rdev)));
    json_object_object_add(d, "minor", json_object_new_int64(minor(st.st_rdev)));
    json_object_object_add(d, "fileMode", json_object_new_int(st.st_mode & 07777));
    json_object_object_add(d, "uid", json_object_new_int64(st.st_uid));
    json_object_object_add(d, "gid", json_object_new_int64(st.st_gid));
    json_object_array_add(devs, d);
    json_object *rule = json_object_new_object();
    json_object_object_add(rule, "allow", json_object_new_boolean(1));
    json_object_object_add(rule, "type", jstr(type));
    json_object_object_add(rule, "major", json_object_new_int64(major(st.st_rdev)));
    json_object_object_add(rule, "minor", json_object_new_int64(minor(st.st_rdev)));
    json_object_object_add(rule, "access", jstr(perms != NULL && *perms ? perms : "rwm"));
    json_object_array_add(json_object_object_get(child(lin, "resources"), "devices"), rule);
    return 0;
}

/* oci.WithHostDevices: every device node under the host's /dev (not pts, shm, mqueue nor console). */
static void
add_host_devices(json_object *s, const char *dir)
{
    char cmd[PATH_MAX];
    snprintf(cmd, sizeof(cmd), "%s", dir);
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (strcmp(e->d_name, "pts") != 0 && strcmp(e->d_name, "shm") != 0 &&
                strcmp(e->d_name, "fd") != 0 && strcmp(e->d_name, "mqueue") != 0)
                add_host_devices(s, p);
            continue;
        }
        if ((S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) && strcmp(p, "/dev/console") != 0) {
            char why[8];
            add_device(s, p, p, "rwm", why, sizeof(why));
        }
    }
    closedir(d);
}

static void
set_caps(json_object *proc, json_object *(*make)(void *), void *u)
{
    json_object *caps = child(proc, "capabilities");
    const char *sets[] = {"bounding", "effective", "permitted"};
    for (size_t i = 0; i < 3; i++)
        json_object_object_add(caps, sets[i], make(u));
}

/* berthd's own effective capabilities (CapEff of /proc/self/status); all of them when unreadable */
static uint64_t
own_caps(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    unsigned long long eff = ~0ULL;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "CapEff: %llx", &eff) == 1)
            break;
    if (f)
        fclose(f);
    return eff;
}

/* "Every" capability is every one berthd holds, as containerd's cap.Current(): runc cannot give a
 * container what its caller lacks (a berthd without CAP_SYS_RESOURCE, say, under a restricted parent). */
static json_object *
make_all_caps(void *u)
{
    (void)u;
    json_object *a = json_object_new_array();
    int last = last_cap();
    uint64_t own = own_caps();
    for (int i = 0; i <= last; i++)
        if (i >= 64 || (own >> i) & 1)
            json_object_array_add(a, jstr(all_cap_names[i]));
    return a;
}

static json_object *
make_empty(void *u)
{
    (void)u;
    return json_object_new_array();
}

static void
cap_name(const char *c, char *out, size_t len)
{
    size_t o = snprintf(out, len, "%s", strncasecmp(c, "CAP_", 4) == 0 ? "" : "CAP_");
    for (; *c && o + 1 < len; c++)
        out[o++] = (char)toupper((unsigned char)*c);
    out[o] = '\0';
}

static void
apply_capabilities(json_object *proc, const Runtime__V1__Capability *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n_add_capabilities; i++)
        if (strcasecmp(c->add_capabilities[i], "ALL") == 0)
            set_caps(proc, make_all_caps, NULL);
    for (size_t i = 0; i < c->n_drop_capabilities; i++)
        if (strcasecmp(c->drop_capabilities[i], "ALL") == 0)
            set_caps(proc, make_empty, NULL);
    json_object *caps = child(proc, "capabilities");
    const char *sets[] = {"bounding", "effective", "permitted"};
    char name[64];
    for (size_t i = 0; i < c->n_add_capabilities; i++) {
        if (strcasecmp(c->add_capabilities[i], "ALL") == 0)
            continue;
        cap_name(c->add_capabilities[i], name, sizeof(name));
        for (size_t k = 0; k < 3; k++) {
            json_object *a = json_object_object_get(caps, sets[k]);
            if (!array_has(a, name))
                json_object_array_add(a, jstr(name));
        }
    }
    for (size_t i = 0; i < c->n_drop_capabilities; i++) {
        if (strcasecmp(c->drop_capabilities[i], "ALL") == 0)
            continue;
        cap_name(c->drop_capabilities[i], name, sizeof(name));
        for (size_t k = 0; k < 3; k++)
            array_remove(json_object_object_get(caps, sets[k]), name);
    }
}

static int
swap_controller(void)
{
    return access("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", F_OK) == 0 ||
           access("/sys/fs/cgroup/memory.swap.max", F_OK) == 0 ||
           access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
}

/* WithResources, shared with UpdateContainerResources (cri_spec_resources). */
static void
resources_into(json_object *res, const Runtime__V1__LinuxContainerResources *r)
{
    json_object *cpu = child(res, "cpu"), *mem = child(res, "memory");
    if (r->cpu_period != 0)
        json_object_object_add(cpu, "period", json_object_new_int64(r->cpu_period));
    if (r->cpu_quota != 0)
        json_object_object_add(cpu, "quota", json_object_new_int64(r->cpu_quota));
    if (r->cpu_shares != 0)
        json_object_object_add(cpu, "shares", json_object_new_int64(r->cpu_shares));
    if (r->cpuset_cpus != NULL && *r->cpuset_cpus)
        json_object_object_add(cpu, "cpus", jstr(r->cpuset_cpus));
    if (r->cpuset_mems != NULL && *r->cpuset_mems)
        json_object_object_add(cpu, "mems", jstr(r->cpuset_mems));
    int swap = swap_controller();
    if (r->memory_limit_in_bytes != 0) {
        json_object_object_add(mem, "limit", json_object_new_int64(r->memory_limit_in_bytes));
        if (r->memory_swap_limit_in_bytes == 0 && swap)
            json_object_object_add(mem, "swap", json_object_new_int64(r->memory_limit_in_bytes));
    }
    if (r->memory_swap_limit_in_bytes != 0 && swap)
        json_object_object_add(mem, "swap", json_object_new_int64(r->memory_swap_limit_in_bytes));
    if (r->n_hugepage_limits > 0) {
        json_object *h = json_object_new_array();
        for (size_t i = 0; i < r->n_hugepage_limits; i++) {
            json_object *e = json_object_new_object();
            json_object_object_add(e, "pageSize", jstr(r->hugepage_limits[i]->page_size));
            json_object_object_add(e, "limit",
                                   json_object_new_uint64(r->hugepage_limits[i]->limit));
            json_object_array_add(h, e);
        }
        json_object_object_add(res, "hugepageLimits", h);
    }
    if (r->n_unified > 0) {
        json_object *u = child(res, "unified");
        for (size_t i = 0; i < r->n_unified; i++)
            json_object_object_add(u, r->unified[i]->key, jstr(r->unified[i]->value));
    }
}

char *
cri_spec_resources(const Runtime__V1__LinuxContainerResources *r)
{
    json_object *res = json_object_new_object();
    if (r != NULL)
        resources_into(res, r);
    char *out = strdup(json_object_to_json_string_ext(res, JSON_C_TO_STRING_PLAIN));
    json_object_put(res);
    return out;
}

static void
privileged(json_object *s, json_object *proc)
{
    set_caps(proc, make_all_caps, NULL);
    json_object *lin = child(s, "linux");
    json_object_object_del(lin, "maskedPaths");
    json_object_object_del(lin, "readonlyPaths");
    json_object *ms = json_object_object_get(s, "mounts");
    for (size_t i = 0; i < json_object_array_length(ms); i++) {
        json_object *m = json_object_array_get_idx(ms, i);
        const char *d = json_object_get_string(json_object_object_get(m, "destination"));
        if (strcmp(d, "/sys") == 0 || strcmp(d, "/sys/fs/cgroup") == 0) {
            json_object *opts = json_object_object_get(m, "options");
            array_remove(opts, "ro");
            json_object_array_add(opts, jstr("rw"));
        }
    }
    json_object_object_del(lin, "seccomp");
    add_host_devices(s, "/dev");
    json_object *all = json_object_new_array(), *rule = json_object_new_object();
    json_object_object_add(rule, "allow", json_object_new_boolean(1));
    json_object_object_add(rule, "access", jstr("rwm"));
    json_object_array_add(all, rule);
    json_object_object_add(child(lin, "resources"), "devices", all);
}

static int
container_user(json_object *proc, const Runtime__V1__LinuxContainerSecurityContext *sc,
               const cri_image_config_t *img, const cri_container_spec_opts_t *o, char *why,
               size_t why_len)
{
    char userstr[512] = "";
    if (sc != NULL && sc->run_as_user != NULL)
        snprintf(userstr, sizeof(userstr), "%lld", (long long)sc->run_as_user->value);
    if (sc != NULL && sc->run_as_username != NULL && *sc->run_as_username)
        snprintf(userstr, sizeof(userstr), "%s", sc->run_as_username);
    if (userstr[0] == '\0' && sc != NULL && sc->run_as_group != NULL)
        return fail(why, why_len, BERTH_EINVAL, "user group \"%lld\" is specified without user",
                    (long long)sc->run_as_group->value);
    if (userstr[0] != '\0' && sc->run_as_group != NULL) {
        size_t n = strlen(userstr);
        snprintf(userstr + n, sizeof(userstr) - n, ":%lld", (long long)sc->run_as_group->value);
    }
    if (userstr[0] == '\0' && img != NULL && img->user != NULL)
        snprintf(userstr, sizeof(userstr), "%s", img->user);
    long uid = 0, gid = 0;
    char name[256] = "";
    if (userstr[0] != '\0') {
        int rc = resolve_user(userstr, o->rootfs_owner_passwd, o->rootfs_owner_group, &uid, &gid,
                              name, sizeof(name), why, why_len);
        if (rc < 0)
            return rc;
    } else {
        pw_entry_t pw;
        if (passwd_find(o->rootfs_owner_passwd, NULL, 0, &pw))
            snprintf(name, sizeof(name), "%s", pw.name);
    }
    json_object *u = child(proc, "user");
    json_object_object_add(u, "uid", json_object_new_int64(uid));
    json_object_object_add(u, "gid", json_object_new_int64(gid));
    /* WithAdditionalGIDs (the user's groups in /etc/group) merged with the supplemental groups */
    long gids[512];
    /* Strict: only the configured groups, none of /etc/group (containerd 2.x; Merge is the default) */
    int strict = sc != NULL &&
                 sc->supplemental_groups_policy == RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict;
    size_t n =
        name[0] && !strict ? group_scan(o->rootfs_owner_group, name, NULL, NULL, gids, 256) : 0;
    for (size_t i = 0; sc != NULL && i < sc->n_supplemental_groups && n < 512; i++)
        gids[n++] = (long)sc->supplemental_groups[i];
    set_additional_gids(u, gids, n);
    return 0;
}

static void
container_namespaces(json_object *s, const Runtime__V1__LinuxContainerSecurityContext *sc,
                     const cri_sandbox_t *sb, const cri_container_spec_opts_t *o)
{
    uint32_t pid = sb != NULL ? sb->pid : 0;
    char p[64];
    snprintf(p, sizeof(p), "/proc/%u/ns/net", pid);
    set_namespace(s, "network", p);
    snprintf(p, sizeof(p), "/proc/%u/ns/ipc", pid);
    set_namespace(s, "ipc", p);
    snprintf(p, sizeof(p), "/proc/%u/ns/uts", pid);
    set_namespace(s, "uts", p);
    const Runtime__V1__NamespaceOption *nso = sc != NULL ? sc->namespace_options : NULL;
    if (nso == NULL || nso->pid != RUNTIME__V1__NAMESPACE_MODE__CONTAINER) {
        uint32_t target =
            nso != NULL && nso->pid == RUNTIME__V1__NAMESPACE_MODE__TARGET ? o->target_pid : pid;
        snprintf(p, sizeof(p), "/proc/%u/ns/pid", target);
        set_namespace(s, "pid", p);
    }
}

static int
container_env(json_object *proc, const Runtime__V1__ContainerConfig *cfg,
              const Runtime__V1__PodSandboxConfig *sandbox, const cri_image_config_t *img)
{
    json_object *env = json_object_object_get(proc, "env");
    env_set(env, DEFAULT_PATH_ENV);
    char host[256] = "", kv[512];
    if (sandbox != NULL && sandbox->hostname != NULL && *sandbox->hostname)
        snprintf(host, sizeof(host), "%s", sandbox->hostname);
    else if (gethostname(host, sizeof(host)) < 0)
        return -1;
    snprintf(kv, sizeof(kv), "HOSTNAME=%s", host);
    env_set(env, kv);
    for (size_t i = 0; img != NULL && img->env != NULL && img->env[i] != NULL; i++)
        env_set(env, img->env[i]);
    for (size_t i = 0; i < cfg->n_envs; i++) {
        const Runtime__V1__KeyValue *e = cfg->envs[i];
        size_t kl = strlen(e->key), vl = e->value.len;
        char *b = malloc(kl + vl + 2);
        memcpy(b, e->key, kl);
        b[kl] = '=';
        if (vl)
            memcpy(b + kl + 1, e->value.data, vl);
        b[kl + 1 + vl] = '\0';
        env_set(env, b);
        free(b);
    }
    return 0;
}

int
cri_spec_container(const Runtime__V1__ContainerConfig *cfg,
                   const Runtime__V1__PodSandboxConfig *sandbox, const cri_image_config_t *img,
                   const cri_container_spec_opts_t *o, char **json, char *why, size_t why_len)
{
    *json = NULL;
    const Runtime__V1__LinuxContainerConfig *l = cfg->linux;
    const Runtime__V1__LinuxContainerSecurityContext *sc = l != NULL ? l->security_context : NULL;
    const Runtime__V1__NamespaceOption *nso = sc != NULL ? sc->namespace_options : NULL;
    int priv = sc != NULL && sc->privileged;
    if (priv) {
        const Runtime__V1__LinuxSandboxSecurityContext *ssc =
            sandbox != NULL && sandbox->linux != NULL ? sandbox->linux->security_context : NULL;
        if (ssc == NULL || !ssc->privileged)
            return fail(why, why_len, BERTH_EINVAL, "no privileged container allowed in sandbox");
    }
    json_object *s = default_spec(o->id, o->cgroup_path);
    json_object *proc = json_object_object_get(s, "process");
    int rc = process_args(proc, cfg, img, why, why_len);
    if (rc < 0)
        goto out;
    json_object_object_add(proc, "noNewPrivileges", json_object_new_boolean(0));
    const char *cwd = cfg->working_dir != NULL && *cfg->working_dir ? cfg->working_dir
                      : img != NULL && img->working_dir != NULL && *img->working_dir
                          ? img->working_dir
                          : "/";
    json_object_object_add(proc, "cwd", jstr(cwd));
    if (cfg->tty)
        json_object_object_add(proc, "terminal", json_object_new_boolean(1));
    if (container_env(proc, cfg, sandbox, img) < 0) {
        rc = fail(why, why_len, BERTH_EIO, "hostname: %s", strerror(errno));
        goto out;
    }
    int host_ipc = nso != NULL && nso->ipc == RUNTIME__V1__NAMESPACE_MODE__NODE;
    rc = container_mounts(s, cfg, o->sandbox, o, sc != NULL && sc->readonly_rootfs, host_ipc, why,
                          why_len);
    if (rc < 0)
        goto out;
    json_object *lin = child(s, "linux");
    /* containerd 1.6 keeps its default masked/readonly paths unless the config gives its own */
    if (sc != NULL && sc->n_masked_paths > 0) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < sc->n_masked_paths; i++)
            json_object_array_add(a, jstr(sc->masked_paths[i]));
        json_object_object_add(lin, "maskedPaths", a);
    }
    if (sc != NULL && sc->n_readonly_paths > 0) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < sc->n_readonly_paths; i++)
            json_object_array_add(a, jstr(sc->readonly_paths[i]));
        json_object_object_add(lin, "readonlyPaths", a);
    }
    for (size_t i = 0; i < cfg->n_devices; i++) {
        rc = add_device(s, cfg->devices[i]->host_path, cfg->devices[i]->container_path,
                        cfg->devices[i]->permissions, why, why_len);
        if (rc < 0)
            goto out;
    }
    apply_capabilities(proc, sc != NULL ? sc->capabilities : NULL);
    if (priv)
        privileged(s, proc);
    if (sc != NULL && sc->no_new_privs)
        json_object_object_add(proc, "noNewPrivileges", json_object_new_boolean(1));
    if (sc != NULL && sc->readonly_rootfs)
        json_object_object_add(json_object_object_get(s, "root"), "readonly",
                               json_object_new_boolean(1));
    if (l != NULL && l->resources != NULL) {
        resources_into(child(lin, "resources"), l->resources);
        json_object_object_add(
            proc, "oomScoreAdj",
            json_object_new_int(oom_score_adj((int)l->resources->oom_score_adj)));
    }
    container_namespaces(s, sc, o->sandbox, o);
    const Runtime__V1__PodSandboxMetadata *md = sandbox != NULL ? sandbox->metadata : NULL;
    add_annotation(s, CRI_ANN_SANDBOX_ID, o->sandbox != NULL ? o->sandbox->id : "");
    add_annotation(s, CRI_ANN_SANDBOX_NAMESPACE, md != NULL ? meta_str(md->namespace_) : "");
    add_annotation(s, CRI_ANN_SANDBOX_UID, md != NULL ? meta_str(md->uid) : "");
    add_annotation(s, CRI_ANN_SANDBOX_NAME, md != NULL ? meta_str(md->name) : "");
    add_annotation(s, CRI_ANN_CONTAINER_NAME,
                   cfg->metadata != NULL ? meta_str(cfg->metadata->name) : "");
    add_annotation(s, CRI_ANN_IMAGE_NAME, meta_str(o->image_name));
    add_annotation(s, CRI_ANN_CONTAINER_TYPE, "container");
    rc = container_user(proc, sc, img, o, why, why_len);
    if (rc < 0)
        goto out;
    rc = apply_seccomp(s, sc != NULL ? sc->seccomp : NULL, legacy_seccomp_container(sc), priv,
                       o->seccomp_profile_root, why, why_len);
    if (rc < 0)
        goto out;
    finish(s, json);
    return 0;
out:
    json_object_put(s);
    return rc;
}
