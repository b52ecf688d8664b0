/* dag_event.c - `trigger:`: the events that create runs (docs/dag-yaml.md,
 * "Event triggers").
 *
 * Owns reading `trigger:` into struct dag_event_cond (a list is "any of";
 * `all: [...]` and `any: [...]` combine; each item is a mapping with one
 * key, the event's kind), checking each kind's fields (on_publish names
 * DAG/TASK and not this DAG; on_file an absolute folder, a pattern and a
 * settle duration; on_webhook an absolute secret_file), declaring the
 * params the events give a run (release_path, release_digest, release_id,
 * file_path, file_digest: empty unless the file declares them) and freeing
 * it all. Whether an on_publish names a DAG that exists cannot be known
 * here (DAGs load independently): `cairn validate` warns about it when it
 * checks the files together.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag_int.h"
#include "util.h"

static const char *const event_kinds[] = {"on_publish", "on_file", "on_webhook", NULL};
static const char *const cond_keys[] = {"on_publish", "on_file", "on_webhook", "all", "any", NULL};
static const char *const file_keys[] = {"path", "pattern", "settle", NULL};
static const char *const webhook_keys[] = {"secret_file", NULL};

const char *
dag_event_kind_name(enum dag_event_kind k)
{
    return k <= DAG_EVENT_WEBHOOK ? event_kinds[k] : "?";
}

bool
dag_has_event(const struct dag *d, enum dag_event_kind k)
{
    for (size_t i = 0; i < d->nconds; i++)
        for (size_t j = 0; j < d->conds[i].nevents; j++)
            if (d->conds[i].events[j].kind == k)
                return true;
    return false;
}

static void
event_fini(struct dag_event *e)
{
    free(e->dag);
    free(e->task);
    free(e->path);
    free(e->pattern);
    free(e->secret_file);
}

void
dag__conds_free(struct dag_event_cond *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < c[i].nevents; j++)
            event_fini(&c[i].events[j]);
        free(c[i].events);
    }
    free(c);
}

static int
valid_abs_path(const char *p)
{
    if (p[0] != '/')
        return 0;
    for (const char *s = p; *s; s++) {
        if (s[0] == '/' && s[1] == '/')
            return 0;
        if (s[0] == '/' && s[1] == '.' &&
            (s[2] == '/' || !s[2] || (s[2] == '.' && (s[3] == '/' || !s[3]))))
            return 0;
    }
    return 1;
}

static int
parse_publish(struct dag__loader *l, const struct ynode *v, struct dag_event *e)
{
    char *ref = NULL;
    if (dag__get_str(l, v, "on_publish", &ref))
        return -1;
    char *slash = strchr(ref, '/');
    if (!slash || strchr(slash + 1, '/')) {
        dag__nerr(l, v, "bad-trigger",
                  "name the DAG and its publishing task: `on_publish: features/build`",
                  "'on_publish' must be DAG/TASK, got '%s'", ref);
        free(ref);
        return -1;
    }
    *slash = '\0';
    if (!dag__valid_name(ref, 0) || !dag__valid_name(slash + 1, 0)) {
        dag__nerr(l, v, "bad-trigger",
                  "DAG and task names use lower-case letters, digits, '_' and '-'",
                  "'on_publish': '%s/%s' is not a DAG/TASK name", ref, slash + 1);
        free(ref);
        return -1;
    }
    if (l->d->name && !strcmp(ref, l->d->name)) {
        dag__nerr(l, v, "bad-trigger", "a run of this DAG would start the next one, for ever",
                  "'on_publish' names this DAG itself ('%s')", ref);
        free(ref);
        return -1;
    }
    e->dag = xstrdup(ref);
    e->task = xstrdup(slash + 1);
    free(ref);
    return 0;
}

static int
parse_file(struct dag__loader *l, const struct ynode *v, struct dag_event *e)
{
    if (v->type == YNODE_SCALAR && !v->is_null) {
        if (dag__get_str(l, v, "on_file", &e->path))
            return -1;
    } else {
        if (dag__expect(l, v, YNODE_MAP, "on_file"))
            return -1;
        dag__check_keys(l, v, file_keys, "on_file", 0);
        const struct ynode *n;
        if ((n = ynode_get(v, "path", NULL))) {
            if (dag__get_str(l, n, "path", &e->path))
                return -1;
        } else {
            dag__nerr(l, v, "missing-key", "on_file: {path: /data/incoming, pattern: \"*.csv\"}",
                      "'on_file' needs 'path' (the folder to watch)");
            return -1;
        }
        if ((n = ynode_get(v, "pattern", NULL))) {
            if (dag__get_str(l, n, "pattern", &e->pattern))
                return -1;
            if (!e->pattern[0] || strchr(e->pattern, '/')) {
                dag__nerr(l, n, "bad-trigger", "a pattern of file names, such as \"*.csv\"",
                          "'pattern' must be a non-empty file name pattern without '/'");
                return -1;
            }
        }
        if ((n = ynode_get(v, "settle", NULL)) && dag__get_duration(l, n, "settle", &e->settle_ms))
            return -1;
    }
    if (!valid_abs_path(e->path)) {
        const struct ynode *pn = v->type == YNODE_MAP ? ynode_get(v, "path", NULL) : v;
        dag__nerr(l, pn, "bad-trigger", "an absolute folder such as /data/incoming",
                  "'on_file' path '%s' must be absolute, without '.', '..' or '//'", e->path);
        return -1;
    }
    return 0;
}

static int
parse_webhook(struct dag__loader *l, const struct ynode *v, struct dag_event *e)
{
    if (dag__expect(l, v, YNODE_MAP, "on_webhook"))
        return -1;
    dag__check_keys(l, v, webhook_keys, "on_webhook", 0);
    const struct ynode *n = ynode_get(v, "secret_file", NULL);
    if (!n) {
        dag__nerr(l, v, "missing-key", "on_webhook: {secret_file: /etc/cairn/hook.secret}",
                  "'on_webhook' needs 'secret_file' (the HMAC key senders sign with)");
        return -1;
    }
    if (dag__get_str(l, n, "secret_file", &e->secret_file))
        return -1;
    if (!valid_abs_path(e->secret_file)) {
        dag__nerr(l, n, "bad-trigger", NULL, "'secret_file' '%s' must be an absolute path",
                  e->secret_file);
        return -1;
    }
    return 0;
}

/* One event: a mapping {KIND: VALUE}. 0 and *e filled, or -1 (reported). */
static int
parse_event(struct dag__loader *l, const struct ynode *item, struct dag_event *e, int in_group)
{
    memset(e, 0, sizeof(*e));
    if (item->type != YNODE_MAP || item->n != 1) {
        dag__nerr(l, item, "bad-trigger",
                  "each trigger is one of `on_publish: DAG/TASK`, `on_file: {path: ...}`, "
                  "`on_webhook: {secret_file: ...}`",
                  "a trigger must be a mapping with one key, got %s",
                  item->type == YNODE_MAP ? "a mapping of several keys" : ynode_kind(item));
        return -1;
    }
    const struct ynode *k = item->keys[0], *v = item->vals[0];
    e->line = v->line;
    e->col = v->col;
    e->settle_ms = DAG_DEFAULT_SETTLE_MS;
    int rc = -1;
    if (!strcmp(k->str, "on_publish")) {
        e->kind = DAG_EVENT_PUBLISH;
        rc = parse_publish(l, v, e);
    } else if (!strcmp(k->str, "on_file")) {
        e->kind = DAG_EVENT_FILE;
        rc = parse_file(l, v, e);
        if (rc == 0 && !e->pattern)
            e->pattern = xstrdup("*");
    } else if (!strcmp(k->str, "on_webhook")) {
        e->kind = DAG_EVENT_WEBHOOK;
        rc = parse_webhook(l, v, e);
    } else if (in_group && (!strcmp(k->str, "all") || !strcmp(k->str, "any"))) {
        dag__nerr(l, k, "bad-trigger", "list the events of `all:` one by one",
                  "'%s' cannot be nested inside `all:`", k->str);
    } else {
        char *hint = dag__suggest(k->str, in_group ? event_kinds : cond_keys, 0);
        dag__nerr(l, k, "unknown-key", hint, "unknown trigger '%s'", k->str);
        free(hint);
    }
    if (rc)
        event_fini(e);
    return rc;
}

