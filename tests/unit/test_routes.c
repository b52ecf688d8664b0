/* Tests for route.c (path patterns) and the API's route table (api.c).
 *
 * Table-driven: how paths split, which paths each pattern matches and the
 * parameters it fills, which route the API table gives a method and path,
 * that the table is sorted and agrees with docs/api.md, and the answers
 * api_handle gives where no route applies (through a real server on
 * 127.0.0.1; those requests never reach a handler, so no scheduler is
 * needed). */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <netinet/in.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "err.h"
#include "route.h"
#include "util.h"

/* The segments of rp joined by '|', "(none)" if there are none. */
static char *
joined(const struct route_path *rp)
{
    struct sb sb;
    sb_init(&sb);
    if (rp->n == 0)
        sb_puts(&sb, "(none)");
    for (size_t i = 0; i < rp->n; i++)
        sb_printf(&sb, "%s%s", i ? "|" : "", rp->seg[i]);
    return sb_take(&sb);
}

/* The parameters as "name=value,..." ("" if none). */
static char *
params_str(const struct route_params *p)
{
    struct sb sb;
    sb_init(&sb);
    sb_puts(&sb, "");
    for (size_t i = 0; i < p->n; i++)
        sb_printf(&sb, "%s%.*s=%s", i ? "," : "", (int)p->p[i].name_len, p->p[i].name,
                  p->p[i].value);
    return sb_take(&sb);
}

static void
test_split(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        const char *segs;
    } cases[] = {
        {"/", "(none)"},
        {"//", "(none)"},
        {"", "(none)"},
        {"/a", "a"},
        {"/a/", "a"},
        {"///a/b", "a|b"},
        {"/a//b", "a||b"},
        {"/a//", "a|"},
        {"/a/b/c/d/e/f/g/h/i/j/k/l", "a|b|c|d|e|f|g|h|i|j|k|l"},
        {"/api/v1/runs/manual__2026-01-01T00:00:00Z", "api|v1|runs|manual__2026-01-01T00:00:00Z"},
        {"/x y/%2F", "x y|%2F"},
        {"*", "*"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct route_path rp;
        route_path_split(&rp, cases[i].path);
        char *got = joined(&rp);
        if (strcmp(got, cases[i].segs) != 0)
            fail_msg("'%s' splits into '%s', want '%s'", cases[i].path, got, cases[i].segs);
        free(got);
        route_path_free(&rp);
    }
    route_path_free(NULL);
}

