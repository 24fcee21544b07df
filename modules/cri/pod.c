/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pod sandboxes: RunPodSandbox, StopPodSandbox, RemovePodSandbox, PodSandboxStatus, ListPodSandbox.
 *
 * A sandbox is a containerd container (labels io.cri-containerd.kind=sandbox, in k8s.io) whose only process
 * is berth's static pause program: its rootfs is a read-only bind mount of <root>/pause-rootfs, which
 * holds pause and the empty mount points runc needs (it cannot make them in a read-only rootfs). Making
 * one: the network endpoint (unless host network), the spec (spec.c), the record (last of the durable
 * parts), the task. Any failure undoes in reverse.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cri.h"
#include "services/leases/v1/leases.pb-c.h"
#include "services/snapshots/v1/snapshots.pb-c.h"
#include "services/tasks/v1/tasks.pb-c.h"

#define PAUSE_WAIT_MS 10000

/* spec.c (the containers helper's) replaces this */
__attribute__((weak)) int
cri_spec_sandbox(const Runtime__V1__PodSandboxConfig *cfg, const cri_sandbox_spec_opts_t *o,
                 char **json, char *why, size_t why_len)
{
    (void)cfg, (void)o;
    *json = NULL;
    snprintf(why, why_len, "sandbox specs: not built into this berth yet (spec.c)");
    return BERTH_ENOTIMPL;
}

/* ---- small helpers ---------------------------------------------------------------------------------- */

static Runtime__V1__NamespaceMode
ns_mode(const Runtime__V1__PodSandboxConfig *cfg, char which)
{
    const Runtime__V1__NamespaceOption *o = cfg && cfg->linux && cfg->linux->security_context
                                                ? cfg->linux->security_context->namespace_options
                                                : NULL;
    if (o == NULL)
        return RUNTIME__V1__NAMESPACE_MODE__POD;
    return which == 'n' ? o->network : which == 'p' ? o->pid : o->ipc;
}

static int
host_network(const Runtime__V1__PodSandboxConfig *cfg)
{
    return ns_mode(cfg, 'n') == RUNTIME__V1__NAMESPACE_MODE__NODE;
}

static char *
cgroup_path_for(const cri_t *c, const Runtime__V1__PodSandboxConfig *cfg, const char *id)
{
    const char *parent = cfg->linux && cfg->linux->cgroup_parent ? cfg->linux->cgroup_parent : "";
    char *out = NULL;
    int n;
    if (strcmp(c->cfg.cgroup_driver, "systemd") == 0)
        n = asprintf(&out, "%s:cri-berth:%s", *parent ? parent : "system.slice", id);
    else
        n = asprintf(&out, "%s/%s", *parent ? parent : "/k8s.io", id);
    return n < 0 ? NULL : out;
}

static int
copy_file(const char *from, const char *to, mode_t mode)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (out < 0) {
        close(in);
        return -1;
    }
    char buf[65536];
    ssize_t n;
    int rc = 0;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n) {
            rc = -1;
            break;
        }
    if (n < 0)
        rc = -1;
    close(in);
    if (close(out) < 0)
        rc = -1;
    return rc;
}

static int
write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    int rc = write(fd, text, len) == (ssize_t)len ? 0 : -1;
    if (close(fd) < 0)
        rc = -1;
    return rc;
}

static void
default_pause(char *out, size_t len)
{
    Dl_info info;
    char dir[PATH_MAX] = ".";
    if (dladdr((void *)default_pause, &info) && info.dli_fname)
        snprintf(dir, sizeof(dir), "%s", info.dli_fname);
    for (int up = 0; up < 4; up++) { /* <prefix>/lib/berth/modules/cri.so */
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
    }
    snprintf(out, len, "%s/libexec/berth/pause", dir);
}

/* <root>/pause-rootfs: pause and the mount points of a sandbox's spec, made once (and again when the
 * pause program changed size, as after an upgrade). */
static int
pause_rootfs(cri_t *c, char *dir, size_t len, berth_error_t **err)
{
    char pause[PATH_MAX], dst[PATH_MAX + 64], tmp[PATH_MAX + 64];
    if (c->cfg.pause_path[0])
        snprintf(pause, sizeof(pause), "%s", c->cfg.pause_path);
    else
        default_pause(pause, sizeof(pause));
    snprintf(dir, len, "%s/pause-rootfs", c->cfg.root);
    snprintf(dst, sizeof(dst), "%s/pause", dir);
    struct stat want, have;
    if (stat(pause, &want) < 0)
        return c->api->error_make(err, BERTH_EPRECONDITION, "pause program %s: %s", pause,
                                  strerror(errno));
    if (stat(dst, &have) == 0 && have.st_size == want.st_size)
        return 0;
    static const char *const dirs[] = {"", "/proc", "/dev", "/sys", "/etc", NULL};
    static const char *const files[] = {"/etc/hosts", "/etc/resolv.conf", "/etc/hostname", NULL};
    char p[PATH_MAX + 64];
    for (int i = 0; dirs[i]; i++) {
        snprintf(p, sizeof(p), "%s%s", dir, dirs[i]);
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
            return c->api->error_make(err, BERTH_EIO, "mkdir %s: %s", p, strerror(errno));
    }
    for (int i = 0; files[i]; i++) {
        snprintf(p, sizeof(p), "%s%s", dir, files[i]);
        if (access(p, F_OK) != 0 && write_file(p, "") < 0)
            return c->api->error_make(err, BERTH_EIO, "%s: %s", p, strerror(errno));
    }
    snprintf(tmp, sizeof(tmp), "%s/.pause.tmp", dir);
    if (copy_file(pause, tmp, 0755) < 0 || rename(tmp, dst) < 0) {
        int e = errno;
        unlink(tmp);
        return c->api->error_make(err, BERTH_EIO, "pause program %s into %s: %s", pause, dir,
                                  strerror(e));
    }
    return 0;
}

static void
sandbox_dir(const cri_t *c, const char *id, char *out, size_t len)
{
    snprintf(out, len, "%s/sandboxes/%s", c->cfg.state, id);
}

static void
rm_rf_dir(const char *dir)
{
    static const char *const names[] = {"hostname", "hosts", "resolv.conf", NULL};
    char p[PATH_MAX + 32];
    for (int i = 0; names[i]; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        unlink(p);
    }
    snprintf(p, sizeof(p), "%s/shm", dir);
    while (umount2(p, MNT_DETACH) == 0)
        ;
    rmdir(p);
    rmdir(dir);
}

/* The pod's /dev/shm, shared by its containers (containerd's: a tmpfs under the sandbox's state dir), unless
 * the pod uses the host's IPC namespace (then the host's /dev/shm). */
