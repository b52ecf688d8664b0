/* Tests for worker/mask.c: secret values masked out of output streams,
 * also their base64 and URL-encoded forms and values split across writes. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mask.h"
#include "util.h"

/* Feed s in pieces of `step` bytes (0: all at once), then flush. */
static char *
run(const char *const *vals, size_t n, const char *s, size_t step)
{
    struct mask *m;
    struct sb out;
    sb_init(&out);
    mask_new(&m, vals, n);
    size_t len = strlen(s);
    if (!step)
        step = len ? len : 1;
    for (size_t i = 0; i < len; i += step)
        mask_feed(m, s + i, len - i < step ? len - i : step, &out);
    mask_flush(m, &out);
    mask_free(m);
    return sb_take(&out);
}

static void
expect(const char *const *vals, size_t n, const char *in, const char *want)
{
    /* the same at every split of the input */
    for (size_t step = 0; step <= strlen(in) + 1; step++) {
        char *got = run(vals, n, in, step);
        if (strcmp(got, want) != 0)
            fail_msg("step %zu: got '%s', want '%s'", step, got, want);
        free(got);
    }
}

static void
test_plain(void **state)
{
    (void)state;
    const char *v[] = {"sk-live-123"};
    expect(v, 1, "key=sk-live-123\n", "key=***\n");
    expect(v, 1, "sk-live-123sk-live-123", "******");
    expect(v, 1, "nothing here\n", "nothing here\n");
    expect(v, 1, "sk-live-12 almost", "sk-live-12 almost");
    expect(v, 1, "", "");
}

static void
test_no_values(void **state)
{
    (void)state;
    const char *v[] = {""};
    expect(NULL, 0, "abc", "abc");
    expect(v, 1, "abc", "abc"); /* an empty value masks nothing */
    struct mask *m;
    mask_new(&m, v, 1);
    assert_false(mask_active(m));
    mask_free(m);
}

static void
test_base64(void **state)
{
    (void)state;
    const char *v[] = {"hunter2"}; /* base64: aHVudGVyMg== */
    expect(v, 1, "b64 aHVudGVyMg==\n", "b64 ***\n");
    expect(v, 1, "b64 aHVudGVyMg\n", "b64 ***\n"); /* unpadded */
    const char *w[] = {"abc"};                     /* YWJj */
    expect(w, 1, "[YWJj]", "[***]");
}

static void
test_urlencoded(void **state)
{
    (void)state;
    const char *v[] = {"p@ss w/rd"};
    expect(v, 1, "u=p%40ss%20w%2Frd&x", "u=***&x");
    expect(v, 1, "u=p%40ss+w%2Frd&x", "u=***&x");
    expect(v, 1, "u=p%40ss%20w%2frd&x", "u=***&x"); /* lower-case hex */
    expect(v, 1, "raw p@ss w/rd.", "raw ***.");
}

static void
test_split_writes(void **state)
{
    (void)state;
    const char *v[] = {"SECRETVALUE42"};
    /* two writes with the value cut in the middle, as a task that prints
     * half, sleeps and prints the rest */
    struct mask *m;
    struct sb out;
    sb_init(&out);
    mask_new(&m, v, 1);
    mask_feed(m, "before SECRET", 13, &out);
    assert_null(strstr(out.buf ? out.buf : "", "SECRET"));
    mask_feed(m, "VALUE42 after\n", 14, &out);
    mask_flush(m, &out);
    assert_string_equal(out.buf, "before *** after\n");
    mask_free(m);
    sb_free(&out);
    /* a split at every byte */
    expect(v, 1, "xSECRETVALUE42ySECRETVALUE42", "x***y***");
}

static void
test_held_back_at_most(void **state)
{
    (void)state;
    const char *v[] = {"0123456789"};
    struct mask *m;
    struct sb out;
    sb_init(&out);
    mask_new(&m, v, 1);
    mask_feed(m, "hello world, this is long.", 26, &out);
    /* all but the longest form's length - 1 bytes come out at once */
    size_t longest = strlen("MDEyMzQ1Njc4OQ=="); /* its base64, padded */
    assert_int_equal(out.len, 26 - (longest - 1));
    mask_flush(m, &out);
    assert_string_equal(out.buf, "hello world, this is long.");
    mask_free(m);
    sb_free(&out);
}

/* A whole line is let out at once: nothing of it is held back. */
static void
test_lines_not_held(void **state)
{
    (void)state;
    const char *v[] = {"0123456789abcdef"};
    struct mask *m;
    struct sb out;
    sb_init(&out);
    mask_new(&m, v, 1);
    mask_feed(m, "ab\n0123456789abcdef\n", 20, &out);
    assert_string_equal(out.buf, "ab\n***\n");
    mask_feed(m, "x 01234567", 10, &out); /* no newline: the possible start is held */
    assert_string_equal(out.buf, "ab\n***\n");
    mask_feed(m, "89abcdef y\n", 11, &out);
    assert_string_equal(out.buf, "ab\n***\nx *** y\n");
    mask_free(m);
    sb_free(&out);
    /* a value with a newline in it may span lines: then bytes are held */
    const char *w[] = {"line1\nline2"};
    expect(w, 1, "a line1\nline2 b\n", "a *** b\n");
}

static void
test_several_values(void **state)
{
    (void)state;
    const char *v[] = {"alpha", "alphabet", "zeta"};
    expect(v, 3, "alphabet alpha zeta alphab", "*** *** *** ***b");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),          cmocka_unit_test(test_no_values),
        cmocka_unit_test(test_base64),         cmocka_unit_test(test_urlencoded),
        cmocka_unit_test(test_split_writes),   cmocka_unit_test(test_held_back_at_most),
        cmocka_unit_test(test_several_values), cmocka_unit_test(test_lines_not_held),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
