/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry host configuration: containerd's hosts.toml model (core/remotes/docker/config/hosts.go) in
 * berth's YAML, under the transfer plugin's `registries` key (docs/registries.md):
 *
 *   registries:
 *     docker.io:                      # the registry namespace (host[:port] of the reference, or _default)
 *       server: https://registry-1.docker.io
 *       capabilities: [pull, resolve, push]
 *       ca: /etc/berth/certs/ca.pem   # added to the system's CAs
 *       client_cert: /path/cert.pem
 *       client_key: /path/key.pem
 *       skip_verify: false
 *       override_path: false
 *       header: {X-Custom: value}     # a value may also be a list
 *       auth: {username: u, password: p}   # or {token: identity-token}
 *       mirrors:                      # tried in order for pull and resolve, then the server
 *         - url: https://mirror.example/v2/proxy
 *           override_path: true
 *           capabilities: [pull]
 *   max_concurrent_downloads: 3       # and max_concurrent_uploads, connect_timeout_ms,
 *   retries: 5                        # low_speed_time (s), low_speed_limit (B/s), manifest_limit
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "registry_int.h"

static const char *const endpoint_keys[] = {"capabilities", "ca",          "client_cert",
                                            "client_key",   "skip_verify", "override_path",
                                            "header",       "auth",        NULL};

static int
known_key(const char *key, const char *const *extra)
{
    for (size_t i = 0; endpoint_keys[i]; i++)
        if (strcmp(endpoint_keys[i], key) == 0)
            return 1;
    for (size_t i = 0; extra && extra[i]; i++)
        if (strcmp(extra[i], key) == 0)
            return 1;
    return 0;
}

/* A string value (absent: NULL); a list or map is an error naming path.key. */
static int
get_str(const berth_core_api_t *api, const berth_config_node_t *map, const char *key,
        const char *path, char **out, berth_error_t **err)
{
    const berth_config_node_t *n = api->map_get(map, key);
    *out = NULL;
    if (n == NULL)
        return 0;
    const char *s = api->scalar(n);
    if (s == NULL)
        return api->error_make(err, BERTH_EINVAL, "%s.%s: expected a string", path, key);
    *out = strdup(s);
    return 0;
}

int
reg_url_valid(const char *url)
{
    const char *p = NULL;
    if (strncmp(url, "http://", 7) == 0)
        p = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        p = url + 8;
    return p != NULL && *p != '\0' && *p != '/';
}

static int
parse_caps(const berth_core_api_t *api, const berth_config_node_t *n, const char *path,
           unsigned *caps, berth_error_t **err)
{
    if (n == NULL)
        return 0;
    if (api->node_kind(n) != BERTH_CONFIG_LIST)
        return api->error_make(err, BERTH_EINVAL,
                               "%s.capabilities: expected a list of pull, resolve, push", path);
    *caps = 0;
    for (size_t i = 0; i < api->list_size(n); i++) {
        const char *s = api->scalar(api->list_at(n, i));
        if (s && strcmp(s, "pull") == 0)
            *caps |= REG_CAP_PULL;
        else if (s && strcmp(s, "resolve") == 0)
            *caps |= REG_CAP_RESOLVE;
        else if (s && strcmp(s, "push") == 0)
            *caps |= REG_CAP_PUSH;
        else
            return api->error_make(err, BERTH_EINVAL,
                                   "%s.capabilities[%zu]: \"%s\" is not one of pull, resolve, push",
                                   path, i, s ? s : "(not a string)");
    }
    return 0;
}

static int
add_header(reg_endpoint_t *ep, const char *name, const char *value)
{
    char **h = realloc(ep->headers, (ep->n_headers + 1) * sizeof *h);
    if (h == NULL)
        return -1;
    ep->headers = h;
    size_t len = strlen(name) + strlen(value) + 3;
    if ((h[ep->n_headers] = malloc(len)) == NULL)
        return -1;
    snprintf(h[ep->n_headers++], len, "%s: %s", name, value);
    return 0;
}

