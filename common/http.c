/* http.c - a small HTTP/1.1 server on a libuv loop (see http.h).
 *
 * Connection life cycle. A connection owns two handles (tcp, timer) and the
 * state of the request parser (c->pp, httpparse.h). It reads into c->in and
 * hands what is buffered to the parser, dropping from c->in what the parser
 * took; once a whole request (head and body) is parsed, the parser holds its
 * own copy of it and the request goes to the handler: c->busy is set until
 * the handler responds. The response is
 * written (c->writing); when the write completes, the next buffered request
 * is processed, or the connection is closed. Bytes that arrive while a
 * request is with the handler are buffered (at most HTTP_PIPELINE_MAX, then
 * reading pauses).
 *
 * Closing. http__conn_close unlinks the connection from its server and
 * closes both handles; the server stays alive until every handle it counted
 * has closed. The connection memory is freed when its handles are closed AND
 * no request is with the handler (c->busy == 0); whichever of the last close
 * callback and the response call comes second frees it. So a handler may
 * respond at any time and the call is always safe.
 *
 * A file body (http_respond_file) is sent after the head, one chunk at a
 * time, with up to HTTP_FILE_BUFS chunks in use: a job on libuv's thread
 * pool reads the next chunk (pread, so a slow disk or a network filesystem
 * does not stall the loop) and hands it to the check callback (hashing is
 * the costly part) while earlier chunks are written. Chunks are read and
 * checked in order, one job at a time, and written in order, one write at
 * a time; chunk k reuses the buffer of chunk k - HTTP_FILE_BUFS once that
 * was written, so a response of any size holds HTTP_FILE_BUFS chunks of
 * memory. While a job is in flight (c->file_reading) the connection is not
 * freed, even if it closed; the job's callback frees it.
 *
 * A response that ends the connection ("Connection: close") is followed by a
 * lingering close: shut down our side, then read and discard what the client
 * still sends for up to HTTP_LINGER_MS, so the client sees the response (an
 * immediate close with unread input would send a reset that can destroy it).
 */
#include "http.h"
#include "http_conn.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "httpparse.h"
#include "log.h"
#include "util.h"

static void http__process(struct http_conn *c);

/* ---- status texts and small helpers ------------------------------------ */

/* ---- connection bookkeeping --------------------------------------------- */

static void
http__req_reset(struct http_conn *c)
{
    httpp_reset(&c->pp);
    c->etag_on = 0; /* (whatever answered the request: a file, an error) */
    free(c->etag_inm);
    c->etag_inm = NULL;
    free(c->etag_hdr);
    c->etag_hdr = NULL;
}

/* The file body is over (sent, or abandoned when ok is 0): close the file
 * and tell the handler's callback. */
static void
http__file_end(struct http_conn *c, int ok)
{
    if (!c->file_active)
        return;
    c->file_active = 0;
    close(c->file_fd);
    c->file_fd = -1;
    for (int i = 0; i < HTTP_FILE_BUFS; i++) {
        free(c->file_buf[i]);
        c->file_buf[i] = NULL;
    }
    if (c->file_done)
        c->file_done(c->file_ud, ok);
}

static void
http__conn_free(struct http_conn *c)
{
    http__file_end(c, 0);
    httpp_free(&c->pp);
    free(c->in);
    free(c->out);
    free(c->extra_hdr);
    free(c->etag_inm);
    free(c->etag_hdr);
    free(c);
}

/* Free c if nothing refers to it any more. */
static void
http__conn_maybe_free(struct http_conn *c)
{
    if (c->closing && c->handles == 0 && !c->busy && !c->file_reading)
        http__conn_free(c);
}

void
http__server_maybe_done(struct http_server *s)
{
    if (!s->closing || s->nclosing > 0 || s->conns)
        return;
    void (*done)(void *) = s->done;
    void *ud = s->done_ud;
    free(s);
    if (done)
        done(ud);
}

static void
http__conn_close_cb(uv_handle_t *h)
{
    struct http_conn *c = h->data;
    struct http_server *s = c->srv;
    c->handles--;
    s->nclosing--;
    if (c->handles == 0) {
        c->srv = NULL;
        http__conn_maybe_free(c);
    }
    http__server_maybe_done(s);
}

