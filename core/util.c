/* SPDX-License-Identifier: Apache-2.0 */
#include "util.h"

#include <stdio.h>
#include <string.h>

static void
oom(size_t n)
{
    fprintf(stderr, "berthd: out of memory allocating %zu bytes\n", n);
    abort();
}

void *
berth__xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *
berth__xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom(n * size);
    return p;
}

void *
berth__xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

char *
berth__xstrdup(const char *s)
{
    return berth__xstrndup(s, strlen(s));
}

char *
berth__xstrndup(const char *s, size_t n)
{
    char *p = berth__xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
berth__xvasprintf(const char *fmt, va_list ap)
{
    char *out = NULL;
    if (vasprintf(&out, fmt, ap) < 0)
        oom(strlen(fmt));
    return out;
}

char *
berth__xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = berth__xvasprintf(fmt, ap);
    va_end(ap);
    return out;
}

size_t
berth__strv_len(const char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

void
berth__strv_push(char ***v, const char *s)
{
    size_t n = berth__strv_len((const char *const *)*v);
    *v = berth__xrealloc(*v, (n + 2) * sizeof(char *));
    (*v)[n] = berth__xstrdup(s);
    (*v)[n + 1] = NULL;
}

int
berth__strv_contains(const char *const *v, const char *s)
{
    for (size_t i = 0; v && v[i]; i++)
        if (strcmp(v[i], s) == 0)
            return 1;
    return 0;
}

char **
berth__strv_dup(const char *const *v)
{
    size_t n = berth__strv_len(v);
    char **out = berth__xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        out[i] = berth__xstrdup(v[i]);
    return out;
}

void
berth__strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

const char *
berth__required_type(const char *entry)
{
    return entry[0] == '?' ? entry + 1 : entry;
}

int
berth__requires_type(const char *const *requires, const char *type)
{
    for (size_t i = 0; requires && requires[i]; i++)
        if (strcmp(berth__required_type(requires[i]), type) == 0)
            return 1;
    return 0;
}
