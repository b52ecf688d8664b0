/* inputs.c - an attempt's inputs (prefix: inputs_).
 *
 * Owns one job per attempt with inputs: the fetches into the attempt's
 * inputs folder (inputs.h says what goes where), run on libuv's thread
 * pool and touching only the job, the files it makes and the store (whose
 * functions any thread may call). The result goes back to the loop thread
 * through done_cb. A job is never cancelled once queued.
 *
 * A fan-in input's manifest is fetched like any input (digest checked)
 * and read in one pass, an instance at a time (see "reading the manifest"
 * below: memory does not grow with the manifest). For each instance: its
 * folder (a second instance with the same index fails there: mkdir says
 * EEXIST, no list of indices is kept), its file, its line in
 * manifest.json. Digests already checked in this job are in a hash map, so
 * a blob that many instances share is hashed once.
 */
#include "inputs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "blobcache.h"
#include "codetree.h"
#include "err.h"
#include "hmap.h"
#include "util.h"

struct inputs_job {
    uv_work_t req;
    struct inputs_spec spec;
    inputs_done_cb *done_cb;
    void *ud;
    struct inputs_result res;
};

/* One fan-in input being laid out. */
struct inputs__fan {
    const struct msg_input *in;
    const char *folder; /* DIR/NAME */
    struct art_store *store;
    const struct xfer_remote *remote;
    bool *unavailable;
    struct hmap checked; /* digests hashed already (keys: copies in keys[]) */
    char **keys;
    size_t nkeys, capkeys;
    FILE *list; /* DIR/NAME/manifest.json */
    size_t listed;
    char *error;
    size_t errlen;
};

