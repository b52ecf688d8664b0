/* artifact_s3.c - the artifact store on an S3-compatible object store.
 *
 * The "s3" backend of artifact.h: the same content-addressed layout as a
 * file store, as keys under PREFIX (PREFIX/blobs/sha256/ab/cdef...), reached
 * over HTTP(S) with libcurl, each request signed with AWS Signature V4 by
 * libcurl itself (CURLOPT_AWS_SIGV4). Payloads are sent as UNSIGNED-PAYLOAD:
 * the blob's integrity is its content address, checked by this module at
 * both ends, and TLS (an https:// endpoint) protects the bytes on the way.
 *
 * Owns the requests a store needs (the URI, its settings and the
 * credentials are artifact_s3open.c's): HEAD, PUT,
 * multipart upload (initiate, parts, complete, abort), GET, the listing of
 * keys (ListObjectsV2) and DELETE. No request body or response is held in
 * memory beyond curl's buffers, except the small XML documents of listing
 * and multipart (capped).
 *
 * Lifecycle: art__s3_open parses and loads everything once; the store
 * object is then immutable, so any number of threads may use it: each
 * operation makes its own curl handle (kept for the requests of that
 * operation), and a multipart upload a curl multi handle with S3_PARALLEL
 * easy handles, one per part in flight, driven on the calling thread.
 *
 * Transient failures (connection errors, timeouts, HTTP 500/502/503/504) are
 * retried twice with a short pause; the body is re-read from the file and
 * the running hashes are rewound, so a retry cannot corrupt a digest.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "artifact_int.h"
#include "err.h"
#include "log.h"
#include "util.h"

#define S3_PART_SIZE ((int64_t)16 << 20) /* multipart above this, in parts of it */
#define S3_MAX_PARTS 10000               /* S3's limit */
#ifndef S3_PARALLEL
#define S3_PARALLEL 4 /* parts in flight at once */
#endif
#define S3_BODY_MAX ((size_t)32 << 20) /* XML answers kept in memory, at most */
#define S3_ERR_BODY_MAX ((size_t)64 << 10)
#define S3_TRIES 3

static void
s3__close(struct art_store *s)
{
    art__s3_free(s->be);
    s->be = NULL;
}

static char *
s3__key(const struct art_s3 *b, const char *hex)
{
    return xasprintf("%s%.2s/%s", b->blob_dir, hex, hex + 2);
}

static char *
s3__blob_uri(const struct art_store *s, const char *hex)
{
    const struct art_s3 *b = s->be;
    return xasprintf("s3://%s/%s%.2s/%s", b->bucket, b->blob_dir, hex, hex + 2);
}

static int
s3__blob_path(struct art_store *s, const char *hex, char **path_out)
{
    (void)s;
    (void)hex;
    (void)path_out;
    return CAIRN_EINVAL; /* no local files */
}

/* ---- requests ---------------------------------------------------------- */

struct s3_io {
    CURL *c;
    /* the request body: a range of a file, or bytes in memory */
    int up_fd;
    int64_t up_off0, up_len0, up_off, up_left;
    const char *up_mem;
    size_t up_mem_len, up_mem_pos;
    EVP_MD_CTX *up_ctx, *up_saved; /* hash of what is sent; rewound on retry */
    int up_errno;
    /* the response body of a 2xx: to a file (hashed), else into body */
    int down_fd;
    EVP_MD_CTX *down_ctx;
    int down_errno;
    char *body;
    size_t body_len, body_max;
    bool body_over;
    char etag[256];
};

static size_t
s3__read_cb(char *buf, size_t size, size_t nitems, void *ud)
{
    struct s3_io *io = ud;
    size_t want = size * nitems;
    if (io->up_mem) {
        size_t n = io->up_mem_len - io->up_mem_pos;
        if (n > want)
            n = want;
        memcpy(buf, io->up_mem + io->up_mem_pos, n);
        io->up_mem_pos += n;
        return n;
    }
    if ((int64_t)want > io->up_left)
        want = (size_t)io->up_left;
    if (want == 0)
        return 0;
    ssize_t n;
    do
        n = pread(io->up_fd, buf, want, io->up_off);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        io->up_errno = n < 0 ? errno : ENODATA; /* the file shrank */
        return CURL_READFUNC_ABORT;
    }
    if (io->up_ctx && EVP_DigestUpdate(io->up_ctx, buf, (size_t)n) != 1) {
        io->up_errno = EIO;
        return CURL_READFUNC_ABORT;
    }
    io->up_off += n;
    io->up_left -= n;
    return (size_t)n;
}

