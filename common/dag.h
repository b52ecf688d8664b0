/* dag.h - the pipeline model: a DAG file loaded, checked and resolved
 * (prefix: dag_).
 *
 * dag_load_* parse YAML (ynode.h), check every rule of docs/dag-yaml.md and
 * report every problem with its file, line and column into a diag_list. A
 * DAG is returned only when there was no error; it is then immutable and can
 * be shared read-only by any number of threads.
 *
 * Ownership: a struct dag owns every string and array it points to (freed by
 * dag_free), except `tz`, which is borrowed from the tz cache. The loaders
 * borrow buf and file for the call only. Pointers returned into a DAG
 * (dag_param_find, a task's fields) are valid until dag_free.
 */
#ifndef CAIRN_DAG_H
#define CAIRN_DAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cron.h"
#include "diag.h"
#include "hmap.h"

struct expr;
struct tz;

#define DAG_NAME_MAX 64

enum dag_trigger {
    DAG_TRIGGER_ALL_SUCCESS,
    DAG_TRIGGER_ALL_DONE,
    DAG_TRIGGER_ALL_FAILED,
    DAG_TRIGGER_ONE_SUCCESS,
    DAG_TRIGGER_ONE_FAILED,
    DAG_TRIGGER_NONE_FAILED,
};

struct dag_kv {
    char *key;
    char *value;
};

struct dag_param {
    char *name;
    char *value;    /* as written (numbers keep their spelling); a list: its JSON text */
    bool is_number; /* an unquoted YAML number */
    bool is_bool;   /* an unquoted true/false */
    bool is_list;   /* a YAML sequence (of scalars or flat mappings): value is a JSON array */
};

struct dag_input {
    char *name;      /* mounted at /inputs/<name> */
    char *task;      /* producing task */
    char *file;      /* one of that task's outputs */
    size_t task_idx; /* index of task in dag->tasks */
    bool optional;   /* absent (not an error) when that task did not succeed */
    bool fan_in;     /* task is mapped and this task is not its zip: every instance's file,
                        under /inputs/<name>/<index>/<file>, with /inputs/<name>/manifest.json */
    bool zip;        /* task is this (mapped) task's zip upstream: the instance with the
                        same index, at /inputs/<name> */
};

/* Fan-out: how many instances a task has and what each gets as `item`
 * (docs/dag-yaml.md, "Fan-out"). Instances are named TASK[INDEX]. */
enum dag_map_kind {
    DAG_MAP_NONE,   /* not mapped: one task instance */
    DAG_MAP_MATRIX, /* matrix: the cross product (include/exclude applied), known at load */
    DAG_MAP_PARAM,  /* map: {over: params.NAME}: that list param, overridable per run */
    DAG_MAP_FROM,   /* map: {from: TASK/FILE}: a JSON list an upstream wrote, read at run time */
    DAG_MAP_ZIP,    /* map: {zip: TASK}: one instance per instance of a mapped upstream, the
                       same index; instance i waits for that upstream's instance i only */
};

struct dag_map {
    enum dag_map_kind kind;
    char *items_json;     /* MATRIX: the expanded list as compact JSON text, in order: an
                             array of objects {key: value} (values: numbers, strings,
                             booleans); "[]" when exclude removed everything: no instances */
    size_t nitems;        /* MATRIX: its length, at most dag.max_map_items */
    char *param;          /* PARAM: the param's name */
    char *from_task;      /* FROM: the upstream task (in needs, not mapped itself), and
                             its output holding the list */
    char *from_file;
    size_t from_task_idx;
    char *zip_task; /* ZIP: the mapped upstream (in needs; mapped in any way,
                       zip included) */
    size_t zip_task_idx;
};

/* A host folder in the task's container. Workers refuse, at lease time,
 * a host folder outside the folders their operator allows (--allow-mount). */
struct dag_mount {
    char *host;    /* absolute, no "." or ".." parts, no repeated or trailing '/' */
    char *path;    /* where in the container: absolute, as host; not /, and not
                    * one of Cairn's own mount points or inside one (/inputs
                    * /outputs /workspace /pipeline /tmp /proc /dev /sys) */
    bool readonly; /* true unless the file says readonly: false */
};

/* Notifications (docs/dag-yaml.md, "Notifications and deadlines"): the
 * events an entry of `notify:` listens to, as bits of dag_notify.on. */
enum dag_notify_event {
    DAG_EV_FAILURE = 1u << 0,
    DAG_EV_RETRY = 1u << 1,
    DAG_EV_SUCCESS = 1u << 2,
    DAG_EV_DEADLINE_MISSED = 1u << 3,
    DAG_EV_METRIC_REGRESSION = 1u << 4,
};
#define DAG_NEVENTS 5

