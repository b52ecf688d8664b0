/* test_suggest.c - what the CLI's did-you-mean counts as close
 * (cli/suggest.c: suggest_closest): the smallest edit distance up to 2,
 * never as many edits as the word has characters, ties all named, else a
 * unique prefix. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <string.h>

/* These are part of the cairn executable, not of a library: build them
 * into this test (suggest.c calls the client and cliutil.c, which call
 * the others). */
#include "../../cli/client.c"
#include "../../cli/cliutil.c"
#include "../../cli/opt.c"
#include "../../cli/suggest.c"
#include "../../cli/table.c"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *const runs[] = {
    "manual__2026-11-23T09:00:00.123Z", "manual__2026-11-23T09:00:00.456Z",
    "scheduled__2026-11-22T03:00:00Z",  NULL, /* an entry without a name is skipped */
    "backfill__2026-01-02T00:00:00Z",
};

static void
test_edit_distance(void **state)
{
    (void)state;
    const char *out[3] = {0};
    /* one character off, two off */
    assert_int_equal(suggest_closest("manual__2026-11-23T09:00:00.124Z", runs, N(runs), out, 3), 1);
    assert_string_equal(out[0], "manual__2026-11-23T09:00:00.123Z");
    assert_int_equal(suggest_closest("scheduled__2026-11-22T03:00:0Z", runs, N(runs), out, 3), 1);
    assert_string_equal(out[0], "scheduled__2026-11-22T03:00:00Z");
    assert_int_equal(suggest_closest("backfil__2026-01-02T00:00:00", runs, N(runs), out, 3), 1);
    assert_string_equal(out[0], "backfill__2026-01-02T00:00:00Z");
    /* three off: nothing */
    memset(out, 0, sizeof(out));
    assert_int_equal(suggest_closest("manual__2026-11-23T09:00:00.9Z", runs, N(runs), out, 3), 0);
    assert_null(out[0]);
    /* an exact match is its own suggestion */
    assert_int_equal(suggest_closest("scheduled__2026-11-22T03:00:00Z", runs, N(runs), out, 3), 1);
    assert_string_equal(out[0], "scheduled__2026-11-22T03:00:00Z");
}

static void
test_ties_and_the_closest_only(void **state)
{
    (void)state;
    const char *out[3] = {0};
    /* .129Z is 1 from .123Z and 3 from .456Z: only the closer one */
    assert_int_equal(suggest_closest("manual__2026-11-23T09:00:00.129Z", runs, N(runs), out, 3), 1);
    assert_string_equal(out[0], "manual__2026-11-23T09:00:00.123Z");
    /* .4x3Z is 2 from both: both, in their order */
    assert_int_equal(suggest_closest("manual__2026-11-23T09:00:00.4x3Z", runs, N(runs), out, 3), 2);
    assert_string_equal(out[0], "manual__2026-11-23T09:00:00.123Z");
    assert_string_equal(out[1], "manual__2026-11-23T09:00:00.456Z");
    /* no more than max */
    out[1] = NULL;
    assert_int_equal(suggest_closest("manual__2026-11-23T09:00:00.4x3Z", runs, N(runs), out, 1), 1);
    assert_null(out[1]);
}

static void
test_short_words(void **state)
{
    (void)state;
    static const char *const tasks[] = {"t", "ingest", "train", "tune", "evaluate"};
    const char *out[3] = {0};
    assert_int_equal(suggest_closest("trian", tasks, N(tasks), out, 3), 1);
    assert_string_equal(out[0], "train");
    /* two edits turn "zz" into "t", but that is all of it: not close */
    assert_int_equal(suggest_closest("zz", tasks, N(tasks), out, 3), 0);
    /* one edit of a two-letter word is */
    assert_int_equal(suggest_closest("tx", tasks, N(tasks), out, 3), 1);
    assert_string_equal(out[0], "t");
}

static void
test_unique_prefix(void **state)
{
    (void)state;
    static const char *const tasks[] = {"ingest", "train", "tune", "evaluate"};
    const char *out[3] = {0};
    assert_int_equal(suggest_closest("eval", tasks, N(tasks), out, 3), 1);
    assert_string_equal(out[0], "evaluate");
    /* "t" starts two of them: no guess */
    out[0] = NULL;
    assert_int_equal(suggest_closest("t", tasks, N(tasks), out, 3), 0);
    assert_null(out[0]);
    assert_int_equal(suggest_closest("scheduled__2026", runs, N(runs), out, 3), 1);
    assert_string_equal(out[0], "scheduled__2026-11-22T03:00:00Z");
    assert_int_equal(suggest_closest("manual__2026", runs, N(runs), out, 3), 0);
    assert_int_equal(suggest_closest("", tasks, N(tasks), out, 3), 0);
    assert_int_equal(suggest_closest("train", NULL, 0, out, 3), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edit_distance),
        cmocka_unit_test(test_ties_and_the_closest_only),
        cmocka_unit_test(test_short_words),
        cmocka_unit_test(test_unique_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
