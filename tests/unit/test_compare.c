/* test_compare.c - api_compare_build: two runs as the API shows them, side
 * by side (params, DAG version, per task state, duration, metrics and
 * output digests), including tasks and params only one run has. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "api_compare.h"

static json_t *
run(const char *id, const char *version, const char *v, double acc, const char *model_sha,
    const char *end, bool extra)
{
    json_t *tasks = json_pack(
        "[{s:s, s:s, s:i, s:s, s:s, s:n, s:{}, s:[{s:s, s:s}]},"
        " {s:s, s:s, s:i, s:s, s:s, s:n, s:{s:f}, s:[{s:s, s:s}, {s:s, s:s}]}]",
        "task", "prep", "state", "success", "attempts", 1, "started_at",
        "2026-12-01T00:00:00.000Z", "ended_at", "2026-12-01T00:00:01.000Z", "image_digest",
        "metrics", "outputs", "name", "data.csv", "sha256", "aaaa", "task", "train", "state",
        "success", "attempts", 1, "started_at", "2026-12-01T00:00:01.000Z", "ended_at", end,
        "image_digest", "metrics", "accuracy", acc, "outputs", "name", "model.bin", "sha256",
        model_sha, "name", "notes.txt", "sha256", "cccc");
    if (extra)
        json_array_append_new(tasks, json_pack("{s:s, s:s, s:n, s:n}", "task", "extra", "state",
                                               "failed", "started_at", "ended_at"));
    json_t *pe = json_pack("{s:s, s:s}", "v", v, "seed", "42");
    if (extra)
        json_object_set_new(pe, "only_b", json_string("x"));
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:{}, s:o}", "dag", "reg", "run_id", id,
                     "state", "success", "dag_version", version, "started_at",
                     "2026-12-01T00:00:00.000Z", "ended_at", end, "params_effective", pe,
                     "images", "tasks", tasks);
}

static const json_t *
by(const json_t *arr, const char *key, const char *val)
{
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x)
    {
        if (!strcmp(json_string_value(json_object_get(x, key)) ?: "", val))
            return x;
    }
    return NULL;
}

static void
test_two_runs(void **state)
{
    (void)state;
    json_t *a = run("r1", "v1", "1", 0.5, "bbbb", "2026-12-01T00:00:03.000Z", false);
    json_t *b = run("r2", "v1", "2", 0.75, "dddd", "2026-12-01T00:00:04.500Z", true);
    json_t *c = api_compare_build(a, b);

    assert_false(json_is_true(json_object_get(c, "dag_version_differs")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "b"), "run_id")),
                        "r2");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(c, "a"), "duration_ms")),
                     3000);
    const json_t *params = json_object_get(c, "params");
    assert_int_equal(json_array_size(params), 3);
    assert_true(json_is_true(json_object_get(by(params, "name", "v"), "differs")));
    assert_false(json_is_true(json_object_get(by(params, "name", "seed"), "differs")));
    const json_t *only = by(params, "name", "only_b");
    assert_true(json_is_true(json_object_get(only, "differs")));
    assert_true(json_is_null(json_object_get(only, "a"))); /* null on A's side */
    assert_int_equal(json_integer_value(json_object_get(c, "params_differ")), 2);

    const json_t *tasks = json_object_get(c, "tasks");
    assert_int_equal(json_array_size(tasks), 3);
    const json_t *train = by(tasks, "task", "train");
    assert_int_equal(json_integer_value(json_object_get(train, "duration_delta_ms")), 1500);
    const json_t *acc = by(json_object_get(train, "metrics"), "name", "accuracy");
    assert_true(json_is_true(json_object_get(acc, "differs")));
    assert_true(json_number_value(json_object_get(acc, "delta")) > 0.2499 &&
                json_number_value(json_object_get(acc, "delta")) < 0.2501);
    const json_t *extra = by(tasks, "task", "extra");
    assert_true(json_is_null(json_object_get(extra, "a")));
    assert_true(json_is_true(json_object_get(extra, "state_differs")));
    assert_true(json_is_null(json_object_get(extra, "duration_delta_ms")));

    const json_t *diff = json_object_get(c, "outputs_differ");
    assert_int_equal(json_array_size(diff), 1);
    assert_string_equal(json_string_value(json_array_get(diff, 0)), "train/model.bin");
    json_decref(c);

    /* another DAG version is said so */
    json_object_set_new(b, "dag_version", json_string("v2"));
    c = api_compare_build(a, b);
    assert_true(json_is_true(json_object_get(c, "dag_version_differs")));
    json_decref(c);
    json_decref(a);
    json_decref(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
