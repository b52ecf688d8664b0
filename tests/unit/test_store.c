/* Tests for store.c: real LMDB environments in temporary directories. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four above first */
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "store.h"
#include "testlib.h"
#include "util.h"

/* Each test gets a fresh temporary directory, removed (and unmounted) by
 * the teardown even when an assertion fails. */
struct fx {
    struct tl_dir tmp;
    const char *dir; /* tmp.path */
};

static int
setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    if (tl_dir_make(&f->tmp, "store") != 0) {
        free(f);
        return -1;
    }
    f->dir = f->tmp.path;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    /* A failed test may leave the store open on the mount: it is detached
     * lazily then, and goes away when the process exits. */
    tl_dir_remove(&f->tmp);
    free(f);
    return 0;
}

static const char *
fx_dir(void **state)
{
    return ((struct fx *)*state)->dir;
}

static struct store *
open_ok(const char *dir, size_t map_size)
{
    struct store *s = NULL;
    char err[512];
    int rc = store_open(&s, dir, map_size, err, sizeof(err));
    if (rc != 0)
        fail_msg("store_open %s: %s: %s", dir, cairn_err_name(rc), err);
    assert_string_equal(err, "");
    assert_non_null(s);
    return s;
}

static struct store_txn *
begin(struct store *s, bool write)
{
    struct store_txn *t = NULL;
    int rc = store_txn_begin(s, write, &t);
    if (rc != 0)
        fail_msg("store_txn_begin: %s: %s", cairn_err_name(rc), store_last_error(s));
    return t;
}

static void
commit_ok(struct store *s, struct store_txn *t)
{
    int rc = store_txn_commit(t);
    if (rc != 0)
        fail_msg("commit: %s: %s", cairn_err_name(rc), store_last_error(s));
}

static void
put_int(struct store_txn *t, enum store_table tb, const char *key, long long i)
{
    json_t *o = json_pack("{sI}", "i", (json_int_t)i);
    int rc = store_put(t, tb, key, o);
    json_decref(o);
    if (rc != 0)
        fail_msg("put %s: %s", key, cairn_err_name(rc));
}

/* The "i" of a record, or -1 if there is none. */
static long long
get_int(struct store_txn *t, enum store_table tb, const char *key)
{
    void *p = NULL;
    long long v;
    int rc = store_get(t, tb, key, &p);
    if (rc == CAIRN_ENOENT)
        return -1;
    if (rc != 0)
        fail_msg("get %s: %s", key, cairn_err_name(rc));
    v = json_integer_value(json_object_get(p, "i"));
    json_decref(p);
    return v;
}

static void
test_open_close(void **state)
{
    struct store *s = open_ok(fx_dir(state), 0);
    struct stat st;
    char *p = xasprintf("%s/state/data.mdb", fx_dir(state));
    assert_int_equal(stat(p, &st), 0);
    free(p);
    assert_string_equal(store_last_error(s), "");
    store_close(s);
    store_close(NULL);
    store_txn_abort(NULL);
    assert_int_equal(store_txn_commit(NULL), CAIRN_EINVAL);

    /* DIR is created when missing; a parent that does not exist is not. */
    char *nested = xasprintf("%s/sub", fx_dir(state));
    s = open_ok(nested, 0);
    store_close(s);
    free(nested);

    char err[512];
    struct store *bad = (struct store *)&err; /* must stay untouched */
    nested = xasprintf("%s/no/such/dir", fx_dir(state));
    assert_int_not_equal(store_open(&bad, nested, 0, err, sizeof(err)), 0);
    assert_ptr_equal(bad, (struct store *)&err);
    assert_non_null(strstr(err, "cannot open state at"));
    assert_non_null(strstr(err, "No such file or directory"));
    free(nested);
}

static void
test_roundtrip_all_tables(void **state)
{
    const char *key = "run\x1fone"; /* keys join their parts with \x1f */
    struct store *s = open_ok(fx_dir(state), 0);
    struct store_txn *t = begin(s, true);

    for (int tb = 0; tb < STORE_NTABLES; tb++) {
        json_t *o = json_pack("{ss si sb s[ii] s{ss}}", "name", "iris\x1fv1", "table", tb, "paused",
                              1, "list", 1, 2, "nested", "k", "v");
        void *got = NULL;
        assert_int_equal(store_put(t, tb, key, o), 0);
        /* the borrowed object is not changed */
        assert_null(json_object_get(o, "v"));
        assert_int_equal(store_get(t, tb, key, &got), 0);
        assert_int_equal(json_integer_value(json_object_get(got, "v")), STORE_RECORD_VERSION);
        json_object_del(got, "v");
        assert_true(json_equal(got, o));
        json_decref(got);
        json_decref(o);
    }
    commit_ok(s, t);
    store_close(s);

    /* Everything is there after reopening; then delete it all. */
    s = open_ok(fx_dir(state), 0);
    t = begin(s, true);
    for (int tb = 0; tb < STORE_NTABLES; tb++) {
        void *got = NULL;
        size_t n = 0;
        assert_int_equal(store_get(t, tb, key, &got), 0);
        assert_int_equal(json_integer_value(json_object_get(got, "table")), tb);
        json_decref(got);
        assert_int_equal(store_del(t, tb, key), 0);
        got = (void *)&n;
        assert_int_equal(store_get(t, tb, key, &got), CAIRN_ENOENT);
        assert_ptr_equal(got, (void *)&n);
        assert_int_equal(store_del(t, tb, key), CAIRN_ENOENT);
    }
    /* not found does not poison the transaction */
    put_int(t, STORE_RUNS, "after", 7);
    commit_ok(s, t);

    t = begin(s, false);
    for (int tb = 0; tb < STORE_NTABLES; tb++)
        assert_int_equal(get_int(t, tb, key), -1);
    assert_int_equal(get_int(t, STORE_RUNS, "after"), 7);
    assert_int_equal(store_txn_commit(t), 0);
    store_close(s);
}

