/* lease.c - workers, leases and dispatch (lease.h). */
#include "lease.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_blobs.h"
#include "artifact.h"
#include "cal.h"
#include "codesnap.h"
#include "imagepin.h"
#include "commit.h"
#include "fanout.h"
#include "core.h"
#include "gpualloc.h"
#include "log.h"
#include "msg.h"
#include "logs.h"
#include "proto.h"
#include "readyq.h"
#include "records.h"
#include "runtab.h"
#include "secrets.h"
#include "schedmetrics.h"
#include "taskstate.h"
#include "util.h"

struct sched_worker *
lease_worker_find(struct sched *s, const char *name)
{
    for (size_t i = 0; i < s->nworkers; i++)
        if (!strcmp(s->workers[i]->name, name))
            return s->workers[i];
    return NULL;
}

bool
lease_labels_match(const struct dag_task *t, const struct sched_worker *w)
{
    for (size_t i = 0; i < t->nlabels; i++) {
        size_t j;
        for (j = 0; j < w->nlabels; j++)
            if (!strcmp(t->labels[i].key, w->labels[j].key) &&
                !strcmp(t->labels[i].value, w->labels[j].value))
                break;
        if (j == w->nlabels)
            return false;
    }
    return true;
}

struct sched_ti *
lease_lookup(struct sched *s, int64_t lease_id)
{
    char key[24];
    size_t v;
    snprintf(key, sizeof(key), "%" PRId64, lease_id);
    if (!hmap_get(&s->lease_map, key, &v) || !v)
        return NULL;
    struct sched_ti *ti = (struct sched_ti *)(uintptr_t)v;
    if (ti->lease_id != lease_id || (ti->state != TI_LEASED && ti->state != TI_RUNNING))
        return NULL;
    return ti;
}

/* Whether worker w holds the lease of ti. A lease recovered after a restart
 * has no worker yet: the worker it was handed to (by name) claims it when
 * it reports it, so a task that ran on through the restart is not redone. */
bool
lease_owned(struct sched_ti *ti, struct sched_worker *w)
{
    if (ti->worker)
        return ti->worker == w;
    if (!ti->worker_name || strcmp(ti->worker_name, w->name) != 0)
        return false;
    ti->worker = w;
    w->busy++;
    return true;
}

void
lease_register(struct sched *s, struct sched_ti *ti)
{
    snprintf(ti->lease_key, sizeof(ti->lease_key), "%" PRId64, ti->lease_id);
    hmap_put(&s->lease_map, ti->lease_key, (size_t)(uintptr_t)ti);
}

static void
lease_unregister(struct sched *s, struct sched_ti *ti)
{
    if (ti->lease_key[0])
        hmap_del(&s->lease_map, ti->lease_key);
    ti->lease_key[0] = '\0';
}

/* The lease of ti's new attempt (msg.h's struct, encoded once; the worker
 * decodes it strictly), and ti's provenance, built from the same arrays.
 * NULL with why set if the task cannot be prepared. */
