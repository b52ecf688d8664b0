/* Tests for runc.c, in two groups (the first argument picks one; none runs
 * both):
 *
 *   containers  real containers through the installed runc; they need runc
 *               on PATH and root, and the group exits 77 (skipped) without
 *               them;
 *   spec        what needs neither: the OCI bundle writer, spec checks and
 *               refusals before anything runs, and --isolation none.
 *
 * Every test works in its own temp directory with its own runc --root and
 * cgroup parent, and the teardown checks that no container is left behind
 * before it removes them. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "attempt.h"
#include "err.h"
#include "runc.h"
#include "testlib.h"
#include "util.h"

struct fx {
    struct tl_dir tmp;
    const char *dir; /* tmp.path */
    char *root;
    char *ws;
    char *out;
    char *cgparent;
    char *bundle;
    char *id;
    char **env; /* what a task gets with an empty lease env (attempt_env) */
    int n;
};

struct cap {
    struct sb out;
    struct sb err;
    struct runc_result res;
    int exits;
    struct runc_proc *p;
    bool free_in_exit;
};

/* ---- helpers ------------------------------------------------------------ */

/* Remove <hierarchy><parent> in every cgroup hierarchy (empty by now). */
static void
rm_cgroup_parent(const char *parent)
{
    static const char *const hier[] = {"blkio",  "cpu",  "cpuacct", "cpuset",  "devices", "freezer",
                                       "memory", "pids", "systemd", "unified", "",        NULL};
    for (size_t i = 0; hier[i]; i++) {
        char *d = xasprintf("/sys/fs/cgroup/%s%s", hier[i], parent);
        rmdir(d);
        free(d);
    }
}

static int
setup(void **state)
{
    struct fx *fx = xcalloc(1, sizeof(*fx));
    assert_int_equal(tl_dir_make(&fx->tmp, "runc"), 0);
    fx->dir = fx->tmp.path;
    fx->root = xasprintf("%s/root", fx->dir);
    fx->ws = xasprintf("%s/ws", fx->dir);
    fx->out = xasprintf("%s/out", fx->dir);
    fx->cgparent = xasprintf("/cairn-test-%d", (int)getpid());
    assert_int_equal(mkdir(fx->ws, 0755), 0);
    assert_int_equal(mkdir(fx->out, 0755), 0);
    fx->env = attempt_env(NULL, 0, NULL, false);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *fx = *state;
    /* Nothing may be left: the root holds no container state. */
    bool clean = true;
    if (tl_exists(fx->root)) {
        clean = tl_sh("test -z \"$(runc --root %s list -q)\"", fx->root) == 0;
        runc_reap_leftovers(NULL, fx->root, fx->cgparent);
    }
    rm_cgroup_parent(fx->cgparent);
    tl_dir_remove(&fx->tmp);
    free(fx->root);
    free(fx->ws);
    free(fx->out);
    free(fx->cgparent);
    free(fx->bundle);
    free(fx->id);
    attempt_env_free(fx->env);
    free(fx);
    assert_true(clean);
    return 0;
}

/* A spec for image "host" with fresh bundle dir and id. */
static struct runc_spec
spec_for(struct fx *fx, const char *const *argv)
{
    free(fx->bundle);
    free(fx->id);
    fx->n++;
    fx->bundle = xasprintf("%s/bundles/b%d", fx->dir, fx->n);
    fx->id = xasprintf("cairn-test-%d-%d", (int)getpid(), fx->n);
    struct runc_spec s = {0};
    s.root = fx->root;
    s.bundle_dir = fx->bundle;
    s.container_id = fx->id;
    s.cgroup_parent = fx->cgparent;
    s.argv = argv;
    s.env = (const char *const *)fx->env;
    s.image = "host";
    s.workspace_dir = fx->ws;
    s.outputs_dir = fx->out;
    return s;
}

static void
output_cb(void *ud, int stream, const char *data, size_t len)
{
    struct cap *c = ud;
    assert_int_equal(c->exits, 0);
    assert_true(stream == 1 || stream == 2);
    sb_append(stream == 1 ? &c->out : &c->err, data, len);
}

static void
exit_cb(void *ud, const struct runc_result *res)
{
    struct cap *c = ud;
    c->exits++;
    c->res = *res;
    if (c->free_in_exit)
        runc_proc_free(c->p);
}

static const struct runc_callbacks cbs = {output_cb, exit_cb};

static void
cap_init(struct cap *c)
{
    memset(c, 0, sizeof(*c));
    sb_init(&c->out);
    sb_init(&c->err);
    sb_append(&c->out, "", 0);
    sb_append(&c->err, "", 0);
    c->free_in_exit = true;
}

static void
cap_free(struct cap *c)
{
    sb_free(&c->out);
    sb_free(&c->err);
}

/* Run spec to completion on a fresh loop; checks that exactly one exit was
 * reported, the bundle is gone and the loop closes with no handle left. */
static void
run_spec(struct fx *fx, const struct runc_spec *s, struct cap *c)
{
    uv_loop_t loop;
    char err[256];
    cap_init(c);
    assert_int_equal(uv_loop_init(&loop), 0);
    int rc = runc_start(&c->p, &loop, s, &cbs, c, err, sizeof(err));
    if (rc != 0)
        fail_msg("runc_start: %s: %s", cairn_err_name(rc), err);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(c->exits, 1);
    if (!s->isolation_none) {
        assert_false(tl_exists(s->bundle_dir));
        char *state = xasprintf("%s/%s", fx->root, s->container_id);
        assert_false(tl_exists(state));
        free(state);
    }
}

static void
run_argv(struct fx *fx, const char *const *argv, struct cap *c)
{
    struct runc_spec s = spec_for(fx, argv);
    run_spec(fx, &s, c);
}

/* ---- tests -------------------------------------------------------------- */

static void
test_echo(void **state)
{
    struct fx *fx = *state;
    struct cap c;
    const char *argv[] = {"echo", "hello", "world", NULL};
    struct runc_spec s = spec_for(fx, argv);
    s.memory_bytes = 256 << 20;
    run_spec(fx, &s, &c);
    assert_string_equal(c.out.buf, "hello world\n");
    assert_string_equal(c.err.buf, "");
    assert_int_equal(c.res.exit_code, 0);
    assert_int_equal(c.res.term_signal, 0);
    assert_false(c.res.oom_killed);
    assert_false(c.res.timed_out);
    assert_string_equal(c.res.error, "");
    assert_true(c.res.duration_ms >= 0 && c.res.duration_ms < 10000);
    cap_free(&c);
}

static void
test_exit_code_and_stderr(void **state)
{
    struct fx *fx = *state;
    struct cap c;
    const char *argv[] = {"sh", "-c", "echo oops >&2; exit 3", NULL};
    run_argv(fx, argv, &c);
    assert_int_equal(c.res.exit_code, 3);
    assert_int_equal(c.res.term_signal, 0);
    assert_string_equal(c.err.buf, "oops\n");
    assert_string_equal(c.res.error, "");
    cap_free(&c);
}

static void
test_large_output(void **state)
{
    struct fx *fx = *state;
    struct cap c;
    /* 1 MiB, more than one pipe buffer and one read buffer. */
    const char *argv[] = {"sh", "-c", "head -c 1048576 /dev/zero | tr '\\0' x", NULL};
    run_argv(fx, argv, &c);
    assert_int_equal(c.res.exit_code, 0);
    assert_int_equal(c.out.len, 1048576);
    assert_int_equal(c.out.buf[0], 'x');
    assert_int_equal(c.out.buf[c.out.len - 1], 'x');
    cap_free(&c);
}

