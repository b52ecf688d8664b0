/* recovery.c - bringing the unfinished runs back from LMDB after a start
 * (recovery.h). */
#include "recovery.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codesnap.h"
#include "core.h"
#include "dagtab.h"
#include "err.h"
#include "fanout.h"
#include "imagepin.h"
#include "lease.h"
#include "log.h"
#include "readyq.h"
#include "records.h"
#include "runtab.h"
#include "schema.h"
#include "store.h"
#include "taskstate.h"
#include "util.h"

struct recover_ctx {
    struct sched *s;
    struct store_txn *t;
    struct sched_run *run;
};

static int
recovery__ti_cb(void *ud, const char *key, const void *json)
{
    struct recover_ctx *rc = ud;
    struct sched_run *r = rc->run;
    const char *task = json_string_value(json_object_get((const json_t *)json, "task"));
    if (!task)
        return 0;
    /* a task's record comes before its instances' (schema.h) */
    struct sched_ti *ti = runtab_ti_by_name(r, task);
    if (!ti)
        return 0; /* a task the run's version does not have, or an instance beyond n */
    char err[256];
    if (rec_ti_load(rc->t, ti, json, err, sizeof(err)) != 0)
        LOG(LOG_ERR, "CAIRN-RECORD-BAD", "%s: %s; the task instance starts pending", key, err);
    return 0;
}

/* What is derived in a run's groups: their items (a map.from list read
 * again by its digest; in topological order, so a zip takes its upstream's)
 * and, in each, the counts, what has finished and what is decided. */
static void
recovery__groups(struct sched *s, struct sched_run *r)
{
    const struct dag *d = r->dv->dag;
    for (size_t k = 0; k < d->ntasks; k++) {
        struct sched_ti *g = &r->tis[d->topo[k]];
        struct sched_map *m = g->map;
        if (!m || !m->expanded)
            continue;
        char err[512];
        if (fan_items_sync(s, g, err, sizeof(err)) != 0)
            LOG(LOG_ERR, "CAIRN-RECOVER", "run %s of %s: the items of %s: %s", r->run_id, r->dag,
                sched_task(g)->name, err);
        memset(m->count, 0, sizeof(m->count));
        m->nfinished = 0;
        for (size_t i = 0; i < m->created; i++) {
            struct sched_ti *ti = &m->inst[i];
            m->count[ti->state]++;
            ti->decided = ti->state != TI_PENDING;
            if (sched_ti_terminal(ti->state))
                m->nfinished++;
        }
    }
}

struct sched_run *
recovery_load_run(struct sched *s, struct store_txn *t, const json_t *j, char *err,
                  size_t errlen)
{
    struct schema_run x;
    int rc = schema_run_decode(j, &x, err, errlen);
    if (rc)
        return NULL;
    int st = sched_run_state_parse(x.state);
    if (st < 0) {
        errf(CAIRN_EPROTO, err, errlen, "run %s of %s has an unknown state '%s'", x.run_id,
             x.dag, x.state);
        return NULL;
    }
    struct sched_dagver *dv = dagtab_version_load(s, t, x.dag, x.dag_version);
    if (!dv) {
        errf(CAIRN_ENOENT, err, errlen, "run %s of %s: DAG version %.12s is not stored",
             x.run_id, x.dag, x.dag_version);
        return NULL;
    }
    if (!sched_find_dag(s, x.dag))
        dagtab_add(s, x.dag, NULL);
    struct sched_run *r = runtab_alloc(s, x.dag, x.run_id, dv);
    r->run_type = xstrdup(x.run_type);
    r->backfill = x.backfill_id ? xstrdup(x.backfill_id) : NULL;
    r->state = (enum run_state)st;
    r->logical_date = x.logical_date;
    r->interval_end = x.interval_end;
    r->created_at = x.created_at;
    r->started_at = x.started_at;
    r->ended_at = x.ended_at;
    if ((uint64_t)x.seq > s->run_seq)
        s->run_seq = (uint64_t)x.seq;
    r->seq = (uint64_t)x.seq;
    runtab_set_params(r, x.params);
    r->no_cache = x.no_cache;
    r->images = x.images ? json_incref(x.images) : NULL;
    r->event = x.event ? json_incref(x.event) : NULL;
    r->deadline_missed_at = x.deadline_missed_at;
    if (x.pinning) /* its tags were being resolved: ask again */
        imagepin_run(s, r);
    codesnap_recovered(s, r, x.code_digest);
    for (size_t i = 0; i < r->ntis; i++) /* those without a record never ran */
        r->tis[i].no_cache = x.no_cache;
    struct recover_ctx ctx = {s, t, r};
    char *prefix = schema_prefix(r->key);
    store_scan(t, STORE_TIS, prefix, recovery__ti_cb, &ctx);
    free(prefix);
    recovery__groups(s, r);
    return r;
}

static int
recover_run_cb(void *ud, const char *key, const void *json)
{
    struct recover_ctx *rc = ud;
    json_t *j = (json_t *)json;
    (void)key;
    /* creation order goes on after the newest run, finished or not (runs
     * are listed by it) */
    json_int_t seq = json_integer_value(json_object_get(j, "seq"));
    if (seq > 0 && (uint64_t)seq > rc->s->run_seq)
        rc->s->run_seq = (uint64_t)seq;
    int st = sched_run_state_parse(json_string_value(json_object_get(j, "state")) ?: "");
    if (st == RUN_QUEUED || st == RUN_RUNNING) {
        char err[256];
        if (!recovery_load_run(rc->s, rc->t, j, err, sizeof(err)))
            LOG(LOG_ERR, "CAIRN-RECOVER", "%s; skipped", err);
    }
    return 0;
}

