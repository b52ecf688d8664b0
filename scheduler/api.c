#include "api.h"
#include "api_ml.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backfill.h"
#include "cal.h"
#include "err.h"
#include "hmap.h"
#include "log.h"
#include "engine.h"
#include "store.h"
#include "ui.h"
#include "util.h"

#define SEP "\x1f"
#define LOG_CHUNK_MAX (1024 * 1024)

/* Split "/a/b/c" into at most n segments (pointers into a copy). */
static size_t
split_path(char *path, char **seg, size_t n)
{
    size_t k = 0;
    char *p = path;
    while (*p == '/')
        p++;
    while (*p && k < n) {
        seg[k++] = p;
        char *q = strchr(p, '/');
        if (!q)
            break;
        *q = '\0';
        p = q + 1;
    }
    return k;
}

char *
api_query(const struct http_req *req, const char *name)
{
    char *v = NULL;
    if (http_query_get(req->query, name, &v) != 0)
        return NULL;
    return v;
}

static json_t *
dag_json(struct sched_dag *sd, bool detail)
{
    json_t *errs = json_array();
    diag_to_json(&sd->errors, errs);
    const struct dag *d = sd->cur ? sd->cur->dag : NULL;
    json_t *tags = json_array();
    for (size_t i = 0; d && i < d->ntags; i++)
        json_array_append_new(tags, json_string(d->tags[i]));
    json_t *o = json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s, s:b, s:i, s:o, s:o}", "dag",
                          sd->name, "file", sd->file, "version", d ? d->version : NULL,
                          "description", d ? d->description : NULL, "schedule",
                          d ? d->schedule : NULL, "timezone", d ? d->timezone : "UTC", "paused",
                          sd->paused, "tasks", d ? (int)d->ntasks : 0, "tags", tags, "errors",
                          errs);
    json_object_set_new(o, "active_runs", json_integer(sd->active_runs));
    if (detail && d) {
        json_t *tl = json_array();
        for (size_t i = 0; i < d->ntasks; i++) {
            const struct dag_task *t = &d->tasks[i];
            json_t *needs = json_array();
            for (size_t j = 0; j < t->nneeds; j++)
                json_array_append_new(needs, json_string(d->tasks[t->needs[j]].name));
            json_t *publish = json_array();
            for (size_t j = 0; j < t->npublish; j++)
                json_array_append_new(publish, json_string(t->publish[j]));
            json_array_append_new(
                tl, json_pack("{s:s, s:o, s:s, s:i, s:s, s:I, s:b, s:o}", "task", t->name, "needs",
                              needs, "trigger_rule", dag_trigger_name(t->trigger_rule),
                              "retries", t->retries, "image", t->image, "timeout_ms",
                              (json_int_t)t->timeout_ms, "cache", t->cache, "publish", publish));
        }
        json_object_set_new(o, "task_list", tl);
    }
    return o;
}

static void
get_dags(struct sched *s, struct http_conn *c)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < sched_ndags(s); i++)
        json_array_append_new(arr, dag_json(sched_dag_at(s, i), false));
    http_respond_json(c, 200, json_pack("{s:o}", "dags", arr));
}

struct trigger_wait {
    struct http_conn *c;
    json_t *run;
    int status; /* 0 = 201 */
};

static void
trigger_committed(void *ud, bool ok)
{
    struct trigger_wait *tw = ud;
    if (ok)
        http_respond_json(tw->c, tw->status ? tw->status : 201, tw->run);
    else {
        json_decref(tw->run);
        http_respond_error(tw->c, 503, "unavailable",
                           "the run could not be stored; the state store is unavailable");
    }
    free(tw);
}

