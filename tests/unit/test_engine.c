/* The scheduling engine in one process: a real libuv loop, a real LMDB in a
 * temporary folder, and a fake worker link (the engine's answers are
 * captured instead of sent over nng). Runs DAGs to the end without daemons
 * or sleeps: the loop is turned with UV_RUN_NOWAIT, so every answer comes
 * after the commit that made it durable, as with real workers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four above first */
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "engine.h"
#include "err.h"
#include "fs.h"
#include "lease.h"
#include "log.h"
#include "proto.h"
#include "schedmetrics.h"
#include "schema.h"
#include "store.h"
#include "util.h"
#include "wire.h"

/* ---- the fake link: every answer is kept, in order ---- */

struct answer {
    int type;
    json_t *body;
};

static struct answer answers[4096];
static size_t nanswers;

static void
fake_reply(struct wire_req *req, int type, json_t *body)
{
    assert_true(nanswers < sizeof(answers) / sizeof(answers[0]));
    answers[nanswers].type = type;
    answers[nanswers].body = json_deep_copy(body);
    nanswers++;
    json_decref(req->body);
    free(req);
}

static void
fake_drop(struct wire_req *req)
{
    json_decref(req->body);
    free(req);
}

static void
answers_clear(void)
{
    for (size_t i = 0; i < nanswers; i++)
        json_decref(answers[i].body);
    nanswers = 0;
}

struct fx {
    char dir[64];
    char *dags, *data;
    uv_loop_t loop;
    struct sched *s;
};

