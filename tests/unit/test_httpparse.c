/* Tests for httpparse.c: the HTTP request parser, without sockets.
 *
 * Each case of the tables is parsed twice: given whole, and fed one byte at
 * a time the way a slow client's bytes reach the server (the caller drops
 * what the parser took and appends what arrived). Both must give the same
 * request or the same refusal. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "httpparse.h"
#include "util.h"

/* What a parse ended with: the status (0 for a complete request) and, for a
 * request, its fields copied out. */
struct outcome {
    int status;
    char msg[160];
    size_t used; /* bytes taken in all */
    char method[64];
    char path[256];
    char query[256];
    int minor;
    size_t nheaders;
    char hname[64]; /* the last header */
    char hvalue[256];
    int keep_alive;
    int expect_continue;
    int is_head;
    size_t body_len;
    char body[256];
};

static void
copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "(null)");
}

static void
take(struct outcome *o, const struct httpp *p, int status)
{
    o->status = status;
    o->is_head = p->is_head;
    o->keep_alive = p->keep_alive;
    if (status != 0)
        return;
    const struct http_req *r = &p->req;
    copy_str(o->method, sizeof(o->method), r->method);
    copy_str(o->path, sizeof(o->path), r->path);
    copy_str(o->query, sizeof(o->query), r->query);
    o->minor = r->minor_version;
    o->nheaders = r->nheaders;
    if (r->nheaders) {
        copy_str(o->hname, sizeof(o->hname), r->headers[r->nheaders - 1].name);
        copy_str(o->hvalue, sizeof(o->hvalue), r->headers[r->nheaders - 1].value);
    }
    o->expect_continue = p->expect_continue;
    o->body_len = r->body_len;
    assert_non_null(r->body);
    assert_int_equal(r->body[r->body_len], '\0');
    copy_str(o->body, sizeof(o->body), r->body);
}

/* Parse one request from in (n bytes), step bytes at a time (0: all at
 * once). The status is HTTPP_MORE if the bytes end before the request. */
static void
parse(const char *in, size_t n, size_t step, struct outcome *o)
{
    struct httpp p;
    struct sb buf; /* what the server would have buffered */
    size_t fed = 0;
    int st = HTTPP_MORE;

    memset(o, 0, sizeof(*o));
    httpp_init(&p);
    sb_init(&buf);
    sb_append(&buf, "", 0);
    do {
        size_t k = step == 0 ? n - fed : (n - fed < step ? n - fed : step);
        sb_append(&buf, in + fed, k);
        fed += k;
        size_t used = (size_t)-1;
        if (!p.have_head) {
            st = httpp_head(&p, buf.buf, buf.len, &used, o->msg, sizeof(o->msg));
            assert_true(used <= buf.len);
            o->used += used;
            memmove(buf.buf, buf.buf + used, buf.len - used);
            buf.len -= used;
            if (st != 0 && st != HTTPP_MORE)
                break;
            if (st == HTTPP_MORE)
                continue;
        }
        used = (size_t)-1;
        st = httpp_body(&p, buf.buf, buf.len, &used);
        assert_true(used <= buf.len);
        if (st == HTTPP_MORE)
            assert_int_equal(used, 0);
        o->used += used;
        memmove(buf.buf, buf.buf + used, buf.len - used);
        buf.len -= used;
    } while (st == HTTPP_MORE && fed < n);
    take(o, &p, st);
    sb_free(&buf);
    httpp_free(&p);
}

/* Parse whole and byte by byte; both must agree. */
static void
parse_both(const char *in, size_t n, struct outcome *o)
{
    struct outcome slow;
    parse(in, n, 0, o);
    parse(in, n, 1, &slow);
    if (o->status != slow.status)
        fail_msg("'%.60s': whole gives %d (%s), byte by byte %d (%s)", in, o->status, o->msg,
                 slow.status, slow.msg);
    assert_string_equal(o->msg, slow.msg);
    assert_int_equal(o->used, slow.used);
    assert_string_equal(o->method, slow.method);
    assert_string_equal(o->path, slow.path);
    assert_string_equal(o->query, slow.query);
    assert_int_equal(o->nheaders, slow.nheaders);
    assert_int_equal(o->keep_alive, slow.keep_alive);
    assert_int_equal(o->body_len, slow.body_len);
    assert_string_equal(o->body, slow.body);
}

