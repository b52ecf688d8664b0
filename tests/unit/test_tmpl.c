/* Tests for tmpl.c: checking and rendering {{ name }} templates. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "tmpl.h"

/* The DAG's parameters for these tests. */
static const char *const params[] = {"min_accuracy", "epochs", "model-name", NULL};
static const char *const values[] = {"0.9", "10", "{{ ds }}", NULL};

static bool
has_param_cb(void *ud, const char *name)
{
    const char *const *list = ud;
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], name) == 0)
            return true;
    return false;
}

static const char *
param_at_cb(void *ud, size_t i)
{
    const char *const *list = ud;
    for (size_t k = 0; k < i; k++)
        if (!list[k])
            return NULL;
    return list[i];
}

static const char *
param_value_cb(void *ud, const char *name)
{
    (void)ud;
    for (size_t i = 0; params[i]; i++)
        if (strcmp(params[i], name) == 0)
            return values[i];
    return NULL;
}

struct result {
    int rc;
    int pos;
    char err[256];
    char hint[128];
};

static struct result
check(const char *s)
{
    struct result r;
    memset(&r, 'x', sizeof(r));
    r.rc = tmpl_check(s, has_param_cb, (void *)params, r.err, sizeof(r.err), &r.pos, r.hint,
                      sizeof(r.hint));
    return r;
}

static struct result
check_list(const char *s)
{
    struct result r;
    memset(&r, 'x', sizeof(r));
    r.rc = tmpl_check_params(s, param_at_cb, (void *)params, r.err, sizeof(r.err), &r.pos, r.hint,
                             sizeof(r.hint));
    return r;
}

static void
expect_ok(struct result r)
{
    if (r.rc != 0)
        fail_msg("unexpected error at %d: %s", r.pos, r.err);
    assert_int_equal(r.pos, -1);
    assert_string_equal(r.err, "");
    assert_string_equal(r.hint, "");
}

static void
expect_err(struct result r, int pos, const char *msg, const char *hint)
{
    assert_int_equal(r.rc, CAIRN_EPARSE);
    if (r.pos != pos)
        fail_msg("error '%s' at %d, want %d", r.err, r.pos, pos);
    if (!strstr(r.err, msg))
        fail_msg("message '%s' lacks '%s'", r.err, msg);
    assert_string_equal(r.hint, hint);
}

static void
test_check_valid(void **state)
{
    (void)state;
    const char *ok[] = {
        "",
        "plain text, no templates",
        "{{ds}}",
        "{{ ds }}",
        "{{\tds_nodash\t}}",
        "--date={{ ds }} --ts={{ts}}",
        "{{ data_interval_start }}/{{ data_interval_end }}",
        "{{ run_id }} {{ dag }} {{ task }}",
        "{{ params.min_accuracy }} {{params.epochs}} {{ params.model-name }}",
        "single { braces } and }} alone",
        "json: {\"a\": {\"b\": 1}}",
        "{ {{ds}} }",
        "{{ ds }}}",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        expect_ok(check(ok[i]));
        expect_ok(check_list(ok[i]));
    }
}

static void
test_check_unknown_names(void **state)
{
    (void)state;
    expect_err(check("{{ dss }}"), 3, "unknown template name 'dss'", "did you mean 'ds'?");
    expect_err(check("--date={{dss}}"), 9, "unknown template name 'dss'", "did you mean 'ds'?");
    expect_err(check("{{ ds_no_dash }}"), 3, "unknown template name 'ds_no_dash'",
               "did you mean 'ds_nodash'?");
    expect_err(check("{{ run-id }}"), 3, "unknown", "did you mean 'run_id'?");
    expect_err(check("{{ DS }}"), 3, "unknown", "did you mean 'ds'?");
    expect_err(check("{{ data_interval_stat }}"), 3, "unknown",
               "did you mean 'data_interval_start'?");
    expect_err(check("{{ taks }}"), 3, "unknown", "did you mean 'task'?");
    /* On a tie the first of the fixed names wins. */
    expect_err(check("{{ tsk }}"), 3, "unknown", "did you mean 'ts'?");
    /* Nothing close: no hint. */
    expect_err(check("{{ banana }}"), 3, "unknown template name 'banana'", "");
    expect_err(check("{{ foo.bar }}"), 3, "unknown template name 'foo.bar'", "");
    /* The first problem wins. */
    expect_err(check("{{ ds }} {{ x1 }} {{ y2 }}"), 12, "'x1'", "");
    /* A bare parameter name suggests params.NAME. */
    expect_err(check("{{ epochs }}"), 3, "unknown", "did you mean 'params.epochs'?");
    /* A misspelt params prefix, when the rest is a parameter. */
    expect_err(check("{{ param.epochs }}"), 3, "unknown", "did you mean 'params.epochs'?");
    expect_err(check_list("{{ param.epochs }}"), 3, "unknown", "did you mean 'params.epochs'?");
}

