/* api.c - the scheduler's JSON HTTP API: the route table and its dispatch
 * (see api.h and docs/api.md).
 *
 * Owns the one table of routes, {method, pattern, handler} sorted by
 * pattern then method, and api_handle, the http_handler_fn the scheduler
 * serves with: it splits the request's path once (route.h), takes the first
 * route whose pattern matches and whose method is the request's (HEAD is
 * answered as GET), and calls its handler with the path parameters. Paths
 * and methods no route takes are answered 404, as api.h says.
 *
 * The handlers live with their resource (api_dags.c, api_runs.c,
 * api_backfills.c, api_workers.c, api_ml.c), reading stored records
 * through api_read.c and presenting them with api_present.c; the few things
 * they share are here: query parameters, JSON bodies, answering an error
 * status or once a change is durable, loading a run record. Everything runs
 * on the loop thread.
 */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_backfills.h"
#include "api_blobs.h"
#include "api_compare.h"
#include "api_dags.h"
#include "api_events.h"
#include "api_grid.h"
#include "apiguard.h"
#include "api_ml.h"
#include "api_models.h"
#include "api_notify.h"
#include "api_read.h"
#include "api_runs.h"
#include "api_workers.h"
#include "engine.h"
#include "err.h"
#include "hmap.h"
#include "metrics.h"
#include "schedmetrics.h"
#include "store.h"
#include "tokfile.h"
#include "ui.h"
#include "util.h"

static void
get_index(struct sched *s, struct http_conn *c, const struct http_req *req,
          const struct route_params *p)
{
    size_t len;
    const char *html = ui_index_html(&len);
    http_respond(c, 200, "text/html; charset=utf-8", html, len);
}

/* GET /api/v1/whoami: the caller's token name and role, so the UI draws
 * only the buttons the caller may use. */
static void
get_whoami(struct sched *s, struct http_conn *c, const struct http_req *req,
           const struct route_params *p)
{
    const char *name;
    int role;
    bool auth = apiguard_caller(&name, &role);
    (void)s;
    (void)req;
    (void)p;
    http_respond_json(c, 200, json_pack("{s:b, s:s?, s:s}", "auth", auth, "name",
                                        auth && *name ? name : NULL, "role",
                                        tokf_role_name(role)));
}

/* The page's icon (browsers ask for it unprompted): three stacked stones. */
static void
get_favicon(struct sched *s, struct http_conn *c, const struct http_req *req,
            const struct route_params *p)
{
    static const char svg[] =
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">"
        "<ellipse cx=\"8\" cy=\"13\" rx=\"7\" ry=\"2.6\" fill=\"#5f6b7a\"/>"
        "<ellipse cx=\"8\" cy=\"8.4\" rx=\"5\" ry=\"2.3\" fill=\"#2f6fde\"/>"
        "<ellipse cx=\"8\" cy=\"4\" rx=\"3\" ry=\"2\" fill=\"#1f8a4c\"/></svg>";
    (void)s;
    (void)req;
    (void)p;
    http_respond(c, 200, "image/svg+xml", svg, sizeof(svg) - 1);
}

static void
get_health(struct sched *s, struct http_conn *c, const struct http_req *req,
           const struct route_params *p)
{
    const char *why = NULL;
    bool degraded = s && sched_degraded(s, &why);
    json_t *o = json_pack("{s:s, s:s}", "status", degraded ? "degraded" : "ok", "version", "0.1.0");
    if (degraded)
        json_object_set_new(o, "reason",
                            json_sprintf("the state store does not take writes: %s", why));
    if (s) { /* (the API's own tests serve it without an engine) */
        int64_t max_ms = 0, recent_ms = 0;
        uint64_t iterations = 0;
        int64_t max_cpu = 0, recent_cpu = 0;
        sched_loop_stats(s, &max_ms, &recent_ms, &iterations);
        sched_loop_cpu_stats(s, &max_cpu, &recent_cpu);
        json_object_set_new(
            o, "loop",
            json_pack("{s:I, s:I, s:I, s:I, s:I}", "max_iteration_ms", (json_int_t)max_ms,
                      "recent_max_iteration_ms", (json_int_t)recent_ms, "max_iteration_cpu_ms",
                      (json_int_t)max_cpu, "recent_max_iteration_cpu_ms", (json_int_t)recent_cpu,
                      "iterations", (json_int_t)iterations));
    }
    http_respond_json(c, degraded ? 503 : 200, o);
}

