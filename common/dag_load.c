/* dag_load.c - loading a DAG file: from bytes to a checked struct dag.
 *
 * Owns the entry points (dag_load_file, dag_load_buffer, dag_free), the
 * checks done before any YAML is read (empty file, NUL bytes, size), the
 * top level of the document and its DAG-level fields (name, description,
 * code, timezone, schedule, start and end dates, catchup, limits, params,
 * trigger (dag_event.c), tags, defaults, tasks) and the order of the passes: every task's own
 * fields (dag_task.c, fan-out in dag_map.c), then `needs` and the graph
 * (dag_graph.c), then what fan-out needs of the graph (dag_map.c, in
 * topological order when there is one), then inputs and `when` (only on an
 * acyclic graph), then templates (dag_refs.c). Every problem found is
 * added to the caller's diag_list; the DAG is returned only if none was an
 * error, with its version (SHA-256 of the bytes). A returned DAG is never
 * changed again.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cal.h"
#include "dag_int.h"
#include "err.h"
#include "expr.h"
#include "fs.h"
#include "tz.h"
#include "util.h"

#define DAG_FILE_MAX (64 * 1024 * 1024)

/* the DAG's own keys, sorted */
/* clang-format off: one sorted list, not a column per key */
static const char *const dag_keys[] = {"catchup",
                                       "code",
                                       "dag",
                                       "deadline",
                                       "defaults",
                                       "description",
                                       "end_date",
                                       "max_active_runs",
                                       "max_active_tasks",
                                       "max_map_items",
                                       "notify",
                                       "params",
                                       "schedule",
                                       "start_date",
                                       "tags",
                                       "tasks",
                                       "timezone",
                                       "trigger",
                                       NULL};
/* clang-format on */

static void
parse_date(struct dag__loader *l, const struct ynode *n, const char *field, int64_t *out, bool *has)
{
    int64_t secs;
    int has_time, has_off;
    if (dag__expect(l, n, YNODE_SCALAR, field))
        return;
    if (cal_parse(n->str, &secs, &has_time, &has_off) != 0) {
        dag__nerr(l, n, "bad-date", "use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM]",
                  "'%s': invalid date '%s'", field, n->str);
        return;
    }
    *out = has_off ? secs : tz_local_to_utc(l->d->tz, secs, NULL);
    *has = true;
}

/* A mapping of tasks that reads
 *
 *     ingest:
 *     command: [echo]
 *
 * has `command` indented like a task name: YAML sees an empty task and a
 * task named "command". Keys after task i that are task fields, and either
 * have a value that cannot be a task (not a mapping) or follow an empty
 * task, are taken as the fields they were meant to be. Returns how many
 * follow task i that way (0 for none). */
static size_t
misplaced_fields(const struct ynode *tasks, size_t i)
{
    const struct ynode *own = tasks->vals[i];
    if (own->type != YNODE_MAP && !(own->type == YNODE_SCALAR && own->is_null))
        return 0;
    size_t j = i + 1;
    for (; j < tasks->n; j++) {
        const struct ynode *k = tasks->keys[j], *v = tasks->vals[j];
        if (!dag__is_task_key(k->str) || (v->type == YNODE_MAP && own->type == YNODE_MAP) ||
            ynode_get(own, k->str, NULL))
            break;
        size_t m;
        for (m = i + 1; m < j; m++)
            if (!strcmp(tasks->keys[m]->str, k->str))
                break;
        if (m < j)
            break;
    }
    return j - i - 1;
}

/* Task i's own mapping with the n misplaced fields after it (malloc'd, like
 * its key and value arrays; the nodes are the document's), and one error at
 * the first of them. */
