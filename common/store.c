#include "store.h"

#include <errno.h>
#include <jansson.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "util.h"

#define STORE__DEFAULT_MAP ((size_t)8 << 30)
#define STORE__ERRLEN 512
#define STORE__KEYSHOW 80 /* how much of a key a message repeats */
#define STORE__SCHEMA_KEY "schema_version"
#define STORE__COUNTER_PREFIX "counter/"

/* Stable on-disk names of the named databases: never rename one. */
static const char *const store__names[STORE_NTABLES] = {
    [STORE_META] = "meta",
    [STORE_DAGS] = "dags",
    [STORE_DAG_SOURCES] = "dag_sources",
    [STORE_RUNS] = "runs",
    [STORE_TIS] = "tis",
    [STORE_ATTEMPTS] = "attempts",
    [STORE_ARTIFACTS] = "artifacts",
    [STORE_BACKFILLS] = "backfills",
    [STORE_ARTIFACT_SHAS] = "artifact_shas",
    [STORE_NOTIFICATIONS] = "notifications",
};

struct store {
    MDB_env *env;
    MDB_dbi dbi[STORE_NTABLES];
    bool absent[STORE_NTABLES]; /* read-only: a table the file does not have (read as empty) */
    bool readonly;      /* store_open_readonly: nothing is written to the file */
    char *path;         /* DIR/state */
    size_t maxkey;      /* LMDB's key size limit */
    pthread_mutex_t mu; /* guards everything below */
    size_t map_size;    /* current map size */
    unsigned ntxn;      /* open transactions, any thread */
    bool writing;       /* a write transaction is open */
    bool grow;          /* MDB_MAP_FULL seen: grow the map before the next begin */
    size_t grow_bytes;  /* bytes put by the largest transaction that filled the map */
    bool broken;        /* remapping failed: the environment is unusable */
    size_t max_size;    /* the map never grows beyond this (0 = no limit) */
    char last_err[STORE__ERRLEN];
};

struct store_txn {
    struct store *s;
    MDB_txn *txn;
    bool write;
    int err;      /* sticky: an LMDB error left the transaction unusable */
    size_t bytes; /* key and value bytes put so far */
};

/* Note that t filled the map. Called with s->mu held. */
static void
store__note_full_locked(struct store *s, const struct store_txn *t)
{
    s->grow = true;
    if (t->bytes > s->grow_bytes)
        s->grow_bytes = t->bytes;
}

static void
store__vset_err(struct store *s, const char *fmt, va_list ap)
{
    pthread_mutex_lock(&s->mu);
    vsnprintf(s->last_err, sizeof(s->last_err), fmt, ap);
    pthread_mutex_unlock(&s->mu);
}

static void store__set_err(struct store *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
store__set_err(struct store *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    store__vset_err(s, fmt, ap);
    va_end(ap);
}

/* Translate an LMDB or errno code. */
static int
store__code(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case MDB_NOTFOUND:
        return CAIRN_ENOENT;
    case MDB_MAP_FULL:
    case EIO: /* what LMDB reports for a short write: the disk filled up */
        return CAIRN_EFULL;
    case MDB_VERSION_MISMATCH:
        return CAIRN_EVERSION;
    case ENOSPC:
    case EDQUOT:
    case ENOMEM:
        return cairn_from_errno(rc);
    default:
        return CAIRN_ESTORE;
    }
}

/* Printable form of a key for messages: bytes outside ASCII graphic
 * characters become \xNN, long keys are cut with "...". */
static void
store__showkey(char *buf, size_t n, const void *key, size_t len)
{
    const unsigned char *p = key;
    size_t o = 0;

    for (size_t i = 0; i < len && o + 8 < n; i++) {
        if (i == STORE__KEYSHOW) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (p[i] < 0x20 || p[i] >= 0x7f || p[i] == '\\' || p[i] == '\'')
            o += (size_t)snprintf(buf + o, n - o, "\\x%02x", p[i]);
        else
            buf[o++] = (char)p[i];
    }
    buf[o] = '\0';
}

/* Record the failure of an LMDB call on t and translate it. Anything but
 * "not found" leaves the LMDB transaction unusable, so it becomes sticky. */
static int
store__txn_fail(struct store_txn *t, int rc, const char *op, enum store_table tb, const void *key,
                size_t klen)
{
    struct store *s = t->s;
    char shown[4 * STORE__KEYSHOW + 8];
    int code = store__code(rc);

    if (rc == MDB_NOTFOUND)
        return code;
    store__showkey(shown, sizeof(shown), key, klen);
    pthread_mutex_lock(&s->mu);
    if (rc == MDB_MAP_FULL) {
        store__note_full_locked(s, t);
        snprintf(s->last_err, sizeof(s->last_err),
                 "%s %s '%s': %s (map of %zu bytes; it grows before the next transaction)", op,
                 store__names[tb], shown, mdb_strerror(rc), s->map_size);
    } else {
        snprintf(s->last_err, sizeof(s->last_err), "%s %s '%s': %s", op, store__names[tb], shown,
                 mdb_strerror(rc));
    }
    pthread_mutex_unlock(&s->mu);
    t->err = code;
    return code;
}

