/* DAG loader: every error kind from data-driven fixtures (file + the
 * LINE:COL: message each must produce, each optionally followed by a
 * "  hint: TEXT" line its hint must contain), and the model of a valid file. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cal.h"
#include "dag.h"
#include "err.h"
#include "diag.h"
#include "testlib.h"
#include "tz.h"
#include "util.h"

#define FIXTURES TL_FIXTURES

static const struct diag *
find_diag(const struct diag_list *dl, int line, int col, const char *needle)
{
    for (size_t i = 0; i < dl->n; i++)
        if (dl->items[i].line == line && dl->items[i].col == col &&
            strstr(dl->items[i].msg, needle))
            return &dl->items[i];
    return NULL;
}

static int
has_diag(const struct diag_list *dl, int line, int col, const char *needle)
{
    return find_diag(dl, line, col, needle) != NULL;
}

static void
dump(const struct diag_list *dl)
{
    diag_print(dl, stderr);
}

static void
test_error_fixtures(void **state)
{
    (void)state;
    DIR *dir = opendir(FIXTURES "/dag-errors");
    assert_non_null(dir);
    struct dirent *de;
    int nfix = 0, nbad = 0;
    while ((de = readdir(dir))) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".yaml"))
            continue;
        char *yaml = xasprintf(FIXTURES "/dag-errors/%s", de->d_name);
        char *exp = xasprintf(FIXTURES "/dag-errors/%.*s.expect", (int)(len - 5), de->d_name);
        char *expect = tl_read_file(exp, NULL);
        if (!expect)
            fail_msg("fixture %s has no .expect file", de->d_name);
        struct diag_list dl;
        struct dag *d = NULL;
        diag_list_init(&dl);
        int rc = dag_load_file(&d, yaml, &dl);
        if (rc == 0) {
            dag_free(d);
            fail_msg("%s loaded, but must fail", de->d_name);
        }
        int nexp = 0;
        const struct diag *last = NULL; /* the diagnostic of the line before */
        for (char *line = expect; *line;) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            int l = 0, c = 0, off = 0;
            if (sscanf(line, "%d:%d: %n", &l, &c, &off) == 2 && off > 0) {
                nexp++;
                last = find_diag(&dl, l, c, line + off);
                if (!last) {
                    dump(&dl);
                    print_error("%s: expected a diagnostic at %d:%d containing \"%s\"\n",
                                de->d_name, l, c, line + off);
                    nbad++;
                }
            } else if (strncmp(line, "  hint: ", 8) == 0) {
                /* "  hint: TEXT" under a diagnostic: its hint contains TEXT */
                if (last && (!last->hint || !strstr(last->hint, line + 8))) {
                    dump(&dl);
                    print_error("%s: expected the hint of %d:%d to contain \"%s\"\n",
                                de->d_name, last->line, last->col, line + 8);
                    nbad++;
                }
            }
            if (!nl)
                break;
            line = nl + 1;
        }
        assert_true(nexp > 0);
        /* no more errors than the fixture expects: nothing spurious */
        if (dl.nerrors != (size_t)nexp) {
            dump(&dl);
            print_error("%s: %zu errors, fixture expects %d\n", de->d_name, dl.nerrors, nexp);
            nbad++;
        }
        nfix++;
        diag_list_free(&dl);
        free(expect);
        free(exp);
        free(yaml);
    }
    closedir(dir);
    assert_int_equal(nbad, 0);
    assert_true(nfix >= 20);
}

static void
test_hints(void **state)
{
    (void)state;
    struct diag_list dl;
    struct dag *d = NULL;
    diag_list_init(&dl);
    assert_int_not_equal(dag_load_file(&d, FIXTURES "/dag-errors/unknown-dependency.yaml", &dl),
                         0);
    assert_int_equal(dl.n, 1);
    assert_non_null(dl.items[0].hint);
    assert_string_equal(dl.items[0].hint, "did you mean 'ingest'?");
    diag_list_free(&dl);

    diag_list_init(&dl);
    assert_int_not_equal(dag_load_file(&d, FIXTURES "/dag-errors/unknown-key.yaml", &dl), 0);
    diag_sort(&dl);
    assert_string_equal(dl.items[0].hint, "did you mean 'schedule'?");
    assert_string_equal(dl.items[1].hint, "did you mean 'command'?");
    diag_list_free(&dl);
}

static void
test_binary_garbage(void **state)
{
    (void)state;
    unsigned char buf[512];
    unsigned int seed = 7;
    for (size_t i = 0; i < sizeof(buf); i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (unsigned char)(seed >> 16);
    }
    buf[3] = 0; /* a NUL on line 1, column 4 */
    buf[0] = 'a';
    buf[1] = 'b';
    buf[2] = 'c';
    struct diag_list dl;
    struct dag *d = NULL;
    diag_list_init(&dl);
    assert_int_equal(dag_load_buffer(&d, (const char *)buf, sizeof(buf), "garbage.bin", &dl),
                     CAIRN_EPARSE);
    assert_null(d);
    assert_true(has_diag(&dl, 1, 4, "NUL byte"));
    diag_list_free(&dl);

    /* high bytes without NUL: invalid UTF-8 is a YAML error with a position */
    for (size_t i = 0; i < sizeof(buf); i++)
        if (!buf[i])
            buf[i] = 0xff;
    diag_list_init(&dl);
    assert_int_equal(dag_load_buffer(&d, (const char *)buf, sizeof(buf), "garbage.bin", &dl),
                     CAIRN_EPARSE);
    assert_true(dl.nerrors >= 1);
    assert_true(dl.items[0].line >= 1);
    diag_list_free(&dl);
}

