/* handlers.c - the scheduler's answers to worker requests: one handler per
 * message type in one table (HELLO, POLL, STARTED, LOG, RESULT, BATCH; see
 * proto.h). Each decodes its request, applies it to the model and holds the
 * answer until the commit that made it durable (commit.h); a request that is
 * refused changed nothing and is answered at once. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact.h"
#include "commit.h"
#include "core.h"
#include "lease.h"
#include "log.h"
#include "logs.h"
#include "proto.h"
#include "pubjob.h"
#include "taskstate.h"
#include "util.h"
#include "wire.h"

/* Refuse a request (or one item of a BATCH). */
static void
req_error(struct sched *s, struct wire_req *req, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
req_error(struct sched *s, struct wire_req *req, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (req->batch) {
        json_array_append_new(req->batch, json_pack("{s:b, s:s, s:s}", "ok", 0, "reason", msg,
                                                    "code", code));
    } else {
        /* at once: a refused request changed nothing that needs a commit */
        json_t *b = json_pack("{s:s, s:s}", "code", code, "message", msg);
        s->cfg.link.reply(req, PROTO_ERROR, b);
        json_decref(b);
    }
}

static void
ack(struct sched *s, struct wire_req *req, bool ok, const char *reason)
{
    commit_reply(s, req, PROTO_ACK,
                json_pack("{s:b, s:s}", "ok", ok, "reason", reason ? reason : ""));
}

static void
handle_hello(struct sched *s, struct wire_req *req)
{
    char err[256];
    const char *name = NULL, *host = "";
    int64_t slots = 0;
    if (proto_get_str(req->body, "worker", &name, err, sizeof(err)) ||
        proto_get_int(req->body, "slots", 1, 100000, &slots, err, sizeof(err)) ||
        proto_opt_str(req->body, "host", &host, err, sizeof(err))) {
        req_error(s, req, "proto", "%s", err);
        return;
    }
    json_t *labels = json_object_get(req->body, "labels");
    if (labels && !json_is_object(labels)) {
        req_error(s, req, "proto", "field 'labels' must be an object");
        return;
    }
    struct sched_worker *w = lease_worker_find(s, name);
    if (!w) {
        w = xcalloc(1, sizeof(*w));
        w->name = xstrdup(name);
        xgrow((void **)&s->workers, &s->capworkers, s->nworkers + 1, sizeof(*s->workers));
        s->workers[s->nworkers++] = w;
    }
    lease_answer_parked(s, w);
    free(w->host);
    w->host = xstrdup(host);
    w->slots = (int)slots;
    for (size_t i = 0; i < w->nlabels; i++) {
        free(w->labels[i].key);
        free(w->labels[i].value);
    }
    free(w->labels);
    w->labels = NULL;
    w->nlabels = 0;
    if (labels) {
        const char *k;
        json_t *v;
        w->labels = xcalloc(json_object_size(labels) + 1, sizeof(*w->labels));
        json_object_foreach(labels, k, v)
        {
            if (!json_is_string(v))
                continue;
            w->labels[w->nlabels].key = xstrdup(k);
            w->labels[w->nlabels].value = xstrdup(json_string_value(v));
            w->nlabels++;
        }
    }
    w->alive = true;
    w->pipe = req->pipe;
    w->last_seen = clock_mono_ms();
    w->last_seen_wall = clock_wall_ms();
    w->connected_at = clock_wall_ms();
    LOG(LOG_INFO, "CAIRN-WORKER-HELLO", "worker %s (%s) joined with %d slots", w->name, w->host,
        w->slots);
    json_t *b = json_pack("{s:I, s:I, s:s}", "lease_ttl_ms", (json_int_t)s->cfg.lease_ttl_ms,
                          "heartbeat_ms", (json_int_t)s->cfg.heartbeat_ms, "artifacts",
                          art_uri(s->art));
    s->cfg.link.reply(req, PROTO_WELCOME, b);
    json_decref(b);
}

static struct sched_worker *
req_worker(struct sched *s, struct wire_req *req)
{
    char err[256];
    const char *name = NULL;
    if (proto_get_str(req->body, "worker", &name, err, sizeof(err))) {
        req_error(s, req, "proto", "%s", err);
        return NULL;
    }
    struct sched_worker *w = lease_worker_find(s, name);
    if (!w) {
        req_error(s, req, "unknown_worker", "unknown worker '%s'; send HELLO first", name);
        return NULL;
    }
    w->last_seen = clock_mono_ms();
    w->last_seen_wall = clock_wall_ms();
    w->pipe = req->pipe;
    if (!w->alive)
        LOG(LOG_INFO, "CAIRN-WORKER-BACK", "worker %s is back", w->name);
    w->alive = true;
    return w;
}

static void
handle_poll(struct sched *s, struct wire_req *req)
{
    char err[256];
    int64_t free_slots = 0, wait_ms = 0;
    struct sched_worker *w = req_worker(s, req);
    if (!w)
        return;
    if (proto_get_int(req->body, "free", 0, 100000, &free_slots, err, sizeof(err)) ||
        proto_opt_int(req->body, "wait_ms", 0, 600000, &wait_ms, err, sizeof(err))) {
        req_error(s, req, "proto", "%s", err);
        return;
    }
    json_t *held = json_object_get(req->body, "leases");
    json_t *cancel = json_array();
    if (held && json_is_array(held)) {
        size_t i;
        json_t *v;
        json_array_foreach(held, i, v)
        {
            if (!json_is_integer(v))
                continue;
            struct sched_ti *ti = lease_lookup(s, json_integer_value(v));
            if (ti && lease_owned(ti, w))
                ti->lease_expires = clock_mono_ms() + s->cfg.lease_ttl_ms;
            else
                json_array_append(cancel, v);
        }
    }
    lease_answer_parked(s, w); /* a newer POLL replaces an older one */
    /* trust our own lease count over the worker's (it may not have seen
     * the result we just applied), but never exceed what it offers */
    int room = w->slots - w->busy;
    json_t *leases = lease_dispatch(s, w, (int)free_slots < room ? (int)free_slots : room);
    if (json_array_size(leases) > 0 || json_array_size(cancel) > 0 || wait_ms == 0 ||
        s->stopping) {
        commit_reply(s, req, PROTO_WORK, json_pack("{s:o, s:o}", "leases", leases, "cancel", cancel));
        return;
    }
    json_decref(leases);
    json_decref(cancel);
    if (wait_ms > SCHED_POLL_WAIT_MAX_MS)
        wait_ms = SCHED_POLL_WAIT_MAX_MS;
    w->parked = req;
    w->parked_free = (int)free_slots;
    w->parked_until = clock_mono_ms() + wait_ms;
}

static struct sched_ti *
req_lease(struct sched *s, struct wire_req *req, struct sched_worker **wout)
{
    char err[256];
    int64_t lease_id = 0;
    struct sched_worker *w = req_worker(s, req);
    if (!w)
        return NULL;
    if (proto_get_int(req->body, "lease_id", 1, INT64_MAX, &lease_id, err, sizeof(err))) {
        req_error(s, req, "proto", "%s", err);
        return NULL;
    }
    struct sched_ti *ti = lease_lookup(s, lease_id);
    if (!ti || !lease_owned(ti, w)) {
        LOG(LOG_WARN, "CAIRN-LEASE-STALE", "worker %s sent %s for lease %" PRId64
            ", which is not current: ignored", w->name, proto_type_name(req->type), lease_id);
        commit_reply(s, req, PROTO_ACK,
                    json_pack("{s:b, s:s}", "ok", 0, "reason", "lease is not current"));
        return NULL;
    }
    *wout = w;
    return ti;
}

static void
handle_started(struct sched *s, struct wire_req *req)
{
    struct sched_worker *w;
    struct sched_ti *ti = req_lease(s, req, &w);
    if (!ti)
        return;
    if (ti->state == TI_LEASED) {
        ti->started_at = clock_wall_ms();
        ts_set_state(s, ti, TI_RUNNING);
        commit_ti_dirty(s, ti, true);
    }
    ack(s, req, true, NULL);
}

static void
handle_log(struct sched *s, struct wire_req *req)
{
    char err[256];
    struct sched_worker *w;
    int64_t offset = 0;
    const char *data = NULL;
    struct sched_ti *ti = req_lease(s, req, &w);
    if (!ti)
        return;
    if (proto_get_int(req->body, "offset", 0, INT64_MAX, &offset, err, sizeof(err)) ||
        proto_get_str(req->body, "data", &data, err, sizeof(err))) {
        req_error(s, req, "proto", "%s", err);
        return;
    }
    size_t len = json_string_length(json_object_get(req->body, "data"));
    if (offset > ti->log_size) {
        ack(s, req, false, "gap in log offsets");
        return;
    }
    size_t skip = (size_t)(ti->log_size - offset);
    if (skip >= len) { /* a resend of what we have */
        ack(s, req, true, NULL);
        return;
    }
    char werr[512];
    if (logs_append(s, ti, data + skip, len - skip, werr, sizeof(werr)) != 0) {
        LOG(LOG_ERR, "CAIRN-LOG-WRITE", "%s", werr);
        ack(s, req, false, "cannot store log");
        return;
    }
    commit_ti_dirty(s, ti, true);
    ack(s, req, true, NULL);
}

/* Check the artifacts a RESULT reports against what the task declared:
 * every declared output exactly once, well-formed digests. Returns a new
 * array or NULL with err set. */
static json_t *
result_outputs(const struct sched_ti *ti, json_t *outs, char *err, size_t errlen)
{
    const struct dag_task *t = &ti->run->dv->dag->tasks[ti->idx];
    json_t *res = json_array();
    for (size_t i = 0; i < t->noutputs; i++) {
        json_t *found = NULL, *v;
        size_t k;
        if (json_is_array(outs))
            json_array_foreach(outs, k, v)
            {
                if (!strcmp(json_string_value(json_object_get(v, "name")) ?: "", t->outputs[i]))
                    found = v;
            }
        const char *sha = found ? json_string_value(json_object_get(found, "sha256")) : NULL;
        const char *uri = found ? json_string_value(json_object_get(found, "uri")) : NULL;
        json_t *size = found ? json_object_get(found, "size") : NULL;
        if (!sha || !art_hex_valid(sha) || !uri || !json_is_integer(size)) {
            snprintf(err, errlen, "declared output '%s' was not stored by the worker",
                     t->outputs[i]);
            json_decref(res);
            return NULL;
        }
        json_array_append_new(res, json_pack("{s:s, s:s, s:O, s:s}", "name", t->outputs[i],
                                             "sha256", sha, "size", size, "uri", uri));
    }
    return res;
}

static void
handle_result(struct sched *s, struct wire_req *req)
{
    char err[256];
    struct sched_worker *w;
    int64_t exit_code = -1, sig = 0, duration = 0;
    const char *error = "";
    struct sched_ti *ti = req_lease(s, req, &w);
    if (!ti)
        return;
    if (proto_get_int(req->body, "exit_code", -1, 255, &exit_code, err, sizeof(err)) ||
        proto_opt_int(req->body, "signal", 0, 128, &sig, err, sizeof(err)) ||
        proto_opt_int(req->body, "duration_ms", 0, INT64_MAX, &duration, err, sizeof(err)) ||
        proto_opt_str(req->body, "error", &error, err, sizeof(err))) {
        req_error(s, req, "proto", "%s", err);
        return;
    }
    if (json_is_true(json_object_get(req->body, "interrupted")) && exit_code != 0) {
        /* the worker was shut down under the task: not the task's fault */
        ti->exit_code = (int)exit_code;
        ti->signal = (int)sig;
        char why[256];
        snprintf(why, sizeof(why), "worker %s was stopped while the task ran", w->name);
        lease_lost(s, ti, "CAIRN-WORKER-STOPPED-TASK", why);
        ack(s, req, true, NULL);
            return;
    }
    ti->exit_code = (int)exit_code;
    ti->signal = (int)sig;
    ti->oom = json_is_true(json_object_get(req->body, "oom"));
    ti->timed_out = json_is_true(json_object_get(req->body, "timed_out"));
    free(ti->error);
    ti->error = NULL;
    if (*error)
        ti->error = xstrdup(error);
    else if (ti->timed_out)
        ti->error = xstrdup("timed out");
    else if (ti->oom)
        ti->error = xstrdup("killed: out of memory");
    else if (sig)
        ti->error = xasprintf("killed by signal %d", (int)sig);
    else if (exit_code != 0)
        ti->error = xasprintf("exit code %d", (int)exit_code);
    lease_end(s, ti);
    if (exit_code == 0 && !*error && !ti->timed_out && !ti->oom && !sig) {
        json_t *outs = result_outputs(ti, json_object_get(req->body, "outputs"), err,
                                      sizeof(err));
        if (!outs) {
            free(ti->error);
            ti->error = xstrdup(err);
            ts_attempt_failed(s, ti);
            ack(s, req, true, NULL);
                    return;
        }
        json_decref(ti->outputs);
        ti->outputs = outs;
        json_t *mets = json_object_get(req->body, "metrics");
        json_decref(ti->metrics);
        ti->metrics = NULL;
        if (json_is_object(mets) && json_object_size(mets)) {
            const char *mk;
            json_t *mv;
            ti->metrics = json_object();
            json_object_foreach(mets, mk, mv)
            {
                if (json_is_number(mv))
                    json_object_set(ti->metrics, mk, mv);
            }
        }
        const struct dag_task *t = &ti->run->dv->dag->tasks[ti->idx];
        if (t->npublish) {
            /* the copy runs on the thread pool; the task stays running
             * (without a lease) until it is done: publish_done */
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
    } else {
        ts_attempt_failed(s, ti);
    }
    ack(s, req, true, NULL);
}

/* A worker's connection closed: a POLL it left parked can no longer be
 * answered, so do not hand it work. Its leases stay until they expire: the
 * worker may reconnect and report them. */
void
sched_link_gone(struct sched *s, uint32_t pipe)
{
    for (size_t i = 0; i < s->nworkers; i++) {
        struct sched_worker *w = s->workers[i];
        if (w->pipe != pipe)
            continue;
        if (w->parked) {
            s->cfg.link.drop(w->parked);
            w->parked = NULL;
        }
        LOG(LOG_INFO, "CAIRN-WORKER-DISCONNECTED", "worker %s disconnected", w->name);
    }
}

static void dispatch_one(struct sched *s, struct wire_req *req, bool in_batch, size_t item);

/* Several reports in order, answered together after one commit. */
static void
handle_batch(struct sched *s, struct wire_req *req)
{
    if (!req_worker(s, req))
        return;
    json_t *items = json_object_get(req->body, "items");
    if (!json_is_array(items)) {
        req_error(s, req, "proto", "field 'items' must be an array");
        return;
    }
    json_t *results = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        struct wire_req sub = {0};
        json_int_t type = json_integer_value(json_object_get(it, "type"));
        json_t *body = json_object_get(it, "body");
        sub.type = (int)type;
        sub.body = body;
        sub.pipe = req->pipe;
        sub.batch = results;
        if (!json_is_object(body)) {
            req_error(s, &sub, "proto", "batch item %zu has no body object", i);
            continue;
        }
        dispatch_one(s, &sub, true, i);
    }
    commit_reply(s, req, PROTO_ACK, json_pack("{s:b, s:o}", "ok", 1, "results", results));
}

/* The requests a worker may send, and who answers each. */
static const struct {
    int type;
    void (*fn)(struct sched *s, struct wire_req *req);
    bool batchable; /* may be an item of a BATCH */
} handlers[] = {
    {PROTO_HELLO, handle_hello, false},     {PROTO_POLL, handle_poll, false},
    {PROTO_STARTED, handle_started, true},  {PROTO_LOG, handle_log, true},
    {PROTO_RESULT, handle_result, true},    {PROTO_BATCH, handle_batch, false},
};

static void
dispatch_one(struct sched *s, struct wire_req *req, bool in_batch, size_t item)
{
    for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
        if (handlers[i].type != req->type)
            continue;
        if (in_batch && !handlers[i].batchable)
            break;
        handlers[i].fn(s, req);
        return;
    }
    if (in_batch)
        req_error(s, req, "proto", "batch item %zu: type %d cannot be batched", item, req->type);
    else
        req_error(s, req, "proto", "unexpected message type");
}

void
sched_handle_request(struct sched *s, struct wire_req *req)
{
    dispatch_one(s, req, false, 0);
}
