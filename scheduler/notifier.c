/* notifier.c - events to deliveries, deliveries to their targets
 * (notifier.h). */
#include "notifier.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "deadline.h"
#include "err.h"
#include "log.h"
#include "notify.h"
#include "runtab.h"
#include "schema.h"
#include "store.h"
#include "util.h"

extern char **environ;

/* A delivery not yet delivered or given up, in memory. */
struct ntf_item {
    char *key;
    json_t *rec;     /* its record (schema_notification's encoding), owned */
    int64_t next_at; /* wall ms of its next try */
    bool durable;    /* its record is committed: it may be sent */
    bool dirty;      /* changed since the last commit */
    bool inflight;   /* a sender thread has it */
    bool done;       /* delivered or failed: dropped after the commit */
};

/* What a sender thread needs, copied: the loop keeps its item. */
struct ntf_job {
    struct ntf_item *item;
    bool webhook;
    char *url, *secret_file, **argv, *body;
    bool ok;
    char error[256];
    struct ntf_job *next;
};

struct ntf {
    struct sched *s;
    struct ntf_item **items;
    size_t nitems, capitems;
    bool dirty;
    char *ui_url;
    uv_timer_t timer;
    uv_async_t async;
    bool started, inited;
    uv_thread_t threads[NTF_THREADS];
    uv_mutex_t mu;
    uv_cond_t cv;
    struct ntf_job *todo, *todo_tail, *done;
    atomic_int quit; /* set by the loop at stop, read by the threads */
};

static struct ntf *
ntf__get(struct sched *s)
{
    return s->ntf;
}

static void ntf__schedule(struct ntf *n);
static void ntf__timer_cb(uv_timer_t *t);

/* ---------- the sender threads ---------- */

static int
ntf__progress_cb(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    return ((struct ntf *)ud)->quit ? 1 : 0;
}

static size_t
ntf__discard_cb(char *p, size_t sz, size_t nm, void *ud)
{
    (void)p, (void)ud;
    return sz * nm;
}

static void
ntf__post(struct ntf *n, struct ntf_job *j)
{
    char sig[NOTIFY_SIG_LEN + 1], hdr[NOTIFY_SIG_LEN + 32];
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "User-Agent: cairn-scheduler");
    if (j->secret_file) {
        char *key = NULL;
        size_t klen = 0;
        if (notify_secret_read(j->secret_file, &key, &klen, j->error, sizeof(j->error)) != 0) {
            curl_slist_free_all(h);
            return;
        }
        int rc = notify_sign(key, klen, j->body, strlen(j->body), sig);
        memset(key, 0, klen);
        free(key);
        if (rc) {
            snprintf(j->error, sizeof(j->error), "cannot sign the body");
            curl_slist_free_all(h);
            return;
        }
        snprintf(hdr, sizeof(hdr), "X-Cairn-Signature: %s", sig);
        h = curl_slist_append(h, hdr);
    }
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(j->error, sizeof(j->error), "cannot start libcurl");
        curl_slist_free_all(h);
        return;
    }
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, j->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, j->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(j->body));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)NOTIFY_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ntf__discard_cb);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, ntf__progress_cb);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, n);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (rc != CURLE_OK)
        snprintf(j->error, sizeof(j->error), "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
    else if (code < 200 || code > 299)
        snprintf(j->error, sizeof(j->error), "HTTP %ld", code);
    else
        j->ok = true;
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
}

/* The command with the body on its stdin, stdout to /dev/null; it gets
 * NOTIFY_TIMEOUT_MS (then SIGKILL). */
