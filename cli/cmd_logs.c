/* cmd_logs.c - `cairn logs RUN TASK`: the output of one attempt, byte for
 * byte, through the scheduler's HTTP API (docs/api.md; the manual is
 * docs/cli.md).
 *
 * It owns the logs option table and the reading loop: chunks from an offset
 * until the attempt is complete; with --follow it waits for the task to
 * start, keeps asking every CLI_POLL_INTERVAL_MS and stays on the attempt it
 * started with. A 404 (a misspelt run id or task name) gets a did-you-mean
 * (suggest.h). Exit codes as cli.h says: 0 done, 1 the scheduler is
 * unreachable or answered with an error, 2 a usage error. 130 on Ctrl-C
 * while following.
 */
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
#include "suggest.h"
#include "util.h"

struct logs_args {
    const char *server, *dag, *attempt;
    int follow;
};

static const struct opt logs_opts[] = {
    OPT_NUM("--attempt", NULL, "N", 0, struct logs_args, attempt,
            "attempt N (default: the latest)"),
    OPT_STR("--dag", NULL, "D", struct logs_args, dag,
            "the DAG of RUN, needed when another DAG has a run with that id"),
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
 * failed) or it or its run does not exist, -1 if that cannot be told now. */
static int
task_may_start(const char *server, const char *run_id, const char *task, const char *dag)
{
    struct sb path;
    json_t *run = NULL;
    int wait = -1;
    sb_init(&path);
    cli_run_path(&path, run_id, NULL, dag);
    int rc = client_get_json(server, path.buf, &run, NULL, 0);
    if (rc == CAIRN_ENOENT)
        wait = 0;
    if (rc == 0) {
        const json_t *tasks = json_object_get(run, "tasks");
        wait = 0;
        for (size_t i = 0; i < json_array_size(tasks); i++) {
            const json_t *t = json_array_get(tasks, i);
            const char *name = cli_jstr(t, "task");
            if (name && !strcmp(name, task))
                wait = !cli_task_ended(cli_jstr(t, "state"));
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
                cli_sleep_until(t0, CLI_POLL_INTERVAL_MS);
                continue;
            }
            fprintf(stderr, "cairn: %s\n", err);
            if (r == CAIRN_ENOENT)
                suggest_after_404(server, run_id, dag, task);
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
        /* final: nothing more will come; complete: and nothing is missing */
        int complete = json_is_true(json_object_get(chunk, "complete")) ||
                       json_is_true(json_object_get(chunk, "final"));
        json_int_t lost = 0;
        cli_jint(chunk, "log_lost", &lost);
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
            if (lost > 0)
                fprintf(stderr, "cairn: this log is incomplete: %" JSON_INTEGER_FORMAT
                        " bytes of the task's output could not be stored by the scheduler "
                        "(its log says why: CAIRN-LOG-LOST)\n", lost);
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
        cli_sleep_until(t0, CLI_POLL_INTERVAL_MS);
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
