/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OCI runtime spec generation, pure (no daemon): containerd's default Linux spec (oci/spec.go
 * populateDefaultUnixSpec + WithDefaultUnixDevices, as `ctr run`), then the image's config (oci.WithImageConfig),
 * then berth_spec_opts_t (containerd's oci.With* options; docker's rules where containerd has none).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "image_internal.h"
#include "internal.h"

#define DEFAULT_PATH_ENV "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static const char *const default_caps[] = {
    "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
    "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
    "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL",    "CAP_AUDIT_WRITE"};

/* every capability by number (capability.h), as containerd's cap.Known() */
static const char *const known_caps[] = {"CAP_CHOWN",
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
                                         "CAP_CHECKPOINT_RESTORE"};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *const masked_paths[] = {
    "/proc/acpi",          "/proc/asound",     "/proc/kcore",       "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/sys/firmware",       "/proc/scsi"};
static const char *const readonly_paths[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                             "/proc/sysrq-trigger"};

/* ---- json helpers ---- */

static json_object *
jstr(const char *s)
{
    return json_object_new_string(s ? s : "");
}

static json_object *
jstrs(const char *const *v, size_t n)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(a, jstr(v[i]));
    return a;
}

static json_object *
jget(json_object *o, const char *k)
{
    json_object *v = NULL;
    return o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

/* o[k], made an object when missing */
static json_object *
jobj(json_object *o, const char *k)
{
    json_object *v = jget(o, k);
    if (!v || !json_object_is_type(v, json_type_object)) {
        v = json_object_new_object();
        json_object_object_add(o, k, v);
    }
    return v;
}

static json_object *
mount_obj(const char *dst, const char *type, const char *src, const char *const *opts, size_t n)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "destination", jstr(dst));
    json_object_object_add(m, "type", jstr(type));
    json_object_object_add(m, "source", jstr(src));
    json_object_object_add(m, "options", jstrs(opts, n));
    return m;
}

