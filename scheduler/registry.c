/* registry.c - the models folder's releases and stages (registry.h). */
#include "registry.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"
#include "engine.h"
#include "err.h"
#include "fs.h"
#include "log.h"
#include "schema.h"
#include "store.h"
#include "util.h"

/* What the module keeps (s->registry). */
struct registry {
    json_t *hist;    /* "dag SEP task" -> [stage records], oldest first */
    json_t *pending; /* store key -> stage record, for the next commit */
    unsigned seq;    /* temporary link names */
};

static const char *const stages[] = {"production", "staging"};
static const char *const links[] = {"latest", "production", "staging"};

bool
registry_stage_valid(const char *stage)
{
    for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]); i++)
        if (stage && !strcmp(stage, stages[i]))
            return true;
    return false;
}

bool
registry_name_ok(const char *name)
{
    return name && *name && name[0] != '.' && !strchr(name, '/') && strlen(name) < NAME_MAX;
}

/* ---- the participant ------------------------------------------------------ */

static bool
reg_dirty(void *ud)
{
    struct sched *s = ud;
    return json_object_size(s->registry->pending) > 0;
}

static int
reg_flush(void *ud, struct store_txn *t)
{
    struct sched *s = ud;
    const char *k;
    json_t *v;
    json_object_foreach(s->registry->pending, k, v)
    {
        int rc = store_put(t, STORE_META, k, v);
        if (rc)
            return rc;
    }
    return 0;
}

static void
reg_clear(void *ud)
{
    struct sched *s = ud;
    json_object_clear(s->registry->pending);
}

void
registry_init(struct sched *s)
{
    s->registry = xcalloc(1, sizeof(*s->registry));
    s->registry->hist = json_object();
    s->registry->pending = json_object();
    struct sched_participant p = {reg_dirty, reg_flush, reg_clear, s};
    sched_add_participant(s, &p);
}

void
registry_free(struct sched *s)
{
    if (!s->registry)
        return;
    json_decref(s->registry->hist);
    json_decref(s->registry->pending);
    free(s->registry);
    s->registry = NULL;
}

/* ---- the folder ----------------------------------------------------------- */

static int
sys_err(char *err, size_t errlen, int e, const char *what, const char *path)
{
    snprintf(err, errlen, "%s %s: %s", what, path, strerror(e));
    return (e == ENOSPC || e == EDQUOT) ? CAIRN_EFULL : CAIRN_EIO;
}

static bool
is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The release a link of base points at ("releases/NAME"), or NULL. */
static char *
link_release(const char *base, const char *link)
{
    char *path = xasprintf("%s/%s", base, link), buf[PATH_MAX];
    ssize_t n = readlink(path, buf, sizeof(buf) - 1);
    free(path);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    const char *name = strncmp(buf, "releases/", 9) == 0 ? buf + 9 : strrchr(buf, '/');
    if (name && *name == '/')
        name++;
    if (!name)
        name = buf;
    return registry_name_ok(name) ? xstrdup(name) : NULL;
}

json_t *
registry_links(struct sched *s, const char *dag, const char *task)
{
    char *base = xasprintf("%s/%s/%s", s->models_dir, dag, task);
    json_t *o = json_object();
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
        char *r = link_release(base, links[i]);
        json_object_set_new(o, links[i], r ? json_string(r) : json_null());
        free(r);
    }
    free(base);
    return o;
}

/* The names of the visible subfolders of dir, sorted. */
static json_t *
subdirs(const char *dir)
{
    json_t *a = json_array();
    DIR *d = opendir(dir);
    if (!d)
        return a;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *p = xasprintf("%s/%s", dir, de->d_name);
        if (is_dir(p))
            json_array_append_new(a, json_string(de->d_name));
        free(p);
    }
    closedir(d);
    /* insertion sort: folders are few */
    for (size_t i = 1; i < json_array_size(a); i++)
        for (size_t k = i; k > 0; k--) {
            json_t *x = json_array_get(a, k - 1), *y = json_array_get(a, k);
            if (strcmp(json_string_value(x), json_string_value(y)) <= 0)
                break;
            json_incref(x);
            json_array_set(a, k - 1, y);
            json_array_set_new(a, k, x);
        }
    return a;
}

