/* api_compare.c - two runs side by side (api_compare.h, docs/api.md
 * "Comparing runs").
 *
 * Both runs are loaded as GET /api/v1/runs/{run}?tasks=all shows them
 * (api_runs_load: from memory while they run, else from the store), and
 * the comparison is built from those two objects alone: every entry holds
 * A's value, B's value and whether they differ, so a client never has to
 * line the two up itself.
 */
#include "api_compare.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_runs.h"
#include "schema.h"
#include "util.h"

static const char *
jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* ended_at - started_at in ms, or -1 when either is missing. */
static json_int_t
duration_ms(const json_t *o)
{
    int64_t st = schema_time_parse(json_object_get(o, "started_at")),
            en = schema_time_parse(json_object_get(o, "ended_at"));
    return st && en && en >= st ? (json_int_t)(en - st) : -1;
}

static json_t *
ms_json(json_int_t ms)
{
    return ms >= 0 ? json_integer(ms) : json_null();
}

/* {"name", "a", "b", "differs"} for every key of either object, A's keys
 * first, in their order. */
static json_t *
pair_keys(const json_t *a, const json_t *b, const char *keyname, size_t *ndiff)
{
    json_t *out = json_array();
    const char *k;
    json_t *v;
    const json_t *sides[2] = {a, b};
    for (int side = 0; side < 2; side++) {
        json_object_foreach((json_t *)sides[side], k, v)
        {
            if (side == 1 && json_object_get(a, k))
                continue; /* listed with A's */
            json_t *va = json_object_get(a, k), *vb = json_object_get(b, k);
            bool differs = !(va && vb && json_equal(va, vb));
            if (differs && ndiff)
                (*ndiff)++;
            json_array_append_new(out, json_pack("{s:s, s:O?, s:O?, s:b}", keyname, k, "a", va, "b",
                                                 vb, "differs", differs));
        }
    }
    return out;
}

/* name -> sha256 of a task's outputs. */
static json_t *
outputs_by_name(const json_t *task)
{
    json_t *o = json_object();
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(task, "outputs"), i, x)
    {
        const char *n = jstr(x, "name"), *sha = jstr(x, "sha256");
        if (n && sha)
            json_object_set_new(o, n, json_string(sha));
    }
    return o;
}

static json_t *
task_side(const json_t *t)
{
    if (!t)
        return json_null();
    return json_pack("{s:O?, s:O?, s:o, s:O?, s:O?, s:O?}", "state", json_object_get(t, "state"),
                     "attempts", json_object_get(t, "attempts"), "duration_ms",
                     ms_json(duration_ms(t)), "image_digest", json_object_get(t, "image_digest"),
                     "cached", json_object_get(t, "cached"), "error", json_object_get(t, "error"));
}

static const json_t *
find_task(const json_t *run, const char *name)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(run, "tasks"), i, t)
    {
        if (!strcmp(jstr(t, "task") ?: "", name))
            return t;
    }
    return NULL;
}

/* The comparison of task `name` (in A as ta, in B as tb; either may be
 * NULL); appends "TASK/NAME" of outputs whose digests differ to diff. */
static json_t *
compare_task(const char *name, const json_t *ta, const json_t *tb, json_t *diff)
{
    json_t *o = json_pack("{s:s, s:o, s:o}", "task", name, "a", task_side(ta), "b", task_side(tb));
    json_int_t da = ta ? duration_ms(ta) : -1, db = tb ? duration_ms(tb) : -1;
    json_object_set_new(o, "duration_delta_ms",
                        da >= 0 && db >= 0 ? json_integer(db - da) : json_null());
    json_object_set_new(
        o, "state_differs",
        json_boolean(!ta || !tb || strcmp(jstr(ta, "state") ?: "", jstr(tb, "state") ?: "")));
    json_t *ida = ta ? json_object_get(ta, "image_digest") : NULL,
           *idb = tb ? json_object_get(tb, "image_digest") : NULL;
    json_object_set_new(
        o, "image_digest_differs",
        json_boolean(!((!ida || json_is_null(ida)) && (!idb || json_is_null(idb))) &&
                     !(ida && idb && json_equal(ida, idb))));
    /* metrics, with B - A where both are numbers */
    json_t *mets = pair_keys(ta ? json_object_get(ta, "metrics") : NULL,
                             tb ? json_object_get(tb, "metrics") : NULL, "name", NULL);
    size_t i;
    json_t *m;
    json_array_foreach(mets, i, m)
    {
        json_t *va = json_object_get(m, "a"), *vb = json_object_get(m, "b");
        json_object_set_new(m, "delta",
                            json_is_number(va) && json_is_number(vb)
                                ? json_real(json_number_value(vb) - json_number_value(va))
                                : json_null());
    }
    json_object_set_new(o, "metrics", mets);
    json_t *oa = ta ? outputs_by_name(ta) : json_object(),
           *ob = tb ? outputs_by_name(tb) : json_object();
    json_t *outs = pair_keys(oa, ob, "name", NULL);
    json_array_foreach(outs, i, m)
    {
        if (json_is_true(json_object_get(m, "differs")))
            json_array_append_new(diff, json_sprintf("%s/%s", name, jstr(m, "name")));
    }
    json_object_set_new(o, "outputs", outs);
    json_decref(oa);
    json_decref(ob);
    return o;
}

