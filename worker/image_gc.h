/* image_gc.h - keep the worker's images within --image-cache-size (prefix: imggc_).
 *
 * What counts: every unpacked image (DIR/HEX, its disk usage measured once
 * when it was unpacked, in DIR/HEX/size) and every blob (DIR/blobs). When
 * the sum is above the limit, blobs that no unpacked image names (its
 * DIR/HEX/manifest.json: the manifest, config and layers) go first; then the
 * least recently used image (DIR/HEX's modification time, touched at every
 * use) that no task uses, with the blobs only it named, and so on until the
 * sum fits or nothing more may go. An image is in use while an attempt
 * holds a shared flock on DIR/locks/HEX.lock (image_prepare takes it; the
 * attempt keeps it until it ends); the collector takes that lock
 * exclusively without waiting and skips the image if it cannot. Pulls hold
 * DIR/gc.lock shared; the collector runs only if it gets it exclusively at
 * once (else the next pull collects).
 */
#ifndef CAIRN_IMAGE_GC_H
#define CAIRN_IMAGE_GC_H

#include <stdint.h>

/* Collect DIR down to limit bytes; returns the bytes removed (logged as
 * CAIRN-IMAGE-GC). */
int64_t imggc_collect(const char *dir, int64_t limit);

/* Disk usage of the tree at path (st_blocks), for DIR/HEX/size. */
int64_t imggc_du(const char *path);

#endif