static struct ynode *
adopt_fields(struct dag__loader *l, const struct ynode *tasks, size_t i, size_t n)
{
    const struct ynode *own = tasks->vals[i], *first = tasks->keys[i + 1];
    size_t nown = own->type == YNODE_MAP ? own->n : 0;
    struct ynode *map = xcalloc(1, sizeof(*map));
    map->type = YNODE_MAP;
    map->line = own->line;
    map->col = own->col;
    map->keys = xcalloc(nown + n, sizeof(*map->keys));
    map->vals = xcalloc(nown + n, sizeof(*map->vals));
    for (size_t j = 0; j < nown; j++) {
        map->keys[map->n] = own->keys[j];
        map->vals[map->n++] = own->vals[j];
    }
    struct sb also;
    sb_init(&also);
    for (size_t j = i + 1; j <= i + n; j++) {
        if (j > i + 1)
            sb_printf(&also, "%s'%s'", j > i + 2 ? ", " : "", tasks->keys[j]->str);
        map->keys[map->n] = tasks->keys[j];
        map->vals[map->n++] = tasks->vals[j];
    }
    char *hint = xasprintf("indent it%s%s under '%s:', further than the task's name",
                           n > 1 ? " and " : "", n > 1 ? also.buf : "", tasks->keys[i]->str);
    dag__nerr(l, first, "misplaced-field", hint,
              "'%s' is indented like a task name, so it is not a field of task '%s'", first->str,
              tasks->keys[i]->str);
    free(hint);
    sb_free(&also);
    return map;
}