static void
test_check_params(void **state)
{
    (void)state;
    /* Yes/no look-up: the error, but no hint for a misspelt parameter. */
    expect_err(check("run {{ params.min_acurracy }}"), 7,
               "unknown template name 'params.min_acurracy': the DAG has no parameter "
               "'min_acurracy'",
               "");
    /* Listed parameters: the hint names the closest one. */
    expect_err(check_list("run {{ params.min_acurracy }}"), 7, "no parameter 'min_acurracy'",
               "did you mean 'params.min_accuracy'?");
    expect_err(check_list("{{ params.epoch }}"), 3, "no parameter",
               "did you mean 'params.epochs'?");
    expect_err(check_list("{{ params.zzz }}"), 3, "no parameter 'zzz'", "");
    expect_err(check_list("{{ params.ds }}"), 3, "no parameter 'ds'", "did you mean 'ds'?");
    expect_err(check("{{ params. }}"), 3, "missing parameter name", "");
    expect_err(check("{{ params }}"), 3, "missing parameter name", "");
    /* No has_param: every parameter is accepted. */
    int pos = 0;
    char err[128], hint[64];
    assert_int_equal(
        tmpl_check("{{ params.anything }}", NULL, NULL, err, sizeof(err), &pos, hint, sizeof(hint)),
        0);
    /* No list: there are no parameters. */
    assert_int_equal(tmpl_check_params("{{ params.anything }}", NULL, NULL, err, sizeof(err), &pos,
                                       hint, sizeof(hint)),
                     CAIRN_EPARSE);
    assert_int_equal(pos, 3);
    /* err, errpos and hint are optional. */
    assert_int_equal(tmpl_check("{{ dss }}", has_param_cb, (void *)params, NULL, 0, NULL, NULL, 0),
                     CAIRN_EPARSE);
    assert_int_equal(tmpl_check("{{ ds }}", has_param_cb, (void *)params, NULL, 0, NULL, NULL, 0),
                     0);
}

static void
test_check_syntax(void **state)
{
    (void)state;
    expect_err(check("{{ }}"), 0, "empty template", "");
    expect_err(check("a {{}}"), 2, "empty template", "");
    expect_err(check("x {{ \t }}"), 2, "empty template", "");
    expect_err(check("{{ ds"), 0, "unclosed '{{'", "");
    expect_err(check("ok {{ ds }} then {{ ts }"), 17, "unclosed '{{'", "");
    expect_err(check("{{ ds } and {{ ts }}"), 0, "unclosed '{{'", "");
    expect_err(check("{{"), 0, "unclosed", "");
    expect_err(check("{{ d$s }}"), 3, "invalid character '$' in template name 'd$s'", "");
    expect_err(check("{{ a b }}"), 3, "invalid character ' ' in template name 'a b'", "");
    expect_err(check("{{  ds|upper }}"), 4, "invalid character '|'", "");
    expect_err(check("{{{ ds }}}"), 2, "invalid character '{'", "");
    expect_err(check("{{ d\x01s }}"), 3, "invalid byte 0x01", "");
    expect_err(check("{{ ds\n}}"), 3, "invalid byte 0x0a", "");
}

static const struct tmpl_ctx full_ctx = {
    .ds = "2026-01-02",
    .ds_nodash = "20260102",
    .ts = "2026-01-02T03:00:00Z",
    .data_interval_start = "2026-01-02T03:00:00Z",
    .data_interval_end = "2026-01-03T03:00:00Z",
    .run_id = "scheduled__2026-01-02",
    .dag = "iris-retrain",
    .task = "train",
    .param = param_value_cb,
    .ud = NULL,
};

static void
render_is(const char *s, const char *want)
{
    char *out = NULL, err[128];
    int rc = tmpl_render(s, &full_ctx, &out, err, sizeof(err));
    if (rc != 0)
        fail_msg("render '%s': %s", s, err);
    assert_string_equal(out, want);
    free(out);
}

