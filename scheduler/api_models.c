/* api_models.c - the API's routes for the models folder as a registry
 * (api_models.h, docs/api.md "Models").
 *
 * A release is what registry.h reads from the folder (its publish.json and
 * the links that point at it), completed from the state store through one
 * short read transaction: whether the run's artifact pointers are still
 * there (artifacts gc removes them; the release's own copies stay), and,
 * for one release, the run and the attempt that made it (its inputs'
 * digests, image, command). Promote and rollback go through registry.h on
 * the loop and are answered once their record is durable.
 */
#include "api_models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_read.h"
#include "apiguard.h"
#include "artifact.h"
#include "engine.h"
#include "err.h"
#include "registry.h"
#include "store.h"
#include "util.h"

static const char *
jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* s percent-encoded for a path segment or a query value (malloc'd). */
static char *
url_part(const char *s)
{
    struct sb b;
    sb_init(&b);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p))
            sb_printf(&b, "%c", *p);
        else
            sb_printf(&b, "%%%02X", *p);
    }
    return sb_take(&b);
}

/* The release's digest: its file's SHA-256, or with several files the
 * SHA-256 of their "SHA256  NAME\n" lines in order (sha256sum's format). */
static json_t *
release_digest(const json_t *files)
{
    if (json_array_size(files) == 1)
        return json_incref(json_object_get(json_array_get(files, 0), "sha256"));
    if (json_array_size(files) == 0)
        return json_null();
    struct art_hasher *h = NULL;
    if (art_hasher_new(&h) != 0)
        return json_null();
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        char *line = xasprintf("%s  %s\n", jstr(f, "sha256") ?: "", jstr(f, "name") ?: "");
        art_hasher_update(h, line, strlen(line));
        free(line);
    }
    char hex[ART_HEX_LEN + 1];
    int rc = art_hasher_final(h, hex, NULL);
    art_hasher_free(h);
    return rc == 0 ? json_string(hex) : json_null();
}

/* Whether the run's pointers to the release's files are still stored:
 * "stored", "collected" (artifacts gc removed them) or "unknown" (no run
 * record, or a store error). */
static const char *
artifacts_state(struct sched *s, struct store_txn *t, const json_t *rec, const char *task,
                json_t *per_file)
{
    const json_t *cf = json_object_get(rec, "cached_from");
    const char *dag = jstr(rec, "dag"), *run = jstr(rec, "run_id");
    json_int_t attempt = json_integer_value(json_object_get(rec, "attempt"));
    if (json_is_object(cf)) { /* a cache hit's files are its source's */
        dag = jstr(cf, "dag");
        run = jstr(cf, "run_id");
        task = jstr(cf, "task");
        attempt = json_integer_value(json_object_get(cf, "attempt"));
    }
    if (!t || !dag || !run || !task)
        return "unknown";
    struct schema_run r;
    json_t *rrec = NULL;
    char err[256];
    int st = api_read_run(s, t, dag, run, &r, &rrec, err, sizeof(err));
    json_decref(rrec);
    if (st)
        return "unknown";
    size_t i, gone = 0;
    json_t *f;
    json_array_foreach(json_object_get(rec, "files"), i, f)
    {
        const char *name = jstr(f, "name"), *sha = jstr(f, "sha256");
        struct schema_artifact a;
        json_t *arec = NULL;
        bool found = false;
        if (name && api_read_artifact(t, dag, run, task, name, API_READ_CURRENT, &a, &arec, err,
                                      sizeof(err)) == 0)
            found = sha && !strcmp(a.sha256, sha);
        json_decref(arec);
        arec = NULL;
        if (!found && name &&
            api_read_artifact(t, dag, run, task, name, attempt, &a, &arec, err, sizeof(err)) == 0)
            found = sha && !strcmp(a.sha256, sha);
        json_decref(arec);
        if (!found)
            gone++;
        if (per_file) {
            json_t *o = json_pack("{s:s?, s:s?, s:O?, s:b}", "name", name, "sha256", sha, "size",
                                  json_object_get(f, "size"), "stored", found);
            if (found) {
                char *e[4] = {url_part(run), url_part(task), url_part(name), url_part(dag)};
                json_object_set_new(o, "lineage",
                                    json_sprintf("/api/v1/runs/%s/artifacts/%s/%s/lineage?dag=%s",
                                                 e[0], e[1], e[2], e[3]));
                for (int k = 0; k < 4; k++)
                    free(e[k]);
            }
            json_array_append_new(per_file, o);
        }
    }
    return gone ? "collected" : "stored";
}

