/* api_present.h - the JSON the HTTP API answers with for runs, task
 * instances, attempts and artifact pointers (prefix: api_present_); see
 * docs/api.md.
 *
 * Built from schema.h's structs, whether the record came from the store
 * (api_read.h) or from a run the engine holds in memory (turned into the
 * same structs through records.c's records): one shape for both. Each
 * function returns a new object that shares nothing with its argument
 * (members the struct borrows are copied), so the answer may be sent after
 * the record or the run has changed or gone. The arguments are borrowed.
 */
#ifndef CAIRN_API_PRESENT_H
#define CAIRN_API_PRESENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "schema.h"

struct dag;
struct sched_run;

/* A run without its tasks: the record's fields but seq, and
 * params_effective: every param of version (the run's DAG version) with
 * the run's overrides applied, as text; null if version is NULL (the
 * version cannot be loaded). */
json_t *api_present_run(const struct schema_run *r, const struct dag *version);
/* The same for the runs list: a param value longer than API_PARAM_LIST_MAX
 * bytes is replaced by a note of its size and named in "params_elided". */
#define API_PARAM_LIST_MAX 1024
json_t *api_present_run_listed(const struct schema_run *r, const struct dag *version);
/* A task instance: the record's fields but lease_id, lost, queued_at,
 * attempt_base and next_try_at; exit_code and signal null when there is
 * none; next_retry_at (when up_for_retry) and duration_ms; for a mapped
 * task map: {n, counts: {state: n}}, for an instance map_index. */
json_t *api_present_ti(const struct schema_ti *ti);
/* Add "secrets": [{env, name}] (names only, never values) of task t to a
 * task's JSON, if it has any. */
struct dag_task;
void api_present_secret_names(json_t *task, const struct dag_task *t);
/* An attempt: the record's fields, exit_code and signal null when none. */
json_t *api_present_attempt(const struct schema_attempt *a);
/* An artifact pointer: the record's fields. */
json_t *api_present_artifact(const struct schema_artifact *a);
/* An entry of the digest index: {dag, run_id, task, name, attempt,
 * created_at}. */
json_t *api_present_artidx(const struct schema_artidx *x);

struct sched_ti;
/* A task instance (or instance of a mapped task) the engine holds; NULL
 * with err if its record does not decode (a bug). */
json_t *api_present_ti_model(const struct sched_ti *ti, char *err, size_t errlen);

/* Runs with more task instances than this are answered with task_counts
 * and without their tasks unless asked (?tasks=all): a 100,000-task run is
 * not a 100,000-row answer by default. */
#define API_RUN_TASKS_INLINE 1000

/* A run the engine holds in memory, with its tasks in the DAG's order
 * (with more than API_RUN_TASKS_INLINE only when all_tasks). since > 0:
 * only the tasks whose change_seq is above it, however many (the caller
 * says "incremental"). NULL with err (the caller answers 500) if one of its
 * records does not decode, which would be a bug of records.c or schema.c. */
json_t *api_present_run_model(const struct sched_run *r, bool all_tasks, uint64_t since,
                              char *err, size_t errlen);

#endif
