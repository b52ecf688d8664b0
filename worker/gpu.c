/* gpu.c - this worker's GPUs (gpu.h).
 *
 * Owns finding the GPUs once at start (device nodes, the driver's proc
 * files, `nvidia-smi -L`, `ldconfig -p`, or --gpus by hand), what HELLO
 * announces of them, and what an attempt with an allocation gets: device
 * nodes, environment, driver files. The two helper programs are run once,
 * at start, before the loop, with posix_spawnp (no shell); nothing here
 * runs later but string work. Why each piece is there:
 *
 * - Devices: a container sees only the device nodes its bundle lists and
 *   its device cgroup allows (runc_bundle.c), so it gets its own GPUs'
 *   /dev/nvidiaN and the control devices every CUDA program opens
 *   (nvidiactl; nvidia-uvm and nvidia-uvm-tools for unified memory;
 *   nvidia-modeset where the driver has it), and no other GPU.
 * - CUDA_VISIBLE_DEVICES: CUDA numbers the GPUs a process can open from 0,
 *   so inside a container that sees two of the host's GPUs they are 0 and
 *   1, whatever their host indices; with --isolation none every GPU is
 *   visible and the variable names the host indices. CUDA_DEVICE_ORDER=
 *   PCI_BUS_ID makes CUDA count the way nvidia-smi and the device minors
 *   do. NVIDIA_VISIBLE_DEVICES always names the host indices (what
 *   NVIDIA's container tools read, and what a task can log).
 * - Driver files: an `image: host` container sees the host's /usr and /lib
 *   and so the driver's libraries and nvidia-smi where the host has them.
 *   A rootfs image's folders are read-only bind mounts that cannot take
 *   new mount points, so the libraries `ldconfig -p` lists (libnvidia*,
 *   libcuda*) and nvidia-smi are mounted read-only under GPU_DRIVER_DIR (a
 *   tmpfs of Cairn's), whose lib/ and bin/ go on LD_LIBRARY_PATH and PATH.
 *   nvidia-container-cli is not used: it creates its mount points inside
 *   the image's library folders, which Cairn keeps read-only.
 */
#include "gpu.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "log.h"
#include "util.h"

extern char **environ;

#define GPU_PROC_DIR "/proc/driver/nvidia/gpus"
#define GPU_CAPTURE_MAX (4 << 20)

static const char *const ctl_names[] = {"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools",
                                        "nvidia-modeset", NULL};

/* ---- parsers ---- */

/* The value after "key:" on a line of text, trimmed (malloc'd), or NULL. */
static char *
field_value(const char *text, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, klen) != 0 || p[klen] != ':')
            continue;
        const char *v = p + klen + 1, *e = strchr(v, '\n');
        if (!e)
            e = v + strlen(v);
        while (v < e && isspace((unsigned char)*v))
            v++;
        while (e > v && isspace((unsigned char)e[-1]))
            e--;
        return xstrndup(v, (size_t)(e - v));
    }
    return NULL;
}

int
gpu_parse_information(const char *text, int *minor, char **model)
{
    char *m = field_value(text, "Device Minor");
    char *end = NULL;
    long v = m ? strtol(m, &end, 10) : -1;
    bool ok = m && end != m && *end == '\0' && v >= 0 && v <= MSG_GPU_INDEX_MAX;
    free(m);
    if (!ok)
        return -1;
    char *name = field_value(text, "Model");
    *minor = (int)v;
    *model = name ? name : xstrdup("");
    return 0;
}

char *
gpu_parse_smi_list(const char *text, int index)
{
    char want[32];
    int n = snprintf(want, sizeof(want), "GPU %d: ", index);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, want, (size_t)n) != 0)
            continue;
        const char *v = p + n, *e = strchr(v, '\n');
        if (!e)
            e = v + strlen(v);
        const char *u = strstr(v, " (UUID:");
        if (u && u < e)
            e = u;
        while (e > v && isspace((unsigned char)e[-1]))
            e--;
        return xstrndup(v, (size_t)(e - v));
    }
    return NULL;
}

/* Whether ldconfig's flags ("libc6,x86-64", "libc6,AArch64, OS ABI: …")
 * are this machine's ABI. */
