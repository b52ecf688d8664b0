#include "publish.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifact.h"
#include "err.h"
#include "fs.h"
#include "util.h"

#define RECORD_NAME "publish.json"

static unsigned publish_seq;

static int
sys_err(char *err, size_t errlen, int e, const char *what, const char *path)
{
    snprintf(err, errlen, "%s %s: %s", what, path, strerror(e));
    return (e == ENOSPC || e == EDQUOT) ? CAIRN_EFULL : CAIRN_EIO;
}

static int
fsync_path(const char *path, int flags, char *err, size_t errlen)
{
    int fd = open(path, flags | O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sys_err(err, errlen, errno, "cannot open", path);
    int rc = 0;
    if (fsync(fd) != 0 && errno != EINVAL) /* EINVAL: a file system without fsync */
        rc = sys_err(err, errlen, errno, "cannot fsync", path);
    close(fd);
    return rc;
}

static char *
safe_name(const char *s)
{
    char *out = xstrdup(*s ? s : "_");
    for (char *p = out; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("._:+-", *p)))
            *p = '_';
    if (out[0] == '.')
        out[0] = '_'; /* never a hidden name, nor "." or ".." */
    return out;
}

/* Remove a temporary release folder (flat: files only). */
static void
remove_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            char *p = xasprintf("%s/%s", dir, de->d_name);
            unlink(p);
            free(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static int
write_record(const char *path, const char *record, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd < 0)
        return sys_err(err, errlen, errno, "cannot create", path);
    size_t len = strlen(record), off = 0;
    int rc = 0;
    while (off < len && !rc) {
        ssize_t n = write(fd, record + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = sys_err(err, errlen, n < 0 ? errno : EIO, "cannot write", path);
        else
            off += (size_t)n;
    }
    if (!rc && fsync(fd) != 0 && errno != EINVAL)
        rc = sys_err(err, errlen, errno, "cannot fsync", path);
    if (close(fd) != 0 && !rc)
        rc = sys_err(err, errlen, errno, "cannot write", path);
    return rc;
}

/* Build the release in a temporary folder and rename it to final. */
static int
build_release(struct art_store *art, const char *releases, const char *final, const char *rel,
              const struct publish_file *files, size_t nfiles, const char *record, char *err,
              size_t errlen)
{
    unsigned seq = __atomic_fetch_add(&publish_seq, 1, __ATOMIC_RELAXED);
    char *tmp = xasprintf("%s/.tmp-%s-%ld-%u", releases, rel, (long)getpid(), seq);
    int rc = 0;
    if (mkdir(tmp, 0755) != 0) {
        rc = sys_err(err, errlen, errno, "cannot create", tmp);
        free(tmp);
        return rc;
    }
    for (size_t i = 0; i < nfiles && !rc; i++) {
        char *dest = xasprintf("%s/%s", tmp, files[i].name);
        char aerr[512];
        /* a copy, digest checked while it is written: the models folder
         * may be on another file system, and no one writing through it can
         * change a blob other runs use */
        rc = art_fetch(art, files[i].sha256, dest, ART_FETCH_COPY, aerr, sizeof(aerr));
        if (rc)
            snprintf(err, errlen, "cannot copy '%s': %s", files[i].name, aerr);
        else
            rc = fsync_path(dest, 0, err, errlen);
        free(dest);
    }
    if (!rc) {
        char *rp = xasprintf("%s/%s", tmp, RECORD_NAME);
        rc = write_record(rp, record, err, errlen);
        free(rp);
    }
    if (!rc)
        rc = fsync_path(tmp, O_DIRECTORY, err, errlen);
    if (!rc && rename(tmp, final) != 0) {
        int e = errno;
        struct stat st;
        if ((e == EEXIST || e == ENOTEMPTY) && stat(final, &st) == 0 && S_ISDIR(st.st_mode))
            rc = 0; /* published meanwhile: keep that one */
        else
            rc = sys_err(err, errlen, e, "cannot rename into", final);
        remove_tmp(tmp);
    } else if (rc) {
        remove_tmp(tmp);
    }
    free(tmp);
    return rc;
}

int
publish_build(struct art_store *art, const char *models_dir, const char *dag, const char *task,
              const char *release, const struct publish_file *files, size_t nfiles,
              const char *record, char **dir_out, char *err, size_t errlen)
{
    char *sdag = safe_name(dag), *stask = safe_name(task), *rel = safe_name(release);
    char *releases = xasprintf("%s/%s/%s/releases", models_dir, sdag, stask);
    char *final = xasprintf("%s/%s", releases, rel);
    int rc = 0;
    struct stat st;
    if (fs_mkdirs(releases) != 0) {
        rc = sys_err(err, errlen, errno, "cannot create", releases);
    } else if (stat(final, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = build_release(art, releases, final, rel, files, nfiles, record, err, errlen);
        if (!rc)
            rc = fsync_path(releases, O_DIRECTORY, err, errlen);
    }
    if (!rc && dir_out) {
        *dir_out = final;
        final = NULL;
    }
    free(sdag);
    free(stask);
    free(rel);
    free(releases);
    free(final);
    return rc;
}

/* The logical date and attempt of a release, from its publish.json; false
 * if the record has no logical date (written by hand or by an older build). */
static bool
release_order(const char *dir, char *ld, size_t ldlen, long long *attempt)
{
    char *path = xasprintf("%s/publish.json", dir), *text = NULL;
    size_t len = 0;
    bool ok = false;
    if (fs_read_all(path, 1 << 20, &text, &len) == 0) {
        json_t *j = json_loadb(text, len, 0, NULL);
        const char *d = json_string_value(json_object_get(j, "logical_date"));
        if (d) {
            snprintf(ld, ldlen, "%s", d);
            *attempt = json_integer_value(json_object_get(j, "attempt"));
            ok = true;
        }
        json_decref(j);
        free(text);
    }
    free(path);
    return ok;
}

/* Whether release rel may take `latest` from the one it points at now: not
 * if that one is of a newer logical date, or of the same date and a later
 * attempt (a backfill or a retry of an old date must not roll back the
 * model of a newer one). A release without a logical date in its record
 * never holds latest back. */
static bool
may_take_latest(const char *base, const char *rel)
{
    char cur_ld[64], new_ld[64];
    long long cur_at = 0, new_at = 0;
    char *cur = xasprintf("%s/latest", base), *fresh = xasprintf("%s/releases/%s", base, rel);
    bool ok = !release_order(cur, cur_ld, sizeof(cur_ld), &cur_at) ||
              !release_order(fresh, new_ld, sizeof(new_ld), &new_at);
    if (!ok) {
        int c = strcmp(new_ld, cur_ld);
        ok = c > 0 || (c == 0 && new_at >= cur_at);
    }
    free(cur);
    free(fresh);
    return ok;
}

int
publish_switch(const char *models_dir, const char *dag, const char *task, const char *release,
               bool *switched, char *err, size_t errlen)
{
    char *sdag = safe_name(dag), *stask = safe_name(task), *rel = safe_name(release);
    char *base = xasprintf("%s/%s/%s", models_dir, sdag, stask);
    char *target = xasprintf("releases/%s", rel);
    unsigned seq = __atomic_fetch_add(&publish_seq, 1, __ATOMIC_RELAXED);
    char *link = xasprintf("%s/.latest-%ld-%u", base, (long)getpid(), seq);
    char *latest = xasprintf("%s/latest", base);
    int rc = 0;
    bool take = may_take_latest(base, rel);
    if (switched)
        *switched = take;
    unlink(link);
    if (!take) {
        /* the release stays, listed and reachable; latest is not moved */
    } else if (symlink(target, link) != 0) {
        rc = sys_err(err, errlen, errno, "cannot create the link", link);
    } else if (rename(link, latest) != 0) {
        rc = sys_err(err, errlen, errno, "cannot switch", latest);
        unlink(link);
    } else {
        rc = fsync_path(base, O_DIRECTORY, err, errlen);
    }
    free(sdag);
    free(stask);
    free(rel);
    free(base);
    free(target);
    free(link);
    free(latest);
    return rc;
}

int
publish_release(struct art_store *art, const char *models_dir, const char *dag,
                const char *task, const char *release, const struct publish_file *files,
                size_t nfiles, const char *record, char **dir_out, char *err, size_t errlen)
{
    char *dir = NULL;
    int rc = publish_build(art, models_dir, dag, task, release, files, nfiles, record, &dir, err,
                           errlen);
    if (!rc)
        rc = publish_switch(models_dir, dag, task, release, NULL, err, errlen);
    if (!rc && dir_out)
        *dir_out = dir;
    else
        free(dir);
    return rc;
}