static json_t *
lease__json(struct sched *s, struct sched_ti *ti, char *why, size_t whylen)
{
    struct sched_run *r = ti->run;
    const struct dag *d = r->dv->dag;
    const struct dag_task *t = &d->tasks[ti->idx];
    struct dag_run_ctx rc;
    char *item = runtab_render_ctx(ti, &rc);
    char **argv = NULL, **envp = NULL, err[256], name[256];
    int rrc = dag_render_task(d, ti->idx, &rc, &argv, &envp, err, sizeof(err));
    free(item);
    if (rrc != 0) {
        snprintf(why, whylen, "cannot prepare the task: %s", err);
        return NULL;
    }
    const char *tname = sched_ti_name(ti, name, sizeof(name));
    struct msg_lease l = {0};
    char ld[48];
    cal_format_iso(r->logical_date, 0, 1, ld, sizeof(ld));
    size_t nargv = 0, nenv = 0;
    while (argv[nargv])
        nargv++;
    while (envp[nenv])
        nenv++;
    /* the environment the scheduler gives every attempt, then the DAG's */
    char **env = xcalloc(nenv + 8, sizeof(*env)), *owned[8];
    size_t ne = 0, nowned = 0;
#define LEASE_ENV(...) (owned[nowned++] = env[ne++] = xasprintf(__VA_ARGS__))
    LEASE_ENV("CAIRN_DAG=%s", d->name);
    LEASE_ENV("CAIRN_RUN_ID=%s", r->run_id);
    LEASE_ENV("CAIRN_TASK=%s", tname);
    LEASE_ENV("CAIRN_ATTEMPT=%d", ti->attempts);
    LEASE_ENV("CAIRN_LOGICAL_DATE=%s", ld);
    if (ti->parent)
        LEASE_ENV("CAIRN_MAP_INDEX=%ld", ti->map_index);
    for (size_t i = 0; i < nenv; i++)
        env[ne++] = envp[i];
    /* secrets: read now, for this lease's message only */
    char **sec = xcalloc(t->nsecrets + 1, sizeof(*sec));
    size_t *seclen = xcalloc(t->nsecrets + 1, sizeof(*seclen));
    char **secnames = xcalloc(t->nsecrets + 1, sizeof(*secnames));
    json_t *psec = json_array();
    const char *sfolder = secrets_folder(s->cfg.secrets_dir);
    const char *maskp[1 + SCHED_HIDDEN_MAX];
    size_t nmask = 0;
    struct msg_input *ins = xcalloc(t->ninputs + 1, sizeof(*ins));
    char (*mshas)[65] = xcalloc(t->ninputs + 1, sizeof(*mshas));
    char **muris = xcalloc(t->ninputs + 1, sizeof(*muris));
    size_t nins = 0;
    json_t *pi = json_array();
    json_t *lease = NULL;
    struct sb names;
    sb_init(&names);
    if (t->nsecrets && !s->cfg.link_authenticated) {
        snprintf(why, whylen, "cannot prepare the task: it has secrets (%s%s), which travel "
                 "only over an authenticated worker link: start the scheduler and its "
                 "workers with --token-file or TLS (--tls-cert, --tls-key, --tls-ca)",
                 t->secrets[0].value, t->nsecrets > 1 ? ", ..." : "");
        LOG(LOG_ERR, "CAIRN-SECRET", "%s/%s/%s: %s", r->dag, r->run_id, t->name, why);
        goto out;
    }
    for (size_t i = 0; i < t->nsecrets; i++) {
        char serr[384], *v = NULL;
        size_t vl = 0;
        if (secrets_read(sfolder, t->secrets[i].value, s->cfg.token_file, &v, &vl, serr,
                         sizeof(serr)) != 0) {
            snprintf(why, whylen, "cannot prepare the task: %s (for %s)", serr,
                     t->secrets[i].key);
            LOG(LOG_ERR, "CAIRN-SECRET", "%s/%s/%s: %s", r->dag, r->run_id, t->name, why);
            goto out;
        }
        /* "ENV=value": the value's bytes are wiped with it below */
        seclen[i] = strlen(t->secrets[i].key) + 1 + vl + 1;
        sec[i] = xmalloc(seclen[i]);
        snprintf(sec[i], seclen[i], "%s=%s", t->secrets[i].key, v);
        secrets_free(v, vl);
        secnames[i] = t->secrets[i].value;
        json_array_append_new(psec, json_pack("{s:s, s:s}", "env", t->secrets[i].key, "name",
                                              t->secrets[i].value));
    }
    if (sfolder && sfolder[0] == '/')
        maskp[nmask++] = sfolder;
    for (size_t i = 0; s->cfg.hidden && s->cfg.hidden[i] && i < SCHED_HIDDEN_MAX; i++)
        maskp[nmask++] = s->cfg.hidden[i];
    /* inputs resolve to the artifacts their upstream attempt stored */
    for (size_t i = 0; i < t->ninputs; i++) {
        const struct dag_input *in = &t->inputs[i];
        if (in->fan_in) {
            /* every instance's file: the worker reads the manifest */
            struct sched_ti *g = &r->tis[in->task_idx];
            char merr[256];
            if (!g->map || !g->map->expanded ||
                fan_manifest(s, g, mshas[i], merr, sizeof(merr)) != 0) {
                snprintf(why, whylen, "cannot prepare the task: input '%s' (%s/%s): %s",
                         in->name, in->task, in->file,
                         g->map && g->map->expanded ? merr : "its task has no instances");
                goto out;
            }
            struct msg_input *mi = &ins[nins++];
            art_blob_uri(s->art, mshas[i], &muris[i]);
            mi->name = in->name;
            mi->sha256 = mshas[i];
            mi->uri = muris[i];
            mi->manifest_file = in->file;
            json_array_append_new(pi, json_pack("{s:s, s:s, s:s, s:s, s:b}", "name", in->name,
                                                "task", in->task, "file", in->file, "sha256",
                                                mshas[i], "manifest", 1));
            sb_printf(&names, "%s%s", names.len ? " " : "", in->name);
            continue;
        }
        json_t *found = runtab_input_artifact(ti, in);
        if (!found && in->optional)
            continue; /* its upstream did not succeed: /inputs/NAME is simply not there */
        if (!found) {
            const struct sched_ti *up = &r->tis[in->task_idx];
            snprintf(why, whylen, "cannot prepare the task: input '%s' (%s/%s) has no stored "
                     "artifact: task '%s' is %s%s", in->name, in->task, in->file, in->task,
                     sched_ti_state_name(up->state),
                     up->state == TI_SUCCESS ? " but did not store that output" : "");
            LOG(LOG_ERR, "CAIRN-INPUT-MISSING", "%s/%s/%s: %s", r->dag, r->run_id, t->name, why);
            goto out;
        }
        struct msg_input *mi = &ins[nins++];
        mi->name = in->name;
        mi->sha256 = (char *)json_string_value(json_object_get(found, "sha256"));
        mi->uri = (char *)json_string_value(json_object_get(found, "uri"));
        json_array_append_new(pi, json_pack("{s:s, s:s, s:s, s:s}", "name", in->name, "task",
                                            in->task, "file", in->file, "sha256", mi->sha256));
        sb_printf(&names, "%s%s", names.len ? " " : "", in->name);
    }
    /* the inputs that are there, by name (optional ones may not be) */
    LEASE_ENV("CAIRN_INPUT_NAMES=%s", names.buf ? names.buf : "");
#undef LEASE_ENV
    struct sched_dag *sd = sched_find_dag(s, r->dag);
    if (d->code && r->code_state == CODESNAP_FAILED) {
        snprintf(why, whylen, "cannot prepare the task: the run's code snapshot failed: %s",
                 r->code_error ? r->code_error : "?");
        goto out;
    }
    /* the run's snapshot of the code folder, or (a run from before
     * snapshots) the folder itself */
    bool snap = d->code && r->code_state == CODESNAP_READY;
    char *code = d->code && !snap ? dag_code_path(d->code, sd ? sd->file : NULL) : NULL;
    l.lease_id = ti->lease_id;
    l.dag = d->name;
    l.run_id = r->run_id;
    l.task = (char *)tname;
    l.attempt = ti->attempts;
    l.logical_date = ld;
    l.argv = argv;
    l.nargv = nargv;
    l.env = env;
    l.nenv = ne;
    char *pinned = imagepin_lease_ref(r, t->image);
    const char *idig = imagepin_digest(r, t->image);
    l.image = pinned ? pinned : t->image;
    snprintf(ti->image_digest, sizeof(ti->image_digest), "%s", idig ? idig : "");
    l.entrypoint = t->entrypoint;
    l.nentrypoint = t->nentrypoint;
    l.entrypoint_set = t->has_entrypoint;
    l.timeout_ms = t->timeout_ms;
    l.max_log_size = t->max_log_size;
    l.log_limit_fail = t->log_limit_fail;
    l.cpus = t->cpus;
    l.memory = t->memory_bytes;
    l.pids = t->pids;
    l.network = t->network;
    l.inputs = ins;
    l.ninputs = nins;
    l.outputs = t->outputs;
    l.noutputs = t->noutputs;
    l.max_output_size = t->max_output_size;
    l.max_outputs_size = t->max_outputs_size;
    l.code = code;
    l.code_tree = snap ? r->code_digest : NULL;
    l.metrics = t->metrics;
    /* host folders the task mounts (the worker checks them against its
     * --allow-mount) */
    struct msg_mount *mounts = t->nmounts ? xcalloc(t->nmounts, sizeof(*mounts)) : NULL;
    for (size_t i = 0; i < t->nmounts; i++)
        mounts[i] = (struct msg_mount){t->mounts[i].host, t->mounts[i].path,
                                       t->mounts[i].readonly};
    l.mounts = mounts;
    l.nmounts = t->nmounts;
    int64_t *gpus = xcalloc(ti->ngpus + 1, sizeof(*gpus));
    for (size_t i = 0; i < ti->ngpus; i++)
        gpus[i] = ti->gpus[i];
    l.gpus = ti->ngpus ? gpus : NULL;
    l.ngpus = ti->ngpus;
    l.secrets = t->nsecrets ? sec : NULL;
    l.nsecrets = t->nsecrets;
    l.secret_names = t->nsecrets ? secnames : NULL;
    l.nsecret_names = t->nsecrets;
    l.mask_paths = nmask ? (char **)maskp : NULL;
    l.nmask_paths = nmask;
    lease = msg_lease_encode(&l);
    free(mounts);
    free(gpus);
    free(code);
    free(pinned);
    if (!lease) {
        snprintf(why, whylen, "cannot prepare the task: its lease cannot be encoded (a "
                 "rendered value is not UTF-8)");
        goto out;
    }
    /* provenance for the attempt record: the same arrays the lease carries
     * (shared, never changed after this) */
    json_decref(ti->prov);
    ti->prov = json_pack("{s:s, s:O, s:O, s:O}", "image", t->image, "argv",
                         json_object_get(lease, "argv"), "env", json_object_get(lease, "env"),
                         "inputs", pi);
    if (ti->prov && ti->image_digest[0])
        json_object_set_new(ti->prov, "image_digest", json_string(ti->image_digest));
    if (ti->prov && snap)
        json_object_set_new(ti->prov, "code_digest", json_string(r->code_digest));
    if (t->nsecrets) /* their names only */
        json_object_set(ti->prov, "secrets", psec);
    api_blobs_grant(s, ti, lease);
out:
    for (size_t i = 0; i < t->nsecrets; i++)
        secrets_free(sec[i], seclen[i]);
    free(sec);
    free(seclen);
    free(secnames);
    json_decref(psec);
    for (size_t i = 0; i < nowned; i++)
        free(owned[i]);
    free(env);
    for (size_t i = 0; i < t->ninputs; i++)
        free(muris[i]);
    free(muris);
    free(mshas);
    sb_free(&names);
    free(ins);
    json_decref(pi);
    dag_strv_free(argv);
    dag_strv_free(envp);
    return lease;
}

