/* Which runs a schedule asks for: interval math, catchup, start/end dates,
 * cursors (restart without double fire or gap), ranges (backfill). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cal.h"
#include "dag.h"
#include "diag.h"
#include "ticks.h"
#include "tz.h"

static struct dag *
load(const char *yaml)
{
    struct diag_list dl;
    struct dag *d = NULL;
    diag_list_init(&dl);
    int rc = dag_load_buffer(&d, yaml, strlen(yaml), "t.yaml", &dl);
    if (rc)
        diag_print(&dl, stderr);
    diag_list_free(&dl);
    assert_int_equal(rc, 0);
    return d;
}

static int64_t
utc(int y, int mo, int d, int h, int mi)
{
    struct cal_tm tm = {y, mo, d, h, mi, 0, 0};
    return cal_join(&tm);
}

static void
test_daily_interval(void **state)
{
    (void)state;
    struct dag *d = load("dag: x\nschedule: '0 6 * * *'\nstart_date: 2026-01-01\n"
                         "tasks: {a: {command: [true]}}\n");
    int64_t out[8];
    /* at 2026-01-02 05:59 the Jan 1 06:00 interval has not ended */
    assert_int_equal(ticks_due(d, false, 0, utc(2026, 1, 2, 5, 59), out, 8), 0);
    /* at 06:00 it has: the run for logical date Jan 1 06:00 is due */
    assert_int_equal(ticks_due(d, false, 0, utc(2026, 1, 2, 6, 0), out, 8), 1);
    assert_int_equal(out[0], utc(2026, 1, 1, 6, 0));
    /* data interval end = next tick */
    int64_t end;
    dag_interval(d, out[0], &end);
    assert_int_equal(end, utc(2026, 1, 2, 6, 0));
    /* cursor at Jan 1: nothing more until Jan 3 06:00 */
    assert_int_equal(ticks_due(d, true, utc(2026, 1, 1, 6, 0), utc(2026, 1, 3, 5, 0), out, 8), 0);
    int64_t ld, at;
    assert_true(ticks_next(d, true, utc(2026, 1, 1, 6, 0), utc(2026, 1, 3, 5, 0), &ld, &at));
    assert_int_equal(ld, utc(2026, 1, 2, 6, 0));
    assert_int_equal(at, utc(2026, 1, 3, 6, 0));
    dag_free(d);
}

static void
test_catchup(void **state)
{
    (void)state;
#define CATCHUP_DAG(v)                                                                     \
    "dag: x\nschedule: '@daily'\nstart_date: 2026-01-01\ncatchup: " v "\n"                  \
    "tasks: {a: {command: [true]}}\n"
    int64_t out[16];
    struct dag *d = load(CATCHUP_DAG("true"));
    /* at Jan 5 12:00: intervals Jan 1..Jan 4 have ended */
    size_t n = ticks_due(d, false, 0, utc(2026, 1, 5, 12, 0), out, 16);
    assert_int_equal(n, 4);
    assert_int_equal(out[0], utc(2026, 1, 1, 0, 0));
    assert_int_equal(out[3], utc(2026, 1, 4, 0, 0));
    /* at most max, oldest first */
    assert_int_equal(ticks_due(d, false, 0, utc(2026, 1, 5, 12, 0), out, 2), 2);
    assert_int_equal(out[1], utc(2026, 1, 2, 0, 0));
    /* after a restart with the cursor at Jan 2: Jan 3 and 4, no double fire */
    n = ticks_due(d, true, utc(2026, 1, 2, 0, 0), utc(2026, 1, 5, 12, 0), out, 16);
    assert_int_equal(n, 2);
    assert_int_equal(out[0], utc(2026, 1, 3, 0, 0));
    dag_free(d);

    d = load(CATCHUP_DAG("false"));
    n = ticks_due(d, false, 0, utc(2026, 1, 5, 12, 0), out, 16);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], utc(2026, 1, 4, 0, 0)); /* only the latest */
    /* nothing new after it was created */
    assert_int_equal(ticks_due(d, true, out[0], utc(2026, 1, 5, 12, 0), out, 16), 0);
    dag_free(d);
}

