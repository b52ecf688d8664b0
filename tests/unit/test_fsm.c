/* Tests for scheduler/fsm.c: the trigger rules, retry arithmetic and state
 * names, table by table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four above first */
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "engine.h"
#include "fsm.h"

/* Upstream outcomes, one letter each: s success, f failed, u upstream_failed,
 * k skipped, c cancelled, . not finished. */
static enum ti_state
st_of(char c)
{
    switch (c) {
    case 's':
        return TI_SUCCESS;
    case 'f':
        return TI_FAILED;
    case 'u':
        return TI_UPSTREAM_FAILED;
    case 'k':
        return TI_SKIPPED;
    case 'c':
        return TI_CANCELLED;
    default:
        return TI_RUNNING;
    }
}

static struct fsm_upstreams
ups(const char *outcomes)
{
    struct fsm_upstreams u = {.n = (int)strlen(outcomes)};
    for (const char *p = outcomes; *p; p++)
        fsm_count_one(&u, st_of(*p));
    return u;
}

/* Q runs, K skipped, U upstream_failed, P still pending. */
static enum ti_state
out_of(char c)
{
    return c == 'Q' ? TI_QUEUED : c == 'K' ? TI_SKIPPED : c == 'U' ? TI_UPSTREAM_FAILED : TI_PENDING;
}

struct row {
    const char *upstreams;
    /* expected for all_success, all_done, all_failed, one_success, one_failed, none_failed */
    const char *expect;
};

static const enum dag_trigger rules[] = {DAG_TRIGGER_ALL_SUCCESS, DAG_TRIGGER_ALL_DONE,
                                         DAG_TRIGGER_ALL_FAILED,  DAG_TRIGGER_ONE_SUCCESS,
                                         DAG_TRIGGER_ONE_FAILED,  DAG_TRIGGER_NONE_FAILED};
static const char *const rule_names[] = {"all_success", "all_done",   "all_failed",
                                         "one_success", "one_failed", "none_failed"};

/* Every outcome of one upstream, every pair of outcomes (as a multiset:
 * order is checked separately) that differs in what a rule sees, and none. */
static const struct row table[] = {
    /*           AS   AD   AF   OS   OF   NF */
    {"", "QQQQQQ"},
    {".", "PPPPPP"},
    {"s", "QQKQKQ"},
    {"f", "UQQUQU"},
    {"u", "UQQUQU"},
    {"k", "KQKKKQ"},
    {"c", "QQQKKQ"},
    {"..", "PPPPPP"},
    {"s.", "PPKQPP"},
    {"f.", "UPPPQU"},
    {"u.", "UPPPQU"},
    {"k.", "KPKPPP"},
    {"c.", "PPPPPP"},
    {"ss", "QQKQKQ"},
    {"sf", "UQKQQU"},
    {"su", "UQKQQU"},
    {"sk", "KQKQKQ"},
    {"sc", "QQKQKQ"},
    {"ff", "UQQUQU"},
    {"fu", "UQQUQU"},
    {"fk", "UQKUQU"},
    {"fc", "UQQUQU"},
    {"uu", "UQQUQU"},
    {"uk", "UQKUQU"},
    {"uc", "UQQUQU"},
    {"kk", "KQKKKQ"},
    {"kc", "KQKKKQ"},
    {"cc", "QQQKKQ"},
    {"ssf", "UQKQQU"},
    {"kkk", "KQKKKQ"},
    {"fff", "UQQUQU"},
    {"ss.", "PPKQPP"},
};

static void
test_trigger_rules(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        const struct row *r = &table[i];
        assert_int_equal(strlen(r->expect), 6);
        for (size_t k = 0; k < 6; k++) {
            struct fsm_upstreams u = ups(r->upstreams);
            enum ti_state got = fsm_decide(rules[k], &u), want = out_of(r->expect[k]);
            if (got != want)
                fail_msg("upstreams '%s' under %s: got %s, want %s", r->upstreams,
                         rule_names[k], sched_ti_state_name(got), sched_ti_state_name(want));
        }
    }
}

