#include "dag.h"

#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cal.h"
#include "fs.h"
#include "err.h"
#include "expr.h"
#include "hmap.h"
#include "tmpl.h"
#include "tz.h"
#include "units.h"
#include "util.h"
#include "ynode.h"

#define DAG_FILE_MAX (64 * 1024 * 1024)

static const char *const dag_keys[] = {
    "catchup",  "code",     "dag",      "defaults",   "description",      "end_date",
    "max_active_runs", "max_active_tasks", "params", "schedule", "start_date",
    "tags",     "tasks",    "timezone",   NULL};

static const char *const task_keys[] = {
    "cache",   "command",     "env",     "image",       "inputs",
    "labels",  "max_retry_delay", "metrics", "needs", "network",
    "outputs", "priority",    "publish",   "resources", "retries",
    "retry_backoff", "retry_delay", "timeout", "trigger_rule", "when", NULL};

static const char *const resource_keys[] = {"cpus", "memory", "pids", NULL};
static const char *const metrics_keys[] = {"file", "keys", NULL};

static const char *const trigger_names[] = {"all_success", "all_done",   "all_failed",
                                            "one_success", "one_failed", "none_failed"};

struct loader {
    const char *file;
    struct diag_list *dl;
    struct dag *d;
    struct hmap tasks;       /* name -> index */
    struct ynode *defaults;  /* the `defaults:` mapping, or NULL */
    int quiet;               /* parsing inherited defaults: errors already reported */
    int *visit;              /* scratch for ancestor searches */
    int when_default_reported;
    int stamp;
};

static void
lerr(struct loader *l, int line, int col, const char *code, const char *hint, const char *fmt,
     ...) __attribute__((format(printf, 6, 7)));

static void
lerr(struct loader *l, int line, int col, const char *code, const char *hint, const char *fmt,
     ...)
{
    if (l->quiet)
        return;
    struct sb sb;
    va_list ap;
    sb_init(&sb);
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    diag_add(l->dl, DIAG_ERROR, l->file, line, col, code, hint, "%s", sb.buf ? sb.buf : "");
    sb_free(&sb);
}

#define NERR(l, node, code, hint, ...) lerr((l), (node)->line, (node)->col, code, hint, __VA_ARGS__)

/* Position of byte `off` inside a scalar, for errors inside a string. */
static void
scalar_pos(const struct ynode *n, int off, int *line, int *col)
{
    *line = n->line;
    *col = n->col;
    if (memchr(n->str, '\n', n->len))
        return; /* multi-line: point at the scalar itself */
    *col = n->col + off + (n->quoted ? 1 : 0);
}

/* "did you mean 'x'?" from a NULL-terminated list, or NULL. */
static char *
suggest(const char *word, const char *const *cands, size_t ncands)
{
    size_t best = (size_t)-1, cap = strlen(word) <= 3 ? 1 : (strlen(word) <= 6 ? 2 : 3);
    const char *pick = NULL;
    for (size_t i = 0; (ncands ? i < ncands : cands[i] != NULL); i++) {
        size_t dd = str_distance(word, cands[i], cap);
        if (dd <= cap && dd < best) {
            best = dd;
            pick = cands[i];
        }
    }
    return pick ? xasprintf("did you mean '%s'?", pick) : NULL;
}

static char *
suggest_task(struct loader *l, const char *word)
{
    size_t best = (size_t)-1, cap = strlen(word) <= 3 ? 1 : (strlen(word) <= 6 ? 2 : 3);
    const char *pick = NULL;
    for (size_t i = 0; i < l->d->ntasks; i++) {
        size_t dd = str_distance(word, l->d->tasks[i].name, cap);
        if (dd <= cap && dd < best) {
            best = dd;
            pick = l->d->tasks[i].name;
        }
    }
    return pick ? xasprintf("did you mean '%s'?", pick) : NULL;
}

static void
check_keys(struct loader *l, const struct ynode *map, const char *const *known, const char *where)
{
    for (size_t i = 0; i < map->n; i++) {
        const struct ynode *k = map->keys[i];
        int ok = 0;
        for (size_t j = 0; known[j]; j++)
            if (strcmp(k->str, known[j]) == 0)
                ok = 1;
        if (!ok) {
            char *hint = suggest(k->str, known, 0);
            NERR(l, k, "unknown-key", hint, "unknown key '%s' in %s", k->str, where);
            free(hint);
        }
    }
}

static int
expect(struct loader *l, const struct ynode *n, enum ynode_type t, const char *field)
{
    if (n->type == t && !(t == YNODE_SCALAR && n->is_null))
        return 0;
    const char *want = t == YNODE_SCALAR ? "a string" : t == YNODE_SEQ ? "a list" : "a mapping";
    NERR(l, n, "wrong-type", NULL, "'%s' must be %s, got %s", field, want, ynode_kind(n));
    return -1;
}

static int
get_str(struct loader *l, const struct ynode *n, const char *field, char **out)
{
    if (expect(l, n, YNODE_SCALAR, field))
        return -1;
    if (strlen(n->str) != n->len) {
        NERR(l, n, "wrong-type", NULL, "'%s' contains a NUL byte", field);
        return -1;
    }
    free(*out);
    *out = xstrdup(n->str);
    return 0;
}

static int
get_bool(struct loader *l, const struct ynode *n, const char *field, bool *out)
{
    if (n->type == YNODE_SCALAR && !n->quoted) {
        if (!strcmp(n->str, "true") || !strcmp(n->str, "True") || !strcmp(n->str, "TRUE")) {
            *out = true;
            return 0;
        }
        if (!strcmp(n->str, "false") || !strcmp(n->str, "False") || !strcmp(n->str, "FALSE")) {
            *out = false;
            return 0;
        }
    }
    if (n->type == YNODE_SCALAR && n->quoted) {
        NERR(l, n, "wrong-type", "write true or false without quotes",
             "'%s' must be true or false, got the quoted string \"%s\"", field, n->str);
        return -1;
    }
    NERR(l, n, "wrong-type", NULL, "'%s' must be true or false, got %s%s%s%s", field,
         n->type == YNODE_SCALAR ? "'" : "", n->type == YNODE_SCALAR ? n->str : ynode_kind(n),
         n->type == YNODE_SCALAR ? "'" : "", "");
    return -1;
}

