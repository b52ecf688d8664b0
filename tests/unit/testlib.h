/* testlib.h - what the unit tests share (prefix: tl_).
 *
 * Linked into every unit test (tests/CMakeLists.txt). It owns the chores
 * that each test used to write for itself: temporary folders (and tmpfs
 * mounts inside them) that are removed even when an assertion fails, reading
 * and writing whole files, fixture paths, running shell commands and forked
 * children, and driving a libuv loop until a condition holds.
 *
 * Functions whose name says nothing about failing (tl_write_file, tl_sh_output,
 * tl_fork, tl_wait) fail the running cmocka test on an error they cannot
 * report, so they are for test bodies and setups only, never for a forked
 * child (which must report through its exit status). The others report
 * failure by their return value. Strings returned are malloc'd and the
 * caller's; pointers passed in are borrowed for the call only.
 */
#ifndef CAIRN_TESTLIB_H
#define CAIRN_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

/* The checked-in fixtures (tests/fixtures), as a string literal. */
#define TL_FIXTURES CAIRN_SOURCE_DIR "/tests/fixtures"

/* ---- temporary folders --------------------------------------------------- */

#define TL_MAX_MOUNTS 8

/* A fresh folder for one test. Zero it (or let tl_dir_make fill it); after
 * tl_dir_remove it may be made again. */
struct tl_dir {
    char *path;                  /* absolute; NULL when not made */
    char *mounts[TL_MAX_MOUNTS]; /* tmpfs mounted by tl_dir_mount_tmpfs, in order */
    int nmounts;
};

/* Make $TMPDIR (or /tmp) /cairn-NAME-XXXXXX, mode 0700. 0, or -1 with errno
 * set and d untouched (usable from a cmocka setup, which returns -1). */
int tl_dir_make(struct tl_dir *d, const char *name);
/* "D/REL" for d's folder (printf-style), malloc'd. */
char *tl_dir_file(const struct tl_dir *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Mount a tmpfs of size (e.g. "16m") at path, which is d's folder itself or
 * lies inside it (created if missing). false, with a cmocka message saying
 * why, where that is not allowed (not root, in a container): the caller
 * skips. tl_dir_remove unmounts it. */
bool tl_dir_mount_tmpfs(struct tl_dir *d, const char *path, const char *size);
/* Unmount what tl_dir_mount_tmpfs mounted (newest first, lazily if busy),
 * remove the folder and everything in it, and reset d. Problems are printed,
 * not fatal (this runs in teardowns): 0, or the tl_rmtree code if something
 * stayed. A zeroed or removed d is a no-op. */
int tl_dir_remove(struct tl_dir *d);

/* rm -rf path: like fs_rmtree (never follows links or crosses a mount),
 * after giving the owner rwx on every folder under path so that a test that
 * made one read-only (as a non-root user would need) does not leave it
 * behind. 0, or the CAIRN_E* code of the first entry that stayed. */
int tl_rmtree(const char *path);

/* ---- files ------------------------------------------------------------- */

/* Does path exist (lstat: a dangling link does)? */
bool tl_exists(const char *path);
/* The whole file, NUL-terminated, *len (if len) its size; NULL if it cannot
 * be read. Works on /proc files. */
char *tl_read_file(const char *path, size_t *len);
/* Write len bytes to path, created (mode 0644 less the umask) or truncated.
 * Fails the test on error. */
void tl_write_file(const char *path, const void *data, size_t len);
/* tl_write_file of a string. */
void tl_write_text(const char *path, const char *text);
/* Create or truncate path with mode 0600, write len bytes, then chmod it to
 * mode exactly (the umask does not apply). Fails the test on error. */
void tl_write_file_mode(const char *path, const void *data, size_t len, mode_t mode);

/* ---- processes ---------------------------------------------------------- */

/* Run a command line through /bin/sh (printf-style). Its exit status, or -1
 * if it did not exit normally (or could not be run). */
int tl_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, returning what it wrote on stdout (never NULL); *status as
 * tl_sh. Fails the test if the command cannot be started. */
char *tl_sh_output(int *status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Is there an executable file name in a folder of $PATH? */
bool tl_have_program(const char *name);
/* fork(), after flushing stdio so that the child does not write out the
 * parent's buffers again. Fails the test if fork fails. The child must end
 * with _exit and must not use cmocka's assertions. */
pid_t tl_fork(void);
/* waitpid(pid) through EINTR; fails the test unless it reaps pid. Returns
 * the wait status (WIFEXITED and friends). */
int tl_wait(pid_t pid);

/* ---- libuv loops -------------------------------------------------------- */

/* Run loop without blocking (UV_RUN_NOWAIT, 1 ms apart) until cond(arg) is
 * nonzero: 0, or -1 if timeout_ms passed first. */
int tl_run_until(uv_loop_t *loop, int (*cond)(void *arg), void *arg, int64_t timeout_ms);
/* Run loop without blocking n times, 1 ms apart: lets pending socket events
 * and callbacks happen. */
void tl_spin(uv_loop_t *loop, int n);

#endif
