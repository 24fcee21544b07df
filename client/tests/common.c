/* SPDX-License-Identifier: Apache-2.0 */
#include "common.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

void
bct_start(bct_daemon_t *d, const char *set)
{
    dirs_make(&d->dirs);
    snprintf(d->sock, sizeof(d->sock), "%s/berthd.sock", d->dirs.state);
    snprintf(d->errlog, sizeof(d->errlog), "%s/stderr", d->dirs.base);
    const char *argv[] = {"--root", d->dirs.root, "--state", d->dirs.state, set ? "--set" : NULL,
                          set,      NULL};
    int status = 0;
    d->pid = start_berthd(MODULE_DIR, argv, d->errlog, 30, &status);
    if (d->pid <= 0) {
        char *log = read_file(d->errlog);
        cr_assert_fail("berthd did not start (exit %d):\n%s", status, log ? log : "");
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