static int
parse_int(const char *s, long long *out)
{
    char *end;
    if (!*s)
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static int
get_int(struct loader *l, const struct ynode *n, const char *field, long long lo, long long hi,
        long long *out)
{
    long long v;
    if (n->type != YNODE_SCALAR || n->is_null || n->quoted || parse_int(n->str, &v)) {
        NERR(l, n, "wrong-type", NULL, "'%s' must be a whole number, got %s%s%s", field,
             n->type == YNODE_SCALAR && !n->is_null ? "'" : "",
             n->type == YNODE_SCALAR && !n->is_null ? n->str : ynode_kind(n),
             n->type == YNODE_SCALAR && !n->is_null ? "'" : "");
        return -1;
    }
    if (v < lo || v > hi) {
        if (v < 0 && lo >= 0)
            NERR(l, n, "out-of-range", NULL, "'%s' must not be negative, got %lld", field, v);
        else
            NERR(l, n, "out-of-range", NULL, "'%s' must be between %lld and %lld, got %lld",
                 field, lo, hi, v);
        return -1;
    }
    *out = v;
    return 0;
}

static int
parse_number(const char *s, double *out)
{
    char *end;
    if (!*s)
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return -1;
    /* strtod takes hex, inf, nan: a YAML user means decimal */
    for (const char *p = s; *p; p++)
        if (!strchr("0123456789+-.eE", *p))
            return -1;
    *out = v;
    return 0;
}

static int
get_number(struct loader *l, const struct ynode *n, const char *field, double lo, double *out)
{
    double v;
    if (n->type != YNODE_SCALAR || n->is_null || n->quoted || parse_number(n->str, &v)) {
        NERR(l, n, "wrong-type", NULL, "'%s' must be a number, got %s", field,
             n->type == YNODE_SCALAR && !n->is_null ? n->str : ynode_kind(n));
        return -1;
    }
    if (v < lo) {
        NERR(l, n, "out-of-range", NULL, "'%s' must be at least %g, got %g", field, lo, v);
        return -1;
    }
    *out = v;
    return 0;
}

static int
get_duration(struct loader *l, const struct ynode *n, const char *field, int64_t *out)
{
    char msg[256];
    if (expect(l, n, YNODE_SCALAR, field))
        return -1;
    if (units_parse_duration(n->str, out, msg, sizeof(msg)) != 0) {
        NERR(l, n, "bad-duration", "durations look like 30s, 10m, 2h, 1h30m, 1d", "'%s': %s",
             field, msg);
        return -1;
    }
    return 0;
}

static int
get_size(struct loader *l, const struct ynode *n, const char *field, int64_t *out)
{
    char msg[256];
    if (expect(l, n, YNODE_SCALAR, field))
        return -1;
    if (units_parse_size(n->str, out, msg, sizeof(msg)) != 0) {
        NERR(l, n, "bad-size", "sizes look like 512Mi, 1Gi, 500M", "'%s': %s", field, msg);
        return -1;
    }
    return 0;
}

static int
valid_name(const char *s, int allow_upper)
{
    size_t n = strlen(s);
    if (n == 0 || n > DAG_NAME_MAX)
        return 0;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              (allow_upper && c >= 'A' && c <= 'Z')))
            return 0;
    }
    return 1;
}

static int
valid_ident(const char *s)
{
    if (!*s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return 0;
    return 1;
}

static int
valid_filename(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255 || !strcmp(s, ".") || !strcmp(s, ".."))
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return 0;
    return 1;
}

static void
strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void
kv_free(struct dag_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

static int
kv_cmp(const void *a, const void *b)
{
    return strcmp(((const struct dag_kv *)a)->key, ((const struct dag_kv *)b)->key);
}

/* Merge a mapping of scalars into kv (later wins). */
static void
get_kv_map(struct loader *l, const struct ynode *n, const char *field, struct dag_kv **kv,
           size_t *nkv, int env_names)
{
    if (expect(l, n, YNODE_MAP, field))
        return;
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *k = n->keys[i], *v = n->vals[i];
        if (env_names) {
            if (!valid_ident(k->str)) {
                NERR(l, k, "bad-name", NULL,
                     "environment variable name '%s' must match [A-Za-z_][A-Za-z0-9_]*",
                     k->str);
                continue;
            }
            if (strncmp(k->str, "CAIRN_", 6) == 0) {
                NERR(l, k, "reserved-name", NULL,
                     "environment variable '%s': names starting with CAIRN_ are reserved",
                     k->str);
                continue;
            }
        } else if (!*k->str) {
            NERR(l, k, "bad-name", NULL, "empty key in '%s'", field);
            continue;
        }
        if (v->type != YNODE_SCALAR || (v->is_null)) {
            NERR(l, v, "wrong-type", NULL, "'%s.%s' must be a string, got %s", field, k->str,
                 ynode_kind(v));
            continue;
        }
        size_t j;
        for (j = 0; j < *nkv; j++)
            if (!strcmp((*kv)[j].key, k->str))
                break;
        if (j == *nkv) {
            *kv = xrealloc(*kv, (*nkv + 1) * sizeof(**kv));
            (*kv)[j].key = xstrdup(k->str);
            (*kv)[j].value = NULL;
            (*nkv)++;
        }
        free((*kv)[j].value);
        (*kv)[j].value = xstrdup(v->str);
    }
}

static int
get_strlist(struct loader *l, const struct ynode *n, const char *field, char ***out, size_t *nout)
{
    if (n->type == YNODE_SCALAR && !n->is_null) {
        NERR(l, n, "wrong-type", "write a list, e.g. [a, b]", "'%s' must be a list, got a string",
             field);
        return -1;
    }
    if (expect(l, n, YNODE_SEQ, field))
        return -1;
    char **v = xcalloc(n->n + 1, sizeof(*v));
    size_t k = 0;
    int bad = 0;
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *it = n->vals[i];
        if (it->type != YNODE_SCALAR || it->is_null) {
            NERR(l, it, "wrong-type", NULL, "items of '%s' must be strings, got %s", field,
                 ynode_kind(it));
            bad = 1;
            continue;
        }
        v[k++] = xstrdup(it->str);
    }
    strv_free(*out, *nout);
    *out = v;
    *nout = k;
    return bad ? -1 : 0;
}

/* Nodes of a task (or of `defaults:`) kept for the checks that need the
 * whole DAG: dependencies, inputs, templates, `when`. */
