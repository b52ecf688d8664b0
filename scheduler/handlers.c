/* handlers.c - the scheduler's answers to worker requests: one handler per
 * message type in one table (HELLO, POLL, STARTED, LOG, RESULT, BATCH; see
 * proto.h). Each request is decoded once, strictly, into its typed message
 * (msg.h); the handler applies it to the model and holds the answer until
 * the commit that made it durable (commit.h). A request that is refused
 * changed nothing and is answered at once. */
#include <inttypes.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact.h"
#include "commit.h"
#include "core.h"
#include "gpualloc.h"
#include "ident.h"
#include "lease.h"
#include "log.h"
#include "logs.h"
#include "msg.h"
#include "proto.h"
#include "pubjob.h"
#include "runtab.h"
#include "taskstate.h"
#include "util.h"
#include "wire.h"

/* Send m as the answer to req: now (refusals, HELLO) or after the commit. */
static json_t *
encode(const struct msg *m)
{
    json_t *b = msg_encode(m);
    return b ? b : json_object(); /* cannot happen for the messages built here */
}

/* Refuse a request (or one item of a BATCH). */
static void req_error(struct sched *s, struct wire_req *req, const char *code, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));

static void
req_error(struct sched *s, struct wire_req *req, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (req->batch) {
        struct msg m = {.type = PROTO_ACK, .u.ack = {.ok = false, .reason = msg, .code = (char *)code}};
        json_array_append_new(req->batch, encode(&m));
    } else {
        /* at once: a refused request changed nothing that needs a commit */
        struct msg m = {.type = PROTO_ERROR, .u.error = {.code = (char *)code, .message = msg}};
        json_t *b = encode(&m);
        s->cfg.link.reply(req, PROTO_ERROR, b);
        json_decref(b);
    }
}

static void
ack(struct sched *s, struct wire_req *req, bool ok, const char *reason)
{
    struct msg m = {.type = PROTO_ACK, .u.ack = {.ok = ok, .reason = (char *)(reason ? reason : "")}};
    commit_reply(s, req, PROTO_ACK, encode(&m));
}

/* With a shared token, a signed frame proves only that its sender knew the
 * token once: a HELLO captured on one connection could be sent again on
 * another. So each connection gets a fresh nonce (an ERROR "challenge"
 * whose message is the nonce) and its HELLO must carry it; a nonce is used
 * once. Returns whether the HELLO answered this connection's challenge
 * (false: the challenge was sent). */
static bool
challenge_met(struct sched *s, struct wire_req *req, const char *nonce)
{
    struct sched_challenge *c = NULL;
    for (size_t i = 0; i < s->nchallenges; i++)
        if (s->challenges[i].pipe == req->pipe)
            c = &s->challenges[i];
    if (c && nonce && !strcmp(c->nonce, nonce)) {
        *c = s->challenges[--s->nchallenges];
        return true;
    }
    if (nonce)
        LOG(LOG_WARN, "CAIRN-WORKER-REFUSED",
            "HELLO with a nonce this connection was not given (a replay?): challenged again");
    if (!c) {
        xgrow((void **)&s->challenges, &s->capchallenges, s->nchallenges + 1,
              sizeof(*s->challenges));
        c = &s->challenges[s->nchallenges++];
        c->pipe = req->pipe;
    }
    unsigned char r[16];
    if (RAND_bytes(r, sizeof(r)) != 1) {
        req_error(s, req, "internal", "cannot make a nonce");
        return false;
    }
    for (size_t i = 0; i < sizeof(r); i++)
        snprintf(c->nonce + 2 * i, 3, "%02x", r[i]);
    req_error(s, req, "challenge", "%s", c->nonce);
    return false;
}

