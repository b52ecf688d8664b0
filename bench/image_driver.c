/* image_driver.c - drive worker/image.c for bench/images.sh.
 *
 *   image_driver pull DIR REF INSECURE      pull and unpack REF into DIR (an
 *                                           image cache), print the time
 *   image_driver warm DIR REF INSECURE N    N task starts from the cached
 *                                           image, as the worker makes them
 *                                           (its cache of pinned images, the
 *                                           bundle in the work folder, runc) and
 *                                           N bare `runc run`s of a bundle with
 *                                           the same rootfs, interleaved;
 *                                           prints both and the ratio
 *
 *   image_driver bundles DIR REF INSECURE N pull REF (if not cached) and write
 *                                           N bundles DIR/lane<i>.bundle (ids
 *                                           img-lane<i>) of its rootfs, for
 *                                           bare `runc run`s side by side
 *
 * INSECURE is the registry's HOST:PORT (plain HTTP). Every task runs
 * /bin/true with the same limits on both sides. Not built by CMake; the
 * script compiles it against the built libraries.
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
#include "image.h"
#include "image_job.h"
#include "runc.h"
#include "util.h"

extern char **environ;

static const char *const true_argv[] = {"/bin/true", NULL};

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
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    printf("%-6s median %7.2f ms  min %7.2f ms  max %7.2f ms\n", name, v[n / 2], v[0], v[n - 1]);
    return v[n / 2];
}

static struct runc_spec
spec_for(const char *dir, const char *id, const char *rootfs, char **bufs)
{
    struct runc_spec s = {0};
    bufs[0] = xasprintf("%s/root", dir);
    bufs[1] = xasprintf("%s/ws", dir);
    bufs[2] = xasprintf("%s/out", dir);
    bufs[3] = xasprintf("%s/%s.bundle", dir, id);
    mkdir(bufs[1], 0755);
    mkdir(bufs[2], 0755);
    s.root = bufs[0];
    s.workspace_dir = bufs[1];
    s.outputs_dir = bufs[2];
    s.bundle_dir = bufs[3];
    s.container_id = id;
    s.cgroup_parent = "/cairn-bench";
    s.argv = true_argv;
    s.image = rootfs;
    s.memory_bytes = 256 << 20;
    s.cpus = 1;
    s.pids = 128;
    return s;
}

int
main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: image_driver pull DIR REF INSECURE | warm DIR REF INSECURE N | "
                        "bundles DIR REF INSECURE N\n");
        return 2;
    }
    const char *insecure[] = {argv[4]};
    char *images = xasprintf("%s/images", argv[2]);
    struct image_opts o = {.dir = images, .reg = {.insecure = insecure, .ninsecure = 1}};
    struct image_info info;
    char err[1024];
    double t0 = now_ms();
    if (image_prepare(&o, argv[3], NULL, NULL, &info, err, sizeof(err)) != 0) {
        fprintf(stderr, "image_prepare: %s\n", err);
        return 1;
    }
    if (!strcmp(argv[1], "pull")) {
        printf("%.1f\n", now_ms() - t0);
        image_info_clear(&info);
        free(images);
        return 0;
    }
    int n = argc > 5 ? atoi(argv[5]) : 20;
    if (n < 1)
        n = 1;
    if (!strcmp(argv[1], "bundles")) {
        int rc = 0;
        for (int i = 0; i < n && rc == 0; i++) {
            char id[32], *lb[4];
            snprintf(id, sizeof(id), "img-lane%d", i);
            struct runc_spec ls = spec_for(argv[2], id, info.rootfs, lb);
            free(lb[3]);
            lb[3] = xasprintf("%s/lane%d.bundle", argv[2], i);
            ls.bundle_dir = lb[3];
            if (runc_write_bundle(&ls, err, sizeof(err)) != 0) {
                fprintf(stderr, "runc_write_bundle: %s\n", err);
                rc = 1;
            }
            for (int j = 0; j < 4; j++)
                free(lb[j]);
        }
        printf("%s\n", info.rootfs);
        image_info_clear(&info);
        free(images);
        return rc;
    }
    char *bb[4], *bm[4];
    struct runc_spec bare = spec_for(argv[2], "img-bare", info.rootfs, bb);
    if (runc_write_bundle(&bare, err, sizeof(err)) != 0) {
        fprintf(stderr, "runc_write_bundle: %s\n", err);
        return 1;
    }
    /* the worker's cache of pinned images, as after its first task */
    char pinned[512];
    snprintf(pinned, sizeof(pinned), "%.*s@%s", (int)strcspn(argv[3], "@"), argv[3], info.digest);
    struct imgjob_cache *cache = imgjob_cache_new();
    imgjob_cache_put(cache, pinned, &info);
    char *skels = xasprintf("%s/.rootfs", argv[2]);
    double *tb = xcalloc((size_t)n, sizeof(double)), *tm = xcalloc((size_t)n, sizeof(double));
    int rc = 0;
    for (int i = -3; i < n && rc == 0; i++) {
        for (int k = 0; k < 2; k++) {
            bool bare_turn = (k == 0) == (i % 2 == 0);
            double s0 = now_ms();
            if (bare_turn) {
                rc |= run_bare(bb[0], bb[3], "img-bare");
            } else {
                /* a warm start as the worker makes it: the image of the
                 * pinned reference from its cache of prepared images
                 * (image_reuse; image_prepare if that fails), the bundle's
                 * config.json in the attempt's existing work folder, and
                 * the task started */
                struct image_info w;
                if (!imgjob_cached(cache, &o, pinned, &w) &&
                    image_prepare(&o, pinned, NULL, NULL, &w, err, sizeof(err)) != 0) {
                    fprintf(stderr, "image_prepare: %s\n", err);
                    rc = 1;
                    break;
                }
                struct runc_spec m = spec_for(argv[2], "img-cairn", w.rootfs, bm);
                free(bm[3]);
                bm[3] = xasprintf("%s/work", argv[2]);
                mkdir(bm[3], 0700);
                m.bundle_dir = bm[3];
                m.bundle_dir_exists = true;
                m.rootfs_cache = skels;
                rc |= run_module(&m);
                for (int j = 0; j < 4; j++)
                    free(bm[j]);
                image_info_clear(&w);
            }
            if (i >= 0)
                (bare_turn ? tb : tm)[i] = now_ms() - s0;
        }
    }
    if (rc == 0) {
        double mb = report("bare", tb, n);
        double mm = report("cairn", tm, n);
        printf("speed  bare/cairn (medians) %.3f\n", mb / mm);
    }
    free(tb);
    free(tm);
    imgjob_cache_free(cache);
    free(skels);
    for (int j = 0; j < 4; j++)
        free(bb[j]);
    image_info_clear(&info);
    free(images);
    return rc;
}
