/* runs.c - creating runs (manual triggers, schedule ticks, backfills),
 * one run per logical date, clear/retry and cancel (engine.h's run API). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cal.h"
#include "commit.h"
#include "codesnap.h"
#include "core.h"
#include "err.h"
#include "fsm.h"
#include "gpualloc.h"
#include "hmap.h"
#include "lease.h"
#include "log.h"
#include "records.h"
#include "recovery.h"
#include "runs.h"
#include "runtab.h"
#include "schema.h"
#include "store.h"
#include "taskstate.h"
#include "ticks.h"
#include "imagepin.h"
#include "util.h"

/* A new run of the DAG's current version; it starts when max_active_runs
 * allows, oldest first. params (borrowed) are the run's overrides. */
static struct sched_run *
runs__create(struct sched *s, struct sched_dag *sd, const char *rid, const char *type, int64_t ld,
           json_t *params, bool no_cache, const char *backfill)
{
    const struct dag *d = sd->cur->dag;
    struct sched_run *r = runtab_alloc(s, sd->name, rid, sd->cur);
    r->run_type = xstrdup(type);
    r->backfill = backfill ? xstrdup(backfill) : NULL;
    r->logical_date = ld;
    dag_interval(d, ld, &r->interval_end);
    r->created_at = clock_wall_ms();
    r->state = RUN_QUEUED;
    runtab_set_params(r, params);
    r->no_cache = no_cache;
    imagepin_run(s, r);
    codesnap_run(s, r);
    commit_run_dirty(s, r);
    /* its task instances need no records until they run (records.c) */
    for (size_t i = 0; i < r->ntis; i++)
        r->tis[i].no_cache = no_cache;
    LOG(LOG_INFO, "CAIRN-RUN-CREATED", "run %s of %s created", rid, sd->name);
    ts_admit_runs(s, sd);
    return r;
}

/* Now, for schedules: the wall clock, or the test-only fake clock set by
 * CAIRN_NOW (an ISO 8601 instant) that then advances in real time. */
int64_t
runs_now(const struct sched *s)
{
    return clock_wall_ms() / 1000 + s->clock_skew;
}

/* Create the runs the schedules ask for (docs/architecture.md). The
 * cursor (latest logical date created) is committed with the runs, so a
 * restart neither repeats nor skips an interval. */
void
runs_schedule(struct sched *s)
{
    int64_t now = runs_now(s);
    for (size_t i = 0; i < s->ndags && !s->stopping; i++) {
        struct sched_dag *sd = s->dags[i];
        if (!sd->cur || !sd->cur->dag->schedule || sd->paused || !sd->file)
            continue;
        int64_t due[32];
        size_t n = ticks_due(sd->cur->dag, sd->has_cursor, sd->cursor, now, due, 32);
        for (size_t k = 0; k < n; k++) {
            char ts[48], rid[128];
            cal_format_iso(due[k], 0, 1, ts, sizeof(ts));
            snprintf(rid, sizeof(rid), "scheduled__%s", ts);
            char other[128];
            enum run_state ost;
            if (!sched_run_at_date(s, sd->name, due[k], other, sizeof(other), &ost))
                runs__create(s, sd, rid, "scheduled", due[k], NULL, false, NULL);
            sd->cursor = due[k];
            sd->has_cursor = true;
            commit_dag_dirty(s, sd);
        }
    }
}

int
sched_set_paused(struct sched *s, const char *dag, bool paused)
{
    struct sched_dag *sd = sched_find_dag(s, dag);
    if (!sd)
        return CAIRN_ENOENT;
    if (sd->paused != paused) {
        sd->paused = paused;
        commit_dag_dirty(s, sd);
        LOG(LOG_INFO, "CAIRN-DAG-PAUSE", "DAG %s %s", dag, paused ? "paused" : "unpaused");
    }
    return 0;
}

