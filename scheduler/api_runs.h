/* api_runs.h - the API's run routes (prefix: api_runs_); see docs/api.md.
 * Each is an api_handler_fn (api.h): it responds on c, now or once a change
 * is durable, and borrows req and p only until it returns. A run is named
 * by {run}, its DAG by ?dag= (which may be left out when the run id is
 * unique across DAGs; 409 otherwise). Runs and task instances are shown as
 * api_present.h builds them; a stored record that does not decode is a 500
 * when it is the one asked for, and is left out of a list, which then
 * carries "skipped" (docs/api.md). */
#ifndef CAIRN_API_RUNS_H
#define CAIRN_API_RUNS_H

#include <jansson.h>
#include <stddef.h>

struct sched;
struct http_conn;
struct http_req;
struct route_params;

/* GET /api/v1/runs?dag=D&state=S&limit=N: runs newest first, without
 * their tasks. */
void api_runs_list(struct sched *s, struct http_conn *c, const struct http_req *req,
                   const struct route_params *p);
/* GET /api/v1/runs/{run}: one run with its tasks. */
void api_runs_get(struct sched *s, struct http_conn *c, const struct http_req *req,
                  const struct route_params *p);
/* GET /api/v1/runs/{run}/tasks/{task}/attempts */
void api_runs_attempts(struct sched *s, struct http_conn *c, const struct http_req *req,
                       const struct route_params *p);
/* GET /api/v1/runs/{run}/tasks/{task}/logs?attempt=N&offset=O&limit=L */
/* GET /api/v1/runs/RUN/tasks/TASK/instances?dag=&limit=&cursor=&state=: a
 * page of a mapped task's instances, in index order, with the group. */
void api_runs_instances(struct sched *s, struct http_conn *c, const struct http_req *req,
                        const struct route_params *p);
void api_runs_logs(struct sched *s, struct http_conn *c, const struct http_req *req,
                   const struct route_params *p);
/* GET /api/v1/runs/{run}/artifacts: the current artifact pointers. */
void api_runs_artifacts(struct sched *s, struct http_conn *c, const struct http_req *req,
                        const struct route_params *p);
/* POST /api/v1/runs/{run}/clear {task, downstream, failed_only, dag},
 * /retry and /cancel: the run once the change is durable. */
void api_runs_clear(struct sched *s, struct http_conn *c, const struct http_req *req,
                    const struct route_params *p);
void api_runs_retry(struct sched *s, struct http_conn *c, const struct http_req *req,
                    const struct route_params *p);
void api_runs_cancel(struct sched *s, struct http_conn *c, const struct http_req *req,
                     const struct route_params *p);

/* Run run_id of dag (NULL: resolved from the run id) as GET
 * /api/v1/runs/{run}?tasks=all answers it, every task instance included
 * (for api_compare.c): a new object, or NULL with *status (404, 409, 500,
 * 503) and err. */
json_t *api_runs_load(struct sched *s, const char *dag, const char *run_id, int *status,
                      char *err, size_t errlen);

#endif
