/* artifact.h - content-addressed artifact store (prefix: art_).
 *
 * After a successful attempt the worker stores each declared output here;
 * the scheduler records a pointer {name, uri, sha256, size}; downstream
 * tasks get their inputs back from here, read-only, digest checked.
 *
 * Blobs are addressed by the SHA-256 of their bytes (64 lowercase hex
 * characters) and stored once. The store sits behind one interface: the
 * functions below dispatch on the scheme art_open was given: "file" (a local
 * folder, or a shared one such as NFS for several machines, artifact.c) or
 * "s3" (an S3-compatible object store, artifact_s3.c; see below).
 *
 * Layout of a file store at ROOT:
 *
 *   ROOT/blobs/sha256/ab/cdef...   one blob, named by its digest ("ab" are the
 *                                  first two hex characters, the file name
 *                                  the other 62), mode 0444, never rewritten
 *   ROOT/tmp/                      files being written; a crash may leave one
 *                                  behind, it never becomes a blob, art_gc
 *                                  removes it once it is old enough
 *
 * A blob's URI is "file://" followed by its absolute path, verbatim (no
 * percent-encoding): "file:///data/artifacts/blobs/sha256/ab/cdef...".
 *
 * Layout of an S3 store at s3://BUCKET/PREFIX: the same names as keys,
 * PREFIX/blobs/sha256/ab/cdef... (PREFIX may be empty); a blob's URI is
 * "s3://BUCKET/PREFIX/blobs/sha256/ab/cdef...". A put hashes the file first,
 * skips the upload when the key exists with the same size (and refreshes its
 * age by copying it onto itself), else uploads it with one PUT up to 16 MiB
 * and as a multipart upload of 16 MiB parts above, four at a time, each read
 * from the file as it is sent (bounded memory). A single PUT hashes again on
 * the way; a multipart upload checks the file's size and change times before
 * completing: a file that changed meanwhile is not stored under the wrong
 * name. A fetch downloads into a
 * temporary file next to the destination while hashing and renames it only
 * when the digest matches (always checked, whatever the flags). Requests are
 * signed with AWS Signature V4 by libcurl. gc lists the blob keys and deletes
 * the unreferenced ones older than min_age (by their LastModified); an
 * upload that a crash interrupts stays as an incomplete multipart upload,
 * which a bucket lifecycle rule (AbortIncompleteMultipartUpload) removes.
 * art_blob_path has no local file to give: CAIRN_EINVAL.
 *
 * Concurrency and crashes: a put copies into ROOT/tmp while hashing, fsyncs,
 * and renames into place, so a blob is always whole; two writers of the same
 * content (threads, processes, machines sharing the folder) race harmlessly
 * (the rename is atomic and both have the same bytes). A store object holds
 * no mutable state after art_open: any number of threads may use one.
 *
 * Errors (negative CAIRN_E* codes; the human message, where a function takes
 * err/errlen, goes there: it may be NULL/0):
 *   CAIRN_EINVAL  bad digest hex, relative store path, unknown URI scheme,
 *                 a relative output path with ".." or a symbolic link, an
 *                 output that is not a regular file, an unsorted keep list
 *   CAIRN_ENOENT  the file or blob does not exist
 *   CAIRN_EFULL   no space (ENOSPC/EDQUOT) while writing; the temporary file
 *                 is removed, nothing is half-stored
 *   CAIRN_EPROTO  a blob's content does not hash to its name (corrupt)
 *   CAIRN_ENOMEM  the 1 MiB I/O buffer or the hash context cannot be had
 *   CAIRN_EIO     any other system error (the message names the call, the
 *                 path and strerror)
 */
#ifndef CAIRN_ARTIFACT_H
#define CAIRN_ARTIFACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ART_HEX_LEN 64 /* characters in a digest, not counting the NUL */

struct art_store;

/* Open the store at "file:///abs/path" or "/abs/path", creating ROOT (and
 * its parents), ROOT/blobs/sha256 and ROOT/tmp if missing. The root is
 * canonicalised (realpath), so symbolic links in it are resolved once here.
 * Sets *out only on success. Errors: CAIRN_EINVAL (relative path, empty
 * path, "file://host/..." with a host, another scheme), CAIRN_EIO (cannot
 * create or resolve the folders; err says which and why). */
int art_open(struct art_store **out, const char *uri_or_path, char *err, size_t errlen);

