/* runc_bundle.c - the OCI bundle of an attempt (prefix: runc_, internal runc__).
 *
 * Owns the checks of a struct runc_spec and the bundle written from it:
 * BUNDLE/config.json, whose root.path is the image's shared rootfs skeleton
 * (runc_image.c). The comments below say why each mount and flag is there.
 * A bundle is made only in a folder that does not exist yet, and removed
 * after its attempt (runc__bundle_remove), or (bundle_dir_exists) as a new
 * config.json in the caller's folder, and only that removed. No state of
 * its own.
 */
#include "runc_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "log.h"
#include "util.h"

#define RUNC_DEFAULT_HOSTNAME "cairn"
#define RUNC_CPU_PERIOD 100000
#define RUNC_NOFILE_SOFT 65536
#define RUNC_NOFILE_HARD 1048576

/* Absolute, and no "." or ".." component. */
bool
runc__path_ok(const char *p)
{
    if (!p || p[0] != '/')
        return false;
    for (const char *s = p; *s;) {
        while (*s == '/')
            s++;
        const char *e = s;
        while (*e && *e != '/')
            e++;
        size_t n = (size_t)(e - s);
        if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        s = e;
    }
    return true;
}

bool
runc__id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > RUNC__ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '+' || c == '-'))
            return false;
    }
    return !(n <= 2 && id[0] == '.' && (n == 1 || id[1] == '.'));
}

static bool
hostname_ok(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return false;
    }
    return true;
}

static bool
name_ok(const char *name)
{
    return name && name[0] && !strchr(name, '/') && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0;
}

char *
runc__path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir);
    while (n > 0 && dir[n - 1] == '/')
        n--;
    while (*name == '/')
        name++;
    return xasprintf("%.*s/%s", (int)n, dir, name);
}

bool
runc__is_image_host(const char *image)
{
    return !image || strcmp(image, "host") == 0;
}

void
runc__rmtree(const char *path)
{
    int rc = fs_rmtree(path);

    if (rc)
        LOG(LOG_WARN, "CAIRN-RUNC-CLEANUP", "remove %s: %s", path, cairn_strerror(rc));
}

/* The bundle holds config.json only; anything else (a bundle kept for
 * debugging and edited by hand) falls back to the recursive removal. In
 * the caller's folder (bundle_dir_exists) only config.json goes. */
void
runc__bundle_remove(const char *dir, bool cfg_only)
{
    char *cfg = runc__path_join(dir, "config.json");
    unlink(cfg);
    free(cfg);
    if (!cfg_only && rmdir(dir) != 0 && errno != ENOENT)
        runc__rmtree(dir);
}

/* ---- spec validation ---------------------------------------------------- */