/* The bundle in the caller's existing folder (the worker's work folder):
 * config.json is written there and removed after the exit, the folder and
 * what else it holds stay; a config.json already there is refused, not
 * overwritten. */
static void
test_bundle_in_existing_folder(void **state)
{
    struct fx *fx = *state;
    const char *argv[] = {"sh", "-c", "echo in place", NULL};
    struct runc_spec s = spec_for(fx, argv);
    char *dir = xasprintf("%s/work1", fx->dir), *cfg = xasprintf("%s/config.json", dir);
    char *mine = xasprintf("%s/kept", dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    tl_write_text(mine, "mine");
    s.bundle_dir = dir;
    s.bundle_dir_exists = true;
    struct cap c;
    cap_init(&c);
    uv_loop_t loop;
    char err[256];
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(runc_start(&c.p, &loop, &s, &cbs, &c, err, sizeof(err)), 0);
    assert_true(tl_exists(cfg));
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(c.exits, 1);
    assert_int_equal(c.res.exit_code, 0);
    assert_string_equal(c.out.buf, "in place\n");
    assert_false(tl_exists(cfg));
    assert_true(tl_exists(dir));
    assert_true(tl_exists(mine));
    char *st = xasprintf("%s/%s", fx->root, s.container_id);
    assert_false(tl_exists(st));
    cap_free(&c);
    /* someone else's config.json stays as it is */
    tl_write_text(cfg, "theirs");
    assert_int_equal(runc_write_bundle(&s, err, sizeof(err)), CAIRN_EEXIST);
    char *txt = tl_read_file(cfg, NULL);
    assert_string_equal(txt, "theirs");
    free(txt);
    /* the folder must exist */
    char *gone = xasprintf("%s/nope", fx->dir);
    s.bundle_dir = gone;
    assert_int_equal(runc_write_bundle(&s, err, sizeof(err)), CAIRN_ENOENT);
    assert_false(tl_exists(gone));
    free(gone);
    free(st);
    free(mine);
    free(cfg);
    free(dir);
}

static void
test_pid_namespace(void **state)
{
    struct fx *fx = *state;
    struct cap c;
    /* The task is PID 1 and its /proc shows only its own processes. */
    const char *argv[] = {"sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'", NULL};
    run_argv(fx, argv, &c);
    assert_int_equal(c.res.exit_code, 0);
    int pid = -1, nproc = -1;
    assert_int_equal(sscanf(c.out.buf, "%d %d", &pid, &nproc), 2);
    assert_int_equal(pid, 1);
    assert_true(nproc >= 1 && nproc <= 4);
    cap_free(&c);
}

static void
test_no_network(void **state)
{
    struct fx *fx = *state;
    struct cap c;
    /* Only the loopback interface exists (and it is down). */
    const char *argv[] = {"sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '", NULL};
    run_argv(fx, argv, &c);
    assert_int_equal(c.res.exit_code, 0);
    assert_string_equal(c.out.buf, "lo\n");

    /* Loopback works; connecting anywhere else fails at once (no route). */
    const char *py[] = {"/usr/bin/python3", "-c",
                        "import socket\n"
                        "s = socket.socket()\n"
                        "s.bind(('127.0.0.1', 0))\n"
                        "s.listen()\n"
                        "c = socket.create_connection(s.getsockname(), timeout=5)\n"
                        "c.sendall(b'ping')\n"
                        "print(s.accept()[0].recv(4).decode())\n"
                        "try:\n"
                        "    socket.create_connection(('1.1.1.1', 80), timeout=5)\n"
                        "    print('connected')\n"
                        "except OSError as e:\n"
                        "    print('errno', e.errno)\n",
                        NULL};
    struct cap c2;
    run_argv(fx, py, &c2);
    assert_int_equal(c2.res.exit_code, 0);
    assert_string_equal(c2.out.buf, "ping\nerrno 101\n"); /* ENETUNREACH */
    cap_free(&c);
    cap_free(&c2);
}

static void
test_host_network(void **state)
{
    struct fx *fx = *state;
    struct cap c;
    const char *argv[] = {"cat", "/proc/net/dev", NULL};
    struct runc_spec s = spec_for(fx, argv);
    s.network = true;
    run_spec(fx, &s, &c);
    assert_int_equal(c.res.exit_code, 0);
    /* Same interfaces as the host (counters differ, names do not). */
    char *host = tl_read_file("/proc/net/dev", NULL);
    assert_non_null(host);
    for (char *line = strchr(host, '\n') + 1; (line = strchr(line, '\n')) != NULL;) {
        line++;
        char *colon = strchr(line, ':');
        if (!colon)
            break;
        char *name = xstrndup(line, (size_t)(colon - line + 1));
        if (!strstr(c.out.buf, name))
            fail_msg("interface %s missing in the container", name);
        free(name);
    }
    free(host);
    cap_free(&c);
}

static void
test_filesystem(void **state)
{
    struct fx *fx = *state;
    struct cap c;
    const char *argv[] = {"sh", "-c",
                          "touch /usr/cairn-x 2>/dev/null; echo usr=$?;"
                          "touch /cairn-x 2>/dev/null; echo root=$?;"
                          "touch /etc/cairn-x 2>/dev/null; echo etc=$?;"
                          "echo result > /outputs/r.txt; echo outputs=$?;"
                          "echo scratch > /workspace/w.txt; echo workspace=$?;"
                          "echo t > /tmp/t; echo tmp=$?; stat -f -c %T /tmp;"
                          "pwd; test -e /home || echo nohome; wc -c < /etc/shadow",
                          NULL};
    run_argv(fx, argv, &c);
    assert_int_equal(c.res.exit_code, 0);
    assert_string_equal(c.out.buf, "usr=1\nroot=1\netc=1\noutputs=0\nworkspace=0\ntmp=0\n"
                                   "tmpfs\n/workspace\nnohome\n0\n");
    assert_false(tl_exists("/usr/cairn-x"));
    char *path = xasprintf("%s/r.txt", fx->out);
    char *text = tl_read_file(path, NULL);
    assert_non_null(text);
    assert_string_equal(text, "result\n");
    free(text);
    free(path);
    path = xasprintf("%s/w.txt", fx->ws);
    assert_true(tl_exists(path));
    free(path);
    cap_free(&c);
}

static void
test_inputs_and_binds(void **state)
{
    struct fx *fx = *state;
    struct cap c;
    char *in_file = xasprintf("%s/raw.csv", fx->dir);
    char *in_dir = xasprintf("%s/model", fx->dir);
    char *code = xasprintf("%s/code", fx->dir);
    tl_write_text(in_file, "a,b\n1,2\n");
    assert_int_equal(mkdir(in_dir, 0755), 0);
    assert_int_equal(mkdir(code, 0755), 0);
    char *p = xasprintf("%s/weights", in_dir);
    tl_write_text(p, "w");
    free(p);
    p = xasprintf("%s/step.sh", code);
    tl_write_text(p, "echo step ran\n");
    free(p);

    const char *argv[] = {"sh", "-c",
                          "cat /inputs/raw; cat /inputs/model/weights; echo;"
                          "(echo x > /inputs/raw) 2>/dev/null || echo w-ro;"
                          "touch /inputs/model/y 2>/dev/null || echo d-ro;"
                          "sh /pipeline/step.sh",
                          NULL};
    struct runc_spec s = spec_for(fx, argv);
    struct runc_input inputs[] = {{"raw", in_file}, {"model", in_dir}};
    struct runc_bind binds[] = {{code, "/pipeline", true}};
    s.inputs = inputs;
    s.n_inputs = 2;
    s.binds = binds;
    s.n_binds = 1;
    run_spec(fx, &s, &c);
    assert_int_equal(c.res.exit_code, 0);
    assert_string_equal(c.out.buf, "a,b\n1,2\nw\nw-ro\nd-ro\nstep ran\n");
    char *raw = tl_read_file(in_file, NULL);
    assert_string_equal(raw, "a,b\n1,2\n");
    free(raw);
    cap_free(&c);

    /* The same input name as a directory in the next task, on the same
     * shared rootfs skeleton (exactly one was built). */
    const char *ls[] = {"ls", "/inputs/raw", NULL};
    s = spec_for(fx, ls);
    inputs[0].host_path = in_dir;
    s.inputs = inputs;
    s.n_inputs = 1;
    run_spec(fx, &s, &c);
    assert_int_equal(c.res.exit_code, 0);
    assert_string_equal(c.out.buf, "weights\n");
    assert_int_equal(tl_sh("test $(ls -A %s/bundles/.rootfs | wc -l) -eq 1", fx->dir), 0);
    free(in_file);
    free(in_dir);
    free(code);
    cap_free(&c);
}

/* Host folders bound as the worker binds a lease's mounts: read-only or
 * not, at paths that are not in the image (runc makes the mount points in
 * the shared skeleton), and below an image folder where the path exists. */
static void
test_host_mounts(void **state)
{
    struct fx *fx = *state;
    struct cap c;
    char *data = xasprintf("%s/data", fx->dir), *scratch = xasprintf("%s/scratch", fx->dir);
    assert_int_equal(mkdir(data, 0755), 0);
    assert_int_equal(mkdir(scratch, 0755), 0);
    char *p = xasprintf("%s/hello.txt", data);
    tl_write_text(p, "hello from the host\n");
    free(p);
    const char *argv[] = {"sh", "-c",
                          "cat /data/hello.txt;"
                          "if touch /data/x 2>/tmp/e; then echo data-writable;"
                          " else grep -q 'Read-only file system' /tmp/e && echo data-readonly; fi;"
                          "echo w > /scratch/out && echo scratch-ok;"
                          "grep -E ' /(data|scratch) ' /proc/self/mountinfo | grep -c nosuid;"
                          "ls /usr/share/doc >/dev/null && echo doc-ok",
                          NULL};
    struct runc_spec s = spec_for(fx, argv);
    struct runc_bind binds[] = {
        {data, "/data", true}, {scratch, "/scratch", false}, {data, "/usr/share/doc", true}};
    s.binds = binds;
    s.n_binds = 3;
    run_spec(fx, &s, &c);
    assert_int_equal(c.res.exit_code, 0);
    assert_string_equal(c.out.buf, "hello from the host\ndata-readonly\nscratch-ok\n2\ndoc-ok\n");
    p = xasprintf("%s/out", scratch);
    char *w = tl_read_file(p, NULL);
    assert_non_null(w);
    assert_string_equal(w, "w\n");
    free(w);
    free(p);
    p = xasprintf("%s/x", data);
    assert_false(tl_exists(p));
    free(p);
    free(data);
    free(scratch);
    cap_free(&c);
}

static void
reap_other_cb(uv_timer_t *t)
{
    const char *const *args = t->data;
    /* a second worker starting while the first one's task runs */
    assert_int_equal(runc_reap_leftovers(NULL, args[0], args[1]), 0);
    uv_close((uv_handle_t *)t, NULL);
}

/* Two workers on one host, each with its own cgroup parent: one starting
 * (reaping its leftovers) never removes a cgroup of the other's attempts,
 * not even the memory cgroup made for OOM watching before runc has put the
 * task in it; each still reaps its own leftovers at its next start. */
static void
test_reap_own_cgroups(void **state)
{
    struct fx *fx = *state;
    char *dir_a = xasprintf("%s/wa", fx->dir), *dir_b = xasprintf("%s/wb", fx->dir);
    char *root_b = xasprintf("%s/runc", dir_b);
    assert_int_equal(mkdir(dir_a, 0755), 0);
    assert_int_equal(mkdir(dir_b, 0755), 0);
    char *pa = runc_cgroup_parent_for(fx->cgparent, "w", dir_a);
    char *pb = runc_cgroup_parent_for(fx->cgparent, "w", dir_b);
    assert_string_not_equal(pa, pb);
    bool have_memcg = tl_exists("/sys/fs/cgroup/memory/cgroup.event_control");

    /* An empty memory cgroup of worker a (as made for an attempt's OOM
     * watch, before runc starts) and a leftover of worker b. */
    char *mine = xasprintf("/sys/fs/cgroup/memory%s/cairn-just-made", pa);
    char *left = xasprintf("/sys/fs/cgroup/memory%s/cairn-left", pb);
    if (have_memcg) {
        assert_int_equal(tl_sh("mkdir -p %s %s", mine, left), 0);
        assert_int_equal(runc_reap_leftovers(NULL, root_b, pb), 0);
        assert_true(tl_exists(mine));
        assert_false(tl_exists(left));
    }

    /* A task of worker a with a memory limit (so a memory cgroup made
     * before runc) while worker b starts right after runc_start. */
    const char *argv[] = {"sh", "-c", "sleep 0.5; echo done", NULL};
    struct runc_spec s = spec_for(fx, argv);
    s.cgroup_parent = pa;
    s.memory_bytes = 128 << 20;
    struct cap c;
    uv_loop_t loop;
    uv_timer_t t;
    char err[256];
    const char *args[] = {root_b, pb};
    cap_init(&c);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(runc_start(&c.p, &loop, &s, &cbs, &c, err, sizeof(err)), 0);
    char *cg = xasprintf("/sys/fs/cgroup/memory%s/%s", pa, s.container_id);
    assert_int_equal(runc_reap_leftovers(NULL, root_b, pb), 0);
    if (have_memcg)
        assert_true(tl_exists(cg)); /* made for the OOM watch, still there */
    uv_timer_init(&loop, &t);
    t.data = (void *)args;
    uv_timer_start(&t, reap_other_cb, 200, 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(c.exits, 1);
    assert_int_equal(c.res.exit_code, 0);
    assert_false(c.res.oom_killed);
    assert_string_equal(c.res.error, "");
    assert_string_equal(c.out.buf, "done\n");
    cap_free(&c);
    free(cg);

    /* Worker a's next start reaps what it left (the SIGKILL case). */
    if (have_memcg) {
        char *root_a = xasprintf("%s/runc", dir_a);
        assert_int_equal(runc_reap_leftovers(NULL, root_a, pa), 0);
        assert_false(tl_exists(mine));
        free(root_a);
    }
    /* A clean exit removes the worker's own parent. */
    runc_cgroup_parent_remove(pa);
    runc_cgroup_parent_remove(pb);
    char *pdir = xasprintf("/sys/fs/cgroup/memory%s", pa);
    assert_false(tl_exists(pdir));
    free(pdir);
    free(mine);
    free(left);
    free(pa);
    free(pb);
    free(root_b);
    free(dir_a);
    free(dir_b);
}

static void
test_env_and_identity(void **state)
{
    struct fx *fx = *state;
    struct cap c;
    const char *argv[] = {"sh", "-c",
                          "echo $FOO $CAIRN_RUN_ID $HOME $PATH; hostname; id -u;"
                          "grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status",
                          NULL};
    const char *env[] = {"FOO=bar baz", "CAIRN_RUN_ID=run-7", "PATH=/usr/bin:/bin", NULL};
    char **task_env = attempt_env(env, 3, NULL, false);
    struct runc_spec s = spec_for(fx, argv);
    s.env = (const char *const *)task_env;
    s.hostname = "task-host";
    run_spec(fx, &s, &c);
    assert_int_equal(c.res.exit_code, 0);
    assert_string_equal(c.out.buf, "bar baz run-7 /workspace /usr/bin:/bin\ntask-host\n0\n"
                                   "CapEff:\t0000000000000000\nNoNewPrivs:\t1\n");
    cap_free(&c);
    attempt_env_free(task_env);
}

static void
test_oom(void **state)
{
    struct fx *fx = *state;
    struct cap c;
    const char *argv[] = {"/usr/bin/python3", "-c",
                          "b = bytearray(300 * 1024 * 1024)\nprint('survived')", NULL};
    struct runc_spec s = spec_for(fx, argv);
    s.memory_bytes = 64 << 20;
    run_spec(fx, &s, &c);
    assert_true(c.res.oom_killed);
    assert_int_equal(c.res.exit_code, -1);
    assert_int_equal(c.res.term_signal, SIGKILL);
    assert_false(c.res.timed_out);
    assert_null(strstr(c.out.buf, "survived"));
    cap_free(&c);

    /* A child killed by the OOM killer while the task itself goes on. */
    const char *child[] = {"sh", "-c",
                           "/usr/bin/python3 -c 'b = bytearray(300 * 1024 * 1024)';"
                           "echo child=$?",
                           NULL};
    s = spec_for(fx, child);
    s.memory_bytes = 64 << 20;
    run_spec(fx, &s, &c);
    assert_true(c.res.oom_killed);
    assert_int_equal(c.res.exit_code, 0);
    assert_string_equal(c.out.buf, "child=137\n");
    cap_free(&c);

    /* The same program within its limit is not flagged. */
    const char *small[] = {"/usr/bin/python3", "-c",
                           "b = bytearray(8 * 1024 * 1024)\nprint('survived')", NULL};
    s = spec_for(fx, small);
    s.memory_bytes = 64 << 20;
    run_spec(fx, &s, &c);
    assert_false(c.res.oom_killed);
    assert_int_equal(c.res.exit_code, 0);
    assert_string_equal(c.out.buf, "survived\n");
    cap_free(&c);
}

static void
test_limits(void **state)
{
    struct fx *fx = *state;
    struct cap c;
    /* The limits land in the container's cgroups (read-only, own namespace). */
    const char *argv[] = {"sh", "-c",
                          "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us"
                          " /sys/fs/cgroup/memory/memory.limit_in_bytes;"
                          "mkdir /sys/fs/cgroup/memory/x 2>/dev/null; echo mk=$?",
                          NULL};
    struct runc_spec s = spec_for(fx, argv);
    s.pids = 16;
    s.cpus = 0.5;
    s.memory_bytes = 128 << 20;
    run_spec(fx, &s, &c);
    assert_int_equal(c.res.exit_code, 0);
    assert_string_equal(c.out.buf, "16\n50000\n134217728\nmk=1\n");
    cap_free(&c);

    /* More processes than the pids limit allows: fork fails. */
    const char *forks[] = {"sh", "-c", "for i in $(seq 40); do sleep 5 & done; echo done", NULL};
    s = spec_for(fx, forks);
    s.pids = 10;
    run_spec(fx, &s, &c);
    assert_int_not_equal(c.res.exit_code, 0);
    assert_null(strstr(c.out.buf, "done"));
    assert_non_null(strstr(c.err.buf, "fork"));
    cap_free(&c);
}

static void
test_timeout(void **state)
{
    struct fx *fx = *state;
    struct cap c;
    /* PID 1 without a SIGTERM handler ignores SIGTERM: SIGKILL after grace. */
    const char *argv[] = {"sleep", "60", NULL};
    struct runc_spec s = spec_for(fx, argv);
    s.timeout_ms = 300;
    s.kill_grace_ms = 500;
    int64_t t0 = clock_mono_ms();
    run_spec(fx, &s, &c);
    int64_t took = clock_mono_ms() - t0;
    assert_true(c.res.timed_out);
    assert_int_equal(c.res.exit_code, -1);
    assert_int_equal(c.res.term_signal, SIGKILL);
    assert_false(c.res.oom_killed);
    assert_true(took < 300 + 500 + 3000);
    cap_free(&c);

    /* A task that handles SIGTERM exits on it within the grace period. */
    const char *polite[] = {"sh", "-c",
                            "trap 'echo bye; exit 7' TERM; while :; do sleep 0.05; done", NULL};
    s = spec_for(fx, polite);
    s.timeout_ms = 300;
    s.kill_grace_ms = 20000;
    t0 = clock_mono_ms();
    run_spec(fx, &s, &c);
    took = clock_mono_ms() - t0;
    assert_true(c.res.timed_out);
    assert_int_equal(c.res.exit_code, 7);
    assert_string_equal(c.out.buf, "bye\n");
    assert_true(took < 300 + 3000);
    cap_free(&c);
}

static void
test_concurrent(void **state)
{
    struct fx *fx = *state;
    enum { N = 4 };
    struct cap c[N];
    struct runc_spec s[N];
    char script[N][96];
    const char *argv[N][4];
    uv_loop_t loop;

    /* Several containers on one loop: each output stays with its own task,
     * and a long-running one does not hold up the others' exits. */
    assert_int_equal(uv_loop_init(&loop), 0);
    for (int i = 0; i < N; i++) {
        snprintf(script[i], sizeof(script[i]),
                 "sleep 0.%d; for j in 1 2 3; do echo task%d; done; exit %d", i == 0 ? 5 : 0, i, i);
        argv[i][0] = "sh";
        argv[i][1] = "-c";
        argv[i][2] = script[i];
        argv[i][3] = NULL;
        s[i] = spec_for(fx, argv[i]);
        s[i].bundle_dir = xstrdup(s[i].bundle_dir);
        s[i].container_id = xstrdup(s[i].container_id);
        cap_init(&c[i]);
        assert_int_equal(runc_start(&c[i].p, &loop, &s[i], &cbs, &c[i], NULL, 0), 0);
    }
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    for (int i = 0; i < N; i++) {
        char want[64];
        snprintf(want, sizeof(want), "task%d\ntask%d\ntask%d\n", i, i, i);
        assert_int_equal(c[i].exits, 1);
        assert_int_equal(c[i].res.exit_code, i);
        assert_string_equal(c[i].out.buf, want);
        assert_false(tl_exists(s[i].bundle_dir));
        free((char *)s[i].bundle_dir);
        free((char *)s[i].container_id);
        cap_free(&c[i]);
    }
}

static void
start_cb(uv_timer_t *t)
{
    struct cap *c = t->data;
    assert_int_equal(runc_kill(c->p, SIGKILL), 0);
    uv_close((uv_handle_t *)t, NULL);
}

static void
test_kill(void **state)
{
    struct fx *fx = *state;
    struct cap c;
    uv_loop_t loop;
    uv_timer_t t;
    const char *argv[] = {"sleep", "60", NULL};
    struct runc_spec s = spec_for(fx, argv);

    /* Kill right after start, most likely before runc has created the
     * container (runc kill is retried), and once more when it runs. */
    for (int delay = 0; delay <= 300; delay += 300) {
        s = spec_for(fx, argv);
        cap_init(&c);
        assert_int_equal(uv_loop_init(&loop), 0);
        assert_int_equal(runc_start(&c.p, &loop, &s, &cbs, &c, NULL, 0), 0);
        if (delay == 0) {
            assert_int_equal(runc_kill(c.p, SIGKILL), 0);
        } else {
            uv_timer_init(&loop, &t);
            t.data = &c;
            uv_timer_start(&t, start_cb, (uint64_t)delay, 0);
        }
        int64_t t0 = clock_mono_ms();
        assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
        assert_int_equal(uv_loop_close(&loop), 0);
        assert_true(clock_mono_ms() - t0 < 5000);
        assert_int_equal(c.exits, 1);
        assert_int_equal(c.res.exit_code, -1);
        /* Killed while runc is still setting it up, runc reports an error
         * instead of a signal; once it runs, it is SIGKILL. */
        if (delay == 0)
            assert_true(c.res.term_signal == SIGKILL || c.res.error[0] != '\0');
        else
            assert_int_equal(c.res.term_signal, SIGKILL);
        assert_false(c.res.timed_out);
        assert_false(c.res.oom_killed);
        assert_false(tl_exists(s.bundle_dir));
        cap_free(&c);
    }
}

/* Polled: the stop goes once the task said "up", so its trap is set (as
 * PID 1 of its namespace it would ignore a SIGTERM without one; on a
 * loaded machine a container can take longer than any fixed delay). */
static void
stop_cb(uv_timer_t *t)
{
    struct cap *c = t->data;
    if (c->exits) { /* it ended on its own: the checks after uv_run say so */
        uv_close((uv_handle_t *)t, NULL);
        return;
    }
    if (!c->out.buf || !strstr(c->out.buf, "up\n"))
        return;
    assert_int_equal(runc_stop(c->p), 0);
    assert_int_equal(runc_stop(c->p), CAIRN_ESTATE);
    uv_close((uv_handle_t *)t, NULL);
}

static void
test_stop(void **state)
{
    struct fx *fx = *state;
    struct cap c;
    uv_loop_t loop;
    uv_timer_t t;
    /* Cancel: SIGTERM reaches a task that handles it; no timeout is
     * reported, and signals after the exit are refused. */
    const char *argv[] = {"sh", "-c", "trap 'exit 9' TERM; echo up; while :; do sleep 0.05; done",
                          NULL};
    struct runc_spec s = spec_for(fx, argv);
    cap_init(&c);
    c.free_in_exit = false;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(runc_start(&c.p, &loop, &s, &cbs, &c, NULL, 0), 0);
    uv_timer_init(&loop, &t);
    t.data = &c;
    uv_timer_start(&t, stop_cb, 20, 20);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(c.exits, 1);
    assert_int_equal(c.res.exit_code, 9);
    assert_false(c.res.timed_out);
    assert_string_equal(c.out.buf, "up\n");
    assert_int_equal(runc_kill(c.p, SIGKILL), CAIRN_ESTATE);
    assert_int_equal(runc_stop(c.p), CAIRN_ESTATE);
    runc_proc_free(c.p);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    cap_free(&c);
}

static void
cancel_cb(uv_timer_t *t)
{
    runc_proc_free(t->data);
    uv_close((uv_handle_t *)t, NULL);
}

static void
test_free_cancels(void **state)
{
    struct fx *fx = *state;
    struct cap c;
    uv_loop_t loop;
    uv_timer_t t;
    const char *argv[] = {"sh", "-c", "echo started; sleep 60", NULL};
    struct runc_spec s = spec_for(fx, argv);
    cap_init(&c);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(runc_start(&c.p, &loop, &s, &cbs, &c, NULL, 0), 0);
    uv_timer_init(&loop, &t);
    t.data = c.p;
    uv_timer_start(&t, cancel_cb, 300, 0);
    int64_t t0 = clock_mono_ms();
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_true(clock_mono_ms() - t0 < 5000);
    assert_int_equal(c.exits, 0); /* cancelled: no exit callback */
    assert_false(tl_exists(s.bundle_dir));
    char *st = xasprintf("%s/%s", fx->root, s.container_id);
    assert_false(tl_exists(st));
    free(st);
    cap_free(&c);
}

static void
test_runtime_errors(void **state)
{
    struct fx *fx = *state;
    struct cap c;
    /* The runtime fails to exec the task: reported as a runtime error. */
    const char *argv[] = {"/no/such/program", NULL};
    run_argv(fx, argv, &c);
    assert_int_equal(c.res.exit_code, -1);
    assert_non_null(strstr(c.res.error, "/no/such/program"));
    cap_free(&c);
}

static void
test_start_refusals(void **state)
{
    struct fx *fx = *state;
    struct cap c;
    const char *argv[] = {"/no/such/program", NULL};

    /* Failures before anything runs: no callback, nothing left on disk. */
    uv_loop_t loop;
    char err[256];
    static char sentinel;
    struct runc_proc *const untouched = (struct runc_proc *)(void *)&sentinel;
    struct runc_proc *p = untouched;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct runc_spec s = spec_for(fx, argv);
    s.runtime = "/no/such/runc";
    assert_int_equal(runc_start(&p, &loop, &s, &cbs, &c, err, sizeof(err)), CAIRN_ENOENT);
    assert_ptr_equal(p, untouched);
    assert_non_null(strstr(err, "/no/such/runc"));
    assert_false(tl_exists(s.bundle_dir));

    s = spec_for(fx, argv);
    s.container_id = "bad/id";
    assert_int_equal(runc_start(&p, &loop, &s, &cbs, &c, err, sizeof(err)), CAIRN_EINVAL);
    s = spec_for(fx, argv);
    s.outputs_dir = "/no/such/dir";
    assert_int_equal(runc_start(&p, &loop, &s, &cbs, &c, err, sizeof(err)), CAIRN_ENOENT);
    assert_non_null(strstr(err, "/no/such/dir"));
    assert_false(tl_exists(s.bundle_dir));
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static json_t *
find_mount(json_t *cfg, const char *dest)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(cfg, "mounts"), i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "destination")), dest) == 0)
            return m;
    }
    return NULL;
}

