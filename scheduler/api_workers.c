/* api_workers.c - the API's worker route (see api_workers.h, docs/api.md):
 * the workers the scheduler knows, as the engine holds them in memory
 * (sched_worker_at); nothing here is stored.
 */
#include "api_workers.h"

#include <jansson.h>

#include "api.h"
#include "engine.h"

void
api_workers_list(struct sched *s, struct http_conn *c, const struct http_req *req,
                 const struct route_params *p)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < sched_nworkers(s); i++) {
        struct sched_worker *w = sched_worker_at(s, i);
        json_t *labels = json_object(), *running = json_array();
        for (size_t j = 0; j < w->nlabels; j++)
            json_object_set_new(labels, w->labels[j].key, json_string(w->labels[j].value));
        sched_worker_running(s, w, running);
        /* its GPUs, each free or held by a lease */
        json_t *gpus = json_array();
        size_t gfree = 0;
        for (size_t j = 0; j < w->ngpus; j++) {
            const struct sched_gpu *g = &w->gpus[j];
            gfree += g->lease_id == 0;
            json_array_append_new(
                gpus, json_pack("{s:i, s:s, s:b, s:o}", "index", g->index, "model",
                                g->model ? g->model : "", "free", g->lease_id == 0, "lease_id",
                                g->lease_id ? json_integer(g->lease_id) : json_null()));
        }
        json_array_append_new(arr, json_pack("{s:s, s:s, s:i, s:i, s:o, s:s, s:o, s:o, s:o, s:o, "
                                             "s:I}",
                                             "name", w->name, "host", w->host ? w->host : "",
                                             "slots", w->slots, "busy", w->busy, "labels", labels,
                                             "state", w->alive ? "alive" : "lost", "last_seen",
                                             sched_json_time(w->last_seen_wall), "connected_at",
                                             sched_json_time(w->connected_at), "running", running,
                                             "gpus", gpus, "gpus_free", (json_int_t)gfree));
        json_object_set_new(json_array_get(arr, json_array_size(arr) - 1), "images",
                            w->images ? json_deep_copy(w->images) : json_array());
        json_object_set_new(json_array_get(arr, json_array_size(arr) - 1), "direct_stores",
                            w->direct_stores ? json_deep_copy(w->direct_stores) : json_array());
    }
    http_respond_json(c, 200, json_pack("{s:o}", "workers", arr));
}
