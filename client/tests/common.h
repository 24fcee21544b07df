/* SPDX-License-Identifier: Apache-2.0 */
/* libberth-client tests: a berthd of the test's own (temp root, state and socket) and a client on it. */
#ifndef BERTH_CLIENT_TEST_COMMON_H
#define BERTH_CLIENT_TEST_COMMON_H

#include <sys/types.h>

#include "berth/client.h"
#include "run.h"

typedef struct bct_daemon {
    test_dirs_t dirs;
    char sock[400];
    char errlog[400];
    pid_t pid;
} bct_daemon_t;

/* Makes the dirs and starts berthd with every built module; `set` (may be NULL) is one more --set.
 * Fails the test when berthd does not come up. */
void bct_start(bct_daemon_t *d, const char *set);
/* Stops berthd (SIGTERM) and starts it again on the same root, state and socket. */
void bct_restart(bct_daemon_t *d, const char *set);
/* Kills berthd (if running) and removes the dirs. */
void bct_stop(bct_daemon_t *d);
/* A client on d's socket (options may be NULL); fails the test on error. */
berth_client_t *bct_client(bct_daemon_t *d, const berth_client_options_t *opts);

#endif
