/* tokfile.c - the API tokens file (see tokfile.h).
 *
 * Owns reading and checking the file (ownership, mode, one line at a time)
 * and the one way a token is made and hashed: SHA-256 and RAND_bytes from
 * OpenSSL's libcrypto, CRYPTO_memcmp for the comparison.
 */
#include "tokfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "err.h"
#include "util.h"

#define TOKF_FILE_MAX ((off_t)1024 * 1024)

static const char *const tokf__roles[] = {"public", "viewer", "operator", "admin"};

int
tokf_role_parse(const char *s)
{
    for (int i = TOKF_VIEWER; i <= TOKF_ADMIN; i++)
        if (s && !strcmp(s, tokf__roles[i]))
            return i;
    return -1;
}

const char *
tokf_role_name(int role)
{
    return role >= 0 && role <= TOKF_ADMIN ? tokf__roles[role] : "unknown";
}

static int
tokf__name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > TOKF_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int
tokf__unhex(const char *s, unsigned char out[32])
{
    if (strlen(s) != 64)
        return -1;
    for (size_t i = 0; i < 32; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = s[2 * i + (size_t)k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return -1;
            v = v * 16 + d;
        }
        out[i] = (unsigned char)v;
    }
    return 0;
}

/* Check an open file's owner and mode. */
static int
tokf__check_stat(const char *path, const struct stat *st, char *err, size_t errlen)
{
    if (!S_ISREG(st->st_mode))
        return errf(CAIRN_EINVAL, err, errlen, "tokens file %s is not a regular file", path);
    if (st->st_uid != geteuid())
        return errf(CAIRN_EINVAL, err, errlen,
                    "tokens file %s is owned by uid %u, not by this process's uid %u; refused",
                    path, (unsigned)st->st_uid, (unsigned)geteuid());
    if (st->st_mode & 077)
        return errf(CAIRN_EINVAL, err, errlen,
                    "tokens file %s has mode %04o: it must not be readable or writable by group "
                    "or others (chmod 600 %s)",
                    path, (unsigned)(st->st_mode & 07777), path);
    if (st->st_size > TOKF_FILE_MAX)
        return errf(CAIRN_EINVAL, err, errlen, "tokens file %s is larger than 1 MiB", path);
    return 0;
}

static int
tokf__parse(struct tokf *t, const char *path, char *text, char *err, size_t errlen)
{
    size_t cap = 0, lineno = 0;
    char *save = NULL;
    for (char *line = text; line; line = save) {
        char *nl = strchr(line, '\n');
        save = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        lineno++;
        char *f[4] = {0};
        int nf = 0;
        char *tokp = NULL;
        for (char *w = strtok_r(line, " \t\r", &tokp); w; w = strtok_r(NULL, " \t\r", &tokp)) {
            if (nf == 0 && w[0] == '#')
                break;
            if (nf < 4)
                f[nf] = w;
            nf++;
        }
        if (nf == 0)
            continue;
        if (nf != 3)
            return errf(CAIRN_EINVAL, err, errlen,
                        "%s:%zu: expected 'NAME ROLE SHA256HEX', got %d fields", path, lineno, nf);
        struct tokf_entry e;
        memset(&e, 0, sizeof(e));
        if (!tokf__name_ok(f[0]))
            return errf(CAIRN_EINVAL, err, errlen,
                        "%s:%zu: token name '%s' must be 1-64 of [A-Za-z0-9._-]", path, lineno,
                        f[0]);
        if ((e.role = tokf_role_parse(f[1])) < 0)
            return errf(CAIRN_EINVAL, err, errlen,
                        "%s:%zu: unknown role '%s' (viewer, operator or admin)", path, lineno,
                        f[1]);
        if (tokf__unhex(f[2], e.hash) != 0)
            return errf(CAIRN_EINVAL, err, errlen,
                        "%s:%zu: the hash must be 64 lower-case hex digits (SHA-256)", path,
                        lineno);
        for (size_t i = 0; i < t->n; i++)
            if (!strcmp(t->e[i].name, f[0]))
                return errf(CAIRN_EINVAL, err, errlen, "%s:%zu: token name '%s' appears twice",
                            path, lineno, f[0]);
        snprintf(e.name, sizeof(e.name), "%s", f[0]);
        xgrow((void **)&t->e, &cap, t->n + 1, sizeof(*t->e));
        t->e[t->n++] = e;
    }
    return 0;
}