static void
test_full_model(void **state)
{
    (void)state;
    struct diag_list dl;
    struct dag *d = NULL;
    diag_list_init(&dl);
    int rc = dag_load_file(&d, FIXTURES "/full.yaml", &dl);
    if (rc) {
        dump(&dl);
        fail();
    }
    diag_list_free(&dl);
    assert_string_equal(d->name, "full-example");
    assert_string_equal(d->description, "Every field of the language");
    assert_string_equal(d->schedule, "30 6 * * 1-5");
    assert_string_equal(d->timezone, "Europe/Berlin");
    /* 2026-01-01 00:00 in Berlin (UTC+1) */
    assert_true(d->has_start);
    assert_int_equal(d->start_date, cal_days_from_civil(2026, 1, 1) * 86400 - 3600);
    assert_int_equal(d->end_date, cal_days_from_civil(2026, 12, 31) * 86400 + 23 * 3600);
    assert_true(d->catchup);
    assert_int_equal(d->max_active_runs, 2);
    assert_int_equal(d->max_active_tasks, 4);
    assert_int_equal(d->nparams, 3);
    assert_true(dag_param_find(d, "min_accuracy")->is_number);
    assert_false(dag_param_find(d, "model")->is_number);
    assert_int_equal(d->ntags, 2);
    assert_int_equal(d->ntasks, 5);
    assert_int_equal(strlen(d->version), 64);

    const struct dag_task *ingest = &d->tasks[0], *validate = &d->tasks[1];
    const struct dag_task *train = &d->tasks[2], *evaluate = &d->tasks[3];
    const struct dag_task *deploy = &d->tasks[4];
    assert_string_equal(ingest->name, "ingest");
    assert_int_equal(ingest->ncommand, 5);
    assert_int_equal(ingest->retries, 2);           /* from defaults */
    assert_int_equal(ingest->retry_delay_ms, 10000); /* from defaults */
    assert_int_equal(ingest->memory_bytes, 512LL << 20);
    assert_int_equal(ingest->priority, 10);
    /* env merges key-wise, the task's own value winning */
    assert_int_equal(ingest->nenv, 3);
    assert_string_equal(ingest->env[0].key, "LOG_LEVEL");
    assert_string_equal(ingest->env[2].key, "SHARED");
    assert_string_equal(ingest->env[2].value, "own");
    assert_int_equal(validate->retries, 0);
    assert_int_equal(validate->timeout_ms, 5400000);
    assert_true(validate->retry_backoff == 2.0);
    assert_int_equal(validate->max_retry_delay_ms, 300000);
    assert_int_equal(validate->ninputs, 1);
    assert_string_equal(validate->inputs[0].task, "ingest");
    assert_int_equal(validate->inputs[0].task_idx, 0);
    /* resources merge field-wise */
    assert_int_equal(train->memory_bytes, 2LL << 30);
    assert_true(train->cpus == 1.0);
    assert_int_equal(train->pids, 256);
    assert_true(train->cache);
    assert_int_equal(train->nlabels, 2);
    assert_string_equal(train->labels[0].key, "gpu");
    /* data is an input from a non-direct ancestor */
    assert_string_equal(train->inputs[0].name, "data");
    assert_string_equal(evaluate->metrics, "metrics.json");
    assert_int_equal(evaluate->noutputs, 1); /* metrics file is an output */
    assert_int_equal(evaluate->nmetric_keys, 2);
    assert_int_equal(evaluate->trigger_rule, DAG_TRIGGER_ALL_DONE);
    assert_non_null(deploy->when_expr);
    assert_true(deploy->network);
    assert_int_equal(deploy->npublish, 1);
    assert_string_equal(deploy->publish[0], "model.pkl");
    assert_int_equal(train->npublish, 0);
    assert_false(deploy->cache);
    assert_false(ingest->network);
    assert_string_equal(ingest->image, "host");
    /* graph */
    assert_int_equal(deploy->nneeds, 1);
    assert_int_equal(deploy->needs[0], 3);
    assert_int_equal(evaluate->ndownstream, 1);
    assert_int_equal(d->topo[0], 0);
    assert_int_equal(d->topo[4], 4);
    dag_free(d);
}

static void
test_render(void **state)
{
    (void)state;
    struct diag_list dl;
    struct dag *d = NULL;
    diag_list_init(&dl);
    assert_int_equal(dag_load_file(&d, FIXTURES "/full.yaml", &dl), 0);
    diag_list_free(&dl);

    /* bare date -> first tick that day: 06:30 Berlin = 05:30Z on 2026-03-02 */
    int64_t secs;
    int has_time, has_off;
    assert_int_equal(cal_parse("2026-03-02", &secs, &has_time, &has_off), 0);
    int64_t ld = dag_logical_date_for(d, secs, has_time, has_off);
    assert_int_equal(ld, cal_days_from_civil(2026, 3, 2) * 86400 + 5 * 3600 + 1800);

    struct dag_kv ov = {"model", "xgb"};
    struct dag_run_ctx rc = {0};
    rc.logical_date = ld;
    dag_interval(d, ld, &rc.data_interval_end);
    /* next weekday tick: Tuesday */
    assert_int_equal(rc.data_interval_end, ld + 86400);
    rc.run_id = "manual__x";
    rc.overrides = &ov;
    rc.noverrides = 1;
    char **argv = NULL, **envp = NULL, err[256];
    assert_int_equal(dag_render_task(d, 0, &rc, &argv, &envp, err, sizeof(err)), 0);
    assert_string_equal(argv[3], "2026-03-02");
    assert_string_equal(envp[1], "RUN=manual__x");
    dag_strv_free(argv);
    dag_strv_free(envp);
    assert_int_equal(dag_render_task(d, 1, &rc, &argv, &envp, err, sizeof(err)), 0);
    assert_string_equal(argv[2], "20260302");
    dag_strv_free(argv);
    dag_strv_free(envp);
    assert_int_equal(dag_render_task(d, 2, &rc, &argv, &envp, err, sizeof(err)), 0);
    assert_string_equal(argv[2], "xgb");
    dag_strv_free(argv);
    dag_strv_free(envp);
    assert_int_equal(dag_render_task(d, 3, &rc, &argv, &envp, err, sizeof(err)), 0);
    assert_string_equal(argv[2], "2026-03-02T06:30:00+01:00");
    assert_string_equal(argv[3], "2026-03-03T06:30:00+01:00");
    dag_strv_free(argv);
    dag_strv_free(envp);
    assert_int_equal(dag_render_task(d, 4, &rc, &argv, &envp, err, sizeof(err)), 0);
    assert_string_equal(argv[2], "echo deploy full-example/deploy at 2026-03-02T06:30:00+01:00");
    dag_strv_free(argv);
    dag_strv_free(envp);

    /* a boolean takes true or false; a string anything */
    struct dag_kv yes = {"verbose", "false"}, maybe = {"verbose", "maybe"};
    assert_int_equal(dag_check_overrides(d, &yes, 1, err, sizeof(err)), 0);
    assert_int_equal(dag_check_overrides(d, &maybe, 1, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, "param 'verbose' takes true or false (its default is true), got "
                                "'maybe'"));
    struct dag_kv text = {"model", "0.5"};
    assert_int_equal(dag_check_overrides(d, &text, 1, err, sizeof(err)), 0);

    struct dag_kv bad = {"min_acuracy", "1"};
    assert_int_equal(dag_check_overrides(d, &bad, 1, err, sizeof(err)), CAIRN_ENOENT);
    assert_non_null(strstr(err, "did you mean 'min_accuracy'?"));
    dag_free(d);
}

