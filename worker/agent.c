/* agent.c - the worker agent's lifecycle (prefix: agent_).
 *
 * Owns the process-wide pieces of cairn-worker and their order: the token,
 * the folders tasks may mount (mounts.h), the data folder (leftover
 * containers and this worker's own empty cgroups reaped, work folders made
 * fresh), the libuv loop with its wake-up handle, log flush timer and
 * signal handlers, the link to the scheduler (link.h) and the set of
 * running attempts (attempt.h). agent_run builds them, runs the loop until
 * the worker is stopped, then takes them down in reverse.
 *
 * Stopping: SIGTERM or SIGINT starts a drain. The link offers no more slots
 * (its POLLs only renew leases), leases that still arrive are handed back
 * unstarted (a RESULT marked interrupted: not the task's fault, so no retry
 * is used up), and every running attempt is stopped and reported
 * "interrupted". When the last one
 * is reported the loop's handles are closed, the loop returns, and the link
 * gets up to 5 s to deliver what is queued.
 *
 * Prefetch: the link may bring more leases than there are free slots (up
 * to --prefetch beyond them, as the scheduler allows). Those wait here, in
 * the order they came, and the next one starts the moment an attempt ends,
 * without a round trip to the scheduler. Queued leases are listed in every
 * POLL, so they stay renewed; one the scheduler takes back is dropped
 * unstarted; a drain hands them all back at once (they go elsewhere, as
 * leases that arrive while shutting down do).
 *
 * Threads: everything here runs on the loop thread except wake_cb, which
 * the link's poll thread calls (uv_async_send is the one thing it does).
 */
#include "agent.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <jansson.h>

#include "attempt.h"
#include "blobcache.h"
#include "err.h"
#include "fs.h"
#include "gpu.h"
#include "http.h"
#include "image.h"
#include "ident.h"
#include "link.h"
#include "log.h"
#include "metrics.h"
#include "mounts.h"
#include "msg.h"
#include "proto.h"
#include "runc.h"
#include "util.h"
#include "watchdog.h"
#include "workdir.h"
#include "xfer.h"

#define LOG_FLUSH_MS 100
#define SEND_FLUSH_MS 5000

struct agent {
    struct agent_config cfg;
    struct proto_key key;
    struct ident *ident;
    char *server_name;
    struct msg_kv *labels;
    size_t nlabels;
    struct gpu_set *gpus;
    struct msg_gpu *hello_gpus;
    struct image_opts images;
    char *images_dir; /* DATA/images */
    uv_loop_t loop;
    uv_async_t async;
    uv_timer_t flush_timer;
    uv_signal_t sigterm, sigint;
    struct link *link;
    struct attempt_set *attempts;
    struct mounts_allow *allow;
    char *cgroup_parent; /* this worker's own (runc_cgroup_parent_for); NULL with isolation none */
    struct watchdog *watchdog; /* stops our containers if we die (watchdog.h) */
    bool draining;
    struct msg_lease *queue; /* leases waiting for a slot, oldest first */
    size_t nqueue, capqueue;
    struct http_server *http; /* --metrics, or NULL */
};

/* Tell the link which leases wait here (for the next POLL). */
static void
queue_sync(struct agent *a)
{
    int64_t *ids = a->nqueue ? xmalloc(a->nqueue * sizeof(*ids)) : NULL;
    for (size_t i = 0; i < a->nqueue; i++)
        ids[i] = a->queue[i].lease_id;
    link_set_queued(a->link, ids, a->nqueue);
    free(ids);
}

/* A lease this worker will not start because it is shutting down goes
 * back at once: a RESULT that says so (interrupted, never started), which
 * the scheduler takes as not the task's fault (no retry used up) and hands
 * the task to another worker, instead of waiting for the lease to expire. */
