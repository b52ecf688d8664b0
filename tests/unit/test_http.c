/* test_http.c - the HTTP server (common/http.c) and the CLI's client
 * (cli/client.c), over real sockets on 127.0.0.1.
 *
 * Most tests run the server's loop on a thread of its own and talk to it
 * with blocking sockets or libcurl from the test thread. The tests about a
 * client that goes away while a response is pending drive the loop on the
 * test thread, so the order of events is exact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "http.h"
#include "testlib.h"
#include "util.h"

/* The client is part of the cairn executable, not of a library: build it
 * into this test. */
#include "../../cli/client.c"

/* ---- a server on its own loop thread ----------------------------------- */

struct tsrv {
    uv_loop_t loop;
    uv_async_t wake;
    struct http_server *srv;
    pthread_t thread;
    int port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* guarded by mu */
    int stop;
    int release;            /* respond to the held request */
    struct http_conn *held; /* a request the test answers later */
    int held_count;         /* requests held so far */
    int done;               /* http_server_close finished */
    int requests;           /* requests the handler saw */
    int files_ok;           /* file bodies sent whole */
    int files_cut;          /* file bodies cut short */
    int files_bad;          /* file bodies over with an inconsistent report */
};

static char *query_or(const struct http_req *req, const char *name, const char *dflt);

/* The byte at offset i of the files /file serves. */
static unsigned char
file_byte(uint64_t i)
{
    return (unsigned char)((i * 7) ^ (i >> 9));
}

struct tfile {
    struct tsrv *t;
    uint64_t seen;
    uint64_t cut; /* refuse the chunk that goes past this many bytes; 0 = never */
    int saw_last;
};

static int
tfile_check(void *ud, const void *data, size_t n, int last)
{
    struct tfile *f = ud;
    (void)data;
    if (f->cut && f->seen + n > f->cut)
        return -1;
    f->seen += n;
    f->saw_last |= last;
    return 0;
}

static void
tfile_done(void *ud, int ok)
{
    struct tfile *f = ud;
    pthread_mutex_lock(&f->t->mu);
    if (!ok)
        f->t->files_cut++;
    else if (f->seen > 0 && !f->saw_last)
        f->t->files_bad++; /* "sent whole" without the last chunk checked */
    else
        f->t->files_ok++;
    pthread_cond_broadcast(&f->t->cv);
    pthread_mutex_unlock(&f->t->mu);
    free(f);
}

/* /file?n=N&off=O&cut=C: N bytes of file_byte(O...) from a file that is
 * already unlinked. */
static void
serve_file(struct tsrv *t, struct http_conn *c, const struct http_req *req)
{
    char *ns = query_or(req, "n", "0"), *os = query_or(req, "off", "0"),
         *cs = query_or(req, "cut", "0");
    uint64_t n = strtoull(ns, NULL, 10), off = strtoull(os, NULL, 10);
    char path[] = "/tmp/test_http_file.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    unsigned char buf[8192];
    for (uint64_t i = 0; i < off + n;) {
        size_t k = 0;
        for (; k < sizeof(buf) && i < off + n; k++, i++)
            buf[k] = file_byte(i);
        assert_int_equal(write(fd, buf, k), (ssize_t)k);
    }
    struct tfile *f = xcalloc(1, sizeof(*f));
    f->t = t;
    f->cut = strtoull(cs, NULL, 10);
    struct http_file_body fb = {fd, off, n, tfile_check, tfile_done, f};
    http_respond_file(c, 200, "application/octet-stream", &fb);
    free(ns);
    free(os);
    free(cs);
}

struct later {
    uv_timer_t timer;
    struct http_conn *conn;
};

static void
later_close_cb(uv_handle_t *h)
{
    free(h->data);
}

static void
later_cb(uv_timer_t *t)
{
    struct later *l = t->data;
    http_respond(l->conn, 200, "text/plain", "later", 5);
    uv_close((uv_handle_t *)&l->timer, later_close_cb);
}

static char *
query_or(const struct http_req *req, const char *name, const char *dflt)
{
    char *v;
    if (http_query_get(req->query, name, &v) == 0)
        return v;
    return dflt ? xstrdup(dflt) : NULL;
}

static json_t *
json_str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static void
tsrv_handler(void *ud, struct http_conn *c, const struct http_req *req)
{
    struct tsrv *t = ud;
    pthread_mutex_lock(&t->mu);
    t->requests++;
    pthread_mutex_unlock(&t->mu);

    if (strncmp(req->path, "/echo", 5) == 0) {
        char *q = query_or(req, "q", NULL);
        json_t *o = json_object();
        json_object_set_new(o, "method", json_string(req->method));
        json_object_set_new(o, "path", json_string(req->path));
        json_object_set_new(o, "query", json_string(req->query));
        json_object_set_new(o, "body", json_stringn(req->body, req->body_len));
        json_object_set_new(o, "q", json_str_or_null(q));
        json_object_set_new(o, "x", json_str_or_null(http_req_header(req, "X-Test")));
        json_object_set_new(o, "version", json_integer(req->minor_version));
        free(q);
        http_respond_json(c, 200, o);
    } else if (strcmp(req->path, "/len") == 0) {
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "%zu", req->body_len);
        int ok = 1;
        for (size_t i = 0; i < req->body_len; i++)
            ok &= req->body[i] == (char)('a' + i % 26);
        http_respond(c, ok ? 200 : 500, "text/plain", buf, (size_t)n);
    } else if (strcmp(req->path, "/later") == 0) {
        char *ms = query_or(req, "ms", "20");
        struct later *l = xcalloc(1, sizeof(*l));
        l->conn = c;
        l->timer.data = l;
        uv_timer_init(&t->loop, &l->timer);
        uv_timer_start(&l->timer, later_cb, strtoull(ms, NULL, 10), 0);
        free(ms);
    } else if (strcmp(req->path, "/hold") == 0) {
        pthread_mutex_lock(&t->mu);
        t->held = c;
        t->held_count++;
        pthread_cond_broadcast(&t->cv);
        pthread_mutex_unlock(&t->mu);
    } else if (strcmp(req->path, "/error") == 0) {
        char *q = query_or(req, "q", "");
        http_respond_error(c, 404, "not_found", "no such dag: %s", q);
        free(q);
    } else if (strcmp(req->path, "/status") == 0) {
        char *code = query_or(req, "code", "500");
        http_respond_error(c, (int)strtol(code, NULL, 10), "some_code", "status %s", code);
        free(code);
    } else if (strcmp(req->path, "/big") == 0) {
        size_t n = (size_t)1024 * 1024;
        char *b = xmalloc(n);
        for (size_t i = 0; i < n; i++)
            b[i] = (char)('a' + i % 26);
        http_respond(c, 200, "text/plain", b, n);
        free(b);
    } else if (strcmp(req->path, "/file") == 0) {
        serve_file(t, c, req);
    } else if (strncmp(req->path, "/etag", 5) == 0) {
        /* /etag?q=BODY (status 200, or s=STATUS), /etagfile: with an ETag */
        char *q = query_or(req, "q", ""), *st = query_or(req, "s", "200");
        http_conn_etag(c, http_req_header(req, "If-None-Match"));
        if (!strcmp(req->path, "/etagfile"))
            serve_file(t, c, req);
        else
            http_respond(c, (int)strtol(st, NULL, 10), "text/plain", q, strlen(q));
        free(q);
        free(st);
    } else if (strcmp(req->path, "/text") == 0) {
        http_respond(c, 200, "text/plain", "not json", 8);
    } else if (strcmp(req->path, "/null") == 0) {
        http_respond_json(c, 200, NULL);
    } else if (strcmp(req->path, "/empty") == 0) {
        http_respond(c, 204, NULL, NULL, 0);
    } else if (strcmp(req->path, "/badutf8") == 0) {
        http_respond_error(c, 400, "bad", "bytes \xff\xfe end");
    } else {
        http_respond_error(c, 404, "not_found", "no route for %s %s", req->method, req->path);
    }
}

