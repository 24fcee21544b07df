/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry client over libcurl: endpoints from the host configuration (mirrors in order, then the
 * upstream), one request engine with retries and authentication, resolve, manifests, and blob downloads
 * on a multi handle with Range resume. Connections, DNS and TLS sessions are shared by every handle of a
 * client (CURLSH); HTTP/2 is used where the server offers it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <json-c/json.h>

#include "regclient.h"

#define SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

static const char *const manifest_accept =
    "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, */*;q=0.8";

/* ---- endpoints ----------------------------------------------------------------------------------- */

/* Splits "scheme://authority/path" into the endpoint; the API root as containerd's hosts.go makes it. */
static int
ep_from_url(reg_ep_t *ep, const char *url, int override_path)
{
    const char *p = strstr(url, "://");
    if (p == NULL || (size_t)(p - url) >= sizeof ep->scheme)
        return -1;
    memcpy(ep->scheme, url, (size_t)(p - url));
    ep->scheme[p - url] = '\0';
    p += 3;
    size_t n = strcspn(p, "/?#");
    if (n == 0 || n >= sizeof ep->authority)
        return -1;
    memcpy(ep->authority, p, n);
    ep->authority[n] = '\0';
    char path[1024];
    snprintf(path, sizeof path, "%.*s", (int)strcspn(p + n, "?#"), p + n);
    while (strlen(path) > 0 && path[strlen(path) - 1] == '/')
        path[strlen(path) - 1] = '\0';
    if (override_path)
        snprintf(ep->path, sizeof ep->path, "%s", path);
    else if (strlen(path) >= 3 && strcmp(path + strlen(path) - 3, "/v2") == 0)
        snprintf(ep->path, sizeof ep->path, "%s", path);
    else
        snprintf(ep->path, sizeof ep->path, "%.1000s/v2", path);
    return 0;
}

static int
build_endpoints(reg_client_t *c, const char *default_scheme, berth_error_t **err)
{
    const reg_host_t *h = reg_config_host(c->cfg, c->ref.host);
    size_t n = (h ? h->n_mirrors : 0) + 1;
    if ((c->eps = calloc(n, sizeof *c->eps)) == NULL)
        return c->api->error_make(err, BERTH_ENOMEM, "registry client: out of memory");
    for (size_t i = 0; h && i < h->n_mirrors; i++) {
        reg_ep_t *ep = &c->eps[c->n_eps];
        ep->cfg = &h->mirrors[i];
        if (ep_from_url(ep, ep->cfg->url, ep->cfg->override_path) < 0)
            return c->api->error_make(err, BERTH_EINVAL, "registries.%s: mirror \"%s\": bad URL",
                                      h->name, ep->cfg->url);
        ep->caps = ep->cfg->caps;
        ep->skip_verify = ep->cfg->skip_verify;
        ep->is_mirror = 1;
        c->n_eps++;
    }
    reg_ep_t *up = &c->eps[c->n_eps++];
    up->cfg = h ? &h->upstream : &c->none;
    up->caps = h ? h->upstream.caps : (REG_CAP_PULL | REG_CAP_RESOLVE | REG_CAP_PUSH);
    up->skip_verify = up->cfg->skip_verify;
    if (up->cfg->url != NULL) {
        if (ep_from_url(up, up->cfg->url, up->cfg->override_path) < 0)
            return c->api->error_make(err, BERTH_EINVAL, "registries.%s: server \"%s\": bad URL",
                                      h->name, up->cfg->url);
        return 0;
    }
    const char *host = strcmp(c->ref.host, "docker.io") == 0 ? "registry-1.docker.io" : c->ref.host;
    snprintf(up->authority, sizeof up->authority, "%s", host);
    snprintf(up->path, sizeof up->path, "/v2");
    if (default_scheme && *default_scheme) {
        snprintf(up->scheme, sizeof up->scheme, "%s", default_scheme);
    } else if (strcmp(host, c->ref.host) == 0 && reg_host_is_loopback(host)) {
        /* containerd: a loopback registry on a port other than 443 may speak either; try TLS
         * (unverified) first and fall back to plain HTTP when the handshake fails */
        const char *port = strrchr(host, ':');
        int has_port = port && !strchr(port, ']');
        strcpy(up->scheme, "https");
        if (!has_port || strcmp(port, ":443") != 0) {
            up->skip_verify = 1;
            up->http_fallback = has_port && strcmp(port, ":80") != 0;
            if (has_port && strcmp(port, ":80") == 0) {
                strcpy(up->scheme, "http");
                up->skip_verify = 0;
            }
        }
        if (!has_port)
            up->skip_verify = 1;
    } else {
        strcpy(up->scheme, "https");
    }
    if (strcmp(up->scheme, "http") && strcmp(up->scheme, "https"))
        return c->api->error_make(err, BERTH_EINVAL, "default scheme \"%s\": not http or https",
                                  up->scheme);
    return 0;
}

