/* schema.c - keys and record codecs of the state store (schema.h). */
#include "schema.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cal.h"
#include "err.h"
#include "util.h"

/* ---- keys ---- */

char *
schema_key_run(const char *dag, const char *run_id)
{
    return xasprintf("%s" SCHEMA_SEP "%s", dag, run_id);
}

char *
schema_key_ti(const char *dag, const char *run_id, const char *task)
{
    return xasprintf("%s" SCHEMA_SEP "%s" SCHEMA_SEP "%s", dag, run_id, task);
}

char *
schema_key_instance(const char *dag, const char *run_id, const char *task, long index)
{
    return xasprintf("%s" SCHEMA_SEP "%s" SCHEMA_SEP "%s" SCHEMA_SEP "%010ld", dag, run_id, task,
                     index);
}

char *
schema_key_attempt(const char *dag, const char *run_id, const char *task, int attempt)
{
    return xasprintf("%s" SCHEMA_SEP "%s" SCHEMA_SEP "%s" SCHEMA_SEP "%06d", dag, run_id, task,
                     attempt);
}

char *
schema_key_artifact(const char *dag, const char *run_id, const char *task, const char *name)
{
    return xasprintf("%s" SCHEMA_SEP "%s" SCHEMA_SEP "%s" SCHEMA_SEP "%s", dag, run_id, task,
                     name);
}

char *
schema_key_artifact_old(const char *artifact_key, int64_t attempt)
{
    return xasprintf("%s" SCHEMA_SEP "attempt-%06lld", artifact_key, (long long)attempt);
}

char *
schema_key_artidx(const char *sha256, const char *artifact_key)
{
    return xasprintf("%s" SCHEMA_SEP "%s", sha256, artifact_key);
}

char *
schema_key_dag_source(const char *dag, const char *version)
{
    return xasprintf("%s" SCHEMA_SEP "%s", dag, version);
}

char *
schema_key_cache(const char *hex)
{
    return xasprintf("cache/%s", hex);
}

char *
schema_key_event(const char *dag, const char *what)
{
    return xasprintf("event/%s" SCHEMA_SEP "%s", dag, what);
}

char *
schema_key_backfill_dates(const char *backfill_id)
{
    return xasprintf("%s" SCHEMA_SEP "dates", backfill_id);
}

char *
schema_key_stage(const char *dag, const char *task, int64_t seq)
{
    return xasprintf("stage/%s" SCHEMA_SEP "%s" SCHEMA_SEP "%012lld", dag, task, (long long)seq);
}

char *
schema_key_stage_prefix(const char *dag, const char *task)
{
    return xasprintf("stage/%s" SCHEMA_SEP "%s" SCHEMA_SEP, dag, task);
}

char *
schema_key_notification(const char *event_id, int target)
{
    return xasprintf("%s" SCHEMA_SEP "%04d", event_id, target);
}

char *
schema_prefix(const char *key)
{
    return xasprintf("%s" SCHEMA_SEP, key ? key : "");
}

char *
schema_key_below(const char *key, const char *name)
{
    return xasprintf("%s" SCHEMA_SEP "%s", key, name);
}

size_t
schema_key_split(const char *key, char **buf, const char **parts, size_t n)
{
    char *copy = xstrdup(key);
    size_t k = 0;
    char *p = copy;
    while (k < n) {
        parts[k++] = p;
        char *q = strchr(p, SCHEMA_SEP_CHAR);
        if (!q)
            break;
        if (k == n) /* the last part keeps the rest */
            break;
        *q = '\0';
        p = q + 1;
    }
    *buf = copy;
    return k;
}

size_t
schema_key_prefix_len(const char *key, size_t parts)
{
    const char *p = key;
    for (size_t i = 0; i < parts; i++) {
        const char *q = strchr(p, SCHEMA_SEP_CHAR);
        if (!q)
            return i + 1 == parts ? strlen(key) : 0;
        if (i + 1 == parts)
            return (size_t)(q - key);
        p = q + 1;
    }
    return 0;
}

