/* attempt.c - the attempts running on this worker (prefix: attempt_).
 *
 * Owns each attempt (struct attempt: its lease id, work folder, host
 * mounts, container process, log buffer, stderr tail and declared outputs)
 * from attempt_start to the RESULT, and the artifact store handle they
 * share (opened on first use from the URI the scheduler named in WELCOME;
 * reopened if that changes while no input or output job uses it). The
 * life of an attempt:
 *
 *   attempt_start: the lease's host mounts checked (mounts.h: a refused one
 *     fails the attempt at once), work folder (workdir_take), then a pulled
 *     image (image_job.h: a pinned one prepared before at once, else the
 *     image job on the thread pool), then, if it has inputs, the inputs
 *     job (inputs.h) on the thread pool; the lease is held (and renewed by
 *     POLLs) meanwhile.
 *   launch: attempt_env, runc_start -> STARTED (or a RESULT "cannot start
 *     the task: ..."; one cancelled or interrupted while its inputs were
 *     fetched is reported then, without starting).
 *   output_cb: output is masked (mask.h: the lease's secret values and
 *     their encodings become ***, before anything leaves the worker), each
 *     stream on its own and then the log they make together, then
 *     buffered and sent as LOG (at 64 KiB, and by the agent's flush timer);
 *     stderr also feeds the tail (tail.h).
 *   exit_cb: the last LOG; on success the outputs job (outputs.h) on the
 *     thread pool; then finish: RESULT (with the stderr tail), slot freed,
 *     folder given back.
 *
 * Every message is a struct msg handed to the link; nothing is built as
 * JSON here. Loop thread only.
 */
#include "attempt.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifact.h"
#include "err.h"
#include "fs.h"
#include "gpu.h"
#include "image_job.h"
#include "imgref.h"
#include "inputs.h"
#include "log.h"
#include "mask.h"
#include "mounts.h"
#include "outputs.h"
#include "runc.h"
#include "tail.h"
#include "units.h"
#include "util.h"
#include "workdir.h"

#include <openssl/crypto.h>

#define LOG_FLUSH_BYTES (64 * 1024)
/* Back-pressure: above HIGH bytes of LOG queued for the scheduler, tasks'
 * output is no longer read (their writes block) until it is below LOW. */
#define LOG_QUEUE_HIGH (8 * 1024 * 1024)
#define LOG_QUEUE_LOW (2 * 1024 * 1024)

struct attempt {
    struct attempt_set *set;
    int64_t lease_id;
    char *label; /* dag/run/task#attempt for logs */
    struct runc_proc *proc;
    struct sb logbuf;
    int64_t log_offset; /* bytes handed to the link so far */
    bool log_capped;    /* max_log_size reached: the rest is dropped */
    int64_t max_log_size; /* bytes, 0 = no limit: the task's, else the worker's */
    bool log_own_limit;   /* max_log_size is the task's (the lease's), not --max-log-size */
    bool log_limit_fail;  /* on_log_limit: fail: at the limit the task is stopped ... */
    bool log_failed;      /* ... and was: its RESULT says why */
    bool paused;        /* its output is not read: the link's queue is full */
    bool cancelled;
    bool interrupted; /* stopped because this worker is shutting down */
    bool fetching;    /* the image or inputs job runs */
    bool input_unavailable; /* an input could not be reached (its RESULT says so) */
    struct xfer_remote remote; /* artifacts through the scheduler's API (xfer.h), when
                                  remote_on; its strings are api_url and the cache's */
    bool remote_on;
    char *api_url;
    char *xfer_token; /* the lease's blob credential, kept past attempt__launch */
    char *code_path;  /* the run's code snapshot built for it (codetree.h), or NULL */
    bool done;
    struct msg_lease lease;    /* until launch */
    struct mounts_bind *binds; /* the lease's host mounts, checked */
    size_t nbinds;
    struct tail *errtail; /* the end of stderr, for the RESULT (NULL until some came) */
    struct mask *mask[3]; /* stdout's, stderr's, and the log's (both streams as they
                             interleave): the lease's secrets masked */
    struct sb masked;     /* a stream's output after its mask */
    struct sb masked_log; /* ...and after the log's, before it is buffered */
    char *workdir;
    char *inputs_dir; /* while the inputs job runs */
    char *outputs_dir;
    char **outputs; /* declared output names */
    size_t noutputs;
    char *metrics_file;        /* the output holding metrics, or NULL */
    int64_t max_output_size;   /* the lease's: bytes per output, all outputs; 0 = no limit */
    int64_t max_outputs_size;
    struct runc_result result; /* while the outputs job runs */
    struct image_info img;     /* a pulled image (rootfs set), from the image job */
    struct attempt *next;
};

struct attempt_set {
    struct attempt_config cfg;
    struct workdir_pool *pool;
    char *root;            /* DATA/runc: the runtime's --root */
    struct art_store *art; /* opened on first use */
    struct art_store *cache; /* DATA/blob-cache: blobs that came through the API */
    char *cache_root;
    char *code_root; /* DATA/code: the runs' code snapshots, built (codetree.h) */
    int art_busy;          /* input and output jobs on the thread pool using art */
    struct attempt *list;
    int running;
    struct attempt_stats stats;
    struct imgjob_cache *images; /* pinned images prepared lately (image_job.h) */
};

/* ---- the environment ---- */

