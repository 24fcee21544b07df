/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cri module's internal contract (not ABI): what its files share.
 *
 * Plugins (module.c):
 *   io.berth.cri.v1.cri              the core (cri_t): configuration, the pod and container store, the exit
 *                                    subscription, the streaming server. It calls containerd's services of
 *                                    the other modules in process (cri_call), in the k8s.io namespace, as
 *                                    containerd's CRI uses its services.
 *   io.containerd.grpc.v1.cri        runtime.v1.RuntimeService (requires the core)
 *   io.containerd.grpc.v1.cri-images runtime.v1.ImageService (requires the core)
 * The grpc transport serves the last two like any service: on berthd's socket and on its extra addresses.
 *
 * Threading: RPC handlers run on thread-pool threads (berth_rpc_fn) and may block on in-process calls;
 * the store is guarded by cri_t.lock; events arrive on the loop thread. Nothing here waits on the loop.
 *
 * Errors: negative BERTH_E* with *err filled through c->api->error_make, messages naming the object:
 *   `pod sandbox "3f2a...": not found`.
 */
#ifndef BERTH_CRI_H
#define BERTH_CRI_H

#include <pthread.h>
#include <stdint.h>

#include <berth/events.h>
#include <berth/grpc.h>
#include <berth/metadata.h>
#include <berth/module.h>
#include <berth/network.h>

#include <protobuf-c/protobuf-c.h>

#include "runtime/v1/api.pb-c.h"

#define CRI_NAMESPACE "k8s.io"
#define CRI_CORE_TYPE "io.berth.cri.v1"
#define CRI_RUNTIME_NAME "io.containerd.runc.v2"
/* Labels on the containerd container records, as containerd's CRI sets them (ctr -n k8s.io shows them). */
#define CRI_LABEL_KIND "io.cri-containerd.kind" /* "sandbox" | "container" */
#define CRI_LABEL_SANDBOX_ID "io.kubernetes.pod.uid-sandbox"
/* OCI annotations containerd's CRI writes into specs (runc hooks and tools read them). */
#define CRI_ANN_CONTAINER_TYPE "io.kubernetes.cri.container-type" /* "sandbox" | "container" */
#define CRI_ANN_SANDBOX_ID "io.kubernetes.cri.sandbox-id"
#define CRI_ANN_SANDBOX_NAME "io.kubernetes.cri.sandbox-name"
#define CRI_ANN_SANDBOX_NAMESPACE "io.kubernetes.cri.sandbox-namespace"
#define CRI_ANN_SANDBOX_UID "io.kubernetes.cri.sandbox-uid"
#define CRI_ANN_CONTAINER_NAME "io.kubernetes.cri.container-name"
#define CRI_ANN_IMAGE_NAME "io.kubernetes.cri.image-name"
#define CRI_ANN_SANDBOX_LOG_DIR "io.kubernetes.cri.sandbox-log-directory"

/* ---- in-process calls to containerd's services of other modules ------------------------------------- */

typedef enum cri_svc_id {
    CRI_SVC_CONTAINERS, /* containerd.services.containers.v1.Containers */
    CRI_SVC_TASKS,      /* containerd.services.tasks.v1.Tasks */
    CRI_SVC_IMAGES,     /* containerd.services.images.v1.Images */
    CRI_SVC_SNAPSHOTS,  /* containerd.services.snapshots.v1.Snapshots */
    CRI_SVC_CONTENT,    /* containerd.services.content.v1.Content */
    CRI_SVC_LEASES,     /* containerd.services.leases.v1.Leases */
    CRI_SVC_TRANSFER,   /* containerd.services.transfer.v1.Transfer */
    CRI_SVC_COUNT
} cri_svc_id_t;

typedef struct cri_svc {
    void *instance;
    const berth_grpc_service_v1_t *ops;
} cri_svc_t;

/* ---- configuration (the core plugin's section; docs/configuration.md lists every key) --------------- */