static void
tsrv_done_cb(void *ud)
{
    struct tsrv *t = ud;
    pthread_mutex_lock(&t->mu);
    t->done = 1;
    pthread_mutex_unlock(&t->mu);
}

static void
tsrv_wake_cb(uv_async_t *a)
{
    struct tsrv *t = a->data;
    pthread_mutex_lock(&t->mu);
    struct http_conn *respond = NULL;
    if (t->release && t->held) {
        respond = t->held;
        t->held = NULL;
        t->release = 0;
    }
    int stop = t->stop;
    pthread_mutex_unlock(&t->mu);
    if (respond)
        http_respond(respond, 200, "text/plain", "released", 8);
    if (stop) {
        http_server_close(t->srv, tsrv_done_cb, t);
        uv_close((uv_handle_t *)&t->wake, NULL);
    }
}

static void *
tsrv_main(void *arg)
{
    struct tsrv *t = arg;
    uv_run(&t->loop, UV_RUN_DEFAULT);
    return NULL;
}

static struct tsrv *
tsrv_start_opts(uint64_t idle_ms, uint64_t head_ms, size_t max_conns)
{
    struct tsrv *t = xcalloc(1, sizeof(*t));
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    assert_int_equal(uv_loop_init(&t->loop), 0);
    assert_int_equal(http_server_start(&t->srv, &t->loop, "127.0.0.1", 0, tsrv_handler, t), 0);
    if (idle_ms)
        http_server_set_idle_timeout(t->srv, idle_ms);
    if (head_ms)
        http_server_set_head_timeout(t->srv, head_ms);
    if (max_conns)
        http_server_set_max_conns(t->srv, max_conns);
    t->port = http_server_port(t->srv);
    assert_true(t->port > 0);
    assert_int_equal(uv_async_init(&t->loop, &t->wake, tsrv_wake_cb), 0);
    t->wake.data = t;
    assert_int_equal(pthread_create(&t->thread, NULL, tsrv_main, t), 0);
    return t;
}

static struct tsrv *
tsrv_start(uint64_t idle_ms)
{
    return tsrv_start_opts(idle_ms, 0, 0);
}

/* Wait until the handler has held n requests in total. */
static void
tsrv_wait_held(struct tsrv *t, int n)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&t->mu);
    while (t->held_count < n)
        if (pthread_cond_timedwait(&t->cv, &t->mu, &dl) != 0)
            break;
    int got = t->held_count;
    pthread_mutex_unlock(&t->mu);
    assert_int_equal(got, n);
}

static void
tsrv_release(struct tsrv *t)
{
    pthread_mutex_lock(&t->mu);
    t->release = 1;
    pthread_mutex_unlock(&t->mu);
    uv_async_send(&t->wake);
}

static void
tsrv_stop(struct tsrv *t)
{
    pthread_mutex_lock(&t->mu);
    t->stop = 1;
    pthread_mutex_unlock(&t->mu);
    uv_async_send(&t->wake);
    assert_int_equal(pthread_join(t->thread, NULL), 0);
    assert_int_equal(t->done, 1);
    assert_null(t->held);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
}

/* ---- a blocking test client --------------------------------------------- */

static int
tconnect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* Send all of p; returns 0, or -1 if the server closed the connection. */
static int
tsend(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static void
tsends(int fd, const char *s)
{
    assert_int_equal(tsend(fd, s, strlen(s)), 0);
}

struct trd {
    int fd;
    struct sb buf; /* received, not yet returned */
};

struct tresp {
    int status;
    char *head;
    char *body;
    size_t body_len;
};

static void
tresp_free(struct tresp *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* Receive more; returns the byte count, 0 at EOF, -1 on error or timeout. */
static ssize_t
trd_fill(struct trd *r)
{
    char tmp[65536];
    ssize_t n;
    do
        n = recv(r->fd, tmp, sizeof(tmp), 0);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        sb_append(&r->buf, tmp, (size_t)n);
    return n;
}

/* Read one response (for HEAD, head_only: ignore Content-Length). Returns 0,
 * or -1 if the connection ended or stalled first. */
static int
trd_response(struct trd *r, struct tresp *out, int head_only)
{
    char *e;
    memset(out, 0, sizeof(*out));
    while (!(e = r->buf.len ? memmem(r->buf.buf, r->buf.len, "\r\n\r\n", 4) : NULL))
        if (trd_fill(r) <= 0)
            return -1;
    size_t hlen = (size_t)(e - r->buf.buf) + 4;
    out->head = xstrndup(r->buf.buf, hlen);
    assert_memory_equal(out->head, "HTTP/1.1 ", 9);
    out->status = (int)strtol(out->head + 9, NULL, 10);
    size_t cl = 0;
    const char *h = strcasestr(out->head, "\r\ncontent-length:");
    if (h && !head_only)
        cl = strtoull(h + 17, NULL, 10);
    while (r->buf.len < hlen + cl)
        if (trd_fill(r) <= 0)
            return -1;
    out->body = xstrndup(r->buf.buf + hlen, cl);
    out->body_len = cl;
    memmove(r->buf.buf, r->buf.buf + hlen + cl, r->buf.len - hlen - cl);
    r->buf.len -= hlen + cl;
    return 0;
}

/* Does the server end the connection (EOF or reset) with nothing more? */
static int
trd_closed(struct trd *r)
{
    if (r->buf.len)
        return 0;
    for (;;) {
        ssize_t n = trd_fill(r);
        if (n == 0)
            return 1;
        if (n < 0)
            return errno == ECONNRESET;
        if (r->buf.len)
            return 0;
    }
}

static void
trd_init(struct trd *r, int fd)
{
    r->fd = fd;
    sb_init(&r->buf);
}

static void
trd_close(struct trd *r)
{
    close(r->fd);
    sb_free(&r->buf);
}

static int
has_header(const struct tresp *r, const char *line)
{
    return strcasestr(r->head, line) != NULL;
}

/* A one-shot exchange on a new connection: send req, read one response. */
static void
exchange(int port, const char *req, struct tresp *out)
{
    struct trd r;
    trd_init(&r, tconnect(port));
    tsends(r.fd, req);
    assert_int_equal(trd_response(&r, out, 0), 0);
    trd_close(&r);
}

static json_t *
body_json(const struct tresp *r)
{
    json_error_t je;
    json_t *j = json_loadb(r->body, r->body_len, 0, &je);
    if (!j)
        fail_msg("not JSON: %s (%.*s)", je.text, (int)r->body_len, r->body);
    return j;
}

static const char *
jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* The error code in {"error":{"code":...}}. */
static const char *
jerr_code(json_t *o)
{
    return json_string_value(json_object_get(json_object_get(o, "error"), "code"));
}

/* ---- server tests -------------------------------------------------------- */

static void
test_keep_alive_and_headers(void **state)
{
    (void)state;
    struct tsrv *t = tsrv_start(0);
    struct trd r;
    struct tresp resp;
    trd_init(&r, tconnect(t->port));

    tsends(r.fd, "GET /echo/a%20b%2Fc?q=hello+w%C3%B6rld&x=1 HTTP/1.1\r\n"
                 "Host: test\r\nx-TEST:   yes please  \r\n\r\n");
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 200);
    assert_true(has_header(&resp, "\r\nContent-Type: application/json\r\n"));
    assert_true(has_header(&resp, "\r\nCache-Control: no-store\r\n"));
    assert_true(has_header(&resp, "\r\nConnection: keep-alive\r\n"));
    assert_true(has_header(&resp, "\r\nDate: "));
    json_t *j = body_json(&resp);
    assert_string_equal(jstr(j, "method"), "GET");
    assert_string_equal(jstr(j, "path"), "/echo/a b/c");
    assert_string_equal(jstr(j, "query"), "q=hello+w%C3%B6rld&x=1");
    assert_string_equal(jstr(j, "q"), "hello w\xc3\xb6rld");
    assert_string_equal(jstr(j, "x"), "yes please");
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 1);
    json_decref(j);
    tresp_free(&resp);

    /* same connection: a POST with a body */
    tsends(r.fd, "POST /echo HTTP/1.1\r\nContent-Length: 11\r\n\r\n{\"a\":\"b c\"}");
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 200);
    j = body_json(&resp);
    assert_string_equal(jstr(j, "method"), "POST");
    assert_string_equal(jstr(j, "body"), "{\"a\":\"b c\"}");
    assert_string_equal(jstr(j, "query"), "");
    assert_true(json_is_null(json_object_get(j, "x")));
    json_decref(j);
    tresp_free(&resp);

    /* unknown route: an error in the one JSON shape */
    tsends(r.fd, "DELETE /nowhere HTTP/1.1\r\n\r\n");
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 404);
    assert_true(has_header(&resp, "HTTP/1.1 404 Not Found\r\n"));
    j = body_json(&resp);
    assert_string_equal(jerr_code(j), "not_found");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
                        "no route for DELETE /nowhere");
    json_decref(j);
    tresp_free(&resp);

    /* the client asks to close */
    tsends(r.fd, "GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 200);
    assert_true(has_header(&resp, "\r\nConnection: close\r\n"));
    tresp_free(&resp);
    assert_true(trd_closed(&r));
    trd_close(&r);
    tsrv_stop(t);
}

