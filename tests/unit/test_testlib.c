/* Tests for testlib.c, the unit tests' shared chores: a helper that quietly
 * did nothing would make the tests built on it pass for the wrong reason. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "testlib.h"
#include "util.h"

static void
test_dir_make_and_remove(void **state)
{
    (void)state;
    struct tl_dir d = {0};
    assert_int_equal(tl_dir_make(&d, "testlib"), 0);
    assert_non_null(d.path);
    assert_non_null(strstr(d.path, "/cairn-testlib-"));
    struct stat st;
    assert_int_equal(lstat(d.path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);

    /* A tree with a symbolic link out of it, a read-only folder and one
     * nobody may enter: all of it goes, and the link's target stays. */
    struct tl_dir outside = {0};
    assert_int_equal(tl_dir_make(&outside, "testlib-outside"), 0);
    char *keep = tl_dir_file(&outside, "keep");
    tl_write_text(keep, "stays");
    char *a = tl_dir_file(&d, "a"), *b = tl_dir_file(&d, "a/b"), *c = tl_dir_file(&d, "c");
    assert_int_equal(mkdir(a, 0755), 0);
    assert_int_equal(mkdir(b, 0755), 0);
    assert_int_equal(mkdir(c, 0755), 0);
    char *f1 = tl_dir_file(&d, "a/b/f"), *f2 = tl_dir_file(&d, "c/g"), *ln = tl_dir_file(&d, "ln");
    tl_write_text(f1, "1");
    tl_write_text(f2, "2");
    assert_int_equal(symlink(outside.path, ln), 0);
    assert_int_equal(chmod(b, 0500), 0);
    assert_int_equal(chmod(c, 0), 0);
    char *path = xstrdup(d.path);
    assert_int_equal(tl_dir_remove(&d), 0);
    assert_false(tl_exists(path));
    assert_null(d.path);
    assert_true(tl_exists(keep));
    /* a removed (or zeroed) one is a no-op */
    assert_int_equal(tl_dir_remove(&d), 0);
    assert_int_equal(tl_dir_remove(&outside), 0);
    assert_false(tl_exists(keep));
    free(path);
    free(keep);
    free(a);
    free(b);
    free(c);
    free(f1);
    free(f2);
    free(ln);
}

/* Put back an environment variable saved with getenv + xstrdup (NULL: it
 * was not set), and free the copy. */
static void
restore_env(const char *name, char *saved)
{
    if (saved)
        setenv(name, saved, 1);
    else
        unsetenv(name);
    free(saved);
}

static char *
save_env(const char *name)
{
    const char *v = getenv(name);
    return v ? xstrdup(v) : NULL;
}

static void
test_dir_under_tmpdir(void **state)
{
    (void)state;
    struct tl_dir base = {0}, d = {0};
    assert_int_equal(tl_dir_make(&base, "testlib"), 0);
    char *saved = save_env("TMPDIR");
    setenv("TMPDIR", base.path, 1);
    int rc = tl_dir_make(&d, "inner");
    restore_env("TMPDIR", saved);
    assert_int_equal(rc, 0);
    char *want = xasprintf("%s/cairn-inner-", base.path);
    assert_memory_equal(d.path, want, strlen(want));
    free(want);
    tl_dir_remove(&d);
    assert_int_equal(tl_dir_remove(&base), 0);

    /* a folder that cannot be made: -1 with errno, d untouched */
    struct tl_dir e = {.nmounts = 5};
    saved = save_env("TMPDIR");
    setenv("TMPDIR", "/no/such/folder", 1);
    errno = 0;
    rc = tl_dir_make(&e, "x");
    int e_errno = errno;
    restore_env("TMPDIR", saved);
    assert_int_equal(rc, -1);
    assert_int_equal(e_errno, ENOENT);
    assert_null(e.path);
    assert_int_equal(e.nmounts, 5);
}

static void
test_tmpfs(void **state)
{
    (void)state;
    struct tl_dir d = {0};
    assert_int_equal(tl_dir_make(&d, "testlib"), 0);
    char *mnt = tl_dir_file(&d, "mnt");
    if (!tl_dir_mount_tmpfs(&d, mnt, "1m")) {
        tl_dir_remove(&d);
        free(mnt);
        skip();
    }
    assert_int_equal(d.nmounts, 1);
    char *file = tl_dir_file(&d, "mnt/f");
    tl_write_text(file, "on tmpfs");
    char *path = xstrdup(d.path);
    /* the mount is undone first, or the folder could not be removed */
    assert_int_equal(tl_dir_remove(&d), 0);
    assert_false(tl_exists(path));
    assert_int_equal(d.nmounts, 0);
    free(path);
    free(file);
    free(mnt);
}

