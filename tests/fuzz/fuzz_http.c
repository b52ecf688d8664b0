/* fuzz_http.c - libFuzzer target for the HTTP request parser (httpparse.c).
 *
 * Each input is a byte stream as a client would send it on one connection:
 * requests are parsed one after another, as the server does with pipelined
 * requests, until one is refused or the bytes end. The stream is parsed
 * twice: given whole, and fed in small chunks whose sizes come from the
 * input (the caller drops what the parser took and appends what arrived).
 * Both must give the same requests and the same end. Every parsed request
 * must keep the promises of httpparse.h (a path that starts with '/' and
 * has no ".." segment, header names that are tokens, values without
 * control bytes or surrounding blanks, limits), and every refusal must be
 * one of the documented statuses with a message. Each parsed path is then
 * split into segments and matched against route patterns (route.h) the way
 * the API dispatches it.
 *
 * Build: clang -fsanitize=fuzzer,address -Icommon -Ischeduler tests/fuzz/fuzz_http.c
 *        common/httpparse.c scheduler/route.c common/util.c common/err.c
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "httpparse.h"
#include "route.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
fuzz__is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return 1;
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static void
fuzz__check_token(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        abort();
    for (size_t i = 0; i < n; i++)
        if (!fuzz__is_tchar((unsigned char)s[i]))
            abort();
}

/* A decoded query value: a NUL-free string, or refused as documented. */
static void
fuzz__query(const char *query, const char *name)
{
    char *v = (char *)"untouched";
    int rc = httpp_query_get(query, name, &v);
    if (rc == 0) {
        (void)strlen(v);
        free(v);
    } else if (rc != CAIRN_ENOENT && rc != CAIRN_EINVAL) {
        abort();
    } else if (strcmp(v, "untouched") != 0) {
        abort();
    }
}

/* The promises httpparse.h makes about a parsed request. */
static void
fuzz__check_req(const struct httpp *p)
{
    const struct http_req *r = &p->req;
    fuzz__check_token(r->method, 32);
    if (strcmp(r->path, "*") == 0) {
        if (strcmp(r->method, "OPTIONS") != 0)
            abort();
    } else {
        if (r->path[0] != '/')
            abort();
        for (const char *s = r->path; *s;) {
            size_t n = strcspn(s, "/");
            if (n == 2 && s[0] == '.' && s[1] == '.')
                abort();
            s += n;
            if (*s == '/')
                s++;
        }
    }
    for (const unsigned char *q = (const unsigned char *)r->query; *q; q++)
        if (*q <= 0x20 || *q >= 0x7f || *q == '#')
            abort();
    if (r->minor_version != 0 && r->minor_version != 1)
        abort();
    if (r->nheaders > HTTP_HEADERS_MAX || (r->nheaders > 0 && !r->headers))
        abort();
    for (size_t i = 0; i < r->nheaders; i++) {
        const char *v = r->headers[i].value;
        size_t vn = strlen(v);
        fuzz__check_token(r->headers[i].name, HTTP_HEAD_MAX);
        if (vn > 0 && (v[0] == ' ' || v[0] == '\t' || v[vn - 1] == ' ' || v[vn - 1] == '\t'))
            abort();
        for (size_t k = 0; k < vn; k++)
            if (((unsigned char)v[k] < 0x20 && v[k] != '\t') || v[k] == 0x7f)
                abort();
    }
    if (p->content_length > HTTP_BODY_MAX || (p->keep_alive != 0 && p->keep_alive != 1))
        abort();
    if (p->expect_continue && r->minor_version != 1)
        abort();
    if (p->is_head != (strcmp(r->method, "HEAD") == 0))
        abort();
}

/* Patterns of the shapes the API uses (api.c has the real table). */
static const char *const fuzz__patterns[] = {
    "/",
    "/api/v1/runs",
    "/api/v1/runs/{run}",
    "/api/v1/runs/{run}/tasks/{task}/logs",
    "/api/v1/runs/{run}/artifacts/{task}/{name}/content",
    "/{a}/{b}/{c}/{d}",
    "/{a}/{b}/{c}/{d}/{e}",
    "/x/{",
};

/* The path split and matched as the API does: segments without '/' that
 * join back into the path, parameters that are the segments in their
 * place. */
