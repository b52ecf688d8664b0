/* The HTTP API over a real store: records written with schema.h's encoders
 * (and some damaged on purpose: valid JSON of the wrong shape, a record of
 * a newer version) into a real LMDB, a real engine and HTTP server on a
 * libuv loop, and requests over a socket on 127.0.0.1. The loop is turned
 * on the test thread while a request waits, so nothing runs concurrently.
 *
 * Checks: a damaged record asked for alone is a 500 in the API's error
 * shape naming the record and the decoder's reason, with a CAIRN-RECORD-BAD
 * line in the log; a list leaves it out and says how many it left out;
 * nothing is served half-read; runs in memory and stored come out in one
 * shape, params_effective included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four above first */
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "dag.h"
#include "engine.h"
#include "fs.h"
#include "http.h"
#include "schema.h"
#include "store.h"
#include "util.h"

/* Tasks in the DAG's order: zeta first, so stored (key) order differs. */
static const char dag_yaml[] = "dag: d\n"
                               "params: {a: 1, b: \"x\"}\n"
                               "tasks:\n"
                               "  zeta: {command: [\"true\"], outputs: [out.txt]}\n"
                               "  alpha: {needs: [zeta], command: [\"true\"]}\n";

static const char sha_a[] = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";

struct fx {
    char dir[64];
    char *dags, *data, *logfile;
    char version[65];
    uv_loop_t loop;
    struct sched *s;
    struct http_server *http;
    int port;
    int saved_stderr;
};

/* ---- the store as a test writes it, before the scheduler starts ---------- */

static void
put(struct store_txn *t, enum store_table tb, char *key, json_t *rec)
{
    assert_int_equal(store_put(t, tb, key, rec), 0);
    json_decref(rec);
    free(key);
}

static void
put_raw(struct store_txn *t, enum store_table tb, char *key, const char *text)
{
    assert_int_equal(store_put_raw(t, tb, key, text, strlen(text)), 0);
    free(key);
}

static void
put_run(struct fx *f, struct store_txn *t, const char *run_id, int64_t seq, json_t *params)
{
    struct schema_run r = {
        .dag = "d",
        .run_id = run_id,
        .state = "success",
        .run_type = "manual",
        .logical_date = 1767225600 + seq * 86400, /* 2026-01-01 + seq days */
        .interval_end = 1767225600 + seq * 86400,
        .created_at = 1767225600000 + seq,
        .started_at = 1767225600000 + seq,
        .ended_at = 1767225601000 + seq,
        .dag_version = f->version,
        .params = params,
        .seq = seq,
    };
    put(t, STORE_RUNS, schema_key_run("d", run_id), schema_run_encode(&r));
    json_decref(params);
}

static void
put_ti(struct store_txn *t, const char *run_id, const char *task, int attempts, json_t *outputs)
{
    struct schema_ti x = {
        .task = task,
        .state = "success",
        .attempts = attempts,
        .max_attempts = attempts,
        .worker = "w1",
        .started_at = 1767225600100,
        .ended_at = 1767225600350,
        .exit_code = 0,
        .outputs = outputs,
        .metrics = json_pack("{s:f}", "acc", 0.5),
    };
    put(t, STORE_TIS, schema_key_ti("d", run_id, task), schema_ti_encode(&x));
    json_decref(outputs);
    json_decref(x.metrics);
}

static void
put_attempt(struct store_txn *t, const char *run_id, const char *task, int n)
{
    struct schema_attempt a = {
        .attempt = n,
        .lease_id = 10 + n,
        .worker = "w1",
        .state = "success",
        .started_at = 1767225600100,
        .ended_at = 1767225600350,
        .exit_code = 0,
        .log_size = 0,
        .duration_ms = 250,
        .image = "host",
        .argv = json_pack("[s]", "true"),
        .env = json_array(),
        .inputs = json_array(),
    };
    put(t, STORE_ATTEMPTS, schema_key_attempt("d", run_id, task, n), schema_attempt_encode(&a));
    json_decref(a.argv);
    json_decref(a.env);
    json_decref(a.inputs);
}