/* A release as the API shows it, from registry_releases' element. */
static json_t *
present_release(struct sched *s, struct store_txn *t, const char *dag, const char *task,
                const json_t *r, json_t *per_file)
{
    const json_t *rec = json_object_get(r, "record");
    json_t *o = json_pack("{s:O, s:s, s:s, s:O, s:O}", "release", json_object_get(r, "release"),
                          "dag", dag, "task", task, "path", json_object_get(r, "path"), "stages",
                          json_object_get(r, "stages"));
    if (!json_is_object(rec)) {
        json_object_set_new(o, "error", json_string("its publish.json is missing or unreadable"));
        json_object_set_new(o, "artifacts", json_string("unknown"));
        return o;
    }
    static const char *const copy[] = {"run_id", "attempt", "logical_date", "dag_version",
                                       "files",  "metrics", "cached_from"};
    for (size_t i = 0; i < sizeof(copy) / sizeof(copy[0]); i++) {
        json_t *v = json_object_get(rec, copy[i]);
        json_object_set(o, copy[i], v ? v : json_null());
    }
    json_t *pa = json_object_get(rec, "published_at");
    json_object_set(o, "created_at", pa ? pa : json_null());
    json_object_set_new(o, "digest", release_digest(json_object_get(rec, "files")));
    json_object_set_new(o, "artifacts", json_string(artifacts_state(s, t, rec, task, per_file)));
    return o;
}

/* The model DAG/TASK with its releases; NULL and *status/err on failure. */
static json_t *
present_model(struct sched *s, struct store_txn *t, const char *dag, const char *task, int *status,
              char *err, size_t errlen)
{
    json_t *rels = NULL;
    if (registry_releases(s, dag, task, &rels) != 0) {
        *status = 404;
        snprintf(err, errlen, "%s/%s has published no release to the models folder", dag, task);
        return NULL;
    }
    json_t *arr = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(rels, i, r)
    {
        json_array_append_new(arr, present_release(s, t, dag, task, r, NULL));
    }
    json_decref(rels);
    char *path = xasprintf("%s/%s/%s", sched_models_dir(s), dag, task);
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o}", "dag", dag, "task", task, "path", path,
                          "stages", registry_links(s, dag, task), "releases", arr);
    free(path);
    return o;
}

static struct store_txn *
read_txn(struct sched *s, struct http_conn *c)
{
    struct store_txn *t = NULL;
    if (store_txn_begin(sched_store(s), false, &t) != 0) {
        http_respond_error(c, 503, "unavailable", "cannot read the state store: %s",
                           store_last_error(sched_store(s)));
        return NULL;
    }
    return t;
}

void
api_models_list(struct sched *s, struct http_conn *c, const struct http_req *req,
                const struct route_params *p)
{
    (void)p;
    char *dag = api_query(req, "dag");
    struct store_txn *t = read_txn(s, c);
    if (!t) {
        free(dag);
        return;
    }
    json_t *models = registry_models(s, dag), *out = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(models, i, m)
    {
        int st;
        char err[256];
        json_t *o = present_model(s, t, jstr(m, "dag"), jstr(m, "task"), &st, err, sizeof(err));
        if (o)
            json_array_append_new(out, o);
    }
    store_txn_abort(t);
    json_decref(models);
    free(dag);
    http_respond_json(c, 200,
                      json_pack("{s:s, s:o}", "models_dir", sched_models_dir(s), "models", out));
}

void
api_models_get(struct sched *s, struct http_conn *c, const struct http_req *req,
               const struct route_params *p)
{
    (void)req;
    const char *dag = route_param(p, "dag"), *task = route_param(p, "task");
    struct store_txn *t = read_txn(s, c);
    if (!t)
        return;
    int st = 0;
    char err[512];
    json_t *o = present_model(s, t, dag, task, &st, err, sizeof(err));
    const json_t *hist = o ? registry_history(s, t, dag, task, err, sizeof(err)) : NULL;
    store_txn_abort(t);
    if (!o) {
        api_respond_status(c, st, err);
        return;
    }
    if (!hist) {
        json_decref(o);
        api_respond_status(c, 503, err);
        return;
    }
    json_object_set_new(o, "history", json_deep_copy(hist));
    http_respond_json(c, 200, o);
}