/* ---- times ---- */

json_t *
schema_time_json(int64_t wall_ms)
{
    if (wall_ms <= 0)
        return json_null();
    /* with milliseconds: durations (ended - started) and the order of
     * events within a second must survive the round trip through LMDB */
    char base[48], buf[48];
    cal_format_iso(wall_ms / 1000, 0, 0, base, sizeof(base));
    snprintf(buf, sizeof(buf), "%.19s.%03dZ", base, (int)(wall_ms % 1000));
    return json_string(buf);
}

int64_t
schema_time_parse(const json_t *v)
{
    int64_t secs;
    int has_time, has_off;
    const char *s = json_string_value(v);
    if (!s)
        return 0;
    /* keep milliseconds if present: "....123Z" */
    int64_t ms = 0;
    const char *dot = strchr(s, '.');
    char tmp[64];
    if (dot && strlen(s) < sizeof(tmp)) {
        size_t pre = (size_t)(dot - s);
        memcpy(tmp, s, pre);
        const char *p = dot + 1;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        while (digits < 3) {
            ms *= 10;
            digits++;
        }
        snprintf(tmp + pre, sizeof(tmp) - pre, "%s", p);
        s = tmp;
    }
    if (cal_parse(s, &secs, &has_time, &has_off) != 0)
        return 0;
    return secs * 1000 + ms;
}

void
schema_date_format(int64_t secs, char *buf, size_t len)
{
    cal_format_iso(secs, 0, 1, buf, len);
}

static int64_t
schema__date_parse(const json_t *v)
{
    int64_t secs;
    int ht, ho;
    const char *s = json_string_value(v);
    if (!s || cal_parse(s, &secs, &ht, &ho) != 0)
        return 0;
    return secs;
}

/* ---- field access for decoders ---- */

struct schema__rd {
    const json_t *j;
    const char *what; /* "run record" */
    char *err;
    size_t errlen;
    int rc;
};

static void schema__fail(struct schema__rd *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
schema__fail(struct schema__rd *r, const char *fmt, ...)
{
    if (r->rc)
        return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    r->rc = errf(CAIRN_EPROTO, r->err, r->errlen, "%s: %s", r->what, msg);
}

/* The member, or NULL when absent or null. */
static const json_t *
schema__get(struct schema__rd *r, const char *f)
{
    const json_t *v = json_object_get(r->j, f);
    return v && !json_is_null(v) ? v : NULL;
}

static const char *
schema__str(struct schema__rd *r, const char *f, bool required)
{
    const json_t *v = schema__get(r, f);
    if (!v) {
        if (required)
            schema__fail(r, "field '%s' is missing", f);
        return NULL;
    }
    if (!json_is_string(v)) {
        schema__fail(r, "field '%s' must be a string", f);
        return NULL;
    }
    return json_string_value(v);
}

static int64_t
schema__int(struct schema__rd *r, const char *f, int64_t dflt)
{
    const json_t *v = schema__get(r, f);
    if (!v)
        return dflt;
    if (!json_is_integer(v)) {
        schema__fail(r, "field '%s' must be an integer", f);
        return dflt;
    }
    return json_integer_value(v);
}

static bool
schema__bool(struct schema__rd *r, const char *f)
{
    const json_t *v = schema__get(r, f);
    if (!v)
        return false;
    if (!json_is_boolean(v)) {
        schema__fail(r, "field '%s' must be true or false", f);
        return false;
    }
    return json_is_true(v);
}

/* An object or array member (borrowed), or NULL. */
static json_t *
schema__node(struct schema__rd *r, const char *f, bool array)
{
    const json_t *v = schema__get(r, f);
    if (!v)
        return NULL;
    if (array ? !json_is_array(v) : !json_is_object(v)) {
        schema__fail(r, "field '%s' must be %s", f, array ? "an array" : "an object");
        return NULL;
    }
    return (json_t *)v;
}

static int64_t
schema__time(struct schema__rd *r, const char *f)
{
    const json_t *v = schema__get(r, f);
    if (v && !json_is_string(v))
        schema__fail(r, "field '%s' must be a time", f);
    return schema_time_parse(v);
}

int
schema_check_version(const json_t *j, const char *what, char *err, size_t errlen)
{
    if (!json_is_object(j))
        return errf(CAIRN_EPROTO, err, errlen, "%s is not a JSON object", what);
    const json_t *v = json_object_get(j, "v");
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 1 ||
        json_integer_value(v) > SCHEMA_RECORD_VERSION)
        return errf(CAIRN_EVERSION, err, errlen,
                    "%s has record version %s%lld%s; this build reads versions 1 to %d (was it "
                    "written by a newer Cairn?)",
                    what, json_is_integer(v) ? "" : "'",
                    json_is_integer(v) ? (long long)json_integer_value(v) : 0LL,
                    json_is_integer(v) ? "" : "' (not a number)", SCHEMA_RECORD_VERSION);
    return 0;
}

