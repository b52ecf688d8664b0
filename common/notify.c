/* notify.c - backoff, signatures, deadlines and regressions (notify.h). */
#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "util.h"

int64_t
notify_backoff_ms(int failed, int64_t base_ms, int64_t max_ms)
{
    if (failed < 1)
        failed = 1;
    int64_t d = base_ms;
    for (int i = 1; i < failed && d < max_ms; i++)
        d *= 2;
    return d < max_ms ? d : max_ms;
}

int
notify_sign(const void *key, size_t keylen, const void *body, size_t bodylen, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!HMAC(EVP_sha256(), key, (int)keylen, body, bodylen, md, &mdlen) || mdlen != 32)
        return CAIRN_EINVAL;
    memcpy(out, "sha256=", 7);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
    return 0;
}

int
notify_secret_read(const char *path, char **key, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errf(CAIRN_EIO, err, errlen, "cannot read secret file %s: %s", path,
                    strerror(errno));
    char *buf = xmalloc(NOTIFY_SECRET_MAX + 1);
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, NOTIFY_SECRET_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            free(buf);
            return errf(CAIRN_EIO, err, errlen, "cannot read secret file %s: %s", path,
                        strerror(e));
        }
        if (r == 0 || (n += (size_t)r) > NOTIFY_SECRET_MAX)
            break;
    }
    close(fd);
    if (n > NOTIFY_SECRET_MAX) {
        free(buf);
        return errf(CAIRN_ERANGE, err, errlen, "secret file %s is larger than %d bytes", path,
                    NOTIFY_SECRET_MAX);
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (!n) {
        free(buf);
        return errf(CAIRN_EINVAL, err, errlen, "secret file %s is empty", path);
    }
    buf[n] = '\0';
    *key = buf;
    *len = n;
    return 0;
}

int64_t
notify_deadline_at(const struct dag_deadline *d, int64_t logical_date, int64_t started_ms)
{
    switch (d->kind) {
    case DAG_DEADLINE_AFTER_START:
        return started_ms > 0 ? started_ms + d->ms : 0;
    case DAG_DEADLINE_AFTER_LOGICAL_DATE:
        return logical_date * 1000 + d->ms;
    default:
        return 0;
    }
}

bool
notify_regressed(double prev, double cur, double drop)
{
    return prev - cur > drop;
}