/* The most bytes of leases one WORK (or a BATCH's ACK) carries: the
 * message limit, less room for what goes with them (cancelled lease ids,
 * the ACK's results). A lease over it alone fails its task at lease time;
 * one that fits alone but not with the leases before it waits for the next
 * reply. */
#define LEASE_REPLY_BUDGET ((size_t)PROTO_MAX_BODY - 256 * 1024)

int
lease_room(const struct sched_worker *w)
{
    if (w->stopping)
        return 0;
    int cap = w->slots;
    if (w->prefetch > 0 && w->nreported > 0 && w->avg_task_ms <= SCHED_PREFETCH_MAX_TASK_MS) {
        /* the queue holds about SCHED_PREFETCH_MAX_TASK_MS of work a slot:
         * a slot's worth of one-second tasks, many more millisecond ones */
        int64_t avg = w->avg_task_ms > 0 ? w->avg_task_ms : 1;
        int64_t fits = (int64_t)w->slots * SCHED_PREFETCH_MAX_TASK_MS / avg;
        cap += fits < w->prefetch ? (int)fits : w->prefetch;
    }
    return cap > w->busy ? cap - w->busy : 0;
}

void
lease_note_run_time(struct sched_worker *w, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    /* an average over about the last eight, except that one long task
     * stops the prefetch at once (short ones bring it back) */
    if (w->nreported == 0 || ms > SCHED_PREFETCH_MAX_TASK_MS)
        w->avg_task_ms = ms;
    else
        w->avg_task_ms = (w->avg_task_ms * 7 + ms) / 8;
    w->nreported++;
}

