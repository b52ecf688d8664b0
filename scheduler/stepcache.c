/* stepcache.c - the step cache in the engine (stepcache.h): keys of ready
 * task instances, lookups before the commit, entries written with the
 * success that made them. cache.c computes the keys. */
#include "stepcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact.h"
#include "cache.h"
#include "codesnap.h"
#include "commit.h"
#include "fanout.h"
#include "imagepin.h"
#include "core.h"
#include "log.h"
#include "pubjob.h"
#include "runtab.h"
#include "schema.h"
#include "secrets.h"
#include "store.h"
#include "taskstate.h"
#include "util.h"

/* ti's step cache key (docs/dag-yaml.md) into hex; "" when it cannot be
 * computed (a template that does not render, an input not stored, a code
 * folder that cannot be read): the task then runs and is not stored. */
static void
sc__key_of(struct sched *s, const struct sched_ti *ti, char hex[65])
{
    const struct sched_run *r = ti->run;
    const struct dag *d = r->dv->dag;
    const struct dag_task *t = &d->tasks[ti->idx];
    struct dag_run_ctx rc;
    char *item = runtab_render_ctx(ti, &rc);
    char **argv = NULL, **envp = NULL, err[512];
    struct cache_input *ins = NULL;
    char (*mshas)[65] = NULL;
    hex[0] = '\0';
    int rrc = dag_render_task(d, ti->idx, &rc, &argv, &envp, err, sizeof(err));
    free(item);
    if (rrc != 0)
        return; /* dispatch fails the task with its message */
    if (t->nmounts) {
        /* what a host folder holds is not part of any key */
        LOG(LOG_WARN, "CAIRN-CACHE-NOKEY", "%s/%s/%s: a task with host mounts is not cached "
            "(their content is not part of the key); the task runs", r->dag, r->run_id, t->name);
        goto out;
    }
    ins = xcalloc(t->ninputs + 1, sizeof(*ins));
    mshas = xcalloc(t->ninputs + 1, sizeof(*mshas));
    for (size_t i = 0; i < t->ninputs; i++) {
        const char *sha = NULL;
        if (t->inputs[i].fan_in) {
            /* every instance's outputs, through the manifest's digest */
            struct sched_ti *g = &r->tis[t->inputs[i].task_idx];
            if (g->map && g->map->expanded &&
                fan_manifest(s, g, mshas[i], err, sizeof(err)) == 0)
                sha = mshas[i];
        } else {
            json_t *a = runtab_input_artifact(ti, &t->inputs[i]);
            sha = a ? json_string_value(json_object_get(a, "sha256")) : NULL;
        }
        if (!sha && !t->inputs[i].optional)
            goto out; /* dispatch fails the task with its message */
        ins[i].name = t->inputs[i].name;
        ins[i].sha256 = sha ? sha : "absent"; /* an optional input that is not there */
    }
    /* params count where the task's templates use them, as they always
     * did, not through CAIRN_PARAM_* (every task has all of them): tuning
     * one task's param does not rerun every cached task of the DAG */
    size_t ne = 0;
    for (size_t i = 0; envp[i]; i++) {
        if (!strncmp(envp[i], "CAIRN_PARAM_", 12))
            free(envp[i]);
        else
            envp[ne++] = envp[i];
    }
    envp[ne] = NULL;
    /* a secret is in the key by the digest of its value, never the value */
    if (t->nsecrets) {
        envp = xrealloc(envp, (ne + t->nsecrets + 1) * sizeof(*envp));
        const char *folder = secrets_folder(s->cfg.secrets_dir);
        for (size_t i = 0; i < t->nsecrets; i++) {
            char *v = NULL, dg[65];
            size_t vl = 0;
            if (secrets_read(folder, t->secrets[i].value, s->cfg.token_file, &v, &vl, err,
                             sizeof(err)) != 0) {
                envp[ne] = NULL;
                goto out; /* dispatch fails the task with its message */
            }
            secrets_digest(v, vl, dg);
            secrets_free(v, vl);
            envp[ne++] = xasprintf("secret:%s=sha256:%s", t->secrets[i].key, dg);
            envp[ne] = NULL;
        }
    }
    struct sched_dag *sd = sched_find_dag(s, r->dag);
    char *code = d->code ? dag_code_path(d->code, sd ? sd->file : NULL) : NULL;
    struct cache_spec sp = {d->name, t->name,     t->image,   argv, envp,       t->outputs,
                            t->noutputs, t->metrics, code, ins, t->ninputs,
                            imagepin_digest(r, t->image),
                            !strcmp(t->image, "host") ? imagepin_host_fingerprint() : NULL,
                            t->entrypoint, t->has_entrypoint,
                            r->code_state == CODESNAP_READY ? r->code_digest : NULL};
    if (cache_key(s->cache_ix, &sp, hex, err, sizeof(err)) != 0) {
        hex[0] = '\0';
        LOG(LOG_WARN, "CAIRN-CACHE-NOKEY", "%s/%s/%s: no cache key (%s); the task runs and its "
            "result is not cached", r->dag, r->run_id, t->name, err);
    }
    free(code);
out:
    free(ins);
    free(mshas);
    dag_strv_free(argv);
    dag_strv_free(envp);
}

