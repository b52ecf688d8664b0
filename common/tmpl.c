/* tmpl.c - {{ name }} templates: finding them, checking their names and
 * rendering them (see tmpl.h).
 *
 * Owns the template syntax (where a template starts and ends, which bytes a
 * name may hold, the aggregate form FN(TASK.metrics.NAME)), the list of
 * fixed names, the "did you mean" hints, and how each kind of value is
 * written into the output: fixed names and params as they are, a mapped
 * instance's item from its JSON text (strings as their text, everything
 * else as compact JSON, numbers as spelt in the text), map_index and
 * aggregates as numbers. It keeps no state: every function reads its
 * arguments for the call only, in time linear in the input (the JSON of an
 * item is scanned once per {{ item... }}).
 */
#include "tmpl.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "util.h"

/* How much of a bad name an error message repeats. */
#define TMPL__ECHO_MAX 64
#define TMPL__PARAMS "params."
#define TMPL__PARAMS_LEN (sizeof(TMPL__PARAMS) - 1)

/* The fixed names, in the order hints prefer them on a tie. */
enum tmpl__fixed_id {
    TMPL__DS,
    TMPL__DS_NODASH,
    TMPL__TS,
    TMPL__DI_START,
    TMPL__DI_END,
    TMPL__RUN_ID,
    TMPL__DAG,
    TMPL__TASK,
    TMPL__NFIXED
};

static const char *const tmpl__fixed[TMPL__NFIXED] = {
    "ds", "ds_nodash", "ts", "data_interval_start", "data_interval_end", "run_id", "dag", "task",
};

#define TMPL__ITEM "item"
#define TMPL__MAP_INDEX "map_index"
/* JSON nesting an item may have. */
#define TMPL__JSON_DEPTH 64

/* The aggregates, as `when` has them (expr.h). */
static const char *const tmpl__aggs[] = {"max", "min", "avg", "sum", "count", "argmax"};
#define TMPL__NAGGS (sizeof(tmpl__aggs) / sizeof(tmpl__aggs[0]))

/* One "{{ name }}" found in the input. */
struct tmpl__ref {
    size_t open; /* offset of "{{" */
    size_t name; /* offset of the name */
    size_t nlen; /* length of the name */
    size_t end;  /* offset just past "}}" */
    bool agg;    /* the name has the form FN(REF): */
    size_t fnlen; /* FN is at name */
    size_t ref;  /* offset and length of REF, spaces around it left out */
    size_t reflen;
    bool shquote; /* "| shquote" followed the name: the value single-quoted for sh */
};

/* How the names are known: parameters by yes/no (has), by listing (at), or
 * not at all (any: every name is accepted); the rest from the scope. */
struct tmpl__params {
    tmpl_param_fn has;
    tmpl_param_at_fn at;
    void *ud;
    bool any;
    const struct tmpl_scope *scope; /* NULL: not mapped, no aggregates */
};

static int
tmpl__pos(size_t off)
{
    return off > INT_MAX ? INT_MAX : (int)off;
}

static int tmpl__fail(char *err, size_t errlen, int *errpos, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int
tmpl__fail(char *err, size_t errlen, int *errpos, size_t pos, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    verrf(0, err, errlen, fmt, ap);
    va_end(ap);
    if (errpos)
        *errpos = tmpl__pos(pos);
    return CAIRN_EPARSE;
}

static bool
tmpl__name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

static bool
tmpl__space(char c)
{
    return c == ' ' || c == '\t';
}

/* Does the name [a, b) have the form FN(REF), FN made of letters, digits
 * and '_', REF of name characters, spaces allowed around REF and before
 * '('? Then fill r's aggregate fields. */
static bool
tmpl__agg_shape(const char *s, const char *a, const char *b, struct tmpl__ref *r)
{
    const char *p = a, *q, *e;

    while (p < b && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || *p == '_'))
        p++;
    if (p == a)
        return false;
    r->fnlen = (size_t)(p - a);
    while (p < b && tmpl__space(*p))
        p++;
    if (p == b || *p != '(' || b[-1] != ')')
        return false;
    q = b - 1; /* the ')' */
    for (p++; p < q && tmpl__space(*p); p++)
        ;
    for (e = q; e > p && tmpl__space(e[-1]); e--)
        ;
    for (const char *x = p; x < e; x++)
        if (!tmpl__name_char(*x))
            return false;
    r->ref = (size_t)(p - s);
    r->reflen = (size_t)(e - p);
    return true;
}

/* Find the next template at or after from. Sets *found; on a syntax error
 * returns CAIRN_EPARSE with err and *errpos filled. */