static void
put_dag(struct fx *f, const char *name, const char *yaml)
{
    char *path = xasprintf("%s/%s.yaml", f->dags, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(yaml, fp);
    fclose(fp);
    free(path);
}

static void
start(struct fx *f, int64_t lease_ttl_ms, int max_lost)
{
    struct sched_config cfg = {0};
    cfg.dags_dir = f->dags;
    cfg.data_dir = f->data;
    cfg.lease_ttl_ms = lease_ttl_ms;
    cfg.max_lost = max_lost;
    cfg.link.reply = fake_reply;
    cfg.link.drop = fake_drop;
    char err[512];
    int rc = sched_new(&f->s, &f->loop, &cfg, err, sizeof(err));
    if (rc)
        fail_msg("sched_new: %s", err);
}

static void
stop_done(void *ud)
{
    *(bool *)ud = true;
}

static void
stop(struct fx *f)
{
    if (!f->s)
        return;
    bool done = false;
    sched_stop(f->s, stop_done, &done);
    for (int i = 0; i < 100 && !done; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_true(done);
    sched_free(f->s);
    f->s = NULL;
}

static int
setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/cairn-engine-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    f->dags = xasprintf("%s/dags", f->dir);
    f->data = xasprintf("%s/data", f->dir);
    fs_mkdirs(f->dags);
    uv_loop_init(&f->loop);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    stop(f);
    answers_clear();
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    fs_rmtree(f->dir);
    free(f->dags);
    free(f->data);
    free(f);
    return 0;
}

/* Turn the loop: callbacks run, then the commit, then the answers go. */
static void
spin(struct fx *f)
{
    for (int i = 0; i < 3; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void
send_req(struct fx *f, int type, json_t *body)
{
    struct wire_req *req = xcalloc(1, sizeof(*req));
    req->type = type;
    req->body = body;
    req->pipe = 1;
    sched_handle_request(f->s, req);
}

/* Send and turn the loop until the answer came; returns it (borrowed until
 * answers_clear). */
static struct answer *
call(struct fx *f, int type, json_t *body)
{
    size_t before = nanswers;
    send_req(f, type, body);
    for (int i = 0; i < 10 && nanswers == before; i++)
        spin(f);
    assert_int_equal(nanswers, before + 1);
    return &answers[before];
}

static void
hello(struct fx *f, const char *worker, int slots)
{
    struct answer *a = call(f, PROTO_HELLO, json_pack("{s:s, s:i, s:{}}", "worker", worker,
                                                      "slots", slots, "labels"));
    assert_int_equal(a->type, PROTO_WELCOME);
}

/* POLL with no wait: the leases handed out (a new reference). */
static json_t *
poll_leases(struct fx *f, const char *worker, int free_slots)
{
    struct answer *a = call(f, PROTO_POLL, json_pack("{s:s, s:i, s:[], s:i}", "worker", worker,
                                                     "free", free_slots, "leases", "wait_ms", 0));
    assert_int_equal(a->type, PROTO_WORK);
    return json_incref(json_object_get(a->body, "leases"));
}

static void
report(struct fx *f, const char *worker, json_t *lease, int exit_code)
{
    json_int_t id = json_integer_value(json_object_get(lease, "lease_id"));
    struct answer *a = call(f, PROTO_STARTED, json_pack("{s:s, s:I}", "worker", worker,
                                                        "lease_id", id));
    assert_true(json_is_true(json_object_get(a->body, "ok")));
    a = call(f, PROTO_RESULT, json_pack("{s:s, s:I, s:i, s:[], s:{}}", "worker", worker,
                                        "lease_id", id, "exit_code", exit_code, "outputs",
                                        "metrics"));
    assert_int_equal(a->type, PROTO_ACK);
    assert_true(json_is_true(json_object_get(a->body, "ok")));
}

/* A stored record (a new reference), or NULL. */
static json_t *
record(struct fx *f, enum store_table tb, const char *key)
{
    struct store_txn *t = NULL;
    void *j = NULL;
    assert_int_equal(store_txn_begin(sched_store(f->s), false, &t), 0);
    if (store_get(t, tb, key, &j) != 0)
        j = NULL;
    store_txn_abort(t);
    return j;
}

static char *
stored_state(struct fx *f, const char *dag, const char *run_id, const char *task)
{
    char *key = task ? schema_key_ti(dag, run_id, task) : schema_key_run(dag, run_id);
    json_t *j = record(f, task ? STORE_TIS : STORE_RUNS, key);
    free(key);
    char *st = xstrdup(j ? json_string_value(json_object_get(j, "state")) : "(none)");
    json_decref(j);
    return st;
}

/* A string field of a stored task instance record (malloc'd; "" if none). */
static char *
stored_field(struct fx *f, const char *dag, const char *run_id, const char *task,
             const char *field)
{
    char *key = schema_key_ti(dag, run_id, task);
    json_t *j = record(f, STORE_TIS, key);
    free(key);
    char *v = xstrdup(j && json_string_value(json_object_get(j, field))
                          ? json_string_value(json_object_get(j, field))
                          : "");
    json_decref(j);
    return v;
}

static void
assert_state(struct fx *f, const char *dag, const char *run_id, const char *task,
             const char *want)
{
    char *st = stored_state(f, dag, run_id, task);
    if (strcmp(st, want) != 0)
        fail_msg("%s/%s/%s is %s, want %s", dag, run_id, task ? task : "(run)", st, want);
    free(st);
}

static char *
trigger(struct fx *f, const char *dag)
{
    struct sched_run *r = NULL;
    char err[256];
    int rc = sched_trigger(f->s, dag, 0, false, NULL, false, &r, err, sizeof(err));
    if (rc)
        fail_msg("trigger %s: %s", dag, err);
    char *id = xstrdup(r->run_id);
    spin(f);
    return id;
}

static const char *
lease_task(json_t *lease)
{
    return json_string_value(json_object_get(lease, "task"));
}

/* A diamond runs to the end; each task becomes ready only when all of its
 * upstreams succeeded (readiness is counted). */
static void
test_diamond(void **state)
{
    struct fx *f = *state;
    put_dag(f, "d", "dag: d\ntasks:\n  a: {command: [a]}\n  b: {command: [b], needs: [a]}\n"
                    "  c: {command: [c], needs: [a]}\n  d: {command: [d], needs: [b, c]}\n");
    start(f, 0, 0);
    hello(f, "w", 8);
    char *rid = trigger(f, "d");
    json_t *l = poll_leases(f, "w", 8);
    assert_int_equal(json_array_size(l), 1);
    assert_string_equal(lease_task(json_array_get(l, 0)), "a");
    /* the lease is typed: every field a worker needs is there */
    json_t *a0 = json_array_get(l, 0);
    static const char *const fields[] = {"lease_id", "dag",     "run_id",  "task",   "attempt",
                                         "logical_date", "argv", "env",    "image",  "timeout_ms",
                                         "cpus",     "memory",  "pids",    "network", "inputs",
                                         "outputs"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (!json_object_get(a0, fields[i]))
            fail_msg("lease has no '%s'", fields[i]);
    assert_state(f, "d", rid, "a", "leased");
    report(f, "w", a0, 0);
    json_decref(l);
    l = poll_leases(f, "w", 8);
    assert_int_equal(json_array_size(l), 2); /* b and c */
    report(f, "w", json_array_get(l, 0), 0);
    json_t *none = poll_leases(f, "w", 8);
    assert_int_equal(json_array_size(none), 0); /* d still waits for one upstream */
    json_decref(none);
    /* a task instance that has not run has no record: it is what its DAG
     * says until then (and recovery derives it) */
    char *dkey = schema_key_ti("d", rid, "d");
    assert_null(record(f, STORE_TIS, dkey));
    free(dkey);
    struct sched_run *mr = sched_find_run(f->s, "d", rid);
    assert_non_null(mr);
    assert_int_equal(mr->tis[3].state, TI_PENDING);
    report(f, "w", json_array_get(l, 1), 0);
    json_decref(l);
    l = poll_leases(f, "w", 8);
    assert_int_equal(json_array_size(l), 1);
    assert_string_equal(lease_task(json_array_get(l, 0)), "d");
    report(f, "w", json_array_get(l, 0), 0);
    json_decref(l);
    assert_state(f, "d", rid, NULL, "success");
    assert_state(f, "d", rid, "d", "success");
    free(rid);
}

/* A failure with retries: up_for_retry, then the retry succeeds; a stale
 * report for the first lease is refused (fencing). */
static void
test_retry_and_fencing(void **state)
{
    struct fx *f = *state;
    put_dag(f, "r", "dag: r\ntasks:\n  t:\n    command: [t]\n    retries: 1\n"
                    "    retry_delay: 0s\n");
    start(f, 0, 0);
    hello(f, "w", 1);
    char *rid = trigger(f, "r");
    json_t *l = poll_leases(f, "w", 1);
    json_t *first = json_incref(json_array_get(l, 0));
    json_decref(l);
    report(f, "w", first, 3);
    assert_state(f, "r", rid, "t", "up_for_retry");
    /* the retry becomes ready on the next tick (its delay is 0) */
    /* (up to 10 s of ticks: a loaded machine may run them late) */
    for (int64_t until = clock_mono_ms() + 10000; clock_mono_ms() < until;) {
        uv_run(&f->loop, UV_RUN_ONCE);
        char *st = stored_state(f, "r", rid, "t");
        bool queued = !strcmp(st, "queued");
        free(st);
        if (queued)
            break;
    }
    l = poll_leases(f, "w", 1);
    assert_int_equal(json_array_size(l), 1);
    json_t *second = json_array_get(l, 0);
    assert_int_equal(json_integer_value(json_object_get(second, "attempt")), 2);
    /* the first lease's late result is refused */
    struct answer *a =
        call(f, PROTO_RESULT, json_pack("{s:s, s:I, s:i}", "worker", "w", "lease_id",
                                        json_integer_value(json_object_get(first, "lease_id")),
                                        "exit_code", 0));
    assert_false(json_is_true(json_object_get(a->body, "ok")));
    assert_string_equal(json_string_value(json_object_get(a->body, "reason")),
                        "lease is not current");
    report(f, "w", second, 0);
    assert_state(f, "r", rid, "t", "success");
    assert_state(f, "r", rid, NULL, "success");
    json_decref(first);
    json_decref(l);
    free(rid);
}

/* Lease expiry: a lost lease is queued again without using up a retry, up
 * to max_lost times; then the task fails. */
static void
test_lease_expiry(void **state)
{
    struct fx *f = *state;
    put_dag(f, "e", "dag: e\ntasks:\n  t: {command: [t], retries: 0}\n");
    start(f, 60000, 2);
    hello(f, "w", 1);
    char *rid = trigger(f, "e");
    for (int lost = 0; lost <= 2; lost++) {
        json_t *l = poll_leases(f, "w", 1);
        assert_int_equal(json_array_size(l), 1);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 0), "attempt")),
                         lost + 1);
        json_decref(l);
        /* the lease's time passes without a heartbeat */
        lease_check_expired(f->s, clock_mono_ms() + 60001);
        spin(f);
        char *key = schema_key_ti("e", rid, "t");
        json_t *j = record(f, STORE_TIS, key);
        free(key);
        if (lost < 2) {
            assert_string_equal(json_string_value(json_object_get(j, "state")), "queued");
            assert_int_equal(json_integer_value(json_object_get(j, "lost")), lost + 1);
            /* a loss is not the task's fault: its attempts grow with it */
            assert_int_equal(json_integer_value(json_object_get(j, "max_attempts")), lost + 2);
        } else {
            assert_string_equal(json_string_value(json_object_get(j, "state")), "failed");
            assert_non_null(strstr(json_string_value(json_object_get(j, "error")),
                                   "lease expired"));
        }
        json_decref(j);
    }
    assert_state(f, "e", rid, NULL, "failed");
    free(rid);
}

