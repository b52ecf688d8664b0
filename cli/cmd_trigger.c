/* cmd_trigger.c - `cairn trigger DAG`: start a run through the scheduler's
 * HTTP API (docs/api.md; the manual is docs/cli.md) and, with --wait, follow
 * it to its end.
 *
 * It owns the trigger option table and the --wait loop: it polls the run
 * (CLI_POLL_INTERVAL_MS), prints a line each time a task changes state and,
 * on a terminal, keeps a progress line (struct waiter remembers what it
 * printed). The final task table, errors, metrics and notes are cliutil.c's,
 * as `runs show` prints them. Exit codes as cli.h says: 0 done, 1 the
 * scheduler is unreachable or answered with an error, 2 a usage error. With
 * --wait: 0 only if the run succeeded, 1 if it failed, 130 on Ctrl-C (the
 * run goes on).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "cliutil.h"
#include "opt.h"
#include "table.h"
#include "util.h"

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

static int
is_final_run_state(const char *s)
{
    return s && (!strcmp(s, "success") || !strcmp(s, "failed") || !strcmp(s, "cancelled"));
}

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
        cli_fmt_object_duration(task, buf, sizeof(buf));
        printf(" (attempt %" JSON_INTEGER_FORMAT "%s%s)", att, buf[0] ? ", " : "", buf);
    } else if (!strcmp(state, "up_for_retry") || !strcmp(state, "failed") ||
               !strcmp(state, "upstream_failed") || !strcmp(state, "skipped")) {
        cli_fmt_task_error(task, err, sizeof(err));
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
        if (cli_task_ended(s))
            done++;
        if (s && (!strcmp(s, "running") || !strcmp(s, "leased")))
            running++;
        if (s && (!strcmp(s, "failed") || !strcmp(s, "upstream_failed")))
            failed++;
    }
    char el[32];
    cli_fmt_seconds(clock_mono_ms() - w->started_ms, el, sizeof(el));
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
        cli_sleep_until(t0, CLI_POLL_INTERVAL_MS);
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
        if ((rc = cli_param_add(params, a.params.v[i], &trigger_cmd)) != 0)
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
            cli_print_task_table(final, color);
            cli_print_task_errors(final, color);
            cli_print_task_metrics(final);
            cli_print_task_notes(final);
            cli_fmt_object_duration(final, dur, sizeof(dur));
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
