/* http.h - a small HTTP/1.1 server on a libuv loop (prefix: http_).
 *
 * Serves the scheduler's JSON API and web UI. Everything here runs on the
 * thread that runs the loop; no function may be called from another thread.
 *
 * Protocol: HTTP/1.0 and HTTP/1.1 requests with a body given by
 * Content-Length (at most HTTP_BODY_MAX bytes, else 413). A request head
 * (request line and headers) is at most HTTP_HEAD_MAX bytes (else 431).
 * Transfer-Encoding in a request is refused (chunked: 411, others: 501;
 * with a Content-Length too, or two differing Content-Lengths: 400, as a
 * request smuggling attempt).
 * "Expect: 100-continue" is answered with an interim 100 response.
 * Malformed requests get a 400 (505 for an unknown HTTP version) and the
 * connection is closed after the response. Connections are kept alive
 * (HTTP/1.1 default, HTTP/1.0 with "Connection: keep-alive"); pipelined
 * requests are handled one at a time, in order: the next request on a
 * connection reaches the handler only after the previous one was responded
 * to and its response written. A connection that is idle (or stalls while
 * sending a request or receiving a response) for longer than the idle timeout
 * is closed; a connection whose request is with the handler never times out.
 * Beyond HTTP_CONNS_MAX open connections, new ones are closed at once.
 *
 * Responses carry Content-Length, Content-Type, Cache-Control: no-store
 * (an ETag too where the handler asked: http_conn_etag),
 * X-Content-Type-Options: nosniff, Date and Connection. A HEAD request gets
 * the headers of the response the handler gives, without its body. After a
 * response that ends the connection, the server reads and discards what the
 * client still sends (up to 2 s) before closing, so the client sees it.
 *
 * Requests are read by the parser of httpparse.h; this module owns the
 * connections, timers, writes, keep-alive and pipelining around it.
 *
 * The process must not die of SIGPIPE when a peer resets a connection
 * mid-write: http_server_start sets SIGPIPE to SIG_IGN if its disposition is
 * still the default.
 */
#ifndef CAIRN_HTTP_H
#define CAIRN_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "httpparse.h"

#define HTTP_IDLE_TIMEOUT_MS 60000
#define HTTP_HEAD_TIMEOUT_MS 10000
#define HTTP_CONNS_PER_IP_MAX 128
/* A client that reads none of its response for this long is dropped. */
#define HTTP_WRITE_STALL_MS 15000
/* Response bytes held in memory for all clients together; past it, clients
 * that have stopped reading are dropped, the largest first. */
#define HTTP_OUT_BUDGET ((size_t)64 * 1024 * 1024)
#define HTTP_CONNS_MAX 1024

struct http_server;
struct http_conn;

/* struct http_req and struct http_header (and the limits HTTP_HEAD_MAX,
 * HTTP_BODY_MAX, HTTP_HEADERS_MAX) come from httpparse.h. A request the
 * server hands to a handler, and every string it points to, are owned by
 * the connection and stay valid until the handler responds on it (the
 * response call is the last use; afterwards they are gone, even for a
 * response given later, asynchronously). */

/* Called on the loop thread for each complete request. The handler owns c
 * from this call until it calls exactly one of http_respond,
 * http_respond_json or http_respond_error on it, either before returning or
 * later, on a later loop iteration (for example after a store commit).
 * Lifetime of c (the whole contract):
 *   - c stays valid (not freed) until that response call, whatever happens
 *     to the peer or the server in the meantime;
 *   - if the peer went away, or http_server_close ran, before the response
 *     call, the response call sends nothing and frees c;
 *   - c must not be used after the response call returns; calling a
 *     response function twice on one request is a bug.
 * A request that never gets a response leaks its connection. */
typedef void (*http_handler_fn)(void *ud, struct http_conn *c, const struct http_req *req);

/* Listen on host:port (host: IPv4 or IPv6 literal or a name; NULL or "" for
 * all addresses; port 0 picks an ephemeral port) and serve connections on
 * loop with handler(ud, ...). *out is set only on success; the server is
 * released by http_server_close.
 * Returns 0, CAIRN_EINVAL (bad host or port), CAIRN_ENET (cannot bind or
 * listen: address in use, permission; the reason is logged with id
 * CAIRN-HTTP-LISTEN). On failure nothing is left on the loop, except in the
 * unlikely case that libuv refuses the already listening socket: then a
 * closing handle is released by the next loop iteration. */
int http_server_start(struct http_server **out, uv_loop_t *loop, const char *host, int port,
                      http_handler_fn handler, void *ud);

/* The bound TCP port (useful after port 0). */
int http_server_port(const struct http_server *s);

/* Change the idle timeout for connections (default HTTP_IDLE_TIMEOUT_MS);
 * applies from each connection's next activity. ms must be > 0. */
void http_server_set_idle_timeout(struct http_server *s, uint64_t ms);

/* Change the head timeout (default HTTP_HEAD_TIMEOUT_MS): the most a
 * request head may take from its first byte to its blank line, however
 * steadily it trickles in; past it the client gets 408 and the connection
 * ends. ms must be > 0. */
void http_server_set_head_timeout(struct http_server *s, uint64_t ms);

/* Change the connection cap (default HTTP_CONNS_MAX): a connection beyond it
 * gets a 503 and is closed at once. n must be > 0. */
void http_server_set_max_conns(struct http_server *s, size_t n);

