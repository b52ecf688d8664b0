/* client.h - the CLI's HTTP client for the scheduler's JSON API
 * (prefix: client_).
 *
 * Blocking calls with libcurl, for a single-threaded command-line program.
 * Messages written to err are meant for users as they are (no "cairn: "
 * prefix); err may be NULL when errlen is 0.
 */
#ifndef CAIRN_CLIENT_H
#define CAIRN_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define CLIENT_DEFAULT_SERVER "http://127.0.0.1:7780"
#define CLIENT_CONNECT_TIMEOUT_MS 5000L
#define CLIENT_TIMEOUT_MS 60000L
#define CLIENT_RESPONSE_MAX (256L * 1024 * 1024)

/* The scheduler URL to use: flag_value (--server) if non-empty, else
 * $CAIRN_SERVER if non-empty, else CLIENT_DEFAULT_SERVER. The result is
 * borrowed (the argument, the environment or a constant). */
const char *client_server_url(const char *flag_value);

/* Total time limit per request in milliseconds (default CLIENT_TIMEOUT_MS);
 * 0 means no limit. The connect limit stays CLIENT_CONNECT_TIMEOUT_MS (or
 * the total limit, if smaller). Process-wide. */
void client_set_timeout_ms(long ms);

/* Send the header "name: value" with every request from now on (at most
 * four; for Idempotency-Key and the like). */
void client_add_header(const char *name, const char *value);

/* Send method server+path_and_query (path_and_query starts with '/'; a
 * trailing '/' of server is ignored) with body (NULL: none; otherwise sent as
 * application/json). On success *status is the HTTP status (any status,
 * including 4xx and 5xx, is a success here) and *resp_body a malloc'd,
 * NUL-terminated copy of the response body the caller frees (resp_body may
 * be NULL to discard it). Outputs are set only on success.
 * Returns 0, or:
 *   CAIRN_ENET     the scheduler cannot be reached or the connection broke
 *                  ("cannot reach the scheduler at URL (connection refused);
 *                  is cairn-scheduler running? (set --server or CAIRN_SERVER)")
 *                  (a connect timeout counts as unreachable)
 *   CAIRN_ETIMEOUT connected, but no complete answer within the time limit
 *   CAIRN_EINVAL   server is not a usable URL
 *   CAIRN_ERANGE   response larger than CLIENT_RESPONSE_MAX
 *   CAIRN_ENOMEM   libcurl could not be set up
 * with a message in err. */
int client_request(const char *server, const char *method, const char *path_and_query,
                   const char *body, long *status, char **resp_body, char *err, size_t errlen);

/* Call the JSON API: send body (borrowed; NULL for none) with method and
 * parse the answer. On success (2xx) *out (out may be NULL) is the parsed
 * response, owned by the caller (json_null() for an empty body). An error
 * response puts the server's message ({"error":{"message":...}}, else the
 * status line) in err and returns by status:
 *   400, 422 -> CAIRN_EINVAL     401, 403 -> CAIRN_EAUTH
 *   404      -> CAIRN_ENOENT     409      -> CAIRN_ESTATE
 *   413      -> CAIRN_ERANGE     503      -> CAIRN_ESTORE (writes refused)
 *   other    -> CAIRN_EPROTO
 * A 2xx answer that is not JSON gives CAIRN_EPROTO; transport errors are
 * those of client_request. *out is set only on success. */
int client_call_json(const char *server, const char *method, const char *path, json_t *body,
                     json_t **out, char *err, size_t errlen);

/* client_call_json with GET and no body. */
int client_get_json(const char *server, const char *path, json_t **out, char *err, size_t errlen);

/* client_call_json with POST; body is borrowed (NULL sends no body). */
int client_post_json(const char *server, const char *path, json_t *body, json_t **out, char *err,
                     size_t errlen);

/* Where a download gives up: less than 1 byte a second for this long. */
#define CLIENT_STALL_MS 60000L

/* GET server+path and hand the body of a 2xx answer to sink(ud, data, n) as
 * it arrives, in order, without keeping it (for artifact blobs of any
 * size). sink returns 0 to go on; anything else stops the transfer and is
 * returned as it is, with err left untouched (sink reports its own
 * problem). *bytes (bytes may be NULL) is the count handed to sink, set
 * also on failure. There is no total time limit: the transfer fails when
 * it stalls for CLIENT_STALL_MS. The body of an error answer is not handed
 * to sink: its message goes to err and the code is that of
 * client_call_json. A body cut short (the server closed the connection
 * before the Content-Length it announced) is CAIRN_ENET ("... broke").
 * Other errors as client_request. */
int client_download(const char *server, const char *path,
                    int (*sink)(void *ud, const void *data, size_t n), void *ud, int64_t *bytes,
                    char *err, size_t errlen);

/* Percent-encode s for use in a path segment or query value: everything but
 * A-Z a-z 0-9 - . _ ~ becomes %XX. Returns a malloc'd string the caller
 * frees (never NULL; aborts on out-of-memory). */
char *client_urlencode(const char *s);

/* Release libcurl's global state (optional, at exit; no client call may
 * follow). */
void client_cleanup(void);

#endif
