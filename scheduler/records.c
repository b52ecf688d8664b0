/* records.c - the model as store records (records.h), through schema.h. */
#include "records.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact.h"
#include "core.h"
#include "err.h"
#include "fsm.h"
#include "gpualloc.h"
#include "imgref.h"
#include "log.h"
#include "msg.h"
#include "runtab.h"
#include "schema.h"
#include "store.h"
#include "util.h"

json_t *
sched_json_time(int64_t wall_ms)
{
    return schema_time_json(wall_ms);
}

/* A group's own part of its record: what recovery needs to make the same
 * instances again, and counts for listings. */
static json_t *
rec__map(const struct sched_map *m)
{
    if (!m->expanded)
        return NULL;
    json_t *counts = json_object();
    for (int i = 0; i < TI_NSTATES; i++)
        if (m->count[i])
            json_object_set_new(counts, sched_ti_state_name((enum ti_state)i),
                                json_integer(m->count[i]));
    json_t *j = json_pack("{s:I, s:o}", "n", (json_int_t)m->n, "counts", counts);
    if (m->items_sha[0])
        json_object_set_new(j, "items_sha", json_string(m->items_sha));
    if (m->manifest_sha[0])
        json_object_set_new(j, "manifest_sha", json_string(m->manifest_sha));
    return j;
}

json_t *
rec_ti(const struct sched_ti *ti)
{
    const struct dag_task *t = sched_task(ti);
    char name[256];
    json_t *map = ti->map ? rec__map(ti->map) : NULL;
    struct schema_ti r = {
        .task = sched_ti_name(ti, name, sizeof(name)),
        .is_instance = ti->parent != NULL,
        .map_index = ti->map_index,
        .map = map,
        .state = sched_ti_state_name(ti->state),
        .attempts = ti->attempts,
        .max_attempts = ti->attempt_base + t->retries + 1 + ti->lost,
        .lost = ti->lost,
        .attempt_base = ti->attempt_base,
        .lease_id = ti->lease_id,
        .worker = ti->worker_name,
        .queued_at = ti->queued_at,
        .started_at = ti->started_at,
        .ended_at = ti->ended_at,
        .next_try_at = ti->next_try_at,
        .exit_code = ti->exit_code,
        .signal = ti->signal,
        .oom_killed = ti->oom,
        .timed_out = ti->timed_out,
        .error = ti->error,
        .log_size = ti->log_size,
        .log_lost = ti->log_lost,
        .outputs = ti->outputs,
        .metrics = ti->metrics,
        .publishing = ti->publishing,
        .cached = ti->cached,
        .cached_from = ti->cached_from,
        .no_cache = ti->no_cache,
        .cache_key = ti->cache_key[0] ? ti->cache_key : NULL,
        .image_digest = ti->image_digest[0] ? ti->image_digest : NULL,
        .published = ti->published,
        .stderr_tail = ti->stderr_tail,
        .deadline_missed_at = ti->deadline_missed_at,
        .excluded = ti->excluded,
    };
    if (ti->ngpus) {
        r.gpus = json_array();
        for (size_t i = 0; i < ti->ngpus; i++)
            json_array_append_new(r.gpus, json_integer(ti->gpus[i]));
    }
    json_t *j = schema_ti_encode(&r);
    json_decref(map);
    json_decref(r.gpus);
    return j;
}

char *
rec_ti_key(const struct sched_ti *ti)
{
    if (ti->parent)
        return schema_key_instance(ti->run->dag, ti->run->run_id, sched_task(ti)->name,
                                   ti->map_index);
    return schema_key_below(ti->run->key, sched_task(ti)->name);
}

char *
rec_attempt_key(const struct sched_ti *ti)
{
    char name[256];
    return schema_key_attempt(ti->run->dag, ti->run->run_id,
                              sched_ti_name(ti, name, sizeof(name)), ti->attempts);
}

json_t *
rec_attempt(const struct sched_ti *ti)
{
    struct schema_attempt a = {
        .attempt = ti->attempts,
        .lease_id = ti->lease_id,
        .worker = ti->worker_name,
        .state = fsm_attempt_state(ti->state),
        .started_at = ti->started_at,
        .ended_at = ti->ended_at,
        .exit_code = ti->exit_code,
        .signal = ti->signal,
        .oom_killed = ti->oom,
        .timed_out = ti->timed_out,
        .error = ti->error,
        .log_size = ti->log_size,
        .log_lost = ti->log_lost,
        .duration_ms = ti->ended_at && ti->started_at ? ti->ended_at - ti->started_at : 0,
        .stderr_tail = ti->stderr_tail,
    };
    /* image, argv, env, inputs: shared with ti->prov, not copied */
    if (ti->prov) {
        a.image = json_string_value(json_object_get(ti->prov, "image"));
        a.image_digest = json_string_value(json_object_get(ti->prov, "image_digest"));
        a.argv = json_object_get(ti->prov, "argv");
        a.env = json_object_get(ti->prov, "env");
        a.secrets = json_object_get(ti->prov, "secrets");
        a.inputs = json_object_get(ti->prov, "inputs");
    }
    return schema_attempt_encode(&a);
}

