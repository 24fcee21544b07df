/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image references as docker's reference package reads them (ParseDockerRef): the first path component is
 * a registry host when it has a '.' or ':', is "localhost" or has an upper-case letter; otherwise the name
 * is on docker.io, where one-component names live under library/. No tag and no digest means :latest.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "registry.h"

#define NAME_MAX_TOTAL 255 /* docker's NameTotalLengthMax */

static int
bad(const berth_core_api_t *api, berth_error_t **err, const char *ref, const char *why)
{
    return api->error_make(err, BERTH_EINVAL, "reference \"%s\": %s", ref, why);
}

/* path-component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static int
valid_component(const char *s, size_t n)
{
    if (n == 0 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (islower(ch) || isdigit(ch))
            continue;
        if (ch == '.' || ch == '_') {
            size_t run = 1;
            while (i + run < n && s[i + run] == ch)
                run++;
            if (ch == '.' && run > 1)
                return 0;
            if (ch == '_' && run > 2)
                return 0;
            i += run - 1;
            continue;
        }
        if (ch == '-')
            continue; /* -+ : any run */
        return 0;
    }
    return 1;
}

/* A domain: components of [A-Za-z0-9-] joined by '.', an optional :port; or an IPv6 literal in []. */
static int
valid_host(const char *s)
{
    const char *p = s;
    if (*p == '[') {
        const char *end = strchr(p, ']');
        if (end == NULL || end == p + 1)
            return 0;
        for (const char *q = p + 1; q < end; q++)
            if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.')
                return 0;
        p = end + 1;
    } else {
        size_t label = 0;
        for (; *p && *p != ':'; p++) {
            if (*p == '.') {
                if (label == 0)
                    return 0;
                label = 0;
            } else if (isalnum((unsigned char)*p) || *p == '-') {
                label++;
            } else {
                return 0;
            }
        }
        if (label == 0)
            return 0;
    }
    if (*p == ':') {
        p++;
        if (*p == '\0')
            return 0;
        for (; *p; p++)
            if (!isdigit((unsigned char)*p))
                return 0;
    }
    return *p == '\0';
}

/* tag: [\w][\w.-]{0,127} */
static int
valid_tag(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 128 || t[0] == '.' || t[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)t[i];
        if (!isalnum(ch) && ch != '_' && ch != '.' && ch != '-')
            return 0;
    }
    return 1;
}

/* algorithm:hex; sha256 and sha512 must have their exact lengths of lower-case hex */
static int
valid_digest(const char *d)
{
    const char *colon = strchr(d, ':');
    if (colon == NULL || colon == d || colon[1] == '\0')
        return 0;
    for (const char *p = d; p < colon; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && !strchr("+._-", *p))
            return 0;
    size_t hex = strlen(colon + 1);
    for (const char *p = colon + 1; *p; p++)
        if (!isdigit((unsigned char)*p) && !(*p >= 'a' && *p <= 'f'))
            return 0;
    size_t alg = (size_t)(colon - d);
    if (alg == 6 && strncmp(d, "sha256", 6) == 0)
        return hex == 64;
    if (alg == 6 && strncmp(d, "sha512", 6) == 0)
        return hex == 128;
    return hex >= 32;
}

static int
split_host(const char *name, size_t *host_len)
{
    const char *slash = strchr(name, '/');
    if (slash == NULL)
        return 0;
    size_t n = (size_t)(slash - name);
    int is_host = memchr(name, '.', n) || memchr(name, ':', n) ||
                  (n == 9 && strncmp(name, "localhost", 9) == 0);
    for (size_t i = 0; !is_host && i < n; i++)
        if (isupper((unsigned char)name[i]))
            is_host = 1;
    *host_len = n;
    return is_host;
}

static int
check_repo(const berth_core_api_t *api, const char *ref, const char *repo, berth_error_t **err)
{
    for (const char *p = repo; *p; p++)
        if (isupper((unsigned char)*p))
            return bad(api, err, ref, "repository name must be lowercase");
    const char *c = repo;
    for (;;) {
        const char *slash = strchr(c, '/');
        size_t n = slash ? (size_t)(slash - c) : strlen(c);
        if (!valid_component(c, n))
            return bad(api, err, ref, "invalid reference format");
        if (slash == NULL)
            break;
        c = slash + 1;
    }
    return 0;
}

int
reg_ref_parse(const berth_core_api_t *api, const char *ref, reg_ref_t *out, berth_error_t **err)
{
    memset(out, 0, sizeof *out);
    if (ref == NULL || *ref == '\0')
        return api->error_make(err, BERTH_EINVAL,
                               "reference \"\": repository name must have at "
                               "least one component");
    char buf[1024];
    if (strlen(ref) >= sizeof buf)
        return bad(api, err, ref, "repository name must not be more than 255 characters");
    strcpy(buf, ref);

    char *at = strchr(buf, '@');
    if (at != NULL) {
        *at = '\0';
        if (!valid_digest(at + 1))
            return bad(api, err, ref, "invalid reference format");
        snprintf(out->digest, sizeof out->digest, "%s", at + 1);
    }
    char *last_slash = strrchr(buf, '/');
    char *colon = strrchr(last_slash ? last_slash : buf, ':');
    if (colon != NULL) {
        *colon = '\0';
        if (!valid_tag(colon + 1))
            return bad(api, err, ref, "invalid reference format");
        snprintf(out->tag, sizeof out->tag, "%s", colon + 1);
    }
    if (buf[0] == '\0')
        return bad(api, err, ref, "invalid reference format");

    size_t host_len = 0;
    const char *remainder = buf;
    if (split_host(buf, &host_len)) {
        if (host_len >= sizeof out->host)
            return bad(api, err, ref, "invalid reference format");
        memcpy(out->host, buf, host_len);
        out->host[host_len] = '\0';
        if (!valid_host(out->host))
            return bad(api, err, ref, "invalid reference format");
        remainder = buf + host_len + 1;
    } else {
        strcpy(out->host, "docker.io");
    }
    if (strcmp(out->host, "index.docker.io") == 0)
        strcpy(out->host, "docker.io");
    if (strlen(remainder) + 8 >= sizeof out->repo)
        return bad(api, err, ref, "repository name must not be more than 255 characters");
    if (strcmp(out->host, "docker.io") == 0 && strchr(remainder, '/') == NULL)
        snprintf(out->repo, sizeof out->repo, "library/%.500s", remainder);
    else if (strlen(remainder) < sizeof out->repo)
        strcpy(out->repo, remainder);
    else
        return bad(api, err, ref, "repository name must not be more than 255 characters");
    if (check_repo(api, ref, out->repo, err) < 0)
        return BERTH_EINVAL;
    if (strlen(out->host) + 1 + strlen(out->repo) > NAME_MAX_TOTAL)
        return bad(api, err, ref, "repository name must not be more than 255 characters");

    if (out->tag[0] == '\0' && out->digest[0] == '\0')
        strcpy(out->tag, "latest");
    int n = snprintf(out->name, sizeof out->name, "%s/%s%s%s%s%s", out->host, out->repo,
                     out->tag[0] ? ":" : "", out->tag, out->digest[0] ? "@" : "", out->digest);
    if (n < 0 || (size_t)n >= sizeof out->name)
        return bad(api, err, ref, "invalid reference format");
    return 0;
}