/* What made the release: its run and the attempt that stored its files. */
static json_t *
release_lineage(struct sched *s, struct store_txn *t, const json_t *rec, const char *task)
{
    const json_t *cf = json_object_get(rec, "cached_from");
    const char *dag = jstr(rec, "dag"), *run = jstr(rec, "run_id");
    json_int_t attempt = json_integer_value(json_object_get(rec, "attempt"));
    const char *adag = dag, *arun = run, *atask = task;
    if (json_is_object(cf)) {
        adag = jstr(cf, "dag");
        arun = jstr(cf, "run_id");
        atask = jstr(cf, "task");
        attempt = json_integer_value(json_object_get(cf, "attempt"));
    }
    json_t *o = json_object();
    struct schema_run r;
    json_t *rrec = NULL;
    char err[256];
    bool have_run = dag && run && api_read_run(s, t, dag, run, &r, &rrec, err, sizeof(err)) == 0;
    json_object_set_new(o, "run",
                        have_run ? json_pack("{s:s, s:s?, s:s}", "state", r.state, "run_type",
                                             r.run_type, "dag_version", r.dag_version)
                                 : json_null());
    json_object_set_new(o, "images", have_run && r.images ? json_deep_copy(r.images) : json_null());
    json_decref(rrec);
    struct schema_attempt a;
    json_t *arec = NULL;
    bool have =
        adag && arun && atask &&
        api_read_attempt(t, adag, arun, atask, (int)attempt, &a, &arec, err, sizeof(err)) == 0;
    struct schema_ti ti;
    json_t *tirec = NULL;
    bool have_ti = dag && run && api_read_ti(t, dag, run, task, &ti, &tirec, err, sizeof(err)) == 0;
    json_object_set_new(o, "attempt",
                        json_pack("{s:s?, s:s?, s:I}", "dag", adag, "run_id", arun, "attempt",
                                  (json_int_t)attempt));
    json_object_set_new(o, "worker", have && a.worker ? json_string(a.worker) : json_null());
    json_object_set_new(o, "image", have && a.image ? json_string(a.image) : json_null());
    const char *idig = have && a.image_digest       ? a.image_digest
                       : have_ti && ti.image_digest ? ti.image_digest
                                                    : NULL;
    json_object_set_new(o, "image_digest", idig ? json_string(idig) : json_null());
    json_object_set_new(o, "argv", have && a.argv ? json_deep_copy(a.argv) : json_null());
    json_object_set_new(o, "inputs", have && a.inputs ? json_deep_copy(a.inputs) : json_null());
    json_object_set_new(o, "provenance", json_boolean(have && a.inputs));
    const json_t *code = json_object_get(rec, "code");
    json_object_set_new(
        o, "code",
        json_pack("{s:O?, s:s?, s:O?, s:O?}", "dag_version", json_object_get(rec, "dag_version"),
                  "cache_key", have_ti ? ti.cache_key : NULL, "dir", json_object_get(code, "dir"),
                  "sha256", json_object_get(code, "sha256")));
    json_decref(arec);
    json_decref(tirec);
    return o;
}

void
api_models_release(struct sched *s, struct http_conn *c, const struct http_req *req,
                   const struct route_params *p)
{
    (void)req;
    const char *dag = route_param(p, "dag"), *task = route_param(p, "task"),
               *release = route_param(p, "release");
    json_t *rels = NULL;
    if (registry_releases(s, dag, task, &rels) != 0) {
        http_respond_error(c, 404, "not_found",
                           "%s/%s has published no release to the models folder", dag, task);
        return;
    }
    const json_t *r = NULL;
    size_t i;
    json_t *x;
    json_array_foreach(rels, i, x)
    {
        if (!strcmp(jstr(x, "release") ?: "", release))
            r = x;
    }
    if (!r) {
        json_decref(rels);
        http_respond_error(c, 404, "not_found", "%s/%s has no release '%s'", dag, task, release);
        return;
    }
    struct store_txn *t = read_txn(s, c);
    if (!t) {
        json_decref(rels);
        return;
    }
    json_t *outputs = json_array();
    json_t *o = present_release(s, t, dag, task, r, outputs);
    const json_t *rec = json_object_get(r, "record");
    json_object_set_new(o, "outputs", outputs);
    json_t *params = json_object_get(rec, "params");
    json_object_set(o, "params", params ? params : json_null());
    json_object_set_new(o, "lineage",
                        json_is_object(rec) ? release_lineage(s, t, rec, task) : json_null());
    char err[512];
    const json_t *hist = registry_history(s, t, dag, task, err, sizeof(err));
    store_txn_abort(t);
    json_t *mine = json_array();
    json_array_foreach(hist, i, x)
    {
        if (!strcmp(jstr(x, "release") ?: "", release) ||
            !strcmp(jstr(x, "previous") ?: "", release))
            json_array_append(mine, x);
    }
    json_object_set_new(o, "history", mine);
    if (!strcmp(jstr(o, "artifacts") ?: "", "collected"))
        json_object_set_new(o, "note",
                            json_string("the run's artifacts were removed by artifacts gc; the "
                                        "release's own files in the models folder are kept"));
    json_decref(rels);
    if (!hist) {
        json_decref(o);
        api_respond_status(c, 503, err);
        return;
    }
    http_respond_json(c, 200, o);
}

