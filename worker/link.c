/* link.c - the worker's connection to the scheduler (prefix: link_).
 *
 * Owns the nng socket, its two aios and the two threads that use them (the
 * poll thread and the sender, link.h), and the state they share with the
 * loop under one mutex: the inbox of WORK the poll thread received, the
 * queue of messages for the sender, the free-slot count and held leases a
 * POLL reports, and what WELCOME said. Lifecycle: link_open (socket, dial)
 * -> link_start (threads) -> ... -> link_shutdown (threads wind down) ->
 * link_close (flush, stop, close, free).
 *
 * Every message is a struct msg packed with msg_pack and every reply is
 * read with proto_decode + msg_decode: no body is taken apart by hand. A
 * reply whose frame is fine but whose body does not decode is logged
 * (CAIRN-WIRE-REJECT) and counts as an answer of its type, so an ACK that
 * cannot be read still settles what it answers, as before.
 */
#include "link.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "bounded.h"
#include "err.h"
#include "ident.h"
#include "image_gc.h"
#include "log.h"
#include "util.h"

#define REPLY_TIMEOUT_MS 5000
#define SEND_BATCH_MAX 256
#define SEND_BATCH_BYTES (4 * 1024 * 1024)
#define CLOSE_WAIT_MS 2000
/* A STARTED waits this long for what follows it: a task shorter than that
 * sends STARTED, RESULT and (in the ACK) its next lease in one exchange */
#define STARTED_HOLD_MS 50
#define GAVE_UP_MAX 64 /* requests given up on, remembered until the scheduler heard of them */

/* A message waiting for the sender. */
struct link__out {
    struct msg m;
    int64_t at; /* monotonic ms when queued */
    struct link__out *next;
};

struct link {
    struct link_config cfg;
    struct proto_key key;
    char nonce[72]; /* the scheduler's challenge for the next HELLO (poll thread) */
    nng_socket sock;
    nng_aio *poll_aio, *send_aio; /* one per thread; stopped to end them */
    pthread_t poll_thread, send_thread;
    bool started;

    pthread_mutex_t mu;
    pthread_cond_t cond;
    /* poll thread -> loop */
    struct msg_work inbox;
    size_t cap_leases, cap_bad, cap_cancel;
    /* loop -> sender */
    struct link__out *out_head, *out_tail;
    size_t out_log_bytes; /* LOG data queued and not yet answered */
    /* what a POLL reports */
    int free_slots;
    int64_t *held, *queued;
    size_t nheld, nqueued;
    bool stopping;
    bool registered;
    bool draining;
    int64_t heartbeat_ms;
    int64_t lease_ttl_ms; /* WELCOME's */
    int64_t peer_version; /* the lower of the two msg versions */
    char *artifact_uri;   /* from WELCOME */
    int64_t api_port;     /* from WELCOME, 0: none */
    bool direct;          /* the store is reached directly (link_artifacts_direct) */
    bool direct_known;    /* direct was decided after a WELCOME */
    /* the requests whose answer may bring leases (POLL, a BATCH with free):
     * numbered, and those whose answer was not waited for to the end are
     * told to the scheduler, which sends their leases again */
    int64_t seq;
    int64_t gave_up[GAVE_UP_MAX];
    size_t ngave_up;
};

/* Does this host see the store at uri itself: a file store whose marker
 * holds id, or an S3 store (every worker reaches it over the network, with
 * credentials of its own; the scheduler's blob routes serve file stores)? */
static bool
link__sees_store(const char *uri, const char *id)
{
    if (uri && strncmp(uri, "s3://", 5) == 0)
        return true;
    if (!uri || strncmp(uri, "file://", 7) != 0)
        return false;
    if (!id)
        return true; /* an older scheduler: as before, a file store is shared */
    char *path = xasprintf("%s/.cairn-store-id", uri + 7);
    char buf[80] = "";
    FILE *f = fopen(path, "r");
    free(path);
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n ")] = '\0';
    return strcmp(buf, id) == 0;
}

static void
link__sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool
link__stopping(struct link *l)
{
    pthread_mutex_lock(&l->mu);
    bool s = l->stopping;
    pthread_mutex_unlock(&l->mu);
    return s;
}

/* ---- one request, one reply ---- */

/* Send req on ctx and wait for the reply. Returns 0 when a reply frame
 * arrived: *rtype is its type and *reply the decoded body, or zeroed (type
 * 0) if the body did not decode (logged). Else CAIRN_EINVAL (req cannot be
 * encoded), CAIRN_ENET (no answer in time) or the frame's error (logged). */