int
runc__spec_check(const struct runc_spec *s, char *errbuf, size_t errlen)
{
    if (!s || !s->argv || !s->argv[0] || !s->argv[0][0])
        return errf(CAIRN_EINVAL, errbuf, errlen, "argv is empty");
    for (size_t i = 0; s->env && s->env[i]; i++) {
        if (!strchr(s->env[i], '=') || s->env[i][0] == '=')
            return errf(CAIRN_EINVAL, errbuf, errlen, "environment entry '%s' is not K=V",
                        s->env[i]);
    }
    if (s->timeout_ms < 0 || s->kill_grace_ms < 0)
        return errf(CAIRN_EINVAL, errbuf, errlen, "negative timeout");
    if (s->workspace_dir && !runc__path_ok(s->workspace_dir))
        return errf(CAIRN_EINVAL, errbuf, errlen, "workspace_dir must be an absolute path");
    if (s->isolation_none)
        return 0;

    if (!runc__path_ok(s->root))
        return errf(CAIRN_EINVAL, errbuf, errlen, "root must be an absolute path");
    if (!runc__path_ok(s->bundle_dir) || strcmp(s->bundle_dir, "/") == 0)
        return errf(CAIRN_EINVAL, errbuf, errlen, "bundle_dir must be an absolute path below /");
    if (!runc__id_ok(s->container_id))
        return errf(CAIRN_EINVAL, errbuf, errlen,
                    "container_id must be 1-%d characters of [A-Za-z0-9_.+-]", RUNC__ID_MAX);
    if (s->rootfs_cache && !runc__path_ok(s->rootfs_cache))
        return errf(CAIRN_EINVAL, errbuf, errlen, "rootfs_cache must be an absolute path");
    if (s->cgroup_parent && !runc__path_ok(s->cgroup_parent))
        return errf(CAIRN_EINVAL, errbuf, errlen, "cgroup_parent must be an absolute path");
    if (!runc__is_image_host(s->image) && !runc__path_ok(s->image))
        return errf(CAIRN_EINVAL, errbuf, errlen,
                    "image must be \"host\" or an absolute rootfs path");
    if (!s->workspace_dir || !runc__path_ok(s->outputs_dir))
        return errf(CAIRN_EINVAL, errbuf, errlen,
                    "workspace_dir and outputs_dir must be absolute paths");
    if (s->hostname && !hostname_ok(s->hostname))
        return errf(CAIRN_EINVAL, errbuf, errlen, "invalid hostname '%s'", s->hostname);
    if (!(s->cpus >= 0 && s->cpus < 1e6) || s->memory_bytes < 0 || s->pids < 0)
        return errf(CAIRN_EINVAL, errbuf, errlen, "invalid resource limits");
    for (size_t i = 0; i < s->n_inputs; i++) {
        if (!name_ok(s->inputs[i].name) || !runc__path_ok(s->inputs[i].host_path))
            return errf(CAIRN_EINVAL, errbuf, errlen,
                        "input %zu: need a plain name and an absolute host path", i);
    }
    for (size_t i = 0; i < s->n_binds; i++) {
        if (!runc__path_ok(s->binds[i].source) || !runc__path_ok(s->binds[i].dest) ||
            strcmp(s->binds[i].dest, "/") == 0)
            return errf(CAIRN_EINVAL, errbuf, errlen,
                        "bind %zu: need absolute source and destination paths", i);
    }
    for (size_t i = 0; i < s->n_devices; i++) {
        const char *p = s->devices[i].path;
        if (!runc__path_ok(s->devices[i].host_path) || !runc__path_ok(p) ||
            strncmp(p, "/dev/", 5) != 0 || !p[5])
            return errf(CAIRN_EINVAL, errbuf, errlen,
                        "device %zu: need an absolute host path and a path under /dev", i);
    }
    if (s->scratch_dir && (!runc__path_ok(s->scratch_dir) || !s->scratch_dir[1] ||
                           strchr(s->scratch_dir + 1, '/')))
        return errf(CAIRN_EINVAL, errbuf, errlen, "scratch_dir must be a top-level folder");
    return 0;
}

/* ---- config.json -------------------------------------------------------- */

/* jansson builders: allocation failure aborts (like xmalloc); a string that
 * is not valid UTF-8 marks the builder bad so the spec is refused. */
struct jb {
    bool bad_utf8;
};

static json_t *
jb_must(json_t *v)
{
    if (!v) {
        fputs("cairn: out of memory\n", stderr);
        abort();
    }
    return v;
}

static json_t *
jb_str(struct jb *jb, const char *s)
{
    json_t *v = json_string(s);
    if (!v)
        jb->bad_utf8 = true;
    return v;
}

static void
jb_set(json_t *obj, const char *key, json_t *v)
{
    if (v)
        json_object_set_new(obj, key, v);
}

static void
jb_push(json_t *arr, json_t *v)
{
    if (v)
        json_array_append_new(arr, v);
}

static json_t *
jb_strv(struct jb *jb, const char *const *v)
{
    json_t *arr = jb_must(json_array());
    for (size_t i = 0; v && v[i]; i++)
        jb_push(arr, jb_str(jb, v[i]));
    return arr;
}

/* Append a mount; opts is a NULL-terminated list. */
static void
add_mount(struct jb *jb, json_t *mounts, const char *dest, const char *type, const char *source,
          const char *const *opts)
{
    json_t *m = jb_must(json_object());
    jb_set(m, "destination", jb_str(jb, dest));
    jb_set(m, "type", jb_str(jb, type));
    jb_set(m, "source", jb_str(jb, source));
    if (opts)
        jb_set(m, "options", jb_strv(jb, opts));
    jb_push(mounts, m);
}

static const char *const ro_bind_opts[] = {"rbind", "ro", "rro", "nosuid", "nodev", NULL};

static const char *const rw_bind_opts[] = {"rbind", "nosuid", "nodev", NULL};

struct mount_ctx {
    struct jb *jb;
    json_t *mounts;
};