json_t *
sched_next_runs(struct sched *s, const char *dag, int n)
{
    json_t *arr = json_array();
    struct sched_dag *sd = sched_find_dag(s, dag);
    if (!sd || !sd->cur)
        return arr;
    bool has = sd->has_cursor;
    int64_t cur = sd->cursor, now = runs_now(s), ld, at;
    for (int i = 0; i < n && ticks_next(sd->cur->dag, has, cur, now, &ld, &at); i++) {
        char a[48], b[48];
        cal_format_iso(ld, 0, 1, a, sizeof(a));
        cal_format_iso(at, 0, 1, b, sizeof(b));
        json_array_append_new(arr, json_pack("{s:s, s:s}", "logical_date", a, "created_at", b));
        has = true;
        cur = ld;
        if (at > now)
            now = at;
    }
    return arr;
}

int
sched_params_check(const struct dag *d, json_t *params, json_t **out, char *err, size_t errlen)
{
    json_t *p = json_object();
    const char *k;
    json_t *v;
    if (params) {
        json_object_foreach(params, k, v)
        {
            char *txt = NULL;
            if (json_is_string(v))
                txt = xstrdup(json_string_value(v));
            else if (json_is_integer(v))
                txt = xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
            else if (json_is_real(v))
                txt = xasprintf("%.17g", json_real_value(v));
            else if (json_is_boolean(v))
                txt = xstrdup(json_is_true(v) ? "true" : "false");
            if (!txt) {
                snprintf(err, errlen, "param '%s' must be a string, number or boolean", k);
                json_decref(p);
                return CAIRN_EINVAL;
            }
            struct dag_kv kv = {(char *)k, txt};
            int orc = dag_check_overrides(d, &kv, 1, err, errlen);
            if (orc != 0) { /* an unknown name (ENOENT), or a value it does not take */
                free(txt);
                json_decref(p);
                return orc;
            }
            json_object_set_new(p, k, json_string(txt));
            free(txt);
        }
    }
    *out = p;
    return 0;
}

int
sched_trigger(struct sched *s, const char *dag, int64_t logical_date, bool has_date,
              json_t *params, bool no_cache, struct sched_run **out, char *err, size_t errlen)
{
    struct sched_dag *sd = sched_find_dag(s, dag);
    if (!sd || !sd->cur) {
        snprintf(err, errlen, sd ? "DAG '%s' has no valid version to run" : "no DAG '%s'", dag);
        return CAIRN_ENOENT;
    }
    if (s->stopping) {
        snprintf(err, errlen, "the scheduler is shutting down");
        return CAIRN_ESTATE;
    }
    json_t *p = NULL;
    int rc = sched_params_check(sd->cur->dag, params, &p, err, errlen);
    if (rc)
        return rc;
    int64_t now_ms = clock_wall_ms();
    int64_t ld = has_date ? logical_date : now_ms / 1000;
    char ts[48], rid[128];
    if (has_date) {
        cal_format_iso(ld, 0, 1, ts, sizeof(ts));
    } else {
        /* manual__<now with milliseconds>: unique per DAG */
        char base[48];
        cal_format_iso(now_ms / 1000, 0, 0, base, sizeof(base));
        snprintf(ts, sizeof(ts), "%.19s.%03dZ", base, (int)(now_ms % 1000));
    }
    snprintf(rid, sizeof(rid), "manual__%s", ts);
    char other[128];
    enum run_state ost;
    if (has_date && sched_run_at_date(s, dag, ld, other, sizeof(other), &ost)) {
        snprintf(err, errlen, "DAG '%s' already has a run for logical date %s: %s (%s); use "
                 "`cairn clear %s` to run it again", dag, ts, other, sched_run_state_name(ost),
                 other);
        json_decref(p);
        return CAIRN_EEXIST;
    }
    if (runtab_exists(s, dag, rid)) {
        snprintf(err, errlen, "a run '%s' of DAG '%s' already exists", rid, dag);
        json_decref(p);
        return CAIRN_EEXIST;
    }
    *out = runs__create(s, sd, rid, "manual", ld, p, no_cache, NULL);
    json_decref(p);
    commit_run_steps(s); /* the answer shows the tasks the cache finished */
    return 0;
}

static const char *const date_run_types[] = {"scheduled", "backfill", "manual"};

