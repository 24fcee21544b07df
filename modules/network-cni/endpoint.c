/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Endpoints: one container's attachment to its networks. The record <state>/endpoints/<ns>/<id>.json is
 * an intent journal: written before anything is made, extended before each network's ADD and after each
 * plugin's result, and removed last at teardown. So a crash anywhere leaves a record that a later
 * teardown (the runtime's start-up reconciliation) finishes, DEL being idempotent; once the record is gone
 * nothing is torn down again. The network namespace is made by a child that unshares CLONE_NEWNET and
 * bind-mounts its /proc/self/ns/net onto <state>/netns/<ns>/<id> (that dir a shared mount point, as ip
 * netns makes /run/netns). Operations on one endpoint are serialized; different endpoints run in parallel.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

#define LOG(n, lvl, ...) (n)->api->log((n)->log, lvl, __VA_ARGS__)
#define MAX_ADDRS 16

struct busy_key {
    char *key;
    busy_key_t *next;
};

/* ---- one endpoint at a time per (ns, id) --------------------------------------------------------- */

static int
is_busy(net_t *n, const char *key)
{
    for (busy_key_t *b = n->busy; b; b = b->next)
        if (strcmp(b->key, key) == 0)
            return 1;
    return 0;
}

static void
ep_lock(net_t *n, const char *key)
{
    pthread_mutex_lock(&n->busy_mu);
    while (is_busy(n, key))
        pthread_cond_wait(&n->busy_cv, &n->busy_mu);
    busy_key_t *b = calloc(1, sizeof(*b));
    b->key = strdup(key);
    b->next = n->busy;
    n->busy = b;
    pthread_mutex_unlock(&n->busy_mu);
}

static void
ep_unlock(net_t *n, const char *key)
{
    pthread_mutex_lock(&n->busy_mu);
    for (busy_key_t **p = &n->busy; *p; p = &(*p)->next)
        if (strcmp((*p)->key, key) == 0) {
            busy_key_t *b = *p;
            *p = b->next;
            free(b->key);
            free(b);
            break;
        }
    pthread_cond_broadcast(&n->busy_cv);
    pthread_mutex_unlock(&n->busy_mu);
}

/* ---- paths and the record ------------------------------------------------------------------------ */

/* containerd identifiers: no '/', no leading '.', at most 255 bytes. */
static int
valid_ident(const char *s)
{
    if (!s || !*s || strlen(s) > 255 || s[0] == '.' || s[0] == '-')
        return 0;
    for (const char *p = s; *p; p++)
        if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') && !(*p >= '0' && *p <= '9') &&
            !strchr("_.-", *p))
            return 0;
    return 1;
}

/* What /etc/hostname and /etc/hosts can hold: RFC 1123 labels, at most 64 bytes (HOST_NAME_MAX). */
static int
valid_hostname(const char *s)
{
    size_t n = strlen(s);
    if (n > 64 || s[0] == '-' || s[0] == '.')
        return 0;
    for (const char *p = s; *p; p++)
        if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') && !(*p >= '0' && *p <= '9') &&
            *p != '-' && *p != '.')
            return 0;
    return 1;
}

typedef struct paths {
    char rec[4096], files[4096], netns[4096], nsdir[4096], netns_nsdir[4096];
    char key[600]; /* "<ns>/<id>": what ep_lock serializes on */
} paths_t;

static void
paths_of(net_t *n, const char *ns, const char *id, paths_t *p)
{
    snprintf(p->nsdir, sizeof(p->nsdir), "%s/%s", n->ep_dir, ns);
    snprintf(p->rec, sizeof(p->rec), "%s/%s/%s.json", n->ep_dir, ns, id);
    snprintf(p->files, sizeof(p->files), "%s/%s/%s.d", n->ep_dir, ns, id);
    snprintf(p->netns_nsdir, sizeof(p->netns_nsdir), "%s/%s", n->netns_dir, ns);
    snprintf(p->netns, sizeof(p->netns), "%s/%s/%s", n->netns_dir, ns, id);
    snprintf(p->key, sizeof(p->key), "%s/%s", ns, id);
}

/* The paths of an endpoint named by the caller: InvalidArgument for a name that is not an identifier. */
static int
ep_paths(net_t *n, const char *ns, const char *id, paths_t *p, berth_error_t **err)
{
    if (!valid_ident(ns) || !valid_ident(id))
        return n->api->error_make(err, BERTH_EINVAL, "endpoint \"%s/%s\": invalid namespace or id",
                                  ns ? ns : "", id ? id : "");
    paths_of(n, ns, id, p);
    return 0;
}

int
net_write_atomic(const char *path, const char *text, unsigned mode, int sync)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text);
    int e = write(fd, text, len) == (ssize_t)len ? 0 : (errno ? errno : EIO);
    if (e == 0 && sync && fsync(fd) < 0)
        e = errno;
    close(fd);
    if (e == 0 && rename(tmp, path) < 0)
        e = errno;
    if (e)
        unlink(tmp);
    return -e;
}

