/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libberth-client: containerd's client API in C, over gRPC (HTTP/2, nghttp2 + protobuf-c) on berthd's unix
 * socket. It works against containerd too, for everything but berth's own services (volumes, networks,
 * modules). Link with `pkg-config --cflags --libs berth-client`.
 *
 * Conventions
 * - Every fallible function returns 0 on success or a negative BERTH_E* code (<berth/error.h>: containerd's
 *   error classes, mapped from the gRPC status the server sent) and, when `err` is non-NULL, sets *err to a
 *   record holding that code and a message: the server's grpc-message, or what failed locally ("connect
 *   /run/berth/berthd.sock: No such file or directory"). Free it with berth_error_free().
 * - `call` (may be NULL) sets the namespace and the timeout of one call; NULL fields take the client's
 *   defaults. The client's namespace comes from its options, else $BERTH_NAMESPACE, else
 *   $CONTAINERD_NAMESPACE, else "default".
 * - Objects the library returns are owned by the caller and freed with the matching *_free function. Strings
 *   in them are NUL-terminated and never NULL (an absent field is "").
 * - Label and option maps are arrays of berth_kv_t with a count.
 *
 * Threads: one berth_client_t may be used from several threads at once. Each call takes an HTTP/2
 * connection from the client's pool (or opens one) for its duration, so a long call (wait, events, a pull)
 * never holds up the others. Callbacks run on the calling thread, or on a thread of the call's own, as
 * each function says; never two at once for one call.
 */
#ifndef BERTH_CLIENT_H
#define BERTH_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <berth/error.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BERTH_CLIENT_DEFAULT_ADDRESS "/run/berth/berthd.sock"
#define BERTH_CLIENT_DEFAULT_RUNTIME "io.containerd.runc.v2"
#define BERTH_CLIENT_DEFAULT_SNAPSHOTTER "overlayfs"

/* ---- the client, calls, errors ---------------------------------------------------------------------- */

typedef struct berth_client_s berth_client_t;

typedef struct berth_client_options {
    const char *namespace_; /* the default namespace; NULL: from the environment, as above */
    int timeout_ms;         /* the default timeout of a unary call; 0: none */
    int connect_timeout_ms; /* 0: 5000 */
} berth_client_options_t;

typedef struct berth_call {
    const char *namespace_; /* NULL: the client's */
    int timeout_ms;         /* 0: the client's default; -1: none (for waits and streams) */
    const char
        *lease; /* the lease the call runs under (containerd's "containerd-lease" header): what
                               it makes is kept from the garbage collector until the lease goes; NULL: none */
} berth_call_t;

typedef struct berth_kv {
    char *key;
    char *value;
} berth_kv_t;

/* address: a socket path, or "unix://PATH"; NULL: $BERTH_ADDRESS, else BERTH_CLIENT_DEFAULT_ADDRESS.
 * Does not connect: the first call does, so a missing daemon shows there (BERTH_EUNAVAILABLE). */
int berth_client_new(const char *address, const berth_client_options_t *opts, berth_client_t **out,
                     berth_error_t **err);
/* Closes every pooled connection. Calls still running on other threads must have returned. */
void berth_client_free(berth_client_t *c);
const char *berth_client_namespace(const berth_client_t *c);
const char *berth_client_address(const berth_client_t *c);

void berth_error_free(berth_error_t *e);
/* containerd's name of a class: "not found", "already exists", "invalid argument", ... */
const char *berth_error_class(int code);

/* The daemon's version and revision (containerd.services.version.v1.Version). */
int berth_version(berth_client_t *c, const berth_call_t *call, char **version, char **revision,
                  berth_error_t **err);
/* 0 when the daemon answers grpc.health.v1.Health/Check with SERVING. */
int berth_serving(berth_client_t *c, const berth_call_t *call, berth_error_t **err);

/* Frees any string or array the library returned without a *_free of its own. */
void berth_free(void *p);
void berth_kv_free(berth_kv_t *kv, size_t n);

/* ---- plugins, modules, namespaces -------------------------------------------------------------------- */

