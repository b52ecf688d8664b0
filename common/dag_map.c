/* dag_map.c - fan-out: a task that runs once per item (docs/dag-yaml.md,
 * "Fan-out").
 *
 * Owns reading `matrix:` and expanding it at load (the cross product in key
 * order, later keys varying fastest; then `exclude:`; then `include:` by
 * GitHub Actions' rules) into dag_map.items_json, reading `map:` ({over:
 * params.NAME}, {from: TASK/FILE}, {zip: TASK}) and `max_parallel`, the
 * checks that need the graph (from and zip name a task in `needs`, zip a
 * mapped one; max_parallel and publish against whether the task is mapped),
 * and instance names TASK[INDEX]. What a mapped task changes for other
 * tasks (inputs, `when`, templates) is checked where those are read
 * (dag_graph.c, dag_refs.c), through dag__mapped() and dag__zips().
 *
 * Matrix values and the keys of include/exclude entries are borrowed from
 * the document while loading; what the model keeps (items_json, the names
 * of map's param and tasks) is malloc'd and freed by dag__map_fini.
 */
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag_int.h"
#include "util.h"

#define MAP_FORMS "write map: {over: params.NAME}, map: {from: task/file} or map: {zip: task}"
#define MATRIX_FORM "write matrix: {lr: [0.1, 0.01], depth: [3, 5]}"
#define MATRIX_KEY_MAX 64
#define LIMIT_HINT "raise max_map_items at the top of the file, or split the task"
/* A matrix's combinations times its include and exclude entries, at most. */
#define MATRIX_WORK_MAX 5e7
/* items_json of a matrix, at most (the size of a DAG file). */
#define MATRIX_BYTES_MAX (64.0 * 1024 * 1024)

static const char *const map_keys[] = {"from", "over", "zip", NULL};
static const char *const fanout_keys[] = {"map", "matrix", "max_parallel", NULL};

/* One value of a matrix (or of an include/exclude entry). */
struct mval {
    char *json; /* as JSON text */
    bool num;   /* a number: compared by value, so 1.0 matches 1 */
    double d;
};

/* A key: value of an include or exclude entry. */
struct mpair {
    const char *key;
    int dim; /* index of the matrix key, or -1 for a key the matrix does not have */
    struct mval v;
};

struct mentry {
    struct mpair *p;
    size_t n;
};

struct mdim {
    const char *key;
    struct mval *vals;
    size_t n;
};

struct matrix {
    struct mdim *dims;
    size_t ndims;
    struct mentry *inc, *exc;
    size_t ninc, nexc;
};

/* A key include added to a combination of the matrix. */
struct extra {
    const char *key;
    const struct mval *v;
};

struct extras {
    struct extra *e;
    size_t n, cap;
};

int
dag__is_fanout_key(const char *name)
{
    for (size_t i = 0; fanout_keys[i]; i++)
        if (!strcmp(fanout_keys[i], name))
            return 1;
    return 0;
}

int
dag__mapped(const struct dag__loader *l, size_t ti)
{
    return l->d->tasks[ti].map.kind != DAG_MAP_NONE && !l->srcs[ti].map_bad;
}

int
dag__maybe_mapped(const struct dag__loader *l, size_t ti)
{
    return l->d->tasks[ti].map.kind != DAG_MAP_NONE || l->srcs[ti].map_bad;
}

int
dag__zips(const struct dag__loader *l, size_t ti, size_t ui)
{
    const struct dag_map *m = &l->d->tasks[ti].map;
    return m->kind == DAG_MAP_ZIP && m->zip_task_idx == ui;
}

void
dag__map_fini(struct dag_map *m)
{
    free(m->items_json);
    free(m->param);
    free(m->from_task);
    free(m->from_file);
    free(m->zip_task);
    memset(m, 0, sizeof(*m));
}

/* ---- matrix ---- */

