/* waiting.c - why a queued task instance waits for a worker (engine.h:
 * sched_ti_waiting).
 *
 * Owns the one sentence the API shows (`waiting` of a task instance, what
 * `cairn runs show` prints) for a queued task that no live worker can take
 * as things are: no worker has its labels, or none has (free) the GPUs it
 * needs. It reads the workers (lease.h, gpualloc.h) and changes nothing;
 * computed when asked, so it is never stale and never stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "gpualloc.h"
#include "lease.h"
#include "util.h"

/* " of type A100" or "". */
static void
type_words(const struct dag_task *t, char *buf, size_t len)
{
    if (t->gpu_type)
        snprintf(buf, len, " of type %s", t->gpu_type);
    else
        buf[0] = '\0';
}

void
sched_ti_waiting(struct sched *s, const struct sched_ti *ti, char *buf, size_t len)
{
    buf[0] = '\0';
    if (ti->state != TI_QUEUED || ti->map)
        return;
    const struct dag_task *t = sched_task(ti);
    if (!t->nlabels && t->gpus == 0 && !ti->excluded)
        return;
    size_t nmatch = 0, best = 0, fit = 0, nexcl = 0;
    const struct sched_worker *best_w = NULL;
    struct sb busy;
    sb_init(&busy);
    for (size_t i = 0; i < s->nworkers; i++) {
        const struct sched_worker *w = s->workers[i];
        if (!w->alive || !lease_labels_match(t, w))
            continue;
        if (lease_excluded(ti, w->name)) {
            nexcl++;
            continue;
        }
        nmatch++;
        if (t->gpus == 0)
            continue;
        size_t total, nfree;
        gpualloc_count(w, t->gpu_type, &total, &nfree);
        if (total > best || !best_w) {
            best = total;
            best_w = w;
        }
        if (total >= (size_t)t->gpus) {
            if (nfree >= (size_t)t->gpus)
                fit++;
            else if (busy.len < 160)
                sb_printf(&busy, "%s%s: %zu of %zu free", busy.len ? ", " : "", w->name, nfree,
                          total);
        }
    }
    if (nmatch == 0 && nexcl > 0) {
        char *names = json_dumps(ti->excluded, JSON_COMPACT);
        snprintf(buf, len, "the live workers that could run it could not get its inputs (%s): "
                 "waiting for another", names ? names : "?");
        free(names);
    } else if (nmatch == 0 && t->nlabels) {
        struct sb want;
        sb_init(&want);
        for (size_t i = 0; i < t->nlabels; i++)
            sb_printf(&want, "%s%s=%s", i ? "," : "", t->labels[i].key, t->labels[i].value);
        snprintf(buf, len, "no live worker has the labels %s", want.buf ? want.buf : "");
        sb_free(&want);
    } else if (t->gpus > 0 && fit == 0) {
        char ty[96];
        type_words(t, ty, sizeof(ty));
        const char *plural = t->gpus == 1 ? "" : "s";
        if (best == 0)
            snprintf(buf, len, "needs %d GPU%s%s; no live worker%s has any%s", t->gpus, plural,
                     ty, t->nlabels ? " with its labels" : "", t->gpu_type ? " of that type" : "");
        else if (best < (size_t)t->gpus)
            snprintf(buf, len, "needs %d GPU%s%s; the most a live worker has is %zu (%s)",
                     t->gpus, plural, ty, best, best_w->name);
        else
            snprintf(buf, len, "needs %d free GPU%s%s; they are in use (%s)", t->gpus, plural,
                     ty, busy.buf ? busy.buf : "");
    }
    sb_free(&busy);
}
