#include "engine.h"


#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "artifact.h"
#include "backfill.h"
#include "cache.h"
#include "cal.h"
#include "err.h"
#include "fs.h"
#include "expr.h"
#include "http.h"
#include "log.h"
#include "proto.h"
#include "publish.h"
#include "ticks.h"
#include "tz.h"
#include "util.h"
#include "wire.h"

#define TICK_MS 100
#define RESCAN_MS 2000
#define POLL_WAIT_MAX_MS 10000
#define SEP "\x1f"

struct after_cb {
    void (*fn)(void *ud, bool ok);
    void *ud;
};

struct pending_reply {
    struct wire_req *req;
    int type;
    json_t *body;
};

struct sched {
    uv_loop_t *loop;
    struct sched_config cfg;
    struct store *store;
    struct wire *wire;
    struct http_server *http;
    struct proto_key key;
    struct art_store *art;   /* where workers put outputs */
    struct bf_set *bfs;      /* backfills */
    struct cache_index *cache_ix; /* code folder file digests, for cache keys */
    json_t *cache_pending;   /* "cache/<key>" -> entry, committed with the next flush */
    struct sched_ti **cache_q; /* ready tasks with `cache: true`, looked up before the flush */
    size_t ncache_q, capcache_q, cache_qhead;
    char *models_dir;        /* where `publish:` copies outputs */
    int npublishing;         /* publish jobs on the thread pool */
    uv_timer_t tick;
    uv_prepare_t prepare;
    uv_fs_event_t fsev;
    bool fsev_on;
    int64_t next_rescan;

    struct sched_dag **dags; /* sorted by name */
    size_t ndags, capdags;
    struct hmap versions;    /* version hash -> struct sched_dagver* */

    struct sched_run runs;   /* sentinel of the unfinished-run list */
    struct hmap runs_by_key; /* "dag\x1frun_id" -> run */
    uint64_t run_seq;

    struct sched_ti **heap;  /* ready queue */
    size_t nheap, capheap;
    struct sched_ti leases;  /* sentinel: leased + running */
    struct sched_ti retries; /* sentinel: up_for_retry */
    struct hmap lease_map;   /* lease id (text) -> ti */
    int64_t lease_seq;
    bool lease_seq_dirty;

    struct sched_worker **workers;
    size_t nworkers, capworkers;

    struct sched_ti *dirty_tis;
    json_t *ended_attempts;  /* store key -> record of attempts a retry overtook */
    struct sched_run *dirty_runs;
    struct sched_dag **dirty_dags;
    size_t ndirty_dags, capdirty_dags;
    struct pending_reply *replies;
    size_t nreplies, capreplies;
    struct after_cb *afters;
    size_t nafters, capafters;
    int64_t flush_retry_at;
    int64_t clock_skew;      /* seconds added to the wall clock (CAIRN_NOW) */
    int64_t next_schedule;   /* monotonic ms of the next schedule pass */
    int64_t last_tick;       /* monotonic ms of the last tick, to notice stalls */
    bool stopping;
    bool gc_busy;            /* an artifact collection is removing blobs */
    void (*stop_done)(void *);
    void *stop_ud;
    int closing_handles;
};

static const char *const ti_state_names[] = {"pending", "queued", "leased", "running", "success",
                                             "failed", "up_for_retry", "upstream_failed",
                                             "skipped", "cancelled"};
static const char *const run_state_names[] = {"queued", "running", "success", "failed",
                                              "cancelled"};

const char *
sched_ti_state_name(enum ti_state s)
{
    return (unsigned)s < TI_NSTATES ? ti_state_names[s] : "?";
}

int
sched_ti_state_parse(const char *s)
{
    for (int i = 0; i < TI_NSTATES; i++)
        if (!strcmp(s, ti_state_names[i]))
            return i;
    return -1;
}

const char *
sched_run_state_name(enum run_state s)
{
    return (unsigned)s < RUN_NSTATES ? run_state_names[s] : "?";
}

int
sched_run_state_parse(const char *s)
{
    for (int i = 0; i < RUN_NSTATES; i++)
        if (!strcmp(s, run_state_names[i]))
            return i;
    return -1;
}

bool
sched_ti_terminal(enum ti_state s)
{
    return s == TI_SUCCESS || s == TI_FAILED || s == TI_UPSTREAM_FAILED || s == TI_SKIPPED ||
           s == TI_CANCELLED;
}

bool
sched_run_finished(enum run_state s)
{
    return s == RUN_SUCCESS || s == RUN_FAILED || s == RUN_CANCELLED;
}

json_t *
sched_json_time(int64_t wall_ms)
{
    if (wall_ms <= 0)
        return json_null();
    /* with milliseconds: durations (ended - started) and the order of
     * events within a second must survive the round trip through LMDB */
    char base[48], buf[48];
    cal_format_iso(wall_ms / 1000, 0, 0, base, sizeof(base));
    snprintf(buf, sizeof(buf), "%.19s.%03dZ", base, (int)(wall_ms % 1000));
    return json_string(buf);
}

static int64_t
parse_json_time(json_t *v)
{
    int64_t secs;
    int has_time, has_off;
    const char *s = json_string_value(v);
    if (!s)
        return 0;
    /* keep milliseconds if present: "....123Z" */
    int64_t ms = 0;
    const char *dot = strchr(s, '.');
    char tmp[64];
    if (dot && strlen(s) < sizeof(tmp)) {
        size_t pre = (size_t)(dot - s);
        memcpy(tmp, s, pre);
        const char *p = dot + 1;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        while (digits < 3) {
            ms *= 10;
            digits++;
        }
        snprintf(tmp + pre, sizeof(tmp) - pre, "%s", p);
        s = tmp;
    }
    if (cal_parse(s, &secs, &has_time, &has_off) != 0)
        return 0;
    return secs * 1000 + ms;
}

/* ---------- DAG versions ---------- */

static struct sched_dagver *
dagver_get(struct sched *s, const char *version)
{
    size_t v;
    return hmap_get(&s->versions, version, &v) ? (struct sched_dagver *)(uintptr_t)v : NULL;
}

static struct sched_dagver *
dagver_add(struct sched *s, struct dag *d)
{
    struct sched_dagver *dv = dagver_get(s, d->version);
    if (dv) {
        dag_free(d);
        return dv;
    }
    dv = xcalloc(1, sizeof(*dv));
    dv->dag = d;
    hmap_put(&s->versions, d->version, (size_t)(uintptr_t)dv);
    return dv;
}

/* Load a version from its stored source (for runs of an older version). */
static struct sched_dagver *
dagver_load(struct sched *s, struct store_txn *t, const char *dag, const char *version)
{
    struct sched_dagver *dv = dagver_get(s, version);
    if (dv)
        return dv;
    char *key = xasprintf("%s" SEP "%s", dag, version);
    const void *data;
    size_t len;
    int rc = store_get_raw(t, STORE_DAG_SOURCES, key, &data, &len);
    free(key);
    if (rc != 0)
        return NULL;
    struct diag_list dl;
    struct dag *d = NULL;
    diag_list_init(&dl);
    char *file = xasprintf("<%s@%.12s>", dag, version);
    rc = dag_load_buffer(&d, data, len, file, &dl);
    free(file);
    diag_list_free(&dl);
    if (rc != 0)
        return NULL;
    return dagver_add(s, d);
}

const struct dag *
sched_dag_version(struct sched *s, const char *dag, const char *version)
{
    struct sched_dagver *dv = dagver_get(s, version);
    if (!dv) {
        struct store_txn *t = NULL;
        if (store_txn_begin(s->store, false, &t) != 0)
            return NULL;
        dv = dagver_load(s, t, dag, version);
        store_txn_abort(t);
    }
    return dv ? dv->dag : NULL;
}

/* ---------- dirty tracking ---------- */

static void
ti_dirty(struct sched *s, struct sched_ti *ti, bool attempt)
{
    if (!ti->dirty) {
        ti->dirty = true;
        ti->dirty_next = s->dirty_tis;
        s->dirty_tis = ti;
    }
    if (attempt)
        ti->attempt_dirty = true;
}

static void
run_dirty(struct sched *s, struct sched_run *r)
{
    if (!r->dirty) {
        r->dirty = true;
        r->dirty_next = s->dirty_runs;
        s->dirty_runs = r;
    }
}

static void
dag_dirty(struct sched *s, struct sched_dag *d)
{
    for (size_t i = 0; i < s->ndirty_dags; i++)
        if (s->dirty_dags[i] == d)
            return;
    xgrow((void **)&s->dirty_dags, &s->capdirty_dags, s->ndirty_dags + 1,
          sizeof(*s->dirty_dags));
    s->dirty_dags[s->ndirty_dags++] = d;
}

static void
reply_later(struct sched *s, struct wire_req *req, int type, json_t *body)
{
    if (req->batch) { /* an item of a BATCH: its answer is one of the results */
        json_array_append_new(req->batch, body);
        return;
    }
    xgrow((void **)&s->replies, &s->capreplies, s->nreplies + 1, sizeof(*s->replies));
    s->replies[s->nreplies].req = req;
    s->replies[s->nreplies].type = type;
    s->replies[s->nreplies].body = body;
    s->nreplies++;
}

void
sched_after_commit(struct sched *s, void (*fn)(void *ud, bool ok), void *ud)
{
    xgrow((void **)&s->afters, &s->capafters, s->nafters + 1, sizeof(*s->afters));
    s->afters[s->nafters].fn = fn;
    s->afters[s->nafters].ud = ud;
    s->nafters++;
}

/* ---------- lists and heap ---------- */

static void
list_init(struct sched_ti *head)
{
    head->lnext = head->lprev = head;
}

static void
list_add(struct sched_ti *head, struct sched_ti *ti)
{
    ti->lnext = head;
    ti->lprev = head->lprev;
    head->lprev->lnext = ti;
    head->lprev = ti;
}

static void
list_del(struct sched_ti *ti)
{
    if (!ti->lnext)
        return;
    ti->lprev->lnext = ti->lnext;
    ti->lnext->lprev = ti->lprev;
    ti->lnext = ti->lprev = NULL;
}

/* Higher priority first, then older runs, then topological order. */
static bool
heap_before(const struct sched_ti *a, const struct sched_ti *b)
{
    const struct dag_task *ta = &a->run->dv->dag->tasks[a->idx];
    const struct dag_task *tb = &b->run->dv->dag->tasks[b->idx];
    if (ta->priority != tb->priority)
        return ta->priority > tb->priority;
    if (a->run->seq != b->run->seq)
        return a->run->seq < b->run->seq;
    return a->idx < b->idx;
}

static void
heap_swap(struct sched *s, size_t i, size_t j)
{
    struct sched_ti *t = s->heap[i];
    s->heap[i] = s->heap[j];
    s->heap[j] = t;
    s->heap[i]->heap_idx = i;
    s->heap[j]->heap_idx = j;
}

static void
heap_up(struct sched *s, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_before(s->heap[i], s->heap[p]))
            break;
        heap_swap(s, i, p);
        i = p;
    }
}

static void
heap_down(struct sched *s, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->nheap && heap_before(s->heap[l], s->heap[m]))
            m = l;
        if (r < s->nheap && heap_before(s->heap[r], s->heap[m]))
            m = r;
        if (m == i)
            break;
        heap_swap(s, i, m);
        i = m;
    }
}

static void
heap_push(struct sched *s, struct sched_ti *ti)
{
    xgrow((void **)&s->heap, &s->capheap, s->nheap + 1, sizeof(*s->heap));
    s->heap[s->nheap] = ti;
    ti->heap_idx = s->nheap++;
    heap_up(s, ti->heap_idx);
}

static void
heap_remove(struct sched *s, struct sched_ti *ti)
{
    size_t i = ti->heap_idx;
    if (i == SIZE_MAX)
        return;
    s->nheap--;
    if (i != s->nheap) {
        s->heap[i] = s->heap[s->nheap];
        s->heap[i]->heap_idx = i;
        heap_down(s, i);
        heap_up(s, i);
    }
    ti->heap_idx = SIZE_MAX;
}

static struct sched_ti *
heap_pop(struct sched *s)
{
    if (!s->nheap)
        return NULL;
    struct sched_ti *ti = s->heap[0];
    heap_remove(s, ti);
    return ti;
}

/* ---------- state transitions ---------- */

static void dispatch_parked(struct sched *s);
static void run_check_done(struct sched *s, struct sched_run *r);
static void ti_finish(struct sched *s, struct sched_ti *ti, enum ti_state st);

static struct sched_dag *
run_sdag(struct sched *s, const struct sched_run *r)
{
    return sched_find_dag(s, r->dag);
}

static void
ti_set_state(struct sched *s, struct sched_ti *ti, enum ti_state st)
{
    ti->state = st;
    ti_dirty(s, ti, false);
}

static void
ti_make_ready(struct sched *s, struct sched_ti *ti)
{
    ti->decided = true;
    ti_set_state(s, ti, TI_QUEUED);
    ti->queued_at = clock_wall_ms();
    heap_push(s, ti);
}

/* ---------- step cache and models folder ---------- */

/* The stored artifact an input resolves to in run r, or NULL. */
static json_t *
input_artifact(const struct sched_run *r, const struct dag_input *in)
{
    const struct sched_ti *up = &r->tis[in->task_idx];
    json_t *found = NULL, *v;
    size_t k;
    if (up->outputs)
        json_array_foreach(up->outputs, k, v)
        {
            if (!strcmp(json_string_value(json_object_get(v, "name")) ?: "", in->file))
                found = v;
        }
    return found;
}

/* ti's step cache key (docs/dag-yaml.md) into hex; "" when it cannot be
 * computed (a template that does not render, an input not stored, a code
 * folder that cannot be read): the task then runs and is not stored. */
static void
ti_cache_key_of(struct sched *s, const struct sched_ti *ti, char hex[65])
{
    const struct sched_run *r = ti->run;
    const struct dag *d = r->dv->dag;
    const struct dag_task *t = &d->tasks[ti->idx];
    struct dag_run_ctx rc = {r->logical_date, r->interval_end, r->run_id, r->overrides,
                             r->noverrides};
    char **argv = NULL, **envp = NULL, err[512];
    struct cache_input *ins = NULL;
    hex[0] = '\0';
    if (dag_render_task(d, ti->idx, &rc, &argv, &envp, err, sizeof(err)) != 0)
        return; /* dispatch fails the task with its message */
    ins = xcalloc(t->ninputs + 1, sizeof(*ins));
    for (size_t i = 0; i < t->ninputs; i++) {
        json_t *a = input_artifact(r, &t->inputs[i]);
        const char *sha = a ? json_string_value(json_object_get(a, "sha256")) : NULL;
        if (!sha)
            goto out; /* dispatch fails the task with its message */
        ins[i].name = t->inputs[i].name;
        ins[i].sha256 = sha;
    }
    struct sched_dag *sd = sched_find_dag(s, r->dag);
    char *code = d->code ? dag_code_path(d->code, sd ? sd->file : NULL) : NULL;
    struct cache_spec sp = {d->name, t->name,     t->image,   argv, envp,       t->outputs,
                            t->noutputs, t->metrics, code, ins, t->ninputs};
    if (cache_key(s->cache_ix, &sp, hex, err, sizeof(err)) != 0) {
        hex[0] = '\0';
        LOG(LOG_WARN, "CAIRN-CACHE-NOKEY", "%s/%s/%s: no cache key (%s); the task runs and its "
            "result is not cached", r->dag, r->run_id, t->name, err);
    }
    free(code);
out:
    free(ins);
    dag_strv_free(argv);
    dag_strv_free(envp);
}

static void
ti_cache_key(struct sched *s, struct sched_ti *ti)
{
    ti_cache_key_of(s, ti, ti->cache_key);
    ti_dirty(s, ti, false);
}

/* The cache entry under a key: one not committed yet, else LMDB's. */
static json_t *
cache_lookup(struct sched *s, const char *hex)
{
    char key[80];
    snprintf(key, sizeof(key), "cache/%s", hex);
    json_t *e = json_object_get(s->cache_pending, key);
    if (e)
        return json_incref(e);
    struct store_txn *t = NULL;
    void *j = NULL;
    if (store_txn_begin(s->store, false, &t) != 0)
        return NULL;
    if (store_get(t, STORE_META, key, &j) != 0)
        j = NULL;
    store_txn_abort(t);
    return j;
}

/* Remember a successful attempt under its key; written with its success.
 * The key is computed again first: if the code folder or the image changed
 * while the task ran, what it computed belongs to neither key. */
static void
cache_store(struct sched *s, const struct sched_ti *ti)
{
    const struct sched_run *r = ti->run;
    char now[65];
    ti_cache_key_of(s, ti, now);
    if (strcmp(now, ti->cache_key) != 0) {
        LOG(LOG_WARN, "CAIRN-CACHE-CHANGED", "%s/%s/%s: the code folder or image changed while "
            "the task ran; its result is not cached", r->dag, r->run_id,
            r->dv->dag->tasks[ti->idx].name);
        return;
    }
    char *key = xasprintf("cache/%s", ti->cache_key);
    json_t *e = json_pack("{s:s, s:s, s:s, s:i, s:O, s:o, s:o}", "dag", r->dag, "run_id",
                          r->run_id, "task", r->dv->dag->tasks[ti->idx].name, "attempt",
                          ti->attempts, "outputs", ti->outputs, "metrics",
                          ti->metrics ? json_deep_copy(ti->metrics) : json_object(),
                          "created_at", sched_json_time(clock_wall_ms()));
    json_object_set_new(s->cache_pending, key, e);
    free(key);
}