static json_object *
default_mounts(void)
{
    static const char *const proc[] = {"nosuid", "noexec", "nodev"};
    static const char *const dev[] = {"nosuid", "strictatime", "mode=755", "size=65536k"};
    static const char *const pts[] = {"nosuid",        "noexec",    "newinstance",
                                      "ptmxmode=0666", "mode=0620", "gid=5"};
    static const char *const shm[] = {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"};
    static const char *const mq[] = {"nosuid", "noexec", "nodev"};
    static const char *const sys[] = {"nosuid", "noexec", "nodev", "ro"};
    static const char *const run[] = {"nosuid", "strictatime", "mode=755", "size=65536k"};
    json_object *a = json_object_new_array();
    json_object_array_add(a, mount_obj("/proc", "proc", "proc", proc, N(proc)));
    json_object_array_add(a, mount_obj("/dev", "tmpfs", "tmpfs", dev, N(dev)));
    json_object_array_add(a, mount_obj("/dev/pts", "devpts", "devpts", pts, N(pts)));
    json_object_array_add(a, mount_obj("/dev/shm", "tmpfs", "shm", shm, N(shm)));
    json_object_array_add(a, mount_obj("/dev/mqueue", "mqueue", "mqueue", mq, N(mq)));
    json_object_array_add(a, mount_obj("/sys", "sysfs", "sysfs", sys, N(sys)));
    json_object_array_add(a, mount_obj("/run", "tmpfs", "tmpfs", run, N(run)));
    return a;
}

static json_object *
device_rule(int allow, const char *type, int major, int minor)
{
    json_object *d = json_object_new_object();
    json_object_object_add(d, "allow", json_object_new_boolean(allow));
    if (type)
        json_object_object_add(d, "type", jstr(type));
    if (major >= 0)
        json_object_object_add(d, "major", json_object_new_int64(major));
    if (minor >= 0)
        json_object_object_add(d, "minor", json_object_new_int64(minor));
    json_object_object_add(d, "access", jstr("rwm"));
    return d;
}

/* the device cgroup: deny all, then WithDefaultUnixDevices' null, zero, full, tty, random, urandom,
 * console, pts, ptmx */
static json_object *
default_devices(void)
{
    static const int dev[][2] = {{1, 3}, {1, 8}, {1, 7},    {5, 0}, {1, 5},
                                 {1, 9}, {5, 1}, {136, -1}, {5, 2}};
    json_object *a = json_object_new_array();
    json_object_array_add(a, device_rule(0, NULL, -1, -1));
    for (size_t i = 0; i < N(dev); i++)
        json_object_array_add(a, device_rule(1, "c", dev[i][0], dev[i][1]));
    return a;
}

static json_object *
default_spec(const char *ns, const char *id)
{
    json_object *s = json_object_new_object();
    json_object_object_add(s, "ociVersion", jstr("1.1.0"));
    json_object *root = json_object_new_object();
    json_object_object_add(root, "path", jstr("rootfs"));
    json_object_object_add(s, "root", root);

    json_object *p = json_object_new_object();
    json_object *user = json_object_new_object();
    json_object_object_add(user, "uid", json_object_new_int64(0));
    json_object_object_add(user, "gid", json_object_new_int64(0));
    json_object_object_add(p, "user", user);
    json_object_object_add(p, "cwd", jstr("/"));
    json_object_object_add(p, "noNewPrivileges", json_object_new_boolean(1));
    json_object *caps = json_object_new_object();
    json_object_object_add(caps, "bounding", jstrs(default_caps, N(default_caps)));
    json_object_object_add(caps, "effective", jstrs(default_caps, N(default_caps)));
    json_object_object_add(caps, "permitted", jstrs(default_caps, N(default_caps)));
    json_object_object_add(p, "capabilities", caps);
    json_object *rl = json_object_new_object();
    json_object_object_add(rl, "type", jstr("RLIMIT_NOFILE"));
    json_object_object_add(rl, "hard", json_object_new_int64(1024));
    json_object_object_add(rl, "soft", json_object_new_int64(1024));
    json_object *rls = json_object_new_array();
    json_object_array_add(rls, rl);
    json_object_object_add(p, "rlimits", rls);
    json_object_object_add(s, "process", p);

    json_object_object_add(s, "mounts", default_mounts());

    json_object *l = json_object_new_object();
    json_object_object_add(l, "maskedPaths", jstrs(masked_paths, N(masked_paths)));
    json_object_object_add(l, "readonlyPaths", jstrs(readonly_paths, N(readonly_paths)));
    char cg[1024];
    snprintf(cg, sizeof cg, "/%s/%s", ns, id);
    json_object_object_add(l, "cgroupsPath", jstr(cg));
    json_object *res = json_object_new_object();
    json_object_object_add(res, "devices", default_devices());
    json_object_object_add(l, "resources", res);
    static const char *const nss[] = {"pid", "ipc", "uts", "mount", "network"};
    json_object *na = json_object_new_array();
    for (size_t i = 0; i < N(nss); i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "type", jstr(nss[i]));
        json_object_array_add(na, o);
    }
    json_object_object_add(l, "namespaces", na);
    json_object_object_add(s, "linux", l);
    return s;
}

/* ---- env: containerd's replaceOrAppendEnvValues ---- */

static void
env_set(json_object *env, const char *kv)
{
    const char *eq = strchr(kv, '=');
    size_t klen = eq ? (size_t)(eq - kv) : strlen(kv);
    for (size_t i = 0; i < json_object_array_length(env); i++) {
        const char *e = json_object_get_string(json_object_array_get_idx(env, i));
        if (!strncmp(e, kv, klen) && (e[klen] == '=' || e[klen] == '\0')) {
            if (eq)
                json_object_array_put_idx(env, i, jstr(kv));
            else /* "K" alone removes K */
                json_object_array_del_idx(env, i, 1);
            return;
        }
    }
    if (eq)
        json_object_array_add(env, jstr(kv));
}

/* ---- users: /etc/passwd and /etc/group of the rootfs (containerd's UserFromPath, GIDFromPath) ---- */

typedef struct {
    char name[256];
    long uid, gid;
} pw_ent_t;

