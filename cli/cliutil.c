/* cliutil.c - what several `cairn` commands share (see cliutil.h): numbers,
 * the scheduler's API paths and answers, waiting on it through restarts,
 * JSON fields, times, durations and sizes, and the printing of runs and
 * their tasks (the runs table of `runs list` and `dags show`; the task
 * table, errors, notes and metrics of `runs show`, `trigger --wait`,
 * `clear` and `runs retry|cancel`).
 *
 * It owns no memory past a call but the SIGINT flag (cli_catch_sigint):
 * results go into the caller's buffers, or are malloc'd for the caller to
 * free where cliutil.h says so. Output goes to stdout, messages to stderr.
 */
#include "cliutil.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cal.h"
#include "client.h"
#include "err.h"
#include "opt.h"
#include "table.h"
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

/* ---- durations, states, sizes -------------------------------------------- */

/* Like cli_jtime, in milliseconds: keeps the fraction of a second the API
 * gives ("...T09:22:50.123Z"). */
static int
cli_jtime_ms(const json_t *o, const char *key, int64_t *ms)
{
    int64_t secs, frac = 0;
    if (!cli_jtime(o, key, &secs))
        return 0;
    const char *dot = strchr(cli_jstr(o, key), '.');
    int digits = 0;
    for (const char *p = dot ? dot + 1 : ""; *p >= '0' && *p <= '9' && digits < 3; p++, digits++)
        frac = frac * 10 + (*p - '0');
    while (dot && digits++ < 3)
        frac *= 10;
    *ms = secs * 1000 + frac;
    return 1;
}

void
cli_fmt_duration(int64_t ms, char *buf, size_t len)
{
    if (ms < 0)
        ms = 0;
    int64_t s = ms / 1000;
    if (ms < 1000)
        snprintf(buf, len, "%" PRId64 "ms", ms);
    else if (s < 60)
        snprintf(buf, len, "%" PRId64 ".%" PRId64 "s", s, (ms % 1000) / 100);
    else if (s < 3600)
        snprintf(buf, len, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, len, "%" PRId64 "h%02" PRId64 "m", s / 3600, (s % 3600) / 60);
    else
        snprintf(buf, len, "%" PRId64 "d%02" PRId64 "h", s / 86400, (s % 86400) / 3600);
}

/* A duration in whole seconds ("5s", "4m05s", ...), for clocks that tick
 * while a command watches (elapsed time, "last seen ... ago"). */
void
cli_fmt_seconds(int64_t ms, char *buf, size_t len)
{
    if (ms < 60000)
        snprintf(buf, len, "%" PRId64 "s", ms < 0 ? 0 : ms / 1000);
    else
        cli_fmt_duration(ms, buf, len);
}

/* Duration of a run or task: duration_ms when given, else ended - started,
 * else (still going) now - started; "" when it has not started. */
void
cli_fmt_object_duration(const json_t *o, char *buf, size_t len)
{
    json_int_t ms;
    int64_t start, end;
    buf[0] = '\0';
    if (cli_jint(o, "duration_ms", &ms)) {
        cli_fmt_duration((int64_t)ms, buf, len);
    } else if (cli_jtime_ms(o, "started_at", &start)) {
        if (cli_jtime_ms(o, "ended_at", &end))
            cli_fmt_duration(end - start, buf, len);
        else
            cli_fmt_duration(clock_wall_ms() - start, buf, len);
    }
}

/* How an attempt ended, for the EXIT column: "timeout", "oom", "SIGKILL",
 * the exit code, or "" if not known (yet). */
static void
cli_fmt_exit(const json_t *t, char *buf, size_t len)
{
    json_int_t v;
    const json_t *sig = json_object_get(t, "signal");
    buf[0] = '\0';
    if (json_is_true(json_object_get(t, "timed_out"))) {
        snprintf(buf, len, "timeout");
    } else if (json_is_true(json_object_get(t, "oom_killed"))) {
        snprintf(buf, len, "oom");
    } else if (json_is_integer(sig)) {
        const char *name = sigabbrev_np((int)json_integer_value(sig));
        if (name)
            snprintf(buf, len, "SIG%s", name);
        else
            snprintf(buf, len, "signal %" JSON_INTEGER_FORMAT, json_integer_value(sig));
    } else if (json_is_string(sig)) {
        snprintf(buf, len, "%s", json_string_value(sig));
    } else if (cli_jint(t, "exit_code", &v)) {
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, v);
    }
}

