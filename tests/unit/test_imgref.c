/* Tests for imgref.c: the four forms of `image:` and Docker Hub defaults. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "imgref.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void
reg_ok(const char *s, const char *registry, const char *repo, const char *tag,
       const char *digest, const char *canon)
{
    struct imgref r;
    char err[256];
    int rc = imgref_parse(s, &r, err, sizeof(err));
    if (rc != 0)
        fail_msg("'%s' should parse, got %d: %s", s, rc, err);
    assert_int_equal(r.kind, IMGREF_REGISTRY);
    assert_string_equal(r.registry, registry);
    assert_string_equal(r.repo, repo);
    if (tag)
        assert_string_equal(r.tag, tag);
    else
        assert_null(r.tag);
    if (digest)
        assert_string_equal(r.digest, digest);
    else
        assert_null(r.digest);
    char *c = imgref_format(&r);
    assert_string_equal(c, canon);
    /* The canonical text parses back to itself. */
    struct imgref r2;
    assert_int_equal(imgref_parse(c, &r2, NULL, 0), 0);
    char *c2 = imgref_format(&r2);
    assert_string_equal(c2, c);
    free(c);
    free(c2);
    imgref_clear(&r2);
    imgref_clear(&r);
}

static void
bad(const char *s, const char *want)
{
    struct imgref r = {.kind = IMGREF_ROOTFS, .path = NULL};
    char err[256] = "junk";
    int rc = imgref_parse(s, &r, err, sizeof(err));
    if (rc != CAIRN_EPARSE)
        fail_msg("'%s': want CAIRN_EPARSE, got %d (%s)", s, rc, err);
    if (!strstr(err, want))
        fail_msg("'%s': message '%s' lacks '%s'", s, err, want);
    /* *out untouched on failure. */
    assert_int_equal(r.kind, IMGREF_ROOTFS);
    assert_null(r.path);
}

static void
test_host_and_rootfs(void **state)
{
    (void)state;
    struct imgref r;
    assert_int_equal(imgref_parse("host", &r, NULL, 0), 0);
    assert_int_equal(r.kind, IMGREF_HOST);
    char *c = imgref_format(&r);
    assert_string_equal(c, "host");
    free(c);
    imgref_clear(&r);
    assert_int_equal(imgref_parse("/srv/rootfs/py311", &r, NULL, 0), 0);
    assert_int_equal(r.kind, IMGREF_ROOTFS);
    assert_string_equal(r.path, "/srv/rootfs/py311");
    imgref_clear(&r);
    imgref_clear(NULL);
    assert_int_equal(imgref_is_pulled("host"), 0);
    assert_int_equal(imgref_is_pulled("/x"), 0);
    assert_int_equal(imgref_is_pulled("python:3.11"), 1);
    assert_int_equal(imgref_is_pulled("oci:/x"), 1);
    assert_int_equal(imgref_is_pulled("Bad"), 0);
}

static void
test_oci(void **state)
{
    (void)state;
    struct imgref r;
    assert_int_equal(imgref_parse("oci:/srv/img/train:2.3", &r, NULL, 0), 0);
    assert_int_equal(r.kind, IMGREF_OCI);
    assert_string_equal(r.path, "/srv/img/train");
    assert_string_equal(r.tag, "2.3");
    imgref_clear(&r);
    assert_int_equal(imgref_parse("oci:/srv/img/train", &r, NULL, 0), 0);
    assert_string_equal(r.path, "/srv/img/train");
    assert_null(r.tag);
    imgref_clear(&r);
    /* A ':' in an earlier folder is part of the path. */
    assert_int_equal(imgref_parse("oci:/a:b/layout/", &r, NULL, 0), 0);
    assert_string_equal(r.path, "/a:b/layout");
    assert_null(r.tag);
    char *c = imgref_format(&r);
    assert_string_equal(c, "oci:/a:b/layout");
    free(c);
    imgref_clear(&r);
    bad("oci:relative/path", "must be absolute");
    bad("oci:", "must be absolute");
    bad("oci:/x:", "tag '' is not valid");
    bad("oci:/x:-bad", "tag '-bad'");
}

static void
test_registry(void **state)
{
    (void)state;
    reg_ok("python", "docker.io", "library/python", "latest", NULL, "docker.io/library/python:latest");
    reg_ok("python:3.11-slim", "docker.io", "library/python", "3.11-slim", NULL,
           "docker.io/library/python:3.11-slim");
    reg_ok("ml/train:2.3", "docker.io", "ml/train", "2.3", NULL, "docker.io/ml/train:2.3");
    reg_ok("index.docker.io/busybox", "docker.io", "library/busybox", "latest", NULL,
           "docker.io/library/busybox:latest");
    reg_ok("registry.example/ml/train:2.3", "registry.example", "ml/train", "2.3", NULL,
           "registry.example/ml/train:2.3");
    reg_ok("127.0.0.1:5000/test/img:1", "127.0.0.1:5000", "test/img", "1", NULL,
           "127.0.0.1:5000/test/img:1");
    reg_ok("localhost/img", "localhost", "img", "latest", NULL, "localhost/img:latest");
    reg_ok("localhost:5000/a/b/c:x", "localhost:5000", "a/b/c", "x", NULL, "localhost:5000/a/b/c:x");
    reg_ok("reg.example/img@sha256:" D64, "reg.example", "img", NULL, "sha256:" D64,
           "reg.example/img@sha256:" D64);
    reg_ok("reg.example/img:v1@sha256:" D64, "reg.example", "img", "v1", "sha256:" D64,
           "reg.example/img:v1@sha256:" D64);
    reg_ok("[::1]:5000/img:t", "[::1]:5000", "img", "t", NULL, "[::1]:5000/img:t");
    reg_ok("a.b/my_repo/x-y__z.w:T_1.0-rc", "a.b", "my_repo/x-y__z.w", "T_1.0-rc", NULL,
           "a.b/my_repo/x-y__z.w:T_1.0-rc");
}

static void
test_registry_bad(void **state)
{
    (void)state;
    bad("", "must not be empty");
    bad("Python:3", "repository names are lowercase");
    bad("reg.example/ML/train", "component 'ML'");
    bad("reg.example//train", "empty component");
    bad("reg.example/train:", "tag '' is not valid");
    bad("reg.example/train:.x", "tag '.x'");
    bad("reg.example/train@sha256:abc", "64 lowercase hex");
    bad("reg.example/train@md5:" D64, "must be sha256:");
    bad("reg.example:0/train", "port must be a number");
    bad("reg.example:99999/train", "port must be a number");
    bad("reg.example:http/train", "port must be a number");
    bad("bad_host.example/train", "not allowed in a registry host");
    bad("-reg.example/x", "is not a host name");
    bad("train x", "white space");
    bad("./rootfs", "neither 'host'");
    bad("a..b", "is not valid");
    bad("x-", "is not valid");
    bad("reg.example/", "repository name is empty");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_and_rootfs),
        cmocka_unit_test(test_oci),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_registry_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
