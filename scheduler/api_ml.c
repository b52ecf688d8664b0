/* api_ml.c - the API's ML routes (see docs/api.md): artifact pointers and
 * bytes, lineage, metrics across runs, artifact collection.
 *
 * Everything here reads committed state through short read transactions on
 * the loop thread, like the rest of the API: every record through
 * api_read.h, decoded into its schema struct, and answered as api_present.h
 * shows it. A record an answer depends on that does not decode (a pointer,
 * its run or attempt, anywhere in a lineage tree) makes the request answer
 * 500 naming it; records of a scan (index entries, the runs and task
 * instances behind metrics) that do not decode are left out and counted in
 * "skipped". Collection writes through the engine (sched_gc_artifacts).
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
#include "api_models.h"
#include "api_present.h"
#include "api_read.h"
#include "artifact.h"
#include "engine.h"
#include "err.h"
#include "log.h"
#include "store.h"
#include "util.h"

/* A string member of an element of the JSON a schema struct carries as is
 * (a task instance's outputs, an attempt's provenance inputs), or NULL. */
static const char *
member_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Add "skipped": n to an answer when records were left out. */
static void
set_skipped(json_t *o, size_t skipped)
{
    if (skipped)
        json_object_set_new(o, "skipped", json_integer((json_int_t)skipped));
}

/* Why dag/run/task has no pointer called name: no such task, the task
 * stored no such output, or gc removed the pointer. 404 with the reason in
 * err, or the status of a task instance record that cannot be read. */
static int
explain_missing(struct store_txn *t, const char *dag, const char *run_id, const char *task,
                const char *name, char *err, size_t errlen)
{
    struct schema_ti ti;
    json_t *rec = NULL;
    int st = api_read_ti(t, dag, run_id, task, &ti, &rec, err, errlen);
    if (st)
        return st; /* 404: "run 'r' of DAG 'd' has no task 't'" */
    struct sb names;
    sb_init(&names);
    bool had = false;
    size_t i;
    json_t *o;
    json_array_foreach(ti.outputs, i, o)
    {
        const char *n = member_str(o, "name");
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
                 task, run_id, dag, name, strcmp(ti.state, "success") ? " yet" : "");
    sb_free(&names);
    json_decref(rec);
    return 404;
}

/* The current pointer dag/run_id/task/name (dag NULL: resolved from the
 * run id). 0 with *a and *rec (a new reference *a borrows from), or a
 * status (404 saying what is missing, 409, 500, 503) with err. */
static int
read_pointer(struct sched *s, struct store_txn *t, const char *dag, const char *run_id,
             const char *task, const char *name, struct schema_artifact *a, json_t **rec, char *err,
             size_t errlen)
{
    struct schema_run run;
    json_t *rrec = NULL;
    int st = api_read_run(s, t, dag, run_id, &run, &rrec, err, errlen);
    if (st)
        return st;
    st = api_read_artifact(t, run.dag, run_id, task, name, API_READ_CURRENT, a, rec, err, errlen);
    if (st == 404)
        st = explain_missing(t, run.dag, run_id, task, name, err, errlen);
    json_decref(rrec);
    return st;
}

int
api_ml_pointer(struct sched *s, struct store_txn *t, const char *dag, const char *run_id,
               const char *task, const char *name, json_t **out, int *status, char *err,
               size_t errlen)
{
    struct schema_artifact a;
    json_t *rec = NULL;
    int st = read_pointer(s, t, dag, run_id, task, name, &a, &rec, err, errlen);
    if (st) {
        *status = st;
        return -1;
    }
    *out = api_present_artifact(&a);
    json_decref(rec);
    return 0;
}

/* The pointer of one artifact, through its own read transaction: 0 with *a
 * and *rec, or a status with err. */
static int
load_pointer(struct sched *s, const struct http_req *req, const char *run_id, const char *task,
             const char *name, struct schema_artifact *a, json_t **rec, char *err, size_t errlen)
{
    char *dag = api_query(req, "dag");
    struct store_txn *t = NULL;
    int st;
    if (store_txn_begin(sched_store(s), false, &t) != 0) {
        snprintf(err, errlen, "cannot read the state store");
        st = 503;
    } else {
        st = read_pointer(s, t, dag, run_id, task, name, a, rec, err, errlen);
        store_txn_abort(t);
    }
    free(dag);
    return st;
}