static bool
schema__begin(struct schema__rd *r, const json_t *j, const char *what, char *err, size_t errlen)
{
    r->j = j;
    r->what = what;
    r->err = err;
    r->errlen = errlen;
    r->rc = schema_check_version(j, what, err, errlen);
    return r->rc == 0;
}

/* ---- event triggers ---- */

json_t *
schema_event_seen_encode(const struct schema_event_seen *e)
{
    json_t *j = json_pack("{s:s?, s:s?, s:o}", "digest", e->digest, "run_id", e->run_id, "at",
                          schema_time_json(e->at));
    if (j && e->size >= 0 && e->mtime_ns) {
        json_object_set_new(j, "size", json_integer(e->size));
        json_object_set_new(j, "mtime_ns", json_integer(e->mtime_ns));
    }
    return j;
}

int
schema_event_seen_decode(const json_t *j, struct schema_event_seen *out, char *err,
                         size_t errlen)
{
    struct schema__rd rd;
    if (!schema__begin(&rd, j, "event record", err, errlen))
        return rd.rc;
    struct schema_event_seen e = {0};
    e.digest = schema__str(&rd, "digest", false);
    e.run_id = schema__str(&rd, "run_id", false);
    e.at = schema__time(&rd, "at");
    e.size = schema__int(&rd, "size", -1);
    e.mtime_ns = schema__int(&rd, "mtime_ns", 0);
    if (rd.rc)
        return rd.rc;
    *out = e;
    return 0;
}

/* ---- runs ---- */

json_t *
schema_run_encode(const struct schema_run *r)
{
    char ld[48], ie[48];
    schema_date_format(r->logical_date, ld, sizeof(ld));
    schema_date_format(r->interval_end, ie, sizeof(ie));
    json_t *params = r->params ? json_incref(r->params) : json_object();
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:o, s:I, s:b, "
                     "s:s?}",
                     "run_id", r->run_id, "dag", r->dag, "state", r->state, "run_type",
                     r->run_type ? r->run_type : "manual", "logical_date", ld,
                     "data_interval_start", ld, "data_interval_end", ie, "created_at",
                     schema_time_json(r->created_at), "started_at",
                     schema_time_json(r->started_at), "ended_at", schema_time_json(r->ended_at),
                     "dag_version", r->dag_version, "params", params, "seq", (json_int_t)r->seq,
                     "no_cache", r->no_cache, "backfill_id", r->backfill_id);
    if (j && r->task_counts)
        json_object_set(j, "task_counts", r->task_counts);
    if (j && r->ntasks)
        json_object_set_new(j, "ntasks", json_integer(r->ntasks));
    if (j && r->images && json_object_size(r->images))
        json_object_set(j, "images", r->images);
    if (j && r->deadline_missed_at)
        json_object_set_new(j, "deadline_missed_at", schema_time_json(r->deadline_missed_at));
    if (j && r->pinning)
        json_object_set_new(j, "pinning", json_true());
    if (j && r->event)
        json_object_set(j, "event", r->event);
    if (j && r->code_digest && r->code_digest[0])
        json_object_set_new(j, "code_digest", json_string(r->code_digest));
    return j;
}

