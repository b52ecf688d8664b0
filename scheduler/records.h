/* records.h - the engine's structs as store records, through common/schema
 * (prefix: rec_).
 *
 * Writes everything the model marked dirty into a write transaction (runs,
 * task instances, attempts, artifact pointers with their index by digest,
 * DAGs, the lease counter), and reads records back into the model for
 * recovery. Key building and record layout are schema.h's; this file maps
 * sched_run/sched_ti/sched_dag to and from schema's structs.
 */
#ifndef CAIRN_SCHED_RECORDS_H
#define CAIRN_SCHED_RECORDS_H

#include <jansson.h>

#include "model.h"

struct sched;
struct store_txn;

/* The records of ti, its current attempt and r (new objects). */
json_t *rec_ti(const struct sched_ti *ti);
json_t *rec_attempt(const struct sched_ti *ti);
json_t *rec_run(const struct sched_run *r);
/* {state: n} over r's task instances (a mapped task counts once). */
json_t *rec_task_counts(const struct sched_run *r);
/* The store key of ti's record (an instance's sorts after its task's, in
 * index order) and of its current attempt (malloc'd). */
char *rec_ti_key(const struct sched_ti *ti);
char *rec_attempt_key(const struct sched_ti *ti);
/* Keep the record of an attempt that ended but is not stored yet, before
 * the next attempt of the same task instance takes over its fields. */
void rec_attempt_keep(struct sched *s, const struct sched_ti *ti);

/* Write what the model marked dirty through t (the caller commits). */
int rec_flush(struct sched *s, struct store_txn *t);

/* Fill ti (of run r) from its stored record j; the provenance of an attempt
 * in flight is read back from its attempt record through t. 0, or a code
 * with err (the record is refused, ti is left as it was). */
int rec_ti_load(struct store_txn *t, struct sched_ti *ti, const json_t *j, char *err,
                size_t errlen);
/* Paused flags and schedule cursors of the known DAGs. */
void rec_dags_load(struct sched *s);

/* Remove the index entry of the pointer ptr stored under ptrkey. */
int rec_artidx_del(struct store_txn *t, const char *ptrkey, const json_t *ptr);
/* Every pointer has one index entry, written in the same transaction. If
 * the counts differ (a store from before the index, or written meanwhile by
 * an older build), rebuild the index from the pointers. */
int rec_artidx_check(struct sched *s);

#endif
