/* engine.c - the engine's lifecycle (engine.h): opening the store and the
 * artifact store, loading the DAG folder, recovery, the loop's timer and
 * prepare hook, a graceful stop, and the accessors the API uses. The
 * concerns themselves live in their own files (docs/architecture.md). */
#include "engine.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artifact.h"
#include "schedmetrics.h"
#include "cal.h"
#include "commit.h"
#include "core.h"
#include "dagdir.h"
#include "err.h"
#include "events.h"
#include "fanout.h"
#include "fs.h"
#include "gpualloc.h"
#include "imagepin.h"
#include "lease.h"
#include "log.h"
#include "readyq.h"
#include "records.h"
#include "deadline.h"
#include "notifier.h"
#include "recovery.h"
#include "registry.h"
#include "runs.h"
#include "runtab.h"
#include "stepcache.h"
#include "store.h"
#include "taskstate.h"
#include "util.h"

/* ---------- hooks ---------- */

void
sched_on_run_ended(struct sched *s, void (*fn)(void *ud, struct sched_run *r), void *ud)
{
    xgrow((void **)&s->run_ended, &s->caprun_ended, s->nrun_ended + 1, sizeof(*s->run_ended));
    s->run_ended[s->nrun_ended].fn = fn;
    s->run_ended[s->nrun_ended].ud = ud;
    s->nrun_ended++;
}

void
sched_on_tick(struct sched *s, void (*fn)(void *ud), void *ud)
{
    xgrow((void **)&s->ticks, &s->capticks, s->nticks + 1, sizeof(*s->ticks));
    s->ticks[s->nticks].fn = fn;
    s->ticks[s->nticks].ud = ud;
    s->nticks++;
}

void
sched_foreach_run(struct sched *s, void (*fn)(void *ud, struct sched_run *r), void *ud)
{
    for (struct sched_run *r = s->runs.next; r != &s->runs; r = r->next)
        fn(ud, r);
}

void
sched_set_backfills(struct sched *s, struct bf_set *bfs)
{
    s->bfs = bfs;
}

/* ---------- timers ---------- */

/* Retries whose delay is over go back to the ready queue. */
static void
retries_due(struct sched *s, int64_t wall)
{
    struct sched_ti *ti = s->retries.lnext;
    while (ti != &s->retries) {
        struct sched_ti *next = ti->lnext;
        if (ti->next_try_at <= wall) {
            rq_list_del(ti);
            ti->next_try_at = 0;
            ts_make_ready(s, ti);
        }
        ti = next;
    }
}

/* The store's pages that this process has read stay mapped (and in its RSS)
 * until it unmaps them: past SCHED_STORE_PAGES_MAX of them (the growth of
 * its file-backed pages, /proc/self/statm's third field, since the first
 * tick), unmap them all; what is read next is mapped again. */
static void
sched__store_pages(struct sched *s)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size, resident, shared;
    int got = f ? fscanf(f, "%ld %ld %ld", &size, &resident, &shared) : 0;
    if (f)
        fclose(f);
    if (got != 3)
        return;
    long page = sysconf(_SC_PAGESIZE);
    if (!s->mapped_base || shared < s->mapped_base)
        s->mapped_base = shared;
    if ((shared - s->mapped_base) * (page > 0 ? page : 4096) > (long)SCHED_STORE_PAGES_MAX &&
        store_release_pages(s->store) == 0)
        LOG(LOG_DEBUG, "CAIRN-STORE-PAGES", "unmapped %ld MB of the state store's pages",
            (shared - s->mapped_base) * (page > 0 ? page : 4096) >> 20);
}

static void
tick_cb(uv_timer_t *h)
{
    struct sched *s = h->data;
    int64_t now = clock_mono_ms(), wall = clock_wall_ms();
    if (s->last_tick && now - s->last_tick > 1000) {
        /* this loop was busy (a large publish, a slow disk): heartbeats that
         * came meanwhile are not read yet, so do not count the stall against
         * leases and workers */
        int64_t stall = now - s->last_tick - SCHED_TICK_MS;
        lease_extend_all(s, stall);
        LOG(LOG_WARN, "CAIRN-LOOP-STALL", "the scheduler's loop was busy for %" PRId64
            " ms; leases extended by as much", stall);
    }
    s->last_tick = now;

    if (now >= s->next_rescan) {
        dagdir_rescan(s);
        s->next_rescan = now + SCHED_RESCAN_MS;
    }
    if (now >= s->next_schedule) {
        runs_schedule(s);
        for (size_t i = 0; i < s->nticks; i++)
            s->ticks[i].fn(s->ticks[i].ud);
        sched__store_pages(s);
        s->next_schedule = now + 500;
    }
    if (s->degraded) /* held WORK replies cannot reach workers: no lease is lost meanwhile */
        lease_extend_all(s, SCHED_TICK_MS);
    lease_check_expired(s, now);
    retries_due(s, wall);
    lease_check_workers(s, now);
}

/* ---------- lifecycle ---------- */