static int
link__xfer(struct link *l, nng_ctx ctx, nng_aio *aio, const struct msg *req, int timeout_ms,
           int *rtype, struct msg *reply)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    nng_msg *m = NULL;
    void *body = NULL;
    char err[256];
    int rc;

    memset(reply, 0, sizeof(*reply));
    if ((rc = msg_pack(&l->key, req, &buf, &len)) != 0)
        return rc == CAIRN_ERANGE ? rc : CAIRN_EINVAL;
    if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, buf, len) != 0) {
        free(buf);
        if (m)
            nng_msg_free(m);
        return CAIRN_ENOMEM;
    }
    free(buf);
    nng_aio_set_msg(aio, m);
    nng_aio_set_timeout(aio, REPLY_TIMEOUT_MS);
    nng_ctx_send(ctx, aio);
    nng_aio_wait(aio);
    if (nng_aio_result(aio) != 0) {
        nng_msg_free(nng_aio_get_msg(aio));
        return CAIRN_ENET;
    }
    nng_aio_set_timeout(aio, timeout_ms);
    nng_ctx_recv(ctx, aio);
    nng_aio_wait(aio);
    if (nng_aio_result(aio) != 0)
        return CAIRN_ENET;
    m = nng_aio_get_msg(aio);
    rc = proto_decode(&l->key, nng_msg_body(m), nng_msg_len(m), rtype, &body, err, sizeof(err));
    nng_msg_free(m);
    if (rc) {
        LOG(LOG_ERR, "CAIRN-WIRE-REJECT", "bad reply from the scheduler: %s", err);
        return rc;
    }
    if (msg_decode(*rtype, body, reply, err, sizeof(err)) != 0)
        LOG(LOG_ERR, "CAIRN-WIRE-REJECT", "bad %s reply from the scheduler: %s",
            proto_type_name(*rtype), err);
    json_decref(body);
    return 0;
}

/* The code and message of an ERROR reply ("" if it did not decode). */
static const char *
link__error_code(const struct msg *r)
{
    return r->type == PROTO_ERROR ? r->u.error.code : "";
}

static const char *
link__error_message(const struct msg *r)
{
    return r->type == PROTO_ERROR ? r->u.error.message : NULL;
}

/* ---- requests given up on ---- */

/* The number of the next request that may bring leases, and a copy of the
 * requests given up on for it to report (*gu: free it). */
static int64_t
link__seq_next(struct link *l, int64_t **gu, size_t *ngu)
{
    pthread_mutex_lock(&l->mu);
    int64_t seq = ++l->seq;
    *ngu = l->ngave_up;
    *gu = l->ngave_up ? xmalloc(l->ngave_up * sizeof(**gu)) : NULL;
    if (l->ngave_up)
        memcpy(*gu, l->gave_up, l->ngave_up * sizeof(**gu));
    pthread_mutex_unlock(&l->mu);
    return seq;
}

/* How a request that reported what was given up on ended. */
enum link__end {
    LINK_HEARD,  /* answered (WORK, ACK): the scheduler heard what it reported */
    LINK_LOST,   /* not waited for to the end: leases in its answer never come */
    LINK_OTHER,  /* refused, or never sent */
};

/* A request numbered seq (0: one that cannot bring leases) that reported
 * gu ended as end says. */
static void
link__seq_done(struct link *l, int64_t seq, enum link__end end, const int64_t *gu, size_t ngu)
{
    pthread_mutex_lock(&l->mu);
    if (end == LINK_HEARD) {
        size_t k = 0;
        for (size_t i = 0; i < l->ngave_up; i++) {
            bool told = false;
            for (size_t j = 0; j < ngu && !told; j++)
                told = gu[j] == l->gave_up[i];
            if (!told)
                l->gave_up[k++] = l->gave_up[i];
        }
        l->ngave_up = k;
    } else if (end == LINK_LOST && seq > 0) {
        if (l->ngave_up == GAVE_UP_MAX) { /* the oldest goes: its leases expire */
            memmove(l->gave_up, l->gave_up + 1, (GAVE_UP_MAX - 1) * sizeof(*l->gave_up));
            l->ngave_up--;
        }
        l->gave_up[l->ngave_up++] = seq;
    }
    pthread_mutex_unlock(&l->mu);
}

static enum link__end
link__ended(int rc, int rtype)
{
    return rc == CAIRN_ENET                       ? LINK_LOST
           : rc == 0 && rtype != PROTO_ERROR ? LINK_HEARD
                                                  : LINK_OTHER;
}

/* ---- the poll thread ---- */

#define LINK_CHALLENGED 1 /* link__hello1: say HELLO again (the scheduler sent a nonce to
                             answer, or the worker found it reaches the store itself) */

static int link__hello1(struct link *l, nng_ctx ctx, nng_aio *aio);

/* HELLO, and again with the nonce if the scheduler challenges it. */
static int
link__hello(struct link *l, nng_ctx ctx, nng_aio *aio)
{
    int rc = link__hello1(l, ctx, aio);
    for (int i = 0; i < 4 && rc == LINK_CHALLENGED; i++)
        rc = link__hello1(l, ctx, aio);
    return rc == LINK_CHALLENGED ? CAIRN_EAUTH : rc;
}

