/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Exec and attach behind the streaming server (stream.c). Exec: a process in the container through
 * Tasks.Exec/Start with FIFOs made under the core's state directory (or a terminal, resized through
 * Tasks.ResizePty); stdin's end through Tasks.CloseIO; its exit from the core's exit waiters, then
 * Tasks.DeleteProcess. Attach: the container's own stdin FIFO (cri_container_stdin_path) and its output
 * by following its CRI log file, until the container exits. The calls run on pool threads, the exit
 * waits on a thread of their own each (an exec may last for hours: not a pool thread's job).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "services/containers/v1/containers.pb-c.h"
#include "services/tasks/v1/tasks.pb-c.h"
#include "stream_int.h"

#define LOG_POLL_MS 50
#define EXIT_GRACE_MS 2000 /* output still open this long after the exit is cut */
#define SIZE_WAIT_MS 500   /* a terminal's exec waits this long for the client's size */

struct rcs {
    sconn_t *k;
    cri_t *c;
    sreq_t *r;
    char exec_id[33];
    int tty; /* exec: asked; attach: the container's */
    char dir[PATH_MAX - 16];
    int fd_in, fd_out, fd_err, log_fd;
    uv_pipe_t in, out, err;
    int in_open, out_open, err_open, outputs;
    sbuf_t pending_in; /* stdin before the process is there */
    int in_eof, in_closed, started, gone, finishing, ended, waiting_size;
    int stdin_once;         /* attach: the container's stdin closes when this client's does */
    unsigned width, height; /* the last size asked */
    cri_exit_waiter_t *w;
    int exited;
    uint32_t status;
    char *errmsg;
    uv_timer_t timer; /* attach: the log poll; both: the grace after the exit */
    int timer_open;
    sbuf_t logbuf;
};

static char *
errstr(cri_t *c, berth_error_t *e)
{
    char *m = strdup(e && e->message ? e->message : "internal error");
    c->api->error_free(e);
    return m;
}

/* ---- pool-thread work ----------------------------------------------------------------------------- */

static int
task_call(cri_t *c, const char *method, const ProtobufCMessage *req, berth_error_t **err)
{
    return cri_call(c, CRI_SVC_TASKS, method, req, NULL, NULL, NULL, err);
}

/* The container's process spec with cmd and terminal: the exec's spec, as containerd's CRI makes it. */
static char *
exec_spec(rcs_t *s, berth_error_t **err)
{
    Containerd__Services__Containers__V1__GetContainerRequest req =
        CONTAINERD__SERVICES__CONTAINERS__V1__GET_CONTAINER_REQUEST__INIT;
    req.id = s->r->id;
    Containerd__Services__Containers__V1__GetContainerResponse *out = NULL;
    if (cri_call(s->c, CRI_SVC_CONTAINERS, "Get", &req.base,
                 &containerd__services__containers__v1__get_container_response__descriptor,
                 (ProtobufCMessage **)&out, NULL, err) < 0)
        return NULL;
    char *json = NULL;
    json_object *spec = NULL, *proc = NULL;
    if (out->container && out->container->spec) {
        json_tokener *tok = json_tokener_new();
        spec = json_tokener_parse_ex(tok, (const char *)out->container->spec->value.data,
                                     (int)out->container->spec->value.len);
        json_tokener_free(tok);
    }
    protobuf_c_message_free_unpacked(&out->base, NULL);
    if (spec == NULL || !json_object_object_get_ex(spec, "process", &proc)) {
        json_object_put(spec);
        s->c->api->error_make(err, BERTH_EINTERNAL, "container %s: no process in its spec",
                              s->r->id);
        return NULL;
    }
    json_object *args = json_object_new_array();
    for (char **p = s->r->cmd; *p; p++)
        json_object_array_add(args, json_object_new_string(*p));
    json_object_object_add(proc, "args", args);
    json_object_object_add(proc, "terminal", json_object_new_boolean(s->tty));
    json_object_object_del(proc, "consoleSize");
    if (s->tty &&
        s->width) { /* the client's terminal size from the start: no race with the command */
        json_object *cs = json_object_new_object();
        json_object_object_add(cs, "height", json_object_new_int((int)s->height));
        json_object_object_add(cs, "width", json_object_new_int((int)s->width));
        json_object_object_add(proc, "consoleSize", cs);
    }
    json = strdup(json_object_to_json_string_ext(proc, JSON_C_TO_STRING_PLAIN));
    json_object_put(spec);
    return json;
}

static int
fifo(rcs_t *s, const char *name, int flags, char *path, size_t len, int *fd)
{
    snprintf(path, len, "%s/%s", s->dir, name);
    if (mkfifo(path, 0600) < 0)
        return -errno;
    /* ours opened first and non-blocking: no wait for the shim's end */
    *fd = open(path, flags | O_NONBLOCK | O_CLOEXEC);
    return *fd < 0 ? -errno : 0;
}

static void
exec_prepare(void *arg)
{
    rcs_t *s = arg;
    cri_t *c = s->c;
    berth_error_t *e = NULL;
    uint8_t rnd[16];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        memset(rnd, 0x42, sizeof(rnd));
    for (int i = 0; i < 16; i++)
        snprintf(s->exec_id + 2 * i, 3, "%02x", rnd[i]);
    char *spec = exec_spec(s, &e);
    if (spec == NULL) {
        s->errmsg = errstr(c, e);
        return;
    }
    snprintf(s->dir, sizeof(s->dir), "%s/exec/%s", c->cfg.state, s->exec_id);
    char in[PATH_MAX] = "", out[PATH_MAX] = "", err[PATH_MAX] = "";
    int rc = c->api->mkdir_all(s->dir, 0700, &e) < 0 ? -EIO : 0;
    if (rc == 0 && s->r->in)
        rc = fifo(s, "stdin", O_RDWR, in, sizeof(in), &s->fd_in);
    if (rc == 0 && s->r->out)
        rc = fifo(s, "stdout", O_RDONLY, out, sizeof(out), &s->fd_out);
    if (rc == 0 && s->r->err && !s->tty)
        rc = fifo(s, "stderr", O_RDONLY, err, sizeof(err), &s->fd_err);
    if (rc < 0) {
        s->errmsg = e ? errstr(c, e) : strdup(strerror(-rc));
        free(spec);
        return;
    }
    s->w = cri_exit_wait_register(c, s->r->id, s->exec_id);
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    any.type_url = "types.containerd.io/opencontainers/runtime-spec/1/Process";
    any.value.data = (uint8_t *)spec;
    any.value.len = strlen(spec);
    Containerd__Services__Tasks__V1__ExecProcessRequest x =
        CONTAINERD__SERVICES__TASKS__V1__EXEC_PROCESS_REQUEST__INIT;
    x.container_id = s->r->id;
    x.exec_id = s->exec_id;
    x.stdin = in, x.stdout = out, x.stderr = err;
    x.terminal = s->tty;
    x.spec = &any;
    rc = task_call(c, "Exec", &x.base, &e);
    free(spec);
    if (rc == 0) {
        Containerd__Services__Tasks__V1__StartRequest st =
            CONTAINERD__SERVICES__TASKS__V1__START_REQUEST__INIT;
        st.container_id = s->r->id;
        st.exec_id = s->exec_id;
        rc = task_call(c, "Start", &st.base, &e);
        if (rc < 0) {
            Containerd__Services__Tasks__V1__DeleteProcessRequest d =
                CONTAINERD__SERVICES__TASKS__V1__DELETE_PROCESS_REQUEST__INIT;
            d.container_id = s->r->id;
            d.exec_id = s->exec_id;
            berth_error_t *e2 = NULL;
            task_call(c, "DeleteProcess", &d.base, &e2);
            c->api->error_free(e2);
        }
    }
    if (rc < 0) {
        s->errmsg = errstr(c, e);
        cri_exit_wait_cancel(s->w);
        s->w = NULL;
    }
}

static void
attach_prepare(void *arg)
{
    rcs_t *s = arg;
    cri_t *c = s->c;
    berth_error_t *e = NULL;
    cri_container_t *k = NULL;
    if (cri_container_find(c, s->r->id, &k, &e) < 0) {
        s->errmsg = errstr(c, e);
        return;
    }
    s->tty = k->config && k->config->tty;
    s->stdin_once = k->config && k->config->stdin_once;
    char out_path[4200];
    char *log_path = strdup(cri_container_output_path(c, k, out_path, sizeof(out_path)));
    int running = k->state == CRI_CONTAINER_RUNNING;
    char id[65];
    snprintf(id, sizeof(id), "%s", k->id);
    cri_container_unref(k);
    /* the waiter first: an exit from now on is not missed */
    s->w = cri_exit_wait_register(c, id, "");
    if (!running) {
        s->errmsg = strdup("container is not running");
    } else if (s->r->in) {
        char path[PATH_MAX];
        if (cri_container_stdin_path(c, id, path, sizeof(path)) < 0)
            s->errmsg = strdup("the container was not created with stdin");
        else if ((s->fd_in = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0)
            s->errmsg = strdup("the container's stdin is not open");
    }
    if (s->errmsg == NULL && *log_path) {
        s->log_fd = open(log_path, O_RDONLY | O_CLOEXEC);
        if (s->log_fd >= 0)
            lseek(s->log_fd, 0, SEEK_END); /* what comes from now on, as attach shows */
    }
    free(log_path);
    if (s->errmsg) {
        cri_exit_wait_cancel(s->w);
        s->w = NULL;
    }
}

typedef struct resize_job {
    rcs_t *s;
    unsigned w, h;
} resize_job_t;

static void
resize_run(void *arg)
{
    resize_job_t *j = arg;
    Containerd__Services__Tasks__V1__ResizePtyRequest x =
        CONTAINERD__SERVICES__TASKS__V1__RESIZE_PTY_REQUEST__INIT;
    x.container_id = j->s->r->id;
    x.exec_id = j->s->exec_id; /* "" for attach: the container's own terminal */
    x.width = j->w;
    x.height = j->h;
    berth_error_t *e = NULL;
    task_call(j->s->c, "ResizePty", &x.base, &e);
    j->s->c->api->error_free(e);
}

static void
close_io_run(void *arg)
{
    rcs_t *s = arg;
    Containerd__Services__Tasks__V1__CloseIORequest x =
        CONTAINERD__SERVICES__TASKS__V1__CLOSE_IOREQUEST__INIT;
    x.container_id = s->r->id;
    x.exec_id = s->exec_id;
    x.stdin = 1;
    berth_error_t *e = NULL;
    task_call(s->c, "CloseIO", &x.base, &e);
    s->c->api->error_free(e);
    if (s->r->kind == SREQ_ATTACH)
        cri_container_stdin_done(s->c, s->r->id); /* berthd's own hold of the FIFO, if any */
}

static void
kill_run(void *arg)
{
    rcs_t *s = arg;
    Containerd__Services__Tasks__V1__KillRequest x =
        CONTAINERD__SERVICES__TASKS__V1__KILL_REQUEST__INIT;
    x.container_id = s->r->id;
    x.exec_id = s->exec_id;
    x.signal = 9;
    berth_error_t *e = NULL;
    task_call(s->c, "Kill", &x.base, &e);
    s->c->api->error_free(e);
}

static void
cleanup_run(void *arg)
{
    rcs_t *s = arg;
    if (s->r->kind == SREQ_EXEC && s->exec_id[0]) {
        Containerd__Services__Tasks__V1__DeleteProcessRequest d =
            CONTAINERD__SERVICES__TASKS__V1__DELETE_PROCESS_REQUEST__INIT;
        d.container_id = s->r->id;
        d.exec_id = s->exec_id;
        berth_error_t *e = NULL;
        task_call(s->c, "DeleteProcess", &d.base, &e);
        s->c->api->error_free(e);
    }
    if (s->dir[0]) {
        static const char *const names[] = {"stdin", "stdout", "stderr"};
        char p[PATH_MAX + 16];
        for (int i = 0; i < 3; i++) {
            snprintf(p, sizeof(p), "%s/%s", s->dir, names[i]);
            unlink(p);
        }
        rmdir(s->dir);
    }
}

/* ---- the loop side --------------------------------------------------------------------------------- */

static void maybe_finish(rcs_t *s);

static void
close_handle(rcs_t *s, uv_handle_t *h, int *open)
{
    if (!*open)
        return;
    *open = 0;
    h->data = s->k;
    uv_close(h, sconn_handle_closed);
}

static void
output_done(rcs_t *s, uv_pipe_t *p)
{
    int *open = p == &s->out ? &s->out_open : &s->err_open;
    if (!*open)
        return;
    close_handle(s, (uv_handle_t *)p, open);
    s->outputs--;
    maybe_finish(s);
}

static void
out_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(suggested);
    b->len = suggested;
}

static void
out_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    sconn_t *k = st->data;
    rcs_t *s = k->rcs;
    if (n > 0 && !s->gone)
        rc_send(k, (uv_pipe_t *)st == &s->err ? CH_STDERR : CH_STDOUT, b->base, (size_t)n);
    free(b->base);
    if (n < 0)
        output_done(s, (uv_pipe_t *)st);
}