int
schema_run_decode(const json_t *j, struct schema_run *out, char *err, size_t errlen)
{
    struct schema__rd rd;
    if (!schema__begin(&rd, j, "run record", err, errlen))
        return rd.rc;
    struct schema_run r = {0};
    r.dag = schema__str(&rd, "dag", true);
    r.run_id = schema__str(&rd, "run_id", true);
    r.state = schema__str(&rd, "state", true);
    r.run_type = schema__str(&rd, "run_type", false);
    if (!r.run_type)
        r.run_type = "manual";
    r.logical_date = schema__date_parse(schema__get(&rd, "logical_date"));
    r.interval_end = schema__date_parse(schema__get(&rd, "data_interval_end"));
    r.created_at = schema__time(&rd, "created_at");
    r.started_at = schema__time(&rd, "started_at");
    r.ended_at = schema__time(&rd, "ended_at");
    r.dag_version = schema__str(&rd, "dag_version", true);
    r.params = schema__node(&rd, "params", false);
    r.seq = schema__int(&rd, "seq", 0);
    r.no_cache = schema__bool(&rd, "no_cache");
    r.backfill_id = schema__str(&rd, "backfill_id", false);
    r.task_counts = schema__node(&rd, "task_counts", false);
    r.ntasks = schema__int(&rd, "ntasks", 0);
    r.images = schema__node(&rd, "images", false);
    r.deadline_missed_at = schema__time(&rd, "deadline_missed_at");
    r.pinning = schema__bool(&rd, "pinning");
    r.event = schema__node(&rd, "event", false);
    if (r.event && !json_is_object(r.event))
        r.event = NULL;
    r.code_digest = schema__str(&rd, "code_digest", false);
    if (rd.rc)
        return rd.rc;
    *out = r;
    return 0;
}

/* ---- task instances ---- */

static json_t *
schema__or_empty(json_t *v, bool array)
{
    return v ? json_incref(v) : array ? json_array() : json_object();
}

json_t *
schema_ti_encode(const struct schema_ti *t)
{
    json_t *j = json_pack(
        "{s:s, s:s, s:i, s:i, s:i, s:I, s:s?, s:o, s:o, s:o, s:o, s:i, s:i, s:b, s:b, s:s?, s:I, "
        "s:o, s:o}",
        "task", t->task, "state", t->state, "attempts", t->attempts, "max_attempts",
        t->max_attempts, "lost", t->lost, "lease_id", (json_int_t)t->lease_id, "worker",
        t->worker, "queued_at", schema_time_json(t->queued_at), "started_at",
        schema_time_json(t->started_at), "ended_at", schema_time_json(t->ended_at),
        "next_try_at", schema_time_json(t->next_try_at), "exit_code", t->exit_code, "signal",
        t->signal, "oom_killed", t->oom_killed, "timed_out", t->timed_out, "error", t->error,
        "log_size", (json_int_t)t->log_size, "outputs", schema__or_empty(t->outputs, true),
        "metrics", schema__or_empty(t->metrics, false));
    if (t->log_lost)
        json_object_set_new(j, "log_lost", json_integer(t->log_lost));
    if (t->attempt_base)
        json_object_set_new(j, "attempt_base", json_integer(t->attempt_base));
    if (t->publishing)
        json_object_set_new(j, "publishing", json_true());
    json_object_set_new(j, "cached", json_boolean(t->cached));
    json_object_set_new(j, "cached_from",
                        t->cached_from ? json_incref(t->cached_from) : json_null());
    json_object_set_new(j, "no_cache", json_boolean(t->no_cache));
    json_object_set_new(j, "cache_key", t->cache_key ? json_string(t->cache_key) : json_null());
    if (t->image_digest)
        json_object_set_new(j, "image_digest", json_string(t->image_digest));
    json_object_set_new(j, "published", t->published ? json_incref(t->published) : json_null());
    if (t->stderr_tail)
        json_object_set(j, "stderr_tail", t->stderr_tail);
    if (t->is_instance)
        json_object_set_new(j, "map_index", json_integer(t->map_index));
    if (t->map)
        json_object_set(j, "map", t->map);
    if (t->gpus)
        json_object_set(j, "gpus", t->gpus);
    if (t->deadline_missed_at)
        json_object_set_new(j, "deadline_missed_at", schema_time_json(t->deadline_missed_at));
    if (t->excluded && json_array_size(t->excluded))
        json_object_set(j, "excluded", t->excluded);
    return j;
}