void
http__conn_close(struct http_conn *c)
{
    if (c->closing)
        return;
    struct http_server *s = c->srv;
    c->closing = 1;
    c->reading = 0;
    s->out_bytes -= c->out_acct; /* the buffer itself goes when its write ends */
    c->out_acct = 0;
    c->deferred = 0;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    s->nconns--;
    s->nclosing += 2;
    uv_close((uv_handle_t *)&c->tcp, http__conn_close_cb);
    uv_close((uv_handle_t *)&c->timer, http__conn_close_cb);
}

static void http__fail(struct http_conn *c, int status, const char *msg);
static void http__read_stop(struct http_conn *c);
static void http__shed(struct http_conn *keep);

/* The peer's address as "IP:PORT" into buf. */
const char *
http__peer(struct http_conn *c, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    int sl = (int)sizeof(ss);
    char ip[64] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    snprintf(buf, len, "%s:%d", ip, port);
    return buf;
}

static void
http__timer_cb(uv_timer_t *t)
{
    struct http_conn *c = t->data;
    if (c->deferred) { /* waiting for response memory: look again */
        c->deferred = 0;
        http__process(c);
        return;
    }
    /* A request that started but did not finish in time (or stalled): 408.
     * An idle connection between requests is just closed. */
    if (!c->busy && !c->writing && !c->lingering && (c->pp.have_head || c->in_len > 0) &&
        !c->timed_out) {
        char peer[80], msg[160];
        int total = c->head_deadline && uv_now(c->srv->loop) >= c->head_deadline;
        c->timed_out = 1;
        if (total)
            snprintf(msg, sizeof(msg), "the request %s did not arrive in time",
                     c->pp.have_head ? "body" : "head");
        else
            snprintf(msg, sizeof(msg), "the request stalled for %" PRIu64 " ms", c->srv->idle_ms);
        LOG(LOG_WARN, "CAIRN-HTTP-TIMEOUT", "408 to %s: %s (%zu bytes received)",
            http__peer(c, peer, sizeof(peer)), msg, c->in_len);
        http__read_stop(c);
        c->in_len = 0;
        http__fail(c, 408, msg);
        return;
    }
    if (c->writing && c->out && c->out_off > 0) {
        char peer[80];
        LOG(LOG_WARN, "CAIRN-HTTP-SLOW-READER", "dropped %s: it read none of its response "
            "for %" PRIu64 " ms (%zu of %zu bytes sent)", http__peer(c, peer, sizeof(peer)),
            c->srv->stall_ms, c->out_off, c->out_len);
    }
    http__conn_close(c);
}

void
http__timer_arm(struct http_conn *c, uint64_t ms)
{
    if (c->closing)
        return;
    /* while a head is being read, the head deadline caps the wait */
    if (c->head_deadline && !c->busy && !c->writing && !c->lingering) {
        uint64_t now = uv_now(c->srv->loop);
        uint64_t left = c->head_deadline > now ? c->head_deadline - now : 1;
        if (left < ms)
            ms = left;
    }
    uv_timer_start(&c->timer, http__timer_cb, ms, 0);
}

static void
http__consume(struct http_conn *c, size_t n)
{
    if (n == 0)
        return;
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
    if (c->in_cap > HTTP_SHRINK_ABOVE && c->in_len < c->in_cap / 4) {
        size_t ncap = c->in_len + HTTP_READ_MIN;
        c->in = xrealloc(c->in, ncap);
        c->in_cap = ncap;
    }
}

/* ---- reading ------------------------------------------------------------ */

static void
http__alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct http_conn *c = h->data;
    if (c->lingering)
        c->in_len = 0; /* input is discarded */
    if (c->in_cap - c->in_len < HTTP_READ_MIN) {
        size_t ncap = c->in_cap ? c->in_cap : HTTP_READ_MIN;
        while (ncap - c->in_len < HTTP_READ_MIN)
            ncap *= 2;
        c->in = xrealloc(c->in, ncap);
        c->in_cap = ncap;
    }
    *buf = uv_buf_init(c->in + c->in_len, (unsigned int)(c->in_cap - c->in_len));
}

