/* events.c - runs created by events (events.h): the conditions of
 * `trigger:`, the file sensors, releases and webhooks, and what they
 * remember in the store. */
#include "events.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "cal.h"
#include "commit.h"
#include "core.h"
#include "err.h"
#include "fs.h"
#include "hmacsig.h"
#include "hmap.h"
#include "log.h"
#include "runtab.h"
#include "schema.h"
#include "store.h"
#include "util.h"

#define EV_SECRET_MAX 65536
/* Settled files hashed at once, at most (the thread pool is shared with
 * publishing and reading fan-out lists). */
#define EV_MAX_HASHING 2
#define EV_HASH_CHUNK (1 << 20)

/* A file of a watched folder, as last seen. */
struct ev_file {
    char *name;
    int64_t size, mtime_ns;
    int64_t stable_since; /* monotonic ms: when (size, mtime) last changed */
    bool hashing;         /* a hash job has it */
    bool done;            /* (size, mtime) taken care of: nothing to do until they change */
    bool present;         /* scratch for a scan */
};

struct ev_set;
struct ev_watch;

/* A watch's inotify handle, apart from the watch: a watch is freed at once,
 * its handle once libuv has closed it (counted, during the stop, in
 * s->closing_handles). */
struct ev_handle {
    uv_fs_event_t h;
    struct sched *s;
    struct ev_watch *w; /* NULL once the watch is gone */
    bool counted;
};

/* One on_file event of a DAG's current version. */
struct ev_watch {
    struct ev_set *set;
    char *key; /* dag SEP cond SEP event SEP path SEP pattern SEP settle */
    char *dag;
    size_t ci, ei; /* the condition and event in the DAG's `trigger:` */
    char *path, *pattern;
    int64_t settle_ms;
    struct ev_handle *fsev; /* started, or NULL */
    bool missing_logged;
    bool scan_soon;         /* inotify said something changed */
    int64_t next_scan;      /* monotonic ms */
    bool keep;              /* scratch for ev_sync */
    struct ev_file **files; /* in no order */
    size_t nfiles, capfiles;
    struct hmap by_name; /* name -> struct ev_file * (keys: the files' names) */
};

struct ev_set {
    struct sched *s;
    struct ev_watch **w;
    size_t nw, capw;
    json_t *pending;   /* STORE_META key -> record (or null: delete), for the next commit */
    int nhashing;      /* hash jobs on the thread pool */
    atomic_int cancel; /* the stop began: hash jobs give up (read by their threads) */
    bool stopping;
};

/* The engine keeps the set here (one per scheduler). */
static struct ev_set *
ev__set(struct sched *s)
{
    return s->events;
}

/* ---------- what the store remembers ---------- */

static bool
ev__dirty(void *ud)
{
    struct ev_set *e = ud;
    return json_object_size(e->pending) > 0;
}

static int
ev__flush(void *ud, struct store_txn *t)
{
    struct ev_set *e = ud;
    const char *k;
    json_t *v;
    json_object_foreach(e->pending, k, v)
    {
        int rc = json_is_null(v) ? store_del(t, STORE_META, k) : store_put(t, STORE_META, k, v);
        if (rc && !(json_is_null(v) && rc == CAIRN_ENOENT))
            return rc;
    }
    return 0;
}

static void
ev__clear(void *ud)
{
    struct ev_set *e = ud;
    json_object_clear(e->pending);
}

/* The record at key (a new reference): what waits for the commit, else the
 * store's; NULL if none. */
static json_t *
ev__get(struct ev_set *e, const char *key)
{
    json_t *v = json_object_get(e->pending, key);
    if (v)
        return json_is_null(v) ? NULL : json_incref(v);
    struct store_txn *t = NULL;
    void *rec = NULL;
    if (store_txn_begin(e->s->store, false, &t) != 0)
        return NULL;
    if (store_get(t, STORE_META, key, &rec) != 0)
        rec = NULL;
    store_txn_abort(t);
    return rec;
}

static void
ev__put(struct ev_set *e, const char *key, json_t *rec)
{
    json_object_set_new(e->pending, key, rec ? rec : json_null());
}

/* ---------- runs ---------- */

