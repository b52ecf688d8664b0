/* api.h - the scheduler's JSON HTTP API (prefix: api_); see docs/api.md. */
#ifndef CAIRN_API_H
#define CAIRN_API_H

#include "http.h"

/* The http_handler_fn for the scheduler; ud is the struct sched*. */
void api_handle(void *ud, struct http_conn *c, const struct http_req *req);

/* --- shared by api.c and api_ml.c --- */
struct sched;
struct store_txn;
/* Load a run record through t (a new object), resolving the DAG when dag is
 * NULL (the run id must then be unique across DAGs). NULL on failure, with
 * *status 404 (no such run) or 409 (ambiguous) and a message in err. */
json_t *api_load_run(struct sched *s, struct store_txn *t, const char *dag, const char *run_id,
                     int *status, char *err, size_t errlen);
/* The decoded value of query parameter name (malloc'd), or NULL if absent. */
char *api_query(const struct http_req *req, const char *name);

#endif
