/* codetree.h - a run's code snapshot built into a folder (prefix: codetree_).
 *
 * A lease with code_tree names a tree manifest in the artifact store
 * (scheduler/codesnap.h has its format). The worker builds the folder it
 * describes once, under DATA/code/<digest>, from blobs got like inputs
 * (from the store itself, or through the scheduler's API into the blob
 * cache: xfer.h), each checked against its digest: plain files are hard
 * links to the blob where possible (read-only, 0444), files with an exec
 * bit are copies made 0555, folders 0555. The folder is made under a
 * temporary name and renamed into place whole, so a half-built tree is
 * never used; two attempts building the same tree at once both succeed.
 * Paths in the manifest must be relative, without "." or ".." parts
 * (a manifest that breaks this is refused). Blocking: call it from libuv's
 * thread pool (inputs.c does).
 */
#ifndef CAIRN_CODETREE_H
#define CAIRN_CODETREE_H

#include <stdbool.h>
#include <stddef.h>

#include "artifact.h"
#include "xfer.h"

/* Build (or find) the tree digest under root (DATA/code); *path_out gets
 * its folder (malloc'd). store is the scheduler's store, or with remote the
 * blob cache. *unavailable is set when a blob could not be reached. 0 or a
 * CAIRN_E* code with err set. */
int codetree_get(struct art_store *store, const struct xfer_remote *remote, const char *digest,
                 const char *root, char **path_out, bool *unavailable, char *err, size_t errlen);

#endif
