#include "backfill.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cal.h"
#include "engine.h"
#include "err.h"
#include "hmap.h"
#include "log.h"
#include "schema.h"
#include "store.h"
#include "ticks.h"
#include "tz.h"
#include "util.h"

#define BF_MAX_DATES 100000

enum bf_state { BF_RUNNING, BF_SUCCESS, BF_FAILED, BF_CANCELLED };
static const char *const bf_state_names[] = {"running", "success", "failed", "cancelled"};
static const char *const reprocess_names[] = {"none", "failed", "all"};

/* What a backfill did at a date (one character each in its record). */
#define ACT_WAITING '.' /* not reached yet */
#define ACT_NEW 'n'     /* created backfill__<date> */
#define ACT_RERUN 'r'   /* cleared the run there */
#define ACT_SKIP 's'    /* left the run there alone */

struct bf_progress {
    int n[RUN_NSTATES];
    int waiting, skipped;
};

struct bf {
    char *id;
    int64_t num;
    char *dag;
    char *from, *to;    /* resolved instants, ISO 8601 UTC */
    enum bf_reprocess reprocess;
    int max_active;     /* 0 = the DAG's */
    json_t *params;
    int64_t *dates;
    size_t ndates;
    char *actions;      /* ndates characters + NUL */
    size_t next;
    int active;         /* unfinished runs counted in the window */
    enum bf_state state;
    int64_t created_at, ended_at; /* wall ms */
    bool dirty, dates_dirty;
    struct bf_progress final;     /* counts when it ended (final_valid) */
    bool final_valid;
};

struct bf_set {
    struct sched *s;
    struct hmap counted; /* keys (owned) of unfinished runs counted in a window */
    struct bf **v;      /* creation order */
    size_t n, cap;
    int64_t seq;
    bool dirty;
};

const char *
bf_reprocess_name(enum bf_reprocess r)
{
    return (unsigned)r <= BF_REPROCESS_ALL ? reprocess_names[r] : "?";
}

int
bf_reprocess_parse(const char *s)
{
    for (int i = 0; i <= BF_REPROCESS_ALL; i++)
        if (!strcmp(s, reprocess_names[i]))
            return i;
    return -1;
}

static void
bf_release(struct bf *b)
{
    free(b->id);
    free(b->dag);
    free(b->from);
    free(b->to);
    json_decref(b->params);
    free(b->dates);
    free(b->actions);
    free(b);
}

static struct bf *
bf_find(struct bf_set *set, const char *id)
{
    for (size_t i = 0; id && i < set->n; i++)
        if (!strcmp(set->v[i]->id, id))
            return set->v[i];
    return NULL;
}

static void
bf_mark(struct bf_set *set, struct bf *b)
{
    b->dirty = true;
    set->dirty = true;
}

static void
iso(int64_t t, char *buf, size_t len)
{
    cal_format_iso(t, 0, 1, buf, len);
}

/* ---------- progress, read from the runs ---------- */


static void
bf_progress(struct bf_set *set, const struct bf *b, struct bf_progress *p, json_t *runs)
{
    memset(p, 0, sizeof(*p));
    if (!runs && b->state != BF_RUNNING && b->final_valid) {
        *p = b->final; /* an ended backfill's counts, kept when it ended */
        return;
    }
    struct store_txn *t = NULL;
    if (store_txn_begin(sched_store(set->s), false, &t) != 0)
        t = NULL; /* each lookup tries on its own */
    for (size_t i = 0; i < b->ndates; i++) {
        char ld[48], rid[128] = "";
        enum run_state st = RUN_QUEUED;
        bool found = false;
        char act = b->actions[i];
        if (act == ACT_WAITING)
            p->waiting++;
        else if (act == ACT_SKIP)
            p->skipped++;
        if (act != ACT_WAITING || runs)
            found = sched_run_at_date_in(set->s, t, b->dag, b->dates[i], rid, sizeof(rid), &st);
        if ((act == ACT_NEW || act == ACT_RERUN) && found)
            p->n[st]++;
        if (!runs)
            continue;
        iso(b->dates[i], ld, sizeof(ld));
        const char *what = act == ACT_NEW     ? "created"
                           : act == ACT_RERUN ? "rerun"
                           : act == ACT_SKIP  ? "skipped"
                                              : "waiting";
        json_array_append_new(runs, json_pack("{s:s, s:s, s:s?, s:s?}", "logical_date", ld,
                                              "action", what, "run_id", found ? rid : NULL,
                                              "state",
                                              found ? sched_run_state_name(st) : NULL));
    }
    store_txn_abort(t);
}

