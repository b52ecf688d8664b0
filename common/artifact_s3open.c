/* artifact_s3open.c - opening an S3 artifact store: the s3:// URI and its
 * settings, and the credentials (see artifact.h, "struct art_open_opts").
 *
 * Owns: validating the bucket, prefix, endpoint and region; merging the
 * URI's query, the caller's options and the environment; reading the
 * credentials from a 0600 file owned by this user, or from the AWS_*
 * variables; building the immutable struct art_s3 the requests of
 * artifact_s3.c use, and the store's URI (settings, never credentials).
 * Nothing here talks to the server.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifact_int.h"
#include "err.h"
#include "log.h"
#include "util.h"

#define S3_CRED_FILE_MAX (64 << 10)

/* ---- settings ---------------------------------------------------------- */

static bool
s3__bucket_ok(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
            return false;
    }
    return b[0] != '.' && b[0] != '-' && b[n - 1] != '.' && b[n - 1] != '-';
}

/* Prefix segments of [A-Za-z0-9._-], none empty, "." or "..": such keys
 * need no percent-encoding, in the URL or in the signature. */
static bool
s3__prefix_ok(const char *p)
{
    if (!*p)
        return true;
    const char *seg = p;
    for (const char *q = p;; q++) {
        if (*q == '/' || *q == '\0') {
            size_t n = (size_t)(q - seg);
            if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
                return false;
            if (*q == '\0')
                return true;
            seg = q + 1;
            continue;
        }
        if (!isalnum((unsigned char)*q) && *q != '.' && *q != '_' && *q != '-')
            return false;
    }
}

/* "http(s)://host[:port][/]": no path, query, user or fragment. */
static bool
s3__endpoint_ok(const char *e)
{
    const char *h;
    if (strncmp(e, "http://", 7) == 0)
        h = e + 7;
    else if (strncmp(e, "https://", 8) == 0)
        h = e + 8;
    else
        return false;
    if (!*h || *h == '/')
        return false;
    size_t n = strlen(h);
    if (n > 0 && h[n - 1] == '/')
        n--;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (!isalnum((unsigned char)c) && c != '.' && c != '-' && c != ':' && c != '[' && c != ']')
            return false;
    }
    /* a port, if any, is 1 to 5 digits after the last ':' outside [...] */
    const char *close = memchr(h, ']', n);
    const char *from = close ? close + 1 : h;
    const char *colon = memchr(from, ':', n - (size_t)(from - h));
    if (colon) {
        size_t digits = n - (size_t)(colon + 1 - h);
        if (digits == 0 || digits > 5)
            return false;
        for (size_t i = 0; i < digits; i++)
            if (!isdigit((unsigned char)colon[1 + i]))
                return false;
    }
    return n > 0;
}

void
art__s3_free(struct art_s3 *b)
{
    if (!b)
        return;
    free(b->endpoint);
    free(b->region);
    free(b->bucket);
    free(b->prefix);
    free(b->blob_dir);
    free(b->base);
    free(b->sigv4);
    if (b->secret_key)
        explicit_bzero(b->secret_key, strlen(b->secret_key));
    if (b->session_token)
        explicit_bzero(b->session_token, strlen(b->session_token));
    free(b->access_key);
    free(b->secret_key);
    free(b->session_token);
    free(b);
}

