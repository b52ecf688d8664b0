/* api_runs.c - the API's run routes (see api_runs.h, docs/api.md): runs,
 * their task instances, attempts, logs and artifact lists; clear, retry
 * and cancel.
 *
 * A run the engine holds in memory is answered from there
 * (api_present_run_model); any other is read from LMDB through a short read
 * transaction on the loop thread (api_read.h), each record decoded into its
 * schema struct and presented from that (api_present.h). A record that
 * does not decode makes a lookup answer 500 and is left out of a list,
 * which then says how many it left out ("skipped"). Log bytes are read from
 * the attempt's log file, never past the attempt's durable log_size.
 * Changes go through the engine (sched_clear, sched_cancel) and are
 * answered once durable.
 */
#include "api_runs.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "api_present.h"
#include "api_read.h"
#include "engine.h"
#include "err.h"
#include "hmap.h"
#include "store.h"
#include "util.h"

#define LOG_CHUNK_MAX (1024 * 1024)

/* Decoded records kept past their scan: each struct borrows its rec (a
 * reference held here). */
struct ti_item {
    struct schema_ti t;
    json_t *rec;
};

struct ti_list {
    struct ti_item *v;
    size_t n, cap;
};

struct attempt_item {
    struct schema_attempt a;
    json_t *rec;
};

struct attempt_list {
    struct attempt_item *v;
    size_t n, cap;
};

static int
ti_collect_cb(void *ud, const char *key, const struct schema_ti *t, json_t *rec)
{
    struct ti_list *l = ud;
    (void)key;
    if (t->is_instance)
        return 0; /* an instance of a mapped task: listed by its own endpoint */
    xgrow((void **)&l->v, &l->cap, l->n + 1, sizeof(*l->v));
    l->v[l->n].t = *t;
    l->v[l->n].rec = json_incref(rec);
    l->n++;
    return 0;
}

static int
attempt_collect_cb(void *ud, const char *key, const struct schema_attempt *a, json_t *rec)
{
    struct attempt_list *l = ud;
    (void)key;
    xgrow((void **)&l->v, &l->cap, l->n + 1, sizeof(*l->v));
    l->v[l->n].a = *a;
    l->v[l->n].rec = json_incref(rec);
    l->n++;
    return 0;
}

static void
ti_list_free(struct ti_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        json_decref(l->v[i].rec);
    free(l->v);
}

static void
attempt_list_free(struct attempt_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        json_decref(l->v[i].rec);
    free(l->v);
}

/* Answer with a run the engine holds in memory. */
/* ?tasks=all: a big run's every task instance too (API_RUN_TASKS_INLINE) */
static bool
all_tasks(const struct http_req *req)
{
    char *v = api_query(req, "tasks");
    bool all = v && !strcmp(v, "all");
    free(v);
    return all;
}

/* ?changes_after=CURSOR: the change number of a cursor this process gave
 * out ("EPOCH-SEQ"), else 0 (absent, malformed, or from another start:
 * the whole run is answered) */
static uint64_t
changes_after(struct sched *s, const struct http_req *req)
{
    char *v = api_query(req, "changes_after");
    long long epoch = 0;
    unsigned long long seq = 0;
    char tail;
    int64_t now_epoch;
    uint64_t now_seq;
    sched_change_cursor(s, &now_epoch, &now_seq);
    bool ok = v && sscanf(v, "%lld-%llu%c", &epoch, &seq, &tail) == 2 && epoch == now_epoch &&
              seq <= now_seq;
    free(v);
    return ok ? (uint64_t)seq : 0;
}

/* "waiting": why a queued task instance in memory waits for a worker. */
static void
add_waiting(struct sched *s, const struct sched_ti *ti, json_t *o)
{
    char why[512];
    sched_ti_waiting(s, ti, why, sizeof(why));
    if (why[0] && json_is_object(o))
        json_object_set_new(o, "waiting", json_string(why));
}

/* A run in memory; with a cursor, only its tasks that changed after it
 * ("incremental": true), and always the cursor of now */