/* Finds the passwd line with name (or, name NULL, uid). 0 found, BERTH_ENOTFOUND not, <0 other errors. */
static int
passwd_find(const char *rootfs, const char *name, long uid, pw_ent_t *out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/etc/passwd", rootfs);
    FILE *f = fopen(path, "re");
    if (!f)
        return BERTH_ENOTFOUND;
    char line[4096];
    int rc = BERTH_ENOTFOUND;
    while (fgets(line, sizeof line, f)) {
        char *save = NULL, *n = strtok_r(line, ":\n", &save);
        char *pw = strtok_r(NULL, ":\n", &save), *u = strtok_r(NULL, ":\n", &save),
             *g = strtok_r(NULL, ":\n", &save);
        (void)pw;
        if (!n || !u || !g || n[0] == '#')
            continue;
        long lu = strtol(u, NULL, 10);
        if (name ? !strcmp(n, name) : lu == uid) {
            snprintf(out->name, sizeof out->name, "%s", n);
            out->uid = lu;
            out->gid = strtol(g, NULL, 10);
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

/* group by name -> *gid; or (member non-NULL) every gid whose members list member, except member's own
 * group, appended to gids */
static int
group_scan(const char *rootfs, const char *name, long *gid, const char *member, json_object *gids)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/etc/group", rootfs);
    FILE *f = fopen(path, "re");
    if (!f)
        return BERTH_ENOTFOUND;
    char line[8192];
    int rc = BERTH_ENOTFOUND;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *fields[4] = {0}, *p = line;
        for (int i = 0; i < 4 && p; i++) {
            fields[i] = p;
            p = strchr(p, ':');
            if (p)
                *p++ = '\0';
        }
        if (!fields[0] || !fields[2] || fields[0][0] == '#')
            continue;
        long g = strtol(fields[2], NULL, 10);
        if (name && !strcmp(fields[0], name)) {
            *gid = g;
            rc = 0;
            break;
        }
        if (member && fields[3] && strcmp(fields[0], member)) {
            char *save = NULL;
            for (char *m = strtok_r(fields[3], ",", &save); m; m = strtok_r(NULL, ",", &save))
                if (!strcmp(m, member)) {
                    json_object_array_add(gids, json_object_new_int64(g));
                    break;
                }
        }
    }
    fclose(f);
    return member ? 0 : rc;
}

static int
parse_id(const char *s, long *out)
{
    if (!*s)
        return 0;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno || v < 0 || v > 0x7fffffffL)
        return 0;
    *out = v;
    return 1;
}

int
bc_spec_user_needs_rootfs(const char *user)
{
    if (!user || !*user)
        return 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", user);
    char *colon = strchr(buf, ':');
    if (colon)
        *colon = '\0';
    long v;
    return !parse_id(buf, &v) || (colon && !parse_id(colon + 1, &v));
}

/* containerd's WithUser(userstr) then WithAdditionalGIDs: uid, gid and additional gids into process.user */
static int
apply_user(json_object *proc, const char *userstr, const char *rootfs, berth_error_t **err)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", userstr);
    char *gpart = strchr(buf, ':');
    if (gpart)
        *gpart++ = '\0';
    if (gpart && strchr(gpart, ':'))
        return bc_error(err, BERTH_EINVAL, "invalid USER value %s", userstr);
    long uid = 0, gid = 0;
    int uid_num = parse_id(buf, &uid), gid_num = gpart ? parse_id(gpart, &gid) : 0;
    if ((!uid_num || (gpart && !gid_num)) && !rootfs)
        return bc_error(err, BERTH_EINVAL,
                        "user \"%s\": names need the image's rootfs to look them up", userstr);
    pw_ent_t pw = {0};
    if (!uid_num) {
        if (passwd_find(rootfs, buf, 0, &pw) < 0)
            return bc_error(err, BERTH_ENOTFOUND, "user \"%s\": no such user in /etc/passwd", buf);
        uid = pw.uid;
        if (!gpart)
            gid = pw.gid;
    } else if (!gpart) {
        /* WithUserID: the passwd entry's gid, 0 when there is none */
        if (rootfs && passwd_find(rootfs, NULL, uid, &pw) == 0)
            gid = pw.gid;
    }
    if (gpart && !gid_num && group_scan(rootfs, gpart, &gid, NULL, NULL) < 0)
        return bc_error(err, BERTH_ENOTFOUND, "group \"%s\": no such group in /etc/group", gpart);

    json_object *u = jobj(proc, "user");
    json_object_object_add(u, "uid", json_object_new_int64(uid));
    json_object_object_add(u, "gid", json_object_new_int64(gid));
    /* WithAdditionalGIDs: the groups that list the user's name (the passwd name of a numeric uid), the
     * primary gid first (ensureAdditionalGids) */
    json_object *gids = json_object_new_array();
    json_object_array_add(gids, json_object_new_int64(gid));
    if (rootfs) {
        const char *uname = NULL;
        pw_ent_t pw2 = {0};
        if (!uid_num)
            uname = buf;
        else if (passwd_find(rootfs, NULL, uid, &pw2) == 0)
            uname = pw2.name;
        if (uname) {
            group_scan(rootfs, NULL, NULL, uname, gids);
            /* the primary gid only once */
            for (size_t i = 1; i < json_object_array_length(gids); i++)
                if (json_object_get_int64(json_object_array_get_idx(gids, i)) == gid)
                    json_object_array_del_idx(gids, i--, 1);
        }
    }
    json_object_object_add(u, "additionalGids", gids);
    return 0;
}