static int
valid_key(const struct ynode *k)
{
    const char *s = k->str;
    size_t n = strlen(s);
    if (n == 0 || n > MATRIX_KEY_MAX || n != k->len)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return 0;
    return 1;
}

static int
mval_read(struct dag__loader *l, const struct ynode *n, const char *what, struct mval *out)
{
    struct sb sb;
    sb_init(&sb);
    if (dag__scalar_json(l, n, what, &sb) != 0) {
        sb_free(&sb);
        return -1;
    }
    out->json = sb_take(&sb);
    out->num = !n->quoted && dag__parse_number(n->str, &out->d) == 0;
    return 0;
}

static int
mval_eq(const struct mval *a, const struct mval *b)
{
    return a->num && b->num ? a->d == b->d : !strcmp(a->json, b->json);
}

static void
matrix_free(struct matrix *m)
{
    for (size_t i = 0; i < m->ndims; i++) {
        for (size_t j = 0; j < m->dims[i].n; j++)
            free(m->dims[i].vals[j].json);
        free(m->dims[i].vals);
    }
    free(m->dims);
    for (int w = 0; w < 2; w++) {
        struct mentry *es = w ? m->exc : m->inc;
        size_t n = w ? m->nexc : m->ninc;
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < es[i].n; j++)
                free(es[i].p[j].v.json);
            free(es[i].p);
        }
        free(es);
    }
}

static int
dim_index(const struct matrix *m, const char *key)
{
    for (size_t i = 0; i < m->ndims; i++)
        if (!strcmp(m->dims[i].key, key))
            return (int)i;
    return -1;
}

/* One list of values: `lr: [0.1, 0.01]`. */
static int
read_dim(struct dag__loader *l, const struct ynode *k, const struct ynode *v, struct mdim *out)
{
    char *what = xasprintf("items of 'matrix.%s'", k->str);
    int bad = 0;
    out->key = k->str;
    out->n = 0;
    out->vals = NULL;
    if (v->type != YNODE_SEQ) {
        dag__nerr(l, v, "wrong-type", MATRIX_FORM, "'matrix.%s' must be a list of values, got %s",
                  k->str, ynode_kind(v));
        free(what);
        return -1;
    }
    if (v->n == 0) {
        dag__nerr(l, v, "empty-matrix", "give it at least one value, or leave the key out",
                  "'matrix.%s' is empty: the matrix would have no combinations", k->str);
        free(what);
        return -1;
    }
    out->vals = xcalloc(v->n, sizeof(*out->vals));
    for (size_t i = 0; i < v->n; i++) {
        struct mval *mv = &out->vals[out->n];
        if (mval_read(l, v->vals[i], what, mv) != 0) {
            bad = 1;
            continue;
        }
        size_t j;
        for (j = 0; j < out->n && !mval_eq(&out->vals[j], mv); j++)
            ;
        if (j < out->n) {
            dag__nerr(l, v->vals[i], "duplicate-value", NULL, "'matrix.%s' lists %s twice", k->str,
                      v->vals[i]->str);
            free(mv->json);
            bad = 1;
            continue;
        }
        out->n++;
    }
    free(what);
    return bad ? -1 : 0;
}

/* `include:` or `exclude:`: a list of non-empty mappings of values. An
 * exclude entry may only name keys of the matrix. */
