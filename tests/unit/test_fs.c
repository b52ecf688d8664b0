/* Tests for fs.c: folders made (mkdir -p). */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "err.h"
#include "fs.h"
#include "testlib.h"
#include "util.h"

static mode_t
mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    return st.st_mode & 0777;
}

/* fs_mkdirs_mode tries the folder itself first: the results are those of
 * a mkdir -p of every component, whichever of them exist. */
static void
test_mkdirs_mode(void **state)
{
    (void)state;
    struct tl_dir d = {0};
    assert_int_equal(tl_dir_make(&d, "fs"), 0);
    mode_t old = umask(0);
    /* only the last one missing */
    char *one = tl_dir_file(&d, "one");
    assert_int_equal(fs_mkdirs_mode(one, 0700), 0);
    assert_int_equal(mode_of(one), 0700);
    /* all there: nothing changes */
    assert_int_equal(fs_mkdirs_mode(one, 0755), 0);
    assert_int_equal(mode_of(one), 0700);
    /* several missing, below an existing one (left as it is) */
    char *deep = tl_dir_file(&d, "one/a/b/c");
    char *mid = tl_dir_file(&d, "one/a");
    assert_int_equal(fs_mkdirs_mode(deep, 0750), 0);
    assert_int_equal(mode_of(deep), 0750);
    assert_int_equal(mode_of(mid), 0750);
    assert_int_equal(mode_of(one), 0700);
    /* a file in the way, as the folder or as a parent */
    char *file = tl_dir_file(&d, "file");
    tl_write_text(file, "x");
    assert_int_equal(fs_mkdirs_mode(file, 0755), CAIRN_EIO);
    assert_int_equal(errno, ENOTDIR);
    char *below = tl_dir_file(&d, "file/sub/x");
    assert_int_not_equal(fs_mkdirs_mode(below, 0755), 0);
    assert_false(tl_exists(below));
    /* a trailing slash */
    char *slash = tl_dir_file(&d, "two/x/");
    assert_int_equal(fs_mkdirs(slash), 0);
    assert_int_equal(mode_of(slash), 0755);
    umask(old);
    free(slash);
    free(below);
    free(file);
    free(mid);
    free(deep);
    free(one);
    assert_int_equal(tl_dir_remove(&d), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mkdirs_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
