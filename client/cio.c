/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Task IO as containerd's cio: FIFOs made by the client in a fresh dir, the shim opens the other ends. The
 * outputs are opened O_RDONLY|O_NONBLOCK (never blocks; poll reports data, or POLLHUP once the shim's writer
 * came and went) and copied by one thread each; stdin is opened for writing in its own thread (that open waits
 * for the shim's reader, as containerd's fifo.OpenFifo does in the background). A pipe wakes every thread at
 * berth_io_free.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "task_internal.h"

typedef struct io_stream {
    berth_io_t *io;
    int which; /* 0 stdin, 1 stdout, 2 stderr */
    berth_stream_t s;
    char path[PATH_MAX]; /* the FIFO ("" without one) */
    int fifo_fd;
    int own_fd; /* a file we opened (BERTH_STREAM_FILE), else -1 */
    pthread_t th;
    int running, joined;
} io_stream_t;

struct berth_io_s {
    char dir[PATH_MAX];
    int terminal, keep_stdin;
    char *log_uri;
    io_stream_t st[3];
    int wake[2]; /* written at free: every poll returns */
    pthread_mutex_t mu;
    int stdin_closed;
    int stdin_writing; /* the stdin thread is in a write: close_stdin leaves the close to it */
};

static const char *
fifo_base(const berth_io_opts_t *o)
{
    if (o && o->fifo_dir && *o->fifo_dir)
        return o->fifo_dir;
    const char *e = getenv("BERTH_FIFO_DIR");
    return e && *e ? e : "/run/berth/fifo";
}

static int
mkdir_p(const char *path, mode_t mode)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, mode) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(tmp, mode) < 0 && errno != EEXIST ? -1 : 0;
}

static int
write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w, n -= (size_t)w;
    }
    return 0;
}

/* Waits for fd readable or the wake pipe; 1 readable/hup, 0 woken */
static int
wait_readable(berth_io_t *io, int fd)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = io->wake[0], .events = POLLIN}};
    for (;;) {
        int r = poll(p, 2, -1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || (p[1].revents & POLLIN))
            return 0;
        if (p[0].revents)
            return 1;
    }
}