static void
ntf__command(struct ntf *n, struct ntf_job *j)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        snprintf(j->error, sizeof(j->error), "pipe: %s", strerror(errno));
        return;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[0], 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, j->argv[0], &fa, NULL, j->argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[0]);
    if (rc != 0) {
        close(p[1]);
        snprintf(j->error, sizeof(j->error), "cannot run %s: %s", j->argv[0], strerror(rc));
        return;
    }
    /* the body goes in without blocking, within the command's time: one
     * that does not read its stdin cannot hold the thread (SIGPIPE is
     * ignored: a command that exits early just ends the write) */
    int64_t until = clock_mono_ms() + NOTIFY_TIMEOUT_MS;
    fcntl(p[1], F_SETFL, fcntl(p[1], F_GETFL) | O_NONBLOCK);
    size_t len = strlen(j->body), off = 0;
    while (off < len && !n->quit && clock_mono_ms() < until) {
        ssize_t w = write(p[1], j->body + off, len - off);
        if (w > 0) {
            off += (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd pf = {p[1], POLLOUT, 0};
            poll(&pf, 1, 20);
        } else {
            break;
        }
    }
    close(p[1]);
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            snprintf(j->error, sizeof(j->error), "waitpid: %s", strerror(errno));
            return;
        }
        if (n->quit || clock_mono_ms() > until) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            snprintf(j->error, sizeof(j->error), "%s", n->quit ? "stopped" : "timed out");
            return;
        }
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        j->ok = true;
    else if (WIFEXITED(st))
        snprintf(j->error, sizeof(j->error), "exit code %d", WEXITSTATUS(st));
    else
        snprintf(j->error, sizeof(j->error), "killed by signal %d", WTERMSIG(st));
}

static void
ntf__thread(void *ud)
{
    struct ntf *n = ud;
    uv_mutex_lock(&n->mu);
    for (;;) {
        while (!n->quit && !n->todo)
            uv_cond_wait(&n->cv, &n->mu);
        if (n->quit)
            break;
        struct ntf_job *j = n->todo;
        n->todo = j->next;
        if (!n->todo)
            n->todo_tail = NULL;
        uv_mutex_unlock(&n->mu);
        if (j->webhook)
            ntf__post(n, j);
        else
            ntf__command(n, j);
        uv_mutex_lock(&n->mu);
        j->next = n->done;
        n->done = j;
        uv_async_send(&n->async);
    }
    uv_mutex_unlock(&n->mu);
}

static void
ntf__job_free(struct ntf_job *j)
{
    free(j->url);
    free(j->secret_file);
    for (size_t i = 0; j->argv && j->argv[i]; i++)
        free(j->argv[i]);
    free(j->argv);
    free(j->body);
    free(j);
}

/* ---------- deliveries on the loop ---------- */

static void
ntf__item_free(struct ntf_item *it)
{
    free(it->key);
    json_decref(it->rec);
    free(it);
}

static void
ntf__add(struct ntf *n, char *key, json_t *rec, bool durable)
{
    struct ntf_item *it = xcalloc(1, sizeof(*it));
    it->key = key;
    it->rec = rec;
    it->next_at = schema_time_parse(json_object_get(rec, "next_at"));
    it->durable = durable;
    it->dirty = !durable;
    if (!durable)
        n->dirty = true;
    xgrow((void **)&n->items, &n->capitems, n->nitems + 1, sizeof(*n->items));
    n->items[n->nitems++] = it;
}

/* Hand due durable items to the threads; arm the timer for the next. */
static void
ntf__schedule(struct ntf *n)
{
    if (!n->started || n->quit)
        return;
    int64_t now = clock_wall_ms(), next = 0;
    for (size_t i = 0; i < n->nitems; i++) {
        struct ntf_item *it = n->items[i];
        if (!it->durable || it->inflight || it->done)
            continue;
        if (it->next_at > now) {
            if (!next || it->next_at < next)
                next = it->next_at;
            continue;
        }
        struct schema_notification d;
        char err[256];
        if (schema_notification_decode(it->rec, &d, err, sizeof(err)) != 0) {
            LOG(LOG_ERR, "CAIRN-RECORD-BAD", "notification %s: %s", it->key, err);
            it->done = true;
            continue;
        }
        struct ntf_job *j = xcalloc(1, sizeof(*j));
        j->item = it;
        j->webhook = !strcmp(d.kind, "webhook");
        j->url = d.url ? xstrdup(d.url) : NULL;
        j->secret_file = d.secret_file ? xstrdup(d.secret_file) : NULL;
        if (!j->webhook) {
            size_t na = json_array_size(d.command);
            j->argv = xcalloc(na + 1, sizeof(*j->argv));
            for (size_t k = 0; k < na; k++) {
                const char *a = json_string_value(json_array_get(d.command, k));
                j->argv[k] = xstrdup(a ? a : "");
            }
        }
        j->body = json_dumps(d.body, JSON_COMPACT | JSON_SORT_KEYS);
        if (!j->body)
            j->body = xstrdup("{}");
        it->inflight = true;
        uv_mutex_lock(&n->mu);
        if (n->todo_tail)
            n->todo_tail->next = j;
        else
            n->todo = j;
        n->todo_tail = j;
        uv_cond_signal(&n->cv);
        uv_mutex_unlock(&n->mu);
    }
    uv_timer_stop(&n->timer);
    if (next)
        uv_timer_start(&n->timer, ntf__timer_cb, (uint64_t)(next - now), 0);
}

