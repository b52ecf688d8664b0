/* httpparse.c - the HTTP/1.x request parser (see httpparse.h).
 *
 * Owns the reading of one request from bytes a server has buffered: finding
 * the end of the head, the request line (method, target, version), the
 * header fields, the headers that frame the message (Content-Length,
 * Transfer-Encoding, Connection, Expect), the body, the decoding of query
 * strings, and entity tags (a body's ETag, If-None-Match). It owns no connection: the caller hands it the bytes it
 * has and drops the bytes the parser says it took.
 *
 * Life cycle of a struct httpp: httpp_head is called until it returns 0 or a
 * status (the search for the blank line resumes at p->scan, so a head that
 * arrives a byte at a time is scanned once); on 0, httpp_body until it
 * returns 0. The head is then copied into p->head and parsed in place there;
 * the body is copied into p->body; req's strings point into those two
 * copies, so the caller may move or free its buffer at once. httpp_reset
 * drops the request; httpp_free releases the memory.
 */
#include "httpparse.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "util.h"

#define HTTPP_METHOD_MAX 32

void
httpp_init(struct httpp *p)
{
    memset(p, 0, sizeof(*p));
}

void
httpp_reset(struct httpp *p)
{
    free(p->head);
    p->head = NULL;
    free(p->body);
    p->body = NULL;
    p->nhdrs = 0;
    p->scan = 0;
    p->have_head = 0;
    p->content_length = 0;
    p->keep_alive = 0;
    p->expect_continue = 0;
    p->is_head = 0;
    memset(&p->req, 0, sizeof(p->req));
}

void
httpp_free(struct httpp *p)
{
    if (!p)
        return;
    httpp_reset(p);
    free(p->hdrs);
    p->hdrs = NULL;
    p->hdrs_cap = 0;
}

/* RFC 9110 tchar. */
static int
httpp__is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return 1;
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static int
httpp__hex(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* ---- query strings ------------------------------------------------------ */

/* Decode n bytes of a form-encoded key or value into a malloc'd string.
 * Returns 0, or CAIRN_EINVAL if it decodes to a NUL byte. */
static int
httpp__form_decode(const char *s, size_t n, char **out)
{
    char *o = xmalloc(n + 1);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '+') {
            o[w++] = ' ';
        } else if (ch == '%' && i + 2 < n && httpp__hex((unsigned char)s[i + 1]) >= 0 &&
                   httpp__hex((unsigned char)s[i + 2]) >= 0) {
            int v = httpp__hex((unsigned char)s[i + 1]) * 16 + httpp__hex((unsigned char)s[i + 2]);
            if (v == 0) {
                free(o);
                return CAIRN_EINVAL;
            }
            o[w++] = (char)v;
            i += 2;
        } else {
            o[w++] = (char)ch;
        }
    }
    o[w] = '\0';
    *out = o;
    return 0;
}

int
httpp_query_get(const char *query, const char *name, char **out)
{
    if (!query || !name || !out)
        return CAIRN_ENOENT;
    const char *p = query;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t seg = amp ? (size_t)(amp - p) : strlen(p);
        if (seg > 0) {
            const char *eq = memchr(p, '=', seg);
            size_t klen = eq ? (size_t)(eq - p) : seg;
            char *key;
            if (httpp__form_decode(p, klen, &key) == 0) {
                int match = strcmp(key, name) == 0;
                free(key);
                if (match) {
                    const char *v = eq ? eq + 1 : p + seg;
                    size_t vlen = eq ? seg - klen - 1 : 0;
                    return httpp__form_decode(v, vlen, out);
                }
            }
        }
        p += seg;
        if (*p == '&')
            p++;
    }
    return CAIRN_ENOENT;
}

/* ---- the head ----------------------------------------------------------- */

/* Offset just past the blank line ending the head in buf (len bytes), or 0;
 * only the first HTTP_HEAD_MAX bytes count. */
