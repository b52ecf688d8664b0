/* ynode.c - YAML bytes to a tree of struct ynode (see ynode.h).
 *
 * Owns the walk over libyaml's event stream: a stack of open collections
 * (struct frame) whose children are collected in malloc'd arrays and copied
 * into the document's arena when the collection ends; anchors and the
 * copying of aliases (under a node budget); merge keys, resolved when the
 * mapping that holds them ends; duplicate keys; and the messages for YAML
 * mistakes, which need the source text (struct builder keeps it, with a
 * table of line starts built only when a message needs a position turned
 * back into bytes). Everything a caller gets lives in the struct ydoc's
 * arena; nothing in the tree points into the caller's buffer.
 */
#include "ynode.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "err.h"
#include "hmap.h"
#include "util.h"

#define YNODE_BUDGET 4000000 /* nodes per document, aliases included */
#define YNODE_MAX_DEPTH 256

struct arena_blk {
    struct arena_blk *next;
    size_t used, cap;
    char data[];
};

struct anchor {
    char *name;
    struct ynode *node;
};

struct ydoc {
    struct arena_blk *blk;
    struct anchor *anchors;
    size_t nanchors, capanchors;
    size_t nodes;
};

static void *
arena_alloc(struct ydoc *d, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (!d->blk || d->blk->used + n > d->blk->cap) {
        size_t cap = n > 65536 ? n : 65536;
        struct arena_blk *b = xmalloc(sizeof(*b) + cap);
        b->next = d->blk;
        b->used = 0;
        b->cap = cap;
        d->blk = b;
    }
    void *p = d->blk->data + d->blk->used;
    d->blk->used += n;
    return p;
}

static char *
arena_strndup(struct ydoc *d, const char *s, size_t n)
{
    char *p = arena_alloc(d, n + 1);
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void
ydoc_free(struct ydoc *d)
{
    if (!d)
        return;
    while (d->blk) {
        struct arena_blk *n = d->blk->next;
        free(d->blk);
        d->blk = n;
    }
    for (size_t i = 0; i < d->nanchors; i++)
        free(d->anchors[i].name);
    free(d->anchors);
    free(d);
}

/* A growable list of child pointers, kept in malloc memory while a
 * collection is open, copied into the arena when it closes. */
struct frame {
    struct ynode *node;
    struct ynode **keys, **vals;
    size_t n, cap;
    struct ynode *pending_key; /* map: key waiting for its value */
    struct ynode *tmpl_key;    /* map: a key shaped like the inner braces of {{ x }} */
    struct ynode *merge_key;   /* map: its "<<" key, or NULL */
    struct ynode **merges;     /* the mappings "<<" names, in the order written */
    size_t nmerges, capmerges;
    size_t merge_at;           /* entries written before "<<" */
    char *anchor;
    struct hmap *keyset;       /* big maps: key -> index, for duplicate checks */
};

struct builder {
    struct ydoc *doc;
    const char *file;
    struct diag_list *dl;
    const char *buf;     /* the source, for messages that quote it */
    size_t len;
    size_t *lines;       /* byte offset of each line's start, built on first use */
    size_t nlines;
    size_t tmpl_diag;    /* index in dl of the last unquoted-template error, or SIZE_MAX */
    struct frame *stack;
    size_t depth, cap;
    struct ynode *root;
    int failed;
};

static struct ynode *
node_new(struct builder *b, enum ynode_type t, const yaml_mark_t *m)
{
    struct ynode *n = arena_alloc(b->doc, sizeof(*n));
    memset(n, 0, sizeof(*n));
    n->type = t;
    n->line = (int)m->line + 1;
    n->col = (int)m->column + 1;
    b->doc->nodes++;
    return n;
}

static struct ynode *
node_copy(struct builder *b, const struct ynode *src, int line, int col)
{
    if (b->doc->nodes >= YNODE_BUDGET)
        return NULL;
    struct ynode *n = arena_alloc(b->doc, sizeof(*n));
    *n = *src;
    n->line = line;
    n->col = col;
    b->doc->nodes++;
    if (src->n) {
        n->vals = arena_alloc(b->doc, src->n * sizeof(*n->vals));
        for (size_t i = 0; i < src->n; i++) {
            n->vals[i] = node_copy(b, src->vals[i], src->vals[i]->line, src->vals[i]->col);
            if (!n->vals[i])
                return NULL;
        }
        if (src->type == YNODE_MAP) {
            n->keys = arena_alloc(b->doc, src->n * sizeof(*n->keys));
            for (size_t i = 0; i < src->n; i++)
                n->keys[i] = src->keys[i];
        }
    }
    return n;
}

static void
anchor_add(struct builder *b, const char *name, struct ynode *n)
{
    struct ydoc *d = b->doc;
    /* later definitions shadow earlier ones, as YAML says */
    xgrow((void **)&d->anchors, &d->capanchors, d->nanchors + 1, sizeof(*d->anchors));
    d->anchors[d->nanchors].name = xstrdup(name);
    d->anchors[d->nanchors].node = n;
    d->nanchors++;
}

static struct ynode *
anchor_find(struct builder *b, const char *name)
{
    for (size_t i = b->doc->nanchors; i-- > 0;)
        if (strcmp(b->doc->anchors[i].name, name) == 0)
            return b->doc->anchors[i].node;
    return NULL;
}

static int
is_null_scalar(const char *s, size_t len, bool quoted)
{
    if (quoted)
        return 0;
    return len == 0 || (len == 1 && s[0] == '~') ||
           (len == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) ||
                         !memcmp(s, "NULL", 4)));
}

