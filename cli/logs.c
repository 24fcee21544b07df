/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Detached containers' logs. The shim writes CRI lines ("2026-12-01T17:00:00.123456789Z stdout F text",
 * P for a piece of a longer line, or of one not ended yet: docs/logging.md; pieces are joined) to <data-root>/containers/<ns>/<id>/<id>.log and rotates it to .1, .2;
 * `berth logs` reads the rotated files oldest first, then the current one, and with -f follows it through
 * rotations (inotify on the directory, no polling) until the container's task exits.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define LOG_MAX_SIZE (10 * 1024 * 1024)
#define LOG_MAX_FILES 3

char *
log_dir(const char *ns, const char *id)
{
    char *p;
    if (asprintf(&p, "%s/containers/%s/%s", g.data_root, ns, id) < 0)
        die("out of memory");
    return p;
}

char *
log_path(const char *ns, const char *id)
{
    char *p;
    if (asprintf(&p, "%s/containers/%s/%s/%s.log", g.data_root, ns, id, id) < 0)
        die("out of memory");
    return p;
}

char *
log_uri(const char *ns, const char *id)
{
    char *p;
    if (asprintf(&p, "file://%s/containers/%s/%s/%s.log?format=cri&max-size=%d&max-files=%d",
                 g.data_root, ns, id, id, LOG_MAX_SIZE, LOG_MAX_FILES) < 0)
        die("out of memory");
    return p;
}

char *
log_uri_path(const char *uri)
{
    if (strncmp(uri, "file://", 7))
        return NULL;
    const char *q = strchr(uri + 7, '?');
    return strndup(uri + 7, q ? (size_t)(q - uri - 7) : strlen(uri + 7));
}

void
log_dir_remove(const char *ns, const char *id)
{
    char *dir = log_dir(ns, id);
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
        rmdir(dir);
    }
    free(dir);
}

/* ---- CRI lines ---------------------------------------------------------------------------------------- */

struct emitter {
    const struct log_opts *o;
    int at_line_start[3]; /* per stream: the next piece starts a line (timestamps go there) */
};

/* "2026-12-01T17:00:00.123456789Z" -> ns since the epoch (0 when it does not parse) */
static int64_t
parse_ts(const char *s, size_t len)
{
    struct tm tm = {0};
    char buf[64];
    if (len >= sizeof buf)
        return 0;
    memcpy(buf, s, len);
    buf[len] = 0;
    char *rest = strptime(buf, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest)
        return 0;
    int64_t ns = (int64_t)timegm(&tm) * 1000000000;
    if (*rest == '.') {
        int64_t frac = 0, scale = 100000000;
        for (rest++; *rest >= '0' && *rest <= '9'; rest++, scale /= 10)
            frac += (*rest - '0') * scale;
        ns += frac;
    }
    return ns;
}

static void
write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            exit(CLI_EXIT); /* stdout went away (a closed pipe): nothing more to say */
        p += w;
        n -= (size_t)w;
    }
}

/* One record without its '\n'. Returns 1 when it ended a line (F). */
static int
emit(struct emitter *em, const char *rec, size_t len)
{
    const char *sp1 = memchr(rec, ' ', len);
    if (!sp1)
        return 0;
    const char *sp2 = memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - rec));
    if (!sp2)
        return 0;
    const char *tag = sp2 + 1;
    const char *text = memchr(tag, ' ', len - (size_t)(tag - rec));
    size_t tlen = text ? len - (size_t)(text + 1 - rec) : 0;
    text = text ? text + 1 : rec + len;
    int stream = (size_t)(sp2 - sp1 - 1) == 6 && !memcmp(sp1 + 1, "stderr", 6) ? 2 : 1;
    int full = tag[0] != 'P';
    if (em->o->since_ns && parse_ts(rec, (size_t)(sp1 - rec)) < em->o->since_ns)
        return full;
    int fd = stream == 2 ? STDERR_FILENO : STDOUT_FILENO;
    if (em->o->timestamps && em->at_line_start[stream]) {
        write_all(fd, rec, (size_t)(sp1 - rec));
        write_all(fd, " ", 1);
    }
    write_all(fd, text, tlen);
    if (full)
        write_all(fd, "\n", 1);
    em->at_line_start[stream] = full;
    return full;
}

/* Emits the complete records in buf[0..len); returns how many bytes it used (a partial record stays). */
static size_t
emit_buf(struct emitter *em, const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        const char *nl = memchr(buf + off, '\n', len - off);
        if (!nl)
            break;
        emit(em, buf + off, (size_t)(nl - buf - off));
        off = (size_t)(nl - buf) + 1;
    }
    return off;
}

