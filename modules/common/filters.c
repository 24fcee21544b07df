/* SPDX-License-Identifier: Apache-2.0 */
#include "filters.h"

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum op { OP_PRESENT, OP_EQUAL, OP_NOT_EQUAL, OP_MATCHES };

#define MAX_PATH 8
#define MAX_SELECTORS 64

typedef struct selector {
    char *path[MAX_PATH];
    int npath;
    enum op op;
    char *value;
    regex_t re;
    int has_re;
} selector_t;

typedef struct conjunction {
    selector_t sel[MAX_SELECTORS];
    int n;
} conjunction_t;

struct filters {
    conjunction_t *any;
    int n;
};

typedef struct parser {
    const char *in;
    size_t pos;
    char *err;
    size_t errlen;
} parser_t;

static int
fail(parser_t *p, size_t at, const char *msg)
{
    size_t len = strlen(p->in);
    if (at < len)
        snprintf(p->err, p->errlen, "filters: parse error: [%.*s >|%c|< %s]: %s", (int)at, p->in,
                 p->in[at], p->in + at + 1, msg);
    else
        snprintf(p->err, p->errlen, "filters: parse error: [%s]: %s", p->in, msg);
    return -1;
}

static void
skip_space(parser_t *p)
{
    while (isspace((unsigned char)p->in[p->pos]))
        p->pos++;
}

static int
is_field_char(char c)
{
    return c == '_' || isalnum((unsigned char)c);
}

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return 16;
}

/* Writes code point cp as UTF-8. */
static size_t
put_utf8(char *out, unsigned long cp)
{
    if (cp < 0x80)
        return out[0] = (char)cp, 1;
    if (cp < 0x800)
        return out[0] = (char)(0xc0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3f)), 2;
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* One escape after a backslash at *s; Go's string escapes plus the quote character itself. */
static int
unescape(const char **s, char quote, char **w)
{
    static const char simple[] = "abfnrtv\\";
    static const char value[] = "\a\b\f\n\r\t\v\\";
    const char *c = *s;
    const char *hit = strchr(simple, *c);
    if (*c != '\0' && (hit || *c == quote)) {
        *(*w)++ = hit ? value[hit - simple] : quote;
        *s = c + 1;
        return 0;
    }
    int base = 16, digits = 0;
    if (*c >= '0' && *c <= '7')
        base = 8, digits = 3;
    else if (*c == 'x')
        digits = 2, c++;
    else if (*c == 'u')
        digits = 4, c++;
    else if (*c == 'U')
        digits = 8, c++;
    else
        return -1;
    unsigned long cp = 0;
    for (int i = 0; i < digits; i++, c++) {
        int d = hex_value(*c);
        if (d >= base)
            return -1;
        cp = cp * (unsigned long)base + (unsigned long)d;
    }
    if (cp > 0x10ffff)
        return -1;
    if (base == 8 || digits == 2)
        *(*w)++ = (char)cp;
    else
        *w += put_utf8(*w, cp);
    *s = c;
    return 0;
}

/* A quoted token starting at p->pos; alt allows /.../ and |...|. */
static int
quoted(parser_t *p, int alt, char **out)
{
    size_t start = p->pos;
    char q = p->in[start];
    if (!(q == '"' || (alt && (q == '/' || q == '|'))))
        return fail(p, start,
                    q == '/' || q == '|' ? "invalid quote encountered"
                                         : "expected value or quoted");
    char *buf = malloc(strlen(p->in) * 4 + 1), *w = buf;
    const char *s = p->in + start + 1;
    while (*s != q) {
        if (*s == '\0' || *s == '\n') {
            free(buf);
            return fail(p, start, "quoted literal not terminated");
        }
        if (*s == '\\') {
            s++;
            if (unescape(&s, q, &w) < 0) {
                free(buf);
                return fail(p, start, "illegal escape sequence");
            }
            continue;
        }
        *w++ = *s++;
    }
    *w = '\0';
    p->pos = (size_t)(s + 1 - p->in);
    *out = buf;
    return 0;
}

