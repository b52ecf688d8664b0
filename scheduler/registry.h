/* registry.h - the models folder as a registry: its releases, and the
 * stages (production, staging) that point at them (prefix: registry_).
 *
 * publish.h builds the releases and moves `latest`; this module reads the
 * folder and moves the other links:
 *
 *   MODELS/DAG/TASK/releases/RELEASE/      a release (publish.json + files)
 *   MODELS/DAG/TASK/latest     -> releases/RELEASE   (publish.h)
 *   MODELS/DAG/TASK/production -> releases/RELEASE   (registry_promote)
 *   MODELS/DAG/TASK/staging    -> releases/RELEASE
 *
 * A stage link is switched like `latest`: a new link made beside it and
 * renamed over it, then the folder fsynced, so a reader who opens files
 * through production/ sees one whole release. Every change of a stage is
 * recorded (schema.h's struct schema_stage: which release, which held it
 * before, who, when) and written to the state store with the next group
 * commit (a participant of commit.h); the records of a DAG/TASK are kept
 * in memory too, so a change is visible at once, before it is durable.
 * Everything runs on the loop thread: two promotes never interleave, and
 * each record's `previous` is the release the one before it left.
 *
 * Rollback undoes the changes of a stage one at a time: the stage goes
 * back to the release that held it before the change that gave it its
 * present release (a promote pushes a release on the stage's stack, a
 * rollback pops one). A rollback is recorded as a change too.
 */
#ifndef CAIRN_SCHED_REGISTRY_H
#define CAIRN_SCHED_REGISTRY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct sched;
struct store_txn;

/* The stages a release can be promoted to. */
bool registry_stage_valid(const char *stage);

/* Whether name is usable as a DAG, task or release segment of the folder
 * (not empty, no '/', not starting with '.'). */
bool registry_name_ok(const char *name);

/* Install the participant that commits stage changes; registry_free
 * releases what it keeps. */
void registry_init(struct sched *s);
void registry_free(struct sched *s);

/* The folders MODELS/DAG/TASK that hold a releases/ folder, as a new array
 * of {"dag", "task"} sorted by DAG then task; dag (may be NULL) keeps
 * those of one DAG. */
json_t *registry_models(struct sched *s, const char *dag);

/* The releases of DAG/TASK: a new array of {"release", "path", "record"
 * (its publish.json, or null if unreadable), "stages": [names of the links
 * that point at it]} sorted newest first (logical date, then attempt, then
 * publication time, then name). CAIRN_ENOENT if DAG/TASK has no releases
 * folder. */
int registry_releases(struct sched *s, const char *dag, const char *task, json_t **out);

/* What each link of DAG/TASK points at: a new {"latest", "production",
 * "staging"} of release names or null. */
json_t *registry_links(struct sched *s, const char *dag, const char *task);

/* The stage changes of DAG/TASK, oldest first (borrowed; valid until the
 * next change): each a schema_stage record. Read from the store t (may be
 * NULL: a read transaction of its own) the first time. NULL if the store
 * could not be read (err says why). */
const json_t *registry_history(struct sched *s, struct store_txn *t, const char *dag,
                               const char *task, char *err, size_t errlen);

/* Point stage of DAG/TASK at release and record it as done by `by`. On
 * success *out is the new change record (a new reference). Errors:
 * CAIRN_EINVAL (a bad stage or name), CAIRN_ENOENT (no such release),
 * CAIRN_EIO / CAIRN_EFULL (the link could not be switched; the stage is
 * unchanged), CAIRN_ESTORE (the history could not be read); err says why. */
int registry_promote(struct sched *s, const char *dag, const char *task, const char *release,
                     const char *stage, const char *by, json_t **out, char *err, size_t errlen);

/* Put stage of DAG/TASK back on the release that held it before its last
 * promote that was not rolled back. Errors as registry_promote, and
 * CAIRN_ESTATE: no earlier release held the stage (or its folder is gone). */
int registry_rollback(struct sched *s, const char *dag, const char *task, const char *stage,
                      const char *by, json_t **out, char *err, size_t errlen);

#endif
