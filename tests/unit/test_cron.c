/* Tests for cron.c: parsing, matching, and ticks across DST transitions. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cal.h"
#include "cron.h"
#include "err.h"
#include "tz.h"

#define H 3600
#define BIT(n) (UINT64_C(1) << (n))

static int
have_tzdata(void)
{
    return access("/usr/share/zoneinfo/America/New_York", R_OK) == 0 &&
           access("/usr/share/zoneinfo/Australia/Adelaide", R_OK) == 0 &&
           access("/usr/share/zoneinfo/Europe/Berlin", R_OK) == 0;
}

#define NEED_TZDATA()                                                                              \
    do {                                                                                           \
        if (!have_tzdata())                                                                        \
            skip();                                                                                \
    } while (0)

static struct cron
parse_ok(const char *expr)
{
    struct cron c;
    char err[256] = "";
    int col = -1;
    int rc = cron_parse(&c, expr, err, sizeof(err), &col);
    if (rc != 0)
        fail_msg("'%s' should parse: %s (col %d)", expr, err, col);
    return c;
}

static const struct tz *
zone(const char *name)
{
    const struct tz *z = NULL;
    if (!name)
        return NULL;
    int rc = tz_load(&z, name);
    if (rc != 0)
        fail_msg("tz_load(%s): %s", name, cairn_err_name(rc));
    return z;
}

/* An instant from ISO 8601 with an offset. */
static int64_t
at(const char *iso)
{
    int64_t v;
    int has_time, has_offset;
    if (cal_parse(iso, &v, &has_time, &has_offset) != 0 || !has_offset)
        fail_msg("bad test instant '%s'", iso);
    return v;
}

static void
iso(const struct tz *z, int64_t t, char *buf, size_t len)
{
    if (t == -1) {
        snprintf(buf, len, "-1");
        return;
    }
    cal_format_iso(t, tz_offset_at(z, t), z == NULL, buf, len);
}

/* The next ticks after `after` are exactly want[] (ISO with the zone's
 * offset), and walking back from the last one gives them in reverse. */
static void
expect_next(const char *expr, const char *zname, const char *after, const char *const *want)
{
    struct cron c = parse_ok(expr);
    const struct tz *z = zone(zname);
    int64_t t = at(after), ticks[64];
    size_t n = 0;
    while (want[n]) {
        char got[48];
        t = cron_next(&c, z, t);
        iso(z, t, got, sizeof(got));
        if (strcmp(got, want[n]) != 0)
            fail_msg("'%s' in %s, tick %zu after %s: want %s, got %s", expr, zname ? zname : "UTC",
                     n + 1, after, want[n], got);
        ticks[n++] = t;
    }
    for (size_t i = n - 1; i > 0; i--) {
        int64_t p = cron_prev(&c, z, ticks[i]);
        if (p != ticks[i - 1]) {
            char got[48];
            iso(z, p, got, sizeof(got));
            fail_msg("'%s' in %s: prev of %s: want %s, got %s", expr, zname ? zname : "UTC",
                     want[i], want[i - 1], got);
        }
    }
}

#define NEXT(expr, zname, after, ...)                                                              \
    do {                                                                                           \
        static const char *const want_[] = {__VA_ARGS__, NULL};                                    \
        expect_next((expr), (zname), (after), want_);                                              \
    } while (0)

/* ---- Parsing --------------------------------------------------------------- */

