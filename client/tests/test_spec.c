/* SPDX-License-Identifier: Apache-2.0 */
/* Spec generation without a daemon (client/spec.c): containerd's defaults, the image's config, the options,
 * user and group names from a temp rootfs. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image_internal.h"
#include "internal.h"

static json_object *
spec_of(const char *config, const berth_spec_opts_t *o, const char *rootfs)
{
    char *txt = NULL;
    berth_error_t *err = NULL;
    int rc = bc_spec_build("ns1", "c1", config, o, rootfs, &txt, &err);
    cr_assert_eq(rc, 0, "bc_spec_build: %s", err ? err->message : "?");
    json_object *j = json_tokener_parse(txt);
    cr_assert_not_null(j);
    free(txt);
    return j;
}

static int
spec_fails(const char *config, const berth_spec_opts_t *o, const char *rootfs)
{
    char *txt = NULL;
    berth_error_t *err = NULL;
    int rc = bc_spec_build("ns1", "c1", config, o, rootfs, &txt, &err);
    cr_assert_lt(rc, 0, "expected an error, got %s", txt ? txt : "");
    cr_assert_not_null(err);
    cr_assert_eq(err->code, rc);
    berth_error_free(err);
    return rc;
}

/* j at a dotted path ("process.user.uid"); array indexes as numbers */
static json_object *
at(json_object *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    char *save = NULL;
    for (char *p = strtok_r(buf, ".", &save); p && j; p = strtok_r(NULL, ".", &save)) {
        if (json_object_is_type(j, json_type_array))
            j = json_object_array_get_idx(j, (size_t)atoi(p));
        else if (!json_object_object_get_ex(j, p, &j))
            return NULL;
    }
    return j;
}

static const char *
str_at(json_object *j, const char *path)
{
    json_object *v = at(j, path);
    return v ? json_object_get_string(v) : NULL;
}

static int64_t
int_at(json_object *j, const char *path)
{
    json_object *v = at(j, path);
    cr_assert_not_null(v, "no %s", path);
    return json_object_get_int64(v);
}

static int
has(json_object *arr, const char *s)
{
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++)
        if (!strcmp(json_object_get_string(json_object_array_get_idx(arr, i)), s))
            return 1;
    return 0;
}

static size_t
len_at(json_object *j, const char *path)
{
    json_object *v = at(j, path);
    return v ? json_object_array_length(v) : 0;
}

