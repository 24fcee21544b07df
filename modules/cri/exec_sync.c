/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ExecSync: a command in a running container, its stdout and stderr collected (each up to
 * exec_sync_max_output bytes; the rest is read and dropped so the process never blocks on a full pipe),
 * its exit code answered. As containerd 1.6: the process is the container's (env, cwd, user,
 * capabilities) with the command as args and no terminal; a timeout kills it and answers
 * DeadlineExceeded.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "container.h"

#define SPEC_PROCESS_URL "types.containerd.io/opencontainers/runtime-spec/1/Process"

json_object *ctr_record_spec(cri_t *c, const char *id, berth_error_t **err);

typedef struct outbuf {
    uint8_t *data;
    size_t len, max;
} outbuf_t;

static void
take(int fd, outbuf_t *b, int *open_)
{
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n > 0) {
            size_t keep = b->len < b->max ? b->max - b->len : 0;
            if ((size_t)n < keep)
                keep = (size_t)n;
            if (keep > 0) {
                b->data = realloc(b->data, b->len + keep);
                memcpy(b->data + b->len, buf, keep);
                b->len += keep;
            }
            continue;
        }
        if (n == 0)
            *open_ = 0;
        return; /* EAGAIN: all there is for now */
    }
}

static int64_t
mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The exec's process: the container's with these args and no terminal. */
static char *
exec_process(cri_t *c, const char *id, char **cmd, size_t n, berth_error_t **err)
{
    json_object *spec = ctr_record_spec(c, id, err);
    if (spec == NULL)
        return NULL;
    json_object *proc = json_object_object_get(spec, "process");
    if (proc == NULL) {
        json_object_put(spec);
        c->api->error_make(err, BERTH_EDATALOSS, "container \"%s\": its spec has no process", id);
        return NULL;
    }
    json_object *args = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(args, json_object_new_string(cmd[i]));
    json_object_object_add(proc, "args", args);
    json_object_object_add(proc, "terminal", json_object_new_boolean(0));
    char *out = strdup(json_object_to_json_string_ext(proc, JSON_C_TO_STRING_PLAIN));
    json_object_put(spec);
    return out;
}

typedef struct exec_io {
    char dir[4096], out[4200], err[4200];
    int fd_out, fd_err;
} exec_io_t;

