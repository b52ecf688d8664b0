/* api_ml.c - the API's ML routes (see docs/api.md): artifact pointers and
 * bytes, lineage, metrics across runs, artifact collection.
 *
 * Everything here reads committed state through short read transactions on
 * the loop thread, like the rest of the API; collection writes through the
 * engine (sched_gc_artifacts).
 */
#include "api_ml.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "artifact.h"
#include "engine.h"
#include "err.h"
#include "log.h"
#include "store.h"
#include "util.h"

#define SEP "\x1f"

static const char *
jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void
respond_status(struct http_conn *c, int status, const char *msg)
{
    http_respond_error(c, status,
                       status == 404   ? "not_found"
                       : status == 409 ? "conflict"
                       : status == 400 ? "bad_request"
                       : status == 503 ? "unavailable"
                                       : "internal",
                       "%s", msg);
}

/* Why dag/run/task has no pointer called name: no such task, the task
 * stored no such output, or gc removed the pointer. */
static void
explain_missing(struct store_txn *t, const char *dag, const char *run_id, const char *task,
                const char *name, char *err, size_t errlen)
{
    char *tikey = xasprintf("%s" SEP "%s" SEP "%s", dag, run_id, task);
    void *ti = NULL;
    if (store_get(t, STORE_TIS, tikey, &ti) != 0) {
        snprintf(err, errlen, "run '%s' of DAG '%s' has no task '%s'", run_id, dag, task);
        free(tikey);
        return;
    }
    free(tikey);
    json_t *outs = json_object_get(ti, "outputs");
    struct sb names;
    sb_init(&names);
    bool had = false;
    size_t i;
    json_t *o;
    json_array_foreach(outs, i, o)
    {
        const char *n = jstr(o, "name");
        if (!n)
            continue;
        had |= !strcmp(n, name);
        sb_printf(&names, "%s%s", names.len ? ", " : "", n);
    }
    if (had)
        snprintf(err, errlen,
                 "artifact %s/%s of run '%s' (DAG '%s') was removed by `cairn artifacts gc`", task,
                 name, run_id, dag);
    else if (names.len)
        snprintf(err, errlen,
                 "task '%s' of run '%s' (DAG '%s') has no artifact '%s' (it stored: %s)", task,
                 run_id, dag, name, names.buf);
    else
        snprintf(err, errlen,
                 "task '%s' of run '%s' (DAG '%s') has no artifact '%s' (it has "
                 "stored none%s)",
                 task, run_id, dag, name, strcmp(jstr(ti, "state") ?: "", "success") ? " yet" : "");
    sb_free(&names);
    json_decref(ti);
}

int
api_ml_pointer(struct sched *s, struct store_txn *t, const char *dag, const char *run_id,
               const char *task, const char *name, json_t **out, int *status, char *err,
               size_t errlen)
{
    json_t *run = api_load_run(s, t, dag, run_id, status, err, errlen);
    if (!run)
        return -1;
    char *rdag = xstrdup(jstr(run, "dag") ?: "");
    json_decref(run);
    char *key = xasprintf("%s" SEP "%s" SEP "%s" SEP "%s", rdag, run_id, task, name);
    void *p = NULL;
    int rc = store_get(t, STORE_ARTIFACTS, key, &p);
    free(key);
    if (rc != 0) {
        *status = rc == CAIRN_ENOENT ? 404 : 500;
        if (rc == CAIRN_ENOENT)
            explain_missing(t, rdag, run_id, task, name, err, errlen);
        else
            snprintf(err, errlen, "cannot read the artifact pointer: %s", cairn_strerror(rc));
        free(rdag);
        return -1;
    }
    free(rdag);
    json_object_del(p, "v");
    *out = p;
    return 0;
}

/* The pointer of one artifact, through its own read transaction. */
static json_t *
load_pointer(struct sched *s, const struct http_req *req, const char *run_id, const char *task,
             const char *name, int *status, char *err, size_t errlen)
{
    char *dag = api_query(req, "dag");
    struct store_txn *t = NULL;
    json_t *p = NULL;
    if (store_txn_begin(sched_store(s), false, &t) != 0) {
        *status = 503;
        snprintf(err, errlen, "cannot read the state store");
    } else {
        api_ml_pointer(s, t, dag, run_id, task, name, &p, status, err, errlen);
        store_txn_abort(t);
    }
    free(dag);
    return p;
}