static int
read_entries(struct dag__loader *l, const struct ynode *n, const char *field, struct matrix *m,
             struct mentry **out, size_t *nout)
{
    int bad = 0, exclude = !strcmp(field, "exclude");
    if (n->type != YNODE_SEQ) {
        dag__nerr(l, n, "wrong-type", "write a list of mappings, e.g. [{lr: 0.1, depth: 3}]",
                  "'matrix.%s' must be a list of mappings, got %s", field, ynode_kind(n));
        return -1;
    }
    *out = xcalloc(n->n + 1, sizeof(**out));
    *nout = 0;
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *e = n->vals[i];
        if (e->type != YNODE_MAP) {
            dag__nerr(l, e, "wrong-type", "write a mapping, e.g. {lr: 0.1, depth: 3}",
                      "items of 'matrix.%s' must be mappings, got %s", field, ynode_kind(e));
            bad = 1;
            continue;
        }
        if (e->n == 0) {
            dag__nerr(l, e, "empty-matrix", NULL, "%s",
                      exclude ? "an empty 'exclude' entry would remove every combination"
                              : "an empty 'include' entry adds nothing");
            bad = 1;
            continue;
        }
        struct mentry *me = &(*out)[(*nout)++];
        me->p = xcalloc(e->n, sizeof(*me->p));
        for (size_t j = 0; j < e->n; j++) {
            const struct ynode *k = e->keys[j];
            struct mpair *pr = &me->p[me->n];
            if (!valid_key(k)) {
                dag__nerr(l, k, "bad-name", NULL,
                          "matrix key '%s' must be 1-%d letters, digits, '_' or '-'", k->str,
                          MATRIX_KEY_MAX);
                bad = 1;
                continue;
            }
            pr->key = k->str;
            pr->dim = dim_index(m, k->str);
            if (exclude && pr->dim < 0) {
                const char **names = xcalloc(m->ndims + 1, sizeof(*names));
                for (size_t d = 0; d < m->ndims; d++)
                    names[d] = m->dims[d].key;
                char *hint = m->ndims ? dag__suggest(k->str, names, m->ndims) : NULL;
                dag__nerr(l, k, "unknown-key", hint,
                          "'exclude' names '%s', which is not a key of the matrix", k->str);
                free(hint);
                free(names);
                bad = 1;
                continue;
            }
            char *what = xasprintf("'%s' in 'matrix.%s'", k->str, field);
            int rc = mval_read(l, e->vals[j], what, &pr->v);
            free(what);
            if (rc) {
                bad = 1;
                continue;
            }
            me->n++;
        }
    }
    return bad ? -1 : 0;
}

static void
extras_set(struct extras *x, const char *key, const struct mval *v)
{
    for (size_t i = 0; i < x->n; i++)
        if (!strcmp(x->e[i].key, key)) {
            x->e[i].v = v; /* an added value may be overwritten */
            return;
        }
    xgrow((void **)&x->e, &x->cap, x->n + 1, sizeof(*x->e));
    x->e[x->n].key = key;
    x->e[x->n++].v = v;
}

/* Count key in the keys seen so far (how many items have it). */
static void
count_key(struct dag__task_src *src, const char *key)
{
    for (size_t i = 0; i < src->nmatrix_keys; i++)
        if (!strcmp(src->matrix_keys[i], key)) {
            src->matrix_key_items[i]++;
            return;
        }
    src->matrix_keys = xrealloc(src->matrix_keys, (src->nmatrix_keys + 1) * sizeof(char *));
    src->matrix_key_items =
        xrealloc(src->matrix_key_items, (src->nmatrix_keys + 1) * sizeof(size_t));
    src->matrix_keys[src->nmatrix_keys] = xstrdup(key);
    src->matrix_key_items[src->nmatrix_keys++] = 1;
}

static void
put_pair(struct sb *sb, int *first, const char *key, const struct mval *v)
{
    if (!*first)
        sb_putc(sb, ',');
    *first = 0;
    dag__json_str(sb, key, strlen(key));
    sb_putc(sb, ':');
    sb_puts(sb, v->json);
}

/* The decoded combination number c of the cross product (later keys vary fastest). */
static void
decode(const struct matrix *m, size_t c, size_t *idx)
{
    for (size_t k = m->ndims; k-- > 0;) {
        idx[k] = c % m->dims[k].n;
        c /= m->dims[k].n;
    }
}

static int
matches(const struct matrix *m, const struct mentry *e, const size_t *idx, int dims_only)
{
    for (size_t j = 0; j < e->n; j++) {
        const struct mpair *p = &e->p[j];
        if (p->dim < 0) {
            if (!dims_only)
                return 0;
            continue;
        }
        if (!mval_eq(&m->dims[p->dim].vals[idx[p->dim]], &p->v))
            return 0;
    }
    return 1;
}