static size_t
s3__write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    struct s3_io *io = ud;
    size_t n = size * nmemb;
    long code = 0;
    curl_easy_getinfo(io->c, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code < 300 && io->down_fd >= 0) {
        if (io->down_ctx && EVP_DigestUpdate(io->down_ctx, data, n) != 1) {
            io->down_errno = EIO;
            return 0;
        }
        for (size_t off = 0; off < n;) {
            ssize_t w = write(io->down_fd, data + off, n - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                io->down_errno = errno;
                return 0;
            }
            off += (size_t)w;
        }
        return n;
    }
    size_t max = (code >= 200 && code < 300) ? io->body_max : S3_ERR_BODY_MAX;
    if (io->body_len + n > max) {
        io->body_over = true;
        n = io->body_len < max ? max - io->body_len : 0;
        if (code >= 200 && code < 300)
            return 0; /* an answer too large to be ours: stop */
    }
    io->body = xrealloc(io->body, io->body_len + n + 1);
    memcpy(io->body + io->body_len, data, n);
    io->body_len += n;
    io->body[io->body_len] = '\0';
    return size * nmemb;
}

static size_t
s3__header_cb(char *data, size_t size, size_t nitems, void *ud)
{
    struct s3_io *io = ud;
    size_t n = size * nitems;
    if (n > 5 && strncasecmp(data, "etag:", 5) == 0) {
        size_t i = 5, j = n;
        while (i < j && (data[i] == ' ' || data[i] == '\t'))
            i++;
        while (j > i && (data[j - 1] == '\r' || data[j - 1] == '\n' || data[j - 1] == ' '))
            j--;
        if (j - i < sizeof(io->etag)) {
            memcpy(io->etag, data + i, j - i);
            io->etag[j - i] = '\0';
        }
    }
    return n;
}

/* Undo what a failed try did to the io before the next one. */
static int
s3__rewind(struct s3_io *io)
{
    io->up_off = io->up_off0;
    io->up_left = io->up_len0;
    io->up_mem_pos = 0;
    if (io->up_ctx && io->up_saved && EVP_MD_CTX_copy_ex(io->up_ctx, io->up_saved) != 1)
        return -1;
    if (io->down_fd >= 0) {
        if (ftruncate(io->down_fd, 0) != 0 || lseek(io->down_fd, 0, SEEK_SET) != 0)
            return -1;
        if (io->down_ctx && EVP_DigestInit_ex(io->down_ctx, EVP_sha256(), NULL) != 1)
            return -1;
    }
    free(io->body);
    io->body = NULL;
    io->body_len = 0;
    io->body_over = false;
    io->etag[0] = '\0';
    return 0;
}

static void
s3__io_init(struct s3_io *io, CURL *c)
{
    memset(io, 0, sizeof(*io));
    io->c = c;
    io->up_fd = -1;
    io->down_fd = -1;
    io->body_max = S3_BODY_MAX;
}

static void
s3__io_clear(struct s3_io *io)
{
    free(io->body);
    io->body = NULL;
    io->body_len = 0;
}

static bool
s3__transient(CURLcode cc, long status)
{
    if (cc == CURLE_OK)
        return status == 500 || status == 502 || status == 503 || status == 504;
    return cc == CURLE_COULDNT_CONNECT || cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR ||
           cc == CURLE_GOT_NOTHING || cc == CURLE_PARTIAL_FILE || cc == CURLE_OPERATION_TIMEDOUT;
}

/* The headers of every request (and extra's); *tokh holds the session
 * token's line, freed by the caller after the list. */
static struct curl_slist *
s3__headers(const struct art_s3 *b, const struct curl_slist *extra, char **tokh)
{
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
    /* No "Expect:" line to turn 100-continue off: libcurl before 8.x signs
     * such a removal as a header "expect" with no value that is never sent,
     * which a server checking signatures refuses (tests/s3/sigv4_s3.py; MinIO
     * reads a signed but absent expect as "100-continue"). The Expect curl
     * adds to large uploads is not signed, which S3 allows (it is no
     * x-amz- header). */
    *tokh = NULL;
    if (b->session_token) {
        *tokh = xasprintf("x-amz-security-token: %s", b->session_token);
        h = curl_slist_append(h, *tokh);
    }
    for (const struct curl_slist *e = extra; e; e = e->next)
        h = curl_slist_append(h, e->data);
    return h;
}

/* Set up io->c for one try of method on url (h, ebuf: the caller's, alive
 * until the transfer ends). */
static void
s3__setup(const struct art_s3 *b, struct s3_io *io, const char *method, const char *url,
          struct curl_slist *h, char *ebuf)
{
    CURL *c = io->c;
    bool upload = io->up_fd >= 0 || io->up_mem;
    curl_easy_reset(c);
    ebuf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, b->sigv4);
    curl_easy_setopt(c, CURLOPT_USERNAME, b->access_key);
    curl_easy_setopt(c, CURLOPT_PASSWORD, b->secret_key);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 120L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s3__write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, io);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, s3__header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, io);
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
    curl_easy_setopt(c, CURLOPT_PRIVATE, io);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "PUT") == 0) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 1024L * 1024);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, s3__read_cb);
        curl_easy_setopt(c, CURLOPT_READDATA, io);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
                         (curl_off_t)(io->up_mem ? (int64_t)io->up_mem_len
                                      : upload   ? io->up_len0
                                                 : 0));
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, io->up_mem ? io->up_mem : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(io->up_mem ? io->up_mem_len : 0));
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
}

