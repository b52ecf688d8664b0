#include "ticks.h"

#include "cron.h"
#include "dag.h"

/* The first tick at or after t. */
static int64_t
tick_at_or_after(const struct dag *d, int64_t t)
{
    return cron_next(&d->cron, d->tz, t - 1);
}

/* Earliest logical date allowed, given start_date and the cursor. */
static int64_t
first_candidate(const struct dag *d, bool has_cursor, int64_t cursor)
{
    if (has_cursor)
        return cron_next(&d->cron, d->tz, cursor);
    if (d->has_start)
        return tick_at_or_after(d, d->start_date);
    return -1; /* unbounded below */
}

size_t
ticks_due(const struct dag *d, bool has_cursor, int64_t cursor, int64_t now, int64_t *out,
          size_t max)
{
    if (!d->schedule || max == 0)
        return 0;
    /* the latest interval that has ended by now: its start is the tick
     * before the last tick at or before now */
    int64_t last_end = cron_prev(&d->cron, d->tz, now + 1);
    if (last_end < 0)
        return 0;
    int64_t latest = cron_prev(&d->cron, d->tz, last_end);
    if (latest < 0)
        return 0;
    if (d->has_end && latest > d->end_date) {
        /* the last interval that is allowed */
        latest = cron_prev(&d->cron, d->tz, d->end_date + 1);
        if (latest < 0)
            return 0;
    }
    int64_t first = first_candidate(d, has_cursor, cursor);
    if (first >= 0 && latest < first)
        return 0;
    if (!d->catchup || first < 0) {
        out[0] = latest;
        return 1;
    }
    size_t n = 0;
    for (int64_t t = first; t >= 0 && t <= latest && n < max; t = cron_next(&d->cron, d->tz, t))
        out[n++] = t;
    return n;
}

bool
ticks_next(const struct dag *d, bool has_cursor, int64_t cursor, int64_t now,
           int64_t *logical_date, int64_t *create_at)
{
    if (!d->schedule)
        return false;
    int64_t t;
    int64_t first = first_candidate(d, has_cursor, cursor);
    int64_t due[1];
    if (ticks_due(d, has_cursor, cursor, now, due, 1) == 1) {
        /* one is due already (the scheduler creates it on its next pass) */
        t = due[0];
    } else {
        /* the interval that is running now ends at the next tick */
        int64_t cur_start = cron_prev(&d->cron, d->tz, now + 1);
        t = cur_start;
        if (t < 0 || (first >= 0 && t < first))
            t = first >= 0 ? first : cron_next(&d->cron, d->tz, now);
    }
    if (t < 0 || (d->has_end && t > d->end_date))
        return false;
    int64_t end = cron_next(&d->cron, d->tz, t);
    if (end < 0)
        return false;
    *logical_date = t;
    *create_at = end;
    return true;
}

size_t
ticks_range(const struct dag *d, int64_t from, int64_t to, int64_t *out, size_t max)
{
    if (!d->schedule)
        return 0;
    if (d->has_start && from < d->start_date)
        from = d->start_date;
    if (d->has_end && to > d->end_date)
        to = d->end_date;
    size_t n = 0;
    for (int64_t t = tick_at_or_after(d, from); t >= 0 && t <= to && n <= max;
         t = cron_next(&d->cron, d->tz, t)) {
        if (n < max)
            out[n] = t;
        n++;
    }
    return n;
}
