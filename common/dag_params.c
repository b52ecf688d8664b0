/* dag_params.c - `params:` and the per-run values that override them.
 *
 * Owns reading the params mapping into struct dag_param (name rules, the
 * value as written, whether it was an unquoted number or boolean), looking
 * a param up by name, and checking a run's overrides against the declared
 * names with a suggestion for a misspelling.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag_int.h"
#include "err.h"
#include "util.h"

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
        if (v->type != YNODE_SCALAR) {
            dag__nerr(l, v, "wrong-type", NULL,
                      "param '%s' must be a number, string or boolean, got %s", k->str,
                      ynode_kind(v));
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

int
dag_check_overrides(const struct dag *d, const struct dag_kv *ov, size_t n, char *err,
                    size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (dag_param_find(d, ov[i].key))
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
