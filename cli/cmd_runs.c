/* cmd_runs.c - `cairn runs list|show|retry|cancel` and `cairn clear`: runs
 * and their tasks, through the scheduler's HTTP API (docs/api.md; the manual
 * is docs/cli.md).
 *
 * It owns the option tables of these commands, the header of `runs show` and
 * the POST of clear, retry and cancel (run_action, which prints the run it
 * gets back, or with `runs retry --wait` hands it to watch.c, the live view
 * of `trigger --wait`). The runs table and the task table, errors, notes
 * and metrics below it are cliutil.c's, shared with `trigger --wait` and
 * `dags show`. A run id the scheduler does not know gets a did-you-mean
 * (suggest.h). Exit codes as cli.h says: 0 done, 1 the scheduler is
 * unreachable or answered with an error, 2 a usage error; `runs retry
 * --wait`: 0 only if the run succeeded, 1 if it failed, 130 on Ctrl-C.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "cliutil.h"
#include "err.h"
#include "opt.h"
#include "suggest.h"
#include "table.h"
#include "util.h"
#include "watch.h"

struct runs_args {
    const char *server, *dag, *state, *limit, *error_lines, *task, *cursor;
    int json, wait, all;
};

static const struct opt runs_list_opts[] = {
    OPT_STR("--cursor", NULL, "C", struct runs_args, cursor,
            "the page after the one that gave next cursor C"),
    OPT_STR("--dag", NULL, "D", struct runs_args, dag, "only the runs of DAG D"),
    OPT_FLAG("--json", NULL, struct runs_args, json, "print the API's answer as JSON"),
    OPT_NUM("--limit", NULL, "N", 0, struct runs_args, limit, "at most N runs (default 100)"),
    OPT_SERVER(struct runs_args, server),
    OPT_STR("--state", NULL, "S", struct runs_args, state,
            "only the runs in state S: queued, running, success, failed or cancelled"),
};

static const struct opt runs_show_opts[] = {
    OPT_FLAG("--all", NULL, struct runs_args, all,
             "every task of a big run, or with --task every instance"),
    OPT_STR("--dag", NULL, "D", struct runs_args, dag,
            "the DAG of RUN, needed when another DAG has a run with that id"),
    OPT_NUM0("--error-lines", NULL, "N", 0, struct runs_args, error_lines,
             "the last N lines of a failed task's stderr (default 5)"),
    OPT_FLAG("--json", NULL, struct runs_args, json, "print the run as the API returns it"),
    OPT_SERVER(struct runs_args, server),
    OPT_STR("--state", NULL, "S", struct runs_args, state,
            "with --task: only the instances in state S"),
    OPT_STR("--task", NULL, "T", struct runs_args, task,
            "the instances of mapped task T (TASK[INDEX] names), a page at a time"),
};

static const struct opt runs_retry_opts[] = {
    OPT_STR("--dag", NULL, "D", struct runs_args, dag,
            "the DAG of RUN, needed when another DAG has a run with that id"),
    OPT_NUM0("--error-lines", NULL, "N", 0, struct runs_args, error_lines,
             "with --wait: the last N lines of a failed task's stderr (default 5)"),
    OPT_FLAG("--json", NULL, struct runs_args, json,
             "print the run as the API returns it (with --wait: the final run)"),
    OPT_SERVER(struct runs_args, server),
    OPT_FLAG("--wait", NULL, struct runs_args, wait,
             "follow the run until it ends; exit 0 only if it succeeded"),
};

static const struct opt runs_action_opts[] = {
    OPT_STR("--dag", NULL, "D", struct runs_args, dag,
            "the DAG of RUN, needed when another DAG has a run with that id"),
    OPT_FLAG("--json", NULL, struct runs_args, json, "print the run as the API returns it"),
    OPT_SERVER(struct runs_args, server),
};

static const struct opt runs_compare_opts[] = {
    OPT_STR("--dag", NULL, "D", struct runs_args, dag,
            "the DAG of both runs, needed when another DAG has a run with either id"),
    OPT_FLAG("--json", NULL, struct runs_args, json, "print the API's answer as JSON"),
    OPT_SERVER(struct runs_args, server),
};

static const struct opt_cmd runs_list_cmd, runs_show_cmd, runs_retry_cmd, runs_cancel_cmd,
    runs_compare_cmd;

static const struct opt_cmd *const runs_family[] = {
    &runs_list_cmd, &runs_show_cmd, &runs_retry_cmd, &runs_cancel_cmd, &runs_compare_cmd, NULL,
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
             "--failed-only --downstream`). --wait follows the run until it ends, as\n"
             "trigger --wait does, and exits 0 only if it succeeded.",
    OPT_TABLE(runs_retry_opts),
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

static const struct opt_cmd runs_compare_cmd = {
    .name = "runs compare",
    .args = "RUN_A RUN_B",
    .max_args = 2,
    .about = "Two runs side by side: params, DAG version, images, and per task the state,\n"
             "duration and metrics (with B - A), and the outputs whose digests differ.",
    OPT_TABLE(runs_compare_opts),
    .family = runs_family,
};

static int run_action(const char *server, const char *run_id, const char *dag, const char *action,
                      json_t *body, int json, int wait, int error_lines);

/* One event of a run's `event` (docs/dag-yaml.md, "Event triggers") as
 * text: "on_file /data/in/a.csv (sha256 0a1b2c3d4e5f)". */