void
api_ml_artifact(struct sched *s, struct http_conn *c, const struct http_req *req,
                const struct route_params *p)
{
    const char *run_id = route_param(p, "run"), *task = route_param(p, "task"),
               *name = route_param(p, "name");
    char err[512];
    struct schema_artifact a;
    json_t *rec = NULL;
    int st = load_pointer(s, req, run_id, task, name, &a, &rec, err, sizeof(err));
    if (st) {
        api_respond_status(c, st, err);
        return;
    }
    http_respond_json(c, 200, api_present_artifact(&a));
    json_decref(rec);
}

/* A blob on its way out: hashed as it is read, the last chunk held back
 * unless the whole matches the digest it is stored under. */
struct blob_send {
    struct art_hasher *h;
    char want[ART_HEX_LEN + 1];
    char *what; /* what is downloaded, for the log */
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
            "%s: the stored blob %s hashes to %s: it is damaged; the download was "
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

int
api_ml_checked_body(struct http_file_body *fb, const char *sha, const char *what)
{
    struct blob_send *b = xcalloc(1, sizeof(*b));
    if (art_hasher_new(&b->h) != 0) {
        free(b);
        return -1;
    }
    snprintf(b->want, sizeof(b->want), "%s", sha);
    b->what = xstrdup(what);
    fb->check = blob_check_cb;
    fb->done = blob_done_cb;
    fb->ud = b;
    return 0;
}

void
api_ml_artifact_content(struct sched *s, struct http_conn *c, const struct http_req *req,
                        const struct route_params *p)
{
    const char *run_id = route_param(p, "run"), *task = route_param(p, "task"),
               *name = route_param(p, "name");
    char err[512];
    struct schema_artifact a;
    json_t *rec = NULL;
    int st = load_pointer(s, req, run_id, task, name, &a, &rec, err, sizeof(err));
    if (st) {
        api_respond_status(c, st, err);
        return;
    }
    const char *sha = a.sha256;
    json_int_t size = a.size;
    char *path = NULL;
    int rc = art_blob_path(sched_artifacts(s), sha, &path);
    int fd = rc == 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    struct stat st_;
    if (rc == CAIRN_EINVAL) { /* a store without local files (S3) */
        http_respond_error(c, 501, "not_implemented",
                           "the artifact store %.200s has no local files the scheduler could "
                           "serve; the blob of %s/%s is %s there",
                           art_uri(sched_artifacts(s)), task, name, a.uri ? a.uri : sha);
        json_decref(rec);
        return;
    }
    if (fd < 0 || fstat(fd, &st_) != 0) {
        http_respond_error(c, 500, "internal",
                           "the blob of artifact %s/%s (sha256 %s) is missing from the "
                           "artifact store%s%s",
                           task, name, sha, path ? ": " : "", path ? path : "");
        if (fd >= 0)
            close(fd);
    } else if ((json_int_t)st_.st_size != size) {
        http_respond_error(c, 500, "internal",
                           "the blob of artifact %s/%s (sha256 %s) has %" PRId64
                           " bytes, its pointer says %" JSON_INTEGER_FORMAT
                           ": the artifact store is damaged",
                           task, name, sha, (int64_t)st_.st_size, size);
        close(fd);
    } else {
        struct http_file_body fb = {fd, 0, (uint64_t)size, NULL, NULL, NULL};
        char *what = xasprintf("artifact %s/%s/%s/%s", a.dag ? a.dag : "?", run_id, task, name);
        /* size 0: nothing to read; the empty blob's name was checked on put */
        if (size > 0 && api_ml_checked_body(&fb, sha, what) != 0) {
            close(fd);
            http_respond_error(c, 500, "internal", "out of memory");
        } else {
            http_respond_file(c, 200, "application/octet-stream", &fb);
        }
        free(what);
    }
    free(path);
    json_decref(rec);
}

/* ---- lineage ------------------------------------------------------------- */

#define LINEAGE_DEPTH_MAX 64
#define LINEAGE_ALSO_MAX 20

struct lineage {
    struct sched *s;
    struct store_txn *t;
    json_t *seen; /* attempt keys -> true: attempts already expanded */
    int status;   /* nonzero once a record the tree needs could not be read */
    char err[512];
};

/* A record the tree needs could not be read (st, with lg->err set by
 * api_read): the whole answer is that error. Returns st. */
static int
lineage_fail(struct lineage *lg, int st)
{
    if (!lg->status)
        lg->status = st;
    return st;
}

/* Index entries kept past their scan (each struct borrows its rec). */
struct idx_item {
    struct schema_artidx x;
    json_t *rec;
};

struct idx_list {
    struct idx_item *v;
    size_t n, cap;
};

static int
idx_collect_cb(void *ud, const char *sha, const struct schema_artidx *x, json_t *rec)
{
    struct idx_list *l = ud;
    (void)sha;
    xgrow((void **)&l->v, &l->cap, l->n + 1, sizeof(*l->v));
    l->v[l->n].x = *x;
    l->v[l->n].rec = json_incref(rec);
    l->n++;
    return 0;
}

static void
idx_list_free(struct idx_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        json_decref(l->v[i].rec);
    free(l->v);
}

static int
created_asc(const void *a, const void *b)
{
    const struct schema_artidx *x = &((const struct idx_item *)a)->x,
                               *y = &((const struct idx_item *)b)->x;
    if (x->created_at != y->created_at)
        return x->created_at < y->created_at ? -1 : 1;
    int c = strcmp(x->run_id ? x->run_id : "", y->run_id ? y->run_id : "");
    if (c)
        return c;
    c = strcmp(x->task ? x->task : "", y->task ? y->task : "");
    return c ? c : strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

/* The pointers (index entries) with digest sha, earliest first, into *l;
 * entries that do not decode are counted in *skipped (may be NULL). */
static void
producers_of(struct lineage *lg, const char *sha, struct idx_list *l, size_t *skipped)
{
    api_read_artidx(lg->t, sha, false, idx_collect_cb, l, skipped);
    qsort(l->v, l->n, sizeof(*l->v), created_asc);
}

/* The pointer an index entry names: the current one if it still holds
 * those bytes (any bytes when sha is NULL), else the earlier attempt's,
 * kept (superseded) when a cleared task stored new outputs. 0 with *a and
 * *rec, 404 if neither is stored, or the status of a failed read. */
static int
pointer_of_entry(struct lineage *lg, const struct schema_artidx *x, const char *sha,
                 struct schema_artifact *a, json_t **rec)
{
    const char *dag = x->dag ? x->dag : "", *run_id = x->run_id ? x->run_id : "",
               *task = x->task ? x->task : "", *name = x->name ? x->name : "";
    int st = api_read_artifact(lg->t, dag, run_id, task, name, API_READ_CURRENT, a, rec, lg->err,
                               sizeof(lg->err));
    if (st == 0 && (!sha || !strcmp(a->sha256, sha)))
        return 0;
    if (st == 0) {
        json_decref(*rec);
        *rec = NULL;
    } else if (st != 404) {
        return lineage_fail(lg, st);
    }
    st = api_read_artifact(lg->t, dag, run_id, task, name, x->attempt, a, rec, lg->err,
                           sizeof(lg->err));
    return st == 0 || st == 404 ? st : lineage_fail(lg, st);
}

static json_t *lineage_node(struct lineage *lg, const struct schema_artifact *ptr, int depth);

/* An input of an attempt (an element of its provenance inputs, {name,
 * task, file, sha256}) as a node: the upstream pointer it came from,
 * expanded, or a placeholder node saying why it cannot be. NULL if a
 * record could not be read (lg->status). */
static json_t *
lineage_input(struct lineage *lg, const json_t *in, const char *dag, const char *run_id, int depth)
{
    const char *task = member_str(in, "task"), *file = member_str(in, "file"),
               *sha = member_str(in, "sha256");
    struct schema_artifact a;
    json_t *prec = NULL;
    int st = 404;
    if (task && file) {
        st = api_read_artifact(lg->t, dag, run_id, task, file, API_READ_CURRENT, &a, &prec, lg->err,
                               sizeof(lg->err));
        if (st != 0 && st != 404)
            lineage_fail(lg, st);
        if (st == 0 && sha && strcmp(a.sha256, sha) != 0) {
            /* the upstream's pointer changed since: find the bytes by digest */
            json_decref(prec);
            prec = NULL;
            st = 404;
        }
    }
    if (st == 404 && sha && !lg->status) {
        struct idx_list prods = {0};
        producers_of(lg, sha, &prods, NULL);
        if (prods.n)
            st = pointer_of_entry(lg, &prods.v[0].x, sha, &a, &prec);
        idx_list_free(&prods);
    }
    if (lg->status) {
        json_decref(prec);
        return NULL;
    }
    json_t *o = json_deep_copy(in);
    if (st == 0) {
        json_t *from = lineage_node(lg, &a, depth + 1);
        json_decref(prec);
        if (!from) {
            json_decref(o);
            return NULL;
        }
        json_object_set_new(o, "from", from);
    } else {
        json_object_set_new(o, "from", json_null());
        json_object_set_new(o, "removed", json_true());
    }
    return o;
}

/* A pointer with the run it belongs to, the attempt that stored it and,
 * recursively, the artifacts that attempt was given. NULL if a record
 * could not be read (lg->status). */
static json_t *
lineage_node(struct lineage *lg, const struct schema_artifact *ptr, int depth)
{
    const char *dag = ptr->dag ? ptr->dag : "", *run_id = ptr->run_id ? ptr->run_id : "",
               *task = ptr->task ? ptr->task : "";
    int attempt = (int)ptr->attempt;
    struct schema_run run;
    struct schema_attempt att;
    json_t *rrec = NULL, *arec = NULL;
    int rst = api_read_run(lg->s, lg->t, dag, run_id, &run, &rrec, lg->err, sizeof(lg->err));
    int ast = rst == 0 || rst == 404 ? api_read_attempt(lg->t, dag, run_id, task, attempt, &att,
                                                        &arec, lg->err, sizeof(lg->err))
                                     : 0;
    if ((rst != 0 && rst != 404) || (ast != 0 && ast != 404)) {
        lineage_fail(lg, rst != 0 && rst != 404 ? rst : ast);
        json_decref(rrec);
        json_decref(arec);
        return NULL;
    }
    json_t *n = api_present_artifact(ptr);
    if (rst == 0) {
        char ld[48];
        schema_date_format(run.logical_date, ld, sizeof(ld));
        json_object_set_new(n, "logical_date", json_string(ld));
        json_object_set_new(n, "dag_version", json_string(run.dag_version));
    }
    /* the run's code snapshot, which every attempt of it saw */
    json_object_set_new(n, "code_digest",
                        rst == 0 && run.code_digest ? json_string(run.code_digest) : json_null());
    json_decref(rrec);
    bool has = ast == 0;
    json_object_set_new(n, "worker", has && att.worker ? json_string(att.worker) : json_null());
    json_object_set_new(n, "started_at", has ? schema_time_json(att.started_at) : json_null());
    json_object_set_new(n, "ended_at", has ? schema_time_json(att.ended_at) : json_null());
    json_object_set_new(n, "image", has && att.image ? json_string(att.image) : json_null());
    json_object_set_new(n, "argv", has && att.argv ? json_deep_copy(att.argv) : json_null());
    json_object_set_new(n, "env", has && att.env ? json_deep_copy(att.env) : json_null());
    if (has && att.secrets) /* names only */
        json_object_set_new(n, "secrets", json_deep_copy(att.secrets));
    const json_t *inputs = has ? att.inputs : NULL;
    json_object_set_new(n, "provenance", json_boolean(inputs != NULL));
    char *akey = schema_key_attempt(dag, run_id, task, attempt);
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
            json_t *node = lineage_input(lg, in, dag, run_id, depth);
            if (!node)
                break;
            json_array_append_new(arr, node);
        }
        json_object_set_new(n, "inputs", arr);
    }
    free(akey);
    json_decref(arec);
    if (lg->status) {
        json_decref(n);
        return NULL;
    }
    return n;
}

