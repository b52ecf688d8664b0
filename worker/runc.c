/* runc.c - run one task attempt in its own runc container (prefix: runc_).
 *
 * Life of an attempt (container mode):
 *   runc_start: bundle (config.json; the rootfs is a skeleton of mount
 *   points shared by all attempts with the same image), OOM watch on the
 *   memory cgroup (cgroup v1), pipes, spawn `runc run` in the foreground.
 *   Loop: pipe reads -> output_cb; timeout timer -> `runc kill TERM`, grace
 *   timer -> `runc kill KILL`; runc exits -> if its state is still under
 *   --root, `runc delete -f`; pipes drained -> finish: result, OOM check,
 *   bundle removal, exit_cb.
 * Only one helper process (`runc kill` or `runc delete`) runs at a time;
 * progress() decides what happens next whenever something has changed.
 */
#include "runc.h"

#include "err.h"
#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <linux/magic.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define RUNC_DEFAULT_RUNTIME "runc"
#define RUNC_DEFAULT_CGROUP_PARENT "/cairn"
#define RUNC_DEFAULT_HOSTNAME "cairn"
#define RUNC_DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define RUNC_DEFAULT_HOME "HOME=/workspace"
#define RUNC_CGROUP_ROOT "/sys/fs/cgroup"
#define RUNC_MEMCG RUNC_CGROUP_ROOT "/memory"
#define RUNC_GRACE_MS 2000
#define RUNC_DRAIN_MS 2000
#define RUNC_RETRY_MS 50
#define RUNC_CPU_PERIOD 100000
#define RUNC_NOFILE_SOFT 65536
#define RUNC_NOFILE_HARD 1048576
#define RUNC_READ_BUF 65536
#define RUNC_ID_MAX 128
#define RUNC_LOG_MAX (64 * 1024)

enum runc_helper { RUNC_HELPER_NONE, RUNC_HELPER_KILL, RUNC_HELPER_DELETE };

struct runc_stream {
    uv_pipe_t pipe;
    struct runc_proc *owner;
    int index; /* 1 stdout, 2 stderr, 0 runc's own log */
    bool open;
    char buf[RUNC_READ_BUF];
};

struct runc_proc {
    uv_loop_t *loop;
    struct runc_callbacks cbs;
    void *ud;

    /* Copied from the spec. */
    bool none;
    bool keep_bundle;
    bool mem_limited;
    char *runtime;
    char *root;
    char *id;
    char *bundle_dir;
    char *memcg_dir;    /* pre-created v1 memory cgroup, NULL if none */
    int oom_efd;        /* eventfd registered on memory.oom_control, -1 if none */
    uv_poll_t oom_poll; /* readable oom_efd; initialised if oom_polling */
    bool oom_polling;
    uint64_t oom_sure; /* OOM events read while the cgroup existed */
    uint64_t oom_late; /* events read after runc removed it (may hold the removal) */
    int64_t grace_ms;

    uv_process_t proc;         /* runc run */
    uv_poll_t pidpoll;         /* isolation none: the task's pidfd, readable when it exits */
    int pidfd;                 /* -1 if none */
    uv_process_t helper;       /* runc kill / runc delete */
    uv_timer_t t_kill;         /* timeout, then the SIGTERM -> SIGKILL grace */
    uv_timer_t t_misc;         /* kill retry before exit; output drain deadline after */
    struct runc_stream out[3]; /* stdout, stderr, runc's log (container mode) */
    int nstreams;
    struct sb log; /* runc's JSON log, the last RUNC_LOG_MAX bytes at most */
    int handles;   /* initialised handles whose close callback has not run */

    int pid;
    int64_t t_start;
    int64_t t_end;
    bool exited;
    int64_t exit_status;
    int exit_signal; /* signal that ended the spawned process itself */

    enum runc_helper helper_kind;
    bool helper_active; /* from spawn until the helper handle is closed */
    int helper_sig;
    int pending_sig; /* signal still to deliver with `runc kill` */
    int retry_sig;   /* signal whose `runc kill` failed, retried by t_misc */
    bool stopping;
    bool kill_sent;
    bool timed_out;
    bool need_delete;
    bool delete_done;
    bool draining;
    bool finished;
    bool free_requested;
};

/* ---- small helpers ---------------------------------------------------- */

static void seterr(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!errbuf || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

static int
err_from_errno(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return CAIRN_ENOENT;
    case EEXIST:
        return CAIRN_EEXIST;
    case ENOMEM:
        return CAIRN_ENOMEM;
    case ENOSPC:
    case EDQUOT:
        return CAIRN_EFULL;
    default:
        return CAIRN_EIO;
    }
}

static int
err_from_uv(int r)
{
    switch (r) {
    case UV_ENOENT:
        return CAIRN_ENOENT;
    case UV_ENOMEM:
        return CAIRN_ENOMEM;
    default:
        return CAIRN_ERUNTIME;
    }
}

/* Absolute, and no "." or ".." component. */
static bool
path_ok(const char *p)
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

static bool
id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > RUNC_ID_MAX)
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

static char *
path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir);
    while (n > 0 && dir[n - 1] == '/')
        n--;
    while (*name == '/')
        name++;
    return xasprintf("%.*s/%s", (int)n, dir, name);
}

static bool
is_image_host(const char *image)
{
    return !image || strcmp(image, "host") == 0;
}

static bool
env_has(const char *const *env, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], key, n) == 0 && env[i][n] == '=')
            return true;
    return false;
}

/* mkdir -p of every component of path, including the last. */
static int
mkdir_p(const char *path, mode_t mode)
{
    char *p = xstrdup(path);
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, mode) != 0 && errno != EEXIST) {
                int e = errno;
                free(p);
                errno = e;
                return err_from_errno(e);
            }
            *s = c;
            if (c == '\0')
                break;
        }
    }
    free(p);
    return 0;
}

static int
remove_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0 && errno != ENOENT)
        LOG(LOG_WARN, "CAIRN-RUNC-CLEANUP", "remove %s: %s", path, strerror(errno));
    return 0;
}

