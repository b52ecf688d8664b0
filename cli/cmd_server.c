/* cmd_server.c - the commands that talk to the scheduler's HTTP API
 * (docs/api.md): dags, trigger, runs, logs, workers. The manual is
 * docs/cli.md.
 *
 * Every command takes --server URL anywhere among its arguments (else
 * $CAIRN_SERVER, else client.h's default) and -h/--help. Exit codes: 0 done,
 * 1 the scheduler is unreachable, answered with an error or (trigger --wait)
 * the run failed, 2 a usage error.
 *
 * Times are printed in the local time zone (TZ); durations as 850ms, 12.3s,
 * 4m05s, 2h03m, 3d04h.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "cliutil.h"
#include "err.h"
#include "opt.h"
#include "table.h"
#include "util.h"

/* How often trigger --wait, backfill --wait and logs --follow ask the
 * scheduler (cliutil.h has how they ride out its restarts). */
#define POLL_INTERVAL_MS 200

/* ---- formatting --------------------------------------------------------- */

/* Like cli_jtime, in milliseconds: keeps the fraction of a second the API
 * gives ("...T09:22:50.123Z"). */
static int
jtime_ms(const json_t *o, const char *key, int64_t *ms)
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

static void
fmt_duration(int64_t ms, char *buf, size_t len)
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
static void
fmt_seconds(int64_t ms, char *buf, size_t len)
{
    if (ms < 60000)
        snprintf(buf, len, "%" PRId64 "s", ms < 0 ? 0 : ms / 1000);
    else
        fmt_duration(ms, buf, len);
}

/* Duration of a run or task: duration_ms when given, else ended - started,
 * else (still going) now - started; "" when it has not started. */
static void
fmt_object_duration(const json_t *o, char *buf, size_t len)
{
    json_int_t ms;
    int64_t start, end;
    buf[0] = '\0';
    if (cli_jint(o, "duration_ms", &ms)) {
        fmt_duration((int64_t)ms, buf, len);
    } else if (jtime_ms(o, "started_at", &start)) {
        if (jtime_ms(o, "ended_at", &end))
            fmt_duration(end - start, buf, len);
        else
            fmt_duration(clock_wall_ms() - start, buf, len);
    }
}

/* How an attempt ended, for the EXIT column: "timeout", "oom", "SIGKILL",
 * the exit code, or "" if not known (yet). */
static void
fmt_exit(const json_t *t, char *buf, size_t len)
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
static void
fmt_task_error(const json_t *t, char *buf, size_t len)
{
    const char *e = cli_jstr(t, "error");
    if (e && *e) {
        snprintf(buf, len, "%s", e);
        return;
    }
    char ex[64];
    fmt_exit(t, ex, sizeof(ex));
    if (ex[0] >= '0' && ex[0] <= '9')
        snprintf(buf, len, "exit code %s", ex);
    else
        snprintf(buf, len, "%s", ex);
}

/* First 12 characters of a version hash (or "" when null). */
static void
fmt_version(const json_t *o, const char *key, char *buf, size_t len)
{
    const char *v = cli_jstr(o, key);
    snprintf(buf, len, "%.12s", v ? v : "");
}

static void
cell_state(struct table *t, const char *state)
{
    table_cell_color(t, state, table_state_color(state));
}

/* A task's state; "success (cached)" when it reused an earlier attempt. */
static void
cell_task_state(struct table *t, const json_t *task)
{
    const char *st = cli_jstr(task, "state");
    if (st && !strcmp(st, "success") && json_is_true(json_object_get(task, "cached")))
        table_cell_color(t, "success (cached)", table_state_color(st));
    else
        cell_state(t, st);
}

/* ---- cairn dags --------------------------------------------------------- */

struct dags_args {
    const char *server, *n;
    int json;
};

static const struct opt dags_list_opts[] = {
    OPT_FLAG("--json", NULL, struct dags_args, json, "print the API's answer as JSON"),
    OPT_SERVER(struct dags_args, server),
};

static const struct opt dags_show_opts[] = {
    OPT_FLAG("--json", NULL, struct dags_args, json,
             "print the DAG as JSON (the API's answer, with next_runs)"),
    OPT_SERVER(struct dags_args, server),
};

static const struct opt dags_pause_opts[] = {
    OPT_SERVER(struct dags_args, server),
};

static const struct opt dags_next_opts[] = {
    OPT_FLAG("--json", NULL, struct dags_args, json, "print the API's answer as JSON"),
    OPT_STR("-n", NULL, "N", struct dags_args, n, "how many logical dates (default 5)"),
    OPT_SERVER(struct dags_args, server),
};

static const struct opt_cmd dags_list_cmd, dags_show_cmd, dags_pause_cmd, dags_unpause_cmd,
    dags_next_cmd;
static const struct opt_cmd *const dags_family[] = {
    &dags_list_cmd, &dags_show_cmd, &dags_pause_cmd, &dags_unpause_cmd, &dags_next_cmd, NULL,
};

static const struct opt_cmd dags_list_cmd = {
    .name = "dags list",
    .max_args = 0,
    .about = "List the DAGs the scheduler loaded, with the errors of files that do not load.",
    OPT_TABLE(dags_list_opts),
    .family = dags_family,
};

static const struct opt_cmd dags_show_cmd = {
    .name = "dags show",
    .args = "DAG",
    .max_args = 1,
    .about = "Show a DAG: its file, version, schedule, next run, tasks and their needs, and\n"
             "its last 5 runs.",
    OPT_TABLE(dags_show_opts),
    .family = dags_family,
};

static const struct opt_cmd dags_pause_cmd = {
    .name = "dags pause",
    .args = "DAG",
    .max_args = 1,
    .about = "Create no scheduled runs of DAG until it is unpaused (manual triggers and\n"
             "backfills still work).",
    OPT_TABLE(dags_pause_opts),
    .family = dags_family,
};

static const struct opt_cmd dags_unpause_cmd = {
    .name = "dags unpause",
    .args = "DAG",
    .max_args = 1,
    .about = "Let DAG's schedule create runs again; missed intervals are created as its\n"
             "catchup says.",
    OPT_TABLE(dags_pause_opts),
    .family = dags_family,
};

static const struct opt_cmd dags_next_cmd = {
    .name = "dags next-runs",
    .args = "DAG",
    .max_args = 1,
    .about = "Print the next logical dates of DAG's schedule and when each run will be\n"
             "created.",
    OPT_TABLE(dags_next_opts),
    .family = dags_family,
};

static int runs_list(const char *server, const char *dag, const char *state, const char *limit,
                     int json);
static void print_dag_errors(const json_t *dags);
static void print_header_line(const char *key, const char *value);

/* dags show: the DAG, its tasks, its next run and its last runs. */
static int
dags_show(const char *server, const char *dag, int json)
{
    char *enc = client_urlencode(dag);
    char *path = xasprintf("/api/v1/dags/%s", enc);
    char *npath = xasprintf("/api/v1/dags/%s/next-runs?n=1", enc);
    free(enc);
    json_t *d = NULL, *next = NULL;
    int rc = cli_api_get(server, path, &d);
    free(path);
    if (rc == 0 && cli_api_get(server, npath, &next) != 0)
        rc = 1;
    free(npath);
    if (rc) {
        json_decref(d);
        return 1;
    }
    if (json) {
        json_object_set(d, "next_runs", json_object_get(next, "next_runs"));
        cli_print_json(d);
        json_decref(d);
        json_decref(next);
        return 0;
    }
    char ver[16], buf[256];
    fmt_version(d, "version", ver, sizeof(ver));
    print_header_line("dag", cli_jstr(d, "dag"));
    print_header_line("description", cli_jstr(d, "description"));
    print_header_line("file", cli_jstr(d, "file"));
    print_header_line("version", ver);
    const char *sched = cli_jstr(d, "schedule");
    snprintf(buf, sizeof(buf), "%s%s%s%s", sched ? sched : "none", sched ? " (" : "",
             sched ? cli_jstr(d, "timezone") : "", sched ? ")" : "");
    print_header_line("schedule", buf);
    print_header_line("paused", json_is_true(json_object_get(d, "paused")) ? "yes" : "no");
    const json_t *n0 = json_array_get(json_object_get(next, "next_runs"), 0);
    if (n0)
        snprintf(buf, sizeof(buf), "%s (created at %s)", cli_jstr(n0, "logical_date"),
                 cli_jstr(n0, "created_at"));
    print_header_line("next run", n0 ? buf : NULL);
    putchar('\n');
    struct table *t = table_new();
    table_add_column(t, "TASK", TABLE_LEFT);
    table_add_column(t, "NEEDS", TABLE_LEFT);
    table_add_column(t, "TRIGGER RULE", TABLE_LEFT);
    table_add_column(t, "RETRIES", TABLE_RIGHT);
    table_add_column(t, "TIMEOUT", TABLE_RIGHT);
    table_add_column(t, "IMAGE", TABLE_LEFT);
    const json_t *tl = json_object_get(d, "task_list");
    for (size_t i = 0; i < json_array_size(tl); i++) {
        const json_t *task = json_array_get(tl, i);
        struct sb needs;
        sb_init(&needs);
        const json_t *nv = json_object_get(task, "needs");
        for (size_t k = 0; k < json_array_size(nv); k++)
            sb_printf(&needs, "%s%s", k ? ", " : "", json_string_value(json_array_get(nv, k)));
        json_int_t retries = 0, tmo = 0;
        cli_jint(task, "retries", &retries);
        cli_jint(task, "timeout_ms", &tmo);
        char tbuf[32];
        fmt_duration(tmo, tbuf, sizeof(tbuf));
        table_add_row(t);
        table_cell(t, cli_jstr(task, "task"));
        table_cell(t, needs.len ? needs.buf : NULL);
        table_cell(t, cli_jstr(task, "trigger_rule"));
        table_cellf(t, "%" JSON_INTEGER_FORMAT, retries);
        table_cell(t, tmo > 0 ? tbuf : NULL);
        table_cell(t, cli_jstr(task, "image"));
        sb_free(&needs);
    }
    table_print(t, stdout, table_use_color(stdout));
    table_free(t);
    json_t *one = json_pack("[O]", d);
    print_dag_errors(one);
    json_decref(one);
    json_decref(next);
    json_decref(d);
    printf("\nlast runs:\n");
    return runs_list(server, dag, NULL, "5", 0);
}