/* Parse a stored record into a new object. On failure msg says why. */
static int
store__decode(const MDB_val *val, json_t **out, char *msg, size_t msglen)
{
    json_error_t je;
    json_t *o, *v;
    json_int_t ver;

    o = json_loadb(val->mv_data, val->mv_size, 0, &je);
    if (!o) {
        snprintf(msg, msglen, "record is not valid JSON (%s at byte %d)", je.text, je.position);
        return CAIRN_ESTORE;
    }
    if (!json_is_object(o)) {
        snprintf(msg, msglen, "record is not a JSON object");
        goto fail;
    }
    v = json_object_get(o, "v");
    if (!json_is_integer(v) || json_integer_value(v) < 1) {
        snprintf(msg, msglen, "record has no valid record version \"v\"");
        goto fail;
    }
    ver = json_integer_value(v);
    if (ver > STORE_RECORD_VERSION) {
        snprintf(msg, msglen, "record version %lld is newer than this build reads (%d)",
                 (long long)ver, STORE_RECORD_VERSION);
        json_decref(o);
        return CAIRN_EVERSION;
    }
    *out = o;
    return 0;

fail:
    json_decref(o);
    return CAIRN_ESTORE;
}

/* Common argument checks; key may be NULL for whole-table operations. */
static int
store__check(struct store_txn *t, enum store_table tb, const char *key, bool write, size_t *klen)
{
    size_t n;

    if (!t || (int)tb < 0 || tb >= STORE_NTABLES)
        return CAIRN_EINVAL;
    if (t->err)
        return t->err;
    if (write && t->s->readonly) {
        store__set_err(t->s, "write to %s of a store opened to read only", store__names[tb]);
        return CAIRN_EINVAL;
    }
    if (write && !t->write) {
        store__set_err(t->s, "write to %s through a read transaction", store__names[tb]);
        return CAIRN_EINVAL;
    }
    if (!klen)
        return 0;
    if (!key || !*key) {
        store__set_err(t->s, "empty key in %s", store__names[tb]);
        return CAIRN_EINVAL;
    }
    n = strlen(key);
    if (n > t->s->maxkey) {
        store__set_err(t->s, "key of %zu bytes in %s is longer than the limit (%zu)", n,
                       store__names[tb], t->s->maxkey);
        return CAIRN_EINVAL;
    }
    *klen = n;
    return 0;
}

/* Grow the map to at least twice its size and to at least what is in use
 * plus four times the bytes the transaction that filled it wrote (B-tree
 * pages, copies of touched pages, free-list pages), so that retrying the
 * same changes fits. Called with s->mu held and no transaction open. */
static void
store__grow_locked(struct store *s)
{
    long pg = sysconf(_SC_PAGESIZE);
    size_t page = pg > 0 ? (size_t)pg : 4096;
    size_t old = s->map_size, want, used = old, extra;
    MDB_envinfo info;
    int rc;

    s->grow = false;
    extra = s->grow_bytes > SIZE_MAX / 8 ? SIZE_MAX / 2 : s->grow_bytes * 4;
    s->grow_bytes = 0;
    if (mdb_env_info(s->env, &info) == 0 && info.me_last_pgno < SIZE_MAX / page - 1)
        used = (info.me_last_pgno + 1) * page;
    if (old > SIZE_MAX / 2 - page || used > SIZE_MAX / 2 - page - extra) {
        LOG(LOG_WARN, "CAIRN-STORE-MAP", "state map of %zu bytes cannot grow further", old);
        return;
    }
    want = old * 2;
    if (used + extra > want)
        want = used + extra;
    want = (want + page - 1) / page * page;
    if (s->max_size && want > s->max_size) {
        if (old >= s->max_size) {
            snprintf(s->last_err, sizeof(s->last_err),
                     "the state store reached its maximum size (%zu bytes)", s->max_size);
            LOG(LOG_ERR, "CAIRN-STORE-MAP", "%s: raise --max-state-size or free space with "
                "artifacts gc", s->last_err);
            return;
        }
        want = s->max_size;
    }
    rc = mdb_env_set_mapsize(s->env, want);
    if (rc != 0) {
        /* LMDB unmapped the old map before failing to map the new one. */
        s->broken = true;
        snprintf(s->last_err, sizeof(s->last_err),
                 "growing the state map to %zu bytes failed: %s (restart to recover)", want,
                 mdb_strerror(rc));
        LOG(LOG_ERR, "CAIRN-STORE-MAP", "%s", s->last_err);
        return;
    }
    if (mdb_env_info(s->env, &info) == 0)
        s->map_size = info.me_mapsize;
    else
        s->map_size = want;
    LOG(LOG_NOTICE, "CAIRN-STORE-MAP", "state map grown from %zu to %zu bytes", old, s->map_size);
}

/* Forget a transaction that ended (committed or aborted). */
static void
store__txn_release(struct store_txn *t)
{
    struct store *s = t->s;

    pthread_mutex_lock(&s->mu);
    s->ntxn--;
    if (t->write)
        s->writing = false;
    pthread_mutex_unlock(&s->mu);
    free(t);
}

