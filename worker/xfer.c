/* xfer.c - artifacts through the scheduler's HTTP API (see xfer.h).
 *
 * One curl easy handle per request. A download writes each piece curl
 * hands over to the .part file and the running hash; the body of a refusal
 * (an error status) goes to a small buffer instead, for the message. A
 * broken transfer is tried again, from where the file ends: a few times,
 * and while the failures are network errors (a link cut for a while, the
 * scheduler restarting) for up to the remote's patience_ms after the first one, with
 * growing pauses that xfer_stop cuts short.
 */
#include "xfer.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "blobcache.h"
#include "err.h"
#include "fs.h"
#include "log.h"
#include "util.h"

#define XFER_TRIES 4
#define XFER_ERRBODY_MAX 2048
#define XFER_PAUSE_MS 250 /* the first pause after a failure; doubled up to... */
#define XFER_PAUSE_MAX_MS 4000

static atomic_bool xfer__stopping;

void
xfer_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void
xfer_stop(void)
{
    atomic_store(&xfer__stopping, true);
}

/* The failures of one transfer so far. */
struct xfer__tries {
    int n;
    int64_t since; /* clock_mono_ms of the first */
};

/* After a failed try of what (net: a network error or a 5xx, said by err):
 * wait, then true to try again; false when the tries are spent or the
 * worker is stopping. */