static bool
has_opt(json_t *m, const char *opt)
{
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(m, "options"), i, o)
    {
        if (strcmp(json_string_value(o), opt) == 0)
            return true;
    }
    return false;
}

static bool
has_ns(json_t *cfg, const char *type)
{
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(json_object_get(cfg, "linux"), "namespaces"), i, n)
    {
        if (strcmp(json_string_value(json_object_get(n, "type")), type) == 0)
            return true;
    }
    return false;
}

static void
test_write_bundle(void **state)
{
    struct fx *fx = *state;
    const char *argv[] = {"python3", "train.py", NULL};
    const char *env[] = {"A=1", NULL};
    char **task_env = attempt_env(env, 1, NULL, false);
    struct runc_input in[] = {{"raw", "/etc/hostname"}};
    struct runc_spec s = spec_for(fx, argv);
    s.env = (const char *const *)task_env;
    s.inputs = in;
    s.n_inputs = 1;
    s.cpus = 1.5;
    s.memory_bytes = 512 << 20;
    s.pids = 100;
    char err[256];
    assert_int_equal(runc_write_bundle(&s, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(runc_write_bundle(&s, err, sizeof(err)), CAIRN_EEXIST);

    char *path = xasprintf("%s/config.json", s.bundle_dir);
    json_t *cfg = json_load_file(path, 0, NULL);
    free(path);
    assert_non_null(cfg);
    json_t *proc = json_object_get(cfg, "process");
    assert_true(json_is_false(json_object_get(proc, "terminal")));
    assert_true(json_is_true(json_object_get(proc, "noNewPrivileges")));
    assert_string_equal(json_string_value(json_object_get(proc, "cwd")), "/workspace");
    assert_int_equal(json_array_size(json_object_get(proc, "args")), 2);
    json_t *envj = json_object_get(proc, "env");
    assert_string_equal(json_string_value(json_array_get(envj, 0)), "A=1");
    assert_non_null(strstr(json_string_value(json_array_get(envj, 1)), "PATH=/usr/local/sbin"));
    json_t *caps = json_object_get(proc, "capabilities");
    assert_int_equal(json_array_size(json_object_get(caps, "bounding")), 0);
    assert_int_equal(json_array_size(json_object_get(caps, "effective")), 0);
    assert_true(json_is_true(json_object_get(json_object_get(cfg, "root"), "readonly")));

    json_t *m = find_mount(cfg, "/usr");
    assert_non_null(m);
    assert_true(has_opt(m, "ro") && has_opt(m, "rro"));
    assert_null(find_mount(cfg, "/home"));
    assert_null(find_mount(cfg, "/root"));
    m = find_mount(cfg, "/outputs");
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(m, "source")), fx->out);
    assert_false(has_opt(m, "ro"));
    m = find_mount(cfg, "/inputs/raw");
    assert_non_null(m);
    assert_true(has_opt(m, "ro"));
    m = find_mount(cfg, "/tmp");
    assert_string_equal(json_string_value(json_object_get(m, "type")), "tmpfs");
    assert_non_null(find_mount(cfg, "/proc"));
    assert_true(has_opt(find_mount(cfg, "/sys/fs/cgroup"), "ro"));

    /* The rootfs is the shared skeleton: mount points, and /bin a symlink
     * like on the host (merged /usr). */
    const char *skel = json_string_value(json_object_get(json_object_get(cfg, "root"), "path"));
    assert_non_null(skel);
    char *cache = xasprintf("%s/bundles/.rootfs/host-", fx->dir);
    assert_memory_equal(skel, cache, strlen(cache));
    free(cache);
    char host_link[256] = "", skel_link[256] = "";
    path = xasprintf("%s/usr", skel);
    assert_true(tl_exists(path));
    free(path);
    path = xasprintf("%s/bin", skel);
    ssize_t a = readlink("/bin", host_link, sizeof(host_link) - 1);
    ssize_t b = readlink(path, skel_link, sizeof(skel_link) - 1);
    assert_int_equal(a, b);
    assert_string_equal(host_link, skel_link);
    free(path);

    json_t *lx = json_object_get(cfg, "linux");
    char *cg = xasprintf("%s/%s", fx->cgparent, s.container_id);
    assert_string_equal(json_string_value(json_object_get(lx, "cgroupsPath")), cg);
    free(cg);
    json_t *res = json_object_get(lx, "resources");
    json_t *mem = json_object_get(res, "memory");
    assert_int_equal(json_integer_value(json_object_get(mem, "limit")), 512 << 20);
    assert_int_equal(json_integer_value(json_object_get(mem, "swap")), 512 << 20);
    json_t *cpu = json_object_get(res, "cpu");
    assert_int_equal(json_integer_value(json_object_get(cpu, "quota")), 150000);
    assert_int_equal(json_integer_value(json_object_get(cpu, "period")), 100000);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "pids"), "limit")),
                     100);
    assert_true(has_ns(cfg, "pid") && has_ns(cfg, "mount") && has_ns(cfg, "ipc") &&
                has_ns(cfg, "uts") && has_ns(cfg, "network") && has_ns(cfg, "cgroup"));
    json_decref(cfg);
    tl_rmtree(s.bundle_dir);

    /* network: true shares the host's network namespace. */
    s = spec_for(fx, argv);
    s.network = true;
    assert_int_equal(runc_write_bundle(&s, NULL, 0), 0);
    path = xasprintf("%s/config.json", s.bundle_dir);
    cfg = json_load_file(path, 0, NULL);
    free(path);
    assert_non_null(cfg);
    assert_false(has_ns(cfg, "network"));
    assert_true(has_ns(cfg, "pid"));
    assert_null(
        json_object_get(json_object_get(json_object_get(cfg, "linux"), "resources"), "memory"));
    json_decref(cfg);
    tl_rmtree(s.bundle_dir);

    /* Refused specs. */
    const char *bad_utf8[] = {"echo", "\xff\xfe", NULL};
    s = spec_for(fx, bad_utf8);
    assert_int_equal(runc_write_bundle(&s, err, sizeof(err)), CAIRN_EINVAL);
    assert_false(tl_exists(s.bundle_dir));
    s = spec_for(fx, argv);
    struct runc_input dots[] = {{"..", "/etc"}};
    s.inputs = dots;
    s.n_inputs = 1;
    assert_int_equal(runc_write_bundle(&s, err, sizeof(err)), CAIRN_EINVAL);
    s = spec_for(fx, argv);
    s.workspace_dir = "relative/ws";
    assert_int_equal(runc_write_bundle(&s, err, sizeof(err)), CAIRN_EINVAL);
    s = spec_for(fx, argv);
    s.bundle_dir = "/tmp/../etc";
    assert_int_equal(runc_write_bundle(&s, err, sizeof(err)), CAIRN_EINVAL);
    attempt_env_free(task_env);
}

