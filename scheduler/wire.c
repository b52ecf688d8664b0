#include "wire.h"

#include <arpa/inet.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounded.h"
#include "err.h"
#include "ident.h"
#include "log.h"
#include "util.h"

#define WIRE_SLOTS 256

enum slot_state { SLOT_RECV, SLOT_HELD, SLOT_SEND, SLOT_DEAD };

struct wire_slot {
    struct wire *w;
    nng_ctx ctx;
    nng_aio *aio;
    enum slot_state st;
    nng_msg *msg; /* received, waiting for the loop */
    struct wire_slot *qnext;
    struct wire_req req;
};

struct wire {
    nng_socket sock;
    struct wire_slot *slots;
    size_t nslots;
    uv_async_t async;
    pthread_mutex_t mu;
    struct wire_slot *qhead, *qtail;
    struct proto_key key;
    wire_gone_fn gone;
    uint32_t *gone_pipes; /* closed connections not yet told to the loop */
    size_t ngone, capgone;
    wire_handler_fn handler;
    void *ud;
    int closing;
    char *url; /* the URL workers dial (port 0 replaced by the bound one) */
    bool tls;
    nng_listener listener;
    uv_timer_t tls_timer; /* watches the listener's refused handshakes (tls) */
    uint64_t tls_refused;
    int open_handles; /* async (and tls_timer): w is freed when both closed */
    bool abandoned;   /* nng did not let go at the stop: w is left to the exit */
};

/* nng does not say why a TLS handshake failed on the listener's side, nor
 * with whom; it counts them (the listener's "auth" statistic). Read the
 * count every second and log what is new, so a worker with a certificate
 * from another CA, an expired one or none shows in the scheduler's log. */
static void
tls_timer_cb(uv_timer_t *t)
{
    struct wire *w = t->data;
    nng_stat *all = NULL, *ls, *st;
    if (nng_stats_get(&all) != 0)
        return;
    if ((ls = nng_stat_find_listener(all, w->listener)) != NULL &&
        (st = nng_stat_find(ls, "auth")) != NULL) {
        uint64_t n = nng_stat_value(st);
        if (n > w->tls_refused)
            LOG(LOG_WARN, "CAIRN-TLS-REFUSED",
                "refused %llu worker connection%s on %s in the TLS handshake: the peer's "
                "certificate is not from this scheduler's CA (--tls-ca), has expired, or is "
                "missing", (unsigned long long)(n - w->tls_refused),
                n - w->tls_refused == 1 ? "" : "s", w->url);
        w->tls_refused = n;
    }
    nng_stats_free(all);
}

static void
slot_recv(struct wire_slot *s)
{
    s->st = SLOT_RECV;
    nng_ctx_recv(s->ctx, s->aio);
}

/* nng thread: move the message to the loop, or re-arm after a send. */
static void
slot_cb(void *arg)
{
    struct wire_slot *s = arg;
    struct wire *w = s->w;
    int rv = nng_aio_result(s->aio);

    if (s->st == SLOT_SEND) {
        if (rv != 0) {
            nng_msg *m = nng_aio_get_msg(s->aio);
            if (m)
                nng_msg_free(m);
        }
        if (rv == NNG_ECLOSED || w->closing) {
            s->st = SLOT_DEAD;
            return;
        }
        slot_recv(s);
        return;
    }
    if (rv != 0) {
        if (rv == NNG_ECLOSED || w->closing) {
            s->st = SLOT_DEAD;
            return;
        }
        slot_recv(s);
        return;
    }
    s->msg = nng_aio_get_msg(s->aio);
    s->req.pipe = nng_pipe_id(nng_msg_get_pipe(s->msg));
    pthread_mutex_lock(&w->mu);
    if (w->closing) { /* the loop's handle may be closed already */
        pthread_mutex_unlock(&w->mu);
        nng_msg_free(s->msg);
        s->msg = NULL;
        s->st = SLOT_DEAD;
        return;
    }
    s->st = SLOT_HELD;
    s->qnext = NULL;
    if (w->qtail)
        w->qtail->qnext = s;
    else
        w->qhead = s;
    w->qtail = s;
    uv_async_send(&w->async);
    pthread_mutex_unlock(&w->mu);
}

static void
slot_send(struct wire_slot *s, int type, json_t *body)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    nng_msg *m = NULL;
    if (proto_encode(&s->w->key, type, body, &buf, &len) != 0 ||
        nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, buf, len) != 0) {
        LOG(LOG_ERR, "CAIRN-WIRE-ENCODE", "cannot encode a %s reply", proto_type_name(type));
        free(buf);
        if (m)
            nng_msg_free(m);
        slot_recv(s);
        return;
    }
    free(buf);
    s->st = SLOT_SEND;
    nng_aio_set_msg(s->aio, m);
    nng_ctx_send(s->ctx, s->aio);
}

