/* cmd_metrics.c - `cairn metrics DAG`: the metrics the tasks of a DAG
 * stored, one row per run, through the scheduler's HTTP API (docs/api.md;
 * the manual is docs/cli.md).
 *
 * It owns the metrics option table and the table of TASK.METRIC columns.
 * Exit codes as cli.h says: 0 done, 1 the scheduler is unreachable or
 * answered with an error, 2 a usage error.
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

struct metrics_args {
    const char *server, *metric, *last;
    int json;
};

static const struct opt metrics_opts[] = {
    OPT_FLAG("--json", NULL, struct metrics_args, json,
             "print the API's answer as JSON (values as stored)"),
    OPT_NUM("--last", NULL, "N", 0, struct metrics_args, last, "the last N runs (default 20)"),
    OPT_STR("--metric", NULL, "NAME", struct metrics_args, metric,
            "only the columns of metric NAME (of any task), or of TASK.NAME"),
    OPT_SERVER(struct metrics_args, server),
};

static const struct opt_cmd metrics_cmd = {
    .name = "metrics",
    .args = "DAG",
    .max_args = 1,
    .about = "The metrics each task of DAG stored, one row per run (the last N, default 20,\n"
             "newest first), one column per TASK.METRIC. --metric NAME keeps the columns of\n"
             "metric NAME (of any task) or TASK.NAME.",
    OPT_TABLE(metrics_opts),
};

static int
metrics_main(int argc, char **argv)
{
    struct metrics_args a = {0};
    int nargs, prc = opt_parse(&metrics_cmd, argc, argv, &a, &nargs);
    if (prc != OPT_GO)
        return prc;
    if (nargs == 0)
        return opt_fail(&metrics_cmd, "missing DAG", NULL);
    const char *server = a.server, *dag = argv[1], *metric = a.metric, *last = a.last;
    int json = a.json;
    struct sb path;
    sb_init(&path);
    char *e = client_urlencode(dag);
    sb_printf(&path, "/api/v1/dags/%s/metrics", e);
    free(e);
    cli_query_add(&path, "metric", metric);
    cli_query_add(&path, "last", last);
    json_t *resp = NULL;
    int rc = cli_api_get(client_server_url(server), path.buf, &resp);
    sb_free(&path);
    if (rc != 0)
        return 1;
    if (json) {
        cli_print_json(resp);
        json_decref(resp);
        return 0;
    }
    const json_t *cols = json_object_get(resp, "columns");
    struct table *t = table_new();
    table_add_column(t, "RUN ID", TABLE_LEFT);
    table_add_column(t, "LOGICAL DATE", TABLE_LEFT);
    table_add_column(t, "STATE", TABLE_LEFT);
    size_t i, j;
    json_t *col, *run;
    json_array_foreach(cols, i, col)
    {
        table_add_column(t, json_string_value(col) ?: "?", TABLE_RIGHT);
    }
    json_array_foreach(json_object_get(resp, "runs"), i, run)
    {
        table_add_row(t);
        table_cell(t, cli_jstr(run, "run_id"));
        table_cell(t, cli_jstr(run, "logical_date"));
        table_cell_color(t, cli_jstr(run, "state"),
                         table_state_color(cli_jstr(run, "state") ?: ""));
        const json_t *mets = json_object_get(run, "metrics");
        json_array_foreach(cols, j, col)
        {
            const json_t *mv = json_object_get(mets, json_string_value(col) ?: "");
            if (json_is_number(mv))
                table_cellf(t, "%.6g", json_number_value(mv));
            else
                table_cell(t, NULL);
        }
    }
    if (table_rows(t) == 0)
        printf("no runs of DAG '%s' yet\n", dag);
    else
        table_print(t, stdout, table_use_color(stdout));
    if (table_rows(t) && json_array_size(cols) == 0)
        printf("\n%s\n", metric ? "no task of these runs stored that metric"
                                : "no task of these runs stored metrics");
    table_free(t);
    json_decref(resp);
    return 0;
}

const struct cli_command cmd_metrics = {"metrics", metrics_main, &metrics_cmd, NULL};
