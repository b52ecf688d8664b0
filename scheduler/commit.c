/* commit.c - dirty marks, held replies and the group commit (commit.h). */
#include "commit.h"

#include <inttypes.h>
#include <stdlib.h>
#include <time.h>

#include "core.h"
#include "err.h"
#include "log.h"
#include "records.h"
#include "runtab.h"
#include "schedmetrics.h"
#include "store.h"
#include "util.h"
#include "wire.h"

/* ti changed: number the change (for ?changes_after) */
static void
commit__note_change(struct sched *s, struct sched_ti *ti)
{
    ti->change_seq = ++s->change_seq;
    if (ti->parent)
        ti->parent->change_seq = ti->change_seq; /* its counts changed */
    if (ti->run)
        ti->run->change_seq = ti->change_seq;
}

void
commit_ti_dirty(struct sched *s, struct sched_ti *ti, bool attempt)
{
    commit__note_change(s, ti);
    if (!ti->dirty) {
        ti->dirty = true;
        ti->dirty_next = s->dirty_tis;
        s->dirty_tis = ti;
    }
    if (attempt)
        ti->attempt_dirty = true;
}

void
commit_ti_lazy(struct sched *s, struct sched_ti *ti)
{
    commit__note_change(s, ti);
    ti->attempt_dirty = true;
    if (ti->dirty || ti->lazy)
        return;
    ti->lazy = true;
    ti->lazy_next = s->lazy_tis;
    s->lazy_tis = ti;
    if (!s->lazy_since)
        s->lazy_since = clock_mono_ms();
}

/* The lazy changes join the commit about to be made. */
static void
commit__take_lazy(struct sched *s)
{
    while (s->lazy_tis) {
        struct sched_ti *ti = s->lazy_tis;
        s->lazy_tis = ti->lazy_next;
        ti->lazy = false;
        ti->lazy_next = NULL;
        bool attempt = ti->attempt_dirty;
        commit_ti_dirty(s, ti, attempt);
    }
    s->lazy_since = 0;
}

void
commit_run_dirty(struct sched *s, struct sched_run *r)
{
    if (!r->dirty) {
        r->dirty = true;
        r->dirty_next = s->dirty_runs;
        s->dirty_runs = r;
    }
}

void
commit_dag_dirty(struct sched *s, struct sched_dag *d)
{
    for (size_t i = 0; i < s->ndirty_dags; i++)
        if (s->dirty_dags[i] == d)
            return;
    xgrow((void **)&s->dirty_dags, &s->capdirty_dags, s->ndirty_dags + 1,
          sizeof(*s->dirty_dags));
    s->dirty_dags[s->ndirty_dags++] = d;
}

void
commit_reply(struct sched *s, struct wire_req *req, int type, json_t *body)
{
    if (req->batch) { /* an item of a BATCH: its answer is one of the results */
        json_array_append_new(req->batch, body);
        return;
    }
    xgrow((void **)&s->replies, &s->capreplies, s->nreplies + 1, sizeof(*s->replies));
    s->replies[s->nreplies].req = req;
    s->replies[s->nreplies].type = type;
    s->replies[s->nreplies].body = body;
    s->nreplies++;
}

void
sched_after_commit(struct sched *s, void (*fn)(void *ud, bool ok), void *ud)
{
    xgrow((void **)&s->afters, &s->capafters, s->nafters + 1, sizeof(*s->afters));
    s->afters[s->nafters].fn = fn;
    s->afters[s->nafters].ud = ud;
    s->nafters++;
}

void
sched_add_participant(struct sched *s, const struct sched_participant *p)
{
    xgrow((void **)&s->parts, &s->capparts, s->nparts + 1, sizeof(*s->parts));
    s->parts[s->nparts++] = *p;
}

void
commit_add_step(struct sched *s, void (*fn)(struct sched *s))
{
    xgrow((void **)&s->steps, &s->capsteps, s->nsteps + 1, sizeof(*s->steps));
    s->steps[s->nsteps++].fn = fn;
}

void
commit_run_steps(struct sched *s)
{
    for (size_t i = 0; i < s->nsteps; i++)
        s->steps[i].fn(s);
}

static void commit__prepare(struct sched *s);

static bool
commit__dirty(struct sched *s)
{
    if (s->dirty_runs || s->dirty_tis || s->ndirty_dags || s->lease_seq_dirty ||
        json_object_size(s->ended_attempts))
        return true;
    for (size_t i = 0; i < s->nparts; i++)
        if (s->parts[i].dirty(s->parts[i].ud))
            return true;
    return false;
}

