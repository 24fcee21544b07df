/* SPDX-License-Identifier: Apache-2.0 */
/* Readiness: sd_notify-style READY=1 on $NOTIFY_SOCKET, and READY=1\n on --ready-fd for scripts. */
#ifndef BERTH_CORE_NOTIFY_H
#define BERTH_CORE_NOTIFY_H

/* Sends READY=1 to $NOTIFY_SOCKET when set, and to ready_fd (then closes it) when >= 0. */
void berth__notify_ready(int ready_fd);
/* STOPPING=1 on $NOTIFY_SOCKET when set. */
void berth__notify_stopping(void);

#endif