static int
pod_shm(cri_t *c, const cri_sandbox_t *s, char *out, size_t len, berth_error_t **err)
{
    out[0] = '\0';
    if (ns_mode(s->config, 'i') == RUNTIME__V1__NAMESPACE_MODE__NODE)
        return 0;
    char dir[PATH_MAX];
    sandbox_dir(c, s->id, dir, sizeof(dir));
    snprintf(out, len, "%s/shm", dir);
    if (c->api->mkdir_all(out, 0700, err) < 0)
        return -1;
    if (mount("shm", out, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k") < 0)
        return c->api->error_make(err, BERTH_EIO, "pod sandbox \"%s\": shm tmpfs at %s: %s", s->id,
                                  out, strerror(errno));
    return 0;
}

/* Host-network pods get files of their own: the host's hosts, the DNS config or the host's resolv.conf,
 * and their hostname. */
static int
host_files(cri_t *c, cri_sandbox_t *s, berth_error_t **err)
{
    char dir[PATH_MAX], p[PATH_MAX + 32];
    sandbox_dir(c, s->id, dir, sizeof(dir));
    if (c->api->mkdir_all(dir, 0755, err) < 0)
        return -1;
    const Runtime__V1__PodSandboxConfig *cfg = s->config;
    char host[256] = "";
    if (cfg->hostname && *cfg->hostname)
        snprintf(host, sizeof(host), "%s", cfg->hostname);
    else
        gethostname(host, sizeof(host) - 1);
    snprintf(p, sizeof(p), "%s/hostname", dir);
    char line[300];
    snprintf(line, sizeof(line), "%s\n", host);
    if (write_file(p, line) < 0)
        goto fail;
    free(s->hostname_path), s->hostname_path = strdup(p);
    snprintf(p, sizeof(p), "%s/hosts", dir);
    if (copy_file("/etc/hosts", p, 0644) < 0 && write_file(p, "127.0.0.1 localhost\n") < 0)
        goto fail;
    free(s->hosts_path), s->hosts_path = strdup(p);
    snprintf(p, sizeof(p), "%s/resolv.conf", dir);
    const Runtime__V1__DNSConfig *d = cfg->dns_config;
    if (d && (d->n_servers || d->n_searches || d->n_options)) {
        size_t cap = 64, n = 0;
        char *t = calloc(1, cap);
        for (int part = 0; part < 3; part++) {
            char **v = part == 0 ? d->servers : part == 1 ? d->searches : d->options;
            size_t m = part == 0 ? d->n_servers : part == 1 ? d->n_searches : d->n_options;
            const char *kw = part == 0 ? "nameserver" : part == 1 ? "search" : "options";
            for (size_t i = 0; i < m; i++) {
                size_t need = n + strlen(kw) + strlen(v[i]) + 4;
                if (need > cap)
                    cap = 2 * need, t = realloc(t, cap);
                /* servers one a line; searches and options on one line each */
                n += (size_t)sprintf(t + n, "%s%s%s", part == 0 || i == 0 ? kw : "",
                                     part == 0 || i == 0 ? " " : " ", v[i]);
                if (part == 0 || i + 1 == m)
                    t[n++] = '\n', t[n] = '\0';
            }
        }
        int rc = write_file(p, t);
        free(t);
        if (rc < 0)
            goto fail;
    } else if (copy_file("/etc/resolv.conf", p, 0644) < 0 && write_file(p, "") < 0) {
        goto fail;
    }
    free(s->resolv_path), s->resolv_path = strdup(p);
    return 0;
fail:
    return c->api->error_make(err, BERTH_EIO, "pod sandbox \"%s\": %s: %s", s->id, p,
                              strerror(errno));
}

static char *
addr_only(const char *cidr)
{
    char *ip = strdup(cidr);
    char *slash = strchr(ip, '/');
    if (slash)
        *slash = '\0';
    return ip;
}

static int
network_setup(cri_t *c, cri_sandbox_t *s, berth_error_t **err)
{
    const Runtime__V1__PodSandboxConfig *cfg = s->config;
    if (c->neto == NULL)
        return c->api->error_make(
            err, BERTH_EPRECONDITION,
            "pod sandbox \"%s\": no network module: only host-network pods run", s->id);
    berth_port_mapping_t *ports = calloc(cfg->n_port_mappings + 1, sizeof(*ports));
    size_t np = 0;
    for (size_t i = 0; i < cfg->n_port_mappings; i++) {
        const Runtime__V1__PortMapping *pm = cfg->port_mappings[i];
        if (pm->host_port <= 0) /* containerd passes only mappings with a host port */
            continue;
        ports[np++] = (berth_port_mapping_t){
            .host_ip = pm->host_ip,
            .host_port = (uint16_t)pm->host_port,
            .container_port = (uint16_t)pm->container_port,
            .protocol = pm->protocol == RUNTIME__V1__PROTOCOL__UDP    ? "udp"
                        : pm->protocol == RUNTIME__V1__PROTOCOL__SCTP ? "sctp"
                                                                      : "tcp",
        };
    }
    berth_kv_t *args = c->api->kv_new();
    c->api->kv_set(args, "IgnoreUnknown", "1");
    c->api->kv_set(args, "K8S_POD_NAMESPACE", cfg->metadata->namespace_);
    c->api->kv_set(args, "K8S_POD_NAME", cfg->metadata->name);
    c->api->kv_set(args, "K8S_POD_INFRA_CONTAINER_ID", s->id);
    c->api->kv_set(args, "K8S_POD_UID", cfg->metadata->uid);
    const char *nets[] = {c->cfg.network};
    const Runtime__V1__DNSConfig *d = cfg->dns_config;
    char **srv = NULL, **sea = NULL, **opt = NULL;
    if (d && (d->n_servers || d->n_searches || d->n_options)) {
        /* each list NULL-terminated; an empty one (NULL in protobuf-c) stays just the terminator */
        srv = calloc(d->n_servers + 1, sizeof(char *));
        sea = calloc(d->n_searches + 1, sizeof(char *));
        opt = calloc(d->n_options + 1, sizeof(char *));
        for (size_t i = 0; i < d->n_servers; i++)
            srv[i] = d->servers[i];
        for (size_t i = 0; i < d->n_searches; i++)
            sea[i] = d->searches[i];
        for (size_t i = 0; i < d->n_options; i++)
            opt[i] = d->options[i];
    }
    berth_net_setup_t req = {
        .struct_size = sizeof(req),
        .namespace_ = CRI_NAMESPACE,
        .id = s->id,
        .networks = nets,
        .n_networks = 1,
        .ports = ports,
        .n_ports = np,
        .cni_args = args,
        .hostname = cfg->hostname && *cfg->hostname ? cfg->hostname : NULL,
        .dns_servers = (const char *const *)srv,
        .dns_searches = (const char *const *)sea,
        .dns_options = (const char *const *)opt,
    };
    berth_net_result_t res = {.struct_size = sizeof(res)};
    int rc = c->neto->setup(c->net, &req, &res, err);
    c->api->kv_free(args);
    free(ports);
    free(srv), free(sea), free(opt);
    if (rc < 0)
        return c->api->error_wrap(err, "pod sandbox \"%s\": network %s", s->id, c->cfg.network);
    free(s->netns_path), s->netns_path = strdup(res.netns_path ? res.netns_path : "");
    free(s->resolv_path), s->resolv_path = strdup(res.resolv_conf_path ? res.resolv_conf_path : "");
    free(s->hosts_path), s->hosts_path = strdup(res.hosts_path ? res.hosts_path : "");
    free(s->hostname_path), s->hostname_path = strdup(res.hostname_path ? res.hostname_path : "");
    for (size_t i = 0; s->extra_ips[i]; i++)
        free(s->extra_ips[i]);
    free(s->extra_ips);
    s->extra_ips = calloc(res.n_addresses + 1, sizeof(char *));
    size_t ne = 0;
    for (size_t i = 0; i < res.n_addresses; i++) {
        char *ip = addr_only(res.addresses[i].address);
        if (i ==
            0) { /* the first is the pod's IP; IPv4 first as kubelet expects, the module orders */
            free(s->ip);
            s->ip = ip;
        } else {
            s->extra_ips[ne++] = ip;
        }
    }
    c->neto->result_free(c->net, &res);
    return 0;
}

static void
network_teardown(cri_t *c, const char *id)
{
    if (c->neto == NULL)
        return;
    berth_error_t *e = NULL;
    if (c->neto->teardown(c->net, CRI_NAMESPACE, id, &e) < 0) {
        c->api->log(c->log, BERTH_LOG_WARN, "cri: pod sandbox \"%s\": network teardown: %s", id,
                    e ? e->message : "?");
        c->api->error_free(e);
    }
}

/* The pause's oom_score_adj (-998) may be below what berthd may give without CAP_SYS_RESOURCE (berthd in a
 * container): then berthd's own, as containerd's restrict_oom_score_adj does; runc fails otherwise. */
static char *
restrict_oom_score_adj(char *spec)
{
    FILE *f = fopen("/proc/self/status", "re");
    unsigned long long eff = ~0ull;
    char line[256];
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "CapEff: %llx", &eff) == 1)
            break;
    if (f)
        fclose(f);
    if (eff & (1ull << 24)) /* CAP_SYS_RESOURCE */
        return spec;
    int own = 0;
    f = fopen("/proc/self/oom_score_adj", "re");
    if (f == NULL || fscanf(f, "%d", &own) != 1)
        own = 0;
    if (f)
        fclose(f);
    json_object *o = json_tokener_parse(spec), *proc, *adj;
    if (o && json_object_object_get_ex(o, "process", &proc) &&
        json_object_object_get_ex(proc, "oomScoreAdj", &adj) && json_object_get_int(adj) < own) {
        json_object_object_add(proc, "oomScoreAdj", json_object_new_int(own));
        free(spec);
        spec = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    }
    if (o)
        json_object_put(o);
    return spec;
}