static int
pipe_from(rcs_t *s, uv_pipe_t *p, int *fd, int *open)
{
    if (*fd < 0)
        return 0;
    uv_pipe_init(s->c->loop, p, 0);
    p->data = s->k;
    s->k->handles++;
    *open = 1;
    if (uv_pipe_open(p, *fd) < 0) {
        close(*fd);
        *fd = -1;
        close_handle(s, (uv_handle_t *)p, open);
        return -1;
    }
    *fd = -1; /* the pipe's now */
    return 0;
}

static void
finish_done(void *arg)
{
    rcs_t *s = arg;
    if (s->ended)
        return;
    s->ended = 1;
    if (s->gone)
        return;
    int code = s->r->kind == SREQ_EXEC ? (int)s->status : 0;
    rc_end(s->k, code, s->errmsg);
}

static void log_poll(uv_timer_t *t);

static void
grace_fired(uv_timer_t *t)
{
    sconn_t *k = t->data;
    rcs_t *s = k->rcs;
    if (s->r->kind == SREQ_ATTACH) {
        if (!s->exited)
            return;
        log_poll(t); /* the lines the shim wrote as the container ended */
    }
    output_done(s, &s->out);
    output_done(s, &s->err);
    s->outputs = 0;
    maybe_finish(s);
}

