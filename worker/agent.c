#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "artifact.h"
#include "err.h"
#include "fs.h"
#include "log.h"
#include "proto.h"
#include "runc.h"
#include "util.h"

#define LOG_FLUSH_BYTES (64 * 1024)
#define LOG_FLUSH_MS 100
#define REPLY_TIMEOUT_MS 5000
#define SEND_BATCH_MAX 256
#define SEND_BATCH_BYTES (4 * 1024 * 1024)

/* A message waiting to be sent by the sender thread. */
struct outmsg {
    int type;
    json_t *body;
    struct outmsg *next;
};

struct task {
    struct agent *a;
    int64_t lease_id;
    char *label;        /* dag/run/task#attempt for logs */
    struct runc_proc *proc;
    struct sb logbuf;
    int64_t log_offset; /* bytes handed to the sender so far */
    bool cancelled;
    bool interrupted;   /* stopped because this worker is shutting down */
    bool done;
    char *workdir;
    json_t *outputs;    /* declared output names (array of strings) */
    char *metrics_file; /* the output holding metrics, or NULL */
    struct task *next;
};

struct agent {
    struct agent_config cfg;
    struct proto_key key;
    nng_socket sock;
    uv_loop_t loop;
    uv_async_t async;
    uv_timer_t flush_timer;
    uv_signal_t sigterm, sigint;
    pthread_t poll_thread, send_thread;
    nng_aio *poll_aio, *send_aio; /* one per thread; stopped to end them */

    pthread_mutex_t mu;
    pthread_cond_t cond;
    /* poll thread -> loop */
    json_t *inbox_leases;  /* array */
    json_t *inbox_cancel;  /* array of lease ids */
    /* loop -> sender */
    struct outmsg *out_head, *out_tail;
    /* shared snapshot for POLL */
    int free_slots;
    json_t *held;          /* array of lease ids running here */
    bool stopping;
    bool registered;
    int64_t heartbeat_ms;
    char *artifact_uri;    /* from WELCOME; read by the loop (under mu) */
    struct art_store *art; /* loop thread only */
    int art_busy;          /* output jobs on the thread pool using art */

    struct task *tasks;    /* loop thread only */
    char *pool[64];        /* emptied work folders to reuse (WORKDIR_POOL_MAX) */
    int npool, pool_seq;
    int running;
    bool draining;
};

/* ---------- transport (poll and sender threads) ---------- */

static int
xfer(struct agent *a, nng_ctx ctx, nng_aio *aio, int type, json_t *body, int timeout_ms,
     int *rtype, json_t **rbody)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    nng_msg *m = NULL;
    char err[256];
    if (proto_encode(&a->key, type, body, &buf, &len) != 0)
        return CAIRN_EPROTO;
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
    void *rb = NULL;
    int rc = proto_decode(&a->key, nng_msg_body(m), nng_msg_len(m), rtype, &rb, err, sizeof(err));
    nng_msg_free(m);
    if (rc) {
        LOG(LOG_ERR, "CAIRN-WIRE-REJECT", "bad reply from the scheduler: %s", err);
        return rc;
    }
    *rbody = rb;
    return 0;
}

static bool
agent_stopping(struct agent *a)
{
    pthread_mutex_lock(&a->mu);
    bool s = a->stopping;
    pthread_mutex_unlock(&a->mu);
    return s;
}

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int
hello(struct agent *a, nng_ctx ctx, nng_aio *aio)
{
    json_t *labels = json_loads(a->cfg.labels_json ? a->cfg.labels_json : "{}", 0, NULL);
    json_t *b = json_pack("{s:s, s:i, s:o, s:I, s:s}", "worker", a->cfg.name, "slots",
                          a->cfg.slots, "labels", labels ? labels : json_object(), "pid",
                          (json_int_t)getpid(), "host", a->cfg.host);
    int rtype = 0;
    json_t *r = NULL;
    int rc = xfer(a, ctx, aio, PROTO_HELLO, b, REPLY_TIMEOUT_MS, &rtype, &r);
    json_decref(b);
    if (rc)
        return rc;
    if (rtype != PROTO_WELCOME) {
        LOG(LOG_ERR, "CAIRN-WORKER-REFUSED", "the scheduler refused HELLO: %s",
            json_string_value(json_object_get(r, "message")) ?: "?");
        json_decref(r);
        return CAIRN_EAUTH;
    }
    int64_t hb = json_integer_value(json_object_get(r, "heartbeat_ms"));
    const char *aus = json_string_value(json_object_get(r, "artifacts"));
    char *au = aus ? xstrdup(aus) : NULL;
    json_decref(r);
    pthread_mutex_lock(&a->mu);
    a->heartbeat_ms = hb > 0 ? hb : 5000;
    if (au) {
        free(a->artifact_uri);
        a->artifact_uri = au;
    }
    a->registered = true;
    pthread_mutex_unlock(&a->mu);
    LOG(LOG_NOTICE, "CAIRN-WORKER-REGISTERED", "registered with %s as %s (%d slots)",
        a->cfg.scheduler_url, a->cfg.name, a->cfg.slots);
    return 0;
}

static void
wake_loop(struct agent *a)
{
    uv_async_send(&a->async);
}

