/* notifier.h - durable notifications of `notify:` (prefix: ntf_).
 *
 * An event (a task failed for good, went up for retry, succeeded; a run
 * failed or succeeded; a deadline passed; a metric regressed) becomes one
 * delivery per matching `notify:` entry. Each delivery is a record of
 * STORE_NOTIFICATIONS (common/schema.h) written in the same group commit
 * as the transition that caused it (the notifier is a commit participant),
 * and is handed to the sender only once that commit is durable. The sender
 * is NTF_THREADS threads of its own (libcurl for webhooks, a child process
 * for commands), never the loop: results come back through a uv_async and
 * are committed like any change. A failed try is retried with exponential
 * backoff (notify.h) up to NOTIFY_MAX_ATTEMPTS, then recorded as failed.
 * At start every pending delivery is read back and sent (and finished ones
 * older than NTF_KEEP_MS are deleted), so a scheduler
 * killed between the transition and the delivery still delivers. A
 * delivery's key is its event id and target: an event is queued at most
 * once, and a delivered one is never sent again.
 *
 * All on the loop thread, except the sender threads, which touch only
 * their jobs.
 */
#ifndef CAIRN_SCHED_NOTIFIER_H
#define CAIRN_SCHED_NOTIFIER_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "model.h"

struct sched;
struct store_txn;

#define NTF_THREADS 2
/* `notifications list` and the API show at most this many (newest first). */
#define NTF_LIST_MAX 1000
/* Delivered and failed deliveries are forgotten (at start) after this. */
#define NTF_KEEP_MS (30LL * 86400000)

/* Register with the engine (participant, hooks) and read back pending
 * deliveries; call after recovery. 0 or a store error. */
int ntf_init(struct sched *s);
/* Start the sender threads and the timer; after ntf_init. */
void ntf_start(struct sched *s);
/* Stop the threads (transfers in flight are aborted and stay pending) and
 * close the handles; closed(h) runs once per handle, *nhandles says how
 * many. */
void ntf_stop(struct sched *s, uv_close_cb closed, int *nhandles);
void ntf_free(struct sched *s);

/* The base of links to the UI in events ("http://HOST:PORT"). */
void ntf_set_ui_url(struct sched *s, const char *url);

/* Events the deadline module raises: run r (ti NULL) or task instance ti
 * missed its deadline at at_ms. */
void ntf_deadline_missed(struct sched *s, struct sched_run *r, struct sched_ti *ti, int64_t at_ms);

/* The deliveries in the store, newest first, of dag (NULL = all), at most
 * limit: an array of the API's shape (docs/api.md). NULL with err on a
 * store error. */
json_t *ntf_list(struct sched *s, const char *dag, size_t limit, char *err, size_t errlen);

#endif
