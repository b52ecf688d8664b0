/* expr.c - `when:` conditions: lexing, parsing and evaluating (see expr.h).
 *
 * Owns the lexer (numbers, strings, references, keywords, the aggregate
 * names), a recursive-descent parser whose depth is bounded by
 * EXPR_MAX_DEPTH, the parsed tree (one array of nodes that point at each
 * other by index, and one pool of NUL-terminated strings: expr_free frees
 * two blocks) and the evaluator. The evaluator never keeps what a lookup
 * or aggregate callback returns beyond the call; messages name the
 * reference ("metric 'accuracy' of task 'evaluate' is missing"). A parsed
 * expression is immutable: any number of threads may walk or evaluate it.
 */
#include "expr.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "util.h"

/* How much of a token or value an error message repeats. */
#define EXPR__ECHO_MAX 40
#define EXPR__NONE SIZE_MAX

enum expr__kind {
    EXPR__NUM,
    EXPR__STR,
    EXPR__BOOL,
    EXPR__REF,
    EXPR__CMP,
    EXPR__AND,
    EXPR__OR,
    EXPR__NOT,
    EXPR__AGG
};

enum expr__op { EXPR__EQ, EXPR__NE, EXPR__LT, EXPR__LE, EXPR__GT, EXPR__GE };

static const char *const expr__op_text[] = {"==", "!=", "<", "<=", ">", ">="};

/* The aggregates over a mapped task's instances (expr.h). */
static const char *const expr__agg_names[] = {"max", "min", "avg", "sum", "count", "argmax"};
#define EXPR__NAGG (sizeof(expr__agg_names) / sizeof(expr__agg_names[0]))

/* Nodes live in one array and point at each other by index, so freeing is
 * flat and nothing dangles while the array grows during parsing. Children of
 * a node form a list: kid is the first, next the following sibling. */
struct expr__node {
    enum expr__kind kind;
    enum expr__op op; /* EXPR__CMP */
    int pos;          /* offset in the source */
    int kid;          /* first child, -1 if none */
    int next;         /* next sibling, -1 if none */
    double num;       /* EXPR__NUM */
    bool b;           /* EXPR__BOOL */
    size_t str;       /* STR: value; REF, AGG: name (offsets into pool) */
    size_t task;      /* REF: task name, EXPR__NONE for params.NAME; AGG: task name */
    int fn;           /* AGG: index into expr__agg_names */
};

struct expr {
    struct expr__node *nodes;
    size_t n;
    size_t cap;
    struct sb pool; /* NUL-terminated strings, one after the other */
    int root;
};

enum expr__tok {
    EXPR__T_EOF,
    EXPR__T_ERR,
    EXPR__T_NUM,
    EXPR__T_STR,
    EXPR__T_REF,
    EXPR__T_TRUE,
    EXPR__T_FALSE,
    EXPR__T_AND,
    EXPR__T_OR,
    EXPR__T_NOT,
    EXPR__T_CMP,
    EXPR__T_LP,
    EXPR__T_RP,
    EXPR__T_AGG,
};

struct expr__token {
    enum expr__tok kind;
    size_t pos;
    size_t len;
    enum expr__op op; /* T_CMP */
    double num;       /* T_NUM */
    size_t str;       /* T_STR: unescaped value; T_REF: name */
    size_t task;      /* T_REF: task or EXPR__NONE */
    int fn;           /* T_AGG: index into expr__agg_names */
};

struct expr__parser {
    const char *src;
    size_t len;
    struct expr *e;
    struct expr__token tok;  /* the current token */
    struct expr__token prev; /* the one before it (kind T_EOF at the start) */
    bool have_prev;
    int depth;
    bool failed;
    char *err;
    size_t errlen;
    int errpos;
};

/* ---- errors ---- */

