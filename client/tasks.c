/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tasks as containerd's client drives them: Create with the container's rootfs mounts
 * (Snapshots.Mounts(snapshotter, snapshot_key)) and the IO's FIFO paths, Start, Wait, Kill, Exec with the
 * process spec as an Any, Delete.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "services/containers/v1/containers.pb-c.h"
#include "services/snapshots/v1/snapshots.pb-c.h"
#include "services/tasks/v1/tasks.pb-c.h"
#include "task_internal.h"

#define TASKS(m) "/containerd.services.tasks.v1.Tasks/" m
#define PROCESS_TYPE_URL "types.containerd.io/opencontainers/runtime-spec/1/Process"

static char *
nz(const char *s)
{
    return (char *)(s ? s : "");
}

/* The container's snapshot mounts (none when it has no snapshot). *owner frees them. */
static int
rootfs_mounts(berth_client_t *c, const berth_call_t *call, const char *id, ProtobufCMessage **owner,
              Containerd__Types__Mount ***m, size_t *n, berth_error_t **err)
{
    Containerd__Services__Containers__V1__GetContainerRequest g =
        CONTAINERD__SERVICES__CONTAINERS__V1__GET_CONTAINER_REQUEST__INIT;
    g.id = (char *)id;
    ProtobufCMessage *resp = NULL;
    int rc = bc_unary(c, call, "/containerd.services.containers.v1.Containers/Get", &g.base,
                      &containerd__services__containers__v1__get_container_response__descriptor,
                      &resp, err);
    if (rc < 0)
        return bc_error_wrap(err, rc, "container \"%s\"", id);
    Containerd__Services__Containers__V1__Container *ct =
        ((Containerd__Services__Containers__V1__GetContainerResponse *)resp)->container;
    *owner = NULL, *m = NULL, *n = 0;
    if (ct && ct->snapshotter && *ct->snapshotter && ct->snapshot_key && *ct->snapshot_key) {
        Containerd__Services__Snapshots__V1__MountsRequest r =
            CONTAINERD__SERVICES__SNAPSHOTS__V1__MOUNTS_REQUEST__INIT;
        r.snapshotter = ct->snapshotter, r.key = ct->snapshot_key;
        rc =
            bc_unary(c, call, "/containerd.services.snapshots.v1.Snapshots/Mounts", &r.base,
                     &containerd__services__snapshots__v1__mounts_response__descriptor, owner, err);
        if (rc < 0)
            rc = bc_error_wrap(err, rc, "mounts of snapshot \"%s\" of container \"%s\"",
                               ct->snapshot_key, id);
        else {
            Containerd__Services__Snapshots__V1__MountsResponse *mr = (void *)*owner;
            *m = mr->mounts, *n = mr->n_mounts;
        }
    }
    protobuf_c_message_free_unpacked(resp, NULL);
    return rc;
}

static void
io_give(berth_io_t *io, berth_io_t **io_out)
{
    if (io_out)
        *io_out = io;
    else
        berth_io_free(io);
}

BC_EXPORT int
berth_task_create(berth_client_t *c, const berth_call_t *call, const char *id,
                  const berth_io_opts_t *io_opts, berth_io_t **io_out, uint32_t *pid,
                  berth_error_t **err)
{
    ProtobufCMessage *mowner = NULL;
    Containerd__Types__Mount **mounts = NULL;
    size_t n_mounts = 0;
    int rc = rootfs_mounts(c, call, id, &mowner, &mounts, &n_mounts, err);
    if (rc < 0)
        return rc;
    berth_io_t *io = NULL;
    if ((rc = bc_io_create(io_opts, id, &io, err)) < 0) {
        berth_io_free(io);
        if (mowner)
            protobuf_c_message_free_unpacked(mowner, NULL);
        return bc_error_wrap(err, rc, "task \"%s\"", id);
    }
    Containerd__Services__Tasks__V1__CreateTaskRequest req =
        CONTAINERD__SERVICES__TASKS__V1__CREATE_TASK_REQUEST__INIT;
    req.container_id = (char *)id;
    req.rootfs = mounts, req.n_rootfs = n_mounts;
    req.stdin = (char *)bc_io_stdin(io);
    req.stdout = (char *)bc_io_stdout(io);
    req.stderr = (char *)bc_io_stderr(io);
    req.terminal = bc_io_terminal(io);
    ProtobufCMessage *resp = NULL;
    rc = bc_unary(c, call, TASKS("Create"), &req.base,
                  &containerd__services__tasks__v1__create_task_response__descriptor, &resp, err);
    if (mowner)
        protobuf_c_message_free_unpacked(mowner, NULL);
    if (rc < 0) {
        berth_io_free(io);
        return bc_error_wrap(err, rc, "create task \"%s\"", id);
    }
    if (pid)
        *pid = ((Containerd__Services__Tasks__V1__CreateTaskResponse *)resp)->pid;
    protobuf_c_message_free_unpacked(resp, NULL);
    io_give(io, io_out);
    return 0;
}

