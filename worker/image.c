/* image.c - pull, verify and unpack images; read their config (see image.h). */
#include "image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "err.h"
#include "fs.h"
#include "image_blob.h"
#include "image_gc.h"
#include "image_unpack.h"
#include "imgref.h"
#include "util.h"

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define REF_NAME "org.opencontainers.image.ref.name"
#define MANIFEST_MAX (4 << 20)

/* Where blobs come from: a registry or an OCI layout on disk. */
struct source {
    const struct image_opts *o;
    struct imgref ref;
    struct imgreg *reg; /* registry */
    const char *layout; /* OCI layout folder */
    char *label;        /* for messages: "registry R" / "layout P" */
    image_log_cb *log_cb;
    void *ud;
    int64_t pulled;
    /* progress of the current blob */
    const char *cur;
    int64_t cur_size, last_logged;
};

static void logf_(struct source *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
logf_(struct source *s, const char *fmt, ...)
{
    if (!s->log_cb)
        return;
    va_list ap;
    va_start(ap, fmt);
    struct sb sb;
    sb_init(&sb);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    s->log_cb(s->ud, sb.buf);
    sb_free(&sb);
}

const char *
image_arch(void)
{
    struct utsname u;
    static const struct {
        const char *m, *oci;
    } map[] = {{"x86_64", "amd64"},    {"aarch64", "arm64"}, {"armv7l", "arm"},     {"i686", "386"},
               {"ppc64le", "ppc64le"}, {"s390x", "s390x"},   {"riscv64", "riscv64"}};
    if (uname(&u) == 0)
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
            if (!strcmp(u.machine, map[i].m))
                return map[i].oci;
    return "amd64";
}

static void
human(int64_t b, char *buf, size_t n)
{
    if (b >= 1 << 20)
        snprintf(buf, n, "%.1f MiB", (double)b / (1 << 20));
    else if (b >= 1 << 10)
        snprintf(buf, n, "%.1f KiB", (double)b / (1 << 10));
    else
        snprintf(buf, n, "%lld B", (long long)b);
}

/* ---- blobs and manifests from either source ---- */

static void
progress_cb(void *ud, int64_t bytes)
{
    struct source *s = ud;
    if (bytes - s->last_logged >= 16 << 20) {
        char a[32], b[32];
        human(bytes, a, sizeof(a));
        human(s->cur_size, b, sizeof(b));
        logf_(s, "cairn: image: %.19s… %s of %s", s->cur, a, b);
        s->last_logged = bytes;
    }
}

/* The blob digest into the store (verified); size -1 when unknown. */
static int
fetch_blob(struct source *s, const char *digest, int64_t size, char *err, size_t errlen)
{
    const char *dir = s->o->dir;
    if (imgblob_has(dir, digest))
        return 0;
    if (s->layout) {
        char *p = xasprintf("%s/blobs/sha256/%s", s->layout, digest + 7);
        int rc = imgblob_import_file(dir, p, digest, err, errlen);
        free(p);
        if (rc != 0) {
            char m[512];
            snprintf(m, sizeof(m), "%s", err);
            return errf(rc, err, errlen, "layout %s: %s", s->layout, m);
        }
        return 0;
    }
    struct imgblob_writer *w;
    int rc = imgblob_writer_open(&w, dir, digest, size, err, errlen);
    if (rc != 0)
        return rc;
    s->cur = digest;
    s->cur_size = size;
    s->last_logged = 0;
    rc = imgreg_blob(s->reg, digest, w, progress_cb, s, err, errlen);
    if (rc == 0) {
        s->pulled += imgblob_writer_bytes(w);
        rc = imgblob_writer_commit(w, err, errlen);
        if (rc != 0) {
            char m[512];
            snprintf(m, sizeof(m), "%s", err);
            errf(rc, err, errlen, "registry %s: %s", s->ref.registry, m);
        }
    } else {
        imgblob_writer_abort(w);
    }
    return rc;
}

static int
read_blob(struct source *s, const char *digest, char **body, size_t *len, char *err, size_t errlen)
{
    char *p = imgblob_path(s->o->dir, digest);
    int rc = fs_read_all(p, MANIFEST_MAX, body, len);
    if (rc != 0)
        rc = errf(rc, err, errlen, "cannot read blob %s: %s", digest, cairn_strerror(rc));
    free(p);
    return rc;
}

/* Store a manifest body fetched by name under its digest. */
static int
store_body(struct source *s, const char *digest, const char *body, size_t len, char *err,
           size_t errlen)
{
    if (imgblob_has(s->o->dir, digest))
        return 0;
    struct imgblob_writer *w;
    int rc = imgblob_writer_open(&w, s->o->dir, digest, (int64_t)len, err, errlen);
    if (rc == 0 && (rc = imgblob_writer_write(w, body, len, err, errlen)) != 0)
        imgblob_writer_abort(w);
    else if (rc == 0)
        rc = imgblob_writer_commit(w, err, errlen);
    return rc;
}

/* The top manifest the reference names: its digest and body. */
static int
top_manifest(struct source *s, char digest[72], json_t **out, char *err, size_t errlen)
{
    char *body = NULL;
    size_t len = 0;
    int rc = 0;
    if (s->layout) {
        char *ip = xasprintf("%s/index.json", s->layout);
        json_error_t je;
        json_t *idx = json_load_file(ip, 0, &je);
        free(ip);
        if (!idx)
            return errf(CAIRN_ENOENT, err, errlen, "layout %s: cannot read index.json: %s",
                        s->layout, je.text);
        json_t *ms = json_object_get(idx, "manifests"), *pick = NULL, *m;
        size_t i, n = 0;
        json_array_foreach(ms, i, m)
        {
            const char *name =
                json_string_value(json_object_get(json_object_get(m, "annotations"), REF_NAME));
            if (s->ref.tag ? (name && !strcmp(name, s->ref.tag)) : 1) {
                pick = m;
                n++;
            }
        }
        if (n != 1) {
            rc = s->ref.tag ? errf(CAIRN_ENOENT, err, errlen, "layout %s has no image tagged '%s'",
                                   s->layout, s->ref.tag)
                            : errf(CAIRN_ENOENT, err, errlen,
                                   "layout %s holds %zu images: name one with oci:%s:TAG",
                                   s->layout, n, s->layout);
            json_decref(idx);
            return rc;
        }
        const char *d = json_string_value(json_object_get(pick, "digest"));
        if (!imgref_digest_ok(d)) {
            json_decref(idx);
            return errf(CAIRN_EPARSE, err, errlen, "layout %s: bad digest in index.json",
                        s->layout);
        }
        snprintf(digest, 72, "%s", d);
        json_decref(idx);
        if ((rc = fetch_blob(s, digest, -1, err, errlen)) != 0 ||
            (rc = read_blob(s, digest, &body, &len, err, errlen)) != 0)
            return rc;
    } else if (s->ref.digest && imgblob_has(s->o->dir, s->ref.digest)) {
        snprintf(digest, 72, "%s", s->ref.digest);
        if ((rc = read_blob(s, digest, &body, &len, err, errlen)) != 0)
            return rc;
    } else {
        char *mt = NULL;
        rc = imgreg_manifest(s->reg, s->ref.digest ? s->ref.digest : s->ref.tag, &body, &len, &mt,
                             digest, err, errlen);
        free(mt);
        if (rc == 0)
            rc = store_body(s, digest, body, len, err, errlen);
        if (rc != 0) {
            free(body);
            return rc;
        }
    }
    json_error_t je;
    *out = json_loadb(body, len, 0, &je);
    free(body);
    if (!*out)
        return errf(CAIRN_EPARSE, err, errlen, "%s: manifest %s is not JSON: %s", s->label, digest,
                    je.text);
    return 0;
}

static int
is_index(json_t *m)
{
    const char *mt = json_string_value(json_object_get(m, "mediaType"));
    if (mt)
        return !strcmp(mt, MT_OCI_INDEX) || !strcmp(mt, MT_DOCKER_LIST);
    return json_object_get(m, "manifests") != NULL && json_object_get(m, "layers") == NULL;
}

/* From an index: the manifest digest for linux/ARCH. */
static int
pick_platform(struct source *s, json_t *idx, char out[72], char *err, size_t errlen)
{
    const char *arch = image_arch();
    json_t *m;
    size_t i;
    struct sb seen;
    sb_init(&seen);
    json_array_foreach(json_object_get(idx, "manifests"), i, m)
    {
        json_t *p = json_object_get(m, "platform");
        const char *os = json_string_value(json_object_get(p, "os"));
        const char *a = json_string_value(json_object_get(p, "architecture"));
        const char *d = json_string_value(json_object_get(m, "digest"));
        if (os && a)
            sb_printf(&seen, "%s%s/%s", seen.len ? ", " : "", os, a);
        if (os && a && !strcmp(os, "linux") && !strcmp(a, arch) && imgref_digest_ok(d)) {
            snprintf(out, 72, "%s", d);
            sb_free(&seen);
            return 0;
        }
    }
    int rc = errf(CAIRN_ENOENT, err, errlen, "%s: the image has no linux/%s manifest (it has: %s)",
                  s->label, arch, seen.len ? seen.buf : "none");
    sb_free(&seen);
    return rc;
}

static char **
strv_from_json(json_t *a)
{
    if (!json_is_array(a))
        return NULL;
    char **v = xcalloc(json_array_size(a) + 1, sizeof(*v));
    size_t i, n = 0;
    json_t *x;
    json_array_foreach(a, i, x) if (json_is_string(x)) v[n++] = xstrdup(json_string_value(x));
    return v;
}

static void
strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static int
read_config(const char *path, struct image_info *out, char *err, size_t errlen)
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j)
        return errf(CAIRN_EPARSE, err, errlen, "image config %s: %s", path, je.text);
    json_t *c = json_object_get(j, "config");
    out->env = strv_from_json(json_object_get(c, "Env"));
    out->entrypoint = strv_from_json(json_object_get(c, "Entrypoint"));
    out->cmd = strv_from_json(json_object_get(c, "Cmd"));
    const char *wd = json_string_value(json_object_get(c, "WorkingDir"));
    const char *user = json_string_value(json_object_get(c, "User"));
    out->workdir = wd && wd[0] ? xstrdup(wd) : NULL;
    out->user = user && user[0] ? xstrdup(user) : NULL;
    json_decref(j);
    return 0;
}