static int
link__hello1(struct link *l, nng_ctx ctx, nng_aio *aio)
{
    struct msg m, r;
    int rtype = 0, rc;

    memset(&m, 0, sizeof(m));
    m.type = PROTO_HELLO;
    /* borrowed strings: m is never msg_cleared */
    m.u.hello.worker = (char *)l->cfg.name;
    m.u.hello.slots = l->cfg.slots;
    m.u.hello.labels = (struct msg_kv *)l->cfg.labels;
    m.u.hello.nlabels = l->cfg.nlabels;
    m.u.hello.gpus = (struct msg_gpu *)l->cfg.gpus;
    m.u.hello.ngpus = l->cfg.ngpus;
    m.u.hello.pid = (int64_t)getpid();
    m.u.hello.host = (char *)l->cfg.host;
    m.u.hello.version = MSG_VERSION;
    m.u.hello.prefetch = l->cfg.prefetch;
    char *cert = NULL, *sig = NULL, perr[256];
    if (l->cfg.ident) {
        /* prove the name with the certificate's key (ident.h) */
        m.u.hello.cert_ts = clock_wall_ms();
        if (ident_prove(l->cfg.ident, l->cfg.name, m.u.hello.cert_ts, &cert, &sig, perr,
                        sizeof(perr)) != 0) {
            LOG(LOG_ERR, "CAIRN-WORKER-REFUSED", "%s", perr);
            return CAIRN_EAUTH;
        }
        m.u.hello.cert = cert;
        m.u.hello.cert_sig = sig;
    }
    if (l->nonce[0])
        m.u.hello.nonce = l->nonce;
    /* the store it reaches itself, as found after the last WELCOME */
    pthread_mutex_lock(&l->mu);
    char *direct_uri = l->direct && l->artifact_uri ? xstrdup(l->artifact_uri) : NULL;
    pthread_mutex_unlock(&l->mu);
    if (direct_uri) {
        m.u.hello.direct_stores = &direct_uri;
        m.u.hello.ndirect_stores = 1;
    }
    rc = link__xfer(l, ctx, aio, &m, REPLY_TIMEOUT_MS, &rtype, &r);
    free(cert);
    free(sig);
    l->nonce[0] = '\0'; /* used once */
    bool announced = direct_uri != NULL;
    free(direct_uri);
    if (rc != 0)
        return rc;
    if (rtype == PROTO_ERROR && !strcmp(link__error_code(&r), "challenge")) {
        /* a shared token: answer this connection's nonce (handlers.c) */
        const char *n = link__error_message(&r);
        snprintf(l->nonce, sizeof(l->nonce), "%s", n ? n : "");
        msg_clear(&r);
        return LINK_CHALLENGED;
    }
    if (rtype != PROTO_WELCOME) {
        const char *why = link__error_message(&r);
        LOG(LOG_ERR, "CAIRN-WORKER-REFUSED", "the scheduler refused HELLO: %s", why ? why : "?");
        msg_clear(&r);
        return CAIRN_EAUTH;
    }
    if (r.type != PROTO_WELCOME)
        return CAIRN_EPROTO; /* logged by link__xfer */
    pthread_mutex_lock(&l->mu);
    l->heartbeat_ms = r.u.welcome.heartbeat_ms;
    l->lease_ttl_ms = r.u.welcome.lease_ttl_ms;
    if (r.u.welcome.artifacts) {
        free(l->artifact_uri);
        l->artifact_uri = r.u.welcome.artifacts;
        r.u.welcome.artifacts = NULL;
    }
    l->peer_version = r.u.welcome.version < MSG_VERSION ? r.u.welcome.version : MSG_VERSION;
    l->api_port = r.u.welcome.api_port;
    bool direct = l->cfg.artifacts_direct == LINK_DIRECT_YES ||
                  (l->cfg.artifacts_direct == LINK_DIRECT_AUTO &&
                   link__sees_store(l->artifact_uri, r.u.welcome.store_id));
    bool was_known = l->direct_known;
    l->direct = direct;
    l->direct_known = true;
    l->registered = true;
    pthread_mutex_unlock(&l->mu);
    msg_clear(&r);
    if (!was_known || direct != announced)
        LOG(LOG_NOTICE, "CAIRN-WORKER-STORE",
            "artifact store %s: %s", l->artifact_uri ? l->artifact_uri : "(none)",
            direct ? "reached directly" : "through the scheduler's API");
    if (direct != announced)
        return LINK_CHALLENGED; /* say HELLO again, announcing it */
    LOG(LOG_NOTICE, "CAIRN-WORKER-REGISTERED", "registered with %s as %s (%d slots)", l->cfg.url,
        l->cfg.name, l->cfg.slots);
    return 0;
}

/* Append src's leases, refused leases and cancels to the inbox (moved:
 * src keeps only its empty arrays). Under mu. */