static void *
poll_main(void *arg)
{
    struct agent *a = arg;
    nng_ctx ctx;
    nng_aio *aio = a->poll_aio;
    int backoff = 100;
    nng_ctx_open(&ctx, a->sock);
    while (!agent_stopping(a)) {
        pthread_mutex_lock(&a->mu);
        bool reg = a->registered;
        pthread_mutex_unlock(&a->mu);
        if (!reg) {
            if (hello(a, ctx, aio) != 0) {
                sleep_ms(backoff);
                backoff = backoff < 2000 ? backoff * 2 : 2000;
            } else {
                backoff = 100;
            }
            continue;
        }
        pthread_mutex_lock(&a->mu);
        /* while a lease handed out is not yet started, say there is no room;
         * a draining worker only renews its leases and never leaves a POLL
         * waiting (the scheduler would answer it with work when a slot
         * frees) */
        bool draining = a->draining;
        int free_slots = draining ? 0 : a->free_slots;
        json_t *b = json_pack("{s:s, s:i, s:O, s:I}", "worker", a->cfg.name, "free", free_slots,
                              "leases", a->held, "wait_ms",
                              (json_int_t)(draining ? 0 : a->heartbeat_ms));
        int64_t hb = a->heartbeat_ms;
        pthread_mutex_unlock(&a->mu);
        int rtype = 0;
        json_t *r = NULL;
        int rc = xfer(a, ctx, aio, PROTO_POLL, b, (int)hb + REPLY_TIMEOUT_MS, &rtype, &r);
        json_decref(b);
        if (rc) {
            if (rc == CAIRN_ENET)
                LOG(LOG_WARN, "CAIRN-SCHEDULER-UNREACHABLE",
                    "no answer from the scheduler at %s; retrying", a->cfg.scheduler_url);
            sleep_ms(backoff);
            backoff = backoff < 2000 ? backoff * 2 : 2000;
            continue;
        }
        backoff = 100;
        if (rtype == PROTO_ERROR) {
            const char *code = json_string_value(json_object_get(r, "code")) ?: "";
            LOG(LOG_WARN, "CAIRN-POLL-ERROR", "scheduler: %s",
                json_string_value(json_object_get(r, "message")) ?: code);
            if (!strcmp(code, "unknown_worker")) {
                pthread_mutex_lock(&a->mu);
                a->registered = false;
                pthread_mutex_unlock(&a->mu);
            } else {
                sleep_ms(1000);
            }
            json_decref(r);
            continue;
        }
        if (draining) /* next heartbeat */
            for (int64_t t = 0; t < hb && !agent_stopping(a); t += 100)
                sleep_ms(100);
        if (rtype != PROTO_WORK) {
            json_decref(r);
            continue;
        }
        json_t *leases = json_object_get(r, "leases"), *cancel = json_object_get(r, "cancel");
        size_t nl = json_is_array(leases) ? json_array_size(leases) : 0;
        size_t nc = json_is_array(cancel) ? json_array_size(cancel) : 0;
        if (nl || nc) {
            pthread_mutex_lock(&a->mu);
            if (nl) {
                json_array_extend(a->inbox_leases, leases);
                a->free_slots -= (int)nl; /* reserved until the loop starts them */
            }
            if (nc)
                json_array_extend(a->inbox_cancel, cancel);
            pthread_mutex_unlock(&a->mu);
            wake_loop(a);
        }
        json_decref(r);
    }
    nng_ctx_close(ctx);
    return NULL;
}

/* The sender delivers messages in order; each is retried until the
 * scheduler answers it (an ACK, even {ok:false}, settles it). */