/* rm -rf that never follows symlinks nor crosses into another filesystem. */
static void
remove_tree(const char *path)
{
    if (nftw(path, remove_cb, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0 && errno != ENOENT)
        LOG(LOG_WARN, "CAIRN-RUNC-CLEANUP", "remove %s: %s", path, strerror(errno));
}

/* The bundle holds config.json only; anything else (a bundle kept for
 * debugging and edited by hand) falls back to the recursive removal. */
static void
bundle_remove(const char *dir)
{
    char *cfg = path_join(dir, "config.json");
    unlink(cfg);
    free(cfg);
    if (rmdir(dir) != 0 && errno != ENOENT)
        remove_tree(dir);
}

/* ---- spec validation ---------------------------------------------------- */

static int
spec_check(const struct runc_spec *s, char *errbuf, size_t errlen)
{
    if (!s || !s->argv || !s->argv[0] || !s->argv[0][0]) {
        seterr(errbuf, errlen, "argv is empty");
        return CAIRN_EINVAL;
    }
    for (size_t i = 0; s->env && s->env[i]; i++) {
        if (!strchr(s->env[i], '=') || s->env[i][0] == '=') {
            seterr(errbuf, errlen, "environment entry '%s' is not K=V", s->env[i]);
            return CAIRN_EINVAL;
        }
    }
    if (s->timeout_ms < 0 || s->kill_grace_ms < 0) {
        seterr(errbuf, errlen, "negative timeout");
        return CAIRN_EINVAL;
    }
    if (s->workspace_dir && !path_ok(s->workspace_dir)) {
        seterr(errbuf, errlen, "workspace_dir must be an absolute path");
        return CAIRN_EINVAL;
    }
    if (s->isolation_none)
        return 0;

    if (!path_ok(s->root)) {
        seterr(errbuf, errlen, "root must be an absolute path");
        return CAIRN_EINVAL;
    }
    if (!path_ok(s->bundle_dir) || strcmp(s->bundle_dir, "/") == 0) {
        seterr(errbuf, errlen, "bundle_dir must be an absolute path below /");
        return CAIRN_EINVAL;
    }
    if (!id_ok(s->container_id)) {
        seterr(errbuf, errlen, "container_id must be 1-%d characters of [A-Za-z0-9_.+-]",
               RUNC_ID_MAX);
        return CAIRN_EINVAL;
    }
    if (s->rootfs_cache && !path_ok(s->rootfs_cache)) {
        seterr(errbuf, errlen, "rootfs_cache must be an absolute path");
        return CAIRN_EINVAL;
    }
    if (s->cgroup_parent && !path_ok(s->cgroup_parent)) {
        seterr(errbuf, errlen, "cgroup_parent must be an absolute path");
        return CAIRN_EINVAL;
    }
    if (!is_image_host(s->image) && !path_ok(s->image)) {
        seterr(errbuf, errlen, "image must be \"host\" or an absolute rootfs path");
        return CAIRN_EINVAL;
    }
    if (!s->workspace_dir || !path_ok(s->outputs_dir)) {
        seterr(errbuf, errlen, "workspace_dir and outputs_dir must be absolute paths");
        return CAIRN_EINVAL;
    }
    if (s->hostname && !hostname_ok(s->hostname)) {
        seterr(errbuf, errlen, "invalid hostname '%s'", s->hostname);
        return CAIRN_EINVAL;
    }
    if (!(s->cpus >= 0 && s->cpus < 1e6) || s->memory_bytes < 0 || s->pids < 0) {
        seterr(errbuf, errlen, "invalid resource limits");
        return CAIRN_EINVAL;
    }
    for (size_t i = 0; i < s->n_inputs; i++) {
        if (!name_ok(s->inputs[i].name) || !path_ok(s->inputs[i].host_path)) {
            seterr(errbuf, errlen, "input %zu: need a plain name and an absolute host path", i);
            return CAIRN_EINVAL;
        }
    }
    for (size_t i = 0; i < s->n_binds; i++) {
        if (!path_ok(s->binds[i].source) || !path_ok(s->binds[i].dest) ||
            strcmp(s->binds[i].dest, "/") == 0) {
            seterr(errbuf, errlen, "bind %zu: need absolute source and destination paths", i);
            return CAIRN_EINVAL;
        }
    }
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

/* Top-level entries of the host's root a "host" image shows; the rest of the
 * host (/home, /root, /var, /srv, the worker's data) stays invisible. */
static const char *const host_entries[] = {"bin",    "etc", "lib",  "lib32", "lib64",
                                           "libx32", "opt", "sbin", "usr",   NULL};
/* Top-level entries of a rootfs image that the container gets fresh. */
static const char *const skip_entries[] = {"dev", "inputs", "outputs",   "pipeline", "proc",
                                           "sys", "tmp",    "workspace", NULL};

static bool
in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

/* The image's top-level entries the container sees, in a stable order. fn
 * gets the host path, the entry name and its lstat; a nonzero return stops. */
typedef int image_visit_cb(void *arg, const char *src, const char *name, const struct stat *st,
                           char *errbuf, size_t errlen);

static int
image_visit(const char *root, const char *name, image_visit_cb *fn, void *arg, char *errbuf,
            size_t errlen)
{
    char *src = path_join(root, name);
    struct stat st;
    int rc = 0;
    if (lstat(src, &st) == 0) {
        rc = fn(arg, src, name, &st, errbuf, errlen);
    } else if (errno != ENOENT) {
        seterr(errbuf, errlen, "image entry %s: %s", src, strerror(errno));
        rc = err_from_errno(errno);
    }
    free(src);
    return rc;
}

static int
image_walk(const struct runc_spec *s, image_visit_cb *fn, void *arg, char *errbuf, size_t errlen)
{
    int rc = 0;
    if (is_image_host(s->image)) {
        for (size_t i = 0; host_entries[i] && rc == 0; i++)
            rc = image_visit("/", host_entries[i], fn, arg, errbuf, errlen);
        return rc;
    }
    DIR *d = opendir(s->image);
    if (!d) {
        seterr(errbuf, errlen, "image %s: %s", s->image, strerror(errno));
        return err_from_errno(errno);
    }
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            in_list(skip_entries, de->d_name))
            continue;
        rc = image_visit(s->image, de->d_name, fn, arg, errbuf, errlen);
    }
    closedir(d);
    return rc;
}

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

/* The skeleton mirrors the entry: symlinks are copied, directories and files
 * become empty mount points. */