static void
test_parse_fields(void **state)
{
    (void)state;
    struct cron c = parse_ok("* * * * *");
    assert_true(c.minute == BIT(60) - 1);
    assert_int_equal(c.hour, (uint32_t)(BIT(24) - 1));
    assert_int_equal(c.mday, (uint32_t)(BIT(32) - 2));
    assert_int_equal(c.month, (uint16_t)(BIT(13) - 2));
    assert_int_equal(c.wday, 0x7f);
    assert_true(c.mday_star && c.wday_star);

    c = parse_ok("0,15,30,45 */6 1-10/3 JAN,mar,Dec MON-FRI");
    assert_true(c.minute == (BIT(0) | BIT(15) | BIT(30) | BIT(45)));
    assert_int_equal(c.hour, BIT(0) | BIT(6) | BIT(12) | BIT(18));
    assert_int_equal(c.mday, BIT(1) | BIT(4) | BIT(7) | BIT(10));
    assert_int_equal(c.month, BIT(1) | BIT(3) | BIT(12));
    assert_int_equal(c.wday, 0x3e);
    assert_false(c.mday_star || c.wday_star);

    /* n/s means n-max/s; a-b/s steps inside the range. */
    c = parse_ok("5/15 10-20/5 */10 */4 1/2");
    assert_true(c.minute == (BIT(5) | BIT(20) | BIT(35) | BIT(50)));
    assert_int_equal(c.hour, BIT(10) | BIT(15) | BIT(20));
    assert_int_equal(c.mday, BIT(1) | BIT(11) | BIT(21) | BIT(31));
    assert_int_equal(c.month, BIT(1) | BIT(5) | BIT(9));
    assert_int_equal(c.wday, BIT(1) | BIT(3) | BIT(5));
    assert_true(c.mday_star); /* "*\/10" starts with '*' */
    assert_false(c.wday_star);

    /* 7 is Sunday, alone and in ranges; names and numbers mix. */
    assert_int_equal(parse_ok("0 0 * * 7").wday, BIT(0));
    assert_int_equal(parse_ok("0 0 * * 0").wday, BIT(0));
    assert_int_equal(parse_ok("0 0 * * sun").wday, BIT(0));
    assert_int_equal(parse_ok("0 0 * * 5-7").wday, BIT(0) | BIT(5) | BIT(6));
    assert_int_equal(parse_ok("0 0 * * FRI-7").wday, BIT(0) | BIT(5) | BIT(6));
    assert_int_equal(parse_ok("0 0 * * 0-7").wday, 0x7f);
    assert_int_equal(parse_ok("0 0 * Feb-4 *").month, BIT(2) | BIT(3) | BIT(4));
    assert_int_equal(parse_ok("0 0 * * Sat,Sun").wday, BIT(0) | BIT(6));

    /* Extra blanks around and between fields. */
    c = parse_ok("  0\t12  *  * *  ");
    assert_true(c.minute == BIT(0));
    assert_int_equal(c.hour, BIT(12));

    /* Steps larger than the values left keep the first value only. */
    assert_true(parse_ok("*/60 * * * *").minute == BIT(0));
    assert_true(parse_ok("59/7 * * * *").minute == BIT(59));
}

static void
assert_same(const struct cron *a, const struct cron *b)
{
    assert_true(a->minute == b->minute);
    assert_int_equal(a->hour, b->hour);
    assert_int_equal(a->mday, b->mday);
    assert_int_equal(a->month, b->month);
    assert_int_equal(a->wday, b->wday);
    assert_int_equal(a->mday_star, b->mday_star);
    assert_int_equal(a->wday_star, b->wday_star);
}

static void
test_macros(void **state)
{
    (void)state;
    static const char *const pairs[][2] = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"}, {"  @Daily ", "0 0 * * *"}, {"@HOURLY", "0 * * * *"},
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        struct cron a = parse_ok(pairs[i][0]);
        struct cron b = parse_ok(pairs[i][1]);
        assert_same(&a, &b);
    }
    NEXT("@weekly", NULL, "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z");
    NEXT("@yearly", "America/New_York", "2026-06-01T00:00:00Z", "2027-01-01T00:00:00-05:00",
         "2028-01-01T00:00:00-05:00", "2029-01-01T00:00:00-05:00");
    NEXT("@monthly", NULL, "2026-01-31T12:00:00Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z");
}