typedef struct berth_plugin {
    char *type, *id;
    char **requires;
    size_t n_requires;
    char **capabilities;
    size_t n_capabilities;
    berth_kv_t *exports;
    size_t n_exports;
    char *init_error; /* "" when it started */
} berth_plugin_t;

/* containerd.services.introspection.v1.Introspection/Plugins, with containerd's filters */
int berth_plugins(berth_client_t *c, const berth_call_t *call, const char *const *filters,
                  size_t n_filters, berth_plugin_t **out, size_t *n, berth_error_t **err);
void berth_plugins_free(berth_plugin_t *p, size_t n);

typedef struct berth_server_info {
    char *uuid;
    uint64_t pid; /* 0 when the server does not say */
    char **deprecations;
    size_t n_deprecations;
} berth_server_info_t;
int berth_server_info(berth_client_t *c, const berth_call_t *call, berth_server_info_t *out,
                      berth_error_t **err);
void berth_server_info_free(berth_server_info_t *s);

typedef struct berth_module {
    char *uri, *type, *id, *file, *module, *version, *abi, *status, *reason;
    int32_t init_order;
    char **requires;
    size_t n_requires;
    berth_kv_t *exports;
    size_t n_exports;
} berth_module_t;
/* berth.services.modules.v1.Modules/List (berthd only) */
int berth_modules(berth_client_t *c, const berth_call_t *call, berth_module_t **out, size_t *n,
                  berth_error_t **err);
void berth_modules_free(berth_module_t *m, size_t n);

/* What berthd's reload did. Lists hold plugin URIs, or "<uri>: <reason>" for failed and restart_needed. */
typedef struct berth_modules_reload {
    char *message;  /* a one-line summary */
    char **enabled; /* newly initialised */
    size_t n_enabled;
    char **disabled; /* finished: disabled now, or no longer provided by a module file */
    size_t n_disabled;
    char **reloaded; /* finished and initialised again */
    size_t n_reloaded;
    char **failed; /* its (re)init failed */
    size_t n_failed;
    char **restart_needed; /* changed, but needs a restart */
    size_t n_restart_needed;
} berth_modules_reload_t;
/* berth.services.modules.v1.Modules/Reload (berthd only): berthd re-reads its config and applies the
 * difference, as on SIGHUP; this returns once it is over. A config that does not validate gives
 * BERTH_EINVAL with the error `berthd config check` prints (then nothing changed). A reload may take as
 * long as plugins take to initialise: give `call` a timeout to match (or -1). */
int berth_modules_reload(berth_client_t *c, const berth_call_t *call, berth_modules_reload_t *out,
                         berth_error_t **err);
void berth_modules_reload_free(berth_modules_reload_t *r);

int berth_namespace_create(berth_client_t *c, const berth_call_t *call, const char *name,
                           const berth_kv_t *labels, size_t n_labels, berth_error_t **err);
int berth_namespace_list(berth_client_t *c, const berth_call_t *call, char ***names, size_t *n,
                         berth_error_t **err); /* free each name and the array with berth_free */
int berth_namespace_delete(berth_client_t *c, const berth_call_t *call, const char *name,
                           berth_error_t **err);

/* ---- images ------------------------------------------------------------------------------------------ */

typedef struct berth_descriptor {
    char *media_type;
    char *digest;
    int64_t size;
} berth_descriptor_t;

typedef struct berth_image {
    char *name;
    berth_descriptor_t target;
    berth_kv_t *labels;
    size_t n_labels;
    int64_t created_at_ns, updated_at_ns;
} berth_image_t;

void berth_image_free(berth_image_t *img); /* the struct and what it holds */
void berth_images_free(berth_image_t *imgs, size_t n);

int berth_image_get(berth_client_t *c, const berth_call_t *call, const char *name,
                    berth_image_t **out, berth_error_t **err);
/* filters: containerd's syntax ("name~=busybox", "labels.x==y"); none: every image */
int berth_image_list(berth_client_t *c, const berth_call_t *call, const char *const *filters,
                     size_t n_filters, berth_image_t **out, size_t *n, berth_error_t **err);
