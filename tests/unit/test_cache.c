/* Tests for scheduler/cache.c (step cache keys) and scheduler/publish.c
 * (the models folder): real files in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four above first */
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "artifact.h"
#include "cache.h"
#include "err.h"
#include "publish.h"
#include "testlib.h"
#include "util.h"

struct fx {
    struct tl_dir tmp;
    const char *dir; /* tmp.path */
    char *code;
    struct cache_index *ix;
};

static void
put(const char *dir, const char *name, const char *text)
{
    char *p = xasprintf("%s/%s", dir, name);
    tl_write_text(p, text);
    free(p);
}

static int
setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    if (tl_dir_make(&f->tmp, "cache") != 0)
        return -1;
    f->dir = f->tmp.path;
    f->code = xasprintf("%s/code", f->dir);
    if (mkdir(f->code, 0755) != 0)
        return -1;
    put(f->code, "train.py", "print('train')\n");
    put(f->code, "common.py", "X = 1\n");
    f->ix = cache_index_new();
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    cache_index_free(f->ix);
    tl_dir_remove(&f->tmp);
    free(f->code);
    free(f);
    return 0;
}

static char *const argv1[] = {"python3", "/pipeline/train.py", "--model", "rf", NULL};
static char *const argv2[] = {"python3", "/pipeline/train.py", "--model", "logreg", NULL};
static char *const envp1[] = {"LR=0.1", NULL};
static char *const envp2[] = {"LR=0.2", NULL};
static char *const outs1[] = {"model.pkl", NULL};
static char *const outs2[] = {"model.pkl", "extra.txt", NULL};
static const struct cache_input ins1[] = {{"data", "aa" "00000000000000000000000000000000000000"
                                                   "000000000000000000000000"}};
static const struct cache_input ins2[] = {{"data", "bb" "00000000000000000000000000000000000000"
                                                   "000000000000000000000000"}};
static const struct cache_input ins3[] = {{"raw", "aa" "00000000000000000000000000000000000000"
                                                  "000000000000000000000000"}};

static struct cache_spec
base_spec(const struct fx *f)
{
    struct cache_spec sp = {"iris", "train", "host", argv1, envp1, outs1, 1, NULL, f->code,
                            ins1, 1, NULL, "aa11", NULL, false, NULL};
    return sp;
}

static void
key_of(struct fx *f, const struct cache_spec *sp, char *hex)
{
    char err[256];
    int rc = cache_key(f->ix, sp, hex, err, sizeof(err));
    if (rc)
        fail_msg("cache_key: %s", err);
    assert_int_equal(strlen(hex), CACHE_HEX_LEN);
}