static bool
attempt__env_has(char *const *env, size_t n, const char *key)
{
    size_t k = strlen(key);
    for (size_t i = 0; i < n; i++)
        if (strncmp(env[i], key, k) == 0 && env[i][k] == '=')
            return true;
    return false;
}

char **
attempt_env(const char *const *env, size_t nenv, const struct attempt_where *where,
            bool isolation_none)
{
    char **v = xcalloc(nenv + 6, sizeof(*v));
    size_t n = 0;

    for (size_t i = 0; i < nenv; i++)
        v[n++] = xstrdup(env[i]);
    if (where && where->outputs)
        v[n++] = xasprintf("CAIRN_OUTPUTS=%s", where->outputs);
    if (where && where->inputs)
        v[n++] = xasprintf("CAIRN_INPUTS=%s", where->inputs);
    if (where && where->pipeline)
        v[n++] = xasprintf("CAIRN_PIPELINE_DIR=%s", where->pipeline);
    if (!attempt__env_has(v, n, "PATH"))
        v[n++] = xstrdup("PATH=" RUNC_DEFAULT_PATH);
    if (!isolation_none && !attempt__env_has(v, n, "HOME"))
        v[n++] = xstrdup("HOME=" RUNC_WORKSPACE);
    return v;
}

void
attempt_env_free(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}

/* ---- messages ---- */

/* Make len bytes at s sendable (msg.h): a NUL becomes '?', and if what is
 * left is not valid UTF-8 every non-ASCII byte does too. */
static void
attempt__printable(char *s, size_t len)
{
    for (char *p = memchr(s, '\0', len); p; p = memchr(p, '\0', len - (size_t)(p - s)))
        *p = '?';
    if (!msg_utf8_valid(s, len))
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)s[i] >= 0x80)
                s[i] = '?';
}

static char *
attempt__text(const char *s)
{
    char *t = xstrdup(s);
    attempt__printable(t, strlen(t));
    return t;
}

static void
attempt__flush_log(struct attempt *t)
{
    struct attempt_set *s = t->set;
    struct msg m;
    size_t len = t->logbuf.len;

    if (!len)
        return;
    if (t->log_capped) { /* read and dropped: the task is not blocked */
        t->logbuf.len = 0;
        return;
    }
    int64_t max = t->max_log_size;
    char *marker = NULL;
    if (max > 0 && t->log_offset + (int64_t)len > max) {
        char sz[UNITS_SIZE_BUFSZ];
        units_format_size(max, sz, sizeof(sz));
        len = (size_t)(max - t->log_offset);
        if (t->log_limit_fail)
            marker = xasprintf("\n[cairn: the log reached %s of %s; on_log_limit is fail: the "
                               "task is stopped]\n",
                               t->log_own_limit ? "the task's max_log_size"
                                                : "the worker's --max-log-size",
                               sz);
        else if (t->log_own_limit)
            marker = xasprintf("\n[cairn: the log reached the task's max_log_size of %s; the "
                               "rest of this attempt's output is dropped]\n",
                               sz);
        else
            marker = xasprintf("\n[cairn: the log reached the worker's --max-log-size of %lld "
                               "bytes; the rest of this attempt's output is dropped]\n",
                               (long long)max);
        t->log_capped = true;
        LOG(LOG_WARN, "CAIRN-LOG-LIMIT", "%s: the log reached %lld bytes: %s",
            t->label ? t->label : "?", (long long)max,
            t->log_limit_fail ? "the task is stopped (on_log_limit: fail)" : "the rest is dropped");
        if (t->log_limit_fail) {
            t->log_failed = true;
            if (t->proc && !t->cancelled)
                runc_stop(t->proc);
        }
    }
    size_t mlen = marker ? strlen(marker) : 0;
    memset(&m, 0, sizeof(m));
    m.type = PROTO_LOG;
    m.u.log.worker = xstrdup(s->cfg.worker);
    m.u.log.lease_id = t->lease_id;
    m.u.log.stream = 1;
    m.u.log.offset = t->log_offset;
    m.u.log.data = xmalloc(len + mlen + 1);
    memcpy(m.u.log.data, t->logbuf.buf, len);
    attempt__printable(m.u.log.data, len);
    if (marker)
        memcpy(m.u.log.data + len, marker, mlen);
    free(marker);
    len += mlen;
    m.u.log.data[len] = '\0';
    m.u.log.data_len = len;
    t->log_offset += (int64_t)len;
    t->logbuf.len = 0;
    link_send(s->cfg.link, &m);
    if (t->proc && !t->paused && link_queued_log_bytes(s->cfg.link) > LOG_QUEUE_HIGH) {
        runc_pause_output(t->proc, true);
        t->paused = true;
        LOG(LOG_INFO, "CAIRN-LOG-BACKPRESSURE",
            "%s: its output waits: the log queued for the scheduler is over %d MiB",
            t->label ? t->label : "?", LOG_QUEUE_HIGH >> 20);
    }
}

/* Bytes of the log after the log's mask: into the log buffer. */
static void
attempt__take_log(struct attempt *t, const char *data, size_t len)
{
    if (!len)
        return;
    sb_append(&t->logbuf, data, len);
    if (t->logbuf.len >= LOG_FLUSH_BYTES)
        attempt__flush_log(t);
}

/* Masked bytes of a stream: into stderr's tail, and through the log's
 * mask (a value written half to stdout, half to stderr meets there) into
 * the log buffer. */
