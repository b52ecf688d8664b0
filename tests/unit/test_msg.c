/* test_msg.c - the typed worker-protocol messages (common/msg.c): round trips
 * of every message type, the JSON each encoder produces against the bodies
 * the daemons built by hand before (so old and new peers interoperate), one
 * table of every field of every message (missing and mistyped, each refused
 * with the field's path), unknown members, LOG data, limits, frames. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "msg.h"
#include "proto.h"
#include "util.h"

#define SHA_A "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA_B "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
#define TOKEN "0123456789abcdef0123456789abcdef"

/* ---- sample bodies: every member set, as the daemons send them ---- */

static json_t *
sample_lease(json_int_t id)
{
    return json_pack(
        "{s:I, s:s, s:s, s:s, s:i, s:s, s:[s, s, s], s:[s, s], s:s, s:I, s:f, s:I, "
        "s:I, s:b, s:[{s:s, s:s, s:s, s:s}], s:[s, s], s:s, s:s, s:[{s:s, s:s, s:b}]}",
        "lease_id", id, "dag", "iris-retrain", "run_id", "scheduled__2026-01-02T03:00:00", "task",
        "train", "attempt", 2, "logical_date", "2026-01-02T03:00:00Z", "argv", "python3",
        "/pipeline/train.py", "--fast", "env", "CAIRN_DAG=iris-retrain", "PYTHONUNBUFFERED=1",
        "image", "/srv/images/py", "timeout_ms", (json_int_t)600000, "cpus", 1.5, "memory",
        (json_int_t)536870912, "pids", (json_int_t)256, "network", 1, "inputs", "name", "raw",
        "sha256", SHA_A, "uri", "file:///srv/art/blobs/sha256/e3/b0", "manifest_file", "raw.csv",
        "outputs", "model.pkl", "metrics.json", "code", "/srv/pipelines/iris", "metrics",
        "metrics.json", "mounts", "host", "/data/landing", "path", "/data", "readonly", 1);
}

static json_t *
sample_result(void)
{
    return json_pack("{s:s, s:I, s:i, s:i, s:b, s:b, s:I, s:s, s:[{s:s, s:s, s:I, s:s}], "
                     "s:{s:f, s:I}, s:b, s:[s, s]}",
                     "worker", "w-1", "lease_id", (json_int_t)9, "exit_code", 137, "signal", 9,
                     "oom", 1, "timed_out", 1, "duration_ms", (json_int_t)12345, "error",
                     "killed: out of memory", "outputs", "name", "model.pkl", "sha256", SHA_B,
                     "size", (json_int_t)5, "uri", "file:///srv/art/blobs/sha256/2c/f2", "metrics",
                     "accuracy", 0.953125, "epochs", (json_int_t)10, "interrupted", 1,
                     "stderr_tail", "Traceback (most recent call last):", "MemoryError \xc3\xa9");
}

static json_t *
sample_body(int type)
{
    switch (type) {
    case PROTO_HELLO:
        return json_pack("{s:s, s:i, s:{s:s, s:s}, s:I, s:s, s:i}", "worker", "w-1", "slots", 4,
                         "labels", "gpu", "a100", "zone", "eu-1", "pid", (json_int_t)4242, "host",
                         "node1.example", "msg_version", 1);
    case PROTO_WELCOME:
        return json_pack("{s:I, s:I, s:s, s:i}", "lease_ttl_ms", (json_int_t)30000, "heartbeat_ms",
                         (json_int_t)5000, "artifacts", "file:///srv/art", "msg_version", 1);
    case PROTO_POLL:
        return json_pack("{s:s, s:i, s:[I, I], s:I, s:I, s:[I, I]}", "worker", "w-1", "free", 2,
                         "leases", (json_int_t)7, (json_int_t)8, "wait_ms", (json_int_t)5000,
                         "seq", (json_int_t)1764800000123, "gave_up",
                         (json_int_t)1764800000121, (json_int_t)1764800000122);
    case PROTO_WORK:
        return json_pack("{s:[o], s:[I, I]}", "leases", sample_lease(9), "cancel", (json_int_t)3,
                         (json_int_t)4);
    case PROTO_STARTED:
        return json_pack("{s:s, s:I}", "worker", "w-1", "lease_id", (json_int_t)9);
    case PROTO_LOG:
        return json_pack("{s:s, s:I, s:i, s:I, s:s}", "worker", "w-1", "lease_id", (json_int_t)9,
                         "stream", 2, "offset", (json_int_t)1048576, "data",
                         "epoch 1: loss=0.25 \xc3\xa9\xe2\x9c\x93\n");
    case PROTO_RESULT:
        return sample_result();
    case PROTO_BATCH:
        return json_pack("{s:s, s:[{s:i, s:o}, {s:i, s:o}, {s:i, s:o}], s:i, s:I, s:[I]}",
                         "worker", "w-1", "items", "type", PROTO_STARTED, "body",
                         sample_body(PROTO_STARTED), "type", PROTO_LOG, "body",
                         sample_body(PROTO_LOG), "type", PROTO_RESULT, "body", sample_result(),
                         "free", 1, "seq", (json_int_t)12, "gave_up", (json_int_t)11);
    case PROTO_ACK:
        return json_pack("{s:b, s:s, s:s, s:[{s:b, s:s}, {s:b, s:s, s:s}]}", "ok", 1, "reason", "",
                         "code", "batched", "results", "ok", 1, "reason", "", "ok", 0, "reason",
                         "lease is not current", "code", "stale");
    case PROTO_ERROR:
        return json_pack("{s:s, s:s}", "code", "unknown_worker", "message",
                         "unknown worker 'w-1'; send HELLO first");
    default:
        return NULL;
    }
}

static const int all_types[] = {PROTO_HELLO, PROTO_WELCOME, PROTO_POLL,  PROTO_WORK, PROTO_STARTED,
                                PROTO_LOG,   PROTO_RESULT,  PROTO_BATCH, PROTO_ACK,  PROTO_ERROR};
#define NTYPES (sizeof(all_types) / sizeof(all_types[0]))

static char *
dump(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    assert_non_null(s);
    return s;
}

static void
assert_json_equal(const json_t *want, const json_t *got)
{
    if (!json_equal((json_t *)want, (json_t *)got)) {
        char *a = dump(want), *b = got ? dump(got) : xstrdup("NULL");
        fail_msg("JSON differs:\nwant %s\ngot  %s", a, b);
        free(a);
        free(b);
    }
}

static void
decode_ok(int type, const json_t *body, struct msg *m)
{
    char err[512] = "";
    int rc = msg_decode(type, body, m, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s did not decode: %s", proto_type_name(type), err);
    assert_int_equal(m->type, type);
}

static bool
all_zero(const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i])
            return false;
    return true;
}

/* ---- round trips ---- */

static void
test_roundtrip_every_type(void **state)
{
    (void)state;
    for (size_t i = 0; i < NTYPES; i++) {
        int type = all_types[i];
        json_t *body = sample_body(type), *again, *third;
        struct msg m, m2;

        assert_non_null(body);
        decode_ok(type, body, &m);
        again = msg_encode(&m);
        assert_non_null(again);
        /* every member of the samples is known and canonical */
        assert_json_equal(body, again);
        decode_ok(type, again, &m2);
        third = msg_encode(&m2);
        assert_json_equal(again, third);
        msg_clear(&m);
        msg_clear(&m2);
        assert_true(all_zero(&m, sizeof(m)));
        json_decref(body);
        json_decref(again);
        json_decref(third);
    }
}