/* A failing chain of 10,000 tasks fails all the way down at once, without
 * recursion: the whole run goes on a thread with a 256 KiB stack, which a
 * call per link of the chain would overflow many times over. */
static void *
failing_chain_main(void *arg)
{
    struct fx *f = arg;
    struct sb y;
    sb_init(&y);
    sb_puts(&y, "dag: chain\nmax_active_tasks: 100000\ndefaults: {retries: 0}\ntasks:\n");
    enum { N = 10000 };
    for (int i = 0; i < N; i++) {
        sb_printf(&y, "  t%d:\n    command: [t]\n", i);
        if (i)
            sb_printf(&y, "    needs: [t%d]\n", i - 1);
    }
    put_dag(f, "chain", y.buf);
    sb_free(&y);
    start(f, 0, 0);
    hello(f, "w", 1);
    char *rid = trigger(f, "chain");
    json_t *l = poll_leases(f, "w", 1);
    assert_int_equal(json_array_size(l), 1);
    assert_string_equal(lease_task(json_array_get(l, 0)), "t0");
    report(f, "w", json_array_get(l, 0), 1);
    json_decref(l);
    assert_state(f, "chain", rid, "t0", "failed");
    assert_state(f, "chain", rid, "t1", "upstream_failed");
    assert_state(f, "chain", rid, "t9999", "upstream_failed");
    assert_state(f, "chain", rid, NULL, "failed");
    /* each names the task that failed, not its neighbour */
    char *e1 = stored_field(f, "chain", rid, "t1", "error");
    char *e2 = stored_field(f, "chain", rid, "t9999", "error");
    assert_string_equal(e1, "upstream 't0' failed");
    assert_string_equal(e2, "upstream 't0' failed");
    free(e1);
    free(e2);
    free(rid);
    return NULL;
}

