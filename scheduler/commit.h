/* commit.h - group commit: dirty marks, replies held until durable, and the
 * commit itself (prefix: commit_).
 *
 * Whatever a loop iteration changes is marked dirty here; in the loop's
 * prepare phase (commit_prepare_cb) the pre-commit steps run (step cache
 * lookups, handing ready work to waiting workers), then everything dirty is
 * written in ONE write transaction: the model's records (records.c) and each
 * registered participant's state (backfills, step cache entries). Only when
 * that transaction is durable are the held worker replies sent and the
 * after-commit callbacks run (HTTP answers); finished runs are then dropped
 * from memory. A commit that fails (disk full) keeps everything and is
 * retried a second later; nothing is answered meanwhile.
 */
#ifndef CAIRN_SCHED_COMMIT_H
#define CAIRN_SCHED_COMMIT_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "model.h"

struct sched;

/* ti's record changed (attempt: so did its current attempt's record). */
void commit_ti_dirty(struct sched *s, struct sched_ti *ti, bool attempt);
/* ti's record changed, but nothing needs it durable before an answer: it
 * is written with the next commit, at the latest SCHED_LAZY_COMMIT_MS from
 * now, and makes no commit of its own before that. */
void commit_ti_lazy(struct sched *s, struct sched_ti *ti);
void commit_run_dirty(struct sched *s, struct sched_run *r);
void commit_dag_dirty(struct sched *s, struct sched_dag *d);
/* Answer req with type and body (owned by the reply) after the commit. An
 * item of a BATCH (req->batch set) adds its answer to the BATCH's results. */
void commit_reply(struct sched *s, struct wire_req *req, int type, json_t *body);

/* Run fn(s) before every commit, in the order registered. */
void commit_add_step(struct sched *s, void (*fn)(struct sched *s));
/* The pre-commit steps, now (for an answer that must show their effect). */
void commit_run_steps(struct sched *s);

/* The loop's prepare callback (h->data is the struct sched). */
void commit_prepare_cb(uv_prepare_t *h);
/* At shutdown: commit what is pending now; if the store refuses, drop the
 * held replies and call the after-commit callbacks with ok = false. */
void commit_final(struct sched *s);

#endif