struct ok_case {
    const char *in;
    const char *method;
    const char *path;
    const char *query;
    int minor;
    size_t nheaders;
    const char *hname; /* the last header, NULL if none */
    const char *hvalue;
    int keep_alive;
    int expect_continue;
    int is_head;
    const char *body;
};

static const struct ok_case ok_cases[] = {
    {"GET / HTTP/1.1\r\n\r\n", "GET", "/", "", 1, 0, NULL, NULL, 1, 0, 0, ""},
    {"GET /a%20b/c?x=1&y=%20#frag HTTP/1.0\r\nHost: h\r\n\r\n", "GET", "/a b/c", "x=1&y=%20", 0, 1,
     "Host", "h", 0, 0, 0, ""},
    {"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "GET", "/x", "", 0, 1, "Connection",
     "keep-alive", 1, 0, 0, ""},
    {"GET /x HTTP/1.0\r\nConnection: Keep-Alive, close\r\n\r\n", "GET", "/x", "", 0, 1,
     "Connection", "Keep-Alive, close", 0, 0, 0, ""},
    {"GET /x HTTP/1.1\r\nconnection: foo, CLOSE \r\n\r\n", "GET", "/x", "", 1, 1, "connection",
     "foo, CLOSE", 0, 0, 0, ""},
    {"GET /x HTTP/1.1\r\nConnection: closed\r\n\r\n", "GET", "/x", "", 1, 1, "Connection", "closed",
     1, 0, 0, ""},
    /* bare LF line ends, a body */
    {"POST /p HTTP/1.1\nContent-Length: 3\n\nabc", "POST", "/p", "", 1, 1, "Content-Length", "3", 1,
     0, 0, "abc"},
    /* empty lines before the request line */
    {"\r\n\n\r\nGET /x HTTP/1.1\r\n\r\n", "GET", "/x", "", 1, 0, NULL, NULL, 1, 0, 0, ""},
    /* absolute-form targets */
    {"GET http://host:80/api/v1?q HTTP/1.1\r\n\r\n", "GET", "/api/v1", "q", 1, 0, NULL, NULL, 1, 0,
     0, ""},
    {"GET HTTPS://host HTTP/1.1\r\n\r\n", "GET", "/", "", 1, 0, NULL, NULL, 1, 0, 0, ""},
    {"GET http://host?a=b HTTP/1.1\r\n\r\n", "GET", "/", "a=b", 1, 0, NULL, NULL, 1, 0, 0, ""},
    {"OPTIONS * HTTP/1.1\r\n\r\n", "OPTIONS", "*", "", 1, 0, NULL, NULL, 1, 0, 0, ""},
    /* values lose their surrounding blanks, keep inner ones */
    {"GET / HTTP/1.1\r\nX-A:  a \t b \t\r\n\r\n", "GET", "/", "", 1, 1, "X-A", "a \t b", 1, 0, 0,
     ""},
    {"GET / HTTP/1.1\r\nX-Empty:\r\n\r\n", "GET", "/", "", 1, 1, "X-Empty", "", 1, 0, 0, ""},
    {"HEAD /h HTTP/1.1\r\n\r\n", "HEAD", "/h", "", 1, 0, NULL, NULL, 1, 0, 1, ""},
    /* methods are case-sensitive tokens, passed on as sent */
    {"get /x HTTP/1.1\r\n\r\n", "get", "/x", "", 1, 0, NULL, NULL, 1, 0, 0, ""},
    {"M-SEARCH! /x HTTP/1.1\r\n\r\n", "M-SEARCH!", "/x", "", 1, 0, NULL, NULL, 1, 0, 0, ""},
    {"POST /u HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nok", "POST", "/u", "", 1,
     2, "Content-Length", "2", 1, 1, 0, "ok"},
    /* HTTP/1.0 has no interim responses */
    {"POST /u HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok", "POST", "/u", "", 0,
     2, "Content-Length", "2", 0, 0, 0, "ok"},
    {"POST /u HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 02\r\n\r\nok", "POST", "/u", "", 1,
     2, "content-length", "02", 1, 0, 0, "ok"},
    {"POST /u HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "POST", "/u", "", 1, 1, "Content-Length", "0",
     1, 0, 0, ""},
    /* a '..' inside a segment name is fine; "%2F" decodes to '/' */
    {"GET /a..b/..c/%2Fx HTTP/1.1\r\n\r\n", "GET", "/a..b/..c//x", "", 1, 0, NULL, NULL, 1, 0, 0,
     ""},
    {"GET /caf%C3%A9 HTTP/1.1\r\n\r\n", "GET", "/caf\xc3\xa9", "", 1, 0, NULL, NULL, 1, 0, 0, ""},
};

