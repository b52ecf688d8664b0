/* suggest.c - "did you mean" for run ids and task names (suggest.h).
 *
 * It owns the rule for what is close (suggest_closest) and the lookups that
 * follow a 404: the run itself (GET /api/v1/runs/RUN: its tasks, or that it
 * does not exist), the runs of its DAG or of every DAG (GET /api/v1/runs,
 * the latest SUGGEST_RUNS_LIMIT), and the DAGs (GET /api/v1/dags) when a
 * --dag names none. Each answer is freed before the function returns; a
 * lookup that fails only means no hint. Hints go to stderr.
 */
#include "suggest.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "cliutil.h"
#include "err.h"
#include "util.h"

/* How many runs are looked at for a misspelt run id, newest first. */
#define SUGGEST_RUNS_LIMIT "1000"
/* How many names "what exists" lists before it stops. */
#define SUGGEST_LIST_MAX 5
#define SUGGEST_TASKS_MAX 20

size_t
suggest_closest(const char *word, const char *const *cands, size_t n, const char **out, size_t max)
{
    size_t wl = strlen(word), best = 3, k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!cands[i])
            continue;
        size_t d = str_distance(word, cands[i], 2);
        if (d > 2 || d >= wl || d > best)
            continue;
        if (d < best)
            k = 0;
        best = d;
        if (k < max)
            out[k++] = cands[i];
    }
    if (k > 0 || wl == 0)
        return k;
    const char *only = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!cands[i] || strncmp(cands[i], word, wl) != 0)
            continue;
        if (only)
            return 0;
        only = cands[i];
    }
    if (only && max > 0) {
        out[0] = only;
        return 1;
    }
    return 0;
}

/* The string field key of every element of arr, in order (borrowed from
 * arr; NULL where it has none). The caller frees the array. */
static const char **
suggest_names(const json_t *arr, const char *key, size_t *n)
{
    *n = json_array_size(arr);
    const char **v = xcalloc(*n + 1, sizeof(*v));
    for (size_t i = 0; i < *n; i++)
        v[i] = cli_jstr(json_array_get(arr, i), key);
    return v;
}

/* "  hint: did you mean 'a'?", "... 'a' or 'b'?", "... 'a', 'b' or 'c'?",
 * with what (e.g. "--dag ") before the words and tail after them. */
static void
suggest_print_close(const char *what, const char *const *close, size_t k, const char *tail)
{
    fprintf(stderr, "  hint: did you mean %s", what);
    for (size_t i = 0; i < k; i++)
        fprintf(stderr, "%s'%s'", i == 0 ? "" : i + 1 == k ? " or " : ", ", close[i]);
    fprintf(stderr, "%s?\n", tail);
}

/* names[0 .. n-1] (NULL ones left out) joined by ", ", at most max of them,
 * then ", ..." if there were more. */
static void
suggest_join(struct sb *sb, const char *const *names, size_t n, size_t max)
{
    size_t shown = 0;
    for (size_t i = 0; i < n; i++) {
        if (!names[i])
            continue;
        if (shown == max) {
            sb_puts(sb, ", ...");
            return;
        }
        sb_printf(sb, "%s%s", shown ? ", " : "", names[i]);
        shown++;
    }
}

/* GET the latest runs (of dag, if not NULL): the "runs" array of the
 * answer, which *resp owns (the caller frees it); NULL if the call failed. */
static const json_t *
suggest_get_runs(const char *server, const char *dag, json_t **resp)
{
    struct sb path;
    sb_init(&path);
    sb_puts(&path, "/api/v1/runs");
    cli_query_add(&path, "dag", dag);
    cli_query_add(&path, "limit", SUGGEST_RUNS_LIMIT);
    *resp = NULL;
    int rc = client_get_json(server, path.buf, resp, NULL, 0);
    sb_free(&path);
    return rc == 0 ? json_object_get(*resp, "runs") : NULL;
}

/* run_id is not a run of the DAG given: is it (or one close to it) a run of
 * another DAG? Returns 1 if it printed a hint. */