/* ---- capabilities ---- */

static int
last_cap(void)
{
    FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
    int n = (int)N(known_caps) - 1;
    if (f) {
        if (fscanf(f, "%d", &n) != 1)
            n = (int)N(known_caps) - 1;
        fclose(f);
    }
    return n < (int)N(known_caps) ? n : (int)N(known_caps) - 1;
}

/* "net_admin" / "NET_ADMIN" / "CAP_NET_ADMIN" -> "CAP_NET_ADMIN" */
static void
cap_norm(const char *in, char *out, size_t sz)
{
    size_t o = 0;
    if (strncasecmp(in, "CAP_", 4))
        o = (size_t)snprintf(out, sz, "CAP_");
    for (; *in && o + 1 < sz; in++)
        out[o++] = (char)toupper((unsigned char)*in);
    out[o] = '\0';
}

static void
caps_set(json_object *proc, json_object *list)
{
    json_object *c = jobj(proc, "capabilities");
    static const char *const sets[] = {"bounding", "effective", "permitted"};
    for (size_t i = 0; i < N(sets); i++)
        json_object_object_add(c, sets[i], json_object_get(list));
    json_object_put(list);
}

static int
list_has(json_object *a, const char *s)
{
    for (size_t i = 0; i < json_object_array_length(a); i++)
        if (!strcmp(json_object_get_string(json_object_array_get_idx(a, i)), s))
            return 1;
    return 0;
}

static int
has_all(const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcasecmp(v[i], "ALL") || !strcasecmp(v[i], "CAP_ALL"))
            return 1;
    return 0;
}

static json_object *
all_caps(void)
{
    return jstrs(known_caps, (size_t)last_cap() + 1);
}

/* docker's rule: "ALL" in add starts from every capability, "ALL" in drop from none; then drops, then adds
 * (an add wins over a drop of the same capability) */
static int
apply_caps(json_object *proc, const berth_spec_opts_t *o, berth_error_t **err)
{
    json_object *caps = jget(jget(proc, "capabilities"), "bounding");
    json_object *cur = NULL;
    if (has_all(o->cap_add, o->n_cap_add))
        cur = all_caps();
    else if (has_all(o->cap_drop, o->n_cap_drop))
        cur = json_object_new_array();
    else {
        cur = json_object_new_array();
        for (size_t i = 0; caps && i < json_object_array_length(caps); i++)
            json_object_array_add(cur, json_object_get(json_object_array_get_idx(caps, i)));
    }
    char name[64];
    for (size_t i = 0; i < o->n_cap_drop; i++) {
        if (has_all(&o->cap_drop[i], 1))
            continue;
        cap_norm(o->cap_drop[i], name, sizeof name);
        for (size_t j = 0; j < json_object_array_length(cur); j++)
            if (!strcmp(json_object_get_string(json_object_array_get_idx(cur, j)), name))
                json_object_array_del_idx(cur, j--, 1);
    }
    for (size_t i = 0; i < o->n_cap_add; i++) {
        if (has_all(&o->cap_add[i], 1))
            continue;
        cap_norm(o->cap_add[i], name, sizeof name);
        int known = 0;
        for (size_t k = 0; k < N(known_caps); k++)
            known |= !strcmp(known_caps[k], name);
        if (!known) {
            json_object_put(cur);
            return bc_error(err, BERTH_EINVAL, "unknown capability \"%s\"", o->cap_add[i]);
        }
        if (!list_has(cur, name))
            json_object_array_add(cur, jstr(name));
    }
    caps_set(proc, cur);
    return 0;
}

/* oci.WithPrivileged (+ WithAllDevicesAllowed): every capability, nothing masked or read-only, sysfs and
 * cgroupfs writable, every device */