static void
test_defaults_errors_once(void **state)
{
    (void)state;
    const char *y = "dag: x\n"
                    "defaults:\n"
                    "  retries: lots\n"
                    "tasks:\n"
                    "  a: {command: [echo]}\n"
                    "  b: {command: [echo]}\n"
                    "  c: {command: [echo]}\n";
    struct diag_list dl;
    struct dag *d = NULL;
    diag_list_init(&dl);
    assert_int_equal(dag_load_buffer(&d, y, strlen(y), "x.yaml", &dl), CAIRN_EPARSE);
    assert_int_equal(dl.nerrors, 1);
    assert_true(has_diag(&dl, 3, 12, "'retries' must be a whole number"));
    diag_list_free(&dl);
}

/* Tasks by name through the loader's index, for a big DAG too; a name that
 * is not a task is -1. */
static void
test_task_index(void **state)
{
    (void)state;
    struct sb y;
    sb_init(&y);
    sb_puts(&y, "dag: many\ntasks:\n");
    for (int i = 0; i < 5000; i++)
        sb_printf(&y, "  t%d: {command: [\"true\"]%s}\n", i, i ? ", needs: [t0]" : "");
    struct diag_list dl;
    diag_list_init(&dl);
    struct dag *d = NULL;
    assert_int_equal(dag_load_buffer(&d, y.buf, y.len, "many.yaml", &dl), 0);
    assert_int_equal(d->ntasks, 5000);
    for (int i = 0; i < 5000; i += 7) {
        char name[16];
        snprintf(name, sizeof(name), "t%d", i);
        long k = dag_task_index(d, name);
        assert_true(k >= 0);
        assert_string_equal(d->tasks[k].name, name);
    }
    assert_int_equal(dag_task_index(d, "t5000"), -1);
    assert_int_equal(dag_task_index(d, ""), -1);
    dag_free(d);
    diag_list_free(&dl);
    sb_free(&y);
}

