/* test_events.c - event triggers (events.h): the release digest, and
 * webhooks into an `all:` group through the engine with a real loop and a
 * real LMDB (no daemons), across a restart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core.h"
#include "engine.h"
#include "err.h"
#include "events.h"
#include "fs.h"
#include "hmacsig.h"
#include "schema.h"
#include "store.h"
#include "util.h"
#include "wire.h"

static void
drop_req(struct wire_req *req)
{
    json_decref(req->body);
    free(req);
}

static void
reply_req(struct wire_req *req, int type, json_t *body)
{
    (void)type;
    (void)body;
    drop_req(req);
}

struct fx {
    char dir[64];
    char *dags, *data;
    uv_loop_t loop;
    struct sched *s;
};

static void
start(struct fx *f)
{
    struct sched_config cfg = {0};
    cfg.dags_dir = f->dags;
    cfg.data_dir = f->data;
    cfg.link.reply = reply_req;
    cfg.link.drop = drop_req;
    char err[512];
    if (sched_new(&f->s, &f->loop, &cfg, err, sizeof(err)) != 0)
        fail_msg("sched_new: %s", err);
}

static void
stop_done(void *ud)
{
    *(bool *)ud = true;
}

static void
stop(struct fx *f)
{
    bool done = false;
    sched_stop(f->s, stop_done, &done);
    for (int i = 0; i < 100 && !done; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_true(done);
    sched_free(f->s);
    f->s = NULL;
}

static void
spin(struct fx *f)
{
    for (int i = 0; i < 3; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* The runs of dag in the store. */
static int
count_cb(void *ud, const char *key, const void *json)
{
    (void)key;
    (void)json;
    (*(int *)ud)++;
    return 0;
}

static int
stored_runs(struct fx *f, const char *dag)
{
    struct store_txn *t = NULL;
    int n = 0;
    assert_int_equal(store_txn_begin(sched_store(f->s), false, &t), 0);
    char *pfx = xasprintf("%s" SCHEMA_SEP, dag);
    store_scan(t, STORE_RUNS, pfx, count_cb, &n);
    free(pfx);
    store_txn_abort(t);
    return n;
}

static int
webhook(struct fx *f, const char *key, const char *body, struct sched_run **r)
{
    char sig[80], err[256];
    hsig_sign(key, strlen(key), body, strlen(body), sig, sizeof(sig));
    return ev_webhook(f->s, "g", body, strlen(body), sig, r, err, sizeof(err));
}

static void
test_all_group_across_restart(void **state)
{
    (void)state;
    struct fx f = {0};
    snprintf(f.dir, sizeof(f.dir), "/tmp/cairn-events-XXXXXX");
    assert_non_null(mkdtemp(f.dir));
    f.dags = xasprintf("%s/dags", f.dir);
    f.data = xasprintf("%s/data", f.dir);
    fs_mkdirs(f.dags);
    char *ka = xasprintf("%s/a.secret", f.dir), *kb = xasprintf("%s/b.secret", f.dir);
    FILE *fp = fopen(ka, "w");
    fputs("key-a\n", fp);
    fclose(fp);
    fp = fopen(kb, "w");
    fputs("key-b", fp);
    fclose(fp);
    char *path = xasprintf("%s/g.yaml", f.dags);
    fp = fopen(path, "w");
    fprintf(fp, "dag: g\n"
                "params: {x: none, y: none}\n"
                "trigger:\n"
                "  - all: [on_webhook: {secret_file: %s}, on_webhook: {secret_file: %s}]\n"
                "tasks:\n"
                "  t: {command: [echo]}\n",
            ka, kb);
    fclose(fp);
    uv_loop_init(&f.loop);
    start(&f);

    struct sched_run *r = (struct sched_run *)1;
    /* a wrong key, or no signature: refused, nothing remembered */
    assert_int_equal(webhook(&f, "key-c", "{\"x\": \"1\"}", &r), CAIRN_EAUTH);
    char err[256];
    assert_int_equal(ev_webhook(f.s, "g", "{}", 2, NULL, &r, err, sizeof(err)), CAIRN_EAUTH);
    assert_int_equal(ev_webhook(f.s, "nope", "{}", 2, NULL, &r, err, sizeof(err)), CAIRN_ENOENT);
    /* signed, but an undeclared param */
    assert_int_equal(webhook(&f, "key-a", "{\"z\": 1}", &r), CAIRN_EINVAL);
    /* the first event: taken, no run yet */
    assert_int_equal(webhook(&f, "key-a", "{\"x\": \"1\"}", &r), 0);
    assert_null(r);
    spin(&f);
    assert_int_equal(stored_runs(&f, "g"), 0);

    /* the group remembers it across a restart */
    stop(&f);
    start(&f);
    assert_int_equal(webhook(&f, "key-b", "{\"y\": \"2\"}", &r), 0);
    assert_non_null(r);
    assert_string_equal(r->run_type, "event");
    assert_string_equal(json_string_value(json_object_get(r->params, "x")), "1");
    assert_string_equal(json_string_value(json_object_get(r->params, "y")), "2");
    assert_string_equal(json_string_value(json_object_get(r->event, "kind")), "all");
    assert_int_equal(json_array_size(json_object_get(r->event, "events")), 2);
    spin(&f);
    assert_int_equal(stored_runs(&f, "g"), 1);

    /* and starts over: one more event alone makes no run */
    assert_int_equal(webhook(&f, "key-b", "{\"y\": \"3\"}", &r), 0);
    assert_null(r);
    spin(&f);
    assert_int_equal(stored_runs(&f, "g"), 1);

    stop(&f);
    uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&f.loop), 0);
    fs_rmtree(f.dir);
    free(path);
    free(ka);
    free(kb);
    free(f.dags);
    free(f.data);
}

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
        cmocka_unit_test(test_all_group_across_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
