/* test_ident.c - certificate identities on the worker link: loading (key
 * modes, a key that is not the certificate's), the HELLO proof and every
 * reason its check refuses one (another CA, expired, another name, a bad
 * signature, a clock far off, no proof), and nng TLS configurations.
 * Certificates are made by the `openssl` command, as an operator would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "err.h"
#include "ident.h"
#include "testlib.h"
#include "util.h"

static struct tl_dir dir;

/* openssl: a CA in D/NAME.ca.{crt,key}, or a certificate for CN signed by
 * CA (extra: more `openssl x509 -req` arguments). */
static void
make_ca(const char *name)
{
    assert_int_equal(tl_sh("cd '%s' && openssl req -x509 -newkey ec -pkeyopt "
                           "ec_paramgen_curve:P-256 -nodes -keyout %s.ca.key -out %s.ca.crt "
                           "-subj '/CN=%s' -days 30 2>/dev/null && chmod 600 %s.ca.key",
                           dir.path, name, name, name, name),
                     0);
}

static void
make_cert(const char *file, const char *cn, const char *san, const char *ca, const char *days)
{
    assert_int_equal(
        tl_sh("cd '%s' && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
              "-keyout %s.key -out %s.csr -subj '/CN=%s' 2>/dev/null && "
              "printf '%s' > %s.ext && "
              "openssl x509 -req -in %s.csr -CA %s.ca.crt -CAkey %s.ca.key -CAcreateserial "
              "-out %s.crt -days %s -extfile %s.ext 2>/dev/null && chmod 600 %s.key",
              dir.path, file, file, cn, san, file, file, ca, ca, file, days, file, file),
        0);
}

static int
setup(void **state)
{
    (void)state;
    if (tl_dir_make(&dir, "ident") != 0)
        return -1;
    make_ca("good");
    make_ca("other");
    make_cert("w1", "w1", "subjectAltName=DNS:w1\\n", "good", "30");
    make_cert("cnonly", "cnonly", "basicConstraints=CA:FALSE\\n", "good", "30");
    make_cert("rogue", "w1", "subjectAltName=DNS:w1\\n", "other", "30");
    make_cert("old", "w1", "subjectAltName=DNS:w1\\n", "good", "-1");
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    tl_dir_remove(&dir);
    return 0;
}

static struct ident *
load(const char *file, const char *ca)
{
    char *c = tl_dir_file(&dir, "%s.crt", file), *k = tl_dir_file(&dir, "%s.key", file),
         *a = tl_dir_file(&dir, "%s.ca.crt", ca);
    struct ident *id = NULL;
    char err[256] = "";
    int rc = ident_load(&id, c, k, a, err, sizeof(err));
    if (rc)
        print_message("ident_load %s: %s\n", file, err);
    assert_int_equal(rc, 0);
    free(c);
    free(k);
    free(a);
    return id;
}

/* Prove name with prover's key, check it with checker's CA; returns the
 * check's code and its message in err. */
static int
prove_check(struct ident *prover, struct ident *checker, const char *name, int64_t skew,
            char *err, size_t errlen)
{
    char *cert = NULL, *sig = NULL;
    int64_t now = clock_wall_ms();
    assert_int_equal(ident_prove(prover, name, now, &cert, &sig, err, errlen), 0);
    int rc = ident_check(checker, cert, name, now, sig, now + skew, err, errlen);
    free(cert);
    free(sig);
    return rc;
}

static void
test_load(void **state)
{
    (void)state;
    struct ident *id = load("w1", "good");
    char *n = ident_name(id);
    assert_string_equal(n, "w1");
    free(n);
    ident_free(id);
    id = load("cnonly", "good");
    n = ident_name(id);
    assert_string_equal(n, "cnonly");
    free(n);
    ident_free(id);

    char err[256];
    char *c = tl_dir_file(&dir, "w1.crt"), *k = tl_dir_file(&dir, "w1.key"),
         *ok2 = tl_dir_file(&dir, "cnonly.key"), *a = tl_dir_file(&dir, "good.ca.crt");
    id = NULL;
    /* a key others can read */
    chmod(k, 0644);
    assert_int_equal(ident_load(&id, c, k, a, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, "readable by group or others"));
    chmod(k, 0600);
    /* another certificate's key */
    assert_int_equal(ident_load(&id, c, ok2, a, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, "not the private key"));
    /* a missing file, a missing flag */
    assert_int_equal(ident_load(&id, c, k, "/nonexistent/ca.crt", err, sizeof(err)), CAIRN_EIO);
    assert_int_equal(ident_load(&id, c, NULL, a, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, "--tls-key"));
    /* a CA file with no certificate */
    assert_int_equal(ident_load(&id, c, k, k, err, sizeof(err)), CAIRN_EINVAL);
    assert_null(id);
    free(c);
    free(k);
    free(ok2);
    free(a);
}

