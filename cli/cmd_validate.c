/* cmd_validate.c - `cairn validate PATH...`: check DAG files offline, as the
 * scheduler would load them (common/dag.c), print every diagnostic as
 * FILE:LINE:COL: error: message, and end with a summary line.
 *
 * It owns the validate option table and the list of files a run checks: a
 * file as given; in a folder, every *.yaml and *.yml found the way the
 * scheduler reads its --dags folder (scheduler/dagdir.c): recursively, at
 * most VALIDATE_MAX_DEPTH levels down, skipping names that start with '.'
 * and folders reached through a symbolic link; sorted by path within each
 * PATH. Exit codes: 0 every file is valid, 1 a file has an error or a path
 * does not exist or cannot be read, 2 a usage error or no file found at
 * all (so that a check in CI cannot pass on zero files).
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cliutil.h"
#include "dag.h"
#include "diag.h"
#include "opt.h"
#include "util.h"

/* As deep as the scheduler looks into its DAG folder (DAGDIR_MAX_DEPTH). */
#define VALIDATE_MAX_DEPTH 8

static int
is_yaml_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' &&
           ((n > 5 && !strcmp(name + n - 5, ".yaml")) || (n > 4 && !strcmp(name + n - 4, ".yml")));
}

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The files a run checks (malloc'd paths). */
struct file_list {
    char **v;
    size_t n, cap;
};

static void
file_list_add(struct file_list *fl, char *path)
{
    xgrow((void **)&fl->v, &fl->cap, fl->n + 1, sizeof(*fl->v));
    fl->v[fl->n++] = path;
}

/* Add the DAG files of folder dir and of its folders down to
 * VALIDATE_MAX_DEPTH (dir is depth levels below the PATH given), as the
 * scheduler's scan does. Returns 0, or -1 after printing why a folder could
 * not be read (what could be read is added all the same). */
static int
collect_dir(const char *dir, int depth, struct file_list *fl)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "cairn: validate: cannot read %s: %s\n", dir, strerror(errno));
        return -1;
    }
    size_t dl = strlen(dir);
    const char *sep = dl && dir[dl - 1] == '/' ? "" : "/";
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *path = xasprintf("%s%s%s", dir, sep, de->d_name);
        struct stat st;
        if (is_yaml_name(de->d_name)) {
            /* a link to a file is read (stat), as by the scheduler */
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                file_list_add(fl, path);
                path = NULL;
            }
        } else if (depth < VALIDATE_MAX_DEPTH && lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (collect_dir(path, depth + 1, fl) != 0)
                rc = -1;
        }
        free(path);
    }
    closedir(d);
    return rc;
}

/* Add the DAG files of path (a file as given, a folder searched); *found is
 * the number added. Returns 0, or -1 after printing what is wrong with path
 * (it does not exist, or a folder in it cannot be read). */
static int
collect(const char *path, struct file_list *fl, size_t *found)
{
    struct stat st;
    size_t first = fl->n;
    int rc = 0;
    *found = 0;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "cairn: validate: %s: no such file or folder\n", path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        file_list_add(fl, xstrdup(path));
    else
        rc = collect_dir(path, 0, fl);
    *found = fl->n - first;
    if (*found) /* (fl->v is NULL while nothing was found) */
        qsort(fl->v + first, *found, sizeof(*fl->v), name_cmp);
    return rc;
}

struct validate_args {
    int json, quiet;
};

static const struct opt validate_opts[] = {
    OPT_FLAG("--json", NULL, struct validate_args, json,
             "print one JSON object per file: diagnostics, DAG name, task count, version"),
    OPT_FLAG("-q", "--quiet", struct validate_args, quiet, "leave out the \"ok\" lines"),
};

static const struct opt_cmd validate_cmd = {
    .name = "validate",
    .args = "PATH...",
    .max_args = -1,
    .about = "Check DAG files, or every *.yaml/*.yml in a folder and its folders (as the\n"
             "scheduler reads --dags). Prints each error as FILE:LINE:COL: error: message,\n"
             "then a summary line; exits 1 if any file has an error, 2 if no file was found.",
    OPT_TABLE(validate_opts),
};

/* The last line: "12 files, 12 DAGs ok" or "2 of 12 files have errors (5
 * errors); 10 DAGs ok", and how many paths could not be read. */
static void
print_summary(size_t nfiles, size_t nbad, size_t nerr, size_t nunread)
{
    size_t nok = nfiles - nbad;
    if (nbad == 0)
        printf("%zu file%s, %zu DAG%s ok", nfiles, nfiles == 1 ? "" : "s", nok,
               nok == 1 ? "" : "s");
    else
        printf("%zu of %zu file%s %s errors (%zu error%s)", nbad, nfiles, nfiles == 1 ? "" : "s",
               nbad == 1 ? "has" : "have", nerr, nerr == 1 ? "" : "s");
    if (nbad && nok)
        printf("; %zu DAG%s ok", nok, nok == 1 ? "" : "s");
    if (nunread)
        printf("; %zu path%s not found or unreadable", nunread, nunread == 1 ? "" : "s");
    putchar('\n');
}

/* `on_publish: DAG/TASK` naming a DAG none of the files checked defines,
 * or a task of it that publishes nothing: a warning, not an error (the
 * DAG may live in another folder; each DAG loads on its own). */
