/* cmd_artifacts.c - `cairn artifacts list|get|gc`: the outputs tasks stored,
 * through the scheduler's HTTP API (docs/api.md; the manual is docs/cli.md).
 *
 * It owns the option tables of the artifacts sub-commands, the artifacts
 * table, the download of `get` and the report of `gc`. A download to a file
 * goes to a temporary file next to it (get_tmp_path, removed by a signal
 * handler if the command is interrupted), is hashed on the way and is
 * renamed over the file only when its SHA-256 and size match the pointer;
 * with -o - the bytes go to stdout as they come and a mismatch is found at
 * the end. Exit codes as cli.h says: 0 done, 1 the scheduler is unreachable
 * or answered with an error, 2 a usage error. A download that broke or did
 * not match its digest exits 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifact.h"
#include "cli.h"
#include "client.h"
#include "cliutil.h"
#include "err.h"
#include "opt.h"
#include "table.h"
#include "units.h"
#include "util.h"

struct artifacts_args {
    const char *server, *dag, *out, *keep_last, *older, *min_age;
    int json, dry;
};

static const struct opt artifacts_list_opts[] = {
    OPT_STR("--dag", NULL, "D", struct artifacts_args, dag,
            "the DAG of RUN, needed when another DAG has a run with that id"),
    OPT_FLAG("--json", NULL, struct artifacts_args, json, "print the API's answer as JSON"),
    OPT_SERVER(struct artifacts_args, server),
};

static const struct opt artifacts_get_opts[] = {
    OPT_STR("--dag", NULL, "D", struct artifacts_args, dag,
            "the DAG of RUN, needed when another DAG has a run with that id"),
    OPT_REQ("-o", "--output", "FILE|-", struct artifacts_args, out,
            "write to FILE (whole or not at all), or with -o - to standard output"),
    OPT_SERVER(struct artifacts_args, server),
};

static const struct opt artifacts_gc_opts[] = {
    OPT_FLAG("--dry-run", "-n", struct artifacts_args, dry, "count what would go; remove nothing"),
    OPT_FLAG("--json", NULL, struct artifacts_args, json, "print the API's answer as JSON"),
    OPT_NUM("--keep-last", NULL, "N", 1000000, struct artifacts_args, keep_last,
            "keep the pointers of the last N finished runs of each DAG"),
    OPT_STR("--min-age", NULL, "DURATION", struct artifacts_args, min_age,
            "remove no blob younger than DURATION (default 1h)"),
    OPT_STR("--older-than", NULL, "DURATION", struct artifacts_args, older,
            "keep the pointers of runs that ended less than DURATION ago (30d, 12h)"),
    OPT_SERVER(struct artifacts_args, server),
};

static const struct opt_cmd artifacts_list_cmd, artifacts_get_cmd, artifacts_gc_cmd;

static const struct opt_cmd *const artifacts_family[] = {
    &artifacts_list_cmd,
    &artifacts_get_cmd,
    &artifacts_gc_cmd,
    NULL,
};

static const struct opt_cmd artifacts_list_cmd = {
    .name = "artifacts list",
    .args = "RUN",
    .max_args = 1,
    .about = "List the artifacts (declared outputs) a run's tasks stored: task, name, size\n"
             "and the first 16 characters of the SHA-256.",
    OPT_TABLE(artifacts_list_opts),
    .family = artifacts_family,
};

static const struct opt_cmd artifacts_get_cmd = {
    .name = "artifacts get",
    .args = "RUN TASK/NAME",
    .max_args = 2,
    .about = "Download an artifact to FILE (written whole or not at all) or, with -o -, to\n"
             "standard output, and check its SHA-256 against the one recorded.",
    OPT_TABLE(artifacts_get_opts),
    .family = artifacts_family,
};

static const struct opt_cmd artifacts_gc_cmd = {
    .name = "artifacts gc",
    .max_args = 0,
    .about = "Remove the artifact pointers of finished runs outside the retention (the last N\n"
             "runs of each DAG; runs that ended less than DURATION ago), then the blobs no\n"
             "pointer references any more and that are older than --min-age (default 1h).\n"
             "Unfinished runs keep everything. --dry-run counts and removes nothing.",
    OPT_TABLE(artifacts_gc_opts),
    .family = artifacts_family,
};

static int
artifacts_list(int argc, char **argv)
{
    struct artifacts_args aa = {0};
    int nargs, prc = opt_parse(&artifacts_list_cmd, argc, argv, &aa, &nargs);
    if (prc != OPT_GO)
        return prc;
    if (nargs == 0)
        return opt_fail(&artifacts_list_cmd, "missing RUN", NULL);
    const char *server = aa.server, *dag = aa.dag, *run = argv[1];
    int json = aa.json;
    struct sb path;
    sb_init(&path);
    cli_run_path(&path, run, "/artifacts", dag);
    json_t *resp;
    int rc = cli_api_get(client_server_url(server), path.buf, &resp);
    sb_free(&path);
    if (rc != 0)
        return 1;
    if (json) {
        cli_print_json(resp);
        json_decref(resp);
        return 0;
    }
    struct table *t = table_new();
    table_add_column(t, "TASK", TABLE_LEFT);
    table_add_column(t, "NAME", TABLE_LEFT);
    table_add_column(t, "SIZE", TABLE_RIGHT);
    table_add_column(t, "SHA256", TABLE_LEFT);
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(resp, "artifacts"), i, a)
    {
        char size[32], sha[20];
        snprintf(size, sizeof(size), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(a, "size")));
        snprintf(sha, sizeof(sha), "%.16s", cli_jstr(a, "sha256") ?: "");
        table_add_row(t);
        table_cell(t, cli_jstr(a, "task"));
        table_cell(t, cli_jstr(a, "name"));
        table_cell(t, size);
        table_cell(t, sha);
    }
    table_print(t, stdout, 0);
    table_free(t);
    json_decref(resp);
    return 0;
}

/* The temporary file of a download to a path, removed if the command is
 * interrupted. */
