/* Tests for units.c: durations and sizes. */
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

#include "err.h"
#include "units.h"

#define SEC INT64_C(1000)
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

static int64_t
dur_ok(const char *s)
{
    int64_t v = -12345;
    char err[256];
    int rc = units_parse_duration(s, &v, err, sizeof(err));
    if (rc != 0)
        fail_msg("'%s' should parse, got %d: %s", s, rc, err);
    assert_string_equal(err, "");
    return v;
}

/* Parse must fail with code; the message must contain want. *out untouched. */
static void
dur_bad(const char *s, int code, const char *want)
{
    int64_t v = -12345;
    char err[256] = "junk";
    int rc = units_parse_duration(s, &v, err, sizeof(err));
    if (rc != code)
        fail_msg("'%s': want %d, got %d (%s)", s, code, rc, err);
    assert_int_equal(v, -12345);
    if (!strstr(err, want))
        fail_msg("'%s': message '%s' lacks '%s'", s, err, want);
}

static int64_t
size_ok(const char *s)
{
    int64_t v = -12345;
    char err[256];
    int rc = units_parse_size(s, &v, err, sizeof(err));
    if (rc != 0)
        fail_msg("'%s' should parse, got %d: %s", s, rc, err);
    return v;
}

static void
size_bad(const char *s, int code, const char *want)
{
    int64_t v = -12345;
    char err[256] = "junk";
    int rc = units_parse_size(s, &v, err, sizeof(err));
    if (rc != code)
        fail_msg("'%s': want %d, got %d (%s)", s, code, rc, err);
    assert_int_equal(v, -12345);
    if (!strstr(err, want))
        fail_msg("'%s': message '%s' lacks '%s'", s, err, want);
}

static void
test_duration_valid(void **state)
{
    (void)state;
    assert_int_equal(dur_ok("30s"), 30 * SEC);
    assert_int_equal(dur_ok("10m"), 10 * MIN);
    assert_int_equal(dur_ok("2h"), 2 * HOUR);
    assert_int_equal(dur_ok("1h30m"), HOUR + 30 * MIN);
    assert_int_equal(dur_ok("1d"), DAY);
    assert_int_equal(dur_ok("500ms"), 500);
    assert_int_equal(dur_ok("0"), 0);
    assert_int_equal(dur_ok("0s"), 0);
    assert_int_equal(dur_ok("1d2h3m4s5ms"), DAY + 2 * HOUR + 3 * MIN + 4 * SEC + 5);
    assert_int_equal(dur_ok("1m500ms"), MIN + 500);
    assert_int_equal(dur_ok("90m"), 90 * MIN);
    assert_int_equal(dur_ok("007s"), 7 * SEC);
    assert_int_equal(dur_ok("1h0m"), HOUR);
}

static void
test_duration_exact_messages(void **state)
{
    char err[256];
    int64_t v;
    (void)state;
    assert_int_equal(units_parse_duration("5x", &v, err, sizeof(err)), CAIRN_EPARSE);
    assert_string_equal(err, "invalid duration '5x': unknown unit 'x' (use ms, s, m, h, d)");
    assert_int_equal(units_parse_duration("10", &v, err, sizeof(err)), CAIRN_EPARSE);
    assert_string_equal(err, "invalid duration '10': missing unit after '10' (use ms, s, m, h, d)");
}

