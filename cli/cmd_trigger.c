/* cmd_trigger.c - `cairn trigger DAG`: start a run through the scheduler's
 * HTTP API (docs/api.md; the manual is docs/cli.md) and, with --wait, follow
 * it to its end.
 *
 * It owns the trigger option table and the request that starts the run;
 * --wait hands the run to watch.c, whose live view `runs retry --wait`
 * shares. Exit codes as cli.h says: 0 done, 1 the scheduler is unreachable
 * or answered with an error, 2 a usage error. With --wait: 0 only if the
 * run succeeded, 1 if it failed, 130 on Ctrl-C (the run goes on).
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "cliutil.h"
#include "err.h"
#include "opt.h"
#include "util.h"
#include "watch.h"

struct trigger_args {
    const char *server, *date, *error_lines, *idem_key;
    struct opt_list params;
    int json, wait, no_cache;
};

static const struct opt trigger_opts[] = {
    OPT_NUM0("--error-lines", NULL, "N", 0, struct trigger_args, error_lines,
             "with --wait: the last N lines of a failed task's stderr (default 5)"),
    OPT_STR("--idempotency-key", NULL, "KEY", struct trigger_args, idem_key,
            "a second trigger with the same KEY within 24 h gets the first one's run"),
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
    char err[1024], key[40];
    /* an idempotency key (given, or made here): a retry after a lost answer
     * gets the run the first attempt made, never a second run */
    if (!a.idem_key) {
        unsigned char rnd[12];
        FILE *ur = fopen("/dev/urandom", "rb");
        size_t got = ur ? fread(rnd, 1, sizeof(rnd), ur) : 0;
        if (ur)
            fclose(ur);
        for (size_t i = 0; i < sizeof(rnd); i++)
            snprintf(key + 2 * i, 3, "%02x", i < got ? rnd[i] : (unsigned)(rand() & 0xff));
    }
    client_add_header("Idempotency-Key", a.idem_key ? a.idem_key : key);
    int r = 0;
    for (int attempt = 0;; attempt++) {
        r = client_post_json(server, path, body, &resp, err, sizeof(err));
        bool again = r == CAIRN_ENET || r == CAIRN_ETIMEOUT ||
                     r == CAIRN_ESTORE;
        if (!again || attempt >= 3)
            break;
        fprintf(stderr, "cairn: %s; trying again (the same trigger: it cannot make two runs)\n",
                err);
        sleep((unsigned)(1 << attempt));
    }
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

    const char *run_dag = cli_jstr(resp, "dag") ? cli_jstr(resp, "dag") : dag;
    if (!json) {
        puts(run_id);
        fflush(stdout);
    }
    rc = watch_run(server, run_id, run_dag, NULL, json, cli_error_lines(a.error_lines));
out:
    opt_list_free(&a.params);
    json_decref(params);
    json_decref(resp);
    return rc;
}

const struct cli_command cmd_trigger = {"trigger", trigger_main, &trigger_cmd, NULL};
