/* runs.h - the parts of runs.c the engine's own files use (prefix: runs_);
 * the public run API (trigger, clear, cancel, ...) is engine.h's. */
#ifndef CAIRN_SCHED_RUNS_H
#define CAIRN_SCHED_RUNS_H

#include <stdint.h>

struct sched;

/* Now for schedules (UTC seconds): the wall clock, or the test-only fake
 * clock set by CAIRN_NOW that then advances in real time. */
int64_t runs_now(const struct sched *s);
/* Create the runs the schedules ask for (docs/cron.md). The cursor (latest
 * logical date created) is committed with the runs, so a restart neither
 * repeats nor skips an interval. */
void runs_schedule(struct sched *s);

/* Idempotency keys: install (sched_new), forget the ones older than a day
 * (at start), free. */
void runs_idem_init(struct sched *s);
void runs_idem_prune(struct sched *s);
void runs_idem_free(struct sched *s);

#endif
