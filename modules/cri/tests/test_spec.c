/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cri.spec_units: the OCI specs spec.c makes from CRI configs, checked against what containerd 1.6's
 * CRI generates for the same configs.
 */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cri.h"

static char tmpdir[256];

static void
setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/cri-spec-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void
teardown(void)
{
    char cmd[1024];
    /* a failed assertion leaves the propagation test's mounts: unmount before removing */
    snprintf(cmd, sizeof(cmd), "umount -l %s/shared %s/private 2>/dev/null; rm -rf %s", tmpdir,
             tmpdir, tmpdir);
    (void)system(cmd);
}

TestSuite(spec, .init = setup, .fini = teardown);

static json_object *
get(json_object *o, const char *path)
{
    char buf[256], *save = NULL;
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *k = strtok_r(buf, ".", &save); k != NULL && o != NULL;
         k = strtok_r(NULL, ".", &save))
        if (!json_object_object_get_ex(o, k, &o))
            return NULL;
    return o;
}

static const char *
gets(json_object *o, const char *path)
{
    json_object *v = get(o, path);
    return v != NULL ? json_object_get_string(v) : NULL;
}

static int
has_str(json_object *a, const char *s)
{
    for (size_t i = 0; a != NULL && i < json_object_array_length(a); i++)
        if (strcmp(json_object_get_string(json_object_array_get_idx(a, i)), s) == 0)
            return 1;
    return 0;
}

static json_object *
find_mount(json_object *spec, const char *dst)
{
    json_object *ms = get(spec, "mounts");
    for (size_t i = 0; i < json_object_array_length(ms); i++) {
        json_object *m = json_object_array_get_idx(ms, i);
        if (strcmp(gets(m, "destination"), dst) == 0)
            return m;
    }
    return NULL;
}

static int
mount_index(json_object *spec, const char *dst)
{
    json_object *ms = get(spec, "mounts");
    for (size_t i = 0; i < json_object_array_length(ms); i++)
        if (strcmp(gets(json_object_array_get_idx(ms, i), "destination"), dst) == 0)
            return (int)i;
    return -1;
}

static json_object *
find_ns(json_object *spec, const char *type)
{
    json_object *ns = get(spec, "linux.namespaces");
    for (size_t i = 0; i < json_object_array_length(ns); i++) {
        json_object *n = json_object_array_get_idx(ns, i);
        if (strcmp(gets(n, "type"), type) == 0)
            return n;
    }
    return NULL;
}

/* ---- a pod and a container config ---------------------------------------------------------------- */

typedef struct fixture {
    Runtime__V1__PodSandboxConfig pod;
    Runtime__V1__PodSandboxMetadata pmd;
    Runtime__V1__LinuxPodSandboxConfig plinux;
    Runtime__V1__LinuxSandboxSecurityContext psc;
    Runtime__V1__NamespaceOption pns;
    Runtime__V1__ContainerConfig ctr;
    Runtime__V1__ContainerMetadata cmd;
    Runtime__V1__LinuxContainerConfig clinux;
    Runtime__V1__LinuxContainerSecurityContext csc;
    Runtime__V1__NamespaceOption cns;
    cri_sandbox_t sb;
    cri_container_spec_opts_t o;
    cri_image_config_t img;
} fixture_t;

static void
fixture_init(fixture_t *f)
{
    memset(f, 0, sizeof(*f));
    f->pod = (Runtime__V1__PodSandboxConfig)RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
    f->pmd = (Runtime__V1__PodSandboxMetadata)RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
    f->plinux = (Runtime__V1__LinuxPodSandboxConfig)RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__INIT;
    f->psc =
        (Runtime__V1__LinuxSandboxSecurityContext)RUNTIME__V1__LINUX_SANDBOX_SECURITY_CONTEXT__INIT;
    f->pns = (Runtime__V1__NamespaceOption)RUNTIME__V1__NAMESPACE_OPTION__INIT;
    f->pmd.name = "web";
    f->pmd.namespace_ = "default";
    f->pmd.uid = "uid-1";
    f->pod.metadata = &f->pmd;
    f->pod.hostname = "podhost";
    f->pod.log_directory = "/var/log/pods/x";
    f->pod.linux = &f->plinux;
    f->plinux.security_context = &f->psc;
    f->psc.namespace_options = &f->pns;

    f->ctr = (Runtime__V1__ContainerConfig)RUNTIME__V1__CONTAINER_CONFIG__INIT;
    f->cmd = (Runtime__V1__ContainerMetadata)RUNTIME__V1__CONTAINER_METADATA__INIT;
    f->clinux = (Runtime__V1__LinuxContainerConfig)RUNTIME__V1__LINUX_CONTAINER_CONFIG__INIT;
    f->csc = (Runtime__V1__LinuxContainerSecurityContext)
        RUNTIME__V1__LINUX_CONTAINER_SECURITY_CONTEXT__INIT;
    f->cns = (Runtime__V1__NamespaceOption)RUNTIME__V1__NAMESPACE_OPTION__INIT;
    f->cmd.name = "app";
    f->ctr.metadata = &f->cmd;
    f->ctr.linux = &f->clinux;
    f->clinux.security_context = &f->csc;
    f->csc.namespace_options = &f->cns;

    snprintf(f->sb.id, sizeof(f->sb.id), "%s", "sandbox0");
    f->sb.pid = 4242;
    f->sb.hostname_path = "";
    f->sb.hosts_path = "";
    f->sb.resolv_path = "";
    f->o.id = "ctr0";
    f->o.sandbox = &f->sb;
    f->o.image_name = "docker.io/library/busybox:latest";
    static char *cmd[] = {"sh", NULL};
    f->img.cmd = cmd;
}