static void
test_files(void **state)
{
    (void)state;
    struct tl_dir d = {0};
    assert_int_equal(tl_dir_make(&d, "testlib"), 0);
    char *p = tl_dir_file(&d, "data.bin");
    static const char bytes[] = {'a', '\0', 'b', '\n'};
    tl_write_file(p, bytes, sizeof(bytes));
    size_t len = 0;
    char *got = tl_read_file(p, &len);
    assert_non_null(got);
    assert_int_equal(len, sizeof(bytes));
    assert_memory_equal(got, bytes, sizeof(bytes));
    assert_int_equal(got[len], '\0');
    free(got);

    /* truncated, not appended to */
    tl_write_text(p, "x");
    got = tl_read_file(p, NULL);
    assert_string_equal(got, "x");
    free(got);

    /* the mode is exactly the one asked for, whatever the umask */
    mode_t old = umask(077);
    tl_write_file_mode(p, "y", 1, 0644);
    umask(old);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    tl_write_file_mode(p, "z", 1, 0400);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0400);

    char *missing = tl_dir_file(&d, "missing");
    assert_null(tl_read_file(missing, &len));
    assert_false(tl_exists(missing));
    /* /proc files have no size: read to the end anyway */
    got = tl_read_file("/proc/self/status", NULL);
    assert_non_null(got);
    assert_non_null(strstr(got, "Pid:"));
    free(got);
    free(missing);
    free(p);
    tl_dir_remove(&d);
}

static void
test_fixtures(void **state)
{
    (void)state;
    char *text = tl_read_file(TL_FIXTURES "/dag-errors/cycle.yaml", NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "dag:"));
    free(text);
}

static void
test_sh(void **state)
{
    (void)state;
    assert_int_equal(tl_sh("exit %d", 0), 0);
    assert_int_equal(tl_sh("exit %d", 7), 7);
    assert_int_equal(tl_sh("kill -KILL $$"), -1);
    int st = -5;
    char *out = tl_sh_output(&st, "printf '%s|%%s' 'two words'; exit 3", "one");
    assert_string_equal(out, "one|two words");
    assert_int_equal(st, 3);
    free(out);
    out = tl_sh_output(&st, "true");
    assert_string_equal(out, "");
    assert_int_equal(st, 0);
    free(out);

    assert_true(tl_have_program("sh"));
    assert_false(tl_have_program("no-such-program-cairn"));
    assert_false(tl_have_program("/bin/sh")); /* a name, not a path */
    char *saved = save_env("PATH");
    setenv("PATH", "/no/such/folder", 1);
    bool found = tl_have_program("sh");
    restore_env("PATH", saved);
    assert_false(found);
}

static void
test_fork_and_wait(void **state)
{
    (void)state;
    pid_t pid = tl_fork();
    if (pid == 0)
        _exit(42);
    int st = tl_wait(pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 42);

    pid = tl_fork();
    if (pid == 0) {
        pause();
        _exit(0);
    }
    assert_int_equal(kill(pid, SIGTERM), 0);
    st = tl_wait(pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGTERM);
}

static void
count_cb(uv_timer_t *t)
{
    (*(int *)t->data)++;
}

static int
at_least_3(void *arg)
{
    return *(int *)arg >= 3;
}

static int
never(void *arg)
{
    (void)arg;
    return 0;
}

static void
test_loops(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_timer_t t;
    int fired = 0;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(uv_timer_init(&loop, &t), 0);
    t.data = &fired;
    assert_int_equal(uv_timer_start(&t, count_cb, 5, 5), 0);
    /* the loop runs until the condition holds */
    assert_int_equal(tl_run_until(&loop, at_least_3, &fired, 5000), 0);
    assert_true(fired >= 3);
    /* and gives up after the timeout when it never does */
    int64_t t0 = clock_mono_ms();
    assert_int_equal(tl_run_until(&loop, never, NULL, 100), -1);
    int64_t took = clock_mono_ms() - t0;
    assert_true(took >= 100 && took < 5000);
    uv_timer_stop(&t);
    uv_close((uv_handle_t *)&t, NULL);
    /* a spin runs pending callbacks: here the close callback */
    tl_spin(&loop, 2);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dir_make_and_remove),
        cmocka_unit_test(test_dir_under_tmpdir),
        cmocka_unit_test(test_tmpfs),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_sh),
        cmocka_unit_test(test_fork_and_wait),
        cmocka_unit_test(test_loops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