/* dags next-runs */
static int
dags_next(const char *server, const char *dag, const char *n, int json)
{
    json_t *resp = NULL;
    char *enc = client_urlencode(dag);
    char *path = xasprintf("/api/v1/dags/%s/next-runs?n=%s", enc, n ? n : "5");
    free(enc);
    if (cli_api_get(server, path, &resp) != 0) {
        free(path);
        return 1;
    }
    free(path);
    if (json) {
        cli_print_json(resp);
    } else {
        const json_t *runs = json_object_get(resp, "next_runs");
        size_t i;
        json_t *r;
        if (json_array_size(runs) == 0)
            printf("DAG '%s' has no upcoming scheduled runs\n", dag);
        else
            printf("%-26s %s\n", "LOGICAL DATE", "CREATED AT");
        json_array_foreach(runs, i, r)
            printf("%-26s %s\n", json_string_value(json_object_get(r, "logical_date")),
                   json_string_value(json_object_get(r, "created_at")));
    }
    json_decref(resp);
    return 0;
}

/* dags pause|unpause (sub) */
static int
dags_pause(const char *server, const char *sub, const char *dag)
{
    char err[512];
    json_t *resp = NULL;
    char *enc = client_urlencode(dag);
    char *path = xasprintf("/api/v1/dags/%s/%s", enc, sub);
    int rc = 0;
    free(enc);
    json_t *body = json_object();
    if (client_post_json(server, path, body, &resp, err, sizeof(err)) != 0) {
        fprintf(stderr, "cairn: %s\n", err);
        rc = 1;
    } else {
        printf("DAG '%s' %s\n", dag, !strcmp(sub, "pause") ? "paused" : "unpaused");
    }
    json_decref(body);
    json_decref(resp);
    free(path);
    return rc;
}

static void
print_dag_errors(const json_t *dags)
{
    int first = 1;
    for (size_t i = 0; i < json_array_size(dags); i++) {
        const json_t *d = json_array_get(dags, i);
        const json_t *errors = json_object_get(d, "errors");
        for (size_t j = 0; j < json_array_size(errors); j++) {
            const json_t *e = json_array_get(errors, j);
            const char *file = cli_jstr(e, "file"), *msg = cli_jstr(e, "message"),
                       *hint = cli_jstr(e, "hint");
            json_int_t line = 0, col = 0;
            cli_jint(e, "line", &line);
            cli_jint(e, "column", &col);
            if (first)
                putchar('\n');
            first = 0;
            if (!file)
                file = cli_jstr(d, "file");
            if (line > 0)
                printf("%s:%" JSON_INTEGER_FORMAT ":%" JSON_INTEGER_FORMAT ": %s\n",
                       file ? file : "?", line, col, msg ? msg : "error");
            else
                printf("%s: %s\n", file ? file : "?", msg ? msg : "error");
            if (hint && *hint)
                printf("  hint: %s\n", hint);
        }
    }
}

/* Parse a dags sub-command that names a DAG: OPT_GO with *dag set, or the
 * exit code. */
static int
dags_parse_dag(const struct opt_cmd *cmd, int argc, char **argv, struct dags_args *a,
               const char **dag)
{
    int nargs, rc = opt_parse(cmd, argc, argv, a, &nargs);
    if (rc != OPT_GO)
        return rc;
    if (nargs == 0)
        return opt_fail(cmd, "missing DAG name", NULL);
    *dag = argv[1];
    return OPT_GO;
}

static int
dags_show_run(int argc, char **argv)
{
    struct dags_args a = {0};
    const char *dag = NULL;
    int rc = dags_parse_dag(&dags_show_cmd, argc, argv, &a, &dag);
    return rc != OPT_GO ? rc : dags_show(client_server_url(a.server), dag, a.json);
}

static int
dags_pause_run(int argc, char **argv)
{
    int pause = strcmp(argv[0], "pause") == 0;
    struct dags_args a = {0};
    const char *dag = NULL;
    int rc = dags_parse_dag(pause ? &dags_pause_cmd : &dags_unpause_cmd, argc, argv, &a, &dag);
    return rc != OPT_GO ? rc : dags_pause(client_server_url(a.server), argv[0], dag);
}

static int
dags_next_run(int argc, char **argv)
{
    struct dags_args a = {0};
    const char *dag = NULL;
    int rc = dags_parse_dag(&dags_next_cmd, argc, argv, &a, &dag);
    return rc != OPT_GO ? rc : dags_next(client_server_url(a.server), dag, a.n, a.json);
}

static int
dags_list_run(int argc, char **argv)
{
    struct dags_args a = {0};
    int nargs, rc = opt_parse(&dags_list_cmd, argc, argv, &a, &nargs);
    if (rc != OPT_GO)
        return rc;
    const char *server = a.server;
    int json = a.json;
    json_t *resp;
    if (cli_api_get(client_server_url(server), "/api/v1/dags", &resp) != 0)
        return 1;
    if (json) {
        cli_print_json(resp);
        json_decref(resp);
        return 0;
    }
    const json_t *dags = json_object_get(resp, "dags");
    struct table *t = table_new();
    table_add_column(t, "DAG", TABLE_LEFT);
    table_add_column(t, "SCHEDULE", TABLE_LEFT);
    table_add_column(t, "PAUSED", TABLE_LEFT);
    table_add_column(t, "TASKS", TABLE_RIGHT);
    table_add_column(t, "VERSION", TABLE_LEFT);
    table_add_column(t, "ERRORS", TABLE_RIGHT);
    for (size_t i = 0; i < json_array_size(dags); i++) {
        const json_t *d = json_array_get(dags, i);
        char ver[16];
        json_int_t ntasks = 0;
        size_t nerr = json_array_size(json_object_get(d, "errors"));
        int paused = json_is_true(json_object_get(d, "paused"));
        fmt_version(d, "version", ver, sizeof(ver));
        table_add_row(t);
        table_cell(t, cli_jstr(d, "dag"));
        table_cell(t, cli_jstr(d, "schedule"));
        table_cell_color(t, paused ? "yes" : "no", paused ? "33" : NULL);
        if (cli_jint(d, "tasks", &ntasks))
            table_cellf(t, "%" JSON_INTEGER_FORMAT, ntasks);
        else
            table_cell(t, NULL);
        table_cell(t, ver);
        if (nerr) {
            char n[32];
            snprintf(n, sizeof(n), "%zu", nerr);
            table_cell_color(t, n, "31");
        } else {
            table_cell(t, "0");
        }
    }
    table_print(t, stdout, table_use_color(stdout));
    table_free(t);
    print_dag_errors(dags);
    json_decref(resp);
    return 0;
}

static const struct opt_sub dags_subs[] = {
    {"list", &dags_list_cmd, dags_list_run},      {"show", &dags_show_cmd, dags_show_run},
    {"pause", &dags_pause_cmd, dags_pause_run},   {"unpause", &dags_unpause_cmd, dags_pause_run},
    {"next-runs", &dags_next_cmd, dags_next_run},
};

static const struct opt_group dags_group = {
    .name = "dags",
    .about = "List the DAGs the scheduler loaded (`cairn dags` alone lists them), show one,\n"
             "pause or unpause its schedule, or print its next scheduled runs.",
    OPT_SUBS(dags_subs),
    .no_word = &dags_subs[0],
};

