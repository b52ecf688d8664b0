/* gpualloc.h - which GPUs of each worker are free (prefix: gpualloc_).
 *
 * A worker announces its GPUs in HELLO (index and model); each is free or
 * held by one lease (struct sched_gpu in model.h). A task with
 * `resources: {gpus: N}` is leased only to a worker with N free GPUs of its
 * `gpu_type`, and its lease holds those N devices until it ends (result,
 * loss, cancel): two leases never hold the same GPU. The allocation is in
 * the task instance's record (its `gpus`), so after a scheduler restart, or
 * when a worker says HELLO again, the worker's GPUs are held again from the
 * leases in flight that name it (gpualloc_rebuild) before it gets new work.
 *
 * Everything runs on the loop thread. Pointers are borrowed for the call;
 * ti->gpus is owned by the task instance (freed by gpualloc_forget).
 */
#ifndef CAIRN_SCHED_GPUALLOC_H
#define CAIRN_SCHED_GPUALLOC_H

#include <stdbool.h>
#include <stddef.h>

#include "model.h"

struct sched;
struct msg_gpu;

/* Whether a GPU of this model is of type: type appears in model as a whole
 * word (the characters around it are not letters or digits), ignoring
 * case. "A100" matches "NVIDIA A100-SXM4-80GB", "A10" does not. A NULL or
 * empty type matches any model. */
bool gpualloc_matches(const char *model, const char *type);
/* w's GPUs of type: how many (*total) and how many free (*nfree). */
void gpualloc_count(const struct sched_worker *w, const char *type, size_t *total,
                    size_t *nfree);
/* Give ti (its lease_id set) n free GPUs of w of type, the lowest indices
 * first, and record them in ti->gpus. false, with nothing changed, when w
 * has fewer than n free. n 0: true, ti has none. */
bool gpualloc_take(struct sched_worker *w, struct sched_ti *ti, int n, const char *type);
/* The GPUs of w that ti's lease holds become free (a GPU another lease
 * holds is left alone). ti->gpus stays, to show what the attempt had. */
void gpualloc_release(struct sched_worker *w, const struct sched_ti *ti);
/* w's GPUs become those of its HELLO (none held yet). */
void gpualloc_set_gpus(struct sched_worker *w, const struct msg_gpu *g, size_t n);
/* Hold ti's GPUs on w for ti's lease (a lease in flight). Returns how many
 * of them could not be held: w does not have them, or another lease does. */
size_t gpualloc_hold(struct sched_worker *w, const struct sched_ti *ti);
/* Hold w's GPUs again for every lease in flight handed to w (by name):
 * after a HELLO, which may follow a scheduler restart or a reconnect. */
void gpualloc_rebuild(struct sched *s, struct sched_worker *w);
/* Set ti->gpus to n indices (copied); n 0 forgets them. */
void gpualloc_set_ti(struct sched_ti *ti, const int *idx, size_t n);
/* Free ti->gpus. */
void gpualloc_forget(struct sched_ti *ti);
/* Free what w's GPUs own. */
void gpualloc_worker_free(struct sched_worker *w);

#endif
