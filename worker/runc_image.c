/* runc_image.c - images as containers see them (prefix: runc__).
 *
 * Owns what an image is to the container module: "host" (the host's
 * /bin, /etc, /lib*, /opt, /sbin and /usr, read-only; nothing else of the
 * host) or a rootfs folder (its top level, minus the folders every
 * container gets fresh), and the rootfs skeletons under the bundles' cache:
 * one folder of empty mount points and copied symlinks per image, shared
 * by every attempt with that image and built once. No state but the
 * skeletons on disk; concurrent builders are safe (rename into place).
 */
#include "runc_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "util.h"

/* Top-level entries of the host's root a "host" image shows; the rest of the
 * host (/home, /root, /var, /srv, the worker's data) stays invisible. */
static const char *const host_entries[] = {"bin",    "etc", "lib",  "lib32", "lib64",
                                           "libx32", "opt", "sbin", "usr",   NULL};

/* Top-level entries of a rootfs image that the container gets fresh. */
static const char *const skip_entries[] = {"dev", "inputs", "outputs",   "pipeline", "proc",
                                           "sys", "tmp",    "workspace", NULL};

static bool
in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

static int
image_visit(const char *root, const char *name, runc__image_visit_cb *fn, void *arg, char *errbuf,
            size_t errlen)
{
    char *src = runc__path_join(root, name);
    struct stat st;
    int rc = 0;
    if (lstat(src, &st) == 0) {
        rc = fn(arg, src, name, &st, errbuf, errlen);
    } else if (errno != ENOENT) {
        rc = errf(cairn_from_errno(errno), errbuf, errlen, "image entry %s: %s", src,
                  strerror(errno));
    }
    free(src);
    return rc;
}

int
runc__image_walk(const struct runc_spec *s, runc__image_visit_cb *fn, void *arg, char *errbuf,
                 size_t errlen)
{
    int rc = 0;
    if (runc__is_image_host(s->image)) {
        for (size_t i = 0; host_entries[i] && rc == 0; i++)
            rc = image_visit("/", host_entries[i], fn, arg, errbuf, errlen);
        return rc;
    }
    DIR *d = opendir(s->image);
    if (!d)
        return errf(cairn_from_errno(errno), errbuf, errlen, "image %s: %s", s->image,
                    strerror(errno));
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            in_list(skip_entries, de->d_name))
            continue;
        rc = image_visit(s->image, de->d_name, fn, arg, errbuf, errlen);
    }
    closedir(d);
    return rc;
}

int
runc__image_dest_check(const struct runc_spec *s, const char *dest, char *errbuf, size_t errlen)
{
    const char *root = runc__is_image_host(s->image) ? "/" : s->image;
    while (*dest == '/')
        dest++;
    size_t n = strcspn(dest, "/");
    char *top = xstrndup(dest, n);
    bool shown =
        runc__is_image_host(s->image) ? in_list(host_entries, top) : !in_list(skip_entries, top);
    char *src = runc__path_join(root, top);
    struct stat st;
    int rc = 0;
    /* Only a destination below a top-level entry the image shows lies in
     * a read-only mount; one of the image's symbolic links leads there too. */
    if (shown && dest[n] && lstat(src, &st) == 0 && (S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode))) {
        char *full = runc__path_join(root, dest);
        if (stat(full, &st) != 0)
            rc = errf(CAIRN_ENOENT, errbuf, errlen,
                      "mount point /%s is inside the image's /%s, which is read-only, and does "
                      "not exist there",
                      dest, top);
        free(full);
    }
    free(src);
    free(top);
    return rc;
}

/* The skeleton mirrors the entry: symlinks are copied, directories and files
 * become empty mount points. */
static int
skel_entry_cb(void *arg, const char *src, const char *name, const struct stat *st, char *errbuf,
              size_t errlen)
{
    char *dst = runc__path_join(arg, name);
    int rc = 0;
    if (S_ISLNK(st->st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlink(src, target, sizeof(target) - 1);
        if (n >= 0)
            target[n] = '\0';
        if (n < 0 || symlink(target, dst) != 0) {
            rc = errf(cairn_from_errno(errno), errbuf, errlen, "image symlink %s: %s", src,
                      strerror(errno));
        }
    } else if (S_ISDIR(st->st_mode) || S_ISREG(st->st_mode)) {
        int r = S_ISDIR(st->st_mode) ? mkdir(dst, 0755)
                                     : open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (r < 0) {
            rc = errf(cairn_from_errno(errno), errbuf, errlen, "rootfs %s: %s", dst,
                      strerror(errno));
        } else if (!S_ISDIR(st->st_mode)) {
            close(r);
        }
    }
    free(dst);
    return rc;
}

/* The rootfs skeleton is shared by every attempt with the same image: a
 * directory of empty mount points and copied top-level symlinks, named after
 * the image path and its root's inode and mtime (so a changed top level gets
 * a new skeleton). Built under a temporary name and renamed into place, so
 * concurrent builders are safe. Returns the skeleton path or NULL. */
char *
runc__skeleton_get(const struct runc_spec *s, char *errbuf, size_t errlen, int *rcp)
{
    const char *image = runc__is_image_host(s->image) ? "/" : s->image;
    struct stat st;
    if (stat(image, &st) != 0) {
        *rcp =
            errf(cairn_from_errno(errno), errbuf, errlen, "image %s: %s", image, strerror(errno));
        return NULL;
    }
    uint64_t h = UINT64_C(14695981039346656037); /* FNV-1a */
    for (const char *c = image; *c; c++)
        h = (h ^ (unsigned char)*c) * UINT64_C(1099511628211);
    char *cache = s->rootfs_cache ? xstrdup(s->rootfs_cache)
                                  : xasprintf("%.*s/.rootfs",
                                              (int)(strrchr(s->bundle_dir, '/') - s->bundle_dir),
                                              s->bundle_dir);
    char *skel =
        xasprintf("%s/%s-%016llx-%llx-%lld.%09ld", cache,
                  runc__is_image_host(s->image) ? "host" : "image", (unsigned long long)h,
                  (unsigned long long)st.st_ino, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    struct stat sk;
    if (lstat(skel, &sk) == 0) {
        free(cache);
        return skel;
    }

    static unsigned counter;
    char *tmp = xasprintf("%s/.tmp-%d-%u", cache, (int)getpid(), counter++);
    int rc = fs_mkdirs_mode(cache, 0755);
    if (rc) {
        errf(rc, errbuf, errlen, "create %s: %s", cache, strerror(errno));
    } else if (mkdir(tmp, 0755) != 0) {
        rc = errf(cairn_from_errno(errno), errbuf, errlen, "create %s: %s", tmp, strerror(errno));
    } else {
        rc = runc__image_walk(s, skel_entry_cb, tmp, errbuf, errlen);
        for (size_t i = 0; skip_entries[i] && rc == 0; i++) {
            char *mp = runc__path_join(tmp, skip_entries[i]);
            if (mkdir(mp, 0755) != 0) {
                rc = errf(cairn_from_errno(errno), errbuf, errlen, "create %s: %s", mp,
                          strerror(errno));
            }
            free(mp);
        }
        /* Someone else may have won the race: then theirs is used. */
        if (rc == 0 && rename(tmp, skel) != 0 && errno != EEXIST && errno != ENOTEMPTY) {
            rc = errf(cairn_from_errno(errno), errbuf, errlen, "rename %s: %s", tmp,
                      strerror(errno));
        }
        runc__rmtree(tmp);
    }
    free(tmp);
    free(cache);
    if (rc) {
        free(skel);
        *rcp = rc;
        return NULL;
    }
    return skel;
}
