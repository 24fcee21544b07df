/* SPDX-License-Identifier: Apache-2.0 */
/* The shim's log files: URI parsing, CRI line formatting, rotation by size (shimlog.h). */
#include "shimlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define OUT_CAP (32 * 1024) /* formatted lines waiting for one write (more than one 16 KiB line) */
#define MAX_FILES_LIMIT 1024

struct shimlog {
    shimlog_cfg_t cfg;
    int fd;
    long long size; /* bytes in the current file */
    char *out;      /* CRI lines formatted, not yet written */
    size_t olen;
    char pend[2][SHIMLOG_LINE_MAX]; /* per stream: the start of a line whose newline has not come */
    size_t plen[2];
    int open[2];    /* per stream: a P entry went out and its line has not ended yet */
    char stamp[32]; /* the timestamp of the current write */
};

/* ---- the URI ----------------------------------------------------------------------------------------- */

static int
hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* %XX-decodes s[0..n) into out (as Go's url.Parse gives containerd's shim u.Path); -1 when malformed. */
static int
unescape(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

/* Digits, with an optional k, m or g (KiB, MiB, GiB) when allow_unit; -1 unless 1 <= value <= max. */
static long long
number(const char *s, size_t n, int allow_unit, long long max)
{
    long long v = 0, unit = 1;
    size_t i = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        v = v * 10 + (s[i] - '0');
        if (v > max)
            return -1;
    }
    if (i == 0)
        return -1;
    if (allow_unit && i + 1 == n) {
        char u = s[i] | 0x20;
        unit = u == 'k' ? 1024LL : u == 'm' ? 1024LL * 1024 : u == 'g' ? 1024LL * 1024 * 1024 : 0;
        i++;
    }
    if (i != n || unit == 0 || v < 1 || v > max / unit)
        return -1;
    return v * unit;
}

static int
parse_query(const char *q, shimlog_cfg_t *cfg, const char *uri, char *msg, size_t len)
{
    int has_size = 0, has_files = 0;
    while (*q) {
        size_t n = strcspn(q, "&");
        const char *eq = memchr(q, '=', n);
        size_t klen = eq ? (size_t)(eq - q) : n;
        const char *v = eq ? eq + 1 : q + n;
        size_t vlen = (size_t)(q + n - v);
        if (klen == 6 && strncmp(q, "format", 6) == 0) {
            if (vlen != 3 || strncmp(v, "cri", 3) != 0) {
                snprintf(msg, len, "log uri %s: format must be cri", uri);
                return -1;
            }
            cfg->cri = 1;
        } else if (klen == 8 && strncmp(q, "max-size", 8) == 0) {
            if ((cfg->max_size = number(v, vlen, 1, 1LL << 50)) < 0) {
                snprintf(msg, len,
                         "log uri %s: max-size must be a number of bytes (k, m, g allowed)", uri);
                return -1;
            }
            has_size = 1;
        } else if (klen == 9 && strncmp(q, "max-files", 9) == 0) {
            long long f = number(v, vlen, 0, MAX_FILES_LIMIT);
            if (f < 0) {
                snprintf(msg, len, "log uri %s: max-files must be a number from 1 to %d", uri,
                         MAX_FILES_LIMIT);
                return -1;
            }
            cfg->max_files = (int)f;
            has_files = 1;
        } else if (n > 0) {
            snprintf(msg, len, "log uri %s: unknown parameter %.*s (format, max-size, max-files)",
                     uri, (int)klen, q);
            return -1;
        }
        q += n + (q[n] == '&');
    }
    if ((has_size || has_files) && !cfg->cri) {
        snprintf(msg, len, "log uri %s: max-size and max-files need format=cri", uri);
        return -1;
    }
    if (cfg->cri && !has_size)
        cfg->max_size = SHIMLOG_DEFAULT_SIZE;
    if (cfg->cri && !has_files)
        cfg->max_files = SHIMLOG_DEFAULT_FILES;
    return 0;
}

