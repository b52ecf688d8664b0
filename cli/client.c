/* client.c - the CLI's HTTP client for the scheduler's JSON API (see
 * client.h).
 *
 * It owns libcurl's global state (set up on the first request, released by
 * client_cleanup) and one easy handle per request, cleaned up before the call
 * returns. Answers are read into memory up to CLIENT_RESPONSE_MAX, except
 * downloads, which go to the caller's sink as they arrive. libcurl's errors
 * and HTTP error answers become a Cairn code (err.h) with a message for
 * users, written with errf().
 */
#include "client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "util.h"

static long client_timeout_ms = CLIENT_TIMEOUT_MS;
static char *client_extra[4]; /* header lines every request carries */
static size_t client_nextra;
static int client_curl_ready;

struct client_buf {
    struct sb sb;
    int too_large;
};

const char *
client_server_url(const char *flag_value)
{
    if (flag_value && *flag_value)
        return flag_value;
    const char *env = getenv("CAIRN_SERVER");
    if (env && *env)
        return env;
    return CLIENT_DEFAULT_SERVER;
}

void
client_add_header(const char *name, const char *value)
{
    if (client_nextra < sizeof(client_extra) / sizeof(client_extra[0]))
        client_extra[client_nextra++] = xasprintf("%s: %s", name, value);
}

void
client_set_timeout_ms(long ms)
{
    client_timeout_ms = ms < 0 ? 0 : ms;
}

void
client_cleanup(void)
{
    if (client_curl_ready) {
        curl_global_cleanup();
        client_curl_ready = 0;
    }
}

char *
client_urlencode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    struct sb sb;
    sb_init(&sb);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            sb_putc(&sb, (char)*p);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            sb_append(&sb, e, 3);
        }
    }
    return sb_take(&sb);
}

static size_t
client__write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    struct client_buf *b = ud;
    size_t n = size * nmemb;
    if (b->sb.len + n > (size_t)CLIENT_RESPONSE_MAX) {
        b->too_large = 1;
        return 0; /* makes libcurl fail with CURLE_WRITE_ERROR */
    }
    sb_append(&b->sb, data, n);
    return n;
}

/* Translate a libcurl failure into a code and a message for users. */
static int
client__curl_error(CURL *h, CURLcode cc, const struct client_buf *b, const char *server,
                   const char *detail, char *err, size_t errlen)
{
    static const char tail[] = "is cairn-scheduler running? (set --server or CAIRN_SERVER)";
    const char *why = detail && *detail ? detail : curl_easy_strerror(cc);
    switch (cc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return errf(CAIRN_EINVAL, err, errlen,
                    "invalid scheduler address %s (expected http://HOST:PORT)", server);
    case CURLE_COULDNT_RESOLVE_HOST:
        return errf(CAIRN_ENET, err, errlen, "cannot reach the scheduler at %s (unknown host); %s",
                    server, tail);
    case CURLE_COULDNT_CONNECT: {
        long oserr = 0;
        char reason[128];
        curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &oserr);
        snprintf(reason, sizeof(reason), "%s", oserr ? strerror((int)oserr) : "connection failed");
        if (reason[0] >= 'A' && reason[0] <= 'Z')
            reason[0] = (char)(reason[0] - 'A' + 'a');
        return errf(CAIRN_ENET, err, errlen, "cannot reach the scheduler at %s (%s); %s", server,
                    reason, tail);
    }
    case CURLE_OPERATION_TIMEDOUT: {
        curl_off_t connected = 0;
        curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connected);
        if (connected == 0) {
            return errf(CAIRN_ENET, err, errlen,
                        "cannot reach the scheduler at %s (timed out connecting); %s", server,
                        tail);
        }
        return errf(CAIRN_ETIMEOUT, err, errlen, "the scheduler at %s did not answer within %ld ms",
                    server, client_timeout_ms);
    }
    case CURLE_WRITE_ERROR:
        if (b->too_large)
            return errf(CAIRN_ERANGE, err, errlen,
                        "the answer from the scheduler at %s is larger than %ld MiB", server,
                        CLIENT_RESPONSE_MAX / (1024L * 1024));
        break;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
        return errf(CAIRN_ENET, err, errlen, "the connection to the scheduler at %s broke (%s)",
                    server, why);
    default:
        break;
    }
    return errf(CAIRN_ENET, err, errlen, "request to the scheduler at %s failed (%s)", server, why);
}

/* Set up libcurl's global state (once) and make the URL of path on server
 * (a trailing '/' of server ignored): 0 with *url malloc'd for the caller to
 * free, or CAIRN_ENOMEM with a message in err. */
