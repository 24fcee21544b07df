/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth logging: one API for core and modules.
 *
 * A module logs through the core table, passing the logger its InitContext gave it; the core adds the time,
 * the level and the plugin URI, so a line reads
 *   time="2026-11-23T03:20:11.123Z" level=info plugin=io.containerd.event.v1.exchange msg="subscribed" topic=/tasks/exit
 * Key=value fields go in the format after the message text, `api->log(lg, BERTH_LOG_INFO,
 * "subscribed topic=%s", t)`: the core quotes the text before the first " key=" as msg and writes the
 * fields after it as they are. The output is logfmt on stderr, or with a syslog
 * priority prefix ("<6>") when log_format is journald.
 */
#ifndef BERTH_LOG_H
#define BERTH_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

enum berth_log_level {
    BERTH_LOG_ERROR = 0,
    BERTH_LOG_WARN = 1,
    BERTH_LOG_INFO = 2,
    BERTH_LOG_DEBUG = 3,
    BERTH_LOG_TRACE = 4
};

/* Opaque: a tagged logger owned by the core. Valid from init until after the plugin's fini returns. */
typedef struct berth_logger_s berth_logger_t;

#ifdef __cplusplus
}
#endif
#endif /* BERTH_LOG_H */