int
shimlog_parse(const char *s, shimlog_cfg_t *cfg, char *msg, size_t len)
{
    const char *sep = s ? strstr(s, "://") : NULL;
    /* a scheme is letters first, then letters, digits, + - . (RFC 3986); anything else is a path */
    if (sep == NULL || sep == s || strcspn(s, "/") < (size_t)(sep - s))
        return 0;
    for (const char *c = s; c < sep; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              (c > s && ((*c >= '0' && *c <= '9') || *c == '+' || *c == '-' || *c == '.'))))
            return 0;
    if (sep - s != 4 || strncasecmp(s, "file", 4) != 0) {
        snprintf(msg, len,
                 "log uri %s: scheme %.*s not supported (berth's shim writes file:// logs)", s,
                 (int)(sep - s), s);
        return -1;
    }
    *cfg = (shimlog_cfg_t){0};
    const char *path = sep + 3;
    size_t plen = strcspn(path, "?#");
    if (path[0] != '/' || plen < 2 || unescape(path, plen, cfg->path, sizeof(cfg->path)) < 0 ||
        cfg->path[strlen(cfg->path) - 1] == '/') {
        snprintf(msg, len, "log uri %s: needs an absolute file path (file:///path)", s);
        return -1;
    }
    if (path[plen] == '#') {
        snprintf(msg, len, "log uri %s: a fragment is not allowed", s);
        return -1;
    }
    return path[plen] == '?' ? (parse_query(path + plen + 1, cfg, s, msg, len) < 0 ? -1 : 1) : 1;
}

/* ---- the file --------------------------------------------------------------------------------------- */

/* mkdir -p of path's directory, 0755 as containerd's shim */
static int
make_dirs(const char *path)
{
    char dir[sizeof(((shimlog_cfg_t *)0)->path)];
    snprintf(dir, sizeof(dir), "%s", path);
    for (char *c = dir + 1; *c; c++) {
        if (*c != '/')
            continue;
        *c = '\0';
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            return -1;
        *c = '/';
    }
    return 0;
}