/* The error of a task: its error text, else how it exited; "" if none. */
void
cli_fmt_task_error(const json_t *t, char *buf, size_t len)
{
    const char *e = cli_jstr(t, "error");
    if (e && *e) {
        snprintf(buf, len, "%s", e);
        return;
    }
    char ex[64];
    cli_fmt_exit(t, ex, sizeof(ex));
    if (ex[0] >= '0' && ex[0] <= '9')
        snprintf(buf, len, "exit code %s", ex);
    else
        snprintf(buf, len, "%s", ex);
}

/* First 12 characters of a version hash (or "" when null). */
void
cli_fmt_version(const json_t *o, const char *key, char *buf, size_t len)
{
    const char *v = cli_jstr(o, key);
    snprintf(buf, len, "%.12s", v ? v : "");
}

/* "1.2 MiB", "340 B" */
void
cli_fmt_size(int64_t n, char *buf, size_t len)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    if (n < 1024) {
        snprintf(buf, len, "%" PRId64 " B", n);
        return;
    }
    double v = (double)n;
    int u = -1;
    while (v >= 1024 && u < 3) {
        v /= 1024;
        u++;
    }
    snprintf(buf, len, v < 10 ? "%.1f %s" : "%.0f %s", v, units[u]);
}

void
cli_cell_state(struct table *t, const char *state)
{
    table_cell_color(t, state, table_state_color(state));
}

/* A task's state; "success (cached)" when it reused an earlier attempt. */
static void
cli_cell_task_state(struct table *t, const json_t *task)
{
    const char *st = cli_jstr(task, "state");
    if (st && !strcmp(st, "success") && json_is_true(json_object_get(task, "cached")))
        table_cell_color(t, "success (cached)", table_state_color(st));
    else
        cli_cell_state(t, st);
}

int
cli_task_ended(const char *s)
{
    return s && (!strcmp(s, "success") || !strcmp(s, "failed") || !strcmp(s, "upstream_failed") ||
                 !strcmp(s, "skipped") || !strcmp(s, "cancelled"));
}

/* ---- runs and their tasks (runs show, trigger --wait, clear) ------------- */

void
cli_print_header_line(const char *key, const char *value)
{
    printf("%-14s%s\n", key, value && *value ? value : "-");
}

int
cli_runs_list(const char *server, const char *dag, const char *state, const char *limit,
              const char *cursor, int json, int hint)
{
    struct sb path;
    json_t *resp;
    sb_init(&path);
    sb_puts(&path, "/api/v1/runs");
    cli_query_add(&path, "dag", dag);
    cli_query_add(&path, "state", state);
    cli_query_add(&path, "limit", limit);
    cli_query_add(&path, "cursor", cursor);
    int rc = cli_api_get(server, path.buf, &resp);
    sb_free(&path);
    if (rc != 0)
        return 1;
    if (json) {
        cli_print_json(resp);
        json_decref(resp);
        return 0;
    }
    struct table *t = table_new();
    table_add_column(t, "RUN ID", TABLE_LEFT);
    table_add_column(t, "DAG", TABLE_LEFT);
    table_add_column(t, "STATE", TABLE_LEFT);
    table_add_column(t, "LOGICAL DATE", TABLE_LEFT);
    table_add_column(t, "STARTED", TABLE_LEFT);
    table_add_column(t, "ENDED", TABLE_LEFT);
    table_add_column(t, "DURATION", TABLE_RIGHT);
    const json_t *runs = json_object_get(resp, "runs");
    for (size_t i = 0; i < json_array_size(runs); i++) {
        const json_t *r = json_array_get(runs, i);
        char started[32], ended[32], dur[32];
        int64_t start = 0;
        cli_jtime(r, "started_at", &start);
        cli_fmt_field_time(r, "started_at", 0, started, sizeof(started));
        cli_fmt_field_time(r, "ended_at", start, ended, sizeof(ended));
        cli_fmt_object_duration(r, dur, sizeof(dur));
        table_add_row(t);
        table_cell(t, cli_jstr(r, "run_id"));
        table_cell(t, cli_jstr(r, "dag"));
        cli_cell_state(t, cli_jstr(r, "state"));
        table_cell(t, cli_jstr(r, "logical_date"));
        table_cell(t, started);
        table_cell(t, ended);
        table_cell(t, dur);
    }
    table_print(t, stdout, table_use_color(stdout));
    table_free(t);
    const char *next = cli_jstr(resp, "next_cursor");
    if (hint && next)
        printf("(more runs: the next page is --cursor %s)\n", next);
    json_decref(resp);
    return 0;
}

