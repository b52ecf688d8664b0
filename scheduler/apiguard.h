/* apiguard.h - who may call the HTTP API, and from where (prefix: apiguard_);
 * see docs/api.md, "Security".
 *
 * The http_handler_fn the scheduler serves with: every request passes these
 * checks, in this order, before api_handle sees it:
 *   1. Host: the request's Host (without its port) must be one the
 *      scheduler serves: the bound address (unless a wildcard), localhost, 127.0.0.1, ::1, and
 *      the names given with --http-allowed-hosts (else 400 bad_host), so a
 *      DNS-rebound name cannot reach the API from a browser.
 *   2. State-changing methods (anything but GET, HEAD, OPTIONS): an Origin
 *      header, when present, must name an allowed host (else 403
 *      bad_origin); a request with a body, or with an Origin, must be
 *      Content-Type: application/json (else 415 unsupported_media_type).
 *      A browser cannot send either cross-origin without a CORS preflight,
 *      which the API never grants (CSRF).
 *   3. With --api-tokens: "Authorization: Bearer TOKEN" must name a token of
 *      the file (else 401 unauthorized, with "WWW-Authenticate: Bearer")
 *      whose role is at least the route's (api.h; else 403 forbidden). The
 *      file is reread when it changes (checked on each request with one
 *      stat); a new version that does not load is refused, logged, and the
 *      previous one stays in force.
 * Each refusal is logged (CAIRN-HTTP-REFUSED) with the reason.
 */
#ifndef CAIRN_APIGUARD_H
#define CAIRN_APIGUARD_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"
#include "tokfile.h"

struct sched;

struct apiguard {
    struct sched *sched; /* handed to api_handle */
    char *tokens_path;   /* NULL: no authentication (loopback only) */
    struct tokf tokens;
    struct tokf refused; /* identity of the last version that failed to load */
    int missing;         /* the file was gone at the last look (logged once) */
    char **hosts;        /* allowed Host names, lower case */
    size_t nhosts;
};

/* Set up g: tokens_path (NULL for none) is loaded now (an error is returned
 * with its message: the scheduler does not start); bind_host is the
 * address the API listens on; allowed_hosts a comma-separated list (may be
 * NULL). Returns 0 or CAIRN_EINVAL. */
int apiguard_init(struct apiguard *g, struct sched *s, const char *tokens_path,
                  const char *bind_host, const char *allowed_hosts, char *err, size_t errlen);

void apiguard_free(struct apiguard *g);

/* Is host (an address literal or name, as given to --http) loopback only? */
int apiguard_is_loopback(const char *host);

/* The http_handler_fn; ud is the struct apiguard. */
void apiguard_handle(void *ud, struct http_conn *c, const struct http_req *req);

/* The caller of the request being handled, for a handler that runs from
 * apiguard_handle: false without tokens (then *role is TOKF_ADMIN, *name
 * ""); true with them, *name and *role being its token's (TOKF_PUBLIC and
 * "" on a public route). Valid until the handler returns. */
bool apiguard_caller(const char **name, int *role);

#endif