/* Metrics of task idx and of every task upstream of it, by task name. */
static json_t *
lineage_metrics(const struct sched_run *r, size_t idx)
{
    const struct dag *d = r->dv->dag;
    bool *seen = xcalloc(d->ntasks + 1, sizeof(*seen));
    size_t *stack = xcalloc(d->ntasks + 1, sizeof(*stack));
    size_t sp = 0;
    stack[sp++] = idx;
    seen[idx] = true;
    while (sp) {
        const struct dag_task *x = &d->tasks[stack[--sp]];
        for (size_t i = 0; i < x->nneeds; i++)
            if (!seen[x->needs[i]]) {
                seen[x->needs[i]] = true;
                stack[sp++] = x->needs[i];
            }
    }
    json_t *m = json_object();
    for (size_t i = 0; i < d->ntasks; i++)
        if (seen[i] && r->tis[i].metrics)
            json_object_set_new(m, d->tasks[i].name, json_deep_copy(r->tis[i].metrics));
    free(seen);
    free(stack);
    return m;
}

/* What publishing ti's `publish` outputs takes (publish.h), prepared on
 * the loop so that the copy itself can run on any thread. */
struct publish_job {
    uv_work_t req;
    struct sched *s;
    char *dag, *run_id, *task, *release, *record, *err_text;
    int attempt;
    struct publish_file *pf;
    size_t npf;
    json_t *files;         /* [{name, sha256, size}] for ti->published */
    char *dir;             /* the release folder, on success */
    int rc;
    char err[512];
};

static void
publish_job_free(struct publish_job *j)
{
    for (size_t i = 0; i < j->npf; i++) {
        free((char *)j->pf[i].name);
        free((char *)j->pf[i].sha256);
    }
    free(j->pf);
    free(j->dag);
    free(j->run_id);
    free(j->task);
    free(j->release);
    free(j->record);
    free(j->dir);
    json_decref(j->files);
    free(j);
}

static struct publish_job *
publish_prepare(struct sched *s, struct sched_ti *ti, char *err, size_t errlen)
{
    const struct sched_run *r = ti->run;
    const struct dag *d = r->dv->dag;
    const struct dag_task *t = &d->tasks[ti->idx];
    struct publish_job *j = xcalloc(1, sizeof(*j));
    j->s = s;
    j->pf = xcalloc(t->npublish + 1, sizeof(*j->pf));
    j->files = json_array();
    for (size_t i = 0; i < t->npublish; i++) {
        json_t *found = NULL, *v;
        size_t k;
        json_array_foreach(ti->outputs, k, v)
        {
            if (!strcmp(json_string_value(json_object_get(v, "name")) ?: "", t->publish[i]))
                found = v;
        }
        const char *sha = found ? json_string_value(json_object_get(found, "sha256")) : NULL;
        if (!sha) {
            snprintf(err, errlen, "output '%s' was not stored", t->publish[i]);
            publish_job_free(j);
            return NULL;
        }
        j->pf[j->npf].name = xstrdup(t->publish[i]);
        j->pf[j->npf].sha256 = xstrdup(sha);
        j->npf++;
        json_array_append_new(j->files, json_pack("{s:s, s:s, s:O}", "name", t->publish[i],
                                                  "sha256", sha, "size",
                                                  json_object_get(found, "size")));
    }
    /* the params the run used: defaults with its overrides */
    json_t *params = json_object();
    for (size_t i = 0; i < d->nparams; i++)
        json_object_set_new(params, d->params[i].name, json_string(d->params[i].value));
    json_object_update(params, r->params);
    char ld[48];
    cal_format_iso(r->logical_date, 0, 1, ld, sizeof(ld));
    json_t *rec = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:o, s:O, s:o, s:o}", "dag", r->dag,
                            "run_id", r->run_id, "task", t->name, "attempt", ti->attempts,
                            "logical_date", ld, "dag_version", d->version, "params", params,
                            "files", j->files, "metrics", lineage_metrics(r, ti->idx),
                            "published_at", sched_json_time(clock_wall_ms()));
    json_object_set_new(rec, "cached_from",
                        ti->cached_from ? json_deep_copy(ti->cached_from) : json_null());
    char *text = json_dumps(rec, JSON_INDENT(2));
    j->record = xasprintf("%s\n", text ? text : "{}");
    free(text);
    json_decref(rec);
    j->release = ti->cached ? xasprintf("%s-cached", r->run_id)
                            : xasprintf("%s-a%d", r->run_id, ti->attempts);
    j->dag = xstrdup(r->dag);
    j->run_id = xstrdup(r->run_id);
    j->task = xstrdup(t->name);
    j->attempt = ti->attempts;
    return j;
}

static void
publish_run(struct publish_job *j)
{
    j->rc = publish_build(j->s->art, j->s->models_dir, j->dag, j->task, j->release, j->pf,
                          j->npf, j->record, &j->dir, j->err, sizeof(j->err));
}

/* Point `latest` at the built release (loop thread). */
static void
publish_finish(struct publish_job *j)
{
    if (j->rc == 0)
        j->rc = publish_switch(j->s->models_dir, j->dag, j->task, j->release, j->err,
                               sizeof(j->err));
}

/* Record a successful publish on ti. */
static void
publish_apply(struct sched *s, struct sched_ti *ti, const struct publish_job *j)
{
    json_decref(ti->published);
    char *latest = xasprintf("%s/%s/%s/latest", s->models_dir, j->dag, j->task);
    ti->published = json_pack("{s:s, s:s, s:O}", "path", j->dir, "latest", latest, "files",
                              j->files);
    free(latest);
    LOG(LOG_NOTICE, "CAIRN-PUBLISHED", "%s/%s/%s: published %zu file%s to %s", j->dag,
        j->run_id, j->task, j->npf, j->npf == 1 ? "" : "s", j->dir);
}

/* Publish ti's outputs now, on the loop (a cache hit: the task never ran). */
static int
ti_publish(struct sched *s, struct sched_ti *ti, char *err, size_t errlen)
{
    struct publish_job *j = publish_prepare(s, ti, err, errlen);
    if (!j)
        return CAIRN_ENOENT;
    publish_run(j);
    publish_finish(j);
    int rc = j->rc;
    if (rc == 0)
        publish_apply(s, ti, j);
    else
        snprintf(err, errlen, "%s", j->err);
    publish_job_free(j);
    return rc;
}

static void attempt_failed(struct sched *s, struct sched_ti *ti);

static void
publish_work(uv_work_t *req)
{
    publish_run(req->data);
}

/* The copy for a task that ran is done (thread pool): the task succeeds, or
 * the attempt fails like any other. */
static void
publish_done(uv_work_t *req, int status)
{
    struct publish_job *j = req->data;
    struct sched *s = j->s;
    (void)status;
    s->npublishing--;
    if (s->stopping) {
        /* the last commit is done: a restart takes the task back (its lease
         * expires without costing a retry) and runs it again */
        LOG(LOG_WARN, "CAIRN-PUBLISH-STOPPED", "%s/%s/%s: publish finished during the stop; "
            "the task runs again after a restart", j->dag, j->run_id, j->task);
        publish_job_free(j);
        if (--s->closing_handles == 0 && s->stop_done)
            s->stop_done(s->stop_ud);
        return;
    }
    struct sched_run *r = sched_find_run(s, j->dag, j->run_id);
    long idx = r ? dag_task_index(r->dv->dag, j->task) : -1;
    struct sched_ti *ti = idx >= 0 ? &r->tis[idx] : NULL;
    if (!ti || !ti->publishing || ti->attempts != j->attempt) {
        LOG(LOG_INFO, "CAIRN-PUBLISH-DROPPED", "%s/%s/%s attempt %d: published after the "
            "task moved on (cancelled or cleared); the release stays in the models folder and "
            "latest is left alone",
            j->dag, j->run_id, j->task, j->attempt);
        publish_job_free(j);
        return;
    }
    ti->publishing = false;
    publish_finish(j); /* latest moves only for a task that is still there */
    if (j->rc == 0) {
        publish_apply(s, ti, j);
        ti->artifacts_dirty = true;
        const struct dag_task *t = &r->dv->dag->tasks[ti->idx];
        if (t->cache && ti->cache_key[0])
            cache_store(s, ti);
        ti_finish(s, ti, TI_SUCCESS);
    } else {
        /* the files stay in the artifact store; the attempt is retried
         * like any failure, and a success counts only once published */
        LOG(LOG_ERR, "CAIRN-PUBLISH-FAILED", "%s/%s/%s attempt %d: cannot publish: %s", j->dag,
            j->run_id, j->task, j->attempt, j->err);
        free(ti->error);
        ti->error = xasprintf("cannot publish to the models folder: %s", j->err);
        json_decref(ti->outputs);
        ti->outputs = NULL;
        json_decref(ti->metrics);
        ti->metrics = NULL;
        attempt_failed(s, ti);
    }
    publish_job_free(j);
    dispatch_parked(s);
}

/* A ready task instance with `cache: true`: if an earlier successful
 * attempt had the same key and its blobs are still stored, succeed now
 * with its outputs and metrics, without running. */
static bool
ti_cache_try(struct sched *s, struct sched_ti *ti)
{
    struct sched_run *r = ti->run;
    const struct dag_task *t = &r->dv->dag->tasks[ti->idx];
    ti_cache_key(s, ti);
    if (!ti->cache_key[0] || ti->no_cache)
        return false;
    json_t *e = cache_lookup(s, ti->cache_key);
    if (!e)
        return false;
    json_t *outs = json_array(), *eouts = json_object_get(e, "outputs");
    const char *stale = NULL;
    for (size_t i = 0; i < t->noutputs && !stale; i++) {
        json_t *found = NULL, *v;
        size_t k;
        json_array_foreach(eouts, k, v)
        {
            if (!strcmp(json_string_value(json_object_get(v, "name")) ?: "", t->outputs[i]))
                found = v;
        }
        const char *sha = found ? json_string_value(json_object_get(found, "sha256")) : NULL;
        char *path = NULL;
        if (!sha || !art_hex_valid(sha) || art_blob_path(s->art, sha, &path) != 0) {
            stale = t->outputs[i];
            break;
        }
        free(path);
        json_array_append_new(outs, json_pack("{s:s, s:s, s:O, s:O}", "name", t->outputs[i],
                                              "sha256", sha, "size",
                                              json_object_get(found, "size"), "uri",
                                              json_object_get(found, "uri")));
    }
    if (stale) {
        LOG(LOG_INFO, "CAIRN-CACHE-STALE", "%s/%s/%s: the cached output '%s' is no longer "
            "stored; running the task", r->dag, r->run_id, t->name, stale);
        json_decref(outs);
        json_decref(e);
        return false;
    }
    json_decref(ti->outputs);
    ti->outputs = outs;
    json_decref(ti->metrics);
    ti->metrics = NULL;
    json_t *mets = json_object_get(e, "metrics");
    if (json_is_object(mets) && json_object_size(mets))
        ti->metrics = json_deep_copy(mets);
    json_decref(ti->cached_from);
    ti->cached_from = json_pack("{s:s, s:s, s:s, s:I}", "dag", r->dag, "run_id",
                                json_string_value(json_object_get(e, "run_id")) ?: "?", "task",
                                t->name, "attempt",
                                json_integer_value(json_object_get(e, "attempt")));
    ti->cached = true;
    json_decref(e);
    if (t->npublish) {
        char err[512];
        if (ti_publish(s, ti, err, sizeof(err)) != 0) {
            LOG(LOG_ERR, "CAIRN-PUBLISH-FAILED", "%s/%s/%s: cannot publish the cached outputs "
                "(%s); running the task", r->dag, r->run_id, t->name, err);
            ti->cached = false;
            json_decref(ti->cached_from);
            ti->cached_from = NULL;
            json_decref(ti->outputs);
            ti->outputs = NULL;
            json_decref(ti->metrics);
            ti->metrics = NULL;
            return false;
        }
    }
    int64_t now = clock_wall_ms();
    ti->queued_at = now;
    ti->started_at = 0;
    ti->ended_at = now;
    ti->exit_code = -1;
    free(ti->error);
    ti->error = NULL;
    ti->artifacts_dirty = true;
    ti->decided = true;
    LOG(LOG_INFO, "CAIRN-CACHE-HIT", "%s/%s/%s: reused the outputs of %s attempt %d", r->dag,
        r->run_id, t->name, json_string_value(json_object_get(ti->cached_from, "run_id")),
        (int)json_integer_value(json_object_get(ti->cached_from, "attempt")));
    ti_finish(s, ti, TI_SUCCESS);
    return true;
}

/* Look up the task instances queued by ti_evaluate, in order; the hits'
 * downstreams join the queue. Misses become ready for workers. */
static void
cache_drain(struct sched *s)
{
    if (s->cache_qhead == s->ncache_q)
        return;
    while (s->cache_qhead < s->ncache_q) {
        struct sched_ti *ti = s->cache_q[s->cache_qhead++];
        /* cancelled (with its run) since it was queued here */
        if (ti->state != TI_PENDING || ti->run->state != RUN_RUNNING)
            continue;
        if (!ti_cache_try(s, ti))
            ti_make_ready(s, ti);
    }
    s->cache_qhead = s->ncache_q = 0;
    dispatch_parked(s);
}

void
sched_ti_set_no_cache(struct sched *s, struct sched_ti *ti, bool on)
{
    ti->no_cache = on;
    ti_dirty(s, ti, false);
}

/* Decide a pending task instance from its upstreams' states (trigger
 * rules). Called when an upstream finishes; `all_done` when none is left. */
/* Values for `when`: upstream metrics and the run's params. */
static int
when_lookup(void *ud, const char *task, const char *name, struct expr_val *out)
{
    const struct sched_run *r = ud;
    const struct dag *d = r->dv->dag;
    if (task) {
        long idx = dag_task_index(d, task);
        json_t *m = idx < 0 ? NULL : json_object_get(r->tis[idx].metrics, name);
        if (!json_is_number(m))
            return -1;
        out->type = EXPR_T_NUM;
        out->num = json_number_value(m);
        return 0;
    }
    const char *v = NULL;
    for (size_t i = 0; i < r->noverrides; i++)
        if (!strcmp(r->overrides[i].key, name))
            v = r->overrides[i].value;
    const struct dag_param *p = dag_param_find(d, name);
    if (!v && p)
        v = p->value;
    if (!v)
        return -1;
    if (!strcmp(v, "true") || !strcmp(v, "false")) {
        out->type = EXPR_T_BOOL;
        out->b = !strcmp(v, "true");
    } else {
        out->type = EXPR_T_STR; /* a numeric string compares as a number */
        out->str = v;
    }
    return 0;
}

static void
ti_evaluate(struct sched *s, struct sched_ti *ti)
{
    if (ti->decided || ti->run->state != RUN_RUNNING)
        return;
    const struct dag_task *t = &ti->run->dv->dag->tasks[ti->idx];
    int nsucc = 0, nfail = 0, nupfail = 0, nskip = 0, ndone = 0;
    for (size_t i = 0; i < t->nneeds; i++) {
        enum ti_state us = ti->run->tis[t->needs[i]].state;
        if (!sched_ti_terminal(us))
            continue;
        ndone++;
        nsucc += us == TI_SUCCESS;
        nfail += us == TI_FAILED;
        nupfail += us == TI_UPSTREAM_FAILED;
        nskip += us == TI_SKIPPED;
    }
    int n = (int)t->nneeds;
    bool all = ndone == n;
    enum ti_state out = TI_PENDING;
    switch (t->trigger_rule) {
    case DAG_TRIGGER_ALL_SUCCESS:
        if (nfail || nupfail)
            out = TI_UPSTREAM_FAILED;
        else if (nskip)
            out = TI_SKIPPED;
        else if (all)
            out = TI_QUEUED;
        break;
    case DAG_TRIGGER_ALL_DONE:
        if (all)
            out = TI_QUEUED;
        break;
    case DAG_TRIGGER_ALL_FAILED:
        if (nsucc || nskip)
            out = TI_SKIPPED;
        else if (all)
            out = TI_QUEUED;
        break;
    case DAG_TRIGGER_ONE_SUCCESS:
        if (nsucc)
            out = TI_QUEUED;
        else if (all)
            out = (nfail || nupfail) ? TI_UPSTREAM_FAILED : TI_SKIPPED;
        break;
    case DAG_TRIGGER_ONE_FAILED:
        if (nfail || nupfail)
            out = TI_QUEUED;
        else if (all)
            out = TI_SKIPPED;
        break;
    case DAG_TRIGGER_NONE_FAILED:
        if (nfail || nupfail)
            out = TI_UPSTREAM_FAILED;
        else if (all)
            out = TI_QUEUED;
        break;
    }
    if (n == 0)
        out = TI_QUEUED;
    const char *why = out == TI_SKIPPED ? "skipped by trigger rule" : "an upstream task failed";
    char err[256];
    if (out == TI_QUEUED && t->when_expr) {
        /* the `when` gate, now that the upstreams are done */
        bool yes = false;
        if (expr_eval(t->when_expr, when_lookup, ti->run, &yes, err, sizeof(err)) != 0) {
            out = TI_FAILED;
            why = err;
        } else if (!yes) {
            out = TI_SKIPPED;
            snprintf(err, sizeof(err), "condition is false: %s", t->when);
            why = err;
        }
    }
    if (out == TI_QUEUED) {
        if (t->cache) {
            /* looked up in cache_drain, before this iteration's commit: a
             * hit finishes the task, which readies its downstreams, and
             * doing that here would recurse once per hit */
            ti->decided = true;
            xgrow((void **)&s->cache_q, &s->capcache_q, s->ncache_q + 1, sizeof(*s->cache_q));
            s->cache_q[s->ncache_q++] = ti;
            return;
        }
        ti_make_ready(s, ti);
    } else if (out != TI_PENDING) {
        ti->decided = true;
        free(ti->error);
        ti->error = xstrdup(why);
        ti_finish(s, ti, out);
    }
}

