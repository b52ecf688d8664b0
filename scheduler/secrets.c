/* secrets.c - reading tasks' secrets from the secrets folder (secrets.h). */
#include "secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "err.h"
#include "util.h"

const char *
secrets_folder(const char *dir)
{
    if (dir && *dir)
        return dir;
    const char *cd = getenv("CREDENTIALS_DIRECTORY");
    return cd && *cd ? cd : NULL;
}

int
secrets_read(const char *folder, const char *name, const char *deny, char **value, size_t *len,
             char *err, size_t errlen)
{
    if (!folder)
        return errf(CAIRN_ENOENT, err, errlen,
                    "secret '%s' cannot be read: the scheduler has no secrets folder "
                    "(--secrets-dir, or $CREDENTIALS_DIRECTORY from systemd)",
                    name);
    if (!*name || strchr(name, '/') || name[0] == '.')
        return errf(CAIRN_EINVAL, err, errlen, "secret '%s': not a valid secret name", name);
    char *path = xasprintf("%s/%s", folder, name);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    int rc = 0;
    struct stat st;
    char *buf = NULL;
    if (fd < 0) {
        rc = errf(cairn_from_errno(errno), err, errlen, "secret '%s' cannot be read: %s: %s", name,
                  path, errno == ENOENT ? "no such file" : strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        rc = errf(CAIRN_EIO, err, errlen, "secret '%s': %s: %s", name, path, strerror(errno));
        goto out;
    }
    struct stat dst;
    if (deny && stat(deny, &dst) == 0 && dst.st_dev == st.st_dev && dst.st_ino == st.st_ino) {
        rc = errf(CAIRN_EINVAL, err, errlen,
                  "secret '%s' refused: %s is the scheduler's own key file (--token-file)", name,
                  path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = errf(CAIRN_EINVAL, err, errlen, "secret '%s' refused: %s is not a regular file", name,
                  path);
        goto out;
    }
    if (st.st_uid != geteuid()) {
        rc = errf(CAIRN_EINVAL, err, errlen,
                  "secret '%s' refused: %s is owned by uid %u, not by the scheduler's uid %u", name,
                  path, (unsigned)st.st_uid, (unsigned)geteuid());
        goto out;
    }
    if (st.st_mode & 077) {
        rc = errf(CAIRN_EINVAL, err, errlen,
                  "secret '%s' refused: %s has mode %04o; it must be 0600 or stricter "
                  "(chmod 600 %s)",
                  name, path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    if (st.st_size > SECRETS_MAX_BYTES) {
        rc = errf(CAIRN_EINVAL, err, errlen, "secret '%s' refused: %s is larger than %d bytes",
                  name, path, SECRETS_MAX_BYTES);
        goto out;
    }
    buf = xmalloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = errf(CAIRN_EIO, err, errlen, "secret '%s': cannot read %s: %s", name, path,
                      n < 0 ? strerror(errno) : "short read");
            secrets_free(buf, (size_t)st.st_size + 1);
            buf = NULL;
            goto out;
        }
        got += (size_t)n;
    }
    if (got && buf[got - 1] == '\n')
        got--;
    if (got && buf[got - 1] == '\r')
        got--;
    buf[got] = '\0';
    if (memchr(buf, '\0', got)) {
        rc =
            errf(CAIRN_EINVAL, err, errlen, "secret '%s' refused: %s holds a NUL byte", name, path);
        secrets_free(buf, (size_t)st.st_size + 1);
        buf = NULL;
        goto out;
    }
    *value = buf;
    *len = got;
out:
    if (fd >= 0)
        close(fd);
    free(path);
    return rc;
}

void
secrets_digest(const char *value, size_t len, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    static const char digits[] = "0123456789abcdef";
    if (EVP_Digest(value, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        abort();
    for (unsigned i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
}

void
secrets_free(char *value, size_t len)
{
    if (!value)
        return;
    OPENSSL_cleanse(value, len);
    free(value);
}