int
tokf_load(const char *path, struct tokf *out, char *err, size_t errlen)
{
    struct tokf t;
    memset(&t, 0, sizeof(t));
    memset(out, 0, sizeof(*out));
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errf(CAIRN_EIO, err, errlen, "cannot open tokens file %s: %s", path,
                    strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return errf(CAIRN_EIO, err, errlen, "cannot stat tokens file %s: %s", path, strerror(e));
    }
    int rc = tokf__check_stat(path, &st, err, errlen);
    if (rc) {
        close(fd);
        return rc;
    }
    char *text = xmalloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, text + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    text[got] = '\0';
    if (memchr(text, '\0', got)) {
        free(text);
        return errf(CAIRN_EINVAL, err, errlen, "tokens file %s holds a NUL byte", path);
    }
    rc = tokf__parse(&t, path, text, err, errlen);
    free(text);
    if (rc) {
        tokf_free(&t);
        return rc;
    }
    t.dev = st.st_dev;
    t.ino = st.st_ino;
    t.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    t.size = (int64_t)st.st_size;
    *out = t;
    return 0;
}

void
tokf_free(struct tokf *t)
{
    if (!t)
        return;
    free(t->e);
    memset(t, 0, sizeof(*t));
}

int
tokf_same(const struct tokf *t, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    int64_t m = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    return st.st_dev == t->dev && st.st_ino == t->ino && m == t->mtime_ns &&
           (int64_t)st.st_size == t->size;
}

const struct tokf_entry *
tokf_lookup(const struct tokf *t, const char *token, size_t len)
{
    unsigned char h[32];
    const struct tokf_entry *hit = NULL;
    SHA256((const unsigned char *)token, len, h);
    for (size_t i = 0; t && i < t->n; i++)
        if (CRYPTO_memcmp(h, t->e[i].hash, sizeof(h)) == 0 && !hit)
            hit = &t->e[i];
    OPENSSL_cleanse(h, sizeof(h));
    return hit;
}

int
tokf_create(const char *path, const char *name, const char *role, char *token, char *err,
            size_t errlen)
{
    if (!tokf__name_ok(name))
        return errf(CAIRN_EINVAL, err, errlen, "token name '%s' must be 1-64 of [A-Za-z0-9._-]",
                    name);
    if (tokf_role_parse(role) < 0)
        return errf(CAIRN_EINVAL, err, errlen, "unknown role '%s' (viewer, operator or admin)",
                    role ? role : "");
    struct tokf cur;
    if (access(path, F_OK) == 0) {
        int rc = tokf_load(path, &cur, err, errlen);
        if (rc)
            return rc;
        for (size_t i = 0; i < cur.n; i++) {
            if (!strcmp(cur.e[i].name, name)) {
                tokf_free(&cur);
                return errf(CAIRN_EEXIST, err, errlen, "%s already has a token named '%s'", path,
                            name);
            }
        }
        tokf_free(&cur);
    }
    unsigned char raw[32], h[32];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return errf(CAIRN_EIO, err, errlen, "cannot get random bytes for a token");
    static const char hex[] = "0123456789abcdef";
    memcpy(token, "cairn_", 6);
    for (size_t i = 0; i < sizeof(raw); i++) {
        token[6 + 2 * i] = hex[raw[i] >> 4];
        token[6 + 2 * i + 1] = hex[raw[i] & 15];
    }
    token[TOKF_TOKEN_LEN] = '\0';
    OPENSSL_cleanse(raw, sizeof(raw));
    SHA256((const unsigned char *)token, TOKF_TOKEN_LEN, h);
    char line[TOKF_NAME_MAX + 32 + 70];
    int n = snprintf(line, sizeof(line), "%s %s ", name, role);
    for (size_t i = 0; i < sizeof(h); i++)
        n += snprintf(line + n, sizeof(line) - (size_t)n, "%02x", h[i]);
    line[n++] = '\n';
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return errf(CAIRN_EIO, err, errlen, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    int rc = fstat(fd, &st) == 0 ? tokf__check_stat(path, &st, err, errlen)
                                 : errf(CAIRN_EIO, err, errlen, "cannot stat %s", path);
    if (rc == 0 && write(fd, line, (size_t)n) != n)
        rc = errf(CAIRN_EIO, err, errlen, "cannot write %s: %s", path, strerror(errno));
    if (rc == 0 && fsync(fd) != 0)
        rc = errf(CAIRN_EIO, err, errlen, "cannot sync %s: %s", path, strerror(errno));
    close(fd);
    if (rc)
        OPENSSL_cleanse(token, TOKF_TOKEN_LEN);
    return rc;
}