/* A task instance reached a terminal state: count it, wake downstreams. */
static void
ti_finish(struct sched *s, struct sched_ti *ti, enum ti_state st)
{
    struct sched_run *r = ti->run;
    heap_remove(s, ti);
    list_del(ti);
    ti_set_state(s, ti, st);
    ti->decided = true;
    if (!ti->ended_at)
        ti->ended_at = clock_wall_ms();
    r->nfinished++;
    const struct dag_task *t = &r->dv->dag->tasks[ti->idx];
    for (size_t i = 0; i < t->ndownstream; i++) {
        struct sched_ti *d = &r->tis[t->downstream[i]];
        d->pending_up--;
        ti_evaluate(s, d);
    }
    run_check_done(s, r);
}

static void run_start(struct sched *s, struct sched_run *r);

/* A run finished: a backfill it belongs to may start the next one. */
static void
run_ended_hooks(struct sched *s, struct sched_run *r)
{
    if (r->bf_counted) {
        r->bf_counted = false;
        bf_run_ended(s->bfs, r->backfill);
    }
}

static void
admit_runs(struct sched *s, struct sched_dag *sd)
{
    int max = sd->cur ? sd->cur->dag->max_active_runs : DAG_DEFAULT_MAX_ACTIVE_RUNS;
    for (struct sched_run *r = s->runs.next; r != &s->runs && sd->active_runs < max;
         r = r->next) {
        if (r->state == RUN_QUEUED && !strcmp(r->dag, sd->name))
            run_start(s, r);
    }
}

static void
run_check_done(struct sched *s, struct sched_run *r)
{
    if (r->nfinished < r->ntis || sched_run_finished(r->state))
        return;
    bool ok = true;
    for (size_t i = 0; i < r->ntis; i++)
        if (r->tis[i].state != TI_SUCCESS && r->tis[i].state != TI_SKIPPED)
            ok = false;
    r->state = ok ? RUN_SUCCESS : RUN_FAILED;
    r->ended_at = clock_wall_ms();
    run_dirty(s, r);
    LOG(LOG_INFO, "CAIRN-RUN-DONE", "run %s of %s %s", r->run_id, r->dag,
        sched_run_state_name(r->state));
    struct sched_dag *sd = run_sdag(s, r);
    if (sd) {
        sd->active_runs--;
        admit_runs(s, sd);
    }
    run_ended_hooks(s, r);
}

static void
run_start(struct sched *s, struct sched_run *r)
{
    struct sched_dag *sd = run_sdag(s, r);
    r->state = RUN_RUNNING;
    r->started_at = clock_wall_ms();
    run_dirty(s, r);
    if (sd)
        sd->active_runs++;
    for (size_t i = 0; i < r->ntis; i++)
        if (r->tis[i].pending_up == 0)
            ti_evaluate(s, &r->tis[i]);
}

/* ---------- run creation and lookup ---------- */

static char *
run_key(const char *dag, const char *run_id)
{
    return xasprintf("%s" SEP "%s", dag, run_id);
}

static struct sched_run *
run_alloc(struct sched *s, const char *dag, const char *run_id, struct sched_dagver *dv)
{
    struct sched_run *r = xcalloc(1, sizeof(*r));
    r->dag = xstrdup(dag);
    r->run_id = xstrdup(run_id);
    r->key = run_key(dag, run_id);
    r->dv = dv;
    dv->refs++;
    r->ntis = dv->dag->ntasks;
    r->tis = xcalloc(r->ntis, sizeof(*r->tis));
    r->seq = ++s->run_seq;
    for (size_t i = 0; i < r->ntis; i++) {
        struct sched_ti *ti = &r->tis[i];
        ti->run = r;
        ti->idx = i;
        ti->state = TI_PENDING;
        ti->pending_up = (int)dv->dag->tasks[i].nneeds;
        ti->heap_idx = SIZE_MAX;
        ti->exit_code = -1;
    }
    r->next = &s->runs;
    r->prev = s->runs.prev;
    s->runs.prev->next = r;
    s->runs.prev = r;
    hmap_put(&s->runs_by_key, r->key, (size_t)(uintptr_t)r);
    return r;
}

static void
run_free(struct sched *s, struct sched_run *r)
{
    (void)s;
    for (size_t i = 0; i < r->ntis; i++) {
        free(r->tis[i].worker_name);
        free(r->tis[i].error);
        json_decref(r->tis[i].outputs);
        json_decref(r->tis[i].metrics);
        json_decref(r->tis[i].cached_from);
        json_decref(r->tis[i].published);
        json_decref(r->tis[i].prov);
    }
    free(r->tis);
    for (size_t i = 0; i < r->noverrides; i++) {
        free(r->overrides[i].key);
        free(r->overrides[i].value);
    }
    free(r->overrides);
    json_decref(r->params);
    r->dv->refs--;
    free(r->dag);
    free(r->run_id);
    free(r->run_type);
    free(r->backfill);
    free(r->key);
    free(r);
}

struct sched_run *
sched_find_run(struct sched *s, const char *dag, const char *run_id)
{
    char *key = run_key(dag, run_id);
    size_t v = 0;
    bool found = hmap_get(&s->runs_by_key, key, &v);
    free(key);
    return found ? (struct sched_run *)(uintptr_t)v : NULL;
}

static void
run_set_params(struct sched_run *r, json_t *params)
{
    r->params = params ? json_incref(params) : json_object();
    const char *k;
    json_t *v;
    r->overrides = xcalloc(json_object_size(r->params) + 1, sizeof(*r->overrides));
    json_object_foreach(r->params, k, v)
    {
        if (!json_is_string(v))
            continue;
        r->overrides[r->noverrides].key = xstrdup(k);
        r->overrides[r->noverrides].value = xstrdup(json_string_value(v));
        r->noverrides++;
    }
}

static bool
run_exists(struct sched *s, const char *dag, const char *rid)
{
    if (sched_find_run(s, dag, rid))
        return true;
    struct store_txn *t = NULL;
    void *rec = NULL;
    char *key = run_key(dag, rid);
    bool exists = false;
    if (store_txn_begin(s->store, false, &t) == 0) {
        exists = store_get(t, STORE_RUNS, key, &rec) == 0;
        json_decref(rec);
        store_txn_abort(t);
    }
    free(key);
    return exists;
}

/* A new run of the DAG's current version; it starts when max_active_runs
 * allows, oldest first. params (borrowed) are the run's overrides. */
static struct sched_run *
run_create(struct sched *s, struct sched_dag *sd, const char *rid, const char *type, int64_t ld,
           json_t *params, bool no_cache)
{
    const struct dag *d = sd->cur->dag;
    struct sched_run *r = run_alloc(s, sd->name, rid, sd->cur);
    r->run_type = xstrdup(type);
    r->logical_date = ld;
    dag_interval(d, ld, &r->interval_end);
    r->created_at = clock_wall_ms();
    r->state = RUN_QUEUED;
    run_set_params(r, params);
    r->no_cache = no_cache;
    run_dirty(s, r);
    for (size_t i = 0; i < r->ntis; i++) {
        r->tis[i].no_cache = no_cache;
        ti_dirty(s, &r->tis[i], false);
    }
    LOG(LOG_INFO, "CAIRN-RUN-CREATED", "run %s of %s created", rid, sd->name);
    admit_runs(s, sd);
    dispatch_parked(s);
    return r;
}

/* Now, for schedules: the wall clock, or the test-only fake clock set by
 * CAIRN_NOW (an ISO 8601 instant) that then advances in real time. */
static int64_t
sched_now(const struct sched *s)
{
    return clock_wall_ms() / 1000 + s->clock_skew;
}

/* Create the runs the schedules ask for (docs/architecture.md). The
 * cursor (latest logical date created) is committed with the runs, so a
 * restart neither repeats nor skips an interval. */
static void
schedule_runs(struct sched *s)
{
    int64_t now = sched_now(s);
    for (size_t i = 0; i < s->ndags && !s->stopping; i++) {
        struct sched_dag *sd = s->dags[i];
        if (!sd->cur || !sd->cur->dag->schedule || sd->paused || !sd->file)
            continue;
        int64_t due[32];
        size_t n = ticks_due(sd->cur->dag, sd->has_cursor, sd->cursor, now, due, 32);
        for (size_t k = 0; k < n; k++) {
            char ts[48], rid[128];
            cal_format_iso(due[k], 0, 1, ts, sizeof(ts));
            snprintf(rid, sizeof(rid), "scheduled__%s", ts);
            char other[128];
            enum run_state ost;
            if (!sched_run_at_date(s, sd->name, due[k], other, sizeof(other), &ost))
                run_create(s, sd, rid, "scheduled", due[k], NULL, false);
            sd->cursor = due[k];
            sd->has_cursor = true;
            dag_dirty(s, sd);
        }
    }
}

int
sched_set_paused(struct sched *s, const char *dag, bool paused)
{
    struct sched_dag *sd = sched_find_dag(s, dag);
    if (!sd)
        return CAIRN_ENOENT;
    if (sd->paused != paused) {
        sd->paused = paused;
        dag_dirty(s, sd);
        LOG(LOG_INFO, "CAIRN-DAG-PAUSE", "DAG %s %s", dag, paused ? "paused" : "unpaused");
    }
    return 0;
}

json_t *
sched_next_runs(struct sched *s, const char *dag, int n)
{
    json_t *arr = json_array();
    struct sched_dag *sd = sched_find_dag(s, dag);
    if (!sd || !sd->cur)
        return arr;
    bool has = sd->has_cursor;
    int64_t cur = sd->cursor, now = sched_now(s), ld, at;
    for (int i = 0; i < n && ticks_next(sd->cur->dag, has, cur, now, &ld, &at); i++) {
        char a[48], b[48];
        cal_format_iso(ld, 0, 1, a, sizeof(a));
        cal_format_iso(at, 0, 1, b, sizeof(b));
        json_array_append_new(arr, json_pack("{s:s, s:s}", "logical_date", a, "created_at", b));
        has = true;
        cur = ld;
        if (at > now)
            now = at;
    }
    return arr;
}

int
sched_params_check(const struct dag *d, json_t *params, json_t **out, char *err, size_t errlen)
{
    json_t *p = json_object();
    const char *k;
    json_t *v;
    if (params) {
        json_object_foreach(params, k, v)
        {
            char *txt = NULL;
            if (json_is_string(v))
                txt = xstrdup(json_string_value(v));
            else if (json_is_integer(v))
                txt = xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
            else if (json_is_real(v))
                txt = xasprintf("%.17g", json_real_value(v));
            else if (json_is_boolean(v))
                txt = xstrdup(json_is_true(v) ? "true" : "false");
            if (!txt) {
                snprintf(err, errlen, "param '%s' must be a string, number or boolean", k);
                json_decref(p);
                return CAIRN_EINVAL;
            }
            struct dag_kv kv = {(char *)k, txt};
            if (dag_check_overrides(d, &kv, 1, err, errlen) != 0) {
                free(txt);
                json_decref(p);
                return CAIRN_ENOENT;
            }
            json_object_set_new(p, k, json_string(txt));
            free(txt);
        }
    }
    *out = p;
    return 0;
}

int
sched_trigger(struct sched *s, const char *dag, int64_t logical_date, bool has_date,
              json_t *params, bool no_cache, struct sched_run **out, char *err, size_t errlen)
{
    struct sched_dag *sd = sched_find_dag(s, dag);
    if (!sd || !sd->cur) {
        snprintf(err, errlen, sd ? "DAG '%s' has no valid version to run" : "no DAG '%s'", dag);
        return CAIRN_ENOENT;
    }
    if (s->stopping) {
        snprintf(err, errlen, "the scheduler is shutting down");
        return CAIRN_ESTATE;
    }
    json_t *p = NULL;
    int rc = sched_params_check(sd->cur->dag, params, &p, err, errlen);
    if (rc)
        return rc;
    int64_t now_ms = clock_wall_ms();
    int64_t ld = has_date ? logical_date : now_ms / 1000;
    char ts[48], rid[128];
    if (has_date) {
        cal_format_iso(ld, 0, 1, ts, sizeof(ts));
    } else {
        /* manual__<now with milliseconds>: unique per DAG */
        char base[48];
        cal_format_iso(now_ms / 1000, 0, 0, base, sizeof(base));
        snprintf(ts, sizeof(ts), "%.19s.%03dZ", base, (int)(now_ms % 1000));
    }
    snprintf(rid, sizeof(rid), "manual__%s", ts);
    char other[128];
    enum run_state ost;
    if (has_date && sched_run_at_date(s, dag, ld, other, sizeof(other), &ost)) {
        snprintf(err, errlen, "DAG '%s' already has a run for logical date %s: %s (%s); use "
                 "`cairn clear %s` to run it again", dag, ts, other, sched_run_state_name(ost),
                 other);
        json_decref(p);
        return CAIRN_EEXIST;
    }
    if (run_exists(s, dag, rid)) {
        snprintf(err, errlen, "a run '%s' of DAG '%s' already exists", rid, dag);
        json_decref(p);
        return CAIRN_EEXIST;
    }
    *out = run_create(s, sd, rid, "manual", ld, p, no_cache);
    json_decref(p);
    cache_drain(s); /* the answer shows the tasks the cache finished */
    return 0;
}

/* ---------- one run per logical date; clear, retry, cancel ---------- */

static struct sched_run *run_from_record(struct sched *s, struct store_txn *t, json_t *j);
static void reply_cancel(struct sched *s, struct sched_worker *w, int64_t lease_id);
static void attempt_keep(struct sched *s, const struct sched_ti *ti);
static void lease_end(struct sched *s, struct sched_ti *ti);

static const char *const date_run_types[] = {"scheduled", "backfill", "manual"};

bool
sched_run_at_date_in(struct sched *s, struct store_txn *txn, const char *dag, int64_t ld,
                     char *rid, size_t ridlen, enum run_state *state)
{
    char ts[48];
    cal_format_iso(ld, 0, 1, ts, sizeof(ts));
    struct store_txn *t = txn;
    bool found = false;
    for (size_t i = 0; i < 3 && !found; i++) {
        char id[128];
        snprintf(id, sizeof(id), "%s__%s", date_run_types[i], ts);
        struct sched_run *r = sched_find_run(s, dag, id);
        if (r) {
            found = true;
            *state = r->state;
        } else {
            if (!t && store_txn_begin(s->store, false, &t) != 0)
                break;
            void *rec = NULL;
            char *key = run_key(dag, id);
            if (store_get(t, STORE_RUNS, key, &rec) == 0) {
                int st = sched_run_state_parse(
                    json_string_value(json_object_get(rec, "state")) ?: "");
                *state = st < 0 ? RUN_FAILED : (enum run_state)st;
                found = true;
            }
            json_decref(rec);
            free(key);
        }
        if (found)
            snprintf(rid, ridlen, "%s", id);
    }
    if (t != txn)
        store_txn_abort(t);
    return found;
}

bool
sched_run_at_date(struct sched *s, const char *dag, int64_t ld, char *rid, size_t ridlen,
                  enum run_state *state)
{
    return sched_run_at_date_in(s, NULL, dag, ld, rid, ridlen, state);
}

struct sched_run *
sched_create_run(struct sched *s, const char *dag, const char *run_id, const char *type,
                 int64_t ld, json_t *params)
{
    struct sched_dag *sd = sched_find_dag(s, dag);
    if (!sd || !sd->cur || s->stopping)
        return NULL;
    return run_create(s, sd, run_id, type, ld, params, false);
}

/* A run by id: from memory, or loaded from the store into memory (so it can
 * be changed). NULL if there is none; err says so. */
static struct sched_run *
run_get_loaded(struct sched *s, const char *dag, const char *run_id, char *err, size_t errlen)
{
    struct sched_run *r = sched_find_run(s, dag, run_id);
    if (r)
        return r;
    struct store_txn *t = NULL;
    if (store_txn_begin(s->store, false, &t) != 0) {
        snprintf(err, errlen, "cannot read the state store");
        return NULL;
    }
    void *rec = NULL;
    char *key = run_key(dag, run_id);
    if (store_get(t, STORE_RUNS, key, &rec) == 0)
        r = run_from_record(s, t, rec);
    else
        snprintf(err, errlen, "no run '%s' of DAG '%s'", run_id, dag);
    if (rec && !r)
        snprintf(err, errlen, "run '%s' of DAG '%s' cannot be loaded: its DAG version is "
                 "not stored", run_id, dag);
    json_decref(rec);
    free(key);
    store_txn_abort(t);
    if (r) {
        /* derived state of a run that was not in memory */
        for (size_t i = 0; i < r->ntis; i++) {
            r->tis[i].decided = r->tis[i].state != TI_PENDING;
            if (sched_ti_terminal(r->tis[i].state))
                r->nfinished++;
        }
    }
    return r;
}

/* Reset the selected task instances that have finished so they run again:
 * the attempt count goes on (logs and attempt records of earlier tries stay
 * readable), retries start afresh. The run goes back to queued if it had
 * finished. Returns how many were reset. */
