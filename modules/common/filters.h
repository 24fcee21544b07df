/* SPDX-License-Identifier: Apache-2.0 */
/*
 * containerd's filter syntax (github.com/containerd/containerd/filters), shared by the modules that filter
 * what they list or deliver (events, introspection, and later images, containers, ...):
 *   selectors := selector ("," selector)*      all must hold
 *   selector  := fieldpath [operator value]    no operator: the field is present and non-empty
 *   fieldpath := field ("." field)*            field: [A-Za-z0-9_]+ or "quoted"
 *   operator  := "==" | "!=" | "~="            ~= is a regular expression (POSIX extended here)
 *   value     := "quoted" | [^\s,]+            ~= also accepts /quoted/ and |quoted|
 * A list of filter strings matches when any one of them does; an empty list matches everything.
 */
#ifndef BERTH_MODULES_FILTERS_H
#define BERTH_MODULES_FILTERS_H

#include <stddef.h>

#define FILTERS_MAX_FILTERS 64
#define FILTERS_MAX_LEN 4096

typedef struct filters filters_t;

/* The object's value at a field path, or NULL when absent (an empty value counts as absent). */
typedef const char *(*filters_field_fn)(void *object, const char *const *path, int npath);

/* Compiles filters (NULL-terminated, may be NULL). On a parse error returns -1 and writes containerd's
 * message ("filters: parse error: [topic==]: expected value or quoted") into errbuf. */
int filters_parse(const char *const *filters, filters_t **out, char *errbuf, size_t errlen);
/* The same over a counted array (protobuf-c's repeated strings are not NULL-terminated). */
int filters_parse_n(const char *const *filters, size_t n, filters_t **out, char *errbuf,
                    size_t errlen);
/* Whether the object passes. A NULL filter passes everything. */
int filters_match(const filters_t *f, filters_field_fn field, void *object);
void filters_free(filters_t *f);

#endif
