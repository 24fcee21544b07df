/* SPDX-License-Identifier: Apache-2.0 */
/* The core's side of abi/berth/error.h: the same functions the api table hands to modules. */
#ifndef BERTH_CORE_ERROR_H
#define BERTH_CORE_ERROR_H

#include <berth/error.h>

int berth__error_make(berth_error_t **err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int berth__error_wrap(berth_error_t **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void berth__error_free(berth_error_t *err);
const char *berth__error_name(int code);
/* Maps an errno value to the closest BERTH_E* class (ENOENT -> NOTFOUND, EEXIST -> EEXIST, ...). */
int berth__error_from_errno(int e);
/* Message of *err or "(no message)"; never NULL. */
const char *berth__error_msg(const berth_error_t *err);

#endif