static void
respond_run_model(struct sched *s, struct http_conn *c, const struct http_req *req,
                  const struct sched_run *r, bool all)
{
    char err[512], cur[64];
    uint64_t since = changes_after(s, req);
    json_t *o = api_present_run_model(r, all, since, err, sizeof(err));
    if (!o) {
        api_respond_status(c, 500, err);
        return;
    }
    /* the rows are the task instances in order, less those unchanged
     * since the cursor (api_present_run_model's filter) */
    json_t *tasks = json_object_get(o, "tasks");
    size_t k = 0;
    for (size_t i = 0; i < r->ntis && k < json_array_size(tasks); i++)
        if (!since || r->tis[i].change_seq > since)
            add_waiting(s, &r->tis[i], json_array_get(tasks, k++));
    int64_t epoch;
    uint64_t seq;
    sched_change_cursor(s, &epoch, &seq);
    snprintf(cur, sizeof(cur), "%lld-%llu", (long long)epoch, (unsigned long long)seq);
    json_object_set_new(o, "cursor", json_string(cur));
    if (since)
        json_object_set_new(o, "incremental", json_true());
    http_respond_json(c, 200, o);
}

/* Add "skipped": n to an answer when records were left out. */
static void
set_skipped(json_t *o, size_t skipped)
{
    if (skipped)
        json_object_set_new(o, "skipped", json_integer((json_int_t)skipped));
}

static int
seq_desc(const void *a, const void *b)
{
    const struct api_read_run_item *x = a, *y = b;
    return x->r.seq < y->r.seq ? 1 : x->r.seq > y->r.seq ? -1 : 0;
}

/* The newest `keep` runs of a scan that match (dag, state, seq below
 * before): a min-heap on seq, so a page costs memory for its runs, not for
 * every run the scan reads. */
struct runs_top {
    const char *dag, *state;
    int64_t before;
    size_t keep;
    struct api_read_run_list h;
};

static void
runs_top_sift(struct api_read_run_item *v, size_t n, size_t i)
{
    for (;;) {
        size_t m = i, l = 2 * i + 1, r = l + 1;
        if (l < n && v[l].r.seq < v[m].r.seq)
            m = l;
        if (r < n && v[r].r.seq < v[m].r.seq)
            m = r;
        if (m == i)
            return;
        struct api_read_run_item tmp = v[i];
        v[i] = v[m];
        v[m] = tmp;
        i = m;
    }
}

static int
runs_top_cb(void *ud, const char *key, const struct schema_run *r, json_t *rec)
{
    struct runs_top *tp = ud;
    struct api_read_run_list *h = &tp->h;
    (void)key;
    if ((tp->dag && strcmp(r->dag, tp->dag)) || (tp->state && strcmp(r->state, tp->state)) ||
        r->seq >= tp->before)
        return 0;
    if (h->n < tp->keep) { /* push: sift up */
        xgrow((void **)&h->v, &h->cap, h->n + 1, sizeof(*h->v));
        size_t i = h->n++;
        h->v[i] = (struct api_read_run_item){*r, json_incref(rec)};
        while (i > 0 && h->v[(i - 1) / 2].r.seq > h->v[i].r.seq) {
            struct api_read_run_item tmp = h->v[i];
            h->v[i] = h->v[(i - 1) / 2];
            h->v[(i - 1) / 2] = tmp;
            i = (i - 1) / 2;
        }
    } else if (h->n && r->seq > h->v[0].r.seq) { /* replace the oldest kept */
        json_decref(h->v[0].rec);
        h->v[0] = (struct api_read_run_item){*r, json_incref(rec)};
        runs_top_sift(h->v, h->n, 0);
    }
    return 0;
}

/* A page of runs ends after the run of this seq: the cursor is "r" and
 * the seq in decimal (run seqs are unique and only grow, so a run created
 * while a client pages has a higher seq and lands before every page it has
 * not read yet). Clients treat it as opaque. */
static bool
runs_cursor_parse(const char *s, int64_t *seq)
{
    char *end;
    if (s[0] != 'r' || s[1] < '0' || s[1] > '9')
        return false;
    long long v = strtoll(s + 1, &end, 10);
    if (*end || v <= 0)
        return false;
    *seq = (int64_t)v;
    return true;
}

