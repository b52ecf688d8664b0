#include "cache.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifact.h"
#include "err.h"
#include "hmap.h"
#include "util.h"

#define CACHE_KEY_VERSION "cairn-cache-1"
#define CACHE_CODE_MAX_DEPTH 64

/* A file's digest with the stat identity it was computed for. */
struct cache_file {
    char *path; /* the hmap's key */
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns, ctime_ns;
    char hex[ART_HEX_LEN + 1];
};

struct cache_index {
    struct hmap files; /* absolute path -> struct cache_file* */
};

struct cache_index *
cache_index_new(void)
{
    struct cache_index *ix = xcalloc(1, sizeof(*ix));
    hmap_init(&ix->files);
    return ix;
}

void
cache_index_free(struct cache_index *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; i < ix->files.cap; i++) {
        if (!ix->files.slots[i].key)
            continue;
        struct cache_file *f = (struct cache_file *)(uintptr_t)ix->files.slots[i].val;
        free(f->path);
        free(f);
    }
    hmap_free(&ix->files);
    free(ix);
}

/* One field: a tag, the length, the bytes. Tags differ between fields, so
 * the stream parses back in one way only. */
static void
feed(EVP_MD_CTX *c, char tag, const void *data, size_t len)
{
    char hdr[32];
    int n = snprintf(hdr, sizeof(hdr), "%c%zu:", tag, len);
    EVP_DigestUpdate(c, hdr, (size_t)n);
    if (len)
        EVP_DigestUpdate(c, data, len);
}

static void
feeds(EVP_MD_CTX *c, char tag, const char *s)
{
    feed(c, tag, s, strlen(s));
}