int
store_txn_begin(struct store *s, bool write, struct store_txn **out)
{
    struct store_txn *t;
    MDB_txn *txn = NULL;
    bool retried = false;
    int rc;

    if (!s || !out)
        return CAIRN_EINVAL;
    pthread_mutex_lock(&s->mu);
    if (s->broken) {
        pthread_mutex_unlock(&s->mu);
        return CAIRN_ESTORE;
    }
    if (write && s->writing) {
        snprintf(s->last_err, sizeof(s->last_err), "a write transaction is already open");
        pthread_mutex_unlock(&s->mu);
        return CAIRN_ESTATE;
    }
    if (s->grow && s->ntxn == 0)
        store__grow_locked(s);
    if (s->broken) {
        pthread_mutex_unlock(&s->mu);
        return CAIRN_ESTORE;
    }
    s->ntxn++;
    if (write)
        s->writing = true;
    pthread_mutex_unlock(&s->mu);

    t = xcalloc(1, sizeof(*t));
    t->s = s;
    t->write = write;
    for (;;) {
        rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &txn);
        if (rc != MDB_MAP_RESIZED || retried)
            break;
        /* Another process grew the map beyond ours: adopt its size, which
         * is only allowed while this process has no transaction open. */
        retried = true;
        pthread_mutex_lock(&s->mu);
        if (s->ntxn == 1) {
            rc = mdb_env_set_mapsize(s->env, 0);
            if (rc == 0) {
                MDB_envinfo info;
                if (mdb_env_info(s->env, &info) == 0)
                    s->map_size = info.me_mapsize;
            } else {
                s->broken = true;
            }
        }
        pthread_mutex_unlock(&s->mu);
        if (rc != 0)
            break;
    }
    if (rc != 0) {
        store__set_err(s, "begin %s transaction: %s", write ? "write" : "read", mdb_strerror(rc));
        goto fail;
    }
    t->txn = txn;
    *out = t;
    return 0;

fail:
    store__txn_release(t);
    return store__code(rc);
}

int
store_txn_commit(struct store_txn *t)
{
    int rc;

    if (!t)
        return CAIRN_EINVAL;
    if (t->err) {
        mdb_txn_abort(t->txn);
        rc = t->err;
    } else if (!t->write) {
        mdb_txn_abort(t->txn);
        rc = 0;
    } else {
        rc = mdb_txn_commit(t->txn); /* frees the LMDB transaction either way */
        if (rc != 0) {
            struct store *s = t->s;
            pthread_mutex_lock(&s->mu);
            if (rc == MDB_MAP_FULL)
                store__note_full_locked(s, t);
            snprintf(s->last_err, sizeof(s->last_err), "commit: %s%s", mdb_strerror(rc),
                     rc == EIO ? " (a short write: is the disk full?)" : "");
            pthread_mutex_unlock(&s->mu);
            rc = store__code(rc);
        }
    }
    store__txn_release(t);
    return rc;
}

void
store_txn_abort(struct store_txn *t)
{
    if (!t)
        return;
    mdb_txn_abort(t->txn);
    store__txn_release(t);
}

int
store_put_raw(struct store_txn *t, enum store_table tb, const char *key, const void *data,
              size_t len)
{
    MDB_val k, v;
    size_t klen = 0;
    int rc;

    if ((rc = store__check(t, tb, key, true, &klen)) != 0)
        return rc;
    if (!data && len > 0)
        return CAIRN_EINVAL;
    k.mv_size = klen;
    k.mv_data = (void *)key;
    v.mv_size = len;
    v.mv_data = (void *)(data ? data : "");
    t->bytes += klen + len;
    rc = mdb_put(t->txn, t->s->dbi[tb], &k, &v, 0);
    if (rc != 0)
        return store__txn_fail(t, rc, "put", tb, key, klen);
    return 0;
}

int
store_put(struct store_txn *t, enum store_table tb, const char *key, const void *json)
{
    json_t *obj = (json_t *)json, *copy = NULL;
    char *text = NULL;
    size_t klen = 0;
    int rc;

    if ((rc = store__check(t, tb, key, true, &klen)) != 0)
        return rc;
    if (!json_is_object(obj)) {
        store__set_err(t->s, "put %s: record is not a JSON object", store__names[tb]);
        return CAIRN_EINVAL;
    }
    /* A shallow copy: the caller's object stays untouched. */
    copy = json_copy(obj);
    if (!copy || json_object_set_new(copy, "v", json_integer(STORE_RECORD_VERSION)) != 0) {
        rc = CAIRN_ENOMEM;
        goto fail;
    }
    text = json_dumps(copy, JSON_COMPACT);
    if (!text) {
        rc = CAIRN_ENOMEM;
        goto fail;
    }
    rc = store_put_raw(t, tb, key, text, strlen(text));

fail:
    free(text);
    json_decref(copy);
    return rc;
}

int
store_get_raw(struct store_txn *t, enum store_table tb, const char *key, const void **data,
              size_t *len)
{
    MDB_val k, v;
    size_t klen = 0;
    int rc;

    if ((rc = store__check(t, tb, key, false, &klen)) != 0)
        return rc;
    if (!data || !len)
        return CAIRN_EINVAL;
    if (t->s->absent[tb])
        return CAIRN_ENOENT;
    k.mv_size = klen;
    k.mv_data = (void *)key;
    rc = mdb_get(t->txn, t->s->dbi[tb], &k, &v);
    if (rc != 0)
        return store__txn_fail(t, rc, "get", tb, key, klen);
    *data = v.mv_data;
    *len = v.mv_size;
    return 0;
}