void
api_runs_list(struct sched *s, struct http_conn *c, const struct http_req *req,
              const struct route_params *p)
{
    char *dag = api_query(req, "dag"), *state = api_query(req, "state"),
         *limit_s = api_query(req, "limit"), *cursor_s = api_query(req, "cursor");
    long limit = 100;
    int64_t before = INT64_MAX;
    size_t skipped = 0;
    if (limit_s) {
        char *end;
        limit = strtol(limit_s, &end, 10);
        if (*end || limit <= 0)
            limit = 100;
    }
    if (cursor_s && !runs_cursor_parse(cursor_s, &before)) {
        http_respond_error(c, 400, "bad_request",
                           "cursor '%s' is not one this API gave out (pass next_cursor as it is)",
                           cursor_s);
        goto out;
    }
    if (state && sched_run_state_parse(state) < 0) {
        http_respond_error(c, 400, "bad_request",
                           "unknown run state '%s' (queued, running, success, failed, cancelled)",
                           state);
        goto out;
    }
    struct store_txn *t = NULL;
    if (store_txn_begin(sched_store(s), false, &t) != 0) {
        http_respond_error(c, 503, "unavailable", "cannot read the state store");
        goto out;
    }
    struct runs_top tp = {dag, state, before, (size_t)limit + 1, {0}};
    api_read_runs(t, dag, runs_top_cb, &tp, &skipped);
    store_txn_abort(t);
    struct api_read_run_list *l = &tp.h;
    qsort(l->v, l->n, sizeof(*l->v), seq_desc);
    json_t *arr = json_array(), *next = json_null();
    for (size_t i = 0; i < l->n && (long)i < limit; i++) {
        const struct dag *d = sched_dag_version(s, l->v[i].r.dag, l->v[i].r.dag_version);
        json_array_append_new(arr, api_present_run_listed(&l->v[i].r, d));
    }
    if ((long)l->n > limit) {
        char cur[32];
        snprintf(cur, sizeof(cur), "r%lld", (long long)l->v[limit - 1].r.seq);
        next = json_string(cur);
    }
    api_read_run_list_free(l);
    json_t *o = json_pack("{s:o, s:o}", "runs", arr, "next_cursor", next);
    set_skipped(o, skipped);
    http_respond_json(c, 200, o);
out:
    free(dag);
    free(state);
    free(limit_s);
    free(cursor_s);
}

/* The task instances of a stored run as the API lists them: in the DAG's
 * order when its version d is known and has every one of them, else in
 * stored order. */
static json_t *
tis_json(const struct ti_list *l, const struct dag *d)
{
    size_t *order = NULL, n = 0;
    if (d) {
        struct hmap byname;
        size_t k;
        hmap_init(&byname);
        for (size_t i = 0; i < l->n; i++)
            hmap_put(&byname, l->v[i].t.task, i);
        order = xcalloc(l->n + 1, sizeof(*order));
        for (size_t i = 0; i < d->ntasks; i++)
            if (hmap_get(&byname, d->tasks[i].name, &k))
                order[n++] = k;
        hmap_free(&byname);
        if (n != l->n) { /* the version lacks a task (cannot happen) */
            free(order);
            order = NULL;
        }
    }
    json_t *tasks = json_array();
    for (size_t i = 0; i < l->n; i++) {
        const struct schema_ti *st = &l->v[order ? order[i] : i].t;
        json_t *tj = api_present_ti(st);
        char base[DAG_NAME_MAX + 1];
        snprintf(base, sizeof(base), "%.*s", (int)strcspn(st->task, "["), st->task);
        long ti = d ? dag_task_index(d, base) : -1;
        if (ti >= 0)
            api_present_secret_names(tj, &d->tasks[ti]);
        json_array_append_new(tasks, tj);
    }
    free(order);
    return tasks;
}

/* ---------- the task rows of a run, a page at a time ---------- */

#define TASKS_DEFAULT_LIMIT 1000
#define TASKS_MAX_LIMIT 10000

/* ?limit=N&cursor=I on a run: page its task rows (from row I, in the DAG's
 * order, at most N). Returns 1 to page (*from, *limit set), 0 not to, -1
 * after answering 400. */
