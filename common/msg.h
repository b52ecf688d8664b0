/* msg.h - the typed messages of the worker protocol (prefix: msg_).
 *
 * proto.h frames bytes (header, MAC, a JSON object as body); this module
 * gives every body a C struct with one encoder and one strict decoder, so
 * neither daemon takes a message apart by hand. The JSON on the wire is the
 * one proto.h documents, field for field: old and new peers interoperate.
 *
 * Versioning: HELLO and WELCOME carry "msg_version" (absent = 1). A peer
 * speaks the lower of the two versions. Decoders ignore members they do not
 * know (a newer peer may add optional fields) and refuse a message whose
 * required members are missing or of the wrong type, naming the member with
 * its path: "field 'leases[2].memory' must be an integer". A field that is
 * optional is documented as such below and has the stated default when
 * absent (JSON null counts as absent).
 *
 * Ownership: a decoded struct owns every string and array it points to
 * (copies; the JSON it came from may go at once); msg_clear frees them and
 * zeroes the struct. Encoders borrow the struct and return a new json_t
 * object (never NULL for a well-formed struct) that the caller json_decrefs.
 * Strings in structs are NUL-terminated UTF-8; LOG data may hold any bytes
 * that are valid UTF-8 except NUL (its length is data_len): proto_decode
 * refuses a body with \u0000, so a NUL byte cannot cross the wire, and the
 * worker replaces it before it encodes. An encoder returns NULL only for a
 * struct that is not well-formed: a required string NULL, a string that is
 * not UTF-8 (msg_utf8_valid), LOG data with a NUL, a metric that is not
 * finite.
 *
 * Decoders return 0, or CAIRN_EPROTO with err set (out is then cleared: no
 * half-built struct is left for the caller to free).
 */
#ifndef CAIRN_MSG_H
#define CAIRN_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "proto.h"

#define MSG_VERSION 1

struct msg_kv {
    char *key;
    char *value;
};

/* A GPU a worker has (HELLO's gpus). */
struct msg_gpu {
    int64_t index;         /* required, 0..MSG_GPU_INDEX_MAX: its device, /dev/nvidiaINDEX */
    char *model;           /* optional, "": the model name ("NVIDIA A100-SXM4-80GB") */
};

#define MSG_GPU_INDEX_MAX 254 /* minor 255 is the control device, /dev/nvidiactl */
#define MSG_GPUS_MAX 256      /* the most GPUs a HELLO announces */

/* HELLO {worker, slots, labels:{k:v}, pid, host, msg_version, gpus:[{index, model}],
 *        cert, cert_sig, cert_ts, nonce} */
struct msg_hello {
    char *worker;          /* required, non-empty */
    int64_t slots;         /* required, 1..100000 */
    struct msg_kv *labels; /* optional object of strings (other values refused) */
    size_t nlabels;
    int64_t pid;           /* optional, 0 */
    char *host;            /* optional, "" */
    int64_t version;       /* msg_version, optional, 1 */
    int64_t prefetch;      /* optional, 0..1000, 0: leases the worker takes beyond its slots,
                              queued to start the moment a slot frees (encoded if not 0) */
    struct msg_gpu *gpus;  /* optional array, empty (a worker without GPUs, or one older
                              than GPUs: encoded only when there are some); indices
                              distinct, at most MSG_GPUS_MAX */
    size_t ngpus;
    char *cert;            /* optional: the worker's certificate (PEM) on a TLS link */
    char *cert_sig;        /* optional: its signature over worker and cert_ts (ident.h) */
    int64_t cert_ts;       /* optional, 0: the worker's clock (ms) when it signed */
    char *nonce;           /* optional: the challenge this connection was given (token) */
    char **direct_stores;  /* optional: the artifact stores (URIs) the worker reads and
                              writes itself; for any other it goes through the scheduler's
                              API (docs/architecture.md, "Artifacts without a shared
                              folder"); encoded only when there are some */
    size_t ndirect_stores;
};