/* The decision depends on the outcomes only, not on the upstreams' order. */
static void
test_trigger_rules_order(void **state)
{
    (void)state;
    static const char *const pairs[][2] = {{"s.", ".s"}, {"sf", "fs"}, {"fk", "kf"},
                                           {"ssf", "fss"}, {"ss.", ".ss"}, {"kc", "ck"}};
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
        for (size_t k = 0; k < 6; k++) {
            struct fsm_upstreams a = ups(pairs[i][0]), b = ups(pairs[i][1]);
            assert_int_equal(fsm_decide(rules[k], &a), fsm_decide(rules[k], &b));
        }
}

static void
test_count(void **state)
{
    (void)state;
    struct fsm_upstreams u = ups("sfukc..");
    assert_int_equal(u.n, 7);
    assert_int_equal(u.done, 5);
    assert_int_equal(u.success, 1);
    assert_int_equal(u.failed, 1);
    assert_int_equal(u.upstream_failed, 1);
    assert_int_equal(u.skipped, 1);
}

static void
test_retry_delay(void **state)
{
    (void)state;
    static const struct {
        int64_t delay, max;
        double backoff;
        int counted;
        int64_t want;
    } rows[] = {
        {1000, 60000, 1.0, 1, 1000},  {1000, 60000, 1.0, 5, 1000},
        {1000, 60000, 2.0, 1, 1000},  {1000, 60000, 2.0, 2, 2000},
        {1000, 60000, 2.0, 3, 4000},  {1000, 60000, 2.0, 6, 32000},
        {1000, 60000, 2.0, 7, 60000}, {1000, 60000, 2.0, 40, 60000},
        {0, 60000, 2.0, 3, 0},        {500, 1200, 1.5, 3, 1125},
        {1000, 60000, 2.0, 0, 1000},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int64_t got =
            fsm_retry_delay(rows[i].delay, rows[i].backoff, rows[i].max, rows[i].counted);
        if (got != rows[i].want)
            fail_msg("row %zu: delay %lld backoff %g max %lld after %d: got %lld, want %lld", i,
                     (long long)rows[i].delay, rows[i].backoff, (long long)rows[i].max,
                     rows[i].counted, (long long)got, (long long)rows[i].want);
    }
}

static void
test_may_retry(void **state)
{
    (void)state;
    /* retries: 2 allows three attempts of the task's own fault */
    assert_true(fsm_may_retry(1, 2));
    assert_true(fsm_may_retry(2, 2));
    assert_false(fsm_may_retry(3, 2));
    assert_false(fsm_may_retry(1, 0));
    assert_true(fsm_may_retry(0, 0));
}

static void
test_names(void **state)
{
    (void)state;
    for (int i = 0; i < TI_NSTATES; i++)
        assert_int_equal(sched_ti_state_parse(sched_ti_state_name((enum ti_state)i)), i);
    for (int i = 0; i < RUN_NSTATES; i++)
        assert_int_equal(sched_run_state_parse(sched_run_state_name((enum run_state)i)), i);
    assert_int_equal(sched_ti_state_parse("bogus"), -1);
    assert_string_equal(sched_ti_state_name(TI_NSTATES), "?");
    assert_string_equal(fsm_attempt_state(TI_LEASED), "leased");
    assert_string_equal(fsm_attempt_state(TI_RUNNING), "running");
    assert_string_equal(fsm_attempt_state(TI_SUCCESS), "success");
    assert_string_equal(fsm_attempt_state(TI_CANCELLED), "cancelled");
    assert_string_equal(fsm_attempt_state(TI_UP_FOR_RETRY), "failed");
    assert_string_equal(fsm_attempt_state(TI_FAILED), "failed");
    bool terminal[TI_NSTATES] = {[TI_SUCCESS] = true, [TI_FAILED] = true,
                                 [TI_UPSTREAM_FAILED] = true, [TI_SKIPPED] = true,
                                 [TI_CANCELLED] = true};
    for (int i = 0; i < TI_NSTATES; i++)
        assert_int_equal(sched_ti_terminal((enum ti_state)i), terminal[i]);
    assert_true(fsm_failed_like(TI_FAILED));
    assert_true(fsm_failed_like(TI_UPSTREAM_FAILED));
    assert_true(fsm_failed_like(TI_CANCELLED));
    assert_false(fsm_failed_like(TI_SKIPPED));
    assert_false(fsm_failed_like(TI_SUCCESS));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trigger_rules), cmocka_unit_test(test_trigger_rules_order),
        cmocka_unit_test(test_count),         cmocka_unit_test(test_retry_delay),
        cmocka_unit_test(test_may_retry),     cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
