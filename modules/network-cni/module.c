/* SPDX-License-Identifier: Apache-2.0 */
/*
 * network-cni (io.berth.network.v1.cni): CNI networks for containers. This file: config, the networks
 * (the default bridge, berth's YAML, conflist files in conf_dir, and those made through the API, kept as
 * files under the plugin's root), readiness and the plugin registrations. endpoint.c does the endpoints,
 * service.c the berth.services.networks.v1 gRPC service.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net.h"

#define LOG(n, lvl, ...) (n)->api->log((n)->log, lvl, __VA_ARGS__)

/* ---- networks table ------------------------------------------------------------------------------ */

void
network_free(network_t *nw)
{
    free(nw->name);
    json_object_put(nw->conflist);
    json_object_put(nw->labels);
}

static network_t *
find_locked(net_t *n, const char *name)
{
    for (size_t i = 0; i < n->n_nets; i++)
        if (strcmp(n->nets[i].name, name) == 0)
            return &n->nets[i];
    return NULL;
}

/* Takes ownership of conflist and labels. -1 when the name is taken. */
static int
add_locked(net_t *n, const char *name, const char *source, json_object *conflist,
           json_object *labels)
{
    if (find_locked(n, name)) {
        json_object_put(conflist);
        json_object_put(labels);
        return -1;
    }
    n->nets = realloc(n->nets, (n->n_nets + 1) * sizeof(*n->nets));
    n->nets[n->n_nets++] = (network_t){strdup(name), source, conflist, labels};
    return 0;
}

json_object *
net_conflist(net_t *n, const char *name)
{
    json_object *copy = NULL;
    pthread_rwlock_rdlock(&n->nets_lock);
    network_t *nw = find_locked(n, name);
    if (nw)
        json_object_deep_copy(nw->conflist, &copy, NULL);
    pthread_rwlock_unlock(&n->nets_lock);
    return copy;
}

static int
by_name(const void *a, const void *b)
{
    return strcmp(((const network_t *)a)->name, ((const network_t *)b)->name);
}

int
net_list_networks(net_t *n, network_t **out, size_t *count)
{
    pthread_rwlock_rdlock(&n->nets_lock);
    *out = calloc(n->n_nets + 1, sizeof(**out));
    *count = n->n_nets;
    for (size_t i = 0; i < n->n_nets; i++) {
        network_t *d = &(*out)[i];
        d->name = strdup(n->nets[i].name);
        d->source = n->nets[i].source;
        json_object_deep_copy(n->nets[i].conflist, &d->conflist, NULL);
        if (n->nets[i].labels)
            json_object_deep_copy(n->nets[i].labels, &d->labels, NULL);
    }
    pthread_rwlock_unlock(&n->nets_lock);
    qsort(*out, *count, sizeof(**out), by_name);
    return 0;
}

/* ---- networks made through the API: <root>/networks/<name>.json ----------------------------------- */

int
net_create_network(net_t *n, const char *name, json_object *conflist, json_object *labels,
                   berth_error_t **err)
{
    pthread_rwlock_wrlock(&n->nets_lock);
    if (find_locked(n, name)) {
        pthread_rwlock_unlock(&n->nets_lock);
        json_object_put(conflist);
        json_object_put(labels);
        return n->api->error_make(err, BERTH_EEXIST, "network \"%s\": already exists", name);
    }
    json_object *doc = json_object_new_object();
    json_object_object_add(doc, "name", json_object_new_string(name));
    json_object_object_add(doc, "conflist", json_object_get(conflist));
    if (labels)
        json_object_object_add(doc, "labels", json_object_get(labels));
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s.json", n->api_dir, name);
    int rc = net_write_atomic(path,
                              json_object_to_json_string_ext(
                                  doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE),
                              0600, 1);
    json_object_put(doc);
    if (rc < 0) {
        pthread_rwlock_unlock(&n->nets_lock);
        json_object_put(conflist);
        json_object_put(labels);
        return n->api->error_make(err, BERTH_EIO, "network \"%s\": write %s: %s", name, path,
                                  strerror(-rc));
    }
    add_locked(n, name, "api", conflist, labels);
    pthread_rwlock_unlock(&n->nets_lock);
    return 0;
}

typedef struct uses {
    const char *name;
    int count;
} uses_t;

