/* events.h - runs created by events: `trigger:` (prefix: ev_); see
 * docs/dag-yaml.md, "Event triggers".
 *
 * The engine's file for the three kinds of event and what combines them:
 *   on_publish  ev_on_release, called by pubjob.c when a release becomes
 *               `latest`: every DAG whose trigger names that DAG/TASK takes it
 *   on_file     a sensor per watched folder, run on the loop: inotify
 *               (uv_fs_event) and a rescan every EV_RESCAN_MS notice files;
 *               a file whose size and mtime stay the same for `settle` is
 *               hashed on libuv's thread pool, and taken if its digest is
 *               not the one seen last for its path
 *   on_webhook  ev_webhook, for POST /api/v1/dags/D/events (api_events.c)
 * A condition of one event creates a run at once; an `all:` group keeps the
 * events it has had (with their params) until each has come, then creates
 * one run and starts over. Runs get run_type "event" and an `event` object.
 *
 * What an event took is remembered in STORE_META (schema_key_event): each
 * file's path with the digest last taken, each release taken, each group's
 * events so far. Those records are written in the same group commit as the
 * run they made (a participant), so a scheduler killed at any instant
 * neither loses an event nor takes one twice.
 *
 * Loop thread only. The watches follow the DAGs' current versions (checked
 * on every schedule pass); a paused DAG's files wait (they are taken when
 * it is unpaused), its publishes and webhooks are refused.
 */
#ifndef CAIRN_SCHED_EVENTS_H
#define CAIRN_SCHED_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct sched;
struct sched_run;

/* How often a watched folder is read again, whatever inotify says. */
#define EV_RESCAN_MS 3000

/* Install (sched_new, before recovery): the participant and the tick hook. */
void ev_init(struct sched *s);
/* Stop the watches (sched_stop): each handle closed and each hash job in
 * flight adds one to s->closing_handles and takes it off when done. */
void ev_stop(struct sched *s);
void ev_free(struct sched *s);

/* A release of dag/task became `latest` (pubjob.c): release is its name,
 * dir its folder, files [{name, sha256, size}] (borrowed). */
void ev_on_release(struct sched *s, const char *dag, const char *task, const char *run_id,
                   const char *release, const char *dir, const json_t *files);

/* The digest on_publish gives a release: SHA-256 (hex, into out[65]) of
 * the lines "SHA256  NAME\n" of files ([{name, sha256}]) in their order. */
void ev_release_digest(const json_t *files, char out[65]);

/* A webhook for dag: body (len bytes) signed by sig (the X-Cairn-Signature
 * header, may be NULL) with the key of one of its on_webhook events.
 * On 0, *out is the run created (answer once committed). Errors, with err:
 * CAIRN_ENOENT (no such DAG, or none of its conditions is on_webhook),
 * CAIRN_EAUTH (no key signs the body), CAIRN_EIO (a secret_file cannot be
 * read or is empty), CAIRN_EINVAL (the body is not a JSON object of
 * declared params with scalar values), CAIRN_ESTATE (the DAG is paused or
 * the scheduler stops). */
int ev_webhook(struct sched *s, const char *dag, const void *body, size_t len, const char *sig,
               struct sched_run **out, char *err, size_t errlen);

#endif
