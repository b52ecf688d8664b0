/* present.c - the API's JSON of runs and task instances, from the model
 * and from stored records (declared in engine.h for the API). */
#include <string.h>

#include "core.h"
#include "records.h"
#include "schema.h"

json_t *
sched_ti_api(const json_t *rec)
{
    json_t *j = json_deep_copy(rec);
    json_object_del(j, "lease_id");
    json_object_del(j, "lost");
    json_object_del(j, "queued_at");
    json_object_del(j, "attempt_base");
    json_object_del(j, "v");
    json_t *ec = json_object_get(j, "exit_code");
    if (!ec || json_integer_value(ec) < 0)
        json_object_set_new(j, "exit_code", json_null());
    if (!json_integer_value(json_object_get(j, "signal")))
        json_object_set_new(j, "signal", json_null());
    const char *st = json_string_value(json_object_get(j, "state"));
    if (st && !strcmp(st, "up_for_retry"))
        json_object_set(j, "next_retry_at", json_object_get(j, "next_try_at"));
    else
        json_object_set_new(j, "next_retry_at", json_null());
    json_object_del(j, "next_try_at");
    int64_t a = schema_time_parse(json_object_get(j, "started_at"));
    int64_t b = schema_time_parse(json_object_get(j, "ended_at"));
    json_object_set_new(j, "duration_ms", a && b && b >= a ? json_integer(b - a) : json_null());
    return j;
}

json_t *
sched_run_json(const struct sched_run *r, bool with_tasks)
{
    json_t *o = rec_run(r);
    json_object_del(o, "seq");
    if (!with_tasks)
        return o;
    json_t *tasks = json_array();
    for (size_t i = 0; i < r->ntis; i++) {
        json_t *rec = rec_ti(&r->tis[i]);
        json_array_append_new(tasks, sched_ti_api(rec));
        json_decref(rec);
    }
    json_object_set_new(o, "tasks", tasks);
    return o;
}