static void
test_aliases(void **state)
{
    (void)state;
    const char *y = "dag: x\n"
                    "tasks:\n"
                    "  a: &t {command: [echo, hi], retries: 3}\n"
                    "  b: *t\n";
    struct diag_list dl;
    struct dag *d = NULL;
    diag_list_init(&dl);
    assert_int_equal(dag_load_buffer(&d, y, strlen(y), "x.yaml", &dl), 0);
    assert_int_equal(d->tasks[1].retries, 3);
    dag_free(d);
    diag_list_free(&dl);

    /* billion laughs is refused, not expanded */
    struct sb sb;
    sb_init(&sb);
    sb_puts(&sb, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 12; i++)
        sb_printf(&sb, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n",
                  i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    diag_list_init(&dl);
    assert_int_equal(dag_load_buffer(&d, sb.buf, sb.len, "laughs.yaml", &dl), CAIRN_EPARSE);
    assert_true(dl.nerrors >= 1);
    diag_list_free(&dl);
    sb_free(&sb);
}

static void
test_merge_keys(void **state)
{
    (void)state;
    const char *y = "dag: merge\n"
                    "tasks:\n"
                    "  train_a: &train\n"
                    "    command: [python3, train.py, a]\n"
                    "    retries: 2\n"
                    "    env: {MODE: fast, SEED: '1'}\n"
                    "    outputs: [model.pkl]\n"
                    "  train_b:\n"
                    "    <<: *train\n"
                    "    command: [python3, train.py, b]\n"
                    "    env: {MODE: slow}\n"
                    "  train_c:\n"
                    "    retries: 5\n"
                    "    <<: [*train, {timeout: 10m, retries: 9, priority: 3}]\n"
                    "  report:\n"
                    "    <<: {needs: [train_a, train_b, train_c], command: [echo]}\n"
                    "    inputs: {b: train_b/model.pkl}\n";
    struct diag_list dl;
    struct dag *d = NULL;
    diag_list_init(&dl);
    if (dag_load_buffer(&d, y, strlen(y), "merge.yaml", &dl) != 0) {
        dump(&dl);
        fail();
    }
    diag_list_free(&dl);
    const struct dag_task *a = &d->tasks[0], *b = &d->tasks[1], *c = &d->tasks[2];
    const struct dag_task *r = &d->tasks[3];
    /* explicit keys win over merged ones, wherever they are written */
    assert_string_equal(b->command[2], "b");
    assert_int_equal(b->retries, 2);
    assert_int_equal(b->nenv, 1); /* a mapping value is replaced, not merged */
    assert_string_equal(b->env[0].value, "slow");
    assert_int_equal(b->noutputs, 1);
    assert_int_equal(c->retries, 5);
    assert_string_equal(c->command[2], "a");
    /* of several merged mappings, the earlier one wins */
    assert_int_equal(c->timeout_ms, 600000);
    assert_int_equal(c->priority, 3);
    assert_int_equal(c->nenv, 2);
    assert_int_equal(a->retries, 2);
    assert_int_equal(r->nneeds, 3);
    assert_int_equal(r->ninputs, 1);
    dag_free(d);
}

static void
test_optional_inputs(void **state)
{
    (void)state;
    const char *y = "dag: best\n"
                    "tasks:\n"
                    "  train_a: {command: [echo], outputs: [model.pkl]}\n"
                    "  train_b: {command: [echo], outputs: [model.pkl]}\n"
                    "  pick:\n"
                    "    needs: [train_a, train_b]\n"
                    "    trigger_rule: all_done\n"
                    "    command: [echo]\n"
                    "    inputs:\n"
                    "      model_a: train_a/model.pkl\n"
                    "      model_b: {from: train_b/model.pkl, optional: true}\n"
                    "      model_c: {from: train_a/model.pkl, optional: false}\n"
                    "  strict:\n"
                    "    needs: [train_b]\n"
                    "    command: [echo]\n"
                    "    inputs: {m: {from: train_b/model.pkl, optional: true}}\n";
    struct diag_list dl;
    struct dag *d = NULL;
    diag_list_init(&dl);
    if (dag_load_buffer(&d, y, strlen(y), "best.yaml", &dl) != 0) {
        dump(&dl);
        fail();
    }
    const struct dag_task *pick = &d->tasks[2];
    assert_int_equal(pick->ninputs, 3);
    assert_string_equal(pick->inputs[0].name, "model_a");
    assert_false(pick->inputs[0].optional);
    assert_string_equal(pick->inputs[1].name, "model_b");
    assert_string_equal(pick->inputs[1].task, "train_b");
    assert_string_equal(pick->inputs[1].file, "model.pkl");
    assert_int_equal(pick->inputs[1].task_idx, 1);
    assert_true(pick->inputs[1].optional);
    assert_false(pick->inputs[2].optional);
    /* optional under all_success changes nothing: a warning says so */
    assert_int_equal(dl.nerrors, 0);
    assert_int_equal(dl.n, 1);
    assert_int_equal(dl.items[0].severity, DIAG_WARNING);
    assert_true(has_diag(&dl, 16, 53, "input 'm' is optional, but"));
    diag_list_free(&dl);
    dag_free(d);
}

static void
test_mounts(void **state)
{
    (void)state;
    const char *y = "dag: landing\n"
                    "defaults:\n"
                    "  mounts: [{host: /srv/shared, path: /shared}]\n"
                    "tasks:\n"
                    "  ingest:\n"
                    "    command: [echo]\n"
                    "    mounts:\n"
                    "      - {host: /data/landing, path: /data, readonly: true}\n"
                    "      - {host: //scratch/, path: /scratch//x/, readonly: false}\n"
                    "      - {host: /models, path: /models}\n"
                    "  report:\n"
                    "    command: [echo]\n";
    struct diag_list dl;
    struct dag *d = NULL;
    diag_list_init(&dl);
    if (dag_load_buffer(&d, y, strlen(y), "landing.yaml", &dl) != 0) {
        dump(&dl);
        fail();
    }
    diag_list_free(&dl);
    const struct dag_task *ingest = &d->tasks[0], *report = &d->tasks[1];
    /* the task's own list replaces the one of defaults */
    assert_int_equal(ingest->nmounts, 3);
    assert_string_equal(ingest->mounts[0].host, "/data/landing");
    assert_string_equal(ingest->mounts[0].path, "/data");
    assert_true(ingest->mounts[0].readonly);
    assert_string_equal(ingest->mounts[1].host, "/scratch");
    assert_string_equal(ingest->mounts[1].path, "/scratch/x");
    assert_false(ingest->mounts[1].readonly);
    assert_true(ingest->mounts[2].readonly); /* read-only unless said otherwise */
    assert_int_equal(report->nmounts, 1);
    assert_string_equal(report->mounts[0].path, "/shared");
    dag_free(d);

    /* a path that only starts like one of Cairn's mount points is fine */
    const char *ok = "dag: near\n"
                     "tasks:\n"
                     "  a: {command: [echo], mounts: [{host: /x, path: /inputs2}, "
                     "{host: /y, path: /system}]}\n";
    diag_list_init(&dl);
    assert_int_equal(dag_load_buffer(&d, ok, strlen(ok), "near.yaml", &dl), 0);
    assert_int_equal(d->tasks[0].nmounts, 2);
    dag_free(d);
    diag_list_free(&dl);
}

/* `resources:` with GPUs: merged key by key with `defaults:`. */
static void
test_gpu_resources(void **state)
{
    (void)state;
    const char *y = "dag: train\n"
                    "defaults:\n"
                    "  resources: {memory: 1Gi, gpu_type: A100}\n"
                    "tasks:\n"
                    "  prep: {command: [echo]}\n"
                    "  train:\n"
                    "    command: [python3, train.py]\n"
                    "    resources: {gpus: 2, cpus: 4}\n"
                    "  tune:\n"
                    "    command: [python3, tune.py]\n"
                    "    resources: {gpus: 1, gpu_type: \"RTX 4090\"}\n"
                    "  none:\n"
                    "    command: [echo]\n"
                    "    resources: {gpus: 0}\n";
    struct diag_list dl;
    struct dag *d = NULL;
    diag_list_init(&dl);
    if (dag_load_buffer(&d, y, strlen(y), "train.yaml", &dl) != 0) {
        dump(&dl);
        fail();
    }
    diag_list_free(&dl);
    const struct dag_task *prep = &d->tasks[0], *train = &d->tasks[1], *tune = &d->tasks[2];
    assert_int_equal(prep->gpus, 0);
    assert_int_equal(train->gpus, 2);
    assert_string_equal(train->gpu_type, "A100"); /* from defaults */
    assert_int_equal(train->memory_bytes, 1LL << 30);
    assert_true(train->cpus == 4.0);
    assert_int_equal(tune->gpus, 1);
    assert_string_equal(tune->gpu_type, "RTX 4090"); /* its own wins */
    assert_int_equal(d->tasks[3].gpus, 0);
    dag_free(d);
}

/* ---- fan-out ---- */

static struct dag *
load_ok(const char *y, struct diag_list *dl)
{
    struct dag *d = NULL;
    diag_list_init(dl);
    if (dag_load_buffer(&d, y, strlen(y), "fan.yaml", dl) != 0) {
        dump(dl);
        fail_msg("the DAG should load");
    }
    return d;
}

static int
agg_cb(void *ud, const char *fn, const char *task, const char *metric, double *out)
{
    (void)ud;
    if (strcmp(task, "train") || strcmp(metric, "accuracy"))
        return -1;
    *out = !strcmp(fn, "argmax") ? 3 : 0.97;
    return 0;
}

static void
test_fanout_model(void **state)
{
    (void)state;
    struct diag_list dl;
    struct dag *d = NULL;
    diag_list_init(&dl);
    if (dag_load_file(&d, FIXTURES "/fanout.yaml", &dl) != 0) {
        dump(&dl);
        fail();
    }
    assert_int_equal(dl.n, 0);
    diag_list_free(&dl);
    assert_int_equal(d->max_map_items, 1000);
    const struct dag_param *shards = dag_param_find(d, "shards");
    assert_true(shards->is_list);
    assert_false(shards->is_number);
    assert_string_equal(shards->value, "[\"a\",\"b\",\"c\"]");
    assert_false(dag_param_find(d, "min_accuracy")->is_list);

    const struct dag_task *split = &d->tasks[0], *score = &d->tasks[1], *per = &d->tasks[2];
    const struct dag_task *train = &d->tasks[3], *eval = &d->tasks[4], *report = &d->tasks[5];
    const struct dag_task *pick = &d->tasks[6];
    assert_int_equal(split->map.kind, DAG_MAP_NONE);
    assert_int_equal(split->max_parallel, 0);
    assert_int_equal(score->map.kind, DAG_MAP_FROM);
    assert_string_equal(score->map.from_task, "split");
    assert_string_equal(score->map.from_file, "shards.json");
    assert_int_equal(score->map.from_task_idx, 0);
    assert_int_equal(per->map.kind, DAG_MAP_PARAM);
    assert_string_equal(per->map.param, "shards");
    assert_int_equal(train->map.kind, DAG_MAP_MATRIX);
    assert_int_equal(train->map.nitems, 6);
    /* key order as written, later keys varying fastest */
    assert_string_equal(train->map.items_json,
                        "[{\"lr\":0.1,\"depth\":3},{\"lr\":0.1,\"depth\":5},{\"lr\":0.1,"
                        "\"depth\":8},{\"lr\":0.01,\"depth\":3},{\"lr\":0.01,\"depth\":5},"
                        "{\"lr\":0.01,\"depth\":8}]");
    assert_int_equal(train->max_parallel, 4);
    assert_true(train->cache);
    assert_int_equal(eval->map.kind, DAG_MAP_ZIP);
    assert_string_equal(eval->map.zip_task, "train");
    assert_int_equal(eval->map.zip_task_idx, 3);
    assert_non_null(eval->when_expr);
    /* an input from the zipped task is the paired instance's ... */
    assert_true(eval->inputs[0].zip);
    assert_false(eval->inputs[0].fan_in);
    /* ... from any other mapped task every instance's */
    assert_int_equal(report->map.kind, DAG_MAP_ZIP);
    assert_int_equal(report->map.zip_task_idx, 4);
    assert_true(report->inputs[0].fan_in);
    assert_false(report->inputs[0].zip);
    assert_int_equal(pick->map.kind, DAG_MAP_NONE);
    assert_true(pick->inputs[0].fan_in);
    assert_false(pick->inputs[0].zip);
    assert_int_equal(pick->npublish, 1);

    /* rendering an instance: its item, index and the aggregates */
    struct dag_run_ctx rc;
    char **argv = NULL, **envp = NULL, err[256];
    memset(&rc, 0, sizeof(rc));
    rc.logical_date = 1767225600;
    rc.data_interval_end = 1767225600;
    rc.run_id = "manual__x";
    rc.item_json = "{\"lr\":0.01,\"depth\":5}";
    rc.map_index = 4;
    assert_int_equal(dag_render_task(d, 3, &rc, &argv, &envp, err, sizeof(err)), 0);
    assert_string_equal(argv[3], "0.01");
    assert_string_equal(argv[5], "5");
    assert_string_equal(envp[0], "RUN=train-4");
    dag_strv_free(argv);
    dag_strv_free(envp);
    rc.item_json = "\"s3://bucket/part-7\"";
    rc.map_index = 7;
    assert_int_equal(dag_render_task(d, 2, &rc, &argv, &envp, err, sizeof(err)), 0);
    assert_string_equal(argv[1], "s3://bucket/part-7");
    assert_string_equal(argv[2], "7");
    dag_strv_free(argv);
    dag_strv_free(envp);
    /* not an instance: an error, not an empty string */
    rc.item_json = NULL;
    assert_int_equal(dag_render_task(d, 2, &rc, &argv, &envp, err, sizeof(err)), CAIRN_EPARSE);
    assert_non_null(strstr(err, "'item' has no value here"));
    assert_int_equal(dag_render_task(d, 6, &rc, &argv, &envp, err, sizeof(err)), CAIRN_EPARSE);
    assert_non_null(strstr(err, "argmax(train.metrics.accuracy) has no value here"));
    rc.aggregate = agg_cb;
    assert_int_equal(dag_render_task(d, 6, &rc, &argv, &envp, err, sizeof(err)), 0);
    assert_string_equal(argv[2], "3");
    dag_strv_free(argv);
    dag_strv_free(envp);
    /* a preview keeps what has no value */
    rc.aggregate = NULL;
    rc.keep_unresolved = true;
    assert_int_equal(dag_render_task(d, 3, &rc, &argv, &envp, err, sizeof(err)), 0);
    assert_string_equal(argv[3], "{{ item.lr }}");
    dag_strv_free(argv);
    dag_strv_free(envp);

    /* list params take a JSON list as an override */
    struct dag_kv ok = {"shards", "[\"x\", {\"path\": \"p\", \"rows\": 3}, 4, true]"};
    assert_int_equal(dag_check_overrides(d, &ok, 1, err, sizeof(err)), 0);
    struct dag_kv empty = {"shards", "[]"};
    assert_int_equal(dag_check_overrides(d, &empty, 1, err, sizeof(err)), 0);
    struct dag_kv notjson = {"shards", "a,b"};
    assert_int_equal(dag_check_overrides(d, &notjson, 1, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, "param 'shards' is a list: give it as a JSON list"));
    struct dag_kv obj = {"shards", "{\"a\": 1}"};
    assert_int_equal(dag_check_overrides(d, &obj, 1, err, sizeof(err)), CAIRN_EINVAL);
    struct dag_kv nested = {"shards", "[1, [2]]"};
    assert_int_equal(dag_check_overrides(d, &nested, 1, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, "item [1] must be"));
    struct dag_kv deep = {"shards", "[{\"a\": {\"b\": 1}}]"};
    assert_int_equal(dag_check_overrides(d, &deep, 1, err, sizeof(err)), CAIRN_EINVAL);
    struct dag_kv nul = {"shards", "[null]"};
    assert_int_equal(dag_check_overrides(d, &nul, 1, err, sizeof(err)), CAIRN_EINVAL);
    struct dag_kv nulmember = {"shards", "[{\"a\": null}]"};
    assert_int_equal(dag_check_overrides(d, &nulmember, 1, err, sizeof(err)), CAIRN_EINVAL);
    struct sb big;
    sb_init(&big);
    sb_putc(&big, '[');
    for (int i = 0; i < 1001; i++)
        sb_printf(&big, "%s%d", i ? "," : "", i);
    sb_putc(&big, ']');
    struct dag_kv many = {"shards", big.buf};
    assert_int_equal(dag_check_overrides(d, &many, 1, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, "param 'shards' has 1001 items, more than max_map_items (1000)"));
    sb_free(&big);
    /* a scalar param takes a value of its default's type (min_accuracy: 0.9,
     * a number); unknown names are still ENOENT */
    struct dag_kv scalar = {"min_accuracy", "[1]"};
    assert_int_equal(dag_check_overrides(d, &scalar, 1, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, "param 'min_accuracy' takes a number (its default is 0.9), got '[1]'"));
    const char *numbers[] = {"0.95", "1", "-2", "1e-3", "+0.5"};
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
        struct dag_kv num = {"min_accuracy", (char *)numbers[i]};
        assert_int_equal(dag_check_overrides(d, &num, 1, err, sizeof(err)), 0);
    }
    const char *not_numbers[] = {"", " 1", "1 ", "high", "0x10", "inf", "nan", "1e999", "1,5"};
    for (size_t i = 0; i < sizeof(not_numbers) / sizeof(not_numbers[0]); i++) {
        struct dag_kv num = {"min_accuracy", (char *)not_numbers[i]};
        assert_int_equal(dag_check_overrides(d, &num, 1, err, sizeof(err)), CAIRN_EINVAL);
    }
    struct dag_kv unknown = {"shard", "[]"};
    assert_int_equal(dag_check_overrides(d, &unknown, 1, err, sizeof(err)), CAIRN_ENOENT);
    dag_free(d);
}

