/* dag_graph.c - the DAG as a graph: who needs whom.
 *
 * Owns resolving each task's `needs` to task indices (unknown names with a
 * suggestion, a task needing itself, a repeated need), the downstream lists
 * and the topological order (Kahn's algorithm), naming the tasks of a cycle
 * and pointing at the `needs` item that closes it, ancestry questions
 * ("is a upstream of b", directly or not) and `inputs`, which must come
 * from a declared output of an upstream task (and are fan-in or zip inputs
 * when that task is mapped). Runs after every task's own
 * fields were read (dag_task.c), so all names are known.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag_int.h"
#include "util.h"

#define INPUT_FORMS "write inputs as `name: task/file` or `name: {from: task/file, optional: true}`"

static const char *const input_keys[] = {"from", "optional", NULL};

static int
is_input_key(const char *s)
{
    for (size_t i = 0; input_keys[i]; i++)
        if (!strcmp(input_keys[i], s))
            return 1;
    return 0;
}

/* Is `anc` an ancestor of task `t`? */
int
dag__is_ancestor(struct dag__loader *l, size_t anc, size_t t)
{
    struct dag *d = l->d;
    const struct dag_task *task = &d->tasks[t];
    for (size_t i = 0; i < task->nneeds; i++)
        if (task->needs[i] == anc)
            return 1;
    /* DFS upward */
    size_t *stack = xmalloc((d->ntasks + 1) * sizeof(*stack));
    size_t sp = 0;
    int found = 0;
    l->stamp++;
    stack[sp++] = t;
    l->visit[t] = l->stamp;
    while (sp && !found) {
        const struct dag_task *x = &d->tasks[stack[--sp]];
        for (size_t i = 0; i < x->nneeds; i++) {
            size_t u = x->needs[i];
            if (u == anc) {
                found = 1;
                break;
            }
            if (l->visit[u] != l->stamp) {
                l->visit[u] = l->stamp;
                stack[sp++] = u;
            }
        }
    }
    free(stack);
    return found;
}

void
dag__resolve_needs(struct dag__loader *l, size_t ti, const struct dag__task_src *src)
{
    struct dag_task *t = &l->d->tasks[ti];
    const struct ynode *n = src->needs;
    if (!n || n->type != YNODE_SEQ)
        return;
    t->needs = xcalloc(n->n + 1, sizeof(*t->needs));
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *it = n->vals[i];
        size_t idx;
        if (it->type != YNODE_SCALAR)
            continue;
        if (!hmap_get(&l->tasks, it->str, &idx)) {
            l->incomplete[ti] = 1;
            if (hmap_get(&l->broken, it->str, &idx))
                continue; /* that task's own error says what is wrong */
            char *hint = dag__suggest_task(l, it->str);
            dag__err(l, it->line, it->col, "unknown-task", hint,
                     "task '%s' needs unknown task '%s'", t->name, it->str);
            free(hint);
            continue;
        }
        if (idx == ti) {
            dag__err(l, it->line, it->col, "self-dependency", NULL, "task '%s' needs itself",
                     t->name);
            continue;
        }
        int dup = 0;
        for (size_t j = 0; j < t->nneeds; j++)
            if (t->needs[j] == idx)
                dup = 1;
        if (dup) {
            dag__err(l, it->line, it->col, "duplicate-need", NULL,
                     "task '%s' lists '%s' in 'needs' twice", t->name, it->str);
            continue;
        }
        t->needs[t->nneeds++] = idx;
    }
}

