/* SPDX-License-Identifier: Apache-2.0 */
/*
 * containerd.services.tasks.v1.Tasks (io.containerd.grpc.v1.tasks) over the runtime: a task is created from
 * its container record (spec, runtime) and the rootfs mounts the client sends; Wait answers when the
 * process exits (a server stream with one message, which a unary client reads as its answer, so no thread
 * waits); exits and every change are published as containerd's /tasks/ events.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <berth/events.h>
#include <berth/grpc.h>
#include <berth/metadata.h>
#include <berth/module.h>
#include <berth/network.h>
#include <berth/runtime.h>
#include <berth/volume.h>

#include "endpoint.h"
#include "rpc.h"
#include "unknown.h"
#include "github.com/containerd/containerd/api/events/task.pb-c.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"
#include "github.com/containerd/containerd/api/services/tasks/v1/tasks.pb-c.h"

typedef struct waiter {
    char ns[80], id[128], exec_id[128];
    const berth_grpc_stream_api_t *sapi;
    berth_grpc_stream_t *st;
    uv_work_t work;
    berth_task_state_t state;
    int state_rc, done, closed, queried;
    struct waiter *next;
} waiter_t;

typedef struct svc {
    const berth_core_api_t *api;
    uv_loop_t *loop;
    void *md;
    const berth_metadata_v1_ops_t *mdo;
    void *events;
    const berth_events_v1_ops_t *evo;
    void *rt;
    const berth_runtime_v1_ops_t *rto;
    waiter_t *waiters;  /* loop thread only */
    endpoint_ctx_t *ep; /* networks and volumes the container's labels ask for */
} svc_t;

static int
bad(svc_t *s, const char *what, berth_error_t **err)
{
    return s->api->error_make(err, BERTH_EINVAL, "request is not a valid %s", what);
}

static void
empty(uint8_t **resp, size_t *len)
{
    *resp = NULL;
    *len = 0;
}

static Google__Protobuf__Timestamp
timestamp(int64_t ns)
{
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    ts.seconds = ns / 1000000000;
    ts.nanos = (int32_t)(ns % 1000000000);
    return ts;
}

static void
publish(svc_t *s, const char *ns, const char *topic, const char *type, const ProtobufCMessage *m)
{
    publish_message(s->api, s->evo, s->events, ns, topic, type, m);
}

