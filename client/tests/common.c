/* SPDX-License-Identifier: Apache-2.0 */
#include "common.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/* berthd as run.c's start_berthd starts it, plus PR_SET_PDEATHSIG: a test that Criterion kills on its
 * timeout takes its berthd along instead of leaving it running. */
static pid_t
spawn_berthd(bct_daemon_t *d, const char *set, int *status)
{
    int p[2];
    if (pipe(p) < 0)
        abort();
    char fdarg[16];
    snprintf(fdarg, sizeof(fdarg), "%d", p[1]);
    const char *argv[] = {BERTHD,       "--root", d->dirs.root,         "--state", d->dirs.state,
                          "--ready-fd", fdarg,    set ? "--set" : NULL, set,       NULL};
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(p[0]);
        int fd = open(d->errlog, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0)
            dup2(fd, STDERR_FILENO);
        setenv("BERTH_MODULE_DIR", MODULE_DIR, 1);
        execv(BERTHD, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    char buf[32] = "";
    struct pollfd pfd = {p[0], POLLIN, 0};
    ssize_t got = 0;
    if (poll(&pfd, 1, 30000) > 0)
        got = read(p[0], buf, sizeof(buf) - 1);
    close(p[0]);
    if (got > 0 && strncmp(buf, "READY=1\n", 8) == 0)
        return pid;
    *status = stop_berthd(pid, SIGKILL, 5);
    return -pid;
}

void
bct_start(bct_daemon_t *d, const char *set)
{
    dirs_make(&d->dirs);
    snprintf(d->sock, sizeof(d->sock), "%s/berthd.sock", d->dirs.state);
    snprintf(d->errlog, sizeof(d->errlog), "%s/stderr", d->dirs.base);
    int status = 0;
    d->pid = spawn_berthd(d, set, &status);
    if (d->pid <= 0) {
        char *log = read_file(d->errlog);
        cr_assert_fail("berthd did not start (exit %d):\n%s", status, log ? log : "");
    }
}

void
bct_restart(bct_daemon_t *d, const char *set)
{
    if (d->pid > 0)
        stop_berthd(d->pid, SIGTERM, 30);
    int status = 0;
    d->pid = spawn_berthd(d, set, &status);
    if (d->pid <= 0) {
        char *log = read_file(d->errlog);
        cr_assert_fail("berthd did not restart (exit %d):\n%s", status, log ? log : "");
    }
}

void
bct_stop(bct_daemon_t *d)
{
    if (d->pid > 0)
        stop_berthd(d->pid, SIGKILL, 5);
    d->pid = 0;
    dirs_remove(&d->dirs);
}

berth_client_t *
bct_client(bct_daemon_t *d, const berth_client_options_t *opts)
{
    berth_client_t *c = NULL;
    berth_error_t *err = NULL;
    int r = berth_client_new(d->sock, opts, &c, &err);
    if (r != 0)
        cr_assert_fail("berth_client_new: %s", err ? err->message : "?");
    return c;
}