static int
skel_entry_cb(void *arg, const char *src, const char *name, const struct stat *st, char *errbuf,
              size_t errlen)
{
    char *dst = path_join(arg, name);
    int rc = 0;
    if (S_ISLNK(st->st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlink(src, target, sizeof(target) - 1);
        if (n >= 0)
            target[n] = '\0';
        if (n < 0 || symlink(target, dst) != 0) {
            seterr(errbuf, errlen, "image symlink %s: %s", src, strerror(errno));
            rc = err_from_errno(errno);
        }
    } else if (S_ISDIR(st->st_mode) || S_ISREG(st->st_mode)) {
        int r = S_ISDIR(st->st_mode) ? mkdir(dst, 0755)
                                     : open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (r < 0) {
            seterr(errbuf, errlen, "rootfs %s: %s", dst, strerror(errno));
            rc = err_from_errno(errno);
        } else if (!S_ISDIR(st->st_mode)) {
            close(r);
        }
    }
    free(dst);
    return rc;
}

/* The rootfs skeleton is shared by every attempt with the same image: a
 * directory of empty mount points and copied top-level symlinks, named after
 * the image path and its root's inode and mtime (so a changed top level gets
 * a new skeleton). Built under a temporary name and renamed into place, so
 * concurrent builders are safe. Returns the skeleton path or NULL. */
static char *
skeleton_get(const struct runc_spec *s, char *errbuf, size_t errlen, int *rcp)
{
    const char *image = is_image_host(s->image) ? "/" : s->image;
    struct stat st;
    if (stat(image, &st) != 0) {
        seterr(errbuf, errlen, "image %s: %s", image, strerror(errno));
        *rcp = err_from_errno(errno);
        return NULL;
    }
    uint64_t h = UINT64_C(14695981039346656037); /* FNV-1a */
    for (const char *c = image; *c; c++)
        h = (h ^ (unsigned char)*c) * UINT64_C(1099511628211);
    char *cache = s->rootfs_cache ? xstrdup(s->rootfs_cache)
                                  : xasprintf("%.*s/.rootfs",
                                              (int)(strrchr(s->bundle_dir, '/') - s->bundle_dir),
                                              s->bundle_dir);
    char *skel =
        xasprintf("%s/%s-%016llx-%llx-%lld.%09ld", cache,
                  is_image_host(s->image) ? "host" : "image", (unsigned long long)h,
                  (unsigned long long)st.st_ino, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    struct stat sk;
    if (lstat(skel, &sk) == 0) {
        free(cache);
        return skel;
    }

    static unsigned counter;
    char *tmp = xasprintf("%s/.tmp-%d-%u", cache, (int)getpid(), counter++);
    int rc = mkdir_p(cache, 0755);
    if (rc) {
        seterr(errbuf, errlen, "create %s: %s", cache, strerror(errno));
    } else if (mkdir(tmp, 0755) != 0) {
        seterr(errbuf, errlen, "create %s: %s", tmp, strerror(errno));
        rc = err_from_errno(errno);
    } else {
        rc = image_walk(s, skel_entry_cb, tmp, errbuf, errlen);
        for (size_t i = 0; skip_entries[i] && rc == 0; i++) {
            char *mp = path_join(tmp, skip_entries[i]);
            if (mkdir(mp, 0755) != 0) {
                seterr(errbuf, errlen, "create %s: %s", mp, strerror(errno));
                rc = err_from_errno(errno);
            }
            free(mp);
        }
        /* Someone else may have won the race: then theirs is used. */
        if (rc == 0 && rename(tmp, skel) != 0 && errno != EEXIST && errno != ENOTEMPTY) {
            seterr(errbuf, errlen, "rename %s: %s", tmp, strerror(errno));
            rc = err_from_errno(errno);
        }
        remove_tree(tmp);
    }
    free(tmp);
    free(cache);
    if (rc) {
        free(skel);
        *rcp = rc;
        return NULL;
    }
    return skel;
}

static int
check_exists(const char *what, const char *path, bool want_dir, char *errbuf, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        seterr(errbuf, errlen, "%s %s: %s", what, path, strerror(errno));
        return err_from_errno(errno);
    }
    if (want_dir && !S_ISDIR(st.st_mode)) {
        seterr(errbuf, errlen, "%s %s: not a directory", what, path);
        return CAIRN_ENOENT;
    }
    return 0;
}

static char *
cgroup_path(const struct runc_spec *s)
{
    const char *parent = s->cgroup_parent ? s->cgroup_parent : RUNC_DEFAULT_CGROUP_PARENT;
    return path_join(parent, s->container_id);
}

static json_t *
build_process(struct jb *jb, const struct runc_spec *s)
{
    json_t *proc = jb_must(json_object());
    jb_set(proc, "terminal", json_false());
    json_t *user = jb_must(json_object());
    jb_set(user, "uid", jb_must(json_integer(0)));
    jb_set(user, "gid", jb_must(json_integer(0)));
    jb_set(proc, "user", user);
    jb_set(proc, "args", jb_strv(jb, s->argv));

    json_t *env = jb_strv(jb, s->env);
    if (!env_has(s->env, "PATH"))
        jb_push(env, jb_str(jb, RUNC_DEFAULT_PATH));
    if (!env_has(s->env, "HOME"))
        jb_push(env, jb_str(jb, RUNC_DEFAULT_HOME));
    jb_set(proc, "env", env);
    jb_set(proc, "cwd", jb_str(jb, "/workspace"));

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
    int rc = image_walk(s, mount_entry_cb, &mc, errbuf, errlen);
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
    for (size_t i = 0; i < s->n_binds; i++)
        add_mount(jb, mounts, s->binds[i].dest, "bind", s->binds[i].source,
                  s->binds[i].readonly ? ro_bind_opts : rw_bind_opts);
    return 0;
}

static json_t *
build_linux(struct jb *jb, const struct runc_spec *s)
{
    json_t *lx = jb_must(json_object());
    char *cg = cgroup_path(s);
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
        if (access(RUNC_MEMCG "/memory.limit_in_bytes", F_OK) != 0 ||
            access(RUNC_MEMCG "/memory.memsw.limit_in_bytes", F_OK) == 0)
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
                                         "/etc/gshadow",
                                         NULL};
    static const char *const ro_paths[] = {
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL};
    jb_set(lx, "maskedPaths", jb_strv(jb, masked));
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
    jb_set(cfg, "linux", build_linux(&jb, s));
    if (jb.bad_utf8) {
        seterr(errbuf, errlen, "argv, env or a path is not valid UTF-8");
        rc = CAIRN_EINVAL;
        goto out;
    }

    char *text = json_dumps(cfg, JSON_COMPACT);
    if (!text)
        jb_must(NULL);
    char *path = path_join(s->bundle_dir, "config.json");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t len = strlen(text);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
        seterr(errbuf, errlen, "write %s: %s", path, strerror(errno));
        rc = err_from_errno(errno);
    }
    if (fd >= 0 && close(fd) != 0 && rc == 0) {
        seterr(errbuf, errlen, "write %s: %s", path, strerror(errno));
        rc = err_from_errno(errno);
    }
    free(path);
    free(text);