/* Unpacks a request or returns InvalidArgument from the handler. */
#define UNPACK(type, fn, var)                 \
    type *var = fn##__unpack(NULL, len, req); \
    if (var == NULL)                          \
        return bad(s, #type, err);

/* ---- Create ---------------------------------------------------------------------------------------- */

static Containerd__Services__Containers__V1__Container *
load_container(svc_t *s, const char *ns, const char *id, berth_error_t **err)
{
    uint8_t *data;
    size_t len;
    if (s->mdo->container_get(s->md, ns, id, &data, &len, err) < 0)
        return NULL;
    Containerd__Services__Containers__V1__Container *c =
        containerd__services__containers__v1__container__unpack(NULL, len, data);
    s->api->free(data);
    if (c == NULL || c->spec == NULL || c->runtime == NULL) {
        s->api->error_make(err, BERTH_EPRECONDITION, "container %s: no spec or runtime", id);
        if (c)
            containerd__services__containers__v1__container__free_unpacked(c, NULL);
        return NULL;
    }
    return c;
}

static void
publish_create(svc_t *s, const char *ns,
               const Containerd__Services__Tasks__V1__CreateTaskRequest *r, uint32_t pid)
{
    Containerd__Events__TaskCreate ev = CONTAINERD__EVENTS__TASK_CREATE__INIT;
    Containerd__Events__TaskIO io = CONTAINERD__EVENTS__TASK_IO__INIT;
    io.stdin = r->stdin;
    io.stdout = r->stdout;
    io.stderr = r->stderr;
    io.terminal = r->terminal;
    ev.container_id = r->container_id;
    ev.rootfs = r->rootfs;
    ev.n_rootfs = r->n_rootfs;
    ev.io = &io;
    ev.pid = pid;
    publish(s, ns, "/tasks/create", "containerd.events.TaskCreate", &ev.base);
}

/* The deprecated place of the same address, which containerd 2.x still reads and its client still fills:
 * the runc options' task_api_address (12). */
static int
runc_options_task_api(const ProtobufCBinaryData *v, const uint8_t **addr, size_t *n)
{
    size_t off = 0, dl;
    uint32_t tag;
    int wire, rc, has = 0;
    uint64_t x;
    const uint8_t *d;
    while ((rc = unknown_next(v->data, v->len, &off, &tag, &wire, &x, &d, &dl)) == 1)
        if (tag == 12 && wire == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED) {
            *addr = d;
            *n = dl;
            has = 1;
        }
    return rc < 0 ? -1 : has;
}

/* containerd 2.x's CreateTaskRequest.task_api_address (11) hands the task to a shim a sandbox controller
 * already runs at that address instead of starting one; berth starts its own shims and has no sandbox
 * controllers, so it refuses the request rather than silently running the task elsewhere. */
static int
check_task_api(svc_t *s, const Containerd__Services__Tasks__V1__CreateTaskRequest *r,
               berth_error_t **err)
{
    const uint8_t *addr;
    size_t n;
    int has = unknown_bytes(&r->base, 11, &addr, &n);
    if (has < 0)
        return bad(s, "CreateTaskRequest", err);
    if ((has == 0 || n == 0) && r->options && r->options->type_url &&
        strstr(r->options->type_url, "containerd.runc.v1.Options") != NULL)
        has = runc_options_task_api(&r->options->value, &addr, &n);
    if (has < 0)
        return bad(s, "CreateTaskRequest's runc options", err);
    if (has && n > 0)
        return s->api->error_make(
            err, BERTH_ENOTIMPL,
            "task_api_address %.*s: tasks on an existing task API (a sandbox's "
            "shim) are not supported, berth starts its own shims",
            (int)(n > 200 ? 200 : n), (const char *)addr);
    return 0;
}

static const char *
label_of(const Containerd__Services__Containers__V1__Container *c, const char *key)
{
    for (size_t i = 0; i < c->n_labels; i++)
        if (c->labels[i]->key && strcmp(c->labels[i]->key, key) == 0)
            return c->labels[i]->value ? c->labels[i]->value : "";
    return NULL;
}

/* The labels' endpoint and mounts, then the runtime's create; an endpoint whose task was not made after
 * all (the runtime failed, a pre-start hook vetoed) is torn down again. */
static int
create_task(svc_t *s, const char *ns, const Containerd__Services__Tasks__V1__CreateTaskRequest *r,
            const Containerd__Services__Containers__V1__Container *c, uint32_t *pid,
            berth_error_t **err)
{
    char *given = strndup((const char *)c->spec->value.data, c->spec->value.len), *spec = NULL;
    endpoint_labels_t labels = {label_of(c, "io.berth.network"), label_of(c, "io.berth.ports"),
                                label_of(c, "io.berth.volumes")};
    int attached = 0;
    endpoint_enter(s->ep);
    int rc = endpoint_prepare(s->ep, ns, r->container_id, &labels, given, &spec, &attached, err);
    free(given);
    if (rc == 0) {
        berth_mount_t *m = calloc(r->n_rootfs + 1, sizeof(*m));
        for (size_t i = 0; i < r->n_rootfs; i++)
            m[i] = (berth_mount_t){r->rootfs[i]->type, r->rootfs[i]->source, r->rootfs[i]->options,
                                   r->rootfs[i]->n_options};
        berth_task_io_t io = {r->stdin, r->stdout, r->stderr, r->terminal};
        rc = s->rto->create(s->rt, ns, r->container_id, c->runtime->name, spec, m, r->n_rootfs, &io,
                            pid, err);
        free(m);
    }
    /* AlreadyExists: the endpoint is the running task's, not ours to take */
    if (rc < 0 && attached && rc != BERTH_EEXIST)
        endpoint_undo(s->ep, ns, r->container_id);
    endpoint_leave(s->ep);
    free(spec);
    return rc;
}

static int
create_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    UNPACK(Containerd__Services__Tasks__V1__CreateTaskRequest,
           containerd__services__tasks__v1__create_task_request, r);
    int rc = check_task_api(s, r, err);
    Containerd__Services__Containers__V1__Container *c =
        rc == 0 ? load_container(s, ns, r->container_id, err) : NULL;
    if (rc == 0 && c == NULL)
        rc = err && *err ? (*err)->code : BERTH_ENOTFOUND;
    if (rc == 0 && r->checkpoint)
        rc =
            s->api->error_make(err, BERTH_ENOTIMPL, "restoring from a checkpoint is not supported");
    uint32_t pid = 0;
    if (rc == 0)
        rc = create_task(s, ns, r, c, &pid, err);
    if (rc == 0) {
        Containerd__Services__Tasks__V1__CreateTaskResponse out =
            CONTAINERD__SERVICES__TASKS__V1__CREATE_TASK_RESPONSE__INIT;
        out.container_id = r->container_id;
        out.pid = pid;
        pack(&out.base, resp, resp_len);
        publish_create(s, ns, r, pid);
    }
    if (c)
        containerd__services__containers__v1__container__free_unpacked(c, NULL);
    containerd__services__tasks__v1__create_task_request__free_unpacked(r, NULL);
    return rc;
}

