/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The runtime-wide RuntimeService methods: Version, Status, RuntimeConfig, UpdateRuntimeConfig and
 * CheckpointContainer (not done: it says so).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cri.h"

#ifndef BERTH_CRI_VERSION
#define BERTH_CRI_VERSION "0.0.0"
#endif

int
cri_rpc_Version(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__VersionRequest *q = runtime__v1__version_request__unpack(NULL, req_len, req);
    if (q == NULL)
        return c->api->error_make(err, BERTH_EINVAL, "Version: the request does not unpack");
    runtime__v1__version_request__free_unpacked(q, NULL);
    Runtime__V1__VersionResponse r = RUNTIME__V1__VERSION_RESPONSE__INIT;
    r.version = "0.1.0"; /* the kubelet runtime API version, as containerd answers */
    r.runtime_name = "berth";
    r.runtime_version = BERTH_CRI_VERSION;
    r.runtime_api_version = "v1";
    return cri_reply(c, &r.base, resp, resp_len);
}

static char *
config_json(const cri_t *c)
{
    char *out = NULL;
    const cri_config_t *g = &c->cfg;
    if (asprintf(&out,
                 "{\"sandboxImage\":\"%s\",\"pausePath\":\"%s\",\"snapshotter\":\"%s\","
                 "\"network\":\"%s\",\"cgroupDriver\":\"%s\",\"streamServerAddress\":\"%s\","
                 "\"streamServerPort\":\"%lld\",\"root\":\"%s\",\"state\":\"%s\","
                 "\"podCIDR\":\"%s\"}",
                 g->sandbox_image, g->pause_path, g->snapshotter, g->network, g->cgroup_driver,
                 g->stream_address, (long long)g->stream_port, g->root, g->state,
                 c->pod_cidr ? c->pod_cidr : "") < 0)
        return NULL;
    return out;
}

int
cri_rpc_Status(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
               uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__StatusRequest *q = runtime__v1__status_request__unpack(NULL, req_len, req);
    if (q == NULL)
        return c->api->error_make(err, BERTH_EINVAL, "Status: the request does not unpack");
    Runtime__V1__RuntimeCondition rt = RUNTIME__V1__RUNTIME_CONDITION__INIT,
                                  net = RUNTIME__V1__RUNTIME_CONDITION__INIT;
    rt.type = "RuntimeReady";
    rt.status = 1;
    net.type = "NetworkReady";
    char *why = NULL;
    if (c->neto == NULL) {
        net.status = 0;
        net.reason = "NetworkPluginNotReady";
        net.message = "Network plugin returns error: berthd runs without the network module";
    } else if (!(net.status = c->neto->ready(c->net, &why))) {
        net.reason = "NetworkPluginNotReady";
        char *m = NULL;
        if (asprintf(&m, "Network plugin returns error: %s", why ? why : "not ready") > 0)
            net.message = m;
    }
    Runtime__V1__RuntimeCondition *conds[] = {&rt, &net};
    Runtime__V1__RuntimeStatus st = RUNTIME__V1__RUNTIME_STATUS__INIT;
    st.conditions = conds;
    st.n_conditions = 2;
    Runtime__V1__StatusResponse r = RUNTIME__V1__STATUS_RESPONSE__INIT;
    r.status = &st;
    Runtime__V1__RuntimeHandler h = RUNTIME__V1__RUNTIME_HANDLER__INIT;
    Runtime__V1__RuntimeHandlerFeatures hf = RUNTIME__V1__RUNTIME_HANDLER_FEATURES__INIT;
    h.name = "";
    h.features = &hf;
    Runtime__V1__RuntimeHandler *hs[] = {&h};
    r.runtime_handlers = hs;
    r.n_runtime_handlers = 1;
    Runtime__V1__StatusResponse__InfoEntry e = RUNTIME__V1__STATUS_RESPONSE__INFO_ENTRY__INIT;
    Runtime__V1__StatusResponse__InfoEntry *ep = &e;
    char *cfg = NULL;
    if (q->verbose) {
        cfg = config_json(c);
        e.key = "config";
        e.value = cfg ? cfg : "{}";
        r.info = &ep;
        r.n_info = 1;
    }
    int rc = cri_reply(c, &r.base, resp, resp_len);
    if (net.message && c->neto && !net.status)
        free(net.message);
    if (why)
        c->api->free(why);
    free(cfg);
    runtime__v1__status_request__free_unpacked(q, NULL);
    return rc;
}

