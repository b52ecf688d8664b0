/* runc_supervise.c - one running attempt (prefix: runc_, internal runc__).
 *
 * Owns a struct runc_proc from runc_start to its free: the output pipes
 * (read on the loop, handed to output_cb), the timeout and the
 * SIGTERM -> SIGKILL grace, OOM detection, the result and exit_cb. What
 * differs between a container and a plain process is the backend's
 * (runc_oci.c, runc_none.c); this file calls it at fixed points:
 *
 *   runc_start: spec check -> be->prepare (bundle, OOM watch) -> pipes ->
 *     be->spawn -> streams, OOM poll, timers.
 *   Loop: pipe reads -> output_cb; timeout -> SIGTERM, grace -> SIGKILL
 *     (be->signal); the process exits -> runc__exited -> be->exited;
 *     runc__progress asks be->step whether the backend still has work
 *     (`runc kill`, `runc delete`), then waits for the pipes to drain, then
 *     finish: result (be->result), OOM verdict, be->discard, exit_cb.
 *
 * Everything runs on the loop thread. p is freed only when it is finished,
 * released (runc_proc_free) and every handle it opened is closed.
 */
#include "runc_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "log.h"
#include "util.h"

#define RUNC_GRACE_MS 2000
#define RUNC_DRAIN_MS 2000
#define RUNC_LOG_MAX (64 * 1024)

/* ---- OOM detection -------------------------------------------------------
 *
 * runc run destroys the container's cgroups before it exits, taking the
 * memory cgroup's counters with it. On cgroup v1 the memory cgroup is created
 * here first and an eventfd is registered on its memory.oom_control, which
 * outlives the cgroup. The kernel signals it on every OOM in the cgroup (before
 * the victim is killed, so before the container can exit) and once more,
 * asynchronously, after the cgroup has been removed. The loop reads it as
 * soon as it is readable: counts read while the cgroup still exists are OOMs.
 * Counts read after the removal are OOMs if there are two or more; a single
 * one is either, and finish() decides with "SIGKILL that Cairn did not send".
 * Without cgroup v1 (cgroup v2) that rule alone is used. */
static void
oom_read(struct runc_proc *p)
{
    uint64_t v = 0;
    if (read(p->oom_efd, &v, sizeof(v)) != (ssize_t)sizeof(v) || v == 0)
        return;
    struct stat st;
    if (stat(p->memcg_dir, &st) == 0) /* read first, then look: see above */
        p->oom_sure += v;
    else
        p->oom_late += v;
}

static void
oom_poll_cb(uv_poll_t *h, int status, int events)
{
    (void)events;
    struct runc_proc *p = h->data;
    if (status < 0)
        uv_poll_stop(h);
    else
        oom_read(p);
}

void
runc__oom_watch(struct runc_proc *p, const char *cg)
{
    if (access(RUNC__MEMCG "/cgroup.event_control", F_OK) != 0)
        return;
    char *dir = xasprintf(RUNC__MEMCG "%s", cg);
    char *oc = runc__path_join(dir, "memory.oom_control");
    char *ec = runc__path_join(dir, "cgroup.event_control");
    int efd = -1, ofd = -1, cfd = -1;
    bool ok = false;

    if (fs_mkdirs_mode(dir, 0755) == 0 && (efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) >= 0 &&
        (ofd = open(oc, O_RDONLY | O_CLOEXEC)) >= 0 &&
        (cfd = open(ec, O_WRONLY | O_CLOEXEC)) >= 0) {
        char line[64];
        int n = snprintf(line, sizeof(line), "%d %d", efd, ofd);
        ok = write(cfd, line, (size_t)n) == n;
    }
    if (!ok)
        LOG(LOG_DEBUG, "CAIRN-RUNC-OOMWATCH", "no OOM watch on %s: %s", dir, strerror(errno));
    if (cfd >= 0)
        close(cfd);
    if (ofd >= 0)
        close(ofd);
    if (ok) {
        p->oom_efd = efd;
        p->memcg_dir = dir;
    } else {
        if (efd >= 0)
            close(efd);
        rmdir(dir);
        free(dir);
    }
    free(oc);
    free(ec);
}

/* ---- handles ------------------------------------------------------------ */