/* One entry of a `notify:` list: where its events go (a webhook or a
 * command on the scheduler's host, exactly one of them). */
struct dag_notify {
    unsigned on;            /* DAG_EV_* bits, at least one */
    char *webhook;          /* http:// or https:// URL, or NULL */
    char *secret_file;      /* the HMAC key's file (absolute: relative paths are the DAG
                             * file's folder's), or NULL = unsigned */
    char **command;         /* argv (NULL-terminated), or NULL */
    size_t ncommand;
    char *metric_task;      /* metric_regression: the task whose metric is watched (a
                             * task-level entry: that task), or NULL without `metric:` */
    size_t metric_task_idx;
    char *metric_name;
    double metric_drop;     /* fires when the metric fell by more than this */
    int line, col;          /* where the entry is */
};

/* `deadline:`: when the work must have finished. */
enum dag_deadline_kind {
    DAG_DEADLINE_NONE,
    DAG_DEADLINE_AFTER_START,        /* ms after the run (task instance) started */
    DAG_DEADLINE_AFTER_LOGICAL_DATE, /* ms after the run's logical date (DAG only) */
};

struct dag_deadline {
    enum dag_deadline_kind kind;
    int64_t ms;
};

struct dag_task {
    char *name;
    int line, col;          /* where the task's key is */
    char **command;         /* argv, templates unrendered; ncommand >= 1 */
    size_t ncommand;
    char **entrypoint;      /* `entrypoint:` (not rendered), or NULL */
    size_t nentrypoint;
    bool has_entrypoint;    /* the key was given (an empty list clears the image's) */
    char *image;            /* "host" or an absolute rootfs path */
    struct dag_kv *env;     /* sorted by key; values unrendered */
    size_t nenv;
    struct dag_kv *secrets; /* env name -> secret name (resolved by the scheduler at
                             * lease time, never stored), sorted by env name */
    size_t nsecrets;
    size_t *needs;          /* upstream task indices, as listed */
    size_t nneeds;
    size_t *downstream;     /* direct downstream task indices */
    size_t ndownstream;
    enum dag_trigger trigger_rule;
    int retries;
    int64_t retry_delay_ms;
    double retry_backoff;   /* >= 1; delay n = retry_delay * backoff^(n-1) */
    int64_t max_retry_delay_ms;
    int64_t timeout_ms;     /* 0 = none */
    int64_t max_log_size;   /* `max_log_size`: bytes; 0 = not set (the worker's
                             * --max-log-size), -1 = no limit (`max_log_size: 0`) */
    bool log_limit_fail;    /* `on_log_limit: fail`: the task fails at max_log_size
                             * (else the log is cut there and the task goes on) */
    double cpus;            /* 0 = no limit */
    int64_t memory_bytes;   /* 0 = no limit */
    int64_t pids;           /* 0 = no limit */
    int gpus;               /* whole GPUs the task needs (0..DAG_MAX_GPUS), 0 = none */
    char *gpu_type;         /* with gpus: a selector of the GPUs' model, or NULL = any */
    struct dag_input *inputs;
    size_t ninputs;
    char **outputs;         /* file names under /outputs; metrics included */
    size_t noutputs;
    int64_t max_output_size;  /* bytes one output may have; 0 = no limit */
    int64_t max_outputs_size; /* bytes the outputs of an attempt may have together;
                               * 0 = no limit */
    char *metrics;          /* output holding flat JSON numbers, or NULL */
    char **metric_keys;     /* declared metric names (optional), NULL if none */
    size_t nmetric_keys;
    char *when;             /* source text, or NULL */
    struct expr *when_expr; /* parsed `when`, or NULL */
    bool cache;             /* reuse an earlier identical attempt's outputs */
    char **publish;         /* outputs copied to the models folder on success */
    size_t npublish;
    int priority;
    struct dag_kv *labels;  /* worker selector, sorted by key */
    size_t nlabels;
    bool network;
    struct dag_mount *mounts; /* in file order, paths distinct */
    size_t nmounts;
    struct dag_map map; /* kind DAG_MAP_NONE unless the task fans out; a mapped task
                         * has no `publish` */
    int max_parallel;   /* at most this many of its instances at once; 0 = no limit
                         * (set only on a mapped task) */
    struct dag_notify *notify; /* the task's own `notify:` (never from defaults) */
    size_t nnotify;
    struct dag_deadline deadline; /* the task's own `deadline:` (after_start only) */
};

/* Event triggers (`trigger:`, docs/dag-yaml.md "Event triggers"): what
 * creates a run besides the schedule and manual triggers. */
