/* fanout.h - expanding mapped tasks into instances (prefix: fan_).
 *
 * A group (the task instance of a mapped task, model.h's sched_map) that
 * its trigger rule lets run is put on the expansion queue. A pre-commit
 * step then learns its items (a matrix's cross product and a list param at
 * once; a map.from list is read from the artifact store on the thread pool;
 * a zip takes its upstream's), fixes and commits n, and makes the instances
 * FAN_CHUNK at a time over the loop's iterations, each decided as it is
 * made. A list that is not a JSON list, or longer than max_map_items, fails
 * the group with the file and the reason. Zero items: the group is skipped.
 * A big group read by a fan-in task has its manifest made (in chunks, then
 * stored from the thread pool) before it ends; a big group's instances
 * leave memory in chunks after its run has.
 */
#ifndef CAIRN_SCHED_FANOUT_H
#define CAIRN_SCHED_FANOUT_H

#include <stddef.h>
#include <uv.h>

#include "model.h"

struct sched;

/* Install the expansion step (early in sched_new), then start its idle
 * handle (with the engine's other handles). */
void fan_init(struct sched *s);
void fan_start(struct sched *s);
/* Close the idle handle (closed is the engine's close callback). */
void fan_stop(struct sched *s, uv_close_cb closed);
void fan_free(struct sched *s);

/* Put group g on the expansion queue (once). */
void fan_enqueue(struct sched *s, struct sched_ti *g);
/* Free group map m (runtab_map_free) when its run leaves memory: a big
 * one's instances and items are released FAN_FREE_CHUNK at a time over the
 * loop's next iterations (freeing 100,000 instances at once would hold
 * the loop for hundreds of ms), then the heap is trimmed. Nothing may
 * reach the instances any more (their run is gone). */
void fan_release(struct sched *s, struct sched_map *m);
/* g cannot fan out: it fails with why. */
void fan_fail(struct sched *s, struct sched_ti *g, const char *why);
/* g's items now, synchronously (recovery: a map.from list is read again
 * from its stored digest). 0, or a code with err. */
int fan_items_sync(struct sched *s, struct sched_ti *g, char *err, size_t errlen);
/* Store the manifest of g's instances' outputs (JSON {task, instances:
 * [{index, item, state, outputs: {name: {sha256, size, uri}}}]}) in the
 * artifact store and put its digest in sha; once g has ended the digest is
 * kept (g->map->manifest_sha, committed with g) and not built again. 0, or
 * a code with err. */
int fan_manifest(struct sched *s, struct sched_ti *g, char sha[65], char *err, size_t errlen);

/* g's instances are all over: if a task reads their files through the
 * manifest and g is big, make it first (a chunk of instances per loop
 * iteration, stored from the thread pool) and end g once it is stored
 * (ts_group_check again). true: under way, g does not end yet. */
bool fan_manifest_first(struct sched *s, struct sched_ti *g);
/* Map m goes (or is cleared): drop its manifest under way. */
void fan_manifest_forget(struct sched_map *m);

#endif
