/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry authentication as containerd's docker authorizer (core/remotes/docker/authorizer.go and
 * auth/fetch.go): a 401's WWW-Authenticate challenges pick Bearer (preferred) or Basic. Credentials come
 * from the endpoint's static configuration, else the client's callback (asked once per endpoint host),
 * else none. Bearer with a secret POSTs the OAuth2 form (grant_type=password, or refresh_token for an
 * identity token) and falls back to GET with Basic credentials where the token server refuses POST;
 * without a secret it GETs an anonymous token. Tokens are cached per endpoint and scope for the client's
 * life (or until expires_in).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "regclient.h"

static reg_token_t *
token_find(reg_client_t *c, const char *key)
{
    for (size_t i = 0; i < c->n_tokens; i++)
        if (strcmp(c->tokens[i].key, key) == 0)
            return &c->tokens[i];
    return NULL;
}

static int
token_put(reg_client_t *c, const char *key, char *header, time_t expires)
{
    reg_token_t *t = token_find(c, key);
    if (t == NULL) {
        reg_token_t *grown = realloc(c->tokens, (c->n_tokens + 1) * sizeof *grown);
        if (grown == NULL) {
            free(header);
            return -1;
        }
        c->tokens = grown;
        t = &c->tokens[c->n_tokens++];
        if ((t->key = strdup(key)) == NULL) {
            c->n_tokens--;
            free(header);
            return -1;
        }
    } else {
        free(t->header);
    }
    t->header = header;
    t->expires = expires;
    return 0;
}

const char *
reg_auth_header(reg_client_t *c, reg_ep_t *ep, const char *scope)
{
    char key[1200];
    if (scope) {
        snprintf(key, sizeof key, "%s %s", ep->authority, scope);
        reg_token_t *t = token_find(c, key);
        if (t && (t->expires == 0 || t->expires > time(NULL)))
            return t->header;
    }
    reg_token_t *basic = token_find(c, ep->authority);
    return basic ? basic->header : NULL;
}

void
reg_auth_free(reg_client_t *c)
{
    for (size_t i = 0; i < c->n_tokens; i++) {
        free(c->tokens[i].key);
        free(c->tokens[i].header);
    }
    free(c->tokens);
    for (size_t i = 0; i < c->n_creds; i++) {
        free(c->creds_cache[i].username);
        free(c->creds_cache[i].secret);
    }
    free(c->creds_cache);
}

/* Credentials for the endpoint: *user and *secret point into the config or the cache (NULL: none). */
static int
get_creds(reg_rq_t *rq, const char **user, const char **secret, berth_error_t **err)
{
    reg_client_t *c = rq->c;
    reg_ep_t *ep = rq->ep;
    *user = *secret = NULL;
    if (ep->cfg->username || ep->cfg->token) {
        *user = ep->cfg->username;
        *secret = ep->cfg->username ? ep->cfg->password : ep->cfg->token;
        return 0;
    }
    for (size_t i = 0; i < c->n_creds; i++)
        if (strcmp(c->creds_cache[i].authority, ep->authority) == 0) {
            *user = c->creds_cache[i].username;
            *secret = c->creds_cache[i].secret;
            return 0;
        }
    if (c->creds == NULL)
        return 0;
    char *u = NULL, *s = NULL;
    int rc = c->creds(c->creds_user, ep->authority, c->ref.name,
                      (const char *const *)rq->challenges, rq->n_challenges, &u, &s, err);
    if (rc < 0) {
        free(u);
        free(s);
        return rc;
    }
    reg_cred_t *grown = realloc(c->creds_cache, (c->n_creds + 1) * sizeof *grown);
    if (grown == NULL) {
        free(u);
        free(s);
        return c->api->error_make(err, BERTH_ENOMEM, "credentials: out of memory");
    }
    c->creds_cache = grown;
    reg_cred_t *cr = &c->creds_cache[c->n_creds++];
    snprintf(cr->authority, sizeof cr->authority, "%s", ep->authority);
    cr->username = (u && *u) ? u : (free(u), NULL);
    cr->secret = (s && *s) ? s : (free(s), NULL);
    *user = cr->username;
    *secret = cr->secret;
    return 0;
}

static char *
basic_header(const char *user, const char *secret)
{
    size_t n = strlen(user) + strlen(secret) + 1;
    char *plain = malloc(n + 1);
    char *b64 = malloc(4 * ((n + 2) / 3) + 1);
    char *h = NULL;
    if (plain && b64) {
        snprintf(plain, n + 1, "%s:%s", user, secret);
        libcrypto.EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)plain, (int)n);
        if (asprintf(&h, "Authorization: Basic %s", b64) < 0)
            h = NULL;
    }
    free(plain);
    free(b64);
    return h;
}