static bool
xfer__again(const struct xfer_remote *r, struct xfer__tries *t, bool net, const char *what,
            const char *err)
{
    int64_t now = clock_mono_ms();
    if (t->n++ == 0) {
        t->since = now;
        if (net && r->patience_ms > 0)
            LOG(LOG_WARN, "CAIRN-XFER", "%s failed (%s): trying again for up to %" PRId64 " ms",
                what, err, r->patience_ms);
    }
    if (atomic_load(&xfer__stopping))
        goto stopping;
    if (t->n >= XFER_TRIES && !(net && now - t->since < r->patience_ms)) {
        LOG(LOG_WARN, "CAIRN-XFER", "%s given up after %d tries", what, t->n);
        return false;
    }
    int64_t pause = (int64_t)XFER_PAUSE_MS << (t->n - 1 < 4 ? t->n - 1 : 4);
    if (pause > XFER_PAUSE_MAX_MS)
        pause = XFER_PAUSE_MAX_MS;
    for (int64_t end = now + pause; clock_mono_ms() < end;) {
        if (atomic_load(&xfer__stopping))
            goto stopping;
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
    return true;
stopping:
    LOG(LOG_NOTICE, "CAIRN-XFER", "%s given up: the worker is stopping", what);
    return false;
}

/* ---- one request ---- */

struct xfer_req {
    /* a download: the file and hash the body goes to (status 200/206) */
    int fd;
    struct art_hasher *h;
    int64_t got;
    int werr; /* errno of a failed write */
    /* anything else: the body, kept up to XFER_ERRBODY_MAX */
    struct sb body;
    CURL *c;
};

static size_t
xfer__write_cb(char *data, size_t sz, size_t n, void *ud)
{
    struct xfer_req *q = ud;
    size_t len = sz * n;
    long status = 0;
    curl_easy_getinfo(q->c, CURLINFO_RESPONSE_CODE, &status);
    if (q->fd >= 0 && (status == 200 || status == 206)) {
        size_t done = 0;
        while (done < len) {
            ssize_t w = write(q->fd, data + done, len - done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                q->werr = w < 0 ? errno : EIO;
                return 0; /* curl stops: CURLE_WRITE_ERROR */
            }
            done += (size_t)w;
        }
        if (art_hasher_update(q->h, data, len) != 0) {
            q->werr = ENOMEM;
            return 0;
        }
        q->got += (int64_t)len;
        return len;
    }
    if (q->body.len < XFER_ERRBODY_MAX)
        sb_append(&q->body, data, len < XFER_ERRBODY_MAX ? len : XFER_ERRBODY_MAX);
    return len;
}

/* Set up q->c for url with the lease's credential; *hdrs to free after. */
static void
xfer__setup(const struct xfer_remote *r, struct xfer_req *q, const char *url,
            struct curl_slist **hdrs, char *ebuf)
{
    char *auth = xasprintf("Authorization: Bearer %s", r->token ? r->token : "");
    *hdrs = curl_slist_append(*hdrs, auth);
    free(auth);
    *hdrs = curl_slist_append(*hdrs, "Expect:");
    curl_easy_setopt(q->c, CURLOPT_URL, url);
    curl_easy_setopt(q->c, CURLOPT_HTTPHEADER, *hdrs);
    curl_easy_setopt(q->c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(q->c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(q->c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(q->c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(q->c, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(q->c, CURLOPT_WRITEFUNCTION, xfer__write_cb);
    curl_easy_setopt(q->c, CURLOPT_WRITEDATA, q);
    curl_easy_setopt(q->c, CURLOPT_USERAGENT, "cairn-worker");
    curl_easy_setopt(q->c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (r->ca_file)
        curl_easy_setopt(q->c, CURLOPT_CAINFO, r->ca_file);
}

/* The message of an API error body, or the status. */
static void
xfer__status_err(struct xfer_req *q, long status, const char *what, char *err, size_t errlen)
{
    json_t *j = q->body.len ? json_loadb(q->body.buf, q->body.len, 0, NULL) : NULL;
    const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    snprintf(err, errlen, "%s: HTTP %ld%s%s", what, status, m ? ": " : "", m ? m : "");
    json_decref(j);
}

static int
xfer__status_code(long status)
{
    if (status == 401 || status == 403)
        return CAIRN_EAUTH;
    if (status == 404 || status == 410)
        return CAIRN_ENOENT;
    if (status == 422)
        return CAIRN_EPROTO;
    if (status == 507)
        return CAIRN_EFULL;
    return CAIRN_ENET;
}

/* ---- downloads ---- */

/* Hash the first *have bytes of fd into h (what an earlier try left). */
static int
xfer__rehash(int fd, struct art_hasher *h, int64_t *have)
{
    char *buf = xmalloc(1 << 20);
    int64_t done = 0;
    while (done < *have) {
        ssize_t n = pread(fd, buf, 1 << 20, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        art_hasher_update(h, buf, (size_t)n);
        done += n;
    }
    free(buf);
    *have = done;
    return 0;
}

static char *
xfer__blob_path(const char *cache, const char *sha)
{
    return xasprintf("%s/blobs/sha256/%.2s/%s", cache, sha, sha + 2);
}

int
xfer_get(const struct xfer_remote *r, const char *sha, char *err, size_t errlen)
{
    if (!art_hex_valid(sha))
        return errf(CAIRN_EINVAL, err, errlen, "'%s' is not a sha256 digest", sha);
    char *dest = xfer__blob_path(r->cache, sha);
    struct stat st;
    if (stat(dest, &st) == 0) {
        blobcache_touch(dest);
        free(dest);
        return 0; /* cached */
    }
    char *dir = xasprintf("%s/blobs/sha256/%.2s", r->cache, sha);
    char *tmpdir = xasprintf("%s/tmp", r->cache);
    char *part = xasprintf("%s/%s.part", tmpdir, sha);
    char *url = xasprintf("%s/api/v1/leases/%" PRId64 "/blobs/%s", r->api, r->lease_id, sha);
    char what[96];
    snprintf(what, sizeof(what), "the download of %s", sha);
    int rc = 0, fd = -1;
    struct art_hasher *h = NULL;
    if (fs_mkdirs(dir) != 0 || fs_mkdirs(tmpdir) != 0) {
        rc = errf(CAIRN_EIO, err, errlen, "cannot create %s: %s", dir, strerror(errno));
        goto out;
    }
    fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        rc = errf(CAIRN_EIO, err, errlen, "cannot open %s: %s", part, strerror(errno));
        goto out;
    }
    if (stat(dest, &st) == 0)
        goto out; /* another attempt fetched it while this one waited */
    struct xfer__tries tries = {0};
    for (;;) {
        /* resume after what the file holds (hashing it again first) */
        art_hasher_free(h);
        h = NULL;
        if (art_hasher_new(&h) != 0) {
            rc = errf(CAIRN_ENOMEM, err, errlen, "no memory for a hash");
            goto out;
        }
        struct stat pst;
        int64_t have = fstat(fd, &pst) == 0 ? (int64_t)pst.st_size : 0;
        xfer__rehash(fd, h, &have);
        if (ftruncate(fd, (off_t)have) != 0 || lseek(fd, (off_t)have, SEEK_SET) < 0) {
            rc = errf(CAIRN_EIO, err, errlen, "cannot seek in %s: %s", part, strerror(errno));
            goto out;
        }
        struct xfer_req q = {.fd = fd, .h = h, .got = 0};
        sb_init(&q.body);
        q.c = curl_easy_init();
        if (!q.c) {
            rc = errf(CAIRN_ENOMEM, err, errlen, "cannot start an HTTP request");
            goto out;
        }
        struct curl_slist *hdrs = NULL;
        char ebuf[CURL_ERROR_SIZE] = "", range[64];
        xfer__setup(r, &q, url, &hdrs, ebuf);
        if (have > 0) {
            LOG(LOG_INFO, "CAIRN-XFER", "resuming the download of %s after %" PRId64 " bytes", sha,
                have);
            snprintf(range, sizeof(range), "%" PRId64 "-", have);
            curl_easy_setopt(q.c, CURLOPT_RANGE, range);
        }
        CURLcode cc = curl_easy_perform(q.c);
        long status = 0;
        curl_easy_getinfo(q.c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(q.c);
        curl_slist_free_all(hdrs);
        if (q.werr) {
            rc = errf(q.werr == ENOSPC || q.werr == EDQUOT ? CAIRN_EFULL : CAIRN_EIO, err, errlen,
                      "cannot write %s: %s", part, strerror(q.werr));
            sb_free(&q.body);
            goto out;
        }
        if (cc == CURLE_OK && (status == 416 || status == 200) && have > 0) {
            /* 416: the part holds more than the blob; 200: the whole blob
             * came (no range), written after the old bytes. Start over. */
            sb_free(&q.body);
            if (ftruncate(fd, 0) != 0) {
                rc = errf(CAIRN_EIO, err, errlen, "cannot truncate %s", part);
                goto out;
            }
            if (!xfer__again(r, &tries, false, what, err)) {
                rc = errf(CAIRN_ENET, err, errlen, "%s: the download kept starting over", url);
                goto out;
            }
            continue;
        }
        if (cc == CURLE_OK && status != 200 && status != 206) {
            xfer__status_err(&q, status, url, err, errlen);
            rc = xfer__status_code(status);
            sb_free(&q.body);
            if (rc != CAIRN_ENET || !xfer__again(r, &tries, true, what, err))
                goto out;
            continue;
        }
        sb_free(&q.body);
        if (cc != CURLE_OK) {
            rc = errf(CAIRN_ENET, err, errlen, "%s: %s", url,
                      ebuf[0] ? ebuf : curl_easy_strerror(cc));
            if (q.got > 0) {
                tries = (struct xfer__tries){0}; /* it moved on: a fresh count */
                LOG(LOG_WARN, "CAIRN-XFER",
                    "download of %s broke after %" PRId64 " bytes (%s); resuming", sha,
                    have + q.got, err);
            }
            if (!xfer__again(r, &tries, true, what, err))
                goto out;
            continue;
        }
        char got[ART_HEX_LEN + 1];
        int64_t n = 0;
        art_hasher_final(h, got, &n);
        art_hasher_free(h);
        h = NULL;
        if (strcmp(got, sha) != 0) {
            rc = errf(CAIRN_EPROTO, err, errlen,
                      "the download of blob %s (%" PRId64 " bytes) hashes to %s: refused", sha, n,
                      got);
            if (ftruncate(fd, 0) != 0) {
                /* the next try rehashes it anyway */
            }
            if (have > 0 && xfer__again(r, &tries, false, what, err)) {
                /* what an earlier try left was not the blob's start */
                LOG(LOG_WARN, "CAIRN-XFER",
                    "%s; starting over without the %" PRId64 " bytes an earlier download left", err,
                    have);
                continue;
            }
            goto out;
        }
        if (fsync(fd) != 0 || fchmod(fd, 0444) != 0 || rename(part, dest) != 0) {
            rc = errf(CAIRN_EIO, err, errlen, "cannot store %s in the cache: %s", sha,
                      strerror(errno));
            goto out;
        }
        rc = 0;
        goto out;
    }
out:
    if (fd >= 0)
        close(fd); /* and its lock */
    art_hasher_free(h);
    free(url);
    free(part);
    free(tmpdir);
    free(dir);
    free(dest);
    return rc;
}

/* ---- uploads ---- */

/* One request with body (len bytes, may be 0) by method; *status and
 * *resp (the decoded JSON answer, or NULL) set. 0 or CAIRN_ENET. */
static int
xfer__call(const struct xfer_remote *r, const char *method, const char *url, const void *body,
           size_t len, long *status, json_t **resp, char *err, size_t errlen)
{
    struct xfer_req q = {.fd = -1};
    sb_init(&q.body);
    *resp = NULL;
    q.c = curl_easy_init();
    if (!q.c)
        return errf(CAIRN_ENOMEM, err, errlen, "cannot start an HTTP request");
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    char ebuf[CURL_ERROR_SIZE] = "";
    xfer__setup(r, &q, url, &hdrs, ebuf);
    if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(q.c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(q.c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(q.c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    CURLcode cc = curl_easy_perform(q.c);
    curl_easy_getinfo(q.c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(q.c);
    curl_slist_free_all(hdrs);
    int rc = 0;
    if (cc != CURLE_OK)
        rc = errf(CAIRN_ENET, err, errlen, "%s %s: %s", method, url,
                  ebuf[0] ? ebuf : curl_easy_strerror(cc));
    else {
        *resp = q.body.len ? json_loadb(q.body.buf, q.body.len, 0, NULL) : NULL;
        if (*status >= 400)
            xfer__status_err(&q, *status, url, err, errlen);
    }
    sb_free(&q.body);
    return rc;
}

int
xfer_put(const struct xfer_remote *r, const char *path, const char *sha, int64_t size,
         char **uri_out, char *err, size_t errlen)
{
    char *base = xasprintf("%s/api/v1/leases/%" PRId64 "/uploads/%s", r->api, r->lease_id, sha);
    char *commit = xasprintf("%s/commit?size=%" PRId64, base, size);
    char what[96];
    snprintf(what, sizeof(what), "the upload of %s", sha);
    blobcache_touch(path); /* sent now: used now */
    char *buf = NULL;
    int fd = -1, rc = 0;
    struct xfer__tries tries = {0};
    long status = 0;
    json_t *resp = NULL;
    int64_t off = 0;
    bool sent = false;
    for (;;) {
        /* commit: at once, in case the store has it already (dedupe) */
        json_decref(resp);
        resp = NULL;
        if (size > 0 || sent) {
            rc = xfer__call(r, "POST", commit, NULL, 0, &status, &resp, err, errlen);
            if (rc == 0 && status == 200) {
                const char *uri = json_string_value(json_object_get(resp, "uri"));
                if (!uri) {
                    rc = errf(CAIRN_EPROTO, err, errlen, "the commit of %s named no URI", sha);
                    goto out;
                }
                *uri_out = xstrdup(uri);
                goto out;
            }
            if (rc == 0 && status == 404 && sent && !xfer__again(r, &tries, false, what, err)) {
                rc = xfer__status_code(status); /* the upload keeps vanishing */
                goto out;
            }
            if (rc == 0 && status != 404 && status != 409 && status < 500) {
                rc = xfer__status_code(status);
                goto out;
            }
            if (rc != 0 || status >= 500 || status == 409) {
                if (!xfer__again(r, &tries, rc != 0 || status >= 500, what, err)) {
                    if (rc == 0)
                        rc = xfer__status_code(status);
                    goto out;
                }
                continue;
            }
            rc = 0;
        }
        /* upload from where the scheduler is */
        json_decref(resp);
        resp = NULL;
        rc = xfer__call(r, "GET", base, NULL, 0, &status, &resp, err, errlen);
        if (rc != 0 || status != 200) {
            if (rc == 0)
                rc = xfer__status_code(status);
            if (rc != CAIRN_ENET || !xfer__again(r, &tries, true, what, err))
                goto out;
            continue;
        }
        off = json_integer_value(json_object_get(resp, "offset"));
        if (!buf)
            buf = xmalloc(XFER_CHUNK);
        if (fd < 0 && (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
            rc = errf(CAIRN_EIO, err, errlen, "cannot open %s: %s", path, strerror(errno));
            goto out;
        }
        bool broke = false;
        do {
            size_t want = size - off < (int64_t)XFER_CHUNK ? (size_t)(size - off) : XFER_CHUNK;
            size_t have = 0;
            while (have < want) {
                ssize_t n = pread(fd, buf + have, want - have, (off_t)(off + have));
                if (n < 0 && errno == EINTR)
                    continue;
                if (n <= 0) {
                    rc = errf(CAIRN_EIO, err, errlen, "cannot read %s: %s", path,
                              n < 0 ? strerror(errno) : "it is shorter than it was");
                    goto out;
                }
                have += (size_t)n;
            }
            char *url = xasprintf("%s?offset=%" PRId64, base, off);
            json_decref(resp);
            resp = NULL;
            rc = xfer__call(r, "PUT", url, buf, want, &status, &resp, err, errlen);
            free(url);
            if (rc == 0 && (status == 200 || status == 409) &&
                json_is_integer(json_object_get(resp, "offset"))) {
                off = json_integer_value(json_object_get(resp, "offset"));
                if (status == 200)
                    tries = (struct xfer__tries){0}; /* it moved on: a fresh count */
                if (status == 409 && !xfer__again(r, &tries, false, what, err)) {
                    rc = CAIRN_ENET;
                    goto out;
                }
            } else if (rc == 0 && status < 500) {
                rc = xfer__status_code(status);
                goto out;
            } else {
                broke = true; /* ask where it is, then go on */
                if (!xfer__again(r, &tries, true, what, err)) {
                    if (rc == 0)
                        rc = CAIRN_ENET;
                    goto out;
                }
                break;
            }
        } while (off < size);
        if (broke)
            continue;
        sent = true;
    }
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    json_decref(resp);
    free(commit);
    free(base);
    return rc;
}