static void
maybe_finish(rcs_t *s)
{
    if (s->finishing || !(s->exited || s->errmsg))
        return;
    if (s->outputs > 0 && !s->gone) {
        if (!s->timer_open) { /* a process that left a child holding its output */
            uv_timer_init(s->c->loop, &s->timer);
            s->timer.data = s->k;
            s->k->handles++;
            s->timer_open = 1;
        }
        uv_timer_start(&s->timer, grace_fired, EXIT_GRACE_MS, 0);
        return;
    }
    s->finishing = 1;
    if (s->timer_open)
        close_handle(s, (uv_handle_t *)&s->timer, &s->timer_open);
    close_handle(s, (uv_handle_t *)&s->in, &s->in_open);
    stream_work(s->k, cleanup_run, finish_done, s);
}

/* the exit's thread: waits, then tells the loop */
static void
exit_on_loop(void *arg)
{
    rcs_t *s = arg;
    s->exited = 1;
    if (s->r->kind == SREQ_ATTACH && s->timer_open) {
        /* the shim writes the last lines as the process ends: one more look at the log */
        uv_timer_start(&s->timer, grace_fired, 200, 0);
        sconn_unref(s->k);
        return;
    }
    maybe_finish(s);
    sconn_unref(s->k);
}

static void *
exit_thread(void *arg)
{
    rcs_t *s = arg;
    int64_t at = 0;
    for (;;) {
        int rc = cri_exit_wait(s->w, 500, &s->status, &at);
        if (rc == 0)
            break;
        /* an attach whose client left stops waiting for a container that may run for days */
        if (rc == BERTH_ETIMEDOUT &&
            !(s->r->kind == SREQ_ATTACH && __atomic_load_n(&s->gone, __ATOMIC_SEQ_CST)))
            continue;
        s->status = 255;
        break;
    }
    cri_exit_wait_cancel(s->w);
    s->w = NULL;
    if (s->c->api->call_on_loop(exit_on_loop, s) < 0)
        s->exited = 1; /* the daemon is stopping */
    return NULL;
}