static void
put_pointer(struct store_txn *t, const char *run_id, const char *task, const char *name,
            int attempt)
{
    struct schema_artifact a = {
        .name = name,
        .sha256 = sha_a,
        .size = 3,
        .uri = "file:///nowhere",
        .dag = "d",
        .run_id = run_id,
        .task = task,
        .attempt = attempt,
        .created_at = 1767225600350,
    };
    char *key = schema_key_artifact("d", run_id, task, name);
    struct schema_artidx x = {"d", run_id, task, name, attempt, a.created_at};
    put(t, STORE_ARTIFACT_SHAS, schema_key_artidx(sha_a, key), schema_artidx_encode(&x));
    put(t, STORE_ARTIFACTS, key, schema_artifact_encode(&a));
}

/* Runs: good (all fine), bad (a run record of the wrong shape), new (a run
 * record of version 99), holes (fine, but one task instance, one attempt
 * and two artifact pointers are damaged). */
static void
fill_store(struct fx *f)
{
    struct store *st = NULL;
    struct store_txn *t = NULL;
    char err[256];
    assert_int_equal(store_open(&st, f->data, 0, err, sizeof(err)), 0);
    assert_int_equal(store_txn_begin(st, true, &t), 0);

    put_run(f, t, "good", 1, json_pack("{s:s}", "b", "y"));
    put_ti(t, "good", "zeta", 1,
           json_pack("[{s:s, s:s, s:i, s:s}]", "name", "out.txt", "sha256", sha_a, "size", 3, "uri",
                     "file:///nowhere"));
    put_ti(t, "good", "alpha", 1, NULL);
    put_attempt(t, "good", "zeta", 1);
    put_attempt(t, "good", "alpha", 1);
    put_pointer(t, "good", "zeta", "out.txt", 1);

    put(t, STORE_RUNS, schema_key_run("d", "bad"),
        json_pack("{s:s, s:s, s:i, s:s}", "dag", "d", "run_id", "bad", "state", 7, "dag_version",
                  f->version));
    put_raw(t, STORE_RUNS, schema_key_run("d", "new"),
            "{\"v\":99,\"dag\":\"d\",\"run_id\":\"new\",\"state\":\"success\"}");

    put_run(f, t, "holes", 2, NULL);
    put_ti(t, "holes", "zeta", 2, NULL);
    put(t, STORE_TIS, schema_key_ti("d", "holes", "alpha"), json_pack("{s:i}", "task", 5));
    put_attempt(t, "holes", "zeta", 1);
    put(t, STORE_ATTEMPTS, schema_key_attempt("d", "holes", "zeta", 2),
        json_pack("{s:s, s:s}", "attempt", "two", "state", "failed"));
    put(t, STORE_ARTIFACTS, schema_key_artifact("d", "holes", "zeta", "out.txt"),
        json_pack("{s:s}", "name", "out.txt"));
    put_raw(t, STORE_ARTIFACTS, schema_key_artifact("d", "holes", "zeta", "v99.txt"),
            "{\"v\":99,\"name\":\"v99.txt\"}");
    /* a good pointer whose attempt (2) is the damaged record */
    put_pointer(t, "holes", "zeta", "ok.txt", 2);

    assert_int_equal(store_txn_commit(t), 0);
    store_close(st);
}

/* ---- the scheduler ------------------------------------------------------- */

static void
fake_reply(struct wire_req *req, int type, json_t *body)
{
    (void)req;
    (void)type;
    (void)body;
    fail_msg("no worker talks to this scheduler");
}

static void
fake_drop(struct wire_req *req)
{
    (void)req;
    fail_msg("no worker talks to this scheduler");
}

static int
setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/cairn-api-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    f->dags = xasprintf("%s/dags", f->dir);
    f->data = xasprintf("%s/data", f->dir);
    f->logfile = xasprintf("%s/log", f->dir);
    fs_mkdirs(f->dags);
    fs_mkdirs(f->data);
    char *path = xasprintf("%s/d.yaml", f->dags);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(dag_yaml, fp);
    fclose(fp);
    free(path);

    struct dag *d = NULL;
    struct diag_list dl;
    diag_list_init(&dl);
    assert_int_equal(dag_load_buffer(&d, dag_yaml, strlen(dag_yaml), "d.yaml", &dl), 0);
    diag_list_free(&dl);
    snprintf(f->version, sizeof(f->version), "%s", d->version);
    dag_free(d);
    fill_store(f);

    /* the scheduler's log goes to a file the tests read */
    fflush(stderr);
    f->saved_stderr = dup(2);
    int fd = open(f->logfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    dup2(fd, 2);
    close(fd);

    uv_loop_init(&f->loop);
    struct sched_config cfg = {0};
    cfg.dags_dir = f->dags;
    cfg.data_dir = f->data;
    cfg.lease_ttl_ms = 10000;
    cfg.max_lost = 3;
    cfg.link.reply = fake_reply;
    cfg.link.drop = fake_drop;
    char err[512];
    if (sched_new(&f->s, &f->loop, &cfg, err, sizeof(err)) != 0)
        fail_msg("sched_new: %s", err);
    assert_int_equal(http_server_start(&f->http, &f->loop, "127.0.0.1", 0, api_handle, f->s), 0);
    f->port = http_server_port(f->http);
    *state = f;
    return 0;
}

