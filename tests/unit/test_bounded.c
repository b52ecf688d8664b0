/* bounded_run: a teardown step that finishes in time is waited for; one
 * that hangs is given up on, and its thread cleans up after itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "bounded.h"

static void
nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

struct job {
    int sleep_ms;
    atomic_int done;
};

static void
job_fn(void *arg)
{
    struct job *j = arg;
    nap_ms(j->sleep_ms);
    atomic_store(&j->done, 1);
}

static void
test_quick_step_is_waited_for(void **state)
{
    (void)state;
    struct job j = {.sleep_ms = 10};
    assert_true(bounded_run(job_fn, &j, 5000));
    assert_int_equal(atomic_load(&j.done), 1); /* finished before the return */
}

static void
test_hanging_step_is_given_up(void **state)
{
    (void)state;
    static struct job j = {.sleep_ms = 400}; /* outlives the call */
    assert_false(bounded_run(job_fn, &j, 50));
    assert_int_equal(atomic_load(&j.done), 0); /* returned while it still ran */
    for (int i = 0; i < 200 && !atomic_load(&j.done); i++)
        nap_ms(10);
    assert_int_equal(atomic_load(&j.done), 1); /* and it went on to the end */
    nap_ms(50); /* let its thread free what it holds (LeakSanitizer) */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quick_step_is_waited_for),
        cmocka_unit_test(test_hanging_step_is_given_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
