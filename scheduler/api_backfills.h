/* api_backfills.h - the API's backfill routes (prefix: api_backfills_); see
 * docs/api.md. Each is an api_handler_fn (api.h): it responds on c, now or
 * once a change is durable, and borrows req and p only until it returns. */
#ifndef CAIRN_API_BACKFILLS_H
#define CAIRN_API_BACKFILLS_H

struct sched;
struct http_conn;
struct http_req;
struct route_params;

/* POST /api/v1/dags/{dag}/backfill {from, to, reprocess, max_active_runs,
 * params, dry_run}: 201 and the backfill once durable; 200 and the plan
 * for a dry run. */
void api_backfills_create(struct sched *s, struct http_conn *c, const struct http_req *req,
                          const struct route_params *p);
/* GET /api/v1/backfills?dag=D: newest first. */
void api_backfills_list(struct sched *s, struct http_conn *c, const struct http_req *req,
                        const struct route_params *p);
/* GET /api/v1/backfills/{id}: one, with each date's run. */
void api_backfills_get(struct sched *s, struct http_conn *c, const struct http_req *req,
                       const struct route_params *p);
/* POST /api/v1/backfills/{id}/cancel: the backfill once durable. */
void api_backfills_cancel(struct sched *s, struct http_conn *c, const struct http_req *req,
                          const struct route_params *p);

#endif