static void *
send_main(void *arg)
{
    struct agent *a = arg;
    nng_ctx ctx;
    nng_aio *aio = a->send_aio;
    nng_ctx_open(&ctx, a->sock);
    for (;;) {
        pthread_mutex_lock(&a->mu);
        while (!a->out_head && !a->stopping)
            pthread_cond_wait(&a->cond, &a->mu);
        struct outmsg *m = a->out_head;
        if (!m) { /* stopping and nothing left */
            pthread_mutex_unlock(&a->mu);
            break;
        }
        bool reg = a->registered;
        bool stop = a->stopping;
        pthread_mutex_unlock(&a->mu);
        if (!reg) {
            if (stop)
                break; /* cannot deliver while stopping unregistered */
            sleep_ms(100);
            continue;
        }
        /* everything queued goes in one round trip (one commit at the
         * scheduler): a BATCH when there is more than one message */
        size_t n = 0, bytes = 0;
        struct outmsg *last = m;
        pthread_mutex_lock(&a->mu);
        for (struct outmsg *q = m; q && n < SEND_BATCH_MAX && bytes < SEND_BATCH_BYTES;
             q = q->next) {
            json_t *d = json_object_get(q->body, "data");
            bytes += d ? json_string_length(d) : 64;
            last = q;
            n++;
        }
        pthread_mutex_unlock(&a->mu);
        int type = m->type;
        json_t *body = json_incref(m->body);
        if (n > 1) {
            json_t *items = json_array();
            for (struct outmsg *q = m;; q = q->next) {
                json_array_append_new(items,
                                      json_pack("{s:i, s:O}", "type", q->type, "body", q->body));
                if (q == last)
                    break;
            }
            json_decref(body);
            type = PROTO_BATCH;
            body = json_pack("{s:s, s:o}", "worker", a->cfg.name, "items", items);
        }
        int rtype = 0;
        json_t *r = NULL;
        int rc = xfer(a, ctx, aio, type, body, REPLY_TIMEOUT_MS, &rtype, &r);
        json_decref(body);
        if (rc) {
            if (stop)
                break;
            sleep_ms(200);
            continue;
        }
        if (rtype == PROTO_ERROR) {
            const char *code = json_string_value(json_object_get(r, "code")) ?: "";
            if (!strcmp(code, "unknown_worker")) {
                /* the scheduler restarted: register again, then resend */
                pthread_mutex_lock(&a->mu);
                a->registered = false;
                pthread_mutex_unlock(&a->mu);
                json_decref(r);
                sleep_ms(100);
                continue;
            }
            LOG(LOG_ERR, "CAIRN-SEND-REFUSED", "scheduler refused %s: %s", proto_type_name(type),
                json_string_value(json_object_get(r, "message")) ?: "");
        } else if (rtype == PROTO_ACK) {
            json_t *results = json_object_get(r, "results");
            size_t i = 0;
            for (struct outmsg *q = m;; q = q->next, i++) {
                json_t *res = n > 1 ? json_array_get(results, i) : r;
                if (q->type == PROTO_RESULT && res && !json_is_true(json_object_get(res, "ok")))
                    LOG(LOG_WARN, "CAIRN-RESULT-REJECTED",
                        "result for lease %" JSON_INTEGER_FORMAT " rejected: %s",
                        json_integer_value(json_object_get(q->body, "lease_id")),
                        json_string_value(json_object_get(res, "reason")) ?: "");
                if (q == last)
                    break;
            }
        }
        json_decref(r);
        pthread_mutex_lock(&a->mu);
        a->out_head = last->next;
        if (!a->out_head)
            a->out_tail = NULL;
        pthread_mutex_unlock(&a->mu);
        while (m) {
            struct outmsg *next = m->next;
            bool end = m == last;
            json_decref(m->body);
            free(m);
            if (end)
                break;
            m = next;
        }
    }
    nng_ctx_close(ctx);
    return NULL;
}

/* ---------- loop thread ---------- */

static void
enqueue(struct agent *a, int type, json_t *body)
{
    struct outmsg *m = xcalloc(1, sizeof(*m));
    m->type = type;
    m->body = body;
    pthread_mutex_lock(&a->mu);
    if (a->out_tail)
        a->out_tail->next = m;
    else
        a->out_head = m;
    a->out_tail = m;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->mu);
}

static void
held_update(struct agent *a)
{
    json_t *held = json_array();
    for (struct task *t = a->tasks; t; t = t->next)
        if (!t->done)
            json_array_append_new(held, json_integer(t->lease_id));
    pthread_mutex_lock(&a->mu);
    json_decref(a->held);
    a->held = held;
    pthread_mutex_unlock(&a->mu);
}

static void
flush_log(struct task *t)
{
    if (!t->logbuf.len)
        return;
    json_t *b = json_pack("{s:s, s:I, s:i, s:I, s:s%}", "worker", t->a->cfg.name, "lease_id",
                          (json_int_t)t->lease_id, "stream", 1, "offset",
                          (json_int_t)t->log_offset, "data", t->logbuf.buf, t->logbuf.len);
    if (!b) {
        /* not valid UTF-8: replace every non-ASCII byte */
        for (size_t i = 0; i < t->logbuf.len; i++)
            if ((unsigned char)t->logbuf.buf[i] >= 0x80)
                t->logbuf.buf[i] = '?';
        b = json_pack("{s:s, s:I, s:i, s:I, s:s%}", "worker", t->a->cfg.name, "lease_id",
                      (json_int_t)t->lease_id, "stream", 1, "offset", (json_int_t)t->log_offset,
                      "data", t->logbuf.buf, t->logbuf.len);
    }
    t->log_offset += (int64_t)t->logbuf.len;
    t->logbuf.len = 0;
    if (b)
        enqueue(t->a, PROTO_LOG, b);
}

static void
output_cb(void *ud, int stream, const char *data, size_t len)
{
    struct task *t = ud;
    (void)stream;
    sb_append(&t->logbuf, data, len);
    if (t->logbuf.len >= LOG_FLUSH_BYTES)
        flush_log(t);
}

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0 && errno != ENOENT)
        LOG(LOG_WARN, "CAIRN-CLEANUP", "cannot remove %s: %s", path, strerror(errno));
    return 0;
}

/* Remove a work folder of ours (never follows symlinks out of it). */
static void
rm_rf(const char *path)
{
    nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Work folders are reused: making and removing three folders per task was
 * most of the worker's CPU time with short tasks (ext4 searches its inode
 * bitmap past recently deleted inodes on every mkdir). A finished task's
 * folder is emptied down to workspace/ and outputs/ and parked in
 * work/.pool; the next task renames it into place. Loop thread only. */
#define WORKDIR_POOL_MAX 64
static bool empty_failed; /* set by empty_cb (nftw passes no user data) */

static int
empty_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    if (ftw->level == 0)
        return 0;
    if (ftw->level == 1 && flag == FTW_DP && S_ISDIR(st->st_mode) &&
        (!strcmp(path + ftw->base, "workspace") || !strcmp(path + ftw->base, "outputs")))
        return 0;
    if (remove(path) != 0 && errno != ENOENT)
        empty_failed = true;
    return 0;
}

