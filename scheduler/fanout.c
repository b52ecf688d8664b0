/* fanout.c - expanding mapped tasks into instances (fanout.h). */
#include "fanout.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artifact.h"
#include "commit.h"
#include "core.h"
#include "err.h"
#include "fs.h"
#include "log.h"
#include "runtab.h"
#include "taskstate.h"
#include "util.h"

/* Instances made per loop iteration, over all groups: a chunk stays well
 * under the 50 ms an iteration may take, and the first instances are
 * leased before the last are made. */
#define FAN_CHUNK 4096
/* Instances (and items) of finished groups released per loop iteration. */
#define FAN_FREE_CHUNK 4096
/* A group with more instances than this leaves memory over iterations. */
#define FAN_FREE_LATER FAN_CHUNK
/* Releasing at least this many instances trims the heap at the end. */
#define FAN_TRIM_INSTANCES 1000
/* A list file larger than this is refused (an item is rarely more than a
 * few hundred bytes: 100,000 of them fit easily). */
#define FAN_LIST_MAX ((size_t)256 << 20)

/* ---------- items ---------- */

/* Parse text as the JSON list of a map; NULL with err if it is not one or
 * is longer than max. */
static json_t *
fan__parse_list(const char *text, size_t len, int64_t max, const char *what, char *err,
                size_t errlen)
{
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY, &je);
    if (!j) {
        errf(0, err, errlen, "%s is not JSON: %s (line %d)", what, je.text, je.line);
        return NULL;
    }
    if (!json_is_array(j)) {
        errf(0, err, errlen, "%s is not a JSON list", what);
        json_decref(j);
        return NULL;
    }
    if ((int64_t)json_array_size(j) > max) {
        errf(0, err, errlen, "%s has %zu items, more than max_map_items (%lld)", what,
             json_array_size(j), (long long)max);
        json_decref(j);
        return NULL;
    }
    return j;
}

/* The value of param name in run r: its override, else its default. */
static const char *
fan__param(const struct sched_run *r, const char *name)
{
    for (size_t i = 0; i < r->noverrides; i++)
        if (!strcmp(r->overrides[i].key, name))
            return r->overrides[i].value;
    const struct dag_param *p = dag_param_find(r->dv->dag, name);
    return p ? p->value : NULL;
}

/* The list file a map.from group reads: the digest of its upstream's
 * output, or NULL with err (the upstream did not store it). */
static const char *
fan__from_sha(const struct sched_ti *g, char *err, size_t errlen)
{
    const struct dag_map *dm = &sched_task(g)->map;
    const struct sched_ti *up = &g->run->tis[dm->from_task_idx];
    size_t k;
    json_t *v;
    json_array_foreach(up->outputs, k, v)
    {
        if (!strcmp(json_string_value(json_object_get(v, "name")) ?: "", dm->from_file))
            return json_string_value(json_object_get(v, "sha256"));
    }
    errf(0, err, errlen, "%s/%s: task '%s' stored no '%s'", dm->from_task, dm->from_file,
         dm->from_task, dm->from_file);
    return NULL;
}

struct fan_load {
    uv_work_t req;
    struct sched *s;
    char *run_key, *path, *what; /* path NULL: the store has no local files */
    size_t task_idx;
    char sha[65];
    int64_t max;
    json_t *items;
    char err[512];
};

/* Read blob sha of a store without local files (an S3 one): fetched,
 * digest checked, into a temporary file under DATA, read, removed. Blocks:
 * call it off the loop, or for a list file (small). */
static int
fan__read_remote(struct sched *s, const char *sha, char **text, size_t *len, char *err,
                 size_t errlen)
{
    char *tmp = xasprintf("%s/fanout-list.XXXXXX", s->cfg.data_dir);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int rc = errf(cairn_from_errno(errno), err, errlen, "cannot create %s: %s", tmp,
                      strerror(errno));
        free(tmp);
        return rc;
    }
    close(fd);
    int rc = art_fetch(s->art, sha, tmp, ART_FETCH_COPY, err, errlen);
    if (rc == 0 && (rc = fs_read_all(tmp, FAN_LIST_MAX, text, len)) != 0)
        errf(rc, err, errlen, "%s", rc == CAIRN_ERANGE ? "larger than 256 MiB" : strerror(errno));
    unlink(tmp);
    free(tmp);
    return rc;
}