struct buf {
    char *p;
    size_t len, cap;
};

static void
buf_read_fd(struct buf *b, int fd)
{
    for (;;) {
        if (b->cap - b->len < 65536) {
            b->cap = b->cap ? b->cap * 2 : 131072;
            b->p = realloc(b->p, b->cap);
            if (!b->p)
                die("out of memory");
        }
        ssize_t n = read(fd, b->p + b->len, b->cap - b->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        b->len += (size_t)n;
    }
}

/* A record's stream (1 stdout, 2 stderr) and tag ('F' or 'P'); 0 when it has no tag. */
static int
rec_fields(const char *rec, size_t len, int *stream, char *tag)
{
    const char *sp1 = memchr(rec, ' ', len);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - rec)) : NULL;
    if (sp2 == NULL || sp2 + 1 >= rec + len)
        return 0;
    *stream = (size_t)(sp2 - sp1 - 1) == 6 && !memcmp(sp1 + 1, "stderr", 6) ? 2 : 1;
    *tag = sp2[1] == 'P' ? 'P' : 'F';
    return 1;
}

/* Where the last `tail` lines are in b: every record from `from` on, and before it the P records of
 * stream s from piece[s] on: the start of a counted line whose pieces lie before another stream's
 * records (a line begun goes out as P at once, so stdout's and stderr's records interleave). */
struct tail_at {
    size_t from, piece[3];
};

static void
tail_start(const struct buf *b, long tail, struct tail_at *t)
{
    *t = (struct tail_at){0};
    if (tail < 0)
        return;
    size_t end = b->len;
    while (end > 0 && b->p[end - 1] != '\n') /* a record still being written */
        end--;
    long lines = 0;
    int open[3] = {0},
        done = 0; /* open[s]: a counted line of s whose first piece is further back */
    for (size_t i = end; i > 0;) {
        size_t rec_end = i - 1; /* at '\n' */
        size_t s = rec_end;
        while (s > 0 && b->p[s - 1] != '\n')
            s--;
        int st;
        char tag;
        if (rec_fields(b->p + s, rec_end - s, &st, &tag)) {
            if (tag == 'P') {
                if (done && open[st])
                    t->piece[st] = s;
            } else if (done || lines == tail) {
                if (!done)
                    *t = (struct tail_at){i, {i, i, i}};
                done = 1;
                open[st] = 0; /* an F before a line's pieces ends the line before it */
                if (!open[1] && !open[2])
                    return;
            } else {
                lines++;
                open[st] = 1;
            }
        }
        i = s;
    }
    if (!done) /* no more lines than `tail`: all of it */
        *t = (struct tail_at){0};
}

/* The pieces before t->from of lines that start there (tail_start). */
static void
emit_pieces(struct emitter *em, const char *buf, const struct tail_at *t)
{
    size_t off = t->piece[1] < t->piece[2] ? t->piece[1] : t->piece[2];
    while (off < t->from) {
        const char *nl = memchr(buf + off, '\n', t->from - off);
        if (!nl)
            break;
        int st;
        char tag;
        if (rec_fields(buf + off, (size_t)(nl - buf - off), &st, &tag) && tag == 'P' &&
            off >= t->piece[st])
            emit(em, buf + off, (size_t)(nl - buf - off));
        off = (size_t)(nl - buf) + 1;
    }
}

/* ---- following ---------------------------------------------------------------------------------------- */

struct exitwatch {
    struct ctx *x;
    const char *id;
    int pipe[2];
    int status;
};

static void *
exit_thread(void *arg)
{
    struct exitwatch *w = arg;
    berth_exit_t ex = {0};
    berth_error_t *e = NULL;
    if (berth_task_wait(cli_client(w->x), cli_call_forever(w->x), w->id, NULL, &ex, &e) < 0)
        berth_error_free(e);
    w->status = (int)ex.status;
    if (write(w->pipe[1], "x", 1) < 0) {
        /* the reader is gone: nothing to tell */
    }
    return NULL;
}

static int
task_running(struct ctx *x, const char *id)
{
    berth_task_info_t ti;
    berth_error_t *e = NULL;
    if (berth_task_get(cli_client(x), cli_call(x), id, NULL, &ti, &e) < 0) {
        berth_error_free(e);
        return 0;
    }
    int running = strcmp(ti.status, "stopped") != 0;
    berth_task_info_free(&ti);
    return running;
}

/* reads what was appended to *fd; reopens path when it was rotated away */
static void
drain(struct emitter *em, struct buf *carry, int fd)
{
    if (fd < 0)
        return;
    buf_read_fd(carry, fd);
    size_t used = emit_buf(em, carry->p, carry->len);
    memmove(carry->p, carry->p + used, carry->len - used);
    carry->len -= used;
}

