/* api_ml.c - the API's ML routes (see docs/api.md): one artifact's pointer
 * and bytes.
 *
 * Everything here reads committed state through short read transactions on
 * the loop thread, like the rest of the API.
 */
#include "api_ml.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "artifact.h"
#include "engine.h"
#include "err.h"
#include "log.h"
#include "store.h"
#include "util.h"

#define SEP "\x1f"

static char *
query(const struct http_req *req, const char *name)
{
    char *v = NULL;
    if (http_query_get(req->query, name, &v) != 0)
        return NULL;
    return v;
}

static const char *
jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void
respond_status(struct http_conn *c, int status, const char *msg)
{
    http_respond_error(c, status,
                       status == 404   ? "not_found"
                       : status == 409 ? "conflict"
                       : status == 400 ? "bad_request"
                       : status == 503 ? "unavailable"
                                       : "internal",
                       "%s", msg);
}

/* Why dag/run/task has no pointer called name: no such task, the task
 * stored no such output, or gc removed the pointer. */
static void
explain_missing(struct store_txn *t, const char *dag, const char *run_id, const char *task,
                const char *name, char *err, size_t errlen)
{
    char *tikey = xasprintf("%s" SEP "%s" SEP "%s", dag, run_id, task);
    void *ti = NULL;
    if (store_get(t, STORE_TIS, tikey, &ti) != 0) {
        snprintf(err, errlen, "run '%s' of DAG '%s' has no task '%s'", run_id, dag, task);
        free(tikey);
        return;
    }
    free(tikey);
    json_t *outs = json_object_get(ti, "outputs");
    struct sb names;
    sb_init(&names);
    bool had = false;
    size_t i;
    json_t *o;
    json_array_foreach(outs, i, o)
    {
        const char *n = jstr(o, "name");
        if (!n)
            continue;
        had |= !strcmp(n, name);
        sb_printf(&names, "%s%s", names.len ? ", " : "", n);
    }
    if (had)
        snprintf(err, errlen,
                 "artifact %s/%s of run '%s' (DAG '%s') was removed by `cairn artifacts gc`", task,
                 name, run_id, dag);
    else if (names.len)
        snprintf(err, errlen,
                 "task '%s' of run '%s' (DAG '%s') has no artifact '%s' (it stored: %s)", task,
                 run_id, dag, name, names.buf);
    else
        snprintf(err, errlen,
                 "task '%s' of run '%s' (DAG '%s') has no artifact '%s' (it has "
                 "stored none%s)",
                 task, run_id, dag, name, strcmp(jstr(ti, "state") ?: "", "success") ? " yet" : "");
    sb_free(&names);
    json_decref(ti);
}

int
api_ml_pointer(struct sched *s, struct store_txn *t, const char *dag, const char *run_id,
               const char *task, const char *name, json_t **out, int *status, char *err,
               size_t errlen)
{
    json_t *run = api_load_run(s, t, dag, run_id, status, err, errlen);
    if (!run)
        return -1;
    char *rdag = xstrdup(jstr(run, "dag") ?: "");
    json_decref(run);
    char *key = xasprintf("%s" SEP "%s" SEP "%s" SEP "%s", rdag, run_id, task, name);
    void *p = NULL;
    int rc = store_get(t, STORE_ARTIFACTS, key, &p);
    free(key);
    if (rc != 0) {
        *status = rc == CAIRN_ENOENT ? 404 : 500;
        if (rc == CAIRN_ENOENT)
            explain_missing(t, rdag, run_id, task, name, err, errlen);
        else
            snprintf(err, errlen, "cannot read the artifact pointer: %s", cairn_strerror(rc));
        free(rdag);
        return -1;
    }
    free(rdag);
    json_object_del(p, "v");
    *out = p;
    return 0;
}

