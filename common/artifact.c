/* artifact.c - content-addressed artifact store (see artifact.h).
 *
 * The public functions validate their arguments, open the caller's files
 * safely, and dispatch to the backend's operations table. The only backend
 * is "file" (a folder, local or shared); an object store would add a table
 * and a scheme in art_open.
 */
#include "artifact.h"
#include "artifact_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "log.h"
#include "util.h"

#define ART_WRITEBACK ((int64_t)8 << 20) /* start writeback every 8 MiB */

/* ---- helpers ----------------------------------------------------------- */

void
art__msg(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verrf(0, err, errlen, fmt, ap);
    va_end(ap);
}


/* Translate errno e into a code, with "what path: strerror" as message. */
int
art__sys(char *err, size_t errlen, int e, const char *what, const char *path)
{
    art__msg(err, errlen, "%s %s: %s", what, path, strerror(e));
    return cairn_from_errno(e);
}

static const char *
art__kind(mode_t m)
{
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISLNK(m))
        return "a symbolic link";
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISSOCK(m))
        return "a socket";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    return "not a regular file";
}

bool
art_hex_valid(const char *hex)
{
    if (!hex)
        return false;
    for (size_t i = 0; i < ART_HEX_LEN; i++) {
        char c = hex[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return hex[ART_HEX_LEN] == '\0';
}

static bool
art__hex_n(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return s[n] == '\0';
}

static int
art__bad_hex(const char *hex, char *err, size_t errlen)
{
    art__msg(err, errlen, "'%.80s' is not a SHA-256 digest (64 lowercase hex characters)",
             hex ? hex : "(null)");
    return CAIRN_EINVAL;
}

/* Read until n bytes or end of file; returns the count or -1 (errno). */
ssize_t
art__read_full(int fd, unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static void
art__to_hex(const unsigned char *md, char out[ART_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < ART_HEX_LEN / 2; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 0xf];
    }
    out[ART_HEX_LEN] = '\0';
}

int
art__hash_final(EVP_MD_CTX *ctx, char out[ART_HEX_LEN + 1], char *err, size_t errlen)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != ART_HEX_LEN / 2) {
        art__msg(err, errlen, "SHA-256 failed");
        return CAIRN_EIO;
    }
    art__to_hex(md, out);
    return 0;
}

int
art__hash_new(EVP_MD_CTX **out, unsigned char **buf, char *err, size_t errlen)
{
    *buf = malloc(ART_BUF_SIZE);
    *out = EVP_MD_CTX_new();
    if (!*buf || !*out || EVP_DigestInit_ex(*out, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(*out);
        free(*buf);
        *out = NULL;
        *buf = NULL;
        art__msg(err, errlen, "cannot set up SHA-256: out of memory");
        return CAIRN_ENOMEM;
    }
    return 0;
}

/* Hash fd from its current offset to the end. */
int
art__hash_fd(int fd, const char *name, char out[ART_HEX_LEN + 1], int64_t *size, char *err,
             size_t errlen)
{
    EVP_MD_CTX *ctx;
    unsigned char *buf;
    int rc = art__hash_new(&ctx, &buf, err, errlen);
    if (rc)
        return rc;
    int64_t total = 0;
    for (;;) {
        ssize_t n = art__read_full(fd, buf, ART_BUF_SIZE);
        if (n < 0) {
            rc = art__sys(err, errlen, errno, "cannot read", name);
            goto out;
        }
        if (n > 0 && EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
            art__msg(err, errlen, "SHA-256 failed");
            rc = CAIRN_EIO;
            goto out;
        }
        total += n;
        if ((size_t)n < ART_BUF_SIZE)
            break;
    }
    rc = art__hash_final(ctx, out, err, errlen);
    if (rc == 0 && size)
        *size = total;
out:
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

/* After open() of an output failed with e: describe it. */
static int
art__open_failed(int e, int dirfd, const char *name, const char *shown, char *err, size_t errlen)
{
    struct stat st;
    if ((e == ELOOP || e == ENXIO || e == EOPNOTSUPP) &&
        fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode)) {
        art__msg(err, errlen, "%s is %s; only regular files can be stored", shown,
                 art__kind(st.st_mode));
        return CAIRN_EINVAL;
    }
    return art__sys(err, errlen, e, "cannot open", shown);
}

/* fd must be a regular file; else close it and say what it is. */
int
art__check_regular(int fd, const char *shown, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return art__sys(err, errlen, errno, "cannot stat", shown);
    if (!S_ISREG(st.st_mode)) {
        art__msg(err, errlen, "%s is %s; only regular files can be stored", shown,
                 art__kind(st.st_mode));
        return CAIRN_EINVAL;
    }
    return 0;
}

#define ART_OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)

/* fsync a folder so a rename or mkdir in it is durable. Filesystems that
 * cannot (some network ones say EINVAL) are let be. */
static int
art__fsync_dir(const char *dir, char *err, size_t errlen)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return art__sys(err, errlen, errno, "cannot open", dir);
    int rc = 0;
    if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS && errno != ENOTSUP)
        rc = art__sys(err, errlen, errno, "cannot sync", dir);
    close(fd);
    return rc;
}