static void
fan__load_work(uv_work_t *req)
{
    struct fan_load *l = req->data;
    char *text = NULL;
    size_t len = 0;
    if (!l->path) {
        char why[400];
        if (fan__read_remote(l->s, l->sha, &text, &len, why, sizeof(why)) != 0) {
            snprintf(l->err, sizeof(l->err), "cannot read %s: %s", l->what, why);
            return;
        }
        l->items = fan__parse_list(text, len, l->max, l->what, l->err, sizeof(l->err));
        free(text);
        return;
    }
    int rc = fs_read_all(l->path, FAN_LIST_MAX, &text, &len);
    if (rc) {
        snprintf(l->err, sizeof(l->err), "cannot read %s: %s", l->what,
                 rc == CAIRN_ERANGE ? "larger than 256 MiB" : strerror(errno));
        return;
    }
    l->items = fan__parse_list(text, len, l->max, l->what, l->err, sizeof(l->err));
    free(text);
}

static void
fan__load_done(uv_work_t *req, int status)
{
    struct fan_load *l = req->data;
    struct sched *s = l->s;
    (void)status;
    size_t v = 0;
    struct sched_run *r =
        hmap_get(&s->runs_by_key, l->run_key, &v) ? (struct sched_run *)(uintptr_t)v : NULL;
    struct sched_ti *g = r && l->task_idx < r->ntis ? &r->tis[l->task_idx] : NULL;
    if (g && g->map && g->map->loading && !s->stopping) {
        g->map->loading = false;
        if (l->items) {
            g->map->items = l->items;
            l->items = NULL;
            snprintf(g->map->items_sha, sizeof(g->map->items_sha), "%s", l->sha);
        } else {
            fan_fail(s, g, l->err);
        }
        fan_enqueue(s, g);
    }
    json_decref(l->items);
    free(l->run_key);
    free(l->path);
    free(l->what);
    free(l);
}

/* Know g's items. 0: known (g->map->items set); 1: being read (the group
 * comes back to the queue when they are); <0: the group cannot expand (err). */
static int
fan__items(struct sched *s, struct sched_ti *g, char *err, size_t errlen)
{
    struct sched_map *m = g->map;
    if (m->items)
        return 0;
    if (m->loading)
        return 1;
    const struct dag *d = g->run->dv->dag;
    const struct dag_map *dm = &sched_task(g)->map;
    switch (dm->kind) {
    case DAG_MAP_MATRIX:
        m->items = fan__parse_list(dm->items_json, strlen(dm->items_json), d->max_map_items,
                                   "the matrix", err, errlen);
        return m->items ? 0 : CAIRN_EINVAL;
    case DAG_MAP_PARAM: {
        const char *v = fan__param(g->run, dm->param);
        char what[128];
        snprintf(what, sizeof(what), "param '%s'", dm->param);
        if (!v) {
            errf(0, err, errlen, "%s is not set", what);
            return CAIRN_EINVAL;
        }
        m->items = fan__parse_list(v, strlen(v), d->max_map_items, what, err, errlen);
        return m->items ? 0 : CAIRN_EINVAL;
    }
    case DAG_MAP_ZIP: {
        const struct sched_ti *up = &g->run->tis[dm->zip_task_idx];
        if (!up->map || !up->map->expanded || !up->map->items) {
            errf(0, err, errlen, "task '%s' it zips has no instances", dm->zip_task);
            return CAIRN_EINVAL;
        }
        m->items = json_incref(up->map->items);
        return 0;
    }
    case DAG_MAP_FROM: {
        const char *sha = fan__from_sha(g, err, errlen);
        char *path = NULL;
        if (!sha)
            return CAIRN_ENOENT;
        int brc = art_hex_valid(sha) ? art_blob_path(s->art, sha, &path) : CAIRN_ENOENT;
        if (brc != 0 && brc != CAIRN_EINVAL) { /* EINVAL: no local file; fetched below */
            errf(0, err, errlen, "%s/%s: its blob %.12s is not in the store", dm->from_task,
                 dm->from_file, sha);
            return CAIRN_ENOENT;
        }
        struct fan_load *l = xcalloc(1, sizeof(*l));
        l->req.data = l;
        l->s = s;
        l->run_key = xstrdup(g->run->key);
        l->task_idx = g->idx;
        l->path = path;
        l->what = xasprintf("%s/%s", dm->from_task, dm->from_file);
        l->max = d->max_map_items;
        snprintf(l->sha, sizeof(l->sha), "%s", sha);
        m->loading = true;
        if (uv_queue_work(s->loop, &l->req, fan__load_work, fan__load_done) != 0) {
            fan__load_work(&l->req); /* cannot happen with a live loop */
            fan__load_done(&l->req, 0);
        }
        return 1;
    }
    case DAG_MAP_NONE:
        break;
    }
    errf(0, err, errlen, "task '%s' is not mapped", sched_task(g)->name);
    return CAIRN_EINVAL;
}