static void
test_match(void **state)
{
    (void)state;
    static const struct {
        const char *pattern;
        const char *path;
        const char *params; /* NULL: no match */
    } cases[] = {
        {"/", "/", ""},
        {"/", "//", ""},
        {"/", "/a", NULL},
        {"/api/v1/runs", "/api/v1/runs", ""},
        {"/api/v1/runs", "/api/v1/runs/", ""},
        {"/api/v1/runs", "/api/v1/Runs", NULL},
        {"/api/v1/runs", "/api/v1/run", NULL},
        {"/api/v1/runs", "/api/v1/runsx", NULL},
        {"/api/v1/runs", "/api/v1", NULL},
        {"/api/v1/runs", "/api/v1/runs/x", NULL},
        {"/api/v1/runs/{run}", "/api/v1/runs/r1", "run=r1"},
        {"/api/v1/runs/{run}", "/api/v1/runs//", "run="},
        {"/api/v1/runs/{run}", "/api/v1/runs", NULL},
        {"/api/v1/runs/{run}/tasks/{task}/logs", "/api/v1/runs/r/tasks/t/logs", "run=r,task=t"},
        {"/api/v1/runs/{run}/tasks/{task}/logs", "/api/v1/runs/r/tasks/t/attempts", NULL},
        {"/api/v1/runs/{run}/tasks/{task}/logs", "/api/v1/runs/r/tasks//logs", "run=r,task="},
        {"/api/v1/runs/{run}/artifacts/{task}/{name}", "/api/v1/runs/a b/artifacts/t/m.pkl",
         "run=a b,task=t,name=m.pkl"},
        {"/{a}/{b}/{c}/{d}", "/1/2/3/4", "a=1,b=2,c=3,d=4"},
        /* more parameters than ROUTE_PARAMS_MAX, malformed parameters */
        {"/{a}/{b}/{c}/{d}/{e}", "/1/2/3/4/5", NULL},
        {"/x/{}", "/x/y", NULL},
        {"/x/{y", "/x/y", NULL},
        {"/x/{", "/x/y", NULL},
        /* a literal '{' elsewhere in a segment is literal */
        {"/x/a{b}", "/x/a{b}", ""},
        {"/x/a{b}", "/x/ab", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct route_path rp;
        struct route_params m;
        memset(&m, 0xA5, sizeof(m));
        route_path_split(&rp, cases[i].path);
        bool ok = route_match(cases[i].pattern, &rp, &m);
        if (!cases[i].params) {
            if (ok)
                fail_msg("'%s' should not match '%s'", cases[i].pattern, cases[i].path);
            /* untouched on no match */
            struct route_params junk;
            memset(&junk, 0xA5, sizeof(junk));
            assert_memory_equal(&m, &junk, sizeof(m));
        } else {
            if (!ok)
                fail_msg("'%s' should match '%s'", cases[i].pattern, cases[i].path);
            char *got = params_str(&m);
            if (strcmp(got, cases[i].params) != 0)
                fail_msg("'%s' on '%s': params '%s', want '%s'", cases[i].pattern, cases[i].path,
                         got, cases[i].params);
            free(got);
        }
        assert_int_equal(route_match(cases[i].pattern, &rp, NULL), ok);
        route_path_free(&rp);
    }
}

static void
test_param(void **state)
{
    (void)state;
    struct route_path rp;
    struct route_params m;
    route_path_split(&rp, "/runs/r1/tasks/train");
    assert_true(route_match("/runs/{run}/tasks/{task}", &rp, &m));
    assert_string_equal(route_param(&m, "run"), "r1");
    assert_string_equal(route_param(&m, "task"), "train");
    assert_null(route_param(&m, "ta"));
    assert_null(route_param(&m, "tasks"));
    assert_null(route_param(&m, "dag"));
    assert_null(route_param(NULL, "run"));
    route_path_free(&rp);
}

/* ---- the API's table --------------------------------------------------- */

/* The names the handlers read (route_param) */
static const char *const known_params[] = {"dag", "run", "task", "name", "id", "sha", "release",
                                           "version", "lease"};

static void
test_table_sorted(void **state)
{
    (void)state;
    size_t n = 0;
    const struct api_route *t = api_routes(&n);
    assert_true(n >= 27);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(t[i].fn);
        assert_true(!strcmp(t[i].method, "GET") || !strcmp(t[i].method, "POST") ||
                    !strcmp(t[i].method, "PUT"));
        assert_true(t[i].pattern[0] == '/');
        if (i > 0) {
            int c = strcmp(t[i - 1].pattern, t[i].pattern);
            if (c > 0 || (c == 0 && strcmp(t[i - 1].method, t[i].method) >= 0))
                fail_msg("routes out of order or repeated: %s %s, then %s %s", t[i - 1].method,
                         t[i - 1].pattern, t[i].method, t[i].pattern);
        }
        /* every segment is a literal or a parameter a handler reads */
        struct route_path rp;
        route_path_split(&rp, t[i].pattern);
        for (size_t k = 0; k < rp.n; k++) {
            const char *sg = rp.seg[k];
            assert_true(sg[0] != '\0');
            if (sg[0] != '{') {
                /* all sort before '{' (api.h relies on it) */
                if (strspn(sg, "abcdefghijklmnopqrstuvwxyz0123456789.-") != strlen(sg))
                    fail_msg("%s: literal segment '%s'", t[i].pattern, sg);
                continue;
            }
            size_t len = strlen(sg);
            assert_true(len > 2 && sg[len - 1] == '}');
            bool known = false;
            for (size_t j = 0; j < sizeof(known_params) / sizeof(known_params[0]); j++)
                known |= strlen(known_params[j]) == len - 2 &&
                         !strncmp(known_params[j], sg + 1, len - 2);
            if (!known)
                fail_msg("%s: unknown parameter %s", t[i].pattern, sg);
        }
        route_path_free(&rp);
    }
}