int
schema_ti_decode(const json_t *j, struct schema_ti *out, char *err, size_t errlen)
{
    struct schema__rd rd;
    if (!schema__begin(&rd, j, "task instance record", err, errlen))
        return rd.rc;
    struct schema_ti t = {0};
    t.task = schema__str(&rd, "task", true);
    t.state = schema__str(&rd, "state", true);
    t.attempts = (int)schema__int(&rd, "attempts", 0);
    t.max_attempts = (int)schema__int(&rd, "max_attempts", 0);
    t.lost = (int)schema__int(&rd, "lost", 0);
    t.attempt_base = (int)schema__int(&rd, "attempt_base", 0);
    t.lease_id = schema__int(&rd, "lease_id", 0);
    t.worker = schema__str(&rd, "worker", false);
    t.queued_at = schema__time(&rd, "queued_at");
    t.started_at = schema__time(&rd, "started_at");
    t.ended_at = schema__time(&rd, "ended_at");
    t.next_try_at = schema__time(&rd, "next_try_at");
    t.exit_code = (int)schema__int(&rd, "exit_code", -1);
    t.signal = (int)schema__int(&rd, "signal", 0);
    t.oom_killed = schema__bool(&rd, "oom_killed");
    t.timed_out = schema__bool(&rd, "timed_out");
    t.error = schema__str(&rd, "error", false);
    t.log_size = schema__int(&rd, "log_size", 0);
    t.log_lost = schema__int(&rd, "log_lost", 0);
    t.outputs = schema__node(&rd, "outputs", true);
    t.metrics = schema__node(&rd, "metrics", false);
    t.publishing = schema__bool(&rd, "publishing");
    t.cached = schema__bool(&rd, "cached");
    t.cached_from = schema__node(&rd, "cached_from", false);
    t.no_cache = schema__bool(&rd, "no_cache");
    t.cache_key = schema__str(&rd, "cache_key", false);
    t.image_digest = schema__str(&rd, "image_digest", false);
    t.published = schema__node(&rd, "published", false);
    t.stderr_tail = schema__node(&rd, "stderr_tail", true);
    t.map_index = (long)schema__int(&rd, "map_index", -1);
    t.is_instance = t.map_index >= 0;
    t.map = schema__node(&rd, "map", false);
    t.gpus = schema__node(&rd, "gpus", true);
    for (size_t i = 0; !rd.rc && t.gpus && i < json_array_size(t.gpus); i++)
        if (!json_is_integer(json_array_get(t.gpus, i)) ||
            json_integer_value(json_array_get(t.gpus, i)) < 0)
            schema__fail(&rd, "field 'gpus' must be an array of GPU indices");
    t.deadline_missed_at = schema__time(&rd, "deadline_missed_at");
    t.excluded = schema__node(&rd, "excluded", true);
    for (size_t i = 0; !rd.rc && t.excluded && i < json_array_size(t.excluded); i++)
        if (!json_is_string(json_array_get(t.excluded, i)))
            schema__fail(&rd, "field 'excluded' must be an array of worker names");
    if (rd.rc)
        return rd.rc;
    *out = t;
    return 0;
}

