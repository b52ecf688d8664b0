/* Tests for common/schema.c: every record type round-trips, a record of a
 * version this build does not read is refused with a clear message, a
 * missing or mistyped required field is refused by name, and keys are built
 * and split in one way only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four above first */
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "schema.h"
#include "util.h"

static json_t *
parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j)
        fail_msg("bad test JSON: %s", e.text);
    return j;
}

static void
test_keys(void **state)
{
    (void)state;
    char *k = schema_key_run("iris", "manual__2026");
    assert_string_equal(k, "iris\x1fmanual__2026");
    char *p = schema_prefix(k);
    assert_string_equal(p, "iris\x1fmanual__2026\x1f");
    char *ti = schema_key_below(k, "train");
    char *ti2 = schema_key_ti("iris", "manual__2026", "train");
    assert_string_equal(ti, ti2);
    char *at = schema_key_attempt("iris", "manual__2026", "train", 3);
    assert_string_equal(at, "iris\x1fmanual__2026\x1ftrain\x1f"
                            "000003");
    char *ar = schema_key_artifact("iris", "r", "train", "model.pkl");
    char *old = schema_key_artifact_old(ar, 2);
    assert_string_equal(old, "iris\x1fr\x1ftrain\x1fmodel.pkl\x1f"
                             "attempt-000002");
    char *ix = schema_key_artidx("abcd", ar);
    assert_string_equal(ix, "abcd\x1firis\x1fr\x1ftrain\x1fmodel.pkl");
    char *c = schema_key_cache("00ff");
    assert_string_equal(c, "cache/00ff");
    char *bd = schema_key_backfill_dates("bf-3");
    assert_string_equal(bd, "bf-3\x1f"
                            "dates");

    /* split and prefix lengths */
    char *buf = NULL;
    const char *parts[4];
    size_t n = schema_key_split(ar, &buf, parts, 4);
    assert_int_equal(n, 4);
    assert_string_equal(parts[0], "iris");
    assert_string_equal(parts[1], "r");
    assert_string_equal(parts[2], "train");
    assert_string_equal(parts[3], "model.pkl");
    free(buf);
    n = schema_key_split(old, &buf, parts, 4);
    assert_int_equal(n, 4);
    assert_string_equal(parts[3], "model.pkl\x1f"
                                  "attempt-000002"); /* the last part keeps the rest */
    free(buf);
    n = schema_key_split("single", &buf, parts, 4);
    assert_int_equal(n, 1);
    free(buf);
    assert_int_equal(schema_key_prefix_len(ar, 2), strlen("iris\x1fr"));
    assert_int_equal(schema_key_prefix_len(ar, 1), strlen("iris"));
    assert_int_equal(schema_key_prefix_len("iris\x1fr", 2), strlen("iris\x1fr"));
    assert_int_equal(schema_key_prefix_len("iris", 2), 0);
    free(k);
    free(p);
    free(ti);
    free(ti2);
    free(at);
    free(ar);
    free(old);
    free(ix);
    free(c);
    free(bd);
}

static void
test_times(void **state)
{
    (void)state;
    json_t *t = schema_time_json(1767582000125); /* 2026-01-05T03:00:00.125Z */
    assert_string_equal(json_string_value(t), "2026-01-05T03:00:00.125Z");
    assert_int_equal(schema_time_parse(t), 1767582000125);
    json_decref(t);
    t = schema_time_json(0);
    assert_true(json_is_null(t));
    assert_int_equal(schema_time_parse(t), 0);
    json_decref(t);
    json_t *s = json_string("2026-01-05T03:00:00Z");
    assert_int_equal(schema_time_parse(s), 1767582000000);
    json_decref(s);
    s = json_string("not a time");
    assert_int_equal(schema_time_parse(s), 0);
    json_decref(s);
}