bool
sched_run_at_date_in(struct sched *s, struct store_txn *txn, const char *dag, int64_t ld,
                     char *rid, size_t ridlen, enum run_state *state)
{
    char ts[48];
    cal_format_iso(ld, 0, 1, ts, sizeof(ts));
    struct store_txn *t = txn;
    bool found = false;
    for (size_t i = 0; i < 3 && !found; i++) {
        char id[128];
        snprintf(id, sizeof(id), "%s__%s", date_run_types[i], ts);
        struct sched_run *r = sched_find_run(s, dag, id);
        if (r) {
            found = true;
            *state = r->state;
        } else {
            if (!t && store_txn_begin(s->store, false, &t) != 0)
                break;
            void *rec = NULL;
            char *key = schema_key_run(dag, id);
            struct schema_run x;
            if (store_get(t, STORE_RUNS, key, &rec) == 0) {
                int st = schema_run_decode(rec, &x, NULL, 0) == 0
                             ? sched_run_state_parse(x.state)
                             : -1;
                *state = st < 0 ? RUN_FAILED : (enum run_state)st;
                found = true;
            }
            json_decref(rec);
            free(key);
        }
        if (found)
            snprintf(rid, ridlen, "%s", id);
    }
    if (t != txn)
        store_txn_abort(t);
    return found;
}

bool
sched_run_at_date(struct sched *s, const char *dag, int64_t ld, char *rid, size_t ridlen,
                  enum run_state *state)
{
    return sched_run_at_date_in(s, NULL, dag, ld, rid, ridlen, state);
}

struct sched_run *
sched_create_run(struct sched *s, const char *dag, const char *run_id, const char *type,
                 int64_t ld, json_t *params, const char *backfill)
{
    struct sched_dag *sd = sched_find_dag(s, dag);
    if (!sd || !sd->cur || s->stopping)
        return NULL;
    return runs__create(s, sd, run_id, type, ld, params, false, backfill);
}

/* A run by id: from memory, or loaded from the store into memory (so it can
 * be changed). NULL if there is none; err says so. */
static struct sched_run *
runs__get_loaded(struct sched *s, const char *dag, const char *run_id, char *err, size_t errlen)
{
    struct sched_run *r = sched_find_run(s, dag, run_id);
    if (r)
        return r;
    struct store_txn *t = NULL;
    if (store_txn_begin(s->store, false, &t) != 0) {
        snprintf(err, errlen, "cannot read the state store");
        return NULL;
    }
    void *rec = NULL;
    char *key = schema_key_run(dag, run_id);
    char why[256];
    if (store_get(t, STORE_RUNS, key, &rec) == 0)
        r = recovery_load_run(s, t, rec, why, sizeof(why));
    else
        snprintf(err, errlen, "no run '%s' of DAG '%s'", run_id, dag);
    if (rec && !r)
        snprintf(err, errlen, "run '%s' of DAG '%s' cannot be loaded: %s", run_id, dag,
                 strstr(why, "is not stored") ? "its DAG version is not stored" : why);
    json_decref(rec);
    free(key);
    store_txn_abort(t);
    if (r) {
        /* derived state of a run that was not in memory; each task instance
         * counts as changed now (a client's cursor from before the run
         * left memory must see them all) */
        uint64_t seq = ++s->change_seq;
        r->change_seq = seq;
        for (size_t i = 0; i < r->ntis; i++) {
            r->tis[i].change_seq = seq;
            r->tis[i].decided = r->tis[i].state != TI_PENDING;
            if (sched_ti_terminal(r->tis[i].state))
                r->nfinished++;
        }
    }
    return r;
}

/* Reset the selected task instances that have finished so they run again:
 * the attempt count goes on (logs and attempt records of earlier tries stay
 * readable), retries start afresh. The run goes back to queued if it had
 * finished. Returns how many were reset. */
/* Make a finished task instance (or instance) pending again: the attempt
 * count goes on (logs and attempt records of earlier tries stay readable),
 * retries start afresh, and no cache hit this time. */