static void expr__fail(struct expr__parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
expr__fail(struct expr__parser *p, size_t pos, const char *fmt, ...)
{
    va_list ap;

    if (p->failed)
        return;
    p->failed = true;
    p->errpos = (int)pos;
    p->tok.kind = EXPR__T_ERR;
    va_start(ap, fmt);
    verrf(0, p->err, p->errlen, fmt, ap);
    va_end(ap);
}

/* A short description of token t for "got ..." in messages. */
static void
expr__tok_desc(const struct expr__parser *p, const struct expr__token *t, char *buf, size_t len)
{
    switch (t->kind) {
    case EXPR__T_EOF:
        snprintf(buf, len, "the end of the condition");
        break;
    case EXPR__T_STR: /* the lexeme carries its own quotes */
        snprintf(buf, len, "%.*s%s", (int)(t->len > EXPR__ECHO_MAX ? EXPR__ECHO_MAX : t->len),
                 p->src + t->pos, t->len > EXPR__ECHO_MAX ? "..." : "");
        break;
    default:
        snprintf(buf, len, "'%.*s%s'", (int)(t->len > EXPR__ECHO_MAX ? EXPR__ECHO_MAX : t->len),
                 p->src + t->pos, t->len > EXPR__ECHO_MAX ? "..." : "");
        break;
    }
}

/* ---- lexer ---- */

static bool
expr__digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool
expr__ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool
expr__ident_char(char c)
{
    return expr__ident_start(c) || expr__digit(c) || c == '-';
}

/* Length of the longest number at s: '-'? D+ ('.' D+)? ([eE] [+-]? D+)?,
 * or 0 if s does not start with one. */
static size_t
expr__num_len(const char *s)
{
    size_t i = 0, j;

    if (s[i] == '-')
        i++;
    if (!expr__digit(s[i]))
        return 0;
    while (expr__digit(s[i]))
        i++;
    if (s[i] == '.' && expr__digit(s[i + 1])) {
        i++;
        while (expr__digit(s[i]))
            i++;
    }
    if (s[i] == 'e' || s[i] == 'E') {
        j = i + 1;
        if (s[j] == '+' || s[j] == '-')
            j++;
        if (expr__digit(s[j])) {
            while (expr__digit(s[j]))
                j++;
            i = j;
        }
    }
    return i;
}

/* Convert n bytes at s, already known to be a valid number. */
static bool
expr__num_value(const char *s, size_t n, double *out)
{
    char small[64];
    char *buf = n < sizeof(small) ? small : xmalloc(n + 1);
    double v;

    memcpy(buf, s, n);
    buf[n] = '\0';
    v = strtod(buf, NULL);
    if (buf != small)
        free(buf);
    if (isinf(v))
        return false;
    *out = v;
    return true;
}

/* Does the whole of s read as a number? */
static bool
expr__str_number(const char *s, double *out)
{
    size_t n = expr__num_len(s);
    return n > 0 && s[n] == '\0' && expr__num_value(s, n, out);
}

static size_t
expr__pool_add(struct expr *e, const char *s, size_t n)
{
    size_t off = e->pool.len;
    sb_append(&e->pool, s, n);
    sb_putc(&e->pool, '\0');
    return off;
}

static void
expr__lex_number(struct expr__parser *p, size_t start)
{
    const char *s = p->src + start;
    size_t n = expr__num_len(s), bad = n;

    if (n == 0) {
        expr__fail(p, start, "expected a digit after '-'");
        return;
    }
    /* "1.", "1e", "5x", "1.2.3": glued characters make it malformed. */
    while (expr__ident_char(s[bad]) || s[bad] == '.' ||
           ((s[bad] == '+' || s[bad] == '-') && (s[bad - 1] == 'e' || s[bad - 1] == 'E')))
        bad++;
    if (bad != n) {
        expr__fail(p, start, "invalid number '%.*s%s'",
                   (int)(bad > EXPR__ECHO_MAX ? EXPR__ECHO_MAX : bad), s,
                   bad > EXPR__ECHO_MAX ? "..." : "");
        return;
    }
    if (!expr__num_value(s, n, &p->tok.num)) {
        expr__fail(p, start, "number '%.*s%s' is too large",
                   (int)(n > EXPR__ECHO_MAX ? EXPR__ECHO_MAX : n), s,
                   n > EXPR__ECHO_MAX ? "..." : "");
        return;
    }
    p->tok.kind = EXPR__T_NUM;
    p->tok.len = n;
}

static void
expr__lex_string(struct expr__parser *p, size_t start)
{
    const char *s = p->src;
    char quote = s[start];
    size_t i = start + 1;
    struct sb val;

    sb_init(&val);
    for (;;) {
        char c = s[i];
        if (c == '\0') {
            expr__fail(p, start, "unterminated string (missing closing %c)", quote);
            break;
        }
        if (c == quote) {
            i++;
            p->tok.kind = EXPR__T_STR;
            p->tok.len = i - start;
            p->tok.str = expr__pool_add(p->e, val.buf ? val.buf : "", val.len);
            break;
        }
        if (c == '\\') {
            char d = s[i + 1];
            if (d != '\\' && d != '\'' && d != '"') {
                if (d >= 0x20 && d < 0x7f)
                    expr__fail(p, i, "unknown escape '\\%c' in string (use \\\\, \\' or \\\")", d);
                else
                    expr__fail(p, i, "a backslash in a string must be followed by \\, ' or \"");
                break;
            }
            sb_putc(&val, d);
            i += 2;
            continue;
        }
        sb_putc(&val, c);
        i++;
    }
    sb_free(&val);
}

static bool
expr__word_is(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && memcmp(s, w, n) == 0;
}

static bool
expr__word_is_ci(const char *s, size_t n, const char *w)
{
    if (strlen(w) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != w[i])
            return false;
    }
    return true;
}