/* Directories and files of the image become read-only bind mounts. */
static int
mount_entry_cb(void *arg, const char *src, const char *name, const struct stat *st, char *errbuf,
               size_t errlen)
{
    struct mount_ctx *m = arg;
    if (S_ISDIR(st->st_mode) || S_ISREG(st->st_mode)) {
        char *dest = xasprintf("/%s", name);
        add_mount(m->jb, m->mounts, dest, "bind", src, ro_bind_opts);
        free(dest);
    }
    return 0;
}

static int
check_exists(const char *what, const char *path, bool want_dir, char *errbuf, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return errf(cairn_from_errno(errno), errbuf, errlen, "%s %s: %s", what, path,
                    strerror(errno));
    if (want_dir && !S_ISDIR(st.st_mode))
        return errf(CAIRN_ENOENT, errbuf, errlen, "%s %s: not a directory", what, path);
    return 0;
}

char *
runc__cgroup_path(const struct runc_spec *s)
{
    const char *parent = s->cgroup_parent ? s->cgroup_parent : RUNC__DEFAULT_CGROUP_PARENT;
    return runc__path_join(parent, s->container_id);
}

static json_t *
build_process(struct jb *jb, const struct runc_spec *s)
{
    json_t *proc = jb_must(json_object());
    jb_set(proc, "terminal", json_false());
    json_t *user = jb_must(json_object());
    jb_set(user, "uid", jb_must(json_integer(s->has_user ? (json_int_t)s->uid : 0)));
    jb_set(user, "gid", jb_must(json_integer(s->has_user ? (json_int_t)s->gid : 0)));
    jb_set(proc, "user", user);
    jb_set(proc, "args", jb_strv(jb, s->argv));

    /* The task's whole environment, as given (attempt_env adds PATH and
     * HOME for the worker's tasks). */
    jb_set(proc, "env", jb_strv(jb, s->env));
    jb_set(proc, "cwd", jb_str(jb, s->cwd ? s->cwd : RUNC_WORKSPACE));

    /* No capabilities at all: root in the container, but powerless. */
    json_t *caps = jb_must(json_object());
    static const char *const sets[] = {"bounding", "effective", "inheritable", "permitted",
                                       "ambient"};
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
        jb_set(caps, sets[i], jb_must(json_array()));
    jb_set(proc, "capabilities", caps);

    /* NOFILE: 65536 soft, but never above the hard limit the worker has
     * (raising it needs CAP_SYS_RESOURCE, which the worker may lack). */
    struct rlimit rl;
    uint64_t hard = RUNC_NOFILE_HARD;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY && rl.rlim_max < hard)
        hard = rl.rlim_max;
    uint64_t soft = hard < RUNC_NOFILE_SOFT ? hard : RUNC_NOFILE_SOFT;
    json_t *rlimits = jb_must(json_array());
    json_t *nofile = jb_must(json_object());
    jb_set(nofile, "type", jb_str(jb, "RLIMIT_NOFILE"));
    jb_set(nofile, "hard", jb_must(json_integer((json_int_t)hard)));
    jb_set(nofile, "soft", jb_must(json_integer((json_int_t)soft)));
    jb_push(rlimits, nofile);
    jb_set(proc, "rlimits", rlimits);
    jb_set(proc, "noNewPrivileges", json_true());
    return proc;
}