static size_t
run_reset(struct sched *s, struct sched_run *r, const bool *sel)
{
    size_t n = 0;
    for (size_t i = 0; i < r->ntis; i++) {
        struct sched_ti *ti = &r->tis[i];
        if (!sel[i] || !sched_ti_terminal(ti->state))
            continue;
        if (ti->attempt_dirty && ti->attempts > 0)
            attempt_keep(s, ti); /* its record is written as it was */
        ti->attempt_dirty = false;
        ti->attempt_base = ti->attempts;
        ti->lost = 0;
        ti->decided = false;
        ti->state = TI_PENDING;
        ti->queued_at = ti->started_at = ti->ended_at = ti->next_try_at = 0;
        ti->exit_code = -1;
        ti->signal = 0;
        ti->oom = ti->timed_out = false;
        free(ti->error);
        ti->error = NULL;
        free(ti->worker_name);
        ti->worker_name = NULL;
        ti->lease_id = 0;
        ti->log_size = 0;
        json_decref(ti->outputs);
        ti->outputs = NULL;
        json_decref(ti->metrics);
        ti->metrics = NULL;
        /* a clear means "compute this again": no cache hit this time */
        ti->cached = false;
        json_decref(ti->cached_from);
        ti->cached_from = NULL;
        json_decref(ti->published);
        ti->published = NULL;
        ti->cache_key[0] = '\0';
        json_decref(ti->prov);
        ti->prov = NULL;
        sched_ti_set_no_cache(s, ti, true);
        r->nfinished--;
        n++;
    }
    if (!n)
        return 0;
    const struct dag *d = r->dv->dag;
    for (size_t i = 0; i < r->ntis; i++) {
        const struct dag_task *t = &d->tasks[i];
        r->tis[i].pending_up = 0;
        for (size_t u = 0; u < t->nneeds; u++)
            if (!sched_ti_terminal(r->tis[t->needs[u]].state))
                r->tis[i].pending_up++;
    }
    struct sched_dag *sd = run_sdag(s, r);
    if (sched_run_finished(r->state)) {
        r->state = RUN_QUEUED;
        r->ended_at = 0;
        run_dirty(s, r);
        LOG(LOG_INFO, "CAIRN-RUN-CLEARED", "run %s of %s cleared (%zu task%s): queued again",
            r->run_id, r->dag, n, n == 1 ? "" : "s");
        if (sd)
            admit_runs(s, sd);
    } else if (r->state == RUN_RUNNING) {
        for (size_t i = 0; i < r->ntis; i++)
            if (sel[i] && r->tis[i].state == TI_PENDING && r->tis[i].pending_up == 0)
                ti_evaluate(s, &r->tis[i]);
    }
    dispatch_parked(s);
    return n;
}

static bool
ti_failed_like(enum ti_state st)
{
    return st == TI_FAILED || st == TI_UPSTREAM_FAILED || st == TI_CANCELLED;
}

int
sched_clear(struct sched *s, const char *dag, const char *run_id, const char *task,
            unsigned flags, struct sched_run **out, char *err, size_t errlen)
{
    if (s->stopping) {
        snprintf(err, errlen, "the scheduler is shutting down");
        return CAIRN_ESTATE;
    }
    struct sched_run *r = run_get_loaded(s, dag, run_id, err, errlen);
    if (!r)
        return CAIRN_ENOENT;
    const struct dag *d = r->dv->dag;
    bool *sel = xcalloc(r->ntis + 1, sizeof(*sel));
    if (task) {
        long idx = dag_task_index(d, task);
        if (idx < 0) {
            const char *best = NULL;
            size_t bd = SIZE_MAX;
            for (size_t i = 0; i < d->ntasks; i++) {
                size_t dd = str_distance(task, d->tasks[i].name, 3);
                if (dd < bd) {
                    bd = dd;
                    best = d->tasks[i].name;
                }
            }
            if (best && bd <= 2)
                snprintf(err, errlen, "run '%s' has no task '%s'; did you mean '%s'?", run_id,
                         task, best);
            else
                snprintf(err, errlen, "run '%s' has no task '%s'", run_id, task);
            free(sel);
            return CAIRN_EINVAL;
        }
        sel[idx] = true;
    } else {
        for (size_t i = 0; i < r->ntis; i++)
            sel[i] = true;
    }
    if (flags & SCHED_CLEAR_FAILED_ONLY)
        for (size_t i = 0; i < r->ntis; i++)
            sel[i] = sel[i] && ti_failed_like(r->tis[i].state);
    if (flags & SCHED_CLEAR_DOWNSTREAM) {
        /* tasks are in topological order: one forward pass adds descendants */
        for (size_t i = 0; i < r->ntis; i++)
            if (sel[i])
                for (size_t k = 0; k < d->tasks[i].ndownstream; k++)
                    sel[d->tasks[i].downstream[k]] = true;
    }
    size_t n = run_reset(s, r, sel);
    free(sel);
    if (!n) {
        bool any_running = false;
        for (size_t i = 0; i < r->ntis; i++)
            any_running |= !sched_ti_terminal(r->tis[i].state);
        if (flags & SCHED_CLEAR_FAILED_ONLY)
            snprintf(err, errlen, "run '%s' has no failed%s task to run again%s", run_id,
                     task ? " matching" : "", any_running ? " (others are still running)" : "");
        else
            snprintf(err, errlen, "nothing to clear in run '%s': the task%s still %s", run_id,
                     task ? " is" : "s are", "queued or running");
        return CAIRN_ESTATE;
    }
    *out = r;
    return 0;
}

int
sched_cancel(struct sched *s, const char *dag, const char *run_id, struct sched_run **out,
             char *err, size_t errlen)
{
    struct sched_run *r = sched_find_run(s, dag, run_id);
    if (!r || sched_run_finished(r->state)) {
        enum run_state st = RUN_FAILED;
        if (r)
            st = r->state;
        else if (!run_exists(s, dag, run_id)) {
            snprintf(err, errlen, "no run '%s' of DAG '%s'", run_id, dag);
            return CAIRN_ENOENT;
        }
        snprintf(err, errlen, "run '%s' of DAG '%s' has already finished%s%s%s", run_id, dag,
                 r ? " (" : "", r ? sched_run_state_name(st) : "", r ? ")" : "");
        return CAIRN_ESTATE;
    }
    enum run_state was = r->state;
    /* first the run, so finishing its tasks wakes no downstream */
    r->state = RUN_CANCELLED;
    r->ended_at = clock_wall_ms();
    run_dirty(s, r);
    size_t killed = 0;
    for (size_t i = 0; i < r->ntis; i++) {
        struct sched_ti *ti = &r->tis[i];
        if (sched_ti_terminal(ti->state))
            continue;
        if ((ti->state == TI_LEASED || ti->state == TI_RUNNING) && !ti->publishing) {
            struct sched_worker *w = ti->worker;
            int64_t id = ti->lease_id;
            lease_end(s, ti);
            if (w)
                reply_cancel(s, w, id); /* else its next heartbeat learns it */
            killed++;
        }
        ti->publishing = false; /* a publish still copying is dropped when done */
        free(ti->error);
        ti->error = xstrdup("cancelled");
        ti_finish(s, ti, TI_CANCELLED);
    }
    LOG(LOG_INFO, "CAIRN-RUN-CANCELLED", "run %s of %s cancelled (%zu attempt%s stopped)",
        run_id, dag, killed, killed == 1 ? "" : "s");
    struct sched_dag *sd = run_sdag(s, r);
    if (was == RUN_RUNNING && sd) {
        sd->active_runs--;
        admit_runs(s, sd);
    }
    run_ended_hooks(s, r);
    dispatch_parked(s);
    *out = r;
    return 0;
}

/* ---------- workers and leases ---------- */

static struct sched_worker *
worker_find(struct sched *s, const char *name)
{
    for (size_t i = 0; i < s->nworkers; i++)
        if (!strcmp(s->workers[i]->name, name))
            return s->workers[i];
    return NULL;
}

static bool
labels_match(const struct dag_task *t, const struct sched_worker *w)
{
    for (size_t i = 0; i < t->nlabels; i++) {
        size_t j;
        for (j = 0; j < w->nlabels; j++)
            if (!strcmp(t->labels[i].key, w->labels[j].key) &&
                !strcmp(t->labels[i].value, w->labels[j].value))
                break;
        if (j == w->nlabels)
            return false;
    }
    return true;
}

static struct sched_ti *
lease_lookup(struct sched *s, int64_t lease_id)
{
    char key[24];
    size_t v;
    snprintf(key, sizeof(key), "%" PRId64, lease_id);
    if (!hmap_get(&s->lease_map, key, &v) || !v)
        return NULL;
    struct sched_ti *ti = (struct sched_ti *)(uintptr_t)v;
    if (ti->lease_id != lease_id || (ti->state != TI_LEASED && ti->state != TI_RUNNING))
        return NULL;
    return ti;
}

/* Whether worker w holds the lease of ti. A lease recovered after a restart
 * has no worker yet: the worker it was handed to (by name) claims it when
 * it reports it, so a task that ran on through the restart is not redone. */
static bool
lease_owned(struct sched_ti *ti, struct sched_worker *w)
{
    if (ti->worker)
        return ti->worker == w;
    if (!ti->worker_name || strcmp(ti->worker_name, w->name) != 0)
        return false;
    ti->worker = w;
    w->busy++;
    return true;
}

static void
lease_register(struct sched *s, struct sched_ti *ti)
{
    snprintf(ti->lease_key, sizeof(ti->lease_key), "%" PRId64, ti->lease_id);
    hmap_put(&s->lease_map, ti->lease_key, (size_t)(uintptr_t)ti);
}

static void
lease_unregister(struct sched *s, struct sched_ti *ti)
{
    if (ti->lease_key[0])
        hmap_del(&s->lease_map, ti->lease_key);
    ti->lease_key[0] = '\0';
}

static json_t *
lease_json(struct sched *s, struct sched_ti *ti)
{
    struct sched_run *r = ti->run;
    const struct dag *d = r->dv->dag;
    const struct dag_task *t = &d->tasks[ti->idx];
    struct dag_run_ctx rc = {r->logical_date, r->interval_end, r->run_id, r->overrides,
                             r->noverrides};
    char **argv = NULL, **envp = NULL, err[256];
    if (dag_render_task(d, ti->idx, &rc, &argv, &envp, err, sizeof(err)) != 0)
        return NULL;
    json_t *ja = json_array(), *je = json_array(), *jo = json_array();
    for (char **p = argv; *p; p++)
        json_array_append_new(ja, json_string(*p));
    char ld[48];
    cal_format_iso(r->logical_date, 0, 1, ld, sizeof(ld));
    json_array_append_new(je, json_sprintf("CAIRN_DAG=%s", d->name));
    json_array_append_new(je, json_sprintf("CAIRN_RUN_ID=%s", r->run_id));
    json_array_append_new(je, json_sprintf("CAIRN_TASK=%s", t->name));
    json_array_append_new(je, json_sprintf("CAIRN_ATTEMPT=%d", ti->attempts));
    json_array_append_new(je, json_sprintf("CAIRN_LOGICAL_DATE=%s", ld));
    for (char **p = envp; *p; p++)
        json_array_append_new(je, json_string(*p));
    for (size_t i = 0; i < t->noutputs; i++)
        json_array_append_new(jo, json_string(t->outputs[i]));
    dag_strv_free(argv);
    dag_strv_free(envp);
    /* inputs resolve to the artifacts their upstream attempt stored */
    json_t *ji = json_array(), *pi = json_array();
    for (size_t i = 0; i < t->ninputs; i++) {
        const struct dag_input *in = &t->inputs[i];
        json_t *found = input_artifact(r, in);
        if (!found) {
            LOG(LOG_ERR, "CAIRN-INPUT-MISSING", "%s/%s/%s: input '%s' (%s/%s) has no stored "
                "artifact", r->dag, r->run_id, t->name, in->name, in->task, in->file);
            json_decref(ja);
            json_decref(je);
            json_decref(jo);
            json_decref(ji);
            json_decref(pi);
            return NULL;
        }
        json_t *sha = json_object_get(found, "sha256");
        json_array_append_new(ji, json_pack("{s:s, s:O, s:O}", "name", in->name, "sha256", sha,
                                            "uri", json_object_get(found, "uri")));
        json_array_append_new(pi, json_pack("{s:s, s:s, s:s, s:O}", "name", in->name, "task",
                                            in->task, "file", in->file, "sha256", sha));
    }
    /* provenance for the attempt record: the same arrays the lease carries
     * (shared, never changed after this) */
    json_decref(ti->prov);
    ti->prov = json_pack("{s:s, s:O, s:O, s:o}", "image", t->image, "argv", ja, "env", je,
                         "inputs", pi);
    struct sched_dag *sd = sched_find_dag(s, r->dag);
    char *code = d->code ? dag_code_path(d->code, sd ? sd->file : NULL) : NULL;
    json_t *extra = json_pack("{s:s?, s:s?}", "code", code, "metrics", t->metrics);
    free(code);
    json_t *lease = json_pack("{s:I, s:s, s:s, s:s, s:i, s:s, s:o, s:o, s:s, s:I, s:f, s:I, s:I, s:b, "
                     "s:o, s:o}",
                     "lease_id", (json_int_t)ti->lease_id, "dag", d->name, "run_id", r->run_id,
                     "task", t->name, "attempt", ti->attempts, "logical_date", ld, "argv", ja,
                     "env", je, "image", t->image, "timeout_ms", (json_int_t)t->timeout_ms,
                     "cpus", t->cpus, "memory", (json_int_t)t->memory_bytes, "pids",
                     (json_int_t)t->pids, "network", t->network, "inputs", ji, "outputs", jo);
    json_object_update(lease, extra);
    json_decref(extra);
    return lease;
}

static char *attempt_key(const struct sched_ti *ti);
static json_t *attempt_record(const struct sched_ti *ti);

/* Keep the record of an attempt that ended but is not stored yet, before
 * the next attempt of the same task instance takes over its fields. */
static void
attempt_keep(struct sched *s, const struct sched_ti *ti)
{
    char *key = attempt_key(ti);
    json_object_set_new(s->ended_attempts, key, attempt_record(ti));
    free(key);
}

/* Hand ready task instances to a worker; returns the leases (maybe empty). */
static json_t *
dispatch(struct sched *s, struct sched_worker *w, int free_slots)
{
    json_t *leases = json_array();
    struct sched_ti **aside = NULL;
    size_t naside = 0, capaside = 0;
    while (free_slots > 0 && !s->stopping) {
        struct sched_ti *ti = heap_pop(s);
        if (!ti)
            break;
        const struct dag *d = ti->run->dv->dag;
        const struct dag_task *t = &d->tasks[ti->idx];
        struct sched_dag *sd = run_sdag(s, ti->run);
        int max_tasks = d->max_active_tasks;
        if (!labels_match(t, w) || (sd && sd->active_tasks >= max_tasks)) {
            xgrow((void **)&aside, &capaside, naside + 1, sizeof(*aside));
            aside[naside++] = ti;
            continue;
        }
        if (ti->attempt_dirty && ti->attempts > 0)
            attempt_keep(s, ti); /* the last attempt ended in this iteration */
        json_decref(ti->prov); /* lease_json sets the new attempt's */
        ti->prov = NULL;
        ti->attempts++;
        ti->lease_id = ++s->lease_seq;
        s->lease_seq_dirty = true;
        ti->lease_expires = clock_mono_ms() + s->cfg.lease_ttl_ms;
        ti->worker = w;
        free(ti->worker_name);
        ti->worker_name = xstrdup(w->name);
        ti->started_at = clock_wall_ms();
        ti->ended_at = 0;
        ti->exit_code = -1;
        ti->signal = 0;
        ti->oom = ti->timed_out = false;
        free(ti->error);
        ti->error = NULL;
        ti->log_size = 0;
        ti->cached = false;
        json_decref(ti->cached_from);
        ti->cached_from = NULL;
        json_decref(ti->published);
        ti->published = NULL;
        json_t *lj = lease_json(s, ti);
        if (!lj) {
            ti->error = xstrdup("cannot prepare the task: a template does not render or an "
                                "input has no stored artifact");
            ti_finish(s, ti, TI_FAILED);
            continue;
        }
        ti_set_state(s, ti, TI_LEASED);
        ti_dirty(s, ti, true);
        list_add(&s->leases, ti);
        lease_register(s, ti);
        ti->run->active++;
        if (sd)
            sd->active_tasks++;
        w->busy++;
        json_array_append_new(leases, lj);
        free_slots--;
    }
    for (size_t i = 0; i < naside; i++)
        heap_push(s, aside[i]);
    free(aside);
    return leases;
}

/* Work became available: give it to workers waiting in a POLL. */
static void
dispatch_parked(struct sched *s)
{
    if (!s->nheap)
        return;
    for (size_t i = 0; i < s->nworkers && s->nheap; i++) {
        struct sched_worker *w = s->workers[i];
        if (!w->parked)
            continue;
        /* the scheduler's own count: results that arrived since the POLL
         * freed slots the POLL did not know about yet */
        json_t *leases = dispatch(s, w, w->slots - w->busy);
        if (json_array_size(leases) == 0) {
            json_decref(leases);
            continue;
        }
        reply_later(s, w->parked, PROTO_WORK,
                    json_pack("{s:o, s:[]}", "leases", leases, "cancel"));
        w->parked = NULL;
    }
}

/* Tell a worker to stop an attempt now if it waits in a POLL; otherwise its
 * next heartbeat learns that the lease is gone. */
static void
reply_cancel(struct sched *s, struct sched_worker *w, int64_t lease_id)
{
    if (!w->parked)
        return;
    reply_later(s, w->parked, PROTO_WORK,
                json_pack("{s:[], s:[I]}", "leases", "cancel", (json_int_t)lease_id));
    w->parked = NULL;
}