static char *
s3__trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* Read the credentials file: owner and mode checked like a tokens file. */
static int
s3__load_creds_file(struct art_s3 *b, const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return art__sys(err, errlen, errno, "cannot open the S3 credentials file", path);
    struct stat st;
    int rc = 0;
    char *text = NULL;
    if (fstat(fd, &st) != 0) {
        rc = art__sys(err, errlen, errno, "cannot stat", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > S3_CRED_FILE_MAX) {
        art__msg(err, errlen, "S3 credentials file %s is not a regular file of at most 64 KiB",
                 path);
        rc = CAIRN_EINVAL;
        goto out;
    }
    if (st.st_uid != geteuid()) {
        art__msg(err, errlen,
                 "S3 credentials file %s is owned by uid %u, not by this process's uid %u; "
                 "refused",
                 path, (unsigned)st.st_uid, (unsigned)geteuid());
        rc = CAIRN_EINVAL;
        goto out;
    }
    if (st.st_mode & 077) {
        art__msg(err, errlen,
                 "S3 credentials file %s has mode %04o: it must not be readable or writable by "
                 "group or others (chmod 600 %s)",
                 path, (unsigned)(st.st_mode & 07777), path);
        rc = CAIRN_EINVAL;
        goto out;
    }
    text = xcalloc(1, (size_t)st.st_size + 1);
    ssize_t n = art__read_full(fd, (unsigned char *)text, (size_t)st.st_size);
    if (n < 0) {
        rc = art__sys(err, errlen, errno, "cannot read", path);
        goto out;
    }
    text[n] = '\0';
    size_t lineno = 0;
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        lineno++;
        char *l = s3__trim(line);
        line = nl ? nl + 1 : NULL;
        if (!*l || *l == '#' || *l == ';' || *l == '[')
            continue;
        char *eq = strchr(l, '=');
        if (!eq) {
            art__msg(err, errlen, "%s:%zu: expected 'name = value'", path, lineno);
            rc = CAIRN_EINVAL;
            goto out;
        }
        *eq = '\0';
        char *k = s3__trim(l), *v = s3__trim(eq + 1);
        char **dst = NULL;
        if (strcmp(k, "aws_access_key_id") == 0)
            dst = &b->access_key;
        else if (strcmp(k, "aws_secret_access_key") == 0)
            dst = &b->secret_key;
        else if (strcmp(k, "aws_session_token") == 0)
            dst = &b->session_token;
        else
            continue; /* region and others: not read from here */
        free(*dst);
        *dst = xstrdup(v);
    }
    if (!b->access_key || !*b->access_key || !b->secret_key || !*b->secret_key) {
        art__msg(err, errlen,
                 "S3 credentials file %s needs both aws_access_key_id and aws_secret_access_key",
                 path);
        rc = CAIRN_EINVAL;
    }
out:
    if (text) {
        explicit_bzero(text, (size_t)st.st_size);
        free(text);
    }
    close(fd);
    return rc;
}

static int
s3__load_creds(struct art_s3 *b, const char *file, char *err, size_t errlen)
{
    if (file && *file)
        return s3__load_creds_file(b, file, err, errlen);
    const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
    const char *tok = getenv("AWS_SESSION_TOKEN");
    if (!ak || !*ak || !sk || !*sk) {
        art__msg(err, errlen,
                 "no credentials for the S3 artifact store: give a credentials file "
                 "(--artifacts-credentials FILE) or set AWS_ACCESS_KEY_ID and "
                 "AWS_SECRET_ACCESS_KEY");
        return CAIRN_EINVAL;
    }
    b->access_key = xstrdup(ak);
    b->secret_key = xstrdup(sk);
    b->session_token = tok && *tok ? xstrdup(tok) : NULL;
    return 0;
}

