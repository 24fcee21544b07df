/* SPDX-License-Identifier: Apache-2.0 */
/* Commands that talk to a running berthd: `berthd reload` and `berthd modules --address|--running`. */
#ifndef BERTH_CORE_RELOAD_CMD_H
#define BERTH_CORE_RELOAD_CMD_H

#include <berth/error.h>

typedef struct berth__remote_opts {
    const char *config_path; /* --config: where the socket address is read from */
    char *const *sets;       /* --set, NULL-terminated (may be NULL) */
    const char *state;       /* --state */
    const char *address;     /* --address: the socket; NULL = from the effective config */
} berth__remote_opts_t;

/* The socket a berthd started with this config serves: plugins."io.berth.transport.v1.grpc".address, else
 * <state>/berthd.sock. Caller frees; NULL with *err on a config error. */
char *berth__remote_address(const berth__remote_opts_t *o, berth_error_t **err);

/* Modules.Reload: prints one line per change, exits 0; a refused config prints its error, exits 1. */
int berth__cmd_reload(const berth__remote_opts_t *o);
/* Modules.List of the running daemon, in `berthd modules`' columns. */
int berth__cmd_modules_running(const berth__remote_opts_t *o);

#endif