static int inputs__malformed(struct inputs__fan *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Blob sha at dest: from the store, or, through the scheduler (remote),
 * into the cache (store is then the cache) and from there. A failure to
 * reach it (not a damaged blob) sets *unavailable. */
static int
inputs__get(struct art_store *store, const struct xfer_remote *remote, const char *sha,
            const char *dest, unsigned flags, bool *unavailable, char *err, size_t errlen)
{
    int rc = remote ? xfer_get(remote, sha, err, errlen) : 0;
    if (rc == 0)
        rc = art_fetch(store, sha, dest, flags, err, errlen);
    else
        *unavailable = rc != CAIRN_EFULL;
    if (rc == CAIRN_ENOENT)
        *unavailable = true;
    return rc;
}

/* "input 'NAME': malformed manifest: ..." */
static int
inputs__malformed(struct inputs__fan *f, const char *fmt, ...)
{
    char what[384];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return errf(CAIRN_EPROTO, f->error, f->errlen, "input '%s': malformed manifest: %s",
                f->in->name, what);
}

/* One entry of manifest.json. */
static int
inputs__list(struct inputs__fan *f, json_int_t index, json_t *item, const char *sha)
{
    json_t *o = json_pack("{s:I, s:O, s:s}", "index", index, "item", item ? item : json_null(),
                          "sha256", sha);
    int rc = 0;

    if (!o || fputs(f->listed ? ",\n" : "\n", f->list) == EOF ||
        json_dumpf(o, f->list, JSON_COMPACT) != 0)
        rc = errf(CAIRN_EIO, f->error, f->errlen, "input '%s': cannot write %s/manifest.json: %s",
                  f->in->name, f->folder, strerror(errno));
    json_decref(o);
    f->listed++;
    return rc;
}

/* Instance i of the manifest: its file (if it has one) and its entry. */
static int
inputs__instance(struct inputs__fan *f, size_t i, json_t *inst)
{
    const char *file = f->in->manifest_file;
    json_t *idx = json_object_get(inst, "index");
    json_t *outs, *out;
    const char *sha;
    char err[256];
    int rc;

    if (!json_is_object(inst))
        return inputs__malformed(f, "instances[%zu] must be an object", i);
    if (!json_is_integer(idx) || json_integer_value(idx) < 0)
        return inputs__malformed(f, "instances[%zu].index must be a non-negative integer", i);
    outs = json_object_get(inst, "outputs");
    if (outs && !json_is_null(outs) && !json_is_object(outs))
        return inputs__malformed(f, "instances[%zu].outputs must be an object", i);
    out = outs ? json_object_get(outs, file) : NULL;
    if (!out || json_is_null(out))
        return 0; /* this instance did not make the file: left out */
    sha = json_string_value(json_object_get(out, "sha256"));
    if (!json_is_object(out) || !sha || !art_hex_valid(sha))
        return inputs__malformed(f,
                                 "instances[%zu].outputs.%s.sha256 must be 64 lower-case hex "
                                 "digits",
                                 i, file);

    json_int_t index = json_integer_value(idx);
    char *sub = xasprintf("%s/%" JSON_INTEGER_FORMAT, f->folder, index);
    char *dest = xasprintf("%s/%s", sub, file);
    size_t seen;
    bool again = hmap_get(&f->checked, sha, &seen);

    if (mkdir(sub, 0755) != 0) {
        if (errno == EEXIST)
            rc = inputs__malformed(f, "index %" JSON_INTEGER_FORMAT " appears twice", index);
        else
            rc = errf(CAIRN_EIO, f->error, f->errlen, "input '%s': cannot create %s: %s",
                      f->in->name, sub, strerror(errno));
    } else if ((rc = inputs__get(f->store, f->remote, sha, dest, again ? 0 : ART_FETCH_VERIFY,
                                 f->unavailable, err, sizeof(err))) != 0) {
        errf(rc, f->error, f->errlen,
             "cannot fetch input '%s' (instance %" JSON_INTEGER_FORMAT ", %s): %s", f->in->name,
             index, file, err);
    } else {
        if (!again) {
            xgrow((void **)&f->keys, &f->capkeys, f->nkeys + 1, sizeof(*f->keys));
            f->keys[f->nkeys] = xstrdup(sha);
            hmap_put(&f->checked, f->keys[f->nkeys++], 1);
        }
        rc = inputs__list(f, index, json_object_get(inst, "item"), sha);
    }
    free(sub);
    free(dest);
    return rc;
}

/* ---- reading the manifest ----
 *
 * The manifest of a large map is large (a 100,000-instance one is about
 * 30 MB of JSON, 180 MB as a jansson tree), so it is never held whole:
 * the file is mapped and read one value at a time. A small scanner walks
 * the top-level object and the instances array; json_loadb decodes each
 * member's value on its own (JSON_DISABLE_EOF_CHECK: it stops after the
 * value and says how many bytes it took), and each instance is laid out
 * and freed before the next is read. Pages already read are given back
 * as it goes. */

struct inputs__scan {
    const char *buf;
    size_t len, pos, dropped;
};

static void
inputs__ws(struct inputs__scan *sc)
{
    while (sc->pos < sc->len && strchr(" \t\r\n", sc->buf[sc->pos]) && sc->buf[sc->pos])
        sc->pos++;
}

static bool
inputs__at(struct inputs__scan *sc, char c)
{
    inputs__ws(sc);
    if (sc->pos < sc->len && sc->buf[sc->pos] == c) {
        sc->pos++;
        return true;
    }
    return false;
}

/* The JSON value at the scanner's position (NULL: malformed, reported). */
static json_t *
inputs__value(struct inputs__fan *f, struct inputs__scan *sc, size_t flags, const char *what)
{
    json_error_t je;
    json_t *v;

    inputs__ws(sc);
    v = json_loadb(sc->buf + sc->pos, sc->len - sc->pos,
                   flags | JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        inputs__malformed(f, "%s: %s (at byte %zu)", what, je.text, sc->pos + (size_t)je.position);
        return NULL;
    }
    sc->pos += (size_t)je.position;
    if (sc->pos - sc->dropped >= ((size_t)8 << 20)) {
        size_t page = (size_t)sysconf(_SC_PAGESIZE), upto = sc->pos / page * page;

        (void)madvise((void *)(sc->buf + sc->dropped), upto - sc->dropped, MADV_DONTNEED);
        sc->dropped = upto;
    }
    return v;
}

/* The instances array: each one laid out in turn. */
static int
inputs__instances(struct inputs__fan *f, struct inputs__scan *sc)
{
    char what[64];
    size_t i = 0;
    int rc = 0;

    if (!inputs__at(sc, '['))
        return inputs__malformed(f, "it must be an object with an array 'instances'");
    if (inputs__at(sc, ']'))
        return 0;
    do {
        snprintf(what, sizeof(what), "instances[%zu]", i);
        json_t *inst = inputs__value(f, sc, 0, what);

        if (!inst)
            return CAIRN_EPROTO;
        rc = inputs__instance(f, i++, inst);
        json_decref(inst);
    } while (rc == 0 && inputs__at(sc, ','));
    if (rc == 0 && !inputs__at(sc, ']'))
        rc = inputs__malformed(f, "',' or ']' expected after instances[%zu] (at byte %zu)", i - 1,
                               sc->pos);
    return rc;
}

/* The top-level object {task, instances, ...}: other members are read
 * and skipped; 'instances' must be there once. */
static int
inputs__read(struct inputs__fan *f, const char *buf, size_t len)
{
    struct inputs__scan sc = {buf, len, 0, 0};
    bool have = false;
    int rc = 0;

    if (!inputs__at(&sc, '{'))
        return inputs__malformed(f, "it must be an object with an array 'instances'");
    if (!inputs__at(&sc, '}')) {
        do {
            json_t *key = inputs__value(f, &sc, JSON_DECODE_ANY, "a member's name");

            if (!key)
                return CAIRN_EPROTO;
            bool inst = json_is_string(key) && strcmp(json_string_value(key), "instances") == 0;
            bool named = json_is_string(key);

            json_decref(key);
            if (!named || !inputs__at(&sc, ':'))
                return inputs__malformed(f, "a member's name and ':' expected (at byte %zu)",
                                         sc.pos);
            if (inst && have)
                return inputs__malformed(f, "'instances' appears twice");
            if (inst) {
                have = true;
                rc = inputs__instances(f, &sc);
            } else {
                json_t *v = inputs__value(f, &sc, JSON_DECODE_ANY, "a member's value");

                rc = v ? 0 : CAIRN_EPROTO;
                json_decref(v);
            }
        } while (rc == 0 && inputs__at(&sc, ','));
        if (rc == 0 && !inputs__at(&sc, '}'))
            rc = inputs__malformed(f, "',' or '}' expected (at byte %zu)", sc.pos);
    }
    inputs__ws(&sc);
    if (rc == 0 && !have)
        rc = inputs__malformed(f, "it must be an object with an array 'instances'");
    if (rc == 0 && sc.pos < sc.len)
        rc = inputs__malformed(f, "more after the manifest's object (at byte %zu)", sc.pos);
    return rc;
}

/* The manifest blob, fetched beside the input's folder (digest checked),
 * mapped, and its name removed at once (the task never sees it; the
 * mapping stays until munmap). *buf is NULL for an empty file. */
static int
inputs__map(struct inputs__fan *f, const char *dir, const char **buf, size_t *len)
{
    char *tmp = xasprintf("%s/.%s.manifest", dir, f->in->name);
    char err[256];
    struct stat st;
    int rc = 0, fd = -1;

    *buf = NULL;
    *len = 0;
    if (inputs__get(f->store, f->remote, f->in->sha256, tmp, ART_FETCH_VERIFY, f->unavailable,
                    err, sizeof(err)) != 0) {
        rc = errf(CAIRN_EIO, f->error, f->errlen, "cannot fetch input '%s' (its manifest): %s",
                  f->in->name, err);
    } else if ((fd = open(tmp, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) != 0) {
        rc = errf(CAIRN_EIO, f->error, f->errlen, "input '%s': cannot read its manifest: %s",
                  f->in->name, strerror(errno));
    } else if (st.st_size > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);

        if (m == MAP_FAILED)
            rc = errf(CAIRN_EIO, f->error, f->errlen, "input '%s': cannot read its manifest: %s",
                      f->in->name, strerror(errno));
        else {
            (void)madvise(m, (size_t)st.st_size, MADV_SEQUENTIAL);
            *buf = m;
            *len = (size_t)st.st_size;
        }
    }
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(tmp);
    return rc;
}

/* A fan-in input: DIR/NAME/<index>/<file> and DIR/NAME/manifest.json. */
static int
inputs__fan_in(const struct inputs_spec *spec, const struct msg_input *in, const char *folder,
               struct inputs_result *res)
{
    const char *dir = spec->dir;
    char *error = res->error;
    size_t errlen = sizeof(res->error);
    struct inputs__fan f = {.in = in,
                            .folder = folder,
                            .store = spec->store,
                            .remote = spec->remote,
                            .unavailable = &res->unavailable,
                            .error = error,
                            .errlen = errlen};
    const char *buf;
    size_t len;
    char *list;
    int rc;

    if (mkdir(folder, 0755) != 0 && errno != EEXIST)
        return errf(CAIRN_EIO, error, errlen, "input '%s': cannot create %s: %s", in->name, folder,
                    strerror(errno));
    if ((rc = inputs__map(&f, dir, &buf, &len)) != 0)
        return rc;
    list = xasprintf("%s/manifest.json", folder);
    f.list = fopen(list, "we");
    if (!f.list) {
        rc = errf(CAIRN_EIO, error, errlen, "input '%s': cannot create %s: %s", in->name, list,
                  strerror(errno));
    } else {
        hmap_init(&f.checked);
        fputs("[", f.list);
        rc = inputs__read(&f, buf ? buf : "", len);
        hmap_free(&f.checked);
        for (size_t i = 0; i < f.nkeys; i++)
            free(f.keys[i]);
        free(f.keys);
        if (rc == 0 && fputs(f.listed ? "\n]\n" : "]\n", f.list) == EOF)
            rc = errf(CAIRN_EIO, error, errlen, "input '%s': cannot write %s: %s", in->name, list,
                      strerror(errno));
        if (fclose(f.list) != 0 && rc == 0)
            rc = errf(CAIRN_EIO, error, errlen, "input '%s': cannot write %s: %s", in->name, list,
                      strerror(errno));
    }
    if (buf)
        munmap((void *)buf, len);
    free(list);
    return rc;
}

void
inputs_fetch_now(const struct inputs_spec *spec, struct inputs_result *res)
{
    memset(res, 0, sizeof(*res));
    res->paths = xcalloc(spec->ninputs + 1, sizeof(*res->paths));
    res->n = spec->ninputs;
    if (spec->code_tree) {
        char err[448];
        if (codetree_get(spec->store, spec->remote, spec->code_tree, spec->code_root,
                         &res->code_path, &res->unavailable, err, sizeof(err)) != 0) {
            snprintf(res->error, sizeof(res->error), "cannot build the run's code: %s", err);
            return;
        }
    }
    if (spec->ninputs)
        mkdir(spec->dir, 0755);
    for (size_t i = 0; i < spec->ninputs; i++) {
        const struct msg_input *in = &spec->inputs[i];
        char *path = xasprintf("%s/%s", spec->dir, in->name);
        char err[256];
        int rc;

        if (in->manifest_file) {
            rc = inputs__fan_in(spec, in, path, res);
        } else {
            rc = inputs__get(spec->store, spec->remote, in->sha256, path, ART_FETCH_VERIFY,
                             &res->unavailable, err, sizeof(err));
            if (rc)
                snprintf(res->error, sizeof(res->error), "cannot fetch input '%s': %s", in->name,
                         err);
        }
        if (rc) {
            if (!res->error[0])
                snprintf(res->error, sizeof(res->error), "cannot fetch input '%s': %s", in->name,
                         cairn_strerror(rc));
            free(path);
            return;
        }
        res->paths[i] = path;
    }
}

void
inputs_result_clear(struct inputs_result *res)
{
    for (size_t i = 0; res->paths && i < res->n; i++)
        free(res->paths[i]);
    free(res->paths);
    free(res->code_path);
    memset(res, 0, sizeof(*res));
}

static void
inputs__work(uv_work_t *req)
{
    struct inputs_job *j = req->data;
    const struct xfer_remote *r = j->spec.remote;
    int hold = r ? blobcache_hold(r->cache) : -1;

    inputs_fetch_now(&j->spec, &j->res);
    if (r) {
        blobcache_release(hold);
        blobcache_trim(r->cache, r->cache_size);
    }
}

static void
inputs__done(uv_work_t *req, int status)
{
    struct inputs_job *j = req->data;

    (void)status; /* work is never cancelled once queued */
    j->done_cb(j->ud, &j->res);
    inputs_result_clear(&j->res);
    free(j);
}

void
inputs_fetch(uv_loop_t *loop, const struct inputs_spec *spec, inputs_done_cb *done_cb, void *ud)
{
    struct inputs_job *j = xcalloc(1, sizeof(*j));

    j->spec = *spec;
    j->done_cb = done_cb;
    j->ud = ud;
    j->req.data = j;
    if (uv_queue_work(loop, &j->req, inputs__work, inputs__done) != 0) {
        inputs__work(&j->req); /* cannot happen with a live loop; stay correct */
        inputs__done(&j->req, 0);
    }
}