int berth_image_remove(berth_client_t *c, const berth_call_t *call, const char *name, int sync,
                       berth_error_t **err);
/* dst gets src's target; an existing dst is replaced only with force (else BERTH_EEXIST) */
int berth_image_tag(berth_client_t *c, const berth_call_t *call, const char *src, const char *dst,
                    int force, berth_error_t **err);
/* The image's total size: its manifest, config and layers for the client's platform (compressed). */
int berth_image_size(berth_client_t *c, const berth_call_t *call, const char *name, int64_t *size,
                     berth_error_t **err);

/* The image's config for this platform (application/vnd.oci.image.config.v1+json), as stored. */
int berth_image_config(berth_client_t *c, const berth_call_t *call, const char *name,
                       char **config_json, berth_error_t **err);

/* Progress of a pull, push or import: containerd's transfer Progress messages, in order. Called on a
 * thread of the call's own. event: "resolving", "resolved", "waiting", "downloading", "uploading",
 * "unpacking", "complete", "saved" ... (whatever the server sends); name names the object (a reference or
 * "layer-sha256:..."), parents the objects it belongs to. desc is NULL when the server sent none. */
typedef struct berth_progress {
    const char *event;
    const char *name;
    const char *const *parents;
    size_t n_parents;
    int64_t progress, total;
    const berth_descriptor_t *desc;
} berth_progress_t;
typedef void (*berth_progress_fn)(void *user, const berth_progress_t *p);

typedef struct berth_registry_opts {
    int plain_http;        /* http:// instead of https:// (ctr's --plain-http) */
    const char *hosts_dir; /* containerd's hosts.toml dir; NULL: the daemon's */
    const char *username;  /* Basic/Bearer credentials answered to the server's auth requests */
    const char *secret;
    const berth_kv_t *headers;
    size_t n_headers;
} berth_registry_opts_t;

typedef struct berth_pull_opts {
    const char *platform;    /* "linux/amd64"; NULL: the daemon's default */
    int unpack;              /* unpack into the snapshotter */
    const char *snapshotter; /* NULL: BERTH_CLIENT_DEFAULT_SNAPSHOTTER */
    berth_registry_opts_t registry;
    berth_progress_fn progress;
    void *progress_user;
} berth_pull_opts_t;

/* Pulls ref through the Transfer service (the daemon fetches), stores it under ref's name, unpacks when
 * asked. *out (may be NULL) is the stored image. */
int berth_image_pull(berth_client_t *c, const berth_call_t *call, const char *ref,
                     const berth_pull_opts_t *opts, berth_image_t **out, berth_error_t **err);

typedef struct berth_push_opts {
    const char *platform; /* NULL: every platform the image holds */
    berth_registry_opts_t registry;
    berth_progress_fn progress;
    void *progress_user;
} berth_push_opts_t;
/* Pushes the stored image `name` to `ref` (NULL: name). */
int berth_image_push(berth_client_t *c, const berth_call_t *call, const char *name, const char *ref,
                     const berth_push_opts_t *opts, berth_error_t **err);

typedef struct berth_import_opts {
    const char *base_name;  /* names images without a ref annotation, as ctr's --base-name */
    const char *index_name; /* also store the whole index under this name */
    int all_platforms;
    const char *platform;
    int unpack;
    const char *snapshotter;
    berth_progress_fn progress;
    void *progress_user;
} berth_import_opts_t;
/* Imports an OCI or docker-archive tar read from fd (through the Transfer and Streaming services). *out, *n:
 * the images stored (may be NULL). */
int berth_image_import(berth_client_t *c, const berth_call_t *call, int fd,
                       const berth_import_opts_t *opts, berth_image_t **out, size_t *n,
                       berth_error_t **err);

typedef struct berth_export_opts {
    const char *platform; /* NULL: every platform */
    int all_platforms;
    int skip_manifest_json; /* no docker manifest.json */
} berth_export_opts_t;
/* Writes an OCI tar of the named images to fd. */
int berth_image_export(berth_client_t *c, const berth_call_t *call, const char *const *names,
                       size_t n_names, int fd, const berth_export_opts_t *opts,
                       berth_error_t **err);