int
cri_rpc_RuntimeConfig(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                      uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__RuntimeConfigRequest *q =
        runtime__v1__runtime_config_request__unpack(NULL, req_len, req);
    if (q == NULL)
        return c->api->error_make(err, BERTH_EINVAL, "RuntimeConfig: the request does not unpack");
    runtime__v1__runtime_config_request__free_unpacked(q, NULL);
    Runtime__V1__LinuxRuntimeConfiguration lx = RUNTIME__V1__LINUX_RUNTIME_CONFIGURATION__INIT;
    lx.cgroup_driver = strcmp(c->cfg.cgroup_driver, "systemd") == 0
                           ? RUNTIME__V1__CGROUP_DRIVER__SYSTEMD
                           : RUNTIME__V1__CGROUP_DRIVER__CGROUPFS;
    Runtime__V1__RuntimeConfigResponse r = RUNTIME__V1__RUNTIME_CONFIG_RESPONSE__INIT;
    r.linux = &lx;
    return cri_reply(c, &r.base, resp, resp_len);
}

/* ---- UpdateRuntimeConfig: the pod CIDR into the network, from containerd's conf_template ------------------
 * The template language is the part of Go's text/template containerd's templates use: {{.PodCIDR}},
 * {{range $i, $x := .PodCIDRRanges}} / {{range $i, $x := .Routes}} ... {{end}} with {{$x}}, {{$i}} and
 * {{if $i}} ... {{end}} inside. */

typedef struct tbuf {
    char *s;
    size_t n, cap;
} tbuf_t;

