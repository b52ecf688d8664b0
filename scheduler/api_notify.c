/* api_notify.c - GET /api/v1/notifications (api_notify.h): the deliveries
 * of `notify:` as the notifier stored them (notifier.h). */
#include "api_notify.h"

#include <jansson.h>
#include <stdlib.h>

#include "api.h"
#include "engine.h"
#include "http.h"
#include "notifier.h"

void
api_notify_list(struct sched *s, struct http_conn *c, const struct http_req *req,
                const struct route_params *p)
{
    (void)p;
    char *dag = api_query(req, "dag"), *ls = api_query(req, "limit"), err[256];
    long limit = 100;
    if (ls) {
        char *end;
        limit = strtol(ls, &end, 10);
        if (*end || limit <= 0 || limit > NTF_LIST_MAX) {
            http_respond_error(c, 400, "bad_request", "limit must be 1..%d", NTF_LIST_MAX);
            goto out;
        }
    }
    json_t *arr = ntf_list(s, dag, (size_t)limit, err, sizeof(err));
    if (!arr) {
        http_respond_error(c, 503, "unavailable", "cannot read the state store: %s", err);
        goto out;
    }
    http_respond_json(c, 200, json_pack("{s:o}", "notifications", arr));
out:
    free(dag);
    free(ls);
}