/* Two patterns that could match one path (no place where both have a
 * literal and the literals differ) must name a parameter they both have in
 * one place alike, so the first place where they differ has a literal in
 * one and a parameter in the other; the one with the literal must come
 * first in the table, so that it wins (api.h). */
static void
test_table_overlaps(void **state)
{
    (void)state;
    size_t n = 0, overlaps = 0;
    const struct api_route *t = api_routes(&n);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            struct route_path a, b;
            route_path_split(&a, t[i].pattern);
            route_path_split(&b, t[j].pattern);
            bool overlap = a.n == b.n;
            for (size_t k = 0; overlap && k < a.n; k++)
                if (a.seg[k][0] != '{' && b.seg[k][0] != '{' && strcmp(a.seg[k], b.seg[k]))
                    overlap = false;
            if (overlap && strcmp(t[i].pattern, t[j].pattern) != 0) {
                overlaps++;
                for (size_t k = 0; k < a.n; k++) {
                    if (!strcmp(a.seg[k], b.seg[k]))
                        continue;
                    if (a.seg[k][0] == '{' && b.seg[k][0] == '{')
                        fail_msg("%s and %s name one parameter differently", t[i].pattern,
                                 t[j].pattern);
                    if (a.seg[k][0] == '{')
                        fail_msg("%s must come after %s", t[i].pattern, t[j].pattern);
                    break;
                }
            }
            route_path_free(&a);
            route_path_free(&b);
        }
    }
    /* none today; a route that overlaps another must follow the rules above
     * and change this count */
    assert_int_equal(overlaps, 0);
}