typedef struct cri_config {
    char *sandbox_image;    /* "" (default): the built-in pause program, no image pulled */
    char *pause_path;       /* the static pause binary; default <prefix>/libexec/berth/pause */
    char *snapshotter;      /* "overlayfs" */
    char *network;          /* the network pods join (network module): "berth" */
    char *stream_address;   /* the streaming server's address: "127.0.0.1" */
    int64_t stream_port;    /* 0: a free port */
    int64_t stream_idle_ms; /* a stream URL unused this long expires: 240000 */
    char *cgroup_driver;    /* "cgroupfs" | "systemd" */
    int64_t exec_sync_max_output; /* bytes of stdout and of stderr ExecSync keeps: 16 MiB */
    int64_t max_log_line;         /* CRI log lines are cut into P pieces beyond this: 16384 */
    char *root;                   /* <daemon root>/io.berth.cri.v1.cri */
    char *state;                  /* <daemon state>/io.berth.cri.v1.cri */
    char *conf_template;          /* cri-gaps: a CNI conflist template for the pod CIDR; "" none */
} cri_config_t;

/* ---- the store: pods and containers, in memory, rebuilt at start from the containerd records ---------- */

typedef enum cri_sandbox_state {
    CRI_SANDBOX_READY = 0,
    CRI_SANDBOX_NOTREADY = 1
} cri_sandbox_state_t;
typedef enum cri_container_state {
    CRI_CONTAINER_CREATED = 0,
    CRI_CONTAINER_RUNNING = 1,
    CRI_CONTAINER_EXITED = 2,
    CRI_CONTAINER_UNKNOWN = 3
} cri_container_state_t; /* the values of runtime.v1.ContainerState */

typedef struct cri_sandbox {
    int refs; /* cri_sandbox_unref */
    char id[65];
    char *name; /* <name>_<namespace>_<uid>_<attempt>, unique among pods */
    Runtime__V1__PodSandboxConfig *config; /* as given (unpacked; owned) */
    char *runtime_handler;
    cri_sandbox_state_t state;
    int64_t created_ns;
    uint32_t pid;     /* the pause process; 0 when not running */
    char *netns_path; /* "" for host network */
    char *ip;         /* the first address (no prefix length), "" when none */
    char **extra_ips; /* NULL-terminated */
    char *cgroup_parent;
    char *resolv_path, *hosts_path, *hostname_path; /* files bind-mounted into every container */
} cri_sandbox_t;

typedef struct cri_container {
    int refs; /* cri_container_unref */
    char id[65];
    char sandbox_id[65];
    char *name; /* <name>_<pod name>_<pod namespace>_<pod uid>_<attempt> */
    Runtime__V1__ContainerConfig *config; /* as given (unpacked; owned) */
    char *image_ref;                      /* the image's id (config digest) */
    char *image_name;                     /* the name it was asked by */
    char *log_path;    /* absolute: sandbox log_directory + config log_path; "" none */
    char *cgroup_path; /* as in the spec's linux.cgroupsPath */
    cri_container_state_t state;
    int64_t created_ns, started_ns, finished_ns;
    int32_t exit_code;
    uint32_t pid;
    char *reason, *message;
} cri_container_t;

/* ---- the core instance ---------------------------------------------------------------------------------- */

typedef struct cri_stream_server cri_stream_server_t; /* stream.c */

typedef struct cri {
    const berth_core_api_t *api;
    const berth_logger_t *log;
    uv_loop_t *loop;
    cri_config_t cfg;
    cri_svc_t svc[CRI_SVC_COUNT];
    void *md;
    const berth_metadata_v1_ops_t *mdo;
    void *events;
    const berth_events_v1_ops_t *evo;
    void *net; /* NULL without the network module: only host-network pods then */
    const berth_network_v1_ops_t *neto;
    pthread_mutex_t lock; /* the store */
    void *store;          /* store.c's */
    cri_stream_server_t *streams;
    char *pod_cidr; /* UpdateRuntimeConfig */
    void *ev;       /* events.c's (added by the core helper) */
} cri_t;

