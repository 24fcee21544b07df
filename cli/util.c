/* SPDX-License-Identifier: Apache-2.0 */
/* The CLI's small helpers: docker's image names, human sizes and times, aligned tables, JSON. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"

static int
is_domain(const char *s, size_t len)
{
    if (len == 9 && !strncmp(s, "localhost", 9))
        return 1;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '.' || s[i] == ':')
            return 1;
    return 0;
}

char *
normalize_image(const char *in)
{
    const char *slash = strchr(in, '/');
    const char *domain = "docker.io", *rest = in;
    size_t dlen = 9;
    if (slash && is_domain(in, (size_t)(slash - in))) {
        domain = in;
        dlen = (size_t)(slash - in);
        rest = slash + 1;
    } else if (!strncmp(in, "docker.io/", 10)) {
        rest = in + 10;
    }
    if (dlen == 17 && !strncmp(domain, "index.docker.io", 15))
        domain = "docker.io", dlen = 9;
    int library = dlen == 9 && !strncmp(domain, "docker.io", 9) && !strchr(rest, '/');
    const char *last = strrchr(rest, '/');
    last = last ? last + 1 : rest;
    int tagged = strchr(last, ':') || strchr(last, '@');
    char *out;
    if (asprintf(&out, "%.*s/%s%s%s", (int)dlen, domain, library ? "library/" : "", rest,
                 tagged ? "" : ":latest") < 0)
        die("out of memory");
    for (const char *p = rest; *p && *p != ':' && *p != '@'; p++)
        if (isupper((unsigned char)*p))
            die("invalid reference format \"%s\": repository name must be lowercase", in);
    return out;
}

const char *
familiar_name(const char *full)
{
    if (!strncmp(full, "docker.io/library/", 18))
        return full + 18;
    if (!strncmp(full, "docker.io/", 10))
        return full + 10;
    return full;
}

char *
random_hex(size_t n)
{
    unsigned char b[64];
    char *out = malloc(n + 1);
    if (!out)
        die("out of memory");
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, b, (n + 1) / 2) != (ssize_t)((n + 1) / 2))
        die("read /dev/urandom failed");
    close(fd);
    for (size_t i = 0; i < n; i++)
        out[i] = "0123456789abcdef"[(b[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    out[n] = 0;
    return out;
}

void
human_size(int64_t bytes, char *buf, size_t len)
{
    static const char *units[] = {"B", "kB", "MB", "GB", "TB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1000 && u < 4)
        v /= 1000, u++;
    if (u == 0)
        snprintf(buf, len, "%lldB", (long long)bytes);
    else
        snprintf(buf, len, "%.3g%s", v, units[u]);
}

int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
human_duration(int64_t ns, char *buf, size_t len)
{
    int64_t s = ns / 1000000000;
    if (s < 1)
        snprintf(buf, len, "Less than a second");
    else if (s < 60)
        snprintf(buf, len, "%lld second%s", (long long)s, s == 1 ? "" : "s");
    else if (s < 3600)
        snprintf(buf, len, "%lld minute%s", (long long)(s / 60), s / 60 == 1 ? "" : "s");
    else if (s < 48 * 3600)
        snprintf(buf, len, "%lld hour%s", (long long)(s / 3600), s / 3600 == 1 ? "" : "s");
    else
        snprintf(buf, len, "%lld days", (long long)(s / 86400));
}

void
human_ago(int64_t then_ns, char *buf, size_t len)
{
    if (then_ns <= 0) {
        snprintf(buf, len, "N/A");
        return;
    }
    char d[64];
    human_duration(now_ns() - then_ns, d, sizeof d);
    snprintf(buf, len, "%s ago", d);
}

void
fmt_time(int64_t ns, char *buf, size_t len)
{
    time_t s = (time_t)(ns / 1000000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char day[40];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%09lldZ", day, (long long)(ns % 1000000000));
}

const char *
kv_get(const berth_kv_t *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(kv[i].key, key))
            return kv[i].value;
    return NULL;
}

int
parse_signal(const char *s)
{
    char *end;
    long n = strtol(s, &end, 10);
    if (*s && !*end)
        return n > 0 && n < 65 ? (int)n : -1;
    if (!strncasecmp(s, "SIG", 3))
        s += 3;
    static const struct {
        const char *name;
        int sig;
    } sigs[] = {{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT},   {"KILL", SIGKILL},
                {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM},   {"STOP", SIGSTOP},
                {"CONT", SIGCONT}, {"ALRM", SIGALRM}, {"WINCH", SIGWINCH}, {"PIPE", SIGPIPE},
                {"ABRT", SIGABRT}, {"TSTP", SIGTSTP}};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (!strcasecmp(s, sigs[i].name))
            return sigs[i].sig;
    return -1;
}

/* ---- tables ---------------------------------------------------------------------------------------- */

static void
table_grow(struct table *t)
{
    if (t->cap == 0 || (t->nrows + 1) * t->ncols > t->cap) {
        t->cap = t->cap ? t->cap * 2 : t->ncols * 16;
        while (t->cap < (t->nrows + 1) * t->ncols)
            t->cap *= 2;
        t->cells = realloc(t->cells, t->cap * sizeof *t->cells);
        if (!t->cells)
            die("out of memory");
    }
}

static void
table_vrow(struct table *t, va_list ap)
{
    table_grow(t);
    for (size_t i = 0; i < t->ncols; i++) {
        const char *s = va_arg(ap, const char *);
        t->cells[t->nrows * t->ncols + i] = strdup(s ? s : "");
    }
    t->nrows++;
}

void
table_init(struct table *t, size_t ncols, ...)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    va_list ap;
    va_start(ap, ncols);
    table_vrow(t, ap);
    va_end(ap);
}

void
table_row(struct table *t, ...)
{
    va_list ap;
    va_start(ap, t);
    table_vrow(t, ap);
    va_end(ap);
}

/* display columns: UTF-8 continuation bytes take none (the "…" of a cut command) */
static size_t
width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

void
table_print(struct table *t, FILE *f)
{
    size_t w[32] = {0};
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols && c < 32; c++) {
            size_t l = width(t->cells[r * t->ncols + c]);
            if (l > w[c])
                w[c] = l;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            if (c + 1 == t->ncols)
                fprintf(f, "%s\n", s);
            else
                fprintf(f, "%s%*s", s, (int)(w[c] - width(s) + 3), "");
            free(t->cells[r * t->ncols + c]);
        }
    }
    free(t->cells);
    t->cells = NULL;
    t->nrows = 0;
}

/* ---- JSON ----------------------------------------------------------------------------------------- */

struct json_object *
json_kv(const berth_kv_t *kv, size_t n)
{
    json_object *o = json_object_new_object();
    for (size_t i = 0; i < n; i++)
        json_object_object_add(o, kv[i].key, json_object_new_string(kv[i].value));
    return o;
}

void
json_print(struct json_object *o, int pretty)
{
    puts(json_object_to_json_string_ext(
        o, pretty
               ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE
               : JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}
