/* cmd_render.c - `cairn render FILE`: what each task of a DAG file would run
 * for a logical date, templates rendered (common/tmpl.c), offline.
 *
 * It owns the render option table, the parameter overrides (--param) it
 * builds for the run context, and how fan-out is shown: a matrix task's
 * instances (known at load) each rendered, at most RENDER_INSTANCES of them
 * in text; a task mapped at run time once, its item and map_index left as
 * written; aggregates, which have no value offline, are left as written
 * too. Exit codes: 0 rendered, 1 the file does not load, a parameter is not
 * the DAG's or a task does not render, 2 a usage error (a bad --date too).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cal.h"
#include "cli.h"
#include "cliutil.h"
#include "dag.h"
#include "diag.h"
#include "opt.h"
#include "tmpl.h"
#include "tz.h"
#include "util.h"

/* Instances of a matrix task the text output lists. */
#define RENDER_INSTANCES 20

struct render_args {
    const char *date, *run_id;
    struct opt_list params;
    int json;
};

static const struct opt render_opts[] = {
    OPT_STR("--date", NULL, "D", struct render_args, date,
            "the logical date: YYYY-MM-DD (that day's first schedule tick) or a timestamp "
            "(default: today)"),
    OPT_FLAG("--json", NULL, struct render_args, json,
             "print the run's dates and each task's command and env as JSON"),
    OPT_LIST("--param", NULL, "NAME=VALUE", struct render_args, params,
             "override a parameter of the DAG, as trigger --param does (repeatable)"),
    OPT_STR("--run-id", NULL, "ID", struct render_args, run_id,
            "the run id templates see (default: scheduled__ or manual__ and the date)"),
};

static const struct opt_cmd render_cmd = {
    .name = "render",
    .args = "FILE",
    .max_args = 1,
    .about = "Print each task's command and env as they would run for logical date D\n"
             "(YYYY-MM-DD: that day's first schedule tick; or a timestamp), offline.",
    OPT_TABLE(render_opts),
};

/* One rendered command and env: printed under indent after the line head
 * (may be NULL), or as JSON fields of o. Nothing is printed for a task that
 * does not render. */
static int
render_one(const struct dag *d, size_t ti, const struct dag_run_ctx *rcx, const char *head,
           const char *indent, json_t *o)
{
    char **av = NULL, **ev = NULL, err[256], name[DAG_INSTANCE_NAME_MAX];
    const char *who = d->tasks[ti].name;
    if (rcx->item_json)
        who = dag_instance_name(who, rcx->map_index, name, sizeof(name));
    if (dag_render_task(d, ti, rcx, &av, &ev, err, sizeof(err)) != 0) {
        fprintf(stderr, "cairn: render: task '%s': %s\n", who, err);
        return 1;
    }
    if (o) {
        json_t *ja = json_array(), *je = json_object();
        for (char **p = av; *p; p++)
            json_array_append_new(ja, json_string(*p));
        for (char **p = ev; *p; p++) {
            char *eq = strchr(*p, '=');
            *eq = '\0';
            json_object_set_new(je, *p, json_string(eq + 1));
            *eq = '=';
        }
        json_object_set_new(o, "command", ja);
        json_object_set_new(o, "env", je);
        const struct dag_task *t = &d->tasks[ti];
        if (t->nsecrets) { /* their names: the values are the scheduler's */
            json_t *js = json_object();
            for (size_t i = 0; i < t->nsecrets; i++)
                json_object_set_new(js, t->secrets[i].key, json_string(t->secrets[i].value));
            json_object_set_new(o, "secrets", js);
        }
    } else {
        struct sb sb;
        sb_init(&sb);
        if (head)
            printf("%s\n", head);
        for (char **p = av; *p; p++) {
            if (p != av)
                sb_putc(&sb, ' ');
            cli_shell_quote(&sb, *p);
        }
        printf("%scommand: %s\n", indent, sb.buf);
        sb_free(&sb);
        if (*ev) {
            printf("%senv:\n", indent);
            for (char **p = ev; *p; p++)
                printf("%s  %s\n", indent, *p);
        }
        const struct dag_task *t = &d->tasks[ti];
        if (t->nsecrets) {
            printf("%ssecrets:\n", indent);
            for (size_t i = 0; i < t->nsecrets; i++)
                printf("%s  %s=<secret %s>\n", indent, t->secrets[i].key, t->secrets[i].value);
        }
    }
    dag_strv_free(av);
    dag_strv_free(ev);
    return 0;
}

