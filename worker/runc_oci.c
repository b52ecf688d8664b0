/* runc_oci.c - the runc backend of the container module (prefix: runc_,
 * internal runc__).
 *
 * Owns what running an attempt in a container means: the bundle and the OCI
 * runtime's command lines. The task runs as `RUNTIME --root ROOT --log
 * /proc/self/fd/3 --log-format json run --bundle BUNDLE ID` in the
 * foreground (posix_spawn, its exit seen through a pidfd), so its stdout
 * and stderr are the container's and its log arrives on a third pipe.
 * Signals go through `RUNTIME kill ID SIG`, retried while the container is
 * still being created; after the exit, state left under --root (runc
 * itself was killed) is removed with `RUNTIME delete -f`. Only one such
 * helper process runs at a time; runc__progress decides when (this
 * backend's step). runc_reap_leftovers clears what an earlier worker left.
 * Loop thread only, except runc_reap_leftovers (synchronous, at start).
 */
#include "runc_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/magic.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "util.h"

extern char **environ;

#define RUNC_RETRY_MS 50

static void helper_exit_cb(uv_process_t *h, int64_t status, int sig);

/* The helper's handle is closed: the next one may run. */
static void
helper_closed_cb(uv_handle_t *h)
{
    struct runc_proc *p = h->data;
    p->handles--;
    p->helper_active = false;
    runc__progress(p);
    runc__maybe_free(p);
}

static void
helper_spawn(struct runc_proc *p, enum runc__helper kind, int sig)
{
    char signum[16];
    const char *args[8];
    size_t n = 0;
    args[n++] = p->runtime;
    args[n++] = "--root";
    args[n++] = p->root;
    if (kind == RUNC__HELPER_KILL) {
        snprintf(signum, sizeof(signum), "%d", sig);
        args[n++] = "kill";
        args[n++] = p->id;
        args[n++] = signum;
    } else {
        args[n++] = "delete";
        args[n++] = "-f";
        args[n++] = p->id;
    }
    args[n] = NULL;

    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE}, {.flags = UV_IGNORE}, {.flags = UV_IGNORE}};
    uv_process_options_t o = {0};
    o.exit_cb = helper_exit_cb;
    o.file = p->runtime;
    o.args = (char **)args;
    o.stdio_count = 3;
    o.stdio = stdio;

    p->helper_kind = kind;
    p->helper_sig = sig;
    p->helper_active = true;
    p->helper.data = p;
    p->handles++;
    int r = uv_spawn(p->loop, &p->helper, &o);
    if (r) {
        LOG(LOG_WARN, "CAIRN-RUNC-HELPER", "container %s: spawn %s: %s", p->id, p->runtime,
            uv_strerror(r));
        if (kind == RUNC__HELPER_DELETE)
            p->delete_done = true;
        runc__close_handle(p, (uv_handle_t *)&p->helper, helper_closed_cb);
    }
}

static void
retry_cb(uv_timer_t *t)
{
    struct runc_proc *p = t->data;
    if (!p->exited && p->pending_sig != SIGKILL)
        p->pending_sig = p->retry_sig;
    p->retry_sig = 0;
    runc__progress(p);
}

static void
helper_exit_cb(uv_process_t *h, int64_t status, int sig)
{
    struct runc_proc *p = h->data;
    if (p->helper_kind == RUNC__HELPER_DELETE) {
        p->delete_done = true;
        if (status != 0 || sig != 0)
            LOG(LOG_WARN, "CAIRN-RUNC-DELETE", "container %s: runc delete exited %lld", p->id,
                (long long)status);
    } else if ((status != 0 || sig != 0) && !p->exited) {
        /* Most likely the container does not exist yet: runc run is still
         * creating it. Try again shortly unless a stronger signal waits. */
        if (p->retry_sig != SIGKILL)
            p->retry_sig = p->helper_sig;
        uv_timer_start(&p->t_misc, retry_cb, RUNC_RETRY_MS, 0);
    }
    runc__close_handle(p, (uv_handle_t *)h, helper_closed_cb);
}

