/* deadline.c - deadlines on a heap and one timer (deadline.h). */
#include "deadline.h"

#include <stdlib.h>
#include <string.h>

#include "commit.h"
#include "core.h"
#include "log.h"
#include "notifier.h"
#include "notify.h"
#include "util.h"

struct dl_entry {
    int64_t at;      /* wall ms */
    char *run_key;   /* "dag SEP run_id" */
    long task;       /* task index, or -1 for the run */
    int64_t started; /* the start it was armed for (a later attempt re-arms) */
};

struct dl_set {
    struct dl_entry *heap;
    size_t n, cap;
    uv_timer_t timer;
    bool on;
};

static void
dl__swap(struct dl_entry *a, struct dl_entry *b)
{
    struct dl_entry t = *a;
    *a = *b;
    *b = t;
}

static void
dl__push(struct dl_set *d, struct dl_entry e)
{
    xgrow((void **)&d->heap, &d->cap, d->n + 1, sizeof(*d->heap));
    size_t i = d->n++;
    d->heap[i] = e;
    while (i && d->heap[(i - 1) / 2].at > d->heap[i].at) {
        dl__swap(&d->heap[(i - 1) / 2], &d->heap[i]);
        i = (i - 1) / 2;
    }
}

static struct dl_entry
dl__pop(struct dl_set *d)
{
    struct dl_entry top = d->heap[0];
    d->heap[0] = d->heap[--d->n];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < d->n && d->heap[l].at < d->heap[m].at)
            m = l;
        if (r < d->n && d->heap[r].at < d->heap[m].at)
            m = r;
        if (m == i)
            break;
        dl__swap(&d->heap[i], &d->heap[m]);
        i = m;
    }
    return top;
}

static void dl__timer_cb(uv_timer_t *t);

static void
dl__arm_timer(struct sched *s)
{
    struct dl_set *d = s->dl;
    if (!d || !d->on || s->stopping)
        return;
    uv_timer_stop(&d->timer);
    if (!d->n)
        return;
    int64_t now = clock_wall_ms(), wait = d->heap[0].at - now;
    uv_timer_start(&d->timer, dl__timer_cb, wait > 0 ? (uint64_t)wait : 0, 0);
}

static void
dl__add(struct sched *s, int64_t at, const char *run_key, long task, int64_t started)
{
    struct dl_set *d = s->dl;
    if (!d || !at)
        return;
    struct dl_entry e = {at, xstrdup(run_key), task, started};
    bool earliest = !d->n || at < d->heap[0].at;
    dl__push(d, e);
    if (earliest)
        dl__arm_timer(s);
}

static bool
dl__ti_running(const struct sched_ti *ti)
{
    return ti->state == TI_LEASED || ti->state == TI_RUNNING;
}

static void
dl__fire(struct sched *s, const struct dl_entry *e, int64_t now)
{
    size_t idx;
    if (!hmap_get(&s->runs_by_key, e->run_key, &idx))
        return; /* finished and evicted */
    struct sched_run *r = (struct sched_run *)(uintptr_t)idx;
    if (r->state != RUN_RUNNING && r->state != RUN_QUEUED)
        return;
    if (e->task < 0) {
        if (r->deadline_missed_at)
            return;
        r->deadline_missed_at = now;
        commit_run_dirty(s, r);
        LOG(LOG_WARN, "CAIRN-DEADLINE-MISSED", "run %s of %s missed its deadline", r->run_id,
            r->dag);
        ntf_deadline_missed(s, r, NULL, e->at);
        return;
    }
    if ((size_t)e->task >= r->ntis)
        return;
    struct sched_ti *ti = &r->tis[e->task];
    if (!dl__ti_running(ti) || ti->deadline_missed_at || ti->started_at != e->started)
        return;
    ti->deadline_missed_at = now;
    commit_ti_dirty(s, ti, false);
    LOG(LOG_WARN, "CAIRN-DEADLINE-MISSED", "%s/%s/%s missed its deadline", r->dag, r->run_id,
        sched_task(ti)->name);
    ntf_deadline_missed(s, r, ti, e->at);
}

static void
dl__timer_cb(uv_timer_t *t)
{
    struct sched *s = t->data;
    struct dl_set *d = s->dl;
    int64_t now = clock_wall_ms();
    while (d->n && d->heap[0].at <= now) {
        struct dl_entry e = dl__pop(d);
        dl__fire(s, &e, now);
        free(e.run_key);
    }
    dl__arm_timer(s);
}

static void
dl__arm_run(struct sched *s, struct sched_run *r)
{
    const struct dag_deadline *dd = &r->dv->dag->deadline;
    if (dd->kind == DAG_DEADLINE_NONE || r->deadline_missed_at)
        return;
    dl__add(s, notify_deadline_at(dd, r->logical_date, r->started_at), r->key, -1, r->started_at);
}

static void
dl__arm_ti(struct sched *s, struct sched_ti *ti)
{
    const struct dag_deadline *dd = &sched_task(ti)->deadline;
    if (dd->kind == DAG_DEADLINE_NONE || ti->parent || ti->deadline_missed_at || !ti->started_at)
        return;
    dl__add(s, notify_deadline_at(dd, ti->run->logical_date, ti->started_at), ti->run->key,
            (long)ti->idx, ti->started_at);
}

void
dl_run_started(struct sched *s, struct sched_run *r)
{
    /* a run cleared and started again may miss its deadline again */
    if (r->deadline_missed_at) {
        r->deadline_missed_at = 0;
        commit_run_dirty(s, r);
    }
    dl__arm_run(s, r);
}

void
dl_run_ended(struct sched *s, struct sched_run *r)
{
    (void)s, (void)r; /* its entries are dropped when they fall */
}

void
dl_ti_state(struct sched *s, struct sched_ti *ti, enum ti_state from, enum ti_state to)
{
    /* a lease starts the clock, the worker's STARTED sets it again (the
     * entry of the lease then no longer matches started_at) */
    if ((to == TI_LEASED || to == TI_RUNNING) && from != to)
        dl__arm_ti(s, ti);
    else if (to == TI_PENDING || to == TI_QUEUED)
        ti->deadline_missed_at = 0; /* cleared: runs again */
}

void
dl_init(struct sched *s)
{
    struct dl_set *d = xcalloc(1, sizeof(*d));
    s->dl = d;
    uv_timer_init(s->loop, &d->timer);
    d->timer.data = s;
    d->on = true;
}

void
dl_recover(struct sched *s)
{
    for (struct sched_run *r = s->runs.next; r != &s->runs; r = r->next) {
        if (r->state == RUN_RUNNING || r->state == RUN_QUEUED)
            dl__arm_run(s, r);
        for (size_t i = 0; i < r->ntis; i++)
            if (dl__ti_running(&r->tis[i]))
                dl__arm_ti(s, &r->tis[i]);
    }
}

void
dl_stop(struct sched *s, uv_close_cb closed, int *nhandles)
{
    struct dl_set *d = s->dl;
    *nhandles = 0;
    if (!d || !d->on)
        return;
    d->on = false;
    uv_timer_stop(&d->timer);
    uv_close((uv_handle_t *)&d->timer, closed);
    *nhandles = 1;
}

void
dl_free(struct sched *s)
{
    struct dl_set *d = s->dl;
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        free(d->heap[i].run_key);
    free(d->heap);
    free(d);
    s->dl = NULL;
}