static void
ntf__timer_cb(uv_timer_t *t)
{
    ntf__schedule(t->data);
}

static void
ntf__result(struct ntf *n, struct ntf_job *j)
{
    struct ntf_item *it = j->item;
    it->inflight = false;
    if (n->quit)
        return; /* stays pending; sent again after the restart */
    json_t *r = it->rec;
    int attempts = (int)json_integer_value(json_object_get(r, "attempts")) + 1;
    int max = (int)json_integer_value(json_object_get(r, "max_attempts"));
    if (max <= 0)
        max = NOTIFY_MAX_ATTEMPTS;
    int64_t now = clock_wall_ms();
    json_object_set_new(r, "attempts", json_integer(attempts));
    const char *dag = json_string_value(json_object_get(r, "dag"));
    const char *ev = json_string_value(json_object_get(r, "event"));
    if (j->ok) {
        json_object_set_new(r, "state", json_string("delivered"));
        json_object_set_new(r, "delivered_at", schema_time_json(now));
        json_object_set_new(r, "next_at", json_null());
        it->done = true;
        LOG(LOG_INFO, "CAIRN-NOTIFY-SENT", "%s notification %s of %s delivered (try %d)", ev,
            it->key, dag, attempts);
    } else {
        json_object_set_new(r, "last_error", json_string(j->error));
        if (attempts >= max) {
            json_object_set_new(r, "state", json_string("failed"));
            json_object_set_new(r, "next_at", json_null());
            it->done = true;
            LOG(LOG_WARN, "CAIRN-NOTIFY-FAILED",
                "%s notification of %s given up after %d tries: %s", ev, dag, attempts, j->error);
        } else {
            int64_t base = n->s->cfg.notify_backoff_ms > 0 ? n->s->cfg.notify_backoff_ms
                                                           : NOTIFY_BACKOFF_BASE_MS;
            it->next_at = now + notify_backoff_ms(attempts, base, NOTIFY_BACKOFF_MAX_MS);
            json_object_set_new(r, "next_at", schema_time_json(it->next_at));
            LOG(LOG_INFO, "CAIRN-NOTIFY-RETRY", "%s notification of %s: try %d failed (%s)", ev,
                dag, attempts, j->error);
        }
    }
    it->dirty = true;
    n->dirty = true;
}

static void
ntf__async_cb(uv_async_t *a)
{
    struct ntf *n = a->data;
    uv_mutex_lock(&n->mu);
    struct ntf_job *done = n->done;
    n->done = NULL;
    uv_mutex_unlock(&n->mu);
    while (done) {
        struct ntf_job *next = done->next;
        ntf__result(n, done);
        ntf__job_free(done);
        done = next;
    }
    /* the new state is committed before the next try (or none) */
}

/* ---------- the commit participant ---------- */

static bool
ntf__dirty_cb(void *ud)
{
    return ((struct ntf *)ud)->dirty;
}

static int
ntf__flush_cb(void *ud, struct store_txn *t)
{
    struct ntf *n = ud;
    for (size_t i = 0; i < n->nitems; i++) {
        struct ntf_item *it = n->items[i];
        if (!it->dirty)
            continue;
        int rc = store_put(t, STORE_NOTIFICATIONS, it->key, it->rec);
        if (rc)
            return rc;
    }
    return 0;
}

static void
ntf__clear_cb(void *ud)
{
    struct ntf *n = ud;
    size_t keep = 0;
    for (size_t i = 0; i < n->nitems; i++) {
        struct ntf_item *it = n->items[i];
        if (it->dirty)
            it->durable = true;
        it->dirty = false;
        if (it->done && !it->inflight) {
            ntf__item_free(it);
            continue;
        }
        n->items[keep++] = it;
    }
    n->nitems = keep;
    n->dirty = false;
    ntf__schedule(n);
}