/* The scopes to ask for: the request's and the challenge's, space-separated, without duplicates. */
static void
merge_scopes(const char *mine, const char *theirs, char *out, size_t n)
{
    snprintf(out, n, "%s", mine ? mine : "");
    if (theirs == NULL)
        return;
    char *copy = strdup(theirs), *save = NULL;
    for (char *s = copy ? strtok_r(copy, " ", &save) : NULL; s; s = strtok_r(NULL, " ", &save)) {
        char padded[1200], hay[2600];
        snprintf(padded, sizeof padded, " %.1100s ", s);
        snprintf(hay, sizeof hay, " %.2500s ", out);
        if (strstr(hay, padded) == NULL && strlen(out) + strlen(s) + 2 < n) {
            if (*out)
                strcat(out, " ");
            strcat(out, s);
        }
    }
    free(copy);
}

static int
append_param(CURL *h, char **q, const char *name, const char *value)
{
    char *esc = libcurl.curl_easy_escape(h, value, 0), *next = NULL;
    if (esc == NULL)
        return -1;
    int rc = asprintf(&next, "%s%s%s=%s", *q ? *q : "", *q && **q ? "&" : "", name, esc);
    libcurl.curl_free(esc);
    if (rc < 0)
        return -1;
    free(*q);
    *q = next;
    return 0;
}

/* service and each scope as query or form parameters */
static int
token_params(CURL *h, char **q, const reg_challenge_t *ch, const char *scopes)
{
    if (ch->service && append_param(h, q, "service", ch->service) < 0)
        return -1;
    char *copy = strdup(scopes), *save = NULL;
    if (copy == NULL)
        return -1;
    for (char *s = strtok_r(copy, " ", &save); s; s = strtok_r(NULL, " ", &save))
        if (append_param(h, q, "scope", s) < 0) {
            free(copy);
            return -1;
        }
    free(copy);
    return 0;
}

static int
parse_token(reg_rq_t *rq, char **token, time_t *expires, berth_error_t **err)
{
    json_object *root = rq->buf ? json_tokener_parse((const char *)rq->buf) : NULL, *v;
    const char *t = NULL;
    if (root && json_object_object_get_ex(root, "access_token", &v))
        t = json_object_get_string(v);
    if ((t == NULL || *t == '\0') && root && json_object_object_get_ex(root, "token", &v))
        t = json_object_get_string(v);
    if (t == NULL || *t == '\0') {
        json_object_put(root);
        return rq->c->api->error_make(err, BERTH_EUNAUTH, "token from %s: no token in the answer",
                                      rq->url);
    }
    *expires = 0;
    if (json_object_object_get_ex(root, "expires_in", &v) && json_object_get_int64(v) > 0)
        *expires = time(NULL) + json_object_get_int64(v) - 5;
    if (asprintf(token, "Authorization: Bearer %s", t) < 0)
        *token = NULL;
    json_object_put(root);
    return *token ? 0 : rq->c->api->error_make(err, BERTH_ENOMEM, "token: out of memory");
}

/* One token request; 0 with *status set (and *token on 200), < 0 on a transport error. */
static int
token_request(reg_rq_t *orig, const reg_challenge_t *ch, const char *scopes, const char *user,
              const char *secret, int post, long *status, char **token, time_t *expires,
              berth_error_t **err)
{
    reg_client_t *c = orig->c;
    reg_ep_t ep = *orig->ep; /* the endpoint's TLS settings and headers, towards the realm */
    ep.http_fallback = 0;
    ep.is_mirror = 0;
    CURL *esc = libcurl.curl_easy_init();
    char *params = NULL, *url = NULL, *auth = NULL;
    int rc = esc ? token_params(esc, &params, ch, scopes) : -1;
    if (rc == 0 && post) {
        if (user)
            rc = append_param(esc, &params, "grant_type", "password") ||
                 append_param(esc, &params, "username", user) ||
                 append_param(esc, &params, "password", secret);
        else
            rc = append_param(esc, &params, "grant_type", "refresh_token") ||
                 append_param(esc, &params, "refresh_token", secret);
        rc = rc || append_param(esc, &params, "client_id", "containerd-client") ? -1 : 0;
    }
    if (rc == 0 && (post ? (url = strdup(ch->realm)) == NULL
                         : asprintf(&url, "%s%s%s", ch->realm, strchr(ch->realm, '?') ? "&" : "?",
                                    params ? params : "") < 0))
        rc = -1;
    if (esc)
        libcurl.curl_easy_cleanup(esc);
    if (rc < 0) {
        free(params);
        free(url);
        return c->api->error_make(err, BERTH_ENOMEM, "token request: out of memory");
    }
    reg_rq_t rq;
    reg_rq_init(&rq, c, &ep, post ? "POST" : "GET", url, NULL);
    rq.no_auth = 1;
    rq.follow = 1;
    rq.limit = 1 << 20;
    if (post) {
        rq.body = (const uint8_t *)params;
        rq.body_len = strlen(params);
        rq.extra[rq.n_extra++] = "Content-Type: application/x-www-form-urlencoded; charset=utf-8";
    } else if (user && secret && (auth = basic_header(user, secret)) != NULL) {
        rq.extra[rq.n_extra++] = auth;
    }
    rc = reg_rq_do(&rq, err);
    if (rc == 0) {
        *status = rq.status;
        if (rq.status == 200)
            rc = parse_token(&rq, token, expires, err);
        else if (!post || !(rq.status == 404 || rq.status == 401 || rq.status == 400 ||
                            (rq.status == 405 && user)))
            rc = reg_rq_status_error(&rq, err);
    }
    reg_rq_free(&rq);
    free(params);
    free(auth);
    return rc;
}

