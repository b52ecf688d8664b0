/* taskstate.c - transitions of task instances and runs (taskstate.h). */
#include "taskstate.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commit.h"
#include "err.h"
#include "core.h"
#include "expr.h"
#include "fanout.h"
#include "fsm.h"
#include "log.h"
#include "readyq.h"
#include "runtab.h"
#include "schedmetrics.h"
#include "util.h"

static void
ts__set_state(struct sched *s, struct sched_ti *ti, enum ti_state st, bool lazy)
{
    /* the current attempt's record shows leased or running while the task
     * instance is: any way out of those (a success after publishing, a
     * publish that failed, a cancel) rewrites it */
    bool attempt_ends = (ti->state == TI_LEASED || ti->state == TI_RUNNING) && st != ti->state;
    if (ti->parent) { /* an instance: its group counts its states */
        ti->parent->map->count[ti->state]--;
        ti->parent->map->count[st]++;
    }
    smet_ti_state(s, ti, ti->state, st);
    enum ti_state from = ti->state;
    ti->state = st;
    if (lazy)
        commit_ti_lazy(s, ti);
    else
        commit_ti_dirty(s, ti, attempt_ends && ti->attempts > 0);
    if (s->on_ti_state)
        s->on_ti_state(s, ti, from, st);
}

void
ts_set_state(struct sched *s, struct sched_ti *ti, enum ti_state st)
{
    ts__set_state(s, ti, st, false);
}

void
ts_set_running(struct sched *s, struct sched_ti *ti)
{
    ts__set_state(s, ti, TI_RUNNING, true);
}

void
ts_make_ready(struct sched *s, struct sched_ti *ti)
{
    ti->decided = true;
    ts_set_state(s, ti, TI_QUEUED);
    ti->queued_at = clock_wall_ms();
    rq_push(s, ti);
}

/* What `when` is evaluated for: a task instance (a group, or an instance
 * of a zip task, whose plain references to its zip upstream mean the
 * instance with the same index). */
struct when_ctx {
    const struct sched_run *r;
    const struct sched_ti *ti;
};

static const struct sched_ti *
when_task(const struct when_ctx *w, long idx)
{
    const struct sched_ti *up = &w->r->tis[idx];
    const struct dag_task *t = sched_task(w->ti);
    if (w->ti->parent && t->map.kind == DAG_MAP_ZIP && (size_t)idx == t->map.zip_task_idx &&
        up->map && (size_t)w->ti->map_index < up->map->created)
        return &up->map->inst[w->ti->map_index];
    return up;
}

static int
when_agg(void *ud, const char *fn, const char *task, const char *name, double *out)
{
    const struct when_ctx *w = ud;
    return runtab_aggregate(w->r, fn, task, name, out) == 0 ? 0 : CAIRN_ENOENT;
}

/* Values for `when`: upstream metrics and the run's params. */
static int
when_lookup(void *ud, const char *task, const char *name, struct expr_val *out)
{
    const struct when_ctx *w = ud;
    const struct sched_run *r = w->r;
    const struct dag *d = r->dv->dag;
    if (task) {
        long idx = dag_task_index(d, task);
        json_t *m = idx < 0 ? NULL : json_object_get(when_task(w, idx)->metrics, name);
        if (!json_is_number(m))
            return -1;
        out->type = EXPR_T_NUM;
        out->num = json_number_value(m);
        return 0;
    }
    const char *v = NULL;
    for (size_t i = 0; i < r->noverrides; i++)
        if (!strcmp(r->overrides[i].key, name))
            v = r->overrides[i].value;
    const struct dag_param *p = dag_param_find(d, name);
    if (!v && p)
        v = p->value;
    if (!v)
        return -1;
    if (!strcmp(v, "true") || !strcmp(v, "false")) {
        out->type = EXPR_T_BOOL;
        out->b = !strcmp(v, "true");
    } else {
        out->type = EXPR_T_STR; /* a numeric string compares as a number */
        out->str = v;
    }
    return 0;
}

/* A reference or aggregate of a `when`, where it ends, and its value. */
struct explain_part {
    size_t pos, end;
    char value[64];
};

