/* fsm.h - the task state machine's rules as pure functions (prefix: fsm_).
 *
 * No engine state, no I/O: what a trigger rule decides from the outcomes of
 * a task's upstreams, how long a retry waits, whether a failed attempt may
 * be retried, and the names of states. taskstate.c applies these to task
 * instances; tests/unit/test_fsm.c checks them table by table.
 */
#ifndef CAIRN_SCHED_FSM_H
#define CAIRN_SCHED_FSM_H

#include <stdbool.h>
#include <stdint.h>

#include "dag.h"
#include "model.h"

/* Outcomes of a task's upstreams so far. */
struct fsm_upstreams {
    int n;               /* upstreams in all */
    int done;            /* in a terminal state */
    int success, failed, upstream_failed, skipped; /* cancelled counts in done only */
};

/* Count one upstream in state st (u->n is set by the caller). */
void fsm_count_one(struct fsm_upstreams *u, enum ti_state st);

/* What a pending task instance becomes under rule, given its upstreams:
 * TI_QUEUED (it runs: a `when` gate, if any, is checked next), TI_SKIPPED,
 * TI_UPSTREAM_FAILED, or TI_PENDING (not decided until more upstreams
 * finish). A task without upstreams is TI_QUEUED. */
enum ti_state fsm_decide(enum dag_trigger rule, const struct fsm_upstreams *u);

/* Delay in ms before the retry that follows `counted` failed attempts (1 =
 * the first failure): delay * backoff^(counted-1), at most max_ms. */
int64_t fsm_retry_delay(int64_t delay_ms, double backoff, int64_t max_ms, int counted);
/* Whether a task that allows `retries` retries may try again after
 * `counted` attempts that were its own fault. */
bool fsm_may_retry(int counted, int retries);
/* failed, upstream_failed or cancelled: what `clear --failed-only` and a
 * backfill's reprocess=failed run again. */
bool fsm_failed_like(enum ti_state st);
/* The state an attempt record shows for a task instance in state st:
 * leased, running, success, cancelled, or failed for anything else. */
const char *fsm_attempt_state(enum ti_state st);

#endif
