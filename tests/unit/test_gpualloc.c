/* Tests for scheduler/gpualloc.c: matching a gpu_type to a model name,
 * taking and releasing a worker's GPUs (two leases never hold one), and
 * holding them again from the leases in flight after a restart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four above first */
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "gpualloc.h"
#include "msg.h"
#include "readyq.h"

static void
test_matches(void **state)
{
    (void)state;
    static const struct {
        const char *model, *type;
        bool want;
    } cases[] = {
        {"NVIDIA A100-SXM4-80GB", "A100", true},
        {"NVIDIA A100-SXM4-80GB", "a100", true},
        {"NVIDIA A100-SXM4-80GB", "a100-sxm4", true},
        {"NVIDIA A100-SXM4-80GB", "NVIDIA A100-SXM4-80GB", true},
        {"NVIDIA A100-SXM4-80GB", "A10", false},
        {"NVIDIA A100-SXM4-80GB", "100", false},
        {"NVIDIA A100-SXM4-80GB", "H100", false},
        {"NVIDIA A10", "A10", true},
        {"NVIDIA GeForce RTX 4090", "RTX 4090", true},
        {"NVIDIA GeForce RTX 4090", "rtx", true},
        {"NVIDIA GeForce RTX 4090", "RTX 409", false},
        {"", "A100", false},
        {NULL, "A100", false},
        {"anything", NULL, true},
        {"", "", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool got = gpualloc_matches(cases[i].model, cases[i].type);
        if (got != cases[i].want)
            fail_msg("'%s' ~ '%s': got %d", cases[i].model ? cases[i].model : "(null)",
                     cases[i].type ? cases[i].type : "(null)", got);
    }
}

static void
worker_init(struct sched_worker *w, const char *name, const struct msg_gpu *g, size_t n)
{
    memset(w, 0, sizeof(*w));
    w->name = (char *)name;
    gpualloc_set_gpus(w, g, n);
}

static void
ti_init(struct sched_ti *ti, int64_t lease_id)
{
    memset(ti, 0, sizeof(*ti));
    ti->lease_id = lease_id;
}

static size_t
nfree(const struct sched_worker *w, const char *type)
{
    size_t total, f;
    gpualloc_count(w, type, &total, &f);
    return f;
}

static void
test_take_release(void **state)
{
    (void)state;
    /* announced out of order: kept in index order */
    struct msg_gpu g[] = {{2, "NVIDIA A100"}, {0, "NVIDIA A100"}, {1, "NVIDIA A100"}};
    struct sched_worker w;
    worker_init(&w, "w1", g, 3);
    assert_int_equal(w.gpus[0].index, 0);
    assert_int_equal(w.gpus[2].index, 2);

    struct sched_ti a, b, c;
    ti_init(&a, 10);
    ti_init(&b, 11);
    ti_init(&c, 12);
    assert_true(gpualloc_take(&w, &a, 1, NULL));
    assert_int_equal(a.ngpus, 1);
    assert_int_equal(a.gpus[0], 0); /* the lowest free first */
    assert_true(gpualloc_take(&w, &b, 2, "a100"));
    assert_int_equal(b.ngpus, 2);
    assert_int_equal(b.gpus[0], 1);
    assert_int_equal(b.gpus[1], 2);
    assert_int_equal(nfree(&w, NULL), 0);
    /* not enough: refused, nothing changed */
    assert_false(gpualloc_take(&w, &c, 1, NULL));
    assert_int_equal(c.ngpus, 0);
    assert_null(c.gpus);
    for (size_t i = 0; i < w.ngpus; i++)
        assert_int_not_equal(w.gpus[i].lease_id, c.lease_id);

    /* a release frees only what that lease holds, and twice is once */
    gpualloc_release(&w, &a);
    assert_int_equal(nfree(&w, NULL), 1);
    assert_int_equal(a.ngpus, 1); /* still shows what it had */
    gpualloc_release(&w, &a);
    assert_int_equal(nfree(&w, NULL), 1);
    assert_true(gpualloc_take(&w, &c, 1, NULL));
    assert_int_equal(c.gpus[0], 0);
    /* a's old allocation names GPU 0, which c holds now: releasing a again
     * must not free it */
    gpualloc_release(&w, &a);
    assert_int_equal(nfree(&w, NULL), 0);
    assert_int_equal(w.gpus[0].lease_id, 12);
    gpualloc_release(&w, &b);
    assert_int_equal(nfree(&w, NULL), 2);
    /* 0 GPUs: always fits, and forgets an earlier allocation */
    assert_true(gpualloc_take(&w, &a, 0, NULL));
    assert_int_equal(a.ngpus, 0);

    gpualloc_forget(&a);
    gpualloc_forget(&b);
    gpualloc_forget(&c);
    gpualloc_worker_free(&w);
    assert_int_equal(w.ngpus, 0);
    gpualloc_worker_free(&w); /* again: a no-op */
}

/* Every way of taking and releasing at random: no GPU is ever held by two
 * leases, and the free count is what the leases leave. */
static void
test_never_shared(void **state)
{
    (void)state;
    struct msg_gpu g[8];
    for (int i = 0; i < 8; i++)
        g[i] = (struct msg_gpu){i, i < 4 ? "NVIDIA H100 PCIe" : "NVIDIA L4"};
    struct sched_worker w;
    worker_init(&w, "w1", g, 8);
    struct sched_ti tis[6];
    bool held[6] = {false};
    for (int i = 0; i < 6; i++)
        ti_init(&tis[i], 100 + i);
    srand(7);
    for (int step = 0; step < 2000; step++) {
        int k = rand() % 6;
        if (held[k]) {
            gpualloc_release(&w, &tis[k]);
            held[k] = false;
        } else {
            const char *type = (k % 3 == 0) ? "h100" : (k % 3 == 1) ? "L4" : NULL;
            int n = 1 + rand() % 3;
            size_t before = nfree(&w, type);
            bool ok = gpualloc_take(&w, &tis[k], n, type);
            assert_int_equal(ok, before >= (size_t)n);
            held[k] = ok;
            if (ok) {
                for (size_t j = 0; j < tis[k].ngpus; j++)
                    assert_true(gpualloc_matches(w.gpus[tis[k].gpus[j]].model, type));
            }
        }
        size_t used = 0;
        for (int t = 0; t < 6; t++)
            used += held[t] ? tis[t].ngpus : 0;
        assert_int_equal(used + nfree(&w, NULL), 8);
        for (size_t x = 0; x < w.ngpus; x++) {
            int holders = 0;
            for (int t = 0; t < 6; t++)
                for (size_t j = 0; held[t] && j < tis[t].ngpus; j++)
                    holders += tis[t].gpus[j] == w.gpus[x].index;
            assert_true(holders <= 1);
            assert_int_equal(holders == 1, w.gpus[x].lease_id != 0);
        }
    }
    for (int i = 0; i < 6; i++)
        gpualloc_forget(&tis[i]);
    gpualloc_worker_free(&w);
}

/* After a restart the leases in flight come from their records (worker by
 * name, GPUs by index); the worker's HELLO holds them again. */
static void
test_rebuild(void **state)
{
    (void)state;
    struct sched *s = calloc(1, sizeof(*s));
    rq_list_init(&s->leases);
    struct msg_gpu g[] = {{0, "A"}, {1, "A"}};
    struct sched_worker w1, w2;
    worker_init(&w1, "w1", g, 2);
    worker_init(&w2, "w2", g, 1);
    struct sched_worker *workers[] = {&w1, &w2};
    s->workers = workers;
    s->nworkers = 2;

    struct sched_ti a, b, c, d;
    int one[] = {1}, zero[] = {0}, gone[] = {5};
    ti_init(&a, 20);
    a.worker_name = "w1";
    gpualloc_set_ti(&a, one, 1);
    ti_init(&b, 21); /* another worker's */
    b.worker_name = "w2";
    gpualloc_set_ti(&b, zero, 1);
    ti_init(&c, 22); /* a GPU w1 no longer announces */
    c.worker_name = "w1";
    gpualloc_set_ti(&c, gone, 1);
    ti_init(&d, 23); /* no GPUs */
    d.worker_name = "w1";
    rq_list_add(&s->leases, &a);
    rq_list_add(&s->leases, &b);
    rq_list_add(&s->leases, &c);
    rq_list_add(&s->leases, &d);

    gpualloc_rebuild(s, &w1);
    assert_int_equal(w1.gpus[0].lease_id, 0);
    assert_int_equal(w1.gpus[1].lease_id, 20);
    assert_int_equal(nfree(&w1, NULL), 1);
    assert_int_equal(nfree(&w2, NULL), 1); /* rebuilt only when w2 says HELLO */
    gpualloc_rebuild(s, &w2);
    assert_int_equal(w2.gpus[0].lease_id, 21);
    /* a second HELLO rebuilds the same */
    gpualloc_rebuild(s, &w1);
    assert_int_equal(w1.gpus[1].lease_id, 20);
    assert_int_equal(nfree(&w1, NULL), 1);
    /* a lease claimed by its worker counts by pointer */
    a.worker = &w1;
    a.worker_name = NULL;
    gpualloc_rebuild(s, &w1);
    assert_int_equal(w1.gpus[1].lease_id, 20);
    /* hold refuses a GPU another lease holds */
    struct sched_ti e;
    ti_init(&e, 24);
    gpualloc_set_ti(&e, one, 1);
    assert_int_equal(gpualloc_hold(&w1, &e), 1);
    assert_int_equal(w1.gpus[1].lease_id, 20);

    gpualloc_forget(&a);
    gpualloc_forget(&b);
    gpualloc_forget(&c);
    gpualloc_forget(&e);
    gpualloc_worker_free(&w1);
    gpualloc_worker_free(&w2);
    free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches),
        cmocka_unit_test(test_take_release),
        cmocka_unit_test(test_never_shared),
        cmocka_unit_test(test_rebuild),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