static void
test_http10(void **state)
{
    (void)state;
    struct tsrv *t = tsrv_start(0);
    struct trd r;
    struct tresp resp;

    trd_init(&r, tconnect(t->port));
    tsends(r.fd, "GET /echo HTTP/1.0\r\n\r\n");
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 200);
    assert_true(has_header(&resp, "\r\nConnection: close\r\n"));
    json_t *j = body_json(&resp);
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 0);
    json_decref(j);
    tresp_free(&resp);
    assert_true(trd_closed(&r));
    trd_close(&r);

    trd_init(&r, tconnect(t->port));
    tsends(r.fd, "GET /echo HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_true(has_header(&resp, "\r\nConnection: keep-alive\r\n"));
    tresp_free(&resp);
    tsends(r.fd, "GET /echo HTTP/1.0\r\n\r\n");
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 200);
    tresp_free(&resp);
    assert_true(trd_closed(&r));
    trd_close(&r);
    tsrv_stop(t);
}

static void
test_pipelined(void **state)
{
    (void)state;
    struct tsrv *t = tsrv_start(0);
    struct trd r;
    struct tresp resp;
    trd_init(&r, tconnect(t->port));

    /* two requests in one write; then a slow (asynchronous) one followed by
     * a fast one: responses come in request order */
    tsends(r.fd, "GET /echo?q=one HTTP/1.1\r\n\r\n"
                 "POST /echo?q=two HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                 "GET /later?ms=80 HTTP/1.1\r\n\r\n"
                 "GET /echo?q=four HTTP/1.1\r\n\r\n");
    const char *want[] = {"one", "two"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(trd_response(&r, &resp, 0), 0);
        assert_int_equal(resp.status, 200);
        json_t *j = body_json(&resp);
        assert_string_equal(jstr(j, "q"), want[i]);
        if (i == 1)
            assert_string_equal(jstr(j, "body"), "abc");
        json_decref(j);
        tresp_free(&resp);
    }
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "later");
    tresp_free(&resp);
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    json_t *j = body_json(&resp);
    assert_string_equal(jstr(j, "q"), "four");
    json_decref(j);
    tresp_free(&resp);

    /* the next request arrives while the previous one is with the handler */
    tsends(r.fd, "GET /later?ms=150 HTTP/1.1\r\n\r\n");
    usleep(40 * 1000);
    tsends(r.fd, "GET /echo?q=five HTTP/1.1\r\n\r\n");
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_string_equal(resp.body, "later");
    tresp_free(&resp);
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    j = body_json(&resp);
    assert_string_equal(jstr(j, "q"), "five");
    json_decref(j);
    tresp_free(&resp);
    trd_close(&r);
    tsrv_stop(t);
}

struct sender {
    int fd;
    const char *data;
    size_t len;
    int rc;
};

static void *
sender_main(void *arg)
{
    struct sender *snd = arg;
    snd->rc = tsend(snd->fd, snd->data, snd->len);
    return NULL;
}

static void
test_pipeline_flood(void **state)
{
    (void)state;
    /* Far more pipelined requests than the server buffers while one is with
     * the handler: reading pauses and resumes, and every response comes, in
     * order. A thread sends while this one reads, as a real client would. */
    struct tsrv *t = tsrv_start(0);
    enum { N = 3000 };
    struct sb all;
    sb_init(&all);
    sb_puts(&all, "GET /later?ms=100 HTTP/1.1\r\n\r\n");
    for (int i = 0; i < N; i++)
        sb_printf(&all, "GET /echo?q=%d HTTP/1.1\r\nX-Pad: %040d\r\n\r\n", i, i);
    assert_true(all.len > 3 * 64 * 1024);

    struct trd r;
    struct tresp resp;
    trd_init(&r, tconnect(t->port));
    struct sender snd = {r.fd, all.buf, all.len, -1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, sender_main, &snd), 0);
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_string_equal(resp.body, "later");
    tresp_free(&resp);
    for (int i = 0; i < N; i++) {
        assert_int_equal(trd_response(&r, &resp, 0), 0);
        json_t *j = body_json(&resp);
        char want[16];
        snprintf(want, sizeof(want), "%d", i);
        assert_string_equal(jstr(j, "q"), want);
        json_decref(j);
        tresp_free(&resp);
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(snd.rc, 0);
    trd_close(&r);
    sb_free(&all);
    tsrv_stop(t);
}

static void
test_tiny_writes(void **state)
{
    (void)state;
    struct tsrv *t = tsrv_start(0);
    struct trd r;
    struct tresp resp;
    trd_init(&r, tconnect(t->port));
    const char *req = "\r\nPOST /echo?q=split HTTP/1.1\r\nHost: x\r\nX-Test: t\r\n"
                      "Content-Length: 26\r\n\r\nabcdefghijklmnopqrstuvwxyz";
    for (const char *p = req; *p; p++) {
        assert_int_equal(tsend(r.fd, p, 1), 0);
        if ((p - req) % 16 == 0)
            usleep(1000); /* let some bytes arrive on their own */
    }
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 200);
    json_t *j = body_json(&resp);
    assert_string_equal(jstr(j, "q"), "split");
    assert_string_equal(jstr(j, "x"), "t");
    assert_string_equal(jstr(j, "body"), "abcdefghijklmnopqrstuvwxyz");
    json_decref(j);
    tresp_free(&resp);
    trd_close(&r);
    tsrv_stop(t);
}

