/* gc.c - artifact retention and collection (sched_gc_artifacts,
 * engine.h): pointers of finished runs outside the retention are removed on
 * the loop in one transaction, blobs nothing references are swept on the
 * thread pool. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact.h"
#include "core.h"
#include "err.h"
#include "hmap.h"
#include "log.h"
#include "records.h"
#include "schema.h"
#include "store.h"
#include "util.h"

/* ---------- artifact collection ---------- */

struct gc_run {
    char *key;        /* "dag␟run_id" */
    int64_t seq;      /* creation order */
    int64_t ended_at; /* wall ms, 0 = unknown */
    bool victim;      /* its pointers go */
    bool had_ptrs;    /* and it had some */
};

struct gc_scan {
    struct gc_run *runs; /* finished runs */
    size_t nruns, cap;
    struct hmap by_key;  /* run key -> index + 1 */
    json_t *victim_ptrs; /* pointer key -> pointer */
    json_t *keep;        /* digests still referenced -> true */
    int64_t kept_ptrs;
};

struct gc_job {
    uv_work_t req;
    struct sched *s;
    char **keep; /* digests still referenced, sorted */
    size_t nkeep;
    int64_t min_age_s;
    bool dry;
    struct art_gc_stats st;
    int rc;
    char err[512];
    json_t *report;
    void (*done)(void *ud, json_t *report, int rc, const char *err);
    void *ud;
};

static int
gc_runs_cb(void *ud, const char *key, const void *json)
{
    struct gc_scan *g = ud;
    int st = sched_run_state_parse(json_string_value(json_object_get(json, "state")) ?: "");
    if (st < 0 || !sched_run_finished((enum run_state)st))
        return 0; /* an unfinished run keeps everything */
    xgrow((void **)&g->runs, &g->cap, g->nruns + 1, sizeof(*g->runs));
    struct gc_run *r = &g->runs[g->nruns++];
    memset(r, 0, sizeof(*r));
    r->key = xstrdup(key);
    r->seq = json_integer_value(json_object_get(json, "seq"));
    r->ended_at = schema_time_parse(json_object_get(json, "ended_at"));
    return 0;
}

/* Compare the DAG parts of two run keys. */
static int
gc_dag_cmp(const char *a, const char *b)
{
    size_t la = strcspn(a, SCHEMA_SEP), lb = strcspn(b, SCHEMA_SEP);
    int c = memcmp(a, b, la < lb ? la : lb);
    return c ? c : la < lb ? -1 : la > lb;
}

