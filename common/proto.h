/* proto.h - the scheduler <-> worker wire protocol (prefix: proto_).
 *
 * Transport: nng req/rep. Workers dial the scheduler's rep socket (so workers
 * behind NAT work) and send requests; the scheduler answers each. Several
 * requests may be outstanding per worker (nng contexts).
 *
 * Frame (all integers big-endian):
 *   magic "CRN" (3 bytes) | version u8 (PROTO_VERSION) | type u16 | flags u16
 *   | body_len u32 | body (UTF-8 JSON object, body_len bytes)
 *   | mac (32 bytes, HMAC-SHA256 over everything before it) if flags & PROTO_F_MAC
 * A peer with a token refuses frames without a valid MAC (CAIRN_EAUTH); a peer
 * without a token refuses frames with one (it cannot check them). Frames of
 * an unknown version are refused with CAIRN_EVERSION. Bodies are limited to
 * PROTO_MAX_BODY bytes. Decoding never trusts lengths or JSON shapes: a
 * missing or mistyped field is CAIRN_EPROTO with a message, never a crash.
 * JSON strings must not hold NUL (\u0000): a body with one is not valid JSON
 * here, so no field (LOG data included) can carry a NUL byte.
 *
 * Requests (worker -> scheduler) and their replies:
 *   HELLO   {worker, slots, labels:{k:v}, pid, host, msg_version, prefetch,
 *            gpus:[{index, model}], cert, cert_sig, cert_ts, nonce}
 *                                   -> WELCOME {lease_ttl_ms, heartbeat_ms, artifacts, msg_version}
 *   POLL    {worker, free, leases:[lease_id...], wait_ms, seq, gave_up:[seq...]}
 *                                   -> WORK {leases:[lease...], cancel:[lease_id...]}
 *   STARTED {worker, lease_id, age_ms}                    -> ACK {ok, reason}
 *   LOG     {worker, lease_id, stream: 1|2, offset, data} -> ACK {ok, reason}
 *   RESULT  {worker, lease_id, exit_code, signal, oom, timed_out, duration_ms,
 *            error, outputs:[{name, sha256, size, uri}], metrics:{k:number},
 *            interrupted, stderr_tail:[line...]}          -> ACK {ok, reason}
 *   BATCH   {worker, items:[{type, body}...], free, seq, gave_up:[seq...]}
 *           -> ACK {ok, results:[{ok, reason, code}...], work:{leases, cancel}}
 *           several STARTED/LOG/RESULT in order, acknowledged by one commit;
 *           with free > 0 the ACK may bring up to free new leases (work)
 *   any request the scheduler cannot take             -> ERROR {code, message}
 * With a token, a connection's first HELLO is answered ERROR {code:
 * "challenge", message: NONCE}; the HELLO sent again with nonce NONCE is
 * welcomed. On a TLS link HELLO carries the worker's certificate proof
 * (common/ident.h) instead. A worker's name is bound to the connection its
 * HELLO came on (scheduler/handlers.c).
 * A lease: {lease_id, dag, run_id, task, attempt, logical_date, argv:[...],
 *           env:[...], image, timeout_ms, cpus, memory, pids, network,
 *           inputs:[{name, sha256, uri, manifest_file}], outputs:[...], code,
 *           metrics, mounts:[{host, path, readonly}], gpus:[index...],
 *           secrets:["ENV=value"...], secret_names:[...], mask_paths:[...]}
 *           (secrets: the values of the task's `secrets:`, in no other
 *           message and never stored; sent only over an authenticated link).
 * common/msg.h gives each body a struct, an encoder and a strict decoder; it
 * says which fields are optional.
 * POLL renews every listed lease (heartbeat); the scheduler holds a POLL up to
 * wait_ms when it has nothing to hand out, so new work is pushed at once.
 * lease_id is the fencing number: a STARTED/LOG/RESULT naming a lease that is
 * not current is answered {ok:false, reason} and ignored.
 * seq numbers a request whose answer may bring leases (POLL, a BATCH with
 * free > 0); gave_up lists the earlier ones whose answer the worker stopped
 * waiting for: the scheduler sends their leases again in its next answer
 * and answers a request given up on without leases (scheduler/lease.h).
 */
#ifndef CAIRN_PROTO_H
#define CAIRN_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION 1
#define PROTO_MAX_BODY (16u * 1024 * 1024)
#define PROTO_HEADER_LEN 12
#define PROTO_MAC_LEN 32
#define PROTO_F_MAC 0x0001
/* Largest frame a peer may send: set NNG_OPT_RECVMAXSZ to this (nng's
 * default of 1 MiB would drop larger frames before they are decoded). */
#define PROTO_MAX_FRAME (PROTO_HEADER_LEN + PROTO_MAX_BODY + PROTO_MAC_LEN)

enum proto_type {
    PROTO_HELLO = 1,
    PROTO_WELCOME = 2,
    PROTO_POLL = 3,
    PROTO_WORK = 4,
    PROTO_STARTED = 5,
    PROTO_LOG = 6,
    PROTO_RESULT = 7,
    PROTO_ACK = 8,
    PROTO_ERROR = 9,
    PROTO_BATCH = 10,
};

