/* api_dags.c - the API's DAG routes (see api_dags.h, docs/api.md): the
 * loaded DAGs, pausing, upcoming scheduled runs, manual triggers.
 *
 * Reads the DAGs the engine has loaded (sched_dag_at, sched_find_dag) and
 * changes them only through the engine (sched_set_paused, sched_trigger);
 * a change is answered once it is durable (api_respond_after_commit), a
 * new run as api_present.h shows runs.
 */
#include "api_dags.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_present.h"
#include "api_read.h"
#include "cal.h"
#include "engine.h"
#include "err.h"
#include "schema.h"
#include "store.h"
#include "util.h"

/* `trigger:` as [{all, events: [{kind, ...}]}] (docs/api.md). */
static json_t *
triggers_json(const struct dag *d)
{
    json_t *arr = json_array();
    for (size_t i = 0; d && i < d->nconds; i++) {
        json_t *evs = json_array();
        for (size_t j = 0; j < d->conds[i].nevents; j++) {
            const struct dag_event *ev = &d->conds[i].events[j];
            json_t *e = json_pack("{s:s}", "kind", dag_event_kind_name(ev->kind));
            if (ev->kind == DAG_EVENT_PUBLISH)
                json_object_set_new(e, "source", json_sprintf("%s/%s", ev->dag, ev->task));
            else if (ev->kind == DAG_EVENT_FILE)
                json_object_update_new(e, json_pack("{s:s, s:s, s:I}", "path", ev->path,
                                                    "pattern", ev->pattern, "settle_ms",
                                                    (json_int_t)ev->settle_ms));
            json_array_append_new(evs, e);
        }
        json_array_append_new(arr, json_pack("{s:b, s:o}", "all", d->conds[i].all, "events", evs));
    }
    return arr;
}

/* [{"name", "default", "type"}] of d's params, in file order. */
static json_t *
params_json(const struct dag *d)
{
    json_t *params = json_array();
    for (size_t i = 0; i < d->nparams; i++) {
        const struct dag_param *dp = &d->params[i];
        const char *type = dp->is_number ? "number"
                           : dp->is_bool ? "bool"
                           : dp->is_list ? "list"
                                         : "string";
        json_array_append_new(params, json_pack("{s:s, s:s, s:s}", "name", dp->name, "default",
                                                dp->value ? dp->value : "", "type", type));
    }
    return params;
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
    json_t *o = json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s, s:b, s:i, s:o, s:o}", "dag", sd->name,
                          "file", sd->file, "version", d ? d->version : NULL, "description",
                          d ? d->description : NULL, "schedule", d ? d->schedule : NULL, "timezone",
                          d ? d->timezone : "UTC", "paused", sd->paused, "tasks",
                          d ? (int)d->ntasks : 0, "tags", tags, "errors", errs);
    json_object_set_new(o, "active_runs", json_integer(sd->active_runs));
    json_object_set_new(o, "triggers", triggers_json(d));
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
            json_t *row =
                json_pack("{s:s, s:o, s:s, s:i, s:s, s:I, s:b, s:o}", "task", t->name, "needs",
                          needs, "trigger_rule", dag_trigger_name(t->trigger_rule), "retries",
                          t->retries, "image", t->image, "timeout_ms", (json_int_t)t->timeout_ms,
                          "cache", t->cache, "publish", publish);
            json_object_set_new(row, "mapped", json_boolean(t->map.kind != DAG_MAP_NONE));
            json_array_append_new(tl, row);
        }
        json_object_set_new(o, "task_list", tl);
        json_object_set_new(o, "params", params_json(d));
    }
    return o;
}

void
api_dags_list(struct sched *s, struct http_conn *c, const struct http_req *req,
              const struct route_params *p)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < sched_ndags(s); i++)
        json_array_append_new(arr, dag_json(sched_dag_at(s, i), false));
    http_respond_json(c, 200, json_pack("{s:o}", "dags", arr));
}

void
api_dags_get(struct sched *s, struct http_conn *c, const struct http_req *req,
             const struct route_params *p)
{
    const char *dag = route_param(p, "dag");
    struct sched_dag *sd = sched_find_dag(s, dag);
    if (sd)
        http_respond_json(c, 200, dag_json(sd, true));
    else
        http_respond_error(c, 404, "not_found", "no DAG '%s'", dag);
}

/* GET /api/v1/dags/{dag}/versions/{version}: the YAML source of a version
 * as the scheduler stored it when it loaded the file, and its params. */
void
api_dags_version(struct sched *s, struct http_conn *c, const struct http_req *req,
                 const struct route_params *p)
{
    const char *dag = route_param(p, "dag"), *version = route_param(p, "version");
    struct store_txn *t = NULL;
    (void)req;
    if (store_txn_begin(sched_store(s), false, &t) != 0) {
        http_respond_error(c, 503, "unavailable", "cannot read the state store");
        return;
    }
    char *key = schema_key_dag_source(dag, version);
    const void *data;
    size_t len;
    int rc = store_get_raw(t, STORE_DAG_SOURCES, key, &data, &len);
    free(key);
    json_t *src = rc == 0 ? json_stringn(data, len) : NULL;
    store_txn_abort(t);
    if (rc != 0) {
        http_respond_error(c, 404, "not_found", "no stored version '%s' of DAG '%s'", version,
                           dag);
        return;
    }
    if (!src) {
        http_respond_error(c, 500, "internal", "the source of version '%s' of DAG '%s' is not UTF-8",
                           version, dag);
        return;
    }
    struct sched_dag *sd = sched_find_dag(s, dag);
    const struct dag *d = sched_dag_version(s, dag, version);
    json_t *o = json_pack("{s:s, s:s, s:b, s:o}", "dag", dag, "version", version, "current",
                          sd && sd->cur && !strcmp(sd->cur->dag->version, version), "source", src);
    if (d)
        json_object_set_new(o, "params", params_json(d));
    http_respond_json(c, 200, o);
}

