/* route.c - matching request paths against route patterns (see route.h).
 *
 * Owns nothing beyond a split path's copy. Patterns are static strings
 * read a segment at a time as they are compared, so a route table needs no
 * set-up and a lookup allocates nothing but the one split of the path.
 */
#include "route.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

void
route_path_split(struct route_path *out, const char *path)
{
    struct route_path rp = {0};
    size_t cap = 0;
    rp.buf = xstrdup(path ? path : "");
    char *p = rp.buf;
    while (*p == '/')
        p++;
    while (*p) {
        xgrow((void **)&rp.seg, &cap, rp.n + 1, sizeof(*rp.seg));
        rp.seg[rp.n++] = p;
        char *q = strchr(p, '/');
        if (!q)
            break;
        *q = '\0';
        p = q + 1;
    }
    *out = rp;
}

void
route_path_free(struct route_path *rp)
{
    if (!rp)
        return;
    free(rp->seg);
    free(rp->buf);
    rp->seg = NULL;
    rp->buf = NULL;
    rp->n = 0;
}

bool
route_match(const char *pattern, const struct route_path *rp, struct route_params *out)
{
    struct route_params m;
    const char *p = pattern;
    size_t i = 0;

    m.n = 0;
    while (*p == '/')
        p++;
    while (*p) {
        size_t len = strcspn(p, "/");
        if (i >= rp->n)
            return false;
        if (p[0] == '{') {
            if (len < 3 || p[len - 1] != '}' || m.n == ROUTE_PARAMS_MAX)
                return false;
            m.p[m.n].name = p + 1;
            m.p[m.n].name_len = len - 2;
            m.p[m.n].value = rp->seg[i];
            m.n++;
        } else if (strlen(rp->seg[i]) != len || memcmp(rp->seg[i], p, len) != 0) {
            return false;
        }
        i++;
        p += len;
        if (*p == '/')
            p++;
    }
    if (i != rp->n)
        return false;
    if (out)
        *out = m;
    return true;
}

const char *
route_param(const struct route_params *p, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; p && i < p->n; i++)
        if (p->p[i].name_len == len && memcmp(p->p[i].name, name, len) == 0)
            return p->p[i].value;
    return NULL;
}
