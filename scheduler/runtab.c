/* runtab.c - the unfinished runs in memory: allocation, lookup by key,
 * params, eviction once finished and stored, freed a chunk per loop
 * iteration (runtab.h). */
#include "runtab.h"

#include <malloc.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api_blobs.h"
#include "codesnap.h"
#include "core.h"
#include "fanout.h"
#include "gpualloc.h"
#include "logs.h"
#include "schema.h"
#include "store.h"
#include "util.h"

/* freeing at least this many task instances (instances of mapped tasks
 * included) at once trims the heap */
#define RUNTAB_TRIM_TIS 1000

struct sched_dag *
runtab_dag(struct sched *s, const struct sched_run *r)
{
    return sched_find_dag(s, r->dag);
}

/* The stored artifact an input of ti resolves to, or NULL. */
json_t *
runtab_input_artifact(const struct sched_ti *ti, const struct dag_input *in)
{
    const struct sched_run *r = ti->run;
    const struct sched_ti *up = &r->tis[in->task_idx];
    if (in->zip) { /* the upstream instance with ti's index */
        if (!up->map || ti->map_index < 0 || (size_t)ti->map_index >= up->map->created)
            return NULL;
        up = &up->map->inst[ti->map_index];
    }
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
        ti->map_index = -1;
        if (dv->dag->tasks[i].map.kind != DAG_MAP_NONE)
            ti->map = xcalloc(1, sizeof(*ti->map));
    }
    r->next = &s->runs;
    r->prev = s->runs.prev;
    s->runs.prev->next = r;
    s->runs.prev = r;
    hmap_put(&s->runs_by_key, r->key, (size_t)(uintptr_t)r);
    return r;
}

/* Free up to budget task instances of r from r->free_next on (a mapped
 * task's instances count one each; a big group's go to fan_release, which
 * frees them and their items over later iterations); returns what is left
 * of budget. What is freed counts towards the next heap trim. */
static size_t
runtab__release_some(struct sched *s, struct sched_run *r, size_t budget)
{
    while (r->free_next < r->ntis && budget) {
        struct sched_ti *ti = &r->tis[r->free_next];
        size_t n = 1 + (ti->map ? ti->map->created : 0);
        runtab_ti_release(ti);
        fan_release(s, ti->map);
        ti->map = NULL;
        r->free_next++;
        s->freed_since_trim += n;
        budget = n >= budget ? 0 : budget - n;
    }
    return budget;
}

/* What r owns besides its task instances, and r (they are freed). */
static void
runtab__free_rest(struct sched_run *r)
{
    free(r->tis);
    codesnap_forget(r);
    for (size_t i = 0; i < r->noverrides; i++) {
        free(r->overrides[i].key);
        free(r->overrides[i].value);
    }
    free(r->overrides);
    json_decref(r->params);
    json_decref(r->images);
    json_decref(r->event);
    r->dv->refs--;
    free(r->dag);
    free(r->run_id);
    free(r->run_type);
    free(r->backfill);
    free(r->key);
    free(r);
}

void
runtab_free(struct sched *s, struct sched_run *r)
{
    runtab__release_some(s, r, SIZE_MAX);
    runtab__free_rest(r);
}

void
runtab_ti_release(struct sched_ti *ti)
{
    logs_close(ti);
    free(ti->worker_name);
    free(ti->error);
    json_decref(ti->outputs);
    json_decref(ti->metrics);
    json_decref(ti->cached_from);
    json_decref(ti->published);
    json_decref(ti->prov);
    json_decref(ti->stderr_tail);
    json_decref(ti->excluded);
    ti->excluded = NULL;
    api_blobs_revoke(NULL, ti);
    gpualloc_forget(ti);
    ti->worker_name = ti->error = NULL;
    ti->outputs = ti->metrics = ti->cached_from = ti->published = ti->prov = NULL;
    ti->stderr_tail = NULL;
}

void
runtab_instances_drop(struct sched_map *m)
{
    fan_manifest_forget(m);
    for (size_t i = 0; i < m->created; i++)
        runtab_ti_release(&m->inst[i]);
    free(m->inst);
    json_decref(m->items);
    m->inst = NULL;
    m->items = NULL;
    m->n = m->created = m->nfinished = 0;
    m->active = 0;
    m->expanded = m->loading = m->manifest_failed = false;
    m->items_sha[0] = m->manifest_sha[0] = '\0';
    memset(m->count, 0, sizeof(m->count));
}

void
runtab_map_free(struct sched_map *m)
{
    if (!m)
        return;
    runtab_instances_drop(m);
    free(m);
}