static int
dags_main(int argc, char **argv)
{
    return opt_dispatch(&dags_group, argc, argv);
}

const struct cli_command cmd_dags = {"dags", dags_main, NULL, &dags_group};

/* ---- task tables (runs show, trigger --wait) --------------------------- */

static int
is_terminal_task_state(const char *s)
{
    return s && (!strcmp(s, "success") || !strcmp(s, "failed") || !strcmp(s, "upstream_failed") ||
                 !strcmp(s, "skipped") || !strcmp(s, "cancelled"));
}

static int
is_final_run_state(const char *s)
{
    return s && (!strcmp(s, "success") || !strcmp(s, "failed") || !strcmp(s, "cancelled"));
}

static void
print_task_table(const json_t *run, int color)
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
        fmt_object_duration(task, dur, sizeof(dur));
        fmt_exit(task, ex, sizeof(ex));
        table_add_row(t);
        table_cell(t, cli_jstr(task, "task"));
        cell_task_state(t, task);
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
print_indented(const char *text, const char *indent)
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

/* Why tasks failed, are retrying or were skipped, below the task table. */
static void
print_task_errors(const json_t *run, int color)
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
        fmt_task_error(task, err, sizeof(err));
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
        print_indented(err, "    ");
    }
}

/* Where cached tasks came from and where tasks published, below the task
 * table. */
static void
print_task_notes(const json_t *run)
{
    int first = 1;
    const json_t *tasks = json_object_get(run, "tasks");
    for (size_t i = 0; i < json_array_size(tasks); i++) {
        const json_t *task = json_array_get(tasks, i);
        const json_t *from = json_object_get(task, "cached_from");
        const json_t *pub = json_object_get(task, "published");
        const char *name = cli_jstr(task, "task") ? cli_jstr(task, "task") : "?";
        if (!json_is_object(from) && !json_is_object(pub))
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
        if (json_is_object(pub))
            printf("%s: published to %s (%s points there)\n", name,
                   cli_jstr(pub, "path") ? cli_jstr(pub, "path") : "?",
                   cli_jstr(pub, "latest") ? cli_jstr(pub, "latest") : "latest");
    }
}

/* Metrics that tasks stored, one line a task: "evaluate  accuracy=0.9556 f1=0.95". */
static void
print_task_metrics(const json_t *run)
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
        json_object_foreach(m, k, v)
            printf("  %s=%.6g", k, json_number_value(v));
        putchar('\n');
    }
}

/* ---- cairn runs --------------------------------------------------------- */

struct runs_args {
    const char *server, *dag, *state, *limit;
    int json;
};

static const struct opt runs_list_opts[] = {
    OPT_STR("--dag", NULL, "D", struct runs_args, dag, "only the runs of DAG D"),
    OPT_FLAG("--json", NULL, struct runs_args, json, "print the API's answer as JSON"),
    OPT_NUM("--limit", NULL, "N", 0, struct runs_args, limit, "at most N runs (default 100)"),
    OPT_SERVER(struct runs_args, server),
    OPT_STR("--state", NULL, "S", struct runs_args, state,
            "only the runs in state S: queued, running, success, failed or cancelled"),
};

static const struct opt runs_show_opts[] = {
    OPT_STR("--dag", NULL, "D", struct runs_args, dag,
            "the DAG of RUN (needed only when another DAG has a run with that id)"),
    OPT_FLAG("--json", NULL, struct runs_args, json, "print the run as the API returns it"),
    OPT_SERVER(struct runs_args, server),
};

static const struct opt runs_action_opts[] = {
    OPT_STR("--dag", NULL, "D", struct runs_args, dag,
            "the DAG of RUN (needed only when another DAG has a run with that id)"),
    OPT_FLAG("--json", NULL, struct runs_args, json, "print the run as the API returns it"),
    OPT_SERVER(struct runs_args, server),
};

static const struct opt_cmd runs_list_cmd, runs_show_cmd, runs_retry_cmd, runs_cancel_cmd;
static const struct opt_cmd *const runs_family[] = {
    &runs_list_cmd, &runs_show_cmd, &runs_retry_cmd, &runs_cancel_cmd, NULL,
};

static const struct opt_cmd runs_list_cmd = {
    .name = "runs list",
    .max_args = 0,
    .about = "List recent runs, newest first.",
    OPT_TABLE(runs_list_opts),
    .family = runs_family,
};

static const struct opt_cmd runs_show_cmd = {
    .name = "runs show",
    .args = "RUN",
    .max_args = 1,
    .about = "Show one run and its tasks: states, attempts, workers, times, exit codes,\n"
             "then the errors, metrics and notes of its tasks.",
    OPT_TABLE(runs_show_opts),
    .family = runs_family,
};

static const struct opt_cmd runs_retry_cmd = {
    .name = "runs retry",
    .args = "RUN",
    .max_args = 1,
    .about = "Run a run's failed, upstream_failed and cancelled tasks again, with every task\n"
             "downstream of them, reusing every other success (`cairn clear RUN\n"
             "--failed-only --downstream`).",
    OPT_TABLE(runs_action_opts),
    .family = runs_family,
};

static const struct opt_cmd runs_cancel_cmd = {
    .name = "runs cancel",
    .args = "RUN",
    .max_args = 1,
    .about = "Stop a queued or running run: its running attempts are killed, its other\n"
             "unfinished tasks and the run become cancelled.",
    OPT_TABLE(runs_action_opts),
    .family = runs_family,
};

static int run_action(const char *server, const char *run_id, const char *dag,
                      const char *action, json_t *body, int json);

static int
runs_list(const char *server, const char *dag, const char *state, const char *limit, int json)
{
    struct sb path;
    json_t *resp;
    sb_init(&path);
    sb_puts(&path, "/api/v1/runs");
    cli_query_add(&path, "dag", dag);
    cli_query_add(&path, "state", state);
    cli_query_add(&path, "limit", limit);
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
        fmt_object_duration(r, dur, sizeof(dur));
        table_add_row(t);
        table_cell(t, cli_jstr(r, "run_id"));
        table_cell(t, cli_jstr(r, "dag"));
        cell_state(t, cli_jstr(r, "state"));
        table_cell(t, cli_jstr(r, "logical_date"));
        table_cell(t, started);
        table_cell(t, ended);
        table_cell(t, dur);
    }
    table_print(t, stdout, table_use_color(stdout));
    table_free(t);
    json_decref(resp);
    return 0;
}

static void
print_header_line(const char *key, const char *value)
{
    printf("%-14s%s\n", key, value && *value ? value : "-");
}

static void
print_run_header(const json_t *run, int color)
{
    char buf[64];
    print_header_line("run", cli_jstr(run, "run_id"));
    print_header_line("dag", cli_jstr(run, "dag"));
    printf("%-14s", "state");
    table_put_color(stdout, cli_jstr(run, "state") ? cli_jstr(run, "state") : "-",
                    table_state_color(cli_jstr(run, "state")), color);
    putchar('\n');
    print_header_line("type", cli_jstr(run, "run_type"));
    print_header_line("logical date", cli_jstr(run, "logical_date"));
    fmt_version(run, "dag_version", buf, sizeof(buf));
    print_header_line("version", buf);

    struct sb sb;
    sb_init(&sb);
    json_t *params = json_object_get(run, "params");
    for (void *it = json_object_iter(params); it; it = json_object_iter_next(params, it)) {
        const char *k = json_object_iter_key(it);
        const json_t *v = json_object_iter_value(it);
        if (sb.len)
            sb_puts(&sb, ", ");
        if (json_is_string(v)) {
            sb_printf(&sb, "%s=%s", k, json_string_value(v));
        } else {
            char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            sb_printf(&sb, "%s=%s", k, s ? s : "?");
            free(s);
        }
    }
    print_header_line("params", sb.buf);
    sb_free(&sb);
    if (json_is_true(json_object_get(run, "no_cache")))
        print_header_line("cache", "not used (--no-cache): every task runs");

    int64_t start = 0;
    cli_jtime(run, "started_at", &start);
    cli_fmt_field_time(run, "started_at", 0, buf, sizeof(buf));
    print_header_line("started", buf);
    cli_fmt_field_time(run, "ended_at", 0, buf, sizeof(buf));
    print_header_line("ended", buf);
    fmt_object_duration(run, buf, sizeof(buf));
    print_header_line("duration", buf);
}

static int
runs_show(const char *server, const char *run_id, const char *dag, int json)
{
    struct sb path;
    json_t *run;
    sb_init(&path);
    cli_run_path(&path, run_id, NULL, dag);
    int rc = cli_api_get(server, path.buf, &run);
    sb_free(&path);
    if (rc != 0)
        return 1;
    if (json) {
        cli_print_json(run);
    } else {
        int color = table_use_color(stdout);
        print_run_header(run, color);
        putchar('\n');
        print_task_table(run, color);
        print_task_errors(run, color);
        print_task_notes(run);
        print_task_metrics(run);
    }
    json_decref(run);
    return 0;
}

