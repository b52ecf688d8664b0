/* watch.c - following a run until it ends (watch.h): the live view that
 * `trigger --wait` and `runs retry --wait` share.
 *
 * It owns the waiting loop and what it remembers between polls (struct
 * waiter: each task's last state and attempt, whether the progress line is
 * on the screen), all of it freed before watch_run returns. It polls the run
 * every CLI_POLL_INTERVAL_MS, prints a line each time a task changes state
 * and, on a terminal, keeps a progress line; the final task table, errors,
 * metrics and notes are cliutil.c's, as `runs show` prints them.
 *
 * Polls are incremental: each answer's cursor goes back with the next poll
 * (?changes_after=), which then brings only the tasks that changed since,
 * so following a 1,000-task run costs the scheduler a few rows a poll, not
 * the whole run. An answer without a cursor or not marked incremental is
 * the whole run. The progress line counts from the run's task_counts; the
 * end is printed from one last full read.
 */
#include "watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "cliutil.h"
#include "hmap.h"
#include "table.h"
#include "util.h"

static int
is_final_run_state(const char *s)
{
    return s && (!strcmp(s, "success") || !strcmp(s, "failed") || !strcmp(s, "cancelled"));
}

/* What the live view remembers of a task, to print changes only. */
struct seen_task {
    char *task;
    char *state;
    json_int_t attempts;
};

struct waiter {
    struct seen_task *tasks;
    size_t n, cap;
    struct hmap index; /* task name -> position in tasks + 1 */
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
    size_t at;
    if (hmap_get(&w->index, task, &at))
        return &w->tasks[at - 1];
    xgrow((void **)&w->tasks, &w->cap, w->n + 1, sizeof(*w->tasks));
    struct seen_task *s = &w->tasks[w->n++];
    s->task = xstrdup(task);
    s->state = NULL;
    s->attempts = 0;
    hmap_put(&w->index, s->task, w->n);
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
    hmap_free(&w->index);
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
    const char *s;
    json_t *v;
    json_object_foreach(json_object_get(run, "task_counts"), s, v)
    {
        size_t n = (size_t)json_integer_value(v);
        total += n;
        if (cli_task_ended(s))
            done += n;
        if (!strcmp(s, "running") || !strcmp(s, "leased"))
            running += n;
        if (!strcmp(s, "failed") || !strcmp(s, "upstream_failed"))
            failed += n;
    }
    char el[32];
    cli_fmt_seconds(clock_mono_ms() - w->started_ms, el, sizeof(el));
    printf("\r\033[K%s: %zu/%zu done, %zu running, %zu failed  (%s)", cli_jstr(run, "state"), done,
           total, running, failed, el);
    w->progress_shown = 1;
}

/* Remember the tasks of start (may be NULL) that had ended, so that only
 * what changes after it is printed. */
static void
waiter_seed(struct waiter *w, const json_t *start)
{
    const json_t *tasks = json_object_get(start, "tasks");
    for (size_t i = 0; i < json_array_size(tasks); i++) {
        const json_t *task = json_array_get(tasks, i);
        const char *name = cli_jstr(task, "task"), *state = cli_jstr(task, "state");
        if (!name || !cli_task_ended(state))
            continue;
        struct seen_task *s = waiter_find(w, name);
        free(s->state);
        s->state = xstrdup(state);
        s->attempts = 0;
        cli_jint(task, "attempts", &s->attempts);
    }
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
wait_for_run(const char *server, const char *run_id, const char *dag, const json_t *start, int json,
             json_t **final)
{
    struct waiter w;
    struct sb path, ask;
    struct cli_poll reach = {0};
    char *cursor = NULL;
    int rc = 1;
    memset(&w, 0, sizeof(w));
    hmap_init(&w.index);
    w.tty = !json && isatty(STDOUT_FILENO);
    w.color = !json && table_use_color(stdout);
    w.started_ms = clock_mono_ms();
    sb_init(&path);
    sb_init(&ask);
    cli_run_path(&path, run_id, NULL, dag);
    cli_catch_sigint();
    *final = NULL;
    waiter_seed(&w, start);

    while (!cli_interrupted()) {
        int64_t t0 = clock_mono_ms();
        json_t *run = NULL;
        char err[1024];
        ask.len = 0;
        sb_append(&ask, path.buf, path.len);
        if (cursor)
            cli_query_add(&ask, "changes_after", cursor);
        int r = client_get_json(server, ask.buf, &run, err, sizeof(err));
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
        free(cursor);
        cursor = cli_jstr(run, "cursor") && !json_is_true(json_object_get(run, "tasks_omitted"))
                     ? xstrdup(cli_jstr(run, "cursor"))
                     : NULL;
        if (is_final_run_state(cli_jstr(run, "state"))) {
            waiter_clear_progress(&w);
            rc = strcmp(cli_jstr(run, "state"), "success") == 0 ? 0 : 1;
            if (json_is_true(json_object_get(run, "incremental"))) {
                /* the end is shown from the whole run: read it once */
                json_t *whole = NULL;
                if (client_get_json(server, path.buf, &whole, err, sizeof(err)) == 0) {
                    json_decref(run);
                    run = whole;
                }
            }
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
    sb_free(&ask);
    free(cursor);
    waiter_free(&w);
    return rc;
}

/* How the run ended: the task table, what is below it, the outcome. */
static void
print_end(const json_t *run, const char *run_id, int error_lines)
{
    int color = table_use_color(stdout);
    char dur[32];
    putchar('\n');
    cli_print_task_table(run, color);
    cli_print_task_errors(run, color, error_lines);
    cli_print_task_metrics(run);
    cli_print_task_notes(run);
    cli_fmt_object_duration(run, dur, sizeof(dur));
    printf("\nrun %s ", run_id);
    table_put_color(stdout, cli_jstr(run, "state"), table_state_color(cli_jstr(run, "state")),
                    color);
    printf("%s%s\n", dur[0] ? " in " : "", dur);
}

int
watch_run(const char *server, const char *run_id, const char *dag, const json_t *start, int json,
          int error_lines)
{
    json_t *final = NULL;
    int rc = wait_for_run(server, run_id, dag, start, json, &final);
    if (final) {
        if (json)
            cli_print_json(final);
        else
            print_end(final, run_id, error_lines);
        json_decref(final);
    }
    return rc;
}
