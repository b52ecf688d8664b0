/* Tests for expr.c: parsing and evaluating `when:` conditions. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "expr.h"
#include "util.h"

/* ---- a lookup over a fixed table ---- */

struct entry {
    const char *task; /* NULL for params */
    const char *name;
    struct expr_val val;
};

#define NUM(x)                                                                                     \
    {                                                                                              \
        .type = EXPR_T_NUM, .num = (x)                                                             \
    }
#define STR(x)                                                                                     \
    {                                                                                              \
        .type = EXPR_T_STR, .str = (x)                                                             \
    }
#define BOOL(x)                                                                                    \
    {                                                                                              \
        .type = EXPR_T_BOOL, .b = (x)                                                              \
    }

static const struct entry table[] = {
    {"evaluate", "accuracy", NUM(0.93)},
    {"evaluate", "loss", NUM(0.25)},
    {"evaluate", "passed", BOOL(true)},
    {"evaluate", "label", STR("good")},
    {"evaluate", "numstr", STR("0.5")},
    {"evaluate", "nan", NUM(NAN)},
    {"evaluate", "nullstr", {.type = EXPR_T_STR, .str = NULL}},
    {"train-model", "f1", NUM(0.8)},
    {"2nd-stage", "acc", NUM(0.7)},
    {NULL, "min_accuracy", STR("0.9")},
    {NULL, "max_loss", NUM(0.3)},
    {NULL, "mode", STR("fast")},
    {NULL, "quote", STR("it's \"x\" \\ y")},
    {NULL, "ten", STR("10")},
    {NULL, "nine", STR("9")},
    {NULL, "spaced", STR(" 0.9")},
    {NULL, "hex", STR("0x10")},
    {NULL, "sci", STR("1e-3")},
    {NULL, "enabled", BOOL(true)},
};

struct lookup_state {
    int calls;
};

static int
lookup_cb(void *ud, const char *task, const char *name, struct expr_val *out)
{
    struct lookup_state *st = ud;
    if (st)
        st->calls++;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        const struct entry *e = &table[i];
        if ((task == NULL) != (e->task == NULL))
            continue;
        if (task && strcmp(task, e->task) != 0)
            continue;
        if (strcmp(name, e->name) != 0)
            continue;
        *out = e->val;
        return 0;
    }
    return -1;
}

/* ---- helpers ---- */

static struct expr *
parse_ok(const char *src)
{
    struct expr *e = NULL;
    char err[256];
    int pos = 77;
    int rc = expr_parse(&e, src, err, sizeof(err), &pos);
    if (rc != 0)
        fail_msg("'%s' should parse: %s at %d", src, err, pos);
    assert_non_null(e);
    assert_string_equal(err, "");
    assert_int_equal(pos, -1);
    return e;
}

static void
parse_err(const char *src, int want_pos, const char *want_msg)
{
    struct expr *e = (struct expr *)&e; /* a sentinel that must stay untouched */
    struct expr *before = e;
    char err[256];
    int pos = -2;
    int rc = expr_parse(&e, src, err, sizeof(err), &pos);
    if (rc != CAIRN_EPARSE)
        fail_msg("'%s' should fail to parse, got %d", src, rc);
    assert_ptr_equal(e, before);
    if (pos != want_pos || !strstr(err, want_msg))
        fail_msg("'%s': got \"%s\" at %d, want \"%s\" at %d", src, err, pos, want_msg, want_pos);
}

static bool
eval_ok(const char *src)
{
    struct expr *e = parse_ok(src);
    char err[256];
    bool r = false;
    int rc = expr_eval(e, lookup_cb, NULL, &r, err, sizeof(err));
    expr_free(e);
    if (rc != 0)
        fail_msg("'%s' should evaluate: %s", src, err);
    return r;
}

