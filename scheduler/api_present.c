/* api_present.c - the API's JSON of runs, task instances, attempts and
 * artifact pointers (api_present.h, docs/api.md).
 *
 * Owns the presentation: which fields of a record a client sees, in which
 * order, and what the API adds (a run's params_effective, a task
 * instance's next_retry_at and duration_ms). Everything is built from
 * schema.h's structs; a run in memory is first turned into its records
 * with records.c (rec_run, rec_ti) and decoded like a stored one, so both
 * come out in one shape. No state and no I/O but one log line when a
 * record made from memory does not decode; the loop thread calls it.
 */
#include "api_present.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "dag.h"
#include "log.h"
#include "model.h"
#include "records.h"

/* A copy of a borrowed member, or an empty array/object for none. */
static json_t *
api_present__copy_or_empty(const json_t *v, bool array)
{
    return v ? json_deep_copy(v) : array ? json_array() : json_object();
}

static json_t *
api_present__copy_or_null(const json_t *v)
{
    return v ? json_deep_copy(v) : json_null();
}

/* Every param of version with the run's overrides (params) applied. */
static json_t *
api_present__params_effective(const json_t *params, const struct dag *version)
{
    if (!version)
        return json_null();
    json_t *o = json_object();
    for (size_t i = 0; i < version->nparams; i++) {
        const struct dag_param *p = &version->params[i];
        const char *v = json_string_value(json_object_get(params, p->name));
        json_object_set_new(o, p->name, json_string(v ? v : p->value));
    }
    return o;
}

json_t *
api_present_run(const struct schema_run *r, const struct dag *version)
{
    char ld[48], ie[48];
    schema_date_format(r->logical_date, ld, sizeof(ld));
    schema_date_format(r->interval_end, ie, sizeof(ie));
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:o, s:o, s:b, s:s?}", "run_id",
        r->run_id, "dag", r->dag, "state", r->state, "run_type",
        r->run_type ? r->run_type : "manual", "logical_date", ld, "data_interval_start", ld,
        "data_interval_end", ie, "created_at", schema_time_json(r->created_at), "started_at",
        schema_time_json(r->started_at), "ended_at", schema_time_json(r->ended_at), "dag_version",
        r->dag_version, "params", api_present__copy_or_empty(r->params, false),
        "params_effective", api_present__params_effective(r->params, version), "no_cache",
        r->no_cache, "backfill_id", r->backfill_id);
    if (j && r->task_counts)
        json_object_set_new(j, "task_counts", json_deep_copy(r->task_counts));
    if (j && r->ntasks)
        json_object_set_new(j, "ntasks", json_integer(r->ntasks));
    if (j)
        json_object_set_new(j, "images", api_present__copy_or_empty(r->images, false));
    if (r->deadline_missed_at)
        json_object_set_new(j, "deadline_missed_at", schema_time_json(r->deadline_missed_at));
    if (j)
        json_object_set_new(j, "pinning", json_boolean(r->pinning));
    if (j && r->event)
        json_object_set_new(j, "event", json_deep_copy(r->event));
    if (j)
        json_object_set_new(j, "code_digest",
                            r->code_digest ? json_string(r->code_digest) : json_null());
    return j;
}

/* The runs list carries each run's params, but not a long value: one run
 * with 64 KiB params would make every list of its DAG that much longer
 * (and every UI poll of it). A value longer than API_PARAM_LIST_MAX bytes
 * becomes a note of its size, and the run's "params_elided" names it;
 * `runs show` has the value. */
static void
api_present__elide(json_t *params, json_t *names)
{
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(params, tmp, k, v) {
        size_t n = json_is_string(v) ? json_string_length(v) : 0;
        if (!n && (json_is_array(v) || json_is_object(v))) {
            char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            n = text ? strlen(text) : 0;
            free(text);
        }
        if (n <= API_PARAM_LIST_MAX)
            continue;
        bool listed = false;
        size_t i;
        json_t *x;
        json_array_foreach(names, i, x) listed = listed || !strcmp(json_string_value(x), k);
        if (!listed)
            json_array_append_new(names, json_string(k));
        json_object_set_new(params, k, json_sprintf("(%zu bytes: see the run)", n));
    }
}