static json_object *
container_spec(fixture_t *f)
{
    char *js = NULL, why[512] = "";
    int rc = cri_spec_container(&f->ctr, &f->pod, &f->img, &f->o, &js, why, sizeof(why));
    cr_assert_eq(rc, 0, "cri_spec_container: %d %s", rc, why);
    json_object *s = json_tokener_parse(js);
    cr_assert_not_null(s, "not JSON: %s", js);
    free(js);
    return s;
}

static int
container_spec_fails(fixture_t *f, const char *expect)
{
    char *js = NULL, why[512] = "";
    int rc = cri_spec_container(&f->ctr, &f->pod, &f->img, &f->o, &js, why, sizeof(why));
    cr_assert_lt(rc, 0, "expected a failure (%s), got a spec", expect);
    cr_assert_null(js);
    cr_assert(strstr(why, expect) != NULL, "why: %s, expected %s", why, expect);
    return rc;
}

static void
write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    cr_assert_not_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* ---- the sandbox ----------------------------------------------------------------------------------- */

Test(spec, sandbox_pod_network)
{
    fixture_t f;
    fixture_init(&f);
    Runtime__V1__LinuxPodSandboxConfig__SysctlsEntry e =
        RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__SYSCTLS_ENTRY__INIT;
    e.key = "net.ipv4.ip_forward";
    e.value = "1";
    Runtime__V1__LinuxPodSandboxConfig__SysctlsEntry *ev[] = {&e};
    f.plinux.n_sysctls = 1;
    f.plinux.sysctls = ev;
    cri_sandbox_spec_opts_t o = {.id = "sb1",
                                 .netns_path = "/var/run/netns/cni-1",
                                 .pause_argv0 = "/pause",
                                 .cgroup_path = "/kubepods/sb1",
                                 .resolv_path = "/state/sb1/resolv.conf",
                                 .shm_path = "/state/sb1/shm",
                                 .image_name = ""};
    char *js = NULL, why[256];
    cr_assert_eq(cri_spec_sandbox(&f.pod, &o, &js, why, sizeof(why)), 0, "%s", why);
    json_object *s = json_tokener_parse(js);
    free(js);
    cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(get(s, "process.args"), 0)),
                     "/pause");
    cr_assert(json_object_get_boolean(get(s, "root.readonly")));
    cr_assert_str_eq(gets(s, "root.path"), "rootfs");
    cr_assert_str_eq(gets(s, "hostname"), "podhost");
    cr_assert_str_eq(gets(find_ns(s, "network"), "path"), "/var/run/netns/cni-1");
    cr_assert_not_null(find_ns(s, "uts"));
    cr_assert_not_null(find_ns(s, "pid"));
    cr_assert_not_null(find_ns(s, "ipc"));
    cr_assert_str_eq(gets(s, "linux.cgroupsPath"), "/kubepods/sb1");
    json_object *sys = get(s, "linux.sysctl");
    cr_assert_str_eq(json_object_get_string(json_object_object_get(sys, "net.ipv4.ip_forward")),
                     "1");
    cr_assert_eq(json_object_get_int(get(s, "linux.resources.cpu.shares")), 2);
    /* -998, or berthd's own where it may not go lower (no CAP_SYS_RESOURCE) */
    int adj = json_object_get_int(get(s, "process.oomScoreAdj")), cur = 0;
    FILE *fp = fopen("/proc/self/oom_score_adj", "r");
    cr_assert_eq(fscanf(fp, "%d", &cur), 1);
    fclose(fp);
    cr_assert(adj == -998 || (adj == cur && cur > -998), "oomScoreAdj %d (own %d)", adj, cur);
    json_object *shm = find_mount(s, "/dev/shm");
    cr_assert_str_eq(gets(shm, "source"), "/state/sb1/shm");
    cr_assert(has_str(get(shm, "options"), "ro"));
    cr_assert_str_eq(gets(find_mount(s, "/etc/resolv.conf"), "source"), "/state/sb1/resolv.conf");
    cr_assert_null(find_mount(s, "/run"));
    json_object *ann = get(s, "annotations");
    cr_assert_str_eq(json_object_get_string(json_object_object_get(ann, CRI_ANN_CONTAINER_TYPE)),
                     "sandbox");
    cr_assert_str_eq(json_object_get_string(json_object_object_get(ann, CRI_ANN_SANDBOX_ID)),
                     "sb1");
    cr_assert_str_eq(json_object_get_string(json_object_object_get(ann, CRI_ANN_SANDBOX_NAME)),
                     "web");
    cr_assert_str_eq(json_object_get_string(json_object_object_get(ann, CRI_ANN_SANDBOX_LOG_DIR)),
                     "/var/log/pods/x");
    cr_assert_null(get(s, "linux.seccomp"), "no seccomp unless asked (containerd 1.6's default)");
    json_object_put(s);
}

