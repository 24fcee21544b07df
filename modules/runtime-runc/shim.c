/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth-shim: one per container. It detaches from berthd (own session), becomes the child subreaper, drives
 * runc for the container and its exec processes, hands them the client's FIFOs as stdio, reaps them, keeps
 * their exit statuses, and answers berthd on a unix socket (0600, a path, never abstract), so containers
 * outlive berthd and berthd can find them again.
 *
 *   berth-shim ID BUNDLE SOCKET RUNC_ROOT RUNC READY_FD
 *
 * A process with a terminal gets a pseudoterminal from runc (its master arrives on a console socket in the
 * bundle); the shim then copies between the master and the client's stdin and stdout FIFOs.
 *
 * A stdout/stderr that is a file:// URI (containerd's cio.LogURI) is a log the shim writes itself
 * (shimlog.c, docs/logging.md): runc gets pipes (or the terminal's master is read), the shim copies them
 * into the file, and drains them before it tells of the process's exit.
 *
 * Protocol: one line per message, fields separated by tabs (fields never hold tabs or newlines).
 *   requests  create STDIN STDOUT STDERR TERMINAL | start EXEC |
 *             exec EXEC SPEC_FILE STDIN STDOUT STDERR TERMINAL | kill EXEC SIGNAL ALL | state EXEC |
 *             delete EXEC | pause | resume | pids | closeio EXEC | update RESOURCES_FILE |
 *             resize EXEC WIDTH HEIGHT
 *   replies   "r\t0[\tfields...]" or "r\t<BERTH_E* code>\t<message>"
 *   events    "e\texit\tEXEC\tPID\tSTATUS\tEXITED_AT_NS" (EXEC is "" for the container's init),
 *             "e\toom" (the kernel's OOM killer killed a process of the container's memory cgroup)
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shimlog.h"

#define MAX_CLIENTS 8
#define MAX_PROCS 64
#define LINE_MAX_LEN 8192
#define OBUF_LEN 4096
#define IBUF_LEN 1024

enum { ST_CREATED, ST_RUNNING, ST_STOPPED, ST_PAUSED };
static const char *const state_names[] = {"created", "running", "stopped", "paused"};

typedef struct proc {
    char id[128]; /* "" for init */
    char spec[512], in[512], out[512], err[512];
    pid_t pid;
    int state, exit_status;
    long long exited_ns;
    int stdin_hold; /* our write end of the stdin FIFO, so the process sees EOF only after CloseIO */
    int slot;       /* in procs[] */
    int terminal;
    int master, tty_in, tty_out; /* the pty master and the FIFOs the shim copies to and from it */
    char *obuf,
        *ibuf; /* master -> stdout, stdin -> master, waiting for the reader (terminals only) */
    size_t olen, ilen;
    int master_hup;
    shimlog_t *log[2]; /* stdout's and stderr's log writers (the same one when the URIs are) */
    int log_rd[2];     /* our read ends of the pipes runc got as stdout and stderr */
} proc_t;

typedef struct client {
    int fd;
    char buf[LINE_MAX_LEN];
    size_t len;
} client_t;

static const char *id, *bundle, *runc_root, *runc;
static proc_t *procs[MAX_PROCS]; /* allocated as used: an idle shim stays small */
static client_t clients[MAX_CLIENTS];
static int deleting;

/* BERTH_E* codes as the runtime maps them (abi/berth/error.h) */
#define E_INVAL -2
#define E_NOTFOUND -3
#define E_EXIST -4
#define E_PRECONDITION -7
#define E_INTERNAL -11

static long long
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void
send_line(int fd, const char *fmt, ...)
{
    char line[LINE_MAX_LEN];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    for (int off = 0; off < n;) {
        ssize_t w = send(fd, line + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w <= 0)
            return;
        off += (int)w;
    }
}

static proc_t *
find_proc(const char *exec_id)
{
    for (int i = 0; i < MAX_PROCS; i++)
        if (procs[i] && strcmp(procs[i]->id, exec_id) == 0)
            return procs[i];
    return NULL;
}

/* ---- runc ------------------------------------------------------------------------------------------ */

static void
close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static int
open_stdio(const char *path, int flags)
{
    return open(path[0] ? path : "/dev/null", flags | O_CLOEXEC);
}

/* The process's stdin: the FIFO's read end, and our write end held open until CloseIO (a client that
 * has not opened its writer yet must not look like EOF). */
static int
open_stdin(proc_t *p)
{
    if (p->in[0] == '\0')
        return open("/dev/null", O_RDONLY | O_CLOEXEC);
    int fd = open(p->in, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    p->stdin_hold = open(p->in, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

/* Once the process runs, the client's own writer is open (it opened it while creating the task): our
 * writer goes, so the process sees EOF when the client closes its end. A terminal's stdin stays open
 * until CloseIO, as containerd's does, so a client may detach and another attach; so does the stdin of a
 * process whose output goes to a log (a detached container that `berth attach` clients come and go to). */
static void
release_stdin(proc_t *p)
{
    if (!p->terminal && p->log[0] == NULL && p->log[1] == NULL)
        close_fd(&p->stdin_hold);
}

/* The last line runc logged: what to tell the client when it fails. */
static void
runc_error(char *out, size_t len)
{
    char path[4200], line[2048] = "";
    snprintf(path, sizeof(path), "%s/runc.log", bundle);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        ;
    if (f)
        fclose(f);
    line[strcspn(line, "\n")] = '\0';
    for (char *c = line; *c; c++)
        if (*c == '\t')
            *c = ' ';
    snprintf(out, len, "runc: %s", line[0] ? line : "failed");
}

/* Runs runc with argv (after the global flags), stdio from fds (-1: /dev/null); returns its exit status. */
static int
run_runc(const char *const *args, int in, int out, int err)
{
    char log[4200];
    snprintf(log, sizeof(log), "%s/runc.log", bundle);
    const char *argv[32] = {runc, "--root", runc_root, "--log", log, "--log-format", "text"};
    int n = 7;
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(in >= 0 ? in : null, 0);
        dup2(out >= 0 ? out : null, 1);
        dup2(err >= 0 ? err : null, 2);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execvp(runc, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return pid < 0 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static pid_t
read_pid(const char *file)
{
    FILE *f = fopen(file, "r");
    long pid = 0;
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return (pid_t)pid;
}

/* ---- terminals ------------------------------------------------------------------------------------ */

/* Relative to the bundle (the shim's working directory, and runc's): a sun_path holds only 108 bytes. */
static void
console_path(const proc_t *p, char *out, size_t len)
{
    snprintf(out, len, "console-%d.sock", p->slot);
}

static int
console_listen(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    mode_t old = umask(0177);
    int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0 || listen(fd, 1) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* By the time runc returns it has sent the master (SCM_RIGHTS, the pty's name as data). */
static int
console_receive(int lfd)
{
    int conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0)
        return -1;
    char name[256];
    struct iovec iov = {name, sizeof(name)};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = ctl.buf,
                         .msg_controllen = sizeof(ctl.buf)};
    int master = -1;
    if (recvmsg(conn, &msg, MSG_CMSG_CLOEXEC) >= 0) {
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            memcpy(&master, CMSG_DATA(c), sizeof(master));
    }
    close(conn);
    if (master >= 0)
        fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    return master;
}

static void
terminal_close(proc_t *p)
{
    close_fd(&p->master);
    close_fd(&p->tty_in);
    close_fd(&p->tty_out);
    free(p->obuf);
    free(p->ibuf);
    p->obuf = p->ibuf = NULL;
    p->olen = p->ilen = 0;
}

/* Writes what the buffer holds, as much as fd takes now; returns -1 once fd is unusable. */
static int
flush(int fd, char *buf, size_t *len)
{
    ssize_t w = fd >= 0 ? write(fd, buf, *len) : -1;
    if (w < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (w < 0) {
        *len = 0; /* the reader is gone: what it would have read goes too */
        return -1;
    }
    memmove(buf, buf + w, *len - (size_t)w);
    *len -= (size_t)w;
    return 0;
}

static void
master_readable(proc_t *p)
{
    ssize_t n = read(p->master, p->obuf, OBUF_LEN);
    if (n > 0 && p->log[0]) {
        shimlog_write(p->log[0], 1, p->obuf, (size_t)n, now_ns());
        if (n < OBUF_LEN) /* all there is for now: a prompt without its newline shows at once */
            shimlog_partial(p->log[0], 1, now_ns());
    } else if (n > 0) {
        p->olen = (size_t)n;
        if (p->tty_out < 0)
            p->olen = 0;
        else
            flush(p->tty_out, p->obuf, &p->olen);
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        p->master_hup = 1; /* every slave is closed: the rest comes at the exit */
    }
}

static void
stdin_readable(proc_t *p)
{
    ssize_t n = read(p->tty_in, p->ibuf, IBUF_LEN);
    if (n > 0) {
        p->ilen = (size_t)n;
        flush(p->master, p->ibuf, &p->ilen);
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        close_fd(&p->tty_in); /* the client closed stdin */
    }
}

/* The process ended: what it wrote last reaches the client before its exit is told, then the client's
 * stdout sees EOF. A client that stopped reading gets a second, not forever. */
static void
terminal_drain(proc_t *p)
{
    for (int rounds = 0; p->master >= 0 && rounds < 1024; rounds++) {
        if (p->olen > 0) {
            struct pollfd w = {p->tty_out, POLLOUT, 0};
            if (poll(&w, 1, 1000) <= 0 || flush(p->tty_out, p->obuf, &p->olen) < 0)
                break;
            continue;
        }
        ssize_t n = read(p->master, p->obuf, OBUF_LEN);
        if (n > 0 && p->log[0]) {
            shimlog_write(p->log[0], 1, p->obuf, (size_t)n, now_ns());
            continue;
        }
        if (n <= 0 || p->tty_out < 0)
            break;
        p->olen = (size_t)n;
    }
    terminal_close(p);
}

/* ---- logs ------------------------------------------------------------------------------------------ */

/* stdout (i 0) and stderr (i 1) that are file:// URIs get their writers; both the same one when the
 * URIs are (cio.LogURI sets both), and a terminal's stderr none (its output is all on the master). */
static int
logs_open(proc_t *p, char *errmsg, size_t errlen)
{
    const char *uri[2] = {p->out, p->err};
    for (int i = 0; i < 2; i++) {
        shimlog_cfg_t cfg;
        int kind = shimlog_parse(uri[i], &cfg, errmsg, errlen);
        if (kind < 0)
            return -1;
        if (kind == 0 || (i == 1 && p->terminal))
            continue;
        if (i == 1 && p->log[0] && strcmp(p->out, p->err) == 0)
            p->log[1] = p->log[0];
        else if ((p->log[i] = shimlog_open(&cfg, errmsg, errlen)) == NULL)
            return -1;
    }
    return 0;
}

static void
logs_close(proc_t *p)
{
    close_fd(&p->log_rd[0]);
    close_fd(&p->log_rd[1]);
    if (p->log[1] != p->log[0])
        shimlog_close(p->log[1]);
    shimlog_close(p->log[0]);
    p->log[0] = p->log[1] = NULL;
}

/* runc's stdout (i 0) or stderr (i 1): a pipe's write end when it goes to a log, else the path. */
static int
stdio_for(proc_t *p, int i, const char *path)
{
    int fds[2];
    if (p->log[i] == NULL)
        return open_stdio(path, O_RDWR);
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    fcntl(fds[0], F_SETPIPE_SZ, 1 << 20); /* best effort: fewer wake-ups for a chatty process */
    fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    p->log_rd[i] = fds[0];
    return fds[1];
}

/* One read (at most the buffer) into the log; at the pipe's end, a last unfinished line goes out. Returns
 * 1 when it read something. The buffer is shared: the loop handles one pipe at a time. A live read that
 * emptied the pipe writes the line it leaves unfinished as a P entry at once (attach and `logs -f` follow
 * the file: `echo -n hello` shows without waiting for a newline); a full one leaves it for the next read,
 * which comes at once, so a chatty process's lines are not cut. The exit's drain (live 0) needs no P:
 * the F follows. */
static int
log_read(proc_t *p, int i, int live)
{
    static char buf[32 * 1024];
    ssize_t n = read(p->log_rd[i], buf, sizeof(buf));
    if (n > 0) {
        shimlog_write(p->log[i], i + 1, buf, (size_t)n, now_ns());
        if (live && (size_t)n < sizeof(buf))
            shimlog_partial(p->log[i], i + 1, now_ns());
        return 1;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        shimlog_finish(p->log[i], i + 1, now_ns());
        close_fd(&p->log_rd[i]);
    }
    return 0;
}

/* The process ended: all it wrote is in the pipes (and, for an init, every process of its PID namespace
 * is gone), so what is there goes into the log before its exit is told. Writers that outlive an exec
 * process (its daemons) are cut off, as the line it left unfinished is written now. */
static void
logs_drain(proc_t *p)
{
    for (int i = 0; i < 2; i++) {
        while (p->log_rd[i] >= 0 && log_read(p, i, 0) > 0)
            ;
        close_fd(&p->log_rd[i]);
        shimlog_finish(p->log[i], i + 1, now_ns());
    }
}

/* The pollfds the terminals and logs need now: one direction each waits either for input or for its
 * reader; a log's pipe waits for input (the file takes what comes). */
enum { W_MASTER_IN, W_OUT_READY, W_STDIN_IN, W_MASTER_READY, W_LOG_OUT, W_LOG_ERR };
typedef struct watch {
    int kind;
    proc_t *p;
} watch_t;

static int
terminal_polls(struct pollfd *pf, watch_t *w, int max)
{
    int n = 0;
    for (int i = 0; i < MAX_PROCS && n + 2 <= max; i++) {
        proc_t *p = procs[i];
        for (int s = 0; p && s < 2; s++)
            if (p->log_rd[s] >= 0) {
                pf[n] = (struct pollfd){p->log_rd[s], POLLIN, 0};
                w[n++] = (watch_t){s ? W_LOG_ERR : W_LOG_OUT, p};
            }
        if (p == NULL || p->master < 0)
            continue;
        if (p->olen > 0 && p->tty_out >= 0) {
            pf[n] = (struct pollfd){p->tty_out, POLLOUT, 0};
            w[n++] = (watch_t){W_OUT_READY, p};
        } else if (!p->master_hup) {
            pf[n] = (struct pollfd){p->master, POLLIN, 0};
            w[n++] = (watch_t){W_MASTER_IN, p};
        }
        if (p->ilen > 0) {
            pf[n] = (struct pollfd){p->master, POLLOUT, 0};
            w[n++] = (watch_t){W_MASTER_READY, p};
        } else if (p->tty_in >= 0) {
            pf[n] = (struct pollfd){p->tty_in, POLLIN, 0};
            w[n++] = (watch_t){W_STDIN_IN, p};
        }
    }
    return n;
}

static void
terminal_ready(const watch_t *w)
{
    proc_t *p = w->p;
    int s = w->kind == W_LOG_ERR;
    if ((w->kind == W_LOG_OUT || w->kind == W_LOG_ERR) && p->log_rd[s] >= 0)
        log_read(p, s, 1);
    if (p->master < 0)
        return;
    if (w->kind == W_MASTER_IN)
        master_readable(p);
    else if (w->kind == W_OUT_READY)
        flush(p->tty_out, p->obuf, &p->olen);
    else if (w->kind == W_STDIN_IN && p->tty_in >= 0)
        stdin_readable(p);
    else if (w->kind == W_MASTER_READY)
        flush(p->master, p->ibuf, &p->ilen);
}

/* ---- starting processes ---------------------------------------------------------------------------- */

/* runc's arguments for p: create for init, exec for the others; console is NULL without a terminal. */
static void
runc_args(proc_t *p, const char *pidfile, const char *console, const char **args)
{
    int n = 0;
    if (p->id[0]) {
        const char *exec[] = {"exec", "--detach", "--process", p->spec, "--pid-file", pidfile};
        for (size_t i = 0; i < sizeof(exec) / sizeof(*exec); i++)
            args[n++] = exec[i];
    } else {
        const char *create[] = {"create", "--bundle", bundle, "--pid-file", pidfile};
        for (size_t i = 0; i < sizeof(create) / sizeof(*create); i++)
            args[n++] = create[i];
    }
    if (console) {
        args[n++] = "--console-socket";
        args[n++] = console;
    }
    args[n++] = id;
    args[n] = NULL;
}

/* A terminal: runc gets none of the FIFOs, the shim copies between them and the master. */
static int
spawn_terminal(proc_t *p, const char *pidfile, char *errmsg, size_t errlen)
{
    char console[64];
    const char *args[16];
    console_path(p, console, sizeof(console));
    p->obuf = malloc(OBUF_LEN);
    p->ibuf = malloc(IBUF_LEN);
    if (p->obuf == NULL || p->ibuf == NULL) {
        snprintf(errmsg, errlen, "terminal: out of memory");
        terminal_close(p);
        return -1;
    }
    if (p->in[0]) {
        p->tty_in = open_stdin(p);
        if (p->tty_in >= 0)
            fcntl(p->tty_in, F_SETFL, fcntl(p->tty_in, F_GETFL) | O_NONBLOCK);
    }
    if (p->out[0] && p->log[0] == NULL)
        p->tty_out = open_stdio(p->out, O_RDWR | O_NONBLOCK);
    int lfd = console_listen(console);
    if ((p->in[0] && p->tty_in < 0) || (p->out[0] && p->log[0] == NULL && p->tty_out < 0) ||
        lfd < 0) {
        snprintf(errmsg, errlen, "terminal: %s", strerror(errno));
    } else {
        runc_args(p, pidfile, console, args);
        if (run_runc(args, -1, -1, -1) != 0)
            runc_error(errmsg, errlen);
        else if ((p->master = console_receive(lfd)) < 0)
            snprintf(errmsg, errlen, "terminal: runc sent no pseudoterminal");
    }
    if (lfd >= 0)
        close(lfd);
    unlink(console);
    if (p->master < 0) {
        terminal_close(p);
        close_fd(&p->stdin_hold);
        return -1;
    }
    return 0;
}

static int
spawn_pipes(proc_t *p, const char *pidfile, char *errmsg, size_t errlen)
{
    const char *args[16];
    int in = open_stdin(p), out = stdio_for(p, 0, p->out), err = stdio_for(p, 1, p->err);
    int rc = -1;
    if (in >= 0 && out >= 0 && err >= 0) {
        runc_args(p, pidfile, NULL, args);
        rc = run_runc(args, in, out, err);
    }
    if (rc != 0) {
        if (in < 0 || out < 0 || err < 0)
            snprintf(errmsg, errlen, "open stdio: %s", strerror(errno));
        else
            runc_error(errmsg, errlen);
        close_fd(&p->stdin_hold);
    }
    close_fd(&in);
    close_fd(&out);
    close_fd(&err);
    return rc == 0 ? 0 : -1;
}

/* Starts a process through runc, its stdio the client's FIFOs or a terminal. */
static int
spawn(proc_t *p, char *errmsg, size_t errlen)
{
    char pidfile[4300];
    snprintf(pidfile, sizeof(pidfile), "%s/%s.pid", bundle, p->id[0] ? p->id : "init");
    int rc = logs_open(p, errmsg, errlen);
    if (rc == 0)
        rc = p->terminal ? spawn_terminal(p, pidfile, errmsg, errlen)
                         : spawn_pipes(p, pidfile, errmsg, errlen);
    if (rc < 0) {
        logs_close(p);
        return -1;
    }
    p->pid = read_pid(pidfile);
    p->state = p->id[0] ? ST_RUNNING : ST_CREATED;
    if (p->id[0])
        release_stdin(p);
    return 0;
}

static proc_t *
proc_new(int slot, const char *exec_id, char **stdio, const char *terminal)
{
    proc_t *p = malloc(sizeof(*p));
    if (p == NULL)
        return NULL;
    *p = (proc_t){.slot = slot,
                  .stdin_hold = -1,
                  .master = -1,
                  .tty_in = -1,
                  .tty_out = -1,
                  .log_rd = {-1, -1}};
    procs[slot] = p;
    snprintf(p->id, sizeof(p->id), "%s", exec_id);
    snprintf(p->in, sizeof(p->in), "%s", stdio[0]);
    snprintf(p->out, sizeof(p->out), "%s", stdio[1]);
    snprintf(p->err, sizeof(p->err), "%s", stdio[2]);
    p->terminal = terminal && strcmp(terminal, "1") == 0;
    return p;
}

static void
proc_free(proc_t *p)
{
    close_fd(&p->stdin_hold);
    terminal_close(p);
    logs_close(p);
    procs[p->slot] = NULL;
    free(p);
}

/* ---- OOM kills: cgroup v1 eventfd on memory.oom_control, or inotify on v2's memory.events ------------- */

static int oom_fd = -1, oom_v2;
static char oom_file[4400]; /* memory.oom_control or memory.events */
static long oom_kills;

/* The oom_kill counter of the cgroup's file ("oom_kill N"); -1 once the cgroup is gone. */
static long
read_oom_kills(void)
{
    FILE *f = fopen(oom_file, "r");
    char line[128];
    long n = 0;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "oom_kill ", 9) == 0)
            n = atol(line + 9);
    if (f)
        fclose(f);
    return f ? n : -1;
}

/* Where `controller`'s hierarchy is mounted (v1), or the cgroup2 mount when controller is NULL. */
static int
cgroup_mount(const char *controller, char *out, size_t len)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[4096], dir[4096], type[64], opts[1024];
    int found = 0;
    while (!found && f && fgets(line, sizeof(line), f)) {
        const char *dash = strstr(line, " - ");
        if (dash == NULL || sscanf(line, "%*s %*s %*s %*s %4095s", dir) != 1 ||
            sscanf(dash + 3, "%63s %*s %1023s", type, opts) != 2)
            continue;
        if (controller ? strcmp(type, "cgroup") == 0 && strstr(opts, controller)
                       : strcmp(type, "cgroup2") == 0)
            found = snprintf(out, len, "%s", dir) > 0;
    }
    if (f)
        fclose(f);
    return found ? 0 : -1;
}

/* The init's memory cgroup, from /proc/PID/cgroup: "N:memory:/path" (v1) or "0::/path" (v2). */
static int
memory_cgroup(pid_t pid, char *out, size_t len)
{
    char path[64], line[4096], mnt[4096];
    snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
    FILE *f = fopen(path, "r");
    int found = 0;
    while (!found && f && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *ctl = strchr(line, ':'), *cg = ctl ? strchr(ctl + 1, ':') : NULL;
        if (cg == NULL)
            continue;
        *cg++ = '\0';
        if (strcmp(ctl + 1, "memory") == 0 && cgroup_mount("memory", mnt, sizeof(mnt)) == 0) {
            oom_v2 = 0;
            found = snprintf(out, len, "%s%s/memory.oom_control", mnt, cg) > 0;
        }
    }
    if (!found && f) { /* no v1 memory hierarchy: the unified one */
        rewind(f);
        while (!found && fgets(line, sizeof(line), f))
            if (strncmp(line, "0::", 3) == 0 && cgroup_mount(NULL, mnt, sizeof(mnt)) == 0) {
                line[strcspn(line, "\n")] = '\0';
                oom_v2 = 1;
                found = snprintf(out, len, "%s%s/memory.events", mnt, line + 3) > 0;
            }
    }
    if (f)
        fclose(f);
    return found ? 0 : -1;
}

/* Best effort: a container without a memory cgroup simply has no OOM events. */
static void
oom_watch(pid_t pid)
{
    if (memory_cgroup(pid, oom_file, sizeof(oom_file)) < 0)
        return;
    oom_kills = read_oom_kills();
    if (oom_v2) {
        oom_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (oom_fd >= 0 && inotify_add_watch(oom_fd, oom_file, IN_MODIFY) < 0)
            close_fd(&oom_fd);
        return;
    }
    char control[4500], arg[64];
    snprintf(control, sizeof(control), "%.*s/cgroup.event_control",
             (int)(strrchr(oom_file, '/') - oom_file), oom_file);
    int ofd = open(oom_file, O_RDONLY | O_CLOEXEC), cfd = open(control, O_WRONLY | O_CLOEXEC);
    oom_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    snprintf(arg, sizeof(arg), "%d %d", oom_fd, ofd);
    if (ofd < 0 || cfd < 0 || oom_fd < 0 || write(cfd, arg, strlen(arg)) < 0)
        close_fd(&oom_fd);
    close_fd(&cfd);
    close_fd(&ofd); /* the kernel holds its own reference for the registration */
}

static void broadcast(const char *line);

static void
oom_ready(void)
{
    char buf[4096];
    while (read(oom_fd, buf, sizeof(buf)) > 0)
        ;
    long now = read_oom_kills();
    if (now < 0) { /* the cgroup went (v1 signals its removal too) */
        close_fd(&oom_fd);
        return;
    }
    /* v1 signals before the kill, so its counter may not have moved yet: any signal while the cgroup is
     * there is one (as containerd's v1 watcher takes it); v2 signals the counter's change itself */
    if (!oom_v2 || now > oom_kills)
        broadcast("e\toom");
    oom_kills = now;
}

static void
broadcast(const char *line)
{
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (clients[i].fd >= 0)
            send_line(clients[i].fd, "%s", line);
}

/* ---- requests -------------------------------------------------------------------------------------- */

static void
reply_error(int fd, int code, const char *msg)
{
    send_line(fd, "r\t%d\t%s", code, msg);
}

/* stdout and stderr: FIFO paths, or file:// logs with a query shimlog understands */
static int
stdio_invalid(int fd, char **stdio)
{
    shimlog_cfg_t cfg;
    char err[1024];
    for (int i = 1; i < 3; i++)
        if (shimlog_parse(stdio[i], &cfg, err, sizeof(err)) < 0) {
            reply_error(fd, E_INVAL, err);
            return 1;
        }
    return 0;
}

static void
do_create(int fd, char **f, int n)
{
    proc_t *p = find_proc("");
    char err[2048];
    if (n < 4)
        return reply_error(fd, E_INVAL, "create needs stdin, stdout and stderr");
    if (p)
        return reply_error(fd, E_EXIST, "the container's task already exists");
    if (stdio_invalid(fd, f + 1))
        return;
    if ((p = proc_new(0, "", f + 1, n > 4 ? f[4] : NULL)) == NULL)
        return reply_error(fd, E_INTERNAL, "out of memory");
    if (spawn(p, err, sizeof(err)) < 0) {
        proc_free(p);
        return reply_error(fd, E_INTERNAL, err);
    }
    oom_watch(p->pid);
    send_line(fd, "r\t0\t%d", (int)p->pid);
}

static void
do_exec(int fd, char **f, int n)
{
    if (n < 6)
        return reply_error(fd, E_INVAL, "exec needs an id, a spec and stdio");
    if (find_proc(f[1]))
        return reply_error(fd, E_EXIST, "exec process already exists");
    if (stdio_invalid(fd, f + 3))
        return;
    for (int i = 1; i < MAX_PROCS; i++)
        if (procs[i] == NULL) {
            proc_t *p = proc_new(i, f[1], f + 3, n > 6 ? f[6] : NULL);
            if (p == NULL)
                return reply_error(fd, E_INTERNAL, "out of memory");
            snprintf(p->spec, sizeof(p->spec), "%s", f[2]);
            return send_line(fd, "r\t0");
        }
    reply_error(fd, E_PRECONDITION, "too many exec processes");
}

/* `runc start` without a second runc: what runc 1.1 does for a created container (libcontainer's exec()).
 * runc init waits to open <runc root>/<id>/exec.fifo for writing; opening it for reading lets init write
 * "0" and exec the process (closing it); removing the FIFO is what makes runc call the container running.
 * A runc start is a Go program's start, the largest part of StartContainer after runc create. Returns 1
 * where this does not apply (another runtime, no FIFO, a NOTIFY_SOCKET runc start would serve): run runc
 * start then; 0 started; -1 failed (err says why). */
/* Whether the bundle's spec may have poststart hooks: runc 1.2 and later run them in `runc start`, after
 * the FIFO (1.1 ran them at create). A mention of "poststart" anywhere is enough to leave start to runc. */
static int
spec_mentions_poststart(void)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/config.json", bundle);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return 1;
    char *text = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&text, &size);
    char buf[8192];
    for (size_t n; mem && (n = fread(buf, 1, sizeof(buf), f)) > 0;)
        fwrite(buf, 1, n, mem);
    fclose(f);
    int found = 1;
    if (mem && fclose(mem) == 0)
        found = strstr(text, "\"poststart\"") != NULL;
    free(text);
    return found;
}

static int
fifo_start(pid_t pid, char *err, size_t len)
{
    const char *base = strrchr(runc, '/');
    if (strcmp(base ? base + 1 : runc, "runc") != 0 || getenv("NOTIFY_SOCKET") != NULL ||
        spec_mentions_poststart())
        return 1;
    char path[4400];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s/exec.fifo", runc_root, id);
    if (lstat(path, &st) < 0 || !S_ISFIFO(st.st_mode))
        return 1;
    /* non-blocking: Linux suppresses POLLHUP until a writer came, so poll waits for init's "0" */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return 1;
    size_t got = 0;
    for (int idle = 0;;) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int r = poll(&pf, 1, 100);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        if (r > 0) {
            char buf[64];
            ssize_t n = read(fd, buf, sizeof(buf));
            if (n > 0)
                got += (size_t)n;
            else if (n == 0) /* init closed it: exec'd (after its "0") or died */
                break;
            else if (errno != EAGAIN && errno != EINTR)
                break;
            continue;
        }
        /* as runc: every 100 ms, whether init is still there (a zombie is not: WNOWAIT leaves it to reap) */
        siginfo_t si = {0};
        if (kill(pid, 0) < 0 ||
            (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid) ||
            ++idle > 600) {
            /* a process that ran and ended since the poll wrote its "0" first: that still counts */
            char buf[64];
            for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;)
                got += (size_t)n;
            break;
        }
    }
    close(fd);
    if (got > 0) {
        unlink(path);
        return 0;
    }
    snprintf(err, len, "runc: container process is already dead");
    return -1;
}

static void
do_start(int fd, char **f, int n)
{
    proc_t *p = find_proc(n > 1 ? f[1] : "");
    char err[2048];
    if (p == NULL)
        return reply_error(fd, E_NOTFOUND, "process does not exist");
    if (p->state != ST_CREATED || (p->id[0] && p->pid))
        return reply_error(fd, E_PRECONDITION, "process is not in the created state");
    if (p->id[0]) {
        if (spawn(p, err, sizeof(err)) < 0)
            return reply_error(fd, E_INTERNAL, err);
    } else {
        const char *args[] = {"start", id, NULL};
        int fr = fifo_start(p->pid, err, sizeof(err));
        if (fr < 0 || (fr > 0 && run_runc(args, -1, -1, -1) != 0)) {
            if (fr > 0)
                runc_error(err, sizeof(err));
            return reply_error(fd, E_INTERNAL, err);
        }
        if (p->state == ST_CREATED)
            p->state = ST_RUNNING;
        release_stdin(p);
    }
    send_line(fd, "r\t0\t%d", (int)p->pid);
}

static void
do_kill(int fd, char **f, int n)
{
    proc_t *p = find_proc(n > 1 ? f[1] : "");
    if (p == NULL)
        return reply_error(fd, E_NOTFOUND, "process does not exist");
    int sig = n > 2 ? atoi(f[2]) : SIGTERM, all = n > 3 && strcmp(f[3], "1") == 0;
    if (p->state == ST_STOPPED)
        return reply_error(fd, E_NOTFOUND, "process already finished");
    if (p->id[0] || p->state == ST_CREATED || !all) {
        if (p->pid <= 0 || kill(p->pid, sig) < 0)
            return reply_error(fd, E_NOTFOUND, "process already finished");
        return send_line(fd, "r\t0");
    }
    char sigs[16];
    snprintf(sigs, sizeof(sigs), "%d", sig);
    const char *args[] = {"kill", "--all", id, sigs, NULL};
    if (run_runc(args, -1, -1, -1) != 0) {
        char err[2048];
        runc_error(err, sizeof(err));
        return reply_error(fd, E_INTERNAL, err);
    }
    send_line(fd, "r\t0");
}

static void
do_state(int fd, char **f, int n)
{
    proc_t *p = find_proc(n > 1 ? f[1] : "");
    if (p == NULL)
        return reply_error(fd, E_NOTFOUND, "process does not exist");
    send_line(fd, "r\t0\t%s\t%d\t%d\t%lld\t%s\t%s\t%s\t%d", state_names[p->state], (int)p->pid,
              p->exit_status, p->exited_ns, p->in[0] ? p->in : "-", p->out[0] ? p->out : "-",
              p->err[0] ? p->err : "-", p->terminal);
}

static void
do_delete(int fd, char **f, int n)
{
    const char *exec_id = n > 1 ? f[1] : "";
    proc_t *p = find_proc(exec_id);
    if (p == NULL && exec_id[0] == '\0') {
        /* a shim whose task was never made (its create failed, or berthd died before asking) has
         * nothing to serve: it goes, so nothing outlives the bundle it was started for */
        const char *args[] = {"delete", "--force", id, NULL};
        run_runc(args, -1, -1, -1);
        deleting = 1;
    }
    if (p == NULL)
        return reply_error(fd, E_NOTFOUND, "process does not exist");
    if (p->state != ST_STOPPED && p->state != ST_CREATED)
        return reply_error(fd, E_PRECONDITION, "process must be stopped before deletion");
    if (p->id[0] == '\0') {
        const char *args[] = {"delete", "--force", id, NULL};
        run_runc(args, -1, -1, -1);
        deleting = 1;
    }
    send_line(fd, "r\t0\t%d\t%d\t%lld", (int)p->pid, p->exit_status, p->exited_ns);
    proc_free(p);
}

static void
do_simple(int fd, const char *verb, const char *arg)
{
    const char *args[] = {verb, arg ? "--resources" : id, arg ? arg : NULL, arg ? id : NULL, NULL};
    if (run_runc(args, -1, -1, -1) != 0) {
        char err[2048];
        runc_error(err, sizeof(err));
        return reply_error(fd, E_INTERNAL, err);
    }
    proc_t *p = find_proc("");
    if (p && strcmp(verb, "pause") == 0)
        p->state = ST_PAUSED;
    if (p && strcmp(verb, "resume") == 0)
        p->state = ST_RUNNING;
    send_line(fd, "r\t0");
}

/* runc ps --format json prints a JSON array of pids on one line. */
static void
do_pids(int fd)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return reply_error(fd, E_INTERNAL, strerror(errno));
    const char *args[] = {"ps", "--format", "json", id, NULL};
    int rc = run_runc(args, -1, pipefd[1], -1);
    close(pipefd[1]);
    char out[LINE_MAX_LEN - 16] = "";
    ssize_t got = read(pipefd[0], out, sizeof(out) - 1);
    close(pipefd[0]);
    out[got > 0 ? got : 0] = '\0';
    out[strcspn(out, "\n")] = '\0';
    if (rc != 0)
        return reply_error(fd, E_INTERNAL, "runc ps failed");
    send_line(fd, "r\t0\t%s", out);
}

