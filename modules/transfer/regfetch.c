/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Blob downloads: up to max_concurrent_downloads at once on one curl multi handle (HTTP/2 streams share a
 * connection where the server offers it). Each job asks for the bytes its caller does not hold yet
 * (Range: bytes=N-), so a retry after a cut connection, a 5xx or a 429 fetches only the rest; a server
 * that ignores the Range answers 200 and the caller is told to start over. A 404 on a mirror moves the job
 * to the next endpoint with the pull capability, and finally to the upstream.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "regclient.h"

typedef struct bjob_s {
    reg_blob_job_t *job;
    reg_client_t *c;
    reg_rq_t rq;
    CURL *h;
    size_t ep;
    int64_t have; /* bytes the caller holds */
    int attempts;
    int authed;
    int body_started;
    int64_t due_ms;
    int state; /* 0 waiting, 1 running, 2 done */
    int rc;
    berth_error_t *err;
    char range[64];
    char scope[700];
} bjob_t;

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
fail(bjob_t *b, int code, const char *fmt, const char *detail)
{
    b->rc = b->c->api->error_make(&b->err, code, fmt, b->job->desc.digest, detail);
    return -1;
}

/* The body of a 2xx response, in order. */
static int
blob_sink(reg_rq_t *rq, const void *data, size_t len)
{
    bjob_t *b = rq->sink_user;
    reg_blob_job_t *j = b->job;
    if (!b->body_started) {
        b->body_started = 1;
        if (rq->status == 200 && b->have > 0) {
            /* the server ignored the Range: the caller starts over */
            if (j->restart == NULL || j->restart(j->user, &b->err) < 0) {
                b->rc = b->err ? b->err->code : BERTH_EUNKNOWN;
                if (b->err == NULL)
                    fail(b, BERTH_EUNKNOWN, "blob %s: %s", "cannot restart");
                return -1;
            }
            b->have = 0;
        } else if (rq->status == 206) {
            long long start = -1;
            if (rq->content_range == NULL ||
                sscanf(rq->content_range, "bytes %lld-", &start) != 1 || start != b->have)
                return fail(b, BERTH_EUNKNOWN,
                            "blob %s: Content-Range \"%s\" does not start at "
                            "the requested offset",
                            rq->content_range ? rq->content_range : "");
        }
    }
    if (j->desc.size >= 0 && b->have + (int64_t)len > j->desc.size)
        return fail(b, BERTH_EPRECONDITION, "blob %s: %s", "more bytes than its size");
    if (j->data(j->user, data, len, &b->err) < 0) {
        b->rc = b->err ? b->err->code : BERTH_EUNKNOWN;
        return -1;
    }
    b->have += (int64_t)len;
    return 0;
}

static int
next_endpoint(reg_client_t *c, size_t from, size_t *out)
{
    for (size_t i = from; i < c->n_eps; i++)
        if (c->eps[i].caps & REG_CAP_PULL) {
            *out = i;
            return 1;
        }
    return 0;
}

static int
start(bjob_t *b, CURLM *m)
{
    reg_client_t *c = b->c;
    reg_ep_t *ep = &c->eps[b->ep];
    reg_rq_free(&b->rq);
    reg_rq_init(&b->rq, c, ep, "GET",
                reg_url(c, ep, "/%s/blobs/%s", c->ref.repo, b->job->desc.digest), b->scope);
    if (b->rq.url == NULL)
        return fail(b, BERTH_ENOMEM, "blob %s: %s", "out of memory");
    b->rq.follow = 1;
    b->rq.sink = blob_sink;
    b->rq.sink_user = b;
    if (b->have > 0) {
        snprintf(b->range, sizeof b->range, "Range: bytes=%" PRId64 "-", b->have);
        b->rq.extra[b->rq.n_extra++] = b->range;
    }
    b->body_started = 0;
    if (reg_rq_setup(&b->rq, b->h, &b->err) < 0) {
        b->rc = b->err ? b->err->code : BERTH_EUNKNOWN;
        return -1;
    }
    libcurl.curl_multi_add_handle(m, b->h);
    b->state = 1;
    return 0;
}

static void
finish(bjob_t *b, int rc, berth_error_t **first)
{
    reg_client_t *c = b->c;
    b->state = 2;
    if (rc < 0 && b->err == NULL)
        c->api->error_make(&b->err, rc, "blob %s: failed", b->job->desc.digest);
    if (rc < 0 && first && *first == NULL)
        c->api->error_make(first, b->err->code, "%s", b->err->message);
    berth_error_t *e = b->err;
    b->err = NULL;
    b->job->done(b->job->user, rc, e);
}