/* ---- tasks ------------------------------------------------------------------------------------------ */

static int
task_create_start(cri_t *c, const char *id, Containerd__Types__Mount **mounts, size_t n_mounts,
                  uint32_t *pid, berth_error_t **err)
{
    Containerd__Services__Tasks__V1__CreateTaskRequest req =
        CONTAINERD__SERVICES__TASKS__V1__CREATE_TASK_REQUEST__INIT;
    req.container_id = (char *)id;
    req.rootfs = mounts;
    req.n_rootfs = n_mounts;
    ProtobufCMessage *out = NULL;
    if (cri_call(c, CRI_SVC_TASKS, "Create", &req.base,
                 &containerd__services__tasks__v1__create_task_response__descriptor, &out, NULL,
                 err) < 0)
        return -1;
    *pid = ((Containerd__Services__Tasks__V1__CreateTaskResponse *)out)->pid;
    protobuf_c_message_free_unpacked(out, NULL);
    Containerd__Services__Tasks__V1__StartRequest st =
        CONTAINERD__SERVICES__TASKS__V1__START_REQUEST__INIT;
    st.container_id = (char *)id;
    st.exec_id = "";
    return cri_call(c, CRI_SVC_TASKS, "Start", &st.base, NULL, NULL, NULL, err);
}

/* Tasks.Kill of every process with sig; 0 also when there is no task (any more). */
static int
task_kill(cri_t *c, const char *id, uint32_t sig)
{
    Containerd__Services__Tasks__V1__KillRequest req =
        CONTAINERD__SERVICES__TASKS__V1__KILL_REQUEST__INIT;
    req.container_id = (char *)id;
    req.exec_id = "";
    req.signal = sig;
    req.all = 1;
    berth_error_t *e = NULL;
    int rc = cri_call(c, CRI_SVC_TASKS, "Kill", &req.base, NULL, NULL, NULL, &e);
    if (rc < 0 && rc != BERTH_ENOTFOUND && rc != BERTH_EPRECONDITION) {
        c->api->log(c->log, BERTH_LOG_WARN, "cri: kill \"%s\": %s", id, e ? e->message : "?");
        c->api->error_free(e);
        return rc;
    }
    c->api->error_free(e);
    return 0;
}

static int
task_delete(cri_t *c, const char *id, berth_error_t **err)
{
    Containerd__Services__Tasks__V1__DeleteTaskRequest req =
        CONTAINERD__SERVICES__TASKS__V1__DELETE_TASK_REQUEST__INIT;
    req.container_id = (char *)id;
    berth_error_t *e = NULL;
    int rc = cri_call(c, CRI_SVC_TASKS, "Delete", &req.base, NULL, NULL, NULL, &e);
    if (rc < 0 && rc != BERTH_ENOTFOUND) {
        if (err)
            *err = e;
        else
            c->api->error_free(e);
        return rc;
    }
    c->api->error_free(e);
    return 0;
}

/* After a kill the task stops, then deletes: a moment of FailedPrecondition is expected. */
static int
task_delete_stopped(cri_t *c, const char *id, berth_error_t **err)
{
    berth_error_t *e = NULL;
    int rc = BERTH_EPRECONDITION;
    for (int i = 0; i < 100 && (rc = task_delete(c, id, &e)) == BERTH_EPRECONDITION; i++) {
        c->api->error_free(e), e = NULL;
        usleep(20000);
    }
    if (rc < 0) {
        if (err)
            *err = e;
        else
            c->api->error_free(e);
    }
    return rc;
}

/* SIGKILL and wait for the exit (as the store sees it: running is what the exit handling changes). */
static int
kill_and_wait(cri_t *c, const char *id, int (*running)(cri_t *, const char *), berth_error_t **err)
{
    cri_exit_waiter_t *w = cri_exit_wait_register(c, id, NULL);
    if (!running(c, id)) {
        cri_exit_wait_cancel(w);
        return 0;
    }
    int rc = task_kill(c, id, 9);
    if (rc == 0 && running(c, id)) {
        rc = cri_exit_wait(w, PAUSE_WAIT_MS, NULL, NULL);
        if (rc < 0)
            c->api->error_make(err, rc, "\"%s\": no exit %d ms after SIGKILL", id, PAUSE_WAIT_MS);
    } else if (rc < 0) {
        c->api->error_make(err, rc, "\"%s\": SIGKILL failed", id);
    }
    cri_exit_wait_cancel(w);
    return rc;
}