/* pattern NULL: want is CAIRN_ENOENT or CAIRN_EINVAL */
static const struct {
    const char *method;
    const char *path;
    int want;
    const char *pattern;
    const char *params;
} find_cases[] = {
    {"GET", "/", 0, "/", ""},
    {"HEAD", "/", 0, "/", ""},
    {"GET", "//", 0, "/", ""},
    {"POST", "/", CAIRN_EINVAL, NULL, NULL},
    {"GET", "/index.html", CAIRN_ENOENT, NULL, NULL},
    {"GET", "/api", CAIRN_ENOENT, NULL, NULL},
    {"GET", "/api/v1", CAIRN_ENOENT, NULL, NULL},
    {"GET", "/api/v2/health", CAIRN_ENOENT, NULL, NULL},
    {"GET", "/api/v1/health", 0, "/api/v1/health", ""},
    {"GET", "/api/v1/health/", 0, "/api/v1/health", ""},
    {"HEAD", "/api/v1/health", 0, "/api/v1/health", ""},
    {"get", "/api/v1/health", CAIRN_EINVAL, NULL, NULL},
    {"PUT", "/api/v1/health", CAIRN_EINVAL, NULL, NULL},
    {"GET", "/api/v1/dags", 0, "/api/v1/dags", ""},
    {"POST", "/api/v1/dags", CAIRN_EINVAL, NULL, NULL},
    {"GET", "/api/v1/dags/iris", 0, "/api/v1/dags/{dag}", "dag=iris"},
    {"DELETE", "/api/v1/dags/iris", CAIRN_EINVAL, NULL, NULL},
    {"POST", "/api/v1/dags/iris/trigger", 0, "/api/v1/dags/{dag}/trigger", "dag=iris"},
    {"GET", "/api/v1/dags/iris/trigger", CAIRN_EINVAL, NULL, NULL},
    {"HEAD", "/api/v1/dags/iris/trigger", CAIRN_EINVAL, NULL, NULL},
    {"POST", "/api/v1/dags/iris/pause", 0, "/api/v1/dags/{dag}/pause", "dag=iris"},
    {"POST", "/api/v1/dags/iris/unpause", 0, "/api/v1/dags/{dag}/unpause", "dag=iris"},
    {"POST", "/api/v1/dags/iris/resume", CAIRN_ENOENT, NULL, NULL},
    {"GET", "/api/v1/dags/iris/next-runs", 0, "/api/v1/dags/{dag}/next-runs", "dag=iris"},
    {"GET", "/api/v1/dags/iris/metrics", 0, "/api/v1/dags/{dag}/metrics", "dag=iris"},
    {"POST", "/api/v1/dags/iris/backfill", 0, "/api/v1/dags/{dag}/backfill", "dag=iris"},
    {"GET", "/api/v1/runs", 0, "/api/v1/runs", ""},
    {"GET", "/api/v1/runs/r1", 0, "/api/v1/runs/{run}", "run=r1"},
    {"GET", "/api/v1/runs//", 0, "/api/v1/runs/{run}", "run="},
    {"POST", "/api/v1/runs/r1", CAIRN_EINVAL, NULL, NULL},
    {"POST", "/api/v1/runs/r1/clear", 0, "/api/v1/runs/{run}/clear", "run=r1"},
    {"POST", "/api/v1/runs/r1/retry", 0, "/api/v1/runs/{run}/retry", "run=r1"},
    {"POST", "/api/v1/runs/r1/cancel", 0, "/api/v1/runs/{run}/cancel", "run=r1"},
    {"GET", "/api/v1/runs/r1/cancel", CAIRN_EINVAL, NULL, NULL},
    {"GET", "/api/v1/runs/r1/tasks/t/attempts", 0, "/api/v1/runs/{run}/tasks/{task}/attempts",
     "run=r1,task=t"},
    {"GET", "/api/v1/runs/r1/tasks/t/logs", 0, "/api/v1/runs/{run}/tasks/{task}/logs",
     "run=r1,task=t"},
    {"GET", "/api/v1/runs/r1/tasks/t", CAIRN_ENOENT, NULL, NULL},
    {"GET", "/api/v1/runs/r1/artifacts", 0, "/api/v1/runs/{run}/artifacts", "run=r1"},
    {"GET", "/api/v1/runs/r1/artifacts/train/model.pkl", 0,
     "/api/v1/runs/{run}/artifacts/{task}/{name}", "run=r1,task=train,name=model.pkl"},
    /* an artifact called "content" is an artifact, not its content */
    {"GET", "/api/v1/runs/r1/artifacts/train/content", 0,
     "/api/v1/runs/{run}/artifacts/{task}/{name}", "run=r1,task=train,name=content"},
    {"GET", "/api/v1/runs/r1/artifacts/train/model.pkl/content", 0,
     "/api/v1/runs/{run}/artifacts/{task}/{name}/content", "run=r1,task=train,name=model.pkl"},
    {"HEAD", "/api/v1/runs/r1/artifacts/train/model.pkl/content", 0,
     "/api/v1/runs/{run}/artifacts/{task}/{name}/content", "run=r1,task=train,name=model.pkl"},
    {"GET", "/api/v1/runs/r1/artifacts/train/model.pkl/lineage", 0,
     "/api/v1/runs/{run}/artifacts/{task}/{name}/lineage", "run=r1,task=train,name=model.pkl"},
    {"GET", "/api/v1/runs/r1/artifacts/train/model.pkl/x", CAIRN_ENOENT, NULL, NULL},
    {"GET", "/api/v1/runs/r1/tasks/t/artifacts", CAIRN_ENOENT, NULL, NULL},
    {"POST", "/api/v1/artifacts/gc", 0, "/api/v1/artifacts/gc", ""},
    {"GET", "/api/v1/artifacts/gc", CAIRN_EINVAL, NULL, NULL},
    {"GET", "/api/v1/artifacts", CAIRN_ENOENT, NULL, NULL},
    {"GET", "/api/v1/lineage/9f2c0011", 0, "/api/v1/lineage/{sha}", "sha=9f2c0011"},
    {"GET", "/api/v1/lineage", CAIRN_ENOENT, NULL, NULL},
    {"GET", "/api/v1/backfills", 0, "/api/v1/backfills", ""},
    {"POST", "/api/v1/backfills", CAIRN_EINVAL, NULL, NULL},
    {"GET", "/api/v1/backfills/bf-3", 0, "/api/v1/backfills/{id}", "id=bf-3"},
    {"POST", "/api/v1/backfills/bf-3/cancel", 0, "/api/v1/backfills/{id}/cancel", "id=bf-3"},
    {"GET", "/api/v1/backfills/bf-3/cancel", CAIRN_EINVAL, NULL, NULL},
    {"GET", "/api/v1/backfills/bf-3/runs", CAIRN_ENOENT, NULL, NULL},
    {"GET", "/api/v1/workers", 0, "/api/v1/workers", ""},
    {"GET", "/api/v1/workers/w1", CAIRN_ENOENT, NULL, NULL},
    {"GET", "/api/v1/runs/a/b/c/d/e/f/g/h/i/j", CAIRN_ENOENT, NULL, NULL},
};