static int
tmpl__next(const char *s, size_t from, struct tmpl__ref *r, bool *found, char *err, size_t errlen,
           int *errpos)
{
    const char *open, *close, *a, *b;

    /* Plain loops rather than strstr: each byte is looked at once, whatever
     * the C library (or a sanitizer's wrapper of it) does. */
    *found = false;
    for (open = s + from; *open && !(open[0] == '{' && open[1] == '{'); open++)
        ;
    if (!*open)
        return 0;
    r->open = (size_t)(open - s);
    for (close = open + 2; *close && !(close[0] == '}' && close[1] == '}'); close++)
        if (close[0] == '{' && close[1] == '{')
            break;
    if (close[0] != '}')
        return tmpl__fail(err, errlen, errpos, r->open, "unclosed '{{' (missing '}}')");
    for (a = open + 2; a < close && tmpl__space(*a); a++)
        ;
    for (b = close; b > a && tmpl__space(b[-1]); b--)
        ;
    if (a == b)
        return tmpl__fail(err, errlen, errpos, r->open,
                          "empty template '{{ }}' (expected a name such as ds or params.NAME)");
    r->name = (size_t)(a - s);
    r->shquote = false;
    /* a filter: "NAME | shquote" */
    const char *bar = a;
    while (bar < b && *bar != '|')
        bar++;
    if (bar < b) {
        const char *f = bar + 1, *nb = bar;
        while (f < b && tmpl__space(*f))
            f++;
        while (nb > a && tmpl__space(nb[-1]))
            nb--;
        if ((size_t)(b - f) != 7 || memcmp(f, "shquote", 7) != 0)
            return tmpl__fail(err, errlen, errpos, (size_t)(f - s),
                              "unknown filter '%.*s' (the one filter is shquote)",
                              (int)((size_t)(b - f) > TMPL__ECHO_MAX ? TMPL__ECHO_MAX : b - f), f);
        if (nb == a)
            return tmpl__fail(err, errlen, errpos, r->open,
                              "empty template before '| shquote' (expected a name such as "
                              "params.NAME)");
        r->shquote = true;
        b = nb;
    }
    r->nlen = (size_t)(b - a);
    r->end = (size_t)(close - s) + 2;
    r->agg = tmpl__agg_shape(s, a, b, r);
    for (const char *p = a; p < b && !r->agg; p++) {
        if (tmpl__name_char(*p))
            continue;
        if (*p >= 0x20 && *p < 0x7f)
            return tmpl__fail(err, errlen, errpos, r->name,
                              "invalid character '%c' in template name '%.*s%s'", *p,
                              (int)(r->nlen > TMPL__ECHO_MAX ? TMPL__ECHO_MAX : r->nlen), a,
                              r->nlen > TMPL__ECHO_MAX ? "..." : "");
        return tmpl__fail(err, errlen, errpos, r->name,
                          "invalid byte 0x%02x in template name (names use letters, digits, "
                          "'_', '-' and '.')",
                          (unsigned)(unsigned char)*p);
    }
    *found = true;
    return 0;
}

static int
tmpl__fixed_lookup(const char *name, size_t nlen)
{
    for (int i = 0; i < TMPL__NFIXED; i++)
        if (strlen(tmpl__fixed[i]) == nlen && memcmp(tmpl__fixed[i], name, nlen) == 0)
            return i;
    return -1;
}

/* Largest edit distance worth a "did you mean" for a name of len bytes. */
static size_t
tmpl__cap(size_t len)
{
    return len <= 3 ? 1 : len <= 8 ? 2 : 3;
}

/* Keep cand as the best hint so far if it is closer than *best. Scores are
 * the edit distance, then the difference in length ("taks" is nearer "task"
 * than "ts"), then the order of the candidates. */
static void
tmpl__consider(const char *name, const char *cand, size_t cap, size_t *best, struct sb *hint,
               const char *prefix)
{
    size_t d, nlen = strlen(name), score;
    struct sb full;

    sb_init(&full);
    sb_puts(&full, prefix);
    sb_puts(&full, cand);
    d = strcasecmp(name, full.buf) == 0 ? 0 : str_distance(name, full.buf, cap);
    score = d * 1024 + (full.len > nlen ? full.len - nlen : nlen - full.len) % 1024;
    if (d <= cap && score < *best) {
        *best = score;
        hint->len = 0;
        sb_puts(hint, full.buf);
    }
    sb_free(&full);
}

static void
tmpl__write_hint(const struct sb *best, char *hint, size_t hintlen)
{
    if (hint && hintlen && best->len)
        snprintf(hint, hintlen, "did you mean '%s'?", best->buf);
}

/* Does the parameter exist? */
static bool
tmpl__has_param(const struct tmpl__params *pp, const char *name)
{
    const char *p;

    if (pp->any)
        return true;
    if (pp->has)
        return pp->has(pp->ud, name);
    for (size_t i = 0; pp->at && (p = pp->at(pp->ud, i)) != NULL; i++)
        if (strcmp(p, name) == 0)
            return true;
    return false;
}

/* The name (NUL-terminated copy) is neither fixed nor a known parameter:
 * find the closest candidate. */