static void
parse_bad(const char *expr, int want_col, const char *want_msg)
{
    struct cron c;
    memset(&c, 0xab, sizeof(c));
    struct cron before = c;
    char err[256] = "";
    int col = -99;
    int rc = cron_parse(&c, expr, err, sizeof(err), &col);
    if (rc != CAIRN_EPARSE)
        fail_msg("'%s' should be rejected, got %d", expr, rc);
    if (col != want_col || !strstr(err, want_msg))
        fail_msg("'%s': want col %d and '%s', got col %d and '%s'", expr, want_col, want_msg, col,
                 err);
    assert_memory_equal(&c, &before, sizeof(c));
    /* The message and column are optional. */
    assert_int_equal(cron_parse(&c, expr, NULL, 0, NULL), CAIRN_EPARSE);
}

static void
test_parse_errors(void **state)
{
    (void)state;
    parse_bad("61 * * * *", 0, "minute value 61 out of range 0-59");
    parse_bad("0 0 * * 9", 8, "day-of-week value 9 out of range 0-7");
    parse_bad("0 0 * FOO *", 6, "unknown month name 'FOO'");
    parse_bad("0 0 * * FOO", 8, "unknown day-of-week name 'FOO'");
    parse_bad("0 0 * * MONDAY", 8, "unknown day-of-week name 'MONDAY'");
    parse_bad("0 0 * JAN-FOO *", 10, "unknown month name 'FOO'");
    parse_bad("0 24 * * *", 2, "hour value 24 out of range 0-23");
    parse_bad("0 0 0 * *", 4, "day-of-month value 0 out of range 1-31");
    parse_bad("0 0 32 * *", 4, "day-of-month value 32 out of range 1-31");
    parse_bad("0 0 * 13 *", 6, "month value 13 out of range 1-12");
    parse_bad("0 0 * 0 *", 6, "month value 0 out of range 1-12");
    parse_bad("0 0 * * 1-8", 10, "day-of-week value 8 out of range 0-7");
    parse_bad("0 99999999999 * * *", 2, "hour value 99999999999 out of range");
    parse_bad("*/0 * * * *", 2, "minute step 0 out of range 1-60");
    parse_bad("*/61 * * * *", 2, "minute step 61 out of range 1-60");
    parse_bad("0 0 1-5/ * *", 8, "step expected");
    parse_bad("5-2 * * * *", 0, "minute range 5-2 is reversed");
    parse_bad("0 0 * * FRI-MON", 8, "range FRI-MON is reversed");
    parse_bad("1,,2 * * * *", 2, "empty list item");
    parse_bad("1, * * * *", 2, "empty list item");
    parse_bad(",1 * * * *", 0, "empty list item");
    parse_bad("1-2-3 * * * *", 3, "unexpected character '-'");
    parse_bad("*5 * * * *", 1, "unexpected character '5'");
    parse_bad("0 0 ? * *", 4, "unexpected character '?'");
    parse_bad("a * * * *", 0, "minute takes numbers only, got 'a'");
    parse_bad("0 JAN * * *", 2, "hour takes numbers only");
    parse_bad("0 0 * *", 7, "4 fields, expected 5");
    parse_bad("0", 1, "1 field, expected 5");
    parse_bad("0 0 * * * *", 10, "too many fields");
    parse_bad("0 0 * * * 2026", 10, "too many fields");
    parse_bad("", 0, "empty cron expression");
    parse_bad("   ", 0, "empty cron expression");
    parse_bad("@reboot", 0, "unknown macro '@reboot'");
    parse_bad("  @every", 2, "unknown macro '@every'");
    parse_bad("@daily 5", 7, "unexpected text after @daily");
    parse_bad(NULL, 0, "empty cron expression");
}

/* ---- Matching in UTC ------------------------------------------------------- */

