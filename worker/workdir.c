/* workdir.c - the work folders of attempts (prefix: workdir_).
 *
 * Owns DATA/work/ and DATA/work/.pool: the pool of emptied folders parked
 * for the next attempt (workdir.h says why). Emptying and removing go
 * through common/fs.h (fs_empty_dir, fs_rmtree), which never follow a
 * symbolic link out of the folder nor cross into another file system. The
 * pool is plain memory of the loop thread.
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
    char *parked[WORKDIR_POOL_MAX];
    int n;
    int seq;
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

    workdir__rmtree(w);
    workdir__rmtree(b);
    workdir__mkdirs(w);
    workdir__mkdirs(pool);
    workdir__mkdirs(b);
    workdir__mkdirs(r);
    free(w);
    free(b);
    free(r);
    free(pool);
}

void
workdir_pool_new(struct workdir_pool **out, const char *data_dir)
{
    struct workdir_pool *p = xcalloc(1, sizeof(*p));

    p->data_dir = xstrdup(data_dir);
    *out = p;
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