static void
event_text(struct sb *sb, const json_t *ev)
{
    const char *kind = cli_jstr(ev, "kind") ? cli_jstr(ev, "kind") : "?";
    const char *src = cli_jstr(ev, "source");
    sb_printf(sb, "%s", kind);
    if (!strcmp(kind, "on_file")) {
        const char *dg = cli_jstr(ev, "digest");
        sb_printf(sb, " %s (sha256 %.12s)", cli_jstr(ev, "path") ? cli_jstr(ev, "path") : "?",
                  dg ? dg : "?");
    } else if (!strcmp(kind, "on_publish")) {
        const char *dg = cli_jstr(ev, "release_digest");
        sb_printf(sb, " %s release %s (sha256 %.12s)", src ? src : "?",
                  cli_jstr(ev, "release_id") ? cli_jstr(ev, "release_id") : "?", dg ? dg : "?");
    } else if (!strcmp(kind, "on_webhook")) {
        char *p = json_dumps(json_object_get(ev, "params"), JSON_COMPACT | JSON_SORT_KEYS);
        sb_printf(sb, " params %s", p ? p : "{}");
        free(p);
    } else if (!strcmp(kind, "all")) {
        const json_t *evs = json_object_get(ev, "events"), *e;
        size_t i;
        sb_puts(sb, ":");
        json_array_foreach(evs, i, e)
        {
            sb_puts(sb, i ? "; " : " ");
            event_text(sb, e);
        }
    }
}

static void
print_run_header(const json_t *run, int color)
{
    char buf[64];
    cli_print_header_line("run", cli_jstr(run, "run_id"));
    cli_print_header_line("dag", cli_jstr(run, "dag"));
    printf("%-14s", "state");
    table_put_color(stdout, cli_jstr(run, "state") ? cli_jstr(run, "state") : "-",
                    table_state_color(cli_jstr(run, "state")), color);
    putchar('\n');
    cli_print_header_line("type", cli_jstr(run, "run_type"));
    if (json_is_object(json_object_get(run, "event"))) {
        struct sb ev;
        sb_init(&ev);
        event_text(&ev, json_object_get(run, "event"));
        cli_print_header_line("event", ev.buf);
        sb_free(&ev);
    }
    cli_print_header_line("logical date", cli_jstr(run, "logical_date"));
    cli_fmt_version(run, "dag_version", buf, sizeof(buf));
    cli_print_header_line("version", buf);
    if (cli_jstr(run, "code_digest"))
        cli_print_header_line("code", cli_jstr(run, "code_digest"));

    /* the params in effect, defaults included; an older scheduler gives
     * only those the run set */
    struct sb sb;
    sb_init(&sb);
    json_t *params = json_object_get(run, "params_effective");
    if (!json_is_object(params))
        params = json_object_get(run, "params");
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
    cli_print_header_line("params", sb.buf);
    sb_free(&sb);
    if (json_is_true(json_object_get(run, "no_cache")))
        cli_print_header_line("cache", "not used (--no-cache): every task runs");
    if (json_is_true(json_object_get(run, "pinning")))
        cli_print_header_line("images", "resolving image tags to digests: the run starts then");

    int64_t start = 0;
    cli_jtime(run, "started_at", &start);
    cli_fmt_field_time(run, "started_at", 0, buf, sizeof(buf));
    cli_print_header_line("started", buf);
    cli_fmt_field_time(run, "ended_at", 0, buf, sizeof(buf));
    cli_print_header_line("ended", buf);
    cli_fmt_object_duration(run, buf, sizeof(buf));
    cli_print_header_line("duration", buf);
}