struct task_src {
    const struct ynode *map;
    const struct ynode *needs;   /* seq */
    const struct ynode *inputs;  /* map */
    const struct ynode *when;    /* scalar */
    const struct ynode *command; /* seq */
    const struct ynode *env;     /* map: only the task's own */
    const struct ynode *metrics_keys; /* seq */
    const struct ynode *publish; /* seq */
    int when_inherited, command_inherited, inputs_inherited, needs_inherited;
};

static void
parse_metrics(struct loader *l, const struct ynode *n, struct dag_task *t, struct task_src *src)
{
    if (n->type == YNODE_MAP) {
        check_keys(l, n, metrics_keys, "metrics");
        const struct ynode *f = ynode_get(n, "file", NULL), *k = ynode_get(n, "keys", NULL);
        if (!f) {
            NERR(l, n, "missing-key", NULL, "'metrics' needs a 'file'");
            return;
        }
        if (get_str(l, f, "metrics.file", &t->metrics))
            return;
        if (k && get_strlist(l, k, "metrics.keys", &t->metric_keys, &t->nmetric_keys) == 0)
            src->metrics_keys = k;
        n = f;
    } else if (get_str(l, n, "metrics", &t->metrics)) {
        return;
    }
    if (!valid_filename(t->metrics)) {
        NERR(l, n, "bad-name", NULL,
             "metrics file '%s' must be a plain file name under /outputs", t->metrics);
        free(t->metrics);
        t->metrics = NULL;
    }
}

static void
parse_resources(struct loader *l, const struct ynode *n, struct dag_task *t)
{
    if (expect(l, n, YNODE_MAP, "resources"))
        return;
    check_keys(l, n, resource_keys, "resources");
    const struct ynode *v;
    if ((v = ynode_get(n, "cpus", NULL))) {
        double c;
        if (get_number(l, v, "resources.cpus", 0, &c) == 0) {
            if (c <= 0 || c > 1024)
                NERR(l, v, "out-of-range", NULL, "'resources.cpus' must be above 0, got %g", c);
            else
                t->cpus = c;
        }
    }
    if ((v = ynode_get(n, "memory", NULL))) {
        int64_t m;
        if (get_size(l, v, "resources.memory", &m) == 0) {
            if (m < 4 * 1024 * 1024)
                NERR(l, v, "out-of-range", NULL, "'resources.memory' must be at least 4Mi");
            else
                t->memory_bytes = m;
        }
    }
    if ((v = ynode_get(n, "pids", NULL))) {
        long long p;
        if (get_int(l, v, "resources.pids", 1, 1000000, &p) == 0)
            t->pids = p;
    }
}

/* Apply one field from node n to task t. */
static void
apply_field(struct loader *l, const char *key, const struct ynode *n, struct dag_task *t,
            struct task_src *src, int inherited)
{
    long long iv;
    if (!strcmp(key, "command")) {
        if (get_strlist(l, n, "command", &t->command, &t->ncommand) == 0) {
            if (t->ncommand == 0)
                NERR(l, n, "empty-command", NULL, "'command' must not be empty");
            src->command = n;
            src->command_inherited = inherited;
        }
    } else if (!strcmp(key, "image")) {
        if (get_str(l, n, "image", &t->image) == 0 && strcmp(t->image, "host") != 0 &&
            t->image[0] != '/')
            NERR(l, n, "bad-image", "use 'host' or an absolute path such as /srv/rootfs/py311",
                 "image '%s' must be 'host' or an absolute path to a root filesystem folder",
                 t->image);
    } else if (!strcmp(key, "env")) {
        get_kv_map(l, n, "env", &t->env, &t->nenv, 1);
        if (!inherited)
            src->env = n;
    } else if (!strcmp(key, "needs")) {
        if (n->type == YNODE_SEQ || n->type == YNODE_SCALAR) {
            char **tmp = NULL;
            size_t ntmp = 0;
            if (get_strlist(l, n, "needs", &tmp, &ntmp) == 0) {
                src->needs = n;
                src->needs_inherited = inherited;
            }
            strv_free(tmp, ntmp);
        } else {
            expect(l, n, YNODE_SEQ, "needs");
        }
    } else if (!strcmp(key, "trigger_rule")) {
        char *s = NULL;
        if (get_str(l, n, "trigger_rule", &s) == 0) {
            size_t i;
            for (i = 0; i < sizeof(trigger_names) / sizeof(*trigger_names); i++)
                if (!strcmp(s, trigger_names[i]))
                    break;
            if (i == sizeof(trigger_names) / sizeof(*trigger_names)) {
                char *hint = suggest(s, trigger_names, 6);
                NERR(l, n, "bad-trigger-rule", hint,
                     "unknown trigger_rule '%s' (one of all_success, all_done, all_failed, "
                     "one_success, one_failed, none_failed)",
                     s);
                free(hint);
            } else {
                t->trigger_rule = (enum dag_trigger)i;
            }
        }
        free(s);
    } else if (!strcmp(key, "retries")) {
        if (get_int(l, n, "retries", 0, 100, &iv) == 0)
            t->retries = (int)iv;
    } else if (!strcmp(key, "retry_delay")) {
        get_duration(l, n, "retry_delay", &t->retry_delay_ms);
    } else if (!strcmp(key, "retry_backoff")) {
        get_number(l, n, "retry_backoff", 1.0, &t->retry_backoff);
    } else if (!strcmp(key, "max_retry_delay")) {
        get_duration(l, n, "max_retry_delay", &t->max_retry_delay_ms);
    } else if (!strcmp(key, "timeout")) {
        if (get_duration(l, n, "timeout", &t->timeout_ms) == 0 && t->timeout_ms == 0)
            NERR(l, n, "out-of-range", "leave 'timeout' out for no time limit",
                 "'timeout' must be above zero");
    } else if (!strcmp(key, "resources")) {
        parse_resources(l, n, t);
    } else if (!strcmp(key, "inputs")) {
        if (expect(l, n, YNODE_MAP, "inputs") == 0) {
            src->inputs = n;
            src->inputs_inherited = inherited;
        }
    } else if (!strcmp(key, "outputs")) {
        if (get_strlist(l, n, "outputs", &t->outputs, &t->noutputs) == 0) {
            for (size_t i = 0; i < n->n; i++) {
                if (!valid_filename(n->vals[i]->str))
                    NERR(l, n->vals[i], "bad-name", NULL,
                         "output '%s' must be a plain file name ([A-Za-z0-9_.-], no '/')",
                         n->vals[i]->str);
                for (size_t j = 0; j < i; j++)
                    if (!strcmp(n->vals[i]->str, n->vals[j]->str))
                        NERR(l, n->vals[i], "duplicate-output", NULL,
                             "output '%s' is listed twice", n->vals[i]->str);
            }
        }
    } else if (!strcmp(key, "metrics")) {
        parse_metrics(l, n, t, src);
    } else if (!strcmp(key, "when")) {
        if (get_str(l, n, "when", &t->when) == 0) {
            src->when = n;
            src->when_inherited = inherited;
        }
    } else if (!strcmp(key, "cache")) {
        get_bool(l, n, "cache", &t->cache);
    } else if (!strcmp(key, "publish")) {
        if (get_strlist(l, n, "publish", &t->publish, &t->npublish) == 0)
            src->publish = n;
    } else if (!strcmp(key, "priority")) {
        if (get_int(l, n, "priority", -1000000, 1000000, &iv) == 0)
            t->priority = (int)iv;
    } else if (!strcmp(key, "labels")) {
        get_kv_map(l, n, "labels", &t->labels, &t->nlabels, 0);
    } else if (!strcmp(key, "network")) {
        get_bool(l, n, "network", &t->network);
    }
}