static void
route_log_line(rcs_t *s, char *line, size_t len)
{
    /* <RFC 3339 time> <stdout|stderr> <P|F> <content> */
    char *a = memchr(line, ' ', len);
    char *b = a ? memchr(a + 1, ' ', len - (size_t)(a + 1 - line)) : NULL;
    char *t = b ? memchr(b + 1, ' ', len - (size_t)(b + 1 - line)) : NULL;
    if (t == NULL)
        return;
    int err = (size_t)(b - a - 1) == 6 && memcmp(a + 1, "stderr", 6) == 0;
    int full = b[1] == 'F';
    char *content = t + 1;
    size_t n = len - (size_t)(content - line);
    if (full)
        content[n++] = '\n'; /* the newline the line ended with, where the \n was */
    int ch = err && !s->tty ? CH_STDERR : CH_STDOUT;
    if ((ch == CH_STDERR && !s->r->err) || (ch == CH_STDOUT && !s->r->out))
        return;
    rc_send(s->k, ch, content, n);
}

static void
log_poll(uv_timer_t *t)
{
    sconn_t *k = t->data;
    rcs_t *s = k->rcs;
    if (s->log_fd < 0 || s->gone)
        return;
    char buf[65536];
    ssize_t n;
    while ((n = read(s->log_fd, buf, sizeof(buf))) > 0)
        sbuf_put(&s->logbuf, buf, (size_t)n);
    size_t off = 0;
    while (off < s->logbuf.len) {
        uint8_t *nl = memchr(s->logbuf.p + off, '\n', s->logbuf.len - off);
        if (nl == NULL)
            break;
        route_log_line(s, (char *)s->logbuf.p + off, (size_t)(nl - (s->logbuf.p + off)));
        off = (size_t)(nl - s->logbuf.p) + 1;
    }
    sbuf_consume(&s->logbuf, off);
}