/* Everything dirty, in one write transaction. */
static int
commit__write(struct sched *s)
{
    struct store_txn *t = NULL;
    int rc = store_txn_begin(s->store, true, &t);
    if (rc)
        return rc;
    rc = rec_flush(s, t);
    for (size_t i = 0; i < s->nparts && !rc; i++)
        if (s->parts[i].dirty(s->parts[i].ud))
            rc = s->parts[i].flush(s->parts[i].ud, t);
    if (rc) {
        store_txn_abort(t);
        return rc;
    }
    return store_txn_commit(t);
}

static void
commit__clear(struct sched *s)
{
    while (s->dirty_runs) {
        struct sched_run *r = s->dirty_runs;
        s->dirty_runs = r->dirty_next;
        r->dirty = false;
        r->dirty_next = NULL;
    }
    while (s->dirty_tis) {
        struct sched_ti *ti = s->dirty_tis;
        s->dirty_tis = ti->dirty_next;
        ti->dirty = ti->attempt_dirty = ti->artifacts_dirty = false;
        ti->dirty_next = NULL;
    }
    json_object_clear(s->ended_attempts);
    s->ndirty_dags = 0;
    s->lease_seq_dirty = false;
    for (size_t i = 0; i < s->nparts; i++)
        s->parts[i].clear(s->parts[i].ud);
}

static void
commit__answer_afters(struct sched *s, bool ok)
{
    size_t na = s->nafters;
    struct sched_after *af = s->afters;
    s->afters = NULL;
    s->nafters = s->capafters = 0;
    for (size_t i = 0; i < na; i++)
        af[i].fn(af[i].ud, ok);
    free(af);
}

static void
commit__deliver(struct sched *s, bool ok)
{
    size_t n = s->nreplies;
    struct sched_reply *rp = s->replies;
    s->replies = NULL;
    s->nreplies = s->capreplies = 0;
    for (size_t i = 0; i < n; i++) {
        if (ok)
            s->cfg.link.reply(rp[i].req, rp[i].type, rp[i].body);
        else
            s->cfg.link.drop(rp[i].req);
        json_decref(rp[i].body);
    }
    free(rp);
    commit__answer_afters(s, ok);
}

/* Commit what is dirty and answer what waited for it. false if the commit
 * failed (everything is kept for the next try). */
static bool
commit__once(struct sched *s)
{
    if (commit__dirty(s)) {
        size_t batch = 0;
        for (struct sched_ti *ti = s->dirty_tis; ti; ti = ti->dirty_next)
            batch++;
        for (struct sched_run *r = s->dirty_runs; r; r = r->dirty_next)
            batch++;
        uint64_t t0 = uv_hrtime();
        int rc = commit__write(s);
        uint64_t took = uv_hrtime() - t0;
        s->iter_commit_ns += took;
        s->iter_commit_records += batch;
        smet_commit(s, (double)took / 1e9, batch);
        if (rc) {
            LOG(LOG_ERR, rc == CAIRN_EFULL ? "CAIRN-STORE-FULL" : "CAIRN-STORE-ERROR",
                "cannot commit state (%s: %s); holding %zu worker replies and retrying in 1s",
                cairn_strerror(rc), store_last_error(s->store), s->nreplies);
            s->degraded = true;
            snprintf(s->degraded_why, sizeof(s->degraded_why), "%s: %s", cairn_strerror(rc),
                     store_last_error(s->store));
            /* clients are not kept waiting on a commit that failed: they are
             * answered 503 now (what they asked is kept and committed when
             * the store takes writes again; an Idempotency-Key makes their
             * retry safe), while workers' replies wait for the commit */
            commit__answer_afters(s, false);
            return false;
        }
        commit__clear(s);
        if (s->degraded) {
            LOG(LOG_NOTICE, "CAIRN-STORE-OK", "the state store takes writes again");
            s->degraded = false;
            s->degraded_why[0] = '\0';
        }
    }
    commit__deliver(s, true);
    runtab_evict_finished(s);
    return true;
}

/* The iteration that ends now: how long the loop was busy since the last
 * one ended (its wall time less the time it waited for events). */