/* The stage of a promote or rollback body; NULL after answering 400. */
static char *
body_stage(struct http_conn *c, const struct http_req *req)
{
    json_t *body = NULL;
    if (!api_body_object(c, req, &body))
        return NULL;
    const char *st = jstr(body, "stage");
    char *out = st ? xstrdup(st) : NULL;
    json_decref(body);
    if (!out)
        http_respond_error(c, 400, "bad_request",
                           "the body must say which stage: {\"stage\": \"production\"} or "
                           "{\"stage\": \"staging\"}");
    return out;
}

static const char *
caller_name(void)
{
    const char *name = NULL;
    int role;
    return apiguard_caller(&name, &role) && name && *name ? name : "local";
}

static void
answer_change(struct sched *s, struct http_conn *c, int rc, json_t *rec, const char *err)
{
    if (rc == 0)
        api_respond_after_commit(s, c, 200, rec);
    else if (rc == CAIRN_EIO || rc == CAIRN_EFULL)
        http_respond_error(c, 500, "internal", "%s", err);
    else if (rc == CAIRN_ESTORE)
        api_respond_status(c, 503, err);
    else
        api_respond_code(c, rc, err);
}

void
api_models_promote(struct sched *s, struct http_conn *c, const struct http_req *req,
                   const struct route_params *p)
{
    char *stage = body_stage(c, req);
    if (!stage)
        return;
    json_t *rec = NULL;
    char err[512];
    int rc =
        registry_promote(s, route_param(p, "dag"), route_param(p, "task"),
                         route_param(p, "release"), stage, caller_name(), &rec, err, sizeof(err));
    free(stage);
    answer_change(s, c, rc, rec, err);
}

void
api_models_rollback(struct sched *s, struct http_conn *c, const struct http_req *req,
                    const struct route_params *p)
{
    char *stage = body_stage(c, req);
    if (!stage)
        return;
    json_t *rec = NULL;
    char err[512];
    int rc = registry_rollback(s, route_param(p, "dag"), route_param(p, "task"), stage,
                               caller_name(), &rec, err, sizeof(err));
    free(stage);
    answer_change(s, c, rc, rec, err);
}

json_t *
api_models_of_artifact(struct sched *s, struct store_txn *t, const char *dag, const char *run_id,
                       const char *task, const char *name)
{
    json_t *rels = NULL, *out = NULL;
    if (!dag || !run_id || !task || !name || registry_releases(s, dag, task, &rels) != 0)
        return NULL;
    size_t i, k;
    json_t *r, *f;
    json_array_foreach(rels, i, r)
    {
        const json_t *rec = json_object_get(r, "record");
        if (strcmp(jstr(rec, "run_id") ?: "", run_id))
            continue;
        bool has = false;
        json_array_foreach(json_object_get(rec, "files"), k, f)
        {
            has |= !strcmp(jstr(f, "name") ?: "", name);
        }
        if (!has)
            continue;
        const char *rel = jstr(r, "release");
        char err[256];
        const json_t *hist = registry_history(s, t, dag, task, err, sizeof(err));
        json_t *mine = json_array(), *x;
        json_array_foreach(hist, k, x)
        {
            if (!strcmp(jstr(x, "release") ?: "", rel) || !strcmp(jstr(x, "previous") ?: "", rel))
                json_array_append(mine, x);
        }
        if (!out)
            out = json_array();
        json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:O, s:o}", "dag", dag, "task", task,
                                             "release", rel, "stages", json_object_get(r, "stages"),
                                             "history", mine));
    }
    json_decref(rels);
    return out;
}
