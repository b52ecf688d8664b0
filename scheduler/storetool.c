/* storetool.c - the state store's own tools (storetool.h): --check walks
 * every record, --backup copies the store while it is in use.
 *
 * It owns nothing that lives on: each tool opens the store under --data,
 * does its one job and closes it. The check runs in a child process,
 * because a page damaged in a way LMDB does not notice can crash whoever
 * reads it (SIGSEGV, SIGBUS); the parent reports a crash as damage. Both
 * only read, so they can run next to a live scheduler (LMDB's lock file
 * keeps them consistent with its writes).
 */
#include "storetool.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "hmap.h"
#include "schema.h"
#include "store.h"
#include "util.h"

#define STORETOOL_SHOW_MAX 20 /* bad records named one by one */

struct storetool__ctx {
    FILE *out;
    size_t shown;
    enum storetool_depth depth;
    /* STORETOOL_START: the records of finished runs (their task instances,
     * attempts and artifact pointers) are read, not decoded */
    struct hmap live;     /* "dag SEP run_id" of the unfinished runs */
    char **live_keys;     /* the keys live borrows */
    size_t nlive, caplive;
    size_t skipped;       /* records read without decoding */
    int table;            /* of the record before, -1 at first */
    unsigned char *prev;  /* its key */
    size_t prevlen, prevcap;
    unsigned sum;         /* of every byte read (so that they are read) */
};

/* The key as text: the separator shown as '/', other bytes that are not
 * printable as '?'. */
static void
storetool__key(char *buf, size_t len, const void *key, size_t klen)
{
    const unsigned char *k = key;
    size_t i = 0;
    for (; i < klen && i + 1 < len; i++)
        buf[i] = k[i] == 0x1f ? '/' : (k[i] < 0x20 || k[i] > 0x7e) ? '?' : (char)k[i];
    buf[i] = '\0';
}

/* Whether the record decodes as its table's records must; why if not. */
static int
storetool__decode(enum store_table tb, const void *val, size_t vlen, char *why, size_t whylen)
{
    if (tb == STORE_DAG_SOURCES)
        return 0; /* the DAG's YAML as it was loaded: bytes, no shape */
    json_error_t je;
    json_t *j = json_loadb(val, vlen, JSON_REJECT_DUPLICATES, &je);
    if (!j || !json_is_object(j)) {
        snprintf(why, whylen, "not a JSON object%s%s", j ? "" : ": ", j ? "" : je.text);
        json_decref(j);
        return CAIRN_EPARSE;
    }
    int rc = 0;
    union {
        struct schema_run run;
        struct schema_ti ti;
        struct schema_attempt attempt;
        struct schema_artifact artifact;
        struct schema_artidx artidx;
        struct schema_dag dag;
        struct schema_notification notification;
    } u;
    switch (tb) {
    case STORE_RUNS:
        rc = schema_run_decode(j, &u.run, why, whylen);
        break;
    case STORE_TIS:
        rc = schema_ti_decode(j, &u.ti, why, whylen);
        break;
    case STORE_ATTEMPTS:
        rc = schema_attempt_decode(j, &u.attempt, why, whylen);
        break;
    case STORE_ARTIFACTS:
        rc = schema_artifact_decode(j, &u.artifact, why, whylen);
        break;
    case STORE_ARTIFACT_SHAS:
        rc = schema_artidx_decode(j, &u.artidx, why, whylen);
        break;
    case STORE_DAGS:
        rc = schema_dag_decode(j, &u.dag, why, whylen);
        break;
    case STORE_NOTIFICATIONS:
        rc = schema_notification_decode(j, &u.notification, why, whylen);
        break;
    default: /* META, BACKFILLS: JSON objects of their modules' own shape */
        rc = schema_check_version(j, store_table_name(tb), why, whylen);
        break;
    }
    json_decref(j);
    return rc;
}

/* Whether a record of table tb under key belongs to a finished run (STORETOOL_START
 * check: not decoded). The run's key is the first two fields of the key. */