static int
count_uses(void *user, json_object *rec)
{
    uses_t *u = user;
    json_object *nets;
    if (!json_object_object_get_ex(rec, "networks", &nets))
        return 0;
    for (size_t i = 0; i < json_object_array_length(nets); i++) {
        json_object *nm;
        if (json_object_object_get_ex(json_object_array_get_idx(nets, i), "name", &nm) &&
            strcmp(json_object_get_string(nm), u->name) == 0)
            u->count++;
    }
    return 0;
}

int
net_remove_network(net_t *n, const char *name, berth_error_t **err)
{
    pthread_rwlock_wrlock(&n->nets_lock);
    network_t *nw = find_locked(n, name);
    int rc = 0;
    uses_t u = {name, 0};
    if (nw == NULL)
        rc = n->api->error_make(err, BERTH_ENOTFOUND, "network \"%s\": not found", name);
    else if (strcmp(nw->source, "api") != 0)
        rc = n->api->error_make(err, BERTH_EPRECONDITION,
                                "network \"%s\" comes from the %s, not the API: it cannot be "
                                "removed",
                                name,
                                strcmp(nw->source, "default") == 0 ? "default config"
                                : strcmp(nw->source, "file") == 0  ? "config directory"
                                                                   : "config");
    else if (ep_foreach_record(n, count_uses, &u), u.count > 0)
        rc = n->api->error_make(err, BERTH_EPRECONDITION,
                                "network \"%s\" is in use by %d endpoint(s)", name, u.count);
    if (rc == 0) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s.json", n->api_dir, name);
        if (unlink(path) < 0 && errno != ENOENT)
            rc = n->api->error_make(err, BERTH_EIO, "network \"%s\": remove %s: %s", name, path,
                                    strerror(errno));
    }
    if (rc == 0) {
        network_free(nw);
        size_t i = (size_t)(nw - n->nets);
        memmove(nw, nw + 1, (n->n_nets - i - 1) * sizeof(*nw));
        n->n_nets--;
    }
    pthread_rwlock_unlock(&n->nets_lock);
    return rc;
}

static char *
read_text(const char *path, size_t max)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *buf = malloc(max + 1);
    size_t len = fread(buf, 1, max, f);
    fclose(f);
    buf[len] = 0;
    return buf;
}

static int
has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a > b && strcmp(s + a - b, suf) == 0;
}

static void
load_api_networks(net_t *n)
{
    DIR *d = opendir(n->api_dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!has_suffix(e->d_name, ".json"))
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", n->api_dir, e->d_name);
        char *text = read_text(path, 1 << 20);
        json_object *doc = text ? json_tokener_parse(text) : NULL, *nm, *cl, *lb = NULL;
        free(text);
        if (doc && json_object_object_get_ex(doc, "name", &nm) &&
            json_object_object_get_ex(doc, "conflist", &cl)) {
            json_object_object_get_ex(doc, "labels", &lb);
            if (add_locked(n, json_object_get_string(nm), "api", json_object_get(cl),
                           lb ? json_object_get(lb) : NULL) < 0)
                LOG(n, BERTH_LOG_WARN, "network file %s: name taken by another network, ignored",
                    path);
        } else
            LOG(n, BERTH_LOG_WARN, "network file %s does not parse, ignored", path);
        json_object_put(doc);
    }
    if (d)
        closedir(d);
}

static void
load_conf_dir(net_t *n, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return; /* an absent config dir holds no networks */
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!has_suffix(e->d_name, ".conflist"))
            continue;
        char path[4096], errbuf[256];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        char *text = read_text(path, 1 << 20);
        json_object *raw = text ? json_tokener_parse(text) : NULL, *nm;
        const char *name =
            raw && json_object_object_get_ex(raw, "name", &nm) ? json_object_get_string(nm) : "";
        json_object *c = NULL;
        if (!cni_valid_name(name))
            snprintf(errbuf, sizeof(errbuf), "no valid \"name\"");
        else
            c = cni_conflist_parse(text, name, n->ipam_dir, errbuf, sizeof(errbuf));
        if (c == NULL)
            LOG(n, BERTH_LOG_WARN, "conflist %s ignored: %s", path, errbuf);
        else if (add_locked(n, name, "file", c, NULL) < 0)
            LOG(n, BERTH_LOG_WARN, "conflist %s ignored: network \"%s\" already exists", path,
                name);
        json_object_put(raw);
        free(text);
    }
    closedir(d);
}

/* ---- config -------------------------------------------------------------------------------------- */

static char **
string_list(net_t *n, const berth_config_node_t *list)
{
    size_t k = n->api->list_size(list);
    if (k == 0)
        return NULL;
    char **v = calloc(k + 1, sizeof(*v));
    for (size_t i = 0; i < k; i++)
        v[i] = strdup(n->api->scalar(n->api->list_at(list, i)) ?: "");
    return v;
}

