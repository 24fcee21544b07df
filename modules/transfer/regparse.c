/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Header values the registry client reads: WWW-Authenticate challenges (RFC 7235, as containerd's
 * auth.ParseAuthHeader), Retry-After (RFC 9110 section 10.2.3), and the loopback test for hosts.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib_curl.h" /* curl_getdate: a response was received, so libcurl is open */

#include "registry_int.h"

static const char *
skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* token chars (RFC 7230 tchar) */
static int
tchar(int ch)
{
    return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Reads a token into a malloc'd string; *p moves past it. */
static char *
read_token(const char **p)
{
    const char *s = *p;
    while (tchar((unsigned char)**p))
        (*p)++;
    return (*p > s) ? strndup(s, (size_t)(*p - s)) : NULL;
}

/* Reads a quoted-string (with \ escapes) or a token as a parameter value. */
static char *
read_value(const char **p)
{
    if (**p != '"') {
        /* token68-ish values (base64 with '=' padding, '/') are accepted too */
        const char *s = *p;
        while (**p && **p != ',' && **p != ' ' && **p != '\t')
            (*p)++;
        return strndup(s, (size_t)(*p - s));
    }
    (*p)++;
    size_t cap = strlen(*p) + 1, n = 0;
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    while (**p && **p != '"') {
        if (**p == '\\' && (*p)[1])
            (*p)++;
        out[n++] = *(*p)++;
    }
    if (**p != '"') {
        free(out);
        return NULL; /* unterminated */
    }
    (*p)++;
    out[n] = '\0';
    return out;
}

/* 1 when p starts "token =" (an auth-param), 0 when it starts a new challenge's scheme. */
static int
starts_param(const char *p)
{
    while (tchar((unsigned char)*p))
        p++;
    p = skip_ws(p);
    return *p == '=';
}

static void
set_param(reg_challenge_t *c, const char *name, char *value)
{
    char **slot = NULL;
    if (strcasecmp(name, "realm") == 0)
        slot = &c->realm;
    else if (strcasecmp(name, "service") == 0)
        slot = &c->service;
    else if (strcasecmp(name, "scope") == 0)
        slot = &c->scope;
    else if (strcasecmp(name, "error") == 0)
        slot = &c->error;
    if (slot == NULL || *slot != NULL) {
        free(value);
        return;
    }
    *slot = value;
}

/* Parses the parameters of one challenge; returns 0, or -1 on a malformed value. */
static int
read_params(const char **pp, reg_challenge_t *c)
{
    const char *p = *pp;
    for (;;) {
        p = skip_ws(p);
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || !starts_param(p))
            break;
        char *name = read_token(&p);
        p = skip_ws(p);
        p++; /* '=' */
        p = skip_ws(p);
        char *value = read_value(&p);
        if (name == NULL || value == NULL) {
            free(name);
            free(value);
            return -1;
        }
        set_param(c, name, value);
        free(name);
    }
    *pp = p;
    return 0;
}

size_t
reg_parse_challenges(const char *value, reg_challenge_t *out, size_t max)
{
    size_t n = 0;
    const char *p = value ? value : "";
    while (n < max) {
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        char *scheme = read_token(&p);
        if (scheme == NULL || strlen(scheme) >= sizeof out[n].scheme) {
            free(scheme);
            break;
        }
        reg_challenge_t *c = &out[n];
        memset(c, 0, sizeof *c);
        for (size_t i = 0; scheme[i]; i++)
            c->scheme[i] = (char)tolower((unsigned char)scheme[i]);
        free(scheme);
        if (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t') {
            reg_challenges_free(c, 1);
            break;
        }
        if (read_params(&p, c) < 0) {
            reg_challenges_free(c, 1);
            break;
        }
        n++;
    }
    return n;
}

void
reg_challenges_free(reg_challenge_t *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(c[i].realm);
        free(c[i].service);
        free(c[i].scope);
        free(c[i].error);
        memset(&c[i], 0, sizeof c[i]);
    }
}

int64_t
reg_parse_retry_after(const char *value, time_t now)
{
    if (value == NULL)
        return -1;
    const char *p = skip_ws(value);
    if (*p == '\0')
        return -1;
    if (isdigit((unsigned char)*p)) {
        char *end;
        unsigned long long s = strtoull(p, &end, 10);
        end = (char *)skip_ws(end);
        if (*end != '\0')
            return -1;
        if (s > 86400)
            s = 86400;
        return (int64_t)s * 1000;
    }
    time_t t = libcurl.curl_getdate(p, NULL);
    if (t == (time_t)-1)
        return -1;
    return t > now ? (int64_t)(t - now) * 1000 : 0;
}

int
reg_host_is_loopback(const char *host)
{
    char h[256];
    const char *s = host;
    size_t n;
    if (*s == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL)
            return 0;
        s++;
        n = (size_t)(end - s);
    } else {
        const char *colon = strchr(s, ':');
        /* a bare IPv6 address has several colons: take it whole */
        n = (colon && strchr(colon + 1, ':') == NULL) ? (size_t)(colon - s) : strlen(s);
    }
    if (n >= sizeof h)
        return 0;
    memcpy(h, s, n);
    h[n] = '\0';
    if (strcasecmp(h, "localhost") == 0)
        return 1;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, h, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, h, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}