static void flush_stdin(rcs_t *s);

static void
stdin_written(uv_write_t *w, int status)
{
    (void)status;
    free(w->data);
    free(w);
}

static void
stdin_shut(uv_shutdown_t *sh, int status)
{
    (void)status;
    rcs_t *s = sh->data;
    free(sh);
    close_handle(s, (uv_handle_t *)&s->in, &s->in_open);
    /* an exec's stdin ends with its client's; so does a container's with its first attach's when it
     * asked for stdin_once (containerd closes it so: `sh` reading it then exits) */
    int close_io = s->r->kind == SREQ_EXEC || (s->r->kind == SREQ_ATTACH && s->stdin_once);
    if (close_io && !s->finishing && !s->gone)
        stream_work(s->k, close_io_run, NULL, s);
    sconn_unref(s->k);
}

static void
flush_stdin(rcs_t *s)
{
    if (!s->in_open || s->in_closed)
        return;
    if (s->pending_in.len) {
        uv_write_t *w = malloc(sizeof(*w));
        uv_buf_t b = uv_buf_init((char *)s->pending_in.p, (unsigned)s->pending_in.len);
        w->data = s->pending_in.p;
        s->pending_in = (sbuf_t){0};
        if (uv_write(w, (uv_stream_t *)&s->in, &b, 1, stdin_written) < 0) {
            free(w->data);
            free(w);
        }
    }
    if (s->in_eof) {
        s->in_closed = 1;
        uv_shutdown_t *sh = malloc(sizeof(*sh));
        sh->data = s;
        sconn_ref(s->k);
        if (uv_shutdown(sh, (uv_stream_t *)&s->in, stdin_shut) < 0) {
            free(sh);
            sconn_unref(s->k);
            close_handle(s, (uv_handle_t *)&s->in, &s->in_open);
        }
    }
}

static void
spawn_exit_thread(rcs_t *s)
{
    sconn_ref(s->k);
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, exit_thread, s) != 0) {
        sconn_unref(s->k);
        s->errmsg = strdup("no thread for the exit");
        s->exited = 1;
        maybe_finish(s);
    }
    pthread_attr_destroy(&at);
}

static void
prepared(void *arg)
{
    rcs_t *s = arg;
    if (s->gone && s->w && s->r->kind == SREQ_EXEC) {
        /* started after all: killed, and its exit still cleans up */
        s->started = 1;
        stream_work(s->k, kill_run, NULL, s);
        spawn_exit_thread(s);
        return;
    }
    if (s->gone) {
        if (s->w)
            cri_exit_wait_cancel(s->w);
        s->w = NULL;
        return;
    }
    if (s->errmsg) {
        s->exited = 1;
        maybe_finish(s);
        return;
    }
    s->started = 1;
    pipe_from(s, &s->in, &s->fd_in, &s->in_open);
    if (pipe_from(s, &s->out, &s->fd_out, &s->out_open) == 0 && s->out_open) {
        s->outputs++;
        uv_read_start((uv_stream_t *)&s->out, out_alloc, out_read);
    }
    if (pipe_from(s, &s->err, &s->fd_err, &s->err_open) == 0 && s->err_open) {
        s->outputs++;
        uv_read_start((uv_stream_t *)&s->err, out_alloc, out_read);
    }
    if (s->r->kind == SREQ_ATTACH && !s->timer_open) {
        uv_timer_init(s->c->loop, &s->timer);
        s->timer.data = s->k;
        s->k->handles++;
        s->timer_open = 1;
        uv_timer_start(&s->timer, log_poll, LOG_POLL_MS, LOG_POLL_MS);
    }
    flush_stdin(s);
    if (s->width && !s->gone)
        rcs_resize(s->k, s->width, s->height);
    spawn_exit_thread(s);
}

