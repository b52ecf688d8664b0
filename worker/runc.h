/* runc.h - run one task attempt in its own runc container (prefix: runc_).
 *
 * A task attempt runs as `runc --root ROOT run --bundle DIR ID` in the
 * foreground: runc's stdout and stderr are the container's, read through
 * pipes on the caller's libuv loop and handed to output_cb as they arrive.
 * When the container has exited, its exit details go to exit_cb, the
 * container state is gone from ROOT and the bundle directory is removed
 * (with bundle_dir_exists: its config.json). runc run is started with
 * posix_spawn and its exit seen through a pidfd.
 * With isolation_none the argv is spawned directly as a plain child process
 * instead (development and scheduler benchmarks only; see docs/containers.md).
 *
 * Everything runs on the loop thread: runc_start, runc_kill, runc_stop and
 * runc_proc_free must be called on the thread that runs the loop, and the
 * callbacks run there too. Bundle creation and removal are small synchronous
 * filesystem operations done inside runc_start and before exit_cb.
 *
 * The module's files (runc_impl.h lists them): runc_bundle.c (spec checks,
 * config.json), runc_image.c (images, rootfs skeletons), runc_supervise.c
 * (a running attempt: streams, timeout, OOM, kill/grace), runc_oci.c (the
 * runc backend), runc_none.c (the isolation none backend).
 *
 * Errors: functions return 0 or a negative CAIRN_E* code (common/err.h).
 * Where a function takes errbuf/errlen, errbuf may be NULL; otherwise on
 * failure it receives a NUL-terminated human message (truncated to errlen).
 */
#ifndef CAIRN_RUNC_H
#define CAIRN_RUNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* The PATH a task gets when its environment has none, and the container's
 * working folder (/workspace, also its HOME when the environment has
 * none): attempt_env (attempt.h) adds them; this module uses env as given. */
#define RUNC_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define RUNC_WORKSPACE "/workspace"

/* A read-only input: host_path (file or directory) appears at
 * /inputs/<name>. name is one path component (no '/', not "." or ".."). */
struct runc_input {
    const char *name;
    const char *host_path;
};

/* An extra bind mount, e.g. the pipeline's code at /pipeline. dest is an
 * absolute container path; it must not lie inside a directory of the image
 * (those are read-only) unless it already exists there. */
struct runc_bind {
    const char *source;
    const char *dest;
    bool readonly;
};

/* A device node the container gets (a GPU and its control devices):
 * host_path is a character device on the host, whose type, major, minor
 * and mode (stat) the container's node at path (under /dev) copies; the
 * device cgroup allows exactly that device (read and write). */
struct runc_device {
    const char *host_path;
    const char *path;
};

/* Everything one attempt needs. All pointers are borrowed for the duration of
 * the call that takes the spec only (runc_start copies what it keeps). Paths
 * must be absolute. Zero or NULL fields take the stated default. With
 * isolation_none only argv, env, workspace_dir (the cwd, optional),
 * timeout_ms and kill_grace_ms are used; argv[0] without a slash is looked
 * up in env's PATH (RUNC_DEFAULT_PATH if it has none), as execvp would. */
struct runc_spec {
    const char *runtime;       /* runtime binary; NULL = "runc" looked up in PATH */
    const char *root;          /* runc --root state directory (required) */
    const char *bundle_dir;    /* must not exist; created, removed after exit
                                * (but see bundle_dir_exists) */
    bool bundle_dir_exists;    /* bundle_dir is an existing folder of the caller's
                                * (the worker: the attempt's work folder, which
                                * the container does not see): only its
                                * config.json is written, and removed after
                                * exit. Saves a mkdir and rmdir per task, which
                                * ext4 makes dear (workdir.h) */
    const char *rootfs_cache;  /* shared rootfs skeletons (mount points and
                                * symlinks, one per image); NULL =
                                * <parent of bundle_dir>/.rootfs */
    const char *container_id;  /* unique under root; [A-Za-z0-9_.+-], <= 128 chars */
    const char *cgroup_parent; /* cgroupsPath is <parent>/<id>; NULL = "/cairn" (the
                                * worker gives each worker its own:
                                * runc_cgroup_parent_for) */
    const char *const *argv;   /* NULL-terminated, argv[0] required */
    const char *const *env;    /* NULL-terminated "K=V" list or NULL (empty): the
                                * task's whole environment, used as given (the
                                * worker's comes from attempt_env) */
    const char *image;         /* "host" (or NULL) or a rootfs directory */
    const char *workspace_dir; /* bound read-write at /workspace (the cwd) */
    const char *outputs_dir;   /* bound read-write at /outputs */
    const struct runc_input *inputs;
    size_t n_inputs;
    const struct runc_bind *binds;
    size_t n_binds;
    const struct runc_device *devices; /* besides runc's default ones (null, zero, ...) */
    size_t n_devices;
    const char *scratch_dir;   /* a small tmpfs at this top-level container folder,
                                * mounted before binds, so a bind may go below it
                                * where the image has no mount point; NULL = none */
    const char *secrets_dir;   /* a host folder of the task's secret files, bound
                                * read-only at /run/secrets (on a tmpfs /run of its
                                * own); NULL = none */
    const char *const *masked; /* more paths hidden in the container (a file shows as
                                * empty, a folder as an empty read-only tmpfs), such
                                * as the worker's key; /etc/shadow*, /etc/gshadow*
                                * always are */
    size_t n_masked;
    double cpus;           /* CPU quota in CPUs; 0 = unlimited */
    int64_t memory_bytes;  /* memory (and memory+swap) limit; 0 = unlimited */
    int64_t pids;          /* maximum number of tasks; 0 = unlimited */
    bool network;          /* true: share the host network namespace */
    int64_t timeout_ms;    /* 0 = none; on expiry: SIGTERM, then SIGKILL */
    int64_t kill_grace_ms; /* SIGTERM to SIGKILL delay; 0 = 2000 */
    bool isolation_none;   /* plain child process; no container, no limits */
    bool keep_bundle;      /* keep bundle_dir after exit (debugging) */
    const char *hostname;  /* NULL = "cairn" */
    const char *cwd;       /* absolute; NULL = /workspace */
    bool has_user;         /* run as uid:gid (an image's User) instead of root */
    uint32_t uid, gid;
};