static int
bridge_from_config(net_t *n, const char *name, const berth_config_node_t *m, const char *dbridge,
                   const char *dsubnet, berth_error_t **err)
{
    const berth_core_api_t *api = n->api;
    int masq = 1, internal = 0, firewall = 1;
    if (api->get_bool(m, "masquerade", 1, &masq, err) < 0 ||
        api->get_bool(m, "internal", 0, &internal, err) < 0 ||
        api->get_bool(m, "firewall", 1, &firewall, err) < 0)
        return (*err)->code;
    char brdefault[16];
    snprintf(brdefault, sizeof(brdefault), "br-%.12s", name);
    cni_bridge_t b = {.name = name,
                      .bridge = api->get_string(m, "bridge", dbridge ? dbridge : brdefault),
                      .subnet = api->get_string(m, "subnet", dsubnet ? dsubnet : ""),
                      .gateway = api->get_string(m, "gateway", ""),
                      .masquerade = masq,
                      .internal = internal,
                      .no_firewall = !firewall,
                      .data_dir = n->ipam_dir};
    char errbuf[256];
    json_object *c = cni_bridge_conflist(&b, errbuf, sizeof(errbuf));
    if (c == NULL)
        return api->error_make(err, BERTH_EINVAL, "network \"%s\": %s", name, errbuf);
    if (add_locked(n, name, dbridge ? "default" : "config", c, NULL) < 0)
        return api->error_make(err, BERTH_EINVAL, "network \"%s\" is defined twice", name);
    return 0;
}

static int
yaml_networks(net_t *n, const berth_config_node_t *map, berth_error_t **err)
{
    const berth_core_api_t *api = n->api;
    for (size_t i = 0; i < api->map_size(map); i++) {
        const char *name = api->map_key_at(map, i);
        const berth_config_node_t *m = api->map_value_at(map, i);
        if (!cni_valid_name(name))
            return api->error_make(err, BERTH_EINVAL,
                                   "networks: \"%s\" is not a valid network name "
                                   "([a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 64 bytes)",
                                   name);
        if (api->node_kind(m) != BERTH_CONFIG_MAP)
            return api->error_make(err, BERTH_EINVAL, "networks.%s: must be a map", name);
        const char *text = api->get_string(m, "conflist", NULL);
        if (text == NULL) {
            if (bridge_from_config(n, name, m, NULL, NULL, err) < 0)
                return (*err)->code;
            continue;
        }
        char errbuf[256];
        json_object *c = cni_conflist_parse(text, name, n->ipam_dir, errbuf, sizeof(errbuf));
        if (c == NULL)
            return api->error_make(err, BERTH_EINVAL, "networks.%s: %s", name, errbuf);
        if (add_locked(n, name, "config", c, NULL) < 0)
            return api->error_make(err, BERTH_EINVAL, "network \"%s\" is defined twice", name);
    }
    return 0;
}

static int
read_config(net_t *n, const berth_config_node_t *cfg, berth_error_t **err)
{
    const berth_core_api_t *api = n->api;
    int64_t t;
    if (api->get_int(cfg, "plugin_timeout_ms", 10000, &t, err) < 0)
        return (*err)->code;
    if (t < 100 || t > 600000)
        return api->error_make(err, BERTH_EINVAL, "plugin_timeout_ms: %lld is outside 100..600000",
                               (long long)t);
    n->timeout_ms = (int)t;
    if (api->get_bool(cfg, "loopback_plugin", 0, &n->loopback_plugin, err) < 0)
        return (*err)->code;
    const berth_config_node_t *dirs = api->map_get(cfg, "plugin_dirs");
    if (api->node_kind(dirs) == BERTH_CONFIG_NONE) {
        n->plugin_dirs = calloc(3, sizeof(char *));
        n->plugin_dirs[0] = strdup("/usr/lib/cni");
        n->plugin_dirs[1] = strdup("/opt/cni/bin");
    } else
        n->plugin_dirs = string_list(n, dirs);
    while (n->plugin_dirs && n->plugin_dirs[n->n_plugin_dirs])
        n->n_plugin_dirs++;
    size_t len = 1;
    for (size_t i = 0; i < n->n_plugin_dirs; i++)
        len += strlen(n->plugin_dirs[i]) + 1;
    n->cni_path = calloc(1, len);
    for (size_t i = 0; i < n->n_plugin_dirs; i++)
        strcat(strcat(n->cni_path, i ? ":" : ""), n->plugin_dirs[i]);

    const berth_config_node_t *dns = api->map_get(cfg, "dns");
    n->dns_servers = string_list(n, api->map_get(dns, "servers"));
    n->dns_searches = string_list(n, api->map_get(dns, "searches"));
    n->dns_options = string_list(n, api->map_get(dns, "options"));

    const berth_config_node_t *dn = api->map_get(cfg, "default_network");
    n->default_name = strdup(api->get_string(dn, "name", BERTH_NETWORK_DEFAULT));
    if (!cni_valid_name(n->default_name))
        return api->error_make(err, BERTH_EINVAL, "default_network.name \"%s\" is not valid",
                               n->default_name);
    if (bridge_from_config(n, n->default_name, dn, "berth0", "10.89.0.0/16", err) < 0)
        return api->error_wrap(err, "default_network");
    if (yaml_networks(n, api->map_get(cfg, "networks"), err) < 0)
        return (*err)->code;
    load_conf_dir(n, api->get_string(cfg, "conf_dir", "/etc/berth/net.d"));
    load_api_networks(n);
    return 0;
}