static int
build_mounts(struct jb *jb, json_t *mounts, const struct runc_spec *s, char *errbuf, size_t errlen)
{
    struct mount_ctx mc = {jb, mounts};
    int rc = runc__image_walk(s, mount_entry_cb, &mc, errbuf, errlen);
    if (rc)
        return rc;

    static const char *const proc_opts[] = {"nosuid", "noexec", "nodev", NULL};
    static const char *const dev_opts[] = {"nosuid", "strictatime", "mode=755", "size=65536k",
                                           NULL};
    static const char *const pts_opts[] = {"nosuid",        "noexec",    "newinstance",
                                           "ptmxmode=0666", "mode=0620", NULL};
    static const char *const shm_opts[] = {"nosuid",    "noexec",      "nodev",
                                           "mode=1777", "size=65536k", NULL};
    static const char *const sys_opts[] = {"nosuid", "noexec", "nodev", "ro", NULL};
    static const char *const cg_opts[] = {"nosuid", "noexec", "nodev", "relatime", "ro", NULL};
    static const char *const tmp_opts[] = {"nosuid", "nodev", "mode=1777", NULL};
    static const char *const inputs_opts[] = {"nosuid",   "nodev",    "noexec",
                                              "mode=755", "size=64k", NULL};

    add_mount(jb, mounts, "/proc", "proc", "proc", proc_opts);
    add_mount(jb, mounts, "/dev", "tmpfs", "tmpfs", dev_opts);
    add_mount(jb, mounts, "/dev/pts", "devpts", "devpts", pts_opts);
    add_mount(jb, mounts, "/dev/shm", "tmpfs", "shm", shm_opts);
    add_mount(jb, mounts, "/dev/mqueue", "mqueue", "mqueue", proc_opts);
    add_mount(jb, mounts, "/sys", "sysfs", "sysfs", sys_opts);
    add_mount(jb, mounts, "/sys/fs/cgroup", "cgroup", "cgroup", cg_opts);
    add_mount(jb, mounts, "/tmp", "tmpfs", "tmpfs", tmp_opts);
    add_mount(jb, mounts, "/workspace", "bind", s->workspace_dir, rw_bind_opts);
    add_mount(jb, mounts, "/outputs", "bind", s->outputs_dir, rw_bind_opts);
    /* The inputs' mount points go on a private tmpfs, not the shared
     * skeleton, so an input may be a file in one task and a directory in
     * the next. */
    if (s->n_inputs > 0)
        add_mount(jb, mounts, "/inputs", "tmpfs", "tmpfs", inputs_opts);
    for (size_t i = 0; i < s->n_inputs; i++) {
        char *dest = xasprintf("/inputs/%s", s->inputs[i].name);
        add_mount(jb, mounts, dest, "bind", s->inputs[i].host_path, ro_bind_opts);
        free(dest);
    }
    /* A folder the image does not have (its top level is read-only bind
     * mounts): a tmpfs of its own in the skeleton, for the binds below it
     * (the GPU driver's files). */
    static const char *const scratch_opts[] = {"nosuid", "nodev", "mode=755", "size=1m", NULL};
    if (s->scratch_dir)
        add_mount(jb, mounts, s->scratch_dir, "tmpfs", "tmpfs", scratch_opts);
    /* the task's secrets: files of the worker's private attempt folder */
    if (s->secrets_dir) {
        static const char *const run_opts[] = {"nosuid", "nodev", "noexec", "mode=755",
                                               "size=1m", NULL};
        add_mount(jb, mounts, "/run", "tmpfs", "tmpfs", run_opts);
        add_mount(jb, mounts, "/run/secrets", "bind", s->secrets_dir, ro_bind_opts);
    }
    for (size_t i = 0; i < s->n_binds; i++)
        add_mount(jb, mounts, s->binds[i].dest, "bind", s->binds[i].source,
                  s->binds[i].readonly ? ro_bind_opts : rw_bind_opts);
    return 0;
}

/* The devices the spec adds (GPUs): each a node in linux.devices, which
 * runc makes in the container's /dev, and a cgroup rule that allows it
 * after the rule that denies every device; runc appends the allow rules
 * of its default devices (null, zero, full, random, urandom, tty, ptmx,
 * pts) after these. Nothing else of the host's devices is reachable. */
static int
add_devices(struct jb *jb, json_t *lx, const struct runc_spec *s, char *errbuf, size_t errlen)
{
    if (!s->n_devices)
        return 0;
    json_t *nodes = jb_must(json_array());
    json_t *rules = json_object_get(json_object_get(lx, "resources"), "devices");
    for (size_t i = 0; i < s->n_devices; i++) {
        struct stat st;
        const struct runc_device *d = &s->devices[i];
        if (stat(d->host_path, &st) != 0) {
            json_decref(nodes);
            return errf(cairn_from_errno(errno), errbuf, errlen, "device %s: %s", d->host_path,
                        strerror(errno));
        }
        if (!S_ISCHR(st.st_mode)) {
            json_decref(nodes);
            return errf(CAIRN_EINVAL, errbuf, errlen, "device %s: not a character device",
                        d->host_path);
        }
        json_t *n = jb_must(json_object());
        jb_set(n, "path", jb_str(jb, d->path));
        jb_set(n, "type", jb_str(jb, "c"));
        jb_set(n, "major", jb_must(json_integer(major(st.st_rdev))));
        jb_set(n, "minor", jb_must(json_integer(minor(st.st_rdev))));
        jb_set(n, "fileMode", jb_must(json_integer(st.st_mode & 07777)));
        jb_set(n, "uid", jb_must(json_integer(0)));
        jb_set(n, "gid", jb_must(json_integer(0)));
        jb_push(nodes, n);
        json_t *r = jb_must(json_object());
        jb_set(r, "allow", json_true());
        jb_set(r, "type", jb_str(jb, "c"));
        jb_set(r, "major", jb_must(json_integer(major(st.st_rdev))));
        jb_set(r, "minor", jb_must(json_integer(minor(st.st_rdev))));
        jb_set(r, "access", jb_str(jb, "rw"));
        jb_push(rules, r);
    }
    jb_set(lx, "devices", nodes);
    return 0;
}

