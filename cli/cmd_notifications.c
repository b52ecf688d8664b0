/* cmd_notifications.c - `cairn notifications list`: the recent deliveries
 * of `notify:` (webhooks and commands) with their state, tries and last
 * error, through GET /api/v1/notifications (docs/api.md; the manual is
 * docs/cli.md). Exit codes as cli.h says.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "client.h"
#include "cliutil.h"
#include "opt.h"
#include "table.h"
#include "util.h"

struct notifications_args {
    const char *server, *dag, *limit;
    int json;
};

static const struct opt notifications_list_opts[] = {
    OPT_STR("--dag", NULL, "D", struct notifications_args, dag, "only the deliveries of DAG D"),
    OPT_FLAG("--json", NULL, struct notifications_args, json, "print the API's answer as JSON"),
    OPT_NUM("--limit", NULL, "N", 1000, struct notifications_args, limit,
            "at most N deliveries, newest first (default 100)"),
    OPT_SERVER(struct notifications_args, server),
};

static const struct opt_cmd notifications_list_cmd = {
    .name = "notifications list",
    .max_args = 0,
    .about = "List the recent notification deliveries (webhooks and commands of `notify:`),\n"
             "newest first: the event, its target, pending/delivered/failed, tries, last error.",
    OPT_TABLE(notifications_list_opts),
};

static int
notifications_list(int argc, char **argv)
{
    struct notifications_args a = {0};
    int nargs, rc = opt_parse(&notifications_list_cmd, argc, argv, &a, &nargs);
    if (rc != OPT_GO)
        return rc;
    struct sb path;
    sb_init(&path);
    sb_puts(&path, "/api/v1/notifications");
    cli_query_add(&path, "dag", a.dag);
    cli_query_add(&path, "limit", a.limit);
    json_t *resp;
    rc = cli_api_get(client_server_url(a.server), path.buf, &resp);
    sb_free(&path);
    if (rc)
        return 1;
    if (a.json) {
        cli_print_json(resp);
        json_decref(resp);
        return 0;
    }
    struct table *t = table_new();
    table_add_column(t, "CREATED", TABLE_LEFT);
    table_add_column(t, "EVENT", TABLE_LEFT);
    table_add_column(t, "DAG", TABLE_LEFT);
    table_add_column(t, "RUN", TABLE_LEFT);
    table_add_column(t, "TASK", TABLE_LEFT);
    table_add_column(t, "TARGET", TABLE_LEFT);
    table_add_column(t, "STATE", TABLE_LEFT);
    table_add_column(t, "TRIES", TABLE_RIGHT);
    table_add_column(t, "LAST ERROR", TABLE_LEFT);
    const json_t *list = json_object_get(resp, "notifications");
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *d = json_array_get(list, i);
        char when[64];
        json_int_t tries = 0;
        cli_fmt_field_time(d, "created_at", 0, when, sizeof(when));
        cli_jint(d, "attempts", &tries);
        table_add_row(t);
        table_cell(t, when);
        table_cell(t, cli_jstr(d, "event"));
        table_cell(t, cli_jstr(d, "dag"));
        table_cell(t, cli_jstr(d, "run_id"));
        table_cell(t, cli_jstr(d, "task"));
        table_cell(t, cli_jstr(d, "target"));
        cli_cell_state(t, cli_jstr(d, "state"));
        table_cellf(t, "%" JSON_INTEGER_FORMAT, tries);
        table_cell(t, cli_jstr(d, "last_error"));
    }
    table_print(t, stdout, table_use_color(stdout));
    table_free(t);
    json_decref(resp);
    return 0;
}

static const struct opt_sub notifications_subs[] = {
    {"list", &notifications_list_cmd, notifications_list},
};

static const struct opt_group notifications_group = {
    .name = "notifications",
    .about = "Show the deliveries of notifications.",
    OPT_SUBS(notifications_subs),
};

static int
notifications_main(int argc, char **argv)
{
    return opt_dispatch(&notifications_group, argc, argv);
}

const struct cli_command cmd_notifications = {"notifications", notifications_main, NULL,
                                              &notifications_group};
