/* imgref.c - parse and format image references (see imgref.h). */
#include "imgref.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "util.h"

static int
is_lower_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int
imgref_digest_ok(const char *d)
{
    if (!d || strncmp(d, "sha256:", 7) != 0)
        return 0;
    d += 7;
    size_t n = 0;
    for (; d[n]; n++)
        if (!((d[n] >= '0' && d[n] <= '9') || (d[n] >= 'a' && d[n] <= 'f')))
            return 0;
    return n == 64;
}

/* A tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. */
static int
tag_ok(const char *t, size_t n)
{
    if (n == 0 || n > 128)
        return 0;
    if (!(isalnum((unsigned char)t[0]) || t[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)t[i]) || t[i] == '_' || t[i] == '.' || t[i] == '-'))
            return 0;
    return 1;
}

/* One repository path component: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*. */
static int
component_ok(const char *c, size_t n)
{
    if (n == 0 || !is_lower_alnum(c[0]) || !is_lower_alnum(c[n - 1]))
        return 0;
    for (size_t i = 1; i < n; i++) {
        if (is_lower_alnum(c[i]))
            continue;
        if (c[i] == '.' || c[i] == '_') {
            size_t run = 1;
            while (i + run < n && c[i + run] == c[i])
                run++;
            if (c[i] == '.' ? run > 1 : run > 2)
                return 0;
            i += run - 1;
        } else if (c[i] == '-') {
            while (i + 1 < n && c[i + 1] == '-')
                i++;
        } else {
            return 0;
        }
    }
    return 1;
}

/* host[:port]: hostname labels of [A-Za-z0-9-], or a bracketed IPv6
 * address, then an optional port 1..65535. */
static int
registry_ok(const char *r, size_t n, char *why, size_t whylen)
{
    const char *colon = NULL;
    size_t hn = n;
    if (n > 0 && r[0] == '[') {
        const char *close = memchr(r, ']', n);
        if (!close) {
            snprintf(why, whylen, "unclosed '[' in the registry host");
            return 0;
        }
        for (const char *p = r + 1; p < close; p++)
            if (!(isxdigit((unsigned char)*p) || *p == ':' || *p == '.')) {
                snprintf(why, whylen, "bad IPv6 address in the registry host");
                return 0;
            }
        hn = (size_t)(close - r) + 1;
        if (hn < n && r[hn] != ':') {
            snprintf(why, whylen, "unexpected text after ']' in the registry host");
            return 0;
        }
        if (hn < n)
            colon = r + hn;
    } else {
        colon = memchr(r, ':', n);
        if (colon)
            hn = (size_t)(colon - r);
        if (hn == 0) {
            snprintf(why, whylen, "empty registry host");
            return 0;
        }
        for (size_t i = 0; i < hn; i++) {
            char c = r[i];
            if (!(isalnum((unsigned char)c) || c == '-' || c == '.')) {
                snprintf(why, whylen, "character '%c' is not allowed in a registry host", c);
                return 0;
            }
        }
        if (r[0] == '.' || r[0] == '-' || r[hn - 1] == '.' || r[hn - 1] == '-' ||
            strstr(r, "..") != NULL) {
            snprintf(why, whylen, "registry host '%.*s' is not a host name", (int)hn, r);
            return 0;
        }
    }
    if (colon) {
        const char *p = colon + 1;
        size_t pn = n - (size_t)(p - r);
        long port = 0;
        if (pn == 0 || pn > 5) {
            snprintf(why, whylen, "registry port must be a number from 1 to 65535");
            return 0;
        }
        for (size_t i = 0; i < pn; i++) {
            if (!isdigit((unsigned char)p[i])) {
                snprintf(why, whylen, "registry port must be a number from 1 to 65535");
                return 0;
            }
            port = port * 10 + (p[i] - '0');
        }
        if (port < 1 || port > 65535) {
            snprintf(why, whylen, "registry port must be a number from 1 to 65535");
            return 0;
        }
    }
    return 1;
}