/* Byte offset in the source of a 1-based line and column (libyaml counts
 * columns in characters; lines end at \n, \r\n or a lone \r), or len when
 * the position is past the end. */
static int
ends_line(const struct builder *b, size_t i)
{
    return b->buf[i] == '\n' || (b->buf[i] == '\r' && (i + 1 == b->len || b->buf[i + 1] != '\n'));
}

static size_t
src_offset(struct builder *b, int line, int col)
{
    if (!b->lines) {
        size_t n = 1;
        for (size_t i = 0; i < b->len; i++)
            n += ends_line(b, i);
        b->lines = xmalloc(n * sizeof(*b->lines));
        b->lines[0] = b->len >= 3 && !memcmp(b->buf, "\xef\xbb\xbf", 3) ? 3 : 0; /* BOM */
        b->nlines = 1;
        for (size_t i = 0; i < b->len; i++)
            if (ends_line(b, i))
                b->lines[b->nlines++] = i + 1;
    }
    if (line < 1 || (size_t)line > b->nlines)
        return b->len;
    size_t off = b->lines[line - 1];
    for (int c = 1; c < col && off < b->len && b->buf[off] != '\n' && b->buf[off] != '\r'; c++) {
        off++;
        while (off < b->len && ((unsigned char)b->buf[off] & 0xC0) == 0x80)
            off++;
    }
    return off;
}

/* The 1-based column of byte offset off, which lies on line. */
static int
src_column(struct builder *b, int line, size_t off)
{
    int col = 1;
    for (size_t i = src_offset(b, line, 1); i < off && i < b->len; i++)
        if (((unsigned char)b->buf[i] & 0xC0) != 0x80)
            col++;
    return col;
}

/* The end of a line: the offset of its line break (or len). */
static size_t
line_end(const struct builder *b, size_t off)
{
    while (off < b->len && b->buf[off] != '\n' && b->buf[off] != '\r')
        off++;
    return off;
}

#define TEMPLATE_HINT                                                                          \
    "YAML reads an unquoted '{' as the start of a mapping; put the whole value in double "     \
    "quotes"