/* The system's CAs and the endpoint's own file in one PEM blob: CURLOPT_CAINFO alone would replace the
 * system bundle. */
int
reg_ep_ca_bundle(reg_client_t *c, reg_ep_t *ep, berth_error_t **err)
{
    if (ep->ca_pem != NULL || ep->cfg->ca_file == NULL)
        return 0;
    const char *files[2] = {SYSTEM_CA_BUNDLE, ep->cfg->ca_file};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "rb");
        if (f == NULL) {
            if (i == 0)
                continue; /* no system bundle: the host's CA alone */
            return c->api->error_make(err, BERTH_EINVAL, "ca \"%s\": %s", files[i],
                                      strerror(errno));
        }
        char chunk[65536];
        size_t got;
        while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
            char *grown = realloc(ep->ca_pem, ep->ca_len + got + 2);
            if (grown == NULL) {
                fclose(f);
                return c->api->error_make(err, BERTH_ENOMEM, "ca bundle: out of memory");
            }
            ep->ca_pem = grown;
            memcpy(ep->ca_pem + ep->ca_len, chunk, got);
            ep->ca_len += got;
        }
        fclose(f);
        ep->ca_pem[ep->ca_len++] = '\n';
    }
    return 0;
}

char *
reg_url(reg_client_t *c, reg_ep_t *ep, const char *fmt, ...)
{
    char tail[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tail, sizeof tail, fmt, ap);
    va_end(ap);
    char *url = NULL;
    const char *sep = strchr(tail, '?') ? "&" : "?";
    if (ep->is_mirror) {
        if (asprintf(&url, "%s://%s%s%s%sns=%s", ep->scheme, ep->authority, ep->path, tail, sep,
                     c->ref.host) < 0)
            return NULL;
    } else if (asprintf(&url, "%s://%s%s%s", ep->scheme, ep->authority, ep->path, tail) < 0) {
        return NULL;
    }
    return url;
}

char *
reg_url_abs(reg_ep_t *ep, const char *location)
{
    char *url = NULL;
    if (strncmp(location, "http://", 7) == 0 || strncmp(location, "https://", 8) == 0)
        return strdup(location);
    if (asprintf(&url, "%s://%s%s%s", ep->scheme, ep->authority, location[0] == '/' ? "" : "/",
                 location) < 0)
        return NULL;
    return url;
}

/* ---- the client ---------------------------------------------------------------------------------- */

static int
copy_headers(reg_client_t *c, const reg_client_opts_t *opts)
{
    if (opts->n_headers == 0)
        return 0;
    if ((c->headers = calloc(opts->n_headers, sizeof *c->headers)) == NULL)
        return -1;
    for (size_t i = 0; i < opts->n_headers; i++) {
        if (strpbrk(opts->headers[i], "\r\n") || !strchr(opts->headers[i], ':'))
            continue;
        if ((c->headers[c->n_headers] = strdup(opts->headers[i])) == NULL)
            return -1;
        c->n_headers++;
    }
    return 0;
}

int
reg_client_new(const berth_core_api_t *api, const reg_client_opts_t *opts, reg_client_t **out,
               berth_error_t **err)
{
    /* libcurl (curl_global_init with it) and libcrypto open on the first client (lazylib.h) */
    int lrc = libcurl_load(api, err);
    if (lrc == 0)
        lrc = libcrypto_load(api, err);
    if (lrc < 0)
        return lrc;
    reg_client_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return api->error_make(err, BERTH_ENOMEM, "registry client: out of memory");
    c->api = api;
    reg_config_defaults(&c->dflt_cfg);
    c->cfg = opts->config ? opts->config : &c->dflt_cfg;
    c->ref = *opts->ref;
    c->creds = opts->creds;
    c->creds_user = opts->creds_user;
    c->log = opts->log;
    if (copy_headers(c, opts) < 0) {
        reg_client_free(c);
        return api->error_make(err, BERTH_ENOMEM, "registry client: out of memory");
    }
    int rc = build_endpoints(c, opts->default_scheme, err);
    if (rc < 0) {
        reg_client_free(c);
        return rc;
    }
    c->share = libcurl.curl_share_init();
    if (c->share == NULL) {
        reg_client_free(c);
        return api->error_make(err, BERTH_ENOMEM, "registry client: curl_share_init failed");
    }
    /* one thread uses the client at a time, so the share needs no lock callbacks */
    libcurl.curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    libcurl.curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    libcurl.curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    *out = c;
    return 0;
}