static bool
same_artifact(const struct schema_artidx *x, const struct schema_artifact *a)
{
    return !strcmp(x->dag ? x->dag : "", a->dag ? a->dag : "") &&
           !strcmp(x->run_id ? x->run_id : "", a->run_id ? a->run_id : "") &&
           !strcmp(x->task ? x->task : "", a->task ? a->task : "") &&
           !strcmp(x->name ? x->name : "", a->name);
}

/* The answer for the artifact ptr: its lineage and who else stored the
 * same bytes ("skipped": index entries of the digest left out). NULL if a
 * record could not be read (lg->status). */
static json_t *
lineage_answer(struct lineage *lg, const struct schema_artifact *ptr)
{
    struct idx_list prods = {0};
    size_t skipped = 0;
    producers_of(lg, ptr->sha256, &prods, &skipped);
    json_t *also = json_array();
    for (size_t i = 0; i < prods.n; i++) {
        if (same_artifact(&prods.v[i].x, ptr))
            continue;
        if (json_array_size(also) < LINEAGE_ALSO_MAX)
            json_array_append_new(also, api_present_artidx(&prods.v[i].x));
    }
    size_t nprods = prods.n;
    idx_list_free(&prods);
    json_t *node = lineage_node(lg, ptr, 0);
    if (!node) {
        json_decref(also);
        return NULL;
    }
    json_t *o = json_pack("{s:s, s:I, s:o, s:o}", "sha256", ptr->sha256, "producers",
                          (json_int_t)nprods, "also_produced_by", also, "lineage", node);
    json_t *rels = api_models_of_artifact(lg->s, lg->t, ptr->dag, ptr->run_id, ptr->task, ptr->name);
    if (rels) /* it went into the models folder: where, and its stages */
        json_object_set_new(o, "releases", rels);
    set_skipped(o, skipped);
    return o;
}

