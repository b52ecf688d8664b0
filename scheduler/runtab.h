/* runtab.h - the runs the engine holds in memory (prefix: runtab_;
 * sched_find_run is engine.h's).
 *
 * Unfinished runs are in memory, in creation order, and indexed by their
 * key ("dag SEP run_id", schema.h). A finished run stays until the commit
 * that stored its end; then it leaves the table (runtab_evict_finished),
 * its memory is freed over the next loop iterations, and it lives only in
 * LMDB. A finished run is brought back (recovery.h) to be cleared.
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
/* The stored artifact an input of ti resolves to (for a zip input, the
 * upstream instance with ti's index), or NULL (borrowed). A fan-in input
 * has no single artifact (lease.c builds its manifest). */
json_t *runtab_input_artifact(const struct sched_ti *ti, const struct dag_input *in);
/* Free what a task instance owns (not the struct). */
void runtab_ti_release(struct sched_ti *ti);
/* A group's instances and items go (a clear starts it again). */
void runtab_instances_drop(struct sched_map *m);
void runtab_map_free(struct sched_map *m);
/* Initialise instance i of group g (its inst array allocated), pending. */
void runtab_instance_init(struct sched_ti *g, size_t i);
/* "task" or "task[3]" (into buf for an instance). */
const char *sched_ti_name(const struct sched_ti *ti, char *buf, size_t len);
/* The task instance (or instance) of r by name, or NULL. */
struct sched_ti *runtab_ti_by_name(struct sched_run *r, const char *name);
/* An aggregate (expr.h: max min avg sum count argmax) of metric over the
 * instances of mapped task `task` in r. 0 and *out, or -1 if there is none. */
int runtab_aggregate(const struct sched_run *r, const char *fn, const char *task,
                     const char *metric, double *out);
/* What ti's templates render with (its run's dates, id and params, an
 * instance's item and index, aggregates over mapped upstreams). Returns the
 * item's JSON text that rc points to (malloc'd, the caller frees it after
 * rendering), or NULL. */
char *runtab_render_ctx(const struct sched_ti *ti, struct dag_run_ctx *rc);
/* Drop finished runs whose end is stored from the table (a lookup then
 * reads the store); their memory is freed SCHED_CHUNK task instances per
 * loop iteration (runtab_free_some, from the loop's prepare hook), so a 100,000-task run's end does not
 * stall the loop, and the heap is trimmed once they all are. */
void runtab_evict_finished(struct sched *s);
void runtab_free_some(struct sched *s);
/* Free every evicted run at once (the engine is going). */
void runtab_free_dying(struct sched *s);

#endif
