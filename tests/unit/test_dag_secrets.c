/* Tests for the safety rules of the DAG loader: `secrets:`, credentials
 * written in `env:`, host system folders as `image:`, and params in the
 * task environment (dag_task.c, dag_render.c). */
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

#include "dag.h"
#include "diag.h"
#include "err.h"
#include "tz.h"

static int
has(const struct diag_list *dl, enum diag_severity sev, int line, const char *needle)
{
    for (size_t i = 0; i < dl->n; i++)
        if (dl->items[i].severity == sev && dl->items[i].line == line &&
            strstr(dl->items[i].msg, needle))
            return 1;
    return 0;
}

static struct dag *
load(const char *y, struct diag_list *dl, int want_ok)
{
    struct dag *d = NULL;
    diag_list_init(dl);
    int rc = dag_load_buffer(&d, y, strlen(y), "s.yaml", dl);
    if ((rc == 0) != want_ok) {
        diag_print(dl, stderr);
        fail_msg("load: rc %d", rc);
    }
    return d;
}

static void
test_secrets_model(void **state)
{
    (void)state;
    const char *y = "dag: train\n"
                    "defaults:\n"
                    "  secrets: {DB_PASSWORD: db}\n"
                    "tasks:\n"
                    "  fit:\n"
                    "    command: [python, fit.py]\n"
                    "    secrets: {WANDB_API_KEY: wandb, HF_TOKEN: hf.token}\n";
    struct diag_list dl;
    struct dag *d = load(y, &dl, 1);
    const struct dag_task *t = &d->tasks[0];
    /* merged with defaults key by key, sorted by env name */
    assert_int_equal(t->nsecrets, 3);
    assert_string_equal(t->secrets[0].key, "DB_PASSWORD");
    assert_string_equal(t->secrets[0].value, "db");
    assert_string_equal(t->secrets[1].key, "HF_TOKEN");
    assert_string_equal(t->secrets[1].value, "hf.token");
    assert_string_equal(t->secrets[2].key, "WANDB_API_KEY");
    assert_int_equal(dl.n, 0);
    /* never part of the rendered env */
    char **argv = NULL, **envp = NULL, err[256];
    struct dag_run_ctx rc = {0};
    rc.run_id = "r1";
    assert_int_equal(dag_render_task(d, 0, &rc, &argv, &envp, err, sizeof(err)), 0);
    for (size_t i = 0; envp[i]; i++)
        assert_null(strstr(envp[i], "wandb"));
    dag_strv_free(argv);
    dag_strv_free(envp);
    dag_free(d);
    diag_list_free(&dl);
}

static void
test_secrets_errors(void **state)
{
    (void)state;
    const char *y = "dag: bad\n"
                    "tasks:\n"
                    "  a:\n"
                    "    command: [echo]\n"
                    "    env: {TOKEN_X: '{{ params.x }}'}\n"
                    "    secrets:\n"
                    "      bad-env: wandb\n"
                    "      OK: ../etc/passwd\n"
                    "      CAIRN_X: s\n"
                    "      TOKEN_X: t\n"
                    "      LIST: [a]\n"
                    "params: {x: '1'}\n";
    struct diag_list dl;
    struct dag *d = load(y, &dl, 0);
    assert_null(d);
    assert_true(has(&dl, DIAG_ERROR, 7, "environment variable name 'bad-env'"));
    assert_true(has(&dl, DIAG_ERROR, 8, "secret name '../etc/passwd'"));
    assert_true(has(&dl, DIAG_ERROR, 9, "reserved"));
    assert_true(has(&dl, DIAG_ERROR, 10, "both 'env' and 'secrets'"));
    assert_true(has(&dl, DIAG_ERROR, 11, "must be a string"));
    diag_list_free(&dl);

    const char *y2 = "dag: bad\ntasks:\n  a: {command: [echo], secrets: [wandb]}\n";
    d = load(y2, &dl, 0);
    assert_true(has(&dl, DIAG_ERROR, 3, "'secrets' must be a mapping"));
    diag_list_free(&dl);
}

