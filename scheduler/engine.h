/* engine.h - the scheduling engine (prefix: sched_).
 *
 * One libuv loop owns everything here. The engine keeps the unfinished runs
 * and their task instances in memory (model.h), mirrors every change to
 * LMDB (group commit: all changes made in one loop iteration go in one write
 * transaction, written in the loop's prepare phase), and answers workers and
 * clients only after that transaction is durable. Finished runs live only in
 * LMDB. The engine is split by concern into files that share core.h; this
 * header is what the rest of the scheduler (main.c, the API, backfills)
 * uses. See docs/architecture.md for the map, the state machine and the
 * schema.
 *
 * The engine owns no socket: the composition root (main.c) starts the
 * worker link (wire.h) and hands each request to sched_handle_request; the
 * engine answers through the link functions given in its config, so a test
 * can drive it with a fake link and no daemons.
 */
#ifndef CAIRN_SCHED_H
#define CAIRN_SCHED_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "dag.h"
#include "diag.h"
#include "image_registry.h"
#include "model.h"
#include "store.h"

struct wire_req;
struct bf_set;

const char *sched_ti_state_name(enum ti_state s);
int sched_ti_state_parse(const char *s);
const char *sched_run_state_name(enum run_state s);
int sched_run_state_parse(const char *s);
bool sched_ti_terminal(enum ti_state s);
/* success, failed or cancelled */
bool sched_run_finished(enum run_state s);

/* How the engine answers worker requests (wire.h's functions, or a test's):
 * reply answers req with a message of type (body borrowed) and releases it;
 * drop releases it unanswered. Both run on the loop thread. */
struct sched_link {
    void (*reply)(struct wire_req *req, int type, json_t *body);
    void (*drop)(struct wire_req *req);
};

struct art_open_opts;

#define SCHED_HIDDEN_MAX 4 /* the most entries of sched_config.hidden used */

struct sched_config {
    const char *dags_dir;
    const char *data_dir;
    int64_t lease_ttl_ms;
    int64_t heartbeat_ms;
    int max_lost;               /* lease losses tolerated per task instance */
    const char *models_dir;     /* where `publish:` goes; NULL = DATA/models */
    size_t max_state_size;      /* the LMDB map never grows beyond it; 0 = no limit */
    const char *secrets_dir;    /* tasks' `secrets:` (secrets.h); NULL = $CREDENTIALS_DIRECTORY */
    const char *token_file;     /* the link's key file: hidden from image-host tasks */
    const char *const *hidden; /* the scheduler's own key files (absolute: link token, API
                                * tokens, TLS key) that tasks must not see; NULL-terminated
                                * or NULL */
    bool link_authenticated;    /* the worker link proves who sends (a token, or TLS
                                 * certificates); false: no lease carries secrets (such
                                 * tasks fail saying so) */
    struct sched_link link;
    struct imgreg_opts registry; /* for pinning image tags (imagepin.h); borrowed */
    const struct ident *ident; /* a TLS link: HELLO must prove the worker's name (ident.h) */
    bool token;                /* a shared token: HELLO must answer its connection's challenge */
    int notify_attempts;       /* tries of a notification before it fails; 0 = NOTIFY_MAX_ATTEMPTS */
    int64_t notify_backoff_ms; /* the wait after its first failed try; 0 = NOTIFY_BACKOFF_BASE_MS */
    const char *artifacts;     /* the artifact store's URI or folder; NULL = DATA/artifacts */
    const struct art_open_opts *artifacts_opts; /* its settings (artifact.h); may be NULL */
};

struct sched;
struct ident;

/* Open the store under cfg->data_dir, load the DAG folder, recover the
 * unfinished runs, start the loop's timers. The worker link and the HTTP
 * server are the caller's. err says why it failed. */
int sched_new(struct sched **out, uv_loop_t *loop, const struct sched_config *cfg, char *err,
              size_t errlen);
/* Begin a graceful stop: stop handing out leases, answer what is pending,
 * flush, close the engine's handles. done() runs when all are closed (the
 * caller then closes the link and the HTTP server). */