/* Copy the last error message of runc's JSON log into out. */
static bool
runtime_error(struct sb *log, char *out, size_t outlen)
{
    bool found = false;
    for (char *line = log->buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        json_t *j = json_loads(line, 0, NULL);
        const char *level = json_string_value(json_object_get(j, "level"));
        const char *msg = json_string_value(json_object_get(j, "msg"));
        if (level && msg && (strcmp(level, "error") == 0 || strcmp(level, "fatal") == 0)) {
            snprintf(out, outlen, "%s", msg);
            found = true;
        }
        json_decref(j);
        line = nl ? nl + 1 : NULL;
    }
    return found;
}

/* ---- the backend -------------------------------------------------------- */

static int
oci_prepare(struct runc_proc *p, const struct runc_spec *s, char *errbuf, size_t errlen)
{
    p->root = xstrdup(s->root);
    p->id = xstrdup(s->container_id);
    p->bundle_dir = xstrdup(s->bundle_dir);
    p->bundle_dir_exists = s->bundle_dir_exists;
    int rc = runc__bundle_create(s, errbuf, errlen);
    if (rc)
        return rc;
    if (p->mem_limited) {
        char *cg = runc__cgroup_path(s);
        runc__oom_watch(p, cg);
        free(cg);
    }
    return 0;
}

/* fd moved above the numbers a child's dup2s write (0-3), so no dup2
 * overwrites a pipe end that a later one still reads. */
static int
high_fd(int fd, int *tmp)
{
    if (fd > 3)
        return fd;
    *tmp = fcntl(fd, F_DUPFD_CLOEXEC, 10);
    return *tmp;
}