void
runc__maybe_free(struct runc_proc *p)
{
    if (!p->free_requested || !p->finished || p->handles > 0)
        return;
    free(p->runtime);
    free(p->root);
    free(p->id);
    free(p->bundle_dir);
    sb_free(&p->log);
    free(p->memcg_dir);
    free(p);
}

static void
closed_cb(uv_handle_t *h)
{
    struct runc_proc *p = h->data;
    p->handles--;
    runc__maybe_free(p);
}

void
runc__close_handle(struct runc_proc *p, uv_handle_t *h, uv_close_cb cb)
{
    h->data = p;
    uv_close(h, cb ? cb : closed_cb);
}

static void
stream_close(struct runc__stream *s)
{
    if (!s->open)
        return;
    s->open = false;
    uv_read_stop((uv_stream_t *)&s->pipe);
    runc__close_handle(s->owner, (uv_handle_t *)&s->pipe, NULL);
}

static void
alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct runc__stream *s = h->data;
    buf->base = s->buf;
    buf->len = sizeof(s->buf);
}

/* Keep the tail of runc's log: its error, if any, is the last line. */
static void
log_append(struct sb *log, const char *data, size_t len)
{
    sb_append(log, data, len);
    if (log->len > RUNC_LOG_MAX) {
        size_t drop = log->len - RUNC_LOG_MAX / 2;
        memmove(log->buf, log->buf + drop, log->len - drop + 1);
        log->len -= drop;
    }
}

static void
read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct runc__stream *s = st->data;
    struct runc_proc *p = s->owner;
    if (nread > 0) {
        if (s->index == 0)
            log_append(&p->log, buf->base, (size_t)nread);
        else if (p->cbs.output_cb && !p->free_requested)
            p->cbs.output_cb(p->ud, s->index, buf->base, (size_t)nread);
        return;
    }
    if (nread == 0)
        return;
    if (nread != UV_EOF)
        LOG(LOG_WARN, "CAIRN-RUNC-READ", "container %s: read: %s", p->id ? p->id : "-",
            uv_strerror((int)nread));
    stream_close(s);
    runc__progress(p);
}

void
runc_pause_output(struct runc_proc *p, bool pause)
{
    for (int i = 0; i < p->nstreams; i++) {
        struct runc__stream *s = &p->out[i];
        if (!s->open || s->index == 0)
            continue;
        if (pause)
            uv_read_stop((uv_stream_t *)&s->pipe);
        else
            uv_read_start((uv_stream_t *)&s->pipe, alloc_cb, read_cb);
    }
}

static void
drain_cb(uv_timer_t *t)
{
    struct runc_proc *p = t->data;
    for (int i = 0; i < p->nstreams; i++) {
        if (p->out[i].open)
            LOG(LOG_WARN, "CAIRN-RUNC-DRAIN", "task %s: output still open %d ms after exit",
                p->id ? p->id : "-", RUNC_DRAIN_MS);
        stream_close(&p->out[i]);
    }
    runc__progress(p);
}

/* ---- the end ------------------------------------------------------------ */

/* Close the OOM watch and the memory cgroup made for it; what was read
 * stays counted. */
static void
oom_close(struct runc_proc *p, bool warn)
{
    if (p->oom_efd >= 0) {
        if (p->oom_polling)
            runc__close_handle(p, (uv_handle_t *)&p->oom_poll, NULL); /* stops polling now */
        p->oom_polling = false;
        close(p->oom_efd);
        p->oom_efd = -1;
    }
    if (p->memcg_dir && rmdir(p->memcg_dir) != 0 && errno != ENOENT && warn)
        LOG(LOG_WARN, "CAIRN-RUNC-CLEANUP", "rmdir %s: %s", p->memcg_dir, strerror(errno));
}

