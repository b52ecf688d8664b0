/* schedmetrics.c - the scheduler's Prometheus metrics (schedmetrics.h). */
#include "schedmetrics.h"

#include <fts.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core.h"
#include "hmap.h"
#include "metrics.h"
#include "store.h"
#include "util.h"

/* the artifact store is walked at most this often (a scrape every second
 * does not read the whole folder every second), or after a task succeeded
 * (it may have stored outputs) at most every SMET_ART_DIRTY_MS */
#define SMET_ART_WALK_MS 30000
#define SMET_ART_DIRTY_MS 1000

/* A walk of the artifact store on libuv's thread pool, so that a big
 * store does not stall the loop. It outlives the registry if the scheduler
 * stops meanwhile (owner is then NULL). */
struct smet__walk {
    uv_work_t req;
    struct smet *owner;
    char *dir;
    double bytes;
    bool ok;
};

struct smet {
    struct metrics *reg;
    struct metrics_family *task_instances, *task_finished, *runs, *runs_finished, *run_duration,
        *task_duration, *schedule_delay, *lease_expired, *workers, *slots, *gpus, *commit_seconds,
        *commit_batch, *loop_seconds, *http, *store_bytes, *art_bytes, *task_metric;
    int64_t art_walked_at;   /* monotonic ms, 0 = never */
    bool art_dirty;          /* a task succeeded since */
    struct smet__walk *walk; /* the walk on the thread pool, or NULL */
    bool seeded;             /* task metrics of earlier runs read */
    struct hmap live;        /* DAGs (owned names) a run of which finished since the start */
    double art_bytes_last;
};

void
smet_init(struct sched *s)
{
    struct smet *m = xcalloc(1, sizeof(*m));
    struct metrics *r = m->reg = metrics_new();
    const double *bl = metrics_buckets_long, *bs = metrics_buckets_short;
    size_t nl = metrics_nbuckets_long, ns = metrics_nbuckets_short;
    static const double batch[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000};
    m->task_instances =
        metrics_family(r, "cairn_task_instances", METRICS_GAUGE,
                       "Task instances of unfinished runs, by state.", "dag,state", NULL, 0);
    m->task_finished =
        metrics_family(r, "cairn_task_finished_total", METRICS_COUNTER,
                       "Task instances that reached a final state.", "dag,task,state", NULL, 0);
    m->runs = metrics_family(r, "cairn_runs", METRICS_GAUGE, "Unfinished runs, by state.",
                             "dag,state", NULL, 0);
    m->runs_finished = metrics_family(r, "cairn_runs_finished_total", METRICS_COUNTER,
                                      "Runs that finished, by final state.", "dag,state", NULL, 0);
    m->run_duration = metrics_family(r, "cairn_run_duration_seconds", METRICS_HISTOGRAM,
                                     "Time from a run's start to its end.", "dag", bl, nl);
    m->task_duration =
        metrics_family(r, "cairn_task_duration_seconds", METRICS_HISTOGRAM,
                       "Time from an attempt's start to its final state.", "dag,task", bl, nl);
    m->schedule_delay =
        metrics_family(r, "cairn_schedule_delay_seconds", METRICS_HISTOGRAM,
                       "Time a ready task instance waited for a lease.", "", bl, nl);
    m->lease_expired = metrics_family(r, "cairn_lease_expired_total", METRICS_COUNTER,
                                      "Leases that expired without a heartbeat.", "", NULL, 0);
    m->workers = metrics_family(r, "cairn_workers", METRICS_GAUGE,
                                "Workers known to the scheduler, by state.", "state", NULL, 0);
    m->slots = metrics_family(r, "cairn_worker_slots", METRICS_GAUGE,
                              "Task slots of live workers, free or used.", "state", NULL, 0);
    m->gpus = metrics_family(r, "cairn_worker_gpus", METRICS_GAUGE,
                             "GPUs of live workers, free or used.", "state", NULL, 0);
    m->commit_seconds = metrics_family(r, "cairn_commit_seconds", METRICS_HISTOGRAM,
                                       "Time to write one commit to the state store.", "", bs, ns);
    m->commit_batch = metrics_family(r, "cairn_commit_batch_size", METRICS_HISTOGRAM,
                                     "Task instances and runs written by one commit.", "", batch,
                                     sizeof(batch) / sizeof(batch[0]));
    m->loop_seconds = metrics_family(r, "cairn_loop_iteration_seconds", METRICS_HISTOGRAM,
                                     "Time the event loop was busy in one iteration.", "", bs, ns);
    m->http =
        metrics_family(r, "cairn_http_requests_total", METRICS_COUNTER,
                       "HTTP responses, by route pattern and status code.", "route,code", NULL, 0);
    m->store_bytes =
        metrics_family(r, "cairn_store_bytes", METRICS_GAUGE,
                       "The state store (LMDB): bytes used and the map size.", "kind", NULL, 0);
    m->art_bytes = metrics_family(r, "cairn_artifact_store_bytes", METRICS_GAUGE,
                                  "Bytes of the files in the artifact store.", "", NULL, 0);
    m->task_metric = metrics_family(r, "cairn_task_metric", METRICS_GAUGE,
                                    "Metrics from metrics.json of the latest finished run of "
                                    "each DAG.",
                                    "dag,task,name", NULL, 0);
    hmap_init(&m->live);
    s->smet = m;
}

