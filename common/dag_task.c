/* dag_task.c - the fields of one task, and `defaults:` under them.
 *
 * Owns the list of task keys, the reading of every task field into struct
 * dag_task (command, image, env, trigger_rule, retries and delays, timeout,
 * outputs, metrics, when, cache, publish, priority, labels, network,
 * max_log_size and on_log_limit, max_output_size and max_outputs_size;
 * `resources` is read by dag_resources.c, fan-out's `matrix`, `map` and
 * `max_parallel` by dag_map.c), how `defaults:` applies (a field the task does not set is
 * taken from it; env, labels and resources merge key by key; errors in
 * defaults are reported once, when `defaults:` itself is checked; fan-out
 * keys are never defaults), the checks that
 * need only the task itself (missing command, `publish` naming outputs) and
 * building and freeing a task. Fields that need the whole DAG (`needs`,
 * `inputs`, `when` references, templates) are only recorded here, in struct
 * dag__task_src, for dag_graph.c and dag_refs.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag_int.h"
#include "expr.h"
#include "imgref.h"
#include "util.h"

static const char *const task_keys[] = {
    "cache",            "command",          "entrypoint",       "env",
    "image",            "inputs",           "labels",           "map",
    "matrix",           "max_log_size",     "max_output_size",  "max_outputs_size",
    "max_parallel",     "max_retry_delay",  "metrics",          "mounts",
    "needs",            "network",          "on_log_limit",     "outputs",
    "priority",         "publish",          "resources",        "retries",
    "retry_backoff",    "retry_delay",      "secrets",          "timeout",
    "trigger_rule",     "when",
    "deadline",    "notify", /* dag_notify.c: the task's own, never from defaults */
    NULL};

static const char *const metrics_keys[] = {"file", "keys", NULL};
static const char *const mount_keys[] = {"host", "path", "readonly", NULL};

/* Where Cairn itself mounts something in every container (worker/runc.c):
 * a host mount may not be one of them or inside one. */
static const char *const own_mounts[] = {"/inputs", "/outputs", "/workspace", "/pipeline",
                                         "/tmp",    "/proc",    "/dev",       "/sys"};

static const char *const trigger_names[] = {"all_success", "all_done",   "all_failed",
                                            "one_success", "one_failed", "none_failed"};

static void
parse_metrics(struct dag__loader *l, const struct ynode *n, struct dag_task *t,
              struct dag__task_src *src)
{
    if (n->type == YNODE_MAP) {
        dag__check_keys(l, n, metrics_keys, "metrics", 0);
        const struct ynode *f = ynode_get(n, "file", NULL), *k = ynode_get(n, "keys", NULL);
        if (!f) {
            dag__nerr(l, n, "missing-key", NULL, "'metrics' needs a 'file'");
            return;
        }
        if (dag__get_str(l, f, "metrics.file", &t->metrics))
            return;
        if (k && dag__get_strlist(l, k, "metrics.keys", &t->metric_keys, &t->nmetric_keys) == 0)
            src->metrics_keys = k;
        n = f;
    } else if (dag__get_str(l, n, "metrics", &t->metrics)) {
        return;
    }
    if (!dag__valid_filename(t->metrics)) {
        dag__nerr(l, n, "bad-name", NULL,
                  "metrics file '%s' must be a plain file name under /outputs", t->metrics);
        free(t->metrics);
        t->metrics = NULL;
    }
}

/* A mount's host or path: absolute, without "." or ".." parts. Returns it
 * with repeated and trailing slashes dropped (malloc'd), or NULL with the
 * error reported. */
static char *
mount_path(struct dag__loader *l, const struct ynode *n, const char *field)
{
    char *s = NULL;
    if (dag__get_str(l, n, field, &s))
        return NULL;
    if (s[0] != '/') {
        dag__nerr(l, n, "bad-mount", "write an absolute path such as /data/landing",
                  "mount '%s' must be an absolute path, got '%s'", field, s);
        free(s);
        return NULL;
    }
    size_t o = 0;
    for (const char *p = s; *p;) {
        while (*p == '/')
            p++;
        size_t len = strcspn(p, "/");
        if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) {
            dag__nerr(l, n, "bad-mount", NULL,
                      "mount '%s' must not contain '.' or '..' parts, got '%s'", field, n->str);
            free(s);
            return NULL;
        }
        if (len) {
            s[o++] = '/';
            memmove(s + o, p, len);
            o += len;
        }
        p += len;
    }
    if (o == 0)
        s[o++] = '/';
    s[o] = '\0';
    return s;
}