out:
    json_decref(cfg);
    return rc;
}

static int
bundle_create(const struct runc_spec *s, char *errbuf, size_t errlen)
{
    int rc;
    if ((rc = check_exists("workspace_dir", s->workspace_dir, true, errbuf, errlen)) ||
        (rc = check_exists("outputs_dir", s->outputs_dir, true, errbuf, errlen)))
        return rc;
    if (!is_image_host(s->image) && (rc = check_exists("image", s->image, true, errbuf, errlen)))
        return rc;
    for (size_t i = 0; i < s->n_inputs; i++)
        if ((rc = check_exists("input", s->inputs[i].host_path, false, errbuf, errlen)))
            return rc;
    for (size_t i = 0; i < s->n_binds; i++)
        if ((rc = check_exists("bind source", s->binds[i].source, false, errbuf, errlen)))
            return rc;

    char *skel = skeleton_get(s, errbuf, errlen, &rc);
    if (!skel)
        return rc;

    /* Parents may be created; the bundle directory itself must be new, since
     * it is removed after the attempt. */
    char *parent = xstrndup(s->bundle_dir, (size_t)(strrchr(s->bundle_dir, '/') - s->bundle_dir));
    rc = parent[0] ? mkdir_p(parent, 0700) : 0;
    if (rc) {
        seterr(errbuf, errlen, "create %s: %s", parent, strerror(errno));
    } else if (mkdir(s->bundle_dir, 0700) != 0) {
        seterr(errbuf, errlen, "create %s: %s", s->bundle_dir, strerror(errno));
        rc = err_from_errno(errno);
    } else {
        rc = write_config(s, skel, errbuf, errlen);
        if (rc)
            bundle_remove(s->bundle_dir);
    }
    free(parent);
    free(skel);
    return rc;
}

int
runc_write_bundle(const struct runc_spec *spec, char *errbuf, size_t errlen)
{
    seterr(errbuf, errlen, "%s", "");
    int rc = spec_check(spec, errbuf, errlen);
    if (rc)
        return rc;
    if (spec->isolation_none) {
        seterr(errbuf, errlen, "isolation none has no bundle");
        return CAIRN_EINVAL;
    }
    return bundle_create(spec, errbuf, errlen);
}

/* ---- OOM detection -------------------------------------------------------
 *
 * runc run destroys the container's cgroups before it exits, taking the
 * memory cgroup's counters with it. On cgroup v1 the memory cgroup is created
 * here first and an eventfd is registered on its memory.oom_control, which
 * outlives the cgroup. The kernel signals it on every OOM in the cgroup (before
 * the victim is killed, so before the container can exit) and once more,
 * asynchronously, after the cgroup has been removed. The loop reads it as
 * soon as it is readable: counts read while the cgroup still exists are OOMs.
 * Counts read after the removal are OOMs if there are two or more; a single
 * one is either, and finish() decides with "SIGKILL that Cairn did not send".
 * Without cgroup v1 (cgroup v2) that rule alone is used. */

static void
oom_read(struct runc_proc *p)
{
    uint64_t v = 0;
    if (read(p->oom_efd, &v, sizeof(v)) != (ssize_t)sizeof(v) || v == 0)
        return;
    struct stat st;
    if (stat(p->memcg_dir, &st) == 0) /* read first, then look: see above */
        p->oom_sure += v;
    else
        p->oom_late += v;
}

static void
oom_poll_cb(uv_poll_t *h, int status, int events)
{
    (void)events;
    struct runc_proc *p = h->data;
    if (status < 0)
        uv_poll_stop(h);
    else
        oom_read(p);
}

static void
oom_watch(struct runc_proc *p, const char *cg)
{
    if (access(RUNC_MEMCG "/cgroup.event_control", F_OK) != 0)
        return;
    char *dir = xasprintf(RUNC_MEMCG "%s", cg);
    char *oc = path_join(dir, "memory.oom_control");
    char *ec = path_join(dir, "cgroup.event_control");
    int efd = -1, ofd = -1, cfd = -1;
    bool ok = false;

    if (mkdir_p(dir, 0755) == 0 && (efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) >= 0 &&
        (ofd = open(oc, O_RDONLY | O_CLOEXEC)) >= 0 &&
        (cfd = open(ec, O_WRONLY | O_CLOEXEC)) >= 0) {
        char line[64];
        int n = snprintf(line, sizeof(line), "%d %d", efd, ofd);
        ok = write(cfd, line, (size_t)n) == n;
    }
    if (!ok)
        LOG(LOG_DEBUG, "CAIRN-RUNC-OOMWATCH", "no OOM watch on %s: %s", dir, strerror(errno));
    if (cfd >= 0)
        close(cfd);
    if (ofd >= 0)
        close(ofd);
    if (ok) {
        p->oom_efd = efd;
        p->memcg_dir = dir;
    } else {
        if (efd >= 0)
            close(efd);
        rmdir(dir);
        free(dir);
    }
    free(oc);
    free(ec);
}

/* ---- the running attempt ------------------------------------------------ */

static void progress(struct runc_proc *p);

static void
maybe_free(struct runc_proc *p)
{
    if (!p->free_requested || !p->finished || p->handles > 0)
        return;
    free(p->runtime);
    free(p->root);
    free(p->id);
    free(p->bundle_dir);
    sb_free(&p->log);
    free(p->memcg_dir);
    free(p);
}

static void
closed_cb(uv_handle_t *h)
{
    struct runc_proc *p = h->data;
    p->handles--;
    if (h == (uv_handle_t *)&p->helper) {
        p->helper_active = false;
        progress(p);
    }
    maybe_free(p);
}