/* Expand into t->map. 0, or -1 with the error reported. */
static int
expand(struct dag__loader *l, const struct ynode *n, const struct matrix *m, struct dag_task *t,
       struct dag__task_src *src)
{
    size_t limit = (size_t)l->d->max_map_items, prod = m->ndims ? 1 : 0;
    int overflow = 0;
    for (size_t i = 0; i < m->ndims && !overflow; i++) {
        if (prod > SIZE_MAX / m->dims[i].n)
            overflow = 1;
        else
            prod *= m->dims[i].n;
    }
    if (overflow || prod > limit) {
        /* checked before `exclude`, so the work stays bounded by the limit */
        if (overflow)
            dag__nerr(l, n, "too-many-items", LIMIT_HINT,
                      "'matrix' makes more than max_map_items (%zu) combinations", limit);
        else
            dag__nerr(l, n, "too-many-items", LIMIT_HINT,
                      "'matrix' makes %zu combinations%s, more than max_map_items (%zu)", prod,
                      m->nexc ? " before 'exclude'" : "", limit);
        return -1;
    }
    /* Bounds on the work and on the size of items_json, whatever the file
     * says: each combination is compared with each entry, and the text
     * holds every value of every combination (upper bounds, computed from
     * the cross product before `exclude`). */
    double bytes = 2, incbytes = 0;
    for (size_t i = 0; i < m->ndims; i++) {
        double vb = 0;
        for (size_t j = 0; j < m->dims[i].n; j++)
            vb += (double)(strlen(m->dims[i].vals[j].json) + strlen(m->dims[i].key) + 4);
        bytes += vb * (double)(prod / m->dims[i].n);
    }
    for (size_t i = 0; i < m->ninc; i++)
        for (size_t j = 0; j < m->inc[i].n; j++)
            incbytes += (double)(strlen(m->inc[i].p[j].v.json) + strlen(m->inc[i].p[j].key) + 4);
    bytes += incbytes * (double)(prod + 1) + (double)(prod + m->ninc) * 3;
    if ((double)prod * (double)(m->nexc + m->ninc) > MATRIX_WORK_MAX) {
        dag__nerr(l, n, "too-many-items", "use fewer entries, or split the task",
                  "'matrix' is too large to expand: %zu combinations times %zu 'include' and "
                  "'exclude' entries is more than %.0f",
                  prod, m->nexc + m->ninc, MATRIX_WORK_MAX);
        return -1;
    }
    if (bytes > MATRIX_BYTES_MAX) {
        dag__nerr(l, n, "too-many-items", "use shorter values, or split the task",
                  "'matrix' is too large: its items would take more than %d MiB",
                  (int)(MATRIX_BYTES_MAX / (1 << 20)));
        return -1;
    }
    size_t *kept = xcalloc(prod + 1, sizeof(*kept)), nkept = 0;
    size_t *idx = xcalloc(m->ndims + 1, sizeof(*idx));
    for (size_t c = 0; c < prod; c++) {
        size_t e;
        for (e = 0; e < m->nexc && !matches(m, &m->exc[e], idx, 0); e++)
            ;
        if (e == m->nexc)
            kept[nkept++] = c;
        for (size_t k = m->ndims; k-- > 0;) {
            if (++idx[k] < m->dims[k].n)
                break;
            idx[k] = 0;
        }
    }
    /* include: extend each original combination its matrix keys agree
     * with; an entry that extends none is a combination of its own */
    struct extras *ex = m->ninc ? xcalloc(nkept + 1, sizeof(*ex)) : NULL;
    size_t *alone = xcalloc(m->ninc + 1, sizeof(*alone)), nalone = 0;
    for (size_t i = 0; i < m->ninc; i++) {
        const struct mentry *e = &m->inc[i];
        int any = 0;
        for (size_t c = 0; c < nkept; c++) {
            decode(m, kept[c], idx);
            if (!matches(m, e, idx, 1))
                continue;
            any = 1;
            for (size_t j = 0; j < e->n; j++)
                if (e->p[j].dim < 0)
                    extras_set(&ex[c], e->p[j].key, &e->p[j].v);
        }
        if (!any)
            alone[nalone++] = i;
    }
    int rc = 0;
    if (nkept + nalone > limit) {
        dag__nerr(l, n, "too-many-items", LIMIT_HINT,
                  "'matrix' makes %zu combinations, more than max_map_items (%zu)", nkept + nalone,
                  limit);
        rc = -1;
    } else {
        struct sb sb;
        sb_init(&sb);
        sb_putc(&sb, '[');
        for (size_t c = 0; c < nkept; c++) {
            int first = 1;
            decode(m, kept[c], idx);
            sb_puts(&sb, c ? ",{" : "{");
            for (size_t k = 0; k < m->ndims; k++) {
                put_pair(&sb, &first, m->dims[k].key, &m->dims[k].vals[idx[k]]);
                count_key(src, m->dims[k].key);
            }
            for (size_t j = 0; ex && j < ex[c].n; j++) {
                put_pair(&sb, &first, ex[c].e[j].key, ex[c].e[j].v);
                count_key(src, ex[c].e[j].key);
            }
            sb_putc(&sb, '}');
        }
        for (size_t a = 0; a < nalone; a++) {
            const struct mentry *e = &m->inc[alone[a]];
            int first = 1;
            sb_puts(&sb, nkept || a ? ",{" : "{");
            for (size_t j = 0; j < e->n; j++) {
                put_pair(&sb, &first, e->p[j].key, &e->p[j].v);
                count_key(src, e->p[j].key);
            }
            sb_putc(&sb, '}');
        }
        sb_putc(&sb, ']');
        t->map.kind = DAG_MAP_MATRIX;
        t->map.items_json = sb_take(&sb);
        t->map.nitems = nkept + nalone;
        src->matrix_items = t->map.nitems;
        if (t->map.nitems == 0 && !l->quiet)
            diag_add(l->dl, DIAG_WARNING, l->file, n->line, n->col, "empty-matrix",
                     m->nexc ? "'exclude' removed every combination" : NULL,
                     "'matrix' has no combinations: task '%s' has no instances and is skipped "
                     "in every run",
                     t->name);
    }
    for (size_t c = 0; ex && c < nkept; c++)
        free(ex[c].e);
    free(ex);
    free(alone);
    free(idx);
    free(kept);
    return rc;
}