static void
test_failing_chain(void **state)
{
    pthread_attr_t attr;
    pthread_t th;
    assert_int_equal(pthread_attr_init(&attr), 0);
    assert_int_equal(pthread_attr_setstacksize(&attr, 256 * 1024), 0);
    assert_int_equal(pthread_create(&th, &attr, failing_chain_main, *state), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    pthread_attr_destroy(&attr);
}

/* A restart in the middle: the run and its in-flight lease come back from
 * LMDB, and the worker that held the lease finishes it. */
static void
test_restart(void **state)
{
    struct fx *f = *state;
    put_dag(f, "s", "dag: s\ntasks:\n  a: {command: [a]}\n  b: {command: [b], needs: [a]}\n");
    start(f, 0, 0);
    hello(f, "w", 1);
    char *rid = trigger(f, "s");
    json_t *l = poll_leases(f, "w", 1);
    json_t *a = json_incref(json_array_get(l, 0));
    json_decref(l);
    stop(f);
    answers_clear();
    start(f, 0, 0);
    assert_state(f, "s", rid, "a", "leased");
    hello(f, "w", 1);
    report(f, "w", a, 0);
    json_decref(a);
    l = poll_leases(f, "w", 1);
    assert_string_equal(lease_task(json_array_get(l, 0)), "b");
    report(f, "w", json_array_get(l, 0), 0);
    json_decref(l);
    assert_state(f, "s", rid, NULL, "success");
    free(rid);
}

/* A BATCH carries several reports in order, answered after one commit; a
 * malformed item is refused alone. */
static void
test_batch(void **state)
{
    struct fx *f = *state;
    put_dag(f, "b", "dag: b\ntasks:\n  t: {command: [t]}\n");
    start(f, 0, 0);
    hello(f, "w", 1);
    char *rid = trigger(f, "b");
    json_t *l = poll_leases(f, "w", 1);
    json_int_t id = json_integer_value(json_object_get(json_array_get(l, 0), "lease_id"));
    json_decref(l);
    json_t *items = json_pack(
        "[{s:i, s:{s:s, s:I}}, {s:i, s:{s:s, s:I, s:i, s:I, s:s}}, {s:i}, "
        "{s:i, s:{s:s, s:I, s:i, s:[], s:{}}}]",
        "type", PROTO_STARTED, "body", "worker", "w", "lease_id", id, "type", PROTO_LOG, "body",
        "worker", "w", "lease_id", id, "stream", 1, "offset", (json_int_t)0, "data", "hi\n",
        "type", PROTO_LOG, "type", PROTO_RESULT, "body", "worker", "w", "lease_id", id,
        "exit_code", 0, "outputs", "metrics");
    struct answer *a =
        call(f, PROTO_BATCH, json_pack("{s:s, s:o}", "worker", "w", "items", items));
    assert_int_equal(a->type, PROTO_ACK);
    json_t *res = json_object_get(a->body, "results");
    assert_int_equal(json_array_size(res), 4);
    assert_true(json_is_true(json_object_get(json_array_get(res, 0), "ok")));
    assert_true(json_is_true(json_object_get(json_array_get(res, 1), "ok")));
    assert_false(json_is_true(json_object_get(json_array_get(res, 2), "ok")));
    assert_true(json_is_true(json_object_get(json_array_get(res, 3), "ok")));
    assert_state(f, "b", rid, NULL, "success");
    char *key = schema_key_ti("b", rid, "t");
    json_t *j = record(f, STORE_TIS, key);
    assert_int_equal(json_integer_value(json_object_get(j, "log_size")), 3);
    json_decref(j);
    free(key);
    char *log = sched_log_path(f->s, "b", rid, "t", 1);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(fs_read_all(log, 0, &text, &len), 0);
    assert_string_equal(text, "hi\n");
    free(text);
    free(log);
    free(rid);
}

/* POLL and BATCH say which of the worker's earlier requests it gave up
 * waiting on: the leases in their answers go again, with the same id and
 * attempt, in the next answer, and a request given up on gets none. */
static void
test_gave_up(void **state)
{
    struct fx *f = *state;
    put_dag(f, "g", "dag: g\ntasks:\n  t: {command: [t]}\n  u: {command: [u]}\n"
                    "  v: {command: [v]}\n");
    start(f, 0, 0);
    hello(f, "w", 2);
    char *rid = trigger(f, "g");
    struct answer *a = call(f, PROTO_POLL, json_pack("{s:s, s:i, s:[], s:i, s:I}", "worker", "w",
                                                     "free", 2, "leases", "wait_ms", 0, "seq",
                                                     (json_int_t)100));
    json_t *l = json_object_get(a->body, "leases");
    assert_int_equal(json_array_size(l), 2);
    json_int_t id0 = json_integer_value(json_object_get(json_array_get(l, 0), "lease_id"));
    json_int_t id1 = json_integer_value(json_object_get(json_array_get(l, 1), "lease_id"));
    /* the worker never saw that answer (100); nor will it see 102's, which
     * the scheduler reads late, after 103 said so */
    a = call(f, PROTO_POLL, json_pack("{s:s, s:i, s:[], s:i, s:I, s:[I, I]}", "worker", "w",
                                      "free", 2, "leases", "wait_ms", 0, "seq", (json_int_t)103,
                                      "gave_up", (json_int_t)100, (json_int_t)102));
    l = json_object_get(a->body, "leases");
    assert_int_equal(json_array_size(l), 2); /* the same two again, not v */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 0), "lease_id")), id0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 1), "lease_id")), id1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 0), "attempt")), 1);
    a = call(f, PROTO_POLL, json_pack("{s:s, s:i, s:[], s:i, s:I}", "worker", "w", "free", 2,
                                      "leases", "wait_ms", 0, "seq", (json_int_t)102));
    assert_int_equal(json_array_size(json_object_get(a->body, "leases")), 0);
    /* 103's answer came: the worker runs them; one's result comes in a
     * BATCH whose answer the worker gives up on too */
    a = call(f, PROTO_STARTED, json_pack("{s:s, s:I}", "worker", "w", "lease_id", id0));
    json_t *items = json_pack("[{s:i, s:{s:s, s:I, s:i, s:[], s:{}}}]", "type", PROTO_RESULT,
                              "body", "worker", "w", "lease_id", id0, "exit_code", 0, "outputs",
                              "metrics");
    a = call(f, PROTO_BATCH, json_pack("{s:s, s:o, s:i, s:I}", "worker", "w", "items", items,
                                       "free", 1, "seq", (json_int_t)104));
    json_t *work = json_object_get(json_object_get(a->body, "work"), "leases");
    assert_int_equal(json_array_size(work), 1);
    json_int_t id2 = json_integer_value(json_object_get(json_array_get(work, 0), "lease_id"));
    assert_string_equal(lease_task(json_array_get(work, 0)), "v");
    /* a lease the worker shows it has is not sent again */
    a = call(f, PROTO_POLL, json_pack("{s:s, s:i, s:[I], s:i, s:I, s:[I]}", "worker", "w",
                                      "free", 1, "leases", id1, "wait_ms", 0, "seq",
                                      (json_int_t)105, "gave_up", (json_int_t)104));
    l = json_object_get(a->body, "leases");
    assert_int_equal(json_array_size(l), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 0), "lease_id")), id2);
    assert_state(f, "g", rid, "t", "success");
    struct sched_run *r = sched_find_run(f->s, "g", rid);
    assert_non_null(r);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(r->tis[i].attempts, 1);
        assert_int_equal(r->tis[i].lost, 0);
    }
    free(rid);
}