static void
test_literal_credential_warning(void **state)
{
    (void)state;
    const char *y = "dag: w\n"
                    "params: {k: v}\n"
                    "tasks:\n"
                    "  a:\n"
                    "    command: [echo]\n"
                    "    env:\n"
                    "      WANDB_API_KEY: sk-live-123\n"
                    "      GH_TOKEN: ghp_x\n"
                    "      DB_PASSWORD: hunter2\n"
                    "      APP_SECRET: s3\n"
                    "      FROM_PARAM_KEY: '{{ params.k }}'\n"
                    "      KEYBOARD: us\n"
                    "      TOKENS_MAX: '10'\n";
    struct diag_list dl;
    struct dag *d = load(y, &dl, 1);
    assert_non_null(d);
    assert_true(has(&dl, DIAG_WARNING, 7, "WANDB_API_KEY"));
    assert_true(has(&dl, DIAG_WARNING, 8, "GH_TOKEN"));
    assert_true(has(&dl, DIAG_WARNING, 9, "DB_PASSWORD"));
    assert_true(has(&dl, DIAG_WARNING, 10, "APP_SECRET"));
    assert_int_equal(dl.n, 4); /* templates and other names: no warning */
    assert_non_null(dl.items[0].hint);
    assert_non_null(strstr(dl.items[0].hint, "secrets:"));
    dag_free(d);
    diag_list_free(&dl);
}

static void
test_host_system_image(void **state)
{
    (void)state;
    static const char *const bad[] = {"/",     "//",    "/usr",  "/etc/", "/var",
                                      "/root", "/home", "/boot", NULL};
    for (size_t i = 0; bad[i]; i++) {
        char y[256];
        snprintf(y, sizeof(y), "dag: i\ntasks:\n  a: {command: [id], image: '%s'}\n", bad[i]);
        struct diag_list dl;
        struct dag *d = load(y, &dl, 0);
        assert_null(d);
        assert_true(has(&dl, DIAG_ERROR, 3, "system folder of the host"));
        assert_non_null(strstr(dl.items[0].hint, "image: host"));
        diag_list_free(&dl);
    }
    struct diag_list dl;
    const char *ok = "dag: i\ntasks:\n  a: {command: [id], image: /srv/rootfs/py311}\n"
                     "  b: {command: [id], image: host}\n";
    struct dag *d = load(ok, &dl, 1);
    dag_free(d);
    diag_list_free(&dl);
}

static void
test_params_in_env(void **state)
{
    (void)state;
    const char *y = "dag: p\n"
                    "params: {model_name: resnet, lr: 0.1, Batch_Size: 32}\n"
                    "tasks:\n"
                    "  a: {command: [sh, -c, 'echo {{ params.model_name | shquote }}'],\n"
                    "      env: {CAIRN_X_OK: '1'}}\n";
    struct diag_list dl;
    struct dag *d = load(y, &dl, 0); /* CAIRN_ is reserved in env */
    diag_list_free(&dl);
    const char *y2 = "dag: p\n"
                     "params: {model_name: resnet, lr: 0.1, Batch_Size: 32}\n"
                     "tasks:\n"
                     "  a: {command: [sh, -c, 'echo {{ params.model_name | shquote }}']}\n";
    d = load(y2, &dl, 1);
    struct dag_kv ov = {(char *)"model_name", (char *)"x'; id; echo '"};
    struct dag_run_ctx rc = {0};
    rc.run_id = "r1";
    rc.overrides = &ov;
    rc.noverrides = 1;
    char **argv = NULL, **envp = NULL, err[256];
    assert_int_equal(dag_render_task(d, 0, &rc, &argv, &envp, err, sizeof(err)), 0);
    assert_string_equal(argv[2], "echo 'x'\\''; id; echo '\\'''");
    int seen = 0;
    for (size_t i = 0; envp[i]; i++) {
        seen += !strcmp(envp[i], "CAIRN_PARAM_MODEL_NAME=x'; id; echo '");
        seen += !strcmp(envp[i], "CAIRN_PARAM_LR=0.1");
        seen += !strcmp(envp[i], "CAIRN_PARAM_BATCH_SIZE=32");
    }
    assert_int_equal(seen, 3);
    dag_strv_free(argv);
    dag_strv_free(envp);

    /* a value over 64 KiB: refused when the run is triggered */
    char *big = malloc(DAG_PARAM_MAX_BYTES + 2);
    memset(big, 'x', DAG_PARAM_MAX_BYTES + 1);
    big[DAG_PARAM_MAX_BYTES + 1] = '\0';
    struct dag_kv bov = {(char *)"model_name", big}; /* a string param: any text */
    assert_int_equal(dag_check_overrides(d, &bov, 1, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(
        strstr(err, "param 'model_name' is 65537 bytes; a param value is at most 65536"));
    big[DAG_PARAM_MAX_BYTES] = '\0'; /* exactly the limit: fine */
    assert_int_equal(dag_check_overrides(d, &bov, 1, err, sizeof(err)), 0);
    free(big);
    dag_free(d);
    diag_list_free(&dl);
}

static int
teardown_all(void **state)
{
    (void)state;
    tz_cache_clear();
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secrets_model),
        cmocka_unit_test(test_secrets_errors),
        cmocka_unit_test(test_literal_credential_warning),
        cmocka_unit_test(test_host_system_image),
        cmocka_unit_test(test_params_in_env),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_all);
}
