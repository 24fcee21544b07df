/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth error convention.
 *
 * Every fallible function returns 0 on success or a negative BERTH_E* code and, when the caller passes a
 * non-NULL `berth_error_t **err`, fills *err with a record carrying the same code and a message that names
 * the object involved ("open `/x/y` for writing: Permission denied"). Callers add context while the error
 * travels up with the core table's error_wrap ("prepare snapshot abc: ..."), as crun does.
 *
 * The codes are containerd's error classes (errdefs), so the transport maps each one to the gRPC status
 * containerd would send and Go clients' errdefs.IsNotFound() and friends work unchanged.
 *
 * Ownership: a record is allocated by the core (api->error_make) and freed with api->error_free by whoever
 * ends its journey (logs it, sends it to a client, or drops it).
 */
#ifndef BERTH_ERROR_H
#define BERTH_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum berth_errcode {
    BERTH_OK = 0,
    BERTH_EUNKNOWN = -1,      /* gRPC Unknown */
    BERTH_EINVAL = -2,        /* InvalidArgument */
    BERTH_ENOTFOUND = -3,     /* NotFound */
    BERTH_EEXIST = -4,        /* AlreadyExists */
    BERTH_EPERM = -5,         /* PermissionDenied */
    BERTH_ERESOURCE = -6,     /* ResourceExhausted */
    BERTH_EPRECONDITION = -7, /* FailedPrecondition */
    BERTH_EABORTED = -8,      /* Aborted (containerd's ErrConflict maps here too) */
    BERTH_ERANGE = -9,        /* OutOfRange */
    BERTH_ENOTIMPL = -10,     /* Unimplemented */
    BERTH_EINTERNAL = -11,    /* Internal */
    BERTH_EUNAVAILABLE = -12, /* Unavailable */
    BERTH_EDATALOSS = -13,    /* DataLoss */
    BERTH_EUNAUTH = -14,      /* Unauthenticated */
    BERTH_ECANCELED = -15,    /* Canceled */
    BERTH_ETIMEDOUT = -16,    /* DeadlineExceeded */
    BERTH_ENOMEM = -17,       /* ResourceExhausted, out of memory */
    BERTH_EIO = -18,          /* Internal, an I/O failure; message carries strerror */
    /* Not an error class on the wire: returned by a plugin's init to say "not applicable here".
     * Its message must contain the words "skip plugin" (ctr tells skip from error by them). */
    BERTH_ESKIP = -19,
    BERTH_EMULTI = -20, /* FailedPrecondition: get_single found several instances */
    BERTH_ECODE_MIN = -20
};

/* An error record. Read-only for modules; create, wrap and free through the core table. */
typedef struct berth_error_s {
    int code;      /* one of enum berth_errcode, negative */
    char *message; /* NUL-terminated, outermost context first: "ctx: ctx: cause" */
} berth_error_t;

#ifdef __cplusplus
}
#endif
#endif /* BERTH_ERROR_H */