/* ---- Start, Kill, Pause, Resume, CloseIO, Update ----------------------------------------------------- */

static int
start_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
           size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    UNPACK(Containerd__Services__Tasks__V1__StartRequest,
           containerd__services__tasks__v1__start_request, r);
    uint32_t pid = 0;
    int rc = s->rto->start(s->rt, ns, r->container_id, r->exec_id, &pid, err);
    if (rc == 0) {
        Containerd__Services__Tasks__V1__StartResponse out =
            CONTAINERD__SERVICES__TASKS__V1__START_RESPONSE__INIT;
        out.pid = pid;
        pack(&out.base, resp, resp_len);
        if (r->exec_id[0]) {
            Containerd__Events__TaskExecStarted ev = CONTAINERD__EVENTS__TASK_EXEC_STARTED__INIT;
            ev.container_id = r->container_id;
            ev.exec_id = r->exec_id;
            ev.pid = pid;
            publish(s, ns, "/tasks/exec-started", "containerd.events.TaskExecStarted", &ev.base);
        } else {
            Containerd__Events__TaskStart ev = CONTAINERD__EVENTS__TASK_START__INIT;
            ev.container_id = r->container_id;
            ev.pid = pid;
            publish(s, ns, "/tasks/start", "containerd.events.TaskStart", &ev.base);
        }
    }
    containerd__services__tasks__v1__start_request__free_unpacked(r, NULL);
    return rc;
}

static int
kill_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
          size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    UNPACK(Containerd__Services__Tasks__V1__KillRequest,
           containerd__services__tasks__v1__kill_request, r);
    int rc = s->rto->kill(s->rt, ns, r->container_id, r->exec_id, r->signal, r->all, err);
    containerd__services__tasks__v1__kill_request__free_unpacked(r, NULL);
    empty(resp, resp_len);
    return rc;
}

static int
pause_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
           size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    UNPACK(Containerd__Services__Tasks__V1__PauseTaskRequest,
           containerd__services__tasks__v1__pause_task_request, r);
    int rc = s->rto->pause(s->rt, ns, r->container_id, err);
    if (rc == 0) {
        Containerd__Events__TaskPaused ev = CONTAINERD__EVENTS__TASK_PAUSED__INIT;
        ev.container_id = r->container_id;
        publish(s, ns, "/tasks/paused", "containerd.events.TaskPaused", &ev.base);
    }
    containerd__services__tasks__v1__pause_task_request__free_unpacked(r, NULL);
    empty(resp, resp_len);
    return rc;
}

