/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What pull and push share about the remote side: the OCIRegistry source or destination of a request turned
 * into a registry client, with credentials asked for on the request's auth stream as containerd's
 * credCallback does (one AuthRequest out, one AuthResponse back, per challenge).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transfer.h"

#include "types/transfer/registry.pb-c.h"

#define AUTH_TAKE_MS 10000
#define AUTH_ANSWER_MS 60000

static int
auth_creds(void *user, const char *host, const char *reference, const char *const *www, size_t n,
           char **username, char **secret, berth_error_t **err)
{
    remote_t *r = user;
    xjob_t *j = r->j;
    const berth_core_api_t *api = j->x->api;
    *username = *secret = NULL;
    if (!r->auth_stream[0])
        return 0; /* the client offered no credentials: anonymous */
    if (!r->auth &&
        streams_take(j->x->streams, j->ns, r->auth_stream, AUTH_TAKE_MS, &r->auth, err) < 0)
        return api->error_wrap(err, "auth stream %s", r->auth_stream);

    Containerd__Types__Transfer__AuthRequest req = CONTAINERD__TYPES__TRANSFER__AUTH_REQUEST__INIT;
    req.host = (char *)host;
    req.reference = (char *)(r->reference[0] ? r->reference : reference);
    req.n_wwwauthenticate = n;
    req.wwwauthenticate = (char **)www;
    size_t len = containerd__types__transfer__auth_request__get_packed_size(&req);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return api->error_make(err, BERTH_ENOMEM, "out of memory");
    containerd__types__transfer__auth_request__pack(&req, buf);
    int rc = xstream_send(r->auth, "containerd.types.transfer.AuthRequest", buf, len, err);
    free(buf);
    if (rc < 0)
        return rc;
    char *type = NULL;
    uint8_t *val = NULL;
    size_t vlen = 0;
    rc = xstream_recv(r->auth, &type, &val, &vlen, AUTH_ANSWER_MS, err);
    if (rc < 0)
        return api->error_wrap(err, "credentials for %s", host);
    if (rc == 0)
        return 0; /* the client closed its side: nothing more to offer */
    Containerd__Types__Transfer__AuthResponse *resp =
        containerd__types__transfer__auth_response__unpack(NULL, vlen, val);
    free(type);
    free(val);
    if (!resp)
        return api->error_make(err, BERTH_EINVAL, "credentials for %s: undecodable AuthResponse",
                               host);
    rc = 0;
    switch (resp->authtype) {
    case CONTAINERD__TYPES__TRANSFER__AUTH_TYPE__CREDENTIALS:
        *username = strdup(resp->username ? resp->username : "");
        *secret = strdup(resp->secret ? resp->secret : "");
        if (!*username || !*secret)
            rc = api->error_make(err, BERTH_ENOMEM, "out of memory");
        break;
    case CONTAINERD__TYPES__TRANSFER__AUTH_TYPE__REFRESH:
        /* ctr answers REFRESH with an empty secret when it has no credentials for the host */
        if (resp->secret && resp->secret[0] && !(*secret = strdup(resp->secret)))
            rc = api->error_make(err, BERTH_ENOMEM, "out of memory");
        break;
    case CONTAINERD__TYPES__TRANSFER__AUTH_TYPE__HEADER:
        api->log(j->x->log, BERTH_LOG_WARN,
                 "credentials for %s: a raw Authorization header is not supported, "
                 "going on anonymously",
                 host);
        break;
    default:
        break;
    }
    containerd__types__transfer__auth_response__free_unpacked(resp, NULL);
    if (rc < 0) {
        free(*username), free(*secret);
        *username = *secret = NULL;
    }
    return rc;
}

int
remote_open(xjob_t *j, const struct Containerd__Types__Transfer__OCIRegistry *reg, remote_t *r,
            berth_error_t **err)
{
    const berth_core_api_t *api = j->x->api;
    memset(r, 0, sizeof *r);
    r->j = j;
    if (!reg->reference || !reg->reference[0])
        return api->error_make(err, BERTH_EINVAL, "reference is required: invalid argument");
    snprintf(r->reference, sizeof r->reference, "%s", reg->reference);
    int rc = reg_ref_parse(api, reg->reference, &r->ref, err);
    if (rc < 0)
        return rc;
    const Containerd__Types__Transfer__RegistryResolver *res = reg->resolver;
    if (res && res->auth_stream)
        snprintf(r->auth_stream, sizeof r->auth_stream, "%s", res->auth_stream);
    if (res && res->n_headers) {
        r->headers = calloc(res->n_headers, sizeof *r->headers);
        if (!r->headers)
            return api->error_make(err, BERTH_ENOMEM, "out of memory");
        for (size_t i = 0; i < res->n_headers; i++) {
            const char *k = res->headers[i]->key ? res->headers[i]->key : "";
            const char *v = res->headers[i]->value ? res->headers[i]->value : "";
            size_t len = strlen(k) + strlen(v) + 3;
            if (!(r->headers[i] = malloc(len))) {
                remote_close(r);
                return api->error_make(err, BERTH_ENOMEM, "out of memory");
            }
            snprintf(r->headers[i], len, "%s: %s", k, v);
            r->n_headers++;
        }
    }
    reg_client_opts_t o = {
        .config = &j->x->reg,
        .ref = &r->ref,
        .creds = auth_creds,
        .creds_user = r,
        .headers = (const char *const *)r->headers,
        .n_headers = r->n_headers,
        .default_scheme =
            res && res->default_scheme && res->default_scheme[0] ? res->default_scheme : NULL,
        .log = j->x->log,
    };
    if ((rc = reg_client_new(api, &o, &r->client, err)) < 0) {
        remote_close(r);
        return rc;
    }
    return 0;
}

void
remote_close(remote_t *r)
{
    if (r->client)
        reg_client_free(r->client);
    if (r->auth) {
        xstream_close(r->auth);
        xstream_release(r->auth);
    }
    for (size_t i = 0; i < r->n_headers; i++)
        free(r->headers[i]);
    free(r->headers);
    memset(r, 0, sizeof *r);
}