int
fan_items_sync(struct sched *s, struct sched_ti *g, char *err, size_t errlen)
{
    struct sched_map *m = g->map;
    if (m->items)
        return 0;
    if (sched_task(g)->map.kind != DAG_MAP_FROM)
        return fan__items(s, g, err, errlen) < 0 ? CAIRN_EINVAL : 0;
    const struct dag_map *dm = &sched_task(g)->map;
    char *path = NULL, *text = NULL, what[256];
    size_t len = 0;
    snprintf(what, sizeof(what), "%s/%s", dm->from_task, dm->from_file);
    int brc = m->items_sha[0] ? art_blob_path(s->art, m->items_sha, &path) : CAIRN_ENOENT;
    if (brc == CAIRN_EINVAL) { /* no local files (S3): fetch the list (small) */
        char why[400];
        int rc = fan__read_remote(s, m->items_sha, &text, &len, why, sizeof(why));
        if (rc)
            return errf(rc, err, errlen, "cannot read %s: %s", what, why);
    } else if (brc != 0) {
        errf(0, err, errlen, "%s: the list's blob %.12s is not in the store", what,
             m->items_sha);
        return CAIRN_ENOENT;
    } else {
        int rc = fs_read_all(path, FAN_LIST_MAX, &text, &len);
        free(path);
        if (rc)
            return errf(rc, err, errlen, "cannot read %s: %s", what, strerror(errno));
    }
    m->items = fan__parse_list(text, len, g->run->dv->dag->max_map_items, what, err, errlen);
    free(text);
    return m->items ? 0 : CAIRN_EINVAL;
}

/* ---------- the manifest of a group's outputs ---------- */

/* Instances a manifest takes per loop iteration (some 5 ms); a group with
 * at most FAN_MANIFEST_NOW has its manifest made at once, when it is read. */
#define FAN_MANIFEST_CHUNK 512
#define FAN_MANIFEST_NOW 256

/* The manifest of a big group, made before the group ends: its text a
 * chunk of instances per loop iteration (on the loop: the instances are
 * its), then stored from the thread pool. */
struct fan_mjob {
    uv_work_t req;
    struct sched *s;
    struct sched_map *m;  /* its group's map, NULL once it is gone */
    struct sched_ti *g;   /* its group (valid while m is set) */
    size_t next;          /* the next instance to write */
    struct sb text;
    char *task;           /* its task's name */
    bool storing;         /* on the thread pool (the text is complete) */
    int rc;
    char sha[65], err[256];
};

static void
fan__manifest_head(const struct sched_ti *g, struct sb *out)
{
    json_t *name = json_string(sched_task(g)->name);
    char *n = json_dumps(name, JSON_COMPACT | JSON_ENCODE_ANY);
    sb_printf(out, "{\"task\":%s,\"instances\":[", n ? n : "\"\"");
    free(n);
    json_decref(name);
}

/* Instance i's entry, compact, after a comma unless it is the first. */
static void
fan__manifest_entry(const struct sched_map *m, size_t i, struct sb *out)
{
    const struct sched_ti *ti = &m->inst[i];
    json_t *outs = json_object();
    size_t k;
    json_t *v;
    if (ti->state == TI_SUCCESS)
        json_array_foreach(ti->outputs, k, v)
        {
            json_object_set_new(outs, json_string_value(json_object_get(v, "name")) ?: "",
                                json_pack("{s:O, s:O, s:O}", "sha256", json_object_get(v, "sha256"),
                                          "size", json_object_get(v, "size"), "uri",
                                          json_object_get(v, "uri")));
        }
    json_t *item = m->items ? json_array_get(m->items, i) : NULL;
    json_t *e = json_pack("{s:I, s:O?, s:s, s:o}", "index", (json_int_t)i, "item", item, "state",
                          sched_ti_state_name(ti->state), "outputs", outs);
    char *txt = json_dumps(e, JSON_COMPACT);
    if (i)
        sb_putc(out, ',');
    sb_puts(out, txt ? txt : "null");
    free(txt);
    json_decref(e);
}