/* ---------- events ---------- */

/* A webhook's URL as shown in logs and listings: scheme, host and port
 * only, "/..." for a path (a Slack webhook's path is its secret; user
 * info and query are left out too). malloc'd. */
static char *
ntf__redact(const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *out;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        curl_url_get(u, CURLUPART_PORT, &port, 0);
        curl_url_get(u, CURLUPART_PATH, &path, 0);
        out = xasprintf("%s://%s%s%s%s", scheme, host, port ? ":" : "", port ? port : "",
                        path && strcmp(path, "/") ? "/..." : "/");
    } else {
        out = xstrdup("(a URL)");
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_url_cleanup(u);
    return out;
}

/* A URL's path part: bytes outside [A-Za-z0-9._~:+-] as %XX. */
static void
ntf__url_part(struct sb *sb, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("._~:+-", *p))
            sb_putc(sb, (char)*p);
        else
            sb_printf(sb, "%%%02X", *p);
    }
}

struct ntf_event {
    unsigned ev; /* DAG_EV_* */
    struct sched_run *r;
    struct sched_ti *ti; /* or NULL: the run's */
    const char *state;   /* the run's or task instance's state */
    const char *error;   /* or NULL */
    long n;              /* what makes the id unique (an attempt, a start) */
    json_t *extra;       /* members added to the body (owned), or NULL */
};

static json_t *
ntf__body(struct ntf *n, const struct ntf_event *e, const char *id, const char *task)
{
    char ld[48];
    schema_date_format(e->r->logical_date, ld, sizeof(ld));
    struct sb url, text;
    sb_init(&url);
    sb_init(&text);
    sb_printf(&url, "%s/#/run/", n->ui_url ? n->ui_url : "");
    ntf__url_part(&url, e->r->dag);
    sb_putc(&url, '/');
    ntf__url_part(&url, e->r->run_id);
    if (task) {
        sb_putc(&url, '/');
        ntf__url_part(&url, task);
    }
    const char *evn = dag_event_name(e->ev);
    sb_printf(&text, "[cairn] %s: %s%s%s run %s", evn, e->r->dag, task ? "/" : "", task ? task : "",
              e->r->run_id);
    if (e->ev == DAG_EV_METRIC_REGRESSION && e->extra) {
        const json_t *m = json_object_get(e->extra, "metric");
        sb_printf(&text, ": %s fell from %g to %g", json_string_value(json_object_get(m, "name")),
                  json_number_value(json_object_get(m, "previous")),
                  json_number_value(json_object_get(m, "current")));
    } else {
        sb_printf(&text, " is %s", e->state);
    }
    if (e->error)
        sb_printf(&text, " (%s)", e->error);
    sb_printf(&text, " <%s>", url.buf);
    json_t *b = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s, s:s?, s:s, s:o, s:s, s:s}", "event_id",
                          id, "event", evn, "dag", e->r->dag, "run_id", e->r->run_id, "task", task,
                          "state", e->state, "error", e->error, "logical_date", ld, "time",
                          schema_time_json(clock_wall_ms()), "url", url.buf, "text", text.buf);
    if (e->ti)
        json_object_set_new(b, "attempt", json_integer(e->ti->attempts));
    if (e->extra)
        json_object_update(b, e->extra);
    sb_free(&url);
    sb_free(&text);
    return b;
}

/* One delivery per entry of list that listens to e (and, for
 * metric_regression, watches the metric e is about). */