/* ---- attempts ---- */

json_t *
schema_attempt_encode(const struct schema_attempt *a)
{
    json_t *rec = json_pack(
        "{s:i, s:I, s:s?, s:s, s:o, s:o, s:i, s:i, s:b, s:b, s:s?, s:I, s:I}", "attempt",
        a->attempt, "lease_id", (json_int_t)a->lease_id, "worker", a->worker, "state", a->state,
        "started_at", schema_time_json(a->started_at), "ended_at",
        schema_time_json(a->ended_at), "exit_code", a->exit_code, "signal", a->signal,
        "oom_killed", a->oom_killed, "timed_out", a->timed_out, "error", a->error, "log_size",
        (json_int_t)a->log_size, "duration_ms", (json_int_t)a->duration_ms);
    if (a->log_lost)
        json_object_set_new(rec, "log_lost", json_integer(a->log_lost));
    if (a->image) {
        json_object_set_new(rec, "image", json_string(a->image));
        if (a->image_digest)
            json_object_set_new(rec, "image_digest", json_string(a->image_digest));
        if (a->argv)
            json_object_set(rec, "argv", a->argv);
        if (a->env)
            json_object_set(rec, "env", a->env);
        if (a->secrets)
            json_object_set(rec, "secrets", a->secrets);
        if (a->inputs)
            json_object_set(rec, "inputs", a->inputs);
    }
    if (a->stderr_tail)
        json_object_set(rec, "stderr_tail", a->stderr_tail);
    return rec;
}

int
schema_attempt_decode(const json_t *j, struct schema_attempt *out, char *err, size_t errlen)
{
    struct schema__rd rd;
    if (!schema__begin(&rd, j, "attempt record", err, errlen))
        return rd.rc;
    struct schema_attempt a = {0};
    a.attempt = (int)schema__int(&rd, "attempt", 0);
    if (!rd.rc && a.attempt < 1)
        schema__fail(&rd, "field 'attempt' must be at least 1");
    a.lease_id = schema__int(&rd, "lease_id", 0);
    a.worker = schema__str(&rd, "worker", false);
    a.state = schema__str(&rd, "state", true);
    a.started_at = schema__time(&rd, "started_at");
    a.ended_at = schema__time(&rd, "ended_at");
    a.exit_code = (int)schema__int(&rd, "exit_code", -1);
    a.signal = (int)schema__int(&rd, "signal", 0);
    a.oom_killed = schema__bool(&rd, "oom_killed");
    a.timed_out = schema__bool(&rd, "timed_out");
    a.error = schema__str(&rd, "error", false);
    a.log_size = schema__int(&rd, "log_size", 0);
    a.log_lost = schema__int(&rd, "log_lost", 0);
    a.duration_ms = schema__int(&rd, "duration_ms", 0);
    a.image = schema__str(&rd, "image", false);
    a.image_digest = schema__str(&rd, "image_digest", false);
    a.argv = schema__node(&rd, "argv", true);
    a.env = schema__node(&rd, "env", true);
    a.secrets = schema__node(&rd, "secrets", true);
    a.inputs = schema__node(&rd, "inputs", true);
    a.stderr_tail = schema__node(&rd, "stderr_tail", true);
    if (rd.rc)
        return rd.rc;
    *out = a;
    return 0;
}

/* ---- artifact pointers and their index ---- */

json_t *
schema_artifact_encode(const struct schema_artifact *a)
{
    json_t *j = json_pack("{s:s, s:s, s:I, s:s?, s:s?, s:s?, s:s?, s:I, s:o}", "name", a->name,
                          "sha256", a->sha256, "size", (json_int_t)a->size, "uri", a->uri, "dag",
                          a->dag, "run_id", a->run_id, "task", a->task, "attempt",
                          (json_int_t)a->attempt, "created_at", schema_time_json(a->created_at));
    if (a->cached_from)
        json_object_set(j, "cached_from", a->cached_from);
    if (a->superseded)
        json_object_set_new(j, "superseded", json_true());
    return j;
}

