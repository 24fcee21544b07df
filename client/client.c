/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client object, errors, and the calls every daemon answers: Version and grpc.health.v1 Check.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/empty.pb-c.h"
#include "services/version/v1/version.pb-c.h"

#include "internal.h"

/* ---- errors ----------------------------------------------------------------------------------------- */

static berth_error_t *
error_vmake(int code, const char *fmt, va_list ap)
{
    berth_error_t *e = malloc(sizeof(*e));
    if (e == NULL)
        return NULL;
    e->code = code;
    if (vasprintf(&e->message, fmt, ap) < 0) {
        free(e);
        return NULL;
    }
    return e;
}

int
bc_error(berth_error_t **err, int code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    va_list ap;
    va_start(ap, fmt);
    berth_error_t *e = error_vmake(code, fmt, ap);
    va_end(ap);
    if (*err) /* a record already there (a caller's retry): the newest cause wins */
        berth_error_free(*err);
    *err = e;
    return code;
}

int
bc_error_wrap(berth_error_t **err, int code, const char *fmt, ...)
{
    if (err == NULL || *err == NULL)
        return code;
    char *ctx = NULL, *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&ctx, fmt, ap);
    va_end(ap);
    if (n >= 0 && asprintf(&msg, "%s: %s", ctx, (*err)->message) >= 0) {
        free((*err)->message);
        (*err)->message = msg;
    }
    if (n >= 0)
        free(ctx);
    (*err)->code = code;
    return code;
}

int
bc_code_from_grpc(int st)
{
    static const int map[] = {
        [0] = BERTH_OK,
        [1] = BERTH_ECANCELED,
        [2] = BERTH_EUNKNOWN,
        [3] = BERTH_EINVAL,
        [4] = BERTH_ETIMEDOUT,
        [5] = BERTH_ENOTFOUND,
        [6] = BERTH_EEXIST,
        [7] = BERTH_EPERM,
        [8] = BERTH_ERESOURCE,
        [9] = BERTH_EPRECONDITION,
        [10] = BERTH_EABORTED,
        [11] = BERTH_ERANGE,
        [12] = BERTH_ENOTIMPL,
        [13] = BERTH_EINTERNAL,
        [14] = BERTH_EUNAVAILABLE,
        [15] = BERTH_EDATALOSS,
        [16] = BERTH_EUNAUTH,
    };
    if (st < 0 || st >= (int)(sizeof(map) / sizeof(map[0])))
        return BERTH_EUNKNOWN;
    return map[st];
}

BC_EXPORT void
berth_error_free(berth_error_t *e)
{
    if (e == NULL)
        return;
    free(e->message);
    free(e);
}

BC_EXPORT const char *
berth_error_class(int code)
{
    switch (code) {
    case BERTH_OK:
        return "ok";
    case BERTH_EINVAL:
        return "invalid argument";
    case BERTH_ENOTFOUND:
        return "not found";
    case BERTH_EEXIST:
        return "already exists";
    case BERTH_EPERM:
        return "permission denied";
    case BERTH_ERESOURCE:
        return "resource exhausted";
    case BERTH_EPRECONDITION:
        return "failed precondition";
    case BERTH_EABORTED:
        return "aborted";
    case BERTH_ERANGE:
        return "out of range";
    case BERTH_ENOTIMPL:
        return "not implemented";
    case BERTH_EINTERNAL:
        return "internal";
    case BERTH_EUNAVAILABLE:
        return "unavailable";
    case BERTH_EDATALOSS:
        return "data loss";
    case BERTH_EUNAUTH:
        return "unauthenticated";
    case BERTH_ECANCELED:
        return "context canceled";
    case BERTH_ETIMEDOUT:
        return "context deadline exceeded";
    case BERTH_ENOMEM:
        return "out of memory";
    case BERTH_EIO:
        return "i/o error";
    default:
        return "unknown";
    }
}

/* ---- the client ------------------------------------------------------------------------------------- */

static const char *
env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

