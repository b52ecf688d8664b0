/* logs.c - attempt logs on disk (logs.h). */
#include "logs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "err.h"
#include "fs.h"
#include "runtab.h"
#include "util.h"

char *
sched_log_path(const struct sched *s, const char *dag, const char *run_id, const char *task,
               int attempt)
{
    return xasprintf("%s/logs/%s/%s/%s/%d.log", s->cfg.data_dir, dag, run_id, task, attempt);
}

static int
logs__open(struct sched *s, struct sched_ti *ti, char *err, size_t errlen)
{
    char name[256];
    char *path = sched_log_path(s, ti->run->dag, ti->run->run_id,
                                sched_ti_name(ti, name, sizeof(name)), ti->attempts);
    char *dir = xstrdup(path);
    *strrchr(dir, '/') = '\0';
    int rc = fs_mkdirs_mode(dir, 0755);
    free(dir);
    if (rc == 0) {
        ti->log_fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (ti->log_fd < 0)
            rc = cairn_from_errno(errno);
    }
    if (rc)
        errf(rc, err, errlen, "cannot open %s: %s", path, strerror(errno));
    free(path);
    return rc;
}

int
logs_append(struct sched *s, struct sched_ti *ti, const char *data, size_t len, char *err,
            size_t errlen)
{
    int rc;
    if (ti->log_fd < 0 && (rc = logs__open(s, ti, err, errlen)) != 0)
        return rc;
    ssize_t wn = pwrite(ti->log_fd, data, len, (off_t)ti->log_size);
    if (wn < 0 || (size_t)wn != len) {
        int e = wn < 0 ? errno : ENOSPC;
        char name[256];
        rc = errf(cairn_from_errno(e), err, errlen, "cannot write the log of %s/%s/%s: %s",
                  ti->run->dag, ti->run->run_id, sched_ti_name(ti, name, sizeof(name)),
                  wn < 0 ? strerror(e) : "short write");
        logs_close(ti); /* reopened by the next chunk */
        return rc;
    }
    ti->log_size += (int64_t)len;
    return 0;
}

void
logs_close(struct sched_ti *ti)
{
    if (ti->log_fd >= 0) {
        close(ti->log_fd);
        ti->log_fd = -1;
    }
}
