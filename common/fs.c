#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
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
    /* the folder itself first: most often only it is missing, or nothing
     * is (a mkdir of each existing parent costs a path walk apiece) */
    if (mkdir(path, mode) == 0)
        return 0;
    if (errno != ENOENT && errno != EEXIST)
        return cairn_from_errno(errno);
    bool walk = errno == ENOENT; /* else it exists: is it a folder? */
    char *p = xstrdup(path);
    for (char *q = p + 1; walk; q++) {
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

/* Whole blocks of zeros are left as holes. */
#define FS_SPARSE_BLOCK ((size_t)4096)

static bool
fs__zeros(const unsigned char *b, size_t n)
{
    return n == 0 || (b[0] == 0 && memcmp(b, b + 1, n - 1) == 0);
}

ssize_t
fs_pread_sparse(int fd, unsigned char *buf, size_t n, int64_t off)
{
    size_t got = 0;
    while (got < n) {
        off_t pos = (off_t)(off + (int64_t)got), d = lseek(fd, pos, SEEK_DATA), h;
        struct stat st;
        if (d < 0 && errno == ENXIO) { /* in a hole up to the end, or at the end */
            if (fstat(fd, &st) != 0)
                return -1;
            if (pos >= st.st_size)
                break;
            d = st.st_size;
        } else if (d < 0) {
            d = pos; /* holes unknown here: read */
        }
        if (d > pos) {
            size_t z = (uint64_t)(d - pos) < n - got ? (size_t)(d - pos) : n - got;
            memset(buf + got, 0, z);
            got += z;
            continue;
        }
        h = lseek(fd, pos, SEEK_HOLE);
        size_t want = h > pos && (uint64_t)(h - pos) < n - got ? (size_t)(h - pos) : n - got;
        ssize_t r = pread(fd, buf + got, want, pos);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int
fs_pwrite_sparse(int fd, const unsigned char *buf, size_t n, int64_t off)
{
    size_t i = 0;
    while (i < n) {
        size_t blk = n - i < FS_SPARSE_BLOCK ? n - i : FS_SPARSE_BLOCK;
        if (fs__zeros(buf + i, blk)) {
            i += blk;
            continue;
        }
        size_t j = i + blk;
        while (j < n) {
            size_t b = n - j < FS_SPARSE_BLOCK ? n - j : FS_SPARSE_BLOCK;
            if (fs__zeros(buf + j, b))
                break;
            j += b;
        }
        for (size_t k = i; k < j;) {
            ssize_t w = pwrite(fd, buf + k, j - k, (off_t)(off + (int64_t)k));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return -1;
            k += (size_t)w;
        }
        i = j;
    }
    return 0;
}
