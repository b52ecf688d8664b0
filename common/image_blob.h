/* image_blob.h - the worker's content-addressed image blobs (prefix: imgblob_).
 *
 * Layers, configs and manifests of pulled images live under
 * STATE/images/blobs/sha256/HEX, named by their digest and shared between
 * images. A blob is written through a struct imgblob_writer: bytes go to a
 * temporary file while SHA-256 is computed, and only a blob whose digest
 * (and size, when known) is the expected one is renamed into place; any
 * other is deleted and refused ("blob sha256:ab… has digest sha256:cd…").
 * So a blob under its name is always complete and correct, even after the
 * worker was killed mid-write. Thread-safe: writers share nothing.
 */
#ifndef CAIRN_IMAGE_BLOB_H
#define CAIRN_IMAGE_BLOB_H

#include <stddef.h>
#include <stdint.h>

struct imgblob_writer;

/* STATE/images/blobs/sha256/HEX for digest "sha256:HEX"; malloc'd. */
char *imgblob_path(const char *images_dir, const char *digest);
/* 1 when the blob is there (its name is its proof). */
int imgblob_has(const char *images_dir, const char *digest);

/* Start writing the blob digest (size -1 = unknown). *out on success. */
int imgblob_writer_open(struct imgblob_writer **out, const char *images_dir, const char *digest,
                        int64_t size, char *err, size_t errlen);
/* Append bytes. 0 or CAIRN_EIO/CAIRN_EFULL (message in err). */
int imgblob_writer_write(struct imgblob_writer *w, const void *buf, size_t n, char *err,
                         size_t errlen);
/* Bytes written so far. */
int64_t imgblob_writer_bytes(const struct imgblob_writer *w);
/* Verify and rename into place; frees w whatever happens. CAIRN_EPROTO with
 * a message naming both digests on a mismatch. */
int imgblob_writer_commit(struct imgblob_writer *w, char *err, size_t errlen);
/* Drop the temporary file; NULL is a no-op. */
void imgblob_writer_abort(struct imgblob_writer *w);

/* Copy the file at path into the store as blob digest, verified. */
int imgblob_import_file(const char *images_dir, const char *path, const char *digest, char *err,
                        size_t errlen);

#endif
