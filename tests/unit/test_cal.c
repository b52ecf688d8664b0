/* Tests for cal.c: civil dates, ISO 8601 formatting and parsing. */
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

#include "cal.h"
#include "err.h"

static void
test_days_from_civil(void **state)
{
    (void)state;
    assert_int_equal(cal_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(cal_days_from_civil(1970, 1, 2), 1);
    assert_int_equal(cal_days_from_civil(1969, 12, 31), -1);
    assert_int_equal(cal_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(cal_days_from_civil(1, 1, 1), -719162);
    assert_int_equal(cal_days_from_civil(9999, 12, 31), 2932896);
    /* Leap day and the day after it. */
    assert_int_equal(cal_days_from_civil(2024, 3, 1) - cal_days_from_civil(2024, 2, 29), 1);
    assert_int_equal(cal_days_from_civil(2024, 2, 29) - cal_days_from_civil(2024, 2, 28), 1);
    assert_int_equal(cal_days_from_civil(2027, 1, 1) - cal_days_from_civil(2026, 1, 1), 365);
    assert_int_equal(cal_days_from_civil(2029, 1, 1) - cal_days_from_civil(2028, 1, 1), 366);
    assert_int_equal(cal_days_from_civil(2101, 1, 1) - cal_days_from_civil(2100, 1, 1), 365);
    assert_int_equal(cal_days_from_civil(2001, 1, 1) - cal_days_from_civil(2000, 1, 1), 366);
}

static void
test_days_in_month(void **state)
{
    (void)state;
    assert_int_equal(cal_days_in_month(2026, 1), 31);
    assert_int_equal(cal_days_in_month(2026, 2), 28);
    assert_int_equal(cal_days_in_month(2024, 2), 29);
    assert_int_equal(cal_days_in_month(2000, 2), 29);
    assert_int_equal(cal_days_in_month(1900, 2), 28);
    assert_int_equal(cal_days_in_month(2100, 2), 28);
    assert_int_equal(cal_days_in_month(2026, 4), 30);
    assert_int_equal(cal_days_in_month(2026, 12), 31);
    assert_int_equal(cal_days_in_month(2026, 13), 0);
    assert_int_equal(cal_days_in_month(2026, 0), 0);
}

static void
test_split_join(void **state)
{
    (void)state;
    struct cal_tm tm;

    cal_split(0, &tm);
    assert_int_equal(tm.year, 1970);
    assert_int_equal(tm.mon, 1);
    assert_int_equal(tm.mday, 1);
    assert_int_equal(tm.hour, 0);
    assert_int_equal(tm.wday, 4); /* Thursday */

    cal_split(-1, &tm); /* 1969-12-31T23:59:59, a Wednesday */
    assert_int_equal(tm.year, 1969);
    assert_int_equal(tm.mon, 12);
    assert_int_equal(tm.mday, 31);
    assert_int_equal(tm.hour, 23);
    assert_int_equal(tm.min, 59);
    assert_int_equal(tm.sec, 59);
    assert_int_equal(tm.wday, 3);

    cal_split(951827696, &tm); /* 2000-02-29T12:34:56, a Tuesday */
    assert_int_equal(tm.year, 2000);
    assert_int_equal(tm.mon, 2);
    assert_int_equal(tm.mday, 29);
    assert_int_equal(tm.hour, 12);
    assert_int_equal(tm.min, 34);
    assert_int_equal(tm.sec, 56);
    assert_int_equal(tm.wday, 2);

    cal_split(1772953200, &tm); /* 2026-03-08T07:00:00, a Sunday */
    assert_int_equal(tm.wday, 0);
    assert_int_equal(tm.mday, 8);

    struct cal_tm j = {.year = 1900, .mon = 3, .mday = 1, .wday = 6};
    assert_int_equal(cal_join(&j), INT64_C(-2203891200));

    /* Round trip every day over 1600..2400 at a time of day that moves. */
    int64_t from = cal_days_from_civil(1600, 1, 1);
    int64_t to = cal_days_from_civil(2400, 12, 31);
    int prev_wday = -1;
    for (int64_t d = from; d <= to; d++) {
        int64_t s = d * 86400 + (d % 86400 + 86400) % 86400;
        cal_split(s, &tm);
        assert_int_equal(cal_join(&tm), s);
        assert_int_equal(cal_days_from_civil(tm.year, tm.mon, tm.mday), d);
        assert_true(tm.mday >= 1 && tm.mday <= cal_days_in_month(tm.year, tm.mon));
        if (prev_wday >= 0)
            assert_int_equal(tm.wday, (prev_wday + 1) % 7);
        prev_wday = tm.wday;
    }
}

static void
fmt_iso(int64_t utc, int off, int z, const char *want)
{
    char buf[64];
    size_t n = cal_format_iso(utc, off, z, buf, sizeof(buf));
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

static void
test_format(void **state)
{
    (void)state;
    char buf[64];

    fmt_iso(0, 0, 1, "1970-01-01T00:00:00Z");
    fmt_iso(0, 0, 0, "1970-01-01T00:00:00+00:00");
    fmt_iso(1772953200, -4 * 3600, 1, "2026-03-08T03:00:00-04:00");
    fmt_iso(1772953200 - 1, -5 * 3600, 0, "2026-03-08T01:59:59-05:00");
    fmt_iso(1767225600, 10 * 3600 + 1800, 1, "2026-01-01T10:30:00+10:30");
    fmt_iso(1767225600, 5 * 3600 + 45 * 60, 1, "2026-01-01T05:45:00+05:45");
    fmt_iso(-1, 0, 1, "1969-12-31T23:59:59Z");
    /* Local mean time offsets carry seconds. */
    fmt_iso(-2717650800, -17762, 0, "1883-11-18T12:03:58-04:56:02");

    /* A short buffer is truncated, never overrun. */
    size_t n = cal_format_iso(0, 0, 1, buf, 11);
    assert_string_equal(buf, "1970-01-01");
    assert_int_equal(n, 10);

    n = cal_format_date(1772953200, -5 * 3600, 0, buf, sizeof(buf));
    assert_string_equal(buf, "2026-03-08");
    assert_int_equal(n, 10);
    n = cal_format_date(1772953200, 0, 1, buf, sizeof(buf));
    assert_string_equal(buf, "20260308");
    assert_int_equal(n, 8);
    /* 2026-01-01T00:00Z is still Dec 31 in New York. */
    cal_format_date(1767225600, -5 * 3600, 0, buf, sizeof(buf));
    assert_string_equal(buf, "2025-12-31");
}

static void
parse_ok(const char *s, int64_t want, int want_time, int want_off)
{
    int64_t v = -7;
    int t = -7, o = -7;
    int rc = cal_parse(s, &v, &t, &o);
    if (rc != 0)
        fail_msg("'%s' should parse, got %d", s, rc);
    if (v != want)
        fail_msg("'%s': want %lld, got %lld", s, (long long)want, (long long)v);
    assert_int_equal(t, want_time);
    assert_int_equal(o, want_off);
}

static void
parse_bad(const char *s)
{
    int64_t v = -7;
    int t = -7, o = -7;
    int rc = cal_parse(s, &v, &t, &o);
    if (rc != CAIRN_EPARSE)
        fail_msg("'%s' should be rejected, got %d (value %lld)", s, rc, (long long)v);
    assert_int_equal(v, -7);
    assert_int_equal(t, -7);
    assert_int_equal(o, -7);
}

static void
test_parse_valid(void **state)
{
    (void)state;
    parse_ok("2026-01-01", 1767225600, 0, 0);
    parse_ok("2026-01-01T06:00", 1767247200, 1, 0);
    parse_ok("2026-01-01 06:00:00", 1767247200, 1, 0);
    parse_ok("2026-01-01t06:00:00", 1767247200, 1, 0);
    parse_ok("2026-01-01T06:00:00Z", 1767247200, 1, 1);
    parse_ok("2026-01-01T06:00Z", 1767247200, 1, 1);
    parse_ok("2026-01-01T06:00:00+00:00", 1767247200, 1, 1);
    parse_ok("2026-01-01T06:00:00+05:30", 1767227400, 1, 1);
    parse_ok("2026-01-01T06:00:00+0530", 1767227400, 1, 1);
    parse_ok("2026-01-01T06:00:00-02", 1767247200 + 7200, 1, 1);
    parse_ok("2026-01-01T06:00:00.750Z", 1767247200, 1, 1);
    parse_ok("2024-02-29", 1709164800, 0, 0);
    parse_ok("2000-02-29T12:34:56Z", 951827696, 1, 1);
    parse_ok("1969-12-31T23:59:59Z", -1, 1, 1);
    parse_ok("9999-12-31T23:59:59Z", INT64_C(253402300799), 1, 1);
    parse_ok("0001-01-01", INT64_C(-62135596800), 0, 0);

    /* The flags are optional. */
    int64_t v;
    assert_int_equal(cal_parse("2026-01-01", &v, NULL, NULL), 0);
    assert_int_equal(v, 1767225600);
}

static void
test_parse_invalid(void **state)
{
    (void)state;
    parse_bad("");
    parse_bad("2026");
    parse_bad("2026-02-30");
    parse_bad("2026-02-29"); /* not a leap year */
    parse_bad("2100-02-29");
    parse_bad("2026-04-31");
    parse_bad("2026-13-01");
    parse_bad("2026-00-10");
    parse_bad("2026-01-00");
    parse_bad("2026-01-32");
    parse_bad("2026-1-01");
    parse_bad("2026-01-1");
    parse_bad("26-01-01");
    parse_bad("2026/01/01");
    parse_bad("2026-01-01T24:00");
    parse_bad("2026-01-01T23:60");
    parse_bad("2026-01-01T23:59:60");
    parse_bad("2026-01-01T6:00");
    parse_bad("2026-01-01T06");
    parse_bad("2026-01-01T");
    parse_bad("2026-01-01Z"); /* an offset needs a time */
    parse_bad("2026-01-01T06:00:00+24:00");
    parse_bad("2026-01-01T06:00:00+05:60");
    parse_bad("2026-01-01T06:00:00+5");
    parse_bad("2026-01-01T06:00:00.");
    parse_bad("2026-01-01T06:00:00 ");
    parse_bad(" 2026-01-01");
    parse_bad("2026-01-01x");
    parse_bad("2026-01-01T06:00:00Zjunk");
    parse_bad("yesterday");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_days_from_civil), cmocka_unit_test(test_days_in_month),
        cmocka_unit_test(test_split_join),      cmocka_unit_test(test_format),
        cmocka_unit_test(test_parse_valid),     cmocka_unit_test(test_parse_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
