/* cmd_validate.c - `cairn validate PATH...`: check DAG files offline, as the
 * scheduler would load them (common/dag.c), and print every diagnostic as
 * FILE:LINE:COL: error: message.
 *
 * It owns the validate option table and the list of files a run checks (a
 * file as given, a folder's *.yaml and *.yml, sorted). Exit codes: 0 every
 * file is valid, 1 a file has an error or a path does not exist, 2 a usage
 * error.
 */
#include <dirent.h>
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

static int
is_yaml_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && ((n > 5 && !strcmp(name + n - 5, ".yaml")) ||
                              (n > 4 && !strcmp(name + n - 4, ".yml")));
}

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collect DAG files: a file as given, a folder's *.yaml / *.yml (sorted, not
 * recursive). Returns -1 if path does not exist. */
static int
collect(const char *path, char ***files, size_t *n, size_t *cap)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        xgrow((void **)files, cap, *n + 1, sizeof(**files));
        (*files)[(*n)++] = xstrdup(path);
        return 0;
    }
    DIR *dir = opendir(path);
    if (!dir)
        return -1;
    size_t first = *n;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (!is_yaml_name(de->d_name))
            continue;
        xgrow((void **)files, cap, *n + 1, sizeof(**files));
        size_t pl = strlen(path);
        (*files)[(*n)++] = xasprintf("%s%s%s", path, pl && path[pl - 1] == '/' ? "" : "/",
                                     de->d_name);
    }
    closedir(dir);
    qsort(*files + first, *n - first, sizeof(**files), name_cmp);
    return 0;
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
    .about = "Check DAG files (or every *.yaml/*.yml in a folder). Prints each error as\n"
             "FILE:LINE:COL: error: message; exits 1 if any file has an error.",
    OPT_TABLE(validate_opts),
};

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
    char **files = NULL;
    size_t nfiles = 0, cap = 0;
    rc = 0;
    for (int i = 1; i <= npaths; i++) {
        if (collect(argv[i], &files, &nfiles, &cap) != 0) {
            fprintf(stderr, "cairn: validate: %s: no such file or folder\n", argv[i]);
            rc = 1;
        }
    }

    json_t *jfiles = json ? json_array() : NULL;
    size_t nbad = 0, ntotal_err = 0;
    for (size_t i = 0; i < nfiles; i++) {
        struct diag_list dl;
        struct dag *d = NULL;
        diag_list_init(&dl);
        int r = dag_load_file(&d, files[i], &dl);
        diag_sort(&dl);
        if (r != 0) {
            nbad++;
            rc = 1;
        }
        ntotal_err += dl.nerrors;
        if (json) {
            json_t *diags = json_array();
            diag_to_json(&dl, diags);
            json_t *o = json_pack("{s:s, s:b, s:o}", "file", files[i], "ok", r == 0,
                                  "diagnostics", diags);
            if (d) {
                json_object_set_new(o, "dag", json_string(d->name));
                json_object_set_new(o, "tasks", json_integer((json_int_t)d->ntasks));
                json_object_set_new(o, "version", json_string(d->version));
            }
            json_array_append_new(jfiles, o);
        } else {
            diag_print(&dl, stdout);
            if (r == 0 && !quiet)
                printf("%s: ok (dag '%s', %zu task%s)\n", files[i], d->name, d->ntasks,
                       d->ntasks == 1 ? "" : "s");
        }
        dag_free(d);
        diag_list_free(&dl);
        free(files[i]);
    }
    free(files);
    if (json) {
        json_t *out = json_pack("{s:b, s:o}", "ok", rc == 0, "files", jfiles);
        cli_print_json(out);
        json_decref(out);
    } else if (nbad) {
        printf("%zu error%s in %zu of %zu file%s\n", ntotal_err, ntotal_err == 1 ? "" : "s",
               nbad, nfiles, nfiles == 1 ? "" : "s");
    }
    return rc;
}

const struct cli_command cmd_validate = {"validate", validate_main, &validate_cmd, NULL};