static int
suggest_elsewhere(const char *server, const char *run_id)
{
    json_t *resp = NULL;
    const json_t *runs = suggest_get_runs(server, NULL, &resp);
    size_t n, k = 0;
    const char **ids = suggest_names(runs, "run_id", &n), *close[1];
    const char *rdag = NULL;
    for (size_t i = 0; i < n && !rdag; i++)
        if (ids[i] && !strcmp(ids[i], run_id))
            rdag = cli_jstr(json_array_get(runs, i), "dag");
    if (rdag) {
        fprintf(stderr, "  hint: run '%s' is a run of DAG '%s' (--dag %s)\n", run_id, rdag, rdag);
    } else if ((k = suggest_closest(run_id, ids, n, close, 1)) > 0) {
        for (size_t i = 0; i < n && !rdag; i++)
            if (ids[i] == close[0])
                rdag = cli_jstr(json_array_get(runs, i), "dag");
        char *tail = xasprintf(" of DAG '%s'", rdag ? rdag : "?");
        suggest_print_close("", close, 1, tail);
        free(tail);
    }
    free(ids);
    json_decref(resp);
    return rdag != NULL || k > 0;
}

/* --dag named a DAG without runs: does it exist? */
static void
suggest_dag(const char *server, const char *dag)
{
    json_t *dags = NULL;
    if (client_get_json(server, "/api/v1/dags", &dags, NULL, 0) != 0)
        return;
    size_t n, k = 0;
    const char **names = suggest_names(json_object_get(dags, "dags"), "dag", &n), *close[3];
    int known = 0;
    for (size_t i = 0; i < n; i++)
        known |= names[i] && !strcmp(names[i], dag);
    if (known)
        fprintf(stderr, "  hint: DAG '%s' has no runs yet\n", dag);
    else if ((k = suggest_closest(dag, names, n, close, 3)) > 0)
        suggest_print_close("--dag ", close, k, "");
    else
        fprintf(stderr, "  hint: there is no DAG '%s' (cairn dags list)\n", dag);
    free(names);
    json_decref(dags);
}

/* run_id (of dag, or of any DAG) does not exist: its closest, or the latest
 * runs. */
static void
suggest_run(const char *server, const char *run_id, const char *dag)
{
    json_t *resp = NULL;
    const json_t *runs = suggest_get_runs(server, dag, &resp);
    if (!runs) {
        json_decref(resp);
        return;
    }
    size_t n;
    const char **ids = suggest_names(runs, "run_id", &n), *close[3];
    size_t k = suggest_closest(run_id, ids, n, close, 3);
    if (k) {
        suggest_print_close("", close, k, "");
    } else if (dag && suggest_elsewhere(server, run_id)) {
        /* printed */
    } else if (n) {
        struct sb sb;
        sb_init(&sb);
        suggest_join(&sb, ids, n, SUGGEST_LIST_MAX);
        if (n > SUGGEST_LIST_MAX)
            sb_printf(&sb, " (cairn runs list%s%s)", dag ? " --dag " : "", dag ? dag : "");
        if (dag)
            fprintf(stderr, "  hint: the latest runs of DAG '%s': %s\n", dag, sb.buf);
        else
            fprintf(stderr, "  hint: the latest runs: %s\n", sb.buf);
        sb_free(&sb);
    } else if (dag) {
        suggest_dag(server, dag);
    } else {
        fputs("  hint: there are no runs yet\n", stderr);
    }
    free(ids);
    json_decref(resp);
}

void
suggest_after_404(const char *server, const char *run_id, const char *dag, const char *task)
{
    struct sb path;
    json_t *run = NULL;
    sb_init(&path);
    cli_run_path(&path, run_id, NULL, dag);
    int rc = client_get_json(server, path.buf, &run, NULL, 0);
    sb_free(&path);
    if (rc == CAIRN_ENOENT) {
        suggest_run(server, run_id, dag);
        return;
    }
    if (rc != 0 || !task) {
        json_decref(run);
        return;
    }
    size_t n;
    const char **names = suggest_names(json_object_get(run, "tasks"), "task", &n), *close[3];
    int known = 0;
    for (size_t i = 0; i < n; i++)
        known |= names[i] && !strcmp(names[i], task);
    size_t k = known ? 0 : suggest_closest(task, names, n, close, 3);
    if (k) {
        suggest_print_close("", close, k, "");
    } else if (!known) {
        struct sb sb;
        sb_init(&sb);
        suggest_join(&sb, names, n, SUGGEST_TASKS_MAX);
        fprintf(stderr, "  hint: run '%s' has %s%s\n", run_id, n ? "tasks " : "no tasks",
                sb.buf ? sb.buf : "");
        sb_free(&sb);
    }
    free(names);
    json_decref(run);
}
