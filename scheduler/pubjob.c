/* pubjob.c - publishing a task's outputs to the models folder from the
 * engine (pubjob.h); publish.c does the file work. */
#include "pubjob.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cache.h"
#include "cal.h"
#include "commit.h"
#include "core.h"
#include "err.h"
#include "log.h"
#include "publish.h"
#include "taskstate.h"
#include "util.h"

/* Metrics of task idx and of every task upstream of it, by task name. */
static json_t *
lineage_metrics(const struct sched_run *r, size_t idx)
{
    const struct dag *d = r->dv->dag;
    bool *seen = xcalloc(d->ntasks + 1, sizeof(*seen));
    size_t *stack = xcalloc(d->ntasks + 1, sizeof(*stack));
    size_t sp = 0;
    stack[sp++] = idx;
    seen[idx] = true;
    while (sp) {
        const struct dag_task *x = &d->tasks[stack[--sp]];
        for (size_t i = 0; i < x->nneeds; i++)
            if (!seen[x->needs[i]]) {
                seen[x->needs[i]] = true;
                stack[sp++] = x->needs[i];
            }
    }
    json_t *m = json_object();
    for (size_t i = 0; i < d->ntasks; i++)
        if (seen[i] && r->tis[i].metrics)
            json_object_set_new(m, d->tasks[i].name, json_deep_copy(r->tis[i].metrics));
    free(seen);
    free(stack);
    return m;
}

/* The run's `code:` folder and its digest now (cache.h's, as in cache
 * keys), for the release's lineage: {"dir", "sha256"} (sha256 null with
 * "error" when it cannot be hashed), or null for a DAG without one. */
static json_t *
publish_code(struct sched *s, const struct sched_run *r)
{
    const struct dag *d = r->dv->dag;
    if (!d->code)
        return json_null();
    struct sched_dag *sd = sched_find_dag(s, r->dag);
    char *dir = dag_code_path(d->code, sd ? sd->file : NULL), hex[CACHE_HEX_LEN + 1], err[256];
    json_t *o = json_pack("{s:s}", "dir", dir);
    if (cache_code_digest(s->cache_ix, dir, hex, err, sizeof(err)) == 0) {
        json_object_set_new(o, "sha256", json_string(hex));
    } else {
        json_object_set_new(o, "sha256", json_null());
        json_object_set_new(o, "error", json_string(err));
    }
    free(dir);
    return o;
}

/* What publishing ti's `publish` outputs takes (publish.h), prepared on
 * the loop so that the copy itself can run on any thread. */
struct publish_job {
    uv_work_t req;
    struct sched *s;
    char *dag, *run_id, *task, *release, *record, *err_text;
    int attempt;
    struct publish_file *pf;
    size_t npf;
    json_t *files;         /* [{name, sha256, size}] for ti->published */
    char *dir;             /* the release folder, on success */
    bool latest;           /* latest was switched to it */
    int rc;
    char err[512];
};

static void
publish_job_free(struct publish_job *j)
{
    for (size_t i = 0; i < j->npf; i++) {
        free((char *)j->pf[i].name);
        free((char *)j->pf[i].sha256);
    }
    free(j->pf);
    free(j->dag);
    free(j->run_id);
    free(j->task);
    free(j->release);
    free(j->record);
    free(j->dir);
    json_decref(j->files);
    free(j);
}

static struct publish_job *
publish_prepare(struct sched *s, struct sched_ti *ti, char *err, size_t errlen)
{
    const struct sched_run *r = ti->run;
    const struct dag *d = r->dv->dag;
    const struct dag_task *t = &d->tasks[ti->idx];
    struct publish_job *j = xcalloc(1, sizeof(*j));
    j->s = s;
    j->pf = xcalloc(t->npublish + 1, sizeof(*j->pf));
    j->files = json_array();
    for (size_t i = 0; i < t->npublish; i++) {
        json_t *found = NULL, *v;
        size_t k;
        json_array_foreach(ti->outputs, k, v)
        {
            if (!strcmp(json_string_value(json_object_get(v, "name")) ?: "", t->publish[i]))
                found = v;
        }
        const char *sha = found ? json_string_value(json_object_get(found, "sha256")) : NULL;
        if (!sha) {
            snprintf(err, errlen, "output '%s' was not stored", t->publish[i]);
            publish_job_free(j);
            return NULL;
        }
        j->pf[j->npf].name = xstrdup(t->publish[i]);
        j->pf[j->npf].sha256 = xstrdup(sha);
        j->npf++;
        json_array_append_new(j->files, json_pack("{s:s, s:s, s:O}", "name", t->publish[i],
                                                  "sha256", sha, "size",
                                                  json_object_get(found, "size")));
    }
    /* the params the run used: defaults with its overrides */
    json_t *params = json_object();
    for (size_t i = 0; i < d->nparams; i++)
        json_object_set_new(params, d->params[i].name, json_string(d->params[i].value));
    json_object_update(params, r->params);
    char ld[48];
    cal_format_iso(r->logical_date, 0, 1, ld, sizeof(ld));
    json_t *rec = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:o, s:O, s:o, s:o}", "dag", r->dag,
                            "run_id", r->run_id, "task", t->name, "attempt", ti->attempts,
                            "logical_date", ld, "dag_version", d->version, "params", params,
                            "files", j->files, "metrics", lineage_metrics(r, ti->idx),
                            "published_at", sched_json_time(clock_wall_ms()));
    json_object_set_new(rec, "cached_from",
                        ti->cached_from ? json_deep_copy(ti->cached_from) : json_null());
    json_object_set_new(rec, "code", publish_code(s, r));
    char *text = json_dumps(rec, JSON_INDENT(2));
    j->record = xasprintf("%s\n", text ? text : "{}");
    free(text);
    json_decref(rec);
    j->release = ti->cached ? xasprintf("%s-cached", r->run_id)
                            : xasprintf("%s-a%d", r->run_id, ti->attempts);
    j->dag = xstrdup(r->dag);
    j->run_id = xstrdup(r->run_id);
    j->task = xstrdup(t->name);
    j->attempt = ti->attempts;
    return j;
}