/* Send req, expect status with the given error code, then the close. */
static void
expect_refusal(int port, const char *req, int status, const char *code)
{
    struct trd r;
    struct tresp resp;
    trd_init(&r, tconnect(port));
    tsend(r.fd, req, strlen(req)); /* the server may stop reading early */
    /* Give the server time to answer and close before reading: a close
     * that resets the connection would destroy the unread answer. */
    usleep(20 * 1000);
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    if (resp.status != status)
        fail_msg("%s: got %d, want %d", req, resp.status, status);
    assert_true(has_header(&resp, "\r\nConnection: close\r\n"));
    json_t *j = body_json(&resp);
    assert_string_equal(jerr_code(j), code);
    json_decref(j);
    tresp_free(&resp);
    assert_true(trd_closed(&r));
    trd_close(&r);
}

static void
test_refusals(void **state)
{
    (void)state;
    struct tsrv *t = tsrv_start(0);
    expect_refusal(t->port, "GET /a%zz HTTP/1.1\r\n\r\n", 400, "bad_request");
    expect_refusal(t->port, "GET /a%00b HTTP/1.1\r\n\r\n", 400, "bad_request");
    expect_refusal(t->port, "GET /x/../etc/passwd HTTP/1.1\r\n\r\n", 400, "bad_request");
    expect_refusal(t->port, "GET /x/%2e%2E/y HTTP/1.1\r\n\r\n", 400, "bad_request");
    expect_refusal(t->port, "GET nopath HTTP/1.1\r\n\r\n", 400, "bad_request");
    expect_refusal(t->port, "GET / HTTP/2.0\r\n\r\n", 505, "http_version_not_supported");
    expect_refusal(t->port, "GET / FTP/1.1\r\n\r\n", 400, "bad_request");
    expect_refusal(t->port, "GET /\r\n\r\n", 400, "bad_request");
    expect_refusal(t->port, "G(T / HTTP/1.1\r\n\r\n", 400, "bad_request");
    expect_refusal(t->port, "GET / HTTP/1.1\r\nNo colon here\r\n\r\n", 400, "bad_request");
    expect_refusal(t->port, "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400, "bad_request");
    expect_refusal(t->port, "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400, "bad_request");
    expect_refusal(t->port, "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", 400, "bad_request");
    expect_refusal(t->port, "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400, "bad_request");
    expect_refusal(t->port, "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                   400, "bad_request");
    expect_refusal(t->port,
                   "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                   411, "length_required");
    expect_refusal(t->port, "POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501,
                   "not_implemented");
    expect_refusal(t->port, "POST /echo HTTP/1.1\r\nContent-Length: 8388609\r\n\r\nabc", 413,
                   "body_too_large");
    expect_refusal(t->port,
                   "POST /echo HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413,
                   "body_too_large");
    expect_refusal(t->port, "POST /echo HTTP/1.1\r\nExpect: magic\r\n\r\n", 417,
                   "expectation_failed");

    /* A refused upload: the client, like curl, keeps sending the body after
     * the answer; the server reads and discards it before closing, so the
     * upload ends normally and the answer can still be read. */
    {
        struct trd r;
        struct tresp resp;
        trd_init(&r, tconnect(t->port));
        tsends(r.fd, "POST /echo HTTP/1.1\r\nContent-Length: 9000000\r\n\r\n");
        usleep(50 * 1000);
        size_t n = (size_t)2 * 1024 * 1024;
        char *junk = xcalloc(1, n);
        assert_int_equal(tsend(r.fd, junk, n), 0);
        free(junk);
        shutdown(r.fd, SHUT_WR);
        assert_int_equal(trd_response(&r, &resp, 0), 0);
        assert_int_equal(resp.status, 413);
        tresp_free(&resp);
        assert_true(trd_closed(&r));
        trd_close(&r);
    }

    /* too many header fields */
    struct sb sb;
    sb_init(&sb);
    sb_puts(&sb, "GET /echo HTTP/1.1\r\n");
    for (int i = 0; i <= HTTP_HEADERS_MAX; i++)
        sb_printf(&sb, "H%d: v\r\n", i);
    sb_puts(&sb, "\r\n");
    expect_refusal(t->port, sb.buf, 431, "head_too_large");
    sb_free(&sb);

    /* a 100 KiB header line */
    sb_init(&sb);
    sb_puts(&sb, "GET /echo HTTP/1.1\r\nX-Long: ");
    for (int i = 0; i < 100 * 1024; i++)
        sb_putc(&sb, (char)('a' + i % 26));
    sb_puts(&sb, "\r\n\r\n");
    expect_refusal(t->port, sb.buf, 431, "head_too_large");
    sb_free(&sb);

    /* the server still works */
    struct tresp resp;
    exchange(t->port, "GET /echo HTTP/1.1\r\n\r\n", &resp);
    assert_int_equal(resp.status, 200);
    tresp_free(&resp);
    tsrv_stop(t);
}

static void
test_body_limits_and_continue(void **state)
{
    (void)state;
    struct tsrv *t = tsrv_start(0);
    struct trd r;
    struct tresp resp;

    /* exactly the largest body */
    size_t n = HTTP_BODY_MAX;
    char *body = xmalloc(n);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)('a' + i % 26);
    trd_init(&r, tconnect(t->port));
    char *head = xasprintf("POST /len HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", n);
    tsends(r.fd, head);
    free(head);
    assert_int_equal(tsend(r.fd, body, n), 0);
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 200);
    char want[32];
    snprintf(want, sizeof(want), "%zu", n);
    assert_string_equal(resp.body, want);
    tresp_free(&resp);

    /* Expect: 100-continue on the same connection */
    tsends(r.fd, "POST /len HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n");
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 100);
    tresp_free(&resp);
    tsends(r.fd, "abcde");
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "5");
    tresp_free(&resp);

    /* HEAD: the headers of the response without its body; then the
     * connection is still in step */
    tsends(r.fd, "HEAD /big HTTP/1.1\r\n\r\nGET /echo?q=after HTTP/1.1\r\n\r\n");
    assert_int_equal(trd_response(&r, &resp, 1), 0);
    assert_int_equal(resp.status, 200);
    assert_true(has_header(&resp, "\r\nContent-Length: 1048576\r\n"));
    tresp_free(&resp);
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    json_t *j = body_json(&resp);
    assert_string_equal(jstr(j, "q"), "after");
    json_decref(j);
    tresp_free(&resp);

    /* 204: no body, no Content-Length; a NULL json object: 500 */
    tsends(r.fd, "GET /empty HTTP/1.1\r\n\r\nGET /null HTTP/1.1\r\n\r\n");
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 204);
    assert_false(has_header(&resp, "Content-Length"));
    tresp_free(&resp);
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 500);
    tresp_free(&resp);

    /* invalid UTF-8 in an error message still gives valid JSON */
    tsends(r.fd, "GET /badutf8 HTTP/1.1\r\n\r\n");
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 400);
    j = body_json(&resp);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
                        "bytes ?? end");
    json_decref(j);
    tresp_free(&resp);

    trd_close(&r);
    free(body);
    tsrv_stop(t);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t
rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