static void
close_handle(struct runc_proc *p, uv_handle_t *h)
{
    h->data = p;
    uv_close(h, closed_cb);
}

static void
stream_close(struct runc_stream *s)
{
    if (!s->open)
        return;
    s->open = false;
    uv_read_stop((uv_stream_t *)&s->pipe);
    close_handle(s->owner, (uv_handle_t *)&s->pipe);
}

static void
alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct runc_stream *s = h->data;
    buf->base = s->buf;
    buf->len = sizeof(s->buf);
}

/* Keep the tail of runc's log: its error, if any, is the last line. */
static void
log_append(struct sb *log, const char *data, size_t len)
{
    sb_append(log, data, len);
    if (log->len > RUNC_LOG_MAX) {
        size_t drop = log->len - RUNC_LOG_MAX / 2;
        memmove(log->buf, log->buf + drop, log->len - drop + 1);
        log->len -= drop;
    }
}

static void
read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct runc_stream *s = st->data;
    struct runc_proc *p = s->owner;
    if (nread > 0) {
        if (s->index == 0)
            log_append(&p->log, buf->base, (size_t)nread);
        else if (p->cbs.output_cb && !p->free_requested)
            p->cbs.output_cb(p->ud, s->index, buf->base, (size_t)nread);
        return;
    }
    if (nread == 0)
        return;
    if (nread != UV_EOF)
        LOG(LOG_WARN, "CAIRN-RUNC-READ", "container %s: read: %s", p->id ? p->id : "-",
            uv_strerror((int)nread));
    stream_close(s);
    progress(p);
}

static void helper_exit_cb(uv_process_t *h, int64_t status, int sig);

static void
helper_spawn(struct runc_proc *p, enum runc_helper kind, int sig)
{
    char signum[16];
    const char *args[8];
    size_t n = 0;
    args[n++] = p->runtime;
    args[n++] = "--root";
    args[n++] = p->root;
    if (kind == RUNC_HELPER_KILL) {
        snprintf(signum, sizeof(signum), "%d", sig);
        args[n++] = "kill";
        args[n++] = p->id;
        args[n++] = signum;
    } else {
        args[n++] = "delete";
        args[n++] = "-f";
        args[n++] = p->id;
    }
    args[n] = NULL;

    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE}, {.flags = UV_IGNORE}, {.flags = UV_IGNORE}};
    uv_process_options_t o = {0};
    o.exit_cb = helper_exit_cb;
    o.file = p->runtime;
    o.args = (char **)args;
    o.stdio_count = 3;
    o.stdio = stdio;

    p->helper_kind = kind;
    p->helper_sig = sig;
    p->helper_active = true;
    p->helper.data = p;
    p->handles++;
    int r = uv_spawn(p->loop, &p->helper, &o);
    if (r) {
        LOG(LOG_WARN, "CAIRN-RUNC-HELPER", "container %s: spawn %s: %s", p->id, p->runtime,
            uv_strerror(r));
        if (kind == RUNC_HELPER_DELETE)
            p->delete_done = true;
        close_handle(p, (uv_handle_t *)&p->helper);
    }
}

static void
retry_cb(uv_timer_t *t)
{
    struct runc_proc *p = t->data;
    if (!p->exited && p->pending_sig != SIGKILL)
        p->pending_sig = p->retry_sig;
    p->retry_sig = 0;
    progress(p);
}

static void
helper_exit_cb(uv_process_t *h, int64_t status, int sig)
{
    struct runc_proc *p = h->data;
    if (p->helper_kind == RUNC_HELPER_DELETE) {
        p->delete_done = true;
        if (status != 0 || sig != 0)
            LOG(LOG_WARN, "CAIRN-RUNC-DELETE", "container %s: runc delete exited %lld", p->id,
                (long long)status);
    } else if ((status != 0 || sig != 0) && !p->exited) {
        /* Most likely the container does not exist yet: runc run is still
         * creating it. Try again shortly unless a stronger signal waits. */
        if (p->retry_sig != SIGKILL)
            p->retry_sig = p->helper_sig;
        uv_timer_start(&p->t_misc, retry_cb, RUNC_RETRY_MS, 0);
    }
    close_handle(p, (uv_handle_t *)h);
}

static void
drain_cb(uv_timer_t *t)
{
    struct runc_proc *p = t->data;
    for (int i = 0; i < p->nstreams; i++) {
        if (p->out[i].open)
            LOG(LOG_WARN, "CAIRN-RUNC-DRAIN", "task %s: output still open %d ms after exit",
                p->id ? p->id : "-", RUNC_DRAIN_MS);
        stream_close(&p->out[i]);
    }
    progress(p);
}

/* Copy the last error message of runc's JSON log into out. */
static bool
runtime_error(struct sb *log, char *out, size_t outlen)
{
    bool found = false;
    for (char *line = log->buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        json_t *j = json_loads(line, 0, NULL);
        const char *level = json_string_value(json_object_get(j, "level"));
        const char *msg = json_string_value(json_object_get(j, "msg"));
        if (level && msg && (strcmp(level, "error") == 0 || strcmp(level, "fatal") == 0)) {
            snprintf(out, outlen, "%s", msg);
            found = true;
        }
        json_decref(j);
        line = nl ? nl + 1 : NULL;
    }
    return found;
}