/* ---- answers the worker gave up waiting for ---- */

static bool
lease__gave_up_has(const struct sched_worker *w, int64_t seq)
{
    for (size_t i = 0; i < SCHED_GAVE_UP_MAX; i++)
        if (w->gave_up[i] == seq)
            return true;
    return false;
}

void
lease_gave_up_reset(struct sched_worker *w)
{
    memset(w->gave_up, 0, sizeof(w->gave_up));
    w->gave_up_next = 0;
}

bool
lease_gave_up(struct sched *s, struct sched_worker *w, int64_t seq, const int64_t *gave_up,
              size_t n)
{
    if (n > SCHED_GAVE_UP_MAX)
        n = SCHED_GAVE_UP_MAX;
    for (size_t i = 0; i < n; i++) {
        int64_t g = gave_up[i];
        if (g <= 0 || lease__gave_up_has(w, g))
            continue; /* heard already (the worker says it until it hears an answer) */
        w->gave_up[w->gave_up_next] = g;
        w->gave_up_next = (w->gave_up_next + 1) % SCHED_GAVE_UP_MAX;
        if (w->parked && w->parked_seq == g)
            lease_answer_parked(s, w); /* nobody waits for it */
        for (struct sched_ti *ti = s->leases.lnext; ti != &s->leases; ti = ti->lnext) {
            if (ti->worker != w || ti->sent_seq != g)
                continue;
            ti->sent_seq = 0;
            if (ti->resend || ti->state != TI_LEASED)
                continue;
            ti->resend = true;
            w->nresend++;
            if (ti->resent++ > 0)
                continue; /* said already */
            char tn[256];
            LOG(LOG_NOTICE, "CAIRN-LEASE-RESEND",
                "%s/%s/%s attempt %d: lease %" PRId64 " went in the answer to a request "
                "worker %s stopped waiting for; it goes with the next answer",
                ti->run->dag, ti->run->run_id, sched_ti_name(ti, tn, sizeof(tn)), ti->attempts,
                ti->lease_id, w->name);
        }
    }
    return seq > 0 && lease__gave_up_has(w, seq);
}