/* Answer with the lineage of ptr (borrowing rec), ending t. */
static void
lineage_respond(struct lineage *lg, struct http_conn *c, const struct schema_artifact *ptr)
{
    lg->seen = json_object();
    json_t *o = lineage_answer(lg, ptr);
    json_decref(lg->seen);
    store_txn_abort(lg->t);
    if (o)
        http_respond_json(c, 200, o);
    else
        api_respond_status(c, lg->status, lg->err);
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
    json_t *shas; /* sha -> true */
};

static int
distinct_cb(void *ud, const char *sha, const struct schema_artidx *x, json_t *rec)
{
    struct distinct_ctx *dc = ud;
    (void)x;
    (void)rec;
    if (!json_object_get(dc->shas, sha))
        json_object_set_new(dc->shas, sha, json_true());
    return json_object_size(dc->shas) > 10; /* enough to say it is ambiguous */
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
    struct lineage lg = {.s = s};
    if (store_txn_begin(sched_store(s), false, &lg.t) != 0) {
        http_respond_error(c, 503, "unavailable", "cannot read the state store");
        return;
    }
    struct distinct_ctx dc = {json_object()};
    api_read_artidx(lg.t, sha, true, distinct_cb, &dc, NULL);
    size_t nd = json_object_size(dc.shas);
    if (nd != 1) {
        store_txn_abort(lg.t);
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
    json_decref(dc.shas);
    struct idx_list prods = {0};
    producers_of(&lg, full, &prods, NULL);
    struct schema_artifact ptr;
    json_t *rec = NULL;
    int st = prods.n ? pointer_of_entry(&lg, &prods.v[0].x, full, &ptr, &rec) : 404;
    idx_list_free(&prods);
    free(full);
    if (st == 404) {
        store_txn_abort(lg.t);
        http_respond_error(c, 500, "internal", "the index names a pointer that is not stored");
    } else if (st) {
        store_txn_abort(lg.t);
        api_respond_status(c, st, lg.err);
    } else {
        lineage_respond(&lg, c, &ptr);
    }
    json_decref(rec);
}

void
api_ml_lineage_artifact(struct sched *s, struct http_conn *c, const struct http_req *req,
                        const struct route_params *p)
{
    const char *run_id = route_param(p, "run"), *task = route_param(p, "task"),
               *name = route_param(p, "name");
    char err[512], *dag = api_query(req, "dag");
    struct lineage lg = {.s = s};
    if (store_txn_begin(sched_store(s), false, &lg.t) != 0) {
        free(dag);
        http_respond_error(c, 503, "unavailable", "cannot read the state store");
        return;
    }
    struct schema_artifact ptr;
    json_t *rec = NULL;
    int st = read_pointer(s, lg.t, dag, run_id, task, name, &ptr, &rec, err, sizeof(err));
    free(dag);
    if (st) {
        store_txn_abort(lg.t);
        api_respond_status(c, st, err);
        return;
    }
    lineage_respond(&lg, c, &ptr);
    json_decref(rec);
}

/* ---- metrics across runs ------------------------------------------------- */

#define METRICS_LAST_DEFAULT 20
#define METRICS_LAST_MAX 1000

/* Newest logical date first (a backfill of old dates does not jump to the
 * top of a drift table); runs of one date, newest created first. */
static int
logical_desc(const void *a, const void *b)
{
    const struct schema_run *x = &((const struct api_read_run_item *)a)->r,
                            *y = &((const struct api_read_run_item *)b)->r;
    if (x->logical_date != y->logical_date)
        return x->logical_date < y->logical_date ? 1 : -1;
    return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

struct metrics_ctx {
    const char *metric; /* filter, or NULL */
    json_t *row;        /* "task.metric" -> number */
    json_t *columns;    /* "task.metric" -> [task, metric] */
};

static int
ti_metrics_cb(void *ud, const char *key, const struct schema_ti *ti, json_t *rec)
{
    struct metrics_ctx *mc = ud;
    (void)key;
    (void)rec;
    const char *k;
    json_t *v;
    json_object_foreach(ti->metrics, k, v)
    {
        if (!json_is_number(v))
            continue;
        char *col = xasprintf("%s.%s", ti->task, k);
        if (!mc->metric || !strcmp(mc->metric, k) || !strcmp(mc->metric, col)) {
            json_object_set(mc->row, col, v);
            if (!json_object_get(mc->columns, col))
                json_object_set_new(mc->columns, col, json_pack("[s, s]", ti->task, k));
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
    struct api_read_run_list runs = {0};
    size_t skipped = 0;
    api_read_run_list(t, dag, &runs, &skipped);
    struct sched_dag *sd = sched_find_dag(s, dag);
    if (!sd && runs.n == 0 && skipped == 0) {
        store_txn_abort(t);
        http_respond_error(c, 404, "not_found", "no DAG '%s'", dag);
        goto out;
    }
    qsort(runs.v, runs.n, sizeof(*runs.v), logical_desc);
    struct metrics_ctx mc = {metric, NULL, json_object()};
    json_t *rows = json_array();
    for (size_t i = 0; i < runs.n && (long)i < last; i++) {
        const struct schema_run *r = &runs.v[i].r;
        char ld[48];
        schema_date_format(r->logical_date, ld, sizeof(ld));
        mc.row = json_object();
        api_read_tis(t, dag, r->run_id, ti_metrics_cb, &mc, &skipped);
        json_array_append_new(rows, json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "run_id", r->run_id,
                                              "logical_date", ld, "state", r->state, "created_at",
                                              schema_time_json(r->created_at), "ended_at",
                                              schema_time_json(r->ended_at), "metrics", mc.row));
    }
    store_txn_abort(t);
    api_read_run_list_free(&runs);

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
    json_t *o = json_pack("{s:s, s:s?, s:o, s:o}", "dag", dag, "metric", metric, "columns", columns,
                          "runs", rows);
    set_skipped(o, skipped);
    http_respond_json(c, 200, o);
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
