/* Tests for tokfile.c: the API tokens file. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "err.h"
#include "testlib.h"
#include "tokfile.h"

/* sha256("secret") */
#define H_SECRET "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"

static void
test_create_and_lookup(void **state)
{
    (void)state;
    struct tl_dir d = {0};
    assert_int_equal(tl_dir_make(&d, "tokf"), 0);
    char *path = tl_dir_file(&d, "tokens");
    char tok1[TOKF_TOKEN_LEN + 1], tok2[TOKF_TOKEN_LEN + 1], err[512];
    assert_int_equal(tokf_create(path, "ci", "operator", tok1, err, sizeof(err)), 0);
    assert_int_equal(tokf_create(path, "ro", "viewer", tok2, err, sizeof(err)), 0);
    assert_string_not_equal(tok1, tok2);
    assert_int_equal(strncmp(tok1, "cairn_", 6), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(tokf_create(path, "ci", "admin", tok2, err, sizeof(err)), CAIRN_EEXIST);
    assert_int_equal(tokf_create(path, "bad name", "admin", tok2, err, sizeof(err)), CAIRN_EINVAL);
    assert_int_equal(tokf_create(path, "x", "root", tok2, err, sizeof(err)), CAIRN_EINVAL);

    struct tokf t;
    assert_int_equal(tokf_load(path, &t, err, sizeof(err)), 0);
    assert_int_equal(t.n, 2);
    const struct tokf_entry *e = tokf_lookup(&t, tok1, strlen(tok1));
    assert_non_null(e);
    assert_string_equal(e->name, "ci");
    assert_int_equal(e->role, TOKF_OPERATOR);
    assert_null(tokf_lookup(&t, tok1, strlen(tok1) - 1));
    assert_null(tokf_lookup(&t, "", 0));
    assert_true(tokf_same(&t, path));
    char tok3[TOKF_TOKEN_LEN + 1];
    assert_int_equal(tokf_create(path, "new", "admin", tok3, err, sizeof(err)), 0);
    assert_false(tokf_same(&t, path));
    tokf_free(&t);
    free(path);
    tl_dir_remove(&d);
}

static void
load_err(const char *text, mode_t mode, const char *want)
{
    struct tl_dir d = {0};
    assert_int_equal(tl_dir_make(&d, "tokf"), 0);
    char *path = tl_dir_file(&d, "tokens");
    tl_write_file_mode(path, text, strlen(text), mode);
    chmod(path, mode);
    struct tokf t;
    char err[512] = "";
    int rc = tokf_load(path, &t, err, sizeof(err));
    if (!want) {
        assert_int_equal(rc, 0);
        tokf_free(&t);
    } else {
        assert_int_not_equal(rc, 0);
        if (!strstr(err, want))
            fail_msg("'%s' should say '%s'", err, want);
        assert_int_equal(t.n, 0);
    }
    free(path);
    tl_dir_remove(&d);
}

static void
test_load_checks(void **state)
{
    (void)state;
    load_err("# comment\n\nops admin " H_SECRET "\n", 0600, NULL);
    load_err("ops admin " H_SECRET "\n", 0640, "mode 0640");
    load_err("ops admin " H_SECRET "\n", 0604, "mode 0604");
    load_err("ops admin\n", 0600, ":1: expected 'NAME ROLE SHA256HEX'");
    load_err("\nops god " H_SECRET "\n", 0600, ":2: unknown role 'god'");
    load_err("ops admin 2BB80D\n", 0600, "64 lower-case hex");
    load_err("a viewer " H_SECRET "\na admin " H_SECRET "\n", 0600, "appears twice");
}

static void
test_lookup_known_hash(void **state)
{
    (void)state;
    struct tokf t;
    struct tokf_entry e[2];
    memset(e, 0, sizeof(e));
    memset(&t, 0, sizeof(t));
    strcpy(e[1].name, "s");
    e[1].role = TOKF_ADMIN;
    for (int i = 0; i < 32; i++) {
        unsigned v;
        sscanf(H_SECRET + 2 * i, "%2x", &v);
        e[1].hash[i] = (unsigned char)v;
    }
    t.e = e;
    t.n = 2;
    assert_ptr_equal(tokf_lookup(&t, "secret", 6), &e[1]);
    assert_null(tokf_lookup(&t, "Secret", 6));
    assert_int_equal(tokf_role_parse("operator"), TOKF_OPERATOR);
    assert_int_equal(tokf_role_parse("Operator"), -1);
    assert_string_equal(tokf_role_name(TOKF_ADMIN), "admin");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_lookup),
        cmocka_unit_test(test_load_checks),
        cmocka_unit_test(test_lookup_known_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
