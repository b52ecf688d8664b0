/* api_read.c - the HTTP API's reads of the state store (api_read.h).
 *
 * Owns how the API gets at stored records: the lookups of one run, task
 * instance, attempt or artifact pointer and the scans of a table below a
 * key, each record decoded with its schema.h decoder before a handler sees
 * it, and what happens to a record that does not decode: a lookup reports
 * it (status 500, a message naming the record and the decoder's reason, a
 * CAIRN-RECORD-BAD line in the log), a scan leaves it out, logs it and
 * counts it. Keys and prefixes are built by schema.h only.
 *
 * It holds no state: every call works through the read transaction its
 * caller opened, on the loop thread. It never writes.
 */
#include "api_read.h"

#include "dag.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "err.h"
#include "log.h"
#include "store.h"
#include "util.h"

/* The record types the API reads. */
enum api_read__kind { K_RUN, K_TI, K_ATTEMPT, K_ARTIFACT, K_ARTIDX };

/* What a log line calls each kind. */
static const char *const api_read__names[] = {"run", "task instance", "attempt", "artifact pointer",
                                              "artifact index entry"};

union api_read__any {
    struct schema_run run;
    struct schema_ti ti;
    struct schema_attempt attempt;
    struct schema_artifact artifact;
    struct schema_artidx artidx;
};

static int
api_read__decode(enum api_read__kind k, const json_t *j, union api_read__any *out, char *err,
                 size_t errlen)
{
    switch (k) {
    case K_RUN:
        return schema_run_decode(j, &out->run, err, errlen);
    case K_TI:
        return schema_ti_decode(j, &out->ti, err, errlen);
    case K_ATTEMPT:
        return schema_attempt_decode(j, &out->attempt, err, errlen);
    case K_ARTIFACT:
        return schema_artifact_decode(j, &out->artifact, err, errlen);
    case K_ARTIDX:
        return schema_artidx_decode(j, &out->artidx, err, errlen);
    }
    return errf(CAIRN_EINVAL, err, errlen, "unknown record type");
}

/* key as text for a log line: its parts joined by '/'. */
static void
api_read__key_text(const char *key, char *buf, size_t len)
{
    const char *parts[8];
    char *copy = NULL;
    size_t n = schema_key_split(key, &copy, parts, sizeof(parts) / sizeof(parts[0]));
    struct sb sb;
    sb_init(&sb);
    for (size_t i = 0; i < n; i++)
        sb_printf(&sb, "%s%s", i ? "/" : "", parts[i]);
    snprintf(buf, len, "%s", sb.buf ? sb.buf : "");
    sb_free(&sb);
    free(copy);
}

/* ---- one record ---------------------------------------------------------- */

/* Why the store refused the record at key (rc from store_get): the
 * decoder's own reason when the bytes are JSON (a record version this build
 * does not read), else what is wrong with the bytes. false if the bytes
 * cannot be read at all (the store failed). */
static bool
api_read__refused(struct store_txn *t, enum store_table tb, enum api_read__kind k, const char *key,
                  int rc, char *why, size_t len)
{
    const void *data;
    size_t n;
    if (store_get_raw(t, tb, key, &data, &n) != 0)
        return false;
    json_error_t je;
    json_t *j = json_loadb(data, n, 0, &je);
    union api_read__any u;
    if (!j)
        snprintf(why, len, "the record is not valid JSON (%s)", je.text);
    else if (api_read__decode(k, j, &u, why, len) == 0)
        snprintf(why, len, "the store refuses it (%s)", cairn_strerror(rc));
    json_decref(j);
    return true;
}

/* Read and decode the record at key. what names it for messages ("run
 * 'r1' of DAG 'd'"). Returns 0 or a status, as api_read.h says. */
static int
api_read__get(struct store_txn *t, enum store_table tb, enum api_read__kind k, const char *key,
              const char *what, union api_read__any *out, json_t **rec, char *err, size_t errlen)
{
    void *j = NULL;
    char why[512];
    int rc = store_get(t, tb, key, &j);
    if (rc == CAIRN_ENOENT || rc == CAIRN_EINVAL) /* EINVAL: a key no record can have */
        return 404;
    if (rc == 0) {
        union api_read__any u;
        if (api_read__decode(k, j, &u, why, sizeof(why)) == 0) {
            *out = u;
            *rec = j;
            return 0;
        }
        json_decref(j);
    } else if ((rc != CAIRN_EVERSION && rc != CAIRN_ESTORE) ||
               !api_read__refused(t, tb, k, key, rc, why, sizeof(why))) {
        snprintf(err, errlen, "cannot read the state store (%s)", cairn_strerror(rc));
        return 503;
    }
    snprintf(err, errlen, "%s cannot be read: %s", what, why);
    LOG(LOG_ERR, "CAIRN-RECORD-BAD", "%s; the request is answered with an error", err);
    return 500;
}