/* Devices (a task's GPUs): a node in linux.devices copying the host's type,
 * numbers and mode, and a cgroup rule allowing exactly it after the rule
 * that denies all; a scratch tmpfs before the binds below it. */
static void
test_bundle_devices(void **state)
{
    struct fx *fx = *state;
    const char *argv[] = {"nvidia-smi", NULL};
    struct runc_device devs[] = {{"/dev/null", "/dev/nvidia0"}, {"/dev/zero", "/dev/nvidiactl"}};
    struct runc_bind binds[] = {{"/etc/hostname", "/nvidia/lib/libcuda.so.1", true}};
    struct runc_spec s = spec_for(fx, argv);
    s.devices = devs;
    s.n_devices = 2;
    s.scratch_dir = "/nvidia";
    s.binds = binds;
    s.n_binds = 1;
    char err[256];
    assert_int_equal(runc_write_bundle(&s, err, sizeof(err)), 0);
    char *path = xasprintf("%s/config.json", s.bundle_dir);
    json_t *cfg = json_load_file(path, 0, NULL);
    free(path);
    assert_non_null(cfg);
    json_t *lx = json_object_get(cfg, "linux");
    json_t *nodes = json_object_get(lx, "devices");
    assert_int_equal(json_array_size(nodes), 2);
    json_t *n0 = json_array_get(nodes, 0);
    assert_string_equal(json_string_value(json_object_get(n0, "path")), "/dev/nvidia0");
    assert_string_equal(json_string_value(json_object_get(n0, "type")), "c");
    assert_int_equal(json_integer_value(json_object_get(n0, "major")), 1);
    assert_int_equal(json_integer_value(json_object_get(n0, "minor")), 3);
    struct stat st;
    assert_int_equal(stat("/dev/null", &st), 0);
    assert_int_equal(json_integer_value(json_object_get(n0, "fileMode")), st.st_mode & 07777);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(nodes, 1), "minor")), 5);
    json_t *rules = json_object_get(json_object_get(lx, "resources"), "devices");
    assert_int_equal(json_array_size(rules), 3);
    json_t *deny = json_array_get(rules, 0), *r1 = json_array_get(rules, 1);
    assert_true(json_is_false(json_object_get(deny, "allow")));
    assert_string_equal(json_string_value(json_object_get(deny, "access")), "rwm");
    assert_true(json_is_true(json_object_get(r1, "allow")));
    assert_string_equal(json_string_value(json_object_get(r1, "type")), "c");
    assert_int_equal(json_integer_value(json_object_get(r1, "major")), 1);
    assert_int_equal(json_integer_value(json_object_get(r1, "minor")), 3);
    assert_string_equal(json_string_value(json_object_get(r1, "access")), "rw");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rules, 2), "minor")), 5);
    /* the scratch tmpfs comes before the bind below it */
    size_t i, at_scratch = 0, at_bind = 0;
    json_t *m;
    json_array_foreach(json_object_get(cfg, "mounts"), i, m)
    {
        const char *d = json_string_value(json_object_get(m, "destination"));
        if (!strcmp(d, "/nvidia")) {
            at_scratch = i + 1;
            assert_string_equal(json_string_value(json_object_get(m, "type")), "tmpfs");
        }
        if (!strcmp(d, "/nvidia/lib/libcuda.so.1")) {
            at_bind = i + 1;
            assert_true(has_opt(m, "ro"));
        }
    }
    assert_true(at_scratch && at_bind && at_scratch < at_bind);
    json_decref(cfg);
    tl_rmtree(s.bundle_dir);

    /* without devices: none listed, only the deny rule */
    s = spec_for(fx, argv);
    assert_int_equal(runc_write_bundle(&s, err, sizeof(err)), 0);
    path = xasprintf("%s/config.json", s.bundle_dir);
    cfg = json_load_file(path, 0, NULL);
    free(path);
    lx = json_object_get(cfg, "linux");
    assert_null(json_object_get(lx, "devices"));
    assert_int_equal(json_array_size(json_object_get(json_object_get(lx, "resources"), "devices")),
                     1);
    json_decref(cfg);
    tl_rmtree(s.bundle_dir);

    /* refused: not a character device, a node outside /dev, a missing node,
     * a scratch folder that is not top-level; nothing is left */
    struct runc_device file[] = {{"/etc/hostname", "/dev/nvidia0"}};
    s = spec_for(fx, argv);
    s.devices = file;
    s.n_devices = 1;
    assert_int_equal(runc_write_bundle(&s, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, "not a character device"));
    assert_false(tl_exists(s.bundle_dir));
    struct runc_device outside[] = {{"/dev/null", "/etc/nvidia0"}};
    s = spec_for(fx, argv);
    s.devices = outside;
    s.n_devices = 1;
    assert_int_equal(runc_write_bundle(&s, err, sizeof(err)), CAIRN_EINVAL);
    struct runc_device missing[] = {{"/dev/nvidia-none-here", "/dev/nvidia0"}};
    s = spec_for(fx, argv);
    s.devices = missing;
    s.n_devices = 1;
    assert_int_equal(runc_write_bundle(&s, err, sizeof(err)), CAIRN_ENOENT);
    assert_false(tl_exists(s.bundle_dir));
    s = spec_for(fx, argv);
    s.scratch_dir = "/usr/local/nvidia";
    assert_int_equal(runc_write_bundle(&s, err, sizeof(err)), CAIRN_EINVAL);
}