static void
add_cond(struct dag *d, size_t *cap, bool all, struct dag_event *ev, size_t n)
{
    xgrow((void **)&d->conds, cap, d->nconds + 1, sizeof(*d->conds));
    struct dag_event_cond *c = &d->conds[d->nconds++];
    c->all = all;
    c->events = ev;
    c->nevents = n;
}

/* `all: [...]` (item is that mapping's value). */
static void
parse_all(struct dag__loader *l, const struct ynode *list, size_t *cap)
{
    if (dag__expect(l, list, YNODE_SEQ, "all"))
        return;
    if (list->n == 0) {
        dag__nerr(l, list, "bad-trigger", NULL, "'all' needs at least one trigger");
        return;
    }
    struct dag_event *ev = xcalloc(list->n, sizeof(*ev));
    size_t n = 0;
    int bad = 0;
    for (size_t i = 0; i < list->n; i++) {
        if (parse_event(l, list->vals[i], &ev[n], 1) == 0)
            n++;
        else
            bad = 1;
    }
    if (bad || n == 0) {
        for (size_t i = 0; i < n; i++)
            event_fini(&ev[i]);
        free(ev);
        return;
    }
    add_cond(l->d, cap, true, ev, n);
}

/* One item of the "any of" list. */
static void
parse_item(struct dag__loader *l, const struct ynode *item, size_t *cap)
{
    if (item->type == YNODE_MAP && item->n == 1 && !strcmp(item->keys[0]->str, "all")) {
        parse_all(l, item->vals[0], cap);
        return;
    }
    if (item->type == YNODE_MAP && item->n == 1 && !strcmp(item->keys[0]->str, "any")) {
        const struct ynode *list = item->vals[0];
        if (dag__expect(l, list, YNODE_SEQ, "any") == 0)
            for (size_t i = 0; i < list->n; i++)
                parse_item(l, list->vals[i], cap);
        return;
    }
    struct dag_event *ev = xcalloc(1, sizeof(*ev));
    if (parse_event(l, item, ev, 0) != 0) {
        free(ev);
        return;
    }
    add_cond(l->d, cap, false, ev, 1);
}