static void
set_true(void *ud)
{
    *(bool *)ud = true;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    bool closed = false, stopped = false;
    http_server_close(f->http, set_true, &closed);
    for (int i = 0; i < 100 && !closed; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    sched_stop(f->s, set_true, &stopped);
    for (int i = 0; i < 100 && !stopped; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_true(closed && stopped);
    sched_free(f->s);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    fflush(stderr);
    dup2(f->saved_stderr, 2);
    close(f->saved_stderr);
    fs_rmtree(f->dir);
    free(f->dags);
    free(f->data);
    free(f->logfile);
    free(f);
    return 0;
}

/* ---- requests ------------------------------------------------------------ */

/* METHOD path (body may be NULL): the status; *out the JSON answer (new). */
static int
request(struct fx *f, const char *method, const char *path, const char *body, json_t **out)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)f->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    char *req = xasprintf("%s %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
                          "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                          method, path, body ? strlen(body) : 0, body ? body : "");
    size_t len = strlen(req), off = 0;
    while (off < len) {
        ssize_t n = write(fd, req + off, len - off);
        assert_true(n > 0);
        off += (size_t)n;
    }
    free(req);
    struct sb in;
    sb_init(&in);
    bool eof = false;
    for (int i = 0; i < 4000 && !eof; i++) { /* at most ~20 s */
        uv_run(&f->loop, UV_RUN_NOWAIT);
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, 5) <= 0)
            continue;
        char buf[4096];
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            eof = true;
        else
            sb_append(&in, buf, (size_t)n);
    }
    close(fd);
    assert_true(eof);
    assert_non_null(in.buf);
    int status = 0;
    assert_int_equal(sscanf(in.buf, "HTTP/1.1 %d", &status), 1);
    const char *b = strstr(in.buf, "\r\n\r\n");
    assert_non_null(b);
    json_error_t je;
    *out = json_loads(b + 4, 0, &je);
    if (!*out)
        fail_msg("%s %s: the answer is not JSON: %s", method, path, b + 4);
    sb_free(&in);
    return status;
}

static int
get(struct fx *f, const char *path, json_t **out)
{
    return request(f, "GET", path, NULL, out);
}

/* The answer is {"error": {"code": code, "message": ...}} and the message
 * has every one of the NULL-terminated parts. */
static void
assert_error(const json_t *j, const char *code, ...)
{
    const json_t *e = json_object_get(j, "error");
    assert_non_null(e);
    assert_int_equal(json_object_size(j), 1);
    assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    const char *msg = json_string_value(json_object_get(e, "message"));
    assert_non_null(msg);
    va_list ap;
    va_start(ap, code);
    for (const char *part; (part = va_arg(ap, const char *)) != NULL;)
        if (!strstr(msg, part))
            fail_msg("message '%s' does not say '%s'", msg, part);
    va_end(ap);
}

/* The scheduler's log has a line with id and text. */
static bool
logged(struct fx *f, const char *id, const char *text)
{
    fflush(stderr);
    size_t len = 0;
    char *buf = NULL;
    if (fs_read_all(f->logfile, 16u << 20, &buf, &len) != 0)
        return false;
    bool found = false;
    for (char *line = buf; line && *line && !found;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        found = strstr(line, id) && strstr(line, text);
        line = nl ? nl + 1 : NULL;
    }
    free(buf);
    return found;
}

static size_t
skipped(const json_t *j)
{
    const json_t *v = json_object_get(j, "skipped");
    return v ? (size_t)json_integer_value(v) : 0;
}

/* The names of an array of objects' member field, joined by ','. */
static char *
names(const json_t *arr, const char *field)
{
    struct sb sb;
    sb_init(&sb);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        sb_printf(&sb, "%s%s", i ? "," : "", json_string_value(json_object_get(v, field)));
    }
    return sb.buf ? sb_take(&sb) : xstrdup("");
}

