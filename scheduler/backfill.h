/* backfill.h - backfills: one run per schedule tick over a date range
 * (prefix: bf_).
 *
 * A backfill is a persisted object (STORE_BACKFILLS, key = its id "bf-N").
 * Its logical dates are fixed when it is created (the DAG's ticks in
 * [from, to], inclusive); the scheduler then walks them oldest first as a
 * sliding window: a date's run is created (or an existing run cleared, per
 * the reprocess mode) as soon as one of the backfill's runs finishes, so at
 * most max_active_runs of its runs are unfinished at a time. Its runs also
 * count toward the DAG's own max_active_runs, and they are created one
 * window slot at a time, so scheduled and manual runs queued meanwhile are
 * started between them, oldest first.
 *
 * Progress (done, failed, running, ...) of a running backfill is read from
 * the runs, which are the truth (one read transaction for all its dates); an
 * ended one keeps the counts it ended with. The backfill's own record keeps
 * its position (next date) and what it did at each date, and is written in
 * the same transaction as the runs it created, so a restart resumes exactly
 * there.
 *
 * Everything here runs on the scheduler's loop thread.
 */
#ifndef CAIRN_BACKFILL_H
#define CAIRN_BACKFILL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sched;
struct sched_run;
struct store_txn;
struct bf_set;

enum bf_reprocess {
    BF_REPROCESS_NONE,   /* dates that have a run are skipped */
    BF_REPROCESS_FAILED, /* failed or cancelled runs rerun their failed tasks */
    BF_REPROCESS_ALL     /* every existing finished run is cleared and rerun */
};

struct bf_request {
    const char *dag;
    const char *from, *to;   /* ISO 8601 dates or instants, as the user gave them */
    enum bf_reprocess reprocess;
    int max_active_runs;     /* 0 = the DAG's max_active_runs */
    json_t *params;          /* borrowed; may be NULL */
    bool dry_run;
};

/* Load every stored backfill (after the scheduler recovered its runs) and
 * hook into the engine: its records are committed with the engine's
 * (sched_add_participant), a finished run frees a slot of its backfill's
 * window (sched_on_run_ended), every schedule pass starts what the windows
 * allow (sched_on_tick). Sets *out; CAIRN_ESTORE etc. if the store cannot
 * be read. Free it after the engine has stopped, before sched_free. */
int bf_open(struct bf_set **out, struct sched *s);
void bf_free(struct bf_set *set);

/* Start what the windows allow (at start and on every tick). */
void bf_pump_all(struct bf_set *set);

/* Create a backfill, or with dry_run only say what it would do. *out gets
 * the backfill's JSON (with "dates" for a dry run). CAIRN_ENOENT (no DAG),
 * CAIRN_EINVAL (bad dates, range, params: err says which). */
int bf_create(struct bf_set *set, const struct bf_request *req, json_t **out, char *err,
              size_t errlen);
/* JSON of all backfills (newest first; of one DAG if dag is set). */
json_t *bf_list(struct bf_set *set, const char *dag);
/* JSON of one, with progress; NULL if unknown. */
json_t *bf_get(struct bf_set *set, const char *id);
/* Stop a running backfill: no new runs, and its unfinished runs are
 * cancelled. CAIRN_ENOENT, CAIRN_ESTATE (already over), with err. */
int bf_cancel(struct bf_set *set, const char *id, json_t **out, char *err, size_t errlen);


const char *bf_reprocess_name(enum bf_reprocess r);
int bf_reprocess_parse(const char *s);

#endif