static void
finish(struct runc_proc *p)
{
    struct runc_result res;
    memset(&res, 0, sizeof(res));
    p->finished = true;
    uv_timer_stop(&p->t_kill);
    uv_timer_stop(&p->t_misc);
    close_handle(p, (uv_handle_t *)&p->t_kill);
    close_handle(p, (uv_handle_t *)&p->t_misc);

    res.duration_ms = p->t_end - p->t_start;
    res.timed_out = p->timed_out;
    res.exit_code = (int)p->exit_status;
    if (p->exit_signal) {
        res.exit_code = -1;
        res.term_signal = p->exit_signal;
        if (!p->none)
            snprintf(res.error, sizeof(res.error), "runtime killed by signal %d", p->exit_signal);
    } else if (!p->none && p->exit_status != 0) {
        if (runtime_error(&p->log, res.error, sizeof(res.error))) {
            res.exit_code = -1;
        } else if (p->exit_status > 128 && p->exit_status < 128 + 65) {
            /* runc run reports a container killed by signal N as 128+N. */
            res.exit_code = -1;
            res.term_signal = (int)p->exit_status - 128;
        }
    }
    bool killed_unasked = res.term_signal == SIGKILL && !p->kill_sent;
    if (p->oom_efd >= 0) {
        if (p->oom_polling)
            close_handle(p, (uv_handle_t *)&p->oom_poll); /* stops polling now */
        oom_read(p);
        close(p->oom_efd);
        p->oom_efd = -1;
        res.oom_killed =
            p->oom_sure > 0 || p->oom_late >= 2 || (p->oom_late == 1 && killed_unasked);
    } else if (!p->none && p->mem_limited) {
        res.oom_killed = killed_unasked;
    }
    if (p->memcg_dir && rmdir(p->memcg_dir) != 0 && errno != ENOENT)
        LOG(LOG_WARN, "CAIRN-RUNC-CLEANUP", "rmdir %s: %s", p->memcg_dir, strerror(errno));
    if (!p->none && !p->keep_bundle)
        bundle_remove(p->bundle_dir);

    if (!p->free_requested && p->cbs.exit_cb)
        p->cbs.exit_cb(p->ud, &res);
    /* p may be released by now (free is deferred to the timers' close). */
}

static bool
streams_open(const struct runc_proc *p)
{
    for (int i = 0; i < p->nstreams; i++)
        if (p->out[i].open)
            return true;
    return false;
}

/* Decide what happens next; called after every event. */
static void
progress(struct runc_proc *p)
{
    if (p->finished)
        return;
    if (!p->exited) {
        if (!p->none && !p->helper_active && p->pending_sig) {
            int sig = p->pending_sig;
            p->pending_sig = 0;
            helper_spawn(p, RUNC_HELPER_KILL, sig);
        }
        return;
    }
    if (p->helper_active)
        return;
    if (p->need_delete && !p->delete_done) {
        helper_spawn(p, RUNC_HELPER_DELETE, 0);
        return;
    }
    if (streams_open(p)) {
        if (!p->draining) {
            p->draining = true;
            uv_timer_start(&p->t_misc, drain_cb, RUNC_DRAIN_MS, 0);
        }
        return;
    }
    finish(p);
}

static void
proc_exited(struct runc_proc *p, uv_handle_t *h, int64_t status, int sig)
{
    p->t_end = clock_mono_ms();
    p->exited = true;
    p->exit_status = status;
    p->exit_signal = sig;
    p->pending_sig = 0;
    p->retry_sig = 0;
    uv_timer_stop(&p->t_kill);
    uv_timer_stop(&p->t_misc);
    close_handle(p, (uv_handle_t *)h);
    if (p->none) {
        /* Stragglers the task left in its process group. */
        kill(-p->pid, SIGKILL);
    } else {
        /* runc run deletes the container itself when it returns normally;
         * state left under --root means it did not (runc was killed). */
        char *state = path_join(p->root, p->id);
        struct stat st;
        p->need_delete = lstat(state, &st) == 0;
        free(state);
    }
    progress(p);
}

static void
exit_cb(uv_process_t *h, int64_t status, int sig)
{
    proc_exited(h->data, (uv_handle_t *)h, status, sig);
}

/* Isolation none: the task's pidfd became readable, so it has exited. */
static void
pid_cb(uv_poll_t *h, int status, int events)
{
    struct runc_proc *p = h->data;
    (void)status;
    (void)events;
    int st = 0;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == 0)
        return; /* not yet */
    int64_t code = 0;
    int sig = 0;
    if (r == p->pid && WIFEXITED(st))
        code = WEXITSTATUS(st);
    else if (r == p->pid && WIFSIGNALED(st))
        sig = WTERMSIG(st);
    uv_poll_stop(h);
    close(p->pidfd);
    p->pidfd = -1;
    proc_exited(p, (uv_handle_t *)h, code, sig);
}

/* The executable for file, searched in the task's PATH (not the worker's)
 * when it has no slash, as execvp would in the child. malloc'd or NULL. */
static char *
resolve_exe(const char *file, char *const *env)
{
    if (strchr(file, '/'))
        return xstrdup(file);
    const char *path = RUNC_DEFAULT_PATH + 5;
    for (size_t i = 0; env && env[i]; i++)
        if (!strncmp(env[i], "PATH=", 5))
            path = env[i] + 5;
    for (const char *d = path; *d;) {
        size_t n = strcspn(d, ":");
        char *cand = n ? xasprintf("%.*s/%s", (int)n, d, file) : xasprintf("./%s", file);
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
            return cand;
        free(cand);
        d += n;
        if (*d == ':')
            d++;
    }
    return NULL;
}

/* Isolation none: posix_spawn (glibc: clone with CLONE_VM|CLONE_VFORK, so
 * no copy of the worker's page tables and no copy-on-write faults after it,
 * which fork costs per task) in its own session, stdout and stderr on the
 * pipes, watched through a pidfd. */
