/* engine.h - the scheduling engine (prefix: sched_).
 *
 * One libuv loop owns everything here. The engine keeps the unfinished runs
 * and their task instances in memory, mirrors every change to LMDB (group
 * commit: all changes made in one loop iteration go in one write
 * transaction, written in the loop's prepare phase), and answers workers and
 * clients only after that transaction is durable. Finished runs live only in
 * LMDB. See docs/architecture.md for the state machine and the schema.
 */
#ifndef CAIRN_SCHED_H
#define CAIRN_SCHED_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "dag.h"
#include "diag.h"
#include "hmap.h"
#include "store.h"

struct wire_req;
struct http_conn;

enum ti_state {
    TI_PENDING,
    TI_QUEUED,
    TI_LEASED,
    TI_RUNNING,
    TI_SUCCESS,
    TI_FAILED,
    TI_UP_FOR_RETRY,
    TI_UPSTREAM_FAILED,
    TI_SKIPPED,
    TI_CANCELLED,
    TI_NSTATES
};

enum run_state {
    RUN_QUEUED,
    RUN_RUNNING,
    RUN_SUCCESS,
    RUN_FAILED,
    RUN_CANCELLED,
    RUN_NSTATES
};

const char *sched_ti_state_name(enum ti_state s);
int sched_ti_state_parse(const char *s);
const char *sched_run_state_name(enum run_state s);
int sched_run_state_parse(const char *s);
bool sched_ti_terminal(enum ti_state s);
/* success, failed or cancelled */
bool sched_run_finished(enum run_state s);

/* A loaded DAG version, shared by the runs that use it. */
struct sched_dagver {
    int refs;
    struct dag *dag;
};

struct sched_worker;

struct sched_ti {
    struct sched_run *run;
    size_t idx;                 /* task index in run->dv->dag */
    enum ti_state state;
    int attempts;               /* attempts started */
    int lost;                   /* attempts lost with their worker since the last clear */
    int attempt_base;           /* attempts made before the last clear */
    int pending_up;             /* upstreams not yet finished */
    bool decided;               /* trigger rule has fired */
    int64_t lease_id;           /* current lease (fencing number), 0 = none */
    int64_t lease_expires;      /* monotonic ms */
    struct sched_worker *worker;
    char *worker_name;
    int64_t queued_at, started_at, ended_at, next_try_at; /* wall ms, 0 = unset */
    int exit_code;              /* -1 = none */
    int signal;                 /* 0 = none */
    bool oom, timed_out;
    char *error;
    int64_t log_size;           /* bytes stored for the current attempt */
    json_t *outputs;            /* artifacts of the successful attempt, or NULL */
    json_t *metrics;            /* its metrics {name: number}, or NULL */
    /* step cache and models folder (docs/dag-yaml.md): cache_key is set when
     * the task becomes ready; cached, cached_from and published are set by a
     * hit or a publish and cleared when an attempt starts */
    char cache_key[65];         /* step cache key ("" = none: no cache, or not computable) */
    bool cached;                /* succeeded from the cache, without running */
    json_t *cached_from;        /* {dag, run_id, task, attempt} it reused, or NULL */
    bool no_cache;              /* do not reuse (a success still refreshes the cache) */
    json_t *published;          /* {path, latest, files} in the models folder, or NULL */
    bool publishing;            /* succeeded; its outputs are being copied to the models
                                   folder (state running, no lease) */
    json_t *prov;               /* what the current attempt was given: {image, argv, env,
                                   inputs}, built once at lease time; NULL if unknown */
    size_t heap_idx;            /* in the ready heap, or SIZE_MAX */
    bool dirty, attempt_dirty, artifacts_dirty;
    struct sched_ti *dirty_next;
    struct sched_ti *lnext, *lprev; /* in the lease or retry list */
    char lease_key[24];         /* key in the lease map while leased */
};

struct sched_run {
    char *dag;
    char *run_id;
    char *run_type;             /* manual, scheduled, backfill */
    char *backfill;             /* id of the backfill that (re)started it, or NULL */
    bool bf_counted;            /* counts toward that backfill's window */
    struct sched_dagver *dv;
    enum run_state state;
    int64_t logical_date;       /* UTC seconds */
    int64_t interval_end;       /* UTC seconds */
    int64_t created_at, started_at, ended_at; /* wall ms */
    json_t *params;             /* overrides {name: "value"} */
    bool no_cache;              /* triggered with no_cache: its tasks do not reuse */
    struct dag_kv *overrides;
    size_t noverrides;
    struct sched_ti *tis;
    size_t ntis;
    size_t nfinished;
    int active;                 /* leased + running */
    uint64_t seq;               /* creation order */
    bool dirty;
    struct sched_run *dirty_next;
    struct sched_run *next, *prev; /* all unfinished runs */
    char *key;                  /* "dag\x1frun_id" */
};