/* Settings of a store that its URI does not carry (all may be NULL/-1:
 * the URI's query, then the environment, then the defaults apply). Only the
 * s3 backend reads them; a file store ignores them. Borrowed for the call.
 *
 * An S3 URI is "s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=0|1]".
 * endpoint: "http(s)://host[:port]" of an S3-compatible server (MinIO,
 *   s3rver); default $AWS_ENDPOINT_URL, else https://s3.REGION.amazonaws.com.
 * region: the SigV4 signing region; default $AWS_REGION, $AWS_DEFAULT_REGION,
 *   else us-east-1.
 * path_style: 1 puts the bucket in the path (http://host/BUCKET/KEY, as MinIO
 *   and s3rver need), 0 in the host name (https://BUCKET.host/KEY); default 1
 *   when an endpoint is given, else 0.
 * credentials_file: a file of "aws_access_key_id = ..." and
 *   "aws_secret_access_key = ..." lines (and optionally
 *   "aws_session_token = ..."; "#" comments and "[section]" lines are
 *   ignored), owned by this user and not readable by group or others (0600);
 *   without it, $AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY and
 *   $AWS_SESSION_TOKEN. The credentials stay in the store object: art_uri
 *   never shows them, nor does any message.
 * art_uri of an S3 store gives the settings that were used (endpoint, region,
 * path_style) in its query, so another process opening that URI with its own
 * credentials reaches the same store. */
struct art_open_opts {
    const char *endpoint;
    const char *region;
    int path_style; /* -1: unset */
    const char *credentials_file;
};

/* As art_open, with settings. o may be NULL. Errors as art_open, and for
 * s3: CAIRN_EINVAL (a malformed URI or setting, no credentials, a
 * credentials file with a bad mode or without both keys). Opening an S3
 * store does not contact the server. */
int art_open_with(struct art_store **out, const char *uri_or_path, const struct art_open_opts *o,
                  char *err, size_t errlen);

/* Free the store object (the folder stays). NULL is a no-op. */
void art_close(struct art_store *s);

/* The store's URI, "file:///abs/root". Borrowed: valid until art_close. */
const char *art_uri(const struct art_store *s);

/* Store the regular file at path: one read pass that hashes and copies into
 * ROOT/tmp, then fsync and an atomic rename into place, unless a blob with
 * that digest exists already (dedupe: the copy is dropped and the existing
 * blob's mtime is refreshed, so art_gc's min_age protects it until the
 * caller has recorded its pointer). Files under 1 MiB are read whole first
 * and, when already stored, never copied. A file's holes are not read and
 * its blocks (4 KiB) of zeros are stored as holes (fs_pwrite_sparse), so a
 * sparse file (`truncate -s 3G`) takes its data's room in the store, not
 * its length; the digest is that of its content. A copy out of the store
 * (art_fetch) is sparse too.
 *
 * The last component of path must not be a symbolic link (O_NOFOLLOW) and
 * must be a regular file: CAIRN_EINVAL otherwise, with a message saying
 * what it is. (Use art_put_file_at to refuse links in every component.)
 *
 * On success: sha256_hex gets the digest (NUL-terminated), *size the byte
 * count (size may be NULL), *uri_out a malloc'd blob URI the caller frees
 * (uri_out may be NULL). On failure the outputs are untouched.
 * Errors: CAIRN_ENOENT (no such file), CAIRN_EINVAL, CAIRN_EFULL, CAIRN_EIO. */
int art_put_file(struct art_store *s, const char *path, char sha256_hex[ART_HEX_LEN + 1],
                 int64_t *size, char **uri_out, char *err, size_t errlen);

/* As art_put_file, for relpath inside the directory dirfd (a task's
 * /outputs folder), refusing to leave it: relpath must be relative, may not
 * contain "..", and no component may be a symbolic link (each is opened
 * with O_NOFOLLOW relative to the previous one), so an output pointing at
 * /etc/shadow, or at a folder that leads there, is refused (CAIRN_EINVAL).
 * dirfd is borrowed. */
int art_put_file_at(struct art_store *s, int dirfd, const char *relpath,
                    char sha256_hex[ART_HEX_LEN + 1], int64_t *size, char **uri_out, char *err,
                    size_t errlen);

/* The URI of blob sha256_hex (what art_put_file gives for it), malloc'd
 * into *uri_out; 0, or CAIRN_EINVAL for a malformed digest. Whether the
 * blob is stored is not checked. */
int art_blob_uri(struct art_store *s, const char *sha256_hex, char **uri_out);

/* The local path of a stored blob, malloc'd into *path_out (caller frees;
 * set only on success). Local stores only: a backend without local files
 * would answer CAIRN_EINVAL; use art_fetch to get a blob to a path.
 * Errors: CAIRN_EINVAL (bad hex), CAIRN_ENOENT (no such blob), CAIRN_EIO. */
int art_blob_path(struct art_store *s, const char *sha256_hex, char **path_out);

/* Whether blob sha256_hex is stored: 0 (and *size, which may be NULL, its
 * byte count), CAIRN_ENOENT, or CAIRN_EINVAL (bad hex) / CAIRN_EIO. A file
 * store looks at the file; an S3 store asks the server (a HEAD request: it
 * blocks for a round trip). */
