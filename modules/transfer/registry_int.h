/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry client's internal pieces, shared by its files and its unit tests: header parsing
 * (WWW-Authenticate, Retry-After) and config helpers.
 */
#ifndef BERTH_TRANSFER_REGISTRY_INT_H
#define BERTH_TRANSFER_REGISTRY_INT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "registry.h"

/* One challenge of a WWW-Authenticate header (RFC 7235): its scheme, lower-cased ("bearer", "basic"),
 * and the parameters the docker authorizer uses. Strings are malloc'd (NULL when absent). */
typedef struct reg_challenge_s {
    char scheme[32];
    char *realm;
    char *service;
    char *scope;
    char *error;
} reg_challenge_t;

/* Parses one header value into up to max challenges (several per header, quoted strings with commas and
 * escapes); returns how many were parsed (a malformed tail is dropped). */
size_t reg_parse_challenges(const char *value, reg_challenge_t *out, size_t max);
void reg_challenges_free(reg_challenge_t *c, size_t n);

/* Retry-After: delay-seconds or an HTTP date, relative to now; milliseconds to wait, -1 when absent or
 * unreadable (a date in the past gives 0). */
int64_t reg_parse_retry_after(const char *value, time_t now);

void reg_config_defaults(reg_config_t *out);
/* The host's entry, else the _default entry, else NULL. */
const reg_host_t *reg_config_host(const reg_config_t *cfg, const char *name);
/* An http:// or https:// URL with a host. */
int reg_url_valid(const char *url);
/* 1 for localhost and loopback addresses (host[:port] as in references), as containerd's IsLocalhost. */
int reg_host_is_loopback(const char *host);

#endif