int
net_plugin_path(net_t *n, const char *type, char *out, size_t outlen)
{
    return cni_find_plugin((const char *const *)n->plugin_dirs, n->n_plugin_dirs, type, out,
                           outlen);
}

/* ---- the plugin ---------------------------------------------------------------------------------- */

static int
net_ready(void *self, char **reason)
{
    net_t *n = self;
    json_object *c = net_conflist(n, n->default_name), *plugins;
    char path[4096], msg[512] = "";
    if (c == NULL)
        snprintf(msg, sizeof(msg), "network \"%s\": not found", n->default_name);
    else if (json_object_object_get_ex(c, "plugins", &plugins)) {
        for (size_t i = 0; i < json_object_array_length(plugins) && !*msg; i++) {
            json_object *t;
            const char *type = "";
            if (json_object_object_get_ex(json_object_array_get_idx(plugins, i), "type", &t))
                type = json_object_get_string(t);
            if (net_plugin_path(n, type, path, sizeof(path)) < 0)
                snprintf(msg, sizeof(msg), "cni plugin \"%s\" not found in %s", type, n->cni_path);
        }
    }
    json_object_put(c);
    if (!*msg && n->loopback_plugin && net_plugin_path(n, "loopback", path, sizeof(path)) < 0)
        snprintf(msg, sizeof(msg), "cni plugin \"loopback\" not found in %s", n->cni_path);
    if (*msg && reason)
        *reason = n->api->strdup(msg);
    return *msg ? 0 : 1;
}

static void
free_list(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static void
net_fini(void *self)
{
    net_t *n = self;
    if (!n)
        return;
    if (n->netns_dir)
        ep_fini_dirs(n);
    for (size_t i = 0; i < n->n_nets; i++)
        network_free(&n->nets[i]);
    free(n->nets);
    free_list(n->plugin_dirs);
    free_list(n->dns_servers);
    free_list(n->dns_searches);
    free_list(n->dns_options);
    free(n->cni_path);
    free(n->default_name);
    free(n->root), free(n->state), free(n->ipam_dir), free(n->netns_dir), free(n->ep_dir),
        free(n->api_dir);
    pthread_rwlock_destroy(&n->nets_lock);
    pthread_mutex_destroy(&n->busy_mu);
    pthread_cond_destroy(&n->busy_cv);
    free(n);
}

static char *
join(const char *a, const char *b)
{
    char *s;
    return asprintf(&s, "%s/%s", a, b) < 0 ? NULL : s;
}

static int
net_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    net_t *n = calloc(1, sizeof(*n));
    n->api = ic->api;
    n->log = ic->log;
    n->root = strdup(ic->root);
    n->state = strdup(ic->state);
    n->ipam_dir = join(ic->state, "ipam");
    n->netns_dir = join(ic->state, "netns");
    n->ep_dir = join(ic->state, "endpoints");
    n->api_dir = join(ic->root, "networks");
    pthread_rwlock_init(&n->nets_lock, NULL);
    pthread_mutex_init(&n->busy_mu, NULL);
    pthread_cond_init(&n->busy_cv, NULL);
    int rc = n->api->mkdir_all(n->api_dir, 0700, err);
    if (rc == 0)
        rc = n->api->mkdir_all(n->ipam_dir, 0700, err);
    if (rc == 0)
        rc = ep_init_dirs(n, err);
    if (rc == 0)
        rc = read_config(n, ic->config, err);
    if (rc < 0) {
        net_fini(n);
        return rc;
    }
    char *reason = NULL;
    if (!net_ready(n, &reason)) {
        LOG(n, BERTH_LOG_WARN, "default network not ready: %s", reason);
        n->api->free(reason);
    }
    n->api->export_set(ic, "default_network", n->default_name);
    n->api->export_set(ic, "cni_path", n->cni_path);
    *instance = n;
    return 0;
}