/* call.c: a unary method of another module's service, in process, in CRI_NAMESPACE, on this thread.
 * req is packed, the handler runs, the answer is unpacked with out_desc into *out (free it with
 * protobuf_c_message_free_unpacked(*out, NULL)); out may be NULL when the answer is not needed. `lease`
 * ("" or NULL for none) is the containerd-lease the call runs under. */
int cri_call(cri_t *c, cri_svc_id_t svc, const char *method, const ProtobufCMessage *req,
             const ProtobufCMessageDescriptor *out_desc, ProtobufCMessage **out, const char *lease,
             berth_error_t **err);

/* store.c: opened by the core's init (the pods and containers found again, reconciled), closed by fini. */
int cri_store_open(cri_t *c, berth_error_t **err);
void cri_store_close(cri_t *c);
/* store.c. Lookups take a full id, a unique id prefix or (pods) the name; they return a reference. */
int cri_sandbox_find(cri_t *c, const char *id, cri_sandbox_t **out, berth_error_t **err);
void cri_sandbox_unref(cri_sandbox_t *s);
int cri_container_find(cri_t *c, const char *id, cri_container_t **out, berth_error_t **err);
void cri_container_unref(cri_container_t *k);
/* Every container (or pod): cb with a reference it must not keep past the call; non-zero stops. */
void cri_container_foreach(cri_t *c, int (*cb)(void *user, cri_container_t *k), void *user);
void cri_sandbox_foreach(cri_t *c, int (*cb)(void *user, cri_sandbox_t *s), void *user);

/* events.c: waiting for a process's exit, fed by the core's /tasks/exit subscription. A waiter is
 * registered before the process starts (so no exit is missed), then waited for with a timeout (ms, < 0
 * forever). 0 with *status and *exited_ns; BERTH_ETIMEDOUT on timeout (the waiter stays registered and
 * is freed by cri_exit_wait_cancel). */
typedef struct cri_exit_waiter cri_exit_waiter_t;
cri_exit_waiter_t *cri_exit_wait_register(cri_t *c, const char *container_id, const char *exec_id);
int cri_exit_wait(cri_exit_waiter_t *w, int64_t timeout_ms, uint32_t *status, int64_t *exited_ns);
void cri_exit_wait_cancel(cri_exit_waiter_t *w); /* frees it, whether or not it fired */

/* ---- RPC handlers (berth_rpc_fn, `user` is the cri_t) --------------------------------------------------
 * The method tables in module.c name these. stubs.c defines each weakly as Unimplemented, so every part
 * builds and serves before its file lands; the real definition (in the file named) replaces the stub. */
// clang-format off
#define CRI_HANDLERS(X)                                                                             \
    /* svc_runtime.c (core) */                                                                      \
    X(Version) X(Status) X(RuntimeConfig) X(UpdateRuntimeConfig) X(CheckpointContainer)             \
    /* pod.c (core) */                                                                              \
    X(RunPodSandbox) X(StopPodSandbox) X(RemovePodSandbox) X(PodSandboxStatus) X(ListPodSandbox)    \
    X(UpdatePodSandboxResources)                                                                    \
    /* container.c, exec_sync.c */                                                                  \
    X(CreateContainer) X(StartContainer) X(StopContainer) X(RemoveContainer) X(ListContainers)      \
    X(ContainerStatus) X(UpdateContainerResources) X(ReopenContainerLog) X(ExecSync)                \
    /* stream.c */                                                                                  \
    X(Exec) X(Attach) X(PortForward)                                                                \
    /* stats.c */                                                                                   \
    X(ContainerStats) X(ListContainerStats) X(PodSandboxStats) X(ListPodSandboxStats)               \
    X(ListMetricDescriptors) X(ListPodSandboxMetrics)                                               \
    /* image.c (core) */                                                                            \
    X(ListImages) X(ImageStatus) X(PullImage) X(RemoveImage) X(ImageFsInfo)
// clang-format on

