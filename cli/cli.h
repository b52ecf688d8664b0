/* cli.h - the `cairn` command's subcommands (prefix: cmd_).
 * Each takes argc/argv starting at the subcommand's own name and returns the
 * process exit code: 0 ok, 1 a failure the command reports (invalid DAG, run
 * failed), 2 a usage error. */
#ifndef CAIRN_CLI_H
#define CAIRN_CLI_H

int cmd_validate(int argc, char **argv);
int cmd_artifacts(int argc, char **argv);
int cmd_standalone(int argc, char **argv);
int cmd_render(int argc, char **argv);
int cmd_cron(int argc, char **argv);
/* Commands that talk to the scheduler's HTTP API (cmd_server.c). */
int cmd_backfill(int argc, char **argv);
int cmd_clear(int argc, char **argv);
int cmd_dags(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_runs(int argc, char **argv);
int cmd_trigger(int argc, char **argv);
int cmd_workers(int argc, char **argv);
/* ML pipelines (cmd_ml.c). */
int cmd_lineage(int argc, char **argv);
int cmd_metrics(int argc, char **argv);

/* Print "cairn: " + message to stderr; returns 2 (usage) for chaining. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