static int
parse_headers(const berth_core_api_t *api, const berth_config_node_t *n, const char *path,
              reg_endpoint_t *ep, berth_error_t **err)
{
    if (n == NULL)
        return 0;
    if (api->node_kind(n) != BERTH_CONFIG_MAP)
        return api->error_make(err, BERTH_EINVAL, "%s.header: expected a map of names to values",
                               path);
    for (size_t i = 0; i < api->map_size(n); i++) {
        const char *name = api->map_key_at(n, i);
        const berth_config_node_t *v = api->map_value_at(n, i);
        if (strpbrk(name, ": \r\n") || *name == '\0')
            return api->error_make(err, BERTH_EINVAL, "%s.header: \"%s\" is not a header name",
                                   path, name);
        size_t nv = api->node_kind(v) == BERTH_CONFIG_LIST ? api->list_size(v) : 1;
        for (size_t k = 0; k < nv; k++) {
            const char *s =
                api->scalar(api->node_kind(v) == BERTH_CONFIG_LIST ? api->list_at(v, k) : v);
            if (s == NULL || strpbrk(s, "\r\n"))
                return api->error_make(err, BERTH_EINVAL,
                                       "%s.header.%s: expected a string or a list of strings", path,
                                       name);
            if (add_header(ep, name, s) < 0)
                return api->error_make(err, BERTH_ENOMEM, "%s.header: out of memory", path);
        }
    }
    return 0;
}

static int
parse_auth(const berth_core_api_t *api, const berth_config_node_t *n, const char *path,
           reg_endpoint_t *ep, berth_error_t **err)
{
    if (n == NULL)
        return 0;
    char sub[700];
    snprintf(sub, sizeof sub, "%.600s.auth", path);
    if (api->node_kind(n) != BERTH_CONFIG_MAP)
        return api->error_make(err, BERTH_EINVAL, "%s: expected a map (username, password, token)",
                               sub);
    for (size_t i = 0; i < api->map_size(n); i++) {
        const char *k = api->map_key_at(n, i);
        if (strcmp(k, "username") && strcmp(k, "password") && strcmp(k, "token"))
            return api->error_make(err, BERTH_EINVAL,
                                   "%s.%s: unknown key (username, password, token)", sub, k);
    }
    if (get_str(api, n, "username", sub, &ep->username, err) < 0 ||
        get_str(api, n, "password", sub, &ep->password, err) < 0 ||
        get_str(api, n, "token", sub, &ep->token, err) < 0)
        return BERTH_EINVAL;
    if (ep->username && !ep->password)
        return api->error_make(err, BERTH_EINVAL, "%s.password: required with username", sub);
    if (ep->token && ep->username)
        return api->error_make(err, BERTH_EINVAL, "%s: token and username are exclusive", sub);
    return 0;
}

/* The options mirrors and the server share. */
static int
parse_endpoint(const berth_core_api_t *api, const berth_config_node_t *n, const char *path,
               const char *const *extra_keys, reg_endpoint_t *ep, berth_error_t **err)
{
    for (size_t i = 0; i < api->map_size(n); i++) {
        const char *k = api->map_key_at(n, i);
        if (!known_key(k, extra_keys))
            return api->error_make(err, BERTH_EINVAL, "%s.%s: unknown key", path, k);
    }
    if (parse_caps(api, api->map_get(n, "capabilities"), path, &ep->caps, err) < 0)
        return BERTH_EINVAL;
    if (get_str(api, n, "ca", path, &ep->ca_file, err) < 0 ||
        get_str(api, n, "client_cert", path, &ep->client_cert, err) < 0 ||
        get_str(api, n, "client_key", path, &ep->client_key, err) < 0)
        return BERTH_EINVAL;
    if (ep->client_key && !ep->client_cert)
        return api->error_make(err, BERTH_EINVAL, "%s.client_key: needs client_cert", path);
    if (api->get_bool(n, "skip_verify", 0, &ep->skip_verify, err) < 0 ||
        api->get_bool(n, "override_path", 0, &ep->override_path, err) < 0)
        return api->error_wrap(err, "%s", path);
    if (parse_headers(api, api->map_get(n, "header"), path, ep, err) < 0)
        return BERTH_EINVAL;
    return parse_auth(api, api->map_get(n, "auth"), path, ep, err);
}

