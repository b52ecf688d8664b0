/* tz.h - time zones from the system tz database (TZif files), prefix tz_.
 *
 * Zones are read from $TZDIR or /usr/share/zoneinfo; no libc TZ state is
 * touched, so many zones can be used at once from any thread.
 *
 * DST policy (documented with examples in docs/cron.md):
 *  - a wall-clock time inside a gap (spring forward) maps to the first
 *    instant after the gap (e.g. 02:30 on a NY spring-forward day -> 03:00
 *    EDT);
 *  - a wall-clock time inside an overlap (fall back) maps to its first
 *    (earlier) occurrence, so it fires once.
 */
#ifndef CAIRN_TZ_H
#define CAIRN_TZ_H

#include <stdint.h>

struct tz;

/* Load a zone by IANA name ("UTC", "Europe/Berlin"). Sets *out only on
 * success. Returns CAIRN_ENOENT for an unknown name (or one with "..", a
 * leading '/', or characters outside [A-Za-z0-9_+-/]), CAIRN_EPARSE for a
 * file that is not TZif (or is truncated, or has a footer rule that does
 * not parse), CAIRN_EINVAL if out or name is NULL, CAIRN_ENOMEM. "UTC" and
 * "Etc/UTC" always work, even without tzdata. Zones are cached process-wide
 * by name (so $TZDIR is read when a name is first loaded) and immutable; the
 * pointer stays valid until tz_cache_clear(). Safe to call from any thread. */
int tz_load(const struct tz **out, const char *name);
/* Free every cached zone (tests, shutdown). No zone pointer may be in use. */
void tz_cache_clear(void);

/* In every function below z may be NULL, meaning UTC. Instants are expected
 * within +-10^15 seconds of the epoch. */

/* The name the zone was loaded by; borrowed, lives as long as the zone. */
const char *tz_name(const struct tz *z);
/* UTC offset in seconds east at an instant (footer POSIX TZ rule applied
 * beyond the last transition). */
int tz_offset_at(const struct tz *z, int64_t utc);
/* Like tz_offset_at, and also the largest interval [*start, *end) around utc
 * over which the offset stays the same (INT64_MIN / INT64_MAX for an open
 * side; a change of abbreviation or DST flag alone does not end it). start
 * and end may be NULL. */
int tz_offset_span(const struct tz *z, int64_t utc, int64_t *start, int64_t *end);

enum tz_local_kind { TZ_LOCAL_NORMAL = 0, TZ_LOCAL_GAP = 1, TZ_LOCAL_OVERLAP = 2 };

/* Map local wall-clock seconds to a UTC instant under the policy above.
 * *kind (may be NULL) says which case applied. */
int64_t tz_local_to_utc(const struct tz *z, int64_t local, enum tz_local_kind *kind);
/* Convenience: utc + tz_offset_at(utc). */
int64_t tz_utc_to_local(const struct tz *z, int64_t utc);

#endif
