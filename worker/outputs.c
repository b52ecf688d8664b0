/* outputs.c - an attempt's outputs and metrics (prefix: outputs_).
 *
 * Owns one job per successful attempt that declared outputs or metrics:
 * the work (hash and store each declared output with art_put_file_at,
 * then read the metrics file) runs on libuv's thread pool and touches only
 * the job; the result goes back to the loop thread through done_cb. A job
 * is never cancelled once queued.
 */
#include "outputs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "blobcache.h"
#include "err.h"
#include "units.h"
#include "util.h"

struct outputs_job {
    uv_work_t req;
    struct outputs_spec spec;
    outputs_done_cb *done_cb;
    void *ud;
    struct outputs_result res;
};

/* The outputs' lengths against the limits, before any is stored: 0, or -1
 * with r->error set. One that is missing or not a file is left to
 * art_put_file_at, which says what it is. */
static int
outputs__check_sizes(struct outputs_job *j, int dfd)
{
    struct outputs_result *r = &j->res;
    char lim[UNITS_SIZE_BUFSZ];
    int64_t total = 0;
    struct stat st;

    for (size_t i = 0; i < j->spec.nnames; i++) {
        if (fstatat(dfd, j->spec.names[i], &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (j->spec.max_size > 0 && (int64_t)st.st_size > j->spec.max_size) {
            units_format_size(j->spec.max_size, lim, sizeof(lim));
            snprintf(r->error, sizeof(r->error),
                     "output '%s' is %lld bytes, over max_output_size %s: no output was stored",
                     j->spec.names[i], (long long)st.st_size, lim);
            return -1;
        }
        total += (int64_t)st.st_size;
    }
    if (j->spec.max_total > 0 && total > j->spec.max_total) {
        units_format_size(j->spec.max_total, lim, sizeof(lim));
        snprintf(r->error, sizeof(r->error),
                 "the outputs are %lld bytes together, over max_outputs_size %s: no output was "
                 "stored",
                 (long long)total, lim);
        return -1;
    }
    return 0;
}

/* Hash and store every declared output; a missing one fails the attempt. */
static void
outputs__store(struct outputs_job *j)
{
    struct outputs_result *r = &j->res;
    char err[256] = "";
    int dfd = open(j->spec.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (dfd < 0) {
        snprintf(r->error, sizeof(r->error), "cannot open the outputs folder: %s", strerror(errno));
        return;
    }
    r->outputs = xcalloc(j->spec.nnames + 1, sizeof(*r->outputs));
    if (outputs__check_sizes(j, dfd) != 0) {
        close(dfd);
        return;
    }
    for (size_t i = 0; i < j->spec.nnames; i++) {
        const char *name = j->spec.names[i];
        char hex[ART_HEX_LEN + 1];
        int64_t size = 0;
        char *uri = NULL;
        int rc = art_put_file_at(j->spec.store, dfd, name, hex, &size, &uri, err, sizeof(err));

        if (rc == CAIRN_ENOENT) {
            snprintf(r->error, sizeof(r->error), "declared output '%s' was not written to /outputs",
                     name);
            break;
        }
        if (rc) {
            snprintf(r->error, sizeof(r->error), "cannot store output '%s': %s (%s)", name, err,
                     cairn_strerror(rc));
            break;
        }
        if (j->spec.remote) {
            /* stored in the cache: now to the scheduler's store */
            char *path = NULL, *ruri = NULL;
            rc = art_blob_path(j->spec.store, hex, &path);
            if (rc == 0)
                rc = xfer_put(j->spec.remote, path, hex, size, &ruri, err, sizeof(err));
            free(path);
            free(uri);
            uri = ruri;
            if (rc) {
                snprintf(r->error, sizeof(r->error),
                         "cannot send output '%s' to the scheduler: %s (%s)", name, err,
                         cairn_strerror(rc));
                break;
            }
        }
        r->outputs[r->noutputs] = (struct msg_output){xstrdup(name), xstrdup(hex), size, uri};
        r->noutputs++;
    }
    close(dfd);
}

/* The metrics: a flat JSON object of numbers in one of the outputs. */
static void
outputs__metrics(struct outputs_job *j)
{
    struct outputs_result *r = &j->res;
    const char *mf = j->spec.metrics_file;
    char *path = xasprintf("%s/%s", j->spec.dir, mf);
    json_error_t je;
    json_t *m = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    const char *k;
    json_t *v;

    free(path);
    if (!m || !json_is_object(m)) {
        snprintf(r->error, sizeof(r->error), "metrics file '%s' is not a JSON object%s%s", mf,
                 m ? "" : ": ", m ? "" : je.text);
        json_decref(m);
        return;
    }
    r->metrics = xcalloc(json_object_size(m) + 1, sizeof(*r->metrics));
    json_object_foreach(m, k, v)
    {
        struct msg_metric *x = &r->metrics[r->nmetrics];

        if (!json_is_number(v)) {
            snprintf(r->error, sizeof(r->error), "metrics file '%s': '%s' is not a number", mf, k);
            break;
        }
        x->name = xstrdup(k);
        x->integer = json_is_integer(v);
        x->ivalue = x->integer ? (int64_t)json_integer_value(v) : 0;
        x->value = json_number_value(v);
        r->nmetrics++;
    }
    json_decref(m);
}

static void
outputs__work(uv_work_t *req)
{
    struct outputs_job *j = req->data;
    const struct xfer_remote *rm = j->spec.remote;

    if (j->spec.store && j->spec.nnames) {
        int hold = rm ? blobcache_hold(rm->cache) : -1;
        outputs__store(j);
        if (rm) {
            blobcache_release(hold);
            blobcache_trim(rm->cache, rm->cache_size);
        }
    }
    if (!j->res.error[0] && j->spec.metrics_file)
        outputs__metrics(j);
}

static void
outputs__done(uv_work_t *req, int status)
{
    struct outputs_job *j = req->data;
    struct outputs_result *r = &j->res;

    (void)status; /* work is never cancelled once queued */
    j->done_cb(j->ud, r);
    for (size_t i = 0; r->outputs && i < r->noutputs; i++) {
        free(r->outputs[i].name);
        free(r->outputs[i].sha256);
        free(r->outputs[i].uri);
    }
    free(r->outputs);
    for (size_t i = 0; r->metrics && i < r->nmetrics; i++)
        free(r->metrics[i].name);
    free(r->metrics);
    free(j);
}

void
outputs_collect(uv_loop_t *loop, const struct outputs_spec *spec, outputs_done_cb *done_cb,
                void *ud)
{
    struct outputs_job *j = xcalloc(1, sizeof(*j));

    j->spec = *spec;
    j->done_cb = done_cb;
    j->ud = ud;
    j->req.data = j;
    if (uv_queue_work(loop, &j->req, outputs__work, outputs__done) != 0) {
        outputs__work(&j->req); /* cannot happen with a live loop; stay correct */
        outputs__done(&j->req, 0);
    }
}
