/* test_events.c - the pure parts of event triggers (events.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <string.h>

#include "events.h"

static void
test_release_digest(void **state)
{
    (void)state;
    /* what `sha256sum model.pkl meta.json | sha256sum` gives in the release */
    json_t *files = json_loads("[{\"name\": \"model.pkl\", \"sha256\": \"aa\"},"
                               " {\"name\": \"meta.json\", \"sha256\": \"bb\"}]",
                               0, NULL);
    char d[65];
    ev_release_digest(files, d);
    /* printf 'aa  model.pkl\nbb  meta.json\n' | sha256sum */
    assert_string_equal(d, "b5baf3366d72e369671763e98b39ada92329793f206a7c5c2c6a04fa397a8c74");
    json_decref(files);
    files = json_array();
    ev_release_digest(files, d);
    /* the digest of nothing */
    assert_string_equal(d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    json_decref(files);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_release_digest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