static int
field(parser_t *p, char **out)
{
    skip_space(p);
    if (p->in[p->pos] == '"')
        return quoted(p, 0, out);
    size_t start = p->pos;
    while (is_field_char(p->in[p->pos]))
        p->pos++;
    if (p->pos == start)
        return fail(p, start, "expected field or quoted");
    *out = strndup(p->in + start, p->pos - start);
    return 0;
}

static int
operator(parser_t *p, enum op *op)
{
    skip_space(p);
    size_t start = p->pos;
    while (strchr("=!~", p->in[p->pos]) && p->in[p->pos])
        p->pos++;
    size_t n = p->pos - start;
    if (n == 0)
        return fail(p, start, "expected an operator (\"==\"|\"!=\"|\"~=\")");
    if (n == 2 && strncmp(p->in + start, "==", 2) == 0)
        *op = OP_EQUAL;
    else if (n == 2 && strncmp(p->in + start, "!=", 2) == 0)
        *op = OP_NOT_EQUAL;
    else if (n == 2 && strncmp(p->in + start, "~=", 2) == 0)
        *op = OP_MATCHES;
    else
        return fail(p, start, "unsupported operator");
    return 0;
}

static int
value(parser_t *p, int alt, char **out)
{
    skip_space(p);
    char c = p->in[p->pos];
    if (c == '"' || c == '/' || c == '|')
        return quoted(p, alt, out);
    size_t start = p->pos;
    while (p->in[p->pos] && p->in[p->pos] != ',' && !isspace((unsigned char)p->in[p->pos]))
        p->pos++;
    if (p->pos == start)
        return fail(p, start, "expected value or quoted");
    *out = strndup(p->in + start, p->pos - start);
    return 0;
}

#define REGEX_MAX 1024
#define REPEAT_MAX 1000

/* Rules of Go's regexp (what containerd compiles filters with) that also keep glibc's regcomp, whose
 * memory grows exponentially with stacked repetitions, bounded: no nested repetition operators ("a++",
 * "a*{2}"), repeat counts up to 1000, and a bounded pattern length. */
static const char *
regex_problem(const char *re)
{
    if (strlen(re) > REGEX_MAX)
        return "regular expression too long";
    int after_quantifier = 0, in_class = 0;
    long repeats = 0;
    for (const char *c = re; *c; c++) {
        if (in_class) { /* POSIX brackets have no escapes: the first ']' closes them */
            in_class = *c != ']';
            continue;
        }
        if (*c == '\\' && c[1]) {
            c++;
            after_quantifier = 0;
            continue;
        }
        if (*c == '[') {
            in_class = 1;
            if (c[1] == '^')
                c++;
            if (c[1] == ']')
                c++;
            after_quantifier = 0;
            continue;
        }
        int quantifier = *c == '*' || *c == '+' || *c == '?' || *c == '{';
        if (quantifier && after_quantifier && !(*c == '?' && c[-1] != '?'))
            return "invalid nested repetition operator";
        if (*c == '{') {
            char *end;
            long n = strtol(c + 1, &end, 10);
            if (*end == ',' && end[1] != '}')
                n = n > strtol(end + 1, &end, 10) ? n : strtol(end + 1, NULL, 10);
            if (n > REPEAT_MAX)
                return "invalid repeat count";
            repeats += n > 0 ? n : 0;
            /* nested counts multiply inside glibc's regcomp: bound their sum, which bounds the product */
            if (repeats > REPEAT_MAX)
                return "invalid repeat count";
            const char *close = strchr(c, '}');
            if (close)
                c = close;
        }
        after_quantifier = quantifier;
    }
    return NULL;
}