static void
link__inbox_add(struct link *l, struct msg_work *src)
{
    struct msg_work *in = &l->inbox;

    xgrow((void **)&in->leases, &l->cap_leases, in->nleases + src->nleases, sizeof(*in->leases));
    xgrow((void **)&in->bad, &l->cap_bad, in->nbad + src->nbad, sizeof(*in->bad));
    xgrow((void **)&in->cancel, &l->cap_cancel, in->ncancel + src->ncancel, sizeof(*in->cancel));
    if (src->nleases)
        memcpy(in->leases + in->nleases, src->leases, src->nleases * sizeof(*src->leases));
    if (src->nbad)
        memcpy(in->bad + in->nbad, src->bad, src->nbad * sizeof(*src->bad));
    if (src->ncancel)
        memcpy(in->cancel + in->ncancel, src->cancel, src->ncancel * sizeof(*src->cancel));
    in->nleases += src->nleases;
    in->nbad += src->nbad;
    in->ncancel += src->ncancel;
    src->nleases = src->nbad = src->ncancel = 0;
}

/* Hand what a WORK (or an ACK's work) brought to the loop. */
static void
link__take(struct link *l, struct msg_work *w)
{
    size_t nl = w->nleases + w->nbad, nc = w->ncancel;
    if (!nl && !nc)
        return;
    pthread_mutex_lock(&l->mu);
    bool stop = l->stopping; /* the loop is gone or going: nobody would read it */
    if (!stop) {
        link__inbox_add(l, w);
        l->free_slots -= (int)nl; /* reserved until the loop starts them */
    }
    pthread_mutex_unlock(&l->mu);
    if (!stop && l->cfg.wake_cb)
        l->cfg.wake_cb(l->cfg.ud);
}

static void *
link__poll_main(void *arg)
{
    struct link *l = arg;
    nng_ctx ctx;
    nng_aio *aio = l->poll_aio;
    int backoff = 100;
    nng_ctx_open(&ctx, l->sock);
    while (!link__stopping(l)) {
        pthread_mutex_lock(&l->mu);
        bool reg = l->registered;
        pthread_mutex_unlock(&l->mu);
        if (!reg) {
            if (link__hello(l, ctx, aio) != 0) {
                link__sleep_ms(backoff);
                backoff = backoff < 2000 ? backoff * 2 : 2000;
            } else {
                backoff = 100;
            }
            continue;
        }
        struct msg m, r;
        memset(&m, 0, sizeof(m));
        m.type = PROTO_POLL;
        pthread_mutex_lock(&l->mu);
        /* while a lease handed out is not yet started, say there is no room;
         * a draining worker only renews its leases and never leaves a POLL
         * waiting (the scheduler would answer it with work when a slot
         * frees) */
        bool draining = l->draining;
        m.u.poll.worker = (char *)l->cfg.name; /* borrowed */
        m.u.poll.free = draining ? 0 : l->free_slots;
        size_t nh = l->nheld + l->nqueued;
        m.u.poll.leases = nh ? xmalloc(nh * sizeof(*l->held)) : NULL;
        if (l->nheld)
            memcpy(m.u.poll.leases, l->held, l->nheld * sizeof(*l->held));
        if (l->nqueued)
            memcpy(m.u.poll.leases + l->nheld, l->queued, l->nqueued * sizeof(*l->queued));
        m.u.poll.nleases = nh;
        m.u.poll.wait_ms = draining ? 0 : l->heartbeat_ms;
        int64_t hb = l->heartbeat_ms;
        pthread_mutex_unlock(&l->mu);
        if (l->cfg.images_dir) {
            imggc_list(l->cfg.images_dir, &m.u.poll.images, &m.u.poll.image_sizes,
                       &m.u.poll.nimages);
            m.u.poll.nimage_sizes = m.u.poll.nimages;
        }
        m.u.poll.seq = link__seq_next(l, &m.u.poll.gave_up, &m.u.poll.ngave_up);
        int rtype = 0;
        int rc = link__xfer(l, ctx, aio, &m, (int)hb + REPLY_TIMEOUT_MS, &rtype, &r);
        link__seq_done(l, m.u.poll.seq, link__ended(rc, rtype), m.u.poll.gave_up,
                       m.u.poll.ngave_up);
        free(m.u.poll.gave_up);
        free(m.u.poll.leases);
        for (size_t i = 0; i < m.u.poll.nimages; i++)
            free(m.u.poll.images[i]);
        free(m.u.poll.images);
        free(m.u.poll.image_sizes);
        if (rc) {
            if (rc == CAIRN_ENET)
                LOG(LOG_WARN, "CAIRN-SCHEDULER-UNREACHABLE",
                    "no answer from the scheduler at %s; retrying", l->cfg.url);
            link__sleep_ms(backoff);
            backoff = backoff < 2000 ? backoff * 2 : 2000;
            continue;
        }
        backoff = 100;
        if (rtype == PROTO_ERROR) {
            const char *code = link__error_code(&r), *why = link__error_message(&r);
            LOG(LOG_WARN, "CAIRN-POLL-ERROR", "scheduler: %s", why ? why : code);
            if (!strcmp(code, "unknown_worker")) {
                pthread_mutex_lock(&l->mu);
                l->registered = false;
                pthread_mutex_unlock(&l->mu);
            } else {
                link__sleep_ms(1000);
            }
            msg_clear(&r);
            continue;
        }
        if (draining) /* next heartbeat */
            for (int64_t t = 0; t < hb && !link__stopping(l); t += 100)
                link__sleep_ms(100);
        if (rtype != PROTO_WORK || r.type != PROTO_WORK) {
            msg_clear(&r);
            continue;
        }
        link__take(l, &r.u.work);
        msg_clear(&r);
    }
    nng_ctx_close(ctx);
    return NULL;
}