/* An attempt is over (result, lease lost, cancel): free its slot. */
static void
lease_end(struct sched *s, struct sched_ti *ti)
{
    list_del(ti);
    lease_unregister(s, ti);
    ti->run->active--;
    struct sched_dag *sd = run_sdag(s, ti->run);
    if (sd)
        sd->active_tasks--;
    if (ti->worker) {
        ti->worker->busy--;
        ti->worker = NULL;
    }
    ti->ended_at = clock_wall_ms();
    ti_dirty(s, ti, true);
}

static int64_t
retry_delay(const struct dag_task *t, int attempt)
{
    double d = (double)t->retry_delay_ms * pow(t->retry_backoff, attempt > 1 ? attempt - 1 : 0);
    if (d > (double)t->max_retry_delay_ms)
        d = (double)t->max_retry_delay_ms;
    return (int64_t)d;
}

/* A failed attempt: retry if tries remain, else fail. */
static void
attempt_failed(struct sched *s, struct sched_ti *ti)
{
    const struct dag_task *t = &ti->run->dv->dag->tasks[ti->idx];
    int counted = ti->attempts - ti->attempt_base - ti->lost;
    if (counted <= t->retries) {
        ti->next_try_at = clock_wall_ms() + retry_delay(t, counted);
        ti_set_state(s, ti, TI_UP_FOR_RETRY);
        list_add(&s->retries, ti);
        LOG(LOG_INFO, "CAIRN-TASK-RETRY", "%s/%s/%s attempt %d failed (%s); retry in %" PRId64
            " ms", ti->run->dag, ti->run->run_id, t->name, ti->attempts,
            ti->error ? ti->error : "?", ti->next_try_at - clock_wall_ms());
    } else {
        LOG(LOG_INFO, "CAIRN-TASK-FAILED", "%s/%s/%s failed after %d attempt%s: %s",
            ti->run->dag, ti->run->run_id, t->name, ti->attempts, ti->attempts == 1 ? "" : "s",
            ti->error ? ti->error : "?");
        ti_finish(s, ti, TI_FAILED);
    }
}

/* An attempt ended for a reason that is not the task's fault (its worker
 * went quiet or was shut down): try again without using up a retry, up to
 * max_lost times. */
static void
lease_lost(struct sched *s, struct sched_ti *ti, const char *code, const char *why)
{
    free(ti->error);
    ti->error = xstrdup(why);
    LOG(LOG_WARN, code, "%s/%s/%s attempt %d: %s", ti->run->dag,
        ti->run->run_id, ti->run->dv->dag->tasks[ti->idx].name, ti->attempts, why);
    lease_end(s, ti);
    if (ti->lost < s->cfg.max_lost) {
        /* not the task's fault: try again without using up a retry */
        ti->lost++;
        ti_make_ready(s, ti);
    } else {
        attempt_failed(s, ti);
    }
}

/* ---------- requests from workers ---------- */

/* Refuse a request (or one item of a BATCH). */
static void
req_error(struct wire_req *req, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
req_error(struct wire_req *req, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (req->batch)
        json_array_append_new(req->batch, json_pack("{s:b, s:s, s:s}", "ok", 0, "reason", msg,
                                                    "code", code));
    else
        wire_reply_error(req, code, "%s", msg);
}

static void
ack(struct sched *s, struct wire_req *req, bool ok, const char *reason)
{
    reply_later(s, req, PROTO_ACK,
                json_pack("{s:b, s:s}", "ok", ok, "reason", reason ? reason : ""));
}

static void
handle_hello(struct sched *s, struct wire_req *req)
{
    char err[256];
    const char *name = NULL, *host = "";
    int64_t slots = 0;
    if (proto_get_str(req->body, "worker", &name, err, sizeof(err)) ||
        proto_get_int(req->body, "slots", 1, 100000, &slots, err, sizeof(err)) ||
        proto_opt_str(req->body, "host", &host, err, sizeof(err))) {
        req_error(req, "proto", "%s", err);
        return;
    }
    json_t *labels = json_object_get(req->body, "labels");
    if (labels && !json_is_object(labels)) {
        req_error(req, "proto", "field 'labels' must be an object");
        return;
    }
    struct sched_worker *w = worker_find(s, name);
    if (!w) {
        w = xcalloc(1, sizeof(*w));
        w->name = xstrdup(name);
        xgrow((void **)&s->workers, &s->capworkers, s->nworkers + 1, sizeof(*s->workers));
        s->workers[s->nworkers++] = w;
    }
    if (w->parked) {
        json_t *b = json_pack("{s:[], s:[]}", "leases", "cancel");
        wire_reply(w->parked, PROTO_WORK, b);
        json_decref(b);
        w->parked = NULL;
    }
    free(w->host);
    w->host = xstrdup(host);
    w->slots = (int)slots;
    for (size_t i = 0; i < w->nlabels; i++) {
        free(w->labels[i].key);
        free(w->labels[i].value);
    }
    free(w->labels);
    w->labels = NULL;
    w->nlabels = 0;
    if (labels) {
        const char *k;
        json_t *v;
        w->labels = xcalloc(json_object_size(labels) + 1, sizeof(*w->labels));
        json_object_foreach(labels, k, v)
        {
            if (!json_is_string(v))
                continue;
            w->labels[w->nlabels].key = xstrdup(k);
            w->labels[w->nlabels].value = xstrdup(json_string_value(v));
            w->nlabels++;
        }
    }
    w->alive = true;
    w->pipe = req->pipe;
    w->last_seen = clock_mono_ms();
    w->last_seen_wall = clock_wall_ms();
    w->connected_at = clock_wall_ms();
    LOG(LOG_INFO, "CAIRN-WORKER-HELLO", "worker %s (%s) joined with %d slots", w->name, w->host,
        w->slots);
    json_t *b = json_pack("{s:I, s:I, s:s}", "lease_ttl_ms", (json_int_t)s->cfg.lease_ttl_ms,
                          "heartbeat_ms", (json_int_t)s->cfg.heartbeat_ms, "artifacts",
                          art_uri(s->art));
    wire_reply(req, PROTO_WELCOME, b);
    json_decref(b);
}

static struct sched_worker *
req_worker(struct sched *s, struct wire_req *req)
{
    char err[256];
    const char *name = NULL;
    if (proto_get_str(req->body, "worker", &name, err, sizeof(err))) {
        req_error(req, "proto", "%s", err);
        return NULL;
    }
    struct sched_worker *w = worker_find(s, name);
    if (!w) {
        req_error(req, "unknown_worker", "unknown worker '%s'; send HELLO first", name);
        return NULL;
    }
    w->last_seen = clock_mono_ms();
    w->last_seen_wall = clock_wall_ms();
    w->pipe = req->pipe;
    if (!w->alive)
        LOG(LOG_INFO, "CAIRN-WORKER-BACK", "worker %s is back", w->name);
    w->alive = true;
    return w;
}

static void
handle_poll(struct sched *s, struct wire_req *req)
{
    char err[256];
    int64_t free_slots = 0, wait_ms = 0;
    struct sched_worker *w = req_worker(s, req);
    if (!w)
        return;
    if (proto_get_int(req->body, "free", 0, 100000, &free_slots, err, sizeof(err)) ||
        proto_opt_int(req->body, "wait_ms", 0, 600000, &wait_ms, err, sizeof(err))) {
        req_error(req, "proto", "%s", err);
        return;
    }
    json_t *held = json_object_get(req->body, "leases");
    json_t *cancel = json_array();
    if (held && json_is_array(held)) {
        size_t i;
        json_t *v;
        json_array_foreach(held, i, v)
        {
            if (!json_is_integer(v))
                continue;
            struct sched_ti *ti = lease_lookup(s, json_integer_value(v));
            if (ti && lease_owned(ti, w))
                ti->lease_expires = clock_mono_ms() + s->cfg.lease_ttl_ms;
            else
                json_array_append(cancel, v);
        }
    }
    if (w->parked) { /* a newer POLL replaces an older one */
        json_t *b = json_pack("{s:[], s:[]}", "leases", "cancel");
        wire_reply(w->parked, PROTO_WORK, b);
        json_decref(b);
        w->parked = NULL;
    }
    /* trust our own lease count over the worker's (it may not have seen
     * the result we just applied), but never exceed what it offers */
    int room = w->slots - w->busy;
    json_t *leases = dispatch(s, w, (int)free_slots < room ? (int)free_slots : room);
    if (json_array_size(leases) > 0 || json_array_size(cancel) > 0 || wait_ms == 0 ||
        s->stopping) {
        reply_later(s, req, PROTO_WORK, json_pack("{s:o, s:o}", "leases", leases, "cancel", cancel));
        return;
    }
    json_decref(leases);
    json_decref(cancel);
    if (wait_ms > POLL_WAIT_MAX_MS)
        wait_ms = POLL_WAIT_MAX_MS;
    w->parked = req;
    w->parked_free = (int)free_slots;
    w->parked_until = clock_mono_ms() + wait_ms;
}

static struct sched_ti *
req_lease(struct sched *s, struct wire_req *req, struct sched_worker **wout)
{
    char err[256];
    int64_t lease_id = 0;
    struct sched_worker *w = req_worker(s, req);
    if (!w)
        return NULL;
    if (proto_get_int(req->body, "lease_id", 1, INT64_MAX, &lease_id, err, sizeof(err))) {
        req_error(req, "proto", "%s", err);
        return NULL;
    }
    struct sched_ti *ti = lease_lookup(s, lease_id);
    if (!ti || !lease_owned(ti, w)) {
        LOG(LOG_WARN, "CAIRN-LEASE-STALE", "worker %s sent %s for lease %" PRId64
            ", which is not current: ignored", w->name, proto_type_name(req->type), lease_id);
        reply_later(s, req, PROTO_ACK,
                    json_pack("{s:b, s:s}", "ok", 0, "reason", "lease is not current"));
        return NULL;
    }
    *wout = w;
    return ti;
}

static void
handle_started(struct sched *s, struct wire_req *req)
{
    struct sched_worker *w;
    struct sched_ti *ti = req_lease(s, req, &w);
    if (!ti)
        return;
    if (ti->state == TI_LEASED) {
        ti->started_at = clock_wall_ms();
        ti_set_state(s, ti, TI_RUNNING);
        ti_dirty(s, ti, true);
    }
    ack(s, req, true, NULL);
}

char *
sched_log_path(const struct sched *s, const char *dag, const char *run_id, const char *task,
               int attempt)
{
    return xasprintf("%s/logs/%s/%s/%s/%d.log", s->cfg.data_dir, dag, run_id, task, attempt);
}

static void
handle_log(struct sched *s, struct wire_req *req)
{
    char err[256];
    struct sched_worker *w;
    int64_t offset = 0;
    const char *data = NULL;
    struct sched_ti *ti = req_lease(s, req, &w);
    if (!ti)
        return;
    if (proto_get_int(req->body, "offset", 0, INT64_MAX, &offset, err, sizeof(err)) ||
        proto_get_str(req->body, "data", &data, err, sizeof(err))) {
        req_error(req, "proto", "%s", err);
        return;
    }
    size_t len = json_string_length(json_object_get(req->body, "data"));
    if (offset > ti->log_size) {
        ack(s, req, false, "gap in log offsets");
        return;
    }
    size_t skip = (size_t)(ti->log_size - offset);
    if (skip >= len) { /* a resend of what we have */
        ack(s, req, true, NULL);
        return;
    }
    const struct dag_task *t = &ti->run->dv->dag->tasks[ti->idx];
    char *path = sched_log_path(s, ti->run->dag, ti->run->run_id, t->name, ti->attempts);
    char *dir = xstrdup(path);
    *strrchr(dir, '/') = '\0';
    int fd = -1;
    if (fs_mkdirs(dir) == 0)
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    free(dir);
    if (fd < 0) {
        LOG(LOG_ERR, "CAIRN-LOG-WRITE", "cannot open %s: %s", path, strerror(errno));
        free(path);
        ack(s, req, false, "cannot store log");
        return;
    }
    /* at the durable size, not the end of the file: bytes written before a
     * crash but never committed are overwritten by the worker's resend */
    ssize_t wn = pwrite(fd, data + skip, len - skip, (off_t)ti->log_size);
    close(fd);
    if (wn < 0 || (size_t)wn != len - skip) {
        LOG(LOG_ERR, "CAIRN-LOG-WRITE", "cannot write %s: %s", path,
            wn < 0 ? strerror(errno) : "short write");
        free(path);
        ack(s, req, false, "cannot store log");
        return;
    }
    free(path);
    ti->log_size += (int64_t)(len - skip);
    ti_dirty(s, ti, true);
    ack(s, req, true, NULL);
}

/* Check the artifacts a RESULT reports against what the task declared:
 * every declared output exactly once, well-formed digests. Returns a new
 * array or NULL with err set. */
static json_t *
result_outputs(const struct sched_ti *ti, json_t *outs, char *err, size_t errlen)
{
    const struct dag_task *t = &ti->run->dv->dag->tasks[ti->idx];
    json_t *res = json_array();
    for (size_t i = 0; i < t->noutputs; i++) {
        json_t *found = NULL, *v;
        size_t k;
        if (json_is_array(outs))
            json_array_foreach(outs, k, v)
            {
                if (!strcmp(json_string_value(json_object_get(v, "name")) ?: "", t->outputs[i]))
                    found = v;
            }
        const char *sha = found ? json_string_value(json_object_get(found, "sha256")) : NULL;
        const char *uri = found ? json_string_value(json_object_get(found, "uri")) : NULL;
        json_t *size = found ? json_object_get(found, "size") : NULL;
        if (!sha || !art_hex_valid(sha) || !uri || !json_is_integer(size)) {
            snprintf(err, errlen, "declared output '%s' was not stored by the worker",
                     t->outputs[i]);
            json_decref(res);
            return NULL;
        }
        json_array_append_new(res, json_pack("{s:s, s:s, s:O, s:s}", "name", t->outputs[i],
                                             "sha256", sha, "size", size, "uri", uri));
    }
    return res;
}

static void
handle_result(struct sched *s, struct wire_req *req)
{
    char err[256];
    struct sched_worker *w;
    int64_t exit_code = -1, sig = 0, duration = 0;
    const char *error = "";
    struct sched_ti *ti = req_lease(s, req, &w);
    if (!ti)
        return;
    if (proto_get_int(req->body, "exit_code", -1, 255, &exit_code, err, sizeof(err)) ||
        proto_opt_int(req->body, "signal", 0, 128, &sig, err, sizeof(err)) ||
        proto_opt_int(req->body, "duration_ms", 0, INT64_MAX, &duration, err, sizeof(err)) ||
        proto_opt_str(req->body, "error", &error, err, sizeof(err))) {
        req_error(req, "proto", "%s", err);
        return;
    }
    if (json_is_true(json_object_get(req->body, "interrupted")) && exit_code != 0) {
        /* the worker was shut down under the task: not the task's fault */
        ti->exit_code = (int)exit_code;
        ti->signal = (int)sig;
        char why[256];
        snprintf(why, sizeof(why), "worker %s was stopped while the task ran", w->name);
        lease_lost(s, ti, "CAIRN-WORKER-STOPPED-TASK", why);
        ack(s, req, true, NULL);
        dispatch_parked(s);
        return;
    }
    ti->exit_code = (int)exit_code;
    ti->signal = (int)sig;
    ti->oom = json_is_true(json_object_get(req->body, "oom"));
    ti->timed_out = json_is_true(json_object_get(req->body, "timed_out"));
    free(ti->error);
    ti->error = NULL;
    if (*error)
        ti->error = xstrdup(error);
    else if (ti->timed_out)
        ti->error = xstrdup("timed out");
    else if (ti->oom)
        ti->error = xstrdup("killed: out of memory");
    else if (sig)
        ti->error = xasprintf("killed by signal %d", (int)sig);
    else if (exit_code != 0)
        ti->error = xasprintf("exit code %d", (int)exit_code);
    lease_end(s, ti);
    if (exit_code == 0 && !*error && !ti->timed_out && !ti->oom && !sig) {
        json_t *outs = result_outputs(ti, json_object_get(req->body, "outputs"), err,
                                      sizeof(err));
        if (!outs) {
            free(ti->error);
            ti->error = xstrdup(err);
            attempt_failed(s, ti);
            ack(s, req, true, NULL);
            dispatch_parked(s);
            return;
        }
        json_decref(ti->outputs);
        ti->outputs = outs;
        json_t *mets = json_object_get(req->body, "metrics");
        json_decref(ti->metrics);
        ti->metrics = NULL;
        if (json_is_object(mets) && json_object_size(mets)) {
            const char *mk;
            json_t *mv;
            ti->metrics = json_object();
            json_object_foreach(mets, mk, mv)
            {
                if (json_is_number(mv))
                    json_object_set(ti->metrics, mk, mv);
            }
        }
        const struct dag_task *t = &ti->run->dv->dag->tasks[ti->idx];
        if (t->npublish) {
            /* the copy runs on the thread pool; the task stays running
             * (without a lease) until it is done: publish_done */
            struct publish_job *j = publish_prepare(s, ti, err, sizeof(err));
            if (j) {
                j->req.data = j;
                ti->publishing = true;
                ti_dirty(s, ti, false);
                s->npublishing++;
                uv_queue_work(s->loop, &j->req, publish_work, publish_done);
            } else {
                free(ti->error);
                ti->error = xasprintf("cannot publish to the models folder: %s", err);
                attempt_failed(s, ti);
            }
            ack(s, req, true, NULL);
            dispatch_parked(s);
            return;
        }
        ti->artifacts_dirty = true;
        if (t->cache && ti->cache_key[0])
            cache_store(s, ti);
        ti_finish(s, ti, TI_SUCCESS);
    } else {
        attempt_failed(s, ti);
    }
    ack(s, req, true, NULL);
    dispatch_parked(s);
}

/* A worker's connection closed: a POLL it left parked can no longer be
 * answered, so do not hand it work. Its leases stay until they expire: the
 * worker may reconnect and report them. */
static void
wire_gone_cb(void *ud, uint32_t pipe)
{
    struct sched *s = ud;
    for (size_t i = 0; i < s->nworkers; i++) {
        struct sched_worker *w = s->workers[i];
        if (w->pipe != pipe)
            continue;
        if (w->parked) {
            wire_drop(w->parked);
            w->parked = NULL;
        }
        LOG(LOG_INFO, "CAIRN-WORKER-DISCONNECTED", "worker %s disconnected", w->name);
    }
}

static void handle_started(struct sched *s, struct wire_req *req);
static void handle_log(struct sched *s, struct wire_req *req);
static void handle_result(struct sched *s, struct wire_req *req);

/* Several reports in order, answered together after one commit. */
static void
handle_batch(struct sched *s, struct wire_req *req)
{
    if (!req_worker(s, req))
        return;
    json_t *items = json_object_get(req->body, "items");
    if (!json_is_array(items)) {
        req_error(req, "proto", "field 'items' must be an array");
        return;
    }
    json_t *results = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        struct wire_req sub = {0};
        json_int_t type = json_integer_value(json_object_get(it, "type"));
        json_t *body = json_object_get(it, "body");
        sub.type = (int)type;
        sub.body = body;
        sub.pipe = req->pipe;
        sub.batch = results;
        if (!json_is_object(body)) {
            req_error(&sub, "proto", "batch item %zu has no body object", i);
            continue;
        }
        switch (type) {
        case PROTO_STARTED:
            handle_started(s, &sub);
            break;
        case PROTO_LOG:
            handle_log(s, &sub);
            break;
        case PROTO_RESULT:
            handle_result(s, &sub);
            break;
        default:
            req_error(&sub, "proto", "batch item %zu: type %d cannot be batched", i, (int)type);
        }
    }
    reply_later(s, req, PROTO_ACK, json_pack("{s:b, s:o}", "ok", 1, "results", results));
}

