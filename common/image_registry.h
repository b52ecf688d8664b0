/* image_registry.h - an OCI distribution API client (prefix: imgreg_).
 *
 * Talks to one repository of one registry over HTTPS (libcurl, the
 * system's CA bundle or --registry-ca FILE), or plain HTTP for a registry
 * listed with --insecure-registry HOST:PORT. Authentication as registries
 * do it: a request answered 401 with `WWW-Authenticate: Bearer realm=…,
 * service=…` gets a token from the realm (with the user's basic
 * credentials when there are some) for scope repository:REPO:pull and is
 * sent again with it; `WWW-Authenticate: Basic` is answered with the
 * credentials. Credentials come from a Docker-style config.json
 * (--registry-auth FILE): {"auths": {"HOST[:PORT]": {"auth": base64(user:pass)}}}
 * or {"username", "password"}; docker.io is also found under
 * "https://index.docker.io/v1/". Errors name the registry:
 * "registry 127.0.0.1:5000 refused the credentials for test/img (HTTP 401)".
 * docker.io is reached at registry-1.docker.io.
 *
 * Not thread-safe per struct imgreg; use one per thread.
 */
#ifndef CAIRN_IMAGE_REGISTRY_H
#define CAIRN_IMAGE_REGISTRY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "image_blob.h"
#include "util.h"

/* Borrowed. */
struct imgreg_opts {
    const char *auth_file;       /* config.json, or NULL */
    const char *ca_file;         /* CA bundle, or NULL for the system's */
    const char *const *insecure; /* HOST:PORT reached over plain HTTP */
    size_t ninsecure;
    long timeout_s; /* whole-request limit; 0 = none, but a stall of 60 s fails */
    /* when set and nonzero, requests in flight stop within about a second
     * (CAIRN_ENET, "... cancelled"): another thread asks this one to give up */
    const atomic_int *cancel;
};

struct imgreg;

/* progress: called with the bytes of the blob received so far. */
typedef void imgreg_progress_cb(void *ud, int64_t bytes);

int imgreg_open(struct imgreg **out, const struct imgreg_opts *o, const char *registry,
                const char *repo, char *err, size_t errlen);
void imgreg_close(struct imgreg *r);

/* GET /v2/REPO/manifests/REF (a tag or a digest), accepting OCI and Docker
 * v2 manifests and indexes. *body (malloc'd, NUL-terminated) and
 * *media_type (malloc'd) are set on success; digest gets "sha256:HEX" of
 * the body. A REF that is a digest must match the body's, else
 * CAIRN_EPROTO. CAIRN_ENOENT for 404 ("manifest unknown"). */
int imgreg_manifest(struct imgreg *r, const char *ref, char **body, size_t *len, char **media_type,
                    char digest[72], char *err, size_t errlen);

/* GET /v2/REPO/blobs/DIGEST into w (verification is w's commit). */
int imgreg_blob(struct imgreg *r, const char *digest, struct imgblob_writer *w,
                imgreg_progress_cb *progress, void *ud, char *err, size_t errlen);

#endif
