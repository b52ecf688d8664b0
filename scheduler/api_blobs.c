/* api_blobs.c - artifact bytes for workers that cannot see the store (see
 * api_blobs.h): the lease's credential, the routes, the uploads.
 *
 * An upload in progress (struct api_blob_up) hangs on the task instance
 * whose lease sends it. At most one chunk or commit of it is on the thread
 * pool at a time (busy); a request that finds it busy is 409. When the
 * lease ends while a job runs, the upload is detached (ti NULL) and the
 * job's completion removes it.
 */
#include "api_blobs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <uv.h>

#include "api_ml.h"
#include "artifact.h"
#include "core.h"
#include "engine.h"
#include "err.h"
#include "fs.h"
#include "lease.h"
#include "log.h"
#include "util.h"

#define BLOBS_MARKER ".cairn-store-id"

struct api_blob_up {
    struct api_blob_up *next;
    struct sched *s;
    struct sched_ti *ti; /* NULL once its lease ended */
    char sha[ART_HEX_LEN + 1];
    char *path; /* DATA/uploads/<lease>-<sha>.part */
    int fd;
    struct art_hasher *h;
    int64_t size; /* bytes received and hashed */
    bool busy;

    /* the job on the thread pool */
    uv_work_t work;
    struct http_conn *c;
    const char *data; /* a chunk: the request's body (valid until the response) */
    size_t len;
    bool commit;
    int64_t want_size;
    int rc;
    int status; /* the HTTP status the job's answer has */
    char err[512];
    char *uri;
};

/* ---- credential and permissions ------------------------------------------ */

static void
blobs__allow(json_t *set, const char *sha)
{
    if (sha && art_hex_valid(sha))
        json_object_set_new(set, sha, json_true());
}

void
api_blobs_grant(struct sched *s, struct sched_ti *ti, json_t *lease)
{
    (void)s;
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        ti->xfer_token[0] = '\0'; /* the worker's blob requests get 401 */
        LOG(LOG_ERR, "CAIRN-XFER", "no random bytes for a lease's blob credential");
    } else {
        for (size_t i = 0; i < sizeof(raw); i++)
            snprintf(ti->xfer_token + 2 * i, 3, "%02x", raw[i]);
        OPENSSL_cleanse(raw, sizeof(raw));
        json_object_set_new(lease, "xfer_token", json_string(ti->xfer_token));
    }
    json_decref(ti->xfer_allowed);
    ti->xfer_allowed = json_object();
    /* the run's code snapshot: its manifest and files */
    const char *tree = json_string_value(json_object_get(lease, "code_tree"));
    if (tree) {
        blobs__allow(ti->xfer_allowed, tree);
        json_object_update(ti->xfer_allowed, ti->run->code_files);
    }
    size_t i;
    json_t *in;
    json_array_foreach(json_object_get(lease, "inputs"), i, in)
    {
        blobs__allow(ti->xfer_allowed, json_string_value(json_object_get(in, "sha256")));
        /* a fan-in input: every instance's file the manifest names, allowed
         * when the worker first asks for one that is not above (a worker
         * that reads the store itself never does; 100,000 instances' files
         * are not gone through at each lease) */
        if (json_string_value(json_object_get(in, "manifest_file")))
            ti->xfer_fan_in = true;
    }
}

/* Allow what ti's fan-in inputs name: every instance's file. */
static void
blobs__allow_fan_in(struct sched_ti *ti)
{
    const struct dag_task *t = &ti->run->dv->dag->tasks[ti->idx];
    ti->xfer_fan_in = false;
    for (size_t k = 0; k < t->ninputs; k++) {
        const struct dag_input *di = &t->inputs[k];
        if (!di->fan_in)
            continue;
        const struct sched_ti *g = &ti->run->tis[di->task_idx];
        for (size_t n = 0; g->map && n < g->map->created; n++) {
            size_t j;
            json_t *o;
            json_array_foreach(g->map->inst[n].outputs, j, o)
            {
                if (!strcmp(json_string_value(json_object_get(o, "name")) ?: "", di->file))
                    blobs__allow(ti->xfer_allowed, json_string_value(json_object_get(o, "sha256")));
            }
        }
    }
}

static void
blobs__up_free(struct api_blob_up *u)
{
    if (u->fd >= 0)
        close(u->fd);
    if (u->path)
        unlink(u->path);
    free(u->path);
    art_hasher_free(u->h);
    free(u->uri);
    free(u);
}

