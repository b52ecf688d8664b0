/* recovery.h - unfinished runs back from LMDB (prefix: recovery_).
 *
 * At start the scheduler reads every queued or running run with its task
 * instances, with the DAG version each started with, and rebuilds what is
 * derived (counts of unfinished upstreams, the ready queue, the lease and
 * retry lists, each DAG's active counts). An attempt that was in flight
 * keeps its lease for one lease time, so a worker that ran on through the
 * restart reports it; anything a crash left undecided is decided now.
 */
#ifndef CAIRN_SCHED_RECOVERY_H
#define CAIRN_SCHED_RECOVERY_H

#include <jansson.h>
#include <stddef.h>

struct sched;
struct sched_run;
struct store_txn;

/* Recover at start. 0, or a store error. */
int recovery_run(struct sched *s);
/* Bring a stored run (any state, record j) and its task instances into
 * memory, with the DAG version it started with; NULL with err if the record
 * is refused or that version is not stored. The caller rebuilds the derived
 * state (counts, queues). */
struct sched_run *recovery_load_run(struct sched *s, struct store_txn *t, const json_t *j,
                                    char *err, size_t errlen);

#endif