static void
do_closeio(int fd, char **f, int n)
{
    proc_t *p = find_proc(n > 1 ? f[1] : "");
    if (p == NULL)
        return reply_error(fd, E_NOTFOUND, "process does not exist");
    close_fd(&p->stdin_hold);
    send_line(fd, "r\t0");
}

static void
do_resize(int fd, char **f, int n)
{
    proc_t *p = find_proc(n > 1 ? f[1] : "");
    if (p == NULL || n < 4)
        return reply_error(fd, E_NOTFOUND, "process does not exist");
    if (p->master < 0) /* none, or the process is gone: as containerd, nothing to do */
        return send_line(fd, "r\t0");
    struct winsize ws = {.ws_col = (unsigned short)atoi(f[2]),
                         .ws_row = (unsigned short)atoi(f[3])};
    if (ioctl(p->master, TIOCSWINSZ, &ws) < 0)
        return reply_error(fd, E_INTERNAL, strerror(errno));
    send_line(fd, "r\t0");
}

static void
handle(int fd, char *line)
{
    char *f[16];
    int n = 0;
    for (char *save = NULL, *t = strtok_r(line, "\t", &save); t && n < 16;
         t = strtok_r(NULL, "\t", &save))
        f[n++] = t;
    /* empty fields vanish with strtok: requests put "-" for an empty value */
    for (int i = 0; i < n; i++)
        if (strcmp(f[i], "-") == 0)
            f[i][0] = '\0';
    if (n == 0)
        return reply_error(fd, E_INVAL, "empty request");
    if (strcmp(f[0], "create") == 0)
        do_create(fd, f, n);
    else if (strcmp(f[0], "exec") == 0)
        do_exec(fd, f, n);
    else if (strcmp(f[0], "start") == 0)
        do_start(fd, f, n);
    else if (strcmp(f[0], "kill") == 0)
        do_kill(fd, f, n);
    else if (strcmp(f[0], "state") == 0)
        do_state(fd, f, n);
    else if (strcmp(f[0], "delete") == 0)
        do_delete(fd, f, n);
    else if (strcmp(f[0], "pause") == 0 || strcmp(f[0], "resume") == 0)
        do_simple(fd, f[0], NULL);
    else if (strcmp(f[0], "update") == 0 && n > 1)
        do_simple(fd, "update", f[1]);
    else if (strcmp(f[0], "pids") == 0)
        do_pids(fd);
    else if (strcmp(f[0], "closeio") == 0)
        do_closeio(fd, f, n);
    else if (strcmp(f[0], "resize") == 0)
        do_resize(fd, f, n);
    else
        reply_error(fd, E_INVAL, "unknown request");
}

