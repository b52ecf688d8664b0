/* log.h - leveled logging with stable message ids (prefix: log_).
 *
 * LOG(LOG_INFO, "CAIRN-LEASE-EXPIRED", "run %s task %s", ...) checks the
 * level before formatting. Under systemd (JOURNAL_STREAM set) lines carry the
 * "<N>" priority prefix journald reads; otherwise a timestamp.
 *
 * With log_set_format(LOG_FORMAT_JSON) (--log-format json) every line is
 * one JSON object instead, for log shippers:
 *   {"ts":"2026-12-04T17:00:00.123Z","level":"info","msg_id":"CAIRN-START",
 *    "msg":"...","prog":"cairn-scheduler"}
 * (under systemd still after the "<N>" prefix, so journald keeps the
 * priority). Each line is written with one call, so lines of several
 * threads do not interleave.
 */
#ifndef CAIRN_LOG_H
#define CAIRN_LOG_H

enum log_level { LOG_ERR = 3, LOG_WARN = 4, LOG_NOTICE = 5, LOG_INFO = 6, LOG_DEBUG = 7 };

enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

extern int log_level_max;

void log_init(const char *prog, int level);
/* Parse "error|warn|notice|info|debug"; returns -1 if unknown. */
int log_level_parse(const char *s);
/* Parse "text|json"; returns -1 if unknown. */
int log_format_parse(const char *s);
/* Choose the line format (default LOG_FORMAT_TEXT); before any thread logs. */
void log_set_format(enum log_format f);
void log_emit(int level, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG(level, id, ...)                                                    \
    do {                                                                       \
        if ((level) <= log_level_max)                                          \
            log_emit((level), (id), __VA_ARGS__);                              \
    } while (0)

#endif
