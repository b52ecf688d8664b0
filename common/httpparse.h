/* httpparse.h - the HTTP/1.x request parser (prefix: httpp_).
 *
 * Pure: bytes in, a parsed request out. No I/O, no libuv, no globals; the
 * server (http.c) owns the sockets, buffers, timers and keep-alive, and calls
 * this parser on the bytes it has buffered. So the parser can be tested and
 * fuzzed on its own (tests/unit/test_httpparse.c, tests/fuzz/fuzz_http.c).
 *
 * What it accepts (http.h repeats it for the server's users): HTTP/1.0 and
 * HTTP/1.1 request lines; a head (request line and headers) of at most
 * HTTP_HEAD_MAX bytes (else 431) with at most HTTP_HEADERS_MAX header fields
 * (else 431); a body given by Content-Length of at most HTTP_BODY_MAX bytes
 * (else 413). Transfer-Encoding is refused (chunked: 411, others: 501; with
 * a Content-Length as well: 400), two differing Content-Lengths are 400, an
 * Expect other than 100-continue is 417, an unknown HTTP version is 505 and
 * anything else malformed is 400. Lines may end in CRLF or a bare LF; empty
 * lines before a request line are skipped.
 *
 * The struct http_req and struct http_header that handlers see through
 * http.h are defined here, where requests are made.
 */
#ifndef CAIRN_HTTPPARSE_H
#define CAIRN_HTTPPARSE_H

#include <stddef.h>

#define HTTP_HEAD_MAX ((size_t)16 * 1024)
#define HTTP_BODY_MAX ((size_t)8 * 1024 * 1024)
#define HTTP_HEADERS_MAX 100

/* Returned by httpp_head and httpp_body when the request is not complete in
 * the bytes given yet. HTTP statuses (>= 400) are errors. */
#define HTTPP_MORE 1

struct http_header {
    const char *name;  /* as sent (compare case-insensitively) */
    const char *value; /* leading and trailing blanks removed */
};

/* One request. Every string points into memory the struct httpp that
 * parsed it owns (valid until httpp_reset or httpp_free on it). All strings
 * are NUL-terminated. */
struct http_req {
    const char *method; /* "GET", "POST", ... exactly as sent (case-sensitive) */
    const char *path;   /* percent-decoded; starts with '/' ("*" for OPTIONS *);
                           never contains a NUL byte or a ".." segment */
    const char *query;  /* raw text after '?', not decoded; "" if none */
    const char *body;   /* body_len bytes, followed by a NUL; "" if no body */
    size_t body_len;
    int minor_version; /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
    const struct http_header *headers;
    size_t nheaders;
};

/* The state of one request being parsed. Callers read the fields marked
 * "result" and leave the rest alone. Zero-initialised (or httpp_init) it is
 * ready for a first request. */
struct httpp {
    /* results, valid once httpp_head returned 0 */
    struct http_req req;   /* body and body_len are set by httpp_body */
    size_t content_length; /* body bytes httpp_body waits for */
    int keep_alive;        /* the client allows another request after this one */
    int expect_continue;   /* HTTP/1.1 "Expect: 100-continue" */
    /* result, valid once the request line was parsed, even if a header is
     * refused afterwards: the answer to a HEAD request has no body */
    int is_head;
    int have_head; /* httpp_head has finished (returned 0 or a status) */

    /* internal */
    size_t scan; /* where the search for the end of the head resumes */
    char *head;  /* copy of the head, parsed in place */
    char *body;  /* NULL if empty */
    struct http_header *hdrs;
    size_t nhdrs;
    size_t hdrs_cap;
};

void httpp_init(struct httpp *p);

/* Forget the request (its strings are gone) and get ready for the next one
 * on the same connection. Keeps the header array for reuse. */
void httpp_reset(struct httpp *p);

/* Release everything p holds (p itself is the caller's). p may be NULL. */
void httpp_free(struct httpp *p);

/* Look for a request head at the start of buf (len bytes: everything the
 * caller has buffered and not yet dropped; on a later call, the same bytes
 * minus those dropped, plus what arrived since).
 *
 * *used is set on every return: the bytes at the front of buf this call has
 * taken, which the caller drops before its next call (empty lines before
 * the request line, and the head once it is complete, even a refused one).
 *
 * Returns 0 when the head is parsed (p's results are set), HTTPP_MORE when
 * the head is not complete yet, or an HTTP status (400, 411, 413, 417, 431,
 * 501, 505) with a message in msg (msglen > 0) when the request must be
 * refused. After 0 or a status, call httpp_reset before parsing the next
 * request. The search resumes where it stopped, so feeding a head one byte
 * at a time costs linear time. */
int httpp_head(struct httpp *p, const char *buf, size_t len, size_t *used, char *msg,
               size_t msglen);

/* After httpp_head returned 0: take the body from the start of buf. Returns
 * 0 when content_length bytes are there (req.body and req.body_len are set;
 * *used is content_length) or HTTPP_MORE (*used is 0). */
int httpp_body(struct httpp *p, const char *buf, size_t len, size_t *used);

/* Look up name in a raw query string ("a=1&b=x%20y"; '+' means space, a key
 * without '=' has the value ""). Keys are compared after decoding; the first
 * match wins. On success *out is a malloc'd, decoded, NUL-terminated copy the
 * caller frees. Returns 0, CAIRN_ENOENT (no such key; *out untouched) or
 * CAIRN_EINVAL (the value decodes to a NUL byte; *out untouched). Invalid
 * percent escapes are kept literally. */
int httpp_query_get(const char *query, const char *name, char **out);

/* The entity tag of a body: a quoted hash of its bytes ("\"0123456789abcdef\"",
 * NUL-terminated), equal for equal bodies. */
#define HTTPP_ETAG_LEN 19
void httpp_etag(const void *body, size_t len, char out[HTTPP_ETAG_LEN]);

/* Whether an If-None-Match value (a list) names tag: "*", tag, or W/tag. */
int httpp_etag_matches(const char *if_none_match, const char *tag);

#endif