/* ---- reaping ---------------------------------------------------------------------------------------- */

static void
broadcast_exit(const proc_t *p)
{
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (clients[i].fd >= 0)
            send_line(clients[i].fd, "e\texit\t%s\t%d\t%d\t%lld", p->id, (int)p->pid,
                      p->exit_status, p->exited_ns);
}

/* As the subreaper we also inherit the container's orphans: reap them all, note ours. */
static void
reap(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        for (int i = 0; i < MAX_PROCS; i++) {
            proc_t *p = procs[i];
            if (p == NULL || p->pid != pid || p->state == ST_STOPPED)
                continue;
            p->state = ST_STOPPED;
            p->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            p->exited_ns = now_ns();
            close_fd(&p->stdin_hold);
            terminal_drain(p);
            logs_drain(p);
            broadcast_exit(p);
        }
}

/* ---- the socket ------------------------------------------------------------------------------------ */

static int
listen_on(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return -1;
    strcpy(sa.sun_path, path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    mode_t old = umask(0177); /* 0600 from the start: never a moment when others may connect */
    int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0 || chmod(path, 0600) < 0 || listen(fd, 8) < 0)
        return -1;
    return fd;
}

/* A process that exited before a client connected is told to it on connecting: berthd's watch connects
 * while the task is started, and a process that ends at once (or while berthd was away) would otherwise
 * never be heard of. A request's connection skips event lines. */