/* A param an event gives a run: declared (empty) unless the file did. */
static void
declare_param(struct dag *d, const char *name)
{
    if (dag_param_find(d, name))
        return;
    d->params = xrealloc(d->params, (d->nparams + 1) * sizeof(*d->params));
    struct dag_param *p = &d->params[d->nparams++];
    memset(p, 0, sizeof(*p));
    p->name = xstrdup(name);
    p->value = xstrdup("");
}

void
dag__parse_trigger(struct dag__loader *l, const struct ynode *n)
{
    size_t cap = 0;
    if (n->type == YNODE_SCALAR && n->is_null)
        return;
    if (n->type == YNODE_SEQ) {
        for (size_t i = 0; i < n->n; i++)
            parse_item(l, n->vals[i], &cap);
    } else if (n->type == YNODE_MAP) {
        parse_item(l, n, &cap);
    } else {
        dag__nerr(l, n, "wrong-type", "a list of triggers, e.g. `- on_publish: features/build`",
                  "'trigger' must be a list or a mapping, got %s", ynode_kind(n));
        return;
    }
    struct dag *d = l->d;
    if (dag_has_event(d, DAG_EVENT_PUBLISH)) {
        declare_param(d, DAG_PARAM_RELEASE_PATH);
        declare_param(d, DAG_PARAM_RELEASE_DIGEST);
        declare_param(d, DAG_PARAM_RELEASE_ID);
    }
    if (dag_has_event(d, DAG_EVENT_FILE)) {
        declare_param(d, DAG_PARAM_FILE_PATH);
        declare_param(d, DAG_PARAM_FILE_DIGEST);
    }
}
