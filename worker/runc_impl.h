/* runc_impl.h - the inside of the container module (prefix: runc__); only
 * the worker/runc_*.c files include it. runc.h is the module's public API.
 *
 * The module's files, one concern each:
 *   runc_bundle.c     spec checks; the OCI bundle (config.json)
 *   runc_image.c      images: the top level a container sees, rootfs skeletons
 *   runc_supervise.c  one running attempt: runc_start, output streams, the
 *                     timeout and kill/grace timers, OOM detection, the result
 *   runc_oci.c        the runc backend: `runc run`, `runc kill`, `runc
 *                     delete`, the runtime's log, leftovers at worker start
 *   runc_none.c       the --isolation none backend: posix_spawn + pidfd
 * runc_supervise.c drives an attempt through a backend (struct
 * runc__backend); everything runs on the loop thread.
 */
#ifndef CAIRN_RUNC_IMPL_H
#define CAIRN_RUNC_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <uv.h>

#include "runc.h"
#include "util.h"

#define RUNC__DEFAULT_RUNTIME "runc"
#define RUNC__DEFAULT_CGROUP_PARENT "/cairn"
#define RUNC__CGROUP_ROOT "/sys/fs/cgroup"
#define RUNC__MEMCG RUNC__CGROUP_ROOT "/memory"
#define RUNC__ID_MAX 128
#define RUNC__READ_BUF 65536

enum runc__helper { RUNC__HELPER_NONE, RUNC__HELPER_KILL, RUNC__HELPER_DELETE };

struct runc__backend;

struct runc__stream {
    uv_pipe_t pipe;
    struct runc_proc *owner;
    int index; /* 1 stdout, 2 stderr, 0 runc's own log */
    bool open;
    char buf[RUNC__READ_BUF];
};

struct runc_proc {
    uv_loop_t *loop;
    struct runc_callbacks cbs;
    void *ud;
    const struct runc__backend *be;

    /* Copied from the spec. */
    bool keep_bundle;
    bool bundle_dir_exists; /* the caller's folder: only config.json is removed */
    bool mem_limited;
    char *runtime;
    char *root;
    char *id;
    char *bundle_dir;
    char *memcg_dir;    /* pre-created v1 memory cgroup, NULL if none */
    int oom_efd;        /* eventfd registered on memory.oom_control, -1 if none */
    uv_poll_t oom_poll; /* readable oom_efd; initialised if oom_polling */
    bool oom_polling;
    uint64_t oom_sure; /* OOM events read while the cgroup existed */
    uint64_t oom_late; /* events read after runc removed it (may hold the removal) */
    int64_t grace_ms;

    uv_poll_t pidpoll;          /* the spawned process's pidfd (`runc run` or, with
                                 * isolation none, the task), readable when it exits */
    int pidfd;                  /* -1 if none */
    uv_process_t helper;        /* runc kill / runc delete */
    uv_timer_t t_kill;          /* timeout, then the SIGTERM -> SIGKILL grace */
    uv_timer_t t_misc;          /* kill retry before exit; output drain deadline after */
    struct runc__stream out[3]; /* stdout, stderr, runc's log (container mode) */
    int nstreams;
    struct sb log; /* runc's JSON log, the last RUNC__LOG_MAX bytes at most */
    int handles;   /* initialised handles whose close callback has not run */

    int pid;
    int64_t t_start;
    int64_t t_end;
    bool exited;
    int64_t exit_status;
    int exit_signal; /* signal that ended the spawned process itself */

    enum runc__helper helper_kind;
    bool helper_active; /* from spawn until the helper handle is closed */
    int helper_sig;
    int pending_sig; /* signal still to deliver with `runc kill` */
    int retry_sig;   /* signal whose `runc kill` failed, retried by t_misc */
    bool stopping;
    bool kill_sent;
    bool timed_out;
    bool need_delete;
    bool delete_done;
    bool draining;
    bool finished;
    bool free_requested;
};

/* What differs between running in a container and as a plain process.
 * runc_supervise.c calls these on the loop thread. */
