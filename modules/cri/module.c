/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cri module: the CRI v1 RuntimeService and ImageService for kubelet (cri.h says how its parts fit).
 * This file registers its three plugins, reads the core's configuration and finds the services it calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cri.h"

/* ---- the core ------------------------------------------------------------------------------------ */

static const char *const svc_ids[CRI_SVC_COUNT] = {
    [CRI_SVC_CONTAINERS] = "containers", [CRI_SVC_TASKS] = "tasks",     [CRI_SVC_IMAGES] = "images",
    [CRI_SVC_SNAPSHOTS] = "snapshots",   [CRI_SVC_CONTENT] = "content", [CRI_SVC_LEASES] = "leases",
    [CRI_SVC_TRANSFER] = "transfer",
};

static const berth_config_field_t core_config[] = {
    {"sandbox_image", BERTH_CFG_STRING, "\"\"",
     "the image of pod sandboxes; empty: the built-in pause program, nothing is pulled"},
    {"pause_path", BERTH_CFG_STRING, "\"\"",
     "the static pause binary; empty: libexec/berth/pause beside this module's lib/berth/modules"},
    {"snapshotter", BERTH_CFG_STRING, "overlayfs", "the snapshotter of pods' containers"},
    {"network", BERTH_CFG_STRING, "berth", "the network (network module) pods join"},
    {"stream_address", BERTH_CFG_STRING, "127.0.0.1",
     "the address of the streaming server (exec, attach, port-forward)"},
    {"stream_port", BERTH_CFG_INT, "0", "its port; 0: a free one"},
    {"stream_idle_timeout_ms", BERTH_CFG_INT, "240000",
     "a streaming URL not used this long expires (kubelet's default: 4 minutes)"},
    {"cgroup_driver", BERTH_CFG_STRING, "cgroupfs",
     "cgroupfs, or systemd (cgroup v2 with systemd): how cgroup_parent is read"},
    {"exec_sync_max_output", BERTH_CFG_INT, "16777216",
     "bytes of stdout and of stderr ExecSync keeps"},
    {"max_container_log_line_size", BERTH_CFG_INT, "16384",
     "longer log lines are written as several partial (P) lines"},
    /* cri-gaps: containerd's conf_template */
    {"conf_template", BERTH_CFG_STRING, "\"\"",
     "a CNI conflist template: UpdateRuntimeConfig makes the network `network` from it with the "
     "pod "
     "CIDR ({{.PodCIDR}}); empty: the pod CIDR is only kept"},
    {NULL, 0, NULL, NULL},
};

static int
read_config(berth_init_ctx_t *ic, cri_config_t *cfg, berth_error_t **err)
{
    const berth_core_api_t *api = ic->api;
    cfg->sandbox_image = strdup(api->get_string(ic->config, "sandbox_image", ""));
    cfg->pause_path = strdup(api->get_string(ic->config, "pause_path", ""));
    cfg->snapshotter = strdup(api->get_string(ic->config, "snapshotter", "overlayfs"));
    cfg->network = strdup(api->get_string(ic->config, "network", BERTH_NETWORK_DEFAULT));
    cfg->stream_address = strdup(api->get_string(ic->config, "stream_address", "127.0.0.1"));
    cfg->cgroup_driver = strdup(api->get_string(ic->config, "cgroup_driver", "cgroupfs"));
    cfg->conf_template = strdup(api->get_string(ic->config, "conf_template", ""));
    cfg->root = strdup(ic->root);
    cfg->state = strdup(ic->state);
    if (api->get_int(ic->config, "stream_port", 0, &cfg->stream_port, err) < 0 ||
        api->get_int(ic->config, "stream_idle_timeout_ms", 240000, &cfg->stream_idle_ms, err) < 0 ||
        api->get_int(ic->config, "exec_sync_max_output", 16 << 20, &cfg->exec_sync_max_output,
                     err) < 0 ||
        api->get_int(ic->config, "max_container_log_line_size", 16384, &cfg->max_log_line, err) < 0)
        return -1;
    if (strcmp(cfg->cgroup_driver, "cgroupfs") != 0 && strcmp(cfg->cgroup_driver, "systemd") != 0)
        return api->error_make(err, BERTH_EINVAL, "cgroup_driver %s: must be cgroupfs or systemd",
                               cfg->cgroup_driver);
    if (cfg->stream_port < 0 || cfg->stream_port > 65535)
        return api->error_make(err, BERTH_EINVAL, "stream_port %lld: must be 0 .. 65535",
                               (long long)cfg->stream_port);
    return 0;
}