static int
container_running(cri_t *c, const char *id)
{
    cri_container_t *k = NULL;
    berth_error_t *e = NULL;
    if (cri_container_find(c, id, &k, &e) < 0) {
        c->api->error_free(e);
        return 0;
    }
    pthread_mutex_lock(&c->lock);
    int r = k->state == CRI_CONTAINER_RUNNING;
    pthread_mutex_unlock(&c->lock);
    cri_container_unref(k);
    return r;
}

static int
sandbox_running(cri_t *c, const char *id)
{
    cri_sandbox_t *s = NULL;
    berth_error_t *e = NULL;
    if (cri_sandbox_find(c, id, &s, &e) < 0) {
        c->api->error_free(e);
        return 0;
    }
    pthread_mutex_lock(&c->lock);
    int r = s->pid != 0;
    pthread_mutex_unlock(&c->lock);
    cri_sandbox_unref(s);
    return r;
}

/* ---- the sandbox's rootfs: the pause directory, or a snapshot of sandbox_image ---------------------- */

typedef struct rootfs {
    Containerd__Types__Mount bind, *bindp;
    char *bind_opts[2];
    char dir[PATH_MAX];
    ProtobufCMessage *prepared; /* Snapshots.Prepare's answer: its mounts */
    Containerd__Types__Mount **mounts;
    size_t n_mounts;
    char argv0[512];
    cri_t *c;       /* with a lease: */
    char lease[96]; /* holds the prepared snapshot until the record does (sandbox_lease) */
} rootfs_t;

static void
snapshot_remove(cri_t *c, const char *id)
{
    Containerd__Services__Snapshots__V1__RemoveSnapshotRequest req =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__REMOVE_SNAPSHOT_REQUEST__INIT;
    req.snapshotter = c->cfg.snapshotter;
    req.key = (char *)id;
    berth_error_t *e = NULL;
    if (cri_call(c, CRI_SVC_SNAPSHOTS, "Remove", &req.base, NULL, NULL, NULL, &e) < 0 &&
        e->code != BERTH_ENOTFOUND)
        c->api->log(c->log, BERTH_LOG_WARN, "cri: snapshot \"%s\": %s", id, e->message);
    c->api->error_free(e);
}

/* The image's first word of Entrypoint, else of Cmd: what pause images run. */
static void
image_argv0(const cri_image_t *img, char *out, size_t len)
{
    snprintf(out, len, "/pause");
    json_object *o = json_tokener_parse(img->config_json), *cfg, *v;
    if (o && json_object_object_get_ex(o, "config", &cfg))
        for (int i = 0; i < 2; i++)
            if (json_object_object_get_ex(cfg, i == 0 ? "Entrypoint" : "Cmd", &v) &&
                json_object_is_type(v, json_type_array) && json_object_array_length(v) > 0) {
                snprintf(out, len, "%s", json_object_get_string(json_object_array_get_idx(v, 0)));
                break;
            }
    if (o)
        json_object_put(o);
}

/* The lease the sandbox's snapshot is prepared under: until the record names it, nothing else refers to
 * the snapshot, and a garbage collection in between (one runs after every deletion, such as the pull's own
 * lease's) would remove it under the task being made (its overlay mount, or runc's mkdir of /proc in it,
 * then fails). It expires in an hour, so a crash in between leaves nothing held for good. */
static int
sandbox_lease(cri_t *c, const cri_sandbox_t *s, rootfs_t *rf, berth_error_t **err)
{
    char expire[64];
    time_t t = time(NULL) + 3600;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(expire, sizeof(expire), "%Y-%m-%dT%H:%M:%SZ", &tm);
    Containerd__Services__Leases__V1__CreateRequest__LabelsEntry label =
        CONTAINERD__SERVICES__LEASES__V1__CREATE_REQUEST__LABELS_ENTRY__INIT;
    label.key = "containerd.io/gc.expire";
    label.value = expire;
    Containerd__Services__Leases__V1__CreateRequest__LabelsEntry *labels[] = {&label};
    Containerd__Services__Leases__V1__CreateRequest req =
        CONTAINERD__SERVICES__LEASES__V1__CREATE_REQUEST__INIT;
    snprintf(rf->lease, sizeof(rf->lease), "cri-sandbox-%s", s->id);
    req.id = rf->lease;
    req.labels = labels;
    req.n_labels = 1;
    if (cri_call(c, CRI_SVC_LEASES, "Create", &req.base, NULL, NULL, NULL, err) < 0) {
        rf->lease[0] = '\0';
        return c->api->error_wrap(err, "pod sandbox \"%s\": lease", s->id);
    }
    rf->c = c;
    return 0;
}

static int
image_rootfs(cri_t *c, const cri_sandbox_t *s, rootfs_t *rf, int *snap, berth_error_t **err)
{
    cri_image_t *img = NULL;
    berth_error_t *e = NULL;
    int rc = cri_image_find(c, c->cfg.sandbox_image, &img, &e);
    if (rc == BERTH_ENOTFOUND) { /* pulled once, when a pod first needs it */
        c->api->error_free(e), e = NULL;
        char *id = NULL;
        if ((rc = cri_image_pull(c, c->cfg.sandbox_image, NULL, &id, err)) < 0)
            return c->api->error_wrap(err, "pod sandbox \"%s\": sandbox_image", s->id);
        rc = cri_image_find(c, id, &img, &e);
        free(id);
    }
    if (rc < 0) {
        *err = e;
        return c->api->error_wrap(err, "pod sandbox \"%s\": sandbox_image", s->id);
    }
    image_argv0(img, rf->argv0, sizeof(rf->argv0));
    if (sandbox_lease(c, s, rf, err) < 0) {
        cri_image_free(img);
        return -1;
    }
    Containerd__Services__Snapshots__V1__PrepareSnapshotRequest req =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__PREPARE_SNAPSHOT_REQUEST__INIT;
    req.snapshotter = c->cfg.snapshotter;
    req.key = (char *)s->id;
    req.parent = img->chain_id;
    rc = cri_call(c, CRI_SVC_SNAPSHOTS, "Prepare", &req.base,
                  &containerd__services__snapshots__v1__prepare_snapshot_response__descriptor,
                  &rf->prepared, rf->lease, err);
    cri_image_free(img);
    if (rc < 0)
        return c->api->error_wrap(err, "pod sandbox \"%s\": snapshot of %s", s->id,
                                  c->cfg.sandbox_image);
    *snap = 1;
    Containerd__Services__Snapshots__V1__PrepareSnapshotResponse *r = (void *)rf->prepared;
    rf->mounts = r->mounts;
    rf->n_mounts = r->n_mounts;
    return 0;
}