struct runc__backend {
    const char *name;
    int nstreams;    /* pipes: stdout, stderr (and the runtime's own log) */
    bool cgroup_oom; /* memory limits apply: an unasked SIGKILL may be the OOM killer */
    /* Before the pipes: what the task needs on disk (bundle, OOM watch). */
    int (*prepare)(struct runc_proc *p, const struct runc_spec *s, char *errbuf, size_t errlen);
    /* Start the task, its stdout/stderr (and log) on the write ends wfd[];
     * on failure no handle of it is left open (or one is closing). */
    int (*spawn)(struct runc_proc *p, const struct runc_spec *s, const int *wfd, char *errbuf,
                 size_t errlen);
    void (*signal)(struct runc_proc *p, int sig);
    /* Right after the spawned process is gone. */
    void (*exited)(struct runc_proc *p);
    /* Called by runc__progress: true while the backend has something to do
     * or wait for (before the exit: signals to deliver; after: cleanup). */
    bool (*step)(struct runc_proc *p);
    /* The backend's reading of the exit (res has the raw status). */
    void (*result)(struct runc_proc *p, struct runc_result *res);
    /* Remove what prepare made (after the exit, or when the start failed). */
    void (*discard)(struct runc_proc *p);
};

extern const struct runc__backend runc__oci;
extern const struct runc__backend runc__none;

/* ---- runc_bundle.c ---- */

/* Absolute, and no "." or ".." component. */
bool runc__path_ok(const char *p);
/* A container id runc takes: 1-128 of [A-Za-z0-9_.+-], not . or .. */
bool runc__id_ok(const char *id);
/* dir/name with the slashes between them collapsed; malloc'd. */
char *runc__path_join(const char *dir, const char *name);
bool runc__is_image_host(const char *image);
int runc__spec_check(const struct runc_spec *s, char *errbuf, size_t errlen);
/* <cgroup_parent>/<container_id>; malloc'd. */
char *runc__cgroup_path(const struct runc_spec *s);
int runc__bundle_create(const struct runc_spec *s, char *errbuf, size_t errlen);
/* cfg_only: the caller's folder (bundle_dir_exists): its config.json only. */
void runc__bundle_remove(const char *dir, bool cfg_only);
/* fs_rmtree, with a warning for what could not be removed. */
void runc__rmtree(const char *path);

/* ---- runc_image.c ---- */

/* Called for each top-level entry of the image the container sees, in a
 * stable order: src is its host path, st its lstat; nonzero stops. */
typedef int runc__image_visit_cb(void *arg, const char *src, const char *name,
                                 const struct stat *st, char *errbuf, size_t errlen);
int runc__image_walk(const struct runc_spec *s, runc__image_visit_cb *fn, void *arg, char *errbuf,
                     size_t errlen);
/* A bind mount's destination must exist in the image if it lies inside
 * one of the image's top-level folders (they are read-only mounts, so runc
 * cannot make the mount point): 0, or CAIRN_ENOENT saying so. Elsewhere
 * runc makes the mount point in the skeleton. */
int runc__image_dest_check(const struct runc_spec *s, const char *dest, char *errbuf,
                           size_t errlen);
/* The image's shared rootfs skeleton (built on first use), malloc'd; NULL
 * with *rcp and errbuf set. */
char *runc__skeleton_get(const struct runc_spec *s, char *errbuf, size_t errlen, int *rcp);

/* ---- runc_supervise.c ---- */

/* Decide what happens next; called after every event. */
void runc__progress(struct runc_proc *p);
/* Free p once it is finished, released and has no open handle. */
void runc__maybe_free(struct runc_proc *p);
/* uv_close h, counted in p->handles; cb NULL = the common close callback. */
void runc__close_handle(struct runc_proc *p, uv_handle_t *h, uv_close_cb cb);
/* Watch the spawned child pid (the task, or `runc run`) through a pidfd
 * on the loop: when it has exited it is reaped and runc__exited follows.
 * 0, or -1 with errno set (nothing is left to close). posix_spawn and this
 * instead of uv_spawn: fork copies the worker's page tables, which cost
 * more than the rest of a container's start on the worker's side. */
int runc__watch_pid(struct runc_proc *p, pid_t pid);
/* The spawned process is gone (h: its handle, closed here). */
void runc__exited(struct runc_proc *p, uv_handle_t *h, int64_t status, int sig);
/* cgroup v1: pre-create the attempt's memory cgroup cg and watch it for
 * OOM events (nothing on cgroup v2). */
void runc__oom_watch(struct runc_proc *p, const char *cg);

#endif