static void
handle_hello(struct sched *s, struct wire_req *req, const struct msg *m)
{
    const struct msg_hello *h = &m->u.hello;
    char why[512];
    bool proven = false;
    if (s->cfg.ident) {
        /* a TLS link: the name must be the one the worker's certificate
         * carries (ident.h) */
        if (ident_check(s->cfg.ident, h->cert, h->worker, h->cert_ts, h->cert_sig,
                        clock_wall_ms(), why, sizeof(why)) != 0) {
            LOG(LOG_WARN, "CAIRN-WORKER-REFUSED", "HELLO as worker '%s' refused: %s", h->worker,
                why);
            req_error(s, req, "auth", "HELLO as worker '%s' refused: %s", h->worker, why);
            return;
        }
        proven = true;
    }
    if (s->cfg.token && !proven && !challenge_met(s, req, h->nonce))
        return;
    struct sched_worker *w = lease_worker_find(s, h->worker);
    if (w && w->pipe && w->pipe != req->pipe && !proven &&
        clock_mono_ms() - w->last_seen < s->cfg.lease_ttl_ms) {
        /* the name is held by a live connection: a second process cannot
         * take it over (and with it the leases given to that worker) */
        LOG(LOG_WARN, "CAIRN-WORKER-REFUSED",
            "HELLO as worker '%s' refused: that worker is connected on another connection",
            h->worker);
        req_error(s, req, "name_in_use", "worker '%s' is connected on another connection",
                  h->worker);
        return;
    }
    if (!w) {
        w = xcalloc(1, sizeof(*w));
        w->name = xstrdup(h->worker);
        xgrow((void **)&s->workers, &s->capworkers, s->nworkers + 1, sizeof(*s->workers));
        s->workers[s->nworkers++] = w;
    }
    lease_answer_parked(s, w);
    lease_gave_up_reset(w); /* its requests are numbered afresh (a restarted worker) */
    free(w->host);
    w->host = xstrdup(h->host ? h->host : "");
    w->slots = (int)h->slots;
    w->prefetch = (int)h->prefetch;
    json_decref(w->direct_stores);
    w->direct_stores = json_array();
    for (size_t i = 0; i < h->ndirect_stores; i++)
        json_array_append_new(w->direct_stores, json_string(h->direct_stores[i]));
    for (size_t i = 0; i < w->nlabels; i++) {
        free(w->labels[i].key);
        free(w->labels[i].value);
    }
    free(w->labels);
    w->labels = xcalloc(h->nlabels + 1, sizeof(*w->labels));
    w->nlabels = h->nlabels;
    for (size_t i = 0; i < h->nlabels; i++) {
        w->labels[i].key = xstrdup(h->labels[i].key);
        w->labels[i].value = xstrdup(h->labels[i].value);
    }
    /* its GPUs, held again by the leases in flight it had (a restart of
     * either side) before it gets new work */
    gpualloc_set_gpus(w, h->gpus, h->ngpus);
    gpualloc_rebuild(s, w);
    w->alive = true;
    w->stopping = false;
    w->pipe = req->pipe;
    w->last_seen = clock_mono_ms();
    w->last_seen_wall = clock_wall_ms();
    w->connected_at = clock_wall_ms();
    LOG(LOG_INFO, "CAIRN-WORKER-HELLO", "worker %s (%s) joined with %d slots and %zu GPU%s",
        w->name, w->host, w->slots, w->ngpus, w->ngpus == 1 ? "" : "s");
    struct msg r = {.type = PROTO_WELCOME,
                    .u.welcome = {.lease_ttl_ms = s->cfg.lease_ttl_ms,
                                  .heartbeat_ms = s->cfg.heartbeat_ms,
                                  .artifacts = (char *)art_uri(s->art),
                                  .store_id = s->store_id[0] ? s->store_id : NULL,
                                  .api_port = s->api_port,
                                  .version = MSG_VERSION}};
    json_t *b = encode(&r);
    s->cfg.link.reply(req, PROTO_WELCOME, b);
    json_decref(b);
}