static void
test_next_basic(void **state)
{
    (void)state;
    NEXT("*/15 * * * *", NULL, "2026-01-01T10:07:30Z", "2026-01-01T10:15:00Z",
         "2026-01-01T10:30:00Z", "2026-01-01T10:45:00Z", "2026-01-01T11:00:00Z");
    /* Strictly after: a tick at `after` itself is not returned. */
    NEXT("0 * * * *", NULL, "2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z");
    NEXT("0 * * * *", NULL, "2026-01-01T09:59:59Z", "2026-01-01T10:00:00Z");
    NEXT("* * * * *", NULL, "2026-12-31T23:59:00Z", "2027-01-01T00:00:00Z", "2027-01-01T00:01:00Z");
    NEXT("30 23 31 12 *", NULL, "2026-06-01T00:00:00Z", "2026-12-31T23:30:00Z",
         "2027-12-31T23:30:00Z");
    NEXT("0 9-17/4 * * MON-FRI", NULL, "2026-01-02T12:00:00Z", "2026-01-02T13:00:00Z",
         "2026-01-02T17:00:00Z", "2026-01-05T09:00:00Z");
    NEXT("0 0 31 * *", NULL, "2026-01-31T00:00:00Z", "2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z",
         "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z");
    NEXT("0 12 * * 7", NULL, "2026-01-01T00:00:00Z", "2026-01-04T12:00:00Z",
         "2026-01-11T12:00:00Z");
    NEXT("0 12 * * 5-7", NULL, "2026-01-01T00:00:00Z", "2026-01-02T12:00:00Z",
         "2026-01-03T12:00:00Z", "2026-01-04T12:00:00Z", "2026-01-09T12:00:00Z");
    NEXT("15 10 * * *", NULL, "1969-12-31T00:00:00Z", "1969-12-31T10:15:00Z",
         "1970-01-01T10:15:00Z");
}

static void
test_day_of_month_or_week(void **state)
{
    (void)state;
    /* Both restricted: the 1st OR any Monday. */
    NEXT("0 0 1 * MON", NULL, "2025-12-31T12:00:00Z", "2026-01-01T00:00:00Z",
         "2026-01-05T00:00:00Z", "2026-01-12T00:00:00Z", "2026-01-19T00:00:00Z",
         "2026-01-26T00:00:00Z", "2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z",
         "2026-02-09T00:00:00Z");
    /* A field starting with '*' is unrestricted: days must match both. */
    NEXT("0 0 */2 * MON", NULL, "2025-12-31T12:00:00Z", "2026-01-05T00:00:00Z",
         "2026-01-19T00:00:00Z", "2026-02-09T00:00:00Z", "2026-02-23T00:00:00Z");
    /* "*\/7" starts with '*': only Sundays that fall on the 13th. */
    NEXT("0 0 13 * */7", NULL, "2026-01-01T00:00:00Z", "2026-09-13T00:00:00Z",
         "2026-12-13T00:00:00Z", "2027-06-13T00:00:00Z");
    /* Feb 29 or a Monday in February. */
    NEXT("0 0 29 2 MON", NULL, "2026-01-01T00:00:00Z", "2026-02-02T00:00:00Z",
         "2026-02-09T00:00:00Z", "2026-02-16T00:00:00Z", "2026-02-23T00:00:00Z",
         "2027-02-01T00:00:00Z");
}

