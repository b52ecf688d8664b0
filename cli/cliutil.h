/* cliutil.h - helpers the `cairn` subcommands share (prefix: cli_):
 * numbers, talking to the scheduler's JSON API, waiting on it,
 * reading JSON fields and formatting times.
 *
 * For a single-threaded command-line program: messages go to stderr with a
 * "cairn: " prefix, output to stdout; allocation failures abort (util.h).
 */
#ifndef CAIRN_CLIUTIL_H
#define CAIRN_CLIUTIL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct sb;

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

#endif