/* The registered worker that sent a request, or NULL (refused). */
static struct sched_worker *
req_worker(struct sched *s, struct wire_req *req, const char *name)
{
    struct sched_worker *w = lease_worker_find(s, name);
    if (!w) {
        req_error(s, req, "unknown_worker", "unknown worker '%s'; send HELLO first", name);
        return NULL;
    }
    if (w->pipe != req->pipe) {
        /* a worker's name is bound to the connection its HELLO came on:
         * after a reconnect it says HELLO again (unknown_worker tells it
         * to); anyone else using the name is refused */
        LOG(LOG_WARN, "CAIRN-WORKER-REFUSED",
            "%s as worker '%s' refused: it did not come on the connection that worker said "
            "HELLO on", proto_type_name(req->type), name);
        req_error(s, req, "unknown_worker",
                  "worker '%s' did not say HELLO on this connection; send HELLO first", name);
        return NULL;
    }
    w->last_seen = clock_mono_ms();
    w->last_seen_wall = clock_wall_ms();
    if (!w->alive)
        LOG(LOG_INFO, "CAIRN-WORKER-BACK", "worker %s is back", w->name);
    w->alive = true;
    return w;
}

static void
handle_poll(struct sched *s, struct wire_req *req, const struct msg *m)
{
    const struct msg_poll *p = &m->u.poll;
    struct sched_worker *w = req_worker(s, req, p->worker);
    if (!w)
        return;
    bool given_up = lease_gave_up(s, w, p->seq, p->gave_up, p->ngave_up);
    json_t *cancel = json_array();
    for (size_t i = 0; i < p->nleases; i++) {
        struct sched_ti *ti = lease_lookup(s, p->leases[i]);
        if (ti && lease_owned(ti, w)) {
            ti->lease_expires = clock_mono_ms() + s->cfg.lease_ttl_ms;
            lease_delivered(ti);
        } else {
            json_array_append_new(cancel, json_integer(p->leases[i]));
        }
    }
    if (p->nimages) {
        json_t *imgs = json_array();
        for (size_t i = 0; i < p->nimages; i++)
            json_array_append_new(
                imgs, json_pack("{s:s, s:I}", "digest", p->images[i], "size",
                                (json_int_t)(i < p->nimage_sizes ? p->image_sizes[i] : 0)));
        json_decref(w->images);
        w->images = imgs;
    } else if (w->images) {
        json_decref(w->images);
        w->images = NULL;
    }
    if (given_up) {
        /* read late (a stalled scheduler): the worker no longer waits for
         * the answer, and would never see leases in it; a POLL it parked
         * since stays */
        json_decref(cancel);
        json_t *b = json_pack("{s:[], s:[]}", "leases", "cancel");
        s->cfg.link.reply(req, PROTO_WORK, b);
        json_decref(b);
        return;
    }
    lease_answer_parked(s, w); /* a newer POLL replaces an older one */
    /* trust our own lease count over the worker's (it may not have seen
     * the result we just applied), but never exceed what it offers */
    json_t *leases = lease_dispatch(s, w, (int)p->free, p->seq);
    if (json_array_size(leases) > 0 || json_array_size(cancel) > 0 || p->wait_ms == 0 ||
        s->stopping) {
        /* the leases are encoded already (lease.c): the WORK body is built
         * around them rather than decoded and encoded again */
        commit_reply(s, req, PROTO_WORK,
                     json_pack("{s:o, s:o}", "leases", leases, "cancel", cancel));
        return;
    }
    json_decref(leases);
    json_decref(cancel);
    int64_t wait_ms = p->wait_ms > SCHED_POLL_WAIT_MAX_MS ? SCHED_POLL_WAIT_MAX_MS : p->wait_ms;
    w->parked = req;
    w->parked_seq = p->seq;
    w->parked_free = (int)p->free;
    w->parked_until = clock_mono_ms() + wait_ms;
}

/* The task instance holding the lease a report names, or NULL (answered). */
static struct sched_ti *
req_lease(struct sched *s, struct wire_req *req, int type, const char *worker, int64_t lease_id,
          struct sched_worker **wout)
{
    struct sched_worker *w = req_worker(s, req, worker);
    if (!w)
        return NULL;
    struct sched_ti *ti = lease_lookup(s, lease_id);
    if (ti && ti->worker_name && strcmp(ti->worker_name, w->name) != 0) {
        LOG(LOG_WARN, "CAIRN-LEASE-FOREIGN",
            "worker %s sent %s for lease %" PRId64 ", which was given to worker %s: refused",
            w->name, proto_type_name(type), lease_id, ti->worker_name);
        ack(s, req, false, "lease was given to another worker");
        return NULL;
    }
    if (!ti || !lease_owned(ti, w)) {
        LOG(LOG_WARN, "CAIRN-LEASE-STALE", "worker %s sent %s for lease %" PRId64
            ", which is not current: ignored", w->name, proto_type_name(type), lease_id);
        ack(s, req, false, "lease is not current");
        return NULL;
    }
    *wout = w;
    return ti;
}

