/* SPDX-License-Identifier: Apache-2.0 */
/* Task IO (cio.c) for tasks.c. Not installed. */
#ifndef BERTH_CLIENT_TASK_INTERNAL_H
#define BERTH_CLIENT_TASK_INTERNAL_H

#include "berth/client.h"

/* Makes the FIFOs in a fresh 0700 dir under the FIFO dir and starts the copying threads (they open the FIFOs
 * in an order that never blocks the caller: outputs non-blocking, stdin in its own thread). io NULL: no IO
 * at all ("" paths). */
int bc_io_create(const berth_io_opts_t *o, const char *name, berth_io_t **out, berth_error_t **err);
/* What goes into the Create/Exec request: FIFO paths, the log URI, or "" */
const char *bc_io_stdin(const berth_io_t *io);
const char *bc_io_stdout(const berth_io_t *io);
const char *bc_io_stderr(const berth_io_t *io);
int bc_io_terminal(const berth_io_t *io);

#endif