/* WELCOME {lease_ttl_ms, heartbeat_ms, artifacts, msg_version} */
struct msg_welcome {
    int64_t lease_ttl_ms;  /* required, >= 1 */
    int64_t heartbeat_ms;  /* required, >= 1 */
    char *artifacts;       /* optional: the scheduler's artifact store URI, NULL */
    int64_t version;       /* optional, 1 */
    char *store_id;        /* optional: the id in the store's marker file (.cairn-store-id
                              at a file store's root), NULL: a worker that reads the same id
                              there sees the store itself */
    int64_t api_port;      /* optional, 0: the port of the scheduler's HTTP API, for
                              workers that move artifacts through it */
};

/* POLL {worker, free, leases:[lease_id...], wait_ms, seq, gave_up:[seq...]} */
struct msg_poll {
    char *worker;          /* required */
    int64_t free;          /* required, 0..100000 */
    int64_t *leases;       /* optional array of lease ids (>= 1) the worker holds */
    size_t nleases;
    int64_t wait_ms;       /* optional, 0..600000, 0 */
    char **images;         /* optional: the worker's unpacked images, "sha256:HEX" */
    size_t nimages;
    int64_t *image_sizes;  /* optional: their disk usage in bytes, as many as images */
    size_t nimage_sizes;
    int64_t seq;           /* optional, 0: this request's number (a worker numbers the
                              requests whose answer may bring leases, increasing) */
    int64_t *gave_up;      /* optional: the seq of earlier requests whose answer the worker
                              stopped waiting for (it never gets their leases) */
    size_t ngave_up;
};

struct msg_input {
    char *name;            /* required: mounted at /inputs/<name>; no '/', not . or .. */
    char *uri;             /* required */
    char *sha256;          /* required: 64 lower-case hex digits */
    char *manifest_file;   /* optional, NULL: a fan-in input (one path component, like
                              name). sha256 and uri are then a
                              manifest of a mapped task's instances (JSON {task, instances:
                              [{index, item, state, outputs: {FILE: {sha256, size, uri}}}]});
                              the worker puts each instance's manifest_file at
                              /inputs/<name>/<index>/<manifest_file> and a manifest.json
                              ([{index, item, sha256}]) at /inputs/<name>/manifest.json */
};

/* A host folder in the container (an element of a lease's mounts). Both
 * paths are absolute, without "." or ".." parts (the decoder refuses
 * others). The worker decides whether host is allowed (cairn-worker
 * --allow-mount). */
struct msg_mount {
    char *host;            /* required: the folder on the worker */
    char *path;            /* required: where the task sees it */
    bool readonly;         /* required */
};

/* A lease (an element of WORK's leases). Every field is required unless it
 * says otherwise: a lease missing "memory" is refused, never read as
 * unlimited. */
struct msg_lease {
    int64_t lease_id;      /* >= 1: the fencing number */
    char *dag, *run_id, *task;
    int64_t attempt;       /* >= 1 */
    char *logical_date;    /* ISO 8601 */
    char **argv;           /* at least one element */
    size_t nargv;
    char **env;            /* "K=V" each */
    size_t nenv;
    char *image;
    char **entrypoint;     /* optional: the task's `entrypoint:` (entrypoint_set) */
    size_t nentrypoint;
    bool entrypoint_set;   /* optional, false: the image's Entrypoint is used */
    int64_t timeout_ms;    /* 0 = none */
    int64_t max_log_size;  /* optional, 0: the worker's --max-log-size; else the task's
                              `max_log_size` in bytes, -1 for no limit (encoded if not 0) */
    bool log_limit_fail;   /* optional, false: `on_log_limit: fail` (the attempt is stopped
                              and fails at the limit; else the log is cut and it goes on) */
    double cpus;           /* a number, 0 = no limit */
    int64_t memory;        /* bytes, 0 = no limit */
    int64_t pids;          /* 0 = no limit */
    bool network;
    struct msg_input *inputs;
    size_t ninputs;
    char **outputs;        /* declared output file names */
    size_t noutputs;
    int64_t max_output_size;  /* optional, 0: the most bytes one output may have, 0 = no
                                 limit (encoded if not 0) */
    int64_t max_outputs_size; /* optional, 0: the most bytes of all outputs together */
    char *code;            /* optional: the host folder mounted at /pipeline, NULL
                              (sent as null, as the scheduler always did) */
    char *metrics;         /* optional: the metrics file among the outputs, NULL (null) */
    struct msg_mount *mounts; /* optional array, empty; encoded only when nmounts > 0 */
    size_t nmounts;
    int64_t *gpus;         /* optional: the GPUs allocated to the attempt (indices of the
                              worker's HELLO, 0..MSG_GPU_INDEX_MAX), none; encoded only when
                              there are some */
    size_t ngpus;
    char **secrets;        /* optional: "ENV=value" of the task's `secrets:`, resolved by the
                              scheduler for this lease only (never stored); encoded only
                              when there are some */
    size_t nsecrets;
    char **secret_names;   /* optional, as many as secrets: the secret's name of each (the
                              file /run/secrets/NAME) */
    size_t nsecret_names;
    char **mask_paths;     /* optional: host files and folders a task on the host's own
                              system (image host) must not see (the scheduler's key and
                              secrets) */
    size_t nmask_paths;
    char *xfer_token;      /* optional: this lease's credential for the scheduler's blob
                              routes (/api/v1/leases/ID/...), random, held in memory only;
                              NULL (older scheduler) */
    char *code_tree;       /* optional: the sha256 of the run's code snapshot (a tree
                              manifest in the artifact store, docs/dag-yaml.md "code"): the
                              worker builds the folder from the store and mounts it at
                              /pipeline (code is then NULL); NULL: none */
};