Test(spec, sandbox_host_namespaces_and_user)
{
    fixture_t f;
    fixture_init(&f);
    f.pns.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
    f.pns.pid = RUNTIME__V1__NAMESPACE_MODE__NODE;
    f.pns.ipc = RUNTIME__V1__NAMESPACE_MODE__NODE;
    Runtime__V1__Int64Value u = RUNTIME__V1__INT64_VALUE__INIT, g = RUNTIME__V1__INT64_VALUE__INIT;
    u.value = 1000;
    g.value = 2000;
    f.psc.run_as_user = &u;
    f.psc.run_as_group = &g;
    cri_sandbox_spec_opts_t o = {.id = "sb2", .netns_path = "", .shm_path = "/state/shm"};
    char *js = NULL, why[256];
    cr_assert_eq(cri_spec_sandbox(&f.pod, &o, &js, why, sizeof(why)), 0, "%s", why);
    json_object *s = json_tokener_parse(js);
    free(js);
    cr_assert_null(find_ns(s, "network"));
    cr_assert_null(find_ns(s, "uts"));
    cr_assert_null(get(s, "hostname"), "no hostname without a UTS namespace (runc refuses it)");
    cr_assert_null(find_ns(s, "pid"));
    cr_assert_null(find_ns(s, "ipc"));
    cr_assert_not_null(find_ns(s, "mount"));
    cr_assert_str_eq(gets(find_mount(s, "/dev/shm"), "source"), "/dev/shm", "host IPC: host shm");
    cr_assert_eq(json_object_get_int(get(s, "process.user.uid")), 1000);
    cr_assert_eq(json_object_get_int(get(s, "process.user.gid")), 2000);
    cr_assert_str_eq(gets(s, "linux.cgroupsPath"), "/k8s.io/sb2");
    json_object_put(s);
}

/* ---- process ------------------------------------------------------------------------------------- */

static void
assert_args(json_object *s, const char *const *want)
{
    json_object *a = get(s, "process.args");
    size_t n = 0;
    while (want[n] != NULL)
        n++;
    cr_assert_eq(json_object_array_length(a), n, "args: %s", json_object_to_json_string(a));
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(a, i)), want[i]);
}

Test(spec, process_args_merge)
{
    fixture_t f;
    fixture_init(&f);
    char *ep[] = {"/entry", "-x", NULL}, *cmd[] = {"default", NULL};
    char *ccmd[] = {"/bin/run"}, *cargs[] = {"a1", "a2"};
    f.img.entrypoint = ep;
    f.img.cmd = cmd;
    json_object *s = container_spec(&f); /* image's entrypoint + cmd */
    assert_args(s, (const char *[]){"/entry", "-x", "default", NULL});
    json_object_put(s);
    f.ctr.n_args = 2, f.ctr.args = cargs; /* args replace the cmd, the entrypoint stays */
    s = container_spec(&f);
    assert_args(s, (const char *[]){"/entry", "-x", "a1", "a2", NULL});
    json_object_put(s);
    f.ctr.n_command = 1, f.ctr.command = ccmd; /* command replaces the entrypoint, no image cmd */
    s = container_spec(&f);
    assert_args(s, (const char *[]){"/bin/run", "a1", "a2", NULL});
    json_object_put(s);
    f.ctr.n_args = 0;
    s = container_spec(&f);
    assert_args(s, (const char *[]){"/bin/run", NULL});
    json_object_put(s);
    f.ctr.n_command = 0;
    f.img.entrypoint = NULL;
    f.img.cmd = NULL;
    container_spec_fails(&f, "no command specified");
}

Test(spec, env_cwd_tty)
{
    fixture_t f;
    fixture_init(&f);
    char *ienv[] = {"PATH=/img/bin", "A=image", "B=image", NULL};
    f.img.env = ienv;
    f.img.working_dir = "/imgdir";
    Runtime__V1__KeyValue kv = RUNTIME__V1__KEY_VALUE__INIT, kv2 = RUNTIME__V1__KEY_VALUE__INIT;
    kv.key = "A";
    kv.value.data = (uint8_t *)"config";
    kv.value.len = 6;
    kv2.key = "C";
    kv2.value.data = (uint8_t *)"x=y";
    kv2.value.len = 3;
    Runtime__V1__KeyValue *envs[] = {&kv, &kv2};
    f.ctr.n_envs = 2;
    f.ctr.envs = envs;
    f.ctr.tty = 1;
    json_object *s = container_spec(&f);
    json_object *env = get(s, "process.env");
    const char *want[] = {"PATH=/img/bin", "HOSTNAME=podhost", "A=config", "B=image", "C=x=y"};
    cr_assert_eq(json_object_array_length(env), 5, "%s", json_object_to_json_string(env));
    for (size_t i = 0; i < 5; i++)
        cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(env, i)), want[i]);
    cr_assert_str_eq(gets(s, "process.cwd"), "/imgdir");
    cr_assert(json_object_get_boolean(get(s, "process.terminal")));
    cr_assert(!json_object_get_boolean(get(s, "process.noNewPrivileges")));
    json_object_put(s);
    f.ctr.working_dir = "/work";
    f.ctr.tty = 0;
    s = container_spec(&f);
    cr_assert_str_eq(gets(s, "process.cwd"), "/work");
    cr_assert(!json_object_get_boolean(get(s, "process.terminal")));
    json_object_put(s);
}

