/* pubjob.h - `publish:` from the engine (prefix: pj_).
 *
 * When a task that publishes succeeds, its outputs are copied from the
 * artifact store to the models folder (publish.h) on libuv's thread pool:
 * the task instance stays running (publishing, no lease) until the release
 * is built; then, back on the loop and only if the task is still that
 * attempt (not cancelled or cleared meanwhile), `latest` is switched and the
 * task succeeds. A failed copy fails the attempt like any failure.
 */
#ifndef CAIRN_SCHED_PUBJOB_H
#define CAIRN_SCHED_PUBJOB_H

#include <stddef.h>

#include "model.h"

struct sched;

/* Start publishing ti's outputs (its attempt just succeeded). 0, or
 * CAIRN_ENOENT with err (an output to publish was not stored). */
int pj_start(struct sched *s, struct sched_ti *ti, char *err, size_t errlen);
/* Publish now, on the loop (a step cache hit: the task never ran). 0 or a
 * publish.h error with err. */
int pj_publish_now(struct sched *s, struct sched_ti *ti, char *err, size_t errlen);

#endif
