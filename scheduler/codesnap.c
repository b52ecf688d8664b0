/* codesnap.c - a run's `code:` folder snapshotted into the store (see
 * codesnap.h).
 *
 * One job per run on the thread pool: it walks the folder and stores each
 * file (art_put_file, which hashes while it copies and keeps one copy of
 * each content), or reads back the manifest of a recovered run. The job
 * owns its results until its completion runs on the loop, which hands them
 * to the run, if the run is still in memory (codesnap_forget detaches it).
 */
#include "codesnap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "artifact.h"
#include "commit.h"
#include "dag.h"
#include "engine.h"
#include "err.h"
#include "log.h"
#include "util.h"

#define CODESNAP_MAX_ENTRIES 50000
#define CODESNAP_MAX_DEPTH 64

struct codesnap_job {
    uv_work_t req;
    struct sched *s;
    struct sched_run *run; /* NULL once it was freed */
    struct art_store *store;
    char *dir; /* the folder (a new snapshot), or NULL (reading one back) */
    char *tmp; /* the manifest being written: DATA/codesnap-<seq>.json */
    char digest[ART_HEX_LEN + 1];
    json_t *files, *dirs, *links; /* the manifest's lists (a new snapshot) */
    json_t *shas;                 /* {sha256: true} */
    size_t n;
    int rc;
    char err[512];
};

static int
codesnap__cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
codesnap__skip(const char *name)
{
    size_t n = strlen(name);
    return !strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, ".git") ||
           !strcmp(name, ".hg") || !strcmp(name, ".svn") || !strcmp(name, "__pycache__") ||
           (n > 4 && !strcmp(name + n - 4, ".pyc"));
}

/* Store what is below abs (rel: its path in the snapshot, "" for the top). */
static int
codesnap__walk(struct codesnap_job *j, const char *abs, const char *rel, int depth)
{
    if (depth > CODESNAP_MAX_DEPTH)
        return errf(CAIRN_ERANGE, j->err, sizeof(j->err),
                    "code folder %s is nested deeper than %d folders", j->dir, CODESNAP_MAX_DEPTH);
    DIR *d = opendir(abs);
    if (!d)
        return errf(errno == ENOENT ? CAIRN_ENOENT : CAIRN_EIO, j->err, sizeof(j->err),
                    "cannot read code folder %s: %s", abs, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (codesnap__skip(e->d_name))
            continue;
        xgrow((void **)&names, &cap, n + 1, sizeof(*names));
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), codesnap__cmp);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (++j->n > CODESNAP_MAX_ENTRIES) {
            rc = errf(CAIRN_ERANGE, j->err, sizeof(j->err),
                      "code folder %s has more than %d "
                      "entries",
                      j->dir, CODESNAP_MAX_ENTRIES);
            break;
        }
        char *path = xasprintf("%s/%s", abs, names[i]);
        char *r = rel[0] ? xasprintf("%s/%s", rel, names[i]) : xstrdup(names[i]);
        struct stat st;
        if (lstat(path, &st) != 0) {
            rc = errf(CAIRN_EIO, j->err, sizeof(j->err), "cannot stat %s: %s", path,
                      strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            json_array_append_new(j->dirs, json_string(r));
            rc = codesnap__walk(j, path, r, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            char hex[ART_HEX_LEN + 1];
            int64_t size = 0;
            char perr[384];
            rc = art_put_file(j->store, path, hex, &size, NULL, perr, sizeof(perr));
            if (rc)
                errf(rc, j->err, sizeof(j->err), "cannot store %s: %s", path, perr);
            else {
                json_array_append_new(j->files, json_pack("{s:s, s:s, s:I, s:b}", "path", r,
                                                          "sha256", hex, "size", (json_int_t)size,
                                                          "exec", (st.st_mode & 0111) != 0));
                json_object_set_new(j->shas, hex, json_true());
            }
        } else if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t tl = readlink(path, target, sizeof(target) - 1);
            if (tl < 0)
                rc = errf(CAIRN_EIO, j->err, sizeof(j->err), "cannot read link %s: %s", path,
                          strerror(errno));
            else {
                target[tl] = '\0';
                json_array_append_new(j->links,
                                      json_pack("{s:s, s:s}", "path", r, "target", target));
            }
        } /* sockets, fifos, devices: not code */
        free(path);
        free(r);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* The {sha256: true} of a manifest's files. */
static json_t *
codesnap__shas(const json_t *m)
{
    json_t *shas = json_object();
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(m, "files"), i, f)
    {
        const char *h = json_string_value(json_object_get(f, "sha256"));
        if (h && art_hex_valid(h))
            json_object_set_new(shas, h, json_true());
    }
    return shas;
}