void
ev_release_digest(const json_t *files, char out[65])
{
    struct sb sb;
    size_t i;
    json_t *f;
    sb_init(&sb);
    json_array_foreach(files, i, f)
    {
        sb_printf(&sb, "%s  %s\n", json_string_value(json_object_get(f, "sha256")) ?: "",
                  json_string_value(json_object_get(f, "name")) ?: "");
    }
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(sb.buf ? sb.buf : "", sb.len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned k = 0; k < 32; k++)
        snprintf(out + 2 * k, 3, "%02x", md[k]);
    sb_free(&sb);
}

/* A new run of sd with params (borrowed) and event (borrowed): "event__"
 * and the time to the millisecond (and "-N" if that is taken). */
static struct sched_run *
ev__create_run(struct sched *s, struct sched_dag *sd, json_t *params, json_t *event)
{
    int64_t now_ms = clock_wall_ms();
    char base[48], rid[160];
    cal_format_iso(now_ms / 1000, 0, 0, base, sizeof(base));
    snprintf(rid, sizeof(rid), "event__%.19s.%03dZ", base, (int)(now_ms % 1000));
    for (int n = 2; runtab_exists(s, sd->name, rid) && n < 1000; n++)
        snprintf(rid, sizeof(rid), "event__%.19s.%03dZ-%d", base, (int)(now_ms % 1000), n);
    struct sched_run *r = sched_create_run(s, sd->name, rid, "event", now_ms / 1000, params, NULL);
    if (!r)
        return NULL;
    r->event = json_incref(event);
    commit_run_dirty(s, r);
    return r;
}

/* An `all:` group's name in the store: its events, in order. */
static char *
ev__group_key(const struct dag *d, size_t ci)
{
    struct sb sb;
    sb_init(&sb);
    sb_puts(&sb, "all/");
    for (size_t i = 0; i < d->conds[ci].nevents; i++) {
        const struct dag_event *ev = &d->conds[ci].events[i];
        if (i)
            sb_putc(&sb, ',');
        sb_puts(&sb, dag_event_kind_name(ev->kind));
        if (ev->kind == DAG_EVENT_PUBLISH)
            sb_printf(&sb, ":%s/%s", ev->dag, ev->task);
        else if (ev->kind == DAG_EVENT_FILE)
            sb_printf(&sb, ":%s/%s", ev->path, ev->pattern);
    }
    char *k = schema_key_event(d->name, sb.buf);
    sb_free(&sb);
    return k;
}

/* Event ei of condition ci of sd happened, giving params (a new object of
 * declared params, stolen) and described by event (stolen). A single event
 * creates a run; an `all:` group's run waits for its last event. Returns
 * the run created, or NULL (the group waits, or no run could be made: the
 * scheduler stops). *taken says whether the event was taken (remember it). */
static struct sched_run *
ev__fire(struct sched *s, struct sched_dag *sd, size_t ci, size_t ei, json_t *params, json_t *event,
         bool *taken)
{
    const struct dag *d = sd->cur->dag;
    const struct dag_event_cond *c = &d->conds[ci];
    struct ev_set *e = ev__set(s);
    struct sched_run *r = NULL;
    *taken = false;
    if (!c->all) {
        r = ev__create_run(s, sd, params, event);
        *taken = r != NULL;
    } else {
        char *key = ev__group_key(d, ci);
        json_t *g = ev__get(e, key);
        if (!json_is_object(g)) {
            json_decref(g);
            g = json_pack("{s:{}}", "events");
        } else {
            json_t *copy = json_deep_copy(g);
            json_decref(g);
            g = copy;
        }
        json_t *evs = json_object_get(g, "events");
        if (!json_is_object(evs)) {
            evs = json_object();
            json_object_set_new(g, "events", evs);
        }
        char idx[24];
        snprintf(idx, sizeof(idx), "%zu", ei);
        json_object_set_new(evs, idx, json_pack("{s:O, s:O}", "event", event, "params", params));
        bool all = true;
        for (size_t i = 0; i < c->nevents && all; i++) {
            snprintf(idx, sizeof(idx), "%zu", i);
            all = json_object_get(evs, idx) != NULL;
        }
        if (!all) {
            ev__put(e, key, g);
            *taken = true;
            LOG(LOG_INFO, "CAIRN-EVENT-WAITING", "%s: %s taken by its all: group (%zu of %zu)",
                sd->name, json_string_value(json_object_get(event, "kind")) ?: "?",
                json_object_size(evs), c->nevents);
        } else {
            json_t *merged = json_object(), *list = json_array();
            for (size_t i = 0; i < c->nevents; i++) {
                snprintf(idx, sizeof(idx), "%zu", i);
                json_t *m = json_object_get(evs, idx);
                json_t *p = json_object_get(m, "params");
                if (json_is_object(p))
                    json_object_update(merged, p);
                json_array_append(list, json_object_get(m, "event"));
            }
            json_t *all_ev =
                json_pack("{s:s, s:s, s:o}", "kind", "all", "source", "all", "events", list);
            r = ev__create_run(s, sd, merged, all_ev);
            json_decref(merged);
            json_decref(all_ev);
            if (r) {
                ev__put(e, key, NULL); /* the group starts over */
                *taken = true;
            }
            json_decref(g);
        }
        free(key);
    }
    if (r) {
        char *txt = json_dumps(r->event, JSON_COMPACT);
        LOG(LOG_NOTICE, "CAIRN-EVENT-RUN", "run %s of %s created by an event: %s", r->run_id,
            sd->name, txt ? txt : "?");
        free(txt);
    }
    json_decref(params);
    json_decref(event);
    return r;
}