static void
handle_started(struct sched *s, struct wire_req *req, const struct msg *m)
{
    struct sched_worker *w;
    struct sched_ti *ti =
        req_lease(s, req, PROTO_STARTED, m->u.started.worker, m->u.started.lease_id, &w);
    if (!ti)
        return;
    lease_delivered(ti);
    if (ti->state == TI_LEASED) {
        /* the worker may hold a STARTED a moment (age_ms): the task started
         * that long ago, and not before its lease */
        int64_t at = clock_wall_ms() - m->u.started.age_ms;
        if (at > ti->started_at)
            ti->started_at = at;
        ts_set_running(s, ti); /* no commit of its own: nothing waits on it */
    }
    ack(s, req, true, NULL);
}

/* A LOG chunk. Offsets count what the worker sent: the chunks stored plus
 * those the scheduler could not store (log_lost), so a chunk after a lost
 * one is not a gap. A chunk that cannot be written (disk full, no file
 * descriptors) is tried once more, then counted as lost: the attempt's log
 * says it is incomplete (log_lost, "complete": false), never silently. */
static void
handle_log(struct sched *s, struct wire_req *req, const struct msg *m)
{
    const struct msg_log *l = &m->u.log;
    struct sched_worker *w;
    struct sched_ti *ti = req_lease(s, req, PROTO_LOG, l->worker, l->lease_id, &w);
    if (!ti)
        return;
    int64_t have = ti->log_size + ti->log_lost;
    if (l->offset > have) {
        ack(s, req, false, "gap in log offsets");
        return;
    }
    size_t skip = (size_t)(have - l->offset);
    if (skip >= l->data_len) { /* a resend of what we have */
        ack(s, req, true, NULL);
        return;
    }
    char werr[512];
    const char *data = l->data + skip;
    size_t len = l->data_len - skip;
    if (logs_append(s, ti, data, len, werr, sizeof(werr)) != 0 &&
        logs_append(s, ti, data, len, werr, sizeof(werr)) != 0) {
        char name[256];
        if (ti->log_lost == 0)
            LOG(LOG_ERR, "CAIRN-LOG-LOST", "%s; the log of %s/%s/%s attempt %d is incomplete "
                "from byte %lld", werr, ti->run->dag, ti->run->run_id,
                sched_ti_name(ti, name, sizeof(name)), ti->attempts, (long long)ti->log_size);
        ti->log_lost += (int64_t)len;
    }
    commit_ti_dirty(s, ti, true);
    ack(s, req, true, NULL);
}

/* Check the artifacts a RESULT reports against what the task declared:
 * every declared output, once. Returns a new array or NULL with err set. */
static json_t *
result_outputs(const struct sched_ti *ti, const struct msg_result *r, char *err, size_t errlen)
{
    const struct dag_task *t = sched_task(ti);
    json_t *res = json_array();
    for (size_t i = 0; i < t->noutputs; i++) {
        const struct msg_output *found = NULL;
        for (size_t k = 0; k < r->noutputs; k++)
            if (!strcmp(r->outputs[k].name, t->outputs[i]))
                found = &r->outputs[k];
        if (!found) {
            snprintf(err, errlen, "declared output '%s' was not stored by the worker",
                     t->outputs[i]);
            json_decref(res);
            return NULL;
        }
        json_array_append_new(res, json_pack("{s:s, s:s, s:I, s:s}", "name", t->outputs[i],
                                             "sha256", found->sha256, "size",
                                             (json_int_t)found->size, "uri", found->uri));
    }
    return res;
}