static void
follow_step(struct emitter *em, struct buf *carry, int *fd, const char *path)
{
    for (;;) {
        drain(em, carry, *fd);
        struct stat a, b;
        if (stat(path, &a) < 0)
            return;
        if (*fd >= 0 && fstat(*fd, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
            return;
        /* rotated (or created): what the shim wrote to the old file before renaming it, then the new one */
        drain(em, carry, *fd);
        if (*fd >= 0)
            close(*fd);
        *fd = open(path, O_RDONLY | O_CLOEXEC);
        if (*fd < 0)
            return;
    }
}

int
log_show(struct ctx *x, const char *id, const char *path, const struct log_opts *o_in)
{
    struct log_opts *o = (struct log_opts *)o_in;
    struct emitter em = {.o = o, .at_line_start = {1, 1, 1}};
    struct exitwatch w = {.x = x, .id = id, .pipe = {-1, -1}};
    int follow = o->follow && task_running(x, id);
    pthread_t t;
    if (follow) {
        /* the wait goes out before we read, so an exit between the two is seen */
        if (pipe2(w.pipe, O_CLOEXEC) < 0 || pthread_create(&t, NULL, exit_thread, &w) != 0)
            die("cannot follow the log: %m");
    }
    int ifd = -1;
    char *dir = strdup(path), *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    if (follow) {
        ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (ifd < 0 ||
            inotify_add_watch(ifd, dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
            die("watch %s: %m", dir);
    }
    /* the rotated files, oldest first, then the current one */
    struct buf all = {0};
    for (int k = LOG_MAX_FILES + 8; k >= 1; k--) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s.%d", path, k);
        int rfd = open(p, O_RDONLY | O_CLOEXEC);
        if (rfd >= 0) {
            buf_read_fd(&all, rfd);
            close(rfd);
        }
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT)
        die("open %s: %m", path);
    if (fd < 0 && all.len == 0 && !follow) {
        struct stat st;
        if (stat(dir, &st) < 0)
            die("no log for container \"%s\" (%s): only detached containers have one", id, path);
    }
    if (fd >= 0)
        buf_read_fd(&all, fd);
    struct tail_at at;
    tail_start(&all, o->tail, &at);
    emit_pieces(&em, all.p, &at);
    size_t used = at.from + emit_buf(&em, all.p + at.from, all.len - at.from);
    struct buf carry = {0};
    if (used < all.len) { /* a record still being written */
        carry.cap = all.len - used + 65536;
        carry.p = malloc(carry.cap);
        memcpy(carry.p, all.p + used, all.len - used);
        carry.len = all.len - used;
    }
    free(all.p);
    if (follow) {
        struct pollfd pf[2] = {{.fd = ifd, .events = POLLIN}, {.fd = w.pipe[0], .events = POLLIN}};
        for (;;) {
            follow_step(&em, &carry, &fd, path);
            if (poll(pf, 2, -1) < 0 && errno != EINTR)
                die("poll: %m");
            char ev[4096];
            while (read(ifd, ev, sizeof ev) > 0)
                ;
            if (pf[1].revents) {
                follow_step(&em, &carry, &fd, path); /* what the shim wrote before the exit */
                break;
            }
        }
        pthread_join(t, NULL);
        o->exit_status = w.status;
        close(w.pipe[0]);
        close(w.pipe[1]);
        close(ifd);
    }
    if (fd >= 0)
        close(fd);
    free(carry.p);
    free(dir);
    return 0;
}

int
cmd_logs(struct ctx *x)
{
    const char *id = x->argv[0];
    berth_container_t *ct = NULL;
    berth_error_t *e = NULL;
    if (berth_container_load(cli_client(x), cli_call(x), id, &ct, &e) < 0)
        die_err(x, e);
    const char *uri = kv_get(ct->labels, ct->n_labels, "io.berth.log-uri");
    char *path = uri ? log_uri_path(uri) : NULL;
    if (!path)
        path = log_path(g.namespace_, id);
    struct log_opts o = {
        .tail = -1, .timestamps = fbool(x, "timestamps"), .follow = fbool(x, "follow")};
    const char *tail = fstr(x, "tail");
    if (strcmp(tail, "all")) {
        char *end;
        o.tail = strtol(tail, &end, 10);
        if (!*tail || *end || o.tail < 0)
            die("invalid --tail \"%s\": a number or \"all\"", tail);
    }
    log_show(x, id, path, &o);
    free(path);
    berth_container_free(ct);
    return 0;
}
