/* image_registry.c - OCI distribution API over libcurl (see image_registry.h). */
#include "image_registry.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "err.h"
#include "fs.h"
#include "imgref.h"

#define ACCEPT_MANIFESTS                                                                           \
    "Accept: application/vnd.oci.image.index.v1+json, "                                            \
    "application/vnd.oci.image.manifest.v1+json, "                                                 \
    "application/vnd.docker.distribution.manifest.list.v2+json, "                                  \
    "application/vnd.docker.distribution.manifest.v2+json"

#define MANIFEST_MAX (4 << 20)

struct imgreg {
    const struct imgreg_opts *o;
    char *registry;
    char *repo;
    char *base;    /* https://HOST or http://HOST */
    char *userpwd; /* "user:pass" or NULL */
    char *authz;   /* "Authorization: ..." once known, or NULL */
};

struct resp {
    long status;
    struct sb body;
    size_t max;
    char *www_auth;
    char *ctype;
    struct imgblob_writer *w;
    char werr[256];
    int werr_rc;
    imgreg_progress_cb *progress;
    void *ud;
};

static int
is_insecure(const struct imgreg_opts *o, const char *registry)
{
    for (size_t i = 0; i < o->ninsecure; i++)
        if (!strcmp(o->insecure[i], registry))
            return 1;
    return 0;
}

/* Credentials for registry from the config.json: "user:pass" or NULL. */
static char *
creds_for(const char *auth_file, const char *registry)
{
    if (!auth_file)
        return NULL;
    json_error_t je;
    json_t *root = json_load_file(auth_file, 0, &je);
    if (!root)
        return NULL;
    json_t *auths = json_object_get(root, "auths");
    json_t *ent = json_object_get(auths, registry);
    char *out = NULL;
    if (!ent && !strcmp(registry, IMGREF_DEFAULT_REGISTRY))
        ent = json_object_get(auths, "https://index.docker.io/v1/");
    if (!ent) {
        char *u = xasprintf("https://%s", registry);
        ent = json_object_get(auths, u);
        free(u);
    }
    const char *a = json_string_value(json_object_get(ent, "auth"));
    const char *user = json_string_value(json_object_get(ent, "username"));
    const char *pass = json_string_value(json_object_get(ent, "password"));
    if (a) {
        size_t n = strlen(a);
        unsigned char *dec = xcalloc(n + 4, 1);
        int k = EVP_DecodeBlock(dec, (const unsigned char *)a, (int)n);
        if (k > 0) {
            /* EVP_DecodeBlock counts the padding as zero bytes */
            while (n > 0 && a[n - 1] == '=') {
                n--;
                k--;
            }
            dec[k] = '\0';
            if (strchr((char *)dec, ':'))
                out = xstrdup((char *)dec);
        }
        free(dec);
    } else if (user && pass) {
        out = xasprintf("%s:%s", user, pass);
    }
    json_decref(root);
    return out;
}

int
imgreg_open(struct imgreg **out, const struct imgreg_opts *o, const char *registry,
            const char *repo, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct imgreg *r = xcalloc(1, sizeof(*r));
    r->o = o;
    r->registry = xstrdup(registry);
    r->repo = xstrdup(repo);
    const char *host =
        !strcmp(registry, IMGREF_DEFAULT_REGISTRY) ? "registry-1.docker.io" : registry;
    r->base = xasprintf("%s://%s", is_insecure(o, registry) ? "http" : "https", host);
    r->userpwd = creds_for(o->auth_file, registry);
    *out = r;
    return 0;
}

void
imgreg_close(struct imgreg *r)
{
    if (!r)
        return;
    free(r->registry);
    free(r->repo);
    free(r->base);
    free(r->userpwd);
    free(r->authz);
    free(r);
}

static size_t
header_cb(char *buf, size_t size, size_t n, void *ud)
{
    struct resp *rs = ud;
    size_t len = size * n;
    char *line = xasprintf("%.*s", (int)len, buf);
    char *e = line + strlen(line);
    while (e > line && (e[-1] == '\r' || e[-1] == '\n'))
        *--e = '\0';
    if (!strncasecmp(line, "HTTP/", 5)) {
        /* a new response (after a redirect): forget the last one's headers */
        const char *sp = strchr(line, ' ');
        rs->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        free(rs->www_auth);
        free(rs->ctype);
        rs->www_auth = rs->ctype = NULL;
    } else if (!strncasecmp(line, "WWW-Authenticate:", 17)) {
        const char *v = line + 17;
        while (*v == ' ')
            v++;
        free(rs->www_auth);
        rs->www_auth = xstrdup(v);
    } else if (!strncasecmp(line, "Content-Type:", 13)) {
        const char *v = line + 13;
        while (*v == ' ')
            v++;
        free(rs->ctype);
        rs->ctype = xstrndup(v, strcspn(v, ";"));
    }
    free(line);
    return len;
}

