/* api_runs.c - the API's run routes (see api_runs.h, docs/api.md): runs,
 * their task instances, attempts, logs and artifact lists; clear, retry
 * and cancel.
 *
 * A run the engine holds in memory is answered from there (sched_run_json);
 * any other is read from LMDB through a short read transaction on the loop
 * thread (api_load_run, store_scan). Log bytes are read from the attempt's
 * log file, never past the attempt's durable log_size. Changes go through
 * the engine (sched_clear, sched_cancel) and are answered once durable.
 */
#include "api_runs.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "engine.h"
#include "err.h"
#include "hmap.h"
#include "store.h"
#include "util.h"

#define SEP "\x1f"
#define LOG_CHUNK_MAX (1024 * 1024)

struct list_ctx {
    const char *dag;
    const char *state;
    json_t *out;
};

static int
list_cb(void *ud, const char *key, const void *json)
{
    struct list_ctx *lc = ud;
    json_t *j = (json_t *)json;
    (void)key;
    if (lc->dag && strcmp(json_string_value(json_object_get(j, "dag")) ?: "", lc->dag))
        return 0;
    if (lc->state && strcmp(json_string_value(json_object_get(j, "state")) ?: "", lc->state))
        return 0;
    json_t *c = json_deep_copy(j);
    json_object_del(c, "v");
    json_array_append_new(lc->out, c);
    return 0;
}

static int
created_desc(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t sx = json_integer_value(json_object_get(x, "seq"));
    json_int_t sy = json_integer_value(json_object_get(y, "seq"));
    return sx < sy ? 1 : sx > sy ? -1 : 0;
}

void
api_runs_list(struct sched *s, struct http_conn *c, const struct http_req *req,
              const struct route_params *p)
{
    struct list_ctx lc = {0};
    char *dag = api_query(req, "dag"), *state = api_query(req, "state"),
         *limit_s = api_query(req, "limit");
    long limit = 100;
    if (limit_s) {
        char *end;
        limit = strtol(limit_s, &end, 10);
        if (*end || limit <= 0)
            limit = 100;
    }
    if (state && sched_run_state_parse(state) < 0) {
        http_respond_error(c, 400, "bad_request",
                           "unknown run state '%s' (queued, running, success, failed, cancelled)",
                           state);
        goto out;
    }
    lc.dag = dag;
    lc.state = state;
    lc.out = json_array();
    struct store_txn *t = NULL;
    if (store_txn_begin(sched_store(s), false, &t) != 0) {
        json_decref(lc.out);
        http_respond_error(c, 503, "unavailable", "cannot read the state store");
        goto out;
    }
    char *prefix = dag ? xasprintf("%s" SEP, dag) : xstrdup("");
    store_scan(t, STORE_RUNS, prefix, list_cb, &lc);
    free(prefix);
    store_txn_abort(t);
    size_t n = json_array_size(lc.out);
    json_t **items = xcalloc(n + 1, sizeof(*items));
    for (size_t i = 0; i < n; i++)
        items[i] = json_array_get(lc.out, i);
    qsort(items, n, sizeof(*items), created_desc);
    json_t *arr = json_array();
    for (size_t i = 0; i < n && (long)i < limit; i++) {
        json_t *it = json_incref(items[i]);
        json_object_del(it, "seq");
        json_array_append_new(arr, it);
    }
    free(items);
    json_decref(lc.out);
    http_respond_json(c, 200, json_pack("{s:o}", "runs", arr));
out:
    free(dag);
    free(state);
    free(limit_s);
}

static int
ti_collect_cb(void *ud, const char *key, const void *json)
{
    (void)key;
    json_array_append_new(ud, sched_ti_api(json));
    return 0;
}