/* The errors say what happened: a `when` that is false shows the values it
 * compared; a task whose input was never stored names the input and why. */
static void
test_messages(void **state)
{
    struct fx *f = *state;
    put_dag(f, "m", "dag: m\nparams: {min_auc: 0.75}\ntasks:\n"
                    "  select: {command: [s], metrics: m.json}\n"
                    "  deploy: {command: [d], needs: [select],\n"
                    "           when: \"select.metrics.auc >= params.min_auc and true\"}\n"
                    "  train_b: {command: [t], outputs: [model.pkl], retries: 0}\n"
                    "  best: {command: [b], needs: [train_b], trigger_rule: all_done,\n"
                    "         inputs: {model_b: train_b/model.pkl}}\n");
    start(f, 0, 0);
    hello(f, "w", 4);
    char *rid = trigger(f, "m");
    json_t *l = poll_leases(f, "w", 4);
    assert_int_equal(json_array_size(l), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *lease = json_array_get(l, i);
        json_int_t id = json_integer_value(json_object_get(lease, "lease_id"));
        bool sel = !strcmp(lease_task(lease), "select");
        struct answer *a = call(
            f, PROTO_RESULT,
            sel ? json_pack("{s:s, s:I, s:i, s:[{s:s, s:s, s:i, s:s}], s:{s:f}}", "worker", "w",
                            "lease_id", id, "exit_code", 0, "outputs", "name", "m.json",
                            "sha256",
                            "00000000000000000000000000000000000000000000000000000000000000aa",
                            "size", 13, "uri", "file:///nowhere", "metrics", "auc", 0.7124)
                : json_pack("{s:s, s:I, s:i}", "worker", "w", "lease_id", id, "exit_code", 1));
        assert_true(json_is_true(json_object_get(a->body, "ok")));
    }
    json_decref(l);
    l = poll_leases(f, "w", 4); /* best is ready (all_done) but cannot be prepared */
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);
    assert_state(f, "m", rid, "deploy", "skipped");
    char *e = stored_field(f, "m", rid, "deploy", "error");
    assert_string_equal(e, "condition is false: select.metrics.auc (0.7124) >= params.min_auc "
                           "(0.75) and true");
    free(e);
    assert_state(f, "m", rid, "best", "failed");
    e = stored_field(f, "m", rid, "best", "error");
    assert_string_equal(e, "cannot prepare the task: input 'model_b' (train_b/model.pkl) has no "
                           "stored artifact: task 'train_b' is failed");
    free(e);
    free(rid);
}

/* Run every lease handed out until the run ends: exit codes from fail(ud,
 * lease) (NULL: all succeed), outputs faked for each declared one. Returns
 * how many attempts ran. */
static size_t
drain_run(struct fx *f, const char *worker, int slots, const char *dag, const char *rid,
          int (*exit_of)(json_t *lease))
{
    size_t ran = 0;
    for (int round = 0; round < 100000; round++) {
        char *st = stored_state(f, dag, rid, NULL);
        bool over = !strcmp(st, "success") || !strcmp(st, "failed");
        free(st);
        if (over)
            break;
        if (nanswers > sizeof(answers) / sizeof(answers[0]) - 256)
            answers_clear(); /* a long run: the answers so far were checked */
        json_t *l = poll_leases(f, worker, slots);
        if (!json_array_size(l)) {
            json_decref(l);
            spin(f);
            continue;
        }
        size_t i;
        json_t *lease;
        json_array_foreach(l, i, lease)
        {
            json_t *outs = json_array();
            size_t k;
            json_t *o;
            json_array_foreach(json_object_get(lease, "outputs"), k, o)
            {
                json_array_append_new(
                    outs, json_pack("{s:O, s:s, s:i, s:s}", "name", o, "sha256",
                                    "00000000000000000000000000000000000000000000000000000000000000"
                                    "ab",
                                    "size", 1, "uri", "file:///x"));
            }
            json_int_t id = json_integer_value(json_object_get(lease, "lease_id"));
            int code = exit_of ? exit_of(lease) : 0;
            /* metrics: the instance's index as "score", so argmax is the last */
            const char *task = json_string_value(json_object_get(lease, "task"));
            const char *br = strchr(task, '[');
            double score = br ? atof(br + 1) : 0;
            struct answer *a = call(f, PROTO_RESULT,
                                    json_pack("{s:s, s:I, s:i, s:o, s:{s:f}}", "worker", worker,
                                              "lease_id", id, "exit_code", code, "outputs", outs,
                                              "metrics", "score", score));
            assert_true(json_is_true(json_object_get(a->body, "ok")));
            ran++;
        }
        json_decref(l);
    }
    return ran;
}

static char *
lease_env(json_t *lease, const char *var)
{
    size_t i;
    json_t *e;
    size_t n = strlen(var);
    json_array_foreach(json_object_get(lease, "env"), i, e)
    {
        const char *v = json_string_value(e);
        if (!strncmp(v, var, n) && v[n] == '=')
            return xstrdup(v + n + 1);
    }
    return NULL;
}

static json_t *fan_seen; /* leases handed out, by task */

