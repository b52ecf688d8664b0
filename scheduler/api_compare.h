/* api_compare.h - comparing two runs side by side (prefix: api_compare_):
 * params, DAG version, images, and per task state, duration, metrics and
 * the digests of the outputs. See docs/api.md, "Comparing runs". */
#ifndef CAIRN_API_COMPARE_H
#define CAIRN_API_COMPARE_H

#include <jansson.h>

#include "http.h"

struct sched;
struct route_params;

/* GET /api/v1/runs/{run}/compare?with=RUN_B&dag=D[&with_dag=D2] */
void api_compare_runs(struct sched *s, struct http_conn *c, const struct http_req *req,
                      const struct route_params *p);

/* The comparison of two runs as the API shows them (GET
 * /api/v1/runs/{run}?tasks=all objects; borrowed): a new object. */
json_t *api_compare_build(const json_t *a, const json_t *b);

#endif