static void
wire_cb(void *ud, struct wire_req *req)
{
    struct sched *s = ud;
    switch (req->type) {
    case PROTO_BATCH:
        handle_batch(s, req);
        break;
    case PROTO_HELLO:
        handle_hello(s, req);
        break;
    case PROTO_POLL:
        handle_poll(s, req);
        break;
    case PROTO_STARTED:
        handle_started(s, req);
        break;
    case PROTO_LOG:
        handle_log(s, req);
        break;
    case PROTO_RESULT:
        handle_result(s, req);
        break;
    default:
        req_error(req, "proto", "unexpected message type");
    }
}

/* ---------- persistence ---------- */

static json_t *
ti_record(const struct sched_ti *ti)
{
    const struct dag_task *t = &ti->run->dv->dag->tasks[ti->idx];
    json_t *j = json_pack("{s:s, s:s, s:i, s:i, s:i, s:I, s:s?, s:o, s:o, s:o, s:o, s:i, s:i, s:b, "
                     "s:b, s:s?, s:I, s:o, s:o}",
                     "task", t->name, "state", sched_ti_state_name(ti->state), "attempts",
                     ti->attempts, "max_attempts", ti->attempt_base + t->retries + 1 + ti->lost,
                     "lost", ti->lost,
                     "lease_id", (json_int_t)ti->lease_id, "worker", ti->worker_name,
                     "queued_at", sched_json_time(ti->queued_at), "started_at",
                     sched_json_time(ti->started_at), "ended_at", sched_json_time(ti->ended_at),
                     "next_try_at", sched_json_time(ti->next_try_at), "exit_code", ti->exit_code,
                     "signal", ti->signal, "oom_killed", ti->oom, "timed_out", ti->timed_out,
                     "error", ti->error, "log_size", (json_int_t)ti->log_size, "outputs",
                     ti->outputs ? json_incref(ti->outputs) : json_array(), "metrics",
                     ti->metrics ? json_incref(ti->metrics) : json_object());
    if (ti->attempt_base)
        json_object_set_new(j, "attempt_base", json_integer(ti->attempt_base));
    if (ti->publishing)
        json_object_set_new(j, "publishing", json_true());
    json_object_set_new(j, "cached", json_boolean(ti->cached));
    json_object_set_new(j, "cached_from",
                        ti->cached_from ? json_incref(ti->cached_from) : json_null());
    json_object_set_new(j, "no_cache", json_boolean(ti->no_cache));
    json_object_set_new(j, "cache_key",
                        ti->cache_key[0] ? json_string(ti->cache_key) : json_null());
    json_object_set_new(j, "published", ti->published ? json_incref(ti->published) : json_null());
    return j;
}

static char *
attempt_key(const struct sched_ti *ti)
{
    return xasprintf("%s" SEP "%s" SEP "%06d", ti->run->key,
                     ti->run->dv->dag->tasks[ti->idx].name, ti->attempts);
}

static json_t *
attempt_record(const struct sched_ti *ti)
{
    const char *st = ti->state == TI_LEASED      ? "leased"
                     : ti->state == TI_RUNNING   ? "running"
                     : ti->state == TI_SUCCESS   ? "success"
                     : ti->state == TI_CANCELLED ? "cancelled"
                                                 : "failed";
    int64_t dur = ti->ended_at && ti->started_at ? ti->ended_at - ti->started_at : 0;
    json_t *rec = json_pack(
        "{s:i, s:I, s:s?, s:s, s:o, s:o, s:i, s:i, s:b, s:b, s:s?, s:I, s:I}", "attempt",
        ti->attempts, "lease_id", (json_int_t)ti->lease_id, "worker", ti->worker_name, "state",
        st, "started_at", sched_json_time(ti->started_at), "ended_at",
        sched_json_time(ti->ended_at), "exit_code", ti->exit_code, "signal", ti->signal,
        "oom_killed", ti->oom, "timed_out", ti->timed_out, "error", ti->error, "log_size",
        (json_int_t)ti->log_size, "duration_ms", (json_int_t)dur);
    /* image, argv, env, inputs: shared with ti->prov, not copied */
    if (ti->prov)
        json_object_update(rec, ti->prov);
    return rec;
}

static json_t *
run_record(const struct sched_run *r)
{
    char ld[48], ie[48];
    cal_format_iso(r->logical_date, 0, 1, ld, sizeof(ld));
    cal_format_iso(r->interval_end, 0, 1, ie, sizeof(ie));
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:O, s:I, s:b, s:s?}",
                     "run_id", r->run_id, "dag", r->dag, "state",
                     sched_run_state_name(r->state), "run_type", r->run_type, "logical_date", ld,
                     "data_interval_start", ld, "data_interval_end", ie, "created_at",
                     sched_json_time(r->created_at), "started_at",
                     sched_json_time(r->started_at), "ended_at", sched_json_time(r->ended_at),
                     "dag_version", r->dv->dag->version, "params", r->params, "seq",
                     (json_int_t)r->seq, "no_cache", r->no_cache, "backfill_id", r->backfill);
}

json_t *
sched_ti_api(const json_t *rec)
{
    json_t *j = json_deep_copy(rec);
    json_object_del(j, "lease_id");
    json_object_del(j, "lost");
    json_object_del(j, "queued_at");
    json_object_del(j, "attempt_base");
    json_object_del(j, "v");
    json_t *ec = json_object_get(j, "exit_code");
    if (!ec || json_integer_value(ec) < 0)
        json_object_set_new(j, "exit_code", json_null());
    if (!json_integer_value(json_object_get(j, "signal")))
        json_object_set_new(j, "signal", json_null());
    const char *st = json_string_value(json_object_get(j, "state"));
    if (st && !strcmp(st, "up_for_retry"))
        json_object_set(j, "next_retry_at", json_object_get(j, "next_try_at"));
    else
        json_object_set_new(j, "next_retry_at", json_null());
    json_object_del(j, "next_try_at");
    int64_t a = parse_json_time(json_object_get(j, "started_at"));
    int64_t b = parse_json_time(json_object_get(j, "ended_at"));
    json_object_set_new(j, "duration_ms", a && b && b >= a ? json_integer(b - a) : json_null());
    return j;
}

json_t *
sched_run_json(const struct sched_run *r, bool with_tasks)
{
    json_t *o = run_record(r);
    json_object_del(o, "seq");
    if (!with_tasks)
        return o;
    json_t *tasks = json_array();
    for (size_t i = 0; i < r->ntis; i++) {
        json_t *rec = ti_record(&r->tis[i]);
        json_array_append_new(tasks, sched_ti_api(rec));
        json_decref(rec);
    }
    json_object_set_new(o, "tasks", tasks);
    return o;
}

/* ---------- artifact pointers and their index by digest ---------- */

/* Key of the index entry of pointer ptrkey ("dag␟run␟task␟name"). */
static char *
artidx_key(const char *sha, const char *ptrkey)
{
    return xasprintf("%s" SEP "%s", sha, ptrkey);
}

static int
artidx_put(struct store_txn *t, const char *ptrkey, const json_t *ptr)
{
    const char *sha = json_string_value(json_object_get(ptr, "sha256"));
    if (!sha)
        return 0;
    json_t *e = json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?, s:O?}", "dag",
                          json_object_get(ptr, "dag"), "run_id", json_object_get(ptr, "run_id"),
                          "task", json_object_get(ptr, "task"), "name",
                          json_object_get(ptr, "name"), "attempt",
                          json_object_get(ptr, "attempt"), "created_at",
                          json_object_get(ptr, "created_at"));
    char *k = artidx_key(sha, ptrkey);
    int rc = store_put(t, STORE_ARTIFACT_SHAS, k, e);
    free(k);
    json_decref(e);
    return rc;
}

/* Remove the index entry of the pointer ptr stored under ptrkey. */
static int
artidx_del(struct store_txn *t, const char *ptrkey, const json_t *ptr)
{
    const char *sha = json_string_value(json_object_get(ptr, "sha256"));
    if (!sha)
        return 0;
    char *k = artidx_key(sha, ptrkey);
    int rc = store_del(t, STORE_ARTIFACT_SHAS, k);
    free(k);
    return rc == CAIRN_ENOENT ? 0 : rc;
}

/* Write a pointer and its index entry (dropping the entry of a pointer it
 * replaces). */
static int
artifact_put(struct store_txn *t, const char *ptrkey, const json_t *ptr)
{
    void *old = NULL;
    int rc = store_get(t, STORE_ARTIFACTS, ptrkey, &old);
    if (rc == 0) {
        rc = artidx_del(t, ptrkey, old);
        json_int_t oa = json_integer_value(json_object_get(old, "attempt"));
        json_int_t na = json_integer_value(json_object_get(ptr, "attempt"));
        if (!rc && oa != na) {
            /* a cleared task ran again: the earlier attempt's pointer stays
             * (superseded) so its bytes keep their lineage */
            char *hk = xasprintf("%s" SEP "attempt-%06" JSON_INTEGER_FORMAT, ptrkey, oa);
            json_object_del(old, "v");
            json_object_set_new(old, "superseded", json_true());
            rc = artidx_put(t, hk, old);
            if (!rc)
                rc = store_put(t, STORE_ARTIFACTS, hk, old);
            free(hk);
        }
        json_decref(old);
    } else if (rc == CAIRN_ENOENT) {
        rc = 0;
    }
    if (!rc)
        rc = artidx_put(t, ptrkey, ptr);
    if (!rc)
        rc = store_put(t, STORE_ARTIFACTS, ptrkey, ptr);
    return rc;
}

struct keys_ctx {
    char **keys;
    size_t n, cap;
};

static int
keys_cb(void *ud, const char *key, const void *json)
{
    struct keys_ctx *kc = ud;
    (void)json;
    xgrow((void **)&kc->keys, &kc->cap, kc->n + 1, sizeof(*kc->keys));
    kc->keys[kc->n++] = xstrdup(key);
    return 0;
}

static void
keys_free(struct keys_ctx *kc)
{
    for (size_t i = 0; i < kc->n; i++)
        free(kc->keys[i]);
    free(kc->keys);
    memset(kc, 0, sizeof(*kc));
}

static int
artidx_fill_cb(void *ud, const char *key, const void *json)
{
    return artidx_put(ud, key, json);
}

/* Every pointer has one index entry, written in the same transaction. If
 * the counts differ (a store from before the index, or written meanwhile by
 * an older build), rebuild the index from the pointers. */
static int
artidx_check(struct sched *s)
{
    size_t nptr = 0, nidx = 0;
    int rc = store_stat(s->store, STORE_ARTIFACTS, &nptr);
    if (!rc)
        rc = store_stat(s->store, STORE_ARTIFACT_SHAS, &nidx);
    if (rc || nptr == nidx)
        return rc;
    struct store_txn *t = NULL;
    if ((rc = store_txn_begin(s->store, true, &t)) != 0)
        return rc;
    struct keys_ctx kc = {0};
    rc = store_scan(t, STORE_ARTIFACT_SHAS, "", keys_cb, &kc);
    for (size_t i = 0; i < kc.n && !rc; i++)
        rc = store_del(t, STORE_ARTIFACT_SHAS, kc.keys[i]);
    keys_free(&kc);
    if (!rc)
        rc = store_scan(t, STORE_ARTIFACTS, "", artidx_fill_cb, t);
    if (rc) {
        store_txn_abort(t);
        return rc;
    }
    rc = store_txn_commit(t);
    if (!rc)
        LOG(LOG_NOTICE, "CAIRN-ARTIFACT-INDEX", "indexed %zu artifact pointer%s by digest", nptr,
            nptr == 1 ? "" : "s");
    return rc;
}

static int
flush(struct sched *s)
{
    struct store_txn *t = NULL;
    int rc = store_txn_begin(s->store, true, &t);
    if (rc)
        return rc;
    for (struct sched_run *r = s->dirty_runs; r && !rc; r = r->dirty_next) {
        json_t *j = run_record(r);
        rc = store_put(t, STORE_RUNS, r->key, j);
        json_decref(j);
    }
    const char *akey;
    json_t *arec;
    json_object_foreach(s->ended_attempts, akey, arec)
    {
        if (rc)
            break;
        rc = store_put(t, STORE_ATTEMPTS, akey, arec);
    }
    for (struct sched_ti *ti = s->dirty_tis; ti && !rc; ti = ti->dirty_next) {
        const char *task = ti->run->dv->dag->tasks[ti->idx].name;
        char *key = xasprintf("%s" SEP "%s", ti->run->key, task);
        json_t *j = ti_record(ti);
        rc = store_put(t, STORE_TIS, key, j);
        json_decref(j);
        free(key);
        if (!rc && ti->artifacts_dirty && ti->outputs) {
            size_t k;
            json_t *v;
            json_array_foreach(ti->outputs, k, v)
            {
                char *artkey = xasprintf("%s" SEP "%s" SEP "%s", ti->run->key, task,
                                       json_string_value(json_object_get(v, "name")));
                json_t *rec = json_deep_copy(v);
                json_object_set_new(rec, "dag", json_string(ti->run->dag));
                json_object_set_new(rec, "run_id", json_string(ti->run->run_id));
                json_object_set_new(rec, "task", json_string(task));
                json_object_set_new(rec, "attempt", json_integer(ti->attempts));
                json_object_set_new(rec, "created_at", sched_json_time(ti->ended_at));
                if (ti->cached_from)
                    json_object_set(rec, "cached_from", ti->cached_from);
                if (!rc)
                    rc = artifact_put(t, artkey, rec);
                json_decref(rec);
                free(artkey);
            }
        }
        if (!rc && ti->attempt_dirty && ti->attempts > 0) {
            key = attempt_key(ti);
            j = attempt_record(ti);
            rc = store_put(t, STORE_ATTEMPTS, key, j);
            json_decref(j);
            free(key);
        }
    }
    const char *ckey;
    json_t *cval;
    json_object_foreach(s->cache_pending, ckey, cval)
    {
        if (rc)
            break;
        rc = store_put(t, STORE_META, ckey, cval);
    }
    for (size_t i = 0; i < s->ndirty_dags && !rc; i++) {
        struct sched_dag *sd = s->dirty_dags[i];
        json_t *j = json_pack("{s:s, s:s?, s:s?, s:b, s:o}", "name", sd->name, "file", sd->file,
                              "version", sd->cur ? sd->cur->dag->version : NULL, "paused",
                              sd->paused, "cursor",
                              sd->has_cursor ? json_integer(sd->cursor) : json_null());
        rc = store_put(t, STORE_DAGS, sd->name, j);
        json_decref(j);
    }
    if (!rc && bf_dirty(s->bfs))
        rc = bf_flush(s->bfs, t);
    if (!rc && s->lease_seq_dirty) {
        json_t *j = json_pack("{s:I}", "value", (json_int_t)s->lease_seq);
        rc = store_put(t, STORE_META, "lease_seq", j);
        json_decref(j);
    }
    if (rc) {
        store_txn_abort(t);
        return rc;
    }
    return store_txn_commit(t);
}

static void
clear_dirty(struct sched *s)
{
    while (s->dirty_runs) {
        struct sched_run *r = s->dirty_runs;
        s->dirty_runs = r->dirty_next;
        r->dirty = false;
        r->dirty_next = NULL;
    }
    while (s->dirty_tis) {
        struct sched_ti *ti = s->dirty_tis;
        s->dirty_tis = ti->dirty_next;
        ti->dirty = ti->attempt_dirty = ti->artifacts_dirty = false;
        ti->dirty_next = NULL;
    }
    json_object_clear(s->ended_attempts);
    json_object_clear(s->cache_pending);
    s->ndirty_dags = 0;
    s->lease_seq_dirty = false;
    if (s->bfs)
        bf_clear_dirty(s->bfs);
}