static void
test_impossible_and_leap(void **state)
{
    (void)state;
    static const char *const never[] = {"0 0 30 2 *", "0 0 31 2 *", "0 0 31 4 *", "0 0 31 6,9,11 *",
                                        "* * 30 FEB *"};
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
        struct cron c = parse_ok(never[i]);
        assert_int_equal(cron_next(&c, NULL, at("2026-01-01T00:00:00Z")), -1);
        assert_int_equal(cron_prev(&c, NULL, at("2026-01-01T00:00:00Z")), -1);
    }
    NEXT("0 0 29 2 *", NULL, "2026-01-01T00:00:00Z", "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z",
         "2036-02-29T00:00:00Z");
    NEXT("0 12 28-29 2 *", NULL, "2027-02-28T13:00:00Z", "2028-02-28T12:00:00Z",
         "2028-02-29T12:00:00Z", "2029-02-28T12:00:00Z");
    struct cron c = parse_ok("0 0 29 2 *");
    assert_int_equal(cron_prev(&c, NULL, at("2031-06-01T00:00:00Z")), at("2028-02-29T00:00:00Z"));
    /* 2100 is not a leap year: from 2097 the next Feb 29 is 2104, beyond
     * the 5-year horizon. */
    assert_int_equal(cron_next(&c, NULL, at("2097-01-01T00:00:00Z")), -1);
    assert_int_equal(cron_next(&c, NULL, at("2095-01-01T00:00:00Z")), at("2096-02-29T00:00:00Z"));
    /* Out-of-range inputs give -1 instead of overflowing. */
    c = parse_ok("* * * * *");
    assert_int_equal(cron_next(&c, NULL, INT64_MAX), -1);
    assert_int_equal(cron_prev(&c, NULL, INT64_MIN), -1);
}

/* ---- DST ------------------------------------------------------------------- */

/* Ticks whose instant falls in [from, to). */
static int
count_ticks(const char *expr, const char *zname, const char *from, const char *to)
{
    struct cron c = parse_ok(expr);
    const struct tz *z = zone(zname);
    int64_t end = at(to), t = at(from) - 1, prev = INT64_MIN;
    int n = 0;
    for (;;) {
        t = cron_next(&c, z, t);
        assert_int_not_equal(t, -1);
        assert_true(t > prev);
        if (t >= end)
            return n;
        prev = t;
        n++;
    }
}

static void
test_new_york(void **state)
{
    (void)state;
    NEED_TZDATA();
    const char *ny = "America/New_York";
    /* Spring forward, 2026-03-08: 02:00-02:59 does not exist. The 02:00
     * tick fires at 03:00 EDT, the same instant as the 03:00 tick: once. */
    NEXT("0 * * * *", ny, "2026-03-07T23:30:00-05:00", "2026-03-08T00:00:00-05:00",
         "2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00");
    NEXT("30 2 * * *", ny, "2026-03-06T12:00:00-05:00", "2026-03-07T02:30:00-05:00",
         "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00");
    NEXT("0 2,3 * * *", ny, "2026-03-07T00:00:00-05:00", "2026-03-07T02:00:00-05:00",
         "2026-03-07T03:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00",
         "2026-03-09T03:00:00-04:00");
    NEXT("*/20 2 * * *", ny, "2026-03-08T00:00:00-05:00", "2026-03-08T03:00:00-04:00",
         "2026-03-09T02:00:00-04:00");
    NEXT("30 2,3 * * *", ny, "2026-03-08T00:00:00-05:00", "2026-03-08T03:00:00-04:00",
         "2026-03-08T03:30:00-04:00", "2026-03-09T02:30:00-04:00");

    /* Fall back, 2026-11-01: 01:00-01:59 happens twice; ticks in it fire
     * once, in the first (EDT) pass. */
    NEXT("0 * * * *", ny, "2026-11-01T00:30:00-04:00", "2026-11-01T01:00:00-04:00",
         "2026-11-01T02:00:00-05:00", "2026-11-01T03:00:00-05:00");
    NEXT("30 1 * * *", ny, "2026-10-30T12:00:00-04:00", "2026-10-31T01:30:00-04:00",
         "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00");
    NEXT("*/30 1 * * *", ny, "2026-11-01T00:00:00-04:00", "2026-11-01T01:00:00-04:00",
         "2026-11-01T01:30:00-04:00", "2026-11-02T01:00:00-05:00");
    /* Asked from inside the second pass, the repeated ticks are not due. */
    NEXT("*/30 * * * *", ny, "2026-11-01T01:10:00-05:00", "2026-11-01T02:00:00-05:00");
    NEXT("*/30 * * * *", ny, "2026-11-01T01:10:00-04:00", "2026-11-01T01:30:00-04:00",
         "2026-11-01T02:00:00-05:00");

    /* Whole days: hourly fires 23 times on the short day, 24 on the long
     * one; every-minute fires once per wall-clock minute that exists. */
    assert_int_equal(
        count_ticks("0 * * * *", ny, "2026-03-08T00:00:00-05:00", "2026-03-09T00:00:00-04:00"), 23);
    assert_int_equal(
        count_ticks("0 * * * *", ny, "2026-11-01T00:00:00-04:00", "2026-11-02T00:00:00-05:00"), 24);
    assert_int_equal(
        count_ticks("0 * * * *", ny, "2026-07-01T00:00:00-04:00", "2026-07-02T00:00:00-04:00"), 24);
    assert_int_equal(
        count_ticks("* * * * *", ny, "2026-03-08T00:00:00-05:00", "2026-03-09T00:00:00-04:00"),
        23 * 60);
    assert_int_equal(
        count_ticks("* * * * *", ny, "2026-11-01T00:00:00-04:00", "2026-11-02T00:00:00-05:00"),
        24 * 60);
    assert_int_equal(
        count_ticks("*/15 * * * *", ny, "2026-03-08T00:00:00-05:00", "2026-03-09T00:00:00-04:00"),
        92);
    assert_int_equal(
        count_ticks("*/15 * * * *", ny, "2026-11-01T00:00:00-04:00", "2026-11-02T00:00:00-05:00"),
        96);
    assert_int_equal(
        count_ticks("0 0 * * *", ny, "2026-03-01T00:00:00-05:00", "2026-12-01T00:00:00-05:00"),
        275);

    /* Beyond the table (2037), the footer rule: March 9 2042. */
    NEXT("30 2 * * *", ny, "2042-03-08T12:00:00-05:00", "2042-03-09T03:00:00-04:00",
         "2042-03-10T02:30:00-04:00");
}

