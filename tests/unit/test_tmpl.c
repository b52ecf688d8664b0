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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "tmpl.h"
#include "util.h"

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
    expect_err(check("{{  ds|upper }}"), 7, "unknown filter 'upper'", "");
    expect_err(check("{{ | shquote }}"), 0, "empty template before '| shquote'", "");
    expect_ok(check("{{ ds | shquote }}x{{ds|shquote}}"));
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
    /* | shquote: single-quoted for sh -c */
    render_is("echo {{ params.model-name | shquote }}", "echo '{{ ds }}'");
    render_is("{{ds|shquote}}", "'2026-01-02'");
    struct sb q;
    sb_init(&q);
    tmpl_shquote(&q, "it's; id", 8);
    assert_string_equal(q.buf, "'it'\\''s; id'");
    q.len = 0;
    tmpl_shquote(&q, "", 0);
    assert_string_equal(q.buf, "''");
    sb_free(&q);
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

/* ---- fan-out: item, map_index and aggregates ---- */

/* A scope callback that knows the keys lr and depth, and aggregates over
 * train only. */
static int
item_cb(void *ud, const char *path, char *err, size_t errlen, char *hint, size_t hintlen)
{
    (void)ud;
    if (!strcmp(path, "lr") || !strcmp(path, "depth") || !strncmp(path, "obj.", 4))
        return 0;
    snprintf(err, errlen, "no key '%s'", path);
    snprintf(hint, hintlen, "did you mean 'lr'?");
    return 1;
}

static int
agg_check_cb(void *ud, const char *fn, const char *task, const char *metric, char *err,
             size_t errlen, char *hint, size_t hintlen)
{
    (void)ud;
    (void)fn;
    (void)metric;
    if (!strcmp(task, "train"))
        return 0;
    snprintf(err, errlen, "task '%s' is not mapped", task);
    snprintf(hint, hintlen, "write %s.metrics.%s", task, metric);
    return 1;
}

static struct result
check_scope(const char *s, bool mapped, bool with_cbs)
{
    struct tmpl_scope sc = {.param_at = param_at_cb, .ud = (void *)params, .mapped = mapped};
    struct result r;
    if (with_cbs) {
        sc.item = item_cb;
        sc.agg = agg_check_cb;
    }
    memset(&r, 'x', sizeof(r));
    r.rc = tmpl_check_scope(s, &sc, r.err, sizeof(r.err), &r.pos, r.hint, sizeof(r.hint));
    return r;
}

static void
test_check_fanout(void **state)
{
    (void)state;
    /* in a mapped task */
    expect_ok(
        check_scope("{{ item }} {{item.lr}} {{ item.obj.x.y }} #{{ map_index }}", true, true));
    expect_ok(check_scope("{{ item.anything.at.all }}", true, false)); /* no item callback */
    expect_ok(check_scope("{{ max(train.metrics.acc) }} {{argmax( train.metrics.f-1 )}}", true,
                          true));
    expect_ok(check_scope("{{ count (train.metrics.acc) }} {{ params.epochs }} {{ ds }}", false,
                          true));
    expect_err(check_scope("--lr={{ item.lrr }}", true, true), 8, "no key 'lrr'",
               "did you mean 'lr'?");
    expect_err(check_scope("{{ item. }}", true, true), 3, "empty key in template name 'item.'",
               "");
    expect_err(check_scope("{{ item..lr }}", true, true), 3, "empty key", "");
    expect_err(check_scope("{{ itme }}", true, true), 3, "unknown template name 'itme'",
               "did you mean 'item'?");
    expect_err(check_scope("{{ map_idx }}", true, true), 3, "unknown", "did you mean 'map_index'?");
    /* item names outside a mapped task, with the default hint or the scope's */
    expect_err(check_scope("x {{ item }}", false, true), 5,
               "template name 'item' is known only in a mapped task",
               "add 'matrix:' or 'map:' to the task to run it once per item");
    expect_err(check_scope("{{ map_index }}", false, true), 3, "'map_index' is known only",
               "add 'matrix:' or 'map:' to the task to run it once per item");
    struct tmpl_scope sc = {.unmapped_hint = "set it on the task"};
    struct result r;
    memset(&r, 0, sizeof(r));
    r.rc = tmpl_check_scope("{{ item.lr }}", &sc, r.err, sizeof(r.err), &r.pos, r.hint,
                            sizeof(r.hint));
    expect_err(r, 3, "'item.lr' is known only in a mapped task", "set it on the task");
    /* without a scope, item and map_index are what they were: not known */
    expect_err(check("{{ item }}"), 3, "'item' is known only in a mapped task",
               "add 'matrix:' or 'map:' to the task to run it once per item");
    expect_err(check_list("{{ map_index }}"), 3, "known only in a mapped task",
               "add 'matrix:' or 'map:' to the task to run it once per item");
    /* aggregates: the callback's error at the reference */
    expect_err(check_scope("{{ max( other.metrics.acc ) }}", true, true), 8,
               "task 'other' is not mapped", "write other.metrics.acc");
    expect_err(check_scope("{{ max(train.metrics.acc) }}", true, false), 7,
               "max(train.metrics.acc) is not available here", "");
    expect_err(check("a {{ sum(t.metrics.x) }}"), 9, "not available here", "");
    expect_err(check_scope("{{ maximum(train.metrics.acc) }}", true, true), 3,
               "unknown function 'maximum' in a template", "");
    expect_err(check_scope("{{ max(params.epochs) }}", true, true), 7,
               "max() is over the instances of a mapped task", "");
    expect_err(check_scope("{{ max(train.acc) }}", true, true), 7,
               "expected 'TASK.metrics.NAME' inside 'max()', got 'train.acc'", "");
    expect_err(check_scope("{{ max(train.metrics.) }}", true, true), 7, "expected", "");
    expect_err(check_scope("{{ max() }}", true, true), 7, "got ''", "");
    expect_err(check_scope("{{ max(a.metrics.b.c) }}", true, true), 7, "expected", "");
    /* not the aggregate form: the old errors */
    expect_err(check_scope("{{ max(a b) }}", true, true), 3, "invalid character '('", "");
    expect_err(check_scope("{{ max(x) y }}", true, true), 3, "invalid character '('", "");
}

