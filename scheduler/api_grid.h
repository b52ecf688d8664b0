/* api_grid.h - the API's grid route (prefix: api_grid_): the states of a
 * DAG's last runs by task, compactly, for the web UI's runs x tasks grid.
 * See docs/api.md. The route is an api_handler_fn (api.h). */
#ifndef CAIRN_API_GRID_H
#define CAIRN_API_GRID_H

#include "http.h"

struct sched;
struct route_params;

/* GET /api/v1/dags/{dag}/grid?limit=N: the last N runs by logical date
 * (default 100, at most 1000), oldest first, each with the state of every
 * task in the order of the answer's `tasks`. */
void api_grid_get(struct sched *s, struct http_conn *c, const struct http_req *req,
                  const struct route_params *p);

#endif