/* Take u off its task instance's list. */
static void
blobs__up_unlink(struct api_blob_up *u)
{
    if (!u->ti)
        return;
    struct api_blob_up **pp = &u->ti->uploads;
    while (*pp && *pp != u)
        pp = &(*pp)->next;
    if (*pp)
        *pp = u->next;
    u->ti = NULL;
}

void
api_blobs_revoke(struct sched *s, struct sched_ti *ti)
{
    (void)s;
    OPENSSL_cleanse(ti->xfer_token, sizeof(ti->xfer_token));
    ti->xfer_token[0] = '\0';
    json_decref(ti->xfer_allowed);
    ti->xfer_allowed = NULL;
    ti->xfer_fan_in = false;
    while (ti->uploads) {
        struct api_blob_up *u = ti->uploads;
        ti->uploads = u->next;
        u->ti = NULL;
        if (!u->busy)
            blobs__up_free(u); /* else its job's completion frees it */
    }
}

/* The live lease the request names and proves with its credential, or
 * NULL (answered 400 or 401). */
static struct sched_ti *
blobs__auth(struct sched *s, struct http_conn *c, const struct http_req *req,
            const struct route_params *p)
{
    const char *ls = route_param(p, "lease");
    char *end = NULL;
    errno = 0;
    long long id = ls ? strtoll(ls, &end, 10) : 0;
    if (!ls || !*ls || *end || errno || id < 1) {
        http_respond_error(c, 400, "bad_request", "'%s' is not a lease id", ls ? ls : "");
        return NULL;
    }
    const char *auth = http_req_header(req, "Authorization");
    const char *tok = auth && !strncasecmp(auth, "Bearer ", 7) ? auth + 7 : NULL;
    while (tok && *tok == ' ')
        tok++;
    struct sched_ti *ti = lease_lookup(s, (int64_t)id);
    bool ok = tok && ti && ti->xfer_token[0] && strlen(tok) == strlen(ti->xfer_token) &&
              CRYPTO_memcmp(tok, ti->xfer_token, strlen(tok)) == 0;
    if (!ok) {
        LOG(LOG_WARN, "CAIRN-HTTP-REFUSED", "%s %s: 401: %s", req->method, req->path,
            !tok ? "no lease credential" : "not the credential of a live lease");
        http_conn_set_header(c, "WWW-Authenticate: Bearer");
        http_respond_error(c, 401, "unauthorized",
                           !tok ? "the blob routes need the lease's credential: "
                                  "'Authorization: Bearer <xfer_token>'"
                                : "lease %lld is not live, or that is not its credential",
                           id);
        return NULL;
    }
    return ti;
}

static const char *
blobs__sha(struct http_conn *c, const struct route_params *p)
{
    const char *sha = route_param(p, "sha");
    if (!sha || !art_hex_valid(sha)) {
        http_respond_error(c, 400, "bad_request",
                           "'%s' is not a sha256 digest (64 lower-case hex digits)",
                           sha ? sha : "");
        return NULL;
    }
    return sha;
}

/* ---- downloads ------------------------------------------------------------ */

/* "bytes=N-" or "bytes=N-M" within size: 1 with *from and *to (inclusive);
 * 0 for no (or another kind of) Range; -1 for one that cannot be met. */
static int
blobs__range(const char *h, int64_t size, int64_t *from, int64_t *to)
{
    if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
        return 0;
    char *end;
    errno = 0;
    long long a = strtoll(h + 6, &end, 10);
    if (errno || end == h + 6 || *end != '-' || a < 0)
        return 0;
    long long b = size - 1;
    if (end[1]) {
        char *e2;
        b = strtoll(end + 1, &e2, 10);
        if (errno || *e2 || b < a)
            return 0;
        if (b > size - 1)
            b = size - 1;
    }
    if (a >= size)
        return -1;
    *from = a;
    *to = b;
    return 1;
}

