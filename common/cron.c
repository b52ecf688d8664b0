/* cron.c - 5-field cron expressions and their ticks (see cron.h).
 *
 * Ticks are found by walking wall-clock candidates in the schedule's zone
 * and mapping each with tz_local_to_utc. That mapping is non-decreasing in
 * the wall-clock time (a gap collapses onto the first instant after it, a
 * repeated hour maps to its first occurrence), so the first matching
 * candidate whose instant lies past `after` gives the next tick, and two
 * candidates that collapse onto one instant produce one tick.
 */
#include "cron.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cal.h"
#include "err.h"
#include "tz.h"

/* Searches give up after this many days of wall-clock time. */
#define CRON_HORIZON_DAYS (5 * 366)
/* Inputs beyond year ~9999 are refused rather than overflowing. */
#define CRON_LIMIT INT64_C(253402300799)

enum cron_field { CRON_MIN, CRON_HOUR, CRON_MDAY, CRON_MON, CRON_WDAY, CRON_NFIELDS };

struct cron_field_def {
    const char *name;
    int lo, hi;  /* values accepted */
    int star_hi; /* top of '*' and of "n/step" */
};

static const struct cron_field_def cron_fields[CRON_NFIELDS] = {
    {"minute", 0, 59, 59}, {"hour", 0, 23, 23},      {"day-of-month", 1, 31, 31},
    {"month", 1, 12, 12},  {"day-of-week", 0, 7, 6},
};

static const char *const cron_month_names[12] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                 "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const cron_wday_names[7] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

struct cron_macro {
    const char *name;
    const char *expr;
};

static const struct cron_macro cron_macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

/* Parser state: the whole expression, for columns and messages. */
struct cron_pctx {
    const char *expr;
    char *err;
    size_t errlen;
    int *errcol;
};