void
api_ml_artifact(struct sched *s, struct http_conn *c, const struct http_req *req,
                const struct route_params *p)
{
    const char *run_id = route_param(p, "run"), *task = route_param(p, "task"),
               *name = route_param(p, "name");
    char err[512];
    int status = 500;
    json_t *ptr = load_pointer(s, req, run_id, task, name, &status, err, sizeof(err));
    if (!ptr) {
        respond_status(c, status, err);
        return;
    }
    http_respond_json(c, 200, ptr);
}

/* A blob on its way out: hashed as it is read, the last chunk held back
 * unless the whole matches the digest it is stored under. */
struct blob_send {
    struct art_hasher *h;
    char want[ART_HEX_LEN + 1];
    char *what; /* "dag/run/task/name", for the log */
};

static int
blob_check_cb(void *ud, const void *data, size_t n, int last)
{
    struct blob_send *b = ud;
    if (art_hasher_update(b->h, data, n) != 0)
        return -1;
    if (!last)
        return 0;
    char got[ART_HEX_LEN + 1];
    if (art_hasher_final(b->h, got, NULL) != 0)
        return -1;
    if (strcmp(got, b->want) != 0) {
        LOG(LOG_ERR, "CAIRN-ARTIFACT-CORRUPT",
            "artifact %s: the stored blob %s hashes to %s: it is damaged; the download was "
            "cut short (restore the blob, or run the task that made it again)",
            b->what, b->want, got);
        return -1;
    }
    return 0;
}

static void
blob_done_cb(void *ud, int ok)
{
    struct blob_send *b = ud;
    (void)ok;
    art_hasher_free(b->h);
    free(b->what);
    free(b);
}

void
api_ml_artifact_content(struct sched *s, struct http_conn *c, const struct http_req *req,
                        const struct route_params *p)
{
    const char *run_id = route_param(p, "run"), *task = route_param(p, "task"),
               *name = route_param(p, "name");
    char err[512];
    int status = 500;
    json_t *ptr = load_pointer(s, req, run_id, task, name, &status, err, sizeof(err));
    if (!ptr) {
        respond_status(c, status, err);
        return;
    }
    const char *sha = jstr(ptr, "sha256");
    json_int_t size = json_integer_value(json_object_get(ptr, "size"));
    char *path = NULL;
    int rc = sha ? art_blob_path(sched_artifacts(s), sha, &path) : CAIRN_EINVAL;
    int fd = rc == 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        http_respond_error(c, 500, "internal",
                           "the blob of artifact %s/%s (sha256 %s) is missing from the "
                           "artifact store%s%s",
                           task, name, sha ? sha : "?", path ? ": " : "", path ? path : "");
        if (fd >= 0)
            close(fd);
    } else if ((json_int_t)st.st_size != size) {
        http_respond_error(c, 500, "internal",
                           "the blob of artifact %s/%s (sha256 %s) has %" PRId64
                           " bytes, its pointer says %" JSON_INTEGER_FORMAT
                           ": the artifact store is damaged",
                           task, name, sha, (int64_t)st.st_size, size);
        close(fd);
    } else {
        struct blob_send *b = xcalloc(1, sizeof(*b));
        if (art_hasher_new(&b->h) != 0) {
            free(b);
            close(fd);
            http_respond_error(c, 500, "internal", "out of memory");
        } else {
            snprintf(b->want, sizeof(b->want), "%s", sha);
            b->what = xasprintf("%s/%s/%s/%s", jstr(ptr, "dag") ?: "?", run_id, task, name);
            struct http_file_body fb = {fd, 0, (uint64_t)size, blob_check_cb, blob_done_cb, b};
            if (size == 0)
                fb.check = NULL; /* nothing to read; the empty blob's name was checked on put */
            http_respond_file(c, 200, "application/octet-stream", &fb);
        }
    }
    free(path);
    json_decref(ptr);
}

/* ---- lineage ------------------------------------------------------------- */

#define LINEAGE_DEPTH_MAX 64
#define LINEAGE_ALSO_MAX 20

struct lineage {
    struct sched *s;
    struct store_txn *t;
    json_t *seen; /* "dag␟run␟task␟attempt" -> true: attempts already expanded */
};