static void
test_render(void **state)
{
    (void)state;
    render_is("", "");
    render_is("no templates { } }} here", "no templates { } }} here");
    render_is("--date {{ ds }}", "--date 2026-01-02");
    render_is("{{ds_nodash}}.csv", "20260102.csv");
    render_is("{{ ts }}|{{ data_interval_start }}|{{ data_interval_end }}",
              "2026-01-02T03:00:00Z|2026-01-02T03:00:00Z|2026-01-03T03:00:00Z");
    render_is("{{run_id}}/{{dag}}/{{task}}", "scheduled__2026-01-02/iris-retrain/train");
    render_is("acc>={{ params.min_accuracy }} n={{params.epochs}}", "acc>=0.9 n=10");
    /* A value is inserted as it is, never expanded again. */
    render_is("{{ params.model-name }}", "{{ ds }}");
    render_is("{ {{ds}} }}", "{ 2026-01-02 }}");
    render_is("{{ ds }}{{ ds }}", "2026-01-022026-01-02");
}

static void
test_render_errors(void **state)
{
    (void)state;
    char *out = (char *)"untouched", err[128];
    struct tmpl_ctx ctx = full_ctx;

    assert_int_equal(tmpl_render("{{ dss }}", &ctx, &out, err, sizeof(err)), CAIRN_EPARSE);
    assert_string_equal(err, "unknown template name 'dss'");
    assert_int_equal(tmpl_render("a {{ ds", &ctx, &out, err, sizeof(err)), CAIRN_EPARSE);
    assert_non_null(strstr(err, "unclosed"));
    assert_int_equal(tmpl_render("{{ params.nope }}", &ctx, &out, err, sizeof(err)), CAIRN_EPARSE);
    assert_string_equal(err, "parameter 'nope' is not set");
    ctx.ts = NULL;
    assert_int_equal(tmpl_render("{{ ds }} {{ ts }}", &ctx, &out, err, sizeof(err)), CAIRN_EPARSE);
    assert_string_equal(err, "template name 'ts' has no value here");
    ctx.param = NULL;
    assert_int_equal(tmpl_render("{{ params.epochs }}", &ctx, &out, err, sizeof(err)),
                     CAIRN_EPARSE);
    assert_string_equal(err, "parameter 'epochs' is not set");
    assert_int_equal(tmpl_render("{{ }}", &ctx, &out, NULL, 0), CAIRN_EPARSE);
    /* *out is set only on success. */
    assert_string_equal(out, "untouched");
}

static void
test_render_large(void **state)
{
    (void)state;
    /* 1 MiB of text with a template every 64 bytes and one "{" every 8. */
    size_t n = 1 << 20, i = 0;
    char *s = malloc(n + 1), *out = NULL, err[128];
    size_t templates = 0;
    assert_non_null(s);
    while (i + 64 <= n) {
        memcpy(s + i, "{{ ds }}", 8);
        for (size_t k = 8; k < 64; k++)
            s[i + k] = k % 8 == 0 ? '{' : 'a';
        i += 64;
        templates++;
    }
    memset(s + i, 'z', n - i);
    s[n] = '\0';

    clock_t t0 = clock();
    assert_int_equal(tmpl_check(s, NULL, NULL, err, sizeof(err), NULL, NULL, 0), 0);
    assert_int_equal(tmpl_render(s, &full_ctx, &out, err, sizeof(err)), 0);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    /* Each "{{ ds }}" (8 bytes) became "2026-01-02" (10 bytes). */
    assert_int_equal(strlen(out), n + templates * 2);
    assert_memory_equal(out, "2026-01-02{aaaaaaa{", 19);
    /* Generous bound (sanitizers included): a quadratic scan would take minutes. */
    assert_true(secs < 5.0);
    free(out);

    /* Many "{{" with no "}}": the first is reported at once. */
    for (i = 0; i < n; i++)
        s[i] = '{';
    int pos = -5;
    assert_int_equal(tmpl_check(s, NULL, NULL, err, sizeof(err), &pos, NULL, 0), CAIRN_EPARSE);
    assert_int_equal(pos, 0);
    free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_valid),  cmocka_unit_test(test_check_unknown_names),
        cmocka_unit_test(test_check_params), cmocka_unit_test(test_check_syntax),
        cmocka_unit_test(test_render),       cmocka_unit_test(test_render_errors),
        cmocka_unit_test(test_render_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
