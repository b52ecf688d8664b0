/* cmd_dags.c - `cairn dags list|show|pause|unpause|next-runs`: the DAGs the
 * scheduler loaded, through its HTTP API (docs/api.md; the manual is
 * docs/cli.md).
 *
 * It owns the option tables of the dags sub-commands, the DAG table with the
 * load errors of files that do not load, and the page of `dags show`; the
 * table of last runs on that page is cliutil.c's (cli_runs_list), as `runs
 * list` prints it. `cairn dags` alone is `cairn dags list`. Exit codes as
 * cli.h says: 0 done, 1 the scheduler is unreachable or answered with an
 * error, 2 a usage error.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "cliutil.h"
#include "opt.h"
#include "table.h"
#include "util.h"

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

static void print_dag_errors(const json_t *dags);

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
    cli_fmt_version(d, "version", ver, sizeof(ver));
    cli_print_header_line("dag", cli_jstr(d, "dag"));
    cli_print_header_line("description", cli_jstr(d, "description"));
    cli_print_header_line("file", cli_jstr(d, "file"));
    cli_print_header_line("version", ver);
    const char *sched = cli_jstr(d, "schedule");
    snprintf(buf, sizeof(buf), "%s%s%s%s", sched ? sched : "none", sched ? " (" : "",
             sched ? cli_jstr(d, "timezone") : "", sched ? ")" : "");
    cli_print_header_line("schedule", buf);
    const json_t *trg = json_object_get(d, "triggers");
    if (json_array_size(trg)) {
        struct sb tb;
        sb_init(&tb);
        for (size_t i = 0; i < json_array_size(trg); i++) {
            const json_t *c = json_array_get(trg, i), *evs = json_object_get(c, "events");
            int all = json_is_true(json_object_get(c, "all"));
            sb_puts(&tb, i ? "; " : "");
            sb_puts(&tb, all ? "all(" : "");
            for (size_t j = 0; j < json_array_size(evs); j++) {
                const json_t *e = json_array_get(evs, j);
                const char *k = cli_jstr(e, "kind") ? cli_jstr(e, "kind") : "?";
                sb_printf(&tb, "%s%s", j ? ", " : "", k);
                if (cli_jstr(e, "source"))
                    sb_printf(&tb, " %s", cli_jstr(e, "source"));
                if (cli_jstr(e, "path"))
                    sb_printf(&tb, " %s/%s", cli_jstr(e, "path"),
                              cli_jstr(e, "pattern") ? cli_jstr(e, "pattern") : "*");
            }
            sb_puts(&tb, all ? ")" : "");
        }
        cli_print_header_line("triggers", tb.buf);
        sb_free(&tb);
    }
    cli_print_header_line("paused", json_is_true(json_object_get(d, "paused")) ? "yes" : "no");
    const json_t *n0 = json_array_get(json_object_get(next, "next_runs"), 0);
    if (n0)
        snprintf(buf, sizeof(buf), "%s (created at %s)", cli_jstr(n0, "logical_date"),
                 cli_jstr(n0, "created_at"));
    cli_print_header_line("next run", n0 ? buf : NULL);
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
        cli_fmt_duration(tmo, tbuf, sizeof(tbuf));
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
    return cli_runs_list(server, dag, NULL, "5", NULL, 0, 0);
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
        cli_fmt_version(d, "version", ver, sizeof(ver));
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