/* The task rows `runs show --all` asks for at a time. */
#define RUNS_SHOW_PAGE "1000"

static int
runs_show(const char *server, const char *run_id, const char *dag, int json, int error_lines,
          int all)
{
    json_t *run = NULL;
    char err[1024];
    int rc;
    /* with --all, the rows a page (RUNS_SHOW_PAGE) at a time: the header
     * from the first page, every page's rows after it */
    for (json_int_t cursor = 0;;) {
        struct sb path;
        char cur[32];
        json_t *page;
        sb_init(&path);
        cli_run_path(&path, run_id, NULL, dag);
        if (all) {
            snprintf(cur, sizeof(cur), "%" JSON_INTEGER_FORMAT, cursor);
            cli_query_add(&path, "tasks", "all");
            cli_query_add(&path, "limit", RUNS_SHOW_PAGE);
            cli_query_add(&path, "cursor", cur);
        }
        rc = client_get_json(server, path.buf, &page, err, sizeof(err));
        sb_free(&path);
        if (rc != 0) {
            fprintf(stderr, "cairn: %s\n", err);
            if (rc == CAIRN_ENOENT && !run)
                suggest_after_404(server, run_id, dag, NULL);
            json_decref(run);
            return 1;
        }
        if (!run)
            run = page;
        else {
            json_array_extend(json_object_get(run, "tasks"), json_object_get(page, "tasks"));
            json_decref(page);
            page = run;
        }
        json_t *next = json_object_get(page, "next_cursor");
        if (!all || !json_is_integer(next) || json_integer_value(next) <= cursor)
            break;
        cursor = json_integer_value(next);
    }
    json_object_del(run, "next_cursor");
    if (json) {
        cli_print_json(run);
    } else {
        int color = table_use_color(stdout);
        print_run_header(run, color);
        putchar('\n');
        if (json_is_true(json_object_get(run, "tasks_omitted"))) {
            /* a big run: its tasks counted, not listed */
            json_int_t n = json_integer_value(json_object_get(run, "ntasks"));
            printf("%" JSON_INTEGER_FORMAT " tasks:", n);
            const char *k;
            json_t *v;
            int first = 1;
            json_object_foreach(json_object_get(run, "task_counts"), k, v)
            {
                printf("%s %" JSON_INTEGER_FORMAT " %s", first ? "" : ",", json_integer_value(v),
                       k);
                first = 0;
            }
            printf(" (--all lists them)\n");
        }
        cli_print_task_table(run, color);
        cli_print_task_errors(run, color, error_lines);
        cli_print_task_notes(run);
        cli_print_task_metrics(run);
    }
    json_decref(run);
    return rc;
}

static int
runs_list_run(int argc, char **argv)
{
    struct runs_args a = {0};
    int nargs, rc = opt_parse(&runs_list_cmd, argc, argv, &a, &nargs);
    if (rc != OPT_GO)
        return rc;
    return cli_runs_list(client_server_url(a.server), a.dag, a.state, a.limit, a.cursor, a.json, 1);
}

/* The instances of mapped task `task` of a run: the first page (100), or
 * every page with all; as a table or as one JSON document. */