static void
assert_names(const json_t *arr, const char *field, const char *want)
{
    char *got = names(arr, field);
    assert_string_equal(got, want);
    free(got);
}

/* ---- tests --------------------------------------------------------------- */

/* A stored run is answered whole: the run's fields in their order,
 * params_effective, the tasks in the DAG's order, nothing skipped. */
static void
test_stored_run(void **state)
{
    struct fx *f = *state;
    json_t *j = NULL;
    assert_int_equal(get(f, "/api/v1/runs/good?dag=d", &j), 200);
    static const char *const keys[] = {"run_id",
                                       "dag",
                                       "state",
                                       "run_type",
                                       "logical_date",
                                       "data_interval_start",
                                       "data_interval_end",
                                       "created_at",
                                       "started_at",
                                       "ended_at",
                                       "dag_version",
                                       "params",
                                       "params_effective",
                                       "no_cache",
                                       "backfill_id",
                                       "images",
                                       "pinning",
                                       "code_digest",
                                       "tasks"};
    size_t k = 0;
    for (void *it = json_object_iter(j); it; it = json_object_iter_next(j, it), k++) {
        assert_true(k < sizeof(keys) / sizeof(keys[0]));
        assert_string_equal(json_object_iter_key(it), keys[k]);
    }
    assert_int_equal(k, sizeof(keys) / sizeof(keys[0]));
    assert_string_equal(json_string_value(json_object_get(j, "logical_date")),
                        "2026-01-02T00:00:00Z");
    assert_string_equal(json_string_value(json_object_get(j, "created_at")),
                        "2026-01-01T00:00:00.001Z");
    json_t *want = json_pack("{s:s}", "b", "y");
    assert_true(json_equal(json_object_get(j, "params"), want));
    json_decref(want);
    want = json_pack("{s:s, s:s}", "a", "1", "b", "y");
    assert_true(json_equal(json_object_get(j, "params_effective"), want));
    json_decref(want);
    json_t *tasks = json_object_get(j, "tasks");
    assert_names(tasks, "task", "zeta,alpha");
    json_t *z = json_array_get(tasks, 0);
    assert_int_equal(json_integer_value(json_object_get(z, "duration_ms")), 250);
    assert_true(json_is_null(json_object_get(z, "signal")));
    assert_null(json_object_get(z, "lease_id"));
    assert_int_equal(json_array_size(json_object_get(z, "outputs")), 1);
    assert_int_equal(skipped(j), 0);
    assert_null(json_object_get(j, "skipped"));
    json_decref(j);

    /* found across DAGs, the same answer */
    json_t *j2 = NULL;
    assert_int_equal(get(f, "/api/v1/runs/good?dag=d", &j), 200);
    assert_int_equal(get(f, "/api/v1/runs/good", &j2), 200);
    assert_true(json_equal(j, j2));
    json_decref(j);
    json_decref(j2);
}

/* A run record of the wrong shape, asked for: 500 naming it and what the
 * decoder said, logged; never a half-read run. */
static void
test_damaged_run(void **state)
{
    struct fx *f = *state;
    json_t *j = NULL;
    assert_int_equal(get(f, "/api/v1/runs/bad?dag=d", &j), 500);
    assert_error(j, "internal", "run 'bad' of DAG 'd' cannot be read",
                 "run record: field 'state' must be a string", NULL);
    json_decref(j);
    assert_true(logged(f, "CAIRN-RECORD-BAD", "run 'bad' of DAG 'd' cannot be read"));

    assert_int_equal(get(f, "/api/v1/runs/bad", &j), 500);
    assert_error(j, "internal", "run 'bad' of DAG 'd'", "field 'state' must be a string", NULL);
    json_decref(j);

    /* every route that needs the run */
    static const char *const paths[] = {
        "/api/v1/runs/bad/artifacts?dag=d",
        "/api/v1/runs/bad/tasks/zeta/attempts?dag=d",
        "/api/v1/runs/bad/tasks/zeta/logs",
        "/api/v1/runs/bad/artifacts/zeta/out.txt?dag=d",
        "/api/v1/runs/bad/artifacts/zeta/out.txt/content",
        "/api/v1/runs/bad/artifacts/zeta/out.txt/lineage?dag=d",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        assert_int_equal(get(f, paths[i], &j), 500);
        assert_error(j, "internal", "run 'bad' of DAG 'd' cannot be read", NULL);
        json_decref(j);
    }
    assert_int_equal(request(f, "POST", "/api/v1/runs/bad/retry", NULL, &j), 500);
    assert_error(j, "internal", "run 'bad' of DAG 'd' cannot be read", NULL);
    json_decref(j);
}