static bool
abi_ok(const char *flags, size_t len)
{
#if defined(__x86_64__)
    static const char want[] = "x86-64";
#elif defined(__aarch64__)
    static const char want[] = "AArch64";
#else
    static const char want[] = "";
#endif
    if (!want[0])
        return true;
    for (size_t i = 0; i + sizeof(want) - 1 <= len; i++)
        if (!memcmp(flags + i, want, sizeof(want) - 1))
            return true;
    return false;
}

size_t
gpu_parse_ldconfig(const char *text, struct gpu_file **files, size_t *n)
{
    size_t added = 0;
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        const char *e = strchr(p, '\n');
        if (!e)
            e = p + strlen(p);
        const char *name = p;
        while (name < e && isspace((unsigned char)*name))
            name++;
        const char *ne = name;
        while (ne < e && !isspace((unsigned char)*ne))
            ne++;
        const char *fo = memchr(ne, '(', (size_t)(e - ne)), *fc = NULL, *arrow = NULL;
        if (fo)
            fc = memchr(fo, ')', (size_t)(e - fo));
        if (fc)
            arrow = strstr(fc, " => ");
        if (!fo || !fc || !arrow || arrow >= e)
            continue;
        size_t nlen = (size_t)(ne - name);
        if (!((nlen > 9 && !strncmp(name, "libnvidia", 9)) ||
              (nlen > 7 && !strncmp(name, "libcuda", 7))) ||
            memchr(name, '/', nlen) || !abi_ok(fo + 1, (size_t)(fc - fo - 1)))
            continue;
        const char *path = arrow + 4;
        size_t plen = (size_t)(e - path);
        while (plen && isspace((unsigned char)path[plen - 1]))
            plen--;
        if (!plen || path[0] != '/')
            continue;
        char *nm = xstrndup(name, nlen);
        char *dest = xasprintf("%s/lib/%s", GPU_DRIVER_DIR, nm);
        free(nm);
        size_t k;
        for (k = 0; k < *n && strcmp((*files)[k].dest, dest); k++)
            ;
        if (k < *n) {
            free(dest);
            continue;
        }
        *files = xrealloc(*files, (*n + 1) * sizeof(**files));
        (*files)[*n].host = xstrndup(path, plen);
        (*files)[*n].dest = dest;
        (*n)++;
        added++;
    }
    return added;
}

/* ---- finding them ---- */

/* The output of argv (looked up in PATH, no shell), at most
 * GPU_CAPTURE_MAX bytes, malloc'd; NULL if it cannot run or fails. */
static char *
capture(const char *const *argv)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int r = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (r != 0) {
        close(fds[0]);
        return NULL;
    }
    struct sb out;
    sb_init(&out);
    char buf[8192];
    ssize_t k;
    while ((k = read(fds[0], buf, sizeof(buf))) > 0 || (k < 0 && errno == EINTR))
        if (k > 0 && out.len < GPU_CAPTURE_MAX)
            sb_append(&out, buf, (size_t)k);
    close(fds[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        sb_free(&out);
        return NULL;
    }
    return out.buf ? sb_take(&out) : xstrdup("");
}

/* An executable named prog in PATH (malloc'd, resolved), or NULL. */
static char *
which(const char *prog)
{
    const char *path = getenv("PATH");
    char *copy = xstrdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin"), *save = NULL;
    char *found = NULL;
    for (char *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        char *p = xasprintf("%s/%s", d, prog);
        char real[PATH_MAX];
        if (access(p, X_OK) == 0 && realpath(p, real))
            found = xstrdup(real);
        free(p);
    }
    free(copy);
    return found;
}

static bool
is_chardev(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISCHR(st.st_mode);
}

static void
gpu_add(struct gpu_set *gs, int index)
{
    gs->gpus = xrealloc(gs->gpus, (gs->n + 1) * sizeof(*gs->gpus));
    gs->gpus[gs->n].index = index;
    gs->gpus[gs->n].model = xstrdup("");
    gs->gpus[gs->n].dev = xasprintf("%s/nvidia%d", gs->dev_dir, index);
    gs->n++;
}

static struct gpu *
gpu_find(const struct gpu_set *gs, int index)
{
    for (size_t i = 0; i < gs->n; i++)
        if (gs->gpus[i].index == index)
            return &gs->gpus[i];
    return NULL;
}