enum dag_event_kind {
    DAG_EVENT_PUBLISH, /* on_publish: DAG/TASK released a new version */
    DAG_EVENT_FILE,    /* on_file: a new or changed file in a folder */
    DAG_EVENT_WEBHOOK, /* on_webhook: an HMAC-signed POST .../events */
};

struct dag_event {
    enum dag_event_kind kind;
    int line, col;          /* where its value is (for diagnostics) */
    char *dag, *task;       /* PUBLISH: the upstream DAG and its publishing task */
    char *path;             /* FILE: the folder watched (absolute) */
    char *pattern;          /* FILE: fnmatch(3) pattern of file names ("*" by default) */
    int64_t settle_ms;      /* FILE: unchanged this long before it counts */
    char *secret_file;      /* WEBHOOK: the HMAC-SHA256 key's file (absolute) */
};

/* One condition of `trigger:`; the conditions are "any of". A single event
 * (all false, nevents 1) or `all: [...]`: every listed event has happened
 * since the condition last created a run. */
struct dag_event_cond {
    bool all;
    struct dag_event *events;
    size_t nevents;
};

/* The params an event gives a run (declared implicitly, empty by default). */
#define DAG_PARAM_RELEASE_PATH "release_path"
#define DAG_PARAM_RELEASE_DIGEST "release_digest"
#define DAG_PARAM_RELEASE_ID "release_id"
#define DAG_PARAM_FILE_PATH "file_path"
#define DAG_PARAM_FILE_DIGEST "file_digest"
#define DAG_DEFAULT_SETTLE_MS 30000

struct dag {
    char *name;
    char *file;             /* path it was loaded from */
    char *description;      /* may be NULL */
    char *code;             /* folder mounted read-only at /pipeline (as written:
                             * relative to the DAG file's folder), or NULL */
    char *schedule;         /* source text, or NULL = manual only */
    struct cron cron;       /* valid when schedule != NULL */
    char *timezone;         /* IANA name; "UTC" by default */
    const struct tz *tz;    /* borrowed from the tz cache */
    bool has_start, has_end;
    int64_t start_date;     /* UTC seconds */
    int64_t end_date;
    bool catchup;
    int max_active_runs;
    int max_active_tasks;
    struct dag_param *params;
    size_t nparams;
    char **tags;
    size_t ntags;
    struct dag_task *tasks; /* in file order */
    size_t ntasks;
    size_t *topo;           /* task indices in a topological order */
    int64_t max_map_items;  /* instances of one mapped task at most */
    struct dag_notify *notify; /* the DAG's `notify:` */
    size_t nnotify;
    struct dag_deadline deadline; /* the DAG's `deadline:` */
    struct dag_event_cond *conds; /* `trigger:` (any of them), or NULL */
    size_t nconds;
    char version[65];       /* SHA-256 (hex) of the file's bytes */
    struct hmap by_name;    /* task name -> index (dag_task_index); keys are the
                             * tasks' names */
};

/* Defaults of fields a DAG does not set. */
#define DAG_DEFAULT_MAX_ACTIVE_RUNS 16
#define DAG_DEFAULT_MAX_ACTIVE_TASKS 16
#define DAG_DEFAULT_RETRY_DELAY_MS 30000
#define DAG_DEFAULT_MAX_RETRY_DELAY_MS 3600000
#define DAG_DEFAULT_MAX_MAP_ITEMS 100000
#define DAG_DEFAULT_MAX_OUTPUT_SIZE (10LL << 30) /* max_output_size: 10 GiB */
#define DAG_MAX_MAP_ITEMS 1000000 /* the largest max_map_items a file may set */
#define DAG_MAX_GPUS 64           /* the most GPUs a task may ask for */
#define DAG_PARAM_MAX_BYTES 65536 /* the longest value of a param that is not a list
                                   * (a default or an override); lists are bounded by
                                   * max_map_items */

/* Load and check a file. Returns 0 and *out on success; otherwise a negative
 * code with every problem in dl (CAIRN_EPARSE for an invalid DAG, CAIRN_EIO
 * for an unreadable file). dl may also hold warnings on success. */
int dag_load_file(struct dag **out, const char *path, struct diag_list *dl);
/* Same for bytes in memory; file names the source in diagnostics. */
int dag_load_buffer(struct dag **out, const char *buf, size_t len, const char *file,
                    struct diag_list *dl);
void dag_free(struct dag *d);

/* Index of a task by name, or -1. O(n); use for tools, not hot paths. */
long dag_task_index(const struct dag *d, const char *name);
const struct dag_param *dag_param_find(const struct dag *d, const char *name);