static int
record_lease(json_t *lease)
{
    json_array_append(fan_seen, lease);
    return 0;
}

/* A matrix of 6 instances, a zip over them, and a fan-in task picking the
 * best by an aggregate: every instance is its own task instance, named
 * TASK[INDEX], rendered with its item; the fan-in gets a manifest. */
static void
test_fanout(void **state)
{
    struct fx *f = *state;
    put_dag(f, "sw", "dag: sw\nparams: {min: 3}\ntasks:\n"
                     "  train:\n    matrix: {lr: [0.1, 0.01], depth: [1, 2, 3]}\n"
                     "    command: [t, \"{{ item.lr }}\", \"{{ item.depth }}\", \"{{ map_index }}\"]\n"
                     "    outputs: [model.pkl, m.json]\n    metrics: m.json\n    max_parallel: 2\n"
                     "  eval:\n    needs: [train]\n    map: {zip: train}\n"
                     "    inputs: {model: train/model.pkl}\n    command: [e]\n"
                     "  pick:\n    needs: [train]\n    inputs: {models: train/model.pkl}\n"
                     "    when: \"max(train.metrics.score) >= params.min\"\n"
                     "    command: [p, \"{{ argmax(train.metrics.score) }}\"]\n");
    start(f, 0, 0);
    hello(f, "w", 8);
    char *rid = trigger(f, "sw");
    fan_seen = json_array();
    /* max_parallel 2: the first POLL gets two instances of train, not six */
    json_t *first = poll_leases(f, "w", 8);
    assert_int_equal(json_array_size(first), 2);
    assert_string_equal(lease_task(json_array_get(first, 0)), "train[0]");
    json_t *argv = json_object_get(json_array_get(first, 1), "argv");
    assert_string_equal(json_string_value(json_array_get(argv, 1)), "0.1");
    assert_string_equal(json_string_value(json_array_get(argv, 2)), "2");
    assert_string_equal(json_string_value(json_array_get(argv, 3)), "1");
    char *idx = lease_env(json_array_get(first, 1), "CAIRN_MAP_INDEX");
    assert_string_equal(idx, "1");
    free(idx);
    /* answer those two, then everything else */
    size_t i;
    json_t *lease;
    json_array_foreach(first, i, lease)
    {
        json_array_append(fan_seen, lease);
        json_t *outs = json_pack("[{s:s, s:s, s:i, s:s}, {s:s, s:s, s:i, s:s}]", "name",
                                 "model.pkl", "sha256",
                                 "00000000000000000000000000000000000000000000000000000000000000ab",
                                 "size", 1, "uri", "file:///x", "name", "m.json", "sha256",
                                 "00000000000000000000000000000000000000000000000000000000000000ac",
                                 "size", 1, "uri", "file:///y");
        call(f, PROTO_RESULT,
             json_pack("{s:s, s:I, s:i, s:o, s:{s:f}}", "worker", "w", "lease_id",
                       json_integer_value(json_object_get(lease, "lease_id")), "exit_code", 0,
                       "outputs", outs, "metrics", "score", (double)i));
    }
    json_decref(first);
    drain_run(f, "w", 8, "sw", rid, record_lease);
    assert_state(f, "sw", rid, NULL, "success");
    struct sched_run *r = NULL;
    /* the records: the group with its counts, each instance on its own */
    char *gkey = schema_key_ti("sw", rid, "train");
    json_t *g = record(f, STORE_TIS, gkey);
    free(gkey);
    assert_non_null(g);
    assert_string_equal(json_string_value(json_object_get(g, "state")), "success");
    json_t *map = json_object_get(g, "map");
    assert_int_equal(json_integer_value(json_object_get(map, "n")), 6);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(map, "counts"), "success")),
                     6);
    json_decref(g);
    char *ikey = schema_key_instance("sw", rid, "eval", 4);
    json_t *inst = record(f, STORE_TIS, ikey);
    free(ikey);
    assert_non_null(inst);
    assert_string_equal(json_string_value(json_object_get(inst, "task")), "eval[4]");
    assert_string_equal(json_string_value(json_object_get(inst, "state")), "success");
    json_decref(inst);
    /* eval[i] got train[i]'s file; pick a manifest and the argmax (5) */
    bool saw_pick = false;
    json_array_foreach(fan_seen, i, lease)
    {
        const char *task = lease_task(lease);
        json_t *in0 = json_array_get(json_object_get(lease, "inputs"), 0);
        if (!strncmp(task, "eval[", 5)) {
            assert_string_equal(json_string_value(json_object_get(in0, "name")), "model");
            assert_null(json_object_get(in0, "manifest_file"));
        }
        if (!strcmp(task, "pick")) {
            saw_pick = true;
            assert_string_equal(json_string_value(json_object_get(in0, "manifest_file")),
                                "model.pkl");
            assert_string_equal(
                json_string_value(json_array_get(json_object_get(lease, "argv"), 1)), "5");
        }
    }
    assert_true(saw_pick);
    (void)r;
    json_decref(fan_seen);
    free(rid);
}

/* 20,000 instances are made in chunks, and a restart in the middle makes
 * exactly the 20,000 again, none lost, none twice. */