/* ---- OCI runtime spec generation --------------------------------------------------------------------- */

/* What the spec says beyond containerd's default spec and the image's config (as containerd's oci.With*
 * options). Arrays with a count; unset fields leave the default or the image's value. */
typedef struct berth_spec_opts {
    const char *const
        *args; /* the process's args (the image's Entrypoint + these, docker's rule) */
    size_t n_args;
    int replace_entrypoint; /* use `entrypoint` instead of the image's (and drop the image's Cmd) */
    const char *const *entrypoint;
    size_t n_entrypoint;
    const char *const *env; /* "K=V", added to (and overriding) the image's */
    size_t n_env;
    const char *cwd;  /* NULL: the image's WorkingDir, else "/" */
    const char *user; /* "uid[:gid]", "name[:group]" (looked up in the rootfs); NULL: the image's */
    int tty;
    const char *hostname;
    int host_hosts;       /* bind the host's /etc/hosts read-only */
    int host_resolv_conf; /* bind the host's /etc/resolv.conf read-only */
    int host_localtime;   /* bind the host's /etc/localtime read-only */
    int no_new_privileges;
    int readonly_rootfs;
    int privileged;             /* every capability, no masked or read-only paths, all devices */
    const char *const *cap_add; /* "NET_ADMIN" or "CAP_NET_ADMIN"; "ALL" */
    size_t n_cap_add;
    const char *const *cap_drop;
    size_t n_cap_drop;
    int64_t memory_limit;     /* bytes; 0: none */
    double cpus;              /* CPU quota in CPUs (period 100000 us); 0: none */
    const char *cgroups_path; /* NULL: "/<namespace>/<id>" as containerd's default */
} berth_spec_opts_t;

/* containerd's default Linux spec for container `id`, then the image's config (may be NULL: no image), then
 * opts. `rootfs_dir` (may be NULL) is a mounted view of the image's rootfs, read for user and group names;
 * without it a name that is not numeric needs the image's snapshot (berth_container_create does that). */
int berth_spec_generate(berth_client_t *c, const berth_call_t *call, const char *id,
                        const char *image, const berth_spec_opts_t *opts, const char *rootfs_dir,
                        char **spec_json, berth_error_t **err);
/* A process spec (the "process" object) for an exec in container id: its spec's process with args, env,
 * cwd, user and tty from opts. */
int berth_spec_process(berth_client_t *c, const berth_call_t *call, const char *id,
                       const berth_spec_opts_t *opts, char **process_json, berth_error_t **err);

/* ---- containers -------------------------------------------------------------------------------------- */

typedef struct berth_container {
    char *id;
    char *image;
    char *runtime;
    char *snapshotter;
    char *snapshot_key;
    berth_kv_t *labels;
    size_t n_labels;
    char *spec_json; /* "" when the container has none */
    int64_t created_at_ns, updated_at_ns;
} berth_container_t;

void berth_container_free(berth_container_t *ct);
void berth_containers_free(berth_container_t *cts, size_t n);

enum berth_snapshot_mode {
    BERTH_SNAPSHOT_NONE = 0, /* no rootfs snapshot (the spec names its own root) */
    BERTH_SNAPSHOT_NEW, /* an active snapshot on the image's top layer (containerd's WithNewSnapshot) */
    BERTH_SNAPSHOT_VIEW,     /* a read-only view (WithNewSnapshotView) */
    BERTH_SNAPSHOT_EXISTING, /* snapshot_key already exists (WithSnapshot) */
};