static void
test_bad_arguments(void **state)
{
    struct store *s = open_ok(fx_dir(state), 0);
    struct store_txn *t = begin(s, false);
    json_t *o = json_pack("{si}", "i", 1);
    json_t *arr = json_pack("[i]", 1);
    void *got = NULL;
    char *longkey = xmalloc(600);

    /* writes through a read transaction */
    assert_int_equal(store_put(t, STORE_RUNS, "k", o), CAIRN_EINVAL);
    assert_non_null(strstr(store_last_error(s), "read transaction"));
    assert_int_equal(store_put_raw(t, STORE_RUNS, "k", "x", 1), CAIRN_EINVAL);
    assert_int_equal(store_del(t, STORE_RUNS, "k"), CAIRN_EINVAL);
    int64_t id = -5;
    assert_int_equal(store_next_id(t, "runs", &id), CAIRN_EINVAL);
    assert_int_equal(id, -5);
    store_txn_abort(t);

    t = begin(s, true);
    assert_int_equal(store_put(t, STORE_RUNS, "", o), CAIRN_EINVAL);
    assert_int_equal(store_put(t, STORE_RUNS, NULL, o), CAIRN_EINVAL);
    assert_int_equal(store_put(t, STORE_NTABLES, "k", o), CAIRN_EINVAL);
    assert_int_equal(store_put(t, (enum store_table) - 1, "k", o), CAIRN_EINVAL);
    assert_int_equal(store_put(t, STORE_RUNS, "k", arr), CAIRN_EINVAL);
    assert_int_equal(store_put(t, STORE_RUNS, "k", NULL), CAIRN_EINVAL);
    memset(longkey, 'k', 599);
    longkey[599] = '\0';
    assert_int_equal(store_put(t, STORE_RUNS, longkey, o), CAIRN_EINVAL);
    assert_non_null(strstr(store_last_error(s), "longer than the limit"));
    assert_int_equal(store_get(t, STORE_RUNS, longkey, &got), CAIRN_EINVAL);
    /* a 511-byte key is fine */
    longkey[511] = '\0';
    assert_int_equal(store_put(t, STORE_RUNS, longkey, o), 0);
    assert_int_equal(get_int(t, STORE_RUNS, longkey), 1);
    /* none of the refusals poisoned the transaction */
    commit_ok(s, t);

    /* one write transaction at a time */
    t = begin(s, true);
    struct store_txn *t2 = (struct store_txn *)&got;
    assert_int_equal(store_txn_begin(s, true, &t2), CAIRN_ESTATE);
    assert_ptr_equal(t2, (struct store_txn *)&got);
    store_txn_abort(t);
    t = begin(s, true);
    store_txn_abort(t);

    free(longkey);
    json_decref(arr);
    json_decref(o);
    store_close(s);
}

static void
test_isolation(void **state)
{
    struct store *s = open_ok(fx_dir(state), 0);
    struct store_txn *w = begin(s, true), *r;

    put_int(w, STORE_TIS, "a", 1);
    commit_ok(s, w);

    r = begin(s, false);
    w = begin(s, true);
    put_int(w, STORE_TIS, "a", 2);
    put_int(w, STORE_TIS, "b", 2);
    /* the reader keeps its snapshot while the writer works and commits */
    assert_int_equal(get_int(r, STORE_TIS, "a"), 1);
    assert_int_equal(get_int(w, STORE_TIS, "a"), 2);
    commit_ok(s, w);
    assert_int_equal(get_int(r, STORE_TIS, "a"), 1);
    assert_int_equal(get_int(r, STORE_TIS, "b"), -1);
    store_txn_abort(r);

    /* an aborted write leaves nothing */
    w = begin(s, true);
    put_int(w, STORE_TIS, "c", 3);
    store_del(w, STORE_TIS, "a");
    store_txn_abort(w);
    r = begin(s, false);
    assert_int_equal(get_int(r, STORE_TIS, "a"), 2);
    assert_int_equal(get_int(r, STORE_TIS, "c"), -1);
    store_txn_abort(r);
    store_close(s);
}

