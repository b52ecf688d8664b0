/* main.c - `cairn`, the command users type: the command table and what comes
 * before a command's name.
 *
 * It owns the table of commands (sorted by name; each command file exports
 * its struct cli_command, see cli.h), `cairn help` (one line per command and
 * sub-command, printed from their option tables by opt_summary), --version,
 * and the global `--server URL` and `--token-file FILE` before the command,
 * which it hands on as $CAIRN_SERVER and $CAIRN_TOKEN. Everything after the command's name is the
 * command's.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "opt.h"

/* Sorted by name; `cairn help` lists them. */
static const struct cli_command *const cli_cmds[] = {
    &cmd_artifacts,  &cmd_backfill, &cmd_certs,   &cmd_clear,    &cmd_cron,    &cmd_dags,
    &cmd_lineage,    &cmd_logs,     &cmd_metrics, &cmd_models,   &cmd_render,  &cmd_runs,
    &cmd_standalone, &cmd_tokens,   &cmd_trigger, &cmd_validate, &cmd_workers,
};

#define CLI_NCMDS (sizeof(cli_cmds) / sizeof(cli_cmds[0]))

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

/* `cairn help`: one line per command and sub-command, from their tables. */
static void
cli_help(FILE *out)
{
    fputs("usage: cairn [--server URL] [--token-file FILE] COMMAND [ARGS]\n\ncommands:\n", out);
    for (size_t i = 0; i < CLI_NCMDS; i++) {
        const struct cli_command *c = cli_cmds[i];
        if (c->cmd)
            opt_summary(c->cmd, 2, out);
        for (size_t k = 0; c->group && k < c->group->nsubs; k++)
            opt_summary(c->group->subs[k].cmd, 2, out);
    }
    fputs(
        "\nThe commands that talk to the scheduler also take --server URL (default:\n"
        "$CAIRN_SERVER, else http://127.0.0.1:7780). A scheduler with --api-tokens needs\n"
        "a token: $CAIRN_TOKEN, or the file given with --token-file FILE. `cairn COMMAND\n"
        "--help` prints a command's options; docs/cli.md is the manual.\n",
        out);
}

/* Read the token in path (its first line, blanks trimmed) into $CAIRN_TOKEN. */
static int
cli_read_token_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[512];
    if (!f) {
        fprintf(stderr, "cairn: cannot read --token-file %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!fgets(line, sizeof(line), f))
        line[0] = '\0';
    fclose(f);
    size_t n = strcspn(line, " \t\r\n");
    line[n] = '\0';
    if (n == 0) {
        fprintf(stderr, "cairn: --token-file %s holds no token\n", path);
        return -1;
    }
    setenv("CAIRN_TOKEN", line, 1);
    memset(line, 0, sizeof(line));
    return 0;
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
    /* a global --token-file: the token, for the commands that call the API */
    while (argc >= 2 && strncmp(argv[1], "--token-file", 12) == 0) {
        const char *v = NULL;
        if (argv[1][12] == '=') {
            v = argv[1] + 13;
            argc -= 1;
            argv += 1;
        } else if (argv[1][12] == '\0' && argc >= 3) {
            v = argv[2];
            argc -= 2;
            argv += 2;
        } else {
            return cli_usage_error("--token-file needs a FILE");
        }
        if (cli_read_token_file(v) != 0)
            return 1;
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
    for (size_t i = 0; i < CLI_NCMDS; i++)
        if (strcmp(argv[1], cli_cmds[i]->name) == 0)
            return cli_cmds[i]->run(argc - 1, argv + 1);
    cli_help(stderr);
    const char *names[CLI_NCMDS];
    for (size_t i = 0; i < CLI_NCMDS; i++)
        names[i] = cli_cmds[i]->name;
    const char *close = opt_closest(argv[1], names, CLI_NCMDS);
    if (close)
        return cli_usage_error("unknown command '%s' (did you mean '%s'?)", argv[1], close);
    return cli_usage_error("unknown command '%s'", argv[1]);
}