static void
set_paused(struct sched *s, struct http_conn *c, const char *dag, bool paused)
{
    if (sched_set_paused(s, dag, paused) != 0)
        http_respond_error(c, 404, "not_found", "no DAG '%s'", dag);
    else
        api_respond_after_commit(s, c, 200, dag_json(sched_find_dag(s, dag), false));
}

void
api_dags_pause(struct sched *s, struct http_conn *c, const struct http_req *req,
               const struct route_params *p)
{
    set_paused(s, c, route_param(p, "dag"), true);
}

void
api_dags_unpause(struct sched *s, struct http_conn *c, const struct http_req *req,
                 const struct route_params *p)
{
    set_paused(s, c, route_param(p, "dag"), false);
}

void
api_dags_next_runs(struct sched *s, struct http_conn *c, const struct http_req *req,
                   const struct route_params *p)
{
    const char *dag = route_param(p, "dag");
    char *ns = api_query(req, "n");
    int cnt = ns ? (int)strtol(ns, NULL, 10) : 5;
    free(ns);
    if (cnt <= 0 || cnt > 1000)
        cnt = 5;
    if (!sched_find_dag(s, dag))
        http_respond_error(c, 404, "not_found", "no DAG '%s'", dag);
    else
        http_respond_json(
            c, 200, json_pack("{s:s, s:o}", "dag", dag, "next_runs", sched_next_runs(s, dag, cnt)));
}

static bool
api_dags__idem_ok(const char *k)
{
    size_t n = strlen(k);
    if (n < 1 || n > 200)
        return false;
    for (size_t i = 0; i < n; i++)
        if (k[i] <= ' ' || k[i] > '~')
            return false;
    return true;
}

/* The run an earlier trigger with the same key made: 200 and its JSON. */
static void
api_dags__respond_existing(struct sched *s, struct http_conn *c, const char *dag,
                           const char *run_id)
{
    char err[512];
    struct sched_run *r = sched_find_run(s, dag, run_id);
    if (r) {
        json_t *o = api_present_run_model(r, false, 0, err, sizeof(err));
        if (o)
            api_respond_after_commit(s, c, 200, o); /* it may not be stored yet */
        else
            api_respond_status(c, 500, err);
        return;
    }
    struct store_txn *t = NULL;
    if (store_txn_begin(sched_store(s), false, &t) != 0) {
        http_respond_error(c, 503, "unavailable", "cannot read the state store");
        return;
    }
    struct schema_run run;
    json_t *rec = NULL;
    int st = api_read_run(s, t, dag, run_id, &run, &rec, err, sizeof(err));
    store_txn_abort(t);
    if (st) {
        api_respond_status(c, st, err);
        return;
    }
    json_t *o = api_present_run(&run, sched_dag_version(s, run.dag, run.dag_version));
    json_decref(rec);
    http_respond_json(c, 200, o);
}

void
api_dags_trigger(struct sched *s, struct http_conn *c, const struct http_req *req,
                 const struct route_params *p)
{
    const char *dag = route_param(p, "dag");
    json_t *body = NULL;
    json_error_t jerr;
    if (req->body_len) {
        body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (!body || !json_is_object(body)) {
            json_decref(body);
            http_respond_error(c, 400, "bad_request", "body must be a JSON object: %s", jerr.text);
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
    char err[512];
    struct sched_run *r = NULL;
    /* Idempotency-Key: a retried trigger answers with the run the first made */
    const char *idem = http_req_header(req, "Idempotency-Key");
    if (idem && !api_dags__idem_ok(idem)) {
        json_decref(body);
        http_respond_error(c, 400, "bad_request", "Idempotency-Key must be 1 to 200 printable "
                           "characters without spaces");
        return;
    }
    char *idag = NULL, *irun = NULL;
    if (idem && sched_idem_get(s, idem, &idag, &irun) == 0) {
        json_decref(body);
        if (strcmp(idag, dag))
            http_respond_error(c, 409, "conflict",
                               "Idempotency-Key '%s' was used to trigger DAG '%s' (run '%s'), "
                               "not '%s'", idem, idag, irun, dag);
        else
            api_dags__respond_existing(s, c, idag, irun);
        free(idag);
        free(irun);
        return;
    }
    int rc = sched_trigger(s, dag, ld, has_date, params, json_is_true(nc), &r, err, sizeof(err));
    json_decref(body);
    if (!rc && idem)
        sched_idem_put(s, idem, r);
    if (rc) {
        int st = rc == CAIRN_EEXIST   ? 409
                 : rc == CAIRN_ENOENT ? 404
                 : rc == CAIRN_ESTATE ? 503
                                      : 400;
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
    json_t *o = api_present_run_model(r, false, 0, err, sizeof(err));
    if (o)
        api_respond_after_commit(s, c, 201, o);
    else
        api_respond_status(c, 500, err);
}