static int
runs_list_run(int argc, char **argv)
{
    struct runs_args a = {0};
    int nargs, rc = opt_parse(&runs_list_cmd, argc, argv, &a, &nargs);
    if (rc != OPT_GO)
        return rc;
    return runs_list(client_server_url(a.server), a.dag, a.state, a.limit, a.json);
}

/* runs show|retry|cancel RUN; argv[0] says which. */
static int
runs_run_run(int argc, char **argv)
{
    const char *sub = argv[0];
    const struct opt_cmd *cmd = !strcmp(sub, "show")    ? &runs_show_cmd
                                : !strcmp(sub, "retry") ? &runs_retry_cmd
                                                        : &runs_cancel_cmd;
    struct runs_args a = {0};
    int nargs, rc = opt_parse(cmd, argc, argv, &a, &nargs);
    if (rc != OPT_GO)
        return rc;
    if (nargs == 0)
        return opt_fail(cmd, "missing RUN", NULL);
    if (strcmp(sub, "show") != 0)
        return run_action(client_server_url(a.server), argv[1], a.dag, sub, NULL, a.json);
    return runs_show(client_server_url(a.server), argv[1], a.dag, a.json);
}

static const struct opt_sub runs_subs[] = {
    {"list", &runs_list_cmd, runs_list_run},
    {"show", &runs_show_cmd, runs_run_run},
    {"retry", &runs_retry_cmd, runs_run_run},
    {"cancel", &runs_cancel_cmd, runs_run_run},
};

static const struct opt_group runs_group = {
    .name = "runs",
    .about = "List recent runs (newest first), show one run with its tasks, rerun what failed\n"
             "or cancel a run.",
    OPT_SUBS(runs_subs),
};

static int
runs_main(int argc, char **argv)
{
    return opt_dispatch(&runs_group, argc, argv);
}

const struct cli_command cmd_runs = {"runs", runs_main, NULL, &runs_group};

/* --param NAME=VALUE into params; 0, or 2 after printing cmd's usage. */
static int
param_add(json_t *params, const char *v, const struct opt_cmd *cmd)
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

/* ---- cairn clear, runs retry, runs cancel ------------------------------ */

struct clear_args {
    const char *server, *dag, *task;
    int json, downstream, failed_only;
};

static const struct opt clear_opts[] = {
    OPT_STR("--dag", NULL, "D", struct clear_args, dag,
            "the DAG of RUN (needed only when another DAG has a run with that id)"),
    OPT_FLAG("--downstream", NULL, struct clear_args, downstream,
             "also every task downstream of those chosen"),
    OPT_FLAG("--failed-only", NULL, struct clear_args, failed_only,
             "only the failed, upstream_failed and cancelled ones"),
    OPT_FLAG("--json", NULL, struct clear_args, json, "print the run as the API returns it"),
    OPT_SERVER(struct clear_args, server),
    OPT_STR("--task", NULL, "T", struct clear_args, task, "only task T (default: all of them)"),
};

static const struct opt_cmd clear_cmd = {
    .name = "clear",
    .args = "RUN",
    .max_args = 1,
    .about = "Reset finished tasks of a run so they run again (all of them, or --task T;\n"
             "--downstream adds every task after those, --failed-only keeps only failed,\n"
             "upstream_failed and cancelled ones). The run uses the DAG version it started\n"
             "with. `cairn runs retry RUN` is `clear RUN --failed-only --downstream`.",
    OPT_TABLE(clear_opts),
};

/* POST /runs/RUN/{clear,retry,cancel} and print what it did. */
static int
run_action(const char *server, const char *run_id, const char *dag, const char *action,
           json_t *body, int json)
{
    struct sb path;
    char err[1024];
    json_t *run = NULL, *empty = body ? NULL : json_object();
    sb_init(&path);
    char *tail = xasprintf("/%s", action);
    cli_run_path(&path, run_id, tail, dag);
    free(tail);
    int r = client_post_json(server, path.buf, body ? body : empty, &run, err, sizeof(err));
    sb_free(&path);
    json_decref(empty);
    if (r != 0) {
        fprintf(stderr, "cairn: %s\n", err);
        return 1;
    }
    if (json) {
        cli_print_json(run);
    } else {
        int color = table_use_color(stdout);
        const char *st = cli_jstr(run, "state");
        if (!strcmp(action, "cancel"))
            printf("run %s of %s cancelled\n\n", run_id, cli_jstr(run, "dag"));
        else
            printf("run %s of %s is %s again; follow it with `cairn runs show %s --dag %s`\n\n",
                   run_id, cli_jstr(run, "dag"), st ? st : "?", run_id, cli_jstr(run, "dag"));
        print_task_table(run, color);
        print_task_errors(run, color);
        print_task_metrics(run);
    }
    json_decref(run);
    return 0;
}

static int
clear_main(int argc, char **argv)
{
    struct clear_args a = {0};
    int nargs, rc = opt_parse(&clear_cmd, argc, argv, &a, &nargs);
    if (rc != OPT_GO)
        return rc;
    if (nargs == 0)
        return opt_fail(&clear_cmd, "missing RUN", NULL);
    const char *server = a.server, *dag = a.dag, *task = a.task, *run = argv[1];
    int json = a.json, downstream = a.downstream, failed_only = a.failed_only;
    json_t *body = json_pack("{s:b, s:b}", "downstream", downstream, "failed_only", failed_only);
    if (task)
        json_object_set_new(body, "task", json_string(task));
    rc = run_action(client_server_url(server), run, dag, "clear", body, json);
    json_decref(body);
    return rc;
}

const struct cli_command cmd_clear = {"clear", clear_main, &clear_cmd, NULL};

/* ---- cairn backfill ----------------------------------------------------- */

struct backfill_args {
    const char *server, *from, *to, *reprocess, *max_active, *dag;
    struct opt_list params;
    int json, wait, dry;
};

static const struct opt backfill_opts[] = {
    OPT_FLAG("--dry-run", NULL, struct backfill_args, dry,
             "print what would happen to each date; create nothing"),
    OPT_REQ("--from", NULL, "DATE", struct backfill_args, from,
            "the first logical date (a bare date: that whole day in the DAG's time zone)"),
    OPT_FLAG("--json", NULL, struct backfill_args, json, "print the API's answer as JSON"),
    OPT_NUM("--max-active-runs", NULL, "N", 0, struct backfill_args, max_active,
            "at most N of its runs at a time (default and upper bound: the DAG's "
            "max_active_runs)"),
    OPT_LIST("--param", NULL, "NAME=VALUE", struct backfill_args, params,
             "set a parameter the DAG declares, for every run (repeatable)"),
    OPT_CHOICE("--reprocess", NULL, "none|failed|all", struct backfill_args, reprocess,
               "what to do with dates that have a run: skip them (default), rerun failed "
               "tasks, rerun all"),
    OPT_SERVER(struct backfill_args, server),
    OPT_REQ("--to", NULL, "DATE", struct backfill_args, to, "the last logical date (included)"),
    OPT_FLAG("--wait", NULL, struct backfill_args, wait,
             "follow the progress; exit 0 only if every run succeeded"),
};

static const struct opt backfill_list_opts[] = {
    OPT_STR("--dag", NULL, "D", struct backfill_args, dag, "only the backfills of DAG D"),
    OPT_FLAG("--json", NULL, struct backfill_args, json, "print the API's answer as JSON"),
    OPT_SERVER(struct backfill_args, server),
};

static const struct opt backfill_id_opts[] = {
    OPT_FLAG("--json", NULL, struct backfill_args, json, "print the backfill as JSON"),
    OPT_SERVER(struct backfill_args, server),
};

static const struct opt_cmd backfill_cmd, backfill_list_cmd, backfill_show_cmd, backfill_cancel_cmd;
static const struct opt_cmd *const backfill_family[] = {
    &backfill_cmd, &backfill_list_cmd, &backfill_show_cmd, &backfill_cancel_cmd, NULL,
};

static const struct opt_cmd backfill_cmd = {
    .name = "backfill",
    .args = "DAG",
    .max_args = 1,
    .about = "Create one run per schedule tick whose logical date lies in [--from, --to]\n"
             "(inclusive; a bare date is that whole day in the DAG's time zone). Dates that\n"
             "have a run already are skipped (--reprocess none), rerun if it failed\n"
             "(failed: its failed tasks and their downstream), or rerun in full (all).\n"
             "The scheduler starts a new run as soon as one of the backfill's ends.\n"
             "--dry-run prints what would happen; --wait follows the progress and exits 0\n"
             "only if every run succeeded.",
    OPT_TABLE(backfill_opts),
    .family = backfill_family,
};

