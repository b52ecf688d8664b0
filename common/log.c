#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

int log_level_max = LOG_INFO;
static const char *log_prog = "cairn";
static int log_journal;
static enum log_format log_format_cur = LOG_FORMAT_TEXT;

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

int
log_format_parse(const char *s)
{
    if (!strcmp(s, "text"))
        return LOG_FORMAT_TEXT;
    if (!strcmp(s, "json"))
        return LOG_FORMAT_JSON;
    return -1;
}

void
log_set_format(enum log_format f)
{
    log_format_cur = f;
}

/* s as a JSON string; bytes that are not UTF-8 become '?' */
static json_t *
log__string(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    size_t n = strlen(s);
    char *c = malloc(n + 1);
    if (!c)
        return json_string("?");
    for (size_t i = 0; i <= n; i++)
        c[i] = (unsigned char)s[i] >= 0x80 ? '?' : s[i];
    j = json_string(c);
    free(c);
    return j;
}

static void
log__json(int level, const char *names[], const char *ts, const char *id, const char *msg)
{
    json_t *o = json_object();
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(names[level & 7]));
    json_object_set_new(o, "msg_id", log__string(id));
    json_object_set_new(o, "msg", log__string(msg));
    json_object_set_new(o, "prog", log__string(log_prog));
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!text)
        return;
    char prefix[8] = "";
    if (log_journal)
        snprintf(prefix, sizeof(prefix), "<%d>", level & 7);
    size_t pl = strlen(prefix), tl = strlen(text);
    char *line = malloc(pl + tl + 2);
    if (line) {
        memcpy(line, prefix, pl);
        memcpy(line + pl, text, tl);
        line[pl + tl] = '\n';
        line[pl + tl + 1] = '\0';
        fputs(line, stderr);
        free(line);
    }
    free(text);
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
    if (log_format_cur == LOG_FORMAT_JSON) {
        struct timespec ts;
        struct tm tm;
        char tbuf[32], full[48];
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(full, sizeof(full), "%s.%03ldZ", tbuf, ts.tv_nsec / 1000000);
        log__json(level, names, full, id, msg);
    } else if (log_journal) {
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
