/* dag_refs.c - names written inside strings: {{ }} templates in command
 * and env, and the task, metric and param references of `when`.
 *
 * Owns checking them when the file is loaded, so an unknown name is an
 * error of `cairn validate` (at the name's column inside the string), not a
 * failure at run time: template names against tmpl.h's list and the DAG's
 * params, `when` against the tasks upstream of the task, their declared
 * metrics and the params. Parsing `when` (expr.h) also happens here; the
 * parsed expression is kept in the task. Runs after the graph is ordered
 * (dag_graph.c), since "upstream" needs it.
 */
#include <stdlib.h>
#include <string.h>

#include "dag_int.h"
#include "expr.h"
#include "tmpl.h"
#include "util.h"

struct when_ck {
    struct dag__loader *l;
    size_t ti;
    const struct dag__task_src *src;
    const struct ynode *node;
};

static int
when_ref_cb(void *ud, const char *task, const char *name, int pos)
{
    struct when_ck *w = ud;
    struct dag__loader *l = w->l;
    int line, col;
    dag__scalar_pos(w->node, pos, &line, &col);
    if (!task) {
        if (!dag_param_find(l->d, name)) {
            char **names = xcalloc(l->d->nparams + 1, sizeof(*names));
            for (size_t i = 0; i < l->d->nparams; i++)
                names[i] = l->d->params[i].name;
            char *hint = l->d->nparams
                             ? dag__suggest(name, (const char *const *)names, l->d->nparams)
                             : xstrdup("declare it under 'params:'");
            dag__err(l, line, col, "unknown-param", hint, "'when' uses unknown param '%s'", name);
            free(hint);
            free(names);
        }
        return 0;
    }
    size_t ui;
    if (!hmap_get(&l->tasks, task, &ui)) {
        if (!dag__unknown_reported(l, w->src, task)) {
            char *hint = dag__suggest_task(l, task);
            dag__err(l, line, col, "unknown-task", hint, "'when' refers to unknown task '%s'",
                     task);
            free(hint);
        }
        return 0;
    }
    if (ui == w->ti || (!l->incomplete[w->ti] && !dag__is_ancestor(l, ui, w->ti))) {
        dag__err(l, line, col, "when-not-upstream", NULL,
                 "'when' refers to task '%s', which is not upstream of '%s'", task,
                 l->d->tasks[w->ti].name);
        return 0;
    }
    const struct dag_task *u = &l->d->tasks[ui];
    if (!u->metrics) {
        dag__err(l, line, col, "no-metrics", "declare `metrics: metrics.json` on that task",
                 "'when' uses metrics of task '%s', which declares no 'metrics'", task);
        return 0;
    }
    if (u->metric_keys) {
        size_t j;
        for (j = 0; j < u->nmetric_keys; j++)
            if (!strcmp(u->metric_keys[j], name))
                break;
        if (j == u->nmetric_keys) {
            char *hint = dag__suggest(name, (const char *const *)u->metric_keys, u->nmetric_keys);
            dag__err(l, line, col, "unknown-metric", hint,
                     "'when' uses metric '%s', which task '%s' does not declare", name, task);
            free(hint);
        }
    }
    return 0;
}

void
dag__check_when(struct dag__loader *l, size_t ti, const struct dag__task_src *src)
{
    struct dag_task *t = &l->d->tasks[ti];
    if (!t->when || !src->when)
        return;
    char err[256];
    int pos = 0, line, col;
    if (expr_parse(&t->when_expr, t->when, err, sizeof(err), &pos) != 0) {
        /* a `when` inherited from defaults: say it once */
        if (!src->when_inherited || !l->when_default_reported) {
            dag__scalar_pos(src->when, pos, &line, &col);
            dag__err(l, line, col, "bad-when", NULL, "'when': %s", err);
            l->when_default_reported |= src->when_inherited;
        }
        t->when_expr = NULL;
        return;
    }
    /* references depend on the task, so they are checked for each */
    struct when_ck w = {l, ti, src, src->when};
    expr_foreach_ref(t->when_expr, when_ref_cb, &w);
}

static const char *
param_at_cb(void *ud, size_t i)
{
    const struct dag *d = ud;
    return i < d->nparams ? d->params[i].name : NULL;
}

/* Template names of Airflow that Cairn spells differently. */
static const struct {
    const char *name, *hint;
} airflow_names[] = {
    {"execution_date", "execution_date is Airflow's old name for the logical date: use "
                       "{{ ds }} (its date) or {{ ts }} (date and time)"},
    {"logical_date", "the logical date is {{ ds }} (its date) or {{ ts }} (date and time)"},
    {"next_ds", "the end of the run's data interval is {{ data_interval_end }}"},
    {"next_execution_date", "the end of the run's data interval is {{ data_interval_end }}"},
};

/* A hint for the unknown name at s + pos, or NULL. */
static const char *
airflow_hint(const char *s, int pos)
{
    size_t n = strspn(s + pos, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");
    if (!strncmp(s + pos, "dag_run.conf", 12) && (n == 12 || s[pos + 12] == '.'))
        return "a run's parameters are {{ params.NAME }}, declared under 'params:'";
    for (size_t i = 0; i < sizeof(airflow_names) / sizeof(*airflow_names); i++)
        if (strlen(airflow_names[i].name) == n && !strncmp(s + pos, airflow_names[i].name, n))
            return airflow_names[i].hint;
    return NULL;
}

void
dag__check_template(struct dag__loader *l, const struct ynode *n, const char *what)
{
    char err[256], hint[256];
    int pos = 0, line, col;
    hint[0] = '\0';
    if (n->type != YNODE_SCALAR || !strstr(n->str, "{{"))
        return;
    if (tmpl_check_params(n->str, param_at_cb, l->d, err, sizeof(err), &pos, hint, sizeof(hint)) !=
        0) {
        const char *af = pos >= 0 && (size_t)pos < n->len && strstr(err, "unknown template name")
                             ? airflow_hint(n->str, pos)
                             : NULL;
        if (af)
            snprintf(hint, sizeof(hint), "%s", af);
        dag__scalar_pos(n, pos, &line, &col);
        dag__err(l, line, col, "bad-template", hint[0] ? hint : NULL, "%s: %s", what, err);
    }
}

void
dag__check_templates(struct dag__loader *l, const struct dag__task_src *src)
{
    if (src->command && !src->command_inherited && src->command->type == YNODE_SEQ)
        for (size_t i = 0; i < src->command->n; i++)
            dag__check_template(l, src->command->vals[i], "command");
    if (src->env && src->env->type == YNODE_MAP)
        for (size_t i = 0; i < src->env->n; i++)
            dag__check_template(l, src->env->vals[i], "env");
}