static json_t *
bf_json(struct bf_set *set, const struct bf *b, bool with_runs)
{
    struct bf_progress p;
    json_t *runs = with_runs ? json_array() : NULL;
    bf_progress(set, b, &p, runs);
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:O, s:s, s:o, s:o, s:i, s:i, s:{s:i, s:i, s:i, s:i, s:i, "
        "s:i, s:i}}",
        "id", b->id, "dag", b->dag, "from", b->from, "to", b->to, "reprocess",
        bf_reprocess_name(b->reprocess), "params", b->params, "state", bf_state_names[b->state],
        "created_at", sched_json_time(b->created_at), "ended_at", sched_json_time(b->ended_at),
        "total", (int)b->ndates, "next", (int)b->next, "progress", "success",
        p.n[RUN_SUCCESS], "failed", p.n[RUN_FAILED], "cancelled", p.n[RUN_CANCELLED],
        "running", p.n[RUN_RUNNING], "queued", p.n[RUN_QUEUED], "waiting", p.waiting, "skipped",
        p.skipped);
    json_object_set_new(o, "max_active_runs",
                        b->max_active ? json_integer(b->max_active) : json_null());
    if (runs)
        json_object_set_new(o, "runs", runs);
    return o;
}

/* ---------- the window ---------- */

static void
bf_check_done(struct bf_set *set, struct bf *b)
{
    if (b->state != BF_RUNNING || b->next < b->ndates || b->active > 0)
        return;
    struct bf_progress p;
    bf_progress(set, b, &p, NULL);
    b->final = p;
    b->final_valid = true;
    b->state = p.n[RUN_FAILED] || p.n[RUN_CANCELLED] ? BF_FAILED : BF_SUCCESS;
    b->ended_at = clock_wall_ms();
    bf_mark(set, b);
    LOG(LOG_INFO, "CAIRN-BACKFILL-DONE", "backfill %s of %s %s: %d succeeded, %d failed, %d "
        "skipped", b->id, b->dag, bf_state_names[b->state], p.n[RUN_SUCCESS],
        p.n[RUN_FAILED] + p.n[RUN_CANCELLED], p.skipped);
}

static void
bf_count(struct bf_set *set, struct bf *b, const struct sched_run *r)
{
    char *key = xstrdup(r->key);
    if (hmap_put(&set->counted, key, (size_t)(uintptr_t)key))
        b->active++;
    else
        free(key); /* counted already */
}

static void
bf_pump(struct bf_set *set, struct bf *b)
{
    if (b->state != BF_RUNNING)
        return;
    struct sched *s = set->s;
    struct sched_dag *sd = sched_find_dag(s, b->dag);
    if (!sd || !sd->cur)
        return; /* the DAG is gone or broken: wait for it */
    int window = sd->cur->dag->max_active_runs;
    if (b->max_active > 0 && b->max_active < window)
        window = b->max_active;
    while (b->next < b->ndates && b->active < window) {
        int64_t ld = b->dates[b->next];
        char rid[128], err[256];
        enum run_state st;
        struct sched_run *r = NULL;
        char act = ACT_SKIP;
        if (!sched_run_at_date(s, b->dag, ld, rid, sizeof(rid), &st)) {
            char ts[48];
            iso(ld, ts, sizeof(ts));
            snprintf(rid, sizeof(rid), "backfill__%s", ts);
            r = sched_create_run(s, b->dag, rid, "backfill", ld, b->params, b->id);
            if (!r)
                return; /* stopping, or the DAG broke: try again later */
            act = ACT_NEW;
        } else if (sched_run_finished(st) &&
                   (b->reprocess == BF_REPROCESS_ALL ||
                    (b->reprocess == BF_REPROCESS_FAILED && st != RUN_SUCCESS))) {
            unsigned flags = b->reprocess == BF_REPROCESS_ALL
                                 ? 0
                                 : SCHED_CLEAR_FAILED_ONLY | SCHED_CLEAR_DOWNSTREAM;
            if (sched_clear(s, b->dag, rid, NULL, flags, &r, err, sizeof(err)) == 0) {
                sched_run_set_backfill(s, r, b->id);
                act = ACT_RERUN;
            }
            else
                LOG(LOG_WARN, "CAIRN-BACKFILL-SKIP", "backfill %s: %s", b->id, err);
        }
        /* a run can finish at once (every task skipped by a gate) */
        if (r && !sched_run_finished(r->state))
            bf_count(set, b, r);
        b->actions[b->next++] = act;
        bf_mark(set, b);
    }
    bf_check_done(set, b);
}