typedef struct berth_container_opts {
    const char *image; /* the image's name: recorded, the snapshot's parent, the spec's base */
    int snapshot;      /* enum berth_snapshot_mode */
    const char *snapshotter;  /* NULL: BERTH_CLIENT_DEFAULT_SNAPSHOTTER */
    const char *snapshot_key; /* NULL: the container's id */
    int remap; /* a user-remapped snapshot: the image's files shifted to uid/gid (WithRemappedSnapshot) */
    uint32_t remap_uid, remap_gid;
    const berth_kv_t *labels;
    size_t n_labels;
    const char *runtime; /* NULL: BERTH_CLIENT_DEFAULT_RUNTIME */
    const char
        *runtime_options_type; /* an Any for the runtime: type URL and encoded value; NULL: none */
    const void *runtime_options;
    size_t runtime_options_len;
    /* berth's attachments, stored as the labels the runtime reads at task create */
    const char *network; /* io.berth.network: "name[,name]", "host", "none" */
    const char *ports;   /* io.berth.ports: "[hostIP:]hostPort:containerPort[/proto][,...]" */
    const char
        *volumes; /* io.berth.volumes: "name:/path[:ro]" or "/host:/path[:ro]", comma-separated */
    /* the spec: spec_json as it is, else generated from the image and spec_opts (NULL: defaults) */
    const char *spec_json;
    const berth_spec_opts_t *spec_opts;
} berth_container_opts_t;

/* Makes the snapshot first and the container record last; a failure removes the snapshot again. */
int berth_container_create(berth_client_t *c, const berth_call_t *call, const char *id,
                           const berth_container_opts_t *opts, berth_container_t **out,
                           berth_error_t **err);
int berth_container_load(berth_client_t *c, const berth_call_t *call, const char *id,
                         berth_container_t **out, berth_error_t **err);
int berth_container_list(berth_client_t *c, const berth_call_t *call, const char *const *filters,
                         size_t n_filters, berth_container_t **out, size_t *n, berth_error_t **err);
/* Sets (value non-NULL) or removes (value NULL) labels; other labels stay. */
int berth_container_set_labels(berth_client_t *c, const berth_call_t *call, const char *id,
                               const berth_kv_t *labels, size_t n_labels, berth_error_t **err);
/* Deletes the record first, then (cleanup_snapshot) its snapshot: a crash between leaves garbage only. */
int berth_container_delete(berth_client_t *c, const berth_call_t *call, const char *id,
                           int cleanup_snapshot, berth_error_t **err);

/* ---- task IO ----------------------------------------------------------------------------------------- */

/* Where one stream of a task goes (or, for stdin, comes from). */
enum berth_stream_kind {
    BERTH_STREAM_NONE = 0, /* /dev/null */
    BERTH_STREAM_FD, /* the caller's fd: copied from (stdin) or to (stdout, stderr) by the library */
    BERTH_STREAM_FILE,     /* a file: read (stdin), or appended to (stdout, stderr) */
    BERTH_STREAM_CALLBACK, /* stdout, stderr: `fn` gets each chunk, then len 0 at the end */
};
typedef void (*berth_output_fn)(void *user, int stream /* 1 stdout, 2 stderr */, const char *data,
                                size_t len);

typedef struct berth_stream {
    int kind; /* enum berth_stream_kind */
    int fd;
    const char *path;
    berth_output_fn fn;
    void *user;
} berth_stream_t;

typedef struct berth_io_opts {
    int terminal; /* a pty: stdout carries both streams; stderr is ignored */
    berth_stream_t in, out, err;
    /* the shim writes stdout and stderr itself, no FIFOs for them: "file:///path" appends raw output (as
     * containerd), "file:///path?format=cri&max-size=BYTES&max-files=N" writes timestamped, stream-tagged
     * lines (CRI's format) and rotates by size. `in` still works. */
    const char *log_uri;
    /* a stdin FIFO that outlives this client: `berth attach` opens it later; the caller's `in` is ignored */
    int keep_stdin;
    const char
        *fifo_dir; /* where the FIFOs are made; NULL: $BERTH_FIFO_DIR, else /run/berth/fifo */
} berth_io_opts_t;

/* The FIFOs a task's IO uses and the threads copying them. */
typedef struct berth_io_s berth_io_t;
/* Waits until stdout and stderr have reached their end (the process exited and the shim closed them). */
void berth_io_wait(berth_io_t *io);
/* Closes our end of stdin (the process then reads EOF once berth_task_close_stdin is sent too). */
void berth_io_close_stdin(berth_io_t *io);
/* Stops the copying, closes and removes the FIFOs and their dir. */
void berth_io_free(berth_io_t *io);
/* The stdin FIFO's path ("" without one): kept by keep_stdin for a later attach. */
const char *berth_io_stdin_path(const berth_io_t *io);

