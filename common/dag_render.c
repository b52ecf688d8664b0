/* dag_render.c - what a run needs from a loaded DAG.
 *
 * Owns the run-time functions of dag.h: a run's data interval
 * (dag_interval), turning a user's date into a logical date
 * (dag_logical_date_for), rendering a task's command and env for a run
 * (dag_render_task: the template context of tmpl.h with the run's dates in
 * the DAG's time zone, its param overrides and, for an instance of a
 * mapped task, its item, index and the aggregates) and the host folder of
 * `code:` (dag_code_path). All of them only read the DAG, which may be
 * shared between threads.
 */
#include <stdlib.h>
#include <string.h>

#include "cal.h"
#include "dag_int.h"
#include "err.h"
#include "tmpl.h"
#include "tz.h"
#include "util.h"

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
    ctx.item_json = rc->item_json;
    ctx.map_index = rc->map_index;
    ctx.aggregate = rc->aggregate;
    ctx.aggregate_ud = rc->aggregate_ud;
    ctx.keep_unresolved = rc->keep_unresolved;

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
    /* every param, also as the environment variable CAIRN_PARAM_<NAME>: a
     * script reads it without the value being pasted into its text */
    ev = xrealloc(ev, (t->nenv + d->nparams + 1) * sizeof(*ev));
    size_t ne = t->nenv;
    for (size_t i = 0; i < d->nparams; i++) {
        struct sb k;
        sb_init(&k);
        sb_puts(&k, "CAIRN_PARAM_");
        for (const char *c = d->params[i].name; *c; c++)
            sb_putc(&k, (*c >= 'a' && *c <= 'z')   ? (char)(*c - 'a' + 'A')
                        : (*c >= 'A' && *c <= 'Z') ? *c
                        : (*c >= '0' && *c <= '9') ? *c
                                                   : '_');
        size_t j;
        for (j = t->nenv; j < ne; j++)
            if (!strncmp(ev[j], k.buf, k.len) && ev[j][k.len] == '=')
                break;
        const char *v = render_param(&ud, d->params[i].name);
        /* a long list (bounded by max_map_items, not by the param limit)
         * would not fit an environment: it stays out */
        if (j == ne && (!v || strlen(v) <= DAG_PARAM_MAX_BYTES)) {
            ev[ne++] = xasprintf("%s=%s", k.buf, v ? v : "");
        }
        sb_free(&k);
    }
    ev[ne] = NULL;
    *argv = av;
    *envp = ev;
    return 0;
fail:
    dag_strv_free(av);
    dag_strv_free(ev);
    return CAIRN_EPARSE;
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