static void
test_check(void **state)
{
    (void)state;
    char err[256];
    struct ident *w1 = load("w1", "good"), *cn = load("cnonly", "good"),
                 *rogue = load("rogue", "other"), *old = load("old", "good");

    assert_int_equal(prove_check(w1, w1, "w1", 0, err, sizeof(err)), 0);
    assert_int_equal(prove_check(cn, w1, "cnonly", 0, err, sizeof(err)), 0);

    assert_int_equal(prove_check(w1, w1, "w2", 0, err, sizeof(err)), CAIRN_EAUTH);
    assert_string_equal(err, "the worker's certificate is for 'w1', not 'w2'");

    assert_int_equal(prove_check(rogue, w1, "w1", 0, err, sizeof(err)), CAIRN_EAUTH);
    assert_non_null(strstr(err, "certificate refused: unable to get local issuer"));

    assert_int_equal(prove_check(old, w1, "w1", 0, err, sizeof(err)), CAIRN_EAUTH);
    assert_string_equal(err, "certificate refused: certificate has expired");

    assert_int_equal(prove_check(w1, w1, "w1", IDENT_SKEW_MS + 60000, err, sizeof(err)),
                     CAIRN_EAUTH);
    assert_non_null(strstr(err, "away from the scheduler's clock"));

    /* a signature over another name or time, or made with another key */
    char *cert = NULL, *sig = NULL, *cert2 = NULL, *sig2 = NULL;
    int64_t now = clock_wall_ms();
    assert_int_equal(ident_prove(w1, "w1", now, &cert, &sig, err, sizeof(err)), 0);
    assert_int_equal(ident_check(w1, cert, "w1", now + 1, sig, now, err, sizeof(err)),
                     CAIRN_EAUTH);
    assert_string_equal(err, "HELLO's signature does not match its certificate");
    assert_int_equal(ident_prove(cn, "w1", now, &cert2, &sig2, err, sizeof(err)), 0);
    assert_int_equal(ident_check(w1, cert, "w1", now, sig2, now, err, sizeof(err)),
                     CAIRN_EAUTH);
    assert_string_equal(err, "HELLO's signature does not match its certificate");
    assert_int_equal(ident_check(w1, cert, "w1", now, "!!!", now, err, sizeof(err)),
                     CAIRN_EAUTH);
    assert_int_equal(ident_check(w1, "not a certificate", "w1", now, sig, now, err,
                                 sizeof(err)),
                     CAIRN_EAUTH);
    assert_int_equal(ident_check(w1, NULL, "w1", now, NULL, now, err, sizeof(err)),
                     CAIRN_EAUTH);
    assert_non_null(strstr(err, "no certificate proof"));
    assert_int_equal(ident_check(w1, cert, "w1", now, sig, now, err, sizeof(err)), 0);
    free(cert);
    free(sig);
    free(cert2);
    free(sig2);

    ident_free(w1);
    ident_free(cn);
    ident_free(rogue);
    ident_free(old);
}

static void
test_tls_config(void **state)
{
    (void)state;
    char err[256];
    struct ident *w1 = load("w1", "good");
    void *cfg = NULL;
    assert_int_equal(ident_tls_config(w1, true, NULL, &cfg, err, sizeof(err)), 0);
    assert_non_null(cfg);
    nng_tls_config_free(cfg);
    cfg = NULL;
    assert_int_equal(ident_tls_config(w1, false, "sched", &cfg, err, sizeof(err)), 0);
    assert_non_null(cfg);
    nng_tls_config_free(cfg);
    ident_free(w1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_tls_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