static json_t *
build_linux(struct jb *jb, const struct runc_spec *s)
{
    json_t *lx = jb_must(json_object());
    char *cg = runc__cgroup_path(s);
    jb_set(lx, "cgroupsPath", jb_str(jb, cg));
    free(cg);

    json_t *res = jb_must(json_object());
    json_t *devs = jb_must(json_array());
    json_t *deny = jb_must(json_object());
    jb_set(deny, "allow", json_false());
    jb_set(deny, "access", jb_str(jb, "rwm"));
    jb_push(devs, deny);
    jb_set(res, "devices", devs);
    if (s->memory_bytes > 0) {
        json_t *mem = jb_must(json_object());
        jb_set(mem, "limit", jb_must(json_integer(s->memory_bytes)));
        /* memory+swap = memory: no swapping. cgroup v1 takes it only with
         * swap accounting (memory.memsw.*); cgroup v2 always. */
        if (access(RUNC__MEMCG "/memory.limit_in_bytes", F_OK) != 0 ||
            access(RUNC__MEMCG "/memory.memsw.limit_in_bytes", F_OK) == 0)
            jb_set(mem, "swap", jb_must(json_integer(s->memory_bytes)));
        jb_set(res, "memory", mem);
    }
    if (s->cpus > 0) {
        json_int_t quota = (json_int_t)llround(s->cpus * RUNC_CPU_PERIOD);
        if (quota < 1000)
            quota = 1000; /* the kernel's minimum */
        json_t *cpu = jb_must(json_object());
        jb_set(cpu, "quota", jb_must(json_integer(quota)));
        jb_set(cpu, "period", jb_must(json_integer(RUNC_CPU_PERIOD)));
        jb_set(res, "cpu", cpu);
    }
    if (s->pids > 0) {
        json_t *pids = jb_must(json_object());
        jb_set(pids, "limit", jb_must(json_integer(s->pids)));
        jb_set(res, "pids", pids);
    }
    jb_set(lx, "resources", res);

    json_t *ns = jb_must(json_array());
    static const char *const types[] = {"pid", "mount", "ipc", "uts", "cgroup", "network"};
    size_t nt = sizeof(types) / sizeof(types[0]) - (s->network ? 1 : 0);
    for (size_t i = 0; i < nt; i++) {
        json_t *o = jb_must(json_object());
        jb_set(o, "type", jb_str(jb, types[i]));
        jb_push(ns, o);
    }
    jb_set(lx, "namespaces", ns);

    static const char *const masked[] = {"/proc/acpi",
                                         "/proc/asound",
                                         "/proc/kcore",
                                         "/proc/keys",
                                         "/proc/latency_stats",
                                         "/proc/timer_list",
                                         "/proc/timer_stats",
                                         "/proc/sched_debug",
                                         "/proc/scsi",
                                         "/sys/firmware",
                                         "/etc/shadow",
                                         "/etc/shadow-",
                                         "/etc/gshadow",
                                         "/etc/gshadow-",
                                         NULL};
    static const char *const ro_paths[] = {
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL};
    json_t *mp = jb_strv(jb, masked);
    for (size_t i = 0; i < s->n_masked; i++)
        if (s->masked[i] && s->masked[i][0] == '/')
            jb_push(mp, jb_str(jb, s->masked[i]));
    jb_set(lx, "maskedPaths", mp);
    jb_set(lx, "readonlyPaths", jb_strv(jb, ro_paths));
    return lx;
}

