/* api_events.h - the API's event route (prefix: api_events_); see
 * docs/api.md, "Events (webhooks)". An api_handler_fn (api.h). */
#ifndef CAIRN_API_EVENTS_H
#define CAIRN_API_EVENTS_H

struct sched;
struct http_conn;
struct http_req;
struct route_params;

/* POST /api/v1/dags/{dag}/events: a webhook signed with HMAC-SHA256 in
 * X-Cairn-Signature (no bearer token: the signature is the credential).
 * 201 and the run once it is durable; 202 when an `all:` group took it and
 * waits for its other events; 401 for a missing or wrong signature, with
 * nothing created. */
void api_events_post(struct sched *s, struct http_conn *c, const struct http_req *req,
                     const struct route_params *p);

#endif
