/* artifact_int.h - what the artifact store's backends share (prefix: art__).
 *
 * Private to common/artifact*.c: the operations table each backend fills,
 * the store object the public functions in artifact.c dispatch on, and the
 * helpers (messages, hashing, reading) both backends use. Callers of the
 * store include artifact.h only.
 */
#ifndef CAIRN_ARTIFACT_INT_H
#define CAIRN_ARTIFACT_INT_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "artifact.h"

#define ART_BUF_SIZE ((size_t)1 << 20) /* one read: 1 MiB */

struct art_ops {
    /* Store the bytes read from fd (a regular file, at offset 0); name is
     * for messages. Outputs as art_put_file. */
    int (*put_fd)(struct art_store *s, int fd, const char *name, char hex[ART_HEX_LEN + 1],
                  int64_t *size, char **uri_out, char *err, size_t errlen);
    char *(*blob_uri)(const struct art_store *s, const char *hex); /* malloc'd */
    int (*blob_path)(struct art_store *s, const char *hex, char **path_out);
    int (*stat)(struct art_store *s, const char *hex, int64_t *size, char *err, size_t errlen);
    int (*verify)(struct art_store *s, const char *hex, char *err, size_t errlen);
    int (*fetch)(struct art_store *s, const char *hex, const char *dest, unsigned flags, char *err,
                 size_t errlen);
    int (*gc)(struct art_store *s, const char *const *keep, size_t nkeep, int64_t min_age_s,
              bool dry, struct art_gc_stats *st, char *err, size_t errlen);
    void (*close)(struct art_store *s); /* frees be; may be NULL */
};

struct art_store {
    const struct art_ops *ops;
    char *uri;   /* "file:///abs/root", "s3://bucket/prefix?..." */
    char *root;  /* file: canonical absolute path of the folder */
    char *blobs; /* file: ROOT/blobs/sha256 */
    char *tmp;   /* file: ROOT/tmp */
    void *be;    /* the backend's own state (s3: struct art_s3) */
};

/* The S3 backend: its settings and credentials, immutable once open. */
struct art_s3 {
    char *endpoint; /* "http(s)://host[:port]", no trailing slash */
    char *region;
    bool path_style;
    char *bucket;
    char *prefix;   /* "" or "a/b" (no leading or trailing slash) */
    char *blob_dir; /* "PREFIX/blobs/sha256/" or "blobs/sha256/" */
    char *base;     /* URL up to the key: ".../BUCKET/" or "...BUCKET.host/" */
    char *sigv4;    /* "aws:amz:REGION:s3" */
    char *access_key, *secret_key, *session_token;
};

/* Open "s3://..." into *out (artifact_s3open.c). */
int art__s3_open(struct art_store **out, const char *uri, const struct art_open_opts *o, char *err,
                 size_t errlen);
void art__s3_free(struct art_s3 *b);     /* NULL is a no-op; wipes the secret */
extern const struct art_ops art__s3_ops; /* the requests (artifact_s3.c) */

void art__msg(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* errno e as a CAIRN_E* code, "what path: strerror" as the message. */
int art__sys(char *err, size_t errlen, int e, const char *what, const char *path);
int art__check_regular(int fd, const char *shown, char *err, size_t errlen);
ssize_t art__read_full(int fd, unsigned char *buf, size_t n);
int art__hash_new(EVP_MD_CTX **out, unsigned char **buf, char *err, size_t errlen);
int art__hash_final(EVP_MD_CTX *ctx, char out[ART_HEX_LEN + 1], char *err, size_t errlen);
/* Hash fd from its current offset to the end. */
int art__hash_fd(int fd, const char *name, char out[ART_HEX_LEN + 1], int64_t *size, char *err,
                 size_t errlen);
/* "artifact HEX is corrupt: its content hashes to GOT"; CAIRN_EPROTO. */
int art__mismatch(const char *hex, const char *got, char *err, size_t errlen);
/* bsearch comparator of a digest against a sorted keep list. */
int art__cmp_keep(const void *key, const void *elem);

#endif