static int
oci_spawn(struct runc_proc *p, const struct runc_spec *s, const int *wfd, char *errbuf,
          size_t errlen)
{
    (void)s;
    const char *args[16];
    size_t n = 0;
    args[n++] = p->runtime;
    args[n++] = "--root";
    args[n++] = p->root;
    args[n++] = "--log";
    args[n++] = "/proc/self/fd/3";
    args[n++] = "--log-format";
    args[n++] = "json";
    args[n++] = "run";
    args[n++] = "--bundle";
    args[n++] = p->bundle_dir;
    args[n++] = p->id;
    args[n] = NULL;

    /* posix_spawn (glibc: clone with CLONE_VM|CLONE_VFORK), not uv_spawn's
     * fork: see runc__watch_pid. stdin is /dev/null, stdout and stderr the
     * pipes, fd 3 runc's log; signals as a fresh process has them. runc
     * stays in the worker's session: started in a new one, `runc run` took
     * ~10 ms longer per container (bench/runc_overhead.sh), and the
     * container has its own PID namespace anyway. */
    int tmp[3] = {-1, -1, -1}, fd[3];
    int rc = 0;
    for (int i = 0; i < 3; i++)
        if ((fd[i] = high_fd(wfd[i], &tmp[i])) < 0)
            rc = errf(cairn_from_errno(errno), errbuf, errlen, "spawn %s: %s", args[0],
                      strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    for (int i = 0; i < 3; i++)
        posix_spawn_file_actions_adddup2(&fa, fd[i], i + 1);
    posix_spawnattr_init(&at);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = 0;
    int r = rc ? 0 : posix_spawnp(&pid, args[0], &fa, &at, (char *const *)args, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    for (int i = 0; i < 3; i++)
        if (tmp[i] >= 0)
            close(tmp[i]);
    if (rc)
        return rc;
    if (r != 0) {
        errf(0, errbuf, errlen, "spawn %s: %s", args[0], strerror(r));
        return r == ENOENT ? CAIRN_ENOENT : r == ENOMEM ? CAIRN_ENOMEM : CAIRN_ERUNTIME;
    }
    if (runc__watch_pid(p, pid) != 0) {
        int e = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return errf(CAIRN_ERUNTIME, errbuf, errlen, "cannot watch %s (pidfd_open: %s)", args[0],
                    strerror(e));
    }
    return 0;
}

static void
oci_signal(struct runc_proc *p, int sig)
{
    if (sig == SIGKILL || p->pending_sig != SIGKILL)
        p->pending_sig = sig;
    runc__progress(p);
}

static void
oci_exited(struct runc_proc *p)
{
    p->pending_sig = 0;
    p->retry_sig = 0;
    /* runc run deletes the container itself when it returns normally;
     * state left under --root means it did not (runc was killed). */
    char *state = runc__path_join(p->root, p->id);
    struct stat st;
    p->need_delete = lstat(state, &st) == 0;
    free(state);
}

static bool
oci_step(struct runc_proc *p)
{
    if (!p->exited) {
        if (!p->helper_active && p->pending_sig) {
            int sig = p->pending_sig;
            p->pending_sig = 0;
            helper_spawn(p, RUNC__HELPER_KILL, sig);
        }
        return true;
    }
    if (p->helper_active)
        return true;
    if (p->need_delete && !p->delete_done) {
        helper_spawn(p, RUNC__HELPER_DELETE, 0);
        return true;
    }
    return false;
}

static void
oci_result(struct runc_proc *p, struct runc_result *res)
{
    if (p->exit_signal) {
        snprintf(res->error, sizeof(res->error), "runtime killed by signal %d", p->exit_signal);
    } else if (p->exit_status != 0) {
        if (runtime_error(&p->log, res->error, sizeof(res->error))) {
            res->exit_code = -1;
        } else if (p->exit_status > 128 && p->exit_status < 128 + 65) {
            /* runc run reports a container killed by signal N as 128+N. */
            res->exit_code = -1;
            res->term_signal = (int)p->exit_status - 128;
        }
    }
}

static void
oci_discard(struct runc_proc *p)
{
    if (p->bundle_dir && !p->keep_bundle)
        runc__bundle_remove(p->bundle_dir, p->bundle_dir_exists);
}

const struct runc__backend runc__oci = {
    .name = "runc",
    .nstreams = 3,
    .cgroup_oom = true,
    .prepare = oci_prepare,
    .spawn = oci_spawn,
    .signal = oci_signal,
    .exited = oci_exited,
    .step = oci_step,
    .result = oci_result,
    .discard = oci_discard,
};

/* ---- leftovers ---------------------------------------------------------- */

static int
run_sync(char *const argv[])
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int status = 0;
    posix_spawn_file_actions_init(&fa);
    for (int fd = 0; fd < 3; fd++)
        posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd ? O_WRONLY : O_RDONLY, 0);
    int r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r != 0)
        return -r;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void
reap_hierarchy(const char *hier, const char *parent)
{
    char *dir = runc__path_join(hier, parent);
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_type != DT_DIR || de->d_name[0] == '.')
                continue;
            char *cg = runc__path_join(dir, de->d_name);
            if (rmdir(cg) == 0)
                LOG(LOG_INFO, "CAIRN-RUNC-REAPED", "removed cgroup %s", cg);
            free(cg);
        }
        closedir(d);
    }
    free(dir);
}

static void
remove_in_hierarchy(const char *hier, const char *parent)
{
    char *dir = runc__path_join(hier, parent);
    if (rmdir(dir) != 0 && errno != ENOENT && errno != EBUSY)
        LOG(LOG_DEBUG, "CAIRN-RUNC-CLEANUP", "rmdir %s: %s", dir, strerror(errno));
    free(dir);
}

/* fn(hierarchy, parent) for every mounted cgroup hierarchy: the unified
 * one on cgroup v2, one mount per controller on v1 or hybrid. */
static void
each_hierarchy(void (*fn)(const char *hier, const char *parent), const char *parent)
{
    struct statfs sf;
    if (statfs(RUNC__CGROUP_ROOT, &sf) != 0)
        return;
    if (sf.f_type == CGROUP2_SUPER_MAGIC) {
        fn(RUNC__CGROUP_ROOT, parent);
        return;
    }
    DIR *d = opendir(RUNC__CGROUP_ROOT);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char *hier = runc__path_join(RUNC__CGROUP_ROOT, de->d_name);
        if (statfs(hier, &sf) == 0 &&
            (sf.f_type == CGROUP_SUPER_MAGIC || sf.f_type == CGROUP2_SUPER_MAGIC))
            fn(hier, parent);
        free(hier);
    }
    closedir(d);
}

