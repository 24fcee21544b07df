/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The runtime-wide RuntimeService methods: Version, Status, RuntimeConfig, UpdateRuntimeConfig and
 * CheckpointContainer (not done: it says so).
 */
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
    if (cidr && *cidr) {
        pthread_mutex_lock(&c->lock);
        int changed = c->pod_cidr == NULL || strcmp(c->pod_cidr, cidr) != 0;
        if (changed) {
            free(c->pod_cidr);
            c->pod_cidr = strdup(cidr);
        }
        pthread_mutex_unlock(&c->lock);
        /* the network module's config names its own subnets: the CIDR is kept and shown (Status
         * verbose), not yet written into a CNI config */
        if (changed)
            c->api->log(c->log, BERTH_LOG_INFO, "cri: pod CIDR %s (kept; network %s unchanged)",
                        cidr, c->cfg.network);
    }
    runtime__v1__update_runtime_config_request__free_unpacked(q, NULL);
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