json_t *
api_present_run_listed(const struct schema_run *r, const struct dag *version)
{
    json_t *j = api_present_run(r, version);
    if (!j)
        return NULL;
    json_t *names = json_array();
    api_present__elide(json_object_get(j, "params"), names);
    api_present__elide(json_object_get(j, "params_effective"), names);
    if (json_array_size(names))
        json_object_set_new(j, "params_elided", names);
    else
        json_decref(names);
    return j;
}

json_t *
api_present_ti(const struct schema_ti *ti)
{
    json_t *j = json_pack(
        "{s:s, s:s, s:i, s:i, s:s?, s:o, s:o, s:o, s:o, s:b, s:b, s:s?, s:I, s:o, s:o}", "task",
        ti->task, "state", ti->state, "attempts", ti->attempts, "max_attempts", ti->max_attempts,
        "worker", ti->worker, "started_at", schema_time_json(ti->started_at), "ended_at",
        schema_time_json(ti->ended_at), "exit_code",
        ti->exit_code >= 0 ? json_integer(ti->exit_code) : json_null(), "signal",
        ti->signal ? json_integer(ti->signal) : json_null(), "oom_killed", ti->oom_killed,
        "timed_out", ti->timed_out, "error", ti->error, "log_size", (json_int_t)ti->log_size,
        "outputs", api_present__copy_or_empty(ti->outputs, true), "metrics",
        api_present__copy_or_empty(ti->metrics, false));
    if (!j)
        return NULL;
    json_object_set_new(j, "log_lost", json_integer(ti->log_lost));
    if (ti->publishing)
        json_object_set_new(j, "publishing", json_true());
    json_object_set_new(j, "queued_at", schema_time_json(ti->queued_at));
    json_object_set_new(j, "cached", json_boolean(ti->cached));
    json_object_set_new(j, "cached_from", api_present__copy_or_null(ti->cached_from));
    json_object_set_new(j, "no_cache", json_boolean(ti->no_cache));
    json_object_set_new(j, "cache_key", ti->cache_key ? json_string(ti->cache_key) : json_null());
    json_object_set_new(j, "image_digest",
                        ti->image_digest ? json_string(ti->image_digest) : json_null());
    json_object_set_new(j, "published", api_present__copy_or_null(ti->published));
    if (ti->stderr_tail)
        json_object_set_new(j, "stderr_tail", json_deep_copy(ti->stderr_tail));
    json_object_set_new(j, "next_retry_at",
                        !strcmp(ti->state, "up_for_retry") ? schema_time_json(ti->next_try_at)
                                                           : json_null());
    int64_t a = ti->started_at, b = ti->ended_at;
    json_object_set_new(j, "duration_ms", a && b && b >= a ? json_integer(b - a) : json_null());
    if (ti->is_instance)
        json_object_set_new(j, "map_index", json_integer(ti->map_index));
    if (ti->gpus) /* the GPUs its current or last attempt had */
        json_object_set_new(j, "gpus", json_deep_copy(ti->gpus));
    if (ti->deadline_missed_at)
        json_object_set_new(j, "deadline_missed_at", schema_time_json(ti->deadline_missed_at));
    if (ti->map) /* a mapped task: {n, counts} of its instances */
        json_object_set_new(j, "map",
                            json_pack("{s:O?, s:O?}", "n", json_object_get(ti->map, "n"), "counts",
                                      json_object_get(ti->map, "counts")));
    return j;
}

void
api_present_secret_names(json_t *task, const struct dag_task *t)
{
    if (!task || !t || !t->nsecrets)
        return;
    json_t *a = json_array();
    for (size_t i = 0; i < t->nsecrets; i++)
        json_array_append_new(a, json_pack("{s:s, s:s}", "env", t->secrets[i].key, "name",
                                           t->secrets[i].value));
    json_object_set_new(task, "secrets", a);
}

json_t *
api_present_ti_model(const struct sched_ti *ti, char *err, size_t errlen)
{
    char why[512];
    json_t *rec = rec_ti(ti);
    struct schema_ti t;
    json_t *o = NULL;
    if (schema_ti_decode(rec, &t, why, sizeof(why)) == 0)
        o = api_present_ti(&t);
    else
        snprintf(err, errlen, "a task instance in memory does not decode: %s", why);
    json_decref(rec);
    return o;
}