static void
tell_past_exits(int fd)
{
    for (int i = 0; i < MAX_PROCS; i++)
        if (procs[i] && procs[i]->state == ST_STOPPED)
            send_line(fd, "e\texit\t%s\t%d\t%d\t%lld", procs[i]->id, (int)procs[i]->pid,
                      procs[i]->exit_status, procs[i]->exited_ns);
}

static void
accept_client(int lfd)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    for (int i = 0; fd >= 0 && i < MAX_CLIENTS; i++)
        if (clients[i].fd < 0) {
            clients[i] = (client_t){.fd = fd};
            tell_past_exits(fd);
            return;
        }
    if (fd >= 0)
        close(fd);
}

static void
read_client(client_t *c)
{
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
    if (n <= 0) {
        close(c->fd);
        c->fd = -1;
        return;
    }
    c->len += (size_t)n;
    char *nl;
    while (c->fd >= 0 && (nl = memchr(c->buf, '\n', c->len)) != NULL) {
        *nl = '\0';
        handle(c->fd, c->buf);
        size_t used = (size_t)(nl - c->buf) + 1;
        memmove(c->buf, nl + 1, c->len - used);
        c->len -= used;
    }
    if (c->len == sizeof(c->buf) - 1) { /* a line longer than any request: drop the client */
        close(c->fd);
        c->fd = -1;
    }
}