static void
test_berlin(void **state)
{
    (void)state;
    NEED_TZDATA();
    const char *be = "Europe/Berlin";
    NEXT("30 2 * * *", be, "2026-03-28T12:00:00+01:00", "2026-03-29T03:00:00+02:00",
         "2026-03-30T02:30:00+02:00");
    NEXT("0 * * * *", be, "2026-03-29T00:30:00+01:00", "2026-03-29T01:00:00+01:00",
         "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00");
    NEXT("30 2 * * *", be, "2026-10-24T12:00:00+02:00", "2026-10-25T02:30:00+02:00",
         "2026-10-26T02:30:00+01:00");
    NEXT("0 * * * *", be, "2026-10-25T00:30:00+02:00", "2026-10-25T01:00:00+02:00",
         "2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+01:00", "2026-10-25T04:00:00+01:00");
    NEXT("0 3 * * SUN", be, "2026-03-22T12:00:00+01:00", "2026-03-29T03:00:00+02:00",
         "2026-04-05T03:00:00+02:00");
    assert_int_equal(
        count_ticks("0 * * * *", be, "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"), 23);
    assert_int_equal(
        count_ticks("0 * * * *", be, "2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00"), 24);
}

static void
test_adelaide(void **state)
{
    (void)state;
    NEED_TZDATA();
    const char *ad = "Australia/Adelaide";
    /* Back on 2026-04-05: 03:00 ACDT -> 02:00 ACST; 02:00-02:59 twice. */
    NEXT("30 2 * * *", ad, "2026-04-04T12:00:00+10:30", "2026-04-05T02:30:00+10:30",
         "2026-04-06T02:30:00+09:30");
    NEXT("0 * * * *", ad, "2026-04-05T00:30:00+10:30", "2026-04-05T01:00:00+10:30",
         "2026-04-05T02:00:00+10:30", "2026-04-05T03:00:00+09:30");
    /* Forward on 2026-10-04: 02:00 ACST -> 03:00 ACDT. */
    NEXT("30 2 * * *", ad, "2026-10-03T12:00:00+09:30", "2026-10-04T03:00:00+10:30",
         "2026-10-05T02:30:00+10:30");
    NEXT("0 * * * *", ad, "2026-10-04T00:30:00+09:30", "2026-10-04T01:00:00+09:30",
         "2026-10-04T03:00:00+10:30", "2026-10-04T04:00:00+10:30");
    NEXT("45 2 4 10 *", ad, "2026-01-01T00:00:00+10:30", "2026-10-04T03:00:00+10:30",
         "2027-10-04T02:45:00+10:30");
    assert_int_equal(
        count_ticks("0 * * * *", ad, "2026-04-05T00:00:00+10:30", "2026-04-06T00:00:00+09:30"), 24);
    assert_int_equal(
        count_ticks("0 * * * *", ad, "2026-10-04T00:00:00+09:30", "2026-10-05T00:00:00+10:30"), 23);
}