static void
workdir_give(struct agent *a, const char *path)
{
    empty_failed = false;
    if (a->npool < WORKDIR_POOL_MAX &&
        nftw(path, empty_cb, 16, FTW_DEPTH | FTW_PHYS) == 0 && !empty_failed) {
        char *dst = xasprintf("%s/work/.pool/%d", a->cfg.data_dir, ++a->pool_seq);
        if (rename(path, dst) == 0) {
            a->pool[a->npool++] = dst;
            return;
        }
        free(dst);
    }
    rm_rf(path);
}

/* A work folder at path with empty workspace/ and outputs/. */
static void
workdir_take(struct agent *a, const char *path)
{
    bool reused = false;
    while (a->npool > 0 && !reused) {
        char *src = a->pool[--a->npool];
        reused = rename(src, path) == 0;
        if (!reused)
            rm_rf(src);
        free(src);
    }
    char *ws = xasprintf("%s/workspace", path), *outs = xasprintf("%s/outputs", path);
    if (!reused && mkdir(path, 0755) != 0 && errno == EEXIST) {
        rm_rf(path);
        mkdir(path, 0755);
    }
    /* (a task may have replaced them: made again if missing, else EEXIST) */
    mkdir(ws, 0755);
    mkdir(outs, 0755);
    free(ws);
    free(outs);
}

static void
task_free(struct agent *a, struct task *t)
{
    struct task **pp = &a->tasks;
    while (*pp && *pp != t)
        pp = &(*pp)->next;
    if (*pp)
        *pp = t->next;
    if (t->workdir) {
        workdir_give(a, t->workdir);
        free(t->workdir);
    }
    sb_free(&t->logbuf);
    json_decref(t->outputs);
    free(t->metrics_file);
    free(t->label);
    free(t);
}

static void maybe_finish_drain(struct agent *a);

/* The artifact store the scheduler named, opened on first use. */
static struct art_store *
agent_store(struct agent *a, char *err, size_t errlen)
{
    pthread_mutex_lock(&a->mu);
    char *uri = a->artifact_uri ? xstrdup(a->artifact_uri) : NULL;
    pthread_mutex_unlock(&a->mu);
    if (!uri) {
        snprintf(err, errlen, "the scheduler named no artifact store");
        return NULL;
    }
    if (a->art && strcmp(art_uri(a->art), uri) != 0 && a->art_busy == 0) {
        art_close(a->art);
        a->art = NULL;
    }
    if (!a->art && art_open(&a->art, uri, err, errlen) != 0)
        a->art = NULL;
    free(uri);
    return a->art;
}

/* Hash and store every declared output of a successful attempt; a missing
 * one fails the attempt (error is set). */
static void
store_outputs(struct task *t, struct art_store *st, json_t *outs, char *error, size_t errlen)
{
    char err[256] = "";
    char *dir = xasprintf("%s/outputs", t->workdir);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (dfd < 0) {
        snprintf(error, errlen, "cannot open the outputs folder: %s", strerror(errno));
        return;
    }
    size_t i;
    json_t *v;
    json_array_foreach(t->outputs, i, v)
    {
        const char *name = json_string_value(v);
        char hex[ART_HEX_LEN + 1];
        int64_t size = 0;
        char *uri = NULL;
        if (!name)
            continue;
        int rc = art_put_file_at(st, dfd, name, hex, &size, &uri, err, sizeof(err));
        if (rc == CAIRN_ENOENT) {
            snprintf(error, errlen, "declared output '%s' was not written to /outputs", name);
            break;
        }
        if (rc) {
            snprintf(error, errlen, "cannot store output '%s': %s (%s)", name, err,
                     cairn_strerror(rc));
            break;
        }
        json_array_append_new(outs, json_pack("{s:s, s:s, s:I, s:s}", "name", name, "sha256", hex,
                                              "size", (json_int_t)size, "uri", uri));
        free(uri);
    }
    close(dfd);
}

/* metrics: a flat JSON object of numbers in one of the outputs. */
static void
read_metrics(struct task *t, json_t *mets, char *error, size_t errlen)
{
    char *path = xasprintf("%s/outputs/%s", t->workdir, t->metrics_file);
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    free(path);
    const char *k;
    json_t *v;
    if (!j || !json_is_object(j)) {
        snprintf(error, errlen, "metrics file '%s' is not a JSON object%s%s", t->metrics_file,
                 j ? "" : ": ", j ? "" : je.text);
        json_decref(j);
        return;
    }
    json_object_foreach(j, k, v)
    {
        if (!json_is_number(v)) {
            snprintf(error, errlen, "metrics file '%s': '%s' is not a number", t->metrics_file,
                     k);
            json_decref(j);
            return;
        }
        json_object_set(mets, k, v);
    }
    json_decref(j);
}

/* The end of an attempt, after its outputs are stored: report it, free
 * its slot. Loop thread. */
