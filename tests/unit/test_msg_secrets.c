/* Tests for the lease's secrets in msg.c: secrets, secret_names and
 * mask_paths round-trip, are absent for a task without them, and a secret
 * that is not ENV=value is refused. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <jansson.h>
#include <string.h>

#include "msg.h"

static struct msg_lease
base_lease(void)
{
    static char *argv[] = {(char *)"true", NULL};
    static char *env[] = {(char *)"A=1", NULL};
    struct msg_lease l = {0};
    l.lease_id = 7;
    l.dag = (char *)"d";
    l.run_id = (char *)"r";
    l.task = (char *)"t";
    l.attempt = 1;
    l.logical_date = (char *)"2026-01-01T00:00:00Z";
    l.argv = argv;
    l.nargv = 1;
    l.env = env;
    l.nenv = 1;
    l.image = (char *)"host";
    return l;
}

static void
test_round_trip(void **state)
{
    (void)state;
    struct msg_lease l = base_lease();
    char *secs[] = {(char *)"WANDB_API_KEY=sk=live", NULL};
    char *names[] = {(char *)"wandb", NULL};
    char *masks[] = {(char *)"/etc/cairn/token", NULL};
    l.secrets = secs;
    l.nsecrets = 1;
    l.secret_names = names;
    l.nsecret_names = 1;
    l.mask_paths = masks;
    l.nmask_paths = 1;
    json_t *j = msg_lease_encode(&l);
    assert_non_null(j);
    struct msg_lease back;
    char err[256];
    assert_int_equal(msg_lease_decode(j, NULL, &back, err, sizeof(err)), 0);
    assert_int_equal(back.nsecrets, 1);
    assert_string_equal(back.secrets[0], "WANDB_API_KEY=sk=live");
    assert_string_equal(back.secret_names[0], "wandb");
    assert_string_equal(back.mask_paths[0], "/etc/cairn/token");
    /* the value is in the secrets member only */
    json_t *envj = json_object_get(j, "env");
    char *envs = json_dumps(envj, 0);
    assert_null(strstr(envs, "sk=live"));
    free(envs);
    msg_lease_clear(&back);

    /* a secret that is not ENV=value: the lease is refused */
    json_object_set_new(j, "secrets", json_pack("[s]", "novalue"));
    assert_int_not_equal(msg_lease_decode(j, "leases[0]", &back, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "leases[0].secrets[0]"));
    msg_lease_clear(&back);
    json_decref(j);
}

static void
test_absent_without_secrets(void **state)
{
    (void)state;
    struct msg_lease l = base_lease();
    json_t *j = msg_lease_encode(&l);
    assert_non_null(j);
    assert_null(json_object_get(j, "secrets"));
    assert_null(json_object_get(j, "secret_names"));
    assert_null(json_object_get(j, "mask_paths"));
    struct msg_lease back;
    char err[256];
    assert_int_equal(msg_lease_decode(j, NULL, &back, err, sizeof(err)), 0);
    assert_int_equal(back.nsecrets, 0);
    assert_null(back.secrets);
    msg_lease_clear(&back);
    json_decref(j);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_absent_without_secrets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