static size_t
httpp__head_end(struct httpp *p, const char *buf, size_t len)
{
    size_t lim = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX;
    for (size_t i = p->scan; i < lim; i++) {
        if (buf[i] != '\n')
            continue;
        if (i + 1 < lim && buf[i + 1] == '\n')
            return i + 2;
        if (i + 2 < lim && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return i + 3;
    }
    p->scan = lim >= 2 ? lim - 2 : 0;
    return 0;
}

/* Percent-decode a path in place. Returns 0, or -1 for a bad escape or %00. */
static int
httpp__decode_path(char *s)
{
    char *w = s;
    for (const char *r = s; *r;) {
        if (*r != '%') {
            *w++ = *r++;
            continue;
        }
        int hi = httpp__hex((unsigned char)r[1]);
        int lo = hi < 0 ? -1 : httpp__hex((unsigned char)r[2]);
        if (lo < 0 || (hi == 0 && lo == 0))
            return -1;
        *w++ = (char)(hi * 16 + lo);
        r += 3;
    }
    *w = '\0';
    return 0;
}

/* Does the decoded path contain a ".." segment? */
static int
httpp__has_dotdot(const char *s)
{
    while (*s) {
        size_t n = strcspn(s, "/");
        if (n == 2 && s[0] == '.' && s[1] == '.')
            return 1;
        s += n;
        if (*s == '/')
            s++;
    }
    return 0;
}

/* Parse "METHOD TARGET HTTP/x.y" (NUL-terminated, in place). Returns 0 or an
 * HTTP status with a message in msg. */
static int
httpp__request_line(struct httpp *p, char *line, char *msg, size_t msglen)
{
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2) {
        snprintf(msg, msglen, "malformed request line");
        return 400;
    }
    *sp1 = '\0';
    *sp2 = '\0';
    char *method = line, *target = sp1 + 1, *version = sp2 + 1;

    size_t mlen = strlen(method);
    if (mlen == 0 || mlen > HTTPP_METHOD_MAX) {
        snprintf(msg, msglen, "malformed request line");
        return 400;
    }
    for (size_t i = 0; i < mlen; i++) {
        if (!httpp__is_tchar((unsigned char)method[i])) {
            snprintf(msg, msglen, "invalid character in method");
            return 400;
        }
    }

    if (strcmp(version, "HTTP/1.1") == 0) {
        p->req.minor_version = 1;
    } else if (strcmp(version, "HTTP/1.0") == 0) {
        p->req.minor_version = 0;
    } else if (strncmp(version, "HTTP/", 5) == 0 && version[5] >= '0' && version[5] <= '9' &&
               version[6] == '.' && version[7] >= '0' && version[7] <= '9' && version[8] == '\0') {
        snprintf(msg, msglen, "HTTP version %s is not supported (use HTTP/1.1)", version + 5);
        return 505;
    } else {
        snprintf(msg, msglen, "malformed request line");
        return 400;
    }

    if (*target == '\0') {
        snprintf(msg, msglen, "empty request target");
        return 400;
    }
    for (const unsigned char *t = (const unsigned char *)target; *t; t++) {
        if (*t <= 0x20 || *t >= 0x7f) {
            snprintf(msg, msglen, "invalid character in request target");
            return 400;
        }
    }

    /* absolute-form: drop scheme and authority */
    int absolute = 0;
    if (strncasecmp(target, "http://", 7) == 0 || strncasecmp(target, "https://", 8) == 0) {
        target = strstr(target, "//") + 2;
        target += strcspn(target, "/?#");
        absolute = 1;
    }
    char *hash = strchr(target, '#');
    if (hash)
        *hash = '\0';
    char *q = strchr(target, '?');
    p->req.query = "";
    if (q) {
        *q = '\0';
        p->req.query = q + 1;
    }
    if (absolute && *target == '\0') {
        p->req.path = "/";
    } else if (strcmp(target, "*") == 0 && strcmp(method, "OPTIONS") == 0) {
        p->req.path = "*";
    } else if (*target != '/') {
        snprintf(msg, msglen, "request target must start with '/'");
        return 400;
    } else {
        if (httpp__decode_path(target) != 0) {
            snprintf(msg, msglen, "invalid percent-encoding in path");
            return 400;
        }
        if (httpp__has_dotdot(target)) {
            snprintf(msg, msglen, "'..' is not allowed in a path");
            return 400;
        }
        p->req.path = target;
    }
    p->req.method = method;
    p->is_head = strcmp(method, "HEAD") == 0;
    return 0;
}