Test(spec, defaults)
{
    json_object *s = spec_of(NULL, NULL, NULL);
    cr_assert_str_eq(str_at(s, "linux.cgroupsPath"), "/ns1/c1");
    cr_assert_str_eq(str_at(s, "root.path"), "rootfs");
    cr_assert_str_eq(str_at(s, "process.cwd"), "/");
    cr_assert(json_object_get_boolean(at(s, "process.noNewPrivileges")));
    cr_assert_eq(len_at(s, "process.capabilities.bounding"), 14);
    cr_assert(has(at(s, "process.capabilities.effective"), "CAP_NET_BIND_SERVICE"));
    cr_assert(!has(at(s, "process.capabilities.bounding"), "CAP_SYS_ADMIN"));
    cr_assert_eq(len_at(s, "linux.namespaces"), 5);
    cr_assert_str_eq(str_at(s, "linux.namespaces.4.type"), "network");
    cr_assert_eq(len_at(s, "mounts"), 7);
    cr_assert_str_eq(str_at(s, "mounts.5.destination"), "/sys");
    cr_assert(has(at(s, "mounts.5.options"), "ro"));
    cr_assert(has(at(s, "linux.maskedPaths"), "/proc/kcore"));
    cr_assert(has(at(s, "linux.readonlyPaths"), "/proc/sysrq-trigger"));
    cr_assert_str_eq(str_at(s, "process.rlimits.0.type"), "RLIMIT_NOFILE");
    cr_assert_eq(int_at(s, "process.rlimits.0.hard"), 1024);
    cr_assert(!json_object_get_boolean(at(s, "linux.resources.devices.0.allow")));
    cr_assert_eq(len_at(s, "linux.resources.devices"), 10);
    cr_assert_eq(int_at(s, "linux.resources.devices.8.major"), 136);
    cr_assert(has(at(s, "process.env"),
                  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
    cr_assert_null(at(s, "process.terminal"));
    cr_assert_null(at(s, "root.readonly"));
    json_object_put(s);
}

static const char *CONFIG =
    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"PATH=/img/"
    "bin\",\"FOO=1\"],"
    "\"Entrypoint\":[\"/ep\"],\"Cmd\":[\"a\",\"b\"],\"WorkingDir\":\"/work\"},"
    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";

Test(spec, image_config_merge)
{
    json_object *s = spec_of(CONFIG, NULL, NULL);
    cr_assert_eq(len_at(s, "process.args"), 3);
    cr_assert_str_eq(str_at(s, "process.args.0"), "/ep");
    cr_assert_str_eq(str_at(s, "process.args.2"), "b");
    cr_assert_str_eq(str_at(s, "process.cwd"), "/work");
    cr_assert(has(at(s, "process.env"), "PATH=/img/bin"));
    cr_assert(has(at(s, "process.env"), "FOO=1"));
    json_object_put(s);

    /* args replace Cmd, Entrypoint stays; env overrides and adds; cwd */
    const char *args[] = {"c"}, *env[] = {"FOO=2", "BAR=3"};
    berth_spec_opts_t o = {.args = args, .n_args = 1, .env = env, .n_env = 2, .cwd = "/tmp"};
    s = spec_of(CONFIG, &o, NULL);
    cr_assert_eq(len_at(s, "process.args"), 2);
    cr_assert_str_eq(str_at(s, "process.args.1"), "c");
    cr_assert(has(at(s, "process.env"), "FOO=2"));
    cr_assert(!has(at(s, "process.env"), "FOO=1"));
    cr_assert(has(at(s, "process.env"), "BAR=3"));
    cr_assert_str_eq(str_at(s, "process.cwd"), "/tmp");
    json_object_put(s);

    /* a replaced entrypoint drops the image's Cmd */
    const char *ep[] = {"/bin/sh"}, *args2[] = {"-c", "x"};
    berth_spec_opts_t o2 = {
        .replace_entrypoint = 1, .entrypoint = ep, .n_entrypoint = 1, .args = args2, .n_args = 2};
    s = spec_of(CONFIG, &o2, NULL);
    cr_assert_eq(len_at(s, "process.args"), 3);
    cr_assert_str_eq(str_at(s, "process.args.0"), "/bin/sh");
    cr_assert_str_eq(str_at(s, "process.args.2"), "x");
    json_object_put(s);

    /* an image without Env gets containerd's default PATH */
    s = spec_of("{\"config\":{\"Cmd\":[\"x\"]}}", NULL, NULL);
    cr_assert(has(at(s, "process.env"),
                  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
    json_object_put(s);
}

static char *
make_rootfs(void)
{
    char *dir = strdup("/tmp/berth-spec-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char p[512];
    snprintf(p, sizeof p, "%s/etc", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/etc/passwd", dir);
    FILE *f = fopen(p, "w");
    fputs("root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1001::/home/alice:/bin/sh\n", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/etc/group", dir);
    f = fopen(p, "w");
    fputs("root:x:0:\nwheel:x:10:root,alice\nalice:x:1001:alice\naudio:x:29:alice\n", f);
    fclose(f);
    return dir;
}

static void
rm_rootfs(char *dir)
{
    char p[512];
    snprintf(p, sizeof p, "%s/etc/passwd", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/etc/group", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/etc", dir);
    rmdir(p);
    rmdir(dir);
    free(dir);
}

Test(spec, user_names)
{
    char *root = make_rootfs();
    berth_spec_opts_t o = {.user = "alice"};
    json_object *s = spec_of(NULL, &o, root);
    cr_assert_eq(int_at(s, "process.user.uid"), 1000);
    cr_assert_eq(int_at(s, "process.user.gid"), 1001);
    /* the primary gid first, then the groups listing alice (not her own group twice) */
    cr_assert_eq(len_at(s, "process.user.additionalGids"), 3);
    cr_assert_eq(int_at(s, "process.user.additionalGids.0"), 1001);
    cr_assert_eq(int_at(s, "process.user.additionalGids.1"), 10);
    cr_assert_eq(int_at(s, "process.user.additionalGids.2"), 29);
    json_object_put(s);

    o.user = "alice:wheel";
    s = spec_of(NULL, &o, root);
    cr_assert_eq(int_at(s, "process.user.uid"), 1000);
    cr_assert_eq(int_at(s, "process.user.gid"), 10);
    json_object_put(s);

    o.user = "1000"; /* a uid: its passwd entry's gid */
    s = spec_of(NULL, &o, root);
    cr_assert_eq(int_at(s, "process.user.gid"), 1001);
    json_object_put(s);

    o.user = "5:6";
    s = spec_of(NULL, &o, NULL);
    cr_assert_eq(int_at(s, "process.user.uid"), 5);
    cr_assert_eq(int_at(s, "process.user.gid"), 6);
    json_object_put(s);

    /* the image's User, and root's supplementary groups without one */
    s = spec_of("{\"config\":{\"User\":\"alice\"}}", NULL, root);
    cr_assert_eq(int_at(s, "process.user.uid"), 1000);
    json_object_put(s);
    s = spec_of("{\"config\":{}}", NULL, root);
    cr_assert_eq(int_at(s, "process.user.uid"), 0);
    cr_assert_eq(int_at(s, "process.user.additionalGids.1"), 10);
    json_object_put(s);

    o.user = "bob";
    cr_assert_eq(spec_fails(NULL, &o, root), BERTH_ENOTFOUND);
    o.user = "alice:nogroup";
    cr_assert_eq(spec_fails(NULL, &o, root), BERTH_ENOTFOUND);
    o.user = "alice"; /* a name without a rootfs */
    cr_assert_eq(spec_fails(NULL, &o, NULL), BERTH_EINVAL);
    cr_assert(bc_spec_user_needs_rootfs("alice"));
    cr_assert(bc_spec_user_needs_rootfs("1:wheel"));
    cr_assert(!bc_spec_user_needs_rootfs("1:2"));
    rm_rootfs(root);
}

Test(spec, capabilities)
{
    const char *add[] = {"NET_ADMIN", "cap_sys_time"}, *drop[] = {"CAP_CHOWN", "mknod"};
    berth_spec_opts_t o = {.cap_add = add, .n_cap_add = 2, .cap_drop = drop, .n_cap_drop = 2};
    json_object *s = spec_of(NULL, &o, NULL);
    json_object *b = at(s, "process.capabilities.bounding");
    cr_assert(has(b, "CAP_NET_ADMIN"));
    cr_assert(has(b, "CAP_SYS_TIME"));
    cr_assert(!has(b, "CAP_CHOWN"));
    cr_assert(!has(b, "CAP_MKNOD"));
    cr_assert(has(at(s, "process.capabilities.permitted"), "CAP_NET_ADMIN"));
    cr_assert(!has(at(s, "process.capabilities.effective"), "CAP_CHOWN"));
    cr_assert_eq(len_at(s, "process.capabilities.bounding"), 14);
    json_object_put(s);

    const char *all[] = {"ALL"}, *kill[] = {"kill"}, *sysadmin[] = {"SYS_ADMIN"};
    berth_spec_opts_t o2 = {.cap_drop = all, .n_cap_drop = 1, .cap_add = kill, .n_cap_add = 1};
    s = spec_of(NULL, &o2, NULL);
    cr_assert_eq(len_at(s, "process.capabilities.bounding"), 1);
    cr_assert_str_eq(str_at(s, "process.capabilities.bounding.0"), "CAP_KILL");
    json_object_put(s);

    berth_spec_opts_t o3 = {.cap_add = all, .n_cap_add = 1};
    s = spec_of(NULL, &o3, NULL);
    cr_assert(has(at(s, "process.capabilities.bounding"), "CAP_SYS_ADMIN"));
    cr_assert_gt(len_at(s, "process.capabilities.bounding"), 36);
    json_object_put(s);
    o3.cap_drop = sysadmin, o3.n_cap_drop = 1;
    s = spec_of(NULL, &o3, NULL);
    cr_assert(!has(at(s, "process.capabilities.bounding"), "CAP_SYS_ADMIN"));
    cr_assert(has(at(s, "process.capabilities.bounding"), "CAP_NET_ADMIN"));
    json_object_put(s);

    const char *bogus[] = {"NOT_A_CAP"};
    berth_spec_opts_t o4 = {.cap_add = bogus, .n_cap_add = 1};
    cr_assert_eq(spec_fails(NULL, &o4, NULL), BERTH_EINVAL);
}

Test(spec, limits_readonly_tty_hostname)
{
    berth_spec_opts_t o = {.memory_limit = 64 << 20,
                           .cpus = 1.5,
                           .readonly_rootfs = 1,
                           .tty = 1,
                           .hostname = "box",
                           .cgroups_path = "/mine/x"};
    json_object *s = spec_of(NULL, &o, NULL);
    cr_assert_eq(int_at(s, "linux.resources.memory.limit"), 64 << 20);
    cr_assert_eq(int_at(s, "linux.resources.cpu.quota"), 150000);
    cr_assert_eq(int_at(s, "linux.resources.cpu.period"), 100000);
    cr_assert(json_object_get_boolean(at(s, "root.readonly")));
    cr_assert(json_object_get_boolean(at(s, "process.terminal")));
    cr_assert(has(at(s, "process.env"), "TERM=xterm"));
    cr_assert_str_eq(str_at(s, "hostname"), "box");
    cr_assert_str_eq(str_at(s, "linux.cgroupsPath"), "/mine/x");
    json_object_put(s);
}

Test(spec, host_files_and_privileged)
{
    berth_spec_opts_t o = {.host_hosts = 1, .host_resolv_conf = 1, .host_localtime = 1};
    json_object *s = spec_of(NULL, &o, NULL);
    cr_assert_eq(len_at(s, "mounts"), 10);
    cr_assert_str_eq(str_at(s, "mounts.7.destination"), "/etc/hosts");
    cr_assert_str_eq(str_at(s, "mounts.7.source"), "/etc/hosts");
    cr_assert_str_eq(str_at(s, "mounts.7.type"), "bind");
    cr_assert(has(at(s, "mounts.7.options"), "ro"));
    cr_assert_str_eq(str_at(s, "mounts.8.destination"), "/etc/resolv.conf");
    cr_assert_str_eq(str_at(s, "mounts.9.destination"), "/etc/localtime");
    json_object_put(s);

    berth_spec_opts_t p = {.privileged = 1};
    s = spec_of(NULL, &p, NULL);
    cr_assert_null(at(s, "linux.maskedPaths"));
    cr_assert_null(at(s, "linux.readonlyPaths"));
    cr_assert(has(at(s, "process.capabilities.bounding"), "CAP_SYS_ADMIN"));
    cr_assert_eq(len_at(s, "linux.resources.devices"), 1);
    cr_assert(json_object_get_boolean(at(s, "linux.resources.devices.0.allow")));
    cr_assert(!has(at(s, "mounts.5.options"), "ro"));
    json_object_put(s);
}

Test(spec, exec_process)
{
    char *spec = NULL, *proc = NULL;
    berth_error_t *err = NULL;
    cr_assert_eq(bc_spec_build("ns1", "c1", CONFIG, NULL, NULL, &spec, &err), 0);
    const char *args[] = {"ls", "-l"}, *env[] = {"X=1"};
    berth_spec_opts_t o = {.args = args, .n_args = 2, .env = env, .n_env = 1, .tty = 1, .cwd = "/"};
    cr_assert_eq(bc_spec_process_build(spec, &o, NULL, &proc, &err), 0);
    json_object *p = json_tokener_parse(proc);
    cr_assert_eq(len_at(p, "args"), 2);
    cr_assert_str_eq(str_at(p, "args.0"), "ls");
    cr_assert(has(at(p, "env"), "X=1"));
    cr_assert(has(at(p, "env"), "FOO=1"));
    cr_assert(json_object_get_boolean(at(p, "terminal")));
    cr_assert_str_eq(str_at(p, "cwd"), "/");
    cr_assert_eq(len_at(p, "capabilities.bounding"), 14);
    json_object_put(p);
    free(proc);
    free(spec);
    cr_assert_lt(bc_spec_process_build("{}", &o, NULL, &proc, &err), 0);
    berth_error_free(err);
}
