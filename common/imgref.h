/* imgref.h - image references as a task's `image:` names them (prefix: imgref_).
 *
 * Four forms:
 *   host                      the host's root, read-only
 *   /abs/path                 a root filesystem folder, read-only
 *   oci:/abs/layout[:TAG]     a local OCI image layout (index.json, blobs/);
 *                             without TAG the layout must hold one manifest
 *   [REGISTRY[:PORT]/]REPO[:TAG][@sha256:HEX64]
 *                             an image in a registry (OCI distribution API)
 *
 * Registry references follow Docker's rules: the first path component is a
 * registry when it contains '.' or ':' or is "localhost"; otherwise the
 * registry is docker.io, and a one-component repository on docker.io gets
 * "library/" in front ("python" is docker.io/library/python).
 * "index.docker.io" is written docker.io. Without a tag and a digest the tag
 * is "latest"; with a digest alone there is no tag. Repository components
 * are lowercase [a-z0-9] separated by '.', '_', "__" or runs of '-'; a tag
 * is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}; the digest is sha256 with 64
 * lowercase hex digits. The bare word "host" is always the host image: Docker
 * Hub's library/host must be written docker.io/library/host.
 *
 * Errors: CAIRN_EPARSE, with a message for end users that names the input
 * and the part at fault. Strings in a struct imgref are owned by it.
 */
#ifndef CAIRN_IMGREF_H
#define CAIRN_IMGREF_H

#include <stddef.h>

enum imgref_kind {
    IMGREF_HOST,
    IMGREF_ROOTFS,
    IMGREF_OCI,
    IMGREF_REGISTRY,
};

#define IMGREF_DEFAULT_REGISTRY "docker.io"

struct imgref {
    enum imgref_kind kind;
    char *path;     /* ROOTFS: the folder; OCI: the layout folder */
    char *registry; /* REGISTRY: "docker.io", "127.0.0.1:5000", ... */
    char *repo;     /* REGISTRY: "library/python", "ml/train" */
    char *tag;      /* REGISTRY/OCI: the tag, or NULL (digest only / sole manifest) */
    char *digest;   /* REGISTRY: "sha256:<hex>" or NULL */
};

/* Parse s into *out (zeroed first; filled only on success). Returns 0,
 * CAIRN_EPARSE with a message, or CAIRN_ENOMEM. */
int imgref_parse(const char *s, struct imgref *out, char *err, size_t errlen);
/* Free the strings of r and zero it; NULL is a no-op. */
void imgref_clear(struct imgref *r);
/* The canonical text: "host", the path, "oci:PATH[:TAG]",
 * "REGISTRY/REPO[:TAG][@DIGEST]". Returns a malloc'd string or NULL. */
char *imgref_format(const struct imgref *r);
/* True for a well-formed "sha256:<64 lowercase hex>". */
int imgref_digest_ok(const char *d);
/* Convenience: 1 when s parses as a registry or oci: reference (an image
 * the worker pulls or reads from a layout), else 0. */
int imgref_is_pulled(const char *s);

#endif
