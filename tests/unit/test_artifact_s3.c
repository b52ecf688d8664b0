/* Tests for artifact_s3.c that need no server: the s3:// URI and its
 * settings, the credentials (file and environment), the names it gives.
 * The requests themselves are tested against a real S3-compatible server
 * in tests/integration/test_s3.sh. */
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

#include "artifact.h"
#include "err.h"
#include "testlib.h"
#include "util.h"

#define HEX "01" TAIL
#define TAIL "23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void
env_creds(const char *ak, const char *sk)
{
    if (ak)
        setenv("AWS_ACCESS_KEY_ID", ak, 1);
    else
        unsetenv("AWS_ACCESS_KEY_ID");
    if (sk)
        setenv("AWS_SECRET_ACCESS_KEY", sk, 1);
    else
        unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
}

static void
test_uri_and_names(void **state)
{
    (void)state;
    env_creds("AKIDEXAMPLE", "wJalrXUtnFEMI-secret-value");
    struct art_store *s = NULL;
    char err[512] = "";
    assert_int_equal(
        art_open(&s, "s3://my-bucket/runs/a/?endpoint=http://127.0.0.1:9000/", err, sizeof(err)),
        0);
    assert_string_equal(art_uri(s),
                        "s3://my-bucket/runs/a?endpoint=http://127.0.0.1:9000&region=us-east-1"
                        "&path_style=1");
    assert_null(strstr(art_uri(s), "AKIDEXAMPLE"));
    assert_null(strstr(art_uri(s), "secret"));
    char *uri = NULL;
    assert_int_equal(art_blob_uri(s, HEX, &uri), 0);
    assert_string_equal(uri, "s3://my-bucket/runs/a/blobs/sha256/01/" TAIL);
    free(uri);
    char *path = NULL;
    assert_int_equal(art_blob_path(s, HEX, &path), CAIRN_EINVAL);
    assert_null(path);

    /* The URI it gives opens the same store (what a worker does). */
    struct art_store *again = NULL;
    assert_int_equal(art_open(&again, art_uri(s), err, sizeof(err)), 0);
    assert_string_equal(art_uri(again), art_uri(s));
    art_close(again);
    art_close(s);

    /* Settings: options over the query; no endpoint means AWS, virtual-hosted. */
    struct art_open_opts o = {.region = "eu-west-3", .path_style = -1};
    assert_int_equal(art_open_with(&s, "s3://bkt", &o, err, sizeof(err)), 0);
    assert_string_equal(art_uri(s), "s3://bkt?endpoint=https://s3.eu-west-3.amazonaws.com"
                                    "&region=eu-west-3&path_style=0");
    assert_int_equal(art_blob_uri(s, HEX, &uri), 0);
    assert_string_equal(uri, "s3://bkt/blobs/sha256/01/" TAIL);
    free(uri);
    art_close(s);
    o = (struct art_open_opts){.endpoint = "https://minio.example:9000", .path_style = 0};
    assert_int_equal(
        art_open_with(&s, "s3://bkt/p?endpoint=http://other:1&region=r1", &o, err, sizeof(err)), 0);
    assert_string_equal(art_uri(s),
                        "s3://bkt/p?endpoint=https://minio.example:9000&region=r1&path_style=0");
    art_close(s);
    assert_int_equal(art_open(&s, "s3://bkt?endpoint=http://[::1]:9000", err, sizeof(err)), 0);
    assert_string_equal(art_uri(s), "s3://bkt?endpoint=http://[::1]:9000&region=us-east-1"
                                    "&path_style=1");
    art_close(s);
}

static void
test_bad_uris(void **state)
{
    (void)state;
    env_creds("AK", "SK");
    struct art_store *s = (struct art_store *)0x1; /* must stay untouched */
    char err[512];
    static const struct {
        const char *uri, *says;
    } cases[] = {
        {"s3://", "not a bucket name"},
        {"s3://Upper/x", "not a bucket name"},
        {"s3://ab/x", "not a bucket name"},
        {"s3://bkt/a/../b", "the prefix"},
        {"s3://bkt/a//b", "the prefix"},
        {"s3://bkt/a b", "the prefix"},
        {"s3://bkt/x?colour=red", "unknown setting 'colour'"},
        {"s3://bkt/x?path_style=yes", "unknown setting 'path_style'"},
        {"s3://bkt/x?endpoint", "is not name=value"},
        {"s3://bkt/x?endpoint=ftp://h", "is not http(s)://host"},
        {"s3://bkt/x?endpoint=http://h/path", "is not http(s)://host"},
        {"s3://bkt/x?endpoint=http://127.0.0.1:", "is not http(s)://host"},
        {"s3://bkt/x?endpoint=http://127.0.0.1:9x", "is not http(s)://host"},
        {"s3://bkt/x?endpoint=http://h:1:2", "is not http(s)://host"},
        {"s3://bkt/x?region=us east", "is not a region name"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        assert_int_equal(art_open(&s, cases[i].uri, err, sizeof(err)), CAIRN_EINVAL);
        if (!strstr(err, cases[i].says))
            fail_msg("%s: '%s' does not say '%s'", cases[i].uri, err, cases[i].says);
    }
    assert_ptr_equal(s, (struct art_store *)0x1);
}

static void
test_credentials(void **state)
{
    (void)state;
    struct tl_dir d = {0};
    assert_int_equal(tl_dir_make(&d, "s3creds"), 0);
    struct art_store *s = NULL;
    char err[512] = "";

    env_creds(NULL, NULL);
    assert_int_equal(art_open(&s, "s3://bkt/x", err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, "AWS_ACCESS_KEY_ID"));
    assert_non_null(strstr(err, "--artifacts-credentials"));
    env_creds("AK", NULL);
    assert_int_equal(art_open(&s, "s3://bkt/x", err, sizeof(err)), CAIRN_EINVAL);

    char *file = tl_dir_file(&d, "creds");
    const char *text = "# test\n[default]\naws_access_key_id = AKFILE\n"
                       "aws_secret_access_key=the-file-secret\nregion = ignored\n";
    tl_write_file_mode(file, text, strlen(text), 0644);
    struct art_open_opts o = {.path_style = -1, .credentials_file = file};
    assert_int_equal(art_open_with(&s, "s3://bkt/x", &o, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, "mode 0644"));
    assert_null(strstr(err, "the-file-secret"));
    assert_int_equal(chmod(file, 0600), 0);
    assert_int_equal(art_open_with(&s, "s3://bkt/x", &o, err, sizeof(err)), 0);
    assert_null(strstr(art_uri(s), "AKFILE"));
    art_close(s);

    const char *half = "aws_access_key_id = AKFILE\n";
    tl_write_file_mode(file, half, strlen(half), 0600);
    assert_int_equal(art_open_with(&s, "s3://bkt/x", &o, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, "needs both"));
    const char *junk = "aws_access_key_id AKFILE\n";
    tl_write_file_mode(file, junk, strlen(junk), 0600);
    assert_int_equal(art_open_with(&s, "s3://bkt/x", &o, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, ":1: expected"));
    char *missing = tl_dir_file(&d, "nope");
    o.credentials_file = missing;
    assert_int_equal(art_open_with(&s, "s3://bkt/x", &o, err, sizeof(err)), CAIRN_ENOENT);
    free(missing);
    free(file);
    tl_dir_remove(&d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uri_and_names),
        cmocka_unit_test(test_bad_uris),
        cmocka_unit_test(test_credentials),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
