/* gpualloc.c - which GPUs of each worker are free (gpualloc.h).
 *
 * Owns the GPU table of every worker (struct sched_gpu: free, or the lease
 * id holding it) and the allocation of a lease (ti->gpus). lease.c calls it
 * when it hands out and ends leases, handlers.c when a worker says HELLO;
 * it calls nothing of the engine but reads the lease list (core.h) to hold
 * GPUs again after a restart. No I/O but a warning when a lease in flight
 * names a GPU its worker no longer has.
 */
#include "gpualloc.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core.h"
#include "log.h"
#include "msg.h"
#include "util.h"

static bool
word_char(char c)
{
    return isalnum((unsigned char)c) != 0;
}

bool
gpualloc_matches(const char *model, const char *type)
{
    if (!type || !*type)
        return true;
    if (!model)
        return false;
    size_t n = strlen(type), m = strlen(model);
    for (size_t i = 0; i + n <= m; i++) {
        if (strncasecmp(model + i, type, n) != 0)
            continue;
        if ((i == 0 || !word_char(model[i - 1])) && (i + n == m || !word_char(model[i + n])))
            return true;
    }
    return false;
}

void
gpualloc_count(const struct sched_worker *w, const char *type, size_t *total, size_t *nfree)
{
    size_t t = 0, f = 0;
    for (size_t i = 0; i < w->ngpus; i++) {
        if (!gpualloc_matches(w->gpus[i].model, type))
            continue;
        t++;
        if (w->gpus[i].lease_id == 0)
            f++;
    }
    *total = t;
    *nfree = f;
}

void
gpualloc_set_ti(struct sched_ti *ti, const int *idx, size_t n)
{
    free(ti->gpus);
    ti->gpus = NULL;
    ti->ngpus = 0;
    if (!n)
        return;
    ti->gpus = xcalloc(n, sizeof(*ti->gpus));
    memcpy(ti->gpus, idx, n * sizeof(*idx));
    ti->ngpus = n;
}

void
gpualloc_forget(struct sched_ti *ti)
{
    gpualloc_set_ti(ti, NULL, 0);
}

bool
gpualloc_take(struct sched_worker *w, struct sched_ti *ti, int n, const char *type)
{
    if (n <= 0) {
        gpualloc_forget(ti);
        return true;
    }
    size_t total, nfree;
    gpualloc_count(w, type, &total, &nfree);
    if (nfree < (size_t)n)
        return false;
    int *idx = xcalloc((size_t)n, sizeof(*idx));
    size_t k = 0;
    for (size_t i = 0; i < w->ngpus && k < (size_t)n; i++) {
        struct sched_gpu *g = &w->gpus[i];
        if (g->lease_id != 0 || !gpualloc_matches(g->model, type))
            continue;
        g->lease_id = ti->lease_id;
        idx[k++] = g->index;
    }
    gpualloc_set_ti(ti, idx, k);
    free(idx);
    return true;
}

static struct sched_gpu *
gpu_find(struct sched_worker *w, int index)
{
    for (size_t i = 0; i < w->ngpus; i++)
        if (w->gpus[i].index == index)
            return &w->gpus[i];
    return NULL;
}

void
gpualloc_release(struct sched_worker *w, const struct sched_ti *ti)
{
    for (size_t i = 0; i < ti->ngpus; i++) {
        struct sched_gpu *g = gpu_find(w, ti->gpus[i]);
        if (g && g->lease_id == ti->lease_id)
            g->lease_id = 0;
    }
}

static int
gpu_cmp(const void *a, const void *b)
{
    const struct sched_gpu *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

void
gpualloc_set_gpus(struct sched_worker *w, const struct msg_gpu *g, size_t n)
{
    gpualloc_worker_free(w);
    if (!n)
        return;
    w->gpus = xcalloc(n, sizeof(*w->gpus));
    for (size_t i = 0; i < n; i++) {
        w->gpus[i].index = (int)g[i].index;
        w->gpus[i].model = xstrdup(g[i].model ? g[i].model : "");
    }
    w->ngpus = n;
    qsort(w->gpus, n, sizeof(*w->gpus), gpu_cmp);
}

size_t
gpualloc_hold(struct sched_worker *w, const struct sched_ti *ti)
{
    size_t bad = 0;
    for (size_t i = 0; i < ti->ngpus; i++) {
        struct sched_gpu *g = gpu_find(w, ti->gpus[i]);
        if (!g || (g->lease_id != 0 && g->lease_id != ti->lease_id))
            bad++;
        else
            g->lease_id = ti->lease_id;
    }
    return bad;
}

void
gpualloc_rebuild(struct sched *s, struct sched_worker *w)
{
    for (size_t i = 0; i < w->ngpus; i++)
        w->gpus[i].lease_id = 0;
    for (struct sched_ti *ti = s->leases.lnext; ti != &s->leases; ti = ti->lnext) {
        if (!ti->ngpus || (ti->worker ? ti->worker != w
                                      : !ti->worker_name || strcmp(ti->worker_name, w->name)))
            continue;
        size_t bad = gpualloc_hold(w, ti);
        if (bad)
            LOG(LOG_WARN, "CAIRN-GPU-MISSING",
                "worker %s: lease %" PRId64 " holds %zu GPU%s the worker does not announce "
                "(or another lease holds)",
                w->name, ti->lease_id, bad, bad == 1 ? "" : "s");
    }
}

void
gpualloc_worker_free(struct sched_worker *w)
{
    for (size_t i = 0; i < w->ngpus; i++)
        free(w->gpus[i].model);
    free(w->gpus);
    w->gpus = NULL;
    w->ngpus = 0;
}