static void
tmpl__suggest(const struct tmpl__params *pp, const char *name, bool is_param, char *hint,
              size_t hintlen)
{
    struct sb best;
    size_t bestd = SIZE_MAX;

    sb_init(&best);
    if (is_param) {
        const char *pname = name + TMPL__PARAMS_LEN, *p;
        size_t cap = tmpl__cap(strlen(pname));
        if (pp->at)
            for (size_t i = 0; (p = pp->at(pp->ud, i)) != NULL; i++)
                tmpl__consider(pname, p, cap, &bestd, &best, "");
        if (best.len) {
            /* best holds the bare parameter name: give the full name. */
            char *bare = sb_take(&best);
            sb_puts(&best, TMPL__PARAMS);
            sb_puts(&best, bare);
            free(bare);
        } else {
            /* Perhaps a fixed name was meant ("params.ds"). */
            for (int i = 0; i < TMPL__NFIXED; i++)
                tmpl__consider(pname, tmpl__fixed[i], tmpl__cap(strlen(pname)), &bestd, &best, "");
        }
    } else {
        const char *dot = strchr(name, '.'), *p;
        size_t cap = tmpl__cap(strlen(name));
        for (int i = 0; i < TMPL__NFIXED; i++)
            tmpl__consider(name, tmpl__fixed[i], cap, &bestd, &best, "");
        if (pp->scope && pp->scope->mapped) {
            tmpl__consider(name, TMPL__ITEM, cap, &bestd, &best, "");
            tmpl__consider(name, TMPL__MAP_INDEX, cap, &bestd, &best, "");
        }
        if (pp->at) {
            for (size_t i = 0; (p = pp->at(pp->ud, i)) != NULL; i++)
                tmpl__consider(name, p, cap, &bestd, &best, TMPL__PARAMS);
        } else if (!best.len && pp->has && dot && dot[1] && (size_t)(dot - name) < 16) {
            /* "param.x", "parms.x": a misspelt prefix of an existing param. */
            char prefix[16];
            memcpy(prefix, name, (size_t)(dot - name));
            prefix[dot - name] = '\0';
            if (str_distance(prefix, "params", 2) <= 2 && pp->has(pp->ud, dot + 1)) {
                sb_puts(&best, TMPL__PARAMS);
                sb_puts(&best, dot + 1);
            }
        }
        if (!best.len && !dot) {
            /* A bare parameter name: "{{ min_accuracy }}". */
            if (!pp->any && tmpl__has_param(pp, name)) {
                sb_puts(&best, TMPL__PARAMS);
                sb_puts(&best, name);
            }
        }
    }
    tmpl__write_hint(&best, hint, hintlen);
    sb_free(&best);
}

/* The parts of an aggregate: its function (index into tmpl__aggs), task
 * and metric. Returns 0, or CAIRN_EPARSE with err and *errpos filled. */
struct tmpl__agg {
    int fn;
    char *task, *metric; /* malloc'd */
};

static int
tmpl__agg_parse(const char *s, const struct tmpl__ref *r, struct tmpl__agg *out, char *err,
                size_t errlen, int *errpos)
{
    const char *ref = s + r->ref, *d1, *d2;
    size_t n = r->reflen;
    int fn = -1;

    for (size_t i = 0; i < TMPL__NAGGS; i++)
        if (strlen(tmpl__aggs[i]) == r->fnlen && !memcmp(tmpl__aggs[i], s + r->name, r->fnlen))
            fn = (int)i;
    if (fn < 0)
        return tmpl__fail(err, errlen, errpos, r->name,
                          "unknown function '%.*s%s' in a template (the aggregates are max, min, "
                          "avg, sum, count and argmax)",
                          (int)(r->fnlen > TMPL__ECHO_MAX ? TMPL__ECHO_MAX : r->fnlen),
                          s + r->name, r->fnlen > TMPL__ECHO_MAX ? "..." : "");
    d1 = memchr(ref, '.', n);
    d2 = d1 ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - ref)) : NULL;
    if (n > TMPL__PARAMS_LEN && !strncmp(ref, TMPL__PARAMS, TMPL__PARAMS_LEN))
        return tmpl__fail(err, errlen, errpos, r->ref,
                          "%s() is over the instances of a mapped task: write "
                          "%s(TASK.metrics.NAME), not a param",
                          tmpl__aggs[fn], tmpl__aggs[fn]);
    if (!d1 || !d2 || d1 == ref || d2 - d1 - 1 != 7 || memcmp(d1 + 1, "metrics", 7) ||
        d2 + 1 == ref + n || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - ref)))
        return tmpl__fail(err, errlen, errpos, r->ref,
                          "expected 'TASK.metrics.NAME' inside '%s()', got '%.*s%s'",
                          tmpl__aggs[fn], (int)(n > TMPL__ECHO_MAX ? TMPL__ECHO_MAX : n), ref,
                          n > TMPL__ECHO_MAX ? "..." : "");
    out->fn = fn;
    out->task = xstrndup(ref, (size_t)(d1 - ref));
    out->metric = xstrndup(d2 + 1, n - (size_t)(d2 + 1 - ref));
    return 0;
}

/* Is the name item, item.PATH or map_index? *path (malloc'd) gets PATH
 * (NULL for the others). CAIRN_EPARSE for an empty part of a path. */
