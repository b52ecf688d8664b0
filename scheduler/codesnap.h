/* codesnap.h - a run's `code:` folder, snapshotted when the run is created
 * (prefix: codesnap_); see docs/dag-yaml.md, "code".
 *
 * When a run of a DAG with `code:` is created, the folder is copied into
 * the artifact store on libuv's thread pool: every regular file as a blob
 * (content addressed, so a file that did not change is stored once across
 * runs), then a tree manifest naming them, itself a blob:
 *
 *   {"version": 1,
 *    "files": [{"path": "src/train.py", "sha256": "…", "size": 1234, "exec": false}, …],
 *    "dirs":  ["src", …],
 *    "links": [{"path": "data", "target": "../data"}, …]}
 *
 * (paths relative to the folder, in byte order; serialised compactly with
 * sorted keys, so the same folder gives the same manifest and digest; the
 * folders `.git`, `.hg`, `.svn`, `__pycache__` and `*.pyc` files are left
 * out, as the step cache does). The manifest's sha256 is the run's
 * code_digest: it is stored in the run record, shown by `runs show` and in
 * every attempt's provenance (lineage), and each lease names it
 * (code_tree): the worker builds the folder from the store and mounts it
 * at /pipeline. So every task of the run, its retries and cleared tasks
 * see the code as it was when the run was created, even if the folder is
 * edited meanwhile, and workers on other hosts need no shared folder.
 *
 * The run's tasks are not leased until the snapshot is there; if it
 * fails (the folder is missing, too big, unreadable), they fail at lease
 * time with the reason. After a restart the manifest is read back (also
 * on the thread pool) to know which blobs the run's leases may read.
 */
#ifndef CAIRN_SCHED_CODESNAP_H
#define CAIRN_SCHED_CODESNAP_H

#include <stdbool.h>

#include "core.h"

#define CODESNAP_NONE 0    /* the DAG has no code: folder */
#define CODESNAP_PENDING 1 /* being made or read back */
#define CODESNAP_READY 2
#define CODESNAP_FAILED 3

/* A new run: start its snapshot if its DAG has code. */
void codesnap_run(struct sched *s, struct sched_run *r);
/* A run read back from the store with code_digest (or NULL: a run from
 * before snapshots, which uses the folder as it is now). */
void codesnap_recovered(struct sched *s, struct sched_run *r, const char *code_digest);
/* r is being freed: a job still running forgets it. */
void codesnap_forget(struct sched_run *r);
/* Do r's tasks wait for the snapshot? */
bool codesnap_waiting(const struct sched_run *r);

#endif
