/* cmd_models.c - `cairn models list|show|promote|rollback`: the models
 * folder as a registry, through the scheduler's HTTP API (docs/api.md,
 * "Models"; the manual is docs/cli.md).
 *
 * It owns the models option tables, finding a release named without its
 * DAG/TASK, and the text of the release table and of one release.
 * Exit codes as cli.h says: 0 done, 1 the scheduler is unreachable or
 * answered with an error (no such release, nothing to roll back, not
 * allowed), 2 a usage error.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "cliutil.h"
#include "opt.h"
#include "table.h"
#include "util.h"

struct models_args {
    const char *server, *stage;
    int json;
};

static const struct opt models_list_opts[] = {
    OPT_FLAG("--json", NULL, struct models_args, json, "print the API's answer as JSON"),
    OPT_SERVER(struct models_args, server),
};

static const struct opt models_show_opts[] = {
    OPT_FLAG("--json", NULL, struct models_args, json, "print the API's answer as JSON"),
    OPT_SERVER(struct models_args, server),
};

static const struct opt models_stage_opts[] = {
    OPT_FLAG("--json", NULL, struct models_args, json, "print the recorded change as JSON"),
    OPT_SERVER(struct models_args, server),
    {"--stage", NULL, "production|staging", "the stage", OPT_T_CHOICE,
     OPT__OFF(struct models_args, stage, const char *), 0, 1},
};

static const struct opt_cmd models_list_cmd, models_show_cmd, models_promote_cmd,
    models_rollback_cmd;

static const struct opt_cmd *const models_family[] = {
    &models_list_cmd, &models_show_cmd, &models_promote_cmd, &models_rollback_cmd, NULL,
};

static const struct opt_cmd models_list_cmd = {
    .name = "models list",
    .args = "[DAG/TASK]",
    .max_args = 1,
    .about = "The releases in the models folder (of every publishing task, or of DAG/TASK),\n"
             "newest logical date first: run, digest, metrics, when it was published, the\n"
             "stages (latest, production, staging) it holds, and whether the run's artifacts\n"
             "are still stored.",
    OPT_TABLE(models_list_opts),
    .family = models_family,
};

static const struct opt_cmd models_show_cmd = {
    .name = "models show",
    .args = "RELEASE",
    .max_args = 1,
    .about = "One release (DAG/TASK/RELEASE, or RELEASE when one task has it): its run, params,\n"
             "DAG version, image, command, the digests of the data it was made from, its files\n"
             "and metrics, the stages it holds and the stage changes that concern it.",
    OPT_TABLE(models_show_opts),
    .family = models_family,
};

static const struct opt_cmd models_promote_cmd = {
    .name = "models promote",
    .args = "RELEASE",
    .max_args = 1,
    .about = "Point a stage (production or staging) of the release's DAG/TASK at it: the link\n"
             "MODELS/DAG/TASK/STAGE is switched in one rename, and the change is recorded with\n"
             "who made it and when.",
    OPT_TABLE(models_stage_opts),
    .family = models_family,
};

static const struct opt_cmd models_rollback_cmd = {
    .name = "models rollback",
    .args = "DAG/TASK",
    .max_args = 1,
    .about = "Put a stage of DAG/TASK back on the release that held it before the last promote\n"
             "that was not rolled back (again: the one before that), recorded like a promote.",
    OPT_TABLE(models_stage_opts),
    .family = models_family,
};

/* "DAG/TASK" into two malloc'd parts; -1 if arg is not of that form. */
static int
split_model(const char *arg, char **dag, char **task)
{
    const char *sl = strchr(arg, '/');
    if (!sl || sl == arg || !sl[1] || strchr(sl + 1, '/'))
        return -1;
    *dag = xstrndup(arg, (size_t)(sl - arg));
    *task = xstrdup(sl + 1);
    return 0;
}

/* RELEASE or DAG/TASK/RELEASE into its three parts (malloc'd): the short
 * form is looked up among every model's releases. Returns 0, or 1 after
 * printing why not (none or several have it), or 2 (a usage error). */