static int
task_page_query(struct http_conn *c, const struct http_req *req, size_t *from, size_t *limit)
{
    char *ls = api_query(req, "limit"), *cs = api_query(req, "cursor"), *end;
    int rc = ls || cs ? 1 : 0;
    *from = 0;
    *limit = TASKS_DEFAULT_LIMIT;
    if (ls) {
        long v = strtol(ls, &end, 10);
        if (!*ls || *end || v < 1 || v > TASKS_MAX_LIMIT) {
            http_respond_error(c, 400, "bad_request", "limit must be 1 to %d", TASKS_MAX_LIMIT);
            rc = -1;
        }
        *limit = (size_t)v;
    }
    if (cs && rc > 0) {
        long v = strtol(cs, &end, 10);
        if (!*cs || *end || v < 0) {
            http_respond_error(c, 400, "bad_request",
                               "cursor '%s' is not a task row (pass next_cursor as it is)", cs);
            rc = -1;
        }
        *from = (size_t)v;
    }
    free(ls);
    free(cs);
    return rc;
}

/* Set "tasks" (one page) and "next_cursor" on a run's JSON o. */
static void
set_task_page(json_t *o, json_t *tasks, size_t from, size_t limit, size_t total)
{
    json_object_del(o, "tasks_omitted");
    json_object_set_new(o, "tasks", tasks);
    json_object_set_new(o, "next_cursor",
                        from + limit < total ? json_integer((json_int_t)(from + limit))
                                             : json_null());
}

/* A page of the task rows of a run in memory, as they are now. */
static void
respond_run_model_page(struct sched *s, struct http_conn *c, const struct sched_run *r, size_t from,
                       size_t limit)
{
    char err[512], cur[64];
    json_t *o = api_present_run_model(r, false, 0, err, sizeof(err)), *tasks = json_array();
    if (!o) {
        json_decref(tasks);
        api_respond_status(c, 500, err);
        return;
    }
    for (size_t i = from; i < r->ntis && i < from + limit; i++) {
        json_t *tj = api_present_ti_model(&r->tis[i], err, sizeof(err));
        if (!tj) {
            json_decref(tasks);
            json_decref(o);
            api_respond_status(c, 500, err);
            return;
        }
        api_present_secret_names(tj, &r->dv->dag->tasks[r->tis[i].idx]);
        add_waiting(s, &r->tis[i], tj);
        json_array_append_new(tasks, tj);
    }
    set_task_page(o, tasks, from, limit, r->ntis);
    int64_t epoch;
    uint64_t seq;
    sched_change_cursor(s, &epoch, &seq);
    snprintf(cur, sizeof(cur), "%lld-%llu", (long long)epoch, (unsigned long long)seq);
    json_object_set_new(o, "cursor", json_string(cur));
    http_respond_json(c, 200, o);
}

/* A page of the task rows of a stored run: with its DAG version known, the
 * page's records looked up one by one (a page costs its rows, whatever the
 * run's size); else every row read and the page cut from them. */
static void
respond_stored_page(struct sched *s, struct http_conn *c, struct store_txn *t,
                    const struct schema_run *run, size_t from, size_t limit)
{
    const struct dag *d = sched_dag_version(s, run->dag, run->dag_version);
    json_t *o = api_present_run(run, d), *tasks = json_array();
    size_t skipped = 0, total;
    char err[512];
    if (d) {
        total = d->ntasks;
        for (size_t i = from; i < d->ntasks && i < from + limit; i++) {
            struct schema_ti st;
            json_t *rec = NULL;
            int rc = api_read_ti(t, run->dag, run->run_id, d->tasks[i].name, &st, &rec, err,
                                 sizeof(err));
            if (rc) {
                skipped++; /* 404 cannot happen: a run stores every task of its version */
                continue;
            }
            json_t *tj = api_present_ti(&st);
            api_present_secret_names(tj, &d->tasks[i]);
            json_array_append_new(tasks, tj);
            json_decref(rec);
        }
    } else {
        struct ti_list tl = {0};
        api_read_tasks(t, run->dag, run->run_id, ti_collect_cb, &tl, &skipped);
        total = tl.n;
        for (size_t i = from; i < tl.n && i < from + limit; i++)
            json_array_append_new(tasks, api_present_ti(&tl.v[i].t));
        ti_list_free(&tl);
    }
    set_task_page(o, tasks, from, limit, total);
    set_skipped(o, skipped);
    http_respond_json(c, 200, o);
}

