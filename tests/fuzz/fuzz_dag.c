/* libFuzzer target: the DAG loader (YAML parse, merge keys, validation,
 * templates, `when`, cron, fan-out) must never crash, leak or hang on any
 * input, and a DAG that loads must keep the promises of dag.h: inputs,
 * mounts, the fan-out fields (a matrix's items are nitems JSON objects, no
 * more than max_map_items; from and zip name a task in needs; fan_in and
 * zip inputs; no publish or max_parallel where they are not allowed), list
 * params that their own override check accepts, instance names that parse
 * back, and instances that render with their items. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag.h"
#include "diag.h"
#include "tmpl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const own_mounts[] = {"/inputs", "/outputs", "/workspace", "/pipeline",
                                         "/tmp",    "/proc",    "/dev",       "/sys"};

static int
needs(const struct dag_task *t, size_t u)
{
    for (size_t k = 0; k < t->nneeds; k++)
        if (t->needs[k] == u)
            return 1;
    return 0;
}

static int
agg_cb(void *ud, const char *fn, const char *task, const char *metric, double *out)
{
    (void)ud;
    (void)task;
    (void)metric;
    *out = !strcmp(fn, "argmax") ? 2 : 0.5;
    return 0;
}

struct inst {
    const struct dag *d;
    size_t ti;
    size_t n;
};

/* Render a matrix instance with its item; an item the matrix made must render. */
static int
inst_cb(void *ud, size_t index, const char *item, size_t len)
{
    struct inst *in = ud;
    struct dag_run_ctx rc = {.logical_date = 1767225600,
                             .data_interval_end = 1767312000,
                             .run_id = "fuzz",
                             .map_index = (long)index,
                             .aggregate = agg_cb};
    char **argv = NULL, **envp = NULL, err[256];
    char *json = malloc(len + 1);
    if (!json)
        return 1;
    memcpy(json, item, len);
    json[len] = '\0';
    json_t *j = json_loads(json, 0, NULL);
    if (!json_is_object(j))
        abort();
    json_decref(j);
    rc.item_json = json;
    if (dag_render_task(in->d, in->ti, &rc, &argv, &envp, err, sizeof(err)) == 0) {
        dag_strv_free(argv);
        dag_strv_free(envp);
    }
    free(json);
    in->n++;
    return index >= 7; /* a few are enough */
}

/* dag.h's promises about fan-out. */
static void
check_fanout(const struct dag *d, size_t i)
{
    const struct dag_task *t = &d->tasks[i];
    const struct dag_map *m = &t->map;
    int mapped = m->kind != DAG_MAP_NONE;
    char name[DAG_INSTANCE_NAME_MAX], task[DAG_NAME_MAX + 1];
    if (strchr(t->name, '[') || strchr(t->name, ']'))
        abort();
    dag_instance_name(t->name, (long)i, name, sizeof(name));
    if (dag_instance_parse(name, task, sizeof(task)) != (long)i || strcmp(task, t->name))
        abort();
    if (dag_instance_parse(t->name, task, sizeof(task)) != -1)
        abort();
    if (!mapped && t->max_parallel != 0)
        abort();
    if (mapped && t->npublish)
        abort();
    if (m->kind == DAG_MAP_MATRIX) {
        json_t *j = json_loads(m->items_json, 0, NULL);
        if (!json_is_array(j) || json_array_size(j) != m->nitems ||
            (int64_t)m->nitems > d->max_map_items)
            abort();
        json_decref(j);
        struct inst in = {d, i, 0};
        if (tmpl_items_foreach(m->items_json, inst_cb, &in) < 0)
            abort();
        if (in.n != (m->nitems < 8 ? m->nitems : 8))
            abort();
    } else if (m->kind == DAG_MAP_PARAM) {
        const struct dag_param *p = dag_param_find(d, m->param);
        if (!p || !p->is_list)
            abort();
    } else if (m->kind == DAG_MAP_FROM) {
        size_t k;
        if (m->from_task_idx >= d->ntasks)
            abort();
        const struct dag_task *u = &d->tasks[m->from_task_idx];
        if (!needs(t, m->from_task_idx) || strcmp(u->name, m->from_task) ||
            u->map.kind != DAG_MAP_NONE)
            abort();
        for (k = 0; k < u->noutputs && strcmp(u->outputs[k], m->from_file); k++)
            ;
        if (k == u->noutputs)
            abort();
    } else if (m->kind == DAG_MAP_ZIP) {
        if (m->zip_task_idx >= d->ntasks || !needs(t, m->zip_task_idx) ||
            strcmp(d->tasks[m->zip_task_idx].name, m->zip_task) ||
            d->tasks[m->zip_task_idx].map.kind == DAG_MAP_NONE)
            abort();
    }
    for (size_t k = 0; k < t->ninputs; k++) {
        const struct dag_input *in = &t->inputs[k];
        int up_mapped = d->tasks[in->task_idx].map.kind != DAG_MAP_NONE;
        int zips = m->kind == DAG_MAP_ZIP && m->zip_task_idx == in->task_idx;
        if (in->zip != zips || in->fan_in != (up_mapped && !zips))
            abort();
    }
    /* a preview renders whatever has no value offline as written */
    struct dag_run_ctx rc = {.logical_date = 1767225600,
                             .data_interval_end = 1767312000,
                             .run_id = "fuzz",
                             .map_index = -1,
                             .keep_unresolved = true};
    char **argv = NULL, **envp = NULL, err[256];
    if (dag_render_task(d, i, &rc, &argv, &envp, err, sizeof(err)) == 0) {
        dag_strv_free(argv);
        dag_strv_free(envp);
    }
}