static void
test_lease_every_field(void **state)
{
    (void)state;
    json_t *lj = sample_lease(41);
    struct msg_lease l;
    char err[256];

    assert_int_equal(msg_lease_decode(lj, "leases[0]", &l, err, sizeof(err)), 0);
    assert_int_equal(l.lease_id, 41);
    assert_string_equal(l.dag, "iris-retrain");
    assert_string_equal(l.run_id, "scheduled__2026-01-02T03:00:00");
    assert_string_equal(l.task, "train");
    assert_int_equal(l.attempt, 2);
    assert_string_equal(l.logical_date, "2026-01-02T03:00:00Z");
    assert_int_equal(l.nargv, 3);
    assert_string_equal(l.argv[0], "python3");
    assert_string_equal(l.argv[2], "--fast");
    assert_null(l.argv[3]); /* NULL-terminated as well */
    assert_int_equal(l.nenv, 2);
    assert_string_equal(l.env[1], "PYTHONUNBUFFERED=1");
    assert_null(l.env[2]);
    assert_string_equal(l.image, "/srv/images/py");
    assert_int_equal(l.timeout_ms, 600000);
    assert_true(l.cpus == 1.5);
    assert_int_equal(l.memory, 536870912);
    assert_int_equal(l.pids, 256);
    assert_true(l.network);
    assert_int_equal(l.ninputs, 1);
    assert_string_equal(l.inputs[0].name, "raw");
    assert_string_equal(l.inputs[0].sha256, SHA_A);
    assert_string_equal(l.inputs[0].uri, "file:///srv/art/blobs/sha256/e3/b0");
    assert_string_equal(l.inputs[0].manifest_file, "raw.csv");
    assert_int_equal(l.nmounts, 1);
    assert_string_equal(l.mounts[0].host, "/data/landing");
    assert_string_equal(l.mounts[0].path, "/data");
    assert_true(l.mounts[0].readonly);
    assert_int_equal(l.noutputs, 2);
    assert_string_equal(l.outputs[1], "metrics.json");
    assert_string_equal(l.code, "/srv/pipelines/iris");
    assert_string_equal(l.metrics, "metrics.json");

    json_t *again = msg_lease_encode(&l);
    assert_json_equal(lj, again);
    json_decref(again);
    msg_lease_clear(&l);
    assert_true(all_zero(&l, sizeof(l)));
    msg_lease_clear(&l); /* a cleared struct clears again */
    msg_lease_clear(NULL);

    /* without the optional members (absent or null): NULL, sent as null */
    json_object_del(lj, "code");
    json_object_set_new(lj, "metrics", json_null());
    assert_int_equal(msg_lease_decode(lj, NULL, &l, err, sizeof(err)), 0);
    assert_null(l.code);
    assert_null(l.metrics);
    again = msg_lease_encode(&l);
    assert_true(json_is_null(json_object_get(again, "code")));
    assert_true(json_is_null(json_object_get(again, "metrics")));
    json_decref(again);
    msg_lease_clear(&l);
    /* no mounts and no manifest (absent or null): none, and not sent (old peers) */
    json_object_del(lj, "mounts");
    json_object_set_new(json_array_get(json_object_get(lj, "inputs"), 0), "manifest_file",
                        json_null());
    assert_int_equal(msg_lease_decode(lj, NULL, &l, err, sizeof(err)), 0);
    assert_int_equal(l.nmounts, 0);
    assert_null(l.mounts);
    assert_null(l.inputs[0].manifest_file);
    again = msg_lease_encode(&l);
    assert_null(json_object_get(again, "mounts"));
    assert_null(
        json_object_get(json_array_get(json_object_get(again, "inputs"), 0), "manifest_file"));
    json_decref(again);
    msg_lease_clear(&l);
    json_object_set_new(lj, "mounts", json_null());
    assert_int_equal(msg_lease_decode(lj, NULL, &l, err, sizeof(err)), 0);
    assert_int_equal(l.nmounts, 0);
    msg_lease_clear(&l);
    json_decref(lj);

    /* an integer count of CPUs is a number too */
    lj = sample_lease(1);
    json_object_set_new(lj, "cpus", json_integer(2));
    assert_int_equal(msg_lease_decode(lj, NULL, &l, err, sizeof(err)), 0);
    assert_true(l.cpus == 2.0);
    msg_lease_clear(&l);
    json_decref(lj);

    /* the task's log limit: absent is the worker's own (0), not sent */
    lj = sample_lease(1);
    assert_int_equal(msg_lease_decode(lj, NULL, &l, err, sizeof(err)), 0);
    assert_int_equal(l.max_log_size, 0);
    assert_false(l.log_limit_fail);
    again = msg_lease_encode(&l);
    assert_null(json_object_get(again, "max_log_size"));
    assert_null(json_object_get(again, "log_limit_fail"));
    json_decref(again);
    l.max_log_size = 10 << 20;
    l.log_limit_fail = true;
    again = msg_lease_encode(&l);
    msg_lease_clear(&l);
    assert_int_equal(msg_lease_decode(again, NULL, &l, err, sizeof(err)), 0);
    assert_int_equal(l.max_log_size, 10 << 20);
    assert_true(l.log_limit_fail);
    msg_lease_clear(&l);
    json_object_set_new(again, "max_log_size", json_integer(-1)); /* no limit */
    assert_int_equal(msg_lease_decode(again, NULL, &l, err, sizeof(err)), 0);
    assert_int_equal(l.max_log_size, -1);
    msg_lease_clear(&l);
    json_object_set_new(again, "max_log_size", json_integer(-2));
    assert_int_not_equal(msg_lease_decode(again, NULL, &l, err, sizeof(err)), 0);
    json_decref(again);

    /* the output limits: absent is none (0), not sent; set, they round-trip */
    assert_int_equal(msg_lease_decode(lj, NULL, &l, err, sizeof(err)), 0);
    assert_int_equal(l.max_output_size, 0);
    assert_int_equal(l.max_outputs_size, 0);
    again = msg_lease_encode(&l);
    assert_null(json_object_get(again, "max_output_size"));
    json_decref(again);
    l.max_output_size = 10LL << 30;
    l.max_outputs_size = 20LL << 30;
    again = msg_lease_encode(&l);
    msg_lease_clear(&l);
    assert_int_equal(msg_lease_decode(again, NULL, &l, err, sizeof(err)), 0);
    assert_int_equal(l.max_output_size, 10LL << 30);
    assert_int_equal(l.max_outputs_size, 20LL << 30);
    msg_lease_clear(&l);
    json_object_set_new(again, "max_output_size", json_integer(-1));
    assert_int_not_equal(msg_lease_decode(again, NULL, &l, err, sizeof(err)), 0);
    json_decref(again);
    json_decref(lj);
}

static void
test_batch_with_bad_item(void **state)
{
    (void)state;
    json_t *body = sample_body(PROTO_BATCH);
    json_t *items = json_object_get(body, "items");
    struct msg m, m2;

    /* a bad item between good ones: a RESULT without its exit_code */
    json_t *bad = json_pack("{s:i, s:{s:s, s:I}}", "type", PROTO_RESULT, "body", "worker", "w-1",
                            "lease_id", (json_int_t)12);
    json_array_insert_new(items, 1, bad);
    decode_ok(PROTO_BATCH, body, &m);
    struct msg_batch *b = &m.u.batch;
    assert_string_equal(b->worker, "w-1");
    assert_int_equal(b->nitems, 4);
    assert_int_equal(b->items[0].type, PROTO_STARTED);
    assert_null(b->items[0].error);
    assert_int_equal(b->items[0].u.started.lease_id, 9);
    assert_int_equal(b->items[1].type, 0);
    assert_non_null(b->items[1].error);
    assert_non_null(strstr(b->items[1].error, "missing field 'items[1].body.exit_code'"));
    assert_int_equal(b->items[2].type, PROTO_LOG);
    assert_int_equal(b->items[2].u.log.stream, 2);
    assert_int_equal(b->items[2].u.log.offset, 1048576);
    assert_int_equal(b->items[3].type, PROTO_RESULT);
    assert_int_equal(b->items[3].u.result.exit_code, 137);
    assert_int_equal(b->items[3].u.result.nmetrics, 2);

    /* the refused item is decode-only: encoding leaves it out */
    json_t *again = msg_encode(&m);
    assert_non_null(again);
    assert_int_equal(json_array_size(json_object_get(again, "items")), 3);
    json_array_remove(items, 1);
    assert_json_equal(body, again);
    decode_ok(PROTO_BATCH, again, &m2);
    assert_int_equal(m2.u.batch.nitems, 3);
    for (size_t i = 0; i < 3; i++)
        assert_null(m2.u.batch.items[i].error);
    msg_clear(&m);
    msg_clear(&m2);
    json_decref(again);
    json_decref(body);

    /* every way an item can be bad */
    static const char *const bad_items[][2] = {
        {"7", "field 'items[0]' must be an object"},
        {"{\"body\":{}}", "missing field 'items[0].type'"},
        {"{\"type\":\"5\",\"body\":{}}", "field 'items[0].type' must be an integer"},
        {"{\"type\":4,\"body\":{}}", "only STARTED, LOG and RESULT can be batched"},
        {"{\"type\":1,\"body\":{}}", "field 'items[0].type' is 1 (HELLO)"},
        {"{\"type\":5}", "missing field 'items[0].body'"},
        {"{\"type\":5,\"body\":[]}", "field 'items[0].body' must be an object"},
        {"{\"type\":6,\"body\":{\"worker\":\"w\",\"lease_id\":1,\"offset\":0}}",
         "missing field 'items[0].body.data'"},
    };
    for (size_t i = 0; i < sizeof(bad_items) / sizeof(bad_items[0]); i++) {
        char *text = xasprintf("{\"worker\":\"w\",\"items\":[%s]}", bad_items[i][0]);
        json_t *j = json_loads(text, 0, NULL);
        assert_non_null(j);
        decode_ok(PROTO_BATCH, j, &m);
        assert_int_equal(m.u.batch.nitems, 1);
        assert_int_equal(m.u.batch.items[0].type, 0);
        if (!strstr(m.u.batch.items[0].error, bad_items[i][1]))
            fail_msg("item %s: '%s' does not say '%s'", bad_items[i][0], m.u.batch.items[0].error,
                     bad_items[i][1]);
        msg_clear(&m);
        json_decref(j);
        free(text);
    }
}