/* Store text (the whole manifest) as a blob: sha, or a code with err.
 * Runs on the thread pool as well as on the loop. */
static int
fan__manifest_store(struct sched *s, const char *task, size_t idx, const struct sb *text,
                    char sha[65], char *err, size_t errlen)
{
    char *dir = xasprintf("%s/tmp", s->cfg.data_dir);
    char *tmp = xasprintf("%s/manifest-%d-%zu-XXXXXX", dir, (int)getpid(), idx);
    int rc = fs_mkdirs_mode(dir, 0700), fd = -1;
    if (!rc && (fd = mkstemp(tmp)) < 0)
        rc = cairn_from_errno(errno);
    for (size_t off = 0; !rc && off < text->len;) {
        ssize_t w = write(fd, text->buf + off, text->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = CAIRN_EIO;
            break;
        }
        off += (size_t)w;
    }
    if (fd >= 0 && close(fd) != 0 && !rc)
        rc = CAIRN_EIO;
    if (rc)
        errf(rc, err, errlen, "cannot write the manifest of %s: %s", task, strerror(errno));
    else
        rc = art_put_file(s->art, tmp, sha, NULL, NULL, err, errlen);
    if (fd >= 0)
        unlink(tmp);
    free(tmp);
    free(dir);
    return rc;
}

int
fan_manifest(struct sched *s, struct sched_ti *g, char sha[65], char *err, size_t errlen)
{
    struct sched_map *m = g->map;
    if (m->manifest_sha[0]) {
        memcpy(sha, m->manifest_sha, 65);
        return 0;
    }
    struct sb text;
    sb_init(&text);
    fan__manifest_head(g, &text);
    for (size_t i = 0; i < m->created; i++)
        fan__manifest_entry(m, i, &text);
    sb_puts(&text, "]}");
    int rc = fan__manifest_store(s, sched_task(g)->name, g->idx, &text, sha, err, errlen);
    sb_free(&text);
    if (!rc && sched_ti_terminal(g->state)) {
        /* kept once every instance is over (a rule that fires early sees the
         * instances done so far, and builds its own) */
        memcpy(m->manifest_sha, sha, 65);
        commit_ti_dirty(s, g, false);
    }
    return rc;
}

/* Whether a task reads g's instances' files through a manifest. */
static bool
fan__has_fan_in(const struct sched_ti *g)
{
    const struct dag *d = g->run->dv->dag;
    const struct dag_task *t = sched_task(g);
    for (size_t i = 0; i < t->ndownstream; i++) {
        const struct dag_task *dt = &d->tasks[t->downstream[i]];
        for (size_t k = 0; k < dt->ninputs; k++)
            if (dt->inputs[k].fan_in && dt->inputs[k].task_idx == g->idx)
                return true;
    }
    return false;
}

bool
fan_manifest_first(struct sched *s, struct sched_ti *g)
{
    struct sched_map *m = g->map;
    if (m->mjob)
        return true; /* under way */
    if (m->manifest_sha[0] || m->manifest_failed || m->created <= FAN_MANIFEST_NOW ||
        s->stopping || g->run->state != RUN_RUNNING || !fan__has_fan_in(g))
        return false;
    struct fan_mjob *j = xcalloc(1, sizeof(*j));
    j->req.data = j;
    j->s = s;
    j->m = m;
    j->g = g;
    j->task = xstrdup(sched_task(g)->name);
    sb_init(&j->text);
    fan__manifest_head(g, &j->text);
    m->mjob = j;
    fan_enqueue(s, g);
    return true;
}

static void
fan__mjob_free(struct fan_mjob *j)
{
    sb_free(&j->text);
    free(j->task);
    free(j);
}

void
fan_manifest_forget(struct sched_map *m)
{
    struct fan_mjob *j = m->mjob;
    if (!j)
        return;
    m->mjob = NULL;
    if (j->storing)
        j->m = NULL; /* its completion frees it */
    else
        fan__mjob_free(j);
}

static void
fan__mjob_work(uv_work_t *req)
{
    struct fan_mjob *j = req->data;
    j->rc = fan__manifest_store(j->s, j->task, 0, &j->text, j->sha, j->err, sizeof(j->err));
}