void
smet_free(struct sched *s)
{
    if (!s->smet)
        return;
    if (s->smet->walk)
        s->smet->walk->owner = NULL; /* it frees itself when it is done */
    metrics_free(s->smet->reg);
    for (size_t i = 0; i < s->smet->live.cap; i++)
        free((char *)s->smet->live.slots[i].key);
    hmap_free(&s->smet->live);
    free(s->smet);
    s->smet = NULL;
}

/* A DAG with more tasks than this has its per-task series under one task
 * label (docs/operations.md). */
#define SMET_TASK_SERIES_MAX 1000
#define SMET_TASK_FOLDED "_all"

static const char *
smet__task(const struct sched_ti *ti)
{
    const struct sched_run *r = ti->run;
    if (!r || !r->dv || !r->dv->dag || ti->idx >= r->dv->dag->ntasks)
        return "";
    /* bounded cardinality: a DAG of very many tasks is one series, not a
     * series (and a histogram) per task */
    if (r->dv->dag->ntasks > SMET_TASK_SERIES_MAX)
        return SMET_TASK_FOLDED;
    return r->dv->dag->tasks[ti->idx].name;
}

void
smet_ti_state(struct sched *s, const struct sched_ti *ti, enum ti_state old, enum ti_state st)
{
    struct smet *m = s->smet;
    if (!m || old == st || ti->map) /* a group's instances are counted, not the group */
        return;
    const char *dag = ti->run ? ti->run->dag : "";
    int64_t now = clock_wall_ms();
    if (st == TI_SUCCESS)
        m->art_dirty = true;
    if (st == TI_LEASED && old == TI_QUEUED && ti->queued_at > 0 && now >= ti->queued_at)
        metrics_observe(m->schedule_delay, NULL, (double)(now - ti->queued_at) / 1000.0);
    if (sched_ti_terminal(st) || st == TI_UP_FOR_RETRY) {
        const char *task = smet__task(ti);
        if (sched_ti_terminal(st))
            metrics_add(m->task_finished, (const char *[]){dag, task, sched_ti_state_name(st)}, 1);
        if ((old == TI_RUNNING || old == TI_LEASED) && ti->started_at > 0 && now >= ti->started_at)
            metrics_observe(m->task_duration, (const char *[]){dag, task},
                            (double)(now - ti->started_at) / 1000.0);
    }
}

void
smet_run_ended(struct sched *s, const struct sched_run *r)
{
    struct smet *m = s->smet;
    if (!m)
        return;
    metrics_add(m->runs_finished, (const char *[]){r->dag, sched_run_state_name(r->state)}, 1);
    if (r->started_at > 0 && r->ended_at >= r->started_at)
        metrics_observe(m->run_duration, (const char *[]){r->dag},
                        (double)(r->ended_at - r->started_at) / 1000.0);
    if (r->state == RUN_CANCELLED)
        return;
    metrics_drop(m->task_metric, 0, r->dag);
    if (!hmap_get(&m->live, r->dag, NULL))
        hmap_put(&m->live, xstrdup(r->dag), 1);
    for (size_t i = 0; i < r->ntis; i++) {
        const struct sched_ti *ti = &r->tis[i];
        const char *name;
        json_t *v;
        if (!json_is_object(ti->metrics))
            continue;
        json_object_foreach(ti->metrics, name, v)
        {
            if (json_is_number(v))
                metrics_set(m->task_metric, (const char *[]){r->dag, smet__task(ti), name},
                            json_number_value(v));
        }
    }
}

void
smet_task_metric(struct sched *s, const char *dag, const char *task, const char *name, double v)
{
    if (s->smet)
        metrics_set(s->smet->task_metric, (const char *[]){dag, task, name}, v);
}

void
smet_task_metrics_forget(struct sched *s, const char *dag)
{
    if (s->smet)
        metrics_drop(s->smet->task_metric, 0, dag);
}

bool
smet_task_metrics_live(const struct sched *s, const char *dag)
{
    return s->smet && hmap_get(&s->smet->live, dag, NULL);
}

bool
smet_task_metrics_unseeded(const struct sched *s)
{
    return s->smet && !s->smet->seeded;
}

void
smet_task_metrics_seeded(struct sched *s)
{
    if (s->smet)
        s->smet->seeded = true;
}

void
smet_lease_expired(struct sched *s)
{
    if (s->smet)
        metrics_add(s->smet->lease_expired, NULL, 1);
}

void
smet_commit(struct sched *s, double seconds, size_t batch)
{
    if (!s->smet)
        return;
    metrics_observe(s->smet->commit_seconds, NULL, seconds);
    metrics_observe(s->smet->commit_batch, NULL, (double)batch);
}

