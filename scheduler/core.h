/* core.h - the scheduling engine's own state (struct sched) and the hooks
 * its files use to call each other without cycles. Included by the engine's
 * files only (commit, records, dagtab, dagdir, readyq, runtab, taskstate,
 * stepcache, pubjob, lease, logs, handlers, recovery, runs, gc, events, engine);
 * the API and the composition root see engine.h.
 *
 * Everything here is owned by the libuv loop thread: no locks.
 */
#ifndef CAIRN_SCHED_CORE_H
#define CAIRN_SCHED_CORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "engine.h"
#include "hmap.h"
#include "model.h"
#include "util.h"

#define SCHED_TICK_MS 100
#define SCHED_RESCAN_MS 2000
#define SCHED_POLL_WAIT_MAX_MS 10000
/* Task instances decided or made per loop iteration when a big run starts
 * or a mapped task expands: a chunk stays well under 50 ms. */
#define SCHED_CHUNK 4096
/* An iteration this long is logged (CAIRN-LOOP-SLOW). */
#define SCHED_SLOW_ITERATION_MS 100
/* The pages of the state store's file the scheduler has mapped (they count
 * in its RSS) are unmapped once they exceed this; the page cache keeps them */
#define SCHED_STORE_PAGES_MAX (64u << 20)
/* a worker gets leases beyond its free slots (its prefetch) only while its
 * tasks have lately run shorter than this: a queued lease never waits long
 * behind a running task that another worker could have started at once */
#define SCHED_PREFETCH_MAX_TASK_MS 1000
/* a task instance whose change need not be durable before any answer
 * (leased -> running) is committed with the next commit, at the latest
 * this long after the change */
#define SCHED_LAZY_COMMIT_MS 50

struct art_store;
struct smet;
struct ev_set;
struct cache_index;
struct store_txn;
struct ntf;
struct dl_set;
struct pin_set;


/* Work done on every loop iteration before the commit, in registration
 * order (the step cache's lookups, then handing ready work to workers that
 * wait in a POLL), so what they change goes into the same commit. */
struct sched_step {
    void (*fn)(struct sched *s);
};

struct sched_run_hook {
    void (*fn)(void *ud, struct sched_run *r);
    void *ud;
};

struct sched_tick_hook {
    void (*fn)(void *ud);
    void *ud;
};

struct sched_after {
    void (*fn)(void *ud, bool ok);
    void *ud;
};

struct sched_reply {
    struct wire_req *req;
    int type;
    json_t *body;
};

/* A connection's challenge: a HELLO on it must carry nonce (handlers.c). */
struct sched_challenge {
    uint32_t pipe;
    char nonce[33];
};

struct sched {
    uv_loop_t *loop;
    struct sched_config cfg;
    struct sched_challenge *challenges; /* the nonce each connection's HELLO must carry (token) */
    size_t nchallenges, capchallenges;
    struct store *store;
    struct art_store *art;        /* where workers put outputs */
    char store_id[65];            /* its marker's id (api_blobs_init), "" = none */
    int api_port;                 /* the HTTP API's port, told to workers (0: unknown) */
    struct bf_set *bfs;           /* the backfills (opaque here; for the API) */
    struct cache_index *cache_ix; /* code folder file digests, for cache keys */
    json_t *cache_pending;        /* "cache/<key>" -> entry, committed with the next flush */
    struct sched_ti **cache_q;    /* ready tasks with `cache: true`, looked up before the flush */
    size_t ncache_q, capcache_q, cache_qhead;
    char *models_dir;             /* where `publish:` copies outputs */
    int npublishing;              /* publish jobs on the thread pool */
    struct pin_set *pins;         /* image tags being resolved (imagepin.c) */
    uv_timer_t tick;
    uv_prepare_t prepare;
    uv_fs_event_t fsev;
    bool fsev_on;
    int64_t next_rescan;

    struct sched_dag **dags; /* sorted by name */
    size_t ndags, capdags;
    struct hmap versions;    /* version hash -> struct sched_dagver* */

    struct sched_run runs;   /* sentinel of the unfinished-run list */
    struct hmap runs_by_key; /* "dag\x1frun_id" -> run */
    uint64_t run_seq;

    struct sched_ti **heap;  /* ready queue */
    size_t nheap, capheap;
    struct sched_ti leases;  /* sentinel: leased + running */
    struct sched_ti retries; /* sentinel: up_for_retry */
    struct hmap lease_map;   /* lease id (text) -> ti */
    int64_t lease_seq;
    bool lease_seq_dirty;

    /* runs too big to start in one iteration (taskstate.c) */
    struct sched_run **startq;
    size_t nstartq, capstartq;
    /* task instances still to decide in this loop iteration (starting big
     * runs, ts_run_start and ts_start_step): SCHED_CHUNK at each iteration */
    size_t start_budget;
    /* finished runs out of the table whose memory goes a chunk per
     * iteration (runtab_free_some), oldest first, linked by next */
    struct sched_run *dying, *dying_last;
    size_t freed_since_trim; /* task instances freed since the last malloc_trim */

    /* mapped tasks' groups waiting to be expanded (fanout.c) */
    struct sched_ti **expandq;
    size_t nexpandq, capexpandq;
    /* finished groups' instances and items, released a chunk per loop
     * iteration (fanout.c, fan_release) */
    struct fan_grave *graves;
    size_t ngraves, capgraves;
    size_t graves_freed;     /* instances released since the last malloc_trim */
    uv_idle_t fan_idle;      /* active while expandq (or graves) is not empty: the loop keeps
                                turning */
    bool fan_idle_on;

