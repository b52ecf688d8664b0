/* workdir.h - the work folders of attempts (prefix: workdir_).
 *
 * Each attempt works in DATA/work/LEASE/ (workspace/ and outputs/, and
 * inputs/ when it has inputs). Folders are reused: making and removing
 * three folders per task was most of the worker's CPU time with short
 * tasks (ext4 searches its inode bitmap past recently deleted inodes on
 * every mkdir). A finished attempt's folder is emptied down to workspace/
 * and outputs/ and parked in DATA/work/.pool (at most WORKDIR_POOL_MAX);
 * the next attempt renames one into place. A folder that cannot be
 * emptied is removed instead. Removal never follows a symbolic link nor
 * crosses into another file system (fs_rmtree).
 *
 * The inputs/ folder is the worker's own and may be large (a fan-in over
 * 100,000 instances is 100,000 folders; removing them takes seconds), so
 * it is renamed aside into DATA/work/.trash and removed on libuv's thread
 * pool, not on the loop.
 *
 * Loop thread only. Paths are borrowed for the call.
 */
#ifndef CAIRN_WORKDIR_H
#define CAIRN_WORKDIR_H

#include <uv.h>

#define WORKDIR_POOL_MAX 64

struct workdir_pool;

/* At worker start: DATA/work and DATA/bundles emptied (what an earlier run
 * left there is over: its containers were reaped), DATA/work/.pool,
 * DATA/work/.trash and DATA/runc made. Failures are logged; the worker goes
 * on (an attempt that cannot get its folder fails on its own). */
void workdir_prepare(const char *data_dir);

/* A pool for DATA/work/.pool, removing inputs folders on loop's thread
 * pool; *out is set (allocation aborts on failure). */
void workdir_pool_new(struct workdir_pool **out, const char *data_dir, uv_loop_t *loop);
/* Frees the pool's memory, once the loop has run its last removal (uv_run
 * returned); the parked folders stay (workdir_prepare removes them at the
 * next start). NULL is a no-op. */
void workdir_pool_free(struct workdir_pool *p);

/* Make path (DATA/work/LEASE) a work folder with empty workspace/ and
 * outputs/: a parked one renamed into place, else new. */
void workdir_take(struct workdir_pool *p, const char *path);
/* The attempt at path is over: park its folder, emptied, or remove it. */
void workdir_give(struct workdir_pool *p, const char *path);

#endif