void
api_runs_get(struct sched *s, struct http_conn *c, const struct http_req *req,
             const struct route_params *p)
{
    const char *run_id = route_param(p, "run");
    char *dag = api_query(req, "dag"), err[256];
    struct store_txn *t = NULL;
    int status = 500;
    if (dag) {
        struct sched_run *r = sched_find_run(s, dag, run_id);
        if (r) {
            http_respond_json(c, 200, sched_run_json(r, true));
            free(dag);
            return;
        }
    }
    if (store_txn_begin(sched_store(s), false, &t) != 0) {
        http_respond_error(c, 503, "unavailable", "cannot read the state store");
        free(dag);
        return;
    }
    json_t *run = api_load_run(s, t, dag, run_id, &status, err, sizeof(err));
    if (!run) {
        store_txn_abort(t);
        http_respond_error(c, status, status == 404 ? "not_found" : "conflict", "%s", err);
        free(dag);
        return;
    }
    const char *rdag = json_string_value(json_object_get(run, "dag"));
    struct sched_run *r = rdag ? sched_find_run(s, rdag, run_id) : NULL;
    if (r) {
        store_txn_abort(t);
        json_decref(run);
        http_respond_json(c, 200, sched_run_json(r, true));
        free(dag);
        return;
    }
    json_t *tasks = json_array();
    char *prefix = xasprintf("%s" SEP "%s" SEP, rdag ? rdag : "", run_id);
    store_scan(t, STORE_TIS, prefix, ti_collect_cb, tasks);
    free(prefix);
    store_txn_abort(t);
    /* list tasks in the DAG's order, as for runs in memory */
    const char *ver = json_string_value(json_object_get(run, "dag_version"));
    const struct dag *d = rdag && ver ? sched_dag_version(s, rdag, ver) : NULL;
    if (d) {
        struct hmap byname;
        size_t k;
        json_t *v;
        hmap_init(&byname);
        json_array_foreach(tasks, k, v)
        {
            const char *name = json_string_value(json_object_get(v, "task"));
            if (name)
                hmap_put(&byname, name, k);
        }
        json_t *sorted = json_array();
        for (size_t i = 0; i < d->ntasks; i++)
            if (hmap_get(&byname, d->tasks[i].name, &k))
                json_array_append(sorted, json_array_get(tasks, k));
        hmap_free(&byname);
        /* keep the stored order if the version lacks a task (cannot happen) */
        if (json_array_size(sorted) == json_array_size(tasks)) {
            json_decref(tasks);
            tasks = sorted;
        } else {
            json_decref(sorted);
        }
    }
    json_object_del(run, "v");
    json_object_del(run, "seq");
    json_object_set_new(run, "tasks", tasks);
    http_respond_json(c, 200, run);
    free(dag);
}

static int
attempt_collect_cb(void *ud, const char *key, const void *json)
{
    (void)key;
    json_t *j = json_deep_copy((json_t *)json);
    json_object_del(j, "v");
    if (json_integer_value(json_object_get(j, "exit_code")) < 0)
        json_object_set_new(j, "exit_code", json_null());
    if (!json_integer_value(json_object_get(j, "signal")))
        json_object_set_new(j, "signal", json_null());
    json_array_append_new(ud, j);
    return 0;
}

/* Resolve dag (from query or by search) and fetch the attempts of a task. */
static json_t *
load_attempts(struct sched *s, const struct http_req *req, const char *run_id, const char *task,
              char **dag_out, int *status, char *err, size_t errlen)
{
    char *dag = api_query(req, "dag");
    struct store_txn *t = NULL;
    if (store_txn_begin(sched_store(s), false, &t) != 0) {
        *status = 503;
        snprintf(err, errlen, "cannot read the state store");
        free(dag);
        return NULL;
    }
    json_t *run = api_load_run(s, t, dag, run_id, status, err, errlen);
    if (!run) {
        store_txn_abort(t);
        free(dag);
        return NULL;
    }
    free(dag);
    dag = xstrdup(json_string_value(json_object_get(run, "dag")) ?: "");
    json_decref(run);
    char *tikey = xasprintf("%s" SEP "%s" SEP "%s", dag, run_id, task);
    void *ti = NULL;
    if (store_get(t, STORE_TIS, tikey, &ti) != 0) {
        free(tikey);
        store_txn_abort(t);
        *status = 404;
        snprintf(err, errlen, "run '%s' of DAG '%s' has no task '%s'", run_id, dag, task);
        free(dag);
        return NULL;
    }
    json_decref(ti);
    char *prefix = xasprintf("%s" SEP, tikey);
    free(tikey);
    json_t *arr = json_array();
    store_scan(t, STORE_ATTEMPTS, prefix, attempt_collect_cb, arr);
    free(prefix);
    store_txn_abort(t);
    *dag_out = dag;
    return arr;
}