static void
task_init(struct dag_task *t)
{
    memset(t, 0, sizeof(*t));
    t->image = xstrdup("host");
    t->trigger_rule = DAG_TRIGGER_ALL_SUCCESS;
    t->retry_delay_ms = DAG_DEFAULT_RETRY_DELAY_MS;
    t->retry_backoff = 1.0;
    t->max_retry_delay_ms = DAG_DEFAULT_MAX_RETRY_DELAY_MS;
}

static void
task_fini(struct dag_task *t)
{
    free(t->name);
    strv_free(t->command, t->ncommand);
    free(t->image);
    kv_free(t->env, t->nenv);
    free(t->needs);
    free(t->downstream);
    for (size_t i = 0; i < t->ninputs; i++) {
        free(t->inputs[i].name);
        free(t->inputs[i].task);
        free(t->inputs[i].file);
    }
    free(t->inputs);
    strv_free(t->outputs, t->noutputs);
    free(t->metrics);
    strv_free(t->metric_keys, t->nmetric_keys);
    free(t->when);
    expr_free(t->when_expr);
    kv_free(t->labels, t->nlabels);
    strv_free(t->publish, t->npublish);
}

/* `publish:` names outputs of the task, each once; the scheduler copies
 * them into the models folder next to its record (publish.json). */
static void
check_publish(struct loader *l, const struct dag_task *t, const struct ynode *n)
{
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *it = n->vals[i];
        if (it->type != YNODE_SCALAR || it->is_null)
            continue; /* reported by get_strlist */
        size_t j;
        for (j = 0; j < t->noutputs; j++)
            if (!strcmp(t->outputs[j], it->str))
                break;
        if (j == t->noutputs) {
            char *hint = t->noutputs
                             ? suggest(it->str, (const char *const *)t->outputs, t->noutputs)
                             : NULL;
            if (!hint)
                hint = xasprintf("list '%s' in the 'outputs' of '%s' too", it->str,
                                 t->name ? t->name : "the task");
            NERR(l, it, "publish-not-output", hint,
                 "'publish' names '%s', which is not an output of %s%s%s", it->str,
                 t->name ? "task '" : "", t->name ? t->name : "the task", t->name ? "'" : "");
            free(hint);
            continue;
        }
        if (!strcmp(it->str, "publish.json")) {
            NERR(l, it, "bad-name", "rename the output",
                 "'publish.json' cannot be published: it is the name of the record Cairn "
                 "writes next to the files");
            continue;
        }
        for (j = 0; j < i; j++)
            if (n->vals[j]->type == YNODE_SCALAR && !strcmp(n->vals[j]->str, it->str))
                NERR(l, it, "duplicate-output", NULL, "'publish' lists '%s' twice", it->str);
    }
}

/* Fill a task from its mapping, with `defaults:` under it. */
static void
parse_task(struct loader *l, const struct ynode *map, struct dag_task *t, struct task_src *src,
           int is_defaults)
{
    memset(src, 0, sizeof(*src));
    src->map = map;
    check_keys(l, map, task_keys, is_defaults ? "defaults" : "task");
    for (size_t i = 0; task_keys[i]; i++) {
        const char *key = task_keys[i];
        const struct ynode *own = ynode_get(map, key, NULL);
        const struct ynode *def = (!is_defaults && l->defaults) ? ynode_get(l->defaults, key, NULL)
                                                                : NULL;
        int merges = !strcmp(key, "env") || !strcmp(key, "labels") || !strcmp(key, "resources");
        if (def && (!own || merges)) {
            int q = l->quiet;
            l->quiet = 1; /* reported once, when `defaults:` was checked */
            apply_field(l, key, def, t, src, 1);
            l->quiet = q;
        }
        if (own)
            apply_field(l, key, own, t, src, 0);
    }
    /* a present but invalid command was reported already */
    if (!is_defaults && !t->command && !ynode_get(map, "command", NULL) &&
        !(l->defaults && ynode_get(l->defaults, "command", NULL)))
        lerr(l, t->line, t->col, "missing-command", "every task needs `command: [program, args...]`",
             "task '%s' has no 'command'", t->name);
    if (t->max_retry_delay_ms < t->retry_delay_ms)
        t->max_retry_delay_ms = t->retry_delay_ms;
    /* the metrics file is an output even if `outputs` does not list it */
    if (t->metrics) {
        size_t i;
        for (i = 0; i < t->noutputs; i++)
            if (!strcmp(t->outputs[i], t->metrics))
                break;
        if (i == t->noutputs) {
            t->outputs = xrealloc(t->outputs, (t->noutputs + 2) * sizeof(*t->outputs));
            t->outputs[t->noutputs++] = xstrdup(t->metrics);
            t->outputs[t->noutputs] = NULL;
        }
    }
    if (!is_defaults && src->publish && src->publish->type == YNODE_SEQ)
        check_publish(l, t, src->publish);
}

/* Is `anc` an ancestor of task `t`? */
static int
is_ancestor(struct loader *l, size_t anc, size_t t)
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