json_t *
registry_models(struct sched *s, const char *dag)
{
    json_t *out = json_array(), *dags = subdirs(s->models_dir);
    size_t i, k;
    json_t *dv, *tv;
    json_array_foreach(dags, i, dv)
    {
        const char *dn = json_string_value(dv);
        if (dag && strcmp(dag, dn))
            continue;
        char *dd = xasprintf("%s/%s", s->models_dir, dn);
        json_t *tasks = subdirs(dd);
        json_array_foreach(tasks, k, tv)
        {
            char *rel = xasprintf("%s/%s/releases", dd, json_string_value(tv));
            if (is_dir(rel))
                json_array_append_new(out, json_pack("{s:s, s:O}", "dag", dn, "task", tv));
            free(rel);
        }
        json_decref(tasks);
        free(dd);
    }
    json_decref(dags);
    return out;
}

static json_t *
read_record(const char *dir)
{
    char *path = xasprintf("%s/publish.json", dir), *text = NULL;
    size_t len = 0;
    json_t *j = NULL;
    if (fs_read_all(path, 1 << 20, &text, &len) == 0) {
        j = json_loadb(text, len, 0, NULL);
        free(text);
    }
    free(path);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* Newest first: logical date, attempt, publication time, name. */
static int
release_cmp(const void *pa, const void *pb)
{
    const json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
    const json_t *ra = json_object_get(a, "record"), *rb = json_object_get(b, "record");
    const char *la = json_string_value(json_object_get(ra, "logical_date")) ?: "",
               *lb = json_string_value(json_object_get(rb, "logical_date")) ?: "";
    int c = strcmp(lb, la);
    if (c)
        return c;
    json_int_t aa = json_integer_value(json_object_get(ra, "attempt")),
               ab = json_integer_value(json_object_get(rb, "attempt"));
    if (aa != ab)
        return ab > aa ? 1 : -1;
    const char *pa_ = json_string_value(json_object_get(ra, "published_at")) ?: "",
               *pb_ = json_string_value(json_object_get(rb, "published_at")) ?: "";
    c = strcmp(pb_, pa_);
    if (c)
        return c;
    return strcmp(json_string_value(json_object_get(b, "release")),
                  json_string_value(json_object_get(a, "release")));
}

int
registry_releases(struct sched *s, const char *dag, const char *task, json_t **out)
{
    char *base = xasprintf("%s/%s/%s", s->models_dir, dag, task);
    char *rdir = xasprintf("%s/releases", base);
    if (!registry_name_ok(dag) || !registry_name_ok(task) || !is_dir(rdir)) {
        free(base);
        free(rdir);
        return CAIRN_ENOENT;
    }
    json_t *held = registry_links(s, dag, task), *names = subdirs(rdir);
    size_t n = json_array_size(names), i;
    json_t **v = xcalloc(n + 1, sizeof(*v)), *nv;
    json_array_foreach(names, i, nv)
    {
        const char *name = json_string_value(nv);
        char *dir = xasprintf("%s/%s", rdir, name);
        json_t *rec = read_record(dir), *st = json_array();
        const char *lk;
        json_t *lv;
        json_object_foreach(held, lk, lv)
        {
            if (json_is_string(lv) && !strcmp(json_string_value(lv), name))
                json_array_append_new(st, json_string(lk));
        }
        v[i] = json_pack("{s:s, s:s, s:o, s:o}", "release", name, "path", dir, "record",
                         rec ? rec : json_null(), "stages", st);
        free(dir);
    }
    qsort(v, n, sizeof(*v), release_cmp);
    json_t *arr = json_array();
    for (i = 0; i < n; i++)
        json_array_append_new(arr, v[i]);
    free(v);
    json_decref(names);
    json_decref(held);
    free(base);
    free(rdir);
    *out = arr;
    return 0;
}

/* ---- stage history -------------------------------------------------------- */

struct hist_scan {
    json_t *arr;
    char err[256];
};

static int
hist_cb(void *ud, const char *key, const void *json)
{
    struct hist_scan *h = ud;
    struct schema_stage x;
    (void)key;
    if (schema_stage_decode(json, &x, h->err, sizeof(h->err)) != 0) {
        LOG(LOG_WARN, "CAIRN-STORE-BAD-RECORD", "stage record %s left out: %s", key, h->err);
        return 0;
    }
    json_array_append_new(h->arr, json_deep_copy(json));
    return 0;
}

const json_t *
registry_history(struct sched *s, struct store_txn *t, const char *dag, const char *task, char *err,
                 size_t errlen)
{
    struct registry *g = s->registry;
    char *hk = xasprintf("%s" SCHEMA_SEP "%s", dag, task);
    json_t *a = json_object_get(g->hist, hk);
    if (a) {
        free(hk);
        return a;
    }
    struct store_txn *own = NULL;
    if (!t) {
        int rc = store_txn_begin(sched_store(s), false, &own);
        if (rc) {
            snprintf(err, errlen, "cannot read the state store: %s",
                     store_last_error(sched_store(s)));
            free(hk);
            return NULL;
        }
        t = own;
    }
    struct hist_scan h = {json_array(), ""};
    char *prefix = schema_key_stage_prefix(dag, task);
    int rc = store_scan(t, STORE_META, prefix, hist_cb, &h);
    free(prefix);
    if (own)
        store_txn_abort(own);
    if (rc && rc != CAIRN_ENOENT) {
        snprintf(err, errlen, "cannot read the stage history of %s/%s: %s", dag, task,
                 store_last_error(sched_store(s)));
        json_decref(h.arr);
        free(hk);
        return NULL;
    }
    json_object_set_new(g->hist, hk, h.arr);
    free(hk);
    return h.arr;
}

/* The release a stage holds by its history (promotes push, rollbacks
 * pop), and the one below it; NULL when none. Borrowed from hist. */
static void
stage_stack(const json_t *hist, const char *stage, const char **top, const char **below)
{
    const char **stk = xcalloc(json_array_size(hist) + 1, sizeof(*stk));
    size_t n = 0, i;
    json_t *x;
    json_array_foreach(hist, i, x)
    {
        if (strcmp(json_string_value(json_object_get(x, "stage")) ?: "", stage))
            continue;
        const char *rel = json_string_value(json_object_get(x, "release"));
        const char *act = json_string_value(json_object_get(x, "action")) ?: "";
        if (!strcmp(act, "rollback")) {
            if (n)
                n--;
            if (n == 0 && rel) /* a history cut short: the rollback's release holds it */
                stk[n++] = rel;
        } else if (rel && (n == 0 || strcmp(stk[n - 1], rel))) {
            stk[n++] = rel;
        }
    }
    *top = n ? stk[n - 1] : NULL;
    *below = n > 1 ? stk[n - 2] : NULL;
    free(stk);
}

/* Point base/stage at releases/release: a new link renamed over it. */
static int
switch_link(struct sched *s, const char *base, const char *stage, const char *release, char *err,
            size_t errlen)
{
    char *target = xasprintf("releases/%s", release);
    char *tmp = xasprintf("%s/.%s-%ld-%u", base, stage, (long)getpid(), s->registry->seq++);
    char *link = xasprintf("%s/%s", base, stage);
    int rc = 0;
    unlink(tmp);
    if (symlink(target, tmp) != 0) {
        rc = sys_err(err, errlen, errno, "cannot create the link", tmp);
    } else if (rename(tmp, link) != 0) {
        rc = sys_err(err, errlen, errno, "cannot switch", link);
        unlink(tmp);
    } else {
        int fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL))
            rc = sys_err(err, errlen, errno, "cannot fsync", base);
        if (fd >= 0)
            close(fd);
    }
    free(target);
    free(tmp);
    free(link);
    return rc;
}

