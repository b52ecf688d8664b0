/* runtab.c - the unfinished runs in memory: allocation, lookup by key,
 * params, eviction once finished and stored (runtab.h). */
#include "runtab.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "logs.h"
#include "schema.h"
#include "store.h"
#include "util.h"

struct sched_dag *
runtab_dag(struct sched *s, const struct sched_run *r)
{
    return sched_find_dag(s, r->dag);
}

/* The stored artifact an input resolves to in run r, or NULL. */
json_t *
runtab_input_artifact(const struct sched_run *r, const struct dag_input *in)
{
    const struct sched_ti *up = &r->tis[in->task_idx];
    json_t *found = NULL, *v;
    size_t k;
    if (up->outputs)
        json_array_foreach(up->outputs, k, v)
        {
            if (!strcmp(json_string_value(json_object_get(v, "name")) ?: "", in->file))
                found = v;
        }
    return found;
}

struct sched_run *
runtab_alloc(struct sched *s, const char *dag, const char *run_id, struct sched_dagver *dv)
{
    struct sched_run *r = xcalloc(1, sizeof(*r));
    r->dag = xstrdup(dag);
    r->run_id = xstrdup(run_id);
    r->key = schema_key_run(dag, run_id);
    r->dv = dv;
    dv->refs++;
    r->ntis = dv->dag->ntasks;
    r->tis = xcalloc(r->ntis, sizeof(*r->tis));
    r->seq = ++s->run_seq;
    for (size_t i = 0; i < r->ntis; i++) {
        struct sched_ti *ti = &r->tis[i];
        ti->run = r;
        ti->idx = i;
        ti->state = TI_PENDING;
        ti->pending_up = (int)dv->dag->tasks[i].nneeds;
        ti->heap_idx = SIZE_MAX;
        ti->exit_code = -1;
        ti->log_fd = -1;
    }
    r->next = &s->runs;
    r->prev = s->runs.prev;
    s->runs.prev->next = r;
    s->runs.prev = r;
    hmap_put(&s->runs_by_key, r->key, (size_t)(uintptr_t)r);
    return r;
}

void
runtab_free(struct sched *s, struct sched_run *r)
{
    (void)s;
    for (size_t i = 0; i < r->ntis; i++) {
        logs_close(&r->tis[i]);
        free(r->tis[i].worker_name);
        free(r->tis[i].error);
        json_decref(r->tis[i].outputs);
        json_decref(r->tis[i].metrics);
        json_decref(r->tis[i].cached_from);
        json_decref(r->tis[i].published);
        json_decref(r->tis[i].prov);
    }
    free(r->tis);
    for (size_t i = 0; i < r->noverrides; i++) {
        free(r->overrides[i].key);
        free(r->overrides[i].value);
    }
    free(r->overrides);
    json_decref(r->params);
    r->dv->refs--;
    free(r->dag);
    free(r->run_id);
    free(r->run_type);
    free(r->backfill);
    free(r->key);
    free(r);
}

struct sched_run *
sched_find_run(struct sched *s, const char *dag, const char *run_id)
{
    char *key = schema_key_run(dag, run_id);
    size_t v = 0;
    bool found = hmap_get(&s->runs_by_key, key, &v);
    free(key);
    return found ? (struct sched_run *)(uintptr_t)v : NULL;
}

void
runtab_set_params(struct sched_run *r, json_t *params)
{
    r->params = params ? json_incref(params) : json_object();
    const char *k;
    json_t *v;
    r->overrides = xcalloc(json_object_size(r->params) + 1, sizeof(*r->overrides));
    json_object_foreach(r->params, k, v)
    {
        if (!json_is_string(v))
            continue;
        r->overrides[r->noverrides].key = xstrdup(k);
        r->overrides[r->noverrides].value = xstrdup(json_string_value(v));
        r->noverrides++;
    }
}

bool
runtab_exists(struct sched *s, const char *dag, const char *rid)
{
    if (sched_find_run(s, dag, rid))
        return true;
    struct store_txn *t = NULL;
    void *rec = NULL;
    char *key = schema_key_run(dag, rid);
    bool exists = false;
    if (store_txn_begin(s->store, false, &t) == 0) {
        exists = store_get(t, STORE_RUNS, key, &rec) == 0;
        json_decref(rec);
        store_txn_abort(t);
    }
    free(key);
    return exists;
}

void
runtab_evict_finished(struct sched *s)
{
    struct sched_run *r = s->runs.next;
    while (r != &s->runs) {
        struct sched_run *next = r->next;
        if (sched_run_finished(r->state) && !r->dirty) {
            r->prev->next = r->next;
            r->next->prev = r->prev;
            hmap_del(&s->runs_by_key, r->key);
            runtab_free(s, r);
        }
        r = next;
    }
}

void
runtab_render_ctx(const struct sched_ti *ti, struct dag_run_ctx *rc)
{
    const struct sched_run *r = ti->run;
    memset(rc, 0, sizeof(*rc));
    rc->logical_date = r->logical_date;
    rc->data_interval_end = r->interval_end;
    rc->run_id = r->run_id;
    rc->overrides = r->overrides;
    rc->noverrides = r->noverrides;
    rc->map_index = -1;
}