static void
tput(tbuf_t *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

typedef struct tvars {
    const char *iname, *vname; /* "$i", "$x" while in a range, else NULL */
    int i;
    const char *v;
} tvars_t;

/* the end of the block that starts at p (just after its opening action): its {{end}} */
static const char *
tblock_end(const char *p, const char **after)
{
    int depth = 1;
    while ((p = strstr(p, "{{")) != NULL) {
        const char *q = strstr(p, "}}");
        if (q == NULL)
            return NULL;
        const char *a = p + 2;
        while (*a == ' ' || *a == '-')
            a++;
        if (strncmp(a, "range ", 6) == 0 || strncmp(a, "if ", 3) == 0)
            depth++;
        else if (strncmp(a, "end", 3) == 0 && --depth == 0) {
            *after = q + 2;
            return p;
        }
        p = q + 2;
    }
    return NULL;
}

static int trender(tbuf_t *out, const char *t, size_t len, char **cidrs, char **routes,
                   const tvars_t *vars, char *why, size_t why_len);

static int
trange(tbuf_t *out, const char *act, const char *body, size_t blen, char **cidrs, char **routes,
       char *why, size_t why_len)
{
    char iname[32] = "", vname[32] = "", list[32] = "";
    if (sscanf(act, "range %31[^, ] , %31s := %31s", iname, vname, list) != 3 &&
        sscanf(act, "range %31[^, ], %31s := %31s", iname, vname, list) != 3) {
        snprintf(why, why_len, "unsupported template action {{%s}}", act);
        return -1;
    }
    char **items = strcmp(list, ".PodCIDRRanges") == 0 ? cidrs
                   : strcmp(list, ".Routes") == 0      ? routes
                                                       : NULL;
    if (items == NULL) {
        snprintf(why, why_len, "unknown template list %s", list);
        return -1;
    }
    for (int i = 0; items[i]; i++) {
        tvars_t v = {iname, vname, i, items[i]};
        if (trender(out, body, blen, cidrs, routes, &v, why, why_len) < 0)
            return -1;
    }
    return 0;
}

static int
trender(tbuf_t *out, const char *t, size_t len, char **cidrs, char **routes, const tvars_t *vars,
        char *why, size_t why_len)
{
    const char *p = t, *end = t + len;
    while (p < end) {
        const char *o = strstr(p, "{{");
        if (o == NULL || o >= end) {
            tput(out, p, (size_t)(end - p));
            break;
        }
        tput(out, p, (size_t)(o - p));
        const char *c = strstr(o, "}}");
        if (c == NULL || c > end) {
            snprintf(why, why_len, "an action without its }}");
            return -1;
        }
        char act[256];
        snprintf(act, sizeof(act), "%.*s", (int)(c - o - 2), o + 2);
        char *a = act, *z = act + strlen(act);
        while (*a == ' ')
            a++;
        while (z > a && z[-1] == ' ')
            *--z = '\0';
        p = c + 2;
        if (strcmp(a, ".PodCIDR") == 0) {
            tput(out, cidrs[0], strlen(cidrs[0]));
        } else if (vars && vars->vname && strcmp(a, vars->vname) == 0) {
            tput(out, vars->v, strlen(vars->v));
        } else if (vars && vars->iname && strcmp(a, vars->iname) == 0) {
            char n[16];
            tput(out, n, (size_t)snprintf(n, sizeof(n), "%d", vars->i));
        } else if (strncmp(a, "range ", 6) == 0 || strncmp(a, "if ", 3) == 0) {
            const char *after = NULL, *bend = tblock_end(p, &after);
            if (bend == NULL || bend > end) {
                snprintf(why, why_len, "{{%s}} without its {{end}}", a);
                return -1;
            }
            if (a[0] == 'r') {
                if (trange(out, a, p, (size_t)(bend - p), cidrs, routes, why, why_len) < 0)
                    return -1;
            } else if (vars && vars->iname && strcmp(a + 3, vars->iname) == 0) {
                if (vars->i != 0 &&
                    trender(out, p, (size_t)(bend - p), cidrs, routes, vars, why, why_len) < 0)
                    return -1;
            } else {
                snprintf(why, why_len, "unsupported template action {{%s}}", a);
                return -1;
            }
            p = after;
        } else {
            snprintf(why, why_len, "unsupported template action {{%s}}", a);
            return -1;
        }
    }
    return 0;
}

/* containerd's getRoutes: the default route of each family the CIDRs have */
static char **
cidr_routes(char **cidrs)
{
    char **r = calloc(3, sizeof(char *));
    int v4 = 0, v6 = 0, n = 0;
    for (int i = 0; cidrs[i]; i++) {
        if (strchr(cidrs[i], ':') ? v6++ : v4++)
            continue;
        r[n++] = strdup(strchr(cidrs[i], ':') ? "::/0" : "0.0.0.0/0");
    }
    return r;
}

static void
strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* "a, b" -> {"a", "b", NULL} */
static char **
split_cidrs(const char *s)
{
    size_t n = 1;
    for (const char *p = s; *p; p++)
        n += *p == ',';
    char **v = calloc(n + 1, sizeof(char *)), *dup = strdup(s), *save = NULL;
    size_t m = 0;
    for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ' || *t == '\t')
            t++;
        size_t l = strlen(t);
        while (l > 0 && (t[l - 1] == ' ' || t[l - 1] == '\t'))
            t[--l] = '\0';
        if (l > 0)
            v[m++] = strdup(t);
    }
    free(dup);
    return v;
}

static char *
read_file(const char *path, size_t max)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return NULL;
    char *b = malloc(max + 1);
    size_t n = fread(b, 1, max, f);
    fclose(f);
    b[n] = '\0';
    return b;
}

