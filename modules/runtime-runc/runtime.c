/* SPDX-License-Identifier: Apache-2.0 */
/*
 * io.containerd.runtime.v2.task: tasks through berth-shim (shim.c), one per container. A task's bundle is
 * <state>/io.containerd.runtime.v2.task/<namespace>/<id> (0700): config.json, rootfs/ (mounted here), the
 * shim's socket name and runc's log. Requests go to the shim over short-lived connections from pool
 * threads; each task also has one long-lived connection on the loop thread that hears of exits. On start,
 * every bundle is visited: a live shim is watched again, a dead one is cleaned up and its exit reported.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <berth/module.h>
#include <berth/runtime.h>

#include "identifiers.h"
#include "mountopts.h"
#include "spec.h"
#include "shimlog.h"

#define PATH_LEN 4096

typedef struct runtime runtime_t;

typedef struct task {
    runtime_t *rt;
    char ns[80], id[128];
    char bundle[PATH_LEN + 256];
    char sock[108];
    uv_pipe_t *watch; /* loop thread only */
    int removing;     /* a delete is under way: the shim's exit is expected (under rt->lock) */
    int refs;         /* the task list's and each task_get's (under rt->lock): task_put frees */
    uv_work_t cleanup;
    char buf[4096];
    size_t len;
    struct task *next;
} task_t;

typedef struct exit_note {
    char ns[80], id[128], exec_id[128];
    uint32_t pid, status;
    int64_t exited_ns;
} exit_note_t;

struct runtime {
    const berth_core_api_t *api;
    const berth_logger_t *log;
    uv_loop_t *loop;
    char state[PATH_LEN]; /* bundles */
    char sockets[80];     /* shim sockets: sun_path holds 108 bytes */
    char runc_root[PATH_LEN];
    char shim[PATH_LEN];
    char runc[PATH_LEN];
    pthread_mutex_t lock;
    task_t *tasks;
    berth_task_exit_fn exit_fn;
    void *exit_user;
    berth_task_oom_fn oom_fn;
    void *oom_user;
    exit_note_t *early; /* exits found before anyone watched (dead shims at start) */
    size_t n_early;
    int closing;          /* fini ran; the last cleanup in flight frees the runtime */
    int cleanups_pending; /* loop thread only */
};

static void runtime_free(runtime_t *rt);

static int
code_of(berth_error_t **err, int dflt)
{
    return err && *err ? (*err)->code : dflt;
}

/* ---- the task table ------------------------------------------------------------------------------- */

static task_t *
find_task(runtime_t *rt, const char *ns, const char *id)
{
    for (task_t *t = rt->tasks; t; t = t->next)
        if (strcmp(t->ns, ns) == 0 && strcmp(t->id, id) == 0)
            return t;
    return NULL;
}

/* A reference: a delete on another thread cannot free the task under a call still using it. */
static task_t *
task_get(runtime_t *rt, const char *ns, const char *id, berth_error_t **err)
{
    pthread_mutex_lock(&rt->lock);
    task_t *t = find_task(rt, ns, id);
    if (t)
        t->refs++;
    pthread_mutex_unlock(&rt->lock);
    if (t == NULL)
        rt->api->error_make(err, BERTH_ENOTFOUND, "task %s: not found", id);
    return t;
}

static void
task_put(task_t *t)
{
    runtime_t *rt = t->rt;
    pthread_mutex_lock(&rt->lock);
    int last = --t->refs == 0;
    pthread_mutex_unlock(&rt->lock);
    if (last)
        free(t);
}

static void
task_forget(runtime_t *rt, task_t *gone)
{
    pthread_mutex_lock(&rt->lock);
    for (task_t **p = &rt->tasks; *p; p = &(*p)->next)
        if (*p == gone) {
            *p = gone->next;
            break;
        }
    pthread_mutex_unlock(&rt->lock);
}

/* ---- talking to a shim (pool threads) ----------------------------------------------------------------- */

