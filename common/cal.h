/* cal.h - civil calendar arithmetic and ISO 8601 (prefix: cal_).
 *
 * Instants are int64 seconds since the Unix epoch (UTC). "Local" seconds are
 * the same count for a wall-clock reading as if it were UTC (no zone).
 * Everything here is pure and thread-safe; no libc time zone state is used.
 */
#ifndef CAIRN_CAL_H
#define CAIRN_CAL_H

#include <stddef.h>
#include <stdint.h>

struct cal_tm {
    int year;  /* e.g. 2026 */
    int mon;   /* 1..12 */
    int mday;  /* 1..31 */
    int hour;  /* 0..23 */
    int min;   /* 0..59 */
    int sec;   /* 0..59 */
    int wday;  /* 0..6, 0 = Sunday (filled by cal_split) */
};

/* Days since 1970-01-01 for a civil date (proleptic Gregorian). */
int64_t cal_days_from_civil(int year, int mon, int mday);
/* Split seconds (UTC or local) into fields, wday included. Valid for any
 * instant whose year fits in an int. */
void cal_split(int64_t secs, struct cal_tm *out);
/* Join fields (wday ignored) into seconds. Fields must be in range. */
int64_t cal_join(const struct cal_tm *tm);
int cal_days_in_month(int year, int mon);

/* Format an instant with a UTC offset (seconds east), e.g.
 * "2026-03-08T03:00:00-04:00"; offset 0 gives "...Z" when z_for_utc is
 * nonzero, "+00:00" otherwise; an offset with seconds (local mean time)
 * gives "-04:56:02". Writes at most len bytes, always NUL-terminated when
 * len > 0, and returns the length written (buf >= 32 never truncates). */
size_t cal_format_iso(int64_t utc, int offset, int z_for_utc, char *buf, size_t len);
/* "2026-03-08" / "20260308" of the local date of utc+offset. */
size_t cal_format_date(int64_t utc, int offset, int nodash, char *buf, size_t len);

/* Parse a date or timestamp:
 *   "2026-01-01"                    -> has_time 0, local midnight
 *   "2026-01-01T06:00", "2026-01-01 06:00:00"   -> local wall clock
 *   "...Z", "...+02:00", "...-0530", "...+02" -> absolute instant (has_offset 1)
 * Seconds may carry a fraction (".250"), which is dropped. The date must
 * exist (no 2026-02-30, month 13 or hour 24; no leap second 60), and
 * nothing may follow. On success fills *secs (local seconds if !has_offset,
 * UTC if has_offset) and the flags (each may be NULL) and returns 0; returns
 * CAIRN_EPARSE on anything else, leaving every output untouched. */
int cal_parse(const char *s, int64_t *secs, int *has_time, int *has_offset);

#endif