    /* task instances whose upstream finished, decided by ts_evaluate one
     * after another instead of recursively (a failing chain of 10,000) */
    struct sched_ti **evalq;
    size_t nevalq, capevalq;
    bool evaluating;

    struct sched_worker **workers;
    size_t nworkers, capworkers;

    struct sched_ti *dirty_tis;
    /* changes that wait for the next commit (commit_ti_lazy); every commit
     * takes them all, so none outlives its run's eviction */
    struct sched_ti *lazy_tis;
    int64_t lazy_since; /* monotonic ms of the oldest, 0 if none */
    json_t *ended_attempts;  /* store key -> record of attempts a retry overtook */
    struct sched_run *dirty_runs;
    struct sched_dag **dirty_dags;
    size_t ndirty_dags, capdirty_dags;
    struct sched_reply *replies;
    size_t nreplies, capreplies;
    struct sched_after *afters;
    size_t nafters, capafters;
    int64_t flush_retry_at;

    struct sched_participant *parts;
    size_t nparts, capparts;
    struct sched_step *steps;
    size_t nsteps, capsteps;
    struct sched_run_hook *run_ended;
    size_t nrun_ended, caprun_ended;
    struct sched_tick_hook *ticks;
    size_t nticks, capticks;
    /* a task instance succeeded (before it is marked so): the step cache
     * remembers its outputs */
    void (*on_success)(struct sched *s, struct sched_ti *ti);
    /* a task instance changed state, a run started (notifier.c, deadline.c) */
    void (*on_ti_state)(struct sched *s, struct sched_ti *ti, enum ti_state from,
                        enum ti_state to);
    void (*on_run_start)(struct sched *s, struct sched_run *r);
    struct ntf *ntf;     /* notifications (notifier.c) */
    struct dl_set *dl;   /* deadlines (deadline.c) */

    /* how long loop iterations take (the time the loop was not waiting for
     * events): the longest since start and in the last minute */
    uint64_t iter_end_ns;    /* hrtime at the end of the last prepare phase */
    uint64_t iter_idle_ns;   /* the loop's idle time then */
    int64_t iter_max_ms, iter_window_max_ms, iter_prev_window_max_ms;
    /* the same in CPU time of the loop's thread (what the loop itself
     * spent, without waits for the disk or other processes) */
    int64_t iter_cpu_ns;        /* the thread's CPU clock at the last iteration's end */
    int64_t iter_cpu_max_ms, iter_cpu_window_max_ms, iter_cpu_prev_window_max_ms;
    int64_t iter_window_start; /* monotonic ms */
    /* of the iteration under way: ns spent writing the commit, ns freeing
     * finished runs, and how many records the commit wrote */
    uint64_t iter_commit_ns, iter_evict_ns;
    size_t iter_commit_records;
    long mapped_base; /* the process's file-backed pages at the first tick */
    uint64_t iterations;

    /* the store refuses writes (disk or map full): held replies wait, API
     * writes are refused at once, leases do not expire */
    bool degraded;
    char degraded_why[256];
    /* idempotency keys of triggers: key -> "dag SEP run_id" (owned), and
     * the new ones to commit */
    struct hmap idem;
    json_t *idem_pending;

    /* every change of a task instance gets the next number (its
     * change_seq), so an API client can ask for what changed after the
     * number it saw; epoch_ms (the start) tells numbers of another
     * process apart */
    uint64_t change_seq;
    int64_t epoch_ms;
    int64_t clock_skew;      /* seconds added to the wall clock (CAIRN_NOW) */
    int64_t next_schedule;   /* monotonic ms of the next schedule pass */
    int64_t last_tick;       /* monotonic ms of the last tick, to notice stalls */
    struct smet *smet;       /* Prometheus metrics (schedmetrics.c) */
    struct registry *registry; /* the models folder's stage changes (registry.c) */
    struct ev_set *events;   /* event triggers (events.c) */
    bool stopping;
    bool gc_busy;            /* an artifact collection is removing blobs */
    void (*stop_done)(void *);
    void *stop_ud;
    int closing_handles;
};

static inline void
sched__idle_noop(uv_idle_t *h)
{
    (void)h;
}

/* Put group g on the expansion queue (fanout.c expands it before the next
 * commit); the idle handle makes sure there is a next loop iteration. */
static inline void
sched_expand_later(struct sched *s, struct sched_ti *g)
{
    if (g->map->queued)
        return;
    g->map->queued = true;
    xgrow((void **)&s->expandq, &s->capexpandq, s->nexpandq + 1, sizeof(*s->expandq));
    s->expandq[s->nexpandq++] = g;
    if (!s->fan_idle_on && !s->stopping && s->fan_idle.loop) {
        uv_idle_start(&s->fan_idle, sched__idle_noop);
        s->fan_idle_on = true;
    }
}

/* Keep the loop turning while chunked work waits (no event may come). */
static inline void
sched_more_work(struct sched *s)
{
    if (!s->fan_idle_on && !s->stopping && s->fan_idle.loop) {
        uv_idle_start(&s->fan_idle, sched__idle_noop);
        s->fan_idle_on = true;
    }
}

/* The task of a task instance. */
static inline const struct dag_task *
sched_task(const struct sched_ti *ti)
{
    return &ti->run->dv->dag->tasks[ti->idx];
}

#endif