static void
attempt__take_output(struct attempt *t, int stream, const char *data, size_t len)
{
    if (!len)
        return;
    if (stream == 2) {
        if (!t->errtail)
            t->errtail = tail_new();
        tail_feed(t->errtail, data, len);
    }
    if (!mask_active(t->mask[2])) {
        attempt__take_log(t, data, len);
        return;
    }
    t->masked_log.len = 0;
    mask_feed(t->mask[2], data, len, &t->masked_log);
    attempt__take_log(t, t->masked_log.buf, t->masked_log.len);
}

static void
attempt__output_cb(void *ud, int stream, const char *data, size_t len)
{
    struct attempt *t = ud;
    struct mask *m = t->mask[stream == 2];
    if (!mask_active(m)) {
        attempt__take_output(t, stream, data, len);
        return;
    }
    t->masked.len = 0;
    mask_feed(m, data, len, &t->masked);
    attempt__take_output(t, stream, t->masked.buf, t->masked.len);
}

/* The end of the task's output: what the masks held back. */
static void
attempt__flush_masks(struct attempt *t)
{
    for (int i = 0; i < 2; i++) {
        if (!mask_active(t->mask[i]))
            continue;
        t->masked.len = 0;
        mask_flush(t->mask[i], &t->masked);
        attempt__take_output(t, i + 1, t->masked.buf, t->masked.len);
    }
    if (mask_active(t->mask[2])) {
        t->masked_log.len = 0;
        mask_flush(t->mask[2], &t->masked_log);
        attempt__take_log(t, t->masked_log.buf, t->masked_log.len);
    }
}

/* ---- secrets ---- */

static void
attempt__wipe_lease_secrets(struct msg_lease *l)
{
    for (size_t i = 0; i < l->nsecrets; i++)
        if (l->secrets[i])
            OPENSSL_cleanse(l->secrets[i], strlen(l->secrets[i]));
}

/* The secrets folder of an attempt's work folder, gone (it is 0500). */
static void
attempt__remove_secrets(const char *workdir)
{
    char *dir = xasprintf("%s/secrets", workdir);
    if (chmod(dir, 0700) == 0)
        fs_rmtree(dir);
    free(dir);
}

/* The lease's secrets as files DIR/NAME (0400, the folder 0500), for
 * /run/secrets. Returns 0, or -1 with err set. */