static int
parse_matrix(struct dag__loader *l, const struct ynode *n, struct dag_task *t,
             struct dag__task_src *src)
{
    struct matrix m;
    int bad = 0;
    const struct ynode *inc = NULL, *exc = NULL;
    memset(&m, 0, sizeof(m));
    if (n->type != YNODE_MAP) {
        dag__nerr(l, n, "wrong-type", MATRIX_FORM, "'matrix' must be a mapping of lists, got %s",
                  ynode_kind(n));
        return -1;
    }
    m.dims = xcalloc(n->n + 1, sizeof(*m.dims));
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *k = n->keys[i], *v = n->vals[i];
        if (!strcmp(k->str, "include")) {
            inc = v;
            continue;
        }
        if (!strcmp(k->str, "exclude")) {
            exc = v;
            continue;
        }
        if (!valid_key(k)) {
            dag__nerr(l, k, "bad-name", NULL,
                      "matrix key '%s' must be 1-%d letters, digits, '_' or '-'", k->str,
                      MATRIX_KEY_MAX);
            bad = 1;
            continue;
        }
        if (read_dim(l, k, v, &m.dims[m.ndims]) != 0) {
            for (size_t j = 0; j < m.dims[m.ndims].n; j++)
                free(m.dims[m.ndims].vals[j].json);
            free(m.dims[m.ndims].vals);
            bad = 1;
            continue;
        }
        m.ndims++;
    }
    if (exc && read_entries(l, exc, "exclude", &m, &m.exc, &m.nexc) != 0)
        bad = 1;
    if (inc && read_entries(l, inc, "include", &m, &m.inc, &m.ninc) != 0)
        bad = 1;
    if (!bad && expand(l, n, &m, t, src) != 0)
        bad = 1;
    matrix_free(&m);
    return bad ? -1 : 0;
}