static void
begin(rcs_t *s)
{
    s->waiting_size = 0;
    stream_work(s->k, s->r->kind == SREQ_EXEC ? exec_prepare : attach_prepare, prepared, s);
}

static void
size_wait_over(uv_timer_t *t)
{
    sconn_t *k = t->data;
    if (k->rcs && k->rcs->waiting_size && !k->rcs->gone)
        begin(k->rcs);
}

void
rcs_start(sconn_t *k)
{
    rcs_t *s = calloc(1, sizeof(*s));
    s->k = k;
    s->c = k->c;
    s->r = k->req;
    s->tty = k->req->tty;
    s->fd_in = s->fd_out = s->fd_err = s->log_fd = -1;
    k->rcs = s;
    if (s->r->kind == SREQ_EXEC && s->tty) {
        /* a terminal's first size comes right after the streams: the process starts with it */
        uv_timer_init(s->c->loop, &s->timer);
        s->timer.data = k;
        k->handles++;
        s->timer_open = 1;
        s->waiting_size = 1;
        uv_timer_start(&s->timer, size_wait_over, SIZE_WAIT_MS, 0);
        return;
    }
    begin(s);
}

void
rcs_stdin(sconn_t *k, const uint8_t *p, size_t n)
{
    rcs_t *s = k->rcs;
    if (s == NULL || s->in_eof || !s->r->in)
        return;
    sbuf_put(&s->pending_in, p, n);
    flush_stdin(s);
}

void
rcs_stdin_eof(sconn_t *k)
{
    rcs_t *s = k->rcs;
    if (s == NULL || s->in_eof)
        return;
    s->in_eof = 1;
    flush_stdin(s);
}

void
rcs_resize(sconn_t *k, unsigned w, unsigned h)
{
    rcs_t *s = k->rcs;
    if (s == NULL || !s->tty || w == 0 || h == 0)
        return;
    s->width = w, s->height = h;
    if (s->waiting_size) {
        uv_timer_stop(&s->timer);
        begin(s);
        return;
    }
    if (!s->started || s->finishing)
        return;
    resize_job_t *j = malloc(sizeof(*j));
    *j = (resize_job_t){s, w, h};
    stream_work(k, resize_run, free, j);
}

void
rcs_gone(sconn_t *k)
{
    rcs_t *s = k->rcs;
    if (s == NULL || s->gone)
        return;
    __atomic_store_n(&s->gone, 1, __ATOMIC_SEQ_CST);
    close_handle(s, (uv_handle_t *)&s->in, &s->in_open);
    close_handle(s, (uv_handle_t *)&s->out, &s->out_open);
    close_handle(s, (uv_handle_t *)&s->err, &s->err_open);
    if (s->timer_open && !s->finishing)
        close_handle(s, (uv_handle_t *)&s->timer, &s->timer_open);
    s->outputs = 0;
    /* an exec still running is killed, as containerd's CRI does when its stream goes; its exit
     * still arrives and cleans up */
    if (s->started && s->r->kind == SREQ_EXEC && !s->exited)
        stream_work(k, kill_run, NULL, s);
    if (s->exited)
        maybe_finish(s);
}

void
rcs_free(rcs_t *s)
{
    if (s->fd_in >= 0)
        close(s->fd_in);
    if (s->fd_out >= 0)
        close(s->fd_out);
    if (s->fd_err >= 0)
        close(s->fd_err);
    if (s->log_fd >= 0)
        close(s->log_fd);
    sbuf_free(&s->pending_in);
    sbuf_free(&s->logbuf);
    free(s->errmsg);
    free(s);
}
