/* imagepin.c - pin a run's image tags to digests (see imagepin.h). */
#include "imagepin.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "commit.h"
#include "dag.h"
#include "engine.h"
#include "err.h"
#include "fs.h"
#include "image_registry.h"
#include "imgref.h"
#include "log.h"
#include "runtab.h"
#include "taskstate.h"
#include "util.h"

/* The key a reference is pinned under: its canonical text without a digest. */
static char *
pin_key(const char *image, struct imgref *ref)
{
    if (imgref_parse(image, ref, NULL, 0) != 0)
        return NULL;
    if (ref->kind != IMGREF_REGISTRY) {
        imgref_clear(ref);
        return NULL;
    }
    return imgref_format(ref);
}

/* At most this many tags are resolved at once, on libuv's thread pool (4
 * threads unless UV_THREADPOOL_SIZE says otherwise): a registry that
 * stalls never holds all of it (publish copies, collections and map.from
 * reads use it too). The same reference is never asked twice at once. */
#define PIN_MAX_RUNNING 2
#define PIN_DEFAULT_TIMEOUT_S 10

/* A run waiting for an answer; found again by name when it comes (the run
 * may have been cancelled, evicted or pinned again meanwhile). */
struct pin_waiter {
    char *dag, *run_id;
    uint64_t pin_id;
};

/* One tag to resolve for the runs that wait for it. */
struct pin_job {
    uv_work_t req;
    struct sched *s;
    char *key; /* REGISTRY/REPO:TAG */
    char *registry, *repo, *tag;
    struct imgreg_opts o;
    bool started; /* on the thread pool: no more waiters join */
    int rc;
    char digest[72];
    char err[512];
    struct pin_waiter *w;
    size_t nw, capw;
    struct pin_job *next;
};

struct pin_set {
    struct pin_job *head; /* queued and running, oldest first */
    int running;
    uint64_t seq;
    atomic_int cancel; /* stopping: requests in flight give up */
};

static struct pin_set *
pins_of(struct sched *s)
{
    if (!s->pins) {
        s->pins = xcalloc(1, sizeof(*s->pins));
        atomic_init(&s->pins->cancel, 0);
    }
    return s->pins;
}

static void
pin_job_free(struct pin_job *j)
{
    for (size_t i = 0; i < j->nw; i++) {
        free(j->w[i].dag);
        free(j->w[i].run_id);
    }
    free(j->w);
    free(j->key);
    free(j->registry);
    free(j->repo);
    free(j->tag);
    free(j);
}

static void
pin_unlink(struct pin_set *ps, struct pin_job *j)
{
    for (struct pin_job **pp = &ps->head; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            return;
        }
}

/* Thread pool: one manifest request (no blobs). */
static void
pin_work(uv_work_t *req)
{
    struct pin_job *j = req->data;
    struct imgreg *reg = NULL;
    j->rc = imgreg_open(&reg, &j->o, j->registry, j->repo, j->err, sizeof(j->err));
    if (j->rc == 0) {
        char *body = NULL, *mt = NULL;
        size_t len = 0;
        j->rc = imgreg_manifest(reg, j->tag, &body, &len, &mt, j->digest, j->err, sizeof(j->err));
        free(body);
        free(mt);
    }
    imgreg_close(reg);
}

static void pin_kick(struct sched *s);

/* Every tag of r is answered: it may start (oldest first, as always). */
static void
pin_finished(struct sched *s, struct sched_run *r)
{
    if (r->images && !json_object_size(r->images)) {
        json_decref(r->images);
        r->images = NULL;
    }
    commit_run_dirty(s, r);
    struct sched_dag *sd = runtab_dag(s, r);
    if (sd && r->state == RUN_QUEUED)
        ts_admit_runs(s, sd);
}

/* Loop thread: the answer goes to the runs still waiting for it. */
static void
pin_done(uv_work_t *req, int status)
{
    struct pin_job *j = req->data;
    struct sched *s = j->s;
    struct pin_set *ps = s->pins;
    (void)status;
    ps->running--;
    pin_unlink(ps, j);
    if (s->stopping) {
        /* the run's record still says pinning: a restart asks again */
        pin_job_free(j);
        if (--s->closing_handles == 0 && s->stop_done)
            s->stop_done(s->stop_ud);
        return;
    }
    for (size_t i = 0; i < j->nw; i++) {
        struct sched_run *r = sched_find_run(s, j->w[i].dag, j->w[i].run_id);
        if (!r || r->pin_id != j->w[i].pin_id || r->pinning <= 0)
            continue; /* gone, or pinned again since */
        if (j->rc == 0) {
            if (!r->images)
                r->images = json_object();
            json_object_set_new(r->images, j->key, json_string(j->digest));
            LOG(LOG_INFO, "CAIRN-IMAGE-PIN", "run %s of %s: %s is %s", r->run_id, r->dag, j->key,
                j->digest);
        } else {
            LOG(LOG_WARN, "CAIRN-IMAGE-PIN",
                "run %s of %s: cannot resolve %s (%s); its workers resolve it when they pull",
                r->run_id, r->dag, j->key, j->err);
        }
        if (--r->pinning == 0)
            pin_finished(s, r);
    }
    pin_job_free(j);
    pin_kick(s);
}

static bool
pin_key_running(const struct pin_set *ps, const char *key)
{
    for (const struct pin_job *j = ps->head; j; j = j->next)
        if (j->started && !strcmp(j->key, key))
            return true;
    return false;
}