/* Remember what an event took at seen (a key below "event/DAG"). */
static void
ev__seen(struct ev_set *e, const char *dag, const char *what, const char *digest,
         const struct sched_run *r, int64_t size, int64_t mtime_ns)
{
    char *key = schema_key_event(dag, what);
    struct schema_event_seen x = {.digest = digest,
                                  .run_id = r ? r->run_id : NULL,
                                  .at = clock_wall_ms(),
                                  .size = size,
                                  .mtime_ns = mtime_ns};
    ev__put(e, key, schema_event_seen_encode(&x));
    free(key);
}

/* ---------- on_publish ---------- */

void
ev_on_release(struct sched *s, const char *dag, const char *task, const char *run_id,
              const char *release, const char *dir, const json_t *files)
{
    struct ev_set *e = ev__set(s);
    if (!e || s->stopping)
        return;
    char digest[65];
    ev_release_digest(files, digest);
    char *what = xasprintf("pub/%s/%s/%s", dag, task, release);
    for (size_t i = 0; i < s->ndags; i++) {
        struct sched_dag *sd = s->dags[i];
        if (!sd->cur || !sd->file)
            continue;
        const struct dag *d = sd->cur->dag;
        for (size_t ci = 0; ci < d->nconds; ci++) {
            for (size_t ei = 0; ei < d->conds[ci].nevents; ei++) {
                const struct dag_event *ev = &d->conds[ci].events[ei];
                if (ev->kind != DAG_EVENT_PUBLISH || strcmp(ev->dag, dag) || strcmp(ev->task, task))
                    continue;
                char *key = schema_key_event(sd->name, what);
                json_t *seen = ev__get(e, key);
                free(key);
                if (seen) { /* a republish of a release taken already */
                    json_decref(seen);
                    continue;
                }
                if (sd->paused) {
                    LOG(LOG_INFO, "CAIRN-EVENT-PAUSED",
                        "%s is paused: release %s of %s/%s "
                        "is not taken",
                        sd->name, release, dag, task);
                    continue;
                }
                json_t *params =
                    json_pack("{s:s, s:s, s:s}", DAG_PARAM_RELEASE_PATH, dir,
                              DAG_PARAM_RELEASE_DIGEST, digest, DAG_PARAM_RELEASE_ID, release);
                json_t *event = json_pack("{s:s, s:s++, s:s, s:s, s:s, s:s}", "kind", "on_publish",
                                          "source", dag, "/", task, "run_id", run_id, "release_id",
                                          release, "release_path", dir, "release_digest", digest);
                bool taken;
                struct sched_run *r = ev__fire(s, sd, ci, ei, params, event, &taken);
                if (taken)
                    ev__seen(e, sd->name, what, digest, r, -1, 0);
            }
        }
    }
    free(what);
}

/* ---------- on_webhook ---------- */