void
api_blobs_get(struct sched *s, struct http_conn *c, const struct http_req *req,
              const struct route_params *p)
{
    struct sched_ti *ti = blobs__auth(s, c, req, p);
    if (!ti)
        return;
    const char *sha = blobs__sha(c, p);
    if (!sha)
        return;
    if (!json_object_get(ti->xfer_allowed, sha) && ti->xfer_fan_in)
        blobs__allow_fan_in(ti);
    if (!json_object_get(ti->xfer_allowed, sha)) {
        LOG(LOG_WARN, "CAIRN-HTTP-REFUSED", "%s %s: 403: not an input of lease %" PRId64,
            req->method, req->path, ti->lease_id);
        http_respond_error(c, 403, "forbidden", "blob %s is not an input of lease %" PRId64, sha,
                           ti->lease_id);
        return;
    }
    char *path = NULL;
    int rc = art_blob_path(sched_artifacts(s), sha, &path);
    int fd = rc == 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        http_respond_error(c, 404, "not_found", "blob %s is not in the artifact store", sha);
        if (fd >= 0)
            close(fd);
        free(path);
        return;
    }
    free(path);
    int64_t size = (int64_t)st.st_size, from = 0, to = size - 1;
    int r = blobs__range(http_req_header(req, "Range"), size, &from, &to);
    if (r < 0) {
        char h[80];
        snprintf(h, sizeof(h), "Content-Range: bytes */%" PRId64, size);
        http_conn_set_header(c, h);
        close(fd);
        http_respond_error(c, 416, "range_not_satisfiable",
                           "blob %s has %" PRId64 " bytes: the range starts after its end", sha,
                           size);
        return;
    }
    struct http_file_body fb = {fd, (uint64_t)from, (uint64_t)(to - from + 1), NULL, NULL, NULL};
    if (size == 0)
        fb.len = 0;
    if (r == 0 && size > 0) {
        /* the whole blob: checked as it goes out, as the artifact route does */
        char what[96];
        snprintf(what, sizeof(what), "a worker's download for lease %" PRId64, ti->lease_id);
        if (api_ml_checked_body(&fb, sha, what) != 0) {
            close(fd);
            http_respond_error(c, 500, "internal", "out of memory");
            return;
        }
    }
    if (r == 1) {
        char h[120];
        snprintf(h, sizeof(h), "Content-Range: bytes %" PRId64 "-%" PRId64 "/%" PRId64, from, to,
                 size);
        http_conn_set_header(c, h);
    }
    http_respond_file(c, r == 1 ? 206 : 200, "application/octet-stream", &fb);
}

/* ---- uploads -------------------------------------------------------------- */

static struct api_blob_up *
blobs__up_find(struct sched_ti *ti, const char *sha)
{
    for (struct api_blob_up *u = ti->uploads; u; u = u->next)
        if (!strcmp(u->sha, sha))
            return u;
    return NULL;
}

/* Is sha in the store already? Its size in *size. With refresh, its mtime
 * is renewed, as a put of it does, so that artifact collection's minimum
 * age protects it until the RESULT that names it is recorded. */
static bool
blobs__stored(struct sched *s, const char *sha, int64_t *size, bool refresh)
{
    char *path = NULL;
    struct stat st;
    bool ok = art_blob_path(sched_artifacts(s), sha, &path) == 0 && stat(path, &st) == 0;
    if (ok && refresh)
        (void)utimensat(AT_FDCWD, path, NULL, 0);
    free(path);
    if (ok && size)
        *size = (int64_t)st.st_size;
    return ok;
}

void
api_blobs_upload_status(struct sched *s, struct http_conn *c, const struct http_req *req,
                        const struct route_params *p)
{
    struct sched_ti *ti = blobs__auth(s, c, req, p);
    const char *sha = ti ? blobs__sha(c, p) : NULL;
    if (!sha)
        return;
    int64_t size = 0;
    if (blobs__stored(s, sha, &size, false)) {
        http_respond_json(c, 200, json_pack("{s:b, s:I}", "stored", 1, "size", (json_int_t)size));
        return;
    }
    struct api_blob_up *u = blobs__up_find(ti, sha);
    http_respond_json(
        c, 200, json_pack("{s:b, s:I}", "stored", 0, "offset", (json_int_t)(u ? u->size : 0)));
}

static void
blobs__work_cb(uv_work_t *w)
{
    struct api_blob_up *u = w->data;
    u->rc = 0;
    if (!u->commit) {
        size_t done = 0;
        while (done < u->len) {
            ssize_t n = pwrite(u->fd, u->data + done, u->len - done, (off_t)(u->size + done));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                int e = n < 0 ? errno : EIO;
                u->rc = e == ENOSPC || e == EDQUOT ? CAIRN_EFULL : CAIRN_EIO;
                u->status = e == ENOSPC || e == EDQUOT ? 507 : 500;
                snprintf(u->err, sizeof(u->err), "cannot write %s: %s", u->path, strerror(e));
                return;
            }
            done += (size_t)n;
        }
        if (art_hasher_update(u->h, u->data, u->len) != 0) {
            u->rc = CAIRN_EIO;
            u->status = 500;
            snprintf(u->err, sizeof(u->err), "cannot hash the upload");
        }
        return;
    }
    char got[ART_HEX_LEN + 1];
    int64_t n = 0;
    if (art_hasher_final(u->h, got, &n) != 0) {
        u->rc = CAIRN_EIO;
        u->status = 500;
        snprintf(u->err, sizeof(u->err), "cannot hash the upload");
        return;
    }
    art_hasher_free(u->h);
    u->h = NULL;
    if (strcmp(got, u->sha) != 0 || n != u->want_size) {
        u->rc = CAIRN_EPROTO;
        u->status = 422;
        snprintf(u->err, sizeof(u->err),
                 "the upload of %s has %" PRId64
                 " bytes whose sha256 is %s (the commit says %" PRId64
                 " bytes of %s): refused, nothing stored; upload it again",
                 u->sha, n, got, u->want_size, u->sha);
        return;
    }
    char again[ART_HEX_LEN + 1];
    int64_t sz = 0;
    u->rc =
        art_put_file(sched_artifacts(u->s), u->path, again, &sz, &u->uri, u->err, sizeof(u->err));
    if (u->rc == 0 && strcmp(again, u->sha) != 0) {
        /* the file changed under us between the two hashes */
        u->rc = CAIRN_EPROTO;
        snprintf(u->err, sizeof(u->err), "the upload of %s changed while it was stored", u->sha);
    }
    u->status = u->rc == 0 ? 200 : u->rc == CAIRN_EFULL ? 507 : u->rc == CAIRN_EPROTO ? 422 : 500;
}