static int cron__fail(struct cron_pctx *px, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
cron__fail(struct cron_pctx *px, const char *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verrf(0, px->err, px->errlen, fmt, ap);
    va_end(ap);
    if (px->errcol)
        *px->errcol = (int)(at - px->expr);
    return CAIRN_EPARSE;
}

static int
cron__upper(int c)
{
    return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

static bool
cron__is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool
cron__is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* One value: a number or, in the month and day-of-week fields, a name. */
static int
cron__value(struct cron_pctx *px, enum cron_field f, const char **pp, const char *end, int *out)
{
    const struct cron_field_def *d = &cron_fields[f];
    const char *p = *pp;
    if (p < end && cron__is_digit(*p)) {
        long v = 0;
        const char *q = p;
        while (q < end && cron__is_digit(*q)) {
            if (v < 100000)
                v = v * 10 + (*q - '0');
            q++;
        }
        if (v < d->lo || v > d->hi)
            return cron__fail(px, p, "%s value %.*s out of range %d-%d", d->name, (int)(q - p), p,
                              d->lo, d->hi);
        *out = (int)v;
        *pp = q;
        return 0;
    }
    if (p < end && cron__is_alpha(*p)) {
        const char *q = p;
        while (q < end && cron__is_alpha(*q))
            q++;
        const char *const *names = NULL;
        int nnames = 0, base = 0;
        if (f == CRON_MON) {
            names = cron_month_names;
            nnames = 12;
            base = 1;
        } else if (f == CRON_WDAY) {
            names = cron_wday_names;
            nnames = 7;
        }
        for (int i = 0; i < nnames && q - p == 3; i++) {
            if (cron__upper(p[0]) == names[i][0] && cron__upper(p[1]) == names[i][1] &&
                cron__upper(p[2]) == names[i][2]) {
                *out = base + i;
                *pp = q;
                return 0;
            }
        }
        if (f == CRON_MON)
            return cron__fail(px, p, "unknown month name '%.*s' (expected JAN-DEC or 1-12)",
                              (int)(q - p), p);
        if (f == CRON_WDAY)
            return cron__fail(px, p, "unknown day-of-week name '%.*s' (expected SUN-SAT or 0-7)",
                              (int)(q - p), p);
        return cron__fail(px, p, "%s takes numbers only, got '%.*s'", d->name, (int)(q - p), p);
    }
    if (p >= end)
        return cron__fail(px, p, "%s: value expected", d->name);
    return cron__fail(px, p, "%s: unexpected character '%c'", d->name, *p);
}

/* Parse one whitespace-free field [p, end) into a bit set. */
static int
cron__field(struct cron_pctx *px, enum cron_field f, const char *p, const char *end, uint64_t *bits)
{
    const struct cron_field_def *d = &cron_fields[f];
    uint64_t set = 0;
    for (;;) {
        const char *item = p;
        int lo = 0, hi = 0, step = 1;
        bool star = false, range = false;
        if (p < end && *p == '*') {
            star = true;
            lo = d->lo;
            hi = d->star_hi;
            p++;
        } else {
            if (p >= end || *p == ',')
                return cron__fail(px, p, "%s: empty list item", d->name);
            if (cron__value(px, f, &p, end, &lo) != 0)
                return CAIRN_EPARSE;
            hi = lo;
            if (p < end && *p == '-') {
                p++;
                if (cron__value(px, f, &p, end, &hi) != 0)
                    return CAIRN_EPARSE;
                if (hi < lo)
                    return cron__fail(px, item, "%s range %.*s is reversed", d->name,
                                      (int)(p - item), item);
                range = true;
            }
        }
        if (p < end && *p == '/') {
            const char *sp = ++p;
            long v = 0;
            if (p >= end || !cron__is_digit(*p))
                return cron__fail(px, sp, "%s: step expected after '/'", d->name);
            while (p < end && cron__is_digit(*p)) {
                if (v < 100000)
                    v = v * 10 + (*p - '0');
                p++;
            }
            long maxstep = d->star_hi - d->lo + 1;
            if (v < 1 || v > maxstep)
                return cron__fail(px, sp, "%s step %.*s out of range 1-%ld", d->name, (int)(p - sp),
                                  sp, maxstep);
            step = (int)v;
            if (!star && !range)
                hi = d->star_hi > lo ? d->star_hi : lo; /* "n/s" means n-max/s */
        }
        if (p < end && *p != ',')
            return cron__fail(px, p, "%s: unexpected character '%c'", d->name, *p);
        for (int v = lo; v <= hi; v += step)
            set |= UINT64_C(1) << (f == CRON_WDAY && v == 7 ? 0 : v);
        if (p >= end)
            break;
        p++; /* ',' */
        if (p >= end)
            return cron__fail(px, p, "%s: empty list item", d->name);
    }
    *bits = set;
    return 0;
}

static bool
cron__is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int
cron_parse(struct cron *out, const char *expr, char *err, size_t errlen, int *errcol)
{
    struct cron_pctx px = {expr, err, errlen, errcol};
    const char *fs[CRON_NFIELDS + 1], *fe[CRON_NFIELDS + 1];
    int nf = 0;

    if (err && errlen > 0)
        err[0] = '\0';
    if (!expr) {
        px.expr = "";
        return cron__fail(&px, px.expr, "empty cron expression");
    }
    const char *p = expr;
    while (cron__is_space(*p))
        p++;
    if (*p == '@') {
        const char *s = p;
        while (*p && !cron__is_space(*p))
            p++;
        const char *e = p;
        while (cron__is_space(*p))
            p++;
        for (size_t i = 0; i < sizeof(cron_macros) / sizeof(cron_macros[0]); i++) {
            const char *m = cron_macros[i].name;
            if (strlen(m) == (size_t)(e - s) && strncasecmp(m, s, (size_t)(e - s)) == 0) {
                if (*p)
                    return cron__fail(&px, p, "unexpected text after %s", m);
                return cron_parse(out, cron_macros[i].expr, NULL, 0, NULL);
            }
        }
        return cron__fail(&px, s,
                          "unknown macro '%.*s' (expected @yearly, @annually, @monthly, "
                          "@weekly, @daily, @midnight or @hourly)",
                          (int)(e - s), s);
    }
    while (*p) {
        if (nf == CRON_NFIELDS)
            return cron__fail(&px, p,
                              "too many fields: expected 5 (minute hour day-of-month month "
                              "day-of-week)");
        fs[nf] = p;
        while (*p && !cron__is_space(*p))
            p++;
        fe[nf++] = p;
        while (cron__is_space(*p))
            p++;
    }
    if (nf == 0)
        return cron__fail(&px, expr, "empty cron expression");
    if (nf < CRON_NFIELDS)
        return cron__fail(&px, p,
                          "%d field%s, expected 5 (minute hour day-of-month month "
                          "day-of-week)",
                          nf, nf == 1 ? "" : "s");

    uint64_t bits[CRON_NFIELDS];
    for (int i = 0; i < CRON_NFIELDS; i++)
        if (cron__field(&px, (enum cron_field)i, fs[i], fe[i], &bits[i]) != 0)
            return CAIRN_EPARSE;

    struct cron c = {
        .minute = bits[CRON_MIN],
        .hour = (uint32_t)bits[CRON_HOUR],
        .mday = (uint32_t)bits[CRON_MDAY],
        .month = (uint16_t)bits[CRON_MON],
        .wday = (uint8_t)bits[CRON_WDAY],
        .mday_star = fs[CRON_MDAY][0] == '*',
        .wday_star = fs[CRON_WDAY][0] == '*',
    };
    *out = c;
    return 0;
}

/* ---- Matching ------------------------------------------------------------ */

static bool
cron__day_ok(const struct cron *c, const struct cal_tm *tm)
{
    bool md = (c->mday >> tm->mday) & 1;
    bool wd = (c->wday >> tm->wday) & 1;
    if (c->mday_star || c->wday_star)
        return md && wd;
    return md || wd;
}

/* Lowest set bit >= from in bits (width <= 64), or -1. */
static int
cron__bit_up(uint64_t bits, int from, int width)
{
    for (int i = from; i < width; i++)
        if ((bits >> i) & 1)
            return i;
    return -1;
}

/* Highest set bit <= from, or -1. */
static int
cron__bit_down(uint64_t bits, int from)
{
    for (int i = from; i >= 0; i--)
        if ((bits >> i) & 1)
            return i;
    return -1;
}

static void
cron__set_wday(struct cal_tm *tm)
{
    int64_t d = cal_days_from_civil(tm->year, tm->mon, tm->mday);
    tm->wday = (int)(((d + 4) % 7 + 7) % 7);
}

/* The first matching wall-clock minute >= w (local seconds, minute-aligned)
 * that is <= limit, or INT64_MIN. Non-matching months, days and hours are
 * skipped whole. */
static int64_t
cron__match_up(const struct cron *c, int64_t w, int64_t limit)
{
    struct cal_tm tm;
    cal_split(w, &tm);
    for (;;) {
        int64_t cur = cal_join(&tm);
        if (cur > limit)
            return INT64_MIN;
        if (!((c->month >> tm.mon) & 1)) {
            int m = cron__bit_up(c->month, tm.mon + 1, 13);
            if (m < 0) {
                tm.year++;
                m = cron__bit_up(c->month, 1, 13);
            }
            tm.mon = m;
            tm.mday = 1;
            tm.hour = tm.min = 0;
            cron__set_wday(&tm);
            continue;
        }
        if (!cron__day_ok(c, &tm)) {
            if (++tm.mday > cal_days_in_month(tm.year, tm.mon)) {
                tm.mday = 1;
                if (++tm.mon > 12) {
                    tm.mon = 1;
                    tm.year++;
                }
            }
            tm.hour = tm.min = 0;
            tm.wday = (tm.wday + 1) % 7;
            continue;
        }
        int h = cron__bit_up(c->hour, tm.hour, 24);
        if (h < 0) {
            tm.hour = 23;
            tm.min = 59;
            tm.sec = 0;
            int64_t t = cal_join(&tm) + 60; /* next midnight */
            cal_split(t, &tm);
            continue;
        }
        if (h != tm.hour) {
            tm.hour = h;
            tm.min = 0;
        }
        int m = cron__bit_up(c->minute, tm.min, 60);
        if (m < 0) {
            tm.min = 59;
            int64_t t = cal_join(&tm) + 60; /* next hour */
            cal_split(t, &tm);
            continue;
        }
        tm.min = m;
        int64_t r = cal_join(&tm);
        return r > limit ? INT64_MIN : r;
    }
}

/* The last matching wall-clock minute <= w that is >= limit, or INT64_MIN. */
static int64_t
cron__match_down(const struct cron *c, int64_t w, int64_t limit)
{
    struct cal_tm tm;
    cal_split(w, &tm);
    for (;;) {
        int64_t cur = cal_join(&tm);
        if (cur < limit)
            return INT64_MIN;
        if (!((c->month >> tm.mon) & 1)) {
            int m = cron__bit_down(c->month, tm.mon - 1);
            if (m < 1) {
                tm.year--;
                m = cron__bit_down(c->month, 12);
            }
            tm.mon = m;
            tm.mday = cal_days_in_month(tm.year, tm.mon);
            tm.hour = 23;
            tm.min = 59;
            cron__set_wday(&tm);
            continue;
        }
        if (!cron__day_ok(c, &tm)) {
            if (--tm.mday < 1) {
                if (--tm.mon < 1) {
                    tm.mon = 12;
                    tm.year--;
                }
                tm.mday = cal_days_in_month(tm.year, tm.mon);
            }
            tm.hour = 23;
            tm.min = 59;
            tm.wday = (tm.wday + 6) % 7;
            continue;
        }
        int h = cron__bit_down(c->hour, tm.hour);
        if (h < 0) {
            tm.hour = tm.min = 0;
            int64_t t = cal_join(&tm) - 60; /* previous day 23:59 */
            cal_split(t, &tm);
            continue;
        }
        if (h != tm.hour) {
            tm.hour = h;
            tm.min = 59;
        }
        int m = cron__bit_down(c->minute, tm.min);
        if (m < 0) {
            tm.min = 0;
            int64_t t = cal_join(&tm) - 60; /* previous hour :59 */
            cal_split(t, &tm);
            continue;
        }
        tm.min = m;
        int64_t r = cal_join(&tm);
        return r < limit ? INT64_MIN : r;
    }
}

/* The latest wall-clock reading of any instant <= x. It is the reading of x
 * itself unless the clock was turned back shortly before x. */
static int64_t
cron__max_reading(const struct tz *z, int64_t x)
{
    int64_t start;
    int64_t best = x + tz_offset_span(z, x, &start, NULL);
    for (int i = 0; i < 8 && start != INT64_MIN && start > x - INT64_C(3) * 86400; i++) {
        int64_t prev_start;
        int off = tz_offset_span(z, start - 1, &prev_start, NULL);
        if (start - 1 + off > best)
            best = start - 1 + off;
        start = prev_start;
    }
    return best;
}

static int64_t
cron__floor_min(int64_t x)
{
    int64_t q = x / 60;
    if (x % 60 != 0 && x < 0)
        q--;
    return q * 60;
}

int64_t
cron_next(const struct cron *c, const struct tz *z, int64_t after)
{
    if (after < -CRON_LIMIT || after >= CRON_LIMIT)
        return -1;
    /* Every wall-clock time at or before the latest reading of an instant
     * <= after maps to an instant <= after. */
    int64_t w = cron__floor_min(cron__max_reading(z, after)) + 60;
    int64_t limit = w + (int64_t)CRON_HORIZON_DAYS * 86400;
    for (;;) {
        w = cron__match_up(c, w, limit);
        if (w == INT64_MIN)
            return -1;
        int64_t u = tz_local_to_utc(z, w, NULL);
        if (u > after)
            return u;
        w += 60;
    }
}

int64_t
cron_prev(const struct cron *c, const struct tz *z, int64_t before)
{
    if (before <= -CRON_LIMIT || before > CRON_LIMIT)
        return -1;
    /* A wall-clock time maps to an instant < before exactly when it is at or
     * before the latest reading of an instant <= before - 1. */
    int64_t w = cron__floor_min(cron__max_reading(z, before - 1));
    int64_t limit = w - (int64_t)CRON_HORIZON_DAYS * 86400;
    for (;;) {
        w = cron__match_down(c, w, limit);
        if (w == INT64_MIN)
            return -1;
        int64_t u = tz_local_to_utc(z, w, NULL);
        if (u < before)
            return u;
        w -= 60;
    }
}