static int
resume_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    /* ResumeTaskRequest is PauseTaskRequest's shape: {container_id = 1} */
    UNPACK(Containerd__Services__Tasks__V1__PauseTaskRequest,
           containerd__services__tasks__v1__pause_task_request, r);
    int rc = s->rto->resume(s->rt, ns, r->container_id, err);
    if (rc == 0) {
        Containerd__Events__TaskResumed ev = CONTAINERD__EVENTS__TASK_RESUMED__INIT;
        ev.container_id = r->container_id;
        publish(s, ns, "/tasks/resumed", "containerd.events.TaskResumed", &ev.base);
    }
    containerd__services__tasks__v1__pause_task_request__free_unpacked(r, NULL);
    empty(resp, resp_len);
    return rc;
}

static int
closeio_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
             size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    UNPACK(Containerd__Services__Tasks__V1__CloseIORequest,
           containerd__services__tasks__v1__close_iorequest, r);
    int rc = r->stdin ? s->rto->close_io(s->rt, ns, r->container_id, r->exec_id, err) : 0;
    containerd__services__tasks__v1__close_iorequest__free_unpacked(r, NULL);
    empty(resp, resp_len);
    return rc;
}

static int
resize_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    UNPACK(Containerd__Services__Tasks__V1__ResizePtyRequest,
           containerd__services__tasks__v1__resize_pty_request, r);
    int rc =
        s->rto->struct_size > offsetof(berth_runtime_v1_ops_t, resize_pty)
            ? s->rto->resize_pty(s->rt, ns, r->container_id, r->exec_id, r->width, r->height, err)
            : s->api->error_make(err, BERTH_ENOTIMPL, "the runtime cannot resize terminals");
    containerd__services__tasks__v1__resize_pty_request__free_unpacked(r, NULL);
    empty(resp, resp_len);
    return rc;
}

static int
update_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    UNPACK(Containerd__Services__Tasks__V1__UpdateTaskRequest,
           containerd__services__tasks__v1__update_task_request, r);
    int rc = r->resources ? 0 : s->api->error_make(err, BERTH_EINVAL, "update needs resources");
    if (rc == 0) {
        char *json = strndup((const char *)r->resources->value.data, r->resources->value.len);
        rc = s->rto->update(s->rt, ns, r->container_id, json, err);
        free(json);
    }
    containerd__services__tasks__v1__update_task_request__free_unpacked(r, NULL);
    empty(resp, resp_len);
    return rc;
}

/* ---- Delete, DeleteProcess -------------------------------------------------------------------------- */

static int
remove_process(svc_t *s, const char *ns, const char *id, const char *exec_id, uint8_t **resp,
               size_t *resp_len, berth_error_t **err)
{
    berth_task_state_t final;
    int rc = s->rto->remove(s->rt, ns, id, exec_id, &final, err);
    if (rc != 0)
        return rc;
    Google__Protobuf__Timestamp at = timestamp(final.exited_ns);
    Containerd__Services__Tasks__V1__DeleteResponse out =
        CONTAINERD__SERVICES__TASKS__V1__DELETE_RESPONSE__INIT;
    out.id = (char *)(exec_id[0] ? exec_id : id);
    out.pid = final.pid;
    out.exit_status = final.exit_status;
    out.exited_at = &at;
    pack(&out.base, resp, resp_len);
    if (exec_id[0] == '\0') {
        Containerd__Events__TaskDelete ev = CONTAINERD__EVENTS__TASK_DELETE__INIT;
        ev.container_id = (char *)id;
        ev.id = (char *)id;
        ev.pid = final.pid;
        ev.exit_status = final.exit_status;
        ev.exited_at = &at;
        publish(s, ns, "/tasks/delete", "containerd.events.TaskDelete", &ev.base);
    }
    return 0;
}

