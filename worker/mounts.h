/* mounts.h - host folders a task may see (prefix: mounts_).
 *
 * A lease may name host folders to mount in the task's container (msg.h's
 * struct msg_mount). A worker allows only folders its operator listed with
 * `cairn-worker --allow-mount DIR` (repeatable): a mount's host folder must
 * be DIR or below one, also after symbolic links are resolved (realpath), so
 * a link from an allowed folder to elsewhere is refused too. The check runs
 * when the lease arrives, before anything is fetched or started; a lease
 * that fails it fails at once with the reason.
 *
 * With --isolation none there is no container to mount into: a mount whose
 * path is its host folder is allowed (the task sees the host there) and any
 * other is refused.
 *
 * Loop thread only (the check calls realpath); the allow list is read-only
 * once made.
 */
#ifndef CAIRN_MOUNTS_H
#define CAIRN_MOUNTS_H

#include <stdbool.h>
#include <stddef.h>

#include "msg.h"

struct mounts_allow;

/* The allow list from the n folders given (borrowed for the call). Each is
 * kept as given (for messages: repeated and trailing '/' dropped) and as
 * resolved. *out is set only on success. Errors: CAIRN_EINVAL (a folder
 * that is not absolute), CAIRN_ENOENT or CAIRN_EIO (a folder that cannot be
 * resolved: missing, or not a folder), with the message in err. */
int mounts_allow_new(struct mounts_allow **out, const char *const *dirs, size_t n, char *err,
                     size_t errlen);
/* NULL is a no-op. */
void mounts_allow_free(struct mounts_allow *a);

/* A mount that passed the check: what the container binds. */
struct mounts_bind {
    char *source; /* the host folder, resolved (realpath) */
    char *dest;   /* the path in the container, repeated and trailing '/' dropped */
    bool readonly;
};

/* Check the lease's n mounts (borrowed) against a (NULL: nothing allowed)
 * for worker (its name, for messages). On success *out gets n binds in
 * order (NULL when n is 0; free with mounts_binds_free) and 0 is returned.
 * Otherwise CAIRN_EINVAL, *out untouched, and err says why, e.g. "host
 * mount /x is not allowed on worker w1 (allowed: /data, /models); start the
 * worker with --allow-mount". With isolation_none no bind is made: each
 * mount must have path equal to host. */
int mounts_check(const struct mounts_allow *a, const char *worker, const struct msg_mount *m,
                 size_t n, bool isolation_none, struct mounts_bind **out, char *err, size_t errlen);
void mounts_binds_free(struct mounts_bind *b, size_t n);

#endif