static void
fuzz__route(const char *path)
{
    struct route_path rp;
    struct sb back;
    route_path_split(&rp, path);
    sb_init(&back);
    sb_puts(&back, "");
    for (size_t i = 0; i < rp.n; i++) {
        if (strchr(rp.seg[i], '/'))
            abort();
        sb_printf(&back, "%s%s", i ? "/" : "", rp.seg[i]);
    }
    const char *p = path + strspn(path, "/");
    size_t plen = strlen(p);
    if (plen > 0 && p[plen - 1] == '/')
        plen--; /* one trailing slash is not a segment */
    if (back.len != plen || memcmp(back.buf, p, plen) != 0)
        abort();
    for (size_t k = 0; k < sizeof(fuzz__patterns) / sizeof(fuzz__patterns[0]); k++) {
        struct route_params m;
        struct route_path pat;
        if (!route_match(fuzz__patterns[k], &rp, &m))
            continue;
        route_path_split(&pat, fuzz__patterns[k]);
        if (pat.n != rp.n)
            abort();
        size_t np = 0;
        for (size_t i = 0; i < pat.n; i++) {
            if (pat.seg[i][0] != '{') {
                if (strcmp(pat.seg[i], rp.seg[i]) != 0)
                    abort();
                continue;
            }
            size_t len = strlen(pat.seg[i]) - 2; /* "{name}" */
            if (np >= m.n || m.p[np].value != rp.seg[i] || m.p[np].name_len != len ||
                memcmp(m.p[np].name, pat.seg[i] + 1, len) != 0)
                abort();
            char *name = xstrndup(pat.seg[i] + 1, len);
            if (route_param(&m, name) != rp.seg[i])
                abort();
            free(name);
            np++;
        }
        if (np != m.n)
            abort();
        route_path_free(&pat);
    }
    sb_free(&back);
    route_path_free(&rp);
}

static int
fuzz__refusal_ok(int st)
{
    return st == 400 || st == 411 || st == 413 || st == 417 || st == 431 || st == 501 || st == 505;
}

/* Parse the stream data (size bytes) fed in chunks (chunk[i % nchunk] bytes
 * at a time; nchunk 0: all at once). What was parsed is written to log. */
static void
fuzz__run(const uint8_t *data, size_t size, const uint8_t *chunk, size_t nchunk, struct sb *log)
{
    struct httpp p;
    struct sb buf; /* what a server would have buffered */
    size_t fed = 0, turn = 0;
    int st = 0;

    httpp_init(&p);
    sb_init(&buf);
    sb_append(&buf, "", 0);
    for (;;) {
        if (fed < size) {
            size_t k = nchunk ? (size_t)chunk[turn++ % nchunk] % 16 + 1 : size;
            if (k > size - fed)
                k = size - fed;
            sb_append(&buf, (const char *)data + fed, k);
            fed += k;
        }
        size_t used = (size_t)-1;
        if (!p.have_head) {
            char msg[160];
            msg[0] = '\0';
            st = httpp_head(&p, buf.buf, buf.len, &used, msg, sizeof(msg));
            if (used > buf.len)
                abort();
            memmove(buf.buf, buf.buf + used, buf.len - used);
            buf.len -= used;
            if (st == HTTPP_MORE) {
                if (fed == size)
                    break;
                continue;
            }
            if (st != 0) {
                if (!fuzz__refusal_ok(st) || msg[0] == '\0' || !memchr(msg, '\0', sizeof(msg)))
                    abort();
                if (p.keep_alive)
                    abort();
                sb_printf(log, "refused %d %s\n", st, msg);
                break;
            }
            fuzz__check_req(&p);
            if (used == 0)
                abort(); /* a head is never empty */
        }
        used = (size_t)-1;
        st = httpp_body(&p, buf.buf, buf.len, &used);
        if (st == HTTPP_MORE) {
            if (used != 0)
                abort();
            if (fed == size)
                break;
            continue;
        }
        if (st != 0 || used != p.content_length || p.req.body_len != used ||
            p.req.body[used] != '\0' || memcmp(p.req.body, buf.buf, used) != 0)
            abort();
        memmove(buf.buf, buf.buf + used, buf.len - used);
        buf.len -= used;

        const struct http_req *r = &p.req;
        sb_printf(log, "%s %s ? %s 1.%d h%zu ka%d ec%d b%zu\n", r->method, r->path, r->query,
                  r->minor_version, r->nheaders, p.keep_alive, p.expect_continue, r->body_len);
        fuzz__route(r->path);
        fuzz__query(r->query, "dag");
        if (r->nheaders > 0)
            fuzz__query(r->query, r->headers[0].value);
        httpp_reset(&p);
    }
    sb_printf(log, "end %d\n", st);
    sb_free(&buf);
    httpp_free(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sb whole, chunked;
    sb_init(&whole);
    sb_init(&chunked);
    fuzz__run(data, size, NULL, 0, &whole);
    /* chunk sizes from the input's last bytes, so the fuzzer explores them */
    size_t nchunk = size < 8 ? size : 8;
    if (nchunk > 0) {
        fuzz__run(data, size, data + size - nchunk, nchunk, &chunked);
        if (strcmp(whole.buf, chunked.buf) != 0)
            abort();
    }
    sb_free(&whole);
    sb_free(&chunked);
    return 0;
}