static void
post_trigger(struct sched *s, struct http_conn *c, const struct http_req *req, const char *dag)
{
    json_t *body = NULL;
    json_error_t jerr;
    if (req->body_len) {
        body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (!body || !json_is_object(body)) {
            json_decref(body);
            http_respond_error(c, 400, "bad_request", "body must be a JSON object: %s",
                               jerr.text);
            return;
        }
    }
    json_t *params = body ? json_object_get(body, "params") : NULL;
    if (params && !json_is_object(params)) {
        json_decref(body);
        http_respond_error(c, 400, "bad_request", "'params' must be an object");
        return;
    }
    int64_t ld = 0;
    bool has_date = false;
    json_t *jd = body ? json_object_get(body, "logical_date") : NULL;
    if (jd && !json_is_null(jd)) {
        int64_t secs;
        int ht, ho;
        const char *ds = json_string_value(jd);
        if (!ds || cal_parse(ds, &secs, &ht, &ho) != 0) {
            json_decref(body);
            http_respond_error(c, 400, "bad_request",
                               "'logical_date' must be an ISO 8601 date or timestamp");
            return;
        }
        struct sched_dag *sd = sched_find_dag(s, dag);
        if (sd && sd->cur)
            ld = dag_logical_date_for(sd->cur->dag, secs, ht, ho);
        else
            ld = secs;
        has_date = true;
    }
    json_t *nc = body ? json_object_get(body, "no_cache") : NULL;
    if (nc && !json_is_boolean(nc) && !json_is_null(nc)) {
        json_decref(body);
        http_respond_error(c, 400, "bad_request", "'no_cache' must be true or false");
        return;
    }
    char err[256];
    struct sched_run *r = NULL;
    int rc = sched_trigger(s, dag, ld, has_date, params, json_is_true(nc), &r, err, sizeof(err));
    json_decref(body);
    if (rc) {
        int st = rc == CAIRN_EEXIST ? 409 : rc == CAIRN_ENOENT ? 404 : rc == CAIRN_ESTATE ? 503 : 400;
        if (rc == CAIRN_ENOENT && strstr(err, "param"))
            st = 400;
        http_respond_error(c, st,
                           st == 409   ? "conflict"
                           : st == 404 ? "not_found"
                           : st == 503 ? "unavailable"
                                       : "bad_request",
                           "%s", err);
        return;
    }
    struct trigger_wait *tw = xcalloc(1, sizeof(*tw));
    tw->c = c;
    tw->run = sched_run_json(r, true);
    sched_after_commit(s, trigger_committed, tw);
}

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

static void
get_runs(struct sched *s, struct http_conn *c, const struct http_req *req)
{
    struct list_ctx lc = {0};
    char *dag = api_query(req, "dag"), *state = api_query(req, "state"), *limit_s = api_query(req, "limit");
    long limit = 100;
    if (limit_s) {
        char *end;
        limit = strtol(limit_s, &end, 10);
        if (*end || limit <= 0)
            limit = 100;
    }
    if (state && sched_run_state_parse(state) < 0) {
        http_respond_error(c, 400, "bad_request",
                           "unknown run state '%s' (queued, running, success, failed, cancelled)", state);
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

struct find_ctx {
    const char *run_id;
    json_t *found;
    int count;
};

static int
find_cb(void *ud, const char *key, const void *json)
{
    struct find_ctx *fc = ud;
    const char *sep = strchr(key, '\x1f');
    if (sep && !strcmp(sep + 1, fc->run_id)) {
        fc->count++;
        if (!fc->found)
            fc->found = json_deep_copy((json_t *)json);
    }
    return 0;
}

json_t *
api_load_run(struct sched *s, struct store_txn *t, const char *dag, const char *run_id,
             int *status, char *err, size_t errlen)
{
    if (dag) {
        char *key = xasprintf("%s" SEP "%s", dag, run_id);
        void *j = NULL;
        int rc = store_get(t, STORE_RUNS, key, &j);
        free(key);
        if (rc) {
            *status = 404;
            snprintf(err, errlen, "no run '%s' of DAG '%s'", run_id, dag);
            return NULL;
        }
        return j;
    }
    struct find_ctx fc = {run_id, NULL, 0};
    store_scan(t, STORE_RUNS, "", find_cb, &fc);
    (void)s;
    if (fc.count == 0) {
        *status = 404;
        snprintf(err, errlen, "no run '%s'", run_id);
        return NULL;
    }
    if (fc.count > 1) {
        json_decref(fc.found);
        *status = 409;
        snprintf(err, errlen, "run id '%s' exists in %d DAGs; say which with --dag", run_id,
                 fc.count);
        return NULL;
    }
    return fc.found;
}

static int
ti_collect_cb(void *ud, const char *key, const void *json)
{
    (void)key;
    json_array_append_new(ud, sched_ti_api(json));
    return 0;
}

static void
get_run(struct sched *s, struct http_conn *c, const struct http_req *req, const char *run_id)
{
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

static void
get_attempts(struct sched *s, struct http_conn *c, const struct http_req *req,
             const char *run_id, const char *task)
{
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

static void
get_logs(struct sched *s, struct http_conn *c, const struct http_req *req, const char *run_id,
         const char *task)
{
    char err[256], *dag = NULL;
    int status = 500;
    json_t *arr = load_attempts(s, req, run_id, task, &dag, &status, err, sizeof(err));
    if (!arr) {
        http_respond_error(c, status, status == 404 ? "not_found" : "conflict", "%s", err);
        return;
    }
    char *as = api_query(req, "attempt"), *os = api_query(req, "offset"), *ls = api_query(req, "limit");
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
                                        "run_id", run_id, "task", task, "attempt", 0, "offset",
                                        0, "next_offset", 0, "data", "", "complete", 0));
        else
            http_respond_error(c, 404, "not_found", "task '%s' has no attempt %ld", task,
                               attempt);
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
    json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:I, s:I, s:s%, s:b, s:s}", "dag", dag, "run_id",
                          run_id, "task", task, "attempt", (int)attempt, "offset",
                          (json_int_t)offset, "next_offset", (json_int_t)next, "data",
                          data.buf ? data.buf : "", len, "complete", ended && next >= size,
                          "state", st);
    if (!o) /* not UTF-8: send it with replacement characters */
        o = json_pack("{s:s, s:s, s:s, s:i, s:I, s:I, s:s, s:b, s:s}", "dag", dag, "run_id",
                      run_id, "task", task, "attempt", (int)attempt, "offset",
                      (json_int_t)offset, "next_offset", (json_int_t)next, "data",
                      "[binary output not shown]", ended && next >= size, "state", st);
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

static void
get_artifacts(struct sched *s, struct http_conn *c, const struct http_req *req,
              const char *run_id)
{
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
    char *prefix = xasprintf("%s" SEP "%s" SEP, json_string_value(json_object_get(run, "dag")) ?: "",
                             run_id);
    json_t *arr = json_array();
    store_scan(t, STORE_ARTIFACTS, prefix, artifact_collect_cb, arr);
    store_txn_abort(t);
    free(prefix);
    json_decref(run);
    http_respond_json(c, 200, json_pack("{s:o}", "artifacts", arr));
}

/* ---------- backfills, clear, retry, cancel ---------- */

/* Parse an optional JSON object body; answers 400 and returns false if it
 * is not one. *body is NULL for an empty body. */
static bool
body_object(struct http_conn *c, const struct http_req *req, json_t **body)
{
    json_error_t jerr;
    *body = NULL;
    if (!req->body_len)
        return true;
    *body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!*body || !json_is_object(*body)) {
        json_decref(*body);
        *body = NULL;
        http_respond_error(c, 400, "bad_request", "body must be a JSON object: %s", jerr.text);
        return false;
    }
    return true;
}