static void
test_table_find(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(find_cases) / sizeof(find_cases[0]); i++) {
        struct route_path rp;
        const struct api_route *r = NULL;
        struct route_params m;
        route_path_split(&rp, find_cases[i].path);
        int rc = api_route_find(find_cases[i].method, &rp, &r, &m);
        if (rc != find_cases[i].want)
            fail_msg("%s %s: %d, want %d", find_cases[i].method, find_cases[i].path, rc,
                     find_cases[i].want);
        if (rc == 0) {
            assert_string_equal(r->pattern, find_cases[i].pattern);
            char *got = params_str(&m);
            if (strcmp(got, find_cases[i].params) != 0)
                fail_msg("%s %s: params '%s', want '%s'", find_cases[i].method, find_cases[i].path,
                         got, find_cases[i].params);
            free(got);
        } else {
            assert_null(r);
        }
        route_path_free(&rp);
    }

    /* every route is found for its own pattern, by its own method */
    size_t n = 0;
    const struct api_route *t = api_routes(&n);
    for (size_t i = 0; i < n; i++) {
        struct route_path rp;
        const struct api_route *r = NULL;
        route_path_split(&rp, t[i].pattern);
        assert_int_equal(api_route_find(t[i].method, &rp, &r, NULL), 0);
        assert_ptr_equal(r, &t[i]);
        route_path_free(&rp);
    }
}

/* Every route docs/api.md names exists with its method, and every route of
 * the table (but the UI's "/") is in docs/api.md. */
