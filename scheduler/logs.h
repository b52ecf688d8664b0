/* logs.h - the logs of attempts (prefix: logs_; sched_log_path is
 * engine.h's).
 *
 * DATA/logs/DAG/RUN/TASK/ATTEMPT.log holds what a worker streamed of an
 * attempt's stdout and stderr, in the order the worker read it. A chunk is
 * written at the attempt's durable log size (ti->log_size, committed with
 * the task instance), not at the end of the file, so bytes written before a
 * crash but never committed are overwritten when the worker resends them.
 * One file stays open per attempt while it runs (closed when its lease
 * ends), so a chunk costs one pwrite.
 */
#ifndef CAIRN_SCHED_LOGS_H
#define CAIRN_SCHED_LOGS_H

#include <stddef.h>

#include "model.h"

struct sched;

/* Store data (len bytes) of ti's current attempt at its log size and grow
 * the size. 0, or a code with err set (nothing of it counts as stored). */
int logs_append(struct sched *s, struct sched_ti *ti, const char *data, size_t len, char *err,
                size_t errlen);
/* Close ti's open log file, if any. */
void logs_close(struct sched_ti *ti);

#endif