static int
sandbox_rootfs(cri_t *c, const cri_sandbox_t *s, rootfs_t *rf, int *snap, berth_error_t **err)
{
    memset(rf, 0, sizeof(*rf));
    if (c->cfg.sandbox_image[0])
        return image_rootfs(c, s, rf, snap, err);
    if (pause_rootfs(c, rf->dir, sizeof(rf->dir), err) < 0)
        return -1;
    snprintf(rf->argv0, sizeof(rf->argv0), "/pause");
    containerd__types__mount__init(&rf->bind);
    rf->bind_opts[0] = "rbind";
    rf->bind_opts[1] = "ro";
    rf->bind.type = "bind";
    rf->bind.source = rf->dir;
    rf->bind.options = rf->bind_opts;
    rf->bind.n_options = 2;
    rf->bindp = &rf->bind;
    rf->mounts = &rf->bindp;
    rf->n_mounts = 1;
    return 0;
}

/* After the task was made (the record holds the snapshot then), or on a failure (run_undo removes it). */
static void
rootfs_release(rootfs_t *rf)
{
    if (rf->prepared)
        protobuf_c_message_free_unpacked(rf->prepared, NULL);
    rf->prepared = NULL;
    if (rf->lease[0]) {
        Containerd__Services__Leases__V1__DeleteRequest req =
            CONTAINERD__SERVICES__LEASES__V1__DELETE_REQUEST__INIT;
        req.id = rf->lease;
        berth_error_t *e = NULL;
        if (cri_call(rf->c, CRI_SVC_LEASES, "Delete", &req.base, NULL, NULL, NULL, &e) < 0)
            rf->c->api->log(rf->c->log, BERTH_LOG_WARN, "cri: lease \"%s\": %s", rf->lease,
                            e->message);
        rf->c->api->error_free(e);
        rf->lease[0] = '\0';
    }
}

/* ---- RunPodSandbox ------------------------------------------------------------------------------------ */

typedef struct run_state {
    int reserved, net, files, snapshot, record, task;
} run_state_t;

static void
run_undo(cri_t *c, cri_sandbox_t *s, const run_state_t *rs)
{
    berth_error_t *e = NULL;
    if (rs->task) {
        task_kill(c, s->id, 9);
        task_delete_stopped(c, s->id, NULL);
    }
    if (rs->record && cri_record_delete(c, s->id, &e) < 0)
        c->api->error_free(e), e = NULL;
    if (rs->snapshot)
        snapshot_remove(c, s->id);
    if (rs->net)
        network_teardown(c, s->id);
    if (rs->files) {
        char dir[PATH_MAX];
        sandbox_dir(c, s->id, dir, sizeof(dir));
        rm_rf_dir(dir);
    }
    if (rs->reserved)
        cri_store_release_name(c, s->name);
}

static int
run_sandbox(cri_t *c, cri_sandbox_t *s, run_state_t *rs, berth_error_t **err)
{
    const Runtime__V1__PodSandboxConfig *cfg = s->config;
    char shm[PATH_MAX + 8];
    rs->files = 1; /* <state>/sandboxes/<id>: the shm mount, the host-network pod's files */
    if (pod_shm(c, s, shm, sizeof(shm), err) < 0)
        return -1;
    if (host_network(cfg)) {
        if (host_files(c, s, err) < 0)
            return -1;
    } else {
        if (network_setup(c, s, err) < 0)
            return -1;
        rs->net = 1;
    }
    rootfs_t rf;
    if (sandbox_rootfs(c, s, &rf, &rs->snapshot, err) < 0) {
        rootfs_release(&rf);
        return -1;
    }
    char *cg = cgroup_path_for(c, cfg, s->id);
    free(s->cgroup_parent);
    s->cgroup_parent =
        strdup(cfg->linux && cfg->linux->cgroup_parent ? cfg->linux->cgroup_parent : "");
    cri_sandbox_spec_opts_t o = {
        .id = s->id,
        .netns_path = s->netns_path,
        .pause_argv0 = rf.argv0,
        .cgroup_path = cg,
        .resolv_path = s->resolv_path[0] ? s->resolv_path : NULL,
        .hosts_path = s->hosts_path[0] ? s->hosts_path : NULL,
        .hostname_path = s->hostname_path[0] ? s->hostname_path : NULL,
        .seccomp_profile_root = c->cfg.root,
        .shm_path = shm[0] ? shm : NULL,
        .image_name = c->cfg.sandbox_image[0] ? c->cfg.sandbox_image : NULL,
    };
    char *spec = NULL, why[512] = "";
    int rc = cri_spec_sandbox(cfg, &o, &spec, why, sizeof(why));
    free(cg);
    if (rc < 0) {
        rootfs_release(&rf);
        return c->api->error_make(err, rc, "pod sandbox \"%s\": spec: %s", s->id, why);
    }
    spec = restrict_oom_score_adj(spec);
    c->api->log(c->log, BERTH_LOG_DEBUG, "cri: pod sandbox %s spec %s", s->id, spec);
    rc = cri_sandbox_record_create(c, s, spec, c->cfg.snapshotter, rs->snapshot ? s->id : NULL,
                                   c->cfg.sandbox_image, err);
    free(spec);
    if (rc < 0) {
        rootfs_release(&rf);
        return c->api->error_wrap(err, "pod sandbox \"%s\"", s->id);
    }
    rs->record = 1;
    uint32_t pid = 0;
    rs->task = 1;
    rc = task_create_start(c, s->id, rf.mounts, rf.n_mounts, &pid, err);
    rootfs_release(&rf);
    if (rc < 0)
        return c->api->error_wrap(err, "pod sandbox \"%s\": pause", s->id);
    pthread_mutex_lock(&c->lock);
    s->pid = pid;
    s->state = CRI_SANDBOX_READY;
    pthread_mutex_unlock(&c->lock);
    if (cri_sandbox_status_save(c, s, err) < 0)
        return -1;
    return 0;
}