/* ops->define: a network a caller makes from its own conflist (the CRI's, from the pod CIDR) */
static int
net_define(void *net, const char *name, const char *conflist, berth_error_t **err)
{
    net_t *n = net;
    char errbuf[256];
    if (!cni_valid_name(name))
        return n->api->error_make(err, BERTH_EINVAL, "network name \"%s\" is not valid", name);
    /* the caller's conflist names itself as it likes (containerd's templates do): it is this network */
    json_object *in = json_tokener_parse(conflist);
    if (in != NULL && json_object_is_type(in, json_type_object))
        json_object_object_add(in, "name", json_object_new_string(name));
    json_object *c = in ? cni_conflist_parse(json_object_to_json_string(in), name, n->ipam_dir,
                                             errbuf, sizeof(errbuf))
                        : NULL;
    if (in == NULL)
        snprintf(errbuf, sizeof(errbuf), "the conflist is not JSON");
    json_object_put(in);
    if (c == NULL)
        return n->api->error_make(err, BERTH_EINVAL, "network \"%s\": %s", name, errbuf);
    int vrc = net_check_versions(n, c, err);
    if (vrc < 0) {
        json_object_put(c);
        return vrc;
    }
    json_object *have = net_conflist(n, name);
    if (have != NULL) {
        int same = json_object_equal(have, c);
        json_object_put(have);
        if (same) {
            json_object_put(c);
            return 0;
        }
        int rc = net_remove_network(n, name, err);
        if (rc < 0) {
            json_object_put(c);
            return rc;
        }
        LOG(n, BERTH_LOG_INFO, "network %s: replaced by a new conflist", name);
    }
    return net_create_network(n, name, c, NULL, err);
}

static const berth_network_v1_ops_t net_ops = {
    .struct_size = sizeof(berth_network_v1_ops_t),
    .setup = ep_setup,
    .teardown = ep_teardown,
    .status = ep_status,
    .check = ep_check,
    .list = ep_list,
    .ready = net_ready,
    .result_free = ep_result_free,
    .define = net_define,
};

static const berth_config_field_t net_config[] = {
    {"plugin_dirs", BERTH_CFG_LIST, "[/usr/lib/cni, /opt/cni/bin]",
     "directories searched for CNI plugin binaries, in order (CNI_PATH)"},
    {"conf_dir", BERTH_CFG_STRING, "/etc/berth/net.d",
     "directory of *.conflist files, each one more network (absent: none)"},
    {"plugin_timeout_ms", BERTH_CFG_INT, "10000",
     "a CNI plugin run longer than this is killed (DeadlineExceeded)"},
    {"loopback_plugin", BERTH_CFG_BOOL, "false",
     "also run the CNI loopback plugin in each new netns (lo is brought up by berth either way)"},
    {"default_network", BERTH_CFG_MAP, "{}",
     "the default bridge network: name (berth), bridge (berth0), subnet (10.89.0.0/16), gateway, "
     "masquerade (true), firewall (true)"},
    {"networks", BERTH_CFG_MAP, "{}",
     "more networks by name: {conflist: <JSON text>} or {bridge, subnet, gateway, internal, "
     "firewall}"},
    {"dns", BERTH_CFG_MAP, "{}",
     "resolv.conf of containers: servers, searches, options (default: the host's, without "
     "loopback servers)"},
    {NULL, 0, NULL, NULL},
};

static const berth_plugin_reg_t net_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_NETWORK_TYPE,
    .id = "cni",
    .config = net_config,
    .init = net_init,
    .fini = net_fini,
    .ops = &net_ops,
    .flags = BERTH_PLUGIN_ON_DEMAND,
};

static const berth_plugin_reg_t *const cni_plugins[] = {&net_plugin, &networks_service_plugin,
                                                        NULL};

BERTH_MODULE(network_cni, .version = "0.1.0", .license = "Apache-2.0", .origin = "berth",
             .description = "CNI networks for containers (bridge, portmap, firewall plugins), the "
                            "endpoint.pre-create hook and the Networks service",
             .plugins = cni_plugins)