static bool
storetool__finished(struct storetool__ctx *c, enum store_table tb, const void *key, size_t klen)
{
    if (tb != STORE_TIS && tb != STORE_ATTEMPTS && tb != STORE_ARTIFACTS)
        return false;
    const char *k = key, *sep = memchr(k, 0x1f, klen);
    sep = sep ? memchr(sep + 1, 0x1f, klen - (size_t)(sep + 1 - k)) : NULL;
    if (!sep)
        return false; /* not a key of a run's record: decode it (it is bad) */
    char run[1024];
    size_t n = (size_t)(sep - k);
    if (n >= sizeof(run))
        return false;
    memcpy(run, k, n);
    run[n] = '\0';
    size_t v;
    return !hmap_get(&c->live, run, &v);
}

/* A run record: its key is kept if it is unfinished (or unreadable). */
static void
storetool__note_run(struct storetool__ctx *c, const void *key, size_t klen, const void *val,
                    size_t vlen)
{
    json_t *j = json_loadb(val, vlen, 0, NULL);
    const char *st = json_string_value(json_object_get(j, "state"));
    bool done = st && (!strcmp(st, "success") || !strcmp(st, "failed") ||
                       !strcmp(st, "cancelled"));
    json_decref(j);
    if (done)
        return;
    xgrow((void **)&c->live_keys, &c->caplive, c->nlive + 1, sizeof(*c->live_keys));
    char *k = xmalloc(klen + 1);
    memcpy(k, key, klen);
    k[klen] = '\0';
    c->live_keys[c->nlive++] = k;
    hmap_put(&c->live, k, 1);
}

static int
storetool__record_cb(void *ud, enum store_table tb, const void *key, size_t klen, const void *val,
                     size_t vlen)
{
    struct storetool__ctx *c = ud;
    char why[512], k[256];
    /* keys come in order: one that does not was damaged (or its page) */
    bool order = true;
    if (c->table == (int)tb) {
        size_t n = klen < c->prevlen ? klen : c->prevlen;
        int cmp = memcmp(c->prev, key, n);
        order = cmp < 0 || (cmp == 0 && c->prevlen < klen);
    }
    c->table = (int)tb;
    xgrow((void **)&c->prev, &c->prevcap, klen + 1, 1);
    memcpy(c->prev, key, klen);
    c->prevlen = klen;
    int rc = 0;
    if (!order) {
        snprintf(why, sizeof(why), "out of order: the keys before it or its page are damaged");
        rc = CAIRN_ESTORE;
    } else if (c->depth == STORETOOL_START && tb == STORE_RUNS) {
        storetool__note_run(c, key, klen, val, vlen);
        rc = storetool__decode(tb, val, vlen, why, sizeof(why));
    } else if (c->depth == STORETOOL_FULL ||
               (c->depth == STORETOOL_START && !storetool__finished(c, tb, key, klen))) {
        rc = storetool__decode(tb, val, vlen, why, sizeof(why));
    } else {
        c->skipped++;
        /* every page of it is touched: a damaged one crashes the child or
         * LMDB says so */
        const unsigned char *v = val;
        for (size_t i = 0; i < vlen; i += 512)
            c->sum += v[i];
        if (vlen)
            c->sum += v[vlen - 1];
    }
    if (rc == 0)
        return 0;
    if (c->shown++ < STORETOOL_SHOW_MAX) {
        storetool__key(k, sizeof(k), key, klen);
        fprintf(c->out, "bad record: %s '%s': %s\n", store_table_name(tb), k, why);
    }
    return 1;
}

/* Whether DATA holds a state store (the tools never make a new one). */
static int
storetool__exists(const char *data_dir, FILE *out)
{
    char *file = xasprintf("%s/state/data.mdb", data_dir);
    struct stat sb;
    int rc = stat(file, &sb);
    if (rc != 0)
        fprintf(out, "cairn-scheduler: there is no state store at %s (%s: %s)\n", data_dir, file,
                strerror(errno));
    free(file);
    return rc;
}

/* The child's side of the check: 0 all good, 1 bad records or a store
 * error, 2 the store cannot be opened. */
