/* runc_none.c - the --isolation none backend of the container module
 * (prefix: runc__).
 *
 * Owns running an attempt as a plain child process: no container, no
 * limits, no image, for development and scheduler benchmarks only
 * (docs/containers.md). posix_spawn (glibc: clone with CLONE_VM|CLONE_VFORK,
 * so no copy of the worker's page tables and no copy-on-write faults after
 * it, which fork costs per task) in its own session and process group, so
 * the whole group can be signalled; stdout and stderr on the pipes; the
 * exit watched through a pidfd. Only argv, env (used as given), the
 * workspace (the cwd), timeout_ms and kill_grace_ms of the spec apply.
 * The exit is watched by runc__watch_pid (runc_supervise.c).
 * Loop thread only.
 */
#include "runc_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "util.h"

/* The executable for file, searched in the task's PATH (not the worker's)
 * when it has no slash, as execvp would in the child. malloc'd or NULL. */
static char *
resolve_exe(const char *file, char *const *env)
{
    if (strchr(file, '/'))
        return xstrdup(file);
    const char *path = RUNC_DEFAULT_PATH;
    for (size_t i = 0; env && env[i]; i++)
        if (!strncmp(env[i], "PATH=", 5))
            path = env[i] + 5;
    for (const char *d = path; *d;) {
        size_t n = strcspn(d, ":");
        char *cand = n ? xasprintf("%.*s/%s", (int)n, d, file) : xasprintf("./%s", file);
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
            return cand;
        free(cand);
        d += n;
        if (*d == ':')
            d++;
    }
    return NULL;
}

static int
none_prepare(struct runc_proc *p, const struct runc_spec *s, char *errbuf, size_t errlen)
{
    (void)p;
    (void)s;
    (void)errbuf;
    (void)errlen;
    return 0;
}

static int
none_spawn(struct runc_proc *p, const struct runc_spec *spec, const int *wfd, char *errbuf,
           size_t errlen)
{
    static char *const no_env[] = {NULL};
    char *const *args = (char *const *)spec->argv;
    char *const *env = spec->env ? (char *const *)spec->env : no_env;
    char *exe = resolve_exe(args[0], env);
    if (!exe)
        return errf(CAIRN_ENOENT, errbuf, errlen, "spawn %s: no such file or directory", args[0]);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, wfd[0], 1);
    posix_spawn_file_actions_adddup2(&fa, wfd[1], 2);
    if (spec->workspace_dir)
        posix_spawn_file_actions_addchdir_np(&fa, spec->workspace_dir);
    posix_spawnattr_init(&at);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setflags(&at,
                             POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = 0;
    int r = posix_spawn(&pid, exe, &fa, &at, args, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    free(exe);
    if (r != 0)
        return errf(cairn_from_errno(r), errbuf, errlen, "spawn %s: %s", args[0], strerror(r));
    if (runc__watch_pid(p, pid) != 0) {
        int e = errno;
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return errf(CAIRN_EIO, errbuf, errlen, "cannot watch the task (pidfd_open: %s)",
                    strerror(e));
    }
    return 0;
}

/* The whole process group: the task and whatever it started. */
static void
none_signal(struct runc_proc *p, int sig)
{
    if (kill(-p->pid, sig) != 0 && errno != ESRCH)
        LOG(LOG_WARN, "CAIRN-RUNC-KILL", "kill -%d: %s", p->pid, strerror(errno));
}

static void
none_exited(struct runc_proc *p)
{
    /* Stragglers the task left in its process group. */
    kill(-p->pid, SIGKILL);
}

static bool
none_step(struct runc_proc *p)
{
    (void)p;
    return false;
}

static void
none_result(struct runc_proc *p, struct runc_result *res)
{
    (void)p;
    (void)res;
}

static void
none_discard(struct runc_proc *p)
{
    (void)p;
}

const struct runc__backend runc__none = {
    .name = "none",
    .nstreams = 2,
    .cgroup_oom = false,
    .prepare = none_prepare,
    .spawn = none_spawn,
    .signal = none_signal,
    .exited = none_exited,
    .step = none_step,
    .result = none_result,
    .discard = none_discard,
};
