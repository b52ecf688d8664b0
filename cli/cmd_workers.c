/* cmd_workers.c - `cairn workers`: the workers the scheduler knows and what
 * they run, through its HTTP API (docs/api.md; the manual is docs/cli.md).
 *
 * It owns the workers option table and the workers table. Exit codes as
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

/* Every GPU below the table, when a worker has some: its model, and the
 * task that holds it. */
static void
workers_print_gpus(const json_t *workers)
{
    struct table *t = NULL;
    for (size_t i = 0; i < json_array_size(workers); i++) {
        const json_t *w = json_array_get(workers, i);
        const json_t *gpus = json_object_get(w, "gpus"), *running = json_object_get(w, "running");
        for (size_t j = 0; j < json_array_size(gpus); j++) {
            const json_t *g = json_array_get(gpus, j);
            json_int_t index = 0, lease = 0;
            cli_jint(g, "index", &index);
            if (!t) {
                t = table_new();
                table_add_column(t, "WORKER", TABLE_LEFT);
                table_add_column(t, "GPU", TABLE_RIGHT);
                table_add_column(t, "MODEL", TABLE_LEFT);
                table_add_column(t, "USED BY", TABLE_LEFT);
            }
            table_add_row(t);
            table_cell(t, cli_jstr(w, "name"));
            table_cellf(t, "%" JSON_INTEGER_FORMAT, index);
            const char *model = cli_jstr(g, "model");
            table_cell(t, model && *model ? model : NULL);
            if (!cli_jint(g, "lease_id", &lease)) {
                table_cell(t, NULL);
                continue;
            }
            const json_t *holder = NULL;
            for (size_t k = 0; k < json_array_size(running) && !holder; k++) {
                json_int_t id = 0;
                if (cli_jint(json_array_get(running, k), "lease_id", &id) && id == lease)
                    holder = json_array_get(running, k);
            }
            if (holder)
                table_cellf(t, "%s/%s", cli_jstr(holder, "dag") ? cli_jstr(holder, "dag") : "?",
                            cli_jstr(holder, "task") ? cli_jstr(holder, "task") : "?");
            else
                table_cellf(t, "lease %" JSON_INTEGER_FORMAT, lease);
        }
    }
    if (!t)
        return;
    putchar('\n');
    table_print(t, stdout, table_use_color(stdout));
    table_free(t);
}

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
    table_add_column(t, "GPUS", TABLE_LEFT);
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
        cli_cell_state(t, cli_jstr(w, "state"));
        cli_jint(w, "slots", &slots);
        cli_jint(w, "busy", &busy);
        table_cellf(t, "%" JSON_INTEGER_FORMAT, slots);
        table_cellf(t, "%" JSON_INTEGER_FORMAT, busy);
        table_cell(t, labels.buf);
        size_t ngpus = json_array_size(json_object_get(w, "gpus"));
        json_int_t gfree = 0;
        cli_jint(w, "gpus_free", &gfree);
        if (ngpus)
            table_cellf(t, "%" JSON_INTEGER_FORMAT " free, %" JSON_INTEGER_FORMAT " used", gfree,
                        (json_int_t)ngpus - gfree);
        else
            table_cell(t, NULL);
        if (cli_jtime(w, "last_seen", &seen)) {
            char d[32];
            cli_fmt_seconds(clock_wall_ms() - seen * 1000, d, sizeof(d));
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
    workers_print_gpus(workers);
    json_decref(resp);
    return 0;
}

const struct cli_command cmd_workers = {"workers", workers_main, &workers_cmd, NULL};