void
api_runs_get(struct sched *s, struct http_conn *c, const struct http_req *req,
             const struct route_params *p)
{
    const char *run_id = route_param(p, "run");
    char *dag = api_query(req, "dag"), err[512];
    struct sched_run *r = dag ? sched_find_run(s, dag, run_id) : NULL;
    bool all = all_tasks(req);
    size_t from, limit;
    int paged = task_page_query(c, req, &from, &limit);
    if (paged < 0) {
        free(dag);
        return;
    }
    if (r) {
        if (paged)
            respond_run_model_page(s, c, r, from, limit);
        else
            respond_run_model(s, c, req, r, all);
        free(dag);
        return;
    }
    struct store_txn *t = NULL;
    if (store_txn_begin(sched_store(s), false, &t) != 0) {
        http_respond_error(c, 503, "unavailable", "cannot read the state store");
        free(dag);
        return;
    }
    struct schema_run run;
    json_t *rec = NULL;
    int st = api_read_run(s, t, dag, run_id, &run, &rec, err, sizeof(err));
    free(dag);
    if (st) {
        store_txn_abort(t);
        api_respond_status(c, st, err);
        return;
    }
    r = sched_find_run(s, run.dag, run_id);
    if (r) {
        store_txn_abort(t);
        json_decref(rec);
        if (paged)
            respond_run_model_page(s, c, r, from, limit);
        else
            respond_run_model(s, c, req, r, all);
        return;
    }
    if (paged) {
        respond_stored_page(s, c, t, &run, from, limit);
        store_txn_abort(t);
        json_decref(rec);
        return;
    }
    if (!all && run.ntasks > API_RUN_TASKS_INLINE) {
        store_txn_abort(t);
        const struct dag *dv = sched_dag_version(s, run.dag, run.dag_version);
        json_t *big = api_present_run(&run, dv);
        json_object_set_new(big, "tasks_omitted", json_true());
        json_decref(rec);
        http_respond_json(c, 200, big);
        return;
    }
    struct ti_list tl = {0};
    size_t skipped = 0;
    api_read_tasks(t, run.dag, run_id, ti_collect_cb, &tl, &skipped);
    store_txn_abort(t);
    const struct dag *d = sched_dag_version(s, run.dag, run.dag_version);
    json_t *o = api_present_run(&run, d);
    json_object_set_new(o, "tasks", tis_json(&tl, d));
    set_skipped(o, skipped);
    ti_list_free(&tl);
    json_decref(rec);
    http_respond_json(c, 200, o);
}

json_t *
api_runs_load(struct sched *s, const char *dag, const char *run_id, int *status, char *err,
              size_t errlen)
{
    struct sched_run *r = dag ? sched_find_run(s, dag, run_id) : NULL;
    struct store_txn *t = NULL;
    struct schema_run run;
    json_t *rec = NULL, *o = NULL;
    if (!r) {
        if (store_txn_begin(sched_store(s), false, &t) != 0) {
            *status = 503;
            snprintf(err, errlen, "cannot read the state store");
            return NULL;
        }
        int st = api_read_run(s, t, dag, run_id, &run, &rec, err, errlen);
        if (st) {
            store_txn_abort(t);
            *status = st;
            return NULL;
        }
        r = sched_find_run(s, run.dag, run_id);
    }
    if (r) {
        if (t)
            store_txn_abort(t);
        json_decref(rec);
        o = api_present_run_model(r, true, 0, err, errlen);
        if (!o)
            *status = 500;
        return o;
    }
    struct ti_list tl = {0};
    size_t skipped = 0;
    api_read_tasks(t, run.dag, run_id, ti_collect_cb, &tl, &skipped);
    store_txn_abort(t);
    const struct dag *d = sched_dag_version(s, run.dag, run.dag_version);
    o = api_present_run(&run, d);
    json_object_set_new(o, "tasks", tis_json(&tl, d));
    set_skipped(o, skipped);
    ti_list_free(&tl);
    json_decref(rec);
    return o;
}

/* Resolve the run's DAG (from ?dag= or by search) and read the attempts of
 * one of its tasks into *l (records that do not decode are counted in
 * *skipped). 0 with *dag_out (malloc'd), or a status with err. */