static void http__read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

void
http__read_start(struct http_conn *c)
{
    if (c->reading || c->peer_eof || c->closing)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, http__alloc_cb, http__read_cb) != 0) {
        http__conn_close(c);
        return;
    }
    c->reading = 1;
}

static void
http__read_stop(struct http_conn *c)
{
    if (!c->reading)
        return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
}

static void
http__read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct http_conn *c = st->data;
    (void)buf;
    if (nread == 0 || c->closing)
        return;
    if (nread < 0) {
        if (nread != UV_EOF || c->lingering) {
            http__conn_close(c);
            return;
        }
        c->peer_eof = 1;
        http__read_stop(c);
        if (!c->busy && !c->writing)
            http__process(c);
        return;
    }
    if (c->lingering)
        return;
    if (c->timed_out)
        return;
    c->in_len += (size_t)nread;
    if (c->busy || c->writing) {
        if (c->in_len >= HTTP_PIPELINE_MAX)
            http__read_stop(c);
        return;
    }
    if (!c->pp.have_head && !c->head_deadline)
        c->head_deadline = uv_now(c->srv->loop) + c->srv->head_ms;
    http__timer_arm(c, c->srv->idle_ms);
    http__process(c);
}

/* Answer a request the server refuses, and end the connection (the parser
 * has cleared keep_alive). */
static void
http__fail(struct http_conn *c, int status, const char *msg)
{
    if (status != 408) {
        char peer[80];
        LOG(LOG_WARN, "CAIRN-HTTP-REFUSED", "%d to %s: %s", status,
            http__peer(c, peer, sizeof(peer)), msg);
    }
    c->busy = 1;
    http_respond_error(c, status, http_status_code(status), "%s", msg);
}

static void
http__continue_cb(uv_write_t *wr, int status)
{
    struct http_conn *c = wr->data;
    if (status < 0 && !c->closing)
        http__conn_close(c);
}

static void
http__send_continue(struct http_conn *c)
{
    static char text[] = "HTTP/1.1 100 Continue\r\n\r\n";
    uv_buf_t b = uv_buf_init(text, sizeof(text) - 1);
    c->creq.data = c;
    if (uv_write(&c->creq, (uv_stream_t *)&c->tcp, &b, 1, http__continue_cb) != 0)
        http__conn_close(c);
}

/* Need more input for the current request: read on, or give up at EOF. */
static void
http__need_more(struct http_conn *c)
{
    if (c->peer_eof) {
        http__conn_close(c);
        return;
    }
    http__read_start(c);
}

/* Advance the connection: parse what is buffered and hand a complete request
 * to the handler. Does nothing while a request is with the handler or a
 * response is being written. */
static void
http__process(struct http_conn *c)
{
    if (c->closing || c->busy || c->writing || c->lingering)
        return;
    size_t used = 0;
    if (!c->pp.have_head) {
        char msg[160];
        int st = httpp_head(&c->pp, c->in, c->in_len, &used, msg, sizeof(msg));
        http__consume(c, used);
        if (st == HTTPP_MORE) {
            http__need_more(c);
            return;
        }
        if (st) {
            http__fail(c, st, msg);
            return;
        }
        /* the body gets the head timeout plus 1 s per 64 KiB */
        c->head_deadline = c->in_len >= c->pp.content_length
                               ? 0
                               : uv_now(c->srv->loop) + c->srv->head_ms +
                                     (uint64_t)(c->pp.content_length / 65536) * 1000;
        if (c->pp.expect_continue && c->in_len < c->pp.content_length)
            http__send_continue(c);
        if (c->closing)
            return;
    }
    if (httpp_body(&c->pp, c->in, c->in_len, &used) == HTTPP_MORE) {
        http__need_more(c);
        return;
    }
    http__consume(c, used);
    struct http_server *s = c->srv;
    if (s->out_bytes > s->out_budget) {
        /* the answers held for clients are over the budget: this request
         * waits (it holds little), clients that stopped reading go */
        http__shed(c);
        if (s->out_bytes > s->out_budget) {
            c->deferred = 1;
            http__read_stop(c);
            uv_timer_start(&c->timer, http__timer_cb, 1000, 0);
            return;
        }
    }
    c->deferred = 0;
    c->busy = 1;
    uv_timer_stop(&c->timer);
    c->srv->handler(c->srv->ud, c, &c->pp.req);
    /* c may be responded to (but not freed) by now; touch nothing. */
}