void
cli_print_task_table(const json_t *run, int color)
{
    struct table *t = table_new();
    table_add_column(t, "TASK", TABLE_LEFT);
    table_add_column(t, "STATE", TABLE_LEFT);
    table_add_column(t, "ATTEMPTS", TABLE_RIGHT);
    table_add_column(t, "WORKER", TABLE_LEFT);
    table_add_column(t, "STARTED", TABLE_LEFT);
    table_add_column(t, "ENDED", TABLE_LEFT);
    table_add_column(t, "DURATION", TABLE_RIGHT);
    table_add_column(t, "EXIT", TABLE_RIGHT);
    const json_t *tasks = json_object_get(run, "tasks");
    for (size_t i = 0; i < json_array_size(tasks); i++) {
        const json_t *task = json_array_get(tasks, i);
        char started[32], ended[32], dur[32], ex[64];
        int64_t start = 0;
        json_int_t att = 0, max = 0;
        cli_jtime(task, "started_at", &start);
        cli_fmt_field_time(task, "started_at", 0, started, sizeof(started));
        cli_fmt_field_time(task, "ended_at", start, ended, sizeof(ended));
        cli_fmt_object_duration(task, dur, sizeof(dur));
        cli_fmt_exit(task, ex, sizeof(ex));
        table_add_row(t);
        const json_t *map = json_object_get(task, "map");
        if (json_is_object(map)) {
            /* a mapped task: one row, its instances counted */
            json_int_t n = json_integer_value(json_object_get(map, "n"));
            table_cellf(t, "%s[%" JSON_INTEGER_FORMAT "]", cli_jstr(task, "task"), n);
            cli_cell_task_state(t, task);
            struct sb counts;
            sb_init(&counts);
            const char *k;
            json_t *v;
            json_object_foreach((json_t *)json_object_get(map, "counts"), k, v)
            {
                sb_printf(&counts, "%s%" JSON_INTEGER_FORMAT " %s", counts.len ? ", " : "",
                          json_integer_value(v), k);
            }
            table_cell(t, counts.buf ? counts.buf : "-");
            sb_free(&counts);
            table_cell(t, "");
            table_cell(t, started);
            table_cell(t, ended);
            table_cell(t, dur);
            table_cell(t, "");
            continue;
        }
        table_cell(t, cli_jstr(task, "task"));
        cli_cell_task_state(t, task);
        cli_jint(task, "attempts", &att);
        if (cli_jint(task, "max_attempts", &max) && max > 0)
            table_cellf(t, "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT, att, max);
        else
            table_cellf(t, "%" JSON_INTEGER_FORMAT, att);
        table_cell(t, cli_jstr(task, "worker"));
        table_cell(t, started);
        table_cell(t, ended);
        table_cell(t, dur);
        table_cell_color(t, ex, strcmp(ex, "0") != 0 ? "31" : NULL);
    }
    table_print(t, stdout, color);
    table_free(t);
}

/* Print each multi-line text indented under its first line. */
static void
cli_print_indented(const char *text, const char *indent)
{
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (p != text)
            fputs(indent, stdout);
        fwrite(p, 1, n, stdout);
        putchar('\n');
        p += n + (nl ? 1 : 0);
    }
}

