/* schema.h - the keys and records of the state store (prefix: schema_).
 *
 * The only place that knows how LMDB keys are built (the separator 0x1f
 * exists nowhere else) and how each record type is laid out. The engine
 * writes records through these encoders and reads them back through the
 * decoders; the HTTP API reads them the same way, never field by field.
 *
 * Keys (tables of store.h):
 *   STORE_RUNS          dag SEP run_id
 *   STORE_TIS           dag SEP run_id SEP task
 *                       ... SEP %010ld(index)  (an instance of a mapped task)
 *   STORE_ATTEMPTS      dag SEP run_id SEP task SEP %06d(attempt)
 *   STORE_ARTIFACTS     dag SEP run_id SEP task SEP name
 *                       ... SEP attempt-%06d  (a pointer a later attempt superseded)
 *   STORE_ARTIFACT_SHAS sha256 SEP <artifact key>
 *   STORE_DAG_SOURCES   dag SEP version
 *   STORE_META          "cache/" hex (step cache entries), "lease_seq", counters,
 *                       "stage/" dag SEP task SEP %012lld(seq) (the models
 *                       folder's stage changes, in order)
 *   STORE_BACKFILLS     id, id SEP "dates"
 *   STORE_NOTIFICATIONS event_id SEP %04d(target): a delivery of one event to
 *                       one `notify:` entry
 *   STORE_META also     "event/" dag SEP what: an event trigger's memory
 *                       (schema_key_event: a file or release seen, an
 *                       `all:` group's events so far)
 * Names (DAG, run id, task, file) never contain the separator: the DAG
 * loader refuses such names and run ids are made by the scheduler.
 *
 * Records are JSON objects (store.h adds "v", the record version). Times are
 * ISO 8601 UTC strings with milliseconds ("2026-01-05T03:00:00.125Z") or
 * null; in the structs they are wall-clock milliseconds, 0 = none.
 * Decoders borrow: every string and json_t* in a decoded struct points into
 * the record given (valid as long as it is). They fail with CAIRN_EPROTO
 * (a required field missing or mistyped: err names it) or CAIRN_EVERSION (a
 * record version this build does not read, err says which), never with a
 * half-filled struct: *out is written only on success. Encoders borrow the
 * struct and return a new object (json_t* members are referenced, not
 * copied).
 */
#ifndef CAIRN_SCHEMA_H
#define CAIRN_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define SCHEMA_SEP "\x1f"
#define SCHEMA_SEP_CHAR '\x1f'
/* Record versions this build writes and reads (store.h's "v"). */
#define SCHEMA_RECORD_VERSION 1

/* ---- keys (each a new malloc'd string) ---- */
char *schema_key_run(const char *dag, const char *run_id);
char *schema_key_ti(const char *dag, const char *run_id, const char *task);
/* An instance of a mapped task: the task's key SEP %010ld(index), so a
 * task's instances are together, in index order, right after it. */
char *schema_key_instance(const char *dag, const char *run_id, const char *task, long index);
char *schema_key_attempt(const char *dag, const char *run_id, const char *task, int attempt);
char *schema_key_artifact(const char *dag, const char *run_id, const char *task,
                          const char *name);
/* The key a superseded pointer of attempt moves to (artifact key + SEP attempt-%06d). */
char *schema_key_artifact_old(const char *artifact_key, int64_t attempt);
char *schema_key_artidx(const char *sha256, const char *artifact_key);
char *schema_key_dag_source(const char *dag, const char *version);
char *schema_key_cache(const char *hex);
char *schema_key_backfill_dates(const char *backfill_id);
/* A stage change of the models folder's DAG/TASK (its seq-th, from 1): the
 * changes of one DAG/TASK are together, in order, under
 * schema_key_stage_prefix. */
char *schema_key_stage(const char *dag, const char *task, int64_t seq);
char *schema_key_stage_prefix(const char *dag, const char *task);
char *schema_key_notification(const char *event_id, int target);
/* STORE_META "event/" dag SEP what (what: a file "file/C.E/PATH", a release
 * "pub/C.E/DAG/TASK/RELEASE", a group "all/SIGNATURE"; C.E the condition's
 * and event's index in `trigger:`). */
char *schema_key_event(const char *dag, const char *what);
/* key + SEP: the prefix of everything below key (a DAG's runs, a run's task
 * instances or artifacts, a task's attempts, a digest's index entries). */
char *schema_prefix(const char *key);
/* Join a run key ("dag SEP run_id") and a name below it. */
char *schema_key_below(const char *key, const char *name);

/* Split key at its separators into at most n parts (pointers into buf, a
 * copy of key the caller frees). Returns the number of parts. */