#define CRI_DECLARE_HANDLER(name)                                                              \
    int cri_rpc_##name(void *user, const char *namespace_, const uint8_t *req, size_t req_len, \
                       uint8_t **resp, size_t *resp_len, berth_error_t **err);
CRI_HANDLERS(CRI_DECLARE_HANDLER)

/* events.c: the core's /tasks/exit subscription (started by init after the store) and GetContainerEvents,
 * a server stream (loop thread), with what feeds it: container state changes (created, started, stopped,
 * deleted) announced by the code that makes them. */
int cri_events_start(cri_t *c, berth_error_t **err);
void cri_events_stop(cri_t *c);
/* GetContainerEvents, a server stream (loop thread), and what feeds it: container state changes
 * (created, started, stopped, deleted) announced by the code that makes them. */
int cri_events_open(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st,
                    const uint8_t *req, size_t req_len, berth_error_t **err);
void cri_events_closed(void *instance, const berth_grpc_stream_api_t *sapi,
                       berth_grpc_stream_t *st);
void cri_events_announce(cri_t *c, Runtime__V1__ContainerEventType type, const char *container_id,
                         const char *sandbox_id);

/* Packs a response for a handler (memory from api->malloc, as the transport frees it). */
int cri_reply(cri_t *c, const ProtobufCMessage *msg, uint8_t **resp, size_t *resp_len);

/* stream.c: the streaming server. Started by the core's init (after the store), stopped by its fini on
 * the loop thread. Exec, Attach and PortForward answer a URL from it. */
int cri_stream_server_start(cri_t *c, berth_error_t **err);
void cri_stream_server_stop(cri_t *c);

/* container.c: the FIFO a container created with config.stdin reads its stdin from (kept open by
 * CreateContainer), for Attach to write to. 0 with the path in out; BERTH_ENOTFOUND when it has none. */
int cri_container_stdin_path(cri_t *c, const char *container_id, char *out, size_t out_len);

/* spec.c: OCI specs (json text, malloc'd) from the CRI configs. */
typedef struct cri_image_config {
    char **env;        /* NULL-terminated "K=V" */
    char **entrypoint; /* NULL-terminated */
    char **cmd;        /* NULL-terminated */
    const char *working_dir;
    const char *user;
    const char *stop_signal;
} cri_image_config_t;

typedef struct cri_sandbox_spec_opts {
    const char *id;
    const char *netns_path;  /* "" for host network */
    const char *pause_argv0; /* the path of pause inside the rootfs: "/pause" */
    const char *cgroup_path;
    const char *resolv_path, *hosts_path, *hostname_path; /* may be NULL */
    const char *seccomp_profile_root; /* localhost/<path> profiles are read relative to it */
    /* cri-containers: */
    const char *shm_path;   /* the pod's /dev/shm (bind-mounted); NULL or "": none */
    const char *image_name; /* io.kubernetes.cri.sandbox-image-name; may be NULL */
} cri_sandbox_spec_opts_t;

typedef struct cri_container_spec_opts {
    const char *id;
    const cri_sandbox_t *sandbox;
    const char *image_name;
    const char *cgroup_path;
    const char *
        rootfs_owner_passwd; /* the rootfs's /etc/passwd and /etc/group for user names; may be NULL */
    const char *rootfs_owner_group;
    /* cri-containers: */
    const char *shm_path;             /* the pod's /dev/shm; NULL or "": none */
    uint32_t target_pid;              /* pid namespace TARGET: the target container's pid */
    const char *seccomp_profile_root; /* relative Localhost profiles are read under it */
} cri_container_spec_opts_t;

int cri_spec_sandbox(const Runtime__V1__PodSandboxConfig *cfg, const cri_sandbox_spec_opts_t *o,
                     char **json, char *why, size_t why_len);
int cri_spec_container(const Runtime__V1__ContainerConfig *cfg,
                       const Runtime__V1__PodSandboxConfig *sandbox, const cri_image_config_t *img,
                       const cri_container_spec_opts_t *o, char **json, char *why, size_t why_len);
