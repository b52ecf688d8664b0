/* api_read.h - the HTTP API's reads of the state store (prefix: api_read_).
 *
 * Every stored record the API answers from is read here, through a read
 * transaction the handler holds: its key (or the prefix of a scan) is built
 * by schema.h and its contents decoded by schema.h's decoder, so the
 * handlers see schema structs and build their JSON from those
 * (api_present.h), never from a record's members.
 *
 * A record that does not decode (damaged, of the wrong shape, or written
 * by a newer Cairn) is never served half-read:
 *   - a lookup of one record fails with status 500: err names the record
 *     and says what the decoder said ("run 'r1' of DAG 'd' cannot be read:
 *     run record: field 'state' is missing"), and a line is logged
 *     (CAIRN-RECORD-BAD); the handler answers 500 internal with err;
 *   - a scan skips it, logs it (CAIRN-RECORD-BAD) and counts it in
 *     *skipped. A record the store itself cannot parse (not JSON, a record
 *     version newer than this build) never reaches a scan: store_scan skips
 *     and logs it (CAIRN-STORE-BAD-RECORD), and it is not counted.
 *
 * Lookups return 0, or the HTTP status to answer with a message in err: 404
 * (no such record; also a key too long to be stored), 409 (a run id in
 * several DAGs), 500 (the record does not decode), 503 (the store failed).
 * On 0, *rec is the record (a new reference the caller releases) and *out
 * borrows from it: the struct is valid as long as *rec is. Nothing is set
 * otherwise.
 *
 * Scans call fn for each record that decodes, in key order, with the key,
 * the struct and the record, all borrowed for the call (json_incref the
 * record to keep it, and the struct with it). A nonzero return from fn
 * stops the scan and is returned; otherwise the scan returns store_scan's
 * code. *skipped (may be NULL) is incremented, not reset.
 *
 * Everything runs on the loop thread; t is borrowed.
 */
#ifndef CAIRN_API_READ_H
#define CAIRN_API_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "schema.h"

struct sched;
struct store_txn;

/* The run run_id of dag. With dag NULL the run id is looked up across
 * DAGs: 404 if no DAG has it, 409 if several do (err says to name the
 * DAG). */
int api_read_run(struct sched *s, struct store_txn *t, const char *dag, const char *run_id,
                 struct schema_run *out, json_t **rec, char *err, size_t errlen);
/* The task instance record of task in run run_id of dag. */
int api_read_ti(struct store_txn *t, const char *dag, const char *run_id, const char *task,
                struct schema_ti *out, json_t **rec, char *err, size_t errlen);
/* The record of attempt n of that task instance. */
int api_read_attempt(struct store_txn *t, const char *dag, const char *run_id, const char *task,
                     int n, struct schema_attempt *out, json_t **rec, char *err, size_t errlen);
/* The current pointer of output name of that task instance
 * (superseded_attempt API_READ_CURRENT), or the pointer of an earlier
 * attempt (superseded_attempt >= 0: its attempt number, 0 for outputs
 * reused from the step cache), kept when a cleared task stored new
 * outputs. */
#define API_READ_CURRENT (-1)
int api_read_artifact(struct store_txn *t, const char *dag, const char *run_id, const char *task,
                      const char *name, int64_t superseded_attempt, struct schema_artifact *out,
                      json_t **rec, char *err, size_t errlen);

typedef int (*api_read_run_fn)(void *ud, const char *key, const struct schema_run *r, json_t *rec);
typedef int (*api_read_ti_fn)(void *ud, const char *key, const struct schema_ti *ti, json_t *rec);
typedef int (*api_read_attempt_fn)(void *ud, const char *key, const struct schema_attempt *a,
                                   json_t *rec);
typedef int (*api_read_artifact_fn)(void *ud, const char *key, const struct schema_artifact *a,
                                    json_t *rec);
/* sha is the digest part of the entry's key (borrowed for the call). */
typedef int (*api_read_artidx_fn)(void *ud, const char *sha, const struct schema_artidx *x,
                                  json_t *rec);

/* Every run of dag (NULL: of every DAG). */
int api_read_runs(struct store_txn *t, const char *dag, api_read_run_fn fn, void *ud,
                  size_t *skipped);
/* Decoded runs kept past their scan: v[i].r borrows v[i].rec, a reference
 * the list holds. */
struct api_read_run_item {
    struct schema_run r;
    json_t *rec;
};
struct api_read_run_list {
    struct api_read_run_item *v;
    size_t n, cap;
};
/* Every run of dag (NULL: of every DAG), appended to *l (zeroed at
 * first). */
int api_read_run_list(struct store_txn *t, const char *dag, struct api_read_run_list *l,
                      size_t *skipped);
/* Release what *l holds; it is empty (and reusable) after. NULL is a
 * no-op. */
void api_read_run_list_free(struct api_read_run_list *l);

/* The stored instances of mapped task `task` of a run, in index order from
 * index `from` (fn may stop the scan by returning nonzero). */
int api_read_instances(struct store_txn *t, const char *dag, const char *run_id, const char *task,
                       long from, api_read_ti_fn fn, void *ud, size_t *skipped);
/* Every stored task instance of a run, instances of mapped tasks included. */
int api_read_tis(struct store_txn *t, const char *dag, const char *run_id, api_read_ti_fn fn,
                 void *ud, size_t *skipped);
/* Every stored task instance of a run but the instances of mapped tasks
 * (their group records are listed): it does not read them, so a run with
 * 100,000 instances costs what its tasks do. */
int api_read_tasks(struct store_txn *t, const char *dag, const char *run_id, api_read_ti_fn fn,
                   void *ud, size_t *skipped);
/* Every attempt of a task instance, oldest first. */
int api_read_attempts(struct store_txn *t, const char *dag, const char *run_id, const char *task,
                      api_read_attempt_fn fn, void *ud, size_t *skipped);
/* Every artifact pointer of a run, superseded ones included. */
int api_read_artifacts(struct store_txn *t, const char *dag, const char *run_id,
                       api_read_artifact_fn fn, void *ud, size_t *skipped);
/* The index entries of the digest sha; with prefix true, of every digest
 * that starts with sha. */
int api_read_artidx(struct store_txn *t, const char *sha, bool prefix, api_read_artidx_fn fn,
                    void *ud, size_t *skipped);

#endif