static int
load_attempts(struct sched *s, const struct http_req *req, const char *run_id, const char *task,
              char **dag_out, struct attempt_list *l, size_t *skipped, char *err, size_t errlen)
{
    char *dag = api_query(req, "dag");
    struct store_txn *t = NULL;
    if (store_txn_begin(sched_store(s), false, &t) != 0) {
        snprintf(err, errlen, "cannot read the state store");
        free(dag);
        return 503;
    }
    struct schema_run run;
    json_t *rec = NULL;
    int st = api_read_run(s, t, dag, run_id, &run, &rec, err, errlen);
    free(dag);
    if (st) {
        store_txn_abort(t);
        return st;
    }
    dag = xstrdup(run.dag);
    json_decref(rec);
    struct schema_ti ti;
    st = api_read_ti(t, dag, run_id, task, &ti, &rec, err, errlen);
    if (st) {
        store_txn_abort(t);
        free(dag);
        return st;
    }
    json_decref(rec);
    api_read_attempts(t, dag, run_id, task, attempt_collect_cb, l, skipped);
    store_txn_abort(t);
    *dag_out = dag;
    return 0;
}

void
api_runs_attempts(struct sched *s, struct http_conn *c, const struct http_req *req,
                  const struct route_params *p)
{
    const char *run_id = route_param(p, "run"), *task = route_param(p, "task");
    char err[512], *dag = NULL;
    struct attempt_list l = {0};
    size_t skipped = 0;
    int st = load_attempts(s, req, run_id, task, &dag, &l, &skipped, err, sizeof(err));
    if (st) {
        api_respond_status(c, st, err);
        return;
    }
    free(dag);
    json_t *arr = json_array();
    for (size_t i = 0; i < l.n; i++)
        json_array_append_new(arr, api_present_attempt(&l.v[i].a));
    attempt_list_free(&l);
    json_t *o = json_pack("{s:o}", "attempts", arr);
    set_skipped(o, skipped);
    http_respond_json(c, 200, o);
}

/* The record of attempt n when the scan of a task's attempts left records
 * out: 0 if it is there after all (cannot happen in one scan), 404 if it
 * does not exist, 500 with err if it is one of those left out. */
static int
attempt_left_out(struct sched *s, const char *dag, const char *run_id, const char *task, long n,
                 char *err, size_t errlen)
{
    struct store_txn *t = NULL;
    if (store_txn_begin(sched_store(s), false, &t) != 0) {
        snprintf(err, errlen, "cannot read the state store");
        return 503;
    }
    struct schema_attempt a;
    json_t *rec = NULL;
    int st = n > 0 && n <= 1000000
                 ? api_read_attempt(t, dag, run_id, task, (int)n, &a, &rec, err, errlen)
                 : 404;
    json_decref(rec);
    store_txn_abort(t);
    return st;
}

void
api_runs_logs(struct sched *s, struct http_conn *c, const struct http_req *req,
              const struct route_params *p)
{
    const char *run_id = route_param(p, "run"), *task = route_param(p, "task");
    char err[512], *dag = NULL;
    struct attempt_list l = {0};
    size_t skipped = 0;
    int st = load_attempts(s, req, run_id, task, &dag, &l, &skipped, err, sizeof(err));
    if (st) {
        api_respond_status(c, st, err);
        return;
    }
    char *as = api_query(req, "attempt"), *os = api_query(req, "offset"),
         *ls = api_query(req, "limit");
    /* the latest: as many as there are attempt records */
    long attempt = (long)(l.n + skipped), offset = 0, limit = LOG_CHUNK_MAX;
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
    const struct schema_attempt *att = NULL;
    for (size_t i = 0; i < l.n; i++)
        if (l.v[i].a.attempt == attempt)
            att = &l.v[i].a;
    if (!att && skipped &&
        (st = attempt_left_out(s, dag, run_id, task, attempt, err, sizeof(err))) != 404) {
        api_respond_status(c, st ? st : 500, st ? err : "the attempt record changed meanwhile");
        attempt_list_free(&l);
        free(dag);
        return;
    }
    if (!att) {
        if (l.n == 0 && skipped == 0)
            http_respond_json(c, 200,
                              json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:s, s:b}", "dag", dag,
                                        "run_id", run_id, "task", task, "attempt", 0, "offset", 0,
                                        "next_offset", 0, "data", "", "complete", 0));
        else
            http_respond_error(c, 404, "not_found", "task '%s' has no attempt %ld", task, attempt);
        attempt_list_free(&l);
        free(dag);
        return;
    }
    const char *st_name = att->state;
    int64_t size = att->log_size;
    bool ended = strcmp(st_name, "leased") != 0 && strcmp(st_name, "running") != 0;
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
    /* final: nothing more will come (followers stop); complete: and nothing
     * is missing (a log with lost bytes is final, never complete) */
    bool final = ended && next >= size;
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:i, s:I, s:I, s:s%, s:b, s:s}", "dag", dag, "run_id", run_id,
                  "task", task, "attempt", (int)attempt, "offset", (json_int_t)offset,
                  "next_offset", (json_int_t)next, "data", data.buf ? data.buf : "", len,
                  "complete", final && att->log_lost == 0, "state", st_name);
    if (!o) /* not UTF-8: send it with replacement characters */
        o = json_pack("{s:s, s:s, s:s, s:i, s:I, s:I, s:s, s:b, s:s}", "dag", dag, "run_id", run_id,
                      "task", task, "attempt", (int)attempt, "offset", (json_int_t)offset,
                      "next_offset", (json_int_t)next, "data", "[binary output not shown]",
                      "complete", final && att->log_lost == 0, "state", st_name);
    if (o) {
        json_object_set_new(o, "final", json_boolean(final));
        json_object_set_new(o, "log_lost", json_integer(att->log_lost));
    }
    sb_free(&data);
    attempt_list_free(&l);
    free(dag);
    http_respond_json(c, 200, o);
}