/* A run record of a newer version: refused with the decoder's message,
 * with the DAG named and when the run is looked up across DAGs. */
static void
test_newer_run(void **state)
{
    struct fx *f = *state;
    json_t *j = NULL;
    assert_int_equal(get(f, "/api/v1/runs/new?dag=d", &j), 500);
    assert_error(j, "internal", "run 'new' of DAG 'd' cannot be read",
                 "run record has record version 99; this build reads versions 1 to 1", NULL);
    json_decref(j);
    assert_int_equal(get(f, "/api/v1/runs/new", &j), 500);
    assert_error(j, "internal", "run 'new' of DAG 'd' cannot be read", "record version 99", NULL);
    json_decref(j);
    assert_true(logged(f, "CAIRN-RECORD-BAD", "record version 99"));
    /* no such run is still a 404 */
    assert_int_equal(get(f, "/api/v1/runs/none", &j), 404);
    assert_error(j, "not_found", "no run 'none'", NULL);
    json_decref(j);
}

/* Lists leave damaged records out and say how many (those the store itself
 * cannot parse, the version 99 one, are left out by the store). */
static void
test_lists_skip(void **state)
{
    struct fx *f = *state;
    json_t *j = NULL;
    assert_int_equal(get(f, "/api/v1/runs?dag=d", &j), 200);
    assert_names(json_object_get(j, "runs"), "run_id", "holes,good");
    assert_int_equal(skipped(j), 1);
    json_decref(j);
    assert_true(logged(f, "CAIRN-RECORD-BAD", "skipping the run at d/bad"));

    assert_int_equal(get(f, "/api/v1/runs", &j), 200);
    assert_names(json_object_get(j, "runs"), "run_id", "holes,good");
    assert_int_equal(skipped(j), 1);
    json_decref(j);

    /* a run with a damaged task instance: the others, and the count */
    assert_int_equal(get(f, "/api/v1/runs/holes?dag=d", &j), 200);
    assert_names(json_object_get(j, "tasks"), "task", "zeta");
    assert_int_equal(skipped(j), 1);
    json_decref(j);
    assert_true(logged(f, "CAIRN-RECORD-BAD",
                       "skipping the task instance at d/holes/alpha: task instance record: "
                       "field 'task' must be a string"));

    assert_int_equal(get(f, "/api/v1/runs/holes/tasks/zeta/attempts?dag=d", &j), 200);
    assert_int_equal(json_array_size(json_object_get(j, "attempts")), 1);
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(json_object_get(j, "attempts"), 0), "attempt")),
                     1);
    assert_int_equal(skipped(j), 1);
    json_decref(j);

    /* the damaged pointer is left out; the superseded-looking v99 one is
     * left out by the store */
    assert_int_equal(get(f, "/api/v1/runs/holes/artifacts?dag=d", &j), 200);
    assert_names(json_object_get(j, "artifacts"), "name", "ok.txt");
    assert_int_equal(skipped(j), 1);
    json_decref(j);

    /* metrics: the bad run and the damaged task instance */
    assert_int_equal(get(f, "/api/v1/dags/d/metrics", &j), 200);
    assert_names(json_object_get(j, "runs"), "run_id", "holes,good");
    assert_int_equal(skipped(j), 2);
    json_decref(j);

    /* a list with nothing damaged says nothing */
    assert_int_equal(get(f, "/api/v1/runs/good/artifacts?dag=d", &j), 200);
    assert_names(json_object_get(j, "artifacts"), "name", "out.txt");
    assert_null(json_object_get(j, "skipped"));
    json_decref(j);
}

