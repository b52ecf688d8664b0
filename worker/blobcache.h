/* blobcache.h - keep the worker's blob cache within --blob-cache-size
 * (prefix: blobcache_).
 *
 * The cache (DATA/blob-cache, xfer.h) holds the blobs a worker that does
 * not see the artifact store got or sent through the scheduler's API.
 * What counts is the blobs' bytes (ROOT/blobs/sha256/..., st_size; .part
 * files of broken downloads are not counted). When the sum is above the
 * limit, the least recently used blobs go first (a blob's modification
 * time: set when it arrives and at every use from the cache) until it
 * fits. Nothing in use is removed: a transfer (an attempt fetching its
 * inputs or code, or storing and sending its outputs) holds ROOT/gc.lock
 * shared from its first blob to its last; the trim runs only if it gets
 * that lock exclusively at once, else the next transfer to end trims.
 * A running task's inputs are its own hard links (or copies) of the blobs,
 * so removing a blob from the cache does not touch them.
 */
#ifndef CAIRN_BLOBCACHE_H
#define CAIRN_BLOBCACHE_H

#include <stdint.h>

/* The default limit, 10 GiB. */
#define BLOBCACHE_DEFAULT_SIZE ((int64_t)10 << 30)

/* Hold the cache at root (shared): the blobs stay. Returns the lock's fd
 * (or -1: no lock, and nothing is trimmed meanwhile either) for
 * blobcache_release. Any thread. */
int blobcache_hold(const char *root);
void blobcache_release(int fd);

/* Remove the least recently used blobs of the cache at root until they
 * take at most limit bytes (limit <= 0: never). Returns the bytes removed
 * (logged as CAIRN-BLOB-CACHE), 0 when nothing had to go, -1 when a
 * transfer holds the cache (nothing done). Any thread; blocking (call it
 * from the thread pool). */
int64_t blobcache_trim(const char *root, int64_t limit);

/* Mark the blob at path used now (its modification time). */
void blobcache_touch(const char *path);

#endif