static void
test_fanout_chunks_restart(void **state)
{
    struct fx *f = *state;
    put_dag(f, "big", "dag: big\nmax_active_tasks: 100000\nparams: {items: [0]}\ntasks:\n"
                      "  each: {map: {over: params.items}, command: [t]}\n");
    start(f, 0, 0);
    hello(f, "w", 1);
    struct sb items;
    sb_init(&items);
    sb_putc(&items, '[');
    for (int i = 0; i < 20000; i++)
        sb_printf(&items, "%s%d", i ? "," : "", i);
    sb_putc(&items, ']');
    json_t *params = json_pack("{s:s}", "items", items.buf);
    sb_free(&items);
    struct sched_run *r = NULL;
    char err[256];
    assert_int_equal(sched_trigger(f->s, "big", 0, false, params, false, &r, err, sizeof(err)), 0);
    json_decref(params);
    char *rid = xstrdup(r->run_id);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* one iteration: the first chunk only */
    struct sched_ti *g = &r->tis[0];
    assert_true(g->map->expanded);
    assert_int_equal(g->map->n, 20000);
    assert_true(g->map->created > 0 && g->map->created < 20000);
    /* a lease of the first chunk is out and stored */
    json_t *l = poll_leases(f, "w", 1);
    assert_int_equal(json_array_size(l), 1);
    assert_string_equal(lease_task(json_array_get(l, 0)), "each[0]");
    /* and the restart comes before the last instance is made */
    stop(f);
    answers_clear();
    start(f, 0, 0);
    r = sched_find_run(f->s, "big", rid);
    assert_non_null(r);
    g = &r->tis[0];
    assert_int_equal(g->map->n, 20000);
    assert_int_equal(g->map->created, 20000);
    assert_int_equal(g->map->inst[0].state, TI_LEASED); /* in flight: kept */
    size_t pending = 0;
    for (size_t i = 0; i < g->map->created; i++)
        pending += g->map->inst[i].state == TI_PENDING || g->map->inst[i].state == TI_QUEUED;
    assert_int_equal(pending, 19999);
    /* the scrape counts them by state, the one in flight as leased */
    size_t mlen = 0;
    char *text = smet_render(f->s, &mlen);
    assert_non_null(text);
    assert_non_null(strstr(text, "cairn_task_instances{dag=\"big\",state=\"leased\"} 1\n"));
    free(text);
    json_decref(l);
    free(rid);
}

/* A finished run of 5,000 instances leaves memory: it is out of the run
 * table once its end is stored, its instances are released over the next
 * iterations, and then no group state is left (nothing queued to expand or
 * to release; the leak check at exit sees any instance left over). */
static void
test_fanout_release(void **state)
{
    struct fx *f = *state;
    put_dag(f, "rel", "dag: rel\nmax_active_tasks: 100000\nparams: {items: [0]}\ntasks:\n"
                      "  each: {map: {over: params.items}, command: [t]}\n");
    start(f, 0, 0);
    hello(f, "w", 64);
    struct sb items;
    sb_init(&items);
    sb_putc(&items, '[');
    for (int i = 0; i < 5000; i++)
        sb_printf(&items, "%s{\"shard\": \"part-%d\"}", i ? "," : "", i);
    sb_putc(&items, ']');
    json_t *params = json_pack("{s:s}", "items", items.buf);
    sb_free(&items);
    struct sched_run *r = NULL;
    char err[256];
    assert_int_equal(sched_trigger(f->s, "rel", 0, false, params, false, &r, err, sizeof(err)), 0);
    json_decref(params);
    char *rid = xstrdup(r->run_id);
    drain_run(f, "w", 64, "rel", rid, NULL);
    assert_state(f, "rel", rid, NULL, "success");
    for (int i = 0; i < 1000 && (sched_find_run(f->s, "rel", rid) || f->s->ngraves); i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_null(sched_find_run(f->s, "rel", rid));
    assert_int_equal(f->s->ngraves, 0);
    assert_int_equal(f->s->nexpandq, 0);
    assert_int_equal(f->s->nstartq, 0);
    assert_false(f->s->fan_idle_on); /* the loop may sleep again */
    /* what it did stays stored: the group with its counts, every instance */
    char *gkey = schema_key_ti("rel", rid, "each");
    json_t *g = record(f, STORE_TIS, gkey);
    free(gkey);
    assert_non_null(g);
    json_t *map = json_object_get(g, "map");
    assert_int_equal(json_integer_value(json_object_get(map, "n")), 5000);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(map, "counts"), "success")),
                     5000);
    json_decref(g);
    char *ikey = schema_key_instance("rel", rid, "each", 4999);
    json_t *inst = record(f, STORE_TIS, ikey);
    free(ikey);
    assert_non_null(inst);
    assert_string_equal(json_string_value(json_object_get(inst, "state")), "success");
    json_decref(inst);
    free(rid);
}

/* A run of 10,000 tasks starts a chunk per loop iteration: no iteration
 * decides them all, and in a few they are all ready. */
static void
test_big_run_start(void **state)
{
    struct fx *f = *state;
    struct sb y;
    sb_init(&y);
    sb_puts(&y, "dag: wide\nmax_active_tasks: 100000\ntasks:\n");
    for (int i = 0; i < 10000; i++)
        sb_printf(&y, "  t%d: {command: [t]}\n", i);
    put_dag(f, "wide", y.buf);
    sb_free(&y);
    start(f, 0, 0);
    struct sched_run *r = NULL;
    char err[256];
    assert_int_equal(sched_trigger(f->s, "wide", 0, false, NULL, false, &r, err, sizeof(err)), 0);
    size_t after_trigger = f->s->nheap;
    /* one chunk in the trigger's iteration, however many steps it takes */
    assert_true(after_trigger > 0 && after_trigger <= SCHED_CHUNK);
    assert_true(r->starting);
    for (int i = 0; i < 20 && f->s->nheap < 10000; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->s->nheap, 10000);
    assert_false(r->starting);
}