static void
test_table_documented(void **state)
{
    (void)state;
    char *path = xasprintf("%s/docs/api.md", CAIRN_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    struct sb doc;
    sb_init(&doc);
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof(buf), f)) > 0)
        sb_append(&doc, buf, got);
    fclose(f);
    free(path);

    /* the documented routes, with their parameters written "{}" */
    struct sb seen;
    sb_init(&seen);
    sb_puts(&seen, "\n");
    regex_t re;
    assert_int_equal(regcomp(&re, "`(GET|POST|PUT) (/[^` ?]*)", REG_EXTENDED), 0);
    regmatch_t mt[3];
    size_t ndoc = 0;
    for (const char *at = doc.buf; regexec(&re, at, 3, mt, 0) == 0; at += mt[0].rm_eo) {
        char *method = xstrndup(at + mt[1].rm_so, (size_t)(mt[1].rm_eo - mt[1].rm_so));
        char *route = xstrndup(at + mt[2].rm_so, (size_t)(mt[2].rm_eo - mt[2].rm_so));
        /* "{run_id}" -> "x" for the lookup, "{}" for the comparison */
        struct sb sample, shape;
        sb_init(&sample);
        sb_init(&shape);
        for (const char *c = route; *c; c++) {
            if (*c == '{') {
                c = strchr(c, '}');
                assert_non_null(c);
                sb_puts(&sample, "x");
                sb_puts(&shape, "{}");
            } else {
                sb_putc(&sample, *c);
                sb_putc(&shape, *c);
            }
        }
        struct route_path rp;
        const struct api_route *r = NULL;
        route_path_split(&rp, sample.buf);
        if (api_route_find(method, &rp, &r, NULL) != 0)
            fail_msg("docs/api.md names %s %s, which no route serves", method, route);
        route_path_free(&rp);
        sb_printf(&seen, "%s %s\n", method, shape.buf);
        sb_free(&sample);
        sb_free(&shape);
        free(method);
        free(route);
        ndoc++;
    }
    regfree(&re);
    assert_true(ndoc >= 26);

    size_t n = 0;
    const struct api_route *t = api_routes(&n);
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(t[i].pattern, "/"))
            continue;
        struct sb want;
        sb_init(&want);
        sb_printf(&want, "\n%s ", t[i].method);
        for (const char *c = t[i].pattern; *c; c++) {
            if (*c == '{') {
                c = strchr(c, '}');
                sb_puts(&want, "{}");
            } else {
                sb_putc(&want, *c);
            }
        }
        sb_puts(&want, "\n");
        if (!strstr(seen.buf, want.buf))
            fail_msg("route %s %s is not in docs/api.md", t[i].method, t[i].pattern);
        sb_free(&want);
    }
    sb_free(&seen);
    sb_free(&doc);
}

/* ---- api_handle where no handler runs ------------------------------------ */

struct srv {
    uv_loop_t loop;
    uv_async_t stop;
    struct http_server *http;
    pthread_t thread;
    int port;
};

static void
srv_stop_cb(uv_async_t *a)
{
    struct srv *s = a->data;
    http_server_close(s->http, NULL, NULL);
    uv_close((uv_handle_t *)&s->stop, NULL);
}

static void *
srv_main(void *arg)
{
    struct srv *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* Send req on a new connection, read until the server closes it. */
static char *
exchange(int port, const char *req)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
    struct sb sb;
    sb_init(&sb);
    sb_puts(&sb, "");
    char buf[4096];
    ssize_t got;
    while ((got = recv(fd, buf, sizeof(buf), 0)) > 0)
        sb_append(&sb, buf, (size_t)got);
    close(fd);
    return sb_take(&sb);
}