/* mkdir that accepts an existing folder; *made tells whether it was new. */
static int
art__mkdir(const char *path, bool *made, char *err, size_t errlen)
{
    if (made)
        *made = false;
    if (mkdir(path, 0755) == 0) {
        if (made)
            *made = true;
        return 0;
    }
    int e = errno;
    struct stat st;
    if (e == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    if (e == EEXIST) {
        art__msg(err, errlen, "cannot create folder %s: it exists and is not a folder", path);
        return CAIRN_EIO;
    }
    return art__sys(err, errlen, e, "cannot create folder", path);
}

static int
art__mkdir_p(const char *path, char *err, size_t errlen)
{
    int rc = fs_mkdirs_mode(path, 0755);
    if (rc)
        art__msg(err, errlen, "cannot create folder %s: %s", path,
                 errno == ENOTDIR ? "it exists and is not a folder" : strerror(errno));
    return rc;
}

/* ---- file backend ------------------------------------------------------ */

static char *
art__file_blob(const struct art_store *s, const char *hex)
{
    return xasprintf("%s/%.2s/%s", s->blobs, hex, hex + 2);
}

/* Does the blob exist with size bytes? 1 yes, 0 no (absent, or a damaged
 * one of another size, which the caller then replaces), <0 error. */
static int
art__file_have(const char *blob, int64_t size, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(blob, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return art__sys(err, errlen, errno, "cannot stat", blob);
    }
    if (!S_ISREG(st.st_mode)) {
        art__msg(err, errlen, "blob %s is %s", blob, art__kind(st.st_mode));
        return CAIRN_EIO;
    }
    if ((int64_t)st.st_size != size) {
        LOG(LOG_WARN, "CAIRN-ARTIFACT-DAMAGED",
            "blob %s has %lld bytes, its content has %lld: replacing it", blob,
            (long long)st.st_size, (long long)size);
        return 0;
    }
    /* Refresh its age so art_gc's min_age covers the caller until it has
     * recorded its pointer. Best effort: another user's blob may refuse. */
    (void)utimensat(AT_FDCWD, blob, NULL, AT_SYMLINK_NOFOLLOW);
    return 1;
}

static int
art__file_put(struct art_store *s, int fd, const char *name, char hex_out[ART_HEX_LEN + 1],
              int64_t *size_out, char **uri_out, char *err, size_t errlen)
{
    EVP_MD_CTX *ctx;
    unsigned char *buf;
    int rc = art__hash_new(&ctx, &buf, err, errlen);
    if (rc)
        return rc;
    char hex[ART_HEX_LEN + 1];
    char *tmp = NULL, *blob = NULL, *fan = NULL;
    int tfd = -1, cfd;
    int64_t total = 0, written = 0, queued = 0;
    bool hashed = false, made;
    struct stat st;

    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    ssize_t n = fs_pread_sparse(fd, buf, ART_BUF_SIZE, 0);
    if (n < 0) {
        rc = art__sys(err, errlen, errno, "cannot read", name);
        goto out;
    }
    if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
        goto hash_failed;
    total = n;
    if ((size_t)n < ART_BUF_SIZE) {
        /* The whole file is in memory: if it is stored already, done. */
        if ((rc = art__hash_final(ctx, hex, err, errlen)) != 0)
            goto out;
        hashed = true;
        blob = art__file_blob(s, hex);
        rc = art__file_have(blob, total, err, errlen);
        if (rc != 0)
            goto out; /* 1: dedupe, <0: error */
    }

    tmp = xasprintf("%s/put.XXXXXX", s->tmp);
    tfd = mkostemp(tmp, O_CLOEXEC);
    if (tfd < 0) {
        int e = errno;
        free(tmp);
        tmp = NULL;
        rc = art__sys(err, errlen, e, "cannot create a temporary file in", s->tmp);
        goto out;
    }
    /* (a sparse file is not: it would take its whole length on disk) */
    if (!hashed && fstat(fd, &st) == 0 && st.st_size > n &&
        (int64_t)st.st_blocks * 512 >= (int64_t)st.st_size &&
        fallocate(tfd, FALLOC_FL_KEEP_SIZE, 0, st.st_size) != 0 &&
        (errno == ENOSPC || errno == EDQUOT)) {
        /* Fail early rather than after copying most of it. */
        rc = art__sys(err, errlen, errno, "no space to store", name);
        goto out;
    }
    for (;;) {
        if (fs_pwrite_sparse(tfd, buf, (size_t)n, written) != 0) {
            rc = art__sys(err, errlen, errno, "cannot write", tmp);
            goto out;
        }
        written += n;
        if (written - queued >= ART_WRITEBACK) {
            /* Start writing back while we hash on, so the fsync at the end
             * has less to wait for. A hint: errors show up at fsync. */
            (void)sync_file_range(tfd, queued, written - queued, SYNC_FILE_RANGE_WRITE);
            queued = written;
        }
        if (hashed || (size_t)n < ART_BUF_SIZE)
            break;
        n = fs_pread_sparse(fd, buf, ART_BUF_SIZE, written);
        if (n < 0) {
            rc = art__sys(err, errlen, errno, "cannot read", name);
            goto out;
        }
        if (n > 0 && EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
            goto hash_failed;
        total += n;
        if (n == 0)
            break;
    }
    if (!hashed) {
        if ((rc = art__hash_final(ctx, hex, err, errlen)) != 0)
            goto out;
        blob = art__file_blob(s, hex);
        rc = art__file_have(blob, total, err, errlen);
        if (rc != 0)
            goto out; /* the temporary file is dropped below */
    }

    if (ftruncate(tfd, (off_t)written) != 0) { /* the holes at its end */
        rc = art__sys(err, errlen, errno, "cannot write", tmp);
        goto out;
    }
    if (fchmod(tfd, 0444) != 0) {
        rc = art__sys(err, errlen, errno, "cannot chmod", tmp);
        goto out;
    }
    if (fsync(tfd) != 0) {
        rc = art__sys(err, errlen, errno, "cannot sync", tmp);
        goto out;
    }
    cfd = tfd;
    tfd = -1;
    if (close(cfd) != 0) { /* network filesystems report write errors here */
        rc = art__sys(err, errlen, errno, "cannot write", tmp);
        goto out;
    }
    fan = xasprintf("%s/%.2s", s->blobs, hex);
    if ((rc = art__mkdir(fan, &made, err, errlen)) != 0)
        goto out;
    if (made && (rc = art__fsync_dir(s->blobs, err, errlen)) != 0)
        goto out;
    if (rename(tmp, blob) != 0) {
        rc = art__sys(err, errlen, errno, "cannot rename into", blob);
        goto out;
    }
    free(tmp);
    tmp = NULL;
    if ((rc = art__fsync_dir(fan, err, errlen)) != 0)
        goto out;
    rc = 0;
    goto out;

hash_failed:
    art__msg(err, errlen, "SHA-256 failed");
    rc = CAIRN_EIO;
out:
    if (rc == 1) /* deduplicated */
        rc = 0;
    if (rc == 0) {
        memcpy(hex_out, hex, sizeof(hex));
        if (size_out)
            *size_out = total;
        if (uri_out)
            *uri_out = xasprintf("file://%s", blob);
    }
    if (tfd >= 0)
        close(tfd);
    if (tmp)
        unlink(tmp);
    free(tmp);
    free(blob);
    free(fan);
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

static int
art__file_blob_path(struct art_store *s, const char *hex, char **path_out)
{
    char *blob = art__file_blob(s, hex);
    struct stat st;
    int rc = 0;
    if (lstat(blob, &st) != 0)
        rc = (errno == ENOENT || errno == ENOTDIR) ? CAIRN_ENOENT : CAIRN_EIO;
    else if (!S_ISREG(st.st_mode))
        rc = CAIRN_EIO;
    if (rc) {
        free(blob);
        return rc;
    }
    *path_out = blob;
    return 0;
}

/* Open a blob for reading. */
static int
art__file_open_blob(struct art_store *s, const char *hex, int *fd_out, char **path_out, char *err,
                    size_t errlen)
{
    char *blob = art__file_blob(s, hex);
    int fd = open(blob, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        int rc;
        if (e == ENOENT || e == ENOTDIR) {
            art__msg(err, errlen, "artifact %s is not in the store %s", hex, s->uri);
            rc = CAIRN_ENOENT;
        } else {
            rc = art__sys(err, errlen, e, "cannot open", blob);
        }
        free(blob);
        return rc;
    }
    *fd_out = fd;
    if (path_out)
        *path_out = blob;
    else
        free(blob);
    return 0;
}

int
art__mismatch(const char *hex, const char *got, char *err, size_t errlen)
{
    art__msg(err, errlen, "artifact %s is corrupt: its content hashes to %s", hex, got);
    return CAIRN_EPROTO;
}

static int
art__file_verify(struct art_store *s, const char *hex, char *err, size_t errlen)
{
    int fd = -1;
    char *blob = NULL;
    int rc = art__file_open_blob(s, hex, &fd, &blob, err, errlen);
    if (rc)
        return rc;
    char got[ART_HEX_LEN + 1];
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    rc = art__hash_fd(fd, blob, got, NULL, err, errlen);
    close(fd);
    free(blob);
    if (rc == 0 && strcmp(got, hex) != 0)
        rc = art__mismatch(hex, got, err, errlen);
    return rc;
}

/* Copy the blob to a temporary file next to dest, checking the digest, and
 * rename it over dest. */
static int
art__file_copy(struct art_store *s, const char *hex, const char *dest, char *err, size_t errlen)
{
    int fd = -1;
    int rc = art__file_open_blob(s, hex, &fd, NULL, err, errlen);
    if (rc)
        return rc;
    EVP_MD_CTX *ctx;
    unsigned char *buf;
    if ((rc = art__hash_new(&ctx, &buf, err, errlen)) != 0) {
        close(fd);
        return rc;
    }
    char got[ART_HEX_LEN + 1];
    int cfd;
    int64_t off = 0;
    char *tmp = xasprintf("%s.part.XXXXXX", dest);
    int tfd = mkostemp(tmp, O_CLOEXEC);
    if (tfd < 0) {
        rc = art__sys(err, errlen, errno, "cannot create", tmp);
        free(tmp);
        tmp = NULL;
        goto out;
    }
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    for (;;) {
        ssize_t n = fs_pread_sparse(fd, buf, ART_BUF_SIZE, off);
        if (n < 0) {
            rc = art__sys(err, errlen, errno, "cannot read artifact", hex);
            goto out;
        }
        if (n > 0 && EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
            art__msg(err, errlen, "SHA-256 failed");
            rc = CAIRN_EIO;
            goto out;
        }
        if (fs_pwrite_sparse(tfd, buf, (size_t)n, off) != 0) {
            rc = art__sys(err, errlen, errno, "cannot write", tmp);
            goto out;
        }
        off += n;
        if ((size_t)n < ART_BUF_SIZE)
            break;
    }
    if (ftruncate(tfd, (off_t)off) != 0) {
        rc = art__sys(err, errlen, errno, "cannot write", tmp);
        goto out;
    }
    if ((rc = art__hash_final(ctx, got, err, errlen)) != 0)
        goto out;
    if (strcmp(got, hex) != 0) {
        rc = art__mismatch(hex, got, err, errlen);
        goto out;
    }
    if (fchmod(tfd, 0444) != 0) {
        rc = art__sys(err, errlen, errno, "cannot chmod", tmp);
        goto out;
    }
    cfd = tfd;
    tfd = -1;
    if (close(cfd) != 0) {
        rc = art__sys(err, errlen, errno, "cannot write", tmp);
        goto out;
    }
    if (rename(tmp, dest) != 0) {
        rc = art__sys(err, errlen, errno, "cannot rename into", dest);
        goto out;
    }
    free(tmp);
    tmp = NULL;
    rc = 0;
out:
    if (tfd >= 0)
        close(tfd);
    if (tmp)
        unlink(tmp);
    free(tmp);
    close(fd);
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

static atomic_uint art__seq;

/* Hard-link the blob at dest. 0 done, 1 the filesystem cannot (copy
 * instead), <0 error. */
static int
art__file_link(const char *blob, const char *dest, char *err, size_t errlen)
{
    if (link(blob, dest) == 0)
        return 0;
    int e = errno;
    if (e == EXDEV || e == EPERM || e == EMLINK || e == EOPNOTSUPP || e == ENOSYS)
        return 1;
    if (e != EEXIST)
        return art__sys(err, errlen, e, "cannot link into", dest);

    struct stat a, b;
    if (stat(blob, &a) == 0 && lstat(dest, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
        return 0; /* fetched already */
    /* Replace what is there: link beside it, rename over it. */
    char *tmp = xasprintf("%s.link.%ld.%u", dest, (long)getpid(), atomic_fetch_add(&art__seq, 1));
    int rc = 0;
    if (link(blob, tmp) != 0) {
        e = errno;
        rc = (e == EXDEV || e == EPERM || e == EMLINK)
                 ? 1
                 : art__sys(err, errlen, e, "cannot link", tmp);
    } else if (rename(tmp, dest) != 0) {
        rc = art__sys(err, errlen, errno, "cannot rename into", dest);
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

static int
art__file_fetch(struct art_store *s, const char *hex, const char *dest, unsigned flags, char *err,
                size_t errlen)
{
    int rc;
    if (!(flags & ART_FETCH_COPY)) {
        char *blob = art__file_blob(s, hex);
        struct stat st;
        if (lstat(blob, &st) != 0) {
            int e = errno;
            if (e == ENOENT || e == ENOTDIR) {
                art__msg(err, errlen, "artifact %s is not in the store %s", hex, s->uri);
                rc = CAIRN_ENOENT;
            } else {
                rc = art__sys(err, errlen, e, "cannot stat", blob);
            }
            free(blob);
            return rc;
        }
        if ((flags & ART_FETCH_VERIFY) && (rc = art__file_verify(s, hex, err, errlen)) != 0) {
            free(blob);
            return rc;
        }
        rc = art__file_link(blob, dest, err, errlen);
        free(blob);
        if (rc <= 0)
            return rc;
    }
    return art__file_copy(s, hex, dest, err, errlen);
}

int
art__cmp_keep(const void *key, const void *elem)
{
    return strcmp((const char *)key, *(const char *const *)elem);
}

/* Remove name in dirfd if old enough (dry: only count it); counts into *n
 * and *bytes. */
static int
art__gc_entry(int dfd, const char *dir, const char *name, time_t now, int64_t min_age_s, bool dry,
              size_t *n, int64_t *bytes, size_t *kept, int *first, char *err, size_t errlen)
{
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT && *first == 0)
            *first = art__sys(err, errlen, errno, "cannot stat", name);
        return 0;
    }
    if (S_ISDIR(st.st_mode))
        return 0;
    if ((int64_t)now - (int64_t)st.st_mtime < min_age_s) {
        if (kept)
            (*kept)++;
        return 0;
    }
    if (!dry && unlinkat(dfd, name, 0) != 0) {
        if (errno != ENOENT && *first == 0) {
            art__msg(err, errlen, "cannot remove %s/%s: %s", dir, name, strerror(errno));
            *first = CAIRN_EIO;
        }
        if (kept && errno != ENOENT)
            (*kept)++;
        return 0;
    }
    (*n)++;
    *bytes += (int64_t)st.st_size;
    return 1;
}

static int
art__file_gc(struct art_store *s, const char *const *keep, size_t nkeep, int64_t min_age_s,
             bool dry, struct art_gc_stats *st, char *err, size_t errlen)
{
    time_t now = time(NULL);
    int first = 0;

    DIR *top = opendir(s->blobs);
    if (!top)
        return art__sys(err, errlen, errno, "cannot open", s->blobs);
    struct dirent *d;
    while ((d = readdir(top)) != NULL) {
        if (!art__hex_n(d->d_name, 2))
            continue;
        int sfd = openat(dirfd(top), d->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sfd < 0)
            continue;
        DIR *sub = fdopendir(sfd);
        if (!sub) {
            close(sfd);
            continue;
        }
        char *dir = xasprintf("%s/%s", s->blobs, d->d_name);
        struct dirent *e;
        while ((e = readdir(sub)) != NULL) {
            if (!art__hex_n(e->d_name, ART_HEX_LEN - 2))
                continue;
            char hex[ART_HEX_LEN + 1];
            memcpy(hex, d->d_name, 2);
            memcpy(hex + 2, e->d_name, ART_HEX_LEN - 2 + 1);
            if (nkeep && bsearch(hex, keep, nkeep, sizeof(*keep), art__cmp_keep)) {
                st->blobs_kept++;
                continue;
            }
            art__gc_entry(dirfd(sub), dir, e->d_name, now, min_age_s, dry, &st->blobs_removed,
                          &st->blob_bytes, &st->blobs_kept, &first, err, errlen);
        }
        free(dir);
        closedir(sub);
    }
    closedir(top);

    DIR *tmp = opendir(s->tmp);
    if (!tmp)
        return first ? first : art__sys(err, errlen, errno, "cannot open", s->tmp);
    while ((d = readdir(tmp)) != NULL) {
        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
            continue;
        art__gc_entry(dirfd(tmp), s->tmp, d->d_name, now, min_age_s, dry, &st->tmp_removed,
                      &st->tmp_bytes, NULL, &first, err, errlen);
    }
    closedir(tmp);
    return first;
}

static int
art__file_stat(struct art_store *s, const char *hex, int64_t *size, char *err, size_t errlen)
{
    char *blob = art__file_blob(s, hex);
    struct stat st;
    int rc = 0;
    if (lstat(blob, &st) != 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR) {
            art__msg(err, errlen, "artifact %s is not in the store %s", hex, s->uri);
            rc = CAIRN_ENOENT;
        } else {
            rc = art__sys(err, errlen, e, "cannot stat", blob);
        }
    } else if (!S_ISREG(st.st_mode)) {
        art__msg(err, errlen, "blob %s is %s", blob, art__kind(st.st_mode));
        rc = CAIRN_EIO;
    } else if (size) {
        *size = (int64_t)st.st_size;
    }
    free(blob);
    return rc;
}

static char *
art__file_blob_uri(const struct art_store *s, const char *hex)
{
    return xasprintf("file://%s/%.2s/%s", s->blobs, hex, hex + 2);
}

static const struct art_ops art__file_ops = {
    .put_fd = art__file_put,
    .blob_uri = art__file_blob_uri,
    .stat = art__file_stat,
    .blob_path = art__file_blob_path,
    .verify = art__file_verify,
    .fetch = art__file_fetch,
    .gc = art__file_gc,
};

/* ---- public interface -------------------------------------------------- */

int
art_open(struct art_store **out, const char *uri_or_path, char *err, size_t errlen)
{
    return art_open_with(out, uri_or_path, NULL, err, errlen);
}

int
art_open_with(struct art_store **out, const char *uri_or_path, const struct art_open_opts *o,
              char *err, size_t errlen)
{
    if (!out || !uri_or_path || !*uri_or_path) {
        art__msg(err, errlen, "artifact store: no path given");
        return CAIRN_EINVAL;
    }
    const char *path = uri_or_path;
    if (strncmp(path, "s3://", 5) == 0)
        return art__s3_open(out, uri_or_path, o, err, errlen);
    if (strncmp(path, "file://", 7) == 0) {
        path += 7;
        if (*path != '/') {
            art__msg(err, errlen,
                     "artifact store URI '%s' names a host or a relative path; "
                     "use file:///absolute/path",
                     uri_or_path);
            return CAIRN_EINVAL;
        }
    } else if (strstr(path, "://")) {
        art__msg(err, errlen,
                 "artifact store '%s': unsupported scheme (use file:///absolute/path, "
                 "/absolute/path or s3://bucket/prefix)",
                 uri_or_path);
        return CAIRN_EINVAL;
    } else if (*path != '/') {
        art__msg(err, errlen, "artifact store path '%s' is not absolute", uri_or_path);
        return CAIRN_EINVAL;
    }

    int rc = art__mkdir_p(path, err, errlen);
    if (rc)
        return rc;
    char *root = realpath(path, NULL);
    if (!root)
        return art__sys(err, errlen, errno, "cannot resolve", path);

    struct art_store *s = xcalloc(1, sizeof(*s));
    s->ops = &art__file_ops;
    s->root = root;
    s->uri = xasprintf("file://%s", strcmp(root, "/") == 0 ? "" : root);
    const char *base = strcmp(root, "/") == 0 ? "" : root;
    char *blobs_parent = xasprintf("%s/blobs", base);
    s->blobs = xasprintf("%s/blobs/sha256", base);
    s->tmp = xasprintf("%s/tmp", base);
    rc = art__mkdir(blobs_parent, NULL, err, errlen);
    if (rc == 0)
        rc = art__mkdir(s->blobs, NULL, err, errlen);
    if (rc == 0)
        rc = art__mkdir(s->tmp, NULL, err, errlen);
    free(blobs_parent);
    if (rc) {
        art_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void
art_close(struct art_store *s)
{
    if (!s)
        return;
    if (s->ops->close)
        s->ops->close(s);
    free(s->uri);
    free(s->root);
    free(s->blobs);
    free(s->tmp);
    free(s);
}

const char *
art_uri(const struct art_store *s)
{
    return s->uri;
}

static int
art__put_open_fd(struct art_store *s, int fd, const char *shown, char hex[ART_HEX_LEN + 1],
                 int64_t *size, char **uri_out, char *err, size_t errlen)
{
    int rc = art__check_regular(fd, shown, err, errlen);
    if (rc == 0)
        rc = s->ops->put_fd(s, fd, shown, hex, size, uri_out, err, errlen);
    close(fd);
    return rc;
}

int
art_put_file(struct art_store *s, const char *path, char sha256_hex[ART_HEX_LEN + 1], int64_t *size,
             char **uri_out, char *err, size_t errlen)
{
    if (!s || !path || !*path || !sha256_hex) {
        art__msg(err, errlen, "art_put_file: no file given");
        return CAIRN_EINVAL;
    }
    int fd = open(path, ART_OPEN_FLAGS | O_NOFOLLOW);
    if (fd < 0)
        return art__open_failed(errno, AT_FDCWD, path, path, err, errlen);
    return art__put_open_fd(s, fd, path, sha256_hex, size, uri_out, err, errlen);
}

int
art_put_file_at(struct art_store *s, int dirfd, const char *relpath,
                char sha256_hex[ART_HEX_LEN + 1], int64_t *size, char **uri_out, char *err,
                size_t errlen)
{
    if (!s || !relpath || !*relpath || !sha256_hex) {
        art__msg(err, errlen, "art_put_file_at: no file given");
        return CAIRN_EINVAL;
    }
    if (relpath[0] == '/') {
        art__msg(err, errlen, "output %s: the path must be relative to the outputs folder",
                 relpath);
        return CAIRN_EINVAL;
    }
    /* Split into components, dropping empty ones and ".". */
    char *copy = xstrdup(relpath);
    char **comp = NULL;
    size_t ncomp = 0, cap = 0;
    for (char *p = copy; p;) {
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        if (*p && strcmp(p, ".") != 0) {
            xgrow((void **)&comp, &cap, ncomp + 1, sizeof(*comp));
            comp[ncomp++] = p;
        }
        p = slash ? slash + 1 : NULL;
    }
    int rc = 0;
    int cur = dirfd, fd = -1;
    if (ncomp == 0) {
        art__msg(err, errlen, "output %s names the outputs folder itself, not a file", relpath);
        rc = CAIRN_EINVAL;
        goto out;
    }
    for (size_t i = 0; i < ncomp; i++) {
        if (strcmp(comp[i], "..") == 0) {
            art__msg(err, errlen, "output %s: '..' would leave the outputs folder", relpath);
            rc = CAIRN_EINVAL;
            goto out;
        }
    }
    for (size_t i = 0; i + 1 < ncomp; i++) {
        int next = openat(cur, comp[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0) {
            int e = errno;
            struct stat st;
            if ((e == ELOOP || e == ENOTDIR) &&
                fstatat(cur, comp[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
                art__msg(err, errlen, "output %s: '%s' is %s, not a folder", relpath, comp[i],
                         art__kind(st.st_mode));
                rc = S_ISLNK(st.st_mode) ? CAIRN_EINVAL : CAIRN_ENOENT;
            } else {
                rc = art__sys(err, errlen, e, "cannot open output", relpath);
            }
            goto out;
        }
        if (cur != dirfd)
            close(cur);
        cur = next;
    }
    fd = openat(cur, comp[ncomp - 1], ART_OPEN_FLAGS | O_NOFOLLOW);
    if (fd < 0) {
        rc = art__open_failed(errno, cur, comp[ncomp - 1], relpath, err, errlen);
        goto out;
    }
    rc = art__put_open_fd(s, fd, relpath, sha256_hex, size, uri_out, err, errlen);
out:
    if (cur != dirfd)
        close(cur);
    free(comp);
    free(copy);
    return rc;
}

int
art_blob_uri(struct art_store *s, const char *sha256_hex, char **uri_out)
{
    if (!s || !uri_out || !art_hex_valid(sha256_hex))
        return CAIRN_EINVAL;
    *uri_out = s->ops->blob_uri(s, sha256_hex);
    return 0;
}

int
art_blob_path(struct art_store *s, const char *sha256_hex, char **path_out)
{
    if (!s || !path_out || !art_hex_valid(sha256_hex))
        return CAIRN_EINVAL;
    return s->ops->blob_path(s, sha256_hex, path_out);
}

int
art_stat(struct art_store *s, const char *sha256_hex, int64_t *size, char *err, size_t errlen)
{
    if (!s || !art_hex_valid(sha256_hex))
        return art__bad_hex(sha256_hex, err, errlen);
    return s->ops->stat(s, sha256_hex, size, err, errlen);
}

int
art_verify(struct art_store *s, const char *sha256_hex, char *err, size_t errlen)
{
    if (!s || !art_hex_valid(sha256_hex))
        return art__bad_hex(sha256_hex, err, errlen);
    return s->ops->verify(s, sha256_hex, err, errlen);
}

int
art_fetch(struct art_store *s, const char *sha256_hex, const char *dest_path, unsigned flags,
          char *err, size_t errlen)
{
    if (!s || !art_hex_valid(sha256_hex))
        return art__bad_hex(sha256_hex, err, errlen);
    if (!dest_path || !*dest_path || (flags & ~(ART_FETCH_VERIFY | ART_FETCH_COPY))) {
        art__msg(err, errlen, "art_fetch: no destination or unknown flags");
        return CAIRN_EINVAL;
    }
    return s->ops->fetch(s, sha256_hex, dest_path, flags, err, errlen);
}

static int
art__gc(struct art_store *s, const char *const *keep, size_t nkeep, int64_t min_age_s, bool dry,
        struct art_gc_stats *stats, char *err, size_t errlen)
{
    struct art_gc_stats local;
    struct art_gc_stats *st = stats ? stats : &local;
    memset(st, 0, sizeof(*st));
    if (!s || (nkeep && !keep) || min_age_s < 0) {
        art__msg(err, errlen, "art_gc: invalid arguments");
        return CAIRN_EINVAL;
    }
    for (size_t i = 0; i < nkeep; i++) {
        if (!keep[i] || (i > 0 && strcmp(keep[i - 1], keep[i]) > 0)) {
            art__msg(err, errlen,
                     "art_gc: the keep list is not sorted (entry %zu); nothing removed", i);
            return CAIRN_EINVAL;
        }
    }
    return s->ops->gc(s, keep, nkeep, min_age_s, dry, st, err, errlen);
}

int
art_gc(struct art_store *s, const char *const *keep, size_t nkeep, int64_t min_age_s,
       struct art_gc_stats *stats, char *err, size_t errlen)
{
    return art__gc(s, keep, nkeep, min_age_s, false, stats, err, errlen);
}

int
art_gc_plan(struct art_store *s, const char *const *keep, size_t nkeep, int64_t min_age_s,
            struct art_gc_stats *stats, char *err, size_t errlen)
{
    return art__gc(s, keep, nkeep, min_age_s, true, stats, err, errlen);
}

/* ---- incremental hashing ----------------------------------------------- */

struct art_hasher {
    EVP_MD_CTX *ctx;
    int64_t bytes;
};

int
art_hasher_new(struct art_hasher **out)
{
    struct art_hasher *h = calloc(1, sizeof(*h));
    if (!h)
        return CAIRN_ENOMEM;
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(h->ctx);
        free(h);
        return CAIRN_ENOMEM;
    }
    *out = h;
    return 0;
}

int
art_hasher_update(struct art_hasher *h, const void *data, size_t n)
{
    if (n && EVP_DigestUpdate(h->ctx, data, n) != 1)
        return CAIRN_EIO;
    h->bytes += (int64_t)n;
    return 0;
}

int
art_hasher_final(struct art_hasher *h, char sha256_hex[ART_HEX_LEN + 1], int64_t *size)
{
    int rc = art__hash_final(h->ctx, sha256_hex, NULL, 0);
    if (rc == 0 && size)
        *size = h->bytes;
    return rc;
}

void
art_hasher_free(struct art_hasher *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

int
art_hash_file(const char *path, char sha256_hex[ART_HEX_LEN + 1], int64_t *size, char *err,
              size_t errlen)
{
    if (!path || !*path || !sha256_hex) {
        art__msg(err, errlen, "art_hash_file: no file given");
        return CAIRN_EINVAL;
    }
    int fd = open(path, ART_OPEN_FLAGS);
    if (fd < 0)
        return art__open_failed(errno, AT_FDCWD, path, path, err, errlen);
    int rc = art__check_regular(fd, path, err, errlen);
    if (rc == 0) {
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        rc = art__hash_fd(fd, path, sha256_hex, size, err, errlen);
    }
    close(fd);
    return rc;
}
