/* cron.h - 5-field cron expressions (prefix: cron_).
 *
 * Fields: minute hour day-of-month month day-of-week. Each field takes '*',
 * numbers, names (JAN-DEC, SUN-SAT, case-insensitive), ranges a-b, lists
 * a,b,c, steps (star-slash-n and a-b/n, and n/s meaning n-max/s).
 * Day-of-week 0 and 7 are Sunday. Macros (case-insensitive): @hourly @daily
 * @midnight @weekly @monthly @yearly @annually. Classic (Vixie) semantics:
 * when both day-of-month and day-of-week are restricted (neither starts
 * with '*'), a day matches if EITHER matches.
 *
 * Ticks are wall-clock times in the schedule's zone; DST follows tz.h's
 * policy: a tick in a gap fires once at the first instant after the gap; a
 * tick in a repeated hour fires once (at its first occurrence); ticks that
 * land on the same instant fire once. docs/cron.md has the full rules.
 */
#ifndef CAIRN_CRON_H
#define CAIRN_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tz;

struct cron {
    uint64_t minute; /* bit i = minute i */
    uint32_t hour;
    uint32_t mday;   /* bit 1..31 */
    uint16_t month;  /* bit 1..12 */
    uint8_t wday;    /* bit 0..6, Sunday = 0 */
    bool mday_star;  /* field started with '*' */
    bool wday_star;
};

/* Parse expr. Sets *out only on success. On error returns CAIRN_EPARSE,
 * writes a message to err (may be NULL) such as "day-of-week value 9 out of
 * range 0-7", and sets *errcol (may be NULL) to the 0-based offset in expr of
 * the offending field or value (for too few fields: the end of expr). */
int cron_parse(struct cron *out, const char *expr, char *err, size_t errlen, int *errcol);

/* The first tick strictly after `after` (UTC seconds) in zone z (NULL =
 * UTC). Returns -1 if there is none within 5 years (e.g. "0 0 30 2 *"), or
 * if `after` lies outside years 1..9999. Thread-safe. */
int64_t cron_next(const struct cron *c, const struct tz *z, int64_t after);
/* The last tick strictly before `before`, or -1 if none within 5 years. */
int64_t cron_prev(const struct cron *c, const struct tz *z, int64_t before);

#endif