Test(spec, user_from_rootfs)
{
    fixture_t f;
    fixture_init(&f);
    char pw[300], gr[300];
    snprintf(pw, sizeof(pw), "%s/passwd", tmpdir);
    snprintf(gr, sizeof(gr), "%s/group", tmpdir);
    write_file(pw, "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/sh\n"
                   "alice::1000:1001:Alice:/home/alice:/bin/sh\n");
    write_file(gr, "root:x:0:\nusers:x:100:alice,bob\nwheel:x:10:alice\nstaff:x:50:bob\n"
                   "devs:x:1001:\n");
    f.o.rootfs_owner_passwd = pw;
    f.o.rootfs_owner_group = gr;
    f.csc.run_as_username = "alice";
    json_object *s = container_spec(&f);
    cr_assert_eq(json_object_get_int(get(s, "process.user.uid")), 1000);
    cr_assert_eq(json_object_get_int(get(s, "process.user.gid")), 1001);
    json_object *ag = get(s, "process.user.additionalGids");
    cr_assert_str_eq(json_object_to_json_string(ag), "[ 10, 100 ]");
    json_object_put(s);

    /* a uid with a group and supplemental groups, merged and sorted */
    f.csc.run_as_username = "";
    Runtime__V1__Int64Value u = RUNTIME__V1__INT64_VALUE__INIT, g = RUNTIME__V1__INT64_VALUE__INIT;
    u.value = 33;
    g.value = 7;
    f.csc.run_as_user = &u;
    f.csc.run_as_group = &g;
    int64_t sup[] = {500, 10};
    f.csc.n_supplemental_groups = 2;
    f.csc.supplemental_groups = sup;
    s = container_spec(&f);
    cr_assert_eq(json_object_get_int(get(s, "process.user.uid")), 33);
    cr_assert_eq(json_object_get_int(get(s, "process.user.gid")), 7);
    cr_assert_str_eq(json_object_to_json_string(get(s, "process.user.additionalGids")),
                     "[ 10, 500 ]");
    json_object_put(s);

    /* Strict: the configured groups only, none from /etc/group */
    f.csc.supplemental_groups_policy = RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict;
    f.csc.run_as_user = NULL;
    f.csc.run_as_group = NULL;
    f.csc.run_as_username = "alice";
    s = container_spec(&f);
    cr_assert_str_eq(json_object_to_json_string(get(s, "process.user.additionalGids")),
                     "[ 10, 500 ]");
    json_object_put(s);
    f.csc.supplemental_groups_policy = RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Merge;
    s = container_spec(&f);
    cr_assert_str_eq(json_object_to_json_string(get(s, "process.user.additionalGids")),
                     "[ 10, 100, 500 ]");
    json_object_put(s);
    f.csc.run_as_username = "";

    /* the image's USER user:group by names */
    f.csc.run_as_user = NULL;
    f.csc.run_as_group = NULL;
    f.csc.n_supplemental_groups = 0;
    f.img.user = "www:staff";
    s = container_spec(&f);
    cr_assert_eq(json_object_get_int(get(s, "process.user.uid")), 33);
    cr_assert_eq(json_object_get_int(get(s, "process.user.gid")), 50);
    json_object_put(s);

    f.img.user = "nobody";
    container_spec_fails(&f, "no such user");
    f.img.user = NULL;
    f.csc.run_as_group = &g;
    container_spec_fails(&f, "specified without user");
}

/* ---- mounts -------------------------------------------------------------------------------------- */