static int
runs_show_instances(const char *server, const char *run_id, const char *dag, const char *task,
                    const char *state, int all, int json)
{
    json_t *doc = NULL, *list = json_array();
    long cursor = 0;
    char err[1024];
    int rc = 0;
    for (;;) {
        struct sb path;
        char *etask = client_urlencode(task), lim[16], cur[32];
        sb_init(&path);
        sb_printf(&path, "/tasks/%s/instances", etask);
        free(etask);
        char *tail = sb_take(&path);
        cli_run_path(&path, run_id, tail, dag);
        free(tail);
        snprintf(lim, sizeof(lim), "%d", all ? 10000 : 100);
        snprintf(cur, sizeof(cur), "%ld", cursor);
        cli_query_add(&path, "limit", lim);
        cli_query_add(&path, "cursor", cur);
        cli_query_add(&path, "state", state);
        json_t *page = NULL;
        rc = client_get_json(server, path.buf, &page, err, sizeof(err));
        sb_free(&path);
        if (rc != 0) {
            fprintf(stderr, "cairn: %s\n", err);
            if (rc == CAIRN_ENOENT)
                suggest_after_404(server, run_id, dag, task);
            json_decref(list);
            json_decref(doc);
            return 1;
        }
        json_array_extend(list, json_object_get(page, "instances"));
        json_t *next = json_object_get(page, "next_cursor");
        json_decref(doc);
        doc = page;
        if (!all || !json_is_integer(next))
            break;
        cursor = (long)json_integer_value(next);
    }
    json_object_set(doc, "instances", list);
    if (json) {
        cli_print_json(doc);
    } else {
        json_t *fake = json_pack("{s:O}", "tasks", list);
        int color = table_use_color(stdout);
        cli_print_task_table(fake, color);
        cli_print_task_errors(fake, color, CLI_ERROR_LINES_DEFAULT);
        json_decref(fake);
        if (json_is_integer(json_object_get(doc, "next_cursor")))
            printf("(the first %zu; --all for every instance)\n", json_array_size(list));
    }
    json_decref(list);
    json_decref(doc);
    return 0;
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
        return run_action(client_server_url(a.server), argv[1], a.dag, sub, NULL, a.json, a.wait,
                          cli_error_lines(a.error_lines));
    if (a.task)
        return runs_show_instances(client_server_url(a.server), argv[1], a.dag, a.task, a.state,
                                   a.all, a.json);
    return runs_show(client_server_url(a.server), argv[1], a.dag, a.json,
                     cli_error_lines(a.error_lines), a.all);
}

/* A JSON value as a cell: strings as they are, numbers with 6 digits. */
static void
cell_value(struct table *t, const json_t *v)
{
    if (json_is_string(v))
        table_cell(t, json_string_value(v));
    else if (json_is_integer(v))
        table_cellf(t, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_number(v))
        table_cellf(t, "%.6g", json_number_value(v));
    else if (json_is_boolean(v))
        table_cell(t, json_is_true(v) ? "true" : "false");
    else
        table_cell(t, NULL);
}

static void
cell_duration(struct table *t, const json_t *v, int sign)
{
    char buf[32];
    if (!json_is_integer(v)) {
        table_cell(t, NULL);
        return;
    }
    json_int_t ms = json_integer_value(v);
    cli_fmt_duration(ms < 0 ? -ms : ms, buf, sizeof(buf));
    table_cellf(t, "%s%s", sign ? (ms < 0 ? "-" : "+") : "", buf);
}

/* The NAME A B DIFF table of a list of {key, a, b, differs}. */
static void
print_pairs(const char *title, const json_t *pairs, const char *key, int color)
{
    if (!json_array_size(pairs))
        return;
    printf("\n%s:\n", title);
    struct table *t = table_new();
    table_add_column(t, "NAME", TABLE_LEFT);
    table_add_column(t, "A", TABLE_LEFT);
    table_add_column(t, "B", TABLE_LEFT);
    table_add_column(t, "", TABLE_LEFT);
    size_t i;
    json_t *x;
    json_array_foreach(pairs, i, x)
    {
        table_add_row(t);
        table_cell(t, cli_jstr(x, key));
        cell_value(t, json_object_get(x, "a"));
        cell_value(t, json_object_get(x, "b"));
        table_cell_color(t, json_is_true(json_object_get(x, "differs")) ? "differs" : "", "33");
    }
    table_print(t, stdout, color);
    table_free(t);
}