static int
client__url(const char *server, const char *path, char **url, char *err, size_t errlen)
{
    if (!client_curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return errf(CAIRN_ENOMEM, err, errlen, "cannot initialise libcurl");
        client_curl_ready = 1;
    }
    size_t slen = strlen(server);
    while (slen > 0 && server[slen - 1] == '/')
        slen--;
    *url = xasprintf("%.*s%s%s", (int)slen, server, path[0] == '/' ? "" : "/", path);
    return 0;
}

int
client_request(const char *server, const char *method, const char *path_and_query, const char *body,
               long *status, char **resp_body, char *err, size_t errlen)
{
    if (!server || !method || !path_and_query || !status)
        return errf(CAIRN_EINVAL, err, errlen, "invalid request");
    char *url = NULL;
    int urc = client__url(server, path_and_query, &url, err, errlen);
    if (urc != 0)
        return urc;

    CURL *h = curl_easy_init();
    if (!h) {
        free(url);
        return errf(CAIRN_ENOMEM, err, errlen, "cannot initialise libcurl");
    }
    struct client_buf b;
    sb_init(&b.sb);
    b.too_large = 0;
    char detail[CURL_ERROR_SIZE];
    detail[0] = '\0';
    struct curl_slist *hdrs = NULL;
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (body || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0))
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    const char *token = getenv("CAIRN_TOKEN");
    char *auth = token && *token && !strpbrk(token, "\r\n")
                     ? xasprintf("Authorization: Bearer %s", token)
                     : NULL;
    if (auth)
        hdrs = curl_slist_append(hdrs, auth);
    for (size_t i = 0; i < client_nextra; i++)
        hdrs = curl_slist_append(hdrs, client_extra[i]);

    long connect_ms = CLIENT_CONNECT_TIMEOUT_MS;
    if (client_timeout_ms > 0 && client_timeout_ms < connect_ms)
        connect_ms = client_timeout_ms;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, client_timeout_ms);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "cairn");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, detail);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, client__write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    /* The scheduler is usually local: do not send loopback requests through
     * a proxy from the environment unless no_proxy says otherwise. */
    if (!getenv("no_proxy") && !getenv("NO_PROXY"))
        curl_easy_setopt(h, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
    if (strcmp(method, "GET") == 0 && !body) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0 && !body) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? strlen(body) : 0));
    }

    CURLcode cc = curl_easy_perform(h);
    int rc = 0;
    if (cc != CURLE_OK) {
        rc = client__curl_error(h, cc, &b, server, detail, err, errlen);
        sb_free(&b.sb);
    } else {
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        *status = code;
        if (resp_body)
            *resp_body = sb_take(&b.sb);
        else
            sb_free(&b.sb);
    }
    curl_slist_free_all(hdrs);
    if (auth) {
        memset(auth, 0, strlen(auth));
        free(auth);
    }
    curl_easy_cleanup(h);
    free(url);
    return rc;
}

static int
client__status_err(long status)
{
    switch (status) {
    case 400:
    case 422:
        return CAIRN_EINVAL;
    case 401:
    case 403:
        return CAIRN_EAUTH;
    case 404:
        return CAIRN_ENOENT;
    case 409:
        return CAIRN_ESTATE;
    case 413:
        return CAIRN_ERANGE;
    case 503:
        return CAIRN_ESTORE; /* the scheduler cannot store writes now */
    default:
        return CAIRN_EPROTO;
    }
}

int
client_call_json(const char *server, const char *method, const char *path, json_t *body,
                 json_t **out, char *err, size_t errlen)
{
    char *text = NULL;
    if (body) {
        text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!text)
            return errf(CAIRN_EINVAL, err, errlen, "cannot encode the request as JSON");
    }
    long status = 0;
    char *resp = NULL;
    int rc = client_request(server, method, path, text, &status, &resp, err, errlen);
    free(text);
    if (rc != 0)
        return rc;

    const char *p = resp + strspn(resp, " \t\r\n");
    json_error_t je;
    memset(&je, 0, sizeof(je));
    json_t *j = *p ? json_loads(resp, JSON_DECODE_ANY, &je) : json_null();
    if (status >= 200 && status < 300) {
        if (!j) {
            free(resp);
            return errf(CAIRN_EPROTO, err, errlen,
                        "the scheduler at %s sent an answer that is not JSON (%s at line %d)",
                        server, je.text, je.line);
        }
        free(resp);
        if (out)
            *out = j;
        else
            json_decref(j);
        return 0;
    }
    const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    int code = client__status_err(status);
    if (msg && *msg)
        errf(code, err, errlen, "%s", msg);
    else
        errf(code, err, errlen, "the scheduler at %s answered %s %s with HTTP status %ld", server,
             method, path, status);
    json_decref(j);
    free(resp);
    return code;
}