static void
test_end_date_and_hourly(void **state)
{
    (void)state;
    struct dag *d = load("dag: x\nschedule: '@hourly'\nstart_date: 2026-01-01T00:00:00Z\n"
                         "end_date: 2026-01-01T03:00:00Z\ncatchup: true\n"
                         "tasks: {a: {command: [true]}}\n");
    int64_t out[16];
    size_t n = ticks_due(d, false, 0, utc(2026, 1, 2, 0, 0), out, 16);
    assert_int_equal(n, 4); /* 00:00, 01:00, 02:00, 03:00 */
    assert_int_equal(out[3], utc(2026, 1, 1, 3, 0));
    int64_t ld, at;
    assert_false(ticks_next(d, true, out[3], utc(2026, 1, 2, 0, 0), &ld, &at));
    dag_free(d);
}

static void
test_weekly_with_zone(void **state)
{
    (void)state;
    /* Mondays 09:00 Berlin; across the 2026-03-29 spring-forward */
    struct dag *d = load("dag: x\nschedule: '0 9 * * MON'\ntimezone: Europe/Berlin\n"
                         "start_date: 2026-03-16\ncatchup: true\n"
                         "tasks: {a: {command: [true]}}\n");
    int64_t out[8];
    size_t n = ticks_due(d, false, 0, utc(2026, 4, 6, 0, 0), out, 8);
    assert_int_equal(n, 2); /* Mar 16 and Mar 23 (Mar 30's interval ends Apr 6 07:00Z) */
    assert_int_equal(out[0], utc(2026, 3, 16, 8, 0)); /* CET: UTC+1 */
    assert_int_equal(out[1], utc(2026, 3, 23, 8, 0));
    n = ticks_due(d, false, 0, utc(2026, 4, 6, 7, 0), out, 8);
    assert_int_equal(n, 3);
    assert_int_equal(out[2], utc(2026, 3, 30, 7, 0)); /* CEST: UTC+2 */
    dag_free(d);
}

static void
test_range(void **state)
{
    (void)state;
    struct dag *d = load("dag: x\nschedule: '0 6 * * *'\ntasks: {a: {command: [true]}}\n");
    int64_t out[8];
    /* bare dates Jan 1..Jan 4 inclusive: [Jan 1 00:00, Jan 4 23:59:59] */
    size_t n = ticks_range(d, utc(2026, 1, 1, 0, 0), utc(2026, 1, 5, 0, 0) - 1, out, 8);
    assert_int_equal(n, 4);
    assert_int_equal(out[0], utc(2026, 1, 1, 6, 0));
    assert_int_equal(out[3], utc(2026, 1, 4, 6, 0));
    /* an inclusive end exactly on a tick includes it */
    n = ticks_range(d, utc(2026, 1, 1, 6, 0), utc(2026, 1, 2, 6, 0), out, 8);
    assert_int_equal(n, 2);
    /* past max, counting stops at max + 1; with room, the whole count */
    assert_int_equal(ticks_range(d, utc(2026, 1, 1, 0, 0), utc(2026, 2, 1, 0, 0), out, 8), 9);
    int64_t many[40];
    assert_int_equal(ticks_range(d, utc(2026, 1, 1, 0, 0), utc(2026, 2, 1, 0, 0), many, 40), 31);
    dag_free(d);

    d = load("dag: x\ntasks: {a: {command: [true]}}\n");
    assert_int_equal(ticks_range(d, 0, utc(2030, 1, 1, 0, 0), out, 8), 0);
    assert_int_equal(ticks_due(d, false, 0, utc(2030, 1, 1, 0, 0), out, 8), 0);
    dag_free(d);
}

static int
teardown(void **state)
{
    (void)state;
    tz_cache_clear();
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_daily_interval),      cmocka_unit_test(test_catchup),
        cmocka_unit_test(test_end_date_and_hourly), cmocka_unit_test(test_weekly_with_zone),
        cmocka_unit_test(test_range),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