int
schema_artifact_decode(const json_t *j, struct schema_artifact *out, char *err, size_t errlen)
{
    struct schema__rd rd;
    if (!schema__begin(&rd, j, "artifact pointer", err, errlen))
        return rd.rc;
    struct schema_artifact a = {0};
    a.name = schema__str(&rd, "name", true);
    a.sha256 = schema__str(&rd, "sha256", true);
    a.size = schema__int(&rd, "size", 0);
    a.uri = schema__str(&rd, "uri", false);
    a.dag = schema__str(&rd, "dag", false);
    a.run_id = schema__str(&rd, "run_id", false);
    a.task = schema__str(&rd, "task", false);
    a.attempt = schema__int(&rd, "attempt", 0);
    a.created_at = schema__time(&rd, "created_at");
    a.cached_from = schema__node(&rd, "cached_from", false);
    a.superseded = schema__bool(&rd, "superseded");
    if (rd.rc)
        return rd.rc;
    *out = a;
    return 0;
}

json_t *
schema_artidx_encode(const struct schema_artidx *x)
{
    json_t *j = json_object();
    if (x->dag)
        json_object_set_new(j, "dag", json_string(x->dag));
    if (x->run_id)
        json_object_set_new(j, "run_id", json_string(x->run_id));
    if (x->task)
        json_object_set_new(j, "task", json_string(x->task));
    if (x->name)
        json_object_set_new(j, "name", json_string(x->name));
    json_object_set_new(j, "attempt", json_integer(x->attempt));
    json_object_set_new(j, "created_at", schema_time_json(x->created_at));
    return j;
}

int
schema_artidx_decode(const json_t *j, struct schema_artidx *out, char *err, size_t errlen)
{
    struct schema__rd rd;
    if (!schema__begin(&rd, j, "artifact index entry", err, errlen))
        return rd.rc;
    struct schema_artidx x = {0};
    x.dag = schema__str(&rd, "dag", false);
    x.run_id = schema__str(&rd, "run_id", false);
    x.task = schema__str(&rd, "task", false);
    x.name = schema__str(&rd, "name", false);
    x.attempt = schema__int(&rd, "attempt", 0);
    x.created_at = schema__time(&rd, "created_at");
    if (rd.rc)
        return rd.rc;
    *out = x;
    return 0;
}

/* ---- DAGs ---- */

json_t *
schema_dag_encode(const struct schema_dag *d)
{
    return json_pack("{s:s, s:s?, s:s?, s:b, s:o}", "name", d->name, "file", d->file, "version",
                     d->version, "paused", d->paused, "cursor",
                     d->has_cursor ? json_integer(d->cursor) : json_null());
}

int
schema_dag_decode(const json_t *j, struct schema_dag *out, char *err, size_t errlen)
{
    struct schema__rd rd;
    if (!schema__begin(&rd, j, "DAG record", err, errlen))
        return rd.rc;
    struct schema_dag d = {0};
    d.name = schema__str(&rd, "name", true);
    d.file = schema__str(&rd, "file", false);
    d.version = schema__str(&rd, "version", false);
    d.paused = schema__bool(&rd, "paused");
    const json_t *c = schema__get(&rd, "cursor");
    if (c && !json_is_integer(c))
        schema__fail(&rd, "field 'cursor' must be an integer");
    d.has_cursor = c && json_is_integer(c);
    d.cursor = d.has_cursor ? json_integer_value(c) : 0;
    if (rd.rc)
        return rd.rc;
    *out = d;
    return 0;
}

json_t *
schema_stage_encode(const struct schema_stage *x)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?, s:s, s:o, s:I}", "dag", x->dag, "task",
                     x->task, "stage", x->stage, "action", x->action, "release", x->release,
                     "previous", x->previous, "by", x->by, "at", schema_time_json(x->at), "seq",
                     (json_int_t)x->seq);
}

