/* api.h - the scheduler's JSON HTTP API (prefix: api_); see docs/api.md. */
#ifndef CAIRN_API_H
#define CAIRN_API_H

#include "http.h"

/* The http_handler_fn for the scheduler; ud is the struct sched*. */
void api_handle(void *ud, struct http_conn *c, const struct http_req *req);

#endif
