/* cmd_lineage.c - `cairn lineage`: where an artifact came from, through the
 * scheduler's HTTP API (docs/api.md; the manual is docs/cli.md).
 *
 * It owns the lineage option table and the printing of the tree the API
 * answers: each artifact with the attempt that stored it (run, image,
 * command, env), then its inputs, drawn with box characters. Exit codes as
 * cli.h says: 0 done, 1 the scheduler is unreachable or answered with an
 * error, 2 a usage error.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "cliutil.h"
#include "opt.h"
#include "util.h"

struct lineage_args {
    const char *server, *dag;
    int json;
};

static const struct opt lineage_opts[] = {
    OPT_STR("--dag", NULL, "D", struct lineage_args, dag,
            "the DAG of RUN, needed when another DAG has a run with that id"),
    OPT_FLAG("--json", NULL, struct lineage_args, json, "print the API's answer as JSON"),
    OPT_SERVER(struct lineage_args, server),
};

static const struct opt_cmd lineage_cmd = {
    .name = "lineage",
    .args = "SHA256 | RUN TASK/NAME",
    .max_args = 2,
    .about = "Show where an artifact came from: the attempt that stored it (run, image,\n"
             "command) and, recursively, the artifacts that attempt was given. SHA256 may be\n"
             "shortened to its first 8 or more characters.",
    OPT_TABLE(lineage_opts),
};

/* One artifact of the tree and what it was made from. first prefixes its
 * header line, rest the lines below it. */
static void
lineage_print(const json_t *n, const char *label, const char *first, const char *rest)
{
    char size[32];
    cli_fmt_size((int64_t)json_integer_value(json_object_get(n, "size")), size, sizeof(size));
    printf("%s%s  sha256:%.12s  %s\n", first, label, cli_jstr(n, "sha256") ?: "?", size);
    const json_t *inputs = json_object_get(n, "inputs");
    size_t nin = json_array_size(inputs);
    char *pre = xasprintf("%s%s", rest, nin ? "\u2502 " : "  ");
    char ended[40];
    cli_fmt_field_time(n, cli_jstr(n, "ended_at") ? "ended_at" : "created_at", 0, ended,
                       sizeof(ended));
    printf("%srun      %s %s, attempt %" JSON_INTEGER_FORMAT "%s%s%s%s\n", pre,
           cli_jstr(n, "dag") ?: "?", cli_jstr(n, "run_id") ?: "?",
           json_integer_value(json_object_get(n, "attempt")), cli_jstr(n, "worker") ? " on " : "",
           cli_jstr(n, "worker") ?: "", ended[0] ? ", ended " : "", ended);
    if (json_is_true(json_object_get(n, "repeated"))) {
        printf("%s(this attempt is shown above)\n", pre);
        free(pre);
        return;
    }
    if (!json_is_true(json_object_get(n, "provenance"))) {
        printf("%s(image, command and inputs were not recorded: the attempt predates "
               "provenance)\n",
               pre);
        free(pre);
        return;
    }
    printf("%simage    %s\n", pre, cli_jstr(n, "image") ?: "?");
    if (cli_jstr(n, "code_digest"))
        printf("%scode     sha256:%s\n", pre, cli_jstr(n, "code_digest"));
    struct sb cmd;
    sb_init(&cmd);
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(n, "argv"), i, a)
    {
        if (i)
            sb_putc(&cmd, ' ');
        cli_shell_quote(&cmd, json_string_value(a) ?: "");
    }
    printf("%scommand  %s\n", pre, cmd.buf ? cmd.buf : "");
    sb_free(&cmd);
    struct sb env;
    sb_init(&env);
    json_array_foreach(json_object_get(n, "env"), i, a)
    {
        const char *e = json_string_value(a);
        if (!e || !strncmp(e, "CAIRN_", 6))
            continue;
        if (env.len)
            sb_putc(&env, ' ');
        cli_shell_quote(&env, e);
    }
    if (env.len)
        printf("%senv      %s\n", pre, env.buf);
    sb_free(&env);
    struct sb secs;
    sb_init(&secs);
    json_array_foreach(json_object_get(n, "secrets"), i, a)
    {
        const char *se = json_string_value(json_object_get(a, "env"));
        const char *sn = json_string_value(json_object_get(a, "name"));
        if (se && sn)
            sb_printf(&secs, "%s%s (secret %s)", secs.len ? ", " : "", se, sn);
    }
    if (secs.len)
        printf("%ssecrets  %s\n", pre, secs.buf);
    sb_free(&secs);
    if (json_is_true(json_object_get(n, "truncated")))
        printf("%s(deeper inputs not shown)\n", pre);
    free(pre);
    json_t *in;
    json_array_foreach(inputs, i, in)
    {
        int last = i + 1 == nin;
        char *f = xasprintf("%s%s", rest, last ? "\u2514\u2500 " : "\u251c\u2500 ");
        char *r = xasprintf("%s%s", rest, last ? "   " : "\u2502  ");
        char *lab = xasprintf("%s \u2190 %s/%s", cli_jstr(in, "name") ?: "?",
                              cli_jstr(in, "task") ?: "?", cli_jstr(in, "file") ?: "?");
        const json_t *from = json_object_get(in, "from");
        if (json_is_object(from))
            lineage_print(from, lab, f, r);
        else
            printf("%s%s  sha256:%.12s  (its pointer was removed by artifacts gc)\n", f, lab,
                   cli_jstr(in, "sha256") ?: "?");
        free(f);
        free(r);
        free(lab);
    }
}