static int
connect_to(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* One request; *reply gets the fields after the code (caller's buffer). */
static int
shim_call(runtime_t *rt, task_t *t, const char *request, char *reply, size_t len,
          berth_error_t **err)
{
    int fd = connect_to(t->sock);
    if (fd < 0)
        return rt->api->error_make(err, BERTH_EUNAVAILABLE, "task %s: its shim is gone: %s", t->id,
                                   strerror(errno));
    char line[8192];
    size_t n = 0;
    int rc = BERTH_EUNAVAILABLE;
    if (send(fd, request, strlen(request), MSG_NOSIGNAL) == (ssize_t)strlen(request)) {
        for (ssize_t got;
             n < sizeof(line) - 1 && (got = recv(fd, line + n, sizeof(line) - 1 - n, 0)) > 0;) {
            n += (size_t)got;
            line[n] = '\0';
            char *r = strstr(line, "r\t");
            if (r && (r == line || r[-1] == '\n') && strchr(r, '\n')) {
                *strchr(r, '\n') = '\0';
                rc = atoi(r + 2);
                const char *rest = strchr(r + 2, '\t');
                snprintf(reply, len, "%s", rest ? rest + 1 : "");
                break;
            }
        }
    }
    close(fd);
    if (rc == BERTH_EUNAVAILABLE && n == 0)
        return rt->api->error_make(err, rc, "task %s: no answer from its shim", t->id);
    if (rc < 0)
        return rt->api->error_make(err, rc < BERTH_ECODE_MIN ? BERTH_EINTERNAL : rc, "task %s: %s",
                                   t->id, reply);
    return 0;
}

/* "" travels as "-": the shim splits on tabs and would lose empty fields. */
static const char *
field(const char *s)
{
    return s && s[0] ? s : "-";
}

/* Fields never hold tabs or newlines; paths and ids that do are refused. */
static int
plain(runtime_t *rt, const char *what, const char *s, berth_error_t **err)
{
    if (s && strpbrk(s, "\t\n"))
        return rt->api->error_make(err, BERTH_EINVAL, "%s must not hold tabs or newlines", what);
    return 0;
}

/* ---- exits (loop thread) ---------------------------------------------------------------------------- */

static void
deliver_exit(runtime_t *rt, const char *ns, const char *id, const char *exec_id, uint32_t pid,
             uint32_t status, int64_t at)
{
    if (rt->exit_fn) {
        rt->exit_fn(rt->exit_user, ns, id, exec_id, pid, status, at);
        return;
    }
    rt->early = realloc(rt->early, (rt->n_early + 1) * sizeof(*rt->early));
    exit_note_t *e = &rt->early[rt->n_early++];
    *e = (exit_note_t){.pid = pid, .status = status, .exited_ns = at};
    snprintf(e->ns, sizeof(e->ns), "%s", ns);
    snprintf(e->id, sizeof(e->id), "%s", id);
    snprintf(e->exec_id, sizeof(e->exec_id), "%s", exec_id);
}

/* "e\texit\tEXEC\tPID\tSTATUS\tAT" */
static void
on_event_line(task_t *t, char *line)
{
    char *f[6] = {0};
    int n = 0;
    for (char *p = line; n < 6; n++) {
        f[n] = p;
        char *tab = strchr(p, '\t');
        if (tab == NULL) {
            n++;
            break;
        }
        *tab = '\0';
        p = tab + 1;
    }
    if (n >= 2 && strcmp(f[0], "e") == 0 && strcmp(f[1], "oom") == 0 && t->rt->oom_fn)
        t->rt->oom_fn(t->rt->oom_user, t->ns, t->id);
    if (n == 6 && strcmp(f[0], "e") == 0 && strcmp(f[1], "exit") == 0)
        deliver_exit(t->rt, t->ns, t->id, f[2], (uint32_t)atol(f[3]), (uint32_t)atol(f[4]),
                     atoll(f[5]));
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    task_t *t = h->data;
    buf->base = t->buf + t->len;
    buf->len = sizeof(t->buf) - 1 - t->len;
}

static void
close_watch(task_t *t)
{
    if (t->watch && !uv_is_closing((uv_handle_t *)t->watch))
        uv_close((uv_handle_t *)t->watch, (uv_close_cb)free);
    t->watch = NULL;
}

static void runc_force_delete(runtime_t *rt, const char *ns, const char *id);
static void bundle_remove(const char *bundle);

static void
cleanup_dead(uv_work_t *req)
{
    task_t *t = req->data;
    runc_force_delete(t->rt, t->ns, t->id);
    bundle_remove(t->bundle);
    unlink(t->sock);
}

static void
cleanup_dead_done(uv_work_t *req, int status)
{
    task_t *t = req->data;
    runtime_t *rt = t->rt;
    (void)status;
    if (!rt->closing)
        deliver_exit(rt, t->ns, t->id, "", 0, 255, (int64_t)time(NULL) * 1000000000LL);
    task_put(t);
    if (--rt->cleanups_pending == 0 && rt->closing)
        runtime_free(rt);
}

/* The shim's connection ended. Unless a delete asked for that, the shim died (kill -9, OOM): the task is
 * cleaned up as after a restart, and its exit (255: nobody saw the real one) reported. */
static void
shim_gone(task_t *t)
{
    runtime_t *rt = t->rt;
    close_watch(t);
    pthread_mutex_lock(&rt->lock);
    int dead = !t->removing && find_task(rt, t->ns, t->id) == t;
    pthread_mutex_unlock(&rt->lock);
    if (!dead)
        return;
    task_forget(rt, t);
    rt->api->log(rt->log, BERTH_LOG_WARN, "task %s/%s: its shim died; cleaning up", t->ns, t->id);
    t->cleanup.data = t;
    rt->cleanups_pending++;
    uv_queue_work(rt->loop, &t->cleanup, cleanup_dead, cleanup_dead_done);
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    task_t *t = s->data;
    if (n < 0) {
        shim_gone(t);
        return;
    }
    t->len += (size_t)n;
    t->buf[t->len] = '\0';
    char *nl;
    while ((nl = memchr(t->buf, '\n', t->len)) != NULL) {
        *nl = '\0';
        on_event_line(t, t->buf);
        size_t used = (size_t)(nl - t->buf) + 1;
        memmove(t->buf, nl + 1, t->len - used);
        t->len -= used;
    }
    if (t->len >= sizeof(t->buf) - 1)
        t->len = 0;
}

static void
on_connect(uv_connect_t *req, int status)
{
    task_t *t = req->data;
    free(req);
    if (status == UV_ECANCELED) /* the watch was closed: the task may be gone already */
        return;
    if (status < 0) {
        /* nobody listens any more: the shim died between an answer and this connect (one that exits
         * after berthd died while starting it leaves its socket and a mounted rootfs behind) */
        shim_gone(t);
        return;
    }
    uv_read_start((uv_stream_t *)t->watch, on_alloc, on_read);
}

static void
start_watch(void *arg)
{
    task_t *t = arg;
    t->watch = calloc(1, sizeof(*t->watch));
    uv_pipe_init(t->rt->loop, t->watch, 0);
    t->watch->data = t;
    uv_connect_t *req = calloc(1, sizeof(*req));
    req->data = t;
    uv_pipe_connect(req, t->watch, t->sock, on_connect);
}

typedef struct unwatch {
    task_t *t;
} unwatch_t;

/* Closing the watch and freeing the task happen on the loop, after any event already read. */
static void
stop_watch_and_free(void *arg)
{
    task_t *t = arg;
    close_watch(t);
    task_put(t);
}

static int
rt_watch_exits(void *arg, berth_task_exit_fn fn, void *user, berth_error_t **err)
{
    runtime_t *rt = arg;
    (void)err;
    rt->exit_fn = fn;
    rt->exit_user = user;
    if (fn == NULL) /* the listener is going away */
        return 0;
    for (size_t i = 0; i < rt->n_early; i++) {
        exit_note_t *e = &rt->early[i];
        fn(user, e->ns, e->id, e->exec_id, e->pid, e->status, e->exited_ns);
    }
    free(rt->early);
    rt->early = NULL;
    rt->n_early = 0;
    return 0;
}

static int
rt_watch_ooms(void *arg, berth_task_oom_fn fn, void *user, berth_error_t **err)
{
    runtime_t *rt = arg;
    (void)err;
    rt->oom_fn = fn;
    rt->oom_user = user;
    return 0;
}

/* ---- bundles ---------------------------------------------------------------------------------------- */

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

/* Unmounts the rootfs (it may hold several mounts, each unmounted in turn) and removes the bundle. */
static void
bundle_remove(const char *bundle)
{
    char rootfs[PATH_LEN + 300];
    snprintf(rootfs, sizeof(rootfs), "%s/rootfs", bundle);
    while (umount2(rootfs, 0) == 0)
        ;
    if (errno == EBUSY)
        umount2(rootfs, MNT_DETACH);
    nftw(bundle, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static int
write_file(const char *dir, const char *name, const char *text)
{
    char path[PATH_LEN + 400];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    ssize_t w = write(fd, text, len);
    close(fd);
    return w == (ssize_t)len ? 0 : -1;
}

static int
mount_rootfs(runtime_t *rt, const char *bundle, const berth_mount_t *m, size_t n,
             berth_error_t **err)
{
    char rootfs[PATH_LEN + 300], why[1024];
    snprintf(rootfs, sizeof(rootfs), "%s/rootfs", bundle);
    if (mkdir(rootfs, 0711) < 0)
        return rt->api->error_make(err, BERTH_EIO, "mkdir %s: %s", rootfs, strerror(errno));
    for (size_t i = 0; i < n; i++)
        if (mountopts_mount(&m[i], rootfs, 0, why, sizeof(why)) < 0)
            return rt->api->error_make(err, BERTH_EINVAL, "rootfs: %s", why);
    return 0;
}

/* A short socket path (sun_path holds 108 bytes): the FNV-1a hash of "<ns>/<id>" under <state>/s. */
static void
socket_path(runtime_t *rt, const char *ns, const char *id, char *out, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = ns; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ '/') * 1099511628211ULL;
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    snprintf(out, len, "%.80s/%016llx.sock", rt->sockets, (unsigned long long)h);
}

/* Starts berth-shim for the bundle and waits until it listens. */
static int
spawn_shim(runtime_t *rt, task_t *t, berth_error_t **err)
{
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) < 0)
        return rt->api->error_make(err, BERTH_EIO, "pipe: %s", strerror(errno));
    char runc_root[PATH_LEN + 128], fd[16];
    snprintf(runc_root, sizeof(runc_root), "%s/%s", rt->runc_root, t->ns);
    snprintf(fd, sizeof(fd), "%d", ready[1]);
    pid_t pid = fork();
    if (pid == 0) {
        fcntl(ready[1], F_SETFD, 0);
        execl(rt->shim, "berth-shim", t->id, t->bundle, t->sock, runc_root, rt->runc, fd,
              (char *)NULL);
        _exit(127);
    }
    close(ready[1]);
    int status = 0;
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    char answer[4] = "";
    ssize_t got = read(ready[0], answer, 3);
    close(ready[0]);
    if (pid < 0 || got != 3 || strncmp(answer, "ok\n", 3) != 0)
        return rt->api->error_make(err, BERTH_EINTERNAL, "shim %s for task %s did not start",
                                   rt->shim, t->id);
    return 0;
}

/* ---- the ops ---------------------------------------------------------------------------------------- */

/* Paths without tabs or newlines; a file:// log URI the shim can write (shimlog.c), refused here, before
 * any bundle or shim is made. */
static int
check_io(runtime_t *rt, const berth_task_io_t *io, berth_error_t **err)
{
    if (plain(rt, "stdin", io->stdin_path, err) || plain(rt, "stdout", io->stdout_path, err) ||
        plain(rt, "stderr", io->stderr_path, err))
        return BERTH_EINVAL;
    const char *out[2] = {io->stdout_path, io->stderr_path};
    for (int i = 0; i < 2; i++) {
        shimlog_cfg_t cfg;
        char msg[1024];
        if (out[i] && shimlog_parse(out[i], &cfg, msg, sizeof(msg)) < 0)
            return rt->api->error_make(err, BERTH_EINVAL, "%s", msg);
        if (out[i] && strlen(out[i]) >= sizeof(((berth_task_state_t *)0)->stdout_path))
            return rt->api->error_make(err, BERTH_EINVAL, "%s %s: longer than %zu bytes",
                                       i ? "stderr" : "stdout", out[i],
                                       sizeof(((berth_task_state_t *)0)->stdout_path) - 1);
    }
    return 0;
}

static task_t *
task_new(runtime_t *rt, const char *ns, const char *id)
{
    task_t *t = calloc(1, sizeof(*t));
    t->rt = rt;
    t->refs = 1;
    snprintf(t->ns, sizeof(t->ns), "%s", ns);
    snprintf(t->id, sizeof(t->id), "%s", id);
    snprintf(t->bundle, sizeof(t->bundle), "%s/%s/%s", rt->state, ns, id);
    socket_path(rt, ns, id, t->sock, sizeof(t->sock));
    return t;
}

static int
make_bundle(runtime_t *rt, task_t *t, const char *config, const berth_mount_t *m, size_t n,
            berth_error_t **err)
{
    char nsdir[PATH_LEN + 128];
    snprintf(nsdir, sizeof(nsdir), "%s/%s", rt->state, t->ns);
    if (rt->api->mkdir_all(nsdir, 0700, err) < 0)
        return code_of(err, BERTH_EIO);
    if (mkdir(t->bundle, 0700) < 0)
        return rt->api->error_make(err, errno == EEXIST ? BERTH_EEXIST : BERTH_EIO, "task %s: %s",
                                   t->id, errno == EEXIST ? "already exists" : strerror(errno));
    if (write_file(t->bundle, "config.json", config) < 0)
        return rt->api->error_make(err, BERTH_EIO, "task %s: config.json: %s", t->id,
                                   strerror(errno));
    return mount_rootfs(rt, t->bundle, m, n, err);
}

static int
rt_create(void *arg, const char *ns, const char *id, const char *runtime_name,
          const char *spec_json, const berth_mount_t *mounts, size_t n_mounts,
          const berth_task_io_t *io, uint32_t *pid, berth_error_t **err)
{
    runtime_t *rt = arg;
    if (strcmp(runtime_name, "io.containerd.runc.v2") != 0 &&
        strcmp(runtime_name, "io.containerd.runc.v1") != 0)
        return rt->api->error_make(err, BERTH_ENOTFOUND,
                                   "runtime %s: not supported (berth runs "
                                   "io.containerd.runc.v2 and .v1)",
                                   runtime_name);
    if (!identifier_valid(id) || check_io(rt, io, err) != 0)
        return err && *err ? (*err)->code
                           : rt->api->error_make(err, BERTH_EINVAL, "task id %s: invalid", id);
    task_t *t = task_new(rt, ns, id);
    pthread_mutex_lock(&rt->lock);
    int exists = find_task(rt, ns, id) != NULL;
    if (!exists) {
        t->next = rt->tasks;
        rt->tasks = t;
    }
    pthread_mutex_unlock(&rt->lock);
    if (exists) {
        task_put(t);
        return rt->api->error_make(err, BERTH_EEXIST, "task %s: already exists", id);
    }
    /* checked, and the pre-start hooks run, only for a task that is really about to be made */
    char *config = NULL;
    spec_task_t st = {ns, id, t->bundle, spec_json, n_mounts, io->terminal};
    if (spec_prepare(rt->api, &st, &config, err) < 0) {
        task_forget(rt, t);
        task_put(t);
        return code_of(err, BERTH_EINVAL);
    }
    int rc = make_bundle(rt, t, config, mounts, n_mounts, err);
    free(config);
    if (rc == 0)
        rc = spawn_shim(rt, t, err);
    char req[2048], reply[256];
    snprintf(req, sizeof(req), "create\t%s\t%s\t%s\t%d\n", field(io->stdin_path),
             field(io->stdout_path), field(io->stderr_path), io->terminal ? 1 : 0);
    if (rc == 0 && (rc = shim_call(rt, t, req, reply, sizeof(reply), err)) == 0) {
        *pid = (uint32_t)atol(reply);
        rt->api->call_on_loop(start_watch, t);
        return 0;
    }
    /* nothing half-made stays: the shim (if any) goes with its socket, the bundle with its mounts */
    shim_call(rt, t, "delete\t-\n", reply, sizeof(reply), NULL);
    if (rc != BERTH_EEXIST)
        bundle_remove(t->bundle);
    task_forget(rt, t);
    task_put(t);
    return rc;
}

static int
simple_call(runtime_t *rt, const char *ns, const char *id, const char *req, char *reply, size_t len,
            berth_error_t **err)
{
    task_t *t = task_get(rt, ns, id, err);
    if (t == NULL)
        return BERTH_ENOTFOUND;
    int rc = shim_call(rt, t, req, reply, len, err);
    task_put(t);
    return rc;
}

static int
rt_start(void *arg, const char *ns, const char *id, const char *exec_id, uint32_t *pid,
         berth_error_t **err)
{
    runtime_t *rt = arg;
    char req[512], reply[64];
    snprintf(req, sizeof(req), "start\t%s\n", field(exec_id));
    int rc = simple_call(rt, ns, id, req, reply, sizeof(reply), err);
    if (rc == 0)
        *pid = (uint32_t)atol(reply);
    return rc;
}

static int
rt_kill(void *arg, const char *ns, const char *id, const char *exec_id, uint32_t signal, int all,
        berth_error_t **err)
{
    char req[512], reply[64];
    snprintf(req, sizeof(req), "kill\t%s\t%u\t%d\n", field(exec_id), signal, all ? 1 : 0);
    return simple_call(arg, ns, id, req, reply, sizeof(reply), err);
}

/* "status pid exit_status exited_at stdin stdout stderr terminal" ("-" for an empty path) */
static void
parse_state(char *reply, berth_task_state_t *out)
{
    static const char *const names[] = {"", "created", "running", "stopped", "paused"};
    char *f[8] = {0};
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(reply, "\t", &save); tok && n < 8;
         tok = strtok_r(NULL, "\t", &save))
        f[n++] = strcmp(tok, "-") == 0 ? "" : tok;
    *out = (berth_task_state_t){0};
    for (int i = 1; n > 0 && i < 5; i++)
        if (strcmp(f[0], names[i]) == 0)
            out->status = (berth_task_status_t)i;
    out->pid = n > 1 ? (uint32_t)atol(f[1]) : 0;
    out->exit_status = n > 2 ? (uint32_t)atol(f[2]) : 0;
    out->exited_ns = n > 3 ? atoll(f[3]) : 0;
    snprintf(out->stdin_path, sizeof(out->stdin_path), "%s", n > 4 ? f[4] : "");
    snprintf(out->stdout_path, sizeof(out->stdout_path), "%s", n > 5 ? f[5] : "");
    snprintf(out->stderr_path, sizeof(out->stderr_path), "%s", n > 6 ? f[6] : "");
    out->terminal = n > 7 && strcmp(f[7], "1") == 0;
}

