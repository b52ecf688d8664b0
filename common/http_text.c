/* http_text.c - the texts of the HTTP server (see http.h): the reason
 * phrase and the error code of each status it sends, UTF-8 cleaning of
 * error messages, and the request's query and header look-ups. */
#include "http.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "httpparse.h"
#include "util.h"

static const struct {
    int status;
    const char *text;
} http_status_texts[] = {
    {100, "Continue"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {422, "Unprocessable Content"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *
http_status_text(int status)
{
    for (size_t i = 0; i < sizeof(http_status_texts) / sizeof(http_status_texts[0]); i++)
        if (http_status_texts[i].status == status)
            return http_status_texts[i].text;
    return "Unknown";
}

const char *
http_status_code(int status)
{
    switch (status) {
    case 400:
        return "bad_request";
    case 408:
        return "request_timeout";
    case 411:
        return "length_required";
    case 413:
        return "body_too_large";
    case 417:
        return "expectation_failed";
    case 431:
        return "head_too_large";
    case 501:
        return "not_implemented";
    case 505:
        return "http_version_not_supported";
    default:
        return "error";
    }
}

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid. */
static size_t
http__utf8_len(const unsigned char *p, size_t n)
{
    size_t len;
    uint32_t cp;
    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xE0) == 0xC0) {
        len = 2;
        cp = p[0] & 0x1F;
    } else if ((p[0] & 0xF0) == 0xE0) {
        len = 3;
        cp = p[0] & 0x0F;
    } else if ((p[0] & 0xF8) == 0xF0) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((p[k] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

char *
http_utf8_clean(const char *s)
{
    size_t n = strlen(s), w = 0;
    const unsigned char *p = (const unsigned char *)s;
    char *o = xmalloc(n + 1);
    for (size_t i = 0; i < n;) {
        size_t len = http__utf8_len(p + i, n - i);
        if (len == 0) {
            o[w++] = '?';
            i++;
        } else {
            memcpy(o + w, p + i, len);
            w += len;
            i += len;
        }
    }
    o[w] = '\0';
    return o;
}

int
http_query_get(const char *query, const char *name, char **out)
{
    return httpp_query_get(query, name, out);
}

const char *
http_req_header(const struct http_req *req, const char *name)
{
    if (!req || !name)
        return NULL;
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}