int art_stat(struct art_store *s, const char *sha256_hex, int64_t *size, char *err,
             size_t errlen);

/* Re-hash a stored blob and compare with its name. Errors: CAIRN_EINVAL,
 * CAIRN_ENOENT, CAIRN_EIO, CAIRN_EPROTO with "artifact <hex> is corrupt:
 * its content hashes to <hex>". */
int art_verify(struct art_store *s, const char *sha256_hex, char *err, size_t errlen);

/* art_fetch flags */
#define ART_FETCH_VERIFY 0x1u /* hash the blob before linking it */
#define ART_FETCH_COPY 0x2u   /* copy even where a hard link would work */

/* Make blob sha256_hex available at dest_path, read-only (0444), for a
 * container to bind-mount: a hard link to the blob where possible (same
 * filesystem; cheap, shares the immutable inode), else a copy (EXDEV, EPERM
 * from protected_hardlinks, EMLINK, or ART_FETCH_COPY). A copy is always
 * checked against the digest while it is written; a link is checked first
 * only with ART_FETCH_VERIFY. dest_path appears whole or not at all (a copy
 * is written next to it and renamed; it is not fsynced: a fetched input
 * belongs to one attempt, which a crash ends anyway) and replaces an
 * existing file there. The folder of dest_path must exist.
 * Errors: CAIRN_EINVAL (bad hex, unknown flags), CAIRN_ENOENT (no such
 * blob, or dest's folder missing), CAIRN_EPROTO (digest mismatch: nothing is
 * left at dest_path), CAIRN_EFULL, CAIRN_EIO. */
int art_fetch(struct art_store *s, const char *sha256_hex, const char *dest_path, unsigned flags,
              char *err, size_t errlen);

struct art_gc_stats {
    size_t blobs_kept;    /* blobs left: referenced or younger than min_age */
    size_t blobs_removed; /* unreferenced blobs removed */
    int64_t blob_bytes;   /* sum of their sizes (space comes back once no
                             fetched hard link still shares the inode) */
    size_t tmp_removed;   /* stale temporary files removed */
    int64_t tmp_bytes;    /* sum of their sizes */
};

/* Remove every blob not named in keep whose mtime is at least min_age_s
 * seconds old, and every file in ROOT/tmp at least min_age_s old. keep
 * (borrowed) holds the digests still referenced, sorted by strcmp; an
 * unsorted list is refused (CAIRN_EINVAL) rather than risk removing a
 * referenced blob. min_age_s must cover the longest put (a temp file being
 * written) and the time between a put and the recording of its pointer;
 * blobs whose mtime is in the future are kept. Files in the store that are
 * not named like blobs are left alone, and so are the fan-out folders.
 *
 * Run it from the one process that knows every reference (the scheduler),
 * also for a shared store. On a shared store written by several users a
 * dedupe may fail to refresh a blob it does not own; the window is then the
 * one between the put and the recording of the pointer.
 *
 * stats (may be NULL) is filled even on failure, with what was done. An
 * entry that cannot be removed does not stop the sweep: the first such
 * failure is returned (CAIRN_EIO) after it. */
int art_gc(struct art_store *s, const char *const *keep, size_t nkeep, int64_t min_age_s,
           struct art_gc_stats *stats, char *err, size_t errlen);

/* What art_gc would do with the same arguments, counted in stats (the
 * "removed" fields: what would go), removing nothing. The store may change
 * between this and a later art_gc. Errors as art_gc. */
int art_gc_plan(struct art_store *s, const char *const *keep, size_t nkeep, int64_t min_age_s,
                struct art_gc_stats *stats, char *err, size_t errlen);

/* Incremental SHA-256, for bytes that pass through rather than sit in a
 * file: a blob being sent or received. new sets *out only on success
 * (CAIRN_ENOMEM otherwise); update returns 0 or CAIRN_EIO; final writes the
 * digest and (size may be NULL) the byte count, after which only free may be
 * called; free(NULL) is a no-op. */
struct art_hasher;
int art_hasher_new(struct art_hasher **out);
int art_hasher_update(struct art_hasher *h, const void *data, size_t n);
int art_hasher_final(struct art_hasher *h, char sha256_hex[ART_HEX_LEN + 1], int64_t *size);
void art_hasher_free(struct art_hasher *h);

/* Hash the file at path (symbolic links followed; it must be a regular
 * file). sha256_hex gets the digest, *size (size may be NULL) the byte count;
 * both only on success. Errors: CAIRN_ENOENT, CAIRN_EINVAL (not a regular
 * file), CAIRN_EIO. */
int art_hash_file(const char *path, char sha256_hex[ART_HEX_LEN + 1], int64_t *size, char *err,
                  size_t errlen);

/* True if hex is exactly 64 lowercase hexadecimal characters. */
bool art_hex_valid(const char *hex);

#endif