/* Unpack manifest m (digest mdigest) into DIR/HEX, holding its lock. */
static int
write_text(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return CAIRN_EIO;
    int ok = fwrite(text, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : CAIRN_EIO;
}

static int
unpack_image(struct source *s, json_t *m, const char *mdigest, const char *top, char *err,
             size_t errlen)
{
    const char *dir = s->o->dir;
    const char *hex = mdigest + 7;
    char *final = xasprintf("%s/%s", dir, hex);
    char *tmpdir = xasprintf("%s/tmp", dir);
    char *tmp = xasprintf("%s/%.16s.XXXXXX", tmpdir, hex);
    char *rootfs = NULL;
    int rc = 0;
    json_t *cfg = json_object_get(m, "config");
    const char *cdig = json_string_value(json_object_get(cfg, "digest"));
    json_t *layers = json_object_get(m, "layers");
    if (!imgref_digest_ok(cdig) || !json_is_array(layers)) {
        rc = errf(CAIRN_EPARSE, err, errlen, "%s: manifest %s has no config digest or layers",
                  s->label, mdigest);
        goto out;
    }
    /* blobs first: config, then every layer, each verified */
    if ((rc = fetch_blob(s, cdig, json_integer_value(json_object_get(cfg, "size")), err, errlen)) !=
        0)
        goto out;
    size_t nl = json_array_size(layers), i;
    int64_t total = 0;
    json_t *l;
    json_array_foreach(layers, i, l) total += json_integer_value(json_object_get(l, "size"));
    char tb[32];
    human(total, tb, sizeof(tb));
    logf_(s, "cairn: image: pulling %s (%zu layers, %s) from %s", mdigest, nl, tb, s->label);
    json_array_foreach(layers, i, l)
    {
        const char *ld = json_string_value(json_object_get(l, "digest"));
        int64_t ls =
            json_object_get(l, "size") ? json_integer_value(json_object_get(l, "size")) : -1;
        if (!imgref_digest_ok(ld)) {
            rc = errf(CAIRN_EPARSE, err, errlen, "%s: layer %zu of %s has a bad digest", s->label,
                      i + 1, mdigest);
            goto out;
        }
        int had = imgblob_has(dir, ld);
        if ((rc = fetch_blob(s, ld, ls, err, errlen)) != 0)
            goto out;
        char lb[32];
        human(ls, lb, sizeof(lb));
        logf_(s, "cairn: image: layer %zu/%zu %s %s%s", i + 1, nl, ld, lb, had ? " (cached)" : "");
    }
    if (fs_mkdirs(tmpdir) != 0 || !mkdtemp(tmp)) {
        rc = errf(cairn_from_errno(errno), err, errlen, "cannot make %s: %s", tmp, strerror(errno));
        goto out;
    }
    rootfs = xasprintf("%s/rootfs", tmp);
    if (mkdir(rootfs, 0755) != 0) {
        rc = errf(cairn_from_errno(errno), err, errlen, "cannot make %s: %s", rootfs,
                  strerror(errno));
        goto out;
    }
    json_array_foreach(layers, i, l)
    {
        const char *ld = json_string_value(json_object_get(l, "digest"));
        char *lp = imgblob_path(dir, ld);
        rc = imgunpack_layer(rootfs, lp, err, errlen);
        free(lp);
        if (rc != 0) {
            char m2[512];
            snprintf(m2, sizeof(m2), "%s", err);
            errf(rc, err, errlen, "layer %zu/%zu %s: %s", i + 1, nl, ld, m2);
            goto out;
        }
    }
    {
        char *cp = imgblob_path(dir, cdig);
        char *dst = xasprintf("%s/config.json", tmp);
        char *body = NULL;
        size_t len = 0;
        rc = fs_read_all(cp, MANIFEST_MAX, &body, &len);
        if (rc == 0) {
            FILE *f = fopen(dst, "w");
            if (!f || fwrite(body, 1, len, f) != len || fclose(f) != 0)
                rc = errf(CAIRN_EIO, err, errlen, "cannot write %s", dst);
        } else {
            errf(rc, err, errlen, "cannot read config blob %s", cdig);
        }
        free(body);
        free(cp);
        free(dst);
        if (rc != 0)
            goto out;
    }
    {
        char *mj = json_dumps(m, JSON_COMPACT);
        char *mp = xasprintf("%s/manifest.json", tmp);
        char *tp = xasprintf("%s/top", tmp);
        char *sp = xasprintf("%s/size", tmp);
        char sz[32];
        snprintf(sz, sizeof(sz), "%lld\n", (long long)imggc_du(tmp));
        rc = write_text(mp, mj ? mj : "{}", strlen(mj ? mj : "{}"));
        if (rc == 0)
            rc = write_text(tp, top, strlen(top));
        if (rc == 0)
            rc = write_text(sp, sz, strlen(sz));
        if (rc != 0)
            errf(rc, err, errlen, "cannot write the files of %s", tmp);
        free(mj);
        free(mp);
        free(tp);
        free(sp);
        if (rc != 0)
            goto out;
    }
    if (rename(tmp, final) != 0) {
        rc = errf(cairn_from_errno(errno), err, errlen, "cannot rename %s to %s: %s", tmp, final,
                  strerror(errno));
        goto out;
    }
    char pb[32];
    human(s->pulled, pb, sizeof(pb));
    logf_(s, "cairn: image: %s unpacked (%s downloaded)", mdigest, pb);
out:
    if (rc != 0 && tmp[strlen(tmp) - 1] != 'X')
        fs_rmtree(tmp);
    free(rootfs);
    free(final);
    free(tmpdir);
    free(tmp);
    return rc;
}

/* Open DIR/locks/NAME.lock and flock it (op: LOCK_SH or LOCK_EX). */
static int
lock_file(const char *dir, const char *name, int op, int *fd_out, char *err, size_t errlen)
{
    char *ld = xasprintf("%s/locks", dir);
    char *lp = xasprintf("%s/%s.lock", ld, name);
    int rc = 0;
    fs_mkdirs(ld);
    int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, op) != 0) {
        rc = errf(cairn_from_errno(errno), err, errlen, "cannot lock %s: %s", lp, strerror(errno));
        if (fd >= 0)
            close(fd);
    } else {
        *fd_out = fd;
    }
    free(ld);
    free(lp);
    return rc;
}