/* The pointer of one artifact, through its own read transaction. */
static json_t *
load_pointer(struct sched *s, const struct http_req *req, const char *run_id, const char *task,
             const char *name, int *status, char *err, size_t errlen)
{
    char *dag = query(req, "dag");
    struct store_txn *t = NULL;
    json_t *p = NULL;
    if (store_txn_begin(sched_store(s), false, &t) != 0) {
        *status = 503;
        snprintf(err, errlen, "cannot read the state store");
    } else {
        api_ml_pointer(s, t, dag, run_id, task, name, &p, status, err, errlen);
        store_txn_abort(t);
    }
    free(dag);
    return p;
}

void
api_ml_artifact(struct sched *s, struct http_conn *c, const struct http_req *req,
                const char *run_id, const char *task, const char *name)
{
    char err[512];
    int status = 500;
    json_t *p = load_pointer(s, req, run_id, task, name, &status, err, sizeof(err));
    if (!p) {
        respond_status(c, status, err);
        return;
    }
    http_respond_json(c, 200, p);
}

/* A blob on its way out: hashed as it is read, the last chunk held back
 * unless the whole matches the digest it is stored under. */
struct blob_send {
    struct art_hasher *h;
    char want[ART_HEX_LEN + 1];
    char *what; /* "dag/run/task/name", for the log */
};

static int
blob_check_cb(void *ud, const void *data, size_t n, int last)
{
    struct blob_send *b = ud;
    if (art_hasher_update(b->h, data, n) != 0)
        return -1;
    if (!last)
        return 0;
    char got[ART_HEX_LEN + 1];
    if (art_hasher_final(b->h, got, NULL) != 0)
        return -1;
    if (strcmp(got, b->want) != 0) {
        LOG(LOG_ERR, "CAIRN-ARTIFACT-CORRUPT",
            "artifact %s: the stored blob %s hashes to %s: it is damaged; the download was "
            "cut short (restore the blob, or run the task that made it again)",
            b->what, b->want, got);
        return -1;
    }
    return 0;
}

static void
blob_done_cb(void *ud, int ok)
{
    struct blob_send *b = ud;
    (void)ok;
    art_hasher_free(b->h);
    free(b->what);
    free(b);
}

void
api_ml_artifact_content(struct sched *s, struct http_conn *c, const struct http_req *req,
                        const char *run_id, const char *task, const char *name)
{
    char err[512];
    int status = 500;
    json_t *p = load_pointer(s, req, run_id, task, name, &status, err, sizeof(err));
    if (!p) {
        respond_status(c, status, err);
        return;
    }
    const char *sha = jstr(p, "sha256");
    json_int_t size = json_integer_value(json_object_get(p, "size"));
    char *path = NULL;
    int rc = sha ? art_blob_path(sched_artifacts(s), sha, &path) : CAIRN_EINVAL;
    int fd = rc == 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        http_respond_error(c, 500, "internal",
                           "the blob of artifact %s/%s (sha256 %s) is missing from the "
                           "artifact store%s%s",
                           task, name, sha ? sha : "?", path ? ": " : "", path ? path : "");
        if (fd >= 0)
            close(fd);
    } else if ((json_int_t)st.st_size != size) {
        http_respond_error(c, 500, "internal",
                           "the blob of artifact %s/%s (sha256 %s) has %" PRId64
                           " bytes, its pointer says %" JSON_INTEGER_FORMAT
                           ": the artifact store is damaged",
                           task, name, sha, (int64_t)st.st_size, size);
        close(fd);
    } else {
        struct blob_send *b = xcalloc(1, sizeof(*b));
        if (art_hasher_new(&b->h) != 0) {
            free(b);
            close(fd);
            http_respond_error(c, 500, "internal", "out of memory");
        } else {
            snprintf(b->want, sizeof(b->want), "%s", sha);
            b->what = xasprintf("%s/%s/%s/%s", jstr(p, "dag") ?: "?", run_id, task, name);
            struct http_file_body fb = {fd, 0, (uint64_t)size, blob_check_cb, blob_done_cb, b};
            if (size == 0)
                fb.check = NULL; /* nothing to read; the empty blob's name was checked on put */
            http_respond_file(c, 200, "application/octet-stream", &fb);
        }
    }
    free(path);
    json_decref(p);
}
