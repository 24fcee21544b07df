/* SPDX-License-Identifier: Apache-2.0 */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util.h"

const berth_logger_t berth__core_logger = {.tag = NULL};

static int log_level = BERTH_LOG_INFO;
static int log_format = BERTH_LOG_FORMAT_LOGFMT;

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};
/* syslog priorities for journald's "<N>" prefix */
static const int level_syslog[] = {3, 4, 6, 7, 7};

void
berth__log_setup(int level, int format)
{
    log_level = level;
    log_format = format;
}

int
berth__log_level(void)
{
    return log_level;
}

int
berth__log_level_parse(const char *s)
{
    for (size_t i = 0; i < BERTH_ARRAY_LEN(level_names); i++)
        if (strcmp(s, level_names[i]) == 0)
            return (int)i;
    if (strcmp(s, "warning") == 0)
        return BERTH_LOG_WARN;
    return -1;
}

const char *
berth__log_level_name(int level)
{
    if (level < 0 || level > BERTH_LOG_TRACE)
        return "unknown";
    return level_names[level];
}

int
berth__log_format_parse(const char *s)
{
    if (strcmp(s, "logfmt") == 0)
        return BERTH_LOG_FORMAT_LOGFMT;
    if (strcmp(s, "journald") == 0)
        return BERTH_LOG_FORMAT_JOURNALD;
    return -1;
}

int
berth__log_enabled(const berth_logger_t *lg, int level)
{
    (void)lg;
    return level <= log_level;
}

/* Where the fields start: the first " key=" whose key is [a-z0-9_.-]+. */
static size_t
fields_start(const char *msg)
{
    for (const char *p = strchr(msg, ' '); p; p = strchr(p + 1, ' ')) {
        const char *k = p + 1;
        while ((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '_' || *k == '.' ||
               *k == '-')
            k++;
        if (k > p + 1 && *k == '=')
            return (size_t)(p - msg);
    }
    return strlen(msg);
}

static void
put_quoted(FILE *out, const char *s, size_t n)
{
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            fputc('\\', out);
        if (s[i] == '\n') {
            fputs("\\n", out);
            continue;
        }
        fputc(s[i], out);
    }
    fputc('"', out);
}

void
berth__vlog(const berth_logger_t *lg, int level, const char *fmt, va_list ap)
{
    if (level > log_level)
        return;
    if (level < 0)
        level = 0;
    char *msg = berth__xvasprintf(fmt, ap);
    size_t split = fields_start(msg);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);

    /* the line is built whole and written in one call: stderr is unbuffered, and a line written in pieces
     * costs a system call per piece and can be read half-written */
    char *line = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&line, &len);
    if (out == NULL) {
        free(msg);
        return;
    }
    if (log_format == BERTH_LOG_FORMAT_JOURNALD)
        fprintf(out, "<%d>level=%s", level_syslog[level], level_names[level]);
    else
        fprintf(out, "time=\"%s.%06ldZ\" level=%s", when, ts.tv_nsec / 1000, level_names[level]);
    if (lg && lg->tag)
        fprintf(out, " plugin=%s", lg->tag);
    fputs(" msg=", out);
    put_quoted(out, msg, split);
    fputs(msg + split, out);
    fputc('\n', out);
    if (fclose(out) == 0)
        fwrite(line, 1, len, stderr);
    free(line);
    free(msg);
}

void
berth__log(const berth_logger_t *lg, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    berth__vlog(lg, level, fmt, ap);
    va_end(ap);
}