static void
parse_dag(struct dag__loader *l, const struct ynode *root)
{
    struct dag *d = l->d;
    const struct ynode *n, *k;
    struct ynode *key;

    dag__check_keys(l, root, dag_keys, "the DAG", 1);

    if ((n = ynode_get(root, "dag", NULL))) {
        if (dag__get_str(l, n, "dag", &d->name) == 0 && !dag__valid_name(d->name, 0)) {
            dag__nerr(l, n, "bad-name", "use lower-case letters, digits, '_' and '-'",
                      "DAG name '%s' must match [a-z0-9_-]{1,%d}", d->name, DAG_NAME_MAX);
        }
    } else {
        dag__err(l, root->line, root->col, "missing-key", "start the file with `dag: my-pipeline`",
                 "missing required key 'dag' (the DAG's name)");
    }
    if ((n = ynode_get(root, "description", NULL)))
        dag__get_str(l, n, "description", &d->description);
    if ((n = ynode_get(root, "code", NULL)) && dag__get_str(l, n, "code", &d->code) == 0) {
        /* checked where the file is a real path (not a stored version) */
        if (l->file[0] != '<') {
            char *path = dag_code_path(d->code, l->file);
            struct stat st;
            if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
                dag__nerr(l, n, "bad-code", "a folder, relative to this file's folder or absolute",
                          "code folder '%s' does not exist", path);
            free(path);
        }
    }

    d->timezone = xstrdup("UTC");
    if ((n = ynode_get(root, "timezone", NULL)) &&
        dag__get_str(l, n, "timezone", &d->timezone) == 0) {
        if (tz_load(&d->tz, d->timezone) != 0) {
            dag__nerr(l, n, "bad-timezone",
                      "use an IANA name such as Europe/Berlin or America/New_York",
                      "unknown time zone '%s'", d->timezone);
        }
    }
    if (!d->tz && tz_load(&d->tz, "UTC") != 0)
        dag__err(l, 0, 0, "internal", NULL, "cannot load the UTC zone");

    if ((n = ynode_get(root, "schedule", NULL)) && !n->is_null) {
        if (dag__get_str(l, n, "schedule", &d->schedule) == 0) {
            char err[256];
            int col = 0, line, c;
            if (cron_parse(&d->cron, d->schedule, err, sizeof(err), &col) != 0) {
                dag__scalar_pos(n, col, &line, &c);
                dag__err(l, line, c, "bad-cron",
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
            dag__nerr(l, n, "bad-date", NULL, "'end_date' is before 'start_date'");
    }
    if ((n = ynode_get(root, "catchup", NULL)))
        dag__get_bool(l, n, "catchup", &d->catchup);
    long long iv;
    d->max_active_runs = DAG_DEFAULT_MAX_ACTIVE_RUNS;
    d->max_active_tasks = DAG_DEFAULT_MAX_ACTIVE_TASKS;
    if ((n = ynode_get(root, "max_active_runs", NULL)) &&
        dag__get_int(l, n, "max_active_runs", 1, 100000, &iv) == 0)
        d->max_active_runs = (int)iv;
    if ((n = ynode_get(root, "max_active_tasks", NULL)) &&
        dag__get_int(l, n, "max_active_tasks", 1, 100000, &iv) == 0)
        d->max_active_tasks = (int)iv;
    d->max_map_items = DAG_DEFAULT_MAX_MAP_ITEMS;
    if ((n = ynode_get(root, "max_map_items", NULL)) &&
        dag__get_int(l, n, "max_map_items", 1, DAG_MAX_MAP_ITEMS, &iv) == 0)
        d->max_map_items = iv;
    if ((n = ynode_get(root, "params", NULL)))
        dag__parse_params(l, n);
    if ((n = ynode_get(root, "trigger", NULL)))
        dag__parse_trigger(l, n);
    if ((n = ynode_get(root, "tags", NULL)))
        dag__get_strlist(l, n, "tags", &d->tags, &d->ntags);

    if ((n = ynode_get(root, "defaults", NULL)) && dag__expect(l, n, YNODE_MAP, "defaults") == 0) {
        /* check `defaults:` once, as a task of its own */
        struct dag_task tmp;
        struct dag__task_src src;
        dag__task_init(&tmp);
        tmp.name = xstrdup("defaults");
        dag__parse_task(l, n, &tmp, &src, 1);
        if (src.command && src.command->type == YNODE_SEQ)
            for (size_t i = 0; i < src.command->n; i++)
                dag__check_template(l, (size_t)-1, &src, src.command->vals[i], "command");
        dag__task_fini(&tmp);
        dag__src_fini(&src);
        l->defaults = (struct ynode *)n;
    }

    const struct ynode *tasks = ynode_get(root, "tasks", &key);
    if (!tasks) {
        dag__err(l, root->line, root->col, "missing-key", "add `tasks:` with at least one task",
                 "missing required key 'tasks'");
        return;
    }
    if (dag__expect(l, tasks, YNODE_MAP, "tasks"))
        return;
    if (tasks->n == 0) {
        dag__nerr(l, key, "missing-key", NULL, "'tasks' is empty; a DAG needs at least one task");
        return;
    }
    d->tasks = xcalloc(tasks->n, sizeof(*d->tasks));
    struct dag__task_src *srcs = xcalloc(tasks->n, sizeof(*srcs));
    l->srcs = srcs;
    struct ynode **adopted = xcalloc(tasks->n, sizeof(*adopted)); /* see adopt_fields */
    size_t nadopted = 0;
    for (size_t i = 0; i < tasks->n; i++) {
        k = tasks->keys[i];
        struct dag_task *t = &d->tasks[d->ntasks];
        if (!dag__valid_name(k->str, 0)) {
            dag__nerr(l, k, "bad-name", "use lower-case letters, digits, '_' and '-'",
                      "task name '%s' must match [a-z0-9_-]{1,%d}", k->str, DAG_NAME_MAX);
            hmap_put(&l->broken, k->str, i);
            continue;
        }
        const struct ynode *map = tasks->vals[i];
        size_t nmis = misplaced_fields(tasks, i);
        if (nmis) {
            map = adopted[nadopted++] = adopt_fields(l, tasks, i, nmis);
        } else if (map->type != YNODE_MAP) {
            dag__nerr(l, map, "wrong-type", NULL, "task '%s' must be a mapping, got %s", k->str,
                      ynode_kind(map));
            hmap_put(&l->broken, k->str, i);
            continue;
        }
        dag__task_init(t);
        t->name = xstrdup(k->str);
        t->line = k->line;
        t->col = k->col;
        hmap_put(&l->tasks, t->name, d->ntasks);
        d->ntasks++;
        dag__parse_task(l, map, t, &srcs[d->ntasks - 1], 0);
        i += nmis;
    }
    l->incomplete = xcalloc(d->ntasks + 1, sizeof(*l->incomplete));
    for (size_t i = 0; i < d->ntasks; i++)
        dag__resolve_needs(l, i, &srcs[i]);
    l->visit = xcalloc(d->ntasks + 1, sizeof(*l->visit));
    l->cyclic = dag__order_tasks(l, srcs) != 0;
    for (size_t i = 0; i < d->ntasks; i++) {
        size_t ti = l->cyclic ? i : d->topo[i];
        dag__check_fanout(l, ti, &srcs[ti]);
    }
    if (!l->cyclic) {
        for (size_t i = 0; i < d->ntasks; i++) {
            dag__resolve_inputs(l, i, &srcs[i]);
            dag__check_when(l, i, &srcs[i]);
        }
    }
    for (size_t i = 0; i < d->ntasks; i++) {
        dag__check_templates(l, i, &srcs[i]);
        if (d->tasks[i].nenv)
            qsort(d->tasks[i].env, d->tasks[i].nenv, sizeof(struct dag_kv), dag__kv_cmp);
        if (d->tasks[i].nsecrets)
            qsort(d->tasks[i].secrets, d->tasks[i].nsecrets, sizeof(struct dag_kv), dag__kv_cmp);
        if (d->tasks[i].nlabels)
            qsort(d->tasks[i].labels, d->tasks[i].nlabels, sizeof(struct dag_kv), dag__kv_cmp);
    }
    if ((n = ynode_get(root, "notify", NULL)) && !n->is_null)
        dag__parse_notify(l, n, &d->notify, &d->nnotify, -1);
    if ((n = ynode_get(root, "deadline", NULL)) && !n->is_null)
        dag__parse_deadline(l, n, &d->deadline, 0);
    dag__resolve_notify(l);
    for (size_t i = 0; i < d->ntasks; i++)
        dag__src_fini(&srcs[i]);
    free(srcs);
    l->srcs = NULL;
    for (size_t i = 0; i < nadopted; i++) {
        free(adopted[i]->keys);
        free(adopted[i]->vals);
        free(adopted[i]);
    }
    free(adopted);
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
    struct dag__loader l;
    size_t errs0 = dl->nerrors;

    if (!file)
        file = "<input>";
    size_t blank = 0; /* buf need not be NUL-terminated */
    while (blank < len && strchr(" \t\r\n", buf[blank]) && buf[blank])
        blank++;
    if (blank == len) {
        diag_add(dl, DIAG_ERROR, file, 1, 1, "empty-file",
                 "a DAG needs at least `dag:` and `tasks:`", "the file is empty");
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
        diag_add(dl, DIAG_ERROR, file, 1, 1, "empty-file",
                 "a DAG needs at least `dag:` and `tasks:`", "the file holds no YAML content");
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
    hmap_init(&l.broken);
    hmap_init(&l.said);
    parse_dag(&l, root);
    sha256_hex(buf, len, l.d->version);
    l.d->by_name = l.tasks; /* the DAG keeps the index of its tasks by name */
    hmap_free(&l.broken);
    hmap_free(&l.said);
    for (size_t i = 0; i < l.nsaid; i++)
        free(l.said_keys[i]);
    free(l.said_keys);
    free(l.visit);
    free(l.incomplete);
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
    dag__conds_free(d->conds, d->nconds);
    dag__strv_free(d->tags, d->ntags);
    for (size_t i = 0; i < d->ntasks; i++)
        dag__task_fini(&d->tasks[i]);
    free(d->tasks);
    free(d->topo);
    hmap_free(&d->by_name);
    dag__notify_free(d->notify, d->nnotify);
    free(d);
}
