/* ticks.h - which runs a schedule asks for (prefix: ticks_).
 *
 * Airflow's convention: a run's logical date t is the start of its data
 * interval [t, next tick); the run is due once that interval has ended,
 * i.e. at next(t). start_date bounds logical dates from below (the first
 * interval starts at the first tick at or after it), end_date from above
 * (logical dates after it are never created).
 *
 * Pure functions of the DAG, a cursor and a clock: the scheduler persists
 * the cursor (the latest logical date it created) and calls ticks_due on
 * every tick, so a restart neither double-fires nor misses an interval.
 */
#ifndef CAIRN_TICKS_H
#define CAIRN_TICKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dag;

/* Logical dates that are due at `now` and come after the cursor (if
 * has_cursor), in ascending order, at most max of them (the oldest first;
 * call again for more). With catchup, every due interval since start_date
 * (or since the cursor); without, only the latest due interval, and only if
 * it is after the cursor. A DAG with no schedule has none. Returns the
 * number written to out. */
size_t ticks_due(const struct dag *d, bool has_cursor, int64_t cursor, int64_t now,
                 int64_t *out, size_t max);

/* When the next run after the cursor will be created (the end of its
 * interval), and its logical date; false if there is none (no schedule,
 * past end_date, or no tick within 5 years). */
bool ticks_next(const struct dag *d, bool has_cursor, int64_t cursor, int64_t now,
                int64_t *logical_date, int64_t *create_at);

/* Logical dates of the ticks t with from <= t <= to (both UTC seconds,
 * inclusive), within start_date/end_date, ascending, at most max. Returns
 * how many there are, or max + 1 if there are more than max (counting
 * stops there, so a huge range costs no more than max ticks). */
size_t ticks_range(const struct dag *d, int64_t from, int64_t to, int64_t *out, size_t max);

#endif