static void
test_run_roundtrip(void **state)
{
    (void)state;
    json_t *params = parse("{\"lr\": \"0.1\"}");
    struct schema_run r = {
        .dag = "iris",
        .run_id = "scheduled__2026-01-05T03:00:00Z",
        .state = "running",
        .run_type = "scheduled",
        .logical_date = 1767582000,
        .interval_end = 1767668400,
        .created_at = 1767582001001,
        .started_at = 1767582001002,
        .ended_at = 0,
        .dag_version = "0123456789abcdef",
        .params = params,
        .seq = 42,
        .no_cache = true,
        .backfill_id = "bf-1",
    };
    json_t *j = schema_run_encode(&r);
    /* what a store read gives back: through text, with the version */
    json_object_set_new(j, "v", json_integer(SCHEMA_RECORD_VERSION));
    char *text = json_dumps(j, 0);
    json_t *back = parse(text);
    struct schema_run d;
    char err[256];
    assert_int_equal(schema_run_decode(back, &d, err, sizeof(err)), 0);
    assert_string_equal(d.dag, r.dag);
    assert_string_equal(d.run_id, r.run_id);
    assert_string_equal(d.state, r.state);
    assert_string_equal(d.run_type, r.run_type);
    assert_int_equal(d.logical_date, r.logical_date);
    assert_int_equal(d.interval_end, r.interval_end);
    assert_int_equal(d.created_at, r.created_at);
    assert_int_equal(d.started_at, r.started_at);
    assert_int_equal(d.ended_at, 0);
    assert_string_equal(d.dag_version, r.dag_version);
    assert_true(json_equal(d.params, params));
    assert_int_equal(d.seq, 42);
    assert_true(d.no_cache);
    assert_string_equal(d.backfill_id, "bf-1");
    /* fields the API shows keep their names */
    assert_string_equal(json_string_value(json_object_get(back, "data_interval_start")),
                        "2026-01-05T03:00:00Z");
    free(text);
    json_decref(back);
    json_decref(j);
    json_decref(params);
}

static void
test_event_records(void **state)
{
    (void)state;
    /* a run an event made keeps what caused it */
    json_t *ev = parse("{\"kind\": \"on_file\", \"source\": \"/in\", \"path\": \"/in/a.csv\"}");
    struct schema_run r = {.dag = "d", .run_id = "event__x", .state = "queued",
                           .run_type = "event", .dag_version = "v", .event = ev};
    json_t *j = schema_run_encode(&r);
    struct schema_run d;
    char err[256];
    assert_int_equal(schema_run_decode(j, &d, err, sizeof(err)), 0);
    assert_string_equal(d.run_type, "event");
    assert_true(json_equal(d.event, ev));
    json_decref(j);
    /* a run without one has none */
    r.event = NULL;
    j = schema_run_encode(&r);
    assert_null(json_object_get(j, "event"));
    assert_int_equal(schema_run_decode(j, &d, err, sizeof(err)), 0);
    assert_null(d.event);
    json_decref(j);
    json_decref(ev);

    char *k = schema_key_event("d", "file/0.0//in/a.csv");
    assert_string_equal(k, "event/d" SCHEMA_SEP "file/0.0//in/a.csv");
    free(k);
    struct schema_event_seen e = {.digest = "ab", .run_id = "event__x", .at = 1767582001001,
                                  .size = 12, .mtime_ns = 1767582001001000123},
                             o;
    j = schema_event_seen_encode(&e);
    assert_int_equal(schema_event_seen_decode(j, &o, err, sizeof(err)), 0);
    assert_string_equal(o.digest, "ab");
    assert_string_equal(o.run_id, "event__x");
    assert_int_equal(o.at, e.at);
    assert_int_equal(o.size, 12);
    assert_int_equal(o.mtime_ns, e.mtime_ns);
    json_decref(j);
    /* a release's record has neither */
    e = (struct schema_event_seen){.run_id = "event__y", .size = -1};
    j = schema_event_seen_encode(&e);
    assert_null(json_object_get(j, "size"));
    assert_int_equal(schema_event_seen_decode(j, &o, err, sizeof(err)), 0);
    assert_int_equal(o.size, -1);
    assert_null(o.digest);
    json_decref(j);
    j = parse("{\"v\": 99}");
    assert_int_equal(schema_event_seen_decode(j, &o, err, sizeof(err)), CAIRN_EVERSION);
    json_decref(j);
}

