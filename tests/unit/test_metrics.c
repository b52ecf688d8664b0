/* Tests for metrics.c: counters, gauges and histograms written in the
 * Prometheus text format, label values escaped, gauges refilled. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static char *
render(struct metrics *m)
{
    size_t len;
    char *t = metrics_render(m, &len);
    assert_int_equal(strlen(t), len);
    return t;
}

static void
test_counter_and_escaping(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    struct metrics_family *c =
        metrics_family(m, "x_total", METRICS_COUNTER, "a \\ help\nline", "dag,state", NULL, 0);
    metrics_add(c, (const char *[]){"a\"b\\c\nd", "ok"}, 1);
    metrics_add(c, (const char *[]){"a\"b\\c\nd", "ok"}, 2);
    metrics_add(c, (const char *[]){"plain", NULL}, 1);
    metrics_add(c, (const char *[]){"plain", NULL}, -5); /* a counter never goes down */
    char *t = render(m);
    assert_non_null(strstr(t, "# HELP x_total a \\\\ help\\nline\n# TYPE x_total counter\n"));
    assert_non_null(strstr(t, "x_total{dag=\"a\\\"b\\\\c\\nd\",state=\"ok\"} 3\n"));
    assert_non_null(strstr(t, "x_total{dag=\"plain\",state=\"\"} 1\n"));
    free(t);
    metrics_free(m);
}

static void
test_gauge_clear_and_plain(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    struct metrics_family *g = metrics_family(m, "g_bytes", METRICS_GAUGE, "g", "kind", NULL, 0);
    struct metrics_family *p = metrics_family(m, "p_total", METRICS_COUNTER, "p", "", NULL, 0);
    metrics_set(g, (const char *[]){"used"}, 10);
    metrics_set(g, (const char *[]){"used"}, 1.5);
    char *t = render(m);
    assert_non_null(strstr(t, "g_bytes{kind=\"used\"} 1.5\n"));
    assert_non_null(strstr(t, "p_total 0\n")); /* a plain metric shows before it moves */
    /* families in registration order */
    assert_true(strstr(t, "g_bytes") < strstr(t, "p_total"));
    free(t);
    metrics_clear(g);
    metrics_add(p, NULL, 4);
    t = render(m);
    assert_null(strstr(t, "kind=\"used\""));
    assert_non_null(strstr(t, "p_total 4\n"));
    free(t);
    /* dropping by a label's value keeps the rest */
    metrics_set(g, (const char *[]){"a"}, 1);
    metrics_set(g, (const char *[]){"b"}, 2);
    metrics_set(g, (const char *[]){"c"}, 3);
    metrics_drop(g, 0, "b");
    metrics_set(g, (const char *[]){"c"}, 4); /* the index still finds c */
    t = render(m);
    assert_non_null(strstr(t, "g_bytes{kind=\"a\"} 1\ng_bytes{kind=\"c\"} 4\n"));
    assert_null(strstr(t, "kind=\"b\""));
    free(t);
    metrics_add(NULL, NULL, 1); /* no registry: nothing happens */
    metrics_free(m);
    metrics_free(NULL);
}

static void
test_histogram(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    static const double b[] = {0.1, 1, 10};
    struct metrics_family *h = metrics_family(m, "h_seconds", METRICS_HISTOGRAM, "h", "dag", b, 3);
    metrics_observe(h, (const char *[]){"d"}, 0.05);
    metrics_observe(h, (const char *[]){"d"}, 1); /* le is inclusive */
    metrics_observe(h, (const char *[]){"d"}, 5);
    metrics_observe(h, (const char *[]){"d"}, 100);
    char *t = render(m);
    assert_non_null(strstr(t, "# TYPE h_seconds histogram\n"
                              "h_seconds_bucket{dag=\"d\",le=\"0.1\"} 1\n"
                              "h_seconds_bucket{dag=\"d\",le=\"1\"} 2\n"
                              "h_seconds_bucket{dag=\"d\",le=\"10\"} 3\n"
                              "h_seconds_bucket{dag=\"d\",le=\"+Inf\"} 4\n"
                              "h_seconds_sum{dag=\"d\"} 106.05\n"
                              "h_seconds_count{dag=\"d\"} 4\n"));
    free(t);
    metrics_free(m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_and_escaping),
        cmocka_unit_test(test_gauge_clear_and_plain),
        cmocka_unit_test(test_histogram),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