static void
finish_task(struct task *t, const struct runc_result *res, const char *error, json_t *outs,
            json_t *mets)
{
    struct agent *a = t->a;
    json_error_t jerr;
    json_t *b = json_pack_ex(&jerr, 0, "{s:s, s:I, s:i, s:i, s:b, s:b, s:I, s:s, s:o, s:o}", "worker",
                          a->cfg.name, "lease_id", (json_int_t)t->lease_id, "exit_code",
                          res->exit_code, "signal", res->term_signal, "oom", res->oom_killed,
                          "timed_out", res->timed_out, "duration_ms",
                          (json_int_t)res->duration_ms, "error", error, "outputs", outs,
                          "metrics", mets);
    if (!b)
        LOG(LOG_ERR, "CAIRN-RESULT-ENCODE", "%s: cannot encode the result: %s", t->label,
            jerr.text);
    else if (t->interrupted && res->exit_code != 0)
        json_object_set_new(b, "interrupted", json_true());
    enqueue(a, PROTO_RESULT, b);
    LOG(LOG_INFO, "CAIRN-TASK-EXIT", "%s: exit %d signal %d%s%s (%" PRId64 " ms)%s%s", t->label,
        res->exit_code, res->term_signal, res->oom_killed ? " oom" : "",
        res->timed_out ? " timeout" : "", res->duration_ms, error[0] ? ": " : "", error);
    t->done = true;
    a->running--;
    pthread_mutex_lock(&a->mu);
    a->free_slots++;
    pthread_mutex_unlock(&a->mu);
    task_free(a, t);
    held_update(a);
    maybe_finish_drain(a);
}

/* Hashing and copying outputs (up to gigabytes) runs on libuv's thread
 * pool, so the loop keeps starting tasks and streaming logs meanwhile. */
struct output_job {
    uv_work_t req;
    struct task *t;
    struct art_store *st;
    struct runc_result res;
    char error[512];
    json_t *outs, *mets;
};

static void
output_job_work(uv_work_t *req)
{
    struct output_job *j = req->data;
    if (j->st && json_array_size(j->t->outputs))
        store_outputs(j->t, j->st, j->outs, j->error, sizeof(j->error));
    if (!j->error[0] && j->t->metrics_file)
        read_metrics(j->t, j->mets, j->error, sizeof(j->error));
}

static void
output_job_done(uv_work_t *req, int status)
{
    struct output_job *j = req->data;
    (void)status; /* work is never cancelled once queued */
    j->t->a->art_busy--;
    finish_task(j->t, &j->res, j->error, j->outs, j->mets);
    free(j);
}

static void
exit_cb(void *ud, const struct runc_result *res)
{
    struct task *t = ud;
    struct agent *a = t->a;
    flush_log(t);
    runc_proc_free(t->proc);
    t->proc = NULL;
    struct output_job *j = xcalloc(1, sizeof(*j));
    j->t = t;
    j->res = *res;
    snprintf(j->error, sizeof(j->error), "%s", res->error);
    j->outs = json_array();
    j->mets = json_object();
    bool ok = res->exit_code == 0 && !res->term_signal && !res->timed_out && !res->oom_killed &&
              !j->error[0];
    if (ok && json_array_size(t->outputs)) {
        char err[256] = "";
        j->st = agent_store(a, err, sizeof(err));
        if (!j->st)
            snprintf(j->error, sizeof(j->error), "cannot store outputs: %s", err);
    }
    if (!ok || j->error[0] || (!j->st && !t->metrics_file)) {
        finish_task(t, &j->res, j->error, j->outs, j->mets);
        free(j);
        return;
    }
    j->req.data = j;
    a->art_busy++;
    if (uv_queue_work(&a->loop, &j->req, output_job_work, output_job_done) != 0) {
        a->art_busy--;
        output_job_work(&j->req); /* cannot happen with a live loop; stay correct */
        finish_task(t, &j->res, j->error, j->outs, j->mets);
        free(j);
    }
}

static const char **
strv_from_json(json_t *arr)
{
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    const char **v = xcalloc(n + 1, sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        if (s)
            v[k++] = s;
    }
    return v;
}

/* Report a lease that could not start at all. */
static void
start_failed(struct agent *a, int64_t lease_id, const char *why)
{
    json_t *b = json_pack("{s:s, s:I, s:i, s:i, s:b, s:b, s:I, s:s, s:[], s:{}}", "worker",
                          a->cfg.name, "lease_id", (json_int_t)lease_id, "exit_code", -1,
                          "signal", 0, "oom", 0, "timed_out", 0, "duration_ms", (json_int_t)0,
                          "error", why, "outputs", "metrics");
    enqueue(a, PROTO_RESULT, b);
    pthread_mutex_lock(&a->mu);
    a->free_slots++;
    pthread_mutex_unlock(&a->mu);
}