static json_t *
run_side(const json_t *r)
{
    json_t *o = json_object();
    static const char *const keys[] = {"dag",          "run_id",      "state",      "run_type",
                                       "logical_date", "dag_version", "started_at", "ended_at"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = json_object_get(r, keys[i]);
        json_object_set(o, keys[i], v ? v : json_null());
    }
    json_object_set_new(o, "duration_ms", ms_json(duration_ms(r)));
    return o;
}

json_t *
api_compare_build(const json_t *a, const json_t *b)
{
    json_t *o = json_pack("{s:o, s:o}", "a", run_side(a), "b", run_side(b));
    const json_t *va = json_object_get(a, "dag_version"), *vb = json_object_get(b, "dag_version");
    json_object_set_new(o, "dag_version_differs", json_boolean(!(va && vb && json_equal(va, vb))));
    size_t nparams = 0;
    const json_t *pa = json_object_get(a, "params_effective"),
                 *pb = json_object_get(b, "params_effective");
    if (!pa)
        pa = json_object_get(a, "params");
    if (!pb)
        pb = json_object_get(b, "params");
    json_object_set_new(o, "params", pair_keys(pa, pb, "name", &nparams));
    json_object_set_new(
        o, "images",
        pair_keys(json_object_get(a, "images"), json_object_get(b, "images"), "image", NULL));
    json_t *tasks = json_array(), *diff = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(a, "tasks"), i, t)
    {
        const char *name = jstr(t, "task");
        if (name)
            json_array_append_new(tasks, compare_task(name, t, find_task(b, name), diff));
    }
    json_array_foreach(json_object_get(b, "tasks"), i, t)
    {
        const char *name = jstr(t, "task");
        if (name && !find_task(a, name))
            json_array_append_new(tasks, compare_task(name, NULL, t, diff));
    }
    json_object_set_new(o, "tasks", tasks);
    json_object_set_new(o, "outputs_differ", diff);
    json_object_set_new(o, "params_differ", json_integer((json_int_t)nparams));
    return o;
}

void
api_compare_runs(struct sched *s, struct http_conn *c, const struct http_req *req,
                 const struct route_params *p)
{
    const char *run_a = route_param(p, "run");
    char *run_b = api_query(req, "with"), *dag = api_query(req, "dag"),
         *dag_b = api_query(req, "with_dag"), err[512];
    int st = 0;
    json_t *a = NULL, *b = NULL;
    if (!run_b || !*run_b) {
        http_respond_error(c, 400, "bad_request",
                           "say which run to compare %s with: ?with=RUN_B (and ?dag=D)", run_a);
        goto out;
    }
    a = api_runs_load(s, dag, run_a, &st, err, sizeof(err));
    if (!a) {
        api_respond_status(c, st, err);
        goto out;
    }
    b = api_runs_load(s, dag_b ? dag_b : dag ? dag : jstr(a, "dag"), run_b, &st, err, sizeof(err));
    if (!b) {
        api_respond_status(c, st, err);
        goto out;
    }
    http_respond_json(c, 200, api_compare_build(a, b));
out:
    json_decref(a);
    json_decref(b);
    free(run_b);
    free(dag);
    free(dag_b);
}
