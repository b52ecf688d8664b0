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

#include <stdbool.h>
#include <stddef.h>

#include "model.h"

struct sched;

/* Create the registry of s (sched_new does). */
void smet_init(struct sched *s);
/* Release it (sched_free does). */
void smet_free(struct sched *s);

/* A task instance changes from state old to st (taskstate.c). */
void smet_ti_state(struct sched *s, const struct sched_ti *ti, enum ti_state old, enum ti_state st);
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

/* cairn_task_metric: the latest finished run of dag had task's metric
 * name = v. smet_task_metrics_forget(s, dag) drops dag's first (a new
 * latest run replaces all of them). */
void smet_task_metric(struct sched *s, const char *dag, const char *task, const char *name,
                      double v);
void smet_task_metrics_forget(struct sched *s, const char *dag);
/* Whether a run of dag finished since the start (its metrics are set). */
bool smet_task_metrics_live(const struct sched *s, const char *dag);
/* Whether the task metrics of runs before this process's start are still
 * to be read from the store (the API does it on the first scrape, then
 * calls smet_task_metrics_seeded). */
bool smet_task_metrics_unseeded(const struct sched *s);
void smet_task_metrics_seeded(struct sched *s);

/* The text exposition of every metric (malloc'd; *len its length). */
char *smet_render(struct sched *s, size_t *len);

#endif
