#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int log_level_max = LOG_INFO;
static const char *log_prog = "cairn";
static int log_journal;

void
log_init(const char *prog, int level)
{
    log_prog = prog;
    log_level_max = level;
    log_journal = getenv("JOURNAL_STREAM") != NULL;
}

int
log_level_parse(const char *s)
{
    static const struct {
        const char *name;
        int level;
    } t[] = {{"error", LOG_ERR}, {"warn", LOG_WARN},   {"warning", LOG_WARN},
             {"notice", LOG_NOTICE}, {"info", LOG_INFO}, {"debug", LOG_DEBUG}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(s, t[i].name) == 0)
            return t[i].level;
    return -1;
}

void
log_emit(int level, const char *id, const char *fmt, ...)
{
    static const char *names[] = {"emerg", "alert", "crit", "error",
                                  "warn",  "notice", "info", "debug"};
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (log_journal) {
        fprintf(stderr, "<%d>%s %s\n", level, id, msg);
    } else {
        struct timespec ts;
        struct tm tm;
        char tbuf[32];
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ldZ %s[%s] %s %s\n", tbuf, ts.tv_nsec / 1000000, log_prog,
                names[level & 7], id, msg);
    }
}