static void
apply_privileged(json_object *s)
{
    json_object *proc = jobj(s, "process"), *l = jobj(s, "linux");
    caps_set(proc, all_caps());
    json_object_object_del(l, "maskedPaths");
    json_object_object_del(l, "readonlyPaths");
    json_object *mounts = jget(s, "mounts");
    for (size_t i = 0; mounts && i < json_object_array_length(mounts); i++) {
        json_object *m = json_object_array_get_idx(mounts, i), *opts = jget(m, "options");
        const char *t = json_object_get_string(jget(m, "type"));
        if (!t || (strcmp(t, "sysfs") && strcmp(t, "cgroup")) || !opts)
            continue;
        for (size_t j = 0; j < json_object_array_length(opts); j++)
            if (!strcmp(json_object_get_string(json_object_array_get_idx(opts, j)), "ro"))
                json_object_array_put_idx(opts, j, jstr("rw"));
    }
    json_object *devs = json_object_new_array();
    json_object_array_add(devs, device_rule(1, NULL, -1, -1));
    json_object_object_add(jobj(l, "resources"), "devices", devs);
}

/* ---- the image's config (oci.WithImageConfig) ---- */

static int
apply_image(json_object *s, json_object *cfg_root, const berth_spec_opts_t *o, const char *rootfs,
            berth_error_t **err)
{
    json_object *cfg = jget(cfg_root, "config"), *proc = jobj(s, "process");
    json_object *ienv = jget(cfg, "Env"), *ep = jget(cfg, "Entrypoint"), *cmd = jget(cfg, "Cmd");
    json_object *env = json_object_new_array();
    if (ienv && json_object_array_length(ienv))
        for (size_t i = 0; i < json_object_array_length(ienv); i++)
            json_object_array_add(env, json_object_get(json_object_array_get_idx(ienv, i)));
    else
        json_object_array_add(env, jstr(DEFAULT_PATH_ENV));
    json_object *old = jget(proc, "env");
    for (size_t i = 0; old && i < json_object_array_length(old); i++)
        env_set(env, json_object_get_string(json_object_array_get_idx(old, i)));
    json_object_object_add(proc, "env", env);

    json_object *args = json_object_new_array();
    int replace = o && o->replace_entrypoint;
    if (!replace)
        for (size_t i = 0;
             ep && json_object_is_type(ep, json_type_array) && i < json_object_array_length(ep);
             i++)
            json_object_array_add(args, json_object_get(json_object_array_get_idx(ep, i)));
    if (!replace && !(o && o->n_args))
        for (size_t i = 0;
             cmd && json_object_is_type(cmd, json_type_array) && i < json_object_array_length(cmd);
             i++)
            json_object_array_add(args, json_object_get(json_object_array_get_idx(cmd, i)));
    json_object_object_add(proc, "args", args);

    const char *wd = json_object_get_string(jget(cfg, "WorkingDir"));
    json_object_object_add(proc, "cwd", jstr(wd && *wd ? wd : "/"));

    const char *user = json_object_get_string(jget(cfg, "User"));
    if (o && o->user)
        return 0; /* opts' user replaces it: resolved once, later */
    if (user && *user)
        return apply_user(proc, user, rootfs, err);
    /* WithAdditionalGIDs("root"): root's supplementary groups from the image */
    return rootfs ? apply_user(proc, "0", rootfs, err) : 0;
}

/* ---- opts ---- */

static void
add_host_bind(json_object *s, const char *path)
{
    static const char *const ro[] = {"rbind", "ro"};
    json_object_array_add(jget(s, "mounts"), mount_obj(path, "bind", path, ro, N(ro)));
}

static int
apply_process_opts(json_object *proc, const berth_spec_opts_t *o, const char *rootfs, int for_exec,
                   berth_error_t **err)
{
    json_object *args = jget(proc, "args");
    if (!args) {
        args = json_object_new_array();
        json_object_object_add(proc, "args", args);
    }
    if (for_exec && o->n_args) {
        json_object_object_add(proc, "args", jstrs(o->args, o->n_args));
    } else if (!for_exec && o->replace_entrypoint) {
        json_object *a = jstrs(o->entrypoint, o->n_entrypoint);
        for (size_t i = 0; i < o->n_args; i++)
            json_object_array_add(a, jstr(o->args[i]));
        json_object_object_add(proc, "args", a);
    } else if (!for_exec) {
        for (size_t i = 0; i < o->n_args; i++)
            json_object_array_add(args, jstr(o->args[i]));
    }
    json_object *env = jget(proc, "env");
    if (!env) {
        env = json_object_new_array();
        json_object_object_add(proc, "env", env);
    }
    for (size_t i = 0; i < o->n_env; i++)
        env_set(env, o->env[i]);
    if (o->cwd && *o->cwd)
        json_object_object_add(proc, "cwd", jstr(o->cwd));
    if (o->user && *o->user) {
        int rc = apply_user(proc, o->user, rootfs, err);
        if (rc < 0)
            return rc;
    }
    if (o->tty) {
        json_object_object_add(proc, "terminal", json_object_new_boolean(1));
        if (!for_exec)
            env_set(env, "TERM=xterm");
    }
    if (o->no_new_privileges)
        json_object_object_add(proc, "noNewPrivileges", json_object_new_boolean(1));
    return 0;
}