/* By DAG, newest first within one. */
static int
gc_run_cmp(const void *a, const void *b)
{
    const struct gc_run *x = a, *y = b;
    int c = gc_dag_cmp(x->key, y->key);
    if (c)
        return c;
    return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

static int
gc_ptrs_cb(void *ud, const char *key, const void *json)
{
    struct gc_scan *g = ud;
    /* the run's key is the pointer's up to its second separator */
    size_t rklen = schema_key_prefix_len(key, 2);
    size_t v = 0;
    if (rklen && key[rklen]) {
        char *rk = xstrndup(key, rklen);
        hmap_get(&g->by_key, rk, &v);
        free(rk);
    }
    if (v && g->runs[v - 1].victim) {
        g->runs[v - 1].had_ptrs = true;
        json_t *c = json_deep_copy(json);
        json_object_del(c, "v");
        json_object_set_new(g->victim_ptrs, key, c);
        return 0;
    }
    g->kept_ptrs++;
    const char *sha = json_string_value(json_object_get(json, "sha256"));
    if (sha)
        json_object_set_new(g->keep, sha, json_true());
    return 0;
}

static void
gc_work_cb(uv_work_t *req)
{
    struct gc_job *j = req->data;
    /* on a pool thread: the store object is safe to share (artifact.h) */
    if (j->dry)
        j->rc = art_gc_plan(j->s->art, (const char *const *)j->keep, j->nkeep, j->min_age_s,
                            &j->st, j->err, sizeof(j->err));
    else
        j->rc = art_gc(j->s->art, (const char *const *)j->keep, j->nkeep, j->min_age_s, &j->st,
                       j->err, sizeof(j->err));
}

static void
gc_job_free(struct gc_job *j)
{
    for (size_t i = 0; i < j->nkeep; i++)
        free(j->keep[i]);
    free(j->keep);
    json_decref(j->report);
    free(j);
}

static void
gc_after_cb(uv_work_t *req, int status)
{
    struct gc_job *j = req->data;
    j->s->gc_busy = false;
    json_t *r = j->report;
    if (status == UV_ECANCELED) {
        j->rc = CAIRN_ESTATE;
        snprintf(j->err, sizeof(j->err), "the collection was cancelled");
    }
    if (j->rc && !j->err[0])
        snprintf(j->err, sizeof(j->err), "%s", cairn_strerror(j->rc));
    json_object_set_new(r, "blobs_removed", json_integer((json_int_t)j->st.blobs_removed));
    json_object_set_new(r, "blob_bytes", json_integer(j->st.blob_bytes));
    json_object_set_new(r, "blobs_kept", json_integer((json_int_t)j->st.blobs_kept));
    json_object_set_new(r, "tmp_removed", json_integer((json_int_t)j->st.tmp_removed));
    json_object_set_new(r, "tmp_bytes", json_integer(j->st.tmp_bytes));
    json_int_t np = json_integer_value(json_object_get(r, "pointers_removed"));
    json_int_t nr = json_integer_value(json_object_get(r, "runs"));
    LOG(j->rc ? LOG_ERR : LOG_NOTICE, "CAIRN-ARTIFACT-GC",
        "%s %" JSON_INTEGER_FORMAT " pointer%s of %" JSON_INTEGER_FORMAT " finished run%s, "
        "%zu blob%s (%" PRId64 " bytes) and %zu temporary file%s; %zu blob%s kept%s%s",
        j->dry ? "dry run: would remove" : "removed", np, np == 1 ? "" : "s", nr,
        nr == 1 ? "" : "s",
        j->st.blobs_removed, j->st.blobs_removed == 1 ? "" : "s", j->st.blob_bytes,
        j->st.tmp_removed, j->st.tmp_removed == 1 ? "" : "s", j->st.blobs_kept,
        j->st.blobs_kept == 1 ? "" : "s", j->rc ? "; " : "", j->rc ? j->err : "");
    j->report = NULL;
    j->done(j->ud, r, j->rc, j->rc ? j->err : NULL);
    gc_job_free(j);
}

static int
gc_str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Decide which finished runs lose their pointers (g->runs sorted by
 * gc_run_cmp): a run goes unless a rule given keeps it. */
static void
gc_choose(struct gc_scan *g, const struct sched_gc_opts *o)
{
    bool by_count = o->keep_last > 0, by_age = o->older_than_ms > 0;
    int64_t cutoff = by_age ? clock_wall_ms() - o->older_than_ms : 0;
    size_t rank = 0;
    for (size_t i = 0; i < g->nruns; i++) {
        struct gc_run *r = &g->runs[i];
        rank = i > 0 && gc_dag_cmp(g->runs[i - 1].key, r->key) == 0 ? rank + 1 : 1;
        bool keep_count = by_count && rank <= (size_t)o->keep_last;
        bool keep_age = by_age && (r->ended_at == 0 || r->ended_at > cutoff);
        r->victim = (by_count || by_age) && !keep_count && !keep_age;
        hmap_put(&g->by_key, r->key, i + 1);
    }
}

/* Remove the chosen pointers and their index entries in one transaction.
 * The loop thread is the only writer and a commit never leaves a write
 * transaction open, so none is open now. */
static int
gc_remove_pointers(struct sched *s, json_t *victims)
{
    struct store_txn *t = NULL;
    int rc = store_txn_begin(s->store, true, &t);
    if (rc)
        return rc;
    const char *k;
    json_t *p;
    json_object_foreach(victims, k, p)
    {
        rc = rec_artidx_del(t, k, p);
        if (!rc)
            rc = store_del(t, STORE_ARTIFACTS, k);
        if (rc == CAIRN_ENOENT)
            rc = 0;
        if (rc)
            break;
    }
    if (rc) {
        store_txn_abort(t);
        return rc;
    }
    return store_txn_commit(t);
}

int
sched_gc_artifacts(struct sched *s, const struct sched_gc_opts *o,
                   void (*done)(void *ud, json_t *report, int rc, const char *err), void *ud,
                   char *err, size_t errlen)
{
    if (s->stopping || s->gc_busy) {
        snprintf(err, errlen, "%s",
                 s->stopping ? "the scheduler is stopping" : "a collection is running already");
        return CAIRN_ESTATE;
    }
    struct gc_scan g = {0};
    hmap_init(&g.by_key);
    g.victim_ptrs = json_object();
    g.keep = json_object();
    struct store_txn *t = NULL;
    int rc = store_txn_begin(s->store, false, &t);
    if (!rc)
        rc = store_scan(t, STORE_RUNS, "", gc_runs_cb, &g);
    if (g.nruns) /* (qsort must not get NULL, even for no elements) */
        qsort(g.runs, g.nruns, sizeof(*g.runs), gc_run_cmp);
    gc_choose(&g, o);
    if (!rc)
        rc = store_scan(t, STORE_ARTIFACTS, "", gc_ptrs_cb, &g);
    store_txn_abort(t);
    /* outputs in memory that are not stored yet are referenced too */
    for (struct sched_run *r = s->runs.next; r != &s->runs; r = r->next)
        for (size_t i = 0; i < r->ntis; i++) {
            size_t k;
            json_t *v;
            json_array_foreach(r->tis[i].outputs, k, v)
            {
                const char *sha = json_string_value(json_object_get(v, "sha256"));
                if (sha)
                    json_object_set_new(g.keep, sha, json_true());
            }
        }
    if (!rc && !o->dry_run && json_object_size(g.victim_ptrs))
        rc = gc_remove_pointers(s, g.victim_ptrs);
    if (rc) {
        snprintf(err, errlen, "cannot %s the artifact pointers: %s%s%s",
                 o->dry_run ? "read" : "remove", cairn_strerror(rc),
                 *store_last_error(s->store) ? ": " : "", store_last_error(s->store));
        goto out;
    }

    int64_t ptr_bytes = 0;
    const char *k;
    json_t *v;
    json_object_foreach(g.victim_ptrs, k, v)
    {
        ptr_bytes += json_integer_value(json_object_get(v, "size"));
    }
    json_t *removed_runs = json_array();
    for (size_t i = 0; i < g.nruns; i++) {
        const char *key = g.runs[i].key, *sep = strchr(key, SCHEMA_SEP_CHAR);
        if (g.runs[i].had_ptrs && sep)
            json_array_append_new(removed_runs, json_pack("{s:s%, s:s}", "dag", key,
                                                          (size_t)(sep - key), "run_id", sep + 1));
    }
    struct gc_job *j = xcalloc(1, sizeof(*j));
    j->s = s;
    j->dry = o->dry_run;
    j->min_age_s = o->min_age_ms > 0 ? (o->min_age_ms + 999) / 1000 : 0;
    j->done = done;
    j->ud = ud;
    j->keep = xcalloc(json_object_size(g.keep) + 1, sizeof(*j->keep));
    json_object_foreach(g.keep, k, v)
    {
        j->keep[j->nkeep++] = xstrdup(k);
    }
    qsort(j->keep, j->nkeep, sizeof(*j->keep), gc_str_cmp);
    j->report = json_pack(
        "{s:b, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:o}", "dry_run", o->dry_run, "keep_last",
        o->keep_last > 0 ? json_integer(o->keep_last) : json_null(), "older_than_ms",
        o->older_than_ms > 0 ? json_integer(o->older_than_ms) : json_null(), "min_age_ms",
        (json_int_t)o->min_age_ms, "runs", (json_int_t)json_array_size(removed_runs),
        "pointers_removed", (json_int_t)json_object_size(g.victim_ptrs), "pointer_bytes",
        (json_int_t)ptr_bytes, "pointers_kept", (json_int_t)g.kept_ptrs, "removed_runs",
        removed_runs);
    j->req.data = j;
    int urc = uv_queue_work(s->loop, &j->req, gc_work_cb, gc_after_cb);
    if (urc != 0) {
        snprintf(err, errlen, "cannot start removing blobs: %s", uv_strerror(urc));
        gc_job_free(j);
        rc = CAIRN_EIO;
        goto out;
    }
    s->gc_busy = true;
out:
    for (size_t i = 0; i < g.nruns; i++)
        free(g.runs[i].key);
    free(g.runs);
    hmap_free(&g.by_key);
    json_decref(g.victim_ptrs);
    json_decref(g.keep);
    return rc;
}