/* One damaged record an answer depends on: 500, whichever route. */
static void
test_damaged_dependencies(void **state)
{
    struct fx *f = *state;
    json_t *j = NULL;
    /* the latest attempt is the damaged one: its log is not guessed */
    assert_int_equal(get(f, "/api/v1/runs/holes/tasks/zeta/logs?dag=d", &j), 500);
    assert_error(j, "internal", "attempt 2 of task 'zeta' of run 'holes' (DAG 'd') cannot be read",
                 "attempt record: field 'attempt' must be an integer", NULL);
    json_decref(j);
    assert_int_equal(get(f, "/api/v1/runs/holes/tasks/zeta/logs?dag=d&attempt=1", &j), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "attempt")), 1);
    json_decref(j);
    assert_int_equal(get(f, "/api/v1/runs/holes/tasks/zeta/logs?dag=d&attempt=5", &j), 404);
    json_decref(j);

    /* a task instance that does not decode */
    assert_int_equal(get(f, "/api/v1/runs/holes/tasks/alpha/attempts?dag=d", &j), 500);
    assert_error(j, "internal", "task instance 'alpha' of run 'holes' (DAG 'd') cannot be read",
                 NULL);
    json_decref(j);

    /* pointers: wrong shape, newer version; and why one is missing needs
     * the task instance */
    assert_int_equal(get(f, "/api/v1/runs/holes/artifacts/zeta/out.txt?dag=d", &j), 500);
    assert_error(j, "internal",
                 "artifact pointer zeta/out.txt of run 'holes' (DAG 'd') cannot be read",
                 "artifact pointer: field 'sha256' is missing", NULL);
    json_decref(j);
    assert_int_equal(get(f, "/api/v1/runs/holes/artifacts/zeta/out.txt/content?dag=d", &j), 500);
    assert_error(j, "internal", "field 'sha256' is missing", NULL);
    json_decref(j);
    assert_int_equal(get(f, "/api/v1/runs/holes/artifacts/zeta/v99.txt?dag=d", &j), 500);
    assert_error(j, "internal", "artifact pointer zeta/v99.txt", "record version 99", NULL);
    json_decref(j);
    assert_int_equal(get(f, "/api/v1/runs/holes/artifacts/alpha/x?dag=d", &j), 500);
    assert_error(j, "internal", "task instance 'alpha' of run 'holes'", NULL);
    json_decref(j);

    /* lineage of a good pointer whose attempt record is damaged */
    assert_int_equal(get(f, "/api/v1/runs/holes/artifacts/zeta/ok.txt/lineage?dag=d", &j), 500);
    assert_error(j, "internal", "attempt 2 of task 'zeta' of run 'holes' (DAG 'd') cannot be read",
                 NULL);
    json_decref(j);
    /* and of the good run: whole */
    assert_int_equal(get(f, "/api/v1/runs/good/artifacts/zeta/out.txt/lineage?dag=d", &j), 200);
    json_t *node = json_object_get(j, "lineage");
    assert_string_equal(json_string_value(json_object_get(node, "worker")), "w1");
    assert_true(json_is_true(json_object_get(node, "provenance")));
    assert_string_equal(json_string_value(json_object_get(node, "logical_date")),
                        "2026-01-02T00:00:00Z");
    assert_int_equal(json_integer_value(json_object_get(j, "producers")), 2);
    assert_names(json_object_get(j, "also_produced_by"), "run_id", "holes");
    json_decref(j);
}

/* A run in memory: its tasks in the DAG's order and params_effective from
 * its DAG version and overrides, in the trigger's answer and in the run's. */
static void
test_run_in_memory(void **state)
{
    struct fx *f = *state;
    json_t *j = NULL;
    assert_int_equal(request(f, "POST", "/api/v1/dags/d/trigger",
                             "{\"params\": {\"a\": 5}, \"logical_date\": \"2026-02-01\"}", &j),
                     201);
    json_t *want = json_pack("{s:s}", "a", "5");
    json_t *want_eff = json_pack("{s:s, s:s}", "a", "5", "b", "x");
    assert_true(json_equal(json_object_get(j, "params"), want));
    assert_true(json_equal(json_object_get(j, "params_effective"), want_eff));
    assert_names(json_object_get(j, "tasks"), "task", "zeta,alpha");
    char *path =
        xasprintf("/api/v1/runs/%s?dag=d", json_string_value(json_object_get(j, "run_id")));
    json_decref(j);
    assert_int_equal(get(f, path, &j), 200);
    assert_true(json_equal(json_object_get(j, "params"), want));
    assert_true(json_equal(json_object_get(j, "params_effective"), want_eff));
    assert_string_equal(json_string_value(json_object_get(j, "state")), "running");
    assert_names(json_object_get(j, "tasks"), "task", "zeta,alpha");
    json_decref(j);
    free(path);
    json_decref(want);
    json_decref(want_eff);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stored_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lists_skip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_dependencies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_in_memory, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