/* ---- the sender ---- */

/* Point item at what m holds (borrowed: the batch is never msg_cleared). */
static void
link__item(struct msg_item *item, const struct msg *m)
{
    memset(item, 0, sizeof(*item));
    item->type = m->type;
    if (m->type == PROTO_STARTED)
        item->u.started = m->u.started;
    else if (m->type == PROTO_LOG)
        item->u.log = m->u.log;
    else
        item->u.result = m->u.result;
}

/* What the scheduler said about the RESULTs among head..last (sent as a
 * BATCH, or as the one message head). */
static void
link__check_results(const struct link__out *head, const struct link__out *last, bool batched,
                    const struct msg *r)
{
    size_t i = 0;
    for (const struct link__out *q = head;; q = q->next, i++) {
        const struct msg_ack *res = NULL;
        if (r->type == PROTO_ACK)
            res = !batched ? &r->u.ack : i < r->u.ack.nresults ? &r->u.ack.results[i] : NULL;
        if (q->m.type == PROTO_RESULT && res && !res->ok)
            LOG(LOG_WARN, "CAIRN-RESULT-REJECTED", "result for lease %lld rejected: %s",
                (long long)q->m.u.result.lease_id, res->reason ? res->reason : "");
        if (q == last)
            break;
    }
}

/* How much longer the sender holds what is queued: while only STARTEDs
 * younger than STARTED_HOLD_MS wait (and the worker is not stopping or
 * draining), the time until the oldest is that old; else 0. Under mu. */
static int64_t
link__hold_ms(const struct link *l)
{
    if (l->stopping || l->draining || !l->out_head)
        return 0;
    for (const struct link__out *q = l->out_head; q; q = q->next)
        if (q->m.type != PROTO_STARTED)
            return 0;
    int64_t left = l->out_head->at + STARTED_HOLD_MS - clock_mono_ms();
    return left > 0 ? left : 0;
}

/* The sender delivers messages in order; each is retried until the
 * scheduler answers it (an ACK, even {ok:false}, settles it). */