void
bf_pump_all(struct bf_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        bf_pump(set, set->v[i]);
}

/* An unfinished run that belongs to a running backfill counts toward its
 * window (each run recovered at start). */
static void
bf_claim(void *ud, struct sched_run *r)
{
    struct bf_set *set = ud;
    struct bf *b = r->backfill ? bf_find(set, r->backfill) : NULL;
    if (!b || b->state != BF_RUNNING || sched_run_finished(r->state))
        return;
    bf_count(set, b, r);
}

/* A run finished: if it counted in a backfill's window, that backfill may
 * start the next date. */
static void
bf_run_ended(void *ud, struct sched_run *r)
{
    struct bf_set *set = ud;
    size_t v = 0;
    if (!hmap_get(&set->counted, r->key, &v))
        return;
    hmap_del(&set->counted, r->key);
    free((char *)(uintptr_t)v);
    struct bf *b = r->backfill ? bf_find(set, r->backfill) : NULL;
    if (!b)
        return;
    if (b->active > 0)
        b->active--;
    bf_pump(set, b);
    bf_check_done(set, b);
}

/* ---------- create, cancel, list ---------- */

/* A user's date: a bare date is that whole day in the DAG's time zone (its
 * first second for `from`, its last for `to`); a time without an offset is
 * in the DAG's time zone. */
static int
resolve_date(const struct dag *d, const char *txt, bool end, int64_t *out, char *err,
             size_t errlen)
{
    int64_t secs;
    int ht = 0, ho = 0;
    if (!txt || cal_parse(txt, &secs, &ht, &ho) != 0) {
        snprintf(err, errlen, "--%s '%s' is not a date (2026-01-31) or an ISO 8601 time "
                 "(2026-01-31T06:00, 2026-01-31T06:00:00Z)", end ? "to" : "from",
                 txt ? txt : "");
        return CAIRN_EINVAL;
    }
    if (ht)
        *out = ho ? secs : tz_local_to_utc(d->tz, secs, NULL);
    else if (end)
        *out = tz_local_to_utc(d->tz, secs + 86400, NULL) - 1;
    else
        *out = tz_local_to_utc(d->tz, secs, NULL);
    return 0;
}