static void
sc__key(struct sched *s, struct sched_ti *ti)
{
    sc__key_of(s, ti, ti->cache_key);
    commit_ti_dirty(s, ti, false);
}

/* The cache entry under a key: one not committed yet, else LMDB's. */
static json_t *
sc__lookup(struct sched *s, const char *hex)
{
    char *key = schema_key_cache(hex);
    json_t *e = json_object_get(s->cache_pending, key);
    if (e) {
        free(key);
        return json_incref(e);
    }
    struct store_txn *t = NULL;
    void *j = NULL;
    if (store_txn_begin(s->store, false, &t) == 0) {
        if (store_get(t, STORE_META, key, &j) != 0)
            j = NULL;
        store_txn_abort(t);
    }
    free(key);
    return j;
}

/* Remember a successful attempt under its key; written with its success.
 * The key is computed again first: if the code folder or the image changed
 * while the task ran, what it computed belongs to neither key. */
static void
sc__store(struct sched *s, const struct sched_ti *ti)
{
    const struct sched_run *r = ti->run;
    char now[65];
    sc__key_of(s, ti, now);
    if (strcmp(now, ti->cache_key) != 0) {
        LOG(LOG_WARN, "CAIRN-CACHE-CHANGED", "%s/%s/%s: the code folder or image changed while "
            "the task ran; its result is not cached", r->dag, r->run_id,
            r->dv->dag->tasks[ti->idx].name);
        return;
    }
    char *key = schema_key_cache(ti->cache_key);
    json_t *e = json_pack("{s:s, s:s, s:s, s:i, s:O, s:o, s:o}", "dag", r->dag, "run_id",
                          r->run_id, "task", r->dv->dag->tasks[ti->idx].name, "attempt",
                          ti->attempts, "outputs", ti->outputs, "metrics",
                          ti->metrics ? json_deep_copy(ti->metrics) : json_object(),
                          "created_at", sched_json_time(clock_wall_ms()));
    json_object_set_new(s->cache_pending, key, e);
    free(key);
}

/* A ready task instance with `cache: true`: if an earlier successful
 * attempt had the same key and its blobs are still stored, succeed now
 * with its outputs and metrics, without running. */
static bool
sc__try(struct sched *s, struct sched_ti *ti)
{
    struct sched_run *r = ti->run;
    const struct dag_task *t = &r->dv->dag->tasks[ti->idx];
    sc__key(s, ti);
    if (!ti->cache_key[0] || ti->no_cache)
        return false;
    json_t *e = sc__lookup(s, ti->cache_key);
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
        /* (an S3 store answers a HEAD here, on the loop) */
        if (!sha || !art_hex_valid(sha) || art_stat(s->art, sha, NULL, NULL, 0) != 0) {
            stale = t->outputs[i];
            break;
        }
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
        if (pj_publish_now(s, ti, err, sizeof(err)) != 0) {
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
    ts_finish(s, ti, TI_SUCCESS);
    return true;
}

/* Look up the task instances queued by ts_evaluate, in order; the hits'
 * downstreams join the queue. Misses become ready for workers. */
static void
sc__drain(struct sched *s)
{
    if (s->cache_qhead == s->ncache_q)
        return;
    while (s->cache_qhead < s->ncache_q) {
        struct sched_ti *ti = s->cache_q[s->cache_qhead++];
        /* cancelled (with its run) since it was queued here */
        if (ti->state != TI_PENDING || ti->run->state != RUN_RUNNING)
            continue;
        if (!sc__try(s, ti))
            ts_make_ready(s, ti);
    }
    s->cache_qhead = s->ncache_q = 0;
}

void
sched_ti_set_no_cache(struct sched *s, struct sched_ti *ti, bool on)
{
    ti->no_cache = on;
    commit_ti_dirty(s, ti, false);
}

/* A task instance succeeded: a task with `cache: true` stores its result. */
static void
sc__on_success(struct sched *s, struct sched_ti *ti)
{
    if (sched_task(ti)->cache && ti->cache_key[0])
        sc__store(s, ti);
}

static bool
sc__dirty(void *ud)
{
    struct sched *s = ud;
    return json_object_size(s->cache_pending) > 0;
}

static int
sc__flush(void *ud, struct store_txn *t)
{
    struct sched *s = ud;
    const char *k;
    json_t *v;
    json_object_foreach(s->cache_pending, k, v)
    {
        int rc = store_put(t, STORE_META, k, v);
        if (rc)
            return rc;
    }
    return 0;
}

static void
sc__clear(void *ud)
{
    struct sched *s = ud;
    json_object_clear(s->cache_pending);
}

void
sc_init(struct sched *s)
{
    s->cache_pending = json_object();
    s->cache_ix = cache_index_new();
    s->on_success = sc__on_success;
    commit_add_step(s, sc__drain);
    struct sched_participant p = {sc__dirty, sc__flush, sc__clear, s};
    sched_add_participant(s, &p);
}

void
sc_free(struct sched *s)
{
    json_decref(s->cache_pending);
    cache_index_free(s->cache_ix);
    free(s->cache_q);
}