static void
runs__reset_ti(struct sched *s, struct sched_ti *ti)
{
    if (ti->attempt_dirty && ti->attempts > 0)
        rec_attempt_keep(s, ti); /* its record is written as it was */
    ti->attempt_dirty = false;
    ti->attempt_base = ti->attempts;
    ti->lost = 0;
    json_decref(ti->excluded); /* a clear gives every worker another chance */
    ti->excluded = NULL;
    ti->decided = false;
    if (ti->parent) {
        ti->parent->map->count[ti->state]--;
        ti->parent->map->count[TI_PENDING]++;
        ti->parent->map->nfinished--;
    }
    ti->state = TI_PENDING;
    ti->queued_at = ti->started_at = ti->ended_at = ti->next_try_at = 0;
    ti->exit_code = -1;
    ti->signal = 0;
    ti->oom = ti->timed_out = false;
    free(ti->error);
    ti->error = NULL;
    free(ti->worker_name);
    ti->worker_name = NULL;
    gpualloc_forget(ti);
    ti->lease_id = 0;
    ti->log_size = 0;
    ti->log_lost = 0;
    json_decref(ti->outputs);
    ti->outputs = NULL;
    json_decref(ti->metrics);
    ti->metrics = NULL;
    /* a clear means "compute this again": no cache hit this time */
    ti->cached = false;
    json_decref(ti->cached_from);
    ti->cached_from = NULL;
    json_decref(ti->published);
    ti->published = NULL;
    json_decref(ti->stderr_tail);
    ti->stderr_tail = NULL;
    ti->cache_key[0] = '\0';
    json_decref(ti->prov);
    ti->prov = NULL;
    sched_ti_set_no_cache(s, ti, true);
}

/* Reset a finished group: its instances that finished (all, only the
 * failed-like ones, or only instance `only` >= 0) run again; the group keeps
 * its items and n (a clear does not fan out over a new list: trigger a new
 * run for that). Returns how many instances were reset. A group that never
 * expanded is reset as a task instance by the caller. */
static size_t
runs__reset_group(struct sched *s, struct sched_ti *g, bool failed_only, long only)
{
    struct sched_map *m = g->map;
    size_t n = 0;
    for (size_t i = 0; i < m->created; i++) {
        struct sched_ti *ti = &m->inst[i];
        if (!sched_ti_terminal(ti->state) || (only >= 0 && (long)i != only) ||
            (failed_only && !fsm_failed_like(ti->state)))
            continue;
        runs__reset_ti(s, ti);
        n++;
    }
    if (!n)
        return 0;
    m->manifest_sha[0] = '\0'; /* its outputs change */
    free(g->error);
    g->error = NULL;
    g->ended_at = 0;
    g->state = TI_RUNNING;
    g->decided = true;
    commit_ti_dirty(s, g, false);
    return n;
}

/* Pending instances of r's expanded groups that may go now. */
static void
runs__evaluate_instances(struct sched *s, struct sched_run *r)
{
    for (size_t i = 0; i < r->ntis; i++) {
        struct sched_map *m = r->tis[i].map;
        if (!m || !m->expanded || sched_ti_terminal(r->tis[i].state))
            continue;
        const struct dag_task *t = sched_task(&r->tis[i]);
        const struct sched_ti *zip =
            t->map.kind == DAG_MAP_ZIP ? &r->tis[t->map.zip_task_idx] : NULL;
        for (size_t k = 0; k < m->created; k++) {
            struct sched_ti *in = &m->inst[k];
            if (in->state != TI_PENDING)
                continue;
            in->pending_up = zip && zip->map && k < zip->map->created &&
                                     !sched_ti_terminal(zip->map->inst[k].state)
                                 ? 1
                                 : 0;
            if (in->pending_up == 0)
                ts_evaluate(s, in);
        }
    }
}

/* Reset the selected task instances that have finished so they run again
 * (a selected group: its instances; failed_only: the failed-like ones;
 * instance >= 0: only that instance of the one selected group). The run
 * goes back to queued if it had finished. Returns how many were reset. */