static void
test_ti_roundtrip(void **state)
{
    (void)state;
    json_t *outs = parse("[{\"name\": \"m.pkl\", \"sha256\": \"" /* 64 hex */
                         "0000000000000000000000000000000000000000000000000000000000000001"
                         "\", \"size\": 3, \"uri\": \"file:///x\"}]");
    json_t *mets = parse("{\"accuracy\": 0.97, \"n\": 3}");
    json_t *cf = parse("{\"dag\": \"d\", \"run_id\": \"r0\", \"task\": \"t\", \"attempt\": 1}");
    json_t *pub = parse("{\"path\": \"/m/r\", \"latest\": \"/m/latest\", \"files\": []}");
    json_t *excl = parse("[\"w3\", \"w5\"]");
    struct schema_ti t = {
        .task = "train",       .state = "up_for_retry", .attempts = 3,       .max_attempts = 5,
        .lost = 1,             .attempt_base = 1,       .lease_id = 77,      .worker = "w1",
        .queued_at = 1000,     .started_at = 2000,      .ended_at = 3000,    .next_try_at = 4000,
        .exit_code = 2,        .signal = 9,             .oom_killed = true,  .timed_out = true,
        .error = "exit code 2", .log_size = 1234,       .outputs = outs,     .metrics = mets,
        .publishing = true,    .cached = true,          .cached_from = cf,   .no_cache = true,
        .cache_key = "ab",     .published = pub,        .excluded = excl,
    };
    json_t *j = schema_ti_encode(&t);
    char *text = json_dumps(j, 0);
    json_t *back = parse(text);
    struct schema_ti d;
    char err[256];
    assert_int_equal(schema_ti_decode(back, &d, err, sizeof(err)), 0);
    assert_string_equal(d.task, "train");
    assert_string_equal(d.state, "up_for_retry");
    assert_int_equal(d.attempts, 3);
    assert_int_equal(d.max_attempts, 5);
    assert_int_equal(d.lost, 1);
    assert_int_equal(d.attempt_base, 1);
    assert_int_equal(d.lease_id, 77);
    assert_string_equal(d.worker, "w1");
    assert_int_equal(d.queued_at, 1000);
    assert_int_equal(d.started_at, 2000);
    assert_int_equal(d.ended_at, 3000);
    assert_int_equal(d.next_try_at, 4000);
    assert_int_equal(d.exit_code, 2);
    assert_int_equal(d.signal, 9);
    assert_true(d.oom_killed);
    assert_true(d.timed_out);
    assert_string_equal(d.error, "exit code 2");
    assert_int_equal(d.log_size, 1234);
    assert_true(json_equal(d.outputs, outs));
    assert_true(json_equal(d.metrics, mets));
    assert_true(d.publishing);
    assert_true(d.cached);
    assert_true(json_equal(d.cached_from, cf));
    assert_true(d.no_cache);
    assert_string_equal(d.cache_key, "ab");
    assert_true(json_equal(d.published, pub));
    assert_true(json_equal(d.excluded, excl));
    free(text);
    json_decref(back);
    json_decref(j);

    /* the defaults: a fresh task instance */
    struct schema_ti z = {.task = "t", .state = "pending", .exit_code = -1};
    j = schema_ti_encode(&z);
    assert_int_equal(schema_ti_decode(j, &d, err, sizeof(err)), 0);
    assert_int_equal(d.exit_code, -1);
    assert_null(d.worker);
    assert_null(d.error);
    assert_null(d.cache_key);
    assert_null(d.cached_from);
    assert_null(d.published);
    assert_int_equal(json_array_size(d.outputs), 0); /* written as [] */
    assert_false(d.publishing);
    assert_null(json_object_get(j, "publishing")); /* not written when false */
    assert_null(d.excluded);
    assert_null(json_object_get(j, "excluded")); /* nor when none is excluded */
    json_decref(j);
    /* excluded must list names */
    j = parse("{\"task\": \"t\", \"state\": \"queued\", \"excluded\": [\"w1\", 2]}");
    assert_int_equal(schema_ti_decode(j, &d, err, sizeof(err)), CAIRN_EPROTO);
    assert_non_null(strstr(err, "field 'excluded' must be an array of worker names"));
    json_decref(j);
    json_decref(excl);
    json_decref(outs);
    json_decref(mets);
    json_decref(cf);
    json_decref(pub);
}