int
client_get_json(const char *server, const char *path, json_t **out, char *err, size_t errlen)
{
    return client_call_json(server, "GET", path, NULL, out, err, errlen);
}

int
client_post_json(const char *server, const char *path, json_t *body, json_t **out, char *err,
                 size_t errlen)
{
    return client_call_json(server, "POST", path, body, out, err, errlen);
}

/* ---- downloads ---------------------------------------------------------- */

#define CLIENT_ERROR_BODY_MAX (64 * 1024)

struct client_dl {
    CURL *h;
    long status; /* 0 until the first body bytes */
    int (*sink)(void *ud, const void *data, size_t n);
    void *ud;
    int sink_rc;               /* what sink returned when it stopped the transfer */
    int64_t bytes;             /* handed to sink */
    struct client_buf errbody; /* the body of an error answer */
};

static size_t
client__dl_write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    struct client_dl *d = ud;
    size_t n = size * nmemb;
    if (d->status == 0)
        curl_easy_getinfo(d->h, CURLINFO_RESPONSE_CODE, &d->status);
    if (d->status < 200 || d->status > 299) {
        if (d->errbody.sb.len + n <= CLIENT_ERROR_BODY_MAX)
            sb_append(&d->errbody.sb, data, n);
        return n;
    }
    int rc = d->sink(d->ud, data, n);
    if (rc != 0) {
        d->sink_rc = rc;
        return 0; /* CURLE_WRITE_ERROR */
    }
    d->bytes += (int64_t)n;
    return n;
}

int
client_download(const char *server, const char *path,
                int (*sink)(void *ud, const void *data, size_t n), void *ud, int64_t *bytes,
                char *err, size_t errlen)
{
    if (bytes)
        *bytes = 0;
    if (!server || !path || !sink)
        return errf(CAIRN_EINVAL, err, errlen, "invalid request");
    char *url = NULL;
    int urc = client__url(server, path, &url, err, errlen);
    if (urc != 0)
        return urc;
    struct client_dl d;
    memset(&d, 0, sizeof(d));
    d.sink = sink;
    d.ud = ud;
    sb_init(&d.errbody.sb);
    d.h = curl_easy_init();
    if (!d.h) {
        free(url);
        return errf(CAIRN_ENOMEM, err, errlen, "cannot initialise libcurl");
    }
    char detail[CURL_ERROR_SIZE];
    detail[0] = '\0';
    curl_easy_setopt(d.h, CURLOPT_URL, url);
    curl_easy_setopt(d.h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(d.h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(d.h, CURLOPT_CONNECTTIMEOUT_MS, CLIENT_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(d.h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(d.h, CURLOPT_LOW_SPEED_TIME, CLIENT_STALL_MS / 1000);
    curl_easy_setopt(d.h, CURLOPT_USERAGENT, "cairn");
    curl_easy_setopt(d.h, CURLOPT_ERRORBUFFER, detail);
    curl_easy_setopt(d.h, CURLOPT_WRITEFUNCTION, client__dl_write_cb);
    curl_easy_setopt(d.h, CURLOPT_WRITEDATA, &d);
    curl_easy_setopt(d.h, CURLOPT_HTTPGET, 1L);
    if (!getenv("no_proxy") && !getenv("NO_PROXY"))
        curl_easy_setopt(d.h, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");

    CURLcode cc = curl_easy_perform(d.h);
    int rc = 0;
    if (cc == CURLE_WRITE_ERROR && d.sink_rc) {
        rc = d.sink_rc;
    } else if (cc == CURLE_OPERATION_TIMEDOUT && d.status) {
        rc = errf(CAIRN_ETIMEOUT, err, errlen,
                  "the download from the scheduler at %s stalled for %ld s", server,
                  CLIENT_STALL_MS / 1000);
    } else if (cc != CURLE_OK) {
        rc = client__curl_error(d.h, cc, &d.errbody, server, detail, err, errlen);
    } else {
        long code = 0;
        curl_easy_getinfo(d.h, CURLINFO_RESPONSE_CODE, &code);
        if (code < 200 || code > 299) {
            json_t *j = d.errbody.sb.buf ? json_loads(d.errbody.sb.buf, 0, NULL) : NULL;
            const char *msg =
                json_string_value(json_object_get(json_object_get(j, "error"), "message"));
            rc = client__status_err(code);
            if (msg && *msg)
                errf(rc, err, errlen, "%s", msg);
            else
                errf(rc, err, errlen, "the scheduler at %s answered GET %s with HTTP status %ld",
                     server, path, code);
            json_decref(j);
        }
    }
    if (bytes)
        *bytes = d.bytes;
    sb_free(&d.errbody.sb);
    curl_easy_cleanup(d.h);
    free(url);
    return rc;
}