static int
serve(int lfd, int sfd)
{
    enum { FIXED = MAX_CLIENTS + 3, MAX_POLLS = FIXED + 2 * MAX_PROCS };
    while (!deleting) {
        struct pollfd p[MAX_POLLS] = {{lfd, POLLIN, 0}, {sfd, POLLIN, 0}, {oom_fd, POLLIN, 0}};
        watch_t w[2 * MAX_PROCS];
        for (int i = 0; i < MAX_CLIENTS; i++)
            p[i + 3] = (struct pollfd){clients[i].fd, POLLIN, 0};
        int n_tty = terminal_polls(p + FIXED, w, 2 * MAX_PROCS);
        if (poll(p, (nfds_t)(FIXED + n_tty), -1) < 0 && errno != EINTR)
            return 1;
        for (int i = 0; i < n_tty; i++)
            if (p[FIXED + i].revents)
                terminal_ready(&w[i]);
        if (p[1].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == sizeof(si))
                ;
            reap();
        }
        if (p[2].revents && oom_fd >= 0)
            oom_ready();
        if (p[0].revents)
            accept_client(lfd);
        for (int i = 0; i < MAX_CLIENTS; i++)
            if (clients[i].fd >= 0 && p[i + 3].revents)
                read_client(&clients[i]);
    }
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: berth-shim ID BUNDLE SOCKET RUNC_ROOT RUNC READY_FD\n");
        return 2;
    }
    id = argv[1], bundle = argv[2], runc_root = argv[4], runc = argv[5];
    int ready = atoi(argv[6]);
    /* nothing of berthd's (its store's file, its pipes) stays open in a process that outlives it */
    if (ready != 3 && dup2(ready, 3) < 0)
        return 1;
    ready = 3;
    close_range(4, ~0U, 0);
    /* detach: our own session, and a second fork so berthd's child exits at once */
    if (setsid() < 0 && errno != EPERM)
        return 1;
    pid_t pid = fork();
    if (pid != 0)
        return pid < 0 ? 1 : 0;
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    if (chdir(bundle) < 0)
        return 1;
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    if (null > 2)
        close(null);
    signal(SIGPIPE, SIG_IGN);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
    for (int i = 0; i < MAX_CLIENTS; i++)
        clients[i].fd = -1;
    int lfd = listen_on(argv[3]);
    /* a berthd that died while starting us reads no "ok": nobody will ask for a task, so we go, and
     * take our socket along (its next start cleans the bundle up) */
    if (write(ready, lfd >= 0 && sfd >= 0 ? "ok\n" : "no\n", 3) != 3 || lfd < 0 || sfd < 0) {
        if (lfd >= 0)
            unlink(argv[3]);
        return 1;
    }
    close(ready);
    int rc = serve(lfd, sfd);
    unlink(argv[3]);
    return rc;
}
