/* dag_params.c - `params:` and the per-run values that override them.
 *
 * Owns reading the params mapping into struct dag_param (name rules, the
 * value as written, whether it was an unquoted number or boolean; a list's
 * JSON text), looking a param up by name, and checking a run's overrides
 * against the declared names with a suggestion for a misspelling, and
 * against the type of the param's default (a number takes a number, a
 * boolean true or false) and the shape of a list param (a JSON list of
 * scalars and flat objects, no longer than max_map_items when a task maps
 * over it).
 */
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag_int.h"
#include "err.h"
#include "util.h"

#define LIST_ITEMS "numbers, strings, booleans or flat mappings"

/* A list param's default: a YAML list of scalars and flat mappings, as the
 * JSON text of an array. 0, or -1 with the errors reported. */
static int
list_param(struct dag__loader *l, const char *name, const struct ynode *v, char **out)
{
    struct sb sb;
    int bad = 0;
    char *what = xasprintf("items of param '%s'", name);
    sb_init(&sb);
    sb_putc(&sb, '[');
    for (size_t i = 0; i < v->n; i++) {
        const struct ynode *it = v->vals[i];
        if (i)
            sb_putc(&sb, ',');
        if (it->type == YNODE_SEQ || (it->type == YNODE_SCALAR && it->is_null)) {
            dag__nerr(l, it, "wrong-type", NULL,
                      "items of param '%s' must be " LIST_ITEMS ", got %s", name, ynode_kind(it));
            bad = 1;
        } else if (it->type == YNODE_SCALAR) {
            bad |= dag__scalar_json(l, it, what, &sb) != 0;
        } else {
            sb_putc(&sb, '{');
            for (size_t j = 0; j < it->n; j++) {
                char *w = xasprintf("'%s' in an item of param '%s'", it->keys[j]->str, name);
                if (j)
                    sb_putc(&sb, ',');
                dag__json_str(&sb, it->keys[j]->str, it->keys[j]->len);
                sb_putc(&sb, ':');
                if (strlen(it->keys[j]->str) != it->keys[j]->len) {
                    dag__nerr(l, it->keys[j], "bad-name", NULL, "%s: the key has a NUL byte", w);
                    bad = 1;
                } else if (it->vals[j]->type != YNODE_SCALAR) {
                    dag__nerr(l, it->vals[j], "wrong-type",
                              "a list param's items are scalars or mappings of scalars",
                              "%s must be a number, string or boolean, got %s", w,
                              ynode_kind(it->vals[j]));
                    bad = 1;
                } else {
                    bad |= dag__scalar_json(l, it->vals[j], w, &sb) != 0;
                }
                free(w);
            }
            sb_putc(&sb, '}');
        }
    }
    sb_putc(&sb, ']');
    free(what);
    if (bad) {
        sb_free(&sb);
        return -1;
    }
    *out = sb_take(&sb);
    return 0;
}

void
dag__parse_params(struct dag__loader *l, const struct ynode *n)
{
    struct dag *d = l->d;
    if (dag__expect(l, n, YNODE_MAP, "params"))
        return;
    d->params = xcalloc(n->n + 1, sizeof(*d->params));
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *k = n->keys[i], *v = n->vals[i];
        if (!dag__valid_ident(k->str)) {
            dag__nerr(l, k, "bad-name", NULL, "param name '%s' must match [A-Za-z_][A-Za-z0-9_]*",
                      k->str);
            continue;
        }
        if (v->type == YNODE_SEQ) {
            char *json = NULL;
            if (list_param(l, k->str, v, &json) != 0)
                continue;
            struct dag_param *p = &d->params[d->nparams++];
            p->name = xstrdup(k->str);
            p->value = json;
            p->is_list = true;
            continue;
        }
        if (v->type != YNODE_SCALAR) {
            dag__nerr(l, v, "wrong-type", "a list is written [a, b] or as '- a' lines",
                      "param '%s' must be a number, string, boolean or list, got %s", k->str,
                      ynode_kind(v));
            continue;
        }
        if (!v->is_null && strlen(v->str) > DAG_PARAM_MAX_BYTES) {
            dag__nerr(l, v, "too-large", "pass large data as a file or an input instead",
                      "param '%s' is %zu bytes; a param value is at most %d bytes (64 KiB)",
                      k->str, strlen(v->str), DAG_PARAM_MAX_BYTES);
            continue;
        }
        struct dag_param *p = &d->params[d->nparams++];
        double num;
        p->name = xstrdup(k->str);
        p->value = xstrdup(v->is_null ? "" : v->str);
        p->is_number = !v->quoted && !v->is_null && dag__parse_number(v->str, &num) == 0;
        p->is_bool = !v->quoted && (!strcmp(v->str, "true") || !strcmp(v->str, "false"));
    }
}