int
cli_error_lines(const char *v)
{
    if (!v)
        return CLI_ERROR_LINES_DEFAULT;
    long n = strtol(v, NULL, 10);
    return n < 0 ? 0 : n > INT_MAX ? INT_MAX : (int)n;
}

/* One line of a task's stderr, indented, as it can safely go to a
 * terminal: a line end dropped, other control characters (C0, DEL and the
 * C1 range, which a terminal may obey) shown as '?'. */
static void
cli_print_stderr_line(const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    fputs("    ", stdout);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c == 0xc2 && i + 1 < n && (unsigned char)line[i + 1] >= 0x80 &&
            (unsigned char)line[i + 1] <= 0x9f) {
            putchar('?'); /* U+0080 .. U+009F */
            i++;
        } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
            putchar('?');
        } else {
            putchar(c);
        }
    }
    putchar('\n');
}

/* The last n lines of the task's stderr_tail. */
static void
cli_print_stderr_tail(const json_t *task, int n)
{
    const json_t *tail = json_object_get(task, "stderr_tail");
    size_t len = json_array_size(tail);
    for (size_t i = len > (size_t)n ? len - (size_t)n : 0; n > 0 && i < len; i++) {
        const char *line = json_string_value(json_array_get(tail, i));
        if (line)
            cli_print_stderr_line(line);
    }
}

/* Why tasks failed, are retrying or were skipped, below the task table. */
void
cli_print_task_errors(const json_t *run, int color, int error_lines)
{
    int first = 1;
    const json_t *tasks = json_object_get(run, "tasks");
    for (size_t i = 0; i < json_array_size(tasks); i++) {
        const json_t *task = json_array_get(tasks, i);
        const char *state = cli_jstr(task, "state");
        if (!state || (strcmp(state, "failed") && strcmp(state, "up_for_retry") &&
                       strcmp(state, "upstream_failed") && strcmp(state, "skipped") &&
                       strcmp(state, "cancelled")))
            continue;
        char err[2048], retry[32];
        cli_fmt_task_error(task, err, sizeof(err));
        if (!err[0])
            continue;
        if (first)
            putchar('\n');
        first = 0;
        json_int_t att = 0, max = 0;
        cli_jint(task, "attempts", &att);
        cli_jint(task, "max_attempts", &max);
        table_put_color(stdout, cli_jstr(task, "task") ? cli_jstr(task, "task") : "?",
                        table_state_color(state), color);
        if (att > 0 && max > 0)
            printf(" (attempt %" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT, att, max);
        else if (att > 0)
            printf(" (attempt %" JSON_INTEGER_FORMAT, att);
        cli_fmt_field_time(task, "next_retry_at", clock_wall_ms() / 1000, retry, sizeof(retry));
        if (!strcmp(state, "up_for_retry") && retry[0])
            printf("%sretry at %s", att > 0 ? "; " : " (", retry);
        if (att > 0 || (!strcmp(state, "up_for_retry") && retry[0]))
            putchar(')');
        fputs(": ", stdout);
        cli_print_indented(err, "    ");
        if (!strcmp(state, "failed") || !strcmp(state, "up_for_retry"))
            cli_print_stderr_tail(task, error_lines);
    }
}

/* Where cached tasks came from, where tasks published and why queued
 * tasks wait for a worker, below the task table. */