struct artifact_list {
    json_t *arr;
};

static int
artifact_collect_cb(void *ud, const char *key, const struct schema_artifact *a, json_t *rec)
{
    (void)key;
    (void)rec;
    if (a->superseded)
        return 0; /* an earlier attempt's, kept for lineage */
    json_array_append_new(((struct artifact_list *)ud)->arr, api_present_artifact(a));
    return 0;
}

void
api_runs_artifacts(struct sched *s, struct http_conn *c, const struct http_req *req,
                   const struct route_params *p)
{
    const char *run_id = route_param(p, "run");
    char *dag = api_query(req, "dag"), err[512];
    struct store_txn *t = NULL;
    if (store_txn_begin(sched_store(s), false, &t) != 0) {
        http_respond_error(c, 503, "unavailable", "cannot read the state store");
        free(dag);
        return;
    }
    struct schema_run run;
    json_t *rec = NULL;
    int st = api_read_run(s, t, dag, run_id, &run, &rec, err, sizeof(err));
    free(dag);
    if (st) {
        store_txn_abort(t);
        api_respond_status(c, st, err);
        return;
    }
    struct artifact_list al = {json_array()};
    size_t skipped = 0;
    api_read_artifacts(t, run.dag, run_id, artifact_collect_cb, &al, &skipped);
    store_txn_abort(t);
    json_decref(rec);
    json_t *o = json_pack("{s:o}", "artifacts", al.arr);
    set_skipped(o, skipped);
    http_respond_json(c, 200, o);
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
    char err[512];
    struct schema_run run;
    json_t *rec = NULL;
    int st = api_read_run(s, t, NULL, run_id, &run, &rec, err, sizeof(err));
    store_txn_abort(t);
    if (st) {
        api_respond_status(c, st, err);
        return NULL;
    }
    dag = xstrdup(run.dag);
    json_decref(rec);
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
    json_t *o = NULL;
    if (rc)
        api_respond_code(c, rc, err);
    else if (!(o = api_present_run_model(r, false, 0, err, sizeof(err))))
        api_respond_status(c, 500, err);
    else
        api_respond_after_commit(s, c, 200, o);
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

/* ---------- the instances of a mapped task, a page at a time ---------- */

#define INSTANCES_DEFAULT_LIMIT 100
#define INSTANCES_MAX_LIMIT 10000

struct inst_page {
    const char *state; /* filter, or NULL */
    size_t limit;
    json_t *list;
    long next; /* the index to go on from, or -1 */
    size_t skipped;
};

static int
inst_page_cb(void *ud, const char *key, const struct schema_ti *t, json_t *rec)
{
    struct inst_page *pg = ud;
    (void)key;
    (void)rec;
    if (!t->is_instance)
        return 0;
    if (json_array_size(pg->list) >= pg->limit) {
        pg->next = t->map_index;
        return 1; /* a page is full */
    }
    if (!pg->state || !strcmp(pg->state, t->state))
        json_array_append_new(pg->list, api_present_ti(t));
    return 0;
}

void
api_runs_instances(struct sched *s, struct http_conn *c, const struct http_req *req,
                   const struct route_params *p)
{
    const char *run_id = route_param(p, "run"), *task = route_param(p, "task");
    char *dag = api_query(req, "dag"), *limit_s = api_query(req, "limit");
    char *cursor_s = api_query(req, "cursor"), *state = api_query(req, "state"), err[512];
    struct inst_page pg = {state, INSTANCES_DEFAULT_LIMIT, json_array(), -1, 0};
    long cursor = 0;
    if (limit_s) {
        char *end;
        long v = strtol(limit_s, &end, 10);
        if (*end || v < 1 || v > INSTANCES_MAX_LIMIT) {
            http_respond_error(c, 400, "bad_request", "limit must be 1 to %d", INSTANCES_MAX_LIMIT);
            goto out;
        }
        pg.limit = (size_t)v;
    }
    if (cursor_s) {
        char *end;
        cursor = strtol(cursor_s, &end, 10);
        if (*end || cursor < 0) {
            http_respond_error(c, 400, "bad_request", "cursor must be an instance index");
            goto out;
        }
    }
    struct store_txn *t = NULL;
    if (store_txn_begin(sched_store(s), false, &t) != 0) {
        http_respond_error(c, 503, "unavailable", "cannot read the state store");
        goto out;
    }
    struct schema_run run;
    json_t *rec = NULL;
    int st = api_read_run(s, t, dag, run_id, &run, &rec, err, sizeof(err));
    if (st) {
        store_txn_abort(t);
        api_respond_status(c, st, err);
        goto out;
    }
    json_t *group = NULL;
    struct sched_run *r = sched_find_run(s, run.dag, run_id);
    if (r) { /* in memory: the instances as they are now */
        long idx = dag_task_index(r->dv->dag, task);
        struct sched_ti *g = idx >= 0 ? &r->tis[idx] : NULL;
        if (!g || !g->map) {
            store_txn_abort(t);
            json_decref(rec);
            http_respond_error(c, 404, "not_found", "run '%s' has no mapped task '%s'", run_id,
                               task);
            goto out;
        }
        group = api_present_ti_model(g, err, sizeof(err));
        for (size_t i = (size_t)cursor; i < g->map->created; i++) {
            if (json_array_size(pg.list) >= pg.limit) {
                pg.next = (long)i;
                break;
            }
            const struct sched_ti *in = &g->map->inst[i];
            if (state && strcmp(state, sched_ti_state_name(in->state)) != 0)
                continue;
            json_t *o = api_present_ti_model(in, err, sizeof(err));
            add_waiting(s, in, o);
            if (o)
                json_array_append_new(pg.list, o);
        }
    } else { /* stored: from the instance at the cursor, one page */
        struct schema_ti gt;
        json_t *grec = NULL;
        st = api_read_ti(t, run.dag, run_id, task, &gt, &grec, err, sizeof(err));
        if (st || !gt.map) {
            store_txn_abort(t);
            json_decref(rec);
            json_decref(grec);
            if (!st)
                http_respond_error(c, 404, "not_found", "run '%s' has no mapped task '%s'", run_id,
                                   task);
            else
                api_respond_status(c, st, err);
            goto out;
        }
        group = api_present_ti(&gt);
        json_decref(grec);
        api_read_instances(t, run.dag, run_id, task, cursor, inst_page_cb, &pg, &pg.skipped);
    }
    store_txn_abort(t);
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "dag", run.dag, "run_id", run_id,
                          "task", task, "group", group ? group : json_null(), "instances", pg.list,
                          "next_cursor", pg.next >= 0 ? json_integer(pg.next) : json_null());
    json_decref(rec); /* run.dag pointed into it */
    pg.list = NULL;
    if (pg.skipped)
        json_object_set_new(o, "skipped", json_integer((json_int_t)pg.skipped));
    http_respond_json(c, 200, o);
out:
    json_decref(pg.list);
    free(dag);
    free(limit_s);
    free(cursor_s);
    free(state);
}