static void
test_raw(void **state)
{
    struct store *s = open_ok(fx_dir(state), 0);
    struct store_txn *t = begin(s, true);
    static const char yaml[] = "dag: x\n\0binary\xff\x00tail";
    const void *data = NULL;
    size_t len = 0;
    char *big = xmalloc(100000);

    for (size_t i = 0; i < 100000; i++)
        big[i] = (char)(i * 7);
    assert_int_equal(store_put_raw(t, STORE_DAG_SOURCES, "iris\x1fv3", yaml, sizeof(yaml)), 0);
    assert_int_equal(store_put_raw(t, STORE_DAG_SOURCES, "empty", NULL, 0), 0);
    assert_int_equal(store_put_raw(t, STORE_DAG_SOURCES, "big", big, 100000), 0);
    assert_int_equal(store_put_raw(t, STORE_DAG_SOURCES, "bad", NULL, 3), CAIRN_EINVAL);
    commit_ok(s, t);

    t = begin(s, false);
    assert_int_equal(store_get_raw(t, STORE_DAG_SOURCES, "iris\x1fv3", &data, &len), 0);
    assert_int_equal(len, sizeof(yaml));
    assert_memory_equal(data, yaml, sizeof(yaml));
    assert_int_equal(store_get_raw(t, STORE_DAG_SOURCES, "empty", &data, &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(store_get_raw(t, STORE_DAG_SOURCES, "big", &data, &len), 0);
    assert_int_equal(len, 100000);
    assert_memory_equal(data, big, 100000);
    data = NULL;
    len = 42;
    assert_int_equal(store_get_raw(t, STORE_DAG_SOURCES, "iris\x1fv4", &data, &len), CAIRN_ENOENT);
    assert_null(data);
    assert_int_equal(len, 42);
    /* a raw value is not a record */
    void *got = NULL;
    assert_int_equal(store_get(t, STORE_DAG_SOURCES, "iris\x1fv3", &got), CAIRN_ESTORE);
    assert_null(got);
    store_txn_abort(t);
    free(big);
    store_close(s);
}

/* Scan callback: append "key," to an sb; stop with 99 at key "stop". */
static int
collect_cb(void *ud, const char *key, const void *json)
{
    struct sb *sb = ud;
    assert_true(json_is_object((const json_t *)json));
    assert_int_equal(json_integer_value(json_object_get(json, "v")), STORE_RECORD_VERSION);
    sb_puts(sb, key);
    sb_putc(sb, ',');
    return strcmp(key, "stop") == 0 ? 99 : 0;
}

/* Test notation for keys: '|' stands for the \x1f separator and '^' for
 * the byte 0xff. Returns a new string. */
static char *
kx(const char *s)
{
    char *out = xstrdup(s);
    for (char *p = out; *p; p++) {
        if (*p == '|')
            *p = '\x1f';
        else if (*p == '^')
            *p = (char)0xff;
    }
    return out;
}

/* The same, back: for messages and comparisons. */
static char *
kshow(const char *s)
{
    char *out = xstrdup(s);
    for (char *p = out; *p; p++) {
        if (*p == '\x1f')
            *p = '|';
        else if (*p == (char)0xff)
            *p = '^';
    }
    return out;
}

static void
put_keys(struct store *s, const char *const *keys, size_t n)
{
    struct store_txn *t = begin(s, true);
    for (size_t i = 0; i < n; i++) {
        char *k = kx(keys[i]);
        put_int(t, STORE_ATTEMPTS, k, (long long)i);
        free(k);
    }
    commit_ok(s, t);
}

/* Scan STORE_ATTEMPTS; the keys visited, each followed by ','. */
static char *
scan_str(struct store_txn *t, enum store_table tb, const char *prefix, bool rev, size_t limit)
{
    struct sb sb;
    int rc;
    sb_init(&sb);
    if (rev)
        rc = store_scan_rev(t, tb, prefix, limit, collect_cb, &sb);
    else
        rc = store_scan(t, tb, prefix, collect_cb, &sb);
    assert_int_equal(rc, 0);
    return sb_take(&sb);
}

/* prefix and want in test notation; prefix NULL is passed as NULL. */
static void
expect_scan(struct store_txn *t, const char *prefix, bool rev, size_t limit, const char *want)
{
    char *p = prefix ? kx(prefix) : NULL;
    char *raw = scan_str(t, STORE_ATTEMPTS, p, rev, limit);
    char *got = kshow(raw);
    if (strcmp(got, want) != 0)
        fail_msg("scan%s '%s' limit %zu: got '%s', want '%s'", rev ? "_rev" : "",
                 prefix ? prefix : "(null)", limit, got, want);
    free(got);
    free(raw);
    free(p);
}

static void
test_scan_prefix(void **state)
{
    struct store *s = open_ok(fx_dir(state), 0);
    /* "a|1" is a prefix of "a|10" and of "a|1|x"; '|' sorts before digits */
    static const char *const keys[] = {"b", "a|2", "a", "a|10", "ab", "a|1|x", "a|1", "c|", "|z"};
    struct store_txn *t;
    struct sb sb;

    put_keys(s, keys, sizeof(keys) / sizeof(keys[0]));
    t = begin(s, false);
    expect_scan(t, "", false, 0, "|z,a,a|1,a|1|x,a|10,a|2,ab,b,c|,");
    expect_scan(t, NULL, false, 0, "|z,a,a|1,a|1|x,a|10,a|2,ab,b,c|,");
    expect_scan(t, "a", false, 0, "a,a|1,a|1|x,a|10,a|2,ab,");
    expect_scan(t, "a|", false, 0, "a|1,a|1|x,a|10,a|2,");
    expect_scan(t, "a|1", false, 0, "a|1,a|1|x,a|10,");
    expect_scan(t, "a|1|", false, 0, "a|1|x,");
    expect_scan(t, "a|10", false, 0, "a|10,");
    expect_scan(t, "a|3", false, 0, "");
    expect_scan(t, "c", false, 0, "c|,");
    expect_scan(t, "zzz", false, 0, "");
    expect_scan(t, "|", false, 0, "|z,");
    expect_scan(t, "b|", false, 0, "");
    /* other tables are separate */
    char *other = scan_str(t, STORE_TIS, "", false, 0);
    assert_string_equal(other, "");
    free(other);
    store_txn_abort(t);

    /* a callback's nonzero return stops the scan and is returned */
    t = begin(s, true);
    put_int(t, STORE_ATTEMPTS, "stop", 0);
    sb_init(&sb);
    assert_int_equal(store_scan(t, STORE_ATTEMPTS, "", collect_cb, &sb), 99);
    char *seen = kshow(sb.buf);
    assert_string_equal(seen, "|z,a,a|1,a|1|x,a|10,a|2,ab,b,c|,stop,");
    free(seen);
    sb_free(&sb);
    sb_init(&sb);
    assert_int_equal(store_scan_rev(t, STORE_ATTEMPTS, "", 0, collect_cb, &sb), 99);
    assert_string_equal(sb.buf, "stop,");
    sb_free(&sb);
    assert_int_equal(store_scan(t, STORE_ATTEMPTS, "", NULL, NULL), CAIRN_EINVAL);
    store_txn_abort(t);
    store_close(s);
}

static void
test_scan_rev(void **state)
{
    struct store *s = open_ok(fx_dir(state), 0);
    static const char *const keys[] = {"a", "a|1", "a|1|x", "a|10", "a|2", "ab",
                                       "b", "p^",  "p^a",   "p^^",  "q",   "^^"};
    struct store_txn *t;

    put_keys(s, keys, sizeof(keys) / sizeof(keys[0]));
    t = begin(s, false);
    expect_scan(t, "", true, 0, "^^,q,p^^,p^a,p^,b,ab,a|2,a|10,a|1|x,a|1,a,");
    expect_scan(t, "", true, 3, "^^,q,p^^,");
    expect_scan(t, "a", true, 0, "ab,a|2,a|10,a|1|x,a|1,a,");
    expect_scan(t, "a|", true, 2, "a|2,a|10,");
    expect_scan(t, "a|1", true, 0, "a|10,a|1|x,a|1,");
    expect_scan(t, "a|1", true, 1, "a|10,");
    expect_scan(t, "a|3", true, 0, "");
    expect_scan(t, "a|0", true, 0, "");
    /* prefixes ending in 0xff: the successor key must skip them */
    expect_scan(t, "p^", true, 0, "p^^,p^a,p^,");
    expect_scan(t, "p^^", true, 0, "p^^,");
    expect_scan(t, "p", true, 0, "p^^,p^a,p^,");
    expect_scan(t, "^", true, 0, "^^,");
    expect_scan(t, "^^^", true, 0, "");
    expect_scan(t, "q", true, 0, "q,");
    expect_scan(t, "0", true, 0, "");
    expect_scan(t, "z", true, 0, "");
    /* and forwards */
    expect_scan(t, "p^", false, 0, "p^,p^a,p^^,");
    store_txn_abort(t);
    store_close(s);
}

/* Scans over random keys agree with a sorted list filtered by prefix. */
static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
test_scan_model(void **state)
{
    /* in test notation: '|' is 0x1f, '^' is 0xff */
    static const char alpha[] = {'a', 'b', '|', '\x7f', '\xfe', '^'};
    enum { NKEYS = 300, KMAX = 5 };
    struct store *s = open_ok(fx_dir(state), 0);
    struct store_txn *t = begin(s, true);
    char *keys[NKEYS];
    size_t n = 0;
    unsigned seed = 12345;

    while (n < NKEYS) {
        char k[KMAX + 1];
        size_t len = 1 + (seed = seed * 1103515245u + 12345u) / 65536 % KMAX;
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            k[i] = alpha[seed / 65536 % sizeof(alpha)];
        }
        k[len] = '\0';
        char *raw = kx(k);
        bool dup = false;
        for (size_t i = 0; i < n && !dup; i++)
            dup = strcmp(keys[i], raw) == 0;
        if (dup) {
            free(raw);
            continue;
        }
        keys[n++] = raw;
        put_int(t, STORE_ATTEMPTS, raw, 0);
    }
    commit_ok(s, t);
    /* strcmp compares as unsigned char, which is LMDB's order too */
    qsort(keys, n, sizeof(keys[0]), cmp_str);

    t = begin(s, false);
    for (size_t p = 0; p < 200; p++) {
        char prefix[4];
        size_t plen = (seed = seed * 1103515245u + 12345u) / 65536 % 4;
        for (size_t i = 0; i < plen; i++) {
            seed = seed * 1103515245u + 12345u;
            prefix[i] = alpha[seed / 65536 % sizeof(alpha)];
        }
        prefix[plen] = '\0';
        char *praw = kx(prefix);
        size_t limit = p % 3 == 0 ? 0 : 1 + p % 5;
        struct sb fwd, rev;
        size_t nrev = 0;
        sb_init(&fwd);
        sb_init(&rev);
        for (size_t i = 0; i < n; i++)
            if (strncmp(keys[i], praw, plen) == 0) {
                sb_puts(&fwd, keys[i]);
                sb_putc(&fwd, ',');
            }
        for (size_t i = n; i-- > 0;)
            if (strncmp(keys[i], praw, plen) == 0 && (limit == 0 || nrev < limit)) {
                sb_puts(&rev, keys[i]);
                sb_putc(&rev, ',');
                nrev++;
            }
        char *rf = sb_take(&fwd), *rr = sb_take(&rev);
        char *wf = kshow(rf), *wr = kshow(rr);
        expect_scan(t, prefix, false, 0, wf);
        expect_scan(t, prefix, true, limit, wr);
        free(wf);
        free(wr);
        free(rf);
        free(rr);
        free(praw);
    }
    store_txn_abort(t);
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    store_close(s);
}

static void
test_corrupt_records(void **state)
{
    struct store *s = open_ok(fx_dir(state), 0);
    struct store_txn *t = begin(s, true);
    static const char *const bad[][2] = {
        {"r2", "{not json"},
        {"r3", "[1,2]"},
        {"r4", "{\"i\":4}"},             /* no "v" */
        {"r5", "{\"i\":5,\"v\":\"1\"}"}, /* "v" not a number */
        {"r6", ""},
        {"r7", "\xff\xfe\x00"},
    };
    void *got = NULL;

    put_int(t, STORE_RUNS, "r1", 1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(store_put_raw(t, STORE_RUNS, bad[i][0], bad[i][1], strlen(bad[i][1])), 0);
    assert_int_equal(store_put_raw(t, STORE_RUNS, "r8", "{\"i\":8,\"v\":2}", 13), 0);
    put_int(t, STORE_RUNS, "r9", 9);
    commit_ok(s, t);

    t = begin(s, false);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        got = NULL;
        int rc = store_get(t, STORE_RUNS, bad[i][0], &got);
        if (rc != CAIRN_ESTORE)
            fail_msg("%s: want CAIRN_ESTORE, got %s", bad[i][0], cairn_err_name(rc));
        assert_null(got);
        assert_non_null(strstr(store_last_error(s), bad[i][0]));
    }
    assert_int_equal(store_get(t, STORE_RUNS, "r8", &got), CAIRN_EVERSION);
    assert_null(got);
    assert_non_null(strstr(store_last_error(s), "newer"));
    /* the transaction is still fine, and scans skip what does not decode */
    assert_int_equal(get_int(t, STORE_RUNS, "r1"), 1);
    char *all = scan_str(t, STORE_RUNS, "r", false, 0);
    assert_string_equal(all, "r1,r9,");
    free(all);
    all = scan_str(t, STORE_RUNS, "r", true, 1);
    assert_string_equal(all, "r9,");
    free(all);
    all = scan_str(t, STORE_RUNS, "r", true, 2);
    assert_string_equal(all, "r9,r1,");
    free(all);
    store_txn_abort(t);
    store_close(s);
}

static void
test_counters(void **state)
{
    struct store *s = open_ok(fx_dir(state), 0);
    struct store_txn *t = begin(s, true);
    int64_t id = 0;

    for (int64_t want = 1; want <= 5; want++) {
        assert_int_equal(store_next_id(t, "runs", &id), 0);
        assert_int_equal(id, want);
    }
    assert_int_equal(store_next_id(t, "backfills", &id), 0);
    assert_int_equal(id, 1);
    assert_int_equal(store_next_id(t, "", &id), CAIRN_EINVAL);
    assert_int_equal(store_next_id(t, NULL, &id), CAIRN_EINVAL);
    commit_ok(s, t);

    /* an aborted increment is not kept */
    t = begin(s, true);
    assert_int_equal(store_next_id(t, "runs", &id), 0);
    assert_int_equal(id, 6);
    store_txn_abort(t);
    store_close(s);

    s = open_ok(fx_dir(state), 0);
    t = begin(s, true);
    assert_int_equal(store_next_id(t, "runs", &id), 0);
    assert_int_equal(id, 6);
    assert_int_equal(store_next_id(t, "backfills", &id), 0);
    assert_int_equal(id, 2);
    /* stored as {"value": n} in meta */
    void *rec = NULL;
    assert_int_equal(store_get(t, STORE_META, "counter/runs", &rec), 0);
    assert_int_equal(json_integer_value(json_object_get(rec, "value")), 6);
    json_decref(rec);
    /* a damaged counter is reported, not reset */
    assert_int_equal(store_put_raw(t, STORE_META, "counter/bad", "{\"value\":\"x\",\"v\":1}", 19),
                     0);
    id = -7;
    assert_int_equal(store_next_id(t, "bad", &id), CAIRN_ESTORE);
    assert_int_equal(id, -7);
    commit_ok(s, t);
    store_close(s);
}

static void
test_stat(void **state)
{
    struct store *s = open_ok(fx_dir(state), 0);
    struct store_txn *t = begin(s, true);
    size_t n = 99;
    char key[16];

    assert_int_equal(store_stat(s, STORE_ARTIFACTS, &n), 0);
    assert_int_equal(n, 0);
    for (int i = 0; i < 250; i++) {
        snprintf(key, sizeof(key), "art%04d", i);
        put_int(t, STORE_ARTIFACTS, key, i);
    }
    commit_ok(s, t);
    assert_int_equal(store_stat(s, STORE_ARTIFACTS, &n), 0);
    assert_int_equal(n, 250);
    /* meta holds the schema version */
    assert_int_equal(store_stat(s, STORE_META, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(store_stat(s, STORE_NTABLES, &n), CAIRN_EINVAL);
    store_close(s);
}

static void
test_schema_newer_refused(void **state)
{
    struct store *s = open_ok(fx_dir(state), 0);
    struct store_txn *t = begin(s, true);
    json_t *o = json_pack("{si}", "value", 99);
    char err[512];

    put_int(t, STORE_RUNS, "keep", 1);
    assert_int_equal(store_put(t, STORE_META, "schema_version", o), 0);
    json_decref(o);
    commit_ok(s, t);
    store_close(s);

    struct store *out = NULL;
    assert_int_equal(store_open(&out, fx_dir(state), 0, err, sizeof(err)), CAIRN_EVERSION);
    assert_null(out);
    assert_non_null(strstr(err, "newer Cairn"));
    assert_non_null(strstr(err, "schema 99"));
    assert_non_null(strstr(err, "this build reads 1"));
    /* refused twice the same way: the first refusal changed nothing */
    assert_int_equal(store_open(&out, fx_dir(state), 0, err, sizeof(err)), CAIRN_EVERSION);

    /* a schema record in a newer record format is refused as well */
    char *path = xasprintf("%s/two", fx_dir(state));
    s = open_ok(path, 0);
    t = begin(s, true);
    assert_int_equal(store_put_raw(t, STORE_META, "schema_version", "{\"value\":1,\"v\":5}", 17),
                     0);
    commit_ok(s, t);
    store_close(s);
    assert_int_equal(store_open(&out, path, 0, err, sizeof(err)), CAIRN_EVERSION);
    assert_null(out);
    assert_non_null(strstr(err, "newer Cairn"));
    free(path);
}

static void
test_garbage_file_refused(void **state)
{
    char *sdir = xasprintf("%s/state", fx_dir(state));
    char *data = xasprintf("%s/state/data.mdb", fx_dir(state));
    char *buf = xmalloc(65536);
    struct store *out = NULL;
    char err[512];

    for (size_t i = 0; i < 65536; i++)
        buf[i] = (char)("garbage!"[i % 8] ^ (i >> 8));
    assert_int_equal(mkdir(sdir, 0700), 0);
    tl_write_file(data, buf, 65536);
    assert_int_equal(store_open(&out, fx_dir(state), 0, err, sizeof(err)), CAIRN_ESTORE);
    assert_null(out);
    assert_non_null(strstr(err, "not an LMDB database"));
    assert_non_null(strstr(err, sdir));

    /* shorter than a page */
    tl_write_file(data, "hello, this is not LMDB\n", 24);
    assert_int_equal(store_open(&out, fx_dir(state), 0, err, sizeof(err)), CAIRN_ESTORE);
    assert_null(out);
    assert_non_null(strstr(err, "not an LMDB database"));

    /* the garbage is left alone for whoever investigates */
    struct stat st;
    assert_int_equal(stat(data, &st), 0);
    assert_int_equal(st.st_size, 24);

    /* DIR/state being a file */
    char *other = xasprintf("%s/other", fx_dir(state));
    char *ostate = xasprintf("%s/other/state", fx_dir(state));
    assert_int_equal(mkdir(other, 0700), 0);
    tl_write_file(ostate, "x", 1);
    assert_int_not_equal(store_open(&out, other, 0, err, sizeof(err)), 0);
    assert_null(out);
    assert_non_null(strstr(err, "cannot open state at"));
    free(ostate);
    free(other);
    free(buf);
    free(data);
    free(sdir);
}

/* Crash durability: a child commits transactions and reports each commit
 * on a pipe; it is SIGKILLed mid-way. Everything reported must be there,
 * and each transaction is all or nothing. */
enum { CRASH_PER_TXN = 3 };

static void
crash_child(const char *dir, int wfd)
{
    struct store *s = NULL;
    char err[512], key[32];

    if (store_open(&s, dir, 0, err, sizeof(err)) != 0)
        _exit(2);
    for (uint32_t i = 1; i < 1000000; i++) {
        struct store_txn *t = NULL;
        int64_t id = 0;
        if (store_txn_begin(s, true, &t) != 0)
            _exit(3);
        for (int j = 0; j < CRASH_PER_TXN; j++) {
            json_t *o = json_pack("{sIsi}", "i", (json_int_t)i, "j", j);
            snprintf(key, sizeof(key), "k%07u\x1f%d", i, j);
            if (store_put(t, STORE_TIS, key, o) != 0)
                _exit(4);
            json_decref(o);
        }
        if (store_next_id(t, "crash", &id) != 0 || id != (int64_t)i)
            _exit(5);
        if (store_txn_commit(t) != 0)
            _exit(6);
        if (write(wfd, &i, sizeof(i)) != (ssize_t)sizeof(i))
            _exit(7);
    }
    _exit(0);
}

static int
count_cb(void *ud, const char *key, const void *json)
{
    (void)key;
    (void)json;
    (*(size_t *)ud)++;
    return 0;
}

static void
test_crash_durability(void **state)
{
    int fds[2];
    pid_t pid;
    uint32_t last = 0, got;
    int status;
    size_t reports = 0;
    char key[32];

    assert_int_equal(pipe(fds), 0);
    pid = tl_fork();
    if (pid == 0) {
        close(fds[0]);
        crash_child(fx_dir(state), fds[1]);
    }
    close(fds[1]);
    while (reports < 40 && read(fds[0], &got, sizeof(got)) == (ssize_t)sizeof(got)) {
        assert_int_equal(got, last + 1);
        last = got;
        reports++;
    }
    assert_int_equal(reports, 40);
    assert_int_equal(kill(pid, SIGKILL), 0);
    status = tl_wait(pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    /* reports written before the kill */
    while (read(fds[0], &got, sizeof(got)) == (ssize_t)sizeof(got)) {
        assert_int_equal(got, last + 1);
        last = got;
    }
    close(fds[0]);

    struct store *s = open_ok(fx_dir(state), 0);
    struct store_txn *t = begin(s, false);
    for (uint32_t i = 1; i <= last; i++)
        for (int j = 0; j < CRASH_PER_TXN; j++) {
            snprintf(key, sizeof(key), "k%07u\x1f%d", i, j);
            if (get_int(t, STORE_TIS, key) != (long long)i)
                fail_msg("committed record %s (reported) is missing", key);
        }
    /* at most one transaction committed without being reported, whole */
    size_t total = 0, extra = 0;
    assert_int_equal(store_scan(t, STORE_TIS, "", count_cb, &total), 0);
    snprintf(key, sizeof(key), "k%07u\x1f", last + 1);
    assert_int_equal(store_scan(t, STORE_TIS, key, count_cb, &extra), 0);
    assert_true(extra == 0 || extra == CRASH_PER_TXN);
    assert_int_equal(total, (size_t)last * CRASH_PER_TXN + extra);
    store_txn_abort(t);

    /* the counter agrees, and the writer lock the child held is usable */
    t = begin(s, true);
    int64_t id = 0;
    assert_int_equal(store_next_id(t, "crash", &id), 0);
    assert_int_equal(id, (int64_t)last + (extra ? 2 : 1));
    commit_ok(s, t);
    store_close(s);
}

/* A transaction of 4000-byte records until the map fills. */
static int
fill(struct store_txn *t, const char *prefix, int start, int max, int *n)
{
    char *blob = xmalloc(4001), key[32];
    int rc = 0, i;

    memset(blob, 'x', 4000);
    blob[4000] = '\0';
    json_t *o = json_pack("{ss}", "blob", blob);
    for (i = 0; i < max; i++) {
        snprintf(key, sizeof(key), "%s%05d", prefix, start + i);
        rc = store_put(t, STORE_ARTIFACTS, key, o);
        if (rc != 0)
            break;
    }
    *n = i;
    json_decref(o);
    free(blob);
    return rc;
}

static void
test_map_full(void **state)
{
    struct store *s = open_ok(fx_dir(state), 1 << 20);
    struct store_txn *t = begin(s, true), *r;
    char key[32];
    int n = 0, m = 0;
    size_t entries = 0;

    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "base%02d", i);
        put_int(t, STORE_RUNS, key, i);
    }
    commit_ok(s, t);

    /* a reader that stays open across the failure */
    r = begin(s, false);
    t = begin(s, true);
    assert_int_equal(fill(t, "big", 0, 100000, &n), CAIRN_EFULL);
    assert_true(n > 50);
    assert_non_null(strstr(store_last_error(s), "MDB_MAP_FULL"));
    /* the transaction is dead: everything on it fails the same way */
    json_t *small = json_pack("{si}", "i", 0);
    void *rec = NULL;
    assert_int_equal(store_put(t, STORE_RUNS, "nope", small), CAIRN_EFULL);
    json_decref(small);
    assert_int_equal(store_get(t, STORE_RUNS, "base00", &rec), CAIRN_EFULL);
    assert_null(rec);
    assert_int_equal(store_txn_commit(t), CAIRN_EFULL);
    assert_non_null(strstr(store_last_error(s), "MDB_MAP_FULL"));

    /* With the reader still open the map cannot grow yet: a retry fails
     * again at the same point, cleanly. */
    t = begin(s, true);
    assert_int_equal(fill(t, "big", 0, 100000, &m), CAIRN_EFULL);
    assert_int_equal(m, n);
    store_txn_abort(t);
    store_txn_abort(r);

    /* committed data is intact */
    t = begin(s, false);
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "base%02d", i);
        assert_int_equal(get_int(t, STORE_RUNS, key), i);
    }
    assert_int_equal(get_int(t, STORE_RUNS, "nope"), -1);
    store_txn_abort(t);
    assert_int_equal(store_stat(s, STORE_ARTIFACTS, &entries), 0);
    assert_int_equal(entries, 0);

    /* Nothing open now: the next transaction grows the map and the retry
     * of the same changes (n puts and the one that failed) succeeds. */
    n++;
    t = begin(s, true);
    assert_int_equal(fill(t, "big", 0, n, &m), 0);
    assert_int_equal(m, n);
    commit_ok(s, t);
    assert_int_equal(store_stat(s, STORE_ARTIFACTS, &entries), 0);
    assert_int_equal((int)entries, n);
    store_close(s);

    /* reopening with the small size adopts what the data needs */
    s = open_ok(fx_dir(state), 1 << 20);
    t = begin(s, false);
    assert_int_equal(get_int(t, STORE_RUNS, "base09"), 9);
    snprintf(key, sizeof(key), "big%05d", n - 1);
    assert_int_equal(store_get(t, STORE_ARTIFACTS, key, &rec), 0);
    assert_int_equal(strlen(json_string_value(json_object_get(rec, "blob"))), 4000);
    json_decref(rec);
    store_txn_abort(t);
    /* and keeps growing as needed: a transaction of 1.2 MB commits at the
     * latest on its second attempt */
    int failures = 0;
    for (int round = 0; round < 6; round++) {
        int rc, attempt;
        for (attempt = 0; attempt < 2; attempt++) {
            t = begin(s, true);
            rc = fill(t, "more", round * 300, 300, &m);
            if (rc == 0)
                rc = store_txn_commit(t);
            else
                store_txn_abort(t);
            if (rc == 0)
                break;
            assert_int_equal(rc, CAIRN_EFULL);
            failures++;
        }
        assert_true(attempt < 2);
    }
    assert_true(failures > 0);
    assert_int_equal(store_stat(s, STORE_ARTIFACTS, &entries), 0);
    assert_int_equal((int)entries, n + 1800);
    store_close(s);
}