Test(spec, default_and_sandbox_mounts)
{
    fixture_t f;
    fixture_init(&f);
    char hosts[300], resolv[300], hostname[300], shm[300];
    snprintf(hosts, sizeof(hosts), "%s/hosts", tmpdir);
    snprintf(resolv, sizeof(resolv), "%s/resolv.conf", tmpdir);
    snprintf(hostname, sizeof(hostname), "%s/hostname", tmpdir);
    snprintf(shm, sizeof(shm), "%s/shm", tmpdir);
    write_file(hosts, "127.0.0.1 localhost\n");
    write_file(resolv, "nameserver 127.0.0.1\n");
    write_file(hostname, "podhost\n");
    mkdir(shm, 0755);
    f.sb.hosts_path = hosts;
    f.sb.resolv_path = resolv;
    f.sb.hostname_path = hostname;
    f.o.shm_path = shm;
    f.csc.readonly_rootfs = 1;
    json_object *s = container_spec(&f);
    const char *defaults[] = {"/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup"};
    for (size_t i = 0; i < 6; i++)
        cr_assert_not_null(find_mount(s, defaults[i]), "%s", defaults[i]);
    cr_assert_null(find_mount(s, "/run"));
    cr_assert(has_str(get(find_mount(s, "/sys/fs/cgroup"), "options"), "ro"));
    cr_assert(has_str(get(find_mount(s, "/sys"), "options"), "ro"));
    json_object *m = find_mount(s, "/etc/hosts");
    cr_assert_str_eq(gets(m, "source"), hosts);
    cr_assert_str_eq(gets(m, "type"), "bind");
    cr_assert(has_str(get(m, "options"), "ro"), "read-only rootfs: the pod files read-only too");
    cr_assert_str_eq(gets(find_mount(s, "/etc/resolv.conf"), "source"), resolv);
    cr_assert_str_eq(gets(find_mount(s, "/etc/hostname"), "source"), hostname);
    json_object *sm = find_mount(s, "/dev/shm");
    cr_assert_str_eq(gets(sm, "source"), shm, "the pod's shm replaces the default tmpfs");
    cr_assert(has_str(get(sm, "options"), "rw"));
    cr_assert(json_object_get_boolean(get(s, "root.readonly")));
    json_object_put(s);
}

Test(spec, cri_mounts_propagation_and_order)
{
    fixture_t f;
    fixture_init(&f);
    char missing[300], ro[300], hosts[300], ownhosts[300];
    snprintf(missing, sizeof(missing), "%s/will/be/made", tmpdir);
    snprintf(ro, sizeof(ro), "%s/ro", tmpdir);
    snprintf(hosts, sizeof(hosts), "%s/hosts", tmpdir);
    snprintf(ownhosts, sizeof(ownhosts), "%s/myhosts", tmpdir);
    mkdir(ro, 0755);
    write_file(hosts, "x\n");
    write_file(ownhosts, "y\n");
    f.sb.hosts_path = hosts;
    Runtime__V1__Mount m1 = RUNTIME__V1__MOUNT__INIT, m2 = RUNTIME__V1__MOUNT__INIT,
                       m3 = RUNTIME__V1__MOUNT__INIT;
    m1.container_path = "/data/deep/er";
    m1.host_path = missing;
    m2.container_path = "/data";
    m2.host_path = ro;
    m2.readonly = 1;
    m3.container_path = "/etc/hosts";
    m3.host_path = ownhosts;
    Runtime__V1__Mount *mv[] = {&m1, &m2, &m3};
    f.ctr.n_mounts = 3;
    f.ctr.mounts = mv;
    json_object *s = container_spec(&f);
    struct stat st;
    cr_assert(stat(missing, &st) == 0 && S_ISDIR(st.st_mode), "a missing host path is made a dir");
    json_object *a = find_mount(s, "/data/deep/er"), *b = find_mount(s, "/data");
    cr_assert(has_str(get(a, "options"), "rbind"));
    cr_assert(has_str(get(a, "options"), "rprivate"));
    cr_assert(has_str(get(a, "options"), "rw"));
    cr_assert(has_str(get(b, "options"), "ro"));
    cr_assert_lt(mount_index(s, "/data"), mount_index(s, "/data/deep/er"), "parents first");
    cr_assert_str_eq(gets(find_mount(s, "/etc/hosts"), "source"), ownhosts,
                     "kubelet's /etc/hosts wins over the pod's");
    cr_assert_null(get(s, "linux.rootfsPropagation"));
    json_object_put(s);

    /* propagation follows the host's mount: "/" is shared on systemd hosts; where it is private
     * containerd refuses, and so does this */
    m1.propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER;
    f.ctr.n_mounts = 1;
    char *js = NULL, why[512] = "";
    int rc = cri_spec_container(&f.ctr, &f.pod, &f.img, &f.o, &js, why, sizeof(why));
    if (rc == 0) {
        s = json_tokener_parse(js);
        free(js);
        cr_assert(has_str(get(find_mount(s, "/data/deep/er"), "options"), "rslave"));
        cr_assert_str_eq(gets(s, "linux.rootfsPropagation"), "rslave");
        json_object_put(s);
    } else {
        cr_assert(strstr(why, "not a shared or slave mount") != NULL, "%s", why);
    }
    m1.propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL;
    rc = cri_spec_container(&f.ctr, &f.pod, &f.img, &f.o, &js, why, sizeof(why));
    if (rc == 0) {
        s = json_tokener_parse(js);
        free(js);
        cr_assert(has_str(get(find_mount(s, "/data/deep/er"), "options"), "rshared"));
        cr_assert_str_eq(gets(s, "linux.rootfsPropagation"), "rshared");
        json_object_put(s);
    } else {
        cr_assert(strstr(why, "not a shared mount") != NULL, "%s", why);
    }
}