struct render_items {
    const struct dag *d;
    size_t ti;
    struct dag_run_ctx rcx;
    json_t *instances; /* --json: every instance; else NULL */
    int rc;
};

static int
render_item_cb(void *ud, size_t index, const char *item, size_t len)
{
    struct render_items *ri = ud;
    char name[DAG_INSTANCE_NAME_MAX];
    const struct dag_task *t = &ri->d->tasks[ri->ti];
    if (!ri->instances && index >= RENDER_INSTANCES)
        return 1; /* the rest are counted, not shown */
    char *json = xstrndup(item, len);
    ri->rcx.item_json = json;
    ri->rcx.map_index = (long)index;
    dag_instance_name(t->name, (long)index, name, sizeof(name));
    if (ri->instances) {
        /* no "item": a JSON library would print 0.1 as 0.10000000000000001 */
        json_t *o = json_pack("{s:s, s:I}", "name", name, "index", (json_int_t)index);
        if (render_one(ri->d, ri->ti, &ri->rcx, NULL, NULL, o) == 0)
            json_array_append(ri->instances, o);
        else
            ri->rc = 1;
        json_decref(o);
    } else {
        char *head = xasprintf("  %s:", name);
        ri->rc |= render_one(ri->d, ri->ti, &ri->rcx, head, "    ", NULL);
        free(head);
    }
    ri->rcx.item_json = NULL;
    free(json);
    return 0;
}

/* A mapped task: its header, then a matrix's instances, or the command once
 * for instances known at run time. */
static int
render_mapped(const struct dag *d, size_t ti, const struct dag_run_ctx *rcx, json_t *o)
{
    const struct dag_task *t = &d->tasks[ti];
    const struct dag_map *m = &t->map;
    char how[200];
    if (m->kind == DAG_MAP_PARAM)
        snprintf(how, sizeof(how), "map: {over: params.%s}", m->param);
    else if (m->kind == DAG_MAP_FROM)
        snprintf(how, sizeof(how), "map: {from: %s/%s}", m->from_task, m->from_file);
    else if (m->kind == DAG_MAP_ZIP)
        snprintf(how, sizeof(how), "map: {zip: %s}: one per instance of %s", m->zip_task,
                 m->zip_task);
    if (m->kind != DAG_MAP_MATRIX) {
        if (o) {
            json_object_set_new(o, "map",
                                json_string(m->kind == DAG_MAP_PARAM  ? "over"
                                            : m->kind == DAG_MAP_FROM ? "from"
                                                                      : "zip"));
            return render_one(d, ti, rcx, NULL, NULL, o);
        }
        char *head = xasprintf("%s: instances known at run time (%s)", t->name, how);
        int rc = render_one(d, ti, rcx, head, "  ", NULL);
        free(head);
        return rc;
    }
    struct render_items ri = {d, ti, *rcx, o ? json_array() : NULL, 0};
    if (o) {
        json_object_set_new(o, "map", json_string("matrix"));
        ri.rc = render_one(d, ti, rcx, NULL, NULL, o);
    } else if (m->nitems == 0) {
        printf("%s: no instances (the matrix has no combinations): skipped in every run\n",
               t->name);
        return 0;
    } else {
        printf("%s: %zu instance%s (matrix)\n", t->name, m->nitems, m->nitems == 1 ? "" : "s");
    }
    tmpl_items_foreach(m->items_json, render_item_cb, &ri);
    if (o)
        json_object_set_new(o, "instances", ri.instances);
    else if (m->nitems > RENDER_INSTANCES)
        printf("  \xe2\x80\xa6 and %zu more\n", m->nitems - RENDER_INSTANCES); /* U+2026 */
    return ri.rc;
}