/* A run id across DAGs: the keys "dag SEP run_id" whose second part is
 * run_id; only those records are decoded. */
struct api_read__find {
    const char *run_id;
    size_t count;
    char *dag;   /* of the first match */
    json_t *rec; /* the first match, if it decoded */
    struct schema_run run;
    char why[512]; /* why the first match did not decode */
};

static int
api_read__find_cb(void *ud, const char *key, const void *json)
{
    struct api_read__find *f = ud;
    const char *parts[2];
    char *copy = NULL;
    size_t n = schema_key_split(key, &copy, parts, 2);
    if (n == 2 && !strcmp(parts[1], f->run_id) && f->count++ == 0) {
        f->dag = xstrdup(parts[0]);
        if (schema_run_decode(json, &f->run, f->why, sizeof(f->why)) == 0)
            f->rec = json_incref((json_t *)json);
    }
    free(copy);
    return 0;
}

/* No DAG's scan found run_id: a record the store refuses to parse is not
 * seen by a scan, so look for one under each DAG the scheduler knows. */
static int
api_read__find_refused(struct sched *s, struct store_txn *t, const char *run_id, char *err,
                       size_t errlen)
{
    for (size_t i = 0; i < sched_ndags(s); i++) {
        const char *dag = sched_dag_at(s, i)->name;
        char *key = schema_key_run(dag, run_id), *what;
        union api_read__any u;
        json_t *rec = NULL;
        what = xasprintf("run '%s' of DAG '%s'", run_id, dag);
        int st = api_read__get(t, STORE_RUNS, K_RUN, key, what, &u, &rec, err, errlen);
        free(what);
        free(key);
        json_decref(rec);
        if (st == 500 || st == 503)
            return st;
    }
    return 404;
}

int
api_read_run(struct sched *s, struct store_txn *t, const char *dag, const char *run_id,
             struct schema_run *out, json_t **rec, char *err, size_t errlen)
{
    if (dag) {
        char *key = schema_key_run(dag, run_id);
        char *what = xasprintf("run '%s' of DAG '%s'", run_id, dag);
        union api_read__any u;
        int st = api_read__get(t, STORE_RUNS, K_RUN, key, what, &u, rec, err, errlen);
        free(what);
        free(key);
        if (st == 404)
            snprintf(err, errlen, "no run '%s' of DAG '%s'", run_id, dag);
        else if (st == 0)
            *out = u.run;
        return st;
    }
    struct api_read__find f = {.run_id = run_id};
    int rc = store_scan(t, STORE_RUNS, "", api_read__find_cb, &f);
    int st = 0;
    if (rc != 0) {
        snprintf(err, errlen, "cannot read the state store (%s)", cairn_strerror(rc));
        st = 503;
    } else if (f.count == 0) {
        st = api_read__find_refused(s, t, run_id, err, errlen);
        if (st == 404)
            snprintf(err, errlen, "no run '%s'", run_id);
    } else if (f.count > 1) {
        snprintf(err, errlen, "run id '%s' exists in %zu DAGs; say which with --dag", run_id,
                 f.count);
        st = 409;
    } else if (!f.rec) {
        snprintf(err, errlen, "run '%s' of DAG '%s' cannot be read: %s", run_id, f.dag, f.why);
        LOG(LOG_ERR, "CAIRN-RECORD-BAD", "%s; the request is answered with an error", err);
        st = 500;
    }
    if (st == 0) {
        *out = f.run;
        *rec = f.rec;
    } else {
        json_decref(f.rec);
    }
    free(f.dag);
    return st;
}

int
api_read_ti(struct store_txn *t, const char *dag, const char *run_id, const char *task,
            struct schema_ti *out, json_t **rec, char *err, size_t errlen)
{
    /* an instance of a mapped task, TASK[INDEX], is stored below its task */
    char tname[DAG_INSTANCE_NAME_MAX + 1];
    long index = dag_instance_parse(task, tname, sizeof(tname));
    char *key = index >= 0 ? schema_key_instance(dag, run_id, tname, index)
                           : schema_key_ti(dag, run_id, task);
    char *what = xasprintf("task instance '%s' of run '%s' (DAG '%s')", task, run_id, dag);
    union api_read__any u;
    int st = api_read__get(t, STORE_TIS, K_TI, key, what, &u, rec, err, errlen);
    free(what);
    free(key);
    if (st == 404)
        snprintf(err, errlen, "run '%s' of DAG '%s' has no task '%s'", run_id, dag, task);
    else if (st == 0)
        *out = u.ti;
    return st;
}