void
reg_client_free(reg_client_t *c)
{
    if (c == NULL)
        return;
    if (c->share)
        libcurl.curl_share_cleanup(c->share);
    for (size_t i = 0; i < c->n_eps; i++)
        free(c->eps[i].ca_pem);
    free(c->eps);
    for (size_t i = 0; i < c->n_headers; i++)
        free(c->headers[i]);
    free(c->headers);
    reg_auth_free(c);
    free(c);
}

/* ---- the request engine -------------------------------------------------------------------------- */

void
reg_rq_init(reg_rq_t *rq, reg_client_t *c, reg_ep_t *ep, const char *method, char *url,
            const char *scope)
{
    memset(rq, 0, sizeof *rq);
    rq->c = c;
    rq->ep = ep;
    rq->method = method;
    rq->url = url;
    rq->scope = scope;
    rq->clen = -1;
    rq->limit = REG_ERRBODY_MAX;
}

void
reg_rq_reset_response(reg_rq_t *rq)
{
    free(rq->location);
    free(rq->digest);
    free(rq->ctype);
    free(rq->content_range);
    free(rq->retry_after);
    rq->location = rq->digest = rq->ctype = rq->content_range = rq->retry_after = NULL;
    for (size_t i = 0; i < rq->n_challenges; i++)
        free(rq->challenges[i]);
    rq->n_challenges = 0;
    rq->status = 0;
    rq->clen = -1;
    rq->len = 0;
    rq->too_big = 0;
    rq->curl_err[0] = '\0';
}

void
reg_rq_free(reg_rq_t *rq)
{
    reg_rq_reset_response(rq);
    free(rq->buf);
    free(rq->url);
    libcurl.curl_slist_free_all(rq->hdrs);
    if (rq->read_err)
        rq->c->api->error_free(rq->read_err);
    memset(rq, 0, sizeof *rq);
}

static char *
header_value(const char *line, size_t n, const char *name)
{
    size_t k = strlen(name);
    if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
        return NULL;
    const char *v = line + k + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    return strndup(v, (size_t)(end - v));
}

static size_t
on_header(char *line, size_t size, size_t nitems, void *user)
{
    reg_rq_t *rq = user;
    size_t n = size * nitems;
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* a new response (after a redirect or 100-continue): forget the previous one's headers */
        reg_rq_reset_response(rq);
        const char *sp = memchr(line, ' ', n);
        rq->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        return n;
    }
    char *v;
    if ((v = header_value(line, n, "Location")) != NULL) {
        free(rq->location);
        rq->location = v;
    } else if ((v = header_value(line, n, "Docker-Content-Digest")) != NULL) {
        free(rq->digest);
        rq->digest = v;
    } else if ((v = header_value(line, n, "Content-Type")) != NULL) {
        free(rq->ctype);
        rq->ctype = v;
    } else if ((v = header_value(line, n, "Content-Range")) != NULL) {
        free(rq->content_range);
        rq->content_range = v;
    } else if ((v = header_value(line, n, "Retry-After")) != NULL) {
        free(rq->retry_after);
        rq->retry_after = v;
    } else if ((v = header_value(line, n, "Content-Length")) != NULL) {
        rq->clen = strtoll(v, NULL, 10);
        free(v);
    } else if ((v = header_value(line, n, "WWW-Authenticate")) != NULL) {
        if (rq->n_challenges < REG_MAX_CHALLENGES)
            rq->challenges[rq->n_challenges++] = v;
        else
            free(v);
    }
    return n;
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *user)
{
    reg_rq_t *rq = user;
    size_t n = size * nmemb;
    if (rq->sink && rq->status >= 200 && rq->status < 300)
        return rq->sink(rq, data, n) == 0 ? n : 0;
    size_t limit = (rq->status >= 200 && rq->status < 300) ? rq->limit : REG_ERRBODY_MAX;
    if (rq->len + n > limit) {
        if (rq->status >= 200 && rq->status < 300) {
            rq->too_big = 1;
            return 0; /* aborts: a manifest over the limit */
        }
        n = limit > rq->len ? limit - rq->len : 0; /* error bodies are kept only in part */
        if (n == 0)
            return size * nmemb;
    }
    if (rq->len + n + 1 > rq->cap) {
        size_t cap = (rq->len + n + 1) * 2;
        uint8_t *b = realloc(rq->buf, cap);
        if (b == NULL)
            return 0;
        rq->buf = b;
        rq->cap = cap;
    }
    memcpy(rq->buf + rq->len, data, n);
    rq->len += n;
    rq->buf[rq->len] = '\0';
    return size * nmemb;
}