struct explain {
    const struct when_ctx *w;
    const char *src;
    struct explain_part *parts;
    size_t n, cap;
};

static void
explain_add(struct explain *x, size_t pos, size_t end, const char *value)
{
    if (end > strlen(x->src) || end < pos)
        return;
    xgrow((void **)&x->parts, &x->cap, x->n + 1, sizeof(*x->parts));
    x->parts[x->n].pos = pos;
    x->parts[x->n].end = end;
    snprintf(x->parts[x->n].value, sizeof(x->parts[x->n].value), "%s", value);
    x->n++;
}

static int
ts__explain_ref(void *ud, const char *task, const char *name, int pos)
{
    struct explain *x = ud;
    size_t end = (size_t)pos + (task ? strlen(task) + strlen(".metrics.") : strlen("params.")) +
                 strlen(name);
    struct expr_val v = {0};
    char val[64];
    if (when_lookup((void *)x->w, task, name, &v) != 0)
        snprintf(val, sizeof(val), "missing");
    else if (v.type == EXPR_T_NUM)
        snprintf(val, sizeof(val), "%.6g", v.num);
    else if (v.type == EXPR_T_BOOL)
        snprintf(val, sizeof(val), "%s", v.b ? "true" : "false");
    else
        snprintf(val, sizeof(val), "%s", v.str);
    explain_add(x, (size_t)pos, end, val);
    return 0;
}

static int
ts__explain_agg(void *ud, const char *fn, const char *task, const char *name, int pos)
{
    struct explain *x = ud;
    const char *close = strchr(x->src + pos, ')');
    double v = 0;
    char val[64];
    if (when_agg((void *)x->w, fn, task, name, &v) != 0)
        snprintf(val, sizeof(val), "missing");
    else
        snprintf(val, sizeof(val), "%.6g", v);
    if (close)
        explain_add(x, (size_t)pos, (size_t)(close - x->src) + 1, val);
    return 0;
}