static void
blobs__after_cb(uv_work_t *w, int status)
{
    struct api_blob_up *u = w->data;
    struct http_conn *c = u->c;
    u->busy = false;
    u->c = NULL;
    if (status == UV_ECANCELED && u->rc == 0) {
        u->rc = CAIRN_EIO;
        u->status = 503;
        snprintf(u->err, sizeof(u->err), "the scheduler is stopping");
    }
    if (!u->ti) {
        http_respond_error(c, 410, "gone", "the lease ended; its upload was dropped");
        blobs__up_free(u);
        return;
    }
    if (u->rc != 0) {
        LOG(LOG_WARN, "CAIRN-XFER", "lease %" PRId64 ": upload of %s: %s", u->ti->lease_id, u->sha,
            u->err);
        http_respond_error(c, u->status, u->status == 422 ? "digest_mismatch" : "upload_failed",
                           "%s", u->err);
        blobs__up_unlink(u); /* a failed upload starts again from 0 */
        blobs__up_free(u);
        return;
    }
    if (!u->commit) {
        u->size += (int64_t)u->len;
        http_respond_json(c, 200, json_pack("{s:I}", "offset", (json_int_t)u->size));
        return;
    }
    http_respond_json(c, 200,
                      json_pack("{s:s, s:I, s:s}", "sha256", u->sha, "size",
                                (json_int_t)u->want_size, "uri", u->uri));
    blobs__up_unlink(u);
    blobs__up_free(u);
}

static void
blobs__queue(struct sched *s, struct api_blob_up *u, struct http_conn *c)
{
    u->busy = true;
    u->c = c;
    u->rc = 0;
    u->err[0] = '\0';
    u->work.data = u;
    int rc = uv_queue_work(s->loop, &u->work, blobs__work_cb, blobs__after_cb);
    if (rc != 0) {
        u->busy = false;
        u->c = NULL;
        http_respond_error(c, 503, "unavailable", "cannot queue the upload: %s", uv_strerror(rc));
    }
}

static bool
blobs__int_query(const struct http_req *req, const char *name, int64_t *out)
{
    char *v = api_query(req, name);
    char *end = NULL;
    errno = 0;
    long long n = v ? strtoll(v, &end, 10) : -1;
    bool ok = v && *v && !*end && !errno && n >= 0;
    free(v);
    if (ok)
        *out = n;
    return ok;
}

