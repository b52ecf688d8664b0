/* image.h - container images on the worker (prefix: image_).
 *
 * image_prepare makes an image reference (imgref.h: oci:/layout[:TAG] or a
 * registry reference) into a read-only root filesystem and its config:
 *
 *   DIR/blobs/sha256/HEX     every manifest, config and layer, by digest,
 *                            verified while written (image_blob.h)
 *   DIR/HEX/rootfs           the unpacked layers of the platform manifest HEX
 *   DIR/HEX/config.json      that image's config blob
 *   DIR/HEX/manifest.json    its manifest; DIR/HEX/top the digest its reference
 *                            named (an index's); DIR/HEX/size its disk usage
 *   DIR/tmp/, DIR/locks/     unpacking in progress, one lock file per image
 *
 * An index picks the manifest of the worker's platform (linux and its
 * architecture: amd64, arm64, ...). The layers are unpacked below DIR/tmp
 * and the folder is renamed to DIR/HEX only when all of them are in, so a
 * worker killed mid-pull leaves nothing that is later taken for complete
 * (DIR/tmp is emptied when the worker starts). Tasks needing the same image
 * at once pull it once: the others wait on its lock file (flock, so this
 * holds between threads and between workers sharing DIR).
 *
 * image_prepare runs on a thread of libuv's pool; log_cb is called on that
 * thread.
 */
#ifndef CAIRN_IMAGE_H
#define CAIRN_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "image_registry.h"

/* Borrowed. */
struct image_opts {
    const char *dir;        /* DIR: STATE/images */
    struct imgreg_opts reg; /* registry access */
    int64_t cache_size;     /* --image-cache-size: collect above it (image_gc.h); 0 = never */
};

/* What an image gives a task. */
struct image_info {
    char *digest;   /* the digest the reference resolved to (an index's or a manifest's) */
    char *manifest; /* the platform manifest's digest (names the rootfs) */
    char *rootfs;   /* DIR/HEX/rootfs */
    char **env;     /* the config's Env, "K=V", NULL-terminated */
    char **entrypoint;
    char **cmd;
    char *workdir; /* or NULL */
    char *user;    /* or NULL */
    int64_t bytes_pulled;
    int lock_fd; /* a shared flock on the image's lock: "in use" until cleared */
};

typedef void image_log_cb(void *ud, const char *line);

/* The image at ref, pulled and unpacked if it is not yet, then the cache
 * collected down to o->cache_size (never the image of a running task).
 * 0, or a code with a message that names the registry or layout. out
 * holds the image in use (lock_fd) until image_info_clear. */
int image_prepare(const struct image_opts *o, const char *ref, image_log_cb *log_cb, void *ud,
                  struct image_info *out, char *err, size_t errlen);
void image_info_clear(struct image_info *info);

/* The image known (what image_prepare gave for a digest-pinned registry
 * reference, which always names the same image) in use again, without
 * reading a manifest or the config: its shared lock taken without waiting,
 * its folder checked and touched (the LRU, to the second), no collection (nothing was
 * added). Cheap enough for the loop thread. 0 with out filled (lock_fd
 * its own, bytes_pulled 0), or -1 when that cannot be had at once (the
 * image is gone, or the collector or an unpack holds its lock): then
 * image_prepare it. */
int image_reuse(const struct image_opts *o, const struct image_info *known, struct image_info *out);
/* A copy of from's strings in to (lock_fd -1, bytes_pulled 0). */
void image_info_copy(const struct image_info *from, struct image_info *to);

/* Resolve ref to the digest it names now (a manifest fetch; no blobs). */
int image_resolve(const struct image_opts *o, const char *ref, char digest[72], char *err,
                  size_t errlen);

/* The worker's architecture as OCI names it ("amd64", "arm64", ...). */
const char *image_arch(void);

/* Remove leftovers of interrupted unpacks (DIR/tmp). */
void image_cleanup_tmp(const char *dir);

#endif
