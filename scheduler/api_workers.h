/* api_workers.h - the API's worker route (prefix: api_workers_); see
 * docs/api.md. An api_handler_fn (api.h): it responds on c before it
 * returns. */
#ifndef CAIRN_API_WORKERS_H
#define CAIRN_API_WORKERS_H

struct sched;
struct http_conn;
struct http_req;
struct route_params;

/* GET /api/v1/workers: each worker's slots, labels, state and running
 * attempts. */
void api_workers_list(struct sched *s, struct http_conn *c, const struct http_req *req,
                      const struct route_params *p);

#endif