static void
template_error(struct builder *b, int line, int col, const char *text, size_t len)
{
    struct diag_list *dl = b->dl;
    char *msg = xasprintf("templates must be quoted: \"%.*s%s\"", (int)(len > 200 ? 200 : len),
                          text, len > 200 ? "..." : "");
    /* {{ ds }}.csv: the mapping {{ ds }} was reported, then the syntax error
     * after it finds the whole value; say it once, with the whole value */
    if (b->tmpl_diag < dl->n && dl->items[b->tmpl_diag].line == line &&
        dl->items[b->tmpl_diag].col == col) {
        free(dl->items[b->tmpl_diag].msg);
        dl->items[b->tmpl_diag].msg = msg;
        return;
    }
    b->tmpl_diag = dl->n;
    diag_add(dl, DIAG_ERROR, b->file, line, col, "yaml-template", TEMPLATE_HINT, "%s", msg);
    free(msg);
}

/* An unquoted {{ ds }} is the flow mapping {{ds: null}: null}. Is n, a key
 * just read in the mapping of frame f, its inner braces: a one-entry
 * mapping of a plain name to nothing, opened right after f's own '{'? */
static int
is_template_key(const struct frame *f, const struct ynode *n)
{
    return n->type == YNODE_MAP && n->n == 1 && n->keys[0]->len > 0 && !n->keys[0]->quoted &&
           n->vals[0]->type == YNODE_SCALAR && n->vals[0]->is_null &&
           n->line == f->node->line && n->col == f->node->col + 1;
}

/* The mapping map, ended at end, held only such a key: it was a template
 * written without quotes. Report it and stand in a scalar with its source
 * text, so the loader does not also complain that a string was expected. */
static struct ynode *
template_scalar(struct builder *b, const struct ynode *map, const yaml_mark_t *end)
{
    size_t from = src_offset(b, map->line, map->col);
    size_t to = src_offset(b, (int)end->line + 1, (int)end->column + 1);
    if (to < from)
        to = from;
    struct ynode *n = arena_alloc(b->doc, sizeof(*n));
    memset(n, 0, sizeof(*n));
    n->type = YNODE_SCALAR;
    n->line = map->line;
    n->col = map->col;
    n->str = arena_strndup(b->doc, b->buf + from, to - from);
    n->len = to - from;
    template_error(b, n->line, n->col, n->str, n->len);
    return n;
}

static size_t
skip_blanks(const struct builder *b, size_t off, size_t end)
{
    while (off < end && (b->buf[off] == ' ' || b->buf[off] == '\t'))
        off++;
    return off;
}

/* After a syntax error on a line: an unquoted "{{" that starts a value, or
 * one inside a flow collection ([a, --x={{ ds }}]), is why. Finds the value
 * around it ([*from, *to) in the source) and returns 1, or returns 0. */
static int
template_on_line(struct builder *b, int line, size_t *from, size_t *to)
{
    size_t start = src_offset(b, line, 1), end = line_end(b, start);
    size_t value = skip_blanks(b, start, end); /* where the current value starts */
    int flow = 0;                              /* [ and { open on this line */
    char quote = 0;
    for (size_t i = value; i < end; i++) {
        char c = b->buf[i];
        int blank_after = i + 1 == end || b->buf[i + 1] == ' ' || b->buf[i + 1] == '\t';
        if (quote) {
            if (c == '\\' && quote == '"')
                i++;
            else if (c == quote)
                quote = 0;
            continue;
        }
        if (c == '#' && (i == start || b->buf[i - 1] == ' ' || b->buf[i - 1] == '\t'))
            return 0; /* the rest is a comment */
        if ((c == '"' || c == '\'') && i == value) {
            quote = c;
        } else if (c == '{' && i + 1 < end && b->buf[i + 1] == '{' && (i == value || flow)) {
            /* the value goes on to the end of the line in block context, to
             * the next ',', ']' or '}' outside a template in flow context */
            size_t j = i;
            while (j < end) {
                if (b->buf[j] == '{' && j + 1 < end && b->buf[j + 1] == '{') {
                    const char *close = memmem(b->buf + j, end - j, "}}", 2);
                    j = close ? (size_t)(close - b->buf) + 2 : end;
                } else if ((flow && strchr(",]}", b->buf[j])) ||
                           (b->buf[j] == '#' && (b->buf[j - 1] == ' ' || b->buf[j - 1] == '\t'))) {
                    break;
                } else {
                    j++;
                }
            }
            while (j > i && (b->buf[j - 1] == ' ' || b->buf[j - 1] == '\t'))
                j--;
            *from = value;
            *to = j;
            return 1;
        } else if (c == '[' || c == '{') {
            flow++;
            value = skip_blanks(b, i + 1, end);
            i = value - 1;
        } else if ((c == ']' || c == '}') && flow) {
            flow--;
        } else if ((c == ',' && flow) || (c == ':' && blank_after) ||
                   (c == '-' && i == value && blank_after)) {
            value = skip_blanks(b, i + 1, end);
            i = value - 1;
        }
    }
    return 0;
}