void
rec_attempt_keep(struct sched *s, const struct sched_ti *ti)
{
    char *key = rec_attempt_key(ti);
    json_object_set_new(s->ended_attempts, key, rec_attempt(ti));
    free(key);
}

json_t *
rec_task_counts(const struct sched_run *r)
{
    int n[TI_NSTATES] = {0};
    for (size_t i = 0; i < r->ntis; i++)
        n[r->tis[i].state]++;
    json_t *c = json_object();
    for (int i = 0; i < TI_NSTATES; i++)
        if (n[i])
            json_object_set_new(c, sched_ti_state_name((enum ti_state)i), json_integer(n[i]));
    return c;
}

json_t *
rec_run(const struct sched_run *r)
{
    struct schema_run x = {
        .dag = r->dag,
        .run_id = r->run_id,
        .state = sched_run_state_name(r->state),
        .run_type = r->run_type,
        .logical_date = r->logical_date,
        .interval_end = r->interval_end,
        .created_at = r->created_at,
        .started_at = r->started_at,
        .ended_at = r->ended_at,
        .dag_version = r->dv->dag->version,
        .params = r->params,
        .seq = (int64_t)r->seq,
        .no_cache = r->no_cache,
        .backfill_id = r->backfill,
        .task_counts = rec_task_counts(r),
        .ntasks = (int64_t)r->ntis,
        .images = r->images,
        .deadline_missed_at = r->deadline_missed_at,
        .pinning = r->pinning > 0,
        .event = r->event,
        .code_digest = r->code_digest[0] ? r->code_digest : NULL,
    };
    json_t *j = schema_run_encode(&x);
    json_decref(x.task_counts);
    return j;
}

/* ---------- artifact pointers and their index by digest ---------- */

static int
rec__artidx_put(struct store_txn *t, const char *ptrkey, const json_t *ptr)
{
    struct schema_artifact a;
    if (schema_artifact_decode(ptr, &a, NULL, 0) != 0)
        return 0; /* not a pointer this build reads: nothing to index */
    struct schema_artidx x = {a.dag, a.run_id, a.task, a.name, a.attempt, a.created_at};
    json_t *e = schema_artidx_encode(&x);
    char *k = schema_key_artidx(a.sha256, ptrkey);
    int rc = store_put(t, STORE_ARTIFACT_SHAS, k, e);
    free(k);
    json_decref(e);
    return rc;
}

int
rec_artidx_del(struct store_txn *t, const char *ptrkey, const json_t *ptr)
{
    const char *sha = json_string_value(json_object_get(ptr, "sha256"));
    if (!sha)
        return 0;
    char *k = schema_key_artidx(sha, ptrkey);
    int rc = store_del(t, STORE_ARTIFACT_SHAS, k);
    free(k);
    return rc == CAIRN_ENOENT ? 0 : rc;
}

/* Write a pointer and its index entry (dropping the entry of a pointer it
 * replaces). */
static int
rec__artifact_put(struct store_txn *t, const char *ptrkey, const json_t *ptr)
{
    void *old = NULL;
    int rc = store_get(t, STORE_ARTIFACTS, ptrkey, &old);
    if (rc == 0) {
        rc = rec_artidx_del(t, ptrkey, old);
        json_int_t oa = json_integer_value(json_object_get(old, "attempt"));
        json_int_t na = json_integer_value(json_object_get(ptr, "attempt"));
        if (!rc && oa != na) {
            /* a cleared task ran again: the earlier attempt's pointer stays
             * (superseded) so its bytes keep their lineage */
            char *hk = schema_key_artifact_old(ptrkey, oa);
            json_object_del(old, "v");
            json_object_set_new(old, "superseded", json_true());
            rc = rec__artidx_put(t, hk, old);
            if (!rc)
                rc = store_put(t, STORE_ARTIFACTS, hk, old);
            free(hk);
        }
        json_decref(old);
    } else if (rc == CAIRN_ENOENT) {
        rc = 0;
    }
    if (!rc)
        rc = rec__artidx_put(t, ptrkey, ptr);
    if (!rc)
        rc = store_put(t, STORE_ARTIFACTS, ptrkey, ptr);
    return rc;
}