/* Switch the link, then record the change (in memory at once, in the store
 * with the next commit). */
static int
change_stage(struct sched *s, const char *dag, const char *task, const char *stage,
             const char *action, const char *release, const char *by, json_t *hist, json_t **out,
             char *err, size_t errlen)
{
    char *base = xasprintf("%s/%s/%s", s->models_dir, dag, task);
    char *previous = link_release(base, stage);
    int rc = switch_link(s, base, stage, release, err, errlen);
    if (rc == 0) {
        struct schema_stage x = {
            .dag = dag,
            .task = task,
            .stage = stage,
            .action = action,
            .release = release,
            .previous = previous,
            .by = by && *by ? by : "local",
            .at = clock_wall_ms(),
            .seq = (int64_t)json_array_size(hist) + 1,
        };
        const json_t *last = json_array_get(hist, json_array_size(hist) - 1);
        if (last && json_integer_value(json_object_get(last, "seq")) >= x.seq)
            x.seq = json_integer_value(json_object_get(last, "seq")) + 1;
        json_t *rec = schema_stage_encode(&x);
        char *key = schema_key_stage(dag, task, x.seq);
        json_object_set(s->registry->pending, key, rec);
        json_array_append(hist, rec);
        free(key);
        LOG(LOG_NOTICE, "CAIRN-MODEL-STAGE", "%s/%s: %s %s -> %s (was %s) by %s", dag, task, action,
            stage, release, previous ? previous : "none", x.by);
        *out = rec;
    }
    free(previous);
    free(base);
    return rc;
}