static void *
link__send_main(void *arg)
{
    struct link *l = arg;
    nng_ctx ctx;
    nng_aio *aio = l->send_aio;
    size_t batch_max = SEND_BATCH_MAX;
    nng_ctx_open(&ctx, l->sock);
    for (;;) {
        pthread_mutex_lock(&l->mu);
        while (!l->out_head && !l->stopping)
            pthread_cond_wait(&l->cond, &l->mu);
        struct link__out *head = l->out_head;
        if (!head) { /* stopping and nothing left */
            pthread_mutex_unlock(&l->mu);
            break;
        }
        int64_t hold = link__hold_ms(l);
        if (hold > 0) { /* only STARTEDs: wait for a RESULT or LOG to join them */
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += hold / 1000;
            ts.tv_nsec += (long)(hold % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&l->cond, &l->mu, &ts);
            pthread_mutex_unlock(&l->mu);
            continue;
        }
        bool reg = l->registered;
        bool stop = l->stopping;
        pthread_mutex_unlock(&l->mu);
        if (!reg) {
            if (stop)
                break; /* cannot deliver while stopping unregistered */
            link__sleep_ms(100);
            continue;
        }
        /* everything queued goes in one round trip (one commit at the
         * scheduler): a BATCH when there is more than one message */
        size_t n = 0, bytes = 0;
        struct link__out *last = head;
        pthread_mutex_lock(&l->mu);
        for (struct link__out *q = head; q && n < batch_max && bytes < SEND_BATCH_BYTES;
             q = q->next) {
            bytes += q->m.type == PROTO_LOG ? q->m.u.log.data_len : 64;
            last = q;
            n++;
        }
        /* with room for more work, even one message goes as a BATCH saying
         * so: the answer brings the next leases (no wait for a POLL) */
        int want = l->draining || l->free_slots < 0 ? 0 : l->free_slots;
        pthread_mutex_unlock(&l->mu);
        int64_t now = clock_mono_ms();
        for (struct link__out *q = head;; q = q->next) {
            if (q->m.type == PROTO_STARTED) /* when the task started, as of now */
                q->m.u.started.age_ms = now > q->at ? now - q->at : 0;
            if (q == last)
                break;
        }
        struct msg req = head->m, r;
        struct msg_item *items = NULL;
        int64_t seq = 0, *gu = NULL;
        size_t ngu = 0;
        if (n > 1 || want > 0) {
            size_t k = 0;
            items = xcalloc(n, sizeof(*items));
            for (struct link__out *q = head;; q = q->next) {
                link__item(&items[k++], &q->m);
                if (q == last)
                    break;
            }
            memset(&req, 0, sizeof(req));
            req.type = PROTO_BATCH;
            req.u.batch.worker = (char *)l->cfg.name;
            req.u.batch.items = items;
            req.u.batch.nitems = n;
            req.u.batch.free = want;
            /* it reports the requests given up on; numbered if it may
             * bring leases */
            seq = link__seq_next(l, &gu, &ngu);
            req.u.batch.seq = want > 0 ? seq : 0;
            req.u.batch.gave_up = gu;
            req.u.batch.ngave_up = ngu;
        }
        int rtype = 0;
        int rc = link__xfer(l, ctx, aio, &req, REPLY_TIMEOUT_MS, &rtype, &r);
        if (req.type == PROTO_BATCH)
            link__seq_done(l, req.u.batch.seq, link__ended(rc, rtype), gu, ngu);
        free(gu);
        free(items);
        if (rc == CAIRN_ERANGE && n > 1) {
            /* the BATCH came out larger than a frame may be (escaping can
             * make JSON much longer than the log bytes): fewer at a time */
            batch_max = n / 2;
            continue;
        }
        if (rc == CAIRN_EINVAL || rc == CAIRN_ERANGE) {
            /* never expected: everything queued is well-formed */
            LOG(LOG_ERR, "CAIRN-SEND-ENCODE",
                "cannot encode %s for the scheduler (%zu "
                "message%s): dropped",
                proto_type_name(req.type), n, n == 1 ? "" : "s");
        } else if (rc) {
            if (stop)
                break;
            link__sleep_ms(200);
            continue;
        } else if (rtype == PROTO_ERROR) {
            if (!strcmp(link__error_code(&r), "unknown_worker")) {
                /* the scheduler restarted: register again, then resend */
                pthread_mutex_lock(&l->mu);
                l->registered = false;
                pthread_mutex_unlock(&l->mu);
                msg_clear(&r);
                link__sleep_ms(100);
                continue;
            }
            const char *why = link__error_message(&r);
            LOG(LOG_ERR, "CAIRN-SEND-REFUSED", "scheduler refused %s: %s",
                proto_type_name(req.type), why ? why : "");
        } else if (rtype == PROTO_ACK) {
            link__check_results(head, last, n > 1 || want > 0, &r);
            if (r.type == PROTO_ACK && r.u.ack.work)
                link__take(l, r.u.ack.work);
        }
        msg_clear(&r);
        batch_max = SEND_BATCH_MAX;
        pthread_mutex_lock(&l->mu);
        l->out_head = last->next;
        if (!l->out_head)
            l->out_tail = NULL;
        for (struct link__out *q = head;; q = q->next) {
            if (q->m.type == PROTO_LOG)
                l->out_log_bytes -= q->m.u.log.data_len;
            if (q == last)
                break;
        }
        pthread_mutex_unlock(&l->mu);
        for (struct link__out *q = head, *next; q; q = next) {
            bool end = q == last;
            next = q->next;
            msg_clear(&q->m);
            free(q);
            if (end)
                break;
        }
    }
    nng_ctx_close(ctx);
    return NULL;
}

/* ---- the loop's side ---- */

void
link_send(struct link *l, struct msg *m)
{
    struct link__out *o = xcalloc(1, sizeof(*o));
    o->m = *m;
    o->at = clock_mono_ms();
    memset(m, 0, sizeof(*m));
    pthread_mutex_lock(&l->mu);
    if (o->m.type == PROTO_LOG)
        l->out_log_bytes += o->m.u.log.data_len;
    if (l->out_tail)
        l->out_tail->next = o;
    else
        l->out_head = o;
    l->out_tail = o;
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->mu);
}

size_t
link_queued_log_bytes(struct link *l)
{
    pthread_mutex_lock(&l->mu);
    size_t n = l->out_log_bytes;
    pthread_mutex_unlock(&l->mu);
    return n;
}

void
link_take_work(struct link *l, struct msg *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&l->mu);
    if (l->inbox.nleases || l->inbox.nbad || l->inbox.ncancel) {
        out->type = PROTO_WORK;
        out->u.work = l->inbox;
        memset(&l->inbox, 0, sizeof(l->inbox));
        l->cap_leases = l->cap_bad = l->cap_cancel = 0;
    }
    pthread_mutex_unlock(&l->mu);
}

void
link_slot_free(struct link *l)
{
    pthread_mutex_lock(&l->mu);
    l->free_slots++;
    pthread_mutex_unlock(&l->mu);
}