/* Send data, half-close, and require the server to end the connection. */
static void
garbage_round(int port, const char *data, size_t n)
{
    struct trd r;
    trd_init(&r, tconnect(port));
    tsend(r.fd, data, n);
    shutdown(r.fd, SHUT_WR);
    for (;;) {
        ssize_t got = trd_fill(&r);
        if (got == 0 || (got < 0 && errno == ECONNRESET))
            break;
        if (got < 0)
            fail_msg("server neither answered nor closed (errno %d)", errno);
    }
    if (r.buf.len)
        assert_memory_equal(r.buf.buf, "HTTP/1.1 ", 9);
    trd_close(&r);
}

static void
test_garbage(void **state)
{
    (void)state;
    struct tsrv *t = tsrv_start(0);

    /* binary garbage with a head terminator: 400 and close */
    char junk[4096];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (char)rng();
    memcpy(junk + sizeof(junk) - 4, "\r\n\r\n", 4);
    junk[0] = '\x01';
    struct trd r;
    struct tresp resp;
    trd_init(&r, tconnect(t->port));
    assert_int_equal(tsend(r.fd, junk, sizeof(junk)), 0);
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_true(resp.status == 400 || resp.status == 431);
    tresp_free(&resp);
    assert_true(trd_closed(&r));
    trd_close(&r);

    /* random streams, and valid requests with random damage */
    static const char valid[] = "POST /echo?q=x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                                "Connection: keep-alive\r\n\r\nhelloGET /echo HTTP/1.0\r\n\r\n";
    char buf[8192];
    for (int round = 0; round < 300; round++) {
        size_t n;
        if (round % 2 == 0) {
            n = rng() % sizeof(buf);
            for (size_t i = 0; i < n; i++)
                buf[i] = (char)rng();
            if (n > 4 && rng() % 2)
                memcpy(buf + n - 4, "\r\n\r\n", 4);
        } else {
            n = sizeof(valid) - 1;
            memcpy(buf, valid, n);
            for (uint32_t k = 1 + rng() % 4; k > 0; k--)
                buf[rng() % n] = (char)rng();
        }
        garbage_round(t->port, buf, n);
    }

    /* after all that, the server still answers */
    exchange(t->port, "GET /echo?q=alive HTTP/1.1\r\n\r\n", &resp);
    assert_int_equal(resp.status, 200);
    json_t *j = body_json(&resp);
    assert_string_equal(jstr(j, "q"), "alive");
    json_decref(j);
    tresp_free(&resp);
    tsrv_stop(t);
}

static void
test_idle_timeout(void **state)
{
    (void)state;
    struct tsrv *t = tsrv_start(150);
    struct trd r;
    int64_t t0 = clock_mono_ms();

    /* a connection that never sends anything */
    trd_init(&r, tconnect(t->port));
    assert_true(trd_closed(&r));
    trd_close(&r);

    /* half a request that stalls: 408, then closed */
    struct tresp resp;
    trd_init(&r, tconnect(t->port));
    tsends(r.fd, "GET /echo HTTP/1.1\r\nHost:");
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 408);
    tresp_free(&resp);
    assert_true(trd_closed(&r));
    trd_close(&r);

    /* idle after a response on a kept-alive connection */
    trd_init(&r, tconnect(t->port));
    tsends(r.fd, "GET /echo HTTP/1.1\r\n\r\n");
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    tresp_free(&resp);
    assert_true(trd_closed(&r));
    trd_close(&r);
    assert_true(clock_mono_ms() - t0 < 4000); /* closed by the timer, not SO_RCVTIMEO */

    /* a request with the handler does not time out */
    trd_init(&r, tconnect(t->port));
    tsends(r.fd, "GET /later?ms=400 HTTP/1.1\r\n\r\n");
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_string_equal(resp.body, "later");
    tresp_free(&resp);
    trd_close(&r);
    tsrv_stop(t);
}

/* Slowloris: a head that trickles in a byte at a time, each well within
 * the idle timeout, still gets 408 once the head timeout is over. */
static void
test_head_timeout(void **state)
{
    (void)state;
    struct tsrv *t = tsrv_start_opts(400, 300, 0);
    struct trd r;
    struct tresp resp;
    int64_t t0 = clock_mono_ms();
    trd_init(&r, tconnect(t->port));
    tsends(r.fd, "GET /echo HTTP/1.1\r\n");
    for (int i = 0; i < 12; i++) {
        usleep(50 * 1000);
        if (tsend(r.fd, "X", 1) != 0)
            break; /* (the server may have answered and shut down already) */
    }
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 408);
    int64_t took = clock_mono_ms() - t0;
    assert_true(took >= 280 && took < 1500);
    tresp_free(&resp);
    assert_true(trd_closed(&r));
    trd_close(&r);

    /* a body that trickles in: the same, after its allowance */
    trd_init(&r, tconnect(t->port));
    tsends(r.fd, "POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\n");
    for (int i = 0; i < 14; i++) {
        usleep(50 * 1000);
        if (tsend(r.fd, "y", 1) != 0)
            break;
    }
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 408);
    tresp_free(&resp);
    trd_close(&r);

    /* a request that arrives in time is served as always */
    trd_init(&r, tconnect(t->port));
    tsends(r.fd, "GET /echo HTTP/1.1\r\n");
    usleep(100 * 1000);
    tsends(r.fd, "Host: x\r\n\r\n");
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 200);
    tresp_free(&resp);
    trd_close(&r);
    tsrv_stop(t);
}

/* Beyond the connection cap a new connection gets 503 and is closed; once
 * others went, new ones are served again. */
static void
test_conn_cap(void **state)
{
    (void)state;
    struct tsrv *t = tsrv_start_opts(0, 0, 3);
    int fds[3];
    struct tresp resp;
    struct trd r;
    for (int i = 0; i < 3; i++)
        fds[i] = tconnect(t->port);
    for (int i = 0; i < 100 && http_server_conn_count(t->srv) < 3; i++)
        usleep(10 * 1000);
    trd_init(&r, tconnect(t->port));
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 503);
    assert_non_null(strstr(resp.body, "too many connections"));
    tresp_free(&resp);
    assert_true(trd_closed(&r));
    trd_close(&r);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    for (int i = 0; i < 100 && http_server_conn_count(t->srv) > 0; i++)
        usleep(10 * 1000);
    trd_init(&r, tconnect(t->port));
    tsends(r.fd, "GET /echo HTTP/1.1\r\n\r\n");
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 200);
    tresp_free(&resp);
    trd_close(&r);
    tsrv_stop(t);
}

/* ---- responses to clients that went away (loop on this thread) ----------- */

struct hold {
    struct http_conn *conn;
    int nreq;
    int done;
};

static void
hold_handler(void *ud, struct http_conn *c, const struct http_req *req)
{
    struct hold *h = ud;
    (void)req;
    h->conn = c;
    h->nreq++;
}

static void
hold_done_cb(void *ud)
{
    struct hold *h = ud;
    h->done = 1;
}

/* How long tl_run_until waits for a condition of these tests. */
#define WAIT_MS 5000

struct waitctx {
    struct hold *h;
    struct http_server *s;
    int nreq;
};

static int
cond_request(void *arg)
{
    struct waitctx *w = arg;
    return w->h->nreq >= w->nreq;
}

static int
cond_no_conns(void *arg)
{
    struct waitctx *w = arg;
    return http_server_conn_count(w->s) == 0;
}

static int
cond_done(void *arg)
{
    struct waitctx *w = arg;
    return w->h->done;
}