static void
eval_err(const char *src, int code, const char *want)
{
    struct expr *e = parse_ok(src);
    char err[256];
    bool r = true;
    int rc = expr_eval(e, lookup_cb, NULL, &r, err, sizeof(err));
    expr_free(e);
    if (rc != code)
        fail_msg("'%s': want %d, got %d (%s)", src, code, rc, err);
    assert_true(r); /* untouched */
    if (!strstr(err, want))
        fail_msg("'%s': message '%s' lacks '%s'", src, err, want);
}

/* ---- parsing ---- */

static void
test_parse_valid(void **state)
{
    (void)state;
    const char *ok[] = {
        "true",
        "false",
        "evaluate.metrics.accuracy >= params.min_accuracy",
        "evaluate.metrics.accuracy>=params.min_accuracy",
        "train-model.metrics.f1 > 0.5",
        "_t.metrics.m_2 == 1",
        "(true)",
        "not not true",
        "a.metrics.x < 1 or b.metrics.y != 'z' and not (params.p <= -1e-3)",
        "  \t\n true \r\n",
        "'single' == \"double\"",
        "'' == \"\"",
        "1 == 1.0 and 1E+2 == 100 and -0.5 < 0 and 2e3 > 1",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        expr_free(parse_ok(ok[i]));
    expr_free(NULL);
}

static void
test_parse_errors(void **state)
{
    (void)state;
    /* Missing values: reported where the value should be. */
    parse_err("evaluate.metrics.accuracy >= ", 29, "expected a value after '>='");
    parse_err("evaluate.metrics.accuracy >= )", 29, "expected a value after '>=', got ')'");
    parse_err("true and", 8, "expected a value after 'and'");
    parse_err("true or  ", 9, "expected a value after 'or'");
    parse_err("not", 3, "expected a value after 'not'");
    parse_err("()", 1, "expected a value after '(', got ')'");
    parse_err("", 0, "condition is empty");
    parse_err("   ", 3, "condition is empty");
    parse_err("and true", 0, "expected a value, got 'and'");
    parse_err("== 1", 0, "expected a value, got '=='");
    /* Parentheses. */
    parse_err("(a.metrics.x > 1", 16, "expected ')'");
    parse_err("(a.metrics.x > 1 true", 17, "expected ')' to close '(', got 'true'");
    parse_err("((true)", 7, "expected ')'");
    parse_err("true)", 4, "unexpected ')' without a matching '('");
    /* Trailing garbage. */
    parse_err("a.metrics.x > 1 params.y", 16,
              "unexpected 'params.y'; expected 'and', 'or' or the end of the condition");
    parse_err("true false", 5, "unexpected 'false'");
    parse_err("true 'x'", 5, "unexpected 'x'; expected");
    parse_err("1 < 2 < 3", 6, "comparisons cannot be chained");
    /* Unknown characters. */
    parse_err("a.metrics.x > 1 $", 16, "unexpected character '$'");
    parse_err("params.a = 1", 9, "use '=='");
    parse_err("params.a && params.b", 9, "use 'and'");
    parse_err("params.a || params.b", 9, "use 'or'");
    parse_err("!params.a", 0, "use 'not'");
    parse_err("params.a \xe2\x89\xa5 1", 9, "unexpected byte 0xe2");
    parse_err("true\x01", 4, "unexpected byte 0x01");
    /* References. */
    parse_err("evaluate.accuracy > 1", 0, "expected 'TASK.metrics.NAME' or 'params.NAME'");
    parse_err("1 < foo.bar.baz", 4,
              "expected 'TASK.metrics.NAME' or 'params.NAME', got "
              "'foo.bar.baz'");
    parse_err("params.a.b == 1", 0, "expected 'TASK.metrics.NAME' or 'params.NAME'");
    parse_err("params == 1", 0, "expected 'TASK.metrics.NAME' or 'params.NAME'");
    parse_err("params. == 1", 0, "expected 'TASK.metrics.NAME' or 'params.NAME'");
    parse_err("params.metrics.x == 1", 0, "expected 'TASK.metrics.NAME' or 'params.NAME'");
    parse_err("t.metrics == 1", 0, "expected 'TASK.metrics.NAME' or 'params.NAME'");
    parse_err("true and t.metrics.x. == 1", 9, "expected 'TASK.metrics.NAME'");
    parse_err("t..x", 0, "expected 'TASK.metrics.NAME'");
    parse_err("t.metrics.a.b.c.d == 1", 0, "expected 'TASK.metrics.NAME'");
    parse_err("accuracy > 0.9", 0, "got 'accuracy'");
    parse_err("True", 0, "keywords are lowercase, write 'true'");
    parse_err("true AND false", 5, "write 'and'");
    /* Strings. */
    parse_err("params.a == 'abc", 12, "unterminated string");
    parse_err("params.a == \"abc'", 12, "unterminated string (missing closing \")");
    parse_err("params.a == 'a\\nb'", 14, "unknown escape '\\n'");
    parse_err("params.a == 'a\\", 14, "backslash");
    /* Numbers. */
    parse_err("params.a > .5", 11, "write 0.5");
    parse_err("params.a > 1.", 11, "invalid number '1.'");
    parse_err("params.a > 1e", 11, "invalid number '1e'");
    parse_err("params.a > 1e+", 11, "invalid number '1e+'");
    parse_err("params.a > 5x", 11, "invalid number '5x'");
    parse_err("params.a > 1.2.3", 11, "invalid number '1.2.3'");
    parse_err("params.a > 2nd.metric.x", 11, "invalid number '2nd.metric.x'");
    parse_err("params.a > 2nd.metrics.", 11, "invalid number '2nd.metrics.'");
    parse_err("params.a > -", 11, "expected a digit after '-'");
    parse_err("params.a > - 1", 11, "expected a digit after '-'");
    parse_err("params.a > --1", 11, "expected a digit after '-'");
    parse_err("params.a > 1e999", 11, "is too large");
}

static char *
repeat(const char *unit, size_t n, const char *middle, const char *tail_unit)
{
    struct sb sb;
    sb_init(&sb);
    for (size_t i = 0; i < n; i++)
        sb_puts(&sb, unit);
    sb_puts(&sb, middle);
    for (size_t i = 0; tail_unit && i < n; i++)
        sb_puts(&sb, tail_unit);
    return sb_take(&sb);
}

static void
test_nesting_limit(void **state)
{
    (void)state;
    char *s;
    struct expr *e;

    /* Exactly the limit is fine ... */
    s = repeat("(", EXPR_MAX_DEPTH, "true", ")");
    e = parse_ok(s);
    assert_true(eval_ok(s));
    expr_free(e);
    free(s);
    /* ... one more is an error at the '(' that goes too deep. */
    s = repeat("(", EXPR_MAX_DEPTH + 1, "true", ")");
    parse_err(s, EXPR_MAX_DEPTH, "nested too deeply");
    free(s);
    /* A fuzzer's favourite: never closed, far deeper than any stack. */
    s = repeat("(", 60000, "", NULL);
    parse_err(s, EXPR_MAX_DEPTH, "nested too deeply");
    free(s);
    /* 'not' counts too. */
    s = repeat("not ", EXPR_MAX_DEPTH, "true", NULL);
    assert_true(eval_ok(s));
    free(s);
    s = repeat("not ", EXPR_MAX_DEPTH + 1, "false", NULL);
    parse_err(s, EXPR_MAX_DEPTH * 4, "nested too deeply");
    free(s);
    s = repeat("not (", 60, "true", ")");
    parse_err(s, 50 * 5, "nested too deeply"); /* the 101st level is the 51st 'not' */
    free(s);
    /* Long flat chains are not nesting: they parse and evaluate. */
    s = repeat("true and ", 5000, "true", NULL);
    assert_true(eval_ok(s));
    free(s);
    s = repeat("false or ", 5000, "params.max_loss > 0.1", NULL);
    assert_true(eval_ok(s));
    free(s);
    /* Too long a source is refused outright. */
    s = repeat(" ", EXPR_MAX_LEN, "true", NULL);
    parse_err(s, 0, "too long");
    free(s);
}

/* ---- references ---- */

struct seen {
    char text[512];
    int n;
    int stop_at;
};

static int
ref_cb(void *ud, const char *task, const char *name, int pos)
{
    struct seen *s = ud;
    size_t len = strlen(s->text);
    snprintf(s->text + len, sizeof(s->text) - len, "%s%s@%d;", task ? task : "(params)", name, pos);
    s->n++;
    return s->n == s->stop_at ? 42 : 0;
}

static void
test_foreach_ref(void **state)
{
    (void)state;
    const char *src = "a.metrics.x > params.p and (not b-2.metrics.y == 1 or params.q) or "
                      "params.p == 'params.z'";
    struct expr *e = parse_ok(src);
    struct seen s = {.text = "", .n = 0, .stop_at = 0};

    assert_int_equal(expr_foreach_ref(e, ref_cb, &s), 0);
    assert_string_equal(s.text, "ax@0;(params)p@14;b-2y@32;(params)q@54;(params)p@67;");
    /* A nonzero return stops the walk and is passed on. */
    memset(&s, 0, sizeof(s));
    s.stop_at = 2;
    assert_int_equal(expr_foreach_ref(e, ref_cb, &s), 42);
    assert_string_equal(s.text, "ax@0;(params)p@14;");
    expr_free(e);

    e = parse_ok("true and 1 < 2");
    memset(&s, 0, sizeof(s));
    assert_int_equal(expr_foreach_ref(e, ref_cb, &s), 0);
    assert_int_equal(s.n, 0);
    expr_free(e);
}

/* ---- evaluation ---- */

static void
test_eval_basic(void **state)
{
    (void)state;
    assert_true(eval_ok("true"));
    assert_false(eval_ok("false"));
    assert_true(eval_ok("evaluate.metrics.accuracy >= params.min_accuracy"));
    assert_false(eval_ok("evaluate.metrics.accuracy < params.min_accuracy"));
    assert_true(eval_ok("evaluate.metrics.loss <= params.max_loss"));
    assert_true(eval_ok("train-model.metrics.f1 > 0.5"));
    /* A task name may start with a digit. */
    assert_true(eval_ok("2nd-stage.metrics.acc == 0.7"));
    assert_true(eval_ok("0.5<2nd-stage.metrics.acc"));
    assert_true(eval_ok("evaluate.metrics.passed"));
    assert_true(eval_ok("evaluate.metrics.passed == true"));
    assert_false(eval_ok("evaluate.metrics.passed != true"));
    assert_true(eval_ok("true != false"));
    assert_true(eval_ok("params.enabled and evaluate.metrics.passed"));
    assert_true(eval_ok("evaluate.metrics.label == 'good'"));
    /* Each operator on numbers. */
    assert_true(eval_ok("1 == 1 and 1 != 2 and 1 < 2 and 2 <= 2 and 3 > 2 and 3 >= 3"));
    assert_false(eval_ok("1 == 2 or 1 != 1 or 2 < 1 or 3 <= 2 or 2 > 3 or 2 >= 3"));
}

static void
test_eval_numbers(void **state)
{
    (void)state;
    assert_true(eval_ok("1e-3 == 0.001"));
    assert_true(eval_ok("1E-3 == 0.001"));
    assert_true(eval_ok("-0.5 < 0"));
    assert_true(eval_ok("-0.5 == -5e-1"));
    assert_true(eval_ok("-0 == 0"));
    assert_true(eval_ok("2.5e+2 == 250"));
    assert_true(eval_ok("007 == 7"));
    assert_true(eval_ok("1e-400 == 0")); /* underflow is zero, not an error */
    assert_true(eval_ok("12345678901234567890 > 1"));
    /* IEEE NaN: every comparison is false except != */
    assert_false(eval_ok("evaluate.metrics.nan == evaluate.metrics.nan"));
    assert_false(eval_ok("evaluate.metrics.nan < 1 or evaluate.metrics.nan >= 1"));
    assert_true(eval_ok("evaluate.metrics.nan != 1"));
}

static void
test_eval_strings(void **state)
{
    (void)state;
    assert_true(eval_ok("params.mode == 'fast'"));
    assert_true(eval_ok("params.mode == \"fast\""));
    assert_true(eval_ok("params.mode != 'slow'"));
    assert_true(eval_ok("'abc' < 'abd' and 'b' > 'abc' and 'a' < 'aa' and '' < 'a'"));
    assert_true(eval_ok("'B' < 'a'")); /* bytewise */
    /* Escapes, in both kinds of quote. */
    assert_true(eval_ok("params.quote == 'it\\'s \"x\" \\\\ y'"));
    assert_true(eval_ok("params.quote == \"it's \\\"x\\\" \\\\ y\""));
    assert_true(eval_ok("params.quote == 'it\\'s \\\"x\\\" \\\\ y'"));
    assert_true(eval_ok("'\\\\' != '\\''"));
    /* A NULL string from the lookup reads as "". */
    assert_true(eval_ok("evaluate.metrics.nullstr == ''"));
}

static void
test_eval_param_coercion(void **state)
{
    (void)state;
    /* The param string "0.9" compares as the number 0.9, on either side. */
    assert_true(eval_ok("params.min_accuracy == 0.9"));
    assert_true(eval_ok("0.9 == params.min_accuracy"));
    assert_true(eval_ok("params.min_accuracy < 1"));
    assert_true(eval_ok("params.sci == 0.001"));
    assert_true(eval_ok("params.ten > 9.5"));
    assert_true(eval_ok("params.ten == 10 and params.nine == 9"));
    /* Two strings stay strings, even when both look like numbers. */
    assert_true(eval_ok("params.ten < params.nine"));
    assert_true(eval_ok("params.min_accuracy == '0.9'"));
    /* Only a string that is entirely a number, and only from params. */
    eval_err("params.spaced == 0.9", CAIRN_EINVAL, "cannot compare");
    eval_err("params.hex == 16", CAIRN_EINVAL, "cannot compare");
    eval_err("params.mode > 1", CAIRN_EINVAL,
             "cannot compare params.mode (the string 'fast') with the number 1 using '>'");
    eval_err("evaluate.metrics.numstr == 0.5", CAIRN_EINVAL,
             "cannot compare evaluate.metrics.numstr (the string '0.5') with the number 0.5");
    eval_err("'0.9' == 0.9", CAIRN_EINVAL, "cannot compare the string '0.9' with the number 0.9");
}

static void
test_eval_type_errors(void **state)
{
    (void)state;
    eval_err("1", CAIRN_EINVAL, "condition must be true or false, got a number");
    eval_err("'yes'", CAIRN_EINVAL, "condition must be true or false, got a string");
    eval_err("params.mode", CAIRN_EINVAL,
             "condition must be true or false, got a string from params.mode");
    eval_err("evaluate.metrics.accuracy", CAIRN_EINVAL,
             "got a number from evaluate.metrics.accuracy");
    eval_err("(0.5)", CAIRN_EINVAL, "got a number");
    eval_err("1 and true", CAIRN_EINVAL, "each side of 'and' must be true or false, got a number");
    eval_err("true and 'x'", CAIRN_EINVAL, "each side of 'and'");
    eval_err("false or 2", CAIRN_EINVAL, "each side of 'or' must be true or false");
    eval_err("not 1", CAIRN_EINVAL, "the operand of 'not' must be true or false, got a number");
    eval_err("true < false", CAIRN_EINVAL, "only be compared with == and !=, not '<'");
    eval_err("true == 1", CAIRN_EINVAL, "cannot compare true with the number 1");
    eval_err("'a' == true", CAIRN_EINVAL, "cannot compare the string 'a' with true");
    eval_err("evaluate.metrics.passed >= false", CAIRN_EINVAL, "not '>='");
}

static void
test_eval_missing(void **state)
{
    (void)state;
    char err[256];
    eval_err("evaluate.metrics.recall > 0.5", CAIRN_ENOENT,
             "metric 'recall' of task 'evaluate' is missing");
    eval_err("params.min_acc < 1", CAIRN_ENOENT, "param 'min_acc' is not set");
    eval_err("nosuch.metrics.accuracy > 0.5", CAIRN_ENOENT,
             "metric 'accuracy' of task 'nosuch' is missing");
    /* The exact message. */
    struct expr *e = parse_ok("evaluate.metrics.accuracy2 >= 0.9");
    bool r = false;
    assert_int_equal(expr_eval(e, lookup_cb, NULL, &r, err, sizeof(err)), CAIRN_ENOENT);
    assert_string_equal(err, "metric 'accuracy2' of task 'evaluate' is missing");
    /* err may be NULL. */
    assert_int_equal(expr_eval(e, lookup_cb, NULL, &r, NULL, 0), CAIRN_ENOENT);
    expr_free(e);
}

static int
eval_count(const char *src, bool *result, int *calls)
{
    struct expr *e = parse_ok(src);
    struct lookup_state st = {0};
    char err[256];
    int rc = expr_eval(e, lookup_cb, &st, result, err, sizeof(err));
    expr_free(e);
    *calls = st.calls;
    return rc;
}

static void
test_eval_short_circuit(void **state)
{
    (void)state;
    bool r = true;
    int calls = -1;

    /* The missing reference on the right is never looked up. */
    assert_int_equal(eval_count("false and evaluate.metrics.missing > 1", &r, &calls), 0);
    assert_false(r);
    assert_int_equal(calls, 0);
    assert_int_equal(eval_count("params.mode == 'slow' and params.nope > 1", &r, &calls), 0);
    assert_false(r);
    assert_int_equal(calls, 1);
    assert_int_equal(eval_count("true or params.nope == 1", &r, &calls), 0);
    assert_true(r);
    assert_int_equal(calls, 0);
    assert_int_equal(eval_count("evaluate.metrics.passed or params.nope", &r, &calls), 0);
    assert_true(r);
    assert_int_equal(calls, 1);
    /* A type error on the side not evaluated is not reported either. */
    assert_int_equal(eval_count("false and 1", &r, &calls), 0);
    assert_false(r);
    /* When the left side does not decide, the right one is evaluated. */
    assert_int_equal(eval_count("true and params.nope == 1", &r, &calls), CAIRN_ENOENT);
    assert_int_equal(eval_count("false or params.nope == 1", &r, &calls), CAIRN_ENOENT);
    /* Chains stop at the first deciding operand. */
    assert_int_equal(
        eval_count("params.enabled and false and params.nope and params.nope2", &r, &calls), 0);
    assert_false(r);
    assert_int_equal(calls, 1);
}

static void
test_precedence(void **state)
{
    (void)state;
    /* not binds looser than a comparison: not (1 > 2). */
    assert_true(eval_ok("not 1 > 2"));
    /* not binds tighter than and: (not false) and false. */
    assert_false(eval_ok("not false and false"));
    /* and binds tighter than or. */
    assert_true(eval_ok("true or false and false"));
    assert_true(eval_ok("false and false or true"));
    assert_false(eval_ok("(true or false) and false"));
    /* comparison binds tighter than and / or. */
    assert_true(eval_ok("1 < 2 and 3 > 2"));
    assert_true(eval_ok("1 > 2 or 3 > 2"));
    assert_true(eval_ok("not not true"));
    assert_false(eval_ok("not (true and true)"));
    assert_true(eval_ok("not true or true"));
    assert_true(eval_ok("(1 < 2) == true"));
    assert_true(eval_ok("((true))"));
}

/* ---- aggregates ---- */

/* Aggregates over a fixed table: train has accuracy at instances 0..2. */
static const double train_acc[] = {0.81, 0.93, 0.88};

struct agg_state {
    int calls;
    char last[64];
};

static int
agg_cb(void *ud, const char *fn, const char *task, const char *name, double *out)
{
    struct agg_state *st = ud;
    if (st) {
        st->calls++;
        snprintf(st->last, sizeof(st->last), "%s(%s.%s)", fn, task, name);
    }
    if (strcmp(task, "train") || strcmp(name, "accuracy"))
        return -1;
    double best = train_acc[0], sum = 0;
    size_t arg = 0, n = sizeof(train_acc) / sizeof(train_acc[0]);
    for (size_t i = 0; i < n; i++) {
        sum += train_acc[i];
        if (train_acc[i] > best) {
            best = train_acc[i];
            arg = i;
        }
    }
    if (!strcmp(fn, "max"))
        *out = best;
    else if (!strcmp(fn, "min"))
        *out = 0.81;
    else if (!strcmp(fn, "avg"))
        *out = sum / (double)n;
    else if (!strcmp(fn, "sum"))
        *out = sum;
    else if (!strcmp(fn, "count"))
        *out = (double)n;
    else if (!strcmp(fn, "argmax"))
        *out = (double)arg;
    else
        return -1;
    return 0;
}

static int
agg_eval(const char *src, bool *r, char *err, size_t errlen, struct agg_state *st)
{
    struct expr *e = parse_ok(src);
    int rc = expr_eval_agg(e, lookup_cb, agg_cb, st, r, err, errlen);
    expr_free(e);
    return rc;
}

struct agg_seen {
    char text[256];
};

static int
agg_ref_cb(void *ud, const char *fn, const char *task, const char *name, int pos)
{
    struct agg_seen *s = ud;
    size_t len = strlen(s->text);
    snprintf(s->text + len, sizeof(s->text) - len, "%s:%s.%s@%d;", fn, task, name, pos);
    return 0;
}

static void
test_aggregates(void **state)
{
    (void)state;
    bool r = false;
    char err[256];
    struct agg_state st = {0};
    /* each of the six, with a lookup of plain references alongside */
    assert_int_equal(agg_eval("max(train.metrics.accuracy) >= params.min_accuracy", &r, err,
                              sizeof(err), &st),
                     0);
    assert_true(r);
    assert_string_equal(st.last, "max(train.accuracy)");
    assert_int_equal(agg_eval("min(train.metrics.accuracy) < 0.85", &r, err, sizeof(err), NULL), 0);
    assert_true(r);
    assert_int_equal(agg_eval("avg(train.metrics.accuracy) > 0.87 and avg(train.metrics.accuracy) "
                              "< 0.88",
                              &r, err, sizeof(err), NULL),
                     0);
    assert_true(r);
    assert_int_equal(agg_eval("sum(train.metrics.accuracy) > 2.6", &r, err, sizeof(err), NULL), 0);
    assert_true(r);
    assert_int_equal(agg_eval("count(train.metrics.accuracy) == 3", &r, err, sizeof(err), NULL), 0);
    assert_true(r);
    assert_int_equal(agg_eval("argmax(train.metrics.accuracy) == 1", &r, err, sizeof(err), NULL),
                     0);
    assert_true(r);
    /* spaces inside, a digit-first task name, and the name used as a task */
    assert_int_equal(agg_eval("max ( train.metrics.accuracy ) > 0.9", &r, err, sizeof(err), NULL),
                     0);
    assert_true(r);
    assert_int_equal(agg_eval("max(train.metrics.accuracy) > 0.95", &r, err, sizeof(err), NULL), 0);
    assert_false(r);
    /* a task named like an aggregate is still a plain reference */
    struct expr *e = NULL;
    assert_int_equal(expr_parse(&e, "max.metrics.x > 1 or count(max.metrics.x) > 0", err,
                                sizeof(err), NULL),
                     0);
    struct seen s = {.text = "", .n = 0, .stop_at = 0};
    struct agg_seen as = {""};
    /* foreach_ref sees only the plain reference, foreach_agg only the aggregate */
    assert_int_equal(expr_foreach_ref(e, ref_cb, &s), 0);
    assert_string_equal(s.text, "maxx@0;");
    assert_int_equal(expr_foreach_agg(e, agg_ref_cb, &as), 0);
    assert_string_equal(as.text, "count:max.x@21;");
    expr_free(e);
    e = parse_ok("a.metrics.x > 1 and (argmax(t.metrics.y) == 2 or sum(u-2.metrics.z) < 3)");
    memset(&as, 0, sizeof(as));
    assert_int_equal(expr_foreach_agg(e, agg_ref_cb, &as), 0);
    assert_string_equal(as.text, "argmax:t.y@21;sum:u-2.z@49;");
    memset(&s, 0, sizeof(s));
    assert_int_equal(expr_foreach_ref(e, ref_cb, &s), 0);
    assert_string_equal(s.text, "ax@0;");
    expr_free(e);

    /* a missing value: the aggregate's message */
    r = true;
    assert_int_equal(agg_eval("max(train.metrics.loss) < 1", &r, err, sizeof(err), NULL),
                     CAIRN_ENOENT);
    assert_string_equal(err, "no instance of task 'train' has metric 'loss'");
    assert_true(r); /* untouched */
    /* an aggregate is a number */
    assert_int_equal(agg_eval("count(train.metrics.accuracy)", &r, err, sizeof(err), NULL),
                     CAIRN_EINVAL);
    assert_non_null(strstr(err, "got a number from count(train.metrics.accuracy)"));
    assert_int_equal(agg_eval("max(train.metrics.accuracy) == 'x'", &r, err, sizeof(err), NULL),
                     CAIRN_EINVAL);
    assert_non_null(strstr(err, "cannot compare max(train.metrics.accuracy) (the number 0.93)"));
    /* short-circuit: the aggregate on the side not evaluated is not resolved */
    memset(&st, 0, sizeof(st));
    assert_int_equal(agg_eval("false and max(train.metrics.nope) > 1", &r, err, sizeof(err), &st),
                     0);
    assert_false(r);
    assert_int_equal(st.calls, 0);
    /* expr_eval (no aggregate callback): an evaluation error, not a crash */
    e = parse_ok("max(train.metrics.accuracy) > 0.5");
    r = true;
    assert_int_equal(expr_eval(e, lookup_cb, NULL, &r, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, "max(train.metrics.accuracy) cannot be evaluated here"));
    assert_true(r);
    expr_free(e);
}

static void
test_aggregate_errors(void **state)
{
    (void)state;
    parse_err("maxx(train.metrics.a) > 1", 0, "unknown function 'maxx'");
    parse_err("Max(train.metrics.a) > 1", 0, "unknown function 'Max'");
    parse_err("max(params.a) > 1", 4, "max() is over the instances of a mapped task");
    parse_err("max(train.a) > 1", 4, "expected 'TASK.metrics.NAME' or 'params.NAME'");
    parse_err("max() > 1", 4, "expected 'TASK.metrics.NAME' after 'max(', got ')'");
    parse_err("max(", 4, "expected 'TASK.metrics.NAME' after 'max('");
    parse_err("max(t.metrics.a", 15, "expected ')' to close 'max('");
    parse_err("max(t.metrics.a t.metrics.b)", 16, "expected ')' to close 'max(', got");
    parse_err("max(max(t.metrics.a))", 4, "expected 'TASK.metrics.NAME' after 'max(', got 'max'");
    parse_err("max(1) > 0", 4, "after 'max(', got '1'");
    /* without '(' an aggregate's name is just a word */
    parse_err("max > 1", 0, "expected 'TASK.metrics.NAME' or 'params.NAME', got 'max'");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_nesting_limit),      cmocka_unit_test(test_foreach_ref),
        cmocka_unit_test(test_eval_basic),         cmocka_unit_test(test_eval_numbers),
        cmocka_unit_test(test_eval_strings),       cmocka_unit_test(test_eval_param_coercion),
        cmocka_unit_test(test_eval_type_errors),   cmocka_unit_test(test_eval_missing),
        cmocka_unit_test(test_eval_short_circuit), cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_aggregates),         cmocka_unit_test(test_aggregate_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