/* For many schedules and zones, around real transitions: ticks strictly
 * increase, next(t - 1) == t, prev walks the same ticks backwards, and
 * prev(next(x)) <= x < next(x). */
static void
test_next_prev_symmetry(void **state)
{
    (void)state;
    NEED_TZDATA();
    static const char *const exprs[] = {
        "* * * * *",    "0 * * * *", "30 2 * * *",      "0 2,3 * * *", "*/7 1-3 * * *",
        "59 1 * * *",   "0 0 * * *", "15,45 0-4 * * 0", "0 0 1 * MON", "*/20 2 * * *",
        "30 1 * * SUN", "0 3 * * *", "58 23 * * *",     "0 12 29 2 *",
    };
    static const struct {
        const char *zone, *from;
    } windows[] = {
        {"America/New_York", "2026-03-07T12:00:00Z"},
        {"America/New_York", "2026-10-31T12:00:00Z"},
        {"Europe/Berlin", "2026-03-28T12:00:00Z"},
        {"Europe/Berlin", "2026-10-24T12:00:00Z"},
        {"Australia/Adelaide", "2026-04-04T00:00:00Z"},
        {"Australia/Adelaide", "2026-10-03T00:00:00Z"},
        {"Australia/Lord_Howe", "2026-10-03T00:00:00Z"},
        {NULL, "2026-03-07T12:00:00Z"},
    };
    for (size_t w = 0; w < sizeof(windows) / sizeof(windows[0]); w++) {
        const struct tz *z = zone(windows[w].zone);
        int64_t from = at(windows[w].from);
        for (size_t e = 0; e < sizeof(exprs) / sizeof(exprs[0]); e++) {
            struct cron c = parse_ok(exprs[e]);
            int64_t t = from, prev = -1;
            for (int i = 0; i < 200 && t < from + 3 * 86400; i++) {
                int64_t n = cron_next(&c, z, t);
                assert_true(n > t);
                assert_int_equal(cron_next(&c, z, n - 1), n);
                assert_int_equal(cron_prev(&c, z, n + 1), n);
                if (prev != -1)
                    assert_int_equal(cron_prev(&c, z, n), prev);
                /* Probe between ticks. */
                int64_t mid = t + (n - t) / 2;
                assert_int_equal(cron_next(&c, z, mid), n);
                int64_t p = cron_prev(&c, z, mid + 1);
                assert_true(p <= mid && (p == prev || p == t || prev == -1));
                prev = n;
                t = n;
            }
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_macros),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_next_basic),
        cmocka_unit_test(test_day_of_month_or_week),
        cmocka_unit_test(test_impossible_and_leap),
        cmocka_unit_test(test_new_york),
        cmocka_unit_test(test_berlin),
        cmocka_unit_test(test_adelaide),
        cmocka_unit_test(test_next_prev_symmetry),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tz_cache_clear();
    return rc;
}