static int
parse_mirrors(const berth_core_api_t *api, const berth_config_node_t *n, const char *path,
              reg_host_t *h, berth_error_t **err)
{
    static const char *const mirror_keys[] = {"url", NULL};
    if (n == NULL)
        return 0;
    if (api->node_kind(n) != BERTH_CONFIG_LIST)
        return api->error_make(err, BERTH_EINVAL, "%s.mirrors: expected a list of maps", path);
    size_t count = api->list_size(n);
    if (count == 0)
        return 0;
    if ((h->mirrors = calloc(count, sizeof *h->mirrors)) == NULL)
        return api->error_make(err, BERTH_ENOMEM, "%s.mirrors: out of memory", path);
    for (size_t i = 0; i < count; i++) {
        const berth_config_node_t *m = api->list_at(n, i);
        char sub[700];
        snprintf(sub, sizeof sub, "%.600s.mirrors[%zu]", path, i);
        reg_endpoint_t *ep = &h->mirrors[h->n_mirrors++];
        ep->caps = REG_CAP_PULL | REG_CAP_RESOLVE;
        if (api->node_kind(m) != BERTH_CONFIG_MAP)
            return api->error_make(err, BERTH_EINVAL, "%s: expected a map", sub);
        if (get_str(api, m, "url", sub, &ep->url, err) < 0)
            return BERTH_EINVAL;
        if (ep->url == NULL || !reg_url_valid(ep->url))
            return api->error_make(err, BERTH_EINVAL,
                                   "%s.url: expected an http:// or https:// URL, got \"%s\"", sub,
                                   ep->url ? ep->url : "");
        if (parse_endpoint(api, m, sub, mirror_keys, ep, err) < 0)
            return BERTH_EINVAL;
    }
    return 0;
}

static int
parse_host(const berth_core_api_t *api, const char *name, const berth_config_node_t *n,
           reg_host_t *h, berth_error_t **err)
{
    static const char *const host_keys[] = {"server", "mirrors", NULL};
    char path[600];
    snprintf(path, sizeof path, "registries.%.500s", name);
    h->name = strdup(name);
    h->upstream.caps = REG_CAP_PULL | REG_CAP_RESOLVE | REG_CAP_PUSH;
    if (api->node_kind(n) != BERTH_CONFIG_MAP)
        return api->error_make(err, BERTH_EINVAL, "%s: expected a map", path);
    if (get_str(api, n, "server", path, &h->upstream.url, err) < 0)
        return BERTH_EINVAL;
    if (h->upstream.url && !reg_url_valid(h->upstream.url))
        return api->error_make(err, BERTH_EINVAL,
                               "%s.server: expected an http:// or https:// URL, got \"%s\"", path,
                               h->upstream.url);
    if (parse_endpoint(api, n, path, host_keys, &h->upstream, err) < 0)
        return BERTH_EINVAL;
    return parse_mirrors(api, api->map_get(n, "mirrors"), path, h, err);
}

static int
get_positive(const berth_core_api_t *api, const berth_config_node_t *map, const char *path,
             const char *key, int64_t dflt, int64_t min, int64_t *out, berth_error_t **err)
{
    if (api->get_int(map, key, dflt, out, err) < 0)
        return path ? api->error_wrap(err, "%s", path) : BERTH_EINVAL;
    if (*out < min)
        return api->error_make(err, BERTH_EINVAL, "%s%s%s: must be at least %lld", path ? path : "",
                               path ? "." : "", key, (long long)min);
    return 0;
}

