/* fs.h - file system helpers every module shares (prefix: fs_).
 *
 * One home for what used to be written per module: reading a whole file,
 * mkdir -p, rm -rf, and copying sparse files as sparse. Errors are CAIRN_E* codes through cairn_from_errno
 * (err.h), with errno left as the failing call set it.
 */
#ifndef CAIRN_FS_H
#define CAIRN_FS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Read a whole regular file (or anything read(2) ends) into *out, a malloc'd
 * buffer with a NUL after its *len bytes; at most max bytes (0 = no limit).
 * *out and *len are set only on success. Errors: CAIRN_ENOENT, CAIRN_ERANGE
 * (larger than max), CAIRN_EIO etc. from errno. */
int fs_read_all(const char *path, size_t max, char **out, size_t *len);

/* mkdir -p with mode for every folder it creates (existing ones are left as
 * they are). 0, or a code with errno set. */
int fs_mkdirs_mode(const char *path, mode_t mode);
/* fs_mkdirs_mode(path, 0755); 0 or -1 with errno set (kept for callers
 * that test against -1). */
int fs_mkdirs(const char *path);

/* rm -rf: removes path and everything below it without following symbolic
 * links and without crossing into another file system (a bind mount left
 * inside is not emptied). A missing path is success. Returns 0 or the code
 * of the first entry that could not be removed (the walk goes on). */
int fs_rmtree(const char *path);

/* Remove everything below the folder path but keep the folder itself, with
 * the same rules as fs_rmtree. 0 only if the folder is now empty. */
int fs_empty_dir(const char *path);

/* Sparse files, for a copy that keeps holes as holes (and so does not
 * take a sparse file's whole length on disk). fs_pread_sparse reads up to n
 * bytes at off into buf, fewer only at the end of the file; a hole
 * (SEEK_DATA/SEEK_HOLE, where the file system tells) is not read but
 * filled with zeros. fs_pwrite_sparse writes n bytes at off but leaves
 * every whole 4 KiB block of zeros out (a hole), so the writer must set
 * the length at the end (ftruncate); off and the size of each chunk but the
 * last should be multiples of 4 KiB. They return the count / 0, or -1 with
 * errno set. */
ssize_t fs_pread_sparse(int fd, unsigned char *buf, size_t n, int64_t off);
int fs_pwrite_sparse(int fd, const unsigned char *buf, size_t n, int64_t off);

#endif