size_t schema_key_split(const char *key, char **buf, const char **parts, size_t n);
/* Length of the first `parts` parts of key, separators between them
 * included (the run key of an artifact key: 2), or 0 if key has fewer. */
size_t schema_key_prefix_len(const char *key, size_t parts);

/* ---- times ---- */
/* wall ms as an ISO 8601 UTC string with milliseconds, or JSON null for 0. */
json_t *schema_time_json(int64_t wall_ms);
/* The reverse; 0 for null, absent or unparsable. */
int64_t schema_time_parse(const json_t *v);
/* A UTC second as "YYYY-MM-DDTHH:MM:SSZ" (logical dates). */
void schema_date_format(int64_t secs, char *buf, size_t len);

/* ---- records ---- */

/* STORE_RUNS */
struct schema_run {
    const char *dag, *run_id;     /* required */
    const char *state;            /* required: queued running success failed cancelled */
    const char *run_type;         /* manual scheduled backfill event; "manual" if absent */
    int64_t logical_date;         /* UTC seconds */
    int64_t interval_end;         /* UTC seconds (data_interval_end) */
    int64_t created_at, started_at, ended_at; /* wall ms */
    const char *dag_version;      /* required */
    json_t *params;               /* {name: "text"}, the run's overrides, or NULL */
    int64_t seq;                  /* creation order */
    bool no_cache;
    const char *backfill_id;      /* or NULL */
    json_t *task_counts;          /* {state: n} of its task instances (mapped tasks count
                                     once), or NULL */
    int64_t ntasks;               /* how many task instances it has (0: not recorded) */
    json_t *images;               /* {image reference: "sha256:..."}: the tags pinned when the
                                     run was created, or NULL */
    int64_t deadline_missed_at;   /* wall ms its `deadline:` passed while it ran, 0 = not */
    bool pinning;                 /* its image tags are still being resolved (not started) */
    json_t *event;                /* run_type "event": what caused it, {kind, source, ...}
                                     (docs/dag-yaml.md, "Event triggers"), or NULL */
    const char *code_digest;      /* the `code:` snapshot's tree manifest (sha256), or NULL */
};

/* STORE_TIS */
struct schema_ti {
    const char *task;             /* required */
    const char *state;            /* required */
    int attempts, max_attempts, lost, attempt_base;
    int64_t lease_id;
    const char *worker;           /* or NULL */
    int64_t queued_at, started_at, ended_at, next_try_at; /* wall ms */
    int exit_code;                /* -1 = none */
    int signal;
    bool oom_killed, timed_out;
    const char *error;            /* or NULL */
    int64_t log_size;
    int64_t log_lost; /* bytes of output the scheduler could not store */
    json_t *outputs;              /* [{name, sha256, size, uri}] or NULL (written as []) */
    json_t *metrics;              /* {name: number} or NULL (written as {}) */
    bool publishing;
    bool cached;
    json_t *cached_from;          /* {dag, run_id, task, attempt} or NULL */
    bool no_cache;
    const char *cache_key;        /* 64 hex digits or NULL */
    const char *image_digest;     /* "sha256:..." the attempt's image resolved to, or NULL */
    json_t *published;            /* {path, latest, files} or NULL */
    json_t *stderr_tail;          /* the attempt's last stderr lines [string] or NULL */
    bool is_instance;             /* an instance of a mapped task (task is "name[index]") */
    long map_index;               /* its index (meaningful when is_instance) */
    json_t *map;                  /* a mapped task's group: {n, items_sha, manifest_sha,
                                     counts: {state: n}}, or NULL */
    json_t *gpus;                 /* [index...]: the GPUs of its current or last attempt's
                                     worker, or NULL (none; absent in older records) */
    int64_t deadline_missed_at;   /* wall ms its `deadline:` passed while it ran, 0 = not */
    json_t *excluded;             /* [worker name...]: workers that could not get its inputs
                                     and are not leased it again, or NULL (none) */
};

/* STORE_ATTEMPTS */
struct schema_attempt {
    int attempt;                  /* required, >= 1 */
    int64_t lease_id;
    const char *worker;
    const char *state;            /* required: leased running success failed cancelled */
    int64_t started_at, ended_at;
    int exit_code, signal;
    bool oom_killed, timed_out;
    const char *error;
    int64_t log_size;
    int64_t log_lost; /* bytes of output the scheduler could not store */
    int64_t duration_ms;
    /* provenance: what the attempt was given (NULL for records written
     * before attempts carried it) */
    const char *image;
    const char *image_digest;     /* a pulled image's pinned digest, or NULL */
    json_t *argv, *env, *inputs;
    json_t *secrets;              /* [{env, name}] of its `secrets:`: names, never values */
    json_t *stderr_tail;          /* its last stderr lines [string] or NULL (absent) */
};

