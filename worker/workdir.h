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
 * Loop thread only. Paths are borrowed for the call.
 */
#ifndef CAIRN_WORKDIR_H
#define CAIRN_WORKDIR_H

#define WORKDIR_POOL_MAX 64

struct workdir_pool;

/* At worker start: DATA/work and DATA/bundles emptied (what an earlier run
 * left there is over: its containers were reaped), DATA/work/.pool and
 * DATA/runc made. Failures are logged; the worker goes on (an attempt that
 * cannot get its folder fails on its own). */
void workdir_prepare(const char *data_dir);

/* A pool for DATA/work/.pool; *out is set (allocation aborts on failure). */
void workdir_pool_new(struct workdir_pool **out, const char *data_dir);
/* Frees the pool's memory; the parked folders stay (workdir_prepare
 * removes them at the next start). NULL is a no-op. */
void workdir_pool_free(struct workdir_pool *p);

/* Make path (DATA/work/LEASE) a work folder with empty workspace/ and
 * outputs/: a parked one renamed into place, else new. */
void workdir_take(struct workdir_pool *p, const char *path);
/* The attempt at path is over: park its folder, emptied, or remove it. */
void workdir_give(struct workdir_pool *p, const char *path);

#endif