int
store_get(struct store_txn *t, enum store_table tb, const char *key, void **json_out)
{
    MDB_val v = {0};
    json_t *obj = NULL;
    const void *data = NULL;
    char msg[256], shown[4 * STORE__KEYSHOW + 8];
    int rc;

    if (!json_out)
        return CAIRN_EINVAL;
    rc = store_get_raw(t, tb, key, &data, &v.mv_size);
    if (rc != 0)
        return rc;
    v.mv_data = (void *)data;
    rc = store__decode(&v, &obj, msg, sizeof(msg));
    if (rc != 0) {
        store__showkey(shown, sizeof(shown), key, strlen(key));
        store__set_err(t->s, "%s '%s': %s", store__names[tb], shown, msg);
        return rc;
    }
    *json_out = obj;
    return 0;
}

int
store_del(struct store_txn *t, enum store_table tb, const char *key)
{
    MDB_val k;
    size_t klen = 0;
    int rc;

    if ((rc = store__check(t, tb, key, true, &klen)) != 0)
        return rc;
    k.mv_size = klen;
    k.mv_data = (void *)key;
    rc = mdb_del(t->txn, t->s->dbi[tb], &k, NULL);
    if (rc != 0)
        return store__txn_fail(t, rc, "del", tb, key, klen);
    return 0;
}

/* Put the cursor on the last key that starts with prefix (or on the key
 * just before where such keys would be). The keys with prefix p are exactly
 * those >= p and < succ(p), where succ(p) drops trailing 0xff bytes and adds
 * one to the last byte left; if nothing is left, they run to the end. */
static int
store__seek_last(MDB_cursor *cur, const char *prefix, size_t plen, MDB_val *k, MDB_val *v)
{
    size_t slen = plen;
    char *succ;
    int rc;

    while (slen > 0 && (unsigned char)prefix[slen - 1] == 0xff)
        slen--;
    if (slen == 0)
        return mdb_cursor_get(cur, k, v, MDB_LAST);
    succ = xstrndup(prefix, slen);
    succ[slen - 1] = (char)((unsigned char)succ[slen - 1] + 1);
    k->mv_size = slen;
    k->mv_data = succ;
    rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
    if (rc == 0)
        rc = mdb_cursor_get(cur, k, v, MDB_PREV);
    else if (rc == MDB_NOTFOUND)
        rc = mdb_cursor_get(cur, k, v, MDB_LAST);
    free(succ);
    return rc;
}

static int
store__scan(struct store_txn *t, enum store_table tb, const char *prefix, const char *start,
            bool rev, size_t limit, store_scan_fn cb, void *ud)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    MDB_cursor_op step = rev ? MDB_PREV : MDB_NEXT;
    size_t kcap = 128, plen, seen = 0;
    char *kbuf = xmalloc(kcap);
    int rc;

    if ((rc = store__check(t, tb, NULL, false, NULL)) != 0)
        goto done;
    if (!cb) {
        rc = CAIRN_EINVAL;
        goto done;
    }
    if (!prefix)
        prefix = "";
    plen = strlen(prefix);
    if (plen > t->s->maxkey || t->s->absent[tb])
        goto done; /* no stored key can be that long, or no table: rc is 0 */
    rc = mdb_cursor_open(t->txn, t->s->dbi[tb], &cur);
    if (rc != 0) {
        rc = store__txn_fail(t, rc, "scan", tb, prefix, plen);
        goto done;
    }

    if (rev) {
        rc = store__seek_last(cur, prefix, plen, &k, &v);
    } else if (start && strncmp(start, prefix, plen) == 0 && strlen(start) <= t->s->maxkey) {
        k.mv_size = strlen(start);
        k.mv_data = (void *)start;
        rc = k.mv_size ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
                       : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    } else if (plen == 0) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    } else {
        k.mv_size = plen;
        k.mv_data = (void *)prefix;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, step)) {
        json_t *obj = NULL;
        char msg[256];
        int d;

        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
            break;
        if (k.mv_size + 1 > kcap)
            xgrow((void **)&kbuf, &kcap, k.mv_size + 1, 1);
        memcpy(kbuf, k.mv_data, k.mv_size);
        kbuf[k.mv_size] = '\0';
        d = store__decode(&v, &obj, msg, sizeof(msg));
        if (d != 0) {
            char shown[4 * STORE__KEYSHOW + 8];
            store__showkey(shown, sizeof(shown), k.mv_data, k.mv_size);
            LOG(LOG_WARN, "CAIRN-STORE-BAD-RECORD", "skipping %s '%s': %s", store__names[tb], shown,
                msg);
            continue;
        }
        d = cb(ud, kbuf, obj);
        json_decref(obj);
        if (d != 0) {
            rc = d;
            goto done;
        }
        if (limit && ++seen >= limit)
            break;
    }
    if (rc == MDB_NOTFOUND || rc == 0)
        rc = 0;
    else
        rc = store__txn_fail(t, rc, "scan", tb, prefix, plen);

done:
    if (cur)
        mdb_cursor_close(cur);
    free(kbuf);
    return rc;
}

int
store_scan(struct store_txn *t, enum store_table tb, const char *prefix, store_scan_fn cb, void *ud)
{
    return store__scan(t, tb, prefix, NULL, false, 0, cb, ud);
}