static void
closed_one(struct sched *s)
{
    if (--s->closing_handles == 0 && s->stop_done)
        s->stop_done(s->stop_ud);
}

static void
handle_closed(uv_handle_t *h)
{
    closed_one(h->data);
}

int
sched_new(struct sched **out, uv_loop_t *loop, const struct sched_config *cfg, char *err,
          size_t errlen)
{
    struct sched *s = xcalloc(1, sizeof(*s));
    int rc;
    s->loop = loop;
    s->cfg = *cfg;
    uv_loop_configure(loop, UV_METRICS_IDLE_TIME); /* for sched_loop_stats */
    if (!s->cfg.lease_ttl_ms)
        s->cfg.lease_ttl_ms = 15000;
    if (!s->cfg.heartbeat_ms)
        s->cfg.heartbeat_ms = s->cfg.lease_ttl_ms / 3;
    if (!s->cfg.max_lost)
        s->cfg.max_lost = 3;
    s->runs.next = s->runs.prev = &s->runs;
    rq_list_init(&s->leases);
    rq_list_init(&s->retries);
    hmap_init(&s->versions);
    hmap_init(&s->runs_by_key);
    hmap_init(&s->lease_map);
    s->ended_attempts = json_object();
    s->start_budget = SCHED_CHUNK;
    s->epoch_ms = clock_wall_ms();
    smet_init(s);
    /* the pre-commit steps, in this order: expansion makes instances, cache
     * lookups may ready work, then workers waiting in a POLL get it */
    runs_idem_init(s);
    commit_add_step(s, ts_start_step);
    fan_init(s);
    sc_init(s);
    registry_init(s);
    ev_init(s);
    commit_add_step(s, lease_dispatch_parked);
    s->models_dir = cfg->models_dir ? xstrdup(cfg->models_dir)
                                    : xasprintf("%s/models", cfg->data_dir);
    if (s->models_dir[0] != '/') { /* published paths in the API are absolute */
        char cwd[4096];
        if (getcwd(cwd, sizeof(cwd))) {
            char *abs = xasprintf("%s/%s", cwd, s->models_dir);
            free(s->models_dir);
            s->models_dir = abs;
        }
    }
    const char *fake = getenv("CAIRN_NOW");
    if (fake && *fake) {
        int64_t secs;
        int ht, ho;
        if (cal_parse(fake, &secs, &ht, &ho) != 0 || !ho) {
            snprintf(err, errlen, "CAIRN_NOW must be an ISO 8601 instant with an offset, "
                                  "e.g. 2026-01-05T12:00:00Z");
            rc = CAIRN_EINVAL;
            goto fail;
        }
        s->clock_skew = secs - clock_wall_ms() / 1000;
        LOG(LOG_WARN, "CAIRN-FAKE-CLOCK", "test clock: schedules see now = %s", fake);
    }
    if (fs_mkdirs(cfg->data_dir) != 0) {
        snprintf(err, errlen, "cannot create %s: %s", cfg->data_dir, strerror(errno));
        rc = CAIRN_EIO;
        goto fail;
    }
    if ((rc = store_open(&s->store, cfg->data_dir, 0, err, errlen)) != 0)
        goto fail;
    store_set_max_size(s->store, cfg->max_state_size);
    {
        char *ad = cfg->artifacts ? xstrdup(cfg->artifacts)
                                  : xasprintf("%s/artifacts", cfg->data_dir);
        char aerr[512];
        rc = art_open_with(&s->art, ad, cfg->artifacts_opts, aerr, sizeof(aerr));
        free(ad);
        if (rc) {
            snprintf(err, errlen, "cannot open the artifact store: %s", aerr);
            goto fail;
        }
    }
    /* DAGs first (recovered runs may use the current versions), then runs */
    dagdir_rescan(s);
    s->next_rescan = clock_mono_ms() + SCHED_RESCAN_MS;
    rec_dags_load(s); /* paused flags and schedule cursors persist */
    if ((rc = rec_artidx_check(s)) != 0) {
        snprintf(err, errlen, "cannot index the artifact pointers: %s",
                 store_last_error(s->store));
        goto fail;
    }
    runs_idem_prune(s);
    if ((rc = recovery_run(s)) != 0) {
        snprintf(err, errlen, "cannot read state: %s", store_last_error(s->store));
        goto fail;
    }
    dl_init(s);
    if ((rc = ntf_init(s)) != 0) {
        snprintf(err, errlen, "cannot read notifications: %s", store_last_error(s->store));
        goto fail;
    }
    dl_recover(s);
    ntf_start(s);
    fan_start(s);
    uv_timer_init(loop, &s->tick);
    s->tick.data = s;
    uv_timer_start(&s->tick, tick_cb, SCHED_TICK_MS, SCHED_TICK_MS);
    uv_prepare_init(loop, &s->prepare);
    s->prepare.data = s;
    uv_prepare_start(&s->prepare, commit_prepare_cb);
    if (uv_fs_event_init(loop, &s->fsev) == 0) {
        s->fsev.data = s;
        if (uv_fs_event_start(&s->fsev, dagdir_fsev_cb, cfg->dags_dir, 0) == 0)
            s->fsev_on = true;
        else
            uv_close((uv_handle_t *)&s->fsev, NULL);
    }
    *out = s;
    return 0;
fail:
    sched_free(s);
    return rc;
}