/* ---- responses ---------------------------------------------------------- */

static void
http__shutdown_cb(uv_shutdown_t *r, int status)
{
    struct http_conn *c = r->data;
    if (status < 0 && !c->closing)
        http__conn_close(c);
}

static void http__file_pump(struct http_conn *c);

static int http__out_next(struct http_conn *c);

/* Response memory was given back: requests that waited for it go on, while
 * it lasts (each may take some of it). */
static void
http__resume(struct http_server *s)
{
    while (s->out_bytes <= s->out_budget) {
        struct http_conn *w = NULL;
        for (struct http_conn *c = s->conns; c && !w; c = c->next)
            if (c->deferred)
                w = c;
        if (!w)
            return;
        w->deferred = 0;
        uv_timer_stop(&w->timer);
        http__process(w);
    }
}

/* The in-memory response is written (or abandoned): give its memory back. */
static void
http__out_release(struct http_conn *c)
{
    struct http_server *s = c->srv;
    size_t was = c->out_acct;
    if (was && s)
        s->out_bytes -= was;
    c->out_acct = 0;
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    if (was && s && !s->closing)
        http__resume(s);
}

static void
http__write_cb(uv_write_t *wr, int status)
{
    struct http_conn *c = wr->data;
    if (!c->closing && status >= 0 && c->out && c->out_off < c->out_len) {
        /* progress: the client reads; the next chunk */
        c->out_progress = uv_now(c->srv->loop);
        http__timer_arm(c, c->srv->stall_ms);
        if (http__out_next(c) == 0)
            return;
        status = UV_EIO;
    }
    http__out_release(c);
    if (!c->closing && status >= 0 && c->file_active && c->file_left > 0) {
        c->file_wr = 0;                      /* c->writing stays: the rest of the body follows */
        http__timer_arm(c, c->srv->idle_ms); /* progress: the client is reading */
        http__file_pump(c);
        return;
    }
    c->writing = 0;
    if (c->closing)
        return;
    if (status < 0) {
        http__conn_close(c);
        return;
    }
    http__file_end(c, 1);
    if (c->close_after) {
        if (c->peer_eof) {
            http__conn_close(c);
            return;
        }
        c->lingering = 1;
        c->sreq.data = c;
        if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, http__shutdown_cb) != 0) {
            http__conn_close(c);
            return;
        }
        http__read_start(c);
        http__timer_arm(c, HTTP_LINGER_MS);
        return;
    }
    c->head_deadline = c->in_len > 0 ? uv_now(c->srv->loop) + c->srv->head_ms : 0;
    http__timer_arm(c, c->srv->idle_ms);
    http__process(c);
}