/* A DAG known to the scheduler, with its current good version. */
struct sched_dag {
    char *name;
    char *file;
    struct sched_dagver *cur;   /* last good version, NULL if never loaded */
    struct diag_list errors;    /* problems of the file as it is on disk */
    bool paused;
    bool has_cursor;
    int64_t cursor;             /* latest scheduled logical date created */
    int active_runs;
    int active_tasks;
    int64_t file_mtime_ns;
    int64_t file_size;
    bool seen;                  /* scratch for rescans */
};

struct sched_worker {
    char *name;
    char *host;
    int slots;
    int busy;
    struct dag_kv *labels;
    size_t nlabels;
    int64_t last_seen;          /* monotonic ms */
    int64_t last_seen_wall;
    int64_t connected_at;       /* wall ms */
    bool alive;
    struct wire_req *parked;    /* a POLL waiting for work */
    uint32_t pipe;              /* connection of its last request */
    int64_t parked_until;       /* monotonic ms */
    int parked_free;
};

struct sched_config {
    const char *dags_dir;
    const char *data_dir;
    const char *listen_url;
    const char *http_host;
    int http_port;
    const char *token_file;
    int64_t lease_ttl_ms;
    int64_t heartbeat_ms;
    int max_lost;               /* lease losses tolerated per task instance */
    const char *models_dir;     /* where `publish:` goes; NULL = DATA/models */
};

struct sched;

int sched_new(struct sched **out, uv_loop_t *loop, const struct sched_config *cfg, char *err,
              size_t errlen);
/* Begin a graceful stop: stop handing out leases, answer what is pending,
 * flush, close sockets. done() runs when everything is closed. */
void sched_stop(struct sched *s, void (*done)(void *ud), void *ud);
void sched_free(struct sched *s);
/* Bound HTTP port (after port 0). */
int sched_http_port(const struct sched *s);
/* The URL workers dial (after port 0: the bound one). Owned by s. */
const char *sched_listen_url(const struct sched *s);

/* --- used by the HTTP API (api.c) --- */
struct store *sched_store(struct sched *s);
struct sched_dag *sched_find_dag(struct sched *s, const char *name);
/* Iterate DAGs in name order. */
size_t sched_ndags(const struct sched *s);
struct sched_dag *sched_dag_at(struct sched *s, size_t i);
struct sched_run *sched_find_run(struct sched *s, const char *dag, const char *run_id);
size_t sched_nworkers(const struct sched *s);
struct sched_worker *sched_worker_at(struct sched *s, size_t i);
/* Running task instances of a worker, for listings. */
void sched_worker_running(struct sched *s, const struct sched_worker *w, json_t *arr);
const char *sched_data_dir(const struct sched *s);
/* The models folder (--models, default DATA/models). */
const char *sched_models_dir(const struct sched *s);
struct art_store;
/* The scheduler's artifact store (DATA/artifacts). Borrowed. */
struct art_store *sched_artifacts(struct sched *s);

/* Create a manual run. On success *run is set; the caller answers its
 * client from sched_after_commit. Errors: CAIRN_ENOENT (no such DAG, or an
 * unknown param: err), CAIRN_EEXIST (a run for that logical date exists). */
int sched_trigger(struct sched *s, const char *dag, int64_t logical_date, bool has_date,
                  json_t *params, bool no_cache, struct sched_run **run, char *err,
                  size_t errlen);
/* Check a trigger's or backfill's params against the DAG: strings, numbers
 * and booleans, kept as text. *out gets a new object {name: "text"}.
 * CAIRN_EINVAL (bad type) or CAIRN_ENOENT (unknown param), with err. */
int sched_params_check(const struct dag *d, json_t *params, json_t **out, char *err,
                       size_t errlen);

/* At most one run per DAG and logical date: the id of the run there is
 * (scheduled__, backfill__ or manual__ followed by the date) and its state. */
bool sched_run_at_date(struct sched *s, const char *dag, int64_t ld, char *rid, size_t ridlen,
                       enum run_state *state);
/* The same through an open read transaction txn (many lookups in a row). */
bool sched_run_at_date_in(struct sched *s, struct store_txn *txn, const char *dag, int64_t ld,
                          char *rid, size_t ridlen, enum run_state *state);
/* A new run of the DAG's current version (queued until max_active_runs
 * allows); NULL if the DAG has no valid version or the scheduler stops.
 * The caller has checked that no run exists at ld. */