/* The pointers (index entries) with digest sha, earliest first. */
struct idx_ctx {
    json_t *entries;
};

static int
idx_collect_cb(void *ud, const char *key, const void *json)
{
    struct idx_ctx *ic = ud;
    (void)key;
    json_t *e = json_deep_copy((json_t *)json);
    json_object_del(e, "v");
    json_array_append_new(ic->entries, e);
    return 0;
}

static int
created_asc(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    /* ISO 8601 UTC with milliseconds: text order is time order */
    int c = strcmp(jstr(x, "created_at") ?: "", jstr(y, "created_at") ?: "");
    if (c)
        return c;
    c = strcmp(jstr(x, "run_id") ?: "", jstr(y, "run_id") ?: "");
    if (c)
        return c;
    c = strcmp(jstr(x, "task") ?: "", jstr(y, "task") ?: "");
    return c ? c : strcmp(jstr(x, "name") ?: "", jstr(y, "name") ?: "");
}

static json_t *
producers_of(struct store_txn *t, const char *sha)
{
    struct idx_ctx ic = {json_array()};
    char *prefix = xasprintf("%s" SEP, sha);
    store_scan(t, STORE_ARTIFACT_SHAS, prefix, idx_collect_cb, &ic);
    free(prefix);
    size_t n = json_array_size(ic.entries);
    json_t **v = xcalloc(n + 1, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(ic.entries, i));
    qsort(v, n, sizeof(*v), created_asc);
    json_t *sorted = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(sorted, v[i]);
    free(v);
    json_decref(ic.entries);
    return sorted;
}

static json_t *
get_pointer(struct store_txn *t, const char *dag, const char *run_id, const char *task,
            const char *name)
{
    char *key = xasprintf("%s" SEP "%s" SEP "%s" SEP "%s", dag, run_id, task, name);
    void *p = NULL;
    if (store_get(t, STORE_ARTIFACTS, key, &p) != 0)
        p = NULL;
    free(key);
    if (p)
        json_object_del(p, "v");
    return p;
}

/* The pointer an index entry names: the current one if it still holds
 * those bytes, else the earlier attempt's, kept (superseded) when a cleared
 * task stored new outputs. */
static json_t *
pointer_of_entry(struct store_txn *t, const json_t *e, const char *sha)
{
    const char *dag = jstr(e, "dag") ?: "", *run_id = jstr(e, "run_id") ?: "",
               *task = jstr(e, "task") ?: "", *name = jstr(e, "name") ?: "";
    json_t *p = get_pointer(t, dag, run_id, task, name);
    if (p && (!sha || !strcmp(jstr(p, "sha256") ?: "", sha)))
        return p;
    json_decref(p);
    char *key = xasprintf("%s" SEP "%s" SEP "%s" SEP "%s" SEP "attempt-%06" JSON_INTEGER_FORMAT,
                          dag, run_id, task, name,
                          json_integer_value(json_object_get(e, "attempt")));
    void *h = NULL;
    if (store_get(t, STORE_ARTIFACTS, key, &h) != 0)
        h = NULL;
    free(key);
    if (h)
        json_object_del(h, "v");
    return h;
}

static json_t *lineage_node(struct lineage *lg, json_t *ptr, int depth);

/* An input of an attempt as a node: the upstream pointer it came from,
 * expanded, or a placeholder node saying why it cannot be. */
static json_t *
lineage_input(struct lineage *lg, const json_t *in, const char *dag, const char *run_id, int depth)
{
    json_t *o = json_deep_copy(in);
    const char *task = jstr(in, "task"), *file = jstr(in, "file"), *sha = jstr(in, "sha256");
    json_t *ptr = task && file ? get_pointer(lg->t, dag, run_id, task, file) : NULL;
    if (ptr && sha && strcmp(jstr(ptr, "sha256") ?: "", sha) != 0) {
        /* the upstream's pointer changed since: find the bytes by digest */
        json_decref(ptr);
        ptr = NULL;
    }
    if (!ptr && sha) {
        json_t *prods = producers_of(lg->t, sha);
        json_t *e = json_array_get(prods, 0);
        if (e)
            ptr = pointer_of_entry(lg->t, e, sha);
        json_decref(prods);
    }
    if (ptr) {
        json_object_set_new(o, "from", lineage_node(lg, ptr, depth + 1));
        json_decref(ptr);
    } else {
        json_object_set_new(o, "from", json_null());
        json_object_set_new(o, "removed", json_true());
    }
    return o;
}