/* --gpus 0,1: distinct indices, each with its device node. */
static int
gpus_declared(struct gpu_set *gs, const char *list, char *err, size_t errlen)
{
    const char *p = list;
    if (!*p)
        return errf(CAIRN_EINVAL, err, errlen, "--gpus takes a list of GPU indices such as 0,1");
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > MSG_GPU_INDEX_MAX || (*end && *end != ',') ||
            !isdigit((unsigned char)*p))
            return errf(CAIRN_EINVAL, err, errlen,
                        "--gpus takes GPU indices 0..%d separated by commas, such as 0,1; got '%s'",
                        MSG_GPU_INDEX_MAX, list);
        if (gpu_find(gs, (int)v))
            return errf(CAIRN_EINVAL, err, errlen, "--gpus lists GPU %ld twice", v);
        gpu_add(gs, (int)v);
        if (!is_chardev(gs->gpus[gs->n - 1].dev))
            return errf(CAIRN_EINVAL, err, errlen,
                        "--gpus %ld: %s is not a character device (is the NVIDIA driver loaded?)",
                        v, gs->gpus[gs->n - 1].dev);
        p = *end ? end + 1 : end;
        if (*end && !*p)
            return errf(CAIRN_EINVAL, err, errlen, "--gpus ends with a comma: '%s'", list);
    }
    return 0;
}

/* DEV/nvidiaN character devices. */
static void
gpus_scan_dev(struct gpu_set *gs)
{
    DIR *d = opendir(gs->dev_dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        const char *s = de->d_name;
        if (strncmp(s, "nvidia", 6) != 0 || !isdigit((unsigned char)s[6]))
            continue;
        char *end;
        long v = strtol(s + 6, &end, 10);
        if (*end || v < 0 || v > MSG_GPU_INDEX_MAX || (s[6] == '0' && s[7]))
            continue;
        char *path = xasprintf("%s/%s", gs->dev_dir, s);
        if (is_chardev(path) && !gpu_find(gs, (int)v))
            gpu_add(gs, (int)v);
        free(path);
    }
    if (d)
        closedir(d);
}

/* Models from the driver's proc files (by device minor). */
static void
models_from_proc(struct gpu_set *gs, const char *proc_dir)
{
    DIR *d = opendir(proc_dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char *path = xasprintf("%s/%s/information", proc_dir, de->d_name), *text = NULL;
        size_t len;
        int minor;
        char *model = NULL;
        if (fs_read_all(path, 65536, &text, &len) == 0 &&
            gpu_parse_information(text, &minor, &model) == 0) {
            struct gpu *g = gpu_find(gs, minor);
            if (g && model[0]) {
                free(g->model);
                g->model = model;
                model = NULL;
            } else if (!g) {
                LOG(LOG_WARN, "CAIRN-GPU", "the driver lists GPU %d (%s), but %s/nvidia%d is "
                    "not a device here: not used", minor, de->d_name, gs->dev_dir, minor);
            }
        }
        free(model);
        free(text);
        free(path);
    }
    if (d)
        closedir(d);
}