static int
source_open(struct source *s, const struct image_opts *o, const char *ref, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    s->o = o;
    int rc = imgref_parse(ref, &s->ref, err, errlen);
    if (rc != 0)
        return rc;
    if (s->ref.kind == IMGREF_OCI) {
        s->layout = s->ref.path;
        s->label = xasprintf("layout %s", s->layout);
        return 0;
    }
    if (s->ref.kind != IMGREF_REGISTRY)
        return errf(CAIRN_EINVAL, err, errlen, "image '%s' is not pulled", ref);
    s->label = xasprintf("registry %s", s->ref.registry);
    return imgreg_open(&s->reg, &o->reg, s->ref.registry, s->ref.repo, err, errlen);
}

static void
source_close(struct source *s)
{
    imgreg_close(s->reg);
    imgref_clear(&s->ref);
    free(s->label);
}

int
image_resolve(const struct image_opts *o, const char *ref, char digest[72], char *err,
              size_t errlen)
{
    struct source s;
    int rc = source_open(&s, o, ref, err, errlen);
    json_t *top = NULL;
    if (rc == 0)
        rc = top_manifest(&s, digest, &top, err, errlen);
    json_decref(top);
    source_close(&s);
    return rc;
}

/* A manifest by its digest, from the store or the source. */
static int
manifest_by_digest(struct source *s, const char *digest, json_t **out, char *err, size_t errlen)
{
    char *body = NULL;
    size_t len = 0;
    int rc = 0;
    if (!imgblob_has(s->o->dir, digest)) {
        if (s->layout) {
            rc = fetch_blob(s, digest, -1, err, errlen);
        } else {
            char *mt = NULL;
            char got[72];
            rc = imgreg_manifest(s->reg, digest, &body, &len, &mt, got, err, errlen);
            free(mt);
            if (rc == 0)
                rc = store_body(s, digest, body, len, err, errlen);
            free(body);
            body = NULL;
        }
        if (rc != 0)
            return rc;
    }
    if ((rc = read_blob(s, digest, &body, &len, err, errlen)) != 0)
        return rc;
    json_error_t je;
    *out = json_loadb(body, len, 0, &je);
    free(body);
    if (!*out)
        return errf(CAIRN_EPARSE, err, errlen, "%s: manifest %s is not JSON: %s", s->label, digest,
                    je.text);
    return 0;
}