static const struct opt_cmd backfill_list_cmd = {
    .name = "backfill list",
    .max_args = 0,
    .about = "List the backfills, newest first, with their progress.",
    OPT_TABLE(backfill_list_opts),
    .family = backfill_family,
};

static const struct opt_cmd backfill_show_cmd = {
    .name = "backfill show",
    .args = "ID",
    .max_args = 1,
    .about = "Show a backfill: its range, progress, and each date's action and run.",
    OPT_TABLE(backfill_id_opts),
    .family = backfill_family,
};

static const struct opt_cmd backfill_cancel_cmd = {
    .name = "backfill cancel",
    .args = "ID",
    .max_args = 1,
    .about = "Stop a backfill: no new runs, and its runs that are still queued or running are\n"
             "cancelled.",
    OPT_TABLE(backfill_id_opts),
    .family = backfill_family,
};

static json_int_t
progress_of(const json_t *bf, const char *key)
{
    json_int_t v = 0;
    cli_jint(json_object_get(bf, "progress"), key, &v);
    return v;
}

/* "412/1000 done, 3 running, 2 failed, 5 skipped" */
static void
backfill_counts(const json_t *bf, char *buf, size_t len)
{
    json_int_t total = 0;
    cli_jint(bf, "total", &total);
    json_int_t ok = progress_of(bf, "success"), failed = progress_of(bf, "failed") +
                                                         progress_of(bf, "cancelled");
    json_int_t skipped = progress_of(bf, "skipped"), running = progress_of(bf, "running");
    json_int_t queued = progress_of(bf, "queued");
    snprintf(buf, len,
             "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT " done, %" JSON_INTEGER_FORMAT
             " running, %" JSON_INTEGER_FORMAT " queued, %" JSON_INTEGER_FORMAT
             " failed, %" JSON_INTEGER_FORMAT " skipped",
             ok + failed + skipped, total, running, queued, failed, skipped);
}

static void
backfill_table(const json_t *list)
{
    struct table *t = table_new();
    table_add_column(t, "ID", TABLE_LEFT);
    table_add_column(t, "DAG", TABLE_LEFT);
    table_add_column(t, "STATE", TABLE_LEFT);
    table_add_column(t, "FROM", TABLE_LEFT);
    table_add_column(t, "TO", TABLE_LEFT);
    table_add_column(t, "REPROCESS", TABLE_LEFT);
    table_add_column(t, "PROGRESS", TABLE_LEFT);
    table_add_column(t, "CREATED", TABLE_LEFT);
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *b = json_array_get(list, i);
        char counts[160], created[32];
        backfill_counts(b, counts, sizeof(counts));
        cli_fmt_field_time(b, "created_at", 0, created, sizeof(created));
        table_add_row(t);
        table_cell(t, cli_jstr(b, "id"));
        table_cell(t, cli_jstr(b, "dag"));
        cell_state(t, cli_jstr(b, "state"));
        table_cell(t, cli_jstr(b, "from"));
        table_cell(t, cli_jstr(b, "to"));
        table_cell(t, cli_jstr(b, "reprocess"));
        table_cell(t, counts);
        table_cell(t, created);
    }
    table_print(t, stdout, table_use_color(stdout));
    table_free(t);
}

static void
backfill_show(const json_t *bf)
{
    char counts[160];
    int color = table_use_color(stdout);
    print_header_line("backfill", cli_jstr(bf, "id"));
    print_header_line("dag", cli_jstr(bf, "dag"));
    printf("%-14s", "state");
    table_put_color(stdout, cli_jstr(bf, "state"), table_state_color(cli_jstr(bf, "state")), color);
    putchar('\n');
    print_header_line("from", cli_jstr(bf, "from"));
    print_header_line("to", cli_jstr(bf, "to"));
    print_header_line("reprocess", cli_jstr(bf, "reprocess"));
    backfill_counts(bf, counts, sizeof(counts));
    print_header_line("progress", counts);
    putchar('\n');
    const json_t *runs = json_object_get(bf, "runs");
    struct table *t = table_new();
    table_add_column(t, "LOGICAL DATE", TABLE_LEFT);
    table_add_column(t, "ACTION", TABLE_LEFT);
    table_add_column(t, "RUN ID", TABLE_LEFT);
    table_add_column(t, "STATE", TABLE_LEFT);
    for (size_t i = 0; i < json_array_size(runs); i++) {
        const json_t *r = json_array_get(runs, i);
        table_add_row(t);
        table_cell(t, cli_jstr(r, "logical_date"));
        table_cell(t, cli_jstr(r, "action"));
        table_cell(t, cli_jstr(r, "run_id"));
        cell_state(t, cli_jstr(r, "state"));
    }
    table_print(t, stdout, color);
    table_free(t);
}

/* Follow a backfill until it ends: a bar on a terminal, else a line per
 * change. 0 if every run it made succeeded. */
static int
backfill_wait(const char *server, const char *id, int json)
{
    char *enc = client_urlencode(id);
    char *path = xasprintf("/api/v1/backfills/%s", enc);
    free(enc);
    int tty = !json && isatty(STDOUT_FILENO), rc = 1;
    int64_t started = clock_mono_ms();
    struct cli_poll reach = {0};
    char last[160] = "";
    cli_catch_sigint();
    while (!cli_interrupted()) {
        int64_t t0 = clock_mono_ms();
        json_t *bf = NULL;
        char err[1024];
        int r = client_get_json(server, path, &bf, err, sizeof(err));
        if (r != 0) {
            if (cli_interrupted())
                break;
            if (!cli_is_transient(r)) {
                fprintf(stderr, "%scairn: %s\n", tty ? "\n" : "", err);
                break;
            }
            if (!cli_poll_retry(&reach, t0, err, tty ? "\n" : ""))
                break;
            continue;
        }
        reach.unreachable_since = 0;
        const char *st = cli_jstr(bf, "state");
        int over = st && strcmp(st, "running") != 0;
        char counts[160], el[32];
        backfill_counts(bf, counts, sizeof(counts));
        fmt_seconds(clock_mono_ms() - started, el, sizeof(el));
        if (tty) {
            json_int_t total = 0;
            cli_jint(bf, "total", &total);
            json_int_t done = progress_of(bf, "success") + progress_of(bf, "failed") +
                              progress_of(bf, "cancelled") + progress_of(bf, "skipped");
            int width = 30, fill = total > 0 ? (int)(done * width / total) : width;
            printf("\r\033[K[");
            for (int k = 0; k < width; k++)
                putchar(k < fill ? '#' : '.');
            printf("] %s  (%s)", counts, el);
            fflush(stdout);
        } else if (!json && strcmp(counts, last) != 0) {
            printf("%s: %s\n", id, counts);
            fflush(stdout);
            snprintf(last, sizeof(last), "%s", counts);
        }
        if (over) {
            if (tty)
                putchar('\n');
            if (json)
                cli_print_json(bf);
            else
                printf("backfill %s %s in %s\n", id, st, el);
            rc = !strcmp(st, "success") ? 0 : 1;
            json_decref(bf);
            break;
        }
        json_decref(bf);
        cli_sleep_until(t0, 500);
    }
    if (cli_interrupted() && rc != 0) {
        fprintf(stderr, "%scairn: stopped waiting; the backfill goes on (cairn backfill show %s)"
                "\n", tty ? "\n" : "", id);
        rc = 130;
    }
    free(path);
    return rc;
}

/* backfill list|show|cancel; argv[0] says which. */
static int
backfill_sub_run(int argc, char **argv)
{
    const char *sub = argv[0];
    const struct opt_cmd *cmd = !strcmp(sub, "list")   ? &backfill_list_cmd
                                : !strcmp(sub, "show") ? &backfill_show_cmd
                                                       : &backfill_cancel_cmd;
    struct backfill_args a = {0};
    int nargs, prc = opt_parse(cmd, argc, argv, &a, &nargs);
    if (prc != OPT_GO)
        return prc;
    if (strcmp(sub, "list") != 0 && nargs == 0)
        return opt_fail(cmd, "missing ID", NULL);
    const char *server = client_server_url(a.server), *arg = nargs ? argv[1] : a.dag;
    int json = a.json;
    json_t *resp = NULL;
    char err[1024];
    int rc = 0;
    if (!strcmp(sub, "list")) {
        struct sb path;
        sb_init(&path);
        sb_puts(&path, "/api/v1/backfills");
        cli_query_add(&path, "dag", arg);
        rc = cli_api_get(server, path.buf, &resp);
        sb_free(&path);
        if (rc)
            return 1;
        if (json)
            cli_print_json(resp);
        else
            backfill_table(json_object_get(resp, "backfills"));
        json_decref(resp);
        return 0;
    }
    char *enc = client_urlencode(arg);
    char *path = xasprintf("/api/v1/backfills/%s%s", enc, !strcmp(sub, "cancel") ? "/cancel" : "");
    free(enc);
    if (!strcmp(sub, "cancel")) {
        json_t *body = json_object();
        if (client_post_json(server, path, body, &resp, err, sizeof(err)) != 0) {
            fprintf(stderr, "cairn: %s\n", err);
            rc = 1;
        } else if (json) {
            cli_print_json(resp);
        } else {
            char counts[160];
            backfill_counts(resp, counts, sizeof(counts));
            printf("backfill %s cancelled: %s\n", arg, counts);
        }
        json_decref(body);
    } else if (cli_api_get(server, path, &resp) != 0) {
        rc = 1;
    } else if (json) {
        cli_print_json(resp);
    } else {
        backfill_show(resp);
    }
    json_decref(resp);
    free(path);
    return rc;
}