/* The pointers of ti's outputs, as its success stored them. */
static int
rec__artifacts(struct store_txn *t, const struct sched_ti *ti)
{
    char name[256];
    const char *task = sched_ti_name(ti, name, sizeof(name));
    size_t k;
    json_t *v;
    int rc = 0;
    json_array_foreach(ti->outputs, k, v)
    {
        struct schema_artifact a = {
            .name = json_string_value(json_object_get(v, "name")),
            .sha256 = json_string_value(json_object_get(v, "sha256")),
            .size = json_integer_value(json_object_get(v, "size")),
            .uri = json_string_value(json_object_get(v, "uri")),
            .dag = ti->run->dag,
            .run_id = ti->run->run_id,
            .task = task,
            .attempt = ti->attempts,
            .created_at = ti->ended_at,
            .cached_from = ti->cached_from,
        };
        if (!a.name || !a.sha256)
            continue; /* outputs are checked when a result is applied */
        char *key = schema_key_artifact(ti->run->dag, ti->run->run_id, task, a.name);
        json_t *rec = schema_artifact_encode(&a);
        rc = rec__artifact_put(t, key, rec);
        json_decref(rec);
        free(key);
        if (rc)
            break;
    }
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
    return rec__artidx_put(ud, key, json);
}

int
rec_artidx_check(struct sched *s)
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

/* ---------- the group commit's model part ---------- */

int
rec_flush(struct sched *s, struct store_txn *t)
{
    int rc = 0;
    for (struct sched_run *r = s->dirty_runs; r && !rc; r = r->dirty_next) {
        json_t *j = rec_run(r);
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
        /* a task instance that has not run yet is what its DAG version and
         * its run say: recovery makes it pending again and decides it, so a
         * run of 100,000 tasks is not 100,000 records at its trigger */
        if (!ti->stored && ti->attempts == 0 && !ti->attempt_base &&
            (ti->state == TI_PENDING || ti->state == TI_QUEUED))
            continue;
        ti->stored = true;
        char *key = rec_ti_key(ti);
        json_t *j = rec_ti(ti);
        rc = store_put(t, STORE_TIS, key, j);
        json_decref(j);
        free(key);
        if (!rc && ti->artifacts_dirty && ti->outputs)
            rc = rec__artifacts(t, ti);
        if (!rc && ti->attempt_dirty && ti->attempts > 0) {
            key = rec_attempt_key(ti);
            j = rec_attempt(ti);
            rc = store_put(t, STORE_ATTEMPTS, key, j);
            json_decref(j);
            free(key);
        }
    }
    for (size_t i = 0; i < s->ndirty_dags && !rc; i++) {
        struct sched_dag *sd = s->dirty_dags[i];
        struct schema_dag d = {sd->name, sd->file, sd->cur ? sd->cur->dag->version : NULL,
                               sd->paused, sd->has_cursor, sd->cursor};
        json_t *j = schema_dag_encode(&d);
        rc = store_put(t, STORE_DAGS, sd->name, j);
        json_decref(j);
    }
    if (!rc && s->lease_seq_dirty) {
        json_t *j = json_pack("{s:I}", "value", (json_int_t)s->lease_seq);
        rc = store_put(t, STORE_META, "lease_seq", j);
        json_decref(j);
    }
    return rc;
}

/* ---------- reading back ---------- */

/* The provenance of an attempt in flight, from its stored record, so that
 * rewriting the record when the attempt ends keeps it. NULL for a record
 * written before attempts carried it (nothing to keep then). */
static json_t *
rec__prov(struct store_txn *t, const struct sched_ti *ti)
{
    char *key = rec_attempt_key(ti);
    void *rec = NULL;
    json_t *prov = NULL;
    struct schema_attempt a;
    if (store_get(t, STORE_ATTEMPTS, key, &rec) == 0 &&
        schema_attempt_decode(rec, &a, NULL, 0) == 0 && a.image) {
        prov = json_pack("{s:s}", "image", a.image);
        if (a.image_digest)
            json_object_set_new(prov, "image_digest", json_string(a.image_digest));
        if (a.argv)
            json_object_set(prov, "argv", a.argv);
        if (a.env)
            json_object_set(prov, "env", a.env);
        if (a.secrets)
            json_object_set(prov, "secrets", a.secrets);
        if (a.inputs)
            json_object_set(prov, "inputs", a.inputs);
    }
    json_decref(rec);
    free(key);
    return prov;
}