static void
start_lease(struct agent *a, json_t *l)
{
    json_int_t lease_id = json_integer_value(json_object_get(l, "lease_id"));
    const char *dag = json_string_value(json_object_get(l, "dag"));
    const char *run_id = json_string_value(json_object_get(l, "run_id"));
    const char *task = json_string_value(json_object_get(l, "task"));
    json_t *argv = json_object_get(l, "argv");
    if (lease_id <= 0 || !dag || !run_id || !task || !json_is_array(argv) ||
        json_array_size(argv) == 0) {
        LOG(LOG_ERR, "CAIRN-LEASE-BAD", "malformed lease from the scheduler: ignored");
        if (lease_id > 0)
            start_failed(a, lease_id, "malformed lease");
        else {
            pthread_mutex_lock(&a->mu);
            a->free_slots++;
            pthread_mutex_unlock(&a->mu);
        }
        return;
    }
    struct task *t = xcalloc(1, sizeof(*t));
    t->a = a;
    t->lease_id = lease_id;
    t->label = xasprintf("%s/%s/%s#%d", dag, run_id, task,
                         (int)json_integer_value(json_object_get(l, "attempt")));
    sb_init(&t->logbuf);
    t->workdir = xasprintf("%s/work/%" JSON_INTEGER_FORMAT, a->cfg.data_dir, lease_id);
    char *ws = xasprintf("%s/workspace", t->workdir);
    char *outs = xasprintf("%s/outputs", t->workdir);
    char *bundle = xasprintf("%s/bundles/%" JSON_INTEGER_FORMAT, a->cfg.data_dir, lease_id);
    char *root = xasprintf("%s/runc", a->cfg.data_dir);
    char *cid = xasprintf("cairn-%" JSON_INTEGER_FORMAT "-%d", lease_id, (int)getpid());
    /* lease ids are unique and work/ and bundles/ are emptied when the
     * worker starts, so there is nothing to remove first; runc's folders
     * are made once (agent_run) */
    workdir_take(a, t->workdir);
    const char *mf = json_string_value(json_object_get(l, "metrics"));
    t->metrics_file = mf && !strchr(mf, '/') ? xstrdup(mf) : NULL;
    const char *code = json_string_value(json_object_get(l, "code"));
    struct runc_bind code_bind = {code, "/pipeline", true};
    t->outputs = json_is_array(json_object_get(l, "outputs"))
                     ? json_deep_copy(json_object_get(l, "outputs"))
                     : json_array();

    /* inputs: upstream artifacts, digest checked, read-only at /inputs/NAME */
    json_t *inj = json_object_get(l, "inputs");
    size_t nin = json_is_array(inj) ? json_array_size(inj) : 0;
    struct runc_input *ins = xcalloc(nin + 1, sizeof(*ins));
    char **inpaths = xcalloc(nin + 1, sizeof(*inpaths));
    char *indir = xasprintf("%s/inputs", t->workdir);
    char inerr[512] = "";
    if (nin)
        mkdir(indir, 0755);
    for (size_t i = 0; i < nin && !inerr[0]; i++) {
        json_t *in = json_array_get(inj, i);
        const char *name = json_string_value(json_object_get(in, "name"));
        const char *sha = json_string_value(json_object_get(in, "sha256"));
        char err2[256];
        struct art_store *st;
        if (!name || !sha || strchr(name, '/') || !strcmp(name, "..") || !strcmp(name, ".")) {
            snprintf(inerr, sizeof(inerr), "malformed input in the lease");
            break;
        }
        if (!(st = agent_store(a, err2, sizeof(err2)))) {
            snprintf(inerr, sizeof(inerr), "cannot open the artifact store: %s", err2);
            break;
        }
        inpaths[i] = xasprintf("%s/%s", indir, name);
        if (art_fetch(st, sha, inpaths[i], ART_FETCH_VERIFY, err2, sizeof(err2)) != 0) {
            snprintf(inerr, sizeof(inerr), "cannot fetch input '%s': %s", name, err2);
            break;
        }
        ins[i].name = name;
        ins[i].host_path = inpaths[i];
    }

    json_t *envj = json_object_get(l, "env");
    json_t *env = json_is_array(envj) ? json_deep_copy(envj) : json_array();
    char *outenv = xasprintf("CAIRN_OUTPUTS=%s", a->cfg.isolation_none ? outs : "/outputs");
    json_array_append_new(env, json_string(outenv));
    free(outenv);
    outenv = xasprintf("CAIRN_INPUTS=%s", a->cfg.isolation_none ? indir : "/inputs");
    json_array_append_new(env, json_string(outenv));
    free(outenv);
    if (code) {
        outenv = xasprintf("CAIRN_PIPELINE_DIR=%s", a->cfg.isolation_none ? code : "/pipeline");
        json_array_append_new(env, json_string(outenv));
        free(outenv);
    }
    const char **av = strv_from_json(argv);
    const char **ev = strv_from_json(env);

    struct runc_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.runtime = a->cfg.runtime;
    spec.root = root;
    spec.bundle_dir = bundle;
    spec.container_id = cid;
    spec.argv = av;
    spec.env = ev;
    spec.image = json_string_value(json_object_get(l, "image"));
    spec.workspace_dir = ws;
    spec.outputs_dir = outs;
    spec.inputs = ins;
    spec.n_inputs = nin;
    spec.binds = code ? &code_bind : NULL;
    spec.n_binds = code ? 1 : 0;
    spec.cpus = json_number_value(json_object_get(l, "cpus"));
    spec.memory_bytes = json_integer_value(json_object_get(l, "memory"));
    spec.pids = json_integer_value(json_object_get(l, "pids"));
    spec.network = json_is_true(json_object_get(l, "network"));
    spec.timeout_ms = json_integer_value(json_object_get(l, "timeout_ms"));
    spec.isolation_none = a->cfg.isolation_none;
    struct runc_callbacks cbs = {output_cb, exit_cb};
    char err[512];
    int rc = CAIRN_EIO;
    if (inerr[0])
        snprintf(err, sizeof(err), "%s", inerr);
    else
        rc = runc_start(&t->proc, &a->loop, &spec, &cbs, t, err, sizeof(err));
    for (size_t i = 0; i < nin; i++)
        free(inpaths[i]);
    free(inpaths);
    free(ins);
    free(indir);
    free(av);
    free(ev);
    json_decref(env);
    free(ws);
    free(outs);
    free(bundle);
    free(root);
    free(cid);
    if (rc) {
        LOG(LOG_ERR, "CAIRN-TASK-START", "%s: cannot start: %s", t->label, err);
        char *why = xasprintf("cannot start the task: %s", err);
        start_failed(a, lease_id, why);
        free(why);
        task_free(a, t);
        return;
    }
    t->next = a->tasks;
    a->tasks = t;
    a->running++;
    LOG(LOG_INFO, "CAIRN-TASK-START", "%s: started (lease %" JSON_INTEGER_FORMAT ")", t->label,
        lease_id);
    enqueue(a, PROTO_STARTED, json_pack("{s:s, s:I}", "worker", a->cfg.name, "lease_id",
                                        (json_int_t)lease_id));
}

