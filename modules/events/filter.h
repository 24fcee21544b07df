/* SPDX-License-Identifier: Apache-2.0 */
/*
 * containerd's filter syntax (github.com/containerd/containerd/filters) over event envelopes:
 *   selectors := selector ("," selector)*      all must hold
 *   selector  := fieldpath [operator value]    no operator: the field is present and non-empty
 *   fieldpath := field ("." field)*            field: [A-Za-z0-9_]+ or "quoted"
 *   operator  := "==" | "!=" | "~="            ~= is a regular expression (POSIX extended here)
 *   value     := "quoted" | [^\s,]+            ~= also accepts /quoted/ and |quoted|
 * A list of filter strings matches when any one of them does; an empty list matches everything.
 */
#ifndef BERTH_EVENTS_FILTER_H
#define BERTH_EVENTS_FILTER_H

#include <stddef.h>

#define EVFILTER_MAX_FILTERS 64
#define EVFILTER_MAX_LEN 4096

typedef struct evfilter evfilter_t;

/* Compiles filters (NULL-terminated, may be NULL). On a parse error returns -1 and writes containerd's
 * message ("filters: parse error: [topic== >|<]: expected value or quoted") into errbuf. */
int evfilter_parse(const char *const *filters, evfilter_t **out, char *errbuf, size_t errlen);
/* Whether an envelope with this namespace and topic passes. A NULL filter passes everything. */
int evfilter_match(const evfilter_t *f, const char *namespace_, const char *topic);
void evfilter_free(evfilter_t *f);

#endif