#define MERGE_HINT "write `<<: *name`, where `&name` marks a mapping, or `<<: [*a, *b]`"

static void
merge_add(struct frame *f, struct ynode *map)
{
    xgrow((void **)&f->merges, &f->capmerges, f->nmerges + 1, sizeof(*f->merges));
    f->merges[f->nmerges++] = map;
}

/* A merge key ("<<: *defaults", "<<: [*a, *b]"): remember the mappings; their
 * entries join the mapping when it ends (frame_pop). */
static void
merge_value(struct builder *b, struct frame *f, struct ynode *key, struct ynode *v)
{
    if (f->merge_key) {
        char hint[64];
        snprintf(hint, sizeof(hint), "first defined at line %d; merge several with <<: [*a, *b]",
                 f->merge_key->line);
        diag_add(b->dl, DIAG_ERROR, b->file, key->line, key->col, "duplicate-key", hint,
                 "duplicate key '<<'");
        return;
    }
    f->merge_key = key;
    f->merge_at = f->n;
    if (v->type == YNODE_MAP) {
        merge_add(f, v);
    } else if (v->type == YNODE_SEQ) {
        for (size_t i = 0; i < v->n; i++) {
            if (v->vals[i]->type == YNODE_MAP)
                merge_add(f, v->vals[i]);
            else
                diag_add(b->dl, DIAG_ERROR, b->file, v->vals[i]->line, v->vals[i]->col,
                         "yaml-merge", MERGE_HINT, "'<<' merges mappings, got %s",
                         ynode_kind(v->vals[i]));
        }
    } else {
        diag_add(b->dl, DIAG_ERROR, b->file, v->line, v->col, "yaml-merge", MERGE_HINT,
                 "'<<' needs a mapping or a list of mappings, got %s", ynode_kind(v));
    }
}

/* Merge the mappings "<<" named into f's entries, at the place of "<<":
 * a key written in the mapping itself wins over a merged one (before or
 * after "<<"), and of the merged mappings the earlier one wins. Merged
 * values are the anchored nodes themselves, so errors in them point at
 * where the anchor's mapping is written. */
static void
merge_entries(struct frame *f)
{
    size_t total = f->n;
    for (size_t i = 0; i < f->nmerges; i++)
        total += f->merges[i]->n;
    struct ynode **keys = xcalloc(total + 1, sizeof(*keys));
    struct ynode **vals = xcalloc(total + 1, sizeof(*vals));
    struct hmap seen;
    size_t n = 0, idx;
    hmap_init(&seen);
    for (size_t i = 0; i < f->n; i++)
        hmap_put(&seen, f->keys[i]->str, i);
    for (size_t i = 0; i < f->merge_at; i++) {
        keys[n] = f->keys[i];
        vals[n++] = f->vals[i];
    }
    for (size_t m = 0; m < f->nmerges; m++) {
        const struct ynode *src = f->merges[m];
        for (size_t i = 0; i < src->n; i++) {
            if (hmap_get(&seen, src->keys[i]->str, &idx))
                continue;
            hmap_put(&seen, src->keys[i]->str, n);
            keys[n] = src->keys[i];
            vals[n++] = src->vals[i];
        }
    }
    for (size_t i = f->merge_at; i < f->n; i++) {
        keys[n] = f->keys[i];
        vals[n++] = f->vals[i];
    }
    hmap_free(&seen);
    free(f->keys);
    free(f->vals);
    f->keys = keys;
    f->vals = vals;
    f->n = n;
    f->cap = total + 1;
}