static int
open_file(shimlog_t *l)
{
    l->fd = open(l->cfg.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
    struct stat st;
    l->size = l->fd >= 0 && fstat(l->fd, &st) == 0 ? (long long)st.st_size : 0;
    return l->fd;
}

shimlog_t *
shimlog_open(const shimlog_cfg_t *cfg, char *msg, size_t len)
{
    shimlog_t *l = calloc(1, sizeof(*l));
    if (l == NULL || (cfg->cri && (l->out = malloc(OUT_CAP)) == NULL)) {
        snprintf(msg, len, "log %s: out of memory", cfg->path);
        free(l);
        return NULL;
    }
    l->cfg = *cfg;
    if (make_dirs(cfg->path) < 0 || open_file(l) < 0) {
        snprintf(msg, len, "log %s: %s", cfg->path, strerror(errno));
        free(l->out);
        free(l);
        return NULL;
    }
    return l;
}

/* All of buf, or what the file takes: a full disk loses output, it never stops the shim. */
static void
write_all(shimlog_t *l, const char *buf, size_t n)
{
    /* kubelet rotates CRI logs by renaming the file and asking ReopenContainerLog: a path that no longer
     * names the open file gets a new one (berthd creates it before it answers) */
    struct stat at, open_st;
    if (l->fd >= 0 && (stat(l->cfg.path, &at) < 0 || fstat(l->fd, &open_st) < 0 ||
                       at.st_ino != open_st.st_ino || at.st_dev != open_st.st_dev)) {
        close(l->fd);
        l->fd = -1;
    }
    if (l->fd < 0 && open_file(l) < 0) /* a rotation that could not reopen: try again */
        return;
    while (n > 0) {
        ssize_t w = write(l->fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        buf += w;
        n -= (size_t)w;
        l->size += w;
    }
}

static void
flush_out(shimlog_t *l)
{
    if (l->olen > 0)
        write_all(l, l->out, l->olen);
    l->olen = 0;
}

/* path.<n-2> -> path.<n-1> ... path -> path.1 (the oldest is replaced), then a new path. */
static void
rotate(shimlog_t *l)
{
    char from[sizeof(l->cfg.path) + 16], to[sizeof(l->cfg.path) + 16];
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    for (int i = l->cfg.max_files - 1; i >= 1; i--) {
        snprintf(to, sizeof(to), "%s.%d", l->cfg.path, i);
        if (i == 1)
            snprintf(from, sizeof(from), "%s", l->cfg.path);
        else
            snprintf(from, sizeof(from), "%s.%d", l->cfg.path, i - 1);
        rename(from, to); /* ENOENT while there are fewer files than max-files */
    }
    if (l->cfg.max_files <= 1)
        unlink(l->cfg.path);
    open_file(l);
}

/* One CRI line: the current stamp, the stream, the tag, then a + b (the pending start and the rest). */
static void
emit(shimlog_t *l, int stream, char tag, const char *a, size_t an, const char *b, size_t bn)
{
    const char *name = stream == 2 ? "stderr" : "stdout";
    size_t rec = 30 + 1 + 6 + 1 + 1 + 1 + an + bn + 1;
    if (l->olen + rec > OUT_CAP)
        flush_out(l);
    if (l->size + (long long)(l->olen + rec) > l->cfg.max_size &&
        l->size + (long long)l->olen > 0) {
        flush_out(l);
        rotate(l);
    }
    char *o = l->out + l->olen;
    memcpy(o, l->stamp, 30);
    o[30] = ' ';
    memcpy(o + 31, name, 6);
    o[37] = ' ';
    o[38] = tag;
    o[39] = ' ';
    memcpy(o + 40, a, an);
    if (bn > 0) /* b is NULL when the line is all in the pending buffer */
        memcpy(o + 40 + an, b, bn);
    o[40 + an + bn] = '\n';
    l->olen += rec;
    l->open[stream == 2] = tag == 'P';
}

void
shimlog_timestamp(long long ns, char out[32])
{
    unsigned long long u = ns < 0 ? 0 : (unsigned long long)ns;
    time_t sec = (time_t)(u / 1000000000ULL);
    struct tm tm;
    char tmp[96];
    gmtime_r(&sec, &tm);
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%09lluZ", (tm.tm_year + 1900) % 10000,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, u % 1000000000ULL);
    memcpy(out, tmp, 31);
    out[31] = '\0';
}

void
shimlog_write(shimlog_t *l, int stream, const char *data, size_t n, long long now_ns)
{
    if (l == NULL || n == 0)
        return;
    if (!l->cfg.cri) {
        write_all(l, data, n);
        return;
    }
    int s = stream == 2;
    char *pend = l->pend[s];
    size_t *plen = &l->plen[s];
    shimlog_timestamp(now_ns, l->stamp);
    while (n > 0) {
        const char *nl = memchr(data, '\n', n);
        size_t seg = nl ? (size_t)(nl - data) : n;
        if (nl && *plen + seg <= SHIMLOG_LINE_MAX) { /* the common case: a whole line, no copy */
            emit(l, stream, 'F', pend, *plen, data, seg);
            *plen = 0;
            data += seg + 1;
            n -= seg + 1;
            continue;
        }
        /* a long line, or one whose newline has not come: 16 KiB pieces go out as P */
        while (seg > 0) {
            if (*plen == SHIMLOG_LINE_MAX) {
                emit(l, stream, 'P', pend, *plen, NULL, 0);
                *plen = 0;
            }
            size_t take = seg < SHIMLOG_LINE_MAX - *plen ? seg : SHIMLOG_LINE_MAX - *plen;
            memcpy(pend + *plen, data, take);
            *plen += take;
            data += take;
            n -= take;
            seg -= take;
        }
        if (nl) {
            emit(l, stream, 'F', pend, *plen, NULL, 0);
            *plen = 0;
            data++;
            n--;
        }
    }
    flush_out(l);
}

void
shimlog_partial(shimlog_t *l, int stream, long long now_ns)
{
    int s = stream == 2;
    if (l == NULL || !l->cfg.cri || l->plen[s] == 0)
        return;
    shimlog_timestamp(now_ns, l->stamp);
    emit(l, stream, 'P', l->pend[s], l->plen[s], NULL, 0);
    l->plen[s] = 0;
    flush_out(l);
}

void
shimlog_finish(shimlog_t *l, int stream, long long now_ns)
{
    int s = stream == 2;
    if (l == NULL || !l->cfg.cri || (l->plen[s] == 0 && !l->open[s]))
        return;
    /* the line ends here, as containerd's CRI logger ends it at EOF: an F with what is left, even nothing
     * when its start already went out as P (so kubelet's reader and `berth logs --tail` see it end) */
    shimlog_timestamp(now_ns, l->stamp);
    emit(l, stream, 'F', l->pend[s], l->plen[s], NULL, 0);
    l->plen[s] = 0;
    flush_out(l);
}

void
shimlog_close(shimlog_t *l)
{
    if (l == NULL)
        return;
    flush_out(l);
    if (l->fd >= 0)
        close(l->fd);
    free(l->out);
    free(l);
}