/* Does the key in path sign body? 0 yes, CAIRN_EAUTH no, CAIRN_EIO with err
 * (the file cannot be read or is empty). */
static int
ev__check_sig(const char *path, const void *body, size_t len, const char *sig, char *err,
              size_t errlen)
{
    char *key = NULL;
    size_t klen = 0;
    if (fs_read_all(path, EV_SECRET_MAX, &key, &klen) != 0) {
        LOG(LOG_ERR, "CAIRN-EVENT-SECRET", "cannot read the webhook secret %s: %s", path,
            strerror(errno));
        return errf(CAIRN_EIO, err, errlen, "the DAG's webhook secret cannot be read");
    }
    klen = hsig_key_len(key, klen);
    int rc = 0;
    if (klen == 0) {
        LOG(LOG_ERR, "CAIRN-EVENT-SECRET", "the webhook secret %s is empty", path);
        rc = errf(CAIRN_EIO, err, errlen, "the DAG's webhook secret is empty");
    } else if (!hsig_verify(key, klen, body, len, sig)) {
        rc = CAIRN_EAUTH;
    }
    OPENSSL_cleanse(key, klen);
    free(key);
    return rc;
}

int
ev_webhook(struct sched *s, const char *dag, const void *body, size_t len, const char *sig,
           struct sched_run **out, char *err, size_t errlen)
{
    struct sched_dag *sd = sched_find_dag(s, dag);
    const struct dag *d = sd && sd->cur && sd->file ? sd->cur->dag : NULL;
    size_t ci = 0, ei = 0;
    bool found = false, signed_ok = false;
    int rc;
    *out = NULL;
    for (size_t i = 0; d && i < d->nconds && !signed_ok; i++) {
        for (size_t j = 0; j < d->conds[i].nevents && !signed_ok; j++) {
            const struct dag_event *ev = &d->conds[i].events[j];
            if (ev->kind != DAG_EVENT_WEBHOOK)
                continue;
            found = true;
            rc = ev__check_sig(ev->secret_file, body, len, sig, err, errlen);
            if (rc == CAIRN_EIO)
                return rc;
            if (rc == 0) {
                signed_ok = true;
                ci = i;
                ei = j;
            }
        }
    }
    if (!found)
        return errf(CAIRN_ENOENT, err, errlen,
                    sd ? "DAG '%s' has no on_webhook trigger" : "no DAG '%s'", dag);
    if (!signed_ok)
        return errf(CAIRN_EAUTH, err, errlen,
                    sig ? "the " HSIG_HEADER " signature does not match the body"
                        : "missing " HSIG_HEADER " header (sha256=HMAC-SHA256 of the body)");
    json_error_t je;
    json_t *j = len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : json_object();
    if (!json_is_object(j)) {
        json_decref(j);
        return errf(CAIRN_EINVAL, err, errlen, "the body must be a JSON object of params%s%s",
                    len ? ": " : "", len ? je.text : "");
    }
    json_t *params = NULL;
    rc = sched_params_check(d, j, &params, err, errlen);
    json_decref(j);
    if (rc)
        return CAIRN_EINVAL;
    if (sd->paused || s->stopping) {
        json_decref(params);
        return errf(CAIRN_ESTATE, err, errlen,
                    s->stopping ? "the scheduler is shutting down" : "DAG '%s' is paused", dag);
    }
    json_t *event =
        json_pack("{s:s, s:s, s:O}", "kind", "on_webhook", "source", "webhook", "params", params);
    bool taken;
    *out = ev__fire(s, sd, ci, ei, params, event, &taken);
    if (!taken)
        return errf(CAIRN_ESTATE, err, errlen, "the run could not be created");
    return 0;
}

/* ---------- on_file ---------- */

static bool
ev__stat(const char *path, int64_t *size, int64_t *mtime_ns)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return false;
    *size = (int64_t)st.st_size;
    *mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    return true;
}

static struct ev_file *
ev__file_find(struct ev_watch *w, const char *name)
{
    size_t v;
    return hmap_get(&w->by_name, name, &v) ? (struct ev_file *)(uintptr_t)v : NULL;
}

static struct ev_watch *
ev__watch_find(struct ev_set *e, const char *key)
{
    for (size_t i = 0; i < e->nw; i++)
        if (!strcmp(e->w[i]->key, key))
            return e->w[i];
    return NULL;
}