int
bf_create(struct bf_set *set, const struct bf_request *req, json_t **out, char *err,
          size_t errlen)
{
    struct sched *s = set->s;
    struct sched_dag *sd = sched_find_dag(s, req->dag);
    if (!sd || !sd->cur) {
        snprintf(err, errlen, sd ? "DAG '%s' has no valid version to run" : "no DAG '%s'",
                 req->dag);
        return CAIRN_ENOENT;
    }
    const struct dag *d = sd->cur->dag;
    if (!d->schedule) {
        snprintf(err, errlen, "DAG '%s' has no schedule, so a date range has no logical dates "
                 "to fill; use `cairn trigger %s --logical-date DATE` for single runs",
                 req->dag, req->dag);
        return CAIRN_EINVAL;
    }
    int64_t from, to;
    int rc;
    if ((rc = resolve_date(d, req->from, false, &from, err, errlen)) != 0 ||
        (rc = resolve_date(d, req->to, true, &to, err, errlen)) != 0)
        return rc;
    if (from > to) {
        snprintf(err, errlen, "--from %s is after --to %s", req->from, req->to);
        return CAIRN_EINVAL;
    }
    if (req->max_active_runs < 0) {
        snprintf(err, errlen, "max_active_runs must be 1 or more");
        return CAIRN_EINVAL;
    }
    json_t *params = NULL;
    if ((rc = sched_params_check(d, req->params, &params, err, errlen)) != 0)
        return rc;
    int64_t *dates = xcalloc(BF_MAX_DATES, sizeof(*dates));
    size_t n = ticks_range(d, from, to, dates, BF_MAX_DATES);
    char a[48], b2[48];
    iso(from, a, sizeof(a));
    iso(to, b2, sizeof(b2));
    if (n == 0 || n > BF_MAX_DATES) {
        if (n == 0)
            snprintf(err, errlen, "no logical date of DAG '%s' (schedule '%s', %s) lies in "
                     "[%s, %s]%s", req->dag, d->schedule, d->timezone ? d->timezone : "UTC",
                     a, b2, d->has_start || d->has_end ? " within its start_date/end_date" : "");
        else
            snprintf(err, errlen, "the range has more than %d logical dates, the most a "
                     "backfill takes: split it", BF_MAX_DATES);
        free(dates);
        json_decref(params);
        return CAIRN_EINVAL;
    }
    if (req->dry_run) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            char ld[48], rid[128];
            enum run_state st;
            iso(dates[i], ld, sizeof(ld));
            const char *what = "new";
            bool found = sched_run_at_date(s, req->dag, dates[i], rid, sizeof(rid), &st);
            if (found) {
                if (!sched_run_finished(st))
                    what = "skip";
                else if (req->reprocess == BF_REPROCESS_ALL)
                    what = "rerun";
                else if (req->reprocess == BF_REPROCESS_FAILED && st != RUN_SUCCESS)
                    what = "rerun failed tasks";
                else
                    what = "skip";
            }
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s?, s:s?}", "logical_date", ld,
                                                 "action", what, "run_id", found ? rid : NULL,
                                                 "state",
                                                 found ? sched_run_state_name(st) : NULL));
        }
        *out = json_pack("{s:b, s:s, s:s, s:s, s:s, s:i, s:o, s:o}", "dry_run", 1, "dag",
                         req->dag, "from", a, "to", b2, "reprocess",
                         bf_reprocess_name(req->reprocess), "total", (int)n, "params", params,
                         "runs", arr);
        free(dates);
        return 0;
    }
    struct bf *b = xcalloc(1, sizeof(*b));
    b->num = ++set->seq;
    b->id = xasprintf("bf-%" PRId64, b->num);
    b->dag = xstrdup(req->dag);
    b->from = xstrdup(a);
    b->to = xstrdup(b2);
    b->reprocess = req->reprocess;
    b->max_active = req->max_active_runs;
    b->params = params;
    b->dates = xrealloc(dates, n * sizeof(*dates));
    b->ndates = n;
    b->actions = xmalloc(n + 1);
    memset(b->actions, ACT_WAITING, n);
    b->actions[n] = '\0';
    b->state = BF_RUNNING;
    b->created_at = clock_wall_ms();
    b->dates_dirty = true;
    xgrow((void **)&set->v, &set->cap, set->n + 1, sizeof(*set->v));
    set->v[set->n++] = b;
    bf_mark(set, b);
    LOG(LOG_INFO, "CAIRN-BACKFILL", "backfill %s of %s: %zu logical dates in [%s, %s], "
        "reprocess %s", b->id, b->dag, n, a, b2, bf_reprocess_name(b->reprocess));
    bf_pump(set, b);
    *out = bf_json(set, b, false);
    return 0;
}

int
bf_cancel(struct bf_set *set, const char *id, json_t **out, char *err, size_t errlen)
{
    struct bf *b = bf_find(set, id);
    if (!b) {
        snprintf(err, errlen, "no backfill '%s'", id);
        return CAIRN_ENOENT;
    }
    if (b->state != BF_RUNNING) {
        snprintf(err, errlen, "backfill %s has already ended (%s)", id,
                 bf_state_names[b->state]);
        return CAIRN_ESTATE;
    }
    b->state = BF_CANCELLED;
    b->ended_at = clock_wall_ms();
    bf_mark(set, b);
    size_t cancelled = 0;
    for (size_t i = 0; i < b->next; i++) {
        char rid[128], e[256];
        enum run_state st;
        struct sched_run *r;
        if ((b->actions[i] == ACT_NEW || b->actions[i] == ACT_RERUN) &&
            sched_run_at_date(set->s, b->dag, b->dates[i], rid, sizeof(rid), &st) &&
            !sched_run_finished(st) && sched_cancel(set->s, b->dag, rid, &r, e, sizeof(e)) == 0)
            cancelled++;
    }
    bf_progress(set, b, &b->final, NULL); /* after its runs were cancelled */
    b->final_valid = true;
    LOG(LOG_INFO, "CAIRN-BACKFILL-CANCELLED", "backfill %s of %s cancelled (%zu unfinished "
        "run%s cancelled, %zu date%s not started)", b->id, b->dag, cancelled,
        cancelled == 1 ? "" : "s", b->ndates - b->next, b->ndates - b->next == 1 ? "" : "s");
    *out = bf_json(set, b, false);
    return 0;
}

