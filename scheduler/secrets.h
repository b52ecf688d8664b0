/* secrets.h - the values of tasks' `secrets:` (prefix: secrets_).
 *
 * A secret is a file named by the secret's name in the scheduler's secrets
 * folder (--secrets-dir), or else in $CREDENTIALS_DIRECTORY (systemd's
 * credentials). The file must be a regular file owned by the scheduler's
 * user with no permission for group or others (0600 or stricter); one
 * trailing newline is dropped. Values are read when a lease is made and
 * live only in that lease's message: never in the store, provenance, the
 * API or a log line.
 */
#ifndef CAIRN_SECRETS_H
#define CAIRN_SECRETS_H

#include <stddef.h>

#define SECRETS_MAX_BYTES 65536 /* the largest secret value */

/* The folder secrets are read from: dir if set, else
 * $CREDENTIALS_DIRECTORY, else NULL (none). Borrowed. */
const char *secrets_folder(const char *dir);

/* Read secret name from folder into *value (malloc'd, NUL-terminated,
 * *len bytes). Returns 0, or a negative CAIRN_E* code with err naming the
 * secret and its file and saying what is wrong (missing, not owned by
 * this user, readable by others, too large, folder not configured, the
 * file `deny`). deny (may be NULL) is the scheduler's own key file, which
 * systemd's credentials folder may hold too: never a task's secret. The
 * value never appears in err. */
int secrets_read(const char *folder, const char *name, const char *deny, char **value, size_t *len,
                 char *err, size_t errlen);

/* The SHA-256 of a value as 64 hex digits (for the step cache key). */
void secrets_digest(const char *value, size_t len, char hex[65]);

/* Overwrite and free a value. NULL is a no-op. */
void secrets_free(char *value, size_t len);

#endif