struct seed_ctx {
    struct sched *s;
    const char *dag;
};

static int
seed_ti_cb(void *ud, const char *key, const struct schema_ti *ti, json_t *rec)
{
    struct seed_ctx *sc = ud;
    const char *name;
    json_t *v;
    (void)key;
    (void)rec;
    if (ti->is_instance || !json_is_object(ti->metrics))
        return 0; /* (the instances of a mapped task would share one series) */
    json_object_foreach(ti->metrics, name, v)
    {
        if (json_is_number(v))
            smet_task_metric(sc->s, sc->dag, ti->task, name, json_number_value(v));
    }
    return 0;
}

/* cairn_task_metric for runs that finished before this process started:
 * the metrics of each DAG's latest finished run, read once from the store
 * (at the first scrape). A DAG that has finished a run since keeps those. */
static void
seed_task_metrics(struct sched *s)
{
    struct store_txn *t = NULL;
    if (store_txn_begin(sched_store(s), false, &t) != 0)
        return; /* tried again at the next scrape */
    struct api_read_run_list runs = {0};
    size_t skipped = 0;
    api_read_run_list(t, NULL, &runs, &skipped);
    struct hmap best; /* dag -> index of its latest finished run */
    hmap_init(&best);
    for (size_t i = 0; i < runs.n; i++) {
        const struct schema_run *r = &runs.v[i].r, *o;
        size_t k;
        if (strcmp(r->state, "success") && strcmp(r->state, "failed"))
            continue;
        if (hmap_get(&best, r->dag, &k)) {
            o = &runs.v[k].r;
            if (o->ended_at > r->ended_at || (o->ended_at == r->ended_at && o->seq > r->seq))
                continue;
        }
        hmap_put(&best, r->dag, i);
    }
    for (size_t i = 0; i < best.cap; i++) {
        if (!best.slots[i].key)
            continue;
        const struct schema_run *r = &runs.v[best.slots[i].val].r;
        if (smet_task_metrics_live(s, r->dag))
            continue; /* a run of it finished since the start: that one counts */
        struct seed_ctx sc = {s, r->dag};
        api_read_tasks(t, r->dag, r->run_id, seed_ti_cb, &sc, &skipped);
    }
    hmap_free(&best);
    store_txn_abort(t);
    api_read_run_list_free(&runs);
    smet_task_metrics_seeded(s);
}

static void
get_metrics(struct sched *s, struct http_conn *c, const struct http_req *req,
            const struct route_params *p)
{
    if (!s) {
        http_respond_error(c, 404, "not_found", "no metrics without an engine");
        return;
    }
    if (smet_task_metrics_unseeded(s))
        seed_task_metrics(s);
    size_t len;
    char *text = smet_render(s, &len);
    http_respond(c, 200, METRICS_CONTENT_TYPE, text, len);
    free(text);
}