static void
test_matrix_rules(void **state)
{
    (void)state;
    struct diag_list dl;
    /* GitHub Actions' documented example of include */
    const char *gh = "dag: gh\n"
                     "tasks:\n"
                     "  t:\n"
                     "    command: [echo]\n"
                     "    matrix:\n"
                     "      fruit: [apple, pear]\n"
                     "      animal: [cat, dog]\n"
                     "      include:\n"
                     "        - color: green\n"
                     "        - {color: pink, animal: cat}\n"
                     "        - {fruit: apple, shape: circle}\n"
                     "        - {fruit: banana}\n"
                     "        - {fruit: banana, animal: cat}\n";
    struct dag *d = load_ok(gh, &dl);
    assert_int_equal(d->tasks[0].map.nitems, 6);
    assert_string_equal(
        d->tasks[0].map.items_json,
        "[{\"fruit\":\"apple\",\"animal\":\"cat\",\"color\":\"pink\",\"shape\":\"circle\"},"
        "{\"fruit\":\"apple\",\"animal\":\"dog\",\"color\":\"green\",\"shape\":\"circle\"},"
        "{\"fruit\":\"pear\",\"animal\":\"cat\",\"color\":\"pink\"},"
        "{\"fruit\":\"pear\",\"animal\":\"dog\",\"color\":\"green\"},"
        "{\"fruit\":\"banana\"},{\"fruit\":\"banana\",\"animal\":\"cat\"}]");
    dag_free(d);
    diag_list_free(&dl);

    /* exclude (by value: 3 matches 3.0) before include, which may add an
     * excluded combination back; values keep their JSON type */
    const char *ex = "dag: ex\n"
                     "tasks:\n"
                     "  t:\n"
                     "    command: [echo]\n"
                     "    matrix:\n"
                     "      os: [linux, 'mac']\n"
                     "      v: [+1, .5, 3.0, '3', 007, true, 'true']\n"
                     "      exclude: [{os: mac, v: 3}, {os: linux}, {v: true}]\n"
                     "      include: [{os: linux, v: 1, note: \"a \\\"q\\\"\"}]\n";
    d = load_ok(ex, &dl);
    assert_string_equal(d->tasks[0].map.items_json,
                        "[{\"os\":\"mac\",\"v\":1},{\"os\":\"mac\",\"v\":0.5},"
                        "{\"os\":\"mac\",\"v\":\"3\"},{\"os\":\"mac\",\"v\":7},"
                        "{\"os\":\"mac\",\"v\":\"true\"},{\"os\":\"linux\",\"v\":1,"
                        "\"note\":\"a \\\"q\\\"\"}]");
    assert_int_equal(d->tasks[0].map.nitems, 6);
    dag_free(d);
    diag_list_free(&dl);

    /* only include: each entry a combination; exactly max_map_items is fine */
    const char *inc = "dag: inc\n"
                      "max_map_items: 2\n"
                      "tasks:\n"
                      "  t:\n"
                      "    command: [echo]\n"
                      "    matrix: {include: [{a: 1}, {b: x, a: 2}]}\n"
                      "  u:\n"
                      "    command: [echo]\n"
                      "    matrix: {a: [1, 2]}\n";
    d = load_ok(inc, &dl);
    assert_string_equal(d->tasks[0].map.items_json, "[{\"a\":1},{\"b\":\"x\",\"a\":2}]");
    assert_int_equal(d->tasks[1].map.nitems, 2);
    dag_free(d);
    diag_list_free(&dl);

    /* no combination left: allowed, zero instances, with a warning */
    const char *none = "dag: none\n"
                       "tasks:\n"
                       "  t:\n"
                       "    command: [echo, \"{{ item.a }}\"]\n"
                       "    matrix: {a: [1], exclude: [{a: 1}]}\n";
    d = load_ok(none, &dl);
    assert_int_equal(d->tasks[0].map.kind, DAG_MAP_MATRIX);
    assert_int_equal(d->tasks[0].map.nitems, 0);
    assert_string_equal(d->tasks[0].map.items_json, "[]");
    assert_int_equal(dl.nerrors, 0);
    assert_int_equal(dl.n, 1);
    assert_true(has_diag(&dl, 5, 13, "'matrix' has no combinations: task 't' has no instances"));
    dag_free(d);
    diag_list_free(&dl);

    /* a huge cross product is refused without being expanded */
    struct sb sb;
    sb_init(&sb);
    sb_puts(&sb, "dag: huge\ntasks:\n  t:\n    command: [echo]\n    matrix:\n");
    for (int k = 0; k < 12; k++) {
        sb_printf(&sb, "      k%d: [", k);
        for (int v = 0; v < 100; v++)
            sb_printf(&sb, "%s%d", v ? ", " : "", v);
        sb_puts(&sb, "]\n");
    }
    struct dag *dd = NULL;
    diag_list_init(&dl);
    assert_int_equal(dag_load_buffer(&dd, sb.buf, sb.len, "huge.yaml", &dl), CAIRN_EPARSE);
    assert_int_equal(dl.nerrors, 1);
    assert_true(has_diag(&dl, 6, 7, "'matrix' makes more than max_map_items (100000)"));
    diag_list_free(&dl);
    sb_free(&sb);

    /* within max_map_items, but too much work or too much text: refused
     * before anything is expanded */
    for (int kind = 0; kind < 2; kind++) {
        sb_init(&sb);
        sb_puts(&sb, "dag: big\nmax_map_items: 1000000\ntasks:\n  t:\n    command: [echo]\n"
                     "    matrix:\n");
        if (kind == 1) {
            sb_puts(&sb, "      text: [");
            for (int i = 0; i < 200; i++)
                sb_puts(&sb, "x");
            sb_puts(&sb, "]\n");
        }
        for (int k = 0; k < 3; k++) {
            sb_printf(&sb, "      k%d: [", k);
            for (int v = 0; v < 100; v++)
                sb_printf(&sb, "%s%d", v ? ", " : "", v);
            sb_puts(&sb, "]\n");
        }
        if (kind == 0) {
            sb_puts(&sb, "      exclude:\n");
            for (int v = 0; v < 60; v++)
                sb_printf(&sb, "        - {k0: %d, k1: %d}\n", v, v);
        }
        diag_list_init(&dl);
        int64_t t0 = clock_mono_ms();
        assert_int_equal(dag_load_buffer(&dd, sb.buf, sb.len, "big.yaml", &dl), CAIRN_EPARSE);
        assert_true(clock_mono_ms() - t0 < 5000);
        assert_int_equal(dl.nerrors, 1);
        if (!has_diag(&dl, 7, 7,
                      kind == 0 ? "'matrix' is too large to expand: 1000000 combinations times "
                                  "60 'include' and 'exclude' entries"
                                : "'matrix' is too large: its items would take more than 64 MiB")) {
            dump(&dl);
            fail();
        }
        diag_list_free(&dl);
        sb_free(&sb);
    }
}