/* Remove the empty cgroups under parent in every mounted hierarchy: the v1
 * memory cgroups pre-created for OOM watching, and whatever a runc that was
 * killed half-way left. Busy cgroups refuse rmdir and stay. Only parent's
 * own children: a worker's parent is its own (runc_cgroup_parent_for), so
 * it never removes a cgroup another worker has just made for an attempt. */
static void
reap_cgroups(const char *parent)
{
    each_hierarchy(reap_hierarchy, parent);
}

char *
runc_cgroup_parent_for(const char *base, const char *worker, const char *data_dir)
{
    char name[65];
    size_t n = 0;
    uint64_t h = UINT64_C(14695981039346656037); /* FNV-1a */
    char *abs = data_dir ? realpath(data_dir, NULL) : NULL;
    const char *dir = abs ? abs : data_dir ? data_dir : "";

    for (const char *c = worker ? worker : ""; *c && n < sizeof(name) - 1; c++) {
        char x = *c;
        bool ok = (x >= 'a' && x <= 'z') || (x >= 'A' && x <= 'Z') || (x >= '0' && x <= '9') ||
                  x == '_' || x == '-' || (x == '.' && n > 0);
        name[n++] = ok ? x : '_';
    }
    name[n] = '\0';
    for (const char *c = dir; *c; c++)
        h = (h ^ (unsigned char)*c) * UINT64_C(1099511628211);
    char *parent = xasprintf("%s/%s%s%016llx", base ? base : RUNC__DEFAULT_CGROUP_PARENT, name,
                             n ? "-" : "", (unsigned long long)h);
    free(abs);
    return parent;
}

void
runc_cgroup_parent_remove(const char *cgroup_parent)
{
    if (!runc__path_ok(cgroup_parent) || strcmp(cgroup_parent, "/") == 0)
        return;
    reap_cgroups(cgroup_parent);
    each_hierarchy(remove_in_hierarchy, cgroup_parent);
}

int
runc_reap_leftovers(const char *runtime, const char *root, const char *cgroup_parent)
{
    if (!runc__path_ok(root) || (cgroup_parent && !runc__path_ok(cgroup_parent)))
        return CAIRN_EINVAL;
    const char *rt = runtime ? runtime : RUNC__DEFAULT_RUNTIME;
    int count = 0, rc = 0;

    DIR *d = opendir(root);
    if (!d && errno != ENOENT) {
        LOG(LOG_ERR, "CAIRN-RUNC-REAP", "open %s: %s", root, strerror(errno));
        return CAIRN_EIO;
    }
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || !runc__id_ok(de->d_name))
            continue;
        char *dir = runc__path_join(root, de->d_name);
        char *state = runc__path_join(dir, "state.json");
        if (access(state, F_OK) == 0) {
            char *argv[] = {(char *)rt, "--root", (char *)root, "delete", "-f", de->d_name, NULL};
            int st = run_sync(argv);
            if (st == 0) {
                count++;
                LOG(LOG_NOTICE, "CAIRN-RUNC-REAPED", "deleted leftover container %s", de->d_name);
            } else {
                LOG(LOG_WARN, "CAIRN-RUNC-REAP", "%s delete -f %s failed (%d)", rt, de->d_name, st);
                rc = CAIRN_ERUNTIME;
            }
        }
        /* A state directory without state.json: runc died while creating. */
        if (access(dir, F_OK) == 0 && access(state, F_OK) != 0)
            runc__rmtree(dir);
        free(state);
        free(dir);
    }
    if (d)
        closedir(d);
    reap_cgroups(cgroup_parent ? cgroup_parent : RUNC__DEFAULT_CGROUP_PARENT);
    return rc < 0 ? rc : count;
}