static void
requeue(bjob_t *b, int64_t delay_ms)
{
    b->state = 0;
    b->due_ms = now_ms() + delay_ms;
}

/* A retry of the same endpoint after a transient failure, or the next endpoint; 0 when neither is left. */
static int
retry_or_next(bjob_t *b, int64_t delay_ms)
{
    reg_client_t *c = b->c;
    if (++b->attempts <= c->cfg->retries) {
        requeue(b, delay_ms);
        return 1;
    }
    size_t next;
    if (next_endpoint(c, b->ep + 1, &next)) {
        b->ep = next;
        b->attempts = 0;
        b->authed = 0;
        requeue(b, 0);
        return 1;
    }
    return 0;
}

static void
on_transport_error(bjob_t *b, CURLcode cc, berth_error_t **first)
{
    reg_client_t *c = b->c;
    reg_ep_t *ep = &c->eps[b->ep];
    if (b->rc < 0) {
        finish(b, b->rc, first); /* the sink refused: the caller's error or a size overrun */
        return;
    }
    if (ep->http_fallback && strcmp(ep->scheme, "https") == 0 &&
        (cc == CURLE_SSL_CONNECT_ERROR || cc == CURLE_RECV_ERROR)) {
        strcpy(ep->scheme, "http");
        requeue(b, 0);
        return;
    }
    const char *why = b->rq.curl_err[0] ? b->rq.curl_err : libcurl.curl_easy_strerror(cc);
    c->api->log(c->log, BERTH_LOG_DEBUG, "blob %s from %s: %s (have %lld of %lld bytes)",
                b->job->desc.digest, ep->authority, why, (long long)b->have,
                (long long)b->job->desc.size);
    if (reg_curl_retryable(cc) && retry_or_next(b, reg_backoff_ms(NULL, b->attempts + 1)))
        return;
    size_t next;
    if (!reg_curl_retryable(cc) && next_endpoint(c, b->ep + 1, &next)) {
        b->ep = next; /* unreachable: the next endpoint at once */
        b->attempts = 0;
        b->authed = 0;
        requeue(b, 0);
        return;
    }
    fail(b, BERTH_EUNAVAILABLE, "blob %s: %s", why);
    finish(b, b->rc, first);
}

static void
on_response(bjob_t *b, berth_error_t **first)
{
    reg_client_t *c = b->c;
    reg_rq_t *rq = &b->rq;
    int64_t size = b->job->desc.size;
    if ((rq->status == 200 || rq->status == 206) && b->have == size) {
        finish(b, 0, first);
        return;
    }
    if (rq->status == 200 || rq->status == 206) {
        /* the body ended early without a transport error: as a cut connection */
        if (retry_or_next(b, reg_backoff_ms(NULL, b->attempts + 1)))
            return;
        fail(b, BERTH_EUNAVAILABLE, "blob %s: %s", "the body ended before its size");
        finish(b, b->rc, first);
        return;
    }
    if (rq->status == 401 && !b->authed && rq->n_challenges > 0) {
        b->authed = 1;
        if (reg_auth_handle(rq, &b->err) < 0) {
            finish(b, b->err ? b->err->code : BERTH_EUNAUTH, first);
            return;
        }
        requeue(b, 0);
        return;
    }
    if (rq->status == 416 && b->have > 0 && b->job->restart) {
        if (b->job->restart(b->job->user, &b->err) < 0) {
            finish(b, b->err ? b->err->code : BERTH_EUNKNOWN, first);
            return;
        }
        b->have = 0;
        requeue(b, 0);
        return;
    }
    size_t next;
    if (rq->status == 404 && next_endpoint(c, b->ep + 1, &next)) {
        b->ep = next;
        b->attempts = 0;
        b->authed = 0;
        requeue(b, 0);
        return;
    }
    /* 5xx and 429: retried, then the next endpoint (a failing mirror falls back to the upstream) */
    if ((rq->status >= 500 || rq->status == 429) &&
        retry_or_next(b, reg_backoff_ms(rq, b->attempts + 1)))
        return;
    int rc = reg_rq_status_error(rq, &b->err);
    finish(b, rc, first);
}

