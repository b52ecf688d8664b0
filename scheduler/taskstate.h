/* taskstate.h - transitions of task instances and runs (prefix: ts_).
 *
 * The state machine of docs/architecture.md, applied: a pending task
 * instance is decided by its trigger rule (fsm_decide) and `when` gate once
 * its upstreams allow; a queued one waits in the ready queue (or, with
 * `cache: true`, in the step cache's queue); a finished one wakes its
 * downstreams and may finish its run, which admits queued runs of the DAG
 * and runs the run-ended hooks. Propagation along a chain is iterative (a
 * work queue), so a failing chain of any length uses constant stack.
 */
#ifndef CAIRN_SCHED_TASKSTATE_H
#define CAIRN_SCHED_TASKSTATE_H

#include "model.h"

struct sched;

void ts_set_state(struct sched *s, struct sched_ti *ti, enum ti_state st);
/* Leased -> running (a STARTED): stored with the next commit, not one of
 * its own, since nothing waits on it (a crash before shows the task leased,
 * which recovery treats alike). */
void ts_set_running(struct sched *s, struct sched_ti *ti);
/* Queue ti for a worker. */
void ts_make_ready(struct sched *s, struct sched_ti *ti);
/* Decide a pending ti of a running run from its upstreams, if they allow. */
void ts_evaluate(struct sched *s, struct sched_ti *ti);
/* ti reached terminal state st: count it, wake its downstreams, maybe end
 * its run. */
void ts_finish(struct sched *s, struct sched_ti *ti, enum ti_state st);
/* ti succeeded (its outputs and metrics are set): the success hook (step
 * cache), then ts_finish. */
void ts_succeed(struct sched *s, struct sched_ti *ti);
/* A failed attempt: up_for_retry if its retries allow, else failed. */
void ts_attempt_failed(struct sched *s, struct sched_ti *ti);

/* Fan-out: group g has all its instances (the zip tasks that pair with it
 * may go); g ends if every instance has (outcome: failed if one failed,
 * else upstream_failed, cancelled, success if one succeeded, else skipped;
 * no instances: skipped). */
void ts_group_expanded(struct sched *s, struct sched_ti *g);
void ts_group_check(struct sched *s, struct sched_ti *g);

/* Start r (its tasks without upstreams are decided; a big run's a chunk
 * per loop iteration, through ts_start_step, a pre-commit step). */
void ts_run_start(struct sched *s, struct sched_run *r);
void ts_start_step(struct sched *s);
/* r ends if every task instance has: success, or failed. */
void ts_run_check_done(struct sched *s, struct sched_run *r);
/* Start queued runs of sd, oldest first, as max_active_runs allows. */
void ts_admit_runs(struct sched *s, struct sched_dag *sd);
/* r finished (by its tasks, or cancelled): the run-ended hooks. */
void ts_run_ended(struct sched *s, struct sched_run *r);

#endif
