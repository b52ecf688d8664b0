/* attempt.h - the attempts running on this worker (prefix: attempt_).
 *
 * An attempt is one lease being run: the typed lease of a WORK (struct
 * msg_lease) has its host mounts checked (mounts.h), then becomes a work
 * folder (workdir.h), fetched inputs (inputs.h), an environment
 * (attempt_env) and a container spec (runc.h); then STARTED, the log
 * stream in LOG messages, and at the end the RESULT, after the outputs
 * and metrics are collected (outputs.h), with the last lines of stderr
 * (tail.h). Messages go to the link (link.h), which also gets each slot
 * back when its attempt is over.
 *
 * A struct attempt_set owns every running attempt and the artifact store
 * handle they share. Everything here runs on the loop thread.
 */
#ifndef CAIRN_ATTEMPT_H
#define CAIRN_ATTEMPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "link.h"
#include "mounts.h"
#include "msg.h"

struct attempt_set;
struct gpu_set;
struct image_opts;

/* Borrowed for the life of the set. */
struct attempt_config {
    uv_loop_t *loop;
    struct link *link;
    const char *data_dir;             /* DATA: work/, bundles/ and runc/ are below it */
    const char *worker;               /* the worker's name in every message */
    const char *runtime;              /* the OCI runtime; NULL = runc */
    const char *cgroup_parent;        /* the containers' cgroups go below it; NULL = runc.h's */
    const struct mounts_allow *allow; /* host folders tasks may mount; NULL = none */
    bool isolation_none;
    int64_t max_log_size;       /* an attempt's log is cut here (bytes; 0 = no limit) */
    const char *token_file;     /* the worker's key file: hidden from its tasks; or NULL */
    const char *artifacts_credentials; /* an S3 store's credentials file (artifact.h), hidden
                                        * from its tasks; NULL: the environment's */
    const struct gpu_set *gpus; /* the worker's GPUs (gpu.h), or NULL for none */
    const struct image_opts *images; /* pulled images (image.h), or NULL: refused */
    const char *api_ca; /* CA bundle for an https scheduler API (xfer.h), or NULL */
    int64_t blob_cache_size; /* --blob-cache-size bytes (blobcache.h), 0: never trimmed */
    void (*idle_cb)(void *ud); /* an attempt ended: its result is queued, its slot free */
    void *ud;
};

/* *out is set (allocation aborts on failure). */
void attempt_set_new(struct attempt_set **out, const struct attempt_config *cfg);
/* Once no attempt runs (attempt_running is 0). NULL is a no-op. */
void attempt_set_free(struct attempt_set *s);

/* Start the lease (its slot was reserved by the link): STARTED, or a
 * RESULT saying why it could not start (a host mount that is not allowed:
 * at once). A lease with inputs starts once they are fetched, on the
 * thread pool; it is held (attempt_sync_held) meanwhile. What lease owns is
 * taken and lease is zeroed. */
void attempt_start(struct attempt_set *s, struct msg_lease *lease);
/* A lease of a WORK that did not decode: reported as failed by its id (a
 * RESULT with the reason), or only logged if it had no valid id; its slot
 * is freed. bad is borrowed. */
void attempt_refuse(struct attempt_set *s, const struct msg_bad_lease *bad);
/* The scheduler took lease_id back: stop its attempt (SIGTERM, then
 * SIGKILL after the grace), or, while its inputs are fetched, do not start
 * it (its RESULT says so). */
void attempt_cancel(struct attempt_set *s, int64_t lease_id);
/* The worker is shutting down: stop every attempt (one whose inputs are
 * being fetched is not started); their RESULTs say "interrupted" (not the
 * task's fault). */
void attempt_interrupt_all(struct attempt_set *s);
/* Hand every attempt's buffered output to the link as LOG messages. */
void attempt_flush_logs(struct attempt_set *s);
/* Tell the link which leases are held here (for the next POLL). */
void attempt_sync_held(struct attempt_set *s);
/* Is lease_id being run here (fetching its inputs, or started)? */
bool attempt_holds(const struct attempt_set *s, int64_t lease_id);
/* Attempts started and not yet reported. */
int attempt_running(const struct attempt_set *s);

/* What the set did since it was made (the worker's /metrics). */
struct attempt_stats {
    uint64_t succeeded;    /* attempts reported as succeeded */
    uint64_t failed;       /* reported failed (exit, signal, timeout, refused, ...) */
    uint64_t interrupted;  /* stopped by the worker's shutdown */
    uint64_t outputs;      /* outputs stored in the artifact store */
    uint64_t output_bytes; /* their bytes */
    uint64_t images_pulled; /* pulled images: fetched from a registry or layout */
    uint64_t images_cached; /* found unpacked already */
    uint64_t images_failed; /* could not be pulled or unpacked */
    uint64_t image_bytes;   /* bytes the pulls fetched */
};
void attempt_get_stats(const struct attempt_set *s, struct attempt_stats *out);

/* Where a task sees its folders: the values of CAIRN_OUTPUTS, CAIRN_INPUTS
 * and CAIRN_PIPELINE_DIR; NULL leaves the variable out. */
struct attempt_where {
    const char *outputs;
    const char *inputs;
    const char *pipeline;
};

/* The whole environment of a task, built here and nowhere else (the
 * container module uses it as given), in this order:
 *   1. env: the lease's, as the scheduler rendered it (CAIRN_DAG,
 *      CAIRN_RUN_ID, CAIRN_TASK, CAIRN_ATTEMPT, CAIRN_LOGICAL_DATE, then
 *      the DAG's and the task's env);
 *   2. CAIRN_OUTPUTS, CAIRN_INPUTS and CAIRN_PIPELINE_DIR from where (in a
 *      container /outputs, /inputs, /pipeline; with isolation none the host
 *      folders);
 *   3. PATH=RUNC_DEFAULT_PATH if nothing above set PATH, and in a container
 *      HOME=/workspace if nothing set HOME.
 * env (nenv entries) and where are borrowed; where may be NULL. Returns a
 * NULL-terminated array of malloc'd strings for attempt_env_free. */
char **attempt_env(const char *const *env, size_t nenv, const struct attempt_where *where,
                   bool isolation_none);
void attempt_env_free(char **env);

#endif