int
store_scan_from(struct store_txn *t, enum store_table tb, const char *prefix, const char *start,
                size_t limit, store_scan_fn cb, void *ud)
{
    return store__scan(t, tb, prefix, start, false, limit, cb, ud);
}

int
store_scan_rev(struct store_txn *t, enum store_table tb, const char *prefix, size_t limit,
               store_scan_fn cb, void *ud)
{
    return store__scan(t, tb, prefix, NULL, true, limit, cb, ud);
}

int
store_next_id(struct store_txn *t, const char *name, int64_t *out)
{
    char *key = NULL;
    json_t *rec = NULL, *val;
    json_int_t n = 0;
    int rc;

    if (!t || !name || !*name || !out)
        return CAIRN_EINVAL;
    if (!t->write) {
        store__set_err(t->s, "counter %s: needs a write transaction", name);
        return CAIRN_EINVAL;
    }
    key = xasprintf(STORE__COUNTER_PREFIX "%s", name);
    rc = store_get(t, STORE_META, key, (void **)&rec);
    if (rc == 0) {
        val = json_object_get(rec, "value");
        if (!json_is_integer(val) || json_integer_value(val) < 0) {
            store__set_err(t->s, "counter %s: stored value is not a count", name);
            rc = CAIRN_ESTORE;
            goto fail;
        }
        n = json_integer_value(val);
        json_decref(rec);
        rec = NULL;
    } else if (rc != CAIRN_ENOENT) {
        goto fail;
    }
    if (n == INT64_MAX) {
        rc = CAIRN_ERANGE;
        goto fail;
    }
    n++;
    rec = json_pack("{sI}", "value", n);
    if (!rec) {
        rc = CAIRN_ENOMEM;
        goto fail;
    }
    rc = store_put(t, STORE_META, key, rec);
    if (rc == 0)
        *out = n;

fail:
    json_decref(rec);
    free(key);
    return rc;
}

int
store_stat(struct store *s, enum store_table tb, size_t *entries)
{
    struct store_txn *t = NULL;
    MDB_stat st;
    int rc;

    if (!s || (int)tb < 0 || tb >= STORE_NTABLES || !entries)
        return CAIRN_EINVAL;
    if (s->absent[tb]) {
        *entries = 0;
        return 0;
    }
    rc = store_txn_begin(s, false, &t);
    if (rc != 0)
        return rc;
    rc = mdb_stat(t->txn, s->dbi[tb], &st);
    if (rc != 0) {
        rc = store__txn_fail(t, rc, "stat", tb, "", 0);
        goto fail;
    }
    *entries = st.ms_entries;

fail:
    store_txn_abort(t);
    return rc;
}

const char *
store_last_error(const struct store *s)
{
    static _Thread_local char copy[STORE__ERRLEN];
    /* The mutex is not part of the store's logical state. */
    struct store *m = (struct store *)s;

    if (!s)
        return "";
    pthread_mutex_lock(&m->mu);
    memcpy(copy, s->last_err, sizeof(copy));
    pthread_mutex_unlock(&m->mu);
    return copy;
}

static int store__open_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
store__open_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    verrf(code, err, errlen, fmt, ap);
    va_end(ap);
    return code;
}

/* Open (creating) every table, then check or record the schema version, all
 * in one write transaction: a refused store is left exactly as it was. */
/* Tables a store written by an older Cairn may not have (added since the
 * first release; an open for writing makes them). */
static bool
store__added_later(int tb)
{
    return tb == STORE_ARTIFACT_SHAS || tb == STORE_NOTIFICATIONS;
}

/* What to add to a message about LMDB's rc when opening: the way out of
 * a damaged file. */
static const char *
store__damage_hint(int rc)
{
    return rc == MDB_PAGE_NOTFOUND || rc == MDB_CORRUPTED || rc == MDB_INVALID ||
                   rc == MDB_BAD_TXN || rc == MDB_INCOMPATIBLE
               ? "; the file is damaged: restore it from a backup (docs/operations.md)"
               : "";
}

