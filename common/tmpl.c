#include "tmpl.h"

#include <limits.h>
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

/* One "{{ name }}" found in the input. */
struct tmpl__ref {
    size_t open; /* offset of "{{" */
    size_t name; /* offset of the name */
    size_t nlen; /* length of the name */
    size_t end;  /* offset just past "}}" */
};

/* How the parameters are known: by yes/no (has), by listing (at), or not
 * at all (any: every name is accepted). */
struct tmpl__params {
    tmpl_param_fn has;
    tmpl_param_at_fn at;
    void *ud;
    bool any;
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
    r->nlen = (size_t)(b - a);
    r->end = (size_t)(close - s) + 2;
    for (const char *p = a; p < b; p++) {
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
        if (tmpl__fixed_lookup(s + r.name, r.nlen) >= 0)
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
    struct tmpl__params pp = {.has = has_param, .at = NULL, .ud = ud, .any = !has_param};
    return tmpl__check(s, &pp, err, errlen, errpos, hint, hintlen);
}

int
tmpl_check_params(const char *s, tmpl_param_at_fn param_at, void *ud, char *err, size_t errlen,
                  int *errpos, char *hint, size_t hintlen)
{
    /* Without a list there are no parameters at all. */
    struct tmpl__params pp = {.has = NULL, .at = param_at, .ud = ud, .any = false};
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
        id = tmpl__fixed_lookup(s + r.name, r.nlen);
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
        from = r.end;
    }
    if (rc < 0) {
        sb_free(&sb);
        return rc;
    }
    *out = sb_take(&sb);
    return 0;
}