static void
test_duration_invalid(void **state)
{
    (void)state;
    dur_bad("", CAIRN_EPARSE, "empty");
    dur_bad("-5s", CAIRN_EPARSE, "negative");
    dur_bad("1.5h", CAIRN_EPARSE, "fractions are not allowed");
    dur_bad("10", CAIRN_EPARSE, "missing unit");
    dur_bad("5x", CAIRN_EPARSE, "unknown unit 'x'");
    dur_bad("1m1h", CAIRN_EPARSE, "unit 'h' comes after 'm'");
    dur_bad("1s1m", CAIRN_EPARSE, "unit 'm' comes after 's'");
    dur_bad("1ms1s", CAIRN_EPARSE, "unit 's' comes after 'ms'");
    dur_bad("1h1h", CAIRN_EPARSE, "unit 'h' appears twice");
    dur_bad("1h 30m", CAIRN_EPARSE, "spaces are not allowed");
    dur_bad(" 1h", CAIRN_EPARSE, "spaces are not allowed");
    dur_bad("1h ", CAIRN_EPARSE, "spaces are not allowed");
    dur_bad("h", CAIRN_EPARSE, "missing number before unit 'h'");
    dur_bad("1hm", CAIRN_EPARSE, "unknown unit 'hm'");
    dur_bad("5H", CAIRN_EPARSE, "units are lowercase");
    dur_bad("5min", CAIRN_EPARSE, "unknown unit 'min'");
    dur_bad("+5s", CAIRN_EPARSE, "unexpected character '+'");
    dur_bad("5%", CAIRN_EPARSE, "unexpected character '%'");
    dur_bad("1h-5m", CAIRN_EPARSE, "unexpected character '-'");
    dur_bad("00", CAIRN_EPARSE, "missing unit");
    /* Overflow: in the digits, in the multiplication, in the sum. */
    dur_bad("99999999999999999999ms", CAIRN_ERANGE, "too large");
    dur_bad("9223372036854776d", CAIRN_ERANGE, "too large");
    dur_bad("106751991167d23h", CAIRN_ERANGE, "too large");
}

static void
test_duration_limits(void **state)
{
    (void)state;
    assert_int_equal(dur_ok("9223372036854775807ms"), INT64_MAX);
    /* The largest whole number of days that fits. */
    assert_int_equal(dur_ok("106751991167d"), INT64_C(106751991167) * DAY);
    /* A long input is shortened in the message, never overflowing err. */
    char s[300], err[64];
    int64_t v;
    memset(s, '1', sizeof(s) - 2);
    s[sizeof(s) - 2] = 'x';
    s[sizeof(s) - 1] = '\0';
    assert_int_equal(units_parse_duration(s, &v, err, sizeof(err)), CAIRN_ERANGE);
    assert_true(strlen(err) < sizeof(err));
    /* err may be NULL. */
    assert_int_equal(units_parse_duration("5x", &v, NULL, 0), CAIRN_EPARSE);
    assert_int_equal(units_parse_size("5Q", &v, NULL, 0), CAIRN_EPARSE);
}

static void
roundtrip(int64_t ms, const char *want)
{
    char buf[UNITS_DURATION_BUFSZ];
    int64_t back = -1;
    char err[128];

    units_format_duration(ms, buf, sizeof(buf));
    if (want)
        assert_string_equal(buf, want);
    assert_int_equal(units_parse_duration(buf, &back, err, sizeof(err)), 0);
    assert_int_equal(back, ms);
}

static void
test_duration_format(void **state)
{
    (void)state;
    roundtrip(0, "0s");
    roundtrip(250, "250ms");
    roundtrip(30 * SEC, "30s");
    roundtrip(HOUR + 30 * MIN, "1h30m");
    roundtrip(DAY, "1d");
    roundtrip(DAY + 2 * HOUR + 3 * MIN + 4 * SEC + 5, "1d2h3m4s5ms");
    roundtrip(25 * HOUR, "1d1h");
    roundtrip(HOUR + 1, "1h1ms");
    roundtrip(INT64_MAX, "106751991167d7h12m55s807ms");
    /* A spread of values, including every small one. */
    for (int64_t ms = 0; ms < 200000; ms += 7)
        roundtrip(ms, NULL);
    for (int64_t ms = 1; ms > 0 && ms < INT64_MAX / 3; ms = ms * 3 + 1)
        roundtrip(ms, NULL);

    char buf[UNITS_DURATION_BUFSZ];
    units_format_duration(-90 * SEC, buf, sizeof(buf));
    assert_string_equal(buf, "-1m30s");
    units_format_duration(INT64_MIN, buf, sizeof(buf));
    assert_string_equal(buf, "-106751991167d7h12m55s808ms");
    /* Truncation keeps a terminated string. */
    char tiny[5];
    units_format_duration(DAY + 2 * HOUR + 3 * MIN, tiny, sizeof(tiny));
    assert_string_equal(tiny, "1d2h");
    char one[1] = {'z'};
    units_format_duration(HOUR, one, sizeof(one));
    assert_int_equal(one[0], '\0');
}