static int
spawn_none(struct runc_proc *p, uv_loop_t *loop, const struct runc_spec *spec, char **args,
           char **env, int out_fd, int err_fd, char *errbuf, size_t errlen)
{
    char *exe = resolve_exe(args[0], env);
    if (!exe) {
        seterr(errbuf, errlen, "spawn %s: no such file or directory", args[0]);
        return CAIRN_ENOENT;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
    if (spec->workspace_dir)
        posix_spawn_file_actions_addchdir_np(&fa, spec->workspace_dir);
    posix_spawnattr_init(&at);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    pid_t pid = 0;
    int r = posix_spawn(&pid, exe, &fa, &at, args, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    free(exe);
    if (r != 0) {
        seterr(errbuf, errlen, "spawn %s: %s", args[0], strerror(r));
        return err_from_errno(r);
    }
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pfd < 0 || uv_poll_init(loop, &p->pidpoll, pfd) != 0) {
        int e = errno;
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
        if (pfd >= 0)
            close(pfd);
        seterr(errbuf, errlen, "cannot watch the task (pidfd_open: %s)", strerror(e));
        return CAIRN_EIO;
    }
    p->pid = pid;
    p->pidfd = pfd;
    p->pidpoll.data = p;
    p->handles++;
    uv_poll_start(&p->pidpoll, UV_READABLE, pid_cb);
    return 0;
}

static void
send_signal(struct runc_proc *p, int sig)
{
    p->kill_sent = true;
    if (p->none) {
        if (kill(-p->pid, sig) != 0 && errno != ESRCH)
            LOG(LOG_WARN, "CAIRN-RUNC-KILL", "kill -%d: %s", p->pid, strerror(errno));
        return;
    }
    if (sig == SIGKILL || p->pending_sig != SIGKILL)
        p->pending_sig = sig;
    progress(p);
}

static void
grace_cb(uv_timer_t *t)
{
    struct runc_proc *p = t->data;
    if (!p->exited)
        send_signal(p, SIGKILL);
}

static void
begin_stop(struct runc_proc *p)
{
    p->stopping = true;
    send_signal(p, SIGTERM);
    uv_timer_start(&p->t_kill, grace_cb, (uint64_t)p->grace_ms, 0);
}

static void
timeout_cb(uv_timer_t *t)
{
    struct runc_proc *p = t->data;
    if (p->exited || p->stopping)
        return;
    p->timed_out = true;
    begin_stop(p);
}

int
runc_kill(struct runc_proc *p, int sig)
{
    if (!p || sig <= 0 || sig >= NSIG)
        return CAIRN_EINVAL;
    if (p->exited || p->finished)
        return CAIRN_ESTATE;
    send_signal(p, sig);
    return 0;
}

int
runc_stop(struct runc_proc *p)
{
    if (!p)
        return CAIRN_EINVAL;
    if (p->exited || p->finished || p->stopping)
        return CAIRN_ESTATE;
    begin_stop(p);
    return 0;
}

void
runc_proc_free(struct runc_proc *p)
{
    if (!p || p->free_requested)
        return;
    p->free_requested = true;
    if (!p->exited && !p->finished)
        send_signal(p, SIGKILL);
    maybe_free(p);
}

/* Environment for isolation none: the caller's list plus PATH if absent.
 * The strings are borrowed; only the array is allocated. */
static char **
none_env(const char *const *env)
{
    size_t n = 0;
    while (env && env[n])
        n++;
    char **v = xcalloc(n + 2, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = (char *)env[i];
    if (!env_has(env, "PATH"))
        v[n] = (char *)RUNC_DEFAULT_PATH;
    return v;
}

static void
proc_discard(struct runc_proc *p)
{
    if (p->oom_efd >= 0)
        close(p->oom_efd);
    p->oom_efd = -1;
    if (p->memcg_dir)
        rmdir(p->memcg_dir);
    if (!p->none && p->bundle_dir && !p->keep_bundle)
        bundle_remove(p->bundle_dir);
}

int
runc_start(struct runc_proc **out, uv_loop_t *loop, const struct runc_spec *spec,
           const struct runc_callbacks *cbs, void *ud, char *errbuf, size_t errlen)
{
    seterr(errbuf, errlen, "%s", "");
    int rc = spec_check(spec, errbuf, errlen);
    if (rc)
        return rc;
    if (!out || !loop) {
        seterr(errbuf, errlen, "no loop");
        return CAIRN_EINVAL;
    }

    struct runc_proc *p = xcalloc(1, sizeof(*p));
    p->loop = loop;
    if (cbs)
        p->cbs = *cbs;
    p->ud = ud;
    p->none = spec->isolation_none;
    p->keep_bundle = spec->keep_bundle;
    p->mem_limited = spec->memory_bytes > 0;
    p->oom_efd = -1;
    p->pidfd = -1;
    p->grace_ms = spec->kill_grace_ms > 0 ? spec->kill_grace_ms : RUNC_GRACE_MS;
    p->runtime = xstrdup(spec->runtime ? spec->runtime : RUNC_DEFAULT_RUNTIME);
    if (!p->none) {
        p->root = xstrdup(spec->root);
        p->id = xstrdup(spec->container_id);
        p->bundle_dir = xstrdup(spec->bundle_dir);
        rc = bundle_create(spec, errbuf, errlen);
        if (rc) {
            p->finished = p->free_requested = true;
            maybe_free(p);
            return rc;
        }
        if (p->mem_limited) {
            char *cg = cgroup_path(spec);
            oom_watch(p, cg);
            free(cg);
        }
    }

    /* stdout, stderr and, for runc, a third pipe for runc's own log: runc
     * opens /proc/self/fd/3 as its --log file, so no file is written. */
    int fds[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    p->nstreams = p->none ? 2 : 3;
    for (int i = 0; i < p->nstreams; i++) {
        if (pipe2(fds[i], O_CLOEXEC) != 0) {
            seterr(errbuf, errlen, "pipe: %s", strerror(errno));
            rc = err_from_errno(errno);
            for (int j = 0; j < i; j++) {
                close(fds[j][0]);
                close(fds[j][1]);
            }
            proc_discard(p);
            p->finished = p->free_requested = true;
            maybe_free(p);
            return rc;
        }
    }

    const char *rargs[16];
    char **args;
    char **env = NULL;
    uv_process_options_t o = {0};
    uv_stdio_container_t stdio[4];
    stdio[0].flags = UV_IGNORE;
    for (int i = 0; i < p->nstreams; i++) {
        stdio[i + 1].flags = UV_INHERIT_FD;
        stdio[i + 1].data.fd = fds[i][1];
    }
    if (p->none) {
        args = (char **)spec->argv;
        env = none_env(spec->env);
        o.env = env;
        o.cwd = spec->workspace_dir;
    } else {
        size_t n = 0;
        rargs[n++] = p->runtime;
        rargs[n++] = "--root";
        rargs[n++] = p->root;
        rargs[n++] = "--log";
        rargs[n++] = "/proc/self/fd/3";
        rargs[n++] = "--log-format";
        rargs[n++] = "json";
        rargs[n++] = "run";
        rargs[n++] = "--bundle";
        rargs[n++] = p->bundle_dir;
        rargs[n++] = p->id;
        rargs[n] = NULL;
        args = (char **)rargs;
    }
    o.file = args[0];
    o.args = args;
    o.exit_cb = exit_cb;
    o.stdio_count = p->nstreams + 1;
    o.stdio = stdio;
    /* Isolation none: own session and process group, so the whole group can
     * be killed. runc stays in the worker's session: started in a new one,
     * `runc run` took ~10 ms longer per container (bench/runc_overhead.sh),
     * and the container has its own PID namespace anyway. */
    o.flags = p->none ? UV_PROCESS_DETACHED : 0;

    p->t_start = clock_mono_ms();
    if (p->none) {
        rc = spawn_none(p, loop, spec, args, env, fds[0][1], fds[1][1], errbuf, errlen);
        free(env);
        for (int i = 0; i < p->nstreams; i++)
            close(fds[i][1]);
        if (rc) {
            for (int i = 0; i < p->nstreams; i++)
                close(fds[i][0]);
            proc_discard(p);
            p->finished = p->free_requested = true;
            maybe_free(p);
            return rc;
        }
    } else {
        p->proc.data = p;
        p->handles++;
        int r = uv_spawn(loop, &p->proc, &o);
        free(env);
        for (int i = 0; i < p->nstreams; i++)
            close(fds[i][1]);
        if (r) {
            seterr(errbuf, errlen, "spawn %s: %s", args[0], uv_strerror(r));
            for (int i = 0; i < p->nstreams; i++)
                close(fds[i][0]);
            proc_discard(p);
            p->finished = p->free_requested = true;
            close_handle(p, (uv_handle_t *)&p->proc);
            return err_from_uv(r);
        }
        p->pid = uv_process_get_pid(&p->proc);
    }

    for (int i = 0; i < p->nstreams; i++) {
        struct runc_stream *s = &p->out[i];
        s->owner = p;
        s->index = (i + 1) % 3;
        s->open = true;
        uv_pipe_init(loop, &s->pipe, 0);
        p->handles++;
        s->pipe.data = s;
        /* Once uv_pipe_open succeeded the handle owns the fd. */
        int r = uv_pipe_open(&s->pipe, fds[i][0]);
        if (r)
            close(fds[i][0]);
        else
            r = uv_read_start((uv_stream_t *)&s->pipe, alloc_cb, read_cb);
        if (r) {
            LOG(LOG_WARN, "CAIRN-RUNC-READ", "output pipe: %s", uv_strerror(r));
            stream_close(s);
        }
    }
    if (p->oom_efd >= 0 && uv_poll_init(loop, &p->oom_poll, p->oom_efd) == 0) {
        p->handles++;
        p->oom_polling = true;
        p->oom_poll.data = p;
        uv_poll_start(&p->oom_poll, UV_READABLE, oom_poll_cb);
    }
    uv_timer_init(loop, &p->t_kill);
    uv_timer_init(loop, &p->t_misc);
    p->handles += 2;
    p->t_kill.data = p;
    p->t_misc.data = p;
    if (spec->timeout_ms > 0)
        uv_timer_start(&p->t_kill, timeout_cb, (uint64_t)spec->timeout_ms, 0);
    *out = p;
    return 0;
}

/* ---- leftovers ---------------------------------------------------------- */

static int
run_sync(char *const argv[])
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int status = 0;
    posix_spawn_file_actions_init(&fa);
    for (int fd = 0; fd < 3; fd++)
        posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd ? O_WRONLY : O_RDONLY, 0);
    int r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r != 0)
        return -r;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void
reap_hierarchy(const char *hier, const char *parent)
{
    char *dir = path_join(hier, parent);
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_type != DT_DIR || de->d_name[0] == '.')
                continue;
            char *cg = path_join(dir, de->d_name);
            if (rmdir(cg) == 0)
                LOG(LOG_INFO, "CAIRN-RUNC-REAPED", "removed cgroup %s", cg);
            free(cg);
        }
        closedir(d);
    }
    free(dir);
}