static json_t *
result_metrics(const struct msg_result *r)
{
    if (!r->nmetrics)
        return NULL;
    json_t *m = json_object();
    for (size_t i = 0; i < r->nmetrics; i++)
        json_object_set_new(m, r->metrics[i].name,
                            r->metrics[i].integer ? json_integer(r->metrics[i].ivalue)
                                                  : json_real(r->metrics[i].value));
    return m;
}

static void
handle_result(struct sched *s, struct wire_req *req, const struct msg *m)
{
    const struct msg_result *r = &m->u.result;
    char err[256];
    struct sched_worker *w;
    struct sched_ti *ti = req_lease(s, req, PROTO_RESULT, r->worker, r->lease_id, &w);
    if (!ti)
        return;
    const char *error = r->error ? r->error : "";
    if (!r->interrupted)
        lease_note_run_time(w, r->duration_ms);
    if (r->interrupted && r->exit_code != 0) {
        /* the worker was shut down under the task: not the task's fault */
        ti->exit_code = r->exit_code;
        ti->signal = r->signal;
        char why[256];
        /* (a lease it never said STARTED for: it held the lease in its
         * queue, or got it while stopping, and hands it back) */
        snprintf(why, sizeof(why), "worker %s was stopped %s", w->name,
                 ti->state == TI_LEASED ? "before the task started" : "while the task ran");
        lease_lost(s, ti, "CAIRN-WORKER-STOPPED-TASK", why);
        /* it is shutting down: what it is handed now would only come back */
        w->stopping = true;
        ack(s, req, true, NULL);
        return;
    }
    if (r->input_unavailable && r->exit_code == -1) {
        /* it could not get an input (it does not reach the store, or the
         * scheduler's API): not the task's fault, and not this worker
         * again for this task */
        char why[768];
        snprintf(why, sizeof(why), "worker %s could not get the inputs: %s; not leased to it "
                 "again", w->name, error);
        lease_exclude(ti, w->name);
        lease_lost(s, ti, "CAIRN-INPUT-UNAVAILABLE", why);
        ack(s, req, true, NULL);
        return;
    }
    ti->exit_code = r->exit_code;
    ti->signal = r->signal;
    json_decref(ti->stderr_tail);
    ti->stderr_tail = NULL;
    if (r->nstderr_tail) {
        ti->stderr_tail = json_array();
        for (size_t i = 0; i < r->nstderr_tail; i++)
            json_array_append_new(ti->stderr_tail, json_string(r->stderr_tail[i]));
    }
    ti->oom = r->oom;
    ti->timed_out = r->timed_out;
    free(ti->error);
    ti->error = NULL;
    if (*error)
        ti->error = xstrdup(error);
    else if (ti->timed_out)
        ti->error = xstrdup("timed out");
    else if (ti->oom)
        ti->error = xstrdup("killed: out of memory");
    else if (r->signal)
        ti->error = xasprintf("killed by signal %d", r->signal);
    else if (r->exit_code != 0)
        ti->error = xasprintf("exit code %d", r->exit_code);
    lease_end(s, ti);
    if (r->exit_code != 0 || *error || ti->timed_out || ti->oom || r->signal) {
        ts_attempt_failed(s, ti);
        ack(s, req, true, NULL);
        return;
    }
    json_t *outs = result_outputs(ti, r, err, sizeof(err));
    if (!outs) {
        free(ti->error);
        ti->error = xstrdup(err);
        ts_attempt_failed(s, ti);
        ack(s, req, true, NULL);
        return;
    }
    json_decref(ti->outputs);
    ti->outputs = outs;
    json_decref(ti->metrics);
    ti->metrics = result_metrics(r);
    if (sched_task(ti)->npublish) {
        /* the copy runs on the thread pool; the task stays running
         * (without a lease) until it is done (pubjob.h) */
        if (pj_start(s, ti, err, sizeof(err)) != 0) {
            free(ti->error);
            ti->error = xasprintf("cannot publish to the models folder: %s", err);
            ts_attempt_failed(s, ti);
        }
        ack(s, req, true, NULL);
        return;
    }
    ti->artifacts_dirty = true;
    ts_succeed(s, ti);
    ack(s, req, true, NULL);
}