static void
test_disk_full(void **state)
{
    struct fx *f = *state;
    char *sub = xasprintf("%s/cairn", f->dir);
    char key[32];
    int batches = 0, rc = 0, m = 0;
    struct store_txn *t;

    if (!tl_dir_mount_tmpfs(&f->tmp, f->dir, "2m")) {
        print_message("skipping disk-full test\n");
        free(sub);
        skip();
    }

    struct store *s = open_ok(sub, 0); /* 8 GiB map on a 2 MiB disk */
    t = begin(s, true);
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "base%02d", i);
        put_int(t, STORE_RUNS, key, i);
    }
    commit_ok(s, t);

    for (batches = 0; batches < 1000; batches++) {
        t = begin(s, true);
        rc = fill(t, "b", batches * 16, 16, &m);
        if (rc == 0)
            rc = store_txn_commit(t);
        else
            store_txn_abort(t);
        if (rc != 0)
            break;
    }
    assert_int_equal(rc, CAIRN_EFULL);
    assert_true(batches > 5);
    const char *msg = store_last_error(s);
    if (!strstr(msg, "No space left") && !strstr(msg, "Input/output error"))
        fail_msg("unexpected message '%s'", msg);

    /* committed data is intact, in this process and after reopening */
    assert_int_equal(store_stat(s, STORE_ARTIFACTS, &(size_t){0}), 0);
    t = begin(s, false);
    assert_int_equal(get_int(t, STORE_RUNS, "base05"), 5);
    store_txn_abort(t);
    /* freeing space inside the file lets writes proceed again */
    t = begin(s, true);
    for (int i = 0; i < 16; i++) {
        snprintf(key, sizeof(key), "b%05d", i);
        assert_int_equal(store_del(t, STORE_ARTIFACTS, key), 0);
    }
    commit_ok(s, t);
    store_close(s);

    s = open_ok(sub, 0);
    t = begin(s, false);
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "base%02d", i);
        assert_int_equal(get_int(t, STORE_RUNS, key), i);
    }
    size_t entries = 0;
    assert_int_equal(store_scan(t, STORE_ARTIFACTS, "b", count_cb, &entries), 0);
    assert_int_equal((int)entries, (batches - 1) * 16);
    void *rec = NULL;
    snprintf(key, sizeof(key), "b%05d", batches * 16 - 1);
    assert_int_equal(store_get(t, STORE_ARTIFACTS, key, &rec), 0);
    json_decref(rec);
    snprintf(key, sizeof(key), "b%05d", batches * 16);
    assert_int_equal(get_int(t, STORE_ARTIFACTS, key), -1);
    store_txn_abort(t);
    store_close(s);
    free(sub);
}

