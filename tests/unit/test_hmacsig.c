/* test_hmacsig.c - request signatures (hmacsig.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "hmacsig.h"

/* RFC 4231, test case 2 */
#define KEY "Jefe"
#define BODY "what do ya want for nothing?"
#define MAC "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"

static void
test_sign_verify(void **state)
{
    (void)state;
    char sig[80];
    hsig_sign(KEY, 4, BODY, strlen(BODY), sig, sizeof(sig));
    assert_string_equal(sig, "sha256=" MAC);
    assert_true(hsig_verify(KEY, 4, BODY, strlen(BODY), "sha256=" MAC));
    /* upper-case hex is the same signature */
    assert_true(hsig_verify(KEY, 4, BODY, strlen(BODY),
                            "sha256=5BDCC146BF60754E6A042426089575C75A003F089D2739839DEC58B964EC3843"));
    /* another body, key, digit, or no header: refused */
    assert_false(hsig_verify(KEY, 4, BODY "!", strlen(BODY) + 1, "sha256=" MAC));
    assert_false(hsig_verify("Jeff", 4, BODY, strlen(BODY), "sha256=" MAC));
    assert_false(hsig_verify(KEY, 4, BODY, strlen(BODY),
                             "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3844"));
    assert_false(hsig_verify(KEY, 4, BODY, strlen(BODY), NULL));
    /* malformed: no prefix, another algorithm, short, too long, not hex */
    assert_false(hsig_verify(KEY, 4, BODY, strlen(BODY), MAC));
    assert_false(hsig_verify(KEY, 4, BODY, strlen(BODY), "sha1=" MAC));
    assert_false(hsig_verify(KEY, 4, BODY, strlen(BODY), "sha256=5bdcc146"));
    assert_false(hsig_verify(KEY, 4, BODY, strlen(BODY), "sha256=" MAC "00"));
    assert_false(hsig_verify(KEY, 4, BODY, strlen(BODY),
                             "sha256=zbdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
    /* an empty key signs nothing */
    hsig_sign("", 0, BODY, strlen(BODY), sig, sizeof(sig));
    assert_false(hsig_verify("", 0, BODY, strlen(BODY), sig));
    /* an empty body can be signed */
    hsig_sign(KEY, 4, "", 0, sig, sizeof(sig));
    assert_true(hsig_verify(KEY, 4, "", 0, sig));
}

static void
test_key_len(void **state)
{
    (void)state;
    assert_int_equal(hsig_key_len("abc\n", 4), 3);
    assert_int_equal(hsig_key_len("abc\r\n", 5), 3);
    assert_int_equal(hsig_key_len("abc\n\n", 5), 4); /* one newline only */
    assert_int_equal(hsig_key_len("abc", 3), 3);
    assert_int_equal(hsig_key_len("\n", 1), 0);
    assert_int_equal(hsig_key_len("", 0), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_verify),
        cmocka_unit_test(test_key_len),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
