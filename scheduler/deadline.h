/* deadline.h - `deadline:` of runs and task instances (prefix: dl_).
 *
 * A run's deadline is armed when it starts (after_start) or is created
 * (after_logical_date: known at once), a task instance's when an attempt
 * starts. Armed deadlines wait in a min-heap with one libuv timer for the
 * earliest, so nothing scans the runs on a tick. An entry names its run by
 * key and its task by index (no pointers: a finished run may be evicted
 * meanwhile); when it falls and the work still runs, deadline_missed fires
 * once (deadline_missed_at is set and committed with the deliveries it
 * queues), through notifier.h. At start (dl_recover) every recovered run
 * and running task instance is armed again: a deadline that passed while
 * the scheduler was down fires on the first loop iteration.
 */
#ifndef CAIRN_SCHED_DEADLINE_H
#define CAIRN_SCHED_DEADLINE_H

#include <uv.h>

#include "model.h"

struct sched;

void dl_init(struct sched *s);
/* Arm every unfinished run in memory and its running task instances. */
void dl_recover(struct sched *s);
void dl_stop(struct sched *s, uv_close_cb closed, int *nhandles);
void dl_free(struct sched *s);

/* Hooks (called by notifier.c's and the engine's). */
void dl_run_started(struct sched *s, struct sched_run *r);
void dl_run_ended(struct sched *s, struct sched_run *r);
void dl_ti_state(struct sched *s, struct sched_ti *ti, enum ti_state from, enum ti_state to);

#endif