static void
expr__lex_word(struct expr__parser *p, size_t start)
{
    static const char *const kw[] = {"and", "or", "not", "true", "false"};
    static const enum expr__tok kwtok[] = {EXPR__T_AND, EXPR__T_OR, EXPR__T_NOT, EXPR__T_TRUE,
                                           EXPR__T_FALSE};
    const char *s = p->src + start;
    const char *seg[4];
    size_t seglen[4], nseg = 0, n = 0, segstart = 0;
    bool bad = false;

    while (expr__ident_char(s[n]) || s[n] == '.')
        n++;
    p->tok.len = n;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.')
            continue;
        if (i == segstart || nseg == 4) {
            bad = true; /* an empty part or too many parts */
        } else {
            seg[nseg] = s + segstart;
            seglen[nseg++] = i - segstart;
        }
        segstart = i + 1;
    }
    if (!bad && nseg == 1) {
        for (size_t k = 0; k < sizeof(kw) / sizeof(kw[0]); k++) {
            if (expr__word_is(s, n, kw[k])) {
                p->tok.kind = kwtok[k];
                return;
            }
        }
        for (size_t k = 0; k < sizeof(kw) / sizeof(kw[0]); k++) {
            if (expr__word_is_ci(s, n, kw[k])) {
                expr__fail(p, start, "unknown word '%.*s': keywords are lowercase, write '%s'",
                           (int)n, s, kw[k]);
                return;
            }
        }
        /* a word followed by '(' calls a function: only the aggregates */
        size_t after = n;
        while (s[after] == ' ' || s[after] == '\t' || s[after] == '\n' || s[after] == '\r')
            after++;
        if (s[after] == '(') {
            for (size_t k = 0; k < EXPR__NAGG; k++) {
                if (expr__word_is(s, n, expr__agg_names[k])) {
                    p->tok.kind = EXPR__T_AGG;
                    p->tok.fn = (int)k;
                    return;
                }
            }
            expr__fail(p, start,
                       "unknown function '%.*s%s' (the aggregates are max, min, avg, sum, count "
                       "and argmax)",
                       (int)(n > EXPR__ECHO_MAX ? EXPR__ECHO_MAX : n), s,
                       n > EXPR__ECHO_MAX ? "..." : "");
            return;
        }
    }
    if (!bad && nseg == 2 && expr__word_is(seg[0], seglen[0], "params")) {
        p->tok.kind = EXPR__T_REF;
        p->tok.task = EXPR__NONE;
        p->tok.str = expr__pool_add(p->e, seg[1], seglen[1]);
        return;
    }
    if (!bad && nseg == 3 && !expr__word_is(seg[0], seglen[0], "params") &&
        expr__word_is(seg[1], seglen[1], "metrics")) {
        p->tok.kind = EXPR__T_REF;
        p->tok.task = expr__pool_add(p->e, seg[0], seglen[0]);
        p->tok.str = expr__pool_add(p->e, seg[2], seglen[2]);
        return;
    }
    expr__fail(p, start, "expected 'TASK.metrics.NAME' or 'params.NAME', got '%.*s%s'",
               (int)(n > EXPR__ECHO_MAX ? EXPR__ECHO_MAX : n), s, n > EXPR__ECHO_MAX ? "..." : "");
}

/* Task names may start with a digit ("2nd-stage"): a word that does and has
 * the form X.metrics.Y is a reference, not a (malformed) number. */
static bool
expr__metric_ref_ahead(const char *s)
{
    size_t i = 0;

    while (expr__ident_char(s[i]))
        i++;
    if (s[i] != '.' || strncmp(s + i + 1, "metrics.", 8) != 0)
        return false;
    return expr__ident_char(s[i + 9]);
}