static void
http__put_date(struct sb *sb)
{
    static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = time(NULL);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 || tm.tm_mon > 11)
        return;
    sb_printf(sb, "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n", days[tm.tm_wday], tm.tm_mday,
              months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Take the response from the handler: 0 if it is to be sent, -1 if there is
 * nothing to send (misuse, or the connection went away: c may be freed). */
static int
http__respond_begin(struct http_conn *c, int status)
{
    if (!c)
        return -1;
    if (!c->busy) {
        LOG(LOG_ERR, "CAIRN-HTTP-MISUSE", "response on a connection with no pending request");
        return -1;
    }
    c->busy = 0;
    if (c->srv && c->srv->observe)
        c->srv->observe(c->srv->observe_ud, c->route, status < 200 || status > 599 ? 500 : status);
    c->route = NULL;
    if (c->closing) {
        /* The peer or the server went away meanwhile: nothing to send. */
        http__req_reset(c);
        http__conn_maybe_free(c);
        return -1;
    }
    return 0;
}

/* The status line and headers, then body (len bytes; NULL for none) when
 * the response has one. Sets c->close_after. */
static char *
http__head(struct http_conn *c, int status, const char *content_type, uint64_t content_length,
           const void *body, size_t len, size_t *outlen)
{
    int keep = c->pp.keep_alive && !c->srv->closing && !(c->peer_eof && c->in_len == 0);
    int no_body = status == 204 || status == 304;

    struct sb sb;
    sb_init(&sb);
    sb_printf(&sb, "HTTP/1.1 %d %s\r\n", status, http_status_text(status));
    http__put_date(&sb);
    if (content_type && !no_body && !strpbrk(content_type, "\r\n"))
        sb_printf(&sb, "Content-Type: %s\r\n", content_type);
    if (!no_body)
        sb_printf(&sb, "Content-Length: %" PRIu64 "\r\n", content_length);
    if (c->extra_hdr) {
        sb_printf(&sb, "%s\r\n", c->extra_hdr);
        free(c->extra_hdr);
        c->extra_hdr = NULL;
    }
    if (c->etag_hdr) {
        sb_printf(&sb, "%s\r\n", c->etag_hdr);
        free(c->etag_hdr);
        c->etag_hdr = NULL;
    }
    sb_puts(&sb, "Cache-Control: no-store\r\n"
                 "X-Content-Type-Options: nosniff\r\n");
    sb_puts(&sb, keep ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
    if (!no_body && !c->pp.is_head && body && len > 0)
        sb_append(&sb, body, len);
    c->close_after = !keep;
    *outlen = sb.len;
    return sb_take(&sb);
}

void
http_conn_set_header(struct http_conn *c, const char *line)
{
    if (!c || !line || strpbrk(line, "\r\n"))
        return;
    free(c->extra_hdr);
    c->extra_hdr = xstrdup(line);
}

/* Hand the next chunk of the in-memory response to the socket. */
static int
http__out_next(struct http_conn *c)
{
    size_t n = c->out_len - c->out_off;
    if (n > HTTP_WRITE_CHUNK)
        n = HTTP_WRITE_CHUNK;
    c->wreq.data = c;
    uv_buf_t b = uv_buf_init(c->out + c->out_off, (unsigned int)n);
    c->out_off += n;
    return uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, http__write_cb);
}

/* Responses held for clients went over the budget (clients that send
 * requests and never read the answers): drop those that have not read for
 * a second, the most memory first, until it fits. keep is never dropped. */
static void
http__shed(struct http_conn *keep)
{
    struct http_server *s = keep->srv;
    uint64_t now = uv_now(s->loop);
    while (s->out_bytes > s->out_budget) {
        struct http_conn *worst = NULL;
        for (struct http_conn *c = s->conns; c; c = c->next)
            if (c != keep && c->out_acct && now - c->out_progress >= 1000 &&
                (!worst || c->out_acct > worst->out_acct))
                worst = c;
        if (!worst)
            return;
        char peer[80];
        LOG(LOG_WARN, "CAIRN-HTTP-SLOW-READER", "dropped %s: it has not read its response for "
            "%" PRIu64 " ms and the responses held for clients passed %zu MiB (%zu of %zu "
            "bytes sent)", http__peer(worst, peer, sizeof(peer)), now - worst->out_progress,
            s->out_budget >> 20, worst->out_off, worst->out_len);
        http__conn_close(worst);
    }
}

void
http_conn_etag(struct http_conn *c, const char *if_none_match)
{
    if (!c)
        return;
    c->etag_on = 1;
    free(c->etag_inm);
    c->etag_inm = if_none_match ? xstrdup(if_none_match) : NULL;
}

/* The ETag of c's 200 response (http_conn_etag): status 304 and no body if
 * the request's If-None-Match names it. */
static void
http__etag(struct http_conn *c, int *status, const void *body, size_t *len)
{
    int on = c->etag_on;
    char *inm = c->etag_inm;
    c->etag_on = 0;
    c->etag_inm = NULL;
    if (!on || *status != 200) {
        free(inm);
        return;
    }
    char tag[HTTPP_ETAG_LEN], line[HTTPP_ETAG_LEN + 8];
    httpp_etag(body, *len, tag);
    snprintf(line, sizeof(line), "ETag: %s", tag);
    if (inm && httpp_etag_matches(inm, tag)) {
        *status = 304;
        *len = 0;
    }
    free(inm);
    free(c->etag_hdr);
    c->etag_hdr = xstrdup(line);
}

void
http_respond(struct http_conn *c, int status, const char *content_type, const void *body,
             size_t len)
{
    if (c && c->busy && status >= 200 && status <= 599)
        http__etag(c, &status, body, &len);
    if (http__respond_begin(c, status) != 0)
        return;
    if (status < 200 || status > 599)
        status = 500;
    size_t outlen;
    c->out = http__head(c, status, content_type, len, body, len, &outlen);
    http__req_reset(c); /* after copying: body may point into the request */

    c->writing = 1;
    c->out_len = outlen;
    c->out_off = 0;
    c->out_acct = outlen;
    c->srv->out_bytes += outlen;
    c->out_progress = uv_now(c->srv->loop);
    http__shed(c);
    http__timer_arm(c, c->srv->stall_ms);
    if (http__out_next(c) != 0) {
        c->writing = 0;
        http__out_release(c);
        http__conn_close(c);
        return;
    }
    http__timer_arm(c, c->srv->idle_ms);
}

void
http_respond_json(struct http_conn *c, int status, json_t *obj)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(obj);
    if (!text) {
        http_respond_error(c, 500, "internal", "the response could not be serialised");
        return;
    }
    http_respond(c, status, "application/json", text, strlen(text));
    free(text);
}

