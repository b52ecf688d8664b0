/* blobcache.c - least recently used trimming of the blob cache (see blobcache.h). */
#include "blobcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "units.h"
#include "util.h"

static int
blobcache__lock(const char *root, int how)
{
    char *p = xasprintf("%s/gc.lock", root);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(p);
    if (fd < 0)
        return -1;
    if (flock(fd, how) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int
blobcache_hold(const char *root)
{
    return blobcache__lock(root, LOCK_SH);
}

void
blobcache_release(int fd)
{
    if (fd >= 0)
        close(fd); /* and its lock */
}

void
blobcache_touch(const char *path)
{
    utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW);
}

struct blobcache__blob {
    char *path;
    int64_t size;
    int64_t used; /* mtime, ns */
};

static int
blobcache__older(const void *a, const void *b)
{
    const struct blobcache__blob *x = a, *y = b;
    if (x->used != y->used)
        return x->used < y->used ? -1 : 1;
    return strcmp(x->path, y->path);
}

/* Every blob under ROOT/blobs/sha256/XX/; *total their bytes. */
static struct blobcache__blob *
blobcache__list(const char *root, size_t *n, int64_t *total)
{
    struct blobcache__blob *v = NULL;
    size_t cap = 0;
    *n = 0;
    *total = 0;
    char *top = xasprintf("%s/blobs/sha256", root);
    DIR *d = opendir(top);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strlen(e->d_name) != 2 || e->d_name[0] == '.')
            continue;
        char *sub = xasprintf("%s/%s", top, e->d_name);
        DIR *sd = opendir(sub);
        struct dirent *f;
        while (sd && (f = readdir(sd))) {
            struct stat st;
            if (f->d_name[0] == '.' || fstatat(dirfd(sd), f->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
                !S_ISREG(st.st_mode))
                continue;
            xgrow((void **)&v, &cap, *n + 1, sizeof(*v));
            v[*n] = (struct blobcache__blob){
                xasprintf("%s/%s", sub, f->d_name), (int64_t)st.st_size,
                (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec};
            *total += (int64_t)st.st_size;
            (*n)++;
        }
        if (sd)
            closedir(sd);
        free(sub);
    }
    if (d)
        closedir(d);
    free(top);
    return v;
}

int64_t
blobcache_trim(const char *root, int64_t limit)
{
    if (limit <= 0)
        return 0;
    int fd = blobcache__lock(root, LOCK_EX | LOCK_NB);
    if (fd < 0)
        return errno == EWOULDBLOCK ? -1 : 0;
    size_t n;
    int64_t total, removed = 0;
    struct blobcache__blob *v = blobcache__list(root, &n, &total);
    size_t gone = 0;
    if (total > limit) {
        qsort(v, n, sizeof(*v), blobcache__older);
        for (size_t i = 0; i < n && total - removed > limit; i++) {
            if (unlink(v[i].path) == 0) {
                removed += v[i].size;
                gone++;
            } else if (errno != ENOENT) {
                LOG(LOG_WARN, "CAIRN-BLOB-CACHE", "cannot remove %s: %s", v[i].path,
                    strerror(errno));
            }
        }
        char a[UNITS_SIZE_BUFSZ], b[UNITS_SIZE_BUFSZ];
        units_format_size(total - removed, a, sizeof(a));
        units_format_size(limit, b, sizeof(b));
        LOG(LOG_INFO, "CAIRN-BLOB-CACHE",
            "removed %zu least recently used blob%s (%" PRId64 " bytes) from %s: %s of %s left",
            gone, gone == 1 ? "" : "s", removed, root, a, b);
    }
    for (size_t i = 0; i < n; i++)
        free(v[i].path);
    free(v);
    close(fd);
    return removed;
}