/* Name of a type ("HELLO") or "UNKNOWN". */
const char *proto_type_name(int type);

struct proto_key {
    unsigned char key[64];
    size_t len; /* 0 = no token: frames are sent and accepted without MAC */
};

/* Read a token file (first line, surrounding whitespace trimmed; at least 16
 * bytes). Returns 0, CAIRN_EIO (message in err) or CAIRN_EINVAL (too short,
 * or the file is readable by group/others: mode must be 0600 or 0400). */
/* Details: blank lines before the token are skipped and the token ends at the
 * first newline; it may hold at most 64 bytes (`openssl rand -hex 32` makes a
 * good one). Any bit of mode & 077 refuses the file, and so does a file that
 * is not a regular file (CAIRN_EINVAL). *k is set only on success. err may be
 * NULL. */
int proto_key_load(struct proto_key *k, const char *path, char *err, size_t errlen);
/* Set *k from a token string, trimmed the same way as a file's (so the same
 * text gives the same key both ways). NULL or "" gives no token (len 0).
 * Nothing is checked and a token longer than 64 bytes is cut to 64: use
 * proto_key_load for tokens an operator supplies. */
void proto_key_from_string(struct proto_key *k, const char *token);

/* Encode type + body (a jansson json_t* object, borrowed; passed as void*)
 * into a malloc'd frame. Returns 0 and sets *out and *outlen. */
/* Details: k may be NULL (same as len 0: unsigned frame); json_body may be
 * NULL (sent as {}). The caller frees *out with free(). *out and *outlen are
 * set only on success. Errors: CAIRN_EINVAL (type unknown, body not an
 * object, or body jansson cannot serialise), CAIRN_ERANGE (body larger than
 * PROTO_MAX_BODY), CAIRN_EAUTH (the HMAC could not be computed). */
int proto_encode(const struct proto_key *k, int type, const void *json_body, unsigned char **out,
                 size_t *outlen);

/* Decode a frame. On success sets *type and *json_body (a new json_t*
 * object the caller must json_decref) and returns 0. Errors: CAIRN_EPROTO
 * (malformed: err says how), CAIRN_EVERSION, CAIRN_EAUTH. */
/* Details: buf is borrowed and may be NULL when len is 0; k may be NULL (no
 * token). The header (length, magic, version, flags, body_len) is checked
 * first, then the MAC, and only an authentic frame's type and JSON body are
 * looked at. On error *type and *json_body are untouched and err (which may
 * be NULL) holds a one-line message. */
int proto_decode(const struct proto_key *k, const unsigned char *buf, size_t len, int *type,
                 void **json_body, char *err, size_t errlen);

/* Typed field access for decoders: each returns 0 or CAIRN_EPROTO with err
 * naming the field ("field 'slots' must be an integer"). */
/* Details: obj is a borrowed json_t*; if it is not an object every getter
 * fails with CAIRN_EPROTO. Strings returned are borrowed from obj and live as
 * long as it does. proto_get_str refuses strings holding a NUL byte;
 * proto_get_int accepts JSON integers only (1.0 and "1" are refused) within
 * [lo, hi]. *out is set only on success. */
int proto_get_str(const void *obj, const char *field, const char **out, char *err,
                  size_t errlen);
int proto_get_int(const void *obj, const char *field, int64_t lo, int64_t hi, int64_t *out,
                  char *err, size_t errlen);
/* Optional variants leave *out untouched when the field is absent. */
/* (A field whose value is JSON null counts as absent for them.) */
int proto_opt_str(const void *obj, const char *field, const char **out, char *err,
                  size_t errlen);
int proto_opt_int(const void *obj, const char *field, int64_t lo, int64_t hi, int64_t *out,
                  char *err, size_t errlen);
/* Booleans (ok, oom, timed_out): JSON true/false only. */
int proto_get_bool(const void *obj, const char *field, int *out, char *err, size_t errlen);
int proto_opt_bool(const void *obj, const char *field, int *out, char *err, size_t errlen);
/* A nested array or object (leases, labels, metrics...): *out is a borrowed
 * json_t* that lives as long as obj. */
int proto_get_array(const void *obj, const char *field, void **out, char *err, size_t errlen);
int proto_get_object(const void *obj, const char *field, void **out, char *err, size_t errlen);

/* The same checks on a value already in hand (an array element, a member
 * looked up by a decoder that names it by its path): value is a borrowed
 * json_t* or NULL (then "missing field 'NAME'"), name is what the message
 * calls it ("field 'leases[2].memory' must be an integer"). *out is set only
 * on success. proto_value_number accepts JSON integers and reals within
 * [lo, hi]. */
int proto_value_str(const void *value, const char *name, const char **out, char *err,
                    size_t errlen);
int proto_value_int(const void *value, const char *name, int64_t lo, int64_t hi, int64_t *out,
                    char *err, size_t errlen);
int proto_value_number(const void *value, const char *name, double lo, double hi, double *out,
                       char *err, size_t errlen);
int proto_value_bool(const void *value, const char *name, int *out, char *err, size_t errlen);

#endif