static void
test_work_with_bad_leases(void **state)
{
    (void)state;
    json_t *body = sample_body(PROTO_WORK);
    json_t *leases = json_object_get(body, "leases");
    json_t *no_mem = sample_lease(10), *bad_id = sample_lease(11);
    struct msg m;

    json_object_del(no_mem, "memory");
    json_object_set_new(bad_id, "lease_id", json_string("11"));
    json_array_append_new(leases, no_mem);
    json_array_append_new(leases, json_string("not a lease"));
    json_array_append_new(leases, bad_id);
    json_array_append_new(leases, sample_lease(12));
    decode_ok(PROTO_WORK, body, &m);
    struct msg_work *w = &m.u.work;
    assert_int_equal(w->nleases, 2);
    assert_int_equal(w->leases[0].lease_id, 9);
    assert_int_equal(w->leases[1].lease_id, 12);
    assert_int_equal(w->nbad, 3);
    /* a missing memory is refused, never read as "unlimited" */
    assert_int_equal(w->bad[0].lease_id, 10);
    assert_string_equal(w->bad[0].why, "missing field 'leases[1].memory'");
    assert_int_equal(w->bad[1].lease_id, 0);
    assert_string_equal(w->bad[1].why, "field 'leases[2]' must be an object");
    assert_int_equal(w->bad[2].lease_id, 0);
    assert_string_equal(w->bad[2].why, "field 'leases[3].lease_id' must be an integer");
    assert_int_equal(w->ncancel, 2);
    assert_int_equal(w->cancel[1], 4);
    /* bad leases are decode-only */
    json_t *again = msg_encode(&m);
    assert_int_equal(json_array_size(json_object_get(again, "leases")), 2);
    json_decref(again);
    msg_clear(&m);
    json_decref(body);

    /* an empty WORK (the scheduler's answer to an idle POLL) */
    json_t *empty = json_pack("{s:[], s:[]}", "leases", "cancel");
    decode_ok(PROTO_WORK, empty, &m);
    assert_int_equal(m.u.work.nleases + m.u.work.nbad + m.u.work.ncancel, 0);
    again = msg_encode(&m);
    assert_json_equal(empty, again);
    json_decref(again);
    json_decref(empty);
    msg_clear(&m);
}

/* ---- the JSON the daemons built by hand, member for member ---- */

static void
assert_same_text(json_t *want, json_t *got)
{
    assert_non_null(got);
    char *a = dump(want), *b = dump(got);
    assert_string_equal(a, b); /* same members, same order */
    free(a);
    free(b);
    json_decref(want);
    json_decref(got);
}

static void
test_old_peer_json(void **state)
{
    (void)state;
    struct msg m;

    /* HELLO as agent.c's hello() packed it, plus msg_version */
    struct msg_kv labels[] = {{"gpu", "a100"}};
    memset(&m, 0, sizeof(m));
    m.type = PROTO_HELLO;
    m.u.hello = (struct msg_hello){
        .worker = "w-1", .slots = 8, .labels = labels, .nlabels = 1, .pid = 77, .host = "node1"};
    json_t *got = msg_encode(&m);
    assert_int_equal(json_integer_value(json_object_get(got, "msg_version")), MSG_VERSION);
    json_object_del(got, "msg_version");
    assert_same_text(json_pack("{s:s, s:i, s:o, s:I, s:s}", "worker", "w-1", "slots", 8, "labels",
                               json_pack("{s:s}", "gpu", "a100"), "pid", (json_int_t)77, "host",
                               "node1"),
                     got);

    /* WELCOME as engine.c's handle_hello packed it */
    m.type = PROTO_WELCOME;
    m.u.welcome =
        (struct msg_welcome){.lease_ttl_ms = 30000, .heartbeat_ms = 5000, .artifacts = "file:///a"};
    got = msg_encode(&m);
    json_object_del(got, "msg_version");
    assert_same_text(json_pack("{s:I, s:I, s:s}", "lease_ttl_ms", (json_int_t)30000, "heartbeat_ms",
                               (json_int_t)5000, "artifacts", "file:///a"),
                     got);

    /* POLL as poll_main packed it */
    int64_t held[] = {5, 6};
    m.type = PROTO_POLL;
    m.u.poll = (struct msg_poll){
        .worker = "w-1", .free = 3, .leases = held, .nleases = 2, .wait_ms = 5000};
    assert_same_text(json_pack("{s:s, s:i, s:[I, I], s:I}", "worker", "w-1", "free", 3, "leases",
                               (json_int_t)5, (json_int_t)6, "wait_ms", (json_int_t)5000),
                     msg_encode(&m));

    /* STARTED and LOG as start_lease and flush_log packed them */
    m.type = PROTO_STARTED;
    m.u.started = (struct msg_started){.worker = "w-1", .lease_id = 9};
    assert_same_text(json_pack("{s:s, s:I}", "worker", "w-1", "lease_id", (json_int_t)9),
                     msg_encode(&m));
    /* held by the sender a moment: age_ms says how long ago it started */
    m.u.started.age_ms = 42;
    json_t *started = msg_encode(&m);
    assert_same_text(json_pack("{s:s, s:I, s:I}", "worker", "w-1", "lease_id", (json_int_t)9,
                               "age_ms", (json_int_t)42),
                     json_incref(started));
    struct msg back;
    char berr[256];
    assert_int_equal(msg_decode(PROTO_STARTED, started, &back, berr, sizeof(berr)), 0);
    assert_int_equal(back.u.started.age_ms, 42);
    msg_clear(&back);
    json_decref(started);
    m.type = PROTO_LOG;
    m.u.log = (struct msg_log){.worker = "w-1",
                               .lease_id = 9,
                               .stream = 1,
                               .offset = 65536,
                               .data = "a\tb\n",
                               .data_len = 4};
    assert_same_text(json_pack("{s:s, s:I, s:i, s:I, s:s%}", "worker", "w-1", "lease_id",
                               (json_int_t)9, "stream", 1, "offset", (json_int_t)65536, "data",
                               "a\tb\n", (size_t)4),
                     msg_encode(&m));

    /* RESULT as finish_task packed it (interrupted only when set) */
    struct msg_output outs[] = {{"model.pkl", SHA_B, 5, "file:///a/b"}};
    struct msg_metric mets[] = {{"accuracy", 0.5, false, 0}, {"rows", 0, true, 150}};
    m.type = PROTO_RESULT;
    m.u.result = (struct msg_result){.worker = "w-1",
                                     .lease_id = 9,
                                     .exit_code = 0,
                                     .duration_ms = 20,
                                     .error = "",
                                     .outputs = outs,
                                     .noutputs = 1,
                                     .metrics = mets,
                                     .nmetrics = 2};
    assert_same_text(json_pack("{s:s, s:I, s:i, s:i, s:b, s:b, s:I, s:s, s:[{s:s, s:s, s:I, "
                               "s:s}], s:{s:f, s:I}}",
                               "worker", "w-1", "lease_id", (json_int_t)9, "exit_code", 0, "signal",
                               0, "oom", 0, "timed_out", 0, "duration_ms", (json_int_t)20, "error",
                               "", "outputs", "name", "model.pkl", "sha256", SHA_B, "size",
                               (json_int_t)5, "uri", "file:///a/b", "metrics", "accuracy", 0.5,
                               "rows", (json_int_t)150),
                     msg_encode(&m));
    /* and start_failed's: nothing ran */
    m.u.result = (struct msg_result){
        .worker = "w-1", .lease_id = 9, .exit_code = -1, .error = "malformed lease", .signal = 0};
    assert_same_text(json_pack("{s:s, s:I, s:i, s:i, s:b, s:b, s:I, s:s, s:[], s:{}}", "worker",
                               "w-1", "lease_id", (json_int_t)9, "exit_code", -1, "signal", 0,
                               "oom", 0, "timed_out", 0, "duration_ms", (json_int_t)0, "error",
                               "malformed lease", "outputs", "metrics"),
                     msg_encode(&m));
    m.u.result.interrupted = true;
    got = msg_encode(&m);
    assert_true(json_is_true(json_object_get(got, "interrupted")));
    json_decref(got);

    /* BATCH as send_main packed it */
    struct msg_item items[2];
    memset(items, 0, sizeof(items));
    items[0].type = PROTO_STARTED;
    items[0].u.started = (struct msg_started){.worker = "w-1", .lease_id = 9};
    items[1].type = PROTO_LOG;
    items[1].u.log =
        (struct msg_log){.worker = "w-1", .lease_id = 9, .stream = 1, .data = "x", .data_len = 1};
    m.type = PROTO_BATCH;
    m.u.batch = (struct msg_batch){.worker = "w-1", .items = items, .nitems = 2};
    assert_same_text(json_pack("{s:s, s:[{s:i, s:{s:s, s:I}}, {s:i, s:{s:s, s:I, s:i, s:I, s:s}}]}",
                               "worker", "w-1", "items", "type", PROTO_STARTED, "body", "worker",
                               "w-1", "lease_id", (json_int_t)9, "type", PROTO_LOG, "body",
                               "worker", "w-1", "lease_id", (json_int_t)9, "stream", 1, "offset",
                               (json_int_t)0, "data", "x"),
                     msg_encode(&m));

    /* a lease as engine.c's lease_json packed it (code and metrics last) */
    char *argv[] = {"true", NULL}, *env[] = {"CAIRN_DAG=d", NULL}, *outn[] = {"o.txt", NULL};
    struct msg_input ins[] = {{"raw", "file:///a/raw", SHA_A, NULL}};
    struct msg_lease l = {.lease_id = 3,
                          .dag = "d",
                          .run_id = "r",
                          .task = "t",
                          .attempt = 1,
                          .logical_date = "2026-01-01T00:00:00Z",
                          .argv = argv,
                          .nargv = 1,
                          .env = env,
                          .nenv = 1,
                          .image = "host",
                          .timeout_ms = 0,
                          .cpus = 1,
                          .memory = 0,
                          .pids = 0,
                          .network = false,
                          .inputs = ins,
                          .ninputs = 1,
                          .outputs = outn,
                          .noutputs = 1,
                          .code = "/c"};
    json_t *old =
        json_pack("{s:I, s:s, s:s, s:s, s:i, s:s, s:[s], s:[s], s:s, s:I, s:f, s:I, s:I, "
                  "s:b, s:[{s:s, s:s, s:s}], s:[s]}",
                  "lease_id", (json_int_t)3, "dag", "d", "run_id", "r", "task", "t", "attempt", 1,
                  "logical_date", "2026-01-01T00:00:00Z", "argv", "true", "env", "CAIRN_DAG=d",
                  "image", "host", "timeout_ms", (json_int_t)0, "cpus", 1.0, "memory",
                  (json_int_t)0, "pids", (json_int_t)0, "network", 0, "inputs", "name", "raw",
                  "sha256", SHA_A, "uri", "file:///a/raw", "outputs", "o.txt");
    json_t *extra = json_pack("{s:s?, s:s?}", "code", "/c", "metrics", (const char *)NULL);
    json_object_update(old, extra);
    json_decref(extra);
    assert_same_text(old, msg_lease_encode(&l));

    /* WORK, ACK (single and batch) and ERROR as engine.c packed them */
    struct msg_lease leases[] = {l};
    int64_t cancel[] = {8};
    m.type = PROTO_WORK;
    m.u.work = (struct msg_work){.leases = leases, .nleases = 1, .cancel = cancel, .ncancel = 1};
    got = msg_encode(&m);
    assert_int_equal(json_array_size(json_object_get(got, "leases")), 1);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(got, "cancel"), 0)), 8);
    json_decref(got);
    m.type = PROTO_ACK;
    m.u.ack = (struct msg_ack){.ok = false, .reason = "lease is not current"};
    assert_same_text(json_pack("{s:b, s:s}", "ok", 0, "reason", "lease is not current"),
                     msg_encode(&m));
    struct msg_ack res[] = {{.ok = true, .reason = ""},
                            {.ok = false, .reason = "bad", .code = "proto"}};
    m.u.ack = (struct msg_ack){.ok = true, .results = res, .nresults = 2};
    assert_same_text(json_pack("{s:b, s:[{s:b, s:s}, {s:b, s:s, s:s}]}", "ok", 1, "results", "ok",
                               1, "reason", "", "ok", 0, "reason", "bad", "code", "proto"),
                     msg_encode(&m));
    m.type = PROTO_ERROR;
    m.u.error = (struct msg_error){.code = "proto", .message = "field 'x' must be an integer"};
    assert_same_text(
        json_pack("{s:s, s:s}", "code", "proto", "message", "field 'x' must be an integer"),
        msg_encode(&m));
}