/* Attach a finished node to the collection on top of the stack. */
static void
attach(struct builder *b, struct ynode *n)
{
    if (b->depth == 0) {
        b->root = n;
        return;
    }
    struct frame *f = &b->stack[b->depth - 1];
    if (f->node->type == YNODE_SEQ) {
        xgrow((void **)&f->vals, &f->cap, f->n + 1, sizeof(*f->vals));
        f->vals[f->n++] = n;
        return;
    }
    if (!f->pending_key) {
        if (n->type != YNODE_SCALAR) {
            if (f->n == 0 && !f->tmpl_key && is_template_key(f, n))
                f->tmpl_key = n; /* decided when the mapping ends */
            else
                diag_add(b->dl, DIAG_ERROR, b->file, n->line, n->col, "yaml-key", NULL,
                         "mapping keys must be plain strings, not %s", ynode_kind(n));
            /* use an empty key so the value pairs up and is ignored below */
            n = node_new(b, YNODE_SCALAR, &(yaml_mark_t){0, (size_t)n->line - 1,
                                                          (size_t)n->col - 1});
            n->str = "";
            n->is_null = true;
        }
        f->pending_key = n;
        return;
    }
    struct ynode *key = f->pending_key;
    f->pending_key = NULL;
    if (!key->quoted && key->len == 2 && memcmp(key->str, "<<", 2) == 0) {
        merge_value(b, f, key, n);
        return;
    }
    /* duplicate keys: a linear look for small maps, a hash for big ones
     * (a DAG's `tasks` may hold thousands) */
    size_t dup = SIZE_MAX;
    if (f->keyset) {
        size_t idx;
        if (hmap_get(f->keyset, key->str, &idx) && f->keys[idx]->len == key->len &&
            memcmp(f->keys[idx]->str, key->str, key->len) == 0)
            dup = idx;
    } else {
        for (size_t i = 0; i < f->n && dup == SIZE_MAX; i++)
            if (f->keys[i]->len == key->len && memcmp(f->keys[i]->str, key->str, key->len) == 0)
                dup = i;
    }
    if (dup != SIZE_MAX) {
        char hint[64];
        snprintf(hint, sizeof(hint), "first defined at line %d", f->keys[dup]->line);
        diag_add(b->dl, DIAG_ERROR, b->file, key->line, key->col, "duplicate-key", hint,
                 "duplicate key '%s'", key->str);
        return;
    }
    if (f->n + 1 > f->cap) {
        size_t cap = f->cap;
        xgrow((void **)&f->vals, &cap, f->n + 1, sizeof(*f->vals));
        f->keys = xrealloc(f->keys, cap * sizeof(*f->keys));
        f->cap = cap;
    }
    f->keys[f->n] = key;
    f->vals[f->n] = n;
    f->n++;
    if (!f->keyset && f->n > 32) {
        f->keyset = xcalloc(1, sizeof(*f->keyset));
        hmap_init(f->keyset);
        for (size_t i = 0; i < f->n; i++)
            hmap_put(f->keyset, f->keys[i]->str, i);
    } else if (f->keyset) {
        hmap_put(f->keyset, key->str, f->n - 1);
    }
}

static void
frame_push(struct builder *b, struct ynode *n, const char *anchor)
{
    xgrow((void **)&b->stack, &b->cap, b->depth + 1, sizeof(*b->stack));
    struct frame *f = &b->stack[b->depth++];
    memset(f, 0, sizeof(*f));
    f->node = n;
    f->anchor = anchor ? xstrdup(anchor) : NULL;
}

