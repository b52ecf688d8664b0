/* taskstate.c - transitions of task instances and runs (taskstate.h). */
#include "taskstate.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commit.h"
#include "core.h"
#include "expr.h"
#include "fsm.h"
#include "log.h"
#include "readyq.h"
#include "runtab.h"
#include "util.h"

void
ts_set_state(struct sched *s, struct sched_ti *ti, enum ti_state st)
{
    /* the current attempt's record shows leased or running while the task
     * instance is: any way out of those (a success after publishing, a
     * publish that failed, a cancel) rewrites it */
    bool attempt_ends = (ti->state == TI_LEASED || ti->state == TI_RUNNING) && st != ti->state;
    ti->state = st;
    commit_ti_dirty(s, ti, attempt_ends && ti->attempts > 0);
}

void
ts_make_ready(struct sched *s, struct sched_ti *ti)
{
    ti->decided = true;
    ts_set_state(s, ti, TI_QUEUED);
    ti->queued_at = clock_wall_ms();
    rq_push(s, ti);
}

/* Values for `when`: upstream metrics and the run's params. */
static int
when_lookup(void *ud, const char *task, const char *name, struct expr_val *out)
{
    const struct sched_run *r = ud;
    const struct dag *d = r->dv->dag;
    if (task) {
        long idx = dag_task_index(d, task);
        json_t *m = idx < 0 ? NULL : json_object_get(r->tis[idx].metrics, name);
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

struct explain {
    const struct sched_run *run;
    const char *src;
    size_t done; /* bytes of src copied so far */
    struct sb sb;
};

/* Copy the source up to the end of this reference, then its value. */
static int
ts__explain_ref(void *ud, const char *task, const char *name, int pos)
{
    struct explain *x = ud;
    size_t end = (size_t)pos + (task ? strlen(task) + strlen(".metrics.") : strlen("params.")) +
                 strlen(name);
    if (end > strlen(x->src) || end < x->done)
        return 0;
    sb_append(&x->sb, x->src + x->done, end - x->done);
    x->done = end;
    struct expr_val v = {0};
    if (when_lookup((void *)x->run, task, name, &v) != 0)
        sb_puts(&x->sb, " (missing)");
    else if (v.type == EXPR_T_NUM)
        sb_printf(&x->sb, " (%.6g)", v.num);
    else if (v.type == EXPR_T_BOOL)
        sb_puts(&x->sb, v.b ? " (true)" : " (false)");
    else
        sb_printf(&x->sb, " (%s)", v.str);
    return 0;
}

/* "condition is false: " and the `when` source with the value of each
 * reference after it: `select.metrics.auc (0.7124) >= params.min_auc (0.75)`. */
static void
ts__explain(const struct sched_ti *ti, char *buf, size_t len)
{
    const struct dag_task *t = sched_task(ti);
    struct explain x = {ti->run, t->when, 0, {0}};
    sb_init(&x.sb);
    expr_foreach_ref(t->when_expr, ts__explain_ref, &x);
    sb_puts(&x.sb, t->when + x.done);
    snprintf(buf, len, "condition is false: %s", x.sb.buf ? x.sb.buf : t->when);
    sb_free(&x.sb);
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

void
ts_evaluate(struct sched *s, struct sched_ti *ti)
{
    if (ti->decided || ti->run->state != RUN_RUNNING)
        return;
    const struct dag_task *t = sched_task(ti);
    struct fsm_upstreams u = {.n = (int)t->nneeds};
    for (size_t i = 0; i < t->nneeds; i++) {
        enum ti_state us = ti->run->tis[t->needs[i]].state;
        fsm_count_one(&u, us);
    }
    enum ti_state out = fsm_decide(t->trigger_rule, &u);
    char err[512];
    const char *why = out == TI_SKIPPED ? "skipped by trigger rule" : "an upstream task failed";
    if (out == TI_UPSTREAM_FAILED) {
        why = ts__upstream_failure(ti, err, sizeof(err));
    }
    if (out == TI_QUEUED && t->when_expr) {
        /* the `when` gate, now that the upstreams are done */
        bool yes = false;
        if (expr_eval(t->when_expr, when_lookup, ti->run, &yes, err, sizeof(err)) != 0) {
            out = TI_FAILED;
            why = err;
        } else if (!yes) {
            out = TI_SKIPPED;
            ts__explain(ti, err, sizeof(err));
            why = err;
        }
    }
    if (out == TI_QUEUED) {
        if (t->cache) {
            /* looked up by the step cache before this iteration's commit
             * (stepcache.h): a hit finishes the task, which readies its
             * downstreams, and doing that here would recurse once per hit */
            ti->decided = true;
            xgrow((void **)&s->cache_q, &s->capcache_q, s->ncache_q + 1, sizeof(*s->cache_q));
            s->cache_q[s->ncache_q++] = ti;
            return;
        }
        ts_make_ready(s, ti);
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
    r->nfinished++;
    const struct dag_task *t = sched_task(ti);
    for (size_t i = 0; i < t->ndownstream; i++) {
        struct sched_ti *d = &r->tis[t->downstream[i]];
        d->pending_up--;
        xgrow((void **)&s->evalq, &s->capevalq, s->nevalq + 1, sizeof(*s->evalq));
        s->evalq[s->nevalq++] = d;
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
    for (size_t i = 0; i < s->nrun_ended; i++)
        s->run_ended[i].fn(s->run_ended[i].ud, r);
}

void
ts_admit_runs(struct sched *s, struct sched_dag *sd)
{
    int max = sd->cur ? sd->cur->dag->max_active_runs : DAG_DEFAULT_MAX_ACTIVE_RUNS;
    for (struct sched_run *r = s->runs.next; r != &s->runs && sd->active_runs < max;
         r = r->next) {
        if (r->state == RUN_QUEUED && !strcmp(r->dag, sd->name))
            ts_run_start(s, r);
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

void
ts_run_start(struct sched *s, struct sched_run *r)
{
    struct sched_dag *sd = runtab_dag(s, r);
    r->state = RUN_RUNNING;
    r->started_at = clock_wall_ms();
    commit_run_dirty(s, r);
    if (sd)
        sd->active_runs++;
    for (size_t i = 0; i < r->ntis; i++)
        if (r->tis[i].pending_up == 0)
            ts_evaluate(s, &r->tis[i]);
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