void
smet_iteration(struct sched *s, double seconds)
{
    if (s->smet)
        metrics_observe(s->smet->loop_seconds, NULL, seconds);
}

void
smet_http(void *ud, const char *route, int status)
{
    struct sched *s = ud;
    if (!s || !s->smet)
        return;
    char code[8];
    snprintf(code, sizeof(code), "%d", status);
    /* a path no route has is one label value, whatever was asked */
    metrics_add(s->smet->http, (const char *[]){route ? route : "(none)", code}, 1);
}

static void
smet__walk_work(uv_work_t *req)
{
    struct smet__walk *w = req->data;
    char *argv[] = {w->dir, NULL};
    FTS *f = fts_open(argv, FTS_PHYSICAL | FTS_NOCHDIR, NULL);
    if (!f)
        return;
    FTSENT *e;
    while ((e = fts_read(f)))
        if (e->fts_info == FTS_F && e->fts_statp)
            w->bytes += (double)e->fts_statp->st_size;
    w->ok = true;
    fts_close(f);
}

static void
smet__walk_done(uv_work_t *req, int status)
{
    struct smet__walk *w = req->data;
    if (w->owner) {
        if (status == 0 && w->ok)
            w->owner->art_bytes_last = w->bytes;
        w->owner->walk = NULL;
    }
    free(w->dir);
    free(w);
}

static void
smet__walk_start(struct sched *s)
{
    struct smet__walk *w = xcalloc(1, sizeof(*w));
    w->owner = s->smet;
    w->dir = xasprintf("%s/artifacts", s->cfg.data_dir);
    w->req.data = w;
    if (uv_queue_work(s->loop, &w->req, smet__walk_work, smet__walk_done) != 0) {
        free(w->dir);
        free(w);
        return;
    }
    s->smet->walk = w;
}

static void
smet__gauges(struct sched *s)
{
    struct smet *m = s->smet;
    metrics_clear(m->task_instances);
    metrics_clear(m->runs);
    metrics_clear(m->workers);
    metrics_clear(m->slots);
    metrics_clear(m->gpus);
    metrics_clear(m->store_bytes);
    for (struct sched_run *r = s->runs.next; r != &s->runs; r = r->next) {
        metrics_add(m->runs, (const char *[]){r->dag, sched_run_state_name(r->state)}, 1);
        for (size_t i = 0; i < r->ntis; i++) {
            const struct sched_ti *ti = &r->tis[i];
            if (!ti->map) {
                metrics_add(m->task_instances,
                            (const char *[]){r->dag, sched_ti_state_name(ti->state)}, 1);
                continue;
            }
            /* a group's instances by their counts, not one by one (100,000
             * of them at each scrape) */
            for (int st = 0; st < TI_NSTATES; st++)
                if (ti->map->count[st])
                    metrics_add(m->task_instances,
                                (const char *[]){r->dag, sched_ti_state_name((enum ti_state)st)},
                                ti->map->count[st]);
        }
    }
    double alive = 0, dead = 0, sfree = 0, sused = 0, gfree = 0, gused = 0;
    for (size_t i = 0; i < s->nworkers; i++) {
        const struct sched_worker *w = s->workers[i];
        if (!w->alive) {
            dead++;
            continue;
        }
        alive++;
        sused += w->busy;
        sfree += w->slots > w->busy ? w->slots - w->busy : 0;
        for (size_t g = 0; g < w->ngpus; g++) {
            if (w->gpus[g].lease_id)
                gused++;
            else
                gfree++;
        }
    }
    metrics_set(m->workers, (const char *[]){"alive"}, alive);
    metrics_set(m->workers, (const char *[]){"dead"}, dead);
    metrics_set(m->slots, (const char *[]){"free"}, sfree);
    metrics_set(m->slots, (const char *[]){"used"}, sused);
    metrics_set(m->gpus, (const char *[]){"free"}, gfree);
    metrics_set(m->gpus, (const char *[]){"used"}, gused);
    size_t used = 0, map = 0;
    if (store_usage(s->store, &used, &map) == 0) {
        metrics_set(m->store_bytes, (const char *[]){"used"}, (double)used);
        metrics_set(m->store_bytes, (const char *[]){"map"}, (double)map);
    }
    int64_t now = clock_mono_ms();
    if (!m->walk && s->loop &&
        (!m->art_walked_at || now - m->art_walked_at >= SMET_ART_WALK_MS ||
         (m->art_dirty && now - m->art_walked_at >= SMET_ART_DIRTY_MS))) {
        /* the figure of the last walk is shown; this one's at a later scrape */
        m->art_dirty = false;
        m->art_walked_at = now;
        smet__walk_start(s);
    }
    metrics_set(m->art_bytes, NULL, m->art_bytes_last);
}

char *
smet_render(struct sched *s, size_t *len)
{
    if (!s->smet)
        smet_init(s);
    smet__gauges(s);
    return metrics_render(s->smet->reg, len);
}