static void
resolve_needs(struct loader *l, size_t ti, const struct task_src *src)
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
            char *hint = suggest_task(l, it->str);
            lerr(l, it->line, it->col, "unknown-task", hint,
                 "task '%s' needs unknown task '%s'", t->name, it->str);
            free(hint);
            continue;
        }
        if (idx == ti) {
            lerr(l, it->line, it->col, "self-dependency", NULL, "task '%s' needs itself",
                 t->name);
            continue;
        }
        int dup = 0;
        for (size_t j = 0; j < t->nneeds; j++)
            if (t->needs[j] == idx)
                dup = 1;
        if (dup) {
            lerr(l, it->line, it->col, "duplicate-need", NULL,
                 "task '%s' lists '%s' in 'needs' twice", t->name, it->str);
            continue;
        }
        t->needs[t->nneeds++] = idx;
    }
}

/* Kahn's algorithm; on a cycle, walk it and name its tasks. */
static int
order_tasks(struct loader *l, struct task_src *srcs)
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
                if (nn->vals[j]->type == YNODE_SCALAR && !strcmp(nn->vals[j]->str, d->tasks[up].name)) {
                    line = nn->vals[j]->line;
                    col = nn->vals[j]->col;
                }
        lerr(l, line, col, "cycle", "a DAG may not loop; remove one of these dependencies",
             "dependency cycle: %s", sb.buf);
        sb_free(&sb);
        free(pos);
        free(path);
        rc = -1;
    }
    free(indeg);
    return rc;
}

static void
resolve_inputs(struct loader *l, size_t ti, const struct task_src *src)
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
        const struct ynode *k = n->keys[i], *v = n->vals[i];
        if (!valid_filename(k->str)) {
            NERR(l, k, "bad-name", NULL, "input name '%s' must be a plain file name", k->str);
            continue;
        }
        if (v->type != YNODE_SCALAR || v->is_null) {
            NERR(l, v, "wrong-type", "write inputs as `name: task/file`",
                 "input '%s' must be a string 'task/file', got %s", k->str, ynode_kind(v));
            continue;
        }
        const char *slash = strchr(v->str, '/');
        if (!slash || slash == v->str || !slash[1] || strchr(slash + 1, '/')) {
            NERR(l, v, "bad-input", "write inputs as `name: task/file`",
                 "input '%s' must name 'task/file', got '%s'", k->str, v->str);
            continue;
        }
        char *task = xstrndup(v->str, (size_t)(slash - v->str));
        const char *file = slash + 1;
        size_t ui;
        if (!hmap_get(&l->tasks, task, &ui)) {
            char *hint = suggest_task(l, task);
            NERR(l, v, "unknown-task", hint, "input '%s' names unknown task '%s'", k->str, task);
            free(hint);
            free(task);
            continue;
        }
        if (ui == ti || !is_ancestor(l, ui, ti)) {
            char hint[160];
            snprintf(hint, sizeof(hint), "add '%s' to the 'needs' of '%s'", task, t->name);
            NERR(l, v, "input-not-upstream", hint,
                 "input '%s' comes from task '%s', which is not upstream of '%s'", k->str, task,
                 t->name);
            free(task);
            continue;
        }
        const struct dag_task *u = &l->d->tasks[ui];
        size_t j;
        for (j = 0; j < u->noutputs; j++)
            if (!strcmp(u->outputs[j], file))
                break;
        if (j == u->noutputs) {
            char *hint = u->noutputs ? suggest(file, (const char *const *)u->outputs, u->noutputs)
                                     : NULL;
            if (!hint)
                hint = u->noutputs ? xasprintf("'%s' declares: %s%s", task, u->outputs[0],
                                               u->noutputs > 1 ? ", ..." : "")
                                   : xasprintf("declare it in the 'outputs' of '%s'", task);
            NERR(l, v, "unknown-output", hint, "input '%s': task '%s' declares no output '%s'",
                 k->str, task, file);
            free(hint);
            free(task);
            continue;
        }
        struct dag_input *in = &t->inputs[t->ninputs++];
        in->name = xstrdup(k->str);
        in->task = task;
        in->file = xstrdup(file);
        in->task_idx = ui;
    }
    l->quiet = q;
}

struct when_ck {
    struct loader *l;
    size_t ti;
    const struct ynode *node;
};

static int
when_ref_cb(void *ud, const char *task, const char *name, int pos)
{
    struct when_ck *w = ud;
    struct loader *l = w->l;
    int line, col;
    scalar_pos(w->node, pos, &line, &col);
    if (!task) {
        if (!dag_param_find(l->d, name)) {
            char **names = xcalloc(l->d->nparams + 1, sizeof(*names));
            for (size_t i = 0; i < l->d->nparams; i++)
                names[i] = l->d->params[i].name;
            char *hint = l->d->nparams ? suggest(name, (const char *const *)names, l->d->nparams)
                                       : xstrdup("declare it under 'params:'");
            lerr(l, line, col, "unknown-param", hint, "'when' uses unknown param '%s'", name);
            free(hint);
            free(names);
        }
        return 0;
    }
    size_t ui;
    if (!hmap_get(&l->tasks, task, &ui)) {
        char *hint = suggest_task(l, task);
        lerr(l, line, col, "unknown-task", hint, "'when' refers to unknown task '%s'", task);
        free(hint);
        return 0;
    }
    if (ui == w->ti || !is_ancestor(l, ui, w->ti)) {
        lerr(l, line, col, "when-not-upstream", NULL,
             "'when' refers to task '%s', which is not upstream of '%s'", task,
             l->d->tasks[w->ti].name);
        return 0;
    }
    const struct dag_task *u = &l->d->tasks[ui];
    if (!u->metrics) {
        lerr(l, line, col, "no-metrics", "declare `metrics: metrics.json` on that task",
             "'when' uses metrics of task '%s', which declares no 'metrics'", task);
        return 0;
    }
    if (u->metric_keys) {
        size_t j;
        for (j = 0; j < u->nmetric_keys; j++)
            if (!strcmp(u->metric_keys[j], name))
                break;
        if (j == u->nmetric_keys) {
            char *hint = suggest(name, (const char *const *)u->metric_keys, u->nmetric_keys);
            lerr(l, line, col, "unknown-metric", hint,
                 "'when' uses metric '%s', which task '%s' does not declare", name, task);
            free(hint);
        }
    }
    return 0;
}