static int
write_config(const struct runc_spec *s, const char *rootfs, char *errbuf, size_t errlen)
{
    struct jb jb = {false};
    json_t *cfg = jb_must(json_object());
    int rc;

    jb_set(cfg, "ociVersion", jb_str(&jb, "1.0.2"));
    jb_set(cfg, "process", build_process(&jb, s));
    json_t *root = jb_must(json_object());
    jb_set(root, "path", jb_str(&jb, rootfs));
    jb_set(root, "readonly", json_true());
    jb_set(cfg, "root", root);
    jb_set(cfg, "hostname", jb_str(&jb, s->hostname ? s->hostname : RUNC_DEFAULT_HOSTNAME));
    json_t *mounts = jb_must(json_array());
    jb_set(cfg, "mounts", mounts);
    rc = build_mounts(&jb, mounts, s, errbuf, errlen);
    if (rc)
        goto out;
    json_t *lx = build_linux(&jb, s);
    jb_set(cfg, "linux", lx);
    if ((rc = add_devices(&jb, lx, s, errbuf, errlen)) != 0)
        goto out;
    if (jb.bad_utf8) {
        rc = errf(CAIRN_EINVAL, errbuf, errlen, "argv, env or a path is not valid UTF-8");
        goto out;
    }

    char *text = json_dumps(cfg, JSON_COMPACT);
    if (!text)
        jb_must(NULL);
    char *path = runc__path_join(s->bundle_dir, "config.json");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    size_t len = strlen(text);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len)
        rc = errf(cairn_from_errno(errno), errbuf, errlen, "write %s: %s", path, strerror(errno));
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = errf(cairn_from_errno(errno), errbuf, errlen, "write %s: %s", path, strerror(errno));
    if (fd >= 0 && rc)
        unlink(path); /* ours (O_EXCL), half written */
    free(path);
    free(text);
out:
    json_decref(cfg);
    return rc;
}

int
runc__bundle_create(const struct runc_spec *s, char *errbuf, size_t errlen)
{
    int rc;
    if ((rc = check_exists("workspace_dir", s->workspace_dir, true, errbuf, errlen)) ||
        (rc = check_exists("outputs_dir", s->outputs_dir, true, errbuf, errlen)))
        return rc;
    if (!runc__is_image_host(s->image) &&
        (rc = check_exists("image", s->image, true, errbuf, errlen)))
        return rc;
    for (size_t i = 0; i < s->n_inputs; i++)
        if ((rc = check_exists("input", s->inputs[i].host_path, false, errbuf, errlen)))
            return rc;
    for (size_t i = 0; i < s->n_binds; i++)
        if ((rc = check_exists("bind source", s->binds[i].source, false, errbuf, errlen)) ||
            (rc = runc__image_dest_check(s, s->binds[i].dest, errbuf, errlen)))
            return rc;

    char *skel = runc__skeleton_get(s, errbuf, errlen, &rc);
    if (!skel)
        return rc;

    if (s->bundle_dir_exists) {
        /* the caller's folder: only config.json is ours (O_EXCL) */
        if ((rc = check_exists("bundle_dir", s->bundle_dir, true, errbuf, errlen)) == 0)
            rc = write_config(s, skel, errbuf, errlen);
        free(skel);
        return rc;
    }
    /* Parents may be created; the bundle directory itself must be new, since
     * it is removed after the attempt. The parents are made only when the
     * folder cannot be (a mkdir of each existing one costs a path walk). */
    int made = mkdir(s->bundle_dir, 0700);
    if (made != 0 && errno == ENOENT) {
        char *parent =
            xstrndup(s->bundle_dir, (size_t)(strrchr(s->bundle_dir, '/') - s->bundle_dir));
        rc = parent[0] ? fs_mkdirs_mode(parent, 0700) : 0;
        if (rc)
            errf(rc, errbuf, errlen, "create %s: %s", parent, strerror(errno));
        else
            made = mkdir(s->bundle_dir, 0700);
        free(parent);
    }
    if (rc == 0 && made != 0) {
        rc = errf(cairn_from_errno(errno), errbuf, errlen, "create %s: %s", s->bundle_dir,
                  strerror(errno));
    } else if (rc == 0) {
        rc = write_config(s, skel, errbuf, errlen);
        if (rc)
            runc__bundle_remove(s->bundle_dir, false);
    }
    free(skel);
    return rc;
}

int
runc_write_bundle(const struct runc_spec *spec, char *errbuf, size_t errlen)
{
    errf(0, errbuf, errlen, "%s", "");
    int rc = runc__spec_check(spec, errbuf, errlen);
    if (rc)
        return rc;
    if (spec->isolation_none)
        return errf(CAIRN_EINVAL, errbuf, errlen, "isolation none has no bundle");
    return runc__bundle_create(spec, errbuf, errlen);
}