static void
print_compare(const json_t *cmp)
{
    int color = table_use_color(stdout);
    const json_t *a = json_object_get(cmp, "a"), *b = json_object_get(cmp, "b");
    struct table *t = table_new();
    table_add_column(t, "", TABLE_LEFT);
    table_add_column(t, "A", TABLE_LEFT);
    table_add_column(t, "B", TABLE_LEFT);
    static const char *const rows[][2] = {
        {"run", "run_id"},
        {"dag", "dag"},
        {"state", "state"},
        {"type", "run_type"},
        {"logical date", "logical_date"},
        {"dag version", "dag_version"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        table_add_row(t);
        table_cell(t, rows[i][0]);
        if (!strcmp(rows[i][1], "dag_version")) {
            char va[16], vb[16];
            cli_fmt_version(a, "dag_version", va, sizeof(va));
            cli_fmt_version(b, "dag_version", vb, sizeof(vb));
            table_cell(t, va);
            table_cellf(t, "%s%s", vb,
                        json_is_true(json_object_get(cmp, "dag_version_differs")) ? "  (differs)"
                                                                                  : "");
            continue;
        }
        table_cell(t, cli_jstr(a, rows[i][1]));
        table_cell(t, cli_jstr(b, rows[i][1]));
    }
    table_add_row(t);
    table_cell(t, "duration");
    cell_duration(t, json_object_get(a, "duration_ms"), 0);
    cell_duration(t, json_object_get(b, "duration_ms"), 0);
    table_print(t, stdout, color);
    table_free(t);
    print_pairs("params", json_object_get(cmp, "params"), "name", color);
    print_pairs("images", json_object_get(cmp, "images"), "image", color);

    printf("\ntasks:\n");
    t = table_new();
    static const char *const cols[] = {"TASK",       "STATE A", "STATE B", "DURATION A",
                                       "DURATION B", "B - A",   "IMAGE"};
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
        table_add_column(t, cols[i], i >= 3 && i <= 5 ? TABLE_RIGHT : TABLE_LEFT);
    size_t i, k;
    json_t *x, *m;
    json_array_foreach(json_object_get(cmp, "tasks"), i, x)
    {
        const json_t *ta = json_object_get(x, "a"), *tb = json_object_get(x, "b");
        table_add_row(t);
        table_cell(t, cli_jstr(x, "task"));
        cli_cell_state(t, cli_jstr(ta, "state") ?: "-");
        cli_cell_state(t, cli_jstr(tb, "state") ?: "-");
        cell_duration(t, json_object_get(ta, "duration_ms"), 0);
        cell_duration(t, json_object_get(tb, "duration_ms"), 0);
        cell_duration(t, json_object_get(x, "duration_delta_ms"), 1);
        table_cell(t, json_is_true(json_object_get(x, "image_digest_differs")) ? "differs" : "");
    }
    table_print(t, stdout, color);
    table_free(t);

    t = table_new();
    table_add_column(t, "TASK.METRIC", TABLE_LEFT);
    table_add_column(t, "A", TABLE_RIGHT);
    table_add_column(t, "B", TABLE_RIGHT);
    table_add_column(t, "B - A", TABLE_RIGHT);
    json_array_foreach(json_object_get(cmp, "tasks"), i, x)
    {
        json_array_foreach(json_object_get(x, "metrics"), k, m)
        {
            table_add_row(t);
            table_cellf(t, "%s.%s", cli_jstr(x, "task"), cli_jstr(m, "name"));
            cell_value(t, json_object_get(m, "a"));
            cell_value(t, json_object_get(m, "b"));
            const json_t *d = json_object_get(m, "delta");
            if (json_is_number(d))
                table_cellf(t, "%+.6g", json_number_value(d));
            else
                table_cell(t, NULL);
        }
    }
    if (table_rows(t)) {
        printf("\nmetrics:\n");
        table_print(t, stdout, color);
    }
    table_free(t);

    const json_t *diff = json_object_get(cmp, "outputs_differ");
    if (!json_array_size(diff)) {
        printf("\noutputs: every digest is the same\n");
        return;
    }
    printf("\noutputs whose digests differ:\n");
    json_array_foreach(json_object_get(cmp, "tasks"), i, x)
    {
        json_array_foreach(json_object_get(x, "outputs"), k, m)
        {
            if (!json_is_true(json_object_get(m, "differs")))
                continue;
            const char *sa = cli_jstr(m, "a"), *sb = cli_jstr(m, "b");
            printf("  %s/%s  %.12s -> %.12s\n", cli_jstr(x, "task"), cli_jstr(m, "name"),
                   sa ? sa : "(none)", sb ? sb : "(none)");
        }
    }
}

static int
runs_compare_run(int argc, char **argv)
{
    struct runs_args a = {0};
    int nargs, rc = opt_parse(&runs_compare_cmd, argc, argv, &a, &nargs);
    if (rc != OPT_GO)
        return rc;
    if (nargs < 2)
        return opt_fail(&runs_compare_cmd, nargs ? "missing RUN_B" : "missing RUN_A and RUN_B",
                        NULL);
    struct sb path;
    sb_init(&path);
    cli_run_path(&path, argv[1], "/compare", a.dag);
    cli_query_add(&path, "with", argv[2]);
    json_t *resp = NULL;
    rc = cli_api_get(client_server_url(a.server), path.buf, &resp);
    sb_free(&path);
    if (rc)
        return 1;
    if (a.json)
        cli_print_json(resp);
    else
        print_compare(resp);
    json_decref(resp);
    return 0;
}

static const struct opt_sub runs_subs[] = {
    {"list", &runs_list_cmd, runs_list_run},          {"show", &runs_show_cmd, runs_run_run},
    {"retry", &runs_retry_cmd, runs_run_run},         {"cancel", &runs_cancel_cmd, runs_run_run},
    {"compare", &runs_compare_cmd, runs_compare_run},
};

static const struct opt_group runs_group = {
    .name = "runs",
    .about = "List recent runs (newest first), show one run with its tasks, rerun what failed,\n"
             "cancel a run, or compare two runs.",
    OPT_SUBS(runs_subs),
};

static int
runs_main(int argc, char **argv)
{
    return opt_dispatch(&runs_group, argc, argv);
}

const struct cli_command cmd_runs = {"runs", runs_main, NULL, &runs_group};

struct clear_args {
    const char *server, *dag, *task;
    int json, downstream, failed_only;
};

static const struct opt clear_opts[] = {
    OPT_STR("--dag", NULL, "D", struct clear_args, dag,
            "the DAG of RUN, needed when another DAG has a run with that id"),
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

/* POST /runs/RUN/{clear,retry,cancel} and print what it did; with wait,
 * follow the run to its end (watch.h, showing error_lines lines of each
 * failed task's stderr) and return its exit code. */
static int
run_action(const char *server, const char *run_id, const char *dag, const char *action,
           json_t *body, int json, int wait, int error_lines)
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
        if (r == CAIRN_ENOENT)
            suggest_after_404(server, run_id, dag, NULL);
        return 1;
    }
    int rc = 0;
    if (wait) {
        const char *st = cli_jstr(run, "state");
        const char *rdag = cli_jstr(run, "dag") ? cli_jstr(run, "dag") : dag;
        if (!json) {
            printf("run %s of %s is %s again\n", run_id, rdag ? rdag : "?", st ? st : "?");
            fflush(stdout);
        }
        rc = watch_run(server, run_id, rdag, run, json, error_lines);
    } else if (json) {
        cli_print_json(run);
    } else {
        int color = table_use_color(stdout);
        const char *st = cli_jstr(run, "state");
        if (!strcmp(action, "cancel"))
            printf("run %s of %s cancelled\n\n", run_id, cli_jstr(run, "dag"));
        else
            printf("run %s of %s is %s again; follow it with `cairn runs show %s --dag %s`\n\n",
                   run_id, cli_jstr(run, "dag"), st ? st : "?", run_id, cli_jstr(run, "dag"));
        cli_print_task_table(run, color);
        cli_print_task_errors(run, color, 0);
        cli_print_task_metrics(run);
    }
    json_decref(run);
    return rc;
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
    rc = run_action(client_server_url(server), run, dag, "clear", body, json, 0, 0);
    json_decref(body);
    return rc;
}

const struct cli_command cmd_clear = {"clear", clear_main, &clear_cmd, NULL};
