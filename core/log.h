/* SPDX-License-Identifier: Apache-2.0 */
/* The core's logger: logfmt lines on stderr, tagged with the plugin URI (or "berthd"). */
#ifndef BERTH_CORE_LOG_H
#define BERTH_CORE_LOG_H

#include <stdarg.h>

#include <berth/log.h>

struct berth_logger_s {
    const char *tag; /* plugin URI; NULL for the core */
};

enum berth__log_format { BERTH_LOG_FORMAT_LOGFMT = 0, BERTH_LOG_FORMAT_JOURNALD = 1 };

extern const berth_logger_t berth__core_logger;

void berth__log_setup(int level, int format);
int berth__log_level(void);
/* "error" | "warn" | "info" | "debug" | "trace" -> level, -1 if unknown. */
int berth__log_level_parse(const char *s);
const char *berth__log_level_name(int level);
int berth__log_format_parse(const char *s);

void berth__log(const berth_logger_t *lg, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void berth__vlog(const berth_logger_t *lg, int level, const char *fmt, va_list ap);
int berth__log_enabled(const berth_logger_t *lg, int level);

#define LOG_ERROR(...) berth__log(&berth__core_logger, BERTH_LOG_ERROR, __VA_ARGS__)
#define LOG_WARN(...) berth__log(&berth__core_logger, BERTH_LOG_WARN, __VA_ARGS__)
#define LOG_INFO(...) berth__log(&berth__core_logger, BERTH_LOG_INFO, __VA_ARGS__)
#define LOG_DEBUG(...) berth__log(&berth__core_logger, BERTH_LOG_DEBUG, __VA_ARGS__)

#endif