static int
attempt__write_secrets(const struct msg_lease *l, const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot make %s: %s", dir, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < l->nsecrets; i++) {
        const char *name = l->secret_names[i], *v = strchr(l->secrets[i], '=') + 1;
        if (!*name || strchr(name, '/') || name[0] == '.') {
            snprintf(err, errlen, "secret name '%s' is not a file name", name);
            return -1;
        }
        char *path = xasprintf("%s/%s", dir, name);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0400);
        size_t n = strlen(v), off = 0;
        while (fd >= 0 && off < n) {
            ssize_t w = write(fd, v + off, n - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        int bad = fd < 0 || off < n;
        if (fd >= 0 && close(fd) != 0)
            bad = 1;
        if (bad) {
            snprintf(err, errlen, "cannot write the file of secret '%s': %s", name,
                     strerror(errno));
            free(path);
            return -1;
        }
        free(path);
    }
    if (chmod(dir, 0500) != 0) {
        snprintf(err, errlen, "cannot chmod %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* A RESULT for a lease that could not start at all; its slot is free. */
static void
attempt__start_failed(struct attempt_set *s, int64_t lease_id, const char *why)
{
    struct msg m;
    memset(&m, 0, sizeof(m));
    m.type = PROTO_RESULT;
    m.u.result.worker = xstrdup(s->cfg.worker);
    m.u.result.lease_id = lease_id;
    m.u.result.exit_code = -1;
    m.u.result.error = attempt__text(why);
    link_send(s->cfg.link, &m);
    link_slot_free(s->cfg.link);
}

void
attempt_sync_held(struct attempt_set *s)
{
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    for (struct attempt *t = s->list; t; t = t->next)
        if (!t->done) {
            xgrow((void **)&ids, &cap, n + 1, sizeof(*ids));
            ids[n++] = t->lease_id;
        }
    link_set_held(s->cfg.link, ids, n);
    free(ids);
}

/* ---- the artifact store ---- */

static struct art_store *attempt__store_direct(struct attempt_set *s, char *err,
                                               size_t errlen);

/* Where t's artifacts go: the scheduler's store itself, or (when this
 * host does not see it: link_artifacts_direct) the blob cache, with
 * t->remote set up for the API. NULL with err set if neither can be had. */
static struct art_store *
attempt__store(struct attempt *t, char *err, size_t errlen)
{
    struct attempt_set *s = t->set;
    if (link_artifacts_direct(s->cfg.link)) {
        t->remote_on = false;
        return attempt__store_direct(s, err, errlen);
    }
    if (!t->api_url && !(t->api_url = link_api_url(s->cfg.link))) {
        snprintf(err, errlen, "this worker does not see the artifact store and the scheduler "
                 "named no API port: give --api URL");
        return NULL;
    }
    const char *tok = t->xfer_token ? t->xfer_token : t->lease.xfer_token;
    if (!tok) {
        snprintf(err, errlen, "this worker does not see the artifact store and the lease "
                 "carries no credential for the scheduler's blob routes");
        return NULL;
    }
    if (!s->cache) {
        free(s->cache_root);
        s->cache_root = xasprintf("%s/blob-cache", s->cfg.data_dir);
        if (art_open(&s->cache, s->cache_root, err, errlen) != 0) {
            s->cache = NULL;
            return NULL;
        }
    }
    t->remote = (struct xfer_remote){t->api_url, s->cfg.api_ca, t->lease_id, tok, s->cache_root,
                                     link_lease_ttl_ms(s->cfg.link), s->cfg.blob_cache_size};
    t->remote_on = true;
    return s->cache;
}

/* The artifact store the scheduler named, opened on first use. */
static struct art_store *
attempt__store_direct(struct attempt_set *s, char *err, size_t errlen)
{
    char *uri = link_artifact_uri(s->cfg.link);
    if (!uri) {
        snprintf(err, errlen, "the scheduler named no artifact store");
        return NULL;
    }
    if (s->art && strcmp(art_uri(s->art), uri) != 0 && s->art_busy == 0) {
        art_close(s->art);
        s->art = NULL;
    }
    struct art_open_opts o = {.path_style = -1, .credentials_file = s->cfg.artifacts_credentials};
    if (!s->art && art_open_with(&s->art, uri, &o, err, errlen) != 0)
        s->art = NULL;
    free(uri);
    return s->art;
}

/* ---- the end of an attempt ---- */

static void
attempt__free(struct attempt *t)
{
    struct attempt_set *s = t->set;
    struct attempt **pp = &s->list;
    while (*pp && *pp != t)
        pp = &(*pp)->next;
    if (*pp)
        *pp = t->next;
    if (t->workdir) {
        attempt__remove_secrets(t->workdir);
        workdir_give(s->pool, t->workdir);
        free(t->workdir);
    }
    attempt__wipe_lease_secrets(&t->lease);
    msg_lease_clear(&t->lease);
    image_info_clear(&t->img);
    mounts_binds_free(t->binds, t->nbinds);
    tail_free(t->errtail);
    for (int i = 0; i < 3; i++)
        mask_free(t->mask[i]);
    if (t->masked.buf)
        OPENSSL_cleanse(t->masked.buf, t->masked.cap);
    sb_free(&t->masked);
    if (t->masked_log.buf)
        OPENSSL_cleanse(t->masked_log.buf, t->masked_log.cap);
    sb_free(&t->masked_log);
    sb_free(&t->logbuf);
    for (size_t i = 0; i < t->noutputs; i++)
        free(t->outputs[i]);
    free(t->outputs);
    free(t->inputs_dir);
    free(t->outputs_dir);
    free(t->metrics_file);
    free(t->api_url);
    free(t->code_path);
    if (t->xfer_token) {
        OPENSSL_cleanse(t->xfer_token, strlen(t->xfer_token));
        free(t->xfer_token);
    }
    free(t->label);
    free(t);
}

/* Report the attempt (outputs and metrics, if any, are taken) and free its
 * slot. */
static void
attempt__finish(struct attempt *t, const struct runc_result *res, const char *error,
                struct outputs_result *got)
{
    struct attempt_set *s = t->set;
    struct msg m;
    memset(&m, 0, sizeof(m));
    m.type = PROTO_RESULT;
    struct msg_result *r = &m.u.result;
    r->worker = xstrdup(s->cfg.worker);
    r->lease_id = t->lease_id;
    r->exit_code = res->exit_code;
    r->signal = res->term_signal;
    r->oom = res->oom_killed;
    r->timed_out = res->timed_out;
    r->duration_ms = res->duration_ms;
    r->error = attempt__text(error);
    r->interrupted = t->interrupted && res->exit_code != 0;
    r->input_unavailable = t->input_unavailable;
    if (r->interrupted)
        s->stats.interrupted++;
    else if (r->exit_code == 0 && !r->signal && !r->oom && !r->timed_out && !(error && error[0]))
        s->stats.succeeded++;
    else
        s->stats.failed++;
    if (got) {
        for (size_t i = 0; i < got->noutputs; i++) {
            s->stats.outputs++;
            s->stats.output_bytes += got->outputs[i].size > 0 ? (uint64_t)got->outputs[i].size : 0;
        }
        r->outputs = got->outputs;
        r->noutputs = got->noutputs;
        r->metrics = got->metrics;
        r->nmetrics = got->nmetrics;
        got->outputs = NULL;
        got->metrics = NULL;
    }
    if (t->errtail)
        tail_take(t->errtail, &r->stderr_tail, &r->nstderr_tail);
    /* the slot first: the RESULT's BATCH then asks for the next lease */
    link_slot_free(s->cfg.link);
    link_send(s->cfg.link, &m);
    LOG(LOG_INFO, "CAIRN-TASK-EXIT", "%s: exit %d signal %d%s%s (%" PRId64 " ms)%s%s", t->label,
        res->exit_code, res->term_signal, res->oom_killed ? " oom" : "",
        res->timed_out ? " timeout" : "", res->duration_ms, error[0] ? ": " : "", error);
    t->done = true;
    s->running--;
    attempt__free(t);
    attempt_sync_held(s);
    if (s->cfg.idle_cb)
        s->cfg.idle_cb(s->cfg.ud);
}

static void
attempt__outputs_done(void *ud, struct outputs_result *got)
{
    struct attempt *t = ud;
    t->set->art_busy--;
    attempt__finish(t, &t->result, got->error, got);
}

static void
attempt__exit_cb(void *ud, const struct runc_result *res)
{
    struct attempt *t = ud;
    struct attempt_set *s = t->set;
    struct art_store *st = NULL;
    char error[512];

    attempt__flush_masks(t);
    attempt__flush_log(t);
    runc_proc_free(t->proc);
    t->proc = NULL;
    snprintf(error, sizeof(error), "%s", res->error);
    if (t->log_failed) {
        char sz[UNITS_SIZE_BUFSZ];
        units_format_size(t->max_log_size, sz, sizeof(sz));
        snprintf(error, sizeof(error), "log exceeded max_log_size %s (on_log_limit: fail)", sz);
    }
    bool ok = res->exit_code == 0 && !res->term_signal && !res->timed_out && !res->oom_killed &&
              !error[0];
    if (ok && t->noutputs) {
        char err[256] = "";
        st = attempt__store(t, err, sizeof(err));
        if (!st)
            snprintf(error, sizeof(error), "cannot store outputs: %s", err);
    }
    if (!ok || error[0] || (!st && !t->metrics_file)) {
        attempt__finish(t, res, error, NULL);
        return;
    }
    t->result = *res;
    struct outputs_spec spec = {t->outputs_dir,  t->outputs, t->noutputs,
                                t->metrics_file, st,         t->max_output_size,
                                t->max_outputs_size, t->remote_on ? &t->remote : NULL};
    s->art_busy++;
    outputs_collect(s->cfg.loop, &spec, attempt__outputs_done, t);
}

/* ---- the start of an attempt ---- */

/* The attempt ends before its task started (it is in the list, holding its
 * slot): a RESULT saying why, the slot freed. */
static void
attempt__unstarted(struct attempt *t, const char *why)
{
    struct runc_result res;

    memset(&res, 0, sizeof(res));
    res.exit_code = -1;
    LOG(LOG_ERR, "CAIRN-TASK-START", "%s: not started: %s", t->label, why);
    attempt__finish(t, &res, why, NULL);
}

/* Start the container (inputs are in place: paths[i] for the lease's
 * inputs[i]). */
static void
attempt__launch(struct attempt *t, char *const *paths)
{
    struct attempt_set *s = t->set;
    struct msg_lease *l = &t->lease;
    bool none = s->cfg.isolation_none;
    int64_t id = t->lease_id;
    char *ws = xasprintf("%s/workspace", t->workdir);
    /* the bundle is the work folder itself (its config.json beside
     * workspace/ and outputs/, which the container sees, not it): no
     * folder to make and remove per task; the skeletons stay in
     * DATA/bundles/.rootfs */
    char *skels = xasprintf("%s/bundles/.rootfs", s->cfg.data_dir);
    char *cid = xasprintf("cairn-%" PRId64 "-%d", id, (int)getpid());
    char *indir = xasprintf("%s/inputs", t->workdir);
    const char *code = t->code_path ? t->code_path : l->code;

    /* inputs: upstream artifacts, digest checked, read-only at /inputs/NAME */
    struct runc_input *ins = xcalloc(l->ninputs + 1, sizeof(*ins));
    for (size_t i = 0; i < l->ninputs; i++) {
        ins[i].name = l->inputs[i].name;
        ins[i].host_path = paths[i];
    }
    struct attempt_where where = {
        none ? t->outputs_dir : "/outputs",
        none ? indir : "/inputs",
        code ? (none ? code : "/pipeline") : NULL,
    };
    char **env = attempt_env((const char *const *)l->env, l->nenv, &where, none);
    char **argv = NULL;
    char uerr[256] = "";
    if (t->img.rootfs) {
        if (l->entrypoint_set) {
            /* the task's entrypoint replaces the image's */
            imgjob_strv_free(t->img.entrypoint);
            t->img.entrypoint = xcalloc(l->nentrypoint + 1, sizeof(char *));
            for (size_t i = 0; i < l->nentrypoint; i++)
                t->img.entrypoint[i] = xstrdup(l->entrypoint[i]);
        }
        env = imgjob_env(&t->img, env);
        argv = imgjob_argv(&t->img, (const char *const *)l->argv);
    } else if (l->entrypoint_set && l->nentrypoint) {
        struct image_info ep = {.entrypoint = l->entrypoint};
        argv = imgjob_argv(&ep, (const char *const *)l->argv);
    }
    /* the secrets: in the environment and, in a container, as files at
     * /run/secrets/NAME */
    if (l->nsecrets) {
        size_t ne = 0;
        while (env[ne])
            ne++;
        env = xrealloc(env, (ne + l->nsecrets + 1) * sizeof(*env));
        for (size_t i = 0; i < l->nsecrets; i++)
            env[ne++] = xstrdup(l->secrets[i]);
        env[ne] = NULL;
    }
    char *secdir = NULL, serr[512] = "";
    if (l->nsecrets && !none) {
        secdir = xasprintf("%s/secrets", t->workdir);
        if (attempt__write_secrets(l, secdir, serr, sizeof(serr)) != 0) {
            free(secdir);
            secdir = NULL;
        }
    }
    /* what a task must not see of the host: the scheduler's key and
     * secrets (for image host) and this worker's key */
    const char **masked = xcalloc(l->nmask_paths + 3, sizeof(*masked));
    size_t nmasked = 0;
    char tokreal[PATH_MAX], credreal[PATH_MAX];
    for (size_t i = 0; i < l->nmask_paths; i++)
        masked[nmasked++] = l->mask_paths[i];
    if (s->cfg.token_file && realpath(s->cfg.token_file, tokreal))
        masked[nmasked++] = tokreal;
    if (s->cfg.artifacts_credentials && realpath(s->cfg.artifacts_credentials, credreal))
        masked[nmasked++] = credreal;
    /* its GPUs: the devices, their variables, the driver's files (gpu.h) */
    struct gpu_attempt ga;
    char gerr[512] = "";
    if (gpu_attempt(s->cfg.gpus, l->gpus, l->ngpus, !none,
                    !l->image || !strcmp(l->image, "host"), &ga, gerr, sizeof(gerr)) == 0)
        env = gpu_env_apply(env, &ga);
    else
        memset(&ga, 0, sizeof(ga));
    /* the code at /pipeline, the host mounts (a container has them as
     * binds; with isolation none a task sees them where they are), then
     * the GPU driver's files */
    struct runc_bind *binds = xcalloc(t->nbinds + ga.nbinds + 2, sizeof(*binds));
    size_t nb = 0;
    if (code)
        binds[nb++] = (struct runc_bind){code, "/pipeline", true};
    for (size_t i = 0; i < t->nbinds && !none; i++)
        binds[nb++] =
            (struct runc_bind){t->binds[i].source, t->binds[i].dest, t->binds[i].readonly};
    for (size_t i = 0; i < ga.nbinds; i++)
        binds[nb++] = ga.binds[i];

    struct runc_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.runtime = s->cfg.runtime;
    spec.root = s->root;
    spec.bundle_dir = t->workdir;
    spec.bundle_dir_exists = true;
    spec.rootfs_cache = skels;
    spec.container_id = cid;
    spec.cgroup_parent = s->cfg.cgroup_parent;
    spec.argv = (const char *const *)(argv ? argv : l->argv);
    spec.env = (const char *const *)env;
    spec.image = t->img.rootfs ? t->img.rootfs : l->image;
    if (t->img.rootfs) {
        spec.cwd = t->img.workdir;
        if (imgjob_user(&t->img, &spec.has_user, &spec.uid, &spec.gid, uerr, sizeof(uerr)) == 0 &&
            spec.has_user) {
            /* the task's own folders belong to the image's user */
            if (chown(ws, spec.uid, spec.gid) != 0 || chown(t->outputs_dir, spec.uid, spec.gid) != 0)
                snprintf(uerr, sizeof(uerr), "cannot give /workspace to uid %u: %s",
                         (unsigned)spec.uid, strerror(errno));
        }
    }
    spec.workspace_dir = ws;
    spec.outputs_dir = t->outputs_dir;
    spec.inputs = ins;
    spec.n_inputs = l->ninputs;
    spec.binds = nb ? binds : NULL;
    spec.n_binds = nb;
    spec.devices = ga.devices;
    spec.n_devices = ga.ndevices;
    spec.scratch_dir = ga.scratch_dir;
    spec.secrets_dir = secdir;
    spec.masked = masked;
    spec.n_masked = nmasked;
    spec.cpus = l->cpus;
    spec.memory_bytes = l->memory;
    spec.pids = l->pids;
    spec.network = l->network;
    spec.timeout_ms = l->timeout_ms;
    spec.isolation_none = none;
    struct runc_callbacks cbs = {attempt__output_cb, attempt__exit_cb};
    char err[512];
    int rc = CAIRN_EIO;
    if (gerr[0])
        snprintf(err, sizeof(err), "%s", gerr);
    else if (uerr[0])
        snprintf(err, sizeof(err), "%s", uerr);
    else if (serr[0])
        snprintf(err, sizeof(err), "%s", serr);
    else
        rc = runc_start(&t->proc, s->cfg.loop, &spec, &cbs, t, err, sizeof(err));
    free(ins);
    free(indir);
    for (size_t i = 0; env[i]; i++)
        OPENSSL_cleanse(env[i], strlen(env[i]));
    attempt_env_free(env);
    imgjob_strv_free(argv);
    free(secdir);
    free(masked);
    attempt__wipe_lease_secrets(l);
    gpu_attempt_clear(&ga);
    free(binds);
    free(ws);
    free(skels);
    free(cid);
    /* the blob credential outlives the lease's other fields: the outputs
     * may go through the API when the task ends */
    if (!t->xfer_token) {
        t->xfer_token = l->xfer_token;
        l->xfer_token = NULL;
    }
    msg_lease_clear(l);
    if (rc) {
        char *why = xasprintf("cannot start the task: %s", err);
        t->proc = NULL;
        attempt__unstarted(t, why);
        free(why);
        return;
    }
    LOG(LOG_INFO, "CAIRN-TASK-START", "%s: started (lease %" PRId64 ")", t->label, id);
    struct msg m;
    memset(&m, 0, sizeof(m));
    m.type = PROTO_STARTED;
    m.u.started.worker = xstrdup(s->cfg.worker);
    m.u.started.lease_id = id;
    link_send(s->cfg.link, &m);
}

static void
attempt__inputs_done(void *ud, struct inputs_result *res)
{
    struct attempt *t = ud;
    char *why = NULL;

    t->set->art_busy--;
    t->fetching = false;
    if (t->cancelled)
        why = xstrdup("the lease was taken back before the task started");
    else if (t->interrupted)
        why = xstrdup("the worker was stopped before the task started");
    else if (res->error[0]) {
        why = xasprintf("cannot start the task: %s", res->error);
        t->input_unavailable = res->unavailable;
    }
    if (why) {
        attempt__unstarted(t, why);
        free(why);
        return;
    }
    t->code_path = res->code_path; /* the run's code snapshot, built */
    res->code_path = NULL;
    attempt__launch(t, res->paths);
}

static void attempt__fetch_inputs(struct attempt *t);

static void
attempt__image_done(void *ud, struct image_info *info, const char *log, const char *error)
{
    struct attempt *t = ud;
    struct attempt_stats *st = &t->set->stats;
    char *why = NULL;
    t->fetching = false;
    if (error[0]) {
        st->images_failed++;
    } else if (info->bytes_pulled > 0) {
        st->images_pulled++;
        st->image_bytes += (uint64_t)info->bytes_pulled;
    } else {
        st->images_cached++;
    }
    if (log[0]) {
        sb_puts(&t->logbuf, log);
        attempt__flush_log(t);
    }
    if (t->cancelled)
        why = xstrdup("the lease was taken back before the task started");
    else if (t->interrupted)
        why = xstrdup("the worker was stopped before the task started");
    else if (error[0])
        why = xasprintf("cannot start the task: %s", error);
    if (why) {
        if (error[0]) {
            sb_printf(&t->logbuf, "cairn: %s\n", error);
            attempt__flush_log(t);
        }
        attempt__unstarted(t, why);
        free(why);
        return;
    }
    LOG(LOG_INFO, "CAIRN-TASK-IMAGE", "%s: image %s is %s (%s)", t->label, t->lease.image,
        info->digest, info->rootfs);
    t->img = *info;
    memset(info, 0, sizeof(*info));
    attempt__fetch_inputs(t);
}

void
attempt_start(struct attempt_set *s, struct msg_lease *l)
{
    int64_t id = l->lease_id;
    struct attempt *t = xcalloc(1, sizeof(*t));
    char err[512];
    t->set = s;
    t->lease_id = id;
    t->label = xasprintf("%s/%s/%s#%" PRId64, l->dag, l->run_id, l->task, l->attempt);
    sb_init(&t->logbuf);
    sb_init(&t->masked);
    sb_init(&t->masked_log);
    t->max_log_size = s->cfg.max_log_size;
    if (l->max_log_size) { /* the task's own limit; -1: none */
        t->max_log_size = l->max_log_size > 0 ? l->max_log_size : 0;
        t->log_own_limit = true;
    }
    t->log_limit_fail = l->log_limit_fail && t->max_log_size > 0;

    if (l->nsecrets != l->nsecret_names) {
        snprintf(err, sizeof(err), "the lease has %zu secrets but %zu secret names",
                 l->nsecrets, l->nsecret_names);
        LOG(LOG_ERR, "CAIRN-LEASE-BAD", "%s: refused: %s", t->label, err);
        attempt__start_failed(s, id, err);
        attempt__wipe_lease_secrets(l);
        msg_lease_clear(l);
        attempt__free(t);
        return;
    }
    /* the secret values, masked in its output from the first byte */
    const char **vals = xcalloc(l->nsecrets + 1, sizeof(*vals));
    for (size_t i = 0; i < l->nsecrets; i++)
        vals[i] = strchr(l->secrets[i], '=') + 1;
    for (int i = 0; i < 3; i++)
        mask_new(&t->mask[i], vals, l->nsecrets);
    free(vals);

    /* host mounts first: a refused one costs nothing (no folder, no fetch) */
    if (mounts_check(s->cfg.allow, s->cfg.worker, l->mounts, l->nmounts, s->cfg.isolation_none,
                     &t->binds, err, sizeof(err)) != 0) {
        LOG(LOG_ERR, "CAIRN-TASK-MOUNT", "%s: refused: %s", t->label, err);
        attempt__start_failed(s, id, err);
        attempt__wipe_lease_secrets(l);
        msg_lease_clear(l);
        attempt__free(t);
        return;
    }
    t->nbinds = l->nmounts;
    for (size_t i = 0; i < l->nmounts; i++)
        LOG(LOG_INFO, "CAIRN-TASK-MOUNT", "%s: host %s at %s (%s)", t->label, l->mounts[i].host,
            l->mounts[i].path, l->mounts[i].readonly ? "read-only" : "read-write");

    t->workdir = xasprintf("%s/work/%" PRId64, s->cfg.data_dir, id);
    t->outputs_dir = xasprintf("%s/outputs", t->workdir);
    /* lease ids are unique and work/ and bundles/ are emptied when the
     * worker starts, so there is nothing to remove first; runc's folders
     * are made once (workdir_prepare) */
    workdir_take(s->pool, t->workdir);
    if (l->metrics && !strchr(l->metrics, '/')) {
        t->metrics_file = l->metrics;
        l->metrics = NULL;
    }
    t->outputs = l->outputs;
    t->noutputs = l->noutputs;
    t->max_output_size = l->max_output_size;
    t->max_outputs_size = l->max_outputs_size;
    l->outputs = NULL;
    l->noutputs = 0;
    t->lease = *l;
    memset(l, 0, sizeof(*l));
    t->next = s->list;
    s->list = t;
    s->running++;
    if (s->cfg.images && t->lease.image && imgref_is_pulled(t->lease.image)) {
        struct image_info known;
        if (imgjob_cached(s->images, s->cfg.images, t->lease.image, &known)) {
            /* a pinned image this worker has prepared before, at once */
            t->fetching = true;
            attempt__image_done(t, &known, "", "");
            image_info_clear(&known);
            return;
        }
        /* the image: pulled and unpacked on the thread pool */
        t->fetching = true;
        imgjob_start(s->cfg.loop, s->cfg.images, s->images, t->lease.image, attempt__image_done, t);
        return;
    }
    attempt__fetch_inputs(t);
}

/* The image is ready (or none is needed): the inputs, then the launch. */
static void
attempt__fetch_inputs(struct attempt *t)
{
    struct attempt_set *s = t->set;
    char err[512];
    if (t->lease.ninputs == 0 && !t->lease.code_tree) {
        attempt__launch(t, NULL);
        return;
    }

    /* inputs: fetched on the thread pool, digest checked */
    struct art_store *st = attempt__store(t, err, sizeof(err));
    if (!st) {
        char *why = xasprintf("cannot start the task: cannot open the artifact store: %s", err);
        t->input_unavailable = true;
        attempt__unstarted(t, why);
        free(why);
        return;
    }
    t->inputs_dir = xasprintf("%s/inputs", t->workdir);
    if (!s->code_root)
        s->code_root = xasprintf("%s/code", s->cfg.data_dir);
    struct inputs_spec spec = {st, t->inputs_dir, t->lease.inputs, t->lease.ninputs,
                               t->remote_on ? &t->remote : NULL, t->lease.code_tree, s->code_root};
    s->art_busy++;
    t->fetching = true;
    inputs_fetch(s->cfg.loop, &spec, attempt__inputs_done, t);
}

void
attempt_refuse(struct attempt_set *s, const struct msg_bad_lease *bad)
{
    if (bad->lease_id <= 0) {
        LOG(LOG_ERR, "CAIRN-LEASE-BAD",
            "malformed lease from the scheduler (no valid lease_id): "
            "%s; ignored",
            bad->why);
        link_slot_free(s->cfg.link);
        return;
    }
    LOG(LOG_ERR, "CAIRN-LEASE-BAD", "malformed lease %" PRId64 " from the scheduler: %s",
        bad->lease_id, bad->why);
    char *why = xasprintf("malformed lease: %s", bad->why);
    attempt__start_failed(s, bad->lease_id, why);
    free(why);
}

void
attempt_cancel(struct attempt_set *s, int64_t lease_id)
{
    for (struct attempt *t = s->list; t; t = t->next) {
        if (t->lease_id == lease_id && !t->cancelled && t->fetching) {
            LOG(LOG_WARN, "CAIRN-TASK-CANCEL",
                "%s: lease taken back by the scheduler while its inputs are fetched; "
                "it will not start",
                t->label);
            t->cancelled = true;
        }
        if (t->lease_id == lease_id && !t->cancelled && t->proc) {
            LOG(LOG_WARN, "CAIRN-TASK-CANCEL",
                "%s: lease taken back by the scheduler; "
                "stopping it",
                t->label);
            t->cancelled = true;
            runc_stop(t->proc);
        }
    }
}

void
attempt_interrupt_all(struct attempt_set *s)
{
    for (struct attempt *t = s->list; t; t = t->next) {
        if (t->fetching)
            t->interrupted = true; /* reported when its inputs are in: not started */
        if (t->proc) {
            t->interrupted = true; /* not the task's fault: the RESULT says so */
            runc_stop(t->proc);
        }
    }
}

void
attempt_flush_logs(struct attempt_set *s)
{
    for (struct attempt *t = s->list; t; t = t->next)
        attempt__flush_log(t);
    if (link_queued_log_bytes(s->cfg.link) < LOG_QUEUE_LOW)
        for (struct attempt *t = s->list; t; t = t->next)
            if (t->paused) {
                t->paused = false;
                if (t->proc)
                    runc_pause_output(t->proc, false);
            }
}

bool
attempt_holds(const struct attempt_set *s, int64_t lease_id)
{
    for (const struct attempt *t = s->list; t; t = t->next)
        if (t->lease_id == lease_id)
            return true;
    return false;
}

int
attempt_running(const struct attempt_set *s)
{
    return s->running;
}

void
attempt_get_stats(const struct attempt_set *s, struct attempt_stats *out)
{
    *out = s->stats;
}

void
attempt_set_new(struct attempt_set **out, const struct attempt_config *cfg)
{
    struct attempt_set *s = xcalloc(1, sizeof(*s));
    s->cfg = *cfg;
    s->root = xasprintf("%s/runc", cfg->data_dir);
    s->images = imgjob_cache_new();
    workdir_pool_new(&s->pool, cfg->data_dir, cfg->loop);
    *out = s;
}

void
attempt_set_free(struct attempt_set *s)
{
    if (!s)
        return;
    art_close(s->art);
    art_close(s->cache);
    free(s->cache_root);
    free(s->code_root);
    workdir_pool_free(s->pool);
    imgjob_cache_free(s->images);
    free(s->root);
    free(s);
}