/* Handles the transfers that ended; returns how many. */
static int
drain(CURLM *m, berth_error_t **first)
{
    CURLMsg *msg;
    int left, done = 0;
    while ((msg = libcurl.curl_multi_info_read(m, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        done++;
        CURL *h = msg->easy_handle;
        CURLcode cc = msg->data.result;
        reg_rq_t *rq = NULL;
        libcurl.curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&rq);
        libcurl.curl_multi_remove_handle(m, h);
        reg_rq_log_done(rq, h, cc);
        bjob_t *b = rq->sink_user;
        if (cc != CURLE_OK)
            on_transport_error(b, cc, first);
        else
            on_response(b, first);
    }
    return done;
}

/* Starts waiting jobs that are due while fewer than max run; returns ms until the next due one (-1:
 * none waits). */
static int64_t
launch(bjob_t *bs, size_t n, CURLM *m, int max, berth_error_t **first)
{
    int running = 0;
    int64_t now = now_ms(), next = -1;
    for (size_t i = 0; i < n; i++)
        running += bs[i].state == 1;
    for (size_t i = 0; i < n; i++) {
        bjob_t *b = &bs[i];
        if (b->state != 0)
            continue;
        if (b->due_ms > now) {
            if (next < 0 || b->due_ms - now < next)
                next = b->due_ms - now;
            continue;
        }
        if (running >= max)
            continue;
        if (start(b, m) < 0)
            finish(b, b->rc, first);
        else
            running++;
    }
    return next;
}

static int
init_jobs(reg_client_t *c, reg_blob_job_t *jobs, size_t n, bjob_t *bs, berth_error_t **first)
{
    size_t ep0;
    for (size_t i = 0; i < n; i++) {
        bjob_t *b = &bs[i];
        b->job = &jobs[i];
        b->c = c;
        b->have = jobs[i].offset;
        snprintf(b->scope, sizeof b->scope, "repository:%s:pull", c->ref.repo);
        reg_rq_init(&b->rq, c, &c->eps[0], "GET", NULL, b->scope);
        if (!next_endpoint(c, 0, &ep0)) {
            fail(b, BERTH_ENOTFOUND, "blob %s: %s", "no registry endpoint can pull");
            finish(b, b->rc, first);
            continue;
        }
        b->ep = ep0;
        if (b->have == jobs[i].desc.size && b->have >= 0) {
            finish(b, 0, first); /* the caller holds every byte already */
            continue;
        }
        if ((b->h = libcurl.curl_easy_init()) == NULL) {
            fail(b, BERTH_ENOMEM, "blob %s: %s", "curl_easy_init failed");
            finish(b, b->rc, first);
        }
    }
    return 0;
}

int
reg_fetch_blobs(reg_client_t *c, reg_blob_job_t *jobs, size_t n, berth_error_t **err)
{
    berth_error_t *first = NULL;
    bjob_t *bs = calloc(n ? n : 1, sizeof *bs);
    CURLM *m = libcurl.curl_multi_init();
    if (bs == NULL || m == NULL) {
        free(bs);
        if (m)
            libcurl.curl_multi_cleanup(m);
        return c->api->error_make(err, BERTH_ENOMEM, "fetch blobs: out of memory");
    }
    libcurl.curl_multi_setopt(m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    init_jobs(c, jobs, n, bs, &first);
    int max = c->cfg->max_concurrent_downloads > 0 ? c->cfg->max_concurrent_downloads : 3;
    for (;;) {
        int64_t next = launch(bs, n, m, max, &first);
        int running = 0, waiting = 0;
        for (size_t i = 0; i < n; i++) {
            running += bs[i].state == 1;
            waiting += bs[i].state == 0;
        }
        if (running == 0 && waiting == 0)
            break;
        if (running == 0) {
            reg_sleep_ms(next > 0 ? next : 1);
            continue;
        }
        int still = 0;
        libcurl.curl_multi_perform(m, &still);
        /* a transfer that ended may let a waiting one start, or end the fetch: no poll, which would
         * wait its whole timeout with no transfer left to wake it */
        if (drain(m, &first) > 0)
            continue;
        int timeout = (next >= 0 && next < 500) ? (int)next : 500;
        libcurl.curl_multi_poll(m, NULL, 0, timeout, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        if (bs[i].h)
            libcurl.curl_easy_cleanup(bs[i].h);
        reg_rq_free(&bs[i].rq);
    }
    free(bs);
    libcurl.curl_multi_cleanup(m);
    if (first) {
        int code = first->code;
        if (err)
            *err = first;
        else
            c->api->error_free(first);
        return code;
    }
    return 0;
}
