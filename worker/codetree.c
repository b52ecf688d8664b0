/* codetree.c - a run's code snapshot built into a folder (see codetree.h). */
#include "codetree.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "err.h"
#include "fs.h"
#include "util.h"

/* A manifest path: relative, no empty, "." or ".." part. */
static bool
codetree__path_ok(const char *p)
{
    if (!p || !*p || *p == '/')
        return false;
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        s += n;
        if (*s == '/')
            s++;
        else
            break;
    }
    return true;
}

static int
codetree__blob(struct art_store *store, const struct xfer_remote *remote, const char *sha,
               const char *dest, unsigned flags, bool *unavailable, char *err, size_t errlen)
{
    int rc = remote ? xfer_get(remote, sha, err, errlen) : 0;
    if (rc) {
        *unavailable = rc != CAIRN_EFULL && rc != CAIRN_EPROTO;
        return rc;
    }
    rc = art_fetch(store, sha, dest, flags, err, errlen);
    if (rc == CAIRN_ENOENT)
        *unavailable = true;
    return rc;
}

int
codetree_get(struct art_store *store, const struct xfer_remote *remote, const char *digest,
             const char *root, char **path_out, bool *unavailable, char *err, size_t errlen)
{
    if (!art_hex_valid(digest))
        return errf(CAIRN_EINVAL, err, errlen, "'%s' is not a code snapshot digest", digest);
    char *dest = xasprintf("%s/%s", root, digest);
    struct stat st;
    if (stat(dest, &st) == 0 && S_ISDIR(st.st_mode)) {
        *path_out = dest;
        return 0;
    }
    static unsigned long seq;
    unsigned long me = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
    char *tmp = xasprintf("%s/.%s.%d.%lu", root, digest, (int)getpid(), me);
    char *mf = xasprintf("%s.manifest", tmp);
    char berr[384];
    json_t *m = NULL;
    int rc = 0;
    if (fs_mkdirs(root) != 0) {
        rc = errf(CAIRN_EIO, err, errlen, "cannot create %s: %s", root, strerror(errno));
        goto out;
    }
    if ((rc = codetree__blob(store, remote, digest, mf, ART_FETCH_VERIFY | ART_FETCH_COPY,
                             unavailable, berr, sizeof(berr))) != 0) {
        errf(rc, err, errlen, "cannot get the code snapshot's manifest %s: %s", digest, berr);
        goto out;
    }
    json_error_t je;
    m = json_load_file(mf, 0, &je);
    unlink(mf);
    if (!json_is_object(m) || json_integer_value(json_object_get(m, "version")) != 1) {
        rc = errf(CAIRN_EPROTO, err, errlen, "code snapshot %s: not a version 1 manifest%s%s",
                  digest, m ? "" : ": ", m ? "" : je.text);
        goto out;
    }
    if (mkdir(tmp, 0755) != 0) {
        rc = errf(CAIRN_EIO, err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    size_t i;
    json_t *v;
    json_t *dirs = json_object_get(m, "dirs");
    json_array_foreach(dirs, i, v)
    {
        const char *p = json_string_value(v);
        if (!codetree__path_ok(p)) {
            rc = errf(CAIRN_EPROTO, err, errlen, "code snapshot %s: bad folder path", digest);
            goto out;
        }
        char *d = xasprintf("%s/%s", tmp, p);
        int mk = mkdir(d, 0755);
        free(d);
        if (mk != 0 && errno != EEXIST) {
            rc = errf(CAIRN_EIO, err, errlen, "cannot create folder %s of the code: %s", p,
                      strerror(errno));
            goto out;
        }
    }
    json_array_foreach(json_object_get(m, "files"), i, v)
    {
        const char *p = json_string_value(json_object_get(v, "path"));
        const char *sha = json_string_value(json_object_get(v, "sha256"));
        bool exec = json_is_true(json_object_get(v, "exec"));
        if (!codetree__path_ok(p) || !sha || !art_hex_valid(sha)) {
            rc = errf(CAIRN_EPROTO, err, errlen, "code snapshot %s: bad file entry %zu", digest, i);
            goto out;
        }
        char *f = xasprintf("%s/%s", tmp, p);
        /* an executable is a copy of its own (a link would share the
         * store's read-only mode) */
        rc = codetree__blob(store, remote, sha, f, ART_FETCH_VERIFY | (exec ? ART_FETCH_COPY : 0),
                            unavailable, berr, sizeof(berr));
        if (rc == 0 && exec && chmod(f, 0555) != 0)
            rc = errf(CAIRN_EIO, berr, sizeof(berr), "chmod: %s", strerror(errno));
        free(f);
        if (rc) {
            errf(rc, err, errlen, "cannot get %s of the code snapshot: %s", p, berr);
            goto out;
        }
    }
    json_array_foreach(json_object_get(m, "links"), i, v)
    {
        const char *p = json_string_value(json_object_get(v, "path"));
        const char *target = json_string_value(json_object_get(v, "target"));
        if (!codetree__path_ok(p) || !target) {
            rc = errf(CAIRN_EPROTO, err, errlen, "code snapshot %s: bad link entry", digest);
            goto out;
        }
        char *l = xasprintf("%s/%s", tmp, p);
        int sl = symlink(target, l);
        free(l);
        if (sl != 0) {
            rc = errf(CAIRN_EIO, err, errlen, "cannot make link %s of the code: %s", p,
                      strerror(errno));
            goto out;
        }
    }
    /* read-only folders, deepest first */
    for (size_t k = json_array_size(dirs); k-- > 0;) {
        char *d = xasprintf("%s/%s", tmp, json_string_value(json_array_get(dirs, k)));
        chmod(d, 0555);
        free(d);
    }
    chmod(tmp, 0555);
    if (rename(tmp, dest) != 0) {
        if (stat(dest, &st) == 0 && S_ISDIR(st.st_mode)) {
            /* another attempt built it meanwhile: use that one */
            chmod(tmp, 0755);
            for (size_t k = 0; k < json_array_size(dirs); k++) {
                char *d = xasprintf("%s/%s", tmp, json_string_value(json_array_get(dirs, k)));
                chmod(d, 0755);
                free(d);
            }
            fs_rmtree(tmp);
        } else {
            rc = errf(CAIRN_EIO, err, errlen, "cannot rename %s to %s: %s", tmp, dest,
                      strerror(errno));
            goto out;
        }
    }
out:
    if (rc) {
        /* a half-built folder: writable again, then gone */
        struct stat ts;
        if (stat(tmp, &ts) == 0) {
            chmod(tmp, 0755);
            size_t k;
            json_t *dv;
            json_array_foreach(json_object_get(m, "dirs"), k, dv)
            {
                char *d = xasprintf("%s/%s", tmp, json_string_value(dv));
                chmod(d, 0755);
                free(d);
            }
            fs_rmtree(tmp);
        }
        free(dest);
    } else {
        *path_out = dest;
    }
    unlink(mf);
    json_decref(m);
    free(mf);
    free(tmp);
    return rc;
}