/* A pointer with the attempt that stored it and, recursively, the
 * artifacts that attempt was given. */
static json_t *
lineage_node(struct lineage *lg, json_t *ptr, int depth)
{
    json_t *n = json_deep_copy(ptr);
    const char *dag = jstr(ptr, "dag") ?: "", *run_id = jstr(ptr, "run_id") ?: "",
               *task = jstr(ptr, "task") ?: "";
    int attempt = (int)json_integer_value(json_object_get(ptr, "attempt"));
    char *runkey = xasprintf("%s" SEP "%s", dag, run_id);
    void *run = NULL;
    if (store_get(lg->t, STORE_RUNS, runkey, &run) == 0) {
        json_object_set(n, "logical_date", json_object_get(run, "logical_date"));
        json_object_set(n, "dag_version", json_object_get(run, "dag_version"));
        json_decref(run);
    }
    free(runkey);
    char *akey = xasprintf("%s" SEP "%s" SEP "%s" SEP "%06d", dag, run_id, task, attempt);
    void *att = NULL;
    if (store_get(lg->t, STORE_ATTEMPTS, akey, &att) != 0)
        att = NULL;
    static const char *const fields[] = {"worker", "started_at", "ended_at",
                                         "image",  "argv",       "env"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        json_t *v = att ? json_object_get(att, fields[i]) : NULL;
        json_object_set_new(n, fields[i], v ? json_incref(v) : json_null());
    }
    json_t *inputs = att ? json_object_get(att, "inputs") : NULL;
    json_object_set_new(n, "provenance", json_boolean(inputs != NULL));
    if (json_object_get(lg->seen, akey)) {
        json_object_set_new(n, "repeated", json_true()); /* its inputs are shown above */
        json_object_set_new(n, "inputs", json_null());
    } else if (!inputs) {
        json_object_set_new(n, "inputs", json_null()); /* not recorded (older build) */
    } else if (depth >= LINEAGE_DEPTH_MAX) {
        json_object_set_new(n, "truncated", json_true());
        json_object_set_new(n, "inputs", json_null());
    } else {
        json_object_set_new(lg->seen, akey, json_true());
        json_t *arr = json_array();
        size_t i;
        json_t *in;
        json_array_foreach(inputs, i, in)
        {
            json_array_append_new(arr, lineage_input(lg, in, dag, run_id, depth));
        }
        json_object_set_new(n, "inputs", arr);
    }
    json_decref(att);
    free(akey);
    return n;
}

/* The answer for the artifact ptr: its lineage and who else stored the
 * same bytes. */
static json_t *
lineage_answer(struct lineage *lg, json_t *ptr)
{
    const char *sha = jstr(ptr, "sha256") ?: "";
    json_t *prods = producers_of(lg->t, sha);
    json_t *also = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(prods, i, e)
    {
        if (!strcmp(jstr(e, "dag") ?: "", jstr(ptr, "dag") ?: "") &&
            !strcmp(jstr(e, "run_id") ?: "", jstr(ptr, "run_id") ?: "") &&
            !strcmp(jstr(e, "task") ?: "", jstr(ptr, "task") ?: "") &&
            !strcmp(jstr(e, "name") ?: "", jstr(ptr, "name") ?: ""))
            continue;
        if (json_array_size(also) < LINEAGE_ALSO_MAX)
            json_array_append(also, e);
    }
    json_t *o = json_pack("{s:s, s:I, s:o, s:o}", "sha256", sha, "producers",
                          (json_int_t)json_array_size(prods), "also_produced_by", also, "lineage",
                          lineage_node(lg, ptr, 0));
    json_decref(prods);
    return o;
}