int
schema_stage_decode(const json_t *j, struct schema_stage *out, char *err, size_t errlen)
{
    struct schema__rd rd;
    if (!schema__begin(&rd, j, "stage record", err, errlen))
        return rd.rc;
    struct schema_stage x = {0};
    x.dag = schema__str(&rd, "dag", true);
    x.task = schema__str(&rd, "task", true);
    x.stage = schema__str(&rd, "stage", true);
    x.action = schema__str(&rd, "action", true);
    x.release = schema__str(&rd, "release", true);
    x.previous = schema__str(&rd, "previous", false);
    x.by = schema__str(&rd, "by", true);
    x.at = schema__time(&rd, "at");
    x.seq = schema__int(&rd, "seq", 0);
    if (rd.rc)
        return rd.rc;
    *out = x;
    return 0;
}

/* ---- notification deliveries ---- */

json_t *
schema_notification_encode(const struct schema_notification *n)
{
    json_t *j = json_pack("{s:s, s:i, s:s, s:s, s:s, s:s?, s:s, s:s?, s:s?, s:s, s:i, s:i, s:o, "
                          "s:o, s:o, s:s?, s:O}",
                          "event_id", n->event_id, "target", n->target, "event", n->event, "dag",
                          n->dag, "run_id", n->run_id, "task", n->task, "kind", n->kind, "url",
                          n->url, "secret_file", n->secret_file, "state", n->state, "attempts",
                          n->attempts, "max_attempts", n->max_attempts, "created_at",
                          schema_time_json(n->created_at), "next_at",
                          schema_time_json(n->next_at), "delivered_at",
                          schema_time_json(n->delivered_at), "last_error", n->last_error, "body",
                          n->body);
    if (j && n->command)
        json_object_set(j, "command", n->command);
    return j;
}

int
schema_notification_decode(const json_t *j, struct schema_notification *out, char *err,
                           size_t errlen)
{
    struct schema__rd rd;
    if (!schema__begin(&rd, j, "notification record", err, errlen))
        return rd.rc;
    struct schema_notification n = {0};
    n.event_id = schema__str(&rd, "event_id", true);
    n.target = (int)schema__int(&rd, "target", 0);
    n.event = schema__str(&rd, "event", true);
    n.dag = schema__str(&rd, "dag", true);
    n.run_id = schema__str(&rd, "run_id", true);
    n.task = schema__str(&rd, "task", false);
    n.kind = schema__str(&rd, "kind", true);
    n.url = schema__str(&rd, "url", false);
    n.secret_file = schema__str(&rd, "secret_file", false);
    n.command = schema__node(&rd, "command", true);
    n.state = schema__str(&rd, "state", true);
    n.attempts = (int)schema__int(&rd, "attempts", 0);
    n.max_attempts = (int)schema__int(&rd, "max_attempts", 0);
    n.created_at = schema__time(&rd, "created_at");
    n.next_at = schema__time(&rd, "next_at");
    n.delivered_at = schema__time(&rd, "delivered_at");
    n.last_error = schema__str(&rd, "last_error", false);
    n.body = schema__node(&rd, "body", false);
    if (!rd.rc && !json_is_object(n.body))
        schema__fail(&rd, "field 'body' must be an object");
    if (!rd.rc && strcmp(n.kind, "webhook") && strcmp(n.kind, "command"))
        schema__fail(&rd, "field 'kind' must be webhook or command");
    if (!rd.rc && !strcmp(n.kind, "webhook") && !n.url)
        schema__fail(&rd, "field 'url' is missing");
    if (!rd.rc && !strcmp(n.kind, "command") && !json_array_size(n.command))
        schema__fail(&rd, "field 'command' is missing");
    if (rd.rc)
        return rd.rc;
    *out = n;
    return 0;
}
