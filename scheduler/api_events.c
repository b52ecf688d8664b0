/* api_events.c - POST /api/v1/dags/{dag}/events (api_events.h): a webhook
 * for an on_webhook trigger. The route is public in the token table (a
 * webhook sender has no bearer token); the Host, Origin and Content-Type
 * checks of apiguard.c still apply, and the body's HMAC-SHA256 with the
 * DAG's secret_file key is checked (events.c) before the body is read. */
#include "api_events.h"

#include <stdio.h>

#include "api.h"
#include "api_present.h"
#include "engine.h"
#include "err.h"
#include "events.h"
#include "hmacsig.h"
#include "log.h"

void
api_events_post(struct sched *s, struct http_conn *c, const struct http_req *req,
                const struct route_params *p)
{
    const char *dag = route_param(p, "dag");
    char err[512];
    struct sched_run *r = NULL;
    int rc = ev_webhook(s, dag, req->body, req->body_len, http_req_header(req, HSIG_HEADER), &r,
                        err, sizeof(err));
    if (rc) {
        int st = rc == CAIRN_EAUTH    ? 401
                 : rc == CAIRN_ENOENT ? 404
                 : rc == CAIRN_EINVAL ? 400
                 : rc == CAIRN_ESTATE ? 409
                                      : 500;
        if (st == 401 || st == 404)
            LOG(LOG_WARN, "CAIRN-EVENT-REFUSED", "POST %s refused (%d): %s", req->path, st, err);
        http_respond_error(c, st,
                           st == 401   ? "unauthorized"
                           : st == 404 ? "not_found"
                           : st == 400 ? "bad_request"
                           : st == 409 ? "conflict"
                                       : "internal",
                           "%s", err);
        return;
    }
    if (!r) {
        api_respond_after_commit(s, c, 202,
                                 json_pack("{s:b, s:n, s:s}", "accepted", 1, "run", "message",
                                           "taken by an all: group, which waits for its other "
                                           "events"));
        return;
    }
    json_t *o = api_present_run_model(r, false, 0, err, sizeof(err));
    if (o)
        api_respond_after_commit(s, c, 201, o);
    else
        http_respond_error(c, 500, "internal", "%s", err);
}