static void
check_when(struct loader *l, size_t ti, const struct task_src *src)
{
    struct dag_task *t = &l->d->tasks[ti];
    if (!t->when || !src->when)
        return;
    char err[256];
    int pos = 0, line, col;
    if (expr_parse(&t->when_expr, t->when, err, sizeof(err), &pos) != 0) {
        /* a `when` inherited from defaults: say it once */
        if (!src->when_inherited || !l->when_default_reported) {
            scalar_pos(src->when, pos, &line, &col);
            lerr(l, line, col, "bad-when", NULL, "'when': %s", err);
            l->when_default_reported |= src->when_inherited;
        }
        t->when_expr = NULL;
        return;
    }
    /* references depend on the task, so they are checked for each */
    struct when_ck w = {l, ti, src->when};
    expr_foreach_ref(t->when_expr, when_ref_cb, &w);
}

static const char *
param_at_cb(void *ud, size_t i)
{
    const struct dag *d = ud;
    return i < d->nparams ? d->params[i].name : NULL;
}

static void
check_template(struct loader *l, const struct ynode *n, const char *what)
{
    char err[256], hint[128];
    int pos = 0, line, col;
    hint[0] = '\0';
    if (n->type != YNODE_SCALAR || !strstr(n->str, "{{"))
        return;
    if (tmpl_check_params(n->str, param_at_cb, l->d, err, sizeof(err), &pos, hint,
                          sizeof(hint)) != 0) {
        scalar_pos(n, pos, &line, &col);
        lerr(l, line, col, "bad-template", hint[0] ? hint : NULL, "%s: %s", what, err);
    }
}

static void
check_templates(struct loader *l, const struct task_src *src)
{
    if (src->command && !src->command_inherited && src->command->type == YNODE_SEQ)
        for (size_t i = 0; i < src->command->n; i++)
            check_template(l, src->command->vals[i], "command");
    if (src->env && src->env->type == YNODE_MAP)
        for (size_t i = 0; i < src->env->n; i++)
            check_template(l, src->env->vals[i], "env");
}

static void
parse_params(struct loader *l, const struct ynode *n)
{
    struct dag *d = l->d;
    if (expect(l, n, YNODE_MAP, "params"))
        return;
    d->params = xcalloc(n->n + 1, sizeof(*d->params));
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *k = n->keys[i], *v = n->vals[i];
        if (!valid_ident(k->str)) {
            NERR(l, k, "bad-name", NULL, "param name '%s' must match [A-Za-z_][A-Za-z0-9_]*",
                 k->str);
            continue;
        }
        if (v->type != YNODE_SCALAR) {
            NERR(l, v, "wrong-type", NULL,
                 "param '%s' must be a number, string or boolean, got %s", k->str,
                 ynode_kind(v));
            continue;
        }
        struct dag_param *p = &d->params[d->nparams++];
        double num;
        p->name = xstrdup(k->str);
        p->value = xstrdup(v->is_null ? "" : v->str);
        p->is_number = !v->quoted && !v->is_null && parse_number(v->str, &num) == 0;
        p->is_bool = !v->quoted && (!strcmp(v->str, "true") || !strcmp(v->str, "false"));
    }
}

static void
parse_date(struct loader *l, const struct ynode *n, const char *field, int64_t *out, bool *has)
{
    int64_t secs;
    int has_time, has_off;
    if (expect(l, n, YNODE_SCALAR, field))
        return;
    if (cal_parse(n->str, &secs, &has_time, &has_off) != 0) {
        NERR(l, n, "bad-date", "use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM]",
             "'%s': invalid date '%s'", field, n->str);
        return;
    }
    *out = has_off ? secs : tz_local_to_utc(l->d->tz, secs, NULL);
    *has = true;
}