static struct ynode *
frame_pop(struct builder *b)
{
    struct frame *f = &b->stack[--b->depth];
    struct ynode *n = f->node;
    if (f->nmerges)
        merge_entries(f);
    n->n = f->n;
    if (f->n) {
        n->vals = arena_alloc(b->doc, f->n * sizeof(*n->vals));
        memcpy(n->vals, f->vals, f->n * sizeof(*n->vals));
        if (n->type == YNODE_MAP) {
            n->keys = arena_alloc(b->doc, f->n * sizeof(*n->keys));
            memcpy(n->keys, f->keys, f->n * sizeof(*n->keys));
        }
    }
    if (f->anchor) {
        anchor_add(b, f->anchor, n);
        free(f->anchor);
    }
    if (f->keyset) {
        hmap_free(f->keyset);
        free(f->keyset);
    }
    free(f->keys);
    free(f->vals);
    free(f->merges);
    return n;
}

static void
builder_cleanup(struct builder *b)
{
    while (b->depth) {
        struct frame *f = &b->stack[--b->depth];
        if (f->keyset) {
            hmap_free(f->keyset);
            free(f->keyset);
        }
        free(f->keys);
        free(f->vals);
        free(f->anchor);
        free(f->merges);
    }
    free(b->stack);
    free(b->lines);
}

/* Is the character at line:col a tab in the line's indentation? */
static int
tab_indent(struct builder *b, int line, int col)
{
    size_t off = src_offset(b, line, col);
    if (off >= b->len || b->buf[off] != '\t')
        return 0;
    for (size_t i = src_offset(b, line, 1); i < off; i++)
        if (b->buf[i] != ' ' && b->buf[i] != '\t')
            return 0;
    return 1;
}

static void
syntax_error(struct builder *b, const yaml_parser_t *p)
{
    const yaml_mark_t *m = &p->problem_mark;
    const char *what = p->problem ? p->problem : "malformed YAML";
    int line = (int)m->line + 1, col = (int)m->column + 1;
    size_t from, to;
    /* two classic mistakes get a plain message instead of libyaml's */
    if (p->error == YAML_SCANNER_ERROR && tab_indent(b, line, col)) {
        diag_add(b->dl, DIAG_ERROR, b->file, line, col, "yaml-tab", "indent with spaces",
                 "YAML does not allow tabs for indentation");
        return;
    }
    if (template_on_line(b, line, &from, &to)) {
        template_error(b, line, src_column(b, line, from), b->buf + from, to - from);
        return;
    }
    if (p->context) {
        diag_add(b->dl, DIAG_ERROR, b->file, (int)m->line + 1, (int)m->column + 1,
                 "yaml-syntax", NULL, "YAML syntax error: %s %s (line %d)", what, p->context,
                 (int)p->context_mark.line + 1);
    } else {
        diag_add(b->dl, DIAG_ERROR, b->file, (int)m->line + 1, (int)m->column + 1,
                 "yaml-syntax", NULL, "YAML syntax error: %s", what);
    }
}