static void
async_cb(uv_async_t *h)
{
    struct agent *a = h->data;
    pthread_mutex_lock(&a->mu);
    json_t *leases = a->inbox_leases, *cancel = a->inbox_cancel;
    a->inbox_leases = json_array();
    a->inbox_cancel = json_array();
    pthread_mutex_unlock(&a->mu);
    size_t i;
    json_t *v;
    json_array_foreach(cancel, i, v)
    {
        for (struct task *t = a->tasks; t; t = t->next)
            if (t->lease_id == json_integer_value(v) && !t->cancelled && t->proc) {
                LOG(LOG_WARN, "CAIRN-TASK-CANCEL", "%s: lease taken back by the scheduler; "
                    "stopping it", t->label);
                t->cancelled = true;
                runc_stop(t->proc);
            }
    }
    json_array_foreach(leases, i, v)
    {
        if (a->draining) {
            /* Not the task's fault, so not reported as a failure (that would
             * use up a retry, or fail a task that never ran): left unstarted
             * and unrenewed, the lease expires and the scheduler hands the
             * task to another worker. */
            LOG(LOG_NOTICE, "CAIRN-LEASE-DROPPED",
                "lease %" JSON_INTEGER_FORMAT " came while shutting down: not started",
                json_integer_value(json_object_get(v, "lease_id")));
            pthread_mutex_lock(&a->mu);
            a->free_slots++;
            pthread_mutex_unlock(&a->mu);
            continue;
        }
        start_lease(a, v);
    }
    json_decref(leases);
    json_decref(cancel);
    held_update(a);
}

static void
flush_timer_cb(uv_timer_t *h)
{
    struct agent *a = h->data;
    for (struct task *t = a->tasks; t; t = t->next)
        flush_log(t);
}

static void
maybe_finish_drain(struct agent *a)
{
    if (!a->draining || a->running > 0)
        return;
    pthread_mutex_lock(&a->mu);
    a->stopping = true;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->mu);
    uv_timer_stop(&a->flush_timer);
    uv_close((uv_handle_t *)&a->flush_timer, NULL);
    uv_close((uv_handle_t *)&a->async, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
}

static void
signal_cb(uv_signal_t *h, int signum)
{
    struct agent *a = h->data;
    if (a->draining)
        return;
    LOG(LOG_NOTICE, "CAIRN-SIGNAL", "got signal %d: stopping %d running task%s", signum,
        a->running, a->running == 1 ? "" : "s");
    pthread_mutex_lock(&a->mu);
    a->draining = true;
    pthread_mutex_unlock(&a->mu);
    for (struct task *t = a->tasks; t; t = t->next)
        if (t->proc) {
            t->interrupted = true; /* not the task's fault: the RESULT says so */
            runc_stop(t->proc);
        }
    maybe_finish_drain(a);
}

struct closer {
    nng_socket sock;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool done;
};

static void *
closer_main(void *arg)
{
    struct closer *c = arg;
    nng_close(c->sock);
    pthread_mutex_lock(&c->mu);
    c->done = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* nng_close that gives up after ms. nng 1.5 can hang in nng_close when the
 * peer tears the connection down at the same moment (nanomsg/nng#1543, seen
 * here when scheduler and worker stop together); the worker is about to
 * exit, so it does not wait forever. Returns false if it gave up (the
 * closing thread and its state are then left to the exit). */
static bool
close_within(nng_socket sock, int ms)
{
    struct closer *c = xcalloc(1, sizeof(*c));
    pthread_t th;
    c->sock = sock;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, NULL);
    if (pthread_create(&th, NULL, closer_main, c) != 0) {
        closer_main(c);
        th = pthread_self();
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mu);
    int rc = 0;
    while (!c->done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&c->cond, &c->mu, &ts);
    bool done = c->done;
    pthread_mutex_unlock(&c->mu);
    if (!done) {
        pthread_detach(th);
        return false;
    }
    if (!pthread_equal(th, pthread_self()))
        pthread_join(th, NULL);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cond);
    free(c);
    return true;
}