static void
parse_dag(struct loader *l, const struct ynode *root)
{
    struct dag *d = l->d;
    const struct ynode *n, *k;
    struct ynode *key;

    check_keys(l, root, dag_keys, "the DAG");

    if ((n = ynode_get(root, "dag", NULL))) {
        if (get_str(l, n, "dag", &d->name) == 0 && !valid_name(d->name, 0)) {
            NERR(l, n, "bad-name", "use lower-case letters, digits, '_' and '-'",
                 "DAG name '%s' must match [a-z0-9_-]{1,%d}", d->name, DAG_NAME_MAX);
        }
    } else {
        lerr(l, root->line, root->col, "missing-key", "start the file with `dag: my-pipeline`",
             "missing required key 'dag' (the DAG's name)");
    }
    if ((n = ynode_get(root, "description", NULL)))
        get_str(l, n, "description", &d->description);
    if ((n = ynode_get(root, "code", NULL)) && get_str(l, n, "code", &d->code) == 0) {
        /* checked where the file is a real path (not a stored version) */
        if (l->file[0] != '<') {
            char *path = dag_code_path(d->code, l->file);
            struct stat st;
            if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
                NERR(l, n, "bad-code", "a folder, relative to this file's folder or absolute",
                     "code folder '%s' does not exist", path);
            free(path);
        }
    }

    d->timezone = xstrdup("UTC");
    if ((n = ynode_get(root, "timezone", NULL)) && get_str(l, n, "timezone", &d->timezone) == 0) {
        if (tz_load(&d->tz, d->timezone) != 0) {
            NERR(l, n, "bad-timezone", "use an IANA name such as Europe/Berlin or America/New_York",
                 "unknown time zone '%s'", d->timezone);
        }
    }
    if (!d->tz && tz_load(&d->tz, "UTC") != 0)
        lerr(l, 0, 0, "internal", NULL, "cannot load the UTC zone");

    if ((n = ynode_get(root, "schedule", NULL)) && !n->is_null) {
        if (get_str(l, n, "schedule", &d->schedule) == 0) {
            char err[256];
            int col = 0, line, c;
            if (cron_parse(&d->cron, d->schedule, err, sizeof(err), &col) != 0) {
                scalar_pos(n, col, &line, &c);
                lerr(l, line, c, "bad-cron",
                     "5 fields: minute hour day-of-month month day-of-week, or @daily etc.",
                     "bad schedule '%s': %s", d->schedule, err);
                free(d->schedule);
                d->schedule = NULL;
            }
        }
    }
    if ((n = ynode_get(root, "start_date", NULL)))
        parse_date(l, n, "start_date", &d->start_date, &d->has_start);
    if ((n = ynode_get(root, "end_date", &key))) {
        parse_date(l, n, "end_date", &d->end_date, &d->has_end);
        if (d->has_start && d->has_end && d->end_date < d->start_date)
            NERR(l, n, "bad-date", NULL, "'end_date' is before 'start_date'");
    }
    if ((n = ynode_get(root, "catchup", NULL)))
        get_bool(l, n, "catchup", &d->catchup);
    long long iv;
    d->max_active_runs = DAG_DEFAULT_MAX_ACTIVE_RUNS;
    d->max_active_tasks = DAG_DEFAULT_MAX_ACTIVE_TASKS;
    if ((n = ynode_get(root, "max_active_runs", NULL)) &&
        get_int(l, n, "max_active_runs", 1, 100000, &iv) == 0)
        d->max_active_runs = (int)iv;
    if ((n = ynode_get(root, "max_active_tasks", NULL)) &&
        get_int(l, n, "max_active_tasks", 1, 100000, &iv) == 0)
        d->max_active_tasks = (int)iv;
    if ((n = ynode_get(root, "params", NULL)))
        parse_params(l, n);
    if ((n = ynode_get(root, "tags", NULL)))
        get_strlist(l, n, "tags", &d->tags, &d->ntags);

    if ((n = ynode_get(root, "defaults", NULL)) && expect(l, n, YNODE_MAP, "defaults") == 0) {
        /* check `defaults:` once, as a task of its own */
        struct dag_task tmp;
        struct task_src src;
        task_init(&tmp);
        tmp.name = xstrdup("defaults");
        parse_task(l, n, &tmp, &src, 1);
        if (src.command && src.command->type == YNODE_SEQ)
            for (size_t i = 0; i < src.command->n; i++)
                check_template(l, src.command->vals[i], "command");
        task_fini(&tmp);
        l->defaults = (struct ynode *)n;
    }

    const struct ynode *tasks = ynode_get(root, "tasks", &key);
    if (!tasks) {
        lerr(l, root->line, root->col, "missing-key", "add `tasks:` with at least one task",
             "missing required key 'tasks'");
        return;
    }
    if (expect(l, tasks, YNODE_MAP, "tasks"))
        return;
    if (tasks->n == 0) {
        NERR(l, key, "missing-key", NULL, "'tasks' is empty; a DAG needs at least one task");
        return;
    }
    d->tasks = xcalloc(tasks->n, sizeof(*d->tasks));
    struct task_src *srcs = xcalloc(tasks->n, sizeof(*srcs));
    for (size_t i = 0; i < tasks->n; i++) {
        k = tasks->keys[i];
        struct dag_task *t = &d->tasks[d->ntasks];
        if (!valid_name(k->str, 0)) {
            NERR(l, k, "bad-name", "use lower-case letters, digits, '_' and '-'",
                 "task name '%s' must match [a-z0-9_-]{1,%d}", k->str, DAG_NAME_MAX);
            continue;
        }
        if (tasks->vals[i]->type != YNODE_MAP) {
            NERR(l, tasks->vals[i], "wrong-type", NULL, "task '%s' must be a mapping, got %s",
                 k->str, ynode_kind(tasks->vals[i]));
            continue;
        }
        task_init(t);
        t->name = xstrdup(k->str);
        t->line = k->line;
        t->col = k->col;
        hmap_put(&l->tasks, t->name, d->ntasks);
        d->ntasks++;
        parse_task(l, tasks->vals[i], t, &srcs[d->ntasks - 1], 0);
    }
    for (size_t i = 0; i < d->ntasks; i++)
        resolve_needs(l, i, &srcs[i]);
    l->visit = xcalloc(d->ntasks + 1, sizeof(*l->visit));
    if (order_tasks(l, srcs) == 0) {
        for (size_t i = 0; i < d->ntasks; i++) {
            resolve_inputs(l, i, &srcs[i]);
            check_when(l, i, &srcs[i]);
        }
    }
    for (size_t i = 0; i < d->ntasks; i++) {
        check_templates(l, &srcs[i]);
        if (d->tasks[i].nenv)
            qsort(d->tasks[i].env, d->tasks[i].nenv, sizeof(struct dag_kv), kv_cmp);
        if (d->tasks[i].nlabels)
            qsort(d->tasks[i].labels, d->tasks[i].nlabels, sizeof(struct dag_kv), kv_cmp);
    }
    free(srcs);
}