void
api_runs_attempts(struct sched *s, struct http_conn *c, const struct http_req *req,
                  const struct route_params *p)
{
    const char *run_id = route_param(p, "run"), *task = route_param(p, "task");
    char err[256], *dag = NULL;
    int status = 500;
    json_t *arr = load_attempts(s, req, run_id, task, &dag, &status, err, sizeof(err));
    if (!arr) {
        http_respond_error(c, status, status == 404 ? "not_found" : "conflict", "%s", err);
        return;
    }
    free(dag);
    http_respond_json(c, 200, json_pack("{s:o}", "attempts", arr));
}

void
api_runs_logs(struct sched *s, struct http_conn *c, const struct http_req *req,
              const struct route_params *p)
{
    const char *run_id = route_param(p, "run"), *task = route_param(p, "task");
    char err[256], *dag = NULL;
    int status = 500;
    json_t *arr = load_attempts(s, req, run_id, task, &dag, &status, err, sizeof(err));
    if (!arr) {
        http_respond_error(c, status, status == 404 ? "not_found" : "conflict", "%s", err);
        return;
    }
    char *as = api_query(req, "attempt"), *os = api_query(req, "offset"),
         *ls = api_query(req, "limit");
    long attempt = (long)json_array_size(arr), offset = 0, limit = LOG_CHUNK_MAX;
    if (as)
        attempt = strtol(as, NULL, 10);
    if (os)
        offset = strtol(os, NULL, 10);
    if (ls)
        limit = strtol(ls, NULL, 10);
    if (limit <= 0 || limit > LOG_CHUNK_MAX)
        limit = LOG_CHUNK_MAX;
    if (offset < 0)
        offset = 0;
    free(as);
    free(os);
    free(ls);
    json_t *att = NULL;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (json_integer_value(json_object_get(v, "attempt")) == attempt)
            att = v;
    }
    if (!att) {
        if (json_array_size(arr) == 0)
            http_respond_json(c, 200,
                              json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:s, s:b}", "dag", dag,
                                        "run_id", run_id, "task", task, "attempt", 0, "offset", 0,
                                        "next_offset", 0, "data", "", "complete", 0));
        else
            http_respond_error(c, 404, "not_found", "task '%s' has no attempt %ld", task, attempt);
        json_decref(arr);
        free(dag);
        return;
    }
    const char *st = json_string_value(json_object_get(att, "state")) ?: "";
    int64_t size = json_integer_value(json_object_get(att, "log_size"));
    bool ended = strcmp(st, "leased") != 0 && strcmp(st, "running") != 0;
    char *path = sched_log_path(s, dag, run_id, task, (int)attempt);
    struct sb data;
    sb_init(&data);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char *buf = xmalloc((size_t)limit);
        ssize_t n = pread(fd, buf, (size_t)limit, offset);
        if (n > 0)
            sb_append(&data, buf, (size_t)n);
        free(buf);
        close(fd);
    }
    free(path);
    /* never hand out bytes past the durable pointer */
    size_t len = data.len;
    if ((int64_t)offset + (int64_t)len > size)
        len = size > offset ? (size_t)(size - offset) : 0;
    int64_t next = offset + (int64_t)len;
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:i, s:I, s:I, s:s%, s:b, s:s}", "dag", dag, "run_id", run_id,
                  "task", task, "attempt", (int)attempt, "offset", (json_int_t)offset,
                  "next_offset", (json_int_t)next, "data", data.buf ? data.buf : "", len,
                  "complete", ended && next >= size, "state", st);
    if (!o) /* not UTF-8: send it with replacement characters */
        o = json_pack("{s:s, s:s, s:s, s:i, s:I, s:I, s:s, s:b, s:s}", "dag", dag, "run_id", run_id,
                      "task", task, "attempt", (int)attempt, "offset", (json_int_t)offset,
                      "next_offset", (json_int_t)next, "data", "[binary output not shown]",
                      ended && next >= size, "state", st);
    sb_free(&data);
    json_decref(arr);
    free(dag);
    http_respond_json(c, 200, o);
}

static int
artifact_collect_cb(void *ud, const char *key, const void *json)
{
    (void)key;
    if (json_is_true(json_object_get((json_t *)json, "superseded")))
        return 0; /* an earlier attempt's, kept for lineage */
    json_t *j = json_deep_copy((json_t *)json);
    json_object_del(j, "v");
    json_array_append_new(ud, j);
    return 0;
}