static int
io_open(cri_t *c, const char *id, const char *exec_id, exec_io_t *io, berth_error_t **err)
{
    io->fd_out = io->fd_err = -1;
    char base[4096];
    snprintf(io->dir, sizeof(io->dir), "%s/exec-%s", ctr_state_dir(c, id, base, sizeof(base)),
             exec_id);
    if (c->api->mkdir_all(io->dir, 0700, err) < 0)
        return -1;
    snprintf(io->out, sizeof(io->out), "%s/stdout", io->dir);
    snprintf(io->err, sizeof(io->err), "%s/stderr", io->dir);
    if (mkfifo(io->out, 0600) < 0 || mkfifo(io->err, 0600) < 0)
        return c->api->error_make(err, BERTH_EIO, "exec fifos in %s: %s", io->dir, strerror(errno));
    /* read-write, so the open never blocks and no EOF comes before the process opened its end; the end
     * of output is the process's exit, then what is left in the pipes */
    io->fd_out = open(io->out, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    io->fd_err = open(io->err, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (io->fd_out < 0 || io->fd_err < 0)
        return c->api->error_make(err, BERTH_EIO, "exec fifos in %s: %s", io->dir, strerror(errno));
    return 0;
}

static void
io_close(exec_io_t *io)
{
    if (io->fd_out >= 0)
        close(io->fd_out);
    if (io->fd_err >= 0)
        close(io->fd_err);
    unlink(io->out);
    unlink(io->err);
    rmdir(io->dir);
}

static void
delete_process(cri_t *c, const char *id, const char *exec_id)
{
    Containerd__Services__Tasks__V1__DeleteProcessRequest d =
        CONTAINERD__SERVICES__TASKS__V1__DELETE_PROCESS_REQUEST__INIT;
    d.container_id = (char *)id;
    d.exec_id = (char *)exec_id;
    berth_error_t *e = NULL;
    cri_call(c, CRI_SVC_TASKS, "DeleteProcess", &d.base, NULL, NULL, NULL, &e);
    c->api->error_free(e);
}

/* Reads both pipes until the process exited (then drains them) or the deadline passed. */
static int
collect(cri_t *c, cri_exit_waiter_t *w, exec_io_t *io, outbuf_t *o, outbuf_t *e, int64_t deadline,
        uint32_t *status)
{
    int open_out = 1, open_err = 1;
    for (;;) {
        struct pollfd p[2] = {{io->fd_out, POLLIN, 0}, {io->fd_err, POLLIN, 0}};
        int64_t left = deadline > 0 ? deadline - mono_ms() : 50;
        if (left <= 0)
            return BERTH_ETIMEDOUT;
        poll(p, 2, left < 50 ? (int)left : 50);
        if (open_out)
            take(io->fd_out, o, &open_out);
        if (open_err)
            take(io->fd_err, e, &open_err);
        if (cri_exit_wait(w, 0, status, NULL) == 0) {
            take(io->fd_out, o, &open_out);
            take(io->fd_err, e, &open_err);
            (void)c;
            return 0;
        }
    }
}

static int
exec_sync(cri_t *c, cri_container_t *k, const Runtime__V1__ExecSyncRequest *r,
          Runtime__V1__ExecSyncResponse *out, outbuf_t *o, outbuf_t *e, berth_error_t **err)
{
    char exec_id[65];
    cri_new_id(exec_id);
    exec_io_t io = {.fd_out = -1, .fd_err = -1};
    char *proc = NULL;
    int rc = -1, started = 0;
    cri_exit_waiter_t *w = NULL;
    if (io_open(c, k->id, exec_id, &io, err) < 0)
        goto out;
    if ((proc = exec_process(c, k->id, r->cmd, r->n_cmd, err)) == NULL)
        goto out;
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    any.type_url = SPEC_PROCESS_URL;
    any.value.data = (uint8_t *)proc;
    any.value.len = strlen(proc);
    Containerd__Services__Tasks__V1__ExecProcessRequest x =
        CONTAINERD__SERVICES__TASKS__V1__EXEC_PROCESS_REQUEST__INIT;
    x.container_id = k->id;
    x.exec_id = exec_id;
    x.stdin = "";
    x.stdout = io.out;
    x.stderr = io.err;
    x.terminal = 0;
    x.spec = &any;
    if (cri_call(c, CRI_SVC_TASKS, "Exec", &x.base, NULL, NULL, NULL, err) < 0)
        goto out;
    w = cri_exit_wait_register(c, k->id, exec_id); /* before the start: no exit is missed */
    Containerd__Services__Tasks__V1__StartRequest st =
        CONTAINERD__SERVICES__TASKS__V1__START_REQUEST__INIT;
    st.container_id = k->id;
    st.exec_id = exec_id;
    if (cri_call(c, CRI_SVC_TASKS, "Start", &st.base, NULL, NULL, NULL, err) < 0) {
        c->api->error_wrap(err, "container \"%s\": exec %s", k->id, r->n_cmd ? r->cmd[0] : "");
        goto out;
    }
    started = 1;
    uint32_t status = 0;
    int64_t deadline = r->timeout > 0 ? mono_ms() + r->timeout * 1000 : 0;
    if (collect(c, w, &io, o, e, deadline, &status) == BERTH_ETIMEDOUT) {
        berth_error_t *ke = NULL;
        if (ctr_task_kill(c, k->id, exec_id, SIGKILL, 0, &ke) < 0)
            c->api->error_free(ke);
        cri_exit_wait(w, 10000, NULL, NULL);
        rc = c->api->error_make(err, BERTH_ETIMEDOUT,
                                "timeout %llds exceeded: context deadline exceeded",
                                (long long)r->timeout);
        goto out;
    }
    out->exit_code = (int32_t)status;
    rc = 0;
out:
    if (started)
        delete_process(c, k->id, exec_id);
    cri_exit_wait_cancel(w);
    free(proc);
    io_close(&io);
    return rc;
}

int
cri_rpc_ExecSync(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                 uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__ExecSyncRequest *r = runtime__v1__exec_sync_request__unpack(NULL, req_len, req);
    if (r == NULL)
        return c->api->error_make(err, BERTH_EINVAL, "ExecSync: a malformed request");
    cri_container_t *k = NULL;
    int rc = cri_container_find(c, r->container_id, &k, err);
    if (rc < 0)
        goto done;
    if (r->n_cmd == 0) {
        rc = c->api->error_make(err, BERTH_EINVAL, "container \"%s\": exec: no command", k->id);
        goto done;
    }
    pthread_mutex_lock(&c->lock);
    int running = k->state == CRI_CONTAINER_RUNNING;
    pthread_mutex_unlock(&c->lock);
    if (!running) {
        rc = c->api->error_make(err, BERTH_EPRECONDITION, "container \"%s\" is not running", k->id);
        goto done;
    }
    size_t max = c->cfg.exec_sync_max_output > 0 ? (size_t)c->cfg.exec_sync_max_output : 16 << 20;
    outbuf_t o = {.max = max}, e = {.max = max};
    Runtime__V1__ExecSyncResponse out = RUNTIME__V1__EXEC_SYNC_RESPONSE__INIT;
    rc = exec_sync(c, k, r, &out, &o, &e, err);
    if (rc == 0) {
        out.stdout.data = o.data;
        out.stdout.len = o.len;
        out.stderr.data = e.data;
        out.stderr.len = e.len;
        cri_reply(c, &out.base, resp, resp_len);
    }
    free(o.data);
    free(e.data);
done:
    cri_container_unref(k);
    runtime__v1__exec_sync_request__free_unpacked(r, NULL);
    return rc < 0 ? rc : 0;
}