static void
send_error(struct wire_slot *s, const char *code, const char *msg)
{
    json_t *b = json_pack("{s:s, s:s}", "code", code, "message", msg);
    slot_send(s, PROTO_ERROR, b);
    json_decref(b);
}

/* nng thread: a connection went away. */
static void
pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    struct wire *w = arg;
    (void)ev;
    pthread_mutex_lock(&w->mu);
    if (!w->closing) { /* the loop's handle may be closed already */
        xgrow((void **)&w->gone_pipes, &w->capgone, w->ngone + 1, sizeof(*w->gone_pipes));
        w->gone_pipes[w->ngone++] = nng_pipe_id(p);
        uv_async_send(&w->async);
    }
    pthread_mutex_unlock(&w->mu);
}

void
wire_on_gone(struct wire *w, wire_gone_fn fn)
{
    w->gone = fn;
}

const char *
wire_url(const struct wire *w)
{
    return w->url;
}

static void
async_cb(uv_async_t *h)
{
    struct wire *w = h->data;
    pthread_mutex_lock(&w->mu);
    size_t ngone = w->ngone;
    uint32_t *gone = w->gone_pipes;
    w->gone_pipes = NULL;
    w->ngone = w->capgone = 0;
    pthread_mutex_unlock(&w->mu);
    for (size_t i = 0; i < ngone && !w->closing; i++)
        if (w->gone)
            w->gone(w->ud, gone[i]);
    free(gone);
    for (;;) {
        pthread_mutex_lock(&w->mu);
        struct wire_slot *s = w->qhead;
        if (s) {
            w->qhead = s->qnext;
            if (!w->qhead)
                w->qtail = NULL;
        }
        pthread_mutex_unlock(&w->mu);
        if (!s)
            break;
        nng_msg *m = s->msg;
        s->msg = NULL;
        if (w->closing) {
            nng_msg_free(m);
            continue;
        }
        char err[256];
        int type = 0;
        void *body = NULL;
        int rc = proto_decode(&w->key, nng_msg_body(m), nng_msg_len(m), &type, &body, err,
                              sizeof(err));
        nng_msg_free(m);
        if (rc != 0) {
            LOG(LOG_WARN, "CAIRN-WIRE-REJECT", "rejected a message: %s", err);
            send_error(s, rc == CAIRN_EAUTH ? "auth" : rc == CAIRN_EVERSION ? "version" : "proto",
                       err);
            continue;
        }
        if (type != PROTO_HELLO && type != PROTO_POLL && type != PROTO_STARTED &&
            type != PROTO_LOG && type != PROTO_RESULT && type != PROTO_BATCH) {
            LOG(LOG_WARN, "CAIRN-WIRE-REJECT", "rejected a %s message: not a request",
                proto_type_name(type));
            json_decref(body);
            send_error(s, "proto", "not a request type");
            continue;
        }
        s->req.w = w;
        s->req.slot = s;
        s->req.type = type;
        s->req.body = body;
        s->req.batch = NULL;
        w->handler(w->ud, &s->req);
    }
}

/* url with a port of 0 replaced by the port listener l was given (a TCP
 * listener on port 0 binds a free one); url itself otherwise. */
static char *
bound_url(const char *url, nng_listener l)
{
    const char *scheme = strstr(url, "://"), *colon = strrchr(url, ':');
    nng_sockaddr sa;
    uint16_t port = 0;

    if (!scheme || colon <= scheme || strcmp(colon, ":0") != 0 ||
        nng_listener_get_addr(l, NNG_OPT_LOCADDR, &sa) != 0)
        return xstrdup(url);
    if (sa.s_family == NNG_AF_INET)
        port = sa.s_in.sa_port;
    else if (sa.s_family == NNG_AF_INET6)
        port = sa.s_in6.sa_port;
    if (port == 0)
        return xstrdup(url);
    return xasprintf("%.*s:%u", (int)(colon - url), url, (unsigned)ntohs(port));
}