static int
apply_opts(json_object *s, const berth_spec_opts_t *o, const char *rootfs, berth_error_t **err)
{
    json_object *proc = jobj(s, "process"), *l = jobj(s, "linux");
    int rc = apply_process_opts(proc, o, rootfs, 0, err);
    if (rc < 0)
        return rc;
    if (o->hostname && *o->hostname)
        json_object_object_add(s, "hostname", jstr(o->hostname));
    if (o->host_hosts)
        add_host_bind(s, "/etc/hosts");
    if (o->host_resolv_conf)
        add_host_bind(s, "/etc/resolv.conf");
    if (o->host_localtime)
        add_host_bind(s, "/etc/localtime");
    if (o->readonly_rootfs)
        json_object_object_add(jobj(s, "root"), "readonly", json_object_new_boolean(1));
    if (o->privileged)
        apply_privileged(s);
    if ((rc = apply_caps(proc, o, err)) < 0)
        return rc;
    json_object *res = jobj(l, "resources");
    if (o->memory_limit > 0)
        json_object_object_add(jobj(res, "memory"), "limit",
                               json_object_new_int64(o->memory_limit));
    if (o->memory_limit < 0 || o->cpus < 0)
        return bc_error(err, BERTH_EINVAL, "negative memory or cpu limit");
    if (o->cpus > 0) {
        json_object *cpu = jobj(res, "cpu");
        json_object_object_add(cpu, "quota",
                               json_object_new_int64((int64_t)(o->cpus * 100000 + 0.5)));
        json_object_object_add(cpu, "period", json_object_new_int64(100000));
    }
    if (o->cgroups_path)
        json_object_object_add(l, "cgroupsPath", jstr(o->cgroups_path));
    return 0;
}

static int
finish(json_object *j, char **out, berth_error_t **err)
{
    const char *txt =
        json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    *out = txt ? strdup(txt) : NULL;
    json_object_put(j);
    return *out ? 0 : bc_error(err, BERTH_ENOMEM, "out of memory");
}

int
bc_spec_build(const char *ns, const char *id, const char *image_config_json,
              const berth_spec_opts_t *opts, const char *rootfs_dir, char **spec_json,
              berth_error_t **err)
{
    if (!id || !*id)
        return bc_error(err, BERTH_EINVAL, "spec: container id is empty");
    json_object *s = default_spec(ns && *ns ? ns : "default", id);
    int rc = 0;
    if (image_config_json) {
        json_object *cfg = json_tokener_parse(image_config_json);
        if (!cfg) {
            json_object_put(s);
            return bc_error(err, BERTH_EINVAL, "spec: the image's config is not JSON");
        }
        rc = apply_image(s, cfg, opts, rootfs_dir, err);
        json_object_put(cfg);
    } else {
        json_object *env = json_object_new_array();
        json_object_array_add(env, jstr(DEFAULT_PATH_ENV));
        json_object_object_add(jobj(s, "process"), "env", env);
    }
    if (rc == 0 && opts)
        rc = apply_opts(s, opts, rootfs_dir, err);
    if (rc < 0) {
        json_object_put(s);
        return bc_error_wrap(err, rc, "spec for container %s", id);
    }
    return finish(s, spec_json, err);
}

int
bc_spec_process_build(const char *spec_json, const berth_spec_opts_t *opts, const char *rootfs_dir,
                      char **process_json, berth_error_t **err)
{
    json_object *s = spec_json && *spec_json ? json_tokener_parse(spec_json) : NULL;
    json_object *proc = jget(s, "process");
    if (!proc) {
        json_object_put(s);
        return bc_error(err, BERTH_EINVAL, "the container's spec has no process");
    }
    json_object_get(proc);
    json_object_put(s);
    json_object_object_del(proc, "terminal");
    int rc = opts ? apply_process_opts(proc, opts, rootfs_dir, 1, err) : 0;
    if (rc == 0 && opts && (opts->n_cap_add || opts->n_cap_drop))
        rc = apply_caps(proc, opts, err);
    if (rc < 0) {
        json_object_put(proc);
        return rc;
    }
    return finish(proc, process_json, err);
}