static void
test_attempt_artifact_dag_roundtrip(void **state)
{
    (void)state;
    char err[256];
    json_t *argv = parse("[\"python3\", \"train.py\"]");
    json_t *env = parse("[\"A=1\"]");
    json_t *ins = parse("[]");
    struct schema_attempt a = {
        .attempt = 2,      .lease_id = 9,       .worker = "w",    .state = "success",
        .started_at = 10,  .ended_at = 20,      .exit_code = 0,   .signal = 0,
        .error = NULL,     .log_size = 5,       .duration_ms = 10, .image = "host",
        .argv = argv,      .env = env,          .inputs = ins,
    };
    json_t *j = schema_attempt_encode(&a);
    struct schema_attempt ad;
    assert_int_equal(schema_attempt_decode(j, &ad, err, sizeof(err)), 0);
    assert_int_equal(ad.attempt, 2);
    assert_string_equal(ad.state, "success");
    assert_int_equal(ad.duration_ms, 10);
    assert_string_equal(ad.image, "host");
    assert_true(json_equal(ad.argv, argv));
    assert_true(json_equal(ad.env, env));
    json_decref(j);
    /* without provenance (an attempt that never got its lease built) */
    a.image = NULL;
    j = schema_attempt_encode(&a);
    assert_null(json_object_get(j, "argv"));
    assert_int_equal(schema_attempt_decode(j, &ad, err, sizeof(err)), 0);
    assert_null(ad.image);
    json_decref(j);

    const char *sha = "00000000000000000000000000000000000000000000000000000000000000aa";
    struct schema_artifact p = {.name = "m.pkl", .sha256 = sha, .size = 7, .uri = "file:///s",
                                .dag = "d", .run_id = "r", .task = "t", .attempt = 2,
                                .created_at = 1000, .superseded = true};
    j = schema_artifact_encode(&p);
    struct schema_artifact pd;
    assert_int_equal(schema_artifact_decode(j, &pd, err, sizeof(err)), 0);
    assert_string_equal(pd.sha256, sha);
    assert_int_equal(pd.size, 7);
    assert_int_equal(pd.attempt, 2);
    assert_int_equal(pd.created_at, 1000);
    assert_true(pd.superseded);
    assert_null(pd.cached_from);
    json_decref(j);

    struct schema_artidx x = {"d", "r", "t", "m.pkl", 2, 1000};
    j = schema_artidx_encode(&x);
    struct schema_artidx xd;
    assert_int_equal(schema_artidx_decode(j, &xd, err, sizeof(err)), 0);
    assert_string_equal(xd.name, "m.pkl");
    assert_int_equal(xd.attempt, 2);
    json_decref(j);

    struct schema_dag g = {"iris", "/d/iris.yaml", "v1", true, true, 1767582000};
    j = schema_dag_encode(&g);
    struct schema_dag gd;
    assert_int_equal(schema_dag_decode(j, &gd, err, sizeof(err)), 0);
    assert_string_equal(gd.file, "/d/iris.yaml");
    assert_true(gd.paused);
    assert_true(gd.has_cursor);
    assert_int_equal(gd.cursor, 1767582000);
    json_decref(j);
    g.has_cursor = false;
    j = schema_dag_encode(&g);
    assert_int_equal(schema_dag_decode(j, &gd, err, sizeof(err)), 0);
    assert_false(gd.has_cursor);
    json_decref(j);
    json_decref(argv);
    json_decref(env);
    json_decref(ins);
}

static void
test_versions(void **state)
{
    (void)state;
    char err[256];
    struct schema_run r;
    json_t *j = parse("{\"v\": 99, \"dag\": \"d\", \"run_id\": \"r\", \"state\": \"queued\","
                      " \"dag_version\": \"x\"}");
    assert_int_equal(schema_run_decode(j, &r, err, sizeof(err)), CAIRN_EVERSION);
    assert_non_null(strstr(err, "run record has record version 99"));
    assert_non_null(strstr(err, "newer Cairn"));
    json_decref(j);
    j = parse("{\"v\": \"one\", \"task\": \"t\", \"state\": \"queued\"}");
    struct schema_ti t;
    assert_int_equal(schema_ti_decode(j, &t, err, sizeof(err)), CAIRN_EVERSION);
    assert_non_null(strstr(err, "not a number"));
    json_decref(j);
    j = parse("{\"v\": 0, \"name\": \"d\"}");
    struct schema_dag g;
    assert_int_equal(schema_dag_decode(j, &g, err, sizeof(err)), CAIRN_EVERSION);
    json_decref(j);
    /* no "v": a record from before versions, read as version 1 */
    j = parse("{\"name\": \"d\"}");
    assert_int_equal(schema_dag_decode(j, &g, err, sizeof(err)), 0);
    json_decref(j);
    j = parse("[1]");
    assert_int_equal(schema_dag_decode(j, &g, err, sizeof(err)), CAIRN_EPROTO);
    assert_non_null(strstr(err, "not a JSON object"));
    json_decref(j);
}

/* Each required field, missing and mistyped, is refused with its name; the
 * output struct is left untouched. */