static void
test_requests(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
        const struct ok_case *c = &ok_cases[i];
        struct outcome o;
        parse_both(c->in, strlen(c->in), &o);
        if (o.status != 0)
            fail_msg("case %zu '%s': status %d (%s)", i, c->in, o.status, o.msg);
        assert_int_equal(o.used, strlen(c->in));
        assert_string_equal(o.method, c->method);
        assert_string_equal(o.path, c->path);
        assert_string_equal(o.query, c->query);
        assert_int_equal(o.minor, c->minor);
        assert_int_equal(o.nheaders, c->nheaders);
        if (c->hname) {
            assert_string_equal(o.hname, c->hname);
            assert_string_equal(o.hvalue, c->hvalue);
        }
        if (o.keep_alive != c->keep_alive)
            fail_msg("case %zu '%s': keep_alive %d", i, c->in, o.keep_alive);
        assert_int_equal(o.expect_continue, c->expect_continue);
        assert_int_equal(o.is_head, c->is_head);
        assert_int_equal(o.body_len, strlen(c->body));
        assert_string_equal(o.body, c->body);
    }
}

struct bad_case {
    const char *in;
    int status;
    const char *msg; /* the whole message */
};

static const struct bad_case bad_cases[] = {
    {"GET /a%zz HTTP/1.1\r\n\r\n", 400, "invalid percent-encoding in path"},
    {"GET /a%4 HTTP/1.1\r\n\r\n", 400, "invalid percent-encoding in path"},
    {"GET /a%00b HTTP/1.1\r\n\r\n", 400, "invalid percent-encoding in path"},
    {"GET /x/../etc HTTP/1.1\r\n\r\n", 400, "'..' is not allowed in a path"},
    {"GET /x/%2e%2E/y HTTP/1.1\r\n\r\n", 400, "'..' is not allowed in a path"},
    {"GET /.. HTTP/1.1\r\n\r\n", 400, "'..' is not allowed in a path"},
    {"GET nopath HTTP/1.1\r\n\r\n", 400, "request target must start with '/'"},
    {"GET * HTTP/1.1\r\n\r\n", 400, "request target must start with '/'"},
    {"GET  HTTP/1.1\r\n\r\n", 400, "empty request target"},
    {"GET /a\x7f HTTP/1.1\r\n\r\n", 400, "invalid character in request target"},
    {"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", 400, "invalid character in request target"},
    {"GET /a\tb HTTP/1.1\r\n\r\n", 400, "invalid character in request target"},
    {"GET / HTTP/2.0\r\n\r\n", 505, "HTTP version 2.0 is not supported (use HTTP/1.1)"},
    {"GET / HTTP/0.9\r\n\r\n", 505, "HTTP version 0.9 is not supported (use HTTP/1.1)"},
    {"GET / HTTP/1.10\r\n\r\n", 400, "malformed request line"},
    {"GET / FTP/1.1\r\n\r\n", 400, "malformed request line"},
    {"GET / HTTP/1.1 \r\n\r\n", 400, "malformed request line"},
    {"GET /\r\n\r\n", 400, "malformed request line"},
    {" / HTTP/1.1\r\n\r\n", 400, "malformed request line"},
    {"ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG / HTTP/1.1\r\n\r\n", 400, "malformed request line"},
    {"G(T / HTTP/1.1\r\n\r\n", 400, "invalid character in method"},
    {"GET / HTTP/1.1\r\nNo colon here\r\n\r\n", 400, "malformed header line"},
    {"GET / HTTP/1.1\r\n: x\r\n\r\n", 400, "malformed header line"},
    {"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400, "invalid character in header name"},
    {"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400, "folded header lines are not supported"},
    {"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", 400, "stray CR in request head"},
    {"GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", 400, "invalid character in header value"},
    {"GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n", 400, "invalid character in header value"},
    {"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400, "invalid Content-Length"},
    {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "invalid Content-Length"},
    {"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400, "invalid Content-Length"},
    {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400,
     "conflicting Content-Length headers"},
    {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 411,
     "chunked request bodies are not supported; send Content-Length"},
    {"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n", 400,
     "both Content-Length and Transfer-Encoding: refused"},
    {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc", 400,
     "both Content-Length and Transfer-Encoding: refused"},
    {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501,
     "Transfer-Encoding is not supported"},
    {"POST / HTTP/1.1\r\nContent-Length: 8388609\r\n\r\nabc", 413,
     "request body larger than 8388608 bytes"},
    {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413,
     "request body larger than 8388608 bytes"},
    {"POST / HTTP/1.1\r\nExpect: magic\r\n\r\n", 417, "unsupported expectation"},
};

static void
test_refusals(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        struct outcome o;
        parse_both(c->in, strlen(c->in), &o);
        if (o.status != c->status)
            fail_msg("case %zu '%s': status %d (%s), want %d", i, c->in, o.status, o.msg,
                     c->status);
        assert_string_equal(o.msg, c->msg);
        assert_int_equal(o.keep_alive, 0);
    }

    /* a NUL byte in the head (not expressible in the table's strings) */
    static const char nul[] = "GET / HTTP/1.1\r\nA: b\0c\r\n\r\n";
    struct outcome o;
    parse_both(nul, sizeof(nul) - 1, &o);
    assert_int_equal(o.status, 400);
    assert_string_equal(o.msg, "NUL byte in request head");
    /* the refused head is taken whole */
    assert_int_equal(o.used, sizeof(nul) - 1);
}

/* A HEAD request refused for a later header still gets a bodiless answer. */
static void
test_head_refused(void **state)
{
    (void)state;
    struct outcome o;
    static const char in[] = "HEAD / HTTP/1.1\r\nBad Name: x\r\n\r\n";
    parse_both(in, sizeof(in) - 1, &o);
    assert_int_equal(o.status, 400);
    assert_int_equal(o.is_head, 1);
    static const char get[] = "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n";
    parse_both(get, sizeof(get) - 1, &o);
    assert_int_equal(o.is_head, 0);
}

/* "GET / HTTP/1.1\r\nX: aaa...\r\n\r\n" of exactly total bytes. */
static char *
head_of(size_t total)
{
    static const char pre[] = "GET / HTTP/1.1\r\nX: ";
    char *s = xmalloc(total + 1);
    size_t fill = total - (sizeof(pre) - 1) - 4;
    memcpy(s, pre, sizeof(pre) - 1);
    memset(s + sizeof(pre) - 1, 'a', fill);
    memcpy(s + total - 4, "\r\n\r\n", 4);
    s[total] = '\0';
    return s;
}

static void
test_head_limits(void **state)
{
    (void)state;
    struct outcome o;

    /* a head of exactly HTTP_HEAD_MAX bytes is accepted */
    char *s = head_of(HTTP_HEAD_MAX);
    parse_both(s, HTTP_HEAD_MAX, &o);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.used, HTTP_HEAD_MAX);
    assert_int_equal(strlen(o.hvalue), sizeof(o.hvalue) - 1); /* copied truncated */
    free(s);

    /* one byte more is refused once HTTP_HEAD_MAX bytes are there */
    s = head_of(HTTP_HEAD_MAX + 1);
    parse_both(s, HTTP_HEAD_MAX + 1, &o);
    assert_int_equal(o.status, 431);
    assert_string_equal(o.msg, "request head larger than 16384 bytes");
    assert_int_equal(o.used, 0);
    parse_both(s, HTTP_HEAD_MAX - 1, &o);
    assert_int_equal(o.status, HTTPP_MORE);
    free(s);

    /* empty lines before the request line do not count (they are taken) */
    size_t blanks = 1000;
    char *b = xmalloc(blanks + HTTP_HEAD_MAX + 1);
    memset(b, '\n', blanks);
    s = head_of(HTTP_HEAD_MAX);
    memcpy(b + blanks, s, HTTP_HEAD_MAX + 1);
    parse_both(b, blanks + HTTP_HEAD_MAX, &o);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.used, blanks + HTTP_HEAD_MAX);
    free(s);
    free(b);

    /* HTTP_HEADERS_MAX fields pass, one more is refused */
    struct sb sb;
    for (int extra = 0; extra <= 1; extra++) {
        sb_init(&sb);
        sb_puts(&sb, "GET / HTTP/1.1\r\n");
        for (int i = 0; i < HTTP_HEADERS_MAX + extra; i++)
            sb_printf(&sb, "H%d: v%d\r\n", i, i);
        sb_puts(&sb, "\r\n");
        parse_both(sb.buf, sb.len, &o);
        if (extra) {
            assert_int_equal(o.status, 431);
            assert_string_equal(o.msg, "more than 100 header fields");
        } else {
            assert_int_equal(o.status, 0);
            assert_int_equal(o.nheaders, HTTP_HEADERS_MAX);
            assert_string_equal(o.hname, "H99");
            assert_string_equal(o.hvalue, "v99");
        }
        sb_free(&sb);
    }
}

static void
test_incomplete(void **state)
{
    (void)state;
    static const char *partial[] = {
        "",
        "\r\n\r\n",
        "GET / HTTP/1.1",
        "GET / HTTP/1.1\r\n",
        "GET / HTTP/1.1\r\n\r",
        "GET / HTTP/1.1\r\nHost: x\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcd",
    };
    for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++) {
        struct outcome o;
        parse_both(partial[i], strlen(partial[i]), &o);
        if (o.status != HTTPP_MORE)
            fail_msg("'%s': status %d, want more", partial[i], o.status);
    }

    /* a body that is there in full: exactly content_length bytes taken */
    struct httpp p;
    char msg[160];
    size_t used = 0;
    static const char req[] = "POST /b HTTP/1.1\r\nContent-Length: 4\r\n\r\n";
    httpp_init(&p);
    assert_int_equal(httpp_head(&p, req, sizeof(req) - 1, &used, msg, sizeof(msg)), 0);
    assert_int_equal(used, sizeof(req) - 1);
    assert_int_equal(p.content_length, 4);
    assert_int_equal(httpp_body(&p, "abc", 3, &used), HTTPP_MORE);
    assert_int_equal(used, 0);
    assert_int_equal(httpp_body(&p, "abcdEFG", 7, &used), 0);
    assert_int_equal(used, 4);
    assert_int_equal(p.req.body_len, 4);
    assert_string_equal(p.req.body, "abcd");
    httpp_free(&p);
    httpp_free(NULL);
}