static size_t
on_read(char *buf, size_t size, size_t nitems, void *user)
{
    reg_rq_t *rq = user;
    size_t want = size * nitems;
    int64_t left = rq->read_len - rq->read_pos;
    if (left <= 0)
        return 0;
    if ((int64_t)want > left)
        want = (size_t)left;
    size_t got = 0;
    if (rq->read(rq->read_user, rq->read_off + rq->read_pos, buf, want, &got, &rq->read_err) < 0)
        return CURL_READFUNC_ABORT;
    if (got == 0) {
        rq->c->api->error_make(&rq->read_err, BERTH_EIO,
                               "blob ended at %lld bytes, before its size",
                               (long long)(rq->read_off + rq->read_pos));
        return CURL_READFUNC_ABORT;
    }
    rq->read_pos += (int64_t)got;
    return got;
}

static int
append_header(struct curl_slist **l, const char *h)
{
    struct curl_slist *n = libcurl.curl_slist_append(*l, h);
    if (n == NULL)
        return -1;
    *l = n;
    return 0;
}

static int
build_headers(reg_rq_t *rq)
{
    reg_client_t *c = rq->c;
    libcurl.curl_slist_free_all(rq->hdrs);
    rq->hdrs = NULL;
    int rc = append_header(&rq->hdrs, "User-Agent: berth (containerd/v2.4.2 compatible)");
    for (size_t i = 0; rc == 0 && i < rq->ep->cfg->n_headers; i++)
        rc = append_header(&rq->hdrs, rq->ep->cfg->headers[i]);
    for (size_t i = 0; rc == 0 && i < c->n_headers; i++)
        rc = append_header(&rq->hdrs, c->headers[i]);
    for (size_t i = 0; rc == 0 && i < rq->n_extra; i++)
        rc = append_header(&rq->hdrs, rq->extra[i]);
    const char *auth = rq->no_auth ? NULL : reg_auth_header(c, rq->ep, rq->scope);
    if (rc == 0 && auth)
        rc = append_header(&rq->hdrs, auth);
    if (rc == 0 && (rq->body || rq->read))
        rc = append_header(&rq->hdrs, "Expect:"); /* no 100-continue round trip */
    return rc;
}