const char *dag_trigger_name(enum dag_trigger t);
/* An event's name ("failure", "deadline_missed"...) for one DAG_EV_* bit,
 * and the reverse (0 if unknown). */
const char *dag_event_name(unsigned ev);
unsigned dag_event_parse(const char *name);
/* "on_publish", "on_file", "on_webhook" */
const char *dag_event_kind_name(enum dag_event_kind k);
/* Does d have an event of kind k (in any condition)? */
bool dag_has_event(const struct dag *d, enum dag_event_kind k);

/* What a run renders its templates with. */
struct dag_run_ctx {
    int64_t logical_date;        /* UTC seconds: the data interval's start */
    int64_t data_interval_end;   /* UTC seconds */
    const char *run_id;
    /* per-run parameter overrides ("name" -> "value"); may be NULL */
    const struct dag_kv *overrides;
    size_t noverrides;
    /* the instance of a mapped task being rendered: its item as JSON text (a
     * string, number, boolean, null, object or array) and index; item_json
     * NULL: not an instance (map_index is then ignored). {{ item }} renders a string as its text,
     * other scalars as JSON, objects and arrays as compact JSON; {{ item.KEY }}
     * (also item.A.B) a member by the same rule; {{ map_index }} the index. */
    const char *item_json;
    long map_index;
    /* {{ max(TASK.metrics.NAME) }} and the other aggregates of `when`
     * (expr.h) over a mapped upstream's instances: 0 and *out (argmax: the
     * index), nonzero when there is no such value; NULL = none available */
    int (*aggregate)(void *ud, const char *fn, const char *task, const char *metric,
                     double *out);
    void *aggregate_ud;
    /* previews (`cairn render`): item names without item_json and
     * aggregates without `aggregate` stay as written instead of failing */
    bool keep_unresolved;
};

/* Compute a run's data interval for a logical date: [t, next tick) for a
 * scheduled DAG, [t, t] for a manual-only DAG. */
void dag_interval(const struct dag *d, int64_t logical_date, int64_t *end);

/* Render a task's command and env for a run. Sets malloc'd NULL-terminated
 * arrays *argv and *envp ("K=V") on success: the task's env, then every
 * param (its override or default) as CAIRN_PARAM_<NAME> (upper case, each
 * byte that is not a letter or digit as '_'; the first param wins a
 * clash; a list param longer than DAG_PARAM_MAX_BYTES is left out). Returns CAIRN_EPARSE with err
 * filled if a template cannot be rendered (an override of an unknown
 * param is rejected earlier by dag_check_overrides). */
int dag_render_task(const struct dag *d, size_t task, const struct dag_run_ctx *rc,
                    char ***argv, char ***envp, char *err, size_t errlen);
void dag_strv_free(char **v);

/* The host folder for `code:` (malloc'd): as is if absolute, else relative
 * to the folder of dag_file. */
char *dag_code_path(const char *code, const char *dag_file);

/* Check "k=v" overrides against the DAG's params: every k must be a
 * declared param. Returns 0, or CAIRN_ENOENT with err ("unknown param
 * 'lr'; did you mean 'lr0'?"), or CAIRN_EINVAL with err when a value is longer
 * than DAG_PARAM_MAX_BYTES, the value of a param whose default is a number
 * is not a number (or of a boolean's not true or false), or the value for
 * a list param is not a JSON list of numbers, strings, booleans and flat
 * objects, or has more than max_map_items items while a task maps over it. */
int dag_check_overrides(const struct dag *d, const struct dag_kv *ov, size_t n, char *err,
                        size_t errlen);

/* An instance's name, "TASK[INDEX]", into buf (returned; truncated to len
 * bytes with its NUL: DAG_INSTANCE_NAME_MAX is always enough). Task names
 * never contain '[' or ']', so an instance name is never a task's. */
#define DAG_INSTANCE_NAME_MAX (DAG_NAME_MAX + 24)
char *dag_instance_name(const char *task, long index, char *buf, size_t len);
/* Split an instance name: the task part into task (tasklen bytes) and the
 * index returned; -1 for a plain task name (copied whole); -2 if malformed
 * ("t[", "t[x]", "t[-1]", "t[01]", a task part too long). */
long dag_instance_parse(const char *name, char *task, size_t tasklen);

/* The first schedule tick at or after local midnight of a bare date (or the
 * instant itself when a time was given); for manual DAGs the instant. Used
 * by `render --date` and backfill to turn user dates into logical dates. */
int64_t dag_logical_date_for(const struct dag *d, int64_t secs, int has_time, int has_offset);

#endif
