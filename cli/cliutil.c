/* cliutil.c - helpers the `cairn` subcommands share (see cliutil.h). */
#include "cliutil.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cal.h"
#include "client.h"
#include "err.h"
#include "util.h"

/* ---- arguments ---------------------------------------------------------- */

int
cli_parse_positive(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v <= 0)
        return -1;
    *out = v;
    return 0;
}

/* ---- talking to the scheduler ------------------------------------------- */

void
cli_query_add(struct sb *sb, const char *key, const char *value)
{
    if (!value)
        return;
    char *enc = client_urlencode(value);
    sb_printf(sb, "%c%s=%s", sb->buf && strchr(sb->buf, '?') ? '&' : '?', key, enc);
    free(enc);
}

void
cli_run_path(struct sb *sb, const char *run_id, const char *tail, const char *dag)
{
    char *enc = client_urlencode(run_id);
    sb_printf(sb, "/api/v1/runs/%s%s", enc, tail ? tail : "");
    free(enc);
    cli_query_add(sb, "dag", dag);
}

int
cli_api_get(const char *server, const char *path, json_t **out)
{
    char err[1024];
    if (client_get_json(server, path, out, err, sizeof(err)) != 0) {
        fprintf(stderr, "cairn: %s\n", err);
        return 1;
    }
    return 0;
}

void
cli_print_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
    if (s) {
        puts(s);
        free(s);
    }
}

/* ---- signals and waiting ------------------------------------------------ */

static volatile sig_atomic_t cli_sigint_seen;

static void
cli_on_sigint(int sig)
{
    (void)sig;
    cli_sigint_seen = 1;
}

void
cli_on_signal(int sig, void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

void
cli_catch_sigint(void)
{
    cli_on_signal(SIGINT, cli_on_sigint);
}

int
cli_interrupted(void)
{
    return cli_sigint_seen;
}

void
cli_sleep_until(int64_t since, int64_t ms)
{
    int64_t left = since + ms - clock_mono_ms();
    if (left <= 0 || cli_sigint_seen)
        return;
    struct timespec ts = {.tv_sec = left / 1000, .tv_nsec = (long)(left % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int
cli_is_transient(int rc)
{
    return rc == CAIRN_ENET || rc == CAIRN_ETIMEOUT;
}

int
cli_poll_retry(struct cli_poll *p, int64_t t0, const char *err, const char *lead)
{
    if (!p->unreachable_since) {
        p->unreachable_since = t0;
        fprintf(stderr, "%scairn: %s; retrying\n", lead, err);
    } else if (t0 - p->unreachable_since > CLI_POLL_GIVE_UP_MS) {
        fprintf(stderr, "cairn: gave up waiting for the scheduler\n");
        return 0;
    }
    cli_sleep_until(t0, CLI_POLL_RETRY_MS);
    return 1;
}

/* ---- JSON fields and times ---------------------------------------------- */

const char *
cli_jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

int
cli_jint(const json_t *o, const char *key, json_int_t *out)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return 0;
    *out = json_integer_value(v);
    return 1;
}

int
cli_jtime(const json_t *o, const char *key, int64_t *secs)
{
    const char *s = cli_jstr(o, key);
    int has_off = 0;
    if (!s || cal_parse(s, secs, NULL, &has_off) != 0)
        return 0;
    return 1; /* without an offset the API means UTC, which is what cal_parse gives */
}

void
cli_fmt_time(int64_t secs, int time_only, char *buf, size_t len)
{
    time_t t = (time_t)secs;
    struct tm tm;
    if (!localtime_r(&t, &tm) ||
        strftime(buf, len, time_only ? "%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(buf, len, "?");
}

static int
cli_same_local_day(int64_t a, int64_t b)
{
    time_t ta = (time_t)a, tb = (time_t)b;
    struct tm ma, mb;
    if (!localtime_r(&ta, &ma) || !localtime_r(&tb, &mb))
        return 0;
    return ma.tm_year == mb.tm_year && ma.tm_yday == mb.tm_yday;
}

void
cli_fmt_field_time(const json_t *o, const char *key, int64_t ref, char *buf, size_t len)
{
    int64_t secs;
    buf[0] = '\0';
    if (cli_jtime(o, key, &secs))
        cli_fmt_time(secs, ref && cli_same_local_day(secs, ref), buf, len);
}

/* ---- text --------------------------------------------------------------- */

void
cli_shell_quote(struct sb *sb, const char *s)
{
    if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                        "_-./=:,+@%") == strlen(s)) {
        sb_puts(sb, s);
        return;
    }
    sb_putc(sb, '\'');
    for (; *s; s++) {
        if (*s == '\'')
            sb_puts(sb, "'\\''");
        else
            sb_putc(sb, *s);
    }
    sb_putc(sb, '\'');
}