Test(spec, dev_mount_replaces_dev_defaults)
{
    fixture_t f;
    fixture_init(&f);
    Runtime__V1__Mount m = RUNTIME__V1__MOUNT__INIT;
    m.container_path = "/dev/";
    m.host_path = tmpdir;
    Runtime__V1__Mount *mv[] = {&m};
    f.ctr.n_mounts = 1;
    f.ctr.mounts = mv;
    json_object *s = container_spec(&f);
    cr_assert_null(find_mount(s, "/dev/pts"));
    cr_assert_null(find_mount(s, "/dev/mqueue"));
    cr_assert_str_eq(gets(find_mount(s, "/dev/"), "source"), tmpdir);
    json_object_put(s);
}

/* ---- devices, namespaces, resources, security ----------------------------------------------------- */

Test(spec, devices)
{
    fixture_t f;
    fixture_init(&f);
    Runtime__V1__Device d = RUNTIME__V1__DEVICE__INIT;
    d.host_path = "/dev/null";
    d.container_path = "/dev/mynull";
    d.permissions = "rw";
    Runtime__V1__Device *dv[] = {&d};
    f.ctr.n_devices = 1;
    f.ctr.devices = dv;
    json_object *s = container_spec(&f);
    json_object *dev = json_object_array_get_idx(get(s, "linux.devices"), 0);
    cr_assert_str_eq(gets(dev, "path"), "/dev/mynull");
    cr_assert_str_eq(gets(dev, "type"), "c");
    cr_assert_eq(json_object_get_int(get(dev, "major")), 1);
    cr_assert_eq(json_object_get_int(get(dev, "minor")), 3);
    json_object *rules = get(s, "linux.resources.devices");
    cr_assert_eq(json_object_array_length(rules), 2);
    cr_assert(!json_object_get_boolean(get(json_object_array_get_idx(rules, 0), "allow")));
    json_object *r = json_object_array_get_idx(rules, 1);
    cr_assert(json_object_get_boolean(get(r, "allow")));
    cr_assert_str_eq(gets(r, "access"), "rw");
    cr_assert_eq(json_object_get_int(get(r, "minor")), 3);
    json_object_put(s);
    d.host_path = tmpdir;
    container_spec_fails(&f, "not a device");
}

Test(spec, namespaces_join_the_sandbox)
{
    fixture_t f;
    fixture_init(&f);
    json_object *s = container_spec(&f);
    cr_assert_str_eq(gets(find_ns(s, "network"), "path"), "/proc/4242/ns/net");
    cr_assert_str_eq(gets(find_ns(s, "ipc"), "path"), "/proc/4242/ns/ipc");
    cr_assert_str_eq(gets(find_ns(s, "uts"), "path"), "/proc/4242/ns/uts");
    cr_assert_str_eq(gets(find_ns(s, "pid"), "path"), "/proc/4242/ns/pid",
                     "pid POD: the sandbox's");
    cr_assert_null(gets(find_ns(s, "mount"), "path"));
    cr_assert_str_eq(gets(s, "linux.cgroupsPath"), "/k8s.io/ctr0");
    json_object_put(s);
    f.cns.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
    f.o.cgroup_path = "/kubepods/besteffort/ctr0";
    s = container_spec(&f);
    cr_assert_not_null(find_ns(s, "pid"));
    cr_assert_null(gets(find_ns(s, "pid"), "path"), "pid CONTAINER: a new one");
    cr_assert_str_eq(gets(s, "linux.cgroupsPath"), "/kubepods/besteffort/ctr0");
    json_object_put(s);
}

Test(spec, resources)
{
    fixture_t f;
    fixture_init(&f);
    Runtime__V1__LinuxContainerResources r = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
    r.cpu_period = 100000;
    r.cpu_quota = 50000;
    r.cpu_shares = 512;
    r.memory_limit_in_bytes = 64 << 20;
    r.oom_score_adj = 500;
    r.cpuset_cpus = "0";
    Runtime__V1__HugepageLimit h = RUNTIME__V1__HUGEPAGE_LIMIT__INIT;
    h.page_size = "2MB";
    h.limit = 4 << 20;
    Runtime__V1__HugepageLimit *hv[] = {&h};
    r.n_hugepage_limits = 1;
    r.hugepage_limits = hv;
    Runtime__V1__LinuxContainerResources__UnifiedEntry u =
        RUNTIME__V1__LINUX_CONTAINER_RESOURCES__UNIFIED_ENTRY__INIT;
    u.key = "memory.high";
    u.value = "1000000";
    Runtime__V1__LinuxContainerResources__UnifiedEntry *uv[] = {&u};
    r.n_unified = 1;
    r.unified = uv;
    f.clinux.resources = &r;
    json_object *s = container_spec(&f);
    cr_assert_eq(json_object_get_int64(get(s, "linux.resources.cpu.period")), 100000);
    cr_assert_eq(json_object_get_int64(get(s, "linux.resources.cpu.quota")), 50000);
    cr_assert_eq(json_object_get_int64(get(s, "linux.resources.cpu.shares")), 512);
    cr_assert_str_eq(gets(s, "linux.resources.cpu.cpus"), "0");
    cr_assert_eq(json_object_get_int64(get(s, "linux.resources.memory.limit")), 64 << 20);
    cr_assert_eq(json_object_get_int(get(s, "process.oomScoreAdj")), 500, "raising is allowed");
    json_object *hp = json_object_array_get_idx(get(s, "linux.resources.hugepageLimits"), 0);
    cr_assert_str_eq(gets(hp, "pageSize"), "2MB");
    cr_assert_str_eq(json_object_get_string(
                         json_object_object_get(get(s, "linux.resources.unified"), "memory.high")),
                     "1000000");
    char *rj = cri_spec_resources(&r);
    json_object *rr = json_tokener_parse(rj);
    cr_assert_eq(json_object_get_int64(get(rr, "memory.limit")), 64 << 20);
    cr_assert_eq(json_object_get_int64(get(rr, "cpu.quota")), 50000);
    json_object_put(rr);
    free(rj);
    json_object_put(s);
}