static void
config_free(cri_config_t *cfg)
{
    free(cfg->sandbox_image);
    free(cfg->pause_path);
    free(cfg->snapshotter);
    free(cfg->network);
    free(cfg->stream_address);
    free(cfg->cgroup_driver);
    free(cfg->conf_template);
    free(cfg->root);
    free(cfg->state);
}

static int
find_services(berth_init_ctx_t *ic, cri_t *c, berth_error_t **err)
{
    berth_instance_t in;
    for (int i = 0; i < CRI_SVC_COUNT; i++) {
        if (ic->api->get(ic, BERTH_GRPC_SERVICE_TYPE, svc_ids[i], &in, err) < 0)
            return -1;
        c->svc[i] = (cri_svc_t){in.instance, in.ops};
    }
    if (ic->api->get_single(ic, BERTH_METADATA_TYPE, &in, err) < 0)
        return -1;
    c->md = in.instance;
    c->mdo = in.ops;
    if (ic->api->get_single(ic, BERTH_EVENTS_TYPE, &in, err) < 0)
        return -1;
    c->events = in.instance;
    c->evo = in.ops;
    berth_error_t *none = NULL;
    if (ic->api->get_single(ic, BERTH_NETWORK_TYPE, &in, &none) == 0) {
        c->net = in.instance;
        c->neto = in.ops;
    } else {
        ic->api->log(ic->log, BERTH_LOG_WARN, "no network module: only host-network pods run");
        ic->api->error_free(none);
    }
    return 0;
}

int
cri_reply(cri_t *c, const ProtobufCMessage *msg, uint8_t **resp, size_t *resp_len)
{
    *resp_len = protobuf_c_message_get_packed_size(msg);
    *resp = c->api->malloc(*resp_len ? *resp_len : 1);
    protobuf_c_message_pack(msg, *resp);
    return 0;
}

static void core_fini(void *instance);

static int
core_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    cri_t *c = calloc(1, sizeof(*c));
    c->api = ic->api;
    c->log = ic->log;
    c->loop = ic->loop;
    pthread_mutex_init(&c->lock, NULL);
    if (read_config(ic, &c->cfg, err) < 0 || find_services(ic, c, err) < 0 ||
        cri_store_open(c, err) < 0 || cri_events_start(c, err) < 0 ||
        cri_stream_server_start(c, err) < 0) {
        /* no fini follows a failed init: what started stops here (the exit subscription above all) */
        core_fini(c);
        return err && *err ? (*err)->code : BERTH_EINTERNAL;
    }
    *instance = c;
    return 0;
}

static void
core_fini(void *instance)
{
    cri_t *c = instance;
    if (c == NULL)
        return;
    cri_stream_server_stop(c);
    cri_events_stop(c);
    cri_store_close(c);
    config_free(&c->cfg);
    free(c->pod_cidr);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static const char *const core_requires[] = {BERTH_METADATA_TYPE, BERTH_EVENTS_TYPE,
                                            "?" BERTH_NETWORK_TYPE, NULL};
/* by URI, so the core does not come after the cri services themselves (they require it) */
static const char *const core_after[] = {
    "io.containerd.grpc.v1.containers", "io.containerd.grpc.v1.tasks",
    "io.containerd.grpc.v1.images",     "io.containerd.grpc.v1.snapshots",
    "io.containerd.grpc.v1.content",    "io.containerd.grpc.v1.leases",
    "io.containerd.grpc.v1.transfer",   NULL,
};

/* On first use (kubelet's first call), but at start while pods exist (<state>/sandboxes/<id> lives from
 * RunPodSandbox to RemovePodSandbox): their exits and OOM kills are then followed as they happen, not
 * found at a later init (which would still reconcile them from the runtime, as after a restart, but
 * without the OOM reason). */
static const char *const core_start_if[] = {"state:sandboxes/*", NULL};

static const berth_plugin_reg_t core_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = CRI_CORE_TYPE,
    .id = "cri",
    .requires = core_requires,
    .after = core_after,
    .config = core_config,
    .init = core_init,
    .fini = core_fini,
    .flags = BERTH_PLUGIN_ON_DEMAND,
    .start_if = core_start_if,
};

