/* SPDX-License-Identifier: Apache-2.0 */
#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"

static const char *const error_names[] = {
    [0] = "OK",
    [-BERTH_EUNKNOWN] = "Unknown",
    [-BERTH_EINVAL] = "InvalidArgument",
    [-BERTH_ENOTFOUND] = "NotFound",
    [-BERTH_EEXIST] = "AlreadyExists",
    [-BERTH_EPERM] = "PermissionDenied",
    [-BERTH_ERESOURCE] = "ResourceExhausted",
    [-BERTH_EPRECONDITION] = "FailedPrecondition",
    [-BERTH_EABORTED] = "Aborted",
    [-BERTH_ERANGE] = "OutOfRange",
    [-BERTH_ENOTIMPL] = "Unimplemented",
    [-BERTH_EINTERNAL] = "Internal",
    [-BERTH_EUNAVAILABLE] = "Unavailable",
    [-BERTH_EDATALOSS] = "DataLoss",
    [-BERTH_EUNAUTH] = "Unauthenticated",
    [-BERTH_ECANCELED] = "Canceled",
    [-BERTH_ETIMEDOUT] = "DeadlineExceeded",
    [-BERTH_ENOMEM] = "OutOfMemory",
    [-BERTH_EIO] = "IOError",
    [-BERTH_ESKIP] = "Skip",
    [-BERTH_EMULTI] = "MultipleInstances",
};

const char *
berth__error_name(int code)
{
    if (code > 0 || code < BERTH_ECODE_MIN)
        return "Unknown";
    return error_names[-code];
}

int
berth__error_make(berth_error_t **err, int code, const char *fmt, ...)
{
    if (code >= 0)
        code = BERTH_EUNKNOWN;
    if (err == NULL)
        return code;
    va_list ap;
    va_start(ap, fmt);
    char *msg = berth__xvasprintf(fmt, ap);
    va_end(ap);
    if (*err != NULL) /* an earlier error was never consumed: the newest one wins */
        berth__error_free(*err);
    *err = berth__xmalloc(sizeof(**err));
    (*err)->code = code;
    (*err)->message = msg;
    return code;
}

int
berth__error_wrap(berth_error_t **err, const char *fmt, ...)
{
    if (err == NULL || *err == NULL)
        return BERTH_EUNKNOWN;
    va_list ap;
    va_start(ap, fmt);
    char *ctx = berth__xvasprintf(fmt, ap);
    va_end(ap);
    char *msg = berth__xasprintf("%s: %s", ctx, (*err)->message);
    free(ctx);
    free((*err)->message);
    (*err)->message = msg;
    return (*err)->code;
}

void
berth__error_free(berth_error_t *err)
{
    if (err == NULL)
        return;
    free(err->message);
    free(err);
}

const char *
berth__error_msg(const berth_error_t *err)
{
    return err && err->message ? err->message : "(no message)";
}

int
berth__error_from_errno(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return BERTH_ENOTFOUND;
    case EEXIST:
    case ENOTEMPTY:
        return BERTH_EEXIST;
    case EACCES:
    case EPERM:
    case EROFS:
        return BERTH_EPERM;
    case EINVAL:
    case ENAMETOOLONG:
    case ELOOP:
    case EXDEV:
        return BERTH_EINVAL;
    case ENOSPC:
    case EMFILE:
    case ENFILE:
    case EDQUOT:
        return BERTH_ERESOURCE;
    case ENOMEM:
        return BERTH_ENOMEM;
    case EBUSY:
    case EAGAIN:
        return BERTH_EUNAVAILABLE;
    case ENOSYS:
    case EOPNOTSUPP:
        return BERTH_ENOTIMPL;
    case ETIMEDOUT:
        return BERTH_ETIMEDOUT;
    case ECANCELED:
        return BERTH_ECANCELED;
    default:
        return BERTH_EIO;
    }
}