static int64_t
commit__thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
commit__iteration(struct sched *s)
{
    uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(s->loop);
    int64_t cpu_now = commit__thread_cpu_ns();
    if (s->iter_end_ns) {
        uint64_t wall = now - s->iter_end_ns, waited = idle - s->iter_idle_ns;
        uint64_t busy_ns = wall > waited ? wall - waited : 0;
        int64_t busy = (int64_t)(busy_ns / 1000000);
        int64_t cpu = (cpu_now - s->iter_cpu_ns) / 1000000;
        smet_iteration(s, (double)busy_ns / 1e9);
        if (busy > s->iter_max_ms)
            s->iter_max_ms = busy;
        if (busy > s->iter_window_max_ms)
            s->iter_window_max_ms = busy;
        if (cpu > s->iter_cpu_max_ms)
            s->iter_cpu_max_ms = cpu;
        if (cpu > s->iter_cpu_window_max_ms)
            s->iter_cpu_window_max_ms = cpu;
        if (busy >= SCHED_SLOW_ITERATION_MS)
            LOG(LOG_WARN, "CAIRN-LOOP-SLOW", "a loop iteration took %" PRId64 " ms, %" PRId64
                " ms of it the loop's own CPU time (nothing else was served meanwhile); %" PRIu64
                " ms in the commit (%zu records), %" PRIu64 " ms freeing finished runs", busy,
                cpu, s->iter_commit_ns / 1000000, s->iter_commit_records,
                s->iter_evict_ns / 1000000);
    }
    int64_t mono = clock_mono_ms();
    if (mono - s->iter_window_start >= 60000) {
        s->iter_prev_window_max_ms = s->iter_window_max_ms;
        s->iter_window_max_ms = 0;
        s->iter_cpu_prev_window_max_ms = s->iter_cpu_window_max_ms;
        s->iter_cpu_window_max_ms = 0;
        s->iter_window_start = mono;
    }
    s->iter_cpu_ns = commit__thread_cpu_ns();
    s->iter_commit_ns = s->iter_evict_ns = 0;
    s->start_budget = SCHED_CHUNK;
    s->iter_commit_records = 0;
    s->iterations++;
    s->iter_end_ns = uv_hrtime();
    s->iter_idle_ns = idle;
}

void
commit_prepare_cb(uv_prepare_t *h)
{
    struct sched *s = h->data;
    commit__prepare(s);
    uint64_t t0 = uv_hrtime();
    runtab_free_some(s);
    s->iter_evict_ns += uv_hrtime() - t0;
    commit__iteration(s);
}

static void
commit__prepare(struct sched *s)
{
    commit_run_steps(s);
    /* lazy changes ride along with a commit made anyway, or get one of
     * their own once they have waited long enough */
    if (s->lazy_tis &&
        (commit__dirty(s) || clock_mono_ms() - s->lazy_since >= SCHED_LAZY_COMMIT_MS))
        commit__take_lazy(s);
    if (!s->nreplies && !s->nafters && !commit__dirty(s))
        return;
    if (clock_mono_ms() < s->flush_retry_at && commit__dirty(s))
        return;
    if (!commit__once(s))
        s->flush_retry_at = clock_mono_ms() + 1000;
}

void
sched_change_cursor(const struct sched *s, int64_t *epoch_ms, uint64_t *seq)
{
    *epoch_ms = s->epoch_ms;
    *seq = s->change_seq;
}

bool
sched_degraded(const struct sched *s, const char **why)
{
    if (why)
        *why = s->degraded_why;
    return s->degraded;
}

void
sched_loop_stats(const struct sched *s, int64_t *max_ms, int64_t *recent_max_ms,
                 uint64_t *iterations)
{
    *max_ms = s->iter_max_ms;
    *recent_max_ms = s->iter_window_max_ms > s->iter_prev_window_max_ms
                         ? s->iter_window_max_ms
                         : s->iter_prev_window_max_ms;
    *iterations = s->iterations;
}

void
sched_loop_cpu_stats(const struct sched *s, int64_t *max_ms, int64_t *recent_max_ms)
{
    *max_ms = s->iter_cpu_max_ms;
    *recent_max_ms = s->iter_cpu_window_max_ms > s->iter_cpu_prev_window_max_ms
                         ? s->iter_cpu_window_max_ms
                         : s->iter_cpu_prev_window_max_ms;
}

void
commit_final(struct sched *s)
{
    s->flush_retry_at = 0;
    commit_run_steps(s);
    commit__take_lazy(s);
    if (!commit__once(s))
        commit__deliver(s, false); /* answer nothing durable: drop the requests */
}
