/* SPDX-License-Identifier: Apache-2.0 */
/* Reload: re-read the config and apply the difference while the daemon runs (module.h, "Reload"). */
#include "registry.h"

#include "error.h"

int
berth__reload_request(void (*done)(void *user, const berth_reload_result_t *result), void *user,
                      berth_error_t **err)
{
    (void)done;
    (void)user;
    return berth__error_make(err, BERTH_ENOTIMPL, "reload: not implemented yet");
}