static int
tmpl__item_name(const char *s, const struct tmpl__ref *r, bool *is_item, char **path, char *err,
                size_t errlen, int *errpos)
{
    const char *name = s + r->name;
    size_t n = r->nlen, il = strlen(TMPL__ITEM);

    *path = NULL;
    *is_item = (n == il && !memcmp(name, TMPL__ITEM, il)) ||
               (n == strlen(TMPL__MAP_INDEX) && !memcmp(name, TMPL__MAP_INDEX, n));
    if (*is_item || n <= il || memcmp(name, TMPL__ITEM ".", il + 1) != 0)
        return 0;
    *is_item = true;
    const char *p = name + il + 1, *end = name + n;
    for (const char *q = p; q <= end; q++) {
        if (q < end && *q != '.')
            continue;
        if (q == p || q[-1] == '.')
            return tmpl__fail(err, errlen, errpos, r->name,
                              "empty key in template name '%.*s%s': write item.KEY or "
                              "item.KEY.INNER",
                              (int)(n > TMPL__ECHO_MAX ? TMPL__ECHO_MAX : n), name,
                              n > TMPL__ECHO_MAX ? "..." : "");
    }
    *path = xstrndup(p, (size_t)(end - p));
    return 0;
}

/* Check an item name or an aggregate against the scope; 0 if valid. */
static int
tmpl__check_scoped(const char *s, const struct tmpl__ref *r, const struct tmpl__params *pp,
                   bool *handled, char *err, size_t errlen, int *errpos, char *hint,
                   size_t hintlen)
{
    const struct tmpl_scope *sc = pp->scope;
    bool is_item;
    char *path = NULL;
    int rc;

    *handled = true;
    if (r->agg) {
        struct tmpl__agg ag;
        if ((rc = tmpl__agg_parse(s, r, &ag, err, errlen, errpos)) != 0)
            return rc;
        if (!sc || !sc->agg) {
            rc = tmpl__fail(err, errlen, errpos, r->ref,
                            "%s(%s.metrics.%s) is not available here (aggregates are over a "
                            "mapped upstream task's instances)",
                            tmpl__aggs[ag.fn], ag.task, ag.metric);
        } else if (sc->agg(sc->ud, tmpl__aggs[ag.fn], ag.task, ag.metric, err, errlen, hint,
                           hintlen) != 0) {
            rc = CAIRN_EPARSE;
            if (errpos)
                *errpos = tmpl__pos(r->ref);
        }
        free(ag.task);
        free(ag.metric);
        return rc;
    }
    if ((rc = tmpl__item_name(s, r, &is_item, &path, err, errlen, errpos)) != 0)
        return rc;
    if (!is_item) {
        *handled = false;
        return 0;
    }
    if (!sc || !sc->mapped) {
        rc = tmpl__fail(err, errlen, errpos, r->name,
                        "template name '%.*s%s' is known only in a mapped task (one with 'map' "
                        "or 'matrix')",
                        (int)(r->nlen > TMPL__ECHO_MAX ? TMPL__ECHO_MAX : r->nlen), s + r->name,
                        r->nlen > TMPL__ECHO_MAX ? "..." : "");
        if (hint && hintlen)
            snprintf(hint, hintlen, "%s",
                     sc && sc->unmapped_hint ? sc->unmapped_hint
                                             : "add 'matrix:' or 'map:' to the task to run it "
                                               "once per item");
    } else if (path && sc->item &&
               sc->item(sc->ud, path, err, errlen, hint, hintlen) != 0) {
        rc = CAIRN_EPARSE;
        if (errpos)
            *errpos = tmpl__pos(r->name);
    }
    free(path);
    return rc;
}

static int
tmpl__check(const char *s, const struct tmpl__params *pp, char *err, size_t errlen, int *errpos,
            char *hint, size_t hintlen)
{
    size_t from = 0;

    if (err && errlen)
        err[0] = '\0';
    if (hint && hintlen)
        hint[0] = '\0';
    if (errpos)
        *errpos = -1;
    for (;;) {
        struct tmpl__ref r;
        bool found, is_param;
        char *name;
        int rc = tmpl__next(s, from, &r, &found, err, errlen, errpos);

        if (rc < 0 || !found)
            return rc;
        from = r.end;
        if (!r.agg && tmpl__fixed_lookup(s + r.name, r.nlen) >= 0)
            continue;
        bool handled;
        rc = tmpl__check_scoped(s, &r, pp, &handled, err, errlen, errpos, hint, hintlen);
        if (rc < 0)
            return rc;
        if (handled)
            continue;
        name = xstrndup(s + r.name, r.nlen);
        is_param = strncmp(name, TMPL__PARAMS, TMPL__PARAMS_LEN) == 0;
        if ((is_param && r.nlen == TMPL__PARAMS_LEN) || strcmp(name, "params") == 0) {
            free(name);
            return tmpl__fail(err, errlen, errpos, r.name,
                              "missing parameter name: write 'params.NAME'");
        }
        if (is_param && tmpl__has_param(pp, name + TMPL__PARAMS_LEN)) {
            free(name);
            continue;
        }
        if (is_param)
            tmpl__fail(err, errlen, errpos, r.name,
                       "unknown template name '%.*s%s': the DAG has no parameter '%.*s%s'",
                       TMPL__ECHO_MAX, name, r.nlen > TMPL__ECHO_MAX ? "..." : "", TMPL__ECHO_MAX,
                       name + TMPL__PARAMS_LEN,
                       r.nlen - TMPL__PARAMS_LEN > TMPL__ECHO_MAX ? "..." : "");
        else
            tmpl__fail(err, errlen, errpos, r.name, "unknown template name '%.*s%s'",
                       TMPL__ECHO_MAX, name, r.nlen > TMPL__ECHO_MAX ? "..." : "");
        tmpl__suggest(pp, name, is_param, hint, hintlen);
        free(name);
        return CAIRN_EPARSE;
    }
}

