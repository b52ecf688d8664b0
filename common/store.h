/* store.h - durable state in LMDB (prefix: store_).
 *
 * A small typed layer over one LMDB environment at DIR/state/ (data.mdb,
 * lock.mdb). Records are JSON objects (jansson json_t*, passed as void* so
 * this header does not pull jansson in) stored under string keys in named
 * tables (LMDB named databases). Each record carries "v" (the record format
 * version, STORE_RECORD_VERSION) added on write. The environment carries a
 * schema version in the meta table; opening a store written by a newer
 * Cairn is refused with a clear message, never half-read.
 *
 * The scheduler is the only writer (one process, one thread). Commits are
 * durable when store_txn_commit returns 0 (LMDB's default sync). Readers may
 * run in any thread (MDB_NOTLS); keep read transactions short.
 *
 * Errors: CAIRN_ENOENT (no such key), CAIRN_EFULL (map or disk full: the
 * transaction is aborted and nothing of it is kept; the caller keeps its
 * pending changes and retries later), CAIRN_ESTORE (any other LMDB error,
 * message via store_last_error), CAIRN_EVERSION (newer schema on disk).
 */
#ifndef CAIRN_STORE_H
#define CAIRN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_SCHEMA_VERSION 1
#define STORE_RECORD_VERSION 1

enum store_table {
    STORE_META,        /* counters, schema version, schedule cursors */
    STORE_DAGS,        /* dag name -> {name, version, file, paused, error, ...} */
    STORE_DAG_SOURCES, /* "dag\x1fversion" -> raw YAML bytes (store_put_raw) */
    STORE_RUNS,        /* "dag\x1frun_id" -> run record */
    STORE_TIS,         /* "dag\x1frun_id\x1ftask" -> task instance record */
    STORE_ATTEMPTS,    /* "dag\x1frun_id\x1ftask\x1f%06d" -> attempt record */
    STORE_ARTIFACTS,   /* artifact pointers */
    STORE_BACKFILLS,   /* backfill objects */
    STORE_NTABLES
};

struct store;
struct store_txn;

/* Open (creating DIR/state/ if needed) with a map of map_size bytes (0 =
 * default, 8 GiB; the file grows only as data is written). Sets *out only on
 * success; on failure err says why ("cannot open state at /x: Permission
 * denied", "state at /x was written by a newer Cairn (schema 3; this
 * build reads 1)"). */
int store_open(struct store **out, const char *dir, size_t map_size, char *err, size_t errlen);
void store_close(struct store *s);

int store_txn_begin(struct store *s, bool write, struct store_txn **out);
/* Commit and free the transaction (also on failure). */
int store_txn_commit(struct store_txn *t);
/* Abort and free; NULL is a no-op. */
void store_txn_abort(struct store_txn *t);

/* Put a JSON object (borrowed; "v" is added to the stored copy). */
int store_put(struct store_txn *t, enum store_table tb, const char *key, const void *json);
int store_put_raw(struct store_txn *t, enum store_table tb, const char *key, const void *data,
                  size_t len);
/* Get a record: *json_out is a new json_t* the caller must json_decref.
 * A stored record that is not valid JSON or has a newer "v" gives
 * CAIRN_EVERSION/CAIRN_ESTORE, never a crash. */
int store_get(struct store_txn *t, enum store_table tb, const char *key, void **json_out);
/* Borrowed bytes, valid until the transaction ends. */
int store_get_raw(struct store_txn *t, enum store_table tb, const char *key, const void **data,
                  size_t *len);
int store_del(struct store_txn *t, enum store_table tb, const char *key);

/* Visit records whose key starts with prefix ("" = all), in key order.
 * cb gets the key and a json_t* (borrowed for the call). A nonzero return
 * from cb stops the scan and is returned. Records that fail to decode are
 * skipped with a logged warning. */
typedef int (*store_scan_fn)(void *ud, const char *key, const void *json);
int store_scan(struct store_txn *t, enum store_table tb, const char *prefix, store_scan_fn cb,
               void *ud);
/* Same, newest-first (reverse key order), at most limit records (0 = all). */
int store_scan_rev(struct store_txn *t, enum store_table tb, const char *prefix, size_t limit,
                   store_scan_fn cb, void *ud);

/* Increment and return a named counter kept in STORE_META (starts at 1). */
int store_next_id(struct store_txn *t, const char *name, int64_t *out);

/* Text of the last LMDB error seen by this store (for logs). */
const char *store_last_error(const struct store *s);

#endif
