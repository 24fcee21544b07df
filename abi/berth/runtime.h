/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The task runtime, type "io.containerd.runtime.v2" (module runtime-runc, id "task"): runs a container's
 * processes through one shim per container, for the runtime names io.containerd.runc.v2 and
 * io.containerd.runc.v1. Tasks are named by namespace and container id; exec processes by an exec id
 * ("" or NULL names the container's init process). Tasks outlive berthd: on start the runtime finds the
 * shims again.
 *
 * Calls block on the shim (pool threads only), except watch_exits (loop thread). Errors as containerd's:
 * NotFound for a task or process that does not exist, AlreadyExists, FailedPrecondition for a process in
 * the wrong state.
 */
#ifndef BERTH_RUNTIME_H
#define BERTH_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "snapshot.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BERTH_RUNTIME_TYPE "io.containerd.runtime.v2"

/* containerd.v1.types.Status */
typedef enum berth_task_status {
    BERTH_TASK_UNKNOWN = 0,
    BERTH_TASK_CREATED = 1,
    BERTH_TASK_RUNNING = 2,
    BERTH_TASK_STOPPED = 3,
    BERTH_TASK_PAUSED = 4
} berth_task_status_t;

typedef struct berth_task_state_s {
    uint32_t pid;
    berth_task_status_t status;
    uint32_t exit_status;
    int64_t exited_ns; /* wall clock; 0 while running */
    char stdin_path[512], stdout_path[512], stderr_path[512];
    int terminal;
} berth_task_state_t;

/* The stdio a process gets: FIFO paths the client made ("" for none). With terminal, the process gets a
 * pseudoterminal whose output goes to stdout_path and whose input comes from stdin_path. */
typedef struct berth_task_io_s {
    const char *stdin_path, *stdout_path, *stderr_path;
    int terminal;
} berth_task_io_t;

/* The kernel's OOM killer killed a process in the task's memory cgroup (loop thread). */
typedef void (*berth_task_oom_fn)(void *user, const char *ns, const char *id);

/* A process ended (loop thread). */
typedef void (*berth_task_exit_fn)(void *user, const char *ns, const char *id, const char *exec_id,
                                   uint32_t pid, uint32_t exit_status, int64_t exited_ns);

typedef struct berth_runtime_v1_ops_s {
    uint32_t struct_size;
    /* Makes the bundle (spec_json as config.json, the rootfs mounted from `mounts`), starts the shim and
     * creates the task; *pid is the init process. */
    int (*create)(void *rt, const char *ns, const char *id, const char *runtime_name,
                  const char *spec_json, const berth_mount_t *mounts, size_t n_mounts,
                  const berth_task_io_t *io, uint32_t *pid, berth_error_t **err);
    int (*start)(void *rt, const char *ns, const char *id, const char *exec_id, uint32_t *pid,
                 berth_error_t **err);
    int (*kill)(void *rt, const char *ns, const char *id, const char *exec_id, uint32_t signal,
                int all, berth_error_t **err);
    /* Removes a stopped (or never started) process; for init, the task: shim, rootfs and bundle go. */
    int (*remove)(void *rt, const char *ns, const char *id, const char *exec_id,
                  berth_task_state_t *final, berth_error_t **err);
    int (*state)(void *rt, const char *ns, const char *id, const char *exec_id,
                 berth_task_state_t *out, berth_error_t **err);
    int (*exec)(void *rt, const char *ns, const char *id, const char *exec_id,
                const char *spec_json, const berth_task_io_t *io, berth_error_t **err);
    int (*pause)(void *rt, const char *ns, const char *id, berth_error_t **err);
    int (*resume)(void *rt, const char *ns, const char *id, berth_error_t **err);
    /* *pids is malloc'd (free with api->free). */
    int (*pids)(void *rt, const char *ns, const char *id, uint32_t **pids, size_t *n,
                berth_error_t **err);
    int (*close_io)(void *rt, const char *ns, const char *id, const char *exec_id,
                    berth_error_t **err);
    /* resources_json: an OCI LinuxResources object. */
    int (*update)(void *rt, const char *ns, const char *id, const char *resources_json,
                  berth_error_t **err);
    /* The namespace's tasks, by container id. */
    int (*list)(void *rt, const char *ns, int (*cb)(void *user, const char *id), void *user,
                berth_error_t **err);
    /* Hears of every process exit (loop thread only; for the daemon's life). */
    int (*watch_exits)(void *rt, berth_task_exit_fn fn, void *user, berth_error_t **err);
    /* Sets the size of a process's terminal (FailedPrecondition for a process without one). Added after
     * the first release of this table: check struct_size before calling. */
    int (*resize_pty)(void *rt, const char *ns, const char *id, const char *exec_id, uint32_t width,
                      uint32_t height, berth_error_t **err);
    /* Hears of every OOM kill in a task's memory cgroup (loop thread only; for the daemon's life). Added
     * after the first release of this table: check struct_size before calling. */
    int (*watch_ooms)(void *rt, berth_task_oom_fn fn, void *user, berth_error_t **err);
} berth_runtime_v1_ops_t;

#ifdef __cplusplus
}
#endif
#endif /* BERTH_RUNTIME_H */