static void
ntf__queue(struct ntf *n, const struct ntf_event *e, const struct dag_notify *list, size_t cnt,
           const char *scope, struct store_txn **txn, size_t only)
{
    char tname[DAG_INSTANCE_NAME_MAX];
    const char *task = e->ti ? sched_ti_name(e->ti, tname, sizeof(tname)) : NULL;
    for (size_t i = 0; i < cnt; i++) {
        const struct dag_notify *d = &list[i];
        if (!(d->on & e->ev))
            continue;
        if (only != (size_t)-1 && i != only)
            continue; /* metric_regression: the entry whose metric fell */
        char *id = xasprintf("%s/%s/%s/%s/%ld/%s%zu", e->r->dag, e->r->run_id, task ? task : "-",
                             dag_event_name(e->ev), e->n, scope, i);
        char *key = schema_key_notification(id, (int)i);
        if (!*txn && store_txn_begin(n->s->store, false, txn) != 0)
            *txn = NULL;
        void *old = NULL;
        if (*txn && store_get(*txn, STORE_NOTIFICATIONS, key, &old) == 0) {
            json_decref(old); /* this event was queued before: at most once */
            free(id);
            free(key);
            continue;
        }
        json_t *body = ntf__body(n, e, id, task);
        json_t *cmd = NULL;
        if (d->command) {
            cmd = json_array();
            for (size_t k = 0; k < d->ncommand; k++)
                json_array_append_new(cmd, json_string(d->command[k]));
        }
        int64_t now = clock_wall_ms();
        struct schema_notification rec = {
            .event_id = id,
            .target = (int)i,
            .event = dag_event_name(e->ev),
            .dag = e->r->dag,
            .run_id = e->r->run_id,
            .task = task,
            .kind = d->webhook ? "webhook" : "command",
            .url = d->webhook,
            .secret_file = d->secret_file,
            .command = cmd,
            .state = "pending",
            .max_attempts =
                n->s->cfg.notify_attempts > 0 ? n->s->cfg.notify_attempts : NOTIFY_MAX_ATTEMPTS,
            .created_at = now,
            .next_at = now,
            .body = body,
        };
        json_t *j = schema_notification_encode(&rec);
        json_decref(body);
        json_decref(cmd);
        char *shown = d->webhook ? ntf__redact(d->webhook) : xstrdup(d->command[0]);
        LOG(LOG_INFO, "CAIRN-NOTIFY-QUEUED", "%s notification of %s/%s queued (%s)",
            dag_event_name(e->ev), e->r->dag, e->r->run_id, shown);
        free(shown);
        free(id);
        ntf__add(n, key, j, false);
    }
}

/* A deadline: the run's entries (ti NULL) or the task's own and the DAG's. */
static void
ntf__emit(struct ntf *n, struct ntf_event *e)
{
    const struct dag *dag = e->r->dv->dag;
    struct store_txn *txn = NULL;
    ntf__queue(n, e, dag->notify, dag->nnotify, "d", &txn, (size_t)-1);
    if (e->ti && !e->ti->parent) {
        const struct dag_task *t = sched_task(e->ti);
        ntf__queue(n, e, t->notify, t->nnotify, "t", &txn, (size_t)-1);
    }
    store_txn_abort(txn);
    json_decref(e->extra);
}

struct prev_ctx {
    const char *run_id;
    int64_t ld;
    int64_t best_ld;
    char *best;
};

static int
ntf__prev_cb(void *ud, const char *key, const void *json)
{
    struct prev_ctx *c = ud;
    struct schema_run r;
    char err[128];
    (void)key;
    if (schema_run_decode(json, &r, err, sizeof(err)) != 0 || strcmp(r.state, "success") ||
        !strcmp(r.run_id, c->run_id) || r.logical_date > c->ld)
        return 0;
    if (r.logical_date == c->ld)
        return 0;
    if (!c->best || r.logical_date > c->best_ld) {
        free(c->best);
        c->best = xstrdup(r.run_id);
        c->best_ld = r.logical_date;
    }
    return 0;
}

/* The metric name of task ti's previous successful run (by logical date):
 * 0 and *out, *run (malloc'd), or nonzero if there is none. */
static int
ntf__previous_metric(struct sched *s, struct sched_ti *ti, const char *name, double *out,
                     char **run)
{
    struct store_txn *t = NULL;
    if (store_txn_begin(s->store, false, &t) != 0)
        return -1;
    struct prev_ctx c = {ti->run->run_id, ti->run->logical_date, 0, NULL};
    char *prefix = schema_prefix(ti->run->dag);
    store_scan(t, STORE_RUNS, prefix, ntf__prev_cb, &c);
    free(prefix);
    int rc = -1;
    if (c.best) {
        char *k = schema_key_ti(ti->run->dag, c.best, sched_task(ti)->name);
        void *j = NULL;
        if (store_get(t, STORE_TIS, k, &j) == 0) {
            const json_t *v = json_object_get(json_object_get(j, "metrics"), name);
            if (json_is_number(v)) {
                *out = json_number_value(v);
                *run = c.best;
                c.best = NULL;
                rc = 0;
            }
            json_decref(j);
        }
        free(k);
    }
    free(c.best);
    store_txn_abort(t);
    return rc;
}