/* ---- every field, missing and mistyped ---- */

/* Where a refusal shows: the decode fails, or the WORK keeps the lease in
 * bad[0], or the BATCH marks its item (the first) type 0. */
enum where { W_MSG, W_LEASE, W_ITEM };

struct field_case {
    int type;
    const char *path;  /* in the sample body: "leases[0].memory" */
    bool required;     /* (an array element is not: without it the array is shorter) */
    const char *wrong; /* JSON of a value of the wrong type */
    enum where where;
    const char *name; /* the path the message must name */
};

static const struct field_case field_cases[] = {
    {PROTO_HELLO, "worker", true, "7", W_MSG, "worker"},
    {PROTO_HELLO, "slots", true, "\"4\"", W_MSG, "slots"},
    {PROTO_HELLO, "labels", false, "[]", W_MSG, "labels"},
    {PROTO_HELLO, "labels.gpu", false, "1", W_MSG, "labels.gpu"},
    {PROTO_HELLO, "pid", false, "1.5", W_MSG, "pid"},
    {PROTO_HELLO, "host", false, "{}", W_MSG, "host"},
    {PROTO_HELLO, "msg_version", false, "\"1\"", W_MSG, "msg_version"},
    {PROTO_WELCOME, "lease_ttl_ms", true, "\"30000\"", W_MSG, "lease_ttl_ms"},
    {PROTO_WELCOME, "heartbeat_ms", true, "true", W_MSG, "heartbeat_ms"},
    {PROTO_WELCOME, "artifacts", false, "[]", W_MSG, "artifacts"},
    {PROTO_WELCOME, "msg_version", false, "1.0", W_MSG, "msg_version"},
    {PROTO_POLL, "worker", true, "null", W_MSG, "worker"},
    {PROTO_POLL, "free", true, "\"2\"", W_MSG, "free"},
    {PROTO_POLL, "leases", false, "{}", W_MSG, "leases"},
    {PROTO_POLL, "leases[1]", false, "\"8\"", W_MSG, "leases[1]"},
    {PROTO_POLL, "wait_ms", false, "false", W_MSG, "wait_ms"},
    {PROTO_WORK, "leases", true, "{}", W_MSG, "leases"},
    {PROTO_WORK, "cancel", true, "3", W_MSG, "cancel"},
    {PROTO_WORK, "cancel[0]", false, "\"3\"", W_MSG, "cancel[0]"},
    {PROTO_WORK, "leases[0].lease_id", true, "\"9\"", W_LEASE, "leases[0].lease_id"},
    {PROTO_WORK, "leases[0].dag", true, "1", W_LEASE, "leases[0].dag"},
    {PROTO_WORK, "leases[0].run_id", true, "[]", W_LEASE, "leases[0].run_id"},
    {PROTO_WORK, "leases[0].task", true, "null", W_LEASE, "leases[0].task"},
    {PROTO_WORK, "leases[0].attempt", true, "1.0", W_LEASE, "leases[0].attempt"},
    {PROTO_WORK, "leases[0].logical_date", true, "20260102", W_LEASE, "leases[0].logical_date"},
    {PROTO_WORK, "leases[0].argv", true, "\"python3\"", W_LEASE, "leases[0].argv"},
    {PROTO_WORK, "leases[0].argv[1]", false, "2", W_LEASE, "leases[0].argv[1]"},
    {PROTO_WORK, "leases[0].env", true, "{}", W_LEASE, "leases[0].env"},
    {PROTO_WORK, "leases[0].env[0]", false, "{}", W_LEASE, "leases[0].env[0]"},
    {PROTO_WORK, "leases[0].image", true, "false", W_LEASE, "leases[0].image"},
    {PROTO_WORK, "leases[0].timeout_ms", true, "\"10m\"", W_LEASE, "leases[0].timeout_ms"},
    {PROTO_WORK, "leases[0].cpus", true, "\"1.5\"", W_LEASE, "leases[0].cpus"},
    {PROTO_WORK, "leases[0].memory", true, "\"512Mi\"", W_LEASE, "leases[0].memory"},
    {PROTO_WORK, "leases[0].pids", true, "256.5", W_LEASE, "leases[0].pids"},
    {PROTO_WORK, "leases[0].network", true, "0", W_LEASE, "leases[0].network"},
    {PROTO_WORK, "leases[0].inputs", true, "{}", W_LEASE, "leases[0].inputs"},
    {PROTO_WORK, "leases[0].inputs[0]", false, "\"raw\"", W_LEASE, "leases[0].inputs[0]"},
    {PROTO_WORK, "leases[0].inputs[0].name", true, "1", W_LEASE, "leases[0].inputs[0].name"},
    {PROTO_WORK, "leases[0].inputs[0].uri", true, "1", W_LEASE, "leases[0].inputs[0].uri"},
    {PROTO_WORK, "leases[0].inputs[0].sha256", true, "1", W_LEASE, "leases[0].inputs[0].sha256"},
    {PROTO_WORK, "leases[0].outputs", true, "\"model.pkl\"", W_LEASE, "leases[0].outputs"},
    {PROTO_WORK, "leases[0].outputs[0]", false, "null", W_LEASE, "leases[0].outputs[0]"},
    {PROTO_WORK, "leases[0].code", false, "1", W_LEASE, "leases[0].code"},
    {PROTO_WORK, "leases[0].metrics", false, "[]", W_LEASE, "leases[0].metrics"},
    {PROTO_WORK, "leases[0].inputs[0].manifest_file", false, "1", W_LEASE,
     "leases[0].inputs[0].manifest_file"},
    {PROTO_WORK, "leases[0].mounts", false, "{}", W_LEASE, "leases[0].mounts"},
    {PROTO_WORK, "leases[0].mounts[0]", false, "\"/data\"", W_LEASE, "leases[0].mounts[0]"},
    {PROTO_WORK, "leases[0].mounts[0].host", true, "1", W_LEASE, "leases[0].mounts[0].host"},
    {PROTO_WORK, "leases[0].mounts[0].path", true, "[]", W_LEASE, "leases[0].mounts[0].path"},
    {PROTO_WORK, "leases[0].mounts[0].readonly", true, "\"yes\"", W_LEASE,
     "leases[0].mounts[0].readonly"},
    {PROTO_STARTED, "worker", true, "1", W_MSG, "worker"},
    {PROTO_STARTED, "lease_id", true, "\"9\"", W_MSG, "lease_id"},
    {PROTO_LOG, "worker", true, "1", W_MSG, "worker"},
    {PROTO_LOG, "lease_id", true, "9.0", W_MSG, "lease_id"},
    {PROTO_LOG, "stream", false, "\"stdout\"", W_MSG, "stream"},
    {PROTO_LOG, "offset", true, "\"0\"", W_MSG, "offset"},
    {PROTO_LOG, "data", true, "[]", W_MSG, "data"},
    {PROTO_RESULT, "worker", true, "{}", W_MSG, "worker"},
    {PROTO_RESULT, "lease_id", true, "null", W_MSG, "lease_id"},
    {PROTO_RESULT, "exit_code", true, "\"0\"", W_MSG, "exit_code"},
    {PROTO_RESULT, "signal", false, "\"KILL\"", W_MSG, "signal"},
    {PROTO_RESULT, "oom", false, "1", W_MSG, "oom"},
    {PROTO_RESULT, "timed_out", false, "\"yes\"", W_MSG, "timed_out"},
    {PROTO_RESULT, "interrupted", false, "0", W_MSG, "interrupted"},
    {PROTO_RESULT, "duration_ms", false, "1.5", W_MSG, "duration_ms"},
    {PROTO_RESULT, "error", false, "false", W_MSG, "error"},
    {PROTO_RESULT, "outputs", false, "{}", W_MSG, "outputs"},
    {PROTO_RESULT, "outputs[0]", false, "\"model.pkl\"", W_MSG, "outputs[0]"},
    {PROTO_RESULT, "outputs[0].name", true, "1", W_MSG, "outputs[0].name"},
    {PROTO_RESULT, "outputs[0].sha256", true, "1", W_MSG, "outputs[0].sha256"},
    {PROTO_RESULT, "outputs[0].size", true, "\"5\"", W_MSG, "outputs[0].size"},
    {PROTO_RESULT, "outputs[0].uri", true, "[]", W_MSG, "outputs[0].uri"},
    {PROTO_RESULT, "metrics", false, "[]", W_MSG, "metrics"},
    {PROTO_RESULT, "stderr_tail", false, "\"MemoryError\"", W_MSG, "stderr_tail"},
    {PROTO_RESULT, "stderr_tail[1]", false, "1", W_MSG, "stderr_tail[1]"},
    {PROTO_BATCH, "worker", true, "1", W_MSG, "worker"},
    {PROTO_BATCH, "items", true, "{}", W_MSG, "items"},
    {PROTO_BATCH, "items[0].type", true, "\"5\"", W_ITEM, "items[0].type"},
    {PROTO_BATCH, "items[0].body", true, "[]", W_ITEM, "items[0].body"},
    {PROTO_BATCH, "items[0].body.worker", true, "1", W_ITEM, "items[0].body.worker"},
    {PROTO_BATCH, "items[0].body.lease_id", true, "\"9\"", W_ITEM, "items[0].body.lease_id"},
    {PROTO_ACK, "ok", true, "1", W_MSG, "ok"},
    {PROTO_ACK, "reason", false, "1", W_MSG, "reason"},
    {PROTO_ACK, "code", false, "1", W_MSG, "code"},
    {PROTO_ACK, "results", false, "{}", W_MSG, "results"},
    {PROTO_ACK, "results[1]", false, "true", W_MSG, "results[1]"},
    {PROTO_ACK, "results[1].ok", true, "\"false\"", W_MSG, "results[1].ok"},
    {PROTO_ACK, "results[1].reason", false, "[]", W_MSG, "results[1].reason"},
    {PROTO_ERROR, "code", true, "7", W_MSG, "code"},
    {PROTO_ERROR, "message", true, "{}", W_MSG, "message"},
};

