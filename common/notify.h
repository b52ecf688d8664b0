/* notify.h - the pure parts of notifications and deadlines (prefix:
 * notify_): retry backoff, the HMAC signature of a webhook's body, when a
 * deadline falls, whether a metric regressed, and the text line of an
 * event. No I/O but notify_secret_read; the scheduler's queue and sender
 * are scheduler/notifier.c.
 */
#ifndef CAIRN_NOTIFY_H
#define CAIRN_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dag.h"

/* Deliveries tried before one is recorded as failed. */
#define NOTIFY_MAX_ATTEMPTS 8
/* The wait after the first failed try; doubled after each, at most
 * NOTIFY_BACKOFF_MAX_MS. */
#define NOTIFY_BACKOFF_BASE_MS 1000
#define NOTIFY_BACKOFF_MAX_MS 300000
/* A webhook's request (connect included) or a command gets this long. */
#define NOTIFY_TIMEOUT_MS 10000
/* The secret file is read up to this size. */
#define NOTIFY_SECRET_MAX 4096

/* The wait before try number `failed + 1` after `failed` (>= 1) failed
 * tries: base * 2^(failed-1), capped at max. */
int64_t notify_backoff_ms(int failed, int64_t base_ms, int64_t max_ms);

/* "sha256=" + the hex HMAC-SHA256 of body under key, into out (at least
 * NOTIFY_SIG_LEN + 1 bytes). 0, or CAIRN_EINVAL if OpenSSL refuses. */
#define NOTIFY_SIG_LEN (7 + 64)
int notify_sign(const void *key, size_t keylen, const void *body, size_t bodylen, char *out);

/* Read a secret file: its bytes without trailing newlines (as $(cat FILE)
 * gives them in a shell). 0 and *key (malloc'd) and *len, or a negative
 * code with err (missing, unreadable, empty, larger than NOTIFY_SECRET_MAX). */
int notify_secret_read(const char *path, char **key, size_t *len, char *err, size_t errlen);

/* When a deadline falls (wall ms), for work that started at started_ms
 * (wall ms, 0 = not started) of a run at logical_date (UTC seconds); 0 if
 * it has none or cannot be known yet (after_start before a start). */
int64_t notify_deadline_at(const struct dag_deadline *d, int64_t logical_date, int64_t started_ms);

/* Did a metric go from prev to cur by more than drop (prev - cur > drop)? */
bool notify_regressed(double prev, double cur, double drop);

#endif