/* Drop finished runs from memory: they are in LMDB now. */
static void
evict_finished(struct sched *s)
{
    struct sched_run *r = s->runs.next;
    while (r != &s->runs) {
        struct sched_run *next = r->next;
        if (sched_run_finished(r->state) && !r->dirty) {
            r->prev->next = r->next;
            r->next->prev = r->prev;
            hmap_del(&s->runs_by_key, r->key);
            run_free(s, r);
        }
        r = next;
    }
}

static void
deliver(struct sched *s, bool ok)
{
    size_t n = s->nreplies;
    struct pending_reply *rp = s->replies;
    s->replies = NULL;
    s->nreplies = s->capreplies = 0;
    for (size_t i = 0; i < n; i++) {
        wire_reply(rp[i].req, rp[i].type, rp[i].body);
        json_decref(rp[i].body);
    }
    free(rp);
    size_t na = s->nafters;
    struct after_cb *af = s->afters;
    s->afters = NULL;
    s->nafters = s->capafters = 0;
    for (size_t i = 0; i < na; i++)
        af[i].fn(af[i].ud, ok);
    free(af);
}

static void
prepare_cb(uv_prepare_t *h)
{
    struct sched *s = h->data;
    cache_drain(s);
    bool dirty = s->dirty_runs || s->dirty_tis || s->ndirty_dags || s->lease_seq_dirty ||
                 json_object_size(s->ended_attempts) || json_object_size(s->cache_pending) ||
                 bf_dirty(s->bfs);
    if (!dirty && !s->nreplies && !s->nafters)
        return;
    if (dirty) {
        if (clock_mono_ms() < s->flush_retry_at)
            return;
        int rc = flush(s);
        if (rc) {
            LOG(LOG_ERR, rc == CAIRN_EFULL ? "CAIRN-STORE-FULL" : "CAIRN-STORE-ERROR",
                "cannot commit state (%s: %s); holding %zu replies and retrying in 1s",
                cairn_strerror(rc), store_last_error(s->store), s->nreplies + s->nafters);
            s->flush_retry_at = clock_mono_ms() + 1000;
            return;
        }
        clear_dirty(s);
    }
    deliver(s, true);
    evict_finished(s);
}

/* ---------- DAG folder ---------- */

static int
dag_cmp(const void *a, const void *b)
{
    return strcmp((*(struct sched_dag *const *)a)->name, (*(struct sched_dag *const *)b)->name);
}

struct sched_dag *
sched_find_dag(struct sched *s, const char *name)
{
    for (size_t i = 0; i < s->ndags; i++)
        if (!strcmp(s->dags[i]->name, name))
            return s->dags[i];
    return NULL;
}

static struct sched_dag *
dag_by_file(struct sched *s, const char *file)
{
    for (size_t i = 0; i < s->ndags; i++)
        if (s->dags[i]->file && !strcmp(s->dags[i]->file, file))
            return s->dags[i];
    return NULL;
}

static struct sched_dag *
dag_add(struct sched *s, const char *name, const char *file)
{
    struct sched_dag *sd = xcalloc(1, sizeof(*sd));
    sd->name = xstrdup(name);
    sd->file = file ? xstrdup(file) : NULL;
    diag_list_init(&sd->errors);
    xgrow((void **)&s->dags, &s->capdags, s->ndags + 1, sizeof(*s->dags));
    s->dags[s->ndags++] = sd;
    qsort(s->dags, s->ndags, sizeof(*s->dags), dag_cmp);
    return sd;
}

static void
store_source(struct sched *s, const struct dag *d, const char *buf, size_t len)
{
    struct store_txn *t = NULL;
    char *key = xasprintf("%s" SEP "%s", d->name, d->version);
    const void *data;
    size_t dlen;
    if (store_txn_begin(s->store, true, &t) == 0) {
        if (store_get_raw(t, STORE_DAG_SOURCES, key, &data, &dlen) == 0) {
            store_txn_abort(t);
        } else if (store_put_raw(t, STORE_DAG_SOURCES, key, buf, len) == 0) {
            if (store_txn_commit(t) != 0)
                LOG(LOG_ERR, "CAIRN-STORE-ERROR", "cannot store DAG source %s: %s", key,
                    store_last_error(s->store));
        } else {
            store_txn_abort(t);
        }
    }
    free(key);
}


static void
load_file(struct sched *s, const char *path, const struct stat *st)
{
    size_t len = 0;
    char *buf = NULL;
    if (fs_read_all(path, 0, &buf, &len) != 0)
        buf = NULL;
    struct diag_list dl;
    struct dag *d = NULL;
    diag_list_init(&dl);
    int rc = buf ? dag_load_buffer(&d, buf, len, path, &dl) : CAIRN_EIO;
    if (!buf)
        diag_add(&dl, DIAG_ERROR, path, 0, 0, "io", NULL, "cannot read: %s", strerror(errno));
    struct sched_dag *sd = dag_by_file(s, path);
    if (rc == 0) {
        struct sched_dag *other = sched_find_dag(s, d->name);
        if (other && other != sd && other->file && strcmp(other->file, path) != 0 &&
            access(other->file, F_OK) == 0) {
            diag_add(&dl, DIAG_ERROR, path, 1, 1, "duplicate-dag", NULL,
                     "DAG '%s' is already defined in %s", d->name, other->file);
            dag_free(d);
            d = NULL;
            rc = CAIRN_EEXIST;
        }
    }
    if (rc == 0) {
        if (sd && strcmp(sd->name, d->name) != 0) {
            /* the file now defines another DAG: the old one loses its file */
            free(sd->file);
            sd->file = NULL;
            sd = NULL;
        }
        if (!sd)
            sd = sched_find_dag(s, d->name);
        if (!sd)
            sd = dag_add(s, d->name, path);
        free(sd->file);
        sd->file = xstrdup(path);
        store_source(s, d, buf, len);
        bool changed = !sd->cur || strcmp(sd->cur->dag->version, d->version) != 0;
        sd->cur = dagver_add(s, d);
        if (changed) {
            LOG(LOG_INFO, "CAIRN-DAG-LOADED", "DAG %s version %.12s loaded from %s", sd->name,
                sd->cur->dag->version, path);
            dag_dirty(s, sd);
        }
        diag_list_free(&sd->errors);
        diag_list_init(&sd->errors);
        diag_list_free(&dl);
    } else {
        if (!sd) {
            /* never loaded: list it under its file name */
            const char *base = strrchr(path, '/');
            char *name = xstrdup(base ? base + 1 : path);
            char *dot = strrchr(name, '.');
            if (dot)
                *dot = '\0';
            sd = sched_find_dag(s, name);
            if (!sd || (sd->file && strcmp(sd->file, path) != 0))
                sd = dag_add(s, name, path);
            free(name);
        }
        diag_sort(&dl);
        diag_list_free(&sd->errors);
        sd->errors = dl;
        LOG(LOG_ERR, "CAIRN-DAG-INVALID", "%s: %zu error%s%s; %s", path, dl.nerrors,
            dl.nerrors == 1 ? "" : "s",
            dl.n ? "" : "", sd->cur ? "keeping the last good version" : "DAG not loaded");
        for (size_t i = 0; i < dl.n && i < 5; i++)
            LOG(LOG_ERR, "CAIRN-DAG-INVALID", "%s:%d:%d: %s", dl.items[i].file, dl.items[i].line,
                dl.items[i].col, dl.items[i].msg);
    }
    free(buf);
    sd->file_mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
    sd->file_size = st->st_size;
    sd->seen = true;
}

static void
rescan(struct sched *s)
{
    DIR *dir = opendir(s->cfg.dags_dir);
    if (!dir) {
        LOG(LOG_ERR, "CAIRN-DAGS-DIR", "cannot read %s: %s", s->cfg.dags_dir, strerror(errno));
        return;
    }
    for (size_t i = 0; i < s->ndags; i++)
        s->dags[i]->seen = false;
    struct dirent *de;
    while ((de = readdir(dir))) {
        size_t n = strlen(de->d_name);
        if (de->d_name[0] == '.' ||
            !((n > 5 && !strcmp(de->d_name + n - 5, ".yaml")) ||
              (n > 4 && !strcmp(de->d_name + n - 4, ".yml"))))
            continue;
        char *path = xasprintf("%s/%s", s->cfg.dags_dir, de->d_name);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            struct sched_dag *sd = dag_by_file(s, path);
            int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
            if (sd && sd->file_mtime_ns == mt && sd->file_size == st.st_size)
                sd->seen = true;
            else
                load_file(s, path, &st);
        }
        free(path);
    }
    closedir(dir);
    for (size_t i = 0; i < s->ndags; i++) {
        struct sched_dag *sd = s->dags[i];
        if (!sd->seen && sd->file && (sd->errors.n == 0 || sd->errors.items[0].line != -1)) {
            if (sd->errors.n == 0 || strcmp(sd->errors.items[0].code, "removed") != 0) {
                LOG(LOG_WARN, "CAIRN-DAG-REMOVED", "%s was removed; DAG %s keeps its history",
                    sd->file, sd->name);
                diag_list_free(&sd->errors);
                diag_list_init(&sd->errors);
                diag_add(&sd->errors, DIAG_ERROR, sd->file, 0, 0, "removed", NULL,
                         "the file was removed");
                sd->file_mtime_ns = 0;
            }
        }
    }
}

static void
fsev_cb(uv_fs_event_t *h, const char *filename, int events, int status)
{
    struct sched *s = h->data;
    (void)filename;
    (void)events;
    (void)status;
    /* coalesce bursts of events (editors write in steps) */
    int64_t soon = clock_mono_ms() + 150;
    if (s->next_rescan > soon)
        s->next_rescan = soon;
}

/* ---------- timers ---------- */

static void
tick_cb(uv_timer_t *h)
{
    struct sched *s = h->data;
    int64_t now = clock_mono_ms(), wall = clock_wall_ms();
    if (s->last_tick && now - s->last_tick > 1000) {
        /* this loop was busy (a large publish, a slow disk): heartbeats that
         * came meanwhile are not read yet, so do not count the stall against
         * leases and workers */
        int64_t stall = now - s->last_tick - TICK_MS;
        for (struct sched_ti *l = s->leases.lnext; l != &s->leases; l = l->lnext)
            l->lease_expires += stall;
        for (size_t i = 0; i < s->nworkers; i++)
            s->workers[i]->last_seen += stall;
        LOG(LOG_WARN, "CAIRN-LOOP-STALL", "the scheduler's loop was busy for %" PRId64
            " ms; leases extended by as much", stall);
    }
    s->last_tick = now;

    if (now >= s->next_rescan) {
        rescan(s);
        s->next_rescan = now + RESCAN_MS;
    }
    if (now >= s->next_schedule) {
        schedule_runs(s);
        bf_pump_all(s->bfs);
        s->next_schedule = now + 500;
    }
    /* leases whose worker went quiet */
    struct sched_ti *ti = s->leases.lnext;
    while (ti != &s->leases) {
        struct sched_ti *next = ti->lnext;
        if (ti->lease_expires <= now) {
            char why[256];
            snprintf(why, sizeof(why),
                     "lease expired: worker %s sent no heartbeat for %" PRId64 " ms",
                     ti->worker_name ? ti->worker_name : "?", s->cfg.lease_ttl_ms);
            lease_lost(s, ti, "CAIRN-LEASE-EXPIRED", why);
        }
        ti = next;
    }
    /* retries that are due */
    ti = s->retries.lnext;
    while (ti != &s->retries) {
        struct sched_ti *next = ti->lnext;
        if (ti->next_try_at <= wall) {
            list_del(ti);
            ti->next_try_at = 0;
            ti_make_ready(s, ti);
        }
        ti = next;
    }
    for (size_t i = 0; i < s->nworkers; i++) {
        struct sched_worker *w = s->workers[i];
        if (w->parked && w->parked_until <= now) {
            json_t *b = json_pack("{s:[], s:[]}", "leases", "cancel");
            wire_reply(w->parked, PROTO_WORK, b);
            json_decref(b);
            w->parked = NULL;
        }
        if (w->alive && now - w->last_seen > s->cfg.lease_ttl_ms) {
            w->alive = false;
            LOG(LOG_WARN, "CAIRN-WORKER-LOST", "worker %s: no heartbeat for %" PRId64 " ms",
                w->name, now - w->last_seen);
        }
    }
    dispatch_parked(s);
}

/* ---------- recovery ---------- */

struct recover_ctx {
    struct sched *s;
    struct store_txn *t;
    struct sched_run *run;
};

/* The provenance of an attempt in flight, from its stored record, so that
 * rewriting the record when the attempt ends keeps it. NULL for a record
 * written before attempts carried it (nothing to keep then). */
static json_t *
recover_prov(struct store_txn *t, const struct sched_run *r, const char *task, int attempt)
{
    char *key = xasprintf("%s" SEP "%s" SEP "%06d", r->key, task, attempt);
    void *rec = NULL;
    json_t *prov = NULL;
    if (store_get(t, STORE_ATTEMPTS, key, &rec) == 0 &&
        json_is_string(json_object_get(rec, "image"))) {
        prov = json_object();
        static const char *const fields[] = {"image", "argv", "env", "inputs"};
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
            json_t *v = json_object_get(rec, fields[i]);
            if (v)
                json_object_set(prov, fields[i], v);
        }
    }
    json_decref(rec);
    free(key);
    return prov;
}

static int
recover_ti_cb(void *ud, const char *key, const void *json)
{
    struct recover_ctx *rc = ud;
    struct sched_run *r = rc->run;
    const char *task = json_string_value(json_object_get((json_t *)json, "task"));
    (void)key;
    if (!task)
        return 0;
    long idx = dag_task_index(r->dv->dag, task);
    if (idx < 0)
        return 0;
    struct sched_ti *ti = &r->tis[idx];
    json_t *j = (json_t *)json;
    int st = sched_ti_state_parse(json_string_value(json_object_get(j, "state")) ?: "");
    ti->state = st < 0 ? TI_PENDING : (enum ti_state)st;
    ti->attempts = (int)json_integer_value(json_object_get(j, "attempts"));
    ti->lost = (int)json_integer_value(json_object_get(j, "lost"));
    ti->attempt_base = (int)json_integer_value(json_object_get(j, "attempt_base"));
    ti->lease_id = json_integer_value(json_object_get(j, "lease_id"));
    const char *wn = json_string_value(json_object_get(j, "worker"));
    ti->worker_name = wn ? xstrdup(wn) : NULL;
    ti->queued_at = parse_json_time(json_object_get(j, "queued_at"));
    ti->started_at = parse_json_time(json_object_get(j, "started_at"));
    ti->ended_at = parse_json_time(json_object_get(j, "ended_at"));
    ti->next_try_at = parse_json_time(json_object_get(j, "next_try_at"));
    ti->exit_code = (int)json_integer_value(json_object_get(j, "exit_code"));
    ti->signal = (int)json_integer_value(json_object_get(j, "signal"));
    ti->oom = json_is_true(json_object_get(j, "oom_killed"));
    ti->timed_out = json_is_true(json_object_get(j, "timed_out"));
    const char *e = json_string_value(json_object_get(j, "error"));
    ti->error = e ? xstrdup(e) : NULL;
    ti->log_size = json_integer_value(json_object_get(j, "log_size"));
    json_t *outs = json_object_get(j, "outputs");
    if (json_is_array(outs) && json_array_size(outs))
        ti->outputs = json_incref(outs);
    json_t *mets = json_object_get(j, "metrics");
    if (json_is_object(mets) && json_object_size(mets))
        ti->metrics = json_incref(mets);
    ti->cached = json_is_true(json_object_get(j, "cached"));
    json_t *cf = json_object_get(j, "cached_from");
    if (json_is_object(cf))
        ti->cached_from = json_incref(cf);
    ti->no_cache = json_is_true(json_object_get(j, "no_cache"));
    const char *ck = json_string_value(json_object_get(j, "cache_key"));
    if (ck && art_hex_valid(ck))
        snprintf(ti->cache_key, sizeof(ti->cache_key), "%s", ck);
    json_t *pub = json_object_get(j, "published");
    if (json_is_object(pub))
        ti->published = json_incref(pub);
    if ((ti->state == TI_LEASED || ti->state == TI_RUNNING) && ti->attempts > 0)
        ti->prov = recover_prov(rc->t, r, task, ti->attempts);
    return 0;
}

/* Bring a stored run (any state) and its task instances into memory, with
 * the DAG version it started with; NULL if that version is not stored. The
 * caller rebuilds the derived state (counts, queues). */