/* A file was seen with (size, mtime): a change starts its settle time anew. */
static void
ev__observe(struct ev_file *f, int64_t size, int64_t mtime_ns, int64_t now)
{
    if (f->size != size || f->mtime_ns != mtime_ns) {
        f->size = size;
        f->mtime_ns = mtime_ns;
        f->stable_since = now;
        f->done = false;
    }
}

static void
ev__fsev_cb(uv_fs_event_t *h, const char *filename, int events, int status)
{
    struct ev_handle *eh = h->data;
    (void)filename;
    (void)events;
    (void)status;
    if (eh->w)
        eh->w->scan_soon = true;
}

static void
ev__handle_closed(uv_handle_t *h)
{
    struct ev_handle *eh = h->data;
    struct sched *s = eh->s;
    bool counted = eh->counted;
    free(eh);
    if (counted && --s->closing_handles == 0 && s->stop_done)
        s->stop_done(s->stop_ud);
}

static void
ev__handle_close(struct ev_handle *eh, bool counted)
{
    if (!eh)
        return;
    eh->w = NULL;
    eh->counted = counted;
    if (counted)
        eh->s->closing_handles++;
    uv_fs_event_stop(&eh->h);
    uv_close((uv_handle_t *)&eh->h, ev__handle_closed);
}

static void
ev__fsev_start(struct ev_watch *w)
{
    struct sched *s = w->set->s;
    if (w->fsev)
        return;
    struct ev_handle *eh = xcalloc(1, sizeof(*eh));
    eh->s = s;
    eh->w = w;
    if (uv_fs_event_init(s->loop, &eh->h) != 0) {
        free(eh);
        return;
    }
    eh->h.data = eh;
    if (uv_fs_event_start(&eh->h, ev__fsev_cb, w->path, 0) == 0) {
        w->fsev = eh;
    } else {
        eh->w = NULL;
        uv_close((uv_handle_t *)&eh->h, ev__handle_closed); /* rescans do without */
    }
}

/* Read the folder: new files are added, vanished ones forgotten. */
static void
ev__scan(struct ev_watch *w, int64_t now)
{
    DIR *dir = opendir(w->path);
    w->scan_soon = false;
    w->next_scan = now + EV_RESCAN_MS;
    if (!dir) {
        if (!w->missing_logged)
            LOG(LOG_WARN, "CAIRN-EVENT-FOLDER",
                "%s: cannot read the on_file folder %s: %s "
                "(tried again every %d s)",
                w->dag, w->path, strerror(errno), EV_RESCAN_MS / 1000);
        w->missing_logged = true;
        return;
    }
    if (w->missing_logged)
        LOG(LOG_INFO, "CAIRN-EVENT-FOLDER", "%s: the on_file folder %s can be read now", w->dag,
            w->path);
    w->missing_logged = false;
    ev__fsev_start(w);
    for (size_t i = 0; i < w->nfiles; i++)
        w->files[i]->present = false;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (fnmatch(w->pattern, de->d_name, FNM_PERIOD) != 0)
            continue;
        char *p = xasprintf("%s/%s", w->path, de->d_name);
        int64_t size, mt;
        if (ev__stat(p, &size, &mt)) {
            struct ev_file *f = ev__file_find(w, de->d_name);
            if (!f) {
                f = xcalloc(1, sizeof(*f));
                f->name = xstrdup(de->d_name);
                f->size = -1;
                xgrow((void **)&w->files, &w->capfiles, w->nfiles + 1, sizeof(*w->files));
                w->files[w->nfiles++] = f;
                hmap_put(&w->by_name, f->name, (uintptr_t)f);
            }
            ev__observe(f, size, mt, now);
            f->present = true;
        }
        free(p);
    }
    closedir(dir);
    for (size_t i = 0; i < w->nfiles;) {
        struct ev_file *f = w->files[i];
        if (!f->present && !f->hashing) {
            hmap_del(&w->by_name, f->name);
            free(f->name);
            free(f);
            w->files[i] = w->files[--w->nfiles];
        } else {
            i++;
        }
    }
}

