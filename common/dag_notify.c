/* dag_notify.c - `notify:` and `deadline:` of a DAG and of its tasks
 * (docs/dag-yaml.md, "Notifications and deadlines").
 *
 * A `notify:` is a list of entries, each with the events it listens to
 * (`on:`), exactly one target (`webhook:` with an optional `secret_file:`,
 * or `command:`) and, for metric_regression, `metric: {task, name, drop}`.
 * A `deadline:` is `{after_start: DURATION}` or, on a DAG only,
 * `{after_logical_date: DURATION}`. Everything is checked here at load
 * time: event names (with a suggestion), URLs (libcurl's parser), that a
 * secret file can be read, that a metric's task exists and declares
 * metrics. Metric tasks are resolved once every task is known
 * (dag__resolve_notify).
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dag_int.h"
#include "util.h"

static const char *const event_names[DAG_NEVENTS] = {
    "failure", "retry", "success", "deadline_missed", "metric_regression",
};

static const char *const notify_keys[] = {"command",     "metric",  "on",
                                          "secret_file", "webhook", NULL};
static const char *const metric_keys[] = {"drop", "name", "task", NULL};
static const char *const deadline_keys[] = {"after_logical_date", "after_start", NULL};
static const char *const task_deadline_keys[] = {"after_start", NULL};

const char *
dag_event_name(unsigned ev)
{
    for (unsigned i = 0; i < DAG_NEVENTS; i++)
        if (ev == (1u << i))
            return event_names[i];
    return "?";
}

unsigned
dag_event_parse(const char *name)
{
    for (unsigned i = 0; i < DAG_NEVENTS; i++)
        if (!strcmp(name, event_names[i]))
            return 1u << i;
    return 0;
}

static void
parse_event(struct dag__loader *l, const struct ynode *n, struct dag_notify *e)
{
    if (dag__expect(l, n, YNODE_SCALAR, "notify.on"))
        return;
    unsigned ev = dag_event_parse(n->str);
    if (!ev) {
        char *hint = dag__suggest(n->str, event_names, DAG_NEVENTS);
        dag__nerr(l, n, "unknown-event",
                  hint ? hint
                       : "events are failure, retry, success, deadline_missed, metric_regression",
                  "unknown event '%s' in 'notify.on'", n->str);
        free(hint);
        return;
    }
    e->on |= ev;
}

/* http:// or https:// with a host, as libcurl reads it. */
static void
check_url(struct dag__loader *l, const struct ynode *n, const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int bad = !u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
              curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
              curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host;
    for (const char *p = url; !bad && *p; p++)
        bad = (unsigned char)*p <= ' ';
    if (bad)
        dag__nerr(l, n, "bad-url", "write it as http://HOST[:PORT]/PATH",
                  "'webhook': '%s' is not a URL", url);
    else if (strcmp(scheme, "http") && strcmp(scheme, "https"))
        dag__nerr(l, n, "bad-url", "use http:// or https://",
                  "'webhook': scheme '%s' is not http or https", scheme);
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
}

static void
parse_metric(struct dag__loader *l, const struct ynode *n, struct dag_notify *e, long self)
{
    if (dag__expect(l, n, YNODE_MAP, "notify.metric"))
        return;
    dag__check_keys(l, n, metric_keys, "notify.metric", 0);
    const struct ynode *task = ynode_get(n, "task", NULL), *name = ynode_get(n, "name", NULL),
                       *drop = ynode_get(n, "drop", NULL);
    if (task) {
        dag__get_str(l, task, "notify.metric.task", &e->metric_task);
    } else if (self >= 0) {
        e->metric_task = xstrdup(l->d->tasks[self].name);
    } else {
        dag__nerr(l, n, "missing-key", "name the task whose metric is watched",
                  "'notify.metric' needs a 'task'");
    }
    if (!name)
        dag__nerr(l, n, "missing-key", NULL, "'notify.metric' needs a 'name'");
    else if (dag__get_str(l, name, "notify.metric.name", &e->metric_name) == 0 &&
             !dag__valid_ident(e->metric_name))
        dag__nerr(l, name, "bad-name", NULL, "metric name '%s' is not an identifier",
                  e->metric_name);
    if (!drop)
        dag__nerr(l, n, "missing-key", "how much the metric may fall, e.g. `drop: 0.02`",
                  "'notify.metric' needs a 'drop'");
    else
        dag__get_number(l, drop, "notify.metric.drop", 0, &e->metric_drop);
    if (task)
        e->line = task->line, e->col = task->col; /* for dag__resolve_notify's errors */
}