static size_t
runs__reset(struct sched *s, struct sched_run *r, const bool *sel, bool failed_only,
            long instance)
{
    size_t n = 0;
    for (size_t i = 0; i < r->ntis; i++) {
        struct sched_ti *ti = &r->tis[i];
        if (!sel[i] || !sched_ti_terminal(ti->state))
            continue;
        if (ti->map && ti->map->expanded && ti->map->n > 0) {
            size_t k = runs__reset_group(s, ti, failed_only, instance);
            if (k) {
                r->nfinished--;
                n += k;
            }
            continue;
        }
        if (instance >= 0)
            continue;
        if (ti->map)
            runtab_instances_drop(ti->map); /* it fans out again */
        runs__reset_ti(s, ti);
        r->nfinished--;
        n++;
    }
    if (!n)
        return 0;
    const struct dag *d = r->dv->dag;
    for (size_t i = 0; i < r->ntis; i++) {
        const struct dag_task *t = &d->tasks[i];
        r->tis[i].pending_up = 0;
        for (size_t u = 0; u < t->nneeds; u++)
            if (!sched_ti_terminal(r->tis[t->needs[u]].state))
                r->tis[i].pending_up++;
    }
    struct sched_dag *sd = runtab_dag(s, r);
    if (sched_run_finished(r->state)) {
        r->state = RUN_QUEUED;
        r->ended_at = 0;
        commit_run_dirty(s, r);
        LOG(LOG_INFO, "CAIRN-RUN-CLEARED", "run %s of %s cleared (%zu task%s): queued again",
            r->run_id, r->dag, n, n == 1 ? "" : "s");
        if (sd)
            ts_admit_runs(s, sd);
    } else if (r->state == RUN_RUNNING) {
        for (size_t i = 0; i < r->ntis; i++)
            if (sel[i] && r->tis[i].state == TI_PENDING && r->tis[i].pending_up == 0)
                ts_evaluate(s, &r->tis[i]);
        runs__evaluate_instances(s, r);
    }
    return n;
}

int
sched_clear(struct sched *s, const char *dag, const char *run_id, const char *task,
            unsigned flags, struct sched_run **out, char *err, size_t errlen)
{
    if (s->stopping) {
        snprintf(err, errlen, "the scheduler is shutting down");
        return CAIRN_ESTATE;
    }
    struct sched_run *r = runs__get_loaded(s, dag, run_id, err, errlen);
    if (!r)
        return CAIRN_ENOENT;
    const struct dag *d = r->dv->dag;
    bool *sel = xcalloc(r->ntis + 1, sizeof(*sel));
    long instance = -1;
    if (task) {
        char tname[DAG_NAME_MAX + 1];
        instance = dag_instance_parse(task, tname, sizeof(tname));
        long idx = instance >= -1 ? dag_task_index(d, tname) : -1;
        if (idx >= 0 && instance >= 0 && !r->tis[idx].map) {
            snprintf(err, errlen, "task '%s' of run '%s' is not mapped: it has no instance %ld",
                     tname, run_id, instance);
            free(sel);
            return CAIRN_EINVAL;
        }
        if (idx < 0) {
            const char *best = NULL;
            size_t bd = SIZE_MAX;
            for (size_t i = 0; i < d->ntasks; i++) {
                size_t dd = str_distance(task, d->tasks[i].name, 3);
                if (dd < bd) {
                    bd = dd;
                    best = d->tasks[i].name;
                }
            }
            if (best && bd <= 2)
                snprintf(err, errlen, "run '%s' has no task '%s'; did you mean '%s'?", run_id,
                         task, best);
            else
                snprintf(err, errlen, "run '%s' has no task '%s'", run_id, task);
            free(sel);
            return CAIRN_EINVAL;
        }
        sel[idx] = true;
    } else {
        for (size_t i = 0; i < r->ntis; i++)
            sel[i] = true;
    }
    if (flags & SCHED_CLEAR_FAILED_ONLY)
        for (size_t i = 0; i < r->ntis; i++)
            sel[i] = sel[i] && fsm_failed_like(r->tis[i].state);
    if (flags & SCHED_CLEAR_DOWNSTREAM) {
        /* tasks are in topological order: one forward pass adds descendants */
        for (size_t i = 0; i < r->ntis; i++)
            if (sel[i])
                for (size_t k = 0; k < d->tasks[i].ndownstream; k++)
                    sel[d->tasks[i].downstream[k]] = true;
    }
    size_t n = runs__reset(s, r, sel, flags & SCHED_CLEAR_FAILED_ONLY, instance);
    free(sel);
    if (!n) {
        bool any_running = false;
        for (size_t i = 0; i < r->ntis; i++)
            any_running |= !sched_ti_terminal(r->tis[i].state);
        if (flags & SCHED_CLEAR_FAILED_ONLY)
            snprintf(err, errlen, "run '%s' has no failed%s task to run again%s", run_id,
                     task ? " matching" : "", any_running ? " (others are still running)" : "");
        else
            snprintf(err, errlen, "nothing to clear in run '%s': the task%s still %s", run_id,
                     task ? " is" : "s are", "queued or running");
        return CAIRN_ESTATE;
    }
    *out = r;
    return 0;
}