int
wire_start(struct wire **out, uv_loop_t *loop, const char *url, const struct proto_key *key,
           const struct ident *id, wire_handler_fn handler, void *ud, char *err, size_t errlen)
{
    struct wire *w = xcalloc(1, sizeof(*w));
    nng_listener l;
    int rv;
    w->key = *key;
    w->handler = handler;
    w->ud = ud;
    pthread_mutex_init(&w->mu, NULL);
    if ((rv = nng_rep0_open(&w->sock)) != 0) {
        snprintf(err, errlen, "cannot open the worker socket: %s", nng_strerror(rv));
        pthread_mutex_destroy(&w->mu);
        free(w);
        return CAIRN_ENET;
    }
    nng_socket_set_size(w->sock, NNG_OPT_RECVMAXSZ, PROTO_MAX_FRAME);
    nng_pipe_notify(w->sock, NNG_PIPE_EV_REM_POST, pipe_cb, w);
    bool tls = !strncmp(url, "tls+", 4);
    if (tls != (id != NULL)) {
        snprintf(err, errlen, tls ? "%s is a TLS address: give --tls-cert, --tls-key and --tls-ca"
                                  : "--tls-cert needs a tls+tcp:// --listen address, not %s",
                 url);
        nng_close(w->sock);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return CAIRN_ENET;
    }
    void *tcfg = NULL;
    char terr[256] = "";
    if ((rv = nng_listener_create(&l, w->sock, url)) != 0 ||
        (id && (ident_tls_config(id, true, NULL, &tcfg, terr, sizeof(terr)) != 0 ||
                (rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, tcfg)) != 0)) ||
        (rv = nng_listener_start(l, 0)) != 0) {
        if (tcfg)
            nng_tls_config_free(tcfg);
        snprintf(err, errlen, "cannot listen on %s: %s", url, terr[0] ? terr : nng_strerror(rv));
        nng_close(w->sock);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return CAIRN_ENET;
    }
    if (tcfg)
        nng_tls_config_free(tcfg); /* the listener holds it */
    w->url = bound_url(url, l);
    uv_async_init(loop, &w->async, async_cb);
    w->async.data = w;
    w->open_handles = 1;
    w->tls = tls;
    w->listener = l;
    if (tls) {
        uv_timer_init(loop, &w->tls_timer);
        w->tls_timer.data = w;
        uv_timer_start(&w->tls_timer, tls_timer_cb, 1000, 1000);
        w->open_handles++;
    }
    w->nslots = WIRE_SLOTS;
    w->slots = xcalloc(w->nslots, sizeof(*w->slots));
    for (size_t i = 0; i < w->nslots; i++) {
        struct wire_slot *s = &w->slots[i];
        s->w = w;
        nng_ctx_open(&s->ctx, w->sock);
        nng_aio_alloc(&s->aio, slot_cb, s);
        slot_recv(s);
    }
    *out = w;
    return 0;
}

void
wire_reply(struct wire_req *req, int type, json_t *body)
{
    struct wire_slot *s = req->slot;
    json_decref(req->body);
    req->body = NULL;
    if (s->w->closing) {
        s->st = SLOT_DEAD;
        return;
    }
    slot_send(s, type, body);
}

void
wire_reply_error(struct wire_req *req, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *b = json_pack("{s:s, s:s}", "code", code, "message", msg);
    wire_reply(req, PROTO_ERROR, b);
    json_decref(b);
}

void
wire_drop(struct wire_req *req)
{
    struct wire_slot *s = req->slot;
    json_decref(req->body);
    req->body = NULL;
    if (s->w->closing) {
        s->st = SLOT_DEAD;
        return;
    }
    slot_recv(s);
}

static void
async_close_cb(uv_handle_t *h)
{
    struct wire *w = h->data;
    if (--w->open_handles > 0 || w->abandoned)
        return;
    pthread_mutex_destroy(&w->mu);
    free(w->url);
    free(w);
}

/* The nng side of the stop (thread of its own, see wire_stop). */
static void
wire__close_nng(void *arg)
{
    struct wire *w = arg;
    /* Stop every operation first (their callbacks see closing and start no
     * other), then close the contexts, then the socket: closing the socket
     * first raced with sends still in flight and could hang in nng_close. */
    for (size_t i = 0; i < w->nslots; i++)
        nng_aio_stop(w->slots[i].aio);
    for (size_t i = 0; i < w->nslots; i++)
        nng_ctx_close(w->slots[i].ctx);
    nng_close(w->sock);
}

/* How long the stop waits for nng to let go of the socket. */
#define WIRE_CLOSE_WAIT_MS 3000

void
wire_stop(struct wire *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->closing = 1;
    pthread_mutex_unlock(&w->mu);
    /* nng 1.5 can still hang in nng_close when workers drop their
     * connections at the same moment (nanomsg/nng#1543; the worker's side
     * works around it the same way). The state is committed before the link
     * stops, so the scheduler exits without waiting for nng: what nng still
     * holds (slots, messages) is left to the exit. */
    if (!bounded_run(wire__close_nng, w, WIRE_CLOSE_WAIT_MS)) {
        LOG(LOG_WARN, "CAIRN-NNG-CLOSE",
            "closing the worker link hangs (an nng bug); exiting without waiting for it");
        w->abandoned = true;
    } else {
        for (size_t i = 0; i < w->nslots; i++)
            nng_aio_free(w->slots[i].aio);
        /* messages that reached the queue but not the loop */
        for (struct wire_slot *s = w->qhead; s; s = s->qnext)
            if (s->msg)
                nng_msg_free(s->msg);
        free(w->slots);
        free(w->gone_pipes);
        w->gone_pipes = NULL;
    }
    if (w->tls)
        uv_close((uv_handle_t *)&w->tls_timer, async_close_cb);
    uv_close((uv_handle_t *)&w->async, async_close_cb);
}
