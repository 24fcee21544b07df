/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry client's state and its HTTP engine, shared by registry.c (requests, resolve, fetch),
 * regauth.c (challenges, tokens) and regpush.c (uploads).
 */
#ifndef BERTH_TRANSFER_REGCLIENT_H
#define BERTH_TRANSFER_REGCLIENT_H

#include <time.h>

#include "lib_crypto.h" /* libcurl and libcrypto: opened on first use (reg_client_new) */
#include "lib_curl.h"
#include "registry.h"
#include "registry_int.h"

#define REG_MAX_CHALLENGES 8
#define REG_ERRBODY_MAX 4096

/* One endpoint as requests see it: a mirror or the upstream, with its URL split. */
typedef struct reg_ep_s {
    const reg_endpoint_t *cfg; /* its configuration; a zeroed default when none */
    char scheme[8];            /* "https" or "http" */
    char authority[300];       /* host[:port] */
    char path[1024];           /* API root: "/v2", or the override path ("" = the server root) */
    unsigned caps;
    int skip_verify;
    int http_fallback; /* loopback without config: https first, http when TLS fails (containerd) */
    int is_mirror;
    char *ca_pem; /* the system's CAs plus cfg->ca_file, built on first use */
    size_t ca_len;
} reg_ep_t;

typedef struct reg_cred_s {
    char authority[300];
    char *username, *secret;
} reg_cred_t;

typedef struct reg_token_s {
    char *key;    /* "<authority> <scope>", or "<authority>" for Basic */
    char *header; /* "Authorization: Bearer ..." */
    time_t expires;
} reg_token_t;

struct reg_client_s {
    const berth_core_api_t *api;
    const reg_config_t *cfg;
    reg_config_t dflt_cfg;
    reg_ref_t ref;
    reg_creds_fn creds;
    void *creds_user;
    char **headers;
    size_t n_headers;
    const berth_logger_t *log;
    reg_endpoint_t none; /* the configuration of an unconfigured endpoint */
    reg_ep_t *eps;
    size_t n_eps;
    CURLSH *share;
    reg_cred_t *creds_cache;
    size_t n_creds;
    reg_token_t *tokens;
    size_t n_tokens;
    int resolved;
    berth_descriptor_t resolved_desc;
    size_t resolved_ep;
};

/* One HTTP exchange: what to send and what came back. */
typedef struct reg_rq_s {
    reg_client_t *c;
    reg_ep_t *ep;
    const char *method; /* GET HEAD POST PUT PATCH DELETE */
    char *url;          /* malloc'd */
    const char *scope;  /* the auth scope ("repository:x:pull") */
    const char *extra[8];
    size_t n_extra;
    int follow;  /* follow redirects (GET of blobs and manifests) */
    int no_auth; /* a token request: no cached auth, no 401 handling */
    /* request body: memory, or read through a reg_read_fn from read_off for read_len bytes */
    const uint8_t *body;
    size_t body_len;
    reg_read_fn read;
    void *read_user;
    int64_t read_off, read_len, read_pos;
    berth_error_t *read_err;
    /* response */
    long status;
    char *location, *digest, *ctype, *content_range, *retry_after;
    int64_t clen;
    char *challenges[REG_MAX_CHALLENGES];
    size_t n_challenges;
    /* response body: buffered up to limit (error bodies up to REG_ERRBODY_MAX), or a sink */
    uint8_t *buf;
    size_t len, cap, limit;
    int too_big;
    int (*sink)(struct reg_rq_s *rq, const void *data, size_t len);
    void *sink_user;
    struct curl_slist *hdrs;
    char curl_err[CURL_ERROR_SIZE];
} reg_rq_t;

/* URL of `fmt` below the endpoint's API root ("/%s/manifests/%s"), with ?ns= for mirrors. */
char *reg_url(reg_client_t *c, reg_ep_t *ep, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A Location header made absolute against the endpoint. */
char *reg_url_abs(reg_ep_t *ep, const char *location);

void reg_rq_init(reg_rq_t *rq, reg_client_t *c, reg_ep_t *ep, const char *method, char *url,
                 const char *scope);
void reg_rq_reset_response(reg_rq_t *rq);
void reg_rq_free(reg_rq_t *rq);
/* Configures an easy handle for rq (headers with cached auth, TLS, timeouts, callbacks). */
int reg_rq_setup(reg_rq_t *rq, CURL *h, berth_error_t **err);
/* Performs rq with retries (5xx, 429, cut connections; Retry-After), the https->http fallback and one
 * round of authentication on 401. Returns 0 with rq->status set, or an error (transport failure). */
int reg_rq_do(reg_rq_t *rq, berth_error_t **err);
/* The error for an unexpected status, in containerd's words plus the registry's error message. */
int reg_rq_status_error(reg_rq_t *rq, berth_error_t **err);
/* A debug line per finished exchange: status, HTTP version, new or reused connection. */
void reg_rq_log_done(reg_rq_t *rq, CURL *h, CURLcode cc);
/* Transient transport failures worth a retry: cut connections and timeouts, not a refused connection
 * (the next endpoint is tried at once, as containerd does). */
int reg_curl_retryable(CURLcode rc);
/* Milliseconds before retry `attempt` (1-based): Retry-After when given, else 200 ms doubling to 10 s. */
int64_t reg_backoff_ms(const reg_rq_t *rq, int attempt);
void reg_sleep_ms(int64_t ms);

/* The system's CAs plus the endpoint's CA file, built once. */
int reg_ep_ca_bundle(reg_client_t *c, reg_ep_t *ep, berth_error_t **err);

/* regauth.c: answers a 401 (rq->challenges) by fetching a token or preparing Basic credentials for the
 * rq's endpoint and scope; the next reg_rq_setup sends it. */
int reg_auth_handle(reg_rq_t *rq, berth_error_t **err);
/* The cached Authorization header for the endpoint and scope, or NULL. */
const char *reg_auth_header(reg_client_t *c, reg_ep_t *ep, const char *scope);
void reg_auth_free(reg_client_t *c);

#endif