/* Cancel one unfinished task instance (or instance) of a cancelled run;
 * returns 1 if an attempt was stopped. */
static size_t
runs__cancel_ti(struct sched *s, struct sched_ti *ti)
{
    if (sched_ti_terminal(ti->state))
        return 0;
    size_t killed = 0;
    if ((ti->state == TI_LEASED || ti->state == TI_RUNNING) && !ti->publishing && !ti->map) {
        struct sched_worker *w = ti->worker;
        int64_t id = ti->lease_id;
        lease_end(s, ti);
        if (w)
            lease_reply_cancel(s, w, id); /* else its next heartbeat learns it */
        killed = 1;
    }
    ti->publishing = false; /* a publish still copying is dropped when done */
    free(ti->error);
    ti->error = xstrdup("cancelled");
    ts_finish(s, ti, TI_CANCELLED);
    return killed;
}

int
sched_cancel(struct sched *s, const char *dag, const char *run_id, struct sched_run **out,
             char *err, size_t errlen)
{
    struct sched_run *r = sched_find_run(s, dag, run_id);
    if (!r || sched_run_finished(r->state)) {
        enum run_state st = RUN_FAILED;
        if (r)
            st = r->state;
        else if (!runtab_exists(s, dag, run_id)) {
            snprintf(err, errlen, "no run '%s' of DAG '%s'", run_id, dag);
            return CAIRN_ENOENT;
        }
        snprintf(err, errlen, "run '%s' of DAG '%s' has already finished%s%s%s", run_id, dag,
                 r ? " (" : "", r ? sched_run_state_name(st) : "", r ? ")" : "");
        return CAIRN_ESTATE;
    }
    enum run_state was = r->state;
    /* first the run, so finishing its tasks wakes no downstream */
    r->state = RUN_CANCELLED;
    r->ended_at = clock_wall_ms();
    commit_run_dirty(s, r);
    size_t killed = 0;
    for (size_t i = 0; i < r->ntis; i++) {
        struct sched_ti *ti = &r->tis[i];
        if (sched_ti_terminal(ti->state))
            continue;
        for (size_t k = 0; ti->map && k < ti->map->created; k++)
            killed += runs__cancel_ti(s, &ti->map->inst[k]);
        if (!sched_ti_terminal(ti->state)) /* the last instance may have ended it */
            killed += runs__cancel_ti(s, ti);
    }
    LOG(LOG_INFO, "CAIRN-RUN-CANCELLED", "run %s of %s cancelled (%zu attempt%s stopped)",
        run_id, dag, killed, killed == 1 ? "" : "s");
    struct sched_dag *sd = runtab_dag(s, r);
    if (was == RUN_RUNNING && sd) {
        sd->active_runs--;
        ts_admit_runs(s, sd);
    }
    ts_run_ended(s, r);
    *out = r;
    return 0;
}

void
sched_run_set_backfill(struct sched *s, struct sched_run *r, const char *id)
{
    free(r->backfill);
    r->backfill = id ? xstrdup(id) : NULL;
    commit_run_dirty(s, r);
}

/* ---------- idempotency keys ---------- */

#define IDEM_TTL_MS (24LL * 3600 * 1000)

static char *
runs__idem_meta_key(const char *key)
{
    return xasprintf("idem/%s", key);
}

