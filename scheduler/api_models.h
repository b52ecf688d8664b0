/* api_models.h - the API's routes for the models folder as a registry
 * (prefix: api_models_): its releases, their lineage and stages, promote
 * and rollback. See docs/api.md, "Models". Each route is an api_handler_fn
 * (api.h). */
#ifndef CAIRN_API_MODELS_H
#define CAIRN_API_MODELS_H

#include <jansson.h>

#include "http.h"

struct sched;
struct store_txn;
struct route_params;

/* GET /api/v1/models?dag=D: every DAG/TASK that published, with its
 * releases, newest first. */
void api_models_list(struct sched *s, struct http_conn *c, const struct http_req *req,
                     const struct route_params *p);
/* GET /api/v1/models/{dag}/{task}: one of those, with its stage history. */
void api_models_get(struct sched *s, struct http_conn *c, const struct http_req *req,
                    const struct route_params *p);
/* GET /api/v1/models/{dag}/{task}/releases/{release}: a release with its lineage,
 * metrics and the stage changes that concern it. */
void api_models_release(struct sched *s, struct http_conn *c, const struct http_req *req,
                        const struct route_params *p);
/* POST /api/v1/models/{dag}/{task}/releases/{release}/promote {"stage"} */
void api_models_promote(struct sched *s, struct http_conn *c, const struct http_req *req,
                        const struct route_params *p);
/* POST /api/v1/models/{dag}/{task}/rollback {"stage"} */
void api_models_rollback(struct sched *s, struct http_conn *c, const struct http_req *req,
                         const struct route_params *p);

/* The releases of the models folder that the artifact dag/run_id/task/name
 * went into: a new array of {"dag", "task", "release", "stages",
 * "history"} (history: the stage changes it took part in), or NULL when
 * it was not published. For the lineage answers (api_ml.c). */
json_t *api_models_of_artifact(struct sched *s, struct store_txn *t, const char *dag,
                               const char *run_id, const char *task, const char *name);

#endif