static size_t
body_cb(char *buf, size_t size, size_t n, void *ud)
{
    struct resp *rs = ud;
    size_t len = size * n;
    if (rs->w && rs->status == 200) {
        if (imgblob_writer_write(rs->w, buf, len, rs->werr, sizeof(rs->werr)) != 0) {
            rs->werr_rc = CAIRN_EPROTO;
            return 0;
        }
        if (rs->progress)
            rs->progress(rs->ud, imgblob_writer_bytes(rs->w));
        return len;
    }
    if (rs->body.len + len > rs->max)
        return 0;
    sb_append(&rs->body, buf, len);
    return len;
}

static void
resp_clear(struct resp *rs)
{
    sb_free(&rs->body);
    free(rs->www_auth);
    free(rs->ctype);
}

/* curl's progress callback (also called about once a second while nothing
 * moves): a nonzero *cancel stops the transfer. */
static int
xfer_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    const atomic_int *cancel = ud;
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return atomic_load(cancel) != 0;
}

/* One GET; rs->status set. Transport errors become CAIRN_ENET. */
static int
do_get(struct imgreg *r, const char *url, const char *accept, const char *authz,
       const char *userpwd, struct resp *rs, char *err, size_t errlen)
{
    CURL *c = curl_easy_init();
    if (!c)
        return errf(CAIRN_ENOMEM, err, errlen, "cannot start an HTTP request");
    struct curl_slist *h = NULL;
    if (accept)
        h = curl_slist_append(h, accept);
    if (authz)
        h = curl_slist_append(h, authz);
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    if (r->o->timeout_s > 0) {
        curl_easy_setopt(c, CURLOPT_TIMEOUT, r->o->timeout_s);
    } else {
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    }
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, rs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, rs);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "cairn-worker");
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (r->o->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, r->o->ca_file);
    if (r->o->cancel) {
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, xfer_cb);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)(uintptr_t)r->o->cancel);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    }
    if (userpwd) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERPWD, userpwd);
    }
    /* body_cb writes a blob only under a final status 200: header_cb
     * takes the status from each response's status line. */
    CURLcode cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rs->status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    if (rs->werr_rc)
        return errf(rs->werr_rc, err, errlen, "%s", rs->werr);
    if (cc == CURLE_ABORTED_BY_CALLBACK)
        return errf(CAIRN_ENET, err, errlen, "registry %s: cancelled", r->registry);
    if (cc != CURLE_OK)
        return errf(CAIRN_ENET, err, errlen, "registry %s: %s", r->registry,
                    ebuf[0] ? ebuf : curl_easy_strerror(cc));
    return 0;
}

/* A quoted or bare value of key in a WWW-Authenticate challenge. */
static char *
challenge_param(const char *ch, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = ch; (p = strcasestr(p, key)) != NULL; p++) {
        if (p > ch && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
            continue;
        const char *v = p + kl;
        while (*v == ' ')
            v++;
        if (*v != '=')
            continue;
        v++;
        while (*v == ' ')
            v++;
        if (*v == '"') {
            const char *e = strchr(v + 1, '"');
            return e ? xstrndup(v + 1, (size_t)(e - v - 1)) : NULL;
        }
        return xstrndup(v, strcspn(v, ", "));
    }
    return NULL;
}

static char *
url_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *out = xstrdup(e ? e : "");
    curl_free(e);
    return out;
}

/* Answer a 401's challenge: sets r->authz. */
static int
authenticate(struct imgreg *r, const char *challenge, char *err, size_t errlen)
{
    if (!challenge)
        return errf(CAIRN_EAUTH, err, errlen,
                    "registry %s answered 401 for %s without a WWW-Authenticate challenge",
                    r->registry, r->repo);
    if (!strncasecmp(challenge, "Basic", 5)) {
        if (!r->userpwd)
            return errf(CAIRN_EAUTH, err, errlen,
                        "registry %s needs credentials for %s and --registry-auth has none for "
                        "it",
                        r->registry, r->repo);
        free(r->authz);
        r->authz = NULL; /* curl sends them (CURLOPT_USERPWD) */
        return 1;        /* retry with basic credentials */
    }
    if (strncasecmp(challenge, "Bearer", 6) != 0)
        return errf(CAIRN_EAUTH, err, errlen, "registry %s: unsupported authentication '%s'",
                    r->registry, challenge);
    char *realm = challenge_param(challenge, "realm");
    char *service = challenge_param(challenge, "service");
    char *scope = challenge_param(challenge, "scope");
    if (!realm) {
        free(service);
        free(scope);
        return errf(CAIRN_EAUTH, err, errlen, "registry %s: Bearer challenge without a realm",
                    r->registry);
    }
    char *def_scope = xasprintf("repository:%s:pull", r->repo);
    char *es = url_escape(service ? service : "");
    char *esc = url_escape(scope ? scope : def_scope);
    char *url =
        xasprintf("%s%cservice=%s&scope=%s", realm, strchr(realm, '?') ? '&' : '?', es, esc);
    struct resp rs = {.max = 1 << 20};
    sb_init(&rs.body);
    int rc = do_get(r, url, NULL, NULL, r->userpwd, &rs, err, errlen);
    if (rc == 0 && rs.status != 200)
        rc = errf(CAIRN_EAUTH, err, errlen,
                  "registry %s refused the %s for %s (token endpoint %s: HTTP %ld)", r->registry,
                  r->userpwd ? "credentials" : "anonymous access", r->repo, realm, rs.status);
    if (rc == 0) {
        json_error_t je;
        json_t *j = json_loadb(rs.body.buf ? rs.body.buf : "", rs.body.len, 0, &je);
        const char *tok = json_string_value(json_object_get(j, "token"));
        if (!tok)
            tok = json_string_value(json_object_get(j, "access_token"));
        if (!tok)
            rc = errf(CAIRN_EAUTH, err, errlen, "registry %s: the token endpoint gave no token",
                      r->registry);
        else {
            free(r->authz);
            r->authz = xasprintf("Authorization: Bearer %s", tok);
            rc = 1;
        }
        json_decref(j);
    }
    resp_clear(&rs);
    free(url);
    free(es);
    free(esc);
    free(def_scope);
    free(realm);
    free(service);
    free(scope);
    return rc;
}