static int
resolve_release(const char *server, const char *arg, char **dag, char **task, char **rel)
{
    const char *a = strchr(arg, '/'), *b = a ? strchr(a + 1, '/') : NULL;
    if (a && b) {
        if (a == arg || b == a + 1 || !b[1] || strchr(b + 1, '/'))
            return cli_usage_error("'%s' is not DAG/TASK/RELEASE", arg);
        *dag = xstrndup(arg, (size_t)(a - arg));
        *task = xstrndup(a + 1, (size_t)(b - a - 1));
        *rel = xstrdup(b + 1);
        return 0;
    }
    if (a)
        return cli_usage_error("'%s': name a release as RELEASE or DAG/TASK/RELEASE", arg);
    json_t *resp = NULL;
    if (cli_api_get(server, "/api/v1/models", &resp) != 0)
        return 1;
    struct sb found;
    sb_init(&found);
    size_t i, k, n = 0;
    json_t *m, *r;
    json_array_foreach(json_object_get(resp, "models"), i, m)
    {
        json_array_foreach(json_object_get(m, "releases"), k, r)
        {
            if (strcmp(cli_jstr(r, "release") ?: "", arg))
                continue;
            if (n++ == 0) {
                *dag = xstrdup(cli_jstr(m, "dag"));
                *task = xstrdup(cli_jstr(m, "task"));
                *rel = xstrdup(arg);
            }
            sb_printf(&found, " %s/%s/%s", cli_jstr(m, "dag"), cli_jstr(m, "task"), arg);
        }
    }
    json_decref(resp);
    int rc = 0;
    if (n == 0) {
        fprintf(stderr, "cairn: no release '%s' in the models folder (see `cairn models list`)\n",
                arg);
        rc = 1;
    } else if (n > 1) {
        fprintf(stderr, "cairn: several tasks have a release '%s'; name one of:%s\n", arg,
                found.buf);
        free(*dag);
        free(*task);
        free(*rel);
        rc = 1;
    }
    sb_free(&found);
    return rc;
}

/* "evaluate.accuracy=0.95 train.loss=0.1" from {task: {name: number}}. */
static void
fmt_metrics(struct sb *b, const json_t *metrics, const char *sep)
{
    const char *task, *name;
    json_t *tv, *v;
    json_object_foreach((json_t *)metrics, task, tv)
    {
        json_object_foreach(tv, name, v)
        {
            if (!json_is_number(v))
                continue;
            sb_printf(b, "%s%s.%s=%.6g", b->len ? sep : "", task, name, json_number_value(v));
        }
    }
}

static void
fmt_stages(struct sb *b, const json_t *stages)
{
    size_t i;
    json_t *v;
    json_array_foreach(stages, i, v)
    {
        sb_printf(b, "%s%s", i ? "," : "", json_string_value(v));
    }
}

static void
add_release_rows(struct table *t, const json_t *model)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(model, "releases"), i, r)
    {
        char created[64];
        struct sb b;
        table_add_row(t);
        table_cellf(t, "%s/%s", cli_jstr(model, "dag"), cli_jstr(model, "task"));
        table_cell(t, cli_jstr(r, "release"));
        table_cell(t, cli_jstr(r, "logical_date"));
        cli_fmt_field_time(r, "created_at", 0, created, sizeof(created));
        table_cell(t, created);
        const char *dg = cli_jstr(r, "digest");
        table_cellf(t, "%.12s", dg ? dg : "-");
        sb_init(&b);
        fmt_stages(&b, json_object_get(r, "stages"));
        table_cell(t, b.len ? b.buf : "-");
        sb_free(&b);
        const char *art = cli_jstr(r, "artifacts") ?: "?";
        table_cell_color(t, art, !strcmp(art, "stored") ? NULL : "33");
        sb_init(&b);
        fmt_metrics(&b, json_object_get(r, "metrics"), " ");
        table_cell(t, b.len ? b.buf : "-");
        sb_free(&b);
    }
}

static int
models_list_run(int argc, char **argv)
{
    struct models_args a = {0};
    int nargs, prc = opt_parse(&models_list_cmd, argc, argv, &a, &nargs);
    if (prc != OPT_GO)
        return prc;
    const char *server = client_server_url(a.server);
    struct sb path;
    sb_init(&path);
    char *dag = NULL, *task = NULL;
    if (nargs == 1) {
        if (split_model(argv[1], &dag, &task) != 0) {
            sb_free(&path);
            return opt_fail(&models_list_cmd, "expected DAG/TASK, not", argv[1]);
        }
        char *ed = client_urlencode(dag), *et = client_urlencode(task);
        sb_printf(&path, "/api/v1/models/%s/%s", ed, et);
        free(ed);
        free(et);
    } else {
        sb_printf(&path, "/api/v1/models");
    }
    json_t *resp = NULL;
    int rc = cli_api_get(server, path.buf, &resp);
    sb_free(&path);
    free(dag);
    free(task);
    if (rc)
        return 1;
    if (a.json) {
        cli_print_json(resp);
        json_decref(resp);
        return 0;
    }
    struct table *t = table_new();
    static const char *const cols[] = {"MODEL",  "RELEASE", "LOGICAL DATE", "PUBLISHED",
                                       "DIGEST", "STAGES",  "ARTIFACTS",    "METRICS"};
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
        table_add_column(t, cols[i], TABLE_LEFT);
    if (nargs == 1) {
        add_release_rows(t, resp);
    } else {
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(resp, "models"), i, m)
        {
            add_release_rows(t, m);
        }
    }
    if (table_rows(t) == 0)
        printf("no releases in the models folder yet (a task with `publish:` makes them)\n");
    else
        table_print(t, stdout, table_use_color(stdout));
    table_free(t);
    json_decref(resp);
    return 0;
}

