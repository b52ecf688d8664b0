/* imagepin.h - a run's images pinned to digests (prefix: imagepin_).
 *
 * When a run is created, each distinct registry reference its tasks name
 * with a tag is resolved to a manifest digest once, by the scheduler
 * itself (one manifest request over the OCI distribution API, no blobs),
 * and kept in the run's record ({reference: digest}). The requests go to
 * libuv's thread pool, never the loop: meanwhile the run is queued and
 * "pinning" (its record says so; none of its tasks is ready or leased, and
 * later runs of its DAG wait behind it, oldest first), and everything else
 * goes on. At most 2 tags are resolved at once; runs asking for a tag that
 * is still queued share its answer. Every lease of the
 * run then names REGISTRY/REPO:TAG@DIGEST, so all its tasks, their retries
 * and cleared tasks run the same image even if the tag moves mid-run; the
 * digest is each task instance's image_digest and part of its step cache
 * key. A reference with a digest is pinned to it without a request. A tag
 * that cannot be resolved (registry down, credentials the scheduler does
 * not have) is logged (CAIRN-IMAGE-PIN) and left to the workers, which
 * resolve it when they pull; that run is then not pinned for that image.
 * oci: layouts live on the workers and are not pinned.
 *
 * Each request is bounded by the registry options' timeout_s (the
 * scheduler's --pin-timeout, default 10 s). A run recovered or reloaded
 * while its record says pinning is pinned again.
 */
#ifndef CAIRN_IMAGEPIN_H
#define CAIRN_IMAGEPIN_H

#include "core.h"

/* Pin the run's images: digests at once (r->images), tags on the thread
 * pool (r->pinning counts those outstanding; when the last is answered the
 * run's record is committed and its DAG's runs are admitted). */
void imagepin_run(struct sched *s, struct sched_run *r);
/* The engine stops: requests in flight give up (within about a second).
 * Returns how many are still on the thread pool; each one's completion
 * decrements s->closing_handles. */
int imagepin_stop(struct sched *s);
/* Free what is queued (after the loop ended). */
void imagepin_free(struct sched *s);
/* The digest image is pinned to in run r, or NULL. */
const char *imagepin_digest(const struct sched_run *r, const char *image);
/* What a lease names: "REGISTRY/REPO:TAG@DIGEST" (malloc'd) when pinned,
 * else NULL (use image as it is). */
char *imagepin_lease_ref(const struct sched_run *r, const char *image);
/* A fingerprint of the host's installed software for `image: host` cache
 * keys: SHA-256 (hex) of /var/lib/dpkg/status and /etc/os-release (files
 * that are missing count as empty). Recomputed when either file's size or
 * modification time changes. */
const char *imagepin_host_fingerprint(void);

#endif