int
sched_idem_get(struct sched *s, const char *key, char **dag, char **run_id)
{
    size_t v = 0;
    if (hmap_get(&s->idem, key, &v)) {
        const char *rk = (const char *)(uintptr_t)v;
        size_t n = schema_key_prefix_len(rk, 1);
        *dag = xstrndup(rk, n);
        *run_id = xstrdup(rk + n + 1);
        return 0;
    }
    struct store_txn *t = NULL;
    void *rec = NULL;
    int rc = CAIRN_ENOENT;
    char *mk = runs__idem_meta_key(key);
    if (store_txn_begin(s->store, false, &t) == 0) {
        if (store_get(t, STORE_META, mk, &rec) == 0) {
            const char *d = json_string_value(json_object_get(rec, "dag"));
            const char *r = json_string_value(json_object_get(rec, "run_id"));
            int64_t at = schema_time_parse(json_object_get(rec, "created_at"));
            if (d && r && clock_wall_ms() - at < IDEM_TTL_MS) {
                *dag = xstrdup(d);
                *run_id = xstrdup(r);
                rc = 0;
            }
        }
        json_decref(rec);
        store_txn_abort(t);
    }
    free(mk);
    return rc;
}

void
sched_idem_put(struct sched *s, const char *key, const struct sched_run *r)
{
    char *k = xstrdup(key), *rk = xstrdup(r->key);
    size_t old = 0;
    if (hmap_get(&s->idem, key, &old)) {
        /* (cannot happen: a known key returns its run before a trigger) */
        free(k);
        free(rk);
        return;
    }
    hmap_put(&s->idem, k, (size_t)(uintptr_t)rk);
    json_object_set_new(s->idem_pending, key,
                        json_pack("{s:s, s:s, s:o}", "dag", r->dag, "run_id", r->run_id,
                                  "created_at", schema_time_json(clock_wall_ms())));
}

static bool
runs__idem_dirty(void *ud)
{
    struct sched *s = ud;
    return json_object_size(s->idem_pending) > 0;
}

static int
runs__idem_flush(void *ud, struct store_txn *t)
{
    struct sched *s = ud;
    const char *k;
    json_t *v;
    json_object_foreach(s->idem_pending, k, v)
    {
        char *mk = runs__idem_meta_key(k);
        int rc = store_put(t, STORE_META, mk, v);
        free(mk);
        if (rc)
            return rc;
    }
    return 0;
}

static void
runs__idem_clear(void *ud)
{
    struct sched *s = ud;
    json_object_clear(s->idem_pending);
}

struct idem_old {
    char **keys;
    size_t n, cap;
    int64_t cutoff;
};

static int
runs__idem_old_cb(void *ud, const char *key, const void *json)
{
    struct idem_old *o = ud;
    if (schema_time_parse(json_object_get(json, "created_at")) < o->cutoff) {
        xgrow((void **)&o->keys, &o->cap, o->n + 1, sizeof(*o->keys));
        o->keys[o->n++] = xstrdup(key);
    }
    return 0;
}

void
runs_idem_init(struct sched *s)
{
    hmap_init(&s->idem);
    s->idem_pending = json_object();
    struct sched_participant p = {runs__idem_dirty, runs__idem_flush, runs__idem_clear, s};
    sched_add_participant(s, &p);
}

void
runs_idem_prune(struct sched *s)
{
    struct idem_old o = {.cutoff = clock_wall_ms() - IDEM_TTL_MS};
    struct store_txn *t = NULL;
    if (store_txn_begin(s->store, true, &t) != 0)
        return;
    store_scan(t, STORE_META, "idem/", runs__idem_old_cb, &o);
    for (size_t i = 0; i < o.n; i++)
        store_del(t, STORE_META, o.keys[i]);
    if (o.n && store_txn_commit(t) == 0)
        LOG(LOG_INFO, "CAIRN-IDEM-PRUNED", "forgot %zu idempotency key%s older than a day", o.n,
            o.n == 1 ? "" : "s");
    else
        store_txn_abort(t);
    for (size_t i = 0; i < o.n; i++)
        free(o.keys[i]);
    free(o.keys);
}

void
runs_idem_free(struct sched *s)
{
    for (size_t i = 0; i < s->idem.cap; i++)
        if (s->idem.slots[i].key) {
            free((char *)s->idem.slots[i].key);
            free((char *)(uintptr_t)s->idem.slots[i].val);
        }
    hmap_free(&s->idem);
    json_decref(s->idem_pending);
}