static void
test_key_stable_and_sensitive(void **state)
{
    struct fx *f = *state;
    char a[65], b[65];
    struct cache_spec sp = base_spec(f);
    key_of(f, &sp, a);
    key_of(f, &sp, b);
    assert_string_equal(a, b); /* same inputs, same key */

    struct cache_spec v;
#define DIFFERS(mutate)                                                                        \
    do {                                                                                       \
        v = base_spec(f);                                                                      \
        mutate;                                                                                \
        key_of(f, &v, b);                                                                      \
        if (!strcmp(a, b))                                                                     \
            fail_msg("key did not change with: %s", #mutate);                                  \
    } while (0)
    DIFFERS(v.dag = "iris2");
    DIFFERS(v.task = "train2");
    DIFFERS(v.argv = argv2);
    DIFFERS(v.envp = envp2);
    DIFFERS(v.envp = NULL);
    DIFFERS(v.outputs = outs2; v.noutputs = 2);
    DIFFERS(v.metrics = "model.pkl");
    DIFFERS(v.inputs = ins2);
    DIFFERS(v.inputs = ins3);
    DIFFERS(v.ninputs = 0);
    DIFFERS(v.code_dir = NULL);
    DIFFERS(v.image = f->dir);
    DIFFERS(v.host_fingerprint = "bb22"); /* the host's software changed */
    DIFFERS(v.host_fingerprint = NULL);
    DIFFERS(v.has_entrypoint = true);                        /* entrypoint: [] */
    DIFFERS(v.has_entrypoint = true; v.entrypoint = argv2); /* entrypoint: [...] */
#undef DIFFERS
}

#define DG1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define DG2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

/* A pulled image counts by its digest: a new digest is a miss, the same
 * digest under another tag a hit; an image not pinned has no key. */
static void
test_key_image_digest(void **state)
{
    struct fx *f = *state;
    char a[65], b[65], c[65], err[256];
    struct cache_spec sp = base_spec(f);
    sp.host_fingerprint = NULL;
    sp.image = "reg.example/ml/train:2.3";
    sp.image_digest = DG1;
    key_of(f, &sp, a);
    sp.image = "reg.example/ml/train:latest";
    key_of(f, &sp, b);
    assert_string_equal(a, b);
    sp.image_digest = DG2;
    key_of(f, &sp, c);
    assert_string_not_equal(a, c);
    sp.image_digest = NULL;
    assert_int_not_equal(cache_key(f->ix, &sp, c, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "not pinned"));
}

static void
test_key_fields_do_not_run_together(void **state)
{
    struct fx *f = *state;
    /* ["a b"] and ["a", "b"] must not collide, nor argv and env */
    char *const one[] = {"echo", "a b", NULL};
    char *const two[] = {"echo", "a", "b", NULL};
    char *const envab[] = {"a=b", NULL};
    char *const argab[] = {"echo", "a=b", NULL};
    char *const echo[] = {"echo", NULL};
    char x[65], y[65];
    struct cache_spec sp = base_spec(f);
    sp.code_dir = NULL;
    sp.envp = NULL;
    sp.argv = one;
    key_of(f, &sp, x);
    sp.argv = two;
    key_of(f, &sp, y);
    assert_string_not_equal(x, y);
    sp.argv = argab;
    key_of(f, &sp, x);
    sp.argv = echo;
    sp.envp = envab;
    key_of(f, &sp, y);
    assert_string_not_equal(x, y);
}

static void
test_code_folder_content(void **state)
{
    struct fx *f = *state;
    char a[65], b[65], err[256];
    assert_int_equal(cache_code_digest(f->ix, f->code, a, err, sizeof(err)), 0);

    /* the same size and the same mtime, other bytes: still a miss */
    char *p = xasprintf("%s/train.py", f->code);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    put(f->code, "train.py", "print('TRAIN')\n");
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
    assert_int_equal(cache_code_digest(f->ix, f->code, b, err, sizeof(err)), 0);
    assert_string_not_equal(a, b);

    /* back to the old bytes: the old digest */
    put(f->code, "train.py", "print('train')\n");
    assert_int_equal(cache_code_digest(f->ix, f->code, b, err, sizeof(err)), 0);
    assert_string_equal(a, b);

    /* an executable bit counts */
    assert_int_equal(chmod(p, 0755), 0);
    assert_int_equal(cache_code_digest(f->ix, f->code, b, err, sizeof(err)), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(chmod(p, 0644), 0);
    free(p);

    /* a new file, a new folder, a renamed file count */
    put(f->code, "new.py", "");
    assert_int_equal(cache_code_digest(f->ix, f->code, b, err, sizeof(err)), 0);
    assert_string_not_equal(a, b);
    p = xasprintf("%s/new.py", f->code);
    unlink(p);
    free(p);
    assert_int_equal(cache_code_digest(f->ix, f->code, b, err, sizeof(err)), 0);
    assert_string_equal(a, b);
    p = xasprintf("%s/sub", f->code);
    assert_int_equal(mkdir(p, 0755), 0);
    assert_int_equal(cache_code_digest(f->ix, f->code, b, err, sizeof(err)), 0);
    assert_string_not_equal(a, b);
    put(p, "x.py", "1");
    char c[65];
    assert_int_equal(cache_code_digest(f->ix, f->code, c, err, sizeof(err)), 0);
    assert_string_not_equal(b, c);
    tl_rmtree(p);
    free(p);

    /* a symbolic link's target counts (not followed) */
    p = xasprintf("%s/link", f->code);
    assert_int_equal(symlink("train.py", p), 0);
    assert_int_equal(cache_code_digest(f->ix, f->code, b, err, sizeof(err)), 0);
    unlink(p);
    assert_int_equal(symlink("common.py", p), 0);
    assert_int_equal(cache_code_digest(f->ix, f->code, c, err, sizeof(err)), 0);
    assert_string_not_equal(b, c);
    unlink(p);
    free(p);

    /* bytecode caches and VCS folders are left out */
    p = xasprintf("%s/__pycache__", f->code);
    assert_int_equal(mkdir(p, 0755), 0);
    put(p, "train.cpython-311.pyc", "bytecode");
    free(p);
    put(f->code, "stray.pyc", "bytecode");
    p = xasprintf("%s/.git", f->code);
    assert_int_equal(mkdir(p, 0755), 0);
    put(p, "HEAD", "ref: refs/heads/main\n");
    free(p);
    assert_int_equal(cache_code_digest(f->ix, f->code, b, err, sizeof(err)), 0);
    assert_string_equal(a, b);

    /* a fresh index computes the same digest */
    struct cache_index *ix2 = cache_index_new();
    assert_int_equal(cache_code_digest(ix2, f->code, c, err, sizeof(err)), 0);
    assert_string_equal(a, c);
    cache_index_free(ix2);
}

static void
test_code_folder_errors(void **state)
{
    struct fx *f = *state;
    char hex[65], err[256];
    char *missing = xasprintf("%s/nope", f->dir);
    assert_int_equal(cache_code_digest(f->ix, missing, hex, err, sizeof(err)), CAIRN_EIO);
    assert_non_null(strstr(err, "nope"));
    struct cache_spec sp = base_spec(f);
    sp.code_dir = missing;
    assert_int_equal(cache_key(f->ix, &sp, hex, err, sizeof(err)), CAIRN_EIO);
    free(missing);
    if (geteuid() != 0) { /* root reads anything */
        char *p = xasprintf("%s/train.py", f->code);
        chmod(p, 0);
        assert_int_equal(cache_code_digest(f->ix, f->code, hex, err, sizeof(err)), CAIRN_EIO);
        chmod(p, 0644);
        free(p);
    }
}

static void
test_image_identity(void **state)
{
    struct fx *f = *state;
    char a[65], b[65];
    char *img = xasprintf("%s/rootfs", f->dir);
    assert_int_equal(mkdir(img, 0755), 0);
    struct cache_spec sp = base_spec(f);
    sp.image = img;
    key_of(f, &sp, a);
    key_of(f, &sp, b);
    assert_string_equal(a, b);
    /* a new top-level entry changes the root's mtime */
    struct timeval tv[2] = {{1000000000, 0}, {1000000000, 0}};
    assert_int_equal(utimes(img, tv), 0);
    key_of(f, &sp, b);
    assert_string_not_equal(a, b);
    free(img);
}

/* ---------- publish ---------- */

static void
test_publish_release(void **state)
{
    struct fx *f = *state;
    char err[512], hex[65], hex2[65];
    char *store = xasprintf("%s/store", f->dir), *models = xasprintf("%s/models", f->dir);
    struct art_store *art = NULL;
    assert_int_equal(art_open(&art, store, err, sizeof(err)), 0);
    put(f->dir, "model.pkl", "weights v1");
    put(f->dir, "model2.pkl", "weights v2");
    char *m1 = xasprintf("%s/model.pkl", f->dir), *m2 = xasprintf("%s/model2.pkl", f->dir);
    assert_int_equal(art_put_file(art, m1, hex, NULL, NULL, err, sizeof(err)), 0);
    assert_int_equal(art_put_file(art, m2, hex2, NULL, NULL, err, sizeof(err)), 0);

    struct publish_file pf = {"model.pkl", hex};
    char *dir = NULL;
    int rc = publish_release(art, models, "iris", "deploy", "manual__2026-01-01T00:00:00Z-a1", &pf,
                             1, "{\"run_id\": \"r1\"}\n", &dir, err, sizeof(err));
    if (rc)
        fail_msg("publish: %s", err);
    char *want = xasprintf("%s/iris/deploy/releases/manual__2026-01-01T00:00:00Z-a1", models);
    assert_string_equal(dir, want);
    free(want);
    char *latest = xasprintf("%s/iris/deploy/latest", models);
    char target[256];
    ssize_t tl = readlink(latest, target, sizeof(target) - 1);
    assert_true(tl > 0);
    target[tl] = '\0';
    assert_string_equal(target, "releases/manual__2026-01-01T00:00:00Z-a1");
    char *lm = xasprintf("%s/model.pkl", latest), *lr = xasprintf("%s/publish.json", latest);
    char *text = tl_read_file(lm, NULL);
    assert_string_equal(text, "weights v1");
    free(text);
    text = tl_read_file(lr, NULL);
    assert_string_equal(text, "{\"run_id\": \"r1\"}\n");
    free(text);
    struct stat st;
    assert_int_equal(stat(lm, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0444);
    char *blob = NULL;
    struct stat bst;
    assert_int_equal(art_blob_path(art, hex, &blob), 0);
    assert_int_equal(stat(blob, &bst), 0);
    assert_true(st.st_ino != bst.st_ino); /* a copy, not a link to the blob */
    free(blob);
    free(dir);

    /* a second release switches latest; the first stays */
    pf.sha256 = hex2;
    rc = publish_release(art, models, "iris", "deploy", "run/2 with spaces-a1", &pf, 1, "{}\n",
                         &dir, err, sizeof(err));
    if (rc)
        fail_msg("publish: %s", err);
    assert_non_null(strstr(dir, "/releases/run_2_with_spaces-a1"));
    text = tl_read_file(lm, NULL);
    assert_string_equal(text, "weights v2");
    free(text);
    free(dir);
    char *old = xasprintf("%s/iris/deploy/releases/manual__2026-01-01T00:00:00Z-a1/model.pkl",
                          models);
    text = tl_read_file(old, NULL);
    assert_string_equal(text, "weights v1");
    free(text);
    free(old);

    /* the same release again (a resent result) keeps what is there */
    pf.sha256 = hex;
    rc = publish_release(art, models, "iris", "deploy", "manual__2026-01-01T00:00:00Z-a1", &pf, 1,
                         "{\"other\": 1}\n", NULL, err, sizeof(err));
    assert_int_equal(rc, 0);
    text = tl_read_file(lr, NULL);
    assert_string_equal(text, "{\"run_id\": \"r1\"}\n");
    free(text);

    /* a blob that is not stored: an error, latest unchanged, no leftovers */
    pf.sha256 = "0000000000000000000000000000000000000000000000000000000000000000";
    rc = publish_release(art, models, "iris", "deploy", "r3-a1", &pf, 1, "{}\n", NULL, err,
                         sizeof(err));
    assert_int_equal(rc, CAIRN_ENOENT);
    assert_non_null(strstr(err, "model.pkl"));
    tl = readlink(latest, target, sizeof(target) - 1);
    assert_true(tl > 0);
    target[tl] = '\0';
    assert_string_equal(target, "releases/manual__2026-01-01T00:00:00Z-a1");
    char *rels = xasprintf("%s/iris/deploy/releases", models);
    int n = 0;
    DIR *d = opendir(rels);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.' || (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")))
            n++;
    closedir(d);
    assert_int_equal(n, 2); /* the two releases, no temporary folder */
    free(rels);

    free(lm);
    free(lr);
    free(latest);
    free(m1);
    free(m2);
    art_close(art);
    free(store);
    free(models);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* A run's code snapshot stands for the folder: the key follows the
 * snapshot's digest and does not read the folder (edited, even gone). */
static void
test_key_code_snapshot(void **state)
{
    struct fx *f = *state;
    char a[65], b[65], c[65];
    struct cache_spec sp = base_spec(f);
    sp.code_digest = "11" "00000000000000000000000000000000000000" "000000000000000000000000";
    key_of(f, &sp, a);
    sp.code_dir = "/nonexistent/code/folder";
    key_of(f, &sp, b);
    assert_string_equal(a, b);
    sp.code_digest = "22" "00000000000000000000000000000000000000" "000000000000000000000000";
    key_of(f, &sp, c);
    assert_string_not_equal(a, c);
}

/* latest is the release of the newest logical date (ties: the newest
 * attempt), whatever order they are published in. */
static void
test_publish_latest_order(void **state)
{
    struct fx *f = *state;
    char err[512], hex[65];
    char *store = xasprintf("%s/store", f->dir), *models = xasprintf("%s/models", f->dir);
    struct art_store *art = NULL;
    assert_int_equal(art_open(&art, store, err, sizeof(err)), 0);
    put(f->dir, "model.pkl", "weights");
    char *m1 = xasprintf("%s/model.pkl", f->dir);
    assert_int_equal(art_put_file(art, m1, hex, NULL, NULL, err, sizeof(err)), 0);
    struct publish_file pf = {"model.pkl", hex};
    char *latest = xasprintf("%s/iris/train/latest", models);
    static const struct {
        const char *release, *record;
        bool takes;
        const char *latest_after;
    } steps[] = {
        {"d1203-a1", "{\"logical_date\": \"2026-12-03T00:00:00Z\", \"attempt\": 1}\n", true,
         "releases/d1203-a1"},
        /* a backfill of an older date finishes later: latest stays */
        {"d1126-a1", "{\"logical_date\": \"2026-11-26T00:00:00Z\", \"attempt\": 1}\n", false,
         "releases/d1203-a1"},
        /* a newer attempt of the newest date takes it */
        {"d1203-a2", "{\"logical_date\": \"2026-12-03T00:00:00Z\", \"attempt\": 2}\n", true,
         "releases/d1203-a2"},
        /* a retry of an old run does not */
        {"d1126-a2", "{\"logical_date\": \"2026-11-26T00:00:00Z\", \"attempt\": 2}\n", false,
         "releases/d1203-a2"},
        /* a newer date does */
        {"d1204-a1", "{\"logical_date\": \"2026-12-04T00:00:00Z\", \"attempt\": 1}\n", true,
         "releases/d1204-a1"},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        char *dir = NULL;
        assert_int_equal(publish_build(art, models, "iris", "train", steps[i].release, &pf, 1,
                                       steps[i].record, &dir, err, sizeof(err)),
                         0);
        bool switched = !steps[i].takes;
        assert_int_equal(
            publish_switch(models, "iris", "train", steps[i].release, &switched, err, sizeof(err)),
            0);
        assert_int_equal(switched, steps[i].takes);
        char target[256];
        ssize_t tl = readlink(latest, target, sizeof(target) - 1);
        assert_true(tl > 0);
        target[tl] = '\0';
        if (strcmp(target, steps[i].latest_after) != 0)
            fail_msg("after %s: latest -> %s, want %s", steps[i].release, target,
                     steps[i].latest_after);
        /* every release stays, whole */
        char *kept = xasprintf("%s/model.pkl", dir);
        char *text = tl_read_file(kept, NULL);
        assert_string_equal(text, "weights");
        free(text);
        free(kept);
        free(dir);
    }
    free(latest);
    free(m1);
    art_close(art);
    free(store);
    free(models);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_key_code_snapshot),
        T(test_key_stable_and_sensitive),
        T(test_key_image_digest),
        T(test_key_fields_do_not_run_together),
        T(test_code_folder_content),
        T(test_code_folder_errors),
        T(test_image_identity),
        T(test_publish_release),
        T(test_publish_latest_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