static void
finish(struct runc_proc *p)
{
    struct runc_result res;
    memset(&res, 0, sizeof(res));
    p->finished = true;
    uv_timer_stop(&p->t_kill);
    uv_timer_stop(&p->t_misc);
    runc__close_handle(p, (uv_handle_t *)&p->t_kill, NULL);
    runc__close_handle(p, (uv_handle_t *)&p->t_misc, NULL);

    res.duration_ms = p->t_end - p->t_start;
    res.timed_out = p->timed_out;
    res.exit_code = (int)p->exit_status;
    if (p->exit_signal) {
        res.exit_code = -1;
        res.term_signal = p->exit_signal;
    }
    p->be->result(p, &res);
    bool killed_unasked = res.term_signal == SIGKILL && !p->kill_sent;
    if (p->oom_efd >= 0) {
        oom_read(p);
        res.oom_killed =
            p->oom_sure > 0 || p->oom_late >= 2 || (p->oom_late == 1 && killed_unasked);
    } else if (p->be->cgroup_oom && p->mem_limited) {
        res.oom_killed = killed_unasked;
    }
    oom_close(p, true);
    p->be->discard(p);

    if (!p->free_requested && p->cbs.exit_cb)
        p->cbs.exit_cb(p->ud, &res);
    /* p may be released by now (free is deferred to the timers' close). */
}

static bool
streams_open(const struct runc_proc *p)
{
    for (int i = 0; i < p->nstreams; i++)
        if (p->out[i].open)
            return true;
    return false;
}

void
runc__progress(struct runc_proc *p)
{
    if (p->finished || p->be->step(p) || !p->exited)
        return;
    if (streams_open(p)) {
        if (!p->draining) {
            p->draining = true;
            uv_timer_start(&p->t_misc, drain_cb, RUNC_DRAIN_MS, 0);
        }
        return;
    }
    finish(p);
}

void
runc__exited(struct runc_proc *p, uv_handle_t *h, int64_t status, int sig)
{
    p->t_end = clock_mono_ms();
    p->exited = true;
    p->exit_status = status;
    p->exit_signal = sig;
    uv_timer_stop(&p->t_kill);
    uv_timer_stop(&p->t_misc);
    runc__close_handle(p, h, NULL);
    p->be->exited(p);
    runc__progress(p);
}

/* The spawned process's pidfd became readable: it has exited. */
static void
pid_cb(uv_poll_t *h, int status, int events)
{
    struct runc_proc *p = h->data;
    (void)status;
    (void)events;
    int st = 0;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == 0)
        return; /* not yet */
    int64_t code = 0;
    int sig = 0;
    if (r == p->pid && WIFEXITED(st))
        code = WEXITSTATUS(st);
    else if (r == p->pid && WIFSIGNALED(st))
        sig = WTERMSIG(st);
    uv_poll_stop(h);
    close(p->pidfd);
    p->pidfd = -1;
    runc__exited(p, (uv_handle_t *)h, code, sig);
}

int
runc__watch_pid(struct runc_proc *p, pid_t pid)
{
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pfd < 0)
        return -1;
    if (uv_poll_init(p->loop, &p->pidpoll, pfd) != 0) {
        close(pfd);
        errno = EIO;
        return -1;
    }
    p->pid = pid;
    p->pidfd = pfd;
    p->pidpoll.data = p;
    p->handles++;
    uv_poll_start(&p->pidpoll, UV_READABLE, pid_cb);
    return 0;
}

/* ---- stopping ----------------------------------------------------------- */

static void
send_signal(struct runc_proc *p, int sig)
{
    p->kill_sent = true;
    p->be->signal(p, sig);
}

static void
grace_cb(uv_timer_t *t)
{
    struct runc_proc *p = t->data;
    if (!p->exited)
        send_signal(p, SIGKILL);
}

static void
begin_stop(struct runc_proc *p)
{
    p->stopping = true;
    send_signal(p, SIGTERM);
    uv_timer_start(&p->t_kill, grace_cb, (uint64_t)p->grace_ms, 0);
}

static void
timeout_cb(uv_timer_t *t)
{
    struct runc_proc *p = t->data;
    if (p->exited || p->stopping)
        return;
    p->timed_out = true;
    begin_stop(p);
}

int
runc_kill(struct runc_proc *p, int sig)
{
    if (!p || sig <= 0 || sig >= NSIG)
        return CAIRN_EINVAL;
    if (p->exited || p->finished)
        return CAIRN_ESTATE;
    send_signal(p, sig);
    return 0;
}

int
runc_stop(struct runc_proc *p)
{
    if (!p)
        return CAIRN_EINVAL;
    if (p->exited || p->finished || p->stopping)
        return CAIRN_ESTATE;
    begin_stop(p);
    return 0;
}