static void
parse_entry(struct dag__loader *l, const struct ynode *n, struct dag_notify *e, long self)
{
    e->line = n->line;
    e->col = n->col;
    if (dag__expect(l, n, YNODE_MAP, "notify entry"))
        return;
    dag__check_keys(l, n, notify_keys, "notify", 0);
    const struct ynode *on = ynode_get(n, "on", NULL), *hook = ynode_get(n, "webhook", NULL),
                       *secret = ynode_get(n, "secret_file", NULL),
                       *cmd = ynode_get(n, "command", NULL), *metric = ynode_get(n, "metric", NULL);
    if (!on) {
        dag__nerr(l, n, "missing-key", "e.g. `on: [failure, deadline_missed]`",
                  "a 'notify' entry needs 'on'");
    } else if (on->type == YNODE_SEQ) {
        if (on->n == 0)
            dag__nerr(l, on, "missing-key", NULL, "'notify.on' lists no event");
        for (size_t i = 0; i < on->n; i++)
            parse_event(l, on->vals[i], e);
    } else {
        parse_event(l, on, e);
    }
    if (!hook && !cmd)
        dag__nerr(l, n, "missing-key", "add `webhook: URL` or `command: [program, args...]`",
                  "a 'notify' entry needs a 'webhook' or a 'command'");
    if (hook && cmd)
        dag__nerr(l, cmd, "conflicting-keys", "write two entries, one for each",
                  "a 'notify' entry has either 'webhook' or 'command', not both");
    if (hook && dag__get_str(l, hook, "webhook", &e->webhook) == 0)
        check_url(l, hook, e->webhook);
    if (secret) {
        if (!hook)
            dag__nerr(l, secret, "conflicting-keys", NULL, "'secret_file' goes with 'webhook'");
        char *path = NULL;
        if (dag__get_str(l, secret, "secret_file", &path) == 0) {
            e->secret_file = dag_code_path(path, l->file);
            if (access(e->secret_file, R_OK) != 0)
                dag__nerr(l, secret, "missing-file", "the scheduler reads it for every delivery",
                          "'secret_file': cannot read %s: %s", e->secret_file, strerror(errno));
        }
        free(path);
    }
    if (cmd && dag__get_strlist(l, cmd, "notify.command", &e->command, &e->ncommand) == 0 &&
        e->ncommand == 0)
        dag__nerr(l, cmd, "missing-key", NULL, "'notify.command' is empty");
    if (metric) {
        parse_metric(l, metric, e, self);
        if (!(e->on & DAG_EV_METRIC_REGRESSION))
            dag__nerr(l, metric, "conflicting-keys", "add metric_regression to 'on'",
                      "'metric' is for the metric_regression event");
    } else if (e->on & DAG_EV_METRIC_REGRESSION) {
        dag__nerr(l, on, "missing-key",
                  "e.g. `metric: {task: evaluate, name: accuracy, drop: 0.02}`",
                  "metric_regression needs 'metric'");
    }
}