void
runtab_instance_init(struct sched_ti *g, size_t i)
{
    struct sched_ti *ti = &g->map->inst[i];
    memset(ti, 0, sizeof(*ti));
    ti->run = g->run;
    ti->idx = g->idx;
    ti->parent = g;
    ti->map_index = (long)i;
    ti->state = TI_PENDING;
    ti->heap_idx = SIZE_MAX;
    ti->exit_code = -1;
    ti->log_fd = -1;
    ti->no_cache = g->no_cache;
    g->map->count[TI_PENDING]++;
}

const char *
sched_ti_name(const struct sched_ti *ti, char *buf, size_t len)
{
    const char *task = ti->run->dv->dag->tasks[ti->idx].name;
    if (!ti->parent)
        return task;
    return dag_instance_name(task, ti->map_index, buf, len);
}

struct sched_ti *
runtab_ti_by_name(struct sched_run *r, const char *name)
{
    char task[DAG_NAME_MAX + 1];
    long index = dag_instance_parse(name, task, sizeof(task));
    if (index < -1)
        return NULL;
    long idx = dag_task_index(r->dv->dag, task);
    if (idx < 0)
        return NULL;
    struct sched_ti *ti = &r->tis[idx];
    if (index == -1)
        return ti;
    if (!ti->map || (size_t)index >= ti->map->created)
        return NULL;
    return &ti->map->inst[index];
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
        if (sched_run_finished(r->state) && !r->dirty && !r->starting) {
            /* out of the table now (what asks for it reads the store); its
             * memory goes a chunk per iteration */
            r->prev->next = r->next;
            r->next->prev = r->prev;
            hmap_del(&s->runs_by_key, r->key);
            codesnap_forget(r);
            r->free_next = 0;
            r->next = r->prev = NULL;
            if (s->dying_last)
                s->dying_last->next = r;
            else
                s->dying = r;
            s->dying_last = r;
        }
        r = next;
    }
}

void
runtab_free_some(struct sched *s)
{
    size_t budget = SCHED_CHUNK;
    while (s->dying && budget) {
        struct sched_run *r = s->dying;
        budget = runtab__release_some(s, r, budget);
        if (r->free_next < r->ntis)
            break;
        s->dying = r->next;
        if (!s->dying)
            s->dying_last = NULL;
        runtab__free_rest(r);
    }
    if (s->dying) {
        sched_more_work(s);
        return;
    }
    /* a big run's memory goes back to the system, not only to malloc's
     * free lists: the scheduler's size follows what it holds */
    if (s->freed_since_trim >= RUNTAB_TRIM_TIS) {
        s->freed_since_trim = 0;
        malloc_trim(0);
    }
}

void
runtab_free_dying(struct sched *s)
{
    while (s->dying) {
        struct sched_run *r = s->dying;
        s->dying = r->next;
        runtab_free(s, r);
    }
    s->dying_last = NULL;
}

static int
runtab__aggregate_cb(void *ud, const char *fn, const char *task, const char *metric,
                     double *out)
{
    return runtab_aggregate(ud, fn, task, metric, out);
}

char *
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
    rc->aggregate = runtab__aggregate_cb;
    rc->aggregate_ud = (void *)r;
    char *item = NULL;
    if (ti->parent && ti->parent->map->items) {
        item = json_dumps(json_array_get(ti->parent->map->items, (size_t)ti->map_index),
                          JSON_COMPACT | JSON_ENCODE_ANY);
        rc->item_json = item;
        rc->map_index = ti->map_index;
    }
    return item;
}

int
runtab_aggregate(const struct sched_run *r, const char *fn, const char *task,
                 const char *metric, double *out)
{
    long idx = dag_task_index(r->dv->dag, task);
    const struct sched_map *m = idx >= 0 ? r->tis[idx].map : NULL;
    if (!m)
        return -1;
    size_t count = 0;
    double sum = 0, best = 0;
    long best_i = -1;
    bool want_max = strcmp(fn, "min") != 0;
    for (size_t i = 0; i < m->created; i++) {
        json_t *v = json_object_get(m->inst[i].metrics, metric);
        if (!json_is_number(v))
            continue;
        double x = json_number_value(v);
        if (!count || (want_max ? x > best : x < best)) {
            best = x;
            best_i = (long)i;
        }
        sum += x;
        count++;
    }
    if (!strcmp(fn, "count")) {
        *out = (double)count;
        return 0;
    }
    if (!count)
        return -1;
    if (!strcmp(fn, "max") || !strcmp(fn, "min"))
        *out = best;
    else if (!strcmp(fn, "sum"))
        *out = sum;
    else if (!strcmp(fn, "avg"))
        *out = sum / (double)count;
    else if (!strcmp(fn, "argmax"))
        *out = (double)best_i;
    else
        return -1;
    return 0;
}
