/* lease.h - workers, leases and dispatch (prefix: lease_).
 *
 * A lease hands one attempt of a ready task instance to a worker whose
 * labels match, that has a free slot (max_active_tasks permitting) and, for
 * a task with `gpus`, enough free GPUs of its type (gpualloc.h), which the
 * lease then holds. Its
 * id is the fencing number: a report naming any other id is refused. A
 * lease lives while the worker's POLLs renew it (heartbeats); one that
 * expires, or whose worker was stopped under it, is lost: the task instance
 * is queued again without using up a retry, up to max_lost times. A worker
 * with nothing to do leaves its POLL with the scheduler ("parked"), which
 * answers it as soon as there is work (a pre-commit step) or when its wait
 * is over.
 */
#ifndef CAIRN_SCHED_LEASE_H
#define CAIRN_SCHED_LEASE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "model.h"

struct sched;

struct sched_worker *lease_worker_find(struct sched *s, const char *name);
/* Whether w has every label t selects. */
bool lease_labels_match(const struct dag_task *t, const struct sched_worker *w);
/* The task instance holding lease_id, leased or running; NULL if none. */
struct sched_ti *lease_lookup(struct sched *s, int64_t lease_id);
/* Whether worker w holds ti's lease. A lease recovered after a restart has
 * no worker yet: the worker it was handed to (by name) claims it when it
 * reports it, so a task that ran on through the restart is not redone. */
bool lease_owned(struct sched_ti *ti, struct sched_worker *w);
/* Index ti by its lease id (recovery, dispatch). */
void lease_register(struct sched *s, struct sched_ti *ti);
/* How many more leases w may hold now: its slots, plus, while its tasks
 * run short (SCHED_PREFETCH_MAX_TASK_MS), as much of its prefetch as runs
 * in about that long a slot at its recent task time, less what it holds;
 * none while it is stopping (it reported a task its shutdown stopped). */
int lease_room(const struct sched_worker *w);
/* A result of w's took ms to run: feeds the average lease_room looks at. */
void lease_note_run_time(struct sched_worker *w, int64_t ms);
/* The leases for an answer to w's request numbered seq (0: not numbered),
 * a new JSON array, maybe empty: first those of w's to send again, then new
 * ones, as many as lease_room allows and never more than the worker offered
 * in all (offered < 0: it did not say). */
json_t *lease_dispatch(struct sched *s, struct sched_worker *w, int offered, int64_t seq);
/* A worker stops waiting for an answer after its heartbeat and 5 s (a
 * scheduler stopped or stalled meanwhile reads its requests late, all at
 * once), so the leases in that answer would never reach it. Each request
 * that may bring leases has a number (seq), and says which earlier ones the
 * worker gave up on (gave_up): the leases sent in their answers are sent
 * again with the worker's next answer, and a request given up on is
 * answered without any. Returns whether the request seq was given up on.
 * lease_delivered: the worker has ti's lease (it listed it in a POLL, or
 * started it). lease_gave_up_reset: a new HELLO. */
bool lease_gave_up(struct sched *s, struct sched_worker *w, int64_t seq, const int64_t *gave_up,
                   size_t n);
void lease_delivered(struct sched_ti *ti);
void lease_gave_up_reset(struct sched_worker *w);
/* Give ready work to workers waiting in a POLL (a pre-commit step). */
void lease_dispatch_parked(struct sched *s);
/* Tell w to stop lease_id now if it waits in a POLL; otherwise its next
 * heartbeat learns that the lease is gone. */
void lease_reply_cancel(struct sched *s, struct sched_worker *w, int64_t lease_id);
/* Answer w's parked POLL with no work. */
void lease_answer_parked(struct sched *s, struct sched_worker *w);
/* An attempt is over (result, lease lost, cancel): free its slot. */
void lease_end(struct sched *s, struct sched_ti *ti);
/* An attempt ended for a reason that is not the task's fault (its worker
 * went quiet or was shut down): try again without using up a retry, up to
 * max_lost times. code is the log message id. */
void lease_lost(struct sched *s, struct sched_ti *ti, const char *code, const char *why);
/* Do not lease ti to the worker called name again (until a clear): it
 * could not get ti's inputs. */
void lease_exclude(struct sched_ti *ti, const char *name);
/* Is the worker called name excluded for ti? */
bool lease_excluded(const struct sched_ti *ti, const char *name);
/* Leases not renewed by now (monotonic ms) are lost. */
void lease_check_expired(struct sched *s, int64_t now);
/* Answer POLLs whose wait is over; mark quiet workers lost. */
void lease_check_workers(struct sched *s, int64_t now);
/* The loop was busy for ms: heartbeats that came meanwhile are not read
 * yet, so do not count the stall against leases and workers. */
void lease_extend_all(struct sched *s, int64_t ms);

#endif
