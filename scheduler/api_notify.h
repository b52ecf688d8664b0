/* api_notify.h - the API's notification route (prefix: api_notify_); see
 * docs/api.md. An api_handler_fn (api.h): it responds on c before it
 * returns. */
#ifndef CAIRN_API_NOTIFY_H
#define CAIRN_API_NOTIFY_H

struct sched;
struct http_conn;
struct http_req;
struct route_params;

/* GET /api/v1/notifications[?dag=D&limit=N]: recent deliveries, newest
 * first, with their state, tries and last error. */
void api_notify_list(struct sched *s, struct http_conn *c, const struct http_req *req,
                     const struct route_params *p);

#endif