void
lease_delivered(struct sched_ti *ti)
{
    if (ti->resend && ti->worker)
        ti->worker->nresend--;
    ti->resend = false;
    ti->sent_seq = 0;
}

/* The leases of w to send again, into leases (up to the reply's budget:
 * *bytes so far). Each is encoded again (new blob credential, secrets read
 * again): the worker never saw the first one. */
static void
lease__resend(struct sched *s, struct sched_worker *w, json_t *leases, size_t *bytes,
              int64_t seq)
{
    struct sched_ti *ti = s->leases.lnext;
    while (ti != &s->leases && w->nresend > 0) {
        struct sched_ti *next = ti->lnext;
        if (ti->worker == w && ti->resend) {
            char why[512];
            json_t *lj = lease__json(s, ti, why, sizeof(why));
            size_t lsize = lj ? json_dumpb(lj, NULL, 0, JSON_COMPACT) : 0;
            if (lj && *bytes && *bytes + lsize > LEASE_REPLY_BUDGET) {
                json_decref(lj); /* the next reply */
                break;
            }
            lease_delivered(ti);
            if (!lj) {
                /* (it may end its run and other leases with it: the rest
                 * go with the next answer) */
                lease_lost(s, ti, "CAIRN-LEASE-RESEND", why);
                break;
            } else {
                ti->sent_seq = seq;
                ti->lease_expires = clock_mono_ms() + s->cfg.lease_ttl_ms;
                *bytes += lsize;
                json_array_append_new(leases, lj);
            }
        }
        ti = next;
    }
}