struct runc_result {
    int exit_code;       /* the task's exit status; -1 if killed by a signal
                          * or if the runtime failed (error is set) */
    int term_signal;     /* signal that ended the task, 0 if none */
    bool oom_killed;     /* the kernel's OOM killer killed a task process */
    bool timed_out;      /* timeout_ms expired and the task was stopped */
    int64_t duration_ms; /* from spawn to the runtime's exit */
    char error[256];     /* runtime failure text, "" if none */
};

/* stream is 1 (stdout) or 2 (stderr). data is valid only during the call. */
typedef void runc_output_cb(void *ud, int stream, const char *data, size_t len);
/* res is valid only during the call. runc_proc_free may be called from here. */
typedef void runc_exit_cb(void *ud, const struct runc_result *res);

struct runc_callbacks {
    runc_output_cb *output_cb; /* may be NULL: output is read and dropped */
    runc_exit_cb *exit_cb;     /* may be NULL */
};

struct runc_proc;

/* Write the OCI bundle for spec: spec->bundle_dir/config.json, whose root.path
 * is the image's shared skeleton under rootfs_cache (built on first use).
 * Nothing is started. spec->bundle_dir must not exist (unless
 * bundle_dir_exists: then it must, and must hold no config.json); the
 * caller removes it. Returns 0, CAIRN_EINVAL (bad spec), CAIRN_EEXIST
 * (bundle_dir, or with bundle_dir_exists its config.json, exists),
 * CAIRN_ENOENT (image, workspace, outputs or an input missing) or CAIRN_EIO. */
int runc_write_bundle(const struct runc_spec *spec, char *errbuf, size_t errlen);

/* Start one attempt on loop. On success *out is set and exactly one exit_cb
 * follows (unless runc_proc_free is called first); output_cb calls happen
 * only before it. On failure *out is untouched, no callback is ever made and
 * nothing of the attempt is left on disk (the loop may have to run once more
 * to close a handle before uv_loop_close).
 * cbs is copied; ud is passed back untouched.
 * Returns 0, the errors of runc_write_bundle, CAIRN_ENOENT (runtime or, with
 * isolation_none, argv[0] not found), CAIRN_ERUNTIME (spawn failed) or
 * CAIRN_EIO. */
int runc_start(struct runc_proc **out, uv_loop_t *loop, const struct runc_spec *spec,
               const struct runc_callbacks *cbs, void *ud, char *errbuf, size_t errlen);

/* Send sig to the task: `runc kill ID sig` for a container (retried until the
 * container exists or has exited), the process group with isolation_none.
 * Used on lease loss or cancel. Returns 0, CAIRN_EINVAL (bad signal) or
 * CAIRN_ESTATE (the task has already exited). */
int runc_kill(struct runc_proc *p, int sig);

/* Stop (pause true) or start again reading the task's stdout and stderr:
 * while paused the pipes fill and the task blocks in write(), so a task
 * that prints faster than its log can be sent waits instead of growing the
 * worker's memory. Loop thread. */
void runc_pause_output(struct runc_proc *p, bool pause);
/* SIGTERM now, SIGKILL after kill_grace_ms if the task is still there.
 * Returns 0 or CAIRN_ESTATE (already exited or stopping). */
int runc_stop(struct runc_proc *p);

/* Release p. After exit_cb (or from inside it) this frees p once its handles
 * are closed. Before exit_cb it cancels: the task is killed, exit_cb is never
 * called, and cleanup (runc delete, bundle removal) finishes on the loop.
 * NULL is a no-op. */
void runc_proc_free(struct runc_proc *p);

/* On worker start: kill and delete every container under root (`runc delete
 * -f`), then remove empty cgroups left under cgroup_parent (NULL = "/cairn"),
 * its direct children only. Synchronous; call before starting tasks. runtime
 * NULL = "runc". Returns the number of containers removed, or CAIRN_EINVAL /
 * CAIRN_EIO (root unreadable) / CAIRN_ERUNTIME (a delete failed; the others
 * are still attempted). A root that does not exist holds no containers:
 * returns 0.
 *
 * The cgroups under cgroup_parent must be this worker's alone: an empty one
 * may be the memory cgroup another worker has just made for an attempt that
 * runc has not put a task in yet. Give each worker its own parent
 * (runc_cgroup_parent_for). */
int runc_reap_leftovers(const char *runtime, const char *root, const char *cgroup_parent);

/* The cgroup parent of one worker: BASE/NAME-HASH, where BASE is base
 * (NULL = "/cairn"), NAME the worker's name (at most 64 of
 * [A-Za-z0-9_.-], others as '_') and HASH 16 hex digits of a hash of
 * data_dir's absolute path (realpath, else as given). The same worker and
 * data folder give the same parent at every start, so a worker killed with
 * SIGKILL reaps its own leftovers when it starts again; two workers on one
 * host never share one. malloc'd. */
char *runc_cgroup_parent_for(const char *base, const char *worker, const char *data_dir);

/* At a worker's clean exit, when none of its containers runs: remove the
 * empty cgroups below cgroup_parent and cgroup_parent itself in every
 * hierarchy (best effort: what is busy stays). */
void runc_cgroup_parent_remove(const char *cgroup_parent);

#endif