static void
test_list_params(void **state)
{
    (void)state;
    struct diag_list dl;
    const char *y = "dag: lists\n"
                    "params:\n"
                    "  shards: [s3://b/p0, 'x \"y\"', 1.50, -3, true, false, 'true']\n"
                    "  files:\n"
                    "    - {path: /a, rows: 10}\n"
                    "    - {path: /b, rows: .5, ok: no}\n"
                    "  none: []\n"
                    "tasks:\n"
                    "  t:\n"
                    "    map: {over: params.files}\n"
                    "    command: [echo, \"{{ params.shards }}\", \"{{ item.path }}\"]\n"
                    "  u:\n"
                    "    map: {over: params.none}\n"
                    "    command: [echo]\n";
    struct dag *d = load_ok(y, &dl);
    assert_string_equal(dag_param_find(d, "shards")->value,
                        "[\"s3://b/p0\",\"x \\\"y\\\"\",1.50,-3,true,false,\"true\"]");
    assert_string_equal(dag_param_find(d, "files")->value,
                        "[{\"path\":\"/a\",\"rows\":10},{\"path\":\"/b\",\"rows\":0.5,"
                        "\"ok\":\"no\"}]");
    assert_string_equal(dag_param_find(d, "none")->value, "[]");
    assert_true(dag_param_find(d, "none")->is_list);
    /* a list param in a template is its JSON text */
    struct dag_run_ctx rc;
    char **argv = NULL, **envp = NULL, err[256];
    memset(&rc, 0, sizeof(rc));
    rc.item_json = "{\"path\":\"/b\"}";
    assert_int_equal(dag_render_task(d, 0, &rc, &argv, &envp, err, sizeof(err)), 0);
    assert_string_equal(argv[1], dag_param_find(d, "shards")->value);
    assert_string_equal(argv[2], "/b");
    dag_strv_free(argv);
    dag_strv_free(envp);
    dag_free(d);
    diag_list_free(&dl);

    /* a NUL byte in a key: an error, not a key cut short */
    const char *nul = "dag: nul\n"
                      "params: {p: [{\"a\\0b\": 1}]}\n"
                      "tasks:\n"
                      "  t:\n"
                      "    command: [echo]\n"
                      "    matrix: {\"k\\0\": [1]}\n";
    diag_list_init(&dl);
    assert_int_equal(dag_load_buffer(&d, nul, strlen(nul), "nul.yaml", &dl), CAIRN_EPARSE);
    assert_int_equal(dl.nerrors, 2);
    assert_true(has_diag(&dl, 2, 15, "the key has a NUL byte"));
    assert_true(has_diag(&dl, 6, 14, "matrix key"));
    diag_list_free(&dl);
}