static int
gpu_cmp(const void *a, const void *b)
{
    const struct gpu *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

int
gpu_discover(struct gpu_set **out, const struct gpu_options *o, char *err, size_t errlen)
{
    struct gpu_set *gs = xcalloc(1, sizeof(*gs));
    gs->dev_dir = xstrdup(o->dev_dir ? o->dev_dir : "/dev");
    size_t dl = strlen(gs->dev_dir);
    while (dl > 1 && gs->dev_dir[dl - 1] == '/')
        gs->dev_dir[--dl] = '\0';
    int rc = 0;
    if (o->declared)
        rc = gpus_declared(gs, o->declared, err, errlen);
    else
        gpus_scan_dev(gs);
    if (rc) {
        gpu_set_free(gs);
        return rc;
    }
    if (gs->n) {
        qsort(gs->gpus, gs->n, sizeof(*gs->gpus), gpu_cmp);
        models_from_proc(gs, o->proc_dir ? o->proc_dir : GPU_PROC_DIR);
        bool unnamed = false;
        for (size_t i = 0; i < gs->n; i++)
            unnamed |= !gs->gpus[i].model[0];
        char *smi = which("nvidia-smi");
        if (unnamed && smi) {
            static const char *const argv[] = {"nvidia-smi", "-L", NULL};
            char *list = capture(argv);
            for (size_t i = 0; list && i < gs->n; i++) {
                char *m = gs->gpus[i].model[0] ? NULL : gpu_parse_smi_list(list, gs->gpus[i].index);
                if (m) {
                    free(gs->gpus[i].model);
                    gs->gpus[i].model = m;
                }
            }
            free(list);
        }
        for (size_t i = 0; o->model && i < gs->n; i++)
            if (!gs->gpus[i].model[0]) {
                free(gs->gpus[i].model);
                gs->gpus[i].model = xstrdup(o->model);
            }
        for (size_t i = 0; ctl_names[i]; i++) {
            char *p = xasprintf("%s/%s", gs->dev_dir, ctl_names[i]);
            if (is_chardev(p)) {
                gs->ctl = xrealloc(gs->ctl, (gs->nctl + 1) * sizeof(*gs->ctl));
                gs->ctl[gs->nctl++] = p;
            } else {
                free(p);
            }
        }
        if (!o->no_driver_files) {
            static const char *const ld1[] = {"/sbin/ldconfig", "-p", NULL};
            static const char *const ld2[] = {"ldconfig", "-p", NULL};
            char *cache = capture(ld1);
            if (!cache)
                cache = capture(ld2);
            if (cache)
                gpu_parse_ldconfig(cache, &gs->files, &gs->nfiles);
            free(cache);
            /* a library listed but gone, or a dangling link, would fail
             * every container's start: only files that are there */
            size_t k = 0;
            for (size_t i = 0; i < gs->nfiles; i++) {
                char real[PATH_MAX];
                struct stat st;
                if (realpath(gs->files[i].host, real) && stat(real, &st) == 0 &&
                    S_ISREG(st.st_mode)) {
                    free(gs->files[i].host);
                    gs->files[i].host = xstrdup(real);
                    gs->files[k++] = gs->files[i];
                } else {
                    free(gs->files[i].host);
                    free(gs->files[i].dest);
                }
            }
            gs->nfiles = k;
            if (smi) {
                gs->files = xrealloc(gs->files, (gs->nfiles + 1) * sizeof(*gs->files));
                gs->files[gs->nfiles].host = xstrdup(smi);
                gs->files[gs->nfiles].dest = xstrdup(GPU_DRIVER_DIR "/bin/nvidia-smi");
                gs->nfiles++;
            }
        }
        free(smi);
    }
    *out = gs;
    return 0;
}

void
gpu_set_free(struct gpu_set *gs)
{
    if (!gs)
        return;
    for (size_t i = 0; i < gs->n; i++) {
        free(gs->gpus[i].model);
        free(gs->gpus[i].dev);
    }
    free(gs->gpus);
    for (size_t i = 0; i < gs->nctl; i++)
        free(gs->ctl[i]);
    free(gs->ctl);
    for (size_t i = 0; i < gs->nfiles; i++) {
        free(gs->files[i].host);
        free(gs->files[i].dest);
    }
    free(gs->files);
    free(gs->dev_dir);
    free(gs);
}

struct msg_gpu *
gpu_hello(const struct gpu_set *gs)
{
    if (!gs || !gs->n)
        return NULL;
    struct msg_gpu *g = xcalloc(gs->n, sizeof(*g));
    for (size_t i = 0; i < gs->n; i++) {
        g[i].index = gs->gpus[i].index;
        g[i].model = gs->gpus[i].model;
    }
    return g;
}

/* ---- an attempt ---- */

static char *
keep(struct gpu_attempt *a, char *s)
{
    a->strings = xrealloc(a->strings, (a->nstrings + 1) * sizeof(*a->strings));
    a->strings[a->nstrings++] = s;
    return s;
}

static int
idx_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int
gpu_attempt(const struct gpu_set *gs, const int64_t *idx, size_t n, bool container,
            bool host_image, struct gpu_attempt *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!n)
        return 0;
    int64_t *sorted = xcalloc(n, sizeof(*sorted));
    memcpy(sorted, idx, n * sizeof(*idx));
    qsort(sorted, n, sizeof(*sorted), idx_cmp);
    for (size_t i = 0; i < n; i++) {
        long long g = (long long)sorted[i];
        int rc = 0;
        if (i && sorted[i] == sorted[i - 1])
            rc = errf(CAIRN_EINVAL, err, errlen, "the lease names GPU %lld twice", g);
        else if (!gs || g > INT_MAX || !gpu_find(gs, (int)g))
            rc = errf(CAIRN_EINVAL, err, errlen,
                      "the lease names GPU %lld, which this worker does not have", g);
        if (rc) {
            free(sorted);
            return rc;
        }
    }
    struct gpu_attempt a = {0};
    struct sb host, local;
    sb_init(&host);
    sb_init(&local);
    for (size_t i = 0; i < n; i++) {
        sb_printf(&host, "%s%lld", i ? "," : "", (long long)sorted[i]);
        sb_printf(&local, "%s%zu", i ? "," : "", i);
    }
    a.env = xcalloc(4, sizeof(*a.env));
    a.env[a.nenv++] = keep(&a, xasprintf("NVIDIA_VISIBLE_DEVICES=%s", host.buf));
    a.env[a.nenv++] =
        keep(&a, xasprintf("CUDA_VISIBLE_DEVICES=%s", container ? local.buf : host.buf));
    a.env[a.nenv++] = keep(&a, xstrdup("CUDA_DEVICE_ORDER=PCI_BUS_ID"));
    sb_free(&host);
    sb_free(&local);
    if (container) {
        a.devices = xcalloc(n + gs->nctl + 1, sizeof(*a.devices));
        for (size_t i = 0; i < n; i++) {
            const struct gpu *g = gpu_find(gs, (int)sorted[i]);
            a.devices[a.ndevices].host_path = g->dev;
            a.devices[a.ndevices++].path = keep(&a, xasprintf("/dev/nvidia%d", g->index));
        }
        for (size_t i = 0; i < gs->nctl; i++) {
            a.devices[a.ndevices].host_path = gs->ctl[i];
            a.devices[a.ndevices++].path = keep(&a, xasprintf("/dev/%s", strrchr(gs->ctl[i], '/') + 1));
        }
        if (!host_image && gs->nfiles) {
            a.binds = xcalloc(gs->nfiles, sizeof(*a.binds));
            for (size_t i = 0; i < gs->nfiles; i++)
                a.binds[a.nbinds++] = (struct runc_bind){gs->files[i].host, gs->files[i].dest, true};
            a.scratch_dir = GPU_DRIVER_DIR;
        }
    }
    free(sorted);
    *out = a;
    return 0;
}