int
api_read_attempt(struct store_txn *t, const char *dag, const char *run_id, const char *task, int n,
                 struct schema_attempt *out, json_t **rec, char *err, size_t errlen)
{
    char *key = schema_key_attempt(dag, run_id, task, n);
    char *what = xasprintf("attempt %d of task '%s' of run '%s' (DAG '%s')", n, task, run_id, dag);
    union api_read__any u;
    int st = api_read__get(t, STORE_ATTEMPTS, K_ATTEMPT, key, what, &u, rec, err, errlen);
    free(what);
    free(key);
    if (st == 404)
        snprintf(err, errlen, "task '%s' of run '%s' (DAG '%s') has no attempt %d", task, run_id,
                 dag, n);
    else if (st == 0)
        *out = u.attempt;
    return st;
}

int
api_read_artifact(struct store_txn *t, const char *dag, const char *run_id, const char *task,
                  const char *name, int64_t superseded_attempt, struct schema_artifact *out,
                  json_t **rec, char *err, size_t errlen)
{
    char *key = schema_key_artifact(dag, run_id, task, name);
    if (superseded_attempt >= 0) {
        char *old = schema_key_artifact_old(key, superseded_attempt);
        free(key);
        key = old;
    }
    char *what =
        superseded_attempt >= 0
            ? xasprintf("artifact pointer %s/%s of run '%s' (DAG '%s'), attempt %lld", task, name,
                        run_id, dag, (long long)superseded_attempt)
            : xasprintf("artifact pointer %s/%s of run '%s' (DAG '%s')", task, name, run_id, dag);
    union api_read__any u;
    int st = api_read__get(t, STORE_ARTIFACTS, K_ARTIFACT, key, what, &u, rec, err, errlen);
    free(what);
    free(key);
    if (st == 404)
        snprintf(err, errlen, "run '%s' of DAG '%s' has no artifact %s/%s", run_id, dag, task,
                 name);
    else if (st == 0)
        *out = u.artifact;
    return st;
}

/* ---- scans --------------------------------------------------------------- */

struct api_read__scan {
    enum api_read__kind kind;
    union {
        api_read_run_fn run;
        api_read_ti_fn ti;
        api_read_attempt_fn attempt;
        api_read_artifact_fn artifact;
        api_read_artidx_fn artidx;
    } fn;
    void *ud;
    size_t skipped;
};

static int
api_read__scan_cb(void *ud, const char *key, const void *json)
{
    struct api_read__scan *sc = ud;
    json_t *rec = (json_t *)json;
    union api_read__any u;
    char why[512];
    if (api_read__decode(sc->kind, rec, &u, why, sizeof(why)) != 0) {
        char shown[256];
        api_read__key_text(key, shown, sizeof(shown));
        LOG(LOG_ERR, "CAIRN-RECORD-BAD", "skipping the %s at %s: %s", api_read__names[sc->kind],
            shown, why);
        sc->skipped++;
        return 0;
    }
    switch (sc->kind) {
    case K_RUN:
        return sc->fn.run(sc->ud, key, &u.run, rec);
    case K_TI:
        return sc->fn.ti(sc->ud, key, &u.ti, rec);
    case K_ATTEMPT:
        return sc->fn.attempt(sc->ud, key, &u.attempt, rec);
    case K_ARTIFACT:
        return sc->fn.artifact(sc->ud, key, &u.artifact, rec);
    case K_ARTIDX: {
        size_t n = schema_key_prefix_len(key, 1);
        char *sha = xstrndup(key, n);
        int rc = sc->fn.artidx(sc->ud, sha, &u.artidx, rec);
        free(sha);
        return rc;
    }
    }
    return 0;
}

/* Scan tb below prefix (taken: freed here). */
static int
api_read__scan(struct store_txn *t, enum store_table tb, char *prefix, struct api_read__scan *sc,
               size_t *skipped)
{
    int rc = store_scan(t, tb, prefix, api_read__scan_cb, sc);
    free(prefix);
    if (skipped)
        *skipped += sc->skipped;
    return rc;
}

/* The prefix of everything below the run key dag SEP run_id. */
static char *
api_read__run_prefix(const char *dag, const char *run_id)
{
    char *key = schema_key_run(dag, run_id);
    char *prefix = schema_prefix(key);
    free(key);
    return prefix;
}

int
api_read_runs(struct store_txn *t, const char *dag, api_read_run_fn fn, void *ud, size_t *skipped)
{
    struct api_read__scan sc = {.kind = K_RUN, .fn.run = fn, .ud = ud};
    return api_read__scan(t, STORE_RUNS, dag ? schema_prefix(dag) : xstrdup(""), &sc, skipped);
}

