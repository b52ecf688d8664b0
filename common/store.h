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
 * Opening checks the file first: a data.mdb shorter than LMDB's two meta
 * pages, or shorter than the pages its meta page says are in use, is
 * refused as damaged (CAIRN_ESTORE, err says so and how to restore), never
 * mapped (LMDB would start empty, or die of SIGBUS past the end).
 *
 * Errors: CAIRN_ENOENT (no such key), CAIRN_EFULL (map or disk full: the
 * transaction is aborted and nothing of it is kept; the caller keeps its
 * pending changes and retries later), CAIRN_ESTORE (any other LMDB error,
 * message via store_last_error), CAIRN_EVERSION (newer schema on disk).
 * CAIRN_EINVAL: a NULL/empty key, a key longer than LMDB's key limit (511
 * bytes), a write through a read transaction, a table out of range.
 *
 * Map growth: when a write fails with MDB_MAP_FULL the store grows the map
 * before the next transaction begins, to at least twice its size and at
 * least the size in use plus four times the bytes the failed transaction
 * wrote (LMDB can only remap while no transaction of this process is open;
 * if a reader is still open then, the growth waits for the next begin with
 * none open). So after CAIRN_EFULL from a full map, aborting and retrying
 * the same changes succeeds (if the transaction was cut short early, it may
 * take another round: each MAP_FULL grows the map again). store_open maps
 * the larger of map_size and twice the data in use. Disk full
 * (ENOSPC, EDQUOT, and EIO, which LMDB reports for a short write) also gives
 * CAIRN_EFULL, with the OS message in store_last_error; nothing committed
 * before is lost.
 *
 * A transaction that hit an LMDB error (anything but "not found") is dead:
 * every later call on it returns the same code and store_txn_commit aborts
 * it and returns that code.
 *
 * Keys are C strings stored without their NUL; order is bytewise (memcmp).
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
    STORE_ARTIFACTS,   /* "dag\x1frun_id\x1ftask\x1fname" -> artifact pointer */
    STORE_BACKFILLS,   /* backfill objects */
    STORE_ARTIFACT_SHAS, /* "sha256\x1fdag\x1frun_id\x1ftask\x1fname" -> {dag, run_id, task,
                            name, attempt, created_at}: the pointers by digest */
    STORE_NOTIFICATIONS, /* "event_id\x1f%04d(target)" -> a notification's delivery */
    STORE_NTABLES
};

struct store;
struct store_txn;

/* Open (creating DIR/state/ if needed) with a map of map_size bytes (0 =
 * default, 8 GiB; the file grows only as data is written; at least twice the
 * data already stored). Sets *out only on
 * success; on failure err says why ("cannot open state at /x: Permission
 * denied", "state at /x was written by a newer Cairn (schema 3; this
 * build reads 1)"). */
int store_open(struct store **out, const char *dir, size_t map_size, char *err, size_t errlen);
/* Open an existing store to read it only (the check, the backup): nothing
 * is written to data.mdb (a table added since the first release that an
 * older store lacks is read as empty; a missing first-release table or
 * schema record is damage: CAIRN_ESTORE); writes fail. */
int store_open_readonly(struct store **out, const char *dir, char *err, size_t errlen);
/* Close the environment. Every transaction must have ended. NULL is a
 * no-op. Do not open the same DIR twice in one process (an LMDB rule), and
 * open it after fork(), not before. */
void store_close(struct store *s);

/* Begin a transaction; *out is set only on success. At most one write
 * transaction at a time per store (CAIRN_ESTATE if one is already open, rather
 * than deadlock); any number of read transactions, from any thread. */
int store_txn_begin(struct store *s, bool write, struct store_txn **out);
/* Commit and free the transaction (also on failure). For a read transaction
 * this just ends it and returns 0. CAIRN_EINVAL if t is NULL. */
int store_txn_commit(struct store_txn *t);
/* Abort and free; NULL is a no-op. */
void store_txn_abort(struct store_txn *t);

/* Put a JSON object (borrowed; "v" is added to the stored copy, so "v" is a
 * reserved member name). CAIRN_EINVAL if json is not an object. */
