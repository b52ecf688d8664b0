/* watchdog.c - the process that stops a dead worker's containers
 * (watchdog.h). */
#include "watchdog.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "runc.h"
#include "util.h"

#define WATCHDOG_CLEAN 'x' /* the worker's last word at a clean stop */

struct watchdog {
    pid_t pid;
    int wfd;
};

static void
watchdog__sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The lock on DATA/worker.lock, waited for up to wait_ms. */
static int
watchdog__lock(const char *data_dir, int wait_ms, int *fd_out, char *err, size_t errlen)
{
    char *path = xasprintf("%s/worker.lock", data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int rc = errf(cairn_from_errno(errno), err, errlen, "cannot open %s: %s", path,
                      strerror(errno));
        free(path);
        return rc;
    }
    bool said = false;
    for (int waited = 0;; waited += 100) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            break;
        if (errno != EWOULDBLOCK || waited >= wait_ms) {
            int rc = errf(CAIRN_ESTATE, err, errlen,
                          "%s is locked: another cairn-worker uses the data folder %s (or "
                          "the last one's containers are still being stopped)",
                          path, data_dir);
            close(fd);
            free(path);
            return rc;
        }
        if (!said) {
            LOG(LOG_NOTICE, "CAIRN-WORKER-LOCK",
                "waiting for %s: the last worker on %s is still stopping its containers",
                path, data_dir);
            said = true;
        }
        watchdog__sleep_ms(100);
    }
    free(path);
    *fd_out = fd;
    return 0;
}

/* The watchdog's life: wait for the worker to go, then clean up after it. */
static _Noreturn void
watchdog__child(const struct watchdog_config *cfg, int rfd, int lockfd)
{
    /* out of the worker's process group (a ^C is for the worker) and deaf
     * to the signals that stop it: the pipe says when it is gone */
    setsid();
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_NAME, "cairn-watchdog", 0, 0, 0);
    for (int fd = 3; fd < 1024; fd++)
        if (fd != rfd && fd != lockfd)
            close(fd);
    char c = 0;
    ssize_t n;
    while ((n = read(rfd, &c, 1)) < 0 && errno == EINTR)
        ;
    if (n == 1 && c == WATCHDOG_CLEAN)
        _exit(0);
    LOG(LOG_WARN, "CAIRN-WATCHDOG",
        "the worker on %s is gone without stopping: stopping its containers", cfg->data_dir);
    int rc = runc_reap_leftovers(cfg->runtime, cfg->runc_root, cfg->cgroup_parent);
    if (rc > 0)
        LOG(LOG_NOTICE, "CAIRN-WATCHDOG", "stopped %d container%s the worker left", rc,
            rc == 1 ? "" : "s");
    else if (rc < 0)
        LOG(LOG_ERR, "CAIRN-WATCHDOG", "could not stop every container the worker left: %s",
            cairn_strerror(rc));
    if (cfg->cgroup_parent)
        runc_cgroup_parent_remove(cfg->cgroup_parent);
    _exit(rc < 0 ? 1 : 0);
}

int
watchdog_start(const struct watchdog_config *cfg, struct watchdog **out, char *err,
               size_t errlen)
{
    int lockfd = -1, p[2];
    *out = NULL;
    int rc = watchdog__lock(cfg->data_dir, cfg->lock_wait_ms, &lockfd, err, errlen);
    if (rc)
        return rc;
    if (!cfg->runc_root) { /* nothing to reap: the lock is all */
        struct watchdog *w = xcalloc(1, sizeof(*w));
        w->pid = -1;
        w->wfd = lockfd;
        *out = w;
        return 0;
    }
    if (pipe2(p, O_CLOEXEC) != 0) {
        rc = errf(cairn_from_errno(errno), err, errlen, "pipe: %s", strerror(errno));
        close(lockfd);
        return rc;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        rc = errf(cairn_from_errno(errno), err, errlen, "fork: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        close(lockfd);
        return rc;
    }
    if (pid == 0) {
        close(p[1]);
        watchdog__child(cfg, p[0], lockfd);
    }
    close(p[0]);
    /* the child holds the lock now (same open file), for as long as it lives */
    close(lockfd);
    struct watchdog *w = xcalloc(1, sizeof(*w));
    w->pid = pid;
    w->wfd = p[1];
    *out = w;
    return 0;
}

void
watchdog_stop(struct watchdog *w)
{
    if (!w)
        return;
    if (w->pid > 0) {
        char c = WATCHDOG_CLEAN;
        ssize_t n;
        while ((n = write(w->wfd, &c, 1)) < 0 && errno == EINTR)
            ;
        close(w->wfd);
        while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
            ;
    } else {
        close(w->wfd); /* the lock */
    }
    free(w);
}