/* The client's limits, top-level keys of the plugin's section (module.c declares them in its schema). */
static int
load_client_opts(const berth_core_api_t *api, const berth_config_node_t *plugin, reg_config_t *out,
                 berth_error_t **err)
{
    int64_t v;
    if (get_positive(api, plugin, NULL, "max_concurrent_downloads", 3, 1, &v, err) < 0)
        return BERTH_EINVAL;
    out->max_concurrent_downloads = (int)(v > 64 ? 64 : v);
    if (get_positive(api, plugin, NULL, "max_concurrent_uploads", 3, 1, &v, err) < 0)
        return BERTH_EINVAL;
    out->max_concurrent_uploads = (int)(v > 64 ? 64 : v);
    if (get_positive(api, plugin, NULL, "connect_timeout_ms", 30000, 1, &out->connect_timeout_ms,
                     err) < 0 ||
        get_positive(api, plugin, NULL, "low_speed_time", 30, 1, &out->low_speed_time_s, err) < 0 ||
        get_positive(api, plugin, NULL, "low_speed_limit", 1, 1, &out->low_speed_limit, err) < 0 ||
        get_positive(api, plugin, NULL, "manifest_limit", 4 << 20, 1024, &out->manifest_limit,
                     err) < 0)
        return BERTH_EINVAL;
    if (get_positive(api, plugin, NULL, "retries", 5, 0, &v, err) < 0)
        return BERTH_EINVAL;
    out->retries = (int)(v > 100 ? 100 : v);
    return 0;
}

void
reg_config_defaults(reg_config_t *out)
{
    memset(out, 0, sizeof *out);
    out->max_concurrent_downloads = 3;
    out->max_concurrent_uploads = 3;
    out->connect_timeout_ms = 30000;
    out->low_speed_time_s = 30;
    out->low_speed_limit = 1;
    out->retries = 5;
    out->manifest_limit = 4 << 20;
}

int
reg_config_load(const berth_core_api_t *api, const berth_config_node_t *plugin_config,
                reg_config_t *out, berth_error_t **err)
{
    reg_config_defaults(out);
    if (load_client_opts(api, plugin_config, out, err) < 0)
        return BERTH_EINVAL;
    const berth_config_node_t *regs = api->map_get(plugin_config, "registries");
    if (regs == NULL)
        return 0;
    if (api->node_kind(regs) != BERTH_CONFIG_MAP)
        return api->error_make(err, BERTH_EINVAL, "registries: expected a map of registry hosts");
    size_t n = api->map_size(regs);
    if (n && (out->hosts = calloc(n, sizeof *out->hosts)) == NULL)
        return api->error_make(err, BERTH_ENOMEM, "registries: out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *name = api->map_key_at(regs, i);
        reg_host_t *h = &out->hosts[out->n_hosts++];
        if (parse_host(api, name, api->map_value_at(regs, i), h, err) < 0) {
            reg_config_free(out);
            return BERTH_EINVAL;
        }
    }
    return 0;
}

static void
endpoint_free(reg_endpoint_t *ep)
{
    free(ep->url);
    free(ep->ca_file);
    free(ep->client_cert);
    free(ep->client_key);
    free(ep->username);
    free(ep->password);
    free(ep->token);
    for (size_t i = 0; i < ep->n_headers; i++)
        free(ep->headers[i]);
    free(ep->headers);
    memset(ep, 0, sizeof *ep);
}

void
reg_config_free(reg_config_t *cfg)
{
    for (size_t i = 0; i < cfg->n_hosts; i++) {
        reg_host_t *h = &cfg->hosts[i];
        for (size_t k = 0; k < h->n_mirrors; k++)
            endpoint_free(&h->mirrors[k]);
        free(h->mirrors);
        endpoint_free(&h->upstream);
        free(h->name);
    }
    free(cfg->hosts);
    cfg->hosts = NULL;
    cfg->n_hosts = 0;
}

const reg_host_t *
reg_config_host(const reg_config_t *cfg, const char *name)
{
    const reg_host_t *dflt = NULL;
    for (size_t i = 0; cfg && i < cfg->n_hosts; i++) {
        if (strcmp(cfg->hosts[i].name, name) == 0)
            return &cfg->hosts[i];
        if (strcmp(cfg->hosts[i].name, "_default") == 0)
            dflt = &cfg->hosts[i];
    }
    return dflt;
}
