/* cal.c - civil calendar arithmetic and ISO 8601 (see cal.h). */
#include "cal.h"

#include <stdbool.h>
#include <stdio.h>

#include "err.h"

#define CAL_DAY 86400

/* Floor division and modulo for a positive divisor. */
static int64_t
cal__fdiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b) != 0 && a < 0)
        q--;
    return q;
}

static int64_t
cal__fmod(int64_t a, int64_t b)
{
    int64_t r = a % b;
    return r < 0 ? r + b : r;
}

static bool
cal__is_leap(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int
cal_days_in_month(int year, int mon)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mon < 1 || mon > 12)
        return 0;
    if (mon == 2 && cal__is_leap(year))
        return 29;
    return dim[mon - 1];
}

/* Howard Hinnant's days_from_civil: eras of 400 years (146097 days). */
int64_t
cal_days_from_civil(int year, int mon, int mday)
{
    int64_t y = (int64_t)year - (mon <= 2);
    int64_t era = cal__fdiv(y, 400);
    int64_t yoe = y - era * 400;                         /* 0..399 */
    int64_t mp = (mon + 9) % 12;                         /* March = 0 */
    int64_t doy = (153 * mp + 2) / 5 + mday - 1;         /* 0..365 */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; /* 0..146096 */
    return era * 146097 + doe - 719468;
}

static void
cal__civil_from_days(int64_t z, int *year, int *mon, int *mday)
{
    z += 719468;
    int64_t era = cal__fdiv(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1);
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = (int)(yoe + era * 400 + (m <= 2));
    *mon = m;
    *mday = d;
}

void
cal_split(int64_t secs, struct cal_tm *out)
{
    int64_t days = cal__fdiv(secs, CAL_DAY);
    int64_t rem = secs - days * CAL_DAY;
    cal__civil_from_days(days, &out->year, &out->mon, &out->mday);
    out->hour = (int)(rem / 3600);
    out->min = (int)(rem / 60 % 60);
    out->sec = (int)(rem % 60);
    out->wday = (int)cal__fmod(days + 4, 7); /* 1970-01-01 was a Thursday */
}

int64_t
cal_join(const struct cal_tm *tm)
{
    return cal_days_from_civil(tm->year, tm->mon, tm->mday) * CAL_DAY + (int64_t)tm->hour * 3600 +
           (int64_t)tm->min * 60 + tm->sec;
}

static size_t
cal__clamp(int n, size_t len)
{
    if (n < 0)
        return 0;
    if ((size_t)n >= len)
        return len ? len - 1 : 0;
    return (size_t)n;
}

size_t
cal_format_iso(int64_t utc, int offset, int z_for_utc, char *buf, size_t len)
{
    struct cal_tm tm;
    char off[16];
    cal_split(utc + offset, &tm);
    if (offset == 0 && z_for_utc) {
        off[0] = 'Z';
        off[1] = '\0';
    } else {
        int a = offset < 0 ? -offset : offset;
        char sign = offset < 0 ? '-' : '+';
        if (a % 60 != 0)
            snprintf(off, sizeof(off), "%c%02d:%02d:%02d", sign, a / 3600, a / 60 % 60, a % 60);
        else
            snprintf(off, sizeof(off), "%c%02d:%02d", sign, a / 3600, a / 60 % 60);
    }
    int n = snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d%s", tm.year, tm.mon, tm.mday, tm.hour,
                     tm.min, tm.sec, off);
    return cal__clamp(n, len);
}

size_t
cal_format_date(int64_t utc, int offset, int nodash, char *buf, size_t len)
{
    struct cal_tm tm;
    cal_split(utc + offset, &tm);
    int n =
        snprintf(buf, len, nodash ? "%04d%02d%02d" : "%04d-%02d-%02d", tm.year, tm.mon, tm.mday);
    return cal__clamp(n, len);
}

/* Read exactly n digits at *p; advances *p. Returns -1 if they are not there. */
static int
cal__digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    return v;
}

/* "Z", "+HH", "+HH:MM", "+HHMM" (or '-'); sets *off to seconds east. */
static int
cal__parse_offset(const char **pp, int *off)
{
    const char *p = *pp;
    if (*p == 'Z' || *p == 'z') {
        *off = 0;
        *pp = p + 1;
        return 0;
    }
    if (*p != '+' && *p != '-')
        return CAIRN_EPARSE;
    int sign = *p == '-' ? -1 : 1;
    p++;
    int hh = cal__digits(&p, 2);
    int mm = 0;
    if (hh < 0 || hh > 23)
        return CAIRN_EPARSE;
    if (*p == ':') {
        p++;
        mm = cal__digits(&p, 2);
        if (mm < 0)
            return CAIRN_EPARSE;
    } else if (*p >= '0' && *p <= '9') {
        mm = cal__digits(&p, 2);
        if (mm < 0)
            return CAIRN_EPARSE;
    }
    if (mm > 59)
        return CAIRN_EPARSE;
    *off = sign * (hh * 3600 + mm * 60);
    *pp = p;
    return 0;
}

int
cal_parse(const char *s, int64_t *secs, int *has_time, int *has_offset)
{
    struct cal_tm tm = {0};
    const char *p = s;
    int time = 0, offset = 0, off = 0;

    if (!s)
        return CAIRN_EPARSE;
    tm.year = cal__digits(&p, 4);
    if (tm.year < 0 || *p++ != '-')
        return CAIRN_EPARSE;
    tm.mon = cal__digits(&p, 2);
    if (tm.mon < 1 || tm.mon > 12 || *p++ != '-')
        return CAIRN_EPARSE;
    tm.mday = cal__digits(&p, 2);
    if (tm.mday < 1 || tm.mday > cal_days_in_month(tm.year, tm.mon))
        return CAIRN_EPARSE;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        time = 1;
        tm.hour = cal__digits(&p, 2);
        if (tm.hour < 0 || tm.hour > 23 || *p++ != ':')
            return CAIRN_EPARSE;
        tm.min = cal__digits(&p, 2);
        if (tm.min < 0 || tm.min > 59)
            return CAIRN_EPARSE;
        if (*p == ':') {
            p++;
            tm.sec = cal__digits(&p, 2);
            if (tm.sec < 0 || tm.sec > 59)
                return CAIRN_EPARSE;
            if (*p == '.' || *p == ',') { /* fractions are accepted and dropped */
                p++;
                if (*p < '0' || *p > '9')
                    return CAIRN_EPARSE;
                while (*p >= '0' && *p <= '9')
                    p++;
            }
        }
        if (*p != '\0') {
            if (cal__parse_offset(&p, &off) != 0)
                return CAIRN_EPARSE;
            offset = 1;
        }
    }
    if (*p != '\0')
        return CAIRN_EPARSE;
    *secs = cal_join(&tm) - off;
    if (has_time)
        *has_time = time;
    if (has_offset)
        *has_offset = offset;
    return 0;
}