/* The lease's host mounts in config.json: rbind, nosuid, nodev, and
 * read-only (ro, rro) when asked; a mount point inside a read-only image
 * folder must exist there. */
static void
test_bundle_host_mounts(void **state)
{
    struct fx *fx = *state;
    const char *argv[] = {"true", NULL};
    struct runc_bind binds[] = {{fx->ws, "/data", true}, {fx->out, "/scratch", false}};
    struct runc_spec s = spec_for(fx, argv);
    s.binds = binds;
    s.n_binds = 2;
    char err[256];
    assert_int_equal(runc_write_bundle(&s, err, sizeof(err)), 0);
    char *path = xasprintf("%s/config.json", s.bundle_dir);
    json_t *cfg = json_load_file(path, 0, NULL);
    free(path);
    assert_non_null(cfg);
    json_t *m = find_mount(cfg, "/data");
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(m, "type")), "bind");
    assert_string_equal(json_string_value(json_object_get(m, "source")), fx->ws);
    assert_true(has_opt(m, "rbind") && has_opt(m, "ro") && has_opt(m, "rro") &&
                has_opt(m, "nosuid") && has_opt(m, "nodev"));
    m = find_mount(cfg, "/scratch");
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(m, "source")), fx->out);
    assert_true(has_opt(m, "rbind") && has_opt(m, "nosuid") && has_opt(m, "nodev"));
    assert_false(has_opt(m, "ro") || has_opt(m, "rro"));
    json_decref(cfg);
    tl_rmtree(s.bundle_dir);

    /* below /usr (the image's, read-only): only where the path exists */
    struct runc_bind inside[] = {{fx->ws, "/usr/cairn-no-such-dir/x", true}};
    s = spec_for(fx, argv);
    s.binds = inside;
    s.n_binds = 1;
    assert_int_equal(runc_write_bundle(&s, err, sizeof(err)), CAIRN_ENOENT);
    assert_string_equal(err, "mount point /usr/cairn-no-such-dir/x is inside the image's /usr, "
                             "which is read-only, and does not exist there");
    assert_false(tl_exists(s.bundle_dir));
    inside[0].dest = "/usr/share";
    s = spec_for(fx, argv);
    s.binds = inside;
    s.n_binds = 1;
    assert_int_equal(runc_write_bundle(&s, err, sizeof(err)), 0);
    tl_rmtree(s.bundle_dir);
}