json_t *
api_present_attempt(const struct schema_attempt *a)
{
    json_t *j = json_pack(
        "{s:i, s:I, s:s?, s:s, s:o, s:o, s:o, s:o, s:b, s:b, s:s?, s:I, s:I}", "attempt",
        a->attempt, "lease_id", (json_int_t)a->lease_id, "worker", a->worker, "state", a->state,
        "started_at", schema_time_json(a->started_at), "ended_at", schema_time_json(a->ended_at),
        "exit_code", a->exit_code >= 0 ? json_integer(a->exit_code) : json_null(), "signal",
        a->signal ? json_integer(a->signal) : json_null(), "oom_killed", a->oom_killed, "timed_out",
        a->timed_out, "error", a->error, "log_size", (json_int_t)a->log_size, "duration_ms",
        (json_int_t)a->duration_ms);
    if (j)
        json_object_set_new(j, "log_lost", json_integer(a->log_lost));
    if (j && a->image) {
        /* provenance, as the lease carried it (absent in older records) */
        json_object_set_new(j, "image", json_string(a->image));
        if (a->image_digest)
            json_object_set_new(j, "image_digest", json_string(a->image_digest));
        if (a->argv)
            json_object_set_new(j, "argv", json_deep_copy(a->argv));
        if (a->env)
            json_object_set_new(j, "env", json_deep_copy(a->env));
        if (a->secrets) /* names only */
            json_object_set_new(j, "secrets", json_deep_copy(a->secrets));
        if (a->inputs)
            json_object_set_new(j, "inputs", json_deep_copy(a->inputs));
    }
    if (j && a->stderr_tail)
        json_object_set_new(j, "stderr_tail", json_deep_copy(a->stderr_tail));
    return j;
}

json_t *
api_present_artifact(const struct schema_artifact *a)
{
    json_t *j = json_pack("{s:s, s:s, s:I, s:s?, s:s?, s:s?, s:s?, s:I, s:o}", "name", a->name,
                          "sha256", a->sha256, "size", (json_int_t)a->size, "uri", a->uri, "dag",
                          a->dag, "run_id", a->run_id, "task", a->task, "attempt",
                          (json_int_t)a->attempt, "created_at", schema_time_json(a->created_at));
    if (j && a->cached_from)
        json_object_set_new(j, "cached_from", json_deep_copy(a->cached_from));
    if (j && a->superseded)
        json_object_set_new(j, "superseded", json_true());
    return j;
}

json_t *
api_present_artidx(const struct schema_artidx *x)
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

/* A record of a run in memory did not decode. */
static json_t *
api_present__model_bad(const struct sched_run *r, const char *why, char *err, size_t errlen)
{
    snprintf(err, errlen, "run '%s' of DAG '%s' cannot be shown: %s", r->run_id, r->dag, why);
    LOG(LOG_ERR, "CAIRN-RECORD-BAD", "%s (a record made in memory)", err);
    return NULL;
}

json_t *
api_present_run_model(const struct sched_run *r, bool all_tasks, uint64_t since, char *err,
                      size_t errlen)
{
    char why[512];
    json_t *rec = rec_run(r);
    struct schema_run x;
    if (schema_run_decode(rec, &x, why, sizeof(why)) != 0) {
        json_decref(rec);
        return api_present__model_bad(r, why, err, errlen);
    }
    json_t *o = api_present_run(&x, r->dv->dag);
    json_decref(rec);
    if (!all_tasks && !since && r->ntis > API_RUN_TASKS_INLINE) {
        json_object_set_new(o, "tasks_omitted", json_true()); /* task_counts says enough */
        return o;
    }
    json_t *tasks = json_array();
    for (size_t i = 0; i < r->ntis; i++) {
        struct schema_ti t;
        if (since && r->tis[i].change_seq <= since)
            continue;
        rec = rec_ti(&r->tis[i]);
        if (schema_ti_decode(rec, &t, why, sizeof(why)) != 0) {
            json_decref(rec);
            json_decref(tasks);
            json_decref(o);
            return api_present__model_bad(r, why, err, errlen);
        }
        json_t *tj = api_present_ti(&t);
        api_present_secret_names(tj, &r->dv->dag->tasks[r->tis[i].idx]);
        json_array_append_new(tasks, tj);
        json_decref(rec);
    }
    json_object_set_new(o, "tasks", tasks);
    return o;
}