static int
run_seq_cmp(const void *a, const void *b)
{
    const struct sched_run *x = *(struct sched_run *const *)a, *y = *(struct sched_run *const *)b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The runtime place of a recovered task instance: the ready heap, the lease
 * list (a worker may still be running it: it gets a lease time to report
 * back, then it is taken back), the retry list. */
static void
recovery__live(struct sched *s, struct sched_dag *sd, struct sched_ti *ti, size_t *nlive)
{
    switch (ti->state) {
    case TI_QUEUED:
        if (!ti->map)
            rq_push(s, ti);
        break;
    case TI_LEASED:
    case TI_RUNNING:
        if (ti->map) /* a group holds no lease: its instances do */
            break;
        ti->lease_expires = clock_mono_ms() + s->cfg.lease_ttl_ms;
        rq_list_add(&s->leases, ti);
        lease_register(s, ti);
        ti->run->active++;
        if (ti->parent)
            ti->parent->map->active++;
        if (sd)
            sd->active_tasks++;
        (*nlive)++;
        break;
    case TI_UP_FOR_RETRY:
        rq_list_add(&s->retries, ti);
        break;
    default:
        break;
    }
}

int
recovery_run(struct sched *s)
{
    int64_t t0 = clock_mono_ms();
    struct store_txn *t = NULL;
    int rc = store_txn_begin(s->store, false, &t);
    if (rc)
        return rc;
    void *lj = NULL;
    if (store_get(t, STORE_META, "lease_seq", &lj) == 0) {
        s->lease_seq = json_integer_value(json_object_get(lj, "value"));
        json_decref(lj);
    }
    struct recover_ctx ctx = {s, t, NULL};
    store_scan(t, STORE_RUNS, "", recover_run_cb, &ctx);
    store_txn_abort(t);

    /* order runs by creation, then rebuild the derived state */
    size_t n = 0;
    for (struct sched_run *r = s->runs.next; r != &s->runs; r = r->next)
        n++;
    struct sched_run **arr = xcalloc(n + 1, sizeof(*arr));
    n = 0;
    for (struct sched_run *r = s->runs.next; r != &s->runs; r = r->next)
        arr[n++] = r;
    qsort(arr, n, sizeof(*arr), run_seq_cmp);
    s->runs.next = s->runs.prev = &s->runs;
    for (size_t i = 0; i < n; i++) {
        arr[i]->next = &s->runs;
        arr[i]->prev = s->runs.prev;
        s->runs.prev->next = arr[i];
        s->runs.prev = arr[i];
    }
    size_t nlive = 0;
    for (size_t i = 0; i < n; i++) {
        struct sched_run *r = arr[i];
        struct sched_dag *sd = runtab_dag(s, r);
        if (r->state == RUN_RUNNING && sd)
            sd->active_runs++;
        for (size_t k = 0; k < r->ntis; k++) {
            struct sched_ti *ti = &r->tis[k];
            const struct dag_task *tk = &r->dv->dag->tasks[k];
            ti->pending_up = 0;
            for (size_t u = 0; u < tk->nneeds; u++)
                if (!sched_ti_terminal(r->tis[tk->needs[u]].state))
                    ti->pending_up++;
            ti->decided = ti->state != TI_PENDING;
            if (sched_ti_terminal(ti->state))
                r->nfinished++;
            recovery__live(s, sd, ti, &nlive);
            if (!ti->map || !ti->map->expanded)
                continue;
            const struct sched_ti *zip =
                tk->map.kind == DAG_MAP_ZIP ? &r->tis[tk->map.zip_task_idx] : NULL;
            for (size_t j = 0; j < ti->map->created; j++) {
                struct sched_ti *in = &ti->map->inst[j];
                in->pending_up = zip && zip->map && j < zip->map->created &&
                                         !sched_ti_terminal(zip->map->inst[j].state)
                                     ? 1
                                     : 0;
                recovery__live(s, sd, in, &nlive);
            }
        }
    }
    /* anything a crash left undecided is decided now */
    for (size_t i = 0; i < n; i++) {
        struct sched_run *r = arr[i];
        if (r->state != RUN_RUNNING)
            continue;
        for (size_t k = 0; k < r->ntis; k++) {
            struct sched_ti *ti = &r->tis[k];
            if (ti->state == TI_PENDING) {
                ts_evaluate(s, ti);
            } else if (ti->map && !sched_ti_terminal(ti->state) && !ti->map->expanded) {
                sched_expand_later(s, ti); /* decided before the crash, not expanded */
            } else if (ti->map && !sched_ti_terminal(ti->state)) {
                for (size_t j = 0; j < ti->map->created; j++)
                    if (ti->map->inst[j].state == TI_PENDING)
                        ts_evaluate(s, &ti->map->inst[j]);
                ts_group_expanded(s, ti);
                ts_group_check(s, ti);
            }
        }
        ts_run_check_done(s, r);
    }
    for (size_t i = 0; i < s->ndags; i++)
        ts_admit_runs(s, s->dags[i]);
    if (n)
        LOG(LOG_NOTICE, "CAIRN-RECOVER", "recovered %zu unfinished run%s (%zu attempt%s in "
            "flight, %zu task%s ready) in %lld ms", n, n == 1 ? "" : "s", nlive,
            nlive == 1 ? "" : "s", s->nheap, s->nheap == 1 ? "" : "s",
            (long long)(clock_mono_ms() - t0));
    free(arr);
    return 0;
}