static int
rt_state(void *arg, const char *ns, const char *id, const char *exec_id, berth_task_state_t *out,
         berth_error_t **err)
{
    char req[512], reply[2048];
    snprintf(req, sizeof(req), "state\t%s\n", field(exec_id));
    int rc = simple_call(arg, ns, id, req, reply, sizeof(reply), err);
    if (rc == 0)
        parse_state(reply, out);
    return rc;
}

static int
rt_remove(void *arg, const char *ns, const char *id, const char *exec_id, berth_task_state_t *final,
          berth_error_t **err)
{
    runtime_t *rt = arg;
    task_t *t = task_get(rt, ns, id, err);
    if (t == NULL)
        return BERTH_ENOTFOUND;
    char req[512], reply[256];
    snprintf(req, sizeof(req), "delete\t%s\n", field(exec_id));
    int init = !(exec_id && exec_id[0]);
    /* one delete of the task at a time: a second one meanwhile finds it gone */
    pthread_mutex_lock(&rt->lock);
    int busy = init && t->removing;
    if (init)
        t->removing = 1;
    pthread_mutex_unlock(&rt->lock);
    if (busy) {
        task_put(t);
        return rt->api->error_make(err, BERTH_ENOTFOUND, "task %s: not found (being deleted)", id);
    }
    int rc = shim_call(rt, t, req, reply, sizeof(reply), err);
    if (rc != 0) {
        pthread_mutex_lock(&rt->lock);
        if (init)
            t->removing = 0;
        pthread_mutex_unlock(&rt->lock);
        task_put(t);
        return rc;
    }
    *final = (berth_task_state_t){.status = BERTH_TASK_STOPPED};
    sscanf(reply, "%u\t%u\t%lld", &final->pid, &final->exit_status, (long long *)&final->exited_ns);
    if (init) {
        bundle_remove(t->bundle);
        task_forget(rt, t);
        rt->api->call_on_loop(stop_watch_and_free, t); /* the list's reference */
    }
    task_put(t);
    return 0;
}