static int
dir_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int
image_prepare(const struct image_opts *o, const char *ref, image_log_cb *log_cb, void *ud,
              struct image_info *out, char *err, size_t errlen)
{
    struct source s;
    char top_digest[72], mdigest[72];
    json_t *top = NULL, *m = NULL;
    int lockfd = -1;
    char *final = NULL;
    memset(out, 0, sizeof(*out));
    out->lock_fd = -1;
    int rc = source_open(&s, o, ref, err, errlen);
    s.log_cb = log_cb;
    s.ud = ud;
    if (rc == 0)
        rc = top_manifest(&s, top_digest, &top, err, errlen);
    if (rc != 0)
        goto out;
    if (is_index(top)) {
        if ((rc = pick_platform(&s, top, mdigest, err, errlen)) != 0 ||
            (rc = manifest_by_digest(&s, mdigest, &m, err, errlen)) != 0)
            goto out;
        if (is_index(m)) {
            rc = errf(CAIRN_EPARSE, err, errlen, "%s: nested index %s is not supported", s.label,
                      mdigest);
            goto out;
        }
    } else {
        snprintf(mdigest, sizeof(mdigest), "%s", top_digest);
        m = json_incref(top);
    }
    final = xasprintf("%s/%s", o->dir, mdigest + 7);
    /* in use from here: the collector cannot remove it while we hold the
     * lock shared */
    if ((rc = lock_file(o->dir, mdigest + 7, LOCK_SH, &lockfd, err, errlen)) != 0)
        goto out;
    if (!dir_exists(final)) {
        /* exclusive to unpack it; another task (or worker) may have done
         * it while we waited */
        if ((rc = flock(lockfd, LOCK_EX)) != 0) {
            rc = errf(CAIRN_EIO, err, errlen, "cannot lock image %s: %s", mdigest, strerror(errno));
            goto out;
        }
        if (!dir_exists(final)) {
            int gcfd = -1;
            /* pulls hold the collector off (it would drop our new blobs) */
            if ((rc = lock_file(o->dir, "../gc", LOCK_SH, &gcfd, err, errlen)) != 0)
                goto out;
            rc = unpack_image(&s, m, mdigest, top_digest, err, errlen);
            close(gcfd);
            if (rc != 0)
                goto out;
        }
        flock(lockfd, LOCK_SH);
    }
    char *cfg = xasprintf("%s/config.json", final);
    rc = read_config(cfg, out, err, errlen);
    free(cfg);
    if (rc != 0)
        goto out;
    out->digest = xstrdup(top_digest);
    out->manifest = xstrdup(mdigest);
    out->rootfs = xasprintf("%s/rootfs", final);
    out->bytes_pulled = s.pulled;
    /* the last use, for the LRU of the image cache */
    utimensat(AT_FDCWD, final, NULL, 0);
    out->lock_fd = lockfd;
    lockfd = -1;
    if (o->cache_size > 0)
        imggc_collect(o->dir, o->cache_size);
out:
    if (rc != 0)
        image_info_clear(out);
    free(final);
    json_decref(top);
    json_decref(m);
    if (lockfd >= 0)
        close(lockfd);
    source_close(&s);
    return rc;
}