void
runc_proc_free(struct runc_proc *p)
{
    if (!p || p->free_requested)
        return;
    p->free_requested = true;
    if (!p->exited && !p->finished)
        send_signal(p, SIGKILL);
    runc__maybe_free(p);
}

/* ---- the start ---------------------------------------------------------- */

/* The start failed: nothing of the attempt is left (handles close later). */
static int
start_failed(struct runc_proc *p, int rc)
{
    oom_close(p, false);
    p->be->discard(p);
    p->finished = p->free_requested = true;
    runc__maybe_free(p);
    return rc;
}

int
runc_start(struct runc_proc **out, uv_loop_t *loop, const struct runc_spec *spec,
           const struct runc_callbacks *cbs, void *ud, char *errbuf, size_t errlen)
{
    errf(0, errbuf, errlen, "%s", "");
    int rc = runc__spec_check(spec, errbuf, errlen);
    if (rc)
        return rc;
    if (!out || !loop)
        return errf(CAIRN_EINVAL, errbuf, errlen, "no loop");

    struct runc_proc *p = xcalloc(1, sizeof(*p));
    p->loop = loop;
    if (cbs)
        p->cbs = *cbs;
    p->ud = ud;
    p->be = spec->isolation_none ? &runc__none : &runc__oci;
    p->keep_bundle = spec->keep_bundle;
    p->mem_limited = spec->memory_bytes > 0;
    p->oom_efd = -1;
    p->pidfd = -1;
    p->grace_ms = spec->kill_grace_ms > 0 ? spec->kill_grace_ms : RUNC_GRACE_MS;
    p->runtime = xstrdup(spec->runtime ? spec->runtime : RUNC__DEFAULT_RUNTIME);
    rc = p->be->prepare(p, spec, errbuf, errlen);
    if (rc) {
        p->finished = p->free_requested = true;
        runc__maybe_free(p);
        return rc;
    }

    /* stdout, stderr and, for runc, a third pipe for runc's own log: runc
     * opens /proc/self/fd/3 as its --log file, so no file is written. */
    int fds[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    int wfd[3];
    p->nstreams = p->be->nstreams;
    for (int i = 0; i < p->nstreams; i++) {
        if (pipe2(fds[i], O_CLOEXEC) != 0) {
            rc = errf(cairn_from_errno(errno), errbuf, errlen, "pipe: %s", strerror(errno));
            for (int j = 0; j < i; j++) {
                close(fds[j][0]);
                close(fds[j][1]);
            }
            return start_failed(p, rc);
        }
        wfd[i] = fds[i][1];
    }

    p->t_start = clock_mono_ms();
    rc = p->be->spawn(p, spec, wfd, errbuf, errlen);
    for (int i = 0; i < p->nstreams; i++)
        close(fds[i][1]);
    if (rc) {
        for (int i = 0; i < p->nstreams; i++)
            close(fds[i][0]);
        return start_failed(p, rc);
    }

    for (int i = 0; i < p->nstreams; i++) {
        struct runc__stream *s = &p->out[i];
        s->owner = p;
        s->index = (i + 1) % 3;
        s->open = true;
        uv_pipe_init(loop, &s->pipe, 0);
        p->handles++;
        s->pipe.data = s;
        /* Once uv_pipe_open succeeded the handle owns the fd. */
        int r = uv_pipe_open(&s->pipe, fds[i][0]);
        if (r)
            close(fds[i][0]);
        else
            r = uv_read_start((uv_stream_t *)&s->pipe, alloc_cb, read_cb);
        if (r) {
            LOG(LOG_WARN, "CAIRN-RUNC-READ", "output pipe: %s", uv_strerror(r));
            stream_close(s);
        }
    }
    if (p->oom_efd >= 0 && uv_poll_init(loop, &p->oom_poll, p->oom_efd) == 0) {
        p->handles++;
        p->oom_polling = true;
        p->oom_poll.data = p;
        uv_poll_start(&p->oom_poll, UV_READABLE, oom_poll_cb);
    }
    uv_timer_init(loop, &p->t_kill);
    uv_timer_init(loop, &p->t_misc);
    p->handles += 2;
    p->t_kill.data = p;
    p->t_misc.data = p;
    if (spec->timeout_ms > 0)
        uv_timer_start(&p->t_kill, timeout_cb, (uint64_t)spec->timeout_ms, 0);
    *out = p;
    return 0;
}
