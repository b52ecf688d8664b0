/* api_backfills.c - the API's backfill routes (see api_backfills.h,
 * docs/api.md): create (or plan, with dry_run), list, show, cancel.
 *
 * Backfills are the backfill module's (backfill.h, through
 * sched_backfills); this file checks the request, calls it, and answers a
 * change once it is durable.
 */
#include "api_backfills.h"

#include <stdlib.h>

#include "api.h"
#include "backfill.h"
#include "engine.h"
#include "err.h"

void
api_backfills_create(struct sched *s, struct http_conn *c, const struct http_req *req,
                     const struct route_params *p)
{
    const char *dag = route_param(p, "dag");
    json_t *body;
    if (!api_body_object(c, req, &body))
        return;
    struct bf_request br = {0};
    br.dag = dag;
    br.from = json_string_value(json_object_get(body, "from"));
    br.to = json_string_value(json_object_get(body, "to"));
    const char *rp = json_string_value(json_object_get(body, "reprocess"));
    json_t *mar = json_object_get(body, "max_active_runs");
    br.params = json_object_get(body, "params");
    br.dry_run = json_is_true(json_object_get(body, "dry_run"));
    int rpi = rp ? bf_reprocess_parse(rp) : BF_REPROCESS_NONE;
    if (!br.from || !br.to) {
        http_respond_error(c, 400, "bad_request",
                           "'from' and 'to' are required (dates such as "
                           "2026-01-01, or ISO 8601 times)");
    } else if (rpi < 0) {
        http_respond_error(c, 400, "bad_request",
                           "'reprocess' must be none, failed or all, not '%s'", rp);
    } else if (mar && !json_is_null(mar) &&
               (!json_is_integer(mar) || json_integer_value(mar) < 1 ||
                json_integer_value(mar) > 10000)) {
        http_respond_error(c, 400, "bad_request",
                           "'max_active_runs' must be an integer from 1 to 10000");
    } else if (br.params && !json_is_object(br.params)) {
        http_respond_error(c, 400, "bad_request", "'params' must be an object");
    } else {
        br.reprocess = (enum bf_reprocess)rpi;
        br.max_active_runs = json_is_integer(mar) ? (int)json_integer_value(mar) : 0;
        char err[512];
        json_t *out = NULL;
        int rc = bf_create(sched_backfills(s), &br, &out, err, sizeof(err));
        if (rc)
            api_respond_code(c, rc, err);
        else if (br.dry_run)
            http_respond_json(c, 200, out);
        else
            api_respond_after_commit(s, c, 201, out);
    }
    json_decref(body);
}

void
api_backfills_list(struct sched *s, struct http_conn *c, const struct http_req *req,
                   const struct route_params *p)
{
    char *dag = api_query(req, "dag");
    http_respond_json(c, 200, json_pack("{s:o}", "backfills", bf_list(sched_backfills(s), dag)));
    free(dag);
}

void
api_backfills_get(struct sched *s, struct http_conn *c, const struct http_req *req,
                  const struct route_params *p)
{
    const char *id = route_param(p, "id");
    json_t *out = bf_get(sched_backfills(s), id);
    if (out)
        http_respond_json(c, 200, out);
    else
        http_respond_error(c, 404, "not_found", "no backfill '%s'", id);
}

void
api_backfills_cancel(struct sched *s, struct http_conn *c, const struct http_req *req,
                     const struct route_params *p)
{
    char err[256];
    json_t *out = NULL;
    int rc = bf_cancel(sched_backfills(s), route_param(p, "id"), &out, err, sizeof(err));
    if (rc)
        api_respond_code(c, rc, err);
    else
        api_respond_after_commit(s, c, 200, out);
}