int
reg_rq_setup(reg_rq_t *rq, CURL *h, berth_error_t **err)
{
    reg_client_t *c = rq->c;
    reg_ep_t *ep = rq->ep;
    if (build_headers(rq) < 0 || reg_ep_ca_bundle(c, ep, err) < 0)
        return err && *err ? (*err)->code
                           : c->api->error_make(err, BERTH_ENOMEM, "request: out of memory");
    libcurl.curl_easy_reset(h);
    libcurl.curl_easy_setopt(h, CURLOPT_URL, rq->url);
    libcurl.curl_easy_setopt(h, CURLOPT_SHARE, c->share);
    libcurl.curl_easy_setopt(h, CURLOPT_HTTPHEADER, rq->hdrs);
    libcurl.curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    libcurl.curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L);
    libcurl.curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    libcurl.curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    libcurl.curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    libcurl.curl_easy_setopt(h, CURLOPT_ERRORBUFFER, rq->curl_err);
    libcurl.curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    libcurl.curl_easy_setopt(h, CURLOPT_HEADERDATA, rq);
    libcurl.curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    libcurl.curl_easy_setopt(h, CURLOPT_WRITEDATA, rq);
    libcurl.curl_easy_setopt(h, CURLOPT_PRIVATE, rq);
    libcurl.curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->cfg->connect_timeout_ms);
    libcurl.curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, (long)c->cfg->low_speed_limit);
    libcurl.curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)c->cfg->low_speed_time_s);
    /* redirects to blob storage: curl sends our Authorization header to the first host only (the
     * default CURLOPT_UNRESTRICTED_AUTH=0) */
    libcurl.curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, rq->follow ? 1L : 0L);
    libcurl.curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    libcurl.curl_easy_setopt(h, CURLOPT_UNRESTRICTED_AUTH, 0L);
    if (ep->skip_verify) {
        libcurl.curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        libcurl.curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (ep->ca_pem) {
        struct curl_blob blob = {ep->ca_pem, ep->ca_len, CURL_BLOB_NOCOPY};
        libcurl.curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (ep->cfg->client_cert) {
        libcurl.curl_easy_setopt(h, CURLOPT_SSLCERT, ep->cfg->client_cert);
        libcurl.curl_easy_setopt(h, CURLOPT_SSLKEY,
                                 ep->cfg->client_key ? ep->cfg->client_key : ep->cfg->client_cert);
    }
    if (strcmp(rq->method, "HEAD") == 0) {
        libcurl.curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(rq->method, "GET") != 0) {
        libcurl.curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
        if (rq->read) {
            rq->read_pos = 0;
            libcurl.curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
            libcurl.curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
            libcurl.curl_easy_setopt(h, CURLOPT_READDATA, rq);
            libcurl.curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->read_len);
            /* CURLOPT_UPLOAD makes it a PUT; the custom request keeps PATCH */
        } else {
            libcurl.curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body ? (const char *)rq->body : "");
            libcurl.curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
        }
    }
    return 0;
}

void
reg_rq_log_done(reg_rq_t *rq, CURL *h, CURLcode cc)
{
    if (!rq->c->api->log_enabled(rq->c->log, BERTH_LOG_DEBUG))
        return;
    long version = 0, connects = 0;
    libcurl.curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &version);
    libcurl.curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
    const char *v = version == CURL_HTTP_VERSION_2_0   ? "HTTP/2"
                    : version == CURL_HTTP_VERSION_1_1 ? "HTTP/1.1"
                    : version == CURL_HTTP_VERSION_1_0 ? "HTTP/1.0"
                                                       : "-";
    rq->c->api->log(rq->c->log, BERTH_LOG_DEBUG, "%s %s: %ld %s conn=%s%s%s", rq->method, rq->url,
                    rq->status, v, connects > 0 ? "new" : "reused", cc ? " curl=" : "",
                    cc ? libcurl.curl_easy_strerror(cc) : "");
}

int
reg_curl_retryable(CURLcode rc)
{
    switch (rc) {
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }
}

int64_t
reg_backoff_ms(const reg_rq_t *rq, int attempt)
{
    int64_t ra = rq ? reg_parse_retry_after(rq->retry_after, time(NULL)) : -1;
    if (ra >= 0)
        return ra > 60000 ? 60000 : ra;
    int64_t ms = 200;
    for (int i = 1; i < attempt && ms < 10000; i++)
        ms *= 2;
    return ms > 10000 ? 10000 : ms;
}

void
reg_sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int
tls_failed(CURLcode rc)
{
    return rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_PEER_FAILED_VERIFICATION ||
           rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_RECV_ERROR;
}