static void
check_params(const struct dag *d)
{
    for (size_t i = 0; i < d->nparams; i++) {
        const struct dag_param *p = &d->params[i];
        struct dag_kv kv = {p->name, p->value};
        char err[256];
        if (p->is_list) {
            json_t *j = json_loads(p->value, 0, NULL);
            if (!json_is_array(j))
                abort();
            json_decref(j);
        }
        /* a default is always a valid override of itself */
        if (dag_check_overrides(d, &kv, 1, err, sizeof(err)) != 0)
            abort();
    }
}

/* What dag.h promises about a loaded task; abort() shows up as a crash. */
static void
check_task(const struct dag *d, size_t i)
{
    const struct dag_task *t = &d->tasks[i];
    if (t->ncommand < 1)
        abort();
    for (size_t j = 0; j < t->ninputs; j++) {
        const struct dag_input *in = &t->inputs[j];
        if (in->task_idx >= d->ntasks || in->task_idx == i ||
            strcmp(d->tasks[in->task_idx].name, in->task) != 0)
            abort();
    }
    for (size_t j = 0; j < t->nmounts; j++) {
        const struct dag_mount *m = &t->mounts[j];
        if (m->host[0] != '/' || m->path[0] != '/' || !strcmp(m->path, "/") ||
            strstr(m->path, "/../") || strstr(m->host, "//") || strstr(m->path, "//"))
            abort();
        for (size_t k = 0; k < sizeof(own_mounts) / sizeof(*own_mounts); k++) {
            size_t len = strlen(own_mounts[k]);
            if (!strncmp(m->path, own_mounts[k], len) && (!m->path[len] || m->path[len] == '/'))
                abort();
        }
        for (size_t k = 0; k < j; k++)
            if (!strcmp(t->mounts[k].path, m->path))
                abort();
    }
    check_fanout(d, i);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct diag_list dl;
    struct dag *d = NULL;
    diag_list_init(&dl);
    int rc = dag_load_buffer(&d, (const char *)data, size, "fuzz.yaml", &dl);
    if ((rc == 0) != (dl.nerrors == 0))
        abort(); /* a DAG is returned exactly when there was no error */
    if (rc == 0) {
        /* a DAG that loads must render every task */
        struct dag_run_ctx rc2 = {
            .logical_date = 1767225600, .data_interval_end = 1767312000, .run_id = "fuzz"};
        check_params(d);
        for (size_t i = 0; i < d->ntasks; i++) {
            char **argv = NULL, **envp = NULL, err[256];
            check_task(d, i);
            if (dag_render_task(d, i, &rc2, &argv, &envp, err, sizeof(err)) == 0) {
                dag_strv_free(argv);
                dag_strv_free(envp);
            }
        }
        dag_free(d);
    }
    diag_list_free(&dl);
    return 0;
}