int
tmpl_check(const char *s, tmpl_param_fn has_param, void *ud, char *err, size_t errlen, int *errpos,
           char *hint, size_t hintlen)
{
    struct tmpl__params pp = {
        .has = has_param, .at = NULL, .ud = ud, .any = !has_param, .scope = NULL};
    return tmpl__check(s, &pp, err, errlen, errpos, hint, hintlen);
}

int
tmpl_check_params(const char *s, tmpl_param_at_fn param_at, void *ud, char *err, size_t errlen,
                  int *errpos, char *hint, size_t hintlen)
{
    /* Without a list there are no parameters at all. */
    struct tmpl__params pp = {.has = NULL, .at = param_at, .ud = ud, .any = false, .scope = NULL};
    return tmpl__check(s, &pp, err, errlen, errpos, hint, hintlen);
}

int
tmpl_check_scope(const char *s, const struct tmpl_scope *scope, char *err, size_t errlen,
                 int *errpos, char *hint, size_t hintlen)
{
    struct tmpl__params pp = {
        .has = NULL, .at = scope->param_at, .ud = scope->ud, .any = false, .scope = scope};
    return tmpl__check(s, &pp, err, errlen, errpos, hint, hintlen);
}

static const char *
tmpl__fixed_value(const struct tmpl_ctx *ctx, int id)
{
    switch (id) {
    case TMPL__DS:
        return ctx->ds;
    case TMPL__DS_NODASH:
        return ctx->ds_nodash;
    case TMPL__TS:
        return ctx->ts;
    case TMPL__DI_START:
        return ctx->data_interval_start;
    case TMPL__DI_END:
        return ctx->data_interval_end;
    case TMPL__RUN_ID:
        return ctx->run_id;
    case TMPL__DAG:
        return ctx->dag;
    case TMPL__TASK:
        return ctx->task;
    default:
        return NULL;
    }
}

/* ---- an instance's item: a JSON value, read without changing its spelling ---- */

struct tmpl__json {
    const char *s; /* NUL-terminated */
    size_t i;
};