void
gpu_attempt_clear(struct gpu_attempt *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->nstrings; i++)
        free(a->strings[i]);
    free(a->strings);
    free(a->devices);
    free(a->binds);
    free(a->env);
    memset(a, 0, sizeof(*a));
}

static bool
same_name(const char *kv, const char *other)
{
    size_t k = strcspn(kv, "=");
    return !strncmp(kv, other, k) && other[k] == '=';
}

char **
gpu_env_apply(char **env, const struct gpu_attempt *a)
{
    size_t n = 0;
    while (env && env[n])
        n++;
    char **v = xcalloc(n + a->nenv + 2, sizeof(*v));
    size_t k = 0;
    bool has_ld = false;
    for (size_t i = 0; i < n; i++) {
        bool replaced = false;
        for (size_t j = 0; j < a->nenv && !replaced; j++)
            replaced = same_name(a->env[j], env[i]);
        if (replaced) {
            free(env[i]);
            continue;
        }
        if (a->nbinds && !strncmp(env[i], "PATH=", 5)) {
            v[k++] = xasprintf("%s:%s/bin", env[i], GPU_DRIVER_DIR);
            free(env[i]);
        } else if (a->nbinds && !strncmp(env[i], "LD_LIBRARY_PATH=", 16)) {
            v[k++] = xasprintf("%s%s%s/lib", env[i], env[i][16] ? ":" : "", GPU_DRIVER_DIR);
            free(env[i]);
            has_ld = true;
        } else {
            v[k++] = env[i];
        }
    }
    for (size_t j = 0; j < a->nenv; j++)
        v[k++] = xstrdup(a->env[j]);
    if (a->nbinds && !has_ld)
        v[k++] = xstrdup("LD_LIBRARY_PATH=" GPU_DRIVER_DIR "/lib");
    free(env);
    return v;
}
