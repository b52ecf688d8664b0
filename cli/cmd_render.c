/* cmd_render.c - `cairn render FILE`: what each task of a DAG file would run
 * for a logical date, templates rendered (common/tmpl.c), offline.
 *
 * It owns the render option table and the parameter overrides (--param) it
 * builds for the run context. Exit codes: 0 rendered, 1 the file does not
 * load, a parameter is not the DAG's or a task does not render, 2 a usage
 * error (a bad --date too).
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
#include "tz.h"
#include "util.h"

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
    for (size_t k = 0; k < d->ntasks; k++) {
        size_t ti = d->topo[k];
        char **av = NULL, **ev = NULL;
        if (dag_render_task(d, ti, &rcx, &av, &ev, err, sizeof(err)) != 0) {
            fprintf(stderr, "cairn: render: task '%s': %s\n", d->tasks[ti].name, err);
            rc = 1;
            continue;
        }
        if (json) {
            json_t *ja = json_array(), *je = json_object();
            for (char **p = av; *p; p++)
                json_array_append_new(ja, json_string(*p));
            for (char **p = ev; *p; p++) {
                char *eq = strchr(*p, '=');
                *eq = '\0';
                json_object_set_new(je, *p, json_string(eq + 1));
                *eq = '=';
            }
            json_array_append_new(jt, json_pack("{s:s, s:s, s:o, s:o}", "task",
                                                d->tasks[ti].name, "image", d->tasks[ti].image,
                                                "command", ja, "env", je));
        } else {
            struct sb sb;
            sb_init(&sb);
            for (char **p = av; *p; p++) {
                if (p != av)
                    sb_putc(&sb, ' ');
                cli_shell_quote(&sb, *p);
            }
            printf("%s:\n  command: %s\n", d->tasks[ti].name, sb.buf);
            sb_free(&sb);
            if (*ev) {
                printf("  env:\n");
                for (char **p = ev; *p; p++)
                    printf("    %s\n", *p);
            }
        }
        dag_strv_free(av);
        dag_strv_free(ev);
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