static int
rt_exec(void *arg, const char *ns, const char *id, const char *exec_id, const char *spec_json,
        const berth_task_io_t *io, berth_error_t **err)
{
    runtime_t *rt = arg;
    if (!identifier_valid(exec_id))
        return rt->api->error_make(err, BERTH_EINVAL, "exec id %s: invalid", exec_id);
    if (check_io(rt, io, err) != 0 || spec_check_process(rt->api, spec_json, io->terminal, err) < 0)
        return code_of(err, BERTH_EINVAL);
    task_t *t = task_get(rt, ns, id, err);
    if (t == NULL)
        return BERTH_ENOTFOUND;
    char name[256], req[PATH_LEN + 2048], reply[256];
    snprintf(name, sizeof(name), "exec-%s.json", exec_id);
    int rc;
    if (write_file(t->bundle, name, spec_json) < 0) {
        rc = rt->api->error_make(err, BERTH_EIO, "exec %s: %s", exec_id, strerror(errno));
    } else {
        snprintf(req, sizeof(req), "exec\t%s\t%s/%s\t%s\t%s\t%s\t%d\n", exec_id, t->bundle, name,
                 field(io->stdin_path), field(io->stdout_path), field(io->stderr_path),
                 io->terminal ? 1 : 0);
        rc = shim_call(rt, t, req, reply, sizeof(reply), err);
    }
    task_put(t);
    return rc;
}