static void
codesnap__work_cb(uv_work_t *req)
{
    struct codesnap_job *j = req->data;
    if (!j->dir) {
        /* a recovered run: read its manifest back */
        char *path = NULL;
        json_error_t je;
        json_t *m = NULL;
        if ((j->rc = art_blob_path(j->store, j->digest, &path)) != 0 ||
            !(m = json_load_file(path, 0, &je))) {
            if (!j->rc)
                j->rc = CAIRN_EPROTO;
            snprintf(j->err, sizeof(j->err), "cannot read the run's code snapshot %s: %s",
                     j->digest, j->rc == CAIRN_EPROTO ? je.text : cairn_strerror(j->rc));
        } else {
            j->shas = codesnap__shas(m);
        }
        json_decref(m);
        free(path);
        return;
    }
    j->files = json_array();
    j->dirs = json_array();
    j->links = json_array();
    j->shas = json_object();
    if ((j->rc = codesnap__walk(j, j->dir, "", 0)) != 0)
        return;
    json_t *m = json_pack("{s:i, s:O, s:O, s:O}", "version", 1, "files", j->files, "dirs", j->dirs,
                          "links", j->links);
    if (!m || json_dump_file(m, j->tmp, JSON_COMPACT | JSON_SORT_KEYS) != 0) {
        j->rc = CAIRN_EIO;
        snprintf(j->err, sizeof(j->err), "cannot write %s", j->tmp);
    } else {
        char perr[384];
        j->rc = art_put_file(j->store, j->tmp, j->digest, NULL, NULL, perr, sizeof(perr));
        if (j->rc)
            snprintf(j->err, sizeof(j->err), "cannot store the code manifest: %s", perr);
    }
    json_decref(m);
    unlink(j->tmp);
}

static void
codesnap__free(struct codesnap_job *j)
{
    json_decref(j->files);
    json_decref(j->dirs);
    json_decref(j->links);
    json_decref(j->shas);
    free(j->dir);
    free(j->tmp);
    free(j);
}

static void
codesnap__after_cb(uv_work_t *req, int status)
{
    struct codesnap_job *j = req->data;
    struct sched_run *r = j->run;
    if (status == UV_ECANCELED && j->rc == 0) {
        j->rc = CAIRN_EIO;
        snprintf(j->err, sizeof(j->err), "the scheduler stopped before the code was stored");
    }
    if (r) {
        r->code_job = NULL;
        if (j->rc == 0) {
            r->code_state = CODESNAP_READY;
            snprintf(r->code_digest, sizeof(r->code_digest), "%s", j->digest);
            json_decref(r->code_files);
            r->code_files = j->shas;
            j->shas = NULL;
            if (j->dir)
                LOG(LOG_INFO, "CAIRN-CODE-SNAPSHOT",
                    "run %s of %s: code folder %s stored as %s (%zu entries)", r->run_id, r->dag,
                    j->dir, r->code_digest, j->n);
        } else {
            r->code_state = CODESNAP_FAILED;
            free(r->code_error);
            r->code_error = xstrdup(j->err);
            LOG(LOG_ERR, "CAIRN-CODE-SNAPSHOT", "run %s of %s: %s", r->run_id, r->dag, j->err);
        }
        commit_run_dirty(j->s, r); /* its record gets code_digest; leases may go */
    }
    codesnap__free(j);
}

static void
codesnap__queue(struct sched *s, struct sched_run *r, struct codesnap_job *j)
{
    j->s = s;
    j->run = r;
    j->store = sched_artifacts(s);
    j->req.data = j;
    r->code_state = CODESNAP_PENDING;
    r->code_job = j;
    int rc = uv_queue_work(s->loop, &j->req, codesnap__work_cb, codesnap__after_cb);
    if (rc != 0) {
        r->code_job = NULL;
        r->code_state = CODESNAP_FAILED;
        free(r->code_error);
        r->code_error = xasprintf("cannot queue the code snapshot: %s", uv_strerror(rc));
        codesnap__free(j);
    }
}

void
codesnap_run(struct sched *s, struct sched_run *r)
{
    const struct dag *d = r->dv->dag;
    r->code_state = CODESNAP_NONE;
    if (!d->code)
        return;
    struct sched_dag *sd = sched_find_dag(s, r->dag);
    struct codesnap_job *j = xcalloc(1, sizeof(*j));
    j->dir = dag_code_path(d->code, sd ? sd->file : NULL);
    static unsigned long seq;
    j->tmp = xasprintf("%s/codesnap-%d-%lu.json", sched_data_dir(s), (int)getpid(), ++seq);
    codesnap__queue(s, r, j);
}

void
codesnap_recovered(struct sched *s, struct sched_run *r, const char *code_digest)
{
    r->code_state = CODESNAP_NONE;
    if (!code_digest || !art_hex_valid(code_digest))
        return;
    struct codesnap_job *j = xcalloc(1, sizeof(*j));
    snprintf(j->digest, sizeof(j->digest), "%s", code_digest);
    snprintf(r->code_digest, sizeof(r->code_digest), "%s", code_digest);
    codesnap__queue(s, r, j);
}

void
codesnap_forget(struct sched_run *r)
{
    if (r->code_job)
        r->code_job->run = NULL;
    r->code_job = NULL;
    json_decref(r->code_files);
    r->code_files = NULL;
    free(r->code_error);
    r->code_error = NULL;
}

bool
codesnap_waiting(const struct sched_run *r)
{
    return r->code_state == CODESNAP_PENDING;
}