/* Each worker's cgroup parent: the same at every start of the same worker
 * and data folder, another for another name or folder. */
static void
test_cgroup_parent_names(void **state)
{
    struct fx *fx = *state;
    char *a1 = runc_cgroup_parent_for(NULL, "w1", fx->ws);
    char *a2 = runc_cgroup_parent_for(NULL, "w1", fx->ws);
    char *via = xasprintf("%s/../ws", fx->out); /* the same folder by another path */
    char *a3 = runc_cgroup_parent_for(NULL, "w1", via);
    char *b = runc_cgroup_parent_for(NULL, "w1", fx->out);
    char *c = runc_cgroup_parent_for(NULL, "w2", fx->ws);
    char *odd = runc_cgroup_parent_for("/base", "my worker/..", fx->ws);
    assert_string_equal(a1, a2);
    assert_string_equal(a1, a3);
    assert_string_not_equal(a1, b);
    assert_string_not_equal(a1, c);
    assert_memory_equal(a1, "/cairn/w1-", 10);
    assert_int_equal(strlen(a1), 10 + 16);
    assert_memory_equal(odd, "/base/my_worker_..-", 19); /* one component, no '/' */
    assert_null(strchr(odd + 6, '/'));
    free(a1);
    free(a2);
    free(a3);
    free(via);
    free(b);
    free(c);
    free(odd);
}