/* A STARTED the worker held a moment says how long ago the task started
 * (age_ms): started_at goes that far back, but never before the lease. */
static void
test_started_age(void **state)
{
    struct fx *f = *state;
    put_dag(f, "ag", "dag: ag\ntasks:\n  a: {command: [a]}\n  b: {command: [b]}\n");
    start(f, 0, 0);
    hello(f, "w", 2);
    char *rid = trigger(f, "ag");
    json_t *l = poll_leases(f, "w", 2);
    assert_int_equal(json_array_size(l), 2);
    json_int_t id0 = json_integer_value(json_object_get(json_array_get(l, 0), "lease_id"));
    json_int_t id1 = json_integer_value(json_object_get(json_array_get(l, 1), "lease_id"));
    struct sched_ti *t0 = lease_lookup(f->s, id0), *t1 = lease_lookup(f->s, id1);
    assert_non_null(t0);
    assert_non_null(t1);
    int64_t leased0 = t0->started_at;
    t1->started_at -= 10000; /* as if leased 10 s ago */
    int64_t leased1 = t1->started_at;
    /* started "an hour ago": not before its lease */
    struct answer *a = call(f, PROTO_STARTED, json_pack("{s:s, s:I, s:I}", "worker", "w",
                                                        "lease_id", id0, "age_ms",
                                                        (json_int_t)3600000));
    assert_true(json_is_true(json_object_get(a->body, "ok")));
    assert_int_equal(t0->started_at, leased0);
    /* started 3 s ago, 7 s after its lease */
    int64_t before = clock_wall_ms();
    a = call(f, PROTO_STARTED, json_pack("{s:s, s:I, s:I}", "worker", "w", "lease_id", id1,
                                         "age_ms", (json_int_t)3000));
    int64_t after = clock_wall_ms();
    assert_true(json_is_true(json_object_get(a->body, "ok")));
    assert_true(t1->started_at > leased1);
    assert_true(t1->started_at >= before - 3000 && t1->started_at <= after - 3000);
    json_decref(l);
    free(rid);
}

/* How many leases a worker gets beyond its slots: none before it has
 * reported or while its tasks run a second or more, else as many as run in
 * about a second a slot at its recent task time, at most its prefetch. */
static void
test_prefetch_room(void **state)
{
    (void)state;
    struct sched_worker w = {.slots = 2, .prefetch = 8};
    assert_int_equal(lease_room(&w), 2); /* nothing reported yet: the slots */
    lease_note_run_time(&w, 1);
    assert_int_equal(lease_room(&w), 10); /* millisecond tasks: the whole prefetch */
    w.busy = 7;
    assert_int_equal(lease_room(&w), 3);
    w.busy = 0;
    lease_note_run_time(&w, 5000); /* one long task stops it at once */
    assert_int_equal(lease_room(&w), 2);
    w.avg_task_ms = 400; /* 2 slots x 1000 ms / 400 ms: 5 more */
    assert_int_equal(lease_room(&w), 7);
    w.avg_task_ms = 1000; /* a slot's worth */
    assert_int_equal(lease_room(&w), 4);
    w.prefetch = 0;
    w.avg_task_ms = 1;
    assert_int_equal(lease_room(&w), 2);
}

/* A big run that ended leaves the table at once and its memory goes a
 * chunk per iteration; cleared meanwhile, it is read back from the store. */
static void
test_big_run_evicted_in_chunks(void **state)
{
    struct fx *f = *state;
    struct sb y;
    sb_init(&y);
    sb_puts(&y, "dag: skipped\nmax_active_tasks: 100000\nparams: {go: 'yes'}\n"
                "defaults: {when: \"params.go == 'no'\"}\ntasks:\n");
    for (int i = 0; i < 10000; i++)
        sb_printf(&y, "  t%d: {command: [t]}\n", i);
    put_dag(f, "skipped", y.buf);
    sb_free(&y);
    start(f, 0, 0);
    struct sched_run *r = NULL;
    char err[256];
    assert_int_equal(sched_trigger(f->s, "skipped", 0, false, NULL, false, &r, err, sizeof(err)),
                     0);
    char *rid = xstrdup(r->run_id);
    for (int i = 0; i < 40 && sched_find_run(f->s, "skipped", rid); i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_null(sched_find_run(f->s, "skipped", rid));
    /* 10,000 task instances: more than one chunk is still to free */
    assert_non_null(f->s->dying);
    assert_true(f->s->dying->free_next > 0 && f->s->dying->free_next < 10000);
    /* cleared while its memory goes: a fresh copy from the store */
    struct sched_run *again = NULL;
    assert_int_equal(sched_clear(f->s, "skipped", rid, NULL, 0, &again, err, sizeof(err)), 0);
    assert_non_null(again);
    assert_ptr_not_equal(again, f->s->dying);
    assert_ptr_equal(sched_find_run(f->s, "skipped", rid), again);
    for (int i = 0; i < 40 && f->s->dying; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_null(f->s->dying);
    /* the cleared run skips its tasks again, ends and goes the same way */
    for (int i = 0; i < 80 && (sched_find_run(f->s, "skipped", rid) || f->s->dying); i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_null(sched_find_run(f->s, "skipped", rid));
    assert_null(f->s->dying);
    free(rid);
}

int
main(void)
{
    log_init("test_engine", getenv("TEST_LOG") ? LOG_DEBUG : LOG_ERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_diamond, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_and_fencing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gave_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fanout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fanout_chunks_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fanout_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_run_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_started_age, setup, teardown),
        cmocka_unit_test(test_prefetch_room),
        cmocka_unit_test_setup_teardown(test_big_run_evicted_in_chunks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
