/* cli.h - the `cairn` command table (prefix: cmd_).
 *
 * Each command file exports one struct cli_command; cli/main.c lists them
 * (sorted by name) and prints `cairn help` from their option tables
 * (cli/opt.h), the same tables that parse their arguments and print their
 * --help. Everything a struct cli_command points at is static data.
 */
#ifndef CAIRN_CLI_H
#define CAIRN_CLI_H

struct opt_cmd;
struct opt_group;

struct cli_command {
    const char *name; /* the word after `cairn` */
    /* Runs the command with argv[0] = name; returns the process exit code:
     * 0 ok, 1 a failure the command reports (invalid DAG, run failed, the
     * scheduler unreachable), 2 a usage error (or, for validate, no DAG
     * file found), 130 interrupted. */
    int (*run)(int argc, char **argv);
    const struct opt_cmd *cmd;     /* its table, for a command without sub-commands */
    const struct opt_group *group; /* or its sub-commands' tables */
};

/* Offline: on files and expressions. */
extern const struct cli_command cmd_certs;      /* cmd_certs.c */
extern const struct cli_command cmd_cron;       /* cmd_cron.c */
extern const struct cli_command cmd_render;     /* cmd_render.c */
extern const struct cli_command cmd_standalone; /* cmd_standalone.c */
extern const struct cli_command cmd_tokens;     /* cmd_tokens.c */
extern const struct cli_command cmd_validate;   /* cmd_validate.c */
/* Through the scheduler's HTTP API. */
extern const struct cli_command cmd_artifacts;
extern const struct cli_command cmd_backfill;
extern const struct cli_command cmd_clear;
extern const struct cli_command cmd_dags;
extern const struct cli_command cmd_lineage;
extern const struct cli_command cmd_logs;
extern const struct cli_command cmd_metrics;
extern const struct cli_command cmd_models; /* cmd_models.c */
extern const struct cli_command cmd_runs;
extern const struct cli_command cmd_trigger;
extern const struct cli_command cmd_workers;

/* Print "cairn: " + message to stderr; returns 2 (usage) for chaining. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