static void
test_size_valid(void **state)
{
    (void)state;
    assert_int_equal(size_ok("512Mi"), INT64_C(512) << 20);
    assert_int_equal(size_ok("1Gi"), INT64_C(1) << 30);
    assert_int_equal(size_ok("500M"), INT64_C(500000000));
    assert_int_equal(size_ok("100"), 100);
    assert_int_equal(size_ok("0"), 0);
    assert_int_equal(size_ok("100B"), 100);
    assert_int_equal(size_ok("1G"), INT64_C(1000000000));
    assert_int_equal(size_ok("2Ki"), 2048);
    assert_int_equal(size_ok("3K"), 3000);
    assert_int_equal(size_ok("500MB"), INT64_C(500000000));
    assert_int_equal(size_ok("1GiB"), INT64_C(1) << 30);
    assert_int_equal(size_ok("2T"), INT64_C(2000000000000));
    assert_int_equal(size_ok("2Ti"), INT64_C(2) << 40);
    assert_int_equal(size_ok("4KiB"), 4096);
    assert_int_equal(size_ok("8388607Ti"), INT64_C(8388607) << 40);
    assert_int_equal(size_ok("9223372036854775807"), INT64_MAX);
}

static void
test_size_invalid(void **state)
{
    (void)state;
    size_bad("", CAIRN_EPARSE, "empty");
    size_bad("-1M", CAIRN_EPARSE, "negative");
    size_bad("1.5G", CAIRN_EPARSE, "fractions are not allowed");
    size_bad("12Q", CAIRN_EPARSE, "unknown unit 'Q'");
    size_bad("1g", CAIRN_EPARSE, "case-sensitive");
    size_bad("1mi", CAIRN_EPARSE, "unknown unit 'mi'");
    size_bad("1 G", CAIRN_EPARSE, "spaces are not allowed");
    size_bad("G", CAIRN_EPARSE, "expected a number");
    size_bad("1GiBB", CAIRN_EPARSE, "unknown unit 'GiBB'");
    size_bad("1iB", CAIRN_EPARSE, "unknown unit 'iB'");
    size_bad("8388608Ti", CAIRN_ERANGE, "too large");
    size_bad("9223372036854775808", CAIRN_ERANGE, "too large");
    size_bad("99999999999999999999G", CAIRN_ERANGE, "too large");

    char err[256];
    int64_t v;
    assert_int_equal(units_parse_size("12Q", &v, err, sizeof(err)), CAIRN_EPARSE);
    assert_string_equal(err, "invalid size '12Q': unknown unit 'Q' (use K, M, G, T, Ki, Mi, Gi, "
                             "Ti, optionally followed by B)");
}

static void
test_size_format(void **state)
{
    (void)state;
    char buf[UNITS_SIZE_BUFSZ];
    int64_t v;
    units_format_size(10LL << 20, buf, sizeof(buf));
    assert_string_equal(buf, "10MiB");
    units_format_size(3LL << 30, buf, sizeof(buf));
    assert_string_equal(buf, "3GiB");
    units_format_size(1536LL * 1024, buf, sizeof(buf));
    assert_string_equal(buf, "1536KiB");
    units_format_size(1000, buf, sizeof(buf));
    assert_string_equal(buf, "1000 bytes");
    units_format_size(0, buf, sizeof(buf));
    assert_string_equal(buf, "0 bytes");
    /* what it writes for whole units parses back */
    units_format_size(5LL << 40, buf, sizeof(buf));
    assert_int_equal(units_parse_size(buf, &v, NULL, 0), 0);
    assert_int_equal(v, 5LL << 40);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_valid),   cmocka_unit_test(test_duration_exact_messages),
        cmocka_unit_test(test_duration_invalid), cmocka_unit_test(test_duration_limits),
        cmocka_unit_test(test_duration_format),  cmocka_unit_test(test_size_valid),
        cmocka_unit_test(test_size_invalid),     cmocka_unit_test(test_size_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