/* Read the next token into p->tok (T_ERR with the error set on failure). */
static void
expr__advance(struct expr__parser *p)
{
    const char *s = p->src;
    size_t i;

    if (p->failed)
        return;
    p->prev = p->tok;
    p->have_prev = true;
    i = p->tok.pos + p->tok.len;
    while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
        i++;
    memset(&p->tok, 0, sizeof(p->tok));
    p->tok.pos = i;
    p->tok.len = 1;
    switch (s[i]) {
    case '\0':
        p->tok.kind = EXPR__T_EOF;
        p->tok.len = 0;
        return;
    case '(':
        p->tok.kind = EXPR__T_LP;
        return;
    case ')':
        p->tok.kind = EXPR__T_RP;
        return;
    case '=':
    case '!':
    case '<':
    case '>':
        p->tok.kind = EXPR__T_CMP;
        if (s[i + 1] == '=') {
            p->tok.len = 2;
            p->tok.op = s[i] == '='   ? EXPR__EQ
                        : s[i] == '!' ? EXPR__NE
                        : s[i] == '<' ? EXPR__LE
                                      : EXPR__GE;
        } else if (s[i] == '<' || s[i] == '>') {
            p->tok.op = s[i] == '<' ? EXPR__LT : EXPR__GT;
        } else if (s[i] == '=') {
            expr__fail(p, i, "unexpected '='; use '==' to compare");
        } else {
            expr__fail(p, i, "unexpected '!'; use 'not' to negate or '!=' to compare");
        }
        return;
    case '&':
        expr__fail(p, i, "unexpected '&'; use 'and'");
        return;
    case '|':
        expr__fail(p, i, "unexpected '|'; use 'or'");
        return;
    case '\'':
    case '"':
        expr__lex_string(p, i);
        return;
    case '.':
        if (expr__digit(s[i + 1])) {
            expr__fail(p, i, "a number needs a digit before '.' (write 0.5, not .5)");
            return;
        }
        break;
    default:
        break;
    }
    if (expr__digit(s[i]) && expr__metric_ref_ahead(s + i)) {
        expr__lex_word(p, i);
        return;
    }
    if (s[i] == '-' || expr__digit(s[i])) {
        expr__lex_number(p, i);
        return;
    }
    if (expr__ident_start(s[i])) {
        expr__lex_word(p, i);
        return;
    }
    if (s[i] > 0x20 && s[i] < 0x7f)
        expr__fail(p, i, "unexpected character '%c'", s[i]);
    else
        expr__fail(p, i, "unexpected byte 0x%02x", (unsigned)(unsigned char)s[i]);
}

/* ---- parser ---- */

static int
expr__node_new(struct expr__parser *p, enum expr__kind kind, size_t pos)
{
    struct expr *e = p->e;
    struct expr__node *nd;

    xgrow((void **)&e->nodes, &e->cap, e->n + 1, sizeof(*e->nodes));
    nd = &e->nodes[e->n];
    memset(nd, 0, sizeof(*nd));
    nd->kind = kind;
    nd->pos = (int)pos;
    nd->kid = -1;
    nd->next = -1;
    nd->task = EXPR__NONE;
    return (int)e->n++;
}

static int expr__parse_or(struct expr__parser *p);

/* AGG := FN '(' TASK '.' 'metrics' '.' NAME ')'; the current token is FN. */
static int
expr__parse_agg(struct expr__parser *p)
{
    struct expr__token fn = p->tok;
    const char *name = expr__agg_names[fn.fn];
    char got[EXPR__ECHO_MAX + 8];
    int n;

    expr__advance(p); /* '(' : the lexer saw it */
    expr__advance(p);
    if (p->failed)
        return -1;
    if (p->tok.kind != EXPR__T_REF || p->tok.task == EXPR__NONE) {
        expr__tok_desc(p, &p->tok, got, sizeof(got));
        if (p->tok.kind == EXPR__T_REF)
            expr__fail(p, p->tok.pos,
                       "%s() is over the instances of a mapped task: write %s(TASK.metrics.NAME), "
                       "not a param",
                       name, name);
        else if (p->tok.kind == EXPR__T_EOF)
            expr__fail(p, p->tok.pos, "expected 'TASK.metrics.NAME' after '%s('", name);
        else
            expr__fail(p, p->tok.pos, "expected 'TASK.metrics.NAME' after '%s(', got %s", name,
                       got);
        return -1;
    }
    n = expr__node_new(p, EXPR__AGG, fn.pos);
    p->e->nodes[n].fn = fn.fn;
    p->e->nodes[n].task = p->tok.task;
    p->e->nodes[n].str = p->tok.str;
    expr__advance(p);
    if (p->failed)
        return -1;
    if (p->tok.kind != EXPR__T_RP) {
        expr__tok_desc(p, &p->tok, got, sizeof(got));
        if (p->tok.kind == EXPR__T_EOF)
            expr__fail(p, p->tok.pos, "expected ')' to close '%s('", name);
        else
            expr__fail(p, p->tok.pos, "expected ')' to close '%s(', got %s", name, got);
        return -1;
    }
    expr__advance(p);
    return p->failed ? -1 : n;
}

static bool
expr__enter(struct expr__parser *p)
{
    if (++p->depth > EXPR_MAX_DEPTH) {
        expr__fail(p, p->tok.pos,
                   "condition is nested too deeply (more than %d levels of '(' and 'not')",
                   EXPR_MAX_DEPTH);
        return false;
    }
    return true;
}

static void
expr__expected_value(struct expr__parser *p)
{
    char got[EXPR__ECHO_MAX + 8], after[EXPR__ECHO_MAX + 8];

    if (p->failed)
        return;
    expr__tok_desc(p, &p->tok, got, sizeof(got));
    if (!p->have_prev) {
        if (p->tok.kind == EXPR__T_EOF)
            expr__fail(p, p->tok.pos, "condition is empty");
        else
            expr__fail(p, p->tok.pos, "expected a value, got %s", got);
        return;
    }
    expr__tok_desc(p, &p->prev, after, sizeof(after));
    if (p->tok.kind == EXPR__T_EOF)
        expr__fail(p, p->tok.pos, "expected a value after %s", after);
    else
        expr__fail(p, p->tok.pos, "expected a value after %s, got %s", after, got);
}

