/* Tests for the scheduler's notifier (scheduler/notifier.c) through a real
 * engine on a temporary folder: what a start does with the deliveries in
 * the store (pending ones are sent, finished ones older than NTF_KEEP_MS
 * are forgotten, recent ones kept) and what the listing answers. */
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
#include <uv.h>

#include "engine.h"
#include "fs.h"
#include "notifier.h"
#include "schema.h"
#include "store.h"
#include "testlib.h"
#include "util.h"

static void
fake_reply(struct wire_req *req, int type, json_t *body)
{
    (void)req, (void)type, (void)body;
}

static void
fake_drop(struct wire_req *req)
{
    (void)req;
}

static void
stop_done(void *ud)
{
    *(bool *)ud = true;
}

/* A delivery record created at created_ms, in state st. */
static void
put_delivery(struct store *st, const char *id, const char *state, int64_t created_ms,
             const char *marker)
{
    json_t *body = json_pack("{s:s}", "event_id", id);
    json_t *cmd = json_pack("[s, s, s]", "sh", "-c", marker);
    struct schema_notification n = {
        .event_id = id,
        .event = "failure",
        .dag = "d",
        .run_id = "r",
        .kind = "command",
        .command = cmd,
        .state = state,
        .attempts = 0,
        .max_attempts = 8,
        .created_at = created_ms,
        .next_at = created_ms,
        .body = body,
    };
    json_t *j = schema_notification_encode(&n);
    char *key = schema_key_notification(id, 0);
    struct store_txn *t = NULL;
    assert_int_equal(store_txn_begin(st, true, &t), 0);
    assert_int_equal(store_put(t, STORE_NOTIFICATIONS, key, j), 0);
    assert_int_equal(store_txn_commit(t), 0);
    free(key);
    json_decref(j);
    json_decref(cmd);
    json_decref(body);
}

static bool
stored(struct store *st, const char *id, char *state, size_t len)
{
    char *key = schema_key_notification(id, 0);
    struct store_txn *t = NULL;
    void *j = NULL;
    assert_int_equal(store_txn_begin(st, false, &t), 0);
    bool ok = store_get(t, STORE_NOTIFICATIONS, key, &j) == 0;
    if (ok)
        snprintf(state, len, "%s", json_string_value(json_object_get(j, "state")));
    json_decref(j);
    store_txn_abort(t);
    free(key);
    return ok;
}

struct marker {
    const char *path;
};

/* The command wrote the whole event (the file exists as soon as the shell
 * opened it). */
static int
marker_there(void *arg)
{
    const char *p = ((struct marker *)arg)->path;
    if (!tl_exists(p))
        return 0;
    char *b = tl_read_file(p, NULL);
    int ok = b && strstr(b, "\"event_id\":\"old-pending\"") && strchr(b, '}');
    free(b);
    return ok;
}

static void
test_start_sends_pending_and_forgets_old(void **state)
{
    (void)state;
    struct tl_dir d = {0};
    assert_int_equal(tl_dir_make(&d, "notifier"), 0);
    char *dags = tl_dir_file(&d, "dags"), *data = tl_dir_file(&d, "data");
    char *mark = tl_dir_file(&d, "sent"), *sh = xasprintf("cat >%s", mark);
    fs_mkdirs(dags);
    fs_mkdirs(data);
    char err[512];
    int64_t now = clock_wall_ms(), day = 86400000;

    struct store *st = NULL;
    assert_int_equal(store_open(&st, data, 0, err, sizeof(err)), 0);
    put_delivery(st, "old-delivered", "delivered", now - 40 * day, "true");
    put_delivery(st, "old-failed", "failed", now - 31 * day, "true");
    put_delivery(st, "new-delivered", "delivered", now - 2 * day, "true");
    put_delivery(st, "old-pending", "pending", now - 40 * day, sh);
    store_close(st);

    uv_loop_t loop;
    uv_loop_init(&loop);
    struct sched_config cfg = {0};
    cfg.dags_dir = dags;
    cfg.data_dir = data;
    cfg.link.reply = fake_reply;
    cfg.link.drop = fake_drop;
    struct sched *s = NULL;
    assert_int_equal(sched_new(&s, &loop, &cfg, err, sizeof(err)), 0);
    /* the pending one is sent: its command writes the event to mark */
    struct marker m = {mark};
    assert_int_equal(tl_run_until(&loop, marker_there, &m, 20000), 0);
    json_t *list = ntf_list(s, NULL, 100, err, sizeof(err));
    assert_non_null(list);
    assert_int_equal(json_array_size(list), 2); /* old-pending, new-delivered */
    json_decref(list);
    list = ntf_list(s, "other", 100, err, sizeof(err));
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    bool done = false;
    sched_stop(s, stop_done, &done);
    for (int i = 0; i < 200 && !done; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(done);
    sched_free(s);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop), 0);

    char *body = tl_read_file(mark, NULL);
    assert_non_null(strstr(body, "\"event_id\":\"old-pending\""));
    free(body);
    char stt[32];
    assert_int_equal(store_open(&st, data, 0, err, sizeof(err)), 0);
    assert_false(stored(st, "old-delivered", stt, sizeof(stt)));
    assert_false(stored(st, "old-failed", stt, sizeof(stt)));
    assert_true(stored(st, "new-delivered", stt, sizeof(stt)));
    /* pending is never forgotten, however old: it is delivered (recorded
     * in the commit after the try, which may not have come before the
     * stop: then it is still pending) */
    assert_true(stored(st, "old-pending", stt, sizeof(stt)));
    assert_true(!strcmp(stt, "delivered") || !strcmp(stt, "pending"));
    store_close(st);
    free(sh);
    free(mark);
    free(dags);
    free(data);
    tl_dir_remove(&d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_sends_pending_and_forgets_old),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