static struct sched_run *
run_from_record(struct sched *s, struct store_txn *t, json_t *j)
{
    int st = sched_run_state_parse(json_string_value(json_object_get(j, "state")) ?: "");
    const char *dag = json_string_value(json_object_get(j, "dag"));
    const char *run_id = json_string_value(json_object_get(j, "run_id"));
    const char *ver = json_string_value(json_object_get(j, "dag_version"));
    if (st < 0 || !dag || !run_id || !ver)
        return NULL;
    struct sched_dagver *dv = dagver_load(s, t, dag, ver);
    if (!dv) {
        LOG(LOG_ERR, "CAIRN-RECOVER", "run %s of %s: DAG version %.12s is not stored; skipped",
            run_id, dag, ver);
        return NULL;
    }
    struct sched_dag *sd = sched_find_dag(s, dag);
    if (!sd)
        dag_add(s, dag, NULL);
    struct sched_run *r = run_alloc(s, dag, run_id, dv);
    const char *rt = json_string_value(json_object_get(j, "run_type"));
    r->run_type = xstrdup(rt ? rt : "manual");
    const char *bf = json_string_value(json_object_get(j, "backfill_id"));
    r->backfill = bf ? xstrdup(bf) : NULL;
    r->state = (enum run_state)st;
    int64_t secs;
    int ht, ho;
    if (cal_parse(json_string_value(json_object_get(j, "logical_date")) ?: "", &secs, &ht, &ho) ==
        0)
        r->logical_date = secs;
    if (cal_parse(json_string_value(json_object_get(j, "data_interval_end")) ?: "", &secs, &ht,
                  &ho) == 0)
        r->interval_end = secs;
    r->created_at = parse_json_time(json_object_get(j, "created_at"));
    r->started_at = parse_json_time(json_object_get(j, "started_at"));
    r->ended_at = parse_json_time(json_object_get(j, "ended_at"));
    json_int_t seq = json_integer_value(json_object_get(j, "seq"));
    if ((uint64_t)seq > s->run_seq)
        s->run_seq = (uint64_t)seq;
    r->seq = (uint64_t)seq;
    run_set_params(r, json_object_get(j, "params"));
    r->no_cache = json_is_true(json_object_get(j, "no_cache"));
    struct recover_ctx rc = {s, t, r};
    char *prefix = xasprintf("%s" SEP, r->key);
    store_scan(t, STORE_TIS, prefix, recover_ti_cb, &rc);
    free(prefix);
    return r;
}

static int
recover_run_cb(void *ud, const char *key, const void *json)
{
    struct recover_ctx *rc = ud;
    json_t *j = (json_t *)json;
    (void)key;
    int st = sched_run_state_parse(json_string_value(json_object_get(j, "state")) ?: "");
    if (st == RUN_QUEUED || st == RUN_RUNNING)
        run_from_record(rc->s, rc->t, j);
    return 0;
}

static int
run_seq_cmp(const void *a, const void *b)
{
    const struct sched_run *x = *(struct sched_run *const *)a, *y = *(struct sched_run *const *)b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int
recover(struct sched *s)
{
    struct store_txn *t = NULL;
    int rc = store_txn_begin(s->store, false, &t);
    if (rc)
        return rc;
    void *lj = NULL;
    if (store_get(t, STORE_META, "lease_seq", &lj) == 0) {
        s->lease_seq = json_integer_value(json_object_get(lj, "value"));
        json_decref(lj);
    }
    struct recover_ctx ctx = {s, t, NULL};
    store_scan(t, STORE_RUNS, "", recover_run_cb, &ctx);
    store_txn_abort(t);

    /* order runs by creation, then rebuild the derived state */
    size_t n = 0;
    for (struct sched_run *r = s->runs.next; r != &s->runs; r = r->next)
        n++;
    struct sched_run **arr = xcalloc(n + 1, sizeof(*arr));
    n = 0;
    for (struct sched_run *r = s->runs.next; r != &s->runs; r = r->next)
        arr[n++] = r;
    qsort(arr, n, sizeof(*arr), run_seq_cmp);
    s->runs.next = s->runs.prev = &s->runs;
    for (size_t i = 0; i < n; i++) {
        arr[i]->next = &s->runs;
        arr[i]->prev = s->runs.prev;
        s->runs.prev->next = arr[i];
        s->runs.prev = arr[i];
    }
    size_t nlive = 0;
    for (size_t i = 0; i < n; i++) {
        struct sched_run *r = arr[i];
        struct sched_dag *sd = run_sdag(s, r);
        if (r->state == RUN_RUNNING && sd)
            sd->active_runs++;
        for (size_t k = 0; k < r->ntis; k++) {
            struct sched_ti *ti = &r->tis[k];
            const struct dag_task *tk = &r->dv->dag->tasks[k];
            ti->pending_up = 0;
            for (size_t u = 0; u < tk->nneeds; u++)
                if (!sched_ti_terminal(r->tis[tk->needs[u]].state))
                    ti->pending_up++;
            ti->decided = ti->state != TI_PENDING;
            if (sched_ti_terminal(ti->state))
                r->nfinished++;
            switch (ti->state) {
            case TI_QUEUED:
                heap_push(s, ti);
                break;
            case TI_LEASED:
            case TI_RUNNING:
                /* the worker may still be running it: give it a lease time
                 * to report back, then take it back */
                ti->lease_expires = clock_mono_ms() + s->cfg.lease_ttl_ms;
                list_add(&s->leases, ti);
                lease_register(s, ti);
                r->active++;
                if (sd)
                    sd->active_tasks++;
                nlive++;
                break;
            case TI_UP_FOR_RETRY:
                list_add(&s->retries, ti);
                break;
            default:
                break;
            }
        }
    }
    /* anything a crash left undecided is decided now */
    for (size_t i = 0; i < n; i++) {
        struct sched_run *r = arr[i];
        if (r->state != RUN_RUNNING)
            continue;
        for (size_t k = 0; k < r->ntis; k++)
            if (r->tis[k].state == TI_PENDING)
                ti_evaluate(s, &r->tis[k]);
        run_check_done(s, r);
    }
    for (size_t i = 0; i < s->ndags; i++)
        admit_runs(s, s->dags[i]);
    if (n)
        LOG(LOG_NOTICE, "CAIRN-RECOVER", "recovered %zu unfinished run%s (%zu attempt%s in "
            "flight, %zu task%s ready)", n, n == 1 ? "" : "s", nlive, nlive == 1 ? "" : "s",
            s->nheap, s->nheap == 1 ? "" : "s");
    free(arr);
    return 0;
}

/* ---------- lifecycle ---------- */

int
sched_new(struct sched **out, uv_loop_t *loop, const struct sched_config *cfg, char *err,
          size_t errlen)
{
    struct sched *s = xcalloc(1, sizeof(*s));
    int rc;
    s->loop = loop;
    s->cfg = *cfg;
    if (!s->cfg.lease_ttl_ms)
        s->cfg.lease_ttl_ms = 15000;
    if (!s->cfg.heartbeat_ms)
        s->cfg.heartbeat_ms = s->cfg.lease_ttl_ms / 3;
    if (!s->cfg.max_lost)
        s->cfg.max_lost = 3;
    s->runs.next = s->runs.prev = &s->runs;
    list_init(&s->leases);
    list_init(&s->retries);
    hmap_init(&s->versions);
    hmap_init(&s->runs_by_key);
    hmap_init(&s->lease_map);
    s->ended_attempts = json_object();
    s->cache_pending = json_object();
    s->cache_ix = cache_index_new();
    s->models_dir = cfg->models_dir ? xstrdup(cfg->models_dir)
                                    : xasprintf("%s/models", cfg->data_dir);
    if (s->models_dir[0] != '/') { /* published paths in the API are absolute */
        char cwd[4096];
        if (getcwd(cwd, sizeof(cwd))) {
            char *abs = xasprintf("%s/%s", cwd, s->models_dir);
            free(s->models_dir);
            s->models_dir = abs;
        }
    }
    if (cfg->token_file) {
        if ((rc = proto_key_load(&s->key, cfg->token_file, err, errlen)) != 0)
            goto fail;
    }
    const char *fake = getenv("CAIRN_NOW");
    if (fake && *fake) {
        int64_t secs;
        int ht, ho;
        if (cal_parse(fake, &secs, &ht, &ho) != 0 || !ho) {
            snprintf(err, errlen, "CAIRN_NOW must be an ISO 8601 instant with an offset, "
                                  "e.g. 2026-01-05T12:00:00Z");
            rc = CAIRN_EINVAL;
            goto fail;
        }
        s->clock_skew = secs - clock_wall_ms() / 1000;
        LOG(LOG_WARN, "CAIRN-FAKE-CLOCK", "test clock: schedules see now = %s", fake);
    }
    if (fs_mkdirs(cfg->data_dir) != 0) {
        snprintf(err, errlen, "cannot create %s: %s", cfg->data_dir, strerror(errno));
        rc = CAIRN_EIO;
        goto fail;
    }
    if ((rc = store_open(&s->store, cfg->data_dir, 0, err, errlen)) != 0)
        goto fail;
    {
        char *ad = xasprintf("%s/artifacts", cfg->data_dir);
        char aerr[256];
        rc = art_open(&s->art, ad, aerr, sizeof(aerr));
        free(ad);
        if (rc) {
            snprintf(err, errlen, "cannot open the artifact store: %s", aerr);
            goto fail;
        }
    }
    /* DAGs first (recovered runs may use the current versions), then runs */
    rescan(s);
    s->next_rescan = clock_mono_ms() + RESCAN_MS;
    {
        /* paused flags persist */
        struct store_txn *t = NULL;
        if (store_txn_begin(s->store, false, &t) == 0) {
            for (size_t i = 0; i < s->ndags; i++) {
                void *j = NULL;
                if (store_get(t, STORE_DAGS, s->dags[i]->name, &j) == 0) {
                    s->dags[i]->paused = json_is_true(json_object_get(j, "paused"));
                    json_t *c = json_object_get(j, "cursor");
                    if (json_is_integer(c)) {
                        s->dags[i]->cursor = json_integer_value(c);
                        s->dags[i]->has_cursor = true;
                    }
                    json_decref(j);
                }
            }
            store_txn_abort(t);
        }
    }
    if ((rc = artidx_check(s)) != 0) {
        snprintf(err, errlen, "cannot index the artifact pointers: %s",
                 store_last_error(s->store));
        goto fail;
    }
    if ((rc = recover(s)) != 0) {
        snprintf(err, errlen, "cannot read state: %s", store_last_error(s->store));
        goto fail;
    }
    {
        struct store_txn *t = NULL;
        if ((rc = store_txn_begin(s->store, false, &t)) == 0) {
            rc = bf_open(&s->bfs, s, t);
            store_txn_abort(t);
        }
        if (rc) {
            snprintf(err, errlen, "cannot read backfills: %s", store_last_error(s->store));
            goto fail;
        }
        for (struct sched_run *r = s->runs.next; r != &s->runs; r = r->next)
            if (r->backfill)
                bf_claim(s->bfs, r);
        bf_pump_all(s->bfs);
    }
    if ((rc = wire_start(&s->wire, loop, cfg->listen_url, &s->key, wire_cb, s, err, errlen)) !=
        0)
        goto fail;
    wire_on_gone(s->wire, wire_gone_cb);
    if ((rc = http_server_start(&s->http, loop, cfg->http_host, cfg->http_port, api_handle, s)) !=
        0) {
        snprintf(err, errlen, "cannot serve HTTP on %s:%d", cfg->http_host, cfg->http_port);
        goto fail;
    }
    uv_timer_init(loop, &s->tick);
    s->tick.data = s;
    uv_timer_start(&s->tick, tick_cb, TICK_MS, TICK_MS);
    uv_prepare_init(loop, &s->prepare);
    s->prepare.data = s;
    uv_prepare_start(&s->prepare, prepare_cb);
    if (uv_fs_event_init(loop, &s->fsev) == 0) {
        s->fsev.data = s;
        if (uv_fs_event_start(&s->fsev, fsev_cb, cfg->dags_dir, 0) == 0)
            s->fsev_on = true;
        else
            uv_close((uv_handle_t *)&s->fsev, NULL);
    }
    *out = s;
    return 0;
fail:
    if (s->wire) {
        wire_stop(s->wire);
        s->wire = NULL;
    }
    sched_free(s);
    return rc;
}

static void
handle_closed(uv_handle_t *h)
{
    struct sched *s = h->data;
    if (--s->closing_handles == 0 && s->stop_done)
        s->stop_done(s->stop_ud);
}

static void
http_closed(void *ud)
{
    struct sched *s = ud;
    if (--s->closing_handles == 0 && s->stop_done)
        s->stop_done(s->stop_ud);
}

void
sched_stop(struct sched *s, void (*done)(void *ud), void *ud)
{
    if (s->stopping)
        return;
    s->stopping = true;
    s->stop_done = done;
    s->stop_ud = ud;
    LOG(LOG_NOTICE, "CAIRN-STOP", "stopping: committing state and closing");
    /* answer parked polls, commit what is pending */
    for (size_t i = 0; i < s->nworkers; i++) {
        if (s->workers[i]->parked) {
            json_t *b = json_pack("{s:[], s:[]}", "leases", "cancel");
            wire_reply(s->workers[i]->parked, PROTO_WORK, b);
            json_decref(b);
            s->workers[i]->parked = NULL;
        }
    }
    s->flush_retry_at = 0;
    prepare_cb(&s->prepare);
    if (s->nreplies || s->nafters) {
        /* the store refused: answer nothing durable, drop the requests */
        for (size_t i = 0; i < s->nreplies; i++) {
            wire_drop(s->replies[i].req);
            json_decref(s->replies[i].body);
        }
        s->nreplies = 0;
        size_t na = s->nafters;
        struct after_cb *af = s->afters;
        s->afters = NULL;
        s->nafters = s->capafters = 0;
        for (size_t i = 0; i < na; i++)
            af[i].fn(af[i].ud, false);
        free(af);
    }
    s->closing_handles = 3 + (s->fsev_on ? 1 : 0) + s->npublishing;
    uv_timer_stop(&s->tick);
    uv_close((uv_handle_t *)&s->tick, handle_closed);
    uv_prepare_stop(&s->prepare);
    uv_close((uv_handle_t *)&s->prepare, handle_closed);
    if (s->fsev_on) {
        uv_fs_event_stop(&s->fsev);
        uv_close((uv_handle_t *)&s->fsev, handle_closed);
    }
    wire_stop(s->wire);
    s->wire = NULL;
    http_server_close(s->http, http_closed, s);
    s->http = NULL;
}

void
sched_free(struct sched *s)
{
    if (!s)
        return;
    struct sched_run *r = s->runs.next;
    while (r && r != &s->runs) {
        struct sched_run *next = r->next;
        run_free(s, r);
        r = next;
    }
    for (size_t i = 0; i < s->ndags; i++) {
        free(s->dags[i]->name);
        free(s->dags[i]->file);
        diag_list_free(&s->dags[i]->errors);
        free(s->dags[i]);
    }
    free(s->dags);
    for (size_t i = 0; i < s->versions.cap; i++) {
        if (s->versions.slots[i].key) {
            struct sched_dagver *dv = (struct sched_dagver *)(uintptr_t)s->versions.slots[i].val;
            dag_free(dv->dag);
            free(dv);
        }
    }
    hmap_free(&s->versions);
    hmap_free(&s->runs_by_key);
    hmap_free(&s->lease_map);
    for (size_t i = 0; i < s->nworkers; i++) {
        struct sched_worker *w = s->workers[i];
        free(w->name);
        free(w->host);
        for (size_t j = 0; j < w->nlabels; j++) {
            free(w->labels[j].key);
            free(w->labels[j].value);
        }
        free(w->labels);
        free(w);
    }
    free(s->workers);
    free(s->heap);
    free(s->cache_q);
    free(s->dirty_dags);
    json_decref(s->ended_attempts);
    json_decref(s->cache_pending);
    cache_index_free(s->cache_ix);
    free(s->models_dir);
    free(s->replies);
    free(s->afters);
    bf_free(s->bfs);
    store_close(s->store);
    art_close(s->art);
    free(s);
}

int
sched_http_port(const struct sched *s)
{
    return s->http ? http_server_port(s->http) : -1;
}

const char *
sched_listen_url(const struct sched *s)
{
    return s->wire ? wire_url(s->wire) : "";
}

struct bf_set *
sched_backfills(struct sched *s)
{
    return s->bfs;
}

struct store *
sched_store(struct sched *s)
{
    return s->store;
}

size_t
sched_ndags(const struct sched *s)
{
    return s->ndags;
}

struct sched_dag *
sched_dag_at(struct sched *s, size_t i)
{
    return i < s->ndags ? s->dags[i] : NULL;
}

size_t
sched_nworkers(const struct sched *s)
{
    return s->nworkers;
}

struct sched_worker *
sched_worker_at(struct sched *s, size_t i)
{
    return i < s->nworkers ? s->workers[i] : NULL;
}

const char *
sched_data_dir(const struct sched *s)
{
    return s->cfg.data_dir;
}

const char *
sched_models_dir(const struct sched *s)
{
    return s->models_dir;
}

struct art_store *
sched_artifacts(struct sched *s)
{
    return s->art;
}

void
sched_worker_running(struct sched *s, const struct sched_worker *w, json_t *arr)
{
    for (struct sched_ti *ti = s->leases.lnext; ti != &s->leases; ti = ti->lnext) {
        if (ti->worker != w)
            continue;
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:i, s:I}", "dag", ti->run->dag,
                                             "run_id", ti->run->run_id, "task",
                                             ti->run->dv->dag->tasks[ti->idx].name, "attempt",
                                             ti->attempts, "lease_id",
                                             (json_int_t)ti->lease_id));
    }
}

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
    r->ended_at = parse_json_time(json_object_get(json, "ended_at"));
    return 0;
}

/* Compare the DAG parts of two run keys. */
static int
gc_dag_cmp(const char *a, const char *b)
{
    size_t la = strcspn(a, SEP), lb = strcspn(b, SEP);
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
    const char *p = strchr(key, '\x1f');
    p = p ? strchr(p + 1, '\x1f') : NULL;
    size_t v = 0;
    if (p) {
        char *rk = xstrndup(key, (size_t)(p - key));
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
 * The loop thread is the only writer and flush() never leaves a write
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
        rc = artidx_del(t, k, p);
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
        const char *key = g.runs[i].key, *sep = strchr(key, '\x1f');
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