/* New leases for w, into leases (the reply's budget: bytes so far). */
static void
lease__dispatch_new(struct sched *s, struct sched_worker *w, int free_slots, json_t *leases,
                    size_t bytes, int64_t seq)
{
    struct sched_ti **aside = NULL;
    size_t naside = 0, capaside = 0;
    while (free_slots > 0) {
        struct sched_ti *ti = rq_pop(s);
        if (!ti)
            break;
        const struct dag *d = ti->run->dv->dag;
        const struct dag_task *t = &d->tasks[ti->idx];
        struct sched_dag *sd = runtab_dag(s, ti->run);
        int max_tasks = d->max_active_tasks;
        bool at_parallel =
            ti->parent && t->max_parallel > 0 && ti->parent->map->active >= t->max_parallel;
        size_t gtotal = 0, gfree = 0;
        if (t->gpus > 0)
            gpualloc_count(w, t->gpu_type, &gtotal, &gfree);
        if (!lease_labels_match(t, w) || (sd && sd->active_tasks >= max_tasks) || at_parallel ||
            gfree < (size_t)t->gpus || lease_excluded(ti, w->name) ||
            codesnap_waiting(ti->run)) {
            xgrow((void **)&aside, &capaside, naside + 1, sizeof(*aside));
            aside[naside++] = ti;
            continue;
        }
        if (ti->attempt_dirty && ti->attempts > 0)
            rec_attempt_keep(s, ti); /* the last attempt ended in this iteration */
        json_decref(ti->prov); /* lease_json sets the new attempt's */
        ti->prov = NULL;
        /* the lease first, to see whether it fits in this reply */
        int64_t prev_lease = ti->lease_id;
        ti->attempts++;
        ti->lease_id = s->lease_seq + 1;
        /* its own devices: checked above, so there are enough */
        gpualloc_take(w, ti, t->gpus, t->gpu_type);
        char why[512];
        json_t *lj = lease__json(s, ti, why, sizeof(why));
        size_t lsize = lj ? json_dumpb(lj, NULL, 0, JSON_COMPACT) : 0;
        if (lj && lsize <= LEASE_REPLY_BUDGET && bytes + lsize > LEASE_REPLY_BUDGET) {
            /* it fits alone, not with the leases before it: the next reply */
            json_decref(lj);
            json_decref(ti->prov);
            ti->prov = NULL;
            gpualloc_release(w, ti);
            ti->attempts--;
            ti->lease_id = prev_lease;
            xgrow((void **)&aside, &capaside, naside + 1, sizeof(*aside));
            aside[naside++] = ti;
            continue;
        }
        s->lease_seq = ti->lease_id;
        s->lease_seq_dirty = true;
        ti->lease_expires = clock_mono_ms() + s->cfg.lease_ttl_ms;
        ti->sent_seq = seq;
        ti->resend = false;
        ti->resent = 0;
        ti->worker = w;
        free(ti->worker_name);
        ti->worker_name = xstrdup(w->name);
        ti->started_at = clock_wall_ms();
        ti->ended_at = 0;
        ti->exit_code = -1;
        ti->signal = 0;
        ti->oom = ti->timed_out = false;
        free(ti->error);
        ti->error = NULL;
        ti->log_size = 0;
        ti->log_lost = 0;
        ti->cached = false;
        json_decref(ti->cached_from);
        ti->cached_from = NULL;
        json_decref(ti->stderr_tail);
        ti->stderr_tail = NULL;
        json_decref(ti->published);
        ti->published = NULL;
        if (lj && lsize > LEASE_REPLY_BUDGET) {
            /* no reply could carry it: the worker would never get it, and
             * the leases next to it would be lost with it */
            snprintf(why, sizeof(why),
                     "the task's lease is %.1f MiB, over the %u MiB message limit: its params, "
                     "env or command are too large",
                     (double)lsize / (1024.0 * 1024.0), PROTO_MAX_BODY >> 20);
            char tn[256];
            LOG(LOG_ERR, "CAIRN-LEASE-TOO-BIG", "%s/%s: %s", ti->run->run_id,
                sched_ti_name(ti, tn, sizeof(tn)), why);
            json_decref(lj);
            lj = NULL;
            json_decref(ti->prov); /* its env: not kept in the attempt's record */
            ti->prov = NULL;
        }
        if (!lj) {
            gpualloc_release(w, ti);
            ti->error = xstrdup(why);
            ts_finish(s, ti, TI_FAILED);
            continue;
        }
        bytes += lsize;
        ts_set_state(s, ti, TI_LEASED);
        commit_ti_dirty(s, ti, true);
        rq_list_add(&s->leases, ti);
        lease_register(s, ti);
        ti->run->active++;
        if (ti->parent)
            ti->parent->map->active++;
        if (sd)
            sd->active_tasks++;
        w->busy++;
        json_array_append_new(leases, lj);
        free_slots--;
    }
    for (size_t i = 0; i < naside; i++)
        rq_push(s, aside[i]);
    free(aside);
}