static int
explain_cmp(const void *a, const void *b)
{
    const struct explain_part *x = a, *y = b;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* "condition is false: " and the `when` source with the value of each
 * reference after it: `select.metrics.auc (0.7124) >= params.min_auc (0.75)`. */
static void
ts__explain(const struct when_ctx *w, char *buf, size_t len)
{
    const struct dag_task *t = sched_task(w->ti);
    struct explain x = {w, t->when, NULL, 0, 0};
    expr_foreach_ref(t->when_expr, ts__explain_ref, &x);
    expr_foreach_agg(t->when_expr, ts__explain_agg, &x);
    qsort(x.parts, x.n, sizeof(*x.parts), explain_cmp);
    struct sb sb;
    sb_init(&sb);
    size_t done = 0;
    for (size_t i = 0; i < x.n; i++) {
        if (x.parts[i].pos < done)
            continue; /* a reference inside an aggregate: the aggregate's value says it */
        sb_append(&sb, t->when + done, x.parts[i].end - done);
        sb_printf(&sb, " (%s)", x.parts[i].value);
        done = x.parts[i].end;
    }
    sb_puts(&sb, t->when + done);
    snprintf(buf, len, "condition is false: %s", sb.buf ? sb.buf : t->when);
    sb_free(&sb);
    free(x.parts);
}

/* The `when` gate of ti (a group, a plain task or a zip instance): 0 and
 * *yes, or an evaluation error with err. */
static int
ts__when(const struct sched_ti *ti, bool *yes, char *err, size_t errlen)
{
    struct when_ctx w = {ti->run, ti};
    return expr_eval_agg(sched_task(ti)->when_expr, when_lookup, when_agg, &w, yes, err, errlen);
}

/* Count one upstream of a task for its trigger rule: a mapped upstream
 * that has instances counts as all of them, one that has none yet (not
 * expanded, or it failed before it could) as itself. */
static void
ts__count(struct fsm_upstreams *u, const struct sched_ti *up)
{
    const struct sched_map *m = up->map;
    if (!m || !m->expanded || m->n == 0) {
        u->n++;
        fsm_count_one(u, up->state);
        return;
    }
    u->n += (int)m->n;
    u->done += (int)m->nfinished;
    u->success += m->count[TI_SUCCESS];
    u->failed += m->count[TI_FAILED];
    u->upstream_failed += m->count[TI_UPSTREAM_FAILED];
    u->skipped += m->count[TI_SKIPPED];
}

/* Why ti is upstream_failed, naming the task that failed: an upstream that
 * failed itself, or the one an upstream_failed upstream names (so a chain
 * below a failure names the failure, not its neighbour). */
static const char *
ts__upstream_failure(const struct sched_ti *ti, char *buf, size_t len)
{
    const struct dag_task *t = sched_task(ti);
    const struct sched_ti *inherited = NULL;
    for (size_t i = 0; i < t->nneeds; i++) {
        const struct sched_ti *up = &ti->run->tis[t->needs[i]];
        if (up->state == TI_FAILED) {
            snprintf(buf, len, "upstream '%s' failed", sched_task(up)->name);
            return buf;
        }
        if (up->state == TI_UPSTREAM_FAILED && !inherited)
            inherited = up;
    }
    if (inherited && inherited->error && !strncmp(inherited->error, "upstream '", 10))
        return inherited->error;
    if (inherited) {
        snprintf(buf, len, "upstream '%s' could not run (an upstream of it failed)",
                 sched_task(inherited)->name);
        return buf;
    }
    return "an upstream task failed";
}

/* ti (ready to run) goes to the step cache's queue or the ready queue. */
static void
ts__ready(struct sched *s, struct sched_ti *ti)
{
    if (sched_task(ti)->cache) {
        /* looked up by the step cache before this iteration's commit
         * (stepcache.h): a hit finishes the task, which readies its
         * downstreams, and doing that here would recurse once per hit */
        ti->decided = true;
        xgrow((void **)&s->cache_q, &s->capcache_q, s->ncache_q + 1, sizeof(*s->cache_q));
        s->cache_q[s->ncache_q++] = ti;
        return;
    }
    ts_make_ready(s, ti);
}

/* An instance: of a plain mapped task it runs as soon as it is made (its
 * group was decided); of a zip task it waits for the upstream instance with
 * its index, under the task's trigger rule and `when`. */
static void
ts__evaluate_instance(struct sched *s, struct sched_ti *ti)
{
    const struct dag_task *t = sched_task(ti);
    enum ti_state out = TI_QUEUED;
    char err[512];
    const char *why = NULL;
    if (t->map.kind == DAG_MAP_ZIP) {
        const struct sched_ti *up = &ti->run->tis[t->map.zip_task_idx];
        if (!up->map || (size_t)ti->map_index >= up->map->created)
            return;
        up = &up->map->inst[ti->map_index];
        struct fsm_upstreams u = {.n = 1};
        fsm_count_one(&u, up->state);
        out = fsm_decide(t->trigger_rule, &u);
        char name[256];
        if (out == TI_UPSTREAM_FAILED) {
            snprintf(err, sizeof(err), "upstream '%s' %s", sched_ti_name(up, name, sizeof(name)),
                     up->state == TI_FAILED ? "failed" : "could not run");
            why = err;
        } else if (out == TI_SKIPPED) {
            why = "skipped by trigger rule";
        }
        bool yes = true;
        if (out == TI_QUEUED && t->when_expr) {
            if (ts__when(ti, &yes, err, sizeof(err)) != 0) {
                out = TI_FAILED;
                why = err;
            } else if (!yes) {
                struct when_ctx w = {ti->run, ti};
                out = TI_SKIPPED;
                ts__explain(&w, err, sizeof(err));
                why = err;
            }
        }
    }
    if (out == TI_QUEUED) {
        ts__ready(s, ti);
    } else if (out != TI_PENDING) {
        ti->decided = true;
        free(ti->error);
        ti->error = xstrdup(why ? why : "skipped");
        ts_finish(s, ti, out);
    }
}

void
ts_evaluate(struct sched *s, struct sched_ti *ti)
{
    if (ti->decided || ti->run->state != RUN_RUNNING)
        return;
    if (ti->parent) {
        ts__evaluate_instance(s, ti);
        return;
    }
    const struct dag_task *t = sched_task(ti);
    const struct sched_ti *zip =
        ti->map && t->map.kind == DAG_MAP_ZIP ? &ti->run->tis[t->map.zip_task_idx] : NULL;
    struct fsm_upstreams u = {0};
    for (size_t i = 0; i < t->nneeds; i++) {
        const struct sched_ti *up = &ti->run->tis[t->needs[i]];
        if (up == zip && !sched_ti_terminal(up->state)) {
            /* a zip group goes as soon as the group it zips has its
             * instances; each of its own waits for its pair */
            if (!up->map->expanded || up->map->created < up->map->n)
                return;
            continue;
        }
        ts__count(&u, up);
    }
    enum ti_state out = fsm_decide(t->trigger_rule, &u);
    char err[512];
    const char *why = out == TI_SKIPPED ? "skipped by trigger rule" : "an upstream task failed";
    if (out == TI_UPSTREAM_FAILED) {
        why = ts__upstream_failure(ti, err, sizeof(err));
    }
    if (out == TI_QUEUED && t->when_expr && !zip) {
        /* the `when` gate, now that the upstreams are done (a zip task's is
         * each instance's) */
        bool yes = false;
        if (ts__when(ti, &yes, err, sizeof(err)) != 0) {
            out = TI_FAILED;
            why = err;
        } else if (!yes) {
            struct when_ctx w = {ti->run, ti};
            out = TI_SKIPPED;
            ts__explain(&w, err, sizeof(err));
            why = err;
        }
    }
    if (out == TI_QUEUED && ti->map) {
        /* a group: its instances are made by fanout.c */
        ti->decided = true;
        ts_set_state(s, ti, TI_QUEUED);
        ti->queued_at = clock_wall_ms();
        sched_expand_later(s, ti);
    } else if (out == TI_QUEUED) {
        ts__ready(s, ti);
    } else if (out != TI_PENDING) {
        ti->decided = true;
        free(ti->error);
        ti->error = xstrdup(why);
        ts_finish(s, ti, out);
    }
}

/* Decide the task instances whose upstreams finished, in the order they
 * were woken; a decision that finishes one queues its own downstreams. */
static void
ts__drain(struct sched *s)
{
    if (s->evaluating)
        return;
    s->evaluating = true;
    for (size_t i = 0; i < s->nevalq; i++)
        ts_evaluate(s, s->evalq[i]);
    s->nevalq = 0;
    s->evaluating = false;
}

static void
ts__wake(struct sched *s, struct sched_ti *d)
{
    xgrow((void **)&s->evalq, &s->capevalq, s->nevalq + 1, sizeof(*s->evalq));
    s->evalq[s->nevalq++] = d;
}

/* An instance finished: its pair in each zip task may go, the downstreams
 * of its group see one more outcome (rules that fire early), and the group
 * may be over. */
static void
ts__instance_finished(struct sched *s, struct sched_ti *ti)
{
    struct sched_ti *g = ti->parent;
    struct sched_run *r = ti->run;
    const struct dag *d = r->dv->dag;
    const struct dag_task *t = sched_task(ti);
    g->map->nfinished++;
    for (size_t i = 0; i < t->ndownstream; i++) {
        struct sched_ti *down = &r->tis[t->downstream[i]];
        const struct dag_task *dt = &d->tasks[t->downstream[i]];
        if (dt->map.kind == DAG_MAP_ZIP && dt->map.zip_task_idx == ti->idx) {
            if (down->map && (size_t)ti->map_index < down->map->created) {
                struct sched_ti *pair = &down->map->inst[ti->map_index];
                pair->pending_up--;
                ts__wake(s, pair);
            }
        } else {
            ts__wake(s, down);
        }
    }
    ts__drain(s);
    ts_group_check(s, g);
}

void
ts_group_expanded(struct sched *s, struct sched_ti *g)
{
    const struct dag_task *t = sched_task(g);
    const struct dag *d = g->run->dv->dag;
    for (size_t i = 0; i < t->ndownstream; i++)
        if (d->tasks[t->downstream[i]].map.kind == DAG_MAP_ZIP)
            ts__wake(s, &g->run->tis[t->downstream[i]]);
    ts__drain(s);
}

void
ts_group_check(struct sched *s, struct sched_ti *g)
{
    struct sched_map *m = g->map;
    if (!m->expanded || m->created < m->n || m->nfinished < m->n || sched_ti_terminal(g->state))
        return;
    if (fan_manifest_first(s, g))
        return; /* it ends once its instances' manifest is stored */
    enum ti_state out;
    const char *what = NULL;
    if (m->n == 0) {
        out = TI_SKIPPED;
        what = "no items: nothing to fan out";
    } else if (m->count[TI_FAILED]) {
        out = TI_FAILED;
    } else if (m->count[TI_UPSTREAM_FAILED]) {
        out = TI_UPSTREAM_FAILED;
    } else if (m->count[TI_CANCELLED]) {
        out = TI_CANCELLED;
    } else if (m->count[TI_SUCCESS]) {
        out = TI_SUCCESS;
    } else {
        out = TI_SKIPPED;
        what = "every instance was skipped";
    }
    free(g->error);
    g->error = NULL;
    if (what) {
        g->error = xstrdup(what);
    } else if (out != TI_SUCCESS) {
        const struct sched_ti *first = NULL;
        for (size_t i = 0; i < m->n && !first; i++)
            if (m->inst[i].state == out)
                first = &m->inst[i];
        char name[256];
        g->error = xasprintf("%d of %zu instances %s (first: %s: %s)", m->count[out], m->n,
                             sched_ti_state_name(out),
                             first ? sched_ti_name(first, name, sizeof(name)) : "?",
                             first && first->error ? first->error : "?");
    }
    ts_finish(s, g, out);
}

void
ts_finish(struct sched *s, struct sched_ti *ti, enum ti_state st)
{
    struct sched_run *r = ti->run;
    rq_remove(s, ti);
    rq_list_del(ti);
    ts_set_state(s, ti, st);
    ti->decided = true;
    if (!ti->ended_at)
        ti->ended_at = clock_wall_ms();
    if (ti->parent) {
        ts__instance_finished(s, ti);
        return;
    }
    r->nfinished++;
    const struct dag_task *t = sched_task(ti);
    for (size_t i = 0; i < t->ndownstream; i++) {
        struct sched_ti *d = &r->tis[t->downstream[i]];
        d->pending_up--;
        ts__wake(s, d);
    }
    ts__drain(s);
    ts_run_check_done(s, r);
}

void
ts_succeed(struct sched *s, struct sched_ti *ti)
{
    if (s->on_success)
        s->on_success(s, ti);
    ts_finish(s, ti, TI_SUCCESS);
}

void
ts_run_ended(struct sched *s, struct sched_run *r)
{
    smet_run_ended(s, r);
    for (size_t i = 0; i < s->nrun_ended; i++)
        s->run_ended[i].fn(s->run_ended[i].ud, r);
}

void
ts_admit_runs(struct sched *s, struct sched_dag *sd)
{
    int max = sd->cur ? sd->cur->dag->max_active_runs : DAG_DEFAULT_MAX_ACTIVE_RUNS;
    for (struct sched_run *r = s->runs.next; r != &s->runs && sd->active_runs < max;
         r = r->next) {
        if (r->state == RUN_QUEUED && !strcmp(r->dag, sd->name)) {
            if (r->pinning)
                break; /* its image tags are being resolved: the runs after it wait too */
            ts_run_start(s, r);
        }
    }
}

void
ts_run_check_done(struct sched *s, struct sched_run *r)
{
    if (r->nfinished < r->ntis || sched_run_finished(r->state))
        return;
    bool ok = true;
    for (size_t i = 0; i < r->ntis; i++)
        if (r->tis[i].state != TI_SUCCESS && r->tis[i].state != TI_SKIPPED)
            ok = false;
    r->state = ok ? RUN_SUCCESS : RUN_FAILED;
    r->ended_at = clock_wall_ms();
    commit_run_dirty(s, r);
    LOG(LOG_INFO, "CAIRN-RUN-DONE", "run %s of %s %s", r->run_id, r->dag,
        sched_run_state_name(r->state));
    struct sched_dag *sd = runtab_dag(s, r);
    if (sd) {
        sd->active_runs--;
        ts_admit_runs(s, sd);
    }
    ts_run_ended(s, r);
}

/* Decide up to budget of r's task instances from where its start is;
 * returns how many it looked at. */
static size_t
ts__start_some(struct sched *s, struct sched_run *r, size_t budget)
{
    size_t seen = 0;
    if (budget > s->start_budget)
        budget = s->start_budget;
    for (; r->start_next < r->ntis && seen < budget && r->state == RUN_RUNNING; seen++) {
        struct sched_ti *ti = &r->tis[r->start_next++];
        if (ti->pending_up == 0)
            ts_evaluate(s, ti);
        /* a cleared group's instances that run again */
        for (size_t k = 0; ti->map && ti->map->expanded && !sched_ti_terminal(ti->state) &&
                           k < ti->map->created;
             k++)
            if (ti->map->inst[k].state == TI_PENDING && ti->map->inst[k].pending_up == 0)
                ts_evaluate(s, &ti->map->inst[k]);
    }
    s->start_budget -= seen;
    return seen;
}

void
ts_run_start(struct sched *s, struct sched_run *r)
{
    struct sched_dag *sd = runtab_dag(s, r);
    r->state = RUN_RUNNING;
    r->started_at = clock_wall_ms();
    commit_run_dirty(s, r);
    if (s->on_run_start)
        s->on_run_start(s, r);
    if (sd)
        sd->active_runs++;
    r->start_next = 0;
    ts__start_some(s, r, SCHED_CHUNK);
    if (r->start_next < r->ntis && r->state == RUN_RUNNING && !r->starting) {
        /* a big run: the rest a chunk per loop iteration (ts_start_step) */
        r->starting = true;
        xgrow((void **)&s->startq, &s->capstartq, s->nstartq + 1, sizeof(*s->startq));
        s->startq[s->nstartq++] = r;
        sched_more_work(s);
    }
}

void
ts_start_step(struct sched *s)
{
    size_t budget = SCHED_CHUNK, keep = 0;
    for (size_t i = 0; i < s->nstartq; i++) {
        struct sched_run *r = s->startq[i];
        if (budget)
            budget -= ts__start_some(s, r, budget);
        if (r->start_next < r->ntis && r->state == RUN_RUNNING)
            s->startq[keep++] = r;
        else
            r->starting = false;
    }
    s->nstartq = keep;
    if (keep)
        sched_more_work(s);
}

void
ts_attempt_failed(struct sched *s, struct sched_ti *ti)
{
    const struct dag_task *t = sched_task(ti);
    int counted = ti->attempts - ti->attempt_base - ti->lost;
    if (fsm_may_retry(counted, t->retries)) {
        ti->next_try_at =
            clock_wall_ms() +
            fsm_retry_delay(t->retry_delay_ms, t->retry_backoff, t->max_retry_delay_ms, counted);
        ts_set_state(s, ti, TI_UP_FOR_RETRY);
        rq_list_add(&s->retries, ti);
        LOG(LOG_INFO, "CAIRN-TASK-RETRY", "%s/%s/%s attempt %d failed (%s); retry in %" PRId64
            " ms", ti->run->dag, ti->run->run_id, t->name, ti->attempts,
            ti->error ? ti->error : "?", ti->next_try_at - clock_wall_ms());
    } else {
        LOG(LOG_INFO, "CAIRN-TASK-FAILED", "%s/%s/%s failed after %d attempt%s: %s",
            ti->run->dag, ti->run->run_id, t->name, ti->attempts, ti->attempts == 1 ? "" : "s",
            ti->error ? ti->error : "?");
        ts_finish(s, ti, TI_FAILED);
    }
}