int
cri_rpc_RunPodSandbox(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                      uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__RunPodSandboxRequest *q =
        runtime__v1__run_pod_sandbox_request__unpack(NULL, req_len, req);
    if (q == NULL)
        return c->api->error_make(err, BERTH_EINVAL, "RunPodSandbox: the request does not unpack");
    Runtime__V1__PodSandboxConfig *cfg = q->config;
    if (cfg == NULL || cfg->metadata == NULL || !cfg->metadata->name || !*cfg->metadata->name ||
        !cfg->metadata->namespace_ || !*cfg->metadata->namespace_ || !cfg->metadata->uid ||
        !*cfg->metadata->uid) {
        runtime__v1__run_pod_sandbox_request__free_unpacked(q, NULL);
        return c->api->error_make(err, BERTH_EINVAL,
                                  "RunPodSandbox: metadata name, namespace and uid are required");
    }
    cri_sandbox_t *s = cri_sandbox_new();
    q->config = NULL; /* the sandbox owns it now */
    s->config = cfg;
    cri_new_id(s->id);
    free(s->name);
    if (asprintf(&s->name, "%s_%s_%s_%u", cfg->metadata->name, cfg->metadata->namespace_,
                 cfg->metadata->uid, cfg->metadata->attempt) < 0)
        s->name = strdup("");
    free(s->runtime_handler);
    s->runtime_handler = strdup(q->runtime_handler ? q->runtime_handler : "");
    runtime__v1__run_pod_sandbox_request__free_unpacked(q, NULL);
    s->created_ns = cri_now_ns();
    run_state_t rs = {0};
    /* a pause that ends before the pod is in the store: its exit finds no pod, this waiter hears it */
    cri_exit_waiter_t *w = cri_exit_wait_register(c, s->id, "");
    int rc = cri_store_reserve_name(c, s->name, s->id, err);
    if (rc == 0) {
        rs.reserved = 1;
        rc = run_sandbox(c, s, &rs, err);
    }
    if (rc == 0)
        rc = cri_store_sandbox_add(c, s, err);
    if (rc < 0) {
        cri_exit_wait_cancel(w);
        run_undo(c, s, &rs);
        cri_sandbox_unref(s);
        return rc;
    }
    cri_store_release_name(c, s->name);
    if (cri_exit_wait(w, 0, NULL, NULL) == 0) {
        pthread_mutex_lock(&c->lock);
        s->state = CRI_SANDBOX_NOTREADY;
        s->pid = 0;
        pthread_mutex_unlock(&c->lock);
        berth_error_t *e = NULL;
        if (cri_sandbox_status_save(c, s, &e) < 0)
            c->api->error_free(e);
    }
    cri_exit_wait_cancel(w);
    c->api->log(c->log, BERTH_LOG_INFO, "cri: pod sandbox %s (%s) ready, pid %u, ip %s", s->id,
                s->name, s->pid, s->ip[0] ? s->ip : "(host network)");
    cri_events_announce(c, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_CREATED_EVENT, s->id,
                        s->id);
    cri_events_announce(c, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT, s->id,
                        s->id);
    Runtime__V1__RunPodSandboxResponse r = RUNTIME__V1__RUN_POD_SANDBOX_RESPONSE__INIT;
    r.pod_sandbox_id = s->id;
    rc = cri_reply(c, &r.base, resp, resp_len);
    cri_sandbox_unref(s);
    return rc;
}

/* One Stop or Remove of a pod at a time (kubelet may send both at once); other pods go on. */
static pthread_mutex_t busy_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t busy_cond = PTHREAD_COND_INITIALIZER;
static char (*busy)[65];
static size_t n_busy;

static void
pod_lock(const char *id)
{
    pthread_mutex_lock(&busy_lock);
    for (;;) {
        size_t i = 0;
        while (i < n_busy && strcmp(busy[i], id) != 0)
            i++;
        if (i == n_busy)
            break;
        pthread_cond_wait(&busy_cond, &busy_lock);
    }
    busy = realloc(busy, (n_busy + 1) * sizeof(*busy));
    snprintf(busy[n_busy++], 65, "%s", id);
    pthread_mutex_unlock(&busy_lock);
}

/* Still in the store once the lock is ours (a concurrent Remove may have taken it away)? */
static int
pod_still_there(cri_t *c, const char *id)
{
    cri_sandbox_t *s = NULL;
    berth_error_t *e = NULL;
    int rc = cri_sandbox_find(c, id, &s, &e);
    c->api->error_free(e);
    cri_sandbox_unref(s);
    return rc == 0;
}

static void
pod_unlock(const char *id)
{
    pthread_mutex_lock(&busy_lock);
    for (size_t i = 0; i < n_busy; i++)
        if (strcmp(busy[i], id) == 0) {
            memcpy(busy[i], busy[--n_busy], 65);
            break;
        }
    if (n_busy == 0) {
        free(busy);
        busy = NULL;
    }
    pthread_cond_broadcast(&busy_cond);
    pthread_mutex_unlock(&busy_lock);
}

/* ---- StopPodSandbox ----------------------------------------------------------------------------------- */

typedef struct ids {
    const char *sandbox_id;
    char (*v)[65];
    size_t n;
} ids_t;

static int
collect_pod_ctr(void *user, cri_container_t *k)
{
    ids_t *ids = user;
    if (strcmp(k->sandbox_id, ids->sandbox_id) == 0) {
        ids->v = realloc(ids->v, (ids->n + 1) * sizeof(*ids->v));
        memcpy(ids->v[ids->n++], k->id, 65);
    }
    return 0;
}

static int
stop_sandbox(cri_t *c, cri_sandbox_t *s, berth_error_t **err)
{
    ids_t ids = {.sandbox_id = s->id};
    cri_container_foreach(c, collect_pod_ctr, &ids);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < ids.n; i++)
        rc = kill_and_wait(c, ids.v[i], container_running, err);
    free(ids.v);
    if (rc < 0)
        return c->api->error_wrap(err, "pod sandbox \"%s\": stopping its containers", s->id);
    if (kill_and_wait(c, s->id, sandbox_running, err) < 0)
        return c->api->error_wrap(err, "pod sandbox \"%s\": stopping pause", s->id);
    if (task_delete_stopped(c, s->id, err) < 0)
        return c->api->error_wrap(err, "pod sandbox \"%s\": deleting the pause task", s->id);
    char dir[PATH_MAX + 8];
    sandbox_dir(c, s->id, dir, sizeof(dir));
    strcat(dir, "/shm");
    while (umount2(dir, MNT_DETACH) == 0) /* no process of the pod uses it any more */
        ;
    if (s->netns_path[0])
        network_teardown(c, s->id);
    pthread_mutex_lock(&c->lock);
    int was = s->state;
    s->state = CRI_SANDBOX_NOTREADY;
    s->pid = 0;
    pthread_mutex_unlock(&c->lock);
    if (cri_sandbox_status_save(c, s, err) < 0)
        return -1;
    if (was == CRI_SANDBOX_READY)
        cri_events_announce(c, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT, s->id,
                            s->id);
    return 0;
}

