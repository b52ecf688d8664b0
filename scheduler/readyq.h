/* readyq.h - the ready queue and the intrusive lists of task instances
 * (prefix: rq_).
 *
 * The ready queue is a binary heap of queued task instances: higher task
 * priority first, then older runs, then topological order. The lists are
 * circular, with a sentinel sched_ti as head (the engine's leases and
 * retries). Loop thread only.
 */
#ifndef CAIRN_SCHED_READYQ_H
#define CAIRN_SCHED_READYQ_H

#include "model.h"

struct sched;

void rq_list_init(struct sched_ti *head);
void rq_list_add(struct sched_ti *head, struct sched_ti *ti);
/* Unlink ti; a no-op if it is in no list. */
void rq_list_del(struct sched_ti *ti);

void rq_push(struct sched *s, struct sched_ti *ti);
/* Take ti out of the heap; a no-op if it is not in it. */
void rq_remove(struct sched *s, struct sched_ti *ti);
/* The first ready task instance, removed; NULL if none. */
struct sched_ti *rq_pop(struct sched *s);

#endif