/* `mounts: [{host, path, readonly}]`: host folders in the container. The
 * worker decides which host folders it allows (--allow-mount). */
static void
parse_mounts(struct dag__loader *l, const struct ynode *n, struct dag_task *t)
{
    if (n->type == YNODE_MAP || (n->type == YNODE_SCALAR && !n->is_null)) {
        dag__nerr(l, n, "wrong-type", "write a list, e.g. [{host: /data/landing, path: /data}]",
                  "'mounts' must be a list, got %s", ynode_kind(n));
        return;
    }
    if (dag__expect(l, n, YNODE_SEQ, "mounts"))
        return;
    for (size_t i = 0; i < t->nmounts; i++) {
        free(t->mounts[i].host);
        free(t->mounts[i].path);
    }
    free(t->mounts);
    t->mounts = xcalloc(n->n + 1, sizeof(*t->mounts));
    t->nmounts = 0;
    char **paths = xcalloc(n->n + 1, sizeof(*paths)); /* every valid path, for repeats */
    size_t npaths = 0;
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *m = n->vals[i], *h, *p, *ro;
        if (m->type != YNODE_MAP) {
            dag__nerr(l, m, "wrong-type", "write mounts as {host: /data/landing, path: /data}",
                      "items of 'mounts' must be mappings, got %s", ynode_kind(m));
            continue;
        }
        int bad = 0;
        for (size_t j = 0; j < m->n; j++) {
            size_t k;
            for (k = 0; mount_keys[k] && strcmp(mount_keys[k], m->keys[j]->str); k++)
                ;
            bad |= !mount_keys[k];
        }
        dag__check_keys(l, m, mount_keys, "mount", 0);
        bool readonly = true;
        if ((ro = ynode_get(m, "readonly", NULL)))
            bad |= dag__get_bool(l, ro, "readonly", &readonly) != 0;
        if (!(h = ynode_get(m, "host", NULL)) || !(p = ynode_get(m, "path", NULL))) {
            dag__nerr(l, m, "missing-key", "write mounts as {host: /data/landing, path: /data}",
                      "a mount needs '%s'", h ? "path" : "host");
            continue;
        }
        char *host = mount_path(l, h, "host"), *path = mount_path(l, p, "path");
        if (path) {
            size_t j;
            for (j = 0; j < npaths && strcmp(paths[j], path); j++)
                ;
            if (j < npaths) {
                dag__nerr(l, p, "duplicate-mount", NULL, "mount 'path' %s is listed twice", path);
                bad = 1;
            } else {
                paths[npaths++] = xstrdup(path);
            }
            if (!strcmp(path, "/")) {
                dag__nerr(l, p, "bad-mount", "mount a folder such as /data",
                          "mount 'path' must not be /");
                bad = 1;
            }
            for (j = 0; j < sizeof(own_mounts) / sizeof(*own_mounts); j++) {
                size_t len = strlen(own_mounts[j]);
                if (strncmp(path, own_mounts[j], len) || (path[len] && path[len] != '/'))
                    continue;
                if (path[len])
                    dag__nerr(l, p, "reserved-mount", "mount it at a folder of its own, e.g. /data",
                              "mount 'path' %s is inside %s, one of Cairn's own mount points "
                              "(/inputs /outputs /workspace /pipeline /tmp /proc /dev /sys)",
                              path, own_mounts[j]);
                else
                    dag__nerr(l, p, "reserved-mount", "mount it at a folder of its own, e.g. /data",
                              "mount 'path' %s is one of Cairn's own mount points (/inputs "
                              "/outputs /workspace /pipeline /tmp /proc /dev /sys)",
                              path);
                bad = 1;
            }
        }
        if (!host || !path || bad) {
            free(host);
            free(path);
            continue;
        }
        struct dag_mount *dm = &t->mounts[t->nmounts++];
        dm->host = host;
        dm->path = path;
        dm->readonly = readonly;
    }
    dag__strv_free(paths, npaths);
}

