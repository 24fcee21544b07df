/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers used across the core: abort-on-OOM allocation, cleanup attributes, string vectors. */
#ifndef BERTH_CORE_UTIL_H
#define BERTH_CORE_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

/* A daemon cannot recover meaningfully from OOM; these abort with a message instead of returning NULL. */
void *berth__xmalloc(size_t n);
void *berth__xcalloc(size_t n, size_t size);
void *berth__xrealloc(void *p, size_t n);
char *berth__xstrdup(const char *s);
char *berth__xstrndup(const char *s, size_t n);
char *berth__xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *berth__xvasprintf(const char *fmt, va_list ap);

/* NULL-terminated string vectors, owned (strings and array freed by berth__strv_free). */
size_t berth__strv_len(const char *const *v);
void berth__strv_push(char ***v, const char *s);
int berth__strv_contains(const char *const *v, const char *s);
/* The type a `requires` entry names: without the '?' that marks it optional. */
const char *berth__required_type(const char *entry);
/* 1 when `requires` lists type, required or optional. */
int berth__requires_type(const char *const *requires, const char *type);
char **berth__strv_dup(const char *const *v);
void berth__strv_free(char **v);

static inline void
berth__cleanup_free(void *p)
{
    free(*(void **)p);
}
static inline void
berth__cleanup_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}
#define cleanup_free __attribute__((cleanup(berth__cleanup_free)))
#define cleanup_close __attribute__((cleanup(berth__cleanup_close)))

#define BERTH_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