/* Hashing a settled file on the thread pool. */
struct ev_hash_job {
    uv_work_t req;
    struct ev_set *set;
    char *watch_key, *name, *path;
    int64_t size, mtime_ns; /* what settled */
    char digest[65];
    int rc;
    char err[256];
};

/* SHA-256 of the file, read in chunks; a stop cancels it between chunks
 * (a large file does not hold up the scheduler's stop). */
static void
ev__hash_work(uv_work_t *req)
{
    struct ev_hash_job *j = req->data;
    int fd = open(j->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        j->rc = CAIRN_EIO;
        snprintf(j->err, sizeof(j->err), "cannot open: %s", strerror(errno));
        return;
    }
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *buf = xmalloc(EV_HASH_CHUNK);
    j->rc = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 ? 0 : CAIRN_EIO;
    while (j->rc == 0) {
        if (atomic_load(&j->set->cancel)) {
            j->rc = CAIRN_ESTATE;
            snprintf(j->err, sizeof(j->err), "cancelled: the scheduler stops");
            break;
        }
        ssize_t n = read(fd, buf, EV_HASH_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            j->rc = CAIRN_EIO;
            snprintf(j->err, sizeof(j->err), "cannot read: %s", strerror(errno));
        } else if (n == 0) {
            unsigned char md[32];
            unsigned int mdlen = 0;
            if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
                j->rc = CAIRN_EIO;
            for (unsigned k = 0; j->rc == 0 && k < 32; k++)
                snprintf(j->digest + 2 * k, 3, "%02x", md[k]);
            break;
        } else if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
            j->rc = CAIRN_EIO;
        }
    }
    if (j->rc == CAIRN_EIO && !j->err[0])
        snprintf(j->err, sizeof(j->err), "hashing failed");
    free(buf);
    EVP_MD_CTX_free(ctx);
    close(fd);
}

static void
ev__hash_job_free(struct ev_hash_job *j)
{
    free(j->watch_key);
    free(j->name);
    free(j->path);
    free(j);
}

/* A settled file's digest is known: take it unless it is the one its path
 * had when it was last taken. */
static void
ev__file_settled(struct ev_set *e, struct ev_watch *w, const struct ev_hash_job *j)
{
    struct sched *s = e->s;
    struct sched_dag *sd = sched_find_dag(s, w->dag);
    if (!sd || !sd->cur || sd->paused)
        return;
    const struct dag *d = sd->cur->dag; /* (a version loaded since the hash began may have
                                           moved or dropped the event: the next sync says) */
    if (w->ci >= d->nconds || w->ei >= d->conds[w->ci].nevents)
        return;
    const struct dag_event *ev = &d->conds[w->ci].events[w->ei];
    if (ev->kind != DAG_EVENT_FILE || strcmp(ev->path, w->path) || strcmp(ev->pattern, w->pattern))
        return;
    char *what = xasprintf("file/%s", j->path);
    char *key = schema_key_event(w->dag, what);
    json_t *rec = ev__get(e, key);
    struct schema_event_seen x;
    bool same = rec && schema_event_seen_decode(rec, &x, NULL, 0) == 0 && x.digest &&
                !strcmp(x.digest, j->digest);
    json_decref(rec);
    free(key);
    if (same)
        LOG(LOG_INFO, "CAIRN-EVENT-SEEN", "%s: %s has the digest taken already (%.12s): no run",
            w->dag, j->path, j->digest);
    if (!same) {
        json_t *params =
            json_pack("{s:s, s:s}", DAG_PARAM_FILE_PATH, j->path, DAG_PARAM_FILE_DIGEST, j->digest);
        json_t *event =
            json_pack("{s:s, s:s, s:s, s:s, s:I}", "kind", "on_file", "source", w->path, "path",
                      j->path, "digest", j->digest, "size", (json_int_t)j->size);
        bool taken;
        struct sched_run *r = ev__fire(s, sd, w->ci, w->ei, params, event, &taken);
        if (taken)
            ev__seen(e, w->dag, what, j->digest, r, j->size, j->mtime_ns);
    }
    free(what);
}