static void
ntf__check_metric(struct ntf *n, struct sched_ti *ti, const struct dag_notify *list, size_t i,
                  const char *scope)
{
    const struct dag_notify *d = &list[i];
    if (!d->metric_task || !(d->on & DAG_EV_METRIC_REGRESSION) || d->metric_task_idx != ti->idx ||
        !ti->metrics)
        return;
    const json_t *cur = json_object_get(ti->metrics, d->metric_name);
    double prev;
    char *prun = NULL;
    if (!json_is_number(cur) || ntf__previous_metric(n->s, ti, d->metric_name, &prev, &prun) != 0)
        return;
    double c = json_number_value(cur);
    if (notify_regressed(prev, c, d->metric_drop)) {
        struct ntf_event e = {
            DAG_EV_METRIC_REGRESSION, ti->run, ti, "success", NULL, ti->attempts, NULL};
        e.extra = json_pack("{s:{s:s, s:f, s:f, s:f, s:s, s:f}}", "metric", "name", d->metric_name,
                            "previous", prev, "current", c, "drop", prev - c, "previous_run", prun,
                            "allowed_drop", d->metric_drop);
        struct store_txn *txn = NULL;
        ntf__queue(n, &e, list, i + 1, scope, &txn, i);
        store_txn_abort(txn);
        json_decref(e.extra);
    }
    free(prun);
}

static void
ntf__ti_state_cb(struct sched *s, struct sched_ti *ti, enum ti_state from, enum ti_state to)
{
    struct ntf *n = ntf__get(s);
    dl_ti_state(s, ti, from, to);
    if (!n || ti->parent || from == to)
        return; /* a mapped task's instances: their group speaks for them */
    unsigned ev = to == TI_FAILED         ? DAG_EV_FAILURE
                  : to == TI_UP_FOR_RETRY ? DAG_EV_RETRY
                  : to == TI_SUCCESS      ? DAG_EV_SUCCESS
                                          : 0;
    if (!ev)
        return;
    const struct dag *dag = ti->run->dv->dag;
    const struct dag_task *t = sched_task(ti);
    /* a task's own entries hear its failure, retry and success; the DAG's
     * hear its tasks' retries (failure and success are the run's) */
    struct ntf_event e = {ev, ti->run, ti, sched_ti_state_name(to), ti->error, ti->attempts, NULL};
    struct store_txn *txn = NULL;
    if (ev == DAG_EV_RETRY)
        ntf__queue(n, &e, dag->notify, dag->nnotify, "d", &txn, (size_t)-1);
    ntf__queue(n, &e, t->notify, t->nnotify, "t", &txn, (size_t)-1);
    store_txn_abort(txn);
    if (ev == DAG_EV_SUCCESS) {
        for (size_t i = 0; i < dag->nnotify; i++)
            ntf__check_metric(n, ti, dag->notify, i, "d");
        for (size_t i = 0; i < t->nnotify; i++)
            ntf__check_metric(n, ti, t->notify, i, "t");
    }
}

static void
ntf__run_ended_cb(void *ud, struct sched_run *r)
{
    struct ntf *n = ud;
    dl_run_ended(n->s, r);
    if (r->state != RUN_SUCCESS && r->state != RUN_FAILED)
        return;
    const struct dag *dag = r->dv->dag;
    struct ntf_event e = {r->state == RUN_SUCCESS ? DAG_EV_SUCCESS : DAG_EV_FAILURE,
                          r,
                          NULL,
                          sched_run_state_name(r->state),
                          NULL,
                          (long)(r->ended_at % 1000000000),
                          NULL};
    /* the first failed task's error, for the text */
    for (size_t i = 0; i < r->ntis && r->state == RUN_FAILED; i++)
        if (r->tis[i].state == TI_FAILED && r->tis[i].error) {
            e.error = r->tis[i].error;
            break;
        }
    struct store_txn *txn = NULL;
    ntf__queue(n, &e, dag->notify, dag->nnotify, "d", &txn, (size_t)-1);
    store_txn_abort(txn);
}