/* spec.c (cri-containers): linux.resources as OCI JSON (malloc'd), as the container spec has them. */
/* container.c (cri-containers): a container made with config.stdin reads the FIFO
 * <cfg.state>/containers/<id>/stdin (Tasks.Create's stdin), which berthd holds open for writing so the
 * process reads no EOF; it is closed when the container stops or is removed, or by this (stdin_once:
 * when the first attach ends, as containerd does). */
void cri_container_stdin_done(cri_t *c, const char *id);
char *cri_spec_resources(const Runtime__V1__LinuxContainerResources *r);

/* ---- store.c: adding, removing and persisting (core helper; added after the first contract) ------------
 * The containerd container record is the reference: a pod or container exists once its record does
 * (created last), and is gone once its record is (deleted first). Its extension
 * "io.cri-containerd.sandbox.metadata" / "io.cri-containerd.container.metadata" (an Any, JSON value)
 * holds the CRI config and the immutable fields; the mutable ones (state, pid, times, exit code, reason)
 * live in a metadata record of kind CRI_STATUS_KIND keyed by the id. */
#define CRI_EXT_SANDBOX "io.cri-containerd.sandbox.metadata"
#define CRI_EXT_CONTAINER "io.cri-containerd.container.metadata"
#define CRI_STATUS_KIND "cri.status"
cri_sandbox_t *cri_sandbox_new(void);     /* refs 1, every string "" */
cri_container_t *cri_container_new(void); /* refs 1, every string "" */
/* Records s (or k) with Containers.Create: labels (kind, the config's labels), the extension, the spec
 * (json text, may be NULL), snapshotter and snapshot_key (may be NULL or ""), image (may be NULL). */
int cri_sandbox_record_create(cri_t *c, const cri_sandbox_t *s, const char *spec_json,
                              const char *snapshotter, const char *snapshot_key, const char *image,
                              berth_error_t **err);
int cri_container_record_create(cri_t *c, const cri_container_t *k, const char *spec_json,
                                const char *snapshotter, const char *snapshot_key,
                                berth_error_t **err);
/* cri-gaps: Containers.Update of k's record in one call: the spec (json text; NULL leaves it) and the
 * extension, written with cfg as the CRI config (NULL: k->config), e.g. the resources an update gives. */
int cri_container_record_update(cri_t *c, const cri_container_t *k,
                                const Runtime__V1__ContainerConfig *cfg, const char *spec_json,
                                berth_error_t **err);
/* Containers.Delete of the record and the status record; a missing one is no error. */
int cri_record_delete(cri_t *c, const char *id, berth_error_t **err);
/* A name held while its pod or container is being made (containerd's name index): AlreadyExists naming
 * the holder when a reservation, a pod or a container has it. Released when made (after the add) or
 * when making failed. */
int cri_store_reserve_name(cri_t *c, const char *name, const char *id, berth_error_t **err);
void cri_store_release_name(cri_t *c, const char *name);
/* Into the store (which takes its own reference): AlreadyExists when the id or (pods) the name is taken,
 * naming the holder. Removing drops the store's reference. */
int cri_store_sandbox_add(cri_t *c, cri_sandbox_t *s, berth_error_t **err);
void cri_store_sandbox_remove(cri_t *c, const char *id);
int cri_store_container_add(cri_t *c, cri_container_t *k, berth_error_t **err);
void cri_store_container_remove(cri_t *c, const char *id);
/* The mutable fields (state, pid, times, exit_code, reason, message) change under c->lock (reason and
 * message are replaced, freed and strdup'd: copy them under the lock). Exits (events.c) set EXITED,
 * finished, exit code and reason; the task itself stays for the remover to delete (Tasks.Delete).
 * Writes the mutable fields (read under c->lock) to the status record. Change them under c->lock,
 * then call this without it. */
int cri_sandbox_status_save(cri_t *c, cri_sandbox_t *s, berth_error_t **err);
int cri_container_status_save(cri_t *c, cri_container_t *k, berth_error_t **err);
/* A new random id (64 hex chars). */
void cri_new_id(char out[65]);
int64_t cri_now_ns(void);