static int
delete_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    UNPACK(Containerd__Services__Tasks__V1__DeleteTaskRequest,
           containerd__services__tasks__v1__delete_task_request, r);
    int rc = remove_process(s, ns, r->container_id, "", resp, resp_len, err);
    if (rc == 0) /* the task is gone: so goes its endpoint (none: nothing to do) */
        endpoint_undo(s->ep, ns, r->container_id);
    containerd__services__tasks__v1__delete_task_request__free_unpacked(r, NULL);
    return rc;
}

static int
delete_process_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
                    size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    UNPACK(Containerd__Services__Tasks__V1__DeleteProcessRequest,
           containerd__services__tasks__v1__delete_process_request, r);
    int rc = r->exec_id[0] ? remove_process(s, ns, r->container_id, r->exec_id, resp, resp_len, err)
                           : s->api->error_make(err, BERTH_EINVAL, "exec id is required");
    containerd__services__tasks__v1__delete_process_request__free_unpacked(r, NULL);
    return rc;
}

/* ---- Get, List, ListPids ---------------------------------------------------------------------------- */

static Containerd__V1__Types__Process *
process_of(svc_t *s, const char *ns, const char *id, const char *exec_id, berth_error_t **err)
{
    berth_task_state_t st;
    if (s->rto->state(s->rt, ns, id, exec_id, &st, err) != 0)
        return NULL;
    Containerd__V1__Types__Process *p = calloc(1, sizeof(*p));
    containerd__v1__types__process__init(p);
    p->container_id = strdup(id);
    p->id = strdup(exec_id[0] ? exec_id : id); /* the client names the task by it */
    p->pid = st.pid;
    p->status = (Containerd__V1__Types__Status)st.status;
    p->stdin = strdup(st.stdin_path);
    p->stdout = strdup(st.stdout_path);
    p->stderr = strdup(st.stderr_path);
    p->terminal = st.terminal;
    p->exit_status = st.exit_status;
    if (st.exited_ns) {
        p->exited_at = malloc(sizeof(*p->exited_at));
        *p->exited_at = timestamp(st.exited_ns);
    }
    return p;
}

static int
get_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
         size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    UNPACK(Containerd__Services__Tasks__V1__GetRequest,
           containerd__services__tasks__v1__get_request, r);
    Containerd__V1__Types__Process *p = process_of(s, ns, r->container_id, r->exec_id, err);
    if (p) {
        Containerd__Services__Tasks__V1__GetResponse out =
            CONTAINERD__SERVICES__TASKS__V1__GET_RESPONSE__INIT;
        out.process = p;
        pack(&out.base, resp, resp_len);
        protobuf_c_message_free_unpacked(&p->base, NULL);
    }
    containerd__services__tasks__v1__get_request__free_unpacked(r, NULL);
    return p ? 0 : err && *err ? (*err)->code : BERTH_ENOTFOUND;
}

typedef struct listing {
    svc_t *s;
    const char *ns;
    Containerd__V1__Types__Process **items;
    size_t n;
} listing_t;

static int
list_one(void *user, const char *id)
{
    listing_t *l = user;
    Containerd__V1__Types__Process *p = process_of(l->s, l->ns, id, "", NULL);
    if (p) {
        l->items = realloc(l->items, (l->n + 1) * sizeof(*l->items));
        l->items[l->n++] = p;
    }
    return 0;
}

static int
list_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
          size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    listing_t l = {s, ns, NULL, 0};
    int rc = s->rto->list(s->rt, ns, list_one, &l, err);
    Containerd__Services__Tasks__V1__ListTasksResponse out =
        CONTAINERD__SERVICES__TASKS__V1__LIST_TASKS_RESPONSE__INIT;
    out.tasks = l.items;
    out.n_tasks = l.n;
    if (rc == 0)
        pack(&out.base, resp, resp_len);
    for (size_t i = 0; i < l.n; i++)
        protobuf_c_message_free_unpacked(&l.items[i]->base, NULL);
    free(l.items);
    return rc;
}

