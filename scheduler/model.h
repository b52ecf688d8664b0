/* model.h - what the scheduler knows, as plain structs (no behaviour).
 *
 * DAGs (sched_dag) with their loaded versions (sched_dagver), unfinished
 * runs (sched_run) with one task instance per task (sched_ti), and the
 * workers that registered (sched_worker). The engine's files change these on
 * the loop thread only; the HTTP API reads them there too. Every field that
 * is persisted is written by records.c; which file changes which field is in
 * docs/architecture.md ("Who owns what").
 */
#ifndef CAIRN_SCHED_MODEL_H
#define CAIRN_SCHED_MODEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dag.h"
#include "diag.h"

/* The requests a worker said it gave up waiting on, remembered per worker
 * (lease.c) */
#define SCHED_GAVE_UP_MAX 64

struct wire_req;

enum ti_state {
    TI_PENDING,
    TI_QUEUED,
    TI_LEASED,
    TI_RUNNING,
    TI_SUCCESS,
    TI_FAILED,
    TI_UP_FOR_RETRY,
    TI_UPSTREAM_FAILED,
    TI_SKIPPED,
    TI_CANCELLED,
    TI_NSTATES
};

enum run_state {
    RUN_QUEUED,
    RUN_RUNNING,
    RUN_SUCCESS,
    RUN_FAILED,
    RUN_CANCELLED,
    RUN_NSTATES
};


/* A loaded DAG version, shared by the runs that use it. */
struct sched_dagver {
    int refs;
    struct dag *dag;
};

struct sched_worker;

struct sched_map;

struct api_blob_up;
struct codesnap_job;

struct sched_ti {
    struct sched_run *run;
    size_t idx;                 /* task index in run->dv->dag */
    /* fan-out: a mapped task's task instance is a group (map set) whose
     * instances (parent set, map_index >= 0) are task instances like any
     * other: leased, retried, logged and stored one by one */
    struct sched_map *map;      /* this is a group: its instances, or NULL */
    struct sched_ti *parent;    /* this is an instance: its group, or NULL */
    long map_index;             /* its index, or -1 */
    enum ti_state state;
    int attempts;               /* attempts started */
    int lost;                   /* attempts lost with their worker since the last clear */
    int attempt_base;           /* attempts made before the last clear */
    int pending_up;             /* upstreams not yet finished */
    bool decided;               /* trigger rule has fired */
    int64_t lease_id;           /* current lease (fencing number), 0 = none */
    int64_t lease_expires;      /* monotonic ms */
    int64_t sent_seq;           /* the worker's request whose answer carried the lease, until
                                   the worker shows it has it (0: it has, or not known) */
    bool resend;                /* the answer went to a request the worker gave up on: the
                                   lease goes again with its next answer */
    int resent;                 /* times it was sent again (logged the first time) */
    struct sched_worker *worker;
    char *worker_name;
    int64_t queued_at, started_at, ended_at, next_try_at; /* wall ms, 0 = unset */
    int exit_code;              /* -1 = none */
    int signal;                 /* 0 = none */
    bool oom, timed_out;
    char *error;
    int64_t log_size;           /* bytes stored for the current attempt */
    int64_t log_lost;           /* bytes of its output that could not be stored */
    int log_fd;                 /* its log file while open (logs.c), or -1 */
    json_t *outputs;            /* artifacts of the successful attempt, or NULL */
    json_t *metrics;            /* its metrics {name: number}, or NULL */
    /* step cache and models folder (docs/dag-yaml.md): cache_key is set when
     * the task becomes ready; cached, cached_from and published are set by a
     * hit or a publish and cleared when an attempt starts */
    char cache_key[65];         /* step cache key ("" = none: no cache, or not computable) */
    char image_digest[72];      /* the image digest of its last lease ("" = none: not pulled) */
    bool cached;                /* succeeded from the cache, without running */
    json_t *cached_from;        /* {dag, run_id, task, attempt} it reused, or NULL */
    bool no_cache;              /* do not reuse (a success still refreshes the cache) */
    json_t *published;          /* {path, latest, files} in the models folder, or NULL */
    json_t *stderr_tail;        /* the current attempt's last stderr lines (RESULT), or NULL */
    bool publishing;            /* succeeded; its outputs are being copied to the models
                                   folder (state running, no lease) */
    json_t *prov;               /* what the current attempt was given: {image, argv, env,
                                   inputs}, built once at lease time; NULL if unknown */
    int *gpus;                  /* the GPUs (worker's indices) of the current or last
                                   attempt, ngpus of them (gpualloc.c), or NULL */
    size_t ngpus;
    size_t heap_idx;            /* in the ready heap, or SIZE_MAX */
    bool dirty, attempt_dirty, artifacts_dirty;
    bool stored;                /* its record is in LMDB (a pending or queued task instance
                                   that never ran needs none: recovery derives it) */
    struct sched_ti *dirty_next;
    uint64_t change_seq;        /* the engine's change counter at its last change */
    bool lazy;                  /* on the list of changes for the next commit */
    struct sched_ti *lazy_next;
    struct sched_ti *lnext, *lprev; /* in the lease or retry list */
    char lease_key[24];         /* key in the lease map while leased */
    int64_t deadline_missed_at; /* wall ms its `deadline:` fired (notify.c), 0 = not */
    /* the current lease's credential for the blob routes (api_blobs.h), in
     * memory only; "" = none */
    char xfer_token[65];
    json_t *xfer_allowed;       /* the blobs that lease may read {sha256: true}, or NULL */
    bool xfer_fan_in;           /* and its fan-in inputs' files, not added to it yet */
    struct api_blob_up *uploads; /* its uploads in progress (api_blobs.c) */
    json_t *excluded;           /* workers that could not get its inputs [name...] (not leased
                                   it again until a clear), or NULL */
};