/* ---- tasks ------------------------------------------------------------------------------------------- */

typedef struct berth_exit {
    uint32_t status; /* the process's exit status: code, or 128+signal */
    int64_t exited_at_ns;
} berth_exit_t;

typedef struct berth_task_info {
    char *id;
    char *exec_id;
    char *status; /* "created", "running", "stopped", "paused", "pausing", "unknown" */
    uint32_t pid;
    uint32_t exit_status;
    int64_t exited_at_ns;
    int terminal;
    char *stdin_path, *stdout_path, *stderr_path;
} berth_task_info_t;
void berth_task_info_free(berth_task_info_t *t); /* what it holds, not the struct */

/* Creates the container's task: makes the FIFOs (or takes io->log_uri), starts copying, sends Create with
 * the container's rootfs mounts. *io_out (may be NULL: freed at once after the create) is the task's IO. */
int berth_task_create(berth_client_t *c, const berth_call_t *call, const char *id,
                      const berth_io_opts_t *io, berth_io_t **io_out, uint32_t *pid,
                      berth_error_t **err);
/* exec_id NULL or "": the container's init process */
int berth_task_start(berth_client_t *c, const berth_call_t *call, const char *id,
                     const char *exec_id, uint32_t *pid, berth_error_t **err);
/* Blocks until the process exits (the call's timeout applies; -1: forever). */
int berth_task_wait(berth_client_t *c, const berth_call_t *call, const char *id,
                    const char *exec_id, berth_exit_t *out, berth_error_t **err);
int berth_task_kill(berth_client_t *c, const berth_call_t *call, const char *id,
                    const char *exec_id, int signal, int all, berth_error_t **err);
int berth_task_get(berth_client_t *c, const berth_call_t *call, const char *id, const char *exec_id,
                   berth_task_info_t *out, berth_error_t **err);
int berth_task_list(
    berth_client_t *c, const berth_call_t *call, berth_task_info_t **out, size_t *n,
    berth_error_t **err); /* free each with berth_task_info_free, the array with berth_free */
int berth_task_pids(berth_client_t *c, const berth_call_t *call, const char *id, uint32_t **pids,
                    size_t *n, berth_error_t **err);
int berth_task_pause(berth_client_t *c, const berth_call_t *call, const char *id,
                     berth_error_t **err);
int berth_task_resume(berth_client_t *c, const berth_call_t *call, const char *id,
                      berth_error_t **err);
/* Adds exec process exec_id (process_json: berth_spec_process's output) with its IO; start it with
 * berth_task_start(id, exec_id). */
int berth_task_exec(berth_client_t *c, const berth_call_t *call, const char *id,
                    const char *exec_id, const char *process_json, const berth_io_opts_t *io,
                    berth_io_t **io_out, berth_error_t **err);
int berth_task_close_stdin(berth_client_t *c, const berth_call_t *call, const char *id,
                           const char *exec_id, berth_error_t **err);
int berth_task_resize(berth_client_t *c, const berth_call_t *call, const char *id,
                      const char *exec_id, uint32_t width, uint32_t height, berth_error_t **err);
/* Deletes an exited (or created) process; the init's delete removes the task. out may be NULL. */
int berth_task_delete(berth_client_t *c, const berth_call_t *call, const char *id,
                      const char *exec_id, berth_exit_t *out, berth_error_t **err);

/* ---- events ------------------------------------------------------------------------------------------ */

typedef struct berth_event {
    int64_t timestamp_ns;
    const char *namespace_;
    const char *topic;
    const char *type_url;
    const uint8_t *value;
    size_t len;
    const char *json; /* the event decoded as JSON when the library knows its type, else NULL */
} berth_event_t;
/* Return nonzero to stop the subscription (berth_events_subscribe then returns 0). */
typedef int (*berth_event_fn)(void *user, const berth_event_t *ev);