int
reg_rq_do(reg_rq_t *rq, berth_error_t **err)
{
    reg_client_t *c = rq->c;
    CURL *h = libcurl.curl_easy_init();
    if (h == NULL)
        return c->api->error_make(err, BERTH_ENOMEM, "curl_easy_init failed");
    int authed = 0, rc = 0;
    for (int attempt = 0;; attempt++) {
        reg_rq_reset_response(rq);
        if ((rc = reg_rq_setup(rq, h, err)) < 0)
            break;
        CURLcode cc = libcurl.curl_easy_perform(h);
        reg_rq_log_done(rq, h, cc);
        if (cc != CURLE_OK && rq->ep->http_fallback && strcmp(rq->ep->scheme, "https") == 0 &&
            tls_failed(cc)) {
            /* a plain-HTTP registry on a loopback port: containerd's HTTP fallback */
            c->api->log(c->log, BERTH_LOG_DEBUG, "registry %s: no TLS, using plain HTTP",
                        rq->ep->authority);
            strcpy(rq->ep->scheme, "http");
            char *u = NULL;
            if (asprintf(&u, "http%s", rq->url + 5) < 0) {
                rc = c->api->error_make(err, BERTH_ENOMEM, "out of memory");
                break;
            }
            free(rq->url);
            rq->url = u;
            attempt--;
            continue;
        }
        if (cc != CURLE_OK) {
            if (rq->read_err) {
                rc = rq->read_err->code;
                *err = rq->read_err;
                rq->read_err = NULL;
                break;
            }
            if (rq->too_big) {
                rc = c->api->error_make(err, BERTH_ERESOURCE,
                                        "%s %s: response larger than the limit of %zu bytes",
                                        rq->method, rq->url, rq->limit);
                break;
            }
            if (reg_curl_retryable(cc) && attempt < c->cfg->retries) {
                int64_t ms = reg_backoff_ms(NULL, attempt + 1);
                c->api->log(
                    c->log, BERTH_LOG_DEBUG, "%s %s: %s; retry in %lld ms", rq->method, rq->url,
                    rq->curl_err[0] ? rq->curl_err : libcurl.curl_easy_strerror(cc), (long long)ms);
                reg_sleep_ms(ms);
                continue;
            }
            rc =
                c->api->error_make(err, BERTH_EUNAVAILABLE, "%s %s: %s", rq->method, rq->url,
                                   rq->curl_err[0] ? rq->curl_err : libcurl.curl_easy_strerror(cc));
            break;
        }
        if (rq->status == 401 && !authed && !rq->no_auth && rq->n_challenges > 0) {
            authed = 1;
            if ((rc = reg_auth_handle(rq, err)) < 0)
                break;
            attempt--;
            continue;
        }
        if ((rq->status >= 500 || rq->status == 429) && attempt < c->cfg->retries) {
            int64_t ms = reg_backoff_ms(rq, attempt + 1);
            c->api->log(c->log, BERTH_LOG_DEBUG, "%s %s: status %ld; retry in %lld ms", rq->method,
                        rq->url, rq->status, (long long)ms);
            reg_sleep_ms(ms);
            continue;
        }
        break;
    }
    libcurl.curl_easy_cleanup(h);
    return rc;
}

/* The registry's own message from an error body ({"errors":[{"code":..,"message":..}]}). */
static void
registry_message(const reg_rq_t *rq, char *out, size_t n)
{
    out[0] = '\0';
    if (rq->len == 0 || rq->buf == NULL)
        return;
    json_object *root = json_tokener_parse((const char *)rq->buf);
    json_object *errs, *first, *code, *msg;
    if (root && json_object_object_get_ex(root, "errors", &errs) &&
        json_object_is_type(errs, json_type_array) && json_object_array_length(errs) > 0 &&
        (first = json_object_array_get_idx(errs, 0)) != NULL) {
        const char *cs =
            json_object_object_get_ex(first, "code", &code) ? json_object_get_string(code) : "";
        const char *ms =
            json_object_object_get_ex(first, "message", &msg) ? json_object_get_string(msg) : "";
        snprintf(out, n, ": %s: %s", cs, ms);
    }
    json_object_put(root);
}

int
reg_rq_status_error(reg_rq_t *rq, berth_error_t **err)
{
    char msg[512];
    registry_message(rq, msg, sizeof msg);
    int code = BERTH_EUNKNOWN;
    if (rq->status == 401)
        code = BERTH_EUNAUTH;
    else if (rq->status == 403)
        code = BERTH_EPERM;
    else if (rq->status == 404)
        code = BERTH_ENOTFOUND;
    else if (rq->status == 429)
        code = BERTH_ERESOURCE;
    else if (rq->status >= 500)
        code = BERTH_EUNAVAILABLE;
    else if (rq->status == 400)
        code = BERTH_EINVAL;
    return rq->c->api->error_make(err, code, "unexpected status from %s request to %s: %ld%s",
                                  rq->method, rq->url, rq->status, msg);
}

/* ---- digests ------------------------------------------------------------------------------------- */

static void
sha256_digest(const uint8_t *data, size_t len, char out[BERTH_DIGEST_MAX])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    libcrypto.EVP_Digest(data, len, md, &mdlen, libcrypto.EVP_sha256(), NULL);
    strcpy(out, "sha256:");
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

