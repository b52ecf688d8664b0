/* image_gc.c - least recently used eviction of images and blobs (see image_gc.h). */
#include "image_gc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "fs.h"
#include "hmap.h"
#include "log.h"
#include "util.h"

static _Thread_local int64_t du_sum;

static int
du_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)p;
    (void)flag;
    (void)f;
    du_sum += (int64_t)st->st_blocks * 512;
    return 0;
}

int64_t
imggc_du(const char *path)
{
    du_sum = 0;
    nftw(path, du_cb, 32, FTW_PHYS | FTW_MOUNT);
    return du_sum;
}

struct img {
    char hex[65];
    int64_t size;
    int64_t used; /* mtime, ns */
    json_t *digests; /* the blob hexes it names */
    int gone;
};

static int
is_hex64(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return 0;
    return n == 64;
}

static void
add_digest(json_t *set, const char *d)
{
    if (d && !strncmp(d, "sha256:", 7))
        json_object_set_new(set, d + 7, json_true());
}

static json_t *
image_digests(const char *dir, const char *hex)
{
    json_t *set = json_object();
    json_object_set_new(set, hex, json_true());
    char *p = xasprintf("%s/%s/manifest.json", dir, hex);
    json_t *m = json_load_file(p, 0, NULL);
    free(p);
    add_digest(set, json_string_value(json_object_get(json_object_get(m, "config"), "digest")));
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(m, "layers"), i, l)
        add_digest(set, json_string_value(json_object_get(l, "digest")));
    char *tp = xasprintf("%s/%s/top", dir, hex);
    char *top = NULL;
    size_t tl = 0;
    if (fs_read_all(tp, 128, &top, &tl) == 0) {
        top[strcspn(top, "\n")] = '\0';
        add_digest(set, top);
    }
    free(top);
    free(tp);
    json_decref(m);
    return set;
}

static int
cmp_used(const void *a, const void *b)
{
    const struct img *x = a, *y = b;
    return x->used < y->used ? -1 : x->used > y->used;
}

/* Remove the blobs no remaining image names; returns the bytes freed and
 * lowers *total. */
static int64_t
drop_unreferenced(const char *dir, struct img *imgs, size_t n, int64_t *blobs_total)
{
    char *bd = xasprintf("%s/blobs/sha256", dir);
    DIR *d = opendir(bd);
    int64_t freed = 0;
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (!is_hex64(de->d_name))
                continue;
            int ref = 0;
            for (size_t i = 0; i < n && !ref; i++)
                ref = !imgs[i].gone && json_object_get(imgs[i].digests, de->d_name);
            if (ref)
                continue;
            char *p = xasprintf("%s/%s", bd, de->d_name);
            struct stat st;
            if (stat(p, &st) == 0 && unlink(p) == 0) {
                freed += (int64_t)st.st_blocks * 512;
                *blobs_total -= (int64_t)st.st_blocks * 512;
            }
            free(p);
        }
        closedir(d);
    }
    free(bd);
    return freed;
}

int64_t
imggc_collect(const char *dir, int64_t limit)
{
    char *gl = xasprintf("%s/gc.lock", dir);
    int gfd = open(gl, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    free(gl);
    if (gfd < 0)
        return 0;
    if (flock(gfd, LOCK_EX | LOCK_NB) != 0) {
        close(gfd);
        return 0;
    }
    struct img *imgs = NULL;
    size_t n = 0, cap = 0;
    int64_t total = 0, blobs = 0, freed = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (!is_hex64(de->d_name))
            continue;
        char *p = xasprintf("%s/%s", dir, de->d_name);
        char *sp = xasprintf("%s/size", p);
        struct stat st;
        char *sz = NULL;
        size_t sl = 0;
        if (stat(p, &st) == 0) {
            xgrow((void **)&imgs, &cap, n + 1, sizeof(*imgs));
            struct img *im = &imgs[n++];
            memset(im, 0, sizeof(*im));
            memcpy(im->hex, de->d_name, 64);
            im->hex[64] = '\0';
            im->used = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
            im->size = fs_read_all(sp, 64, &sz, &sl) == 0 ? strtoll(sz, NULL, 10) : imggc_du(p);
            im->digests = image_digests(dir, de->d_name);
            total += im->size;
        }
        free(sz);
        free(sp);
        free(p);
    }
    if (d)
        closedir(d);
    char *bd = xasprintf("%s/blobs/sha256", dir);
    blobs = imggc_du(bd);
    free(bd);
    if (total + blobs > limit) {
        freed += drop_unreferenced(dir, imgs, n, &blobs);
        qsort(imgs, n, sizeof(*imgs), cmp_used);
        for (size_t i = 0; i < n && total + blobs > limit; i++) {
            char *lp = xasprintf("%s/locks/%s.lock", dir, imgs[i].hex);
            int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
            free(lp);
            if (fd < 0)
                continue;
            if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
                /* out of sight first (a rename), then removed */
                char *p = xasprintf("%s/%s", dir, imgs[i].hex);
                char *tmpd = xasprintf("%s/tmp", dir);
                char *gone = xasprintf("%s/tmp/gc.%s", dir, imgs[i].hex);
                fs_mkdirs(tmpd);
                if (rename(p, gone) == 0) {
                    fs_rmtree(gone);
                    imgs[i].gone = 1;
                    total -= imgs[i].size;
                    freed += imgs[i].size;
                    LOG(LOG_INFO, "CAIRN-IMAGE-GC", "removed image sha256:%s (%lld bytes, "
                        "least recently used)", imgs[i].hex, (long long)imgs[i].size);
                    freed += drop_unreferenced(dir, imgs, n, &blobs);
                }
                free(p);
                free(tmpd);
                free(gone);
            }
            close(fd);
        }
    }
    for (size_t i = 0; i < n; i++)
        json_decref(imgs[i].digests);
    free(imgs);
    close(gfd);
    return freed;
}