static void
publish_run(struct publish_job *j)
{
    j->rc = publish_build(j->s->art, j->s->models_dir, j->dag, j->task, j->release, j->pf,
                          j->npf, j->record, &j->dir, j->err, sizeof(j->err));
}

/* Point `latest` at the built release (loop thread). */
static void
publish_finish(struct publish_job *j)
{
    if (j->rc == 0)
        j->rc = publish_switch(j->s->models_dir, j->dag, j->task, j->release, &j->latest,
                               j->err, sizeof(j->err));
}

/* Record a successful publish on ti. */
static void
publish_apply(struct sched *s, struct sched_ti *ti, const struct publish_job *j)
{
    json_decref(ti->published);
    char *latest = xasprintf("%s/%s/%s/latest", s->models_dir, j->dag, j->task);
    ti->published = json_pack("{s:s, s:s, s:b, s:O}", "path", j->dir, "latest", latest,
                              "is_latest", j->latest, "files", j->files);
    free(latest);
    LOG(LOG_NOTICE, "CAIRN-PUBLISHED", "%s/%s/%s: published %zu file%s to %s%s", j->dag,
        j->run_id, j->task, j->npf, j->npf == 1 ? "" : "s", j->dir,
        j->latest ? "" : " (latest stays at a release of a newer logical date)");
}

int
pj_publish_now(struct sched *s, struct sched_ti *ti, char *err, size_t errlen)
{
    struct publish_job *j = publish_prepare(s, ti, err, errlen);
    if (!j)
        return CAIRN_ENOENT;
    publish_run(j);
    publish_finish(j);
    int rc = j->rc;
    if (rc == 0)
        publish_apply(s, ti, j);
    else
        snprintf(err, errlen, "%s", j->err);
    publish_job_free(j);
    return rc;
}

static void
publish_work(uv_work_t *req)
{
    publish_run(req->data);
}

/* The copy for a task that ran is done (thread pool): the task succeeds, or
 * the attempt fails like any other. */
static void
publish_done(uv_work_t *req, int status)
{
    struct publish_job *j = req->data;
    struct sched *s = j->s;
    (void)status;
    s->npublishing--;
    if (s->stopping) {
        /* the last commit is done: a restart takes the task back (its lease
         * expires without costing a retry) and runs it again */
        LOG(LOG_WARN, "CAIRN-PUBLISH-STOPPED", "%s/%s/%s: publish finished during the stop; "
            "the task runs again after a restart", j->dag, j->run_id, j->task);
        publish_job_free(j);
        if (--s->closing_handles == 0 && s->stop_done)
            s->stop_done(s->stop_ud);
        return;
    }
    struct sched_run *r = sched_find_run(s, j->dag, j->run_id);
    long idx = r ? dag_task_index(r->dv->dag, j->task) : -1;
    struct sched_ti *ti = idx >= 0 ? &r->tis[idx] : NULL;
    if (!ti || !ti->publishing || ti->attempts != j->attempt) {
        LOG(LOG_INFO, "CAIRN-PUBLISH-DROPPED", "%s/%s/%s attempt %d: published after the "
            "task moved on (cancelled or cleared); the release stays in the models folder and "
            "latest is left alone",
            j->dag, j->run_id, j->task, j->attempt);
        publish_job_free(j);
        return;
    }
    ti->publishing = false;
    publish_finish(j); /* latest moves only for a task that is still there */
    if (j->rc == 0) {
        publish_apply(s, ti, j);
        ti->artifacts_dirty = true;
        ts_succeed(s, ti);
    } else {
        /* the files stay in the artifact store; the attempt is retried
         * like any failure, and a success counts only once published */
        LOG(LOG_ERR, "CAIRN-PUBLISH-FAILED", "%s/%s/%s attempt %d: cannot publish: %s", j->dag,
            j->run_id, j->task, j->attempt, j->err);
        free(ti->error);
        ti->error = xasprintf("cannot publish to the models folder: %s", j->err);
        json_decref(ti->outputs);
        ti->outputs = NULL;
        json_decref(ti->metrics);
        ti->metrics = NULL;
        ts_attempt_failed(s, ti);
    }
    publish_job_free(j);
}

int
pj_start(struct sched *s, struct sched_ti *ti, char *err, size_t errlen)
{
    struct publish_job *j = publish_prepare(s, ti, err, errlen);
    if (!j)
        return CAIRN_ENOENT;
    j->req.data = j;
    ti->publishing = true;
    commit_ti_dirty(s, ti, false);
    s->npublishing++;
    int rc = uv_queue_work(s->loop, &j->req, publish_work, publish_done);
    if (rc != 0) { /* cannot happen with a live loop: publish here instead */
        publish_work(&j->req);
        publish_done(&j->req, 0);
    }
    return 0;
}