static void
test_disconnect_while_pending(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct hold h = {0};
    struct http_server *s = NULL;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(http_server_start(&s, &loop, "127.0.0.1", 0, hold_handler, &h), 0);
    int port = http_server_port(s);
    struct waitctx w = {&h, s, 1};

    /* 1. the client resets the connection; the response comes after the
     * connection is completely gone */
    int fd = tconnect(port);
    tsends(fd, "GET /a HTTP/1.1\r\n\r\n");
    assert_int_equal(tl_run_until(&loop, cond_request, &w, WAIT_MS), 0);
    assert_int_equal(http_server_conn_count(s), 1);
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
    assert_int_equal(tl_run_until(&loop, cond_no_conns, &w, WAIT_MS), 0);
    tl_spin(&loop, 5); /* close callbacks have run */
    http_respond(h.conn, 200, "text/plain", "late", 4);

    /* 2. the same, responding while the handles are still closing */
    w.nreq = 2;
    fd = tconnect(port);
    tsends(fd, "POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz");
    assert_int_equal(tl_run_until(&loop, cond_request, &w, WAIT_MS), 0);
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
    assert_int_equal(tl_run_until(&loop, cond_no_conns, &w, WAIT_MS), 0);
    http_respond_error(h.conn, 500, "late", "too late for %s", "you");

    /* 3. the client only shuts down its sending side: it gets the response,
     * then the server closes */
    w.nreq = 3;
    struct trd r;
    trd_init(&r, tconnect(port));
    tsends(r.fd, "GET /c HTTP/1.1\r\n\r\n");
    assert_int_equal(tl_run_until(&loop, cond_request, &w, WAIT_MS), 0);
    shutdown(r.fd, SHUT_WR);
    tl_spin(&loop, 10);
    http_respond_json(h.conn, 200, json_pack("{s:i}", "n", 3));
    assert_int_equal(tl_run_until(&loop, cond_no_conns, &w, WAIT_MS), 0);
    struct tresp resp;
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "{\"n\":3}");
    assert_true(has_header(&resp, "\r\nConnection: close\r\n"));
    tresp_free(&resp);
    assert_true(trd_closed(&r));
    trd_close(&r);

    /* 4. the server closes while a request is with the handler and another
     * connection is idle: done comes first, the response later */
    w.nreq = 4;
    fd = tconnect(port);
    int idle = tconnect(port);
    tsends(fd, "GET /d HTTP/1.1\r\n\r\n");
    assert_int_equal(tl_run_until(&loop, cond_request, &w, WAIT_MS), 0);
    tl_spin(&loop, 5); /* the idle connection is accepted too */
    assert_int_equal(http_server_conn_count(s), 2);
    http_server_close(s, hold_done_cb, &h);
    w.s = NULL;
    assert_int_equal(tl_run_until(&loop, cond_done, &w, WAIT_MS), 0);
    http_respond(h.conn, 200, NULL, NULL, 0);
    close(fd);
    close(idle);

    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void
test_start_errors(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct http_server *s = NULL, *s2 = NULL;
    struct hold h = {0};
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(http_server_start(&s, &loop, "127.0.0.1", 70000, hold_handler, &h),
                     CAIRN_EINVAL);
    assert_int_equal(http_server_start(&s, &loop, "no such host.invalid", 0, hold_handler, &h),
                     CAIRN_EINVAL);
    assert_null(s);
    assert_int_equal(http_server_start(&s, &loop, "127.0.0.1", 0, hold_handler, &h), 0);
    /* the port is taken */
    assert_int_equal(
        http_server_start(&s2, &loop, "127.0.0.1", http_server_port(s), hold_handler, &h),
        CAIRN_ENET);
    assert_null(s2);
    http_server_close(NULL, hold_done_cb, &h); /* no-op */
    http_server_close(s, NULL, NULL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void
test_query_get(void **state)
{
    (void)state;
    const char *q = "a=1&b=x%20y+z&c&&d=%zz%4&k%20x=sp&e=%00&a=2&f=%C3%A9";
    char *v = NULL;
    assert_int_equal(http_query_get(q, "a", &v), 0);
    assert_string_equal(v, "1");
    free(v);
    assert_int_equal(http_query_get(q, "b", &v), 0);
    assert_string_equal(v, "x y z");
    free(v);
    assert_int_equal(http_query_get(q, "c", &v), 0);
    assert_string_equal(v, "");
    free(v);
    assert_int_equal(http_query_get(q, "d", &v), 0);
    assert_string_equal(v, "%zz%4");
    free(v);
    assert_int_equal(http_query_get(q, "k x", &v), 0);
    assert_string_equal(v, "sp");
    free(v);
    assert_int_equal(http_query_get(q, "f", &v), 0);
    assert_string_equal(v, "\xc3\xa9");
    free(v);
    v = NULL;
    assert_int_equal(http_query_get(q, "e", &v), CAIRN_EINVAL);
    assert_int_equal(http_query_get(q, "zz", &v), CAIRN_ENOENT);
    assert_int_equal(http_query_get("", "a", &v), CAIRN_ENOENT);
    assert_int_equal(http_query_get(q, "", &v), CAIRN_ENOENT);
    assert_null(v);
    assert_string_equal(http_status_text(404), "Not Found");
    assert_string_equal(http_status_text(299), "Unknown");
}

/* ---- the client ------------------------------------------------------------ */

static void
test_client_url_and_encode(void **state)
{
    (void)state;
    unsetenv("CAIRN_SERVER");
    assert_string_equal(client_server_url(NULL), "http://127.0.0.1:7780");
    assert_string_equal(client_server_url(""), "http://127.0.0.1:7780");
    setenv("CAIRN_SERVER", "http://sched:1", 1);
    assert_string_equal(client_server_url(NULL), "http://sched:1");
    assert_string_equal(client_server_url("http://flag:2"), "http://flag:2");
    unsetenv("CAIRN_SERVER");

    char *e = client_urlencode("a b/c?d=\xc3\xa9~_.-Z9&+%");
    assert_string_equal(e, "a%20b%2Fc%3Fd%3D%C3%A9~_.-Z9%26%2B%25");
    free(e);
    e = client_urlencode("");
    assert_string_equal(e, "");
    free(e);
}

static void
test_client_against_server(void **state)
{
    (void)state;
    struct tsrv *t = tsrv_start(0);
    char server[64], err[256];
    snprintf(server, sizeof(server), "http://127.0.0.1:%d/", t->port);

    /* GET with an encoded query */
    char *q = client_urlencode("hello wörld & more");
    char *path = xasprintf("/echo?q=%s", q);
    json_t *out = NULL;
    assert_int_equal(client_get_json(server, path, &out, err, sizeof(err)), 0);
    assert_string_equal(jstr(out, "q"), "hello wörld & more");
    assert_string_equal(jstr(out, "method"), "GET");
    json_decref(out);
    free(path);
    free(q);

    /* POST a JSON body */
    json_t *body = json_pack("{s:i}", "x", 1);
    assert_int_equal(client_post_json(server, "/echo", body, &out, err, sizeof(err)), 0);
    assert_string_equal(jstr(out, "method"), "POST");
    assert_string_equal(jstr(out, "body"), "{\"x\":1}");
    json_decref(out);
    json_decref(body);

    /* POST without a body, other methods, discarded output */
    assert_int_equal(client_post_json(server, "echo", NULL, NULL, err, sizeof(err)), 0);
    assert_int_equal(client_call_json(server, "PUT", "/echo", NULL, &out, err, sizeof(err)), 0);
    assert_string_equal(jstr(out, "method"), "PUT");
    json_decref(out);

    /* server errors: the server's message and a code by status */
    out = NULL;
    assert_int_equal(client_get_json(server, "/error?q=nightly", &out, err, sizeof(err)),
                     CAIRN_ENOENT);
    assert_string_equal(err, "no such dag: nightly");
    assert_null(out);
    assert_int_equal(client_get_json(server, "/status?code=409", &out, err, sizeof(err)),
                     CAIRN_ESTATE);
    assert_string_equal(err, "status 409");
    assert_int_equal(client_get_json(server, "/status?code=400", &out, err, sizeof(err)),
                     CAIRN_EINVAL);
    /* 503: the scheduler refuses writes for now (its store is full); worth a retry */
    assert_int_equal(client_get_json(server, "/status?code=503", &out, err, sizeof(err)),
                     CAIRN_ESTORE);
    assert_int_equal(client_get_json(server, "/status?code=500", &out, err, sizeof(err)),
                     CAIRN_EPROTO);
    assert_int_equal(client_get_json(server, "/text", &out, err, sizeof(err)), CAIRN_EPROTO);
    assert_non_null(strstr(err, "not JSON"));
    assert_int_equal(client_get_json(server, "/empty", &out, err, sizeof(err)), 0);
    assert_true(json_is_null(out));
    json_decref(out);

    /* client_request: any status is a success; the body is returned */
    long status = 0;
    char *resp = NULL;
    assert_int_equal(client_request(server, "GET", "/big", NULL, &status, &resp, err, sizeof(err)),
                     0);
    assert_int_equal(status, 200);
    assert_int_equal(strlen(resp), 1024 * 1024);
    assert_memory_equal(resp, "abcdefghijklmnopqrstuvwxyzabc", 29);
    free(resp);
    assert_int_equal(
        client_request(server, "GET", "/missing", NULL, &status, &resp, err, sizeof(err)), 0);
    assert_int_equal(status, 404);
    json_t *j = json_loads(resp, 0, NULL);
    assert_string_equal(jerr_code(j), "not_found");
    json_decref(j);
    free(resp);

    /* a time limit: the request is held, the client gives up; the late
     * response goes to a closed connection */
    client_set_timeout_ms(300);
    int64_t t0 = clock_mono_ms();
    assert_int_equal(client_get_json(server, "/hold", &out, err, sizeof(err)), CAIRN_ETIMEOUT);
    assert_true(clock_mono_ms() - t0 < 3000);
    assert_non_null(strstr(err, "did not answer within 300 ms"));
    client_set_timeout_ms(CLIENT_TIMEOUT_MS);
    tsrv_wait_held(t, 1);
    tsrv_release(t);
    tsrv_stop(t);
}

/* Wait until the server reports ok + cut file bodies over. */
static void
tsrv_wait_files(struct tsrv *t, int ok, int cut)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&t->mu);
    while (t->files_ok < ok || t->files_cut < cut)
        if (pthread_cond_timedwait(&t->cv, &t->mu, &dl) != 0)
            break;
    int gok = t->files_ok, gcut = t->files_cut;
    pthread_mutex_unlock(&t->mu);
    assert_int_equal(gok, ok);
    assert_int_equal(gcut, cut);
}