json_t *
bf_list(struct bf_set *set, const char *dag)
{
    json_t *arr = json_array();
    for (size_t i = set->n; i-- > 0;)
        if (!dag || !strcmp(dag, set->v[i]->dag))
            json_array_append_new(arr, bf_json(set, set->v[i], false));
    return arr;
}

json_t *
bf_get(struct bf_set *set, const char *id)
{
    struct bf *b = bf_find(set, id);
    return b ? bf_json(set, b, true) : NULL;
}

/* ---------- persistence ---------- */

static bool
bf_dirty(const struct bf_set *set)
{
    return set && set->dirty;
}

static int
bf_flush(struct bf_set *set, struct store_txn *t)
{
    int rc = 0;
    for (size_t i = 0; i < set->n && !rc; i++) {
        struct bf *b = set->v[i];
        if (b->dates_dirty) {
            json_t *arr = json_array();
            for (size_t k = 0; k < b->ndates; k++)
                json_array_append_new(arr, json_integer(b->dates[k]));
            json_t *j = json_pack("{s:o}", "dates", arr);
            char *key = schema_key_backfill_dates(b->id);
            rc = store_put(t, STORE_BACKFILLS, key, j);
            free(key);
            json_decref(j);
        }
        if (!rc && b->dirty) {
            json_t *j = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:i, s:O, s:s, s:I, s:I, s:I, "
                                  "s:s}",
                                  "id", b->id, "num", (json_int_t)b->num, "dag", b->dag, "from",
                                  b->from, "to", b->to, "reprocess",
                                  bf_reprocess_name(b->reprocess), "max_active_runs",
                                  b->max_active, "params", b->params, "state",
                                  bf_state_names[b->state], "created_at",
                                  (json_int_t)b->created_at, "ended_at", (json_int_t)b->ended_at,
                                  "next", (json_int_t)b->next, "actions", b->actions);
            if (b->final_valid) {
                json_t *f = json_object();
                for (int k = 0; k < RUN_NSTATES; k++)
                    json_object_set_new(f, sched_run_state_name((enum run_state)k),
                                        json_integer(b->final.n[k]));
                json_object_set_new(f, "waiting", json_integer(b->final.waiting));
                json_object_set_new(f, "skipped", json_integer(b->final.skipped));
                json_object_set_new(j, "final", f);
            }
            rc = store_put(t, STORE_BACKFILLS, b->id, j);
            json_decref(j);
        }
    }
    return rc;
}

static void
bf_clear_dirty(struct bf_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        set->v[i]->dirty = set->v[i]->dates_dirty = false;
    set->dirty = false;
}

struct load_ctx {
    struct bf_set *set;
    struct store_txn *t;
};