static char *get_tmp_path;

static void
get_on_signal(int sig)
{
    if (get_tmp_path)
        unlink(get_tmp_path); /* async-signal-safe */
    _exit(128 + sig);
}

struct get_sink {
    int fd;
    struct art_hasher *h;
    int werr; /* errno of a failed write */
};

static int
get_sink_cb(void *ud, const void *data, size_t n)
{
    struct get_sink *g = ud;
    if (art_hasher_update(g->h, data, n) != 0) {
        g->werr = ENOMEM;
        return CAIRN_EIO;
    }
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(g->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            g->werr = errno;
            return CAIRN_EIO;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Make the finished temporary file tmp the file out: mode as a new file
 * gets, flushed to disk, renamed over out. */
static int
get_install(int fd, const char *tmp, const char *out)
{
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0 || fsync(fd) != 0) {
        fprintf(stderr, "cairn: artifacts get: cannot write %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    if (rename(tmp, out) != 0) {
        fprintf(stderr, "cairn: artifacts get: cannot rename %s to %s: %s\n", tmp, out,
                strerror(errno));
        return 1;
    }
    /* the rename itself, durable (best effort: not every filesystem can) */
    char *dir = xstrdup(out);
    char *slash = strrchr(dir, '/');
    const char *d = slash ? (slash == dir ? "/" : (*slash = '\0', dir)) : ".";
    int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    free(dir);
    return 0;
}

static int
artifacts_get(int argc, char **argv)
{
    struct artifacts_args a = {0};
    int nargs, prc = opt_parse(&artifacts_get_cmd, argc, argv, &a, &nargs);
    if (prc != OPT_GO)
        return prc;
    const char *server = a.server, *dag = a.dag, *out = a.out;
    const char *run = nargs > 0 ? argv[1] : NULL, *spec = nargs > 1 ? argv[2] : NULL;
    if (!run || !spec || !out)
        return opt_fail(&artifacts_get_cmd,
                        !run    ? "missing RUN"
                        : !spec ? "missing TASK/NAME"
                                : "missing -o FILE (or -o - for standard output)",
                        NULL);
    char *copy = NULL;
    const char *task, *name;
    if (cli_split_task_name(spec, &copy, &task, &name) != 0)
        return opt_fail(&artifacts_get_cmd, "give the artifact as TASK/NAME, not", spec);
    server = client_server_url(server);

    /* the pointer: what the bytes must hash to */
    char *path = cli_artifact_path(run, task, name, NULL, dag);
    json_t *ptr = NULL;
    int rc = cli_api_get(server, path, &ptr);
    free(path);
    if (rc != 0) {
        free(copy);
        return 1;
    }
    const char *want = cli_jstr(ptr, "sha256");
    json_int_t want_size = json_integer_value(json_object_get(ptr, "size"));
    if (!want || !art_hex_valid(want)) {
        fprintf(stderr, "cairn: the scheduler sent a pointer without a valid sha256\n");
        json_decref(ptr);
        free(copy);
        return 1;
    }

    int to_stdout = strcmp(out, "-") == 0;
    struct get_sink g = {.fd = 1};
    if (!to_stdout) {
        get_tmp_path = xasprintf("%s.cairn-tmp.XXXXXX", out);
        g.fd = mkostemp(get_tmp_path, O_CLOEXEC);
        if (g.fd < 0) {
            fprintf(stderr, "cairn: artifacts get: cannot create a file next to %s: %s\n", out,
                    strerror(errno));
            free(get_tmp_path);
            get_tmp_path = NULL;
            json_decref(ptr);
            free(copy);
            return 1;
        }
        cli_on_signal(SIGINT, get_on_signal);
        cli_on_signal(SIGTERM, get_on_signal);
        cli_on_signal(SIGHUP, get_on_signal);
    }
    if (art_hasher_new(&g.h) != 0) {
        fprintf(stderr, "cairn: out of memory\n");
        rc = 1;
        goto out;
    }
    path = cli_artifact_path(run, task, name, "/content", dag);
    char err[1024] = "";
    int64_t got_bytes = 0;
    int drc = client_download(server, path, get_sink_cb, &g, &got_bytes, err, sizeof(err));
    free(path);
    if (drc != 0) {
        if (g.werr)
            fprintf(stderr, "cairn: artifacts get: cannot write %s: %s\n",
                    to_stdout ? "standard output" : out, strerror(g.werr));
        else if (drc == CAIRN_ENET && got_bytes > 0)
            fprintf(stderr,
                    "cairn: artifacts get %s/%s: the download broke after %" PRId64
                    " of %" JSON_INTEGER_FORMAT " bytes: %s\n"
                    "  the scheduler stops sending a blob that does not match its digest; "
                    "its log then says CAIRN-ARTIFACT-CORRUPT\n",
                    task, name, got_bytes, want_size, err);
        else
            fprintf(stderr, "cairn: artifacts get %s/%s: %s\n", task, name, err);
        rc = 1;
        goto out;
    }
    char got[ART_HEX_LEN + 1];
    int64_t size = 0;
    if (art_hasher_final(g.h, got, &size) != 0 || strcmp(got, want) != 0 ||
        size != (int64_t)want_size) {
        fprintf(stderr,
                "cairn: artifacts get: the bytes received for %s/%s do not match its digest "
                "(received %" PRId64 " bytes with sha256 %s; expected %" JSON_INTEGER_FORMAT
                " bytes with sha256 %s); %s\n",
                task, name, size, got, want_size, want,
                to_stdout ? "do not use what was written to standard output"
                          : "nothing was written");
        rc = 1;
        goto out;
    }
    if (!to_stdout) {
        rc = get_install(g.fd, get_tmp_path, out);
        if (rc == 0) {
            char sz[32];
            cli_fmt_size(size, sz, sizeof(sz));
            printf("%s: %s/%s of run %s, %s, sha256 %s (verified)\n", out, task, name,
                   cli_jstr(ptr, "run_id") ?: run, sz, want);
        }
    }
out:
    art_hasher_free(g.h);
    if (!to_stdout) {
        close(g.fd);
        if (rc != 0)
            unlink(get_tmp_path);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        free(get_tmp_path);
        get_tmp_path = NULL;
    }
    json_decref(ptr);
    free(copy);
    return rc;
}

static int
artifacts_gc(int argc, char **argv)
{
    struct artifacts_args a = {0};
    int nargs, prc = opt_parse(&artifacts_gc_cmd, argc, argv, &a, &nargs);
    if (prc != OPT_GO)
        return prc;
    const char *server = a.server;
    long keep_last = 0;
    int64_t older = 0, min_age = -1;
    int json = a.json, dry = a.dry;
    char uerr[256];
    if (a.keep_last)
        cli_parse_positive(a.keep_last, &keep_last); /* checked by the parser */
    if (a.older && (units_parse_duration(a.older, &older, uerr, sizeof(uerr)) != 0 || older <= 0)) {
        fprintf(stderr, "cairn: artifacts gc: --older-than: %s\n",
                older <= 0 && !uerr[0] ? "the duration must be more than 0" : uerr);
        opt_usage(&artifacts_gc_cmd, stderr);
        return 2;
    }
    if (a.min_age && units_parse_duration(a.min_age, &min_age, uerr, sizeof(uerr)) != 0) {
        fprintf(stderr, "cairn: artifacts gc: --min-age: %s\n", uerr);
        opt_usage(&artifacts_gc_cmd, stderr);
        return 2;
    }
    json_t *body = json_pack("{s:b}", "dry_run", dry);
    if (keep_last)
        json_object_set_new(body, "keep_last", json_integer(keep_last));
    if (older)
        json_object_set_new(body, "older_than_ms", json_integer(older));
    if (min_age >= 0)
        json_object_set_new(body, "min_age_ms", json_integer(min_age));
    json_t *r = NULL;
    char err[1024];
    /* the blob sweep may take long on a big store */
    client_set_timeout_ms(0);
    int rc = client_post_json(client_server_url(server), "/api/v1/artifacts/gc", body, &r, err,
                              sizeof(err));
    json_decref(body);
    if (rc != 0) {
        fprintf(stderr, "cairn: artifacts gc: %s\n", err);
        return 1;
    }
    if (json) {
        cli_print_json(r);
        json_decref(r);
        return 0;
    }
    json_int_t nruns = json_integer_value(json_object_get(r, "runs"));
    json_int_t nptr = json_integer_value(json_object_get(r, "pointers_removed"));
    json_int_t nblob = json_integer_value(json_object_get(r, "blobs_removed"));
    json_int_t ntmp = json_integer_value(json_object_get(r, "tmp_removed"));
    char pb[32], bb[32], tb[32], age[UNITS_DURATION_BUFSZ];
    cli_fmt_size(json_integer_value(json_object_get(r, "pointer_bytes")), pb, sizeof(pb));
    cli_fmt_size(json_integer_value(json_object_get(r, "blob_bytes")), bb, sizeof(bb));
    cli_fmt_size(json_integer_value(json_object_get(r, "tmp_bytes")), tb, sizeof(tb));
    units_format_duration(json_integer_value(json_object_get(r, "min_age_ms")), age, sizeof(age));
    const char *verb = dry ? "would remove" : "removed";
    printf("%s %" JSON_INTEGER_FORMAT " artifact pointer%s (%s) of %" JSON_INTEGER_FORMAT
           " finished run%s; %" JSON_INTEGER_FORMAT " kept\n",
           verb, nptr, nptr == 1 ? "" : "s", pb, nruns, nruns == 1 ? "" : "s",
           json_integer_value(json_object_get(r, "pointers_kept")));
    printf("%s %" JSON_INTEGER_FORMAT " blob%s (%s) and %" JSON_INTEGER_FORMAT
           " temporary file%s (%s); %" JSON_INTEGER_FORMAT
           " blob%s kept (referenced, or younger than %s)\n",
           verb, nblob, nblob == 1 ? "" : "s", bb, ntmp, ntmp == 1 ? "" : "s", tb,
           json_integer_value(json_object_get(r, "blobs_kept")),
           json_integer_value(json_object_get(r, "blobs_kept")) == 1 ? "" : "s", age);
    json_decref(r);
    return 0;
}

static const struct opt_sub artifacts_subs[] = {
    {"list", &artifacts_list_cmd, artifacts_list},
    {"get", &artifacts_get_cmd, artifacts_get},
    {"gc", &artifacts_gc_cmd, artifacts_gc},
};

static const struct opt_group artifacts_group = {
    .name = "artifacts",
    .about = "List a run's artifacts, download one (checked against its digest), or remove\n"
             "those outside a retention.",
    OPT_SUBS(artifacts_subs),
};

static int
artifacts_main(int argc, char **argv)
{
    return opt_dispatch(&artifacts_group, argc, argv);
}

const struct cli_command cmd_artifacts = {"artifacts", artifacts_main, NULL, &artifacts_group};
