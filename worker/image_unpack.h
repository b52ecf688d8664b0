/* image_unpack.h - apply image layers to a root filesystem (prefix: imgunpack_).
 *
 * A layer is a tar archive (plain, gzip or zstd: libarchive finds out)
 * applied over the layers below it, with the OCI image spec's rules:
 * "DIR/.wh.NAME" deletes NAME of the lower layers, "DIR/.wh..wh..opq"
 * empties DIR of the lower layers' entries; whiteout files themselves are
 * never written. Regular files, folders, symbolic and hard links, devices
 * and FIFOs keep their permissions, owners (when running as root), times
 * and extended attributes. Entries with ".." or an absolute path, and
 * writes through a symbolic link, are refused (libarchive's SECURE_*
 * flags), so a layer cannot write outside the rootfs.
 *
 * The layer file is read twice: the first pass applies its whiteouts (they
 * concern lower layers only), the second extracts its entries.
 */
#ifndef CAIRN_IMAGE_UNPACK_H
#define CAIRN_IMAGE_UNPACK_H

#include <stddef.h>

/* Apply the layer file layer_path to the folder rootfs (which exists).
 * 0, or CAIRN_EIO/CAIRN_EPARSE with a message naming the entry. */
int imgunpack_layer(const char *rootfs, const char *layer_path, char *err, size_t errlen);

#endif