static int
api_read__keep_run_cb(void *ud, const char *key, const struct schema_run *r, json_t *rec)
{
    struct api_read_run_list *l = ud;
    (void)key;
    xgrow((void **)&l->v, &l->cap, l->n + 1, sizeof(*l->v));
    l->v[l->n].r = *r;
    l->v[l->n].rec = json_incref(rec);
    l->n++;
    return 0;
}

int
api_read_run_list(struct store_txn *t, const char *dag, struct api_read_run_list *l,
                  size_t *skipped)
{
    return api_read_runs(t, dag, api_read__keep_run_cb, l, skipped);
}

void
api_read_run_list_free(struct api_read_run_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        json_decref(l->v[i].rec);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

int
api_read_tis(struct store_txn *t, const char *dag, const char *run_id, api_read_ti_fn fn, void *ud,
             size_t *skipped)
{
    struct api_read__scan sc = {.kind = K_TI, .fn.ti = fn, .ud = ud};
    return api_read__scan(t, STORE_TIS, api_read__run_prefix(dag, run_id), &sc, skipped);
}

int
api_read_instances(struct store_txn *t, const char *dag, const char *run_id, const char *task,
                   long from, api_read_ti_fn fn, void *ud, size_t *skipped)
{
    struct api_read__scan sc = {.kind = K_TI, .fn.ti = fn, .ud = ud};
    char *key = schema_key_ti(dag, run_id, task);
    char *prefix = schema_prefix(key), *start = schema_key_instance(dag, run_id, task, from);
    int rc = store_scan_from(t, STORE_TIS, prefix, start, 0, api_read__scan_cb, &sc);
    free(key);
    free(prefix);
    free(start);
    if (skipped)
        *skipped += sc.skipped;
    return rc;
}

/* api_read_tasks: a scan that, after a mapped task's group record, seeks
 * past its instances' records (they sort right after it) instead of
 * decoding them one by one. */
struct api_read__tasks {
    struct api_read__scan sc;
    char *resume; /* the key to go on from, or NULL: the scan is over */
};

static int
api_read__tasks_cb(void *ud, const char *key, const void *json)
{
    struct api_read__tasks *tk = ud;
    int rc = api_read__scan_cb(&tk->sc, key, json);
    if (rc || !json_is_object(json_object_get((json_t *)json, "map")))
        return rc;
    /* instance keys are KEY SEP %010ld: ':' sorts after every digit */
    tk->resume = xasprintf("%s" SCHEMA_SEP ":", key);
    return 1;
}

int
api_read_tasks(struct store_txn *t, const char *dag, const char *run_id, api_read_ti_fn fn,
               void *ud, size_t *skipped)
{
    struct api_read__tasks tk = {.sc = {.kind = K_TI, .fn.ti = fn, .ud = ud}};
    char *prefix = api_read__run_prefix(dag, run_id), *start = NULL;
    int rc;
    for (;;) {
        rc = store_scan_from(t, STORE_TIS, prefix, start ? start : prefix, 0, api_read__tasks_cb,
                             &tk);
        free(start);
        start = tk.resume;
        tk.resume = NULL;
        if (!start)
            break;
        rc = 0; /* a group: on from after its instances */
    }
    free(prefix);
    if (skipped)
        *skipped += tk.sc.skipped;
    return rc;
}

int
api_read_attempts(struct store_txn *t, const char *dag, const char *run_id, const char *task,
                  api_read_attempt_fn fn, void *ud, size_t *skipped)
{
    struct api_read__scan sc = {.kind = K_ATTEMPT, .fn.attempt = fn, .ud = ud};
    char *key = schema_key_ti(dag, run_id, task);
    char *prefix = schema_prefix(key);
    free(key);
    return api_read__scan(t, STORE_ATTEMPTS, prefix, &sc, skipped);
}

int
api_read_artifacts(struct store_txn *t, const char *dag, const char *run_id,
                   api_read_artifact_fn fn, void *ud, size_t *skipped)
{
    struct api_read__scan sc = {.kind = K_ARTIFACT, .fn.artifact = fn, .ud = ud};
    return api_read__scan(t, STORE_ARTIFACTS, api_read__run_prefix(dag, run_id), &sc, skipped);
}

int
api_read_artidx(struct store_txn *t, const char *sha, bool prefix, api_read_artidx_fn fn, void *ud,
                size_t *skipped)
{
    struct api_read__scan sc = {.kind = K_ARTIDX, .fn.artidx = fn, .ud = ud};
    return api_read__scan(t, STORE_ARTIFACT_SHAS, prefix ? xstrdup(sha) : schema_prefix(sha), &sc,
                          skipped);
}