/* The ETag of resp ("\"...\""), or "" if none (static storage). */
static const char *
etag_of(const struct tresp *resp)
{
    static char tag[64];
    const char *h = strcasestr(resp->head, "\r\nETag: ");
    tag[0] = '\0';
    if (h)
        sscanf(h + 8, "%63[^\r]", tag);
    return tag;
}

static void
test_etag(void **state)
{
    (void)state;
    struct tsrv *t = tsrv_start(0);
    struct trd r;
    struct tresp resp;
    char req[256], tag[64];
    trd_init(&r, tconnect(t->port));

    tsends(r.fd, "GET /etag?q=hello HTTP/1.1\r\n\r\n");
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "hello");
    snprintf(tag, sizeof(tag), "%s", etag_of(&resp));
    assert_true(strlen(tag) == 18 && tag[0] == '"' && tag[17] == '"');
    tresp_free(&resp);

    /* the same body again: the same tag; asked with it, 304 and no body */
    const char *pre[] = {"", "\"other\", ", "W/", "*"};
    for (size_t i = 0; i < sizeof(pre) / sizeof(pre[0]); i++) {
        char v[128];
        snprintf(v, sizeof(v), "%s%s", pre[i], strcmp(pre[i], "*") ? tag : "");
        snprintf(req, sizeof(req), "GET /etag?q=hello HTTP/1.1\r\nIf-None-Match: %s\r\n\r\n", v);
        tsends(r.fd, req);
        assert_int_equal(trd_response(&r, &resp, 0), 0);
        assert_int_equal(resp.status, 304);
        assert_int_equal(resp.body_len, 0);
        assert_false(has_header(&resp, "Content-Length:"));
        assert_string_equal(etag_of(&resp), tag);
        tresp_free(&resp);
    }
    /* another body: 200 with another tag; a tag that only starts like it
     * does not match */
    snprintf(req, sizeof(req), "GET /etag?q=world HTTP/1.1\r\nIf-None-Match: %s\r\n\r\n", tag);
    tsends(r.fd, req);
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "world");
    assert_string_not_equal(etag_of(&resp), tag);
    tresp_free(&resp);
    snprintf(req, sizeof(req), "GET /etag?q=hello HTTP/1.1\r\nIf-None-Match: %.17sx\"\r\n\r\n",
             tag);
    tsends(r.fd, req);
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 200);
    tresp_free(&resp);
    /* HEAD: the same 304 */
    snprintf(req, sizeof(req), "HEAD /etag?q=hello HTTP/1.1\r\nIf-None-Match: %s\r\n\r\n", tag);
    tsends(r.fd, req);
    assert_int_equal(trd_response(&r, &resp, 1), 0);
    assert_int_equal(resp.status, 304);
    tresp_free(&resp);
    /* not a 200: no tag, never a 304 */
    snprintf(req, sizeof(req), "GET /etag?q=hello&s=404 HTTP/1.1\r\nIf-None-Match: *\r\n\r\n");
    tsends(r.fd, req);
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 404);
    assert_string_equal(etag_of(&resp), "");
    tresp_free(&resp);
    /* a file body gets none, and the next request on the connection, which
     * asked for none, gets none either */
    tsends(r.fd, "GET /etagfile?n=10 HTTP/1.1\r\nIf-None-Match: *\r\n\r\n"
                 "GET /echo?q=x HTTP/1.1\r\n\r\n");
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.body_len, 10);
    assert_string_equal(etag_of(&resp), "");
    tresp_free(&resp);
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(etag_of(&resp), "");
    tresp_free(&resp);
    trd_close(&r);
    tsrv_wait_files(t, 1, 0);
    tsrv_stop(t);
}

struct tsink {
    uint64_t off;        /* offset of the next byte expected */
    int bad;             /* a byte differed */
    uint64_t stop_after; /* the sink fails once past this; 0 = never */
};

static int
tsink_cb(void *ud, const void *data, size_t n)
{
    struct tsink *k = ud;
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        k->bad |= p[i] != file_byte(k->off + i);
    k->off += n;
    if (k->stop_after && k->off > k->stop_after)
        return CAIRN_EIO;
    return 0;
}