void
cli_print_task_notes(const json_t *run)
{
    int first = 1;
    const json_t *tasks = json_object_get(run, "tasks");
    for (size_t i = 0; i < json_array_size(tasks); i++) {
        const json_t *task = json_array_get(tasks, i);
        const json_t *from = json_object_get(task, "cached_from");
        const json_t *pub = json_object_get(task, "published");
        const char *name = cli_jstr(task, "task") ? cli_jstr(task, "task") : "?";
        const char *waiting = cli_jstr(task, "waiting");
        const json_t *secs = json_object_get(task, "secrets");
        if (!json_is_object(from) && !json_is_object(pub) && !waiting &&
            !json_array_size(secs))
            continue;
        if (first)
            putchar('\n');
        first = 0;
        if (json_is_object(from)) {
            json_int_t att = 0;
            cli_jint(from, "attempt", &att);
            printf("%s: cached from run %s (attempt %" JSON_INTEGER_FORMAT "); it did not run\n",
                   name, cli_jstr(from, "run_id") ? cli_jstr(from, "run_id") : "?", att);
        }
        if (waiting)
            printf("%s: waiting: %s\n", name, waiting);
        if (json_array_size(secs)) {
            printf("%s: secrets:", name);
            for (size_t k = 0; k < json_array_size(secs); k++) {
                const json_t *se = json_array_get(secs, k);
                printf("%s %s=<secret %s>", k ? "," : "", cli_jstr(se, "env") ?: "?",
                       cli_jstr(se, "name") ?: "?");
            }
            putchar('\n');
        }
        if (json_is_object(pub))
            printf("%s: published to %s (%s points there)\n", name,
                   cli_jstr(pub, "path") ? cli_jstr(pub, "path") : "?",
                   cli_jstr(pub, "latest") ? cli_jstr(pub, "latest") : "latest");
    }
}

/* Metrics that tasks stored, one line a task: "evaluate  accuracy=0.9556 f1=0.95". */
void
cli_print_task_metrics(const json_t *run)
{
    const json_t *tasks = json_object_get(run, "tasks");
    int first = 1;
    size_t width = 0;
    for (size_t i = 0; i < json_array_size(tasks); i++) {
        const json_t *task = json_array_get(tasks, i);
        if (json_object_size(json_object_get(task, "metrics")) && cli_jstr(task, "task") &&
            strlen(cli_jstr(task, "task")) > width)
            width = strlen(cli_jstr(task, "task"));
    }
    for (size_t i = 0; i < json_array_size(tasks); i++) {
        const json_t *task = json_array_get(tasks, i);
        json_t *m = json_object_get(task, "metrics");
        if (!json_object_size(m))
            continue;
        if (first)
            printf("\nmetrics:\n");
        first = 0;
        printf("  %-*s", (int)width, cli_jstr(task, "task") ? cli_jstr(task, "task") : "?");
        const char *k;
        json_t *v;
        json_object_foreach(m, k, v) printf("  %s=%.6g", k, json_number_value(v));
        putchar('\n');
    }
}

/* ---- arguments shared by several commands -------------------------------- */

/* --param NAME=VALUE into params; 0, or 2 after printing cmd's usage. */
int
cli_param_add(json_t *params, const char *v, const struct opt_cmd *cmd)
{
    const char *eq = strchr(v, '=');
    if (!eq || eq == v)
        return opt_fail(cmd, "--param takes NAME=VALUE, not", v);
    char *key = xstrndup(v, (size_t)(eq - v));
    json_t *jv = json_string(eq + 1);
    int bad = !jv || json_object_set_new(params, key, jv) != 0;
    free(key);
    if (bad)
        return opt_fail(cmd, "--param is not valid UTF-8:", v);
    return 0;
}

/* Split "TASK/NAME" into its parts (pointers into a copy the caller frees
 * through *copy); -1 if it is not of that form. */
int
cli_split_task_name(const char *arg, char **copy, const char **task, const char **name)
{
    const char *slash = strchr(arg, '/');
    if (!slash || slash == arg || !slash[1] || strchr(slash + 1, '/'))
        return -1;
    *copy = xstrdup(arg);
    (*copy)[slash - arg] = '\0';
    *task = *copy;
    *name = *copy + (slash - arg) + 1;
    return 0;
}

/* "/api/v1/runs/RUN/artifacts/TASK/NAME" + tail, encoded, + "?dag=D". */
char *
cli_artifact_path(const char *run, const char *task, const char *name, const char *tail,
                  const char *dag)
{
    struct sb sb;
    sb_init(&sb);
    char *et = client_urlencode(task), *en = client_urlencode(name);
    char *at = xasprintf("/artifacts/%s/%s%s", et, en, tail ? tail : "");
    free(et);
    free(en);
    cli_run_path(&sb, run, at, dag);
    free(at);
    return sb_take(&sb);
}
