/* Tests for store.c's release of the pages of the file a process has read
 * (store_release_pages): a real LMDB environment in a temporary directory,
 * the process's RSS read from /proc/self/status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four above first */
#include <cmocka.h>

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "store.h"
#include "testlib.h"
#include "util.h"

struct fx {
    struct tl_dir tmp;
};

static int
setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    if (tl_dir_make(&f->tmp, "store-pages") != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    tl_dir_remove(&f->tmp);
    free(f);
    return 0;
}

static struct store *
open_ok(const char *dir)
{
    struct store *s = NULL;
    char err[512];
    int rc = store_open(&s, dir, 0, err, sizeof(err));
    if (rc != 0)
        fail_msg("store_open %s: %s: %s", dir, cairn_err_name(rc), err);
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

/* kB of the process's file-backed resident pages (/proc/self/status) */
static long
rss_file_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "RssFile: %ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

/* Reads every record of the pages test, checking each; returns how many. */
static int
read_pages_records(struct store_txn *t, int n)
{
    int good = 0;
    for (int i = 0; i < n; i++) {
        char key[32];
        void *p = NULL;
        snprintf(key, sizeof(key), "k%06d", i);
        if (store_get(t, STORE_TIS, key, &p) != 0)
            continue;
        const char *pad = json_string_value(json_object_get(p, "pad"));
        if (json_integer_value(json_object_get(p, "i")) == i && pad && strlen(pad) == 1000 &&
            pad[0] == 'a' + i % 26)
            good++;
        json_decref(p);
    }
    return good;
}

/* The pages of the file the process read leave its RSS when released, with
 * a reader open meanwhile, and everything reads back the same. */
static void
test_release_pages(void **state)
{
    struct store *s = open_ok(((struct fx *)*state)->tmp.path);
    enum { N = 20000 };
    char pad[1001];
    for (int b = 0; b < N; b += 1000) {
        struct store_txn *t = begin(s, true);
        for (int i = b; i < b + 1000; i++) {
            char key[32];
            snprintf(key, sizeof(key), "k%06d", i);
            memset(pad, 'a' + i % 26, 1000);
            pad[1000] = '\0';
            json_t *o = json_pack("{sIss}", "i", (json_int_t)i, "pad", pad);
            assert_int_equal(store_put(t, STORE_TIS, key, o), 0);
            json_decref(o);
        }
        commit_ok(s, t);
    }
    assert_int_equal(store_release_pages(s), 0);
    long before = rss_file_kb();
    struct store_txn *r = begin(s, false);
    assert_int_equal(read_pages_records(r, N), N);
    long read = rss_file_kb();
    /* 20,000 records of 1 KB: some 20 MB of the file mapped */
    assert_true(read - before > 10 * 1024);
    assert_int_equal(store_release_pages(s), 0);
    long released = rss_file_kb();
    assert_true(read - released > (read - before) / 2);
    /* the reader that was open reads on, and a new one too */
    assert_int_equal(read_pages_records(r, N), N);
    store_txn_abort(r);
    r = begin(s, false);
    assert_int_equal(read_pages_records(r, N), N);
    store_txn_abort(r);
    /* writes after a release land as usual */
    struct store_txn *t = begin(s, true);
    json_t *o = json_pack("{sI}", "i", (json_int_t)7);
    assert_int_equal(store_put(t, STORE_RUNS, "after", o), 0);
    json_decref(o);
    commit_ok(s, t);
    assert_int_equal(store_release_pages(s), 0);
    r = begin(s, false);
    void *p = NULL;
    assert_int_equal(store_get(r, STORE_RUNS, "after", &p), 0);
    assert_int_equal(json_integer_value(json_object_get(p, "i")), 7);
    json_decref(p);
    store_txn_abort(r);
    store_close(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_release_pages, setup, teardown),
    };
    log_init("test_store_pages", LOG_ERR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