void
ntf_deadline_missed(struct sched *s, struct sched_run *r, struct sched_ti *ti, int64_t at_ms)
{
    struct ntf *n = ntf__get(s);
    if (!n)
        return;
    char at[48];
    json_t *when = schema_time_json(at_ms);
    snprintf(at, sizeof(at), "%s", json_string_value(when));
    json_decref(when);
    struct ntf_event e = {DAG_EV_DEADLINE_MISSED,
                          r,
                          ti,
                          ti ? sched_ti_state_name(ti->state) : sched_run_state_name(r->state),
                          NULL,
                          (long)((ti ? ti->started_at : r->started_at) % 1000000000),
                          json_pack("{s:s}", "deadline", at)};
    ntf__emit(n, &e);
}

/* ---------- lifecycle ---------- */

struct load_ctx {
    struct ntf *n;
    int64_t cutoff; /* finished deliveries created before it are forgotten */
    char **old;
    size_t nold, capold;
};

static int
ntf__load_cb(void *ud, const char *key, const void *json)
{
    struct load_ctx *c = ud;
    const json_t *j = json;
    const char *st = json_string_value(json_object_get(j, "state"));
    if (st && !strcmp(st, "pending")) {
        ntf__add(c->n, xstrdup(key), json_deep_copy(j), true);
    } else if (schema_time_parse(json_object_get(j, "created_at")) < c->cutoff) {
        xgrow((void **)&c->old, &c->capold, c->nold + 1, sizeof(*c->old));
        c->old[c->nold++] = xstrdup(key);
    }
    return 0;
}

int
ntf_init(struct sched *s)
{
    struct ntf *n = xcalloc(1, sizeof(*n));
    n->s = s;
    s->ntf = n;
    struct sched_participant p = {ntf__dirty_cb, ntf__flush_cb, ntf__clear_cb, n};
    sched_add_participant(s, &p);
    sched_on_run_ended(s, ntf__run_ended_cb, n);
    s->on_ti_state = ntf__ti_state_cb;
    s->on_run_start = dl_run_started;
    struct store_txn *t = NULL;
    int rc = store_txn_begin(s->store, true, &t);
    if (rc)
        return rc;
    struct load_ctx c = {n, clock_wall_ms() - NTF_KEEP_MS, NULL, 0, 0};
    rc = store_scan(t, STORE_NOTIFICATIONS, "", ntf__load_cb, &c);
    /* forgetting old ones may fail (a full disk): they are tried again at
     * the next start, and the scheduler starts all the same */
    int prc = rc;
    for (size_t i = 0; !prc && i < c.nold; i++)
        prc = store_del(t, STORE_NOTIFICATIONS, c.old[i]);
    if (!prc && c.nold) {
        prc = store_txn_commit(t);
        if (!prc)
            LOG(LOG_INFO, "CAIRN-NOTIFY-PRUNED",
                "forgot %zu finished notification deliver%s older than %d days", c.nold,
                c.nold == 1 ? "y" : "ies", (int)(NTF_KEEP_MS / 86400000));
    } else {
        store_txn_abort(t);
    }
    for (size_t i = 0; i < c.nold; i++)
        free(c.old[i]);
    free(c.old);
    if (n->nitems)
        LOG(LOG_NOTICE, "CAIRN-NOTIFY-PENDING", "%zu notification deliveries pending", n->nitems);
    return rc;
}

void
ntf_start(struct sched *s)
{
    struct ntf *n = ntf__get(s);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    uv_mutex_init(&n->mu);
    uv_cond_init(&n->cv);
    n->inited = true;
    uv_timer_init(s->loop, &n->timer);
    n->timer.data = n;
    uv_async_init(s->loop, &n->async, ntf__async_cb);
    n->async.data = n;
    for (int i = 0; i < NTF_THREADS; i++)
        uv_thread_create(&n->threads[i], ntf__thread, n);
    n->started = true;
    ntf__schedule(n);
}