/* Answer with json once the change is durable. */
static void
respond_after_commit(struct sched *s, struct http_conn *c, int status, json_t *json)
{
    struct trigger_wait *tw = xcalloc(1, sizeof(*tw));
    tw->c = c;
    tw->status = status;
    tw->run = json;
    sched_after_commit(s, trigger_committed, tw);
}

static void
respond_code(struct http_conn *c, int rc, const char *err)
{
    int st = rc == CAIRN_ENOENT ? 404 : rc == CAIRN_ESTATE || rc == CAIRN_EEXIST ? 409 : 400;
    http_respond_error(c, st, st == 404 ? "not_found" : st == 409 ? "conflict" : "bad_request",
                       "%s", err);
}

static void
post_backfill(struct sched *s, struct http_conn *c, const struct http_req *req, const char *dag)
{
    json_t *body;
    if (!body_object(c, req, &body))
        return;
    struct bf_request br = {0};
    br.dag = dag;
    br.from = json_string_value(json_object_get(body, "from"));
    br.to = json_string_value(json_object_get(body, "to"));
    const char *rp = json_string_value(json_object_get(body, "reprocess"));
    json_t *mar = json_object_get(body, "max_active_runs");
    br.params = json_object_get(body, "params");
    br.dry_run = json_is_true(json_object_get(body, "dry_run"));
    int rpi = rp ? bf_reprocess_parse(rp) : BF_REPROCESS_NONE;
    if (!br.from || !br.to) {
        http_respond_error(c, 400, "bad_request", "'from' and 'to' are required (dates such as "
                           "2026-01-01, or ISO 8601 times)");
    } else if (rpi < 0) {
        http_respond_error(c, 400, "bad_request",
                           "'reprocess' must be none, failed or all, not '%s'", rp);
    } else if (mar && !json_is_null(mar) &&
               (!json_is_integer(mar) || json_integer_value(mar) < 1 ||
                json_integer_value(mar) > 10000)) {
        http_respond_error(c, 400, "bad_request",
                           "'max_active_runs' must be an integer from 1 to 10000");
    } else if (br.params && !json_is_object(br.params)) {
        http_respond_error(c, 400, "bad_request", "'params' must be an object");
    } else {
        br.reprocess = (enum bf_reprocess)rpi;
        br.max_active_runs = json_is_integer(mar) ? (int)json_integer_value(mar) : 0;
        char err[512];
        json_t *out = NULL;
        int rc = bf_create(sched_backfills(s), &br, &out, err, sizeof(err));
        if (rc)
            respond_code(c, rc, err);
        else if (br.dry_run)
            http_respond_json(c, 200, out);
        else
            respond_after_commit(s, c, 201, out);
    }
    json_decref(body);
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
post_run_action(struct sched *s, struct http_conn *c, const struct http_req *req,
                const char *run_id, const char *action)
{
    json_t *body;
    if (!body_object(c, req, &body))
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
        respond_code(c, rc, err);
    else
        respond_after_commit(s, c, 200, sched_run_json(r, true));
    free(dag);
    json_decref(body);
}

static void
backfill_routes(struct sched *s, struct http_conn *c, const struct http_req *req, char **seg,
                size_t n, bool get, bool post)
{
    char err[256];
    json_t *out = NULL;
    if (n == 3 && get) {
        char *dag = api_query(req, "dag");
        http_respond_json(c, 200,
                          json_pack("{s:o}", "backfills", bf_list(sched_backfills(s), dag)));
        free(dag);
    } else if (n == 4 && get) {
        out = bf_get(sched_backfills(s), seg[3]);
        if (out)
            http_respond_json(c, 200, out);
        else
            http_respond_error(c, 404, "not_found", "no backfill '%s'", seg[3]);
    } else if (n == 5 && !strcmp(seg[4], "cancel") && post) {
        int rc = bf_cancel(sched_backfills(s), seg[3], &out, err, sizeof(err));
        if (rc)
            respond_code(c, rc, err);
        else
            respond_after_commit(s, c, 200, out);
    } else {
        http_respond_error(c, 404, "not_found", "no such endpoint: %s %s", req->method,
                           req->path);
    }
}

static void
get_workers(struct sched *s, struct http_conn *c)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < sched_nworkers(s); i++) {
        struct sched_worker *w = sched_worker_at(s, i);
        json_t *labels = json_object(), *running = json_array();
        for (size_t j = 0; j < w->nlabels; j++)
            json_object_set_new(labels, w->labels[j].key, json_string(w->labels[j].value));
        sched_worker_running(s, w, running);
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:i, s:i, s:o, s:s, s:o, s:o, s:o}", "name", w->name,
                           "host", w->host ? w->host : "", "slots", w->slots, "busy", w->busy,
                           "labels", labels, "state", w->alive ? "alive" : "lost", "last_seen",
                           sched_json_time(w->last_seen_wall), "connected_at",
                           sched_json_time(w->connected_at), "running", running));
    }
    http_respond_json(c, 200, json_pack("{s:o}", "workers", arr));
}