int
cri_rpc_StopPodSandbox(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                       uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__StopPodSandboxRequest *q =
        runtime__v1__stop_pod_sandbox_request__unpack(NULL, req_len, req);
    if (q == NULL)
        return c->api->error_make(err, BERTH_EINVAL, "StopPodSandbox: the request does not unpack");
    cri_sandbox_t *s = NULL;
    berth_error_t *nf = NULL;
    int rc = cri_sandbox_find(c, q->pod_sandbox_id, &s, &nf);
    runtime__v1__stop_pod_sandbox_request__free_unpacked(q, NULL);
    if (rc == BERTH_ENOTFOUND) { /* idempotent: a pod already gone is stopped (critest checks it) */
        c->api->error_free(nf);
        rc = 0;
    } else if (rc < 0) {
        *err = nf;
    } else {
        pod_lock(s->id);
        rc = pod_still_there(c, s->id) ? stop_sandbox(c, s, err) : 0;
        pod_unlock(s->id);
        cri_sandbox_unref(s);
    }
    if (rc < 0)
        return rc;
    Runtime__V1__StopPodSandboxResponse r = RUNTIME__V1__STOP_POD_SANDBOX_RESPONSE__INIT;
    return cri_reply(c, &r.base, resp, resp_len);
}

/* ---- RemovePodSandbox --------------------------------------------------------------------------------- */

/* Through container.c's RemoveContainer (logs, snapshot, its own records); the minimum without it. */
static int
remove_container(cri_t *c, const char *id, berth_error_t **err)
{
    Runtime__V1__RemoveContainerRequest q = RUNTIME__V1__REMOVE_CONTAINER_REQUEST__INIT;
    q.container_id = (char *)id;
    size_t len = runtime__v1__remove_container_request__get_packed_size(&q);
    uint8_t *buf = malloc(len ? len : 1);
    runtime__v1__remove_container_request__pack(&q, buf);
    uint8_t *out = NULL;
    size_t out_len = 0;
    berth_error_t *e = NULL;
    int rc = cri_rpc_RemoveContainer(c, CRI_NAMESPACE, buf, len, &out, &out_len, &e);
    free(buf);
    c->api->free(out);
    if (rc != BERTH_ENOTIMPL) {
        if (rc < 0 && rc != BERTH_ENOTFOUND) {
            *err = e;
            return rc;
        }
        c->api->error_free(e);
        return 0;
    }
    c->api->error_free(e);
    if (cri_record_delete(c, id, err) < 0 || task_delete(c, id, err) < 0)
        return -1;
    cri_store_container_remove(c, id);
    return 0;
}

int
cri_rpc_RemovePodSandbox(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                         uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__RemovePodSandboxRequest *q =
        runtime__v1__remove_pod_sandbox_request__unpack(NULL, req_len, req);
    if (q == NULL)
        return c->api->error_make(err, BERTH_EINVAL,
                                  "RemovePodSandbox: the request does not unpack");
    cri_sandbox_t *s = NULL;
    berth_error_t *nf = NULL;
    int rc = cri_sandbox_find(c, q->pod_sandbox_id, &s, &nf);
    runtime__v1__remove_pod_sandbox_request__free_unpacked(q, NULL);
    Runtime__V1__RemovePodSandboxResponse r = RUNTIME__V1__REMOVE_POD_SANDBOX_RESPONSE__INIT;
    if (rc == BERTH_ENOTFOUND) { /* already gone: success, as CRI asks */
        c->api->error_free(nf);
        return cri_reply(c, &r.base, resp, resp_len);
    }
    if (rc < 0) {
        *err = nf;
        return rc;
    }
    pod_lock(s->id);
    if (!pod_still_there(c, s->id)) { /* removed meanwhile */
        pod_unlock(s->id);
        cri_sandbox_unref(s);
        return cri_reply(c, &r.base, resp, resp_len);
    }
    rc = stop_sandbox(c, s, err); /* kubelet stops first; crictl rmp -f relies on this */
    ids_t ids = {.sandbox_id = s->id};
    if (rc == 0)
        cri_container_foreach(c, collect_pod_ctr, &ids);
    for (size_t i = 0; rc == 0 && i < ids.n; i++)
        rc = remove_container(c, ids.v[i], err);
    free(ids.v);
    if (rc == 0 && (rc = cri_record_delete(c, s->id, err)) == 0) {
        /* the record is gone: what remains is garbage at worst */
        task_delete(c, s->id, NULL);
        snapshot_remove(c, s->id); /* with sandbox_image */
        if (s->netns_path[0])
            network_teardown(c, s->id);
        char dir[PATH_MAX];
        sandbox_dir(c, s->id, dir, sizeof(dir));
        rm_rf_dir(dir);
        cri_store_sandbox_remove(c, s->id);
        cri_events_announce(c, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT, s->id,
                            s->id);
    }
    pod_unlock(s->id);
    cri_sandbox_unref(s);
    if (rc < 0)
        return c->api->error_wrap(err, "RemovePodSandbox");
    return cri_reply(c, &r.base, resp, resp_len);
}

/* ---- PodSandboxStatus and ListPodSandbox -------------------------------------------------------------- */

void
cri_pod_status_fill(cri_t *c, cri_sandbox_t *s, cri_pod_status_buf_t *b)
{
    memset(b, 0, sizeof(*b));
    Runtime__V1__PodSandboxStatus *st = &b->st;
    runtime__v1__pod_sandbox_status__init(st);
    runtime__v1__pod_sandbox_network_status__init(&b->net);
    runtime__v1__linux_pod_sandbox_status__init(&b->lx);
    runtime__v1__namespace__init(&b->ns);
    runtime__v1__namespace_option__init(&b->nso);
    const Runtime__V1__PodSandboxConfig *cfg = s->config;
    st->id = s->id;
    st->metadata = cfg->metadata;
    st->created_at = s->created_ns;
    st->runtime_handler = s->runtime_handler;
    /* map entries share one layout: the config's pack as the status's */
    st->labels = (Runtime__V1__PodSandboxStatus__LabelsEntry **)cfg->labels;
    st->n_labels = cfg->n_labels;
    st->annotations = (Runtime__V1__PodSandboxStatus__AnnotationsEntry **)cfg->annotations;
    st->n_annotations = cfg->n_annotations;
    pthread_mutex_lock(&c->lock);
    st->state = s->state == CRI_SANDBOX_READY ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
                                              : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
    pthread_mutex_unlock(&c->lock);
    size_t n = 0;
    while (s->extra_ips && s->extra_ips[n])
        n++;
    b->ips = calloc(n + 1, sizeof(*b->ips));
    b->ipp = calloc(n + 1, sizeof(*b->ipp));
    for (size_t i = 0; i < n; i++) {
        runtime__v1__pod_ip__init(&b->ips[i]);
        b->ips[i].ip = s->extra_ips[i];
        b->ipp[i] = &b->ips[i];
    }
    b->net.ip = s->ip; /* "" for host network: kubelet takes the node's */
    b->net.additional_ips = b->ipp;
    b->net.n_additional_ips = n;
    st->network = &b->net;
    b->nso.network = ns_mode(cfg, 'n');
    b->nso.pid = ns_mode(cfg, 'p');
    b->nso.ipc = ns_mode(cfg, 'i');
    const Runtime__V1__NamespaceOption *o = cfg->linux && cfg->linux->security_context
                                                ? cfg->linux->security_context->namespace_options
                                                : NULL;
    b->nso.target_id = o && o->target_id ? o->target_id : "";
    b->ns.options = &b->nso;
    b->lx.namespaces = &b->ns;
    st->linux = &b->lx;
}