static void
tmpl__jws(struct tmpl__json *j)
{
    while (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' || j->s[j->i] == '\r')
        j->i++;
}

static bool
tmpl__digit(char c)
{
    return c >= '0' && c <= '9';
}

static int
tmpl__hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static void
tmpl__utf8(struct sb *out, unsigned cp)
{
    if (cp < 0x80) {
        sb_putc(out, (char)cp);
    } else if (cp < 0x800) {
        sb_putc(out, (char)(0xc0 | (cp >> 6)));
        sb_putc(out, (char)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        sb_putc(out, (char)(0xe0 | (cp >> 12)));
        sb_putc(out, (char)(0x80 | ((cp >> 6) & 0x3f)));
        sb_putc(out, (char)(0x80 | (cp & 0x3f)));
    } else {
        sb_putc(out, (char)(0xf0 | (cp >> 18)));
        sb_putc(out, (char)(0x80 | ((cp >> 12) & 0x3f)));
        sb_putc(out, (char)(0x80 | ((cp >> 6) & 0x3f)));
        sb_putc(out, (char)(0x80 | (cp & 0x3f)));
    }
}

/* The string at j->i (a '"'): skipped, and decoded into out unless NULL
 * (a NUL character is left out and sets *nul). -1 if malformed. */
static int
tmpl__jstring(struct tmpl__json *j, struct sb *out, bool *nul)
{
    const char *s = j->s;
    size_t i = j->i + 1;
    for (;;) {
        unsigned char c = (unsigned char)s[i];
        unsigned cp, lo;
        if (c == '"') {
            j->i = i + 1;
            return 0;
        }
        if (c < 0x20) /* a control character, or the end of the text */
            return -1;
        if (c != '\\') {
            if (out)
                sb_putc(out, (char)c);
            i++;
            continue;
        }
        switch (s[i + 1]) {
        case '"':
        case '\\':
        case '/':
            cp = (unsigned char)s[i + 1];
            break;
        case 'b':
            cp = '\b';
            break;
        case 'f':
            cp = '\f';
            break;
        case 'n':
            cp = '\n';
            break;
        case 'r':
            cp = '\r';
            break;
        case 't':
            cp = '\t';
            break;
        case 'u':
            if (tmpl__hex4(s + i + 2, &cp))
                return -1;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return -1;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (s[i + 6] != '\\' || s[i + 7] != 'u' || tmpl__hex4(s + i + 8, &lo) ||
                    lo < 0xdc00 || lo > 0xdfff)
                    return -1;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                i += 6;
            }
            i += 4;
            break;
        default:
            return -1;
        }
        if (out && cp == 0)
            *nul = true;
        else if (out)
            tmpl__utf8(out, cp);
        i += 2;
    }
}

static int
tmpl__jnumber(struct tmpl__json *j)
{
    const char *s = j->s;
    size_t i = j->i;
    if (s[i] == '-')
        i++;
    if (s[i] == '0')
        i++;
    else if (tmpl__digit(s[i]))
        while (tmpl__digit(s[i]))
            i++;
    else
        return -1;
    if (s[i] == '.') {
        if (!tmpl__digit(s[++i]))
            return -1;
        while (tmpl__digit(s[i]))
            i++;
    }
    if (s[i] == 'e' || s[i] == 'E') {
        i++;
        if (s[i] == '+' || s[i] == '-')
            i++;
        if (!tmpl__digit(s[i]))
            return -1;
        while (tmpl__digit(s[i]))
            i++;
    }
    j->i = i;
    return 0;
}

/* Skip the value at j->i (spaces before it too), checking it is JSON. */
static int
tmpl__jvalue(struct tmpl__json *j, int depth)
{
    static const char *const lits[] = {"true", "false", "null"};
    tmpl__jws(j);
    char c = j->s[j->i];
    if (c == '"')
        return tmpl__jstring(j, NULL, NULL);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        if (depth >= TMPL__JSON_DEPTH)
            return -1;
        j->i++;
        tmpl__jws(j);
        if (j->s[j->i] == close) {
            j->i++;
            return 0;
        }
        for (;;) {
            if (c == '{') {
                tmpl__jws(j);
                if (j->s[j->i] != '"' || tmpl__jstring(j, NULL, NULL))
                    return -1;
                tmpl__jws(j);
                if (j->s[j->i++] != ':')
                    return -1;
            }
            if (tmpl__jvalue(j, depth + 1))
                return -1;
            tmpl__jws(j);
            if (j->s[j->i] == ',') {
                j->i++;
                continue;
            }
            if (j->s[j->i] != close)
                return -1;
            j->i++;
            return 0;
        }
    }
    if (c == '-' || tmpl__digit(c))
        return tmpl__jnumber(j);
    for (size_t k = 0; k < 3; k++) {
        size_t n = strlen(lits[k]);
        if (!strncmp(j->s + j->i, lits[k], n)) {
            j->i += n;
            return 0;
        }
    }
    return -1;
}

static const char *
tmpl__jkind(char c)
{
    switch (c) {
    case '{':
        return "an object";
    case '[':
        return "a list";
    case '"':
        return "a string";
    case 't':
    case 'f':
        return "a boolean";
    case 'n':
        return "null";
    default:
        return "a number";
    }
}

static void tmpl__shortest(struct sb *out, double v);

/* A JSON number of n bytes at s, as written; except a fraction or exponent
 * with more than 15 significant digits, which is written as the shortest
 * text that reads back as the same double: 0.1 that went through a JSON
 * library as 0.10000000000000001 is 0.1 again. Integers stay as written,
 * whatever their length (identifiers). */
static void
tmpl__jnum_write(struct sb *out, const char *s, size_t n)
{
    size_t sig = 0, i = 0;
    bool lead = true, frac = false;
    for (; i < n && s[i] != 'e' && s[i] != 'E'; i++) {
        if (s[i] == '.')
            frac = true;
        if (!tmpl__digit(s[i]) || (lead && s[i] == '0'))
            continue;
        lead = false;
        sig++;
    }
    if ((!frac && i == n) || sig <= 15) {
        sb_append(out, s, n);
        return;
    }
    char *tmp = xstrndup(s, n);
    tmpl__shortest(out, strtod(tmp, NULL));
    free(tmp);
}

/* Write the value of item (path NULL) or item.PATH from the JSON text json:
 * a string as its text, anything else as compact JSON. */
