/* cliutil.h - what several `cairn` commands share (prefix: cli_): numbers,
 * talking to the scheduler's JSON API and waiting on it, reading JSON fields,
 * formatting times, durations and sizes, and printing runs and their tasks
 * (the runs table, and the task table with the errors, notes and metrics
 * below it, that `runs show` and `trigger --wait` print alike).
 *
 * Times are printed in the local time zone (TZ); durations as 850ms, 12.3s,
 * 4m05s, 2h03m, 3d04h; sizes as 340 B, 1.2 MiB.
 *
 * For a single-threaded command-line program: messages go to stderr with a
 * "cairn: " prefix, output to stdout; allocation failures abort (util.h).
 * Pointers passed in are borrowed for the call.
 */
#ifndef CAIRN_CLIUTIL_H
#define CAIRN_CLIUTIL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct opt_cmd;
struct sb;
struct table;

/* ---- arguments ---------------------------------------------------------- */

/* Parse s as a positive decimal integer (the whole string). Returns 0 with
 * *out set, -1 (*out untouched) if s is not one. */
int cli_parse_positive(const char *s, long *out);

/* ---- talking to the scheduler ------------------------------------------- */

/* Append "?key=value" or "&key=value" (value percent-encoded) to the path in
 * sb, '&' once sb holds a '?'; nothing when value is NULL. */
void cli_query_add(struct sb *sb, const char *key, const char *value);

/* Append "/api/v1/runs/RUN" + tail + "?dag=DAG" to sb, run_id encoded; tail
 * (appended as it is) and dag may be NULL. */
void cli_run_path(struct sb *sb, const char *run_id, const char *tail, const char *dag);

/* GET path from server (client_get_json). Returns 0 with *out the parsed
 * answer, owned by the caller; on failure prints "cairn: MESSAGE" to stderr
 * and returns 1 (the exit code), *out untouched. */
int cli_api_get(const char *server, const char *path, json_t **out);

/* Print j to stdout, indented by 2, with a newline (nothing if it cannot be
 * encoded). j is borrowed. */
void cli_print_json(const json_t *j);

/* ---- signals and waiting ------------------------------------------------ */

/* Handle signal sig with handler (sigaction: empty mask, no SA_RESTART, so
 * blocking calls return EINTR). */
void cli_on_signal(int sig, void (*handler)(int));

/* Route SIGINT to a flag that cli_interrupted reads, so that a waiting loop
 * can stop and tidy up instead of dying. */
void cli_catch_sigint(void);

/* Whether SIGINT arrived since cli_catch_sigint. */
int cli_interrupted(void);

/* Sleep until since + ms on the monotonic clock (clock_mono_ms). Returns at
 * once if that time has passed or SIGINT was caught (cli_catch_sigint), and
 * early when SIGINT arrives during the sleep. */
void cli_sleep_until(int64_t since, int64_t ms);

/* Whether a failed call (its error code) may succeed if repeated: the
 * scheduler unreachable (restarting) or slow, CAIRN_ENET or CAIRN_ETIMEOUT. */
int cli_is_transient(int rc);

/* How often trigger --wait and logs --follow ask the scheduler. */
#define CLI_POLL_INTERVAL_MS 200

/* How long a loop polling the scheduler waits before asking again after a
 * transient failure, and how long such failures may go on before it gives
 * up (trigger --wait, backfill --wait, logs --follow). */
#define CLI_POLL_RETRY_MS 1000
#define CLI_POLL_GIVE_UP_MS 60000

/* A polling loop's record of failures in a row. Start it zeroed; zero
 * unreachable_since again after every call that succeeds. */
struct cli_poll {
    int64_t unreachable_since; /* monotonic ms of the first failure; 0: none */
};

/* After a transient failure (message err) of the call the loop made at t0
 * (clock_mono_ms): the first of a row prints lead (written as it is, e.g.
 * "\n" to end a progress line; "" for none) and "cairn: ERR; retrying" to
 * stderr; once the row lasts more than CLI_POLL_GIVE_UP_MS, it prints
 * "cairn: gave up waiting for the scheduler" and returns 0 (stop). Otherwise
 * sleeps until t0 + CLI_POLL_RETRY_MS and returns 1 (ask again). */
int cli_poll_retry(struct cli_poll *p, int64_t t0, const char *err, const char *lead);

/* ---- JSON fields and times ---------------------------------------------- */

/* The string field key of o, borrowed from o; NULL if missing or not a
 * string (o may be NULL). */
const char *cli_jstr(const json_t *o, const char *key);

/* The integer field key of o: 1 with *out set if it is an integer, 0 (*out
 * untouched) otherwise. */
int cli_jint(const json_t *o, const char *key, json_int_t *out);

/* The API timestamp field key of o ("2026-11-23T09:22:50Z"; without an
 * offset it means UTC) as seconds since the epoch: 1 with *secs set, 0 if it
 * is null, missing or not a timestamp. */
int cli_jtime(const json_t *o, const char *key, int64_t *secs);

