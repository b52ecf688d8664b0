/* dagtab.h - the table of known DAGs (sorted by name) and the loaded DAG
 * versions they and their runs share (prefix: dagtab_; sched_find_dag and
 * sched_dag_version are engine.h's). Loop thread only. */
#ifndef CAIRN_SCHED_DAGTAB_H
#define CAIRN_SCHED_DAGTAB_H

#include "model.h"

struct sched;
struct store_txn;

/* A loaded version by its hash, or NULL. */
struct sched_dagver *dagtab_version_get(struct sched *s, const char *version);
/* Keep d (ownership passes) as a version; if that version is loaded
 * already, d is freed and the loaded one returned. */
struct sched_dagver *dagtab_version_add(struct sched *s, struct dag *d);
/* A version from its stored source (for runs of an older version), through
 * t; NULL if it is not stored or does not load. */
struct sched_dagver *dagtab_version_load(struct sched *s, struct store_txn *t, const char *dag,
                                         const char *version);
/* The DAG loaded from file, or NULL. */
struct sched_dag *dagtab_by_file(struct sched *s, const char *file);
/* A new entry (file may be NULL: a DAG known only from its runs). */
struct sched_dag *dagtab_add(struct sched *s, const char *name, const char *file);

#endif