void
dag__parse_notify(struct dag__loader *l, const struct ynode *n, struct dag_notify **out,
                  size_t *nout, long self)
{
    if (n->type != YNODE_SEQ && n->type != YNODE_MAP) {
        dag__nerr(l, n, "wrong-type", "a list of entries: `- on: [failure]` ...",
                  "'notify' must be a list, got %s", ynode_kind(n));
        return;
    }
    size_t cnt = n->type == YNODE_SEQ ? n->n : 1;
    *out = xcalloc(cnt ? cnt : 1, sizeof(**out));
    for (size_t i = 0; i < cnt; i++) {
        parse_entry(l, n->type == YNODE_SEQ ? n->vals[i] : n, &(*out)[i], self);
        (*nout)++;
    }
}

void
dag__parse_deadline(struct dag__loader *l, const struct ynode *n, struct dag_deadline *out,
                    int task_level)
{
    if (dag__expect(l, n, YNODE_MAP, "deadline"))
        return;
    dag__check_keys(l, n, task_level ? task_deadline_keys : deadline_keys,
                    task_level ? "a task's deadline" : "deadline", 0);
    const struct ynode *st = ynode_get(n, "after_start", NULL),
                       *ld = task_level ? NULL : ynode_get(n, "after_logical_date", NULL);
    if (st && ld) {
        dag__nerr(l, ld, "conflicting-keys", NULL,
                  "'deadline' has either 'after_start' or 'after_logical_date'");
        return;
    }
    if (!st && !ld) {
        if (!n->n)
            dag__nerr(l, n, "missing-key",
                      task_level ? "e.g. `deadline: {after_start: 30m}`"
                                 : "e.g. `deadline: {after_start: 2h}`",
                      "'deadline' needs 'after_start'%s",
                      task_level ? "" : " or 'after_logical_date'");
        return;
    }
    int64_t ms = 0;
    if (dag__get_duration(l, st ? st : ld,
                          st ? "deadline.after_start" : "deadline.after_logical_date", &ms))
        return;
    if (ms <= 0) {
        dag__nerr(l, st ? st : ld, "bad-duration", NULL, "a deadline must be after 0s");
        return;
    }
    out->kind = st ? DAG_DEADLINE_AFTER_START : DAG_DEADLINE_AFTER_LOGICAL_DATE;
    out->ms = ms;
}

static void
resolve(struct dag__loader *l, struct dag_notify *e)
{
    if (!e->metric_task)
        return;
    size_t idx;
    if (!hmap_get(&l->tasks, e->metric_task, &idx)) {
        char *hint = dag__suggest_task(l, e->metric_task);
        dag__err(l, e->line, e->col, "unknown-task", hint, "'notify.metric': unknown task '%s'",
                 e->metric_task);
        free(hint);
        return;
    }
    const struct dag_task *t = &l->d->tasks[idx];
    e->metric_task_idx = idx;
    if (!t->metrics) {
        dag__err(l, e->line, e->col, "no-metrics", "give that task `metrics: FILE`",
                 "'notify.metric': task '%s' records no metrics", t->name);
        return;
    }
    if (t->nmetric_keys && e->metric_name) {
        size_t k;
        for (k = 0; k < t->nmetric_keys; k++)
            if (!strcmp(t->metric_keys[k], e->metric_name))
                break;
        if (k == t->nmetric_keys) {
            char *hint =
                dag__suggest(e->metric_name, (const char *const *)t->metric_keys, t->nmetric_keys);
            dag__err(l, e->line, e->col, "unknown-metric", hint,
                     "'notify.metric': task '%s' declares no metric '%s'", t->name, e->metric_name);
            free(hint);
        }
    }
}

void
dag__resolve_notify(struct dag__loader *l)
{
    struct dag *d = l->d;
    for (size_t i = 0; i < d->nnotify; i++)
        resolve(l, &d->notify[i]);
    for (size_t t = 0; t < d->ntasks; t++)
        for (size_t i = 0; i < d->tasks[t].nnotify; i++)
            resolve(l, &d->tasks[t].notify[i]);
}

void
dag__notify_free(struct dag_notify *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].webhook);
        free(v[i].secret_file);
        dag__strv_free(v[i].command, v[i].ncommand);
        free(v[i].metric_task);
        free(v[i].metric_name);
    }
    free(v);
}
