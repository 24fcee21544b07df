/* SPDX-License-Identifier: Apache-2.0 */
/* wslay, opened on first use (lazylib.h): the CRI streaming server's WebSocket connections. */
#ifndef BERTH_COMMON_LIB_WSLAY_H
#define BERTH_COMMON_LIB_WSLAY_H

#include <wslay/wslay.h>

#include "lazylib.h"

#define LIBWSLAY_SYMBOLS(X)            \
    X(wslay_event_context_free)        \
    X(wslay_event_context_server_init) \
    X(wslay_event_queue_close)         \
    X(wslay_event_queue_msg)           \
    X(wslay_event_recv)                \
    X(wslay_event_send)                \
    X(wslay_event_set_error)           \
    X(wslay_event_want_read)           \
    X(wslay_event_want_write)

LAZYLIB_DECLARE(libwslay, LIBWSLAY_SYMBOLS)

#endif
