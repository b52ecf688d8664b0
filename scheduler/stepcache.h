/* stepcache.h - the step cache in the engine (prefix: sc_).
 *
 * A ready task instance with `cache: true` is not queued for workers at
 * once: ts_evaluate puts it on the cache queue, and before the commit (a
 * pre-commit step) each is looked up under its key (cache.h): a hit
 * succeeds at once with the stored outputs and metrics (publishing them if
 * the task publishes), a miss goes to the ready queue. A success of a task
 * with `cache: true` whose key is unchanged since it started stores its
 * outputs under the key, committed with the success (a participant of the
 * group commit). docs/dag-yaml.md, "The step cache".
 */
#ifndef CAIRN_SCHED_STEPCACHE_H
#define CAIRN_SCHED_STEPCACHE_H

struct sched;

/* Install the cache's pre-commit step, commit participant and success hook. */
void sc_init(struct sched *s);
void sc_free(struct sched *s);

#endif