static int
lineage_main(int argc, char **argv)
{
    struct lineage_args la = {0};
    int nargs, prc = opt_parse(&lineage_cmd, argc, argv, &la, &nargs);
    if (prc != OPT_GO)
        return prc;
    if (nargs == 0)
        return opt_fail(&lineage_cmd, "missing SHA256 or RUN TASK/NAME", NULL);
    const char *server = la.server, *dag = la.dag, *a1 = argv[1], *a2 = nargs > 1 ? argv[2] : NULL;
    int json = la.json;
    char *path;
    if (a2) {
        char *copy = NULL;
        const char *task, *name;
        if (cli_split_task_name(a2, &copy, &task, &name) != 0)
            return opt_fail(&lineage_cmd, "give the artifact as TASK/NAME, not", a2);
        path = cli_artifact_path(a1, task, name, "/lineage", dag);
        free(copy);
    } else {
        if (dag)
            return opt_fail(&lineage_cmd, "--dag goes with RUN TASK/NAME, not with", a1);
        char *e = client_urlencode(a1);
        path = xasprintf("/api/v1/lineage/%s", e);
        free(e);
    }
    json_t *resp = NULL;
    int rc = cli_api_get(client_server_url(server), path, &resp);
    free(path);
    if (rc != 0)
        return 1;
    if (json) {
        cli_print_json(resp);
        json_decref(resp);
        return 0;
    }
    const json_t *root = json_object_get(resp, "lineage");
    char *lab = xasprintf("%s/%s", cli_jstr(root, "task") ?: "?", cli_jstr(root, "name") ?: "?");
    lineage_print(root, lab, "", "");
    free(lab);
    size_t ri;
    json_t *rel;
    json_array_foreach(json_object_get(resp, "releases"), ri, rel)
    {
        struct sb st;
        sb_init(&st);
        size_t k;
        json_t *v;
        json_array_foreach(json_object_get(rel, "stages"), k, v)
        {
            sb_printf(&st, "%s%s", k ? "," : "", json_string_value(v));
        }
        printf("\npublished as %s/%s/%s%s%s%s\n", cli_jstr(rel, "dag") ?: "?",
               cli_jstr(rel, "task") ?: "?", cli_jstr(rel, "release") ?: "?",
               st.len ? " (holds " : "", st.len ? st.buf : "", st.len ? ")" : "");
        sb_free(&st);
        json_array_foreach(json_object_get(rel, "history"), k, v)
        {
            char at[64];
            cli_fmt_field_time(v, "at", 0, at, sizeof(at));
            printf("  %s  %s %s -> %s by %s\n", at, cli_jstr(v, "action") ?: "?",
                   cli_jstr(v, "stage") ?: "?", cli_jstr(v, "release") ?: "?",
                   cli_jstr(v, "by") ?: "?");
        }
    }
    json_int_t np = json_integer_value(json_object_get(resp, "producers"));
    if (np > 1) {
        printf("\nThe same bytes were also stored by %" JSON_INTEGER_FORMAT " other task%s:\n",
               np - 1, np == 2 ? "" : "s");
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(resp, "also_produced_by"), i, e)
        {
            printf("  %s %s %s/%s (attempt %" JSON_INTEGER_FORMAT ")\n", cli_jstr(e, "dag") ?: "?",
                   cli_jstr(e, "run_id") ?: "?", cli_jstr(e, "task") ?: "?",
                   cli_jstr(e, "name") ?: "?", json_integer_value(json_object_get(e, "attempt")));
        }
        if ((json_int_t)json_array_size(json_object_get(resp, "also_produced_by")) < np - 1)
            printf("  ...\n");
    }
    json_decref(resp);
    return 0;
}

const struct cli_command cmd_lineage = {"lineage", lineage_main, &lineage_cmd, NULL};
