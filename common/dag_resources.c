/* dag_resources.c - a task's `resources:` (prefix: dag__).
 *
 * Owns the keys of `resources` and their reading into struct dag_task:
 * the container's limits (`cpus`, `memory`, `pids`) and what the task
 * needs of a worker (`gpus`, `gpu_type`). `resources` merges key by key
 * with `defaults:`, so each key is applied on its own: a key the task's
 * mapping does not write keeps the default's value. The check that needs
 * the merged result (a task's own `gpu_type` without GPUs) runs once the
 * whole task is read (dag__check_resources). No state of its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag_int.h"
#include "util.h"

static const char *const resource_keys[] = {"cpus", "gpu_type", "gpus", "memory", "pids", NULL};

#define GPU_TYPE_MAX 64

/* A GPU type is matched against the model names workers announce
 * (docs/dag-yaml.md): printable ASCII, no control characters. */
static int
gpu_type_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > GPU_TYPE_MAX || s[0] == ' ' || s[n - 1] == ' ')
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

void
dag__parse_resources(struct dag__loader *l, const struct ynode *n, struct dag_task *t,
                     struct dag__task_src *src, int inherited)
{
    if (dag__expect(l, n, YNODE_MAP, "resources"))
        return;
    dag__check_keys(l, n, resource_keys, "resources", 0);
    const struct ynode *v;
    if ((v = ynode_get(n, "cpus", NULL))) {
        double c;
        if (dag__get_number(l, v, "resources.cpus", 0, &c) == 0) {
            if (c <= 0 || c > 1024)
                dag__nerr(l, v, "out-of-range", NULL, "'resources.cpus' must be above 0, got %g",
                          c);
            else
                t->cpus = c;
        }
    }
    if ((v = ynode_get(n, "memory", NULL))) {
        int64_t m;
        if (dag__get_size(l, v, "resources.memory", &m) == 0) {
            if (m < 4 * 1024 * 1024)
                dag__nerr(l, v, "out-of-range", NULL, "'resources.memory' must be at least 4Mi");
            else
                t->memory_bytes = m;
        }
    }
    if ((v = ynode_get(n, "pids", NULL))) {
        long long p;
        if (dag__get_int(l, v, "resources.pids", 1, 1000000, &p) == 0)
            t->pids = p;
    }
    if ((v = ynode_get(n, "gpus", NULL))) {
        long long g;
        if (dag__get_int(l, v, "resources.gpus", 0, DAG_MAX_GPUS, &g) == 0)
            t->gpus = (int)g;
    }
    if ((v = ynode_get(n, "gpu_type", NULL))) {
        char *s = NULL;
        if (dag__get_str(l, v, "resources.gpu_type", &s) == 0) {
            if (!gpu_type_ok(s)) {
                dag__nerr(l, v, "bad-gpu-type",
                          "name the model as workers show it, e.g. gpu_type: A100",
                          "'resources.gpu_type' must be 1-%d printable characters without "
                          "leading or trailing spaces, got '%s'",
                          GPU_TYPE_MAX, s);
                free(s);
            } else {
                free(t->gpu_type);
                t->gpu_type = s;
                if (!inherited)
                    src->gpu_type = v;
            }
        }
    }
}

void
dag__check_resources(struct dag__loader *l, const struct dag_task *t,
                     const struct dag__task_src *src)
{
    /* from `defaults:` a gpu_type may stand for the tasks that ask for
     * GPUs; written on a task that asks for none, it is a mistake */
    if (src->gpu_type && t->gpus == 0)
        dag__nerr(l, src->gpu_type, "gpu-type-without-gpus",
                  "add how many, e.g. resources: {gpus: 1, gpu_type: A100}",
                  "'resources.gpu_type' selects GPUs, but task '%s' asks for none "
                  "('resources.gpus' is 0 or not set)",
                  t->name ? t->name : "?");
}