/* backfill DAG --from DATE --to DATE ... */
static int
backfill_create_run(int argc, char **argv)
{
    struct backfill_args ba = {0};
    int nargs, rc = opt_parse(&backfill_cmd, argc, argv, &ba, &nargs);
    if (rc != OPT_GO)
        return rc;
    const char *server = client_server_url(ba.server), *dag = nargs ? argv[1] : NULL;
    const char *from = ba.from, *to = ba.to, *reprocess = ba.reprocess;
    long max_active = 0;
    int json = ba.json, wait = ba.wait, dry = ba.dry;
    json_t *params = json_object(), *resp = NULL;
    if (ba.max_active)
        cli_parse_positive(ba.max_active, &max_active); /* checked by the parser */
    for (size_t i = 0; i < ba.params.n; i++)
        if ((rc = param_add(params, ba.params.v[i], &backfill_cmd)) != 0)
            goto out;
    rc = 2;
    if (!dag || !from || !to) {
        opt_fail(&backfill_cmd, !dag ? "missing DAG" : "--from and --to are required", NULL);
        goto out;
    }
    json_t *body = json_pack("{s:s, s:s, s:s, s:b}", "from", from, "to", to, "reprocess",
                             reprocess ? reprocess : "none", "dry_run", dry);
    if (max_active)
        json_object_set_new(body, "max_active_runs", json_integer(max_active));
    if (json_object_size(params))
        json_object_set(body, "params", params);
    char *enc = client_urlencode(dag);
    char *path = xasprintf("/api/v1/dags/%s/backfill", enc);
    char err[1024];
    int r = client_post_json(server, path, body, &resp, err, sizeof(err));
    free(enc);
    free(path);
    json_decref(body);
    if (r != 0) {
        fprintf(stderr, "cairn: %s\n", err);
        rc = 1;
        goto out;
    }
    rc = 0;
    if (dry) {
        if (json) {
            cli_print_json(resp);
            goto out;
        }
        const json_t *runs = json_object_get(resp, "runs");
        size_t nnew = 0, nrerun = 0, nskip = 0;
        for (size_t i = 0; i < json_array_size(runs); i++) {
            const json_t *x = json_array_get(runs, i);
            const char *a = cli_jstr(x, "action") ? cli_jstr(x, "action") : "?";
            if (!strcmp(a, "new")) {
                nnew++;
                printf("%s  new\n", cli_jstr(x, "logical_date"));
            } else {
                if (!strncmp(a, "rerun", 5))
                    nrerun++;
                else
                    nskip++;
                printf("%s  exists: %s (%s, %s)\n", cli_jstr(x, "logical_date"), a,
                       cli_jstr(x, "run_id"), cli_jstr(x, "state"));
            }
        }
        printf("%zu logical dates: %zu new, %zu to rerun, %zu to skip (dry run: nothing "
               "created)\n",
               json_array_size(runs), nnew, nrerun, nskip);
        goto out;
    }
    const char *id = cli_jstr(resp, "id");
    if (!wait) {
        if (json) {
            cli_print_json(resp);
        } else {
            char counts[160];
            json_int_t total = 0;
            cli_jint(resp, "total", &total);
            backfill_counts(resp, counts, sizeof(counts));
            printf("%s\n", id ? id : "?");
            fprintf(stderr,
                    "backfill %s of %s: %" JSON_INTEGER_FORMAT " logical dates from %s "
                    "to %s; follow it with `cairn backfill show %s`\n",
                    id ? id : "?", dag, total, cli_jstr(resp, "from"), cli_jstr(resp, "to"),
                    id ? id : "?");
        }
        goto out;
    }
    if (!json) {
        json_int_t total = 0;
        cli_jint(resp, "total", &total);
        printf("backfill %s of %s: %" JSON_INTEGER_FORMAT " logical dates from %s to %s\n", id, dag,
               total, cli_jstr(resp, "from"), cli_jstr(resp, "to"));
        fflush(stdout);
    }
    rc = backfill_wait(server, id, json);
out:
    opt_list_free(&ba.params);
    json_decref(params);
    json_decref(resp);
    return rc;
}

static const struct opt_sub backfill_subs[] = {
    {NULL, &backfill_cmd, backfill_create_run},
    {"list", &backfill_list_cmd, backfill_sub_run},
    {"show", &backfill_show_cmd, backfill_sub_run},
    {"cancel", &backfill_cancel_cmd, backfill_sub_run},
};

static const struct opt_group backfill_group = {
    .name = "backfill",
    .about = "Create a run per schedule tick over a range of logical dates, run by the\n"
             "scheduler as a sliding window; list, show or cancel backfills.",
    OPT_SUBS(backfill_subs),
    .no_word = &backfill_subs[0],
    .other_word = &backfill_subs[0],
};

static int
backfill_main(int argc, char **argv)
{
    return opt_dispatch(&backfill_group, argc, argv);
}

const struct cli_command cmd_backfill = {"backfill", backfill_main, NULL, &backfill_group};

/* ---- cairn trigger ------------------------------------------------------ */

struct trigger_args {
    const char *server, *date;
    struct opt_list params;
    int json, wait, no_cache;
};

static const struct opt trigger_opts[] = {
    OPT_FLAG("--json", NULL, struct trigger_args, json,
             "print the new run object instead of its id (with --wait: the final run)"),
    OPT_STR("--logical-date", NULL, "D", struct trigger_args, date,
            "the run's logical date, an ISO 8601 timestamp (default: now)"),
    OPT_FLAG("--no-cache", NULL, struct trigger_args, no_cache,
             "run every task, even where the step cache has its result"),
    OPT_LIST("--param", NULL, "NAME=VALUE", struct trigger_args, params,
             "set a parameter the DAG declares (repeatable; sent as a string)"),
    OPT_SERVER(struct trigger_args, server),
    OPT_FLAG("--wait", NULL, struct trigger_args, wait,
             "follow the run until it ends; exit 0 only if it succeeded"),
};

static const struct opt_cmd trigger_cmd = {
    .name = "trigger",
    .args = "DAG",
    .max_args = 1,
    .about = "Start a run of DAG now and print its run id. --wait follows the run until it ends\n"
             "and exits 0 only if it succeeded. --no-cache runs every task of the run even\n"
             "where the step cache has its result (and refreshes the cache).",
    OPT_TABLE(trigger_opts),
};

/* What trigger --wait remembers of a task, to print changes only. */
struct seen_task {
    char *task;
    char *state;
    json_int_t attempts;
};

struct waiter {
    struct seen_task *tasks;
    size_t n, cap;
    int tty; /* stdout is a terminal: keep a progress line */
    int color;
    int progress_shown; /* the progress line is on the screen */
    int64_t started_ms; /* when waiting began (monotonic) */
};

static void
waiter_clear_progress(struct waiter *w)
{
    if (w->progress_shown) {
        fputs("\r\033[K", stdout);
        w->progress_shown = 0;
    }
}

static struct seen_task *
waiter_find(struct waiter *w, const char *task)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->tasks[i].task, task) == 0)
            return &w->tasks[i];
    xgrow((void **)&w->tasks, &w->cap, w->n + 1, sizeof(*w->tasks));
    struct seen_task *s = &w->tasks[w->n++];
    s->task = xstrdup(task);
    s->state = NULL;
    s->attempts = 0;
    return s;
}

static void
waiter_free(struct waiter *w)
{
    for (size_t i = 0; i < w->n; i++) {
        free(w->tasks[i].task);
        free(w->tasks[i].state);
    }
    free(w->tasks);
}