static int
record_write(net_t *n, const paths_t *p, json_object *rec, berth_error_t **err)
{
    int rc = net_write_atomic(p->rec,
                              json_object_to_json_string_ext(
                                  rec, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                              0644, 1);
    if (rc < 0)
        return n->api->error_make(err, BERTH_EIO, "endpoint record %s: %s", p->rec, strerror(-rc));
    return 0;
}

static json_object *
record_read(const char *path)
{
    json_object *o = json_object_from_file(path);
    if (o && !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static const char *
sget(json_object *o, const char *key)
{
    json_object *v;
    return o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : "";
}

static json_object *
oget(json_object *o, const char *key)
{
    json_object *v;
    return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* ---- the network namespace ----------------------------------------------------------------------- */

int
ep_init_dirs(net_t *n, berth_error_t **err)
{
    if (n->api->mkdir_all(n->ep_dir, 0700, err) < 0 ||
        n->api->mkdir_all(n->netns_dir, 0700, err) < 0)
        return (*err)->code;
    return 0;
}

static int
is_netns(const char *path)
{
    struct statfs sf;
    return statfs(path, &sf) == 0 && sf.f_type == NSFS_MAGIC;
}

/* ip netns: the dir must be a shared mount point, so an unmount here reaches mount namespaces made after
 * the mount (a namespace is freed only when no mount holds it). Made when the first namespace is, so a
 * berthd without networked containers mounts nothing. */
static int
netns_dir_share(net_t *n, berth_error_t **err)
{
    pthread_mutex_lock(&n->busy_mu);
    int rc = 0;
    if (!n->netns_shared && mount("", n->netns_dir, "none", MS_SHARED | MS_REC, NULL) < 0 &&
        (errno != EINVAL || mount(n->netns_dir, n->netns_dir, "none", MS_BIND | MS_REC, NULL) < 0 ||
         mount("", n->netns_dir, "none", MS_SHARED | MS_REC, NULL) < 0))
        rc = n->api->error_make(err, BERTH_EIO, "netns dir %s: mount: %s", n->netns_dir,
                                strerror(errno));
    n->netns_shared = rc == 0;
    pthread_mutex_unlock(&n->busy_mu);
    return rc;
}

static int
holds_netns(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct stat st;
        found = lstat(path, &st) == 0 && (S_ISDIR(st.st_mode) ? holds_netns(path) : is_netns(path));
    }
    closedir(d);
    return found;
}

void
ep_fini_dirs(net_t *n)
{
    /* the shared mount goes with the last namespace; with live endpoints it stays for the next berthd.
     * It may be an earlier berthd's (this one made no namespace): unmounted all the same (EINVAL when the
     * dir is no mount point) */
    if (!holds_netns(n->netns_dir))
        umount2(n->netns_dir, MNT_DETACH);
}

static int
netns_create(net_t *n, const paths_t *p, berth_error_t **err)
{
    if (netns_dir_share(n, err) < 0)
        return (*err)->code;
    if (mkdir(p->netns_nsdir, 0700) < 0 && errno != EEXIST)
        return n->api->error_make(err, BERTH_EIO, "mkdir %s: %s", p->netns_nsdir, strerror(errno));
    if (is_netns(p->netns))
        umount2(p->netns, MNT_DETACH); /* a crash's leftover of this very endpoint */
    int fd = open(p->netns, O_RDONLY | O_CREAT | O_CLOEXEC, 0444);
    if (fd < 0)
        return n->api->error_make(err, BERTH_EIO, "create %s: %s", p->netns, strerror(errno));
    close(fd);
    /* the child only makes syscalls: safe after fork in a threaded process */
    pid_t pid = fork();
    if (pid == 0) {
        if (unshare(CLONE_NEWNET) < 0)
            _exit(1);
        /* lo up here, by ioctl: what the loopback plugin does, without a Go binary's start-up */
        struct ifreq ifr;
        memset(&ifr, 0, sizeof(ifr));
        memcpy(ifr.ifr_name, "lo", 3);
        int sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (sk < 0 || ioctl(sk, SIOCGIFFLAGS, &ifr) < 0)
            _exit(3);
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(sk, SIOCSIFFLAGS, &ifr) < 0)
            _exit(3);
        if (mount("/proc/self/ns/net", p->netns, "none", MS_BIND, NULL) < 0)
            _exit(2);
        _exit(0);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        unlink(p->netns);
        return n->api->error_make(err, BERTH_EIO, "netns %s: %s failed", p->netns,
                                  pid < 0                                 ? "fork"
                                  : WIFEXITED(st) && WEXITSTATUS(st) == 1 ? "unshare(CLONE_NEWNET)"
                                                                          : "bind mount");
    }
    return 0;
}

static void
netns_remove(net_t *n, const char *path)
{
    if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
        LOG(n, BERTH_LOG_WARN, "umount %s: %s", path, strerror(errno));
    if (unlink(path) < 0 && errno != ENOENT)
        LOG(n, BERTH_LOG_WARN, "remove %s: %s", path, strerror(errno));
}

/* ---- running plugins ----------------------------------------------------------------------------- */

typedef struct call {
    const char *ns, *id, *netns, *ifname, *args;
} call_t;

static int
plugin_error(net_t *n, const char *type, const char *cmd, const char *net, cni_run_t *r,
             berth_error_t **err)
{
    int code;
    char *msg = NULL;
    if (cni_parse_error(r->out, &code, &msg) == 0 || cni_parse_error(r->errt, &code, &msg) == 0) {
        int rc = n->api->error_make(err, BERTH_EPRECONDITION,
                                    "network \"%s\": cni plugin %s %s: code %d: %s", net, type, cmd,
                                    code, msg ? msg : "");
        free(msg);
        return rc;
    }
    /* no error object: the plugin's stderr (its last line) says what happened */
    size_t len = r->err_len;
    while (len && (r->errt[len - 1] == '\n' || r->errt[len - 1] == ' '))
        len--;
    return n->api->error_make(err, BERTH_EPRECONDITION,
                              "network \"%s\": cni plugin %s %s: exit status %d: %.*s", net, type,
                              cmd, r->exit_status, (int)(len > 512 ? 512 : len),
                              r->errt + (len > 512 ? len - 512 : 0));
}

/* One plugin of a chain. For ADD, *result gets its parsed result. */
static int
run_one(net_t *n, const char *cmd, const call_t *c, json_object *conflist, size_t i,
        json_object *prev, json_object *rt, json_object **result, berth_error_t **err)
{
    json_object *plugins = oget(conflist, "plugins");
    json_object *pl = json_object_array_get_idx(plugins, i);
    const char *type = sget(pl, "type"), *net = sget(conflist, "name");
    char path[4096];
    if (net_plugin_path(n, type, path, sizeof(path)) < 0)
        return n->api->error_make(err, BERTH_EPRECONDITION,
                                  "network \"%s\": cni plugin \"%s\" not found in %s", net, type,
                                  n->cni_path);
    char *input = cni_plugin_stdin(conflist, i, prev, rt);
    char *env[8];
    int k = 0;
    if (asprintf(&env[k++], "CNI_COMMAND=%s", cmd) < 0 ||
        asprintf(&env[k++], "CNI_CONTAINERID=%s", c->id) < 0 ||
        asprintf(&env[k++], "CNI_NETNS=%s", c->netns) < 0 ||
        asprintf(&env[k++], "CNI_IFNAME=%s", c->ifname) < 0 ||
        asprintf(&env[k++], "CNI_ARGS=%s", c->args ? c->args : "") < 0 ||
        asprintf(&env[k++], "CNI_PATH=%s", n->cni_path) < 0 ||
        asprintf(&env[k++], "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") <
            0)
        abort();
    env[k] = NULL;
    cni_run_t r;
    int rc = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (cni_exec(path, env, input, strlen(input), n->timeout_ms, &r) < 0)
        rc = n->api->error_make(err, BERTH_EIO, "network \"%s\": cni plugin %s: spawn %s: %s", net,
                                type, path, strerror(r.spawn_errno));
    else if (r.timed_out)
        rc = n->api->error_make(err, BERTH_ETIMEDOUT,
                                "network \"%s\": cni plugin %s %s: killed after %d ms", net, type,
                                cmd, n->timeout_ms);
    else if (r.exit_status != 0)
        rc = plugin_error(n, type, cmd, net, &r, err);
    else if (result && strcmp(cmd, "ADD") == 0) {
        *result = json_tokener_parse(r.out);
        if (*result == NULL || !json_object_is_type(*result, json_type_object)) {
            json_object_put(*result);
            *result = NULL;
            rc = n->api->error_make(err, BERTH_EINTERNAL,
                                    "network \"%s\": cni plugin %s ADD: result is not a JSON "
                                    "object",
                                    net, type);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    LOG(n, rc ? BERTH_LOG_INFO : BERTH_LOG_DEBUG, "cni %s %s net=%s ns=%s id=%s if=%s rc=%d ms=%ld",
        cmd, type, net, c->ns, c->id, c->ifname, rc,
        (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
    if (rc == 0 || r.spawn_errno == 0)
        cni_run_free(&r);
    for (int j = 0; j < k; j++)
        free(env[j]);
    free(input);
    return rc;
}

/* CNI VERSION of every plugin of a conflist: each must be found and list the conflist's cniVersion among
 * its supportedVersions (Create checks a network with this before keeping it). */
int
net_check_versions(net_t *n, json_object *conflist, berth_error_t **err)
{
    const char *want = sget(conflist, "cniVersion"), *net = sget(conflist, "name");
    json_object *plugins = oget(conflist, "plugins");
    for (size_t i = 0; plugins && i < json_object_array_length(plugins); i++) {
        const char *type = sget(json_object_array_get_idx(plugins, i), "type");
        char path[4096], input[128];
        if (net_plugin_path(n, type, path, sizeof(path)) < 0)
            return n->api->error_make(err, BERTH_EINVAL,
                                      "network \"%s\": cni plugin \"%s\" not found in %s", net,
                                      type, n->cni_path);
        snprintf(input, sizeof(input), "{\"cniVersion\":\"%s\"}", want);
        char *env[] = {"CNI_COMMAND=VERSION", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
        cni_run_t r;
        if (cni_exec(path, env, input, strlen(input), n->timeout_ms, &r) < 0)
            return n->api->error_make(err, BERTH_EIO, "network \"%s\": cni plugin %s: spawn: %s",
                                      net, type, strerror(r.spawn_errno));
        json_object *v = r.exit_status == 0 && !r.timed_out ? json_tokener_parse(r.out) : NULL;
        json_object *sv = oget(v, "supportedVersions");
        int ok = 0;
        for (size_t j = 0; sv && j < json_object_array_length(sv); j++)
            ok |= strcmp(json_object_get_string(json_object_array_get_idx(sv, j)), want) == 0;
        json_object_put(v);
        cni_run_free(&r);
        if (!ok)
            return n->api->error_make(err, BERTH_EINVAL,
                                      "network \"%s\": cni plugin %s does not support cniVersion "
                                      "%s (CNI VERSION)",
                                      net, type, want);
    }
    return 0;
}

static size_t
n_plugins(json_object *conflist)
{
    json_object *p = oget(conflist, "plugins");
    return p ? json_object_array_length(p) : 0;
}

/* DEL of a network's chain, last plugin first, each with the result recorded for it. All plugins run;
 * the first error is returned. */
static int
chain_del(net_t *n, const call_t *c, json_object *entry, berth_error_t **err)
{
    json_object *conflist = oget(entry, "conflist"), *prev = oget(entry, "result");
    json_object *rt = oget(entry, "runtimeConfig");
    int first = 0;
    for (size_t i = n_plugins(conflist); i-- > 0;) {
        berth_error_t *e = NULL;
        int rc = run_one(n, "DEL", c, conflist, i, prev, rt, NULL, &e);
        if (rc < 0 && first == 0) {
            first = rc;
            *err = e;
        } else if (rc < 0)
            n->api->error_free(e);
    }
    return first;
}

/* ---- teardown ------------------------------------------------------------------------------------ */

static void
remove_files(const paths_t *p)
{
    static const char *const names[] = {"resolv.conf", "hosts", "hostname"};
    char path[4200];
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", p->files, names[i]);
        unlink(path);
    }
    rmdir(p->files);
}

/* Undoes everything a record names; the record goes last, only when every DEL succeeded. */
static int
teardown_record(net_t *n, const paths_t *p, json_object *rec, berth_error_t **err)
{
    const char *netns = is_netns(p->netns) ? p->netns : "";
    json_object *nets = oget(rec, "networks");
    int first = 0;
    for (size_t i = nets ? json_object_array_length(nets) : 0; i-- > 0;) {
        json_object *e = json_object_array_get_idx(nets, i);
        call_t c = {sget(rec, "namespace"), sget(rec, "id"), netns, sget(e, "ifname"),
                    sget(e, "args")};
        berth_error_t *de = NULL;
        int rc = chain_del(n, &c, e, &de);
        if (rc < 0 && first == 0) {
            first = rc;
            *err = de;
        } else if (rc < 0)
            n->api->error_free(de);
    }
    if (first < 0) {
        n->api->error_wrap(err, "endpoint %s/%s: teardown (kept for a retry)",
                           sget(rec, "namespace"), sget(rec, "id"));
        return first;
    }
    netns_remove(n, p->netns);
    remove_files(p);
    if (unlink(p->rec) < 0 && errno != ENOENT)
        return n->api->error_make(err, BERTH_EIO, "remove %s: %s", p->rec, strerror(errno));
    return 0;
}

int
ep_teardown(void *self, const char *ns, const char *id, berth_error_t **err)
{
    net_t *n = self;
    paths_t p;
    if (ep_paths(n, ns, id, &p, err) < 0)
        return BERTH_EINVAL;
    ep_lock(n, p.key);
    json_object *rec = record_read(p.rec);
    int rc = 0;
    if (rec)
        rc = teardown_record(n, &p, rec, err);
    else if (access(p.rec, F_OK) == 0) {
        /* a record that does not parse: nothing to DEL with; drop what can be dropped */
        LOG(n, BERTH_LOG_WARN, "endpoint record %s does not parse: removing it", p.rec);
        netns_remove(n, p.netns);
        remove_files(&p);
        unlink(p.rec);
    }
    json_object_put(rec);
    ep_unlock(n, p.key);
    return rc;
}

/* ---- results ------------------------------------------------------------------------------------- */

static char *
dup_s(const char *s)
{
    return strdup(s ? s : "");
}

static void
fill_result(const paths_t *p, json_object *rec, berth_net_result_t *out)
{
    uint32_t size = out->struct_size;
    memset(out, 0, sizeof(*out));
    out->struct_size = size;
    out->netns_path = dup_s(p->netns);
    char path[4200];
    snprintf(path, sizeof(path), "%s/resolv.conf", p->files);
    out->resolv_conf_path = dup_s(path);
    snprintf(path, sizeof(path), "%s/hosts", p->files);
    out->hosts_path = dup_s(path);
    snprintf(path, sizeof(path), "%s/hostname", p->files);
    out->hostname_path = dup_s(path);
    json_object *nets = oget(rec, "networks"), *results = json_object_new_object();
    size_t nn = nets ? json_object_array_length(nets) : 0;
    out->addresses = calloc(nn * MAX_ADDRS + 1, sizeof(*out->addresses));
    for (size_t i = 0; i < nn; i++) {
        json_object *e = json_object_array_get_idx(nets, i), *res = oget(e, "result");
        cni_addr_t a[MAX_ADDRS];
        size_t k = cni_result_addresses(res, sget(e, "ifname"), a, MAX_ADDRS);
        for (size_t j = 0; j < k; j++) {
            berth_net_address_t *o = &out->addresses[out->n_addresses++];
            o->network = dup_s(sget(e, "name"));
            o->interface = dup_s(a[j].interface);
            o->address = dup_s(a[j].address);
            o->gateway = dup_s(a[j].gateway);
            o->mac = dup_s(a[j].mac);
        }
        if (res)
            json_object_object_add(results, sget(e, "name"), json_object_get(res));
    }
    out->results_json = dup_s(json_object_to_json_string_ext(
        results, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(results);
}

void
ep_result_free(void *self, berth_net_result_t *r)
{
    (void)self;
    if (!r)
        return;
    free(r->netns_path), free(r->resolv_conf_path), free(r->hosts_path), free(r->hostname_path);
    for (size_t i = 0; i < r->n_addresses; i++) {
        berth_net_address_t *a = &r->addresses[i];
        free(a->network), free(a->interface), free(a->address), free(a->gateway), free(a->mac);
    }
    free(r->addresses);
    free(r->results_json);
    uint32_t size = r->struct_size;
    memset(r, 0, sizeof(*r));
    r->struct_size = size;
}

int
ep_status(void *self, const char *ns, const char *id, berth_net_result_t *out, berth_error_t **err)
{
    net_t *n = self;
    paths_t p;
    if (ep_paths(n, ns, id, &p, err) < 0)
        return BERTH_EINVAL;
    json_object *rec = record_read(p.rec);
    if (rec == NULL || strcmp(sget(rec, "state"), "ready") != 0) {
        json_object_put(rec);
        return n->api->error_make(err, BERTH_ENOTFOUND, "endpoint \"%s/%s\": not found", ns, id);
    }
    fill_result(&p, rec, out);
    json_object_put(rec);
    return 0;
}

int
ep_check(void *self, const char *ns, const char *id, berth_error_t **err)
{
    net_t *n = self;
    paths_t p;
    if (ep_paths(n, ns, id, &p, err) < 0)
        return BERTH_EINVAL;
    ep_lock(n, p.key);
    json_object *rec = record_read(p.rec), *nets = oget(rec, "networks");
    int rc = 0;
    if (rec == NULL)
        rc = n->api->error_make(err, BERTH_ENOTFOUND, "endpoint \"%s/%s\": not found", ns, id);
    else if (!is_netns(p.netns))
        rc = n->api->error_make(err, BERTH_EPRECONDITION, "endpoint \"%s/%s\": netns %s is gone",
                                ns, id, p.netns);
    for (size_t i = 0; rc == 0 && i < json_object_array_length(nets); i++) {
        json_object *e = json_object_array_get_idx(nets, i), *cl = oget(e, "conflist");
        call_t c = {ns, id, p.netns, sget(e, "ifname"), sget(e, "args")};
        for (size_t j = 0; rc == 0 && j < n_plugins(cl); j++)
            rc = run_one(n, "CHECK", &c, cl, j, oget(e, "result"), oget(e, "runtimeConfig"), NULL,
                         err);
    }
    json_object_put(rec);
    ep_unlock(n, p.key);
    return rc;
}

int
ep_foreach_record(net_t *n, int (*cb)(void *user, json_object *rec), void *user)
{
    DIR *d = opendir(n->ep_dir);
    struct dirent *e;
    int stop = 0;
    while (!stop && d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/%s", n->ep_dir, e->d_name);
        DIR *d2 = opendir(dir);
        struct dirent *f;
        while (!stop && d2 && (f = readdir(d2))) {
            size_t len = strlen(f->d_name);
            if (len < 6 || strcmp(f->d_name + len - 5, ".json") != 0)
                continue;
            char path[8300];
            snprintf(path, sizeof(path), "%s/%s", dir, f->d_name);
            json_object *rec = record_read(path);
            if (rec)
                stop = cb(user, rec);
            json_object_put(rec);
        }
        if (d2)
            closedir(d2);
    }
    if (d)
        closedir(d);
    return stop;
}

int
ep_list(void *self, int (*cb)(void *user, const char *ns, const char *id), void *user,
        berth_error_t **err)
{
    net_t *n = self;
    (void)err;
    DIR *d = opendir(n->ep_dir);
    struct dirent *e;
    int stop = 0;
    while (!stop && d && (e = readdir(d))) {
        if (!valid_ident(e->d_name))
            continue;
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/%s", n->ep_dir, e->d_name);
        DIR *d2 = opendir(dir);
        struct dirent *f;
        while (!stop && d2 && (f = readdir(d2))) {
            size_t len = strlen(f->d_name);
            if (len < 6 || strcmp(f->d_name + len - 5, ".json") != 0)
                continue;
            char id[256];
            snprintf(id, sizeof(id), "%.*s", (int)(len - 5), f->d_name);
            if (valid_ident(id))
                stop = cb(user, e->d_name, id);
        }
        if (d2)
            closedir(d2);
    }
    if (d)
        closedir(d);
    return 0;
}

/* ---- setup --------------------------------------------------------------------------------------- */

/* resolv.conf: the request's servers, else config's, else the CNI result's, else the host's without
 * loopback servers (systemd-resolved's upstream list when the host's has only 127.0.0.53). */
static char *
resolv_text(net_t *n, const berth_net_setup_t *req, json_object *rec)
{
    if (req->dns_servers && req->dns_servers[0])
        return cni_resolv_conf(req->dns_servers, req->dns_searches, req->dns_options);
    if (n->dns_servers)
        return cni_resolv_conf((const char *const *)n->dns_servers,
                               (const char *const *)n->dns_searches,
                               (const char *const *)n->dns_options);
    json_object *nets = oget(rec, "networks");
    for (size_t i = 0; i < json_object_array_length(nets); i++) {
        json_object *dns = oget(oget(json_object_array_get_idx(nets, i), "result"), "dns");
        json_object *ns = oget(dns, "nameservers");
        if (ns && json_object_array_length(ns) > 0) {
            const char *sv[9] = {0}, *se[9] = {0}, *op[9] = {0};
            json_object *s = oget(dns, "search"), *o = oget(dns, "options");
            for (size_t j = 0; j < 8 && j < json_object_array_length(ns); j++)
                sv[j] = json_object_get_string(json_object_array_get_idx(ns, j));
            for (size_t j = 0; s && j < 8 && j < json_object_array_length(s); j++)
                se[j] = json_object_get_string(json_object_array_get_idx(s, j));
            for (size_t j = 0; o && j < 8 && j < json_object_array_length(o); j++)
                op[j] = json_object_get_string(json_object_array_get_idx(o, j));
            return cni_resolv_conf(sv, se, op);
        }
    }
    static const char *const hosts[] = {"/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"};
    char *best = NULL;
    for (size_t i = 0; i < 2; i++) {
        FILE *f = fopen(hosts[i], "re");
        if (!f)
            continue;
        char buf[65536];
        size_t len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = 0;
        int kept;
        char *text = cni_resolv_filter(buf, &kept);
        if (kept > 0) {
            free(best);
            return text;
        }
        if (!best)
            best = text;
        else
            free(text);
    }
    return best ? best : strdup("");
}

static int
write_files(net_t *n, const paths_t *p, const berth_net_setup_t *req, json_object *rec,
            berth_error_t **err)
{
    if (mkdir(p->files, 0755) < 0 && errno != EEXIST)
        return n->api->error_make(err, BERTH_EIO, "mkdir %s: %s", p->files, strerror(errno));
    const char *hostname = sget(rec, "hostname");
    /* the container's own name resolves to its first address */
    berth_net_result_t tmp = {.struct_size = sizeof(tmp)};
    fill_result(p, rec, &tmp);
    char ip[64] = "";
    if (tmp.n_addresses) {
        snprintf(ip, sizeof(ip), "%s", tmp.addresses[0].address);
        char *slash = strchr(ip, '/');
        if (slash)
            *slash = 0;
    }
    ep_result_free(n, &tmp);
    char *hosts, *resolv = resolv_text(n, req, rec), path[4200];
    if (asprintf(&hosts,
                 "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s%s%s%s", ip,
                 *ip ? "\t" : "", *ip ? hostname : "", *ip ? "\n" : "") < 0)
        abort();
    char hn[300];
    snprintf(hn, sizeof(hn), "%s\n", hostname);
    const char *names[] = {"resolv.conf", "hosts", "hostname"}, *texts[] = {resolv, hosts, hn};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", p->files, names[i]);
        int wrc = net_write_atomic(path, texts[i], 0644, 0);
        if (wrc < 0)
            rc = n->api->error_make(err, BERTH_EIO, "write %s: %s", path, strerror(-wrc));
    }
    free(hosts);
    free(resolv);
    return rc;
}

/* Turns the request into a record: namespace, id, hostname, ports, no networks yet. */
static json_object *
new_record(const berth_net_setup_t *req, const paths_t *p, json_object *ports)
{
    json_object *rec = json_object_new_object();
    char hn[13];
    snprintf(hn, sizeof(hn), "%.12s", req->id);
    json_object_object_add(rec, "namespace", json_object_new_string(req->namespace_));
    json_object_object_add(rec, "id", json_object_new_string(req->id));
    json_object_object_add(rec, "state", json_object_new_string("creating"));
    json_object_object_add(rec, "netns", json_object_new_string(p->netns));
    json_object_object_add(
        rec, "hostname",
        json_object_new_string(req->hostname && *req->hostname ? req->hostname : hn));
    json_object_object_add(rec, "ports", json_object_get(ports));
    json_object_object_add(rec, "networks", json_object_new_array());
    return rec;
}

/* The endpoint.pre-create hook for one network: CNI_ARGS (the request's plus the handlers') and the
 * runtimeConfig (portMappings plus the handlers' capabilities) go into the record's entry. */
static int
fire_hook(net_t *n, const berth_net_setup_t *req, const char *net, const char *ifname,
          json_object *ports, json_object *entry, berth_error_t **err)
{
    const berth_core_api_t *api = n->api;
    berth_kv_t *opts = api->kv_new(), *caps = api->kv_new();
    for (size_t i = 0; req->cni_args && i < api->kv_size(req->cni_args); i++)
        api->kv_set(opts, api->kv_key_at(req->cni_args, i), api->kv_value_at(req->cni_args, i));
    berth_hook_endpoint_t h = {
        .struct_size = sizeof(h),
        .namespace_ = req->namespace_,
        .id = req->id,
        .options = opts,
        .network = net,
        .ifname = ifname,
        .ports_json = json_object_to_json_string_ext(ports, JSON_C_TO_STRING_PLAIN |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE),
        .capabilities = caps,
    };
    int rc = api->hook_invoke(BERTH_HOOK_ENDPOINT_PRE_CREATE, &h, err);
    json_object *rt = json_object_new_object();
    if (json_object_array_length(ports) > 0)
        json_object_object_add(rt, "portMappings", json_object_get(ports));
    for (size_t i = 0; rc == 0 && i < api->kv_size(caps); i++) {
        json_object *v = json_tokener_parse(api->kv_value_at(caps, i));
        if (v == NULL)
            rc = api->error_make(err, BERTH_EINVAL,
                                 "endpoint.pre-create: capability \"%s\" is not JSON: %s",
                                 api->kv_key_at(caps, i), api->kv_value_at(caps, i));
        else
            json_object_object_add(rt, api->kv_key_at(caps, i), v);
    }
    size_t na = api->kv_size(opts);
    const char **keys = calloc(na + 1, sizeof(*keys)), **vals = calloc(na + 1, sizeof(*vals));
    for (size_t i = 0; i < na; i++)
        keys[i] = api->kv_key_at(opts, i), vals[i] = api->kv_value_at(opts, i);
    char *args = cni_args_string(keys, vals, na);
    json_object_object_add(entry, "args", json_object_new_string(args));
    json_object_object_add(entry, "runtimeConfig", rt);
    free(args), free(keys), free(vals);
    api->kv_free(opts);
    api->kv_free(caps);
    return rc;
}

/* ADD of one network's chain; each plugin's result is journaled before the next runs. */
static int
chain_add(net_t *n, const paths_t *p, json_object *rec, json_object *entry, const call_t *c,
          berth_error_t **err)
{
    json_object *conflist = oget(entry, "conflist");
    for (size_t i = 0; i < n_plugins(conflist); i++) {
        json_object *res = NULL;
        if (run_one(n, "ADD", c, conflist, i, oget(entry, "result"), oget(entry, "runtimeConfig"),
                    &res, err) < 0)
            return (*err)->code;
        json_object_object_add(entry, "result", res);
        if (record_write(n, p, rec, err) < 0)
            return (*err)->code;
    }
    return 0;
}

static int
loopback_up(net_t *n, const call_t *c, berth_error_t **err)
{
    json_object *lo =
        json_tokener_parse("{\"cniVersion\":\"" CNI_VERSION
                           "\",\"name\":\"lo\",\"plugins\":[{\"type\":\"loopback\"}]}");
    call_t l = *c;
    l.ifname = "lo";
    l.args = "";
    int rc = run_one(n, "ADD", &l, lo, 0, NULL, NULL, NULL, err);
    json_object_put(lo);
    return rc;
}

static int
setup_locked(net_t *n, const berth_net_setup_t *req, const paths_t *p, json_object *rec,
             json_object *ports, berth_error_t **err)
{
    /* resolve every network before anything is made */
    json_object *lists = json_object_new_array();
    int rc = 0;
    for (size_t i = 0; i < req->n_networks; i++) {
        json_object *c = req->networks[i] ? net_conflist(n, req->networks[i]) : NULL;
        if (c == NULL) {
            rc = n->api->error_make(err, BERTH_ENOTFOUND, "network \"%s\": not found",
                                    req->networks[i] ? req->networks[i] : "");
            break;
        }
        json_object_array_add(lists, c);
    }
    if (rc == 0 && mkdir(p->nsdir, 0700) < 0 && errno != EEXIST)
        rc = n->api->error_make(err, BERTH_EIO, "mkdir %s: %s", p->nsdir, strerror(errno));
    if (rc == 0)
        rc = record_write(n, p, rec, err); /* the intent, before anything exists */
    if (rc == 0)
        rc = netns_create(n, p, err);
    call_t c = {req->namespace_, req->id, p->netns, "lo", ""};
    if (rc == 0 && n->loopback_plugin)
        rc = loopback_up(n, &c, err);
    json_object *nets = oget(rec, "networks");
    for (size_t i = 0; rc == 0 && i < req->n_networks; i++) {
        char ifname[24];
        snprintf(ifname, sizeof(ifname), "eth%zu", i);
        json_object *entry = json_object_new_object();
        json_object_object_add(entry, "name", json_object_new_string(req->networks[i]));
        json_object_object_add(entry, "ifname", json_object_new_string(ifname));
        json_object_object_add(entry, "conflist",
                               json_object_get(json_object_array_get_idx(lists, i)));
        if (fire_hook(n, req, req->networks[i], ifname, ports, entry, err) < 0) {
            json_object_put(entry);
            rc = (*err)->code;
            break;
        }
        json_object_array_add(nets, entry);
        if ((rc = record_write(n, p, rec, err)) < 0)
            break;
        c.ifname = ifname;
        c.args = sget(entry, "args");
        rc = chain_add(n, p, rec, entry, &c, err);
    }
    if (rc == 0)
        rc = write_files(n, p, req, rec, err);
    if (rc == 0) {
        json_object_object_add(rec, "state", json_object_new_string("ready"));
        rc = record_write(n, p, rec, err);
    }
    json_object_put(lists);
    return rc;
}

int
ep_setup(void *self, const berth_net_setup_t *req, berth_net_result_t *out, berth_error_t **err)
{
    net_t *n = self;
    const berth_core_api_t *api = n->api;
    if (!req || !valid_ident(req->namespace_) || !valid_ident(req->id))
        return api->error_make(err, BERTH_EINVAL, "endpoint \"%s/%s\": invalid namespace or id",
                               req && req->namespace_ ? req->namespace_ : "",
                               req && req->id ? req->id : "");
    if (req->hostname && *req->hostname && !valid_hostname(req->hostname))
        return api->error_make(
            err, BERTH_EINVAL,
            "endpoint \"%s/%s\": hostname \"%s\" must be 1..64 bytes of letters, "
            "digits, '-' and '.'",
            req->namespace_, req->id, req->hostname);
    if (req->n_networks == 0 || req->n_networks > 8)
        return api->error_make(err, BERTH_EINVAL, "endpoint \"%s/%s\": 1 to 8 networks, not %zu",
                               req->namespace_, req->id, req->n_networks);
    cni_port_t *pp = calloc(req->n_ports + 1, sizeof(*pp));
    for (size_t i = 0; i < req->n_ports; i++) {
        const berth_port_mapping_t *m = &req->ports[i];
        if (m->host_port == 0 || m->container_port == 0 ||
            (m->protocol && *m->protocol && strcmp(m->protocol, "tcp") != 0 &&
             strcmp(m->protocol, "udp") != 0)) {
            free(pp);
            return api->error_make(err, BERTH_EINVAL,
                                   "endpoint \"%s/%s\": port %u:%u/%s: ports must be 1..65535 and "
                                   "the protocol tcp or udp",
                                   req->namespace_, req->id, m->host_port, m->container_port,
                                   m->protocol ? m->protocol : "tcp");
        }
        pp[i] = (cni_port_t){m->host_ip, m->host_port, m->container_port, m->protocol};
    }
    json_object *ports = cni_ports_json(pp, req->n_ports);
    free(pp);

    paths_t p;
    paths_of(n, req->namespace_, req->id, &p);
    ep_lock(n, p.key);
    int rc = 0;
    if (access(p.rec, F_OK) == 0) {
        rc = api->error_make(err, BERTH_EEXIST, "endpoint \"%s\": already exists", p.key);
    } else {
        json_object *rec = new_record(req, &p, ports);
        rc = setup_locked(n, req, &p, rec, ports, err);
        if (rc < 0) {
            /* undo what was made; a record whose DEL failed stays for the next reconciliation */
            berth_error_t *uerr = NULL;
            if (access(p.rec, F_OK) == 0 && teardown_record(n, &p, rec, &uerr) < 0) {
                LOG(n, BERTH_LOG_WARN, "endpoint %s: undo after a failed setup: %s", p.key,
                    uerr->message);
                api->error_free(uerr);
            } else if (access(p.rec, F_OK) != 0)
                netns_remove(n, p.netns);
        } else if (out)
            fill_result(&p, rec, out);
        json_object_put(rec);
    }
    ep_unlock(n, p.key);
    json_object_put(ports);
    return rc;
}