/* ---- map ---- */

static int
parse_map(struct dag__loader *l, const struct ynode *n, struct dag_task *t,
          struct dag__task_src *src)
{
    const struct ynode *k = NULL, *v = NULL;
    int bad = 0;
    if (n->type != YNODE_MAP) {
        dag__nerr(l, n, "wrong-type", MAP_FORMS, "'map' must be a mapping, got %s", ynode_kind(n));
        return -1;
    }
    dag__check_keys(l, n, map_keys, "map", 0);
    for (size_t i = 0; i < n->n; i++) {
        size_t j;
        for (j = 0; map_keys[j] && strcmp(map_keys[j], n->keys[i]->str); j++)
            ;
        if (!map_keys[j]) {
            bad = 1;
        } else if (k) {
            dag__nerr(l, n->keys[i], "bad-map", MAP_FORMS,
                      "'map' takes one of 'over', 'from' or 'zip'; it has '%s' already", k->str);
            bad = 1;
        } else {
            k = n->keys[i];
            v = n->vals[i];
        }
    }
    if (!k) {
        if (!bad)
            dag__nerr(l, n, "missing-key", MAP_FORMS, "'map' needs one of 'over', 'from' or 'zip'");
        return -1;
    }
    char *s = NULL;
    char *field = xasprintf("map.%s", k->str);
    int rc = dag__get_str(l, v, field, &s);
    free(field);
    if (rc)
        return -1;
    if (!strcmp(k->str, "over")) {
        const char *name = s + 7;
        const struct dag_param *p;
        if (strncmp(s, "params.", 7) != 0 || !*name) {
            dag__nerr(l, v, "bad-map", "write map: {over: params.NAME}",
                      "'map.over' must name a list param as params.NAME, got '%s'", s);
            bad = 1;
        } else if (!(p = dag_param_find(l->d, name))) {
            const char **names = xcalloc(l->d->nparams + 1, sizeof(*names));
            for (size_t i = 0; i < l->d->nparams; i++)
                names[i] = l->d->params[i].name;
            char *hint = l->d->nparams ? dag__suggest(name, names, l->d->nparams) : NULL;
            dag__nerr(l, v, "unknown-param",
                      hint ? hint : "declare it under 'params:' with a list as its default",
                      "'map.over' names unknown param '%s'", name);
            free(hint);
            free(names);
            bad = 1;
        } else if (!p->is_list) {
            char *hint = xasprintf("write its default as a list, e.g. %s: [a, b]", name);
            dag__nerr(l, v, "not-a-list", hint,
                      "param '%s' is not a list: 'map.over' needs a param whose default is a "
                      "list",
                      name);
            free(hint);
            bad = 1;
        } else {
            json_t *j = json_loads(p->value, 0, NULL);
            size_t nitems = json_array_size(j);
            json_decref(j);
            if (nitems > (size_t)l->d->max_map_items) {
                dag__nerr(l, v, "too-many-items", "raise max_map_items at the top of the file",
                          "param '%s' has %zu items, more than max_map_items (%lld)", name, nitems,
                          (long long)l->d->max_map_items);
                bad = 1;
            }
        }
        if (!bad) {
            t->map.kind = DAG_MAP_PARAM;
            t->map.param = xstrdup(name);
        }
    } else if (!strcmp(k->str, "from")) {
        const char *slash = strchr(s, '/');
        if (!slash || slash == s || !slash[1] || strchr(slash + 1, '/')) {
            dag__nerr(l, v, "bad-map", "write map: {from: task/file}",
                      "'map.from' must name 'task/file' (an output holding a JSON list), got "
                      "'%s'",
                      s);
            bad = 1;
        } else if (!bad) {
            t->map.kind = DAG_MAP_FROM;
            t->map.from_task = xstrndup(s, (size_t)(slash - s));
            t->map.from_file = xstrdup(slash + 1);
            t->map.from_task_idx = (size_t)-1;
            src->map_val = v;
        }
    } else if (!bad) {
        t->map.kind = DAG_MAP_ZIP;
        t->map.zip_task = xstrdup(s);
        t->map.zip_task_idx = (size_t)-1;
        src->map_val = v;
    }
    free(s);
    return bad ? -1 : 0;
}