static int
rt_pause(void *arg, const char *ns, const char *id, berth_error_t **err)
{
    char reply[64];
    return simple_call(arg, ns, id, "pause\n", reply, sizeof(reply), err);
}

static int
rt_resume(void *arg, const char *ns, const char *id, berth_error_t **err)
{
    char reply[64];
    return simple_call(arg, ns, id, "resume\n", reply, sizeof(reply), err);
}

static int
rt_pids(void *arg, const char *ns, const char *id, uint32_t **pids, size_t *n, berth_error_t **err)
{
    runtime_t *rt = arg;
    char reply[8192];
    int rc = simple_call(rt, ns, id, "pids\n", reply, sizeof(reply), err);
    *pids = NULL;
    *n = 0;
    for (char *p = reply; rc == 0 && *p;) { /* "[1,2,3]" */
        char *end;
        long v = strtol(p, &end, 10);
        if (end != p) {
            *pids = realloc(*pids, (*n + 1) * sizeof(**pids));
            (*pids)[(*n)++] = (uint32_t)v;
            p = end;
        } else {
            p++;
        }
    }
    return rc;
}

static int
rt_close_io(void *arg, const char *ns, const char *id, const char *exec_id, berth_error_t **err)
{
    char req[512], reply[64];
    snprintf(req, sizeof(req), "closeio\t%s\n", field(exec_id));
    return simple_call(arg, ns, id, req, reply, sizeof(reply), err);
}