static void
ev__hash_done(uv_work_t *req, int status)
{
    struct ev_hash_job *j = req->data;
    struct ev_set *e = j->set;
    struct sched *s = e->s;
    (void)status;
    e->nhashing--;
    if (e->stopping) {
        ev__hash_job_free(j);
        if (--s->closing_handles == 0 && s->stop_done)
            s->stop_done(s->stop_ud);
        return;
    }
    struct ev_watch *w = ev__watch_find(e, j->watch_key);
    struct ev_file *f = w ? ev__file_find(w, j->name) : NULL;
    if (f) {
        f->hashing = false;
        int64_t size, mt, now = clock_mono_ms();
        if (j->rc != 0) {
            LOG(LOG_WARN, "CAIRN-EVENT-HASH", "%s: cannot hash %s: %s (tried again)", w->dag,
                j->path, j->err);
            f->stable_since = now; /* after another settle time */
        } else if (!ev__stat(j->path, &size, &mt) || size != j->size || mt != j->mtime_ns) {
            if (ev__stat(j->path, &size, &mt))
                ev__observe(f, size, mt, now); /* it changed while it was read */
        } else if (f->size == j->size && f->mtime_ns == j->mtime_ns) {
            struct sched_dag *sd = sched_find_dag(s, w->dag);
            if (sd && !sd->paused) { /* (paused meanwhile: hashed again once unpaused) */
                f->done = true;
                ev__file_settled(e, w, j);
            }
        }
    }
    ev__hash_job_free(j);
}

static void
ev__hash_start(struct ev_set *e, struct ev_watch *w, struct ev_file *f)
{
    struct ev_hash_job *j = xcalloc(1, sizeof(*j));
    j->set = e;
    j->watch_key = xstrdup(w->key);
    j->name = xstrdup(f->name);
    j->path = xasprintf("%s/%s", w->path, f->name);
    j->size = f->size;
    j->mtime_ns = f->mtime_ns;
    j->req.data = j;
    if (uv_queue_work(e->s->loop, &j->req, ev__hash_work, ev__hash_done) != 0) {
        ev__hash_job_free(j); /* tried again at the next pass */
        return;
    }
    f->hashing = true;
    e->nhashing++;
}

/* Is f, as it is now, the file its path had when it was last taken (the
 * same size and mtime as recorded then)? Then it need not be hashed again
 * (a restart does not read every file of the folder once more). */
static bool
ev__unchanged(struct ev_set *e, const struct ev_watch *w, const struct ev_file *f)
{
    char *what = xasprintf("file/%s/%s", w->path, f->name);
    char *key = schema_key_event(w->dag, what);
    json_t *rec = ev__get(e, key);
    struct schema_event_seen x;
    bool same = rec && schema_event_seen_decode(rec, &x, NULL, 0) == 0 && x.digest &&
                x.size == f->size && x.mtime_ns == f->mtime_ns;
    if (same)
        LOG(LOG_INFO, "CAIRN-EVENT-SEEN",
            "%s: %s/%s is unchanged since it was taken (%.12s): "
            "no run",
            w->dag, w->path, f->name, x.digest);
    json_decref(rec);
    free(key);
    free(what);
    return same;
}

/* One pass of a watch: read the folder if due, then every file not taken
 * care of is looked at again and, once settled, hashed. */
static void
ev__watch_pass(struct ev_set *e, struct ev_watch *w, int64_t now)
{
    bool scanned = false;
    if (w->scan_soon || now >= w->next_scan) {
        ev__scan(w, now);
        scanned = true;
    }
    struct sched_dag *sd = sched_find_dag(e->s, w->dag);
    if (!sd || sd->paused)
        return;
    for (size_t i = 0; i < w->nfiles; i++) {
        struct ev_file *f = w->files[i];
        if (f->done || f->hashing)
            continue;
        if (!scanned) {
            char *p = xasprintf("%s/%s", w->path, f->name);
            int64_t size, mt;
            bool ok = ev__stat(p, &size, &mt);
            free(p);
            if (!ok)
                continue; /* gone: the next scan forgets it */
            ev__observe(f, size, mt, now);
        }
        if (now - f->stable_since < w->settle_ms || e->nhashing >= EV_MAX_HASHING)
            continue;
        if (ev__unchanged(e, w, f))
            f->done = true;
        else
            ev__hash_start(e, w, f);
    }
}