Test(spec, capabilities_and_flags)
{
    fixture_t f;
    fixture_init(&f);
    Runtime__V1__Capability c = RUNTIME__V1__CAPABILITY__INIT;
    char *add[] = {"sys_admin", "NET_ADMIN"}, *drop[] = {"CHOWN", "kill"};
    c.n_add_capabilities = 2, c.add_capabilities = add;
    c.n_drop_capabilities = 2, c.drop_capabilities = drop;
    f.csc.capabilities = &c;
    f.csc.no_new_privs = 1;
    json_object *s = container_spec(&f);
    const char *sets[] = {"process.capabilities.bounding", "process.capabilities.effective",
                          "process.capabilities.permitted"};
    for (size_t i = 0; i < 3; i++) {
        json_object *a = get(s, sets[i]);
        cr_assert(has_str(a, "CAP_SYS_ADMIN"));
        cr_assert(has_str(a, "CAP_NET_ADMIN"));
        cr_assert(!has_str(a, "CAP_CHOWN"));
        cr_assert(!has_str(a, "CAP_KILL"));
        cr_assert(has_str(a, "CAP_SETUID"));
    }
    cr_assert_null(get(s, "process.capabilities.inheritable"));
    cr_assert(json_object_get_boolean(get(s, "process.noNewPrivileges")));
    cr_assert(has_str(get(s, "linux.maskedPaths"), "/proc/kcore"));
    cr_assert(has_str(get(s, "linux.readonlyPaths"), "/proc/sys"));
    json_object_put(s);

    char *all[] = {"ALL"}, *one[] = {"NET_RAW"};
    c.n_drop_capabilities = 1, c.drop_capabilities = all; /* drop ALL, add two */
    s = container_spec(&f);
    cr_assert_eq(json_object_array_length(get(s, "process.capabilities.bounding")), 2);
    json_object_put(s);
    c.n_add_capabilities = 1, c.add_capabilities = all; /* add ALL, drop one */
    c.n_drop_capabilities = 1, c.drop_capabilities = one;
    s = container_spec(&f);
    cr_assert(has_str(get(s, "process.capabilities.bounding"), "CAP_SYS_MODULE"));
    cr_assert(!has_str(get(s, "process.capabilities.bounding"), "CAP_NET_RAW"));
    json_object_put(s);

    char *masked[] = {"/proc/mine"};
    f.csc.capabilities = NULL;
    f.csc.n_masked_paths = 1, f.csc.masked_paths = masked;
    s = container_spec(&f);
    cr_assert_eq(json_object_array_length(get(s, "linux.maskedPaths")), 1);
    cr_assert(has_str(get(s, "linux.maskedPaths"), "/proc/mine"));
    json_object_put(s);
}

Test(spec, privileged)
{
    fixture_t f;
    fixture_init(&f);
    f.csc.privileged = 1;
    container_spec_fails(&f, "no privileged container allowed in sandbox");
    f.psc.privileged = 1;
    Runtime__V1__SecurityProfile sp = RUNTIME__V1__SECURITY_PROFILE__INIT; /* RuntimeDefault */
    f.csc.seccomp = &sp;
    json_object *s = container_spec(&f);
    cr_assert(has_str(get(s, "process.capabilities.bounding"), "CAP_SYS_ADMIN"));
    cr_assert(has_str(get(s, "process.capabilities.effective"), "CAP_SYS_MODULE"));
    /* exactly the capabilities this process holds (CapEff), as containerd's cap.Current() */
    FILE *st = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long eff = 0;
    while (st && fgets(line, sizeof(line), st) && sscanf(line, "CapEff: %llx", &eff) != 1)
        ;
    if (st)
        fclose(st);
    size_t held = 0;
    for (int i = 0; i < 64; i++)
        held += (eff >> i) & 1;
    cr_assert_eq(json_object_array_length(get(s, "process.capabilities.bounding")), held);
    cr_assert_eq(has_str(get(s, "process.capabilities.bounding"), "CAP_SYS_RESOURCE"),
                 (eff >> 24) & 1, "CAP_SYS_RESOURCE only when held");
    cr_assert_null(get(s, "linux.maskedPaths"));
    cr_assert_null(get(s, "linux.readonlyPaths"));
    cr_assert_null(get(s, "linux.seccomp"), "privileged: no seccomp");
    cr_assert(!has_str(get(find_mount(s, "/sys"), "options"), "ro"));
    cr_assert(!has_str(get(find_mount(s, "/sys/fs/cgroup"), "options"), "ro"));
    json_object *rules = get(s, "linux.resources.devices");
    cr_assert_eq(json_object_array_length(rules), 1);
    cr_assert(json_object_get_boolean(get(json_object_array_get_idx(rules, 0), "allow")));
    cr_assert_gt(json_object_array_length(get(s, "linux.devices")), 0, "the host's devices");
    json_object_put(s);
}