/* The network `network` made from conf_template with the pod CIDRs (the network module's define). */
static int
network_from_template(cri_t *c, const char *cidr, berth_error_t **err)
{
    char **cidrs = split_cidrs(cidr);
    if (cidrs[0] == NULL) {
        strv_free(cidrs);
        return 0;
    }
    char *t = read_file(c->cfg.conf_template, 1 << 20);
    if (t == NULL) {
        strv_free(cidrs);
        return c->api->error_make(err, BERTH_EINVAL, "conf_template %s: %s", c->cfg.conf_template,
                                  strerror(errno));
    }
    char **routes = cidr_routes(cidrs);
    tbuf_t out = {0};
    char why[256] = "";
    int rc = trender(&out, t, strlen(t), cidrs, routes, NULL, why, sizeof(why));
    if (rc < 0)
        rc = c->api->error_make(err, BERTH_EINVAL, "conf_template %s: %s", c->cfg.conf_template,
                                why);
    else
        rc = c->neto->define(c->net, c->cfg.network, out.s ? out.s : "", err);
    if (rc < 0 && *err != NULL && (*err)->code == BERTH_EPRECONDITION) {
        /* containerd leaves a network that is in use (ready) alone too */
        c->api->log(c->log, BERTH_LOG_WARN, "cri: pod CIDR %s: network %s kept: %s", cidr,
                    c->cfg.network, *err && (*err)->message ? (*err)->message : "");
        c->api->error_free(*err);
        *err = NULL;
        rc = 0;
    } else if (rc == 0) {
        c->api->log(c->log, BERTH_LOG_INFO, "cri: pod CIDR %s: network %s from %s", cidr,
                    c->cfg.network, c->cfg.conf_template);
    }
    free(out.s);
    free(t);
    strv_free(cidrs);
    strv_free(routes);
    return rc;
}

static int
has_define(const cri_t *c)
{
    return c->neto != NULL &&
           c->neto->struct_size >= offsetof(berth_network_v1_ops_t, define) + sizeof(void *) &&
           c->neto->define != NULL;
}

int
cri_rpc_UpdateRuntimeConfig(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                            uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__UpdateRuntimeConfigRequest *q =
        runtime__v1__update_runtime_config_request__unpack(NULL, req_len, req);
    if (q == NULL)
        return c->api->error_make(err, BERTH_EINVAL,
                                  "UpdateRuntimeConfig: the request does not unpack");
    const char *cidr = q->runtime_config && q->runtime_config->network_config
                           ? q->runtime_config->network_config->pod_cidr
                           : NULL;
    int rc = 0;
    if (cidr && *cidr) {
        pthread_mutex_lock(&c->lock);
        int changed = c->pod_cidr == NULL || strcmp(c->pod_cidr, cidr) != 0;
        if (changed) {
            free(c->pod_cidr);
            c->pod_cidr = strdup(cidr);
        }
        pthread_mutex_unlock(&c->lock);
        if (*c->cfg.conf_template && has_define(c))
            rc = network_from_template(c, cidr,
                                       err); /* unchanged: the network's define is a no-op */
        else if (changed)
            /* as containerd without conf_template: another component is to make the network */
            c->api->log(c->log, BERTH_LOG_INFO,
                        "cri: pod CIDR %s (kept: no conf_template%s; network %s unchanged)", cidr,
                        c->neto && !has_define(c) ? " the network module can take" : "",
                        c->cfg.network);
    }
    runtime__v1__update_runtime_config_request__free_unpacked(q, NULL);
    if (rc < 0)
        return rc;
    Runtime__V1__UpdateRuntimeConfigResponse r = RUNTIME__V1__UPDATE_RUNTIME_CONFIG_RESPONSE__INIT;
    return cri_reply(c, &r.base, resp, resp_len);
}

int
cri_rpc_CheckpointContainer(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                            uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_, (void)req, (void)req_len, (void)resp, (void)resp_len;
    return c->api->error_make(err, BERTH_ENOTIMPL,
                              "CheckpointContainer: berth does not checkpoint containers (no CRIU "
                              "support); see docs/cri.md");
}
