/* apiguard.c - who may call the HTTP API, and from where (see apiguard.h).
 *
 * Owns the checks that come before a route's handler: the Host and Origin
 * of a request, the Content-Type of a state-changing one, and the bearer
 * token against the tokens file (tokfile.h) with the role the route table
 * asks for (api.h). Everything runs on the loop thread.
 */
#include "apiguard.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "api.h"
#include "err.h"
#include "log.h"
#include "util.h"

static void
apiguard__add_host(struct apiguard *g, const char *h, size_t n)
{
    while (n > 0 && isspace((unsigned char)*h)) {
        h++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)h[n - 1]))
        n--;
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n == 0)
        return;
    char *s = xstrndup(h, n);
    for (char *p = s; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    g->hosts = xrealloc(g->hosts, (g->nhosts + 1) * sizeof(*g->hosts));
    g->hosts[g->nhosts++] = s;
}

int
apiguard_is_loopback(const char *host)
{
    if (!host || !*host)
        return 0;
    if (!strcasecmp(host, "localhost"))
        return 1;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

int
apiguard_init(struct apiguard *g, struct sched *s, const char *tokens_path, const char *bind_host,
              const char *allowed_hosts, char *err, size_t errlen)
{
    memset(g, 0, sizeof(*g));
    g->sched = s;
    if (tokens_path) {
        int rc = tokf_load(tokens_path, &g->tokens, err, errlen);
        if (rc)
            return CAIRN_EINVAL;
        g->tokens_path = xstrdup(tokens_path);
    }
    apiguard__add_host(g, "localhost", 9);
    apiguard__add_host(g, "127.0.0.1", 9);
    apiguard__add_host(g, "::1", 3);
    /* (a wildcard address is not a name clients use: 0.0.0.0 in a browser
     * reaches this host's loopback) */
    if (bind_host && *bind_host && strcmp(bind_host, "0.0.0.0") && strcmp(bind_host, "::"))
        apiguard__add_host(g, bind_host, strlen(bind_host));
    for (const char *p = allowed_hosts; p && *p;) {
        size_t n = strcspn(p, ",");
        apiguard__add_host(g, p, n);
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

void
apiguard_free(struct apiguard *g)
{
    if (!g)
        return;
    tokf_free(&g->tokens);
    free(g->tokens_path);
    for (size_t i = 0; i < g->nhosts; i++)
        free(g->hosts[i]);
    free(g->hosts);
    memset(g, 0, sizeof(*g));
}

/* Is the authority "host[:port]" (n bytes) one of ours? */
static int
apiguard__host_ok(const struct apiguard *g, const char *a, size_t n)
{
    const char *h = a;
    size_t hn = n;
    if (n > 0 && a[0] == '[') {
        const char *rb = memchr(a, ']', n);
        if (!rb)
            return 0;
        h = a + 1;
        hn = (size_t)(rb - a) - 1;
    } else {
        const char *colon = memchr(a, ':', n);
        if (colon)
            hn = (size_t)(colon - a);
    }
    for (size_t i = 0; i < g->nhosts; i++)
        if (strlen(g->hosts[i]) == hn && !strncasecmp(g->hosts[i], h, hn))
            return 1;
    return 0;
}

static int
apiguard__origin_ok(const struct apiguard *g, const char *origin)
{
    const char *p = strstr(origin, "://");
    if (!p || (strncasecmp(origin, "http://", 7) && strncasecmp(origin, "https://", 8)))
        return 0;
    p += 3;
    size_t n = strcspn(p, "/");
    return apiguard__host_ok(g, p, n);
}

static int
apiguard__is_json(const char *ct)
{
    if (!ct)
        return 0;
    size_t n = strcspn(ct, "; \t");
    return n == 16 && !strncasecmp(ct, "application/json", 16);
}

static void
apiguard__refuse(struct http_conn *c, const struct http_req *req, int status, const char *code,
                 const char *msg)
{
    LOG(LOG_WARN, "CAIRN-HTTP-REFUSED", "%s %s: %d %s: %s", req->method, req->path, status, code,
        msg);
    if (status == 401)
        http_conn_set_header(c, "WWW-Authenticate: Bearer realm=\"cairn\"");
    http_respond_error(c, status, code, "%s", msg);
}

/* Reread the tokens file if it changed; a version that does not load (or a
 * file that is gone) is logged once and the tokens in force stay. */
static void
apiguard__reload(struct apiguard *g)
{
    if (tokf_same(&g->tokens, g->tokens_path) || tokf_same(&g->refused, g->tokens_path))
        return;
    struct stat st;
    if (stat(g->tokens_path, &st) != 0) {
        if (!g->missing)
            LOG(LOG_ERR, "CAIRN-API-TOKENS",
                "the tokens file %s is gone (%s): the tokens read before stay in force",
                g->tokens_path, strerror(errno));
        g->missing = 1;
        return;
    }
    g->missing = 0;
    struct tokf t;
    char err[512];
    if (tokf_load(g->tokens_path, &t, err, sizeof(err)) != 0) {
        LOG(LOG_ERR, "CAIRN-API-TOKENS",
            "the changed tokens file is refused, the previous tokens stay in force: %s", err);
        /* remember which version failed, so it is not read again and again */
        memset(&g->refused, 0, sizeof(g->refused));
        g->refused.dev = st.st_dev;
        g->refused.ino = st.st_ino;
        g->refused.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        g->refused.size = (int64_t)st.st_size;
        return;
    }
    LOG(LOG_NOTICE, "CAIRN-API-TOKENS", "tokens file %s reread: %zu tokens", g->tokens_path, t.n);
    tokf_free(&g->tokens);
    g->tokens = t;
    memset(&g->refused, 0, sizeof(g->refused));
}

/* Who sent the request being handled (the loop runs one at a time). */
static struct {
    bool auth;
    char name[TOKF_NAME_MAX + 1];
    int role;
} apiguard__caller;

bool
apiguard_caller(const char **name, int *role)
{
    *name = apiguard__caller.name;
    *role = apiguard__caller.role;
    return apiguard__caller.auth;
}

void
apiguard_handle(void *ud, struct http_conn *c, const struct http_req *req)
{
    struct apiguard *g = ud;
    const char *host = http_req_header(req, "Host");
    if (host ? !apiguard__host_ok(g, host, strlen(host)) : req->minor_version >= 1) {
        char msg[300];
        snprintf(msg, sizeof(msg),
                 "Host '%.200s' is not one this scheduler serves (add it with "
                 "--http-allowed-hosts)",
                 host ? host : "");
        apiguard__refuse(c, req, 400, "bad_host", msg);
        return;
    }
    struct route_path rp;
    const struct api_route *r = NULL;
    route_path_split(&rp, req->path);
    int need = api_route_find(req->method, &rp, &r, NULL) == 0 ? r->role : TOKF_VIEWER;
    route_path_free(&rp);
    if (need == API_ROLE_LEASE) {
        /* a worker's blob route: the lease's credential, checked by its
         * handler, is the only one; nothing ambient a browser could send */
        apiguard__caller.auth = true;
        apiguard__caller.name[0] = '\0';
        apiguard__caller.role = TOKF_PUBLIC;
        api_handle(g->sched, c, req);
        return;
    }
    int safe = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD") ||
               !strcmp(req->method, "OPTIONS");
    if (!safe) {
        const char *origin = http_req_header(req, "Origin");
        if (origin && !apiguard__origin_ok(g, origin)) {
            char msg[300];
            snprintf(msg, sizeof(msg), "cross-origin request from '%.200s' refused", origin);
            apiguard__refuse(c, req, 403, "bad_origin", msg);
            return;
        }
        if ((req->body_len > 0 || origin) &&
            !apiguard__is_json(http_req_header(req, "Content-Type"))) {
            apiguard__refuse(c, req, 415, "unsupported_media_type",
                             "a request that changes something must be sent as "
                             "Content-Type: application/json");
            return;
        }
    }
    apiguard__caller.auth = g->tokens_path != NULL;
    apiguard__caller.name[0] = '\0';
    apiguard__caller.role = g->tokens_path ? TOKF_PUBLIC : TOKF_ADMIN;
    if (g->tokens_path) {
        if (need > TOKF_PUBLIC) {
            apiguard__reload(g);
            const char *auth = http_req_header(req, "Authorization");
            const struct tokf_entry *e = NULL;
            if (auth && !strncasecmp(auth, "Bearer ", 7)) {
                const char *tok = auth + 7;
                while (*tok == ' ')
                    tok++;
                e = tokf_lookup(&g->tokens, tok, strlen(tok));
            }
            if (!e) {
                apiguard__refuse(c, req, 401, "unauthorized",
                                 auth ? "the bearer token is not valid"
                                      : "this API needs a token: send 'Authorization: Bearer "
                                        "TOKEN' (cairn: set CAIRN_TOKEN or --token-file)");
                return;
            }
            if (e->role < need) {
                char msg[200];
                snprintf(msg, sizeof(msg), "token '%s' has role %s; %s %s needs %s", e->name,
                         tokf_role_name(e->role), req->method, req->path, tokf_role_name(need));
                apiguard__refuse(c, req, 403, "forbidden", msg);
                return;
            }
            snprintf(apiguard__caller.name, sizeof(apiguard__caller.name), "%s", e->name);
            apiguard__caller.role = e->role;
        }
    }
    api_handle(g->sched, c, req);
}
