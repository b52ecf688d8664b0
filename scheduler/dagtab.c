/* dagtab.c - the DAGs the scheduler knows and their loaded versions
 * (dagtab.h). */
#include "dagtab.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "diag.h"
#include "schema.h"
#include "store.h"
#include "util.h"

struct sched_dagver *
dagtab_version_get(struct sched *s, const char *version)
{
    size_t v;
    return hmap_get(&s->versions, version, &v) ? (struct sched_dagver *)(uintptr_t)v : NULL;
}

struct sched_dagver *
dagtab_version_add(struct sched *s, struct dag *d)
{
    struct sched_dagver *dv = dagtab_version_get(s, d->version);
    if (dv) {
        dag_free(d);
        return dv;
    }
    dv = xcalloc(1, sizeof(*dv));
    dv->dag = d;
    hmap_put(&s->versions, d->version, (size_t)(uintptr_t)dv);
    return dv;
}

/* Load a version from its stored source (for runs of an older version). */
struct sched_dagver *
dagtab_version_load(struct sched *s, struct store_txn *t, const char *dag, const char *version)
{
    struct sched_dagver *dv = dagtab_version_get(s, version);
    if (dv)
        return dv;
    char *key = schema_key_dag_source(dag, version);
    const void *data;
    size_t len;
    int rc = store_get_raw(t, STORE_DAG_SOURCES, key, &data, &len);
    free(key);
    if (rc != 0)
        return NULL;
    struct diag_list dl;
    struct dag *d = NULL;
    diag_list_init(&dl);
    char *file = xasprintf("<%s@%.12s>", dag, version);
    rc = dag_load_buffer(&d, data, len, file, &dl);
    free(file);
    diag_list_free(&dl);
    if (rc != 0)
        return NULL;
    return dagtab_version_add(s, d);
}

const struct dag *
sched_dag_version(struct sched *s, const char *dag, const char *version)
{
    struct sched_dagver *dv = dagtab_version_get(s, version);
    if (!dv) {
        struct store_txn *t = NULL;
        if (store_txn_begin(s->store, false, &t) != 0)
            return NULL;
        dv = dagtab_version_load(s, t, dag, version);
        store_txn_abort(t);
    }
    return dv ? dv->dag : NULL;
}

/* ---------- DAG folder ---------- */

static int
dag_cmp(const void *a, const void *b)
{
    return strcmp((*(struct sched_dag *const *)a)->name, (*(struct sched_dag *const *)b)->name);
}

struct sched_dag *
sched_find_dag(struct sched *s, const char *name)
{
    for (size_t i = 0; i < s->ndags; i++)
        if (!strcmp(s->dags[i]->name, name))
            return s->dags[i];
    return NULL;
}

struct sched_dag *
dagtab_by_file(struct sched *s, const char *file)
{
    for (size_t i = 0; i < s->ndags; i++)
        if (s->dags[i]->file && !strcmp(s->dags[i]->file, file))
            return s->dags[i];
    return NULL;
}

struct sched_dag *
dagtab_add(struct sched *s, const char *name, const char *file)
{
    struct sched_dag *sd = xcalloc(1, sizeof(*sd));
    sd->name = xstrdup(name);
    sd->file = file ? xstrdup(file) : NULL;
    diag_list_init(&sd->errors);
    xgrow((void **)&s->dags, &s->capdags, s->ndags + 1, sizeof(*s->dags));
    s->dags[s->ndags++] = sd;
    qsort(s->dags, s->ndags, sizeof(*s->dags), dag_cmp);
    return sd;
}