/* Readers in another thread always see whole transactions. */
struct reader_arg {
    struct store *s;
    _Atomic int stop;
    _Atomic int reads;
    int torn;
    int errors;
};

static void *
reader_main(void *p)
{
    struct reader_arg *a = p;
    while (!a->stop) {
        struct store_txn *t = NULL;
        void *x = NULL, *y = NULL;
        if (store_txn_begin(a->s, false, &t) != 0) {
            a->errors++;
            break;
        }
        if (store_get(t, STORE_RUNS, "x", &x) == 0 && store_get(t, STORE_RUNS, "y", &y) == 0) {
            if (!json_equal(json_object_get(x, "i"), json_object_get(y, "i")))
                a->torn++;
            a->reads++;
        }
        json_decref(x);
        json_decref(y);
        store_txn_abort(t);
    }
    return NULL;
}

static void
test_reader_thread(void **state)
{
    struct store *s = open_ok(fx_dir(state), 0);
    struct reader_arg a = {.s = s};
    pthread_t th;

    assert_int_equal(pthread_create(&th, NULL, reader_main, &a), 0);
    for (int i = 0; i < 100; i++) {
        struct store_txn *t = begin(s, true);
        put_int(t, STORE_RUNS, "x", i);
        put_int(t, STORE_RUNS, "y", i);
        commit_ok(s, t);
    }
    for (int waited = 0; a.reads == 0 && a.errors == 0 && waited < 5000; waited++)
        usleep(1000);
    a.stop = 1;
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(a.reads > 0);
    assert_int_equal(a.errors, 0);
    assert_int_equal(a.torn, 0);
    store_close(s);
}