/* Several requests back to back in one buffer, as a pipelining client
 * sends them: each parse takes exactly its request. */
static void
test_pipelined(void **state)
{
    (void)state;
    static const char in[] = "POST /one HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                             "\r\n" /* a stray line end between requests */
                             "GET /two?x=y HTTP/1.1\r\n\r\n"
                             "GET /three HTTP/1.0\r\n\r\n";
    static const char *paths[] = {"/one", "/two", "/three"};
    struct httpp p;
    const char *at = in;
    size_t left = sizeof(in) - 1;
    char msg[160];

    httpp_init(&p);
    for (size_t i = 0; i < 3; i++) {
        size_t used = 0;
        assert_int_equal(httpp_head(&p, at, left, &used, msg, sizeof(msg)), 0);
        at += used;
        left -= used;
        assert_int_equal(httpp_body(&p, at, left, &used), 0);
        at += used;
        left -= used;
        assert_string_equal(p.req.path, paths[i]);
        /* the request's strings are the parser's copies, not the input */
        assert_true(p.req.path < in || p.req.path >= in + sizeof(in));
        if (i == 0)
            assert_string_equal(p.req.body, "abc");
        if (i == 1)
            assert_string_equal(p.req.query, "x=y");
        assert_int_equal(p.keep_alive, i < 2);
        httpp_reset(&p);
        assert_null(p.req.path);
        assert_int_equal(p.have_head, 0);
    }
    assert_int_equal(left, 0);
    httpp_free(&p);
}