/* Copy a file into the image, creating parent directories. */
static void
image_copy(const char *image, const char *src, const char *dst)
{
    assert_int_equal(tl_sh("mkdir -p '%s%s' && cp -L '%s' '%s%s'", image, dst, src, image, dst), 0);
}

static void
test_rootfs_image(void **state)
{
    struct fx *fx = *state;
    struct cap c;
    /* A minimal image: dash and the libraries it needs, merged-/usr style. */
    char *image = xasprintf("%s/image", fx->dir);
    assert_int_equal(mkdir(image, 0755), 0);
    image_copy(image, "/bin/dash", "/usr/bin/");
    image_copy(image, "/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/");
    image_copy(image, "/lib64/ld-linux-x86-64.so.2", "/usr/lib64/");
    assert_int_equal(tl_sh("cd '%s' && ln -s usr/bin bin && ln -s usr/lib lib && "
                           "ln -s usr/lib64 lib64 && ln -s dash usr/bin/sh && mkdir etc tmp && "
                           "echo from-image > etc/marker",
                           image),
                     0);
    const char *argv[] = {"/bin/sh", "-c",
                          "read m < /etc/marker; echo $m;"
                          "test -e /usr/bin/python3 || echo no-python;"
                          "echo > /usr/x 2>/dev/null || echo ro; echo o > /outputs/o",
                          NULL};
    struct runc_spec s = spec_for(fx, argv);
    s.image = image;
    run_spec(fx, &s, &c);
    assert_int_equal(c.res.exit_code, 0);
    assert_string_equal(c.out.buf, "from-image\nno-python\nro\n");
    /* The image itself is untouched: no mount points were made in it. */
    char *p = xasprintf("%s/workspace", image);
    assert_false(tl_exists(p));
    free(p);
    p = xasprintf("%s/outputs", image);
    assert_false(tl_exists(p));
    free(p);
    free(image);
    cap_free(&c);
}