/* The host's own root and its system folders, which must not be a task's
 * rootfs: "/", "/usr", "/etc/" and the like (repeated and trailing '/'
 * ignored). */
static int
host_system_folder(const char *image)
{
    static const char *const sys[] = {"",      "bin",  "boot", "dev",  "etc",  "home", "lib",
                                      "lib32", "lib64", "libx32", "media", "mnt", "opt", "proc",
                                      "root",  "run",  "sbin", "srv",  "sys",  "tmp",  "usr",
                                      "var",   NULL};
    if (image[0] != '/')
        return 0;
    while (*image == '/')
        image++;
    size_t n = strcspn(image, "/");
    const char *rest = image + n;
    while (*rest == '/')
        rest++;
    if (*rest)
        return 0; /* deeper: /srv/rootfs/py311 is fine */
    for (size_t i = 0; sys[i]; i++)
        if (strlen(sys[i]) == n && !strncmp(sys[i], image, n))
            return 1;
    return 0;
}

/* A secret's name: the name of its file in the scheduler's secrets folder. */
static int
secret_name_ok(const char *s)
{
    if (!*s || *s == '.' || strlen(s) > 128)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return 0;
    return 1;
}

/* `secrets: {ENV: secret-name}`: merged key by key like env. */
static void
parse_secrets(struct dag__loader *l, const struct ynode *n, struct dag_task *t)
{
    dag__get_kv_map(l, n, "secrets", &t->secrets, &t->nsecrets, 1);
    if (n->type != YNODE_MAP)
        return;
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *k = n->keys[i], *v = n->vals[i];
        if (v->type != YNODE_SCALAR || v->is_null)
            continue; /* reported */
        for (size_t j = 0; j < t->nenv; j++)
            if (!strcmp(t->env[j].key, k->str))
                dag__nerr(l, k, "duplicate-env", "remove it from 'env' (or from 'secrets')",
                          "'%s' is in both 'env' and 'secrets'", k->str);
        if (!secret_name_ok(v->str))
            dag__nerr(l, v, "bad-name",
                      "a secret's name is the name of its file in the scheduler's secrets folder",
                      "secret name '%s' must match [A-Za-z0-9_.-]+ (at most 128, not starting "
                      "with '.')",
                      v->str);
    }
}

/* A warning for every `env:` value written in the file whose name says it
 * holds a credential (*_KEY, *_TOKEN, *_PASSWORD, *_SECRET): such values
 * end up in provenance, the API and `cairn render`; `secrets:` does not. */
static void
warn_literal_credentials(struct dag__loader *l, const struct ynode *n)
{
    static const char *const suffixes[] = {"_KEY", "_TOKEN", "_PASSWORD", "_SECRET", NULL};
    if (l->quiet || n->type != YNODE_MAP)
        return;
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *k = n->keys[i], *v = n->vals[i];
        if (v->type != YNODE_SCALAR || v->is_null || !*v->str || strstr(v->str, "{{"))
            continue;
        size_t kl = strlen(k->str);
        for (size_t j = 0; suffixes[j]; j++) {
            size_t sl = strlen(suffixes[j]);
            if (kl >= sl && !strcmp(k->str + kl - sl, suffixes[j])) {
                char *hint = xasprintf("put the value in a file of the scheduler's secrets folder "
                                       "and write `secrets: {%s: NAME}`",
                                       k->str);
                diag_add(l->dl, DIAG_WARNING, l->file, k->line, k->col, "literal-secret", hint,
                         "env '%s' looks like a credential written in the file: it is stored "
                         "in provenance and shown by the API and `cairn render`",
                         k->str);
                free(hint);
                break;
            }
        }
    }
}

