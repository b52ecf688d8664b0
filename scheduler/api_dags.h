/* api_dags.h - the API's DAG routes (prefix: api_dags_); see docs/api.md.
 * Each is an api_handler_fn (api.h): it responds on c, now or once a change
 * is durable, and borrows req and p only until it returns. */
#ifndef CAIRN_API_DAGS_H
#define CAIRN_API_DAGS_H

struct sched;
struct http_conn;
struct http_req;
struct route_params;

/* GET /api/v1/dags: every DAG the scheduler knows, with its load errors. */
void api_dags_list(struct sched *s, struct http_conn *c, const struct http_req *req,
                   const struct route_params *p);
/* GET /api/v1/dags/{dag}: one DAG with its task list. */
void api_dags_get(struct sched *s, struct http_conn *c, const struct http_req *req,
                  const struct route_params *p);
/* POST /api/v1/dags/{dag}/pause and /unpause: the DAG once the flag is
 * durable. */
void api_dags_pause(struct sched *s, struct http_conn *c, const struct http_req *req,
                    const struct route_params *p);
void api_dags_unpause(struct sched *s, struct http_conn *c, const struct http_req *req,
                      const struct route_params *p);
/* GET /api/v1/dags/{dag}/next-runs?n=N: the next scheduled logical dates. */
void api_dags_next_runs(struct sched *s, struct http_conn *c, const struct http_req *req,
                        const struct route_params *p);
/* POST /api/v1/dags/{dag}/trigger {params, logical_date, no_cache}: 201 and
 * the run once it is durable. */
void api_dags_trigger(struct sched *s, struct http_conn *c, const struct http_req *req,
                      const struct route_params *p);
/* GET /api/v1/dags/{dag}/versions/{version}: a stored version's YAML
 * source and params (404 if the store has no such version). */
void api_dags_version(struct sched *s, struct http_conn *c, const struct http_req *req,
                      const struct route_params *p);

#endif
