/* runc_driver.c - drive worker/runc.c for bench/runc_overhead.sh.
 *
 *   runc_driver write DIR ID   write DIR/ID.bundle (the bare runc baseline)
 *   runc_driver once DIR ID    run one attempt through the module
 *   runc_driver loop DIR N     N bare `runc run`s and N module runs,
 *                              interleaved, timed in-process; prints both
 *
 * Every attempt runs /bin/true with image "host", a 256 MiB memory limit,
 * 1 CPU and 128 pids: the same config.json for the baseline and the module.
 * Not built by CMake; the script compiles it against the built libraries.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "err.h"
#include "runc.h"
#include "util.h"

extern char **environ;

struct paths {
    char *root;
    char *ws;
    char *out;
    char *bundle;
};

static const char *const true_argv[] = {"/bin/true", NULL};

static struct runc_spec
bench_spec(struct paths *p, const char *dir, const char *id)
{
    struct runc_spec s = {0};
    p->root = xasprintf("%s/root", dir);
    p->ws = xasprintf("%s/ws", dir);
    p->out = xasprintf("%s/out", dir);
    p->bundle = xasprintf("%s/%s.bundle", dir, id);
    mkdir(p->ws, 0755);
    mkdir(p->out, 0755);
    s.root = p->root;
    s.bundle_dir = p->bundle;
    s.container_id = id;
    s.cgroup_parent = "/cairn-bench";
    s.argv = true_argv;
    s.image = "host";
    s.workspace_dir = p->ws;
    s.outputs_dir = p->out;
    s.memory_bytes = 256 << 20;
    s.cpus = 1;
    s.pids = 128;
    return s;
}

static void
paths_free(struct paths *p)
{
    free(p->root);
    free(p->ws);
    free(p->out);
    free(p->bundle);
}

static double
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void
exit_cb(void *ud, const struct runc_result *res)
{
    int *status = ud;
    *status = res->error[0] ? 255 : res->exit_code;
    if (res->error[0])
        fprintf(stderr, "runtime error: %s\n", res->error);
}

static int
run_module(const struct runc_spec *s)
{
    uv_loop_t loop;
    struct runc_proc *p;
    struct runc_callbacks cbs = {NULL, exit_cb};
    char err[256];
    int status = -1;
    uv_loop_init(&loop);
    int rc = runc_start(&p, &loop, s, &cbs, &status, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "runc_start: %s: %s\n", cairn_strerror(rc), err);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    runc_proc_free(p);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return status;
}

static int
run_bare(const char *root, const char *bundle, const char *id)
{
    char *argv[] = {"runc",     "--root",       (char *)root, "run",
                    "--bundle", (char *)bundle, (char *)id,   NULL};
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int st;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (posix_spawnp(&pid, "runc", &fa, NULL, argv, environ) != 0)
        return 1;
    posix_spawn_file_actions_destroy(&fa);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double
report(const char *name, double *v, int n)
{
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += v[i];
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    printf("%-6s mean %7.2f ms  median %7.2f ms  min %7.2f ms\n", name, sum / n, v[n / 2], v[0]);
    return v[n / 2];
}

int
main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: runc_driver write|once DIR ID | loop DIR N\n");
        return 2;
    }
    struct paths p;
    int rc = 0;
    if (strcmp(argv[1], "write") == 0) {
        struct runc_spec s = bench_spec(&p, argv[2], argv[3]);
        char err[256];
        rc = runc_write_bundle(&s, err, sizeof(err));
        if (rc)
            fprintf(stderr, "runc_write_bundle: %s\n", err);
        rc = rc ? 1 : 0;
    } else if (strcmp(argv[1], "once") == 0) {
        struct runc_spec s = bench_spec(&p, argv[2], argv[3]);
        rc = run_module(&s);
    } else if (strcmp(argv[1], "loop") == 0) {
        int n = (int)strtol(argv[3], NULL, 10);
        if (n < 1)
            n = 1;
        struct runc_spec bare = bench_spec(&p, argv[2], "loop-bare");
        char err[256];
        if (runc_write_bundle(&bare, err, sizeof(err)) != 0) {
            fprintf(stderr, "runc_write_bundle: %s\n", err);
            paths_free(&p);
            return 1;
        }
        struct paths pm;
        struct runc_spec mod = bench_spec(&pm, argv[2], "loop-cairn");
        double *tb = xcalloc((size_t)n, sizeof(double));
        double *tm = xcalloc((size_t)n, sizeof(double));
        /* 3 warm-up rounds; the order alternates so that neither side always
         * runs right after the other's deferred kernel work (cgroup removal). */
        for (int i = -3; i < n && rc == 0; i++) {
            for (int k = 0; k < 2; k++) {
                bool bare_turn = (k == 0) == (i % 2 == 0);
                double t0 = now_ms();
                rc |= bare_turn ? run_bare(p.root, p.bundle, "loop-bare") : run_module(&mod);
                double t = now_ms() - t0;
                if (i >= 0)
                    (bare_turn ? tb : tm)[i] = t;
            }
        }
        if (rc == 0) {
            double mb = report("bare", tb, n);
            double mm = report("cairn", tm, n);
            printf("ratio  cairn/bare (medians) %.3f\n", mm / mb);
        }
        free(tb);
        free(tm);
        paths_free(&pm);
    } else {
        fprintf(stderr, "unknown mode %s\n", argv[1]);
        rc = 2;
    }
    paths_free(&p);
    return rc;
}