static int
render_main(int argc, char **argv)
{
    struct render_args a = {0};
    struct dag_kv *ov = NULL;
    size_t nov = 0;
    int nargs, rc = opt_parse(&render_cmd, argc, argv, &a, &nargs);
    if (rc != OPT_GO)
        return rc;
    const char *file = nargs ? argv[1] : NULL, *date = a.date, *run_id = a.run_id;
    int json = a.json;
    rc = 0;
    for (size_t i = 0; i < a.params.n; i++) {
        const char *kv = a.params.v[i], *eq = strchr(kv, '=');
        if (!eq || eq == kv) {
            rc = cli_usage_error("render: --param takes NAME=VALUE, got '%s'", kv);
            goto out;
        }
        ov = xrealloc(ov, (nov + 1) * sizeof(*ov));
        ov[nov].key = xstrndup(kv, (size_t)(eq - kv));
        ov[nov].value = xstrdup(eq + 1);
        nov++;
    }
    if (nargs == 0) {
        rc = opt_fail(&render_cmd, "missing FILE", NULL);
        goto out;
    }

    struct diag_list dl;
    struct dag *d = NULL;
    diag_list_init(&dl);
    if (dag_load_file(&d, file, &dl) != 0) {
        diag_sort(&dl);
        diag_print(&dl, stderr);
        diag_list_free(&dl);
        rc = 1;
        goto out;
    }
    diag_list_free(&dl);

    char err[256];
    if (dag_check_overrides(d, ov, nov, err, sizeof(err)) != 0) {
        fprintf(stderr, "cairn: render: %s\n", err);
        dag_free(d);
        rc = 1;
        goto out;
    }

    int64_t secs;
    int has_time = 0, has_off = 0;
    if (date) {
        if (cal_parse(date, &secs, &has_time, &has_off) != 0) {
            fprintf(stderr, "cairn: render: invalid --date '%s' (use YYYY-MM-DD or an ISO 8601 "
                            "timestamp)\n", date);
            dag_free(d);
            rc = 2;
            goto out;
        }
    } else {
        int64_t now = (int64_t)time(NULL);
        secs = tz_utc_to_local(d->tz, now);
        secs -= ((secs % 86400) + 86400) % 86400; /* today, local midnight */
    }
    struct dag_run_ctx rcx;
    char ts[40], rid[96];
    memset(&rcx, 0, sizeof(rcx));
    rcx.logical_date = dag_logical_date_for(d, secs, has_time, has_off);
    dag_interval(d, rcx.logical_date, &rcx.data_interval_end);
    cal_format_iso(rcx.logical_date, 0, 1, ts, sizeof(ts));
    snprintf(rid, sizeof(rid), "%s__%s", d->schedule ? "scheduled" : "manual", ts);
    rcx.run_id = run_id ? run_id : rid;
    rcx.overrides = ov;
    rcx.noverrides = nov;

    char lts[40], lte[40];
    cal_format_iso(rcx.logical_date, tz_offset_at(d->tz, rcx.logical_date), 0, lts, sizeof(lts));
    cal_format_iso(rcx.data_interval_end, tz_offset_at(d->tz, rcx.data_interval_end), 0, lte,
                   sizeof(lte));
    json_t *jt = json ? json_array() : NULL;
    if (!json)
        printf("dag %s  run %s\nlogical date %s  data interval [%s, %s)\n\n", d->name, rcx.run_id,
               lts, lts, lte);
    rcx.map_index = -1;
    rcx.keep_unresolved = true; /* item names and aggregates have no value offline */
    for (size_t k = 0; k < d->ntasks; k++) {
        size_t ti = d->topo[k];
        json_t *o =
            json ? json_pack("{s:s, s:s}", "task", d->tasks[ti].name, "image", d->tasks[ti].image)
                 : NULL;
        int trc;
        if (d->tasks[ti].map.kind != DAG_MAP_NONE) {
            trc = render_mapped(d, ti, &rcx, o);
        } else {
            char *head = xasprintf("%s:", d->tasks[ti].name);
            trc = render_one(d, ti, &rcx, head, "  ", o);
            free(head);
        }
        rc |= trc;
        if (o && trc == 0)
            json_array_append_new(jt, o);
        else
            json_decref(o);
    }
    if (json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:o}", "dag", d->name, "run_id", rcx.run_id,
                              "logical_date", lts, "data_interval_end", lte, "tasks", jt);
        cli_print_json(o);
        json_decref(o);
    }
    dag_free(d);
out:
    for (size_t i = 0; i < nov; i++) {
        free(ov[i].key);
        free(ov[i].value);
    }
    free(ov);
    opt_list_free(&a.params);
    return rc;
}

const struct cli_command cmd_render = {"render", render_main, &render_cmd, NULL};