static int
selector(parser_t *p, selector_t *s)
{
    if (field(p, &s->path[s->npath++]) < 0)
        return -1;
    skip_space(p);
    while (p->in[p->pos] == '.') {
        p->pos++;
        if (s->npath == MAX_PATH)
            return fail(p, p->pos, "field path too long");
        if (field(p, &s->path[s->npath++]) < 0)
            return -1;
        skip_space(p);
    }
    char c = p->in[p->pos];
    if (c == ',' || c == '\0') {
        s->op = OP_PRESENT;
        return 0;
    }
    if (operator(p, &s->op) < 0 || value(p, s->op == OP_MATCHES, &s->value) < 0)
        return -1;
    if (s->op == OP_MATCHES) {
        const char *why = regex_problem(s->value);
        if (why)
            return fail(p, p->pos, why);
        if (regcomp(&s->re, s->value, REG_EXTENDED | REG_NOSUB) != 0)
            return fail(p, p->pos, "invalid regular expression");
        s->has_re = 1;
    }
    return 0;
}

static int
conjunction(parser_t *p, conjunction_t *c)
{
    for (;;) {
        if (c->n == MAX_SELECTORS)
            return fail(p, p->pos, "too many selectors");
        if (selector(p, &c->sel[c->n++]) < 0)
            return -1;
        skip_space(p);
        if (p->in[p->pos] == '\0')
            return 0;
        if (p->in[p->pos] != ',')
            return fail(p, p->pos, "unexpected input");
        p->pos++;
    }
}

static void
conjunction_free(conjunction_t *c)
{
    for (int i = 0; i < c->n; i++) {
        for (int j = 0; j < c->sel[i].npath; j++)
            free(c->sel[i].path[j]);
        free(c->sel[i].value);
        if (c->sel[i].has_re)
            regfree(&c->sel[i].re);
    }
}

void
filters_free(filters_t *f)
{
    if (f == NULL)
        return;
    for (int i = 0; i < f->n; i++)
        conjunction_free(&f->any[i]);
    free(f->any);
    free(f);
}

int
filters_parse(const char *const *filters, filters_t **out, char *errbuf, size_t errlen)
{
    size_t n = 0;
    while (filters && filters[n])
        n++;
    return filters_parse_n(filters, n, out, errbuf, errlen);
}

int
filters_parse_n(const char *const *filters, size_t n, filters_t **out, char *errbuf, size_t errlen)
{
    *out = NULL;
    if (n > FILTERS_MAX_FILTERS) {
        snprintf(errbuf, errlen, "filters: more than %d filters", FILTERS_MAX_FILTERS);
        return -1;
    }
    filters_t *f = calloc(1, sizeof(*f));
    f->any = calloc(n ? n : 1, sizeof(conjunction_t));
    for (size_t i = 0; i < n; i++) {
        if (strlen(filters[i]) > FILTERS_MAX_LEN) {
            snprintf(errbuf, errlen, "filters: filter longer than %d bytes", FILTERS_MAX_LEN);
            filters_free(f);
            return -1;
        }
        if (filters[i][0] == '\0') { /* containerd: the empty filter matches everything */
            filters_free(f);
            return 0;
        }
        parser_t p = {filters[i], 0, errbuf, errlen};
        f->n++;
        if (conjunction(&p, &f->any[i]) < 0) {
            filters_free(f);
            return -1;
        }
    }
    if (n == 0) {
        filters_free(f);
        return 0;
    }
    *out = f;
    return 0;
}

static int
selector_match(const selector_t *s, filters_field_fn field_of, void *object)
{
    const char *v = field_of(object, (const char *const *)s->path, s->npath);
    if (v && v[0] == '\0')
        v = NULL;
    switch (s->op) {
    case OP_PRESENT:
        return v != NULL;
    case OP_EQUAL:
        return v != NULL && strcmp(v, s->value) == 0;
    case OP_NOT_EQUAL:
        return strcmp(v ? v : "", s->value) != 0;
    case OP_MATCHES:
        return regexec(&s->re, v ? v : "", 0, NULL, 0) == 0;
    }
    return 0;
}

int
filters_match(const filters_t *f, filters_field_fn field_of, void *object)
{
    if (f == NULL)
        return 1;
    for (int i = 0; i < f->n; i++) {
        int all = 1;
        for (int j = 0; j < f->any[i].n && all; j++)
            all = selector_match(&f->any[i].sel[j], field_of, object);
        if (all)
            return 1;
    }
    return 0;
}