const struct dag_param *
dag_param_find(const struct dag *d, const char *name)
{
    for (size_t i = 0; i < d->nparams; i++)
        if (!strcmp(d->params[i].name, name))
            return &d->params[i];
    return NULL;
}

/* An override of list param p: a JSON list of scalars and flat objects, no
 * longer than max_map_items when a task maps over p. */
static int
check_list_override(const struct dag *d, const struct dag_param *p, const char *value, char *err,
                    size_t errlen)
{
    json_error_t je;
    json_t *v = json_loads(value, 0, &je), *it, *m;
    const char *k;
    size_t i;
    int rc = 0;
    if (!v || !json_is_array(v)) {
        rc = errf(CAIRN_EINVAL, err, errlen,
                  "param '%s' is a list: give it as a JSON list such as '[\"a\", \"b\"]', got "
                  "'%.40s%s'",
                  p->name, value, strlen(value) > 40 ? "..." : "");
        json_decref(v);
        return rc;
    }
    json_array_foreach(v, i, it)
    {
        int flat = json_is_object(it);
        json_object_foreach(it, k, m)
        {
            if (json_is_object(m) || json_is_array(m) || json_is_null(m))
                flat = 0;
        }
        if (json_is_array(it) || json_is_null(it) || (json_is_object(it) && !flat)) {
            rc = errf(CAIRN_EINVAL, err, errlen,
                      "param '%s': item [%zu] must be a number, string, boolean or flat object",
                      p->name, i);
            break;
        }
    }
    for (size_t t = 0; rc == 0 && t < d->ntasks; t++) {
        const struct dag_map *mp = &d->tasks[t].map;
        if (mp->kind == DAG_MAP_PARAM && !strcmp(mp->param, p->name) &&
            (int64_t)json_array_size(v) > d->max_map_items)
            rc = errf(CAIRN_EINVAL, err, errlen,
                      "param '%s' has %zu items, more than max_map_items (%lld); task '%s' "
                      "maps over it",
                      p->name, json_array_size(v), (long long)d->max_map_items, d->tasks[t].name);
    }
    json_decref(v);
    return rc;
}

/* Whether value is what a param whose default is p's type takes: a number
 * for a number (decimal, as YAML and JSON write them: no hex, inf or nan),
 * true or false for a boolean; a string takes anything. */
static int
check_typed_override(const struct dag_param *p, const char *value, char *err, size_t errlen)
{
    if (p->is_number) {
        char *end = NULL;
        double x = strtod(value, &end);
        bool ok = *value && !isspace((unsigned char)*value) && end && *end == '\0' &&
                  isfinite(x) && !strpbrk(value, "xXnN");
        if (ok)
            return 0;
        snprintf(err, errlen, "param '%s' takes a number (its default is %s), got '%.80s'",
                 p->name, p->value, value);
        return CAIRN_EINVAL;
    }
    if (p->is_bool) {
        if (!strcmp(value, "true") || !strcmp(value, "false"))
            return 0;
        snprintf(err, errlen, "param '%s' takes true or false (its default is %s), got '%.80s'",
                 p->name, p->value, value);
        return CAIRN_EINVAL;
    }
    return 0;
}

int
dag_check_overrides(const struct dag *d, const struct dag_kv *ov, size_t n, char *err,
                    size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const struct dag_param *p = dag_param_find(d, ov[i].key);
        size_t vlen = strlen(ov[i].value);
        if (p && !p->is_list && vlen > DAG_PARAM_MAX_BYTES) {
            snprintf(err, errlen,
                     "param '%s' is %zu bytes; a param value is at most %d bytes (64 KiB): pass "
                     "large data as a file or an input instead",
                     ov[i].key, vlen, DAG_PARAM_MAX_BYTES);
            return CAIRN_EINVAL;
        }
        if (p) {
            int rc = p->is_list ? check_list_override(d, p, ov[i].value, err, errlen)
                                : check_typed_override(p, ov[i].value, err, errlen);
            if (rc)
                return rc;
        }
        if (p)
            continue;
        char **names = xcalloc(d->nparams + 1, sizeof(*names));
        for (size_t j = 0; j < d->nparams; j++)
            names[j] = d->params[j].name;
        char *hint =
            d->nparams ? dag__suggest(ov[i].key, (const char *const *)names, d->nparams) : NULL;
        snprintf(err, errlen, "unknown param '%s'%s%s%s", ov[i].key,
                 hint ? "; " : (d->nparams ? "" : " (this DAG declares no params)"),
                 hint ? hint : "", "");
        free(hint);
        free(names);
        return CAIRN_ENOENT;
    }
    return 0;
}