int store_put(struct store_txn *t, enum store_table tb, const char *key, const void *json);
int store_put_raw(struct store_txn *t, enum store_table tb, const char *key, const void *data,
                  size_t len);
/* Get a record: *json_out is a new json_t* the caller must json_decref
 * (set only on success; it includes "v").
 * A stored record that is not valid JSON or has a newer "v" gives
 * CAIRN_ESTORE/CAIRN_EVERSION, never a crash. */
int store_get(struct store_txn *t, enum store_table tb, const char *key, void **json_out);
/* Borrowed bytes, valid until the transaction ends (in a write transaction,
 * until the next put or del as well). */
int store_get_raw(struct store_txn *t, enum store_table tb, const char *key, const void **data,
                  size_t *len);
/* CAIRN_ENOENT if there was no such key (the transaction stays usable). */
int store_del(struct store_txn *t, enum store_table tb, const char *key);

/* Visit records whose key starts with prefix ("" or NULL = all), in key
 * order. cb gets the key and a json_t* (both borrowed for the call). A
 * nonzero return from cb stops the scan and is returned. Records that fail to
 * decode are skipped with a logged warning. cb may read through t but must
 * not put or del in table tb (collect the keys and change them afterwards). */
typedef int (*store_scan_fn)(void *ud, const char *key, const void *json);
int store_scan(struct store_txn *t, enum store_table tb, const char *prefix, store_scan_fn cb,
               void *ud);
/* Forward from the first key >= start (start must begin with prefix, else
 * the scan starts at the prefix), at most limit records (0 = all): a page
 * of a long range without reading what comes before it. */
int store_scan_from(struct store_txn *t, enum store_table tb, const char *prefix, const char *start,
                    size_t limit, store_scan_fn cb, void *ud);
/* Same, newest-first (reverse key order), at most limit records (0 = all). */
int store_scan_rev(struct store_txn *t, enum store_table tb, const char *prefix, size_t limit,
                   store_scan_fn cb, void *ud);

/* Increment and return a named counter kept in STORE_META (starts at 1).
 * Kept as {"value": n} under "counter/<name>". Needs a write transaction. */
int store_next_id(struct store_txn *t, const char *name, int64_t *out);

/* Number of records in table tb (own short read transaction), for
 * diagnostics. Sets *entries only on success. */
int store_stat(struct store *s, enum store_table tb, size_t *entries);

/* The map never grows beyond bytes (0, the default: no limit). When it
 * would have to, a commit fails with CAIRN_EFULL and store_last_error says
 * the store reached its maximum size. */
void store_set_max_size(struct store *s, size_t bytes);
/* Bytes in use (pages up to the last one written) and the map's size. */
int store_usage(struct store *s, size_t *used, size_t *map_size);
/* Unmap the pages of the store's file this process has read (they count in
 * its RSS while mapped; the kernel's page cache keeps them). The map is
 * read-only and shared (no MDB_WRITEMAP), so what is read next is faulted
 * in again from the file: safe at any time, from any thread, with readers
 * open. 0, or an errno code. */
int store_release_pages(struct store *s);
/* A consistent, compacted copy of the store into the empty folder dir
 * (LMDB's mdb_env_copy2; safe while the scheduler runs: it is a read
 * transaction). CAIRN_EEXIST if dir holds a data.mdb already. */
int store_backup(struct store *s, const char *dir, char *err, size_t errlen);
/* Walk every record of every table in one read transaction, handing each
 * to cb (may be NULL) with its raw key and value; cb returns nonzero for a
 * record it finds bad. *records and *bad count them. A B-tree page LMDB
 * cannot read fails the walk (a store error with err); a page damaged in a
 * way LMDB does not notice may crash the process, so run this in a child
 * process (cairn-scheduler --check does). */
typedef int (*store_check_fn)(void *ud, enum store_table tb, const void *key, size_t klen,
                              const void *val, size_t vlen);
int store_check(struct store *s, size_t *records, size_t *bad, store_check_fn cb, void *ud,
                char *err, size_t errlen);
const char *store_table_name(enum store_table tb);

/* Text of the last error seen by this store (for logs); "" if none. The
 * returned string is a per-thread copy, valid until this thread calls
 * store_last_error again. */
const char *store_last_error(const struct store *s);

#endif