static int
bearer(reg_rq_t *rq, const reg_challenge_t *ch, berth_error_t **err)
{
    reg_client_t *c = rq->c;
    if (ch->realm == NULL ||
        (strncmp(ch->realm, "https://", 8) && strncmp(ch->realm, "http://", 7)))
        return c->api->error_make(err, BERTH_EUNAUTH, "%s: bearer challenge without a usable realm",
                                  rq->url);
    const char *user, *secret;
    int rc = get_creds(rq, &user, &secret, err);
    if (rc < 0)
        return rc;
    char scopes[2400];
    merge_scopes(rq->scope, ch->scope, scopes, sizeof scopes);
    long status = 0;
    char *token = NULL;
    time_t expires = 0;
    if (secret) {
        rc = token_request(rq, ch, scopes, user, secret, 1, &status, &token, &expires, err);
        if (rc == 0 && status != 200) /* no POST support: GET with Basic credentials */
            rc = token_request(rq, ch, scopes, user, secret, 0, &status, &token, &expires, err);
        if (rc < 0)
            return c->api->error_wrap(err, "failed to fetch oauth token");
    } else {
        rc = token_request(rq, ch, scopes, NULL, NULL, 0, &status, &token, &expires, err);
        if (rc < 0)
            return c->api->error_wrap(err, "failed to fetch anonymous token");
    }
    char key[1200];
    snprintf(key, sizeof key, "%s %s", rq->ep->authority, rq->scope ? rq->scope : "");
    if (token_put(c, key, token, expires) < 0)
        return c->api->error_make(err, BERTH_ENOMEM, "token: out of memory");
    return 0;
}

static int
basic(reg_rq_t *rq, berth_error_t **err)
{
    reg_client_t *c = rq->c;
    const char *user, *secret;
    int rc = get_creds(rq, &user, &secret, err);
    if (rc < 0)
        return rc;
    if (user == NULL || secret == NULL)
        return c->api->error_make(err, BERTH_EUNAUTH,
                                  "%s: basic authentication needs a username and password",
                                  rq->ep->authority);
    char *h = basic_header(user, secret);
    if (h == NULL || token_put(c, rq->ep->authority, h, 0) < 0)
        return c->api->error_make(err, BERTH_ENOMEM, "basic auth: out of memory");
    return 0;
}

int
reg_auth_handle(reg_rq_t *rq, berth_error_t **err)
{
    reg_challenge_t ch[REG_MAX_CHALLENGES * 2];
    size_t n = 0;
    for (size_t i = 0; i < rq->n_challenges && n < sizeof ch / sizeof ch[0]; i++)
        n += reg_parse_challenges(rq->challenges[i], ch + n, sizeof ch / sizeof ch[0] - n);
    int rc = 1;
    for (size_t i = 0; rc == 1 && i < n; i++)
        if (strcmp(ch[i].scheme, "bearer") == 0)
            rc = bearer(rq, &ch[i], err);
    for (size_t i = 0; rc == 1 && i < n; i++)
        if (strcmp(ch[i].scheme, "basic") == 0)
            rc = basic(rq, err);
    reg_challenges_free(ch, n);
    if (rc == 1)
        return rq->c->api->error_make(
            err, BERTH_EUNAUTH, "%s: no supported authentication scheme in the challenge", rq->url);
    return rc;
}
