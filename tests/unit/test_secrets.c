/* Tests for scheduler/secrets.c: reading tasks' secrets from the secrets
 * folder, and refusing files others may read or own. */
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
#include <unistd.h>

#include "err.h"
#include "secrets.h"
#include "testlib.h"

static void
test_read(void **state)
{
    (void)state;
    struct tl_dir d = {0};
    assert_int_equal(tl_dir_make(&d, "secrets"), 0);
    char *f = tl_dir_file(&d, "wandb");
    tl_write_file_mode(f, "sk-live-1\n", 10, 0600);
    char *v = NULL, err[512];
    size_t len = 0;
    assert_int_equal(secrets_read(d.path, "wandb", NULL, &v, &len, err, sizeof(err)), 0);
    assert_string_equal(v, "sk-live-1"); /* one trailing newline dropped */
    assert_int_equal(len, 9);
    secrets_free(v, len);
    chmod(f, 0400);
    v = NULL;
    assert_int_equal(secrets_read(d.path, "wandb", NULL, &v, &len, err, sizeof(err)), 0);
    secrets_free(v, len);

    /* readable by others: refused, naming the file and the fix */
    chmod(f, 0644);
    v = NULL;
    assert_int_equal(secrets_read(d.path, "wandb", NULL, &v, &len, err, sizeof(err)), CAIRN_EINVAL);
    assert_null(v);
    assert_non_null(strstr(err, "secret 'wandb' refused"));
    assert_non_null(strstr(err, f));
    assert_non_null(strstr(err, "mode 0644; it must be 0600 or stricter"));
    assert_null(strstr(err, "sk-live"));
    chmod(f, 0640);
    assert_int_equal(secrets_read(d.path, "wandb", NULL, &v, &len, err, sizeof(err)), CAIRN_EINVAL);

    /* the scheduler's own key, as systemd's credentials folder holds it */
    chmod(f, 0600);
    char *key = tl_dir_file(&d, "token");
    tl_write_file_mode(key, "k", 1, 0600);
    assert_int_equal(secrets_read(d.path, "token", key, &v, &len, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, "is the scheduler's own key file"));
    assert_int_equal(secrets_read(d.path, "wandb", key, &v, &len, err, sizeof(err)), 0);
    secrets_free(v, len);
    v = NULL;
    free(key);

    /* owned by another user (root can make one) */
    if (geteuid() == 0) {
        chmod(f, 0600);
        assert_int_equal(chown(f, 65534, 65534), 0);
        assert_int_equal(secrets_read(d.path, "wandb", NULL, &v, &len, err, sizeof(err)),
                         CAIRN_EINVAL);
        assert_non_null(strstr(err, "is owned by uid 65534, not by the scheduler's uid 0"));
    }

    /* missing, a link, a folder, a bad name, too large */
    assert_int_equal(secrets_read(d.path, "nosuch", NULL, &v, &len, err, sizeof(err)),
                     CAIRN_ENOENT);
    assert_non_null(strstr(err, "secret 'nosuch' cannot be read"));
    assert_non_null(strstr(err, "no such file"));
    char *l = tl_dir_file(&d, "link");
    char *other = tl_dir_file(&d, "other");
    tl_write_file_mode(other, "x", 1, 0600);
    assert_int_equal(symlink(other, l), 0);
    assert_int_not_equal(secrets_read(d.path, "link", NULL, &v, &len, err, sizeof(err)), 0);
    char *sub = tl_dir_file(&d, "sub");
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_not_equal(secrets_read(d.path, "sub", NULL, &v, &len, err, sizeof(err)), 0);
    assert_int_equal(secrets_read(d.path, "../etc/passwd", NULL, &v, &len, err, sizeof(err)),
                     CAIRN_EINVAL);
    char *big = tl_dir_file(&d, "big");
    char *bytes = calloc(1, SECRETS_MAX_BYTES + 1);
    memset(bytes, 'a', SECRETS_MAX_BYTES + 1);
    tl_write_file_mode(big, bytes, SECRETS_MAX_BYTES + 1, 0600);
    assert_int_equal(secrets_read(d.path, "big", NULL, &v, &len, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, "larger than 65536 bytes"));
    free(bytes);
    free(big);
    free(sub);
    free(l);
    free(other);
    free(f);
    tl_dir_remove(&d);
}

static void
test_folder(void **state)
{
    (void)state;
    char *saved = getenv("CREDENTIALS_DIRECTORY") ? strdup(getenv("CREDENTIALS_DIRECTORY")) : NULL;
    unsetenv("CREDENTIALS_DIRECTORY");
    assert_null(secrets_folder(NULL));
    assert_string_equal(secrets_folder("/srv/s"), "/srv/s");
    char *v = NULL, err[512];
    size_t len = 0;
    assert_int_equal(secrets_read(NULL, "wandb", NULL, &v, &len, err, sizeof(err)), CAIRN_ENOENT);
    assert_non_null(strstr(err, "--secrets-dir"));
    /* systemd's credentials, when no folder is given */
    setenv("CREDENTIALS_DIRECTORY", "/run/credentials/cairn-scheduler.service", 1);
    assert_string_equal(secrets_folder(NULL), "/run/credentials/cairn-scheduler.service");
    assert_string_equal(secrets_folder("/srv/s"), "/srv/s"); /* the flag wins */
    if (saved)
        setenv("CREDENTIALS_DIRECTORY", saved, 1);
    else
        unsetenv("CREDENTIALS_DIRECTORY");
    free(saved);
}

static void
test_digest(void **state)
{
    (void)state;
    char hex[65];
    secrets_digest("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read),
        cmocka_unit_test(test_folder),
        cmocka_unit_test(test_digest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