/* Streams events matching any of the filters (containerd's syntax: `topic=="/tasks/exit"`,
 * `namespace==default`) to fn on the calling thread, until fn returns nonzero, the call's timeout, or an
 * error. */
int berth_events_subscribe(berth_client_t *c, const berth_call_t *call, const char *const *filters,
                           size_t n_filters, berth_event_fn fn, void *user, berth_error_t **err);

/* ---- snapshots, content, leases: thin wrappers ------------------------------------------------------- */

typedef struct berth_mount {
    char *type, *source, *target;
    char **options;
    size_t n_options;
} berth_mount_t;
void berth_mounts_free(berth_mount_t *m, size_t n);

typedef struct berth_snapshot_info {
    char *name, *parent;
    char *kind; /* "active", "view", "committed" */
    berth_kv_t *labels;
    size_t n_labels;
    int64_t created_at_ns, updated_at_ns;
} berth_snapshot_info_t;
void berth_snapshot_infos_free(berth_snapshot_info_t *s, size_t n);

int berth_snapshot_prepare(berth_client_t *c, const berth_call_t *call, const char *snapshotter,
                           const char *key, const char *parent, const berth_kv_t *labels,
                           size_t n_labels, berth_mount_t **mounts, size_t *n_mounts,
                           berth_error_t **err);
int berth_snapshot_view(berth_client_t *c, const berth_call_t *call, const char *snapshotter,
                        const char *key, const char *parent, berth_mount_t **mounts,
                        size_t *n_mounts, berth_error_t **err);
int berth_snapshot_mounts(berth_client_t *c, const berth_call_t *call, const char *snapshotter,
                          const char *key, berth_mount_t **mounts, size_t *n_mounts,
                          berth_error_t **err);
int berth_snapshot_commit(berth_client_t *c, const berth_call_t *call, const char *snapshotter,
                          const char *name, const char *key, berth_error_t **err);
int berth_snapshot_remove(berth_client_t *c, const berth_call_t *call, const char *snapshotter,
                          const char *key, berth_error_t **err);
int berth_snapshot_stat(berth_client_t *c, const berth_call_t *call, const char *snapshotter,
                        const char *key, berth_snapshot_info_t **out, berth_error_t **err);
int berth_snapshot_list(berth_client_t *c, const berth_call_t *call, const char *snapshotter,
                        berth_snapshot_info_t **out, size_t *n, berth_error_t **err);
int berth_snapshot_usage(berth_client_t *c, const berth_call_t *call, const char *snapshotter,
                         const char *key, int64_t *size, int64_t *inodes, berth_error_t **err);
/* Mounts `mounts` at target (what `ctr snapshots mount` prints, done): the caller unmounts with umount2. */
int berth_mount_all(const berth_mount_t *mounts, size_t n, const char *target, berth_error_t **err);

typedef struct berth_content_info {
    char *digest;
    int64_t size;
    int64_t created_at_ns, updated_at_ns;
    berth_kv_t *labels;
    size_t n_labels;
} berth_content_info_t;
void berth_content_infos_free(berth_content_info_t *i, size_t n);

int berth_content_info(berth_client_t *c, const berth_call_t *call, const char *digest,
                       berth_content_info_t **out, berth_error_t **err);
int berth_content_list(berth_client_t *c, const berth_call_t *call, const char *const *filters,
                       size_t n_filters, berth_content_info_t **out, size_t *n,
                       berth_error_t **err);
/* Writes the blob to fd; or into *data (NUL-terminated, *len bytes) with fd -1 */
int berth_content_read(berth_client_t *c, const berth_call_t *call, const char *digest, int fd,
                       char **data, size_t *len, berth_error_t **err);
int berth_content_delete(berth_client_t *c, const berth_call_t *call, const char *digest,
                         berth_error_t **err);

typedef struct berth_lease {
    char *id;
    int64_t created_at_ns;
    berth_kv_t *labels;
    size_t n_labels;
} berth_lease_t;
void berth_leases_free(berth_lease_t *l, size_t n);