static void
hand_back(struct agent *a, int64_t lease_id)
{
    struct msg m;
    memset(&m, 0, sizeof(m));
    m.type = PROTO_RESULT;
    m.u.result.worker = xstrdup(a->cfg.name);
    m.u.result.lease_id = lease_id;
    m.u.result.exit_code = -1;
    m.u.result.interrupted = true;
    m.u.result.error = xstrdup("the worker was stopped before the task started");
    link_send(a->link, &m);
}

/* Drop the queued lease at i, unstarted; its slot is free again. A lease
 * dropped because the worker stops is handed back (hand_back). */
static void
queue_drop(struct agent *a, size_t i, const char *why)
{
    LOG(LOG_NOTICE, "CAIRN-LEASE-DROPPED", "lease %" PRId64 " (%s/%s/%s): %s: not started",
        a->queue[i].lease_id, a->queue[i].dag, a->queue[i].run_id, a->queue[i].task, why);
    if (a->draining)
        hand_back(a, a->queue[i].lease_id);
    msg_lease_clear(&a->queue[i]);
    memmove(&a->queue[i], &a->queue[i + 1], (a->nqueue - i - 1) * sizeof(*a->queue));
    a->nqueue--;
    link_slot_free(a->link);
}

/* Start queued leases while slots are free. */
static void
queue_run(struct agent *a)
{
    size_t started = 0;
    while (started < a->nqueue && attempt_running(a->attempts) < a->cfg.slots)
        attempt_start(a->attempts, &a->queue[started++]); /* zeroes it */
    if (!started)
        return;
    memmove(a->queue, a->queue + started, (a->nqueue - started) * sizeof(*a->queue));
    a->nqueue -= started;
    queue_sync(a);
    attempt_sync_held(a->attempts);
}

/* The poll thread: leases or cancels are waiting in the link. */
static void
wake_cb(void *ud)
{
    struct agent *a = ud;
    uv_async_send(&a->async);
}

/* What WORKs brought: cancels first, then the leases (calls coalesce: the
 * link hands over everything since the last call). */
static void
async_cb(uv_async_t *h)
{
    struct agent *a = h->data;
    struct msg work;
    link_take_work(a->link, &work);
    struct msg_work *w = &work.u.work;
    for (size_t i = 0; i < w->ncancel; i++) {
        size_t q = 0;
        while (q < a->nqueue && a->queue[q].lease_id != w->cancel[i])
            q++;
        if (q < a->nqueue)
            queue_drop(a, q, "taken back by the scheduler");
        else
            attempt_cancel(a->attempts, w->cancel[i]);
    }
    for (size_t i = 0; i < w->nbad + w->nleases; i++) {
        bool bad = i < w->nbad;
        if (a->draining) {
            /* Not the task's fault: handed back unstarted (no retry used
             * up), and the scheduler gives the task to another worker. */
            int64_t id = bad ? w->bad[i].lease_id : w->leases[i - w->nbad].lease_id;
            LOG(LOG_NOTICE, "CAIRN-LEASE-DROPPED",
                "lease %" PRId64 " came while shutting down: not started, handed back", id);
            hand_back(a, id);
            link_slot_free(a->link);
            continue;
        }
        int64_t id = bad ? w->bad[i].lease_id : w->leases[i - w->nbad].lease_id;
        bool have = id > 0 && attempt_holds(a->attempts, id);
        for (size_t q = 0; q < a->nqueue && !have; q++)
            have = a->queue[q].lease_id == id;
        if (have) {
            /* sent again by a scheduler that thought its first answer lost */
            LOG(LOG_NOTICE, "CAIRN-LEASE-DUPLICATE", "lease %" PRId64 " came again: held already",
                id);
            link_slot_free(a->link);
            continue;
        }
        if (bad) {
            attempt_refuse(a->attempts, &w->bad[i]);
        } else if (a->nqueue == 0 && attempt_running(a->attempts) < a->cfg.slots) {
            attempt_start(a->attempts, &w->leases[i - w->nbad]);
        } else { /* a prefetched lease: it waits for a slot */
            xgrow((void **)&a->queue, &a->capqueue, a->nqueue + 1, sizeof(*a->queue));
            a->queue[a->nqueue++] = w->leases[i - w->nbad];
            memset(&w->leases[i - w->nbad], 0, sizeof(w->leases[0]));
        }
    }
    msg_clear(&work);
    queue_sync(a);
    attempt_sync_held(a->attempts);
}