/* ---- the two services ------------------------------------------------------------------------------ */

static int
service_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    berth_instance_t core;
    if (ic->api->get_single(ic, CRI_CORE_TYPE, &core, err) < 0)
        return -1;
    *instance = core.instance;
    return 0;
}

static void
service_fini(void *instance)
{
    (void)instance; /* the core's */
}

/* The transport answers a handler's return code: one that passed a helper's -1 up (its error made
 * deeper, with a class) would answer Unknown. Each method answers its error's own class. */
#define CRI_CODED(m)                                                                         \
    static int coded_##m(void *user, const char *ns, const uint8_t *req, size_t req_len,     \
                         uint8_t **resp, size_t *resp_len, berth_error_t **err)              \
    {                                                                                        \
        int rc = cri_rpc_##m(user, ns, req, req_len, resp, resp_len, err);                   \
        return rc == BERTH_EUNKNOWN && *err != NULL && (*err)->code < 0 ? (*err)->code : rc; \
    }
CRI_HANDLERS(CRI_CODED)

#define UNARY(m)                                                \
    {                                                           \
        .name = #m, .kind = BERTH_RPC_UNARY, .unary = coded_##m \
    }

static const berth_grpc_method_t runtime_methods[] = {
    UNARY(Version),
    UNARY(RunPodSandbox),
    UNARY(StopPodSandbox),
    UNARY(RemovePodSandbox),
    UNARY(PodSandboxStatus),
    UNARY(ListPodSandbox),
    UNARY(CreateContainer),
    UNARY(StartContainer),
    UNARY(StopContainer),
    UNARY(RemoveContainer),
    UNARY(ListContainers),
    UNARY(ContainerStatus),
    UNARY(UpdateContainerResources),
    UNARY(ReopenContainerLog),
    UNARY(ExecSync),
    UNARY(Exec),
    UNARY(Attach),
    UNARY(PortForward),
    UNARY(ContainerStats),
    UNARY(ListContainerStats),
    UNARY(PodSandboxStats),
    UNARY(ListPodSandboxStats),
    UNARY(UpdateRuntimeConfig),
    UNARY(Status),
    UNARY(CheckpointContainer),
    {.name = "GetContainerEvents",
     .kind = BERTH_RPC_SERVER_STREAM,
     .open = cri_events_open,
     .closed = cri_events_closed},
    UNARY(ListMetricDescriptors),
    UNARY(ListPodSandboxMetrics),
    UNARY(RuntimeConfig),
    UNARY(UpdatePodSandboxResources),
};

static const berth_grpc_service_v1_t runtime_service = {
    .struct_size = sizeof(berth_grpc_service_v1_t),
    .name = "runtime.v1.RuntimeService",
    .methods = runtime_methods,
    .n_methods = sizeof(runtime_methods) / sizeof(runtime_methods[0]),
};

static const berth_grpc_method_t image_methods[] = {
    UNARY(ListImages), UNARY(ImageStatus), UNARY(PullImage), UNARY(RemoveImage), UNARY(ImageFsInfo),
};

static const berth_grpc_service_v1_t image_service = {
    .struct_size = sizeof(berth_grpc_service_v1_t),
    .name = "runtime.v1.ImageService",
    .methods = image_methods,
    .n_methods = sizeof(image_methods) / sizeof(image_methods[0]),
};

static const char *const service_requires[] = {CRI_CORE_TYPE, NULL};

static const berth_plugin_reg_t runtime_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_GRPC_SERVICE_TYPE,
    .id = "cri",
    .requires = service_requires,
    .init = service_init,
    .fini = service_fini,
    .ops = &runtime_service,
    .flags = BERTH_PLUGIN_ON_DEMAND,
};

static const berth_plugin_reg_t image_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_GRPC_SERVICE_TYPE,
    .id = "cri-images",
    .requires = service_requires,
    .init = service_init,
    .fini = service_fini,
    .ops = &image_service,
    .flags = BERTH_PLUGIN_ON_DEMAND,
};

static const berth_plugin_reg_t *const cri_plugins[] = {&core_plugin, &runtime_plugin,
                                                        &image_plugin, NULL};

BERTH_MODULE(cri, .version = "0.1.0", .license = "Apache-2.0", .origin = "berth",
             .description = "Kubernetes CRI v1: RuntimeService and ImageService",
             .plugins = cri_plugins);
