/* cairn - the command users type. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

struct cli_cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

/* Sorted by name; `cairn help` prints this table. */
static const struct cli_cmd cli_cmds[] = {
    {"artifacts", cmd_artifacts, "artifacts list|get|gc [RUN] [TASK/NAME -o FILE] [--json]"},
    {"backfill", cmd_backfill,
     "backfill DAG --from D --to D [--reprocess none|failed|all] [--dry-run] [--wait] | "
     "list | show ID | cancel ID"},
    {"clear", cmd_clear, "clear RUN [--dag D] [--task T] [--downstream] [--failed-only]"},
    {"cron", cmd_cron, "cron next EXPR [--tz ZONE] [--after TIME] [-n N]"},
    {"dags", cmd_dags, "dags list|show|pause|unpause|next-runs [DAG] [--json]"},
    {"lineage", cmd_lineage, "lineage SHA256 | RUN TASK/NAME [--dag D] [--json]"},
    {"logs", cmd_logs, "logs RUN TASK [--dag D] [--attempt N] [--follow]"},
    {"metrics", cmd_metrics, "metrics DAG [--metric NAME] [--last N] [--json]"},
    {"render", cmd_render, "render FILE [--date D] [--param k=v]..."},
    {"runs", cmd_runs, "runs list|show|retry|cancel [RUN] [--dag D] [--state S] [--limit N] [--json]"},
    {"standalone", cmd_standalone, "standalone [--dags DIR] [--data DIR] [--http HOST:PORT]"},
    {"trigger", cmd_trigger,
     "trigger DAG [--param k=v]... [--logical-date D] [--no-cache] [--wait] [--json]"},
    {"validate", cmd_validate, "validate [--json] PATH..."},
    {"workers", cmd_workers, "workers [--json]"},
};

int
cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("cairn: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 2;
}

static void
cli_help(FILE *out)
{
    fputs("usage: cairn COMMAND [ARGS]\n\ncommands:\n", out);
    for (size_t i = 0; i < sizeof(cli_cmds) / sizeof(cli_cmds[0]); i++)
        fprintf(out, "  %s\n", cli_cmds[i].summary);
    fputs("\nSee docs/ for the manual.\n", out);
}

int
main(int argc, char **argv)
{
    /* a global --server before the command works like CAIRN_SERVER */
    while (argc >= 2 && strncmp(argv[1], "--server", 8) == 0) {
        const char *v = NULL;
        if (argv[1][8] == '=') {
            v = argv[1] + 9;
            argc -= 1;
            argv += 1;
        } else if (argv[1][8] == '\0' && argc >= 3) {
            v = argv[2];
            argc -= 2;
            argv += 2;
        } else {
            return cli_usage_error("--server needs a URL");
        }
        setenv("CAIRN_SERVER", v, 1);
    }
    if (argc < 2) {
        cli_help(stderr);
        return 2;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        cli_help(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        puts("cairn 0.1.0");
        return 0;
    }
    for (size_t i = 0; i < sizeof(cli_cmds) / sizeof(cli_cmds[0]); i++)
        if (strcmp(argv[1], cli_cmds[i].name) == 0)
            return cli_cmds[i].fn(argc - 1, argv + 1);
    cli_help(stderr);
    return cli_usage_error("unknown command '%s'", argv[1]);
}