static int
store__init_tables(struct store *s, char *err, size_t errlen)
{
    struct store_txn t = {.s = s, .write = true};
    json_t *rec = NULL, *val;
    json_int_t ver;
    int rc;

    t.write = !s->readonly;
    rc = mdb_txn_begin(s->env, NULL, s->readonly ? MDB_RDONLY : 0, &t.txn);
    if (rc != 0)
        return store__open_fail(err, errlen, store__code(rc), "cannot open state at %s: %s%s",
                                s->path, mdb_strerror(rc), store__damage_hint(rc));
    for (int i = 0; i < STORE_NTABLES; i++) {
        rc = mdb_dbi_open(t.txn, store__names[i], s->readonly ? 0 : MDB_CREATE, &s->dbi[i]);
        if (rc == MDB_NOTFOUND && s->readonly && store__added_later(i)) {
            s->absent[i] = true; /* an older store: made by the scheduler's next start */
            continue;
        }
        if (rc == MDB_NOTFOUND && s->readonly) {
            /* every store has had it from the start: the file lost it */
            rc = store__open_fail(err, errlen, CAIRN_ESTORE,
                                  "cannot open state at %s: its table %s is missing; the file is "
                                  "damaged: restore it from a backup (docs/operations.md)",
                                  s->path, store__names[i]);
            goto fail;
        }
        if (rc != 0) {
            rc = store__open_fail(err, errlen, store__code(rc),
                                  "cannot open state at %s: table %s: %s%s", s->path,
                                  store__names[i], mdb_strerror(rc), store__damage_hint(rc));
            goto fail;
        }
    }
    rc = store_get(&t, STORE_META, STORE__SCHEMA_KEY, (void **)&rec);
    if (rc == CAIRN_ENOENT && s->readonly) {
        /* every open for writing writes it with the tables, in one commit */
        rc = store__open_fail(err, errlen, CAIRN_ESTORE,
                              "cannot open state at %s: it has no schema record; the file is "
                              "damaged: restore it from a backup (docs/operations.md)",
                              s->path);
        goto fail;
    } else if (rc == CAIRN_ENOENT) {
        rec = json_pack("{si}", "value", STORE_SCHEMA_VERSION);
        rc = rec ? store_put(&t, STORE_META, STORE__SCHEMA_KEY, rec) : CAIRN_ENOMEM;
        if (rc != 0) {
            rc = store__open_fail(err, errlen, rc, "cannot initialise state at %s: %s", s->path,
                                  s->last_err);
            goto fail;
        }
    } else if (rc == CAIRN_EVERSION) {
        rc = store__open_fail(err, errlen, rc,
                              "state at %s was written by a newer Cairn (its schema record has a "
                              "newer format; this build reads schema %d): run that Cairn, or "
                              "restore a backup this one wrote (docs/operations.md)",
                              s->path, STORE_SCHEMA_VERSION);
        goto fail;
    } else if (rc != 0) {
        rc = store__open_fail(err, errlen, rc, "cannot read state at %s: %s", s->path, s->last_err);
        goto fail;
    } else {
        val = json_object_get(rec, "value");
        if (!json_is_integer(val) || json_integer_value(val) < 1) {
            rc = store__open_fail(err, errlen, CAIRN_ESTORE,
                                  "state at %s has a corrupt schema version record: it is "
                                  "damaged; restore it from a backup (docs/operations.md)",
                                  s->path);
            goto fail;
        }
        ver = json_integer_value(val);
        if (ver > STORE_SCHEMA_VERSION) {
            rc = store__open_fail(err, errlen, CAIRN_EVERSION,
                                  "state at %s was written by a newer Cairn (schema %lld; this "
                                  "build reads %d): run that Cairn, or restore a backup this one "
                                  "wrote (docs/operations.md)",
                                  s->path, (long long)ver, STORE_SCHEMA_VERSION);
            goto fail;
        }
    }
    json_decref(rec);
    rec = NULL;
    rc = mdb_txn_commit(t.txn);
    t.txn = NULL;
    if (rc != 0)
        return store__open_fail(err, errlen, store__code(rc), "cannot initialise state at %s: %s",
                                s->path, mdb_strerror(rc));
    return 0;

fail:
    json_decref(rec);
    mdb_txn_abort(t.txn);
    return rc;
}

/* A data.mdb that exists must look like an LMDB file before LMDB maps it:
 * truncated to nothing it would open as a new, empty store (every run lost
 * without a word), and shorter than its pages LMDB would touch memory past
 * the end of the file (SIGBUS). A file that is not there is a new store. */