static void
test_handle_unrouted(void **state)
{
    (void)state;
    static const struct {
        const char *req;
        const char *status; /* "HTTP/1.1 404 " */
        const char *body;   /* the body, exactly; NULL: not checked */
    } cases[] = {
        {"GET /nowhere HTTP/1.0\r\n\r\n", "HTTP/1.1 404 ",
         "{\"error\":{\"code\":\"not_found\",\"message\":\"no such endpoint: /nowhere\"}}"},
        {"POST / HTTP/1.0\r\n\r\n", "HTTP/1.1 404 ",
         "{\"error\":{\"code\":\"not_found\",\"message\":\"no such endpoint: /\"}}"},
        {"GET /api/v2/health HTTP/1.0\r\n\r\n", "HTTP/1.1 404 ",
         "{\"error\":{\"code\":\"not_found\",\"message\":\"no such endpoint: /api/v2/health\"}}"},
        {"GET /api HTTP/1.0\r\n\r\n", "HTTP/1.1 404 ",
         "{\"error\":{\"code\":\"not_found\",\"message\":\"no such endpoint: /api\"}}"},
        {"GET /api/v1/ HTTP/1.0\r\n\r\n", "HTTP/1.1 404 ",
         "{\"error\":{\"code\":\"not_found\",\"message\":\"no such endpoint: GET /api/v1/\"}}"},
        {"GET /api/v1 HTTP/1.0\r\n\r\n", "HTTP/1.1 404 ",
         "{\"error\":{\"code\":\"not_found\",\"message\":\"no such endpoint: GET /api/v1\"}}"},
        {"GET /api/v1/nothing HTTP/1.0\r\n\r\n", "HTTP/1.1 404 ",
         "{\"error\":{\"code\":\"not_found\",\"message\":\"no such endpoint: GET "
         "/api/v1/nothing\"}}"},
        {"DELETE /api/v1/runs/r1 HTTP/1.0\r\n\r\n", "HTTP/1.1 404 ",
         "{\"error\":{\"code\":\"not_found\",\"message\":\"no such endpoint: DELETE "
         "/api/v1/runs/r1\"}}"},
        {"GET /api/v1/dags/x/trigger HTTP/1.0\r\n\r\n", "HTTP/1.1 404 ",
         "{\"error\":{\"code\":\"not_found\",\"message\":\"no such endpoint: GET "
         "/api/v1/dags/x/trigger\"}}"},
        {"POST /api/v1/backfills HTTP/1.0\r\n\r\n", "HTTP/1.1 404 ",
         "{\"error\":{\"code\":\"not_found\",\"message\":\"no such endpoint: POST "
         "/api/v1/backfills\"}}"},
        {"GET /api/v1/backfills/b/cancel HTTP/1.0\r\n\r\n", "HTTP/1.1 404 ",
         "{\"error\":{\"code\":\"not_found\",\"message\":\"no such endpoint: GET "
         "/api/v1/backfills/b/cancel\"}}"},
        {"OPTIONS * HTTP/1.0\r\n\r\n", "HTTP/1.1 404 ",
         "{\"error\":{\"code\":\"not_found\",\"message\":\"no such endpoint: *\"}}"},
        /* the two handlers that need no scheduler */
        {"GET /api/v1/health HTTP/1.0\r\n\r\n", "HTTP/1.1 200 ",
         "{\"status\":\"ok\",\"version\":\"0.1.0\"}"},
        {"HEAD /api/v1/health HTTP/1.0\r\n\r\n", "HTTP/1.1 200 ", ""},
        {"GET / HTTP/1.0\r\n\r\n", "HTTP/1.1 200 ", NULL},
    };
    struct srv *s = xcalloc(1, sizeof(*s));
    assert_int_equal(uv_loop_init(&s->loop), 0);
    assert_int_equal(http_server_start(&s->http, &s->loop, "127.0.0.1", 0, api_handle, NULL), 0);
    s->port = http_server_port(s->http);
    assert_int_equal(uv_async_init(&s->loop, &s->stop, srv_stop_cb), 0);
    s->stop.data = s;
    assert_int_equal(pthread_create(&s->thread, NULL, srv_main, s), 0);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *resp = exchange(s->port, cases[i].req);
        if (strncmp(resp, cases[i].status, strlen(cases[i].status)) != 0)
            fail_msg("%s: got '%.40s'", cases[i].req, resp);
        const char *body = strstr(resp, "\r\n\r\n");
        assert_non_null(body);
        body += 4;
        if (cases[i].body && strcmp(body, cases[i].body) != 0)
            fail_msg("%s: body '%s', want '%s'", cases[i].req, body, cases[i].body);
        if (!cases[i].body)
            assert_non_null(strstr(body, "<html"));
        free(resp);
    }

    uv_async_send(&s->stop);
    assert_int_equal(pthread_join(s->thread, NULL), 0);
    assert_int_equal(uv_loop_close(&s->loop), 0);
    free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_param),
        cmocka_unit_test(test_table_sorted),
        cmocka_unit_test(test_table_overlaps),
        cmocka_unit_test(test_table_find),
        cmocka_unit_test(test_table_documented),
        cmocka_unit_test(test_handle_unrouted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