static void *
out_thread(void *arg)
{
    io_stream_t *st = arg;
    char buf[32768];
    for (;;) {
        if (!wait_readable(st->io, st->fifo_fd))
            break;
        ssize_t n = read(st->fifo_fd, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            break; /* the shim closed its end: EOF */
        if (st->s.kind == BERTH_STREAM_CALLBACK)
            st->s.fn(st->s.user, st->which, buf, (size_t)n);
        else if (st->s.kind == BERTH_STREAM_FD)
            (void)write_all(st->s.fd, buf, (size_t)n);
        else if (st->own_fd >= 0)
            (void)write_all(st->own_fd, buf, (size_t)n);
        /* NONE: drained, dropped */
    }
    if (st->s.kind == BERTH_STREAM_CALLBACK)
        st->s.fn(st->s.user, st->which, NULL, 0);
    return NULL;
}

static void *
in_thread(void *arg)
{
    io_stream_t *st = arg;
    berth_io_t *io = st->io;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE); /* a gone shim: EPIPE, not a signal for the process */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    int fd = open(st->path, O_WRONLY | O_CLOEXEC); /* waits for the shim's reader (or free's) */
    pthread_mutex_lock(&io->mu);
    if (fd >= 0 && io->stdin_closed) {
        close(fd);
        fd = -1;
    }
    st->fifo_fd = fd;
    pthread_mutex_unlock(&io->mu);
    if (fd < 0)
        return NULL;
    int src = st->s.kind == BERTH_STREAM_FD ? st->s.fd : st->own_fd;
    char buf[32768];
    while (src >= 0 && wait_readable(io, src)) {
        ssize_t n = read(src, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            break;
        pthread_mutex_lock(&io->mu);
        int out = io->stdin_closed ? -1 : st->fifo_fd;
        io->stdin_writing = out >= 0;
        pthread_mutex_unlock(&io->mu);
        int wrc = out < 0 ? -1 : write_all(out, buf, (size_t)n);
        pthread_mutex_lock(&io->mu);
        io->stdin_writing = 0;
        pthread_mutex_unlock(&io->mu);
        if (wrc < 0)
            break;
    }
    /* the source's end is stdin's end for the process, as containerd's io.Copy then Close */
    berth_io_close_stdin(io);
    return NULL;
}

static int
make_fifo(berth_io_t *io, io_stream_t *st, const char *name, const char *suffix,
          berth_error_t **err)
{
    if (snprintf(st->path, sizeof st->path, "%s/%s-%s", io->dir, name, suffix) >=
        (int)sizeof st->path) {
        st->path[0] = '\0';
        return bc_error(err, BERTH_EINVAL, "FIFO path under %s too long", io->dir);
    }
    if (mkfifo(st->path, 0700) < 0) {
        int e = errno;
        st->path[0] = '\0';
        return bc_error(err, BERTH_EIO, "mkfifo %s/%s-%s: %s", io->dir, name, suffix, strerror(e));
    }
    return 0;
}

static int
setup_out(berth_io_t *io, io_stream_t *st, const char *name, berth_error_t **err)
{
    int rc = make_fifo(io, st, name, st->which == 1 ? "stdout" : "stderr", err);
    if (rc < 0)
        return rc;
    if (st->s.kind == BERTH_STREAM_FILE) {
        st->own_fd = open(st->s.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (st->own_fd < 0)
            return bc_error(err, BERTH_EIO, "open %s: %s", st->s.path, strerror(errno));
    }
    st->fifo_fd = open(st->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (st->fifo_fd < 0)
        return bc_error(err, BERTH_EIO, "open %s: %s", st->path, strerror(errno));
    if (pthread_create(&st->th, NULL, out_thread, st) != 0)
        return bc_error(err, BERTH_EIO, "start the %s copy: %s", st->path, strerror(errno));
    st->running = 1;
    return 0;
}

static int
setup_in(berth_io_t *io, io_stream_t *st, const char *name, berth_error_t **err)
{
    int rc = make_fifo(io, st, name, "stdin", err);
    if (rc < 0 || io->keep_stdin)
        return rc; /* keep_stdin: made and passed, opened later by whoever attaches */
    if (st->s.kind == BERTH_STREAM_FILE) {
        st->own_fd = open(st->s.path, O_RDONLY | O_CLOEXEC);
        if (st->own_fd < 0)
            return bc_error(err, BERTH_EIO, "open %s: %s", st->s.path, strerror(errno));
    }
    if (pthread_create(&st->th, NULL, in_thread, st) != 0)
        return bc_error(err, BERTH_EIO, "start the stdin copy: %s", strerror(errno));
    st->running = 1;
    return 0;
}

int
bc_io_create(const berth_io_opts_t *o, const char *name, berth_io_t **out, berth_error_t **err)
{
    berth_io_t *io = calloc(1, sizeof *io);
    if (!io)
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    pthread_mutex_init(&io->mu, NULL);
    io->wake[0] = io->wake[1] = -1;
    for (int i = 0; i < 3; i++) {
        io->st[i].io = io;
        io->st[i].which = i;
        io->st[i].fifo_fd = io->st[i].own_fd = -1;
    }
    *out = io;
    if (!o)
        return 0;
    io->terminal = o->terminal;
    io->keep_stdin = o->keep_stdin;
    io->st[0].s = o->in;
    io->st[1].s = o->out;
    io->st[2].s = o->err;
    if (o->keep_stdin)
        io->st[0].s.kind = BERTH_STREAM_FD; /* a FIFO is made; nothing of the caller's is read */
    if (o->log_uri && *o->log_uri && !(io->log_uri = strdup(o->log_uri)))
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    int need_out = !io->log_uri, need_err = !io->log_uri && !o->terminal;
    int need_in = o->keep_stdin || o->in.kind != BERTH_STREAM_NONE;
    for (int i = 1; i < 3; i++)
        if (io->st[i].s.kind == BERTH_STREAM_CALLBACK && !io->st[i].s.fn)
            return bc_error(err, BERTH_EINVAL, "task IO: a callback stream without a function");
    if (!need_out && !need_err && !need_in)
        return 0;
    const char *base = fifo_base(o);
    if (mkdir_p(base, 0700) < 0)
        return bc_error(err, BERTH_EIO, "mkdir %s: %s", base, strerror(errno));
    snprintf(io->dir, sizeof io->dir, "%s/%s-XXXXXX", base, name && *name ? name : "io");
    if (!mkdtemp(io->dir)) {
        int e = errno;
        io->dir[0] = '\0';
        return bc_error(err, BERTH_EIO, "mkdtemp under %s: %s", base, strerror(e));
    }
    if (pipe2(io->wake, O_CLOEXEC) < 0)
        return bc_error(err, BERTH_EIO, "pipe: %s", strerror(errno));
    const char *n = name && *name ? name : "io";
    int rc = 0;
    if (need_out)
        rc = setup_out(io, &io->st[1], n, err);
    if (rc == 0 && need_err)
        rc = setup_out(io, &io->st[2], n, err);
    if (rc == 0 && need_in)
        rc = setup_in(io, &io->st[0], n, err);
    return rc;
}

const char *
bc_io_stdin(const berth_io_t *io)
{
    return io ? io->st[0].path : "";
}
const char *
bc_io_stdout(const berth_io_t *io)
{
    return !io ? "" : io->log_uri ? io->log_uri : io->st[1].path;
}
const char *
bc_io_stderr(const berth_io_t *io)
{
    return !io ? "" : io->log_uri ? io->log_uri : io->st[2].path;
}
int
bc_io_terminal(const berth_io_t *io)
{
    return io ? io->terminal : 0;
}

BC_EXPORT const char *
berth_io_stdin_path(const berth_io_t *io)
{
    return bc_io_stdin(io);
}

BC_EXPORT void
berth_io_wait(berth_io_t *io)
{
    if (!io)
        return;
    for (int i = 1; i < 3; i++)
        if (io->st[i].running && !io->st[i].joined) {
            pthread_join(io->st[i].th, NULL);
            io->st[i].joined = 1;
        }
}

BC_EXPORT void
berth_io_close_stdin(berth_io_t *io)
{
    if (!io)
        return;
    pthread_mutex_lock(&io->mu);
    io->stdin_closed = 1;
    /* never under a write of the stdin thread (the fd could be reused): it closes after the write */
    if (io->st[0].fifo_fd >= 0 && !io->stdin_writing) {
        close(io->st[0].fifo_fd);
        io->st[0].fifo_fd = -1;
    }
    pthread_mutex_unlock(&io->mu);
}

BC_EXPORT void
berth_io_free(berth_io_t *io)
{
    if (!io)
        return;
    if (io->wake[1] >= 0)
        (void)!write(io->wake[1], "x", 1);
    io_stream_t *in = &io->st[0];
    if (in->running && !in->joined) {
        pthread_mutex_lock(&io->mu);
        io->stdin_closed = 1;
        int opened = in->fifo_fd >= 0;
        pthread_mutex_unlock(&io->mu);
        /* a stdin thread still in open(): a reader of our own lets it return */
        int rd = opened ? -1 : open(in->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        pthread_join(in->th, NULL);
        if (rd >= 0)
            close(rd);
        in->joined = 1;
    }
    berth_io_close_stdin(io);
    for (int i = 1; i < 3; i++)
        if (io->st[i].running && !io->st[i].joined)
            pthread_join(io->st[i].th, NULL);
    for (int i = 0; i < 3; i++) {
        if (io->st[i].fifo_fd >= 0)
            close(io->st[i].fifo_fd);
        if (io->st[i].own_fd >= 0)
            close(io->st[i].own_fd);
        if (io->st[i].path[0] && !(i == 0 && io->keep_stdin))
            unlink(io->st[i].path);
    }
    if (io->dir[0] && !io->keep_stdin)
        rmdir(io->dir);
    if (io->wake[0] >= 0)
        close(io->wake[0]);
    if (io->wake[1] >= 0)
        close(io->wake[1]);
    pthread_mutex_destroy(&io->mu);
    free(io->log_uri);
    free(io);
}