/* A store opened to read only (the check, the backup) leaves data.mdb as
 * it was, byte for byte, reads what is there, refuses writes, and reads a
 * table the file does not have as empty. */
static void
test_readonly(void **state)
{
    char *data = xasprintf("%s/state/data.mdb", fx_dir(state));
    struct store *s = open_ok(fx_dir(state), 0);
    struct store_txn *t = begin(s, true);
    json_t *rec = json_pack("{s:s}", "state", "success");
    assert_int_equal(store_put(t, STORE_RUNS, "d\x1fr1", rec), 0);
    json_decref(rec);
    assert_int_equal(store_txn_commit(t), 0);
    store_close(s);
    /* a table the file lacks (as after a damaged main database, or a store
     * from before that table) */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    char *sdir = xasprintf("%s/state", fx_dir(state));
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
    assert_int_equal(mdb_env_open(env, sdir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "notifications", 0, &dbi), 0);
    assert_int_equal(mdb_drop(txn, dbi, 1), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    size_t len0 = 0, len1 = 0;
    char *before = tl_read_file(data, &len0);
    char err[512];
    s = NULL;
    assert_int_equal(store_open_readonly(&s, fx_dir(state), err, sizeof(err)), 0);
    t = begin(s, false);
    void *got = NULL;
    assert_int_equal(store_get(t, STORE_RUNS, "d\x1fr1", &got), 0);
    assert_string_equal(json_string_value(json_object_get(got, "state")), "success");
    json_decref(got);
    assert_int_equal(store_get(t, STORE_NOTIFICATIONS, "x", &got), CAIRN_ENOENT);
    store_txn_abort(t);
    size_t n = 1, bad = 1;
    assert_int_equal(store_check(s, &n, &bad, NULL, NULL, err, sizeof(err)), 0);
    assert_int_equal(bad, 0);
    assert_true(n >= 2); /* the run and the schema record */
    struct store_txn *w = NULL;
    assert_int_not_equal(store_txn_begin(s, true, &w), 0);
    store_close(s);
    char *after = tl_read_file(data, &len1);
    assert_int_equal(len0, len1);
    assert_memory_equal(before, after, len0);

    /* a table every store has had from the start is damage when missing
     * (a damaged main database): never read as an empty table */
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
    assert_int_equal(mdb_env_open(env, sdir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "runs", 0, &dbi), 0);
    assert_int_equal(mdb_drop(txn, dbi, 1), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    s = NULL;
    assert_int_equal(store_open_readonly(&s, fx_dir(state), err, sizeof(err)), CAIRN_ESTORE);
    assert_null(s);
    assert_non_null(strstr(err, "its table runs is missing; the file is damaged"));
    free(before);
    free(after);
    free(sdir);
    free(data);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_open_close),
        T(test_roundtrip_all_tables),
        T(test_bad_arguments),
        T(test_isolation),
        T(test_raw),
        T(test_scan_prefix),
        T(test_scan_rev),
        T(test_scan_model),
        T(test_corrupt_records),
        T(test_counters),
        T(test_stat),
        T(test_schema_newer_refused),
        T(test_garbage_file_refused),
        T(test_readonly),
        T(test_crash_durability),
        T(test_map_full),
        T(test_disk_full),
        T(test_reader_thread),
    };
    log_init("test_store", LOG_ERR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