/* How a finished try went: 0, or an error code with err set (the file
 * could not be read, the download not written, the transfer failed). */
static int
s3__outcome(const struct s3_io *io, CURLcode cc, const char *method, const char *url,
            const char *ebuf, char *err, size_t errlen)
{
    if (io->up_errno)
        return art__sys(err, errlen, io->up_errno, "cannot read the file being uploaded to", url);
    if (io->down_errno)
        return art__sys(err, errlen, io->down_errno, "cannot write what was downloaded from", url);
    if (cc != CURLE_OK) {
        art__msg(err, errlen, "S3 %s %s: %s", method, url, ebuf[0] ? ebuf : curl_easy_strerror(cc));
        return CAIRN_EIO;
    }
    return 0;
}

/* One request: method on key (NULL: the bucket) with query (canonical:
 * names sorted, values percent-encoded; NULL: none). The body comes from
 * io's up_fd/up_mem, the answer goes to io (down_fd, body). 0 with *status
 * the HTTP status, or CAIRN_EIO (the transfer failed; err says why). */
static int
s3__req(const struct art_s3 *b, struct s3_io *io, const char *method, const char *key,
        const char *query, struct curl_slist *extra, long *status, char *err, size_t errlen)
{
    char *url =
        xasprintf("%s%s%s%s", b->base, key ? key : "", query ? "?" : "", query ? query : "");
    char *tokh;
    struct curl_slist *h = s3__headers(b, extra, &tokh);
    char ebuf[CURL_ERROR_SIZE];
    CURLcode cc = CURLE_OK;
    long code = 0;
    int rc = 0;
    for (int attempt = 1;; attempt++) {
        s3__setup(b, io, method, url, h, ebuf);
        cc = curl_easy_perform(io->c);
        code = 0;
        curl_easy_getinfo(io->c, CURLINFO_RESPONSE_CODE, &code);
        if (attempt < S3_TRIES && s3__transient(cc, code) && !io->up_errno && !io->down_errno) {
            LOG(LOG_INFO, "CAIRN-S3-RETRY", "S3 %s %s: %s; trying again", method, url,
                cc ? (ebuf[0] ? ebuf : curl_easy_strerror(cc)) : "server error");
            if (s3__rewind(io) != 0) {
                rc = art__sys(err, errlen, errno, "cannot restart the transfer of", url);
                break;
            }
            struct timespec ts = {.tv_sec = attempt, .tv_nsec = 0};
            nanosleep(&ts, NULL);
            continue;
        }
        break;
    }
    if (rc == 0)
        rc = s3__outcome(io, cc, method, url, ebuf, err, errlen);
    if (rc == 0)
        *status = code;
    curl_slist_free_all(h);
    free(tokh);
    free(url);
    return rc;
}

/* The text of <tag> after *pos in xml, unescaped, malloc'd; *pos moves past
 * it. NULL when there is none. */
static char *
s3__xml(const char *xml, const char **pos, const char *tag)
{
    if (!xml)
        return NULL;
    char open[64], close[64];
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    const char *from = pos && *pos ? *pos : xml;
    const char *a = strstr(from, open);
    if (!a)
        return NULL;
    a += strlen(open);
    const char *z = strstr(a, close);
    if (!z)
        return NULL;
    if (pos)
        *pos = z + strlen(close);
    char *out = xcalloc(1, (size_t)(z - a) + 1), *o = out;
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&amp;", '&'},  {"&lt;", '<'},    {"&gt;", '>'},
                {"&quot;", '"'}, {"&apos;", '\''}, {"&#34;", '"'}};
    for (const char *p = a; p < z;) {
        size_t k = 0;
        if (*p == '&') {
            for (k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
                size_t l = strlen(ents[k].ent);
                if ((size_t)(z - p) >= l && strncmp(p, ents[k].ent, l) == 0) {
                    *o++ = ents[k].c;
                    p += l;
                    break;
                }
            }
            if (k < sizeof(ents) / sizeof(ents[0]))
                continue;
        }
        *o++ = *p++;
    }
    *o = '\0';
    return out;
}

/* A non-2xx answer as a message and a code. */
static int
s3__http_err(const struct art_s3 *b, const char *method, const char *key, long status,
             const struct s3_io *io, char *err, size_t errlen)
{
    char *code = s3__xml(io->body, NULL, "Code");
    char *msg = s3__xml(io->body, NULL, "Message");
    art__msg(err, errlen, "S3 %s s3://%s/%s: HTTP %ld%s%s%s%s", method, b->bucket, key ? key : "",
             status, code ? " " : "", code ? code : "", msg ? ": " : "", msg ? msg : "");
    free(code);
    free(msg);
    if (status == 404)
        return CAIRN_ENOENT;
    if (status == 507)
        return CAIRN_EFULL;
    return CAIRN_EIO;
}