static int
load_cb(void *ud, const char *key, const void *json)
{
    struct load_ctx *lc = ud;
    json_t *j = (json_t *)json;
    if (strchr(key, '\x1f'))
        return 0; /* a dates record, read with its backfill */
    const char *dag = json_string_value(json_object_get(j, "dag"));
    const char *actions = json_string_value(json_object_get(j, "actions"));
    const char *from = json_string_value(json_object_get(j, "from"));
    const char *to = json_string_value(json_object_get(j, "to"));
    int st = -1, rp = bf_reprocess_parse(json_string_value(json_object_get(j, "reprocess")) ?: "");
    const char *sts = json_string_value(json_object_get(j, "state")) ?: "";
    for (int i = 0; i <= BF_CANCELLED; i++)
        if (!strcmp(sts, bf_state_names[i]))
            st = i;
    char *dkey = schema_key_backfill_dates(key);
    void *dj = NULL;
    int rc = store_get(lc->t, STORE_BACKFILLS, dkey, &dj);
    free(dkey);
    json_t *dates = rc == 0 ? json_object_get(dj, "dates") : NULL;
    size_t n = json_array_size(dates);
    if (!dag || !actions || !from || !to || st < 0 || rp < 0 || !n || strlen(actions) != n) {
        LOG(LOG_ERR, "CAIRN-BACKFILL-RECORD", "backfill record %s is incomplete; ignored", key);
        json_decref(dj);
        return 0;
    }
    struct bf *b = xcalloc(1, sizeof(*b));
    b->id = xstrdup(key);
    b->num = json_integer_value(json_object_get(j, "num"));
    b->dag = xstrdup(dag);
    b->from = xstrdup(from);
    b->to = xstrdup(to);
    b->reprocess = (enum bf_reprocess)rp;
    b->max_active = (int)json_integer_value(json_object_get(j, "max_active_runs"));
    json_t *p = json_object_get(j, "params");
    b->params = json_is_object(p) ? json_deep_copy(p) : json_object();
    b->ndates = n;
    b->dates = xcalloc(n, sizeof(*b->dates));
    for (size_t i = 0; i < n; i++)
        b->dates[i] = json_integer_value(json_array_get(dates, i));
    b->actions = xstrdup(actions);
    b->next = (size_t)json_integer_value(json_object_get(j, "next"));
    if (b->next > n)
        b->next = n;
    b->state = (enum bf_state)st;
    b->created_at = json_integer_value(json_object_get(j, "created_at"));
    b->ended_at = json_integer_value(json_object_get(j, "ended_at"));
    json_t *f = json_object_get(j, "final");
    if (json_is_object(f)) {
        for (int k = 0; k < RUN_NSTATES; k++)
            b->final.n[k] = (int)json_integer_value(
                json_object_get(f, sched_run_state_name((enum run_state)k)));
        b->final.waiting = (int)json_integer_value(json_object_get(f, "waiting"));
        b->final.skipped = (int)json_integer_value(json_object_get(f, "skipped"));
        b->final_valid = true;
    }
    json_decref(dj);
    if (b->num > lc->set->seq)
        lc->set->seq = b->num;
    xgrow((void **)&lc->set->v, &lc->set->cap, lc->set->n + 1, sizeof(*lc->set->v));
    lc->set->v[lc->set->n++] = b;
    return 0;
}

static int
num_cmp(const void *a, const void *b)
{
    const struct bf *x = *(struct bf *const *)a, *y = *(struct bf *const *)b;
    return x->num < y->num ? -1 : x->num > y->num;
}

static bool
bf_dirty_cb(void *ud)
{
    return bf_dirty(ud);
}

static int
bf_flush_cb(void *ud, struct store_txn *t)
{
    return bf_flush(ud, t);
}

static void
bf_clear_cb(void *ud)
{
    bf_clear_dirty(ud);
}

static void
bf_tick_cb(void *ud)
{
    bf_pump_all(ud);
}

int
bf_open(struct bf_set **out, struct sched *s)
{
    struct bf_set *set = xcalloc(1, sizeof(*set));
    set->s = s;
    hmap_init(&set->counted);
    struct store_txn *t = NULL;
    int rc = store_txn_begin(sched_store(s), false, &t);
    if (!rc) {
        struct load_ctx lc = {set, t};
        rc = store_scan(t, STORE_BACKFILLS, "", load_cb, &lc);
        store_txn_abort(t);
    }
    if (rc && rc != CAIRN_ENOENT) {
        bf_free(set);
        return rc;
    }
    if (set->n)
        qsort(set->v, set->n, sizeof(*set->v), num_cmp);
    struct sched_participant p = {bf_dirty_cb, bf_flush_cb, bf_clear_cb, set};
    sched_add_participant(s, &p);
    sched_on_run_ended(s, bf_run_ended, set);
    sched_on_tick(s, bf_tick_cb, set);
    sched_foreach_run(s, bf_claim, set);
    bf_pump_all(set);
    *out = set;
    return 0;
}

void
bf_free(struct bf_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        bf_release(set->v[i]);
    free(set->v);
    for (size_t i = 0; i < set->counted.cap; i++)
        free((char *)set->counted.slots[i].key);
    hmap_free(&set->counted);
    free(set);
}