/* File bodies: streamed whole whatever their size, from an offset, cut
 * short when the check refuses (the client sees a broken transfer, not
 * wrong bytes), HEAD without a body, keep-alive after them, a client that
 * goes away in the middle, error answers through client_download. */
static void
test_file_body(void **state)
{
    (void)state;
    struct tsrv *t = tsrv_start(0);
    char server[64], err[256] = "";
    snprintf(server, sizeof(server), "http://127.0.0.1:%d", t->port);

    uint64_t n = (uint64_t)5 * 1024 * 1024 + 3;
    char *path = xasprintf("/file?n=%" PRIu64, n);
    struct tsink k = {0};
    int64_t got = -1;
    assert_int_equal(client_download(server, path, tsink_cb, &k, &got, err, sizeof(err)), 0);
    assert_int_equal(got, (int64_t)n);
    assert_int_equal(k.off, n);
    assert_int_equal(k.bad, 0);
    tsrv_wait_files(t, 1, 0);
    free(path);

    /* from an offset; an empty body */
    memset(&k, 0, sizeof(k));
    k.off = 1000;
    assert_int_equal(
        client_download(server, "/file?n=70000&off=1000", tsink_cb, &k, &got, err, sizeof(err)), 0);
    assert_int_equal(got, 70000);
    assert_int_equal(k.bad, 0);
    tsrv_wait_files(t, 2, 0);
    memset(&k, 0, sizeof(k));
    assert_int_equal(client_download(server, "/file?n=0", tsink_cb, &k, &got, err, sizeof(err)), 0);
    assert_int_equal(got, 0);
    tsrv_wait_files(t, 3, 0);

    /* the check refuses a chunk past 600000 bytes: the transfer breaks */
    memset(&k, 0, sizeof(k));
    assert_int_equal(
        client_download(server, "/file?n=1000000&cut=600000", tsink_cb, &k, &got, err, sizeof(err)),
        CAIRN_ENET);
    assert_non_null(strstr(err, "broke"));
    assert_true(got < 600000);
    assert_int_equal(k.bad, 0);
    tsrv_wait_files(t, 3, 1);

    /* refused many chunks in (past the buffers read ahead, which are then
     * reused): the bytes before are right, none past the refusal arrive */
    memset(&k, 0, sizeof(k));
    assert_int_equal(client_download(server, "/file?n=12582912&cut=9961472", tsink_cb, &k, &got,
                                     err, sizeof(err)),
                     CAIRN_ENET);
    assert_true(got < 9961472);
    assert_int_equal(k.bad, 0);
    tsrv_wait_files(t, 3, 2);

    /* the sink stops the transfer: its code comes back (a body far larger
     * than the socket buffers, so the server cannot have sent it all) */
    memset(&k, 0, sizeof(k));
    k.stop_after = 100000;
    err[0] = '\0';
    assert_int_equal(
        client_download(server, "/file?n=50000000", tsink_cb, &k, &got, err, sizeof(err)),
        CAIRN_EIO);
    assert_string_equal(err, "");
    tsrv_wait_files(t, 3, 3);

    /* an error answer: the server's message, nothing to the sink */
    memset(&k, 0, sizeof(k));
    assert_int_equal(client_download(server, "/error?q=x", tsink_cb, &k, &got, err, sizeof(err)),
                     CAIRN_ENOENT);
    assert_string_equal(err, "no such dag: x");
    assert_int_equal(k.off, 0);

    /* HEAD: the length, no body; the connection goes on */
    struct trd r;
    struct tresp resp;
    trd_init(&r, tconnect(t->port));
    tsends(r.fd, "HEAD /file?n=123456 HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /file?n=300000 HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(trd_response(&r, &resp, 1), 0);
    assert_int_equal(resp.status, 200);
    assert_true(has_header(&resp, "\r\nContent-Length: 123456\r\n"));
    assert_true(has_header(&resp, "\r\nContent-Type: application/octet-stream\r\n"));
    tresp_free(&resp);
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    assert_int_equal(resp.body_len, 300000);
    for (size_t i = 0; i < resp.body_len; i++)
        if ((unsigned char)resp.body[i] != file_byte(i))
            fail_msg("byte %zu differs", i);
    tresp_free(&resp);
    assert_int_equal(trd_response(&r, &resp, 0), 0);
    json_t *j = body_json(&resp);
    assert_string_equal(jstr(j, "path"), "/echo");
    json_decref(j);
    tresp_free(&resp);
    trd_close(&r);
    tsrv_wait_files(t, 5, 3);

    /* a client that reads a little of a big body and goes away */
    trd_init(&r, tconnect(t->port));
    tsends(r.fd, "GET /file?n=50000000 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_true(trd_fill(&r) > 0);
    trd_close(&r);
    tsrv_wait_files(t, 5, 4);
    assert_int_equal(t->files_bad, 0);
    tsrv_stop(t);
}

static void *
release_later(void *arg)
{
    struct tsrv *t = arg;
    tsrv_wait_held(t, 1);
    usleep(50 * 1000);
    tsrv_release(t);
    return NULL;
}

static void
test_client_async_response(void **state)
{
    (void)state;
    struct tsrv *t = tsrv_start(0);
    char server[64], err[256];
    snprintf(server, sizeof(server), "http://127.0.0.1:%d", t->port);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, release_later, t), 0);
    long status = 0;
    char *resp = NULL;
    assert_int_equal(
        client_request(server, "POST", "/hold", "{}", &status, &resp, err, sizeof(err)), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(status, 200);
    assert_string_equal(resp, "released");
    free(resp);
    tsrv_stop(t);
}

static void
test_client_unreachable(void **state)
{
    (void)state;
    /* a port nobody listens on */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    char server[64], err[512], want[512];
    snprintf(server, sizeof(server), "http://127.0.0.1:%d", ntohs(sa.sin_port));

    json_t *out = NULL;
    long status = -1;
    char *resp = NULL;
    assert_int_equal(client_get_json(server, "/api/dags", &out, err, sizeof(err)), CAIRN_ENET);
    snprintf(want, sizeof(want),
             "cannot reach the scheduler at %s (connection refused); is cairn-scheduler "
             "running? (set --server or CAIRN_SERVER)",
             server);
    assert_string_equal(err, want);
    assert_null(out);
    assert_int_equal(client_request(server, "GET", "/", NULL, &status, &resp, err, sizeof(err)),
                     CAIRN_ENET);
    assert_int_equal(status, -1);
    assert_null(resp);

    assert_int_equal(client_get_json("ftp://127.0.0.1:1", "/", &out, err, sizeof(err)),
                     CAIRN_EINVAL);
    assert_non_null(strstr(err, "invalid scheduler address"));
    /* no error buffer at all is fine */
    assert_int_equal(client_get_json(server, "/", &out, NULL, 0), CAIRN_ENET);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_get),
        cmocka_unit_test(test_start_errors),
        cmocka_unit_test(test_keep_alive_and_headers),
        cmocka_unit_test(test_http10),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_pipeline_flood),
        cmocka_unit_test(test_tiny_writes),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_body_limits_and_continue),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_head_timeout),
        cmocka_unit_test(test_conn_cap),
        cmocka_unit_test(test_disconnect_while_pending),
        cmocka_unit_test(test_client_url_and_encode),
        cmocka_unit_test(test_client_against_server),
        cmocka_unit_test(test_client_async_response),
        cmocka_unit_test(test_file_body),
        cmocka_unit_test(test_etag),
        cmocka_unit_test(test_client_unreachable),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    client_cleanup();
    return rc;
}