int
ydoc_parse(struct ydoc **out, struct ynode **root, const char *buf, size_t len,
           const char *file, struct diag_list *dl)
{
    yaml_parser_t p;
    yaml_event_t ev;
    struct builder b;
    int done = 0, ndocs = 0, rc = 0;

    memset(&b, 0, sizeof(b));
    b.doc = xcalloc(1, sizeof(*b.doc));
    b.file = file;
    b.dl = dl;
    b.buf = buf;
    b.len = len;
    b.tmpl_diag = SIZE_MAX;
    if (!yaml_parser_initialize(&p)) {
        ydoc_free(b.doc);
        return CAIRN_ENOMEM;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);

    while (!done) {
        if (!yaml_parser_parse(&p, &ev)) {
            syntax_error(&b, &p);
            rc = CAIRN_EPARSE;
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++ndocs > 1) {
                diag_add(dl, DIAG_ERROR, file, (int)ev.start_mark.line + 1,
                         (int)ev.start_mark.column + 1, "yaml-multidoc",
                         "put each DAG in a file of its own",
                         "a DAG file holds one YAML document; found a second one");
                rc = CAIRN_EPARSE;
                done = 1;
            }
            break;
        case YAML_SCALAR_EVENT: {
            struct ynode *n = node_new(&b, YNODE_SCALAR, &ev.start_mark);
            n->str = arena_strndup(b.doc, (const char *)ev.data.scalar.value,
                                   ev.data.scalar.length);
            n->len = ev.data.scalar.length;
            n->quoted = ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
            n->is_null = is_null_scalar(n->str, n->len, n->quoted);
            if (ev.data.scalar.anchor)
                anchor_add(&b, (const char *)ev.data.scalar.anchor, n);
            attach(&b, n);
            break;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            int is_seq = ev.type == YAML_SEQUENCE_START_EVENT;
            if (b.depth >= YNODE_MAX_DEPTH) {
                diag_add(dl, DIAG_ERROR, file, (int)ev.start_mark.line + 1,
                         (int)ev.start_mark.column + 1, "yaml-depth", NULL,
                         "YAML nested deeper than %d levels", YNODE_MAX_DEPTH);
                rc = CAIRN_EPARSE;
                done = 1;
                break;
            }
            struct ynode *n =
                node_new(&b, is_seq ? YNODE_SEQ : YNODE_MAP, &ev.start_mark);
            const yaml_char_t *anchor =
                is_seq ? ev.data.sequence_start.anchor : ev.data.mapping_start.anchor;
            frame_push(&b, n, (const char *)anchor);
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: {
            struct frame *f = &b.stack[b.depth - 1];
            struct ynode *tmpl_key = f->tmpl_key;
            if (f->pending_key) { /* cannot happen with libyaml; be safe */
                f->pending_key = NULL;
            }
            struct ynode *n = frame_pop(&b);
            if (tmpl_key && n->n == 1 && n->vals[0]->type == YNODE_SCALAR && n->vals[0]->is_null)
                n = template_scalar(&b, n, &ev.end_mark);
            else if (tmpl_key)
                diag_add(dl, DIAG_ERROR, file, tmpl_key->line, tmpl_key->col, "yaml-key", NULL,
                         "mapping keys must be plain strings, not %s", ynode_kind(tmpl_key));
            attach(&b, n);
            break;
        }
        case YAML_ALIAS_EVENT: {
            struct ynode *a = anchor_find(&b, (const char *)ev.data.alias.anchor);
            struct ynode *n = NULL;
            if (!a) {
                diag_add(dl, DIAG_ERROR, file, (int)ev.start_mark.line + 1,
                         (int)ev.start_mark.column + 1, "yaml-alias", NULL,
                         "unknown alias '*%s'", ev.data.alias.anchor);
                rc = CAIRN_EPARSE;
                done = 1;
                break;
            }
            n = node_copy(&b, a, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1);
            if (!n) {
                diag_add(dl, DIAG_ERROR, file, (int)ev.start_mark.line + 1,
                         (int)ev.start_mark.column + 1, "yaml-too-large", NULL,
                         "document expands to more than %d nodes through aliases",
                         YNODE_BUDGET);
                rc = CAIRN_EPARSE;
                done = 1;
                break;
            }
            attach(&b, n);
            break;
        }
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    builder_cleanup(&b);
    if (rc) {
        ydoc_free(b.doc);
        return rc;
    }
    *root = b.root;
    *out = b.doc;
    return 0;
}

struct ynode *
ynode_get(const struct ynode *map, const char *key, struct ynode **key_out)
{
    if (!map || map->type != YNODE_MAP)
        return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < map->n; i++) {
        if (map->keys[i]->len == kl && memcmp(map->keys[i]->str, key, kl) == 0) {
            if (key_out)
                *key_out = map->keys[i];
            return map->vals[i];
        }
    }
    return NULL;
}

const char *
ynode_kind(const struct ynode *n)
{
    if (!n)
        return "nothing";
    switch (n->type) {
    case YNODE_SEQ:
        return "a list";
    case YNODE_MAP:
        return "a mapping";
    default:
        return n->is_null ? "null" : "a string";
    }
}
