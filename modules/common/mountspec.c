/* SPDX-License-Identifier: Apache-2.0 */
/* The io.berth.volumes label parser and the volume-name rule (see mountspec.h). */
#include "mountspec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* abi/berth/volume.h's BERTH_VOLUME_NAME_MAX (the volumes module checks they agree). */
#define NAME_MAX_BYTES 255
/* How much of a bad name or entry an error message quotes: a 10 kB label must not make a 10 kB error. */
#define QUOTE_MAX 64

static void
errf(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errbuf == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

/* s, or its first QUOTE_MAX bytes and "..." (into buf) */
static const char *
quoted(const char *s, size_t len, char *buf, size_t buflen)
{
    size_t n = len > QUOTE_MAX ? QUOTE_MAX : len;
    snprintf(buf, buflen, "%.*s%s", (int)n, s, len > QUOTE_MAX ? "..." : "");
    return buf;
}

static int
name_byte_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

int
mountspec_volume_name_check(const char *name, char *errbuf, size_t errlen)
{
    char q[QUOTE_MAX + 8];
    if (name == NULL || name[0] == '\0') {
        errf(errbuf, errlen, "volume name is empty");
        return -1;
    }
    size_t len = strlen(name);
    if (len > NAME_MAX_BYTES) {
        errf(errbuf, errlen, "volume name \"%s\" is %zu bytes long: at most %d",
             quoted(name, len, q, sizeof(q)), len, NAME_MAX_BYTES);
        return -1;
    }
    if (name[0] == '.' || name[0] == '-') {
        errf(errbuf, errlen, "volume name \"%s\" is invalid: it must not start with '.' or '-'",
             quoted(name, len, q, sizeof(q)));
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (!name_byte_ok(name[i])) {
            unsigned char c = (unsigned char)name[i];
            if (c >= 0x20 && c < 0x7f)
                errf(errbuf, errlen,
                     "volume name \"%s\" is invalid: character '%c' (only A-Z a-z 0-9 _ . - are "
                     "allowed)",
                     quoted(name, len, q, sizeof(q)), c);
            else
                errf(errbuf, errlen,
                     "volume name \"%s\" is invalid: byte 0x%02x (only A-Z a-z 0-9 _ . - are "
                     "allowed)",
                     quoted(name, len, q, sizeof(q)), c);
            return -1;
        }
    }
    return 0;
}

/*
 * Cleans an absolute path in place: "//" collapses, "." components and a trailing '/' go. 0, or -1 when it
 * has a ".." component (refused rather than resolved: the label should say what it means).
 */
static int
clean_path(char *p)
{
    char *out = p;
    const char *in = p;
    while (*in != '\0') {
        while (*in == '/')
            in++;
        if (*in == '\0')
            break;
        const char *end = strchr(in, '/');
        size_t n = end != NULL ? (size_t)(end - in) : strlen(in);
        if (n == 1 && in[0] == '.') {
            in += n;
            continue;
        }
        if (n == 2 && in[0] == '.' && in[1] == '.')
            return -1;
        *out++ = '/';
        memmove(out, in, n);
        out += n;
        in += n;
    }
    if (out == p)
        *out++ = '/';
    *out = '\0';
    return 0;
}

/* The entry [s, s+len) (blanks trimmed) as entry number idx (from 1). */
static int
parse_entry(const char *s, size_t len, size_t idx, mountspec_entry_t *e, char *errbuf,
            size_t errlen)
{
    char q[QUOTE_MAX + 8];
    const char *qe = quoted(s, len, q, sizeof(q));
    if (len == 0) {
        errf(errbuf, errlen, "entry %zu is empty", idx);
        return -1;
    }
    /* up to three ':'-separated parts */
    const char *part[4];
    size_t plen[4], np = 0;
    const char *p = s, *end = s + len;
    for (;;) {
        const char *c = memchr(p, ':', (size_t)(end - p));
        if (np == 3) {
            errf(
                errbuf, errlen,
                "entry %zu \"%s\": too many ':' (name:/path[:ro|:rw] or /host/path:/path[:ro|:rw])",
                idx, qe);
            return -1;
        }
        part[np] = p;
        plen[np++] = c != NULL ? (size_t)(c - p) : (size_t)(end - p);
        if (c == NULL)
            break;
        p = c + 1;
    }
    if (np < 2) {
        errf(errbuf, errlen,
             "entry %zu \"%s\": no destination (name:/path[:ro|:rw] or /host/path:/path[:ro|:rw])",
             idx, qe);
        return -1;
    }
    static const char *const what[] = {"source", "destination", "mode"};
    for (size_t i = 0; i < np; i++) {
        if (plen[i] == 0) {
            errf(errbuf, errlen, "entry %zu \"%s\": empty %s", idx, qe, what[i]);
            return -1;
        }
    }
    if (np == 3) {
        if (plen[2] == 2 && memcmp(part[2], "ro", 2) == 0)
            e->readonly = 1;
        else if (plen[2] == 2 && memcmp(part[2], "rw", 2) == 0)
            e->readonly = 0;
        else {
            errf(errbuf, errlen, "entry %zu \"%s\": mode \"%.*s\" is neither ro nor rw", idx, qe,
                 (int)(plen[2] > QUOTE_MAX ? QUOTE_MAX : plen[2]), part[2]);
            return -1;
        }
    }
    e->source = strndup(part[0], plen[0]);
    e->destination = strndup(part[1], plen[1]);
    if (e->source == NULL || e->destination == NULL) {
        errf(errbuf, errlen, "out of memory");
        return -1;
    }
    if (memchr(part[0], '/', plen[0]) != NULL) {
        e->kind = MOUNTSPEC_BIND;
        if (e->source[0] != '/') {
            errf(errbuf, errlen,
                 "entry %zu \"%s\": host path \"%s\" is not an absolute path (a volume name has no "
                 "'/')",
                 idx, qe, e->source);
            return -1;
        }
        if (clean_path(e->source) != 0) {
            errf(errbuf, errlen, "entry %zu \"%s\": host path has a \"..\" component", idx, qe);
            return -1;
        }
    } else {
        e->kind = MOUNTSPEC_VOLUME;
        char why[QUOTE_MAX + 160];
        if (mountspec_volume_name_check(e->source, why, sizeof(why)) != 0) {
            errf(errbuf, errlen, "entry %zu \"%s\": %s", idx, qe, why);
            return -1;
        }
    }
    if (e->destination[0] != '/') {
        errf(errbuf, errlen, "entry %zu \"%s\": destination \"%s\" is not an absolute path", idx,
             qe, e->destination);
        return -1;
    }
    if (clean_path(e->destination) != 0) {
        errf(errbuf, errlen, "entry %zu \"%s\": destination has a \"..\" component", idx, qe);
        return -1;
    }
    if (strcmp(e->destination, "/") == 0) {
        errf(errbuf, errlen, "entry %zu \"%s\": destination must not be \"/\"", idx, qe);
        return -1;
    }
    return 0;
}

static int
is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int
mountspec_parse(const char *value, mountspec_t *out, char *errbuf, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (value == NULL)
        return 0;
    const char *v = value;
    while (is_blank(*v))
        v++;
    if (*v == '\0')
        return 0;
    size_t cap = 1;
    for (const char *c = v; *c != '\0'; c++)
        cap += *c == ',';
    out->entries = calloc(cap, sizeof(*out->entries));
    if (out->entries == NULL) {
        errf(errbuf, errlen, "out of memory");
        return -1;
    }
    const char *p = v;
    for (size_t idx = 1;; idx++) {
        const char *comma = strchr(p, ',');
        const char *end = comma != NULL ? comma : p + strlen(p);
        const char *s = p;
        while (s < end && is_blank(*s))
            s++;
        while (end > s && is_blank(end[-1]))
            end--;
        mountspec_entry_t *e = &out->entries[out->n++];
        if (parse_entry(s, (size_t)(end - s), idx, e, errbuf, errlen) != 0)
            return -1;
        for (size_t j = 0; j + 1 < out->n; j++) {
            if (strcmp(out->entries[j].destination, e->destination) == 0) {
                errf(errbuf, errlen, "entry %zu: destination \"%s\" is also entry %zu's", idx,
                     e->destination, j + 1);
                return -1;
            }
        }
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return 0;
}

void
mountspec_free(mountspec_t *ms)
{
    if (ms == NULL)
        return;
    for (size_t i = 0; i < ms->n; i++) {
        free(ms->entries[i].source);
        free(ms->entries[i].destination);
    }
    free(ms->entries);
    memset(ms, 0, sizeof(*ms));
}

int
mountspec_names_volume(const char *value, const char *name)
{
    mountspec_t ms;
    int found = 0;
    if (mountspec_parse(value, &ms, NULL, 0) == 0) {
        for (size_t i = 0; i < ms.n && !found; i++)
            found =
                ms.entries[i].kind == MOUNTSPEC_VOLUME && strcmp(ms.entries[i].source, name) == 0;
    }
    mountspec_free(&ms);
    return found;
}