static void
test_reap_leftovers(void **state)
{
    struct fx *fx = *state;
    /* A container left running by a worker that went away: started
     * detached, outside the module. */
    const char *argv[] = {"sleep", "60", NULL};
    struct runc_spec s = spec_for(fx, argv);
    assert_int_equal(runc_write_bundle(&s, NULL, 0), 0);
    assert_int_equal(tl_sh("runc --root %s run -d --bundle %s %s </dev/null >/dev/null 2>&1",
                           fx->root, s.bundle_dir, s.container_id),
                     0);
    assert_int_equal(tl_sh("runc --root %s state %s | grep -q '\"status\": \"running\"'", fx->root,
                           s.container_id),
                     0);
    /* And a cgroup pre-created for an attempt that never started. */
    char *stale = xasprintf("/sys/fs/cgroup/memory%s/stale", fx->cgparent);
    bool have_memcg = tl_exists("/sys/fs/cgroup/memory/cgroup.event_control");
    if (have_memcg)
        assert_int_equal(tl_sh("mkdir -p %s", stale), 0);

    assert_int_equal(runc_reap_leftovers(NULL, fx->root, fx->cgparent), 1);
    char *st = xasprintf("%s/%s", fx->root, s.container_id);
    assert_false(tl_exists(st));
    free(st);
    assert_int_equal(tl_sh("test -z \"$(runc --root %s list -q)\"", fx->root), 0);
    assert_false(tl_exists(stale));
    free(stale);
    tl_rmtree(s.bundle_dir);

    /* Nothing left: a second pass finds nothing. */
    assert_int_equal(runc_reap_leftovers(NULL, fx->root, fx->cgparent), 0);
}

static void
test_reap_refusals(void **state)
{
    struct fx *fx = *state;
    /* A missing root is empty; a relative one is refused. */
    char *none = xasprintf("%s/no-root", fx->dir);
    assert_int_equal(runc_reap_leftovers(NULL, none, fx->cgparent), 0);
    free(none);
    assert_int_equal(runc_reap_leftovers(NULL, "relative", NULL), CAIRN_EINVAL);
}

static void
test_isolation_none(void **state)
{
    struct fx *fx = *state;
    struct cap c;
    char *outputs = xasprintf("CAIRN_OUTPUTS=%s", fx->out);
    const char *env[] = {outputs, NULL};
    char **task_env = attempt_env(env, 1, NULL, true);
    const char *argv[] = {"sh", "-c", "echo $CAIRN_OUTPUTS; pwd; echo e >&2; exit 5", NULL};
    struct runc_spec s = {0};
    s.argv = argv;
    s.env = (const char *const *)task_env;
    s.workspace_dir = fx->ws;
    s.isolation_none = true;
    run_spec(fx, &s, &c);
    assert_int_equal(c.res.exit_code, 5);
    char *want = xasprintf("%s\n%s\n", fx->out, fx->ws);
    assert_string_equal(c.out.buf, want);
    assert_string_equal(c.err.buf, "e\n");
    free(want);
    cap_free(&c);

    /* Timeout kills the whole process group, background children too. */
    const char *bg[] = {"sh", "-c", "sleep 60 & echo $!; sleep 60", NULL};
    s.argv = bg;
    s.timeout_ms = 200;
    int64_t t0 = clock_mono_ms();
    run_spec(fx, &s, &c);
    assert_true(clock_mono_ms() - t0 < 3000);
    assert_true(c.res.timed_out);
    assert_int_equal(c.res.exit_code, -1);
    assert_int_equal(c.res.term_signal, SIGTERM);
    int child = (int)strtol(c.out.buf, NULL, 10);
    assert_true(child > 0);
    /* Gone (or a zombie waiting for its reaper) within moments. */
    char *stat = xasprintf("/proc/%d/stat", child);
    bool gone = false;
    for (int i = 0; i < 100 && !gone; i++) {
        char *text = tl_read_file(stat, NULL);
        char *rp = text ? strrchr(text, ')') : NULL;
        gone = !text || (rp && rp[1] && rp[2] == 'Z');
        if (!gone)
            usleep(10000);
        free(text);
    }
    assert_true(gone);
    free(stat);
    cap_free(&c);

    /* A program that does not exist is refused at start. */
    const char *missing[] = {"no-such-program-cairn", NULL};
    s.argv = missing;
    uv_loop_t loop;
    struct runc_proc *p = NULL;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(runc_start(&p, &loop, &s, &cbs, &c, NULL, 0), CAIRN_ENOENT);
    assert_null(p);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(outputs);
    attempt_env_free(task_env);
}

/* Each group gets a fresh fixture per test. */
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static int
group_containers(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "test_runc: containers skipped: they need root (euid %d)\n",
                (int)geteuid());
        return 77;
    }
    if (!tl_have_program("runc")) {
        const char *path = getenv("PATH");
        fprintf(stderr, "test_runc: containers skipped: runc is not on PATH (%s)\n",
                path ? path : "PATH is not set");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        T(test_echo),
        T(test_exit_code_and_stderr),
        T(test_large_output),
        T(test_bundle_in_existing_folder),
        T(test_pid_namespace),
        T(test_no_network),
        T(test_host_network),
        T(test_filesystem),
        T(test_inputs_and_binds),
        T(test_host_mounts),
        T(test_env_and_identity),
        T(test_oom),
        T(test_limits),
        T(test_timeout),
        T(test_concurrent),
        T(test_kill),
        T(test_stop),
        T(test_free_cancels),
        T(test_runtime_errors),
        T(test_rootfs_image),
        T(test_reap_leftovers),
        T(test_reap_own_cgroups),
    };
    return cmocka_run_group_tests_name("containers", tests, NULL, NULL);
}

static int
group_spec(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        T(test_write_bundle),
        T(test_start_refusals),
        T(test_bundle_host_mounts),
        T(test_bundle_devices),
        T(test_cgroup_parent_names),
        T(test_reap_refusals),
        T(test_isolation_none),
    };
    /* clang-format on */
    return cmocka_run_group_tests_name("spec", tests, NULL, NULL);
}

int
main(int argc, char **argv)
{
    const char *group = argc > 1 ? argv[1] : "";
    if (argc > 2 || (*group && strcmp(group, "containers") != 0 && strcmp(group, "spec") != 0)) {
        fprintf(stderr, "usage: test_runc [containers|spec]\n");
        return 2;
    }
    if (strcmp(group, "spec") == 0)
        return group_spec();
    if (strcmp(group, "containers") == 0)
        return group_containers();
    int rc = group_spec();
    return rc ? rc : group_containers();
}