static int
store__check_file(const char *path, char *err, size_t errlen)
{
    char *file = xasprintf("%s/data.mdb", path);
    struct stat st;
    int rc = 0;
    if (stat(file, &st) != 0) {
        if (errno != ENOENT)
            rc = store__open_fail(err, errlen, CAIRN_EIO, "cannot open state at %s: %s", path,
                                  strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        rc = store__open_fail(err, errlen, CAIRN_ESTORE,
                              "cannot open state at %s: data.mdb is not a regular file", path);
    } else if (st.st_size < 2 * 4096) {
        rc = store__open_fail(err, errlen, CAIRN_ESTORE,
                              "cannot open state at %s: data.mdb is not an LMDB database: it "
                              "has %lld bytes, less than an LMDB file's two meta pages "
                              "(truncated?); restore it from a backup (docs/operations.md), or "
                              "move it away to start with an empty state",
                              path, (long long)st.st_size);
    }
    free(file);
    return rc;
}

/* The pages the meta page says are in use must be in the file. */
static int
store__check_pages(struct store *s, char *err, size_t errlen)
{
    MDB_envinfo info;
    MDB_stat st;
    char *file = xasprintf("%s/data.mdb", s->path);
    struct stat fst;
    int rc = 0;
    if (mdb_env_info(s->env, &info) == 0 && mdb_env_stat(s->env, &st) == 0 &&
        stat(file, &fst) == 0) {
        unsigned long long need = ((unsigned long long)info.me_last_pgno + 1) * st.ms_psize;
        if ((unsigned long long)fst.st_size < need)
            rc = store__open_fail(err, errlen, CAIRN_ESTORE,
                                  "cannot open state at %s: data.mdb is damaged: it has %lld "
                                  "bytes but its pages need %llu (truncated?); restore it from "
                                  "a backup (docs/operations.md)",
                                  s->path, (long long)fst.st_size, need);
    }
    free(file);
    return rc;
}

static int
store__open(struct store **out, const char *dir, size_t map_size, bool readonly, char *err,
            size_t errlen)
{
    struct store *s = NULL;
    long pg = sysconf(_SC_PAGESIZE);
    size_t page = pg > 0 ? (size_t)pg : 4096;
    MDB_envinfo info;
    int rc, dead = 0;

    if (err && errlen > 0)
        err[0] = '\0';
    if (!out || !dir || !*dir)
        return store__open_fail(err, errlen, CAIRN_EINVAL, "no state directory given");
    if (map_size == 0)
        map_size = STORE__DEFAULT_MAP;
    if (map_size > SIZE_MAX - page)
        return store__open_fail(err, errlen, CAIRN_EINVAL, "map size %zu is too large", map_size);
    map_size = (map_size + page - 1) / page * page;

    s = xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->readonly = readonly;
    s->path = xasprintf("%s/state", dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        rc = store__open_fail(err, errlen, CAIRN_EIO, "cannot open state at %s: %s", s->path,
                              strerror(errno));
        goto fail;
    }
    if (mkdir(s->path, 0700) != 0 && errno != EEXIST) {
        rc = store__open_fail(err, errlen, CAIRN_EIO, "cannot open state at %s: %s", s->path,
                              strerror(errno));
        goto fail;
    }
    if ((rc = store__check_file(s->path, err, errlen)) != 0)
        goto fail;
    rc = mdb_env_create(&s->env);
    if (rc != 0) {
        s->env = NULL;
        rc = store__open_fail(err, errlen, store__code(rc), "cannot open state at %s: %s", s->path,
                              mdb_strerror(rc));
        goto fail;
    }
    rc = mdb_env_set_maxdbs(s->env, STORE_NTABLES);
    if (rc == 0)
        rc = mdb_env_set_mapsize(s->env, map_size);
    if (rc == 0)
        rc = mdb_env_open(s->env, s->path, MDB_NOTLS | (readonly ? MDB_RDONLY : 0), 0600);
    if (rc == MDB_INVALID) {
        rc = store__open_fail(err, errlen, CAIRN_ESTORE,
                              "cannot open state at %s: data.mdb is not an LMDB database%s",
                              s->path, store__damage_hint(MDB_INVALID));
        goto fail;
    } else if (rc == MDB_VERSION_MISMATCH) {
        rc = store__open_fail(err, errlen, CAIRN_EVERSION,
                              "cannot open state at %s: written by an incompatible LMDB version "
                              "(this build uses %s)",
                              s->path, mdb_version(NULL, NULL, NULL));
        goto fail;
    } else if (rc != 0) {
        int code = store__code(rc);
        if (code == CAIRN_ESTORE && rc > 0)
            code = CAIRN_EIO; /* an OS error: permissions, missing directory... */
        rc = store__open_fail(err, errlen, code, "cannot open state at %s: %s", s->path,
                              mdb_strerror(rc));
        goto fail;
    }
    /* Free the reader slots of processes that died with a transaction open. */
    if (mdb_reader_check(s->env, &dead) == 0 && dead > 0)
        LOG(LOG_NOTICE, "CAIRN-STORE-READERS", "cleared %d stale reader slot(s) in %s", dead,
            s->path);
    s->maxkey = (size_t)mdb_env_get_maxkeysize(s->env);
    if ((rc = store__check_pages(s, err, errlen)) != 0)
        goto fail;
    /* Keep room to write: at least twice what is in use (a map that was grown
     * before and is reopened with the configured size). */
    if (mdb_env_info(s->env, &info) == 0 && info.me_last_pgno < SIZE_MAX / 4 / page - 1) {
        size_t used = (info.me_last_pgno + 1) * page;
        if (info.me_mapsize < 2 * used && mdb_env_set_mapsize(s->env, 2 * used) != 0) {
            rc = store__open_fail(err, errlen, CAIRN_ESTORE,
                                  "cannot open state at %s: cannot map %zu bytes", s->path,
                                  2 * used);
            goto fail;
        }
    }
    s->map_size = mdb_env_info(s->env, &info) == 0 ? info.me_mapsize : map_size;
    rc = store__init_tables(s, err, errlen);
    if (rc != 0)
        goto fail;
    s->last_err[0] = '\0';
    *out = s;
    return 0;

fail:
    if (s->env)
        mdb_env_close(s->env);
    pthread_mutex_destroy(&s->mu);
    free(s->path);
    free(s);
    return rc;
}

int
store_open(struct store **out, const char *dir, size_t map_size, char *err, size_t errlen)
{
    return store__open(out, dir, map_size, false, err, errlen);
}

int
store_open_readonly(struct store **out, const char *dir, char *err, size_t errlen)
{
    return store__open(out, dir, 0, true, err, errlen);
}

void
store_close(struct store *s)
{
    if (!s)
        return;
    if (s->ntxn > 0)
        LOG(LOG_ERR, "CAIRN-STORE-CLOSE", "closing %s with %u transaction(s) still open", s->path,
            s->ntxn);
    mdb_env_close(s->env);
    pthread_mutex_destroy(&s->mu);
    free(s->path);
    free(s);
}

void
store_set_max_size(struct store *s, size_t bytes)
{
    pthread_mutex_lock(&s->mu);
    s->max_size = bytes;
    pthread_mutex_unlock(&s->mu);
}

int
store_usage(struct store *s, size_t *used, size_t *map_size)
{
    MDB_envinfo info;
    MDB_stat st;
    int rc = mdb_env_info(s->env, &info);
    if (!rc)
        rc = mdb_env_stat(s->env, &st);
    if (rc)
        return store__code(rc);
    *used = ((size_t)info.me_last_pgno + 1) * st.ms_psize;
    *map_size = info.me_mapsize;
    return 0;
}

int
store_release_pages(struct store *s)
{
    /* LMDB does not say where it mapped the file (me_mapaddr is only set
     * with MDB_FIXEDMAP): find the mappings of data.mdb by its device and
     * inode in /proc/self/maps */
    int fd = -1, rc = 0;
    struct stat sb;
    pthread_mutex_lock(&s->mu); /* the map cannot move meanwhile (store__grow_locked) */
    if (s->broken || mdb_env_get_fd(s->env, &fd) != 0 || fstat(fd, &sb) != 0) {
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) {
        rc = cairn_from_errno(errno);
        pthread_mutex_unlock(&s->mu);
        return rc;
    }
    /* or by its path (an overlay file system may show other numbers) */
    char *file = xasprintf("%s/data.mdb", s->path), *real = realpath(file, NULL);
    free(file);
    char line[4096];
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi, ino;
        unsigned maj, mnt;
        int at = 0;
        if (sscanf(line, "%lx-%lx %*s %*s %x:%x %lu %n", &lo, &hi, &maj, &mnt, &ino, &at) < 5)
            continue;
        line[strcspn(line, "\n")] = '\0';
        bool same = ino == (unsigned long)sb.st_ino && maj == major(sb.st_dev) &&
                    mnt == minor(sb.st_dev);
        if (!same && !(real && at > 0 && !strcmp(line + at, real)))
            continue;
        if (madvise((void *)lo, hi - lo, MADV_DONTNEED) != 0)
            rc = cairn_from_errno(errno);
    }
    fclose(f);
    free(real);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int
store_backup(struct store *s, const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return store__open_fail(err, errlen, cairn_from_errno(errno), "cannot create %s: %s", dir,
                                strerror(errno));
    char *file = xasprintf("%s/data.mdb", dir);
    struct stat st;
    bool exists = stat(file, &st) == 0;
    free(file);
    if (exists)
        return store__open_fail(err, errlen, CAIRN_EEXIST,
                                "%s already holds a data.mdb: back up into an empty folder", dir);
    int rc = mdb_env_copy2(s->env, dir, MDB_CP_COMPACT);
    if (rc)
        return store__open_fail(err, errlen, store__code(rc), "cannot back up to %s: %s", dir,
                                mdb_strerror(rc));
    return 0;
}

struct store__check {
    size_t records, bad;
    char *err;
    size_t errlen;
};

int
store_check(struct store *s, size_t *records, size_t *bad, store_check_fn cb, void *ud, char *err,
            size_t errlen)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return store__open_fail(err, errlen, store__code(rc), "cannot read %s: %s", s->path,
                                mdb_strerror(rc));
    size_t n = 0, nbad = 0;
    for (int tb = 0; tb < STORE_NTABLES && !rc; tb++) {
        if (s->absent[tb])
            continue;
        MDB_cursor *cur = NULL;
        if ((rc = mdb_cursor_open(txn, s->dbi[tb], &cur)) != 0)
            break;
        MDB_val k, v;
        int c = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        while (c == 0) {
            n++;
            if (cb && cb(ud, (enum store_table)tb, k.mv_data, k.mv_size, v.mv_data, v.mv_size) != 0)
                nbad++;
            c = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
        if (c != MDB_NOTFOUND)
            rc = c;
    }
    /* the free list (LMDB's database 0), which the next write reads: each
     * entry a count of page numbers and the numbers, each within the file */
    MDB_envinfo info;
    MDB_cursor *fc = NULL;
    bool badfree = false;
    if (!rc && mdb_env_info(s->env, &info) == 0 && (rc = mdb_cursor_open(txn, 0, &fc)) == 0) {
        MDB_val k, v;
        int c = mdb_cursor_get(fc, &k, &v, MDB_FIRST);
        while (c == 0 && !badfree) {
            const unsigned char *p = v.mv_data;
            size_t cnt = 0, pg = 0;
            if (v.mv_size < sizeof(size_t) || v.mv_size % sizeof(size_t) != 0) {
                badfree = true;
                break;
            }
            memcpy(&cnt, p, sizeof(cnt));
            if (cnt + 1 != v.mv_size / sizeof(size_t)) {
                badfree = true;
                break;
            }
            for (size_t i = 1; i <= cnt && !badfree; i++) {
                memcpy(&pg, p + i * sizeof(size_t), sizeof(pg));
                badfree = pg < 2 || pg > info.me_last_pgno;
            }
            c = mdb_cursor_get(fc, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(fc);
        if (c != 0 && c != MDB_NOTFOUND)
            rc = c;
    }
    mdb_txn_abort(txn);
    if (rc)
        return store__open_fail(err, errlen, store__code(rc), "reading %s failed: %s", s->path,
                                mdb_strerror(rc));
    if (badfree)
        return store__open_fail(err, errlen, CAIRN_ESTORE,
                                "reading %s failed: its free page list is damaged", s->path);
    *records = n;
    *bad = nbad;
    return 0;
}

const char *
store_table_name(enum store_table tb)
{
    return (unsigned)tb < STORE_NTABLES ? store__names[tb] : "?";
}