/* One line for a task that changed: "12:00:01 train running (attempt 1 on w1)". */
static void
print_task_event(struct waiter *w, const json_t *task)
{
    const char *name = cli_jstr(task, "task"), *state = cli_jstr(task, "state");
    const char *worker = cli_jstr(task, "worker");
    char now[16], err[1024], buf[64];
    json_int_t att = 0;
    cli_jint(task, "attempts", &att);
    cli_fmt_time(clock_wall_ms() / 1000, 1, now, sizeof(now));
    waiter_clear_progress(w);
    printf("%s %s ", now, name);
    table_put_color(stdout, state, table_state_color(state), w->color);
    if (!strcmp(state, "leased") || !strcmp(state, "running")) {
        printf(" (attempt %" JSON_INTEGER_FORMAT "%s%s)", att, worker ? " on " : "",
               worker ? worker : "");
    } else if (!strcmp(state, "success") && json_is_object(json_object_get(task, "cached_from"))) {
        const json_t *from = json_object_get(task, "cached_from");
        printf(" (cached from %s)", cli_jstr(from, "run_id") ? cli_jstr(from, "run_id") : "?");
    } else if (!strcmp(state, "success")) {
        fmt_object_duration(task, buf, sizeof(buf));
        printf(" (attempt %" JSON_INTEGER_FORMAT "%s%s)", att, buf[0] ? ", " : "", buf);
    } else if (!strcmp(state, "up_for_retry") || !strcmp(state, "failed") ||
               !strcmp(state, "upstream_failed") || !strcmp(state, "skipped")) {
        fmt_task_error(task, err, sizeof(err));
        char *nl = strchr(err, '\n');
        if (nl)
            *nl = '\0';
        if (err[0])
            printf(": %s", err);
        cli_fmt_field_time(task, "next_retry_at", clock_wall_ms() / 1000, buf, sizeof(buf));
        if (!strcmp(state, "up_for_retry") && buf[0])
            printf(", retry at %s", buf);
    }
    putchar('\n');
}

static void
waiter_progress(struct waiter *w, const json_t *run)
{
    size_t total = 0, done = 0, running = 0, failed = 0;
    const json_t *tasks = json_object_get(run, "tasks");
    for (size_t i = 0; i < json_array_size(tasks); i++) {
        const json_t *task = json_array_get(tasks, i);
        const char *s = cli_jstr(task, "state");
        total++;
        if (is_terminal_task_state(s))
            done++;
        if (s && (!strcmp(s, "running") || !strcmp(s, "leased")))
            running++;
        if (s && (!strcmp(s, "failed") || !strcmp(s, "upstream_failed")))
            failed++;
    }
    char el[32];
    fmt_seconds(clock_mono_ms() - w->started_ms, el, sizeof(el));
    printf("\r\033[K%s: %zu/%zu done, %zu running, %zu failed  (%s)", cli_jstr(run, "state"), done,
           total, running, failed, el);
    w->progress_shown = 1;
}

/* Print the changes since the last poll. */
static void
waiter_update(struct waiter *w, const json_t *run)
{
    const json_t *tasks = json_object_get(run, "tasks");
    for (size_t i = 0; i < json_array_size(tasks); i++) {
        const json_t *task = json_array_get(tasks, i);
        const char *name = cli_jstr(task, "task"), *state = cli_jstr(task, "state");
        json_int_t att = 0;
        if (!name || !state)
            continue;
        cli_jint(task, "attempts", &att);
        struct seen_task *s = waiter_find(w, name);
        int changed = !s->state || strcmp(s->state, state) != 0 || s->attempts != att;
        int initial = !s->state && !strcmp(state, "pending");
        if (changed && !initial)
            print_task_event(w, task);
        if (changed) {
            free(s->state);
            s->state = xstrdup(state);
            s->attempts = att;
        }
    }
    if (w->tty)
        waiter_progress(w, run);
    fflush(stdout);
}

/* Poll the run until it ends. Returns the exit code; *final is the last run
 * object (caller frees) when it ended. */
static int
wait_for_run(const char *server, const char *run_id, const char *dag, int json, json_t **final)
{
    struct waiter w;
    struct sb path;
    struct cli_poll reach = {0};
    int rc = 1;
    memset(&w, 0, sizeof(w));
    w.tty = !json && isatty(STDOUT_FILENO);
    w.color = !json && table_use_color(stdout);
    w.started_ms = clock_mono_ms();
    sb_init(&path);
    cli_run_path(&path, run_id, NULL, dag);
    cli_catch_sigint();
    *final = NULL;

    while (!cli_interrupted()) {
        int64_t t0 = clock_mono_ms();
        json_t *run = NULL;
        char err[1024];
        int r = client_get_json(server, path.buf, &run, err, sizeof(err));
        if (r != 0) {
            if (cli_interrupted())
                break;
            waiter_clear_progress(&w);
            if (!cli_is_transient(r)) {
                fprintf(stderr, "cairn: %s\n", err);
                break;
            }
            if (!cli_poll_retry(&reach, t0, err, ""))
                break;
            continue;
        }
        reach.unreachable_since = 0;
        if (!json)
            waiter_update(&w, run);
        if (is_final_run_state(cli_jstr(run, "state"))) {
            waiter_clear_progress(&w);
            rc = strcmp(cli_jstr(run, "state"), "success") == 0 ? 0 : 1;
            *final = run;
            break;
        }
        json_decref(run);
        cli_sleep_until(t0, POLL_INTERVAL_MS);
    }
    if (cli_interrupted() && !*final) {
        waiter_clear_progress(&w);
        fflush(stdout);
        fprintf(stderr, "cairn: stopped waiting; the run goes on (cairn runs show %s --dag %s)\n",
                run_id, dag);
        rc = 130;
    }
    sb_free(&path);
    waiter_free(&w);
    return rc;
}

static int
trigger_main(int argc, char **argv)
{
    struct trigger_args a = {0};
    int nargs, rc = opt_parse(&trigger_cmd, argc, argv, &a, &nargs);
    if (rc != OPT_GO)
        return rc;
    const char *server = a.server, *dag = nargs ? argv[1] : NULL, *date = a.date;
    int json = a.json, wait = a.wait, no_cache = a.no_cache;
    json_t *params = json_object(), *resp = NULL;
    for (size_t i = 0; i < a.params.n; i++)
        if ((rc = param_add(params, a.params.v[i], &trigger_cmd)) != 0)
            goto out;
    if (!dag) {
        rc = opt_fail(&trigger_cmd, "missing DAG", NULL);
        goto out;
    }
    server = client_server_url(server);
    json_t *body = json_object();
    if (json_object_size(params) > 0)
        json_object_set(body, "params", params);
    if (date)
        json_object_set_new(body, "logical_date", json_string(date));
    if (no_cache)
        json_object_set_new(body, "no_cache", json_true());
    char *enc = client_urlencode(dag);
    char *path = xasprintf("/api/v1/dags/%s/trigger", enc);
    char err[1024];
    int r = client_post_json(server, path, body, &resp, err, sizeof(err));
    free(enc);
    free(path);
    json_decref(body);
    if (r != 0) {
        fprintf(stderr, "cairn: %s\n", err);
        rc = 1;
        goto out;
    }
    const char *run_id = cli_jstr(resp, "run_id");
    if (!run_id) {
        fprintf(stderr, "cairn: the scheduler's answer has no run_id\n");
        rc = 1;
        goto out;
    }
    if (!wait) {
        if (json)
            cli_print_json(resp);
        else
            puts(run_id);
        rc = 0;
        goto out;
    }

    json_t *final = NULL;
    const char *run_dag = cli_jstr(resp, "dag") ? cli_jstr(resp, "dag") : dag;
    if (!json) {
        puts(run_id);
        fflush(stdout);
    }
    rc = wait_for_run(server, run_id, run_dag, json, &final);
    if (final) {
        if (json) {
            cli_print_json(final);
        } else {
            int color = table_use_color(stdout);
            char dur[32];
            putchar('\n');
            print_task_table(final, color);
            print_task_errors(final, color);
            print_task_metrics(final);
            print_task_notes(final);
            fmt_object_duration(final, dur, sizeof(dur));
            printf("\nrun %s ", run_id);
            table_put_color(stdout, cli_jstr(final, "state"),
                            table_state_color(cli_jstr(final, "state")), color);
            printf("%s%s\n", dur[0] ? " in " : "", dur);
        }
        json_decref(final);
    }
out:
    opt_list_free(&a.params);
    json_decref(params);
    json_decref(resp);
    return rc;
}

const struct cli_command cmd_trigger = {"trigger", trigger_main, &trigger_cmd, NULL};

/* ---- cairn logs --------------------------------------------------------- */

struct logs_args {
    const char *server, *dag, *attempt;
    int follow;
};

static const struct opt logs_opts[] = {
    OPT_NUM("--attempt", NULL, "N", 0, struct logs_args, attempt,
            "attempt N (default: the latest)"),
    OPT_STR("--dag", NULL, "D", struct logs_args, dag,
            "the DAG of RUN (needed only when another DAG has a run with that id)"),
    OPT_FLAG("--follow", "-f", struct logs_args, follow,
             "keep printing until the attempt has ended (waits for it to start)"),
    OPT_SERVER(struct logs_args, server),
};