/* One step of a path: a member key, or an array index (key NULL). */
struct step {
    char key[64];
    bool is_index;
    size_t index;
};

/* "leases[0].inputs[1].name" -> leases, [0], inputs, [1], name. */
static size_t
parse_path(const char *path, struct step *steps, size_t max)
{
    size_t n = 0;
    const char *p = path;
    while (*p) {
        assert_true(n < max);
        memset(&steps[n], 0, sizeof(steps[n]));
        if (*p == '[') {
            char *end;
            steps[n].is_index = true;
            steps[n].index = (size_t)strtoul(p + 1, &end, 10);
            assert_int_equal(*end, ']');
            p = end + 1;
        } else {
            size_t len = strcspn(p, ".[");
            assert_true(len > 0 && len < sizeof(steps[n].key));
            memcpy(steps[n].key, p, len);
            p += len;
        }
        if (*p == '.')
            p++;
        n++;
    }
    return n;
}

/* A copy of the sample with the member at path removed (wrong == NULL) or
 * replaced by wrong. */
static json_t *
mutate(int type, const char *path, const char *wrong)
{
    struct step steps[16];
    size_t n = parse_path(path, steps, 16);
    json_t *body = sample_body(type), *parent = body;
    json_t *v = wrong ? json_loads(wrong, JSON_DECODE_ANY, NULL) : NULL;
    if (wrong)
        assert_non_null(v);
    for (size_t i = 0; i + 1 < n; i++) {
        parent = steps[i].is_index ? json_array_get(parent, steps[i].index)
                                   : json_object_get(parent, steps[i].key);
        assert_non_null(parent);
    }
    const struct step *last = &steps[n - 1];
    if (last->is_index) {
        assert_true(json_is_array(parent) && last->index < json_array_size(parent));
        if (v)
            json_array_set_new(parent, last->index, v);
        else
            json_array_remove(parent, last->index);
    } else {
        assert_non_null(json_object_get(parent, last->key)); /* the sample has every member */
        if (v)
            json_object_set_new(parent, last->key, v);
        else
            json_object_del(parent, last->key);
    }
    return body;
}

/* Decode; return the refusal message ("" if accepted). */
static char *
refusal(const struct field_case *c, json_t *body)
{
    struct msg m;
    char err[512] = "";
    char *why;
    int rc = msg_decode(c->type, body, &m, err, sizeof(err));
    if (rc != 0) {
        assert_int_equal(rc, CAIRN_EPROTO);
        assert_true(all_zero(&m, sizeof(m)));
        return xstrdup(err);
    }
    why = xstrdup("");
    if (c->type == PROTO_WORK && m.u.work.nbad > 0) {
        free(why);
        why = xstrdup(m.u.work.bad[0].why);
        assert_int_equal(m.u.work.nleases, 0);
    }
    if (c->type == PROTO_BATCH && m.u.batch.nitems > 0 && m.u.batch.items[0].type == 0) {
        free(why);
        why = xstrdup(m.u.batch.items[0].error);
        assert_int_equal(m.u.batch.items[1].type, PROTO_LOG); /* the others stand */
    }
    msg_clear(&m);
    return why;
}

static void
expect_refused(const struct field_case *c, json_t *body, const char *what)
{
    char *why = refusal(c, body);
    char quoted[128];
    snprintf(quoted, sizeof(quoted), "'%s'", c->name);
    if (!why[0])
        fail_msg("%s %s (%s): accepted", proto_type_name(c->type), c->path, what);
    if (!strstr(why, quoted))
        fail_msg("%s %s (%s): message '%s' does not name %s", proto_type_name(c->type), c->path,
                 what, why, quoted);
    free(why);
}

static void
test_every_field(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(field_cases) / sizeof(field_cases[0]); i++) {
        const struct field_case *c = &field_cases[i];
        /* mistyped: always refused */
        json_t *body = mutate(c->type, c->path, c->wrong);
        expect_refused(c, body, "mistyped");
        json_decref(body);
        /* missing: refused if required, else accepted with its default */
        body = mutate(c->type, c->path, NULL);
        if (c->required) {
            expect_refused(c, body, "missing");
        } else {
            char *why = refusal(c, body);
            if (why[0])
                fail_msg("%s %s: optional, but its absence is refused: %s",
                         proto_type_name(c->type), c->path, why);
            free(why);
        }
        json_decref(body);
    }
}