static int
rt_resize_pty(void *arg, const char *ns, const char *id, const char *exec_id, uint32_t width,
              uint32_t height, berth_error_t **err)
{
    runtime_t *rt = arg;
    char req[512], reply[64];
    if (width > 65535 || height > 65535) /* a winsize holds 16 bits each */
        return rt->api->error_make(err, BERTH_EINVAL, "terminal size %ux%u is out of range", width,
                                   height);
    snprintf(req, sizeof(req), "resize\t%s\t%u\t%u\n", field(exec_id), width, height);
    return simple_call(rt, ns, id, req, reply, sizeof(reply), err);
}

static int
rt_update(void *arg, const char *ns, const char *id, const char *resources_json,
          berth_error_t **err)
{
    runtime_t *rt = arg;
    task_t *t = task_get(rt, ns, id, err);
    if (t == NULL)
        return BERTH_ENOTFOUND;
    int rc;
    char req[PATH_LEN + 400], reply[256];
    if (write_file(t->bundle, "resources.json", resources_json) < 0) {
        rc = rt->api->error_make(err, BERTH_EIO, "update %s: %s", id, strerror(errno));
    } else {
        snprintf(req, sizeof(req), "update\t%s/resources.json\n", t->bundle);
        rc = shim_call(rt, t, req, reply, sizeof(reply), err);
    }
    task_put(t);
    return rc;
}

