/* mounts.c - host folders a task may see (prefix: mounts_).
 *
 * Owns the worker's allow list (the --allow-mount folders, each as given
 * and resolved once at start) and the check of a lease's mounts against
 * it. A host folder passes when its path as given lies in an allowed folder
 * (as given or resolved) and its resolved path lies in a resolved allowed
 * folder: the first test never touches the file system for folders outside
 * every allowed one, the second refuses a symbolic link that leads out.
 * The container binds the resolved path, the one that was checked.
 */
#include "mounts.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "err.h"
#include "util.h"

struct mounts_allow {
    char **given;    /* as the operator wrote them, normalised */
    char **resolved; /* realpath of each */
    size_t n;
};

/* Cairn's own mount points in a container: a host mount may not be one of
 * them, nor below one (the DAG loader refuses them too). */
static const char *const mounts__own[] = {"/inputs", "/outputs", "/workspace", "/pipeline", "/tmp",
                                          "/proc",   "/dev",     "/sys",       NULL};

/* p with repeated '/' collapsed and a trailing '/' dropped ("/" stays). */
static char *
mounts__norm(const char *p)
{
    char *s = xmalloc(strlen(p) + 1);
    size_t n = 0;

    for (const char *c = p; *c; c++)
        if (*c != '/' || n == 0 || s[n - 1] != '/')
            s[n++] = *c;
    if (n > 1 && s[n - 1] == '/')
        n--;
    s[n] = '\0';
    return s;
}

/* Whether path is dir or below it (both normalised). */
static bool
mounts__within(const char *path, const char *dir)
{
    size_t n = strlen(dir);

    if (strcmp(dir, "/") == 0)
        return true;
    return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

int
mounts_allow_new(struct mounts_allow **out, const char *const *dirs, size_t n, char *err,
                 size_t errlen)
{
    struct mounts_allow *a = xcalloc(1, sizeof(*a));
    int rc = 0;

    a->given = xcalloc(n + 1, sizeof(*a->given));
    a->resolved = xcalloc(n + 1, sizeof(*a->resolved));
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct stat st;

        if (dirs[i][0] != '/') {
            rc = errf(CAIRN_EINVAL, err, errlen, "--allow-mount %s: the folder must be absolute",
                      dirs[i]);
            break;
        }
        a->given[i] = mounts__norm(dirs[i]);
        a->resolved[i] = realpath(dirs[i], NULL);
        a->n = i + 1;
        if (!a->resolved[i])
            rc = errf(cairn_from_errno(errno), err, errlen, "--allow-mount %s: %s", dirs[i],
                      strerror(errno));
        else if (stat(a->resolved[i], &st) != 0 || !S_ISDIR(st.st_mode))
            rc = errf(CAIRN_EIO, err, errlen, "--allow-mount %s: not a folder", dirs[i]);
    }
    if (rc) {
        mounts_allow_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void
mounts_allow_free(struct mounts_allow *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++) {
        free(a->given[i]);
        free(a->resolved[i]);
    }
    free(a->given);
    free(a->resolved);
    free(a);
}

void
mounts_binds_free(struct mounts_bind *b, size_t n)
{
    for (size_t i = 0; b && i < n; i++) {
        free(b[i].source);
        free(b[i].dest);
    }
    free(b);
}

/* "host mount /x is not allowed on worker w1 (allowed: /data, /models);
 * start the worker with --allow-mount", and where a link led if it did. */
static int
mounts__not_allowed(const struct mounts_allow *a, const char *worker, const char *host,
                    const char *resolved, char *err, size_t errlen)
{
    struct sb msg;

    sb_init(&msg);
    sb_printf(&msg, "host mount %s is not allowed on worker %s (allowed: ", host, worker);
    for (size_t i = 0; a && i < a->n; i++)
        sb_printf(&msg, "%s%s", i ? ", " : "", a->given[i]);
    sb_printf(&msg, "%s); start the worker with --allow-mount", a && a->n ? "" : "none");
    if (resolved)
        sb_printf(&msg, " (%s resolves to %s)", host, resolved);
    errf(CAIRN_EINVAL, err, errlen, "%s", msg.buf);
    sb_free(&msg);
    return CAIRN_EINVAL;
}

/* One mount; *b filled on success. */
static int
mounts__one(const struct mounts_allow *a, const char *worker, const struct msg_mount *m,
            bool isolation_none, struct mounts_bind *b, char *err, size_t errlen)
{
    char *host = mounts__norm(m->host), *path = mounts__norm(m->path), *real = NULL;
    bool lexical = false, inside = false;
    int rc = 0;

    bool own = strcmp(path, "/") == 0;

    for (size_t i = 0; mounts__own[i] && !own && !isolation_none; i++)
        own = mounts__within(path, mounts__own[i]);
    if (own) {
        rc = errf(CAIRN_EINVAL, err, errlen,
                  "host mount %s: its path %s is / or one of Cairn's own mount points "
                  "(/inputs, /outputs, /workspace, /pipeline, /tmp, /proc, /dev, /sys)",
                  m->host, m->path);
        goto out;
    }
    for (size_t i = 0; a && i < a->n && !lexical; i++)
        lexical = mounts__within(host, a->given[i]) || mounts__within(host, a->resolved[i]);
    if (!lexical) {
        rc = mounts__not_allowed(a, worker, m->host, NULL, err, errlen);
        goto out;
    }
    real = realpath(host, NULL);
    if (!real) {
        rc = errf(CAIRN_EINVAL, err, errlen, "host mount %s cannot be used on worker %s: %s",
                  m->host, worker, strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < a->n && !inside; i++)
        inside = mounts__within(real, a->resolved[i]);
    if (!inside) {
        rc = mounts__not_allowed(a, worker, m->host, real, err, errlen);
        goto out;
    }
    if (isolation_none && strcmp(host, path) != 0) {
        rc = errf(CAIRN_EINVAL, err, errlen,
                  "host mount %s at %s cannot be used on worker %s: with --isolation none "
                  "there is no container, a task sees host folders where they are (give path "
                  "%s, or run the task on a worker with containers)",
                  m->host, m->path, worker, host);
        goto out;
    }
    b->source = real;
    b->dest = path;
    b->readonly = m->readonly;
    real = path = NULL;
out:
    free(host);
    free(path);
    free(real);
    return rc;
}

int
mounts_check(const struct mounts_allow *a, const char *worker, const struct msg_mount *m, size_t n,
             bool isolation_none, struct mounts_bind **out, char *err, size_t errlen)
{
    struct mounts_bind *b;

    if (n == 0) {
        *out = NULL;
        return 0;
    }
    b = xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < n; i++) {
        int rc = mounts__one(a, worker, &m[i], isolation_none, &b[i], err, errlen);

        if (rc) {
            mounts_binds_free(b, i);
            return rc;
        }
    }
    *out = b;
    return 0;
}