/* Kahn's algorithm; on a cycle, walk it and name its tasks. */
int
dag__order_tasks(struct dag__loader *l, struct dag__task_src *srcs)
{
    struct dag *d = l->d;
    size_t n = d->ntasks;
    size_t *indeg = xcalloc(n + 1, sizeof(*indeg));
    size_t *nd = xcalloc(n + 1, sizeof(*nd));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d->tasks[i].nneeds; j++)
            nd[d->tasks[i].needs[j]]++;
    for (size_t i = 0; i < n; i++) {
        d->tasks[i].downstream = xcalloc(nd[i] + 1, sizeof(size_t));
        indeg[i] = d->tasks[i].nneeds;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d->tasks[i].nneeds; j++) {
            struct dag_task *u = &d->tasks[d->tasks[i].needs[j]];
            u->downstream[u->ndownstream++] = i;
        }
    free(nd);
    d->topo = xcalloc(n + 1, sizeof(*d->topo));
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < n; i++)
        if (indeg[i] == 0)
            d->topo[tail++] = i;
    while (head < tail) {
        const struct dag_task *u = &d->tasks[d->topo[head++]];
        for (size_t j = 0; j < u->ndownstream; j++)
            if (--indeg[u->downstream[j]] == 0)
                d->topo[tail++] = u->downstream[j];
    }
    int rc = 0;
    if (tail < n) {
        /* Follow remaining edges upward from a task still blocked: every
         * blocked task has a blocked upstream, so this walk must revisit a
         * task, and the part between the two visits is a cycle. */
        size_t start = 0;
        while (indeg[start] == 0)
            start++;
        size_t *pos = xmalloc(n * sizeof(*pos));
        size_t *path = xmalloc((n + 1) * sizeof(*path));
        for (size_t i = 0; i < n; i++)
            pos[i] = (size_t)-1;
        size_t len = 0, cur = start;
        while (pos[cur] == (size_t)-1) {
            pos[cur] = len;
            path[len++] = cur;
            const struct dag_task *t = &d->tasks[cur];
            size_t next = cur;
            for (size_t j = 0; j < t->nneeds; j++)
                if (indeg[t->needs[j]] != 0) {
                    next = t->needs[j];
                    break;
                }
            cur = next;
        }
        /* path[pos[cur]..len) is the cycle, each needing the next */
        struct sb sb;
        sb_init(&sb);
        /* path[i] needs path[i + 1]: print in the order data flows */
        sb_puts(&sb, d->tasks[path[pos[cur]]].name);
        for (size_t i = len; i-- > pos[cur];) {
            sb_puts(&sb, " -> ");
            sb_puts(&sb, d->tasks[path[i]].name);
        }
        /* point at the `needs` entry of the first task on the cycle (file
         * order) that names its upstream on the cycle */
        size_t first = path[pos[cur]];
        for (size_t i = pos[cur]; i < len; i++)
            if (path[i] < first)
                first = path[i];
        size_t up = (size_t)-1;
        for (size_t i = pos[cur]; i < len; i++)
            if (path[i] == first)
                up = path[i + 1 < len ? i + 1 : pos[cur]];
        int line = d->tasks[first].line, col = d->tasks[first].col;
        const struct ynode *nn = srcs[first].needs;
        if (nn && nn->type == YNODE_SEQ)
            for (size_t j = 0; j < nn->n; j++)
                if (nn->vals[j]->type == YNODE_SCALAR &&
                    !strcmp(nn->vals[j]->str, d->tasks[up].name)) {
                    line = nn->vals[j]->line;
                    col = nn->vals[j]->col;
                }
        dag__err(l, line, col, "cycle", "a DAG may not loop; remove one of these dependencies",
                 "dependency cycle: %s", sb.buf);
        sb_free(&sb);
        free(pos);
        free(path);
        rc = -1;
    } else {
        /* below a task with an unknown upstream, ancestry is unknown too */
        for (size_t i = 0; i < n; i++) {
            const struct dag_task *t = &d->tasks[d->topo[i]];
            for (size_t j = 0; j < t->nneeds; j++)
                l->incomplete[d->topo[i]] |= l->incomplete[t->needs[j]];
        }
    }
    free(indeg);
    return rc;
}