static void
print_change_line(const json_t *x, const char *lead)
{
    char at[64];
    cli_fmt_field_time(x, "at", 0, at, sizeof(at));
    const char *prev = cli_jstr(x, "previous");
    printf("%s%s  %-8s %-10s %s (was %s) by %s\n", lead, at, cli_jstr(x, "action"),
           cli_jstr(x, "stage"), cli_jstr(x, "release"), prev ? prev : "none", cli_jstr(x, "by"));
}

static void
print_release(const json_t *r)
{
    char buf[64];
    struct sb b;
    const json_t *lin = json_object_get(r, "lineage");
    cli_print_header_line("release", cli_jstr(r, "release"));
    sb_init(&b);
    sb_printf(&b, "%s/%s", cli_jstr(r, "dag"), cli_jstr(r, "task"));
    cli_print_header_line("model", b.buf);
    sb_free(&b);
    sb_init(&b);
    json_int_t att = 0;
    cli_jint(r, "attempt", &att);
    sb_printf(&b, "%s (attempt %lld", cli_jstr(r, "run_id") ?: "?", (long long)att);
    const json_t *run = json_object_get(lin, "run");
    if (json_is_object(run))
        sb_printf(&b, ", %s", cli_jstr(run, "state"));
    else
        sb_printf(&b, ", no longer in the state store");
    sb_printf(&b, ")");
    cli_print_header_line("run", b.buf);
    sb_free(&b);
    cli_print_header_line("logical date", cli_jstr(r, "logical_date"));
    cli_fmt_field_time(r, "created_at", 0, buf, sizeof(buf));
    cli_print_header_line("published", buf);
    cli_print_header_line("digest", cli_jstr(r, "digest"));
    sb_init(&b);
    fmt_stages(&b, json_object_get(r, "stages"));
    cli_print_header_line("stages", b.buf);
    sb_free(&b);
    const char *art = cli_jstr(r, "artifacts");
    if (art && !strcmp(art, "collected"))
        cli_print_header_line("artifacts", "gone: the run's artifacts were removed by artifacts "
                                           "gc (the release's files here are kept)");
    else
        cli_print_header_line("artifacts", art);
    cli_print_header_line("path", cli_jstr(r, "path"));
    cli_print_header_line("dag version", cli_jstr(r, "dag_version"));
    const char *img = cli_jstr(lin, "image"), *idig = cli_jstr(lin, "image_digest");
    sb_init(&b);
    sb_printf(&b, "%s%s%s%s", img ? img : "-", idig ? " (" : "", idig ? idig : "", idig ? ")" : "");
    cli_print_header_line("image", b.buf);
    sb_free(&b);
    sb_init(&b);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(lin, "argv"), i, v)
    {
        if (i)
            sb_printf(&b, " ");
        cli_shell_quote(&b, json_string_value(v) ?: "");
    }
    cli_print_header_line("command", b.buf);
    sb_free(&b);
    const json_t *code = json_object_get(lin, "code");
    if (cli_jstr(code, "dir")) {
        sb_init(&b);
        sb_printf(&b, "%s (sha256 %s)", cli_jstr(code, "dir"), cli_jstr(code, "sha256") ?: "?");
        cli_print_header_line("code", b.buf);
        sb_free(&b);
    }
    cli_print_header_line("cache key", cli_jstr(code, "cache_key"));
    sb_init(&b);
    const char *k;
    json_object_foreach((json_t *)json_object_get(r, "params"), k, v)
    {
        sb_printf(&b, "%s%s=%s", b.len ? " " : "", k, json_string_value(v) ?: "?");
    }
    cli_print_header_line("params", b.buf);
    sb_free(&b);
    const json_t *inputs = json_object_get(lin, "inputs");
    if (json_array_size(inputs)) {
        printf("\ndata it was made from:\n");
        json_array_foreach(inputs, i, v)
        {
            printf("  %-14s %s/%s  %s\n", cli_jstr(v, "name") ?: "?", cli_jstr(v, "task") ?: "?",
                   cli_jstr(v, "file") ?: "?", cli_jstr(v, "sha256") ?: "?");
        }
    }
    printf("\nfiles:\n");
    json_array_foreach(json_object_get(r, "outputs"), i, v)
    {
        json_int_t size = 0;
        cli_jint(v, "size", &size);
        cli_fmt_size(size, buf, sizeof(buf));
        printf("  %-14s %s  %s%s\n", cli_jstr(v, "name") ?: "?", cli_jstr(v, "sha256") ?: "?", buf,
               json_is_true(json_object_get(v, "stored")) ? "" : "  (artifact collected)");
    }
    sb_init(&b);
    fmt_metrics(&b, json_object_get(r, "metrics"), "\n  ");
    if (b.len)
        printf("\nmetrics:\n  %s\n", b.buf);
    sb_free(&b);
    const json_t *hist = json_object_get(r, "history");
    if (json_array_size(hist)) {
        printf("\nstage history:\n");
        json_array_foreach(hist, i, v)
        {
            print_change_line(v, "  ");
        }
    }
}

