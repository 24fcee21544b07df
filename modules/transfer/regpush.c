/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Push: blob existence (HEAD), cross-repository mounts, monolithic and chunked uploads (the distribution
 * spec's POST, PATCH with Content-Range, closing PUT with ?digest=) and manifest PUTs, against the first
 * endpoint with the push capability (the upstream unless configured otherwise), with scope pull,push.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regclient.h"

static reg_ep_t *
push_endpoint(reg_client_t *c, berth_error_t **err)
{
    for (size_t i = 0; i < c->n_eps; i++)
        if (c->eps[i].caps & REG_CAP_PUSH)
            return &c->eps[i];
    c->api->error_make(err, BERTH_EPRECONDITION, "%s: no registry endpoint can push", c->ref.name);
    return NULL;
}

static void
scope_push(reg_client_t *c, char *out, size_t n)
{
    snprintf(out, n, "repository:%s:pull,push", c->ref.repo);
}

int
reg_blob_exists(reg_client_t *c, const berth_descriptor_t *desc, berth_error_t **err)
{
    reg_ep_t *ep = push_endpoint(c, err);
    if (ep == NULL)
        return BERTH_EPRECONDITION;
    char scope[700];
    scope_push(c, scope, sizeof scope);
    reg_rq_t rq;
    reg_rq_init(&rq, c, ep, "HEAD", reg_url(c, ep, "/%s/blobs/%s", c->ref.repo, desc->digest),
                scope);
    rq.follow = 1;
    int rc = reg_rq_do(&rq, err);
    if (rc == 0) {
        if (rq.status == 200)
            rc = 1;
        else if (rq.status != 404)
            rc = reg_rq_status_error(&rq, err);
    }
    reg_rq_free(&rq);
    return rc;
}

static int
cancel_upload(reg_client_t *c, reg_ep_t *ep, const char *scope, const char *location)
{
    reg_rq_t rq;
    reg_rq_init(&rq, c, ep, "DELETE", reg_url_abs(ep, location), scope);
    berth_error_t *e = NULL;
    if (rq.url && reg_rq_do(&rq, &e) < 0)
        c->api->error_free(e);
    reg_rq_free(&rq);
    return 0;
}

int
reg_blob_mount(reg_client_t *c, const berth_descriptor_t *desc, const char *from_repo,
               berth_error_t **err)
{
    reg_ep_t *ep = push_endpoint(c, err);
    if (ep == NULL)
        return BERTH_EPRECONDITION;
    char scope[1400];
    snprintf(scope, sizeof scope, "repository:%s:pull,push repository:%s:pull", c->ref.repo,
             from_repo);
    CURL *h = libcurl.curl_easy_init();
    char *from = h ? libcurl.curl_easy_escape(h, from_repo, 0) : NULL;
    if (h)
        libcurl.curl_easy_cleanup(h);
    if (from == NULL)
        return c->api->error_make(err, BERTH_ENOMEM, "mount: out of memory");
    reg_rq_t rq;
    reg_rq_init(
        &rq, c, ep, "POST",
        reg_url(c, ep, "/%s/blobs/uploads/?mount=%s&from=%s", c->ref.repo, desc->digest, from),
        scope);
    libcurl.curl_free(from);
    int rc = reg_rq_do(&rq, err);
    if (rc == 0) {
        if (rq.status == 201) {
            rc = 1;
        } else if (rq.status == 202) {
            if (rq.location)
                cancel_upload(c, ep, scope, rq.location); /* not mounted: the caller uploads */
        } else {
            rc = reg_rq_status_error(&rq, err);
        }
    }
    reg_rq_free(&rq);
    return rc;
}

/* Location + "?digest=" (or "&digest=") */
static char *
with_digest(reg_ep_t *ep, const char *location, const char *digest)
{
    char *abs = reg_url_abs(ep, location), *url = NULL;
    if (abs == NULL)
        return NULL;
    if (asprintf(&url, "%s%sdigest=%s", abs, strchr(abs, '?') ? "&" : "?", digest) < 0)
        url = NULL;
    free(abs);
    return url;
}

/* Starts an upload session; *location (malloc'd) is where its bytes go. */
static int
upload_start(reg_client_t *c, reg_ep_t *ep, const char *scope, char **location, berth_error_t **err)
{
    reg_rq_t rq;
    reg_rq_init(&rq, c, ep, "POST", reg_url(c, ep, "/%s/blobs/uploads/", c->ref.repo), scope);
    int rc = reg_rq_do(&rq, err);
    if (rc == 0 && rq.status != 202)
        rc = reg_rq_status_error(&rq, err);
    if (rc == 0 && rq.location == NULL)
        rc = c->api->error_make(err, BERTH_EUNKNOWN, "POST %s: no Location in the answer", rq.url);
    if (rc == 0) {
        *location = rq.location;
        rq.location = NULL;
    }
    reg_rq_free(&rq);
    return rc;
}

static int
upload_chunk(reg_client_t *c, reg_ep_t *ep, const char *scope, char **location, reg_read_fn read,
             void *user, int64_t off, int64_t len, berth_error_t **err)
{
    char range[96];
    snprintf(range, sizeof range, "Content-Range: %" PRId64 "-%" PRId64, off, off + len - 1);
    reg_rq_t rq;
    reg_rq_init(&rq, c, ep, "PATCH", reg_url_abs(ep, *location), scope);
    rq.read = read;
    rq.read_user = user;
    rq.read_off = off;
    rq.read_len = len;
    rq.extra[rq.n_extra++] = "Content-Type: application/octet-stream";
    rq.extra[rq.n_extra++] = range;
    int rc = rq.url ? reg_rq_do(&rq, err) : c->api->error_make(err, BERTH_ENOMEM, "out of memory");
    if (rc == 0 && rq.status != 202 && rq.status != 204)
        rc = reg_rq_status_error(&rq, err);
    if (rc == 0 && rq.location) {
        free(*location);
        *location = rq.location;
        rq.location = NULL;
    }
    reg_rq_free(&rq);
    return rc;
}

static int
upload_close(reg_client_t *c, reg_ep_t *ep, const char *scope, const char *location,
             const berth_descriptor_t *desc, reg_read_fn read, void *user, int64_t len,
             berth_error_t **err)
{
    reg_rq_t rq;
    reg_rq_init(&rq, c, ep, "PUT", with_digest(ep, location, desc->digest), scope);
    if (len > 0) {
        rq.read = read;
        rq.read_user = user;
        rq.read_off = 0;
        rq.read_len = len;
    }
    rq.extra[rq.n_extra++] = "Content-Type: application/octet-stream";
    int rc = rq.url ? reg_rq_do(&rq, err) : c->api->error_make(err, BERTH_ENOMEM, "out of memory");
    if (rc == 0 && rq.status != 201 && rq.status != 204)
        rc = reg_rq_status_error(&rq, err);
    if (rc == 0 && rq.digest && strcmp(rq.digest, desc->digest) != 0)
        rc = c->api->error_make(err, BERTH_EPRECONDITION, "push blob %s: the registry stored %s",
                                desc->digest, rq.digest);
    reg_rq_free(&rq);
    return rc;
}

int
reg_push_blob(reg_client_t *c, const berth_descriptor_t *desc, reg_read_fn read, void *user,
              int64_t chunk_size, berth_error_t **err)
{
    reg_ep_t *ep = push_endpoint(c, err);
    if (ep == NULL)
        return BERTH_EPRECONDITION;
    char scope[700];
    scope_push(c, scope, sizeof scope);
    char *location = NULL;
    int rc = upload_start(c, ep, scope, &location, err);
    if (rc < 0)
        return rc;
    if (chunk_size <= 0 || desc->size <= chunk_size) {
        rc = upload_close(c, ep, scope, location, desc, read, user, desc->size, err);
    } else {
        for (int64_t off = 0; rc == 0 && off < desc->size; off += chunk_size) {
            int64_t n = desc->size - off < chunk_size ? desc->size - off : chunk_size;
            rc = upload_chunk(c, ep, scope, &location, read, user, off, n, err);
        }
        if (rc == 0)
            rc = upload_close(c, ep, scope, location, desc, read, user, 0, err);
    }
    if (rc < 0) {
        cancel_upload(c, ep, scope, location);
        c->api->error_wrap(err, "push blob %s", desc->digest);
    }
    free(location);
    return rc;
}

int
reg_push_manifest(reg_client_t *c, const char *tag_or_digest, const char *media_type,
                  const uint8_t *data, size_t len, berth_error_t **err)
{
    reg_ep_t *ep = push_endpoint(c, err);
    if (ep == NULL)
        return BERTH_EPRECONDITION;
    char scope[700], ctype[300];
    scope_push(c, scope, sizeof scope);
    snprintf(ctype, sizeof ctype, "Content-Type: %s", media_type);
    reg_rq_t rq;
    reg_rq_init(&rq, c, ep, "PUT", reg_url(c, ep, "/%s/manifests/%s", c->ref.repo, tag_or_digest),
                scope);
    rq.body = data;
    rq.body_len = len;
    rq.extra[rq.n_extra++] = ctype;
    int rc = rq.url ? reg_rq_do(&rq, err) : c->api->error_make(err, BERTH_ENOMEM, "out of memory");
    if (rc == 0 && rq.status != 201 && rq.status != 200 && rq.status != 204)
        rc = reg_rq_status_error(&rq, err);
    reg_rq_free(&rq);
    if (rc < 0)
        c->api->error_wrap(err, "push manifest %s", tag_or_digest);
    return rc;
}