struct sched_run *sched_create_run(struct sched *s, const char *dag, const char *run_id,
                                   const char *type, int64_t ld, json_t *params);

#define SCHED_CLEAR_DOWNSTREAM 0x1u  /* also every task downstream of those chosen */
#define SCHED_CLEAR_FAILED_ONLY 0x2u /* only failed, upstream_failed, cancelled ones */
/* Reset finished task instances of a run (all, or task and with flags) so
 * they run again with the run's own DAG version; the run is queued again if
 * it had finished. Tasks still queued or running are left alone. *out is
 * the run. CAIRN_ENOENT (no such run), CAIRN_EINVAL (no such task),
 * CAIRN_ESTATE (nothing to clear), with err. */
int sched_clear(struct sched *s, const char *dag, const char *run_id, const char *task,
                unsigned flags, struct sched_run **out, char *err, size_t errlen);
/* Cancel an unfinished run: running attempts are stopped (their workers
 * are told at once or at their next heartbeat), the rest marked cancelled.
 * CAIRN_ENOENT, CAIRN_ESTATE (already finished), with err. */
int sched_cancel(struct sched *s, const char *dag, const char *run_id, struct sched_run **out,
                 char *err, size_t errlen);
/* The backfills (backfill.h). */
struct bf_set *sched_backfills(struct sched *s);

/* Make a task instance skip (on) or use (off) the step cache the next time
 * it becomes ready; persisted with the task instance, so a restart keeps it.
 * A run triggered with no_cache sets it on all its task instances; `clear`
 * sets it before it makes a task instance pending again. A success still
 * stores its outputs in the cache. */
void sched_ti_set_no_cache(struct sched *s, struct sched_ti *ti, bool on);
/* Pause or unpause a DAG's schedule (persisted). CAIRN_ENOENT if unknown. */
int sched_set_paused(struct sched *s, const char *dag, bool paused);
/* Next n scheduled logical dates and when each run will be created (UTC
 * seconds), into a JSON array; 0 if the DAG has no schedule. */
json_t *sched_next_runs(struct sched *s, const char *dag, int n);

/* Artifact retention (sched_gc_artifacts). A finished run's pointers are
 * removed unless a rule given keeps the run; with no rule, none is. */
struct sched_gc_opts {
    int keep_last;         /* keep the last N finished runs of each DAG; 0 = no such rule */
    int64_t older_than_ms; /* keep runs that ended less than this ago; 0 = no such rule */
    int64_t min_age_ms;    /* never remove a blob younger than this (puts in flight) */
    bool dry_run;          /* count, remove nothing */
};

/* Collect artifacts: remove the pointers (and index entries) of finished
 * runs outside the retention in one write transaction, then, on libuv's
 * thread pool, every blob no remaining pointer (stored, or in memory and not
 * stored yet) references and that is at least min_age old (art_gc).
 * Unfinished runs' pointers are never removed. On 0, done(ud, report, rc,
 * err) runs later on the loop thread with the report (owned by done):
 * {dry_run, keep_last, older_than_ms, min_age_ms, runs, pointers_removed,
 * pointer_bytes, pointers_kept, removed_runs: [{dag, run_id}], blobs_removed,
 * blob_bytes, blobs_kept, tmp_removed, tmp_bytes}; rc is nonzero (err set) if
 * the blob sweep failed part way (the counts say what was done). Errors
 * (done is not called): CAIRN_ESTATE (stopping, or a collection is running),
 * a store error with err set. */
int sched_gc_artifacts(struct sched *s, const struct sched_gc_opts *o,
                       void (*done)(void *ud, json_t *report, int rc, const char *err),
                       void *ud, char *err, size_t errlen);

/* Run fn(ud) after the current changes are durable (or at once if nothing is
 * pending). ok is false if the commit failed for good (shutdown). */
void sched_after_commit(struct sched *s, void (*fn)(void *ud, bool ok), void *ud);

/* API JSON of a task instance from its stored record (new object). */
json_t *sched_ti_api(const json_t *rec);
/* A DAG version by its hash (loaded from the store if not in memory), or
 * NULL. Borrowed: valid while the scheduler runs. */
const struct dag *sched_dag_version(struct sched *s, const char *dag, const char *version);
/* JSON of a run (with tasks if with_tasks) from memory. */
json_t *sched_run_json(const struct sched_run *r, bool with_tasks);
/* Log file path of an attempt (malloc'd). */
char *sched_log_path(const struct sched *s, const char *dag, const char *run_id,
                     const char *task, int attempt);
/* Format wall ms as ISO 8601 UTC, or JSON null for 0. */
json_t *sched_json_time(int64_t wall_ms);

#endif