static int
models_show_run(int argc, char **argv)
{
    struct models_args a = {0};
    int nargs, prc = opt_parse(&models_show_cmd, argc, argv, &a, &nargs);
    if (prc != OPT_GO)
        return prc;
    if (nargs == 0)
        return opt_fail(&models_show_cmd, "missing RELEASE", NULL);
    const char *server = client_server_url(a.server);
    char *dag, *task, *rel;
    int rc = resolve_release(server, argv[1], &dag, &task, &rel);
    if (rc)
        return rc;
    char *e[3] = {client_urlencode(dag), client_urlencode(task), client_urlencode(rel)};
    char *path = xasprintf("/api/v1/models/%s/%s/releases/%s", e[0], e[1], e[2]);
    json_t *resp = NULL;
    rc = cli_api_get(server, path, &resp);
    free(path);
    for (int i = 0; i < 3; i++)
        free(e[i]);
    free(dag);
    free(task);
    free(rel);
    if (rc)
        return 1;
    if (a.json)
        cli_print_json(resp);
    else
        print_release(resp);
    json_decref(resp);
    return 0;
}

static int
post_change(const char *server, const char *path, const char *stage, int json)
{
    json_t *body = json_pack("{s:s}", "stage", stage), *resp = NULL;
    char err[1024];
    int rc = client_post_json(server, path, body, &resp, err, sizeof(err));
    json_decref(body);
    if (rc) {
        fprintf(stderr, "cairn: %s\n", err);
        return 1;
    }
    if (json)
        cli_print_json(resp);
    else {
        const char *prev = cli_jstr(resp, "previous");
        printf("%s/%s: %s is now %s (was %s), by %s\n", cli_jstr(resp, "dag"),
               cli_jstr(resp, "task"), cli_jstr(resp, "stage"), cli_jstr(resp, "release"),
               prev ? prev : "none", cli_jstr(resp, "by"));
    }
    json_decref(resp);
    return 0;
}

static int
models_stage_run(int argc, char **argv)
{
    bool promote = !strcmp(argv[0], "promote");
    const struct opt_cmd *cmd = promote ? &models_promote_cmd : &models_rollback_cmd;
    struct models_args a = {0};
    int nargs, prc = opt_parse(cmd, argc, argv, &a, &nargs);
    if (prc != OPT_GO)
        return prc;
    if (nargs == 0)
        return opt_fail(cmd, promote ? "missing RELEASE" : "missing DAG/TASK", NULL);
    if (!a.stage)
        return opt_fail(cmd, "missing --stage production|staging", NULL);
    const char *server = client_server_url(a.server);
    char *dag = NULL, *task = NULL, *rel = NULL, *path;
    if (promote) {
        int rc = resolve_release(server, argv[1], &dag, &task, &rel);
        if (rc)
            return rc;
    } else if (split_model(argv[1], &dag, &task) != 0) {
        return opt_fail(cmd, "expected DAG/TASK, not", argv[1]);
    }
    char *ed = client_urlencode(dag), *et = client_urlencode(task);
    if (promote) {
        char *er = client_urlencode(rel);
        path = xasprintf("/api/v1/models/%s/%s/releases/%s/promote", ed, et, er);
        free(er);
    } else {
        path = xasprintf("/api/v1/models/%s/%s/rollback", ed, et);
    }
    int rc = post_change(server, path, a.stage, a.json);
    free(path);
    free(ed);
    free(et);
    free(dag);
    free(task);
    free(rel);
    return rc;
}

static const struct opt_sub models_subs[] = {
    {"list", &models_list_cmd, models_list_run},
    {"show", &models_show_cmd, models_show_run},
    {"promote", &models_promote_cmd, models_stage_run},
    {"rollback", &models_rollback_cmd, models_stage_run},
};

static const struct opt_group models_group = {
    .name = "models",
    .about = "The models folder as a registry: list its releases, show one with its lineage,\n"
             "promote a release to production or staging, roll a stage back.",
    OPT_SUBS(models_subs),
};

static int
models_main(int argc, char **argv)
{
    return opt_dispatch(&models_group, argc, argv);
}

const struct cli_command cmd_models = {"models", models_main, NULL, &models_group};