static int
expr__parse_prim(struct expr__parser *p)
{
    struct expr__token t = p->tok;
    int n, inner;

    switch (t.kind) {
    case EXPR__T_NUM:
        n = expr__node_new(p, EXPR__NUM, t.pos);
        p->e->nodes[n].num = t.num;
        break;
    case EXPR__T_STR:
        n = expr__node_new(p, EXPR__STR, t.pos);
        p->e->nodes[n].str = t.str;
        break;
    case EXPR__T_TRUE:
    case EXPR__T_FALSE:
        n = expr__node_new(p, EXPR__BOOL, t.pos);
        p->e->nodes[n].b = t.kind == EXPR__T_TRUE;
        break;
    case EXPR__T_REF:
        n = expr__node_new(p, EXPR__REF, t.pos);
        p->e->nodes[n].str = t.str;
        p->e->nodes[n].task = t.task;
        break;
    case EXPR__T_AGG:
        return expr__parse_agg(p);
    case EXPR__T_LP:
        if (!expr__enter(p))
            return -1;
        expr__advance(p);
        inner = expr__parse_or(p);
        if (inner < 0)
            return -1;
        if (p->tok.kind != EXPR__T_RP) {
            char got[EXPR__ECHO_MAX + 8];
            expr__tok_desc(p, &p->tok, got, sizeof(got));
            if (p->tok.kind == EXPR__T_EOF)
                expr__fail(p, p->tok.pos, "expected ')' to close '('");
            else
                expr__fail(p, p->tok.pos, "expected ')' to close '(', got %s", got);
            return -1;
        }
        p->depth--;
        expr__advance(p);
        return p->failed ? -1 : inner;
    default:
        expr__expected_value(p);
        return -1;
    }
    expr__advance(p);
    return p->failed ? -1 : n;
}

static int
expr__parse_cmp(struct expr__parser *p)
{
    int l = expr__parse_prim(p), r, n;
    enum expr__op op;

    if (l < 0 || p->tok.kind != EXPR__T_CMP)
        return l;
    op = p->tok.op;
    expr__advance(p);
    if (p->failed)
        return -1;
    r = expr__parse_prim(p);
    if (r < 0)
        return -1;
    if (p->tok.kind == EXPR__T_CMP) {
        expr__fail(p, p->tok.pos,
                   "comparisons cannot be chained; join them with 'and' (a < b and b < c)");
        return -1;
    }
    n = expr__node_new(p, EXPR__CMP, (size_t)p->e->nodes[l].pos);
    p->e->nodes[n].op = op;
    p->e->nodes[n].kid = l;
    p->e->nodes[l].next = r;
    return n;
}

static int
expr__parse_not(struct expr__parser *p)
{
    size_t pos = p->tok.pos;
    int kid, n;

    if (p->tok.kind != EXPR__T_NOT)
        return expr__parse_cmp(p);
    if (!expr__enter(p))
        return -1;
    expr__advance(p);
    if (p->failed)
        return -1;
    kid = expr__parse_not(p);
    if (kid < 0)
        return -1;
    p->depth--;
    n = expr__node_new(p, EXPR__NOT, pos);
    p->e->nodes[n].kid = kid;
    return n;
}

/* kind := sub (tok sub)*, kept as one node with a list of children so long
 * chains do not make a deep tree. */
static int
expr__parse_chain(struct expr__parser *p, enum expr__tok tok, enum expr__kind kind,
                  int (*sub)(struct expr__parser *))
{
    int first = sub(p), last, n, kid;

    if (first < 0 || p->tok.kind != tok)
        return first;
    n = expr__node_new(p, kind, (size_t)p->e->nodes[first].pos);
    p->e->nodes[n].kid = first;
    last = first;
    while (p->tok.kind == tok) {
        expr__advance(p);
        if (p->failed)
            return -1;
        kid = sub(p);
        if (kid < 0)
            return -1;
        p->e->nodes[last].next = kid;
        last = kid;
    }
    return n;
}

static int
expr__parse_and(struct expr__parser *p)
{
    return expr__parse_chain(p, EXPR__T_AND, EXPR__AND, expr__parse_not);
}

static int
expr__parse_or(struct expr__parser *p)
{
    return expr__parse_chain(p, EXPR__T_OR, EXPR__OR, expr__parse_and);
}

void
expr_free(struct expr *e)
{
    if (!e)
        return;
    free(e->nodes);
    sb_free(&e->pool);
    free(e);
}

