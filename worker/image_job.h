/* image_job.h - an attempt's image, prepared on the thread pool, and what
 * its config does to the task (prefix: imgjob_).
 *
 * imgjob_start runs image_prepare (image.h) on libuv's thread pool and
 * calls done_cb on the loop thread with the image (or an error) and the
 * pull's progress lines for the task's log; imgjob_cached gives the image
 * of a pinned reference prepared before at once.
 *
 * The config applied to a task, as Docker does:
 *   argv   Entrypoint + the task's command (the command replaces Cmd); a
 *          task with an empty command list gets Entrypoint + Cmd
 *   env    the image's Env, then the task's env (the task wins)
 *   cwd    WorkingDir (it must exist in the image: the rootfs is read-only),
 *          else /workspace
 *   user   User: "uid", "uid:gid", "name" or "name:group", names looked up
 *          in the image's /etc/passwd and /etc/group
 */
#ifndef CAIRN_IMAGE_JOB_H
#define CAIRN_IMAGE_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "image.h"

/* info is the job's (taken by done_cb if it wants: it may move the fields
 * out and leave them NULL); log the progress text, error "" on success. */
struct imgjob_cache;

typedef void imgjob_done_cb(void *ud, struct image_info *info, const char *log, const char *error);

/* o and ref are copied where needed; o (and cache) must outlive the job.
 * The image of a digest-pinned registry reference goes into cache (NULL:
 * none) when the job succeeds. */
void imgjob_start(uv_loop_t *loop, const struct image_opts *o, struct imgjob_cache *cache,
                  const char *ref, imgjob_done_cb *done_cb, void *ud);

/* The images of digest-pinned registry references prepared lately (the
 * last 16): a digest names one image for good, so the next task of one
 * starts from it on the loop thread (image_reuse) without a job on the
 * thread pool. An entry holds no lock: it is not a claim on the image,
 * which the collector may remove meanwhile (image_reuse then fails and
 * the job runs as for a new reference). Loop thread only. */
struct imgjob_cache *imgjob_cache_new(void);
void imgjob_cache_free(struct imgjob_cache *c);
/* Remember info (copied, without its lock) as ref's image; only a pinned
 * ref's. */
void imgjob_cache_put(struct imgjob_cache *c, const char *ref, const struct image_info *info);
/* ref's image in use again (*out as image_prepare gives it, with its own
 * lock): true, or false when it must be prepared (not known, or
 * image_reuse failed). */
bool imgjob_cached(struct imgjob_cache *c, const struct image_opts *o, const char *ref,
                   struct image_info *out);

/* Entrypoint + argv (or + Cmd when argv is empty); NULL-terminated,
 * malloc'd (free with imgjob_strv_free). */
char **imgjob_argv(const struct image_info *info, const char *const *argv);
/* env with the image's Env entries whose names it lacks added first. */
char **imgjob_env(const struct image_info *info, char **env);
/* The image's User as numbers. 0 (and *has false when there is none),
 * or CAIRN_ENOENT with a message. */
int imgjob_user(const struct image_info *info, bool *has, uint32_t *uid, uint32_t *gid, char *err,
                size_t errlen);
void imgjob_strv_free(char **v);

#endif