BC_EXPORT int
berth_task_start(berth_client_t *c, const berth_call_t *call, const char *id, const char *exec_id,
                 uint32_t *pid, berth_error_t **err)
{
    Containerd__Services__Tasks__V1__StartRequest req =
        CONTAINERD__SERVICES__TASKS__V1__START_REQUEST__INIT;
    req.container_id = (char *)id, req.exec_id = nz(exec_id);
    ProtobufCMessage *resp = NULL;
    int rc = bc_unary(c, call, TASKS("Start"), &req.base,
                      &containerd__services__tasks__v1__start_response__descriptor, &resp, err);
    if (rc < 0)
        return bc_error_wrap(err, rc, "start task \"%s\"%s%s", id,
                             exec_id && *exec_id ? " exec " : "", nz(exec_id));
    if (pid)
        *pid = ((Containerd__Services__Tasks__V1__StartResponse *)resp)->pid;
    protobuf_c_message_free_unpacked(resp, NULL);
    return 0;
}

BC_EXPORT int
berth_task_wait(berth_client_t *c, const berth_call_t *call, const char *id, const char *exec_id,
                berth_exit_t *out, berth_error_t **err)
{
    Containerd__Services__Tasks__V1__WaitRequest req =
        CONTAINERD__SERVICES__TASKS__V1__WAIT_REQUEST__INIT;
    req.container_id = (char *)id, req.exec_id = nz(exec_id);
    berth_call_t wc = {.namespace_ = call ? call->namespace_ : NULL,
                       .timeout_ms = call && call->timeout_ms ? call->timeout_ms : -1,
                       .lease = call ? call->lease : NULL};
    ProtobufCMessage *resp = NULL;
    int rc = bc_unary(c, &wc, TASKS("Wait"), &req.base,
                      &containerd__services__tasks__v1__wait_response__descriptor, &resp, err);
    if (rc < 0)
        return bc_error_wrap(err, rc, "wait task \"%s\"", id);
    Containerd__Services__Tasks__V1__WaitResponse *r = (void *)resp;
    if (out) {
        out->status = r->exit_status;
        out->exited_at_ns = bc_ts_ns(r->exited_at);
    }
    protobuf_c_message_free_unpacked(resp, NULL);
    return 0;
}

BC_EXPORT int
berth_task_kill(berth_client_t *c, const berth_call_t *call, const char *id, const char *exec_id,
                int signal, int all, berth_error_t **err)
{
    Containerd__Services__Tasks__V1__KillRequest req =
        CONTAINERD__SERVICES__TASKS__V1__KILL_REQUEST__INIT;
    req.container_id = (char *)id, req.exec_id = nz(exec_id);
    req.signal = (uint32_t)signal, req.all = all != 0;
    int rc = bc_unary(c, call, TASKS("Kill"), &req.base, NULL, NULL, err);
    return rc < 0 ? bc_error_wrap(err, rc, "kill task \"%s\"", id) : 0;
}

static const char *
status_name(int s)
{
    switch (s) {
    case CONTAINERD__V1__TYPES__STATUS__CREATED:
        return "created";
    case CONTAINERD__V1__TYPES__STATUS__RUNNING:
        return "running";
    case CONTAINERD__V1__TYPES__STATUS__STOPPED:
        return "stopped";
    case CONTAINERD__V1__TYPES__STATUS__PAUSED:
        return "paused";
    case CONTAINERD__V1__TYPES__STATUS__PAUSING:
        return "pausing";
    default:
        return "unknown";
    }
}

static int
info_from_pb(const Containerd__V1__Types__Process *p, berth_task_info_t *t)
{
    memset(t, 0, sizeof *t);
    t->id = bc_strdup(p->container_id);
    t->exec_id = bc_strdup(p->id);
    t->status = bc_strdup(status_name(p->status));
    t->pid = p->pid;
    t->exit_status = p->exit_status;
    t->exited_at_ns = bc_ts_ns(p->exited_at);
    t->terminal = p->terminal;
    t->stdin_path = bc_strdup(p->stdin);
    t->stdout_path = bc_strdup(p->stdout);
    t->stderr_path = bc_strdup(p->stderr);
    return t->id && t->exec_id && t->status && t->stdin_path && t->stdout_path && t->stderr_path
               ? 0
               : BERTH_ENOMEM;
}

BC_EXPORT void
berth_task_info_free(berth_task_info_t *t)
{
    if (!t)
        return;
    free(t->id);
    free(t->exec_id);
    free(t->status);
    free(t->stdin_path);
    free(t->stdout_path);
    free(t->stderr_path);
    memset(t, 0, sizeof *t);
}