void
api_runs_artifacts(struct sched *s, struct http_conn *c, const struct http_req *req,
                   const struct route_params *p)
{
    const char *run_id = route_param(p, "run");
    char *dag = api_query(req, "dag"), err[256];
    int status = 500;
    struct store_txn *t = NULL;
    if (store_txn_begin(sched_store(s), false, &t) != 0) {
        http_respond_error(c, 503, "unavailable", "cannot read the state store");
        free(dag);
        return;
    }
    json_t *run = api_load_run(s, t, dag, run_id, &status, err, sizeof(err));
    free(dag);
    if (!run) {
        store_txn_abort(t);
        http_respond_error(c, status, status == 404 ? "not_found" : "conflict", "%s", err);
        return;
    }
    char *prefix =
        xasprintf("%s" SEP "%s" SEP, json_string_value(json_object_get(run, "dag")) ?: "", run_id);
    json_t *arr = json_array();
    store_scan(t, STORE_ARTIFACTS, prefix, artifact_collect_cb, arr);
    store_txn_abort(t);
    free(prefix);
    json_decref(run);
    http_respond_json(c, 200, json_pack("{s:o}", "artifacts", arr));
}

/* The DAG of a run given by id: ?dag= or "dag" in the body, else found by
 * searching (an error if the id is in several DAGs). malloc'd, or NULL
 * after answering the error. */
static char *
run_dag(struct sched *s, struct http_conn *c, const struct http_req *req, json_t *body,
        const char *run_id)
{
    char *dag = api_query(req, "dag");
    const char *bd = json_string_value(json_object_get(body, "dag"));
    if (!dag && bd)
        dag = xstrdup(bd);
    if (dag)
        return dag;
    struct store_txn *t = NULL;
    if (store_txn_begin(sched_store(s), false, &t) != 0) {
        http_respond_error(c, 503, "unavailable", "cannot read the state store");
        return NULL;
    }
    int status = 500;
    char err[256];
    json_t *run = api_load_run(s, t, NULL, run_id, &status, err, sizeof(err));
    store_txn_abort(t);
    if (!run) {
        http_respond_error(c, status, status == 404 ? "not_found" : "conflict", "%s", err);
        return NULL;
    }
    dag = xstrdup(json_string_value(json_object_get(run, "dag")) ?: "");
    json_decref(run);
    return dag;
}

static void
run_action(struct sched *s, struct http_conn *c, const struct http_req *req, const char *run_id,
           const char *action)
{
    json_t *body;
    if (!api_body_object(c, req, &body))
        return;
    char *dag = run_dag(s, c, req, body, run_id);
    if (!dag) {
        json_decref(body);
        return;
    }
    char err[512];
    struct sched_run *r = NULL;
    int rc;
    if (!strcmp(action, "cancel")) {
        rc = sched_cancel(s, dag, run_id, &r, err, sizeof(err));
    } else {
        unsigned flags = 0;
        const char *task = NULL;
        if (!strcmp(action, "retry")) {
            flags = SCHED_CLEAR_FAILED_ONLY | SCHED_CLEAR_DOWNSTREAM;
        } else {
            task = json_string_value(json_object_get(body, "task"));
            if (json_is_true(json_object_get(body, "downstream")))
                flags |= SCHED_CLEAR_DOWNSTREAM;
            if (json_is_true(json_object_get(body, "failed_only")))
                flags |= SCHED_CLEAR_FAILED_ONLY;
        }
        rc = sched_clear(s, dag, run_id, task, flags, &r, err, sizeof(err));
    }
    if (rc)
        api_respond_code(c, rc, err);
    else
        api_respond_after_commit(s, c, 200, sched_run_json(r, true));
    free(dag);
    json_decref(body);
}

void
api_runs_clear(struct sched *s, struct http_conn *c, const struct http_req *req,
               const struct route_params *p)
{
    run_action(s, c, req, route_param(p, "run"), "clear");
}

void
api_runs_retry(struct sched *s, struct http_conn *c, const struct http_req *req,
               const struct route_params *p)
{
    run_action(s, c, req, route_param(p, "run"), "retry");
}

void
api_runs_cancel(struct sched *s, struct http_conn *c, const struct http_req *req,
                const struct route_params *p)
{
    run_action(s, c, req, route_param(p, "run"), "cancel");
}