int
expr_parse(struct expr **out, const char *src, char *err, size_t errlen, int *errpos)
{
    struct expr__parser p;
    struct expr *e;
    int root;

    memset(&p, 0, sizeof(p));
    p.err = err;
    p.errlen = errlen;
    p.errpos = -1;
    if (err && errlen)
        err[0] = '\0';
    if (errpos)
        *errpos = -1;
    p.len = strnlen(src, (size_t)EXPR_MAX_LEN + 1);
    if (p.len > EXPR_MAX_LEN) {
        expr__fail(&p, 0, "condition is too long (more than %d bytes)", EXPR_MAX_LEN);
        if (errpos)
            *errpos = p.errpos;
        return CAIRN_EPARSE;
    }
    e = xcalloc(1, sizeof(*e));
    sb_init(&e->pool);
    p.src = src;
    p.e = e;
    /* Start "before" the source so the first advance reads from offset 0. */
    p.tok.kind = EXPR__T_EOF;
    expr__advance(&p);
    p.have_prev = false;
    root = p.failed ? -1 : expr__parse_or(&p);
    if (root >= 0 && p.tok.kind != EXPR__T_EOF) {
        char got[EXPR__ECHO_MAX + 8];
        expr__tok_desc(&p, &p.tok, got, sizeof(got));
        if (p.tok.kind == EXPR__T_RP)
            expr__fail(&p, p.tok.pos, "unexpected ')' without a matching '('");
        else
            expr__fail(&p, p.tok.pos,
                       "unexpected %s; expected 'and', 'or' or the end of the condition", got);
    }
    if (p.failed || root < 0) {
        if (errpos)
            *errpos = p.errpos;
        expr_free(e);
        return CAIRN_EPARSE;
    }
    e->root = root;
    *out = e;
    return 0;
}

/* ---- walking and evaluation ---- */

static int
expr__walk(const struct expr *e, int idx, expr_ref_fn cb, void *ud)
{
    const struct expr__node *nd = &e->nodes[idx];
    int rc;

    if (nd->kind == EXPR__REF)
        return cb(ud, nd->task == EXPR__NONE ? NULL : e->pool.buf + nd->task, e->pool.buf + nd->str,
                  nd->pos);
    for (int k = nd->kid; k >= 0; k = e->nodes[k].next)
        if ((rc = expr__walk(e, k, cb, ud)) != 0)
            return rc;
    return 0;
}

int
expr_foreach_ref(const struct expr *e, expr_ref_fn cb, void *ud)
{
    return expr__walk(e, e->root, cb, ud);
}

static int
expr__walk_agg(const struct expr *e, int idx, expr_agg_ref_fn cb, void *ud)
{
    const struct expr__node *nd = &e->nodes[idx];
    int rc;

    if (nd->kind == EXPR__AGG)
        return cb(ud, expr__agg_names[nd->fn], e->pool.buf + nd->task, e->pool.buf + nd->str,
                  nd->pos);
    for (int k = nd->kid; k >= 0; k = e->nodes[k].next)
        if ((rc = expr__walk_agg(e, k, cb, ud)) != 0)
            return rc;
    return 0;
}

int
expr_foreach_agg(const struct expr *e, expr_agg_ref_fn cb, void *ud)
{
    return expr__walk_agg(e, e->root, cb, ud);
}

struct expr__ev {
    const struct expr *e;
    expr_lookup_fn lookup;
    expr_agg_fn agg; /* NULL: aggregates are an evaluation error */
    void *ud;
    char *err;
    size_t errlen;
};

/* A value and where it came from (a param may be coerced to a number). */
struct expr__res {
    struct expr_val v;
    int node;
};