/* Apply one field from node n to task t. */
static void
apply_field(struct dag__loader *l, const char *key, const struct ynode *n, struct dag_task *t,
            struct dag__task_src *src, int inherited)
{
    long long iv;
    if (!strcmp(key, "command")) {
        if (dag__get_strlist(l, n, "command", &t->command, &t->ncommand) == 0) {
            if (t->ncommand == 0)
                dag__nerr(l, n, "empty-command", NULL, "'command' must not be empty");
            src->command = n;
            src->command_inherited = inherited;
        }
    } else if (!strcmp(key, "entrypoint")) {
        /* replaces a pulled image's Entrypoint; [] clears it */
        if (dag__get_strlist(l, n, "entrypoint", &t->entrypoint, &t->nentrypoint) == 0)
            t->has_entrypoint = true;
    } else if (!strcmp(key, "image")) {
        if (dag__get_str(l, n, "image", &t->image) == 0) {
            struct imgref ref;
            char why[512];
            if (imgref_parse(t->image, &ref, why, sizeof(why)) == 0)
                imgref_clear(&ref);
            else
                dag__nerr(l, n, "bad-image",
                          "use 'host', an absolute rootfs path such as /srv/rootfs/py311, "
                          "oci:/path/to/layout[:TAG] or a registry reference such as "
                          "registry.example/ml/train:2.3",
                          "%s", why);
        }
        if (t->image && t->image[0] == '/' && host_system_folder(t->image))
            dag__nerr(l, n, "bad-image",
                      "write `image: host` to run on the host's system (its credential files "
                      "masked), or point to a root filesystem made for tasks",
                      "image '%s' is a system folder of the host, not a root filesystem for "
                      "tasks: it would show the host's private files to the task",
                      t->image);
    } else if (!strcmp(key, "env")) {
        dag__get_kv_map(l, n, "env", &t->env, &t->nenv, 1);
        if (!inherited) {
            src->env = n;
            warn_literal_credentials(l, n);
        }
    } else if (!strcmp(key, "secrets")) {
        parse_secrets(l, n, t);
    } else if (!strcmp(key, "needs")) {
        if (n->type == YNODE_SEQ || n->type == YNODE_SCALAR) {
            char **tmp = NULL;
            size_t ntmp = 0;
            if (dag__get_strlist(l, n, "needs", &tmp, &ntmp) == 0) {
                src->needs = n;
                src->needs_inherited = inherited;
            }
            dag__strv_free(tmp, ntmp);
        } else {
            dag__expect(l, n, YNODE_SEQ, "needs");
        }
    } else if (!strcmp(key, "trigger_rule")) {
        char *s = NULL;
        if (dag__get_str(l, n, "trigger_rule", &s) == 0) {
            size_t i;
            for (i = 0; i < sizeof(trigger_names) / sizeof(*trigger_names); i++)
                if (!strcmp(s, trigger_names[i]))
                    break;
            if (i == sizeof(trigger_names) / sizeof(*trigger_names)) {
                char *hint = dag__suggest(s, trigger_names, 6);
                dag__nerr(l, n, "bad-trigger-rule", hint,
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
        if (dag__get_int(l, n, "retries", 0, 100, &iv) == 0)
            t->retries = (int)iv;
    } else if (!strcmp(key, "retry_delay")) {
        dag__get_duration(l, n, "retry_delay", &t->retry_delay_ms);
    } else if (!strcmp(key, "retry_backoff")) {
        dag__get_number(l, n, "retry_backoff", 1.0, &t->retry_backoff);
    } else if (!strcmp(key, "max_retry_delay")) {
        dag__get_duration(l, n, "max_retry_delay", &t->max_retry_delay_ms);
    } else if (!strcmp(key, "timeout")) {
        if (dag__get_duration(l, n, "timeout", &t->timeout_ms) == 0 && t->timeout_ms == 0)
            dag__nerr(l, n, "out-of-range", "leave 'timeout' out for no time limit",
                      "'timeout' must be above zero");
    } else if (!strcmp(key, "max_log_size")) {
        int64_t sz;
        if (dag__get_size(l, n, "max_log_size", &sz) == 0)
            t->max_log_size = sz ? sz : -1; /* 0: no limit */
    } else if (!strcmp(key, "max_output_size")) {
        dag__get_size(l, n, "max_output_size", &t->max_output_size);
    } else if (!strcmp(key, "max_outputs_size")) {
        dag__get_size(l, n, "max_outputs_size", &t->max_outputs_size);
    } else if (!strcmp(key, "on_log_limit")) {
        char *s = NULL;
        if (dag__get_str(l, n, "on_log_limit", &s) == 0) {
            if (!strcmp(s, "fail") || !strcmp(s, "truncate"))
                t->log_limit_fail = !strcmp(s, "fail");
            else
                dag__nerr(l, n, "bad-value", "'truncate' cuts the log and the task goes on",
                          "unknown on_log_limit '%s' (one of truncate, fail)", s);
        }
        free(s);
    } else if (!strcmp(key, "resources")) {
        dag__parse_resources(l, n, t, src, inherited);
    } else if (!strcmp(key, "inputs")) {
        if (dag__expect(l, n, YNODE_MAP, "inputs") == 0) {
            src->inputs = n;
            src->inputs_inherited = inherited;
        }
    } else if (!strcmp(key, "outputs")) {
        if (dag__get_strlist(l, n, "outputs", &t->outputs, &t->noutputs) == 0) {
            for (size_t i = 0; i < n->n; i++) {
                if (!dag__valid_filename(n->vals[i]->str))
                    dag__nerr(l, n->vals[i], "bad-name", NULL,
                              "output '%s' must be a plain file name ([A-Za-z0-9_.-], no '/')",
                              n->vals[i]->str);
                for (size_t j = 0; j < i; j++)
                    if (!strcmp(n->vals[i]->str, n->vals[j]->str))
                        dag__nerr(l, n->vals[i], "duplicate-output", NULL,
                                  "output '%s' is listed twice", n->vals[i]->str);
            }
        }
    } else if (!strcmp(key, "metrics")) {
        parse_metrics(l, n, t, src);
    } else if (!strcmp(key, "when")) {
        if (dag__get_str(l, n, "when", &t->when) == 0) {
            src->when = n;
            src->when_inherited = inherited;
        }
    } else if (!strcmp(key, "cache")) {
        dag__get_bool(l, n, "cache", &t->cache);
    } else if (!strcmp(key, "publish")) {
        if (dag__get_strlist(l, n, "publish", &t->publish, &t->npublish) == 0)
            src->publish = n;
    } else if (!strcmp(key, "priority")) {
        if (dag__get_int(l, n, "priority", -1000000, 1000000, &iv) == 0)
            t->priority = (int)iv;
    } else if (!strcmp(key, "labels")) {
        dag__get_kv_map(l, n, "labels", &t->labels, &t->nlabels, 0);
    } else if (!strcmp(key, "network")) {
        dag__get_bool(l, n, "network", &t->network);
    } else if (!strcmp(key, "mounts")) {
        parse_mounts(l, n, t);
    }
}

int
dag__is_task_key(const char *name)
{
    for (size_t i = 0; task_keys[i]; i++)
        if (!strcmp(task_keys[i], name))
            return 1;
    return 0;
}

void
dag__task_init(struct dag_task *t)
{
    memset(t, 0, sizeof(*t));
    t->image = xstrdup("host");
    t->trigger_rule = DAG_TRIGGER_ALL_SUCCESS;
    t->retry_delay_ms = DAG_DEFAULT_RETRY_DELAY_MS;
    t->retry_backoff = 1.0;
    t->max_retry_delay_ms = DAG_DEFAULT_MAX_RETRY_DELAY_MS;
    t->max_output_size = DAG_DEFAULT_MAX_OUTPUT_SIZE;
}

void
dag__task_fini(struct dag_task *t)
{
    free(t->name);
    dag__notify_free(t->notify, t->nnotify);
    dag__strv_free(t->command, t->ncommand);
    dag__strv_free(t->entrypoint, t->nentrypoint);
    free(t->image);
    dag__kv_free(t->env, t->nenv);
    dag__kv_free(t->secrets, t->nsecrets);
    free(t->needs);
    free(t->downstream);
    for (size_t i = 0; i < t->ninputs; i++) {
        free(t->inputs[i].name);
        free(t->inputs[i].task);
        free(t->inputs[i].file);
    }
    free(t->inputs);
    dag__strv_free(t->outputs, t->noutputs);
    free(t->metrics);
    dag__strv_free(t->metric_keys, t->nmetric_keys);
    free(t->when);
    expr_free(t->when_expr);
    free(t->gpu_type);
    dag__kv_free(t->labels, t->nlabels);
    dag__strv_free(t->publish, t->npublish);
    for (size_t i = 0; i < t->nmounts; i++) {
        free(t->mounts[i].host);
        free(t->mounts[i].path);
    }
    free(t->mounts);
    dag__map_fini(&t->map);
}

void
dag__src_fini(struct dag__task_src *src)
{
    dag__strv_free(src->matrix_keys, src->nmatrix_keys);
    free(src->matrix_key_items);
    src->matrix_keys = NULL;
    src->matrix_key_items = NULL;
    src->nmatrix_keys = 0;
}

/* `publish:` names outputs of the task, each once; the scheduler copies
 * them into the models folder next to its record (publish.json). */
static void
check_publish(struct dag__loader *l, const struct dag_task *t, const struct ynode *n)
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
                             ? dag__suggest(it->str, (const char *const *)t->outputs, t->noutputs)
                             : NULL;
            if (!hint)
                hint = xasprintf("list '%s' in the 'outputs' of '%s' too", it->str,
                                 t->name ? t->name : "the task");
            dag__nerr(l, it, "publish-not-output", hint,
                      "'publish' names '%s', which is not an output of %s%s%s", it->str,
                      t->name ? "task '" : "", t->name ? t->name : "the task", t->name ? "'" : "");
            free(hint);
            continue;
        }
        if (!strcmp(it->str, "publish.json")) {
            dag__nerr(l, it, "bad-name", "rename the output",
                      "'publish.json' cannot be published: it is the name of the record Cairn "
                      "writes next to the files");
            continue;
        }
        for (j = 0; j < i; j++)
            if (n->vals[j]->type == YNODE_SCALAR && !strcmp(n->vals[j]->str, it->str))
                dag__nerr(l, it, "duplicate-output", NULL, "'publish' lists '%s' twice", it->str);
    }
}