/* Does a comma-separated header value hold token (case-insensitive)? */
static int
httpp__has_token(const char *value, const char *token)
{
    size_t tlen = strlen(token);
    const char *s = value;
    while (*s) {
        s += strspn(s, " \t,");
        size_t n = strcspn(s, ",");
        size_t m = n;
        while (m > 0 && (s[m - 1] == ' ' || s[m - 1] == '\t'))
            m--;
        if (m == tlen && strncasecmp(s, token, tlen) == 0)
            return 1;
        s += n;
    }
    return 0;
}

/* Interpret the headers that frame the message. Returns 0 or a status. */
static int
httpp__framing(struct httpp *p, char *msg, size_t msglen)
{
    int have_cl = 0, conn_close = 0, conn_ka = 0;
    size_t cl = 0;
    const char *te = NULL;
    for (size_t i = 0; i < p->nhdrs; i++) {
        const char *name = p->hdrs[i].name, *value = p->hdrs[i].value;
        if (strcasecmp(name, "content-length") == 0) {
            size_t v = 0;
            if (*value == '\0') {
                snprintf(msg, msglen, "invalid Content-Length");
                return 400;
            }
            for (const char *d = value; *d; d++) {
                if (*d < '0' || *d > '9') {
                    snprintf(msg, msglen, "invalid Content-Length");
                    return 400;
                }
                v = v * 10 + (size_t)(*d - '0');
                if (v > HTTP_BODY_MAX)
                    v = HTTP_BODY_MAX + 1; /* saturate */
            }
            if (have_cl && v != cl) {
                snprintf(msg, msglen, "conflicting Content-Length headers");
                return 400;
            }
            have_cl = 1;
            cl = v;
        } else if (strcasecmp(name, "transfer-encoding") == 0) {
            if (!te)
                te = value;
        } else if (strcasecmp(name, "connection") == 0) {
            conn_close |= httpp__has_token(value, "close");
            conn_ka |= httpp__has_token(value, "keep-alive");
        } else if (strcasecmp(name, "expect") == 0) {
            if (strcasecmp(value, "100-continue") != 0) {
                snprintf(msg, msglen, "unsupported expectation");
                return 417;
            }
            p->expect_continue = p->req.minor_version >= 1;
        }
    }
    if (te && have_cl) {
        /* RFC 9112 6.1: a request smuggling attempt, or a broken proxy */
        snprintf(msg, msglen, "both Content-Length and Transfer-Encoding: refused");
        return 400;
    }
    if (te) {
        if (httpp__has_token(te, "chunked")) {
            snprintf(msg, msglen, "chunked request bodies are not supported; send Content-Length");
            return 411;
        }
        snprintf(msg, msglen, "Transfer-Encoding is not supported");
        return 501;
    }
    if (cl > HTTP_BODY_MAX) {
        snprintf(msg, msglen, "request body larger than %zu bytes", HTTP_BODY_MAX);
        return 413;
    }
    p->content_length = cl;
    p->keep_alive = p->req.minor_version >= 1 ? !conn_close : (conn_ka && !conn_close);
    return 0;
}