/* A worker's connection closed: a POLL it left parked can no longer be
 * answered, so do not hand it work. Its leases stay until they expire: the
 * worker may reconnect and report them. */
void
sched_link_gone(struct sched *s, uint32_t pipe)
{
    for (size_t i = 0; i < s->nchallenges; i++)
        if (s->challenges[i].pipe == pipe) {
            s->challenges[i] = s->challenges[--s->nchallenges];
            break;
        }
    for (size_t i = 0; i < s->nworkers; i++) {
        struct sched_worker *w = s->workers[i];
        if (w->pipe != pipe)
            continue;
        w->pipe = 0; /* the name is free for a new connection's HELLO */
        if (w->parked) {
            s->cfg.link.drop(w->parked);
            w->parked = NULL;
        }
        LOG(LOG_INFO, "CAIRN-WORKER-DISCONNECTED", "worker %s disconnected", w->name);
    }
}

static void handle_batch(struct sched *s, struct wire_req *req, const struct msg *m);

/* The requests a worker may send, and who answers each. */
static const struct {
    int type;
    void (*fn)(struct sched *s, struct wire_req *req, const struct msg *m);
    bool batchable; /* may be an item of a BATCH */
} handlers[] = {
    {PROTO_HELLO, handle_hello, false},    {PROTO_POLL, handle_poll, false},
    {PROTO_STARTED, handle_started, true}, {PROTO_LOG, handle_log, true},
    {PROTO_RESULT, handle_result, true},   {PROTO_BATCH, handle_batch, false},
};

static bool
dispatch_one(struct sched *s, struct wire_req *req, const struct msg *m, bool in_batch)
{
    for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
        if (handlers[i].type == m->type && (!in_batch || handlers[i].batchable)) {
            handlers[i].fn(s, req, m);
            return true;
        }
    return false;
}

/* Several reports in order, answered together after one commit. */
static void
handle_batch(struct sched *s, struct wire_req *req, const struct msg *m)
{
    const struct msg_batch *b = &m->u.batch;
    struct sched_worker *w = req_worker(s, req, b->worker);
    if (!w)
        return;
    bool given_up = lease_gave_up(s, w, b->seq, b->gave_up, b->ngave_up);
    json_t *results = json_array();
    for (size_t i = 0; i < b->nitems; i++) {
        const struct msg_item *it = &b->items[i];
        struct wire_req sub = {0};
        sub.type = it->type;
        sub.pipe = req->pipe;
        sub.batch = results;
        if (it->type == 0) {
            req_error(s, &sub, "proto", "batch item %zu: %s", i,
                      it->error ? it->error : "refused");
            continue;
        }
        struct msg im = {.type = it->type};
        if (it->type == PROTO_STARTED)
            im.u.started = it->u.started;
        else if (it->type == PROTO_LOG)
            im.u.log = it->u.log;
        else
            im.u.result = it->u.result;
        if (!dispatch_one(s, &sub, &im, true))
            req_error(s, &sub, "proto", "batch item %zu: type %d cannot be batched", i,
                      it->type);
    }
    struct msg r = {.type = PROTO_ACK, .u.ack = {.ok = true}};
    json_t *body = encode(&r);
    json_object_set_new(body, "results", results);
    /* a BATCH that says it has room gets its next leases in the answer:
     * a result and the next task's lease in one round trip */
    if (b->free > 0 && !given_up) {
        json_t *leases = lease_dispatch(s, w, (int)b->free, b->seq);
        if (json_array_size(leases) > 0)
            json_object_set_new(body, "work",
                                json_pack("{s:o, s:[]}", "leases", leases, "cancel"));
        else
            json_decref(leases);
    }
    commit_reply(s, req, PROTO_ACK, body);
}

void
sched_handle_request(struct sched *s, struct wire_req *req)
{
    struct msg m;
    char err[512];
    if (msg_decode(req->type, req->body, &m, err, sizeof(err)) != 0) {
        req_error(s, req, "proto", "%s", err);
        return;
    }
    if (!dispatch_one(s, req, &m, false))
        req_error(s, req, "proto", "unexpected message type");
    msg_clear(&m);
}