void
link_set_held(struct link *l, const int64_t *ids, size_t n)
{
    int64_t *copy = n ? xmalloc(n * sizeof(*copy)) : NULL;
    if (n)
        memcpy(copy, ids, n * sizeof(*copy));
    pthread_mutex_lock(&l->mu);
    free(l->held);
    l->held = copy;
    l->nheld = n;
    pthread_mutex_unlock(&l->mu);
}

void
link_set_queued(struct link *l, const int64_t *ids, size_t n)
{
    int64_t *copy = n ? xmalloc(n * sizeof(*copy)) : NULL;
    if (n)
        memcpy(copy, ids, n * sizeof(*copy));
    pthread_mutex_lock(&l->mu);
    free(l->queued);
    l->queued = copy;
    l->nqueued = n;
    pthread_mutex_unlock(&l->mu);
}

void
link_drain(struct link *l)
{
    pthread_mutex_lock(&l->mu);
    l->draining = true;
    pthread_cond_broadcast(&l->cond); /* a held STARTED goes now */
    pthread_mutex_unlock(&l->mu);
}

char *
link_artifact_uri(struct link *l)
{
    pthread_mutex_lock(&l->mu);
    char *uri = l->artifact_uri ? xstrdup(l->artifact_uri) : NULL;
    pthread_mutex_unlock(&l->mu);
    return uri;
}

bool
link_artifacts_direct(struct link *l)
{
    pthread_mutex_lock(&l->mu);
    bool d = l->direct;
    pthread_mutex_unlock(&l->mu);
    return d;
}

int64_t
link_lease_ttl_ms(struct link *l)
{
    pthread_mutex_lock(&l->mu);
    int64_t ttl = l->lease_ttl_ms;
    pthread_mutex_unlock(&l->mu);
    return ttl;
}

char *
link_api_url(struct link *l)
{
    if (l->cfg.api_url)
        return xstrdup(l->cfg.api_url);
    pthread_mutex_lock(&l->mu);
    int64_t port = l->api_port;
    pthread_mutex_unlock(&l->mu);
    if (port <= 0)
        return NULL;
    /* the host of the link's URL: "tcp://HOST:PORT", "tls+tcp://[v6]:PORT" */
    const char *h = strstr(l->cfg.url, "://");
    if (!h)
        return NULL;
    h += 3;
    const char *end = *h == '[' ? strchr(h, ']') : strrchr(h, ':');
    if (!end)
        return NULL;
    if (*h == '[')
        end++;
    return xasprintf("http://%.*s:%" PRId64, (int)(end - h), h, port);
}

void
link_shutdown(struct link *l)
{
    pthread_mutex_lock(&l->mu);
    l->stopping = true;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mu);
}

/* ---- open and close ---- */

/* Dial the scheduler; nng reconnects by itself. On a TLS link the first
 * attempt waits for the handshake, so a refused certificate (another CA,
 * expired, the scheduler's name not the expected one) is logged with the
 * reason; later attempts go on in the background. Returns 0, CAIRN_EINVAL
 * (err set) or 1 (the URL is fine: nng could not dial at once). */
static int
link__dial(struct link *l, const struct link_config *cfg, char *err, size_t errlen)
{
    nng_dialer d;
    int rv;
    bool tls = !strncmp(cfg->url, "tls+", 4);
    if (tls != (cfg->ident != NULL))
        return errf(CAIRN_EINVAL, err, errlen,
                    tls ? "%s is a TLS address: give --tls-cert, --tls-key and --tls-ca"
                        : "--tls-cert needs a tls+tcp:// --scheduler address, not %s",
                    cfg->url);
    if ((rv = nng_dialer_create(&d, l->sock, cfg->url)) != 0)
        return errf(CAIRN_EINVAL, err, errlen, "cannot dial %s: %s", cfg->url, nng_strerror(rv));
    if (!tls)
        return nng_dialer_start(d, NNG_FLAG_NONBLOCK) == 0 ? 0 : 1;
    void *tcfg = NULL;
    if (ident_tls_config(cfg->ident, false, cfg->server_name, &tcfg, err, errlen) != 0)
        return CAIRN_EINVAL;
    rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tcfg);
    nng_tls_config_free(tcfg); /* the dialer holds it */
    if (rv != 0)
        return errf(CAIRN_EINVAL, err, errlen, "TLS on %s: %s", cfg->url, nng_strerror(rv));
    if ((rv = nng_dialer_start(d, 0)) == 0)
        return 0;
    if (rv == NNG_EPEERAUTH || rv == NNG_ECRYPTO)
        LOG(LOG_ERR, "CAIRN-TLS-REFUSED",
            "TLS handshake with %s failed: %s (a certificate from another CA, an expired one, "
            "or the scheduler's certificate not named '%s')", cfg->url, nng_strerror(rv),
            cfg->server_name ? cfg->server_name : "?");
    else
        LOG(LOG_WARN, "CAIRN-DIAL", "cannot reach %s yet: %s", cfg->url, nng_strerror(rv));
    return nng_dialer_start(d, NNG_FLAG_NONBLOCK) == 0 ? 0 : 1;
}