static void
test_defaults(void **state)
{
    (void)state;
    struct msg m;
    json_t *j = json_pack("{s:s, s:i}", "worker", "w", "slots", 1);
    decode_ok(PROTO_HELLO, j, &m);
    assert_int_equal(m.u.hello.nlabels, 0);
    assert_int_equal(m.u.hello.pid, 0);
    assert_string_equal(m.u.hello.host, "");
    assert_int_equal(m.u.hello.version, 1);
    msg_clear(&m);
    json_decref(j);

    j = json_pack("{s:I, s:I}", "lease_ttl_ms", (json_int_t)1, "heartbeat_ms", (json_int_t)1);
    decode_ok(PROTO_WELCOME, j, &m);
    assert_null(m.u.welcome.artifacts);
    assert_int_equal(m.u.welcome.version, 1);
    msg_clear(&m);
    json_decref(j);

    j = json_pack("{s:s, s:i}", "worker", "w", "free", 0);
    decode_ok(PROTO_POLL, j, &m);
    assert_int_equal(m.u.poll.nleases, 0);
    assert_int_equal(m.u.poll.wait_ms, 0);
    msg_clear(&m);
    json_decref(j);

    j = json_pack("{s:s, s:I, s:I, s:s}", "worker", "w", "lease_id", (json_int_t)1, "offset",
                  (json_int_t)0, "data", "");
    decode_ok(PROTO_LOG, j, &m);
    assert_int_equal(m.u.log.stream, 1);
    assert_int_equal(m.u.log.data_len, 0);
    assert_string_equal(m.u.log.data, "");
    msg_clear(&m);
    json_decref(j);

    /* null counts as absent for optional members */
    j = json_pack("{s:s, s:I, s:i, s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n}", "worker", "w",
                  "lease_id", (json_int_t)1, "exit_code", -1, "signal", "oom", "timed_out",
                  "duration_ms", "error", "outputs", "metrics", "stderr_tail");
    decode_ok(PROTO_RESULT, j, &m);
    struct msg_result *r = &m.u.result;
    assert_int_equal(r->exit_code, -1);
    assert_int_equal(r->signal, 0);
    assert_false(r->oom || r->timed_out || r->interrupted);
    assert_int_equal(r->duration_ms, 0);
    assert_non_null(r->error);
    assert_string_equal(r->error, "");
    assert_int_equal(r->noutputs + r->nmetrics, 0);
    assert_null(r->stderr_tail);
    assert_int_equal(r->nstderr_tail, 0);
    json_t *again = msg_encode(&m);
    assert_null(json_object_get(again, "stderr_tail")); /* absent, as old workers sent it */
    json_decref(again);
    msg_clear(&m);
    json_decref(j);

    j = json_pack("{s:b}", "ok", 1);
    decode_ok(PROTO_ACK, j, &m);
    assert_true(m.u.ack.ok);
    assert_string_equal(m.u.ack.reason, "");
    assert_null(m.u.ack.code);
    assert_null(m.u.ack.results);
    msg_clear(&m);
    json_decref(j);
}

static void
test_unknown_members_ignored(void **state)
{
    (void)state;
    for (size_t i = 0; i < NTYPES; i++) {
        int type = all_types[i];
        json_t *body = sample_body(type);
        struct msg m;
        json_object_set_new(body, "from_the_future", json_pack("{s:[i]}", "x", 1));
        json_object_set_new(body, "zz_flag", json_true());
        if (type == PROTO_WORK)
            json_object_set_new(json_array_get(json_object_get(body, "leases"), 0), "tpus",
                                json_integer(2));
        if (type == PROTO_BATCH)
            json_object_set_new(json_array_get(json_object_get(body, "items"), 0), "prio",
                                json_integer(2));
        decode_ok(type, body, &m);
        if (type == PROTO_WORK)
            assert_int_equal(m.u.work.nleases, 1);
        if (type == PROTO_BATCH)
            assert_int_equal(m.u.batch.items[0].type, PROTO_STARTED);
        json_t *again = msg_encode(&m);
        assert_null(json_object_get(again, "from_the_future"));
        json_decref(again);
        msg_clear(&m);
        json_decref(body);
    }
    /* non-number metrics are dropped, not refused (the task wrote them) */
    json_t *r = sample_result();
    json_object_set_new(json_object_get(r, "metrics"), "note", json_string("fast"));
    json_object_set_new(json_object_get(r, "metrics"), "nested", json_object());
    struct msg m;
    decode_ok(PROTO_RESULT, r, &m);
    assert_int_equal(m.u.result.nmetrics, 2);
    for (size_t i = 0; i < m.u.result.nmetrics; i++)
        assert_true(strcmp(m.u.result.metrics[i].name, "note") != 0);
    msg_clear(&m);
    json_decref(r);
}

static void
test_log_data_bytes(void **state)
{
    (void)state;
    /* every one-byte character but NUL, the first and last of each UTF-8
     * length, the edges of the surrogate gap, U+10FFFF, an emoji */
    struct sb data;
    sb_init(&data);
    for (int c = 1; c < 0x80; c++)
        sb_putc(&data, (char)c);
    sb_puts(&data, "\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf"
                   "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\xf0\x9f\x98\x80 tail");
    assert_true(msg_utf8_valid(data.buf, data.len));

    struct msg m, back;
    memset(&m, 0, sizeof(m));
    m.type = PROTO_LOG;
    m.u.log = (struct msg_log){.worker = "w",
                               .lease_id = 1,
                               .stream = 2,
                               .offset = 7,
                               .data = data.buf,
                               .data_len = data.len};
    unsigned char *frame;
    size_t flen;
    struct proto_key k;
    proto_key_from_string(&k, TOKEN);
    assert_int_equal(msg_pack(&k, &m, &frame, &flen), 0);
    char err[256];
    assert_int_equal(msg_unpack(&k, frame, flen, &back, err, sizeof(err)), 0);
    assert_int_equal(back.type, PROTO_LOG);
    assert_int_equal(back.u.log.data_len, data.len);
    assert_memory_equal(back.u.log.data, data.buf, data.len);
    assert_int_equal(back.u.log.data[data.len], '\0');
    assert_int_equal(back.u.log.stream, 2);
    assert_int_equal(back.u.log.offset, 7);
    msg_clear(&back);
    free(frame);

    /* NUL cannot cross the wire (proto_decode refuses \u0000): the encoder
     * refuses it rather than send a frame no peer takes, the decoder too */
    m.u.log.data = "a\0b";
    m.u.log.data_len = 3;
    assert_true(msg_utf8_valid("a\0b", 3));
    assert_null(msg_encode(&m));
    json_t *nul = json_pack("{s:s, s:I, s:I, s:s%}", "worker", "w", "lease_id", (json_int_t)1,
                            "offset", (json_int_t)0, "data", "a\0b", (size_t)3);
    assert_int_equal(msg_decode(PROTO_LOG, nul, &back, err, sizeof(err)), CAIRN_EPROTO);
    assert_string_equal(err, "field 'data' must not contain NUL bytes");
    json_decref(nul);

    /* what jansson refuses, msg_utf8_valid refuses, and msg_encode with it */
    static const char *const bad[] = {
        "\x80",             /* lone continuation */
        "\xc0\xaf",         /* overlong '/' */
        "\xc1\xbf",         /* overlong */
        "\xe0\x80\xaf",     /* overlong 3-byte */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xf0\x80\x80\xaf", /* overlong 4-byte */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\xf5\x80\x80\x80",
        "\xe2\x9c", /* cut short */
        "ok\xff",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = strlen(bad[i]);
        json_t *js = json_stringn(bad[i], n);
        assert_null(js);
        assert_false(msg_utf8_valid(bad[i], n));
        m.u.log.data = (char *)bad[i];
        m.u.log.data_len = n;
        assert_null(msg_encode(&m));
        assert_int_equal(msg_pack(NULL, &m, &frame, &flen), CAIRN_EINVAL);
    }
    /* and agrees with jansson on every two-byte sequence */
    for (int a = 0; a < 256; a++)
        for (int b = 0; b < 256; b++) {
            char s[2] = {(char)a, (char)b};
            json_t *js = json_stringn(s, 2);
            assert_int_equal(js != NULL, msg_utf8_valid(s, 2));
            json_decref(js);
        }
    sb_free(&data);
}

static void
expect_range(int type, const char *member, json_t *value, bool ok, const char *says)
{
    json_t *body = sample_body(type);
    struct msg m;
    char err[256] = "";
    json_object_set_new(body, member, value);
    int rc = msg_decode(type, body, &m, err, sizeof(err));
    if (ok) {
        if (rc != 0)
            fail_msg("%s %s: refused: %s", proto_type_name(type), member, err);
        msg_clear(&m);
    } else {
        assert_int_equal(rc, CAIRN_EPROTO);
        if (!strstr(err, says))
            fail_msg("%s %s: '%s' does not say '%s'", proto_type_name(type), member, err, says);
    }
    json_decref(body);
}

static void
expect_lease(const char *member, json_t *value, bool ok, const char *says)
{
    json_t *lj = sample_lease(5);
    struct msg_lease l;
    char err[256] = "";
    json_object_set_new(lj, member, value);
    int rc = msg_lease_decode(lj, "leases[4]", &l, err, sizeof(err));
    if (ok) {
        if (rc != 0)
            fail_msg("lease %s: refused: %s", member, err);
        msg_lease_clear(&l);
    } else {
        assert_int_equal(rc, CAIRN_EPROTO);
        assert_true(all_zero(&l, sizeof(l)));
        if (!strstr(err, says))
            fail_msg("lease %s: '%s' does not say '%s'", member, err, says);
    }
    json_decref(lj);
}