static int
agg_value_cb(void *ud, const char *fn, const char *task, const char *metric, double *out)
{
    (void)ud;
    if (strcmp(task, "train") || strcmp(metric, "acc"))
        return -1;
    *out = !strcmp(fn, "max")      ? 0.1 + 0.2
           : !strcmp(fn, "sum")    ? 3.0
           : !strcmp(fn, "avg")    ? 1.0 / 3.0
           : !strcmp(fn, "min")    ? -2.5e-7
           : !strcmp(fn, "argmax") ? 4.0
                                   : 12.0;
    return 0;
}

static void
render_item_is(const char *s, const char *item, const char *want)
{
    struct tmpl_ctx ctx = full_ctx;
    char *out = NULL, err[256];
    ctx.item_json = item;
    ctx.map_index = 7;
    ctx.aggregate = agg_value_cb;
    if (tmpl_render(s, &ctx, &out, err, sizeof(err)) != 0)
        fail_msg("render '%s' with %s: %s", s, item ? item : "(none)", err);
    assert_string_equal(out, want);
    free(out);
}

static void
render_item_err(const char *s, const char *item, const char *want)
{
    struct tmpl_ctx ctx = full_ctx;
    char *out = (char *)"untouched", err[256];
    ctx.item_json = item;
    ctx.aggregate = item ? NULL : agg_value_cb;
    assert_int_equal(tmpl_render(s, &ctx, &out, err, sizeof(err)), CAIRN_EPARSE);
    assert_string_equal(out, "untouched");
    if (!strstr(err, want))
        fail_msg("render '%s': '%s' lacks '%s'", s, err, want);
}

