/* tokfile.h - the API tokens file (prefix: tokf_); see docs/api.md.
 *
 * One token a line: "NAME ROLE SHA256HEX", fields separated by blanks; a
 * line that is empty or starts with '#' is ignored. NAME is [A-Za-z0-9._-]
 * (at most 64 bytes), ROLE one of viewer, operator, admin, and SHA256HEX
 * the 64 lower-case hex digits of the SHA-256 of the token. The token itself
 * is never stored. The file must be owned by the user reading it and be
 * neither group- nor world-readable or writable (0600); anything else is
 * refused, whole.
 *
 * The scheduler loads it (tokf_load) and checks presented tokens against it
 * (tokf_lookup, constant time over every entry); `cairn tokens create`
 * makes a token and appends its line (tokf_create). Pure file and string
 * work, no globals.
 */
#ifndef CAIRN_TOKFILE_H
#define CAIRN_TOKFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Roles, ordered: each may do what the ones below it may. */
enum tokf_role {
    TOKF_PUBLIC = 0, /* no token needed (a route's requirement only) */
    TOKF_VIEWER = 1,
    TOKF_OPERATOR = 2,
    TOKF_ADMIN = 3,
};

#define TOKF_NAME_MAX 64

struct tokf_entry {
    char name[TOKF_NAME_MAX + 1];
    int role;
    unsigned char hash[32];
};

/* A loaded file, with what identifies the version read (for rereading). */
struct tokf {
    struct tokf_entry *e;
    size_t n;
    dev_t dev;
    ino_t ino;
    int64_t mtime_ns;
    int64_t size;
};

/* "viewer" -> TOKF_VIEWER...; -1 for anything else. */
int tokf_role_parse(const char *s);
/* The name of a role ("public" for TOKF_PUBLIC). */
const char *tokf_role_name(int role);

/* Load path into *out (zeroed first; release with tokf_free). Returns 0, or
 * CAIRN_EINVAL / CAIRN_EIO with a message naming the file and, for a bad
 * line, its number: not found, not a regular file, owned by another user,
 * readable or writable by group or others, a malformed line, a duplicate
 * name. On failure *out holds nothing. */
int tokf_load(const char *path, struct tokf *out, char *err, size_t errlen);

void tokf_free(struct tokf *t);

/* Does path still name the version t was read from (same inode, size and
 * modification time)? 1 yes, 0 no (changed, gone). */
int tokf_same(const struct tokf *t, const char *path);

/* The entry whose hash is the SHA-256 of token (len bytes), or NULL. Every
 * entry is compared, in constant time each, whatever matches. */
const struct tokf_entry *tokf_lookup(const struct tokf *t, const char *token, size_t len);

/* Make a new token for name with role (a role name): 32 random bytes from
 * the kernel, written as "cairn_" and 64 hex digits into token (at least
 * TOKF_TOKEN_LEN + 1 bytes), and append its line to path, creating the file
 * 0600 if needed. An existing file must pass the checks of tokf_load and
 * must not already have name. Returns 0 or CAIRN_EINVAL / CAIRN_EIO /
 * CAIRN_EEXIST with a message. */
#define TOKF_TOKEN_LEN (6 + 64)
int tokf_create(const char *path, const char *name, const char *role, char *token, char *err,
                size_t errlen);

#endif