/* Connections one peer address may hold (default HTTP_CONNS_PER_IP_MAX; 0:
 * no limit); one beyond it gets a 503 and is closed at once. Loopback peers
 * are exempt unless loopback_too (a local reverse proxy carries everyone). */
void http_server_set_max_per_ip(struct http_server *s, size_t n, int loopback_too);

/* Response bytes held in memory for all clients together (default
 * HTTP_OUT_BUDGET); past it, clients that have read nothing of their answer
 * for a second are dropped, the largest first. n must be > 0. */
void http_server_set_response_memory(struct http_server *s, size_t n);

/* Called on the loop thread with every response as it is given: the
 * route its handler named (http_conn_set_route; NULL if none) and the
 * status sent. For counting requests (cairn_http_requests_total). */
typedef void (*http_observe_fn)(void *ud, const char *route, int status);
void http_server_set_observer(struct http_server *s, http_observe_fn fn, void *ud);

/* Name what serves c's current request (static storage, or at least as
 * long-lived as the server: a route table's pattern), for the observer. */
void http_conn_set_route(struct http_conn *c, const char *route);

/* Number of connections whose socket is open (not counting those closed but
 * still waiting for a handler's response). */
size_t http_server_conn_count(const struct http_server *s);

/* Stop listening and close every connection (responses being written are cut
 * short). Asynchronous: done(ud) (done may be NULL) runs on the loop once the
 * listener and every connection's handles are closed and the server is freed;
 * s must not be used after this call. Connections whose request is still with
 * a handler stay valid until the handler responds (see http_handler_fn); they
 * do not delay done. s may be NULL (done is then not called). */
void http_server_close(struct http_server *s, void (*done)(void *ud), void *ud);

/* Value of the first header called name (case-insensitive), or NULL. The
 * pointer is borrowed from req. */
const char *http_req_header(const struct http_req *req, const char *name);

/* Look up name in a raw query string: httpp_query_get (see httpparse.h),
 * here so that handlers need only this header. */
int http_query_get(const char *query, const char *name, char **out);

/* Respond with status (200..599; anything else is sent as 500), an optional
 * Content-Type (NULL: none) and len bytes of body (copied; body may be NULL
 * if len is 0; 204 and 304 are sent without a body). c is given back (see
 * http_handler_fn). No return value: a failure to send closes the
 * connection, which the handler cannot do anything about. */
void http_respond(struct http_conn *c, int status, const char *content_type, const void *body,
                  size_t len);

/* A response body read from a file as it is sent, for bodies too big to
 * copy (artifact blobs). */
struct http_file_body {
    int fd;          /* open for reading; the server owns it from the call on
                        and closes it when the response is over */
    uint64_t offset; /* where the body starts in the file */
    uint64_t len;    /* body length (the Content-Length sent) */
    /* Optional. Called on a thread of libuv's pool with each chunk read,
     * in order and one call at a time (never alongside done), before it is
     * sent, so it may be slow (hash) but must touch only its own ud; last
     * is nonzero for the chunk that completes len.
     * A nonzero return stops the response: that chunk is not sent and the
     * connection is closed, so the client sees a body shorter than its
     * Content-Length, never bytes the check refused. */
    int (*check)(void *ud, const void *data, size_t n, int last);
    /* Optional. Called exactly once, on the loop thread, when the response
     * is over: ok is nonzero if every byte was handed to the socket, 0 if
     * it was cut short (check refused, read error, file shorter than len,
     * peer gone, server closing). Also called (ok 0) when the response is
     * not sent at all because the connection had gone already. */
    void (*done)(void *ud, int ok);
    void *ud;
};

/* Respond with status, an optional Content-Type and the body fb describes
 * (fb itself is copied; fb->fd and fb->ud are handed over). The file is
 * read (and checked) in chunks on libuv's thread pool while the previous
 * chunk is written, so memory use (a few chunks) does not grow with its
 * size; a HEAD request gets the headers only. c is given back as for
 * http_respond. */
void http_respond_file(struct http_conn *c, int status, const char *content_type,
                       const struct http_file_body *fb);

/* Add one header line ("Name: value", no CR or LF) to the response the
 * handler is about to give on c (a later call replaces it). */
void http_conn_set_header(struct http_conn *c, const char *line);

/* Give the next response on c an ETag if it is a 200 given with
 * http_respond or http_respond_json: a hash of its body, so equal bodies
 * have equal tags. If if_none_match (the request's If-None-Match header,
 * NULL if none; copied) names that tag, the answer is a 304 with the ETag
 * and no body instead. For GET answers that clients poll. */
void http_conn_etag(struct http_conn *c, const char *if_none_match);

/* Respond with obj serialised as application/json (obj is stolen, even if
 * NULL; a NULL obj or one that cannot be serialised gives a 500). */
void http_respond_json(struct http_conn *c, int status, json_t *obj);

/* Respond with {"error":{"code":code,"message":<formatted>}} as
 * application/json. Invalid UTF-8 in the message is replaced by '?'. */
void http_respond_error(struct http_conn *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Standard reason phrase for status ("Not Found"), "Unknown" if none. */
const char *http_status_text(int status);
/* The stable error code (JSON "code") of an error the server itself
 * produces with that status, e.g. "request_timeout" for 408. */
const char *http_status_code(int status);
/* A copy of s with each byte of an invalid UTF-8 sequence replaced by '?'. */
char *http_utf8_clean(const char *s);

#endif