/* id NULL: a random one; expire_s > 0 sets containerd.io/gc.expire */
int berth_lease_create(berth_client_t *c, const berth_call_t *call, const char *id, int expire_s,
                       berth_lease_t **out, berth_error_t **err);
int berth_lease_list(berth_client_t *c, const berth_call_t *call, berth_lease_t **out, size_t *n,
                     berth_error_t **err);
int berth_lease_delete(berth_client_t *c, const berth_call_t *call, const char *id, int sync,
                       berth_error_t **err);
/* type: "content", "snapshots/overlayfs", ...; as containerd's leases.Resource */
int berth_lease_add_resource(berth_client_t *c, const berth_call_t *call, const char *lease,
                             const char *id, const char *type, berth_error_t **err);

/* ---- volumes and networks (berthd's own services) ---------------------------------------------------- */

typedef struct berth_volume {
    char *name, *driver, *mountpoint;
    berth_kv_t *labels;
    size_t n_labels;
    berth_kv_t *options;
    size_t n_options;
    int64_t created_at_ns;
    char **containers; /* the containers that name it */
    size_t n_containers;
} berth_volume_t;
void berth_volume_free(berth_volume_t *v);
void berth_volumes_free(berth_volume_t *v, size_t n);

/* *created (may be NULL) is 0 when an identical volume already existed */
int berth_volume_create(berth_client_t *c, const berth_call_t *call, const char *name,
                        const berth_kv_t *options, size_t n_options, const berth_kv_t *labels,
                        size_t n_labels, berth_volume_t **out, int *created, berth_error_t **err);
int berth_volume_get(berth_client_t *c, const berth_call_t *call, const char *name,
                     berth_volume_t **out, berth_error_t **err);
int berth_volume_list(berth_client_t *c, const berth_call_t *call, const char *const *filters,
                      size_t n_filters, berth_volume_t **out, size_t *n, berth_error_t **err);
int berth_volume_remove(berth_client_t *c, const berth_call_t *call, const char *name, int force,
                        berth_error_t **err);
int berth_volume_prune(berth_client_t *c, const berth_call_t *call, const char *const *filters,
                       size_t n_filters, char ***removed, size_t *n_removed, uint64_t *reclaimed,
                       berth_error_t **err);

typedef struct berth_network {
    char *name, *source, *driver, *bridge, *subnet, *gateway;
    char *conflist; /* the CNI conflist JSON */
    berth_kv_t *labels;
    size_t n_labels;
} berth_network_t;
void berth_network_free(berth_network_t *n);
void berth_networks_free(berth_network_t *n, size_t count);

typedef struct berth_network_opts {
    const char *conflist; /* a whole CNI conflist; else a bridge from the fields below */
    const char *subnet, *gateway, *bridge;
    int internal; /* no masquerade */
    const berth_kv_t *labels;
    size_t n_labels;
} berth_network_opts_t;
int berth_network_create(berth_client_t *c, const berth_call_t *call, const char *name,
                         const berth_network_opts_t *opts, berth_network_t **out,
                         berth_error_t **err);
int berth_network_get(berth_client_t *c, const berth_call_t *call, const char *name,
                      berth_network_t **out, berth_error_t **err);
int berth_network_list(berth_client_t *c, const berth_call_t *call, const char *const *filters,
                       size_t n_filters, berth_network_t **out, size_t *n, berth_error_t **err);
int berth_network_remove(berth_client_t *c, const berth_call_t *call, const char *name,
                         berth_error_t **err);

typedef struct berth_endpoint {
    char *namespace_, *container_id, *network, *interface, *gateway, *mac, *netns;
    char **addresses;
    size_t n_addresses;
} berth_endpoint_t;
void berth_endpoints_free(berth_endpoint_t *e, size_t n);
/* network NULL: every network's */
int berth_network_endpoints(berth_client_t *c, const berth_call_t *call, const char *network,
                            berth_endpoint_t **out, size_t *n, berth_error_t **err);

#ifdef __cplusplus
}
#endif
#endif /* BERTH_CLIENT_H */