Test(spec, seccomp_profiles)
{
    fixture_t f;
    fixture_init(&f);
    json_object *s = container_spec(&f);
    cr_assert_null(get(s, "linux.seccomp"), "no profile asked: unconfined");
    json_object_put(s);
    Runtime__V1__SecurityProfile sp = RUNTIME__V1__SECURITY_PROFILE__INIT;
    sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined;
    f.csc.seccomp = &sp;
    s = container_spec(&f);
    cr_assert_null(get(s, "linux.seccomp"));
    json_object_put(s);
    char prof[300];
    snprintf(prof, sizeof(prof), "%s/profile.json", tmpdir);
    write_file(prof, "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"read\"],"
                     "\"action\":\"SCMP_ACT_ALLOW\"}]}");
    sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
    sp.localhost_ref = prof;
    s = container_spec(&f);
    cr_assert_str_eq(gets(s, "linux.seccomp.defaultAction"), "SCMP_ACT_ERRNO");
    json_object_put(s);
    sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault;
    s = container_spec(&f);
#ifdef CRI_HAVE_SECCOMP
    cr_assert_not_null(get(s, "linux.seccomp.defaultAction"),
                       "RuntimeDefault: containerd's profile");
    cr_assert_str_eq(gets(s, "linux.seccomp.defaultAction"), "SCMP_ACT_ERRNO");
#endif
    json_object_put(s);
}

Test(spec, annotations)
{
    fixture_t f;
    fixture_init(&f);
    json_object *s = container_spec(&f);
    json_object *a = get(s, "annotations");
    struct {
        const char *k, *v;
    } want[] = {
        {CRI_ANN_CONTAINER_TYPE, "container"},
        {CRI_ANN_SANDBOX_ID, "sandbox0"},
        {CRI_ANN_SANDBOX_NAME, "web"},
        {CRI_ANN_SANDBOX_NAMESPACE, "default"},
        {CRI_ANN_SANDBOX_UID, "uid-1"},
        {CRI_ANN_CONTAINER_NAME, "app"},
        {CRI_ANN_IMAGE_NAME, "docker.io/library/busybox:latest"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        cr_assert_str_eq(json_object_get_string(json_object_object_get(a, want[i].k)), want[i].v,
                         "%s", want[i].k);
    json_object_put(s);
}

/* A host path on a shared mount: HOST_TO_CONTAINER is rslave, BIDIRECTIONAL rshared; on a private one
 * both are refused, as containerd refuses them. */
Test(spec, propagation_on_a_shared_mount)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to make a shared mount");
    fixture_t f;
    fixture_init(&f);
    char shared[300], priv[300];
    snprintf(shared, sizeof(shared), "%s/shared", tmpdir);
    snprintf(priv, sizeof(priv), "%s/private", tmpdir);
    mkdir(shared, 0755);
    mkdir(priv, 0755);
    cr_assert_eq(mount(shared, shared, NULL, MS_BIND, NULL), 0);
    cr_assert_eq(mount(NULL, shared, NULL, MS_SHARED, NULL), 0);
    cr_assert_eq(mount(priv, priv, NULL, MS_BIND, NULL), 0);
    cr_assert_eq(mount(NULL, priv, NULL, MS_PRIVATE, NULL), 0);
    Runtime__V1__Mount m = RUNTIME__V1__MOUNT__INIT;
    m.container_path = "/mnt/x";
    m.host_path = shared;
    m.propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER;
    Runtime__V1__Mount *mv[] = {&m};
    f.ctr.n_mounts = 1;
    f.ctr.mounts = mv;
    json_object *s = container_spec(&f);
    cr_assert(has_str(get(find_mount(s, "/mnt/x"), "options"), "rslave"));
    cr_assert_str_eq(gets(s, "linux.rootfsPropagation"), "rslave");
    json_object_put(s);
    m.propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL;
    s = container_spec(&f);
    cr_assert(has_str(get(find_mount(s, "/mnt/x"), "options"), "rshared"));
    cr_assert_str_eq(gets(s, "linux.rootfsPropagation"), "rshared");
    json_object_put(s);
    m.host_path = priv;
    container_spec_fails(&f, "not a shared mount");
    m.propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER;
    container_spec_fails(&f, "not a shared or slave mount");
    umount2(shared, MNT_DETACH);
    umount2(priv, MNT_DETACH);
}