/* Sorted by pattern, then method (test_routes checks it). */
static const struct api_route api__routes[] = {
    {"GET", "/", get_index, TOKF_PUBLIC},
    {"POST", "/api/v1/artifacts/gc", api_ml_gc, TOKF_ADMIN},
    {"GET", "/api/v1/backfills", api_backfills_list, TOKF_VIEWER},
    {"GET", "/api/v1/backfills/{id}", api_backfills_get, TOKF_VIEWER},
    {"POST", "/api/v1/backfills/{id}/cancel", api_backfills_cancel, TOKF_OPERATOR},
    {"GET", "/api/v1/dags", api_dags_list, TOKF_VIEWER},
    {"GET", "/api/v1/dags/{dag}", api_dags_get, TOKF_VIEWER},
    {"POST", "/api/v1/dags/{dag}/backfill", api_backfills_create, TOKF_OPERATOR},
    {"POST", "/api/v1/dags/{dag}/events", api_events_post, TOKF_PUBLIC},
    {"GET", "/api/v1/dags/{dag}/grid", api_grid_get, TOKF_VIEWER},
    {"GET", "/api/v1/dags/{dag}/metrics", api_ml_metrics, TOKF_VIEWER},
    {"GET", "/api/v1/dags/{dag}/next-runs", api_dags_next_runs, TOKF_VIEWER},
    {"POST", "/api/v1/dags/{dag}/pause", api_dags_pause, TOKF_OPERATOR},
    {"POST", "/api/v1/dags/{dag}/trigger", api_dags_trigger, TOKF_OPERATOR},
    {"POST", "/api/v1/dags/{dag}/unpause", api_dags_unpause, TOKF_OPERATOR},
    {"GET", "/api/v1/dags/{dag}/versions/{version}", api_dags_version, TOKF_VIEWER},
    {"GET", "/api/v1/health", get_health, TOKF_PUBLIC},
    {"GET", "/api/v1/leases/{lease}/blobs/{sha}", api_blobs_get, API_ROLE_LEASE},
    {"GET", "/api/v1/leases/{lease}/uploads/{sha}", api_blobs_upload_status, API_ROLE_LEASE},
    {"PUT", "/api/v1/leases/{lease}/uploads/{sha}", api_blobs_upload_put, API_ROLE_LEASE},
    {"POST", "/api/v1/leases/{lease}/uploads/{sha}/commit", api_blobs_commit, API_ROLE_LEASE},
    {"GET", "/api/v1/lineage/{sha}", api_ml_lineage_sha, TOKF_VIEWER},
    {"GET", "/api/v1/models", api_models_list, TOKF_VIEWER},
    {"GET", "/api/v1/models/{dag}/{task}", api_models_get, TOKF_VIEWER},
    {"GET", "/api/v1/models/{dag}/{task}/releases/{release}", api_models_release, TOKF_VIEWER},
    {"POST", "/api/v1/models/{dag}/{task}/releases/{release}/promote", api_models_promote,
     TOKF_OPERATOR},
    {"POST", "/api/v1/models/{dag}/{task}/rollback", api_models_rollback, TOKF_OPERATOR},
    {"GET", "/api/v1/notifications", api_notify_list, TOKF_VIEWER},
    {"GET", "/api/v1/runs", api_runs_list, TOKF_VIEWER},
    {"GET", "/api/v1/runs/{run}", api_runs_get, TOKF_VIEWER},
    {"GET", "/api/v1/runs/{run}/artifacts", api_runs_artifacts, TOKF_VIEWER},
    {"GET", "/api/v1/runs/{run}/artifacts/{task}/{name}", api_ml_artifact, TOKF_VIEWER},
    {"GET", "/api/v1/runs/{run}/artifacts/{task}/{name}/content", api_ml_artifact_content,
     TOKF_VIEWER},
    {"GET", "/api/v1/runs/{run}/artifacts/{task}/{name}/lineage", api_ml_lineage_artifact,
     TOKF_VIEWER},
    {"POST", "/api/v1/runs/{run}/cancel", api_runs_cancel, TOKF_OPERATOR},
    {"POST", "/api/v1/runs/{run}/clear", api_runs_clear, TOKF_OPERATOR},
    {"GET", "/api/v1/runs/{run}/compare", api_compare_runs, TOKF_VIEWER},
    {"POST", "/api/v1/runs/{run}/retry", api_runs_retry, TOKF_OPERATOR},
    {"GET", "/api/v1/runs/{run}/tasks/{task}/attempts", api_runs_attempts, TOKF_VIEWER},
    {"GET", "/api/v1/runs/{run}/tasks/{task}/instances", api_runs_instances, TOKF_VIEWER},
    {"GET", "/api/v1/runs/{run}/tasks/{task}/logs", api_runs_logs, TOKF_VIEWER},
    {"GET", "/api/v1/whoami", get_whoami, TOKF_VIEWER},
    {"GET", "/api/v1/workers", api_workers_list, TOKF_VIEWER},
    {"GET", "/favicon.ico", get_favicon, TOKF_PUBLIC},
    {"GET", "/metrics", get_metrics, TOKF_VIEWER},
};

const struct api_route *
api_routes(size_t *n)
{
    *n = sizeof(api__routes) / sizeof(api__routes[0]);
    return api__routes;
}