static void
flush_timer_cb(uv_timer_t *h)
{
    struct agent *a = h->data;
    attempt_flush_logs(a->attempts);
}

/* The drain is over once nothing runs: close the loop's handles, so
 * uv_run returns, and let the link's threads wind down. */
static void
maybe_finish_drain(struct agent *a)
{
    if (!a->draining || attempt_running(a->attempts) > 0)
        return;
    link_shutdown(a->link);
    http_server_close(a->http, NULL, NULL);
    a->http = NULL;
    uv_timer_stop(&a->flush_timer);
    uv_close((uv_handle_t *)&a->flush_timer, NULL);
    uv_close((uv_handle_t *)&a->async, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
}

/* An attempt was reported: its slot takes the next queued lease. */
static void
idle_cb(void *ud)
{
    struct agent *a = ud;
    if (!a->draining)
        queue_run(a);
    maybe_finish_drain(a);
}

static void
signal_cb(uv_signal_t *h, int signum)
{
    struct agent *a = h->data;
    int running = attempt_running(a->attempts);
    if (a->draining)
        return;
    LOG(LOG_NOTICE, "CAIRN-SIGNAL", "got signal %d: stopping %d running task%s", signum, running,
        running == 1 ? "" : "s");
    a->draining = true;
    xfer_stop(); /* transfers waiting out an outage give up */
    link_drain(a->link);
    while (a->nqueue)
        queue_drop(a, a->nqueue - 1, "shutting down");
    queue_sync(a);
    attempt_interrupt_all(a->attempts);
    maybe_finish_drain(a);
}

/* The worker's metrics (docs/operations.md), made afresh for each scrape
 * from the attempt set's counts. */
static char *
metrics_text(struct agent *a, size_t *len)
{
    struct metrics *m = metrics_new();
    struct attempt_stats st;
    attempt_get_stats(a->attempts, &st);
    struct metrics_family *f;
    f = metrics_family(m, "cairn_worker_running_containers", METRICS_GAUGE,
                       "Attempts running now (containers, or processes with isolation none).",
                       "", NULL, 0);
    metrics_set(f, NULL, attempt_running(a->attempts));
    f = metrics_family(m, "cairn_worker_queued_leases", METRICS_GAUGE,
                       "Prefetched leases waiting for a free slot.", "", NULL, 0);
    metrics_set(f, NULL, (double)a->nqueue);
    f = metrics_family(m, "cairn_worker_slots_capacity", METRICS_GAUGE,
                       "Tasks this worker runs at once (--slots).", "", NULL, 0);
    metrics_set(f, NULL, a->cfg.slots);
    f = metrics_family(m, "cairn_worker_leases_done_total", METRICS_COUNTER,
                       "Attempts run and reported, by result.", "result", NULL, 0);
    metrics_add(f, (const char *[]){"success"}, (double)st.succeeded);
    metrics_add(f, (const char *[]){"failed"}, (double)st.failed);
    metrics_add(f, (const char *[]){"interrupted"}, (double)st.interrupted);
    f = metrics_family(m, "cairn_worker_image_prepares_total", METRICS_COUNTER,
                       "Registry or OCI layout images made ready for a task, by how.", "result",
                       NULL, 0);
    metrics_add(f, (const char *[]){"pulled"}, (double)st.images_pulled);
    metrics_add(f, (const char *[]){"cached"}, (double)st.images_cached);
    metrics_add(f, (const char *[]){"failed"}, (double)st.images_failed);
    f = metrics_family(m, "cairn_worker_image_pulled_bytes_total", METRICS_COUNTER,
                       "Bytes fetched by image pulls.", "", NULL, 0);
    metrics_add(f, NULL, (double)st.image_bytes);
    f = metrics_family(m, "cairn_worker_outputs_stored_total", METRICS_COUNTER,
                       "Outputs stored in the artifact store.", "", NULL, 0);
    metrics_add(f, NULL, (double)st.outputs);
    f = metrics_family(m, "cairn_worker_output_bytes_total", METRICS_COUNTER,
                       "Bytes of the outputs stored in the artifact store.", "", NULL, 0);
    metrics_add(f, NULL, (double)st.output_bytes);
    char *text = metrics_render(m, len);
    metrics_free(m);
    return text;
}

static void
http_cb(void *ud, struct http_conn *c, const struct http_req *req)
{
    struct agent *a = ud;
    if (strcmp(req->path, "/metrics") != 0) {
        http_respond_error(c, 404, "not_found", "no such endpoint: %s (only /metrics)",
                           req->path);
        return;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        http_respond_error(c, 405, "method_not_allowed", "/metrics takes GET");
        return;
    }
    size_t len;
    char *text = metrics_text(a, &len);
    http_respond(c, 200, METRICS_CONTENT_TYPE, text, len);
    free(text);
}

/* --labels as main.c passes it: a JSON object of strings (config, not a
 * message). */
static void
labels_parse(struct agent *a, const char *text)
{
    json_t *j = json_loads(text ? text : "{}", 0, NULL);
    const char *k;
    json_t *v;
    if (json_is_object(j)) {
        a->labels = xcalloc(json_object_size(j) + 1, sizeof(*a->labels));
        json_object_foreach(j, k, v)
        {
            if (!json_is_string(v))
                continue;
            a->labels[a->nlabels].key = xstrdup(k);
            a->labels[a->nlabels].value = xstrdup(json_string_value(v));
            a->nlabels++;
        }
    }
    json_decref(j);
}

static void
agent_free(struct agent *a)
{
    for (size_t i = 0; i < a->nqueue; i++)
        msg_lease_clear(&a->queue[i]);
    free(a->queue);
    for (size_t i = 0; i < a->nlabels; i++) {
        free(a->labels[i].key);
        free(a->labels[i].value);
    }
    free(a->labels);
    mounts_allow_free(a->allow);
    watchdog_stop(a->watchdog); /* a clean stop: nothing of ours runs */
    free(a->cgroup_parent);
    free(a->hello_gpus);
    gpu_set_free(a->gpus);
    free(a->images_dir);
    ident_free(a->ident);
    free(a->server_name);
    free(a);
}

/* The host of an nng URL ("tls+tcp://sched.example:7781" -> "sched.example"). */
static char *
url_host(const char *url)
{
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    const char *end = strrchr(h, ':');
    size_t n = end ? (size_t)(end - h) : strlen(h);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']')
        return xstrndup(h + 1, n - 2);
    return xstrndup(h, n);
}