/* image.c: an image of k8s.io found by a name ("busybox" normalizes to docker.io/library/busybox:latest),
 * a repo digest (name@sha256:...), its id (sha256:<config digest>) or a unique id prefix. NotFound when
 * none. The config and manifests are read from the content store's blobs. */
typedef struct cri_image {
    char *id;          /* sha256:<config digest> */
    char *manifest;    /* the digest of the (linux/amd64) manifest */
    char **tags;       /* NULL-terminated repo tags */
    char **digests;    /* NULL-terminated repo digests */
    uint64_t size;     /* manifest + config + layers, as containerd's image.Size */
    char *config_json; /* the image config blob */
    char *chain_id; /* of the top layer: the committed snapshot a container's rootfs starts from */
} cri_image_t;
int cri_image_find(cri_t *c, const char *ref, cri_image_t **out, berth_error_t **err);
void cri_image_free(cri_image_t *img);
/* Pulls ref (normalized) through the Transfer service, unpacked for cfg.snapshotter, and writes its
 * records (name, repo digest, id); *image_id (malloc'd) is the id. */
int cri_image_pull(cri_t *c, const char *ref, const Runtime__V1__AuthConfig *auth, char **image_id,
                   berth_error_t **err);
/* Normalizes an image name as kubelet and containerd do (docker.io/library/, :latest). Caller frees. */
char *cri_image_normalize(const char *ref);

/* pod.c: a PodSandboxStatus of s, its parts borrowed from s (valid while s is referenced and b lives):
 * for PodSandboxStatus and GetContainerEvents. Reads the mutable fields under c->lock. */
typedef struct cri_pod_status_buf {
    Runtime__V1__PodSandboxStatus st;
    Runtime__V1__PodSandboxNetworkStatus net;
    Runtime__V1__PodIP *ips; /* n_extra of them */
    Runtime__V1__PodIP **ipp;
    Runtime__V1__LinuxPodSandboxStatus lx;
    Runtime__V1__Namespace ns;
    Runtime__V1__NamespaceOption nso;
} cri_pod_status_buf_t;
void cri_pod_status_fill(cri_t *c, cri_sandbox_t *s, cri_pod_status_buf_t *b);
void cri_pod_status_release(cri_pod_status_buf_t *b);

/* seccomp.c: RuntimeDefault, containerd 1.6's default profile for x86-64 as the OCI linux.seccomp object,
 * given the process's bounding capabilities (NULL-terminated, "CAP_SYS_ADMIN" or "SYS_ADMIN"; NULL: none);
 * Localhost profiles: a JSON file in the OCI format (docker's "name", "archMap", "includes"/"excludes" read
 * too). Both give a new reference (json_object_put). */
struct json_object;
struct json_object *cri_seccomp_default(const char *const *caps);
int cri_seccomp_localhost(const char *path, struct json_object **out, char *why, size_t len);

/* container.c: the file the container's output goes to (kubelet's log file, or berthd's own when the
 * config names none), which attach follows. */
const char *cri_container_output_path(cri_t *c, const cri_container_t *k, char *out, size_t len);

/* validate.c (cri-robust): requests refused before anything is made, BERTH_EINVAL with why naming the
 * field and value; 0 when acceptable. `what` names the object in the message ("container web"). */
int cri_validate_resources(const Runtime__V1__LinuxContainerResources *r, const char *what,
                           char *why, size_t len);
int cri_validate_sysctls(const Runtime__V1__LinuxPodSandboxConfig *l, int host_net, int host_ipc,
                         char *why, size_t len);
int cri_validate_log_path(const char *dir, const char *path, char *why, size_t len);
int cri_validate_image_ref(const char *ref, char *why, size_t len);
/* gc.c (cri-robust): at start, after the store is loaded: what a CreateContainer or RemoveContainer cut
 * short by a crash left (a create lease and the snapshot it holds, a container's files without a record). */
void cri_gc_create_leftovers(cri_t *c);

#endif /* BERTH_CRI_H */