BC_EXPORT int
berth_task_get(berth_client_t *c, const berth_call_t *call, const char *id, const char *exec_id,
               berth_task_info_t *out, berth_error_t **err)
{
    Containerd__Services__Tasks__V1__GetRequest req =
        CONTAINERD__SERVICES__TASKS__V1__GET_REQUEST__INIT;
    req.container_id = (char *)id, req.exec_id = nz(exec_id);
    ProtobufCMessage *resp = NULL;
    int rc = bc_unary(c, call, TASKS("Get"), &req.base,
                      &containerd__services__tasks__v1__get_response__descriptor, &resp, err);
    if (rc < 0)
        return bc_error_wrap(err, rc, "task \"%s\"", id);
    Containerd__Services__Tasks__V1__GetResponse *r = (void *)resp;
    rc = r->process ? info_from_pb(r->process, out) : BERTH_ENOTFOUND;
    protobuf_c_message_free_unpacked(resp, NULL);
    if (rc < 0) {
        berth_task_info_free(out);
        return bc_error(err, rc, "task \"%s\": %s", id,
                        rc == BERTH_ENOMEM ? "out of memory" : "no process");
    }
    return 0;
}

BC_EXPORT int
berth_task_list(berth_client_t *c, const berth_call_t *call, berth_task_info_t **out, size_t *n,
                berth_error_t **err)
{
    Containerd__Services__Tasks__V1__ListTasksRequest req =
        CONTAINERD__SERVICES__TASKS__V1__LIST_TASKS_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    int rc =
        bc_unary(c, call, TASKS("List"), &req.base,
                 &containerd__services__tasks__v1__list_tasks_response__descriptor, &resp, err);
    if (rc < 0)
        return bc_error_wrap(err, rc, "list tasks");
    Containerd__Services__Tasks__V1__ListTasksResponse *r = (void *)resp;
    berth_task_info_t *v = calloc(r->n_tasks ? r->n_tasks : 1, sizeof *v);
    for (size_t i = 0; v && i < r->n_tasks; i++)
        if (info_from_pb(r->tasks[i], &v[i]) < 0) {
            for (size_t j = 0; j <= i; j++)
                berth_task_info_free(&v[j]);
            free(v);
            v = NULL;
        }
    size_t count = r->n_tasks;
    protobuf_c_message_free_unpacked(resp, NULL);
    if (!v)
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    *out = v, *n = count;
    return 0;
}

BC_EXPORT int
berth_task_pids(berth_client_t *c, const berth_call_t *call, const char *id, uint32_t **pids,
                size_t *n, berth_error_t **err)
{
    Containerd__Services__Tasks__V1__ListPidsRequest req =
        CONTAINERD__SERVICES__TASKS__V1__LIST_PIDS_REQUEST__INIT;
    req.container_id = (char *)id;
    ProtobufCMessage *resp = NULL;
    int rc = bc_unary(c, call, TASKS("ListPids"), &req.base,
                      &containerd__services__tasks__v1__list_pids_response__descriptor, &resp, err);
    if (rc < 0)
        return bc_error_wrap(err, rc, "pids of task \"%s\"", id);
    Containerd__Services__Tasks__V1__ListPidsResponse *r = (void *)resp;
    uint32_t *v = calloc(r->n_processes ? r->n_processes : 1, sizeof *v);
    for (size_t i = 0; v && i < r->n_processes; i++)
        v[i] = r->processes[i]->pid;
    size_t count = r->n_processes;
    protobuf_c_message_free_unpacked(resp, NULL);
    if (!v)
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    *pids = v, *n = count;
    return 0;
}

BC_EXPORT int
berth_task_pause(berth_client_t *c, const berth_call_t *call, const char *id, berth_error_t **err)
{
    Containerd__Services__Tasks__V1__PauseTaskRequest req =
        CONTAINERD__SERVICES__TASKS__V1__PAUSE_TASK_REQUEST__INIT;
    req.container_id = (char *)id;
    int rc = bc_unary(c, call, TASKS("Pause"), &req.base, NULL, NULL, err);
    return rc < 0 ? bc_error_wrap(err, rc, "pause task \"%s\"", id) : 0;
}

BC_EXPORT int
berth_task_resume(berth_client_t *c, const berth_call_t *call, const char *id, berth_error_t **err)
{
    Containerd__Services__Tasks__V1__ResumeTaskRequest req =
        CONTAINERD__SERVICES__TASKS__V1__RESUME_TASK_REQUEST__INIT;
    req.container_id = (char *)id;
    int rc = bc_unary(c, call, TASKS("Resume"), &req.base, NULL, NULL, err);
    return rc < 0 ? bc_error_wrap(err, rc, "resume task \"%s\"", id) : 0;
}

