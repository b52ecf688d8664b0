/* testlib.c - the unit tests' shared chores (see testlib.h).
 *
 * Owns nothing between calls but what a struct tl_dir records (its path and
 * the mounts made in it). Errors the tests cannot act on fail the running
 * cmocka test with a message naming the file or command; removal in
 * teardowns only prints, so that one broken teardown does not hide the
 * failure that caused it. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "util.h"

/* ---- temporary folders --------------------------------------------------- */

int
tl_dir_make(struct tl_dir *d, const char *name)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || tmp[0] != '/')
        tmp = "/tmp";
    char *path = xasprintf("%s/cairn-%s-XXXXXX", tmp, name);
    if (!mkdtemp(path)) {
        int e = errno;
        free(path);
        errno = e;
        return -1;
    }
    memset(d, 0, sizeof(*d));
    d->path = path;
    return 0;
}

char *
tl_dir_file(const struct tl_dir *d, const char *fmt, ...)
{
    struct sb sb;
    va_list ap;
    sb_init(&sb);
    sb_printf(&sb, "%s/", d->path);
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    return sb_take(&sb);
}

bool
tl_dir_mount_tmpfs(struct tl_dir *d, const char *path, const char *size)
{
    char opts[64];
    snprintf(opts, sizeof(opts), "size=%s", size);
    if (d->nmounts == TL_MAX_MOUNTS) {
        print_message("cannot mount a tmpfs on %s: %d mounts already\n", path, TL_MAX_MOUNTS);
        return false;
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        print_message("cannot mount a tmpfs on %s: mkdir: %s\n", path, strerror(errno));
        return false;
    }
    if (mount("tmpfs", path, "tmpfs", 0, opts) != 0) {
        print_message("cannot mount a tmpfs on %s: %s\n", path, strerror(errno));
        return false;
    }
    d->mounts[d->nmounts++] = xstrdup(path);
    return true;
}

int
tl_dir_remove(struct tl_dir *d)
{
    int rc = 0;
    for (int i = d->nmounts - 1; i >= 0; i--) {
        /* A failed test may leave a file open on the mount: detach it
         * lazily then; it goes away when the process exits. */
        if (umount(d->mounts[i]) != 0 && umount2(d->mounts[i], MNT_DETACH) != 0)
            fprintf(stderr, "umount %s: %s\n", d->mounts[i], strerror(errno));
        free(d->mounts[i]);
    }
    if (d->path && (rc = tl_rmtree(d->path)) != 0)
        fprintf(stderr, "cannot remove %s: %s\n", d->path, cairn_strerror(rc));
    free(d->path);
    memset(d, 0, sizeof(*d));
    return rc;
}

static int
tl__unlock_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if ((flag == FTW_D || flag == FTW_DNR) && (st->st_mode & S_IRWXU) != S_IRWXU)
        chmod(path, (st->st_mode & 07777) | S_IRWXU);
    return 0;
}

int
tl_rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        /* Pre-order: a folder is made writable and searchable before the
         * walk reads it, and the walk stays on this file system. */
        if ((st.st_mode & S_IRWXU) != S_IRWXU)
            chmod(path, (st.st_mode & 07777) | S_IRWXU);
        nftw(path, tl__unlock_cb, 16, FTW_PHYS | FTW_MOUNT);
    }
    return fs_rmtree(path);
}

/* ---- files ------------------------------------------------------------- */

bool
tl_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

char *
tl_read_file(const char *path, size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    if (fs_read_all(path, 0, &buf, &n) != 0)
        return NULL;
    if (len)
        *len = n;
    return buf;
}

static void
tl__write_fd(int fd, const char *path, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            fail_msg("write %s: %s", path, w < 0 ? strerror(errno) : "wrote nothing");
        p += w;
        len -= (size_t)w;
    }
}

void
tl_write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    tl__write_fd(fd, path, data, len);
    if (close(fd) != 0)
        fail_msg("close %s: %s", path, strerror(errno));
}

void
tl_write_text(const char *path, const char *text)
{
    tl_write_file(path, text, strlen(text));
}

void
tl_write_file_mode(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    tl__write_fd(fd, path, data, len);
    if (fchmod(fd, mode) != 0)
        fail_msg("chmod %s: %s", path, strerror(errno));
    if (close(fd) != 0)
        fail_msg("close %s: %s", path, strerror(errno));
}

/* ---- processes ---------------------------------------------------------- */

static int
tl__status(int st)
{
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int
tl_sh(const char *fmt, ...)
{
    struct sb sb;
    va_list ap;
    sb_init(&sb);
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    fflush(NULL);
    int st = system(sb.buf);
    sb_free(&sb);
    return tl__status(st);
}

char *
tl_sh_output(int *status, const char *fmt, ...)
{
    struct sb cmd, out;
    va_list ap;
    sb_init(&cmd);
    va_start(ap, fmt);
    sb_vprintf(&cmd, fmt, ap);
    va_end(ap);
    fflush(NULL);
    FILE *p = popen(cmd.buf, "r");
    if (!p)
        fail_msg("cannot run %s: %s", cmd.buf, strerror(errno));
    sb_init(&out);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
        sb_append(&out, buf, n);
    *status = tl__status(pclose(p));
    sb_free(&cmd);
    return sb_take(&out);
}

bool
tl_have_program(const char *name)
{
    const char *path = getenv("PATH");
    if (!path || strchr(name, '/'))
        return false;
    for (const char *p = path;; p++) {
        const char *end = strchr(p, ':');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        /* an empty entry is the current folder */
        char *file = n ? xasprintf("%.*s/%s", (int)n, p, name) : xasprintf("./%s", name);
        struct stat st;
        bool found = stat(file, &st) == 0 && S_ISREG(st.st_mode) && access(file, X_OK) == 0;
        free(file);
        if (found)
            return true;
        if (!end)
            return false;
        p = end;
    }
}

pid_t
tl_fork(void)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    return pid;
}

int
tl_wait(pid_t pid)
{
    int st = 0;
    pid_t got;
    do
        got = waitpid(pid, &st, 0);
    while (got < 0 && errno == EINTR);
    if (got != pid)
        fail_msg("waitpid %d: %s", (int)pid, strerror(errno));
    return st;
}

/* ---- libuv loops -------------------------------------------------------- */

int
tl_run_until(uv_loop_t *loop, int (*cond)(void *arg), void *arg, int64_t timeout_ms)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;
    while (!cond(arg)) {
        if (clock_mono_ms() > deadline)
            return -1;
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    return 0;
}

void
tl_spin(uv_loop_t *loop, int n)
{
    for (int i = 0; i < n; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}