static void
to_hex(EVP_MD_CTX *c, char hex[CACHE_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(c, md, &len);
    for (unsigned int i = 0; i < len && i < CACHE_HEX_LEN / 2; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    hex[CACHE_HEX_LEN] = '\0';
}

static int64_t
ts_ns(struct timespec t)
{
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* The content digest of a regular file, from the index while its stat
 * identity is unchanged. */
static int
file_digest(struct cache_index *ix, const char *path, const struct stat *st, char *hex,
            char *err, size_t errlen)
{
    size_t v;
    struct cache_file *f = NULL;
    if (hmap_get(&ix->files, path, &v)) {
        f = (struct cache_file *)(uintptr_t)v;
        if (f->dev == st->st_dev && f->ino == st->st_ino && f->size == st->st_size &&
            f->mtime_ns == ts_ns(st->st_mtim) && f->ctime_ns == ts_ns(st->st_ctim)) {
            memcpy(hex, f->hex, ART_HEX_LEN + 1);
            return 0;
        }
    }
    char aerr[256];
    int64_t size = 0;
    int rc = art_hash_file(path, hex, &size, aerr, sizeof(aerr));
    if (rc) {
        snprintf(err, errlen, "cannot hash %s: %s", path, aerr);
        return rc == CAIRN_ENOENT ? CAIRN_EIO : rc;
    }
    if (!f) {
        f = xcalloc(1, sizeof(*f));
        f->path = xstrdup(path);
        hmap_put(&ix->files, f->path, (size_t)(uintptr_t)f);
    }
    f->dev = st->st_dev;
    f->ino = st->st_ino;
    f->size = st->st_size;
    f->mtime_ns = ts_ns(st->st_mtim);
    f->ctime_ns = ts_ns(st->st_ctim);
    memcpy(f->hex, hex, ART_HEX_LEN + 1);
    return 0;
}

static bool
skipped_name(const char *name)
{
    size_t n = strlen(name);
    return !strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, ".git") ||
           !strcmp(name, ".hg") || !strcmp(name, ".svn") || !strcmp(name, "__pycache__") ||
           (n > 4 && !strcmp(name + n - 4, ".pyc"));
}

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct walk {
    struct cache_index *ix;
    EVP_MD_CTX *ctx;
    size_t entries;
    char *err;
    size_t errlen;
};

/* Feed the folder root/rel (rel "" for the root) in name order. */
static int
walk_dir(struct walk *w, const char *root, const char *rel, int depth)
{
    if (depth > CACHE_CODE_MAX_DEPTH) {
        snprintf(w->err, w->errlen, "code folder %s is nested deeper than %d folders", root,
                 CACHE_CODE_MAX_DEPTH);
        return CAIRN_ERANGE;
    }
    char *dir = *rel ? xasprintf("%s/%s", root, rel) : xstrdup(root);
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(w->err, w->errlen, "cannot read %s: %s", dir, strerror(errno));
        free(dir);
        return CAIRN_EIO;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        if (skipped_name(de->d_name))
            continue;
        if (++w->entries > CACHE_CODE_MAX_ENTRIES) {
            snprintf(w->err, w->errlen, "code folder %s has more than %d entries", root,
                     CACHE_CODE_MAX_ENTRIES);
            rc = CAIRN_ERANGE;
            break;
        }
        xgrow((void **)&names, &cap, n + 1, sizeof(*names));
        names[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (!rc && n)
        qsort(names, n, sizeof(*names), name_cmp);
    for (size_t i = 0; i < n && !rc; i++) {
        char *crel = *rel ? xasprintf("%s/%s", rel, names[i]) : xstrdup(names[i]);
        char *path = xasprintf("%s/%s", dir, names[i]);
        struct stat st;
        if (lstat(path, &st) != 0) {
            snprintf(w->err, w->errlen, "cannot stat %s: %s", path, strerror(errno));
            rc = CAIRN_EIO;
        } else if (S_ISDIR(st.st_mode)) {
            feeds(w->ctx, 'd', crel);
            rc = walk_dir(w, root, crel, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            char hex[ART_HEX_LEN + 1], meta[64];
            rc = file_digest(w->ix, path, &st, hex, w->err, w->errlen);
            if (!rc) {
                snprintf(meta, sizeof(meta), "%c %jd", (st.st_mode & 0111) ? 'x' : '-',
                         (intmax_t)st.st_size);
                feeds(w->ctx, 'f', crel);
                feeds(w->ctx, 'm', meta);
                feeds(w->ctx, 'h', hex);
            }
        } else if (S_ISLNK(st.st_mode)) {
            char target[4096];
            ssize_t tl = readlink(path, target, sizeof(target));
            if (tl < 0) {
                snprintf(w->err, w->errlen, "cannot read link %s: %s", path, strerror(errno));
                rc = CAIRN_EIO;
            } else {
                feeds(w->ctx, 'l', crel);
                feed(w->ctx, 't', target, (size_t)tl);
            }
        } else {
            feeds(w->ctx, 'o', crel); /* a socket or fifo: its name only */
        }
        free(crel);
        free(path);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(dir);
    return rc;
}

int
cache_code_digest(struct cache_index *ix, const char *dir, char hex[CACHE_HEX_LEN + 1], char *err,
                  size_t errlen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        snprintf(err, errlen, "SHA-256 is not available");
        return CAIRN_ENOMEM;
    }
    struct walk w = {ix, ctx, 0, err, errlen};
    feeds(ctx, 'V', CACHE_KEY_VERSION "-code");
    int rc = walk_dir(&w, dir, "", 0);
    if (!rc)
        to_hex(ctx, hex);
    EVP_MD_CTX_free(ctx);
    return rc;
}

int
cache_key(struct cache_index *ix, const struct cache_spec *sp, char hex[CACHE_HEX_LEN + 1],
          char *err, size_t errlen)
{
    char code[CACHE_HEX_LEN + 1];
    if (sp->code_dir && sp->code_digest) {
        snprintf(code, sizeof(code), "%s", sp->code_digest); /* the snapshot the task sees */
    } else if (sp->code_dir) {
        int rc = cache_code_digest(ix, sp->code_dir, code, err, errlen);
        if (rc)
            return rc;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        snprintf(err, errlen, "SHA-256 is not available");
        return CAIRN_ENOMEM;
    }
    feeds(ctx, 'V', CACHE_KEY_VERSION);
    feeds(ctx, 'D', sp->dag);
    feeds(ctx, 'T', sp->task);
    if (!strcmp(sp->image, "host")) {
        feeds(ctx, 'I', "host");
        if (sp->host_fingerprint)
            feeds(ctx, 'h', sp->host_fingerprint);
    } else if (sp->image[0] != '/') {
        /* a pulled image is its digest, whatever tag named it */
        if (!sp->image_digest) {
            EVP_MD_CTX_free(ctx);
            snprintf(err, errlen, "image %s is not pinned to a digest in this run", sp->image);
            return CAIRN_ENOENT;
        }
        feeds(ctx, 'I', "digest");
        feeds(ctx, 'i', sp->image_digest);
    } else {
        struct stat st;
        char id[128];
        feeds(ctx, 'I', sp->image);
        if (stat(sp->image, &st) == 0)
            snprintf(id, sizeof(id), "%ju %ju %" PRId64, (uintmax_t)st.st_dev,
                     (uintmax_t)st.st_ino, ts_ns(st.st_mtim));
        else
            snprintf(id, sizeof(id), "not visible to the scheduler");
        feeds(ctx, 'i', id);
    }
    if (sp->has_entrypoint) {
        feeds(ctx, 'P', "entrypoint");
        for (char *const *p = sp->entrypoint; p && *p; p++)
            feeds(ctx, 'p', *p);
    }
    for (char *const *p = sp->argv; p && *p; p++)
        feeds(ctx, 'A', *p);
    for (char *const *p = sp->envp; p && *p; p++)
        feeds(ctx, 'E', *p);
    for (size_t i = 0; i < sp->noutputs; i++)
        feeds(ctx, 'O', sp->outputs[i]);
    if (sp->metrics)
        feeds(ctx, 'M', sp->metrics);
    if (sp->code_dir)
        feeds(ctx, 'C', code);
    for (size_t i = 0; i < sp->ninputs; i++) {
        feeds(ctx, 'N', sp->inputs[i].name);
        feeds(ctx, 'H', sp->inputs[i].sha256);
    }
    to_hex(ctx, hex);
    EVP_MD_CTX_free(ctx);
    return 0;
}
