/* api.h - the scheduler's JSON HTTP API (prefix: api_); see docs/api.md.
 *
 * Every route is one entry of a table {method, pattern, handler} (api.c),
 * sorted by pattern then method; api_handle finds a request's route and
 * calls its handler. The handlers live with their resource: api_dags.h,
 * api_runs.h, api_backfills.h, api_workers.h, api_ml.h; they read stored
 * records through api_read.h and build their JSON with api_present.h. */
#ifndef CAIRN_API_H
#define CAIRN_API_H

#include "http.h"
#include "route.h"
#include "tokfile.h"

struct sched;
struct store_txn;

/* The http_handler_fn for the scheduler; ud is the struct sched*. A path
 * no route has, and a path asked with a method its routes do not take, are
 * both answered 404 not_found ("no such endpoint: METHOD PATH"; outside
 * /api/v1, "no such endpoint: PATH"). */
void api_handle(void *ud, struct http_conn *c, const struct http_req *req);

/* The one signature of every route's handler. It responds on c (now or
 * later) as http.h says; p holds the route's path parameters by the names
 * of its pattern, borrowed until the handler returns (copy what a later
 * response needs). */
typedef void (*api_handler_fn)(struct sched *s, struct http_conn *c, const struct http_req *req,
                               const struct route_params *p);

struct api_route {
    const char *method;  /* "GET" (which also answers HEAD), "POST" or "PUT" */
    const char *pattern; /* see route.h: "/api/v1/runs/{run}/tasks/{task}/logs" */
    api_handler_fn fn;
    int role; /* the least role a token needs (tokfile.h; TOKF_PUBLIC: none), or
                 API_ROLE_LEASE */
};

/* A route for workers (api_blobs.h): its handler checks the lease's own
 * credential; API tokens and the browser checks do not apply. */
#define API_ROLE_LEASE (-1)

/* The route table: *n entries (static storage), sorted by pattern, then
 * method (strcmp). */
const struct api_route *api_routes(size_t *n);

/* The route for method and the split path: the first in table order whose
 * pattern matches rp and whose method is method (HEAD is taken as GET).
 * Literal segments are [a-z0-9.-], which sort before '{', and patterns
 * that could match one path name a parameter they share alike: so of two
 * such patterns, the one with a literal at the first segment where they
 * differ sorts first and wins (test_routes checks both rules). Returns 0 with
 * *route and *params (may be NULL) set; CAIRN_ENOENT if no pattern matches
 * the path; CAIRN_EINVAL if one does, but not with that method. */
int api_route_find(const char *method, const struct route_path *rp, const struct api_route **route,
                   struct route_params *params);

/* --- shared by the handlers --- */

/* Load a run record through t (a new object), resolving the DAG when dag is
 * NULL (the run id must then be unique across DAGs). The record returned
 * decodes as a run (schema_run_decode); api_read_run gives the decoded
 * struct too. NULL on failure, with *status 404 (no such run), 409
 * (ambiguous), 500 (the record does not decode: logged, CAIRN-RECORD-BAD)
 * or 503 (the store failed) and a message in err. */
json_t *api_load_run(struct sched *s, struct store_txn *t, const char *dag, const char *run_id,
                     int *status, char *err, size_t errlen);
/* The decoded value of query parameter name (malloc'd), or NULL if absent. */
char *api_query(const struct http_req *req, const char *name);
/* Parse the request's body as an optional JSON object: true with *body (a
 * new reference, NULL for an empty body), or false after answering 400. */
bool api_body_object(struct http_conn *c, const struct http_req *req, json_t **body);
/* Answer status with json (stolen) once the current changes are durable;
 * 503 unavailable if the commit fails. */
void api_respond_after_commit(struct sched *s, struct http_conn *c, int status, json_t *json);
/* Answer status (400, 404, 409, 503, or anything else as 500) in the
 * API's error shape, with the code that goes with it (bad_request,
 * not_found, conflict, unavailable, internal) and msg. */
void api_respond_status(struct http_conn *c, int status, const char *msg);
/* Answer an engine error code: CAIRN_ENOENT 404 not_found, CAIRN_ESTATE and
 * CAIRN_EEXIST 409 conflict, anything else 400 bad_request; err is the
 * message. */
void api_respond_code(struct http_conn *c, int rc, const char *err);

#endif