/* Split the URI's query into the settings not given in o. */
static int
s3__query(const char *uri, char *q, char **endpoint, char **region, int *style, char *err,
          size_t errlen)
{
    for (char *p = q; p && *p;) {
        char *amp = strchr(p, '&');
        if (amp)
            *amp = '\0';
        char *eq = strchr(p, '=');
        if (!eq) {
            art__msg(err, errlen, "artifact store URI '%s': '%s' is not name=value", uri, p);
            return CAIRN_EINVAL;
        }
        *eq = '\0';
        const char *v = eq + 1;
        if (strcmp(p, "endpoint") == 0) {
            free(*endpoint);
            *endpoint = xstrdup(v);
        } else if (strcmp(p, "region") == 0) {
            free(*region);
            *region = xstrdup(v);
        } else if (strcmp(p, "path_style") == 0 && (!strcmp(v, "0") || !strcmp(v, "1"))) {
            *style = v[0] - '0';
        } else {
            art__msg(err, errlen,
                     "artifact store URI '%s': unknown setting '%s' (endpoint, region, "
                     "path_style=0|1)",
                     uri, p);
            return CAIRN_EINVAL;
        }
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

static void
s3__global_init(void)
{
    (void)curl_global_init(CURL_GLOBAL_DEFAULT);
}

int
art__s3_open(struct art_store **out, const char *uri, const struct art_open_opts *o, char *err,
             size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, s3__global_init);

    char *copy = xstrdup(uri + 5);
    char *q = strchr(copy, '?');
    if (q)
        *q++ = '\0';
    char *slash = strchr(copy, '/');
    const char *prefix = "";
    if (slash) {
        *slash = '\0';
        prefix = slash + 1;
    }
    char *pfx = xstrdup(prefix);
    size_t pn = strlen(pfx);
    while (pn > 0 && pfx[pn - 1] == '/')
        pfx[--pn] = '\0';

    struct art_s3 *b = xcalloc(1, sizeof(*b));
    char *endpoint = NULL, *region = NULL;
    int style = -1, rc = 0;
    if (!s3__bucket_ok(copy)) {
        art__msg(err, errlen,
                 "artifact store URI '%s': '%s' is not a bucket name (3 to 63 of a-z, 0-9, '.', "
                 "'-')",
                 uri, copy);
        rc = CAIRN_EINVAL;
        goto fail;
    }
    if (!s3__prefix_ok(pfx)) {
        art__msg(err, errlen,
                 "artifact store URI '%s': the prefix '%s' may only have folders of A-Z, a-z, "
                 "0-9, '.', '_', '-' (no empty, '.' or '..' ones)",
                 uri, pfx);
        rc = CAIRN_EINVAL;
        goto fail;
    }
    if (q && (rc = s3__query(uri, q, &endpoint, &region, &style, err, errlen)) != 0)
        goto fail;
    if (o && o->endpoint && *o->endpoint) {
        free(endpoint);
        endpoint = xstrdup(o->endpoint);
    }
    if (o && o->region && *o->region) {
        free(region);
        region = xstrdup(o->region);
    }
    if (o && o->path_style >= 0)
        style = o->path_style ? 1 : 0;
    if (!endpoint && getenv("AWS_ENDPOINT_URL") && *getenv("AWS_ENDPOINT_URL"))
        endpoint = xstrdup(getenv("AWS_ENDPOINT_URL"));
    if (!region) {
        const char *r = getenv("AWS_REGION");
        if (!r || !*r)
            r = getenv("AWS_DEFAULT_REGION");
        region = xstrdup(r && *r ? r : "us-east-1");
    }
    for (const char *r = region; *r; r++) {
        if (!isalnum((unsigned char)*r) && *r != '-') {
            art__msg(err, errlen, "artifact store: '%s' is not a region name", region);
            rc = CAIRN_EINVAL;
            goto fail;
        }
    }
    if (style < 0)
        style = endpoint ? 1 : 0;
    if (!endpoint)
        endpoint = xasprintf("https://s3.%s.amazonaws.com", region);
    if (!s3__endpoint_ok(endpoint)) {
        art__msg(err, errlen,
                 "artifact store: endpoint '%s' is not http(s)://host[:port] (no path or "
                 "query)",
                 endpoint);
        rc = CAIRN_EINVAL;
        goto fail;
    }
    size_t en = strlen(endpoint);
    if (en > 0 && endpoint[en - 1] == '/')
        endpoint[en - 1] = '\0';
    if (!style && strchr(copy, '.') && strncmp(endpoint, "https://", 8) == 0)
        LOG(LOG_WARN, "CAIRN-S3-DOTTED-BUCKET",
            "bucket %s has dots: its virtual-hosted name will not match a wildcard TLS "
            "certificate; use path_style=1 if requests fail",
            copy);
    if ((rc = s3__load_creds(b, o ? o->credentials_file : NULL, err, errlen)) != 0)
        goto fail;

    b->endpoint = endpoint;
    b->region = region;
    endpoint = region = NULL;
    b->path_style = style == 1;
    b->bucket = xstrdup(copy);
    b->prefix = pfx;
    pfx = NULL;
    b->blob_dir = xasprintf("%s%sblobs/sha256/", b->prefix, *b->prefix ? "/" : "");
    if (b->path_style) {
        b->base = xasprintf("%s/%s/", b->endpoint, b->bucket);
    } else {
        const char *host = strstr(b->endpoint, "://") + 3;
        b->base = xasprintf("%.*s%s.%s/", (int)(host - b->endpoint), b->endpoint, b->bucket, host);
    }
    b->sigv4 = xasprintf("aws:amz:%s:s3", b->region);

    struct art_store *s = xcalloc(1, sizeof(*s));
    s->ops = &art__s3_ops;
    s->be = b;
    s->uri =
        xasprintf("s3://%s%s%s?endpoint=%s&region=%s&path_style=%d", b->bucket,
                  *b->prefix ? "/" : "", b->prefix, b->endpoint, b->region, b->path_style ? 1 : 0);
    free(copy);
    *out = s;
    return 0;
fail:
    free(endpoint);
    free(region);
    free(pfx);
    free(copy);
    art__s3_free(b);
    return rc;
}