void
dag__parse_fanout(struct dag__loader *l, const struct ynode *map, struct dag_task *t,
                  struct dag__task_src *src)
{
    struct ynode *mk = NULL, *xk = NULL, *pk = NULL;
    const struct ynode *m = ynode_get(map, "map", &mk), *x = ynode_get(map, "matrix", &xk);
    const struct ynode *p = ynode_get(map, "max_parallel", &pk);
    if (!t) {
        const struct ynode *keys[] = {mk, xk, pk};
        for (size_t i = 0; i < 3; i++)
            if (keys[i])
                dag__nerr(l, keys[i], "not-a-default", "set it on each task that fans out",
                          "'%s' cannot be set in 'defaults': fan-out belongs to one task",
                          keys[i]->str);
        return;
    }
    if (m && x) {
        const struct ynode *later =
            (mk->line > xk->line || (mk->line == xk->line && mk->col > xk->col)) ? mk : xk;
        dag__nerr(l, later, "bad-map",
                  "'matrix' lists its items in the file; 'map' takes them from a list param or "
                  "an upstream's output",
                  "a task has 'matrix' or 'map', not both");
        src->map_bad = 1;
    } else if (x) {
        src->map_bad = parse_matrix(l, x, t, src) != 0;
    } else if (m) {
        src->map_bad = parse_map(l, m, t, src) != 0;
    }
    long long iv;
    if (p && dag__get_int(l, p, "max_parallel", 1, 1000000, &iv) == 0) {
        t->max_parallel = (int)iv;
        src->max_parallel = p;
    }
}

/* ---- checks across tasks ---- */

/* `map: {from|zip: TASK}` names a task in `needs`; its index, or -1 with
 * the error reported (or said already). */
static long
needed_task(struct dag__loader *l, size_t ti, const struct dag__task_src *src, const char *task,
            const char *field)
{
    const struct dag_task *t = &l->d->tasks[ti];
    const struct ynode *v = src->map_val;
    size_t ui;
    if (!hmap_get(&l->tasks, task, &ui)) {
        if (!dag__unknown_reported(l, src, task)) {
            char *hint = dag__suggest_task(l, task);
            dag__nerr(l, v, "unknown-task", hint, "'%s' names unknown task '%s'", field, task);
            free(hint);
        }
        return -1;
    }
    for (size_t i = 0; i < t->nneeds; i++)
        if (t->needs[i] == ui)
            return (long)ui;
    char *hint = ui == ti ? NULL : xasprintf("add '%s' to the 'needs' of '%s'", task, t->name);
    dag__nerr(l, v, "map-not-needed", hint,
              "'%s' names task '%s', which is not in the 'needs' of '%s'", field, task, t->name);
    free(hint);
    return -1;
}