static void
test_required_fields(void **state)
{
    (void)state;
    static const struct {
        const char *what, *base, *field;
    } rows[] = {
        {"run", "{\"dag\": \"d\", \"run_id\": \"r\", \"state\": \"queued\", \"dag_version\": \"x\"}",
         "dag"},
        {"run", "{\"dag\": \"d\", \"run_id\": \"r\", \"state\": \"queued\", \"dag_version\": \"x\"}",
         "run_id"},
        {"run", "{\"dag\": \"d\", \"run_id\": \"r\", \"state\": \"queued\", \"dag_version\": \"x\"}",
         "state"},
        {"run", "{\"dag\": \"d\", \"run_id\": \"r\", \"state\": \"queued\", \"dag_version\": \"x\"}",
         "dag_version"},
        {"ti", "{\"task\": \"t\", \"state\": \"queued\"}", "task"},
        {"ti", "{\"task\": \"t\", \"state\": \"queued\"}", "state"},
        {"attempt", "{\"attempt\": 1, \"state\": \"failed\"}", "attempt"},
        {"attempt", "{\"attempt\": 1, \"state\": \"failed\"}", "state"},
        {"artifact", "{\"name\": \"m\", \"sha256\": \"ab\"}", "name"},
        {"artifact", "{\"name\": \"m\", \"sha256\": \"ab\"}", "sha256"},
        {"dag", "{\"name\": \"d\"}", "name"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        for (int mistyped = 0; mistyped < 2; mistyped++) {
            json_t *j = parse(rows[i].base);
            if (mistyped)
                json_object_set_new(j, rows[i].field, json_pack("[]"));
            else
                json_object_del(j, rows[i].field);
            char err[256] = "";
            int rc;
            union {
                struct schema_run r;
                struct schema_ti t;
                struct schema_attempt a;
                struct schema_artifact p;
                struct schema_dag g;
            } out;
            memset(&out, 0x5a, sizeof(out));
            unsigned char before[sizeof(out)];
            memcpy(before, &out, sizeof(out));
            const char *w = rows[i].what;
            if (!strcmp(w, "run"))
                rc = schema_run_decode(j, &out.r, err, sizeof(err));
            else if (!strcmp(w, "ti"))
                rc = schema_ti_decode(j, &out.t, err, sizeof(err));
            else if (!strcmp(w, "attempt"))
                rc = schema_attempt_decode(j, &out.a, err, sizeof(err));
            else if (!strcmp(w, "artifact"))
                rc = schema_artifact_decode(j, &out.p, err, sizeof(err));
            else
                rc = schema_dag_decode(j, &out.g, err, sizeof(err));
            assert_int_equal(rc, CAIRN_EPROTO);
            char want[64];
            snprintf(want, sizeof(want), "field '%s'", rows[i].field);
            if (!strstr(err, want))
                fail_msg("%s without %s (%s): message '%s' does not name it", w, rows[i].field,
                         mistyped ? "mistyped" : "missing", err);
            assert_memory_equal(&out, before, sizeof(out));
            json_decref(j);
        }
    }
    /* a mistyped optional field is refused too, by name */
    json_t *j = parse("{\"task\": \"t\", \"state\": \"queued\", \"attempts\": \"3\"}");
    struct schema_ti t;
    char err[256];
    assert_int_equal(schema_ti_decode(j, &t, err, sizeof(err)), CAIRN_EPROTO);
    assert_non_null(strstr(err, "field 'attempts' must be an integer"));
    json_decref(j);
}

/* A stage change of the models folder: its key orders a model's changes,
 * and the record comes back whole; a change without `by` is refused. */
static void
test_stage_roundtrip(void **state)
{
    (void)state;
    char *k1 = schema_key_stage("iris", "deploy", 9), *k2 = schema_key_stage("iris", "deploy", 10);
    char *pre = schema_key_stage_prefix("iris", "deploy");
    assert_true(strcmp(k1, k2) < 0);
    assert_memory_equal(k1, pre, strlen(pre));
    assert_string_equal(k1, "stage/iris" SCHEMA_SEP "deploy" SCHEMA_SEP "000000000009");
    free(k1);
    free(k2);
    free(pre);
    struct schema_stage x = {"iris", "deploy", "production", "promote", "r2-a1", NULL, "ci",
                             1767582000123, 3};
    json_t *j = schema_stage_encode(&x);
    struct schema_stage d;
    char err[256];
    assert_int_equal(schema_stage_decode(j, &d, err, sizeof(err)), 0);
    assert_string_equal(d.release, "r2-a1");
    assert_null(d.previous);
    assert_string_equal(d.by, "ci");
    assert_int_equal(d.at, 1767582000123);
    assert_int_equal(d.seq, 3);
    json_object_del(j, "by");
    assert_int_equal(schema_stage_decode(j, &d, err, sizeof(err)), CAIRN_EPROTO);
    assert_non_null(strstr(err, "field 'by' is missing"));
    json_decref(j);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_run_roundtrip),
        cmocka_unit_test(test_event_records),
        cmocka_unit_test(test_ti_roundtrip),
        cmocka_unit_test(test_attempt_artifact_dag_roundtrip),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_required_fields),
        cmocka_unit_test(test_stage_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