static void
test_render_fanout(void **state)
{
    (void)state;
    /* strings as their text, escapes decoded */
    render_item_is("{{ item }}", "\"s3://b/part-0\"", "s3://b/part-0");
    render_item_is("[{{item}}]", " \"a\\\"b\\\\c\\n\\u00e9\\ud83d\\ude00\\/\" ",
                   "[a\"b\\c\n\xc3\xa9\xf0\x9f\x98\x80/]");
    /* numbers spelt as written; other scalars as JSON */
    render_item_is("{{ item }}|{{ map_index }}", "0.10", "0.10|7");
    render_item_is("{{ item }}", "-1.5e+3", "-1.5e+3");
    render_item_is("{{ item }}", "true", "true");
    render_item_is("{{ item }}", "null", "null");
    render_item_is("{{ item }}", "12345678901234567890", "12345678901234567890");
    /* a fraction with 17 digits (a JSON library's 0.1) is written shortest */
    render_item_is("{{ item }}", "0.10000000000000001", "0.1");
    render_item_is("{{ item.lr }}", "{\"lr\": 0.29999999999999999}", "0.3");
    /* objects and lists as compact JSON; members by dotted path */
    render_item_is("{{ item }}", " { \"lr\" : 0.1 , \"tags\": [ \"a b\", 2 ] } ",
                   "{\"lr\":0.1,\"tags\":[\"a b\",2]}");
    render_item_is("--lr {{ item.lr }} --depth {{item.depth}}", "{\"lr\":0.01,\"depth\":5}",
                   "--lr 0.01 --depth 5");
    render_item_is("{{ item.a.b }}/{{ item.a }}",
                   "{\"x\":{\"b\":1},\"a\":{\"c\":[1,{}],\"b\":\"deep\"}}",
                   "deep/{\"c\":[1,{}],\"b\":\"deep\"}");
    render_item_is("{{ item.path }}", "{\"path\":\"s3://x\",\"rows\":10}", "s3://x");
    /* errors */
    render_item_err("{{ item.nope }}", "{\"lr\":1}", "item has no key 'nope'");
    render_item_err("{{ item.a.b }}", "{\"a\":{\"c\":1}}", "item.a has no key 'b'");
    render_item_err("{{ item.a.b }}", "{\"a\":3}", "item.a is a number, so it has no key 'b'");
    render_item_err("{{ item.x }}", "\"str\"", "item is a string, so it has no key 'x'");
    render_item_err("{{ item }}", "{\"a\":}", "not valid JSON");
    render_item_err("{{ item }}", "[1, 2", "not valid JSON");
    render_item_err("{{ item }}", "1 2", "not valid JSON");
    render_item_err("{{ item }}", "01", "not valid JSON");
    render_item_err("{{ item }}", "\"\\ud800\"", "not valid JSON");
    render_item_err("{{ item }}", "\"a\\u0000b\"", "a string with a NUL character");
    render_item_err("{{ item }}", NULL, "template name 'item' has no value here");
    render_item_err("{{ map_index }}", NULL, "template name 'map_index' has no value here");
    /* deep nesting is refused, not a stack overflow */
    char deep[300];
    memset(deep, '[', 200);
    memset(deep + 200, ']', 99);
    deep[299] = '\0';
    render_item_err("{{ item }}", deep, "not valid JSON");

    /* aggregates: whole numbers without a point, others shortest, argmax an integer */
    render_item_is("{{ max(train.metrics.acc) }} {{ sum(train.metrics.acc) }}", NULL,
                   "0.30000000000000004 3");
    render_item_is("{{avg(train.metrics.acc)}} {{ min(train.metrics.acc) }}", NULL,
                   "0.3333333333333333 -2.5e-07");
    render_item_is("best=train[{{ argmax( train.metrics.acc ) }}] n={{ count(train.metrics.acc) }}",
                   NULL, "best=train[4] n=12");
    render_item_err("{{ max(train.metrics.loss) }}", NULL,
                    "max(train.metrics.loss) has no value: no instance of task 'train' has "
                    "metric 'loss'");
    render_item_err("{{ max(train.metrics.acc) }}", "{}",
                    "max(train.metrics.acc) has no value here");
    render_item_err("{{ mean(train.metrics.acc) }}", NULL, "unknown function 'mean'");

    /* previews keep what has no value as written */
    struct tmpl_ctx ctx = full_ctx;
    char *out = NULL, err[128];
    ctx.keep_unresolved = true;
    assert_int_equal(tmpl_render("{{ ds }} {{item.lr}} {{ map_index }} {{ max( t.metrics.a ) }}",
                                 &ctx, &out, err, sizeof(err)),
                     0);
    assert_string_equal(out, "2026-01-02 {{item.lr}} {{ map_index }} {{ max( t.metrics.a ) }}");
    free(out);
    /* ... but not unknown names or missing params */
    assert_int_equal(tmpl_render("{{ params.nope }}", &ctx, &out, err, sizeof(err)), CAIRN_EPARSE);
}

struct items_seen {
    char text[256];
    size_t n, stop;
};

static int
items_cb(void *ud, size_t index, const char *item, size_t len)
{
    struct items_seen *s = ud;
    size_t used = strlen(s->text);
    snprintf(s->text + used, sizeof(s->text) - used, "%zu=%.*s;", index, (int)len, item);
    return ++s->n == s->stop ? 9 : 0;
}

static void
test_items_foreach(void **state)
{
    (void)state;
    struct items_seen s = {"", 0, 0};
    assert_int_equal(
        tmpl_items_foreach(" [ \"a\" , 0.10,{\"lr\": 1, \"x\": [1, 2]}, [], null ] ", items_cb, &s),
        0);
    assert_string_equal(s.text, "0=\"a\";1=0.10;2={\"lr\": 1, \"x\": [1, 2]};3=[];4=null;");
    memset(&s, 0, sizeof(s));
    assert_int_equal(tmpl_items_foreach("[]", items_cb, &s), 0);
    assert_int_equal(s.n, 0);
    /* a nonzero return stops the walk */
    memset(&s, 0, sizeof(s));
    s.stop = 2;
    assert_int_equal(tmpl_items_foreach("[1,2,3]", items_cb, &s), 9);
    assert_string_equal(s.text, "0=1;1=2;");
    /* not one JSON array: the callback is never called */
    const char *bad[] = {"", "{}", "\"a\"", "[1,]", "[1] [2]", "[1", "[\"\\x\"]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&s, 0, sizeof(s));
        assert_int_equal(tmpl_items_foreach(bad[i], items_cb, &s), CAIRN_EPARSE);
        assert_int_equal(s.n, 0);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_valid),  cmocka_unit_test(test_check_unknown_names),
        cmocka_unit_test(test_check_params), cmocka_unit_test(test_check_syntax),
        cmocka_unit_test(test_render),       cmocka_unit_test(test_render_errors),
        cmocka_unit_test(test_render_large), cmocka_unit_test(test_check_fanout),
        cmocka_unit_test(test_render_fanout), cmocka_unit_test(test_items_foreach),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
