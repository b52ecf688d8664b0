/* dagdir.c - the DAG folder: scanning it, loading changed files, keeping
 * each DAG's last good version and its load errors (dagdir.h). */
#include "dagdir.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commit.h"
#include "core.h"
#include "dagtab.h"
#include "err.h"
#include "fs.h"
#include "log.h"
#include "schema.h"
#include "store.h"
#include "util.h"

static void
store_source(struct sched *s, const struct dag *d, const char *buf, size_t len)
{
    struct store_txn *t = NULL;
    char *key = schema_key_dag_source(d->name, d->version);
    const void *data;
    size_t dlen;
    if (store_txn_begin(s->store, true, &t) == 0) {
        if (store_get_raw(t, STORE_DAG_SOURCES, key, &data, &dlen) == 0) {
            store_txn_abort(t);
        } else if (store_put_raw(t, STORE_DAG_SOURCES, key, buf, len) == 0) {
            if (store_txn_commit(t) != 0)
                LOG(LOG_ERR, "CAIRN-STORE-ERROR", "cannot store DAG source %s: %s", key,
                    store_last_error(s->store));
        } else {
            store_txn_abort(t);
        }
    }
    free(key);
}

static void
load_file(struct sched *s, const char *path, const struct stat *st)
{
    size_t len = 0;
    char *buf = NULL;
    if (fs_read_all(path, 0, &buf, &len) != 0)
        buf = NULL;
    struct diag_list dl;
    struct dag *d = NULL;
    diag_list_init(&dl);
    int rc = buf ? dag_load_buffer(&d, buf, len, path, &dl) : CAIRN_EIO;
    if (!buf)
        diag_add(&dl, DIAG_ERROR, path, 0, 0, "io", NULL, "cannot read: %s", strerror(errno));
    struct sched_dag *sd = dagtab_by_file(s, path);
    if (rc == 0) {
        struct sched_dag *other = sched_find_dag(s, d->name);
        if (other && other != sd && other->file && strcmp(other->file, path) != 0 &&
            access(other->file, F_OK) == 0) {
            diag_add(&dl, DIAG_ERROR, path, 1, 1, "duplicate-dag", NULL,
                     "DAG '%s' is already defined in %s", d->name, other->file);
            dag_free(d);
            d = NULL;
            rc = CAIRN_EEXIST;
        }
    }
    if (rc == 0) {
        if (sd && strcmp(sd->name, d->name) != 0) {
            /* the file now defines another DAG: the old one loses its file */
            free(sd->file);
            sd->file = NULL;
            sd = NULL;
        }
        if (!sd)
            sd = sched_find_dag(s, d->name);
        if (!sd)
            sd = dagtab_add(s, d->name, path);
        free(sd->file);
        sd->file = xstrdup(path);
        store_source(s, d, buf, len);
        bool changed = !sd->cur || strcmp(sd->cur->dag->version, d->version) != 0;
        sd->cur = dagtab_version_add(s, d);
        if (changed) {
            LOG(LOG_INFO, "CAIRN-DAG-LOADED", "DAG %s version %.12s loaded from %s", sd->name,
                sd->cur->dag->version, path);
            commit_dag_dirty(s, sd);
        }
        diag_list_free(&sd->errors);
        diag_list_init(&sd->errors);
        diag_list_free(&dl);
    } else {
        if (!sd) {
            /* never loaded: list it under its file name */
            const char *base = strrchr(path, '/');
            char *name = xstrdup(base ? base + 1 : path);
            char *dot = strrchr(name, '.');
            if (dot)
                *dot = '\0';
            sd = sched_find_dag(s, name);
            if (!sd || (sd->file && strcmp(sd->file, path) != 0))
                sd = dagtab_add(s, name, path);
            free(name);
        }
        diag_sort(&dl);
        diag_list_free(&sd->errors);
        sd->errors = dl;
        LOG(LOG_ERR, "CAIRN-DAG-INVALID", "%s: %zu error%s%s; %s", path, dl.nerrors,
            dl.nerrors == 1 ? "" : "s",
            dl.n ? "" : "", sd->cur ? "keeping the last good version" : "DAG not loaded");
        for (size_t i = 0; i < dl.n && i < 5; i++)
            LOG(LOG_ERR, "CAIRN-DAG-INVALID", "%s:%d:%d: %s", dl.items[i].file, dl.items[i].line,
                dl.items[i].col, dl.items[i].msg);
    }
    free(buf);
    sd->file_mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
    sd->file_size = st->st_size;
    sd->seen = true;
}

#define DAGDIR_MAX_DEPTH 8

static bool
dagdir__is_yaml(const char *name)
{
    size_t n = strlen(name);
    return (n > 5 && !strcmp(name + n - 5, ".yaml")) || (n > 4 && !strcmp(name + n - 4, ".yml"));
}

/* Load the DAG files of dir and, below it, of its folders (not those whose
 * name starts with '.', nor folders reached through a symbolic link). */
static void
dagdir__scan(struct sched *s, const char *dirpath, int depth)
{
    DIR *dir = opendir(dirpath);
    if (!dir) {
        LOG(LOG_ERR, "CAIRN-DAGS-DIR", "cannot read %s: %s", dirpath, strerror(errno));
        return;
    }
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (de->d_name[0] == '.')
            continue;
        char *path = xasprintf("%s/%s", dirpath, de->d_name);
        struct stat st;
        if (dagdir__is_yaml(de->d_name)) {
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                struct sched_dag *sd = dagtab_by_file(s, path);
                int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
                if (sd && sd->file_mtime_ns == mt && sd->file_size == st.st_size)
                    sd->seen = true;
                else
                    load_file(s, path, &st);
            }
        } else if (depth < DAGDIR_MAX_DEPTH && lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            dagdir__scan(s, path, depth + 1);
        }
        free(path);
    }
    closedir(dir);
}

void
dagdir_rescan(struct sched *s)
{
    for (size_t i = 0; i < s->ndags; i++)
        s->dags[i]->seen = false;
    dagdir__scan(s, s->cfg.dags_dir, 0);
    for (size_t i = 0; i < s->ndags; i++) {
        struct sched_dag *sd = s->dags[i];
        if (!sd->seen && sd->file && (sd->errors.n == 0 || sd->errors.items[0].line != -1)) {
            if (sd->errors.n == 0 || strcmp(sd->errors.items[0].code, "removed") != 0) {
                LOG(LOG_WARN, "CAIRN-DAG-REMOVED", "%s was removed; DAG %s keeps its history",
                    sd->file, sd->name);
                diag_list_free(&sd->errors);
                diag_list_init(&sd->errors);
                diag_add(&sd->errors, DIAG_ERROR, sd->file, 0, 0, "removed", NULL,
                         "the file was removed");
                sd->file_mtime_ns = 0;
            }
        }
    }
}

void
dagdir_fsev_cb(uv_fs_event_t *h, const char *filename, int events, int status)
{
    struct sched *s = h->data;
    (void)filename;
    (void)events;
    (void)status;
    /* coalesce bursts of events (editors write in steps) */
    int64_t soon = clock_mono_ms() + 150;
    if (s->next_rescan > soon)
        s->next_rescan = soon;
}
