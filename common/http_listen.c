/* http_listen.c - the HTTP server's listener (see http.h): binding,
 * accepting connections within the server's limits (all connections, and
 * connections from one address), the server's settings, and closing the
 * server once every connection has closed. A connection's own life cycle
 * is in http.c. */
#include "http.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"
#include "http_conn.h"
#include "log.h"
#include "util.h"

/* ---- the listener ------------------------------------------------------- */

/* Note c's peer address; true if that address has more connections open
 * than one address may (loopback is exempt unless configured otherwise: a
 * local reverse proxy carries every client). */
static int
http__too_many_from(struct http_server *s, struct http_conn *c)
{
    struct sockaddr_storage ss;
    int sl = (int)sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) != 0)
        return 0;
    int loopback = 0;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        uv_ip4_name(a, c->ip, sizeof(c->ip));
        loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, c->ip, sizeof(c->ip));
        loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
                   (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127);
    } else {
        return 0;
    }
    if (loopback && !s->per_ip_loopback)
        return 0;
    size_t n = 0;
    for (const struct http_conn *o = s->conns; o; o = o->next)
        n += strcmp(o->ip, c->ip) == 0;
    return n > s->max_per_ip;
}

static void
http__on_connection(uv_stream_t *ls, int status)
{
    struct http_server *s = ls->data;
    if (status < 0) {
        LOG(LOG_WARN, "CAIRN-HTTP-ACCEPT", "accepting a connection failed: %s",
            uv_strerror(status));
        return;
    }
    struct http_conn *c = xcalloc(1, sizeof(*c));
    if (uv_tcp_init(s->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    uv_timer_init(s->loop, &c->timer);
    c->srv = s;
    c->tcp.data = c;
    c->timer.data = c;
    c->handles = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
        http__conn_close(c);
        return;
    }
    if (s->max_per_ip && http__too_many_from(s, c)) {
        static char busy_ip[] =
            "HTTP/1.1 503 Service Unavailable\r\n"
            "Content-Type: application/json\r\n"
            "Content-Length: 91\r\n"
            "Connection: close\r\n\r\n"
            "{\"error\":{\"code\":\"unavailable\",\"message\":\"too many connections from "
            "your address; retry later\"}}";
        uv_buf_t b = uv_buf_init(busy_ip, sizeof(busy_ip) - 1);
        LOG(LOG_WARN, "CAIRN-HTTP-TOO-MANY", "more than %zu connections from %s: 503 and closed",
            s->max_per_ip, c->ip);
        (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        http__conn_close(c);
        return;
    }
    if (s->nconns > s->max_conns) {
        static char busy[] =
            "HTTP/1.1 503 Service Unavailable\r\n"
            "Content-Type: application/json\r\n"
            "Content-Length: 78\r\n"
            "Connection: close\r\n\r\n"
            "{\"error\":{\"code\":\"unavailable\",\"message\":\"too many connections; "
            "retry later\"}}";
        char peer[80];
        uv_buf_t b = uv_buf_init(busy, sizeof(busy) - 1);
        LOG(LOG_WARN, "CAIRN-HTTP-TOO-MANY", "more than %zu connections: 503 to %s and closed",
            s->max_conns, http__peer(c, peer, sizeof(peer)));
        (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        http__conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    http__timer_arm(c, s->idle_ms);
    http__read_start(c);
}

static void
http__listener_close_cb(uv_handle_t *h)
{
    struct http_server *s = h->data;
    s->nclosing--;
    http__server_maybe_done(s);
}

static void
http__free_cb(uv_handle_t *h)
{
    free(h->data);
}

/* Bind and listen on a plain socket, so the common failures happen before a
 * libuv handle exists. Returns the fd, or a negative CAIRN_E* code. */
static int
http__listen_fd(const char *host, int port, int *bound_port)
{
    struct addrinfo hints, *res = NULL;
    char portstr[16];
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%d", port);
    const char *node = host && *host ? host : NULL;
    int gai = getaddrinfo(node, portstr, &hints, &res);
    if (gai != 0) {
        LOG(LOG_ERR, "CAIRN-HTTP-LISTEN", "cannot listen on %s:%d: %s", node ? node : "*", port,
            gai_strerror(gai));
        return CAIRN_EINVAL;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        LOG(LOG_ERR, "CAIRN-HTTP-LISTEN", "cannot listen on %s:%d: %s", node ? node : "*", port,
            strerror(err));
        return CAIRN_ENET;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    *bound_port = port;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            *bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            *bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return fd;
}

int
http_server_start(struct http_server **out, uv_loop_t *loop, const char *host, int port,
                  http_handler_fn handler, void *ud)
{
    if (!out || !loop || !handler || port < 0 || port > 65535)
        return CAIRN_EINVAL;

    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);

    int bound = 0;
    int fd = http__listen_fd(host, port, &bound);
    if (fd < 0)
        return fd;

    struct http_server *s = xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->port = bound;
    s->handler = handler;
    s->ud = ud;
    s->idle_ms = HTTP_IDLE_TIMEOUT_MS;
    s->head_ms = HTTP_HEAD_TIMEOUT_MS;
    s->max_conns = HTTP_CONNS_MAX;
    s->max_per_ip = HTTP_CONNS_PER_IP_MAX;
    s->stall_ms = HTTP_WRITE_STALL_MS;
    s->out_budget = HTTP_OUT_BUDGET;
    if (uv_tcp_init(loop, &s->listener) != 0) {
        close(fd);
        free(s);
        return CAIRN_ENET;
    }
    s->listener.data = s;
    int rc = uv_tcp_open(&s->listener, fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, SOMAXCONN, http__on_connection);
    if (rc != 0) {
        /* Unlikely: libuv refused a socket that is bound and listening. The
         * handle owns fd now and is released on the next loop iteration. */
        LOG(LOG_ERR, "CAIRN-HTTP-LISTEN", "cannot listen on port %d: %s", bound, uv_strerror(rc));
        uv_close((uv_handle_t *)&s->listener, http__free_cb);
        return CAIRN_ENET;
    }
    *out = s;
    return 0;
}

int
http_server_port(const struct http_server *s)
{
    return s ? s->port : -1;
}

void
http_server_set_observer(struct http_server *s, http_observe_fn fn, void *ud)
{
    s->observe = fn;
    s->observe_ud = ud;
}

void
http_conn_set_route(struct http_conn *c, const char *route)
{
    c->route = route;
}

void
http_server_set_idle_timeout(struct http_server *s, uint64_t ms)
{
    if (s && ms > 0)
        s->idle_ms = ms;
}

void
http_server_set_head_timeout(struct http_server *s, uint64_t ms)
{
    if (s && ms > 0)
        s->head_ms = ms;
}

void
http_server_set_response_memory(struct http_server *s, size_t n)
{
    if (s && n > 0)
        s->out_budget = n;
}

void
http_server_set_max_per_ip(struct http_server *s, size_t n, int loopback_too)
{
    if (s) {
        s->max_per_ip = n;
        s->per_ip_loopback = loopback_too;
    }
}

void
http_server_set_max_conns(struct http_server *s, size_t n)
{
    if (s && n > 0)
        s->max_conns = n;
}

size_t
http_server_conn_count(const struct http_server *s)
{
    return s ? s->nconns : 0;
}

void
http_server_close(struct http_server *s, void (*done)(void *ud), void *ud)
{
    if (!s || s->closing)
        return;
    s->closing = 1;
    s->done = done;
    s->done_ud = ud;
    s->nclosing++;
    uv_close((uv_handle_t *)&s->listener, http__listener_close_cb);
    while (s->conns)
        http__conn_close(s->conns);
}