void
cri_pod_status_release(cri_pod_status_buf_t *b)
{
    free(b->ips);
    free(b->ipp);
}

static char *
verbose_info(cri_t *c, cri_sandbox_t *s)
{
    json_object *o = json_object_new_object();
    pthread_mutex_lock(&c->lock);
    json_object_object_add(o, "pid", json_object_new_int64(s->pid));
    json_object_object_add(o, "processStatus",
                           json_object_new_string(s->pid ? "running" : "stopped"));
    pthread_mutex_unlock(&c->lock);
    json_object_object_add(o, "netNamespacePath", json_object_new_string(s->netns_path));
    json_object_object_add(o, "image",
                           json_object_new_string(c->cfg.sandbox_image[0] ? c->cfg.sandbox_image
                                                                          : "(built-in pause)"));
    json_object_object_add(o, "runtimeHandler", json_object_new_string(s->runtime_handler));
    json_object_object_add(o, "runtimeType", json_object_new_string(CRI_RUNTIME_NAME));
    json_object_object_add(o, "cgroupParent", json_object_new_string(s->cgroup_parent));
    json_object_object_add(o, "resolvPath", json_object_new_string(s->resolv_path));
    json_object_object_add(o, "hostsPath", json_object_new_string(s->hosts_path));
    json_object_object_add(o, "hostnamePath", json_object_new_string(s->hostname_path));
    json_object_object_add(o, "name", json_object_new_string(s->name));
    char *out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return out;
}

int
cri_rpc_PodSandboxStatus(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                         uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__PodSandboxStatusRequest *q =
        runtime__v1__pod_sandbox_status_request__unpack(NULL, req_len, req);
    if (q == NULL)
        return c->api->error_make(err, BERTH_EINVAL,
                                  "PodSandboxStatus: the request does not unpack");
    cri_sandbox_t *s = NULL;
    int rc = cri_sandbox_find(c, q->pod_sandbox_id, &s, err);
    int verbose = q->verbose;
    runtime__v1__pod_sandbox_status_request__free_unpacked(q, NULL);
    if (rc < 0)
        return rc;
    cri_pod_status_buf_t b;
    cri_pod_status_fill(c, s, &b);
    Runtime__V1__PodSandboxStatusResponse r = RUNTIME__V1__POD_SANDBOX_STATUS_RESPONSE__INIT;
    r.status = &b.st;
    r.timestamp = cri_now_ns();
    Runtime__V1__PodSandboxStatusResponse__InfoEntry e =
        RUNTIME__V1__POD_SANDBOX_STATUS_RESPONSE__INFO_ENTRY__INIT;
    Runtime__V1__PodSandboxStatusResponse__InfoEntry *ep = &e;
    char *info = NULL;
    if (verbose) {
        info = verbose_info(c, s);
        e.key = "info";
        e.value = info;
        r.info = &ep;
        r.n_info = 1;
    }
    rc = cri_reply(c, &r.base, resp, resp_len);
    free(info);
    cri_pod_status_release(&b);
    cri_sandbox_unref(s);
    return rc;
}

typedef struct list_ctx {
    cri_t *c;
    const Runtime__V1__PodSandboxFilter *f;
    Runtime__V1__PodSandbox *items;
    Runtime__V1__PodSandbox **ptrs;
    cri_sandbox_t **refs;
    size_t n, cap;
} list_ctx_t;

static int
labels_match(Runtime__V1__PodSandboxConfig__LabelsEntry **labels, size_t n,
             Runtime__V1__PodSandboxFilter__LabelSelectorEntry **sel, size_t n_sel)
{
    for (size_t i = 0; i < n_sel; i++) {
        int hit = 0;
        for (size_t j = 0; !hit && j < n; j++)
            hit = strcmp(labels[j]->key, sel[i]->key) == 0 &&
                  strcmp(labels[j]->value, sel[i]->value) == 0;
        if (!hit)
            return 0;
    }
    return 1;
}

static int
list_one(void *user, cri_sandbox_t *s)
{
    list_ctx_t *l = user;
    const Runtime__V1__PodSandboxFilter *f = l->f;
    pthread_mutex_lock(&l->c->lock);
    Runtime__V1__PodSandboxState state = s->state == CRI_SANDBOX_READY
                                             ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
                                             : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
    pthread_mutex_unlock(&l->c->lock);
    if (f) {
        if (f->id && *f->id && strncmp(s->id, f->id, strlen(f->id)) != 0)
            return 0;
        if (f->state && f->state->state != state)
            return 0;
        if (!labels_match(s->config->labels, s->config->n_labels, f->label_selector,
                          f->n_label_selector))
            return 0;
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->items = realloc(l->items, l->cap * sizeof(*l->items));
        l->refs = realloc(l->refs, l->cap * sizeof(*l->refs));
    }
    Runtime__V1__PodSandbox *p = &l->items[l->n];
    runtime__v1__pod_sandbox__init(p);
    p->id = s->id;
    p->metadata = s->config->metadata;
    p->state = state;
    p->created_at = s->created_ns;
    p->labels = (Runtime__V1__PodSandbox__LabelsEntry **)s->config->labels;
    p->n_labels = s->config->n_labels;
    p->annotations = (Runtime__V1__PodSandbox__AnnotationsEntry **)s->config->annotations;
    p->n_annotations = s->config->n_annotations;
    p->runtime_handler = s->runtime_handler;
    __atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
    l->refs[l->n++] = s;
    return 0;
}

int
cri_rpc_ListPodSandbox(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                       uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__ListPodSandboxRequest *q =
        runtime__v1__list_pod_sandbox_request__unpack(NULL, req_len, req);
    if (q == NULL)
        return c->api->error_make(err, BERTH_EINVAL, "ListPodSandbox: the request does not unpack");
    list_ctx_t l = {.c = c, .f = q->filter};
    cri_sandbox_foreach(c, list_one, &l);
    l.ptrs = calloc(l.n + 1, sizeof(*l.ptrs));
    for (size_t i = 0; i < l.n; i++)
        l.ptrs[i] = &l.items[i];
    Runtime__V1__ListPodSandboxResponse r = RUNTIME__V1__LIST_POD_SANDBOX_RESPONSE__INIT;
    r.items = l.ptrs;
    r.n_items = l.n;
    int rc = cri_reply(c, &r.base, resp, resp_len);
    for (size_t i = 0; i < l.n; i++)
        cri_sandbox_unref(l.refs[i]);
    free(l.items);
    free(l.ptrs);
    free(l.refs);
    runtime__v1__list_pod_sandbox_request__free_unpacked(q, NULL);
    return rc;
}