static void
test_query_get(void **state)
{
    (void)state;
    char *v = NULL;
    assert_int_equal(httpp_query_get("a=1&a=2", "a", &v), 0);
    assert_string_equal(v, "1");
    free(v);
    assert_int_equal(httpp_query_get("x+y=a+b%21&z", "x y", &v), 0);
    assert_string_equal(v, "a b!");
    free(v);
    assert_int_equal(httpp_query_get("&&z&", "z", &v), 0);
    assert_string_equal(v, "");
    free(v);
    assert_int_equal(httpp_query_get("k=%zz%4", "k", &v), 0);
    assert_string_equal(v, "%zz%4");
    free(v);
    assert_int_equal(httpp_query_get("%6B=v", "k", &v), 0);
    assert_string_equal(v, "v");
    free(v);
    v = (char *)"untouched";
    assert_int_equal(httpp_query_get("k=a%00b", "k", &v), CAIRN_EINVAL);
    assert_int_equal(httpp_query_get("k=1", "K", &v), CAIRN_ENOENT);
    assert_int_equal(httpp_query_get(NULL, "k", &v), CAIRN_ENOENT);
    assert_string_equal(v, "untouched");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests),     cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_head_refused), cmocka_unit_test(test_head_limits),
        cmocka_unit_test(test_incomplete),   cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_query_get),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