static int
tmpl__item_render(const char *json, const char *path, struct sb *out, char *err, size_t errlen)
{
    struct tmpl__json j = {json, 0};
    const char *seg = path;
    struct sb key;
    size_t start, end;

    if (tmpl__jvalue(&j, 0) != 0 || (tmpl__jws(&j), json[j.i] != '\0'))
        return tmpl__fail(err, errlen, NULL, 0, "the instance's item is not valid JSON");
    j.i = 0;
    sb_init(&key);
    while (seg) {
        const char *dot = strchr(seg, '.');
        size_t slen = dot ? (size_t)(dot - seg) : strlen(seg);
        bool found = false;
        tmpl__jws(&j);
        if (json[j.i] != '{') {
            int rc = tmpl__fail(err, errlen, NULL, 0, "item%s%.*s is %s, so it has no key '%.*s'",
                                seg == path ? "" : ".", (int)(seg == path ? 0 : seg - path - 1),
                                path, tmpl__jkind(json[j.i]), (int)slen, seg);
            sb_free(&key);
            return rc;
        }
        j.i++;
        tmpl__jws(&j);
        while (json[j.i] == '"') {
            bool nul = false;
            key.len = 0;
            tmpl__jstring(&j, &key, &nul); /* valid: checked above */
            tmpl__jws(&j);
            j.i++; /* ':' */
            tmpl__jws(&j);
            if (!nul && key.len == slen && (slen == 0 || !memcmp(key.buf, seg, slen))) {
                found = true;
                break;
            }
            tmpl__jvalue(&j, 0);
            tmpl__jws(&j);
            if (json[j.i] == ',')
                j.i++;
            tmpl__jws(&j);
        }
        if (!found) {
            int rc = tmpl__fail(err, errlen, NULL, 0, "item%s%.*s has no key '%.*s'",
                                seg == path ? "" : ".", (int)(seg == path ? 0 : seg - path - 1),
                                path, (int)slen, seg);
            sb_free(&key);
            return rc;
        }
        seg = dot ? dot + 1 : NULL;
    }
    sb_free(&key);
    tmpl__jws(&j);
    start = j.i;
    tmpl__jvalue(&j, 0);
    end = j.i;
    if (json[start] == '"') {
        struct tmpl__json sj = {json, start};
        bool nul = false;
        tmpl__jstring(&sj, out, &nul);
        if (nul) {
            return tmpl__fail(err, errlen, NULL, 0, "item%s%s is a string with a NUL character",
                              path ? "." : "", path ? path : "");
        }
        return 0;
    }
    /* compact: drop the spaces outside strings */
    bool in_str = false;
    for (size_t i = start; i < end; i++) {
        char c = json[i];
        if (in_str) {
            sb_putc(out, c);
            if (c == '\\')
                sb_putc(out, json[++i]);
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
            sb_putc(out, c);
        } else if (c == '-' || tmpl__digit(c)) {
            struct tmpl__json nj = {json, i};
            tmpl__jnumber(&nj);
            tmpl__jnum_write(out, json + i, nj.i - i);
            i = nj.i - 1;
        } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            sb_putc(out, c);
        }
    }
    return 0;
}

static void tmpl__number(struct sb *out, double v);

/* Render an item name, map_index or an aggregate into sb (*done), or leave
 * the name to the caller (!*done). */
static int
tmpl__render_scoped(const char *s, const struct tmpl__ref *r, const struct tmpl_ctx *ctx,
                    struct sb *sb, bool *done, char *err, size_t errlen)
{
    bool is_item;
    char *path = NULL;
    int rc;

    *done = true;
    if (r->agg) {
        struct tmpl__agg ag;
        double v = 0;
        if ((rc = tmpl__agg_parse(s, r, &ag, err, errlen, NULL)) != 0)
            return rc;
        if (!ctx->aggregate && ctx->keep_unresolved) {
            sb_append(sb, s + r->open, r->end - r->open);
        } else if (!ctx->aggregate) {
            rc = tmpl__fail(err, errlen, NULL, r->name, "%s(%s.metrics.%s) has no value here",
                            tmpl__aggs[ag.fn], ag.task, ag.metric);
        } else if (ctx->aggregate(ctx->aggregate_ud, tmpl__aggs[ag.fn], ag.task, ag.metric, &v) !=
                   0) {
            rc = tmpl__fail(err, errlen, NULL, r->name,
                            "%s(%s.metrics.%s) has no value: no instance of task '%s' has metric "
                            "'%s'",
                            tmpl__aggs[ag.fn], ag.task, ag.metric, ag.task, ag.metric);
        } else if (!strcmp(tmpl__aggs[ag.fn], "argmax") || !strcmp(tmpl__aggs[ag.fn], "count")) {
            sb_printf(sb, "%lld", (long long)v);
        } else {
            tmpl__number(sb, v);
        }
        free(ag.task);
        free(ag.metric);
        return rc;
    }
    if ((rc = tmpl__item_name(s, r, &is_item, &path, err, errlen, NULL)) != 0)
        return rc;
    if (!is_item) {
        *done = false;
        return 0;
    }
    if (!ctx->item_json && ctx->keep_unresolved)
        sb_append(sb, s + r->open, r->end - r->open);
    else if (!ctx->item_json)
        rc = tmpl__fail(err, errlen, NULL, r->name, "template name '%.*s%s' has no value here",
                        (int)(r->nlen > TMPL__ECHO_MAX ? TMPL__ECHO_MAX : r->nlen), s + r->name,
                        r->nlen > TMPL__ECHO_MAX ? "..." : "");
    else if (r->nlen == strlen(TMPL__MAP_INDEX) && !memcmp(s + r->name, TMPL__MAP_INDEX, r->nlen))
        sb_printf(sb, "%ld", ctx->map_index);
    else
        rc = tmpl__item_render(ctx->item_json, path, sb, err, errlen);
    free(path);
    return rc;
}

