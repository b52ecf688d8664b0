/* wire.h - the scheduler's end of the worker protocol over nng (prefix: wire_).
 *
 * A rep socket with many contexts, so many workers can each hold a request
 * (a long POLL) at once. nng's threads only move messages: every request is
 * handed to the libuv loop thread (locked queue + uv_async_send; calls
 * coalesce, so the loop drains the whole queue), decoded and checked there
 * (proto.h), and passed to the handler. A frame that fails to decode (bad
 * magic, version, signature, JSON) is logged (CAIRN-WIRE-REJECT) and
 * answered with an ERROR frame; it never reaches the handler.
 *
 * The handler owns the request until it calls wire_reply (at once or on a
 * later loop iteration, e.g. after the store commit) or wire_drop.
 */
#ifndef CAIRN_WIRE_H
#define CAIRN_WIRE_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "proto.h"

struct wire;

struct wire_req {
    struct wire *w;
    void *slot;    /* internal */
    int type;      /* PROTO_* request type */
    json_t *body;  /* owned by the request */
    uint32_t pipe; /* the connection it came on (nng pipe id) */
    json_t *batch; /* an item of a BATCH (no slot): answers go here */
};

typedef void (*wire_handler_fn)(void *ud, struct wire_req *req);
/* A connection closed (called on the loop thread). */
typedef void (*wire_gone_fn)(void *ud, uint32_t pipe);

/* Be told when a connection closes, e.g. to forget a POLL held for it. */
void wire_on_gone(struct wire *w, wire_gone_fn fn);

struct ident;
/* Listen on url (e.g. "tcp://0.0.0.0:7781"). key may have len 0 (no token).
 * id (borrowed, may be NULL) is the scheduler's certificate: a tls+tcp://
 * url needs one and a plain one must have none; the listener then runs
 * mutual TLS and refuses a worker without a certificate from id's CA.
 * Returns 0, CAIRN_ENET (err says why). */
int wire_start(struct wire **out, uv_loop_t *loop, const char *url, const struct proto_key *key,
               const struct ident *id, wire_handler_fn handler, void *ud, char *err,
               size_t errlen);
/* The URL workers dial: the url given to wire_start, with a TCP port of 0
 * replaced by the port it bound. Owned by w, valid until wire_stop. */
const char *wire_url(const struct wire *w);
/* Reply and release req. body is borrowed. */
void wire_reply(struct wire_req *req, int type, json_t *body);
/* Reply with an ERROR frame {code, message} and release req. */
void wire_reply_error(struct wire_req *req, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Release req without answering (the peer's request times out). */
void wire_drop(struct wire_req *req);
/* Close the socket and free everything; requests still held by the handler
 * must be dropped or replied to before. Must be called on the loop thread;
 * the async handle is closed with uv_close, so run the loop once after. */
void wire_stop(struct wire *w);

#endif