/* Start queued jobs while there is room. */
static void
pin_kick(struct sched *s)
{
    struct pin_set *ps = s->pins;
    while (ps && !s->stopping && ps->running < PIN_MAX_RUNNING) {
        struct pin_job *j = ps->head;
        while (j && (j->started || pin_key_running(ps, j->key)))
            j = j->next;
        if (!j)
            return;
        j->started = true;
        ps->running++;
        j->req.data = j;
        if (uv_queue_work(s->loop, &j->req, pin_work, pin_done) != 0) {
            /* cannot happen with a live loop: resolve here instead */
            pin_work(&j->req);
            pin_done(&j->req, 0);
            return; /* (pin_done kicked again) */
        }
    }
}

/* r waits for key to be resolved: a queued job for it, or a new one. */
static void
pin_ask(struct sched *s, struct sched_run *r, const char *key, const struct imgref *ref)
{
    struct pin_set *ps = pins_of(s);
    struct pin_job *j = ps->head, **tail = &ps->head;
    for (; j && (j->started || strcmp(j->key, key)); j = j->next)
        tail = &j->next;
    if (!j) {
        while (*tail)
            tail = &(*tail)->next;
        j = xcalloc(1, sizeof(*j));
        j->s = s;
        j->key = xstrdup(key);
        j->registry = xstrdup(ref->registry);
        j->repo = xstrdup(ref->repo);
        j->tag = xstrdup(ref->tag ? ref->tag : "latest");
        j->o = s->cfg.registry;
        if (j->o.timeout_s <= 0)
            j->o.timeout_s = PIN_DEFAULT_TIMEOUT_S;
        j->o.cancel = &ps->cancel;
        *tail = j;
    }
    xgrow((void **)&j->w, &j->capw, j->nw + 1, sizeof(*j->w));
    j->w[j->nw++] = (struct pin_waiter){xstrdup(r->dag), xstrdup(r->run_id), r->pin_id};
}

void
imagepin_run(struct sched *s, struct sched_run *r)
{
    const struct dag *d = r->dv->dag;
    json_t *pins = json_object(), *asked = json_object();
    r->pin_id = ++pins_of(s)->seq;
    r->pinning = 0;
    for (size_t i = 0; i < d->ntasks; i++) {
        const char *image = d->tasks[i].image;
        struct imgref ref;
        char *key = image ? pin_key(image, &ref) : NULL;
        if (!key)
            continue;
        if (!json_object_get(pins, key) && !json_object_get(asked, key)) {
            if (ref.digest) {
                json_object_set_new(pins, key, json_string(ref.digest));
            } else {
                json_object_set_new(asked, key, json_true());
                pin_ask(s, r, key, &ref);
                r->pinning++;
            }
        }
        free(key);
        imgref_clear(&ref);
    }
    json_decref(asked);
    json_decref(r->images);
    r->images = json_object_size(pins) ? pins : NULL;
    if (!r->images)
        json_decref(pins);
    if (r->pinning) {
        LOG(LOG_INFO, "CAIRN-IMAGE-PIN", "run %s of %s: resolving %d image tag%s before it starts",
            r->run_id, r->dag, r->pinning, r->pinning == 1 ? "" : "s");
        pin_kick(s);
    }
}

int
imagepin_stop(struct sched *s)
{
    if (!s->pins)
        return 0;
    atomic_store(&s->pins->cancel, 1);
    return s->pins->running;
}

void
imagepin_free(struct sched *s)
{
    struct pin_set *ps = s->pins;
    if (!ps)
        return;
    while (ps->head) {
        struct pin_job *j = ps->head;
        ps->head = j->next;
        pin_job_free(j);
    }
    free(ps);
    s->pins = NULL;
}

const char *
imagepin_digest(const struct sched_run *r, const char *image)
{
    struct imgref ref;
    if (!image)
        return NULL;
    char *key = pin_key(image, &ref);
    if (!key)
        return NULL;
    const char *d = json_string_value(json_object_get(r->images, key));
    free(key);
    imgref_clear(&ref);
    return d;
}

char *
imagepin_lease_ref(const struct sched_run *r, const char *image)
{
    const char *d = imagepin_digest(r, image);
    if (!d)
        return NULL;
    struct imgref ref;
    if (imgref_parse(image, &ref, NULL, 0) != 0)
        return NULL;
    free(ref.digest);
    ref.digest = xstrdup(d);
    char *out = imgref_format(&ref);
    imgref_clear(&ref);
    return out;
}

/* ---- image: host ---- */

static void
feed_file(EVP_MD_CTX *md, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    EVP_DigestUpdate(md, path, strlen(path) + 1);
    if (fs_read_all(path, 64 << 20, &buf, &len) == 0)
        EVP_DigestUpdate(md, buf, len);
    free(buf);
}

const char *
imagepin_host_fingerprint(void)
{
    static const char *const files[] = {"/var/lib/dpkg/status", "/etc/os-release"};
    static char hex[65];
    static long long seen[4];
    long long now[4] = {0};
    for (int i = 0; i < 2; i++) {
        struct stat st;
        if (stat(files[i], &st) == 0) {
            now[2 * i] = (long long)st.st_size;
            now[2 * i + 1] = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
        }
    }
    if (hex[0] && !memcmp(now, seen, sizeof(now)))
        return hex;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        abort();
    for (int i = 0; i < 2; i++)
        feed_file(md, files[i]);
    unsigned char out[32];
    unsigned int n = 0;
    EVP_DigestFinal_ex(md, out, &n);
    EVP_MD_CTX_free(md);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", out[i]);
    memcpy(seen, now, sizeof(now));
    return hex;
}