static int
rt_list(void *arg, const char *ns, int (*cb)(void *user, const char *id), void *user,
        berth_error_t **err)
{
    runtime_t *rt = arg;
    (void)err;
    char(*ids)[128] = NULL;
    size_t n = 0;
    pthread_mutex_lock(&rt->lock);
    for (task_t *t = rt->tasks; t; t = t->next)
        if (strcmp(t->ns, ns) == 0) {
            ids = realloc(ids, (n + 1) * sizeof(*ids));
            memcpy(ids[n++], t->id, sizeof(*ids));
        }
    pthread_mutex_unlock(&rt->lock);
    for (size_t i = 0; i < n && cb(user, ids[i]) == 0; i++)
        ;
    free(ids);
    return 0;
}

/* ---- restoring after a restart ---------------------------------------------------------------------- */

static void
runc_force_delete(runtime_t *rt, const char *ns, const char *id)
{
    char root[PATH_LEN + 512];
    snprintf(root, sizeof(root), "%s/%s", rt->runc_root, ns);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 1);
        dup2(null, 2);
        execlp(rt->runc, rt->runc, "--root", root, "delete", "--force", id, (char *)NULL);
        _exit(127);
    }
    while (pid > 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* A shim's init process is the task's record: a shim that answers without one was started by a berthd
 * that died before asking it to create the task (rt_create), so nobody knows of the task and nobody would
 * remove it. Such a shim is told to go (it runs runc delete and exits), its bundle removed. */
typedef enum shim_probe { SHIM_HAS_TASK, SHIM_WITHOUT_TASK, SHIM_GONE } shim_probe_t;

static shim_probe_t
shim_probe(runtime_t *rt, task_t *t)
{
    char reply[2048];
    int rc = shim_call(rt, t, "state\t-\n", reply, sizeof(reply), NULL);
    if (rc == BERTH_ENOTFOUND)
        return SHIM_WITHOUT_TASK;
    if (rc != BERTH_EUNAVAILABLE)
        return SHIM_HAS_TASK;
    /* closed without an answer: a shim whose starting berthd died exits so (its "ready" went nowhere).
     * One that still listens is kept, as any shim that answers late; the watch hears if it goes. */
    int fd = connect_to(t->sock);
    if (fd < 0)
        return SHIM_GONE;
    close(fd);
    return SHIM_HAS_TASK;
}

static void
remove_unrecorded(runtime_t *rt, task_t *t)
{
    char reply[256];
    shim_call(rt, t, "delete\t-\n", reply, sizeof(reply), NULL);
    runc_force_delete(rt, t->ns, t->id);
    bundle_remove(t->bundle);
    unlink(t->sock);
    rt->api->log(rt->log, BERTH_LOG_WARN,
                 "task %s/%s: a shim without a task (berthd stopped while creating it); removed",
                 t->ns, t->id);
}

/* A bundle whose shim answers with a task is watched again; one whose shim is gone is cleaned up, and its
 * exit (status 255: nobody saw the real one) is reported once someone listens. */
static void
restore_task(runtime_t *rt, const char *ns, const char *id)
{
    task_t *t = task_new(rt, ns, id);
    int fd = connect_to(t->sock);
    shim_probe_t probe = SHIM_GONE;
    if (fd >= 0) {
        close(fd);
        probe = shim_probe(rt, t);
    }
    if (probe == SHIM_WITHOUT_TASK) {
        remove_unrecorded(rt, t);
        task_put(t);
        return;
    }
    if (probe == SHIM_HAS_TASK) {
        t->next = rt->tasks;
        rt->tasks = t;
        start_watch(t);
        rt->api->log(rt->log, BERTH_LOG_INFO, "task %s/%s: shim found again", ns, id);
        return;
    }
    runc_force_delete(rt, ns, id);
    bundle_remove(t->bundle);
    unlink(t->sock);
    deliver_exit(rt, ns, id, "", 0, 255, (int64_t)time(NULL) * 1000000000LL);
    rt->api->log(rt->log, BERTH_LOG_WARN, "task %s/%s: its shim was gone; cleaned up", ns, id);
    task_put(t);
}

static void
restore(runtime_t *rt)
{
    DIR *nsd = opendir(rt->state);
    for (struct dirent *n; nsd && (n = readdir(nsd)) != NULL;) {
        if (n->d_name[0] == '.')
            continue;
        char dir[PATH_LEN + 256];
        snprintf(dir, sizeof(dir), "%s/%s", rt->state, n->d_name);
        DIR *idd = opendir(dir);
        for (struct dirent *i; idd && (i = readdir(idd)) != NULL;)
            if (i->d_name[0] != '.')
                restore_task(rt, n->d_name, i->d_name);
        if (idd)
            closedir(idd);
    }
    if (nsd)
        closedir(nsd);
}

/* ---- the plugin ------------------------------------------------------------------------------------- */

static const berth_runtime_v1_ops_t runtime_ops = {
    .struct_size = sizeof(berth_runtime_v1_ops_t),
    .create = rt_create,
    .start = rt_start,
    .kill = rt_kill,
    .remove = rt_remove,
    .state = rt_state,
    .exec = rt_exec,
    .pause = rt_pause,
    .resume = rt_resume,
    .pids = rt_pids,
    .close_io = rt_close_io,
    .update = rt_update,
    .list = rt_list,
    .watch_exits = rt_watch_exits,
    .resize_pty = rt_resize_pty,
    .watch_ooms = rt_watch_ooms,
};

static const berth_config_field_t runtime_config[] = {
    {"shim", BERTH_CFG_STRING, "\"\"",
     "the berth-shim binary; empty: bin/berth-shim beside this module's lib/berth/modules"},
    {"runc", BERTH_CFG_STRING, "runc", "the runc binary (a name is looked up in PATH)"},
    {NULL, 0, NULL, NULL},
};

/* <prefix>/lib/berth/modules/runtime-runc.so -> <prefix>/bin/berth-shim */
static void
default_shim(char *out, size_t len)
{
    Dl_info info;
    char dir[PATH_LEN] = ".";
    if (dladdr((void *)default_shim, &info) && info.dli_fname)
        snprintf(dir, sizeof(dir), "%s", info.dli_fname);
    for (int up = 0; up < 4; up++) {
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
    }
    snprintf(out, len, "%s/bin/berth-shim", dir);
}

static int
runtime_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    const berth_core_api_t *api = ic->api;
    char shim[PATH_LEN];
    snprintf(shim, sizeof(shim), "%s", api->get_string(ic->config, "shim", ""));
    if (shim[0] == '\0')
        default_shim(shim, sizeof(shim));
    if (access(shim, X_OK) != 0)
        return api->error_make(err, BERTH_ESKIP, "skip plugin: no shim at %s", shim);
    runtime_t *rt = calloc(1, sizeof(*rt));
    *rt = (runtime_t){.api = api, .log = ic->log, .loop = ic->loop};
    snprintf(rt->shim, sizeof(rt->shim), "%s", shim);
    snprintf(rt->state, sizeof(rt->state), "%s", ic->state);
    if (strlen(ic->daemon_state) + 24 > sizeof(rt->sockets)) {
        free(rt);
        return api->error_make(err, BERTH_EINVAL, "state dir %s is too long for shim sockets",
                               ic->daemon_state);
    }
    snprintf(rt->sockets, sizeof(rt->sockets), "%s/s", ic->daemon_state);
    snprintf(rt->runc_root, sizeof(rt->runc_root), "%s/runc", ic->daemon_state);
    snprintf(rt->runc, sizeof(rt->runc), "%s", api->get_string(ic->config, "runc", "runc"));
    if (api->mkdir_all(rt->sockets, 0700, err) < 0 ||
        api->mkdir_all(rt->runc_root, 0700, err) < 0) {
        free(rt);
        return code_of(err, BERTH_EIO);
    }
    pthread_mutex_init(&rt->lock, NULL);
    restore(rt);
    *instance = rt;
    return 0;
}

static void
runtime_free(runtime_t *rt)
{
    free(rt->early);
    pthread_mutex_destroy(&rt->lock);
    free(rt);
}

static void
runtime_fini(void *instance)
{
    runtime_t *rt = instance;
    /* the shims keep running: tasks outlive berthd */
    for (task_t *t = rt->tasks, *next; t; t = next) {
        next = t->next;
        close_watch(t);
        task_put(t);
    }
    rt->tasks = NULL;
    rt->closing = 1;
    if (rt->cleanups_pending == 0)
        runtime_free(rt);
}

/* On first use, but at start when <state>/<ns>/<id> bundles are there: tasks that outlived berthd (or
 * whose exits it has not reported) need their shims watched again, and their exits delivered. */
static const char *const runtime_start_if[] = {"state:*/*", NULL};

const berth_plugin_reg_t runtime_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_RUNTIME_TYPE,
    .id = "task",
    .config = runtime_config,
    .init = runtime_init,
    .fini = runtime_fini,
    .ops = &runtime_ops,
    .flags = BERTH_PLUGIN_ON_DEMAND,
    .start_if = runtime_start_if,
};
