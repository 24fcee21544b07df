/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Running one CNI plugin: posix_spawn (no shell, no popen) with stdin on a socket pair (written with
 * MSG_NOSIGNAL: a plugin that exits without reading must not SIGPIPE berthd), stdout and stderr on pipes
 * read to a bound, every other fd closed in the child, default signals, and a deadline after which the
 * plugin is killed. Called from pool threads; blocks.
 */
#include "cni.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads what is available from fd into *buf (kept under CNI_MAX_OUTPUT). 0 at EOF. */
static int
drain(int fd, char **buf, size_t *len)
{
    char chunk[16384];
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 1 : 0;
    if (n == 0)
        return 0;
    size_t take = *len + (size_t)n > CNI_MAX_OUTPUT ? CNI_MAX_OUTPUT - *len : (size_t)n;
    if (take) {
        *buf = realloc(*buf, *len + take + 1);
        memcpy(*buf + *len, chunk, take);
        *len += take;
        (*buf)[*len] = 0;
    }
    return 1;
}

static int
spawn(const char *path, char *const env[], int in, int out, int errfd, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in, 0);
    posix_spawn_file_actions_adddup2(&fa, out, 1);
    posix_spawn_file_actions_adddup2(&fa, errfd, 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_init(&at);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char *const argv[] = {(char *)path, NULL};
    int rc = posix_spawn(pid, path, &fa, &at, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    return rc;
}

int
cni_exec(const char *path, char *const env[], const char *input, size_t input_len, int timeout_ms,
         cni_run_t *r)
{
    memset(r, 0, sizeof(*r));
    int sp[2], po[2], pe[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
        return r->spawn_errno = errno, -1;
    if (pipe2(po, O_CLOEXEC) < 0) {
        r->spawn_errno = errno;
        close(sp[0]), close(sp[1]);
        return -1;
    }
    if (pipe2(pe, O_CLOEXEC) < 0) {
        r->spawn_errno = errno;
        close(sp[0]), close(sp[1]), close(po[0]), close(po[1]);
        return -1;
    }
    pid_t pid;
    int rc = spawn(path, env, sp[1], po[1], pe[1], &pid);
    close(sp[1]), close(po[1]), close(pe[1]);
    if (rc != 0) {
        r->spawn_errno = rc;
        close(sp[0]), close(po[0]), close(pe[0]);
        return -1;
    }
    int64_t deadline = now_ms() + timeout_ms;
    size_t sent = 0;
    int in = sp[0], out = po[0], er = pe[0];
    fcntl(in, F_SETFL, O_NONBLOCK);
    if (input_len == 0)
        shutdown(in, SHUT_WR);
    while (out >= 0 || er >= 0) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            r->timed_out = 1;
            kill(pid, SIGKILL);
            break;
        }
        struct pollfd fds[3] = {{out, POLLIN, 0}, {er, POLLIN, 0}, {-1, POLLOUT, 0}};
        if (sent < input_len)
            fds[2].fd = in;
        if (poll(fds, 3, (int)(left > 1000 ? 1000 : left)) < 0 && errno != EINTR)
            break;
        if (fds[2].revents & (POLLOUT | POLLERR | POLLHUP)) {
            ssize_t n = send(in, input + sent, input_len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0)
                sent += (size_t)n;
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                sent = input_len; /* the plugin stopped reading: nothing more to give it */
            if (sent >= input_len)
                shutdown(in, SHUT_WR);
        }
        if (fds[0].revents && !drain(out, &r->out, &r->out_len))
            close(out), out = -1;
        if (fds[1].revents && !drain(er, &r->errt, &r->err_len))
            close(er), er = -1;
    }
    if (out >= 0)
        close(out);
    if (er >= 0)
        close(er);
    close(in);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    r->exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (!r->out)
        r->out = strdup("");
    if (!r->errt)
        r->errt = strdup("");
    return 0;
}

void
cni_run_free(cni_run_t *r)
{
    free(r->out);
    free(r->errt);
    r->out = r->errt = NULL;
}

int
cni_find_plugin(const char *const *dirs, size_t n_dirs, const char *type, char *out, size_t outlen)
{
    if (!type || !*type || strchr(type, '/'))
        return -1;
    for (size_t i = 0; i < n_dirs; i++) {
        struct stat st;
        if ((size_t)snprintf(out, outlen, "%s/%s", dirs[i], type) >= outlen)
            continue;
        if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
            return 0;
    }
    return -1;
}