int
agent_run(const struct agent_config *cfg)
{
    struct agent *a = xcalloc(1, sizeof(*a));
    char err[256];
    int rc;
    a->cfg = *cfg;
    if (cfg->token_file && proto_key_load(&a->key, cfg->token_file, err, sizeof(err)) != 0) {
        fprintf(stderr, "cairn-worker: %s\n", err);
        agent_free(a);
        return 2;
    }
    if ((cfg->tls_cert || cfg->tls_key || cfg->tls_ca) &&
        ident_load(&a->ident, cfg->tls_cert, cfg->tls_key, cfg->tls_ca, err, sizeof(err)) != 0) {
        fprintf(stderr, "cairn-worker: %s\n", err);
        agent_free(a);
        return 2;
    }
    if (a->ident) {
        char *cn = ident_name(a->ident);
        if (strcmp(cn, cfg->name) != 0)
            LOG(LOG_WARN, "CAIRN-TLS-NAME",
                "the certificate %s is for '%s' but this worker is named '%s': the scheduler "
                "will refuse it (give --name %s)", cfg->tls_cert, cn, cfg->name, cn);
        free(cn);
        a->server_name = cfg->tls_server_name ? xstrdup(cfg->tls_server_name)
                                              : url_host(cfg->scheduler_url);
    }
    if (mounts_allow_new(&a->allow, cfg->allow_mounts, cfg->nallow_mounts, err, sizeof(err)) != 0) {
        fprintf(stderr, "cairn-worker: %s\n", err);
        agent_free(a);
        return 2;
    }
    if (fs_mkdirs(cfg->data_dir) != 0) {
        fprintf(stderr, "cairn-worker: cannot create %s: %s\n", cfg->data_dir, strerror(errno));
        agent_free(a);
        return 1;
    }
    char *runc_root = cfg->isolation_none ? NULL : xasprintf("%s/runc", cfg->data_dir);
    if (!cfg->isolation_none)
        /* its own cgroup parent: reaping never touches another worker's */
        a->cgroup_parent = runc_cgroup_parent_for(NULL, cfg->name, cfg->data_dir);
    /* before any thread: it forks (and waits for a predecessor's) */
    struct watchdog_config wc = {.data_dir = cfg->data_dir, .runtime = cfg->runtime,
                                 .runc_root = runc_root, .cgroup_parent = a->cgroup_parent,
                                 .lock_wait_ms = 10000};
    rc = watchdog_start(&wc, &a->watchdog, err, sizeof(err));
    free(runc_root);
    if (rc) {
        fprintf(stderr, "cairn-worker: %s\n", err);
        agent_free(a);
        return 1;
    }
    if (!cfg->isolation_none) {
        char *root = xasprintf("%s/runc", cfg->data_dir);
        LOG(LOG_INFO, "CAIRN-CGROUP", "the containers' cgroups go under %s", a->cgroup_parent);
        int n = runc_reap_leftovers(cfg->runtime, root, a->cgroup_parent);
        if (n > 0)
            LOG(LOG_NOTICE, "CAIRN-REAP", "removed %d container%s left by an earlier run", n,
                n == 1 ? "" : "s");
        else if (n < 0)
            LOG(LOG_WARN, "CAIRN-REAP", "could not remove every leftover container: %s",
                cairn_strerror(n));
        free(root);
    }
    workdir_prepare(cfg->data_dir);
    /* images: an unpack an earlier run left half done is removed */
    a->images_dir = xasprintf("%s/images", cfg->data_dir);
    image_cleanup_tmp(a->images_dir);
    a->images.dir = a->images_dir;
    a->images.reg.auth_file = cfg->registry_auth;
    a->images.reg.ca_file = cfg->registry_ca;
    a->images.reg.insecure = cfg->insecure_registries;
    a->images.reg.ninsecure = cfg->ninsecure_registries;
    a->images.cache_size =
        cfg->image_cache_size > 0 ? cfg->image_cache_size : (int64_t)20 << 30; /* 20Gi */
    labels_parse(a, cfg->labels_json);
    struct gpu_options go = {.declared = cfg->gpus, .model = cfg->gpu_model,
                             .dev_dir = cfg->gpu_dev_dir};
    if ((rc = gpu_discover(&a->gpus, &go, err, sizeof(err))) != 0) {
        fprintf(stderr, "cairn-worker: %s\n", err);
        agent_free(a);
        return 2;
    }
    a->hello_gpus = gpu_hello(a->gpus);
    for (size_t i = 0; i < a->gpus->n; i++)
        LOG(LOG_INFO, "CAIRN-GPU", "GPU %d: %s (%s)", a->gpus->gpus[i].index,
            a->gpus->gpus[i].model[0] ? a->gpus->gpus[i].model : "model unknown",
            a->gpus->gpus[i].dev);

    struct link_config lc = {
        .url = cfg->scheduler_url,
        .name = cfg->name,
        .host = cfg->host,
        .slots = cfg->slots,
        .prefetch = cfg->prefetch,
        .labels = a->labels,
        .nlabels = a->nlabels,
        .gpus = a->hello_gpus,
        .ngpus = a->gpus->n,
        .images_dir = a->images_dir,
        .key = &a->key,
        .ident = a->ident,
        .server_name = a->server_name,
        .artifacts_direct = cfg->artifacts_direct,
        .api_url = cfg->api_url,
        .wake_cb = wake_cb,
        .ud = a,
    };
    xfer_global_init(); /* before any thread uses curl */
    if ((rc = link_open(&a->link, &lc, err, sizeof(err))) != 0) {
        fprintf(stderr, "cairn-worker: %s\n", err);
        agent_free(a);
        return rc == CAIRN_EINVAL ? 2 : 1;
    }
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
    struct attempt_config ac = {
        .loop = &a->loop,
        .link = a->link,
        .data_dir = cfg->data_dir,
        .worker = cfg->name,
        .runtime = cfg->runtime,
        .cgroup_parent = a->cgroup_parent,
        .allow = a->allow,
        .isolation_none = cfg->isolation_none,
        .max_log_size = cfg->max_log_size,
        .token_file = cfg->token_file,
        .artifacts_credentials = cfg->artifacts_credentials,
        .gpus = a->gpus,
        .images = &a->images,
        .api_ca = cfg->api_ca,
        .blob_cache_size = cfg->blob_cache_size < 0   ? 0
                           : cfg->blob_cache_size == 0 ? BLOBCACHE_DEFAULT_SIZE
                                                       : cfg->blob_cache_size,
        .idle_cb = idle_cb,
        .ud = a,
    };
    attempt_set_new(&a->attempts, &ac);
    if (cfg->metrics_host &&
        http_server_start(&a->http, &a->loop, cfg->metrics_host, cfg->metrics_port, http_cb, a) !=
            0) {
        fprintf(stderr, "cairn-worker: cannot serve --metrics on %s:%d\n", cfg->metrics_host,
                cfg->metrics_port);
        a->draining = true;
        maybe_finish_drain(a); /* nothing runs: closes the handles */
        uv_run(&a->loop, UV_RUN_DEFAULT);
        link_close(a->link, 0);
        uv_loop_close(&a->loop);
        attempt_set_free(a->attempts);
        agent_free(a);
        return 2;
    }
    if (link_start(a->link) != 0) {
        fprintf(stderr, "cairn-worker: cannot start the connection threads\n");
        a->draining = true;
        maybe_finish_drain(a); /* nothing runs: closes the handles */
        uv_run(&a->loop, UV_RUN_DEFAULT);
        link_close(a->link, 0);
        uv_loop_close(&a->loop);
        attempt_set_free(a->attempts);
        agent_free(a);
        return 1;
    }
    LOG(LOG_NOTICE, "CAIRN-START",
        "worker %s: %d slots (prefetch %d), %zu GPU%s, scheduler %s, isolation %s", cfg->name,
        cfg->slots, cfg->prefetch, a->gpus->n, a->gpus->n == 1 ? "" : "s", cfg->scheduler_url,
        cfg->isolation_none ? "none (unsafe)" : "runc");
    if (a->http)
        LOG(LOG_NOTICE, "CAIRN-METRICS", "worker metrics at http://%s:%d/metrics",
            cfg->metrics_host, http_server_port(a->http));

    uv_run(&a->loop, UV_RUN_DEFAULT);

    link_close(a->link, SEND_FLUSH_MS);
    uv_loop_close(&a->loop);
    attempt_set_free(a->attempts);
    if (a->cgroup_parent)
        runc_cgroup_parent_remove(a->cgroup_parent); /* nothing of ours runs any more */
    LOG(LOG_NOTICE, "CAIRN-STOPPED", "worker %s stopped", cfg->name);
    agent_free(a);
    return 0;
}
