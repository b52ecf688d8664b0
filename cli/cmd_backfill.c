/* cmd_backfill.c - `cairn backfill DAG --from --to` and `backfill
 * list|show|cancel`, through the scheduler's HTTP API (docs/api.md; the
 * manual is docs/cli.md). The scheduler runs a backfill; this file asks for
 * one, prints what it did (or, with --dry-run, would do) and follows it.
 *
 * It owns the option tables of the backfill commands, the backfill table and
 * page, and the --wait loop: a progress bar on a terminal, else a line per
 * change; it rides out a restarting scheduler as cliutil.h's cli_poll_retry
 * says. `cairn backfill WORD` is the backfill of DAG WORD unless WORD is
 * list, show or cancel. Exit codes as cli.h says: 0 done, 1 the scheduler is
 * unreachable or answered with an error, 2 a usage error. With --wait: 0
 * only if every run the backfill made or reran succeeded, 130 on Ctrl-C (the
 * backfill goes on).
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
               "dates that have a finished run: none skips them (default), failed reruns "
               "the failed tasks of failed or cancelled runs, all reruns them in full"),
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

/* "412/1000 done, 3 running, 0 queued, 2 failed, 1 cancelled, 5 skipped":
 * done counts every date that is over (succeeded, failed, cancelled or
 * skipped). */
static void
backfill_counts(const json_t *bf, char *buf, size_t len)
{
    json_int_t total = 0;
    cli_jint(bf, "total", &total);
    json_int_t ok = progress_of(bf, "success"), failed = progress_of(bf, "failed");
    json_int_t cancelled = progress_of(bf, "cancelled"), skipped = progress_of(bf, "skipped");
    json_int_t running = progress_of(bf, "running"), queued = progress_of(bf, "queued");
    snprintf(buf, len,
             "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT " done, %" JSON_INTEGER_FORMAT
             " running, %" JSON_INTEGER_FORMAT " queued, %" JSON_INTEGER_FORMAT
             " failed, %" JSON_INTEGER_FORMAT " cancelled, %" JSON_INTEGER_FORMAT " skipped",
             ok + failed + cancelled + skipped, total, running, queued, failed, cancelled, skipped);
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
        char counts[256], created[32];
        backfill_counts(b, counts, sizeof(counts));
        cli_fmt_field_time(b, "created_at", 0, created, sizeof(created));
        table_add_row(t);
        table_cell(t, cli_jstr(b, "id"));
        table_cell(t, cli_jstr(b, "dag"));
        cli_cell_state(t, cli_jstr(b, "state"));
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
    char counts[256];
    int color = table_use_color(stdout);
    cli_print_header_line("backfill", cli_jstr(bf, "id"));
    cli_print_header_line("dag", cli_jstr(bf, "dag"));
    printf("%-14s", "state");
    table_put_color(stdout, cli_jstr(bf, "state"), table_state_color(cli_jstr(bf, "state")), color);
    putchar('\n');
    cli_print_header_line("from", cli_jstr(bf, "from"));
    cli_print_header_line("to", cli_jstr(bf, "to"));
    cli_print_header_line("reprocess", cli_jstr(bf, "reprocess"));
    backfill_counts(bf, counts, sizeof(counts));
    cli_print_header_line("progress", counts);
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
        cli_cell_state(t, cli_jstr(r, "state"));
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
    char last[256] = "";
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
        char counts[256], el[32];
        backfill_counts(bf, counts, sizeof(counts));
        cli_fmt_seconds(clock_mono_ms() - started, el, sizeof(el));
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
        fprintf(stderr,
                "%scairn: stopped waiting; the backfill goes on (cairn backfill show %s)"
                "\n",
                tty ? "\n" : "", id);
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
            char counts[256];
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
        if ((rc = cli_param_add(params, ba.params.v[i], &backfill_cmd)) != 0)
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
            char counts[256];
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
