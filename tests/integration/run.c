/* SPDX-License-Identifier: Apache-2.0 */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void
dirs_make(test_dirs_t *d)
{
    snprintf(d->base, sizeof(d->base), "/tmp/berth-test-XXXXXX");
    if (mkdtemp(d->base) == NULL)
        abort();
    snprintf(d->root, sizeof(d->root), "%s/root", d->base);
    snprintf(d->state, sizeof(d->state), "%s/state", d->base);
    snprintf(d->empty, sizeof(d->empty), "%s/empty", d->base);
    mkdir(d->empty, 0755);
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void
dirs_remove(test_dirs_t *d)
{
    if (d->base[0])
        nftw(d->base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
exec_berthd(const char *module_dir, const char *const *argv)
{
    if (module_dir)
        setenv("BERTH_MODULE_DIR", module_dir, 1);
    else
        unsetenv("BERTH_MODULE_DIR");
    size_t n = 0;
    while (argv && argv[n])
        n++;
    const char **full = calloc(n + 2, sizeof(char *));
    full[0] = BERTHD;
    for (size_t i = 0; i < n; i++)
        full[i + 1] = argv[i];
    execv(BERTHD, (char *const *)full);
    _exit(127);
}

static int
decode(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

int
wait_exit(pid_t pid, int timeout_s)
{
    double end = now() + timeout_s;
    int status;
    while (now() < end) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return decode(status);
        usleep(2000);
    }
    return -1;
}

static void
append(char **buf, size_t *len, int fd)
{
    char tmp[4096];
    ssize_t n = read(fd, tmp, sizeof(tmp));
    if (n <= 0)
        return;
    *buf = realloc(*buf, *len + (size_t)n + 1);
    memcpy(*buf + *len, tmp, (size_t)n);
    *len += (size_t)n;
    (*buf)[*len] = '\0';
}

static run_result_t run_child(const char *module_dir, const char *const *argv, int timeout_s,
                              int any_prog);

run_result_t
run_berthd(const char *module_dir, const char *const *argv, int timeout_s)
{
    return run_child(module_dir, argv, timeout_s, 0);
}

run_result_t
run_prog(const char *const *argv, int timeout_s)
{
    return run_child(NULL, argv, timeout_s, 1);
}

pid_t
spawn_to_file(const char *const *argv, const char *outfile)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(outfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static run_result_t
run_child(const char *module_dir, const char *const *argv, int timeout_s, int any_prog)
{
    run_result_t r = {.status = -1, .out = calloc(1, 1), .err = calloc(1, 1)};
    int po[2], pe[2];
    if (pipe(po) < 0 || pipe(pe) < 0)
        abort();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(po[1], STDOUT_FILENO);
        dup2(pe[1], STDERR_FILENO);
        close(po[0]);
        close(pe[0]);
        if (any_prog) {
            execv(argv[0], (char *const *)argv);
            _exit(127);
        }
        exec_berthd(module_dir, argv);
    }
    close(po[1]);
    close(pe[1]);
    size_t lo = 0, le = 0;
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    double end = now() + timeout_s;
    int open_fds = 2;
    while (open_fds > 0 && now() < end) {
        if (poll(fds, 2, 100) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP)))
                continue;
            size_t before = i == 0 ? lo : le;
            append(i == 0 ? &r.out : &r.err, i == 0 ? &lo : &le, fds[i].fd);
            if ((i == 0 ? lo : le) == before) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            }
        }
    }
    if (open_fds > 0)
        kill(pid, SIGKILL);
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0)
            close(fds[i].fd);
    r.status = wait_exit(pid, timeout_s > 0 ? timeout_s : 1);
    return r;
}

void
run_free(run_result_t *r)
{
    free(r->out);
    free(r->err);
}

pid_t
start_berthd(const char *module_dir, const char *const *argv, const char *errfile, int timeout_s,
             int *status)
{
    int p[2];
    if (pipe(p) < 0)
        abort();
    size_t n = 0;
    while (argv && argv[n])
        n++;
    const char **full = calloc(n + 3, sizeof(char *));
    char fdarg[32];
    snprintf(fdarg, sizeof(fdarg), "%d", p[1]);
    for (size_t i = 0; i < n; i++)
        full[i] = argv[i];
    full[n] = "--ready-fd";
    full[n + 1] = fdarg;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        int fd = open(errfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0)
            dup2(fd, STDERR_FILENO);
        exec_berthd(module_dir, full);
    }
    free(full);
    close(p[1]);
    char buf[32] = "";
    struct pollfd pfd = {p[0], POLLIN, 0};
    ssize_t got = 0;
    if (poll(&pfd, 1, timeout_s * 1000) > 0)
        got = read(p[0], buf, sizeof(buf) - 1);
    close(p[0]);
    if (got > 0 && strncmp(buf, "READY=1\n", 8) == 0)
        return pid;
    *status = wait_exit(pid, timeout_s);
    if (*status < 0) {
        kill(pid, SIGKILL);
        *status = wait_exit(pid, 5);
    }
    return -pid;
}

int
stop_berthd(pid_t pid, int sig, int timeout_s)
{
    kill(pid, sig);
    int st = wait_exit(pid, timeout_s);
    if (st < 0) {
        kill(pid, SIGKILL);
        wait_exit(pid, 5);
    }
    return st;
}

char *
read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return calloc(1, 1);
    char *buf = NULL;
    size_t len = 0;
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
        buf = realloc(buf, len + n + 1);
        memcpy(buf + len, tmp, n);
        len += n;
    }
    fclose(f);
    if (buf == NULL)
        return calloc(1, 1);
    buf[len] = '\0';
    return buf;
}

int
count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

char *
line_with(const char *text, const char *needle)
{
    const char *p = strstr(text, needle);
    if (p == NULL)
        return NULL;
    const char *start = p;
    while (start > text && start[-1] != '\n')
        start--;
    const char *end = strchr(p, '\n');
    size_t len = end ? (size_t)(end - start) : strlen(start);
    return strndup(start, len);
}

const char *
missing_in_order(const char *text, const char *const *expected, size_t n)
{
    const char *at = text;
    for (size_t i = 0; i < n; i++) {
        const char *p = strstr(at, expected[i]);
        if (p == NULL)
            return expected[i];
        at = p + 1;
    }
    return NULL;
}
