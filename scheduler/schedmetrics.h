/* schedmetrics.h - the scheduler's Prometheus metrics (prefix: smet_); the
 * list is in docs/operations.md.
 *
 * Counters and histograms move as things happen (the engine's files call
 * the smet_ functions below); gauges (task instances and runs by state,
 * workers, slots, GPUs, store sizes) are read from the engine's state when
 * /metrics is asked. Loop thread only. Every function takes a struct sched
 * whose registry may be absent (smet_init not called: the engine's unit
 * tests), and then does nothing.
 */
#ifndef CAIRN_SCHEDMETRICS_H
#define CAIRN_SCHEDMETRICS_H

#include <stddef.h>

#include "model.h"

struct sched;

/* Create the registry of s (sched_new does). */
void smet_init(struct sched *s);
/* Release it (sched_free does). */
void smet_free(struct sched *s);

/* A task instance changes from state old to st (taskstate.c). */
void smet_ti_state(struct sched *s, const struct sched_ti *ti, enum ti_state old,
                   enum ti_state st);
/* A run finished (success, failed or cancelled). */
void smet_run_ended(struct sched *s, const struct sched_run *r);
/* A lease expired without a heartbeat. */
void smet_lease_expired(struct sched *s);
/* A commit of batch records took seconds. */
void smet_commit(struct sched *s, double seconds, size_t batch);
/* A loop iteration was busy for seconds. */
void smet_iteration(struct sched *s, double seconds);
/* An HTTP response (an http_observe_fn; ud is the struct sched). */
void smet_http(void *ud, const char *route, int status);

/* The text exposition of every metric (malloc'd; *len its length). */
char *smet_render(struct sched *s, size_t *len);

#endif