json_t *
lease_dispatch(struct sched *s, struct sched_worker *w, int offered, int64_t seq)
{
    json_t *leases = json_array();
    size_t bytes = 0;
    /* while the store refuses writes, a lease could not be committed, so
     * its WORK answer could not go out: hand out none */
    if (s->stopping || s->degraded || offered == 0)
        return leases;
    if (w->nresend > 0)
        lease__resend(s, w, leases, &bytes, seq);
    /* the scheduler's own count (the leases sent again are in it), never
     * more than the worker offers */
    int room = lease_room(w);
    int left = offered < 0 ? room : offered - (int)json_array_size(leases);
    lease__dispatch_new(s, w, room < left ? room : left, leases, bytes, seq);
    return leases;
}

/* Work became available: give it to workers waiting in a POLL. */
void
lease_dispatch_parked(struct sched *s)
{
    for (size_t i = 0; i < s->nworkers; i++) {
        struct sched_worker *w = s->workers[i];
        if (!w->parked || (!s->nheap && !w->nresend))
            continue;
        /* the scheduler's own count: results that arrived since the POLL
         * freed slots the POLL did not know about yet */
        json_t *leases = lease_dispatch(s, w, -1, w->parked_seq);
        if (json_array_size(leases) == 0) {
            json_decref(leases);
            continue;
        }
        commit_reply(s, w->parked, PROTO_WORK,
                    json_pack("{s:o, s:[]}", "leases", leases, "cancel"));
        w->parked = NULL;
    }
}

/* Tell a worker to stop an attempt now if it waits in a POLL; otherwise its
 * next heartbeat learns that the lease is gone. */
void
lease_reply_cancel(struct sched *s, struct sched_worker *w, int64_t lease_id)
{
    if (!w->parked)
        return;
    commit_reply(s, w->parked, PROTO_WORK,
                json_pack("{s:[], s:[I]}", "leases", "cancel", (json_int_t)lease_id));
    w->parked = NULL;
}