static void
sha256_hex(const char *buf, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int
dag_load_buffer(struct dag **out, const char *buf, size_t len, const char *file,
                struct diag_list *dl)
{
    struct ydoc *doc = NULL;
    struct ynode *root = NULL;
    struct loader l;
    size_t errs0 = dl->nerrors;

    if (!file)
        file = "<input>";
    size_t blank = 0; /* buf need not be NUL-terminated */
    while (blank < len && strchr(" \t\r\n", buf[blank]) && buf[blank])
        blank++;
    if (blank == len) {
        diag_add(dl, DIAG_ERROR, file, 1, 1, "empty-file", "a DAG needs at least `dag:` and `tasks:`",
                 "the file is empty");
        return CAIRN_EPARSE;
    }
    if (memchr(buf, '\0', len)) {
        const char *z = memchr(buf, '\0', len);
        int line = 1, col = 1;
        for (const char *p = buf; p < z; p++) {
            if (*p == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        diag_add(dl, DIAG_ERROR, file, line, col, "binary-file", NULL,
                 "the file contains a NUL byte; is it a binary file?");
        return CAIRN_EPARSE;
    }
    if (ydoc_parse(&doc, &root, buf, len, file, dl) != 0)
        return CAIRN_EPARSE;
    if (!root || root->is_null) {
        diag_add(dl, DIAG_ERROR, file, 1, 1, "empty-file", "a DAG needs at least `dag:` and `tasks:`",
                 "the file holds no YAML content");
        ydoc_free(doc);
        return CAIRN_EPARSE;
    }
    if (root->type != YNODE_MAP) {
        diag_add(dl, DIAG_ERROR, file, root->line, root->col, "wrong-type",
                 "a DAG file is a mapping with `dag:` and `tasks:`",
                 "the top level must be a mapping, got %s", ynode_kind(root));
        ydoc_free(doc);
        return CAIRN_EPARSE;
    }
    memset(&l, 0, sizeof(l));
    l.file = file;
    l.dl = dl;
    l.d = xcalloc(1, sizeof(*l.d));
    l.d->file = xstrdup(file);
    hmap_init(&l.tasks);
    parse_dag(&l, root);
    sha256_hex(buf, len, l.d->version);
    hmap_free(&l.tasks);
    free(l.visit);
    ydoc_free(doc);
    if (dl->nerrors > errs0) {
        dag_free(l.d);
        return CAIRN_EPARSE;
    }
    *out = l.d;
    return 0;
}

int
dag_load_file(struct dag **out, const char *path, struct diag_list *dl)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = fs_read_all(path, DAG_FILE_MAX, &buf, &len);
    if (rc == CAIRN_ERANGE) {
        diag_add(dl, DIAG_ERROR, path, 0, 0, "too-large", NULL, "file is larger than %d MiB",
                 DAG_FILE_MAX >> 20);
        return CAIRN_EPARSE;
    }
    if (rc) {
        diag_add(dl, DIAG_ERROR, path, 0, 0, "io", NULL, "cannot open: %s", strerror(errno));
        return CAIRN_EIO;
    }
    rc = dag_load_buffer(out, buf, len, path, dl);
    free(buf);
    return rc;
}

void
dag_free(struct dag *d)
{
    if (!d)
        return;
    free(d->name);
    free(d->file);
    free(d->description);
    free(d->code);
    free(d->schedule);
    free(d->timezone);
    for (size_t i = 0; i < d->nparams; i++) {
        free(d->params[i].name);
        free(d->params[i].value);
    }
    free(d->params);
    strv_free(d->tags, d->ntags);
    for (size_t i = 0; i < d->ntasks; i++)
        task_fini(&d->tasks[i]);
    free(d->tasks);
    free(d->topo);
    free(d);
}

long
dag_task_index(const struct dag *d, const char *name)
{
    for (size_t i = 0; i < d->ntasks; i++)
        if (!strcmp(d->tasks[i].name, name))
            return (long)i;
    return -1;
}

const struct dag_param *
dag_param_find(const struct dag *d, const char *name)
{
    for (size_t i = 0; i < d->nparams; i++)
        if (!strcmp(d->params[i].name, name))
            return &d->params[i];
    return NULL;
}

const char *
dag_trigger_name(enum dag_trigger t)
{
    if ((unsigned)t < sizeof(trigger_names) / sizeof(*trigger_names))
        return trigger_names[t];
    return "?";
}

void
dag_interval(const struct dag *d, int64_t logical_date, int64_t *end)
{
    if (!d->schedule) {
        *end = logical_date;
        return;
    }
    int64_t n = cron_next(&d->cron, d->tz, logical_date);
    *end = n < 0 ? logical_date : n;
}

int64_t
dag_logical_date_for(const struct dag *d, int64_t secs, int has_time, int has_offset)
{
    int64_t utc = has_offset ? secs : tz_local_to_utc(d->tz, secs, NULL);
    if (has_time || !d->schedule)
        return utc;
    /* first tick at or after local midnight */
    int64_t t = cron_next(&d->cron, d->tz, utc - 1);
    return t < 0 ? utc : t;
}

struct render_ud {
    const struct dag *d;
    const struct dag_run_ctx *rc;
};

static const char *
render_param(void *ud, const char *name)
{
    struct render_ud *r = ud;
    for (size_t i = 0; i < r->rc->noverrides; i++)
        if (!strcmp(r->rc->overrides[i].key, name))
            return r->rc->overrides[i].value;
    const struct dag_param *p = dag_param_find(r->d, name);
    return p ? p->value : NULL;
}

void
dag_strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

int
dag_render_task(const struct dag *d, size_t task, const struct dag_run_ctx *rc, char ***argv,
                char ***envp, char *err, size_t errlen)
{
    const struct dag_task *t = &d->tasks[task];
    char ds[16], ds_nodash[16], ts[40], dis[40], die[40];
    int off = tz_offset_at(d->tz, rc->logical_date);
    struct render_ud ud = {d, rc};
    struct tmpl_ctx ctx;

    cal_format_date(rc->logical_date, off, 0, ds, sizeof(ds));
    cal_format_date(rc->logical_date, off, 1, ds_nodash, sizeof(ds_nodash));
    cal_format_iso(rc->logical_date, off, 0, ts, sizeof(ts));
    cal_format_iso(rc->logical_date, off, 0, dis, sizeof(dis));
    cal_format_iso(rc->data_interval_end, tz_offset_at(d->tz, rc->data_interval_end), 0, die,
                   sizeof(die));
    memset(&ctx, 0, sizeof(ctx));
    ctx.ds = ds;
    ctx.ds_nodash = ds_nodash;
    ctx.ts = ts;
    ctx.data_interval_start = dis;
    ctx.data_interval_end = die;
    ctx.run_id = rc->run_id ? rc->run_id : "";
    ctx.dag = d->name;
    ctx.task = t->name;
    ctx.param = render_param;
    ctx.ud = &ud;

    char **av = xcalloc(t->ncommand + 1, sizeof(*av));
    char **ev = xcalloc(t->nenv + 1, sizeof(*ev));
    for (size_t i = 0; i < t->ncommand; i++) {
        if (tmpl_render(t->command[i], &ctx, &av[i], err, errlen) != 0)
            goto fail;
    }
    for (size_t i = 0; i < t->nenv; i++) {
        char *v = NULL;
        if (tmpl_render(t->env[i].value, &ctx, &v, err, errlen) != 0)
            goto fail;
        ev[i] = xasprintf("%s=%s", t->env[i].key, v);
        free(v);
    }
    *argv = av;
    *envp = ev;
    return 0;
fail:
    dag_strv_free(av);
    dag_strv_free(ev);
    return CAIRN_EPARSE;
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
        char *hint = d->nparams ? suggest(ov[i].key, (const char *const *)names, d->nparams)
                                : NULL;
        snprintf(err, errlen, "unknown param '%s'%s%s%s", ov[i].key,
                 hint ? "; " : (d->nparams ? "" : " (this DAG declares no params)"),
                 hint ? hint : "", "");
        free(hint);
        free(names);
        return CAIRN_ENOENT;
    }
    return 0;
}

char *
dag_code_path(const char *code, const char *dag_file)
{
    if (code[0] == '/' || !dag_file)
        return xstrdup(code);
    const char *slash = strrchr(dag_file, '/');
    if (!slash)
        return xstrdup(code);
    return xasprintf("%.*s/%s", (int)(slash - dag_file), dag_file, code);
}
