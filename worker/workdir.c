/* workdir.c - the work folders of attempts (prefix: workdir_).
 *
 * Owns DATA/work/, DATA/work/.pool (the pool of emptied folders parked
 * for the next attempt, workdir.h says why) and DATA/work/.trash (inputs
 * folders being removed on the thread pool: each removal job touches only
 * its own folder there). Emptying and removing go through common/fs.h
 * (fs_empty_dir, fs_rmtree), which never follow a symbolic link out of the
 * folder nor cross into another file system. The pool is plain memory of
 * the loop thread.
 */
#include "workdir.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "log.h"
#include "util.h"

struct workdir_pool {
    char *data_dir;
    uv_loop_t *loop;
    char *parked[WORKDIR_POOL_MAX];
    int n;
    int seq;
    unsigned trash_seq;
};

/* One folder being removed on the thread pool. */
struct workdir__trash {
    uv_work_t req;
    char *path;
};

/* fs_rmtree, with a warning for what could not be removed. */
static void
workdir__rmtree(const char *path)
{
    int rc = fs_rmtree(path);

    if (rc)
        LOG(LOG_WARN, "CAIRN-CLEANUP", "cannot remove %s: %s", path, cairn_strerror(rc));
}

static void
workdir__mkdirs(const char *path)
{
    if (fs_mkdirs(path) != 0)
        LOG(LOG_WARN, "CAIRN-CLEANUP", "cannot create %s: %s", path, strerror(errno));
}

void
workdir_prepare(const char *data_dir)
{
    char *w = xasprintf("%s/work", data_dir), *b = xasprintf("%s/bundles", data_dir);
    char *r = xasprintf("%s/runc", data_dir), *pool = xasprintf("%s/.pool", w);
    char *trash = xasprintf("%s/.trash", w);

    workdir__rmtree(w);
    workdir__rmtree(b);
    workdir__mkdirs(w);
    workdir__mkdirs(pool);
    workdir__mkdirs(trash);
    workdir__mkdirs(b);
    workdir__mkdirs(r);
    free(w);
    free(b);
    free(r);
    free(pool);
    free(trash);
}

void
workdir_pool_new(struct workdir_pool **out, const char *data_dir, uv_loop_t *loop)
{
    struct workdir_pool *p = xcalloc(1, sizeof(*p));

    p->data_dir = xstrdup(data_dir);
    p->loop = loop;
    *out = p;
}

static void
workdir__trash_work(uv_work_t *req)
{
    struct workdir__trash *t = req->data;

    workdir__rmtree(t->path); /* (LOG may be called from any thread) */
}

static void
workdir__trash_done(uv_work_t *req, int status)
{
    struct workdir__trash *t = req->data;

    (void)status;
    free(t->path);
    free(t);
}

/* Move path/inputs aside and remove it on the thread pool; if it cannot be
 * moved it stays for the emptying (on the loop, as before). */
static void
workdir__trash_inputs(struct workdir_pool *p, const char *path)
{
    char *in = xasprintf("%s/inputs", path);
    struct workdir__trash *t = xcalloc(1, sizeof(*t));

    t->path = xasprintf("%s/work/.trash/%u", p->data_dir, ++p->trash_seq);
    t->req.data = t;
    if (rename(in, t->path) != 0) {
        free(t->path);
        free(t);
    } else if (uv_queue_work(p->loop, &t->req, workdir__trash_work, workdir__trash_done) != 0) {
        workdir__trash_work(&t->req);
        workdir__trash_done(&t->req, 0);
    }
    free(in);
}

void
workdir_pool_free(struct workdir_pool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n; i++)
        free(p->parked[i]);
    free(p->data_dir);
    free(p);
}

static bool
workdir__kept(const char *name)
{
    return strcmp(name, "workspace") == 0 || strcmp(name, "outputs") == 0;
}

/* Empty path down to empty workspace/ and outputs/ folders (a task may have
 * replaced either with something else: that goes). 0 only if nothing else
 * is left. */
static int
workdir__empty(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    int rc = 0;

    if (!d)
        return cairn_from_errno(errno);
    while ((de = readdir(d)) != NULL) {
        char *sub;
        bool dir;
        int r;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        sub = xasprintf("%s/%s", path, de->d_name);
        dir = de->d_type == DT_DIR;
        if (de->d_type == DT_UNKNOWN) {
            struct stat st;
            dir = lstat(sub, &st) == 0 && S_ISDIR(st.st_mode);
        }
        r = dir && workdir__kept(de->d_name) ? fs_empty_dir(sub) : fs_rmtree(sub);
        if (r && !rc)
            rc = r;
        free(sub);
    }
    closedir(d);
    return rc;
}

void
workdir_give(struct workdir_pool *p, const char *path)
{
    workdir__trash_inputs(p, path);
    if (p->n < WORKDIR_POOL_MAX && workdir__empty(path) == 0) {
        char *dst = xasprintf("%s/work/.pool/%d", p->data_dir, ++p->seq);
        if (rename(path, dst) == 0) {
            p->parked[p->n++] = dst;
            return;
        }
        free(dst);
    }
    workdir__rmtree(path);
}

void
workdir_take(struct workdir_pool *p, const char *path)
{
    bool reused = false;
    while (p->n > 0 && !reused) {
        char *src = p->parked[--p->n];
        reused = rename(src, path) == 0;
        if (!reused)
            workdir__rmtree(src);
        free(src);
    }
    char *ws = xasprintf("%s/workspace", path), *outs = xasprintf("%s/outputs", path);
    if (!reused && mkdir(path, 0755) != 0 && errno == EEXIST) {
        workdir__rmtree(path);
        mkdir(path, 0755);
    }
    /* (a task may have replaced them: made again if missing, else EEXIST) */
    mkdir(ws, 0755);
    mkdir(outs, 0755);
    free(ws);
    free(outs);
}