/* GET with authentication: at most one challenge answered. */
static int
get_authed(struct imgreg *r, const char *url, const char *accept, struct resp *rs, char *err,
           size_t errlen)
{
    int basic = 0;
    for (int round = 0;; round++) {
        int rc = do_get(r, url, accept, r->authz, basic ? r->userpwd : NULL, rs, err, errlen);
        if (rc != 0)
            return rc;
        if (rs->status != 401)
            return 0;
        if (round > 0)
            return errf(CAIRN_EAUTH, err, errlen, "registry %s refused the %s for %s (HTTP 401)",
                        r->registry, r->userpwd ? "credentials" : "anonymous access", r->repo);
        char *ch = rs->www_auth ? xstrdup(rs->www_auth) : NULL;
        sb_free(&rs->body);
        sb_init(&rs->body);
        rc = authenticate(r, ch, err, errlen);
        if (ch && !strncasecmp(ch, "Basic", 5))
            basic = 1;
        free(ch);
        if (rc < 0)
            return rc;
    }
}

static void
sha256_hex(const void *buf, size_t n, char out[72])
{
    unsigned char md[32];
    unsigned int ml = 0;
    EVP_Digest(buf, n, md, &ml, EVP_sha256(), NULL);
    strcpy(out, "sha256:");
    for (int i = 0; i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

int
imgreg_manifest(struct imgreg *r, const char *ref, char **body, size_t *len, char **media_type,
                char digest[72], char *err, size_t errlen)
{
    char *url = xasprintf("%s/v2/%s/manifests/%s", r->base, r->repo, ref);
    struct resp rs = {.max = MANIFEST_MAX};
    sb_init(&rs.body);
    int rc = get_authed(r, url, ACCEPT_MANIFESTS, &rs, err, errlen);
    if (rc == 0 && rs.status == 404)
        rc = errf(CAIRN_ENOENT, err, errlen, "registry %s has no manifest %s:%s", r->registry,
                  r->repo, ref);
    else if (rc == 0 && rs.status != 200)
        rc = errf(CAIRN_EPROTO, err, errlen, "registry %s: manifest %s:%s: HTTP %ld", r->registry,
                  r->repo, ref, rs.status);
    if (rc == 0) {
        sha256_hex(rs.body.buf ? rs.body.buf : "", rs.body.len, digest);
        if (!strncmp(ref, "sha256:", 7) && strcmp(ref, digest) != 0)
            rc = errf(CAIRN_EPROTO, err, errlen,
                      "registry %s: manifest %s@%s has digest %s: refused", r->registry, r->repo,
                      ref, digest);
    }
    if (rc == 0) {
        *len = rs.body.len;
        *body = rs.body.buf ? rs.body.buf : xstrdup("");
        rs.body.buf = NULL;
        *media_type = xstrdup(rs.ctype ? rs.ctype : "");
    }
    resp_clear(&rs);
    free(url);
    return rc;
}

int
imgreg_blob(struct imgreg *r, const char *digest, struct imgblob_writer *w,
            imgreg_progress_cb *progress, void *ud, char *err, size_t errlen)
{
    char *url = xasprintf("%s/v2/%s/blobs/%s", r->base, r->repo, digest);
    struct resp rs = {.max = 1 << 20, .progress = progress, .ud = ud};
    sb_init(&rs.body);
    rs.w = w;
    int rc = get_authed(r, url, NULL, &rs, err, errlen);
    if (rc == 0 && rs.status != 200)
        rc = errf(rs.status == 404 ? CAIRN_ENOENT : CAIRN_EPROTO, err, errlen,
                  "registry %s: blob %s of %s: HTTP %ld", r->registry, digest, r->repo, rs.status);
    resp_clear(&rs);
    free(url);
    return rc;
}