static void
test_limits(void **state)
{
    (void)state;
    expect_range(PROTO_HELLO, "slots", json_integer(0), false,
                 "field 'slots' is 0, must be between 1 and 100000");
    expect_range(PROTO_HELLO, "slots", json_integer(1), true, NULL);
    expect_range(PROTO_HELLO, "slots", json_integer(100000), true, NULL);
    expect_range(PROTO_HELLO, "slots", json_integer(100001), false, "between 1 and 100000");
    expect_range(PROTO_HELLO, "worker", json_string(""), false, "field 'worker' must not be empty");
    expect_range(PROTO_HELLO, "worker", json_stringn("a\0b", 3), false, "NUL");
    expect_range(PROTO_POLL, "free", json_integer(-1), false, "between 0 and 100000");
    expect_range(PROTO_POLL, "wait_ms", json_integer(600001), false, "between 0 and 600000");
    expect_range(PROTO_RESULT, "exit_code", json_integer(-1), true, NULL);
    expect_range(PROTO_RESULT, "exit_code", json_integer(255), true, NULL);
    expect_range(PROTO_RESULT, "exit_code", json_integer(-2), false,
                 "field 'exit_code' is -2, must be between -1 and 255");
    expect_range(PROTO_RESULT, "exit_code", json_integer(256), false, "between -1 and 255");
    expect_range(PROTO_RESULT, "signal", json_integer(129), false, "between 0 and 128");
    expect_range(PROTO_RESULT, "duration_ms", json_integer(-1), false, "'duration_ms'");
    expect_range(PROTO_STARTED, "lease_id", json_integer(0), false, "between 1 and");
    expect_range(PROTO_STARTED, "age_ms", json_integer(-1), false, "'age_ms'");
    expect_range(PROTO_LOG, "stream", json_integer(3), false, "between 1 and 2");
    expect_range(PROTO_LOG, "offset", json_integer(-1), false, "'offset'");

    /* sha256: 64 lower-case hex digits, in outputs and inputs */
    assert_true(msg_sha256_valid(SHA_A));
    static const char *const bad_sha[] = {
        "",
        "abc",
        SHA_A "0",
        "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
        "g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85 "};
    for (size_t i = 0; i < sizeof(bad_sha) / sizeof(bad_sha[0]); i++) {
        assert_false(msg_sha256_valid(bad_sha[i]));
        json_t *r = sample_result();
        json_object_set_new(json_array_get(json_object_get(r, "outputs"), 0), "sha256",
                            json_string(bad_sha[i]));
        struct msg m;
        char err[256];
        assert_int_equal(msg_decode(PROTO_RESULT, r, &m, err, sizeof(err)), CAIRN_EPROTO);
        assert_non_null(strstr(err, "field 'outputs[0].sha256' must be 64 lower-case hex"));
        json_decref(r);
        json_t *ins =
            json_pack("[{s:s, s:s, s:s}]", "name", "raw", "uri", "u", "sha256", bad_sha[i]);
        expect_lease("inputs", ins, false, "field 'leases[4].inputs[0].sha256' must be 64");
    }
    assert_false(msg_sha256_valid(NULL));

    /* lease values */
    expect_lease("argv", json_array(), false, "field 'leases[4].argv' must not be empty");
    expect_lease("env", json_pack("[s]", "NOEQUALS"), false,
                 "field 'leases[4].env[0]' must be K=V");
    expect_lease("env", json_pack("[s]", "=v"), false, "must be K=V");
    expect_lease("env", json_pack("[s]", "EMPTY="), true, NULL);
    expect_lease("env", json_array(), true, NULL);
    expect_lease("cpus", json_real(-0.5), false, "field 'leases[4].cpus' is -0.5");
    expect_lease("cpus", json_real(0), true, NULL);
    expect_lease("memory", json_integer(-1), false, "'leases[4].memory'");
    expect_lease("memory", json_integer(0), true, NULL);
    expect_lease("pids", json_integer(-1), false, "'leases[4].pids'");
    expect_lease("timeout_ms", json_integer(-1), false, "'leases[4].timeout_ms'");
    expect_lease("attempt", json_integer(0), false, "'leases[4].attempt'");
    expect_lease("lease_id", json_integer(0), false, "'leases[4].lease_id'");
    static const char *const bad_names[] = {"", ".", "..", "a/b", "/abs"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
        expect_lease(
            "inputs",
            json_pack("[{s:s, s:s, s:s}]", "name", bad_names[i], "uri", "u", "sha256", SHA_A),
            false, "field 'leases[4].inputs[0].name' must be one path component");
    expect_lease("inputs",
                 json_pack("[{s:s, s:s, s:s}]", "name", "..x", "uri", "u", "sha256", SHA_A), true,
                 NULL);

    /* metrics: integers stay exact beyond a double's 53 bits */
    json_t *r = sample_result();
    json_object_set_new(json_object_get(r, "metrics"), "rows",
                        json_integer((json_int_t)9007199254740993LL));
    json_object_set_new(json_object_get(r, "metrics"), "max", json_integer((json_int_t)INT64_MAX));
    struct msg m;
    decode_ok(PROTO_RESULT, r, &m);
    json_t *again = msg_encode(&m);
    assert_json_equal(r, again);
    json_decref(again);
    msg_clear(&m);
    json_decref(r);
}

static void
test_encode_refuses_malformed(void **state)
{
    (void)state;
    struct msg m;
    memset(&m, 0, sizeof(m));
    m.type = PROTO_STARTED; /* worker NULL */
    m.u.started.lease_id = 1;
    assert_null(msg_encode(&m));
    m.type = 99;
    assert_null(msg_encode(&m));
    assert_null(msg_encode(NULL));
    unsigned char *f = (unsigned char *)&m;
    size_t n = 12345;
    assert_int_equal(msg_pack(NULL, &m, &f, &n), CAIRN_EINVAL);
    assert_ptr_equal(f, (unsigned char *)&m); /* untouched */
    assert_int_equal(n, 12345);

    struct msg_result r = {.worker = "w", .lease_id = 1};
    struct msg_metric bad = {"x", 1.0 / 0.0, false, 0};
    r.metrics = &bad;
    r.nmetrics = 1;
    assert_null(msg_result_encode(&r)); /* not finite */
    struct msg_lease l = {0};
    assert_null(msg_lease_encode(&l));
    char *argv[] = {"a\xff", NULL};
    struct msg_lease l2 = {.lease_id = 1,
                           .dag = "d",
                           .run_id = "r",
                           .task = "t",
                           .attempt = 1,
                           .logical_date = "x",
                           .argv = argv,
                           .nargv = 1,
                           .image = "host"};
    assert_null(msg_lease_encode(&l2));
    argv[0] = "a";
    json_t *ok = msg_lease_encode(&l2);
    assert_non_null(ok);
    json_decref(ok);

    /* msg_clear: NULL and zeroed are no-ops; every type clears */
    msg_clear(NULL);
    memset(&m, 0, sizeof(m));
    msg_clear(&m);
    msg_result_clear(NULL);
}

static void
test_decode_refuses(void **state)
{
    (void)state;
    struct msg m;
    char err[256];
    json_t *arr = json_array();
    memset(&m, 0xab, sizeof(m));
    assert_int_equal(msg_decode(PROTO_HELLO, arr, &m, err, sizeof(err)), CAIRN_EPROTO);
    assert_string_equal(err, "message body must be a JSON object");
    assert_true(all_zero(&m, sizeof(m)));
    assert_int_equal(msg_decode(PROTO_HELLO, NULL, &m, err, sizeof(err)), CAIRN_EPROTO);
    json_t *obj = json_object();
    assert_int_equal(msg_decode(0, obj, &m, err, sizeof(err)), CAIRN_EPROTO);
    assert_string_equal(err, "unknown message type 0");
    assert_int_equal(msg_decode(PROTO_ERROR + 100, obj, &m, NULL, 0), CAIRN_EPROTO);
    json_decref(obj);
    json_decref(arr);

    /* a body that fails late: everything decoded so far is freed (ASan) */
    json_t *r = sample_result();
    json_object_set_new(r, "metrics", json_string("x"));
    assert_int_equal(msg_decode(PROTO_RESULT, r, &m, err, sizeof(err)), CAIRN_EPROTO);
    assert_string_equal(err, "field 'metrics' must be an object");
    assert_true(all_zero(&m, sizeof(m)));
    json_decref(r);
    json_t *l = sample_lease(3);
    json_object_set_new(l, "metrics", json_integer(1));
    struct msg_lease lease;
    assert_int_equal(msg_lease_decode(l, NULL, &lease, err, sizeof(err)), CAIRN_EPROTO);
    assert_string_equal(err, "field 'metrics' must be a string");
    json_decref(l);
}

/* The members that fan-in inputs, host mounts and the stderr tail added:
 * their values are checked, not only their types. */
static void
test_inputs_mounts_stderr(void **state)
{
    (void)state;
    static const char *const bad_paths[] = {"data",  "",  "/data/../etc", "/./data", "/data/.",
                                            "/a/..", NULL};
    static const char *const bad_files[] = {"a/b", "", ".", "..", "/model.pkl", NULL};
    struct msg_lease l;
    char err[256], want[256];

    for (size_t i = 0; bad_paths[i]; i++) {
        for (int which = 0; which < 2; which++) {
            const char *key = which ? "path" : "host";
            json_t *lj = sample_lease(5);
            json_object_set_new(json_array_get(json_object_get(lj, "mounts"), 0), key,
                                json_string(bad_paths[i]));
            if (msg_lease_decode(lj, "leases[0]", &l, err, sizeof(err)) != CAIRN_EPROTO)
                fail_msg("mount %s '%s' accepted", key, bad_paths[i]);
            assert_true(all_zero(&l, sizeof(l)));
            snprintf(want, sizeof(want),
                     "field 'leases[0].mounts[0].%s' must be an absolute path without . or .. "
                     "parts",
                     key);
            assert_string_equal(err, want);
            json_decref(lj);
        }
    }
    /* repeated and trailing slashes are a path like any other */
    json_t *lj = sample_lease(5);
    json_object_set_new(json_array_get(json_object_get(lj, "mounts"), 0), "host",
                        json_string("//data//landing/"));
    assert_int_equal(msg_lease_decode(lj, NULL, &l, err, sizeof(err)), 0);
    assert_string_equal(l.mounts[0].host, "//data//landing/");
    msg_lease_clear(&l);
    /* several mounts, read-only or not, in order */
    json_array_append_new(
        json_object_get(lj, "mounts"),
        json_pack("{s:s, s:s, s:b}", "host", "/srv/scratch", "path", "/scratch", "readonly", 0));
    assert_int_equal(msg_lease_decode(lj, NULL, &l, err, sizeof(err)), 0);
    assert_int_equal(l.nmounts, 2);
    assert_true(l.mounts[0].readonly);
    assert_false(l.mounts[1].readonly);
    assert_string_equal(l.mounts[1].path, "/scratch");
    json_t *again = msg_lease_encode(&l);
    assert_json_equal(lj, again);
    json_decref(again);
    msg_lease_clear(&l);
    json_decref(lj);

    for (size_t i = 0; bad_files[i]; i++) {
        lj = sample_lease(6);
        json_object_set_new(json_array_get(json_object_get(lj, "inputs"), 0), "manifest_file",
                            json_string(bad_files[i]));
        if (msg_lease_decode(lj, "leases[2]", &l, err, sizeof(err)) != CAIRN_EPROTO)
            fail_msg("manifest_file '%s' accepted", bad_files[i]);
        assert_string_equal(err, "field 'leases[2].inputs[0].manifest_file' must be one path "
                                 "component (not empty, no '/', not . or ..)");
        json_decref(lj);
    }

    /* the stderr tail: decoded in order and NULL-terminated; a line that is
     * not UTF-8 cannot be encoded (the worker replaces such bytes first) */
    struct msg m;
    json_t *r = sample_result();
    decode_ok(PROTO_RESULT, r, &m);
    assert_int_equal(m.u.result.nstderr_tail, 2);
    assert_string_equal(m.u.result.stderr_tail[0], "Traceback (most recent call last):");
    assert_string_equal(m.u.result.stderr_tail[1], "MemoryError \xc3\xa9");
    assert_null(m.u.result.stderr_tail[2]);
    msg_clear(&m);
    json_object_set_new(r, "stderr_tail", json_array());
    decode_ok(PROTO_RESULT, r, &m);
    assert_int_equal(m.u.result.nstderr_tail, 0);
    msg_clear(&m);
    json_decref(r);
    char *tail[] = {"ok", "bad \xff", NULL};
    struct msg_result res = {.worker = "w", .lease_id = 1, .stderr_tail = tail, .nstderr_tail = 2};
    assert_null(msg_result_encode(&res));
    tail[1] = "fine";
    json_t *enc = msg_result_encode(&res);
    assert_non_null(enc);
    json_t *want_tail = json_pack("[s, s]", "ok", "fine");
    assert_json_equal(want_tail, json_object_get(enc, "stderr_tail"));
    json_decref(want_tail);
    json_decref(enc);
}

/* GPUs: HELLO announces them, a lease carries the allocation; both are
 * optional, so old and new peers interoperate, and both are checked. */
static void
test_gpus(void **state)
{
    (void)state;
    struct msg m, back;
    char err[256];

    struct msg_gpu gpus[] = {{0, "NVIDIA A100-SXM4-80GB"}, {3, ""}};
    memset(&m, 0, sizeof(m));
    m.type = PROTO_HELLO;
    m.u.hello = (struct msg_hello){.worker = "w-1", .slots = 2, .gpus = gpus, .ngpus = 2};
    json_t *j = msg_encode(&m);
    assert_non_null(j);
    assert_same_text(json_pack("[{s:I, s:s}, {s:I, s:s}]", "index", (json_int_t)0, "model",
                               "NVIDIA A100-SXM4-80GB", "index", (json_int_t)3, "model", ""),
                     json_incref(json_object_get(j, "gpus")));
    assert_int_equal(msg_decode(PROTO_HELLO, j, &back, err, sizeof(err)), 0);
    assert_int_equal(back.u.hello.ngpus, 2);
    assert_int_equal(back.u.hello.gpus[1].index, 3);
    assert_string_equal(back.u.hello.gpus[0].model, "NVIDIA A100-SXM4-80GB");
    msg_clear(&back);

    /* a repeated index, one out of range, a model that is not a string */
    json_object_set_new(j, "gpus", json_pack("[{s:i}, {s:i}]", "index", 1, "index", 1));
    assert_int_equal(msg_decode(PROTO_HELLO, j, &back, err, sizeof(err)), CAIRN_EPROTO);
    assert_string_equal(err, "field 'gpus[1].index' repeats GPU 1");
    assert_true(all_zero(&back, sizeof(back)));
    json_object_set_new(j, "gpus", json_pack("[{s:i}]", "index", 255));
    assert_int_equal(msg_decode(PROTO_HELLO, j, &back, err, sizeof(err)), CAIRN_EPROTO);
    assert_non_null(strstr(err, "gpus[0].index"));
    json_object_set_new(j, "gpus", json_pack("[{s:i, s:i}]", "index", 0, "model", 7));
    assert_int_equal(msg_decode(PROTO_HELLO, j, &back, err, sizeof(err)), CAIRN_EPROTO);
    assert_non_null(strstr(err, "gpus[0].model"));
    /* a worker without GPUs sends none, as before */
    json_object_del(j, "gpus");
    assert_int_equal(msg_decode(PROTO_HELLO, j, &back, err, sizeof(err)), 0);
    assert_int_equal(back.u.hello.ngpus, 0);
    m.u.hello.ngpus = 0;
    json_t *plain = msg_encode(&m);
    assert_null(json_object_get(plain, "gpus"));
    json_decref(plain);
    msg_clear(&back);
    json_decref(j);

    /* the lease: gpus only when there are some */
    json_t *l = sample_lease(4);
    struct msg_lease lease;
    assert_int_equal(msg_lease_decode(l, NULL, &lease, err, sizeof(err)), 0);
    assert_int_equal(lease.ngpus, 0);
    json_t *enc = msg_lease_encode(&lease);
    assert_null(json_object_get(enc, "gpus"));
    json_decref(enc);
    msg_lease_clear(&lease);
    json_object_set_new(l, "gpus", json_pack("[i, i]", 2, 0));
    assert_int_equal(msg_lease_decode(l, NULL, &lease, err, sizeof(err)), 0);
    assert_int_equal(lease.ngpus, 2);
    assert_int_equal(lease.gpus[0], 2);
    assert_int_equal(lease.gpus[1], 0);
    enc = msg_lease_encode(&lease);
    assert_same_text(json_pack("[i, i]", 2, 0), json_incref(json_object_get(enc, "gpus")));
    json_decref(enc);
    msg_lease_clear(&lease);
    json_object_set_new(l, "gpus", json_pack("[i]", -1));
    assert_int_equal(msg_lease_decode(l, "leases[0]", &lease, err, sizeof(err)), CAIRN_EPROTO);
    assert_non_null(strstr(err, "leases[0].gpus[0]"));
    json_decref(l);
}

static void
test_frames(void **state)
{
    (void)state;
    struct proto_key k, other;
    proto_key_from_string(&k, TOKEN);
    proto_key_from_string(&other, "fedcba9876543210fedcba9876543210");
    for (size_t i = 0; i < NTYPES; i++) {
        json_t *body = sample_body(all_types[i]);
        struct msg m, back;
        unsigned char *f;
        size_t n;
        char err[256];
        decode_ok(all_types[i], body, &m);
        assert_int_equal(msg_pack(&k, &m, &f, &n), 0);
        assert_int_equal(msg_unpack(&k, f, n, &back, err, sizeof(err)), 0);
        assert_int_equal(back.type, all_types[i]);
        json_t *again = msg_encode(&back);
        assert_json_equal(body, again);
        json_decref(again);
        msg_clear(&back);
        assert_int_equal(msg_unpack(&other, f, n, &back, err, sizeof(err)), CAIRN_EAUTH);
        assert_true(all_zero(&back, sizeof(back)));
        assert_int_equal(msg_unpack(NULL, f, n, &back, err, sizeof(err)), CAIRN_EAUTH);
        free(f);
        msg_clear(&m);
        json_decref(body);
    }
    /* a frame whose JSON is fine but whose body is not a valid message */
    json_t *b = json_pack("{s:s}", "worker", "w");
    unsigned char *f;
    size_t n;
    char err[256];
    struct msg back;
    assert_int_equal(proto_encode(NULL, PROTO_POLL, b, &f, &n), 0);
    assert_int_equal(msg_unpack(NULL, f, n, &back, err, sizeof(err)), CAIRN_EPROTO);
    assert_string_equal(err, "missing field 'free'");
    free(f);
    json_decref(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_every_type),
        cmocka_unit_test(test_lease_every_field),
        cmocka_unit_test(test_batch_with_bad_item),
        cmocka_unit_test(test_work_with_bad_leases),
        cmocka_unit_test(test_old_peer_json),
        cmocka_unit_test(test_every_field),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_unknown_members_ignored),
        cmocka_unit_test(test_log_data_bytes),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_encode_refuses_malformed),
        cmocka_unit_test(test_decode_refuses),
        cmocka_unit_test(test_inputs_mounts_stderr),
        cmocka_unit_test(test_frames),
        cmocka_unit_test(test_gpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