/* STORE_ARTIFACTS */
struct schema_artifact {
    const char *name, *sha256;    /* required */
    int64_t size;
    const char *uri;
    const char *dag, *run_id, *task;
    int64_t attempt;
    int64_t created_at;
    json_t *cached_from;          /* or NULL */
    bool superseded;
};

/* STORE_ARTIFACT_SHAS: the pointers by digest */
struct schema_artidx {
    const char *dag, *run_id, *task, *name;
    int64_t attempt;
    int64_t created_at;
};

/* STORE_DAGS */
struct schema_dag {
    const char *name;             /* required */
    const char *file, *version;   /* or NULL */
    bool paused;
    bool has_cursor;
    int64_t cursor;               /* latest scheduled logical date created (UTC s) */
};

/* STORE_META "stage/...": a release of the models folder took a stage
 * (promote) or was put back on it (rollback) */
struct schema_stage {
    const char *dag, *task;       /* required */
    const char *stage;            /* required: production staging */
    const char *action;           /* required: promote rollback */
    const char *release;          /* required: the release that holds the stage after it */
    const char *previous;         /* the release that held it before, or NULL */
    const char *by;               /* required: the API token's name, or "local" */
    int64_t at;                   /* wall ms */
    int64_t seq;                  /* its place among the changes of dag/task, from 1 */
};

/* STORE_NOTIFICATIONS: one event's delivery to one target */
struct schema_notification {
    const char *event_id;         /* required: the event's own id (one per transition) */
    int target;                   /* which entry of the DAG's (or task's) `notify:` list */
    const char *event;            /* required: failure retry success deadline_missed
                                     metric_regression */
    const char *dag, *run_id;     /* required */
    const char *task;             /* or NULL (an event of the run) */
    const char *kind;             /* required: webhook or command */
    const char *url;              /* webhook: its URL */
    const char *secret_file;      /* webhook: the HMAC key's file, or NULL */
    json_t *command;              /* command: argv [string] */
    const char *state;            /* required: pending delivered failed */
    int attempts;                 /* deliveries tried */
    int max_attempts;
    int64_t created_at, next_at, delivered_at; /* wall ms */
    const char *last_error;       /* or NULL */
    json_t *body;                 /* required: the event as sent (an object) */
};

json_t *schema_notification_encode(const struct schema_notification *n);
int schema_notification_decode(const json_t *j, struct schema_notification *out, char *err,
                               size_t errlen);
/* STORE_META "event/...": what an event trigger has taken (a file's digest,
 * a release) and the run it made, so a restart takes it once */
struct schema_event_seen {
    const char *digest;           /* a file's sha256 (hex), or NULL */
    const char *run_id;           /* the run it created, or NULL (an `all:` group took it) */
    int64_t at;                   /* wall ms */
    int64_t size, mtime_ns;       /* a file's size and mtime then (-1, 0: not recorded) */
};

json_t *schema_event_seen_encode(const struct schema_event_seen *e);
int schema_event_seen_decode(const json_t *j, struct schema_event_seen *out, char *err,
                             size_t errlen);

json_t *schema_run_encode(const struct schema_run *r);
int schema_run_decode(const json_t *j, struct schema_run *out, char *err, size_t errlen);
json_t *schema_ti_encode(const struct schema_ti *t);
int schema_ti_decode(const json_t *j, struct schema_ti *out, char *err, size_t errlen);
json_t *schema_attempt_encode(const struct schema_attempt *a);
int schema_attempt_decode(const json_t *j, struct schema_attempt *out, char *err,
                          size_t errlen);
json_t *schema_artifact_encode(const struct schema_artifact *a);
int schema_artifact_decode(const json_t *j, struct schema_artifact *out, char *err,
                           size_t errlen);
json_t *schema_artidx_encode(const struct schema_artidx *x);
int schema_artidx_decode(const json_t *j, struct schema_artidx *out, char *err, size_t errlen);
json_t *schema_dag_encode(const struct schema_dag *d);
int schema_dag_decode(const json_t *j, struct schema_dag *out, char *err, size_t errlen);
json_t *schema_stage_encode(const struct schema_stage *x);
int schema_stage_decode(const json_t *j, struct schema_stage *out, char *err, size_t errlen);

/* The record version of j ("v"; 1 if absent). CAIRN_EVERSION with err if
 * this build cannot read it. Every decoder checks it first. */
int schema_check_version(const json_t *j, const char *what, char *err, size_t errlen);

#endif