BC_EXPORT int
berth_client_new(const char *address, const berth_client_options_t *opts, berth_client_t **out,
                 berth_error_t **err)
{
    *out = NULL;
    if (address == NULL || address[0] == 0)
        address = env_nonempty("BERTH_ADDRESS");
    if (address == NULL)
        address = BERTH_CLIENT_DEFAULT_ADDRESS;
    if (strncmp(address, "unix://", 7) == 0)
        address += 7;
    if (address[0] == 0)
        return bc_error(err, BERTH_EINVAL, "empty socket address");
    const char *ns = opts && opts->namespace_ && opts->namespace_[0] ? opts->namespace_ : NULL;
    if (ns == NULL)
        ns = env_nonempty("BERTH_NAMESPACE");
    if (ns == NULL)
        ns = env_nonempty("CONTAINERD_NAMESPACE");
    if (ns == NULL)
        ns = "default";
    berth_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->address = strdup(address)) == NULL ||
        (c->namespace_ = strdup(ns)) == NULL) {
        if (c)
            free(c->address);
        free(c);
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    }
    c->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : 0;
    c->connect_timeout_ms = opts && opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 5000;
    pthread_mutex_init(&c->pool_mu, NULL);
    *out = c;
    return 0;
}

BC_EXPORT void
berth_client_free(berth_client_t *c)
{
    if (c == NULL)
        return;
    bc_transport_close(c);
    pthread_mutex_destroy(&c->pool_mu);
    free(c->address);
    free(c->namespace_);
    free(c);
}

BC_EXPORT const char *
berth_client_namespace(const berth_client_t *c)
{
    return c->namespace_;
}

BC_EXPORT const char *
berth_client_address(const berth_client_t *c)
{
    return c->address;
}

BC_EXPORT void
berth_free(void *p)
{
    free(p);
}

BC_EXPORT void
berth_kv_free(berth_kv_t *kv, size_t n)
{
    if (kv == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

/* ---- version, health -------------------------------------------------------------------------------- */

BC_EXPORT int
berth_version(berth_client_t *c, const berth_call_t *call, char **version, char **revision,
              berth_error_t **err)
{
    if (version)
        *version = NULL;
    if (revision)
        *revision = NULL;
    Google__Protobuf__Empty req = GOOGLE__PROTOBUF__EMPTY__INIT;
    ProtobufCMessage *resp;
    int r = bc_unary(c, call, "/containerd.services.version.v1.Version/Version", &req.base,
                     &containerd__services__version__v1__version_response__descriptor, &resp, err);
    if (r < 0)
        return r;
    Containerd__Services__Version__V1__VersionResponse *v = (void *)resp;
    char *ver = bc_strdup(v->version), *rev = bc_strdup(v->revision);
    protobuf_c_message_free_unpacked(resp, NULL);
    if (ver == NULL || rev == NULL) {
        free(ver);
        free(rev);
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    }
    if (version)
        *version = ver;
    else
        free(ver);
    if (revision)
        *revision = rev;
    else
        free(rev);
    return 0;
}

/* grpc.health.v1's messages are tiny: encoded by hand (no proto for them in containerd's API module).
 * HealthCheckRequest{service: 1}: empty asks about the server. HealthCheckResponse{status: 1 enum}. */
static int
health_status(const uint8_t *p, size_t n)
{
    int status = 0; /* UNKNOWN when absent */
    size_t i = 0;
    while (i < n) {
        uint64_t key = 0;
        for (int sh = 0; i < n; sh += 7) {
            key |= (uint64_t)(p[i] & 0x7f) << sh;
            if (!(p[i++] & 0x80))
                break;
        }
        if ((key & 7) != 0) /* only varints expected; anything else ends the scan */
            break;
        uint64_t v = 0;
        for (int sh = 0; i < n; sh += 7) {
            v |= (uint64_t)(p[i] & 0x7f) << sh;
            if (!(p[i++] & 0x80))
                break;
        }
        if (key >> 3 == 1)
            status = (int)v;
    }
    return status;
}

BC_EXPORT int
berth_serving(berth_client_t *c, const berth_call_t *call, berth_error_t **err)
{
    /* an empty HealthCheckRequest is zero bytes; the answer is decoded above */
    uint8_t *resp = NULL;
    size_t len = 0;
    int r = bc_unary_raw(c, call, "/grpc.health.v1.Health/Check", NULL, 0, &resp, &len, err);
    if (r < 0)
        return r;
    int st = health_status(resp, len);
    free(resp);
    static const char *const names[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
    if (st != 1)
        return bc_error(err, BERTH_EUNAVAILABLE, "%s is not serving: %s", c->address,
                        st >= 0 && st < 4 ? names[st] : "unknown status");
    return 0;
}