/* Verifies data against a digest ("sha256:..." or "sha512:..."); 1 when it matches. */
static int
digest_matches(const char *digest, const uint8_t *data, size_t len)
{
    const EVP_MD *md = NULL;
    if (strncmp(digest, "sha256:", 7) == 0)
        md = libcrypto.EVP_sha256();
    else if (strncmp(digest, "sha512:", 7) == 0)
        md = libcrypto.EVP_sha512();
    if (md == NULL)
        return 0;
    unsigned char out[64];
    unsigned int n = 0;
    libcrypto.EVP_Digest(data, len, out, &n, md, NULL);
    char hex[129];
    for (unsigned i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", out[i]);
    return strcmp(digest + 7, hex) == 0;
}

/* ---- resolve and manifests ----------------------------------------------------------------------- */

static void
scope_pull(reg_client_t *c, char *out, size_t n)
{
    snprintf(out, n, "repository:%s:pull", c->ref.repo);
}

static void
media_type_of(const reg_rq_t *rq, char out[256])
{
    out[0] = '\0';
    if (rq->ctype) {
        snprintf(out, 256, "%.*s", (int)strcspn(rq->ctype, "; "), rq->ctype);
        if (strcmp(out, "application/json") != 0 && strcmp(out, "text/plain") != 0 &&
            strcmp(out, "application/octet-stream") != 0)
            return;
        out[0] = '\0';
    }
    /* no usable Content-Type: the manifest's own mediaType field, when the body is at hand */
    if (rq->len == 0)
        return;
    json_object *root = json_tokener_parse((const char *)rq->buf), *mt, *m;
    if (root && json_object_object_get_ex(root, "mediaType", &mt))
        snprintf(out, 256, "%s", json_object_get_string(mt));
    else if (root && json_object_object_get_ex(root, "manifests", &m))
        strcpy(out, "application/vnd.oci.image.index.v1+json");
    else if (root)
        strcpy(out, "application/vnd.oci.image.manifest.v1+json");
    json_object_put(root);
}

/* One endpoint: 1 resolved, 0 not found there, < 0 an error. */
static int
resolve_at(reg_client_t *c, reg_ep_t *ep, berth_descriptor_t *out, berth_error_t **err)
{
    const char *what = c->ref.digest[0] ? c->ref.digest : c->ref.tag;
    char scope[700];
    scope_pull(c, scope, sizeof scope);
    for (int get = 0; get < 2; get++) {
        reg_rq_t rq;
        reg_rq_init(&rq, c, ep, get ? "GET" : "HEAD",
                    reg_url(c, ep, "/%s/manifests/%s", c->ref.repo, what), scope);
        rq.extra[rq.n_extra++] = manifest_accept;
        rq.follow = 1;
        rq.limit = (size_t)c->cfg->manifest_limit;
        int rc = rq.url ? reg_rq_do(&rq, err)
                        : c->api->error_make(err, BERTH_ENOMEM, "resolve: out of memory");
        if (rc < 0) {
            reg_rq_free(&rq);
            return rc;
        }
        if (rq.status == 404) {
            reg_rq_free(&rq);
            return 0;
        }
        if (rq.status != 200) {
            rc = reg_rq_status_error(&rq, err);
            reg_rq_free(&rq);
            return rc;
        }
        if (!get && (rq.digest == NULL || rq.clen < 0)) {
            reg_rq_free(&rq); /* HEAD told too little: GET the manifest and digest it */
            continue;
        }
        memset(out, 0, sizeof *out);
        media_type_of(&rq, out->media_type);
        if (get) {
            out->size = (int64_t)rq.len;
            if (c->ref.digest[0] && !digest_matches(c->ref.digest, rq.buf, rq.len)) {
                rc = c->api->error_make(err, BERTH_EPRECONDITION,
                                        "%s: manifest does not match its digest", c->ref.name);
                reg_rq_free(&rq);
                return rc;
            }
            if (c->ref.digest[0])
                snprintf(out->digest, sizeof out->digest, "%s", c->ref.digest);
            else
                sha256_digest(rq.buf, rq.len, out->digest);
        } else {
            out->size = rq.clen;
            snprintf(out->digest, sizeof out->digest, "%s", rq.digest);
            if (c->ref.digest[0] && strcmp(rq.digest, c->ref.digest) != 0) {
                rc = c->api->error_make(err, BERTH_EPRECONDITION,
                                        "%s: the registry answered digest %s", c->ref.name,
                                        rq.digest);
                reg_rq_free(&rq);
                return rc;
            }
        }
        if (out->media_type[0] == '\0')
            strcpy(out->media_type, "application/vnd.oci.image.manifest.v1+json");
        reg_rq_free(&rq);
        return 1;
    }
    return 0;
}

int
reg_resolve(reg_client_t *c, berth_descriptor_t *out, berth_error_t **err)
{
    berth_error_t *last = NULL;
    int tried = 0;
    for (size_t i = 0; i < c->n_eps; i++) {
        reg_ep_t *ep = &c->eps[i];
        if (!(ep->caps & REG_CAP_RESOLVE))
            continue;
        tried++;
        berth_error_t *e = NULL;
        int rc = resolve_at(c, ep, out, &e);
        if (rc == 1) {
            if (last)
                c->api->error_free(last);
            c->resolved = 1;
            c->resolved_desc = *out;
            c->resolved_ep = i;
            c->api->log(c->log, BERTH_LOG_DEBUG, "resolved %s at %s://%s: %s", c->ref.name,
                        ep->scheme, ep->authority, out->digest);
            return 0;
        }
        if (rc < 0) {
            c->api->log(c->log, BERTH_LOG_DEBUG, "resolve %s at %s: %s", c->ref.name, ep->authority,
                        e ? e->message : "");
            if (last)
                c->api->error_free(last);
            last = e;
        }
    }
    if (last != NULL) {
        if (err)
            *err = last;
        else
            c->api->error_free(last);
        return last->code;
    }
    if (!tried)
        return c->api->error_make(err, BERTH_ENOTFOUND, "%s: no registry endpoint can resolve it",
                                  c->ref.name);
    return c->api->error_make(err, BERTH_ENOTFOUND, "%s: not found", c->ref.name);
}

int
reg_fetch_manifest(reg_client_t *c, const berth_descriptor_t *desc, uint8_t **data, size_t *len,
                   berth_error_t **err)
{
    if (desc == NULL && !c->resolved)
        return c->api->error_make(err, BERTH_EPRECONDITION, "%s: not resolved", c->ref.name);
    const berth_descriptor_t *d = desc ? desc : &c->resolved_desc;
    if (d->size > c->cfg->manifest_limit)
        return c->api->error_make(err, BERTH_ERESOURCE,
                                  "manifest %s: %lld bytes, over the limit of %lld", d->digest,
                                  (long long)d->size, (long long)c->cfg->manifest_limit);
    char scope[700], accept[512];
    scope_pull(c, scope, sizeof scope);
    snprintf(accept, sizeof accept, "%s, %s", manifest_accept,
             d->media_type[0] ? d->media_type : "*/*");
    berth_error_t *last = NULL;
    for (size_t i = 0; i < c->n_eps; i++) {
        reg_ep_t *ep = &c->eps[i];
        if (!(ep->caps & REG_CAP_PULL))
            continue;
        berth_error_t *e = NULL;
        reg_rq_t rq;
        reg_rq_init(&rq, c, ep, "GET", reg_url(c, ep, "/%s/manifests/%s", c->ref.repo, d->digest),
                    scope);
        rq.extra[rq.n_extra++] = accept;
        rq.follow = 1;
        rq.limit = (size_t)c->cfg->manifest_limit;
        int rc = reg_rq_do(&rq, &e);
        if (rc == 0 && rq.status == 404) {
            reg_rq_free(&rq);
            continue;
        }
        if (rc == 0 && rq.status != 200)
            rc = reg_rq_status_error(&rq, &e);
        if (rc == 0 && d->size > 0 && (int64_t)rq.len != d->size)
            rc = c->api->error_make(&e, BERTH_EPRECONDITION,
                                    "manifest %s: got %zu bytes, expected %lld", d->digest, rq.len,
                                    (long long)d->size);
        if (rc == 0 && !digest_matches(d->digest, rq.buf, rq.len))
            rc = c->api->error_make(&e, BERTH_EPRECONDITION,
                                    "manifest %s: content does not match its digest", d->digest);
        if (rc == 0) {
            if (last)
                c->api->error_free(last);
            *data = rq.buf ? rq.buf : calloc(1, 1);
            *len = rq.len;
            rq.buf = NULL;
            reg_rq_free(&rq);
            return 0;
        }
        reg_rq_free(&rq);
        if (last)
            c->api->error_free(last);
        last = e;
    }
    if (last) {
        int code = last->code;
        if (err)
            *err = last;
        else
            c->api->error_free(last);
        return code;
    }
    return c->api->error_make(err, BERTH_ENOTFOUND, "manifest %s: not found", d->digest);
}