static CURL *
s3__handle(char *err, size_t errlen)
{
    CURL *c = curl_easy_init();
    if (!c)
        art__msg(err, errlen, "cannot set up an HTTP client (curl_easy_init)");
    return c;
}

static int
s3__stat(struct art_store *s, const char *hex, int64_t *size, char *err, size_t errlen)
{
    const struct art_s3 *b = s->be;
    CURL *c = s3__handle(err, errlen);
    if (!c)
        return CAIRN_ENOMEM;
    char *key = s3__key(b, hex);
    struct s3_io io;
    s3__io_init(&io, c);
    long status = 0;
    int rc = s3__req(b, &io, "HEAD", key, NULL, NULL, &status, err, errlen);
    if (rc == 0 && status == 404) {
        art__msg(err, errlen, "artifact %s is not in the store %s", hex, s->uri);
        rc = CAIRN_ENOENT;
    } else if (rc == 0 && (status < 200 || status >= 300)) {
        rc = s3__http_err(b, "HEAD", key, status, &io, err, errlen);
    } else if (rc == 0 && size) {
        curl_off_t n = -1;
        curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &n);
        *size = (int64_t)n;
    }
    s3__io_clear(&io);
    free(key);
    curl_easy_cleanup(c);
    return rc;
}

/* ---- put --------------------------------------------------------------- */

/* Copy the key onto itself so its LastModified is now: gc's min_age then
 * covers the caller until it records its pointer. Best effort. */
static void
s3__touch(const struct art_s3 *b, CURL *c, const char *key)
{
    struct s3_io io;
    s3__io_init(&io, c);
    io.up_mem = "";
    char *src = xasprintf("x-amz-copy-source: /%s/%s", b->bucket, key);
    struct curl_slist *h = curl_slist_append(NULL, src);
    h = curl_slist_append(h, "x-amz-metadata-directive: REPLACE");
    long status = 0;
    char err[256];
    int rc = s3__req(b, &io, "PUT", key, NULL, h, &status, err, sizeof(err));
    if (rc == 0 && (status < 200 || status >= 300 || (io.body && strstr(io.body, "<Error>"))))
        LOG(LOG_DEBUG, "CAIRN-S3-TOUCH", "cannot refresh the age of %s: HTTP %ld", key, status);
    else if (rc)
        LOG(LOG_DEBUG, "CAIRN-S3-TOUCH", "cannot refresh the age of %s: %s", key, err);
    curl_slist_free_all(h);
    free(src);
    s3__io_clear(&io);
}

static void
s3__abort(const struct art_s3 *b, CURL *c, const char *key, const char *qid)
{
    struct s3_io io;
    s3__io_init(&io, c);
    char *q = xasprintf("uploadId=%s", qid);
    long status = 0;
    char err[256];
    if (s3__req(b, &io, "DELETE", key, q, NULL, &status, err, sizeof(err)) != 0 || status >= 300)
        LOG(LOG_WARN, "CAIRN-S3-ABORT",
            "cannot abort the multipart upload of %s (a lifecycle rule will have to): %s", key,
            status >= 300 ? "the server refused" : err);
    free(q);
    s3__io_clear(&io);
}

static int
s3__changed(const char *name, char *err, size_t errlen)
{
    art__msg(err, errlen, "%s changed while it was being stored; nothing stored", name);
    return CAIRN_EIO;
}

/* One PUT of the whole file, hashed on the way. */
static int
s3__put_single(const struct art_s3 *b, CURL *c, int fd, int64_t size, const char *name,
               const char *key, const char *hex, char *err, size_t errlen)
{
    struct s3_io io;
    s3__io_init(&io, c);
    io.up_fd = fd;
    io.up_len0 = io.up_left = size;
    io.up_ctx = EVP_MD_CTX_new();
    io.up_saved = EVP_MD_CTX_new();
    int rc = 0;
    long status = 0;
    if (!io.up_ctx || !io.up_saved || EVP_DigestInit_ex(io.up_ctx, EVP_sha256(), NULL) != 1 ||
        EVP_MD_CTX_copy_ex(io.up_saved, io.up_ctx) != 1) {
        art__msg(err, errlen, "cannot set up SHA-256: out of memory");
        rc = CAIRN_ENOMEM;
        goto out;
    }
    if ((rc = s3__req(b, &io, "PUT", key, NULL, NULL, &status, err, errlen)) != 0)
        goto out;
    if (status < 200 || status >= 300) {
        rc = s3__http_err(b, "PUT", key, status, &io, err, errlen);
        goto out;
    }
    char got[ART_HEX_LEN + 1];
    if ((rc = art__hash_final(io.up_ctx, got, err, errlen)) != 0)
        goto out;
    if (strcmp(got, hex) != 0 || io.up_left != 0) {
        /* What went up is not what was hashed: take it down again. */
        struct s3_io d;
        s3__io_init(&d, c);
        long st2;
        char e2[256];
        (void)s3__req(b, &d, "DELETE", key, NULL, NULL, &st2, e2, sizeof(e2));
        s3__io_clear(&d);
        rc = s3__changed(name, err, errlen);
    }
out:
    EVP_MD_CTX_free(io.up_ctx);
    EVP_MD_CTX_free(io.up_saved);
    s3__io_clear(&io);
    return rc;
}