int
agent_run(const struct agent_config *cfg)
{
    struct agent *a = xcalloc(1, sizeof(*a));
    char err[256];
    int rv, code = 0;
    a->cfg = *cfg;
    if (cfg->token_file && proto_key_load(&a->key, cfg->token_file, err, sizeof(err)) != 0) {
        fprintf(stderr, "cairn-worker: %s\n", err);
        free(a);
        return 2;
    }
    if (fs_mkdirs(cfg->data_dir) != 0) {
        fprintf(stderr, "cairn-worker: cannot create %s: %s\n", cfg->data_dir, strerror(errno));
        free(a);
        return 1;
    }
    if (!cfg->isolation_none) {
        char *root = xasprintf("%s/runc", cfg->data_dir);
        int n = runc_reap_leftovers(cfg->runtime, root, NULL);
        if (n > 0)
            LOG(LOG_NOTICE, "CAIRN-REAP", "removed %d container%s left by an earlier run", n,
                n == 1 ? "" : "s");
        else if (n < 0)
            LOG(LOG_WARN, "CAIRN-REAP", "could not remove every leftover container: %s",
                cairn_strerror(n));
        free(root);
    }
    {
        char *w = xasprintf("%s/work", cfg->data_dir), *b = xasprintf("%s/bundles",
                                                                        cfg->data_dir);
        char *r = xasprintf("%s/runc", cfg->data_dir);
        rm_rf(w);
        rm_rf(b);
        fs_mkdirs(w);
        char *pool = xasprintf("%s/.pool", w);
        fs_mkdirs(pool);
        free(pool);
        fs_mkdirs(b);
        fs_mkdirs(r);
        free(w);
        free(b);
        free(r);
    }
    if ((rv = nng_req0_open(&a->sock)) != 0) {
        fprintf(stderr, "cairn-worker: cannot open socket: %s\n", nng_strerror(rv));
        free(a);
        return 1;
    }
    nng_socket_set_ms(a->sock, NNG_OPT_RECONNMINT, 50);
    nng_socket_set_ms(a->sock, NNG_OPT_RECONNMAXT, 1000);
    nng_socket_set_size(a->sock, NNG_OPT_RECVMAXSZ, PROTO_HEADER_LEN + PROTO_MAX_BODY + 64);
    if ((rv = nng_aio_alloc(&a->poll_aio, NULL, NULL)) != 0 ||
        (rv = nng_aio_alloc(&a->send_aio, NULL, NULL)) != 0) {
        fprintf(stderr, "cairn-worker: %s\n", nng_strerror(rv));
        nng_aio_free(a->poll_aio);
        nng_close(a->sock);
        free(a);
        return 1;
    }
    if ((rv = nng_dial(a->sock, cfg->scheduler_url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
        fprintf(stderr, "cairn-worker: cannot dial %s: %s\n", cfg->scheduler_url,
                nng_strerror(rv));
        nng_aio_free(a->poll_aio);
        nng_aio_free(a->send_aio);
        nng_close(a->sock);
        free(a);
        return 2;
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cond, NULL);
    a->inbox_leases = json_array();
    a->inbox_cancel = json_array();
    a->held = json_array();
    a->free_slots = cfg->slots;
    a->heartbeat_ms = 5000;
    uv_loop_init(&a->loop);
    uv_async_init(&a->loop, &a->async, async_cb);
    a->async.data = a;
    uv_timer_init(&a->loop, &a->flush_timer);
    a->flush_timer.data = a;
    uv_timer_start(&a->flush_timer, flush_timer_cb, LOG_FLUSH_MS, LOG_FLUSH_MS);
    uv_signal_init(&a->loop, &a->sigterm);
    uv_signal_init(&a->loop, &a->sigint);
    a->sigterm.data = a->sigint.data = a;
    uv_signal_start(&a->sigterm, signal_cb, SIGTERM);
    uv_signal_start(&a->sigint, signal_cb, SIGINT);
    pthread_create(&a->poll_thread, NULL, poll_main, a);
    pthread_create(&a->send_thread, NULL, send_main, a);
    LOG(LOG_NOTICE, "CAIRN-START", "worker %s: %d slots, scheduler %s, isolation %s",
        cfg->name, cfg->slots, cfg->scheduler_url, cfg->isolation_none ? "none (unsafe)" : "runc");

    uv_run(&a->loop, UV_RUN_DEFAULT);

    /* give the sender a moment to deliver the last results */
    int64_t deadline = clock_mono_ms() + 5000;
    for (;;) {
        pthread_mutex_lock(&a->mu);
        bool empty = a->out_head == NULL;
        pthread_mutex_unlock(&a->mu);
        if (empty || clock_mono_ms() > deadline)
            break;
        sleep_ms(20);
    }
    /* stop what the threads wait for (they see stopping and return), then
     * close the socket */
    nng_aio_stop(a->poll_aio);
    nng_aio_stop(a->send_aio);
    pthread_join(a->poll_thread, NULL);
    pthread_join(a->send_thread, NULL);
    nng_aio_free(a->poll_aio);
    nng_aio_free(a->send_aio);
    if (!close_within(a->sock, 2000))
        LOG(LOG_WARN, "CAIRN-NNG-CLOSE", "closing the scheduler connection hangs (an nng "
            "bug); exiting without waiting for it");
    uv_loop_close(&a->loop);
    for (int i = 0; i < a->npool; i++)
        free(a->pool[i]);
    while (a->out_head) {
        struct outmsg *m = a->out_head;
        a->out_head = m->next;
        json_decref(m->body);
        free(m);
    }
    json_decref(a->inbox_leases);
    json_decref(a->inbox_cancel);
    json_decref(a->held);
    art_close(a->art);
    free(a->artifact_uri);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cond);
    LOG(LOG_NOTICE, "CAIRN-STOPPED", "worker %s stopped", cfg->name);
    free(a);
    return code;
}
