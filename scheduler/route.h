/* route.h - matching request paths against route patterns (prefix: route_).
 *
 * A pattern is a path whose segments are literal ("runs") or named
 * parameters ("{run}"): "/api/v1/runs/{run}/tasks/{task}/logs". A path
 * matches when it has as many segments as the pattern and every literal
 * segment is equal (case-sensitive); each parameter takes the segment in
 * its place, whatever it holds (an empty segment too).
 *
 * Segments are read the way the API always has: leading slashes are
 * ignored, one trailing slash is ignored, and an empty segment between two
 * slashes counts ("/a//b" has three segments, the second empty; "/" and
 * "//" have none; "/a/" is "/a"). The path is already percent-decoded (by
 * the HTTP parser), so a segment may hold any byte but '/' and NUL.
 *
 * Pure string work: no I/O, no allocation but the split path's copy.
 */
#ifndef CAIRN_ROUTE_H
#define CAIRN_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#define ROUTE_PARAMS_MAX 4

/* A path split into segments. */
struct route_path {
    char *buf;  /* owned: the copy the segments point into */
    char **seg; /* owned: n segments, each NUL-terminated */
    size_t n;
};

/* The parameters of a matched pattern, in the order they appear. The names
 * point into the pattern (not NUL-terminated: name_len bytes), the values
 * into the struct route_path that matched; both are borrowed and valid as
 * long as those are. */
struct route_params {
    size_t n;
    struct {
        const char *name;
        size_t name_len;
        const char *value;
    } p[ROUTE_PARAMS_MAX];
};

/* Split path (NUL-terminated; not kept) into *out. Never fails (memory
 * exhaustion aborts, as for the other x-allocations). Release with
 * route_path_free. */
void route_path_split(struct route_path *out, const char *path);

/* Release what route_path_split allocated. rp may be NULL. */
void route_path_free(struct route_path *rp);

/* Does rp match pattern? On a match, *out (may be NULL) is set to its
 * parameters; otherwise *out is untouched. A pattern with more than
 * ROUTE_PARAMS_MAX parameters, or a malformed one (a '{' segment without
 * its closing '}', an empty name), matches nothing. */
bool route_match(const char *pattern, const struct route_path *rp, struct route_params *out);

/* The value of the parameter called name, or NULL if p has none. */
const char *route_param(const struct route_params *p, const char *name);

#endif