void sched_stop(struct sched *s, void (*done)(void *ud), void *ud);
void sched_free(struct sched *s);

/* A request from a worker (the link's handler): decoded, applied, answered
 * through cfg.link after the commit it caused. */
void sched_handle_request(struct sched *s, struct wire_req *req);
/* A worker's connection closed: forget a POLL it left waiting. */
void sched_link_gone(struct sched *s, uint32_t pipe);

/* The engine's change counter now and the process's start (wall ms): an
 * API cursor ("EPOCH-SEQ") of the task instance changes seen so far. */
void sched_change_cursor(const struct sched *s, int64_t *epoch_ms, uint64_t *seq);

/* Extensions that keep state of their own (backfill.c) hook in here. */
struct sched_participant {
    bool (*dirty)(void *ud);                     /* anything to write? */
    int (*flush)(void *ud, struct store_txn *t); /* write it (nonzero aborts the commit) */
    void (*clear)(void *ud);                     /* the commit is durable */
    void *ud;
};
/* Commit p's state in every group commit from now on. */
void sched_add_participant(struct sched *s, const struct sched_participant *p);
/* fn(ud, r) when a run finishes (success, failed or cancelled). */
void sched_on_run_ended(struct sched *s, void (*fn)(void *ud, struct sched_run *r), void *ud);
/* fn(ud) on every schedule pass (twice a second). */
void sched_on_tick(struct sched *s, void (*fn)(void *ud), void *ud);
/* fn(ud, r) for every unfinished run in memory, oldest first. */
void sched_foreach_run(struct sched *s, void (*fn)(void *ud, struct sched_run *r), void *ud);
/* Record that backfill id (re)started run r (persisted with the run). */
void sched_run_set_backfill(struct sched *s, struct sched_run *r, const char *id);
/* Whether the store refuses writes now (disk or map full); *why (may be
 * NULL) says why. Writes through the API are then refused with 503. */
bool sched_degraded(const struct sched *s, const char **why);

/* Idempotency keys (an Idempotency-Key header on a trigger): the run a key
 * made, if any (0, *dag and *run_id malloc'd), else CAIRN_ENOENT. Keys are
 * kept 24 hours. sched_idem_put records key for run r, committed with it. */
int sched_idem_get(struct sched *s, const char *key, char **dag, char **run_id);
void sched_idem_put(struct sched *s, const char *key, const struct sched_run *r);

/* How long the loop's iterations took (the time it was busy, not waiting
 * for events): the longest since start, the longest in the last one to two
 * minutes, and how many there were. */
void sched_loop_stats(const struct sched *s, int64_t *max_ms, int64_t *recent_max_ms,
                      uint64_t *iterations);
/* The same two longest iterations in the loop thread's own CPU time: on a
 * loaded machine (or one whose disk stalls a commit) wall time says little
 * about the loop's own work. */
void sched_loop_cpu_stats(const struct sched *s, int64_t *max_ms, int64_t *recent_max_ms);

/* The backfills, for the API (set by the composition root). */
void sched_set_backfills(struct sched *s, struct bf_set *bfs);

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
/* Why a queued task instance waits for a worker, in buf (waiting.c): no
 * live worker has its labels, or the GPUs it needs (free); "" otherwise. */
void sched_ti_waiting(struct sched *s, const struct sched_ti *ti, char *buf, size_t len);
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
 * The caller has checked that no run exists at ld. params are borrowed;
 * backfill (may be NULL) is the id of the backfill creating it. */
struct sched_run *sched_create_run(struct sched *s, const char *dag, const char *run_id,
                                   const char *type, int64_t ld, json_t *params,
                                   const char *backfill);

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

/* A DAG version by its hash (loaded from the store if not in memory), or
 * NULL. Borrowed: valid while the scheduler runs. */
const struct dag *sched_dag_version(struct sched *s, const char *dag, const char *version);
/* Log file path of an attempt (malloc'd). */
char *sched_log_path(const struct sched *s, const char *dag, const char *run_id,
                     const char *task, int attempt);
/* Format wall ms as ISO 8601 UTC, or JSON null for 0. */
json_t *sched_json_time(int64_t wall_ms);

#endif