/* On the thread pool: read the job's chunk whole (pread, retried on short
 * reads) and check it. Touches only the job's fields and the handler's
 * check state, which no other thread uses while the job runs. */
static void
http__file_work(uv_work_t *w)
{
    struct http_conn *c = w->data;
    size_t got = 0;
    c->file_jrefused = 0;
    while (got < c->file_jn) {
        ssize_t r =
            pread(c->file_fd, c->file_jbuf + got, c->file_jn - got, (off_t)(c->file_joff + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            c->file_jgot = -errno;
            return;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    c->file_jgot = (ssize_t)got;
    if (got == c->file_jn && c->file_check &&
        c->file_check(c->file_ud, c->file_jbuf, got, c->file_jlast) != 0)
        c->file_jrefused = 1;
}

/* A file body cannot go on: give it up and close the connection. */
static void
http__file_fail(struct http_conn *c)
{
    if (!c->file_wr) /* else the write's callback clears c->writing */
        c->writing = 0;
    http__file_end(c, 0);
    http__conn_close(c);
}

static void
http__file_work_cb(uv_work_t *w, int status)
{
    struct http_conn *c = w->data;
    c->file_reading = 0;
    if (c->closing) {
        if (!c->file_wr)
            c->writing = 0;
        http__file_end(c, 0);
        http__conn_maybe_free(c);
        return;
    }
    ssize_t n = status < 0 ? status : c->file_jgot;
    if (n < 0 || (size_t)n != c->file_jn) {
        LOG(LOG_ERR, "CAIRN-HTTP-FILE",
            "reading a response body failed at offset %" PRIu64 " with %" PRIu64 " bytes to go: %s",
            c->file_joff + (n > 0 ? (uint64_t)n : 0), c->file_rleft + c->file_jn,
            n < 0 ? (status < 0 ? uv_strerror(status) : strerror((int)-n))
                  : "the file is shorter than announced");
        http__file_fail(c);
        return;
    }
    if (c->file_jrefused) { /* the client gets a body cut short, not wrong bytes */
        http__file_fail(c);
        return;
    }
    c->file_rdone++;
    http__file_pump(c);
}

/* The size of chunk k of the file body. */
static size_t
http__file_chunk_len(const struct http_conn *c, uint64_t k)
{
    uint64_t done = k * HTTP_FILE_CHUNK, left = c->file_len - done;
    return left < HTTP_FILE_CHUNK ? (size_t)left : HTTP_FILE_CHUNK;
}

/* Move a file body on (c->writing stays set meanwhile, so no other request
 * is processed): write the next chunk once it is read and the previous
 * write completed, and read ahead while a buffer is free. */
static void
http__file_pump(struct http_conn *c)
{
    if (!c->file_wr && c->file_wk < c->file_rdone) {
        uint64_t k = c->file_wk++;
        size_t n = http__file_chunk_len(c, k);
        c->file_left -= n;
        c->file_wr = 1;
        c->wreq.data = c;
        uv_buf_t b = uv_buf_init(c->file_buf[k % HTTP_FILE_BUFS], (unsigned int)n);
        if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, http__write_cb) != 0) {
            c->file_wr = 0;
            http__file_fail(c);
            return;
        }
    }
    /* chunk k's buffer is free once chunk k - HTTP_FILE_BUFS was written */
    uint64_t written = c->file_wk - (c->file_wr && c->file_wk > 0 ? 1 : 0);
    if (c->file_reading || c->file_rleft == 0 || c->file_rk >= written + HTTP_FILE_BUFS)
        return;
    size_t n = http__file_chunk_len(c, c->file_rk);
    uint64_t k = c->file_rk++;
    if (!c->file_buf[k % HTTP_FILE_BUFS])
        c->file_buf[k % HTTP_FILE_BUFS] = xmalloc(n);
    c->file_jbuf = c->file_buf[k % HTTP_FILE_BUFS];
    c->file_jn = n;
    c->file_joff = c->file_off;
    c->file_jlast = n == c->file_rleft;
    c->file_off += n;
    c->file_rleft -= n;
    c->file_work.data = c;
    int rc = uv_queue_work(c->srv->loop, &c->file_work, http__file_work, http__file_work_cb);
    if (rc != 0) {
        LOG(LOG_ERR, "CAIRN-HTTP-FILE", "cannot read a response body: %s", uv_strerror(rc));
        http__file_fail(c);
        return;
    }
    c->file_reading = 1;
}

void
http_respond_file(struct http_conn *c, int status, const char *content_type,
                  const struct http_file_body *fb)
{
    if (http__respond_begin(c, status) != 0) {
        close(fb->fd);
        if (fb->done)
            fb->done(fb->ud, 0);
        return;
    }
    if (status < 200 || status > 599)
        status = 500;
    size_t outlen;
    c->out = http__head(c, status, content_type, fb->len, NULL, 0, &outlen);
    c->file_active = 1;
    c->file_fd = fb->fd;
    c->file_off = fb->offset;
    c->file_left = c->pp.is_head || status == 204 || status == 304 ? 0 : fb->len;
    c->file_rleft = c->file_len = c->file_left;
    c->file_rk = c->file_rdone = c->file_wk = 0;
    http__req_reset(c); /* after is_head was used */
    c->file_check = fb->check;
    c->file_done = fb->done;
    c->file_ud = fb->ud;

    c->writing = 1;
    c->wreq.data = c;
    uv_buf_t b = uv_buf_init(c->out, (unsigned int)outlen);
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, http__write_cb) != 0) {
        c->writing = 0;
        free(c->out);
        c->out = NULL;
        http__file_end(c, 0);
        http__conn_close(c);
        return;
    }
    c->file_wr = 1; /* the head; the first chunk is read meanwhile */
    http__timer_arm(c, c->srv->idle_ms);
    http__file_pump(c);
}

void
http_respond_error(struct http_conn *c, int status, const char *code, const char *fmt, ...)
{
    struct sb sb;
    va_list ap;
    sb_init(&sb);
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    char *raw = sb_take(&sb);
    char *msg = http_utf8_clean(raw);
    char *ccode = http_utf8_clean(code ? code : "error");
    free(raw);
    json_t *obj = json_pack("{s:{s:s,s:s}}", "error", "code", ccode, "message", msg);
    free(msg);
    free(ccode);
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (text) {
        http_respond(c, status, "application/json", text, strlen(text));
        free(text);
    } else {
        static const char fallback[] = "{\"error\":{\"code\":\"internal\",\"message\":\"\"}}";
        http_respond(c, status, "application/json", fallback, sizeof(fallback) - 1);
    }
}