void
sched_stop(struct sched *s, void (*done)(void *ud), void *ud)
{
    if (s->stopping)
        return;
    s->stopping = true;
    s->stop_done = done;
    s->stop_ud = ud;
    LOG(LOG_NOTICE, "CAIRN-STOP", "stopping: committing state and closing");
    /* answer parked polls, commit what is pending */
    for (size_t i = 0; i < s->nworkers; i++)
        lease_answer_parked(s, s->workers[i]);
    commit_final(s);
    s->closing_handles = 3 + (s->fsev_on ? 1 : 0) + s->npublishing + imagepin_stop(s);
    int nh = 0;
    ntf_stop(s, handle_closed, &nh);
    s->closing_handles += nh;
    dl_stop(s, handle_closed, &nh);
    s->closing_handles += nh;
    fan_stop(s, handle_closed);
    uv_timer_stop(&s->tick);
    uv_close((uv_handle_t *)&s->tick, handle_closed);
    uv_prepare_stop(&s->prepare);
    uv_close((uv_handle_t *)&s->prepare, handle_closed);
    if (s->fsev_on) {
        uv_fs_event_stop(&s->fsev);
        uv_close((uv_handle_t *)&s->fsev, handle_closed);
    }
    ev_stop(s);
}

void
sched_free(struct sched *s)
{
    if (!s)
        return;
    struct sched_run *r = s->runs.next;
    while (r && r != &s->runs) {
        struct sched_run *next = r->next;
        runtab_free(s, r);
        r = next;
    }
    runtab_free_dying(s);
    for (size_t i = 0; i < s->ndags; i++) {
        free(s->dags[i]->name);
        free(s->dags[i]->file);
        diag_list_free(&s->dags[i]->errors);
        free(s->dags[i]);
    }
    free(s->dags);
    for (size_t i = 0; i < s->versions.cap; i++) {
        if (s->versions.slots[i].key) {
            struct sched_dagver *dv = (struct sched_dagver *)(uintptr_t)s->versions.slots[i].val;
            dag_free(dv->dag);
            free(dv);
        }
    }
    hmap_free(&s->versions);
    hmap_free(&s->runs_by_key);
    hmap_free(&s->lease_map);
    for (size_t i = 0; i < s->nworkers; i++) {
        struct sched_worker *w = s->workers[i];
        free(w->name);
        free(w->host);
        for (size_t j = 0; j < w->nlabels; j++) {
            free(w->labels[j].key);
            free(w->labels[j].value);
        }
        free(w->labels);
        gpualloc_worker_free(w);
        json_decref(w->images);
        json_decref(w->direct_stores);
        free(w);
    }
    free(s->workers);
    free(s->challenges);
    free(s->heap);
    free(s->evalq);
    free(s->startq);
    free(s->dirty_dags);
    json_decref(s->ended_attempts);
    sc_free(s);
    registry_free(s);
    ntf_free(s);
    dl_free(s);
    ev_free(s);
    fan_free(s);
    imagepin_free(s);
    runs_idem_free(s);
    free(s->models_dir);
    free(s->replies);
    free(s->afters);
    free(s->parts);
    free(s->steps);
    free(s->run_ended);
    free(s->ticks);
    store_close(s->store);
    art_close(s->art);
    smet_free(s);
    free(s);
}

/* ---------- accessors for the API ---------- */

struct bf_set *
sched_backfills(struct sched *s)
{
    return s->bfs;
}

struct store *
sched_store(struct sched *s)
{
    return s->store;
}

size_t
sched_ndags(const struct sched *s)
{
    return s->ndags;
}

struct sched_dag *
sched_dag_at(struct sched *s, size_t i)
{
    return i < s->ndags ? s->dags[i] : NULL;
}

size_t
sched_nworkers(const struct sched *s)
{
    return s->nworkers;
}

struct sched_worker *
sched_worker_at(struct sched *s, size_t i)
{
    return i < s->nworkers ? s->workers[i] : NULL;
}

const char *
sched_data_dir(const struct sched *s)
{
    return s->cfg.data_dir;
}

const char *
sched_models_dir(const struct sched *s)
{
    return s->models_dir;
}

struct art_store *
sched_artifacts(struct sched *s)
{
    return s->art;
}

void
sched_worker_running(struct sched *s, const struct sched_worker *w, json_t *arr)
{
    for (struct sched_ti *ti = s->leases.lnext; ti != &s->leases; ti = ti->lnext) {
        if (ti->worker != w)
            continue;
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:i, s:I}", "dag", ti->run->dag,
                                             "run_id", ti->run->run_id, "task",
                                             sched_task(ti)->name, "attempt", ti->attempts,
                                             "lease_id", (json_int_t)ti->lease_id));
    }
}