/* Remove the empty cgroups under parent in every mounted hierarchy: the v1
 * memory cgroups pre-created for OOM watching, and whatever a runc that was
 * killed half-way left. Busy cgroups refuse rmdir and stay. */
static void
reap_cgroups(const char *parent)
{
    struct statfs sf;
    if (statfs(RUNC_CGROUP_ROOT, &sf) != 0)
        return;
    if (sf.f_type == CGROUP2_SUPER_MAGIC) {
        reap_hierarchy(RUNC_CGROUP_ROOT, parent); /* unified: one hierarchy */
        return;
    }
    DIR *d = opendir(RUNC_CGROUP_ROOT); /* v1 or hybrid: one mount per hierarchy */
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char *hier = path_join(RUNC_CGROUP_ROOT, de->d_name);
        if (statfs(hier, &sf) == 0 &&
            (sf.f_type == CGROUP_SUPER_MAGIC || sf.f_type == CGROUP2_SUPER_MAGIC))
            reap_hierarchy(hier, parent);
        free(hier);
    }
    closedir(d);
}

int
runc_reap_leftovers(const char *runtime, const char *root, const char *cgroup_parent)
{
    if (!path_ok(root) || (cgroup_parent && !path_ok(cgroup_parent)))
        return CAIRN_EINVAL;
    const char *rt = runtime ? runtime : RUNC_DEFAULT_RUNTIME;
    int count = 0, rc = 0;

    DIR *d = opendir(root);
    if (!d && errno != ENOENT) {
        LOG(LOG_ERR, "CAIRN-RUNC-REAP", "open %s: %s", root, strerror(errno));
        return CAIRN_EIO;
    }
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || !id_ok(de->d_name))
            continue;
        char *dir = path_join(root, de->d_name);
        char *state = path_join(dir, "state.json");
        if (access(state, F_OK) == 0) {
            char *argv[] = {(char *)rt, "--root", (char *)root, "delete", "-f", de->d_name, NULL};
            int st = run_sync(argv);
            if (st == 0) {
                count++;
                LOG(LOG_NOTICE, "CAIRN-RUNC-REAPED", "deleted leftover container %s", de->d_name);
            } else {
                LOG(LOG_WARN, "CAIRN-RUNC-REAP", "%s delete -f %s failed (%d)", rt, de->d_name, st);
                rc = CAIRN_ERUNTIME;
            }
        }
        /* A state directory without state.json: runc died while creating. */
        if (access(dir, F_OK) == 0 && access(state, F_OK) != 0)
            remove_tree(dir);
        free(state);
        free(dir);
    }
    if (d)
        closedir(d);
    reap_cgroups(cgroup_parent ? cgroup_parent : RUNC_DEFAULT_CGROUP_PARENT);
    return rc < 0 ? rc : count;
}