int
api_route_find(const char *method, const struct route_path *rp, const struct api_route **route,
               struct route_params *params)
{
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    bool known = false;
    for (size_t i = 0; i < sizeof(api__routes) / sizeof(api__routes[0]); i++) {
        const struct api_route *r = &api__routes[i];
        struct route_params m;
        if (!route_match(r->pattern, rp, &m))
            continue;
        known = true;
        if (strcmp(r->method, method) != 0 && !(get && !strcmp(r->method, "GET")))
            continue;
        *route = r;
        if (params)
            *params = m;
        return 0;
    }
    return known ? CAIRN_EINVAL : CAIRN_ENOENT;
}

void
api_handle(void *ud, struct http_conn *c, const struct http_req *req)
{
    struct sched *s = ud;
    struct route_path rp;
    const struct api_route *r = NULL;
    struct route_params p;

    route_path_split(&rp, req->path);
    const char *why = NULL;
    int found = api_route_find(req->method, &rp, &r, &p);
    if (found == 0)
        http_conn_set_route(c, r->pattern);
    if (found == 0 && s && !strcmp(req->method, "POST") && sched_degraded(s, &why))
        /* a write that could not be stored: refused at once, nothing changed */
        http_respond_error(c, 503, "unavailable",
                           "the state store does not take writes now (%s); nothing was "
                           "changed; retry later",
                           why);
    else if (found == 0) {
        if (!strcmp(r->method, "GET") && !strcmp(rp.n ? rp.seg[0] : "", "api"))
            /* polled answers: a 304 when the client has this body already */
            http_conn_etag(c, http_req_header(req, "If-None-Match"));
        r->fn(s, c, req, &p); /* req may be gone once it returns */
    }
    else if (rp.n < 2 || strcmp(rp.seg[0], "api") || strcmp(rp.seg[1], "v1"))
        http_respond_error(c, 404, "not_found", "no such endpoint: %s", req->path);
    else
        http_respond_error(c, 404, "not_found", "no such endpoint: %s %s", req->method, req->path);
    route_path_free(&rp);
}

/* ---- shared by the handlers ---------------------------------------------- */

char *
api_query(const struct http_req *req, const char *name)
{
    char *v = NULL;
    if (http_query_get(req->query, name, &v) != 0)
        return NULL;
    return v;
}

bool
api_body_object(struct http_conn *c, const struct http_req *req, json_t **body)
{
    json_error_t jerr;
    json_t *b;
    if (!req->body_len) {
        *body = NULL;
        return true;
    }
    b = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!b || !json_is_object(b)) {
        json_decref(b);
        http_respond_error(c, 400, "bad_request", "body must be a JSON object: %s", jerr.text);
        return false;
    }
    *body = b;
    return true;
}

struct commit_wait {
    struct http_conn *c;
    json_t *json;
    int status;
};

static void
committed(void *ud, bool ok)
{
    struct commit_wait *cw = ud;
    if (ok)
        http_respond_json(cw->c, cw->status, cw->json);
    else {
        json_decref(cw->json);
        http_respond_error(cw->c, 503, "unavailable",
                           "the run could not be stored; the state store is unavailable");
    }
    free(cw);
}

void
api_respond_after_commit(struct sched *s, struct http_conn *c, int status, json_t *json)
{
    struct commit_wait *cw = xcalloc(1, sizeof(*cw));
    cw->c = c;
    cw->status = status;
    cw->json = json;
    sched_after_commit(s, committed, cw);
}

void
api_respond_status(struct http_conn *c, int status, const char *msg)
{
    http_respond_error(c, status,
                       status == 400   ? "bad_request"
                       : status == 404 ? "not_found"
                       : status == 409 ? "conflict"
                       : status == 503 ? "unavailable"
                                       : "internal",
                       "%s", msg);
}

void
api_respond_code(struct http_conn *c, int rc, const char *err)
{
    int st = rc == CAIRN_ENOENT ? 404 : rc == CAIRN_ESTATE || rc == CAIRN_EEXIST ? 409 : 400;
    http_respond_error(c, st,
                       st == 404   ? "not_found"
                       : st == 409 ? "conflict"
                                   : "bad_request",
                       "%s", err);
}

json_t *
api_load_run(struct sched *s, struct store_txn *t, const char *dag, const char *run_id, int *status,
             char *err, size_t errlen)
{
    struct schema_run run;
    json_t *rec = NULL;
    int st = api_read_run(s, t, dag, run_id, &run, &rec, err, errlen);
    if (st) {
        *status = st;
        return NULL;
    }
    return rec;
}