/* A new upload of sha for ti's lease, or NULL (answered). */
static struct api_blob_up *
blobs__up_new(struct sched *s, struct http_conn *c, struct sched_ti *ti, const char *sha)
{
    char *dir = xasprintf("%s/uploads", sched_data_dir(s));
    if (fs_mkdirs(dir) != 0) {
        http_respond_error(c, 500, "upload_failed", "cannot create %s: %s", dir, strerror(errno));
        free(dir);
        return NULL;
    }
    struct api_blob_up *u = xcalloc(1, sizeof(*u));
    u->s = s;
    u->ti = ti;
    snprintf(u->sha, sizeof(u->sha), "%s", sha);
    u->path = xasprintf("%s/%" PRId64 "-%s.part", dir, ti->lease_id, sha);
    free(dir);
    u->fd = open(u->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (u->fd < 0 || art_hasher_new(&u->h) != 0) {
        http_respond_error(c, 500, "upload_failed", "cannot create %s: %s", u->path,
                           strerror(errno));
        blobs__up_free(u);
        return NULL;
    }
    u->next = ti->uploads;
    ti->uploads = u;
    return u;
}

void
api_blobs_upload_put(struct sched *s, struct http_conn *c, const struct http_req *req,
                     const struct route_params *p)
{
    struct sched_ti *ti = blobs__auth(s, c, req, p);
    const char *sha = ti ? blobs__sha(c, p) : NULL;
    if (!sha)
        return;
    int64_t off = 0;
    if (!blobs__int_query(req, "offset", &off)) {
        http_respond_error(c, 400, "bad_request", "give the chunk's place with ?offset=N");
        return;
    }
    struct api_blob_up *u = blobs__up_find(ti, sha);
    if (!u && off == 0 && !(u = blobs__up_new(s, c, ti, sha)))
        return;
    if (!u || u->busy || off != u->size) {
        json_t *b = json_pack("{s:{s:s, s:s}, s:I}", "error", "code", "conflict", "message",
                              u && u->busy ? "a chunk of this upload is being written"
                                           : "the chunk is not at the offset received so far",
                              "offset", (json_int_t)(u ? u->size : 0));
        http_respond_json(c, 409, b);
        return;
    }
    u->commit = false;
    u->data = req->body;
    u->len = req->body_len;
    blobs__queue(s, u, c);
}

void
api_blobs_commit(struct sched *s, struct http_conn *c, const struct http_req *req,
                 const struct route_params *p)
{
    struct sched_ti *ti = blobs__auth(s, c, req, p);
    const char *sha = ti ? blobs__sha(c, p) : NULL;
    if (!sha)
        return;
    int64_t want = 0, have = 0;
    if (!blobs__int_query(req, "size", &want)) {
        http_respond_error(c, 400, "bad_request", "give the blob's size with ?size=N");
        return;
    }
    struct api_blob_up *u = blobs__up_find(ti, sha);
    if ((!u || u->size == 0) && !(u && want == 0) && blobs__stored(s, sha, &have, true)) {
        if (have != want) {
            http_respond_error(c, 422, "digest_mismatch",
                               "blob %s is stored with %" PRId64 " bytes, not %" PRId64, sha, have,
                               want);
            return;
        }
        char *uri = NULL;
        art_blob_uri(sched_artifacts(s), sha, &uri);
        http_respond_json(
            c, 200,
            json_pack("{s:s, s:I, s:s?}", "sha256", sha, "size", (json_int_t)have, "uri", uri));
        free(uri);
        return;
    }
    if (!u && want == 0 && !(u = blobs__up_new(s, c, ti, sha)))
        return; /* the empty blob: nothing to send first */
    if (!u) {
        http_respond_error(c, 404, "not_found",
                           "blob %s is not stored and no upload of it is under way: upload it "
                           "first (PUT .../uploads/%s?offset=0)",
                           sha, sha);
        return;
    }
    if (u->busy) {
        http_respond_error(c, 409, "conflict", "a chunk of this upload is being written");
        return;
    }
    u->commit = true;
    u->want_size = want;
    blobs__queue(s, u, c);
}

/* ---- start ---------------------------------------------------------------- */

void
api_blobs_set_port(struct sched *s, int port)
{
    s->api_port = port;
}

int
api_blobs_init(struct sched *s, char *err, size_t errlen)
{
    char *id = s->store_id;
    id[0] = '\0';
    char *up = xasprintf("%s/uploads", sched_data_dir(s));
    fs_rmtree(up); /* what a previous run was receiving: its leases are gone */
    free(up);
    const char *uri = art_uri(sched_artifacts(s));
    if (strncmp(uri, "file://", 7) != 0)
        return 0;
    char *path = xasprintf("%s/%s", uri + 7, BLOBS_MARKER);
    char *buf = NULL;
    size_t len = 0;
    int rc = 0;
    if (fs_read_all(path, 128, &buf, &len) == 0) {
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
            len--;
        if (len == 64) {
            memcpy(id, buf, 64);
            id[64] = '\0';
        }
    }
    free(buf);
    if (!id[0]) {
        unsigned char raw[32];
        if (RAND_bytes(raw, sizeof(raw)) != 1) {
            snprintf(err, errlen, "no random bytes for the store's id");
            free(path);
            return CAIRN_EIO;
        }
        for (size_t i = 0; i < sizeof(raw); i++)
            snprintf(id + 2 * i, 3, "%02x", raw[i]);
        char *tmp = xasprintf("%s.tmp", path);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%s\n", id) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
            id[0] = '\0';
            rc = CAIRN_EIO;
        }
        free(tmp);
    }
    free(path);
    return rc;
}