static void
ev__watch_free(struct ev_watch *w, bool counted)
{
    ev__handle_close(w->fsev, counted);
    for (size_t i = 0; i < w->nfiles; i++) {
        free(w->files[i]->name);
        free(w->files[i]);
    }
    free(w->files);
    hmap_free(&w->by_name);
    free(w->key);
    free(w->dag);
    free(w->path);
    free(w->pattern);
    free(w);
}

/* The watches the DAGs' current versions ask for: new ones start, those no
 * version asks for any more stop. */
static void
ev__sync(struct ev_set *e)
{
    struct sched *s = e->s;
    for (size_t i = 0; i < e->nw; i++)
        e->w[i]->keep = false;
    for (size_t i = 0; i < s->ndags; i++) {
        struct sched_dag *sd = s->dags[i];
        if (!sd->cur || !sd->file)
            continue;
        const struct dag *d = sd->cur->dag;
        for (size_t ci = 0; ci < d->nconds; ci++) {
            for (size_t ei = 0; ei < d->conds[ci].nevents; ei++) {
                const struct dag_event *ev = &d->conds[ci].events[ei];
                if (ev->kind != DAG_EVENT_FILE)
                    continue;
                char *key = xasprintf("%s" SCHEMA_SEP "%zu" SCHEMA_SEP "%zu" SCHEMA_SEP
                                      "%s" SCHEMA_SEP "%s" SCHEMA_SEP "%" PRId64,
                                      d->name, ci, ei, ev->path, ev->pattern, ev->settle_ms);
                struct ev_watch *w = ev__watch_find(e, key);
                if (w) {
                    free(key);
                    w->keep = true;
                    continue;
                }
                w = xcalloc(1, sizeof(*w));
                w->set = e;
                w->key = key;
                w->dag = xstrdup(d->name);
                w->ci = ci;
                w->ei = ei;
                w->path = xstrdup(ev->path);
                w->pattern = xstrdup(ev->pattern);
                w->settle_ms = ev->settle_ms;
                hmap_init(&w->by_name);
                w->scan_soon = true;
                w->keep = true;
                xgrow((void **)&e->w, &e->capw, e->nw + 1, sizeof(*e->w));
                e->w[e->nw++] = w;
                LOG(LOG_INFO, "CAIRN-EVENT-WATCH", "%s: watching %s/%s (settle %" PRId64 " ms)",
                    w->dag, w->path, w->pattern, w->settle_ms);
            }
        }
    }
    for (size_t i = 0; i < e->nw;) {
        if (!e->w[i]->keep) {
            struct ev_watch *w = e->w[i];
            e->w[i] = e->w[--e->nw];
            LOG(LOG_INFO, "CAIRN-EVENT-WATCH", "%s: no longer watching %s/%s", w->dag, w->path,
                w->pattern);
            ev__watch_free(w, false);
        } else {
            i++;
        }
    }
}

/* Every schedule pass (twice a second). */
static void
ev__tick(void *ud)
{
    struct ev_set *e = ud;
    if (e->stopping || e->s->stopping)
        return;
    ev__sync(e);
    int64_t now = clock_mono_ms();
    for (size_t i = 0; i < e->nw; i++)
        ev__watch_pass(e, e->w[i], now);
}

/* ---------- lifecycle ---------- */

void
ev_init(struct sched *s)
{
    struct ev_set *e = xcalloc(1, sizeof(*e));
    e->s = s;
    e->pending = json_object();
    s->events = e;
    struct sched_participant p = {ev__dirty, ev__flush, ev__clear, e};
    sched_add_participant(s, &p);
    sched_on_tick(s, ev__tick, e);
}

void
ev_stop(struct sched *s)
{
    struct ev_set *e = ev__set(s);
    if (!e || e->stopping)
        return;
    e->stopping = true;
    atomic_store(&e->cancel, 1);
    s->closing_handles += e->nhashing;
    for (size_t i = 0; i < e->nw; i++)
        ev__watch_free(e->w[i], true);
    e->nw = 0;
}

void
ev_free(struct sched *s)
{
    struct ev_set *e = ev__set(s);
    if (!e)
        return;
    for (size_t i = 0; i < e->nw; i++) /* (a scheduler that never ran: no handle is open) */
        ev__watch_free(e->w[i], false);
    free(e->w);
    json_decref(e->pending);
    free(e);
    s->events = NULL;
}