/* The shortest %g that reads back as v. */
static void
tmpl__shortest(struct sb *out, double v)
{
    char buf[40];
    if (!isfinite(v)) {
        sb_puts(out, isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    sb_puts(out, buf);
}

/* A number as a template writes it: an integer without a decimal point,
 * else the shortest %g that reads back as the same double. */
static void
tmpl__number(struct sb *out, double v)
{
    if (isfinite(v) && v == trunc(v) && fabs(v) < 9007199254740992.0)
        sb_printf(out, "%.0f", v == 0 ? 0.0 : v);
    else
        tmpl__shortest(out, v);
}

int
tmpl_items_foreach(const char *json, tmpl_item_fn cb, void *ud)
{
    struct tmpl__json j = {json, 0};
    size_t index = 0;
    int rc;
    if (tmpl__jvalue(&j, 0) != 0 || (tmpl__jws(&j), json[j.i] != '\0'))
        return CAIRN_EPARSE;
    j.i = 0;
    tmpl__jws(&j);
    if (json[j.i] != '[')
        return CAIRN_EPARSE;
    j.i++;
    tmpl__jws(&j);
    while (json[j.i] != ']') {
        size_t start;
        tmpl__jws(&j);
        start = j.i;
        tmpl__jvalue(&j, 1);
        if ((rc = cb(ud, index++, json + start, j.i - start)) != 0)
            return rc;
        tmpl__jws(&j);
        if (json[j.i] == ',')
            j.i++;
    }
    return 0;
}

void
tmpl_shquote(struct sb *out, const char *s, size_t n)
{
    sb_putc(out, '\'');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\'')
            sb_puts(out, "'\\''");
        else
            sb_putc(out, s[i]);
    }
    sb_putc(out, '\'');
}

/* Replace what was rendered from mark on by its shquote form. */
static void
tmpl__shquote_tail(struct sb *sb, size_t mark)
{
    char *v = xstrndup(sb->buf ? sb->buf + mark : "", sb->len - mark);
    size_t n = sb->len - mark;
    sb->len = mark;
    tmpl_shquote(sb, v, n);
    free(v);
}

int
tmpl_render(const char *s, const struct tmpl_ctx *ctx, char **out, char *err, size_t errlen)
{
    struct sb sb;
    size_t from = 0;
    int rc = 0;

    if (err && errlen)
        err[0] = '\0';
    sb_init(&sb);
    for (;;) {
        struct tmpl__ref r;
        bool found;
        const char *val = NULL;
        int id;

        rc = tmpl__next(s, from, &r, &found, err, errlen, NULL);
        if (rc < 0)
            break;
        if (!found) {
            sb_puts(&sb, s + from);
            break;
        }
        sb_append(&sb, s + from, r.open - from);
        size_t mark = sb.len;
        id = r.agg ? -1 : tmpl__fixed_lookup(s + r.name, r.nlen);
        if (id < 0) {
            bool done;
            rc = tmpl__render_scoped(s, &r, ctx, &sb, &done, err, errlen);
            if (rc < 0)
                break;
            if (done) {
                if (r.shquote)
                    tmpl__shquote_tail(&sb, mark);
                from = r.end;
                continue;
            }
        }
        if (id >= 0) {
            val = tmpl__fixed_value(ctx, id);
            if (!val) {
                rc = tmpl__fail(err, errlen, NULL, r.name, "template name '%s' has no value here",
                                tmpl__fixed[id]);
                break;
            }
        } else if (r.nlen > TMPL__PARAMS_LEN &&
                   strncmp(s + r.name, TMPL__PARAMS, TMPL__PARAMS_LEN) == 0) {
            char *pname = xstrndup(s + r.name + TMPL__PARAMS_LEN, r.nlen - TMPL__PARAMS_LEN);
            val = ctx->param ? ctx->param(ctx->ud, pname) : NULL;
            if (!val)
                rc = tmpl__fail(err, errlen, NULL, r.name, "parameter '%.*s%s' is not set",
                                TMPL__ECHO_MAX, pname, strlen(pname) > TMPL__ECHO_MAX ? "..." : "");
            free(pname);
            if (rc < 0)
                break;
        } else {
            rc = tmpl__fail(err, errlen, NULL, r.name, "unknown template name '%.*s%s'",
                            (int)(r.nlen > TMPL__ECHO_MAX ? TMPL__ECHO_MAX : r.nlen), s + r.name,
                            r.nlen > TMPL__ECHO_MAX ? "..." : "");
            break;
        }
        sb_puts(&sb, val);
        if (r.shquote)
            tmpl__shquote_tail(&sb, mark);
        from = r.end;
    }
    if (rc < 0) {
        sb_free(&sb);
        return rc;
    }
    *out = sb_take(&sb);
    return 0;
}