void
dag__check_fanout(struct dag__loader *l, size_t ti, struct dag__task_src *src)
{
    struct dag_task *t = &l->d->tasks[ti];
    struct dag_map *m = &t->map;
    long ui;
    if (!src->map_bad && m->kind == DAG_MAP_FROM) {
        if ((ui = needed_task(l, ti, src, m->from_task, "map.from")) < 0) {
            src->map_bad = 1;
        } else {
            const struct dag_task *u = &l->d->tasks[ui];
            size_t j;
            for (j = 0; j < u->noutputs && strcmp(u->outputs[j], m->from_file); j++)
                ;
            if (j == u->noutputs) {
                char *hint =
                    u->noutputs
                        ? dag__suggest(m->from_file, (const char *const *)u->outputs, u->noutputs)
                        : NULL;
                if (!hint)
                    hint = xasprintf("declare it in the 'outputs' of '%s'", u->name);
                dag__nerr(l, src->map_val, "unknown-output", hint,
                          "'map.from': task '%s' declares no output '%s'", u->name, m->from_file);
                free(hint);
                src->map_bad = 1;
            } else if (dag__maybe_mapped(l, (size_t)ui)) {
                if (dag__mapped(l, (size_t)ui))
                    dag__nerr(l, src->map_val, "map-from-mapped",
                              "let one task gather the lists (it can take every instance's file "
                              "as an input) and map from its output",
                              "'map.from' names task '%s', which is mapped: each of its "
                              "instances writes its own '%s'",
                              u->name, m->from_file);
                src->map_bad = 1;
            } else {
                m->from_task_idx = (size_t)ui;
            }
        }
    } else if (!src->map_bad && m->kind == DAG_MAP_ZIP) {
        if ((ui = needed_task(l, ti, src, m->zip_task, "map.zip")) < 0) {
            src->map_bad = 1;
        } else if (!dag__maybe_mapped(l, (size_t)ui)) {
            dag__nerr(l, src->map_val, "zip-not-mapped",
                      "'needs' alone waits for it; zip pairs the instances of a task with "
                      "'map' or 'matrix'",
                      "'map.zip' names task '%s', which is not mapped", m->zip_task);
            src->map_bad = 1;
        } else if (!dag__mapped(l, (size_t)ui)) {
            src->map_bad = 1; /* its own map is wrong: said there */
        } else {
            m->zip_task_idx = (size_t)ui;
        }
    }
    if (src->max_parallel && !dag__maybe_mapped(l, ti))
        dag__nerr(l, src->max_parallel, "not-mapped",
                  "add 'matrix:' or 'map:', or leave 'max_parallel' out",
                  "'max_parallel' limits the instances of a mapped task, and '%s' has no 'map' "
                  "or 'matrix'",
                  t->name);
    if (src->publish && t->npublish && dag__mapped(l, ti)) {
        char *hint = xasprintf("publish from a task that needs '%s' and picks one instance's "
                               "file (e.g. with argmax)",
                               t->name);
        dag__nerr(l, src->publish, "publish-mapped", hint,
                  "'publish' on a mapped task: each instance would publish over the others");
        free(hint);
    }
}

/* ---- instance names ---- */

char *
dag_instance_name(const char *task, long index, char *buf, size_t len)
{
    if (len)
        snprintf(buf, len, "%s[%ld]", task, index);
    return buf;
}

long
dag_instance_parse(const char *name, char *task, size_t tasklen)
{
    const char *open = strchr(name, '['), *p;
    size_t n = open ? (size_t)(open - name) : strlen(name);
    long idx = 0;
    if (n == 0 || n >= tasklen || memchr(name, ']', n))
        return -2;
    if (!open) {
        memcpy(task, name, n + 1);
        return -1;
    }
    p = open + 1;
    if (!(*p >= '0' && *p <= '9') || (*p == '0' && p[1] != ']'))
        return -2; /* no digits, a sign, or a leading zero */
    for (; *p >= '0' && *p <= '9'; p++) {
        if (idx > (LONG_MAX - (*p - '0')) / 10)
            return -2;
        idx = idx * 10 + (*p - '0');
    }
    if (p[0] != ']' || p[1] != '\0')
        return -2;
    memcpy(task, name, n);
    task[n] = '\0';
    return idx;
}
