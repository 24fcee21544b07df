/* SPDX-License-Identifier: Apache-2.0 */
/* BERTH_E* to gRPC status as containerd's errdefs.ToGRPC does, and the header encodings grpc-go wants. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport.h"

int
grpc_status_of(int code)
{
    switch (code) {
    case 0:
        return 0;
    case BERTH_ECANCELED:
        return 1;
    case BERTH_EINVAL:
        return 3;
    case BERTH_ETIMEDOUT:
        return 4;
    case BERTH_ENOTFOUND:
        return 5;
    case BERTH_EEXIST:
        return 6;
    case BERTH_EPERM:
        return 7;
    case BERTH_ERESOURCE:
    case BERTH_ENOMEM:
        return 8;
    case BERTH_EPRECONDITION:
    case BERTH_EMULTI:
        return 9;
    case BERTH_EABORTED:
        return 10;
    case BERTH_ERANGE:
        return 11;
    case BERTH_ENOTIMPL:
        return 12;
    case BERTH_EINTERNAL:
        return 13;
    case BERTH_EUNAVAILABLE:
        return 14;
    case BERTH_EDATALOSS:
        return 15;
    case BERTH_EUNAUTH:
        return 16;
    default:
        return 2; /* errdefs passes unknown errors through: the client sees Unknown */
    }
}

/* The words containerd's errdefs errors print, which its clients strip and re-add. */
static const char *
class_suffix(int code)
{
    switch (code) {
    case BERTH_EINVAL:
        return "invalid argument";
    case BERTH_ENOTFOUND:
        return "not found";
    case BERTH_EEXIST:
        return "already exists";
    case BERTH_EPRECONDITION:
    case BERTH_EMULTI:
        return "failed precondition";
    case BERTH_EUNAVAILABLE:
        return "unavailable";
    case BERTH_ENOTIMPL:
        return "not implemented";
    default:
        return NULL;
    }
}

char *
grpc_percent_encode(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(n * 3 + 1), *w = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p > 0x7e || *p == '%')
            w += sprintf(w, "%%%02X", *p);
        else
            *w++ = (char)*p;
    }
    *w = '\0';
    return out;
}

char *
grpc_status_message(int code, const char *message)
{
    const char *suffix = class_suffix(code);
    const char *msg = message ? message : "";
    char *full = NULL;
    size_t ml = strlen(msg), sl = suffix ? strlen(suffix) : 0;
    int has = suffix && ml >= sl && strcmp(msg + ml - sl, suffix) == 0;
    if (suffix && !has && asprintf(&full, "%s%s%s", msg, ml ? ": " : "", suffix) < 0)
        full = NULL;
    char *enc = grpc_percent_encode(full ? full : msg);
    free(full);
    return enc;
}

int64_t
grpc_parse_timeout(const char *v, size_t len)
{
    if (len < 2 || len > 9)
        return -1;
    int64_t n = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    switch (v[len - 1]) {
    case 'H':
        return n * 3600 * 1000;
    case 'M':
        return n * 60 * 1000;
    case 'S':
        return n * 1000;
    case 'm':
        return n;
    case 'u':
        return (n + 999) / 1000;
    case 'n':
        return (n + 999999) / 1000000;
    default:
        return -1;
    }
}