static int expr__efail(struct expr__ev *ev, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
expr__efail(struct expr__ev *ev, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    verrf(code, ev->err, ev->errlen, fmt, ap);
    va_end(ap);
    return code;
}

static const char *
expr__type_name(enum expr_type t)
{
    switch (t) {
    case EXPR_T_NUM:
        return "a number";
    case EXPR_T_STR:
        return "a string";
    default:
        return "true or false";
    }
}

/* Append "params.x" / "task.metrics.x" for a reference node, "max(task.metrics.x)" for an
 * aggregate. */
static void
expr__ref_name(const struct expr *e, const struct expr__node *nd, struct sb *sb)
{
    if (nd->kind == EXPR__AGG)
        sb_printf(sb, "%s(%s.metrics.%s)", expr__agg_names[nd->fn], e->pool.buf + nd->task,
                  e->pool.buf + nd->str);
    else if (nd->task == EXPR__NONE)
        sb_printf(sb, "params.%s", e->pool.buf + nd->str);
    else
        sb_printf(sb, "%s.metrics.%s", e->pool.buf + nd->task, e->pool.buf + nd->str);
}

/* "params.mode (the string 'fast')", "the number 0.9", "true". */
static void
expr__describe(const struct expr *e, const struct expr__res *r, struct sb *sb)
{
    const struct expr__node *nd = &e->nodes[r->node];
    bool ref = nd->kind == EXPR__REF || nd->kind == EXPR__AGG;

    if (ref) {
        expr__ref_name(e, nd, sb);
        sb_puts(sb, " (");
    }
    switch (r->v.type) {
    case EXPR_T_NUM:
        sb_printf(sb, "the number %.15g", r->v.num);
        break;
    case EXPR_T_STR:
        sb_printf(sb, "the string '%.*s%s'", EXPR__ECHO_MAX, r->v.str,
                  strlen(r->v.str) > EXPR__ECHO_MAX ? "..." : "");
        break;
    default:
        sb_puts(sb, r->v.b ? "true" : "false");
        break;
    }
    if (ref)
        sb_puts(sb, ")");
}

/* "<what> must be true or false, got a number[ from params.x]". */
static int
expr__type_fail(struct expr__ev *ev, const struct expr__res *r, const char *what)
{
    const struct expr__node *nd = &ev->e->nodes[r->node];
    struct sb src;
    int rc;

    sb_init(&src);
    if (nd->kind == EXPR__REF || nd->kind == EXPR__AGG) {
        sb_puts(&src, " from ");
        expr__ref_name(ev->e, nd, &src);
    }
    rc = expr__efail(ev, CAIRN_EINVAL, "%s must be true or false, got %s%s", what,
                     expr__type_name(r->v.type), src.buf ? src.buf : "");
    sb_free(&src);
    return rc;
}

static int expr__eval_node(struct expr__ev *ev, int idx, struct expr__res *out);

static int
expr__eval_ref(struct expr__ev *ev, const struct expr__node *nd, struct expr_val *v)
{
    const struct expr *e = ev->e;
    const char *task = nd->task == EXPR__NONE ? NULL : e->pool.buf + nd->task;
    const char *name = e->pool.buf + nd->str;

    memset(v, 0, sizeof(*v));
    if (ev->lookup(ev->ud, task, name, v) != 0) {
        if (task)
            return expr__efail(ev, CAIRN_ENOENT, "metric '%s' of task '%s' is missing", name, task);
        return expr__efail(ev, CAIRN_ENOENT, "param '%s' is not set", name);
    }
    if (v->type != EXPR_T_NUM && v->type != EXPR_T_STR && v->type != EXPR_T_BOOL)
        return expr__efail(ev, CAIRN_EINVAL, "the value of %s%s%s has an unknown type",
                           task ? task : "params", task ? ".metrics." : ".", name);
    if (v->type == EXPR_T_STR && !v->str)
        v->str = "";
    return 0;
}

/* An aggregate: a number from the agg callback. */
static int
expr__eval_agg(struct expr__ev *ev, const struct expr__node *nd, struct expr_val *v)
{
    const struct expr *e = ev->e;
    const char *fn = expr__agg_names[nd->fn];
    const char *task = e->pool.buf + nd->task, *name = e->pool.buf + nd->str;
    double d = 0;

    memset(v, 0, sizeof(*v));
    if (!ev->agg)
        return expr__efail(ev, CAIRN_EINVAL,
                           "%s(%s.metrics.%s) cannot be evaluated here (no mapped task's instances "
                           "are known)",
                           fn, task, name);
    if (ev->agg(ev->ud, fn, task, name, &d) != 0)
        return expr__efail(ev, CAIRN_ENOENT, "no instance of task '%s' has metric '%s'", task,
                           name);
    v->type = EXPR_T_NUM;
    v->num = d;
    return 0;
}

/* A param string that reads fully as a number, compared with a number. */
static void
expr__coerce(const struct expr *e, struct expr__res *a, const struct expr__res *b)
{
    double d;

    if (a->v.type == EXPR_T_STR && b->v.type == EXPR_T_NUM && e->nodes[a->node].kind == EXPR__REF &&
        e->nodes[a->node].task == EXPR__NONE && expr__str_number(a->v.str, &d)) {
        a->v.type = EXPR_T_NUM;
        a->v.num = d;
    }
}

static bool
expr__order(enum expr__op op, int c)
{
    switch (op) {
    case EXPR__EQ:
        return c == 0;
    case EXPR__NE:
        return c != 0;
    case EXPR__LT:
        return c < 0;
    case EXPR__LE:
        return c <= 0;
    case EXPR__GT:
        return c > 0;
    default:
        return c >= 0;
    }
}

static int
expr__eval_cmp(struct expr__ev *ev, const struct expr__node *nd, bool *out)
{
    const struct expr *e = ev->e;
    struct expr__res l, r;
    int rc;

    if ((rc = expr__eval_node(ev, nd->kid, &l)) != 0)
        return rc;
    if ((rc = expr__eval_node(ev, e->nodes[nd->kid].next, &r)) != 0)
        return rc;
    expr__coerce(e, &l, &r);
    expr__coerce(e, &r, &l);
    if (l.v.type != r.v.type) {
        struct sb a, b;
        sb_init(&a);
        sb_init(&b);
        expr__describe(e, &l, &a);
        expr__describe(e, &r, &b);
        rc = expr__efail(ev, CAIRN_EINVAL, "cannot compare %s with %s using '%s'", a.buf, b.buf,
                         expr__op_text[nd->op]);
        sb_free(&a);
        sb_free(&b);
        return rc;
    }
    switch (l.v.type) {
    case EXPR_T_NUM:
        /* Direct comparisons so NaN compares false (except !=). */
        switch (nd->op) {
        case EXPR__EQ:
            *out = l.v.num == r.v.num;
            break;
        case EXPR__NE:
            *out = l.v.num != r.v.num;
            break;
        case EXPR__LT:
            *out = l.v.num < r.v.num;
            break;
        case EXPR__LE:
            *out = l.v.num <= r.v.num;
            break;
        case EXPR__GT:
            *out = l.v.num > r.v.num;
            break;
        default:
            *out = l.v.num >= r.v.num;
            break;
        }
        return 0;
    case EXPR_T_STR:
        *out = expr__order(nd->op, strcmp(l.v.str, r.v.str));
        return 0;
    default:
        if (nd->op != EXPR__EQ && nd->op != EXPR__NE)
            return expr__efail(ev, CAIRN_EINVAL,
                               "true and false can only be compared with == and !=, not '%s'",
                               expr__op_text[nd->op]);
        *out = expr__order(nd->op, l.v.b == r.v.b ? 0 : 1);
        return 0;
    }
}

static int
expr__eval_node(struct expr__ev *ev, int idx, struct expr__res *out)
{
    const struct expr *e = ev->e;
    const struct expr__node *nd = &e->nodes[idx];
    struct expr__res kid;
    int rc;

    memset(out, 0, sizeof(*out));
    out->node = idx;
    switch (nd->kind) {
    case EXPR__NUM:
        out->v.type = EXPR_T_NUM;
        out->v.num = nd->num;
        return 0;
    case EXPR__STR:
        out->v.type = EXPR_T_STR;
        out->v.str = e->pool.buf + nd->str;
        return 0;
    case EXPR__BOOL:
        out->v.type = EXPR_T_BOOL;
        out->v.b = nd->b;
        return 0;
    case EXPR__REF:
        return expr__eval_ref(ev, nd, &out->v);
    case EXPR__AGG:
        return expr__eval_agg(ev, nd, &out->v);
    case EXPR__CMP:
        out->v.type = EXPR_T_BOOL;
        return expr__eval_cmp(ev, nd, &out->v.b);
    case EXPR__NOT:
        if ((rc = expr__eval_node(ev, nd->kid, &kid)) != 0)
            return rc;
        if (kid.v.type != EXPR_T_BOOL)
            return expr__type_fail(ev, &kid, "the operand of 'not'");
        out->v.type = EXPR_T_BOOL;
        out->v.b = !kid.v.b;
        return 0;
    case EXPR__AND:
    case EXPR__OR:
        /* Stop at the first operand that decides: false for and, true for or. */
        out->v.type = EXPR_T_BOOL;
        out->v.b = nd->kind == EXPR__AND;
        for (int k = nd->kid; k >= 0; k = e->nodes[k].next) {
            if ((rc = expr__eval_node(ev, k, &kid)) != 0)
                return rc;
            if (kid.v.type != EXPR_T_BOOL)
                return expr__type_fail(
                    ev, &kid, nd->kind == EXPR__AND ? "each side of 'and'" : "each side of 'or'");
            if (kid.v.b != (nd->kind == EXPR__AND)) {
                out->v.b = kid.v.b;
                break;
            }
        }
        out->node = idx;
        return 0;
    }
    return expr__efail(ev, CAIRN_EINVAL, "corrupt expression");
}

int
expr_eval(const struct expr *e, expr_lookup_fn lookup, void *ud, bool *result, char *err,
          size_t errlen)
{
    return expr_eval_agg(e, lookup, NULL, ud, result, err, errlen);
}

int
expr_eval_agg(const struct expr *e, expr_lookup_fn lookup, expr_agg_fn agg, void *ud,
              bool *result, char *err, size_t errlen)
{
    struct expr__ev ev = {
        .e = e, .lookup = lookup, .agg = agg, .ud = ud, .err = err, .errlen = errlen};
    struct expr__res r;
    int rc;

    if (err && errlen)
        err[0] = '\0';
    if ((rc = expr__eval_node(&ev, e->root, &r)) != 0)
        return rc;
    if (r.v.type != EXPR_T_BOOL)
        return expr__type_fail(&ev, &r, "condition");
    *result = r.v.b;
    return 0;
}
