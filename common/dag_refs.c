/* dag_refs.c - names written inside strings: {{ }} templates in command
 * and env, and the task, metric and param references of `when`.
 *
 * Owns checking them when the file is loaded, so an unknown name is an
 * error of `cairn validate` (at the name's column inside the string), not a
 * failure at run time: template names against tmpl.h's list, the DAG's
 * params and, in a mapped task, its item (a matrix's keys); `when` and
 * aggregates against the tasks upstream of the task, their declared metrics
 * and whether they are mapped (a plain metric of a mapped task only from
 * the task that zips it; an aggregate only over a mapped task); the
 * params. Parsing `when` (expr.h) also happens here; the parsed expression
 * is kept in the task. Runs after the graph is ordered (dag_graph.c), since
 * "upstream" needs it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag_int.h"
#include "err.h"
#include "expr.h"
#include "tmpl.h"
#include "util.h"

struct when_ck {
    struct dag__loader *l;
    size_t ti;
    const struct dag__task_src *src;
    const struct ynode *node;
};

/* A problem with a metric reference: code, message and hint (malloc'd). */
struct ref_problem {
    const char *code;
    char *msg, *hint;
};

static int problem(struct ref_problem *pr, const char *code, char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
problem(struct ref_problem *pr, const char *code, char *hint, const char *fmt, ...)
{
    va_list ap;
    struct sb sb;
    sb_init(&sb);
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    pr->code = code;
    pr->msg = sb_take(&sb);
    pr->hint = hint;
    return 1;
}

/* Is TASK.metrics.NAME, used by task ti, wrong? `what` names where it is
 * ("'when'", "max(train.metrics.acc)"); agg is the aggregate around it, or
 * NULL. Returns 1 with *pr filled, or 0 when it is fine or its task's
 * problem was reported elsewhere. */
static int
metric_ref(struct dag__loader *l, size_t ti, const struct dag__task_src *src, const char *task,
           const char *name, const char *agg, const char *what, struct ref_problem *pr)
{
    size_t ui;
    if (!hmap_get(&l->tasks, task, &ui)) {
        if (dag__unknown_reported(l, src, task))
            return 0;
        return problem(pr, "unknown-task", dag__suggest_task(l, task),
                       "%s refers to unknown task '%s'", what, task);
    }
    if (ui == ti || (!l->cyclic && !l->incomplete[ti] && !dag__is_ancestor(l, ui, ti)))
        return problem(pr, "when-not-upstream", NULL,
                       "%s refers to task '%s', which is not upstream of '%s'", what, task,
                       l->d->tasks[ti].name);
    const struct dag_task *u = &l->d->tasks[ui];
    if (!u->metrics)
        return problem(pr, "no-metrics", xstrdup("declare `metrics: metrics.json` on that task"),
                       "%s uses metrics of task '%s', which declares no 'metrics'", what, task);
    if (u->metric_keys) {
        size_t j;
        for (j = 0; j < u->nmetric_keys; j++)
            if (!strcmp(u->metric_keys[j], name))
                break;
        if (j == u->nmetric_keys)
            return problem(pr, "unknown-metric",
                           dag__suggest(name, (const char *const *)u->metric_keys, u->nmetric_keys),
                           "%s uses metric '%s', which task '%s' does not declare", what, name,
                           task);
    }
    if (!agg && dag__mapped(l, ui) && !dag__zips(l, ti, ui))
        return problem(pr, "mapped-metric",
                       xasprintf("or zip it (map: {zip: %s}) to use the paired instance's "
                                 "metric",
                                 task),
                       "task '%s' is mapped: use an aggregate such as max(%s.metrics.%s)", task,
                       task, name);
    if (agg && !dag__maybe_mapped(l, ui))
        return problem(pr, "agg-not-mapped", xasprintf("write %s.metrics.%s", task, name),
                       "%s() is over the instances of a mapped task, and task '%s' is not "
                       "mapped",
                       agg, task);
    return 0;
}

static void
when_report(struct when_ck *w, int pos, struct ref_problem *pr)
{
    int line, col;
    dag__scalar_pos(w->node, pos, &line, &col);
    dag__err(w->l, line, col, pr->code, pr->hint, "%s", pr->msg);
    free(pr->msg);
    free(pr->hint);
}

static int
when_ref_cb(void *ud, const char *task, const char *name, int pos)
{
    struct when_ck *w = ud;
    struct dag__loader *l = w->l;
    struct ref_problem pr;
    if (!task) {
        if (!dag_param_find(l->d, name)) {
            char **names = xcalloc(l->d->nparams + 1, sizeof(*names));
            for (size_t i = 0; i < l->d->nparams; i++)
                names[i] = l->d->params[i].name;
            char *hint = l->d->nparams
                             ? dag__suggest(name, (const char *const *)names, l->d->nparams)
                             : xstrdup("declare it under 'params:'");
            problem(&pr, "unknown-param", hint, "'when' uses unknown param '%s'", name);
            when_report(w, pos, &pr);
            free(names);
        }
        return 0;
    }
    if (metric_ref(l, w->ti, w->src, task, name, NULL, "'when'", &pr))
        when_report(w, pos, &pr);
    return 0;
}

static int
when_agg_cb(void *ud, const char *fn, const char *task, const char *name, int pos)
{
    struct when_ck *w = ud;
    struct ref_problem pr;
    if (metric_ref(w->l, w->ti, w->src, task, name, fn, "'when'", &pr))
        when_report(w, pos, &pr);
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
    expr_foreach_agg(t->when_expr, when_agg_cb, &w);
}

/* What a template of task ti (or of `defaults:`, ti (size_t)-1) may use. */
struct tmpl_ck {
    struct dag__loader *l;
    size_t ti;
    const struct dag__task_src *src;
};

static const char *
param_at_cb(void *ud, size_t i)
{
    const struct dag *d = ((struct tmpl_ck *)ud)->l->d;
    return i < d->nparams ? d->params[i].name : NULL;
}

static void
put(char *buf, size_t len, const char *s)
{
    if (buf && len)
        snprintf(buf, len, "%s", s ? s : "");
}

/* item.PATH in a matrix task: a key every combination has (the values
 * are scalars, so nothing below it). Other mapped tasks: decided at run
 * time. */
static int
tmpl_item_cb(void *ud, const char *path, char *err, size_t errlen, char *hint, size_t hintlen)
{
    const struct tmpl_ck *c = ud;
    const struct dag__task_src *src = c->src;
    const char *dot = strchr(path, '.');
    size_t n = dot ? (size_t)(dot - path) : strlen(path), i;
    if (c->l->d->tasks[c->ti].map.kind != DAG_MAP_MATRIX || src->matrix_items == 0)
        return 0;
    for (i = 0; i < src->nmatrix_keys; i++)
        if (strlen(src->matrix_keys[i]) == n && !strncmp(src->matrix_keys[i], path, n))
            break;
    if (i == src->nmatrix_keys) {
        char *key = xstrndup(path, n), *sug;
        sug = dag__suggest(key, (const char *const *)src->matrix_keys, src->nmatrix_keys);
        errf(CAIRN_EPARSE, err, errlen, "no combination of the matrix has the key '%s'", key);
        if (sug) {
            put(hint, hintlen, sug);
        } else {
            struct sb sb;
            sb_init(&sb);
            sb_puts(&sb, "the matrix has");
            for (size_t j = 0; j < src->nmatrix_keys; j++)
                sb_printf(&sb, "%s %s", j ? "," : ":", src->matrix_keys[j]);
            put(hint, hintlen, sb.buf);
            sb_free(&sb);
        }
        free(sug);
        free(key);
        return 1;
    }
    if (src->matrix_key_items[i] < src->matrix_items) {
        errf(CAIRN_EPARSE, err, errlen, "%zu of the matrix's %zu combinations have no key '%.*s'",
             src->matrix_items - src->matrix_key_items[i], src->matrix_items, (int)n, path);
        put(hint, hintlen, "give every combination a value for it, or use it only where it is");
        return 1;
    }
    if (dot) {
        errf(CAIRN_EPARSE, err, errlen,
             "item.%.*s is a number, string or boolean, so it has no key '%s'", (int)n, path,
             dot + 1);
        put(hint, hintlen, NULL);
        return 1;
    }
    return 0;
}

/* FN(TASK.metrics.NAME) in a template of task ti: the checks of `when`. */
static int
tmpl_agg_cb(void *ud, const char *fn, const char *task, const char *metric, char *err,
            size_t errlen, char *hint, size_t hintlen)
{
    const struct tmpl_ck *c = ud;
    struct ref_problem pr;
    char *what = xasprintf("%s(%s.metrics.%s)", fn, task, metric);
    int rc = metric_ref(c->l, c->ti, c->src, task, metric, fn, what, &pr);
    free(what);
    if (!rc)
        return 0;
    put(err, errlen, pr.msg);
    put(hint, hintlen, pr.hint);
    free(pr.msg);
    free(pr.hint);
    return 1;
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
dag__check_template(struct dag__loader *l, size_t ti, const struct dag__task_src *src,
                    const struct ynode *n, const char *what)
{
    char err[256], hint[256];
    int pos = 0, line, col;
    struct tmpl_ck ck = {l, ti, src};
    struct tmpl_scope sc = {.param_at = param_at_cb, .ud = &ck};
    hint[0] = '\0';
    if (n->type != YNODE_SCALAR || !strstr(n->str, "{{"))
        return;
    if (ti == (size_t)-1) {
        sc.unmapped_hint = "'defaults:' applies to every task: set this on the mapped task itself";
    } else {
        sc.mapped = dag__maybe_mapped(l, ti);
        sc.item = tmpl_item_cb;
        sc.agg = tmpl_agg_cb;
    }
    if (tmpl_check_scope(n->str, &sc, err, sizeof(err), &pos, hint, sizeof(hint)) != 0) {
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
dag__check_templates(struct dag__loader *l, size_t ti, const struct dag__task_src *src)
{
    if (src->command && !src->command_inherited && src->command->type == YNODE_SEQ)
        for (size_t i = 0; i < src->command->n; i++)
            dag__check_template(l, ti, src, src->command->vals[i], "command");
    if (src->env && src->env->type == YNODE_MAP)
        for (size_t i = 0; i < src->env->n; i++)
            dag__check_template(l, ti, src, src->env->vals[i], "env");
}