static char *
rec__dup(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

int
rec_ti_load(struct store_txn *t, struct sched_ti *ti, const json_t *j, char *err, size_t errlen)
{
    struct schema_ti r;
    int rc = schema_ti_decode(j, &r, err, errlen);
    if (rc)
        return rc;
    ti->stored = true;
    int st = sched_ti_state_parse(r.state);
    ti->state = st < 0 ? TI_PENDING : (enum ti_state)st;
    ti->attempts = r.attempts;
    ti->lost = r.lost;
    ti->attempt_base = r.attempt_base;
    ti->lease_id = r.lease_id;
    free(ti->worker_name);
    ti->worker_name = rec__dup(r.worker);
    ti->queued_at = r.queued_at;
    ti->started_at = r.started_at;
    ti->ended_at = r.ended_at;
    ti->next_try_at = r.next_try_at;
    ti->exit_code = r.exit_code;
    ti->signal = r.signal;
    ti->oom = r.oom_killed;
    ti->timed_out = r.timed_out;
    free(ti->error);
    ti->error = rec__dup(r.error);
    ti->log_size = r.log_size;
    ti->deadline_missed_at = r.deadline_missed_at;
    json_decref(ti->excluded);
    ti->excluded = r.excluded && json_array_size(r.excluded) ? json_incref(r.excluded) : NULL;
    ti->log_lost = r.log_lost;
    json_decref(ti->outputs);
    ti->outputs = r.outputs && json_array_size(r.outputs) ? json_incref(r.outputs) : NULL;
    json_decref(ti->metrics);
    ti->metrics = r.metrics && json_object_size(r.metrics) ? json_incref(r.metrics) : NULL;
    ti->cached = r.cached;
    json_decref(ti->cached_from);
    ti->cached_from = r.cached_from ? json_incref(r.cached_from) : NULL;
    ti->no_cache = r.no_cache;
    ti->cache_key[0] = '\0';
    if (r.cache_key && art_hex_valid(r.cache_key))
        snprintf(ti->cache_key, sizeof(ti->cache_key), "%s", r.cache_key);
    ti->image_digest[0] = '\0';
    if (r.image_digest && imgref_digest_ok(r.image_digest))
        snprintf(ti->image_digest, sizeof(ti->image_digest), "%s", r.image_digest);
    json_decref(ti->published);
    ti->published = r.published ? json_incref(r.published) : NULL;
    json_decref(ti->stderr_tail);
    ti->stderr_tail = r.stderr_tail && json_array_size(r.stderr_tail) ? json_incref(r.stderr_tail)
                                                                       : NULL;
    /* the lease's GPUs: held again when its worker says HELLO */
    int gpus[MSG_GPUS_MAX];
    size_t ng = 0;
    for (size_t i = 0; r.gpus && i < json_array_size(r.gpus) && ng < MSG_GPUS_MAX; i++) {
        json_int_t g = json_integer_value(json_array_get(r.gpus, i));
        if (g >= 0 && g <= MSG_GPU_INDEX_MAX)
            gpus[ng++] = (int)g;
    }
    gpualloc_set_ti(ti, gpus, ng);
    if (ti->map && r.map && json_is_integer(json_object_get(r.map, "n"))) {
        /* a group that had expanded: its instances are made again, all n */
        struct sched_map *m = ti->map;
        runtab_instances_drop(m);
        json_int_t n = json_integer_value(json_object_get(r.map, "n"));
        const char *isha = json_string_value(json_object_get(r.map, "items_sha"));
        const char *msha = json_string_value(json_object_get(r.map, "manifest_sha"));
        if (n < 0 || n > ti->run->dv->dag->max_map_items)
            return errf(CAIRN_EPROTO, err, errlen, "map.n %lld is out of range", (long long)n);
        if (isha && art_hex_valid(isha))
            snprintf(m->items_sha, sizeof(m->items_sha), "%s", isha);
        if (msha && art_hex_valid(msha))
            snprintf(m->manifest_sha, sizeof(m->manifest_sha), "%s", msha);
        m->n = (size_t)n;
        m->inst = xcalloc(m->n + 1, sizeof(*m->inst));
        for (size_t i = 0; i < m->n; i++) {
            runtab_instance_init(ti, i);
            m->created = i + 1;
        }
        m->expanded = true;
    }
    if ((ti->state == TI_LEASED || ti->state == TI_RUNNING) && ti->attempts > 0) {
        json_decref(ti->prov);
        ti->prov = rec__prov(t, ti);
    }
    return 0;
}

void
rec_dags_load(struct sched *s)
{
    struct store_txn *t = NULL;
    if (store_txn_begin(s->store, false, &t) != 0)
        return;
    for (size_t i = 0; i < s->ndags; i++) {
        void *j = NULL;
        struct schema_dag d;
        char err[256];
        if (store_get(t, STORE_DAGS, s->dags[i]->name, &j) != 0)
            continue;
        if (schema_dag_decode(j, &d, err, sizeof(err)) == 0) {
            s->dags[i]->paused = d.paused;
            if (d.has_cursor) {
                s->dags[i]->cursor = d.cursor;
                s->dags[i]->has_cursor = true;
            }
        } else {
            LOG(LOG_ERR, "CAIRN-RECORD-BAD", "DAG %s: %s; its paused flag and schedule cursor "
                "are not restored", s->dags[i]->name, err);
        }
        json_decref(j);
    }
    store_txn_abort(t);
}
