/* watchdog.h - a worker's containers die with it.
 *
 * A worker killed with SIGKILL (or crashing) cannot stop its containers:
 * runc's containers are not its children's children in a way the kernel
 * ends with it, so they would run on next to the retries the scheduler
 * makes elsewhere. watchdog_start forks a small process that outlives the
 * worker: it waits on a pipe whose write end only the worker holds, and
 * when that pipe ends without the worker having said "clean stop" it
 * deletes (runc delete -f) every container in the worker's runc root and
 * removes the worker's cgroups, then exits. The window of double execution
 * is the time runc takes to kill them (milliseconds), not the time until
 * the worker is started again.
 *
 * It also holds DATA/worker.lock (flock) for the worker's life and until it
 * has finished reaping, so a worker started again on the same data folder
 * waits for the old one's containers to be gone, and two workers never
 * share a data folder.
 *
 * Call watchdog_start before any thread exists (it forks); watchdog_stop at
 * a clean stop, once no container of this worker runs.
 */
#ifndef CAIRN_WATCHDOG_H
#define CAIRN_WATCHDOG_H

#include <stddef.h>

struct watchdog;

struct watchdog_config {
    const char *data_dir;      /* the lock lives here */
    const char *runtime;       /* runc (NULL: the default) */
    const char *runc_root;     /* the worker's runc --root; NULL: lock only */
    const char *cgroup_parent; /* the worker's own, removed after reaping */
    int lock_wait_ms;          /* how long to wait for the lock */
};

/* 0 and *out set; CAIRN_ESTATE (another worker holds the data folder) or
 * another error with err filled in. */
int watchdog_start(const struct watchdog_config *cfg, struct watchdog **out, char *err,
                   size_t errlen);
/* A clean stop: the watchdog exits without touching anything. NULL is a
 * no-op. */
void watchdog_stop(struct watchdog *w);

#endif
