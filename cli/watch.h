/* watch.h - following a run until it ends, the live view of `trigger
 * --wait` and `runs retry --wait` (prefix: watch_).
 *
 * While the run goes on, a line for each task that changes state
 * ("12:00:01 train running (attempt 1 on w1)") and, when stdout is a
 * terminal, a progress line under them; once it ends, the task table with
 * the errors, metrics and notes below it (cliutil.h) and the outcome ("run
 * RUN failed in 6.0s"). A scheduler that cannot be reached for a while (a
 * restart) is asked again, as cli_poll_retry says.
 *
 * For a single-threaded command-line program: output to stdout, messages to
 * stderr with a "cairn: " prefix; it catches SIGINT (cli_catch_sigint).
 */
#ifndef CAIRN_WATCH_H
#define CAIRN_WATCH_H

#include <jansson.h>

/* Follow run run_id of DAG dag (may be NULL when the id is unique) on
 * server until it is success, failed or cancelled, then print how it
 * ended; with json, print nothing while waiting and then the final run
 * object (as the API returns it). start (borrowed, may be NULL) is the run
 * as the request that (re)started it answered: its tasks that had ended
 * then are not reported as changes (a retry keeps its successes), unless
 * they change again. Each failed task's summary shows the last
 * error_lines lines of its stderr (0: none; see cli_print_task_errors).
 * Returns the exit code: 0 the run succeeded, 1 it failed or was
 * cancelled, or the scheduler answered with an error or stayed unreachable
 * (the message went to stderr), 130 Ctrl-C (the run goes on). */
int watch_run(const char *server, const char *run_id, const char *dag, const json_t *start,
              int json, int error_lines);

#endif