static void
fan__mjob_done(uv_work_t *req, int status)
{
    struct fan_mjob *j = req->data;
    struct sched *s = j->s;
    (void)status;
    if (j->m) {
        struct sched_ti *g = j->g;
        struct sched_map *m = j->m;
        m->mjob = NULL;
        if (j->rc == 0) {
            memcpy(m->manifest_sha, j->sha, 65);
        } else {
            char name[256];
            m->manifest_failed = true;
            LOG(LOG_ERR, "CAIRN-MAP-MANIFEST", "%s/%s/%s: cannot store the manifest of its "
                "instances (made again when a task reads it): %s", g->run->dag, g->run->run_id,
                sched_ti_name(g, name, sizeof(name)), j->err);
        }
        if (!s->stopping)
            ts_group_check(s, g); /* it ends now, with its manifest */
    }
    fan__mjob_free(j);
}

/* Write up to *budget more entries of g's manifest; when they are all
 * written, store it from the thread pool. true: nothing more to do here. */
static bool
fan__manifest_step(struct sched *s, struct sched_ti *g, size_t *budget)
{
    struct fan_mjob *j = g->map->mjob;
    struct sched_map *m = g->map;
    for (; j->next < m->created && *budget; (*budget)--)
        fan__manifest_entry(m, j->next++, &j->text);
    if (j->next < m->created)
        return false;
    sb_puts(&j->text, "]}");
    j->storing = true;
    if (uv_queue_work(s->loop, &j->req, fan__mjob_work, fan__mjob_done) != 0) {
        fan__mjob_work(&j->req); /* cannot happen with a live loop */
        fan__mjob_done(&j->req, 0);
    }
    return true;
}

/* ---------- expansion ---------- */

void
fan_enqueue(struct sched *s, struct sched_ti *g)
{
    sched_expand_later(s, g);
}

void
fan_fail(struct sched *s, struct sched_ti *g, const char *why)
{
    char name[256];
    LOG(LOG_ERR, "CAIRN-MAP-FAILED", "%s/%s/%s: cannot fan out: %s", g->run->dag,
        g->run->run_id, sched_ti_name(g, name, sizeof(name)), why);
    free(g->error);
    g->error = xasprintf("cannot fan out: %s", why);
    ts_finish(s, g, TI_FAILED);
}

/* Fix g's instances from its items: n is committed with the group. */
static void
fan__expand(struct sched *s, struct sched_ti *g)
{
    struct sched_map *m = g->map;
    m->n = json_array_size(m->items);
    m->inst = xcalloc(m->n + 1, sizeof(*m->inst));
    m->expanded = true;
    ts_set_state(s, g, TI_RUNNING);
    g->started_at = clock_wall_ms();
    commit_ti_dirty(s, g, false);
    LOG(LOG_INFO, "CAIRN-MAP-EXPAND", "%s/%s/%s: %zu instance%s", g->run->dag, g->run->run_id,
        sched_task(g)->name, m->n, m->n == 1 ? "" : "s");
}

/* Make instances of g up to budget; returns how many were made. */
static size_t
fan__create(struct sched *s, struct sched_ti *g, size_t budget)
{
    struct sched_map *m = g->map;
    const struct dag_map *dm = &sched_task(g)->map;
    const struct sched_ti *zip = dm->kind == DAG_MAP_ZIP ? &g->run->tis[dm->zip_task_idx] : NULL;
    size_t made = 0;
    while (m->created < m->n && made < budget) {
        size_t i = m->created++;
        runtab_instance_init(g, i);
        struct sched_ti *ti = &m->inst[i];
        if (zip && i < zip->map->created && !sched_ti_terminal(zip->map->inst[i].state))
            ti->pending_up = 1;
        ts_evaluate(s, ti);
        made++;
    }
    return made;
}

/* ---------- a finished group's memory, a chunk at a time ---------- */

struct fan_grave {
    struct sched_ti *inst; /* the instances, n of them still to release (the last first) */
    size_t n, total;
    json_t *items;         /* the items, released last to first, or NULL */
};

void
fan_release(struct sched *s, struct sched_map *m)
{
    if (!m)
        return;
    if (m->created <= FAN_FREE_LATER || s->stopping || !s->fan_idle.loop) {
        runtab_map_free(m);
        return;
    }
    for (size_t i = 0; i < m->created; i++) {
        struct sched_ti *ti = &m->inst[i];
        if (ti->uploads || ti->log_fd >= 0) /* what others hold goes now */
            runtab_ti_release(ti);
        ti->run = NULL; /* gone: nothing may reach it */
        ti->parent = NULL;
    }
    xgrow((void **)&s->graves, &s->capgraves, s->ngraves + 1, sizeof(*s->graves));
    s->graves[s->ngraves++] =
        (struct fan_grave){.inst = m->inst, .n = m->created, .total = m->created, .items = m->items};
    m->inst = NULL;
    m->items = NULL;
    m->created = 0;
    runtab_map_free(m);
    sched_more_work(s);
}