/* A lease of a WORK that did not decode: the worker reports it as failed
 * (by its id, if it had a valid one) instead of losing the whole WORK. */
struct msg_bad_lease {
    int64_t lease_id;      /* 0 if it had no valid lease_id */
    char *why;
};

/* WORK {leases:[lease...], cancel:[lease_id...]} */
struct msg_work {
    struct msg_lease *leases; /* required array (may be empty); the good ones */
    size_t nleases;
    struct msg_bad_lease *bad; /* decode only: the leases that were refused */
    size_t nbad;
    int64_t *cancel;       /* required array (may be empty) */
    size_t ncancel;
};

/* STARTED {worker, lease_id, age_ms} */
struct msg_started {
    char *worker;
    int64_t lease_id;      /* >= 1 */
    int64_t age_ms;        /* optional, 0: how long before sending the task started (the
                            * worker holds a STARTED briefly so that a short task's RESULT
                            * travels with it) */
};

/* LOG {worker, lease_id, stream: 1|2, offset, data} */
struct msg_log {
    char *worker;
    int64_t lease_id;      /* >= 1 */
    int stream;            /* optional, 1 (stdout) or 2 (stderr), 1 */
    int64_t offset;        /* >= 0: where data starts in the attempt's log */
    char *data;            /* data_len bytes (none of them NUL) + NUL */
    size_t data_len;
};

struct msg_output {
    char *name;
    char *sha256;          /* 64 lower-case hex digits */
    int64_t size;          /* >= 0 */
    char *uri;
};

struct msg_metric {
    char *name;
    double value;
    bool integer;          /* sent as a JSON integer (kept as one) */
    int64_t ivalue;        /* if integer: the exact value (a double holds 53 bits) */
};

/* RESULT {worker, lease_id, exit_code, signal, oom, timed_out, duration_ms,
 *         error, outputs:[...], metrics:{k:number}, interrupted, stderr_tail:[...]} */
struct msg_result {
    char *worker;
    int64_t lease_id;      /* >= 1 */
    int exit_code;         /* required, -1..255 (-1: did not run) */
    int signal;            /* optional, 0..128, 0 */
    bool oom;              /* optional, false */
    bool timed_out;        /* optional, false */
    bool interrupted;      /* optional: the worker was stopped under the task, false */
    bool input_unavailable; /* optional, false: the worker could not get an input (the
                               store unreachable from it): not the task's fault */
    int64_t duration_ms;   /* optional, >= 0, 0 */
    char *error;           /* optional, "" (never NULL once decoded) */
    struct msg_output *outputs; /* optional array, empty */
    size_t noutputs;
    struct msg_metric *metrics; /* optional object; members that are not numbers are
                                   dropped (a task's metrics file is the task's own) */
    size_t nmetrics;
    char **stderr_tail;    /* optional array of strings, NULL (encoded only when non-NULL):
                              the last lines of the attempt's stderr, oldest first, without
                              their newline (the worker sends at most 20 lines, 4 KiB, each
                              cut at 512 bytes); NULL-terminated once decoded */
    size_t nstderr_tail;
};

