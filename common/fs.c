#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "util.h"

int
fs_read_all(const char *path, size_t max, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cairn_from_errno(errno);
    struct sb sb;
    char buf[65536];
    sb_init(&sb);
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            sb_free(&sb);
            errno = e;
            return cairn_from_errno(e);
        }
        if (n == 0)
            break;
        if (max && sb.len + (size_t)n > max) {
            close(fd);
            sb_free(&sb);
            return CAIRN_ERANGE;
        }
        sb_append(&sb, buf, (size_t)n);
    }
    close(fd);
    *len = sb.len;
    *out = sb_take(&sb);
    return 0;
}

int
fs_mkdirs_mode(const char *path, mode_t mode)
{
    char *p = xstrdup(path);
    for (char *q = p + 1;; q++) {
        if (*q != '/' && *q != '\0')
            continue;
        char c = *q;
        *q = '\0';
        if (mkdir(p, mode) != 0 && errno != EEXIST) {
            int e = errno;
            free(p);
            errno = e;
            return cairn_from_errno(e);
        }
        *q = c;
        if (c == '\0')
            break;
    }
    struct stat st;
    int e = stat(p, &st) != 0 ? errno : !S_ISDIR(st.st_mode) ? ENOTDIR : 0;
    if (e) {
        free(p);
        errno = e;
        return e == ENOTDIR ? CAIRN_EIO : cairn_from_errno(e);
    }
    free(p);
    return 0;
}

int
fs_mkdirs(const char *path)
{
    return fs_mkdirs_mode(path, 0755) == 0 ? 0 : -1;
}

/* nftw passes no user data: the walk's result is kept per thread. */
static _Thread_local int fs__walk_rc;
static _Thread_local int fs__keep_level; /* entries at this level are kept (-1: none) */

static int
fs__rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    if (ftw->level == fs__keep_level)
        return 0;
    if (remove(path) != 0 && errno != ENOENT && !fs__walk_rc)
        fs__walk_rc = cairn_from_errno(errno);
    return 0;
}

static int
fs__walk(const char *path, int keep_level)
{
    fs__walk_rc = 0;
    fs__keep_level = keep_level;
    if (nftw(path, fs__rm_cb, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0) {
        if (errno == ENOENT)
            return keep_level == 0 ? CAIRN_ENOENT : 0;
        if (!fs__walk_rc)
            fs__walk_rc = cairn_from_errno(errno);
    }
    return fs__walk_rc;
}

int
fs_rmtree(const char *path)
{
    return fs__walk(path, -1);
}

int
fs_empty_dir(const char *path)
{
    return fs__walk(path, 0);
}
