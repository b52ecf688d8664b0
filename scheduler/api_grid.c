/* api_grid.c - GET /api/v1/dags/{dag}/grid (see api_grid.h).
 *
 * Read from the state store in one read transaction: the DAG's runs, the
 * last `limit` by logical date, and the task instances of each; a run the
 * scheduler holds in memory (one that has not ended, or changed lately) is
 * answered from memory, as GET /runs/{run} answers it. A mapped
 * task is its group row (its instances are left out); a task the current
 * version of the DAG no longer has still gets its row, after the others.
 */
#include "api_grid.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "api_read.h"
#include "dag.h"
#include "engine.h"
#include "model.h"
#include "schema.h"
#include "store.h"
#include "util.h"

#define GRID_LIMIT_DEFAULT 100
#define GRID_LIMIT_MAX 1000

struct grid {
    json_t *tasks;  /* [name] */
    json_t *index;  /* name -> position in tasks */
    json_t *states; /* the current run's [state], "" where it has none */
};

static size_t
grid_task(struct grid *g, const char *name)
{
    json_t *at = json_object_get(g->index, name);
    if (at)
        return (size_t)json_integer_value(at);
    size_t i = json_array_size(g->tasks);
    json_array_append_new(g->tasks, json_string(name));
    json_object_set_new(g->index, name, json_integer((json_int_t)i));
    return i;
}

static int
grid_ti_cb(void *ud, const char *key, const struct schema_ti *ti, json_t *rec)
{
    struct grid *g = ud;
    (void)key;
    (void)rec;
    if (ti->is_instance)
        return 0;
    size_t i = grid_task(g, ti->task);
    while (json_array_size(g->states) <= i)
        json_array_append_new(g->states, json_string(""));
    json_array_set_new(g->states, i, json_string(ti->state));
    return 0;
}

/* The states of a run held in memory into g->states; its state's name. */
static const char *
grid_run_model(struct grid *g, const struct sched_run *mr)
{
    for (size_t i = 0; i < mr->ntis; i++) {
        const struct sched_ti *ti = &mr->tis[i];
        if (ti->parent)
            continue;
        size_t k = grid_task(g, mr->dv->dag->tasks[ti->idx].name);
        while (json_array_size(g->states) <= k)
            json_array_append_new(g->states, json_string(""));
        json_array_set_new(g->states, k, json_string(sched_ti_state_name(ti->state)));
    }
    return sched_run_state_name(mr->state);
}

/* Newest logical date first; runs of one date, newest created first. */
static int
grid_logical_desc(const void *a, const void *b)
{
    const struct schema_run *x = &((const struct api_read_run_item *)a)->r,
                            *y = &((const struct api_read_run_item *)b)->r;
    if (x->logical_date != y->logical_date)
        return x->logical_date < y->logical_date ? 1 : -1;
    return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

void
api_grid_get(struct sched *s, struct http_conn *c, const struct http_req *req,
             const struct route_params *p)
{
    const char *dag = route_param(p, "dag");
    char *lims = api_query(req, "limit");
    long limit = GRID_LIMIT_DEFAULT;
    if (lims) {
        char *end;
        limit = strtol(lims, &end, 10);
        if (!*lims || *end || limit <= 0) {
            http_respond_error(c, 400, "bad_request", "'limit' must be a positive number, not '%s'",
                               lims);
            free(lims);
            return;
        }
        if (limit > GRID_LIMIT_MAX)
            limit = GRID_LIMIT_MAX;
    }
    free(lims);
    struct store_txn *t = NULL;
    if (store_txn_begin(sched_store(s), false, &t) != 0) {
        http_respond_error(c, 503, "unavailable", "cannot read the state store");
        return;
    }
    struct api_read_run_list runs = {0};
    size_t skipped = 0;
    api_read_run_list(t, dag, &runs, &skipped);
    struct sched_dag *sd = sched_find_dag(s, dag);
    if (!sd && runs.n == 0 && skipped == 0) {
        store_txn_abort(t);
        http_respond_error(c, 404, "not_found", "no DAG '%s'", dag);
        return;
    }
    struct grid g = {json_array(), json_object(), NULL};
    if (sd && sd->cur)
        for (size_t i = 0; i < sd->cur->dag->ntasks; i++)
            grid_task(&g, sd->cur->dag->tasks[i].name);
    qsort(runs.v, runs.n, sizeof(*runs.v), grid_logical_desc);
    size_t n = runs.n < (size_t)limit ? runs.n : (size_t)limit;
    json_t *rows = json_array();
    for (size_t k = n; k-- > 0;) { /* oldest first */
        const struct schema_run *r = &runs.v[k].r;
        char ld[48];
        schema_date_format(r->logical_date, ld, sizeof(ld));
        g.states = json_array();
        const struct sched_run *mr = sched_find_run(s, dag, r->run_id);
        const char *state = r->state;
        if (mr)
            state = grid_run_model(&g, mr);
        else
            api_read_tasks(t, dag, r->run_id, grid_ti_cb, &g, &skipped);
        json_array_append_new(rows, json_pack("{s:s, s:s, s:s, s:s, s:o}", "run_id", r->run_id,
                                              "logical_date", ld, "state", state, "run_type",
                                              r->run_type ? r->run_type : "", "states", g.states));
    }
    store_txn_abort(t);
    api_read_run_list_free(&runs);
    size_t ntasks = json_array_size(g.tasks);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        json_t *st = json_object_get(row, "states");
        while (json_array_size(st) < ntasks)
            json_array_append_new(st, json_string(""));
    }
    json_decref(g.index);
    json_t *o = json_pack("{s:s, s:o, s:o}", "dag", dag, "tasks", g.tasks, "runs", rows);
    if (skipped)
        json_object_set_new(o, "skipped", json_integer((json_int_t)skipped));
    http_respond_json(c, 200, o);
}