/* One item of a BATCH: STARTED, LOG or RESULT. An item that does not decode
 * does not fail the whole BATCH: its type is 0 and error says why, so the
 * scheduler answers that item alone with {ok:false}. Items of type 0 are
 * decode-only: the encoder leaves them out. */
struct msg_item {
    int type;              /* PROTO_STARTED, PROTO_LOG, PROTO_RESULT, or 0 */
    char *error;           /* why the item was refused (type 0), else NULL */
    union {
        struct msg_started started;
        struct msg_log log;
        struct msg_result result;
    } u;
};

/* BATCH {worker, items:[{type, body}...], free, seq, gave_up:[seq...]} */
struct msg_batch {
    char *worker;
    struct msg_item *items;
    size_t nitems;
    int64_t free;          /* optional, 0..100000, 0: how many leases the worker would take
                              in the ACK (encoded if not 0); older schedulers ignore it */
    int64_t seq;           /* optional, 0: as POLL's (set when free > 0) */
    int64_t *gave_up;      /* optional: as POLL's */
    size_t ngave_up;
};

/* ACK {ok, reason, code, results:[{ok, reason, code}...], work}: results only for
 * a BATCH (one per item, in order). */
struct msg_ack {
    bool ok;               /* required */
    char *reason;          /* optional, "" */
    char *code;            /* optional, NULL */
    struct msg_ack *results; /* optional: NULL = absent (encoded only if non-NULL or
                                nresults > 0); the results' own results are ignored */
    size_t nresults;
    struct msg_work *work; /* optional, NULL = absent: the leases handed out with the answer
                              to a BATCH that asked for some (free > 0), decoded as WORK's */
};

/* ERROR {code, message} */
struct msg_error {
    char *code;
    char *message;
};

/* Any message: type says which member of u is in use. */
struct msg {
    int type;              /* PROTO_* */
    union {
        struct msg_hello hello;
        struct msg_welcome welcome;
        struct msg_poll poll;
        struct msg_work work;
        struct msg_started started;
        struct msg_log log;
        struct msg_result result;
        struct msg_batch batch;
        struct msg_ack ack;
        struct msg_error error;
    } u;
};

/* Decode body (a JSON object, borrowed) of a message of type into *out.
 * CAIRN_EPROTO (a missing or mistyped field, an unknown type) with err. */
int msg_decode(int type, const json_t *body, struct msg *out, char *err, size_t errlen);
/* The JSON body of m (new object). */
json_t *msg_encode(const struct msg *m);
/* Free what m owns and zero it; NULL and a zeroed struct are no-ops. */
void msg_clear(struct msg *m);

/* Frame m (proto_encode of msg_encode). Same errors as proto_encode. */
int msg_pack(const struct proto_key *k, const struct msg *m, unsigned char **out,
             size_t *outlen);
/* proto_decode and msg_decode in one. Errors of either. */
int msg_unpack(const struct proto_key *k, const unsigned char *buf, size_t len, struct msg *out,
               char *err, size_t errlen);

/* The pieces on their own, for code that builds or reads one part (the
 * scheduler encodes each lease once, the worker decodes each lease of a WORK
 * separately so one bad lease does not lose the others). Same rules as
 * above; path is the member's place in messages ("leases[2]"), may be NULL. */
int msg_lease_decode(const json_t *j, const char *path, struct msg_lease *out, char *err,
                     size_t errlen);
json_t *msg_lease_encode(const struct msg_lease *l);
void msg_lease_clear(struct msg_lease *l);
int msg_result_decode(const json_t *j, const char *path, struct msg_result *out, char *err,
                      size_t errlen);
json_t *msg_result_encode(const struct msg_result *r);
void msg_result_clear(struct msg_result *r);

/* Whether s is 64 lower-case hex digits. */
bool msg_sha256_valid(const char *s);
/* Whether the len bytes at s are UTF-8 as jansson takes it (no overlong
 * forms, no surrogates, nothing above U+10FFFF; NUL counts as a character
 * here, but LOG data must not hold one). */
bool msg_utf8_valid(const char *s, size_t len);

#endif
