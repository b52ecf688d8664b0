/* image_unpack.c - OCI layers onto a rootfs with libarchive (see image_unpack.h). */
#include "image_unpack.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "err.h"
#include "fs.h"
#include "util.h"

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"

/* The entry's path without "./" and leading or trailing '/'; NULL for the
 * root itself. Any ".." component makes it refused (returns "" ). */
static char *
clean_path(const char *p)
{
    while (p[0] == '.' && p[1] == '/')
        p += 2;
    while (*p == '/')
        p++;
    if (!*p || !strcmp(p, "."))
        return NULL;
    char *c = xstrdup(p);
    size_t n = strlen(c);
    while (n > 0 && c[n - 1] == '/')
        c[--n] = '\0';
    for (char *s = c; s;) {
        char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 2 && s[0] == '.' && s[1] == '.') {
            c[0] = '\0';
            return c;
        }
        s = e ? e + 1 : NULL;
    }
    return c;
}

static struct archive *
open_layer(const char *path, char *err, size_t errlen, int *rc)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
        *rc = errf(CAIRN_EIO, err, errlen, "cannot read layer %s: %s", path,
                   archive_error_string(a));
        archive_read_free(a);
        return NULL;
    }
    *rc = 0;
    return a;
}

/* Pass 1: remove what this layer's whiteouts hide below it. */
static int
apply_whiteouts(const char *rootfs, const char *layer_path, char *err, size_t errlen)
{
    int rc;
    struct archive *a = open_layer(layer_path, err, errlen, &rc);
    if (!a)
        return rc;
    struct archive_entry *e;
    int r;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        char *p = clean_path(archive_entry_pathname(e));
        if (!p)
            continue;
        if (!p[0]) {
            rc = errf(CAIRN_EPARSE, err, errlen, "layer entry '%s' has '..' in its path: refused",
                      archive_entry_pathname(e));
            free(p);
            break;
        }
        char *slash = strrchr(p, '/');
        const char *base = slash ? slash + 1 : p;
        char *dir = slash ? xasprintf("%s/%.*s", rootfs, (int)(slash - p), p) : xstrdup(rootfs);
        if (!strcmp(base, WH_OPAQUE)) {
            struct stat st;
            if (lstat(dir, &st) == 0 && S_ISDIR(st.st_mode))
                rc = fs_empty_dir(dir);
        } else if (!strncmp(base, WH_PREFIX, strlen(WH_PREFIX))) {
            char *victim = xasprintf("%s/%s", dir, base + strlen(WH_PREFIX));
            rc = fs_rmtree(victim);
            free(victim);
        }
        if (rc != 0)
            rc = errf(CAIRN_EIO, err, errlen, "cannot apply whiteout '%s': %s", p,
                      strerror(errno));
        free(dir);
        free(p);
        if (rc != 0)
            break;
    }
    if (rc == 0 && r != ARCHIVE_EOF)
        rc = errf(CAIRN_EPARSE, err, errlen, "layer %s: %s", layer_path, archive_error_string(a));
    archive_read_free(a);
    return rc;
}

/* Pass 2: extract every entry but the whiteouts. */
static int
extract(const char *rootfs, const char *layer_path, char *err, size_t errlen)
{
    int rc;
    struct archive *a = open_layer(layer_path, err, errlen, &rc);
    if (!a)
        return rc;
    struct archive *w = archive_write_disk_new();
    int flags = ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR |
                ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                ARCHIVE_EXTRACT_UNLINK;
    if (geteuid() == 0)
        flags |= ARCHIVE_EXTRACT_OWNER;
    archive_write_disk_set_options(w, flags);
    archive_write_disk_set_standard_lookup(w);
    struct archive_entry *e;
    int r;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        char *p = clean_path(archive_entry_pathname(e));
        if (!p)
            continue;
        if (!p[0]) {
            free(p);
            rc = errf(CAIRN_EPARSE, err, errlen, "layer entry '%s' has '..' in its path: refused",
                      archive_entry_pathname(e));
            break;
        }
        const char *slash = strrchr(p, '/');
        const char *base = slash ? slash + 1 : p;
        if (!strncmp(base, WH_PREFIX, strlen(WH_PREFIX))) {
            free(p);
            continue;
        }
        char *full = xasprintf("%s/%s", rootfs, p);
        archive_entry_set_pathname(e, full);
        const char *hl = archive_entry_hardlink(e);
        char *hfull = NULL;
        if (hl) {
            char *hp = clean_path(hl);
            if (!hp || !hp[0]) {
                rc = errf(CAIRN_EPARSE, err, errlen,
                          "layer entry '%s': hard link to '%s' leaves the rootfs: refused", p, hl);
                free(hp);
                free(full);
                free(p);
                break;
            }
            hfull = xasprintf("%s/%s", rootfs, hp);
            free(hp);
            archive_entry_set_hardlink(e, hfull);
        }
        /* A directory that replaces a non-directory (or the reverse) of a
         * lower layer: ARCHIVE_EXTRACT_UNLINK handles files; remove a
         * lower folder that a non-folder replaces. */
        struct stat st;
        if (archive_entry_filetype(e) != AE_IFDIR && lstat(full, &st) == 0 && S_ISDIR(st.st_mode))
            fs_rmtree(full);
        int wr = archive_write_header(w, e);
        if (wr == ARCHIVE_OK && archive_entry_size(e) > 0 && !hl) {
            const void *buf;
            size_t len;
            la_int64_t off;
            int dr;
            while ((dr = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK)
                if (archive_write_data_block(w, buf, len, off) != ARCHIVE_OK) {
                    dr = ARCHIVE_FATAL;
                    break;
                }
            if (dr != ARCHIVE_EOF)
                wr = ARCHIVE_FATAL;
        }
        if (wr == ARCHIVE_OK || wr == ARCHIVE_WARN)
            wr = archive_write_finish_entry(w);
        if (wr < ARCHIVE_WARN) {
            const char *why = archive_error_string(w);
            if (!why)
                why = archive_error_string(a);
            rc = errf(CAIRN_EIO, err, errlen, "cannot unpack layer entry '%s': %s", p,
                      why ? why : "unknown error");
        }
        free(hfull);
        free(full);
        free(p);
        if (rc != 0)
            break;
    }
    if (rc == 0 && r != ARCHIVE_EOF)
        rc = errf(CAIRN_EPARSE, err, errlen, "layer %s: %s", layer_path, archive_error_string(a));
    if (archive_write_close(w) != ARCHIVE_OK && rc == 0)
        rc = errf(CAIRN_EIO, err, errlen, "layer %s: %s", layer_path, archive_error_string(w));
    archive_write_free(w);
    archive_read_free(a);
    return rc;
}

int
imgunpack_layer(const char *rootfs, const char *layer_path, char *err, size_t errlen)
{
    int rc = apply_whiteouts(rootfs, layer_path, err, errlen);
    if (rc == 0)
        rc = extract(rootfs, layer_path, err, errlen);
    return rc;
}