int
link_open(struct link **out, const struct link_config *cfg, char *err, size_t errlen)
{
    struct link *l = xcalloc(1, sizeof(*l));
    int rv;

    l->cfg = *cfg;
    /* request numbers start from the clock, so a restarted worker's never
     * meet its predecessor's */
    l->seq = clock_wall_ms();
    if (cfg->key)
        l->key = *cfg->key;
    if ((rv = nng_req0_open(&l->sock)) != 0) {
        free(l);
        return errf(CAIRN_EIO, err, errlen, "cannot open socket: %s", nng_strerror(rv));
    }
    nng_socket_set_ms(l->sock, NNG_OPT_RECONNMINT, 50);
    nng_socket_set_ms(l->sock, NNG_OPT_RECONNMAXT, 1000);
    nng_socket_set_size(l->sock, NNG_OPT_RECVMAXSZ, PROTO_HEADER_LEN + PROTO_MAX_BODY + 64);
    if ((rv = nng_aio_alloc(&l->poll_aio, NULL, NULL)) != 0 ||
        (rv = nng_aio_alloc(&l->send_aio, NULL, NULL)) != 0) {
        nng_aio_free(l->poll_aio);
        nng_close(l->sock);
        free(l);
        return errf(CAIRN_EIO, err, errlen, "%s", nng_strerror(rv));
    }
    if ((rv = link__dial(l, cfg, err, errlen)) != 0) {
        nng_aio_free(l->poll_aio);
        nng_aio_free(l->send_aio);
        nng_close(l->sock);
        free(l);
        if (rv != CAIRN_EINVAL)
            errf(CAIRN_EINVAL, err, errlen, "cannot dial %s", cfg->url);
        return CAIRN_EINVAL;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the STARTED hold's deadline */
    pthread_cond_init(&l->cond, &ca);
    pthread_condattr_destroy(&ca);
    l->free_slots = cfg->slots + cfg->prefetch;
    l->heartbeat_ms = 5000;
    l->peer_version = 1;
    *out = l;
    return 0;
}

int
link_start(struct link *l)
{
    if (pthread_create(&l->poll_thread, NULL, link__poll_main, l) != 0)
        return CAIRN_EIO;
    if (pthread_create(&l->send_thread, NULL, link__send_main, l) != 0) {
        link_shutdown(l);
        nng_aio_stop(l->poll_aio);
        pthread_join(l->poll_thread, NULL);
        return CAIRN_EIO;
    }
    l->started = true;
    return 0;
}

static void
link__close_sock(void *arg)
{
    nng_close(*(nng_socket *)arg);
}

/* nng_close that gives up after ms. nng 1.5 can hang in nng_close when the
 * peer tears the connection down at the same moment (nanomsg/nng#1543, seen
 * here when scheduler and worker stop together); the worker is about to
 * exit, so it does not wait forever. Returns false if it gave up (the
 * closing thread is then left to the exit). */
static bool
close_within(nng_socket sock, int ms)
{
    nng_socket *copy = xmalloc(sizeof(*copy)); /* outlives the link if it hangs */
    *copy = sock;
    if (!bounded_run(link__close_sock, copy, ms))
        return false;
    free(copy);
    return true;
}

void
link_close(struct link *l, int flush_ms)
{
    if (!l)
        return;
    /* give the sender a moment to deliver the last results */
    int64_t deadline = clock_mono_ms() + flush_ms;
    for (;;) {
        pthread_mutex_lock(&l->mu);
        bool empty = l->out_head == NULL;
        pthread_mutex_unlock(&l->mu);
        if (empty || clock_mono_ms() > deadline || !l->started)
            break;
        link__sleep_ms(20);
    }
    /* stop what the threads wait for (they see stopping and return), then
     * close the socket */
    link_shutdown(l);
    nng_aio_stop(l->poll_aio);
    nng_aio_stop(l->send_aio);
    if (l->started) {
        pthread_join(l->poll_thread, NULL);
        pthread_join(l->send_thread, NULL);
    }
    nng_aio_free(l->poll_aio);
    nng_aio_free(l->send_aio);
    if (!close_within(l->sock, CLOSE_WAIT_MS))
        LOG(LOG_WARN, "CAIRN-NNG-CLOSE",
            "closing the scheduler connection hangs (an nng "
            "bug); exiting without waiting for it");
    while (l->out_head) {
        struct link__out *o = l->out_head;
        l->out_head = o->next;
        msg_clear(&o->m);
        free(o);
    }
    struct msg inbox = {.type = PROTO_WORK};
    inbox.u.work = l->inbox;
    msg_clear(&inbox);
    free(l->held);
    free(l->queued);
    free(l->artifact_uri);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cond);
    free(l);
}