/* Fill a task from its mapping, with `defaults:` under it. */
void
dag__parse_task(struct dag__loader *l, const struct ynode *map, struct dag_task *t,
                struct dag__task_src *src, int is_defaults)
{
    memset(src, 0, sizeof(*src));
    src->map = map;
    dag__check_keys(l, map, task_keys, is_defaults ? "defaults" : "task", 0);
    for (size_t i = 0; task_keys[i]; i++) {
        const char *key = task_keys[i];
        if (dag__is_fanout_key(key) || !strcmp(key, "notify") || !strcmp(key, "deadline"))
            continue; /* below: the task's own, never from defaults */
        const struct ynode *own = ynode_get(map, key, NULL);
        const struct ynode *def =
            (!is_defaults && l->defaults) ? ynode_get(l->defaults, key, NULL) : NULL;
        int merges = !strcmp(key, "env") || !strcmp(key, "labels") || !strcmp(key, "resources") ||
                     !strcmp(key, "secrets");
        if (def && (!own || merges)) {
            int q = l->quiet;
            l->quiet = 1; /* reported once, when `defaults:` was checked */
            apply_field(l, key, def, t, src, 1);
            l->quiet = q;
        }
        if (own)
            apply_field(l, key, own, t, src, 0);
    }
    dag__parse_fanout(l, map, is_defaults ? NULL : t, src);
    const struct ynode *nt = ynode_get(map, "notify", NULL), *dl = ynode_get(map, "deadline", NULL);
    if (is_defaults && (nt || dl)) {
        dag__nerr(l, nt ? nt : dl, "not-in-defaults", "give it to the DAG or to each task",
                  "'%s' is not taken from 'defaults'", nt ? "notify" : "deadline");
    } else {
        if (nt && !nt->is_null)
            dag__parse_notify(l, nt, &t->notify, &t->nnotify, (long)(t - l->d->tasks));
        if (dl && !dl->is_null)
            dag__parse_deadline(l, dl, &t->deadline, 1);
    }
    /* a present but invalid command was reported already */
    if (!is_defaults && !t->command && !ynode_get(map, "command", NULL) &&
        !(l->defaults && ynode_get(l->defaults, "command", NULL)))
        dag__err(l, t->line, t->col, "missing-command",
                 "every task needs `command: [program, args...]`", "task '%s' has no 'command'",
                 t->name);
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
    if (!is_defaults)
        dag__check_resources(l, t, src);
}

const char *
dag_trigger_name(enum dag_trigger t)
{
    if ((unsigned)t < sizeof(trigger_names) / sizeof(*trigger_names))
        return trigger_names[t];
    return "?";
}