static int
pids_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
          size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    UNPACK(Containerd__Services__Tasks__V1__ListPidsRequest,
           containerd__services__tasks__v1__list_pids_request, r);
    uint32_t *pids = NULL;
    size_t n = 0;
    int rc = s->rto->pids(s->rt, ns, r->container_id, &pids, &n, err);
    if (rc == 0) {
        Containerd__V1__Types__ProcessInfo *items = calloc(n + 1, sizeof(*items));
        Containerd__V1__Types__ProcessInfo **ptrs = calloc(n + 1, sizeof(*ptrs));
        for (size_t i = 0; i < n; i++) {
            containerd__v1__types__process_info__init(&items[i]);
            items[i].pid = pids[i];
            ptrs[i] = &items[i];
        }
        Containerd__Services__Tasks__V1__ListPidsResponse out =
            CONTAINERD__SERVICES__TASKS__V1__LIST_PIDS_RESPONSE__INIT;
        out.processes = ptrs;
        out.n_processes = n;
        pack(&out.base, resp, resp_len);
        free(items);
        free(ptrs);
    }
    free(pids);
    containerd__services__tasks__v1__list_pids_request__free_unpacked(r, NULL);
    return rc;
}

/* ---- Exec --------------------------------------------------------------------------------------------- */

static int
exec_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
          size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    UNPACK(Containerd__Services__Tasks__V1__ExecProcessRequest,
           containerd__services__tasks__v1__exec_process_request, r);
    int rc = r->spec ? 0 : s->api->error_make(err, BERTH_EINVAL, "exec needs a process spec");
    if (rc == 0) {
        char *spec = strndup((const char *)r->spec->value.data, r->spec->value.len);
        berth_task_io_t io = {r->stdin, r->stdout, r->stderr, r->terminal};
        rc = s->rto->exec(s->rt, ns, r->container_id, r->exec_id, spec, &io, err);
        free(spec);
    }
    if (rc == 0) {
        Containerd__Events__TaskExecAdded ev = CONTAINERD__EVENTS__TASK_EXEC_ADDED__INIT;
        ev.container_id = r->container_id;
        ev.exec_id = r->exec_id;
        publish(s, ns, "/tasks/exec-added", "containerd.events.TaskExecAdded", &ev.base);
    }
    containerd__services__tasks__v1__exec_process_request__free_unpacked(r, NULL);
    empty(resp, resp_len);
    return rc;
}

static int
unimplemented_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
                   size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    return s->api->error_make(
        err, BERTH_ENOTIMPL,
        "not implemented by berth's runc runtime yet (checkpoints and metrics "
        "come later)");
}

/* ---- Wait: answered when the process exits ------------------------------------------------------------ */

static void
wait_answer(waiter_t *w, uint32_t status, int64_t exited_ns)
{
    if (w->done || w->closed)
        return;
    w->done = 1;
    Google__Protobuf__Timestamp at = timestamp(exited_ns);
    Containerd__Services__Tasks__V1__WaitResponse out =
        CONTAINERD__SERVICES__TASKS__V1__WAIT_RESPONSE__INIT;
    out.exit_status = status;
    out.exited_at = &at;
    uint8_t *data;
    size_t len;
    pack(&out.base, &data, &len);
    w->sapi->send(w->st, data, len);
    free(data);
    w->sapi->finish(w->st, 0, NULL);
}

static void
waiter_unlink(svc_t *s, waiter_t *w)
{
    for (waiter_t **p = &s->waiters; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            return;
        }
}

typedef struct wait_job {
    svc_t *s;
    waiter_t *w;
    berth_error_t *err;
} wait_job_t;

static void
wait_query_run(uv_work_t *req)
{
    wait_job_t *j = req->data;
    j->w->state_rc =
        j->s->rto->state(j->s->rt, j->w->ns, j->w->id, j->w->exec_id, &j->w->state, &j->err);
}

