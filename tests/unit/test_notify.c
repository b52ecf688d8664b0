/* Tests for notify.c (backoff, HMAC signatures, secret files, deadlines,
 * regressions), the notification record of schema.c, and the `notify:` and
 * `deadline:` keys of the DAG loader. */
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

#include "dag.h"
#include "diag.h"
#include "err.h"
#include "notify.h"
#include "schema.h"
#include "testlib.h"
#include "util.h"

static void
test_backoff(void **state)
{
    (void)state;
    assert_int_equal(notify_backoff_ms(1, 1000, 300000), 1000);
    assert_int_equal(notify_backoff_ms(2, 1000, 300000), 2000);
    assert_int_equal(notify_backoff_ms(3, 1000, 300000), 4000);
    assert_int_equal(notify_backoff_ms(7, 1000, 300000), 64000);
    assert_int_equal(notify_backoff_ms(9, 1000, 300000), 256000);
    assert_int_equal(notify_backoff_ms(10, 1000, 300000), 300000); /* capped */
    assert_int_equal(notify_backoff_ms(1000, 1000, 300000), 300000);
    assert_int_equal(notify_backoff_ms(0, 1000, 300000), 1000); /* as the first */
}

static void
test_sign(void **state)
{
    (void)state;
    char sig[NOTIFY_SIG_LEN + 1];
    /* RFC 4231, test case 2 */
    const char *data = "what do ya want for nothing?";
    assert_int_equal(notify_sign("Jefe", 4, data, strlen(data), sig), 0);
    assert_string_equal(sig,
                        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* another key, another signature */
    assert_int_equal(notify_sign("Jeff", 4, data, strlen(data), sig), 0);
    assert_string_not_equal(
        sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    assert_int_equal(strlen(sig), NOTIFY_SIG_LEN);
}

static void
test_secret_read(void **state)
{
    (void)state;
    struct tl_dir d = {0};
    assert_int_equal(tl_dir_make(&d, "notify"), 0);
    char *f = tl_dir_file(&d, "s"), *key = NULL, err[256];
    size_t len = 0;
    tl_write_text(f, "top-secret\n\n");
    assert_int_equal(notify_secret_read(f, &key, &len, err, sizeof(err)), 0);
    assert_int_equal(len, 10);
    assert_string_equal(key, "top-secret");
    free(key);
    tl_write_text(f, "\n");
    key = NULL;
    assert_int_equal(notify_secret_read(f, &key, &len, err, sizeof(err)), CAIRN_EINVAL);
    assert_null(key);
    assert_non_null(strstr(err, "is empty"));
    char *big = xcalloc(NOTIFY_SECRET_MAX + 2, 1);
    memset(big, 'k', NOTIFY_SECRET_MAX + 1);
    tl_write_text(f, big);
    free(big);
    assert_int_equal(notify_secret_read(f, &key, &len, err, sizeof(err)), CAIRN_ERANGE);
    char *missing = tl_dir_file(&d, "missing");
    assert_int_equal(notify_secret_read(missing, &key, &len, err, sizeof(err)), CAIRN_EIO);
    assert_non_null(strstr(err, "No such file"));
    free(missing);
    free(f);
    tl_dir_remove(&d);
}

static void
test_deadline_at(void **state)
{
    (void)state;
    struct dag_deadline none = {DAG_DEADLINE_NONE, 0};
    struct dag_deadline st = {DAG_DEADLINE_AFTER_START, 2 * 3600 * 1000};
    struct dag_deadline ld = {DAG_DEADLINE_AFTER_LOGICAL_DATE, 6 * 3600 * 1000};
    int64_t day = 1767225600; /* 2026-01-01T00:00:00Z */
    assert_int_equal(notify_deadline_at(&none, day, 5000), 0);
    assert_int_equal(notify_deadline_at(&st, day, 0), 0); /* not started: not known yet */
    assert_int_equal(notify_deadline_at(&st, day, 1000), 1000 + 7200000);
    assert_int_equal(notify_deadline_at(&ld, day, 0), day * 1000 + 21600000);
    assert_int_equal(notify_deadline_at(&ld, day, 99999), day * 1000 + 21600000);
}

static void
test_regressed(void **state)
{
    (void)state;
    assert_true(notify_regressed(0.95, 0.90, 0.02));
    assert_false(notify_regressed(0.95, 0.94, 0.02));
    assert_false(notify_regressed(0.90, 0.95, 0.02)); /* it rose */
    assert_false(notify_regressed(0.95, 0.93, 0.03));
    assert_true(notify_regressed(1.0, 0.5, 0));
    assert_false(notify_regressed(1.0, 1.0, 0));
}

static void
test_record_roundtrip(void **state)
{
    (void)state;
    json_t *body = json_pack("{s:s}", "event", "failure");
    struct schema_notification n = {
        .event_id = "d/r/t/failure/1/t0",
        .target = 3,
        .event = "failure",
        .dag = "d",
        .run_id = "r",
        .task = "t",
        .kind = "webhook",
        .url = "http://127.0.0.1:9/h",
        .secret_file = "/etc/s",
        .state = "pending",
        .attempts = 2,
        .max_attempts = 8,
        .created_at = 1767225600123,
        .next_at = 1767225601000,
        .last_error = "HTTP 500",
        .body = body,
    };
    json_t *j = schema_notification_encode(&n);
    struct schema_notification o;
    char err[256];
    assert_int_equal(schema_notification_decode(j, &o, err, sizeof(err)), 0);
    assert_string_equal(o.event_id, n.event_id);
    assert_int_equal(o.target, 3);
    assert_string_equal(o.url, n.url);
    assert_string_equal(o.secret_file, "/etc/s");
    assert_string_equal(o.state, "pending");
    assert_int_equal(o.attempts, 2);
    assert_int_equal(o.created_at, n.created_at);
    assert_int_equal(o.next_at, n.next_at);
    assert_int_equal(o.delivered_at, 0);
    assert_string_equal(o.last_error, "HTTP 500");
    assert_true(json_equal(o.body, body));
    /* a webhook without its URL, a kind not known, a command without argv */
    json_object_del(j, "url");
    assert_int_equal(schema_notification_decode(j, &o, err, sizeof(err)), CAIRN_EPROTO);
    assert_non_null(strstr(err, "'url'"));
    json_object_set_new(j, "kind", json_string("pigeon"));
    assert_int_equal(schema_notification_decode(j, &o, err, sizeof(err)), CAIRN_EPROTO);
    json_object_set_new(j, "kind", json_string("command"));
    assert_int_equal(schema_notification_decode(j, &o, err, sizeof(err)), CAIRN_EPROTO);
    json_object_set_new(j, "command", json_pack("[s]", "true"));
    assert_int_equal(schema_notification_decode(j, &o, err, sizeof(err)), 0);
    char *key = schema_key_notification("d/r/t/failure/1/t0", 3);
    assert_string_equal(key, "d/r/t/failure/1/t0" SCHEMA_SEP "0003");
    free(key);
    json_decref(j);
    json_decref(body);
}

static void
test_dag_keys(void **state)
{
    (void)state;
    const char *y = "dag: d\n"
                    "deadline: {after_logical_date: 6h}\n"
                    "notify:\n"
                    "  - on: [failure, deadline_missed, metric_regression]\n"
                    "    webhook: http://127.0.0.1:9000/hooks/cairn\n"
                    "    metric: {task: evaluate, name: accuracy, drop: 0.02}\n"
                    "  - on: success\n"
                    "    command: [sendmail, ops@example.com]\n"
                    "tasks:\n"
                    "  evaluate:\n"
                    "    command: [\"true\"]\n"
                    "    metrics: metrics.json\n"
                    "    deadline: {after_start: 30m}\n"
                    "    notify:\n"
                    "      - on: [retry]\n"
                    "        webhook: https://hooks.example.com/x\n";
    struct dag *d = NULL;
    struct diag_list dl;
    diag_list_init(&dl);
    assert_int_equal(dag_load_buffer(&d, y, strlen(y), "d.yaml", &dl), 0);
    assert_int_equal(d->deadline.kind, DAG_DEADLINE_AFTER_LOGICAL_DATE);
    assert_int_equal(d->deadline.ms, 6 * 3600 * 1000);
    assert_int_equal(d->nnotify, 2);
    assert_int_equal(d->notify[0].on,
                     DAG_EV_FAILURE | DAG_EV_DEADLINE_MISSED | DAG_EV_METRIC_REGRESSION);
    assert_string_equal(d->notify[0].webhook, "http://127.0.0.1:9000/hooks/cairn");
    assert_string_equal(d->notify[0].metric_task, "evaluate");
    assert_int_equal(d->notify[0].metric_task_idx, 0);
    assert_string_equal(d->notify[0].metric_name, "accuracy");
    assert_true(d->notify[0].metric_drop > 0.0199 && d->notify[0].metric_drop < 0.0201);
    assert_int_equal(d->notify[1].on, DAG_EV_SUCCESS);
    assert_int_equal(d->notify[1].ncommand, 2);
    assert_string_equal(d->notify[1].command[0], "sendmail");
    assert_null(d->notify[1].webhook);
    assert_int_equal(d->tasks[0].deadline.kind, DAG_DEADLINE_AFTER_START);
    assert_int_equal(d->tasks[0].deadline.ms, 30 * 60 * 1000);
    assert_int_equal(d->tasks[0].nnotify, 1);
    assert_int_equal(d->tasks[0].notify[0].on, DAG_EV_RETRY);
    assert_string_equal(dag_event_name(DAG_EV_DEADLINE_MISSED), "deadline_missed");
    assert_int_equal(dag_event_parse("metric_regression"), DAG_EV_METRIC_REGRESSION);
    assert_int_equal(dag_event_parse("sla_miss"), 0);
    dag_free(d);
    diag_list_free(&dl);

    /* notify in defaults is refused: it would repeat every event per task */
    const char *bad = "dag: d\n"
                      "defaults: {notify: [{on: [failure], command: [\"true\"]}]}\n"
                      "tasks: {a: {command: [\"true\"]}}\n";
    diag_list_init(&dl);
    assert_int_not_equal(dag_load_buffer(&d, bad, strlen(bad), "d.yaml", &dl), 0);
    assert_int_equal(dl.nerrors, 1);
    assert_int_equal(dl.items[0].line, 2);
    diag_list_free(&dl);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff),     cmocka_unit_test(test_sign),
        cmocka_unit_test(test_secret_read), cmocka_unit_test(test_deadline_at),
        cmocka_unit_test(test_regressed),   cmocka_unit_test(test_record_roundtrip),
        cmocka_unit_test(test_dag_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