static int
storetool__check_child(const char *data_dir, enum storetool_depth depth, FILE *out)
{
    struct store *st = NULL;
    char err[512];
    if (store_open_readonly(&st, data_dir, err, sizeof(err)) != 0) {
        fprintf(out, "cairn-scheduler: %s\n", err);
        return 2;
    }
    struct storetool__ctx c = {.out = out, .depth = depth, .table = -1};
    hmap_init(&c.live);
    size_t records = 0, bad = 0, used = 0, map = 0;
    int rc = store_check(st, &records, &bad, storetool__record_cb, &c, err, sizeof(err));
    store_usage(st, &used, &map);
    store_close(st);
    free(c.prev);
    hmap_free(&c.live);
    for (size_t i = 0; i < c.nlive; i++)
        free(c.live_keys[i]);
    free(c.live_keys);
    if (rc) {
        fprintf(out, "cairn-scheduler: the state store at %s is damaged: %s (after %zu records)\n",
                data_dir, err, records);
        return 1;
    }
    if (bad > STORETOOL_SHOW_MAX)
        fprintf(out, "... and %zu more bad records\n", bad - STORETOOL_SHOW_MAX);
    if (depth == STORETOOL_START)
        fprintf(out, "%s: %zu records (%zu of finished runs walked, not decoded), %zu bad; %zu "
                "of %zu bytes of the map in use\n", bad ? "damaged" : "ok", records, c.skipped,
                bad, used, map);
    else if (depth == STORETOOL_FULL || bad) /* (a clean start's check is quiet when all is well) */
        fprintf(out, "%s: %zu records, %zu bad; %zu of %zu bytes of the map in use\n",
                bad ? "damaged" : "ok", records, bad, used, map);
    if (bad)
        fprintf(out, "cairn-scheduler: the state store at %s is damaged; restore it from a "
                "backup (docs/operations.md)\n", data_dir);
    return bad ? 1 : 0;
}

int
storetool_check(const char *data_dir, enum storetool_depth depth, FILE *out)
{
    if (storetool__exists(data_dir, out) != 0)
        return 2;
    fflush(out);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(out, "cairn-scheduler: cannot fork for the check: %s\n", strerror(errno));
        return 2;
    }
    if (pid == 0) {
        int rc = storetool__check_child(data_dir, depth, out);
        fflush(out);
        _exit(rc);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(status)) {
        fprintf(out,
                "cairn-scheduler: the state store at %s is damaged: reading it crashed the check "
                "(signal %d, %s); restore it from a backup (docs/operations.md)\n",
                data_dir, WTERMSIG(status), strsignal(WTERMSIG(status)));
        return 1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int
storetool_backup(const char *data_dir, const char *dest, FILE *out)
{
    struct store *st = NULL;
    char err[512];
    if (storetool__exists(data_dir, out) != 0)
        return 2;
    if (fs_mkdirs_mode(dest, 0700) != 0) {
        fprintf(out, "cairn-scheduler: cannot create %s: %s\n", dest, strerror(errno));
        return 1;
    }
    if (store_open_readonly(&st, data_dir, err, sizeof(err)) != 0) {
        fprintf(out, "cairn-scheduler: %s\n", err);
        return 1;
    }
    int rc = store_backup(st, dest, err, sizeof(err));
    store_close(st);
    if (rc) {
        fprintf(out, "cairn-scheduler: backup failed: %s\n", err);
        return 1;
    }
    char *file = xasprintf("%s/data.mdb", dest);
    struct stat sb;
    long long size = stat(file, &sb) == 0 ? (long long)sb.st_size : -1;
    fprintf(out, "backed up the state store at %s to %s (%lld bytes, compacted)\n", data_dir,
            file, size);
    free(file);
    return 0;
}

int
storetool_started(const char *data_dir)
{
    char *state = xasprintf("%s/state", data_dir), *mark = xasprintf("%s/running", state);
    struct stat sb;
    int was = stat(mark, &sb) == 0 ? 1 : 0, rc = was;
    FILE *f = fs_mkdirs_mode(state, 0700) == 0 ? fopen(mark, "w") : NULL;
    if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0)
        rc = -1;
    free(mark);
    free(state);
    return rc;
}

void
storetool_stopped(const char *data_dir)
{
    char *mark = xasprintf("%s/state/running", data_dir);
    unlink(mark);
    free(mark);
}
