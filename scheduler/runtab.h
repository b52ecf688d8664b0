/* runtab.h - the runs the engine holds in memory (prefix: runtab_;
 * sched_find_run is engine.h's).
 *
 * Unfinished runs are in memory, in creation order, and indexed by their
 * key ("dag SEP run_id", schema.h). A finished run stays until the commit
 * that stored its end; then it is freed (runtab_evict_finished) and lives
 * only in LMDB. A finished run is brought back (recovery.h) to be cleared.
 */
#ifndef CAIRN_SCHED_RUNTAB_H
#define CAIRN_SCHED_RUNTAB_H

#include <jansson.h>
#include <stdbool.h>

#include "model.h"

struct sched;

/* A new run of version dv, appended to the list, all task instances
 * pending. The caller sets its type, dates and params. */
struct sched_run *runtab_alloc(struct sched *s, const char *dag, const char *run_id,
                               struct sched_dagver *dv);
/* Free r (already unlinked, or the whole engine is going). */
void runtab_free(struct sched *s, struct sched_run *r);
/* r's params (borrowed; NULL = none) as its overrides. */
void runtab_set_params(struct sched_run *r, json_t *params);
/* Whether a run with that id exists, in memory or in the store. */
bool runtab_exists(struct sched *s, const char *dag, const char *rid);
/* The DAG entry of r, or NULL. */
struct sched_dag *runtab_dag(struct sched *s, const struct sched_run *r);
/* The stored artifact an input resolves to in run r, or NULL (borrowed). */
json_t *runtab_input_artifact(const struct sched_run *r, const struct dag_input *in);
/* What ti's templates render with (its run's dates, id and params). */
void runtab_render_ctx(const struct sched_ti *ti, struct dag_run_ctx *rc);
/* Drop finished runs whose end is stored from memory. */
void runtab_evict_finished(struct sched *s);

#endif