static void
warn_publish_refs(struct dag **dags, struct diag_list *dls, char **files, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct dag *d = dags[i];
        for (size_t c = 0; d && c < d->nconds; c++) {
            for (size_t e = 0; e < d->conds[c].nevents; e++) {
                const struct dag_event *ev = &d->conds[c].events[e];
                if (ev->kind != DAG_EVENT_PUBLISH)
                    continue;
                const struct dag *up = NULL;
                for (size_t j = 0; j < n && !up; j++)
                    if (dags[j] && !strcmp(dags[j]->name, ev->dag))
                        up = dags[j];
                long ti = up ? dag_task_index(up, ev->task) : -1;
                if (!up)
                    diag_add(&dls[i], DIAG_WARNING, files[i], ev->line, ev->col,
                             "unknown-dag", "check the name, or validate its file with this one",
                             "'on_publish': no DAG '%s' among the files checked", ev->dag);
                else if (ti < 0)
                    diag_add(&dls[i], DIAG_WARNING, files[i], ev->line, ev->col,
                             "unknown-task", NULL, "'on_publish': DAG '%s' has no task '%s'",
                             ev->dag, ev->task);
                else if (up->tasks[ti].npublish == 0)
                    diag_add(&dls[i], DIAG_WARNING, files[i], ev->line, ev->col,
                             "no-publish", "give that task `publish: [FILE]`",
                             "'on_publish': task '%s' of DAG '%s' publishes nothing", ev->task,
                             ev->dag);
            }
        }
    }
}

static int
validate_main(int argc, char **argv)
{
    struct validate_args a = {0};
    int npaths, rc = opt_parse(&validate_cmd, argc, argv, &a, &npaths);
    if (rc != OPT_GO)
        return rc;
    if (npaths == 0)
        return opt_fail(&validate_cmd, "give at least one file or folder", NULL);
    int json = a.json, quiet = a.quiet;
    struct file_list fl = {0};
    struct sb empty; /* the folders in which nothing was found */
    size_t nunread = 0, nempty = 0;
    sb_init(&empty);
    rc = 0;
    for (int i = 1; i <= npaths; i++) {
        size_t found;
        int r = collect(argv[i], &fl, &found);
        if (r != 0) {
            nunread++;
            rc = 1;
        } else if (found == 0) {
            sb_printf(&empty, "%s%s", nempty ? ", " : "", argv[i]);
            nempty++;
        }
    }
    if (fl.n == 0 && rc == 0) {
        fprintf(stderr,
                "cairn: validate: no *.yaml or *.yml file in %s (folders are searched %d "
                "levels down; names starting with '.' and links to folders are skipped)\n",
                empty.buf, VALIDATE_MAX_DEPTH);
        sb_free(&empty);
        free(fl.v);
        return 2;
    }
    if (nempty)
        fprintf(stderr, "cairn: validate: %s: no *.yaml or *.yml file\n", empty.buf);
    sb_free(&empty);

    json_t *jfiles = json ? json_array() : NULL;
    size_t nbad = 0, ntotal_err = 0;
    struct diag_list *dls = xcalloc(fl.n + 1, sizeof(*dls));
    struct dag **dags = xcalloc(fl.n + 1, sizeof(*dags));
    int *rcs = xcalloc(fl.n + 1, sizeof(*rcs));
    for (size_t i = 0; i < fl.n; i++) {
        diag_list_init(&dls[i]);
        rcs[i] = dag_load_file(&dags[i], fl.v[i], &dls[i]);
    }
    warn_publish_refs(dags, dls, fl.v, fl.n);
    for (size_t i = 0; i < fl.n; i++) {
        struct diag_list dl = dls[i];
        struct dag *d = dags[i];
        int r = rcs[i];
        diag_sort(&dl);
        if (r != 0) {
            nbad++;
            rc = 1;
        }
        ntotal_err += dl.nerrors;
        if (json) {
            json_t *diags = json_array();
            diag_to_json(&dl, diags);
            json_t *o =
                json_pack("{s:s, s:b, s:o}", "file", fl.v[i], "ok", r == 0, "diagnostics", diags);
            if (d) {
                json_object_set_new(o, "dag", json_string(d->name));
                json_object_set_new(o, "tasks", json_integer((json_int_t)d->ntasks));
                json_object_set_new(o, "version", json_string(d->version));
            }
            json_array_append_new(jfiles, o);
        } else {
            diag_print(&dl, stdout);
            if (r == 0 && !quiet)
                printf("%s: ok (dag '%s', %zu task%s)\n", fl.v[i], d->name, d->ntasks,
                       d->ntasks == 1 ? "" : "s");
        }
        dag_free(d);
        diag_list_free(&dl);
        free(fl.v[i]);
    }
    free(dls);
    free(dags);
    free(rcs);
    free(fl.v);
    if (json) {
        json_t *out =
            json_pack("{s:b, s:o, s:{s:I, s:I, s:I, s:I}}", "ok", rc == 0, "files", jfiles,
                      "summary", "files", (json_int_t)fl.n, "ok", (json_int_t)(fl.n - nbad),
                      "failed", (json_int_t)nbad, "errors", (json_int_t)ntotal_err);
        cli_print_json(out);
        json_decref(out);
    } else if (fl.n) {
        print_summary(fl.n, nbad, ntotal_err, nunread);
    }
    return rc;
}

const struct cli_command cmd_validate = {"validate", validate_main, &validate_cmd, NULL};