static int
check_names(struct sched *s, const char *dag, const char *task, const char *stage, char *err,
            size_t errlen)
{
    if (!registry_stage_valid(stage))
        return errf(CAIRN_EINVAL, err, errlen, "unknown stage '%s' (stages: production, staging)",
                    stage ? stage : "");
    if (!registry_name_ok(dag) || !registry_name_ok(task))
        return errf(CAIRN_EINVAL, err, errlen, "'%s/%s' is not a DAG/TASK of the models folder",
                    dag ? dag : "", task ? task : "");
    char *rdir = xasprintf("%s/%s/%s/releases", s->models_dir, dag, task);
    bool ok = is_dir(rdir);
    free(rdir);
    if (!ok)
        return errf(CAIRN_ENOENT, err, errlen, "%s/%s has published no release", dag, task);
    return 0;
}

int
registry_promote(struct sched *s, const char *dag, const char *task, const char *release,
                 const char *stage, const char *by, json_t **out, char *err, size_t errlen)
{
    int rc = check_names(s, dag, task, stage, err, errlen);
    if (rc)
        return rc;
    if (!registry_name_ok(release))
        return errf(CAIRN_EINVAL, err, errlen, "'%s' is not a release name",
                    release ? release : "");
    char *dir = xasprintf("%s/%s/%s/releases/%s", s->models_dir, dag, task, release);
    bool ok = is_dir(dir);
    free(dir);
    if (!ok)
        return errf(CAIRN_ENOENT, err, errlen, "%s/%s has no release '%s'", dag, task, release);
    const json_t *hist = registry_history(s, NULL, dag, task, err, errlen);
    if (!hist)
        return CAIRN_ESTORE;
    return change_stage(s, dag, task, stage, "promote", release, by, (json_t *)hist, out, err,
                        errlen);
}

int
registry_rollback(struct sched *s, const char *dag, const char *task, const char *stage,
                  const char *by, json_t **out, char *err, size_t errlen)
{
    int rc = check_names(s, dag, task, stage, err, errlen);
    if (rc)
        return rc;
    const json_t *hist = registry_history(s, NULL, dag, task, err, errlen);
    if (!hist)
        return CAIRN_ESTORE;
    const char *top, *below;
    stage_stack(hist, stage, &top, &below);
    if (!below && top)
        return errf(CAIRN_ESTATE, err, errlen,
                    "no release held %s of %s/%s before %s: nothing to roll back to", stage, dag,
                    task, top);
    if (!below)
        return errf(CAIRN_ESTATE, err, errlen,
                    "%s of %s/%s was never promoted: nothing to roll back", stage, dag, task);
    char *target = xstrdup(below);
    char *dir = xasprintf("%s/%s/%s/releases/%s", s->models_dir, dag, task, target);
    if (!is_dir(dir)) {
        rc = errf(CAIRN_ESTATE, err, errlen,
                  "the release %s held %s before, but its folder %s is gone", target, stage, dir);
    } else {
        rc = change_stage(s, dag, task, stage, "rollback", target, by, (json_t *)hist, out, err,
                          errlen);
    }
    free(dir);
    free(target);
    return rc;
}