/* Parse the head copied into p->head (len bytes). Returns 0 or a status. */
static int
httpp__parse(struct httpp *p, size_t len, char *msg, size_t msglen)
{
    char *h = p->head, *end = p->head + len;
    if (memchr(h, '\0', len)) {
        snprintf(msg, msglen, "NUL byte in request head");
        return 400;
    }
    int first = 1;
    for (char *line = h; line < end;) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl)
            break;
        char *le = nl;
        if (le > line && le[-1] == '\r')
            le--;
        char *next = nl + 1;
        if (le == line)
            break; /* the blank line */
        *le = '\0';
        if (memchr(line, '\r', (size_t)(le - line))) {
            snprintf(msg, msglen, "stray CR in request head");
            return 400;
        }
        if (first) {
            int st = httpp__request_line(p, line, msg, msglen);
            if (st)
                return st;
            first = 0;
            line = next;
            continue;
        }
        if (*line == ' ' || *line == '\t') {
            snprintf(msg, msglen, "folded header lines are not supported");
            return 400;
        }
        char *colon = strchr(line, ':');
        if (!colon || colon == line) {
            snprintf(msg, msglen, "malformed header line");
            return 400;
        }
        for (const char *c = line; c < colon; c++) {
            if (!httpp__is_tchar((unsigned char)*c)) {
                snprintf(msg, msglen, "invalid character in header name");
                return 400;
            }
        }
        *colon = '\0';
        char *v = colon + 1;
        v += strspn(v, " \t");
        char *ve = v + strlen(v);
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        *ve = '\0';
        for (const unsigned char *c = (const unsigned char *)v; *c; c++) {
            if ((*c < 0x20 && *c != '\t') || *c == 0x7f) {
                snprintf(msg, msglen, "invalid character in header value");
                return 400;
            }
        }
        if (p->nhdrs >= HTTP_HEADERS_MAX) {
            snprintf(msg, msglen, "more than %d header fields", HTTP_HEADERS_MAX);
            return 431;
        }
        xgrow((void **)&p->hdrs, &p->hdrs_cap, p->nhdrs + 1, sizeof(*p->hdrs));
        p->hdrs[p->nhdrs].name = line;
        p->hdrs[p->nhdrs].value = v;
        p->nhdrs++;
        line = next;
    }
    if (first) {
        snprintf(msg, msglen, "malformed request line");
        return 400;
    }
    p->req.headers = p->hdrs;
    p->req.nheaders = p->nhdrs;
    return httpp__framing(p, msg, msglen);
}

int
httpp_head(struct httpp *p, const char *buf, size_t len, size_t *used, char *msg, size_t msglen)
{
    /* Empty lines before a request line are allowed. (There are none once
     * a search has started: p->scan is only moved past a request line's
     * first bytes, so it stays right after the caller drops them.) */
    size_t skip = 0;
    while (skip < len && (buf[skip] == '\r' || buf[skip] == '\n'))
        skip++;
    buf += skip;
    len -= skip;
    *used = skip;
    size_t end = httpp__head_end(p, buf, len);
    if (end == 0) {
        if (len < HTTP_HEAD_MAX)
            return HTTPP_MORE;
        snprintf(msg, msglen, "request head larger than %zu bytes", HTTP_HEAD_MAX);
        p->have_head = 1;
        p->keep_alive = 0;
        return 431;
    }
    p->head = xstrndup(buf, end);
    p->scan = 0;
    p->have_head = 1;
    *used = skip + end;
    int st = httpp__parse(p, end, msg, msglen);
    if (st)
        p->keep_alive = 0; /* a refused request ends the connection */
    return st;
}

int
httpp_body(struct httpp *p, const char *buf, size_t len, size_t *used)
{
    *used = 0;
    if (len < p->content_length)
        return HTTPP_MORE;
    if (p->content_length > 0)
        p->body = xstrndup(buf, p->content_length);
    p->req.body = p->body ? p->body : "";
    p->req.body_len = p->content_length;
    *used = p->content_length;
    return 0;
}

void
httpp_etag(const void *body, size_t len, char out[HTTPP_ETAG_LEN])
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a, 64 bits */
    for (size_t i = 0; i < len; i++) {
        h ^= ((const unsigned char *)body)[i];
        h *= 1099511628211ull;
    }
    snprintf(out, HTTPP_ETAG_LEN, "\"%016" PRIx64 "\"", h);
}

int
httpp_etag_matches(const char *inm, const char *tag)
{
    size_t tl = strlen(tag);
    const char *p = inm;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return 1;
        if (!strncmp(p, "W/", 2))
            p += 2;
        if (!strncmp(p, tag, tl) && (p[tl] == '\0' || p[tl] == ',' || p[tl] == ' ' ||
                                     p[tl] == '\t'))
            return 1;
        while (*p && *p != ',')
            p++;
    }
    return 0;
}