static void
test_instance_names(void **state)
{
    (void)state;
    char buf[DAG_INSTANCE_NAME_MAX], task[DAG_NAME_MAX + 1];
    assert_string_equal(dag_instance_name("train", 3, buf, sizeof(buf)), "train[3]");
    assert_ptr_equal(dag_instance_name("train", 0, buf, sizeof(buf)), buf);
    assert_string_equal(buf, "train[0]");
    assert_int_equal(dag_instance_parse("train[3]", task, sizeof(task)), 3);
    assert_string_equal(task, "train");
    assert_int_equal(dag_instance_parse("train[0]", task, sizeof(task)), 0);
    assert_int_equal(dag_instance_parse("t[1234567]", task, sizeof(task)), 1234567);
    assert_string_equal(task, "t");
    memset(task, 0, sizeof(task));
    assert_int_equal(dag_instance_parse("train", task, sizeof(task)), -1);
    assert_string_equal(task, "train");
    /* a round trip with the longest task name and index */
    char longest[DAG_NAME_MAX + 1];
    memset(longest, 'a', DAG_NAME_MAX);
    longest[DAG_NAME_MAX] = '\0';
    dag_instance_name(longest, 9223372036854775807L, buf, sizeof(buf));
    assert_int_equal(dag_instance_parse(buf, task, sizeof(task)), 9223372036854775807L);
    assert_string_equal(task, longest);
    const char *bad[] = {
        "t[",    "t[x]", "t[-1]",   "t[01]", "t[]",   "[3]", "t[3",
        "t[3]x", "t]",   "t[1][2]", "t[+1]", "t[ 1]", "",    "t[99999999999999999999]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (dag_instance_parse(bad[i], task, sizeof(task)) != -2)
            fail_msg("'%s' should be malformed", bad[i]);
    /* a task part too long for the buffer */
    char small[4];
    assert_int_equal(dag_instance_parse("train[1]", small, sizeof(small)), -2);
    assert_int_equal(dag_instance_parse("train", small, sizeof(small)), -2);
    assert_int_equal(dag_instance_parse("abc", small, sizeof(small)), -1);

    /* no task can be named like an instance */
    const char *y = "dag: x\ntasks:\n  \"t[1]\": {command: [echo]}\n";
    struct diag_list dl;
    struct dag *d = NULL;
    diag_list_init(&dl);
    assert_int_equal(dag_load_buffer(&d, y, strlen(y), "x.yaml", &dl), CAIRN_EPARSE);
    assert_true(has_diag(&dl, 3, 3, "task name 't[1]' must match"));
    diag_list_free(&dl);
}

static int
teardown_all(void **state)
{
    (void)state;
    tz_cache_clear();
    return 0;
}

static void
test_event_triggers(void **state)
{
    (void)state;
    const char *y = "dag: churn\n"
                    "schedule: \"0 3 * * *\"\n"
                    "params: {file_path: none}\n"
                    "trigger:\n"
                    "  - on_publish: features/build\n"
                    "  - on_file: {path: /data/incoming, pattern: \"*.csv\", settle: 1s}\n"
                    "  - all: [on_publish: a/b, on_webhook: {secret_file: /etc/h.secret}]\n"
                    "  - any: [on_file: /data/other]\n"
                    "tasks:\n"
                    "  t: {command: [echo, \"{{ params.release_path }}\", \"{{ params.file_digest }}\"]}\n";
    struct diag_list dl;
    struct dag *d = NULL;
    diag_list_init(&dl);
    if (dag_load_buffer(&d, y, strlen(y), "churn.yaml", &dl) != 0) {
        dump(&dl);
        fail();
    }
    diag_list_free(&dl);
    assert_non_null(d->schedule);
    assert_int_equal(d->nconds, 4);
    assert_false(d->conds[0].all);
    assert_int_equal(d->conds[0].events[0].kind, DAG_EVENT_PUBLISH);
    assert_string_equal(d->conds[0].events[0].dag, "features");
    assert_string_equal(d->conds[0].events[0].task, "build");
    const struct dag_event *f = &d->conds[1].events[0];
    assert_int_equal(f->kind, DAG_EVENT_FILE);
    assert_string_equal(f->path, "/data/incoming");
    assert_string_equal(f->pattern, "*.csv");
    assert_int_equal(f->settle_ms, 1000);
    assert_true(d->conds[2].all);
    assert_int_equal(d->conds[2].nevents, 2);
    assert_int_equal(d->conds[2].events[1].kind, DAG_EVENT_WEBHOOK);
    assert_string_equal(d->conds[2].events[1].secret_file, "/etc/h.secret");
    f = &d->conds[3].events[0];
    assert_string_equal(f->pattern, "*");
    assert_int_equal(f->settle_ms, DAG_DEFAULT_SETTLE_MS);
    /* the params events give a run are declared; one the file declared keeps its default */
    assert_string_equal(dag_param_find(d, "release_path")->value, "");
    assert_non_null(dag_param_find(d, "release_digest"));
    assert_non_null(dag_param_find(d, "release_id"));
    assert_string_equal(dag_param_find(d, "file_path")->value, "none");
    assert_true(dag_has_event(d, DAG_EVENT_WEBHOOK));
    dag_free(d);

    /* without on_file, its params are not declared: a template using them is wrong */
    const char *y2 = "dag: x\n"
                     "trigger: {on_webhook: {secret_file: /s}}\n"
                     "tasks:\n"
                     "  t: {command: [echo, \"{{ params.file_path }}\"]}\n";
    diag_list_init(&dl);
    assert_int_not_equal(dag_load_buffer(&d, y2, strlen(y2), "x.yaml", &dl), 0);
    diag_list_free(&dl);
}

/* max_log_size, on_log_limit and the output limits: a task's own value,
 * else defaults', else the built-in default. */
static void
test_task_limits(void **state)
{
    (void)state;
    const char *y = "dag: lim\n"
                    "defaults: {max_log_size: 5Mi, max_outputs_size: 20Gi}\n"
                    "tasks:\n"
                    "  a: {command: [echo]}\n"
                    "  b:\n"
                    "    command: [echo]\n"
                    "    max_log_size: 0\n"
                    "    on_log_limit: fail\n"
                    "    max_output_size: 1Gi\n";
    struct diag_list dl;
    struct dag *d = load_ok(y, &dl);
    diag_list_free(&dl);
    const struct dag_task *a = &d->tasks[0], *b = &d->tasks[1];
    assert_int_equal(a->max_log_size, 5LL << 20);
    assert_false(a->log_limit_fail);
    assert_int_equal(a->max_output_size, DAG_DEFAULT_MAX_OUTPUT_SIZE);
    assert_int_equal(a->max_outputs_size, 20LL << 30);
    assert_int_equal(b->max_log_size, -1); /* 0: no limit */
    assert_true(b->log_limit_fail);
    assert_int_equal(b->max_output_size, 1LL << 30);
    assert_int_equal(b->max_outputs_size, 20LL << 30);
    dag_free(d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_fixtures),  cmocka_unit_test(test_hints),
        cmocka_unit_test(test_binary_garbage),  cmocka_unit_test(test_full_model),
        cmocka_unit_test(test_render),          cmocka_unit_test(test_defaults_errors_once),
        cmocka_unit_test(test_aliases),         cmocka_unit_test(test_merge_keys),
        cmocka_unit_test(test_optional_inputs), cmocka_unit_test(test_mounts),
        cmocka_unit_test(test_fanout_model),    cmocka_unit_test(test_matrix_rules),
        cmocka_unit_test(test_list_params),     cmocka_unit_test(test_instance_names),
        cmocka_unit_test(test_gpu_resources),   cmocka_unit_test(test_event_triggers),
        cmocka_unit_test(test_task_limits),     cmocka_unit_test(test_task_index),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_all);
}