static void
wait_query_done(uv_work_t *req, int status)
{
    wait_job_t *j = req->data;
    waiter_t *w = j->w;
    w->queried = 1;
    if (w->closed) {
        free(w);
    } else if (w->state_rc != 0 && !w->done) {
        w->done = 1;
        w->sapi->finish(w->st, w->state_rc, j->err ? j->err->message : NULL);
    } else if (w->state.status == BERTH_TASK_STOPPED) {
        wait_answer(w, w->state.exit_status, w->state.exited_ns);
    }
    if (j->err)
        j->s->api->error_free(j->err);
    free(j);
}

static int
wait_open(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st,
          const uint8_t *req, size_t len, berth_error_t **err)
{
    svc_t *s = instance;
    UNPACK(Containerd__Services__Tasks__V1__WaitRequest,
           containerd__services__tasks__v1__wait_request, r);
    waiter_t *w = calloc(1, sizeof(*w));
    snprintf(w->ns, sizeof(w->ns), "%s", sapi->namespace_(st));
    snprintf(w->id, sizeof(w->id), "%s", r->container_id);
    snprintf(w->exec_id, sizeof(w->exec_id), "%s", r->exec_id);
    containerd__services__tasks__v1__wait_request__free_unpacked(r, NULL);
    w->sapi = sapi;
    w->st = st;
    sapi->set_user(st, w);
    /* listed before the state is asked: an exit between the two is not missed */
    w->next = s->waiters;
    s->waiters = w;
    wait_job_t *j = calloc(1, sizeof(*j));
    *j = (wait_job_t){s, w, NULL};
    w->work.data = j;
    uv_queue_work(s->loop, &w->work, wait_query_run, wait_query_done);
    return 0;
}

static void
wait_closed(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st)
{
    svc_t *s = instance;
    waiter_t *w = sapi->get_user(st);
    if (w == NULL)
        return;
    waiter_unlink(s, w);
    w->closed = 1;
    if (w->queried)
        free(w); /* otherwise wait_query_done frees it */
}

/* ---- exits: the runtime tells us, we tell waiters and subscribers (loop thread) ------------------------ */

static void
on_task_exit(void *user, const char *ns, const char *id, const char *exec_id, uint32_t pid,
             uint32_t status, int64_t exited_ns)
{
    svc_t *s = user;
    Google__Protobuf__Timestamp at = timestamp(exited_ns);
    Containerd__Events__TaskExit ev = CONTAINERD__EVENTS__TASK_EXIT__INIT;
    ev.container_id = (char *)id;
    ev.id = (char *)(exec_id[0] ? exec_id : id);
    ev.pid = pid;
    ev.exit_status = status;
    ev.exited_at = &at;
    publish(s, ns, "/tasks/exit", "containerd.events.TaskExit", &ev.base);
    /* answering finishes the stream, whose close frees the waiter: step on before answering */
    for (waiter_t *w = s->waiters, *next; w; w = next) {
        next = w->next;
        if (strcmp(w->ns, ns) == 0 && strcmp(w->id, id) == 0 && strcmp(w->exec_id, exec_id) == 0)
            wait_answer(w, status, exited_ns);
    }
}

/* ---- the plugin ------------------------------------------------------------------------------------- */

static const berth_grpc_method_t tasks_methods[] = {
    NS_UNARY("Create", create_call),
    NS_UNARY("Start", start_call),
    NS_UNARY("Delete", delete_call),
    NS_UNARY("DeleteProcess", delete_process_call),
    NS_UNARY("Get", get_call),
    NS_UNARY("List", list_call),
    NS_UNARY("Kill", kill_call),
    NS_UNARY("Exec", exec_call),
    NS_UNARY("ResizePty", resize_call),
    NS_UNARY("CloseIO", closeio_call),
    NS_UNARY("Pause", pause_call),
    NS_UNARY("Resume", resume_call),
    NS_UNARY("ListPids", pids_call),
    NS_UNARY("Checkpoint", unimplemented_call),
    NS_UNARY("Update", update_call),
    NS_UNARY("Metrics", unimplemented_call),
    /* a unary call on the wire: one answer, then the status; a stream here, so no thread waits */
    {.name = "Wait",
     .kind = BERTH_RPC_SERVER_STREAM,
     .flags = BERTH_RPC_NAMESPACED,
     .open = wait_open,
     .closed = wait_closed},
};