/* Release up to budget instances and items of finished groups. */
static void
fan__bury(struct sched *s, size_t budget)
{
    while (s->ngraves && budget) {
        struct fan_grave *g = &s->graves[s->ngraves - 1];
        for (; g->n && budget; budget--)
            runtab_ti_release(&g->inst[--g->n]);
        if (g->items && g->items->refcount > 1) { /* another group's too (a zip) */
            json_decref(g->items);
            g->items = NULL;
        }
        size_t left = g->items ? json_array_size(g->items) : 0;
        for (; left && budget; budget--)
            json_array_remove(g->items, --left);
        if (g->n || left)
            break;
        json_decref(g->items);
        free(g->inst);
        s->graves_freed += g->total;
        s->ngraves--;
    }
    if (!s->ngraves && s->graves_freed >= FAN_TRIM_INSTANCES) {
        /* their memory goes back to the system, not only to malloc's free
         * lists (runtab_evict_finished counts them only by their group) */
        malloc_trim(0);
        s->graves_freed = 0;
    }
}

/* The pre-commit step: expand what was decided, a chunk at a time, and
 * release finished groups' instances. */
static void
fan__step(struct sched *s)
{
    if (s->ngraves && !s->stopping)
        fan__bury(s, FAN_FREE_CHUNK);
    size_t budget = FAN_CHUNK, mbudget = FAN_MANIFEST_CHUNK, keep = 0;
    for (size_t i = 0; i < s->nexpandq; i++) {
        struct sched_ti *g = s->expandq[i];
        struct sched_map *m = g->map;
        bool done = true;
        if (g->run->state != RUN_RUNNING || sched_ti_terminal(g->state) || s->stopping) {
            /* cancelled or cleared meanwhile */
        } else if (m->mjob) { /* its manifest, before it ends */
            if (!m->mjob->storing && mbudget)
                fan__manifest_step(s, g, &mbudget);
            done = !m->mjob || m->mjob->storing; /* its completion ends the group */
            if (done)
                m->queued = false;
            else
                s->expandq[keep++] = g;
            continue;
        } else if (!m->expanded) {
            char err[512];
            int rc = fan__items(s, g, err, sizeof(err));
            if (rc == 1) {
                m->queued = false; /* fan__load_done queues it again */
                continue;
            }
            if (rc < 0) {
                fan_fail(s, g, err);
            } else {
                fan__expand(s, g);
                if (m->n == 0)
                    ts_group_check(s, g); /* no instances: skipped */
                else
                    done = false;
            }
        } else {
            done = false;
        }
        if (!done && budget) {
            budget -= fan__create(s, g, budget);
            if (m->created == m->n) {
                done = true;
                ts_group_expanded(s, g); /* zip tasks pairing with it may go */
                ts_group_check(s, g);    /* every instance may be over already */
            }
        }
        if (done)
            m->queued = false;
        else
            s->expandq[keep++] = g;
    }
    s->nexpandq = keep;
    if (!s->nexpandq && !s->nstartq && !s->ngraves && s->fan_idle_on) {
        uv_idle_stop(&s->fan_idle);
        s->fan_idle_on = false;
    }
}

/* ---------- lifecycle ---------- */

void
fan_init(struct sched *s)
{
    commit_add_step(s, fan__step);
}

void
fan_start(struct sched *s)
{
    uv_idle_init(s->loop, &s->fan_idle);
    s->fan_idle.data = s;
    if (s->nexpandq) { /* recovery queued groups */
        uv_idle_start(&s->fan_idle, sched__idle_noop);
        s->fan_idle_on = true;
    }
}

void
fan_stop(struct sched *s, uv_close_cb closed)
{
    uv_idle_stop(&s->fan_idle);
    s->fan_idle_on = false;
    uv_close((uv_handle_t *)&s->fan_idle, closed);
}

void
fan_free(struct sched *s)
{
    fan__bury(s, SIZE_MAX);
    free(s->graves);
    free(s->expandq);
}