BC_EXPORT int
berth_task_exec(berth_client_t *c, const berth_call_t *call, const char *id, const char *exec_id,
                const char *process_json, const berth_io_opts_t *io_opts, berth_io_t **io_out,
                berth_error_t **err)
{
    if (!exec_id || !*exec_id || !process_json)
        return bc_error(err, BERTH_EINVAL, "exec in task \"%s\": an exec id and a process spec",
                        id);
    char name[256];
    snprintf(name, sizeof name, "%s-%s", id, exec_id);
    berth_io_t *io = NULL;
    int rc = bc_io_create(io_opts, name, &io, err);
    if (rc < 0) {
        berth_io_free(io);
        return bc_error_wrap(err, rc, "exec \"%s\" in task \"%s\"", exec_id, id);
    }
    Google__Protobuf__Any spec = GOOGLE__PROTOBUF__ANY__INIT;
    spec.type_url = PROCESS_TYPE_URL;
    spec.value.data = (uint8_t *)process_json;
    spec.value.len = strlen(process_json);
    Containerd__Services__Tasks__V1__ExecProcessRequest req =
        CONTAINERD__SERVICES__TASKS__V1__EXEC_PROCESS_REQUEST__INIT;
    req.container_id = (char *)id, req.exec_id = (char *)exec_id;
    req.stdin = (char *)bc_io_stdin(io);
    req.stdout = (char *)bc_io_stdout(io);
    req.stderr = (char *)bc_io_stderr(io);
    req.terminal = bc_io_terminal(io);
    req.spec = &spec;
    rc = bc_unary(c, call, TASKS("Exec"), &req.base, NULL, NULL, err);
    if (rc < 0) {
        berth_io_free(io);
        return bc_error_wrap(err, rc, "exec \"%s\" in task \"%s\"", exec_id, id);
    }
    io_give(io, io_out);
    return 0;
}

BC_EXPORT int
berth_task_close_stdin(berth_client_t *c, const berth_call_t *call, const char *id,
                       const char *exec_id, berth_error_t **err)
{
    Containerd__Services__Tasks__V1__CloseIORequest req =
        CONTAINERD__SERVICES__TASKS__V1__CLOSE_IOREQUEST__INIT;
    req.container_id = (char *)id, req.exec_id = nz(exec_id), req.stdin = 1;
    int rc = bc_unary(c, call, TASKS("CloseIO"), &req.base, NULL, NULL, err);
    return rc < 0 ? bc_error_wrap(err, rc, "close stdin of task \"%s\"", id) : 0;
}

BC_EXPORT int
berth_task_resize(berth_client_t *c, const berth_call_t *call, const char *id, const char *exec_id,
                  uint32_t width, uint32_t height, berth_error_t **err)
{
    Containerd__Services__Tasks__V1__ResizePtyRequest req =
        CONTAINERD__SERVICES__TASKS__V1__RESIZE_PTY_REQUEST__INIT;
    req.container_id = (char *)id, req.exec_id = nz(exec_id);
    req.width = width, req.height = height;
    int rc = bc_unary(c, call, TASKS("ResizePty"), &req.base, NULL, NULL, err);
    return rc < 0 ? bc_error_wrap(err, rc, "resize the pty of task \"%s\"", id) : 0;
}

BC_EXPORT int
berth_task_delete(berth_client_t *c, const berth_call_t *call, const char *id, const char *exec_id,
                  berth_exit_t *out, berth_error_t **err)
{
    ProtobufCMessage *resp = NULL;
    int rc;
    if (exec_id && *exec_id) {
        Containerd__Services__Tasks__V1__DeleteProcessRequest req =
            CONTAINERD__SERVICES__TASKS__V1__DELETE_PROCESS_REQUEST__INIT;
        req.container_id = (char *)id, req.exec_id = (char *)exec_id;
        rc = bc_unary(c, call, TASKS("DeleteProcess"), &req.base,
                      &containerd__services__tasks__v1__delete_response__descriptor, &resp, err);
    } else {
        Containerd__Services__Tasks__V1__DeleteTaskRequest req =
            CONTAINERD__SERVICES__TASKS__V1__DELETE_TASK_REQUEST__INIT;
        req.container_id = (char *)id;
        rc = bc_unary(c, call, TASKS("Delete"), &req.base,
                      &containerd__services__tasks__v1__delete_response__descriptor, &resp, err);
    }
    if (rc < 0)
        return bc_error_wrap(err, rc, "delete task \"%s\"%s%s", id,
                             exec_id && *exec_id ? " exec " : "", nz(exec_id));
    Containerd__Services__Tasks__V1__DeleteResponse *r = (void *)resp;
    if (out) {
        out->status = r->exit_status;
        out->exited_at_ns = bc_ts_ns(r->exited_at);
    }
    protobuf_c_message_free_unpacked(resp, NULL);
    return 0;
}
