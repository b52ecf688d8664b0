/* xfer.h - artifacts through the scheduler's HTTP API (prefix: xfer_).
 *
 * For a worker that does not see the artifact store itself (link.h,
 * link_artifacts_direct): inputs are downloaded into the worker's blob
 * cache, outputs uploaded from it, over the scheduler's blob routes
 * (scheduler/api_blobs.h), with the lease's credential. libcurl, blocking:
 * call these from libuv's thread pool (inputs.c, outputs.c do).
 *
 * The cache (DATA/blob-cache) is a file store of artifact.h's layout:
 * CACHE/blobs/sha256/ab/cdef... (0444), CACHE/tmp/. A blob is downloaded to
 * CACHE/tmp/<sha>.part (hashed as it arrives, never held in memory), checked
 * against its digest, then renamed into place; a .part left by a failed
 * download is resumed (Range: bytes=N-) after hashing what it holds. Two
 * downloads of one blob take turns (a lock on the .part file). An upload
 * goes in chunks of XFER_CHUNK bytes from the file (one chunk in memory),
 * resumes at the offset the scheduler reports, and is committed with its
 * digest and size, which the scheduler checks; a blob the store already
 * has is not sent at all.
 *
 * Errors: CAIRN_ENET (the API cannot be reached, or the transfer broke,
 * for patience_ms after the first failure), CAIRN_EAUTH (401/403: the credential or the blob is
 * refused), CAIRN_ENOENT (404), CAIRN_EPROTO (a digest mismatch, either
 * side), CAIRN_EFULL, CAIRN_EIO; err says which and why.
 */
#ifndef CAIRN_XFER_H
#define CAIRN_XFER_H

#include <stddef.h>
#include <stdint.h>

#include "artifact.h"

#define XFER_CHUNK ((size_t)4 * 1024 * 1024)


/* Borrowed for the call. */
struct xfer_remote {
    const char *api;     /* "http://host:port" or "https://...", no trailing slash */
    const char *ca_file; /* CA bundle for https, or NULL (the system's) */
    int64_t lease_id;
    const char *token; /* the lease's xfer_token */
    const char *cache; /* the cache's root folder (an artifact.h file store) */
    /* How long network errors (and 5xx) are tried again after the first,
     * with pauses of 0.25 s growing to 4 s: the lease's TTL, so an outage
     * the lease outlives (a link cut for a while, the scheduler restarting)
     * costs the attempt nothing. 0: a few tries only. */
    int64_t patience_ms;
    int64_t cache_size; /* --blob-cache-size (blobcache.h): trimmed above it; 0: never */
};

/* Make blob sha present in the cache (a no-op if it is). 0 or an error. */
int xfer_get(const struct xfer_remote *r, const char *sha, char *err, size_t errlen);

/* Send the regular file at path (the cache's copy of an output: its digest
 * sha and size are known) to the scheduler's store; *uri_out gets the blob's
 * URI there (malloc'd). 0 or an error. */
int xfer_put(const struct xfer_remote *r, const char *path, const char *sha, int64_t size,
             char **uri_out, char *err, size_t errlen);

/* Once per process, before any thread uses curl (curl_global_init). */
void xfer_global_init(void);

/* The worker is stopping: transfers waiting to try again give up at once
 * (any thread). */
void xfer_stop(void);

#endif