static char **
strv_dup(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    if (!v)
        return NULL;
    char **out = xcalloc(n + 1, sizeof(*out));
    for (size_t i = 0; i < n; i++)
        out[i] = xstrdup(v[i]);
    return out;
}

void
image_info_copy(const struct image_info *from, struct image_info *to)
{
    memset(to, 0, sizeof(*to));
    to->digest = from->digest ? xstrdup(from->digest) : NULL;
    to->manifest = from->manifest ? xstrdup(from->manifest) : NULL;
    to->rootfs = from->rootfs ? xstrdup(from->rootfs) : NULL;
    to->env = strv_dup(from->env);
    to->entrypoint = strv_dup(from->entrypoint);
    to->cmd = strv_dup(from->cmd);
    to->workdir = from->workdir ? xstrdup(from->workdir) : NULL;
    to->user = from->user ? xstrdup(from->user) : NULL;
    to->lock_fd = -1;
}

int
image_reuse(const struct image_opts *o, const struct image_info *known, struct image_info *out)
{
    memset(out, 0, sizeof(*out));
    out->lock_fd = -1;
    if (!known->manifest || strncmp(known->manifest, "sha256:", 7) != 0 || !known->rootfs)
        return -1;
    char *lp = xasprintf("%s/locks/%s.lock", o->dir, known->manifest + 7);
    char *final = xasprintf("%s/%s", o->dir, known->manifest + 7);
    int fd = open(lp, O_RDWR | O_CLOEXEC);
    int rc = -1;
    /* as image_prepare: in use from the lock on, then still there; an
     * exclusive holder (the collector, an unpack) sends us the slow way */
    struct stat st;
    if (fd >= 0 && flock(fd, LOCK_SH | LOCK_NB) == 0 && stat(final, &st) == 0 &&
        S_ISDIR(st.st_mode)) {
        image_info_copy(known, out);
        out->lock_fd = fd;
        fd = -1;
        /* the last use, for the LRU: to the second is enough (a metadata
         * write per task is not free on ext4) */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        if (now.tv_sec != st.st_mtim.tv_sec)
            utimensat(AT_FDCWD, final, NULL, 0);
        rc = 0;
    }
    if (fd >= 0)
        close(fd);
    free(lp);
    free(final);
    return rc;
}

void
image_info_clear(struct image_info *info)
{
    if (!info)
        return;
    free(info->digest);
    free(info->manifest);
    free(info->rootfs);
    strv_free(info->env);
    strv_free(info->entrypoint);
    strv_free(info->cmd);
    free(info->workdir);
    free(info->user);
    if (info->lock_fd > 0)
        close(info->lock_fd);
    memset(info, 0, sizeof(*info));
}

void
image_cleanup_tmp(const char *dir)
{
    char *tmp = xasprintf("%s/tmp", dir);
    fs_rmtree(tmp);
    free(tmp);
}