void
dag__resolve_inputs(struct dag__loader *l, size_t ti, const struct dag__task_src *src)
{
    struct dag_task *t = &l->d->tasks[ti];
    const struct ynode *n = src->inputs;
    if (!n)
        return;
    int q = l->quiet;
    if (src->inputs_inherited)
        l->quiet = 1;
    t->inputs = xcalloc(n->n + 1, sizeof(*t->inputs));
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *k = n->keys[i], *v = n->vals[i], *opt = NULL;
        bool optional = false;
        int bad = 0; /* an error in the long form's other keys: check from, keep nothing */
        if (!dag__valid_filename(k->str)) {
            dag__nerr(l, k, "bad-name", NULL, "input name '%s' must be a plain file name", k->str);
            continue;
        }
        if (v->type == YNODE_MAP) {
            /* the long form: {from: task/file, optional: true} */
            const struct ynode *from = ynode_get(v, "from", NULL);
            dag__check_keys(l, v, input_keys, "input", 0);
            for (size_t j = 0; j < v->n; j++)
                bad |= !is_input_key(v->keys[j]->str);
            if ((opt = ynode_get(v, "optional", NULL)))
                bad |= dag__get_bool(l, opt, "optional", &optional) != 0;
            if (!from) {
                dag__nerr(l, v, "missing-key", INPUT_FORMS, "input '%s' needs 'from: task/file'",
                          k->str);
                continue;
            }
            if (from->type != YNODE_SCALAR || from->is_null) {
                dag__nerr(l, from, "wrong-type", INPUT_FORMS,
                          "input '%s': 'from' must be a string 'task/file', got %s", k->str,
                          ynode_kind(from));
                continue;
            }
            v = from;
        } else if (v->type != YNODE_SCALAR || v->is_null) {
            dag__nerr(l, v, "wrong-type", INPUT_FORMS,
                      "input '%s' must be a string 'task/file' or a mapping, got %s", k->str,
                      ynode_kind(v));
            continue;
        }
        const char *slash = strchr(v->str, '/');
        if (!slash || slash == v->str || !slash[1] || strchr(slash + 1, '/')) {
            dag__nerr(l, v, "bad-input", INPUT_FORMS, "input '%s' must name 'task/file', got '%s'",
                      k->str, v->str);
            continue;
        }
        char *task = xstrndup(v->str, (size_t)(slash - v->str));
        const char *file = slash + 1;
        size_t ui;
        if (!hmap_get(&l->tasks, task, &ui)) {
            if (!dag__unknown_reported(l, src, task)) {
                char *hint = dag__suggest_task(l, task);
                dag__nerr(l, v, "unknown-task", hint, "input '%s' names unknown task '%s'", k->str,
                          task);
                free(hint);
            }
            free(task);
            continue;
        }
        if (ui == ti || (!l->incomplete[ti] && !dag__is_ancestor(l, ui, ti))) {
            char hint[160];
            snprintf(hint, sizeof(hint), "add '%s' to the 'needs' of '%s'", task, t->name);
            dag__nerr(l, v, "input-not-upstream", hint,
                      "input '%s' comes from task '%s', which is not upstream of '%s'", k->str,
                      task, t->name);
            free(task);
            continue;
        }
        const struct dag_task *u = &l->d->tasks[ui];
        size_t j;
        for (j = 0; j < u->noutputs; j++)
            if (!strcmp(u->outputs[j], file))
                break;
        if (j == u->noutputs) {
            char *hint = u->noutputs
                             ? dag__suggest(file, (const char *const *)u->outputs, u->noutputs)
                             : NULL;
            if (!hint)
                hint = u->noutputs ? xasprintf("'%s' declares: %s%s", task, u->outputs[0],
                                               u->noutputs > 1 ? ", ..." : "")
                                   : xasprintf("declare it in the 'outputs' of '%s'", task);
            dag__nerr(l, v, "unknown-output", hint, "input '%s': task '%s' declares no output '%s'",
                      k->str, task, file);
            free(hint);
            free(task);
            continue;
        }
        if (bad) {
            free(task);
            continue;
        }
        struct dag_input *in = &t->inputs[t->ninputs++];
        in->name = xstrdup(k->str);
        in->task = task;
        in->file = xstrdup(file);
        in->task_idx = ui;
        in->optional = optional;
        /* from a mapped task: the paired instance's file for its zip, every
         * instance's file for anyone else */
        in->zip = dag__zips(l, ti, ui);
        in->fan_in = dag__mapped(l, ui) && !in->zip;
        if (optional && t->trigger_rule == DAG_TRIGGER_ALL_SUCCESS && !l->quiet)
            diag_add(l->dl, DIAG_WARNING, l->file, opt->line, opt->col, "optional-all-success",
                     "use trigger_rule: all_done (or none_failed, one_success) to run without it",
                     "input '%s' is optional, but under trigger_rule all_success task '%s' runs "
                     "only when '%s' succeeded, so the input is always there",
                     k->str, t->name, in->task);
    }
    l->quiet = q;
}

long
dag_task_index(const struct dag *d, const char *name)
{
    size_t k;
    /* by the index the loader made (a 100,000-task run's records are read
     * back one lookup each); a DAG put together otherwise has none */
    if (d->ntasks && d->by_name.n == d->ntasks) {
        if (!hmap_get(&d->by_name, name, &k))
            return -1;
        if (k < d->ntasks && !strcmp(d->tasks[k].name, name))
            return (long)k;
    }
    for (size_t i = 0; i < d->ntasks; i++)
        if (!strcmp(d->tasks[i].name, name))
            return (long)i;
    return -1;
}

int
dag__unknown_reported(const struct dag__loader *l, const struct dag__task_src *src,
                      const char *name)
{
    size_t idx;
    if (hmap_get(&l->broken, name, &idx))
        return 1;
    const struct ynode *n = src->needs;
    if (!n || n->type != YNODE_SEQ)
        return 0;
    for (size_t i = 0; i < n->n; i++)
        if (n->vals[i]->type == YNODE_SCALAR && !strcmp(n->vals[i]->str, name))
            return 1;
    return 0;
}
