/* api_ml.h - the API's routes for ML pipelines (prefix: api_ml_): artifact
 * pointers and bytes, lineage, metrics across runs, artifact collection.
 * See docs/api.md. Each route is an api_handler_fn (api.h): it responds on
 * c (now or later) as http.h says, and borrows req and p only until it
 * returns. */
#ifndef CAIRN_API_ML_H
#define CAIRN_API_ML_H

#include <jansson.h>

#include "http.h"

struct sched;
struct store_txn;
struct route_params;

/* GET /api/v1/runs/{run}/artifacts/{task}/{name}?dag=D: the pointer. */
void api_ml_artifact(struct sched *s, struct http_conn *c, const struct http_req *req,
                     const struct route_params *p);
/* GET .../content: the blob's bytes, streamed; the last chunk is sent only
 * if the whole hashes to the pointer's digest (else the transfer is cut
 * short and CAIRN-ARTIFACT-CORRUPT is logged). */
void api_ml_artifact_content(struct sched *s, struct http_conn *c, const struct http_req *req,
                             const struct route_params *p);

/* Make fb (a whole blob's file body) checked as it goes out: the last
 * chunk is sent only if the whole hashes to sha, else the transfer is cut
 * short and CAIRN-ARTIFACT-CORRUPT names what (copied). Sets fb's check,
 * done and ud; -1 (fb unchanged) if out of memory. The blob routes for
 * workers use it too. */
int api_ml_checked_body(struct http_file_body *fb, const char *sha, const char *what);

/* GET /api/v1/lineage/{sha} (a SHA-256 or an unambiguous prefix of 8+
 * characters): the lineage of the earliest pointer with those bytes. */
void api_ml_lineage_sha(struct sched *s, struct http_conn *c, const struct http_req *req,
                        const struct route_params *p);
/* GET /api/v1/runs/{run}/artifacts/{task}/{name}/lineage?dag=D */
void api_ml_lineage_artifact(struct sched *s, struct http_conn *c, const struct http_req *req,
                             const struct route_params *p);

/* GET /api/v1/dags/{dag}/metrics?metric=NAME&last=N: the metrics of each
 * task in the last N runs (default 20), newest first. */
void api_ml_metrics(struct sched *s, struct http_conn *c, const struct http_req *req,
                    const struct route_params *p);

/* POST /api/v1/artifacts/gc {keep_last, older_than_ms, min_age_ms,
 * dry_run}: sched_gc_artifacts; answered when the blobs are swept. */
void api_ml_gc(struct sched *s, struct http_conn *c, const struct http_req *req,
               const struct route_params *p);

/* The pointer dag/run_id/task/name through t (dag NULL: resolved from the
 * run id) as the API shows it (api_present_artifact). 0 and *out (new) on
 * success; -1 with *status and a message in err otherwise: 404 naming what
 * is missing, 409 (the run id is in several DAGs), 500 (a record it needs
 * does not decode), 503 (the store failed). */
int api_ml_pointer(struct sched *s, struct store_txn *t, const char *dag, const char *run_id,
                   const char *task, const char *name, json_t **out, int *status, char *err,
                   size_t errlen);

#endif