/* An attempt is over (result, lease lost, cancel): free its slot. */
void
lease_end(struct sched *s, struct sched_ti *ti)
{
    lease_delivered(ti);
    rq_list_del(ti);
    lease_unregister(s, ti);
    api_blobs_revoke(s, ti);
    ti->run->active--;
    if (ti->parent)
        ti->parent->map->active--;
    struct sched_dag *sd = runtab_dag(s, ti->run);
    if (sd)
        sd->active_tasks--;
    /* its GPUs go free; a lease recovered after a restart and not claimed
     * yet holds them on the worker it names */
    struct sched_worker *gw = ti->worker;
    if (!gw && ti->ngpus && ti->worker_name)
        gw = lease_worker_find(s, ti->worker_name);
    if (gw)
        gpualloc_release(gw, ti);
    if (ti->worker) {
        ti->worker->busy--;
        ti->worker = NULL;
    }
    ti->ended_at = clock_wall_ms();
    logs_close(ti);
    commit_ti_dirty(s, ti, true);
}

/* An attempt ended for a reason that is not the task's fault (its worker
 * went quiet or was shut down): try again without using up a retry, up to
 * max_lost times. */
void
lease_lost(struct sched *s, struct sched_ti *ti, const char *code, const char *why)
{
    free(ti->error);
    ti->error = xstrdup(why);
    LOG(LOG_WARN, code, "%s/%s/%s attempt %d: %s", ti->run->dag,
        ti->run->run_id, ti->run->dv->dag->tasks[ti->idx].name, ti->attempts, why);
    lease_end(s, ti);
    if (ti->lost < s->cfg.max_lost) {
        /* not the task's fault: try again without using up a retry */
        ti->lost++;
        ts_make_ready(s, ti);
    } else {
        ts_attempt_failed(s, ti);
    }
}

void
lease_exclude(struct sched_ti *ti, const char *name)
{
    if (lease_excluded(ti, name))
        return;
    if (!ti->excluded)
        ti->excluded = json_array();
    json_array_append_new(ti->excluded, json_string(name));
}

bool
lease_excluded(const struct sched_ti *ti, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(ti->excluded, i, v)
    {
        if (!strcmp(json_string_value(v), name))
            return true;
    }
    return false;
}

void
lease_check_expired(struct sched *s, int64_t now)
{
    struct sched_ti *ti = s->leases.lnext;
    while (ti != &s->leases) {
        struct sched_ti *next = ti->lnext;
        if (ti->lease_expires <= now) {
            char why[256];
            snprintf(why, sizeof(why),
                     "lease expired: worker %s sent no heartbeat for %" PRId64 " ms",
                     ti->worker_name ? ti->worker_name : "?", s->cfg.lease_ttl_ms);
            smet_lease_expired(s);
            lease_lost(s, ti, "CAIRN-LEASE-EXPIRED", why);
        }
        ti = next;
    }
}

void
lease_check_workers(struct sched *s, int64_t now)
{
    for (size_t i = 0; i < s->nworkers; i++) {
        struct sched_worker *w = s->workers[i];
        if (w->parked && w->parked_until <= now) {
            lease_answer_parked(s, w);
        }
        if (w->alive && now - w->last_seen > s->cfg.lease_ttl_ms) {
            w->alive = false;
            LOG(LOG_WARN, "CAIRN-WORKER-LOST", "worker %s: no heartbeat for %" PRId64 " ms",
                w->name, now - w->last_seen);
        }
    }
}

void
lease_answer_parked(struct sched *s, struct sched_worker *w)
{
    if (!w->parked)
        return;
    json_t *b = json_pack("{s:[], s:[]}", "leases", "cancel");
    s->cfg.link.reply(w->parked, PROTO_WORK, b);
    json_decref(b);
    w->parked = NULL;
}

void
lease_extend_all(struct sched *s, int64_t ms)
{
    for (struct sched_ti *l = s->leases.lnext; l != &s->leases; l = l->lnext)
        l->lease_expires += ms;
    for (size_t i = 0; i < s->nworkers; i++)
        s->workers[i]->last_seen += ms;
}