static const berth_grpc_service_v1_t tasks_service = {
    .struct_size = sizeof(berth_grpc_service_v1_t),
    .name = "containerd.services.tasks.v1.Tasks",
    .methods = tasks_methods,
    .n_methods = sizeof(tasks_methods) / sizeof(tasks_methods[0]),
};

static void
on_task_oom(void *user, const char *ns, const char *id)
{
    Containerd__Events__TaskOOM ev = CONTAINERD__EVENTS__TASK_OOM__INIT;
    ev.container_id = (char *)id;
    publish(user, ns, "/tasks/oom", "containerd.events.TaskOOM", &ev.base);
}

static int
has_oom_op(const svc_t *s)
{
    return s->rto->struct_size > offsetof(berth_runtime_v1_ops_t, watch_ooms);
}

static int
tasks_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    const berth_core_api_t *api = ic->api;
    berth_instance_t md, ev, rt;
    if (api->get_single(ic, BERTH_METADATA_TYPE, &md, err) < 0 ||
        api->get_single(ic, BERTH_EVENTS_TYPE, &ev, err) < 0 ||
        api->get(ic, BERTH_RUNTIME_TYPE, "task", &rt, err) < 0)
        return err && *err ? (*err)->code : BERTH_EUNKNOWN;
    svc_t *s = calloc(1, sizeof(*s));
    *s = (svc_t){api,    ic->loop,    md.instance, md.ops, ev.instance,
                 ev.ops, rt.instance, rt.ops,      NULL,   endpoint_ctx_new(ic)};
    *instance = s;
    if (has_oom_op(s) && s->rto->watch_ooms(s->rt, on_task_oom, s, err) < 0)
        return (*err)->code;
    int rc = s->rto->watch_exits(s->rt, on_task_exit, s, err);
    if (rc == 0) /* the runtime's init found its tasks again: endpoints of the gone ones go */
        endpoint_reconcile(s->ep, ic, s->rt, s->rto);
    return rc;
}

static void
tasks_fini(void *instance)
{
    svc_t *s = instance;
    s->rto->watch_exits(s->rt, NULL, NULL, NULL); /* exits after this are not ours to hear */
    if (has_oom_op(s))
        s->rto->watch_ooms(s->rt, NULL, NULL, NULL);
    endpoint_ctx_free(s->ep);
    free(s);
}

/* The network and volume modules are optional: without them, only containers whose labels ask for them
 * are refused. */
static const char *const tasks_requires[] = {BERTH_METADATA_TYPE,   BERTH_EVENTS_TYPE,
                                             BERTH_RUNTIME_TYPE,    "?" BERTH_NETWORK_TYPE,
                                             "?" BERTH_VOLUME_TYPE, NULL};

/* On demand, and with the runtime when that starts at once (its start_if: task bundles in its state dir;
 * the core starts a module's on-demand plugins together): the exits it finds, of shims gone while berthd
 * was down, are published as /tasks/exit at our init, and the endpoints of gone tasks are torn down
 * (endpoint_reconcile) at start, not at the first Tasks call. */
const berth_plugin_reg_t tasks_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_GRPC_SERVICE_TYPE,
    .id = "tasks",
    .requires = tasks_requires,
    .init = tasks_init,
    .fini = tasks_fini,
    .ops = &tasks_service,
    .flags = BERTH_PLUGIN_ON_DEMAND,
};