/* A part being sent: its own handle, answer and error buffer. */
struct s3_part {
    struct s3_io io;
    char *url;
    char ebuf[CURL_ERROR_SIZE];
    int part; /* its number; 0: the slot is free */
    int tries;
};

static bool
s3__same_file(const struct stat *a, const struct stat *b)
{
    return a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
           a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
           a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Send parts 1..nparts of psize bytes of fd, S3_PARALLEL at most at once on
 * one curl multi handle, each read from the file (pread) as curl sends it,
 * so memory is curl's buffers whatever the size. etags[i] gets part i+1's
 * ETag (malloc'd). On an error the parts in flight are dropped. */
static int
s3__put_parts(const struct art_s3 *b, int fd, int64_t size, int64_t psize, int nparts,
              const char *key, const char *qid, char **etags, char *err, size_t errlen)
{
    CURLM *m = curl_multi_init();
    struct s3_part slots[S3_PARALLEL];
    memset(slots, 0, sizeof(slots));
    char *tokh;
    struct curl_slist *h = s3__headers(b, NULL, &tokh);
    int rc = 0, next = 1, busy = 0;
    bool ok = m != NULL;
    for (int i = 0; i < S3_PARALLEL; i++)
        ok = (slots[i].io.c = curl_easy_init()) != NULL && ok;
    if (!ok) {
        art__msg(err, errlen, "cannot set up an HTTP client (curl_multi_init)");
        rc = CAIRN_ENOMEM;
    }
    while (rc == 0) {
        for (int i = 0; i < S3_PARALLEL && next <= nparts; i++) {
            struct s3_part *p = &slots[i];
            if (p->part)
                continue;
            int64_t off = (int64_t)(next - 1) * psize;
            int64_t len = size - off < psize ? size - off : psize;
            s3__io_init(&p->io, p->io.c);
            p->io.up_fd = fd;
            p->io.up_off0 = p->io.up_off = off;
            p->io.up_len0 = p->io.up_left = len;
            free(p->url);
            p->url = xasprintf("%s%s?partNumber=%d&uploadId=%s", b->base, key, next, qid);
            p->part = next++;
            p->tries = 1;
            s3__setup(b, &p->io, "PUT", p->url, h, p->ebuf);
            curl_multi_add_handle(m, p->io.c);
            busy++;
        }
        if (busy == 0)
            break;
        int running = 0;
        CURLMcode mc = curl_multi_perform(m, &running);
        if (mc == CURLM_OK && running > 0)
            mc = curl_multi_poll(m, NULL, 0, 1000, NULL);
        if (mc != CURLM_OK) {
            art__msg(err, errlen, "S3 s3://%s/%s: %s", b->bucket, key, curl_multi_strerror(mc));
            rc = CAIRN_EIO;
            break;
        }
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct s3_part *p = NULL;
            for (int i = 0; i < S3_PARALLEL; i++)
                if (slots[i].part && slots[i].io.c == msg->easy_handle)
                    p = &slots[i];
            if (!p)
                continue;
            CURLcode cc = msg->data.result;
            long code = 0;
            curl_easy_getinfo(p->io.c, CURLINFO_RESPONSE_CODE, &code);
            curl_multi_remove_handle(m, p->io.c);
            busy--;
            if (rc == 0 && p->tries < S3_TRIES && s3__transient(cc, code) && !p->io.up_errno) {
                LOG(LOG_INFO, "CAIRN-S3-RETRY", "S3 PUT %s: %s; trying again", p->url,
                    cc ? (p->ebuf[0] ? p->ebuf : curl_easy_strerror(cc)) : "server error");
                struct timespec ts = {.tv_sec = p->tries, .tv_nsec = 0};
                nanosleep(&ts, NULL);
                p->tries++;
                (void)s3__rewind(&p->io);
                s3__setup(b, &p->io, "PUT", p->url, h, p->ebuf);
                curl_multi_add_handle(m, p->io.c);
                busy++;
                continue;
            }
            if (rc == 0) {
                rc = s3__outcome(&p->io, cc, "PUT", p->url, p->ebuf, err, errlen);
                if (rc == 0 && (code < 200 || code >= 300))
                    rc = s3__http_err(b, "PUT (a part)", key, code, &p->io, err, errlen);
                if (rc == 0 && (!p->io.etag[0] || p->io.up_left != 0)) {
                    art__msg(err, errlen, "S3 s3://%s/%s: part %d was taken without an ETag",
                             b->bucket, key, p->part);
                    rc = CAIRN_EIO;
                }
                if (rc == 0)
                    etags[p->part - 1] = xstrdup(p->io.etag);
            }
            s3__io_clear(&p->io);
            p->part = 0;
        }
    }
    for (int i = 0; i < S3_PARALLEL; i++) {
        if (slots[i].part) /* dropped after an error */
            curl_multi_remove_handle(m, slots[i].io.c);
        s3__io_clear(&slots[i].io);
        if (slots[i].io.c)
            curl_easy_cleanup(slots[i].io.c);
        free(slots[i].url);
    }
    if (m)
        curl_multi_cleanup(m);
    curl_slist_free_all(h);
    free(tokh);
    return rc;
}

/* A multipart upload of parts of psize bytes, S3_PARALLEL in flight (see
 * s3__put_parts). The file was hashed before (hex); that it did not change
 * since is checked by its size and change times (before: fstat before the
 * hash) once every part is sent, before the upload is completed. */
static int
s3__put_multi(const struct art_s3 *b, CURL *c, int fd, const struct stat *before, const char *name,
              const char *key, char *err, size_t errlen)
{
    int64_t size = (int64_t)before->st_size;
    int64_t psize = S3_PART_SIZE;
    while ((size + psize - 1) / psize > S3_MAX_PARTS)
        psize *= 2;
    int nparts = (int)((size + psize - 1) / psize);
    struct s3_io io;
    s3__io_init(&io, c);
    long status = 0;
    char *upload_id = NULL, *qid = NULL, *xml = NULL;
    char **etags = xcalloc((size_t)nparts, sizeof(*etags));
    size_t xlen = 0, xcap = 0;
    int rc = s3__req(b, &io, "POST", key, "uploads=", NULL, &status, err, errlen);
    if (rc)
        goto out;
    if (status < 200 || status >= 300) {
        rc = s3__http_err(b, "POST (start a multipart upload)", key, status, &io, err, errlen);
        goto out;
    }
    upload_id = s3__xml(io.body, NULL, "UploadId");
    s3__io_clear(&io);
    if (!upload_id || !*upload_id) {
        art__msg(err, errlen, "S3 s3://%s/%s: the answer to a multipart upload has no UploadId",
                 b->bucket, key);
        rc = CAIRN_EIO;
        goto out;
    }
    qid = curl_easy_escape(c, upload_id, 0);
    if ((rc = s3__put_parts(b, fd, size, psize, nparts, key, qid, etags, err, errlen)) != 0)
        goto abort;
    struct stat after;
    if (fstat(fd, &after) != 0) {
        rc = art__sys(err, errlen, errno, "cannot stat", name);
        goto abort;
    }
    if (!s3__same_file(before, &after)) {
        rc = s3__changed(name, err, errlen);
        goto abort;
    }
    xml = xstrdup("<CompleteMultipartUpload>");
    xlen = strlen(xml);
    xcap = xlen + 1;
    for (int i = 0; i < nparts; i++) {
        char *p =
            xasprintf("<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i + 1, etags[i]);
        size_t pl = strlen(p);
        xgrow((void **)&xml, &xcap, xlen + pl + 1, 1);
        memcpy(xml + xlen, p, pl + 1);
        xlen += pl;
        free(p);
    }
    {
        const char *end = "</CompleteMultipartUpload>";
        xgrow((void **)&xml, &xcap, xlen + strlen(end) + 1, 1);
        memcpy(xml + xlen, end, strlen(end) + 1);
        xlen += strlen(end);
    }
    s3__io_init(&io, c);
    io.up_mem = xml;
    io.up_mem_len = xlen;
    char q[1100];
    snprintf(q, sizeof(q), "uploadId=%s", qid);
    rc = s3__req(b, &io, "POST", key, q, NULL, &status, err, errlen);
    /* S3 may answer 200 and put the error in the body. */
    if (rc == 0 && (status < 200 || status >= 300 || (io.body && strstr(io.body, "<Error>"))))
        rc = s3__http_err(b, "POST (complete a multipart upload)", key,
                          status >= 300 ? status : 500, &io, err, errlen);
    s3__io_clear(&io);
    if (rc == 0)
        goto out;
abort:
    s3__abort(b, c, key, qid);
out:
    s3__io_clear(&io);
    for (int i = 0; i < nparts; i++)
        free(etags[i]);
    free(etags);
    free(xml);
    free(upload_id);
    curl_free(qid);
    return rc;
}

static int
s3__put(struct art_store *s, int fd, const char *name, char hex_out[ART_HEX_LEN + 1],
        int64_t *size_out, char **uri_out, char *err, size_t errlen)
{
    const struct art_s3 *b = s->be;
    char hex[ART_HEX_LEN + 1];
    int64_t size = 0;
    struct stat before;
    if (fstat(fd, &before) != 0)
        return art__sys(err, errlen, errno, "cannot stat", name);
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    int rc = art__hash_fd(fd, name, hex, &size, err, errlen);
    if (rc)
        return rc;
    if (size != (int64_t)before.st_size)
        return s3__changed(name, err, errlen);
    CURL *c = s3__handle(err, errlen);
    if (!c)
        return CAIRN_ENOMEM;
    char *key = s3__key(b, hex);
    struct s3_io io;
    s3__io_init(&io, c);
    long status = 0;
    rc = s3__req(b, &io, "HEAD", key, NULL, NULL, &status, err, errlen);
    if (rc)
        goto out;
    curl_off_t have = -1;
    curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &have);
    if (status == 200 && have == (curl_off_t)size) {
        s3__touch(b, c, key); /* stored already */
        goto out;
    }
    if (status == 200)
        LOG(LOG_WARN, "CAIRN-ARTIFACT-DAMAGED",
            "blob s3://%s/%s has %lld bytes, its content has %lld: replacing it", b->bucket, key,
            (long long)have, (long long)size);
    else if (status != 404) {
        rc = s3__http_err(b, "HEAD", key, status, &io, err, errlen);
        goto out;
    }
    if (size <= S3_PART_SIZE)
        rc = s3__put_single(b, c, fd, size, name, key, hex, err, errlen);
    else
        rc = s3__put_multi(b, c, fd, &before, name, key, err, errlen);
out:
    s3__io_clear(&io);
    if (rc == 0) {
        memcpy(hex_out, hex, sizeof(hex));
        if (size_out)
            *size_out = size;
        if (uri_out)
            *uri_out = s3__blob_uri(s, hex);
    }
    free(key);
    curl_easy_cleanup(c);
    return rc;
}

/* ---- get --------------------------------------------------------------- */

/* GET the blob into fd (may be -1: only hash it); the digest must match. */
static int
s3__get(struct art_store *s, const char *hex, int fd, char *err, size_t errlen)
{
    const struct art_s3 *b = s->be;
    CURL *c = s3__handle(err, errlen);
    if (!c)
        return CAIRN_ENOMEM;
    char *key = s3__key(b, hex);
    struct s3_io io;
    s3__io_init(&io, c);
    int devnull = -1;
    if (fd < 0)
        fd = devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    io.down_fd = fd;
    io.down_ctx = EVP_MD_CTX_new();
    long status = 0;
    int rc = 0;
    if (fd < 0 || !io.down_ctx || EVP_DigestInit_ex(io.down_ctx, EVP_sha256(), NULL) != 1) {
        art__msg(err, errlen, "cannot set up SHA-256: out of memory");
        rc = CAIRN_ENOMEM;
        goto out;
    }
    if ((rc = s3__req(b, &io, "GET", key, NULL, NULL, &status, err, errlen)) != 0)
        goto out;
    if (status == 404) {
        art__msg(err, errlen, "artifact %s is not in the store %s", hex, s->uri);
        rc = CAIRN_ENOENT;
        goto out;
    }
    if (status < 200 || status >= 300) {
        rc = s3__http_err(b, "GET", key, status, &io, err, errlen);
        goto out;
    }
    char got[ART_HEX_LEN + 1];
    if ((rc = art__hash_final(io.down_ctx, got, err, errlen)) != 0)
        goto out;
    if (strcmp(got, hex) != 0)
        rc = art__mismatch(hex, got, err, errlen);
out:
    EVP_MD_CTX_free(io.down_ctx);
    if (devnull >= 0)
        close(devnull);
    s3__io_clear(&io);
    free(key);
    curl_easy_cleanup(c);
    return rc;
}

static int
s3__verify(struct art_store *s, const char *hex, char *err, size_t errlen)
{
    return s3__get(s, hex, -1, err, errlen);
}

static int
s3__fetch(struct art_store *s, const char *hex, const char *dest, unsigned flags, char *err,
          size_t errlen)
{
    (void)flags; /* always a copy, always checked */
    char *tmp = xasprintf("%s.part.XXXXXX", dest);
    int tfd = mkostemp(tmp, O_CLOEXEC);
    if (tfd < 0) {
        int rc = art__sys(err, errlen, errno, "cannot create", tmp);
        free(tmp);
        return rc;
    }
    int rc = s3__get(s, hex, tfd, err, errlen);
    if (rc == 0 && fchmod(tfd, 0444) != 0)
        rc = art__sys(err, errlen, errno, "cannot chmod", tmp);
    if (close(tfd) != 0 && rc == 0)
        rc = art__sys(err, errlen, errno, "cannot write", tmp);
    if (rc == 0 && rename(tmp, dest) != 0)
        rc = art__sys(err, errlen, errno, "cannot rename into", dest);
    if (rc)
        unlink(tmp);
    free(tmp);
    return rc;
}

/* ---- gc ---------------------------------------------------------------- */

/* "2026-01-05T12:00:00.000Z" as seconds since the epoch; -1 if malformed. */
static int64_t
s3__time(const char *t)
{
    struct tm tm = {0};
    int y, mo, d, h, mi, sec;
    if (!t || sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    return (int64_t)timegm(&tm);
}

/* One <Contents> entry: kept, removed (or counted, when dry) or skipped. */
static void
s3__gc_entry(const struct art_s3 *b, CURL *c, const char *key, const char *mod, int64_t size,
             const char *const *keep, size_t nkeep, int64_t now, int64_t min_age_s, bool dry,
             struct art_gc_stats *st, int *first, char *err, size_t errlen)
{
    size_t dl = strlen(b->blob_dir);
    if (strncmp(key, b->blob_dir, dl) != 0)
        return;
    const char *tail = key + dl; /* "ab/cdef..." */
    if (strlen(tail) != ART_HEX_LEN + 1 || tail[2] != '/')
        return;
    char hex[ART_HEX_LEN + 1];
    memcpy(hex, tail, 2);
    memcpy(hex + 2, tail + 3, ART_HEX_LEN - 2);
    hex[ART_HEX_LEN] = '\0';
    if (!art_hex_valid(hex))
        return;
    if (nkeep && bsearch(hex, keep, nkeep, sizeof(*keep), art__cmp_keep)) {
        st->blobs_kept++;
        return;
    }
    int64_t t = s3__time(mod);
    if (t < 0 || now - t < min_age_s) {
        st->blobs_kept++;
        return;
    }
    if (!dry) {
        struct s3_io io;
        s3__io_init(&io, c);
        long status = 0;
        char e2[512];
        int rc = s3__req(b, &io, "DELETE", key, NULL, NULL, &status, e2, sizeof(e2));
        if (rc == 0 && status >= 300 && status != 404)
            rc = s3__http_err(b, "DELETE", key, status, &io, e2, sizeof(e2));
        s3__io_clear(&io);
        if (rc) {
            if (*first == 0) {
                art__msg(err, errlen, "%s", e2);
                *first = rc;
            }
            st->blobs_kept++;
            return;
        }
    }
    st->blobs_removed++;
    st->blob_bytes += size;
}

static int
s3__gc(struct art_store *s, const char *const *keep, size_t nkeep, int64_t min_age_s, bool dry,
       struct art_gc_stats *st, char *err, size_t errlen)
{
    const struct art_s3 *b = s->be;
    CURL *c = s3__handle(err, errlen);
    if (!c)
        return CAIRN_ENOMEM;
    CURL *del = s3__handle(err, errlen);
    if (!del) {
        curl_easy_cleanup(c);
        return CAIRN_ENOMEM;
    }
    int64_t now = (int64_t)time(NULL);
    int first = 0, rc = 0;
    char *token = NULL;
    char *eprefix = curl_easy_escape(c, b->blob_dir, 0);
    for (;;) {
        char *q;
        if (token) {
            char *et = curl_easy_escape(c, token, 0);
            q = xasprintf("continuation-token=%s&list-type=2&prefix=%s", et, eprefix);
            curl_free(et);
        } else {
            q = xasprintf("list-type=2&prefix=%s", eprefix);
        }
        struct s3_io io;
        s3__io_init(&io, c);
        long status = 0;
        rc = s3__req(b, &io, "GET", NULL, q, NULL, &status, err, errlen);
        free(q);
        if (rc == 0 && (status < 200 || status >= 300))
            rc = s3__http_err(b, "GET (list)", "", status, &io, err, errlen);
        if (rc) {
            s3__io_clear(&io);
            break;
        }
        const char *pos = io.body;
        char *entry;
        while ((entry = s3__xml(io.body, &pos, "Contents")) != NULL) {
            char *key = s3__xml(entry, NULL, "Key");
            char *mod = s3__xml(entry, NULL, "LastModified");
            char *sz = s3__xml(entry, NULL, "Size");
            if (key)
                s3__gc_entry(b, del, key, mod, sz ? strtoll(sz, NULL, 10) : 0, keep, nkeep, now,
                             min_age_s, dry, st, &first, err, errlen);
            free(key);
            free(mod);
            free(sz);
            free(entry);
        }
        char *trunc = s3__xml(io.body, NULL, "IsTruncated");
        free(token);
        token = trunc && strcmp(trunc, "true") == 0
                    ? s3__xml(io.body, NULL, "NextContinuationToken")
                    : NULL;
        free(trunc);
        s3__io_clear(&io);
        if (!token)
            break;
    }
    free(token);
    curl_free(eprefix);
    curl_easy_cleanup(c);
    curl_easy_cleanup(del);
    return rc ? rc : first;
}

const struct art_ops art__s3_ops = {
    .put_fd = s3__put,
    .blob_uri = s3__blob_uri,
    .blob_path = s3__blob_path,
    .stat = s3__stat,
    .verify = s3__verify,
    .fetch = s3__fetch,
    .gc = s3__gc,
    .close = s3__close,
};