/* The instances of a mapped task in one run (docs/architecture.md,
 * "Fan-out"). The group is decided by its trigger rule like any task; then
 * its items are known (at once for matrix and list params, after reading
 * the upstream's list for map.from), n is fixed and committed, and the
 * instances are created a chunk per loop iteration. The group ends when
 * every instance has, with the outcome of all of them. */
struct sched_map {
    size_t n;                   /* instances in all, once expanded */
    size_t created;             /* made so far (0..n) */
    struct sched_ti *inst;      /* n instances (allocated at expansion) */
    json_t *items;              /* the items (a JSON array), once known */
    char items_sha[65];         /* map.from: the digest of the list it came from, or "" */
    char manifest_sha[65];      /* once ended: the digest of the manifest of its instances'
                                   outputs (fan-in inputs), or "" */
    struct fan_mjob *mjob;      /* its manifest being made before it ends (fanout.c), or NULL */
    bool manifest_failed;       /* making it so failed: a fan-in lease makes it again */
    bool expanded;              /* n is known (and committed with the group) */
    bool loading;               /* map.from: the list is being read on the thread pool */
    bool queued;                /* on the engine's expansion queue */
    int count[TI_NSTATES];      /* created instances in each state */
    size_t nfinished;           /* terminal instances */
    int active;                 /* leased + running instances (max_parallel) */
};

struct sched_run {
    char *dag;
    char *run_id;
    char *run_type;             /* manual, scheduled, backfill, event */
    json_t *event;              /* run_type event: what caused it (events.c), or NULL */
    char *backfill;             /* id of the backfill that (re)started it, or NULL */
    struct sched_dagver *dv;
    enum run_state state;
    int64_t logical_date;       /* UTC seconds */
    int64_t interval_end;       /* UTC seconds */
    int64_t created_at, started_at, ended_at; /* wall ms */
    json_t *params;             /* overrides {name: "value"} */
    bool no_cache;              /* triggered with no_cache: its tasks do not reuse */
    json_t *images;             /* {reference: digest}: tags pinned at creation, or NULL */
    int pinning;                /* tags still being resolved (imagepin.c): not started before
                                   they are */
    uint64_t pin_id;            /* which pinning of this run the answers are for */
    /* the `code:` folder as it was at creation (codesnap.h) */
    int code_state;             /* CODESNAP_NONE, _PENDING, _READY, _FAILED */
    char code_digest[65];       /* the snapshot's tree manifest, "" until known */
    json_t *code_files;         /* {sha256: true} of its files (blob grants), or NULL */
    char *code_error;           /* why the snapshot failed, or NULL */
    struct codesnap_job *code_job; /* the job making or loading it, or NULL */
    struct dag_kv *overrides;
    size_t noverrides;
    struct sched_ti *tis;
    size_t ntis;
    size_t nfinished;
    int active;                 /* leased + running */
    size_t start_next;          /* a big run starts a chunk per loop iteration: the next task
                                   instance to decide */
    bool starting;              /* on the engine's start queue (not evicted meanwhile) */
    size_t free_next;           /* evicted: the next task instance to free */
    uint64_t seq;               /* creation order */
    uint64_t change_seq;        /* the last change of one of its task instances */
    bool dirty;
    struct sched_run *dirty_next;
    struct sched_run *next, *prev; /* all unfinished runs */
    char *key;                  /* "dag\x1frun_id" */
    int64_t deadline_missed_at; /* wall ms its `deadline:` fired (notify.c), 0 = not */
};

/* A DAG known to the scheduler, with its current good version. */
struct sched_dag {
    char *name;
    char *file;
    struct sched_dagver *cur;   /* last good version, NULL if never loaded */
    struct diag_list errors;    /* problems of the file as it is on disk */
    bool paused;
    bool has_cursor;
    int64_t cursor;             /* latest scheduled logical date created */
    int active_runs;
    int active_tasks;
    int64_t file_mtime_ns;
    int64_t file_size;
    bool seen;                  /* scratch for rescans */
};

/* A GPU of a worker, as its HELLO announced it (gpualloc.c). */
struct sched_gpu {
    int index;                  /* its device: /dev/nvidiaINDEX on the worker */
    char *model;                /* "" if the worker does not know */
    int64_t lease_id;           /* the lease holding it, 0 = free */
};

struct sched_worker {
    char *name;
    char *host;
    int slots;
    int busy;
    struct dag_kv *labels;
    size_t nlabels;
    int64_t last_seen;          /* monotonic ms */
    int64_t last_seen_wall;
    int64_t connected_at;       /* wall ms */
    bool alive;
    struct wire_req *parked;    /* a POLL waiting for work */
    uint32_t pipe;              /* connection of its last request */
    int64_t parked_until;       /* monotonic ms */
    int parked_free;
    int prefetch;               /* leases it queues beyond its slots (HELLO) */
    int64_t avg_task_ms;        /* its tasks' recent run time (a moving average) */
    int nreported;              /* results that fed avg_task_ms */
    bool stopping;              /* it reported a task stopped by its shutdown: no new
                                 * leases until its next HELLO */
    struct sched_gpu *gpus;     /* in index order */
    size_t ngpus;
    json_t *images;             /* its unpacked images [{digest, size}] (its last POLL), or NULL */
    json_t *direct_stores;      /* the stores it reaches itself (HELLO) [uri...], or NULL */
    int64_t parked_seq;         /* the parked POLL's number (seq), 0 = none */
    int64_t gave_up[SCHED_GAVE_UP_MAX]; /* requests it gave up waiting on (ring), 0 = empty */
    size_t gave_up_next;
    int nresend;                /* its leases to send again (sched_ti.resend) */
};

#endif