void
ntf_stop(struct sched *s, uv_close_cb closed, int *nhandles)
{
    struct ntf *n = ntf__get(s);
    *nhandles = 0;
    if (!n || !n->started)
        return;
    uv_mutex_lock(&n->mu);
    n->quit = 1;
    uv_cond_broadcast(&n->cv);
    uv_mutex_unlock(&n->mu);
    for (int i = 0; i < NTF_THREADS; i++)
        uv_thread_join(&n->threads[i]);
    n->started = false;
    n->timer.data = s;
    n->async.data = s;
    uv_timer_stop(&n->timer);
    uv_close((uv_handle_t *)&n->timer, closed);
    uv_close((uv_handle_t *)&n->async, closed);
    *nhandles = 2;
}

void
ntf_free(struct sched *s)
{
    struct ntf *n = ntf__get(s);
    if (!n)
        return;
    struct ntf_job *lists[2] = {n->todo, n->done};
    for (int k = 0; k < 2; k++)
        while (lists[k]) {
            struct ntf_job *next = lists[k]->next;
            ntf__job_free(lists[k]);
            lists[k] = next;
        }
    for (size_t i = 0; i < n->nitems; i++)
        ntf__item_free(n->items[i]);
    free(n->items);
    free(n->ui_url);
    if (n->inited) {
        uv_mutex_destroy(&n->mu);
        uv_cond_destroy(&n->cv);
    }
    free(n);
    s->ntf = NULL;
}

void
ntf_set_ui_url(struct sched *s, const char *url)
{
    struct ntf *n = ntf__get(s);
    if (!n)
        return;
    free(n->ui_url);
    n->ui_url = xstrdup(url);
}

/* ---------- listing ---------- */

struct list_ctx {
    const char *dag;
    json_t *arr;
};

static int
ntf__list_cb(void *ud, const char *key, const void *json)
{
    struct list_ctx *c = ud;
    struct schema_notification d;
    char err[128];
    (void)key;
    if (schema_notification_decode(json, &d, err, sizeof(err)) != 0)
        return 0;
    if (c->dag && strcmp(c->dag, d.dag))
        return 0;
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s?, s:s, s:s?, s:s, s:i, s:i, s:o, s:o, s:o, "
        "s:s?}",
        "event_id", d.event_id, "event", d.event, "dag", d.dag, "run_id", d.run_id, "task", d.task,
        "kind", d.kind, "target", NULL, "state", d.state, "attempts", d.attempts, "max_attempts",
        d.max_attempts, "created_at", schema_time_json(d.created_at), "next_at",
        schema_time_json(d.state && !strcmp(d.state, "pending") ? d.next_at : 0), "delivered_at",
        schema_time_json(d.delivered_at), "last_error", d.last_error);
    if (d.url) {
        char *shown = ntf__redact(d.url);
        json_object_set_new(o, "target", json_string(shown));
        free(shown);
    } else if (d.command) {
        json_object_set_new(o, "target",
                            json_string(json_string_value(json_array_get(d.command, 0))));
    }
    json_object_set_new(o, "created_ms", json_integer(d.created_at));
    json_array_append_new(c->arr, o);
    return 0;
}

static int
ntf__newest_first(const void *a, const void *b)
{
    const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
    json_int_t p = json_integer_value(json_object_get(x, "created_ms")),
               q = json_integer_value(json_object_get(y, "created_ms"));
    if (p != q)
        return p > q ? -1 : 1;
    return strcmp(json_string_value(json_object_get(x, "event_id")),
                  json_string_value(json_object_get(y, "event_id")));
}

json_t *
ntf_list(struct sched *s, const char *dag, size_t limit, char *err, size_t errlen)
{
    struct store_txn *t = NULL;
    int rc = store_txn_begin(s->store, false, &t);
    if (rc) {
        snprintf(err, errlen, "%s", store_last_error(s->store));
        return NULL;
    }
    struct list_ctx c = {dag, json_array()};
    rc = store_scan(t, STORE_NOTIFICATIONS, "", ntf__list_cb, &c);
    store_txn_abort(t);
    if (rc) {
        snprintf(err, errlen, "%s", store_last_error(s->store));
        json_decref(c.arr);
        return NULL;
    }
    size_t n = json_array_size(c.arr);
    json_t **v = xcalloc(n + 1, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(c.arr, i));
    qsort(v, n, sizeof(*v), ntf__newest_first);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        if (i < limit) {
            json_object_del(v[i], "created_ms");
            json_array_append(out, v[i]);
        }
        json_decref(v[i]);
    }
    free(v);
    json_decref(c.arr);
    return out;
}