static const struct opt_cmd logs_cmd = {
    .name = "logs",
    .args = "RUN TASK",
    .max_args = 2,
    .about = "Print the output of a task's attempt (the latest unless --attempt), stdout and\n"
             "stderr interleaved. --follow keeps printing until the attempt ends.",
    OPT_TABLE(logs_opts),
};

/* For --follow before the task has an attempt: 1 if the task has not ended
 * (worth waiting for), 0 if it ended without running (skipped, upstream
 * failed) or does not exist, -1 if that cannot be told now. */
static int
task_may_start(const char *server, const char *run_id, const char *task, const char *dag)
{
    struct sb path;
    json_t *run = NULL;
    int wait = -1;
    sb_init(&path);
    cli_run_path(&path, run_id, NULL, dag);
    if (client_get_json(server, path.buf, &run, NULL, 0) == 0) {
        const json_t *tasks = json_object_get(run, "tasks");
        wait = 0;
        for (size_t i = 0; i < json_array_size(tasks); i++) {
            const json_t *t = json_array_get(tasks, i);
            const char *name = cli_jstr(t, "task");
            if (name && !strcmp(name, task))
                wait = !is_terminal_task_state(cli_jstr(t, "state"));
        }
    }
    json_decref(run);
    sb_free(&path);
    return wait;
}

static int
logs_print(const char *server, const char *run_id, const char *task, const char *dag,
           const char *attempt, int follow)
{
    char *enc = client_urlencode(task);
    char *tail = xasprintf("/tasks/%s/logs", enc);
    char att_buf[32];
    json_int_t offset = 0;
    struct cli_poll reach = {0};
    int rc = 1, waiting_noted = 0;
    free(enc);
    if (follow)
        cli_catch_sigint();

    while (!cli_interrupted()) {
        int64_t t0 = clock_mono_ms();
        struct sb path;
        json_t *chunk = NULL;
        char err[1024], off_buf[32];
        snprintf(off_buf, sizeof(off_buf), "%" JSON_INTEGER_FORMAT, offset);
        sb_init(&path);
        cli_run_path(&path, run_id, tail, dag);
        cli_query_add(&path, "attempt", attempt);
        cli_query_add(&path, "offset", off_buf);
        int r = client_get_json(server, path.buf, &chunk, err, sizeof(err));
        sb_free(&path);
        if (r != 0) {
            if (follow && cli_is_transient(r)) {
                if (!cli_poll_retry(&reach, t0, err, ""))
                    break;
                continue;
            }
            /* No log yet because the task has not started: wait for it. */
            if (follow && r == CAIRN_ENOENT && offset == 0 &&
                task_may_start(server, run_id, task, dag) != 0) {
                if (!waiting_noted && isatty(STDERR_FILENO))
                    fprintf(stderr, "cairn: waiting for %s to start...\n", task);
                waiting_noted = 1;
                cli_sleep_until(t0, POLL_INTERVAL_MS);
                continue;
            }
            fprintf(stderr, "cairn: %s\n", err);
            break;
        }
        reach.unreachable_since = 0;
        const json_t *data = json_object_get(chunk, "data");
        size_t n = json_string_length(data);
        if (n)
            fwrite(json_string_value(data), 1, n, stdout);
        json_int_t next = offset;
        cli_jint(chunk, "next_offset", &next);
        /* Keep reading the attempt we started with, even if a retry begins.
         * Attempt 0 means the task has not started yet. */
        json_int_t a = 0;
        cli_jint(chunk, "attempt", &a);
        int started = attempt || a > 0;
        if (!attempt && a > 0) {
            snprintf(att_buf, sizeof(att_buf), "%" JSON_INTEGER_FORMAT, a);
            attempt = att_buf;
        }
        int complete = json_is_true(json_object_get(chunk, "complete"));
        json_decref(chunk);
        if (fflush(stdout) != 0) { /* e.g. the reader of a pipe went away */
            rc = 1;
            break;
        }
        if (next > offset) {
            offset = next;
            continue; /* more may be waiting: ask again at once */
        }
        if (!follow || complete) {
            rc = 0;
            break;
        }
        if (!started) {
            int may = task_may_start(server, run_id, task, dag);
            if (may == 0) {
                fprintf(stderr, "cairn: %s ended without running, so it has no log\n", task);
                rc = 0;
                break;
            }
            if (!waiting_noted && isatty(STDERR_FILENO))
                fprintf(stderr, "cairn: waiting for %s to start...\n", task);
            waiting_noted = 1;
        }
        cli_sleep_until(t0, POLL_INTERVAL_MS);
    }
    if (cli_interrupted())
        rc = 130;
    free(tail);
    return rc;
}

static int
logs_main(int argc, char **argv)
{
    struct logs_args a = {0};
    int nargs, rc = opt_parse(&logs_cmd, argc, argv, &a, &nargs);
    if (rc != OPT_GO)
        return rc;
    if (nargs < 2)
        return opt_fail(&logs_cmd, nargs ? "missing TASK" : "missing RUN and TASK", NULL);
    return logs_print(client_server_url(a.server), argv[1], argv[2], a.dag, a.attempt, a.follow);
}

const struct cli_command cmd_logs = {"logs", logs_main, &logs_cmd, NULL};

/* ---- cairn workers ------------------------------------------------------ */

struct workers_args {
    const char *server;
    int json;
};

static const struct opt workers_opts[] = {
    OPT_FLAG("--json", NULL, struct workers_args, json, "print the API's answer as JSON"),
    OPT_SERVER(struct workers_args, server),
};

static const struct opt_cmd workers_cmd = {
    .name = "workers",
    .max_args = 0,
    .about = "List the workers connected to the scheduler and what they run.",
    OPT_TABLE(workers_opts),
};

static int
workers_main(int argc, char **argv)
{
    struct workers_args a = {0};
    int nargs, rc = opt_parse(&workers_cmd, argc, argv, &a, &nargs);
    if (rc != OPT_GO)
        return rc;
    const char *server = a.server;
    int json = a.json;

    json_t *resp;
    if (cli_api_get(client_server_url(server), "/api/v1/workers", &resp) != 0)
        return 1;
    if (json) {
        cli_print_json(resp);
        json_decref(resp);
        return 0;
    }
    struct table *t = table_new();
    table_add_column(t, "NAME", TABLE_LEFT);
    table_add_column(t, "STATE", TABLE_LEFT);
    table_add_column(t, "SLOTS", TABLE_RIGHT);
    table_add_column(t, "BUSY", TABLE_RIGHT);
    table_add_column(t, "LABELS", TABLE_LEFT);
    table_add_column(t, "LAST SEEN", TABLE_RIGHT);
    table_add_column(t, "RUNNING", TABLE_LEFT);
    const json_t *workers = json_object_get(resp, "workers");
    for (size_t i = 0; i < json_array_size(workers); i++) {
        const json_t *w = json_array_get(workers, i);
        json_int_t slots = 0, busy = 0;
        int64_t seen;
        struct sb labels, running;
        sb_init(&labels);
        sb_init(&running);
        json_t *lobj = json_object_get(w, "labels");
        for (void *it = json_object_iter(lobj); it; it = json_object_iter_next(lobj, it)) {
            const json_t *lv = json_object_iter_value(it);
            sb_printf(&labels, "%s%s=%s", labels.len ? "," : "", json_object_iter_key(it),
                      json_is_string(lv) ? json_string_value(lv) : "?");
        }
        const json_t *leases = json_object_get(w, "running");
        for (size_t j = 0; j < json_array_size(leases); j++) {
            const json_t *r = json_array_get(leases, j);
            const char *rdag = cli_jstr(r, "dag"), *rtask = cli_jstr(r, "task");
            sb_printf(&running, "%s%s/%s", running.len ? ", " : "", rdag ? rdag : "?",
                      rtask ? rtask : "?");
        }
        table_add_row(t);
        table_cell(t, cli_jstr(w, "name"));
        cell_state(t, cli_jstr(w, "state"));
        cli_jint(w, "slots", &slots);
        cli_jint(w, "busy", &busy);
        table_cellf(t, "%" JSON_INTEGER_FORMAT, slots);
        table_cellf(t, "%" JSON_INTEGER_FORMAT, busy);
        table_cell(t, labels.buf);
        if (cli_jtime(w, "last_seen", &seen)) {
            char d[32];
            fmt_seconds(clock_wall_ms() - seen * 1000, d, sizeof(d));
            table_cellf(t, "%s ago", d);
        } else {
            table_cell(t, NULL);
        }
        table_cell(t, running.buf);
        sb_free(&labels);
        sb_free(&running);
    }
    table_print(t, stdout, table_use_color(stdout));
    table_free(t);
    json_decref(resp);
    return 0;
}

const struct cli_command cmd_workers = {"workers", workers_main, &workers_cmd, NULL};