static char *
xstrndup_(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static int
parse_oci(const char *s, struct imgref *r, char *err, size_t errlen)
{
    const char *body = s + 4;
    if (body[0] != '/')
        return errf(CAIRN_EPARSE, err, errlen,
                    "image '%s': the layout path after 'oci:' must be absolute, e.g. "
                    "oci:/srv/images/train:2.3",
                    s);
    /* The tag is after a ':' in the last path component. */
    const char *slash = strrchr(body, '/');
    const char *colon = strchr(slash, ':');
    size_t plen = colon ? (size_t)(colon - body) : strlen(body);
    while (plen > 1 && body[plen - 1] == '/')
        plen--;
    if (colon) {
        const char *tag = colon + 1;
        if (!tag_ok(tag, strlen(tag)))
            return errf(CAIRN_EPARSE, err, errlen,
                        "image '%s': tag '%s' is not valid (letters, digits, '_', '.', '-'; "
                        "at most 128; not starting with '.' or '-')",
                        s, tag);
        if (!(r->tag = strdup(tag)))
            return CAIRN_ENOMEM;
    }
    if (plen <= 1 && body[0] == '/' && (plen == 0 || body[1] == '\0' || body[1] == ':'))
        return errf(CAIRN_EPARSE, err, errlen, "image '%s': the layout path must not be /", s);
    if (!(r->path = xstrndup_(body, plen)))
        return CAIRN_ENOMEM;
    r->kind = IMGREF_OCI;
    return 0;
}

static int
parse_registry(const char *s, struct imgref *r, char *err, size_t errlen)
{
    char why[160] = "";
    size_t n = strlen(s);
    if (n == 0)
        return errf(CAIRN_EPARSE, err, errlen, "image must not be empty");
    if (n > 4096)
        return errf(CAIRN_EPARSE, err, errlen, "image reference is longer than 4096 characters");
    for (size_t i = 0; i < n; i++)
        if (isspace((unsigned char)s[i]))
            return errf(CAIRN_EPARSE, err, errlen, "image '%s' contains white space", s);
    /* @digest */
    const char *at = strchr(s, '@');
    size_t end = at ? (size_t)(at - s) : n;
    if (at) {
        if (!imgref_digest_ok(at + 1))
            return errf(CAIRN_EPARSE, err, errlen,
                        "image '%s': digest '%s' must be sha256: followed by 64 lowercase hex "
                        "digits",
                        s, at + 1);
        if (!(r->digest = strdup(at + 1)))
            return CAIRN_ENOMEM;
    }
    /* Registry: the first component when it looks like a host. */
    const char *slash = memchr(s, '/', end);
    size_t rstart = 0;
    if (slash) {
        size_t hn = (size_t)(slash - s);
        int is_host = memchr(s, '.', hn) || memchr(s, ':', hn) || (hn == 9 && !memcmp(s, "localhost", 9)) ||
                      (hn > 0 && s[0] == '[');
        if (is_host) {
            if (!registry_ok(s, hn, why, sizeof(why)))
                return errf(CAIRN_EPARSE, err, errlen, "image '%s': %s", s, why);
            if (hn == 15 && !memcmp(s, "index.docker.io", 15))
                r->registry = strdup(IMGREF_DEFAULT_REGISTRY);
            else
                r->registry = xstrndup_(s, hn);
            if (!r->registry)
                return CAIRN_ENOMEM;
            rstart = hn + 1;
        }
    }
    if (!r->registry && !(r->registry = strdup(IMGREF_DEFAULT_REGISTRY)))
        return CAIRN_ENOMEM;
    /* :tag after the last '/' of the repository part. */
    const char *rp = s + rstart;
    size_t rn = end - rstart;
    const char *lastslash = NULL;
    for (size_t i = 0; i < rn; i++)
        if (rp[i] == '/')
            lastslash = rp + i;
    const char *tc = memchr(lastslash ? lastslash : rp, ':', rn - (size_t)((lastslash ? lastslash : rp) - rp));
    size_t repo_n = tc ? (size_t)(tc - rp) : rn;
    if (tc) {
        size_t tn = rn - repo_n - 1;
        if (!tag_ok(tc + 1, tn))
            return errf(CAIRN_EPARSE, err, errlen,
                        "image '%s': tag '%.*s' is not valid (letters, digits, '_', '.', '-'; at "
                        "most 128; not starting with '.' or '-')",
                        s, (int)tn, tc + 1);
        if (!(r->tag = xstrndup_(tc + 1, tn)))
            return CAIRN_ENOMEM;
    } else if (!r->digest) {
        if (!(r->tag = strdup("latest")))
            return CAIRN_ENOMEM;
    }
    if (repo_n == 0)
        return errf(CAIRN_EPARSE, err, errlen, "image '%s': the repository name is empty", s);
    /* Check every component of the repository. */
    size_t i = 0;
    while (i <= repo_n) {
        size_t j = i;
        while (j < repo_n && rp[j] != '/')
            j++;
        if (!component_ok(rp + i, j - i)) {
            int upper = 0;
            for (size_t k = i; k < j; k++)
                upper |= isupper((unsigned char)rp[k]);
            if (j == i)
                return errf(CAIRN_EPARSE, err, errlen,
                            "image '%s': empty component in the repository name", s);
            return errf(CAIRN_EPARSE, err, errlen,
                        "image '%s': repository component '%.*s' is not valid (%s)", s, (int)(j - i),
                        rp + i,
                        upper ? "repository names are lowercase"
                              : "lowercase letters and digits, separated by '.', '_', '__' or '-'");
        }
        i = j + 1;
    }
    if (repo_n > 255)
        return errf(CAIRN_EPARSE, err, errlen,
                    "image '%s': the repository name is longer than 255 characters", s);
    int hub = !strcmp(r->registry, IMGREF_DEFAULT_REGISTRY);
    if (hub && !memchr(rp, '/', repo_n)) {
        r->repo = malloc(repo_n + 9);
        if (r->repo)
            snprintf(r->repo, repo_n + 9, "library/%.*s", (int)repo_n, rp);
    } else {
        r->repo = xstrndup_(rp, repo_n);
    }
    if (!r->repo)
        return CAIRN_ENOMEM;
    r->kind = IMGREF_REGISTRY;
    return 0;
}

int
imgref_parse(const char *s, struct imgref *out, char *err, size_t errlen)
{
    struct imgref r = {0};
    int rc;
    if (err && errlen)
        err[0] = '\0';
    if (!s)
        return errf(CAIRN_EPARSE, err, errlen, "image must not be empty");
    if (!strcmp(s, "host")) {
        r.kind = IMGREF_HOST;
        rc = 0;
    } else if (s[0] == '/') {
        r.kind = IMGREF_ROOTFS;
        rc = (r.path = strdup(s)) ? 0 : CAIRN_ENOMEM;
    } else if (!strncmp(s, "oci:", 4)) {
        rc = parse_oci(s, &r, err, errlen);
    } else if (s[0] == '.' || strchr(s, '\\')) {
        rc = errf(CAIRN_EPARSE, err, errlen,
                  "image '%s' is neither 'host', an absolute rootfs path, oci:/path nor a "
                  "registry reference such as registry.example/ml/train:2.3",
                  s);
    } else {
        rc = parse_registry(s, &r, err, errlen);
    }
    if (rc != 0) {
        imgref_clear(&r);
        return rc;
    }
    *out = r;
    return 0;
}

void
imgref_clear(struct imgref *r)
{
    if (!r)
        return;
    free(r->path);
    free(r->registry);
    free(r->repo);
    free(r->tag);
    free(r->digest);
    memset(r, 0, sizeof(*r));
}

char *
imgref_format(const struct imgref *r)
{
    switch (r->kind) {
    case IMGREF_HOST:
        return strdup("host");
    case IMGREF_ROOTFS:
        return r->path ? strdup(r->path) : NULL;
    case IMGREF_OCI:
        return xasprintf("oci:%s%s%s", r->path, r->tag ? ":" : "", r->tag ? r->tag : "");
    case IMGREF_REGISTRY:
        return xasprintf("%s/%s%s%s%s%s", r->registry, r->repo, r->tag ? ":" : "",
                         r->tag ? r->tag : "", r->digest ? "@" : "", r->digest ? r->digest : "");
    }
    return NULL;
}

int
imgref_is_pulled(const char *s)
{
    struct imgref r;
    if (imgref_parse(s, &r, NULL, 0) != 0)
        return 0;
    int pulled = r.kind == IMGREF_OCI || r.kind == IMGREF_REGISTRY;
    imgref_clear(&r);
    return pulled;
}
