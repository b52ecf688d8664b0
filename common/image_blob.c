/* image_blob.c - content-addressed image blobs, verified on write (see image_blob.h). */
#include "image_blob.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "err.h"
#include "fs.h"
#include "imgref.h"
#include "util.h"

struct imgblob_writer {
    EVP_MD_CTX *md;
    int fd;
    char *tmp;
    char *dest;
    char *digest;
    int64_t want;
    int64_t got;
};

char *
imgblob_path(const char *images_dir, const char *digest)
{
    return xasprintf("%s/blobs/sha256/%s", images_dir, digest + 7);
}

int
imgblob_has(const char *images_dir, const char *digest)
{
    if (!imgref_digest_ok(digest))
        return 0;
    char *p = imgblob_path(images_dir, digest);
    int ok = access(p, F_OK) == 0;
    free(p);
    return ok;
}

int
imgblob_writer_open(struct imgblob_writer **out, const char *images_dir, const char *digest,
                    int64_t size, char *err, size_t errlen)
{
    if (!imgref_digest_ok(digest))
        return errf(CAIRN_EPROTO, err, errlen, "digest '%s' is not sha256:<64 hex>", digest);
    char *dir = xasprintf("%s/blobs/sha256", images_dir);
    if (fs_mkdirs(dir) != 0) {
        int rc = errf(cairn_from_errno(errno), err, errlen, "cannot make %s: %s", dir,
                      strerror(errno));
        free(dir);
        return rc;
    }
    struct imgblob_writer *w = xcalloc(1, sizeof(*w));
    w->tmp = xasprintf("%s/.%s.XXXXXX", dir, digest + 7);
    free(dir);
    w->fd = mkostemp(w->tmp, O_CLOEXEC);
    if (w->fd < 0) {
        int rc = errf(cairn_from_errno(errno), err, errlen, "cannot create %s: %s", w->tmp,
                      strerror(errno));
        free(w->tmp);
        free(w);
        return rc;
    }
    w->dest = imgblob_path(images_dir, digest);
    w->digest = xstrdup(digest);
    w->want = size;
    w->md = EVP_MD_CTX_new();
    if (!w->md || EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1)
        abort();
    *out = w;
    return 0;
}

int
imgblob_writer_write(struct imgblob_writer *w, const void *buf, size_t n, char *err, size_t errlen)
{
    const char *p = buf;
    if (w->want >= 0 && w->got + (int64_t)n > w->want)
        return errf(CAIRN_EPROTO, err, errlen, "blob %s is larger than its %lld bytes", w->digest,
                    (long long)w->want);
    EVP_DigestUpdate(w->md, buf, n);
    w->got += (int64_t)n;
    while (n > 0) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return errf(cairn_from_errno(errno), err, errlen, "cannot write %s: %s", w->tmp,
                        strerror(errno));
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int64_t
imgblob_writer_bytes(const struct imgblob_writer *w)
{
    return w->got;
}

static void
writer_free(struct imgblob_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    EVP_MD_CTX_free(w->md);
    free(w->tmp);
    free(w->dest);
    free(w->digest);
    free(w);
}

int
imgblob_writer_commit(struct imgblob_writer *w, char *err, size_t errlen)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char hex[65];
    int rc = 0;
    EVP_DigestFinal_ex(w->md, md, &mdlen);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    if (w->want >= 0 && w->got != w->want)
        rc = errf(CAIRN_EPROTO, err, errlen, "blob %s has %lld bytes, its manifest says %lld",
                  w->digest, (long long)w->got, (long long)w->want);
    else if (strcmp(hex, w->digest + 7) != 0)
        rc = errf(CAIRN_EPROTO, err, errlen,
                  "blob %s has digest sha256:%s: refused (corrupted or tampered with)", w->digest,
                  hex);
    else if (fsync(w->fd) != 0 || close(w->fd) != 0)
        rc = errf(CAIRN_EIO, err, errlen, "cannot write %s: %s", w->tmp, strerror(errno));
    else {
        w->fd = -1;
        if (chmod(w->tmp, 0444) != 0 || rename(w->tmp, w->dest) != 0)
            rc = errf(cairn_from_errno(errno), err, errlen, "cannot store %s: %s", w->dest,
                      strerror(errno));
    }
    if (rc != 0)
        unlink(w->tmp);
    writer_free(w);
    return rc;
}

void
imgblob_writer_abort(struct imgblob_writer *w)
{
    if (!w)
        return;
    unlink(w->tmp);
    writer_free(w);
}

int
imgblob_import_file(const char *images_dir, const char *path, const char *digest, char *err,
                    size_t errlen)
{
    if (imgblob_has(images_dir, digest))
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errf(cairn_from_errno(errno), err, errlen, "cannot open %s: %s", path,
                    strerror(errno));
    struct imgblob_writer *w;
    int rc = imgblob_writer_open(&w, images_dir, digest, -1, err, errlen);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    char buf[65536];
    for (;;) {
        ssize_t k = read(fd, buf, sizeof(buf));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = errf(CAIRN_EIO, err, errlen, "cannot read %s: %s", path, strerror(errno));
            break;
        }
        if (k == 0)
            break;
        if ((rc = imgblob_writer_write(w, buf, (size_t)k, err, errlen)) != 0)
            break;
    }
    close(fd);
    if (rc != 0) {
        imgblob_writer_abort(w);
        return rc;
    }
    return imgblob_writer_commit(w, err, errlen);
}