void
api_handle(void *ud, struct http_conn *c, const struct http_req *req)
{
    struct sched *s = ud;
    char *path = xstrdup(req->path);
    char *seg[10];
    size_t n = split_path(path, seg, 10);
    bool get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
    bool post = !strcmp(req->method, "POST");

    if (n == 0 && get) {
        size_t len;
        const char *html = ui_index_html(&len);
        http_respond(c, 200, "text/html; charset=utf-8", html, len);
    } else if (n < 2 || strcmp(seg[0], "api") || strcmp(seg[1], "v1")) {
        http_respond_error(c, 404, "not_found", "no such endpoint: %s", req->path);
    } else if (n == 3 && !strcmp(seg[2], "health") && get) {
        http_respond_json(c, 200, json_pack("{s:s, s:s}", "status", "ok", "version", "0.1.0"));
    } else if (n == 3 && !strcmp(seg[2], "dags") && get) {
        get_dags(s, c);
    } else if (n == 4 && !strcmp(seg[2], "dags") && get) {
        struct sched_dag *sd = sched_find_dag(s, seg[3]);
        if (sd)
            http_respond_json(c, 200, dag_json(sd, true));
        else
            http_respond_error(c, 404, "not_found", "no DAG '%s'", seg[3]);
    } else if (n == 5 && !strcmp(seg[2], "dags") &&
               (!strcmp(seg[4], "pause") || !strcmp(seg[4], "unpause")) && post) {
        if (sched_set_paused(s, seg[3], !strcmp(seg[4], "pause")) != 0) {
            http_respond_error(c, 404, "not_found", "no DAG '%s'", seg[3]);
        } else {
            struct trigger_wait *tw = xcalloc(1, sizeof(*tw));
            tw->c = c;
            tw->status = 200;
            tw->run = dag_json(sched_find_dag(s, seg[3]), false);
            sched_after_commit(s, trigger_committed, tw);
        }
    } else if (n == 5 && !strcmp(seg[2], "dags") && !strcmp(seg[4], "next-runs") && get) {
        char *ns = api_query(req, "n");
        int cnt = ns ? (int)strtol(ns, NULL, 10) : 5;
        free(ns);
        if (cnt <= 0 || cnt > 1000)
            cnt = 5;
        if (!sched_find_dag(s, seg[3]))
            http_respond_error(c, 404, "not_found", "no DAG '%s'", seg[3]);
        else
            http_respond_json(c, 200, json_pack("{s:s, s:o}", "dag", seg[3], "next_runs",
                                                sched_next_runs(s, seg[3], cnt)));
    } else if (n == 5 && !strcmp(seg[2], "dags") && !strcmp(seg[4], "metrics") && get) {
        api_ml_metrics(s, c, req, seg[3]);
    } else if (n == 5 && !strcmp(seg[2], "dags") && !strcmp(seg[4], "trigger") && post) {
        post_trigger(s, c, req, seg[3]);
    } else if (n == 3 && !strcmp(seg[2], "runs") && get) {
        get_runs(s, c, req);
    } else if (n == 4 && !strcmp(seg[2], "runs") && get) {
        get_run(s, c, req, seg[3]);
    } else if (n == 7 && !strcmp(seg[2], "runs") && !strcmp(seg[4], "tasks") &&
               !strcmp(seg[6], "attempts") && get) {
        get_attempts(s, c, req, seg[3], seg[5]);
    } else if (n == 7 && !strcmp(seg[2], "runs") && !strcmp(seg[4], "tasks") &&
               !strcmp(seg[6], "logs") && get) {
        get_logs(s, c, req, seg[3], seg[5]);
    } else if (n == 5 && !strcmp(seg[2], "runs") && !strcmp(seg[4], "artifacts") && get) {
        get_artifacts(s, c, req, seg[3]);
    } else if (n == 5 && !strcmp(seg[2], "dags") && !strcmp(seg[4], "backfill") && post) {
        post_backfill(s, c, req, seg[3]);
    } else if (n >= 3 && !strcmp(seg[2], "backfills")) {
        backfill_routes(s, c, req, seg, n, get, post);
    } else if (n == 5 && !strcmp(seg[2], "runs") &&
               (!strcmp(seg[4], "clear") || !strcmp(seg[4], "retry") ||
                !strcmp(seg[4], "cancel")) &&
               post) {
        post_run_action(s, c, req, seg[3], seg[4]);
    } else if (n == 7 && !strcmp(seg[2], "runs") && !strcmp(seg[4], "artifacts") && get) {
        api_ml_artifact(s, c, req, seg[3], seg[5], seg[6]);
    } else if (n == 8 && !strcmp(seg[2], "runs") && !strcmp(seg[4], "artifacts") &&
               !strcmp(seg[7], "content") && get) {
        api_ml_artifact_content(s, c, req, seg[3], seg[5], seg[6]);
    } else if (n == 8 && !strcmp(seg[2], "runs") && !strcmp(seg[4], "artifacts") &&
               !strcmp(seg[7], "lineage") && get) {
        api_ml_lineage_artifact(s, c, req, seg[3], seg[5], seg[6]);
    } else if (n == 4 && !strcmp(seg[2], "artifacts") && !strcmp(seg[3], "gc") && post) {
        api_ml_gc(s, c, req);
    } else if (n == 4 && !strcmp(seg[2], "lineage") && get) {
        api_ml_lineage_sha(s, c, seg[3]);
    } else if (n == 3 && !strcmp(seg[2], "workers") && get) {
        get_workers(s, c);
    } else {
        http_respond_error(c, 404, "not_found", "no such endpoint: %s %s", req->method,
                           req->path);
    }
    free(path);
}