/* Format secs as "2026-11-23 10:00:01" in the local time zone (TZ), or only
 * the time of day ("10:00:01") when time_only; "?" if it cannot be. */
void cli_fmt_time(int64_t secs, int time_only, char *buf, size_t len);

/* The timestamp field key of o formatted as cli_fmt_time; "" when unset.
 * When ref (seconds) is nonzero and on the same local day, only the time of
 * day. */
void cli_fmt_field_time(const json_t *o, const char *key, int64_t ref, char *buf, size_t len);

/* ---- text --------------------------------------------------------------- */

/* Append s to sb quoted the way a POSIX shell would read it back as one
 * word: as it is when it is only safe characters, else in single quotes. */
void cli_shell_quote(struct sb *sb, const char *s);

/* ---- durations, states, sizes ------------------------------------------ */

/* ms as "850ms", "12.3s", "4m05s", "2h03m" or "3d04h" (0 if negative). */
void cli_fmt_duration(int64_t ms, char *buf, size_t len);

/* ms in whole seconds below a minute ("5s"), else as cli_fmt_duration: for
 * clocks that tick while a command watches (elapsed, "last seen ... ago"). */
void cli_fmt_seconds(int64_t ms, char *buf, size_t len);

/* How long a run or task (o) took: its duration_ms when given, else
 * ended_at - started_at, else (still going) now - started_at; "" when it has
 * not started. */
void cli_fmt_object_duration(const json_t *o, char *buf, size_t len);

/* A task's error for people: its error text, else how its attempt ended
 * ("exit code 1", "timeout", "oom", "SIGKILL"); "" if none. */
void cli_fmt_task_error(const json_t *task, char *buf, size_t len);

/* The first 12 characters of the version hash o[key]; "" when null. */
void cli_fmt_version(const json_t *o, const char *key, char *buf, size_t len);

/* n bytes as "340 B", "1.2 MiB", "12 GiB". */
void cli_fmt_size(int64_t n, char *buf, size_t len);

/* A table cell with a run, task or worker state, in its color. */
void cli_cell_state(struct table *t, const char *state);

/* Whether a task state is one it does not leave (success, failed,
 * upstream_failed, skipped, cancelled). */
int cli_task_ended(const char *state);

/* ---- runs and their tasks ----------------------------------------------- */

/* "key           value" (the key padded to 14), "-" for a NULL or empty
 * value: the header lines of `runs show`, `dags show` and `backfill show`. */
void cli_print_header_line(const char *key, const char *value);

/* GET the runs (of dag, in state, at most limit, after the page that
 * cursor ends; each may be NULL) and print them as a table, or as the API's
 * JSON (its "next_cursor" included). With hint, the table is followed by
 * the --cursor of the next page when there is one. Returns the exit code:
 * 0, or 1 after printing the error. */
int cli_runs_list(const char *server, const char *dag, const char *state, const char *limit,
                  const char *cursor, int json, int hint);

/* The task table of a run object: state, attempts, worker, start, end,
 * duration and how the last attempt ended, per task. */
void cli_print_task_table(const json_t *run, int color);

/* Below the task table: why tasks failed, are retrying or were skipped.
 * Under a failed or retrying task's line, the last error_lines lines of
 * its stderr (the task's stderr_tail, if the scheduler gives it), indented,
 * control characters shown as '?'; 0: none. */
void cli_print_task_errors(const json_t *run, int color, int error_lines);

/* How many stderr lines a failed task's summary shows by default
 * (--error-lines). */
#define CLI_ERROR_LINES_DEFAULT 5

/* The value of --error-lines (an OPT_NUM0 option, so checked by the
 * parser): CLI_ERROR_LINES_DEFAULT when v is NULL; at most INT_MAX. */
int cli_error_lines(const char *v);

/* Below the task table: where cached tasks came from, where tasks
 * published. */
void cli_print_task_notes(const json_t *run);

/* Below the task table: "metrics:" and one line per task that stored some
 * ("evaluate  accuracy=0.9556  f1=0.95"). */
void cli_print_task_metrics(const json_t *run);

/* ---- arguments shared by several commands ------------------------------- */

/* Add "--param NAME=VALUE" (v) to the JSON object params. Returns 0, or 2
 * after printing the problem and cmd's usage (opt_fail). */
int cli_param_add(json_t *params, const char *v, const struct opt_cmd *cmd);

/* Split "TASK/NAME": 0 with *copy a malloc'd copy of arg the caller frees
 * and *task, *name pointing into it; -1 (nothing set) if arg is not of that
 * form. */
int cli_split_task_name(const char *arg, char **copy, const char **task, const char **name);

/* "/api/v1/runs/RUN/artifacts/TASK/NAME" + tail (as it is; may be NULL) +
 * "?dag=DAG" (when dag is not NULL), each part encoded; malloc'd, the
 * caller frees it. */
char *cli_artifact_path(const char *run, const char *task, const char *name, const char *tail,
                        const char *dag);

#endif