static bool
hex_prefix(const char *s)
{
    size_t n = strlen(s);
    if (n < 8 || n > ART_HEX_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

struct distinct_ctx {
    json_t *shas; /* sha -> first index entry */
};

static int
distinct_cb(void *ud, const char *key, const void *json)
{
    struct distinct_ctx *dc = ud;
    (void)json;
    const char *sep = strchr(key, '\x1f');
    if (!sep)
        return 0;
    char *sha = xstrndup(key, (size_t)(sep - key));
    if (!json_object_get(dc->shas, sha))
        json_object_set_new(dc->shas, sha, json_true());
    free(sha);
    return json_object_size(dc->shas) > 10; /* enough to say it is ambiguous */
}

static void
lineage_respond(struct sched *s, struct http_conn *c, struct store_txn *t, json_t *ptr)
{
    struct lineage lg = {s, t, json_object()};
    json_t *o = lineage_answer(&lg, ptr);
    json_decref(lg.seen);
    store_txn_abort(t);
    json_decref(ptr);
    http_respond_json(c, 200, o);
}

void
api_ml_lineage_sha(struct sched *s, struct http_conn *c, const struct http_req *req,
                   const struct route_params *p)
{
    const char *sha = route_param(p, "sha");
    if (!hex_prefix(sha)) {
        http_respond_error(c, 400, "bad_request",
                           "'%s' is not a SHA-256 or a prefix of one (8 to 64 lowercase hex "
                           "characters)",
                           sha);
        return;
    }
    struct store_txn *t = NULL;
    if (store_txn_begin(sched_store(s), false, &t) != 0) {
        http_respond_error(c, 503, "unavailable", "cannot read the state store");
        return;
    }
    struct distinct_ctx dc = {json_object()};
    store_scan(t, STORE_ARTIFACT_SHAS, sha, distinct_cb, &dc);
    size_t nd = json_object_size(dc.shas);
    if (nd != 1) {
        store_txn_abort(t);
        if (nd == 0)
            http_respond_error(c, 404, "not_found",
                               "no stored artifact has sha256 %s%s (or its pointers were "
                               "removed by `cairn artifacts gc`)",
                               sha, strlen(sha) < ART_HEX_LEN ? "..." : "");
        else
            http_respond_error(c, 409, "conflict",
                               "sha256 prefix %s matches %s%zu different artifacts; give more "
                               "characters",
                               sha, nd > 10 ? "more than " : "", nd > 10 ? (size_t)10 : nd);
        json_decref(dc.shas);
        return;
    }
    char *full = xstrdup(json_object_iter_key(json_object_iter(dc.shas)));
    json_t *prods = producers_of(t, full);
    json_decref(dc.shas);
    json_t *e = json_array_get(prods, 0);
    json_t *ptr = e ? pointer_of_entry(t, e, full) : NULL;
    json_decref(prods);
    free(full);
    if (!ptr) {
        store_txn_abort(t);
        http_respond_error(c, 500, "internal", "the index names a pointer that is not stored");
        return;
    }
    lineage_respond(s, c, t, ptr);
}

void
api_ml_lineage_artifact(struct sched *s, struct http_conn *c, const struct http_req *req,
                        const struct route_params *p)
{
    const char *run_id = route_param(p, "run"), *task = route_param(p, "task"),
               *name = route_param(p, "name");
    char err[512], *dag = api_query(req, "dag");
    int status = 500;
    struct store_txn *t = NULL;
    json_t *ptr = NULL;
    if (store_txn_begin(sched_store(s), false, &t) != 0) {
        free(dag);
        http_respond_error(c, 503, "unavailable", "cannot read the state store");
        return;
    }
    int rc = api_ml_pointer(s, t, dag, run_id, task, name, &ptr, &status, err, sizeof(err));
    free(dag);
    if (rc != 0) {
        store_txn_abort(t);
        respond_status(c, status, err);
        return;
    }
    lineage_respond(s, c, t, ptr);
}

/* ---- metrics across runs ------------------------------------------------- */

#define METRICS_LAST_DEFAULT 20
#define METRICS_LAST_MAX 1000

static int
runs_collect_cb(void *ud, const char *key, const void *json)
{
    (void)key;
    json_array_append(ud, (json_t *)json);
    return 0;
}

/* Newest logical date first (a backfill of old dates does not jump to the
 * top of a drift table); runs of one date, newest created first. */
static int
logical_desc(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = strcmp(jstr(y, "logical_date") ?: "", jstr(x, "logical_date") ?: "");
    if (c)
        return c;
    json_int_t sx = json_integer_value(json_object_get(x, "seq"));
    json_int_t sy = json_integer_value(json_object_get(y, "seq"));
    return sx < sy ? 1 : sx > sy ? -1 : 0;
}

struct metrics_ctx {
    const char *metric; /* filter, or NULL */
    json_t *row;        /* "task.metric" -> number */
    json_t *columns;    /* "task.metric" -> [task, metric] */
};

static int
ti_metrics_cb(void *ud, const char *key, const void *json)
{
    struct metrics_ctx *mc = ud;
    (void)key;
    const char *task = jstr(json, "task");
    json_t *mets = json_object_get(json, "metrics");
    const char *k;
    json_t *v;
    if (!task || !json_is_object(mets))
        return 0;
    json_object_foreach(mets, k, v)
    {
        if (!json_is_number(v))
            continue;
        char *col = xasprintf("%s.%s", task, k);
        if (!mc->metric || !strcmp(mc->metric, k) || !strcmp(mc->metric, col)) {
            json_object_set(mc->row, col, v);
            if (!json_object_get(mc->columns, col))
                json_object_set_new(mc->columns, col, json_pack("[s, s]", task, k));
        }
        free(col);
    }
    return 0;
}

/* Column order: tasks as the DAG (arg, may be NULL) lists them (unknown
 * ones last, by name), then metric names. */
static long
col_task_index(const struct dag *d, const char *task)
{
    long i = d ? dag_task_index(d, task) : -1;
    return i < 0 ? 1L << 30 : i;
}

static int
col_cmp(const void *a, const void *b, void *arg)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    const char *tx = json_string_value(json_array_get(x, 0)) ?: "";
    const char *ty = json_string_value(json_array_get(y, 0)) ?: "";
    long ix = col_task_index(arg, tx), iy = col_task_index(arg, ty);
    if (ix != iy)
        return ix < iy ? -1 : 1;
    int c = strcmp(tx, ty);
    if (c)
        return c;
    return strcmp(json_string_value(json_array_get(x, 1)) ?: "",
                  json_string_value(json_array_get(y, 1)) ?: "");
}

void
api_ml_metrics(struct sched *s, struct http_conn *c, const struct http_req *req,
               const struct route_params *p)
{
    const char *dag = route_param(p, "dag");
    char *metric = api_query(req, "metric"), *lasts = api_query(req, "last");
    long last = METRICS_LAST_DEFAULT;
    if (lasts) {
        char *end;
        last = strtol(lasts, &end, 10);
        if (*end || last <= 0) {
            http_respond_error(c, 400, "bad_request", "'last' must be a positive number, not '%s'",
                               lasts);
            goto out;
        }
        if (last > METRICS_LAST_MAX)
            last = METRICS_LAST_MAX;
    }
    if (metric && !*metric) {
        free(metric);
        metric = NULL;
    }
    struct store_txn *t = NULL;
    if (store_txn_begin(sched_store(s), false, &t) != 0) {
        http_respond_error(c, 503, "unavailable", "cannot read the state store");
        goto out;
    }
    json_t *runs = json_array();
    char *prefix = xasprintf("%s" SEP, dag);
    store_scan(t, STORE_RUNS, prefix, runs_collect_cb, runs);
    free(prefix);
    struct sched_dag *sd = sched_find_dag(s, dag);
    if (!sd && json_array_size(runs) == 0) {
        store_txn_abort(t);
        json_decref(runs);
        http_respond_error(c, 404, "not_found", "no DAG '%s'", dag);
        goto out;
    }
    size_t n = json_array_size(runs);
    json_t **v = xcalloc(n + 1, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(runs, i);
    qsort(v, n, sizeof(*v), logical_desc);
    struct metrics_ctx mc = {metric, NULL, json_object()};
    json_t *rows = json_array();
    for (size_t i = 0; i < n && (long)i < last; i++) {
        const char *run_id = jstr(v[i], "run_id") ?: "";
        mc.row = json_object();
        prefix = xasprintf("%s" SEP "%s" SEP, dag, run_id);
        store_scan(t, STORE_TIS, prefix, ti_metrics_cb, &mc);
        free(prefix);
        json_array_append_new(rows,
                              json_pack("{s:s, s:O?, s:O?, s:O?, s:O?, s:o}", "run_id", run_id,
                                        "logical_date", json_object_get(v[i], "logical_date"),
                                        "state", json_object_get(v[i], "state"), "created_at",
                                        json_object_get(v[i], "created_at"), "ended_at",
                                        json_object_get(v[i], "ended_at"), "metrics", mc.row));
    }
    store_txn_abort(t);
    free(v);
    json_decref(runs);

    size_t nc = json_object_size(mc.columns);
    json_t **cols = xcalloc(nc + 1, sizeof(*cols));
    size_t k = 0;
    const char *ck;
    json_t *cv;
    json_object_foreach(mc.columns, ck, cv)
    {
        cols[k++] = cv;
    }
    qsort_r(cols, nc, sizeof(*cols), col_cmp, sd && sd->cur ? sd->cur->dag : NULL);
    json_t *columns = json_array();
    for (size_t i = 0; i < nc; i++)
        json_array_append_new(columns,
                              json_sprintf("%s.%s", json_string_value(json_array_get(cols[i], 0)),
                                           json_string_value(json_array_get(cols[i], 1))));
    free(cols);
    json_decref(mc.columns);
    http_respond_json(c, 200,
                      json_pack("{s:s, s:s?, s:o, s:o}", "dag", dag, "metric", metric, "columns",
                                columns, "runs", rows));
out:
    free(metric);
    free(lasts);
}

/* ---- artifact collection ------------------------------------------------- */

#define GC_MIN_AGE_DEFAULT_MS ((int64_t)3600 * 1000)

static void
gc_done_cb(void *ud, json_t *report, int rc, const char *err)
{
    struct http_conn *c = ud;
    if (rc) {
        /* part of the sweep failed: say so, with what was done */
        json_object_set_new(report, "error", json_string(err ? err : "blob removal failed"));
        http_respond_json(c, 500, report);
        return;
    }
    http_respond_json(c, 200, report);
}

/* An optional non-negative integer member; -1 and an answer if it is not. */
static int
gc_int(struct http_conn *c, json_t *body, const char *name, int64_t min, int64_t *out)
{
    json_t *v = json_object_get(body, name);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min) {
        http_respond_error(c, 400, "bad_request", "'%s' must be an integer of at least %" PRId64,
                           name, min);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

void
api_ml_gc(struct sched *s, struct http_conn *c, const struct http_req *req,
          const struct route_params *p)
{
    json_t *body = NULL;
    json_error_t jerr;
    if (req->body_len) {
        body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(body)) {
            json_decref(body);
            http_respond_error(c, 400, "bad_request", "body must be a JSON object: %s", jerr.text);
            return;
        }
    } else {
        body = json_object();
    }
    static const char *const known[] = {"keep_last", "older_than_ms", "min_age_ms", "dry_run"};
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        size_t i;
        for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            if (!strcmp(k, known[i]))
                break;
        if (i == sizeof(known) / sizeof(known[0])) {
            http_respond_error(c, 400, "bad_request",
                               "unknown field '%s' (keep_last, older_than_ms, min_age_ms, "
                               "dry_run)",
                               k);
            json_decref(body);
            return;
        }
    }
    struct sched_gc_opts o = {0};
    int64_t keep_last = 0;
    o.min_age_ms = GC_MIN_AGE_DEFAULT_MS;
    json_t *dry = json_object_get(body, "dry_run");
    if (gc_int(c, body, "keep_last", 1, &keep_last) ||
        gc_int(c, body, "older_than_ms", 1, &o.older_than_ms) ||
        gc_int(c, body, "min_age_ms", 0, &o.min_age_ms)) {
        json_decref(body);
        return;
    }
    if (dry && !json_is_boolean(dry)) {
        http_respond_error(c, 400, "bad_request", "'dry_run' must be true or false");
        json_decref(body);
        return;
    }
    json_decref(body);
    if (keep_last > 1000000) {
        http_respond_error(c, 400, "bad_request", "'keep_last' is too large");
        return;
    }
    o.keep_last = (int)keep_last;
    o.dry_run = json_is_true(dry);
    char err[512];
    int rc = sched_gc_artifacts(s, &o, gc_done_cb, c, err, sizeof(err));
    if (rc)
        http_respond_error(c, rc == CAIRN_ESTATE ? 409 : 503,
                           rc == CAIRN_ESTATE ? "conflict" : "unavailable", "%s", err);
}
